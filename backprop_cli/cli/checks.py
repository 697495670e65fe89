"""backprop gradcheck, validate and datasets: checking the math, a config, the built-ins."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import Configs, JsonOpt, SetOpt, app


@app.command(example="backprop gradcheck configs/iris.yaml --tol 1e-7")
def gradcheck(
    config: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Check this config's model and loss on a batch of its data (default: every "
            "activation with every loss on a small network); several files are composed.",
            metavar="CONFIG",
        ),
    ] = None,
    set_: SetOpt = None,
    eps: Annotated[float, typer.Option("--eps", help="Central-difference step.")] = 1e-6,
    tol: Annotated[float, typer.Option("--tol", help="Largest relative error that passes.")] = 1e-6,
    rows: Annotated[int, typer.Option("--rows", help="Rows of data in the batch.")] = 8,
    max_entries: Annotated[
        int,
        typer.Option("--max-entries", help="Entries checked per tensor (a sample beyond this)."),
    ] = 2000,
    json_out: JsonOpt = False,
) -> None:
    """Compare backpropagation with central differences in float64; exit 1 over --tol."""
    from ..checks import check_all_combinations, check_config
    from ..errors import CheckFailed, ConfigError

    if not eps > 0:
        raise ConfigError(f"--eps: must be > 0 (got {eps})")
    if not tol > 0:
        raise ConfigError(f"--tol: must be > 0 (got {tol})")
    if rows < 1 or max_entries < 1:
        raise ConfigError("--rows and --max-entries: must be >= 1")
    if not config:
        results = check_all_combinations(eps=eps)
        columns = ["hidden", "output", "loss", "max rel error", "kinks", "status"]
    else:
        results = check_config(config, set_ or [], eps=eps, rows=rows, max_entries=max_entries)
        columns = [
            "tensor",
            "shape",
            "checked",
            "max abs error",
            "max rel error",
            "kinks",
            "status",
        ]
    failed = 0
    for r in results:
        r["status"] = "ok" if r["rel_error"] <= tol else "FAIL"
        failed += r["status"] == "FAIL"
    summary = {"checked": len(results), "failed": failed, "tol": tol, "eps": eps}
    _render_checks(results, columns, summary, json_out)
    if failed:
        raise CheckFailed(f"{failed} gradient check(s) over --tol {tol:g}")


def _cell(r: dict, column: str, keys: dict):
    if column == "shape":
        return "x".join(map(str, r["shape"]))
    if column == "max rel error" and r["rel_error"] == 0 and r.get("max_abs_error", 0) > 0:
        return "< noise"  # every difference within the central difference's rounding
    return r[keys.get(column, column)]


def _render_checks(results: list[dict], columns: list[str], summary: dict, json_out: bool) -> None:
    """The checks as JSON Lines (the summary last), or as a table and the counts."""
    from . import console

    if json_out:
        for r in results:
            console.json_line({"event": "check", **r})
        console.json_line({"event": "summary", **summary})
        return
    keys = {"max rel error": "rel_error", "max abs error": "max_abs_error"}
    table_rows = [[_cell(r, c, keys) for c in columns] for r in results]
    styles = [None if r["status"] == "ok" else "bold red" for r in results]
    title = f"gradient check (float64, eps {summary['eps']:g}, tol {summary['tol']:g})"
    console.table(title, columns, table_rows, styles=styles)
    print(f"{summary['checked'] - summary['failed']} passed, {summary['failed']} failed")


@app.command(example="backprop validate configs/penguins.yaml")
def validate(
    config: Configs,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a config against its data; print the resolved config, layer shapes, parameter count."""
    import yaml

    from ..config import config_source, load_config
    from ..data import describe_columns
    from ..training import layer_table, setup
    from . import console

    cfg = load_config(config, set_)
    run = setup(cfg, config_source(config))
    net = run.net
    layers = layer_table(run)
    inputs = describe_columns(run.prep.columns)
    if json_out:
        console.json_line(
            {
                "config": cfg.resolved(),
                "columns": inputs,
                "layers": layers,
                "parameters": int(net.params.size),
                "rows": {k: len(v) for k, v in run.prep.X.items()},
            }
        )
        return
    # No folding at 80 columns: a long path or column name stays on its line.
    print(yaml.safe_dump(cfg.resolved(), sort_keys=False, width=console.UNBOUNDED), end="")
    _input_table(inputs)
    columns = ["layer", "activation", "shape", "parameters", "init", "dropout", "residual"]
    console.table(
        None,
        ["layer", "activation", "W shape", "parameters", "init", "dropout", "residual"],
        [
            [
                *(d[c] for c in columns[:5]),
                f"{d['dropout']:g}" if d["dropout"] else "",
                "yes" if d["residual"] else "",
            ]
            for d in layers
        ],
    )
    rows = ", ".join(f"{k} {len(v)}" for k, v in run.prep.X.items())
    print(f"{config_source(config)}: ok: {net.params.size} parameters; rows: {rows}")


@app.command(example="backprop datasets --json")
def datasets(json_out: JsonOpt = False) -> None:
    """List the built-in datasets with their shapes."""
    from ..data import describe_builtins
    from . import console

    items = describe_builtins()
    if json_out:
        for d in items:
            console.json_line(d)
        return
    console.table(
        "built-in datasets (data.dataset: NAME)",
        ["name", "rows", "features", "task", "classes", "kind"],
        [[d["name"], d["rows"], d["features"], d["task"], d["classes"], d["kind"]] for d in items],
    )


INPUT_ROWS = 30  # the input table lists this many columns; the rest are counted


def _input_table(inputs: list[dict]) -> None:
    """The raw feature columns: type, how gaps are filled, encoding, width (the network's inputs)."""
    from . import console

    keys = ["column", "type", "gaps", "encoding", "width"]
    rows = [[d[k] for k in keys] for d in inputs[:INPUT_ROWS]]
    if len(inputs) > INPUT_ROWS:
        rest = inputs[INPUT_ROWS:]
        rows.append([f"... {len(rest)} more", "", "", "", sum(d["width"] for d in rest)])
    width = sum(d["width"] for d in inputs)
    console.table(f"input columns ({len(inputs)}, {width} network inputs)", keys, rows)
