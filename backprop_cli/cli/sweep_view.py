"""The sweep as it runs: a live Rich table of the trials on a terminal (the running ones,
the failed ones and the best first), one line per finished trial in a log, JSON Lines with
--json; then the counts, the best trial and the failures."""

from __future__ import annotations

import math

MAX_TABLE_ROWS = 20
FINISHED = ("completed", "early_stopping", "pruned", "diverged", "failed")
STATE_STYLE = {
    "diverged": "red",
    "failed": "red",
    "interrupted": "yellow",
    "running": "cyan",
    "pruned": "dim",
}


def render_run(runner, mode: str) -> dict:
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
        render_end(summary, mode, runner.sweep)
    return summary


def _short(v) -> str:
    from ..sweep import show_value

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


def render_end(summary: dict, mode: str, definition) -> None:
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
        ("pruned", "pruned"),
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


def _search_text(search: dict | None) -> str:
    """The start line's words on a search: its sampler and pruner, where the study is."""
    if not search:
        return ""
    pruner = "no pruner" if search["pruner"] == "none" else f"{search['pruner']} pruner"
    return (
        f"; {search['sampler']} search ({search['direction']}), {pruner}, study {search['study']}"
    )


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
                + _search_text(event.get("search"))
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
            render_end(event, self.mode, self.definition)
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

        from .console import fmt, text

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
            f"{len(done)}/{getattr(self.runner, 'budget', len(states))} done, "
            f"{len(running)} running, {len(failed)} failed"
            + (f"; best {best['trial']} {metric} {fmt(best['score'])}" if best else "")
            + (f"; {len(states) - len(rows)} more not shown" if len(rows) < len(states) else "")
        )
        t = Table(
            title=text(f"sweep {self.runner.dir}"),
            title_justify="left",
            caption=caption,
            caption_justify="left",
            header_style="bold",
            box=None,
            pad_edge=False,
        )
        t.add_column("trial")
        for k in keys:
            t.add_column(text(k), justify="right")
        for c in ("state", "epoch", f"best {metric}", "time"):
            t.add_column(c, justify="left" if c == "state" else "right")
        for s in rows:
            epoch = f"{s['epoch']}/{s['epochs']}" if "epoch" in s else ""
            secs = s.get("elapsed_s", s.get("time_s"))
            t.add_row(
                s["trial"],
                *(text(_short(s["values"].get(k))) for k in keys),
                s["state"].replace("_", " "),
                epoch,
                fmt(s["best"]) if "best" in s and not _nan(s["best"]) else "",
                f"{secs:.1f}s" if secs is not None else "",
                style="bold green"
                if best and s["trial"] == best["trial"]
                else STATE_STYLE.get(s["state"]),
            )
        return t


def _nan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))
