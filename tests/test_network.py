"""The network's backpropagation against central differences, for every activation x loss."""

import zlib

import numpy as np
import pytest

from backprop_cli.checks import OUTPUTS, check_all_combinations, random_problem
from backprop_cli.nn import ACTIVATIONS, Network, get_loss, gradcheck

COMBOS = [(h, loss, out) for h in ACTIVATIONS for loss in OUTPUTS for out in OUTPUTS[loss]]


@pytest.mark.parametrize(("hidden", "loss", "output"), COMBOS)
def test_backprop_matches_central_differences(hidden, loss, output):
    rng = np.random.default_rng(zlib.crc32(f"{hidden}-{loss}-{output}".encode()))
    n_out = 1 if loss == "binary_cross_entropy" else 3
    net = Network([4, 6, 5, n_out], [hidden, hidden, output], dtype=np.float64)
    net.init("xavier", rng)
    for b in net.b:
        b[:] = rng.normal(0, 0.1, b.shape)
    X, y = random_problem(loss, n_out, rng, n=7)
    checks = gradcheck(net, X, y, get_loss(loss))
    assert [c.name for c in checks] == ["W0", "b0", "W1", "b1", "W2", "b2"]
    for c in checks:
        assert c.rel_error <= 1e-6, (c.name, c.rel_error)


def test_softmax_as_a_hidden_layer():
    rng = np.random.default_rng(3)
    net = Network([3, 5, 4, 2], ["softmax", "tanh", "identity"], dtype=np.float64)
    net.init("normal", rng, scale=1.0)
    X, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    assert max(c.rel_error for c in gradcheck(net, X, y, get_loss("mse"))) < 1e-7


def test_gradcheck_catches_a_wrong_gradient(monkeypatch):
    """A deliberately broken derivative must show up as a large relative error."""
    from backprop_cli.nn import activations

    rng = np.random.default_rng(0)
    net = Network([3, 4, 1], ["tanh", "identity"], dtype=np.float64)
    net.init("xavier", rng)
    X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 1))

    def wrong(self, z, a, g, out):
        np.multiply(g, 1.0 - a, out=out)  # should be 1 - a^2
        return out

    monkeypatch.setattr(activations.Tanh, "backward", wrong)
    checks = gradcheck(net, X, y, get_loss("mse"))
    assert checks[0].rel_error > 1e-2
    assert checks[2].rel_error < 1e-7  # the output layer does not use tanh'


def test_relu_kink_is_reported_not_failed():
    net = Network([2, 2, 1], ["relu", "identity"], dtype=np.float64)
    net.W[0][:] = [[1.0, 0.5], [1.0, -0.5]]
    net.W[1][:] = [[1.0], [2.0]]
    X = np.array([[1.0, -1.0], [0.5, 0.5]])  # row 0 puts unit 0 exactly at z = 0
    y = np.array([[0.3], [0.2]])
    checks = gradcheck(net, X, y, get_loss("mse"))
    assert checks[0].kinks > 0
    assert all(c.rel_error < 1e-7 for c in checks)


def test_mae_kink_is_reported():
    net = Network([1, 1], ["identity"], dtype=np.float64)
    net.W[0][:] = 2.0
    X = np.array([[1.0], [3.0]])
    y = np.array([[2.0], [1.0]])  # row 0 has a - y = 0 exactly
    checks = gradcheck(net, X, y, get_loss("mae"))
    assert checks[0].kinks == 1


def test_gradcheck_refuses_float32():
    net = Network([2, 1], ["identity"], dtype=np.float32)
    with pytest.raises(ValueError, match="float64"):
        gradcheck(net, np.zeros((1, 2)), np.zeros((1, 1)), get_loss("mse"))


def test_sampled_gradcheck_checks_the_requested_number_of_entries():
    rng = np.random.default_rng(0)
    net = Network([20, 30, 3], ["relu", "softmax"], dtype=np.float64)
    net.init("he", rng)
    X, y = rng.normal(size=(4, 20)), rng.integers(0, 3, 4)
    checks = gradcheck(net, X, y, get_loss("cross_entropy"), max_per_tensor=50, rng=rng)
    assert [c.checked for c in checks] == [50, 30, 50, 3]
    assert max(c.rel_error for c in checks) < 1e-6


def test_all_combinations_report_covers_every_activation_and_loss():
    results = check_all_combinations()
    assert {r["hidden"] for r in results} == set(ACTIVATIONS)
    assert {r["loss"] for r in results} == set(OUTPUTS) | {f"{n} (weighted)" for n in OUTPUTS} | {
        "mse (one-hot, 3 units)",
        "binary_cross_entropy (one-hot, 3 units)",
        "binary_cross_entropy (multi-label, 3 units)",
    }
    assert max(r["rel_error"] for r in results) <= 1e-6


def test_flat_buffers_and_views():
    net = Network([3, 4, 2], ["relu", "softmax"])
    assert net.params.size == 3 * 4 + 4 + 4 * 2 + 2
    net.W[1][0, 1] = 7.0
    assert 7.0 in net.params  # the view writes through to the flat buffer
    net.params[:] = 0
    assert net.W[1][0, 1] == 0.0
    assert all(t.base is net.params for t in net.tensors())
    assert all(g.base is net.grads for g in net.tensors(grads=True))


def test_a_pickled_network_keeps_its_views_and_predicts_alike():
    """Pickling (joblib, scikit-learn's clones of fitted estimators) keeps the flat buffer and
    its views, and leaves out the per-batch buffers with the compiled kernels' pointers."""
    import pickle

    rng = np.random.default_rng(5)
    net = Network([3, 8, 8, 2], ["relu", "tanh", "softmax"], dropout=[0.2, 0.0, 0.0])
    net.init("he", rng)
    X = rng.normal(size=(6, 3)).astype(np.float32)
    before = net.predict(X)
    copy = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(copy.predict(X), before)
    assert all(t.base is copy.params for t in copy.tensors())
    assert all(g.base is copy.grads for g in copy.tensors(grads=True))
    copy.params[:] = 0
    assert not copy.W[0].any() and net.W[0].any()  # its own buffer, not the original's
    assert copy.dropout == net.dropout and copy.dtype == net.dtype


def test_forward_equals_explicit_equations():
    """z = a W + b, a = sigma(z), layer by layer, written out with numpy."""
    rng = np.random.default_rng(1)
    net = Network([3, 4, 2], ["tanh", "sigmoid"], dtype=np.float64)
    net.init("normal", rng, scale=0.5)
    net.b[0][:] = rng.normal(size=4)
    X = rng.normal(size=(5, 3))
    a1 = np.tanh(X @ net.W[0] + net.b[0])
    a2 = 1 / (1 + np.exp(-(a1 @ net.W[1] + net.b[1])))
    np.testing.assert_allclose(net.forward(X), a2, rtol=1e-12)


def test_backward_equals_explicit_equations():
    """BP1-BP4 for a sigmoid + mse network (the classic example of docs/backpropagation.md), written out with numpy."""
    rng = np.random.default_rng(2)
    net = Network([2, 3, 1], ["sigmoid", "sigmoid"], dtype=np.float64)
    net.init("normal", rng, scale=1.0)
    X, y = rng.normal(size=(4, 2)), rng.uniform(size=(4, 1))
    net.loss_and_grad(X, y, get_loss("mse"))
    z1 = X @ net.W[0] + net.b[0]
    a1 = 1 / (1 + np.exp(-z1))
    z2 = a1 @ net.W[1] + net.b[1]
    a2 = 1 / (1 + np.exp(-z2))
    d2 = 2 * (a2 - y) / y.size * a2 * (1 - a2)  # BP1
    d1 = (d2 @ net.W[1].T) * a1 * (1 - a1)  # BP2
    np.testing.assert_allclose(net.gW[1], a1.T @ d2, rtol=1e-12)  # BP3
    np.testing.assert_allclose(net.gb[1], d2.sum(0), rtol=1e-12)  # BP4
    np.testing.assert_allclose(net.gW[0], X.T @ d1, rtol=1e-12)
    np.testing.assert_allclose(net.gb[0], d1.sum(0), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_through_the_hot_path(dtype):
    rng = np.random.default_rng(0)
    net = Network([5, 8, 3], ["relu", "softmax"], dtype=dtype)
    net.init("he", rng)
    X = rng.normal(size=(4, 5)).astype(dtype)
    net.loss_and_grad(X, rng.integers(0, 3, 4), get_loss("cross_entropy"))
    assert net.forward(X).dtype == dtype
    assert net.grads.dtype == dtype


@pytest.mark.parametrize(
    ("init", "expected_std"),
    [
        ("he", lambda fi, fo: np.sqrt(2 / fi)),
        ("lecun", lambda fi, fo: np.sqrt(1 / fi)),
        ("xavier", lambda fi, fo: np.sqrt(2 / (fi + fo))),
        ("normal", lambda fi, fo: 0.1),
        ("uniform", lambda fi, fo: 0.1 / np.sqrt(3)),
    ],
)
def test_init_scales(init, expected_std):
    net = Network([400, 300], ["identity"], dtype=np.float64)
    net.init(init, np.random.default_rng(0), scale=0.1)
    assert abs(net.W[0].std() / expected_std(400, 300) - 1) < 0.02
    assert (net.b[0] == 0).all()


def test_lecun_and_normal_biases_are_the_rule_written_out():
    """lecun: W^l ~ N(0, 1/fan_in); bias_init normal: b^l ~ N(0, scale^2), drawn after W^l
    from the same generator (the book's improved init, its N(0, 1) biases)."""
    net = Network([5, 4, 3], ["sigmoid", "sigmoid"], dtype=np.float64)
    net.init("lecun", np.random.default_rng(11), bias="normal", bias_scale=0.7)
    rng = np.random.default_rng(11)
    for W, b in zip(net.W, net.b, strict=True):
        fan_in = W.shape[0]
        np.testing.assert_array_equal(W, rng.normal(0.0, 1.0 / np.sqrt(fan_in), W.shape))
        np.testing.assert_array_equal(b, rng.normal(0.0, 0.7, b.shape))
    zeros = Network([5, 4, 3], ["sigmoid", "sigmoid"], dtype=np.float64)
    zeros.init("lecun", np.random.default_rng(11))
    np.testing.assert_array_equal(zeros.W[0], net.W[0])  # zeros draws nothing for the biases
    assert (zeros.b[0] == 0).all() and (zeros.b[1] == 0).all()


def test_normal_biases_have_the_scale_asked_for():
    net = Network([3, 20000], ["identity"], dtype=np.float64)
    net.init("he", np.random.default_rng(0), bias="normal", bias_scale=1.0)
    assert abs(net.b[0].std() - 1.0) < 0.02 and abs(net.b[0].mean()) < 0.03
    with pytest.raises(ValueError, match="unknown bias init 'ones'"):
        net.init("he", np.random.default_rng(0), bias="ones")


def test_weight_slices_are_the_ws_in_the_flat_buffer():
    net = Network([3, 4, 2], ["tanh", "identity"], dtype=np.float64)
    net.params[:] = np.arange(net.params.size)
    for s, W in zip(net.weight_slices(), net.W, strict=True):
        np.testing.assert_array_equal(net.params[s], W.ravel())


def test_init_is_reproducible_from_the_seed():
    a, b = Network([3, 5, 2], ["relu", "softmax"]), Network([3, 5, 2], ["relu", "softmax"])
    a.init("he", np.random.default_rng(7))
    b.init("he", np.random.default_rng(7))
    assert np.array_equal(a.params, b.params)


def test_gradcheck_a_gradient_of_exactly_zero_passes():
    """On a symmetric batch the output bias's gradient is exactly 0; the central difference
    measures it as rounding noise (~1e-10), which is not an error."""
    net = Network([2, 3, 1], ["tanh", "sigmoid"], dtype=np.float64)
    net.init("xavier", np.random.default_rng(0))
    net.W[1][:] = 0.0  # a^L = sigmoid(b) on every row: dC/db = mean(a - y) = 0 for y = 0, 1
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    checks = gradcheck(net, X, y, get_loss("binary_cross_entropy"))
    b1 = checks[3]
    assert b1.name == "b1" and b1.max_abs_error <= b1.noise
    assert all(c.rel_error == 0.0 or c.rel_error < 1e-7 for c in checks)


def test_gradcheck_sees_an_error_just_above_the_rounding_noise(monkeypatch):
    """The noise floor is subtracted, not a tolerance: an entry wrong by ten times the noise
    shows as at least eight times the noise, relative to the tensor's scale."""
    rng = np.random.default_rng(1)
    net = Network([2, 4, 1], ["sigmoid", "identity"], dtype=np.float64)
    net.init("xavier", rng)
    X, y = rng.normal(size=(6, 2)), rng.normal(size=(6, 1))
    honest = gradcheck(net, X, y, get_loss("mse"))
    net.loss_and_grad(X, y, get_loss("mse"))
    scale = float(np.abs(net.gW[0]).max())
    real = Network.loss_and_grad

    def off(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        self.gW[0][0, 0] += 10 * honest[0].noise
        return out

    monkeypatch.setattr(Network, "loss_and_grad", off)
    broken = gradcheck(net, X, y, get_loss("mse"))
    assert honest[0].rel_error * scale < honest[0].noise
    assert broken[0].rel_error * scale > 8 * honest[0].noise
    assert not broken[0].passed(1e-9) and honest[0].passed(1e-9)
