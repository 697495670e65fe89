"""backprop trace and backprop plot: seeing one pass, and seeing a run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .app import JsonOpt, SetOpt, app


@app.command(example="backprop trace configs/xor.yaml --rows 2")
def trace(
    config: Annotated[Path, typer.Argument(help="YAML config file.", metavar="CONFIG")],
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


@app.command(example="backprop plot runs/iris runs/iris-2 --out both.png")
def plot(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(help="Run directories (several are overlaid).", metavar="RUN_DIR..."),
    ],
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
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace --out if it exists.")
    ] = False,
) -> None:
    """One PNG: loss, accuracy or R^2, learning rate, per-layer gradient norms; runs overlaid."""
    from ..errors import OutputError
    from . import plots

    plots.require_matplotlib()
    name = "boundary.png" if boundary else "plot.png"
    if out is None:
        out = run_dirs[0] / name if len(run_dirs) == 1 else Path(name)
    explicit = out != (run_dirs[0] / name if len(run_dirs) == 1 else Path(name))
    if out.exists() and not overwrite:
        hint = (
            "choose another --out or pass --overwrite"
            if explicit
            else "pass --overwrite or --out FILE"
        )
        raise OutputError(f"{out}: already exists; {hint}")
    fig = plots.boundary_figure(run_dirs) if boundary else plots.training_figure(run_dirs)
    plots.save_png(fig, out)
    print(f"wrote {out}", file=sys.stderr)
