"""The compiled optimizer kernels (backprop_cli/nn/fast.py): bit-identical to the NumPy path,
built once and cached, and never in the way where they cannot be built."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backprop_cli.nn import fast

from .conftest import make_optimizer

HAVE_CC = fast._compiler() is not None


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
    monkeypatch.setattr(fast.subprocess, "run", None)  # a second build would fail
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
    monkeypatch.setenv("CC", f"{fast._compiler()[0]} -std=c11")
    assert fast.library() is not None, fast.why_not


@pytest.mark.skipif(not (HAVE_CC and fast._cpu()), reason="no C compiler, or -march=native unused")
def test_a_compiler_without_march_native_builds_for_the_default_target(
    fresh, monkeypatch, tmp_path
):
    cc = tmp_path / "picky-cc"
    real = fast._compiler()[0]
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

    monkeypatch.setattr(fast.Path, "home", staticmethod(no_home))
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


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
@pytest.mark.parametrize("config", ["digits.yaml", "spirals-sgd-momentum.yaml", "moons-relu.yaml"])
def test_a_whole_run_gives_the_same_files_either_way(capsys, monkeypatch, config):
    """End to end: the same weights and metrics (but time) with the kernels as with NumPy."""
    from .conftest import CONFIGS, run_cli

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
