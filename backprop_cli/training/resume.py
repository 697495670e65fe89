"""Continuing a run from its directory: the config must be the run's own (only
training.epochs may change), the checkpoint must fit the network, and metrics.csv must list
the checkpoint's epochs, which become the run's rows again."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pydantic import ValidationError

from ..config import Config, key_path, read_config_file
from ..errors import ConfigError, WeightsError
from ..store import checkpoint
from ..store.files import remove_stale_temp_files
from ..store.rundir import CHECKPOINT, CONFIG, METRICS, RunFileError, read_metrics

# Keys a resume may change: only how long to train (and where the files go).
RESUMABLE_CHANGES = {("training", "epochs"), ("training", "threads")}


def config_differences(old, new, path=()) -> list[tuple[str, object, object]]:
    """(key path, old, new) for every leaf that differs, except the keys a resume may change."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in dict.fromkeys([*old, *new]):
            out += config_differences(old.get(k), new.get(k), (*path, k))
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
            for d in config_differences(o, n, (*path, i))
        ]
    if old != new and path not in RESUMABLE_CHANGES and path[:1] != ("output",):
        return [(key_path(path), old, new)]
    return []


def model_digest(cfg: Config | dict) -> str:
    """What a checkpoint's parameters depend on: the model, the loss, the data and the seed
    (of a Config, or of a resolved config as a run's config.yaml holds it)."""
    r = cfg.resolved() if isinstance(cfg, Config) else cfg
    key = {k: r.get(k) for k in ("seed", "data", "model", "loss")}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def as_resolved(raw: dict) -> dict:
    """A run's config.yaml with the keys added since it was written at their defaults (what
    it meant), or as it is where it no longer validates."""
    try:
        return Config.model_validate(raw).resolved()
    except ValidationError:
        return raw


def resume(run, out: str) -> None:
    """Load RUN_DIR's checkpoint into ``run`` (a training.run.Run of the same config)."""
    d = Path(out)
    ckpt, cfg_file = d / CHECKPOINT, d / CONFIG
    if not os.path.isfile(ckpt) or not os.path.isfile(cfg_file):  # False on any OSError
        raise WeightsError(f"{d}: no checkpoint.npz and config.yaml to resume from")
    old = read_config_file(cfg_file)  # bounded, strict YAML; every problem one ConfigError
    diffs = config_differences(as_resolved(old), run.cfg.resolved())
    if diffs:
        key, was, now = diffs[0]
        raise ConfigError(
            f"{run.source}: {key}: cannot resume {d} with a changed config "
            f"(the run has {was!r}, the config {now!r}); only training.epochs and training.threads may change"
        )
    tr = run.trainer
    arrays, state = checkpoint.load_checkpoint(
        ckpt, run.net, run.opt, tr.best_params is not None, list(run.rngs)
    )
    # A checkpoint written before a key was added has the digest of its config.yaml as it is.
    if state.get("config_sha256_model") not in (None, model_digest(run.cfg), model_digest(old)):
        raise ConfigError(
            f"{ckpt}: the checkpoint belongs to another model or data; start a new run"
        )
    tr.load_state_dict(arrays, state)
    remove_stale_temp_files(d)  # a kill -9 in the middle of a write leaves one
    run.rows = read_rows(d / METRICS, state["epoch"], state.get("warnings", {}))
    run.dir = d
    run.resumed_from = state["epoch"]


def read_rows(path: Path, epochs: int, warnings: dict) -> list[dict]:
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
