"""The config's pydantic models: the one home of every default, bound and architecture rule.

Every key is validated and unknown keys are refused (``extra="forbid"``). The rules that
other layers need (the architecture rules, the task a loss implies, the optimizers' and
schedules' defaults) are functions here, asked by the weights spec, the trainer and the
tests; nobody restates them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from ..nn.activations import ACTIVATIONS
from ..nn.losses import CLASSIFICATION_LOSSES, LOSSES
from ..nn.network import BIAS_INITS, INITS
from .data import (  # noqa: F401 (the data section is part of the one home of the rules)
    BUILTIN_DATASETS,
    COLUMN_TYPES,
    MAX_DISTINCT,
    ColumnConfig,
    DataConfig,
    Strict,
    path_text,
)

# Bounds on a network, for configs and for the weights files that claim one: checked before
# anything is allocated.
MAX_LAYERS = 1000
MAX_PARAMETERS = 2**31
MAX_UNITS = 1_000_000  # a weights file's layer width; a config's layers stop at 100,000 units

ActivationName = Literal[tuple(ACTIVATIONS)]  # type: ignore[valid-type]
LossName = Literal[tuple(LOSSES)]  # type: ignore[valid-type]
InitName = Literal[INITS]  # type: ignore[valid-type]
BiasInitName = Literal[BIAS_INITS]  # type: ignore[valid-type]
# Not a torch.optim hyperparameter but how the parameters are grouped: False is torch's two
# parameter groups, the biases' with weight_decay 0 (the book's L2, Keras' kernel_regularizer).
GROUPING_KEYS = ("decay_biases",)


def task_of(loss: str) -> str:
    """The task a loss implies where data.task does not say: classification for the
    cross-entropy losses, regression for the others (which classify too, with data.task)."""
    return "classification" if loss in CLASSIFICATION_LOSSES else "regression"


def output_units_problem(loss: str, units: int, classes: int, multilabel: bool) -> str | None:
    """Why an output layer of ``units`` does not fit a classification of ``classes`` classes
    (or labels, ``multilabel``), or None: cross_entropy takes one unit per class; the others
    one per class or label, or 1 for two classes (a 0/1 target)."""
    if units == classes or (
        units == 1 and classes == 2 and loss != "cross_entropy" and not multilabel
    ):
        return None
    if multilabel:
        return f"the data has {classes} label columns; set units: {classes}"
    one = "" if loss == "cross_entropy" or classes != 2 else " (or 1: a 0/1 target)"
    return f"the data has {classes} classes; set units: {classes}{one}"


# Validation metrics an early stopping or a plateau schedule may watch beyond metrics.csv's
# usual columns; a run that watches one computes it every epoch (and writes its column).
EXTRA_MONITORS = {
    "classification": (
        "val_balanced_accuracy",
        "val_precision_macro",
        "val_recall_macro",
        "val_f1_macro",
        "val_roc_auc",
        "val_log_loss",
    ),
    "regression": ("val_mae", "val_rmse"),
}


def metric_direction(column: str) -> str:
    """min for a loss or an error (loss, log_loss, mae, rmse, grad and weight norms), max for a
    score (accuracy, R^2, precision, recall, F1, ROC-AUC)."""
    scores = ("accuracy", "r2", "precision", "recall", "f1", "auc")
    return "max" if any(s in column for s in scores) and "loss" not in column else "min"


def parameter_count(widths: Sequence[int]) -> int:
    """W and b of every layer of a network of these widths (inputs first)."""
    return sum(a * b + b for a, b in zip(widths, widths[1:], strict=False))


def architecture_problem(
    widths: Sequence[int | None], dropout: Sequence[float], residual: Sequence[bool]
) -> str | None:
    """The first layer that breaks the architecture rules, as ``model.layers[i].KEY: why``, or
    None. ``widths`` is [inputs, units_0, ..., units_L]; inputs may be None (not known yet).

    Rules: the output layer has neither dropout nor a residual connection; a residual layer
    adds its input to its output, so its units equal its input's width."""
    last = len(residual) - 1
    for i, (p, r) in enumerate(zip(dropout, residual, strict=True)):
        if i == last and (p or r):
            what = "dropout" if p else "residual"
            return f"model.layers[{i}].{what}: not on the output layer; put it on a hidden layer"
        if r and widths[i] is not None and widths[i] != widths[i + 1]:
            before = (
                f"the number of features ({widths[i]})"
                if i == 0
                else f"the previous layer's ({widths[i]})"
            )
            return (
                f"model.layers[{i}].residual: a residual layer adds its input, so its units must "
                f"equal {before}; got {widths[i + 1]}"
            )
    return None


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
    bias_init: BiasInitName = "zeros"
    bias_init_scale: float = Field(1.0, gt=0)  # the std of bias_init: normal
    dtype: Literal["float32", "float64"] = "float32"

    @model_validator(mode="after")
    def _layer_options(self):
        units = [layer.units for layer in self.layers]
        between = parameter_count(units) + units[0]
        if between > MAX_PARAMETERS:
            raise ValueError(
                f"model.layers: {between:,} parameters between the layers alone, more than the "
                f"{MAX_PARAMETERS:,} this tool handles; use fewer or narrower layers"
            )
        problem = architecture_problem(
            [None, *units],
            [layer.dropout for layer in self.layers],
            [layer.residual for layer in self.layers],
        )
        if problem:
            raise ValueError(problem)
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
    decay_biases: bool = True

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
    decay_biases: bool = True


class AdamConfig(Strict):
    name: Literal["adam"]
    lr: float = _lr(1e-3)
    betas: list[float] = Field(default_factory=lambda: [0.9, 0.999], min_length=2, max_length=2)
    eps: float = Field(1e-8, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    amsgrad: bool = False
    decay_biases: bool = True

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
        """min for losses and errors, max for the scores (accuracy, R^2, F1, ...), unless given."""
        if self.mode != "auto":
            return self.mode
        return metric_direction(self.monitor)


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
    # Each row's weight in the loss by its class (torch's CrossEntropyLoss(weight=...): the
    # weighted mean divides by the sum of the weights): balanced is scikit-learn's
    # n / (k * count of the class) on the training rows; a mapping gives {label: weight}.
    class_weight: Literal["balanced"] | dict[str | int | float | bool, float] | None = None
    # BLAS threads for the run: null chooses by the size of the products (one thread for a
    # small network's, the BLAS's own count for a large one's); a number forces it.
    threads: int | None = Field(None, ge=1, le=1024)

    @field_validator("class_weight")
    @classmethod
    def _class_weights(cls, v):
        if isinstance(v, dict):
            for label, weight in v.items():
                if not weight >= 0:
                    raise ValueError(
                        f"training.class_weight: the weight of {label!r} must be >= 0 (got {weight})"
                    )
        return v

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
        return path_text("output.dir", v)


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
    def _class_weight_for_classes(self):
        if self.training.class_weight is not None and self.task != "classification":
            raise ValueError(
                f"training.class_weight: weighs classes; the loss {self.loss} is regression "
                "(data.sample_weight weighs rows)"
            )
        return self

    @model_validator(mode="after")
    def _loss_vs_output(self):
        last = self.model.layers[-1]
        where = f"model.layers[{len(self.model.layers) - 1}]"
        if self.data.task == "regression" and self.loss in CLASSIFICATION_LOSSES:
            raise ValueError(
                f"data.task: regression, but the loss {self.loss} classifies; use mse, mae or "
                "huber, or data.task: classification"
            )
        if self.loss == "binary_cross_entropy" and last.activation != "sigmoid":
            raise ValueError(
                f"{where}.activation: binary_cross_entropy needs a sigmoid output layer (got "
                f"{last.activation!r}): 1 unit for two classes, one per class or per label"
            )
        if self.loss == "cross_entropy" and last.activation != "softmax":
            raise ValueError(
                f"{where}.activation: cross_entropy needs a softmax output layer with one unit per class "
                f"(got {last.activation!r}); set activation: softmax"
            )
        return self

    @property
    def task(self) -> str:
        """data.task, or from the loss: classification for the cross-entropy losses."""
        return self.data.task or task_of(self.loss)

    @property
    def scales_target(self) -> bool:
        """Whether regression targets are standardized (data.standardize_target, auto: an
        identity output layer)."""
        if self.task != "regression":
            return False
        if self.data.standardize_target == "auto":
            return self.model.layers[-1].activation == "identity"
        return self.data.standardize_target

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


def _field_defaults(model: type[BaseModel]) -> dict:
    return {
        k: f.get_default(call_default_factory=True)
        for k, f in model.model_fields.items()
        if k != "name" and not f.is_required()
    }


def optimizer_defaults(name: str) -> dict:
    """The hyperparameters an optimizer has when the config does not give them (torch.optim's);
    not ``decay_biases``, which groups the parameters (GROUPING_KEYS)."""
    own = _field_defaults(OPTIMIZER_MODELS[name])
    return {k: v for k, v in own.items() if k not in GROUPING_KEYS}


def schedule_defaults(name: str) -> dict:
    """The parameters an lr schedule has when the config does not give them (torch's)."""
    return {k: v for k, v in _field_defaults(SCHEDULE_MODELS[name]).items() if k != "monitor"}
