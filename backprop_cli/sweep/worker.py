"""A trial, in a worker process (the local pool's, or a Dask worker's).

``run_trial`` trains one trial as an ordinary run in its own directory and returns its
result (a dict); it never raises. A search's trial reports its metric to the study every
epoch and ends ``pruned`` when the pruner says so. While it trains, a thread looks for the
sweep's stop file (SWEEP_DIR/.stop, written on Ctrl-C or by hand): the trainer then stops
at its next batch, as an interrupted ``train`` does, with its completed epochs saved.

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

from ..errors import BackpropError, DivergenceError

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
WATCH_S = 0.2  # how often a running trial looks for the stop file


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
    """The local pool's initializer: thread limits before NumPy loads; Ctrl-C is the parent's;
    and a watch on the parent, so that a worker never outlives its sweep (a kill -9 of the
    sweep used to leave its workers training, then idle, for ever)."""
    import signal

    limit_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()


_orphaned = threading.Event()  # the sweep that started this worker has gone
_busy = threading.Event()  # a trial is running in this worker
ORPHAN_GRACE_S = 30.0  # how long a trial may take to save its epochs once the sweep has gone


def _watch_parent(parent: int) -> None:
    """When the parent process goes away, the running trial stops at its next batch (saving
    its completed epochs, as on Ctrl-C), then this worker exits."""
    while os.getppid() == parent:
        time.sleep(WATCH_S)
    _orphaned.set()
    deadline = time.monotonic() + ORPHAN_GRACE_S
    while _busy.is_set() and time.monotonic() < deadline:
        time.sleep(WATCH_S)
    os._exit(1)


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
            if _orphaned.is_set() or os.path.exists(self.stop_file):
                self.seen = True
                return


def _reporter(task: dict):
    """A search's trial: what reports its metric each epoch and asks the pruner (None otherwise)."""
    if not task.get("search"):
        return None
    from .search import Reporter

    return Reporter(task["search"])


def _pruned(run) -> None:
    """The pruner stopped the trial after an epoch: its completed epochs saved (metrics.csv,
    weights.npz, checkpoint.npz) and summary.json written with stop_reason pruned, as an early
    stop writes them; called between epochs, while the run still holds its directory."""
    run.stop_reason = "pruned"
    run.save()
    run.write_summary()


def _train(task: dict, result: dict):
    """Train the task's trial, its outcome written into ``result``; the Run, or None."""
    run = None
    with _StopWatch(task["stop_file"]) as watch:
        try:
            from ..config import validate_config
            from ..training import Run
            from ..training.tracking import Target, tracked

            pruner = _reporter(task)
            config = copy.deepcopy(task["config"])
            config["output"]["dir"] = task["dir"]
            cfg = validate_config(config, task["source"])
            d = Path(task["dir"])
            mlflow = Target(**task["mlflow"]) if task.get("mlflow") else None
            run = Run(cfg, task["source"], out=str(d), resume=task["resume"], in_place=True)
            if watch.seen:  # stopped before it began: nothing of it to report
                result["status"] = "pending" if not task["resume"] else "interrupted"
                return None
            run.start()
            with tracked(run, mlflow, lambda w: result.update(tracking_warning=w)) as tracker:
                epochs = run.epochs(should_stop=lambda: watch.seen)
                for record in epochs:
                    tracker.epoch(record)
                    if pruner is not None and pruner.should_prune(record, last=run.trainer.done):
                        _pruned(run)
                        break
                epochs.close()  # after a prune: the run's lock released, as at its end
            result["status"] = run.stop_reason
        except KeyboardInterrupt:  # the stop file, through the trainer's should_stop
            result["status"] = "interrupted"
        except DivergenceError as e:
            result |= {"status": "diverged", "error": str(e)}
        except BackpropError as e:
            result |= {"status": "failed", "error": str(e)}
        except Exception as e:  # a bug: say what, in one line
            result |= {"status": "failed", "error": f"internal error ({type(e).__name__}: {e})"}
        finally:
            if run is not None:
                run.close()
    return run


def run_trial(task: dict) -> dict:
    """Train one trial (in a worker process or a Dask worker); never raises, returns a result:
    trial, status (a stop reason, ``pending`` if it never started, ``failed``), error, rows
    (epoch, losses, accuracy or R^2 and time of each epoch), summary (summary.json's), wall_s.

    ``task``: trial, config (resolved), source, dir (absolute), resume (continue from the
    checkpoint), stop_file, threads, mlflow (a tracking.Target as a dict, or None: where the
    trial's run is tracked, nested under the sweep's); for a search's trial, search
    (``search.Reporter``'s): the trial reports its metric every epoch and stops, ``pruned``,
    when the pruner says so.
    """
    if "numpy" not in sys.modules:
        limit_threads(int(task.get("threads") or 1))
    t0 = time.perf_counter()
    result: dict = {"trial": task["trial"], "status": "failed", "error": "", "rows": []}
    if os.path.exists(task["stop_file"]):
        return result | {"status": "pending"}  # stopped before it started: it never ran
    _busy.set()
    try:
        run = _train(task, result)
    finally:
        _busy.clear()
    if run is not None:  # each epoch's main columns go back to the parent
        from ..store.rundir import METRIC_COLUMNS

        keep = ("epoch", *METRIC_COLUMNS, "time_s")
        result["rows"] = [{k: r[k] for k in keep if k in r} for r in run.rows]
        if run.summary_data is not None:
            result["summary"] = run.summary_data
    result["wall_s"] = time.perf_counter() - t0
    return result
