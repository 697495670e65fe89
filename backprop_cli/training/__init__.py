"""Training: a config made concrete (``build``), the mini-batch loop (``trainer``) with its
per-layer diagnostics (``diagnostics``), the run that keeps its files (``run``) and resumes
(``resume``), and clean stops on Ctrl-C or SIGTERM (``stop``)."""

from .build import Setup, build_network, build_optimizer, build_schedule, layer_table, setup
from .run import Run
from .stop import STOP, interrupt_on_signals
from .trainer import EarlyStopping, Trainer, evaluate

__all__ = [
    "STOP",
    "EarlyStopping",
    "Run",
    "Setup",
    "Trainer",
    "build_network",
    "build_optimizer",
    "build_schedule",
    "evaluate",
    "interrupt_on_signals",
    "layer_table",
    "setup",
]
