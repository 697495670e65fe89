"""The weights file: arrays ``W0, b0, W1, b1, ...``, ``x_mean``, ``x_scale`` and a ``spec``
entry holding JSON, described by ``WeightsSpec``.

Loading checks the spec first (a pydantic model: every field that eval, predict and
train --weights use), then every array's shape and dtype from its .npy header against the spec,
and only then reads any array data. Every problem is one WeightsError line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config.models import (
    MAX_LAYERS,
    MAX_PARAMETERS,
    MAX_UNITS,
    DataConfig,
    architecture_problem,
    parameter_count,
    task_of,
)
from ..errors import WeightsError, shown
from ..nn.activations import ACTIVATIONS
from ..nn.losses import LOSSES
from ..nn.network import Network
from .files import json_default, write_npz
from .npz import NpzReader, npz_errors, read_json_member, require_file

FORMAT = "backprop-weights"
# 2: the spec's ``columns`` (the fitted preprocessing of raw feature columns) and target
# scaling; a version-1 file (numeric features only) still loads. 3: classification with a
# loss that does not imply it (mse on one-hot targets, several sigmoid units with binary
# cross-entropy) and multi-label; a file that uses neither is written as version 2, which
# earlier versions read.
FORMAT_VERSION = 3
FLOAT_DTYPES = ("float32", "float64")

# What each field must be, as the one-line error says it when the value does not fit.
EXPECTED = {
    "sizes": f"a list of 2 to {MAX_LAYERS + 1} layer widths from 1 to {MAX_UNITS}",
    "activations": "a list of activation names, one per layer",
    "residual": "a list of true/false, one per layer",
    "dtype": "float32 or float64",
    "loss": "one of " + ", ".join(LOSSES),
    "task": "classification or regression",
    "classes": "a list of class labels (the output layer's)",
    "multilabel": "true or false",
    "feature_names": "a list of column names",
    "columns": "a list of fitted columns (name, kind, impute, fill, categories, ...)",
    "y_mean": "a list of numbers, one per target",
    "y_scale": "a list of positive numbers, one per target",
    "target_names": "a list of column names",
    "seed": "an integer >= 0",
    "epoch": "an integer >= 0",
    "data": "a mapping",
    "data.dataset": "a string",
    "data.path": "a string",
    "data.validation": "a fraction in [0, 1)",
    "data.test": "a fraction in [0, 1)",
    "data.standardize": "true or false",
    "data.dropna": "true or false",
    "data.n_samples": "an integer from 1 to 10000000",
    "data.noise": "a number >= 0",
    "data.target": "a column name or a list of them",
    "data.features": "a list of column names",
    "data.source": "a mapping with path and sha256 strings",
}


class SpecData(DataConfig):
    """The config's data section as trained, and where the rows came from (``source``: the
    file's absolute path and sha256, or the built-in dataset's name and size)."""

    model_config = ConfigDict(extra="ignore")
    source: dict[str, Any] = Field(default_factory=dict)

    @field_validator("source")
    @classmethod
    def _source_strings(cls, v):
        if any(v.get(k) is not None and not isinstance(v[k], str) for k in ("path", "sha256")):
            raise ValueError("data.source: path and sha256 must be strings")
        return v


Category = str | int | float | bool


class ColumnSpec(BaseModel):
    """One raw feature column as training fitted it, and the encoded columns it becomes:

    numeric: its value, gaps filled with ``fill`` (``impute`` says how it was found), then a
    0/1 column for "was missing" when ``indicator``; standardized with the network's x_mean
    and x_scale. categorical: one 0/1 column per category in ``categories`` (learned from the
    training rows), then "(missing)" when ``impute`` is ``category`` and training had gaps,
    then "(other)" for the categories ``max_categories`` cut (``other``); a category never seen
    in training is all zeros.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    name: str
    kind: Literal["numeric", "categorical"]
    impute: Literal["mean", "median", "most_frequent", "constant", "none", "category"]
    fill: Category | None = None
    indicator: bool = False
    categories: list[Category] = Field(default_factory=list, max_length=10_000)
    missing: bool = False  # categorical: a "(missing)" column
    other: list[Category] | None = None  # categorical: the categories folded into "(other)"

    def encoded_names(self) -> list[str]:
        if self.kind == "numeric":
            return [self.name] + ([f"{self.name}(missing)"] if self.indicator else [])
        names = [f"{self.name}={c}" for c in self.categories]
        names += [f"{self.name}=(missing)"] if self.missing else []
        return names + ([f"{self.name}=(other)"] if self.other is not None else [])

    @property
    def width(self) -> int:
        return len(self.encoded_names())


class WeightsSpec(BaseModel):
    """What a weights file says of its network, data and training; fields missing from files of
    earlier versions take the values those versions meant."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)

    format: Literal["backprop-weights"] = FORMAT
    version: int = FORMAT_VERSION
    name: str = "run"
    sizes: list[int] = Field(min_length=2, max_length=MAX_LAYERS + 1)
    activations: list[str]
    residual: list[bool] | None = None
    loss: Literal[tuple(LOSSES)]  # type: ignore[valid-type]
    dtype: Literal["float32", "float64"]
    task: Literal["classification", "regression"] | None = None
    classes: list[str | int | float] | None = None  # multi-label: the label columns' names
    multilabel: bool = False  # several 0/1 target columns, an output unit each
    feature_names: list[str] | None = None  # the network's inputs (encoded columns)
    target_names: list[str] | None = None
    columns: list[ColumnSpec] | None = None  # the raw feature columns; None: numeric ones
    y_mean: list[float] | None = None  # regression targets standardized: y = y_mean + y_scale a
    y_scale: list[float] | None = None
    data: SpecData | None = None
    seed: int = Field(0, ge=0)
    epoch: int = Field(0, ge=0)
    backprop_version: str | None = None
    restored_best_epoch: int | None = None

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v):
        if not all(0 < s <= MAX_UNITS for s in v):
            raise ValueError(f"spec sizes: expected {EXPECTED['sizes']} (got {shown(v)})")
        if parameter_count(v) > MAX_PARAMETERS:
            raise ValueError(
                f"the spec's sizes {v[:8]}{'...' if len(v) > 8 else ''} need "
                f"{parameter_count(v):,} parameters, more than the {MAX_PARAMETERS:,} this tool handles"
            )
        return v

    @field_validator("activations")
    @classmethod
    def _activations(cls, v):
        for a in v:
            if a not in ACTIVATIONS:
                raise ValueError(f"the spec names unknown activation {a!r}")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        n = len(self.sizes) - 1

        def bad(key: str, expected: str):
            return ValueError(f"spec {key}: expected {expected} (got {shown(getattr(self, key))})")

        if len(self.activations) != n:
            raise bad("activations", f"a list of {n} activation names")
        if self.residual is None:
            self.residual = [False] * n
        if len(self.residual) != n:
            raise bad("residual", f"a list of {n} true/false")
        if architecture_problem(self.sizes, [0.0] * n, self.residual):
            raise ValueError("the spec marks a layer residual, but its widths do not allow it")
        if self.task is None:
            self.task = task_of(self.loss)
        task = self.task
        if task == "regression" and task_of(self.loss) == "classification":
            raise bad("task", f"'classification' for loss {self.loss}")
        if self.multilabel and task != "classification":
            raise bad("multilabel", "false for regression")
        if task == "classification":
            units = self.sizes[-1]
            want = 2 if units == 1 and self.loss != "cross_entropy" else units
            if self.classes is None or len(self.classes) != want:
                raise bad("classes", f"a list of {want} class labels (the output layer's)")
            if self.multilabel and units == 1:
                raise bad("sizes", "an output unit per label")
        if self.feature_names is not None and len(self.feature_names) != self.sizes[0]:
            raise bad("feature_names", f"{self.sizes[0]} names, one per input")
        if self.columns is not None and sum(c.width for c in self.columns) != self.sizes[0]:
            raise bad("columns", f"raw columns that encode to the network's {self.sizes[0]} inputs")
        if (self.y_mean is None) != (self.y_scale is None) or (
            self.y_mean is not None
            and (
                task != "regression"
                or not len(self.y_mean) == len(self.y_scale) == self.sizes[-1]
                or min(self.y_scale) <= 0
            )
        ):
            raise bad("y_scale", f"with y_mean, {self.sizes[-1]} positive scales (regression)")
        return self

    @property
    def input_columns(self) -> list[str]:
        """The raw columns a data file must have: the trained feature columns, by name."""
        if self.columns is not None:
            return [c.name for c in self.columns]
        return list(self.feature_names or [])

    def to_json(self) -> str:
        data = self.model_dump(mode="json")
        if data["restored_best_epoch"] is None:
            del data["restored_best_epoch"]
        if not self.multilabel and self.task == task_of(self.loss):
            data["version"] = min(self.version, 2)  # nothing of version 3: earlier ones read it
            del data["multilabel"]
        return json.dumps(data, default=json_default)

    @property
    def target(self) -> str | list[str] | None:
        """The target column(s) as data.target takes them."""
        names = self.target_names or []
        return names[0] if len(names) == 1 else (names or None)


def spec_error(e: ValidationError, raw: dict, where: str) -> WeightsError:
    """The first problem of a spec that failed validation, as one line."""
    err = e.errors(include_url=False)[0]
    loc = [p for p in err["loc"] if isinstance(p, str)]
    if err["type"] == "value_error":
        msg = str((err.get("ctx") or {}).get("error", err["msg"]))
        return WeightsError(f"{where}: {'spec ' if msg.startswith('data.') else ''}{msg}")
    key = ".".join(loc[:2]) if loc[:1] == ["data"] and len(loc) > 1 else (loc[0] if loc else "")
    value = raw
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return WeightsError(
        f"{where}: spec {key}: expected {EXPECTED.get(key, err['msg'])} (got {shown(value)})"
    )


def validate_spec(raw: Any, where: str) -> WeightsSpec:
    """The WeightsSpec of a spec's parsed JSON, or one WeightsError line."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise WeightsError(f"{where}: the spec is not a {FORMAT} spec")
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise WeightsError(
            f"{where}: the spec's format version is {version!r}; expected an integer"
        )
    if version > FORMAT_VERSION:
        raise WeightsError(
            f"{where}: format version {version!r} is newer than this backprop reads "
            f"({FORMAT_VERSION}); upgrade backprop"
        )
    try:
        return WeightsSpec.model_validate(raw)
    except ValidationError as e:
        raise spec_error(e, raw, where) from None


def expected_shapes(spec: WeightsSpec) -> dict[str, tuple[int, ...]]:
    """Every array a weights file of this spec holds, with its shape."""
    sizes = spec.sizes
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        shapes[f"W{i}"] = (fan_in, fan_out)
        shapes[f"b{i}"] = (fan_out,)
    shapes["x_mean"] = (sizes[0],)
    shapes["x_scale"] = (sizes[0],)
    return shapes


def save_weights(path: Path, net: Network, spec: WeightsSpec, mean, scale) -> None:
    arrays = {name: np.array(t) for name, t in zip(net.tensor_names(), net.tensors(), strict=True)}
    arrays["x_mean"] = np.asarray(mean, dtype=np.float64)
    arrays["x_scale"] = np.asarray(scale, dtype=np.float64)
    arrays["spec"] = np.array(spec.to_json())
    write_npz(path, arrays)


def load_weights(path: str | Path) -> tuple[WeightsSpec, dict[str, np.ndarray]]:
    """(spec, arrays) of a weights file, validated; every problem is one WeightsError line."""
    path = Path(path)
    require_file(path, "weights file")
    with npz_errors(path, "weights file"), NpzReader(path, "weights file") as ar:
        if "spec" not in ar.headers:
            raise WeightsError(f"{path}: no 'spec' entry; not a backprop weights file")
        spec = validate_spec(read_json_member(path, ar, "spec", "spec"), str(path))
        expected = expected_shapes(spec)
        for name, shape in expected.items():
            if name not in ar.headers:
                raise WeightsError(f"{path}: array {name!r} is missing")
            if ar.shape(name) != shape:
                raise WeightsError(
                    f"{path}: {name} has shape {ar.shape(name)}, the spec says {shape}"
                )
            if ar.dtype(name).name not in FLOAT_DTYPES:
                raise WeightsError(
                    f"{path}: {name} has dtype {ar.dtype(name)}, expected float32 or float64"
                )
        arrays = {name: ar.read(name) for name in expected}
    top = np.finfo(spec.dtype).max
    for name, a in arrays.items():
        if not np.isfinite(a).all():
            raise WeightsError(f"{path}: {name} holds NaN or Inf values")
        if name[0] in "Wb" and a.size and np.abs(a).max() > top:
            raise WeightsError(
                f"{path}: {name} holds values beyond {spec.dtype} range, the spec's dtype "
                f"(largest {float(np.abs(a).max()):.3g})"
            )
    if (arrays["x_scale"] <= 0).any():
        raise WeightsError(f"{path}: x_scale must be positive (it divides the features)")
    return spec, arrays


def same_architecture(spec: WeightsSpec, net: Network) -> bool:
    return (spec.sizes, spec.activations, spec.residual) == (
        net.sizes,
        net.activation_names,
        net.residual,
    )


def describe_architecture(sizes, activations, residual) -> str:
    layers = ", ".join(
        a + (" residual" if r else "") for a, r in zip(activations, residual, strict=True)
    )
    return f"sizes {sizes} ({layers})"


def load_parameters(net: Network, arrays: dict[str, np.ndarray]) -> None:
    """Copy a weights file's W_i and b_i into ``net`` (of the same architecture)."""
    for name, t in zip(net.tensor_names(), net.tensors(), strict=True):
        t[...] = arrays[name]


def network_from_weights(spec: WeightsSpec, arrays: dict[str, np.ndarray]) -> Network:
    """A Network with the stored parameters, in the spec's dtype."""
    net = Network(spec.sizes, spec.activations, dtype=spec.dtype, residual=spec.residual)
    load_parameters(net, arrays)
    return net
