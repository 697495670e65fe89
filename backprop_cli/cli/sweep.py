"""backprop sweep: many configs at once, on a local process pool or a Dask cluster.

The library (``sweep/``) plans and runs the trials and yields events; ``sweep_view`` renders
them: a live table on a terminal, one line per finished trial in a log, JSON Lines with
--json, nothing but errors with --quiet. Only typer is imported at start-up.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from .app import JsonOpt, MlflowOpt, QuietOpt, app, tracking_warning

SweepArg = Annotated[
    Path,
    typer.Argument(
        metavar="SWEEP",
        help="Sweep file (YAML); with --resume, the sweep file or the sweep's directory.",
    ),
]
OutOpt = Annotated[
    str | None,
    typer.Option(
        "--out",
        "-o",
        help="Sweep directory (default: output.dir, else runs/sweeps/NAME).",
        metavar="DIR",
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", "-j", help="Local pool: trials at once (default: the core count)."),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Run on this Dask scheduler (tcp://HOST:PORT) instead.",
        metavar="ADDRESS",
    ),
]
DaskLocalOpt = Annotated[
    int | None,
    typer.Option(
        "--dask-local", help="Run on a Dask LocalCluster of N workers on 127.0.0.1.", metavar="N"
    ),
]
FailFastOpt = Annotated[
    bool, typer.Option("--fail-fast", help="At the first failed trial, start no more trials.")
]
ResumeOpt = Annotated[
    bool,
    typer.Option("--resume", help="Run the trials that did not finish; continue interrupted ones."),
]


@app.command(example="backprop sweep configs/sweeps/iris.yaml --workers 2")
def sweep(
    sweep_file: SweepArg,
    out: OutOpt = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    dask_local: DaskLocalOpt = None,
    fail_fast: FailFastOpt = False,
    resume: ResumeOpt = False,
    mlflow: MlflowOpt = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Train many configs: a base config with a grid and/or random draws of keys, or an Optuna
    search of them (search:); one run per trial."""
    from .. import sweep as sw
    from ..sweep.tracking import tracked_sweep
    from ..training import interrupt_on_signals
    from ..training.tracking import choose
    from . import console
    from .sweep_view import render_end, render_run

    _check_options(quiet, json_out, workers, scheduler, dask_local)
    if out is not None and not out.strip():
        from ..errors import ConfigError

        raise ConfigError(f"--out: expected a directory path (got {out!r})")
    mode = console.choose_mode(json_out, quiet)
    track, warning = choose(mlflow)  # MLflow missing with --mlflow: an error, before anything
    if warning:
        tracking_warning(warning)
    # Every trial's config is checked, and the backend opened, before anything is created.
    with sw.open_sweep(
        sweep_file,
        out=out,
        resume=resume,
        fail_fast=fail_fast,
        workers=workers,
        scheduler=scheduler,
        dask_local=dask_local,
    ) as runner:
        if not runner.remaining:
            console.note(f"{runner.dir}: nothing to resume: every trial has finished", mode)
            summary = runner.summary()
            render_end(summary, mode, runner.sweep)
        else:
            interrupt_on_signals()  # a first Ctrl-C or SIGTERM stops the sweep; a second kills it
            with tracked_sweep(runner, track, tracking_warning):  # each trial nested in one run
                summary = render_run(runner, mode)
    _exit_code(summary, runner.dir, _again(workers, scheduler, dask_local, fail_fast))


def _check_options(
    quiet: bool, json_out: bool, workers: int | None, scheduler: str | None, dask_local: int | None
) -> None:
    """The options' combinations; the rest is the library's to check."""
    from ..errors import ConfigError

    if quiet and json_out:
        raise ConfigError("--quiet and --json: give one or the other")
    if scheduler is not None and dask_local is not None:
        raise ConfigError("--scheduler and --dask-local: give one or the other")
    if scheduler is not None and not scheduler.strip():
        raise ConfigError("--scheduler: expected a Dask scheduler address such as tcp://HOST:8786")
    if workers is not None and (scheduler is not None or dask_local is not None):
        raise ConfigError(
            "--workers: sizes the local pool; a Dask cluster's workers are its own (--dask-local N)"
        )
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers: must be >= 1 (got {workers})")
    if dask_local is not None and dask_local < 1:
        raise ConfigError(f"--dask-local: must be >= 1 (got {dask_local})")


def _again(
    workers: int | None, scheduler: str | None, dask_local: int | None, fail_fast: bool
) -> str:
    """The options to resume with, as the interrupt message repeats them."""
    return "".join(
        f" {opt} {shlex.quote(str(v))}"
        for opt, v in (
            ("--workers", workers),
            ("--scheduler", scheduler),
            ("--dask-local", dask_local),
        )
        if v is not None
    ) + (" --fail-fast" if fail_fast else "")


def _exit_code(summary: dict, sweep_dir: Path, again: str) -> None:
    """0: every trial succeeded (or was pruned); 1: some failed; 130: interrupted (with the
    resume command)."""
    from ..errors import CheckFailed, Interrupted

    if summary["stopped"]:
        done = summary["succeeded"] + summary["pruned"] + summary["failed"]
        stopped = (
            f", {summary['interrupted']} stopped with their completed epochs saved"
            if summary["interrupted"]
            else ""
        )
        raise Interrupted(
            f"interrupted; {done} of {summary['trials']} trial(s) finished{stopped}, all kept in "
            f"{sweep_dir}; resume with: backprop sweep {shlex.quote(str(sweep_dir))} --resume{again}"
        )
    if summary["failed"]:
        first = summary["failures"][0]
        cancelled = (
            f"; --fail-fast cancelled {summary['cancelled']} trial(s)"
            if summary["cancelled"]
            else ""
        )
        raise CheckFailed(
            f"{summary['failed']} of {summary['trials']} trial(s) failed (first: {first['trial']}, "
            f"{first['status']}){cancelled}; see {summary['summary_csv']}"
        )
