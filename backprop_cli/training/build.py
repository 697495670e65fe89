"""From a config to the things that train: the prepared data, the network, the loss, the
optimizer and the schedule, with the checks that need the data made before anything runs.

``setup`` is what ``validate``, ``trace`` and ``gradcheck`` need (data, network, loss);
``training.run.Run`` adds the optimizer, the trainer and the run directory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import Config, architecture_problem, parameter_count
from ..config.models import EXTRA_MONITORS, output_units_problem
from ..data import Prepared, load_dataset, prepare, streams
from ..errors import ConfigError
from ..nn.losses import Loss, get_loss
from ..nn.metrics import class_indices
from ..nn.network import Network
from ..nn.optimizers import OPTIMIZERS, Optimizer, make_optimizer
from ..nn.schedules import Schedule
from ..system import available_memory, gigabytes

EVAL_CHUNK = 4096  # rows per forward pass when a split is evaluated (Network.evaluate's chunk)


def build_network(cfg: Config, n_inputs: int, rng: np.random.Generator) -> Network:
    """The config's network for ``n_inputs`` features, initialized from ``rng``."""
    layers = cfg.model.layers
    sizes = [n_inputs] + [layer.units for layer in layers]
    net = Network(
        sizes,
        [layer.activation for layer in layers],
        dtype=cfg.model.dtype,
        dropout=[layer.dropout for layer in layers],
        residual=[layer.residual for layer in layers],
    )
    m = cfg.model
    net.init(
        m.init,
        rng,
        m.init_scale,
        per_layer=[layer.init for layer in layers],
        bias=m.bias_init,
        bias_scale=m.bias_init_scale,
    )
    return net


def build_optimizer(cfg: Config, net: Network) -> Optimizer:
    """The config's optimizer; decay_biases false decays the weights W^l alone (torch's two
    parameter groups, the biases' with weight_decay 0)."""
    hyper = cfg.optimizer.model_dump()
    name = hyper.pop("name")
    decayed = None if hyper.pop("decay_biases") else net.weight_slices()
    return make_optimizer(name, net.params, net.grads, decayed=decayed, **hyper)


def build_schedule(cfg: Config) -> Schedule:
    t = cfg.training
    params = t.lr_schedule.model_dump() if t.lr_schedule else {"name": "constant"}
    name = params.pop("name")
    params.pop("monitor", None)
    warm = t.warmup
    return Schedule(
        cfg.optimizer.lr,
        name,
        warmup_iters=warm.total_iters if warm else 0,
        warmup_start_factor=warm.start_factor if warm else 1.0,
        **params,
    )


def metric_columns(cfg: Config, n_layers: int) -> list[str]:
    """The metrics.csv columns a run of this config writes (after epoch, before time_s)."""
    m = "accuracy" if cfg.task == "classification" else "r2"
    cols = ["train_loss", f"train_{m}", "val_loss", f"val_{m}", "lr"]
    return cols + [
        f"{k}_{l}" for k in ("grad_norm", "weight_norm", "update_ratio") for l in range(n_layers)
    ]


def check_against_data(cfg: Config, prep: Prepared, source: str) -> None:
    """Checks that need the data: output units, residual widths, monitored columns."""
    layers = cfg.model.layers
    units = layers[-1].units
    where = f"{source}: model.layers[{len(layers) - 1}].units"
    if cfg.task == "classification":
        problem = output_units_problem(cfg.loss, units, prep.n_outputs, prep.multilabel)
        if problem:
            raise ConfigError(f"{where}: the output layer has {units} unit(s) but {problem}")
    elif units != prep.n_outputs:
        raise ConfigError(
            f"{where}: the output layer has {units} unit(s) but the data has "
            f"{prep.n_outputs} target column(s); set units: {prep.n_outputs}"
        )
    if prep.multilabel and cfg.training.class_weight is not None:
        raise ConfigError(
            f"{source}: training.class_weight: weighs the classes of one label column; this "
            "data has several 0/1 label columns (data.sample_weight weighs rows)"
        )
    problem = architecture_problem(
        [prep.n_features, *(layer.units for layer in layers)],
        [layer.dropout for layer in layers],
        [layer.residual for layer in layers],
    )
    if problem:
        raise ConfigError(f"{source}: {problem}")
    columns = metric_columns(cfg, len(layers))
    t = cfg.training
    watched = []
    if t.early_stopping:
        watched.append(("training.early_stopping.monitor", t.early_stopping.monitor))
    if t.lr_schedule is not None and t.lr_schedule.name == "reduce_on_plateau":
        watched.append(("training.lr_schedule.monitor", t.lr_schedule.monitor))
    extras = EXTRA_MONITORS[cfg.task]
    for key, col in watched:
        if col not in columns and col not in extras:
            raise ConfigError(
                f"{source}: {key}: {col!r} is not a metrics.csv column; expected one of "
                f"{', '.join(columns[:5])}, grad_norm_0, ..., or {', '.join(extras)}"
            )
        if col.startswith("val_") and len(prep.X["val"]) == 0:
            raise ConfigError(
                f"{source}: {key}: {col} needs a validation split; set data.validation > 0 "
                "or monitor a train_ column"
            )


def load_prepared(cfg: Config, where: str) -> Prepared:
    """The config's data, split, standardized and encoded for its loss and dtype."""
    ds = load_dataset(cfg.data, cfg.seed)
    return prepare(
        ds,
        cfg.data,
        cfg.loss,
        cfg.seed,
        dtype=cfg.model.dtype,
        where=where,
        scale_target=cfg.scales_target,
        task=cfg.task,
        units=cfg.model.layers[-1].units,
    )


@dataclass
class Setup:
    """A config made concrete: its data, its initialized network, its loss, its generators."""

    cfg: Config
    prep: Prepared
    net: Network
    loss: Loss
    rngs: dict[str, np.random.Generator]
    source: str = "config"

    @property
    def task(self) -> str:
        return self.cfg.task


def training_memory(cfg: Config, n_features: int, n_train: int) -> int:
    """Bytes a run of this config allocates beyond its data, at most: the flat parameters and
    every buffer of their size (gradients, the optimizer's state and scratch, the best
    epoch's and the epoch-start copies, a rollback snapshot), plus each layer's activations
    and gradients for a batch and for an evaluation chunk."""
    itemsize = np.dtype(cfg.model.dtype).itemsize
    widths = [n_features, *(layer.units for layer in cfg.model.layers)]
    n_state = len(OPTIMIZERS[cfg.optimizer.name].state_names)
    copies = 2 + n_state + 2 + (1 if cfg.training.early_stopping else 0) + 1 + (1 + n_state)
    batch = min(cfg.batch_size or n_train, max(n_train, 1))
    rows = 6 * batch + 3 * EVAL_CHUNK  # z, h, a, gradients, masks; evaluation in chunks
    return itemsize * (parameter_count(widths) * copies + sum(widths[1:]) * rows)


def check_memory(cfg: Config, prep: Prepared, source: str) -> None:
    """Refuse a config whose network would not fit in the memory available, with the numbers,
    before anything of its size is allocated."""
    need = training_memory(cfg, prep.n_features, len(prep.X["train"]))
    have = available_memory()
    if have is not None and need > have:
        n = parameter_count([prep.n_features, *(layer.units for layer in cfg.model.layers)])
        raise ConfigError(
            f"{source}: model.layers: training this network needs about {gigabytes(need)} "
            f"({n:,} parameters in {cfg.model.dtype}, {cfg.optimizer.name}'s state, activations "
            f"for batches of {cfg.batch_size or 'all'} rows), more than the {gigabytes(have)} "
            "of memory available; use fewer or narrower layers, or a smaller batch_size"
        )


def setup(cfg: Config, source: str, prep: Prepared | None = None) -> Setup:
    """Load and check the config's data (or use ``prep``), then build its network and loss."""
    rngs = streams(cfg.seed)
    if prep is None:
        prep = load_prepared(cfg, source)
    check_against_data(cfg, prep, source)
    check_memory(cfg, prep, source)
    net = build_network(cfg, prep.n_features, rngs["init"])
    return Setup(cfg, prep, net, get_loss(cfg.loss), rngs, source)


def layer_table(s: Setup) -> list[dict]:
    """One row per layer: activation, W's shape, parameters, dropout, residual, init."""
    net, layers = s.net, s.cfg.model.layers
    return [
        {
            "layer": i,
            "activation": a,
            "shape": f"{fi}x{fo}",
            "parameters": fi * fo + fo,
            "dropout": p,
            "residual": r,
            "init": layer.init or s.cfg.model.init,
        }
        for i, (fi, fo, a, p, r, layer) in enumerate(
            zip(
                net.sizes[:-1],
                net.sizes[1:],
                net.activation_names,
                net.dropout,
                net.residual,
                layers,
                strict=True,
            )
        )
    ]


def row_weights(cfg: Config, prep: Prepared, source: str) -> dict[str, np.ndarray | None]:
    """Each split's row weights in the loss, or None: the class weight of the row's class
    (training.class_weight; balanced is scikit-learn's n / (k * count) on the training rows)
    times the row's own weight (data.sample_weight)."""
    cw = cfg.training.class_weight
    per_class = None
    if cw is not None:
        k = len(prep.classes)
        if cw == "balanced":
            counts = np.bincount(class_indices(prep.y["train"]), minlength=k)
            per_class = len(prep.y["train"]) / (k * np.maximum(counts, 1))
        else:
            index = {str(c): i for i, c in enumerate(prep.classes)}
            per_class = np.ones(k)
            for label, weight in cw.items():
                if str(label) not in index:
                    raise ConfigError(
                        f"{source}: training.class_weight: {label!r} is not a class; the classes "
                        f"are {', '.join(map(str, prep.classes))}"
                    )
                per_class[index[str(label)]] = weight
    out: dict[str, np.ndarray | None] = {}
    for split in prep.indices:
        w = None if per_class is None else per_class[class_indices(prep.y[split])]
        s = prep.sample_weights(split)
        out[split] = s if w is None else (w if s is None else w * s)
    if out["train"] is not None and not out["train"].any():
        raise ConfigError(
            f"{source}: every training row has weight 0 (class_weight, sample_weight)"
        )
    return out
