"""Gradient checks as the `gradcheck` command runs them: every combination, or one config."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .nn.activations import ACTIVATIONS
from .nn.gradcheck import gradcheck
from .nn.losses import LOSSES, get_loss
from .nn.network import Network

# The output activations each loss is checked with: the fused pairs, and through the
# general BP1 every activation an output layer can sensibly have under a regression loss.
OUTPUTS = {
    "mse": tuple(ACTIVATIONS),
    "mae": ("identity", "tanh", "sigmoid", "softmax"),
    "huber": ("identity", "tanh", "sigmoid", "softmax"),
    "binary_cross_entropy": ("sigmoid",),
    "cross_entropy": ("softmax",),
}


def random_problem(
    loss: str, n_out: int, rng: np.random.Generator, n: int = 6, n_in: int = 4, targets: str = ""
):
    """Rows and targets for ``loss``: class labels (cross-entropy), 0/1 columns (binary
    cross-entropy), normal values; ``targets`` "one-hot" or "multi-label": 0/1 rows of
    ``n_out`` columns, one 1 per row or any number."""
    X = rng.normal(size=(n, n_in))
    if targets == "one-hot":
        y = np.eye(n_out)[rng.integers(0, n_out, n)]
    elif targets == "multi-label":
        y = rng.integers(0, 2, (n, n_out)).astype(np.float64)
    elif loss == "cross_entropy":
        y = rng.integers(0, n_out, n)
    elif loss == "binary_cross_entropy":
        y = rng.integers(0, 2, (n, 1)).astype(np.float64)
    else:
        y = rng.normal(size=(n, n_out))
    return X, y


def check_all_combinations(eps: float = 1e-6, seed: int = 0) -> list[dict]:
    """Every hidden activation x (loss, output activation) on a small random float64 network."""
    rng = np.random.default_rng(seed)
    results = []
    for hidden in ACTIVATIONS:
        for loss_name in LOSSES:
            for output in OUTPUTS[loss_name]:
                n_out = 1 if loss_name == "binary_cross_entropy" else 3
                net = Network([4, 5, 4, n_out], [hidden, hidden, output], dtype=np.float64)
                net.init("xavier", rng)
                for b in net.b:
                    b[:] = rng.normal(0.0, 0.1, b.shape)
                X, y = random_problem(loss_name, n_out, rng)
                checks = gradcheck(net, X, y, get_loss(loss_name), eps=eps)
                results.append(_row(hidden, output, loss_name, checks))
    # Row weights (class_weight, sample_weight): each loss with its usual output, fused or not.
    for loss_name, output in WEIGHTED:
        n_out = 1 if loss_name == "binary_cross_entropy" else 3
        net = Network([4, 5, 4, n_out], ["tanh", "tanh", output], dtype=np.float64)
        net.init("xavier", rng)
        X, y = random_problem(loss_name, n_out, rng)
        w = rng.uniform(0.1, 3.0, len(X))
        checks = gradcheck(net, X, y, get_loss(loss_name), eps=eps, w=w)
        results.append(_row("tanh", output, f"{loss_name} (weighted)", checks))
    # Classification on k output units without a softmax (data.task): one-hot rows under
    # mse and binary cross-entropy (the textbook's networks), and multi-label 0/1 rows.
    for loss_name, targets in CLASS_ROWS:
        net = Network([4, 5, 4, 3], ["tanh", "tanh", "sigmoid"], dtype=np.float64)
        net.init("xavier", rng)
        X, y = random_problem(loss_name, 3, rng, targets=targets)
        checks = gradcheck(net, X, y, get_loss(loss_name), eps=eps)
        results.append(_row("tanh", "sigmoid", f"{loss_name} ({targets}, 3 units)", checks))
    return results


CLASS_ROWS = (
    ("mse", "one-hot"),
    ("binary_cross_entropy", "one-hot"),
    ("binary_cross_entropy", "multi-label"),
)


WEIGHTED = (
    ("mse", "identity"),
    ("mae", "identity"),
    ("huber", "identity"),
    ("binary_cross_entropy", "sigmoid"),
    ("cross_entropy", "softmax"),
)


def _row(hidden: str, output: str, loss: str, checks) -> dict:
    worst = max(checks, key=lambda c: c.rel_error)
    return {
        "hidden": hidden,
        "output": output,
        "loss": loss,
        "rel_error": worst.rel_error,
        "max_abs_error": max(c.max_abs_error for c in checks),
        "worst_tensor": worst.name,
        "kinks": sum(c.kinks for c in checks),
    }


def check_config(
    path: str | Path | list[str | Path],
    overrides: list[str],
    eps: float = 1e-6,
    rows: int = 8,
    max_entries: int = 2000,
) -> list[dict]:
    """The config's model and loss, in float64, on ``rows`` training rows of its data."""
    from .config import config_source, load_config
    from .training import setup

    cfg = load_config(path, [*overrides, "model.dtype=float64"])
    s = setup(cfg, config_source(path))
    X, y = s.prep.X["train"][:rows], s.prep.y["train"][:rows]
    checks = gradcheck(
        s.net,
        X,
        y,
        s.loss,
        eps=eps,
        max_per_tensor=max_entries,
        rng=np.random.default_rng(cfg.seed),
    )
    return [
        {
            "tensor": c.name,
            "shape": list(c.shape),
            "checked": c.checked,
            "rel_error": c.rel_error,
            "max_abs_error": c.max_abs_error,
            "noise": c.noise,
            "kinks": c.kinks,
        }
        for c in checks
    ]
