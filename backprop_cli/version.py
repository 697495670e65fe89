"""The version, in one place: the package, the wheel's metadata (pyproject reads it) and
every run's summary.json and weights spec take it from here."""

__version__ = "0.2.0"
