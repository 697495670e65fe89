"""One forward and one backward pass, step by step, in docs/backpropagation.md's notation:
`backprop trace`.

The forward pass is the network's own (``Network.forward``, dropout off); the backward pass
is replayed here equation by equation from the network's buffers (z^l, a^l), so every
intermediate quantity can be shown:

    z^l = a^(l-1) W^l + b^l,   a^l = sigma(z^l)  (+ a^(l-1) for a residual layer)
    delta^L = dC/da^L * sigma'(z^L)                  (BP1; (a^L - y) / n when fused)
    dC/da^l = delta^(l+1) W^(l+1)^T  (+ dC/da^(l+1) when layer l+1 is residual)
    delta^l = dC/da^l * sigma'(z^l)                  (BP2)
    dC/dW^l = a^(l-1)^T delta^l                      (BP3)
    dC/db^l = sum over rows of delta^l               (BP4)

Layers are counted from 0 as in the code (textbooks often count from 1 or 2); a^(-1) is the input
x. Then the configured optimizer takes one step from these gradients (a fresh optimizer,
its first step, with clipping as the trainer applies it) and the change it makes to each
W^l and b^l is reported; the parameters are restored afterwards.

Everything is returned as plain data (NumPy arrays in the config's dtype); the CLI's --json
writes it through ``store.files.json_safe``. Nothing here prints.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import ConfigError, WeightsError
from .nn.losses import Loss
from .nn.network import Network
from .nn.optimizers import Optimizer


def _sigma_prime(net: Network, l: int, z: np.ndarray, h: np.ndarray) -> np.ndarray | None:
    """sigma'(z^l) for an elementwise activation (its backward step applied to ones); None for softmax."""
    act = net.acts[l]
    if not act.elementwise:
        return None
    return act.backward(z, h, np.ones_like(z), np.empty_like(z))


def trace_pass(net: Network, loss: Loss, X: np.ndarray, y: np.ndarray) -> dict:
    """Forward and backward pass over the rows X (n, n_features) with targets y, dropout off.

    Returns ``{"x", "y", "C", "fused", "layers": [...]}`` where each layer holds W, b, z, a
    (forward), grad_a = dC/da^l (None where BP1 is fused), sigma_prime (None for softmax),
    back = delta^(l+1) W^(l+1)^T (hidden layers), delta, dW, db.
    """
    X = np.ascontiguousarray(X, dtype=net.dtype)
    net.forward(X, train=False)
    z, h, a = net.last_pass()
    L = net.n_layers - 1
    C = float(loss.value(z[L], a[L], y))

    grad_a: list[np.ndarray | None] = [None] * (L + 1)
    sig: list[np.ndarray | None] = [_sigma_prime(net, l, z[l], h[l]) for l in range(L + 1)]
    back: list[np.ndarray | None] = [None] * (L + 1)
    delta: list[np.ndarray] = [np.empty(0)] * (L + 1)

    # BP1: the output error.
    fused = loss.fused_with is not None and loss.fused_with == net.activation_names[L]
    delta[L], grad_a[L] = _output_error(net, loss, z[L], h[L], y, sig[L], fused)

    # BP2: the error of each hidden layer, from the layer after it.
    for l in range(L - 1, -1, -1):
        back[l] = delta[l + 1] @ net.W[l + 1].T
        g = back[l]
        if net.residual[l + 1]:
            g = g + grad_a[l + 1]  # the skip connection passes dC/da^(l+1) straight through
        grad_a[l] = g
        delta[l] = _times_sigma_prime(net, l, z[l], h[l], g, sig[l])

    layers = []
    for l in range(L + 1):
        a_prev = X if l == 0 else a[l - 1]
        layers.append(
            {
                "layer": l,
                "activation": net.activation_names[l],
                "residual": net.residual[l],
                "dropout": net.dropout[l],
                "W": net.W[l].copy(),
                "b": net.b[l].copy(),
                "z": z[l],
                "a": a[l],
                "grad_a": grad_a[l],
                "sigma_prime": sig[l],
                "back": back[l],
                "delta": delta[l],
                "dW": a_prev.T @ delta[l],  # BP3
                "db": np.add.reduce(delta[l], axis=0),  # BP4
            }
        )
    return {"x": X, "y": y, "C": C, "fused": fused, "layers": layers}


def _output_error(net, loss, z, h, y, sig, fused: bool):
    """(delta^L, dC/da^L or None): BP1, fused where the loss and output activation simplify."""
    n = len(h)
    if fused and loss.name == "cross_entropy":
        Y = np.zeros_like(h)
        Y[np.arange(n), y] = 1.0
        return (h - Y) * (1.0 / n), None  # (a^L - y) / n, softmax' and dC/da cancelled
    if fused:
        return (h - y) * (1.0 / h.size), None  # (a^L - y) / (n k), sigmoid' and dC/da cancelled
    grad_a = loss.grad(h, y).astype(net.dtype, copy=False)
    return _times_sigma_prime(net, len(net.acts) - 1, z, h, grad_a, sig), grad_a


def _times_sigma_prime(net, l, z, h, grad_a, sig) -> np.ndarray:
    """dC/da^l * sigma'(z^l) (elementwise), or softmax's Jacobian-vector product."""
    if sig is not None:
        return grad_a * sig
    return net.acts[l].backward(z, h, grad_a, np.empty_like(z))


def trace_update(
    net: Network,
    layers: list[dict],
    make_optimizer: Callable[[Network], Optimizer],
    lr: float,
    clip_grad_norm: float | None = None,
    clip_grad_value: float | None = None,
) -> dict:
    """One step of a fresh optimizer from the traced gradients; adds update_W/update_b to ``layers``.

    The gradients are clipped as the trainer clips them. The parameters and gradient
    buffers are restored afterwards. Returns what was done (lr, clipping) as plain data.
    """
    params, grads = net.params.copy(), net.grads.copy()
    info: dict = {"lr": lr, "clip": None}
    try:
        for l, layer in enumerate(layers):
            net.gW[l][...] = layer["dW"]
            net.gb[l][...] = layer["db"]
        if clip_grad_norm is not None:
            norm = math.sqrt(float(np.dot(net.grads, net.grads)))
            coef = clip_grad_norm / (norm + 1e-6)
            info["clip"] = {"clip_grad_norm": clip_grad_norm, "norm": norm, "scaled": coef < 1.0}
            if coef < 1.0:
                net.grads *= coef
                info["clip"]["factor"] = coef
        if clip_grad_value is not None:
            clipped = int(np.count_nonzero(np.abs(net.grads) > clip_grad_value))
            np.clip(net.grads, -clip_grad_value, clip_grad_value, out=net.grads)
            info["clip"] = {"clip_grad_value": clip_grad_value, "entries": clipped}
        opt = make_optimizer(net)
        opt.lr = lr
        opt.step()
        for l, layer in enumerate(layers):
            layer["update_W"] = net.W[l] - layer["W"]
            layer["update_b"] = net.b[l] - layer["b"]
        info["name"] = opt.name
        info["hyper"] = {k: v for k, v in opt.hyper.items() if k != "lr"}
    finally:
        np.copyto(net.params, params)
        np.copyto(net.grads, grads)
    return info


def trace_config(
    config: str | Path | list[str | Path],
    overrides: list[str] | None = None,
    sample: int = 0,
    rows: int = 1,
    weights: str | Path | None = None,
) -> dict:
    """The trace of a config's network on training rows sample .. sample + rows - 1.

    With ``weights`` the parameters come from that weights file (the architecture must
    match the config's); otherwise they are the config's initial weights (its seed).
    """
    from .config import config_source, load_config
    from .training import build_optimizer, build_schedule, setup

    if rows < 1:
        raise ConfigError(f"--rows: must be >= 1 (got {rows})")
    if sample < 0:
        raise ConfigError(f"--sample: must be >= 0 (got {sample})")
    cfg = load_config(config, overrides)
    s = setup(cfg, config_source(config))
    net, prep = s.net, s.prep
    n_train = len(prep.X["train"])
    if sample + rows > n_train:
        raise ConfigError(
            f"--sample {sample} --rows {rows}: the training split has {n_train} rows "
            f"(0 to {n_train - 1})"
        )
    if weights is not None:
        _load_parameters(net, weights)
    X = prep.X["train"][sample : sample + rows]
    y = prep.y["train"][sample : sample + rows]
    result = trace_pass(net, s.loss, X, y)
    t = cfg.training
    result["optimizer"] = trace_update(
        net,
        result["layers"],
        lambda n: build_optimizer(cfg, n),
        build_schedule(cfg).lr(0),
        t.clip_grad_norm,
        t.clip_grad_value,
    )
    return result | _description(s, config, weights, sample, rows)


def _description(s, config, weights, sample: int, rows: int) -> dict:
    """What was traced: the config, the network, the rows (raw and as the dataset has them)."""
    cfg, net, prep = s.cfg, s.net, s.prep
    idx = prep.indices["train"][sample : sample + rows]
    return {
        "config": str(config),
        "name": cfg.name,
        "dtype": str(net.dtype),
        "loss": cfg.loss,
        "task": prep.task,
        "sizes": net.sizes,
        "weights": str(weights) if weights is not None else None,
        "sample": sample,
        "rows": rows,
        "dataset_rows": idx.tolist(),
        "feature_names": list(prep.dataset.feature_names),
        "raw_x": [
            [_raw(v) for v in row]
            for row in prep.dataset.features.iloc[idx].itertuples(index=False)
        ],
        "targets": [_plain(v) for v in np.asarray(prep.dataset.targets[idx]).tolist()],
        "classes": [_plain(c) for c in prep.classes] if prep.classes is not None else None,
        "dropout_off": [l for l, p in enumerate(net.dropout) if p],
        "standardized": cfg.data.standardize,
    }


def _raw(v):
    """A raw feature value as the trace shows it: numbers as floats, a gap as None, text as it is."""
    if isinstance(v, bool | np.bool_) or isinstance(v, str):
        return v if isinstance(v, str) else bool(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return None if np.isnan(f) else f


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def _load_parameters(net: Network, path: str | Path) -> None:
    from .store import weights

    spec, arrays = weights.load_weights(path)
    if not weights.same_architecture(spec, net):
        raise WeightsError(
            f"{path}: --weights needs the config's architecture: the file has sizes "
            f"{spec.sizes} ({', '.join(spec.activations)}), the config "
            f"{net.sizes} ({', '.join(net.activation_names)})"
        )
    weights.load_parameters(net, arrays)
