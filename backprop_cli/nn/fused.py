"""The fused training step: a run of mini-batches in one compiled call (``_fused.c``).

The NumPy path costs about 35 NumPy and ctypes calls per mini-batch (three products forward,
five backward, the bias and activation passes, the loss, the output error, the gradient
norms, the count of correct rows, the update): on a small network each costs more than its
arithmetic. The fused step does all of it for each batch in C: gather the batch's rows,
forward (every activation, bias, dropout mask and residual sum), the output error, backward,
the gradient norms, clipping and the optimizer update (``_kernels.c``'s, bit for bit), with
the small products as register-blocked loops; for a batch of up to 4 rows the weights'
gradient is made chunk by chunk in the update's own pass (``few_update``). One call runs a run of batches; the trainer
calls it a few times per epoch (to draw the dropout masks for the next run, to report
progress and to stop on Ctrl-C between calls).

Which path a network takes (``why_not`` says why not this one): the fused step where the
compiled kernels are in use and the network, loss and optimizer are ones it has: activations
identity, relu, leaky_relu, sigmoid, tanh, elu, softplus, gelu (softmax as the output layer);
every loss, for regression, classes (labels, a 0/1 column or one-hot rows) and multi-label
targets; SGD, Adam and AdamW with their compiled update (not amsgrad, not RMSprop), weight
decay on every parameter or on the weights alone (decay_biases: false); and
where its largest product (batch x fan_in x fan_out) is at most ``MAX_PRODUCT``, beyond which
the BLAS's multithreaded products win. Everything else takes the NumPy path, the reference.

The products sum in another order than the BLAS's, so results match the NumPy path to within
rounding (tests/test_fused.py: per dtype), not to the bit; a given machine gives the same bits
every time. A batch of SPLIT_ROWS rows or more is done in two parts, on a second thread where
there is a second core and it is faster (timed call by call): the same bits either way.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Sequence

import numpy as np

from . import fast
from .losses import Loss
from .network import Network
from .optimizers import Optimizer, decay_runs

ACTIVATIONS = {
    "identity": 0,
    "relu": 1,
    "leaky_relu": 2,
    "sigmoid": 3,
    "tanh": 4,
    "elu": 5,
    "softplus": 6,
    "gelu": 7,
    "softmax": 8,
}
LOSSES = {"cross_entropy": 0, "binary_cross_entropy": 1, "mse": 2, "mae": 3, "huber": 4}
OPTIMIZERS = {"sgd": 0, "adam": 1, "adamw": 2}
# Beyond this batch x fan_in x fan_out in its largest layer, a network takes the NumPy path:
# the BLAS's products, on every core, are faster there (README, Performance).
MAX_PRODUCT = 16_000_000
VECTOR_BYTES = 64  # rows are padded to whole 64-byte vectors, whole _fused.c ones on any CPU
SPLIT_ROWS = 16  # _fused.c: a batch of this many rows or more is done in two parts


class _Layer(ctypes.Structure):
    _fields_ = [
        ("fan_in", ctypes.c_int64),
        ("fan_out", ctypes.c_int64),
        ("stride", ctypes.c_int64),
        ("act", ctypes.c_int32),
        ("residual", ctypes.c_int32),
        ("dropout", ctypes.c_double),
        ("act_param", ctypes.c_double),
        *[(name, ctypes.c_void_p) for name in ("W", "b", "gW", "gb", "WT")],
        *[(name, ctypes.c_void_p) for name in ("z", "h", "a", "g", "d", "mask")],
    ]


class _Net(ctypes.Structure):
    _fields_ = [
        ("n_layers", ctypes.c_int64),
        ("n_features", ctypes.c_int64),
        ("batch", ctypes.c_int64),
        ("n_params", ctypes.c_int64),
        ("layers", ctypes.POINTER(_Layer)),
        ("loss", ctypes.c_int32),
        ("classify", ctypes.c_int32),
        ("huber_delta", ctypes.c_double),
        ("opt", ctypes.c_int32),
        ("nesterov", ctypes.c_int32),
        *[
            (name, ctypes.c_double)
            for name in ("lr", "momentum", "dampening", "weight_decay", "beta1", "beta2", "eps")
        ],
        ("t", ctypes.c_int64),
        *[(name, ctypes.c_void_p) for name in ("params", "grads", "state0", "state1")],
        ("clip_norm", ctypes.c_double),
        ("clip_value", ctypes.c_double),
        ("loss_sum", ctypes.c_double),
        ("correct", ctypes.c_int64),
        ("clipped", ctypes.c_int64),
        ("ss_res", ctypes.POINTER(ctypes.c_double)),
        ("grad_sq", ctypes.POINTER(ctypes.c_double)),
        ("last_loss", ctypes.c_double),
        ("decay_biases", ctypes.c_int32),
        ("threads", ctypes.c_int32),
        ("fuse_update", ctypes.c_int32),
    ]


def largest_product(sizes: Sequence[int], batch_size: int) -> int:
    """batch size x fan_in x fan_out of the network's largest layer."""
    return max(batch_size * a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


def _cores() -> int:
    """The cores this process may use: its CPU affinity (system.usable_cores's count: nn
    imports nothing of the rest), at most $OMP_NUM_THREADS (which a sweep's workers set to
    their share, and which asks for one thread where it is 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    return min(cores, int(omp)) if omp.isdigit() and int(omp) > 0 else cores


def why_not(net: Network, loss: Loss, opt: Optimizer, batch_size: int) -> str:
    """'' where the fused step can train ``net`` with ``loss`` and ``opt`` at ``batch_size``,
    else why it cannot (the NumPy path does)."""
    if net.dtype.name not in ("float32", "float64"):
        return f"no fused step for {net.dtype.name}"
    if fast.functions(net.dtype, "train") is None:
        return f"the compiled kernels are not in use ({fast.why_not})"
    for l, name in enumerate(net.activation_names):
        if name not in ACTIVATIONS or (name == "softmax" and l < net.n_layers - 1):
            return f"layer {l}: no fused {name} (softmax only as the output layer)"
    if loss.name not in LOSSES:
        return f"no fused {loss.name} loss"
    if opt.name not in OPTIMIZERS or not opt.compiled:
        return f"{opt.name} has no compiled update with these options"
    runs = opt.decay_ranges
    if runs is not None and runs != decay_runs(net.params.size, net.weight_slices()):
        return "weight decay on other ranges than the layers' weights"
    product = largest_product(net.sizes, batch_size)
    if product > MAX_PRODUCT:
        return (
            f"large products (batch x fan_in x fan_out up to {product:,} > {MAX_PRODUCT:,}): "
            "the BLAS is faster"
        )
    return ""


def _stride(units: int, dtype: np.dtype) -> int:
    lanes = VECTOR_BYTES // dtype.itemsize
    return -(-units // lanes) * lanes


class FusedStep:
    """The fused step for one network, loss and optimizer at one batch size.

    It trains packed copies of the parameters, gradients and optimizer state (each row of a
    W padded with zeros to whole vectors, beside W^T): ``load`` copies them in from the
    network and optimizer, ``store`` back out. ``run`` trains batches of an epoch.
    """

    def __init__(
        self,
        net: Network,
        loss: Loss,
        opt: Optimizer,
        batch_size: int,
        task: str,
        multilabel: bool = False,
    ):
        (self._train,) = fast.functions(net.dtype, "train")
        self.net, self.opt, self.batch = net, opt, batch_size
        dt = net.dtype
        self.strides = [_stride(u, dt) for u in net.sizes[1:]]
        fan_ins = net.sizes[:-1]
        total = sum(k * s + s for k, s in zip(fan_ins, self.strides, strict=True))
        self.params, self.grads = np.zeros(total, dt), np.zeros(total, dt)
        self.state = {k: np.zeros(total, dt) for k in self._state_names()}
        self.W, self.b = self._views(self.params)
        self.gW, self.gb = self._views(self.grads)
        self.WT = [None] + [
            np.zeros((m, s), dt) for m, s in zip(net.sizes[2:], self.strides[:-1], strict=True)
        ]
        self.ss_res = np.zeros(max(1, net.sizes[-1]))
        self.grad_sq = np.zeros(net.n_layers)
        self.work = np.zeros((net.n_layers + 2) * batch_size, np.uintp)
        self._layers = (_Layer * net.n_layers)()
        self._buffers = []
        for l in range(net.n_layers):
            self._describe(l)
        self.c = self._net(loss, 2 if multilabel else int(task == "classification"))
        # Two threads for a batch's two parts, where it has two and a second core; chosen
        # call by call by the time a batch took each way (``threads`` None), or forced.
        self.split = batch_size >= SPLIT_ROWS and _cores() >= 2
        self.threads: int | None = None
        self._per_batch = {1: 0.0, 2: 0.0}  # seconds a batch took, each way (0: not yet)

    def _state_names(self) -> tuple[str, ...]:
        return ("momentum_buffer",) if self.opt.name == "sgd" else ("exp_avg", "exp_avg_sq")

    def _views(self, flat: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The per-layer W (fan_in x stride), b (stride) views of a packed buffer, as
        ``Network.views`` gives them of the network's."""
        Ws, bs, offset = [], [], 0
        for k, s in zip(self.net.sizes[:-1], self.strides, strict=True):
            Ws.append(flat[offset : offset + k * s].reshape(k, s))
            bs.append(flat[offset + k * s : offset + k * s + s])
            offset += k * s + s
        return Ws, bs

    def _describe(self, l: int) -> None:
        net, L = self.net, self._layers[l]
        s = self.strides[l]
        L.fan_in, L.fan_out, L.stride = net.sizes[l], net.sizes[l + 1], s
        act = net.acts[l]
        L.act, L.residual = ACTIVATIONS[act.name], int(net.residual[l])
        L.dropout = net.dropout[l]
        L.act_param = float(getattr(act, "negative_slope", getattr(act, "alpha", 0.0)))
        L.W, L.b = self.W[l].ctypes.data, self.b[l].ctypes.data
        L.gW, L.gb = self.gW[l].ctypes.data, self.gb[l].ctypes.data
        L.WT = self.WT[l].ctypes.data if self.WT[l] is not None else None

        def new():
            buf = np.zeros((self.batch, s), net.dtype)
            self._buffers.append(buf)
            return buf.ctypes.data

        L.z, L.h, L.g = new(), new(), new()
        extra = bool(net.dropout[l] or net.residual[l])
        L.a = new() if extra else L.h
        L.d = new() if extra else None
        L.mask = new() if net.dropout[l] else None

    def _net(self, loss: Loss, classify: int) -> _Net:
        """The C description; classify: 0 regression, 1 classes, 2 multi-label."""
        net, opt, h = self.net, self.opt, self.opt.hyper
        c = _Net()
        c.n_layers, c.n_features, c.batch = net.n_layers, net.sizes[0], self.batch
        c.n_params, c.layers = self.params.size, self._layers
        c.loss, c.classify = LOSSES[loss.name], classify
        c.huber_delta = float(getattr(loss, "delta", 1.0))
        c.opt, c.nesterov = OPTIMIZERS[opt.name], int(bool(h.get("nesterov", False)))
        c.momentum, c.dampening = h.get("momentum", 0.0), h.get("dampening", 0.0)
        c.weight_decay = h.get("weight_decay", 0.0)
        c.beta1, c.beta2 = h.get("betas", (0.9, 0.999))
        c.eps = h.get("eps", 0.0)
        c.decay_biases = int(opt.decays_everything)
        c.fuse_update = 1
        c.params, c.grads = self.params.ctypes.data, self.grads.ctypes.data
        states = [self.state[k].ctypes.data for k in self._state_names()]
        c.state0, c.state1 = (states + [None])[:2]
        c.ss_res = self.ss_res.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        c.grad_sq = self.grad_sq.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        return c

    # ------------------------------------------------------------------ in and out

    def load(self) -> None:
        """The network's parameters and gradients and the optimizer's state and step count
        into the packed copies (W^T too)."""
        for flat, packed in self._buffer_pairs():
            for W, b, pW, pb in zip(*self.net.views(flat), *self._views(packed), strict=True):
                m = W.shape[1]
                pW[:, :m], pb[:m] = W, b
        for l in range(1, self.net.n_layers):
            self.WT[l][:, : self.net.sizes[l]] = self.net.W[l].T
        self.c.t = self.opt.t

    def store(self) -> None:
        """The packed copies back into the network's parameters and gradients and the
        optimizer's state and step count."""
        for flat, packed in self._buffer_pairs():
            for W, b, pW, pb in zip(*self.net.views(flat), *self._views(packed), strict=True):
                m = W.shape[1]
                W[...], b[...] = pW[:, :m], pb[:m]
        self.opt.t = int(self.c.t)

    def _buffer_pairs(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(the network's or optimizer's flat buffer, its packed copy), each."""
        pairs = [(self.net.params, self.params), (self.net.grads, self.grads)]
        return pairs + [(self.opt.state[k], self.state[k]) for k in self._state_names()]

    # ------------------------------------------------------------------ training

    def start_epoch(self, lr: float, clip_norm: float | None, clip_value: float | None) -> None:
        """Zero the epoch's sums; the lr and clipping for the epoch's calls; time one thread
        and two again (the machine's load changes)."""
        c = self.c
        self._per_batch = {1: 0.0, 2: 0.0}
        c.lr = float(lr)
        c.clip_norm, c.clip_value = float(clip_norm or 0.0), float(clip_value or 0.0)
        c.loss_sum, c.correct, c.clipped = 0.0, 0, 0
        self.ss_res[:] = 0.0
        self.grad_sq[:] = 0.0

    def run(
        self,
        X: np.ndarray,
        y: np.ndarray,
        w: np.ndarray | None,
        order: np.ndarray,
        b0: int,
        b1: int,
        uniforms: np.ndarray | None,
    ) -> int:
        """Train batches b0 .. b1 - 1 of the epoch whose row order is ``order``; returns how
        many were done: fewer where a batch's loss or gradient was not finite (that batch is
        not applied; ``last_loss`` is its loss)."""
        ptr = ctypes.c_void_p
        self.c.threads = threads = self._threads()
        t0 = time.perf_counter()
        done = self._train(
            ctypes.byref(self.c),
            X.ctypes.data,
            y.ctypes.data,
            None if w is None else w.ctypes.data,
            order.ctypes.data,
            len(X),
            b0,
            b1,
            ptr(None) if uniforms is None else uniforms.ctypes.data,
            self.work.ctypes.data,
        )
        if done:
            self._per_batch[threads] = (time.perf_counter() - t0) / done
        return done

    def _threads(self) -> int:
        """2 or 1: forced, or the way not yet timed this epoch, else the faster one. Either way
        the results are the same bits (the parts are the same)."""
        if not self.split:
            return 1
        if self.threads:
            return self.threads
        one, two = self._per_batch[1], self._per_batch[2]
        if not two:
            return 2
        if not one:
            return 1
        return 2 if two < one else 1

    @property
    def last_loss(self) -> float:
        return float(self.c.last_loss)

    def sums(self) -> tuple[float, int, np.ndarray, np.ndarray, int]:
        """The epoch so far: (loss sum, correct rows, squared errors per output, squared
        gradient norm per layer, clipped batches)."""
        c = self.c
        return c.loss_sum, int(c.correct), self.ss_res, self.grad_sq, int(c.clipped)

    def dropout_units(self) -> int:
        """The dropout draws per row of a batch (the units of the layers with dropout)."""
        return sum(u for u, p in zip(self.net.sizes[1:], self.net.dropout, strict=True) if p)
