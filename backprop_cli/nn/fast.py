"""Optional accelerator: the optimizers' updates and relu layers' elementwise work as C loops.

NumPy's Adam step is a dozen passes over the parameters (SGD with momentum four), each
reading and writing whole buffers, and a relu layer costs two passes forward (bias, relu)
and three backward (mask, product, bias gradient); ``_kernels.c`` does the same
float32/float64 operations, in the same order, element by element in one pass, on one
thread (a second would only contend with OpenBLAS for the cores). The results are the NumPy
path's to the last bit: no fused multiply-add, no fast-math (tests/test_fast.py checks it).

The C file is compiled the first time it is needed, with the system's C compiler ($CC,
else cc, gcc or clang), into the user's cache directory ($BACKPROP_CACHE_DIR, else
$XDG_CACHE_HOME/backprop-cli or ~/.cache/backprop-cli), once per source, compiler and CPU,
and loaded with ctypes: nothing to install, no import cost, no compiler in memory. Where
there is no compiler, or it fails (a failure is remembered for a day), or BACKPROP_FAST=0,
NumPy does the work and everything is the same, only slower.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

SOURCE = Path(__file__).with_name("_kernels.c")
# -fno-math-errno lets sqrt vectorize and -fno-trapping-math lets a conditional product
# vectorize (neither changes a result: Python runs with FP traps off); -ffp-contract=off
# keeps a * b + c two roundings, as NumPy computes it.
FLAGS = ["-O3", "-fPIC", "-shared", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]

_lib: ctypes.CDLL | None | bool = None  # None: not tried yet; False: unavailable
why_not = ""  # why the accelerator is unavailable (the compiler's message, say)


def cache_dir() -> Path:
    """$BACKPROP_CACHE_DIR, else $XDG_CACHE_HOME/backprop-cli, else ~/.cache/backprop-cli
    (Path.home() raises where there is no home directory: the build is then skipped)."""
    if os.environ.get("BACKPROP_CACHE_DIR"):
        return Path(os.environ["BACKPROP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "backprop-cli"


def _cpu() -> str:
    """The CPU's model and features (Linux), so a cached library built with -march=native is
    never loaded on a different CPU sharing the home directory; '' where unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""
    keep = ("vendor_id", "model name", "flags", "Features", "CPU implementer", "CPU part")
    seen: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in keep and key not in seen:
            seen[key] = value.strip()
    return "\n".join(f"{k}: {v}" for k, v in sorted(seen.items()))


def _compiler() -> list[str] | None:
    """The compiler command: $CC (which may carry arguments, as in 'ccache gcc'), else the
    first of cc, gcc and clang on the PATH."""
    cc = os.environ.get("CC")
    if cc:
        words = shlex.split(cc)
        exe = shutil.which(words[0]) if words else None
        return [exe, *words[1:]] if exe else None
    exe = next(filter(None, map(shutil.which, ("cc", "gcc", "clang"))), None)
    return [exe] if exe else None


def _check_private(folder: Path) -> None:
    """Refuse a cache directory that someone else could write a library into."""
    if not hasattr(os, "getuid") or not folder.exists():
        return
    st = folder.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise OSError(f"{folder} is not private (owned by another user or writable by others)")


FAILURE_TTL_S = 24 * 3600  # a failed build is not retried by every process for a day


def _build() -> ctypes.CDLL:
    cc = _compiler()
    if cc is None:
        raise OSError("no C compiler ($CC, cc, gcc or clang) on PATH")
    cpu = _cpu()
    source = SOURCE.read_bytes()
    key = hashlib.sha256(
        b"\0".join(
            [source, " ".join(FLAGS).encode(), " ".join(cc).encode(), cpu.encode()]
            + [sys.platform.encode(), platform.machine().encode()]
        )
    ).hexdigest()[:20]
    folder = cache_dir()
    lib_path = folder / f"kernels-{key}.so"
    failed = folder / f"kernels-{key}.failed"
    _check_private(folder)
    if lib_path.exists():
        try:
            return ctypes.CDLL(str(lib_path))
        except OSError:
            pass  # damaged: build it again below
    if failed.exists() and time.time() - failed.stat().st_mtime < FAILURE_TTL_S:
        raise OSError(failed.read_text(errors="replace").strip() or "the last build failed")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    _check_private(folder)
    # -march=native where the CPU is known (and the compiler takes it), else the default target.
    attempts = [[*FLAGS, "-march=native"], FLAGS] if cpu else [FLAGS]
    errors = []
    for flags in attempts:
        # Built under a temporary name and renamed: a sweep's processes may build at once.
        fd, tmp = tempfile.mkstemp(prefix=".kernels-", suffix=".so", dir=folder)
        os.close(fd)
        try:
            try:
                done = subprocess.run(
                    [*cc, *flags, "-o", tmp, str(SOURCE)], capture_output=True, timeout=60
                )
            except subprocess.TimeoutExpired:
                errors.append(f"{' '.join(cc)} did not finish in 60 s")
                break
            if done.returncode == 0:
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, lib_path)
                failed.unlink(missing_ok=True)
                return ctypes.CDLL(str(lib_path))
            message = done.stderr.decode(errors="replace").strip()
            errors.append(f"{' '.join(cc)} failed: {message[:300]}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    try:
        failed.write_text(errors[-1] + "\n")
    except OSError:
        pass  # only a cache of the failure
    raise OSError(errors[-1])


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


def library() -> ctypes.CDLL | None:
    """The compiled kernels, or None where they are off or cannot be built (``why_not`` says why)."""
    global _lib, why_not
    if os.environ.get("BACKPROP_FAST", "1") == "0":
        why_not = "BACKPROP_FAST=0"
        return None
    if _lib is None:
        try:
            _lib = _declare(_build())
        except Exception as e:  # noqa: BLE001 (whatever goes wrong, NumPy does the work)
            _lib, why_not = False, f"{type(e).__name__}: {e}"
    return _lib or None


def functions(dtype: np.dtype, *names: str) -> tuple | None:
    """The C functions ``names`` (adam, sgd, bias_relu, relu_backward_bias) for buffers of
    ``dtype``, or None where NumPy is to do the work."""
    suffix = {"float32": "f32", "float64": "f64"}.get(dtype.name)
    lib = library() if suffix else None
    if lib is None:
        return None
    return tuple(getattr(lib, f"{name}_{suffix}") for name in names)
