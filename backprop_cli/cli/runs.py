"""backprop runs: the runs under a directory, side by side."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .app import JsonOpt, app


@app.command("runs", example="backprop runs runs/sweeps/iris --sort val_loss")
def runs_(
    directory: Annotated[
        Path, typer.Argument(help="Directory holding run directories.", metavar="DIR")
    ] = Path("runs"),
    sort: Annotated[
        str | None,
        typer.Option(
            "--sort",
            help="Sort by this column (ascending; -COLUMN for descending).",
            metavar="COLUMN",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """A table of the runs under DIR (default runs/) from their summary.json files."""
    from ..catalog import collect_runs, sort_rows
    from . import console
    from .runs_view import render_runs

    rows, warnings = collect_runs(directory)
    if sort is not None:
        rows = sort_rows(rows, sort)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if json_out:
        for r in rows:
            console.json_line(r)
        return
    if not rows:
        print(f"no runs under {directory} (no summary.json files)")
        return
    render_runs(
        rows, f"{len(rows)} run(s) under {directory}" + (f", sorted by {sort}" if sort else "")
    )
