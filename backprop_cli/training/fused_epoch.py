"""An epoch's batches through the fused C step (nn/fused.py) instead of the NumPy loop.

The trainer asks ``plan`` once: the fused step where the network, loss, optimizer and data
are ones it has and $BACKPROP_FUSED is not 0, else None and why. ``run_batches`` then trains
an epoch's batches a few calls at a time (each call at most about ``CALL_FLOPS`` of work, so
that Ctrl-C, a sweep's stop and the progress display are seen a few times a second), with the
dropout draws for each call taken from the same seeded stream, in the same order, as the
NumPy path's ``Network.sample_masks``: the masks are the same ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..nn.fused import FusedStep, why_not
from ..nn.losses import Loss
from ..nn.network import Network
from ..nn.optimizers import Optimizer

ENV = "BACKPROP_FUSED"
# Work per call (multiply-adds forward and backward): about 20 ms on one core.
CALL_FLOPS = 2e8


@dataclass
class Plan:
    """The path an epoch's batches take: ``step`` (None: NumPy's) and why."""

    step: FusedStep | None
    why: str
    y: np.ndarray | None = None  # the targets as the C step reads them
    w: np.ndarray | None = None

    @property
    def path(self) -> str:
        return "fused" if self.step is not None else "numpy"


def plan(
    net: Network,
    loss: Loss,
    opt: Optimizer,
    batch_size: int,
    task: str,
    data: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    fused: bool | None = None,
    multilabel: bool = False,
) -> Plan:
    """The fused step for this trainer's ``data`` (X, y, row weights or None), or why the
    NumPy path trains it. ``fused`` False (or $BACKPROP_FUSED=0) asks for the NumPy path."""
    if fused is False or (fused is None and os.environ.get(ENV, "").strip() == "0"):
        return Plan(None, f"{ENV}=0" if fused is None else "asked for the NumPy path")
    X, y, w = data
    why = why_not(net, loss, opt, batch_size)
    if not why and (X.dtype != net.dtype or not X.flags.c_contiguous):
        why = f"the rows are {X.dtype}{'' if X.flags.c_contiguous else ', not contiguous'}"
    if why:
        return Plan(None, why)
    labels = loss.name == "cross_entropy"
    yc = np.ascontiguousarray(y, dtype=np.int64 if labels else net.dtype)
    if not labels and yc.size != len(y) * net.sizes[-1]:
        return Plan(None, f"targets of shape {y.shape} for {net.sizes[-1]} outputs")
    wc = None if w is None else np.ascontiguousarray(w, dtype=net.dtype)
    step = FusedStep(net, loss, opt, batch_size, task, multilabel)
    return Plan(step, "small layers: one compiled call per run of mini-batches", yc, wc)


def batches_per_call(sizes: list[int], batch_size: int) -> int:
    per_row = 6 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
    return max(1, int(CALL_FLOPS // (per_row * batch_size)))


def run_batches(
    p: Plan,
    X: np.ndarray,
    order: np.ndarray,
    lr: float,
    clip: tuple[float | None, float | None],
    dropout_rng: np.random.Generator,
    between: Callable[[int], None],
) -> int:
    """Train the epoch whose rows are in ``order``; ``between(batches done)`` is called
    before each call (it may raise to stop). Returns the batches done: all of them, or those
    before the first whose loss or gradient was not finite (which is not applied)."""
    step, n, bs = p.step, len(X), p.step.batch
    n_batches = -(-n // bs)
    per_call = batches_per_call(step.net.sizes, bs)
    units = step.dropout_units()
    step.load()
    step.start_epoch(lr, *clip)
    b = 0
    try:
        while b < n_batches:
            between(b)
            b1 = min(n_batches, b + per_call)
            uniforms = None
            if units:
                rows = min(n, b1 * bs) - b * bs
                uniforms = dropout_rng.random(rows * units, dtype=X.dtype)
            done = step.run(X, p.y, p.w, order, b, b1, uniforms)
            b += done
            if b < b1:
                break
        return b
    finally:
        step.store()
