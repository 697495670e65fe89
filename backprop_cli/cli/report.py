"""backprop report: one HTML page of one run or several."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .app import app


@app.command(example="backprop report runs/vanishing-sigmoid runs/vanishing-fixed --out pair.html")
def report(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(help="Run directories (several are overlaid).", metavar="RUN_DIR..."),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="HTML file (default: RUN_DIR/report.html for one run, report.html for several).",
            metavar="FILE",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace --out if it exists.")
    ] = False,
) -> None:
    """One self-contained HTML page: summary, curves, gradient norms per layer, confusion
    matrix, decision regions (2-D data), the network's weights, the config. Opens from disk
    with the network off. Needs the report extra: pip install 'backprop-cli[report]'."""
    from ..report import REPORT, require, write_report
    from ..store.files import refuse_existing

    require()
    default = run_dirs[0] / REPORT if len(run_dirs) == 1 else Path(REPORT)
    out = out or default
    refuse_existing(out, overwrite, "--out")
    write_report(run_dirs, out)
    print(f"wrote {out}", file=sys.stderr)
