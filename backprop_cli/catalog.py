"""The runs under a directory, side by side, from their summary.json files: `backprop runs`."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

from .errors import ConfigError, DataError
from .store.rundir import SUMMARY, RunFileError, read_summary

# Every column a row has, in table order; --sort takes any of them.
COLUMNS = (
    "name",
    "date",
    "task",
    "epochs",
    "val_loss",
    "val_accuracy",
    "val_r2",
    "test_loss",
    "test_accuracy",
    "test_r2",
    "stop_reason",
    "time_s",
)


def _number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def run_row(summary_path: Path, root: Path) -> dict:
    """One table row from a run's summary.json; RunFileError when it cannot be read."""
    data = read_summary(summary_path.parent)
    best = data.get("best") if isinstance(data.get("best"), dict) else {}
    test = data.get("test") if isinstance(data.get("test"), dict) else {}
    run_dir = summary_path.parent
    try:
        name = run_dir.relative_to(root).as_posix()
    except ValueError:
        name = run_dir.as_posix()
    if name == ".":
        name = run_dir.resolve().name
    mtime = summary_path.stat().st_mtime
    epochs = data.get("epochs")
    return {
        "name": name,
        "path": run_dir.as_posix(),
        "date": datetime.fromtimestamp(mtime).astimezone().isoformat(timespec="seconds"),
        "task": data.get("task") if isinstance(data.get("task"), str) else None,
        "epochs": epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None,
        "val_loss": _number(best.get("val_loss")),
        "val_accuracy": _number(best.get("val_accuracy")),
        "val_r2": _number(best.get("val_r2")),
        "test_loss": _number(test.get("loss")),
        "test_accuracy": _number(test.get("accuracy")),
        "test_r2": _number(test.get("r2")),
        "stop_reason": data.get("stop_reason")
        if isinstance(data.get("stop_reason"), str)
        else None,
        "time_s": _number(data.get("time_s")),
    }


def collect_runs(root: str | Path) -> tuple[list[dict], list[str]]:
    """(rows, warnings): one row per readable summary.json under ``root`` (at any depth),
    by name; one warning per summary.json that could not be read."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such directory; expected a directory of runs (default runs/)")
    rows, warnings = [], []
    for path in sorted(root.rglob(SUMMARY)):
        try:
            rows.append(run_row(path, root))
        except (RunFileError, OSError) as e:  # OSError: the file went away before its stat
            warnings.append(f"{path}: skipped ({e})")
    rows.sort(key=lambda r: r["name"])
    return rows, warnings


def sort_rows(rows: list[dict], column: str) -> list[dict]:
    """Rows sorted by ``column`` (ascending; a leading '-' for descending); empty cells last."""
    descending = column.startswith("-")
    key = column[1:] if descending else column
    if key not in COLUMNS:
        raise ConfigError(f"--sort: unknown column {key!r}; expected one of {', '.join(COLUMNS)}")
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    present.sort(key=lambda r: r[key], reverse=descending)
    return present + missing


def shown_columns(rows: list[dict]) -> list[str]:
    """The columns worth a table: every column some row has a value in (name always)."""
    return [c for c in COLUMNS if c == "name" or any(r.get(c) is not None for r in rows)]
