"""backprop train."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .app import (
    Configs,
    JsonOpt,
    MlflowOpt,
    OldName,
    QuietOpt,
    SetOpt,
    app,
    renamed,
    tracking_warning,
)


@app.command(example="backprop train configs/digits.yaml --set training.epochs=5 --out runs/short")
def train(
    config: Configs,
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
    report: Annotated[
        bool,
        typer.Option(
            "--report", help="Also write RUN_DIR/report.html at the end (the report extra)."
        ),
    ] = False,
    mlflow: MlflowOpt = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Train a network; stream each epoch; write the run directory."""
    from . import console

    weights = renamed("--init-from", old_init_from, "--weights", weights)
    mode = console.choose_mode(json_out, quiet)
    # On a terminal, a spinner says what happens until the first batch (the libraries and
    # the data take a moment to load, the kernels longer to compile the first time); then
    # the training view takes over with the batch bar.
    with console.status(mode, "reading the config") as say:
        from ..config import config_source, load_config
        from ..training import Run

        cfg = load_config(config, set_)
        _check_options(out, quiet, json_out, report)
        target = _tracking(mlflow)
        run = Run(
            cfg, config_source(config), out=out, init_from=weights, resume=resume, on_stage=say
        )
    try:
        _train(run, config, set_, mode, report, target)
    finally:
        run.close()


def _tracking(flag: bool | None):
    """Where the run is tracked (a tracking.Target), or None; --mlflow without MLflow is an
    error here, before training; MLFLOW_TRACKING_URI without it, a warning."""
    from ..training.tracking import Target, choose

    track, warning = choose(flag)
    if warning:
        tracking_warning(warning)
    return Target() if track else None


def _check_options(out: str | None, quiet: bool, json_out: bool, report: bool) -> None:
    from ..errors import ConfigError

    if out is not None and not out.strip():
        raise ConfigError(f"--out: expected a directory path (got {out!r})")
    if quiet and json_out:
        raise ConfigError("--quiet and --json: give one or the other")
    if report:
        from ..report import require

        require()  # before training, not after it


def _train(
    run, config: list[Path], set_: list[str] | None, mode: str, report: bool = False, target=None
) -> None:
    from ..training import interrupt_on_signals
    from ..training.tracking import tracked
    from . import console
    from .training_view import TrainingView, training_summary

    nothing = run.nothing_to_resume()
    if nothing:
        console.note(nothing, mode)
        return
    interrupt_on_signals()
    run.start()
    # The MLflow run ends (the run's files logged) after the report, however training stops.
    with tracked(run, target, tracking_warning) as tracker:
        try:
            with TrainingView(mode, run.cfg.training.epochs) as view:
                for record in run.epochs(progress=view.batch):
                    view.epoch(record)
                    tracker.epoch(record)
        except KeyboardInterrupt:
            run.interrupted()
            raise run.interruption(config, set_ or []) from None
        finally:
            if run.summary_data is not None:
                training_summary(run.summary_data, mode, run.rows)
                if report:
                    failing = sys.exc_info()[0] is not None
                    tracker.add(_write_report(run.dir, mode, failing))


def _write_report(run_dir: Path, mode: str, failing: bool) -> Path | None:
    """RUN_DIR/report.html (replaced on --resume: the run's own file). When training itself
    failed (diverged, interrupted), a report that cannot be written is a warning, so that
    the exit code stays the training's."""
    from ..errors import BackpropError
    from ..report import REPORT, write_report
    from . import console

    path = Path(run_dir) / REPORT
    try:
        write_report([run_dir], path)
    except BackpropError as e:
        if not failing:
            raise
        print(f"warning: no report: {e}", file=sys.stderr)
        return None
    console.note(f"report: {path}", mode)
    return path
