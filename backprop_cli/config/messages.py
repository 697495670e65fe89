"""A pydantic ValidationError as one line: ``key.path: what is wrong (got VALUE)``, with a
"did you mean" hint for an unknown key or name."""

from __future__ import annotations

import re

from pydantic import ValidationError

from ..errors import did_you_mean, shown
from .models import (
    OPTIMIZER_MODELS,
    SCHEDULE_MODELS,
    ColumnConfig,
    Config,
    DataConfig,
    EarlyStoppingConfig,
    LayerConfig,
    ModelConfig,
    OutputConfig,
    TrainingConfig,
    WarmupConfig,
)
from .overrides import key_path

# What a pydantic error type means, as the one line says it.
MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "model_type": "expected a mapping",
    "dict_type": "expected a mapping",
    "too_short": "expected at least {min_length} item(s)",
    "too_long": "expected at most {max_length} item(s)",
}

_MODELS_AT = {
    "": Config,
    "data": DataConfig,
    "data.columns.*": ColumnConfig,
    "model": ModelConfig,
    "model.layers[]": LayerConfig,
    "training": TrainingConfig,
    "output": OutputConfig,
    "training.early_stopping": EarlyStoppingConfig,
    "training.warmup": WarmupConfig,
}


def _fields_at(loc, data) -> list[str]:
    key = re.sub(r"\[\d+\]", "[]", key_path(loc))
    if key in ("optimizer", "training.lr_schedule"):
        node = data
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        name = node.get("name") if isinstance(node, dict) else None
        model = (OPTIMIZER_MODELS if key == "optimizer" else SCHEDULE_MODELS).get(name)
        return list(model.model_fields) if model else []
    if len(loc) == 3 and key_path(loc[:2]) == "data.columns":  # data.columns.NAME: a column's
        key = "data.columns.*"
    model = _MODELS_AT.get(key)
    return list(model.model_fields) if model else []


def format_validation_error(e: ValidationError, data: dict) -> str:
    """The first error of a pydantic ValidationError as ``key.path: message (got value)``."""
    err = e.errors(include_url=False)[0]
    loc = list(err["loc"])
    # Discriminated unions put the tag in the path: optimizer.adam.lr -> optimizer.lr.
    if len(loc) >= 2 and loc[0] == "optimizer" and loc[1] in OPTIMIZER_MODELS:
        del loc[1]
    if len(loc) >= 3 and loc[:2] == ["training", "lr_schedule"] and loc[2] in SCHEDULE_MODELS:
        del loc[2]
    loc = [
        p
        for p in loc
        if not (isinstance(p, str) and ("[" in p or p in ("int", "str", "list[str]")))
    ]
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    path = key_path(loc)
    got = f" (got {shown(value)})"
    if kind == "extra_forbidden":
        key = loc[-1]
        parent = key_path(loc[:-1]) or "the top level"
        fields = _fields_at(loc[:-1], data)
        hint = did_you_mean(key, fields)
        return f"{path}: unknown key{hint or ''}{'' if hint else f'; {parent} takes ' + ', '.join(fields)}"
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        what, models = (
            ("lr schedule", SCHEDULE_MODELS)
            if path.endswith("lr_schedule")
            else ("optimizer", OPTIMIZER_MODELS)
        )
        tag = ctx.get("tag")
        return f"{path}.name: unknown {what} {tag!r}{did_you_mean(tag, models)}; expected one of {', '.join(models)}"
    if kind == "value_error":
        msg = str(ctx.get("error", err["msg"]))
        return msg if re.match(r"^[\w.\[\]]+: ", msg) else (f"{path}: {msg}" if path else msg)
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        hint = did_you_mean(value, re.findall(r"'([^']*)'", expected))
        return f"{path}: {shown(value)} is not allowed{hint}; expected one of {expected}"
    if path == "training.batch_size":
        return f"{path}: expected a positive integer or 'full'{got}"
    template = MESSAGES.get(kind)
    msg = template.format(**ctx) if template else err["msg"][0].lower() + err["msg"][1:]
    return f"{path}: {msg}{got}" if path else f"{msg}{got}"
