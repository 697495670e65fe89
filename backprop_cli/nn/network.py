"""The multilayer perceptron: forward pass and backpropagation over a batch of rows.

For layer l (0-based here; BACKPROP.md counts from 2) with weights W^l (fan_in, fan_out),
biases b^l (fan_out,) and activation sigma:

    z^l = a^(l-1) W^l + b^l,   a^l = sigma(z^l),   a^(-1) = X (n, n_features)
    delta^L = dC/da^L * sigma'(z^L)                        (BP1)
    delta^l = (delta^(l+1) W^(l+1)^T) * sigma'(z^l)        (BP2)
    dC/dW^l = a^(l-1)^T delta^l                            (BP3)
    dC/db^l = sum over rows of delta^l                     (BP4)

W^l is BACKPROP.md's matrix transposed so a batch of row vectors multiplies from the left.
All parameters live in one flat buffer ``params`` with per-layer views ``W[l]``, ``b[l]``;
the gradients in one flat buffer ``grads`` with views ``gW[l]``, ``gb[l]``. Optimizers
update the flat buffers in place. Activations and deltas are allocated once per batch size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .activations import Activation, get_activation
from .losses import Loss

INITS = ("he", "xavier", "normal", "uniform")


class Network:
    """A fully connected network.

    Parameters
    ----------
    sizes : [n_inputs, units_0, ..., units_{L-1}]
    activations : one activation name per layer (L names)
    dtype : float32 or float64, for parameters and every buffer of the hot path
    """

    def __init__(self, sizes: Sequence[int], activations: Sequence[str], dtype=np.float32):
        if len(activations) != len(sizes) - 1:
            raise ValueError("need one activation per layer")
        self.sizes = [int(s) for s in sizes]
        self.activation_names = list(activations)
        self.acts: list[Activation] = [get_activation(a) for a in activations]
        self.dtype = np.dtype(dtype)
        shapes = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            shapes += [(fan_in, fan_out), (fan_out,)]
        total = sum(math.prod(s) for s in shapes)
        self.params = np.zeros(total, dtype=self.dtype)
        self.grads = np.zeros(total, dtype=self.dtype)
        self.W, self.b = self._views(self.params, shapes)
        self.gW, self.gb = self._views(self.grads, shapes)
        self._buffers: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}

    @staticmethod
    def _views(flat: np.ndarray, shapes) -> tuple[list[np.ndarray], list[np.ndarray]]:
        views, offset = [], 0
        for shape in shapes:
            size = math.prod(shape)
            views.append(flat[offset : offset + size].reshape(shape))
            offset += size
        return views[0::2], views[1::2]

    @property
    def n_layers(self) -> int:
        return len(self.acts)

    def tensor_names(self) -> list[str]:
        """Names of the parameter tensors in buffer order: W0, b0, W1, b1, ..."""
        return [f"{p}{i}" for i in range(self.n_layers) for p in ("W", "b")]

    def tensors(self, grads: bool = False) -> list[np.ndarray]:
        """The parameter (or gradient) views in the order of ``tensor_names``."""
        W, b = (self.gW, self.gb) if grads else (self.W, self.b)
        return [t for pair in zip(W, b, strict=True) for t in pair]

    def init(
        self,
        method: str,
        rng: np.random.Generator,
        scale: float = 0.1,
        per_layer: Sequence[str | None] | None = None,
    ) -> None:
        """Draw the weights; biases are zero.

        he: N(0, 2/fan_in) (kaiming_normal_); xavier: U(-r, r), r = sqrt(6/(fan_in+fan_out))
        (xavier_uniform_); normal: N(0, scale^2); uniform: U(-scale, scale).
        """
        self.params[:] = 0
        for l, W in enumerate(self.W):
            how = (per_layer[l] if per_layer and per_layer[l] else None) or method
            fan_in, fan_out = W.shape
            if how == "he":
                w = rng.normal(0.0, math.sqrt(2.0 / fan_in), W.shape)
            elif how == "xavier":
                r = math.sqrt(6.0 / (fan_in + fan_out))
                w = rng.uniform(-r, r, W.shape)
            elif how == "normal":
                w = rng.normal(0.0, scale, W.shape)
            elif how == "uniform":
                w = rng.uniform(-scale, scale, W.shape)
            else:
                raise ValueError(f"unknown init {how!r}; expected one of {', '.join(INITS)}")
            W[...] = w

    def _batch_buffers(self, n: int):
        """z^l and a^l buffers for a batch of n rows, made once per batch size."""
        buf = self._buffers.get(n)
        if buf is None:
            zs = [np.empty((n, u), dtype=self.dtype) for u in self.sizes[1:]]
            acts = [np.empty((n, u), dtype=self.dtype) for u in self.sizes[1:]]
            buf = self._buffers[n] = (zs, acts)
        return buf

    def forward(self, X: np.ndarray) -> np.ndarray:
        """a^L for a batch X (n, n_features); keeps every z^l and a^l for ``backward``."""
        zs, acts = self._batch_buffers(len(X))
        a_prev = X
        for l, act in enumerate(self.acts):
            z = np.matmul(a_prev, self.W[l], out=zs[l])
            z += self.b[l]
            a_prev = act.forward(z, acts[l])
        self._X = X
        return a_prev

    def backward(self, y: np.ndarray, loss: Loss) -> None:
        """Fill ``grads`` with dC/dW^l and dC/db^l for the batch of the last ``forward``."""
        zs, acts = self._buffers[len(self._X)]
        last = self.acts[-1]
        # Deltas overwrite the z buffers: z^l is not needed once delta^l exists.
        if loss.fused_with == last.name:
            delta = loss.fused_delta(acts[-1], y, out=np.empty_like(zs[-1]))
        else:
            delta = last.backward(
                zs[-1],
                acts[-1],
                loss.grad(acts[-1], y).astype(self.dtype, copy=False),
                out=np.empty_like(zs[-1]),
            )  # BP1
        for l in range(self.n_layers - 1, -1, -1):
            a_prev = self._X if l == 0 else acts[l - 1]
            np.matmul(a_prev.T, delta, out=self.gW[l])  # BP3
            np.sum(delta, axis=0, out=self.gb[l])  # BP4
            if l:
                g = np.matmul(delta, self.W[l].T)  # delta^(l+1) W^(l+1)^T
                delta = self.acts[l - 1].backward(zs[l - 1], acts[l - 1], g, out=g)  # BP2

    def loss_and_grad(self, X: np.ndarray, y: np.ndarray, loss: Loss) -> float:
        """One forward and backward pass; returns C on the batch, fills ``grads``."""
        out = self.forward(X)
        value = loss.value(self._last_z(), out, y)
        self.backward(y, loss)
        return value

    def _last_z(self) -> np.ndarray:
        return self._buffers[len(self._X)][0][-1]

    def predict(self, X: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """a^L for any number of rows, computed in chunks so memory stays bounded."""
        return self.evaluate(X, None, None, chunk)[1]

    def evaluate(self, X: np.ndarray, y: np.ndarray | None, loss: Loss | None, chunk: int = 4096):
        """(mean loss or None, a^L (n, k)) over X, in chunks of rows."""
        n = len(X)
        out = np.empty((n, self.sizes[-1]), dtype=self.dtype)
        total = 0.0
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            a = self.forward(np.ascontiguousarray(X[start:stop], dtype=self.dtype))
            out[start:stop] = a
            if loss is not None:
                total += loss.value(self._last_z(), a, y[start:stop]) * (stop - start)
        return (total / n if loss is not None and n else None), out
