"""backprop sweep (its module moves here from cli_sweep.py)."""

from ..cli_sweep import sweep
from .app import app

app.command()(sweep)
