"""backprop train."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import JsonOpt, OldName, QuietOpt, SetOpt, app, renamed


@app.command(example="backprop train configs/digits.yaml --set training.epochs=5 --out runs/short")
def train(
    config: Annotated[Path, typer.Argument(help="YAML config file.", metavar="CONFIG")],
    set_: SetOpt = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Run directory (default: output.dir, else runs/NAME).",
            metavar="DIR",
        ),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights",
            "-w",
            help="Start from this weights file's parameters (same architecture) instead of model.init.",
            metavar="FILE",
        ),
    ] = None,
    old_init_from: Annotated[str | None, OldName("--init-from")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out DIR from its checkpoint.")
    ] = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Train a network; stream each epoch; write the run directory."""
    from ..config import load_config
    from ..errors import ConfigError
    from ..training import Run
    from . import console

    weights = renamed("--init-from", old_init_from, "--weights", weights)
    cfg = load_config(config, set_)
    if out is not None and not out.strip():
        raise ConfigError(f"--out: expected a directory path (got {out!r})")
    if quiet and json_out:
        raise ConfigError("--quiet and --json: give one or the other")
    run = Run(cfg, str(config), out=out, init_from=weights, resume=resume)
    try:
        _train(run, config, set_, console.choose_mode(json_out, quiet))
    finally:
        run.close()


def _train(run, config: Path, set_: list[str] | None, mode: str) -> None:
    from ..training import interrupt_on_signals
    from . import console
    from .training_view import TrainingView, training_summary

    nothing = run.nothing_to_resume()
    if nothing:
        console.note(nothing, mode)
        return
    interrupt_on_signals()
    run.start()
    try:
        with TrainingView(mode, run.cfg.training.epochs) as view:
            for record in run.epochs(progress=view.batch):
                view.epoch(record)
    except KeyboardInterrupt:
        run.interrupted()
        raise run.interruption(config, set_ or []) from None
    finally:
        if run.summary_data is not None:
            training_summary(run.summary_data, mode, run.rows)
