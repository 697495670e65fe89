"""The compiled kernels' self-test: before a run trusts a library, its kernels must give
NumPy's bits on a few values (``fast.check_with`` is given ``self_test`` when the nn package
is imported). The reference is the optimizers' and the network's own NumPy path."""

from __future__ import annotations

import ctypes
from functools import partial

import numpy as np

from . import fast
from .losses import get_loss
from .network import Network
from .optimizers import make_optimizer

# The self-test's optimizer steps: every kernel variant the relu pass does not cover.
_STEPS = {
    "adam": {"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01, "amsgrad": False},
    "adamw": {"lr": 0.1, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1, "amsgrad": False},
    "sgd": {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.01, "nesterov": True},
}


def _optimizer_steps(name: str, dtype: np.dtype) -> list[np.ndarray]:
    """Parameters and state after two steps of optimizer ``name`` on a few values."""

    p = np.array([0.5, -1.5, 0.0, 2.25, -3.0, 1e-3, 7.0], dtype)
    g = np.array([0.25, -0.5, 1.0, 0.0, 2.0, -1e-4, 3.5], dtype)
    opt = make_optimizer(name, p, g, **_STEPS[name])
    for _ in range(2):  # the first step and one after it (SGD's momentum differs)
        opt.step()
    return [p, *opt.state.values()]


def _relu_pass(dtype: np.dtype) -> list[np.ndarray]:
    """Output and gradients of a forward and backward pass through a small relu network."""

    net = Network([2, 3, 2], ["relu", "identity"], dtype=dtype)
    net.params[:] = np.linspace(-1.0, 1.0, net.params.size)  # some of z negative, one zero
    X = np.array([[0.5, -1.0], [2.0, 0.25], [0.0, 0.0]], dtype)
    y = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, -0.5]], dtype)
    net.loss_and_grad(X, y, get_loss("mse"))
    return [net.output().copy(), net.grads.copy()]


def self_test(lib: ctypes.CDLL) -> ctypes.CDLL:
    """``lib`` if its kernels give NumPy's bits on a few values, else OSError.

    The cache's checks say this user's build wrote the file; this says it computes what
    NumPy computes, before a run trusts it: a stub with the right symbol names (and a digest
    made for it) or a compiler that does not keep to IEEE order fails here. The reference is
    the optimizers' and the network's own NumPy path, run with ``fast._lib`` set to False, against
    the same calls with it set to the candidate (under ``fast._lock``, held by ``library``).
    """
    cases = [(f"{name} step", partial(_optimizer_steps, name)) for name in _STEPS]
    cases.append(("relu layer", _relu_pass))
    try:
        for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
            for what, run in cases:
                results = []
                for candidate in (lib, False):
                    fast._lib = candidate
                    results.append([a.tobytes() for a in run(dtype)])
                if results[0] != results[1]:
                    raise OSError(f"failed the self-test: its {what} in {dtype} is not NumPy's")
    finally:
        fast._lib = None
    return lib
