"""The runs table of ``backprop runs``: one row per run, never cut (on a terminal, long names
fold; elsewhere the table is as wide as its longest name)."""

from __future__ import annotations

from rich.text import Text

# The table's columns (sort keys) and headers; --json has every column (test_*, task, path).
RUN_TABLE = {
    "name": "name",
    "date": "date",
    "epochs": "epochs",
    "val_loss": "val loss",
    "val_metric": "val acc",
    "stop_reason": "stop",
    "time_s": "time",
}


def _run_cells(r: dict) -> dict[str, str]:
    from .console import fmt

    metric = r["val_accuracy"] if r["val_accuracy"] is not None else r["val_r2"]
    return {
        "name": fmt(r["name"]),
        "date": r["date"][:16].replace("T", " "),  # minutes tell runs apart; --json has seconds
        "epochs": fmt(r["epochs"]),
        "val_loss": fmt(r["val_loss"]),
        "val_metric": fmt(metric),
        "stop_reason": fmt((r["stop_reason"] or "-").replace("_", " ")),
        "time_s": f"{r['time_s']:.1f}s" if r["time_s"] is not None else "-",
    }


def render_runs(rows: list[dict], title: str) -> None:
    from rich import box
    from rich.table import Table

    from .console import stdout_console

    has_acc = any(r["val_accuracy"] is not None for r in rows)
    has_r2 = any(r["val_r2"] is not None for r in rows)
    headers = dict(RUN_TABLE)
    headers["val_metric"] = (
        "acc / R^2" if has_acc and has_r2 else ("val R^2" if has_r2 else "val acc")
    )
    cells = [_run_cells(r) for r in rows]
    t = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )
    for c, header in headers.items():
        width = max(len(row[c]) for row in cells)
        t.add_column(
            header,
            justify="left" if c in ("name", "date", "stop_reason") else "right",
            overflow="fold",
            min_width=min(width, 12) if c == "name" else width,
        )
    for row in cells:
        t.add_row(*(Text(v) for v in row.values()))
    stdout_console().print(t)
