"""Rendering: a live Rich table on a terminal, plain lines in a log, JSON Lines with --json.

The output mode follows where stdout goes: ``live`` on a terminal, ``plain`` (one line per
epoch, no redraws) when stdout is a file, pipe or CI log, ``json`` for --json (JSON Lines
alone on stdout), ``quiet`` for --quiet (nothing but errors, which go to stderr).
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

MAX_LIVE_ROWS = 15


def choose_mode(json_out: bool, quiet: bool, console: Console | None = None) -> str:
    if json_out:
        return "json"
    if quiet:
        return "quiet"
    console = console or Console()
    return "live" if console.is_terminal else "plain"


def fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}f}"
    return str(value)


def emit(text: str) -> None:
    """A line on stdout. When the reader has gone (`| head -1`), later output is dropped and the
    command carries on: a training run still finishes and writes its files."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def json_line(obj: dict) -> None:
    from .store.files import json_safe

    emit(json.dumps(json_safe(obj)))


MAIN_COLUMNS = (
    "train_loss",
    "train_accuracy",
    "train_r2",
    "val_loss",
    "val_accuracy",
    "val_r2",
    "lr",
)
BLOCKS = "▁▂▃▄▅▆▇█"
STRIP_DECADES = 8  # the strip spans this many orders of magnitude below the largest norm


def grad_norms(record: dict) -> list[float]:
    norms, l = [], 0
    while f"grad_norm_{l}" in record:
        norms.append(record[f"grad_norm_{l}"])
        l += 1
    return norms


def grad_strip(norms: list[float]) -> str:
    """One block per layer, height log10(norm) over the last STRIP_DECADES decades: ▁ tiny, █ largest."""
    finite = [g for g in norms if g > 0 and math.isfinite(g)]
    if not finite:
        return ""
    top = math.log10(max(finite))
    out = []
    for g in norms:
        if not (g > 0 and math.isfinite(g)):
            out.append(" ")
            continue
        frac = 1 - min(STRIP_DECADES, top - math.log10(g)) / STRIP_DECADES
        out.append(BLOCKS[min(len(BLOCKS) - 1, int(frac * len(BLOCKS)))])
    return "".join(out)


def _main_columns(record: dict) -> list[str]:
    return [k for k in MAIN_COLUMNS if k in record] + ["time_s"]


def _epoch_table(rows: list[dict], epochs: int) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("epoch", justify="right")
    cols = _main_columns(rows[0]) if rows else []
    for c in cols:
        table.add_column(c, justify="right")
    table.add_column("grad norms by layer", justify="left")
    best = min((_key(r) for r in rows), default=None)
    for r in rows[-MAX_LIVE_ROWS:]:
        norms = grad_norms(r)
        strip = f"{grad_strip(norms)} {fmt(min(norms))}..{fmt(max(norms))}" if norms else ""
        table.add_row(
            f"{r['epoch']}/{epochs}",
            *(fmt(r[c]) if c != "time_s" else f"{r[c]:.2f}s" for c in cols),
            strip,
            style="green" if _key(r) == best else None,
        )
    return table


def _key(r: dict) -> float:
    return r["val_loss"] if not math.isnan(r["val_loss"]) else r["train_loss"]


def plain_line(record: dict, epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}"]
    parts += [f"{k} {fmt(record[k])}" for k in MAIN_COLUMNS if k in record]
    parts.append(f"{record['time_s']:.2f}s")
    norms = grad_norms(record)
    if norms:
        parts.append("grad_norms " + "/".join(f"{g:.1e}" for g in norms))
    return "  ".join(parts)


def render_training(
    records: Iterable[dict],
    epochs: int,
    mode: str,
    progress_hook: list,
    console: Console | None = None,
) -> Iterator[dict]:
    """Show each epoch record as it arrives; passes the records on.

    ``progress_hook`` is a one-element list the caller's training loop calls through,
    (done, total) per batch; it is filled here for the live mode. Warnings (vanishing or
    exploding gradients, rollbacks) are shown once, as they come: on stderr in plain mode,
    above the live table on a terminal, as ``{"event": "warning"}`` lines with --json.
    """
    console = console or Console()
    if mode == "live":
        rows: list[dict] = []
        progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("batches"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        task = progress.add_task("train", total=1, epoch=1)
        state = {"epoch": 1}

        def hook(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, epoch=f"{state['epoch']}/{epochs}")

        progress_hook[0] = hook
        with Live(
            Group(_epoch_table(rows, epochs), progress), console=console, refresh_per_second=8
        ) as live:
            for record in records:
                for w in record.get("warnings", []):
                    live.console.print(
                        f"[bold yellow]warning:[/] {w}", soft_wrap=True, highlight=False
                    )
                rows.append(record)
                state["epoch"] = record["epoch"] + 1
                live.update(Group(_epoch_table(rows, epochs), progress))
                yield record
            progress.update(task, visible=False)
            live.update(_epoch_table(rows, epochs))
        return
    for record in records:
        if mode == "plain":
            for w in record.get("warnings", []):
                print(f"warning: {w}", file=sys.stderr, flush=True)
            emit(plain_line(record, epochs))
        elif mode == "json":
            for w in record.get("warnings", []):
                json_line({"event": "warning", "epoch": record["epoch"], "message": w})
            json_line({"event": "epoch", **{k: v for k, v in record.items() if k != "warnings"}})
        yield record


def training_summary(summary: dict, mode: str, console: Console | None = None) -> None:
    if mode == "json":
        json_line({"event": "summary", **summary})
        return
    if mode == "quiet":
        return
    console = console or Console(highlight=False)
    test = summary.get("test") or {}
    metric = "accuracy" if summary["task"] == "classification" else "r2"
    lines = [
        f"stopped: {summary['stop_reason'].replace('_', ' ')} after {summary['epochs']} epoch(s) in {summary['time_s']:.2f}s"
    ]
    if summary.get("restored_best"):
        lines.append(
            f"restored the best epoch's weights (epoch {summary['best'].get('epoch')}) into weights.npz"
        )
    best = summary.get("best") or {}
    if best:
        lines.append(
            f"best epoch {best.get('epoch')} by {summary['best_by']}: "
            + ", ".join(
                f"{k} {fmt(v)}" for k, v in best.items() if k not in ("epoch", "time_s", "lr")
            )
        )
    if test.get("rows"):
        lines.append(
            f"test ({test['rows']} rows): loss {fmt(test.get('loss'))}, {metric} {fmt(test.get(metric))}"
        )
    lines += history_lines(summary.get("run_dir"))
    lines.append(
        f"run: {summary['run_dir']}  (weights.npz, metrics.csv, summary.json, config.yaml, checkpoint.npz)"
    )
    if console.is_terminal:
        for line in lines:
            console.print(line, soft_wrap=True)
    else:
        for line in lines:
            emit(line)


SPARK_WIDTH = 40  # at most this many blocks; longer runs are averaged into buckets


def sparkline(values: list[float], width: int = SPARK_WIDTH, log: bool = False) -> str:
    """One block per value (bucket means beyond ``width``), from the lowest (▁) to the highest (█);
    ``log``: heights by log10 when every value is positive (a loss falling over decades)."""
    values = [v for v in values if math.isfinite(v)]
    if log and values and min(values) > 0:
        values = [math.log10(v) for v in values]
    if len(values) > width:
        edges = [round(i * len(values) / width) for i in range(width + 1)]
        values = [
            sum(values[a:b]) / (b - a) for a, b in zip(edges, edges[1:], strict=False) if b > a
        ]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    top = len(BLOCKS) - 1
    return "".join(BLOCKS[round((v - lo) / (hi - lo) * top) if hi > lo else 0] for v in values)


def history_lines(run_dir: str | None) -> list[str]:
    """Sparklines of the train and validation loss and the last epoch's gradient strip, read
    from the run's metrics.csv; nothing when it cannot be read or shown."""
    import csv

    try:
        if not run_dir or not BLOCKS.encode(sys.stdout.encoding or "utf-8"):
            return []
        with open(os.path.join(run_dir, "metrics.csv"), newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeError, csv.Error, LookupError, TypeError):
        return []

    def num(cell) -> float:
        try:
            return float(cell)
        except (TypeError, ValueError):
            return float("nan")

    lines, parts = [], []
    for label, name in (("train", "train_loss"), ("val", "val_loss")):
        series = [v for v in (num(r.get(name)) for r in rows) if math.isfinite(v)]
        if len(series) >= 2:
            parts.append(
                f"{label} {sparkline(series, log=True)} {fmt(series[0])} -> {fmt(series[-1])}"
            )
    if parts:
        lines.append("loss  " + "   ".join(parts) + "  (log scale)")
    norms = grad_norms({k: num(v) for k, v in rows[-1].items() if k}) if rows else []
    if grad_strip(norms).strip():
        lines.append(
            f"grads  {grad_strip(norms)}  {fmt(min(norms))}..{fmt(max(norms))} "
            "(last epoch's gradient norm by layer, first layer left)"
        )
    return lines


def note(message: str, mode: str) -> None:
    """A one-off message: a JSON line with --json, nothing with --quiet, else a plain line."""
    if mode == "json":
        json_line({"event": "note", "message": message})
    elif mode != "quiet":
        emit(message)


def print_error(message: str) -> None:
    sys.stderr.write(f"error: {' '.join(message.split())}\n")  # always one line
    sys.stderr.flush()


def key_values(title: str, items: list[tuple[str, Any]], console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    console.print(f"[bold]{title}[/]", soft_wrap=True)
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for k, v in items:
        table.add_row(k, fmt(v))
    console.print(table)


def table(
    title: str | None,
    columns: list[str],
    rows: list[list[Any]],
    console: Console | None = None,
    styles: list[str | None] | None = None,
) -> None:
    console = console or Console(highlight=False)
    t = Table(title=title, title_justify="left", title_style="bold", header_style="bold")
    for c in columns:
        t.add_column(
            c,
            justify="left"
            if c
            in (
                "name",
                "layer",
                "tensor",
                "hidden",
                "output",
                "loss",
                "status",
                "task",
                "kind",
                "activation",
                "shape",
                "init",
            )
            else "right",
        )
    for i, r in enumerate(rows):
        t.add_row(*(fmt(v) for v in r), style=(styles[i] if styles else None))
    console.print(t)


def confusion(classes: list, cm, console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    console.print("[bold]confusion matrix[/] (rows: true, columns: predicted)")
    t = Table(header_style="bold")
    t.add_column("")
    for c in classes:
        t.add_column(str(c), justify="right")
    for c, row in zip(classes, cm, strict=True):
        t.add_row(
            str(c),
            *(
                f"[bold green]{v}[/]" if i == j else (str(v) if v else "[dim]0[/]")
                for j, v in enumerate(row)
                for i in [classes.index(c)]
            ),
        )
    console.print(t)
