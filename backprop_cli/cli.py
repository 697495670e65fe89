"""The command line: parse, call the library, render, map errors to exit codes (once, in main).

Heavy modules (numpy, pandas, pydantic) are imported inside the commands so that
``backprop --help`` starts fast.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="backprop",
    help="Train fully connected neural networks with hand-written backpropagation in NumPy, from YAML configs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

EXIT_INTERNAL = 70
_state = {"debug": False}

SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-s", help="Override a config key: KEY.PATH=VALUE (repeatable).", metavar="K=V"
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON Lines on stdout.")]


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"backprop {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    _state["debug"] = debug
    if ctx.invoked_subcommand is None:
        print(ctx.get_help())
        raise typer.Exit(2)


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="YAML config file.")],
    set_: SetOpt = None,
    out: Annotated[
        str | None,
        typer.Option("--out", "-o", help="Run directory (default: output.dir, else runs/NAME)."),
    ] = None,
    init_from: Annotated[
        str | None, typer.Option("--init-from", help="Start from this weights file's parameters.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out DIR from its checkpoint.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Train a network; stream each epoch; write the run directory."""
    from . import console
    from .config import load_config
    from .errors import ConfigError
    from .training import Run

    cfg = load_config(config, set_)
    if quiet and json_out:
        raise ConfigError("--quiet and --json: give one or the other")
    run = Run(cfg, str(config), out=out, init_from=init_from, resume=resume)
    mode = console.choose_mode(json_out, quiet)
    nothing = run.nothing_to_resume()
    if nothing:
        console.note(nothing, mode)
        return
    _interrupt_on_signals()
    run.start()
    hook: list = [None]
    records = console.render_training(
        run.epochs(progress=lambda d, t: hook[0] and hook[0](d, t)), cfg.training.epochs, mode, hook
    )
    try:
        for _ in records:
            pass
    except KeyboardInterrupt:
        run.interrupted()
        raise run.interruption(config, set_ or []) from None
    finally:
        if getattr(run, "summary_data", None) is not None:
            console.training_summary(run.summary_data, mode)


@app.command("eval")
def eval_(
    weights: Annotated[Path, typer.Option("--weights", "-w", help="weights.npz of a run.")],
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Evaluate on all rows of this file (it needs the training target column).",
        ),
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Evaluate on a built-in dataset's split.")
    ] = None,
    split: Annotated[
        str, typer.Option("--split", help="Which held-out split to rebuild: test, val or train.")
    ] = "test",
    min_accuracy: Annotated[
        float | None, typer.Option("--min-accuracy", help="Exit 1 if accuracy is below this.")
    ] = None,
    max_loss: Annotated[
        float | None, typer.Option("--max-loss", help="Exit 1 if the loss is above this.")
    ] = None,
    min_r2: Annotated[
        float | None, typer.Option("--min-r2", help="Exit 1 if R^2 is below this (regression).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Evaluate a trained network: loss, accuracy or R^2, confusion matrix."""
    from . import console
    from .errors import CheckFailed, ConfigError
    from .inference import SPLITS, evaluate_model, load_model

    if split not in SPLITS:
        raise ConfigError(f"--split: {split!r} is not a split; expected one of {', '.join(SPLITS)}")
    if data is not None and dataset is not None:
        raise ConfigError("--data and --dataset: give one or the other")
    model = load_model(weights)
    result = evaluate_model(model, data=data, dataset=dataset, split=split)
    failures = []
    if min_accuracy is not None:
        if "accuracy" not in result:
            raise ConfigError("--min-accuracy: this is a regression model; use --min-r2")
        if result["accuracy"] < min_accuracy:
            failures.append(f"accuracy {result['accuracy']:.4f} < --min-accuracy {min_accuracy}")
    if min_r2 is not None:
        if "r2" not in result:
            raise ConfigError("--min-r2: this is a classification model; use --min-accuracy")
        if result["r2"] < min_r2:
            failures.append(f"r2 {result['r2']:.4f} < --min-r2 {min_r2}")
    if max_loss is not None and result["loss"] > max_loss:
        failures.append(f"loss {result['loss']:.4f} > --max-loss {max_loss}")
    result["passed"] = not failures
    result["failures"] = failures
    if json_out:
        console.json_line(result)
    else:
        metric = (
            [("accuracy", result["accuracy"])] if "accuracy" in result else [("r2", result["r2"])]
        )
        console.key_values(
            f"{result['data']}", [("loss", result["loss"]), *metric, ("rows", result["rows"])]
        )
        if "confusion_matrix" in result:
            console.confusion(result["classes"], result["confusion_matrix"])
    if failures:
        raise CheckFailed("; ".join(failures))


@app.command()
def predict(
    weights: Annotated[Path, typer.Option("--weights", "-w", help="weights.npz of a run.")],
    input_: Annotated[
        str, typer.Option("--input", "-i", help="CSV/TSV/Parquet/NPZ file of rows to predict.")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="CSV file to write (default, or -: stdout)."),
    ] = None,
    proba: Annotated[
        bool, typer.Option("--proba", help="Add one probability column per class.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace --output if it exists.")
    ] = False,
) -> None:
    """Predict new rows with the stored preprocessing; CSV out with the original labels."""
    from .errors import OutputError
    from .inference import load_model, predict_rows
    from .store.files import write_text

    if output is not None and str(output) == "-":
        output = None
    if output is not None and os.path.lexists(output) and not overwrite:  # no OSError
        raise OutputError(f"{output}: already exists; choose another --output or pass --overwrite")
    model = load_model(weights)
    frame = predict_rows(model, input_, proba=proba)
    text = frame.to_csv(index=False, lineterminator="\n", float_format="%.8g")
    if output is None:
        sys.stdout.write(text)
        return
    # --overwrite replaces the file a symlink points to, not the link; a device or pipe
    # (/dev/stdout, a FIFO) is written to, never renamed over.
    target = Path(os.path.realpath(output))
    if os.path.lexists(target) and not os.path.isfile(target):  # neither raises OSError
        try:
            with open(target, "w") as f:
                f.write(text)
        except OSError as e:
            raise OutputError(f"{output}: not written ({e.strerror or e})") from None
    else:
        write_text(target, text)
    print(f"wrote {len(frame)} predictions to {output}", file=sys.stderr)


@app.command()
def gradcheck(
    config: Annotated[
        Path | None,
        typer.Argument(help="Check this config's model and loss on a batch of its data."),
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
    from . import console
    from .checks import check_all_combinations, check_config
    from .errors import CheckFailed, ConfigError

    if not eps > 0:
        raise ConfigError(f"--eps: must be > 0 (got {eps})")
    if not tol > 0:
        raise ConfigError(f"--tol: must be > 0 (got {tol})")
    if rows < 1 or max_entries < 1:
        raise ConfigError("--rows and --max-entries: must be >= 1")
    if config is None:
        results = check_all_combinations(eps=eps)
        columns = ["hidden", "output", "loss", "max rel error", "kinks", "status"]
    else:
        results = check_config(config, set_ or [], eps=eps, rows=rows, max_entries=max_entries)
        columns = ["tensor", "shape", "checked", "max rel error", "kinks", "status"]
    failed = 0
    for r in results:
        r["status"] = "ok" if r["rel_error"] <= tol else "FAIL"
        failed += r["status"] == "FAIL"
    if json_out:
        for r in results:
            console.json_line({"event": "check", **r})
        console.json_line(
            {"event": "summary", "checked": len(results), "failed": failed, "tol": tol, "eps": eps}
        )
    else:
        keys = {"max rel error": "rel_error"}
        table_rows = [
            [r[keys.get(c, c)] if c != "shape" else "x".join(map(str, r["shape"])) for c in columns]
            for r in results
        ]
        styles = [None if r["status"] == "ok" else "bold red" for r in results]
        console.table(
            f"gradient check (float64, eps {eps:g}, tol {tol:g})",
            columns,
            table_rows,
            styles=styles,
        )
        print(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        raise CheckFailed(f"{failed} gradient check(s) over --tol {tol:g}")


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="YAML config file.")],
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a config against its data; print the resolved config, layer shapes, parameter count."""
    import yaml

    from . import console
    from .config import load_config
    from .training import setup

    cfg = load_config(config, set_)
    run = setup(cfg, str(config))
    net = run.net
    layers = [
        {
            "layer": i,
            "activation": a,
            "shape": f"{fi}x{fo}",
            "parameters": fi * fo + fo,
            "dropout": p,
            "residual": r,
            "init": layer.init or cfg.model.init,
        }
        for i, (fi, fo, a, p, r, layer) in enumerate(
            zip(
                net.sizes[:-1],
                net.sizes[1:],
                net.activation_names,
                net.dropout,
                net.residual,
                cfg.model.layers,
                strict=True,
            )
        )
    ]
    if json_out:
        console.json_line(
            {
                "config": cfg.resolved(),
                "layers": layers,
                "parameters": int(net.params.size),
                "rows": {k: len(v) for k, v in run.prep.X.items()},
            }
        )
        return
    print(yaml.safe_dump(cfg.resolved(), sort_keys=False), end="")
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
    print(f"{config}: ok: {net.params.size} parameters; rows: {rows}")


@app.command()
def datasets(json_out: JsonOpt = False) -> None:
    """List the built-in datasets with their shapes."""
    from . import console
    from .data import describe_builtins

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


# Commands that live in their own modules (they import only typer at start-up).
from . import cli_sweep, cli_visual  # noqa: E402

cli_visual.register(app)
cli_sweep.register(app)


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM stop training the same way, even where a shell started us with SIGINT ignored."""
    import signal

    from .training import STOP

    def stop(signum, frame):
        if STOP.active and not STOP.requested:
            STOP.requested = True  # the loop stops at the next batch, after any file being written
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turn every error into one stderr line and an exit code."""
    from .errors import BackpropError

    try:
        code = app(args=argv, standalone_mode=False)
        if code == 130:  # typer turns a KeyboardInterrupt outside training into a return of 130
            _report(KeyboardInterrupt(), "interrupted")
        return int(code or 0)
    except BackpropError as e:
        _report(e, str(e))
        return e.exit_code
    except typer.Exit as e:
        return e.exit_code
    except (KeyboardInterrupt, typer.Abort) as e:
        _report(e, "interrupted; the last completed epoch's files are kept")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):  # click/typer usage errors
            if type(e).__name__ == "NoArgsIsHelpError":
                print(e.ctx.get_help() if getattr(e, "ctx", None) else e.format_message())
                return 2
            _report(e, " ".join(e.format_message().split()))
            return int(e.exit_code)
        # A bug: say so in one line; the traceback with --debug.
        _report(
            e,
            f"internal error ({type(e).__name__}: {e}); this is a bug, rerun with --debug for the traceback",
        )
        return EXIT_INTERNAL


def _report(exc: BaseException, message: str) -> None:
    from .console import print_error

    if _state["debug"] or "--debug" in sys.argv:
        traceback.print_exception(exc)
    print_error(message)


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
