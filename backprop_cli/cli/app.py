"""The Typer app and what every command shares: the --set and --json options, --debug;
--version (--verbose: whether the compiled kernels are in use); help that reads naturally
(``Command``: ``backprop train [OPTIONS] CONFIG``, one example per command); old option
names that still work for one version, with a note (``OldName``, ``renamed``).

One vocabulary across commands: ``--data`` for the rows read, ``--out`` for anything
written (a file or a directory), ``--weights`` for a weights file.

Only typer is imported here and in the command modules at start-up; numpy, pandas,
pydantic, Rich and the library are imported inside the commands, so that ``backprop
--help`` starts fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

OLD_NAMES_GO_IN = "0.3.0"  # the version that drops the old option names


class Command(TyperCommand):
    """A command whose help reads naturally: arguments by their metavar in the usage line
    (``CONFIG``, ``[DIR]``, ``RUN_DIR...``: no ``{config}``, ``[[DIR]]`` or ``<list[Path]>``),
    every option with a metavar (``--out DIR``, ``--eps FLOAT``), and its example (the
    epilog) shown as it is written, never reflowed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:  # --eps FLOAT, --rows N: options without a metavar of their own
            if param.param_type_name == "option" and param.metavar is None and not param.is_flag:
                shown = param.display_type(None).strip("<>")
                param.metavar = {"str": "TEXT", "int": "N"}.get(shown, shown.upper())

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument" and not param.hidden:
                name = _argument_name(param)
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append((_argument_name(param), record[1]))
            else:
                options.append(record)
        for title, records in (("Arguments", arguments), ("Options", options)):
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        if self.epilog:
            with formatter.section("Example"):
                for line in self.epilog.splitlines():
                    formatter.write(f"{'':>{formatter.current_indent}}{line}\n")


def _argument_name(param: Any) -> str:
    name = param.metavar or param.name.upper()
    return name if param.nargs == 1 or name.endswith("...") else f"{name}..."


class _App(typer.Typer):
    """typer.Typer whose commands are ``Command``s, each with one ``example`` command line."""

    def command(self, name: str | None = None, *, example: str | None = None, **kwargs: Any):
        return super().command(name, cls=Command, epilog=example, **kwargs)


app = _App(
    name="backprop",
    help="Train fully connected neural networks with hand-written backpropagation in NumPy, from YAML configs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

state = {"debug": False}

Configs = Annotated[
    list[Path],
    typer.Argument(
        help="YAML config file; several are composed, later files winning (mappings merge, "
        "lists replace).",
        metavar="CONFIG",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="Override a config key: KEY.PATH=VALUE (repeatable).",
        metavar="KEY=VALUE",
    ),
]
WeightsOpt = Annotated[
    Path, typer.Option("--weights", "-w", help="weights.npz of a run.", metavar="FILE")
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json", help="Machine-readable output alone on stdout: JSON Lines (one object per line)."
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
MlflowOpt = Annotated[
    bool | None,
    typer.Option(
        "--mlflow/--no-mlflow",
        help="Log to MLflow (the mlflow extra): the config as params, each epoch's metrics, "
        "the run's files. On when MLFLOW_TRACKING_URI is set, unless --no-mlflow; the "
        "experiment: MLFLOW_EXPERIMENT_NAME, else the config's name.",
        show_default=False,
    ),
]


def tracking_warning(message: str) -> None:
    """A tracking problem: one line on stderr, whatever the output mode; the command goes on."""
    from .console import safe

    print(f"warning: {safe(message)}", file=sys.stderr, flush=True)


def _print_version(verbose: bool) -> None:
    from ..version import __version__

    print(f"backprop {__version__}")
    if verbose:
        from ..nn.fast import status

        print(f"compiled kernels: {status()}")


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            help="With --version: also whether the compiled kernels are in use, and if not, why.",
        ),
    ] = False,
) -> None:
    state["debug"] = debug
    # --version is not an eager option, so that --verbose is read wherever it stands.
    if version:
        _print_version(verbose)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        print(ctx.get_help())
        raise typer.Exit(2)


def OldName(*names: str) -> Any:  # noqa: N802 (an annotation, like typer.Option)
    """A hidden option: an old name of an option, kept working for one version."""
    return typer.Option(*names, hidden=True)


def renamed(old: str, old_value: Any, new: str, value: Any, required: bool = False) -> Any:
    """The option's value, whichever of its names was given: the old name prints a note on
    stderr; both at once, or neither when the option is ``required``, is an error (exit 2)."""
    from ..errors import ConfigError

    if old_value is None:
        if value is None and required:
            raise ConfigError(f"Missing option '{new}'.")
        return value
    if value is not None:
        raise ConfigError(f"{old} and {new}: give {new} alone ({old} is its old name)")
    print(f"note: {old} is now {new} (the old name goes in {OLD_NAMES_GO_IN})", file=sys.stderr)
    return old_value
