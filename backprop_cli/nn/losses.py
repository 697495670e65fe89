"""Losses: the cost C and the output error it starts backpropagation with.

Each loss has ``value(z, a, y)``, the mean-reduced cost exactly as torch.nn.functional
computes it, and ``grad(a, y)``, dC/da^L, which BP1 multiplies by sigma'(z^L):

    delta^L = dC/da^L * sigma'(z^L)                                   (BP1)

Two pairs are fused because their product simplifies: softmax + cross-entropy and
sigmoid + binary cross-entropy give delta^L = (a^L - y) / n (over n k entries for binary
cross-entropy's k outputs), which is exact and avoids dividing by a probability that may
be 0. ``fused_with`` names that activation.

Targets ``y``: class indices (n,) for cross-entropy; (n, k) floats for the others.
``value`` takes z as well as a so that the fused losses never take log(0): binary
cross-entropy is computed from the logits; cross-entropy reads -log a_y off the forward
pass's probabilities, or uses the logits' log-sum-exp where a probability is tiny.
"""

from __future__ import annotations

import numpy as np


class Loss:
    name = ""
    fused_with: str | None = None
    kinks: tuple[float, ...] = ()  # values of (a - y) where dC/da jumps

    def value(self, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> float:
        raise NotImplementedError

    def rows(self, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each row's own loss c_i (its mean over the outputs), (n,)."""
        raise NotImplementedError

    def weighted(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        """sum_i w_i c_i / sum_i w_i: torch's CrossEntropyLoss(weight=...) mean, for class
        weights and sample weights alike (the network scales delta^L's rows to match)."""
        return float(np.dot(w, self.rows(z, a, y)) / w.sum())

    def grad(self, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        """dC/da^L (n, k), for the general BP1."""
        raise NotImplementedError

    def fused_delta(self, a: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        """delta^L = dC/dz^L when the output activation is ``fused_with``."""
        raise NotImplementedError


class MSE(Loss):
    """mean((a - y)^2) over every element, as F.mse_loss."""

    name = "mse"

    def value(self, z, a, y):
        d = a - y
        return float(np.mean(d * d))

    def rows(self, z, a, y):
        d = a - y
        return np.mean(d * d, axis=1)

    def grad(self, a, y):
        return (a - y) * (2.0 / a.size)


class MAE(Loss):
    """mean(|a - y|) over every element, as F.l1_loss; its gradient at a = y is 0."""

    name = "mae"
    kinks = (0.0,)

    def value(self, z, a, y):
        return float(np.mean(np.abs(a - y)))

    def rows(self, z, a, y):
        return np.mean(np.abs(a - y), axis=1)

    def grad(self, a, y):
        return np.sign(a - y) * (1.0 / a.size)


class Huber(Loss):
    """F.huber_loss with delta: 0.5 d^2 for |d| < delta, delta (|d| - 0.5 delta) beyond."""

    name = "huber"

    def __init__(self, delta: float = 1.0):
        self.delta = delta

    def value(self, z, a, y):
        return float(np.mean(self._elements(a, y)))

    def rows(self, z, a, y):
        return np.mean(self._elements(a, y), axis=1)

    def _elements(self, a, y):
        d = np.abs(a - y)
        quad = np.minimum(d, self.delta)
        return 0.5 * quad * quad + self.delta * (d - quad)

    def grad(self, a, y):
        return np.clip(a - y, -self.delta, self.delta) * (1.0 / a.size)


class BinaryCrossEntropy(Loss):
    """-mean(y log a + (1 - y) log(1 - a)) with a = sigmoid(z), as F.binary_cross_entropy.

    The value is computed from the logits, max(z, 0) - z y + log(1 + e^-|z|), the formula
    of F.binary_cross_entropy_with_logits: the same number without log(0). (PyTorch's
    probability version clamps log at -100, so the two differ only for |z| > 100.)
    """

    name = "binary_cross_entropy"
    fused_with = "sigmoid"

    def value(self, z, a, y):
        return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))

    def rows(self, z, a, y):
        return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))), axis=1)

    def grad(self, a, y):
        # Only reached when the output is not sigmoid; the config refuses that pairing.
        tiny = np.finfo(a.dtype).tiny
        return (a - y) / np.maximum(a * (1.0 - a), tiny) / a.size

    def fused_delta(self, a, y, out):
        # dC/dz = (sigmoid(z) - y) / (n k): BP1 with the sigmoid' cancelled.
        np.subtract(a, y, out=out)
        out *= 1.0 / a.size
        return out


class CrossEntropy(Loss):
    """-mean over rows of log softmax(z)[y], as F.cross_entropy with class-index targets."""

    name = "cross_entropy"
    fused_with = "softmax"

    def value(self, z, a, y):
        # -log softmax(z)_y read off the probabilities the forward pass made; when one is too
        # small for its log to be accurate, the log-sum-exp of the logits instead.
        p = a[np.arange(len(y)), y]
        if p.min() > 1e-30:
            return float(-np.log(p).sum() / len(y))
        return float(np.mean(self._from_logits(z, y)))

    def rows(self, z, a, y):
        p = a[np.arange(len(y)), y]
        return -np.log(p) if p.min() > 1e-30 else self._from_logits(z, y)

    def _from_logits(self, z, y):
        zmax = z.max(axis=1, keepdims=True)
        logsumexp = np.log(np.exp(z - zmax).sum(axis=1)) + zmax[:, 0]
        return logsumexp - z[np.arange(len(y)), y]

    def grad(self, a, y):
        g = np.zeros_like(a)
        rows = np.arange(len(y))
        g[rows, y] = -1.0 / (np.maximum(a[rows, y], np.finfo(a.dtype).tiny) * len(y))
        return g

    def fused_delta(self, a, y, out):
        # dC/dz = (softmax(z) - onehot(y)) / n.
        np.copyto(out, a)
        out[np.arange(len(y)), y] -= 1.0
        out *= 1.0 / len(y)
        return out


LOSSES: dict[str, type[Loss]] = {
    cls.name: cls for cls in (MSE, MAE, Huber, BinaryCrossEntropy, CrossEntropy)
}
CLASSIFICATION_LOSSES = ("binary_cross_entropy", "cross_entropy")


def get_loss(name: str) -> Loss:
    """The loss registered as ``name``; the error lists the valid names."""
    try:
        return LOSSES[name]()
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}") from None
