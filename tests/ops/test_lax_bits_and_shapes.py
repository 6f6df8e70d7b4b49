"""jax.lax's bit functions (`population_count`, `clz`, `reduce_xor`), `reduce_precision`,
`approx_max_k`/`approx_min_k`, `index_take`, `ragged_dot` and the shape helpers of the
convolutions, against plain Python and numpy and against the shapes nanofn's own
convolutions and windows produce."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nanofn
import nanofn.numpy as fnp
from nanofn import lax
from nanofn.testing import check_grads

INT_DTYPES = [np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32, np.int64]


@settings(max_examples=30, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(INT_DTYPES))
def test_population_count_and_clz_count_twos_complement_bits(data, dtype):
    x = data.draw(hnp.arrays(dtype, hnp.array_shapes(max_dims=2, max_side=5)))
    bits = 8 * np.dtype(dtype).itemsize
    words = [int(v) % (1 << bits) for v in x.ravel()]  # the two's complement bits
    pop = np.asarray(lax.population_count(x))
    lead = np.asarray(lax.clz(x))
    assert pop.dtype == lead.dtype == dtype
    assert pop.ravel().tolist() == [bin(w).count("1") for w in words]
    assert lead.ravel().tolist() == [bits - w.bit_length() for w in words]


@settings(max_examples=30, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.bool_, np.int32, np.uint8]))
def test_reduce_xor(data, dtype):
    x = data.draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)))
    axes = data.draw(st.sets(st.integers(0, x.ndim - 1), min_size=1))
    want = x
    for a in sorted(axes, reverse=True):
        want = np.bitwise_xor.reduce(want, axis=a)
    got = lax.reduce_xor(x, tuple(axes))
    np.testing.assert_array_equal(np.asarray(got), want)
    assert np.asarray(got).dtype == dtype


def test_reduce_precision_rounds_like_the_smaller_formats():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=2000) * 10.0 ** rng.uniform(-4, 4.5, 2000)).astype(np.float32)
    # float16's format: round to nearest even, overflow to inf; where float16 has normal
    # numbers (its subnormals are flushed to zero by reduce_precision, as by XLA)
    half = np.abs(x) >= np.finfo(np.float16).tiny
    got = np.asarray(lax.reduce_precision(x, 5, 10))
    np.testing.assert_array_equal(got[half], x[half].astype(np.float16).astype(np.float32))
    assert (got[~half] == 0).all()
    # bfloat16: the float32 with its low 16 bits rounded off (nearest even)
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16).astype(np.uint32)
    np.testing.assert_array_equal(np.asarray(lax.reduce_precision(x, 8, 7)),
                                  rounded.view(np.float32))
    edge = np.array([np.nan, np.inf, -np.inf, -0.0, 3.4e38], np.float32)
    out = np.asarray(lax.reduce_precision(edge, 5, 10))
    assert np.isnan(out[0]) and out[1] == np.inf and out[2] == -np.inf
    assert out[3] == 0 and np.signbit(out[3]) and out[4] == np.inf
    # float64 -> float32's format
    y = rng.normal(size=50) * 1e3
    np.testing.assert_array_equal(np.asarray(lax.reduce_precision(y, 8, 23)),
                                  y.astype(np.float32).astype(np.float64))


def test_reduce_precision_derivatives_round_tangents_and_cotangents():
    x = np.linspace(-3.0, 3.0, 7) + 1e-3
    w = np.linspace(0.1, 1.7, 7) / 3.0
    g = nanofn.grad(lambda v: fnp.sum(lax.reduce_precision(v, 5, 10) * w))(x)
    np.testing.assert_array_equal(np.asarray(g), np.asarray(lax.reduce_precision(w, 5, 10)))
    _, t = nanofn.jvp(lambda v: lax.reduce_precision(v, 5, 10), (x,), (w,))
    np.testing.assert_array_equal(np.asarray(t), np.asarray(lax.reduce_precision(w, 5, 10)))
    v = nanofn.vmap(lambda v: lax.reduce_precision(v, 8, 7))(x.reshape(7, 1))
    np.testing.assert_array_equal(np.asarray(v).ravel(),
                                  np.asarray(lax.reduce_precision(x, 8, 7)))
    with pytest.raises(TypeError, match="float"):
        lax.reduce_precision(np.arange(3), 5, 10)


def test_approx_top_k_is_exact_along_any_axis():
    x = np.random.default_rng(1).normal(size=(4, 9))
    values, idx = lax.approx_max_k(x, 3)
    np.testing.assert_array_equal(np.asarray(values), -np.sort(-x, axis=1)[:, :3])
    np.testing.assert_array_equal(np.take_along_axis(x, np.asarray(idx), 1), values)
    values, idx = lax.approx_min_k(x, 2, reduction_dimension=0)
    np.testing.assert_array_equal(np.asarray(values), np.sort(x, axis=0)[:2])
    np.testing.assert_array_equal(np.take_along_axis(x, np.asarray(idx), 0), values)


def test_index_take():
    x = np.arange(60).reshape(3, 4, 5)
    i, j = np.array([1, -1, 2]), np.array([0, 3, 9])
    got = lax.index_take(x, (i, j), (0, 1))
    np.testing.assert_array_equal(np.asarray(got), x[i % 3, j % 4])
    np.testing.assert_array_equal(np.asarray(lax.index_take(x, (j,), (2,))),
                                  np.moveaxis(x[:, :, j % 5], 2, 0))


def test_ragged_dot_multiplies_each_row_group_by_its_matrix():
    rng = np.random.default_rng(2)
    lhs, rhs = rng.normal(size=(7, 3)), rng.normal(size=(3, 3, 4))
    sizes = np.array([2, 0, 4], np.int32)  # an empty group, and a row past the groups
    want = np.zeros((7, 4))
    start = 0
    for g, n in enumerate(sizes):
        want[start:start + n] = lhs[start:start + n] @ rhs[g]
        start += n
    np.testing.assert_allclose(np.asarray(lax.ragged_dot(lhs, rhs, sizes)), want, rtol=1e-12)
    check_grads(lambda a, b: lax.ragged_dot(a, b, sizes), (lhs, rhs), order=2)
    with pytest.raises(ValueError, match="group_sizes"):
        lax.ragged_dot(lhs, rhs, np.array([1, 2]))


@pytest.mark.parametrize("spec, strides, padding", [
    (("NCHW", "OIHW", "NCHW"), (1, 1), "SAME"),
    (("NHWC", "HWIO", "NHWC"), (2, 1), "VALID"),
    (("NHWC", "HWIO", "NCHW"), (2, 3), ((1, 2), (0, 1))),
])
def test_conv_shape_helpers_give_the_shapes_convolutions_produce(spec, strides, padding):
    lhs_nchw, rhs_oihw = (2, 3, 9, 8), (4, 3, 3, 2)
    lhs_shape = tuple(lhs_nchw["NCHW".index(ch)] for ch in spec[0])
    rhs_shape = tuple(rhs_oihw["OIHW".index(ch)] for ch in spec[1])
    lhs, rhs = np.ones(lhs_shape, np.float32), np.ones(rhs_shape, np.float32)
    out = lax.conv_general_dilated(lhs, rhs, strides, padding, dimension_numbers=spec)
    assert lax.conv_general_shape_tuple(lhs_shape, rhs_shape, strides, padding, spec) == \
        out.shape
    perms = lax.conv_general_permutations(spec)
    assert tuple(lhs_shape[i] for i in perms[0]) == lhs_nchw
    assert tuple(rhs_shape[i] for i in perms[1]) == rhs_oihw
    # conv_transpose reads the kernel in the same layout (its I is the input's features)
    out_t = lax.conv_transpose(lhs, rhs, strides, padding, dimension_numbers=spec)
    assert lax.conv_transpose_shape_tuple(lhs_shape, rhs_shape, strides, padding, spec) == \
        out_t.shape


def test_reduce_window_shape_tuple():
    x = np.ones((2, 9, 8, 3), np.float32)
    for pads, base, win in [(((0, 0),) * 4, None, None),
                            (((0, 0), (1, 2), (0, 1), (0, 0)), (1, 2, 1, 1), (1, 1, 2, 1))]:
        out = lax.reduce_window(x, 0.0, lax.add, (1, 3, 2, 1), (1, 2, 2, 1), pads,
                                base_dilation=base, window_dilation=win)
        assert lax.reduce_window_shape_tuple(x.shape, (1, 3, 2, 1), (1, 2, 2, 1), pads,
                                             base, win) == out.shape


def test_platform_dependent_calls_the_cpu_function():
    assert lax.platform_dependent(2.0, cpu=lambda v: v + 1, default=lambda v: v) == 3.0
    assert lax.platform_dependent(2.0, cuda=lambda v: v + 1, default=lambda v: -v) == -2.0
    with pytest.raises(ValueError, match="no function for 'cpu'"):
        lax.platform_dependent(2.0, tpu=lambda v: v)


# --- mulhi, empty, broadcast_like, composite, igamma_grad_a ------------------------------


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32,
                                   np.int64, np.uint64])
@given(data=st.data())
@settings(max_examples=10)
def test_mulhi_is_the_high_half_of_the_exact_product(dtype, data):
    info = np.iinfo(dtype)
    ints = st.integers(int(info.min), int(info.max))
    x = np.array(data.draw(st.lists(ints, min_size=1, max_size=8)) + [info.min, info.max],
                 dtype)
    y = np.array(data.draw(st.lists(ints, min_size=len(x) - 2, max_size=len(x) - 2))
                 + [info.max, info.min], dtype)
    bits = 8 * np.dtype(dtype).itemsize
    want = [(int(a) * int(b)) >> bits for a, b in zip(x, y)]
    got = lax.mulhi(x, y)
    assert got.dtype == dtype
    assert [int(v) for v in np.asarray(got)] == want
    assert [int(v) for v in np.asarray(nanofn.jit(lax.mulhi)(x, y))] == want


def test_mulhi_rejects_mixed_or_float_dtypes():
    with pytest.raises(TypeError, match="mulhi: x and y must be integers of one dtype, got "
                                        "int32 and int64"):
        lax.mulhi(np.int32(1), np.int64(1))


def test_empty_broadcast_like_and_composite():
    e = lax.empty((2, 3), np.float64)
    assert e.shape == (2, 3) and e.dtype == np.float64
    b = lax.broadcast_like(np.arange(3.0), np.zeros((4, 3)))
    np.testing.assert_array_equal(np.asarray(b), np.broadcast_to(np.arange(3.0), (4, 3)))
    tangent = lax.composite(lambda x: fnp.sin(x) / fnp.cos(x), name="my.tangent")
    assert tangent.composite_name == "my.tangent"
    x = np.array([0.1, 0.4])
    np.testing.assert_allclose(np.asarray(tangent(x)), np.tan(x))
    check_grads(tangent, (x,), order=2)  # JAX refuses this derivative; nanofn differentiates
    with pytest.raises(TypeError, match="composite: name must be a non-empty string"):
        lax.composite(lambda x: x, name="")


def test_igamma_grad_a_is_the_derivative_of_igamma_in_a():
    a, x = np.array([0.5, 2.0, 7.5]), np.array([0.3, 1.5, 9.0])
    h = 1e-6
    fd = (np.asarray(lax.igamma(a + h, x)) - np.asarray(lax.igamma(a - h, x))) / (2 * h)
    np.testing.assert_allclose(np.asarray(lax.igamma_grad_a(a, x)), fd, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(nanofn.grad(lambda a: lax.igamma(a, x).sum())(a)),
                               np.asarray(lax.igamma_grad_a(a, x)), rtol=1e-12)


def test_special_function_primitives_are_found_by_their_jax_names():
    # registered lazily (import nanofn does not load them), found on first lookup
    np.testing.assert_allclose(float(lax.lgamma_p.bind(np.float64(4.0))), np.log(6.0))
    assert lax.igamma_grad_a_p.name == "igamma_grad_a"
    with pytest.raises(AttributeError, match="has no attribute 'not_a_primitive_p'"):
        lax.not_a_primitive_p


def test_python_scalars_in_lax_ops_are_weakly_typed():
    # default dtypes between scalars, the array's dtype next to an array of the same kind
    assert lax.mul(2.0, 2.0).dtype == np.float32 and lax.add(2, 3).dtype == np.int32
    assert lax.sin(1.0).dtype == np.float32
    assert float(lax.add(lax.mul(2.0, 2.0), 10.0)) == 14.0
    assert lax.mul(np.ones(2), 2.0).dtype == np.float64
    assert lax.max(np.ones(2, np.uint8), 3).dtype == np.uint8
    with pytest.raises(TypeError, match="one dtype, got f32\\[2\\], i32\\[\\]"):
        lax.add(np.ones(2, np.float32), 2)  # as JAX: lax does not promote kinds


@pytest.mark.parametrize("old, new", [(np.float32, np.uint8), (np.float64, np.int16),
                                      (np.int16, np.int32), (np.uint8, np.float64),
                                      (np.float32, np.int32)])
def test_bitcast_convert_type_follows_xla_shape_rule(old, new):
    r = np.dtype(old).itemsize / np.dtype(new).itemsize
    shape = (3, 2) if r >= 1 else (3, int(1 / r))
    x = np.arange(np.prod(shape)).astype(old).reshape(shape)
    got = lax.bitcast_convert_type(x, new)
    want = x.view(new).reshape(shape + (int(r),) if r > 1 else shape[:-1] if r < 1 else shape)
    np.testing.assert_array_equal(np.asarray(got), want)
    np.testing.assert_array_equal(np.asarray(nanofn.jit(lambda v: lax.bitcast_convert_type(
        v, new))(x)), want)
    batched = nanofn.vmap(lambda v: lax.bitcast_convert_type(v, new))(np.stack([x, x]))
    np.testing.assert_array_equal(np.asarray(batched), np.stack([want, want]))


def test_bitcast_convert_type_to_a_wider_dtype_needs_the_ratio_axis():
    with pytest.raises(TypeError, match="needs a last axis of size 4, got shape \\(3,\\)"):
        lax.bitcast_convert_type(np.zeros(3, np.uint8), np.float32)
