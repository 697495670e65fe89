"""The command line: thin Typer commands, one module per group, that declare their options,
call the library and render what it returns; errors become exit codes once, in ``main``.

    train.py     train                  evaluate.py  eval, predict     export.py  export
    checks.py    gradcheck, validate, datasets
    visual.py    trace, plot, report    runs.py      runs          schema.py  schema
    sweep.py     sweep

Rendering lives beside them and knows nothing of the math: ``console`` (output modes,
tables, errors, the status line), ``training_view`` (the epoch rows and the batch bar),
``trace_view``, ``sweep_view``, ``runs_view`` and ``plots``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback

import typer

from .app import app, state

# Each module registers its commands on ``app``, in the order --help lists them.
# isort: off
from . import train, evaluate, export, checks, visual, runs, schema, sweep  # noqa: E402, F401
# isort: on

__all__ = ["app", "main", "run"]

EXIT_INTERNAL = 70


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turn every error into one stderr line and an exit code."""
    from ..errors import BackpropError

    real_stdout, sys.stdout = sys.stdout, SafeStdout(sys.stdout)
    try:
        code = app(args=argv, standalone_mode=False, prog_name="backprop")
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
    finally:
        sys.stdout = real_stdout


class SafeStdout:
    """sys.stdout while a command runs: when the reader has gone (``| head -1``), the disk is
    full (``> /dev/full``) or stdout was closed (``>&-``), further output is dropped and the
    command carries on to its own exit code: a run still trains and writes its files (they
    are the record), eval still applies its gates."""

    def __init__(self, stream):
        self._stream = stream
        self.lost = stream is None

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                return self._stream.write(text)
            except (OSError, ValueError):  # EPIPE, ENOSPC, EBADF; a closed file
                self._lose()
        return len(text)

    def flush(self) -> None:
        if not self.lost:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._lose()

    def _lose(self) -> None:
        """Point the file descriptor at /dev/null, so Python's flush at exit cannot fail."""
        self.lost = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def isatty(self) -> bool:
        return not self.lost and self._stream.isatty()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"

    def __getattr__(self, name: str):
        if self._stream is None:
            raise AttributeError(name)
        return getattr(self._stream, name)


def _report(exc: BaseException, message: str) -> None:
    from .console import print_error

    if state["debug"] or "--debug" in sys.argv:
        traceback.print_exception(exc)
    print_error(message)


def run() -> None:
    sys.exit(main())
