"""Per-layer diagnostics of an epoch, and the vanishing/exploding gradient warnings.

For each layer l, metrics.csv gets ``grad_norm_l`` (the root mean square over the epoch's
batches of ||dC/dW^l, dC/db^l||, before clipping), ``weight_norm_l`` (||W^l, b^l|| after the
epoch) and ``update_ratio_l`` (how far the epoch moved them, relative to where they started).
A layer whose gradient norm is VANISHING_RATIO of the output layer's or less is "vanishing"
(the layers before it barely learn), EXPLODING_RATIO times or more "exploding"; each is said
once per run, with the remedies that fit the network. See docs/backpropagation.md.
"""

from __future__ import annotations

import numpy as np

# A layer's gradient norm this many times below the output layer's is "vanishing", this
# many times above it "exploding" (1e-3: three orders of magnitude).
VANISHING_RATIO = 1e-3
EXPLODING_RATIO = 1e3
SATURATING = ("sigmoid", "tanh", "softmax")


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


def gradient_warnings(record: dict, activations: list[str], warned: list[str]) -> list[str]:
    """Vanishing or exploding gradients in this epoch's record, each kind said once per run
    (``warned`` lists the kinds said already, and is appended to)."""
    L = len(activations)
    out_norm = record[f"grad_norm_{L - 1}"]
    if L < 2 or not out_norm > 0:
        return []
    found = []
    for l in range(L - 1):
        ratio = record[f"grad_norm_{l}"] / out_norm
        if ratio < VANISHING_RATIO and "vanishing" not in warned:
            found.append(_vanishing(l, ratio, record["epoch"], activations))
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


def _vanishing(l: int, ratio: float, epoch: int, activations: list[str]) -> str:
    acts = sorted({a for a in activations[:-1] if a in SATURATING})
    instead = " instead of " + "/".join(acts) if acts else ""
    return (
        f"vanishing gradients: layer {l}'s gradient norm is {ratio:.1e} of the output layer's "
        f"(epoch {epoch}); the layers before it barely learn. Remedies: relu with init: he"
        f"{instead}, residual: true on equal-width layers, fewer layers"
    )
