"""Rendering for every command: the output mode, numbers, lines, tables, errors.

The output mode follows where stdout goes: ``live`` on a terminal, ``plain`` (one line per
event, no redraws) when stdout is a file, pipe or CI log, ``json`` for --json (JSON Lines
alone on stdout), ``quiet`` for --quiet (nothing but errors, which go to stderr).

Tables and text go through ``stdout_console``: on a terminal they fit its width; anywhere
else they are as wide as they need to be, never cut, folded or wrapped at 80 columns.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..store.files import json_safe

LEFT_COLUMNS = (
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
    "column",
    "type",
    "gaps",
    "encoding",
    "class",
    "target",
)


UNBOUNDED = 100_000  # columns of a console that is not a terminal: wider than any table


def stdout_console() -> Console:
    """The Rich console of stdout: on a terminal, its width (tables fit, text wraps between
    words); in a file, a pipe or a CI log, unbounded: every column, whole names, no line
    broken (a reader cannot widen a file). Whether stdout is a terminal is asked of stdout
    itself: FORCE_COLOR asks for colour in a CI log, not for its lines to be cut at 80."""
    return Console(highlight=False, width=None if stdout_is_terminal() else UNBOUNDED)


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def choose_mode(json_out: bool, quiet: bool, console: Console | None = None) -> str:
    """json, quiet, else live on a terminal and plain lines elsewhere: a CI log with
    FORCE_COLOR set gets plain lines (a live display there would be a redraw per frame)."""
    if json_out:
        return "json"
    if quiet:
        return "quiet"
    terminal = console.is_terminal if console is not None else stdout_is_terminal()
    return "live" if terminal else "plain"


@contextmanager
def status(
    mode: str, message: str, console: Console | None = None
) -> Iterator[Callable[[str], None]]:
    """A spinner saying ``message`` on a terminal (live mode) while the block runs; the block
    changes the message by calling what this yields. In any other mode, nothing at all."""
    if mode != "live":
        yield lambda _message: None
        return
    console = console or Console()
    with console.status(Text(safe(message))) as shown:
        yield lambda m: shown.update(Text(safe(m)))


def safe(text: str) -> str:
    """``text`` with control characters written as escapes (``\\x1b``), so that a column
    name, a file name or a label from someone's data cannot move the cursor, recolour or
    clear a terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def fmt(value: Any, digits: int = 4) -> str:
    """A value as a cell or in a line: numbers to ``digits`` places, text made ``safe``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}f}"
    return safe(str(value))


def text(value: Any) -> Text:
    """A cell of a Rich table: ``fmt``'s text, never read as markup (a label '[/x]' is text)."""
    return Text(fmt(value))


def emit(text: str) -> None:
    """A line on stdout, flushed (stdout is the CLI's SafeStdout: when the reader has gone, a
    line is dropped and the command carries on)."""
    sys.stdout.write(safe(text) + "\n")
    sys.stdout.flush()


def json_line(obj: dict) -> None:
    emit(json.dumps(json_safe(obj)))


def note(message: str, mode: str) -> None:
    """A one-off message: a JSON line with --json, nothing with --quiet, else a plain line."""
    if mode == "json":
        json_line({"event": "note", "message": message})
    elif mode != "quiet":
        emit(message)


def print_error(message: str) -> None:
    sys.stderr.write(f"error: {safe(' '.join(message.split()))}\n")  # always one line
    sys.stderr.flush()


def key_values(title: str, items: list[tuple[str, Any]], console: Console | None = None) -> None:
    console = console or stdout_console()
    console.print(Text(safe(title), style="bold"), soft_wrap=True)
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for k, v in items:
        table.add_row(text(k), text(v))
    console.print(table)


def table(
    title: str | None,
    columns: list[str],
    rows: list[list[Any]],
    console: Console | None = None,
    styles: list[str | None] | None = None,
) -> None:
    console = console or stdout_console()
    t = Table(title=title, title_justify="left", title_style="bold", header_style="bold")
    for c in columns:
        t.add_column(c, justify="left" if c in LEFT_COLUMNS else "right")
    for i, r in enumerate(rows):
        t.add_row(*(text(v) for v in r), style=(styles[i] if styles else None))
    console.print(t)


def confusion(classes: list, cm, console: Console | None = None) -> None:
    console = console or stdout_console()
    console.print("[bold]confusion matrix[/] (rows: true, columns: predicted)")
    t = Table(header_style="bold")
    t.add_column("")
    for c in classes:
        t.add_column(text(c), justify="right")
    for i, (c, row) in enumerate(zip(classes, cm, strict=True)):
        t.add_row(
            text(c),
            *(
                f"[bold green]{v}[/]" if i == j else (str(v) if v else "[dim]0[/]")
                for j, v in enumerate(row)
            ),
        )
    console.print(t)
