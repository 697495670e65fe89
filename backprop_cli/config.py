"""The YAML config: pydantic models, safe loading, --set overrides, errors with key paths.

Every key is validated and unknown keys are refused with a "did you mean" hint. Errors
are one line: ``FILE: key.path: what is wrong (got VALUE)``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError
from .nn.activations import ACTIVATIONS
from .nn.losses import CLASSIFICATION_LOSSES, LOSSES
from .nn.network import INITS
from .runs import MAX_LAYERS, MAX_PARAMETERS

BUILTIN_DATASETS = (
    "xor",
    "moons",
    "circles",
    "spirals",
    "friedman",
    "iris",
    "digits",
    "wine",
    "breast_cancer",
)
MAX_CONFIG_BYTES = 1_000_000
# A config is a few hundred YAML nodes a few levels deep; past these bounds it is an attack
# (an alias bomb, a recursion bomb) or a mistake, refused before anything is constructed.
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64

ActivationName = Literal[tuple(ACTIVATIONS)]  # type: ignore[valid-type]
LossName = Literal[tuple(LOSSES)]  # type: ignore[valid-type]
InitName = Literal[INITS]  # type: ignore[valid-type]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class DataConfig(Strict):
    dataset: str | None = None
    path: str | None = None
    target: str | list[str] | None = None
    features: list[str] | None = None
    validation: float = Field(0.15, ge=0, lt=1)
    test: float = Field(0.15, ge=0, lt=1)
    standardize: bool = True
    dropna: bool = False
    n_samples: int | None = Field(None, gt=0, le=10_000_000)
    noise: float | None = Field(None, ge=0)

    @field_validator("path")
    @classmethod
    def _path_text(cls, v):
        return _path_text("data.path", v)

    @model_validator(mode="after")
    def _source(self):
        if (self.dataset is None) == (self.path is None):
            raise ValueError(
                "give exactly one of data.dataset (a built-in name) or data.path (a file)"
            )
        if self.dataset is not None and self.dataset not in BUILTIN_DATASETS:
            hint = _did_you_mean(self.dataset, BUILTIN_DATASETS)
            raise ValueError(
                f"data.dataset: unknown dataset {self.dataset!r}{hint}; built-ins are {', '.join(BUILTIN_DATASETS)}"
            )
        if self.validation + self.test >= 1:
            raise ValueError(
                f"data.test: data.validation + data.test must be < 1 (got {self.validation} + {self.test})"
            )
        return self


class LayerConfig(Strict):
    units: int = Field(gt=0, le=100_000)
    activation: ActivationName = "relu"
    dropout: float = Field(0.0, ge=0, lt=1)
    residual: bool = False
    init: InitName | None = None


class ModelConfig(Strict):
    layers: list[LayerConfig] = Field(min_length=1, max_length=MAX_LAYERS)
    init: InitName = "he"
    init_scale: float = Field(0.1, gt=0)
    dtype: Literal["float32", "float64"] = "float32"

    @model_validator(mode="after")
    def _layer_options(self):
        units = [layer.units for layer in self.layers]
        between = sum(a * b + b for a, b in zip(units, units[1:], strict=False)) + units[0]
        if between > MAX_PARAMETERS:
            raise ValueError(
                f"model.layers: {between:,} parameters between the layers alone, more than the "
                f"{MAX_PARAMETERS:,} this tool handles; use fewer or narrower layers"
            )
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == last and (layer.dropout or layer.residual):
                what = "dropout" if layer.dropout else "residual"
                raise ValueError(
                    f"model.layers[{i}].{what}: not on the output layer; put it on a hidden layer"
                )
            if layer.residual and i > 0 and self.layers[i - 1].units != layer.units:
                raise ValueError(
                    f"model.layers[{i}].residual: a residual layer adds its input, so its units must equal "
                    f"the previous layer's ({self.layers[i - 1].units}); got {layer.units}"
                )
        return self


def _lr(default: float):
    return Field(default, gt=0)


class SGDConfig(Strict):
    name: Literal["sgd"]
    lr: float = _lr(1e-3)
    momentum: float = Field(0.0, ge=0)
    dampening: float = 0.0
    weight_decay: float = Field(0.0, ge=0)
    nesterov: bool = False

    @model_validator(mode="after")
    def _nesterov(self):
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                "optimizer.nesterov: needs momentum > 0 and dampening 0, as in torch.optim.SGD"
            )
        return self


class RMSpropConfig(Strict):
    name: Literal["rmsprop"]
    lr: float = _lr(1e-2)
    alpha: float = Field(0.99, ge=0)
    eps: float = Field(1e-8, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0)
    centered: bool = False


class AdamConfig(Strict):
    name: Literal["adam"]
    lr: float = _lr(1e-3)
    betas: list[float] = Field(default_factory=lambda: [0.9, 0.999], min_length=2, max_length=2)
    eps: float = Field(1e-8, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    amsgrad: bool = False

    @field_validator("betas")
    @classmethod
    def _betas(cls, v):
        for i, b in enumerate(v):
            if not 0 <= b < 1:
                raise ValueError(f"optimizer.betas[{i}]: must be in [0, 1) (got {b})")
        return v


class AdamWConfig(AdamConfig):
    name: Literal["adamw"]  # type: ignore[assignment]
    weight_decay: float = Field(1e-2, ge=0)


OptimizerConfig = Annotated[
    SGDConfig | RMSpropConfig | AdamConfig | AdamWConfig, Field(discriminator="name")
]
OPTIMIZER_MODELS = {
    "sgd": SGDConfig,
    "rmsprop": RMSpropConfig,
    "adam": AdamConfig,
    "adamw": AdamWConfig,
}


class EarlyStoppingConfig(Strict):
    monitor: str = "val_loss"
    mode: Literal["auto", "min", "max"] = "auto"
    patience: int = Field(5, ge=0)
    min_delta: float = Field(0.0, ge=0)
    restore_best: bool = True

    @property
    def resolved_mode(self) -> str:
        """min for losses, max for accuracy and R^2, unless given."""
        if self.mode != "auto":
            return self.mode
        return "max" if ("accuracy" in self.monitor or "r2" in self.monitor) else "min"


class _Gamma(Strict):
    gamma: float = Field(0.1, gt=0)


class StepLRConfig(_Gamma):
    name: Literal["step"]
    step_size: int = Field(gt=0)


class MultiStepLRConfig(_Gamma):
    name: Literal["multistep"]
    milestones: list[int] = Field(min_length=1)

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, v):
        if any(b <= a for a, b in zip(v, v[1:], strict=False)) or v[0] <= 0:
            raise ValueError(
                f"training.lr_schedule.milestones: must be positive and increasing (got {v})"
            )
        return v


class ExponentialLRConfig(Strict):
    name: Literal["exponential"]
    gamma: float = Field(gt=0)


class CosineLRConfig(Strict):
    name: Literal["cosine"]
    T_max: int = Field(gt=0)
    eta_min: float = Field(0.0, ge=0)


class PlateauLRConfig(Strict):
    name: Literal["reduce_on_plateau"]
    monitor: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    factor: float = Field(0.1, gt=0, lt=1)
    patience: int = Field(10, ge=0)
    threshold: float = Field(1e-4, ge=0)
    threshold_mode: Literal["rel", "abs"] = "rel"
    cooldown: int = Field(0, ge=0)
    min_lr: float = Field(0.0, ge=0)
    eps: float = Field(1e-8, ge=0)


class ConstantLRConfig(Strict):
    name: Literal["constant"]


LRScheduleConfig = Annotated[
    StepLRConfig
    | MultiStepLRConfig
    | ExponentialLRConfig
    | CosineLRConfig
    | PlateauLRConfig
    | ConstantLRConfig,
    Field(discriminator="name"),
]
SCHEDULE_MODELS = {
    "step": StepLRConfig,
    "multistep": MultiStepLRConfig,
    "exponential": ExponentialLRConfig,
    "cosine": CosineLRConfig,
    "reduce_on_plateau": PlateauLRConfig,
    "constant": ConstantLRConfig,
}


class WarmupConfig(Strict):
    total_iters: int = Field(5, gt=0)
    start_factor: float = Field(1.0 / 3.0, gt=0, le=1)


class TrainingConfig(Strict):
    epochs: int = Field(30, gt=0, le=1_000_000)
    batch_size: int | Literal["full"] = 32
    shuffle: bool = True
    early_stopping: EarlyStoppingConfig | None = None
    lr_schedule: LRScheduleConfig | None = None
    warmup: WarmupConfig | None = None
    clip_grad_norm: float | None = Field(None, gt=0)
    clip_grad_value: float | None = Field(None, gt=0)
    on_divergence: Literal["stop", "rollback"] = "stop"
    max_rollbacks: int = Field(3, ge=1, le=100)

    @field_validator("lr_schedule", mode="before")
    @classmethod
    def _schedule_shorthand(cls, v):
        return {"name": v} if isinstance(v, str) else v

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, v):
        if isinstance(v, int) and v <= 0:
            raise ValueError(f"training.batch_size: must be > 0 or 'full' (got {v})")
        return v


class OutputConfig(Strict):
    dir: str | None = None
    # Files are rewritten after an epoch once this many seconds have passed since the last
    # write, and always after the last epoch and on a stop: short epochs do not pay for an
    # fsync each; a kill -9 loses at most this much training. 0: after every epoch.
    save_interval_s: float = Field(1.0, ge=0)

    @field_validator("dir")
    @classmethod
    def _dir_text(cls, v):
        return _path_text("output.dir", v)


def _path_text(key: str, v: str | None) -> str | None:
    if v is not None and ("\0" in v or not v.strip()):
        raise ValueError(f"{key}: expected a file system path (got {v!r})")
    return v


class Config(Strict):
    name: str = "run"
    seed: int = Field(0, ge=0, le=2**63 - 1)
    data: DataConfig
    model: ModelConfig
    loss: LossName = "cross_entropy"
    optimizer: OptimizerConfig = Field(default_factory=lambda: AdamConfig(name="adam"))
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v):
        if not v.strip() or v.strip(".") == "" or any(c in v for c in "/\\\0"):
            raise ValueError(
                f"name: expected a plain run name, used as runs/NAME: not empty, no '/' (got {v!r}); "
                "set output.dir for a path"
            )
        return v

    @field_validator("optimizer", mode="before")
    @classmethod
    def _optimizer_shorthand(cls, v):
        return {"name": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _loss_vs_output(self):
        last = self.model.layers[-1]
        where = f"model.layers[{len(self.model.layers) - 1}]"
        if self.loss == "binary_cross_entropy" and (
            last.activation != "sigmoid" or last.units != 1
        ):
            raise ValueError(
                f"{where}: binary_cross_entropy needs an output layer of 1 sigmoid unit "
                f"(got {last.units} {last.activation}); use {{units: 1, activation: sigmoid}}, "
                "or cross_entropy with a softmax layer of one unit per class"
            )
        if self.loss == "cross_entropy" and last.activation != "softmax":
            raise ValueError(
                f"{where}.activation: cross_entropy needs a softmax output layer with one unit per class "
                f"(got {last.activation!r}); set activation: softmax"
            )
        return self

    @property
    def task(self) -> str:
        """classification for cross-entropy losses, regression otherwise."""
        return "classification" if self.loss in CLASSIFICATION_LOSSES else "regression"

    @property
    def batch_size(self) -> int | None:
        """Rows per step; None means the whole training set (full-batch GD)."""
        return None if self.training.batch_size == "full" else self.training.batch_size

    def resolved(self) -> dict:
        """The config with every default filled in, as plain data."""
        return self.model_dump(mode="json")

    def digest(self) -> str:
        """sha256 of the resolved config, canonical JSON."""
        return hashlib.sha256(json.dumps(self.resolved(), sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------- loading


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses duplicate keys (a silent last-one-wins hides typos), deep
    nesting, recursive aliases and aliases that expand past MAX_YAML_NODES values ("billion
    laughs"): the node graph is measured before a single Python object is constructed."""

    _depth = 0

    def compose_node(self, parent, index):
        # The composer recurses once per nesting level: stop well before Python's limit.
        if self._depth >= MAX_YAML_DEPTH:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"nested more than {MAX_YAML_DEPTH} levels deep; a config needs a few",
                self.peek_event().start_mark,
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self):
        node = super().compose_document()
        _check_node_graph(node)
        return node


def _check_node_graph(root) -> None:
    """Refuse a YAML node graph whose expansion (every alias copied out) is too big or too deep,
    or that contains itself. Sizes are memoized per node, so this costs one pass over the
    file's own nodes, however far its aliases would expand."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_: set[int] = set()  # the ancestors of the node being visited
    stack = [(root, False)]
    while stack:
        node, finished = stack.pop()
        kids = (
            [n for pair in node.value for n in pair]
            if isinstance(node, yaml.MappingNode)
            else (node.value if isinstance(node, yaml.SequenceNode) else [])
        )
        if finished:
            open_.discard(id(node))
            size[id(node)] = 1 + sum(size[id(k)] for k in kids)
            depth[id(node)] = 1 + max((depth[id(k)] for k in kids), default=0)
            if size[id(node)] > MAX_YAML_NODES:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"this value expands to more than {MAX_YAML_NODES} YAML nodes through its "
                    "aliases (an alias bomb?); a config needs a few hundred",
                    node.start_mark,
                )
            if depth[id(node)] > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"aliases nest this value more than {MAX_YAML_DEPTH} levels deep",
                    node.start_mark,
                )
            continue
        if id(node) in size:
            continue
        if id(node) in open_:
            raise yaml.composer.ComposerError(
                None, None, "an alias refers to a value that contains it", node.start_mark
            )
        open_.add(id(node))
        stack.append((node, True))
        stack.extend((k, False) for k in kids)


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "a key must be a plain value, not a list or mapping",
                key_node.start_mark,
            ) from None
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# YAML 1.1 reads 1e-3 (no dot) as a string; YAML 1.2 and every user read it as a number.
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, source: str) -> Any:
    """yaml safe-load ``text``; syntax errors become one line with the line and column."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = ", ".join(x for x in (e.context, e.problem) if x)  # "while ..., found ..."
        raise ConfigError(f"{source}: {where}{' '.join(what.split())}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {' '.join(str(e).split())}") from None


def read_yaml_file(path: str | Path, what: str = "config file") -> Any:
    """The parsed content of a YAML file read as configs are: bounded size, UTF-8, strict YAML."""
    p = Path(path)
    try:
        if p.is_dir():
            raise ConfigError(f"{path}: is a directory, expected a YAML {what}")
        with p.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except (OSError, ValueError) as e:  # permissions, a name too long, a NUL byte, ...
        reason = getattr(e, "strerror", None) or str(e)
        raise ConfigError(f"{path}: cannot read {what} ({reason})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {what} larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    return parse_yaml(text, str(path))


def read_config_file(path: str | Path) -> dict:
    """The raw mapping of a YAML config file."""
    data = read_yaml_file(path)
    if data is None:
        raise ConfigError(
            f"{path}: the config file is empty; expected a mapping with data, model, loss, ..."
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys (got {type(data).__name__})"
        )
    return data


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def apply_overrides(data: dict, overrides: list[str], source: str = "--set") -> dict:
    """Apply ``key.path=value`` strings; values are YAML scalars (``0.01``, ``true``, ``[64, 64]``)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{source} {item!r}: expected KEY=VALUE, e.g. optimizer.lr=0.01")
        key, _, text = item.partition("=")
        parts = [
            m.group(1) if m.group(1) is not None else int(m.group(2))
            for m in _SEGMENT.finditer(key.strip())
        ]
        parts = [int(p) if isinstance(p, str) and p.isdigit() else p for p in parts]
        if not parts or "".join(str(p) for p in parts) == "":
            raise ConfigError(f"{source} {item!r}: empty key")
        value = parse_yaml(text, f"{source} {key}")
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    raise ConfigError(f"{source} {key}: no list item {part} at {_path(parts[:i])}")
                node = node[part]
            else:
                if not isinstance(node, dict):
                    raise ConfigError(f"{source} {key}: {_path(parts[:i])} is not a mapping")
                if part not in node or node[part] is None:
                    # A new optimizer section keeps the default optimizer's name.
                    node[part] = (
                        []
                        if isinstance(nxt, int)
                        else ({"name": "adam"} if parts[: i + 1] == ["optimizer"] else {})
                    )
                if isinstance(node[part], str) and part == "optimizer":
                    node[part] = {"name": node[part]}
                node = node[part]
        last = parts[-1]
        if isinstance(last, int):
            if not isinstance(node, list) or last >= len(node):
                raise ConfigError(f"{source} {key}: no list item {last}")
        elif not isinstance(node, dict):
            raise ConfigError(f"{source} {key}: {_path(parts[:-1])} is not a mapping")
        node[last] = value
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read, override and validate a config file; every problem is a ConfigError line."""
    data = read_config_file(path)
    if overrides:
        apply_overrides(data, overrides)
    return validate_config(data, str(path))


def validate_config(data: dict, source: str) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{source}: {format_validation_error(e, data)}") from None


# ---------------------------------------------------------------------------- error messages

_MODELS_AT = {
    "": Config,
    "data": DataConfig,
    "model": ModelConfig,
    "model.layers[]": LayerConfig,
    "training": TrainingConfig,
    "output": OutputConfig,
    "training.early_stopping": EarlyStoppingConfig,
    "training.warmup": WarmupConfig,
}


def _path(loc) -> str:
    out = ""
    for part in loc:
        if not isinstance(part, int):
            part = str(part) if str(part).isprintable() else repr(str(part))
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fields_at(loc, data) -> list[str]:
    key = re.sub(r"\[\d+\]", "[]", _path(loc))
    if key in ("optimizer", "training.lr_schedule"):
        node = data
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        name = node.get("name") if isinstance(node, dict) else None
        model = (OPTIMIZER_MODELS if key == "optimizer" else SCHEDULE_MODELS).get(name)
        return list(model.model_fields) if model else []
    model = _MODELS_AT.get(key)
    return list(model.model_fields) if model else []


def _show(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
    path = _path(loc)
    got = f" (got {_show(value)})"
    if kind == "extra_forbidden":
        key = loc[-1]
        parent = _path(loc[:-1]) or "the top level"
        fields = _fields_at(loc[:-1], data)
        hint = _did_you_mean(key, fields)
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
        return f"{path}.name: unknown {what} {tag!r}{_did_you_mean(tag, models)}; expected one of {', '.join(models)}"
    if kind == "value_error":
        msg = str(ctx.get("error", err["msg"]))
        return msg if re.match(r"^[\w.\[\]]+: ", msg) else (f"{path}: {msg}" if path else msg)
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        hint = _did_you_mean(value, re.findall(r"'([^']*)'", expected))
        return f"{path}: {_show(value)} is not allowed{hint}; expected one of {expected}"
    messages = {
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
    if path == "training.batch_size":
        return f"{path}: expected a positive integer or 'full'{got}"
    template = messages.get(kind)
    msg = template.format(**ctx) if template else err["msg"][0].lower() + err["msg"][1:]
    return f"{path}: {msg}{got}" if path else f"{msg}{got}"
