"""Activations: a^l = sigma(z^l) and the backward step through it.

Each activation has ``forward(z, out)`` and ``backward(z, a, grad_a, out)``. ``backward``
returns dC/dz given dC/da, the vector-Jacobian product of the activation. For the
elementwise ones this is ``grad_a * sigma'(z)``, the Hadamard product of BP1 and BP2;
for softmax it is the full Jacobian-vector product, so softmax works as a hidden layer
too, not only fused with cross-entropy. Arrays are batches of rows: z, a (n, units).

Where the derivative can be written from the output (sigmoid, tanh, relu), it is, so the
backward pass needs no second look at z (scikit-learn's habit).
"""

from __future__ import annotations

import math

import numpy as np

_SQRT_PI = math.sqrt(math.pi)


def _erf(x: np.ndarray) -> np.ndarray:
    """The error function, vectorized, to a few ulps of math.erf (numpy has none).

    |x| < 3: erf(x) = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^(2n+1) / (1 3 5 ... (2n+1)), a series of
    positive terms (no cancellation). 3 <= |x| < 6.5: 1 - erfc(x) with erfc's continued
    fraction e^{-x^2} / (sqrt(pi) (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))). Beyond, erf = +-1
    in float64. Computed in float64 and returned in x's dtype.
    """
    ax = np.abs(np.asarray(x, dtype=np.float64))
    out = np.ones_like(ax)
    small = ax < 3.0
    xs = ax[small]
    x2 = xs * xs
    term, total = xs.copy(), xs.copy()
    for n in range(1, 80):
        term *= x2 * (2.0 / (2 * n + 1))
        total += term
        if n % 8 == 0 and not (term > 1e-17 * total).any():
            break
    out[small] = (2.0 / _SQRT_PI) * np.exp(-x2) * total
    mid = (ax >= 3.0) & (ax < 6.5)
    xl = ax[mid]
    f = xl.copy()
    for k in range(80, 0, -1):
        f = xl + (k / 2.0) / f
    out[mid] = 1.0 - np.exp(-xl * xl) / (_SQRT_PI * f)
    return np.copysign(out, x).astype(np.result_type(x, np.float32), copy=False)


class Activation:
    """Base class. ``kinks`` lists the z values where sigma' jumps (gradcheck reports them)."""

    name = ""
    kinks: tuple[float, ...] = ()
    elementwise = True

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(
        self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray, out: np.ndarray
    ) -> np.ndarray:
        """dC/dz = grad_a * sigma'(z) (BP1/BP2 Hadamard product). ``out`` may be ``grad_a``."""
        raise NotImplementedError


class Identity(Activation):
    name = "identity"

    def forward(self, z, out):
        np.copyto(out, z)
        return out

    def backward(self, z, a, grad_a, out):
        if out is not grad_a:
            np.copyto(out, grad_a)
        return out


class Sigmoid(Activation):
    """sigma(z) = 1 / (1 + e^-z), written so that no exp overflows for large |z|."""

    name = "sigmoid"

    def forward(self, z, out):
        # e = exp(-|z|) <= 1; sigma = 1/(1+e) for z >= 0 and e/(1+e) for z < 0.
        e = np.exp(-np.abs(z))
        np.divide(np.where(z >= 0, 1.0, e), 1.0 + e, out=out)
        return out

    def backward(self, z, a, grad_a, out):
        # sigma'(z) = sigma(z) (1 - sigma(z)), from the output.
        np.multiply(grad_a, a * (1.0 - a), out=out)
        return out


class Tanh(Activation):
    name = "tanh"

    def forward(self, z, out):
        return np.tanh(z, out=out)

    def backward(self, z, a, grad_a, out):
        # tanh'(z) = 1 - tanh(z)^2, from the output.
        np.multiply(grad_a, 1.0 - a * a, out=out)
        return out


class ReLU(Activation):
    name = "relu"
    kinks = (0.0,)

    def forward(self, z, out):
        return np.maximum(z, 0, out=out)

    def backward(self, z, a, grad_a, out):
        # relu'(z) = 1 where z > 0 else 0 (PyTorch's choice at z = 0 is 0 too).
        np.multiply(grad_a, a > 0, out=out)
        return out


class LeakyReLU(Activation):
    """max(z, 0) + negative_slope * min(z, 0); PyTorch's default slope 0.01."""

    name = "leaky_relu"
    kinks = (0.0,)

    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = negative_slope

    def forward(self, z, out):
        np.multiply(z, np.where(z > 0, 1.0, self.negative_slope), out=out)
        return out

    def backward(self, z, a, grad_a, out):
        np.multiply(grad_a, np.where(z > 0, 1.0, self.negative_slope), out=out)
        return out


class ELU(Activation):
    """z for z > 0, alpha (e^z - 1) otherwise; PyTorch's default alpha 1.0."""

    name = "elu"

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha
        self.kinks = () if alpha == 1.0 else (0.0,)

    def forward(self, z, out):
        neg = self.alpha * np.expm1(np.minimum(z, 0))
        np.copyto(out, np.where(z > 0, z, neg))
        return out

    def backward(self, z, a, grad_a, out):
        # elu'(z) = 1 for z > 0, alpha e^z = a + alpha otherwise.
        np.multiply(grad_a, np.where(z > 0, 1.0, a + self.alpha), out=out)
        return out


class Softplus(Activation):
    """log(1 + e^z), computed as max(z, 0) + log1p(e^-|z|) so it never overflows."""

    name = "softplus"

    def forward(self, z, out):
        np.add(np.maximum(z, 0), np.log1p(np.exp(-np.abs(z))), out=out)
        return out

    def backward(self, z, a, grad_a, out):
        # softplus'(z) = sigmoid(z).
        s = np.empty_like(z)
        SIGMOID.forward(z, s)
        np.multiply(grad_a, s, out=out)
        return out


class GELU(Activation):
    """z * Phi(z) with the exact normal CDF, PyTorch's default (approximate='none')."""

    name = "gelu"

    def forward(self, z, out):
        np.multiply(z, 0.5 * (1.0 + _erf(z / math.sqrt(2.0))), out=out)
        return out

    def backward(self, z, a, grad_a, out):
        # gelu'(z) = Phi(z) + z phi(z).
        cdf = 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))
        pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        np.multiply(grad_a, cdf + z * pdf, out=out)
        return out


class Softmax(Activation):
    """a_j = e^{z_j} / sum_k e^{z_k} over each row, shifted by the row max for stability."""

    name = "softmax"
    elementwise = False

    def forward(self, z, out):
        np.subtract(z, np.maximum.reduce(z, axis=1, keepdims=True), out=out)
        np.exp(out, out=out)
        out /= np.add.reduce(out, axis=1, keepdims=True)
        return out

    def backward(self, z, a, grad_a, out):
        # The Jacobian is diag(a) - a a^T, so dC/dz = a * (g - <g, a>) row by row.
        dot = np.einsum("ij,ij->i", grad_a, a)[:, None]
        np.subtract(grad_a, dot, out=out)
        out *= a
        return out


SIGMOID = Sigmoid()

ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls
    for cls in (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, ELU, Softplus, GELU, Softmax)
}


def get_activation(name: str) -> Activation:
    """The activation registered as ``name``; the error lists the valid names."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}"
        ) from None
