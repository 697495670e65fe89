"""backprop schema (the config's JSON Schema, for editors) and shell completion."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from .app import app

COMPLETE_VAR = "_BACKPROP_COMPLETE"


@app.command(example="backprop schema --out backprop.schema.json")
def schema(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the schema to this file.", metavar="FILE"),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace --out if it exists.")
    ] = False,
) -> None:
    """The JSON Schema of the config file, for editors (yaml-language-server)."""
    from ..schema import schema_text
    from ..store.files import refuse_existing, write_text

    text = schema_text()
    if out is None:
        sys.stdout.write(text)
        return
    refuse_existing(out, overwrite, "--out")
    write_text(out, text)
    print(f"wrote {out}", file=sys.stderr)


if os.environ.get(COMPLETE_VAR):
    # The app is built with add_completion=False, which leaves Typer's shell completion
    # classes unregistered; register them when a shell asks for completions, so that
    # `_BACKPROP_COMPLETE=source_bash backprop` prints the script and the script works.
    from typer._completion_classes import completion_init

    completion_init()
