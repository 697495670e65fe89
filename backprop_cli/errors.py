"""One exception family (the CLI turns each into an exit code, once, at the boundary), and the
parts every one-line message is made of."""

from __future__ import annotations


class BackpropError(Exception):
    """An error the user can fix; its message is the one line printed on stderr."""

    exit_code = 2


class ConfigError(BackpropError):
    """The config file or a --set override is wrong."""


class DataError(BackpropError):
    """A data file or built-in dataset cannot be used as asked."""


class WeightsError(BackpropError):
    """A weights or checkpoint file is missing, malformed or does not fit."""


class OutputError(BackpropError):
    """A run's files could not be written."""


class DivergenceError(BackpropError):
    """Training produced a non-finite loss; the last finite state was kept."""

    exit_code = 3


class CheckFailed(BackpropError):
    """The command ran, but a check failed (gradcheck over tolerance, eval under a threshold)."""

    exit_code = 1


class MissingExtra(BackpropError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def require_extra(module: str, extra: str, what: str):
    """``module`` imported, or a MissingExtra error: ``WHAT needs the PACKAGE package: pip
    install 'backprop-cli[EXTRA]'``. The optional features (plots, exports, the report, the
    scikit-learn estimators) import their library through this, when first used."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise MissingExtra(
            f"{what} needs the {package} package: pip install 'backprop-cli[{extra}]'"
        ) from None


class Interrupted(BackpropError):
    """Ctrl-C or SIGTERM: stopped after saving the completed epochs."""

    exit_code = 130


# ---------------------------------------------------------------------------- message parts


def did_you_mean(word, choices) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ''."""
    import difflib

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def shown(value, limit: int = 60) -> str:
    """A value as an error message quotes it: repr for text, JSON otherwise, cut at ``limit``."""
    import json

    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
