"""The YAML config: pydantic models (``models``), safe loading (``yamlfile``), ``--set``
overrides (``overrides``) and one-line errors with key paths (``messages``).

Errors are one line: ``FILE: key.path: what is wrong (got VALUE)``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from ..errors import ConfigError
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


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read, override and validate a config file; every problem is a ConfigError line."""
    data = read_config_file(path)
    if overrides:
        apply_overrides(data, overrides)
    return validate_config(data, str(path))


def validate_config(data: dict, source: str) -> Config:
    """The Config of a raw mapping; the first problem as one ConfigError line from ``source``."""
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{source}: {format_validation_error(e, data)}") from None
