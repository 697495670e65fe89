"""One exception family; cli.py turns each into an exit code, once, at the boundary."""

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


class Interrupted(BackpropError):
    """Ctrl-C or SIGTERM: stopped after saving the completed epochs."""

    exit_code = 130
