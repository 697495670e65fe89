"""The checkpoint: everything a resumed run needs to continue bit for bit (parameters,
optimizer state, best parameters, and one JSON string of epoch, RNG states, schedule and
early-stopping state). Arrays are checked against the network from their .npy headers
before any data is read, then the state's structure."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import WeightsError
from .files import json_default, write_npz
from .npz import NpzReader, npz_errors, read_json_member, require_file

MAX_COUNT = 2**53  # epochs, steps, rollbacks: far beyond any run, and exact as a float
_SCHEDULE_STATE = {"scale", "best", "num_bad_epochs", "cooldown_counter", "plateau_lr"}


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _str_list(v) -> bool:
    return isinstance(v, list) and all(isinstance(s, str) for s in v)


def save_checkpoint(path: Path, arrays: dict[str, np.ndarray], state: dict) -> None:
    """The training state: flat arrays plus one JSON string (epoch, RNG states, schedule, rows)."""
    write_npz(path, {**arrays, "state": np.array(json.dumps(state, default=json_default))})


def load_checkpoint(
    path: Path, net, opt, need_best: bool, rng_names: list[str]
) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, state) of a checkpoint, each array checked against the network and optimizer
    from its .npy header before any data is read, then the state's structure."""
    path = Path(path)
    expected = {"params": net.params.shape, **{f"opt_{k}": v.shape for k, v in opt.state.items()}}
    if need_best:
        expected["best_params"] = net.params.shape
    require_file(path, "checkpoint")
    with npz_errors(path, "checkpoint"), NpzReader(path, "checkpoint") as ar:
        for name, shape in expected.items():
            if name not in ar.headers:
                raise WeightsError(
                    f"{path}: array {name!r} is missing; the checkpoint is not from this config"
                )
            got, dtype = ar.shape(name), ar.dtype(name)
            if got != shape or dtype != net.dtype:
                raise WeightsError(
                    f"{path}: {name} has shape {got} {dtype}, this config needs {shape} {net.dtype}"
                )
        if "state" not in ar.headers:
            raise WeightsError(f"{path}: no training state; not a backprop checkpoint")
        state = read_json_member(path, ar, "state", "training state")
        arrays = {name: ar.read(name) for name in expected}
    for name, a in arrays.items():
        if not np.isfinite(a).all():
            raise WeightsError(f"{path}: {name} holds NaN or Inf values")
    _check_state(state, path, rng_names)
    return arrays, state


def _check_state(state, path: Path, rng_names: list[str]) -> None:
    """The training state's fields, as Trainer.load_state_dict and the summary use them."""

    def bad(key: str, expected: str) -> WeightsError:
        return WeightsError(
            f"{path}: training state {key}: expected {expected}; the checkpoint is damaged"
        )

    if not isinstance(state, dict):
        raise WeightsError(
            f"{path}: the training state is not a mapping; the checkpoint is damaged"
        )
    for key in ("epoch", "opt_t", "rollbacks"):
        if not _int(state.get(key)) or not 0 <= state[key] <= MAX_COUNT:
            raise bad(key, f"an integer from 0 to {MAX_COUNT}")
    if not _number(state.get("lr")) or state["lr"] < 0:
        raise bad("lr", "a number >= 0")
    if not isinstance(state.get("stopped_early"), bool):
        raise bad("stopped_early", "true or false")
    if not _str_list(state.get("warned")):
        raise bad("warned", "a list of strings")
    sched = state.get("schedule")
    if (
        not isinstance(sched, dict)
        or not set(sched) <= _SCHEDULE_STATE
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in sched.values())
    ):
        raise bad("schedule", "numbers " + ", ".join(sorted(_SCHEDULE_STATE)))
    early = state.get("early")
    if early is not None and not (
        isinstance(early, dict)
        and isinstance(early.get("best"), int | float)
        and _int(early.get("best_epoch"))
        and 0 <= early["best_epoch"] <= state["epoch"]
        and _int(early.get("wait"))
        and 0 <= early["wait"] <= MAX_COUNT
    ):
        raise bad("early", "best, best_epoch and wait")
    rngs = state.get("rngs")
    names = sorted(rng_names)
    if not isinstance(rngs, dict) or sorted(rngs) != names:
        raise bad("rngs", "the generator states of " + ", ".join(names))
    for name, rng_state in rngs.items():
        try:
            np.random.PCG64().state = rng_state
        except (TypeError, ValueError, KeyError, OverflowError):
            raise bad(f"rngs.{name}", "a PCG64 generator state") from None
    warnings = state.get("warnings", {})  # epoch -> that epoch's warnings
    if not isinstance(warnings, dict) or not all(_str_list(w) for w in warnings.values()):
        raise bad("warnings", "a mapping of epoch to a list of strings")
    rows = state.get("rows", [])  # written by earlier versions
    if not isinstance(rows, list) or not all(
        isinstance(r, dict)
        and all(isinstance(r.get(k), int | float) for k in ("epoch", "train_loss", "val_loss"))
        for r in rows
    ):
        raise bad("rows", "one mapping per epoch with epoch, train_loss and val_loss")
