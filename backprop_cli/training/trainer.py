"""The mini-batch loop: one forward pass, one backward pass and one optimizer step per batch
(docs/backpropagation.md), with schedules, clipping, early stopping and a guard against
non-finite losses.

``Trainer`` owns everything that changes while training (parameters, optimizer state,
learning-rate schedule, early stopping, random generators) and yields one record (a dict)
per epoch; it never prints. Its ``state_dict`` is the checkpoint, so a resumed run
continues bit for bit where it stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import numpy as np

from ..errors import DivergenceError
from ..nn.losses import Loss
from ..nn.metrics import (
    accuracy,
    classification_report,
    count_correct,
    multilabel_report,
    r2_from_sums,
    r2_score,
    regression_report,
    squared_errors,
)
from ..nn.network import Network
from ..nn.optimizers import Optimizer
from ..nn.schedules import Schedule
from .diagnostics import Design, gradient_warnings, layer_norms, units_off
from .fused_epoch import plan, run_batches
from .stop import STOP
from .threads import Threads, choose, limited

# Called after every batch with (batches done, batches in the epoch).
Progress = Callable[[int, int], None]


def evaluate(
    net: Network,
    loss: Loss,
    X: np.ndarray,
    y: np.ndarray,
    task: str,
    w: np.ndarray | None = None,
    multilabel: bool = False,
) -> tuple[float, float]:
    """(loss, weighted by the rows' ``w`` when given; accuracy (multi-label: every label
    right) or R^2) of ``net`` on (X, y); NaNs when there are no rows."""
    if len(X) == 0:
        return float("nan"), float("nan")
    value, out = net.evaluate(X, y, loss, w=w)
    metric = accuracy(y, out, multilabel) if task == "classification" else r2_score(y, out)
    return float(value), metric


class EarlyStopping:
    """Tracks the best value of a metrics column; ``patience`` epochs without improvement stop."""

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


class _EpochSums:
    """What an epoch adds up over its batches: loss, correct rows or squared errors, the
    squared gradient norm of each layer, and how many batches were clipped."""

    def __init__(self, y: np.ndarray, n_layers: int):
        self.loss = 0.0
        self.correct = 0
        self.ss_res = np.zeros(y.shape[1] if y.ndim == 2 else 1)
        self.grad_sq = np.zeros(n_layers)
        self.clipped = 0


class Trainer:
    """Mini-batch gradient descent with schedules, clipping, early stopping and a NaN guard.

    X (n, n_features) and y (encoded targets) are the training rows. ``batch_size`` None is
    full-batch gradient descent, 1 stochastic gradient descent. Each epoch draws one
    permutation from the shuffle generator and gathers each batch's rows into a buffer
    allocated once per epoch.
    """

    def __init__(
        self,
        net: Network,
        opt: Optimizer,
        loss: Loss,
        X: np.ndarray,
        y: np.ndarray,
        *,
        w: np.ndarray | None = None,
        val_w: np.ndarray | None = None,
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
        val_metrics: tuple[str, ...] = (),
        unscale: Callable[[np.ndarray], np.ndarray] | None = None,
        inits: list[str] | None = None,
        threads: int | None = None,
        fused: bool | None = None,
        multilabel: bool = False,
    ):
        self.net, self.opt, self.loss, self.X, self.y, self.task = net, opt, loss, X, y, task
        # Row weights in the loss (class_weight x sample_weight), of the training and the
        # validation rows; None: every row counts the same.
        self.w, self.val_w = None if w is None else np.asarray(w, dtype=X.dtype), val_w
        self.epochs, self.shuffle, self.rngs = epochs, shuffle, rngs
        self.val = val if val is not None and len(val[0]) else None
        self.batch_size = len(X) if batch_size is None else min(batch_size, len(X))
        self.schedule = schedule or Schedule(opt.lr)
        self.schedule_monitor = schedule_monitor
        self.early, self.restore_best = early, restore_best
        self.clip_grad_norm, self.clip_grad_value = clip_grad_norm, clip_grad_value
        self.on_divergence, self.max_rollbacks = on_divergence, max_rollbacks
        # Validation metrics beyond loss and accuracy/R^2 that a monitor watches (val_f1_macro,
        # ...), computed every epoch; ``unscale`` gives regression outputs in the target's units.
        self.val_metrics, self.unscale = tuple(val_metrics), unscale
        self.epoch, self.rollbacks, self.stopped_early = 0, 0, False  # epoch: completed ones
        self.multilabel = multilabel  # several 0/1 targets: a row is right when all are
        # warned: every warning so far; pending: said since the last record (rollbacks)
        self.warned, self.pending_warnings = [], []
        self.best_params = net.params.copy() if early is not None else None
        self.slices = net.layer_slices()
        # What the network is (``inits``: '' where unknown): a warning suggests what it is not.
        self.design = Design.of(net, inits or [""] * net.n_layers)
        # Asked at each batch: True stops this trainer alone (STOP stops every one in the process).
        self.should_stop: Callable[[], bool] | None = None
        # The BLAS threads (``threads``: training.threads, else by size); the batches' path:
        # the fused C step (nn/fused.py) where it has this network, else the NumPy loop.
        self.threads: Threads = choose(net.sizes, self.batch_size, threads)
        self.plan = plan(net, loss, opt, self.batch_size, task, (X, y, self.w), fused, multilabel)

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

    @property
    def restores_best(self) -> bool:
        """Whether the parameters end as the best epoch's (early stopping with restore_best)."""
        return bool(self.early and self.restore_best and self.early.best_epoch)

    def run(self, progress: Progress | None = None) -> Iterator[dict]:
        """Train until ``epochs`` or early stopping; one record per epoch."""
        with limited(self.threads):
            while not self.done:
                record = self._epoch_or_rollback(progress)
                self.epoch += 1
                self._after_epoch(record)
                yield record
        if self.best_params is not None and self.restores_best:
            np.copyto(self.net.params, self.best_params)

    def _epoch_or_rollback(self, progress: Progress | None) -> dict:
        """The next epoch; after a divergence, back to the last good state and, with
        on_divergence: rollback, again at half the lr (at most max_rollbacks times)."""
        snap = self._snapshot()
        while True:
            try:
                return self._epoch(self.epoch + 1, progress)
            except DivergenceError as e:
                self._restore(snap)
                if self.on_divergence != "rollback":
                    raise
                if self.rollbacks >= self.max_rollbacks:
                    e.args = (
                        e.args[0].split("; the files keep")[0]
                        + f", after {self.rollbacks} rollback(s) with the lr halved each time, the "
                        "most training.max_rollbacks allows; the files keep the last good epoch. "
                        "Lower optimizer.lr or set training.clip_grad_norm",
                    )
                    raise
                self.rollbacks += 1
                self.schedule.scale *= 0.5
                self.warned.append(
                    f"rollback {self.rollbacks}: {e.args[0]}; retrying epoch "
                    f"{self.epoch + 1} from the last good state with the lr halved"
                )
                self.pending_warnings.append(self.warned[-1])
            except KeyboardInterrupt:
                self._restore(snap)  # back to the end of the last completed epoch, to be saved
                raise

    def _epoch(self, epoch: int, progress: Progress | None) -> dict:
        net, X = self.net, self.X
        t0 = time.perf_counter()
        n, bs = len(X), self.batch_size
        n_batches = math.ceil(n / bs)
        self.opt.lr = self.schedule.lr(epoch - 1)
        start = net.params.copy()
        order = self.rngs["shuffle"].permutation(n) if self.shuffle else np.arange(n)
        if self.plan.step is not None:
            sums = self._fused_epoch(order, epoch, progress)
        else:
            sums = self._numpy_epoch(order, epoch, progress)
        record = self._record(epoch, sums, n if self.w is None else float(self.w.sum()))
        record["time_s"] = time.perf_counter() - t0
        record |= layer_norms(sums.grad_sq, n_batches, net.params, start, self.slices)
        if self.clip_grad_norm is not None:
            record["clipped_batches"] = sums.clipped
        return record

    def _numpy_epoch(self, order: np.ndarray, epoch: int, progress: Progress | None) -> _EpochSums:
        """The epoch's batches through NumPy, one ``_step`` each, gathered into buffers."""
        X, y, bs = self.X, self.y, self.batch_size
        n_batches = math.ceil(len(X) / bs)
        xbuf = np.empty((bs, X.shape[1]), dtype=X.dtype)
        ybuf = np.empty((bs, *y.shape[1:]), dtype=y.dtype)
        wbuf = np.empty(bs, dtype=X.dtype) if self.w is not None else None
        sums = _EpochSums(y, self.net.n_layers)
        # Overflow on the way to a non-finite loss is caught in _step, with a clear message.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            for b in range(n_batches):
                self._check_stop()
                idx = order[b * bs : (b + 1) * bs]
                # mode="clip": the indices are a permutation, always in range; the default
                # "raise" gathers into a temporary and copies it to out, twice the work.
                xb = X.take(idx, axis=0, out=xbuf[: len(idx)], mode="clip")
                yb = y.take(idx, axis=0, out=ybuf[: len(idx)], mode="clip")
                wb = None if wbuf is None else self.w.take(idx, out=wbuf[: len(idx)], mode="clip")
                self._step(xb, yb, wb, sums, epoch, b)
                if progress is not None:
                    progress(b + 1, n_batches)
        return sums

    def _fused_epoch(self, order: np.ndarray, epoch: int, progress: Progress | None) -> _EpochSums:
        """The epoch's batches through the fused C step, a run of them per call."""
        n_batches = math.ceil(len(self.X) / self.batch_size)

        def between(done: int) -> None:
            self._check_stop()
            if progress is not None and done:
                progress(done, n_batches)

        clip = (self.clip_grad_norm, self.clip_grad_value)
        done = run_batches(
            self.plan, self.X, order, self.opt.lr, clip, self.rngs["dropout"], between
        )
        step = self.plan.step
        if done < n_batches:
            raise self._fused_diverged(order, epoch, done, step.last_loss)
        if progress is not None:
            progress(n_batches, n_batches)
        sums = _EpochSums(self.y, self.net.n_layers)
        sums.loss, sums.correct, ss_res, grad_sq, sums.clipped = step.sums()
        sums.ss_res, sums.grad_sq = ss_res.copy(), grad_sq.copy()
        return sums

    def _fused_diverged(self, order, epoch: int, b: int, value: float) -> DivergenceError:
        """The divergence error for batch b (0-based), its diagnosis by the NumPy path."""
        idx = order[b * self.batch_size : (b + 1) * self.batch_size]
        wb = None if self.w is None else self.w[idx]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            self.net.loss_and_grad(self.X[idx], self.y[idx], self.loss, w=wb)
            norms = [float(np.dot(self.net.grads[s], self.net.grads[s])) for s in self.slices]
        return self._diverged(value, norms, epoch, b)

    def _check_stop(self) -> None:
        if STOP.requested or (self.should_stop is not None and self.should_stop()):
            raise KeyboardInterrupt

    def _step(self, xb, yb, wb, sums: _EpochSums, epoch: int, b: int) -> None:
        """One batch: forward, backward (BP1-BP4), the divergence check, clipping, the update.
        ``wb``: the batch's row weights, or None."""
        net, m = self.net, len(xb)
        if net.has_dropout:
            net.sample_masks(m, self.rngs["dropout"])
        value = net.loss_and_grad(xb, yb, self.loss, train=True, w=wb)
        norms = [float(np.dot(net.grads[s], net.grads[s])) for s in self.slices]
        if not (math.isfinite(value) and math.isfinite(sum(norms))):
            raise self._diverged(value, norms, epoch, b)
        sums.grad_sq += norms
        sums.loss += value * (m if wb is None else float(wb.sum()))
        out = net.output()
        if self.task == "classification":
            sums.correct += count_correct(yb, out, self.multilabel)
        else:
            sums.ss_res += squared_errors(yb, out)
        if self.clip_grad_norm is not None:
            # torch.nn.utils.clip_grad_norm_: scale by max_norm / (total_norm + 1e-6) when < 1
            coef = self.clip_grad_norm / (math.sqrt(sum(norms)) + 1e-6)
            if coef < 1.0:
                net.grads *= coef
                sums.clipped += 1
        if self.clip_grad_value is not None:
            np.clip(net.grads, -self.clip_grad_value, self.clip_grad_value, out=net.grads)
        self.opt.step()

    def _diverged(self, value: float, norms: list[float], epoch: int, b: int) -> DivergenceError:
        net = self.net
        where = net.first_nonfinite_layer() or next(
            (
                f"layer {l} (its gradient norm overflows {net.dtype})"
                for l, g in enumerate(norms)
                if not math.isfinite(g)
            ),
            "the loss",
        )
        return DivergenceError(
            f"training diverged at epoch {epoch}, batch {b + 1}: the loss is {value:.4g}, "
            f"first non-finite at {where}; the files keep epoch {epoch - 1}. Lower "
            "optimizer.lr, set training.clip_grad_norm, or training.on_divergence: rollback"
        )

    def _record(self, epoch: int, sums: _EpochSums, total: float) -> dict:
        """The epoch's losses (weighted means, with row weights: ``total`` is their sum, else
        the row count) and accuracy or R^2, on the training batches and the validation split."""
        n = len(self.X)
        record: dict = {"epoch": epoch, "train_loss": sums.loss / total}
        metric = "accuracy" if self.task == "classification" else "r2"
        if self.task == "classification":
            record["train_accuracy"] = sums.correct / n
        else:
            record["train_r2"] = r2_from_sums(sums.ss_res, self.y)
        if self.val is not None:
            loss, value = evaluate(
                self.net, self.loss, *self.val, self.task, self.val_w, self.multilabel
            )
        else:
            loss, value = float("nan"), float("nan")
        record["val_loss"], record[f"val_{metric}"] = loss, value
        record["lr"] = self.opt.lr
        if self.val_metrics:
            record |= self._val_report()
        return record

    def _val_report(self) -> dict:
        """The validation metrics a monitor watches beyond loss and accuracy or R^2 (F1, ROC-AUC,
        MAE, ...: config.EXTRA_MONITORS), regression errors in the target's units."""
        if self.val is None:
            return {c: float("nan") for c in self.val_metrics}
        X, y = self.val
        _, out = self.net.evaluate(X, y, None)
        if self.multilabel:
            report = multilabel_report(y, out, list(range(self.net.sizes[-1])))
        elif self.task == "classification":
            k = max(2, self.net.sizes[-1])
            report = classification_report(y, out, list(range(k)))
        else:
            unscale = self.unscale or (lambda t: t)
            report = regression_report(unscale(y), unscale(out), [])
        return {c: report[c.removeprefix("val_")] for c in self.val_metrics}

    def _after_epoch(self, record: dict) -> None:
        epoch = record["epoch"]
        warnings, self.pending_warnings = self.pending_warnings, []
        warnings += gradient_warnings(
            record, self.design, self.warned, self.opt.lr, lambda: units_off(self.net, self.X)
        )
        if warnings:
            record["warnings"] = warnings
        self.schedule.observe(epoch, record.get(self.schedule_monitor, float("nan")))
        if self.early is not None:
            improved, stop = self.early.update(epoch, record.get(self.early.monitor, float("nan")))
            if improved:
                np.copyto(self.best_params, self.net.params)
            if stop:
                self.stopped_early = True
