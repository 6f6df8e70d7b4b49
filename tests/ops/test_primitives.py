"""Every registered primitive, from one table of specs.

Each spec says how to draw inputs (shapes from hypothesis, values inside the primitive's
domain), what numpy computes for it, and to what order it is differentiable. The tests
check values against numpy, the JVP against central finite differences and the VJP
against the JVP by the inner-product identity (`check_grads`, float64), and second order
where the primitive is twice differentiable. `test_every_primitive_has_a_spec` fails when
a primitive is registered without a row here.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np
import pytest
import scipy.special
from hypothesis import given, strategies as st

import nanofn
from nanofn import _core
from nanofn.ops import _base as P
from nanofn.ops import _complex as C
from nanofn.numpy import linalg as L
from nanofn.testing import broadcastable_shapes, check_grads, shapes


class Spec(NamedTuple):
    prim: _core.Primitive
    ref: Callable          # numpy reference, called with numpy args and params
    make: Callable         # (rng, draw) -> (args, params)
    order: int = 2         # 0: not differentiable; 1 or 2
    diff: tuple = None     # which args to differentiate (default: float args)
    rtol: float = 1e-6


def _vals(rng, shape, lo, hi, dtype=np.float64):
    return rng.uniform(lo, hi, size=shape).astype(dtype)


def unary(prim, ref, lo=-2.0, hi=2.0, order=2, **params):
    def make(rng, draw):
        return [_vals(rng, draw(shapes(max_dims=3, max_side=4)), lo, hi)], params
    return Spec(prim, lambda x, **p: ref(x), make, order)


def binary(prim, ref, lo=-2.0, hi=2.0, lo2=None, hi2=None, order=2, dtype=np.float64):
    def make(rng, draw):
        s1, s2 = draw(broadcastable_shapes(2, max_dims=3, max_side=4))
        a = _vals(rng, s1, lo, hi, dtype)
        b = _vals(rng, s2, lo if lo2 is None else lo2, hi if hi2 is None else hi2, dtype)
        return [a, b], {}
    return Spec(prim, ref, make, order)


def _int_binary(prim, ref, lo=-50, hi=50, lo2=None, hi2=None):
    def make(rng, draw):
        s1, s2 = draw(broadcastable_shapes(2, max_dims=2, max_side=4))
        a = rng.integers(lo, hi, size=s1).astype(np.int32)
        b = rng.integers(lo if lo2 is None else lo2, hi if hi2 is None else hi2,
                         size=s2).astype(np.int32)
        return [a, b], {}
    return Spec(prim, ref, make, 0)


def _away_from(lo, hi, bad, margin=0.1):
    """Values in (lo, hi) kept `margin` away from the points in `bad` (kinks, ties)."""
    def draw_vals(rng, shape):
        v = rng.uniform(lo, hi, size=shape)
        for b in bad:
            v = np.where(np.abs(v - b) < margin, b + margin * np.sign(v - b + 1e-12) * 2, v)
        return v
    return draw_vals


def _reduce(prim, ref, order=2, distinct=False):
    def make(rng, draw):
        shape = draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
        axes = draw(st.sets(st.integers(0, len(shape) - 1), min_size=1))
        x = rng.permutation(np.arange(np.prod(shape), dtype=np.float64)).reshape(shape) / 3.0 \
            if distinct else _vals(rng, shape, -2, 2)
        return [x], {"axes": tuple(sorted(axes))}
    return Spec(prim, lambda x, axes: ref(x, axis=axes), make, order)


def _argext(prim, ref):
    def make(rng, draw):
        shape = draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
        axis = draw(st.integers(0, len(shape) - 1))
        return [_vals(rng, shape, -2, 2)], {"axis": axis, "index_dtype": np.dtype(np.int32)}
    return Spec(prim, lambda x, axis, index_dtype: ref(x, axis=axis).astype(index_dtype), make, 0)


def _broadcast_in_dim():
    def make(rng, draw):
        out_shape = draw(shapes(max_dims=3, max_side=3))
        dims = tuple(sorted(draw(st.sets(st.integers(0, len(out_shape) - 1), max_size=len(out_shape))))
                     ) if out_shape else ()
        in_shape = tuple(draw(st.sampled_from([1, out_shape[d]])) for d in dims)
        return [_vals(rng, in_shape, -2, 2)], {"shape": out_shape, "broadcast_dimensions": dims}

    def ref(x, shape, broadcast_dimensions):
        expanded = [1] * len(shape)
        for i, d in enumerate(broadcast_dimensions):
            expanded[d] = x.shape[i]
        return np.broadcast_to(x.reshape(expanded), shape)
    return Spec(P.broadcast_in_dim_p, ref, make)


def _reshape():
    def make(rng, draw):
        shape = draw(shapes(max_dims=3, max_side=4))
        size = int(np.prod(shape))
        new = draw(st.sampled_from([(size,), (1, size), (size, 1)]))
        return [_vals(rng, shape, -2, 2)], {"new_sizes": new}
    return Spec(P.reshape_p, lambda x, new_sizes: x.reshape(new_sizes), make)


def _transpose():
    def make(rng, draw):
        shape = draw(shapes(max_dims=3, max_side=4))
        perm = tuple(draw(st.permutations(range(len(shape)))))
        return [_vals(rng, shape, -2, 2)], {"permutation": perm}
    return Spec(P.transpose_p, lambda x, permutation: np.transpose(x, permutation), make)


def _squeeze():
    def make(rng, draw):
        shape = list(draw(shapes(max_dims=2, max_side=3)))
        pos = draw(st.integers(0, len(shape)))
        shape.insert(pos, 1)
        return [_vals(rng, tuple(shape), -2, 2)], {"dimensions": (pos,)}
    return Spec(P.squeeze_p, lambda x, dimensions: np.squeeze(x, dimensions), make)


def _dot_general():
    def make(rng, draw):
        b, m, k, n = (draw(st.integers(0, 3)) for _ in range(4))
        kind = draw(st.sampled_from(["matmul", "batched", "vecdot", "outer", "transposed"]))
        if kind == "matmul":
            x, y, dn = (m, k), (k, n), (((1,), (0,)), ((), ()))
        elif kind == "batched":
            x, y, dn = (b, m, k), (b, k, n), (((2,), (1,)), ((0,), (0,)))
        elif kind == "vecdot":
            x, y, dn = (k,), (k,), (((0,), (0,)), ((), ()))
        elif kind == "outer":
            x, y, dn = (m,), (n,), (((), ()), ((), ()))
        else:  # contract the first axis of both, batch on the last
            x, y, dn = (k, m, b), (k, b, n), (((0,), (0,)), ((2,), (1,)))
        return [_vals(rng, x, -2, 2), _vals(rng, y, -2, 2)], {"dimension_numbers": dn}

    def ref(x, y, dimension_numbers, preferred_element_type=None):
        (lc, rc), (lb, rb) = dimension_numbers
        letters = iter("abcdefghij")
        xl = [next(letters) for _ in range(x.ndim)]
        yl = [next(letters) for _ in range(y.ndim)]
        for i, j in zip(lc + lb, rc + rb):
            yl[j] = xl[i]
        out = [xl[i] for i in lb] + [c for i, c in enumerate(xl) if i not in lc + lb] + \
              [c for j, c in enumerate(yl) if j not in rc + rb]
        return np.einsum(f"{''.join(xl)},{''.join(yl)}->{''.join(out)}", x, y)
    return Spec(P.dot_general_p, ref, make)


def _select_n():
    def make(rng, draw):
        s0, s1, s2 = draw(broadcastable_shapes(3, max_dims=3, max_side=3))
        return [rng.random(s0) < 0.5, _vals(rng, s1, -2, 2), _vals(rng, s2, -2, 2)], {}
    return Spec(P.select_n_p, lambda w, a, b: np.where(w, b, a), make, diff=(1, 2))


def _convert():
    def make(rng, draw):
        return [_vals(rng, draw(shapes(max_dims=2, max_side=4)), -2, 2)], \
            {"new_dtype": np.dtype(np.float32)}
    return Spec(P.convert_element_type_p, lambda x, new_dtype: x.astype(new_dtype), make, 0)


def _integer_pow():
    def make(rng, draw):
        y = draw(st.integers(-3, 4))
        lo = 0.5 if y < 0 else -2.0
        return [_vals(rng, draw(shapes(max_dims=2, max_side=4)), lo, 2.0)], {"y": y}
    return Spec(P.integer_pow_p, lambda x, y: np.power(x, float(y)), make)


def _iota():
    def make(rng, draw):
        shape = draw(shapes(min_dims=1, max_dims=3, max_side=4))
        d = draw(st.integers(0, len(shape) - 1))
        return [], {"dtype": np.dtype(np.int32), "shape": shape, "dimension": d}

    def ref(dtype, shape, dimension):
        return np.indices(shape, dtype=dtype)[dimension]
    return Spec(P.iota_p, ref, make, 0)


def _bitcast():
    def make(rng, draw):
        return [_vals(rng, draw(shapes(max_dims=2)), -2, 2).astype(np.float32)], \
            {"new_dtype": np.dtype(np.uint32)}
    return Spec(P.bitcast_convert_type_p, lambda x, new_dtype: x.view(new_dtype), make, 0)


def _cvals(rng, shape, lo=-2.0, hi=2.0):
    """complex128 values with both parts uniform in (lo, hi)."""
    return rng.uniform(lo, hi, size=shape) + 1j * rng.uniform(lo, hi, size=shape)


def cunary(prim, ref, lo=-2.0, hi=2.0, order=2, away_from_zero=False):
    """A unary primitive on complex128 inputs (checked in the real and imaginary directions)."""
    def make(rng, draw):
        z = _cvals(rng, draw(shapes(max_dims=3, max_side=4)), lo, hi)
        if away_from_zero:
            z = np.where(np.abs(z) < 0.2, z + 0.5, z)
        return [z], {}
    return Spec(prim, lambda x: ref(x), make, order)


def cbinary(prim, ref, lo=-2.0, hi=2.0, away_from_zero=False):
    def make(rng, draw):
        s1, s2 = draw(broadcastable_shapes(2, max_dims=3, max_side=4))
        b = _cvals(rng, s2, lo, hi)
        if away_from_zero:
            b = np.where(np.abs(b) < 0.5, b + 1.0, b)
        return [_cvals(rng, s1, lo, hi), b], {}
    return Spec(prim, ref, make)


def _complex_from_parts():
    def make(rng, draw):
        s1, s2 = draw(broadcastable_shapes(2, max_dims=3, max_side=4))
        return [_vals(rng, s1, -2, 2), _vals(rng, s2, -2, 2)], {}
    return Spec(C.complex_p, lambda x, y: x + 1j * y, make)


def _complexified(spec):
    """The same spec with a random imaginary part added to every float argument."""
    def make(rng, draw):
        args, params = spec.make(rng, draw)
        return [a + 1j * rng.uniform(-2, 2, size=a.shape) if a.dtype.kind == "f" else a
                for a in args], params
    return spec._replace(make=make)


def _square(rng, draw, complex_=False):
    """A batch of well-conditioned square matrices (diagonally shifted)."""
    n = draw(st.integers(1, 3))
    shape = draw(shapes(max_dims=2, max_side=2)) + (n, n)
    a = _vals(rng, shape, -1, 1) + 2 * n * np.eye(n)
    return a + 1j * _vals(rng, shape, -1, 1) if complex_ else a


def _linalg_unary(prim, ref, complex_=False):
    return Spec(prim, ref, lambda rng, draw: ([_square(rng, draw, complex_)], {}), rtol=1e-9)


def _linalg_solve(complex_=False):
    def make(rng, draw):
        a = _square(rng, draw, complex_)
        k = draw(st.integers(1, 2))
        b = _vals(rng, a.shape[:-1] + (k,), -2, 2)
        return [a, b + 1j * _vals(rng, b.shape, -2, 2) if complex_ else b], {}
    return Spec(L.solve_p, np.linalg.solve, make, rtol=1e-9)


def _special_unary(prim, ref, lo, hi):
    return unary(prim, ref, lo, hi)


def _round_away(x):
    return np.trunc(x + np.copysign(0.5, x))


SPECS: dict[str, Spec] = {
    "neg": unary(P.neg_p, np.negative),
    "sign": unary(P.sign_p, np.sign, order=0),
    "floor": unary(P.floor_p, np.floor, order=0),
    "ceil": unary(P.ceil_p, np.ceil, order=0),
    "round": unary(P.round_p, _round_away, order=0),
    "abs": Spec(P.abs_p, np.abs, lambda rng, draw: (
        [_away_from(-2, 2, [0.0])(rng, draw(shapes(max_dims=2)))], {})),
    "exp": unary(P.exp_p, np.exp),
    "exp2": unary(P.exp2_p, np.exp2),
    "log": unary(P.log_p, np.log, 0.2, 3.0),
    "log1p": unary(P.log1p_p, np.log1p, -0.7, 3.0),
    "expm1": unary(P.expm1_p, np.expm1),
    "sin": unary(P.sin_p, np.sin),
    "cos": unary(P.cos_p, np.cos),
    "tan": unary(P.tan_p, np.tan, -1.2, 1.2),
    "asin": unary(P.asin_p, np.arcsin, -0.8, 0.8),
    "acos": unary(P.acos_p, np.arccos, -0.8, 0.8),
    "atan": unary(P.atan_p, np.arctan),
    "sinh": unary(P.sinh_p, np.sinh),
    "cosh": unary(P.cosh_p, np.cosh),
    "tanh": unary(P.tanh_p, np.tanh),
    "asinh": unary(P.asinh_p, np.arcsinh),
    "acosh": unary(P.acosh_p, np.arccosh, 1.2, 3.0),
    "atanh": unary(P.atanh_p, np.arctanh, -0.8, 0.8),
    "logistic": unary(P.logistic_p, scipy.special.expit, -4, 4),
    "sqrt": unary(P.sqrt_p, np.sqrt, 0.2, 3.0),
    "rsqrt": unary(P.rsqrt_p, lambda x: 1 / np.sqrt(x), 0.2, 3.0),
    "cbrt": unary(P.cbrt_p, np.cbrt, 0.2, 3.0),
    "erf": unary(P.erf_p, scipy.special.erf),
    "erf_inv": unary(P.erf_inv_p, scipy.special.erfinv, -0.9, 0.9),
    "integer_pow": _integer_pow(),
    "is_finite": unary(P.is_finite_p, np.isfinite, order=0),
    "not": Spec(P.not_p, np.logical_not, lambda rng, draw: (
        [rng.random(draw(shapes(max_dims=2))) < 0.5], {}), 0),
    "add": binary(P.add_p, np.add),
    "sub": binary(P.sub_p, np.subtract),
    "mul": binary(P.mul_p, np.multiply),
    "div": binary(P.div_p, np.divide, lo2=0.5, hi2=2.0),
    "rem": Spec(P.rem_p, np.fmod, lambda rng, draw: (
        [_away_from(-5, 5, [-3.0, -1.5, 0.0, 1.5, 3.0], 0.05)(rng, s) if i == 0 else
         np.full(s, 1.5) for i, s in enumerate(draw(broadcastable_shapes(2, max_dims=2)))], {})),
    "pow": binary(P.pow_p, np.power, 0.5, 2.0, -2.0, 2.0),
    "max": Spec(P.max_p, np.maximum, lambda rng, draw: (
        [_vals(rng, s, -2, 2) + 5 * i for i, s in enumerate(draw(broadcastable_shapes(2, max_dims=2)))],
        {})),
    "min": Spec(P.min_p, np.minimum, lambda rng, draw: (
        [_vals(rng, s, -2, 2) + 5 * i for i, s in enumerate(draw(broadcastable_shapes(2, max_dims=2)))],
        {})),
    "atan2": binary(P.atan2_p, np.arctan2, 0.5, 2.0),
    "nextafter": binary(P.nextafter_p, np.nextafter, order=0),
    "eq": binary(P.eq_p, np.equal, order=0),
    "ne": binary(P.ne_p, np.not_equal, order=0),
    "lt": binary(P.lt_p, np.less, order=0),
    "le": binary(P.le_p, np.less_equal, order=0),
    "gt": binary(P.gt_p, np.greater, order=0),
    "ge": binary(P.ge_p, np.greater_equal, order=0),
    "and": _int_binary(P.and_p, np.bitwise_and),
    "or": _int_binary(P.or_p, np.bitwise_or),
    "xor": _int_binary(P.xor_p, np.bitwise_xor),
    "shift_left": _int_binary(P.shift_left_p, np.left_shift, 0, 1000, 0, 8),
    "shift_right_arithmetic": _int_binary(P.shift_right_arithmetic_p, np.right_shift, -1000,
                                          1000, 0, 8),
    "shift_right_logical": _int_binary(
        P.shift_right_logical_p,
        lambda x, y: (x.view(np.uint32) >> y.astype(np.uint32)).view(np.int32), -1000, 1000, 0, 8),
    "select_n": _select_n(),
    "convert_element_type": _convert(),
    "bitcast_convert_type": _bitcast(),
    "stop_gradient": unary(P.stop_gradient_p, lambda x: x, order=0),
    "broadcast_in_dim": _broadcast_in_dim(),
    "reshape": _reshape(),
    "transpose": _transpose(),
    "squeeze": _squeeze(),
    "reduce_sum": _reduce(P.reduce_sum_p, np.sum),
    "reduce_max": _reduce(P.reduce_max_p, np.max, distinct=True),
    "reduce_min": _reduce(P.reduce_min_p, np.min, distinct=True),
    "argmax": _argext(P.argmax_p, np.argmax),
    "argmin": _argext(P.argmin_p, np.argmin),
    "iota": _iota(),
    "dot_general": _dot_general(),
    # complex numbers (complex128 inputs; derivatives in the real and imaginary directions)
    "real": cunary(C.real_p, np.real),
    "imag": cunary(C.imag_p, np.imag),
    "conj": cunary(C.conj_p, np.conj),
    "conj[f64]": unary(C.conj_p, lambda x: x.astype(np.complex128)),
    "complex": _complex_from_parts(),
    "logaddexp": binary(C.logaddexp_p, np.logaddexp, -3.0, 3.0),
    "logaddexp[c128]": cbinary(C.logaddexp_p, lambda x, y: np.log(np.exp(x) + np.exp(y)), -1, 1),
    "abs[c128]": cunary(P.abs_p, np.abs, away_from_zero=True),
    "neg[c128]": cunary(P.neg_p, np.negative),
    "exp[c128]": cunary(P.exp_p, np.exp),
    "log[c128]": cunary(P.log_p, np.log, 0.3, 2.0),
    "sin[c128]": cunary(P.sin_p, np.sin),
    "cos[c128]": cunary(P.cos_p, np.cos),
    "tanh[c128]": cunary(P.tanh_p, np.tanh, -0.5, 0.5),
    "sqrt[c128]": cunary(P.sqrt_p, np.sqrt, 0.3, 2.0),
    "log1p[c128]": cunary(P.log1p_p, np.log1p, 0.0, 1.0),
    "expm1[c128]": cunary(P.expm1_p, np.expm1),
    "sinh[c128]": cunary(P.sinh_p, np.sinh),
    "cosh[c128]": cunary(P.cosh_p, np.cosh),
    "exp2[c128]": cunary(P.exp2_p, np.exp2),
    "tan[c128]": cunary(P.tan_p, np.tan, -0.5, 0.5),
    "asin[c128]": cunary(P.asin_p, np.arcsin, 0.1, 0.6),
    "acos[c128]": cunary(P.acos_p, np.arccos, 0.1, 0.6),
    "atan[c128]": cunary(P.atan_p, np.arctan, 0.1, 0.6),
    "asinh[c128]": cunary(P.asinh_p, np.arcsinh, 0.1, 0.6),
    "acosh[c128]": cunary(P.acosh_p, np.arccosh, 0.3, 1.5),
    "atanh[c128]": cunary(P.atanh_p, np.arctanh, 0.1, 0.6),
    "rsqrt[c128]": cunary(P.rsqrt_p, lambda z: 1 / np.sqrt(z), 0.3, 2.0),
    "logistic[c128]": cunary(P.logistic_p, lambda z: 1 / (1 + np.exp(-z)), -1.0, 1.0),
    "sign[c128]": cunary(P.sign_p, np.sign, order=0, away_from_zero=True),
    "integer_pow[c128]": _complexified(_integer_pow()),
    "add[c128]": cbinary(P.add_p, np.add),
    "sub[c128]": cbinary(P.sub_p, np.subtract),
    "mul[c128]": cbinary(P.mul_p, np.multiply),
    "div[c128]": cbinary(P.div_p, np.divide, away_from_zero=True),
    "pow[c128]": cbinary(P.pow_p, np.power, 0.5, 1.5),
    "reduce_sum[c128]": _complexified(_reduce(P.reduce_sum_p, np.sum)),
    "dot_general[c128]": _complexified(_dot_general()),
    "select_n[c128]": _complexified(_select_n()),
    "transpose[c128]": _complexified(_transpose()),
    "broadcast_in_dim[c128]": _complexified(_broadcast_in_dim()),
    # linear algebra on batches of well-conditioned matrices (the decompositions, whose
    # outputs are defined up to signs or phases, have their rows in the linalg tests)
    "inv": _linalg_unary(L.inv_p, np.linalg.inv),
    "inv[c128]": _linalg_unary(L.inv_p, np.linalg.inv, complex_=True),
    "det": _linalg_unary(L.det_p, np.linalg.det),
    "det[c128]": _linalg_unary(L.det_p, np.linalg.det, complex_=True),
    "solve": _linalg_solve(),
    "solve[c128]": _linalg_solve(complex_=True),
}

# Primitives whose table rows live beside their family's own tests (they need inputs or
# references this generic table cannot draw: jaxpr-valued params, random keys, indices).
TESTED_ELSEWHERE: dict[str, str] = {
    "conv_patches": "tests/ops/test_conv.py",
    "conv_patches_transpose": "tests/ops/test_conv.py",
    "reduce_window_max": "tests/ops/test_conv_kernels.py",
    "reduce_window_sum": "tests/ops/test_conv_kernels.py",
    "reduce_window_sum_transpose": "tests/ops/test_conv_kernels.py",
    "select_and_gather_add": "tests/ops/test_conv_kernels.py",
    "select_and_scatter_add": "tests/ops/test_conv_kernels.py",
    "cond": "tests/ops/test_control.py",
    "while": "tests/ops/test_control.py",
    "scan": "tests/ops/test_control.py",
    "debug_callback": "tests/test_debug.py",
    "pure_callback": "tests/test_jax_namespace.py",
    "io_callback": "tests/test_jax_namespace.py",
    **{n: "tests/distributed/test_collectives.py" for n in (
        "psum", "pmax", "pmin", "all_gather", "psum_scatter", "ppermute", "all_to_all",
        "axis_index")},
    "custom_jvp_call": "tests/test_custom.py",
    "custom_vjp_call": "tests/test_custom.py",
    "checkpoint": "tests/test_checkpoint.py",
    "custom_vmap_call": "tests/test_custom_batching.py",
    "custom_closure_cotangent": "tests/test_custom_vjp_closure.py",
    "fused_elementwise": "tests/test_fusion.py",
    "adam_update": "tests/optim/test_fused.py",
    "momentum_update": "tests/optim/test_fused.py",
    "threefry2x32": "tests/random/test_random.py",
    "fft": "tests/numpy/test_fft.py",
    "random_gamma": "tests/random/test_distributions.py",
    "tridiagonal_solve": "tests/ops/test_tridiagonal_solve.py",
    **{n: "tests/scipy/test_special_prims.py" for n in (
        "lgamma", "digamma", "polygamma", "zeta", "zeta_ds", "igamma", "igammac",
        "igamma_grad_a",
        "regularized_incomplete_beta", "bessel_i0e", "bessel_i1e", "expi", "expn", "spence",
        "dawsn", "fresnel_s", "fresnel_c", "sici_si", "sici_ci", "owens_t", "bessel_jn",
        "hyp1f1", "hyp1f1_da", "hyp1f1_db", "hyp2f1", "hyp2f1_da", "hyp2f1_db", "hyp2f1_dc",
        "wofz_re", "wofz_im")},
    **{n: "tests/ops/test_shape.py" for n in (
        "concatenate", "pad", "rev", "slice", "dynamic_slice", "dynamic_update_slice", "gather",
        "scatter")},
    **{n: "tests/ops/test_reduce.py" for n in (
        "reduce_prod", "cumsum", "cumprod", "cummax", "cummin", "sort")},
    **{n: "tests/numpy/test_linalg.py" for n in (
        "slogdet", "cholesky", "svd")},
    **{n: "tests/numpy/test_linalg_decomp.py" for n in ("eigh", "eig", "qr", "geqrf", "adjugate")},
    **{n: "tests/test_scipy_linalg.py" for n in (
        "triangular_solve", "lu", "expm", "schur", "hessenberg", "rsf2csf", "sqrtm", "funm")},
    **{n: "tests/ops/test_nn_kernels.py" for n in (
        "logsumexp", "log_softmax", "log_softmax_grad", "softmax", "softmax_grad",
        "softmax_cross_entropy_int", "softmax_cross_entropy_int_grad", "layer_norm",
        "layer_norm_grad")},
    **{n: "tests/nn/test_attention_kernel.py" for n in (
        "attention_softmax", "attention_softmax_grad", "attention", "attention_grad")},
    **{n: "tests/nn/test_gelu_kernel.py" for n in ("gelu", "gelu_grad")},
    "reduce_precision": "tests/ops/test_lax_bits_and_shapes.py",
    **{n: "tests/test_checkify.py" for n in ("check", "debug_check")},  # once imported
}


def test_every_primitive_has_a_spec():
    import nanofn.numpy.linalg  # noqa: F401 - registers every family
    import nanofn.scipy.linalg  # noqa: F401
    import nanofn.random  # noqa: F401
    missing = sorted(set(_core.registry) - set(SPECS) - set(TESTED_ELSEWHERE))
    assert not missing, f"primitives without a test spec: {missing}"


def _draw_case(data, spec):
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    rng = np.random.default_rng(seed)
    return spec.make(rng, data.draw)


@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_values_match_numpy(name, data):
    spec = SPECS[name]
    args, params = _draw_case(data, spec)
    out = spec.prim.bind(*args, **params)
    expected = spec.ref(*args, **params)
    got = np.asarray(out)
    assert got.shape == np.shape(expected), (got.shape, np.shape(expected))
    assert got.dtype == spec.prim.abstract_eval(*map(_core.get_aval, args), **params).dtype
    wide = np.complex128 if got.dtype.kind == "c" else np.float64
    np.testing.assert_allclose(got.astype(wide) if got.dtype.kind != "b" else got,
                               np.asarray(expected).astype(got.dtype).astype(wide)
                               if got.dtype.kind != "b" else expected, rtol=spec.rtol, atol=1e-12)
    # the same primitive staged by jit and run as a compiled plan gives the same numbers
    jitted = nanofn.jit(lambda *a: spec.prim.bind(*a, **params))(*args)
    np.testing.assert_array_equal(np.asarray(jitted), got)


@pytest.mark.parametrize("name", sorted(n for n, s in SPECS.items() if s.order > 0))
@given(data=st.data())
def test_derivatives_match_finite_differences(name, data):
    spec = SPECS[name]
    args, params = _draw_case(data, spec)
    diff = spec.diff or tuple(i for i, a in enumerate(args) if a.dtype.kind in "fc")

    def f(*dargs):
        full = list(args)
        for i, a in zip(diff, dargs):
            full[i] = a
        return spec.prim.bind(*full, **params)

    check_grads(f, tuple(args[i] for i in diff), order=spec.order, modes=("fwd", "rev"))


def test_shape_errors_name_op_and_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(3,\), \(4,\) do not broadcast"):
        P.add_p.bind(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match=r"dot_general: contracting dimensions"):
        P.dot_general_p.bind(np.zeros((2, 3)), np.zeros((4, 5)),
                             dimension_numbers=(((1,), (0,)), ((), ())))
    with pytest.raises(TypeError, match="add requires operands of one dtype"):
        nanofn.lax.add(np.zeros(3, np.float32), np.zeros(3, np.float64))
    with pytest.raises(TypeError, match="add requires operands of one dtype"):
        nanofn.jit(P.add_p.bind)(np.zeros(3, np.float32), np.zeros(3, np.float64))


def test_erf_inv_inverts_erf():
    x = np.linspace(-3, 3, 101)
    np.testing.assert_allclose(np.asarray(P.erf_inv_p.bind(P.erf_p.bind(x))), x, rtol=1e-10)
    assert math.isinf(float(P.erf_inv_p.bind(np.float64(1.0))))


def _perturbed(rng, a):
    """Another example with the same shape and dtype, staying inside the primitive's domain."""
    if a.dtype.kind in "fc":
        return (a * (1 + 0.01 * rng.uniform(-1, 1, size=a.shape))).astype(a.dtype)
    return a.copy()


@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_vmap_equals_stacking_over_slices(name, data):
    spec = SPECS[name]
    args, params = _draw_case(data, spec)
    if not args:  # iota takes no array arguments: nothing to map over
        return
    size = data.draw(st.sampled_from([0, 1, 3]), label="batch size")
    rng = np.random.default_rng(0)
    examples = [[_perturbed(rng, a) for a in args] for _ in range(max(size, 1))]
    # each argument is batched or not, along a drawn axis (not always 0)
    batched = [data.draw(st.booleans(), label=f"batch arg {i}") for i in range(len(args))]
    if not any(batched):
        batched[0] = True
    in_axes = [data.draw(st.integers(0, np.ndim(a)), label=f"axis {i}") if b else None
               for i, (a, b) in enumerate(zip(args, batched))]
    stacked = [np.stack([ex[i] for ex in examples], axis=ax)[(slice(None),) * ax + (slice(0, size),)]
               if ax is not None else args[i] for i, ax in enumerate(in_axes)]
    f = lambda *a: spec.prim.bind(*a, **params)  # noqa: E731
    out = np.asarray(nanofn.vmap(f, in_axes=tuple(in_axes))(*stacked))
    singles = [f(*[ex[i] if ax is not None else args[i] for i, ax in enumerate(in_axes)])
               for ex in examples[:size]]
    expected_shape = (size,) + np.shape(f(*args))
    assert out.shape == expected_shape
    if size:
        np.testing.assert_allclose(out, np.stack([np.asarray(s) for s in singles]),
                                   rtol=1e-12, atol=1e-12)
