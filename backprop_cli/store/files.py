"""Files written so that a crash at any moment leaves the previous version whole, run
directories that are never reused, and directory locks.

Every file is written atomically: a temporary file in the same directory, fsync, rename.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputError

TMP_MARK = ".tmp-"  # in every temporary file's name: .NAME.tmp-PID-RANDOM
UMASK = os.umask(0o022)  # read once, at import (reading it means setting it), and put back
os.umask(UMASK)


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write ``path`` through ``write(f)`` into a temporary file, fsync, then rename over it.

    The temporary file is created new (O_CREAT | O_EXCL, which never follows a symlink) with
    a random name beside ``path``, so nobody who can write to the directory can make it
    overwrite another file; its name carries the PID, so stale ones can be cleaned up.
    """
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(
            prefix=f".{path.name}{TMP_MARK}{os.getpid()}-", dir=path.parent or "."
        )
    except (OSError, ValueError) as e:  # no such directory, no permission, a NUL byte, ...
        reason = getattr(e, "strerror", None) or str(e)
        raise OutputError(
            f"{path}: not written ({reason}); the earlier version, if any, is untouched"
        ) from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes it 0600; a run's files are as any other
        os.replace(tmp, path)
    except (OSError, ValueError) as e:  # a full disk, no permission, ...
        _remove(tmp)
        reason = getattr(e, "strerror", None) or str(e)
        raise OutputError(
            f"{path}: not written ({reason}); the earlier version, if any, is untouched"
        ) from None
    except BaseException:
        _remove(tmp)
        raise
    try:  # make the rename itself durable
        dfd = os.open(tmp.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def remove_stale_temp_files(directory: Path) -> list[Path]:
    """Delete the temporary files in ``directory`` left by processes that no longer run (a
    kill -9 during a write); the ones of a live process are its own. Returns those deleted."""
    removed = []
    for p in Path(directory).glob(f".*{TMP_MARK}*"):
        pid = p.name.split(TMP_MARK, 1)[1].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or not a PID: leave it
    return True


def _remove(tmp: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def json_default(o):
    """NumPy scalars and arrays as their Python values, for json.dumps."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, default=json_default) + "\n")


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    atomic_write(path, lambda f: np.savez(f, **arrays))


def refuse_existing(path: str | Path, overwrite: bool, option: str) -> None:
    """An output file that exists is replaced only with --overwrite (one line otherwise)."""
    if os.path.lexists(path) and not overwrite:  # no OSError
        raise OutputError(f"{path}: already exists; choose another {option} or pass --overwrite")


def write_output(path: str | Path, text: str) -> None:
    """A user's output file: written atomically; through a symlink, the file it points to
    (not the link); a device or pipe (/dev/stdout, a FIFO) written to, never renamed over."""
    target = Path(os.path.realpath(path))
    if os.path.lexists(target) and not os.path.isfile(target):  # neither raises OSError
        try:
            with open(target, "w") as f:
                f.write(text)
        except OSError as e:
            raise OutputError(f"{path}: not written ({e.strerror or e})") from None
    else:
        write_text(target, text)


def json_safe(obj):
    """Plain JSON data: NumPy arrays and scalars as lists and numbers, NaN and Inf as None, in
    nested dicts and lists, so the JSON is valid everywhere (jq included)."""
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def new_run_dir(base: str | Path) -> Path:
    """Create a new run directory and return it: ``base``, else base-2, base-3, ... An existing
    directory is never adopted, even an empty one: it may be another run's, just made."""
    base = Path(base)
    if not base.name:  # ".", "..", "/": a run makes a directory of its own
        raise OutputError(
            f"{base}: a run makes a directory of its own; give a new name (--out runs/NAME)"
        )
    try:
        if base.exists() and not base.is_dir():
            raise OutputError(
                f"{base}: is a file, not a run directory; choose another output.dir or --out"
            )
        for i in range(1, 10_000):
            cand = base if i == 1 else base.with_name(f"{base.name}-{i}")
            try:
                cand.mkdir(parents=True, exist_ok=False)  # exclusive: mkdir fails if it exists
                return cand
            except FileExistsError:
                continue
    except OutputError:
        raise
    except (OSError, ValueError) as e:  # a file in the way, no permission, a NUL byte, ...
        reason = getattr(e, "strerror", None) or str(e)
        raise OutputError(f"{base}: cannot create the run directory ({reason})") from None
    raise OutputError(f"{base}: too many runs with this name; choose another output.dir or --out")


class DirLock:
    """One user at a time of a directory: an exclusive ``flock`` on DIR/NAME (which then holds
    the holder's PID), held until ``release`` or exit and released by the system if the
    process dies (where fcntl exists). ``busy`` is the message when another process holds
    it; ``{pid}`` in it is replaced by the holder's PID."""

    def __init__(self, directory: Path, name: str, busy: str):
        self.path = Path(directory) / name
        self.busy = busy
        self.fd: int | None = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return self
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            self.fd = os.open(self.path, flags, 0o644)
        except OSError as e:
            raise OutputError(
                f"{self.path}: cannot create the lock file ({e.strerror or e})"
            ) from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = self.holder()
            os.close(self.fd)
            self.fd = None
            raise OutputError(f"{self.path.parent}: {self.busy.format(pid=holder)}") from None
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        return self

    def holder(self) -> str:
        """The PID the lock file names (its holder's, while it is held), or '?'."""
        try:
            text = os.pread(self.fd, 32, 0).decode("ascii", "replace").strip()
        except (OSError, TypeError):
            return "?"
        return text if text.isdigit() else "?"

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the lock
            self.fd = None

    def __exit__(self, *exc):
        self.release()
        return False


RUN_LOCK = ".lock"


def lock_run_dir(directory: Path) -> DirLock:
    """Hold DIR/.lock for a run's whole life: no second run (or resume) writes beside it."""
    return DirLock(
        directory,
        RUN_LOCK,
        "another backprop run (PID {pid}) is using this directory; wait for it to finish, or "
        "stop it (Ctrl-C in its terminal, or kill {pid})",
    ).__enter__()
