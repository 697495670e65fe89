"""A search: a sweep whose trials are asked of an Optuna study as it runs (ask-and-tell).

``SearchRunner`` is a ``SweepRunner`` whose next trial is not taken from a planned list: the
parent asks the study (``study.ask`` with the space's distributions) for the values of the
next trial whenever a worker is free, builds and checks its config, and submits it as an
ordinary trial; the worker reports the metric every epoch and stops the trial when the pruner
says so (``search.Reporter``); the parent tells the study how it ended (COMPLETE with the
best epoch's metric, PRUNED, or FAIL). The study lives in SWEEP_DIR/study.journal, so a
resume continues it: trials finished there are kept, trials it still has running (stopped
by Ctrl-C, or by a kill) are continued from their checkpoints with the values they were
given, and new ones are asked until the study holds ``search.trials``.
"""

from __future__ import annotations

import math
import os
from collections import deque
from pathlib import Path

from ..errors import ConfigError
from .backends import Backend
from .plan import Sweep, Trial, search_trial
from .results import FAILED, PRUNED, SUCCEEDED, TrialState, read_errors, result_from_dir
from .runner import SUMMARY_FILE, SweepRunner
from .search import STUDY_FILE, open_study, require_optuna, space_of, tell


class SearchRunner(SweepRunner):
    """Runs a search; its states are the study's trials, in their order (``trial-NNN`` is
    Optuna's trial number NNN)."""

    def __init__(
        self,
        sweep: Sweep,
        sweep_dir: Path,
        backend: Backend | None,
        *,
        resume: bool = False,
        fail_fast: bool = False,
    ):
        super().__init__(sweep, sweep_dir, backend, resume=resume, fail_fast=fail_fast)
        self.search = sweep.search
        self.space = space_of(sweep)
        self.study = None
        self.asked = 0  # trials in the study
        self.ids: dict[str, int] = {}  # a trial's Optuna id, by name
        self.continuing: deque[TrialState] = deque()  # running in the study when it stopped
        self.closed = False  # no more trials are asked (fail-fast)

    @property
    def budget(self) -> int:
        return self.search["trials"]

    @property
    def remaining(self) -> int:
        return len(self.continuing) + max(0, self.budget - self.asked)

    # -- the plan: what the study already holds

    def plan(self) -> None:
        """On a resume, the study's trials: kept (finished), or continued (still running)."""
        if not self.resume:
            return
        self.study = open_study(self.dir, self.search, self.space)
        errors = read_errors(self.dir / SUMMARY_FILE)
        finished = require_optuna().trial.TrialState
        trials = self.study.get_trials(deepcopy=False)
        self.asked = len(trials)
        for ft in sorted(trials, key=lambda t: t.number):
            if ft.state == finished.WAITING:
                continue  # enqueued by hand: asked as a new trial
            ts = self._state(ft.number, ft._trial_id, self.space.values(ft.params))
            res = result_from_dir(ts.trial.dir)
            status = res["status"] if res else None
            if ft.state.is_finished():
                if ft.state == finished.FAIL and status != "diverged":
                    error = errors.get(ts.name) or "failed (see the trial's directory)"
                    res, status = (res or {}) | {"status": "failed", "error": error}, "failed"
                ts.state, ts.skipped, ts.result = status or "failed", True, res
            elif status in (*SUCCEEDED, PRUNED, "diverged"):  # ended, but never told
                ts.skipped = True
                self._record(ts, res)
            else:
                d = ts.trial.dir
                ts.resume = (d / "checkpoint.npz").is_file() and (d / "config.yaml").is_file()
                self.continuing.append(ts)
        self.states.sort(key=lambda ts: ts.trial.index)

    def _state(self, number: int, trial_id: int, values: dict) -> TrialState:
        """A new TrialState for the study's trial ``number``; failed if its config is not one."""
        try:
            trial = search_trial(self.sweep, number, values)
            error = ""
        except ConfigError as e:
            trial = Trial(number, f"trial-{number:03d}", values, {}, self.sweep.task, 0)
            error = str(e)
        trial.dir = self.dir / trial.name
        ts = TrialState(trial)
        self.states.append(ts)
        self.ids[trial.name] = trial_id
        if error:
            self._record(ts, {"status": "failed", "error": error})
        return ts

    # -- what runs next

    def _open(self) -> None:
        if self.study is None:
            self.study = open_study(self.dir, self.search, self.space)
            self.asked = len(self.study.get_trials(deepcopy=False))

    def _start_event(self) -> dict:
        done = sum(ts.skipped for ts in self.states)
        return super()._start_event() | {
            "trials": self.budget,
            "to_run": self.budget - done,
            "skipped": done,
            "search": {
                k: self.search[k] for k in ("sampler", "pruner", "direction", "metric", "seed")
            }
            | {"study": str(self.dir / STUDY_FILE)},
        }

    def _has_next(self) -> bool:
        return not self.closed and (bool(self.continuing) or self.asked < self.budget)

    def _next(self) -> TrialState:
        if self.continuing:
            return self.continuing.popleft()
        trial = self.study.ask(self.space.distributions)
        self.asked += 1
        # Trial(study, trial_id) in the worker takes the id, which Optuna keeps in _trial_id
        return self._state(trial.number, trial._trial_id, self.space.values(trial.params))

    def _cancel_queued(self) -> None:
        self.closed = True

    def _complete(self) -> bool:
        return super()._complete() and not self.continuing and self.asked >= self.budget

    def _task(self, ts: TrialState) -> dict:
        return super()._task(ts) | {
            "search": {
                "storage": os.path.abspath(self.dir / STUDY_FILE),
                "trial_id": self.ids[ts.name],
                "metric": self.search["metric"],
                "pruner": self.search["pruner"],
            }
        }

    # -- the end of a trial

    def _record(self, ts: TrialState, res: dict) -> None:
        super()._record(ts, res)
        if ts.state in (*SUCCEEDED, PRUNED, *FAILED):
            score = self.row(ts)["score"]
            value = score if isinstance(score, float) else math.nan
            tell(self.study, ts.trial.index, ts.state, value, self.search["sampler"] == "grid")

    def summary(self) -> dict:
        s = super().summary()
        never = max(0, self.budget - len(self.states))  # not asked: interrupted first
        return s | {"trials": self.budget, "pending": s["pending"] + never}
