"""Tracking a run in MLflow (the mlflow extra), through ``mlflow.MlflowClient``.

The run directory stays the source of truth: the tracked copy is made from the same records
and files, and tracking never stops a run. The first MLflow call that fails (a server down,
a bad URI, a store that refuses a value) is reported once, through ``warn``, and tracking
stops there; training and its files carry on as without it.

What a run logs: the resolved config as params (dotted keys: ``optimizer.lr``,
``model.layers.0.units``), every metrics.csv column but ``epoch`` as metrics at step=epoch
(sent in batches as epochs complete, at most every FLUSH_S seconds, and at the end), the test
split's numbers as ``test_*`` metrics, tags (``backprop.*``: seed, versions, run_dir,
config_sha256, stop_reason), and at the end the run's files as artifacts (``ARTIFACTS``,
plus the report when written; not checkpoint.npz, which resumes from the run directory).

MLflow is imported only here, and only when a run is tracked: the epoch loop of an untracked
run never loads it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import MissingExtra, require_extra
from ..store.rundir import CONFIG, METRICS, SUMMARY, WEIGHTS
from .run import versions

URI_VAR = "MLFLOW_TRACKING_URI"
EXPERIMENT_VAR = "MLFLOW_EXPERIMENT_NAME"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own nesting tag: the UI shows the run under it
ARTIFACTS = (CONFIG, METRICS, SUMMARY, WEIGHTS)
FLUSH_S = 5.0  # metrics are sent at most this often while training (and all at the end)
# A server that is down should cost seconds, not MLflow's default of 7 retries with backoff
# (minutes) before training starts; a user's own setting of these wins.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
PARAMS_PER_BATCH = 100  # MLflow's limits on one log_batch call
METRICS_PER_BATCH = 1000
STATUS = {
    "completed": "FINISHED",
    "early_stopping": "FINISHED",
    "pruned": "FINISHED",  # a search stopped it on purpose: not a failure
    "interrupted": "KILLED",
}


def choose(flag: bool | None, environ=os.environ) -> tuple[bool, str | None]:
    """(track?, a warning to show) for ``--mlflow`` (True), ``--no-mlflow`` (False) or neither
    (None: tracked when MLFLOW_TRACKING_URI is set). ``--mlflow`` without MLflow installed is
    a MissingExtra error; the variable without it is a warning, and the run goes untracked."""
    if flag is False or (flag is None and not environ.get(URI_VAR)):
        return False, None
    try:
        require_extra("mlflow", "mlflow", "--mlflow")
    except MissingExtra as e:
        if flag:
            raise
        return False, f"{URI_VAR} is set, but not tracking: {e} (or --no-mlflow)"
    return True, None


@dataclass(frozen=True)
class Target:
    """Where runs are tracked: the store (``uri``; None: MLflow's own choice, from
    MLFLOW_TRACKING_URI or its default), the experiment (None: the one named by
    MLFLOW_EXPERIMENT_NAME, else by the config's name) and a parent run (a sweep's). Plain
    strings, so that a sweep's trial carries it to another process."""

    uri: str | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None


def flat_params(config: dict, limit: int = 500) -> dict[str, str]:
    """The resolved config as MLflow params: dotted keys (list items by index), values as
    text (strings as they are, the rest as JSON: ``null``, ``true``, ``0.001``, ``{}``).
    Characters MLflow refuses in a key (a column's name may have any) become ``_``; a value
    longer than ``limit`` is cut (config.yaml, an artifact, has it whole)."""
    out: dict[str, str] = {}

    def walk(value, path: tuple[str, ...]) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(v, (*path, str(k)))
        elif isinstance(value, list) and value:
            for i, v in enumerate(value):
                walk(v, (*path, str(i)))
        else:
            key = mlflow_key(".".join(path))
            text = value if isinstance(value, str) else json.dumps(value)
            out.setdefault(key, text if len(text) <= limit else text[: limit - 3] + "...")

    walk(config, ())
    return out


def mlflow_key(name: str) -> str:
    """``name`` as MLflow takes a key: at most 250 characters, none but letters, digits and
    ``_-. `` (MLflow refuses the rest, and a column or class may be named anything)."""
    return re.sub(r"[^\w.\- ]", "_", name)[:250]


def metric_values(record: dict) -> dict[str, float]:
    """An epoch record's metrics: its metrics.csv cells but ``epoch``, the finite numbers."""
    return {
        mlflow_key(k): float(v)
        for k, v in record.items()
        if k not in ("epoch", "warnings")
        and isinstance(v, int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
    }


def one_line(e: BaseException, limit: int = 300) -> str:
    """An exception as one line of at most ``limit`` characters."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Tracker:
    """One MLflow run, written through MlflowClient; every call guarded: the first failure
    is kept in ``warning``, told to ``warn``, and every later call does nothing."""

    def __init__(self, target: Target, warn: Callable[[str], None] | None = None):
        self.target = target
        self.warn = warn
        self.warning: str | None = None
        self.client = None
        self.uri: str | None = None  # the store's URI, as MLflow resolved it
        self.run_id: str | None = None
        self.experiment_id: str | None = target.experiment_id

    @property
    def active(self) -> bool:
        return self.run_id is not None and self.warning is None

    def guard(self, what: str, call: Callable, *args, **kwargs):
        """``call(*args, **kwargs)``, or None once anything has failed (this, or before)."""
        if self.warning is not None:
            return None
        try:
            return call(*args, **kwargs)
        except Exception as e:  # whatever MLflow or the network raise: the run goes on
            self.warning = f"mlflow: {what}: {one_line(e)}; tracking stopped, the run goes on"
            if self.warn is not None:
                self.warn(self.warning)
            return None

    def open(self, experiment: str, run_name: str, tags: dict[str, str]) -> bool:
        """Create the run (and its experiment, when new); False when MLflow failed."""
        return bool(self.guard("cannot start the run", self._open, experiment, run_name, tags))

    def _open(self, experiment: str, run_name: str, tags: dict[str, str]) -> bool:
        for var, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(var, value)
        import mlflow

        if not os.environ.get("MLFLOW_LOGGING_LEVEL"):  # its notes are not the CLI's output
            logging.getLogger("mlflow").setLevel(logging.WARNING)
        self.uri = self.target.uri or mlflow.get_tracking_uri()
        self.client = mlflow.MlflowClient(tracking_uri=self.uri)
        if self.experiment_id is None:
            self.experiment_id = self._experiment(os.environ.get(EXPERIMENT_VAR) or experiment)
        if self.target.parent_run_id:
            tags = {**tags, PARENT_TAG: self.target.parent_run_id}
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags)
        self.run_id = run.info.run_id
        return True

    def _experiment(self, name: str) -> str:
        """The id of the experiment ``name``, created when there is none (a run started at the
        same moment may create it first)."""
        found = self.client.get_experiment_by_name(name)
        if found is None:
            try:
                return self.client.create_experiment(name)
            except Exception:
                found = self.client.get_experiment_by_name(name)
                if found is None:
                    raise
        return found.experiment_id

    def log(self, what: str, *, params=None, metrics=None, tags=None) -> None:
        """Params, metrics (a list of mlflow.entities.Metric) and tags, in batches MLflow accepts."""
        if not self.active:
            return
        from mlflow.entities import Param, RunTag

        params = [Param(k, v) for k, v in (params or {}).items()]
        tags = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        metrics = list(metrics or [])
        for i in range(0, len(params), PARAMS_PER_BATCH):
            self.guard(
                what, self.client.log_batch, self.run_id, params=params[i : i + PARAMS_PER_BATCH]
            )
        for i in range(0, len(metrics), METRICS_PER_BATCH):
            self.guard(
                what, self.client.log_batch, self.run_id, metrics=metrics[i : i + METRICS_PER_BATCH]
            )
        if tags:
            self.guard(what, self.client.log_batch, self.run_id, tags=tags)

    def artifacts(self, paths: list[Path]) -> None:
        for p in paths:
            if self.active:
                self.guard(f"cannot log {p.name}", self.client.log_artifact, self.run_id, str(p))

    def close(self, status: str) -> None:
        """End the run as FINISHED, KILLED or FAILED."""
        if self.active:
            self.guard("cannot end the run", self.client.set_terminated, self.run_id, status)


class RunTracker(Tracker):
    """A training run in MLflow: ``start`` once its directory exists, ``epoch`` with each
    record, ``add`` for a file written beside the run's own (the report), ``finish`` at the end."""

    def __init__(self, target: Target, warn: Callable[[str], None] | None = None):
        super().__init__(target, warn)
        self._pending: list = []
        self._sent_at = time.monotonic()
        self._epoch = 0  # the last epoch queued
        self._extra: list[Path] = []

    def start(self, run) -> None:
        """Create the MLflow run of ``run`` (a training.Run, started): tags, params, and the
        epochs a resumed run already has."""
        cfg, v = run.cfg, versions()
        tags = {
            "backprop.run_dir": str(run.dir),
            "backprop.seed": cfg.seed,
            "backprop.config_sha256": cfg.digest(),
            "backprop.config_source": run.source,
            "backprop.task": run.prep.task,
            "backprop.version": v["backprop"],
            "backprop.numpy_version": v["numpy"],
            "backprop.python_version": v["python"],
        }
        if run.resumed_from is not None:
            tags["backprop.resumed_from_epoch"] = run.resumed_from
        if not self.open(cfg.name, Path(run.dir).name, {k: str(x) for k, x in tags.items()}):
            return
        self.log("cannot log the config", params=flat_params(cfg.resolved(), _param_limit()))
        for record in run.rows:
            self.epoch(record)

    def epoch(self, record: dict) -> None:
        """Queue an epoch's metrics (once: an epoch already queued is skipped); send the queue
        when FLUSH_S have passed since the last."""
        step = int(record["epoch"])
        if not self.active or step <= self._epoch:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._epoch = step
        self._pending += [Metric(k, v, now, step) for k, v in metric_values(record).items()]
        if time.monotonic() - self._sent_at >= FLUSH_S:
            self._send()

    def _send(self) -> None:
        pending, self._pending = self._pending, []
        self.log("cannot log the metrics", metrics=pending)
        self._sent_at = time.monotonic()

    def add(self, path: str | Path | None) -> None:
        """A file to log with the run's own at the end."""
        if path is not None:
            self._extra.append(Path(path))

    def finish(self, run) -> None:
        """The last metrics, the test split's numbers, the stop reason, the files; then the
        run's end: FINISHED (completed, early stopping), KILLED (interrupted), FAILED."""
        if not self.active:
            return
        from mlflow.entities import Metric

        for record in run.rows:  # an interrupt saves its epoch without yielding it
            self.epoch(record)
        self._send()
        summary = run.summary_data or {}
        now, step = int(time.time() * 1000), len(run.rows)
        test = metric_values(summary.get("test") or {})
        self.log(
            "cannot log the summary",
            metrics=[Metric(f"test_{k}", v, now, step) for k, v in test.items() if k != "rows"],
            tags={"backprop.stop_reason": run.stop_reason, "backprop.epochs": len(run.rows)},
        )
        if run.dir is not None:
            files = [Path(run.dir) / name for name in ARTIFACTS] + self._extra
            self.artifacts([p for p in files if p.is_file()])
        self.close(STATUS.get(run.stop_reason, "FAILED"))


def _param_limit() -> int:
    """The longest param value this MLflow accepts (500 before MLflow 2.?, 6000 since)."""
    try:
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
    except ImportError:
        return 500
    return int(MAX_PARAM_VAL_LENGTH)


class _Untracked:
    """What ``tracked`` yields when the run is not tracked: every call does nothing."""

    warning = None

    def epoch(self, record: dict) -> None:
        pass

    def add(self, path) -> None:
        pass


@contextlib.contextmanager
def tracked(
    run, target: Target | None, warn: Callable[[str], None] | None = None
) -> Iterator[RunTracker | _Untracked]:
    """Track ``run`` (started: its directory exists) in MLflow at ``target`` while the block
    trains it; the block calls ``epoch(record)`` for each record. At the end, however the
    block ends, the run's files are logged and the MLflow run ended; exceptions go on."""
    if target is None:
        yield _Untracked()
        return
    tracker = RunTracker(target, warn)
    tracker.start(run)
    try:
        yield tracker
    finally:
        tracker.finish(run)
