"""Training: the mini-batch loop, and a run that builds it from a config and keeps its files.

The loop yields one record (a dict) per epoch; it never prints. ``Run`` validates the
config against the data before any file is written, then writes the run directory as
training goes: metrics.csv, weights.npz and checkpoint.npz after every epoch.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from . import __version__, runs
from .config import Config
from .data import Prepared, load_dataset, prepare, streams
from .errors import ConfigError, DivergenceError, WeightsError
from .metrics import accuracy, r2_score
from .nn.losses import Loss, get_loss
from .nn.network import Network
from .nn.optimizers import Optimizer, make_optimizer

Progress = Callable[[int, int], None]


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


def train_epochs(
    net: Network,
    opt: Optimizer,
    loss: Loss,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int | None,
    shuffle: bool,
    rng: np.random.Generator,
    task: str,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    start_epoch: int = 1,
    progress: Progress | None = None,
) -> Iterator[dict]:
    """Mini-batch gradient descent, one record per epoch.

    X (n, n_features), y encoded targets. ``batch_size`` None is full-batch GD, 1 is
    stochastic GD (BACKPROP.md 7.5). Each epoch draws one permutation from ``rng`` and
    gathers each batch's rows into a preallocated buffer. A non-finite loss restores the
    parameters of the epoch's start and raises DivergenceError.
    """
    n = len(X)
    bs = n if batch_size is None else min(batch_size, n)
    n_batches = math.ceil(n / bs)
    xbuf = np.empty((bs, X.shape[1]), dtype=X.dtype)
    ybuf = np.empty((bs, *y.shape[1:]), dtype=y.dtype)
    y64 = y.reshape(n, -1).astype(np.float64) if task == "regression" else None
    ss_tot = ((y64 - y64.mean(axis=0)) ** 2).sum(axis=0) if y64 is not None else None
    start_params = np.empty_like(net.params)
    for epoch in range(start_epoch, epochs + 1):
        t0 = time.perf_counter()
        np.copyto(start_params, net.params)
        order = rng.permutation(n) if shuffle else np.arange(n)
        total_loss = 0.0
        correct = 0
        ss_res = np.zeros(y.shape[1] if y.ndim == 2 else 1)
        # Overflow on the way to a non-finite loss is caught below, with a clear message.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            for b in range(n_batches):
                STOP.check()
                idx = order[b * bs : (b + 1) * bs]
                m = len(idx)
                xb = np.take(X, idx, axis=0, out=xbuf[:m])
                yb = np.take(y, idx, axis=0, out=ybuf[:m])
                value = net.loss_and_grad(xb, yb, loss)
                if not math.isfinite(value):
                    np.copyto(net.params, start_params)
                    raise DivergenceError(
                        f"training diverged at epoch {epoch}, batch {b + 1}: the loss is {value}; "
                        f"weights kept from the end of epoch {epoch - 1}. Try a lower optimizer.lr "
                        "or float64"
                    )
                total_loss += value * m
                out = net.output()
                if task == "classification":
                    correct += int(accuracy(yb, out) * m + 0.5)
                else:
                    ss_res += ((yb.reshape(m, -1) - out) ** 2).sum(axis=0)
                opt.step()
                if progress is not None:
                    progress(b + 1, n_batches)
        record = {"epoch": epoch, "train_loss": total_loss / n}
        if task == "classification":
            record["train_accuracy"] = correct / n
        else:
            safe = np.where(ss_tot > 0, ss_tot, 1.0)
            record["train_r2"] = float(np.mean(np.where(ss_tot > 0, 1 - ss_res / safe, 1.0)))
        if val is not None and len(val[0]):
            vl, vm = evaluate(net, loss, val[0], val[1], task)
            record["val_loss"] = vl
            record["val_accuracy" if task == "classification" else "val_r2"] = vm
        else:
            record["val_loss"] = float("nan")
            record["val_accuracy" if task == "classification" else "val_r2"] = float("nan")
        record["lr"] = opt.lr
        record["time_s"] = time.perf_counter() - t0
        yield record


def build_network(cfg: Config, n_inputs: int, rng: np.random.Generator) -> Network:
    sizes = [n_inputs] + [layer.units for layer in cfg.model.layers]
    net = Network(sizes, [layer.activation for layer in cfg.model.layers], dtype=cfg.model.dtype)
    net.init(cfg.model.init, rng, cfg.model.init_scale)
    return net


def build_optimizer(cfg: Config, net: Network) -> Optimizer:
    hyper = cfg.optimizer.model_dump()
    name = hyper.pop("name")
    return make_optimizer(name, net.params, net.grads, **hyper)


def check_against_data(cfg: Config, prep: Prepared, source: str) -> None:
    """The output layer must fit the data: one unit per class, or per target column."""
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


def weights_spec(cfg: Config, prep: Prepared, net: Network, epoch: int) -> dict:
    return {
        "format": runs.FORMAT,
        "version": runs.FORMAT_VERSION,
        "name": cfg.name,
        "sizes": net.sizes,
        "activations": net.activation_names,
        "loss": cfg.loss,
        "dtype": cfg.model.dtype,
        "task": prep.task,
        "classes": prep.classes,
        "feature_names": prep.dataset.feature_names,
        "target_names": prep.dataset.target_names,
        "data": {**cfg.data.model_dump(mode="json"), "source": prep.dataset.source},
        "seed": cfg.seed,
        "epoch": epoch,
        "backprop_version": __version__,
    }


@dataclass
class Run:
    """One training run: everything checked before the first file, then files every epoch."""

    cfg: Config
    source: str
    out: str | None = None
    init_from: str | None = None
    prep: Prepared = field(init=False)
    net: Network = field(init=False)
    opt: Optimizer = field(init=False)
    dir: Path | None = field(init=False, default=None)
    rows: list[dict] = field(init=False, default_factory=list)
    stop_reason: str = field(init=False, default="")

    def __post_init__(self):
        cfg = self.cfg
        self.rngs = streams(cfg.seed)
        self.prep = load_prepared(
            cfg.data.model_dump(), cfg.loss, cfg.seed, cfg.model.dtype, self.source
        )
        check_against_data(cfg, self.prep, self.source)
        self.loss = get_loss(cfg.loss)
        self.net = build_network(cfg, self.prep.n_features, self.rngs["init"])
        if self.init_from:
            self._load_init(self.init_from)
        self.opt = build_optimizer(cfg, self.net)

    def _load_init(self, path: str) -> None:
        spec, arrays = runs.load_weights(path)
        if spec["sizes"] != self.net.sizes or spec["activations"] != self.net.activation_names:
            raise WeightsError(
                f"{path}: --init-from needs the same architecture: the file has sizes {spec['sizes']} "
                f"({', '.join(spec['activations'])}), the config {self.net.sizes} ({', '.join(self.net.activation_names)})"
            )
        for name, t in zip(self.net.tensor_names(), self.net.tensors(), strict=True):
            t[...] = arrays[name]

    def start(self) -> Path:
        """Create the run directory and write the resolved config."""
        self.dir = runs.new_run_dir(self.out or self.cfg.output.dir or f"runs/{self.cfg.name}")
        runs.write_text(
            self.dir / "config.yaml", yaml.safe_dump(self.cfg.resolved(), sort_keys=False)
        )
        return self.dir

    def spec(self, epoch: int) -> dict:
        return weights_spec(self.cfg, self.prep, self.net, epoch)

    def save(self, epoch: int) -> None:
        assert self.dir is not None
        runs.write_metrics(self.dir / "metrics.csv", self.rows)
        runs.save_weights(
            self.dir / "weights.npz", self.net, self.spec(epoch), self.prep.mean, self.prep.scale
        )
        state = {f"opt_{k}": np.asarray(v) for k, v in self.opt.state_dict().items()}
        runs.write_npz(
            self.dir / "checkpoint.npz",
            {
                "params": self.net.params,
                "epoch": np.asarray(epoch),
                **state,
                "config_digest": np.array(self.cfg.digest()),
            },
        )

    def epochs(self, progress: Progress | None = None) -> Iterator[dict]:
        """Train, yielding each epoch's record after its files are written."""
        cfg, prep = self.cfg, self.prep
        self.t0 = time.perf_counter()
        loop = train_epochs(
            self.net,
            self.opt,
            self.loss,
            prep.X["train"],
            prep.y["train"],
            epochs=cfg.training.epochs,
            batch_size=cfg.batch_size,
            shuffle=cfg.training.shuffle,
            rng=self.rngs["shuffle"],
            task=prep.task,
            val=(prep.X["val"], prep.y["val"]),
            progress=progress,
        )
        STOP.active, STOP.requested = True, False
        try:
            for record in loop:
                self.rows.append(record)
                self.save(record["epoch"])
                STOP.check()
                yield record
        except DivergenceError:
            self.stop_reason = "diverged"
            self.save(len(self.rows))
            self.write_summary()
            raise
        except KeyboardInterrupt:
            self.interrupted()
            raise
        finally:
            STOP.active = False
        self.stop_reason = "completed"
        self.write_summary()

    def interrupted(self) -> None:
        """Record an interruption in summary.json (once); the completed epochs' files stay as they are."""
        if self.stop_reason != "interrupted":
            self.stop_reason = "interrupted"
            self.write_summary()

    def summary(self) -> dict:
        task = self.prep.task
        metric = "val_accuracy" if task == "classification" else "val_r2"
        final = self.rows[-1] if self.rows else {}
        have_val = bool(self.rows) and not math.isnan(self.rows[-1].get("val_loss", float("nan")))
        best = (
            min(self.rows, key=lambda r: r["val_loss"] if have_val else r["train_loss"])
            if self.rows
            else {}
        )
        test_loss, test_metric = evaluate(
            self.net, self.loss, self.prep.X["test"], self.prep.y["test"], task
        )
        return {
            "name": self.cfg.name,
            "run_dir": str(self.dir),
            "task": task,
            "stop_reason": self.stop_reason,
            "epochs": len(self.rows),
            "time_s": time.perf_counter() - getattr(self, "t0", time.perf_counter()),
            "final": final,
            "best": best,
            "best_by": "val_loss" if have_val else "train_loss",
            "test": {
                "loss": test_loss,
                metric.replace("val_", ""): test_metric,
                "rows": len(self.prep.X["test"]),
            },
            "seed": self.cfg.seed,
            "config_sha256": self.cfg.digest(),
            "parameters": int(self.net.params.size),
            "versions": {
                "backprop": __version__,
                "numpy": np.__version__,
                "python": platform.python_version(),
            },
        }

    def write_summary(self) -> dict:
        s = _finite(self.summary())
        if self.dir is not None:
            runs.write_json(self.dir / "summary.json", s)
        self.summary_data = s
        return s


def _finite(obj):
    """NaN and Inf become None so the JSON is valid everywhere (jq included)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj
