"""The compiled kernels on disk: where they are cached, how they are built, what may be loaded.

``fast.py`` asks :func:`load` for the library. A library in the cache is code this process
will run, so it is loaded only when everything says this user's build wrote it:

- the cache directory is private: owned by the user, writable by no one else;
- the file is opened with O_NOFOLLOW (a symbolic link is refused, never followed) and the
  open descriptor is checked (fstat): a regular file, owned by the user, writable by no one
  else;
- the sha256 of the bytes read from that descriptor is the digest the build wrote beside
  the library (``kernels-KEY.sha256``, renamed into place like the library itself);
- those very bytes, never the cache's file by name again, are what ctypes loads, always by
  an absolute path (``_load_bytes``);
- the caller's ``check`` (fast.py's numeric self-test) passes before anyone uses it.

Anything else, and the library is built again, once; if that fails too, :func:`load` raises
an OSError saying why, and NumPy does the work. The digest is not a signature (whoever can
write to the private directory is this user, who could as well edit this code): it makes
"only what the build wrote" checkable, and the self-test catches what it cannot, such as a
stub with the right symbol names planted with a digest made for it.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import platform
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).with_name("_kernels.c")
# Compiled together into the one library: the elementwise kernels and the fused training step
# (whose body, _fused.h, it includes once per dtype).
SOURCES = (SOURCE, SOURCE.with_name("_fused.c"))
HEADERS = (SOURCE.with_name("_fused.h"),)
# -fno-math-errno lets sqrt vectorize and -fno-trapping-math lets a conditional product
# vectorize (neither changes a result: Python runs with FP traps off); -ffp-contract=off
# keeps a * b + c two roundings, as NumPy computes it.
FLAGS = [
    "-O3",
    "-fPIC",
    "-shared",
    "-pthread",  # the fused step's second thread
    "-fno-math-errno",
    "-fno-trapping-math",
    "-ffp-contract=off",
]
FAILURE_TTL_S = 24 * 3600  # a failed build is not retried by every process for a day
BUILD_TIMEOUT_S = 60.0  # then the compiler is killed, with every process it started
_GONE_WAIT_S = 2.0  # how long to wait for a killed compiler's processes to be gone


def cache_dir() -> Path:
    """$BACKPROP_CACHE_DIR, else $XDG_CACHE_HOME/backprop-cli, else ~/.cache/backprop-cli, made
    absolute: a relative one such as '.' would give ctypes a bare file name, which dlopen
    looks up on the library search path instead of here. (Path.home() raises where there is
    no home directory: the build is then skipped.)"""
    if os.environ.get("BACKPROP_CACHE_DIR"):
        folder = Path(os.environ["BACKPROP_CACHE_DIR"])
    else:
        folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "backprop-cli"
    return Path(os.path.abspath(folder))


def cpu() -> str:
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


def compiler() -> list[str] | None:
    """The compiler command: $CC (which may carry arguments, as in 'ccache gcc'), else the
    first of cc, gcc and clang on the PATH."""
    cc = os.environ.get("CC")
    if cc:
        words = shlex.split(cc)
        exe = shutil.which(words[0]) if words else None
        return [exe, *words[1:]] if exe else None
    exe = next(filter(None, map(shutil.which, ("cc", "gcc", "clang"))), None)
    return [exe] if exe else None


@dataclass(frozen=True)
class Entry:
    """One build's files in the cache: the library, its digest, the note of a failed build."""

    lib: Path
    digest: Path
    failed: Path


def entry(cc: list[str]) -> Entry:
    """The cache's files for this source and these flags built by ``cc`` for this CPU."""
    parts = [p.read_bytes() for p in (*SOURCES, *HEADERS)]
    parts += [" ".join(FLAGS).encode(), " ".join(cc).encode()]
    parts += [cpu().encode(), sys.platform.encode(), platform.machine().encode()]
    key = hashlib.sha256(b"\0".join(parts)).hexdigest()[:20]
    stem = f"kernels-{key}"
    folder = cache_dir()
    return Entry(folder / f"{stem}.so", folder / f"{stem}.sha256", folder / f"{stem}.failed")


@dataclass(frozen=True)
class Loaded:
    """A library in use: the kernels, the cached file, and why the one found there was refused
    and built over ('' where it was used, or there was none)."""

    lib: ctypes.CDLL
    path: Path
    refused: str = ""


def cached() -> bool:
    """Whether :func:`load` would find a library in the cache, or a recent failure it would
    not retry: False where it would start the compiler (a status line says so)."""
    cc = compiler()
    if cc is None:
        return True
    files = entry(cc)
    if os.path.lexists(files.lib):
        return True
    with suppress(OSError):
        return time.time() - files.failed.stat().st_mtime < FAILURE_TTL_S
    return False


def load(check: Callable[[ctypes.CDLL], ctypes.CDLL]) -> Loaded:
    """The kernels, as ``check`` returns them (it raises to refuse them), and where they are.

    The cached library where it passes every test in the module's docstring, else one built
    again (once). Raises OSError saying why where there is none to use.
    """
    cc = compiler()
    if cc is None:
        raise OSError("no C compiler ($CC, cc, gcc or clang) on PATH")
    files = entry(cc)
    folder = files.lib.parent
    _check_private(folder)
    refused = ""
    if os.path.lexists(files.lib):
        try:
            return Loaded(check(_load_bytes(_read_verified(files), folder)), files.lib)
        except Exception as e:  # noqa: BLE001 (whatever is wrong with it, it is built again)
            refused = str(e)
    failed = files.failed
    if failed.exists() and time.time() - failed.stat().st_mtime < FAILURE_TTL_S:
        note = failed.read_text(errors="replace").strip() or "a build failed"
        raise OSError(f"{files.lib} refused: {refused}; {note}" if refused else note)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    _check_private(folder)
    try:
        lib = check(_load_bytes(_build(cc, files), folder))
    except Exception as e:
        with suppress(OSError):  # only a cache of the failure
            files.failed.write_text(f"{e}\n")
        why = f"{files.lib} refused: {refused}; building it again: {e}" if refused else str(e)
        raise OSError(why) from None
    files.failed.unlink(missing_ok=True)
    return Loaded(lib, files.lib, refused)


def _check_private(folder: Path) -> None:
    """Refuse a cache directory that someone else could write a library into."""
    if not hasattr(os, "getuid") or not folder.exists():
        return
    st = folder.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise OSError(f"{folder} is not private (owned by another user or writable by others)")


def _read_own(path: Path) -> bytes:
    """The bytes of ``path`` if it is a regular file of this user's that no one else can write.

    The checks are made on the open descriptor the bytes are then read from, so that what is
    checked is what is read: checking the path first and opening it after would let a file
    be swapped in between. O_NONBLOCK: a FIFO planted under the name must not block the open.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EMLINK):  # O_NOFOLLOW's answer (Linux, BSD)
            raise OSError(f"{path.name} is a symbolic link") from None
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path.name} is not a regular file")
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise OSError(f"{path.name} is owned by another user (uid {st.st_uid})")
        if st.st_mode & 0o022:
            mode = stat.S_IMODE(st.st_mode)
            raise OSError(f"{path.name} is writable by its group or others (mode {mode:o})")
        return f.read()


def _read_verified(files: Entry) -> bytes:
    """The library's bytes, if they and its digest pass ``_read_own`` and match each other."""
    data = _read_own(files.lib)
    try:
        recorded = _read_own(files.digest).decode("ascii", "replace").strip()
    except FileNotFoundError:
        raise OSError(f"no {files.digest.name} beside it: not written by a build") from None
    if hashlib.sha256(data).hexdigest() != recorded:
        raise OSError(f"its sha256 is not the one its build recorded in {files.digest.name}")
    return data


def _load_bytes(data: bytes, folder: Path) -> ctypes.CDLL:
    """``data`` loaded as a library, from a fresh copy in ``folder``, removed once loaded.

    A copy rather than /proc/self/fd/N of the descriptor ``_read_own`` checked (also free of
    a gap between check and load): that path is Linux's only, and glibc's dlopen returns the
    library it loaded before under the same path, so a library rebuilt after a refusal and
    read through the same descriptor number would come back as the refused one. mkstemp
    makes the copy with O_EXCL, mode 0600 and a new random name, in a directory no one else
    can write, so the bytes loaded are the bytes hashed.
    """
    fd, tmp = tempfile.mkstemp(prefix=".load-", suffix=".so", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return ctypes.CDLL(os.path.abspath(tmp))  # a path, never a name to search for
    finally:
        with suppress(OSError):  # Windows keeps a loaded library's file
            os.unlink(tmp)


def _build(cc: list[str], files: Entry) -> bytes:
    """Compile SOURCES into the cache with its digest; the library's bytes. Raises OSError."""
    # -march=native where the CPU is known (and the compiler takes it), else the default target.
    attempts = [[*FLAGS, "-march=native"], FLAGS] if cpu() else [FLAGS]
    error = ""
    for flags in attempts:
        # Built under a temporary name and renamed: a sweep's processes may build at once.
        fd, tmp = tempfile.mkstemp(prefix=".kernels-", suffix=".so", dir=files.lib.parent)
        os.close(fd)
        try:
            error = _run_compiler(cc, [*flags, "-o", tmp, *map(str, SOURCES)])
            if not error:
                return _install(Path(tmp), files)
        except TimeoutError as e:
            error = str(e)
            break
        finally:
            with suppress(FileNotFoundError):
                os.unlink(tmp)
    raise OSError(error)


def _run_compiler(cc: list[str], args: list[str]) -> str:
    """Run ``cc`` on ``args``: '' where it succeeds, else its message; TimeoutError after
    BUILD_TIMEOUT_S. It runs in a session of its own, so that a timeout kills its whole
    process group: the driver killed alone would leave what it started (cc1, as, ld, or
    whatever a wrapper forked) to write the output after the caller removed it."""
    proc = subprocess.Popen(
        [*cc, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=BUILD_TIMEOUT_S)
    except BaseException as e:
        # A Ctrl-C too: in a session of its own, the compiler did not get the terminal's SIGINT.
        _kill_group(proc)
        if isinstance(e, subprocess.TimeoutExpired):
            raise TimeoutError(f"{' '.join(cc)} did not finish in {BUILD_TIMEOUT_S:g} s") from None
        raise
    if proc.returncode == 0:
        return ""
    return f"{' '.join(cc)} failed: {err.decode(errors='replace').strip()[:300]}"


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the process group ``proc`` leads and wait until it is gone (a while at most)."""
    killpg = getattr(os, "killpg", None)
    if killpg is None:
        proc.kill()
    else:
        with suppress(ProcessLookupError):
            killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()  # not communicate(): a process outside the group may hold the pipe
    # The group's other members are not our children to wait for, and one may still be
    # finishing a system call (a write of the output) until it is gone.
    deadline = time.monotonic() + _GONE_WAIT_S
    while killpg is not None and _group_runs(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _group_runs(pgid: int) -> bool:
    """Whether a process of group ``pgid`` may still run. Killed, a compiler's children wait
    as zombies until init reaps them (in a container, maybe never): on Linux, /proc tells
    them apart; elsewhere any process of the group counts."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if not os.path.exists("/proc/self/stat"):
        return True
    for path in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, ValueError, IndexError):  # gone meanwhile
            text = path.read_text()
            state, _, group = text[text.rindex(")") + 2 :].split()[:3]  # after "pid (comm) "
            if int(group) == pgid and state not in "ZX":
                return True
    return False


def _install(built: Path, files: Entry) -> bytes:
    """Put the built library and its digest in place, each renamed from a temporary name; the
    library's bytes, read once and hashed (these are what the caller loads).

    The digest goes first: a reader in between sees it beside the library that was there
    before, which it refuses unless the bytes are the same, and builds again. They are the
    same for the same inputs (the compiler is deterministic), so a sweep's processes
    building at once agree whichever renames come last.
    """
    os.chmod(built, 0o644)  # the linker's mode follows the umask, which may let the group write
    data = _read_own(built)
    _write_atomically(files.digest, f"{hashlib.sha256(data).hexdigest()}\n".encode())
    with open(built, "rb") as f:
        os.fsync(f.fileno())
    os.replace(built, files.lib)
    return data


def _write_atomically(path: Path, data: bytes) -> None:
    """``data`` into ``path`` through a temporary file in the same directory, fsynced, renamed."""
    fd, tmp = tempfile.mkstemp(prefix=".kernels-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
