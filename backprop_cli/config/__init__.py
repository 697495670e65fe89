"""The YAML config: pydantic models (``models``), safe loading (``yamlfile``), ``--set``
overrides (``overrides``) and one-line errors with key paths (``messages``).

Errors are one line: ``FILE: key.path: what is wrong (got VALUE)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from ..errors import ConfigError
from .compose import compose
from .messages import format_validation_error
from .models import (
    BUILTIN_DATASETS,
    MAX_LAYERS,
    MAX_PARAMETERS,
    OPTIMIZER_MODELS,
    SCHEDULE_MODELS,
    AdamConfig,
    Config,
    DataConfig,
    SGDConfig,
    architecture_problem,
    optimizer_defaults,
    parameter_count,
    schedule_defaults,
    task_of,
)
from .overrides import apply_overrides, key_parts, key_path, parse_override, set_key
from .yamlfile import parse_yaml, read_config_file, read_yaml_file

__all__ = [
    "BUILTIN_DATASETS",
    "MAX_LAYERS",
    "MAX_PARAMETERS",
    "OPTIMIZER_MODELS",
    "SCHEDULE_MODELS",
    "AdamConfig",
    "Config",
    "DataConfig",
    "SGDConfig",
    "apply_overrides",
    "compose",
    "config_source",
    "architecture_problem",
    "format_validation_error",
    "key_parts",
    "key_path",
    "load_config",
    "optimizer_defaults",
    "parameter_count",
    "parse_override",
    "parse_yaml",
    "read_config_file",
    "read_yaml_file",
    "schedule_defaults",
    "set_key",
    "task_of",
    "validate_config",
]


def load_config(
    paths: str | Path | Sequence[str | Path], overrides: list[str] | None = None
) -> Config:
    """Read one config file or compose several (``compose``), apply ``--set`` overrides, and
    validate; every problem is a ConfigError line that names the file to fix."""
    composed = compose([paths] if isinstance(paths, str | Path) else list(paths))
    if overrides:
        apply_overrides(composed.data, overrides)
    return validate_config(composed.data, composed.source_of)


def validate_config(data: dict, source: str | Callable[[Sequence], str]) -> Config:
    """The Config of a raw mapping; the first problem as one ConfigError line from ``source``
    (a name, or a function from the error's key location to the file that set it)."""
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        where = source if isinstance(source, str) else source(e.errors()[0]["loc"])
        raise ConfigError(f"{where}: {format_validation_error(e, data)}") from None


def config_source(paths: str | Path | Sequence[str | Path]) -> str:
    """How messages name a config given as one file or several."""
    return str(paths) if isinstance(paths, str | Path) else " + ".join(map(str, paths))
