"""Training: the mini-batch loop with its controls, and a run that keeps its files.

``Trainer`` owns everything that changes while training (parameters, optimizer state,
learning-rate schedule, early stopping, random generators) and yields one record (a
dict) per epoch; it never prints. Its ``state_dict`` is the checkpoint, so a resumed run
continues bit for bit where it stopped. ``Run`` builds a Trainer from a config, checks
the config against the data before any file is written, then writes the run directory as
training goes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import yaml

from . import __version__
from .config import Config, architecture_problem, read_config_file
from .data import Prepared, load_dataset, prepare, streams
from .errors import ConfigError, DivergenceError, OutputError, WeightsError
from .metrics import accuracy, r2_score
from .nn.losses import Loss, get_loss
from .nn.network import Network
from .nn.optimizers import Optimizer, make_optimizer
from .nn.schedules import Schedule
from .store import checkpoint, weights
from .store.files import json_safe, new_run_dir, write_text
from .store.rundir import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    WEIGHTS,
    MetricsLog,
    RunFileError,
    read_metrics,
    write_summary,
)

Progress = Callable[[int, int], None]

# A layer's gradient norm this many times below the output layer's is "vanishing", this
# many times above it "exploding" (1e-3: three orders of magnitude).
VANISHING_RATIO = 1e-3
EXPLODING_RATIO = 1e3


class StopRequest:
    """Set by a signal handler; the loop stops at the next batch, never in the middle of a save."""

    active = False  # a training loop is running and checks ``requested``
    requested = False

    @classmethod
    def check(cls) -> None:
        if cls.requested:
            raise KeyboardInterrupt


STOP = StopRequest


def evaluate(
    net: Network, loss: Loss, X: np.ndarray, y: np.ndarray, task: str
) -> tuple[float, float]:
    """(loss, accuracy or R^2) of ``net`` on (X, y); NaNs when there are no rows."""
    if len(X) == 0:
        return float("nan"), float("nan")
    value, out = net.evaluate(X, y, loss)
    metric = accuracy(y, out) if task == "classification" else r2_score(y, out)
    return float(value), metric


class EarlyStopping:
    """Tracks the best value of a metrics column; ``wait`` epochs without improvement stop training."""

    def __init__(self, monitor: str, mode: str, patience: int, min_delta: float):
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, min_delta
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = 0
        self.wait = 0

    def update(self, epoch: int, value: float) -> tuple[bool, bool]:
        """(improved, stop) after an epoch whose monitored value is ``value``."""
        better = (
            value < self.best - self.min_delta
            if self.mode == "min"
            else value > self.best + self.min_delta
        )
        if better and math.isfinite(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return True, False
        self.wait += 1
        return False, self.wait >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]


class Trainer:
    """Mini-batch gradient descent with schedules, clipping, early stopping and a NaN guard.

    X (n, n_features) and y (encoded targets) are the training rows. ``batch_size`` None is
    full-batch GD, 1 stochastic GD (BACKPROP.md 7.5). Each epoch draws one permutation from
    the shuffle generator and gathers each batch's rows into a preallocated buffer.
    """

    def __init__(
        self,
        net: Network,
        opt: Optimizer,
        loss: Loss,
        X: np.ndarray,
        y: np.ndarray,
        *,
        task: str,
        epochs: int,
        batch_size: int | None,
        shuffle: bool,
        rngs: dict[str, np.random.Generator],
        val: tuple[np.ndarray, np.ndarray] | None = None,
        schedule: Schedule | None = None,
        schedule_monitor: str = "val_loss",
        early: EarlyStopping | None = None,
        restore_best: bool = True,
        clip_grad_norm: float | None = None,
        clip_grad_value: float | None = None,
        on_divergence: str = "stop",
        max_rollbacks: int = 3,
    ):
        self.net, self.opt, self.loss, self.X, self.y, self.task = net, opt, loss, X, y, task
        self.epochs, self.shuffle, self.rngs = epochs, shuffle, rngs
        self.val = val if val is not None and len(val[0]) else None
        self.batch_size = len(X) if batch_size is None else min(batch_size, len(X))
        self.schedule = schedule or Schedule(opt.lr)
        self.schedule_monitor = schedule_monitor
        self.early, self.restore_best = early, restore_best
        self.clip_grad_norm, self.clip_grad_value = clip_grad_norm, clip_grad_value
        self.on_divergence, self.max_rollbacks = on_divergence, max_rollbacks
        self.epoch = 0  # completed epochs
        self.rollbacks = 0
        self.warned: list[str] = []
        self.stopped_early = False
        self.best_params = net.params.copy() if early is not None else None
        self.slices = net.layer_slices()
        self._pending_warnings: list[str] = []
        # Asked at each batch: True stops this trainer alone (STOP stops every one in the process).
        self.should_stop: Callable[[], bool] | None = None

    # ------------------------------------------------------------------ state (the checkpoint)

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict]:
        """(arrays, JSON-able state): everything needed to continue exactly from here."""
        arrays = {"params": self.net.params}
        arrays |= {f"opt_{k}": v for k, v in self.opt.state.items()}
        if self.best_params is not None:
            arrays["best_params"] = self.best_params
        state = {
            "epoch": self.epoch,
            "opt_t": self.opt.t,
            "lr": self.opt.lr,
            "schedule": self.schedule.state_dict(),
            "early": self.early.state_dict() if self.early else None,
            "stopped_early": self.stopped_early,
            "rollbacks": self.rollbacks,
            "warned": self.warned,
            "rngs": {k: g.bit_generator.state for k, g in self.rngs.items()},
        }
        return arrays, state

    def load_state_dict(self, arrays: dict[str, np.ndarray], state: dict) -> None:
        np.copyto(self.net.params, arrays["params"])
        self.opt.load_state_dict(
            {"t": state["opt_t"], **{k: arrays[f"opt_{k}"] for k in self.opt.state}}
        )
        self.opt.lr = state["lr"]
        if self.best_params is not None and "best_params" in arrays:
            np.copyto(self.best_params, arrays["best_params"])
        self.schedule.load_state_dict(state["schedule"])
        if self.early and state["early"]:
            self.early.load_state_dict(state["early"])
        self.epoch, self.stopped_early = state["epoch"], state["stopped_early"]
        self.rollbacks, self.warned = state["rollbacks"], list(state["warned"])
        for k, g in self.rngs.items():
            g.bit_generator.state = state["rngs"][k]

    def _snapshot(self):
        return (
            self.net.params.copy(),
            {k: v.copy() for k, v in self.opt.state.items()},
            self.opt.t,
            {k: g.bit_generator.state for k, g in self.rngs.items()},
        )

    def _restore(self, snap) -> None:
        params, opt_state, t, rng_states = snap
        np.copyto(self.net.params, params)
        for k, v in opt_state.items():
            np.copyto(self.opt.state[k], v)
        self.opt.t = t
        for k, g in self.rngs.items():
            g.bit_generator.state = rng_states[k]

    # ------------------------------------------------------------------ the loop

    @property
    def done(self) -> bool:
        return self.stopped_early or self.epoch >= self.epochs

    def run(self, progress: Progress | None = None) -> Iterator[dict]:
        """Train until ``epochs`` or early stopping; one record per epoch."""
        while not self.done:
            snap = self._snapshot()
            while True:
                try:
                    record = self._epoch(self.epoch + 1, progress)
                    break
                except DivergenceError as e:
                    self._restore(snap)
                    if self.on_divergence != "rollback" or self.rollbacks >= self.max_rollbacks:
                        if self.on_divergence == "rollback":
                            e.args = (
                                e.args[0].split("; the files keep")[0]
                                + f", after {self.rollbacks} rollback(s) with the lr halved each time, the most "
                                "training.max_rollbacks allows; the files keep the last good epoch. Lower "
                                "optimizer.lr or set training.clip_grad_norm",
                            )
                        raise
                    self.rollbacks += 1
                    self.schedule.scale *= 0.5
                    self.warned.append(
                        f"rollback {self.rollbacks}: {e.args[0]}; retrying epoch "
                        f"{self.epoch + 1} from the last good state with the lr halved"
                    )
                    self._pending_warnings.append(self.warned[-1])
                except KeyboardInterrupt:
                    self._restore(snap)  # back to the end of the last completed epoch, to be saved
                    raise
            self.epoch += 1
            self._after_epoch(record)
            yield record
        if (
            self.best_params is not None
            and self.restore_best
            and self.early
            and self.early.best_epoch
        ):
            np.copyto(self.net.params, self.best_params)

    def _epoch(self, epoch: int, progress: Progress | None) -> dict:
        net, opt, loss, X, y = self.net, self.opt, self.loss, self.X, self.y
        t0 = time.perf_counter()
        n, bs = len(X), self.batch_size
        n_batches = math.ceil(n / bs)
        opt.lr = self.schedule.lr(epoch - 1)
        start = net.params.copy()
        xbuf = np.empty((bs, X.shape[1]), dtype=X.dtype)
        ybuf = np.empty((bs, *y.shape[1:]), dtype=y.dtype)
        order = self.rngs["shuffle"].permutation(n) if self.shuffle else np.arange(n)
        total_loss, correct = 0.0, 0
        ss_res = np.zeros(y.shape[1] if y.ndim == 2 else 1)
        grad_sq = np.zeros(net.n_layers)
        clipped = 0
        dropout = net.has_dropout
        # Overflow on the way to a non-finite loss is caught below, with a clear message.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            for b in range(n_batches):
                if STOP.requested or (self.should_stop is not None and self.should_stop()):
                    raise KeyboardInterrupt
                idx = order[b * bs : (b + 1) * bs]
                m = len(idx)
                # mode="clip": the indices are a permutation, always in range; the default
                # "raise" gathers into a temporary and copies it to out, twice the work.
                xb = X.take(idx, axis=0, out=xbuf[:m], mode="clip")
                yb = y.take(idx, axis=0, out=ybuf[:m], mode="clip")
                if dropout:
                    net.sample_masks(m, self.rngs["dropout"])
                value = net.loss_and_grad(xb, yb, loss, train=True)
                norms = [float(np.dot(net.grads[s], net.grads[s])) for s in self.slices]
                if not (math.isfinite(value) and math.isfinite(sum(norms))):
                    where = net.first_nonfinite_layer() or next(
                        (
                            f"layer {l} (its gradient norm overflows {net.dtype})"
                            for l, g in enumerate(norms)
                            if not math.isfinite(g)
                        ),
                        "the loss",
                    )
                    raise DivergenceError(
                        f"training diverged at epoch {epoch}, batch {b + 1}: the loss is {value:.4g}, "
                        f"first non-finite at {where}; the files keep epoch {epoch - 1}. Lower "
                        "optimizer.lr, set training.clip_grad_norm, or training.on_divergence: rollback"
                    )
                grad_sq += norms
                total_loss += value * m
                out = net.output()
                if y.ndim == 1:  # class indices (cross-entropy)
                    correct += int(np.count_nonzero(out.argmax(axis=1) == yb))
                elif self.task == "classification":
                    correct += int(accuracy(yb, out) * m + 0.5)
                else:
                    ss_res += ((yb.reshape(m, -1) - out) ** 2).sum(axis=0)
                if self.clip_grad_norm is not None:
                    # torch.nn.utils.clip_grad_norm_: scale by max_norm / (total_norm + 1e-6) when < 1
                    coef = self.clip_grad_norm / (math.sqrt(sum(norms)) + 1e-6)
                    if coef < 1.0:
                        net.grads *= coef
                        clipped += 1
                if self.clip_grad_value is not None:
                    np.clip(net.grads, -self.clip_grad_value, self.clip_grad_value, out=net.grads)
                opt.step()
                if progress is not None:
                    progress(b + 1, n_batches)
        record: dict = {"epoch": epoch, "train_loss": total_loss / n}
        metric = "accuracy" if self.task == "classification" else "r2"
        if self.task == "classification":
            record["train_accuracy"] = correct / n
        else:
            yv = y.reshape(n, -1).astype(np.float64)
            ss_tot = ((yv - yv.mean(axis=0)) ** 2).sum(axis=0)
            safe = np.where(ss_tot > 0, ss_tot, 1.0)
            record["train_r2"] = float(np.mean(np.where(ss_tot > 0, 1 - ss_res / safe, 1.0)))
        if self.val is not None:
            record["val_loss"], record[f"val_{metric}"] = evaluate(net, loss, *self.val, self.task)
        else:
            record["val_loss"], record[f"val_{metric}"] = float("nan"), float("nan")
        record["lr"] = opt.lr
        record["time_s"] = time.perf_counter() - t0
        # Per-layer diagnostics: the mean gradient norm over the epoch's batches (before
        # clipping), the weight norm, and how far the epoch moved the weights relative to them.
        grad_norms = np.sqrt(grad_sq / n_batches)
        for l in range(net.n_layers):
            record[f"grad_norm_{l}"] = float(grad_norms[l])
        for l, s in enumerate(self.slices):
            record[f"weight_norm_{l}"] = float(np.linalg.norm(net.params[s]))
        for l, s in enumerate(self.slices):
            before = float(np.linalg.norm(start[s]))
            moved = float(np.linalg.norm(net.params[s] - start[s]))
            record[f"update_ratio_{l}"] = moved / before if before > 0 else float("nan")
        if self.clip_grad_norm is not None:
            record["clipped_batches"] = clipped
        return record

    def _after_epoch(self, record: dict) -> None:
        epoch = record["epoch"]
        warnings, self._pending_warnings = self._pending_warnings, []
        warnings += self._gradient_warnings(record)
        if warnings:
            record["warnings"] = warnings
        self.schedule.observe(epoch, record.get(self.schedule_monitor, float("nan")))
        if self.early is not None:
            improved, stop = self.early.update(epoch, record.get(self.early.monitor, float("nan")))
            if improved:
                np.copyto(self.best_params, self.net.params)
            if stop:
                self.stopped_early = True

    def _gradient_warnings(self, record: dict) -> list[str]:
        """Vanishing or exploding gradients, each said once per run with the remedies that apply."""
        L = self.net.n_layers
        out_norm = record[f"grad_norm_{L - 1}"]
        if L < 2 or not out_norm > 0:
            return []
        found = []
        for l in range(L - 1):
            ratio = record[f"grad_norm_{l}"] / out_norm
            if ratio < VANISHING_RATIO and "vanishing" not in self.warned:
                acts = sorted(
                    {
                        a
                        for a in self.net.activation_names[:-1]
                        if a in ("sigmoid", "tanh", "softmax")
                    }
                )
                found.append(
                    f"vanishing gradients: layer {l}'s gradient norm is {ratio:.1e} of the output layer's "
                    f"(epoch {record['epoch']}); the layers before it barely learn. Remedies: relu with "
                    f"init: he{' instead of ' + '/'.join(acts) if acts else ''}, residual: true on "
                    "equal-width layers, fewer layers"
                )
                self.warned.append("vanishing")
            if ratio > EXPLODING_RATIO and "exploding" not in self.warned:
                found.append(
                    f"exploding gradients: layer {l}'s gradient norm is {ratio:.1e} times the output layer's "
                    f"(epoch {record['epoch']}). Remedies: a lower optimizer.lr, training.clip_grad_norm, "
                    "a smaller init (init: xavier, or a smaller init_scale), weight_decay"
                )
                self.warned.append("exploding")
        return found


# ---------------------------------------------------------------------------- building a run


def build_network(cfg: Config, n_inputs: int, rng: np.random.Generator) -> Network:
    layers = cfg.model.layers
    sizes = [n_inputs] + [layer.units for layer in layers]
    net = Network(
        sizes,
        [layer.activation for layer in layers],
        dtype=cfg.model.dtype,
        dropout=[layer.dropout for layer in layers],
        residual=[layer.residual for layer in layers],
    )
    net.init(cfg.model.init, rng, cfg.model.init_scale, per_layer=[layer.init for layer in layers])
    return net


def build_optimizer(cfg: Config, net: Network) -> Optimizer:
    hyper = cfg.optimizer.model_dump()
    name = hyper.pop("name")
    return make_optimizer(name, net.params, net.grads, **hyper)


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
    m = "accuracy" if cfg.task == "classification" else "r2"
    cols = ["train_loss", f"train_{m}", "val_loss", f"val_{m}", "lr"]
    return cols + [
        f"{k}_{l}" for k in ("grad_norm", "weight_norm", "update_ratio") for l in range(n_layers)
    ]


def check_against_data(cfg: Config, prep: Prepared, source: str) -> None:
    """Checks that need the data: output units, residual widths, monitored columns."""
    last = len(cfg.model.layers) - 1
    units = cfg.model.layers[-1].units
    where = f"{source}: model.layers[{last}].units"
    if cfg.loss == "cross_entropy" and units != prep.n_outputs:
        raise ConfigError(
            f"{where}: the output layer has {units} unit(s) but the data has "
            f"{prep.n_outputs} classes; set units: {prep.n_outputs}"
        )
    if cfg.task == "regression" and units != prep.n_outputs:
        raise ConfigError(
            f"{where}: the output layer has {units} unit(s) but the data has "
            f"{prep.n_outputs} target column(s); set units: {prep.n_outputs}"
        )
    layers = cfg.model.layers
    problem = architecture_problem(
        [prep.n_features, *(layer.units for layer in layers)],
        [layer.dropout for layer in layers],
        [layer.residual for layer in layers],
    )
    if problem:
        raise ConfigError(f"{source}: {problem}")
    columns = metric_columns(cfg, len(cfg.model.layers))
    t = cfg.training
    watched = []
    if t.early_stopping:
        watched.append(("training.early_stopping.monitor", t.early_stopping.monitor))
    if t.lr_schedule is not None and t.lr_schedule.name == "reduce_on_plateau":
        watched.append(("training.lr_schedule.monitor", t.lr_schedule.monitor))
    for key, col in watched:
        if col not in columns:
            raise ConfigError(
                f"{source}: {key}: {col!r} is not a metrics.csv column; expected one of "
                f"{', '.join(columns[:5])}, grad_norm_0, ..."
            )
        if col.startswith("val_") and len(prep.X["val"]) == 0:
            raise ConfigError(
                f"{source}: {key}: {col} needs a validation split; set data.validation > 0 "
                "or monitor a train_ column"
            )


def load_prepared(data_cfg: dict, loss: str, seed: int, dtype, where: str) -> Prepared:
    ds = load_dataset(data_cfg, seed)
    return prepare(
        ds,
        loss,
        seed,
        data_cfg.get("validation", 0.0),
        data_cfg.get("test", 0.0),
        data_cfg.get("standardize", True),
        dtype=dtype,
        where=where,
    )


def weights_spec(cfg: Config, prep: Prepared, net: Network, epoch: int) -> weights.WeightsSpec:
    return weights.WeightsSpec(
        name=cfg.name,
        sizes=net.sizes,
        activations=net.activation_names,
        residual=net.residual,
        loss=cfg.loss,
        dtype=cfg.model.dtype,
        task=prep.task,
        classes=prep.classes,
        feature_names=prep.dataset.feature_names,
        target_names=prep.dataset.target_names,
        data=weights.SpecData(**cfg.data.model_dump(), source=prep.dataset.source),
        seed=cfg.seed,
        epoch=epoch,
        backprop_version=__version__,
    )


# Keys a resume may change: only how long to train.
RESUMABLE_CHANGES = {("training", "epochs")}


def _config_differences(old, new, path=()) -> list[tuple[str, object, object]]:
    """(key path, old, new) for every leaf that differs, except the keys a resume may change."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in dict.fromkeys([*old, *new]):
            out += _config_differences(old.get(k), new.get(k), (*path, k))
        return out
    if (
        isinstance(old, list)
        and isinstance(new, list)
        and len(old) == len(new)
        and path != ("optimizer", "betas")
    ):
        return [
            d
            for i, (o, n) in enumerate(zip(old, new, strict=True))
            for d in _config_differences(o, n, (*path, i))
        ]
    if old != new and path not in RESUMABLE_CHANGES and path[:1] != ("output",):
        key = "".join(
            f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(path)
        )
        return [(key, old, new)]
    return []


class Run:
    """One training run: everything checked before the first file, then files every epoch."""

    def __init__(
        self,
        cfg: Config,
        source: str,
        out: str | None = None,
        init_from: str | None = None,
        resume: bool = False,
    ):
        self.cfg, self.source, self.out, self.init_from = cfg, source, out, init_from
        self.dir: Path | None = None
        self.rows: list[dict] = []
        self.stop_reason = ""
        self.summary_data: dict | None = None
        self._saved_at, self._saved_epoch = -math.inf, 0
        self._metrics = MetricsLog()
        self.rngs = streams(cfg.seed)
        self.prep = load_prepared(
            cfg.data.model_dump(), cfg.loss, cfg.seed, cfg.model.dtype, source
        )
        check_against_data(cfg, self.prep, source)
        self.loss = get_loss(cfg.loss)
        self.net = build_network(cfg, self.prep.n_features, self.rngs["init"])
        if init_from:
            self._load_init(init_from)
        self.opt = build_optimizer(cfg, self.net)
        t = cfg.training
        es = t.early_stopping
        sched_monitor = (
            t.lr_schedule.monitor
            if t.lr_schedule is not None and t.lr_schedule.name == "reduce_on_plateau"
            else "val_loss"
        )
        self.trainer = Trainer(
            self.net,
            self.opt,
            self.loss,
            self.prep.X["train"],
            self.prep.y["train"],
            task=self.prep.task,
            epochs=t.epochs,
            batch_size=cfg.batch_size,
            shuffle=t.shuffle,
            rngs=self.rngs,
            val=(self.prep.X["val"], self.prep.y["val"]),
            schedule=build_schedule(cfg),
            schedule_monitor=sched_monitor,
            early=EarlyStopping(es.monitor, es.resolved_mode, es.patience, es.min_delta)
            if es
            else None,
            restore_best=es.restore_best if es else False,
            clip_grad_norm=t.clip_grad_norm,
            clip_grad_value=t.clip_grad_value,
            on_divergence=t.on_divergence,
            max_rollbacks=t.max_rollbacks,
        )
        if resume:
            self._resume()

    def _load_init(self, path: str) -> None:
        spec, arrays = weights.load_weights(path)
        net = self.net
        if not weights.same_architecture(spec, net):
            raise WeightsError(
                f"{path}: --init-from needs the same architecture: the file has "
                f"{weights.describe_architecture(spec.sizes, spec.activations, spec.residual)}, "
                f"the config {weights.describe_architecture(net.sizes, net.activation_names, net.residual)}"
            )
        weights.load_parameters(net, arrays)

    # ------------------------------------------------------------------ resume

    def _resume(self) -> None:
        if not self.out:
            raise ConfigError("--resume needs --out DIR, the run directory to continue")
        d = Path(self.out)
        ckpt, cfg_file = d / CHECKPOINT, d / CONFIG
        if not os.path.isfile(ckpt) or not os.path.isfile(cfg_file):  # False on any OSError
            raise WeightsError(f"{d}: no checkpoint.npz and config.yaml to resume from")
        old = read_config_file(cfg_file)  # bounded, strict YAML; every problem one ConfigError
        diffs = _config_differences(old, self.cfg.resolved())
        if diffs:
            key, was, now = diffs[0]
            raise ConfigError(
                f"{self.source}: {key}: cannot resume {d} with a changed config "
                f"(the run has {was!r}, the config {now!r}); only training.epochs may change"
            )
        arrays, state = checkpoint.load_checkpoint(
            ckpt, self.net, self.opt, self.trainer.best_params is not None, list(self.rngs)
        )
        if state.get("config_sha256_model") not in (None, _model_digest(self.cfg)):
            raise ConfigError(
                f"{ckpt}: the checkpoint belongs to another model or data; start a new run"
            )
        self.trainer.load_state_dict(arrays, state)
        self.rows = self._read_rows(d / METRICS, state["epoch"], state.get("warnings", {}))
        self.dir = d
        self.resumed_from = state["epoch"]

    # ------------------------------------------------------------------ files

    def start(self) -> Path:
        """Create the run directory and write the resolved config (a resumed run keeps its own)."""
        if self.dir is not None:
            return self.dir
        self.dir = new_run_dir(self.out or self.cfg.output.dir or f"runs/{self.cfg.name}")
        try:
            write_text(self.dir / CONFIG, yaml.safe_dump(self.cfg.resolved(), sort_keys=False))
        except OutputError:
            with contextlib.suppress(OSError):
                self.dir.rmdir()  # still empty: leave no trace of a run that never started
            raise
        return self.dir

    def spec(self, epoch: int) -> weights.WeightsSpec:
        return weights_spec(self.cfg, self.prep, self.net, epoch)

    def save(self) -> None:
        """metrics.csv, weights.npz, then checkpoint.npz, each atomic.

        metrics.csv comes first, so it always has at least the checkpoint's epochs: a resume
        reads it back up to the checkpoint's epoch, whatever moment a kill came. Its lines are
        formatted once and kept, so a save costs the file's size, not a re-format of every row.
        """
        assert self.dir is not None
        tr = self.trainer
        self._metrics.write(self.dir, self.rows)
        weights.save_weights(
            self.dir / WEIGHTS, self.net, self.spec(tr.epoch), self.prep.mean, self.prep.scale
        )
        arrays, state = tr.state_dict()
        state |= {
            "config_sha256_model": _model_digest(self.cfg),
            "warnings": {r["epoch"]: r["warnings"] for r in self.rows if r.get("warnings")},
        }
        checkpoint.save_checkpoint(self.dir / CHECKPOINT, arrays, state)
        self._saved_at, self._saved_epoch = time.monotonic(), tr.epoch

    def _read_rows(self, path: Path, epochs: int, warnings: dict) -> list[dict]:
        """The first ``epochs`` rows of a run's metrics.csv, as the records they were written from."""
        try:
            rows = read_metrics(path)[:epochs]
        except RunFileError as e:
            raise WeightsError(f"{e}; cannot resume") from None
        if len(rows) < epochs or any(r["epoch"] != i + 1 for i, r in enumerate(rows)):
            raise WeightsError(
                f"{path}: does not list epochs 1-{epochs} of the checkpoint; cannot resume"
            )
        for r in rows:
            if str(r["epoch"]) in warnings:
                r["warnings"] = warnings[str(r["epoch"])]
        return rows

    def epochs(
        self, progress: Progress | None = None, should_stop: Callable[[], bool] | None = None
    ) -> Iterator[dict]:
        """Train, yielding each epoch's record after its files are written."""
        self.t0 = time.perf_counter()
        self.trainer.should_stop = should_stop
        STOP.active, STOP.requested = True, False
        try:
            for record in self.trainer.run(progress):
                self.rows.append(record)
                if (
                    self.trainer.done
                    or time.monotonic() - self._saved_at >= self.cfg.output.save_interval_s
                ):
                    self.save()
                STOP.check()
                if should_stop is not None and should_stop():
                    raise KeyboardInterrupt
                yield record
        except DivergenceError:
            self.stop_reason = "diverged"
            self.save()
            self.write_summary()
            raise
        except KeyboardInterrupt:
            if self._saved_epoch < self.trainer.epoch:
                self.save()
            self.interrupted()
            raise
        finally:
            STOP.active = False
        tr = self.trainer
        self.stop_reason = "early_stopping" if tr.stopped_early else "completed"
        if tr.early is not None and tr.restore_best and tr.early.best_epoch:
            # weights.npz becomes the best epoch's; the checkpoint keeps the last state to resume from.
            spec = self.spec(tr.early.best_epoch)
            spec.restored_best_epoch = tr.early.best_epoch
            weights.save_weights(
                self.dir / WEIGHTS, self.net, spec, self.prep.mean, self.prep.scale
            )
        self.write_summary()

    def interrupted(self) -> None:
        """Record an interruption in summary.json (once); the completed epochs' files stay as they are."""
        if self.stop_reason != "interrupted":
            self.stop_reason = "interrupted"
            self.write_summary()

    def summary(self) -> dict:
        task = self.prep.task
        metric = "accuracy" if task == "classification" else "r2"
        rows = [
            {
                k: v
                for k, v in r.items()
                if k
                in (
                    "epoch",
                    "train_loss",
                    f"train_{metric}",
                    "val_loss",
                    f"val_{metric}",
                    "lr",
                    "time_s",
                )
            }
            for r in self.rows
        ]
        tr = self.trainer
        if tr.early is not None and tr.early.best_epoch:
            best_by, best = tr.early.monitor, rows[tr.early.best_epoch - 1]
        else:
            have_val = bool(rows) and not math.isnan(rows[-1].get("val_loss", float("nan")))
            best_by = "val_loss" if have_val else "train_loss"
            best = min(rows, key=lambda r: r[best_by]) if rows else {}
        test_loss, test_metric = evaluate(
            self.net, self.loss, self.prep.X["test"], self.prep.y["test"], task
        )
        return {
            "name": self.cfg.name,
            "run_dir": str(self.dir),
            "task": task,
            "stop_reason": self.stop_reason,
            "epochs": len(rows),
            "time_s": time.perf_counter() - getattr(self, "t0", time.perf_counter()),
            "final": rows[-1] if rows else {},
            "best": best,
            "best_by": best_by,
            "restored_best": bool(
                tr.early
                and tr.restore_best
                and tr.early.best_epoch
                and self.stop_reason in ("completed", "early_stopping")
            ),
            "test": {"loss": test_loss, metric: test_metric, "rows": len(self.prep.X["test"])},
            "warnings": [w for r in self.rows for w in r.get("warnings", [])]
            + tr._pending_warnings,
            "rollbacks": tr.rollbacks,
            "seed": self.cfg.seed,
            "config_sha256": self.cfg.digest(),
            "parameters": int(self.net.params.size),
            "versions": {
                "backprop": __version__,
                "numpy": np.__version__,
                "python": platform.python_version(),
            },
            # "compiled": the optimizer's update ran as nn/_kernels.c; "numpy": as NumPy (same bits)
            "optimizer_update": "numpy" if self.opt._kernel is None else "compiled",
        }

    def write_summary(self) -> dict:
        s = self.summary()
        self.summary_data = write_summary(self.dir, s) if self.dir is not None else json_safe(s)
        return self.summary_data


def _model_digest(cfg: Config) -> str:
    """What a checkpoint's parameters depend on: the model, the loss, the data and the seed."""
    import hashlib

    r = cfg.resolved()
    key = {k: r[k] for k in ("seed", "data", "model", "loss")}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
