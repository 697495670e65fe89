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
first use, ``kernel_check.py`` runs it on a few values against NumPy. Where there
is no compiler, or it fails (a failure is remembered for a day), or a library fails those
checks twice, or BACKPROP_FAST=0, NumPy does the work and everything is the same, only
slower; ``status()`` says which and why.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
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
        # the fused step (fused.py): net, X, targets, weights, order, n, b0, b1, uniforms, work
        fn = getattr(lib, f"train_{suffix}")
        fn.argtypes, fn.restype = [ptr] * 5 + [i64] * 3 + [ptr] * 2, i64
        # one row's activation as the fused step computes it (for tests): act, param, z, h, n
        fn = getattr(lib, f"activate_row_{suffix}")
        fn.argtypes, fn.restype = [i32, ctypes.c_double, ptr, ptr, i64], None
    lib.fused_vector_bytes.argtypes, lib.fused_vector_bytes.restype = [], i32
    return lib


# The check run on a candidate library before first use (``kernel_check.self_test``), set by
# the nn package when it is imported: it runs the optimizers and the network, which use this
# module, so this module cannot import it. Without one, no library is trusted.
_self_test: Callable[[ctypes.CDLL], ctypes.CDLL] | None = None


def check_with(self_test: Callable[[ctypes.CDLL], ctypes.CDLL]) -> None:
    """Use ``self_test`` (``lib`` back, or OSError) on a candidate library before first use."""
    global _self_test
    _self_test = self_test


def _checked(lib: ctypes.CDLL) -> ctypes.CDLL:
    if _self_test is None:
        raise OSError("no self-test to run it against NumPy (backprop_cli.nn was not imported)")
    return _self_test(_declare(lib))


def library() -> ctypes.CDLL | None:
    """The compiled kernels, or None where they are off or cannot be used (``why_not`` says why)."""
    global _lib, why_not, where, built_over
    if os.environ.get("BACKPROP_FAST", "1") == "0":
        why_not = "BACKPROP_FAST=0"
        return None
    with _lock:
        if _lib is None:
            try:
                loaded = kernel_cache.load(_checked)
                _lib, where, built_over = loaded.lib, loaded.path, loaded.refused
            except Exception as e:  # noqa: BLE001 (whatever goes wrong, NumPy does the work)
                _lib, why_not = False, f"{type(e).__name__}: {e}"
        return _lib or None


def will_build() -> bool:
    """Whether the next use of the kernels in this process will compile them (they are not
    loaded yet and none is in the cache): what a status line can say while it runs."""
    if _lib is not None or os.environ.get("BACKPROP_FAST", "1") == "0":
        return False
    try:
        return not kernel_cache.cached()
    except Exception:  # noqa: BLE001 (only a status line depends on it)
        return False


def status() -> str:
    """'in use (the cached library)' or 'not in use (why not)', for ``backprop --version
    --verbose``: the one place a user sees why the kernels are not used, or that the library
    found in the cache was refused (something else wrote it) and this process built it again."""
    if library() is None:
        return f"not in use ({why_not})"
    if built_over:
        return f"in use ({where}; built again, as the one found was refused: {built_over})"
    return f"in use ({where})"


def vector_bytes() -> int | None:
    """The bytes of the fused step's vectors in the library in use (64 with AVX-512, 32 with
    AVX, else 16), or None without one."""
    lib = library()
    return int(lib.fused_vector_bytes()) if lib is not None else None


def functions(dtype: np.dtype, *names: str) -> tuple | None:
    """The C functions ``names`` (adam, sgd, bias_relu, relu_backward_bias, train, activate_row)
    for buffers of ``dtype``, or None where NumPy is to do the work."""
    suffix = {"float32": "f32", "float64": "f64"}.get(dtype.name)
    lib = library() if suffix else None
    if lib is None:
        return None
    return tuple(getattr(lib, f"{name}_{suffix}") for name in names)
