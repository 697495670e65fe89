"""backprop export: a trained model as ONNX (preprocessing and network, one graph) or
safetensors (the parameters)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .app import app, renamed


@app.command(
    example="backprop export --weights runs/iris/weights.npz --format onnx --out iris.onnx"
)
def export(
    weights: Annotated[
        Path | None,
        typer.Option("--weights", "-w", help="weights.npz of a run (required).", metavar="FILE"),
    ] = None,
    format_: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="onnx (the whole model) or safetensors.", metavar="FORMAT"
        ),
    ] = "onnx",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="File to write (default: the weights file with .onnx/.safetensors).",
            metavar="FILE",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace --out if it exists.")
    ] = False,
    old_weights: Annotated[Path | None, typer.Argument(hidden=True, metavar="WEIGHTS")] = None,
) -> None:
    """Export a trained model: ONNX from raw columns to labels, or safetensors for PyTorch."""
    from ..errors import ConfigError
    from ..export import FORMATS
    from ..export import export as write
    from ..inference import load_model
    from ..store.files import refuse_existing

    weights = renamed("export WEIGHTS", old_weights, "export --weights WEIGHTS", weights)
    if weights is None:
        raise ConfigError("Missing option '--weights'.")
    if format_ not in FORMATS:
        raise ConfigError(f"--format: {format_!r}; expected one of {', '.join(FORMATS)}")
    out = out or weights.with_suffix(f".{format_}")
    refuse_existing(out, overwrite, "--out")
    write(load_model(weights), format_, out)
    print(f"wrote {out}", file=sys.stderr)
