"""Sweeps: many configs from one base, each an ordinary run, on a process pool or Dask.

A sweep file names a base config, fixed overrides (``set``), a ``grid`` (the cartesian
product of value lists) and ``random`` draws (``samples`` of them, from a ``seed``), or a
``search``: an Optuna study that asks for each trial's values as the sweep runs, and prunes
the unpromising trials. Each trial is the base config plus ``set`` plus its own values,
validated; it trains as an ordinary run (``training.Run``) in its own directory,
SWEEP_DIR/trial-NNN.

    spec      the sweep file as pydantic models, and its one-line errors
    plan      the trials: load_sweep (a sweep file), read_stored (a sweep directory's copy)
    worker    run_trial, in a worker process: one trial, stopped by the sweep's stop file
    results   what the parent knows of each trial; sweep_summary.csv
    backends  the local process pool and Dask
    runner    SweepRunner: runs the trials on a backend and yields events
    search    the search's Optuna side: its space, sampler, pruner and study (study.journal)
    adaptive  SearchRunner: a sweep that asks Optuna for each trial, and tells it the result
    session   open_sweep: everything before the first trial

Workers do not stream epochs back: each trial writes its run directory as it trains, and
the runner reads the running trials' metrics.csv to report their progress. ``--resume``
continues interrupted trials from their checkpoints, runs the ones never started, and skips
finished ones.

The names below are imported on first use: a spawned worker imports ``sweep.worker``, which
must set its thread limits before NumPy is loaded, so this package imports nothing at
start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Each public name and the module it lives in.
_HOMES = {
    "spec": ("DISTRIBUTIONS", "METRICS", "SWEEP_FILE", "StoredSweep", "SweepFile", "describe",
             "metric_mode", "parse_sweep", "show_value"),
    "plan": ("Sweep", "Trial", "load_sweep", "read_stored", "same_definition"),
    "worker": ("limit_threads", "run_trial"),
    "results": ("TrialState", "result_from_dir", "summary_csv", "trial_row"),
    "backends": ("DaskBackend", "LocalBackend", "make_backend", "usable_cores"),
    "runner": ("SUMMARY_FILE", "SweepRunner", "sweep_lock"),
    "adaptive": ("SearchRunner",),
    "session": ("open_sweep",),
}  # fmt: skip
_EXPORTS = {name: module for module, names in _HOMES.items() for name in names}
__all__ = [
    "DISTRIBUTIONS",
    "METRICS",
    "SUMMARY_FILE",
    "SWEEP_FILE",
    "DaskBackend",
    "LocalBackend",
    "StoredSweep",
    "Sweep",
    "SweepFile",
    "SearchRunner",
    "SweepRunner",
    "Trial",
    "TrialState",
    "describe",
    "limit_threads",
    "load_sweep",
    "make_backend",
    "metric_mode",
    "open_sweep",
    "parse_sweep",
    "read_stored",
    "result_from_dir",
    "run_trial",
    "same_definition",
    "show_value",
    "summary_csv",
    "sweep_lock",
    "trial_row",
    "usable_cores",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:
    from .adaptive import SearchRunner
    from .backends import DaskBackend, LocalBackend, make_backend, usable_cores
    from .plan import Sweep, Trial, load_sweep, read_stored, same_definition
    from .results import TrialState, result_from_dir, summary_csv, trial_row
    from .runner import SUMMARY_FILE, SweepRunner, sweep_lock
    from .session import open_sweep
    from .spec import (
        DISTRIBUTIONS,
        METRICS,
        SWEEP_FILE,
        StoredSweep,
        SweepFile,
        describe,
        metric_mode,
        parse_sweep,
        show_value,
    )
    from .worker import limit_threads, run_trial
