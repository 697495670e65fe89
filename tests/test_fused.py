"""The fused training step (nn/fused.py, nn/_fused.c) against the NumPy path, the reference.

The fused step sums its matrix products in another order than the BLAS, so the two paths
agree to within rounding, not to the bit: after whole epochs, parameters within TOLERANCE
(relative to the largest parameter) per dtype. Everything else is exact: the same seed gives
the same bits every time, the dropout masks and the shuffling come from the same streams
(a different mask or order would put the parameters far outside the tolerance).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from backprop_cli.config import optimizer_defaults
from backprop_cli.data import streams
from backprop_cli.nn import Network, fast, get_loss, make_optimizer
from backprop_cli.nn.fused import ACTIVATIONS, MAX_PRODUCT, FusedStep
from backprop_cli.training import Trainer
from backprop_cli.training.fused_epoch import plan

pytestmark = pytest.mark.skipif(
    fast.functions(np.dtype("float64"), "train") is None, reason="no compiled kernels here"
)

# max |fused - numpy| / max |numpy| over the parameters after the run
TOLERANCE = {"float32": 2e-5, "float64": 1e-12}


def _data(task: str, n: int, f: int, k: int, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f)).astype(dtype)
    if task == "labels":
        return X, rng.integers(0, k, n)
    if task == "binary":
        return X, (X[:, :1] + 0.3 * rng.normal(size=(n, 1)) > 0).astype(dtype)
    if task == "onehot":
        return X, np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
    if task == "multilabel":
        return X, (X[:, :k] + 0.5 * rng.normal(size=(n, k)) > 0).astype(dtype)
    return X, (X[:, :k] * 0.5 + 0.1 * rng.normal(size=(n, k))).astype(dtype)


def _trainer(case: dict, dtype, fused: bool, epochs: int = 3) -> Trainer:
    c = {
        "hidden": ["relu", "relu"],
        "out": "softmax",
        "loss": "cross_entropy",
        "opt": ("adam", {}),
        "batch": 16,
        "data": "labels",
        "k": 4,
        **case,
    }
    X, y = _data(c["data"], c.get("rows", 203), 6, c["k"], dtype)
    width = c.get("width", 8)
    sizes = [6] + [width] * len(c["hidden"]) + [c["k"]]
    net = Network(
        sizes,
        [*c["hidden"], c["out"]],
        dtype=dtype,
        dropout=c.get("dropout"),
        residual=c.get("residual"),
    )
    net.init("he", np.random.default_rng(1))
    name, hyper = c["opt"]
    hyper = optimizer_defaults(name) | {"lr": 0.01} | hyper
    decayed = net.weight_slices() if c.get("weights_alone") else None
    opt = make_optimizer(name, net.params, net.grads, decayed=decayed, **hyper)
    w = np.random.default_rng(2).uniform(0.2, 2.0, len(X)) if c.get("weights") else None
    task = "regression" if c["data"] == "values" else "classification"
    return Trainer(
        net,
        opt,
        get_loss(c["loss"]),
        X,
        y,
        w=w,
        task=task,
        epochs=epochs,
        batch_size=c["batch"],
        shuffle=True,
        rngs=streams(7),
        clip_grad_norm=c.get("clip_norm"),
        clip_grad_value=c.get("clip_value"),
        fused=fused,
        multilabel=c["data"] == "multilabel",
    )


CASES = {
    "relu softmax adam": {},
    "sigmoid tanh sgd": {"hidden": ["sigmoid", "tanh"], "opt": ("sgd", {"lr": 0.1})},
    "leaky elu nesterov": {
        "hidden": ["leaky_relu", "elu"],
        "opt": ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
    },
    "softplus gelu adamw": {"hidden": ["softplus", "gelu"], "opt": ("adamw", {})},
    "identity hidden, adam decay": {
        "hidden": ["identity", "relu"],
        "opt": ("adam", {"weight_decay": 1e-2}),
    },
    "sgd dampening": {"opt": ("sgd", {"momentum": 0.5, "dampening": 0.3})},
    "batch 1": {"batch": 1},
    "batch 3, residual, dropout (delta W^T as dot products)": {
        "batch": 3,
        "residual": [False, True, False],
        "dropout": [0.3, 0.0, 0.0],
        "hidden": ["tanh", "relu"],
    },
    "batch 2, 20 units (delta W^T 16 rows at a time)": {"batch": 2, "width": 20},
    "batch 16, 20 units (W^T by blocks of vectors)": {"batch": 16, "width": 20},
    "batch 7 (short last batch)": {"batch": 7},
    "full batch": {"batch": 203},
    "row weights": {"weights": True},
    "dropout": {"dropout": [0.3, 0.5, 0.0]},
    "residual": {"residual": [False, True, False]},
    "dropout and residual": {"dropout": [0.2, 0.4, 0.0], "residual": [False, True, False]},
    "clip norm": {"clip_norm": 0.05},
    "clip value": {"clip_value": 0.01},
    "binary cross-entropy": {"out": "sigmoid", "loss": "binary_cross_entropy", "k": 1},
    "binary, weighted": {
        "out": "sigmoid",
        "loss": "binary_cross_entropy",
        "k": 1,
        "data": "binary",
        "weights": True,
    },
    "cross-entropy on sigmoid outputs": {"out": "sigmoid"},
    "mse": {"out": "identity", "loss": "mse", "data": "values", "k": 3},
    "mse classification, one-hot": {"out": "sigmoid", "loss": "mse", "data": "onehot"},
    "huber classification, one unit": {"out": "sigmoid", "loss": "huber", "data": "binary", "k": 1},
    "binary cross-entropy, one-hot": {
        "out": "sigmoid",
        "loss": "binary_cross_entropy",
        "data": "onehot",
    },
    "binary cross-entropy, multi-label": {
        "out": "sigmoid",
        "loss": "binary_cross_entropy",
        "data": "multilabel",
        "k": 3,
    },
    "sgd decay on the weights alone": {
        "opt": ("sgd", {"momentum": 0.9, "weight_decay": 0.05}),
        "weights_alone": True,
    },
    "adam decay on the weights alone": {
        "opt": ("adam", {"weight_decay": 0.05}),
        "weights_alone": True,
    },
    "adamw decay on the weights alone": {
        "opt": ("adamw", {"weight_decay": 0.5}),
        "weights_alone": True,
    },
    "mae": {"out": "identity", "loss": "mae", "data": "values", "k": 2},
    "huber, tanh out": {"out": "tanh", "loss": "huber", "data": "values", "k": 2},
    "mse, weighted": {"out": "identity", "loss": "mse", "data": "values", "weights": True},
}
CASES["binary cross-entropy"]["data"] = "binary"


def _run(trainer: Trainer) -> list[dict]:
    return list(trainer.run())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_fused_step_trains_as_the_numpy_path(case, dtype):
    fused, ref = _trainer(case, dtype, True), _trainer(case, dtype, False)
    assert (fused.plan.path, ref.plan.path) == ("fused", "numpy"), fused.plan.why
    rows, ref_rows = _run(fused), _run(ref)
    scale = np.abs(ref.net.params).max()
    error = np.abs(fused.net.params - ref.net.params).max() / scale
    assert error < TOLERANCE[dtype]
    assert error > 0 or dtype == "float64"  # a float32 run really took the other path
    assert fused.opt.t == ref.opt.t
    for k, v in ref.opt.state.items():
        np.testing.assert_allclose(fused.opt.state[k], v, rtol=0, atol=scale * 1e3)
    tol = 1e-4 if dtype == "float32" else 1e-10
    for row, want in zip(rows, ref_rows, strict=True):
        for key in ("train_loss", "train_accuracy", "train_r2", "grad_norm_layer0"):
            if key in want:
                assert row[key] == pytest.approx(want[key], rel=tol, abs=tol), key
        if "clipped_batches" in want:
            assert row["clipped_batches"] == want["clipped_batches"] > 0


def test_the_same_seed_gives_the_same_bits():
    case = {"dropout": [0.3, 0.5, 0.0], "batch": 5}
    a, b = _trainer(case, "float32", True), _trainer(case, "float32", True)
    _run(a), _run(b)
    np.testing.assert_array_equal(a.net.params, b.net.params)
    for k in a.opt.state:
        np.testing.assert_array_equal(a.opt.state[k], b.opt.state[k])


def test_the_dropout_masks_are_the_numpy_paths():
    """With another stream (or another order of draws) the masks differ, and so does every
    parameter: the fused run matches the NumPy run, not one with other masks."""
    case = {"dropout": [0.5, 0.5, 0.0], "batch": 9}
    fused, ref = _trainer(case, "float64", True), _trainer(case, "float64", False)
    other = _trainer(case, "float64", False)
    other.rngs["dropout"] = np.random.default_rng(99)
    _run(fused), _run(ref), _run(other)
    assert np.abs(fused.net.params - ref.net.params).max() < 1e-12
    assert np.abs(other.net.params - ref.net.params).max() > 1e-3


def _loss_at(net: Network, loss, X, y, w) -> float:
    return net.evaluate(X, y, loss, w=w)[0]


@pytest.mark.parametrize(
    "case",
    [
        {},
        {"hidden": ["tanh", "gelu"], "weights": True},
        {"residual": [False, True, False], "hidden": ["elu", "softplus"]},
        {"out": "sigmoid", "loss": "binary_cross_entropy", "k": 1, "data": "binary"},
        {"out": "identity", "loss": "huber", "data": "values", "k": 2, "weights": True},
        {"out": "sigmoid", "loss": "mse", "data": "values", "k": 3},
    ],
    ids=["softmax ce", "tanh gelu weighted", "residual", "bce", "huber weighted", "mse"],
)
@pytest.mark.parametrize("rows", [203, 3], ids=["through W^T", "dot products"])
def test_the_fused_gradient_equals_central_differences(case, rows):
    """One batch through the fused step with SGD at lr 0 (nothing moves): its gradient,
    against float64 central differences of the loss; a batch of up to 4 rows computes
    delta W^T as dot products, a larger one through W^T."""
    case = {**case, "opt": ("sgd", {"lr": 0.0}), "batch": rows, "rows": rows}
    tr = _trainer(case, "float64", True, 1)
    assert tr.plan.path == "fused"
    before = tr.net.params.copy()
    _run(tr)
    np.testing.assert_array_equal(tr.net.params, before)
    grads = tr.net.grads.copy()
    X, y, w, net = tr.X, tr.y, tr.w, tr.net
    numeric = np.empty_like(grads)
    h = 1e-6
    for i in range(net.params.size):
        keep = net.params[i]
        net.params[i] = keep + h
        up = _loss_at(net, tr.loss, X, y, w)
        net.params[i] = keep - h
        down = _loss_at(net, tr.loss, X, y, w)
        net.params[i] = keep
        numeric[i] = (up - down) / (2 * h)
    np.testing.assert_allclose(grads, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "case, why",
    [
        ({"opt": ("rmsprop", {})}, "rmsprop has no compiled update"),
        ({"opt": ("adam", {"amsgrad": True})}, "adam has no compiled update"),
        ({"hidden": ["softmax", "relu"]}, "layer 0: no fused softmax"),
    ],
)
def test_what_the_fused_step_has_not_takes_the_numpy_path(case, why):
    tr = _trainer(case, "float32", None)
    assert tr.plan.path == "numpy" and why in tr.plan.why


def test_large_products_take_the_numpy_path():
    net = Network([784, 512, 512, 10], ["relu", "relu", "softmax"])
    opt = make_optimizer("adam", net.params, net.grads, **optimizer_defaults("adam"))
    X, y = np.zeros((256, 784), np.float32), np.zeros(256, np.int64)
    p = plan(net, get_loss("cross_entropy"), opt, 128, "classification", (X, y, None))
    assert p.path == "numpy" and f"> {MAX_PRODUCT:,}" in p.why


def test_backprop_fused_0_asks_for_the_numpy_path(monkeypatch):
    monkeypatch.setenv("BACKPROP_FUSED", "0")
    tr = _trainer({}, "float32", None)
    assert tr.plan.path == "numpy" and "BACKPROP_FUSED=0" in tr.plan.why
    monkeypatch.setenv("BACKPROP_FUSED", "1")
    assert _trainer({}, "float32", None).plan.path == "fused"


def test_store_and_load_round_trip_the_state():
    """The packed copies (rows padded to whole vectors) give back exactly what they took."""
    tr = _trainer({"opt": ("adam", {})}, "float32", True)
    net, opt = tr.net, tr.opt
    rng = np.random.default_rng(3)
    for buf in (net.params, net.grads, *opt.state.values()):
        buf[:] = rng.normal(size=buf.size)
    opt.t = 17
    want = [b.copy() for b in (net.params, net.grads, *opt.state.values())]
    step: FusedStep = tr.plan.step
    step.load()
    used = [opt.state["exp_avg"], opt.state["exp_avg_sq"]]  # not amsgrad's max_exp_avg_sq
    for buf in (net.params, net.grads, *used):
        buf[:] = 0
    opt.t = 0
    step.store()
    for got, w in zip((net.params, net.grads, *used), want, strict=False):
        np.testing.assert_array_equal(got, w)
    assert opt.t == 17


def test_a_diverging_run_stops_at_the_same_batch_either_way():
    case = {"opt": ("sgd", {"lr": 1e6}), "out": "identity", "loss": "mse", "data": "values"}
    errors = []
    for fused in (True, False):
        tr = _trainer(case, "float32", fused)
        with pytest.raises(Exception) as e:
            _run(tr)
        errors.append(str(e.value).split(": the loss is")[0])
    assert errors[0] == errors[1] and "diverged at epoch" in errors[0]


@pytest.mark.parametrize(
    "config",
    sorted(p.name for p in (Path(__file__).parent.parent / "configs").glob("*.yaml")),
)
def test_every_config_trains_to_the_same_metrics_either_way(capsys, monkeypatch, config):
    """Whole runs, fused (where the config takes it) and NumPy: the same losses to within
    rounding noise and accuracy or R^2 to a row or two (rank metrics such as ROC-AUC of a
    network that has not learned, vanishing-sigmoid.yaml's, move more), and summary.json says
    which path each took."""
    from .conftest import CONFIGS, run_cli

    for flag, out in (("1", "fused"), ("0", "numpy")):
        monkeypatch.setenv("BACKPROP_FUSED", flag)
        argv = ["train", CONFIGS / config, "-q", "--out", out, "--set", "training.epochs=4"]
        assert run_cli(capsys, *argv)[0] in (0, 3)
    summary = {d: json.loads(Path(d, "summary.json").read_text()) for d in ("fused", "numpy")}
    assert summary["numpy"]["training_step"]["path"] == "numpy"
    step = summary["fused"]["training_step"]
    assert step["path"] == "fused" or step["why"].startswith("rmsprop has no compiled update")
    for key in ("final", "test"):
        want, got = summary["numpy"].get(key) or {}, summary["fused"].get(key) or {}
        for k, v in want.items():
            if v is None or isinstance(v, (int, str)):
                assert got[k] == v, (key, k)
            elif k.endswith("loss"):
                assert got[k] == pytest.approx(v, rel=1e-3, abs=1e-5), (key, k)
            elif k.endswith(("accuracy", "r2")):
                assert got[k] == pytest.approx(v, abs=0.01), (key, k)


def _two_ways(case: dict, dtype: str = "float32") -> tuple[Trainer, Trainer]:
    one, two = _trainer(case, dtype, True), _trainer(case, dtype, True)
    assert one.plan.step.split and two.plan.step.split, "no second core here"
    one.plan.step.threads, two.plan.step.threads = 1, 2
    _run(one), _run(two)
    return one, two


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: no second thread")
@pytest.mark.parametrize(
    "case",
    [
        {"batch": 32},
        {"batch": 17, "dropout": [0.3, 0.2, 0.0], "weights": True},
        {"batch": 16, "residual": [False, True, False], "clip_norm": 0.05},
        {"out": "identity", "loss": "mse", "data": "values", "k": 3, "batch": 40},
        {"opt": ("sgd", {"momentum": 0.9, "weight_decay": 0.01}), "weights_alone": True},
    ],
    ids=["adam", "dropout, weights, short batch", "residual, clipping", "regression", "decay"],
)
def test_two_threads_give_the_bits_of_one(case):
    """A batch of 16 rows or more is done in two parts, on two threads or one after the
    other: the same bits either way, and within rounding of the NumPy path."""
    one, two = _two_ways(case)
    np.testing.assert_array_equal(one.net.params, two.net.params)
    for k in one.opt.state:
        np.testing.assert_array_equal(one.opt.state[k], two.opt.state[k])
    ref = _trainer(case, "float32", False)
    _run(ref)
    assert np.abs(two.net.params - ref.net.params).max() / np.abs(ref.net.params).max() < 2e-5


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: no second thread")
def test_the_second_thread_in_a_forked_child_and_beside_another_trainer():
    """A forked child (a sweep's worker) starts its own second thread, and two trainers in
    two Python threads at once share it without waiting on each other (one runs its parts
    one after the other): each gives the bits it gives alone."""
    import multiprocessing
    import threading

    alone, _ = _two_ways({"batch": 32})
    want = alone.net.params.copy()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply(_params_two_threads, ({"batch": 32},))
    np.testing.assert_array_equal(got, want)
    results = [None, None]

    def train(i):
        results[i] = _params_two_threads({"batch": 32})

    threads = [threading.Thread(target=train, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for r in results:
        np.testing.assert_array_equal(r, want)


def _params_two_threads(case: dict) -> np.ndarray:
    tr = _trainer(case, "float32", True)
    tr.plan.step.threads = 2
    _run(tr)
    return tr.net.params.copy()


def test_omp_num_threads_1_asks_for_one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert not _trainer({"batch": 32}, "float32", True).plan.step.split


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "case",
    [
        {"batch": 1, "opt": ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3})},
        {"batch": 3, "residual": [False, True, False], "dropout": [0.3, 0.0, 0.0]},
        {"batch": 4, "weights": True, "clip_value": 0.01},
        {"batch": 2, "opt": ("adamw", {"weight_decay": 0.5}), "weights_alone": True},
        {
            "batch": 3,
            "opt": ("sgd", {"momentum": 0.5, "dampening": 0.3, "weight_decay": 0.05}),
            "weights_alone": True,
        },
        {"batch": 1, "out": "identity", "loss": "mse", "data": "values", "k": 3},
        {"batch": 2, "hidden": ["tanh"], "width": 2100, "rows": 24},
    ],
    ids=[
        "batch 1 nesterov",
        "residual dropout",
        "weights clip value",
        "adamw weights alone",
        "sgd dampening weights alone",
        "regression",
        "rows longer than a chunk",
    ],
)
def test_bp3_in_the_update_gives_the_bits_of_the_gradient_buffer(case, dtype):
    """A batch of up to 4 rows makes each chunk of dC/dW in the update's pass instead of in
    the gradient buffer: the same parameters, state and last gradients, to the bit."""
    fused, apart = _trainer(case, dtype, True), _trainer(case, dtype, True)
    apart.plan.step.c.fuse_update = 0
    _run(fused), _run(apart)
    for got, want in ((fused.net.params, apart.net.params), (fused.net.grads, apart.net.grads)):
        np.testing.assert_array_equal(got, want)
    for k in fused.opt.state:
        np.testing.assert_array_equal(fused.opt.state[k], apart.opt.state[k])


def test_the_gradient_norm_of_a_few_rows_clips_as_the_numpy_path():
    """A batch of up to 4 rows takes each layer's gradient norm from its rows' dot products
    ((a_r . a_q)(delta_r . delta_q) summed): clipping by it trains as the NumPy path does."""
    case = {"batch": 3, "clip_norm": 0.05}
    fused, ref = _trainer(case, "float64", True), _trainer(case, "float64", False)
    got, want = _run(fused), _run(ref)
    assert got[-1]["clipped_batches"] == want[-1]["clipped_batches"] > 0
    for g, w in zip(got, want, strict=True):
        for l in range(3):
            assert g[f"grad_norm_{l}"] == pytest.approx(w[f"grad_norm_{l}"], rel=1e-10)
    np.testing.assert_allclose(fused.net.params, ref.net.params, rtol=1e-10, atol=1e-12)


def _activate_row(name: str, z: np.ndarray) -> np.ndarray:
    """One row through the fused step's activation (z padded to whole vectors)."""
    (fn,) = fast.functions(z.dtype, "activate_row")
    lanes = 64 // z.dtype.itemsize
    padded = np.zeros(-(-len(z) // lanes) * lanes, z.dtype)
    padded[: len(z)] = z
    h = np.full_like(padded, -7.0)  # lanes past n must be left alone
    fn(ACTIVATIONS[name], 0.0, padded.ctypes.data, h.ctypes.data, len(z))
    assert np.all(h[len(z) :] == -7.0)
    return h[: len(z)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softmax"])
def test_the_activations_are_accurate(name, dtype):
    """The fused step's sigmoid, tanh and softmax (in float32 a vector at a time, by its own
    exp) against float64 math: within 4 units in the last place of the exact value over
    -100 .. 100 and near 0 (where tanh's polynomial and the exp formula meet), 0 or 1 where
    the exact value rounds to them, infinities to their limits, and NaN stays NaN."""
    rng = np.random.default_rng(0)
    z = np.concatenate(
        [
            rng.uniform(-100, 100, 3001),
            rng.uniform(-1, 1, 3001),
            rng.uniform(-1e-3, 1e-3, 1000),
            [0.0, -0.0, 0.5493, -0.5493, 0.5494, 87.3, -87.3, 88.8, -88.8, -104.0, 30.0, -30.0],
        ]
    ).astype(dtype)
    x = z.astype(np.float64)
    if name == "softmax":  # of z - max z as the step rounds it (in its dtype), then exactly
        rows = z[:7000].reshape(-1, 10)
        got = np.concatenate([_activate_row(name, row) for row in rows])
        e = np.exp((rows - rows.max(axis=1, keepdims=True)).astype(np.float64))
        want = (e / e.sum(axis=1, keepdims=True)).ravel()
    else:
        got = _activate_row(name, z)
        want = 1 / (1 + np.exp(-x)) if name == "sigmoid" else np.tanh(x)
    ulp = np.spacing(np.abs(want).astype(dtype)).astype(np.float64)
    tiny = np.finfo(dtype).tiny
    # a value below the smallest normal float may be flushed to 0
    err = np.where(np.abs(want) < tiny, 0.0, np.abs(got - want) / np.maximum(ulp, tiny))
    assert err.max() <= 4, (name, z[np.argmax(err)], got[np.argmax(err)], want[np.argmax(err)])
    if name != "softmax":
        ends = np.array([np.inf, -np.inf, np.nan], dtype)
        limits = [1.0, 0.0, np.nan] if name == "sigmoid" else [1.0, -1.0, np.nan]
        np.testing.assert_array_equal(_activate_row(name, ends), np.array(limits, dtype))
    else:
        assert np.isnan(_activate_row(name, np.array([0.0, np.nan, 1.0], dtype))).any()


@pytest.mark.skipif(
    not Path("/proc/cpuinfo").exists() or os.uname().machine != "x86_64",
    reason="reads the x86 CPU's flags from /proc/cpuinfo",
)
def test_the_vectors_are_the_cpus_widest():
    """The fused step's vectors are one register each (the library is built for this CPU):
    64 bytes with AVX-512, 32 with AVX, else 16. A vector type wider than the CPU's is split
    by the compiler and a product's tiles spill: an AVX2 build of 64-byte vectors trained the
    small case 20 times slower than one of 32-byte vectors."""
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    want = 64 if "avx512f" in flags else 32 if "avx" in flags else 16
    got = fast.vector_bytes()
    if got == 16 and want > 16:
        pytest.skip("the library was built for any x86-64 (-march=native failed): SSE2's 16 bytes")
    assert got == want


def test_a_few_rows_that_cancel_keep_their_gradient_norm():
    """Two copies of one input row with other targets: their gradients nearly cancel near
    convergence, and the rows' dot products would leave rounding (even a negative square) in
    place of the norm; the norm is then summed as it is. The record is the NumPy path's."""
    x = np.random.default_rng(0).normal(size=(1, 6))
    X, y = np.repeat(x, 2, axis=0), np.array([[0.0], [1.0]])

    def run(fused):
        net = Network([6, 8, 1], ["tanh", "identity"], dtype="float64")
        net.init("he", np.random.default_rng(1))
        hyper = optimizer_defaults("sgd") | {"lr": 0.05}
        opt = make_optimizer("sgd", net.params, net.grads, **hyper)
        tr = Trainer(
            net,
            opt,
            get_loss("mse"),
            X,
            y,
            task="regression",
            epochs=200,
            batch_size=2,
            shuffle=True,
            rngs=streams(7),
            fused=fused,
        )
        return list(tr.run())

    got, want = run(True), run(False)
    for g, w in zip(got, want, strict=True):
        for l in range(2):
            assert np.isfinite(g[f"grad_norm_{l}"])
            assert g[f"grad_norm_{l}"] == pytest.approx(w[f"grad_norm_{l}"], rel=1e-6, abs=1e-14)
