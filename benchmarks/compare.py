"""Epoch time of backprop, PyTorch, scikit-learn and JAX on the same shapes, side by side.

    python benchmarks/compare.py                 # every case, 3 repeats
    python benchmarks/compare.py --cases small --repeats 5 --json
    python benchmarks/compare.py --cases textbook --engines backprop --busy 1   # one core busy

Each (case, engine) runs in its own subprocess, so that its peak memory is its own; the
engines are interleaved within each repeat, so that a change in the machine's load hits
them alike. Every engine trains the same network on the same random float32 data with
shuffling on and no validation split, with 2 threads, for one warm-up epoch and then
``--epochs`` timed epochs. The table shows median epoch times and each peer's time divided
by backprop's (a ratio above 1 means backprop is faster). PyTorch, scikit-learn and JAX are
optional (`pip install '.[bench]'`); an engine that is not installed is skipped.
``backprop-numpy`` is backprop with ``BACKPROP_FUSED=0``: the NumPy path (the reference,
and every network's path before the fused step), to see what the fused step gains.

JAX runs twice: ``jax-step`` is ``jit`` of one training step called per batch (what most
users write), ``jax-scan`` the whole epoch's batches in one ``jit(lax.scan)`` (what a JAX
user who knows ``lax.scan`` writes, and the fastest JAX gets on small networks). XLA's CPU
backend uses its own thread pool, sized to the machine's cores.

``--busy N`` keeps N other processes spinning (``while True: pass``) for the whole run: a
busy machine, as a CI runner or a laptop doing something else is, to compare with a quiet one.

The roofline is the epoch's matrix-multiply FLOPs divided by numpy's measured float32
matmul peak on this machine: the time an epoch would take if it did nothing but GEMMs at
full speed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

THREADS = "2"

CASES = {
    # name: rows, features, hidden, classes, batch size, optimizer
    "large": (60000, 784, (512, 512), 10, 128, "adam"),
    "small": (50000, 64, (64, 64), 10, 32, "adam"),
    "large-sgd": (60000, 784, (512, 512), 10, 128, "sgd"),
    "small-sgd": (50000, 64, (64, 64), 10, 32, "sgd"),
    "sgd-batch1": (5000, 64, (64, 64), 10, 1, "sgd"),
    # the textbook's MNIST network (784-30-10, batch 10): the case of a busy machine (--busy)
    "textbook": (50000, 784, (30,), 10, 10, "sgd"),
}
ENGINES = ("backprop", "backprop-numpy", "torch", "sklearn", "jax-step", "jax-scan")


def data(rows, features, classes, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.standard_normal(
        (rows, features), dtype=np.float32
    )  # no float64 copy to inflate the peak
    y = rng.integers(0, classes, rows)
    return X, y


def run_backprop(case, epochs):
    trainer = backprop_trainer(case, epochs + 1)
    return [r["time_s"] for r in trainer.run()][1:]


def backprop_trainer(case, epochs, fused=None):
    """backprop's trainer for a case (fused: None lets the tool choose the path)."""
    import numpy as np

    from backprop_cli.config import optimizer_defaults
    from backprop_cli.data import streams
    from backprop_cli.nn import Network, get_loss, make_optimizer
    from backprop_cli.training import Trainer

    rows, features, hidden, classes, bs, opt_name = case
    X, y = data(rows, features, classes)
    sizes = [features, *hidden, classes]
    net = Network(sizes, ["relu"] * len(hidden) + ["softmax"], dtype=np.float32)
    net.init("he", np.random.default_rng(0))
    hyper = {"lr": 1e-3} if opt_name == "adam" else {"lr": 1e-2, "momentum": 0.9}
    opt = make_optimizer(opt_name, net.params, net.grads, **(optimizer_defaults(opt_name) | hyper))
    trainer = Trainer(
        net,
        opt,
        get_loss("cross_entropy"),
        X,
        y,
        task="classification",
        epochs=epochs,
        batch_size=bs,
        shuffle=True,
        rngs=streams(0),
        fused=fused,
    )
    return trainer


def run_torch(case, epochs):
    import torch

    torch.set_num_threads(int(THREADS))
    rows, features, hidden, classes, bs, opt_name = case
    Xn, yn = data(rows, features, classes)
    X, y = torch.from_numpy(Xn), torch.from_numpy(yn)
    layers, width = [], features
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width, classes))
    if opt_name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    crit = torch.nn.CrossEntropyLoss()
    times = []
    for _ in range(epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(rows)
        for i in range(0, rows, bs):
            idx = perm[i : i + bs]
            xb, yb = X[idx], y[idx]
            opt.zero_grad()
            loss = crit(model(xb), yb)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return times[1:]


def run_sklearn(case, epochs):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    rows, features, hidden, classes, bs, opt_name = case
    X, y = data(rows, features, classes)
    kw = (
        {"solver": "adam"}
        if opt_name == "adam"
        else {"solver": "sgd", "momentum": 0.9, "nesterovs_momentum": False}
    )
    clf = MLPClassifier(
        hidden_layer_sizes=hidden,
        batch_size=bs,
        learning_rate_init=1e-3 if opt_name == "adam" else 1e-2,
        max_iter=1,
        shuffle=True,
        alpha=0.0,
        tol=0.0,
        n_iter_no_change=10**9,
        warm_start=True,
        random_state=0,
        **kw,
    )
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(epochs + 1):
            t0 = time.perf_counter()
            clf.fit(X, y)
            times.append(time.perf_counter() - t0)
    return times[1:]


def _jax_parts(case):
    """JAX's training step for ``case``: (init params and optimizer state, step, the data).

    The same network, loss and update as the other engines: He-initialized weights, zero
    biases, relu layers, softmax cross-entropy (mean), and torch.optim's Adam (lr 1e-3) or SGD
    (lr 1e-2, momentum 0.9), written out in jax.numpy (no optax: nothing beyond jax itself).
    """
    import jax
    import jax.numpy as jnp

    rows, features, hidden, classes, bs, opt_name = case
    Xn, yn = data(rows, features, classes)
    sizes = [features, *hidden, classes]
    keys = jax.random.split(jax.random.PRNGKey(0), len(sizes))
    params = [
        (jax.random.normal(k, (fi, fo), jnp.float32) * (2.0 / fi) ** 0.5, jnp.zeros(fo))
        for k, fi, fo in zip(keys, sizes[:-1], sizes[1:], strict=False)
    ]

    def loss_fn(params, xb, yb):
        a = xb
        for W, b in params[:-1]:
            a = jax.nn.relu(a @ W + b)
        W, b = params[-1]
        logp = jax.nn.log_softmax(a @ W + b)
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    if opt_name == "adam":
        state = (zeros, zeros, jnp.zeros((), jnp.int32))

        def update(params, grads, state):
            m, v, t = state
            t = t + 1
            m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, grads)
            v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, grads)
            c1, c2 = 1 - 0.9**t, jnp.sqrt(1 - 0.999**t)
            params = jax.tree_util.tree_map(
                lambda p, m, v: p - (1e-3 / c1) * m / (jnp.sqrt(v) / c2 + 1e-8), params, m, v
            )
            return params, (m, v, t)
    else:
        state = zeros

        def update(params, grads, buf):
            buf = jax.tree_util.tree_map(lambda b, g: 0.9 * b + g, buf, grads)
            params = jax.tree_util.tree_map(lambda p, b: p - 1e-2 * b, params, buf)
            return params, buf

    def step(carry, xb, yb):
        params, state = carry
        grads = jax.grad(loss_fn)(params, xb, yb)
        return update(params, grads, state)

    return (params, state), step, jnp.asarray(Xn), jnp.asarray(yn)


def _time_jax(epochs, run_epoch, carry, key):
    import jax

    times = []
    for _ in range(epochs + 1):
        key, sub = jax.random.split(key)
        t0 = time.perf_counter()
        carry = jax.block_until_ready(run_epoch(carry, sub))
        times.append(time.perf_counter() - t0)
    return times[1:]


def run_jax_step(case, epochs):
    """JAX as most users write it: ``jit`` of one training step, called per batch."""
    import jax

    rows, bs = case[0], case[4]
    carry, step, X, y = _jax_parts(case)

    @jax.jit
    def jstep(carry, X, y, idx):
        return step(carry, X[idx], y[idx])

    def run_epoch(carry, key):
        perm = jax.random.permutation(key, rows)
        for i in range(0, rows, bs):
            carry = jstep(carry, X, y, perm[i : i + bs])
        return carry

    return _time_jax(epochs, run_epoch, carry, jax.random.PRNGKey(1))


def run_jax_scan(case, epochs):
    """JAX at its best on small networks: the whole epoch's full batches in one compiled
    ``jit(lax.scan)``, the short last batch (if any) by the jitted step."""
    import jax

    rows, bs = case[0], case[4]
    full = rows // bs
    carry, step, X, y = _jax_parts(case)

    @jax.jit
    def jepoch(carry, key):
        perm = jax.random.permutation(key, rows)
        batches = perm[: full * bs].reshape(full, bs)

        def body(carry, idx):
            return step(carry, X[idx], y[idx]), None

        carry, _ = jax.lax.scan(body, carry, batches)
        return carry, perm[full * bs :]

    @jax.jit
    def jstep(carry, idx):
        return step(carry, X[idx], y[idx])

    def run_epoch(carry, key):
        carry, rest = jepoch(carry, key)
        return jstep(carry, rest) if rows % bs else carry

    return _time_jax(epochs, run_epoch, carry, jax.random.PRNGKey(1))


def matmul_peak() -> float:
    """numpy's float32 GEMM speed on this machine, GFLOP/s (best of several)."""
    import numpy as np

    a = np.random.rand(2048, 2048).astype(np.float32)
    b = np.random.rand(2048, 2048).astype(np.float32)
    c = np.empty_like(a)
    np.matmul(a, b, out=c)
    best = float("inf")
    for _ in range(8):
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
    return 2 * 2048**3 / best / 1e9


def epoch_flops(case) -> float:
    """Forward z = aW (2 n fi fo per layer), backward dW = a^T delta and dA = delta W^T (the first layer needs no dA)."""
    rows, features, hidden, classes, _, _ = case
    sizes = [features, *hidden, classes]
    pairs = [fi * fo for fi, fo in zip(sizes[:-1], sizes[1:], strict=True)]
    return 2 * rows * (3 * sum(pairs) - pairs[0])


def child(engine: str, case_name: str, epochs: int) -> None:
    import resource

    if engine == "backprop-numpy":  # the NumPy path, the fused step's reference (and the old one)
        os.environ["BACKPROP_FUSED"] = "0"
    fn = {
        "backprop": run_backprop,
        "backprop-numpy": run_backprop,
        "torch": run_torch,
        "sklearn": run_sklearn,
        "jax-step": run_jax_step,
        "jax-scan": run_jax_scan,
    }[engine]
    try:
        times = fn(CASES[case_name], epochs)
    except ImportError as e:
        print(json.dumps({"skipped": str(e)}))
        return
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"times": times, "peak_rss_mb": peak_mb}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--epochs", type=int, default=2, help="timed epochs per run (after one warm-up epoch)"
    )
    ap.add_argument("--busy", type=int, default=0, help="keep N other processes spinning meanwhile")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.epochs)
        return
    cases = args.cases.split(",")
    engines = args.engines.split(",")
    spinning = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)
    ]
    try:
        results = measure(cases, engines, args.repeats, args.epochs)
    finally:
        for p in spinning:
            p.kill()
            p.wait()
    summarize(results, cases, engines, args)


def measure(cases, engines, repeats, epochs) -> dict:
    """Each (case, engine)'s epoch times and peak memory, the engines interleaved."""
    results: dict = {c: {e: {"times": [], "peak_rss_mb": []} for e in engines} for c in cases}
    for r in range(repeats):
        for c in cases:
            for e in engines:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", e, c, "--epochs", str(epochs)],
                    capture_output=True,
                    text=True,
                )
                if out.returncode != 0:
                    sys.exit(f"{e} on {c} failed:\n{out.stderr}")
                res = json.loads(out.stdout.strip().splitlines()[-1])
                if "skipped" in res:
                    results[c][e] = None
                    continue
                if results[c][e] is not None:
                    results[c][e]["times"] += res["times"]
                    results[c][e]["peak_rss_mb"].append(res["peak_rss_mb"])
                print(
                    f"repeat {r + 1}/{repeats} {c:10s} {e:14s} {statistics.median(res['times']):7.3f} s/epoch",
                    file=sys.stderr,
                )
    return results


def summarize(results, cases, engines, args) -> None:
    peak = matmul_peak()
    report = {"machine": machine() | {"busy": args.busy}, "matmul_peak_gflops": peak, "cases": {}}
    for c in cases:
        row = {"roofline_s": epoch_flops(CASES[c]) / (peak * 1e9), "engines": {}}
        base = (
            statistics.median(results[c]["backprop"]["times"])
            if results[c].get("backprop")
            else None
        )
        for e in engines:
            if results[c][e] is None:
                continue
            med = statistics.median(results[c][e]["times"])
            row["engines"][e] = {
                "median_s": med,
                "peak_rss_mb": max(results[c][e]["peak_rss_mb"]),
                "ratio_to_backprop": med / base if base else None,
            }
        report["cases"][c] = row
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report, CASES)


def machine() -> dict:
    import platform

    import numpy as np

    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "threads": THREADS,
        "processor": platform.processor() or platform.machine(),
        "blas_kernels": blas_kernels(),
        "fused_vector_bytes": fused_vector_bytes(),
    }
    for mod in ("torch", "sklearn", "jax"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            pass
    return info


def fused_vector_bytes() -> int | None:
    """The fused step's vector width in this build (64 bytes with AVX-512, 32 with AVX)."""
    from backprop_cli.nn import fast

    return fast.vector_bytes()


def blas_kernels() -> str:
    """The BLAS's kernels (threadpoolctl's architecture), and $OPENBLAS_CORETYPE where it
    chose them: a machine may force slower kernels than its CPU has."""
    forced = os.environ.get("OPENBLAS_CORETYPE")
    try:
        from threadpoolctl import threadpool_info

        arch = ", ".join(
            f"{i['internal_api']} {i.get('architecture', '?')}"
            for i in threadpool_info()
            if i["user_api"] == "blas"
        )
    except ImportError:
        arch = "unknown (no threadpoolctl)"
    return arch + (f", forced by OPENBLAS_CORETYPE={forced}" if forced else "")


def print_table(report, cases) -> None:
    m = report["machine"]
    print(
        f"machine: {m['cpus']} cpus, {m['threads']} threads, {m['busy']} busy process(es), "
        f"python {m['python']}, numpy {m['numpy']}"
        + "".join(f", {k} {m[k]}" for k in ("torch", "sklearn", "jax") if k in m)
    )
    print(
        f"numpy float32 matmul peak: {report['matmul_peak_gflops']:.0f} GFLOP/s "
        f"(BLAS kernels: {m['blas_kernels']}); fused step: {m['fused_vector_bytes']}-byte vectors"
    )
    print()
    head = f"{'case':11s} {'shape':28s} {'engine':14s} {'s/epoch':>8s} {'x backprop':>10s} {'peak MB':>8s}"
    print(head)
    print("-" * len(head))
    for c, row in report["cases"].items():
        rows, features, hidden, classes, bs, opt = cases[c]
        shape = f"{rows}x{features}-{'-'.join(map(str, hidden))}-{classes} b{bs} {opt}"
        for e, r in row["engines"].items():
            ratio = f"{r['ratio_to_backprop']:.2f}" if r["ratio_to_backprop"] else "-"
            print(
                f"{c:11s} {shape:28s} {e:14s} {r['median_s']:8.3f} {ratio:>10s} {r['peak_rss_mb']:8.0f}"
            )
        bp = row["engines"].get("backprop")
        if bp:
            print(
                f"{'':11s} {'':28s} {'roofline':14s} {row['roofline_s']:8.3f} "
                f"{'':>10s} {'':>8s}   backprop at {bp['median_s'] / row['roofline_s']:.2f}x the roofline"
            )


if __name__ == "__main__":  # here and in each engine's process (--child), before NumPy loads
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, THREADS)
    main()
