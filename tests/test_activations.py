"""Each activation against its formula written out here, and its backward step against
central differences of its forward pass (float64)."""

import math

import numpy as np
import pytest

from backprop_cli.nn.activations import ACTIVATIONS, get_activation

Z = np.array([[-30.0, -2.0, -0.5, 0.3, 1.7, 30.0], [0.1, -0.1, 2.5, -3.0, 0.7, -0.7]])

FORMULAS = {
    "identity": lambda z: z,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.where(z > 0, z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.exp(z) - 1),
    "softplus": lambda z: np.logaddexp(0.0, z),  # log(1 + e^z), without the rounding of 1 + tiny
    "gelu": lambda z: z * 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2))),
    "softmax": lambda z: np.exp(z) / np.exp(z).sum(axis=1, keepdims=True),
}


def test_every_registered_activation_has_a_reference_formula():
    assert set(FORMULAS) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_forward_matches_formula(name):
    act = get_activation(name)
    out = np.empty_like(Z)
    np.testing.assert_allclose(act.forward(Z, out), FORMULAS[name](Z), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_backward_is_the_vector_jacobian_product(name):
    """dC/dz for C = sum(g * a(z)) equals backward(g), checked entry by entry numerically."""
    rng = np.random.default_rng(0)
    act = get_activation(name)
    z = rng.normal(size=(3, 5)) * 2
    z[np.abs(z) < 1e-3] = 0.5  # keep off the relu kink
    g = rng.normal(size=z.shape)
    a = act.forward(z, np.empty_like(z))
    got = act.backward(z, a, g.copy(), np.empty_like(z))
    eps = 1e-6
    num = np.empty_like(z)
    for idx in np.ndindex(*z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += eps
        zm[idx] -= eps
        num[idx] = (
            np.sum(g * act.forward(zp, np.empty_like(z)))
            - np.sum(g * act.forward(zm, np.empty_like(z)))
        ) / (2 * eps)
    np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "softmax", "tanh", "elu"])
def test_no_overflow_for_large_inputs(name):
    z = np.array([[-1000.0, 1000.0, -800.0, 800.0]])
    with np.errstate(
        over="raise", invalid="raise", divide="raise"
    ):  # underflow to 0 is exact enough
        out = get_activation(name).forward(z, np.empty_like(z))
    assert np.isfinite(out).all()


def test_sigmoid_saturates_exactly():
    out = get_activation("sigmoid").forward(np.array([[-800.0, 800.0]]), np.empty((1, 2)))
    assert out[0, 0] == 0.0 and out[0, 1] == 1.0


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_float32_stays_float32(name):
    z = Z.astype(np.float32)
    act = get_activation(name)
    a = act.forward(z, np.empty_like(z))
    assert a.dtype == np.float32
    assert act.backward(z, a, np.ones_like(z), np.empty_like(z)).dtype == np.float32


def test_unknown_activation_lists_the_valid_names():
    with pytest.raises(ValueError, match="relu"):
        get_activation("rleu")


def test_erf_matches_math_erf_to_a_few_ulps():
    from backprop_cli.nn.activations import _erf

    xs = np.concatenate(
        [np.linspace(-8, 8, 40001), [0.0, -0.0, 1e-300, 2.9999999, 3.0, 6.49, 6.5, 30.0]]
    )
    ref = np.array([math.erf(v) for v in xs])
    got = _erf(xs)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=4e-15, atol=1e-300)
    assert np.signbit(_erf(np.array([-0.0])))[0]
    assert _erf(np.array([0.5], dtype=np.float32)).dtype == np.float32
