"""Optional accelerator: the optimizers' updates and relu layers' elementwise work as C loops.

NumPy's Adam step is a dozen passes over the parameters (SGD with momentum four), each
reading and writing whole buffers, and a relu layer costs two passes forward (bias, relu)
and three backward (mask, product, bias gradient); ``_kernels.c`` does the same
float32/float64 operations, in the same order, element by element in one pass, on one
thread (a second would only contend with OpenBLAS for the cores). The results are the NumPy
path's to the last bit: no fused multiply-add, no fast-math (tests/test_fast.py checks it).

The C file is compiled the first time it is needed, with the system's C compiler ($CC,
else cc, gcc or clang), into the user's cache directory, once per source, compiler and CPU,
and loaded with ctypes: nothing to install, no import cost, no compiler in memory.
``kernel_cache.py`` builds it and loads only a library this user's build wrote; before
first use, this module runs it on a few values against NumPy (``_self_test``). Where there
is no compiler, or it fails (a failure is remembered for a day), or a library fails those
checks twice, or BACKPROP_FAST=0, NumPy does the work and everything is the same, only
slower; ``status()`` says which and why.
"""

from __future__ import annotations

import ctypes
import os
import threading
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from . import kernel_cache

if TYPE_CHECKING:
    import numpy as np

_lib: ctypes.CDLL | None | bool = None  # None: not tried yet; False: unavailable
why_not = ""  # why the accelerator is unavailable (the compiler's message, say)
where: Path | None = None  # the cached library in use
built_over = ""  # why this process built over the cached library it found ('' if it did not)
# Held while the library is looked for: the self-test sets ``_lib`` to the candidate for a
# moment, which no other thread may take for a library that passed it.
_lock = threading.RLock()


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    ptr, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32
    for suffix, real in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
        for name, argtypes in (
            ("adam", [ptr, ptr, ptr, ptr, i64] + [real] * 8),
            ("sgd", [ptr, ptr, ptr, i64] + [real] * 4 + [i32, i32]),
            ("bias_relu", [ptr, ptr, ptr, i64, i64]),
            ("relu_backward_bias", [ptr, ptr, ptr, i64, i64]),
        ):
            fn = getattr(lib, f"{name}_{suffix}")
            fn.argtypes, fn.restype = argtypes, None
    return lib


# The self-test's optimizer steps: every kernel variant the relu pass does not cover.
_STEPS = {
    "adam": {"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01, "amsgrad": False},
    "adamw": {"lr": 0.1, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1, "amsgrad": False},
    "sgd": {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.01, "nesterov": True},
}


def _optimizer_steps(name: str, dtype: np.dtype) -> list[np.ndarray]:
    """Parameters and state after two steps of optimizer ``name`` on a few values."""
    import numpy as np

    from .optimizers import make_optimizer

    p = np.array([0.5, -1.5, 0.0, 2.25, -3.0, 1e-3, 7.0], dtype)
    g = np.array([0.25, -0.5, 1.0, 0.0, 2.0, -1e-4, 3.5], dtype)
    opt = make_optimizer(name, p, g, **_STEPS[name])
    for _ in range(2):  # the first step and one after it (SGD's momentum differs)
        opt.step()
    return [p, *opt.state.values()]


def _relu_pass(dtype: np.dtype) -> list[np.ndarray]:
    """Output and gradients of a forward and backward pass through a small relu network."""
    import numpy as np

    from .losses import get_loss
    from .network import Network

    net = Network([2, 3, 2], ["relu", "identity"], dtype=dtype)
    net.params[:] = np.linspace(-1.0, 1.0, net.params.size)  # some of z negative, one zero
    X = np.array([[0.5, -1.0], [2.0, 0.25], [0.0, 0.0]], dtype)
    y = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, -0.5]], dtype)
    net.loss_and_grad(X, y, get_loss("mse"))
    return [net.output().copy(), net.grads.copy()]


def _self_test(lib: ctypes.CDLL) -> ctypes.CDLL:
    """``lib`` if its kernels give NumPy's bits on a few values, else OSError.

    The cache's checks say this user's build wrote the file; this says it computes what
    NumPy computes, before a run trusts it: a stub with the right symbol names (and a digest
    made for it) or a compiler that does not keep to IEEE order fails here. The reference is
    the optimizers' and the network's own NumPy path, run with ``_lib`` set to False, against
    the same calls with ``_lib`` set to the candidate (under ``_lock``, held by ``library``).
    """
    import numpy as np

    global _lib
    cases = [(f"{name} step", partial(_optimizer_steps, name)) for name in _STEPS]
    cases.append(("relu layer", _relu_pass))
    try:
        for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
            for what, run in cases:
                results = []
                for candidate in (lib, False):
                    _lib = candidate
                    results.append([a.tobytes() for a in run(dtype)])
                if results[0] != results[1]:
                    raise OSError(f"failed the self-test: its {what} in {dtype} is not NumPy's")
    finally:
        _lib = None
    return lib


def library() -> ctypes.CDLL | None:
    """The compiled kernels, or None where they are off or cannot be used (``why_not`` says why)."""
    global _lib, why_not, where, built_over
    if os.environ.get("BACKPROP_FAST", "1") == "0":
        why_not = "BACKPROP_FAST=0"
        return None
    with _lock:
        if _lib is None:
            try:
                loaded = kernel_cache.load(lambda lib: _self_test(_declare(lib)))
                _lib, where, built_over = loaded.lib, loaded.path, loaded.refused
            except Exception as e:  # noqa: BLE001 (whatever goes wrong, NumPy does the work)
                _lib, why_not = False, f"{type(e).__name__}: {e}"
        return _lib or None


def status() -> str:
    """'in use (the cached library)' or 'not in use (why not)', for ``backprop --version
    --verbose``: the one place a user sees why the kernels are not used, or that the library
    found in the cache was refused (something else wrote it) and this process built it again."""
    if library() is None:
        return f"not in use ({why_not})"
    if built_over:
        return f"in use ({where}; built again, as the one found was refused: {built_over})"
    return f"in use ({where})"


def functions(dtype: np.dtype, *names: str) -> tuple | None:
    """The C functions ``names`` (adam, sgd, bias_relu, relu_backward_bias) for buffers of
    ``dtype``, or None where NumPy is to do the work."""
    suffix = {"float32": "f32", "float64": "f64"}.get(dtype.name)
    lib = library() if suffix else None
    if lib is None:
        return None
    return tuple(getattr(lib, f"{name}_{suffix}") for name in names)
