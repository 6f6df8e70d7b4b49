"""nanofn.nn activations: values against numpy formulas, gradients against finite
differences (float64), and finiteness at extreme inputs."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nanofn
import nanofn.numpy as jnp
from nanofn import nn
from nanofn.testing import check_grads

# --------------------------------------------------------------- numpy references


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def _erf(x):
    return np.vectorize(math.erf)(x)


def _softplus(x):
    return np.logaddexp(x, 0.0)


REFERENCES = {
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.minimum(np.maximum(x, 0), 6),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "selu": lambda x: 1.0507009873554805 * np.where(
        x > 0, x, 1.6732632423543772 * np.expm1(np.minimum(x, 0))),
    "celu": lambda x: np.maximum(x, 0) + np.expm1(np.minimum(x, 0)),
    "gelu": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))),
    "gelu_exact": lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2))),
    "sigmoid": _sigmoid,
    "silu": lambda x: x * _sigmoid(x),
    "swish": lambda x: x * _sigmoid(x),
    "softplus": _softplus,
    "log_sigmoid": lambda x: -_softplus(-x),
    "soft_sign": lambda x: x / (np.abs(x) + 1),
    "hard_tanh": lambda x: np.clip(x, -1, 1),
    "hard_sigmoid": lambda x: np.clip(x + 3, 0, 6) / 6,
    "hard_silu": lambda x: x * np.clip(x + 3, 0, 6) / 6,
    "identity": lambda x: x,
}


def _fn(name):
    if name == "gelu_exact":
        return lambda x: nn.gelu(x, approximate=False)
    return getattr(nn, name)


# Points where a function has a kink: finite differences are meaningless there.
KINKS = {"relu": [0], "relu6": [0, 6], "leaky_relu": [0], "elu": [0], "selu": [0],
         "celu": [0], "hard_tanh": [-1, 1], "hard_sigmoid": [-3, 3], "hard_silu": [-3, 3]}

values = hnp.arrays(np.float64, st.integers(1, 6),
                    elements=st.floats(-8, 8, allow_nan=False, allow_subnormal=False))


@pytest.mark.parametrize("name", sorted(REFERENCES))
@settings(max_examples=10)
@given(x=values)
def test_activation_matches_formula(name, x):
    out = _fn(name)(x)
    assert out.shape == x.shape and out.dtype == np.float64
    np.testing.assert_allclose(np.asarray(out), REFERENCES[name](x), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_activation_float32_stays_float32(name):
    x = jnp.array([-2.0, 0.5, 3.0])
    assert _fn(name)(x).dtype == np.float32


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_activation_gradients(name):
    rng = np.random.default_rng(0)
    x = rng.uniform(-5, 5, size=7)
    for k in KINKS.get(name, []):  # keep clear of kinks by more than the FD step
        x = np.where(np.abs(x - k) < 0.05, x + 0.2, x)
    check_grads(_fn(name), (x,), order=2 if name not in KINKS else 1)


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.filterwarnings("ignore:overflow")  # erf's derivative squares x on the way to 0
def test_activation_extreme_inputs_are_finite(name, dtype):
    big = np.finfo(dtype).max / 4
    x = np.array([-big, -1e4, -80.0, 80.0, 1e4, big], dtype)
    fn = _fn(name)
    out = np.asarray(fn(x))
    grads = np.asarray(nanofn.grad(lambda v: jnp.sum(fn(v)))(x))
    if name in ("relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "gelu_exact",
                "silu", "swish", "softplus", "log_sigmoid", "hard_silu", "identity"):
        # unbounded functions may legitimately reach +-big; only NaN is wrong there
        assert not np.isnan(out).any(), out
    else:
        assert np.isfinite(out).all(), out
    assert np.isfinite(grads).all(), grads


def test_relu_family_derivative_at_kinks_is_jax_convention():
    g = nanofn.grad(lambda x: jnp.sum(nn.relu(x)))(jnp.array([0.0, 1.0]))
    np.testing.assert_array_equal(np.asarray(g), [0.0, 1.0])
    g6 = nanofn.grad(lambda x: jnp.sum(nn.relu6(x)))(jnp.array([0.0, 6.0, 3.0]))
    np.testing.assert_array_equal(np.asarray(g6), [0.0, 0.0, 1.0])


# --------------------------------------------------------------- softmax family


def _np_log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


@settings(max_examples=15)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1),
                    elements=st.floats(-50, 50)),
       axis=st.integers(-1, 0))
def test_softmax_and_log_softmax_match_numpy(x, axis):
    np.testing.assert_allclose(np.asarray(nn.log_softmax(x, axis=axis)),
                               _np_log_softmax(x, axis), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.asarray(nn.softmax(x, axis=axis)),
                               np.exp(_np_log_softmax(x, axis)), rtol=1e-10, atol=1e-12)
    lse = np.asarray(nn.logsumexp(x, axis=axis))
    np.testing.assert_allclose(lse, np.log(np.exp(x).sum(axis=axis)), rtol=1e-10, atol=1e-12)


def test_softmax_family_at_huge_logits():
    x = jnp.array([[1e4, 1e4 - 1.0, -1e4], [-1e30, 0.0, 1e30]], dtype=jnp.float32)
    weights = jnp.arange(1.0, 7.0).reshape(2, 3)
    for fn in (nn.softmax, nn.log_softmax, lambda v: nn.logsumexp(v, axis=-1, keepdims=True)):
        out = fn(x)
        g = nanofn.grad(lambda v: jnp.sum(fn(v) * weights))(x)
        assert not np.isnan(np.asarray(out)).any()
        assert np.isfinite(np.asarray(g)).all()
    p = np.asarray(nn.softmax(x))
    np.testing.assert_allclose(p[0], [1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1)), 0],
                               rtol=1e-5)
    np.testing.assert_allclose(np.asarray(nn.logsumexp(x, axis=-1)),
                               [1e4 + np.log1p(np.exp(-1)), 1e30], rtol=1e-6)


def test_softmax_gradients():
    x = np.random.default_rng(1).normal(size=(3, 4)) * 3
    w = np.random.default_rng(2).normal(size=(3, 4))
    check_grads(lambda v: nn.softmax(v) * w, (x,), order=2)
    check_grads(lambda v: nn.log_softmax(v, axis=0), (x,), order=2)
    check_grads(lambda v: nn.logsumexp(v, axis=1), (x,), order=2)
    check_grads(lambda v: nn.logsumexp(v), (x,), order=2)


def test_softmax_where_masks_entries():
    x = jnp.array([1.0, 2.0, 3.0])
    mask = jnp.array([True, False, True])
    p = np.asarray(nn.softmax(x, where=mask))
    np.testing.assert_allclose(p, [np.exp(1) / (np.exp(1) + np.exp(3)), 0,
                                   np.exp(3) / (np.exp(1) + np.exp(3))], rtol=1e-6)
    lp = np.asarray(nn.log_softmax(x, where=mask))
    assert lp[1] == -np.inf
    np.testing.assert_allclose(np.exp(lp[[0, 2]]), p[[0, 2]], rtol=1e-6)
    np.testing.assert_allclose(float(nn.logsumexp(x, where=mask)), np.log(np.exp(1) + np.exp(3)),
                               rtol=1e-6)
    none = jnp.zeros(3, dtype=bool)
    np.testing.assert_array_equal(np.asarray(nn.softmax(x, where=none)), [0.0, 0.0, 0.0])


def test_logsumexp_options():
    x = np.array([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5]])
    b = np.array([1.0, -0.5, 2.0])
    out, sign = nn.logsumexp(x, axis=1, b=b, return_sign=True)
    s = (b * np.exp(x)).sum(1)
    np.testing.assert_allclose(np.asarray(out), np.log(np.abs(s)))
    np.testing.assert_array_equal(np.asarray(sign), np.sign(s))
    k = nn.logsumexp(x, axis=0, keepdims=True)
    assert k.shape == (1, 3)
    assert float(nn.logsumexp(jnp.array([-np.inf, -np.inf]))) == -np.inf


# --------------------------------------------------------------- utilities


@settings(max_examples=15)
@given(labels=hnp.arrays(np.int32, hnp.array_shapes(min_dims=0, max_dims=2, min_side=0),
                         elements=st.integers(-1, 5)),
       n=st.integers(1, 5))
def test_one_hot_matches_numpy(labels, n):
    out = np.asarray(nn.one_hot(labels, n))
    expected = (labels[..., None] == np.arange(n)).astype(np.float32)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


def test_one_hot_axis_and_dtype():
    out = nn.one_hot(jnp.array([0, 2]), 3, dtype=jnp.int32, axis=0)
    np.testing.assert_array_equal(np.asarray(out), [[1, 0], [0, 0], [0, 1]])
    assert out.dtype == np.int32


def test_standardize():
    x = np.random.default_rng(3).normal(2.0, 3.0, size=(5, 20))
    z = np.asarray(nn.standardize(x, axis=1, epsilon=0.0))
    np.testing.assert_allclose(z.mean(1), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(1), 1, rtol=1e-10)
    check_grads(lambda v: nn.standardize(v, axis=1), (x[:, :6],), order=1)


def test_glu():
    x = np.random.default_rng(4).normal(size=(3, 6))
    np.testing.assert_allclose(np.asarray(nn.glu(x)), x[:, :3] * _sigmoid(x[:, 3:]), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(nn.glu(x.T, axis=0)), (x[:, :3] * _sigmoid(x[:, 3:])).T,
                               rtol=1e-10)
    check_grads(nn.glu, (x,), order=2)
    with pytest.raises(ValueError, match="even"):
        nn.glu(np.ones((2, 3)))


def test_functions_work_under_jit_and_vmap_free_composition():
    x = jnp.array([-1.0, 0.5, 2.0])
    for fn in (nn.gelu, nn.softplus, nn.log_softmax, nn.elu):
        np.testing.assert_allclose(np.asarray(nanofn.jit(fn)(x)), np.asarray(fn(x)), rtol=1e-6)


def test_relu_family_keeps_nan_and_has_zero_derivative_below_the_kink():
    # as JAX's maximum(x, 0): a NaN input gives NaN (a plain 0 would hide it), -inf gives 0
    x = np.array([-np.inf, -2.0, -0.0, 0.0, 3.0, 7.0, np.inf, np.nan], np.float32)
    relu = np.asarray(nanofn.nn.relu(x))
    np.testing.assert_array_equal(relu, [0, 0, 0, 0, 3, 7, np.inf, np.nan])
    assert not np.signbit(relu[:4]).any()
    np.testing.assert_array_equal(np.asarray(nanofn.nn.relu6(x)), [0, 0, 0, 0, 3, 6, 6, np.nan])
    grads = nanofn.vmap(nanofn.grad(nanofn.nn.relu))(x)
    np.testing.assert_array_equal(np.asarray(grads), [0, 0, 0, 0, 1, 1, 1, 0])
