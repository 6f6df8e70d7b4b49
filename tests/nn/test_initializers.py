"""nanofn.nn.initializers: shapes, dtypes, statistics per fan mode and distribution."""

import numpy as np
import pytest

import nanofn
from nanofn.nn import initializers as init

KEY = nanofn.random.key(0)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
@pytest.mark.parametrize("shape", [(300, 200), (5, 5, 16, 24)])
def test_variance_scaling_statistics(mode, distribution, shape):
    scale = 2.0
    w = np.asarray(init.variance_scaling(scale, mode, distribution)(KEY, shape), np.float64)
    receptive = int(np.prod(shape[:-2]))
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    assert w.shape == shape and w.dtype == np.float64
    # the sample variance of N draws has relative standard error sqrt(2 / N) (< 2% here)
    np.testing.assert_allclose(w.var(), scale / n, rtol=0.06)
    assert abs(w.mean()) < 4 * np.sqrt(scale / n / w.size)
    if distribution == "uniform":
        limit = np.sqrt(3 * scale / n)
        assert w.min() >= -limit and w.max() < limit
    if distribution == "truncated_normal":
        std = np.sqrt(scale / n) / 0.87962566103423978
        assert np.abs(w).max() <= 2 * std * (1 + 1e-6)


@pytest.mark.parametrize("name, scale, mode, dist", [
    ("glorot_uniform", 1.0, "fan_avg", "uniform"), ("glorot_normal", 1.0, "fan_avg", "tn"),
    ("lecun_uniform", 1.0, "fan_in", "uniform"), ("lecun_normal", 1.0, "fan_in", "tn"),
    ("he_uniform", 2.0, "fan_in", "uniform"), ("he_normal", 2.0, "fan_in", "tn"),
])
def test_named_variance_scalings(name, scale, mode, dist):
    shape = (400, 100)
    w = np.asarray(getattr(init, name)()(KEY, shape))
    assert w.dtype == np.float32
    n = {"fan_in": 400, "fan_avg": 250}[mode]
    np.testing.assert_allclose(w.var(), scale / n, rtol=0.06)
    if dist == "uniform":
        assert np.abs(w).max() <= np.sqrt(3 * scale / n)
    else:
        assert np.abs(w).max() <= 2 * np.sqrt(scale / n) / 0.8796 * 1.0001


def test_in_out_axes_and_batch_axis():
    assert init.compute_fans((3, 3, 16, 32)) == (144, 288)
    assert init.compute_fans((16, 32), in_axis=1, out_axis=0) == (32, 16)
    assert init.compute_fans((7, 10, 20), batch_axis=0) == (10, 20)
    w = np.asarray(init.variance_scaling(1.0, "fan_in", "normal", in_axis=0, out_axis=1)(
        KEY, (50, 2000)))
    np.testing.assert_allclose(w.var(), 1 / 50, rtol=0.06)


def test_simple_initializers():
    np.testing.assert_array_equal(np.asarray(init.zeros(KEY, (2, 3))), np.zeros((2, 3)))
    np.testing.assert_array_equal(np.asarray(init.ones(KEY, (4,), np.float64)), np.ones(4))
    assert init.ones(KEY, (4,), np.float64).dtype == np.float64
    np.testing.assert_array_equal(np.asarray(init.constant(3.5)(KEY, (2,))), [3.5, 3.5])
    w = np.asarray(init.normal(0.5)(KEY, (20000,)))
    np.testing.assert_allclose(w.std(), 0.5, rtol=0.03)
    u = np.asarray(init.uniform(2.0)(KEY, (20000,)))
    assert u.min() >= 0 and u.max() < 2.0
    np.testing.assert_allclose(u.mean(), 1.0, rtol=0.03)
    t = np.asarray(init.truncated_normal(1.0, lower=-1.0, upper=1.0)(KEY, (20000,)))
    assert np.abs(t).max() <= 1.0
    # the variance of a standard normal truncated to [-1, 1]
    np.testing.assert_allclose(t.var(), 0.2912, rtol=0.05)


def test_same_key_same_values_new_key_new_values():
    a = np.asarray(init.glorot_normal()(KEY, (5, 5)))
    b = np.asarray(init.glorot_normal()(KEY, (5, 5)))
    c = np.asarray(init.glorot_normal()(nanofn.random.key(1), (5, 5)))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("shape, column_axis", [((6, 6), -1), ((10, 4), -1), ((4, 10), -1),
                                                 ((3, 3, 4, 8), -1), ((8, 5), 0)])
def test_orthogonal(shape, column_axis):
    w = np.asarray(init.orthogonal(scale=2.0, column_axis=column_axis)(KEY, shape), np.float64)
    assert w.shape == shape
    mat = np.moveaxis(w, column_axis, -1).reshape(-1, shape[column_axis])
    rows, cols = mat.shape
    gram = mat.T @ mat if rows >= cols else mat @ mat.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(min(rows, cols)), atol=1e-5)


@pytest.mark.parametrize("shape", [(6, 6), (10, 4), (4, 10)])
def test_orthogonal_complex_dtype_is_unitary(shape):
    # JAX samples the unitary group for a complex dtype (QR of a complex normal matrix)
    w = np.asarray(init.orthogonal()(KEY, shape, np.complex64), np.complex128)
    assert w.shape == shape and init.orthogonal()(KEY, shape, np.complex64).dtype == np.complex64
    rows, cols = shape
    gram = w.conj().T @ w if rows >= cols else w @ w.conj().T
    np.testing.assert_allclose(gram, np.eye(min(rows, cols)), atol=1e-5)
    assert np.abs(w.imag).max() > 0.1  # not a real matrix stored as complex
    with pytest.raises(ValueError, match="float or complex"):
        nanofn.random.orthogonal(KEY, 3, dtype=np.int32)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="mode"):
        init.variance_scaling(1.0, "fan_mid", "normal")
    with pytest.raises(ValueError, match="distribution"):
        init.variance_scaling(1.0, "fan_in", "cauchy")
    with pytest.raises(ValueError, match="at least 2 axes"):
        init.orthogonal()(KEY, (5,))


@pytest.mark.parametrize("shape", [(3, 2, 4), (3, 4, 2, 2), (2, 2, 3, 3, 5)])
def test_delta_orthogonal_is_an_orthogonal_matrix_at_the_window_centre(shape):
    w = np.array(init.delta_orthogonal(scale=2.0)(nanofn.random.key(1), shape))
    assert w.shape == shape and w.dtype == np.float32
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    m = w[centre]
    np.testing.assert_allclose(m @ m.T, 4.0 * np.eye(shape[-2]), atol=1e-5)  # rows: in <= out
    w[centre] = 0.0
    assert not w.any()  # zero everywhere else
    with pytest.raises(ValueError, match="must not outnumber"):
        init.delta_orthogonal()(nanofn.random.key(0), (3, 4, 2))
    with pytest.raises(ValueError, match="3, 4 or 5 axes"):
        init.delta_orthogonal()(nanofn.random.key(0), (2, 2))
