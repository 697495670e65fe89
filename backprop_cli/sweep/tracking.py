"""A sweep in MLflow: one parent run for the sweep, and each trial's run nested under it.

The parent is created in the sweep's own process, before the first trial; each trial's task
carries where it is (``SweepRunner.tracking``: the store's URI, the experiment's id, the
parent's run id), and the worker, in whatever process or machine, creates the trial's run
with MLflow's nesting tag (``mlflow.parentRunId``) through ``training.tracking``. At the end
the parent gets the best trial's value of the sweep's metric (``best_METRIC``), its name,
the counts, and sweep.yaml and sweep_summary.csv as artifacts.

As for a run, tracking never stops a sweep: a failure is one warning, through ``warn``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterator

from ..training.tracking import Target, Tracker
from .runner import SUMMARY_FILE, SweepRunner
from .spec import SWEEP_FILE


@contextlib.contextmanager
def tracked_sweep(
    runner: SweepRunner, track: bool, warn: Callable[[str], None] | None = None
) -> Iterator[Tracker | None]:
    """While the block runs the sweep, its trials are tracked under a parent run (``track``;
    nothing happens when False, or when no trial is to run). The parent ends with the block."""
    if not track or not runner.remaining:  # a search asks for its trials as it goes
        yield None
        return
    tracker = Tracker(Target(), warn)
    sweep = runner.sweep
    tags = {
        "backprop.sweep_dir": str(runner.dir),
        "backprop.sweep_file": os.path.abspath(sweep.source),
        "backprop.base_config": sweep.base,
        "backprop.metric": sweep.metric,
        "backprop.mode": sweep.mode,
        "backprop.trials": str(getattr(runner, "budget", len(sweep.trials))),
        "backprop.resumed": str(runner.resume).lower(),
    }
    experiment = sweep.base_config.get("name") or runner.dir.name
    if tracker.open(str(experiment), runner.dir.name, tags):
        children = Target(tracker.uri, tracker.experiment_id, tracker.run_id)
        runner.tracking = dataclasses.asdict(children)
    try:
        yield tracker
    finally:
        _finish(tracker, runner)


def _finish(tracker: Tracker, runner: SweepRunner) -> None:
    """The parent's end: the best trial, the counts, the sweep's files; FINISHED, or KILLED
    when the sweep was interrupted. Trials that could not be tracked: one warning for all."""
    if not tracker.active:
        return
    from mlflow.entities import Metric

    s = runner.summary()
    best = s["best"] or {}
    score = best.get("score", math.nan)
    metrics = [Metric(f"best_{s['metric']}", score, int(time.time() * 1000), 0)]
    tags = {k: s[k] for k in ("succeeded", "failed", "interrupted", "cancelled")}
    tags = {f"backprop.{k}": v for k, v in tags.items()}
    if best:
        tags["backprop.best_trial"] = best["trial"]
    tracker.log(
        "cannot log the sweep's result",
        metrics=metrics if isinstance(score, float) and math.isfinite(score) else [],
        tags=tags,
    )
    files = [runner.dir / SWEEP_FILE, runner.dir / SUMMARY_FILE]
    tracker.artifacts([p for p in files if p.is_file()])
    untracked = [
        (ts.name, ts.result["tracking_warning"])
        for ts in runner.states
        if ts.result and ts.result.get("tracking_warning")
    ]
    if untracked and tracker.warn is not None:
        name, first = untracked[0]
        tracker.warn(f"{len(untracked)} trial(s) not fully tracked ({name}: {first})")
    tracker.close("KILLED" if s["stopped"] else "FINISHED")
