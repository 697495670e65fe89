"""The sweep file as pydantic models, and its one-line errors.

A sweep file (``SweepFile``) names a ``base`` config, fixed overrides (``set``), a ``grid``
(KEY: [VALUES]), ``random`` draws (``samples`` of them from a ``seed``, each key from one
distribution: ``Uniform``, ``LogUniform``, ``IntUniform`` or ``Choice``), or with ``search``
(``Search``: an Optuna study) the space a sampler draws from, the ``metric`` that ranks the
trials and the ``output`` directory. The copy a sweep keeps in its directory,
SWEEP_DIR/sweep.yaml (``StoredSweep``), adds what a resume needs: the format and its
version, the source file, the mode, the number of trials and the base config's mapping.

Every model is strict and refuses unknown keys; ``parse_sweep`` turns pydantic's first error
into one ConfigError line: ``FILE: key.path: what is wrong (got VALUE)``.
"""

from __future__ import annotations

import copy
import math
import os
import random
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ..config import key_parts, key_path, read_yaml_file
from ..errors import ConfigError, did_you_mean

FORMAT = "backprop-sweep"
FORMAT_VERSION = 2  # 2: search; a sweep without one is written as 1
SWEEP_FILE = "sweep.yaml"  # the stored sweep, in the sweep's directory
MAX_TRIALS = 10_000
METRICS = tuple(
    f"{split}_{m}" for split in ("val", "train", "test") for m in ("loss", "accuracy", "r2")
)
_SHOWN_LIMIT = 60


def metric_mode(metric: str) -> str:
    """min for losses, max for accuracy and R^2."""
    return "min" if metric.endswith("_loss") else "max"


def show_value(value: Any) -> str:
    """A value as one line of flow YAML, as a sweep file would write it (``0.01``, ``full``,
    ``[64, 64]``): for CSV cells, messages and the live table."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1_000_000)
    text = text.strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")].rstrip()
    return text


def describe(values: dict[str, Any], limit: int = 120) -> str:
    """``key=value key=value`` for messages, cut at ``limit`` characters."""
    text = " ".join(f"{k}={show_value(v)}" for k, v in values.items())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown(value: Any) -> str:
    """A value in a message as the sweep file writes it (flow YAML), cut at 60 characters."""
    text = show_value(value)
    return text if len(text) <= _SHOWN_LIMIT else text[: _SHOWN_LIMIT - 3] + "..."


# ---------------------------------------------------------------------------- the models


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _config_keys(mapping: Any) -> Any:
    """The keys of set, grid and random.keys are config key paths that a trial may set."""
    if not isinstance(mapping, dict):
        return mapping  # pydantic says what was expected
    for k in mapping:
        parts = key_parts(k) if isinstance(k, str) and "=" not in k else []
        if not "".join(str(p) for p in parts):
            raise ValueError(f"{k!r}: expected a config key such as optimizer.lr")
        if parts[0] == "output" and (len(parts) == 1 or parts[1] == "dir"):
            raise ValueError(
                f"{k}: each trial runs in its own directory under the sweep's; "
                "set the sweep's output.dir instead"
            )
    return mapping


def _section(mapping: Any) -> Any:
    """set and grid: an empty value (null, [], '') is an empty section."""
    return _config_keys(mapping or {})


def _low_high(args: Any) -> Any:
    """A range's shape, checked before its numbers: [LOW, HIGH]."""
    if isinstance(args, list) and len(args) == 2:
        return args
    raise ValueError(f"expected [LOW, HIGH] (got {_shown(args)})")


NUMBERS = "numbers [LOW, HIGH] with LOW < HIGH"
INTEGERS = "integers [LOW, HIGH] with LOW <= HIGH"


def _increasing(args: list) -> list:
    if not args[0] < args[1]:
        raise ValueError(f"expected {NUMBERS} (got {_shown(args)})")
    return args


def _non_decreasing(args: list) -> list:
    if not args[0] <= args[1]:
        raise ValueError(f"expected {INTEGERS} (got {_shown(args)})")
    return args


def _positive_low(args: list) -> list:
    if args[0] <= 0:
        raise ValueError(f"LOW must be > 0 (got {args[0]})")
    return args


# A number is kept as written (an int stays an int), so that sweep.yaml repeats the file.
Number = int | Annotated[float, Field(allow_inf_nan=False)]
NumberRange = Annotated[list[Number], BeforeValidator(_low_high), AfterValidator(_increasing)]
IntRange = Annotated[list[int], BeforeValidator(_low_high), AfterValidator(_non_decreasing)]


class _Distribution(_Strict):
    """A key's distribution: a mapping of the distribution's name to its arguments."""

    name: ClassVar[str]
    expected: ClassVar[str] = ""  # what the arguments' items must be, for messages

    def draw(self, rng: random.Random) -> Any:
        raise NotImplementedError


class Uniform(_Distribution):
    """A float from [LOW, HIGH)."""

    name: ClassVar[str] = "uniform"
    expected: ClassVar[str] = NUMBERS
    uniform: NumberRange

    def draw(self, rng: random.Random) -> float:
        lo, hi = self.uniform
        return float(lo) + (float(hi) - float(lo)) * rng.random()


class LogUniform(_Distribution):
    """A float whose logarithm is uniform on [log LOW, log HIGH]: every decade as likely."""

    name: ClassVar[str] = "log_uniform"
    expected: ClassVar[str] = NUMBERS
    log_uniform: Annotated[NumberRange, AfterValidator(_positive_low)]

    def draw(self, rng: random.Random) -> float:
        lo, hi = self.log_uniform
        a, b = math.log(lo), math.log(hi)
        return min(max(math.exp(a + (b - a) * rng.random()), lo), hi)


class IntUniform(_Distribution):
    """An integer from LOW to HIGH, both included."""

    name: ClassVar[str] = "int_uniform"
    expected: ClassVar[str] = INTEGERS
    int_uniform: IntRange

    def draw(self, rng: random.Random) -> int:
        return rng.randint(self.int_uniform[0], self.int_uniform[1])


class Choice(_Distribution):
    """One of the values, each as likely."""

    name: ClassVar[str] = "choice"
    choice: Annotated[list[Any], Field(min_length=1)]

    def draw(self, rng: random.Random) -> Any:
        return copy.deepcopy(self.choice[rng.randrange(len(self.choice))])


DISTRIBUTION_MODELS: dict[str, type[_Distribution]] = {
    m.name: m for m in (Uniform, LogUniform, IntUniform, Choice)
}
DISTRIBUTIONS = tuple(DISTRIBUTION_MODELS)


def _distribution_name(value: Any) -> str | None:
    """A distribution's tag: the one key of its mapping; None when it is not one distribution."""
    if isinstance(value, _Distribution):
        return value.name
    if isinstance(value, dict) and len(value) == 1:
        (name,) = value
        return name if isinstance(name, str) else repr(name)
    return None


Distribution = Annotated[
    Annotated[Uniform, Tag("uniform")]
    | Annotated[LogUniform, Tag("log_uniform")]
    | Annotated[IntUniform, Tag("int_uniform")]
    | Annotated[Choice, Tag("choice")],
    Discriminator(_distribution_name),
]


class Random(_Strict):
    """``samples`` draws of every key, from ``random.Random(seed)``: the same on every machine.
    With ``search``, only ``keys``: the search space, drawn from by the sampler."""

    samples: Annotated[int, Field(ge=1, le=MAX_TRIALS)] | None = None  # required without search
    seed: Annotated[int, Field(ge=0)] = 0
    keys: Annotated[dict[str, Distribution], Field(min_length=1), BeforeValidator(_config_keys)]

    def draw(self) -> list[dict[str, Any]]:
        """The draws, each a mapping of every key to its value."""
        rng = random.Random(self.seed)
        return [{k: d.draw(rng) for k, d in self.keys.items()} for _ in range(self.samples)]


class Output(_Strict):
    """Where the sweep's directory goes (default: runs/sweeps/NAME)."""

    dir: str | None = None

    @field_validator("dir")
    @classmethod
    def _a_path(cls, d: str | None) -> str | None:
        if d is not None and (not d.strip() or "\0" in d):
            raise ValueError("not a directory path")  # said as _AT["output.dir"] says it
        return d


SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
DIRECTIONS = ("minimize", "maximize")
SEARCH_METRICS = tuple(m for m in METRICS if not m.startswith("test_"))  # measured every epoch


class Search(_Strict):
    """An adaptive search (Optuna): ``trials`` trials, each asked of the ``sampler``, each
    reporting ``metric`` every epoch to the ``pruner``. None: the plan fills in the default
    (trials: the grid's size with sampler grid; metric: the sweep's; direction: the metric's)."""

    sampler: Literal[SAMPLERS] = "tpe"  # type: ignore[valid-type]
    trials: Annotated[int, Field(ge=1, le=MAX_TRIALS)] | None = None
    direction: Literal[DIRECTIONS] | None = None  # type: ignore[valid-type]
    metric: Literal[SEARCH_METRICS] | None = None  # type: ignore[valid-type]
    pruner: Annotated[
        Literal[PRUNERS],  # type: ignore[valid-type]
        BeforeValidator(lambda v: "none" if v is None else v),  # pruner: null is none
    ] = "median"
    seed: Annotated[int, Field(ge=0)] = 0


def _whole(message: str) -> PydanticCustomError:
    """A problem of the file as a whole, not of one key: its message has no key path."""
    return PydanticCustomError("sweep_file", "{message}", {"message": message})


class SweepFile(_Strict):
    """A sweep file: the base config and what each trial changes in it."""

    base: str  # the base config's path, relative to the sweep file
    set: Annotated[dict[str, Any], BeforeValidator(_section)] = {}
    grid: Annotated[
        dict[str, Annotated[list[Any], Field(min_length=1)]], BeforeValidator(_section)
    ] = {}
    random: Annotated[Random | None, Field(validate_default=True)] = None
    search: Search | None = None
    metric: Literal[METRICS] | None = None  # type: ignore[valid-type]
    output: Output | None = None

    @field_validator("base")
    @classmethod
    def _a_path(cls, base: str) -> str:
        if not base.strip():
            raise ValueError("not a path")  # said as _AT["base"] says it
        return base

    # Checked with random (validated even when absent), not after the whole model, so that
    # these come before metric's and output's problems, as the file reads top-down.
    @field_validator("random")
    @classmethod
    def _varies_each_key_once(cls, rnd: Random | None, info: ValidationInfo) -> Random | None:
        if "set" not in info.data or "grid" not in info.data:
            return rnd  # their own problems come first
        if not info.data["grid"] and rnd is None:
            raise _whole("nothing to vary; give a grid (KEY: [VALUES]) and/or random draws")
        seen: dict[tuple, str] = {}
        sections = (("set", info.data["set"]), ("grid", info.data["grid"]))
        for section, keys in (*sections, ("random.keys", rnd.keys if rnd is not None else {})):
            for k in keys:
                parts = tuple(key_parts(k))
                for other, where in seen.items():
                    if parts[: len(other)] == other or other[: len(parts)] == parts:
                        raise _whole(f"{section}: {k}: overlaps {where}; give each key once")
                seen[parts] = f"{k} in {section}"
        return rnd

    @model_validator(mode="after")
    def _random_with_search(self) -> SweepFile:
        """Without search, random draws ``samples``; with it, random.keys is the space."""
        rnd, search = self.random, self.search
        if rnd is None:
            return self
        if search is None and rnd.samples is None:
            raise _whole("random.samples: required key is missing (how many draws)")
        if search is not None and rnd.samples is not None:
            raise _whole("random.samples: with search, the trials are search.trials; remove it")
        if search is not None and "seed" in rnd.model_fields_set:
            raise _whole("random.seed: with search, the sampler's seed is search.seed; remove it")
        if search is not None and search.sampler == "grid":
            raise _whole(
                "random.keys: sampler grid tries the grid's values only; "
                "use sampler tpe or random to draw from distributions"
            )
        return self


class StoredSweep(SweepFile):
    """SWEEP_DIR/sweep.yaml: the sweep as started, with what a resume needs."""

    format: Literal[FORMAT]  # type: ignore[valid-type]
    version: Annotated[int, Field(le=FORMAT_VERSION)]
    source: str | None = None  # the sweep file, absolute
    mode: Literal["min", "max"] | None = None
    trials: int | None = None  # how many trials the grid and draws give (or search.trials)
    base_config: dict  # the base config's mapping, as read


# ---------------------------------------------------------------------------- one-line errors

SWEEP_KEYS = tuple(SweepFile.model_fields)
RANDOM_KEYS = tuple(Random.model_fields)
SEARCH_KEYS = tuple(Search.model_fields)
_FIRST = ("format", "version")  # a stored file of another format says only that
_NESTED = {"random": list(RANDOM_KEYS), "search": list(SEARCH_KEYS), "output": ["dir"]}
_SECTIONS = {
    "set": "KEY: VALUE overrides",
    "grid": "KEY: [VALUES]",
    "random.keys": "KEY: {DISTRIBUTION: ...}",
}
_AT = {  # the message for any problem with these keys' values
    "format": f"not a sweep written by backprop sweep (no format: {FORMAT})",
    "version": "sweep format version {value!r}; this backprop reads " + str(FORMAT_VERSION),
    "base": "base: expected the path of a config file (got {value!r})",
    "random": "random: expected a mapping with samples, seed, keys",
    "random.samples": f"random.samples: expected an integer from 1 to {MAX_TRIALS} (got {{value!r}})",
    "random.seed": "random.seed: expected an integer >= 0 (got {value!r})",
    "search": "search: expected a mapping with " + ", ".join(SEARCH_KEYS),
    "search.sampler": "search.sampler: expected one of " + ", ".join(SAMPLERS) + " (got {value!r})",
    "search.trials": f"search.trials: expected an integer from 1 to {MAX_TRIALS} (got {{value!r}})",
    "search.direction": "search.direction: expected minimize or maximize (got {value!r})",
    "search.metric": "search.metric: expected a metric of every epoch, one of "
    + ", ".join(SEARCH_METRICS)
    + "; test_* is measured once, at the end (got {value!r})",
    "search.pruner": "search.pruner: expected one of " + ", ".join(PRUNERS) + " (got {value!r})",
    "search.seed": "search.seed: expected an integer >= 0 (got {value!r})",
    "output": "output: expected a mapping with dir: DIRECTORY",
    "output.dir": "output.dir: expected a directory path (got {value!r})",
    "base_config": "base_config: expected the base config's mapping",
}


def parse_sweep(data: dict, source: str, stored: bool = False) -> SweepFile:
    """The sweep file's mapping (``stored``: a sweep.yaml's) as a model; the first problem, as
    the file reads top-down, is one ConfigError line from ``source``."""
    model = StoredSweep if stored else SweepFile
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = min(e.errors(include_url=False), key=lambda err: _order(err["loc"], model))
        raise ConfigError(f"{source}: {_message(err, data)}") from None


def _order(loc: tuple, model: type[BaseModel]) -> tuple:
    """Where a problem is, read top-down: a stored file's format, then unknown keys, then the
    fields in their declared order; the same inside random and output."""

    def rank(part: Any, fields: list[str]) -> tuple[int, int]:
        if part in _FIRST:
            return (0, _FIRST.index(part))
        return (2, fields.index(part)) if part in fields else (1, 0)

    key = [rank(loc[0], list(model.model_fields))] if loc else []
    if len(loc) > 1 and loc[0] in _NESTED:
        key.append(rank(loc[1], _NESTED[loc[0]]))
    return tuple(key)


def _message(err: dict, data: dict) -> str:
    """A pydantic error on the sweep file as ``key.path: what is wrong (got VALUE)``."""
    loc, kind = list(err["loc"]), err["type"]
    if loc[:2] == ["random", "keys"] and len(loc) > 4:
        del loc[4]  # a distribution's tag repeats its name: random.keys.K.uniform.uniform
    value = None if kind == "missing" else err.get("input")
    path = key_path(loc)
    if kind in ("extra_forbidden", "invalid_key"):
        return _unknown_key(loc[:-1], value if kind == "invalid_key" else loc[-1])
    if kind == "missing" and path == "base":
        return "base: required key is missing (the base config file)"
    if kind == "sweep_file":
        return err["ctx"]["message"]
    if kind == "value_error" and path not in _AT:
        message = str(err["ctx"]["error"])
        return f"{path}: {message}" if path else message
    if path in _AT:
        return _AT[path].format(value=value) + _hint(path, value)
    if path in _SECTIONS:
        if kind == "too_short":
            return f"{path}: expected at least one key to draw"
        return f"{path}: expected a mapping of {_SECTIONS[path]} (got {type(value).__name__})"
    if loc[0] == "grid":
        return f"grid: {loc[1]}: expected a non-empty list of values (got {_shown(value)})"
    if loc[:2] == ["random", "keys"]:
        return _distribution_message(loc, kind, err, data)
    if path == "metric":
        return (
            f"metric: {value!r} is not a metric{did_you_mean(value, METRICS)}; "
            f"expected one of {', '.join(METRICS)}"
        )
    return f"{path}: {err['msg'][0].lower()}{err['msg'][1:]} (got {_shown(value)})"


def _hint(path: str, value: Any) -> str:
    """`` (did you mean 'tpe'?)`` for a misspelt word of search."""
    words = {"search.sampler": SAMPLERS, "search.pruner": PRUNERS, "search.metric": SEARCH_METRICS}
    if path not in words or not isinstance(value, str) or value in METRICS:
        return ""
    return did_you_mean(value, words[path])


def _unknown_key(parent: list, key: Any) -> str:
    if parent == ["output"]:
        return f"output.{key}: expected a mapping with dir: DIRECTORY"
    fields = {"random": RANDOM_KEYS, "search": SEARCH_KEYS}.get(parent[0]) if parent else SWEEP_KEYS
    where = f"{parent[0]} takes" if parent else "a sweep file takes"
    hint = did_you_mean(key, fields)
    prefix = "".join(f"{p}." for p in parent)
    return f"{prefix}{key}: unknown key{hint or f'; {where} ' + ', '.join(fields)}"


def _distribution_message(loc: list, kind: str, err: dict, data: dict) -> str:
    """random.keys.KEY: not one distribution, an unknown one, or its arguments."""
    path = key_path(loc[:3])
    names = ", ".join(DISTRIBUTIONS)
    if kind == "union_tag_not_found":
        return (
            f"{path}: expected one distribution, e.g. {{log_uniform: [1.0e-4, 1.0e-1]}}; "
            f"one of {names}"
        )
    if kind == "union_tag_invalid":
        (name,) = err["input"]
        return f"{path}: unknown distribution {name!r}{did_you_mean(name, DISTRIBUTIONS)}; expected one of {names}"
    name = loc[3]
    if name == "choice":
        return f"{path}.choice: expected a non-empty list of values"
    args = data["random"]["keys"][loc[2]][name]  # an item is wrong: show them both
    return f"{path}.{name}: expected {DISTRIBUTION_MODELS[name].expected} (got {_shown(args)})"


def read_sweep_file(path: Path) -> dict:
    """The sweep file's mapping: bounded, strict YAML, read as configs are."""
    if os.path.isdir(path):  # False, not an error, for a name too long or with a NUL byte
        raise ConfigError(f"{path}: is a directory; expected a sweep file (or --resume)")
    data = read_yaml_file(path, "sweep file")
    if not isinstance(data, dict):
        got = "empty" if data is None else f"a {type(data).__name__}"
        raise ConfigError(
            f"{path}: a sweep file is a mapping with base, grid and/or random, ... (this one is {got})"
        )
    return data
