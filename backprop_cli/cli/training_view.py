"""Training as it happens. On a terminal each completed epoch is printed as a row, with the
header once at the top, so every epoch stays in the scrollback; the live region below the
rows holds only the running epoch's batch bar. The columns are chosen once, for the
terminal's width: what does not fit is given up (the gradient range, the gradient strip,
the long headers, then time and lr) so that a row never wraps. One plain line per epoch in
a log, JSON Lines with --json; then the summary with sparklines of the loss and the last
epoch's gradient strip, drawn from the rows in memory and fitted to the width.
"""

from __future__ import annotations

import math
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from ..store.rundir import METRIC_COLUMNS
from .console import emit, fmt, json_line, safe

MAIN_COLUMNS = (*METRIC_COLUMNS, "lr")
BLOCKS = "▁▂▃▄▅▆▇█"
STRIP_DECADES = 8  # the strip spans this many orders of magnitude below the largest norm
GAP = "  "  # between columns
SHORT = {"train_accuracy": "train_acc", "val_accuracy": "val_acc", "time_s": "time"}
# The widest a column's values usually are: fmt's numbers ("6.452e-05"), accuracies
# ("0.9591"), times ("12.34s"); a rarer wider value shifts its row, never wraps it.
NUMBER_WIDTH = 9
VALUE_WIDTH = {"train_accuracy": 6, "val_accuracy": 6, "time_s": 6}
GRADS = "grad norms by layer"
SPAN_WIDTH = 2 * NUMBER_WIDTH + 2  # "6.452e-05..1.234e+00"


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


@dataclass(frozen=True)
class Layout:
    """Which parts of an epoch row are shown: the record's columns (after the epoch), short
    headers or not, the gradient strip, and its numeric range."""

    columns: tuple[str, ...]
    short: bool = False
    strip: bool = True
    span: bool = True


def layouts(columns: list[str]) -> Iterator[Layout]:
    """From the fullest row to the barest, in the order things are given up to fit a width."""
    full = tuple(columns)
    yield Layout(full)
    yield Layout(full, span=False)
    yield Layout(full, strip=False, span=False)
    yield Layout(full, short=True, strip=False, span=False)
    no_time = tuple(c for c in full if c != "time_s")
    yield Layout(no_time, short=True, strip=False, span=False)
    yield Layout(tuple(c for c in no_time if c != "lr"), short=True, strip=False, span=False)


class EpochRows:
    """The epoch table as lines printed one at a time: the columns and their widths are
    chosen once, from the first record, so that a row fits in ``width`` characters."""

    def __init__(self, record: dict, epochs: int, width: int):
        self.epochs, self.width = epochs, width
        self.n_layers = len(grad_norms(record))
        self.epoch_width = max(len("epoch"), len(f"{epochs}/{epochs}"))
        for layout in layouts(_main_columns(record)):
            self.layout = layout
            if self.row_width(layout) <= width:
                break
        self.best = math.inf

    def _header(self, c: str) -> str:
        return SHORT.get(c, c) if self.layout.short else c

    def _widths(self, layout: Layout) -> list[int]:
        names = [SHORT.get(c, c) if layout.short else c for c in layout.columns]
        return [
            max(len(n), VALUE_WIDTH.get(c, NUMBER_WIDTH))
            for n, c in zip(names, layout.columns, strict=True)
        ]

    def row_width(self, layout: Layout) -> int:
        """Characters in a row of ``layout`` (values of the usual widths)."""
        width = self.epoch_width + sum(len(GAP) + w for w in self._widths(layout))
        if self.layout_has_grads(layout):
            width += len(GAP) + self.n_layers + (1 + SPAN_WIDTH if layout.span else 0)
        return width

    def layout_has_grads(self, layout: Layout) -> bool:
        return layout.strip and self.n_layers > 0

    def header(self) -> Text:
        cells = [f"{'epoch':>{self.epoch_width}}"]
        widths = self._widths(self.layout)
        cells += [
            f"{self._header(c):>{w}}" for c, w in zip(self.layout.columns, widths, strict=True)
        ]
        if self.layout_has_grads(self.layout):
            cells.append(GRADS if self.layout.span else "grads")
        return self._fit(Text(GAP.join(cells), style="bold"))

    def row(self, record: dict) -> Text:
        """The epoch's row; its validation loss (else its train loss) green where it improves
        on every earlier epoch's (a printed row cannot be restyled when a later one is best)."""
        key_column = "val_loss" if not math.isnan(record["val_loss"]) else "train_loss"
        key = record[key_column]
        better = key < self.best
        self.best = min(self.best, key) if not math.isnan(key) else self.best
        line = Text(f"{record['epoch']}/{self.epochs}".rjust(self.epoch_width))
        widths = self._widths(self.layout)
        for c, w in zip(self.layout.columns, widths, strict=True):
            value = f"{record[c]:.2f}s" if c == "time_s" else fmt(record.get(c))
            line.append(GAP + value.rjust(w), style="green" if better and c == key_column else "")
        norms = grad_norms(record)
        if self.layout_has_grads(self.layout):
            strip = grad_strip(norms).ljust(self.n_layers)
            span = f" {fmt(min(norms))}..{fmt(max(norms))}" if self.layout.span else ""
            line.append(GAP + strip + span)
        line.rstrip()
        return self._fit(line)

    def _fit(self, line: Text) -> Text:
        """``line`` cut to the width (with an ellipsis) where a value wider than usual made it
        longer, or the terminal is narrower than the barest layout: a row never wraps."""
        if line.cell_len > self.width:
            line.truncate(self.width, overflow="ellipsis")
        return line


def plain_line(record: dict, epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}"]
    parts += [f"{k} {fmt(record[k])}" for k in MAIN_COLUMNS if k in record]
    parts.append(f"{record['time_s']:.2f}s")
    norms = grad_norms(record)
    if norms:
        parts.append("grad_norms " + "/".join(f"{g:.1e}" for g in norms))
    return "  ".join(parts)


def wrapped(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken between words, the lines
    after the first indented; a word (a path) longer than the width stays whole."""
    return textwrap.wrap(
        text, width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False
    ) or [""]


class TrainingView:
    """Shows each epoch record as it arrives, in the output mode; ``batch`` is the training
    loop's progress callback (done, total) per batch. Warnings (vanishing or exploding
    gradients, rollbacks) are shown once, as they come: on stderr in plain mode, below their
    epoch's row on a terminal (the header is then printed again), as
    ``{"event": "warning"}`` lines with --json.

    Use as a context manager around the loop: ``with TrainingView(mode, epochs) as view: for
    record in run.epochs(progress=view.batch): view.epoch(record)``.
    """

    def __init__(self, mode: str, epochs: int, console: Console | None = None):
        self.mode, self.epochs = mode, epochs
        self.console = console or Console()
        self.rows: list[dict] = []
        self.next_epoch = 1
        self.table: EpochRows | None = None
        self.header_due = True
        self.progress: Progress | None = None

    def __enter__(self) -> TrainingView:
        if self.mode == "live":
            # Transient: when training ends the bar goes, and the rows above it stay.
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("epoch {task.fields[epoch]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("batches"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
                refresh_per_second=8,
            )
            self.task = self.progress.add_task("train", total=None, epoch=f"1/{self.epochs}")
            self.progress.start()
        return self

    def __exit__(self, *exc) -> bool:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        return False

    def batch(self, done: int, total: int) -> None:
        if self.progress is not None:
            epoch = f"{self.next_epoch}/{self.epochs}"
            self.progress.update(self.task, completed=done, total=total, epoch=epoch)

    def epoch(self, record: dict) -> None:
        warnings = record.get("warnings", [])
        self.next_epoch = record["epoch"] + 1
        self.rows.append(record)
        if self.progress is not None:
            self._print_row(record, warnings)
            if self.next_epoch <= self.epochs:
                epoch = f"{self.next_epoch}/{self.epochs}"
                self.progress.update(self.task, completed=0, epoch=epoch)
        elif self.mode == "plain":
            for w in warnings:
                print(f"warning: {w}", file=sys.stderr, flush=True)
            emit(plain_line(record, self.epochs))
        elif self.mode == "json":
            for w in warnings:
                json_line({"event": "warning", "epoch": record["epoch"], "message": w})
            json_line({"event": "epoch", **{k: v for k, v in record.items() if k != "warnings"}})

    def _print_row(self, record: dict, warnings: list[str]) -> None:
        """The epoch's row above the bar (the header first where due), then its warnings."""
        con = self.console
        if self.table is None:
            self.table = EpochRows(record, self.epochs, con.width)
        if self.header_due:
            con.print(self.table.header(), no_wrap=True, crop=True)
            self.header_due = False
        con.print(self.table.row(record), no_wrap=True, crop=True)
        for w in warnings:
            lines = wrapped(f"warning: {safe(w)}", con.width)
            first = Text(lines[0])
            first.stylize("bold yellow", 0, len("warning:"))
            con.print(first, *map(Text, lines[1:]), sep="\n", soft_wrap=True)
            self.header_due = True


def training_summary(
    summary: dict, mode: str, rows: list[dict], console: Console | None = None
) -> None:
    """The end of a run: how it stopped, the best epoch, the test split, sparklines of ``rows``
    (every epoch of the run, resumed ones included), where the files are. On a terminal the
    lines are fitted to its width (broken between words, the sparklines narrowed)."""
    if mode == "json":
        json_line({"event": "summary", **summary})
        return
    if mode == "quiet":
        return
    console = console or Console(highlight=False)
    width = console.width if console.is_terminal else None
    lines = summary_lines(summary, rows, width)
    if console.is_terminal:
        for line in lines:
            console.print(Text(safe(line)), soft_wrap=True)
    else:
        for line in lines:
            emit(line)


def summary_lines(summary: dict, rows: list[dict], width: int | None = None) -> list[str]:
    """The summary's lines; with a ``width``, none longer where it can be helped (a path
    longer than the width stays whole)."""
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
    if width is not None:
        lines = [part for line in lines for part in wrapped(line, width)]
    lines += history_lines(rows, width)
    files = "  (weights.npz, metrics.csv, summary.json, config.yaml, checkpoint.npz)"
    run = f"run: {summary['run_dir']}"
    lines.append(run + files if width is None or len(run + files) <= width else run)
    return lines


SPARK_WIDTH = 40  # at most this many blocks; longer runs are averaged into buckets
MIN_SPARK = 8  # narrower than this, a sparkline says too little to be shown


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


def history_lines(rows: list[dict], width: int | None = None) -> list[str]:
    """Sparklines of the train and validation loss and the last epoch's gradient strip;
    nothing when they cannot be shown (too few epochs, or a terminal without the blocks).
    With a ``width``, no line is longer: the two losses go on a line each, their sparklines
    narrowed, and the strip's explanation shortened, as far as needed."""
    try:
        if not BLOCKS.encode(sys.stdout.encoding or "utf-8"):
            return []
    except (UnicodeError, LookupError):
        return []
    series = []
    for label, name in (("train", "train_loss"), ("val", "val_loss")):
        values = [v for v in (r.get(name, math.nan) for r in rows) if math.isfinite(v)]
        if len(values) >= 2:
            series.append((label, values))
    lines = _loss_lines(series, width) if series else []
    norms = grad_norms(rows[-1]) if rows else []
    strip = grad_strip(norms)
    if strip.strip():
        span = f"{fmt(min(norms))}..{fmt(max(norms))}"
        fits = [
            f"grads  {strip}  {span} (last epoch's gradient norm by layer, first layer left)",
            f"grads  {strip}  {span} (last epoch, by layer)",
            f"grads  {strip}  {span}",
            f"grads  {strip}",
        ]
        lines.append(next((f for f in fits if width is None or len(f) <= width), fits[-1]))
    return lines


def _loss_lines(series: list[tuple[str, list[float]]], width: int | None) -> list[str]:
    """The loss sparklines: one line, or where it is wider than ``width``, a line per series."""

    def part(label: str, values: list[float], n: int) -> str:
        return f"{label} {sparkline(values, n, log=True)} {fmt(values[0])} -> {fmt(values[-1])}"

    one = "loss  " + "   ".join(part(lb, v, SPARK_WIDTH) for lb, v in series) + "  (log scale)"
    if width is None or len(one) <= width:
        return [one]
    pad = max(len(lb) for lb, _ in series)
    # the longest line's text beside its sparkline
    text = max(len(f"loss  {lb:{pad}}  {fmt(v[0])} -> {fmt(v[-1])}") for lb, v in series)
    for note in ("  (log scale)", " (log)", ""):
        n = min(SPARK_WIDTH, width - text - len(note))
        if n >= MIN_SPARK:
            break
    else:
        return []
    lines = []
    for i, (lb, v) in enumerate(series):
        lead = "loss  " if i == 0 else " " * len("loss  ")
        lines.append(lead + part(lb.ljust(pad), v, n) + (note if i == 0 else ""))
    return lines
