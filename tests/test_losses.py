"""Losses mean exactly what torch.nn.functional means by the same name (reduction='mean').

Values are checked on literal examples worked out by hand, and on random data against
independent formulas written here; grad / fused_delta against central differences of
value. A last group compares with torch itself, only when torch is importable.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from backprop_cli.nn.losses import get_loss

LN2, LN3 = math.log(2.0), math.log(3.0)


def sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def onehot(y, k):
    out = np.zeros((len(y), k))
    out[np.arange(len(y)), y] = 1.0
    return out


# ---------------------------------------------------------------------------------------
# Values on literal examples.
# ---------------------------------------------------------------------------------------


def test_mse_literal():
    a, y = np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]])
    # (1 + 4) / 2
    assert get_loss("mse").value(a + 7.0, a, y) == pytest.approx(2.5, rel=1e-15)
    # mean over ALL 4 elements: (0 + 4 + 9 + 16) / 4 (a per-row sum would give 14.5)
    a, y = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 0.0], [0.0, 0.0]])
    assert get_loss("mse").value(a + 7.0, a, y) == pytest.approx(7.25, rel=1e-15)


def test_mae_literal():
    a, y = np.array([[1.0, -2.0], [0.5, 4.0]]), np.zeros((2, 2))
    # (1 + 2 + 0.5 + 4) / 4
    assert get_loss("mae").value(a + 7.0, a, y) == pytest.approx(1.875, rel=1e-15)


def test_huber_literal():
    # a - y = [0.5, -2, 1, 3], delta = 1:
    # 0.5 * 0.25 = 0.125 ; 1 * (2 - 0.5) = 1.5 ; at |d| = delta both forms give 0.5 ;
    # 3 - 0.5 = 2.5  ->  (0.125 + 1.5 + 0.5 + 2.5) / 4 = 1.15625
    a = np.array([[1.5, -1.0], [2.0, 3.0]])
    y = np.array([[1.0, 1.0], [1.0, 0.0]])
    assert get_loss("huber").value(a + 7.0, a, y) == pytest.approx(1.15625, rel=1e-15)
    # all quadratic: 0.5 * (0.01 + 0.04) / 2 = 0.0125
    a, y = np.array([[0.1, -0.2]]), np.zeros((1, 2))
    assert get_loss("huber").value(a, a, y) == pytest.approx(0.0125, rel=1e-14)


def test_binary_cross_entropy_literal():
    loss = get_loss("binary_cross_entropy")
    # z = 0 -> a = 1/2 -> -log(1/2) = ln 2 for either label
    z, y = np.zeros((2, 1)), np.array([[1.0], [0.0]])
    assert loss.value(z, sigmoid(z), y) == pytest.approx(LN2, rel=1e-15)
    # z = ln 3 -> a = 3/4: y = 1 costs -ln(3/4) = ln 4 - ln 3, y = 0 costs -ln(1/4) = ln 4;
    # mean = (2 ln 4 - ln 3) / 2 = 2 ln 2 - ln 3 / 2 = 0.83698821678583...
    z, y = np.full((2, 1), LN3), np.array([[1.0], [0.0]])
    assert loss.value(z, sigmoid(z), y) == pytest.approx(2 * LN2 - LN3 / 2, rel=1e-14)
    assert loss.value(z, sigmoid(z), y) == pytest.approx(0.8369882167858358, rel=1e-14)


def test_cross_entropy_literal():
    loss = get_loss("cross_entropy")
    # uniform logits over 3 classes: ln 3 whatever the target
    z = np.zeros((1, 3))
    assert loss.value(z, softmax(z), np.array([2])) == pytest.approx(LN3, rel=1e-15)
    # z = [0, ln 2, 0] -> softmax = [1/4, 1/2, 1/4]; targets 1 and 0 cost ln 2 and ln 4;
    # mean over the 2 ROWS (not the 6 elements) = 1.5 ln 2 = 1.0397207708399179
    z = np.array([[0.0, LN2, 0.0], [0.0, LN2, 0.0]])
    assert loss.value(z, softmax(z), np.array([1, 0])) == pytest.approx(1.5 * LN2, rel=1e-14)


def test_huber_default_delta_is_one():
    assert get_loss("huber").delta == 1.0


def test_unknown_loss_name():
    with pytest.raises(ValueError, match="hinge"):
        get_loss("hinge")


# ---------------------------------------------------------------------------------------
# Values on random data against independent formulas (element by element).
# ---------------------------------------------------------------------------------------


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_regression_values_random(rng):
    a, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 3))
    pairs = list(zip(a.ravel().tolist(), y.ravel().tolist(), strict=True))
    n = len(pairs)
    mse = sum((p - q) ** 2 for p, q in pairs) / n
    mae = sum(abs(p - q) for p, q in pairs) / n

    def huber(d):
        return 0.5 * d * d if abs(d) < 1.0 else abs(d) - 0.5

    hub = sum(huber(p - q) for p, q in pairs) / n
    assert any(abs(p - q) < 1 for p, q in pairs) and any(abs(p - q) > 1 for p, q in pairs)
    np.testing.assert_allclose(get_loss("mse").value(a, a, y), mse, rtol=1e-12)
    np.testing.assert_allclose(get_loss("mae").value(a, a, y), mae, rtol=1e-12)
    np.testing.assert_allclose(get_loss("huber").value(a, a, y), hub, rtol=1e-12)


def test_binary_cross_entropy_value_random(rng):
    z = rng.uniform(-4, 4, size=(9, 1))
    y = rng.integers(0, 2, size=(9, 1)).astype(float)
    a = 1.0 / (1.0 + np.exp(-z))
    expected = -sum(
        yi * math.log(ai) + (1 - yi) * math.log(1 - ai)
        for ai, yi in zip(a.ravel().tolist(), y.ravel().tolist(), strict=True)
    ) / len(z)
    np.testing.assert_allclose(
        get_loss("binary_cross_entropy").value(z, a, y), expected, rtol=1e-12
    )


def test_cross_entropy_value_random(rng):
    z = rng.normal(size=(8, 5)) * 3
    y = rng.integers(0, 5, size=8)
    expected = -sum(
        math.log(math.exp(row[t]) / sum(math.exp(v) for v in row))
        for row, t in zip(z.tolist(), y.tolist(), strict=True)
    ) / len(z)
    np.testing.assert_allclose(
        get_loss("cross_entropy").value(z, softmax(z), y), expected, rtol=1e-12
    )


# ---------------------------------------------------------------------------------------
# Gradients against central differences.
# ---------------------------------------------------------------------------------------

H = 1e-6


def central_diff(f, x):
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += H
        xm[idx] -= H
        out[idx] = (f(xp) - f(xm)) / (2 * H)
    return out


def _away_from(d, points, margin):
    """Push entries of d at least ``margin`` away from each of ``points``."""
    for p in points:
        close = np.abs(d - p) < margin
        d = np.where(close, p + np.where(d >= p, margin, -margin), d)
    return d


@pytest.mark.parametrize("name", ["mse", "mae", "huber"])
def test_grad_matches_central_differences(name, rng):
    loss = get_loss(name)
    y = rng.normal(size=(4, 3))
    d = _away_from(rng.uniform(-3, 3, size=(4, 3)), [-1.0, 0.0, 1.0], 0.05)
    if name == "huber":  # both regimes present
        assert np.any(np.abs(d) < 1) and np.any(np.abs(d) > 1)
    a = y + d
    numeric = central_diff(lambda x: loss.value(x, x, y), a)
    analytic = loss.grad(a, y)
    assert analytic.shape == a.shape
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-10)


def test_mae_grad_at_zero_is_zero():
    # F.l1_loss's gradient at a = y is sign(0) = 0
    a = np.array([[1.0, 2.0]])
    np.testing.assert_array_equal(get_loss("mae").grad(a, a.copy()), [[0.0, 0.0]])


@pytest.mark.parametrize("name", ["binary_cross_entropy", "cross_entropy"])
def test_fused_delta_matches_central_differences(name, rng):
    loss = get_loss(name)
    if name == "binary_cross_entropy":
        act = sigmoid
        z = rng.normal(size=(5, 1)) * 2
        y = rng.integers(0, 2, size=(5, 1)).astype(float)
    else:
        act = softmax
        z = rng.normal(size=(5, 4)) * 2
        y = rng.integers(0, 4, size=5)
    assert loss.fused_with == act.__name__
    a = act(z)
    numeric = central_diff(lambda x: loss.value(x, act(x), y), z)
    out = np.full_like(a, np.nan)
    res = loss.fused_delta(a, y, out)
    np.testing.assert_allclose(out, numeric, rtol=1e-6, atol=1e-10)
    np.testing.assert_array_equal(res, out)


def test_bce_grad_times_sigmoid_prime_is_fused_delta(rng):
    """BP1: dC/da * sigma'(z) = dC/dz, so the general path agrees with the fused one."""
    loss = get_loss("binary_cross_entropy")
    z = rng.normal(size=(6, 1))
    y = rng.integers(0, 2, size=(6, 1)).astype(float)
    a = sigmoid(z)
    fused = loss.fused_delta(a, y, np.empty_like(a))
    np.testing.assert_allclose(loss.grad(a, y) * a * (1 - a), fused, rtol=1e-12, atol=1e-15)
    # and grad is dC/da: central differences through z = logit(a)
    numeric = central_diff(lambda p: loss.value(np.log(p / (1 - p)), p, y), a)
    np.testing.assert_allclose(loss.grad(a, y), numeric, rtol=1e-6)


def test_cross_entropy_grad_through_softmax_jacobian_is_fused_delta(rng):
    """BP1 with the softmax Jacobian: delta_j = a_j (g_j - sum_i a_i g_i)."""
    loss = get_loss("cross_entropy")
    z = rng.normal(size=(5, 4))
    y = rng.integers(0, 4, size=5)
    a = softmax(z)
    g = loss.grad(a, y)
    delta = a * (g - (a * g).sum(axis=1, keepdims=True))
    fused = loss.fused_delta(a, y, np.empty_like(a))
    np.testing.assert_allclose(delta, fused, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fused, (a - onehot(y, 4)) / 5, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------
# Numerical stability.
# ---------------------------------------------------------------------------------------


def _strict():
    """Overflow, 0/0, log(0), inf - inf raise; a warning of any kind fails the test.
    Underflow stays ignored (NumPy's default): exp(-2000) = 0 is the correct, intended
    result inside a log-sum-exp, and errstate(all='raise') would flag it."""
    return np.errstate(over="raise", divide="raise", invalid="raise", under="ignore")


def test_cross_entropy_large_logits():
    loss = get_loss("cross_entropy")
    z = np.array([[1000.0, 0.0, -1000.0]])
    a = softmax(z)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with _strict():
            assert loss.value(z, a, np.array([0])) == 0.0
            assert loss.value(z, a, np.array([2])) == pytest.approx(2000.0, rel=1e-15)
            assert loss.value(z, a, np.array([1])) == pytest.approx(1000.0, rel=1e-15)
            zz = np.vstack([z, z])
            assert loss.value(zz, softmax(zz), np.array([0, 2])) == pytest.approx(1000.0)
            delta = loss.fused_delta(a, np.array([2]), np.empty_like(a))
    np.testing.assert_allclose(delta, [[1.0, 0.0, -1.0]], atol=1e-300)


def test_binary_cross_entropy_large_logits():
    loss = get_loss("binary_cross_entropy")
    z = np.array([[800.0], [-800.0], [800.0], [-800.0]])
    y = np.array([[1.0], [0.0], [0.0], [1.0]])
    a = sigmoid(z)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with _strict():
            assert loss.value(z[:2], a[:2], y[:2]) == pytest.approx(0.0, abs=1e-300)
            assert loss.value(z[2:3], a[2:3], y[2:3]) == pytest.approx(800.0, rel=1e-15)
            assert loss.value(z[3:], a[3:], y[3:]) == pytest.approx(800.0, rel=1e-15)
            assert loss.value(z, a, y) == pytest.approx(400.0, rel=1e-15)
            delta = loss.fused_delta(a, y, np.empty_like(a))
    np.testing.assert_allclose(delta, [[0.0], [0.0], [0.25], [-0.25]], atol=1e-300)


# ---------------------------------------------------------------------------------------
# Side by side with torch.nn.functional (only when torch is installed).
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fname, kwargs",
    [
        ("mse", "mse_loss", {}),
        ("mae", "l1_loss", {}),
        ("huber", "huber_loss", {"delta": 1.0}),
    ],
)
def test_regression_losses_equal_torch(name, fname, kwargs, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    loss = get_loss(name)
    a, y = rng.normal(size=(6, 3)) * 2, rng.normal(size=(6, 3)) * 2
    at = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    ref = getattr(F, fname)(at, torch.tensor(y, dtype=torch.float64), reduction="mean", **kwargs)
    ref.backward()
    np.testing.assert_allclose(loss.value(a, a, y), ref.item(), rtol=1e-12)
    np.testing.assert_allclose(loss.grad(a, y), at.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_binary_cross_entropy_equals_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    loss = get_loss("binary_cross_entropy")
    # probabilities well inside (0, 1): torch clamps log at -100 and computes log(1 - a)
    # from a rounded a; the logits formula used here differs from it only for |z| > ~30
    z = rng.uniform(-5, 5, size=(10, 1))
    y = rng.integers(0, 2, size=(10, 1)).astype(float)
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    ref = F.binary_cross_entropy(torch.sigmoid(zt), torch.tensor(y, dtype=torch.float64))
    ref.backward()
    a = sigmoid(z)
    np.testing.assert_allclose(loss.value(z, a, y), ref.item(), rtol=1e-12)
    delta = loss.fused_delta(a, y, np.empty_like(a))
    np.testing.assert_allclose(delta, zt.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_cross_entropy_equals_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    loss = get_loss("cross_entropy")
    z = rng.normal(size=(8, 5)) * 3
    y = rng.integers(0, 5, size=8)
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    ref = F.cross_entropy(zt, torch.tensor(y, dtype=torch.long))
    ref.backward()
    a = softmax(z)
    np.testing.assert_allclose(loss.value(z, a, y), ref.item(), rtol=1e-12)
    delta = loss.fused_delta(a, y, np.empty_like(a))
    np.testing.assert_allclose(delta, zt.grad.numpy(), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------- row weights


def _one_layer(k_in: int, k_out: int, activation: str, seed: int):
    from backprop_cli.nn.network import Network

    rng = np.random.default_rng(seed)
    net = Network([k_in, k_out], [activation], dtype=np.float64)
    net.init("xavier", rng)
    net.b[0][:] = rng.normal(0, 0.1, k_out)
    return net, rng


def test_class_weighted_cross_entropy_is_torchs():
    """torch.nn.CrossEntropyLoss(weight=w): sum_i w[y_i] l_i / sum_i w[y_i], value and gradient."""
    torch = pytest.importorskip("torch")
    net, rng = _one_layer(4, 3, "softmax", 0)
    X, y = rng.normal(size=(10, 4)), rng.integers(0, 3, 10)
    class_w = np.array([0.5, 2.0, 1.25])
    value = net.loss_and_grad(X, y, get_loss("cross_entropy"), w=class_w[y])
    W = torch.tensor(net.W[0], requires_grad=True)
    b = torch.tensor(net.b[0], requires_grad=True)
    loss = torch.nn.CrossEntropyLoss(weight=torch.tensor(class_w))(
        torch.tensor(X) @ W + b, torch.tensor(y)
    )
    loss.backward()
    assert value == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(net.gW[0], W.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(net.gb[0], b.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    ("name", "activation"),
    [
        ("mse", "identity"),
        ("mae", "identity"),
        ("huber", "identity"),
        ("binary_cross_entropy", "sigmoid"),
    ],
)
def test_row_weighted_losses_are_the_weighted_mean_of_the_rows(name, activation):
    """sum_i w_i c_i / sum_i w_i, c_i the row's mean loss, value and gradient (torch's autograd
    of that formula as the reference)."""
    torch = pytest.importorskip("torch")
    k = 1 if name == "binary_cross_entropy" else 2
    net, rng = _one_layer(3, k, activation, 1)
    X = rng.normal(size=(9, 3))
    y = rng.integers(0, 2, (9, k)).astype(float) if k == 1 else rng.normal(size=(9, k))
    w = rng.uniform(0.1, 3.0, 9)
    value = net.loss_and_grad(X, y, get_loss(name), w=w)
    W = torch.tensor(net.W[0], requires_grad=True)
    b = torch.tensor(net.b[0], requires_grad=True)
    z = torch.tensor(X) @ W + b
    t = torch.tensor(y)
    F = torch.nn.functional
    elements = {
        "mse": lambda: F.mse_loss(z, t, reduction="none"),
        "mae": lambda: F.l1_loss(z, t, reduction="none"),
        "huber": lambda: F.huber_loss(z, t, reduction="none"),
        "binary_cross_entropy": lambda: F.binary_cross_entropy_with_logits(z, t, reduction="none"),
    }[name]()
    tw = torch.tensor(w)
    loss = (tw * elements.mean(dim=1)).sum() / tw.sum()
    loss.backward()
    assert value == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(net.gW[0], W.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(net.gb[0], b.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_unit_weights_change_nothing():
    net, rng = _one_layer(4, 3, "softmax", 2)
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
    loss = get_loss("cross_entropy")
    plain = net.loss_and_grad(X, y, loss)
    g = net.grads.copy()
    weighted = net.loss_and_grad(X, y, loss, w=np.full(8, 3.0))
    assert weighted == pytest.approx(plain, rel=1e-15)
    np.testing.assert_allclose(net.grads, g, rtol=1e-14)
