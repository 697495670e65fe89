"""Running a sweep: ``SweepRunner`` runs the trials on a backend and yields events; the CLI
renders them, nothing here prints. (``session.open_sweep`` makes one ready; a search's is
``adaptive.SearchRunner``, which asks its trials of Optuna as it goes.)

The sweep's directory holds sweep.yaml, one run directory per trial (trial-NNN),
sweep_summary.csv (rewritten as trials finish), and while it runs .lock and, when it is
asked to stop, .stop. Stopping: a first interrupt (``training.STOP.requested``, set by the
CLI's signal handler) or a .stop file made by hand writes .stop; each trial polls for it and
stops at its next batch with its completed epochs saved; queued trials are not started. A
second interrupt is ``kill()``: the workers are stopped at once.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ..errors import OutputError
from ..store.files import DirLock, write_text
from ..training import STOP
from .backends import Backend
from .plan import Sweep
from .results import (
    FAILED,
    PRUNED,
    SUCCEEDED,
    TrialState,
    best_index,
    progress_of,
    read_errors,
    result_from_dir,
    summary_csv,
    trial_row,
)
from .spec import SWEEP_FILE

SUMMARY_FILE = "sweep_summary.csv"
STOP_FILE = ".stop"
LOCK_FILE = ".lock"
BUSY = (
    "another backprop sweep is running in this directory; "
    "wait for it, or stop it (Ctrl-C, or create the file .stop in the directory)"
)
SUMMARY_INTERVAL_S = 1.0  # sweep_summary.csv is rewritten at most this often while trials finish
POLL_S = 0.5  # how often the parent looks at the running trials (and for finished ones)


def sweep_lock(sweep_dir: Path) -> DirLock:
    """One sweep at a time in a directory: the lock on SWEEP_DIR/.lock."""
    return DirLock(sweep_dir, LOCK_FILE, BUSY)


class SweepRunner:
    """Runs a sweep's trials on a backend; ``run()`` yields events, the CLI renders them.

    Events: ``start`` (sweep_dir, trials, to_run, skipped, backend), ``progress`` (with
    ``watch``, every POLL_S: every trial's state, epoch and best metric), ``trial`` (a trial
    finished: its row), ``stopping`` (an interrupt: the running trials are saving; or
    ``fail_fast``: the first failure), ``summary`` (the end).
    """

    def __init__(
        self,
        sweep: Sweep,
        sweep_dir: Path,
        backend: Backend | None,
        *,
        resume: bool = False,
        fail_fast: bool = False,
    ):
        self.sweep, self.backend = sweep, backend
        self.resume, self.fail_fast = resume, fail_fast
        self.states = [TrialState(t) for t in sweep.trials]
        self.use_dir(Path(sweep_dir))
        self.inflight: dict[Any, TrialState] = {}
        self.queue: deque[TrialState] = deque()
        self.interrupted = False
        self.stopping = False
        self.t0 = time.perf_counter()
        self._written_at, self._dirty = -math.inf, False
        self.tracking: dict | None = None  # where trials log to MLflow (sweep.tracking sets it)

    def use_dir(self, sweep_dir: Path) -> None:
        """The sweep's directory (a new sweep's is known once it is created)."""
        self.dir = Path(sweep_dir)
        self.stop_file = os.path.abspath(self.dir / STOP_FILE)
        for ts in self.states:
            ts.trial.dir = self.dir / ts.name

    # -- the plan

    def plan(self) -> None:
        """Decide what each trial needs: skip (finished earlier), resume, or a fresh start."""
        if not self.resume:
            return
        errors = read_errors(self.dir / SUMMARY_FILE)
        for ts in self.states:
            d = ts.trial.dir
            if not d.exists():
                continue
            res = result_from_dir(d)
            status = res["status"] if res else None
            if status in SUCCEEDED or status == "diverged":  # a divergence would come again
                ts.state, ts.skipped, ts.result = status, True, res
                if status == "diverged":
                    res["error"] = errors.get(ts.name) or "training diverged (see its summary.json)"
            elif (d / "checkpoint.npz").is_file() and (d / "config.yaml").is_file():
                ts.resume = True

    @property
    def to_run(self) -> list[TrialState]:
        return [ts for ts in self.states if not ts.skipped]

    @property
    def remaining(self) -> int:
        """How many trials this invocation has to run (or continue)."""
        return len(self.to_run)

    def row(self, ts: TrialState) -> dict:
        """The trial's row, computed again only when its state or result changes."""
        key = (ts.state, id(ts.result))
        if ts._row is None or ts._row_key != key:
            ts._row, ts._row_key = trial_row(ts, self.sweep.metric), key
        return ts._row

    def rows(self) -> list[dict]:
        return [self.row(ts) for ts in self.states]

    def write_summary(self, force: bool = True) -> None:
        """sweep_summary.csv, atomically; at most once a second unless ``force``d, so that a
        sweep of many short trials does not spend its time rewriting it."""
        now = time.monotonic()
        if not force and now - self._written_at < SUMMARY_INTERVAL_S:
            self._dirty = True
            return
        write_text(self.dir / SUMMARY_FILE, summary_csv(self.rows(), self.sweep.keys))
        self._written_at, self._dirty = now, False

    def write_definition(self) -> None:
        """SWEEP_DIR/sweep.yaml: what ``--resume`` reads."""
        text = (
            "# The sweep as started by backprop sweep; `backprop sweep DIR --resume` reads it.\n"
            + yaml.safe_dump(self.sweep.definition(self.dir), sort_keys=False)
        )
        write_text(self.dir / SWEEP_FILE, text)

    def _task(self, ts: TrialState) -> dict:
        return {
            "trial": ts.name,
            "config": ts.trial.config,
            "source": f"{self.sweep.source}: {ts.name}",
            "dir": os.path.abspath(ts.trial.dir),
            "resume": ts.resume,
            "stop_file": self.stop_file,
            "threads": self.backend.threads,
            "mlflow": self.tracking,
        }

    # -- running

    # -- what runs next (a search asks Optuna instead)

    def _open(self) -> None:
        """Before the first trial: the queue of trials to run."""
        self.queue = deque(ts for ts in self.states if not ts.skipped)

    def _start_event(self) -> dict:
        return {
            "event": "start",
            "sweep_dir": str(self.dir),
            "trials": len(self.states),
            "to_run": len(self.queue),
            "skipped": len(self.states) - len(self.queue),
            "backend": self.backend.describe(),
            "metric": self.sweep.metric,
            "resume": self.resume,
        }

    def _has_next(self) -> bool:
        return bool(self.queue)

    def _next(self) -> TrialState:
        return self.queue.popleft()

    def _complete(self) -> bool:
        """Every trial of the sweep has finished (nothing is left for a resume)."""
        return all(ts.finished for ts in self.states)

    def _cancel_queued(self) -> None:
        """--fail-fast: the queued trials are cancelled (and not started)."""
        for q in self.queue:
            q.state = "cancelled"
        self.queue.clear()

    # -- running

    def run(self, watch: bool = False) -> Iterator[dict]:
        """Run the trials to run; yield the events."""
        self._remove_stop_file()
        self._open()
        yield self._start_event()
        self.write_summary()
        STOP.active, STOP.requested = True, False  # a first Ctrl-C asks; a second one raises
        last_poll = -math.inf
        try:
            while (self._has_next() and not self.stopping) or self.inflight:
                asked = STOP.requested or os.path.exists(self.stop_file)  # Ctrl-C, or touch .stop
                if asked and not self.interrupted:
                    yield self._stop()
                while (
                    self._has_next()
                    and not self.stopping
                    and len(self.inflight) < self.backend.capacity()
                ):
                    ts = self._next()
                    if ts.finished:  # a search's trial that could not be built: failed at once
                        yield {"event": "trial", **self.row(ts)}
                        continue
                    ts.state, ts.started = "running", time.time()
                    self.inflight[self.backend.submit(self._task(ts))] = ts
                yield from self._collect()
                if self._dirty:
                    self.write_summary(force=False)
                if watch and time.monotonic() - last_poll >= POLL_S:
                    last_poll = time.monotonic()
                    self._poll()
                    yield {"event": "progress", "states": self.progress()}
        finally:
            STOP.active = False
        # Ctrl-C while the last trials were finishing: nothing is left to resume.
        self.interrupted = self.interrupted and not self._complete()
        self.write_summary()
        self._remove_stop_file()
        self.backend.close()
        yield self.summary()

    def _stop(self) -> dict:
        """An interrupt: the running trials are asked to stop (the stop file); no more start."""
        self.interrupted = self.stopping = True
        self._write_stop_file()
        return {"event": "stopping", "reason": "interrupted", "running": self._running()}

    def _collect(self) -> Iterator[dict]:
        """Wait up to POLL_S for trials to finish; record each, and stop at the first failure
        with ``fail_fast``."""
        for fut in self.backend.wait(list(self.inflight), POLL_S):
            ts = self.inflight[fut]
            self._record(ts, self.backend.result(fut))
            del self.inflight[fut]
            if ts.state == "pending":  # stopped before it began: it never ran
                continue
            yield {"event": "trial", **self.row(ts)}
            if ts.state in FAILED and self.fail_fast and not self.stopping:
                self.stopping = True
                self._cancel_queued()
                self.write_summary()
                yield {
                    "event": "stopping",
                    "reason": "fail_fast",
                    "trial": ts.name,
                    "running": self._running(),
                }

    def _running(self) -> list[str]:
        return [ts.name for ts in self.inflight.values()]

    def _record(self, ts: TrialState, res: dict) -> None:
        if ts.finished and ts.result is not None:
            return
        status = res.get("status") or "failed"
        if status == "pending":  # asked to stop before it started
            ts.state = "pending"
            return
        if status not in (*SUCCEEDED, PRUNED, *FAILED, "interrupted"):
            status = "failed"
        ts.state, ts.result = status, res
        self.write_summary(force=False)

    def kill(self) -> None:
        """A second interrupt: stop the workers now; the running trials keep what they saved."""
        self._write_stop_file()
        for ts in self.inflight.values():
            if not ts.finished:
                ts.state = "interrupted"
                res = result_from_dir(ts.trial.dir)  # what it saved, if it wrote a summary
                if res is not None and res["status"] == "interrupted":
                    ts.result = res
        self.inflight.clear()
        self.interrupted = not self._complete()
        try:
            self.backend.close(kill=True)
        finally:
            try:
                self.write_summary()
            except OutputError:
                pass
            self._remove_stop_file()

    def _write_stop_file(self) -> None:
        try:
            with open(self.stop_file, "w") as f:
                f.write("stop\n")
        except OSError:
            pass

    def _remove_stop_file(self) -> None:
        try:
            os.unlink(self.stop_file)
        except OSError:
            pass

    def _poll(self) -> None:
        """Each running trial's epoch and best metric so far, from its metrics.csv."""
        metric = self.sweep.metric
        column = metric if not metric.startswith("test_") else "val_loss"
        for ts in self.inflight.values():
            p = ts.trial.dir / "metrics.csv"
            try:
                st = p.stat()
            except OSError:
                continue
            if (st.st_mtime_ns, st.st_size) == ts._seen:
                continue
            ts._seen = (st.st_mtime_ns, st.st_size)
            progress = progress_of(p, column)
            if progress is not None:
                ts.epoch, ts.best = progress

    def progress(self) -> list[dict]:
        """Every trial's state; a running one's epoch and best so far, a finished one's result."""
        out = []
        for ts in self.states:
            row = {
                "trial": ts.name,
                "values": ts.trial.values,
                "state": ts.state,
                "epochs": ts.trial.epochs,
            }
            if ts.state == "running":
                row |= {"epoch": ts.epoch, "best": ts.best, "elapsed_s": time.time() - ts.started}
            elif ts.result is not None:
                r = self.row(ts)
                row |= {"epoch": r["epochs"], "best": r["score"], "time_s": r["time_s"]}
            out.append(row)
        return out

    def best(self) -> dict | None:
        rows = [r for r in self.rows() if r["status"] in SUCCEEDED]
        i = best_index([r["score"] for r in rows], self.sweep.mode)
        return rows[i] if i is not None else None

    def summary(self) -> dict:
        rows = self.rows()
        count = {
            s: sum(r["status"] == s for r in rows)
            for s in (*SUCCEEDED, PRUNED, *FAILED, "interrupted", "cancelled", "pending")
        }
        return {
            "event": "summary",
            "sweep_dir": str(self.dir),
            "summary_csv": str(self.dir / SUMMARY_FILE),
            "trials": len(rows),
            "ran": sum(1 for ts in self.states if not ts.skipped and ts.result is not None),
            "skipped": sum(ts.skipped for ts in self.states),
            "succeeded": count["completed"] + count["early_stopping"],
            "pruned": count[PRUNED],
            "failed": count["diverged"] + count["failed"],
            "interrupted": count["interrupted"],
            "cancelled": count["cancelled"],
            "pending": count["pending"],
            "stopped": self.interrupted,
            "metric": self.sweep.metric,
            "mode": self.sweep.mode,
            "best": self.best(),
            "failures": [
                {"trial": r["trial"], "status": r["status"], "error": r["error"]}
                for r in rows
                if r["status"] in FAILED
            ],
            "time_s": time.perf_counter() - self.t0,
        }
