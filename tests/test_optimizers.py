"""Optimizers mean exactly what torch.optim means by the same name.

The reference below is written from the algorithm boxes in the docstrings of
torch.optim.SGD, RMSprop, Adam and AdamW (torch/optim/{sgd,rmsprop,adam,adamw}.py),
one scalar at a time in float64, in the literal form of the pseudocode
(bias-corrected m_hat / v_hat, max over the raw v for amsgrad, ...). It shares no code
with backprop_cli.nn.optimizers. A last test runs torch.optim itself, only when torch
is importable.
"""

from __future__ import annotations

import copy
import math
import re

import numpy as np
import pytest

from backprop_cli.config import optimizer_defaults
from backprop_cli.nn import fast, kernel_cache

from .conftest import make_optimizer


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def backend(request, monkeypatch):
    """Every rule is checked on both paths: the compiled kernel (nn/fast.py) and NumPy's."""
    if request.param == "numpy":
        monkeypatch.setenv("BACKPROP_FAST", "0")
    elif kernel_cache.compiler() is None:
        pytest.skip("no C compiler")
    else:
        assert fast.library() is not None, fast.why_not  # a compiler that fails is a failure here
    return request.param


# torch.optim's defaults, from the signatures of torch.optim.SGD / RMSprop / Adam / AdamW.
TORCH_DEFAULTS = {
    "sgd": {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False},
    "rmsprop": {
        "lr": 1e-2,
        "alpha": 0.99,
        "eps": 1e-8,
        "weight_decay": 0.0,
        "momentum": 0.0,
        "centered": False,
    },
    "adam": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False},
    "adamw": {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 1e-2,
        "amsgrad": False,
    },
}


# ---------------------------------------------------------------------------------------
# Reference: torch.optim's pseudocode, per element, float64.
# ---------------------------------------------------------------------------------------


def _ref_sgd_element(h, t, theta, g, s):
    lam, mu, tau = h["weight_decay"], h["momentum"], h["dampening"]
    if lam != 0:
        g = g + lam * theta
    if mu != 0:
        if t > 1:
            s["b"] = mu * s["b"] + (1 - tau) * g
        else:
            s["b"] = g
        if h["nesterov"]:
            g = g + mu * s["b"]
        else:
            g = s["b"]
    return theta - h["lr"] * g


def _ref_rmsprop_element(h, t, theta, g, s):
    alpha, lam, mu, eps, lr = h["alpha"], h["weight_decay"], h["momentum"], h["eps"], h["lr"]
    if lam != 0:
        g = g + lam * theta
    s["v"] = alpha * s["v"] + (1 - alpha) * g**2
    v_tilde = s["v"]
    if h["centered"]:
        s["g_ave"] = s["g_ave"] * alpha + (1 - alpha) * g
        v_tilde = v_tilde - s["g_ave"] ** 2
    if mu > 0:
        s["b"] = mu * s["b"] + g / (math.sqrt(v_tilde) + eps)
        return theta - lr * s["b"]
    return theta - lr * g / (math.sqrt(v_tilde) + eps)


def _ref_adam_element(h, t, theta, g, s, decoupled):
    b1, b2 = h["betas"]
    lr, lam, eps = h["lr"], h["weight_decay"], h["eps"]
    if decoupled:
        theta = theta - lr * lam * theta
    elif lam != 0:
        g = g + lam * theta
    s["m"] = b1 * s["m"] + (1 - b1) * g
    s["v"] = b2 * s["v"] + (1 - b2) * g**2
    m_hat = s["m"] / (1 - b1**t)
    if h["amsgrad"]:
        s["v_max"] = max(s["v_max"], s["v"])
        v_hat = s["v_max"] / (1 - b2**t)
    else:
        v_hat = s["v"] / (1 - b2**t)
    return theta - lr * m_hat / (math.sqrt(v_hat) + eps)


def _ref_element(name, h, t, theta, g, s):
    if name == "sgd":
        return _ref_sgd_element(h, t, theta, g, s)
    if name == "rmsprop":
        return _ref_rmsprop_element(h, t, theta, g, s)
    return _ref_adam_element(h, t, theta, g, s, decoupled=(name == "adamw"))


def reference_run(name, hyper, p0, grad_fn, n_steps):
    """theta after n_steps of torch's algorithm box, one Python float at a time."""
    h = {**TORCH_DEFAULTS[name], **hyper}
    theta = [float(x) for x in p0]
    states = [{"b": 0.0, "v": 0.0, "g_ave": 0.0, "m": 0.0, "v_max": 0.0} for _ in theta]
    for t in range(1, n_steps + 1):
        grads = [float(x) for x in grad_fn(t, np.array(theta))]
        theta = [_ref_element(name, h, t, theta[i], grads[i], states[i]) for i in range(len(theta))]
    return np.array(theta)


# ---------------------------------------------------------------------------------------
# A problem whose gradient depends on the parameters (so state and order matter).
# ---------------------------------------------------------------------------------------

DIM = 6
N_STEPS = 8


class Problem:
    """g_t = A (p - c) + noise_t with A symmetric positive definite. c ~ 3, so every p
    stays far from 0 and rtol alone is meaningful. The noise scale alternates 1, 0.05,
    so g^2 sometimes falls below the running v (amsgrad's max then matters)."""

    def __init__(self, seed: int = 0, n_steps: int = 10):
        rng = np.random.default_rng(seed)
        m = rng.normal(size=(DIM, DIM))
        self.A = m @ m.T / DIM + 0.5 * np.eye(DIM)
        self.c = 3.0 + rng.uniform(-0.5, 0.5, size=DIM)
        self.p0 = self.c + rng.normal(size=DIM)
        scales = np.where(np.arange(n_steps) % 2 == 0, 1.0, 0.05)
        self.noise = rng.normal(size=(n_steps, DIM)) * scales[:, None]

    def grad(self, t: int, p: np.ndarray) -> np.ndarray:
        """The gradient at step t (1-based) for parameters p."""
        return self.A @ (p - self.c) + self.noise[t - 1]


PROBLEM = Problem()


def run_ours(name, hyper, problem, n_steps, dtype=np.float64, params=None, opt=None):
    """Steps the optimizer under test with grads recomputed from the current params."""
    if params is None:
        params = problem.p0.astype(dtype)
    if opt is None:
        grads = np.zeros_like(params)
        opt = make_optimizer(name, params, grads, **hyper)
    for _ in range(n_steps):
        t = opt.t + 1
        opt.grads[...] = problem.grad(t, opt.params.astype(np.float64))
        opt.step()
    return opt


CASES = [
    pytest.param("sgd", {"lr": 0.1}, id="sgd-plain"),
    pytest.param("sgd", {"lr": 0.05, "momentum": 0.9}, id="sgd-momentum"),
    pytest.param("sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}, id="sgd-dampening"),
    pytest.param("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True}, id="sgd-nesterov"),
    pytest.param("sgd", {"lr": 0.1, "weight_decay": 0.2}, id="sgd-wd"),
    pytest.param("sgd", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.2}, id="sgd-momentum-wd"),
    pytest.param("rmsprop", {}, id="rmsprop-defaults"),
    pytest.param("rmsprop", {"alpha": 0.9}, id="rmsprop-alpha"),
    pytest.param("rmsprop", {"centered": True}, id="rmsprop-centered"),
    pytest.param("rmsprop", {"momentum": 0.9}, id="rmsprop-momentum"),
    pytest.param(
        "rmsprop",
        {"lr": 0.005, "alpha": 0.8, "centered": True, "momentum": 0.5, "weight_decay": 0.1},
        id="rmsprop-centered-momentum-wd",
    ),
    pytest.param("adam", {}, id="adam-defaults"),
    pytest.param("adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-3}, id="adam-betas-eps"),
    pytest.param("adam", {"lr": 0.02, "weight_decay": 0.1}, id="adam-wd-l2"),
    pytest.param("adam", {"lr": 0.02, "betas": (0.9, 0.6), "amsgrad": True}, id="adam-amsgrad"),
    pytest.param("adamw", {}, id="adamw-defaults"),
    pytest.param(
        "adamw",
        {"lr": 0.02, "betas": (0.9, 0.6), "weight_decay": 0.1, "amsgrad": True},
        id="adamw-wd-amsgrad",
    ),
]


@pytest.mark.parametrize("name, hyper", CASES)
def test_matches_torch_pseudocode(name, hyper):
    opt = run_ours(name, hyper, PROBLEM, N_STEPS)
    expected = reference_run(name, hyper, PROBLEM.p0, PROBLEM.grad, N_STEPS)
    assert opt.t == N_STEPS
    np.testing.assert_allclose(opt.params, expected, rtol=1e-12, atol=0)


def test_table_is_sensitive():
    """Each case's defining hyperparameter changes the reference trajectory, so the table
    would catch an optimizer that ignored it (amsgrad especially: the max must bite)."""
    ends = {}
    for case in CASES:
        name, hyper = case.values
        ends[case.id] = reference_run(name, hyper, PROBLEM.p0, PROBLEM.grad, N_STEPS)
    ids = list(ends)
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            assert not np.allclose(ends[a], ends[b], rtol=1e-9, atol=0), (a, b)
    for name, hyper in [
        ("adam", {"lr": 0.02, "betas": (0.9, 0.6)}),
        ("adamw", {"lr": 0.02, "betas": (0.9, 0.6), "weight_decay": 0.1}),
    ]:
        without = reference_run(name, hyper, PROBLEM.p0, PROBLEM.grad, N_STEPS)
        with_ams = reference_run(
            name, {**hyper, "amsgrad": True}, PROBLEM.p0, PROBLEM.grad, N_STEPS
        )
        assert not np.allclose(without, with_ams, rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", sorted(TORCH_DEFAULTS))
def test_defaults_are_torchs(name):
    p = np.ones(3)
    opt = make_optimizer(name, p, np.zeros(3))
    for key, value in TORCH_DEFAULTS[name].items():
        assert opt.hyper[key] == value, key
    assert opt.lr == TORCH_DEFAULTS[name]["lr"]
    assert opt.t == 0


def test_default_sgd_step_is_lr_1e_3():
    p = np.array([1.0, -2.0])
    opt = make_optimizer("sgd", p, np.array([10.0, 4.0]))
    opt.step()
    # p - 1e-3 g = [1 - 0.01, -2 - 0.004]
    np.testing.assert_allclose(p, [0.99, -2.004], rtol=1e-15)


# ---------------------------------------------------------------------------------------
# Steps worked out by hand.
# ---------------------------------------------------------------------------------------


def test_sgd_by_hand():
    # plain: p - lr g = 1 - 0.1 * 0.5 = 0.95 ; -2 - 0.1 * 0.25 = -2.025
    p = np.array([1.0, -2.0])
    make_optimizer("sgd", p, np.array([0.5, 0.25]), lr=0.1).step()
    np.testing.assert_allclose(p, [0.95, -2.025], rtol=1e-14)

    # nesterov, one step: b = g = 0.5; g <- g + mu b = 0.5 + 0.45 = 0.95; p = 1 - 0.095
    p = np.array([1.0])
    make_optimizer("sgd", p, np.array([0.5]), lr=0.1, momentum=0.9, nesterov=True).step()
    np.testing.assert_allclose(p, [0.905], rtol=1e-14)

    # momentum 0.9, dampening 0.5, same g = 0.5 twice. torch sets b = g at t = 1 (no
    # dampening on the first step): b = 0.5, p = 1 - 0.05 = 0.95.
    # t = 2: b = 0.9 * 0.5 + (1 - 0.5) * 0.5 = 0.7, p = 0.95 - 0.07 = 0.88.
    p = np.array([1.0])
    opt = make_optimizer("sgd", p, np.array([0.5]), lr=0.1, momentum=0.9, dampening=0.5)
    opt.step()
    np.testing.assert_allclose(p, [0.95], rtol=1e-14)
    opt.step()
    np.testing.assert_allclose(p, [0.88], rtol=1e-14)

    # weight decay 0.1 + momentum 0.9, g = [0.5, 0.25], p = [1, -2]:
    # t=1: g' = g + 0.1 p = [0.6, 0.05] = b; p = [1 - 0.06, -2 - 0.005] = [0.94, -2.005]
    # t=2: g' = [0.5 + 0.094, 0.25 - 0.2005] = [0.594, 0.0495];
    #      b = 0.9 [0.6, 0.05] + g' = [1.134, 0.0945]; p = [0.94 - 0.1134, -2.005 - 0.00945]
    p, g = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    opt = make_optimizer("sgd", p, g, lr=0.1, momentum=0.9, weight_decay=0.1)
    opt.step()
    opt.step()
    np.testing.assert_allclose(p, [0.8266, -2.01445], rtol=1e-13)
    np.testing.assert_array_equal(g, [0.5, 0.25])  # weight decay never writes into grads


def test_rmsprop_by_hand():
    # defaults lr 0.01, alpha 0.99, eps 1e-8. v = 0.01 g^2 = [0.04, 0.0025],
    # sqrt v = [0.2, 0.05]; p -= 0.01 g / (sqrt v + 1e-8):
    #   1 - 0.02 / 0.20000001 = 1 - 0.1 / (1 + 5e-8) = 0.9000000049999997...
    #  -1 + 0.005 / 0.05000001 = -1 + 0.1 / (1 + 2e-7) = -0.9000000199999960...
    p = np.array([1.0, -1.0])
    make_optimizer("rmsprop", p, np.array([2.0, -0.5])).step()
    np.testing.assert_allclose(p, [0.90000000499999975, -0.90000001999999600], rtol=1e-13)

    # centered, g = 2: v = 0.04, g_ave = 0.02, v~ = 0.04 - 0.0004 = 0.0396,
    # sqrt(0.0396) = 0.19899748742132399; p = 1 - 0.02 / (0.19899748742132399 + 1e-8)
    p = np.array([1.0])
    make_optimizer("rmsprop", p, np.array([2.0]), centered=True).step()
    np.testing.assert_allclose(p, [0.89949622352458359], rtol=1e-13)

    # momentum 0.5, same g = 2 twice; b accumulates g / (sqrt v + eps):
    # t=1: v = 0.04, g / (0.2 + 1e-8) = 9.9999995; b = 9.9999995; p = 1 - 0.099999995
    # t=2: v = 0.99 * 0.04 + 0.01 * 4 = 0.0796, sqrt v = 0.28213471959331771,
    #      g / (sqrt v + 1e-8) = 7.0888117988270860; b = 0.5 * 9.9999995 + 7.0888117988270860
    #      = 12.088811548827086; p = 0.900000005 - 0.12088811548827086 = 0.77911188951172914
    p = np.array([1.0])
    opt = make_optimizer("rmsprop", p, np.array([2.0]), momentum=0.5)
    opt.step()
    np.testing.assert_allclose(p, [0.900000005], rtol=1e-13)
    opt.step()
    np.testing.assert_allclose(p, [0.77911188951172914], rtol=1e-13)


def test_adam_by_hand():
    # t=1: m = 0.1 g, v = 0.001 g^2, m_hat = g, v_hat = g^2, so the step is
    # lr g / (|g| + eps) ~ lr sign(g), whatever |g| is:
    #   1 - 0.1 * 0.5 / (0.5 + 1e-8) = 1 - 0.1 / (1 + 2e-8) = 0.90000000199999996
    #  -1 + 0.1 * 2 / (2 + 1e-8)    = -1 + 0.1 / (1 + 5e-9) = -0.90000000049999999
    p = np.array([1.0, -1.0])
    opt = make_optimizer("adam", p, np.array([0.5, -2.0]), lr=0.1)
    opt.step()
    np.testing.assert_allclose(p, [0.90000000199999996, -0.90000000049999999], rtol=1e-13)

    # t=2 on the first element with g = -0.25:
    #   m = 0.9 * 0.05 + 0.1 * (-0.25) = 0.02;   m_hat = 0.02 / 0.19 = 0.10526315789473684
    #   v = 0.999 * 0.00025 + 0.001 * 0.0625 = 0.00031225;
    #   v_hat = 0.00031225 / (1 - 0.999^2 = 0.001999) = 0.15620310155077539
    #   p = 0.900000002 - 0.1 * 0.10526315789473684 / (0.39522538... + 1e-8)
    #     = 0.87336629870784616
    opt.grads[:] = [-0.25, -2.0]
    opt.step()
    np.testing.assert_allclose(p[0], 0.87336629870784616, rtol=1e-13)

    # eps = 0.5 at t=1: sqrt(v_hat) = |g| = 0.5, step = 0.1 * 0.5 / (0.5 + 0.5) = 0.05
    p = np.array([1.0])
    make_optimizer("adam", p, np.array([0.5]), lr=0.1, eps=0.5).step()
    np.testing.assert_allclose(p, [0.95], rtol=1e-13)

    # L2 weight decay 0.5 is added to g BEFORE the moments: g' = [0.5 + 0.5, -2 - 0.5]
    # and at t=1 the step is still lr g'/(|g'| + eps):
    #   1 - 0.1 / (1 + 1e-8) = 0.90000000099999999 ; -1 + 0.1 / (1 + 4e-9) = -0.90000000040
    p, g = np.array([1.0, -1.0]), np.array([0.5, -2.0])
    make_optimizer("adam", p, g, lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(p, [0.90000000099999999, -0.90000000039999999], rtol=1e-13)
    np.testing.assert_array_equal(g, [0.5, -2.0])


def test_adamw_by_hand():
    # decoupled: p <- p (1 - lr wd) = p (1 - 0.1 * 0.5) = 0.95 p, then the Adam step on
    # the raw g (t=1: lr g / (|g| + eps)):
    #   0.95 - 0.1 / (1 + 2e-8) = 0.85000000199999996 ; -0.95 + 0.1 / (1 + 5e-9) = -0.8500000005
    p = np.array([1.0, -1.0])
    make_optimizer("adamw", p, np.array([0.5, -2.0]), lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(p, [0.85000000199999996, -0.85000000049999999], rtol=1e-13)

    # default weight decay is 0.01: p (1 - 0.1 * 0.01) = 0.999, then - 0.1 / (1 + 2e-8)
    p = np.array([1.0])
    make_optimizer("adamw", p, np.array([0.5]), lr=0.1).step()
    np.testing.assert_allclose(p, [0.89900000199999996], rtol=1e-13)


# ---------------------------------------------------------------------------------------
# Validation.
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, hyper, fragment",
    [
        ("sgd", {"lr": -0.1}, "-0.1"),
        ("rmsprop", {"lr": -0.001}, "-0.001"),
        ("adam", {"lr": -2.0}, "-2.0"),
        ("adamw", {"lr": float("nan")}, "nan"),
        ("sgd", {"momentum": -0.5}, "-0.5"),
        ("sgd", {"weight_decay": -0.25}, "-0.25"),
        ("sgd", {"nesterov": True}, "Nesterov"),
        ("sgd", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "Nesterov"),
        ("rmsprop", {"eps": -1e-8}, "-1e-08"),
        ("rmsprop", {"alpha": -0.5}, "-0.5"),
        ("rmsprop", {"momentum": -0.9}, "-0.9"),
        ("rmsprop", {"weight_decay": -0.75}, "-0.75"),
        ("adam", {"betas": (0.9, 1.0)}, "1.0"),
        ("adam", {"betas": (1.0, 0.999)}, "1.0"),
        ("adam", {"betas": (-0.1, 0.999)}, "-0.1"),
        ("adamw", {"betas": [0.9, 1.5]}, "1.5"),
        ("adam", {"eps": -1.0}, "-1.0"),
        ("adamw", {"weight_decay": -0.01}, "-0.01"),
        ("adam", {"momentum": 0.9}, "momentum"),
        ("sgd", {"betas": (0.9, 0.999)}, "betas"),
        ("rmsprop", {"learning_rate": 0.1}, "learning_rate"),
    ],
)
def test_invalid_hyperparameters(name, hyper, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        make_optimizer(name, np.zeros(2), np.zeros(2), **hyper)


def test_unknown_optimizer_name():
    with pytest.raises(ValueError, match="adagrad"):
        make_optimizer("adagrad", np.zeros(2), np.zeros(2))


@pytest.mark.parametrize(
    "name, hyper",
    [
        ("sgd", {"lr": 0.0, "momentum": 0.0}),
        ("sgd", {"nesterov": True, "momentum": 0.9}),
        ("rmsprop", {"alpha": 0.0, "eps": 0.0}),
        ("adam", {"betas": (0.0, 0.0), "eps": 0.0, "lr": 0.0}),
    ],
)
def test_boundary_values_accepted(name, hyper):
    """torch accepts these (lr = 0, beta = 0, ...); so must we."""
    make_optimizer(name, np.ones(2), np.ones(2), **hyper)


# ---------------------------------------------------------------------------------------
# Buffers: dtype, in-place, grads untouched.
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, hyper", CASES)
def test_float32_in_place(name, hyper):
    params = PROBLEM.p0.astype(np.float32)
    view = params[1:4]
    grads = np.zeros_like(params)
    opt = make_optimizer(name, params, grads, **hyper)
    before = params.copy()
    for _ in range(5):
        t = opt.t + 1
        grads[...] = PROBLEM.grad(t, params.astype(np.float64))
        g_before = grads.copy()
        opt.step()
        np.testing.assert_array_equal(grads, g_before)  # step reads grads, never writes
    assert opt.params is params
    assert params.dtype == np.float32 and grads.dtype == np.float32
    for key, value in opt.state_dict().items():
        if isinstance(value, np.ndarray):
            assert value.dtype == np.float32, key
    assert not np.array_equal(params, before)
    np.testing.assert_array_equal(view, params[1:4])
    assert np.shares_memory(view, params)
    # and the float32 trajectory follows the float64 reference to float32 precision
    expected = reference_run(name, hyper, PROBLEM.p0.astype(np.float32), PROBLEM.grad, 5)
    np.testing.assert_allclose(params, expected, rtol=1e-4)


# ---------------------------------------------------------------------------------------
# state_dict round trip.
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, hyper", CASES)
def test_state_dict_round_trip(name, hyper):
    straight = run_ours(name, hyper, PROBLEM, 6)

    first = run_ours(name, hyper, PROBLEM, 3)
    # deepcopy, as with torch: state_dict() hands out the live buffers, not copies
    saved = copy.deepcopy(first.state_dict())
    saved_params = first.params.copy()
    assert saved["t"] == 3

    params = saved_params.copy()
    resumed = make_optimizer(name, params, np.zeros_like(params), **hyper)
    resumed.load_state_dict(saved)
    assert resumed.t == 3
    run_ours(name, hyper, PROBLEM, 3, opt=resumed)
    assert resumed.t == 6
    np.testing.assert_array_equal(resumed.params, straight.params)

    # the restored state is what makes the difference (except for stateless plain SGD)
    stateless = name == "sgd" and not hyper.get("momentum", 0)
    if not stateless:
        params = saved_params.copy()
        fresh = run_ours(name, hyper, PROBLEM, 3, params=params)
        assert not np.allclose(fresh.params, straight.params, rtol=1e-9, atol=0)

    # loading copies the arrays in: mutating the saved dict afterwards changes nothing
    for value in saved.values():
        if isinstance(value, np.ndarray):
            value[...] = 1e6
    for key, value in resumed.state_dict().items():
        if isinstance(value, np.ndarray) and value.size:
            assert not np.any(value == 1e6), key


# ---------------------------------------------------------------------------------------
# Side by side with torch.optim (only when torch is installed).
# ---------------------------------------------------------------------------------------

TORCH_NAMES = {"sgd": "SGD", "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW"}


@pytest.mark.parametrize("name, hyper", CASES)
def test_side_by_side_with_torch(name, hyper):
    torch = pytest.importorskip("torch")
    n_steps = 10
    problem = Problem(seed=1, n_steps=n_steps)
    ours = run_ours(name, hyper, problem, n_steps)

    theta = torch.nn.Parameter(torch.tensor(problem.p0, dtype=torch.float64))
    opt = getattr(torch.optim, TORCH_NAMES[name])([theta], **hyper)
    for t in range(1, n_steps + 1):
        g = problem.grad(t, theta.detach().numpy().copy())
        theta.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    np.testing.assert_allclose(ours.params, theta.detach().numpy(), rtol=1e-10, atol=0)


@pytest.mark.parametrize("name", sorted(TORCH_NAMES))
def test_config_defaults_equal_torch_defaults(name):
    """The config is the one home of the defaults: each optimizer's equal torch.optim's."""
    torch = pytest.importorskip("torch")
    theta = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    theirs = getattr(torch.optim, TORCH_NAMES[name])([theta]).defaults
    ours = optimizer_defaults(name)
    assert set(ours) == set(make_optimizer(name, np.zeros(2), np.zeros(2)).hyper)
    for key, value in ours.items():
        want = theirs[key]
        assert (tuple(value) if isinstance(value, list) else value) == want, key


@pytest.mark.parametrize("name", sorted(TORCH_NAMES))
def test_nn_has_no_defaults_of_its_own(name):
    """nn's optimizers take every hyperparameter: a default there would be a second home."""
    from backprop_cli.nn.optimizers import make_optimizer as nn_make_optimizer

    with pytest.raises(ValueError, match="missing"):
        nn_make_optimizer(name, np.zeros(2), np.zeros(2), lr=0.1)


# ---------------------------------------------------------------------------------------
# decay_biases: false, weight decay on the weights alone (torch's two parameter groups).
# ---------------------------------------------------------------------------------------

DECAY_CASES = [
    pytest.param("sgd", {"lr": 0.1, "weight_decay": 0.3}, id="sgd"),
    pytest.param("sgd", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.3}, id="sgd-momentum"),
    pytest.param(
        "sgd",
        {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.3},
        id="sgd-nesterov",
    ),
    pytest.param("sgd", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.3}),
    pytest.param("rmsprop", {"lr": 0.01, "weight_decay": 0.3}, id="rmsprop"),
    pytest.param(
        "rmsprop",
        {"lr": 0.005, "centered": True, "momentum": 0.5, "weight_decay": 0.3},
        id="rmsprop-centered-momentum",
    ),
    pytest.param("adam", {"lr": 0.02, "weight_decay": 0.3}, id="adam"),
    pytest.param("adam", {"lr": 0.02, "weight_decay": 0.3, "amsgrad": True}, id="adam-amsgrad"),
    pytest.param("adamw", {"lr": 0.02, "weight_decay": 0.3}, id="adamw"),
    pytest.param("adamw", {"lr": 0.02, "weight_decay": 0.3, "amsgrad": True}, id="adamw-amsgrad"),
]


def _layered_buffers(seed=3):
    """A [3, 4, 2] network's flat parameters (W0, b0, W1, b1), its weights' ranges, and a
    gradient per step."""
    from backprop_cli.nn.network import Network

    net = Network([3, 4, 2], ["tanh", "identity"], dtype=np.float64)
    rng = np.random.default_rng(seed)
    net.params[:] = rng.normal(size=net.params.size) + 1.0
    grads = rng.normal(size=(6, net.params.size))
    return net, net.weight_slices(), grads


def _steps(name, hyper, decayed, dtype=np.float64):
    net, weights, grads = _layered_buffers()
    params = net.params.astype(dtype)
    g = np.zeros_like(params)
    opt = make_optimizer(name, params, g, decayed=decayed(weights), **hyper)
    for gi in grads:
        g[:] = gi
        opt.step()
    return opt, net, weights


@pytest.mark.parametrize("name, hyper", DECAY_CASES)
def test_decay_on_the_weights_alone_equals_torchs_two_parameter_groups(backend, name, hyper):
    torch = pytest.importorskip("torch")
    opt, net, weights = _steps(name, hyper, lambda w: w)
    if backend == "compiled" and name in ("sgd", "adam", "adamw") and not hyper.get("amsgrad"):
        assert opt.compiled and not opt.decays_everything
    W = [torch.nn.Parameter(torch.tensor(w.copy())) for w in net.W]
    b = [torch.nn.Parameter(torch.tensor(v.copy())) for v in net.b]
    groups = [{"params": W}, {"params": b, "weight_decay": 0.0}]
    theirs = getattr(torch.optim, TORCH_NAMES[name])(groups, **hyper)
    _, _, grads = _layered_buffers()
    for gi in grads:
        gW, gb = net.views(gi.copy())
        for p, gp in zip(W + b, gW + gb, strict=True):
            p.grad = torch.tensor(gp)
        theirs.step()
    net.params[:] = opt.params
    for ours, t in zip(net.W + net.b, W + b, strict=True):
        np.testing.assert_allclose(ours, t.detach().numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name, hyper", DECAY_CASES)
def test_decay_biases_false_changes_the_biases_only(name, hyper):
    """The weights' updates are the same either way (every rule is elementwise); the biases'
    are not decayed, so they differ."""
    grouped, net, weights = _steps(name, hyper, lambda w: w)
    every, _, _ = _steps(name, hyper, lambda w: None)
    assert every.decays_everything
    bias = np.ones(grouped.params.size, dtype=bool)
    for s in weights:
        bias[s] = False
    np.testing.assert_array_equal(grouped.params[~bias], every.params[~bias])
    assert np.all(grouped.params[bias] != every.params[bias])


def test_sgd_decay_on_the_weights_alone_by_hand(backend):
    """One step: W <- W - lr (g + wd W), b <- b - lr g."""
    lr, wd = 0.1, 0.5
    start, weights, grads = _layered_buffers()
    p, g = start.params.copy(), grads[0]
    opt2 = make_optimizer("sgd", p, g.copy(), decayed=weights, lr=lr, weight_decay=wd)
    opt2.step()
    want = start.params - lr * g
    for s in weights:
        want[s] = start.params[s] - lr * (g[s] + wd * start.params[s])
    np.testing.assert_allclose(p, want, rtol=1e-15, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, hyper", DECAY_CASES)
def test_decay_on_the_weights_alone_is_the_same_bits_on_both_paths(monkeypatch, dtype, name, hyper):
    results = []
    for flag in ("1", "0"):
        monkeypatch.setenv("BACKPROP_FAST", flag)
        opt, _, _ = _steps(name, hyper, lambda w: w, dtype)
        results.append(opt.params.copy())
    np.testing.assert_array_equal(results[0].view(np.uint8), results[1].view(np.uint8))
