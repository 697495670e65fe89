"""Optimizers: torch.optim's update rules and parameter names, on one flat buffer in place.

Each optimizer holds references to the network's flat ``params`` and ``grads`` buffers
and updates ``params`` in place in ``step()``. State (momentum buffers, moment estimates)
is allocated once, with zeros, in the parameters' dtype. The update rules are those of
the pseudocode in torch.optim's documentation for SGD, RMSprop, Adam and AdamW; where the
step count t appears it counts from 1 at the first step, as there.

Weight decay applies to the whole buffer (torch's one parameter group), or only to the
ranges ``decayed`` names (torch's two parameter groups, the other with weight_decay 0: the
weights alone, as the book's L2 term and Keras' kernel_regularizer): the compiled kernels then
run once per range, with the decay or without it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


class Optimizer:
    """Every hyperparameter is given: the defaults (torch.optim's) live in the config models
    (``config.optimizer_defaults``), not here."""

    name = ""
    hyper_names: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()  # the hyperparameters that are true/false, not numbers
    state_names: tuple[str, ...] = ()
    _kernel = None  # the compiled update (fast.py) where ``_fast`` found one; None: NumPy

    def __init__(
        self,
        params: np.ndarray,
        grads: np.ndarray,
        *,
        decayed: Sequence[slice] | None = None,
        **hyper,
    ):
        given, names = set(hyper), set(self.hyper_names)
        if given != names:
            unknown, missing = sorted(given - names), sorted(names - given)
            raise ValueError(
                f"{self.name}: unknown parameter(s) {unknown}, missing {missing}; "
                f"expected {sorted(names)}"
            )
        self.params, self.grads = params, grads
        # Python floats: a NumPy float64 scalar would make NumPy compute a float32 step in
        # float64 (NEP 50), which the compiled kernels (fast.py) do not.
        for k, v in hyper.items():
            if k in self.flags:
                hyper[k] = bool(v)
            elif isinstance(v, (tuple, list)):
                hyper[k] = tuple(map(float, v))
            else:
                hyper[k] = float(v)
        self.hyper = {k: hyper[k] for k in self.hyper_names}
        for k, v in self.hyper.items():
            setattr(self, k, v)
        self._validate()
        self.t = 0
        self.state = {name: np.zeros_like(params) for name in self.state_names}
        # Scratch buffers, so that a step allocates nothing: every operation writes in place.
        self._tmp = np.empty_like(params)
        self._gwd = np.empty_like(params) if self.hyper.get("weight_decay") else None
        self._runs = decay_runs(params.size, decayed) if decayed is not None else None

    @property
    def decay_ranges(self) -> list[tuple[slice, bool]] | None:
        """The buffer as consecutive ranges, each with whether weight decay applies; None:
        it applies everywhere."""
        return self._runs

    @property
    def decays_everything(self) -> bool:
        """Whether weight decay (if any) applies to every parameter (torch's default)."""
        return self._runs is None

    @property
    def compiled(self) -> bool:
        """Whether ``step`` runs the compiled kernel (fast.py) rather than NumPy (same bits)."""
        return self._kernel is not None

    @property
    def lr(self) -> float:
        return self.hyper["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self.hyper["lr"] = float(value)

    def _validate(self) -> None:
        if not self.lr > 0 and self.lr != 0:
            raise ValueError(f"Invalid learning rate: {self.lr}")
        if self.hyper.get("weight_decay", 0) < 0:
            raise ValueError(f"Invalid weight_decay value: {self.hyper['weight_decay']}")

    def _fast(self, name: str, *state: str) -> None:
        """Use the compiled kernel ``name`` (fast.py) where it is available for these buffers.

        The buffers' addresses are taken once: they are never replaced, only written in place.
        """
        from .fast import functions

        p = self.params
        arrays = (p, self.grads, *(self.state[k] for k in state))
        usable = all(
            a.flags.c_contiguous
            and a.flags.aligned
            and a.dtype == p.dtype
            and a.size == p.size
            and (a is self.grads or a.flags.writeable)
            for a in arrays
        )
        # The kernels branch on the options as rounded to the buffers' dtype, NumPy on the
        # Python values: they differ only for a value so small it rounds to 0.
        for k in ("momentum", "weight_decay"):
            v = self.hyper.get(k, 0.0)
            usable = usable and bool(v) == bool(p.dtype.type(v))
        found = functions(p.dtype, name) if usable else None
        self._kernel = found[0] if found else None
        self._pointers = tuple(a.ctypes.data for a in arrays)
        # Without decay on some ranges, the kernel runs once per range: (pointers, size, decays).
        item = p.dtype.itemsize
        self._calls = [
            (tuple(a + s.start * item for a in self._pointers), s.stop - s.start, decays)
            for s, decays in (self._runs or [(slice(0, p.size), True)])
        ]

    def step(self) -> None:
        self.t += 1
        self._step(self.params, self.grads)

    def _step(self, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def _decayed(self, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        """g + weight_decay * p (L2 penalty folded into the gradient), as torch does; g alone
        on the ranges not decayed."""
        if self.weight_decay:
            np.multiply(p, self.weight_decay, out=self._gwd)
            self._gwd += g
            for s, decays in self._runs or ():
                if not decays:
                    self._gwd[s] = g[s]
            return self._gwd
        return g

    def state_dict(self) -> dict[str, np.ndarray | int]:
        return {"t": self.t, **self.state}

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["t"])
        for name in self.state_names:
            np.copyto(self.state[name], state[name])


class SGD(Optimizer):
    """g <- g + wd p; b <- mu b + (1 - dampening) g (b = g at t = 1);
    g <- g + mu b if nesterov else b; p <- p - lr g."""

    name = "sgd"
    hyper_names = ("lr", "momentum", "dampening", "weight_decay", "nesterov")
    flags = ("nesterov",)
    state_names = ("momentum_buffer",)

    def _validate(self):
        super()._validate()
        if self.momentum < 0:
            raise ValueError(f"Invalid momentum value: {self.momentum}")
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def __init__(self, params, grads, **hyper):
        super().__init__(params, grads, **hyper)
        self._fast("sgd", "momentum_buffer")

    def _step(self, p, g):
        if self._kernel is not None:
            f = p.dtype.type  # scalars in the buffers' dtype, as NumPy casts them below
            for pointers, n, decays in self._calls:
                self._kernel(
                    *pointers,
                    n,
                    f(self.lr),
                    f(self.momentum),
                    f(1.0 - self.dampening),
                    f(self.weight_decay if decays else 0.0),
                    self.t == 1,
                    bool(self.nesterov),
                )
            return
        g = self._decayed(p, g)
        tmp = self._tmp
        if self.momentum:
            buf = self.state["momentum_buffer"]
            if self.t == 1:
                np.copyto(buf, g)
            else:
                buf *= self.momentum
                if self.dampening:
                    np.multiply(g, 1.0 - self.dampening, out=tmp)
                    buf += tmp
                else:
                    buf += g
            if self.nesterov:
                np.multiply(buf, self.momentum, out=tmp)
                tmp += g
                g = tmp
            else:
                g = buf
        np.multiply(g, self.lr, out=tmp)
        p -= tmp


class RMSprop(Optimizer):
    """v <- alpha v + (1 - alpha) g^2; centered: v~ = v - gavg^2 with gavg <- alpha gavg + (1 - alpha) g;
    with momentum: b <- mu b + g / (sqrt(v~) + eps), p <- p - lr b; else p <- p - lr g / (sqrt(v~) + eps)."""

    name = "rmsprop"
    hyper_names = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")
    flags = ("centered",)
    state_names = ("square_avg", "grad_avg", "momentum_buffer")

    def _validate(self):
        super()._validate()
        if self.eps < 0:
            raise ValueError(f"Invalid epsilon value: {self.eps}")
        if not 0 <= self.alpha:
            raise ValueError(f"Invalid alpha value: {self.alpha}")
        if self.momentum < 0:
            raise ValueError(f"Invalid momentum value: {self.momentum}")

    def _step(self, p, g):
        g = self._decayed(p, g)
        v, avg = self.state["square_avg"], self._tmp
        v *= self.alpha
        np.multiply(g, g, out=avg)
        avg *= 1.0 - self.alpha
        v += avg
        if self.centered:
            gavg = self.state["grad_avg"]
            gavg *= self.alpha
            np.multiply(g, 1.0 - self.alpha, out=avg)
            gavg += avg
            np.multiply(gavg, gavg, out=avg)
            np.subtract(v, avg, out=avg)
            np.sqrt(avg, out=avg)
        else:
            np.sqrt(v, out=avg)
        avg += self.eps
        np.divide(g, avg, out=avg)  # g / (sqrt(v~) + eps)
        if self.momentum > 0:
            buf = self.state["momentum_buffer"]
            buf *= self.momentum
            buf += avg
            np.multiply(buf, self.lr, out=avg)
        else:
            avg *= self.lr
        p -= avg


class Adam(Optimizer):
    """m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2 (g with L2 weight decay folded in);
    vmax <- max(vmax, v) if amsgrad; p <- p - lr/(1 - b1^t) m / (sqrt(v)/sqrt(1 - b2^t) + eps)."""

    name = "adam"
    hyper_names = ("lr", "betas", "eps", "weight_decay", "amsgrad")
    flags = ("amsgrad",)
    state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    decoupled = False

    def __init__(self, params, grads, **hyper):
        super().__init__(params, grads, **hyper)
        if not self.amsgrad:
            self._fast("adam", "exp_avg", "exp_avg_sq")

    def _validate(self):
        super()._validate()
        if self.eps < 0:
            raise ValueError(f"Invalid epsilon value: {self.eps}")
        b1, b2 = self.betas
        if not 0.0 <= b1 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {b1}")
        if not 0.0 <= b2 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {b2}")

    def _step(self, p, g):
        b1, b2 = self.betas
        if self._kernel is not None:
            f = p.dtype.type  # scalars in the buffers' dtype, as NumPy casts them below
            bias1, bias2_sqrt = 1.0 - b1**self.t, math.sqrt(1.0 - b2**self.t)
            wd = 0.0 if self.decoupled else self.weight_decay
            decay = 1.0 - self.lr * self.weight_decay if self.decoupled else 1.0
            for pointers, n, decays in self._calls:
                self._kernel(
                    *pointers,
                    n,
                    f(1.0 - b1),
                    f(1.0 - b2),
                    f(b2),
                    f(1.0 / bias2_sqrt),
                    f(self.eps),
                    f(self.lr / bias1),
                    f(wd if decays else 0.0),
                    f(decay if decays else 1.0),
                )
            return
        if self.decoupled:  # AdamW: decay the weights, not the gradient
            factor = 1.0 - self.lr * self.weight_decay
            for s, decays in self._runs or [(slice(None), True)]:
                if decays:
                    p[s] *= factor
        else:
            g = self._decayed(p, g)
        m, v, tmp = self.state["exp_avg"], self.state["exp_avg_sq"], self._tmp
        np.subtract(g, m, out=tmp)  # m <- m + (1 - b1)(g - m), torch's lerp_
        tmp *= 1.0 - b1
        m += tmp
        np.multiply(g, g, out=tmp)  # v <- b2 v + (1 - b2) g^2
        tmp *= 1.0 - b2
        v *= b2
        v += tmp
        if self.amsgrad:
            vmax = self.state["max_exp_avg_sq"]
            np.maximum(vmax, v, out=vmax)
            v = vmax
        bias1 = 1.0 - b1**self.t
        bias2_sqrt = math.sqrt(1.0 - b2**self.t)
        np.sqrt(v, out=tmp)  # denom = sqrt(v) / sqrt(1 - b2^t) + eps
        tmp *= 1.0 / bias2_sqrt
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr / bias1
        p -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay: p <- p (1 - lr wd) before the Adam step."""

    name = "adamw"
    decoupled = True


OPTIMIZERS: dict[str, type[Optimizer]] = {cls.name: cls for cls in (SGD, RMSprop, Adam, AdamW)}


def decay_runs(size: int, decayed: Sequence[slice]) -> list[tuple[slice, bool]]:
    """The buffer [0, size) as consecutive ranges, each with whether weight decay applies."""
    marks = np.zeros(size, dtype=bool)
    for s in decayed:
        marks[s] = True
    edges = [0, *(np.flatnonzero(marks[1:] != marks[:-1]) + 1).tolist(), size]
    return [(slice(a, b), bool(marks[a])) for a, b in zip(edges, edges[1:], strict=False) if b > a]


def make_optimizer(
    name: str,
    params: np.ndarray,
    grads: np.ndarray,
    decayed: Sequence[slice] | None = None,
    **hyper,
) -> Optimizer:
    """The optimizer registered as ``name`` over the flat buffers, weight decay on the ranges
    ``decayed`` only (None: everywhere); the error lists the valid names."""
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(
            f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}"
        ) from None
    return cls(params, grads, decayed=decayed, **hyper)
