"""The sweep command: many configs at once, on a local process pool or a Dask cluster.

Only typer is imported at start-up; the library (``sweep/``), Rich and Dask are imported
inside the command so that ``backprop --help`` stays fast. The command checks its options'
combinations and calls ``sweep.open_sweep``, which decides everything else (a new sweep or a
resume, the lock, the backend); the runner yields events and this module renders them: a
live table on a terminal, one line per finished trial in a log, JSON Lines with --json,
nothing but errors with --quiet.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import Annotated

import typer

MAX_TABLE_ROWS = 20
FINISHED = ("completed", "early_stopping", "diverged", "failed")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command()(sweep)


def sweep(
    sweep_file: Annotated[
        Path,
        typer.Argument(
            metavar="SWEEP",
            help="Sweep file (YAML); with --resume, the sweep file or the sweep's directory.",
        ),
    ],
    out: Annotated[
        str | None,
        typer.Option(
            "--out", "-o", help="Sweep directory (default: output.dir, else runs/sweeps/NAME)."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", "-j", help="Local pool: trials at once (default: the core count)."
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Run on this Dask scheduler (tcp://HOST:PORT) instead.",
            metavar="ADDRESS",
        ),
    ] = None,
    dask_local: Annotated[
        int | None,
        typer.Option(
            "--dask-local",
            help="Run on a Dask LocalCluster of N workers on 127.0.0.1.",
            metavar="N",
        ),
    ] = None,
    fail_fast: Annotated[
        bool,
        typer.Option("--fail-fast", help="At the first failed trial, start no more trials."),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Run the trials that did not finish; continue interrupted ones."
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Machine-readable JSON Lines on stdout.")
    ] = False,
) -> None:
    """Train many configs: a base config with a grid and/or random draws of keys; one run per trial."""
    from . import console
    from . import sweep as sw
    from .training import interrupt_on_signals

    _check_options(quiet, json_out, workers, scheduler, dask_local)
    mode = console.choose_mode(json_out, quiet)
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
        if not runner.to_run:
            console.note(f"{runner.dir}: nothing to resume: every trial has finished", mode)
            summary = runner.summary()
            _render_end(summary, mode, runner.sweep)
        else:
            interrupt_on_signals()  # a first Ctrl-C or SIGTERM stops the sweep; a second kills it
            summary = _render_run(runner, mode)
    _exit_code(summary, runner.dir, _again(workers, scheduler, dask_local, fail_fast))


def _check_options(
    quiet: bool, json_out: bool, workers: int | None, scheduler: str | None, dask_local: int | None
) -> None:
    """The options' combinations; the rest is the library's to check."""
    from .errors import ConfigError

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


def _render_run(runner, mode: str) -> dict:
    """Run the sweep, rendering its events; a second Ctrl-C kills the trials. Its summary."""
    summary = None
    try:
        with _Renderer(mode, runner, runner.sweep) as render:
            for event in runner.run(watch=mode == "live"):
                render(event)
                if event["event"] == "summary":
                    summary = event
    except KeyboardInterrupt:
        runner.kill()
        summary = runner.summary()
        _render_end(summary, mode, runner.sweep)
    return summary


def _exit_code(summary: dict, sweep_dir: Path, again: str) -> None:
    """0: every trial succeeded; 1: some failed; 130: interrupted (with the resume command)."""
    from .errors import CheckFailed, Interrupted

    if summary["stopped"]:
        done = summary["succeeded"] + summary["failed"]
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


# ---------------------------------------------------------------------------- rendering


def _short(v) -> str:
    from .sweep import show_value

    if isinstance(v, float):
        return f"{v:.4g}"
    return show_value(v)


def _values(values: dict) -> str:
    return " ".join(f"{k}={_short(v)}" for k, v in values.items())


def _trial_line(row: dict, keys: list[str], metric: str) -> str:
    from .console import fmt

    parts = [row["trial"]]
    if keys:
        parts.append(_values({k: row.get(k) for k in keys}))
    parts.append(row["status"].replace("_", " "))
    parts.append(f"{row['epochs']} epoch(s)")
    if row.get("best_epoch") is not None:
        shown = [
            k
            for k in ("val_loss", "val_accuracy", "val_r2", "train_loss")
            if row.get(k) is not None
            and not (k == "train_loss" and row.get("val_loss") is not None)
        ]
        parts.append(
            f"best epoch {row['best_epoch']}: " + " ".join(f"{k} {fmt(row[k])}" for k in shown)
        )
        test = [k for k in ("test_accuracy", "test_r2") if row.get(k) is not None]
        if test:
            parts.append(f"{test[0]} {fmt(row[test[0]])}")
    if row.get("time_s") is not None:
        parts.append(f"{row['time_s']:.2f}s")
    if row.get("error"):
        parts.append(f"error: {' '.join(row['error'].split())}")
    return "  ".join(parts)


def _render_end(summary: dict, mode: str, definition) -> None:
    """The end of a sweep: counts, the best trial, the failures, where the CSV is."""
    from . import console

    if mode == "json":
        console.json_line(summary)
        return
    if mode == "quiet":
        return
    for line in _end_lines(summary, definition):
        console.emit(line)


def _end_lines(summary: dict, definition) -> list[str]:
    from .console import fmt

    counts = [f"{summary['succeeded']} succeeded", f"{summary['failed']} failed"]
    for key, label in (
        ("interrupted", "interrupted"),
        ("cancelled", "cancelled"),
        ("pending", "not started"),
    ):
        if summary[key]:
            counts.append(f"{summary[key]} {label}")
    earlier = f"; {summary['skipped']} had finished before" if summary["skipped"] else ""
    lines = [
        f"sweep: {summary['trials']} trial(s) in {summary['time_s']:.2f}s: {', '.join(counts)}{earlier}"
    ]
    best = summary.get("best")
    if best:
        values = {k: best.get(k) for k in definition.keys}
        lines.append(
            f"best: {best['trial']} by {summary['metric']} {fmt(best['score'])} "
            f"({_values(values)}): {best['dir']}"
        )
    if summary["failures"]:
        lines.append("failed:")
        lines += [
            f"  {f['trial']}: {f['status']}: {' '.join((f['error'] or '').split())}"
            for f in summary["failures"]
        ]
    lines.append(f"summary: {summary['summary_csv']}")
    return lines


class _Renderer:
    """Shows the runner's events in the output mode; a Rich Live table on a terminal."""

    def __init__(self, mode: str, runner, definition):
        self.mode, self.runner, self.definition = mode, runner, definition
        self.live = None

    def __enter__(self):
        if self.mode == "live":
            from rich.console import Console
            from rich.live import Live

            self.live = Live(self._table(), console=Console(highlight=False), refresh_per_second=4)
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.update(self._table())
            self.live.__exit__(*exc)
        return False

    def __call__(self, event: dict) -> None:
        from . import console

        kind = event["event"]
        keys, metric = self.definition.keys, self.definition.metric
        if self.mode == "json":
            if kind in ("start", "trial", "stopping", "summary"):
                console.json_line(event)
            return
        if self.mode == "quiet":
            return
        if kind == "start":
            earlier = f"; {event['skipped']} finished before" if event["skipped"] else ""
            text = (
                f"sweep: {event['to_run']} of {event['trials']} trial(s) to run in "
                f"{event['sweep_dir']} on {event['backend']}; ranked by {event['metric']}{earlier}"
            )
        elif kind == "trial":
            text = _trial_line(event, keys, metric) if self.mode == "plain" else None
        elif kind == "stopping":
            running = ", ".join(event["running"]) or "none"
            text = (
                f"stopping: the running trials ({running}) save their completed epochs; "
                "Ctrl-C again to kill them"
                if event["reason"] == "interrupted"
                else f"stopping: {event['trial']} failed (--fail-fast); waiting for the running "
                f"trials ({running}), starting no more"
            )
        elif kind == "summary":
            if self.live is not None:
                self.live.update(self._table())
                self.live.__exit__(None, None, None)
                self.live = None
            _render_end(event, self.mode, self.definition)
            return
        else:
            text = None
        if self.live is not None:
            if text:
                self.live.console.print(text, soft_wrap=True, markup=False)
            self.live.update(self._table())
        elif text:
            console.emit(text)

    def _table(self):
        from rich.table import Table

        from .console import fmt

        states = self.runner.progress()
        keys, metric = self.definition.keys, self.definition.metric
        running = [s for s in states if s["state"] == "running"]
        done = [s for s in states if s["state"] in FINISHED]
        failed = [s for s in done if s["state"] in ("diverged", "failed")]
        best = self.runner.best()
        shown = {s["trial"] for s in running} | {s["trial"] for s in failed}
        if best:
            shown.add(best["trial"])
        for s in states:  # then the rest in order, up to the table's size
            if len(shown) >= MAX_TABLE_ROWS:
                break
            shown.add(s["trial"])
        rows = [s for s in states if s["trial"] in shown][: MAX_TABLE_ROWS + len(running)]
        caption = (
            f"{len(done)}/{len(states)} done, {len(running)} running, {len(failed)} failed"
            + (f"; best {best['trial']} {metric} {fmt(best['score'])}" if best else "")
            + (f"; {len(states) - len(rows)} more not shown" if len(rows) < len(states) else "")
        )
        t = Table(
            title=f"sweep {self.runner.dir}",
            title_justify="left",
            caption=caption,
            caption_justify="left",
            header_style="bold",
            box=None,
            pad_edge=False,
        )
        t.add_column("trial")
        for k in keys:
            t.add_column(k, justify="right")
        for c in ("state", "epoch", f"best {metric}", "time"):
            t.add_column(c, justify="left" if c == "state" else "right")
        style = {"diverged": "red", "failed": "red", "interrupted": "yellow", "running": "cyan"}
        for s in rows:
            epoch = f"{s['epoch']}/{s['epochs']}" if "epoch" in s else ""
            secs = s.get("elapsed_s", s.get("time_s"))
            t.add_row(
                s["trial"],
                *(_short(s["values"].get(k)) for k in keys),
                s["state"].replace("_", " "),
                epoch,
                fmt(s["best"]) if "best" in s and not _nan(s["best"]) else "",
                f"{secs:.1f}s" if secs is not None else "",
                style="bold green"
                if best and s["trial"] == best["trial"]
                else style.get(s["state"]),
            )
        return t


def _nan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))
