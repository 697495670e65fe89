"""The multilayer perceptron: forward pass and backpropagation over a batch of rows.

For layer l (0-based; docs/backpropagation.md explains it all) with weights W^l (fan_in, fan_out),
biases b^l (fan_out,) and activation sigma:

    z^l = a^(l-1) W^l + b^l,   a^l = sigma(z^l),   a^(-1) = X (n, n_features)
    delta^L = dC/da^L * sigma'(z^L)                        (BP1)
    delta^l = (delta^(l+1) W^(l+1)^T) * sigma'(z^l)        (BP2)
    dC/dW^l = a^(l-1)^T delta^l                            (BP3)
    dC/db^l = sum over rows of delta^l                     (BP4)

W^l is the column-vector convention's matrix transposed, so a batch of row vectors multiplies
from the left.

Two options per hidden layer change a^l. Inverted dropout keeps each unit with
probability 1 - p and scales it by 1/(1 - p) in training (a^l = m * sigma(z^l), m the
scaled mask; off in evaluation). A residual layer adds its input (a^l = sigma(z^l) +
a^(l-1)), so dC/da^(l-1) gains dC/da^l unchanged: the gradient has a path around the
activation's sigma', the classic mitigation for vanishing gradients.
All parameters live in one flat buffer ``params`` with per-layer views ``W[l]``, ``b[l]``;
the gradients in one flat buffer ``grads`` with views ``gW[l]``, ``gb[l]``. Optimizers
update the flat buffers in place. Activations and deltas are allocated once per batch size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from . import fast
from .activations import Activation, ReLU, get_activation
from .losses import Loss

INITS = ("he", "lecun", "xavier", "glorot", "normal", "uniform")  # glorot is xavier's other name
BIAS_INITS = ("zeros", "normal")


class Network:
    """A fully connected network.

    Parameters
    ----------
    sizes : [n_inputs, units_0, ..., units_{L-1}]
    activations : one activation name per layer (L names)
    dtype : float32 or float64, for parameters and every buffer of the hot path
    dropout : per layer, the probability p of dropping a unit in training (0: none)
    residual : per layer, whether a^l = sigma(z^l) + a^(l-1) (the widths must match)
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activations: Sequence[str],
        dtype=np.float32,
        dropout: Sequence[float] | None = None,
        residual: Sequence[bool] | None = None,
    ):
        if len(activations) != len(sizes) - 1:
            raise ValueError("need one activation per layer")
        self.sizes = [int(s) for s in sizes]
        self.activation_names = list(activations)
        self.acts: list[Activation] = [get_activation(a) for a in activations]
        self.dtype = np.dtype(dtype)
        self.dropout = [float(p) for p in dropout] if dropout else [0.0] * len(self.acts)
        self.residual = [bool(r) for r in residual] if residual else [False] * len(self.acts)
        for l, (p, r) in enumerate(zip(self.dropout, self.residual, strict=True)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"layer {l}: dropout must be in [0, 1), got {p}")
            if (p or r) and l == len(self.acts) - 1:
                raise ValueError(
                    "the output layer can have neither dropout nor a residual connection"
                )
            if r and self.sizes[l] != self.sizes[l + 1]:
                raise ValueError(
                    f"layer {l}: a residual layer needs units == its input width ({self.sizes[l]})"
                )
        total = sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True))
        self.params = np.zeros(total, dtype=self.dtype)
        self.grads = np.zeros(total, dtype=self.dtype)
        self._fresh()

    def _fresh(self) -> None:
        """The W, b views of the flat buffers and empty per-batch buffers."""
        self.W, self.b = self.views(self.params)
        self.gW, self.gb = self.views(self.grads)
        self._buffers: dict[int, _Buffers] = {}
        self._X: np.ndarray | None = None
        self._n = 0

    def __getstate__(self) -> dict:
        """Pickled: the flat parameters and the settings. The views and the per-batch buffers
        (which hold the compiled kernels' pointers) are rebuilt on unpickling."""
        views = ("W", "b", "gW", "gb", "_buffers", "_X", "_n")
        return {k: v for k, v in self.__dict__.items() if k not in views}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._fresh()

    def views(self, flat: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The per-layer W, b views of a flat buffer laid out as ``params`` (the optimizer's
        state is)."""
        shapes = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            shapes += [(fan_in, fan_out), (fan_out,)]
        views, offset = [], 0
        for shape in shapes:
            size = math.prod(shape)
            views.append(flat[offset : offset + size].reshape(shape))
            offset += size
        return views[0::2], views[1::2]

    @property
    def n_layers(self) -> int:
        return len(self.acts)

    @property
    def has_dropout(self) -> bool:
        return any(self.dropout)

    def tensor_names(self) -> list[str]:
        """Names of the parameter tensors in buffer order: W0, b0, W1, b1, ..."""
        return [f"{p}{i}" for i in range(self.n_layers) for p in ("W", "b")]

    def tensors(self, grads: bool = False) -> list[np.ndarray]:
        """The parameter (or gradient) views in the order of ``tensor_names``."""
        W, b = (self.gW, self.gb) if grads else (self.W, self.b)
        return [t for pair in zip(W, b, strict=True) for t in pair]

    def layer_slices(self) -> list[slice]:
        """The range of each layer's W and b in the flat buffers."""
        out, offset = [], 0
        for W, b in zip(self.W, self.b, strict=True):
            out.append(slice(offset, offset + W.size + b.size))
            offset += W.size + b.size
        return out

    def weight_slices(self) -> list[slice]:
        """The range of each layer's W in the flat buffers (its b follows it)."""
        return [
            slice(s.start, s.start + W.size)
            for s, W in zip(self.layer_slices(), self.W, strict=True)
        ]

    def init(
        self,
        method: str,
        rng: np.random.Generator,
        scale: float = 0.1,
        per_layer: Sequence[str | None] | None = None,
        bias: str = "zeros",
        bias_scale: float = 1.0,
    ) -> None:
        """Draw the weights, layer by layer (W^l, then b^l when ``bias`` is normal).

        he: N(0, 2/fan_in) (kaiming_normal_); lecun: N(0, 1/fan_in) (the book's "improved"
        init, Keras' lecun_normal without its truncation); xavier: U(-r, r),
        r = sqrt(6/(fan_in+fan_out)) (xavier_uniform_); normal: N(0, scale^2); uniform:
        U(-scale, scale). ``per_layer`` overrides ``method`` for the layers where it is not None.
        Biases: zeros, or N(0, bias_scale^2) (the book's N(0, 1) with bias_scale 1).
        """
        if bias not in BIAS_INITS:
            raise ValueError(f"unknown bias init {bias!r}; expected one of {', '.join(BIAS_INITS)}")
        self.params[:] = 0
        for l, (W, b) in enumerate(zip(self.W, self.b, strict=True)):
            how = (per_layer[l] if per_layer and per_layer[l] else None) or method
            W[...] = _weights(how, W.shape, rng, scale)
            if bias == "normal":
                b[...] = rng.normal(0.0, bias_scale, b.shape)

    def _batch_buffers(self, n: int) -> _Buffers:
        buf = self._buffers.get(n)
        if buf is None:
            buf = self._buffers[n] = _Buffers(self, n)
        return buf

    def sample_masks(self, n: int, rng: np.random.Generator) -> None:
        """Draw new dropout masks for a batch of n rows (each unit kept with probability 1 - p)."""
        buf = self._batch_buffers(n)
        for l, p in enumerate(self.dropout):
            if p:
                m = buf.mask[l]
                rng.random(dtype=m.dtype, out=m)
                np.greater_equal(m, p, out=m)  # 1.0 where kept
                m *= 1.0 / (1.0 - p)

    def forward(self, X: np.ndarray, train: bool = False) -> np.ndarray:
        """a^L for a batch X (n, n_features); keeps z^l, sigma(z^l) and a^l for ``backward``.

        ``train`` applies the dropout masks of the last ``sample_masks`` for this batch size.
        """
        buf = self._batch_buffers(len(X))
        a_prev = X
        for l, act in enumerate(self.acts):
            z = np.matmul(a_prev, self.W[l], out=buf.z[l])
            if buf.bias_relu[l] is not None:
                fn, args = buf.bias_relu[l]
                fn(*args)  # z += b^l; h = relu(z), in one pass (fast.py)
                h = buf.h[l]
            else:
                z += self.b[l]
                h = act.forward(z, buf.h[l])
            a = buf.a[l]
            if a is not h:
                if train and self.dropout[l]:
                    np.multiply(h, buf.mask[l], out=a)
                else:
                    np.copyto(a, h)
                if self.residual[l]:
                    a += a_prev
            a_prev = a
        self._X, self._n, self._train = X, len(X), train
        return a_prev

    def backward(self, y: np.ndarray, loss: Loss, w: np.ndarray | None = None) -> None:
        """Fill ``grads`` with dC/dW^l and dC/db^l for the batch of the last ``forward``.

        With row weights ``w`` (class or sample weights) the cost is sum_i w_i c_i / sum_i w_i
        (``Loss.weighted``): each row of the unweighted delta^L, which carries a 1/n, is
        scaled by n w_i / sum w, and BP2-BP4 carry the weights through unchanged."""
        buf = self._buffers[self._n]
        L = self.n_layers - 1
        last = self.acts[L]
        if loss.fused_with == last.name:
            delta = loss.fused_delta(buf.h[L], y, out=buf.g[L])  # BP1, fused
        else:
            grad_a = loss.grad(buf.h[L], y).astype(self.dtype, copy=False)
            delta = last.backward(buf.z[L], buf.h[L], grad_a, out=buf.g[L])  # BP1
        if w is not None:
            delta *= (w * (len(w) / w.sum()))[:, None].astype(self.dtype, copy=False)
        bias_done = False
        for l in range(L, -1, -1):
            a_prev = self._X if l == 0 else buf.a[l - 1]
            np.matmul(a_prev.T, delta, out=self.gW[l])  # BP3
            if not bias_done:
                np.add.reduce(delta, axis=0, out=self.gb[l])  # BP4
            if l == 0:
                break
            k = l - 1
            g = np.matmul(delta, self.W[l].T, out=buf.g[k])  # dC/da^k = delta^l W^l^T
            if self.residual[l]:
                g += buf.g[l]  # the skip connection passes dC/da^l straight through
            if buf.relu_backward_bias[k] is not None and not (self._train and self.dropout[k]):
                fn, args = buf.relu_backward_bias[k]
                fn(*args)  # BP2 in place in g, and BP4 for layer k, in one pass
                delta, bias_done = g, True
                continue
            bias_done = False
            gh = g
            if self._train and self.dropout[k]:
                gh = np.multiply(g, buf.mask[k], out=buf.d[k])  # dC/dsigma(z^k)
            out = buf.d[k] if self.residual[k] else gh
            delta = self.acts[k].backward(buf.z[k], buf.h[k], gh, out=out)  # BP2

    def loss_and_grad(
        self,
        X: np.ndarray,
        y: np.ndarray,
        loss: Loss,
        train: bool = False,
        w: np.ndarray | None = None,
    ) -> float:
        """One forward and backward pass; returns C on the batch (weighted by the rows'
        ``w``, when given), fills ``grads``."""
        out = self.forward(X, train=train)
        z = self._last_z()
        value = loss.value(z, out, y) if w is None else loss.weighted(z, out, y, w)
        self.backward(y, loss, w)
        return value

    def _last_z(self) -> np.ndarray:
        return self._buffers[self._n].z[-1]

    def output(self) -> np.ndarray:
        """a^L of the last forward pass."""
        return self._buffers[self._n].a[-1]

    def last_pass(self) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """Copies of z^l, sigma(z^l) and a^l of every layer from the last forward pass."""
        buf = self._buffers[self._n]
        return [z.copy() for z in buf.z], [h.copy() for h in buf.h], [a.copy() for a in buf.a]

    def first_nonfinite_layer(self) -> str | None:
        """Where the last forward/backward pass first produced Inf or NaN, in the order computed."""
        buf = self._buffers[self._n]
        for l in range(self.n_layers):
            if not np.isfinite(buf.a[l]).all():
                return f"layer {l} (activations a^{l})"
        for l in range(self.n_layers - 1, -1, -1):
            if not (np.isfinite(self.gW[l]).all() and np.isfinite(self.gb[l]).all()):
                return f"layer {l} (gradients dC/dW^{l})"
        if not np.isfinite(self.params).all():
            return "the parameters"
        return None

    def predict(self, X: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """a^L for any number of rows, computed in chunks so memory stays bounded."""
        return self.evaluate(X, None, None, chunk)[1]

    def evaluate(
        self,
        X: np.ndarray,
        y: np.ndarray | None,
        loss: Loss | None,
        chunk: int = 4096,
        w: np.ndarray | None = None,
    ):
        """(mean loss, weighted by ``w`` when given, or None; a^L (n, k)) over X, in chunks of
        rows; dropout off."""
        n = len(X)
        out = np.empty((n, self.sizes[-1]), dtype=self.dtype)
        total = 0.0
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            a = self.forward(np.ascontiguousarray(X[start:stop], dtype=self.dtype))
            out[start:stop] = a
            if loss is not None:
                z, ys = self._last_z(), y[start:stop]
                if w is None:
                    total += loss.value(z, a, ys) * (stop - start)
                else:
                    total += float(np.dot(w[start:stop], loss.rows(z, a, ys)))
        if loss is None or not n:
            return None, out
        return total / (n if w is None else float(w.sum())), out


def _weights(how: str, shape: tuple[int, int], rng: np.random.Generator, scale: float):
    """A weight matrix (fan_in, fan_out) drawn as ``how`` says (``Network.init``)."""
    fan_in, fan_out = shape
    if how == "he":
        return rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
    if how == "lecun":
        return rng.normal(0.0, math.sqrt(1.0 / fan_in), shape)
    if how in ("xavier", "glorot"):
        r = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-r, r, shape)
    if how == "normal":
        return rng.normal(0.0, scale, shape)
    if how == "uniform":
        return rng.uniform(-scale, scale, shape)
    raise ValueError(f"unknown init {how!r}; expected one of {', '.join(INITS)}")


class _Buffers:
    """Per-batch-size arrays, allocated once: z^l, h^l = sigma(z^l), a^l, masks, gradients.

    a^l is h^l itself unless the layer has dropout or a residual connection; d^l is a
    second gradient buffer for the layers whose dC/da^l must survive the delta (residual)
    or be masked (dropout).
    """

    def __init__(self, net: Network, n: int):
        def new(u):
            return np.empty((n, u), dtype=net.dtype)

        units = net.sizes[1:]
        self.z = [new(u) for u in units]
        self.h = [new(u) for u in units]
        self.a = [
            new(u) if (p or r) else h
            for u, h, p, r in zip(units, self.h, net.dropout, net.residual, strict=True)
        ]
        self.mask = [new(u) if p else None for u, p in zip(units, net.dropout, strict=True)]
        self.g = [new(u) for u in units]
        self.d = [
            new(u) if (p or r) else None
            for u, p, r in zip(units, net.dropout, net.residual, strict=True)
        ]
        # relu layers' elementwise work as compiled loops, where fast.py has them: each a
        # ready call, (function, arguments: the buffers' addresses and shapes).
        self.bias_relu: list[tuple | None] = [None] * len(units)
        self.relu_backward_bias: list[tuple | None] = [None] * len(units)
        found = fast.functions(net.dtype, "bias_relu", "relu_backward_bias")
        if found is None:
            return
        fwd, bwd = found
        for l, (act, u) in enumerate(zip(net.acts, units, strict=True)):
            if type(act) is ReLU:
                z, h = self.z[l], self.h[l]
                self.bias_relu[l] = (
                    fwd,
                    (z.ctypes.data, net.b[l].ctypes.data, h.ctypes.data, n, u),
                )
                # In place in dC/da^l, which a residual layer keeps; and not for one unit,
                # whose bias gradient NumPy sums pairwise (a contiguous column), not row by row.
                if not net.residual[l] and u > 1:
                    args = (self.g[l].ctypes.data, h.ctypes.data, net.gb[l].ctypes.data, n, u)
                    self.relu_backward_bias[l] = (bwd, args)
