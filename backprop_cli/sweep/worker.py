"""A trial, in a worker process (the local pool's, or a Dask worker's).

``run_trial`` trains one trial as an ordinary run in its own directory and returns its
result (a dict); it never raises. While it trains, a thread looks for the sweep's stop file
(SWEEP_DIR/.stop, written on Ctrl-C or by hand): the trainer then stops at its next batch,
as an interrupted ``train`` does, with its completed epochs saved.

This module imports only the standard library at start-up: a spawned worker imports it to
find ``run_trial`` (and ``init_worker``) and must set its thread limits before NumPy loads.
"""

from __future__ import annotations

import copy
import os
import sys
import threading
import time
from pathlib import Path

from ..errors import BackpropError, DivergenceError, OutputError

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
WATCH_S = 0.2  # how often a running trial looks for the stop file
# The columns of an epoch's row that a result carries back to the parent.
ROW_COLUMNS = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "train_r2",
    "val_loss",
    "val_accuracy",
    "val_r2",
    "time_s",
)


def limit_threads(n: int) -> None:
    """Cap BLAS/OpenMP threads at ``n`` (or lower, when the environment already says so).
    Effective only before NumPy is imported in this process."""
    for var in THREAD_VARS:
        try:
            current = int(os.environ.get(var, ""))
        except ValueError:
            current = 0
        os.environ[var] = str(min(n, current) if current > 0 else n)


def init_worker(threads: int) -> None:
    """The local pool's initializer: thread limits before NumPy loads; Ctrl-C is the parent's."""
    import signal

    limit_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _StopWatch:
    """While a trial runs, look for the sweep's stop file; once it is there, ``seen`` is True and
    the trial's trainer (which asks it at every batch) stops. Per trial, so that the trials of
    a Dask worker with several threads stop each on its own."""

    def __init__(self, stop_file: str):
        self.stop_file = stop_file
        self.seen = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join(timeout=2)

    def _watch(self) -> None:
        while not self._done.wait(WATCH_S):
            if os.path.exists(self.stop_file):
                self.seen = True
                return


def _prepare_fresh(d: Path) -> None:
    """A trial directory to start in from scratch: files of a start that never saved an epoch
    (no checkpoint) are removed; anything else there is refused, never overwritten."""
    from ..store.rundir import RUN_FILES

    if not d.exists():
        return
    for p in d.iterdir():
        if p.name in RUN_FILES or (p.name.startswith(".") and ".tmp-" in p.name):
            p.unlink()
    if any(d.iterdir()):
        raise OutputError(
            f"{d}: holds files that are not a run's; move them away, then resume the sweep"
        )


def run_trial(task: dict) -> dict:
    """Train one trial (in a worker process or a Dask worker); never raises, returns a result:
    trial, status (a stop reason, ``pending`` if it never started, ``failed``), error, rows
    (``ROW_COLUMNS`` of each epoch), summary (summary.json's), wall_s.

    ``task``: trial, config (resolved), source, dir (absolute), resume (continue from the
    checkpoint), stop_file, threads.
    """
    if "numpy" not in sys.modules:
        limit_threads(int(task.get("threads") or 1))
    t0 = time.perf_counter()
    result: dict = {"trial": task["trial"], "status": "failed", "error": "", "rows": []}
    if os.path.exists(task["stop_file"]):
        return result | {"status": "pending"}  # stopped before it started: it never ran
    run = None
    with _StopWatch(task["stop_file"]) as watch:
        try:
            from ..config import validate_config
            from ..training import Run

            config = copy.deepcopy(task["config"])
            config["output"]["dir"] = task["dir"]
            cfg = validate_config(config, task["source"])
            d = Path(task["dir"])
            if not task["resume"]:
                _prepare_fresh(d)
            run = Run(cfg, task["source"], out=str(d), resume=task["resume"])
            if watch.seen:
                return result | {"status": "pending" if not task["resume"] else "interrupted"}
            run.start()
            for _ in run.epochs(should_stop=lambda: watch.seen):
                pass
            result["status"] = run.stop_reason
        except KeyboardInterrupt:  # the stop file, through the trainer's should_stop
            result["status"] = "interrupted"
        except DivergenceError as e:
            result |= {"status": "diverged", "error": str(e)}
        except BackpropError as e:
            result |= {"status": "failed", "error": str(e)}
        except Exception as e:  # a bug: say what, in one line
            result |= {"status": "failed", "error": f"internal error ({type(e).__name__}: {e})"}
    if run is not None:
        result["rows"] = [{k: r[k] for k in ROW_COLUMNS if k in r} for r in run.rows]
        if run.summary_data is not None:
            result["summary"] = run.summary_data
    result["wall_s"] = time.perf_counter() - t0
    return result
