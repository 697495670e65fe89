"""What a sweep knows of its trials, and sweep_summary.csv.

``TrialState`` is the parent's record of one trial (its plan, state and result);
``trial_row`` makes its sweep_summary.csv row (also its --json line) and ``summary_csv`` the
file's text. A trial's files are read only through ``store.rundir`` (``result_from_dir``
for a finished trial, ``progress_of`` for a running one), leniently: a file that cannot be
read is as good as absent.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..store.rundir import METRIC_COLUMNS, RunFileError, cell, read_metrics, read_summary
from .plan import Trial
from .spec import metric_mode, show_value

SUCCEEDED = ("completed", "early_stopping")
PRUNED = "pruned"  # a search's trial stopped by its pruner: finished, neither success nor failure
FAILED = ("diverged", "failed")


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _finite(v: Any) -> float | None:
    f = _float(v)
    return f if math.isfinite(f) else None


def best_index(values: list[float], mode: str) -> int | None:
    """The index of the best finite value (``mode`` min or max), or None."""
    best = None
    for i, v in enumerate(values):
        if math.isfinite(v) and (
            best is None or (v < values[best] if mode == "min" else v > values[best])
        ):
            best = i
    return best


def result_from_dir(d: Path) -> dict | None:
    """A finished trial's result (as ``run_trial`` returns it) from its summary.json and
    metrics.csv; None when there is no readable summary."""
    try:
        summary = read_summary(d)
    except RunFileError:
        return None
    if not isinstance(summary.get("stop_reason"), str):
        return None
    try:
        keep = ("epoch", *METRIC_COLUMNS, "time_s")
        rows = [{k: r[k] for k in keep if k in r} for r in read_metrics(d)]
    except RunFileError:
        rows = []
    rows = rows[: summary.get("epochs") or len(rows)]
    return {
        "trial": d.name,
        "status": summary["stop_reason"],
        "error": "",
        "rows": rows,
        "summary": summary,
    }


def progress_of(metrics_csv: Path, column: str) -> tuple[int, float] | None:
    """A running trial's epochs so far and its best ``column`` value (NaN if none), from its
    metrics.csv; None if the file cannot be read now."""
    try:
        rows = read_metrics(metrics_csv)
    except RunFileError:
        return None
    values = [_float(r.get(column)) for r in rows]
    i = best_index(values, metric_mode(column))
    return len(rows), values[i] if i is not None else math.nan


@dataclass
class TrialState:
    """What the parent knows of a trial: its plan, its state, its result and its CSV row."""

    trial: Trial
    state: str = "pending"  # pending, running, or a final status
    resume: bool = False
    skipped: bool = False  # finished before this invocation
    result: dict | None = None
    epoch: int = 0  # progress while running (from metrics.csv)
    best: float = math.nan
    started: float = 0.0
    _seen: tuple = ()
    _row: dict | None = None
    _row_key: tuple = ()

    @property
    def name(self) -> str:
        return self.trial.name

    @property
    def finished(self) -> bool:
        return self.state in SUCCEEDED or self.state == PRUNED or self.state in FAILED


def trial_row(ts: TrialState, metric: str) -> dict:
    """The trial's sweep_summary.csv row (also its --json line): the varied keys, status,
    epochs, the metrics of its best epoch by the sweep's metric, the test metrics, time."""
    t, res = ts.trial, ts.result or {}
    m = "accuracy" if t.task == "classification" else "r2"
    rows = res.get("rows") or []
    summary = res.get("summary") or {}
    row: dict[str, Any] = {"trial": t.name, **t.values, "status": ts.state, "epochs": len(rows)}
    best_epoch = None
    if rows:
        if metric.startswith("test_"):
            best_epoch = (summary.get("best") or {}).get("epoch")
        else:
            i = best_index([_float(r.get(metric)) for r in rows], metric_mode(metric))
            best_epoch = rows[i]["epoch"] if i is not None else None
    at = next((r for r in rows if r.get("epoch") == best_epoch), {})
    row["best_epoch"] = best_epoch
    for k in ("train_loss", f"train_{m}", "val_loss", f"val_{m}"):
        row[k] = _finite(at.get(k))
    test = summary.get("test") or {}
    row["test_loss"], row[f"test_{m}"] = _finite(test.get("loss")), _finite(test.get(m))
    times = [_float(r.get("time_s")) for r in rows]
    row["time_s"] = sum(t for t in times if math.isfinite(t)) if rows else None
    row["dir"] = str(t.dir)
    row["error"] = res.get("error") or ""
    score = _float(row.get(metric))
    row["score"] = score if math.isfinite(score) else math.nan
    return row


def _cell(v: Any) -> str:
    """A sweep_summary.csv cell: a metrics.csv cell, or a varied value as the sweep file writes it."""
    return show_value(v) if isinstance(v, (list, dict, bool)) else cell(v)


def summary_csv(rows: list[dict], keys: list[str]) -> str:
    """sweep_summary.csv's text: one row per trial; the metric columns any trial has."""
    columns = ["trial", *keys, "status", "epochs", "best_epoch"]
    for k in (*METRIC_COLUMNS, "test_loss", "test_accuracy", "test_r2"):
        if any(k in r for r in rows):
            columns.append(k)
    columns += ["time_s", "dir", "error"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in columns])
    return buf.getvalue()


def read_errors(summary_csv_path: Path) -> dict[str, str]:
    """The error column of a sweep_summary.csv, by trial (a diverged trial's message is not in
    its summary.json); empty if the file cannot be read."""
    try:
        with open(summary_csv_path, newline="", encoding="utf-8") as f:
            return {r.get("trial", ""): r.get("error") or "" for r in csv.DictReader(f)}
    except (OSError, UnicodeError, csv.Error):
        return {}
