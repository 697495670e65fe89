"""Gradient checking: backpropagation against central differences, in float64.

For each parameter theta_i, dC/dtheta_i ~ (C(theta + eps e_i) - C(theta - eps e_i)) / (2 eps),
with an error of O(eps^2). The error of a tensor is

    max_i |analytic_i - numeric_i| / max(max_i |analytic_i|, max_i |numeric_i|)

(the max-norm relative error), which neither explodes on entries that are tiny nor hides a
wrong entry among large ones. Each difference is first reduced by what rounding alone puts
into the central difference, NOISE_ULPS * eps_64 * (|C+| + |C-|) / (2 eps) (about 1e-10 for
a cost near 1 and eps 1e-6): a gradient that is exactly 0 (an output bias on a symmetric
batch) is measured as +-1e-10 by the difference and is not a failure; a wrong gradient
stands far above that floor. An entry whose +eps and -eps evaluations fall on the two
sides of a kink (relu at 0, mae at a = y) has no derivative there to compare with: it is
counted as a kink and left out of the error, not reported as a failure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .losses import Loss
from .network import Network

NOISE_ULPS = 4  # rounding in C(theta +- eps), in units of float64's epsilon times |C|


@dataclass
class TensorCheck:
    name: str
    shape: tuple[int, ...]
    rel_error: float
    max_abs_error: float
    kinks: int
    checked: int
    noise: float = 0.0  # the largest rounding bound of the tensor's numerical derivatives

    def passed(self, tol: float) -> bool:
        return self.rel_error <= tol


def _kink_signature(net: Network, loss: Loss, y: np.ndarray) -> tuple:
    """Which side of every kink each pre-activation (and loss residual) sits on."""
    buf = net._buffers[net._n]
    sides = []
    for act, z in zip(net.acts, buf.z, strict=True):
        for k in act.kinks:
            sides.append((z > k).tobytes())
    for k in loss.kinks:
        sides.append((net.output() - y > k).tobytes())
    return tuple(sides)


def gradcheck(
    net: Network,
    X: np.ndarray,
    y: np.ndarray,
    loss: Loss,
    eps: float = 1e-6,
    max_per_tensor: int | None = None,
    rng: np.random.Generator | None = None,
    w: np.ndarray | None = None,
) -> list[TensorCheck]:
    """Compare backprop's gradients of ``net`` on (X, y) with central differences.

    ``net`` must be float64 (the numerical derivative is meaningless in float32).
    A network with dropout is checked with one fixed set of masks, drawn from ``rng``.
    ``max_per_tensor`` checks that many entries of each larger tensor, drawn from ``rng``
    (two forward passes per entry make a full check of a big network slow).
    ``w``: row weights (class or sample weights), the cost sum_i w_i c_i / sum_i w_i.
    Returns one ``TensorCheck`` per parameter tensor, in the order W0, b0, W1, ...
    """
    if net.dtype != np.float64:
        raise ValueError("gradcheck needs a float64 network")
    X = np.ascontiguousarray(X, dtype=np.float64)
    rng = rng or np.random.default_rng(0)
    train = net.has_dropout
    if train:
        net.sample_masks(len(X), rng)
    net.loss_and_grad(X, y, loss, train=train, w=w)
    analytic = net.grads.copy()
    numeric = np.empty_like(analytic)
    noise = np.zeros_like(analytic)
    kinked = np.zeros(analytic.shape, dtype=bool)
    checked = _entries_to_check(net, max_per_tensor, rng)
    p = net.params

    def cost() -> tuple[float, tuple]:
        a = net.forward(X, train=train)
        z = net._last_z()
        value = loss.value(z, a, y) if w is None else loss.weighted(z, a, y, w)
        return value, _kink_signature(net, loss, y)

    for i in np.flatnonzero(checked):
        old = p[i]
        p[i] = old + eps
        c_plus, side_plus = cost()
        p[i] = old - eps
        c_minus, side_minus = cost()
        p[i] = old
        numeric[i] = (c_plus - c_minus) / (2 * eps)
        noise[i] = NOISE_ULPS * np.finfo(np.float64).eps * (abs(c_plus) + abs(c_minus)) / (2 * eps)
        kinked[i] = side_plus != side_minus

    return _per_tensor(net, analytic, numeric, noise, kinked, checked)


def _entries_to_check(net: Network, max_per_tensor: int | None, rng) -> np.ndarray:
    """A mask over the flat parameters: all of them, or ``max_per_tensor`` of each larger tensor."""
    checked = np.ones(net.params.shape, dtype=bool)
    if max_per_tensor is not None:
        offset = 0
        for t in net.tensors():
            if t.size > max_per_tensor:
                checked[offset : offset + t.size] = False
                checked[offset + rng.choice(t.size, max_per_tensor, replace=False)] = True
            offset += t.size
    return checked


def _per_tensor(net: Network, analytic, numeric, noise, kinked, checked) -> list[TensorCheck]:
    """The worst relative error of each tensor over its checked entries away from kinks, each
    entry's difference less its rounding noise."""
    results, offset = [], 0
    for name, t in zip(net.tensor_names(), net.tensors(), strict=True):
        sl = slice(offset, offset + t.size)
        offset += t.size
        ok = ~kinked[sl] & checked[sl]
        a, n = analytic[sl][ok], numeric[sl][ok]
        if a.size:
            diff = np.abs(a - n)
            abs_err = float(np.max(diff))
            beyond_noise = float(np.max(np.maximum(diff - noise[sl][ok], 0.0)))
            scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(n))))
            rel = beyond_noise / scale if scale > 0 else 0.0
            floor = float(np.max(noise[sl][ok]))
        else:
            abs_err = rel = floor = 0.0
        results.append(
            TensorCheck(
                name, t.shape, rel, abs_err, int(kinked[sl].sum()), int(checked[sl].sum()), floor
            )
        )
    return results
