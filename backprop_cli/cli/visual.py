"""backprop trace, plot and report: seeing one pass, and seeing a run (a PNG, or a page)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .app import Configs, JsonOpt, SetOpt, app


@app.command(example="backprop trace configs/xor.yaml --rows 2")
def trace(
    config: Configs,
    set_: SetOpt = None,
    sample: Annotated[
        int, typer.Option("--sample", help="The first training row traced (0-based).")
    ] = 0,
    rows: Annotated[int, typer.Option("--rows", help="How many rows: a tiny batch.")] = 1,
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            "-w",
            help="Use this weights file's parameters (same architecture).",
            metavar="FILE",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """One forward and one backward pass, step by step: z, a, C, BP1-BP4, the optimizer's update."""
    from ..trace import trace_config
    from .trace_view import json_order, render_trace

    t = trace_config(config, set_ or [], sample=sample, rows=rows, weights=weights)
    if json_out:
        from . import console

        console.json_line(json_order(t))
        return
    render_trace(t)


RunDirs = Annotated[
    list[Path],
    typer.Argument(help="Run directories (several are overlaid).", metavar="RUN_DIR..."),
]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")]


def output_file(run_dirs: list[Path], name: str, out: Path | None, overwrite: bool) -> Path:
    """--out, else RUN_DIR/NAME for one run and NAME here for several; refused if it exists
    and --overwrite is not given, with the hint that fits how it was chosen."""
    from ..errors import OutputError

    default = run_dirs[0] / name if len(run_dirs) == 1 else Path(name)
    path = out or default
    if path.exists() and not overwrite:
        hint = (
            "choose another --out or pass --overwrite"
            if path != default
            else "pass --overwrite or --out FILE"
        )
        raise OutputError(f"{path}: already exists; {hint}")
    return path


@app.command(example="backprop plot runs/iris runs/iris-2 --out both.png")
def plot(
    run_dirs: RunDirs,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            help="PNG file (default: RUN_DIR/plot.png for one run, plot.png for several; "
            "boundary.png with --boundary).",
        ),
    ] = None,
    boundary: Annotated[
        bool,
        typer.Option("--boundary", help="Decision regions over the data (2 input features)."),
    ] = False,
    overwrite: Overwrite = False,
) -> None:
    """One PNG: loss, accuracy or R^2, learning rate, per-layer gradient norms; runs overlaid."""
    from . import plots

    plots.require_matplotlib()
    out = output_file(run_dirs, "boundary.png" if boundary else "plot.png", out, overwrite)
    fig = plots.boundary_figure(run_dirs) if boundary else plots.training_figure(run_dirs)
    plots.save_png(fig, out)
    print(f"wrote {out}", file=sys.stderr)


@app.command(example="backprop report runs/vanishing-sigmoid runs/vanishing-fixed --out pair.html")
def report(
    run_dirs: RunDirs,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="HTML file (default: RUN_DIR/report.html for one run, report.html for several).",
            metavar="FILE",
        ),
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """One self-contained HTML page: summary, curves, gradient norms per layer, confusion
    matrix, decision regions (2-D data), the network's weights, the config. Opens from disk
    with the network off. Needs the report extra: pip install 'backprop-cli[report]'."""
    from ..report import REPORT, require, write_report

    require()
    out = output_file(run_dirs, REPORT, out, overwrite)
    write_report(run_dirs, out)
    print(f"wrote {out}", file=sys.stderr)
