"""The compiled optimizer kernels (backprop_cli/nn/fast.py): bit-identical to the NumPy path,
built once and cached, and never in the way where they cannot be built."""

from __future__ import annotations

import contextlib
import csv
import ctypes
import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from backprop_cli.nn import fast, kernel_cache

from .conftest import make_optimizer

HAVE_CC = kernel_cache.compiler() is not None


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """fast.py as if first imported, with its cache in tmp_path/cache."""
    monkeypatch.setattr(fast, "_lib", None)
    monkeypatch.setattr(fast, "why_not", "")
    monkeypatch.setenv("BACKPROP_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def awkward(rng, n, dtype):
    """Values that catch a different operation order: a wide range of magnitudes, zeros of
    both signs, subnormals, and a few Inf and NaN."""
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)
    special = [0.0, -0.0, np.finfo(dtype).tiny / 3, np.inf, -np.inf, np.nan]
    x[: len(special)] = special[:n]
    x = x.astype(dtype)
    if n > len(special):
        x[len(special)] = -x[len(special) - 1]  # a NaN with its sign bit set
    return x


def bits(a):
    """The bit patterns, with every NaN as the one quiet NaN: which NaN an operation on NaNs
    returns (sign, payload) differs between NumPy's SIMD loops and the C loops, and is not
    a result anyone can read."""
    a = np.where(np.isnan(a), a.dtype.type(np.nan), a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("name", "hyper"),
    [
        ("adam", {}),
        ("adam", {"weight_decay": 0.01, "betas": (0.8, 0.9), "eps": 1e-6}),
        ("adamw", {}),
        ("adamw", {"weight_decay": 0.1}),
        ("sgd", {}),
        ("sgd", {"weight_decay": 0.01}),
        ("sgd", {"momentum": 0.9}),
        ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
        ("sgd", {"momentum": 0.8, "dampening": 0.3}),
    ],
)
def test_kernel_is_bit_identical_to_numpy(monkeypatch, dtype, name, hyper):
    rng = np.random.default_rng(0)
    n = 1003  # not a multiple of any vector width: the loops' tails are covered
    p0 = awkward(rng, n, dtype)
    grads = [awkward(rng, n, dtype) for _ in range(6)]
    results = []
    for flag in ("1", "0"):
        monkeypatch.setenv("BACKPROP_FAST", flag)
        p, g = p0.copy(), np.empty_like(p0)
        opt = make_optimizer(name, p, g, lr=1e-3, **hyper)
        assert (opt._kernel is not None) == (flag == "1"), fast.why_not
        with np.errstate(all="ignore"):
            for gi in grads:
                g[:] = gi
                opt.step()
        results.append((p, *(opt.state[k] for k in opt.state_names)))
    for ours, numpy_s in zip(*results, strict=True):
        np.testing.assert_array_equal(bits(ours), bits(numpy_s))


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_built_once_then_loaded_from_the_cache(fresh, monkeypatch):
    assert fast.library() is not None, fast.why_not
    built = list(fresh.glob("kernels-*.so"))
    assert len(built) == 1
    assert not list(fresh.glob(".kernels-*"))  # no temporary left behind
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700
    mtime = built[0].stat().st_mtime_ns
    monkeypatch.setattr(fast, "_lib", None)
    monkeypatch.setattr(kernel_cache.subprocess, "Popen", None)  # a second build would fail
    assert fast.library() is not None
    assert built[0].stat().st_mtime_ns == mtime


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_a_damaged_cached_library_is_rebuilt(fresh):
    assert fast.library() is not None, fast.why_not
    (built,) = fresh.glob("kernels-*.so")
    damaged = built.with_name("damaged")
    damaged.write_bytes(b"not a shared library")
    os.replace(damaged, built)  # a new file: this process keeps its mapping of the old one
    # A new process, as the next run would be (this one has the library loaded already).
    code = "from backprop_cli.nn import fast; print(fast.library() is not None, fast.why_not)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "True", out.stdout
    assert built.read_bytes()[:4] == b"\x7fELF" or sys.platform != "linux"


def test_without_a_compiler_numpy_does_the_work(fresh, monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    p, g = np.ones(4), np.full(4, 0.5)
    opt = make_optimizer("adam", p, g, lr=0.1)
    assert opt._kernel is None
    assert fast.why_not
    opt.step()
    np.testing.assert_allclose(p, 0.9)  # Adam's first step moves each weight by lr


def test_a_failing_compiler_leaves_nothing_but_a_note_and_is_not_retried(
    fresh, monkeypatch, tmp_path
):
    cc = tmp_path / "bad-cc"
    calls = tmp_path / "calls"
    # Says why in bytes that are not UTF-8, as a compiler in another locale might.
    cc.write_text(
        f"#!/bin/sh\necho x >> {calls}\nprintf 'cc: option \\351trang\\350re' >&2\nexit 1\n"
    )
    cc.chmod(0o755)
    monkeypatch.setenv("CC", str(cc))
    assert fast.library() is None
    assert "option" in fast.why_not and "\ufffd" in fast.why_not
    assert [p.suffix for p in fresh.iterdir()] == [".failed"]  # no library, no temporary
    tries = len(calls.read_text().split())
    monkeypatch.setattr(fast, "_lib", None)  # as a new process would
    assert fast.library() is None
    assert len(calls.read_text().split()) == tries  # the note answered, not the compiler


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_cc_may_carry_arguments(fresh, monkeypatch):
    monkeypatch.setenv("CC", f"{kernel_cache.compiler()[0]} -std=c11")
    assert fast.library() is not None, fast.why_not


@pytest.mark.skipif(
    not (HAVE_CC and kernel_cache.cpu()), reason="no C compiler, or -march=native unused"
)
def test_a_compiler_without_march_native_builds_for_the_default_target(
    fresh, monkeypatch, tmp_path
):
    cc = tmp_path / "picky-cc"
    real = kernel_cache.compiler()[0]
    cc.write_text(
        f'#!/bin/sh\nfor a in "$@"; do [ "$a" = -march=native ] && exit 1; done\nexec {real} "$@"\n'
    )
    cc.chmod(0o755)
    monkeypatch.setenv("CC", str(cc))
    assert fast.library() is not None, fast.why_not


def test_no_home_directory_means_numpy_not_a_crash(fresh, monkeypatch):
    monkeypatch.delenv("BACKPROP_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(kernel_cache.Path, "home", staticmethod(no_home))
    assert fast.library() is None
    assert "home directory" in fast.why_not
    p = np.ones(3)
    make_optimizer("adam", p, np.ones(3), lr=0.5).step()
    np.testing.assert_allclose(p, 0.5)


def test_backprop_fast_0_turns_it_off(fresh, monkeypatch):
    monkeypatch.setenv("BACKPROP_FAST", "0")
    assert fast.library() is None
    assert make_optimizer("sgd", np.ones(3), np.ones(3))._kernel is None
    assert not fresh.exists()  # nothing built


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_buffers_the_kernel_cannot_take_use_numpy():
    assert make_optimizer("adam", np.ones(4), np.ones(4))._kernel is not None  # the control
    p = np.ones((4, 4))[:, 0]  # not contiguous
    assert make_optimizer("adam", p, np.ones(4))._kernel is None
    assert make_optimizer("adam", np.ones(4, np.float16), np.ones(4, np.float16))._kernel is None
    # sizes that differ: NumPy raises, where a loop over params.size would read past grads
    opt = make_optimizer("sgd", np.ones(8), np.ones(4))
    assert opt._kernel is None
    with pytest.raises(ValueError):
        opt.step()
    read_only = np.frombuffer(bytes(32), dtype=np.float64)
    assert make_optimizer("sgd", read_only, np.ones(4))._kernel is None


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_numpy_scalar_hyperparameters_give_the_same_bits(monkeypatch, name):
    """np.float64 hyperparameters on float32 buffers: NumPy would compute in float64 (NEP 50)
    unless they are made Python floats, as the optimizers do."""
    rng = np.random.default_rng(0)
    p0, g = rng.random(4099).astype(np.float32), rng.standard_normal(4099).astype(np.float32)
    hyper = {"lr": np.float64(0.1) / 3, "weight_decay": np.float64(0.01) / 3}
    if name == "sgd":
        hyper["momentum"] = np.float64(0.9) / 1.1
    results = []
    for flag in ("1", "0"):
        monkeypatch.setenv("BACKPROP_FAST", flag)
        p = p0.copy()
        opt = make_optimizer(name, p, g, **hyper)
        assert (opt._kernel is not None) == (flag == "1")
        for _ in range(3):
            opt.step()
        results.append(p)
    np.testing.assert_array_equal(bits(results[0]), bits(results[1]))


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_an_option_that_rounds_to_zero_in_float32_uses_numpy():
    p, g = np.ones(4, np.float32), np.ones(4, np.float32)
    assert make_optimizer("sgd", p, g, momentum=1e-46)._kernel is None
    assert make_optimizer("adam", p, g, weight_decay=1e-46)._kernel is None
    assert make_optimizer("sgd", p, g, momentum=1e-30)._kernel is not None


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("acts", "dropout", "residual"),
    [
        (["relu", "relu", "softmax"], None, None),
        (["relu", "relu", "relu", "identity"], [0.0, 0.3, 0.0, 0.0], [False, True, False, False]),
        (["tanh", "relu", "relu", "sigmoid"], [0.2, 0.0, 0.0, 0.0], [False, False, True, False]),
        (["relu", "relu", "relu", "softmax"], None, None),  # with a 1-unit layer, below
    ],
)
@pytest.mark.parametrize("n", [1, 7, 64])
def test_relu_layers_are_bit_identical_to_numpy(monkeypatch, dtype, acts, dropout, residual, n):
    """The compiled bias + relu forward and relu backward + bias gradient give NumPy's
    activations and gradients to the last bit, dropout and residual layers included."""
    from backprop_cli.nn import Network, get_loss

    rng = np.random.default_rng(1)
    sizes = [5] + [6] * (len(acts) - 1) + [3]
    if acts == ["relu", "relu", "relu", "softmax"]:
        sizes[2] = 1  # one unit: its bias gradient is NumPy's pairwise sum of a column
    loss = get_loss("cross_entropy" if acts[-1] == "softmax" else "mse")
    X = awkward(rng, n * 5, dtype).reshape(n, 5)
    X[np.isnan(X) | np.isinf(X)] = 1.0  # finite inputs; the weights bring the extremes
    X[0, :2] = [0.0, -0.0]
    y = rng.integers(0, 3, n) if acts[-1] == "softmax" else rng.random((n, 3)).astype(dtype)
    out = []
    for flag in ("1", "0"):
        monkeypatch.setenv("BACKPROP_FAST", flag)
        net = Network(sizes, acts, dtype=dtype, dropout=dropout, residual=residual)
        net.init("he", np.random.default_rng(2))
        net.params[::7] = 0.0  # exact zeros in z: relu's kink
        net.sample_masks(n, np.random.default_rng(3))
        with np.errstate(all="ignore"):
            value = net.loss_and_grad(X, y, loss, train=True)
        buf = net._buffers[n]
        assert (buf.bias_relu[0] is not None) == (flag == "1" and acts[0] == "relu")
        out.append([np.array(value, dtype=np.float64), net.grads.copy(), *buf.z, *buf.h, *buf.a])
    for ours, numpy_s in zip(*out, strict=True):
        np.testing.assert_array_equal(bits(ours), bits(numpy_s))


@pytest.mark.skipif(not (HAVE_CC and hasattr(os, "getuid")), reason="no C compiler or POSIX")
def test_a_cache_directory_others_can_write_is_not_used(fresh):
    fresh.mkdir()
    fresh.chmod(0o777)
    assert fast.library() is None
    assert "not private" in fast.why_not
    assert list(fresh.iterdir()) == []


# ------------------------------------------------------------------ what may be loaded

KERNEL_NAMES = [
    f"{name}_{suffix}"
    for name in ("adam", "sgd", "bias_relu", "relu_backward_bias", "train", "activate_row")
    for suffix in ("f32", "f64")
] + ["fused_vector_bytes"]


@pytest.fixture
def stub(tmp_path):
    """What someone would plant: a library with the kernels' names whose functions do nothing
    and whose constructor, run when it is loaded, leaves the file tmp_path/"ran"."""
    marker = tmp_path / "ran"
    source = tmp_path / "stub.c"
    source.write_text(
        "#include <stdio.h>\n"
        "__attribute__((constructor)) static void planted(void) {\n"
        f'    FILE *f = fopen({json.dumps(str(marker))}, "w");\n'
        "    if (f) fclose(f);\n"
        "}\n" + "".join(f"void {name}(void) {{}}\n" for name in KERNEL_NAMES)
    )
    lib = tmp_path / "stub.so"
    cc = kernel_cache.compiler()
    subprocess.run([*cc, "-shared", "-fPIC", "-o", lib, source], check=True, capture_output=True)
    return lib, marker


def failing_cc(tmp_path, monkeypatch):
    """$CC set to a compiler that always fails: a refused library stays refused, not rebuilt."""
    cc = tmp_path / "failing-cc"
    cc.write_text("#!/bin/sh\necho 'cc: cannot build today' >&2\nexit 1\n")
    cc.chmod(0o755)
    monkeypatch.setenv("CC", str(cc))


def plant(stub, fresh, how, monkeypatch):
    """The stub put in the cache under the name the build would use, with a digest made for it
    (a digest that matches, so that only the check under test can refuse it) but as ``how``
    says; the cache's files."""
    files = kernel_cache.entry(kernel_cache.compiler())
    fresh.mkdir(mode=0o700)
    if how == "symlink":
        files.lib.symlink_to(stub)
    else:
        files.lib.write_bytes(stub.read_bytes())
        files.lib.chmod({"group-writable": 0o664, "world-writable": 0o646}.get(how, 0o644))
    digest = hashlib.sha256(stub.read_bytes()).hexdigest()
    if how == "wrong digest":
        digest = hashlib.sha256(b"something else").hexdigest()
    if how != "no digest":
        files.digest.write_text(digest + "\n")
    if how == "other owner":  # as it would be after a chown, which needs root
        planted, real_fstat = files.lib.stat().st_ino, os.fstat

        def fstat(fd):
            st = real_fstat(fd)
            if st.st_ino != planted:
                return st
            return os.stat_result((*st[:4], st.st_uid + 1, *st[5:10]))

        monkeypatch.setattr(os, "fstat", fstat)
    return files


PLANTED = [
    ("symlink", "is a symbolic link"),
    ("group-writable", "writable by its group or others (mode 664)"),
    ("world-writable", "writable by its group or others (mode 646)"),
    ("other owner", "is owned by another user"),
    ("no digest", ".sha256 beside it: not written by a build"),
    ("wrong digest", "its sha256 is not the one its build recorded"),
    ("forged digest", "failed the self-test: its adam step in float32 is not NumPy's"),
]


@pytest.mark.skipif(not (HAVE_CC and hasattr(os, "getuid")), reason="no C compiler or POSIX")
@pytest.mark.parametrize(("how", "reason"), PLANTED)
def test_a_planted_library_is_refused_and_numpy_does_the_work(
    fresh, stub, monkeypatch, tmp_path, how, reason
):
    """With no compiler to build it again, a library the build did not write is not used, and
    why_not (and so ``backprop --version --verbose``) says why. Only the forged digest, which
    the file checks cannot tell from the build's, gets as far as loading: its constructor
    runs, and the self-test refuses it."""
    failing_cc(tmp_path, monkeypatch)
    lib, ran = stub
    files = plant(lib, fresh, how, monkeypatch)
    assert fast.library() is None
    assert f"{files.lib} refused" in fast.why_not and reason in fast.why_not, fast.why_not
    assert "cannot build today" in fast.why_not  # and the rebuild's failure
    assert ran.exists() == (how == "forged digest")
    assert fast.status() == f"not in use ({fast.why_not})"
    p, g = np.ones(3), np.ones(3)
    opt = make_optimizer("sgd", p, g, lr=0.5)
    opt.step()
    assert not opt.compiled
    np.testing.assert_array_equal(p, 0.5)


@pytest.mark.skipif(not (HAVE_CC and hasattr(os, "getuid")), reason="no C compiler or POSIX")
@pytest.mark.parametrize(("how", "reason"), PLANTED)
def test_a_planted_library_is_replaced_by_a_build(fresh, stub, monkeypatch, how, reason):
    """With a compiler, the planted file is built over (a symlink replaced, not followed) and
    the build is used; the stub is never loaded but for the forged digest (the self-test)."""
    lib, ran = stub
    before = lib.read_bytes()
    files = plant(lib, fresh, how, monkeypatch)
    assert fast.library() is not None, fast.why_not
    built_over = f"in use ({files.lib}; built again, as the one found was refused: "
    assert fast.status().startswith(built_over) and reason in fast.status()
    assert ran.exists() == (how == "forged digest")
    assert lib.read_bytes() == before  # a symlink's target is left alone
    st = files.lib.lstat()
    assert stat.S_ISREG(st.st_mode) and not st.st_mode & 0o022
    built = files.lib.read_bytes()
    assert built != before
    assert files.digest.read_text().strip() == hashlib.sha256(built).hexdigest()
    assert sorted(p.name for p in fresh.iterdir()) == [files.digest.name, files.lib.name]


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_a_relative_cache_directory_is_loaded_from_by_absolute_path(fresh, monkeypatch):
    """BACKPROP_CACHE_DIR=. once gave ctypes the bare name kernels-KEY.so, which dlopen looks
    up on the library search path (LD_LIBRARY_PATH, the system's directories), not in '.'."""
    fresh.mkdir(mode=0o700)
    monkeypatch.chdir(fresh)
    monkeypatch.setenv("BACKPROP_CACHE_DIR", ".")
    loaded, real = [], ctypes.CDLL

    def spy(name, *args, **kwargs):
        loaded.append(str(name))
        return real(name, *args, **kwargs)

    monkeypatch.setattr(ctypes, "CDLL", spy)
    assert fast.library() is not None, fast.why_not
    assert fast.where == fresh / kernel_cache.entry(kernel_cache.compiler()).lib.name
    assert loaded and all(os.path.isabs(name) for name in loaded), loaded
    assert all(Path(name).parent == fresh for name in loaded)


def hanging_cc(tmp_path, monkeypatch):
    """$CC set to a compiler that forks a child to write its output a second later, then
    hangs; the file the child also writes outside the cache, which says whether it lived."""
    late = tmp_path / "late"
    cc = tmp_path / "hanging-cc"
    cc.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do [ "$prev" = -o ] && out=$a; prev=$a; done\n'
        f'(sleep 1; echo late > "$out"; echo late > {late}) </dev/null >/dev/null 2>&1 &\n'
        "exec sleep 30\n"
    )
    cc.chmod(0o755)
    monkeypatch.setenv("CC", str(cc))
    return late


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="no process groups")
def test_a_hanging_compiler_is_killed_with_everything_it_started(fresh, monkeypatch, tmp_path):
    """On the timeout the compiler's whole process group is killed, so no file appears in the
    cache afterwards (the driver alone killed, its child would write it after the temporary
    was removed)."""
    late = hanging_cc(tmp_path, monkeypatch)
    monkeypatch.setattr(kernel_cache, "BUILD_TIMEOUT_S", 0.3)
    start = time.monotonic()
    assert fast.library() is None
    assert time.monotonic() - start < 5
    assert "did not finish in 0.3 s" in fast.why_not
    time.sleep(1.5)  # past the time the child would have written
    assert not late.exists()
    assert [p.suffix for p in fresh.iterdir()] == [".failed"]


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="no process groups")
def test_an_interrupted_build_kills_the_compiler_too(fresh, monkeypatch, tmp_path):
    """Ctrl-C during the build: the compiler, in a session of its own, does not get the
    terminal's SIGINT, so it is killed with its group before the interrupt goes on."""
    late = hanging_cc(tmp_path, monkeypatch)
    communicate = subprocess.Popen.communicate

    def interrupted(self, *args, **kwargs):
        with contextlib.suppress(subprocess.TimeoutExpired):
            communicate(self, timeout=0.3)
        raise KeyboardInterrupt

    monkeypatch.setattr(subprocess.Popen, "communicate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fast.library()
    time.sleep(1.5)
    assert not late.exists()
    assert list(fresh.iterdir()) == []  # no library, no temporary, no note of a failure


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
@pytest.mark.parametrize("config", ["digits.yaml", "spirals-sgd-momentum.yaml", "moons-relu.yaml"])
def test_a_whole_run_gives_the_same_files_either_way(capsys, monkeypatch, config):
    """End to end: the same weights and metrics (but time) with the kernels as with NumPy
    (the elementwise kernels; the fused step, not bit for bit, is tests/test_fused.py's)."""
    from .conftest import CONFIGS, run_cli

    monkeypatch.setenv("BACKPROP_FUSED", "0")
    for flag, out in (("1", "compiled"), ("0", "numpy")):
        monkeypatch.setenv("BACKPROP_FAST", flag)
        argv = ["train", CONFIGS / config, "-q", "--out", out, "--set", "training.epochs=5"]
        assert run_cli(capsys, *argv)[0] == 0
    summary = {d: json.loads(Path(d, "summary.json").read_text()) for d in ("compiled", "numpy")}
    assert summary["compiled"]["optimizer_update"] == "compiled"
    assert summary["numpy"]["optimizer_update"] == "numpy"
    with np.load("compiled/weights.npz") as a, np.load("numpy/weights.npz") as b:
        for k in a.files:
            if k != "spec":
                np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    rows = {}
    for d in ("compiled", "numpy"):
        with open(f"{d}/metrics.csv") as f:
            rows[d] = [{k: v for k, v in r.items() if k != "time_s"} for r in csv.DictReader(f)]
    assert rows["compiled"] == rows["numpy"]
