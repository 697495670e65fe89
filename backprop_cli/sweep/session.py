"""``open_sweep``: everything a sweep decides before its first trial.

It reads the sweep (a sweep file, or a directory's stored sweep.yaml on ``--resume``,
refusing a changed one), takes the directory's lock, plans which trials to skip, resume or
start, opens the backend, and for a new sweep creates the directory and writes sweep.yaml;
it yields a ready runner (a ``SearchRunner`` for a sweep file with ``search:``) and, at exit,
closes the backend and releases the lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError
from ..store.files import new_run_dir
from .adaptive import SearchRunner
from .backends import make_backend
from .plan import Sweep, load_sweep, read_stored, same_definition
from .runner import SweepRunner, sweep_lock
from .search import require_optuna


@contextlib.contextmanager
def open_sweep(
    path: str | Path,
    *,
    out: str | None = None,
    resume: bool = False,
    fail_fast: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    dask_local: int | None = None,
) -> Iterator[SweepRunner]:
    """A sweep ready to run: ``path`` is a sweep file (its directory: ``out``, else the file's
    output.dir, else runs/sweeps/NAME) or, with ``resume``, a sweep directory.

    Every problem found before the first trial (a bad file or option, a changed sweep, a
    directory in use, no Dask, no Optuna for a search) raises before anything is written.
    The runner yielded has nothing ``remaining`` (and no backend) when a resume finds every
    trial finished.
    """
    sweep, sweep_dir, target, more = _definition(Path(path), out, resume)
    if sweep.search is not None:
        require_optuna(sweep.source)
    with contextlib.ExitStack() as stack:
        if sweep_dir is not None:
            stack.enter_context(sweep_lock(sweep_dir))
        kind = SearchRunner if sweep.search is not None else SweepRunner
        runner = kind(sweep, sweep_dir or Path("."), None, resume=resume, fail_fast=fail_fast)
        if more:  # a search resumed with more trials: sweep.yaml says so from now on
            runner.write_definition()
        runner.plan()
        if sweep_dir is not None and not runner.remaining:
            yield runner  # nothing to resume
            return
        runner.backend = make_backend(workers, scheduler, dask_local, runner.remaining)
        stack.callback(runner.backend.close)
        if sweep_dir is None:
            sweep_dir = new_run_dir(target)
            stack.enter_context(sweep_lock(sweep_dir))
            runner.use_dir(sweep_dir)
            runner.write_definition()
        yield runner


def _definition(path: Path, out: str | None, resume: bool) -> tuple[Sweep, Path | None, str, bool]:
    """The sweep to run, the directory to resume (None: a new sweep), a new sweep's target,
    and whether a resumed search was given more trials than its sweep.yaml says."""
    if path.is_dir():
        if not resume:
            raise ConfigError(
                f"{path}: is a directory; give a sweep file, or --resume to continue the sweep in it"
            )
        if out is not None:
            raise ConfigError("--out: a sweep directory to resume is the directory given")
        return read_stored(path), path, "", False
    sweep = load_sweep(path)
    target = out or sweep.out or f"runs/sweeps/{path.stem}"
    if not resume:
        return sweep, None, target, False
    sweep_dir = Path(target)
    stored = read_stored(sweep_dir)
    part = same_definition(sweep, stored)
    if part:
        raise ConfigError(
            f"{path}: {part}: differs from the sweep in {sweep_dir}, which cannot be "
            f"resumed with a changed sweep; start a new one (without --resume), or resume "
            f"it as it was: backprop sweep {sweep_dir} --resume"
        )
    if stored.search and sweep.search["trials"] != stored.search["trials"]:
        return sweep, sweep_dir, target, True  # the file's budget, from now on
    return stored, sweep_dir, target, False
