"""Training as it happens: a live Rich table of the epochs with a batch progress bar on a
terminal, one plain line per epoch in a log, JSON Lines with --json; then the summary with
sparklines of the loss and the last epoch's gradient strip, drawn from the rows in memory.
"""

from __future__ import annotations

import math
import sys

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..store.rundir import METRIC_COLUMNS
from .console import emit, fmt, json_line, safe

MAX_LIVE_ROWS = 15
MAIN_COLUMNS = (*METRIC_COLUMNS, "lr")
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


class TrainingView:
    """Shows each epoch record as it arrives, in the output mode; ``batch`` is the training
    loop's progress callback (done, total) per batch. Warnings (vanishing or exploding
    gradients, rollbacks) are shown once, as they come: on stderr in plain mode, above the live
    table on a terminal, as ``{"event": "warning"}`` lines with --json.

    Use as a context manager around the loop: ``with TrainingView(mode, epochs) as view: for
    record in run.epochs(progress=view.batch): view.epoch(record)``.
    """

    def __init__(self, mode: str, epochs: int, console: Console | None = None):
        self.mode, self.epochs = mode, epochs
        self.console = console or Console()
        self.rows: list[dict] = []
        self.next_epoch = 1
        self.live: Live | None = None
        self.progress: Progress | None = None

    def __enter__(self) -> TrainingView:
        if self.mode == "live":
            self.progress = Progress(
                TextColumn("epoch {task.fields[epoch]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("batches"),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self.task = self.progress.add_task("train", total=1, epoch=1)
            self.live = Live(self._group(), console=self.console, refresh_per_second=8)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> bool:
        if self.live is not None:
            self.progress.update(self.task, visible=False)
            self.live.update(_epoch_table(self.rows, self.epochs))
            self.live.__exit__(*exc)
            self.live = None
        return False

    def _group(self) -> Group:
        return Group(_epoch_table(self.rows, self.epochs), self.progress)

    def batch(self, done: int, total: int) -> None:
        if self.progress is not None:
            epoch = f"{self.next_epoch}/{self.epochs}"
            self.progress.update(self.task, completed=done, total=total, epoch=epoch)

    def epoch(self, record: dict) -> None:
        warnings = record.get("warnings", [])
        self.next_epoch = record["epoch"] + 1
        if self.live is not None:
            for w in warnings:
                self.live.console.print(
                    f"[bold yellow]warning:[/] {escape(safe(w))}", soft_wrap=True, highlight=False
                )
            self.rows.append(record)
            self.live.update(self._group())
            return
        self.rows.append(record)
        if self.mode == "plain":
            for w in warnings:
                print(f"warning: {w}", file=sys.stderr, flush=True)
            emit(plain_line(record, self.epochs))
        elif self.mode == "json":
            for w in warnings:
                json_line({"event": "warning", "epoch": record["epoch"], "message": w})
            json_line({"event": "epoch", **{k: v for k, v in record.items() if k != "warnings"}})


def training_summary(
    summary: dict, mode: str, rows: list[dict], console: Console | None = None
) -> None:
    """The end of a run: how it stopped, the best epoch, the test split, sparklines of ``rows``
    (every epoch of the run, resumed ones included), where the files are."""
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
        scaled = (
            " (losses on the standardized target)" if summary.get("target_standardized") else ""
        )
        lines.append(
            f"best epoch {best.get('epoch')} by {summary['best_by']}: "
            + ", ".join(
                f"{k} {fmt(v)}" for k, v in best.items() if k not in ("epoch", "time_s", "lr")
            )
            + scaled
        )
    if test.get("rows"):
        lines.append(
            f"test ({test['rows']} rows): loss {fmt(test.get('loss'))}, {metric} {fmt(test.get(metric))}"
        )
    lines += history_lines(rows)
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


def history_lines(rows: list[dict]) -> list[str]:
    """Sparklines of the train and validation loss and the last epoch's gradient strip;
    nothing when they cannot be shown (too few epochs, or a terminal without the blocks)."""
    try:
        if not BLOCKS.encode(sys.stdout.encoding or "utf-8"):
            return []
    except (UnicodeError, LookupError):
        return []
    lines, parts = [], []
    for label, name in (("train", "train_loss"), ("val", "val_loss")):
        series = [v for v in (r.get(name, math.nan) for r in rows) if math.isfinite(v)]
        if len(series) >= 2:
            parts.append(
                f"{label} {sparkline(series, log=True)} {fmt(series[0])} -> {fmt(series[-1])}"
            )
    if parts:
        lines.append("loss  " + "   ".join(parts) + "  (log scale)")
    norms = grad_norms(rows[-1]) if rows else []
    if grad_strip(norms).strip():
        lines.append(
            f"grads  {grad_strip(norms)}  {fmt(min(norms))}..{fmt(max(norms))} "
            "(last epoch's gradient norm by layer, first layer left)"
        )
    return lines
