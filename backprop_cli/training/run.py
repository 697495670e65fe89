"""A training run that keeps its files: everything checked before the first file is written,
then metrics.csv, weights.npz and checkpoint.npz rewritten (atomically) as epochs complete,
and summary.json at the end or on any stop."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import yaml

from ..config import Config
from ..config.models import EXTRA_MONITORS
from ..errors import ConfigError, DivergenceError, Interrupted, OutputError, WeightsError
from ..nn import fast
from ..nn.metrics import classification_report, multilabel_report, regression_report
from ..store import checkpoint, weights
from ..store.files import RUN_LOCK, DirLock, json_safe, lock_run_dir, new_run_dir, write_text
from ..store.rundir import CHECKPOINT, CONFIG, WEIGHTS, MetricsLog, clear_unstarted, write_summary
from ..version import __version__
from . import resume as resuming
from .build import (
    Setup,
    build_optimizer,
    build_schedule,
    load_prepared,
    row_weights,
    setup,
)
from .stop import STOP
from .threads import can_limit
from .trainer import EarlyStopping, Progress, Trainer

SUMMARY_COLUMNS = ("epoch", "train_loss", "val_loss", "lr", "time_s")


def weights_spec(s: Setup, net, epoch: int) -> weights.WeightsSpec:
    """The spec stored beside the parameters: architecture, loss, data, classes, seed."""
    cfg, prep = s.cfg, s.prep
    return weights.WeightsSpec(
        name=cfg.name,
        sizes=net.sizes,
        activations=net.activation_names,
        residual=net.residual,
        loss=cfg.loss,
        dtype=cfg.model.dtype,
        task=prep.task,
        classes=prep.classes,
        multilabel=prep.multilabel,
        feature_names=prep.feature_names,
        columns=prep.columns,
        y_mean=None if prep.y_mean is None else prep.y_mean.tolist(),
        y_scale=None if prep.y_scale is None else prep.y_scale.tolist(),
        target_names=prep.dataset.target_names,
        data=weights.SpecData(**cfg.data.model_dump(), source=prep.dataset.source),
        seed=cfg.seed,
        epoch=epoch,
        backprop_version=__version__,
    )


def versions() -> dict[str, str]:
    """The versions a run records (summary.json, and its tags where tracked)."""
    return {"backprop": __version__, "numpy": np.__version__, "python": platform.python_version()}


def data_name(cfg: Config) -> str:
    """The config's data as a status line names it: the built-in's name, or the file's."""
    return cfg.data.dataset or Path(str(cfg.data.path)).name


def watched_extras(cfg: Config) -> tuple[str, ...]:
    """The extra validation metrics (config.EXTRA_MONITORS) a monitor of the config watches."""
    t = cfg.training
    watched = [t.early_stopping.monitor] if t.early_stopping else []
    if t.lr_schedule is not None and t.lr_schedule.name == "reduce_on_plateau":
        watched.append(t.lr_schedule.monitor)
    return tuple(dict.fromkeys(c for c in watched if c in EXTRA_MONITORS[cfg.task]))


def make_trainer(s: Setup, opt) -> Trainer:
    cfg, prep = s.cfg, s.prep
    t = cfg.training
    es = t.early_stopping
    plateau = t.lr_schedule is not None and t.lr_schedule.name == "reduce_on_plateau"
    weights = row_weights(cfg, prep, s.source)
    return Trainer(
        s.net,
        opt,
        s.loss,
        prep.X["train"],
        prep.y["train"],
        w=weights["train"],
        task=prep.task,
        epochs=t.epochs,
        batch_size=cfg.batch_size,
        shuffle=t.shuffle,
        rngs=s.rngs,
        val=(prep.X["val"], prep.y["val"]),
        val_w=weights["val"],
        schedule=build_schedule(cfg),
        schedule_monitor=t.lr_schedule.monitor if plateau else "val_loss",
        early=EarlyStopping(es.monitor, es.resolved_mode, es.patience, es.min_delta)
        if es
        else None,
        restore_best=es.restore_best if es else False,
        clip_grad_norm=t.clip_grad_norm,
        clip_grad_value=t.clip_grad_value,
        on_divergence=t.on_divergence,
        max_rollbacks=t.max_rollbacks,
        val_metrics=watched_extras(cfg),
        unscale=prep.unscale,
        inits=[layer.init or cfg.model.init for layer in cfg.model.layers],
        threads=t.threads,
        multilabel=prep.multilabel,
    )


class Run:
    """One training run: everything checked before the first file, then files every epoch.

    ``out`` is the run directory (default: output.dir, else runs/NAME; a new run makes it,
    or DIR-2, DIR-3, ... when it exists); ``in_place``: ``out`` itself, made if missing, with
    the files of a start that saved no epoch cleared (a sweep's trial); ``resume`` continues
    the run in it from its checkpoint; ``init_from`` starts from a weights file's parameters.
    The run holds DIR/.lock from ``start`` (or the resume) until ``close``: no second run
    writes beside it. ``on_stage`` is told what the construction is doing as it goes
    (loading the data, compiling the kernels, ...), for a status line.
    """

    def __init__(
        self,
        cfg: Config,
        source: str,
        out: str | None = None,
        init_from: str | None = None,
        resume: bool = False,
        in_place: bool = False,
        on_stage: Callable[[str], None] | None = None,
    ):
        say = on_stage or (lambda _stage: None)
        if resume and init_from:
            raise ConfigError("--resume and --weights: give one or the other")
        self.cfg, self.source, self.init_from, self.in_place = cfg, source, init_from, in_place
        self._lock: DirLock | None = None
        # A resumed run continues in the configured directory itself, never DIR-2.
        self.out = out or (cfg.output.dir or f"runs/{cfg.name}" if resume else None)
        self.dir: Path | None = None
        self.rows: list[dict] = []
        self.stop_reason = ""
        self.summary_data: dict | None = None
        self.resumed_from: int | None = None  # the checkpoint's epoch, when resumed
        self._saved_at, self._saved_epoch = -math.inf, 0
        self._metrics = MetricsLog()
        self.t0 = time.perf_counter()
        say(f"loading the data ({data_name(cfg)})")
        prep = load_prepared(cfg, source)
        say("building the network")
        self.setup = setup(cfg, source, prep)
        self.prep, self.net, self.loss, self.rngs = (
            self.setup.prep,
            self.setup.net,
            self.setup.loss,
            self.setup.rngs,
        )
        if init_from:
            say(f"loading {init_from}")
            self._load_init(init_from)
        if fast.will_build():
            say("compiling the C kernels (once; they are cached)")
        self.opt = build_optimizer(cfg, self.net)
        self.trainer = make_trainer(self.setup, self.opt)
        if resume:
            say(f"reading the checkpoint in {self.out}")
            self._lock = lock_run_dir(Path(self.out)) if os.path.isdir(self.out) else None
            try:
                resuming.resume(self, self.out)
            except BaseException:
                self.close()
                raise

    def _load_init(self, path: str) -> None:
        spec, arrays = weights.load_weights(path)
        net = self.net
        if not weights.same_architecture(spec, net):
            file_arch = weights.describe_architecture(spec.sizes, spec.activations, spec.residual)
            own = weights.describe_architecture(net.sizes, net.activation_names, net.residual)
            raise WeightsError(
                f"{path}: --weights needs the same architecture: the file has {file_arch}, "
                f"the config {own}"
            )
        weights.load_parameters(net, arrays)

    def nothing_to_resume(self) -> str | None:
        """Why a resumed run has nothing left to train, or None."""
        tr = self.trainer
        if self.resumed_from is None or not tr.done:
            return None
        if tr.stopped_early:
            why = f"it stopped early at epoch {tr.epoch} (training.early_stopping)"
        else:
            why = (
                f"it has trained {tr.epoch} of {self.cfg.training.epochs} epoch(s); raise "
                "training.epochs (--set training.epochs=N) to train longer"
            )
        return f"{self.out}: nothing to resume: {why}"

    # ------------------------------------------------------------------ files

    def start(self) -> Path:
        """Create the run directory and write the resolved config (a resumed run keeps its own)."""
        if self.dir is not None:
            return self.dir
        if self.in_place:
            d = Path(self.out)
            d.mkdir(parents=True, exist_ok=True)
            self._lock = lock_run_dir(d)
            clear_unstarted(d)
        else:
            d = new_run_dir(self.out or self.cfg.output.dir or f"runs/{self.cfg.name}")
            self._lock = lock_run_dir(d)
        self.dir = d
        try:
            write_text(self.dir / CONFIG, yaml.safe_dump(self.cfg.resolved(), sort_keys=False))
        except OutputError:
            self.close()
            if not self.in_place:  # leave no trace of a run that never started
                with contextlib.suppress(OSError):
                    (self.dir / RUN_LOCK).unlink()
                    self.dir.rmdir()
            raise
        return self.dir

    def close(self) -> None:
        """Release the run directory (the end of training does; so does the process's end)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def spec(self, epoch: int) -> weights.WeightsSpec:
        return weights_spec(self.setup, self.net, epoch)

    def save(self) -> None:
        """metrics.csv, weights.npz, then checkpoint.npz, each atomic.

        metrics.csv comes first, so it always has at least the checkpoint's epochs: a resume
        reads it back up to the checkpoint's epoch, whatever moment a kill came.
        """
        assert self.dir is not None
        tr = self.trainer
        self._metrics.write(self.dir, self.rows)
        weights.save_weights(
            self.dir / WEIGHTS, self.net, self.spec(tr.epoch), self.prep.mean, self.prep.scale
        )
        arrays, state = tr.state_dict()
        state |= {
            "config_sha256_model": resuming.model_digest(self.cfg),
            "warnings": {r["epoch"]: r["warnings"] for r in self.rows if r.get("warnings")},
        }
        checkpoint.save_checkpoint(self.dir / CHECKPOINT, arrays, state)
        self._saved_at, self._saved_epoch = time.monotonic(), tr.epoch

    # ------------------------------------------------------------------ training

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
                interval = self.cfg.output.save_interval_s
                if self.trainer.done or time.monotonic() - self._saved_at >= interval:
                    self.save()
                STOP.check()
                if should_stop is not None and should_stop():
                    raise KeyboardInterrupt
                yield record
            self._finish()
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
            self.close()

    def _finish(self) -> None:
        tr = self.trainer
        self.stop_reason = "early_stopping" if tr.stopped_early else "completed"
        if tr.restores_best:
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

    def interruption(self, config: str | Path | list, overrides: list[str]) -> Interrupted:
        """The error a stopped run ends with: what is kept, and the command that resumes it."""
        done = len(self.rows)
        kept = (
            f"epochs 1-{done} are saved in {self.dir}"
            if done
            else f"no epoch had completed in {self.dir}"
        )
        files = " ".join(
            shlex.quote(str(c)) for c in (config if isinstance(config, list) else [config])
        )
        again = f"backprop train {files} --out {shlex.quote(str(self.dir))} --resume"
        again += "".join(f" --set {shlex.quote(s)}" for s in overrides)
        return Interrupted(f"interrupted during epoch {done + 1}; {kept}; resume with: {again}")

    # ------------------------------------------------------------------ summary

    def summary(self) -> dict:
        """summary.json's content: how it stopped, the last and best epochs, the test split."""
        task = self.prep.task
        metric = "accuracy" if task == "classification" else "r2"
        keep = (*SUMMARY_COLUMNS, f"train_{metric}", f"val_{metric}")
        rows = [{k: v for k, v in r.items() if k in keep} for r in self.rows]
        best_by, best = self._best(rows)
        tr = self.trainer
        return {
            "name": self.cfg.name,
            "run_dir": str(self.dir),
            "task": task,
            "stop_reason": self.stop_reason,
            "epochs": len(rows),
            "time_s": time.perf_counter() - self.t0,
            "final": rows[-1] if rows else {},
            "best": best,
            "best_by": best_by,
            "restored_best": tr.restores_best
            and self.stop_reason in ("completed", "early_stopping"),
            "test": self._test_report(),
            # train_loss and val_loss (final, best) are on the standardized target; test is not
            "target_standardized": self.prep.y_mean is not None,
            "warnings": [w for r in self.rows for w in r.get("warnings", [])] + tr.pending_warnings,
            "rollbacks": tr.rollbacks,
            "seed": self.cfg.seed,
            "config_sha256": self.cfg.digest(),
            "parameters": int(self.net.params.size),
            "versions": versions(),
            # "compiled": the optimizer's update ran as nn/_kernels.c; "numpy": as NumPy (same bits)
            "optimizer_update": "compiled" if self.opt.compiled else "numpy",
            # the mini-batches' path (training/fused_epoch.py): "fused" (one compiled call per
            # run of batches) or "numpy", and why
            "training_step": {"path": tr.plan.path, "why": tr.plan.why},
            # the BLAS threads while it trained (training/threads.py): the count asked for
            # (null: the BLAS's own), why, and whether it was set (threadpoolctl installed)
            "blas_threads": {
                "count": tr.threads.count,
                "why": tr.threads.why,
                "set": tr.threads.count is not None and can_limit(),
            },
        }

    def _test_report(self) -> dict:
        """The test split: the loss and every metric (nn/metrics.py), regression in the
        target's units (the loss too, where the target was standardized for training)."""
        prep, X, y = self.prep, self.prep.X["test"], self.prep.y["test"]
        metric = "accuracy" if prep.task == "classification" else "r2"
        if len(X) == 0:
            return {"loss": float("nan"), metric: float("nan"), "rows": 0}
        loss, out = self.net.evaluate(X, y, self.loss)
        if prep.multilabel:
            return {"loss": loss, "rows": len(X), **multilabel_report(y, out, prep.classes)}
        if prep.task == "classification":
            return {"loss": loss, "rows": len(X), **classification_report(y, out, prep.classes)}
        pred, truth = prep.unscale(out), prep.unscale(y)
        if prep.y_mean is not None:
            loss = self.loss.value(None, pred, truth)
        names = prep.dataset.target_names or [f"y{j}" for j in range(truth.shape[1])]
        return {"loss": loss, "rows": len(X), **regression_report(truth, pred, names)}

    def _best(self, rows: list[dict]) -> tuple[str, dict]:
        """(the column the best epoch is chosen by, its row)."""
        early = self.trainer.early
        if early is not None and early.best_epoch:
            return early.monitor, rows[early.best_epoch - 1]
        have_val = bool(rows) and not math.isnan(rows[-1].get("val_loss", float("nan")))
        best_by = "val_loss" if have_val else "train_loss"
        return best_by, (min(rows, key=lambda r: r[best_by]) if rows else {})

    def write_summary(self) -> dict:
        s = self.summary()
        self.summary_data = write_summary(self.dir, s) if self.dir is not None else json_safe(s)
        return self.summary_data
