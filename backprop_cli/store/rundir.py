"""A run directory's files, and the one reader and writer of metrics.csv and summary.json.

    config.yaml     the resolved config          weights.npz     the trained model (weights.py)
    metrics.csv     one row per epoch            checkpoint.npz  the state to resume from
    summary.json    the run's summary

metrics.csv's cells are numbers (an empty cell is NaN; ``epoch`` and ``clipped_batches`` are
integers). ``read_metrics`` and ``read_summary`` raise ``RunFileError`` with one line naming
the file and the problem; a caller that can do without the file (a live table polling a
running trial) catches it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
from pathlib import Path

from ..errors import DataError, OutputError
from .files import json_safe, write_json, write_text

CONFIG = "config.yaml"
WEIGHTS = "weights.npz"
CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.csv"
SUMMARY = "summary.json"
RUN_FILES = (CONFIG, WEIGHTS, CHECKPOINT, METRICS, SUMMARY)
INT_COLUMNS = ("epoch", "clipped_batches")
# metrics.csv's losses and accuracy or R^2 (the task's pair), after epoch and before lr.
METRIC_COLUMNS = ("train_loss", "train_accuracy", "train_r2", "val_loss", "val_accuracy", "val_r2")
MAX_SUMMARY_BYTES = 10_000_000


class RunFileError(DataError):
    """A run's metrics.csv or summary.json is missing or cannot be read as one."""


def cell(v) -> str:
    """A value as a metrics.csv (or sweep_summary.csv) cell: NaN and None empty, floats exact."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)


class MetricsLog:
    """metrics.csv as it grows: each row formatted once and kept, so rewriting the file after an
    epoch costs its size, not a re-format of every row. The columns are the first row's."""

    def __init__(self) -> None:
        self.columns: list[str] = []
        self.lines: list[str] = []

    def write(self, run_dir: Path, rows: list[dict]) -> None:
        """Rewrite RUN_DIR/metrics.csv (atomically) with ``rows``, which only ever grow."""
        if not rows:
            return
        if not self.lines:
            self.columns = [k for k in rows[0] if k != "warnings"]
            self.lines.append(",".join(self.columns))
        for row in rows[len(self.lines) - 1 :]:
            self.lines.append(",".join(cell(row.get(c)) for c in self.columns))
        write_text(Path(run_dir) / METRICS, "\n".join(self.lines) + "\n")


def clear_unstarted(run_dir: Path) -> None:
    """Make RUN_DIR ready for a fresh start in place (a sweep's trial): the files of a start
    that saved no epoch and temp files are removed; anything else there is refused, never
    overwritten. The caller holds the directory's lock."""
    from .files import RUN_LOCK, TMP_MARK

    d = Path(run_dir)
    for p in d.iterdir():
        if p.name in RUN_FILES or (p.name.startswith(".") and TMP_MARK in p.name):
            p.unlink()
    if any(p.name != RUN_LOCK for p in d.iterdir()):
        raise OutputError(
            f"{d}: holds files that are not a run's; move them away, then resume the sweep"
        )


def _number(column: str, text: str) -> float | int:
    if column in INT_COLUMNS:
        return int(text)
    return float(text) if text != "" else math.nan


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of a metrics.csv (a run directory's, or the file itself), each cell a number."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS
    try:
        if path.exists() and not path.is_file():  # a FIFO would hang the read
            raise RunFileError(f"{path}: not a regular file")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunFileError(f"{path.parent}: no {METRICS}; not a run directory") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RunFileError(
            f"{path}: cannot read it ({getattr(e, 'strerror', None) or e})"
        ) from None
    try:
        lines = list(csv.reader(io.StringIO(text)))
    except csv.Error as e:
        raise RunFileError(f"{path}: not a CSV file ({e})") from None
    if not lines or "epoch" not in lines[0]:
        raise RunFileError(f"{path}: no header with an epoch column; not a backprop metrics file")
    header, rows = lines[0], []
    for i, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        if len(line) != len(header):
            raise RunFileError(f"{path}: row {i} has {len(line)} cells, the header {len(header)}")
        row = {}
        for name, text in zip(header, line, strict=True):
            try:
                row[name] = _number(name, text)
            except ValueError:
                raise RunFileError(
                    f"{path}: row {i}, column {name}: {text[:40]!r} is not a number"
                ) from None
        rows.append(row)
    return rows


def write_summary(run_dir: Path, summary: dict) -> dict:
    """Write RUN_DIR/summary.json (NaN and Inf as null); returns what was written."""
    safe = json_safe(summary)
    write_json(Path(run_dir) / SUMMARY, safe)
    return safe


def read_summary(run_dir: str | Path) -> dict:
    """RUN_DIR/summary.json as a mapping."""
    path = Path(run_dir) / SUMMARY
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would hang the read
            raise RunFileError(f"{path}: unreadable (not a regular file)")
        with open(path, "rb") as f:
            data = json.loads(f.read(MAX_SUMMARY_BYTES))
    except FileNotFoundError:
        raise RunFileError(f"{run_dir}: no {SUMMARY}") from None
    except RecursionError:
        raise RunFileError(f"{path}: unreadable (nested too deeply)") from None
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError included
        reason = getattr(e, "strerror", None) or " ".join(str(e).split())[:120]
        raise RunFileError(f"{path}: unreadable ({reason})") from None
    if not isinstance(data, dict):
        raise RunFileError(f"{path}: unreadable (not a JSON object)")
    return data
