"""Per-layer diagnostics of an epoch, and the vanishing/exploding gradient warnings.

For each layer l, metrics.csv gets ``grad_norm_l`` (the root mean square over the epoch's
batches of ||dC/dW^l, dC/db^l||, before clipping), ``weight_norm_l`` (||W^l, b^l|| after the
epoch) and ``update_ratio_l`` (how far the epoch moved them, relative to where they started).
A layer whose gradient norm is VANISHING_RATIO of the output layer's or less is "vanishing"
(the layers before it barely learn), EXPLODING_RATIO times or more "exploding"; each is said
once per run, with the remedies that fit the network: saturating units (sigmoid, tanh) call
for relu-family units, He init, residual connections; a relu-family network whose units sit
at z <= 0 for every training row (dead relu units, after too large a step) calls for a
lower lr and units that keep a slope there. Nothing the network already has is suggested.
See docs/backpropagation.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..nn.network import Network

# A layer's gradient norm this many times below the output layer's is "vanishing", this
# many times above it "exploding" (1e-3: three orders of magnitude).
VANISHING_RATIO = 1e-3
EXPLODING_RATIO = 1e3
SATURATING = ("sigmoid", "tanh", "softmax")
# Units that are off for z <= 0 (relu: output 0 and no gradient at all; the others a small
# slope there): a unit at z <= 0 for every training row passes (next to) no gradient back.
DYING = ("relu", "leaky_relu", "elu", "gelu", "softplus")
# What a relu network whose units died can switch to: units with a slope for z < 0.
KEEP_A_SLOPE = ("leaky_relu", "elu")
DEAD_ROWS = 4096  # rows per forward pass when the units that are off are counted
DEAD_SHARE = 0.1  # this share of the units off, and they are taken for the cause


@dataclass(frozen=True)
class Design:
    """What the network already is, so that a warning suggests only what it is not: each
    layer's activation (the output layer last), init and residual flag, and its widths
    (sizes: inputs first)."""

    activations: list[str]
    inits: list[str]
    residual: list[bool]
    sizes: list[int]

    @staticmethod
    def of(net: Network, inits: list[str]) -> Design:
        return Design(list(net.activation_names), list(inits), list(net.residual), list(net.sizes))

    def could_be_residual(self) -> list[int]:
        """The hidden layers a residual connection fits (units == input width) that lack one."""
        hidden = range(len(self.activations) - 1)
        return [l for l in hidden if self.sizes[l] == self.sizes[l + 1] and not self.residual[l]]


def units_off(net: Network, X: np.ndarray) -> tuple[int, int]:
    """(units at z <= 0 for every row of X, units) over the hidden layers of DYING
    activations: a dead relu unit outputs 0 and gets no gradient whatever the input. One
    forward pass over X, in chunks; dropout off."""
    layers = [l for l, a in enumerate(net.activation_names[:-1]) if a in DYING]
    alive = {l: np.zeros(net.sizes[l + 1], dtype=bool) for l in layers}
    for start in range(0, len(X), DEAD_ROWS):
        net.forward(np.ascontiguousarray(X[start : start + DEAD_ROWS], dtype=net.dtype))
        z = net.last_pass()[0]
        for l in layers:
            alive[l] |= (z[l] > 0).any(axis=0)
    return sum(int((~a).sum()) for a in alive.values()), sum(a.size for a in alive.values())


def layer_norms(
    grad_sq: np.ndarray, n_batches: int, params: np.ndarray, start: np.ndarray, slices
) -> dict[str, float]:
    """The per-layer columns of an epoch's record. ``grad_sq`` holds each layer's squared
    gradient norm summed over the epoch's batches; ``start`` the parameters before the epoch."""
    record: dict[str, float] = {}
    grad_norms = np.sqrt(grad_sq / n_batches)
    for l in range(len(slices)):
        record[f"grad_norm_{l}"] = float(grad_norms[l])
    for l, s in enumerate(slices):
        record[f"weight_norm_{l}"] = float(np.linalg.norm(params[s]))
    for l, s in enumerate(slices):
        before = float(np.linalg.norm(start[s]))
        moved = float(np.linalg.norm(params[s] - start[s]))
        record[f"update_ratio_{l}"] = moved / before if before > 0 else float("nan")
    return record


def gradient_warnings(
    record: dict,
    design: Design,
    warned: list[str],
    lr: float,
    units_off: Callable[[], tuple[int, int]] | None = None,
) -> list[str]:
    """Vanishing or exploding gradients in this epoch's record, each kind said once per run
    (``warned`` lists the kinds said already, and is appended to). ``lr``: the optimizer's now;
    ``units_off``: counts the units at z <= 0 for every training row (``units_off`` above),
    asked only when a relu-family network's gradients vanish."""
    L = len(design.activations)
    out_norm = record[f"grad_norm_{L - 1}"]
    if L < 2 or not out_norm > 0:
        return []
    found = []
    for l in range(L - 1):
        ratio = record[f"grad_norm_{l}"] / out_norm
        if ratio < VANISHING_RATIO and "vanishing" not in warned:
            off = None
            if units_off is not None and not _saturating(design):
                off = units_off()
            found.append(vanishing(l, ratio, record["epoch"], design, lr, off))
            warned.append("vanishing")
        if ratio > EXPLODING_RATIO and "exploding" not in warned:
            found.append(
                f"exploding gradients: layer {l}'s gradient norm is {ratio:.1e} times the output "
                f"layer's (epoch {record['epoch']}). Remedies: a lower optimizer.lr, "
                "training.clip_grad_norm, a smaller init (init: xavier, or a smaller init_scale), "
                "weight_decay"
            )
            warned.append("exploding")
    return found


def _saturating(design: Design) -> list[str]:
    return sorted({a for a in design.activations[:-1] if a in SATURATING})


def vanishing(
    l: int, ratio: float, epoch: int, design: Design, lr: float, off: tuple[int, int] | None
) -> str:
    """The warning for layer ``l``'s vanishing gradient, with the cause and the remedies that
    fit ``design``; ``off``: (units at z <= 0 for every training row, units), where counted."""
    head = (
        f"vanishing gradients: layer {l}'s gradient norm is {ratio:.1e} of the output layer's "
        f"(epoch {epoch}); the layers before it barely learn"
    )
    hidden = design.activations[:-1]
    saturating = _saturating(design)
    structure = []
    if any(i != "he" for i in design.inits[:-1]):
        structure.append("init: he")
    if design.could_be_residual():
        some = "the other " if any(design.residual) else ""
        structure.append(f"residual: true on {some}equal-width layers")
    if len(hidden) > 1:
        structure.append("fewer layers")
    if saturating:
        units = "/".join(saturating)
        cause = f"{units} units saturate, and each one shrinks the gradient on its way back"
        remedies = [f"relu (or leaky_relu, elu) instead of {units}", *structure]
        return f"{head}: {cause}. Remedies: {', '.join(remedies)}"
    slope = [a for a in KEEP_A_SLOPE if a not in hidden]
    if off is not None and off[0] >= DEAD_SHARE * off[1]:
        dead, total = off
        if set(hidden) == {"relu"}:
            what = f"{dead} of the {total} relu units ({dead / total:.0%}) output 0 for every "
            what += "training row: dead units, which pass no gradient back"
        else:
            what = f"{dead} of the {total} hidden units ({dead / total:.0%}) are at z <= 0 for "
            what += "every training row, where they pass little or no gradient back"
        cause = f"{what}; the usual cause is too large a step (optimizer.lr is {lr:g})"
        remedies = ["a lower optimizer.lr"]
        if "relu" in hidden and slope:
            remedies.append(f"{' or '.join(slope)} instead of relu (a slope for z < 0)")
        return f"{head}: {cause}. Remedies: {', '.join(remedies + structure)}"
    if "relu" in hidden and off is None:
        # Not counted: the usual cause in a relu network is still units that died.
        remedies = ["a lower optimizer.lr (relu units may have died)"]
        if slope:
            remedies.append(f"{' or '.join(slope)} instead of relu")
        return f"{head}. Remedies: {', '.join(remedies + structure)}"
    remedies = structure or ["a lower optimizer.lr", "a different seed"]
    if off is not None:
        head += f" ({off[0]} of the {off[1]} hidden units are at z <= 0 for every training row)"
    return f"{head}. Remedies: {', '.join(remedies)}"
