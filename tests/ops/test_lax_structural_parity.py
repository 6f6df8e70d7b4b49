"""jax.lax's structural operations with their full parameter sets: convolutions' layouts,
padding and preferred_element_type, reduce_window's defaults and dilations, dynamic slicing's
allow_negative_indices, broadcasting and shape checks, reductions of empty axes, pytree
reductions, shifts, and control-flow arguments. Each test pins down a difference from JAX
that was found by comparing the two libraries; references are numpy or exact identities."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn import lax


def _np(x):
    return np.asarray(x)


rng = np.random.default_rng(0)


# ------------------------------------------------------------------------ convolutions


@pytest.mark.parametrize("nsp", [1, 2, 3])
def test_conv_transpose_defaults_to_channels_last_layouts(nsp):
    layouts = {1: ("NHC", "HIO", "NHC"), 2: ("NHWC", "HWIO", "NHWC"),
               3: ("NHWDC", "HWDIO", "NHWDC")}[nsp]
    x = rng.normal(size=(2,) + (4,) * nsp + (3,))  # channels last
    w = rng.normal(size=(2,) * nsp + (3, 5))        # spatial..., in, out
    got = lax.conv_transpose(x, w, (2,) * nsp, "SAME")
    want = lax.conv_transpose(x, w, (2,) * nsp, "SAME", dimension_numbers=layouts)
    assert got.shape == (2,) + (8,) * nsp + (5,)
    np.testing.assert_allclose(_np(got), _np(want))


def test_conv_transpose_consistent_padding_is_the_gradient_of_the_forward_conv():
    x, w = rng.normal(size=(1, 7, 7, 2)), rng.normal(size=(3, 3, 2, 4))
    dn, pads = ("NHWC", "HWIO", "NHWC"), [(1, 1), (1, 1)]
    y, vjp = nanofn.vjp(lambda v: lax.conv_general_dilated(v, w, (2, 2), pads,
                                                           dimension_numbers=dn), x)
    ct = rng.normal(size=y.shape)
    got = lax.conv_transpose(ct, w, (2, 2), pads, dimension_numbers=dn, transpose_kernel=True,
                             use_consistent_padding=True)
    np.testing.assert_allclose(_np(got), _np(vjp(ct)[0]), atol=1e-12)
    # without it the pairs are the transposed convolution's own padding
    zero = [(0, 0), (0, 0)]
    plain = lax.conv_transpose(ct, w, (2, 2), zero, dimension_numbers=dn, transpose_kernel=True)
    consistent = lax.conv_transpose(ct, w, (2, 2), zero, dimension_numbers=dn,
                                    transpose_kernel=True, use_consistent_padding=True)
    assert plain.shape == (1, 5, 5, 2) and consistent.shape == (1, 9, 9, 2)


def test_conv_dimension_numbers_is_a_named_tuple_and_checks_layouts():
    dn = lax.conv_dimension_numbers((1, 5, 5, 3), (3, 3, 3, 8), ("NHWC", "HWIO", "NHWC"))
    assert dn._fields == ("lhs_spec", "rhs_spec", "out_spec")
    assert dn == ((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))
    assert dn._replace(out_spec=(0, 1, 2, 3)).out_spec == (0, 1, 2, 3)
    with pytest.raises(TypeError, match="three layouts"):
        lax.conv_dimension_numbers((1, 5, 5, 3), (3, 3, 3, 8), ("NHWC", "HWIO"))
    with pytest.raises(TypeError, match="once each"):
        lax.conv_dimension_numbers((1, 5, 5, 3), (3, 3, 3, 8), ("NHHC", "HWIO", "NHWC"))
    with pytest.raises(TypeError, match="same spatial axes"):
        lax.conv_dimension_numbers((1, 5, 5, 3), (3, 3, 3, 8), ("NHWC", "HDIO", "NHWC"))


def test_conv_preferred_element_type_accumulates_in_it():
    x = rng.integers(-100, 100, size=(1, 3, 6, 6)).astype(np.int8)
    w = rng.integers(-100, 100, size=(2, 3, 3, 3)).astype(np.int8)
    got = lax.conv_general_dilated(x, w, (1, 1), "VALID", preferred_element_type=np.int32)
    want = lax.conv_general_dilated(x.astype(np.int32), w.astype(np.int32), (1, 1), "VALID")
    assert got.dtype == np.int32
    np.testing.assert_array_equal(_np(got), _np(want))  # sums beyond int8 range
    with pytest.raises(TypeError, match="narrower"):
        lax.conv_general_dilated(x.astype(np.float32), w.astype(np.float32), (1, 1), "VALID",
                                 preferred_element_type=np.float16)
    with pytest.raises(TypeError, match="does not fit"):
        lax.conv_general_dilated(x.astype(np.float32), w.astype(np.float32), (1, 1), "VALID",
                                 preferred_element_type=np.int32)


def test_dot_general_preferred_element_type_accumulates_and_differentiates():
    a = rng.integers(-100, 100, size=(3, 40)).astype(np.int8)
    b = rng.integers(-100, 100, size=(40, 2)).astype(np.int8)
    dn = (((1,), (0,)), ((), ()))
    got = lax.dot_general(a, b, dn, preferred_element_type=np.int32)
    np.testing.assert_array_equal(_np(got), a.astype(np.int32) @ b.astype(np.int32))
    x, y = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)

    def loss(x, y):
        return lax.dot_general(x, y, dn, preferred_element_type=np.float64).sum()
    for g in (nanofn.grad(loss, (0, 1)), nanofn.jit(nanofn.grad(loss, (0, 1)))):
        gx, gy = g(x, y)
        assert gx.dtype == gy.dtype == np.float32
        np.testing.assert_allclose(_np(gx), np.ones((3, 2)) @ y.T, rtol=1e-6)
        np.testing.assert_allclose(_np(gy), x.T @ np.ones((3, 2)), rtol=1e-6)


# ------------------------------------------------------------------------ reduce_window


def test_reduce_window_strides_and_padding_default_to_one_and_valid():
    x = np.arange(20.0, dtype=np.float32).reshape(4, 5)
    got = lax.reduce_window(x, 0.0, lax.add, (2, 2))
    want = x[:-1, :-1] + x[1:, :-1] + x[:-1, 1:] + x[1:, 1:]
    np.testing.assert_array_equal(_np(got), want)


@pytest.mark.parametrize("computation,init", [(lax.add, 0.0), (lax.max, -np.inf),
                                              (lax.mul, 1.0)])
def test_reduce_window_same_padding_uses_the_dilated_window(computation, init):
    x = rng.normal(size=(7, 6)).astype(np.float32)
    y = lax.reduce_window(x, init, computation, (3, 2), (1, 2), "SAME",
                          window_dilation=(2, 1))
    assert y.shape == (7, 3)  # ceil(7 / 1), ceil(6 / 2), as 'SAME' promises
    # the middle row sees rows 1, 3, 5 (a window of 3 dilated by 2, centred)
    op = {lax.add: np.sum, lax.max: np.max, lax.mul: np.prod}[computation]
    np.testing.assert_allclose(_np(y)[3, 0], op(x[[1, 3, 5], 0:2]), rtol=1e-5)


def test_reduce_window_sum_of_booleans_is_an_error():
    with pytest.raises(TypeError, match="booleans"):
        lax.reduce_window(np.ones((3, 3), bool), False, lax.add, (2, 2), (1, 1), "VALID")


@pytest.mark.parametrize("name,ufunc", [("cummax", np.maximum), ("cummin", np.minimum)])
@pytest.mark.parametrize("reverse", [False, True])
def test_cummax_cummin_order_complex_numbers_lexicographically(name, ufunc, reverse):
    x = (rng.integers(-2, 3, size=(6, 3)) + 1j * rng.integers(-2, 3, size=(6, 3)))
    x = x.astype(np.complex64)
    got = getattr(lax, name)(x, axis=0, reverse=reverse)
    want = ufunc.accumulate(x[::-1] if reverse else x, axis=0)
    np.testing.assert_array_equal(_np(got), want[::-1] if reverse else want)


# ------------------------------------------------------------------------ dynamic slicing


def test_dynamic_slice_allow_negative_indices():
    x = np.arange(10)
    np.testing.assert_array_equal(_np(lax.dynamic_slice(x, (-3,), (2,))), [7, 8])
    with pytest.raises(ValueError, match="allow_negative_indices"):
        lax.dynamic_slice(x, (-3,), (2,), allow_negative_indices=False)
    # a traced negative start is not wrapped: it clamps to 0
    f = nanofn.jit(lambda i: lax.dynamic_slice(x, (i,), (2,), allow_negative_indices=False))
    np.testing.assert_array_equal(_np(f(np.int32(-3))), [0, 1])
    x2 = np.arange(12).reshape(3, 4)
    got = lax.dynamic_slice(x2, (-1, 1), (1, 2), allow_negative_indices=(True, False))
    np.testing.assert_array_equal(_np(got), [[9, 10]])
    # the *_index_in_dim forms take a negative index without wrapping as a clamp to 0
    np.testing.assert_array_equal(
        _np(lax.dynamic_index_in_dim(x2, -1, 0, False, allow_negative_indices=False)), x2[0])
    got = lax.dynamic_update_index_in_dim(x2, np.full(4, -1), -1, 0,
                                          allow_negative_indices=False)
    np.testing.assert_array_equal(_np(got)[0], [-1] * 4)
    got = lax.dynamic_update_slice(x, np.array([-1, -1]), (-2,))
    np.testing.assert_array_equal(_np(got)[-2:], [-1, -1])
    with pytest.raises(ValueError, match="allow_negative_indices"):
        lax.dynamic_update_slice(x, np.array([-1, -1]), (-2,), allow_negative_indices=False)
    got = lax.dynamic_slice_in_dim(x2, -2, 2, 1, allow_negative_indices=True)
    np.testing.assert_array_equal(_np(got), x2[:, 2:])


# ------------------------------------------------------------------------ shapes


@given(st.permutations(range(3)))
@settings(max_examples=10, deadline=None)
def test_broadcast_in_dim_with_unordered_dimensions_transposes(perm):
    x = np.arange(24.0).reshape(2, 3, 4)
    shape = [0, 0, 0, 5]
    for i, d in enumerate(perm):
        shape[d] = x.shape[i]
    got = lax.broadcast_in_dim(x, tuple(shape), tuple(perm))
    want = np.broadcast_to(np.transpose(x, np.argsort(perm))[..., None], shape)
    np.testing.assert_array_equal(_np(got), want)


def test_shape_functions_check_their_axes_and_take_python_scalars():
    with pytest.raises(TypeError, match="distinct axes"):
        lax.broadcast_in_dim(np.ones((2, 2)), (2, 2), (0, 0))
    with pytest.raises(TypeError, match="not a permutation"):
        lax.transpose(np.ones((2, 3, 4)), (0, 1))
    with pytest.raises(ValueError, match="distinct axes"):
        lax.expand_dims(np.ones(3), (0, 0))
    for f in (lambda: lax.broadcast(1.0, (2,)), lambda: lax.broadcast_in_dim(1.0, (2,), ()),
              lambda: lax.reshape(1.0, (1, 1)), lambda: lax.expand_dims(1.0, (0,)),
              lambda: lax.broadcast_to_rank(1.0, 2), lambda: lax.reduce_sum(1.0, ())):
        assert f().dtype == np.float32
    assert lax.broadcast(1, (2,)).dtype == np.int32
    assert float(lax.reduce_prod(3.0, ())) == 3.0


def test_full_infers_its_dtype_and_takes_traced_values():
    assert lax.full((2,), 1.5).dtype == np.float32
    assert lax.full(3, 2).dtype == np.int32 and lax.full(3, 2).shape == (3,)
    assert lax.full((2,), np.float16(1)).dtype == np.float16
    assert float(nanofn.grad(lambda v: lax.full((3,), v).sum())(2.0)) == 3.0
    got = nanofn.vmap(lambda v: lax.full((2,), v))(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(_np(got), [[1, 1], [2, 2]])
    with pytest.raises(TypeError, match="scalar"):
        lax.full((2, 3), np.array([1.0, 2.0]))
    assert lax.full_like(np.ones(2, np.int32), 7, sharding=None).dtype == np.int32


def test_jax_keyword_arguments_are_accepted():
    x = np.ones((2, 3), np.float32)
    assert lax.stack(operands=[x, x]).shape == (2, 2, 3)
    assert lax.broadcast_in_dim(x, (4, 2, 3), (1, 2), out_sharding=None).shape == (4, 2, 3)
    assert lax.broadcast(x, (4,), out_sharding=None).shape == (4, 2, 3)
    assert lax.reshape(x, (3, 2), out_sharding=None).shape == (3, 2)
    assert lax.dot_general(x, x.T, (((1,), (0,)), ((), ())), out_sharding=None).shape == (2, 2)
    assert lax.dot(x, x.T, out_sharding=None).shape == (2, 2)
    assert lax.broadcasted_iota(np.int32, (2, 3), 1, out_sharding=None).shape == (2, 3)
    assert lax.reduce(x, 0.0, lax.add, (0,), out_sharding=None).shape == (3,)
    y = lax.conv_general_dilated(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), (1, 1), "VALID",
                                 out_sharding=None)
    assert y.shape == (1, 1, 2, 2)


# ------------------------------------------------------------------------ reductions


@pytest.mark.parametrize("dtype,low,high", [(np.float32, -np.inf, np.inf),
                                            (np.int32, -2**31, 2**31 - 1),
                                            (np.uint8, 0, 255), (np.bool_, False, True)])
def test_reductions_over_an_empty_axis_give_the_identity(dtype, low, high):
    x = np.zeros((0, 3), dtype)
    for f in (lambda v: v, nanofn.jit(lambda v: v)):
        got_max, got_min = lax.reduce_max(f(x), (0,)), lax.reduce_min(f(x), (0,))
        assert got_max.dtype == got_min.dtype == dtype
        np.testing.assert_array_equal(_np(got_max), [low] * 3)
        np.testing.assert_array_equal(_np(got_min), [high] * 3)
    b = np.zeros((0, 2), bool)
    np.testing.assert_array_equal(_np(lax.reduce_and(b, (0,))), [True, True])
    np.testing.assert_array_equal(_np(lax.reduce_or(b, (0,))), [False, False])


def test_argmax_argmin_need_an_integer_index_dtype():
    assert lax.argmax(np.array([1.0, 3.0, 3.0]), 0, np.int8).dtype == np.int8
    for f in (lax.argmax, lax.argmin):
        with pytest.raises(TypeError, match="index_dtype"):
            f(np.ones(3), 0, np.float32)


def test_reduce_takes_pytree_operands():
    x = rng.normal(size=(4, 3))
    i = np.arange(12, dtype=np.int32).reshape(4, 3)
    got = lax.reduce({"a": x, "b": i}, {"a": 0.0, "b": np.int32(0)},
                     lambda p, q: {"a": p["a"] + q["a"], "b": p["b"] + q["b"]}, (0,))
    np.testing.assert_allclose(_np(got["a"]), x.sum(0))
    np.testing.assert_array_equal(_np(got["b"]), i.sum(0))
    g = nanofn.grad(lambda v: lax.reduce({"p": v}, {"p": 0.0},
                                         lambda a, b: {"p": a["p"] + b["p"]}, (0, 1))["p"])(x)
    np.testing.assert_array_equal(_np(g), np.ones_like(x))


# ------------------------------------------------------------------------ bits


@given(st.sampled_from([np.uint8, np.uint16, np.uint32]), st.integers(0, 40),
       st.integers(0, 2**32 - 1))
@settings(max_examples=30, deadline=None)
def test_shift_right_arithmetic_copies_the_top_bit_of_unsigned_integers(dtype, shift, value):
    bits = 8 * np.dtype(dtype).itemsize
    v = dtype(value % 2**bits)
    signed = np.dtype(np.dtype(dtype).str.replace("u", "i")).type
    want = (np.array(v).view(signed) >> min(shift, bits - 1)).view(dtype)
    got = lax.shift_right_arithmetic(v, dtype(shift))
    assert got.dtype == dtype and int(got) == int(want)
    # nanofn.numpy's right_shift stays numpy's logical shift for unsigned integers
    assert int(fnp.right_shift(v, dtype(min(shift, bits - 1)))) == int(v) >> min(shift, bits - 1)


def test_integer_pow_needs_an_integer_exponent():
    np.testing.assert_array_equal(_np(lax.integer_pow(np.array([2.0]), 3)), [8.0])
    with pytest.raises(TypeError, match="Python int"):
        lax.integer_pow(np.array([2.0]), 2.5)


# ------------------------------------------------------------------------ control flow


def test_cond_takes_a_float_predicate_and_scan_an_unroll_of_zero():
    assert float(lax.cond(1.5, lambda: 1.0, lambda: 2.0)) == 1.0
    assert float(lax.cond(0.0, lambda: 1.0, lambda: 2.0)) == 2.0
    assert float(nanofn.jit(lambda p: lax.cond(p, lambda: 1.0, lambda: 2.0))(-0.5)) == 1.0
    total, _ = lax.scan(lambda c, v: (c + v, None), 0.0, np.arange(4.0), unroll=0)
    assert float(total) == 6.0


def test_lax_dtype_gives_python_numbers_the_default_dtypes():
    assert lax.dtype(1.0) == np.float32 and lax.dtype(3) == np.int32
    assert lax.dtype(True) == np.bool_ and lax.dtype(1j) == np.complex64
    assert lax.dtype(np.ones(2, np.int16)) == np.int16 and lax.dtype([1.0, 2.0]) == np.float32
