"""The sweep command: many configs at once, on a local process pool or a Dask cluster."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
