"""The Typer app and what every command shares: the --set and --json options, --debug;
--version (--verbose: whether the compiled kernels are in use).

Only typer is imported here and in the command modules at start-up; numpy, pandas,
pydantic, Rich and the library are imported inside the commands, so that ``backprop
--help`` starts fast.
"""

from __future__ import annotations

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

state = {"debug": False}

SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-s", help="Override a config key: KEY.PATH=VALUE (repeatable).", metavar="K=V"
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON Lines on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]


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


JsonDocOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
