"""Primitives, each with all its rules side by side, and the factories that write most rules.

A primitive's block reads top to bottom: its definition (usually from a factory that gives
the shape rule and the batching rule), then its differentiation rules, then a public
wrapper with a docstring. Rules are written with primitives (`add_p.bind`, or the small
helpers `_add`, `_mul`, ... below), so the backward pass can be traced again.

Conventions:
* Elementwise primitives broadcast like numpy (their operands must share one dtype);
  every other primitive takes exactly the shapes it documents. `nanofn.numpy` does type
  promotion, `axis=None`, negative axes and keepdims before calling primitives.
* For elementwise primitives one derivative function per argument serves both modes:
  `d(g, *args, out)` multiplies `g` by the partial derivative. As a tangent, `g` has the
  argument's shape; as a cotangent, the output's (the backward walker sums it back).
* A rule returns None for a zero derivative (a symbolic zero).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
from typing import Any

import numpy as np

from nanofn._core import Primitive, ShapedArray, ShapeError, Tracer, scalar_value
from nanofn._kernels import enabled as kernels_enabled
from nanofn._kernels import kernel

# ------------------------------------------------------------------------ shared helpers


def _aval_shape(x):
    try:  # arrays, numpy values and tracers all have one
        return x.shape
    except AttributeError:  # a Python scalar
        return np.shape(x)


def _dtype(x):
    return x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype


def _c(x, value):
    """A scalar constant with the dtype of `x`."""
    return np.asarray(value, dtype=_dtype(x))


def broadcast_shapes(name, *shapes):
    """numpy broadcasting of shapes, with an error naming the operation and every shape."""
    ndim = max(len(s) for s in shapes)
    out = []
    for i in range(ndim):
        sizes = {s[i - ndim + len(s)] for s in shapes if i - ndim + len(s) >= 0}
        sizes.discard(1)
        if len(sizes) > 1:
            raise ShapeError(f"{name}: shapes {', '.join(str(tuple(s)) for s in shapes)} "
                             "do not broadcast together (numpy broadcasting rules)")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _moveaxis(x, src, dst):
    if src == dst:
        return x
    perm = list(range(len(_aval_shape(x))))
    perm.insert(dst, perm.pop(src))
    return transpose_p.bind(x, permutation=tuple(perm))


def bdim_to_front(x, d):
    """Move a batch dimension to the front (used by batching rules)."""
    return x if d == 0 else _moveaxis(x, d, 0)


# ------------------------------------------------------------------------ factories


def elementwise(name, impl, *, nargs, out_dtype=None, allowed=None):
    """A broadcasting elementwise primitive with its shape and batching rules.

    `out_dtype(dtype)` maps the operands' dtype to the result's (default: the same);
    `allowed` is a predicate on the operand dtype (for a clear error, e.g. floats only).
    """
    prim = Primitive(name)
    prim.impl = impl

    def abstract_eval(*avals, **params):
        del params  # unused: elementwise params never change the shape
        dtypes = {a.dtype for a in avals}
        if len(dtypes) > 1:
            raise TypeError(f"{name} requires operands of one dtype, got "
                            f"{', '.join(a.str_short() for a in avals)}; nanofn.numpy "
                            "promotes types for you")
        dtype = avals[0].dtype
        if allowed is not None and not allowed(dtype):
            raise TypeError(f"{name} does not accept dtype {dtype.name}")
        shape = broadcast_shapes(name, *(a.shape for a in avals)) if nargs > 1 else avals[0].shape
        return ShapedArray(shape, dtype if out_dtype is None else out_dtype(dtype))

    prim.abstract_eval = abstract_eval

    def batch(vals, dims, **params):
        ranks = [len(_aval_shape(v)) - (d is not None) for v, d in zip(vals, dims)]
        out_rank = max(ranks)
        moved = []
        for v, d, r in zip(vals, dims, ranks):
            if d is not None:
                v = bdim_to_front(v, d)
                if r < out_rank:
                    shape = _aval_shape(v)
                    v = reshape_p.bind(v, new_sizes=(shape[0],) + (1,) * (out_rank - r) + shape[1:])
            moved.append(v)
        return prim.bind(*moved, **params), 0

    prim.batch = batch
    return prim


def defderiv(prim, *derivs):
    """Give an elementwise primitive one derivative function per argument (for both modes)."""
    prim.jvp_terms = list(derivs)
    prim.vjp = list(derivs)


def defnoderiv(prim, nargs):
    """A primitive whose output does not depend differentiably on its inputs (reverse mode
    then records nothing for it: its results are constants to what follows)."""
    prim.no_derivative = True
    if prim.multiple_results:
        def jvp(primals, tangents, **params):
            out = prim.bind(*primals, **params)
            return out, [None] * len(out)
        prim.jvp = jvp
        prim.vjp_joint = lambda cts, primals, outs, needs, **params: [None] * nargs
    else:
        prim.jvp_terms = [None] * nargs
        prim.vjp = [None] * nargs


def deflinear(prim, transpose):
    """A primitive linear in its first argument: the tangent map is the primitive itself,
    and the cotangent map is `transpose(ct, *args, **params)`."""
    def jvp_term(t, *args, out, **params):
        del out  # unused
        return prim.bind(t, *args[1:], **params)
    prim.jvp_terms = [jvp_term]
    prim.vjp = [lambda ct, *args, out, **params: transpose(ct, *args, **params)]


def _float_only(dtype):
    return np.issubdtype(dtype, np.inexact)


def _unary_float(name, impl):
    return elementwise(name, impl, nargs=1, allowed=_float_only)


def _real_float_only(dtype):
    return dtype.kind == "f"


def _unary_real(name, impl):  # real floating point only (as in lax: no complex version)
    return elementwise(name, impl, nargs=1, allowed=_real_float_only)


# Small builders used by rules. They bind primitives, so rules stay traceable.
def _add(x, y):
    return add_p.bind(x, y)


def _sub(x, y):
    return sub_p.bind(x, y)


def _mul(x, y):
    return mul_p.bind(x, y)


def _div(x, y):
    return div_p.bind(x, y)


def _neg(x):
    return neg_p.bind(x)


def _select(pred, on_false, on_true):
    return select_n_p.bind(pred, on_false, on_true)


# ======================================================================== elementwise: unary

# --- neg --------------------------------------------------------------------
neg_p = elementwise("neg", np.negative, nargs=1)
defderiv(neg_p, lambda g, x, *, out: _neg(g))

# --- sign, floor, ceil, round: piecewise constant ----------------------------
sign_p = elementwise("sign", np.sign, nargs=1)
defnoderiv(sign_p, 1)
floor_p = _unary_real("floor", np.floor)
defnoderiv(floor_p, 1)
ceil_p = _unary_real("ceil", np.ceil)
defnoderiv(ceil_p, 1)


def _round_impl(x, *, rounding_method=0):
    # 0: away from zero (lax.round default), 1: to nearest even (numpy's np.round)
    if rounding_method == 1:
        return np.round(x)
    t = np.trunc(x)
    return np.where(np.abs(x - t) >= 0.5, t + np.sign(x), t).astype(x.dtype, copy=False)


round_p = _unary_real("round", _round_impl)
defnoderiv(round_p, 1)

# --- abs --------------------------------------------------------------------
def _real_part_dtype(dtype):
    return np.finfo(dtype).dtype if dtype.kind == "c" else dtype


abs_p = elementwise("abs", np.abs, nargs=1, out_dtype=_real_part_dtype)  # complex -> real


def _abs_unit_conj(x, out):
    """conj(z) / |z| (0 where z = 0, as JAX): the slope of |z| as a covector."""
    from nanofn.ops._complex import conj_p
    safe = _select(eq_p.bind(out, _c(out, 0)), out, _c(out, 1))
    return _div(conj_p.bind(x), convert_element_type_p.bind(safe, new_dtype=_dtype(x)))


def _abs_jvp(t, x, *, out):
    if _dtype(x).kind == "c":  # d|z| = Re(conj(z) dz) / |z|
        from nanofn.ops._complex import real_p
        return real_p.bind(_mul(t, _abs_unit_conj(x, out)))
    return _select(ge_p.bind(x, _c(x, 0)), _neg(t), t)  # JAX's choice: slope +1 at x = 0


def _abs_vjp(ct, x, *, out):
    if _dtype(x).kind == "c":  # the covector Re(c dz) with c = ct conj(z) / |z|
        ct = convert_element_type_p.bind(ct, new_dtype=_dtype(x))
        return _mul(ct, _abs_unit_conj(x, out))
    return _select(ge_p.bind(x, _c(x, 0)), _neg(ct), ct)


abs_p.jvp_terms = [_abs_jvp]
abs_p.vjp = [_abs_vjp]

# --- exp, exp2, log, log1p, expm1 ---------------------------------------------
exp_p = _unary_float("exp", np.exp)
defderiv(exp_p, lambda g, x, *, out: _mul(g, out))  # d exp(x) = exp(x) dx: reuse the output

exp2_p = _unary_float("exp2", np.exp2)
defderiv(exp2_p, lambda g, x, *, out: _mul(g, _mul(out, _c(x, math.log(2.0)))))

log_p = _unary_float("log", np.log)
defderiv(log_p, lambda g, x, *, out: _div(g, x))  # d log(x) = dx / x

log1p_p = _unary_float("log1p", np.log1p)
defderiv(log1p_p, lambda g, x, *, out: _div(g, _add(x, _c(x, 1))))

expm1_p = _unary_float("expm1", np.expm1)
defderiv(expm1_p, lambda g, x, *, out: _mul(g, _add(out, _c(x, 1))))

# --- trigonometric -----------------------------------------------------------
sin_p = _unary_float("sin", np.sin)
defderiv(sin_p, lambda g, x, *, out: _mul(g, cos_p.bind(x)))

cos_p = _unary_float("cos", np.cos)
defderiv(cos_p, lambda g, x, *, out: _neg(_mul(g, sin_p.bind(x))))

tan_p = _unary_float("tan", np.tan)
defderiv(tan_p, lambda g, x, *, out: _mul(g, _add(_c(x, 1), _mul(out, out))))  # 1 + tan^2

asin_p = _unary_float("asin", np.arcsin)
defderiv(asin_p, lambda g, x, *, out: _mul(g, rsqrt_p.bind(_sub(_c(x, 1), _mul(x, x)))))

acos_p = _unary_float("acos", np.arccos)
defderiv(acos_p, lambda g, x, *, out: _neg(_mul(g, rsqrt_p.bind(_sub(_c(x, 1), _mul(x, x))))))

atan_p = _unary_float("atan", np.arctan)
defderiv(atan_p, lambda g, x, *, out: _div(g, _add(_c(x, 1), _mul(x, x))))

# --- hyperbolic ---------------------------------------------------------------
sinh_p = _unary_float("sinh", np.sinh)
defderiv(sinh_p, lambda g, x, *, out: _mul(g, cosh_p.bind(x)))

cosh_p = _unary_float("cosh", np.cosh)
defderiv(cosh_p, lambda g, x, *, out: _mul(g, sinh_p.bind(x)))

tanh_p = _unary_float("tanh", np.tanh)
defderiv(tanh_p, lambda g, x, *, out: _mul(g, _sub(_c(x, 1), _mul(out, out))))  # 1 - tanh^2

asinh_p = _unary_float("asinh", np.arcsinh)
defderiv(asinh_p, lambda g, x, *, out: _mul(g, rsqrt_p.bind(_add(_mul(x, x), _c(x, 1)))))

acosh_p = _unary_float("acosh", np.arccosh)
# 1/sqrt(x^2 - 1) written as 1/(sqrt(x-1) sqrt(x+1)) to keep precision near x = 1
defderiv(acosh_p, lambda g, x, *, out: _mul(g, _mul(rsqrt_p.bind(_sub(x, _c(x, 1))),
                                                     rsqrt_p.bind(_add(x, _c(x, 1))))))

atanh_p = _unary_float("atanh", np.arctanh)
defderiv(atanh_p, lambda g, x, *, out: _div(g, _sub(_c(x, 1), _mul(x, x))))


# --- logistic ------------------------------------------------------------------
def _logistic_impl(x):
    if x.dtype.kind == "c":  # no sign split for complex numbers: the plain formula, as lax
        return 1 / (1 + np.exp(-x))
    # exp(-|x|) never overflows; split by sign for a stable sigmoid.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


logistic_p = _unary_float("logistic", _logistic_impl)
defderiv(logistic_p, lambda g, x, *, out: _mul(g, _mul(out, _sub(_c(x, 1), out))))

# --- roots -----------------------------------------------------------------------
sqrt_p = _unary_float("sqrt", np.sqrt)
defderiv(sqrt_p, lambda g, x, *, out: _div(_mul(g, _c(x, 0.5)), out))  # dx / (2 sqrt(x))

rsqrt_p = _unary_float("rsqrt", lambda x: 1 / np.sqrt(x))
# d x^(-1/2) = -1/2 x^(-3/2) dx = -1/2 out / x dx
defderiv(rsqrt_p, lambda g, x, *, out: _mul(g, _div(_mul(out, _c(x, -0.5)), x)))

cbrt_p = _unary_real("cbrt", np.cbrt)
defderiv(cbrt_p, lambda g, x, *, out: _div(g, _mul(_c(x, 3), _mul(out, out))))  # 1/(3 x^(2/3))


# --- erf, erf_inv ----------------------------------------------------------------
def _erf_impl(x):
    from nanofn.ops import _special
    return _special.erf(x)


def _erf_inv_impl(x):
    from nanofn.ops import _special
    return _special.erf_inv(x)


erf_p = _unary_real("erf", _erf_impl)
defderiv(erf_p, lambda g, x, *, out: _mul(g, _mul(_c(x, 2 / math.sqrt(math.pi)),
                                                  exp_p.bind(_neg(_mul(x, x))))))

erf_inv_p = _unary_real("erf_inv", _erf_inv_impl)
defderiv(erf_inv_p, lambda g, x, *, out: _mul(g, _mul(_c(x, math.sqrt(math.pi) / 2),
                                                      exp_p.bind(_mul(out, out)))))


# --- integer_pow ---------------------------------------------------------------------
def _integer_pow_impl(x, *, y):
    if y == 2:
        return x * x
    return np.power(x, y) if y >= 0 else np.power(x, np.asarray(y, x.dtype))


integer_pow_p = elementwise("integer_pow", _integer_pow_impl, nargs=1)


def _integer_pow_deriv(g, x, *, out, y):
    del out  # unused
    if y == 0:
        return None
    if y == 1:
        return g
    return _mul(g, _mul(_c(x, y), integer_pow_p.bind(x, y=y - 1)))  # y x^(y-1)


defderiv(integer_pow_p, _integer_pow_deriv)

# --- predicates ----------------------------------------------------------------------
is_finite_p = elementwise("is_finite", np.isfinite, nargs=1, out_dtype=lambda d: np.dtype(bool),
                          allowed=_float_only)
defnoderiv(is_finite_p, 1)

not_p = elementwise("not", lambda x: np.logical_not(x) if x.dtype == bool else np.invert(x),
                    nargs=1, allowed=lambda d: d == bool or np.issubdtype(d, np.integer))
defnoderiv(not_p, 1)

# ======================================================================== elementwise: binary

add_p = elementwise("add", np.add, nargs=2)
defderiv(add_p, lambda g, x, y, *, out: g, lambda g, x, y, *, out: g)

sub_p = elementwise("sub", np.subtract, nargs=2)
defderiv(sub_p, lambda g, x, y, *, out: g, lambda g, x, y, *, out: _neg(g))

mul_p = elementwise("mul", np.multiply, nargs=2)
defderiv(mul_p, lambda g, x, y, *, out: _mul(g, y), lambda g, x, y, *, out: _mul(x, g))


def _div_impl(x, y):
    if x.dtype.kind in "iu":  # lax.div rounds toward zero on integers
        q = np.abs(x) // np.abs(y)
        return (np.sign(x) * np.sign(y) * q).astype(x.dtype, copy=False)
    return np.true_divide(x, y)


div_p = elementwise("div", _div_impl, nargs=2)
div_p.jvp_terms = [lambda t, x, y, *, out: _div(t, y),
                   lambda t, x, y, *, out: _neg(_mul(t, _div(out, y)))]  # d(x/y)/dy = -x/y^2


def _div_vjp(ct, primals, out, needs):
    # ct_x = ct / y and ct_y = -ct x / y^2 = -(ct_x * out): the second reuses the first
    y = primals[1]
    ct_x = _div(ct, y)
    return [ct_x if needs[0] else None, _neg(_mul(ct_x, out)) if needs[1] else None]


div_p.vjp_joint = _div_vjp


def _rem_impl(x, y):  # C-style remainder: the sign of the dividend, like lax.rem
    return np.fmod(x, y)


rem_p = elementwise("rem", _rem_impl, nargs=2)
defderiv(rem_p,
         lambda g, x, y, *, out: g,
         lambda g, x, y, *, out: _neg(_mul(g, round_toward_zero(_div(x, y)))))


def round_toward_zero(x):
    return _mul(sign_p.bind(x), floor_p.bind(abs_p.bind(x)))


pow_p = elementwise("pow", np.power, nargs=2)


def _pow_dx(g, x, y, *, out):
    # d x^y / dx = y x^(y-1)
    return _mul(g, _mul(y, pow_p.bind(x, _sub(y, _c(y, 1)))))


def _pow_dy(g, x, y, *, out):
    # d x^y / dy = log(x) x^y, taken as 0 where x == 0 (the limit for y > 0)
    safe_x = _select(eq_p.bind(x, _c(x, 0)), x, _add(_mul(x, _c(x, 0)), _c(x, 1)))
    return _mul(g, _mul(out, log_p.bind(safe_x)))


defderiv(pow_p, _pow_dx, _pow_dy)


def _balanced(g, pick, tie):
    """g where `pick`, g/2 where `tie`, else 0: the derivative of max/min, shared at ties."""
    half = _mul(g, _c(g, 0.5))
    zero = _mul(g, _c(g, 0))
    return _select(pick, _select(tie, zero, half), g)


max_p = elementwise("max", np.maximum, nargs=2)
defderiv(max_p,
         lambda g, x, y, *, out: _balanced(g, gt_p.bind(x, y), eq_p.bind(x, y)),
         lambda g, x, y, *, out: _balanced(g, gt_p.bind(y, x), eq_p.bind(x, y)))

min_p = elementwise("min", np.minimum, nargs=2)
defderiv(min_p,
         lambda g, x, y, *, out: _balanced(g, lt_p.bind(x, y), eq_p.bind(x, y)),
         lambda g, x, y, *, out: _balanced(g, lt_p.bind(y, x), eq_p.bind(x, y)))

atan2_p = elementwise("atan2", np.arctan2, nargs=2, allowed=_real_float_only)
defderiv(atan2_p,  # atan2(x, y) = atan(x / y): d/dx = y / (x^2 + y^2), d/dy = -x / (x^2 + y^2)
         lambda g, x, y, *, out: _div(_mul(g, y), _add(_mul(x, x), _mul(y, y))),
         lambda g, x, y, *, out: _neg(_div(_mul(g, x), _add(_mul(x, x), _mul(y, y)))))

nextafter_p = elementwise("nextafter", np.nextafter, nargs=2, allowed=_real_float_only)
defnoderiv(nextafter_p, 2)

# --- comparisons (boolean results, no derivative) ------------------------------------
_to_bool = lambda d: np.dtype(bool)  # noqa: E731
eq_p = elementwise("eq", np.equal, nargs=2, out_dtype=_to_bool)
ne_p = elementwise("ne", np.not_equal, nargs=2, out_dtype=_to_bool)
lt_p = elementwise("lt", np.less, nargs=2, out_dtype=_to_bool)
le_p = elementwise("le", np.less_equal, nargs=2, out_dtype=_to_bool)
gt_p = elementwise("gt", np.greater, nargs=2, out_dtype=_to_bool)
ge_p = elementwise("ge", np.greater_equal, nargs=2, out_dtype=_to_bool)
for _p in (eq_p, ne_p, lt_p, le_p, gt_p, ge_p):
    defnoderiv(_p, 2)

# --- logical and bitwise (bool or integer) --------------------------------------------
_bool_or_int = lambda d: d == bool or np.issubdtype(d, np.integer)  # noqa: E731
and_p = elementwise("and", np.bitwise_and, nargs=2, allowed=_bool_or_int)
or_p = elementwise("or", np.bitwise_or, nargs=2, allowed=_bool_or_int)
xor_p = elementwise("xor", np.bitwise_xor, nargs=2, allowed=_bool_or_int)
_int_only = lambda d: np.issubdtype(d, np.integer)  # noqa: E731


def _shift_right_logical_impl(x, y):
    unsigned = x.dtype.str.replace("i", "u")
    return (x.view(unsigned) >> y.astype(unsigned)).view(x.dtype) if x.dtype.kind == "i" else x >> y


shift_left_p = elementwise("shift_left", np.left_shift, nargs=2, allowed=_int_only)
shift_right_arithmetic_p = elementwise("shift_right_arithmetic", np.right_shift, nargs=2,
                                       allowed=_int_only)
shift_right_logical_p = elementwise("shift_right_logical", _shift_right_logical_impl, nargs=2,
                                    allowed=_int_only)
for _p in (and_p, or_p, xor_p, shift_left_p, shift_right_arithmetic_p, shift_right_logical_p):
    defnoderiv(_p, 2)


# ======================================================================== select_n


def _select_n_impl(which, *cases):
    if len(cases) == 2:
        return np.where(which, cases[1], cases[0])
    return np.choose(which.astype(np.intp), np.broadcast_arrays(*cases))


select_n_p = elementwise("select_n", _select_n_impl, nargs=3)


def _select_n_abstract_eval(which, *cases):
    if which.dtype != bool and not np.issubdtype(which.dtype, np.integer):
        raise TypeError(f"select_n: the selector must be bool or integer, got {which.str_short()}")
    dtypes = {c.dtype for c in cases}
    if len(dtypes) > 1:
        raise TypeError("select_n: every case must have one dtype, got "
                        f"{', '.join(c.str_short() for c in cases)}")
    shape = broadcast_shapes("select_n", which.shape, *(c.shape for c in cases))
    return ShapedArray(shape, cases[0].dtype)


select_n_p.abstract_eval = _select_n_abstract_eval


def _select_n_deriv(i):
    def deriv(g, which, *cases, out):
        # true zeros, not g * 0: where g is inf or NaN in a branch not taken (the
        # gradient of log(0) under `where(x > 0, log(x), 0)`), that branch gets 0, as in JAX
        zero = full(_aval_shape(g), 0, _dtype(g))
        branches = [zero] * len(cases)
        branches[i] = g
        return select_n_p.bind(which, *branches)
    return deriv




def _select_n_jvp(primals, tangents):
    which, *cases = primals
    out = select_n_p.bind(which, *cases)
    zeros = full(_aval_shape(out), 0, _dtype(out))
    t_cases = [zeros if t is None else t for t in tangents[1:]]
    return out, select_n_p.bind(which, *t_cases)


def _select_n_vjp(ct, primals, out, needs):
    which, *cases = primals
    return [None] + [_select_n_deriv(i)(ct, which, *cases, out=out) if need else None
                     for i, need in enumerate(needs[1:])]


select_n_p.jvp = _select_n_jvp
select_n_p.vjp_joint = _select_n_vjp


# ======================================================================== dtype conversion

convert_element_type_p = Primitive("convert_element_type")


@convert_element_type_p.def_impl
def _convert_impl(x, *, new_dtype):
    x = np.asarray(x)
    new_dtype = np.dtype(new_dtype)
    if x.dtype.kind == "c" and new_dtype.kind != "c":
        x = x.real  # complex to real keeps the real part (as lax does), without a warning
    if x.dtype.kind == "f" and new_dtype.kind in "iu":
        return saturating_cast(x, new_dtype)
    return x.astype(new_dtype)


def saturating_cast(x, dtype):
    """Floats to an integer dtype as XLA converts them: toward zero, clamped to the
    integer range (so -1.5 -> 0 for unsigned types, 1e10 -> the maximum), NaN -> 0.
    (numpy's cast of an out-of-range float is undefined: it wraps or gives the minimum.)"""
    info = np.iinfo(dtype)
    wide = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore"):
        high, low = wide >= float(info.max), wide <= float(info.min)
        inside = np.where(high | low | np.isnan(wide), 0.0, wide).astype(dtype)
    return np.where(high, info.max, np.where(low, info.min, inside)).astype(dtype)


convert_element_type_p.abstract_eval = lambda x, *, new_dtype: x.update(dtype=new_dtype)


def _convert_jvp(t, x, *, out, new_dtype):
    del out  # unused
    if not np.issubdtype(new_dtype, np.inexact):
        return None
    return convert_element_type_p.bind(t, new_dtype=new_dtype)


def _convert_vjp(ct, x, *, out, new_dtype):
    del out  # unused
    old = _dtype(x)
    if not np.issubdtype(old, np.inexact) or not np.issubdtype(new_dtype, np.inexact):
        return None
    return convert_element_type_p.bind(ct, new_dtype=old)


convert_element_type_p.jvp_terms = [_convert_jvp]
convert_element_type_p.vjp = [_convert_vjp]
convert_element_type_p.batch = lambda vals, dims, **p: (convert_element_type_p.bind(vals[0], **p),
                                                        dims[0])


def convert_element_type(operand, new_dtype):
    """Cast `operand` to `new_dtype` (floats to ints truncate toward zero).

    Example:
        >>> import nanofn
        >>> nanofn.lax.convert_element_type(nanofn.numpy.array([1.7, -1.7]), "int32")
        Array([ 1, -1], dtype=int32)
    """
    new_dtype = np.dtype(new_dtype)
    if _dtype(operand) == new_dtype and isinstance(operand, Tracer):
        return operand
    return convert_element_type_p.bind(operand, new_dtype=new_dtype)


bitcast_convert_type_p = Primitive("bitcast_convert_type")


def _bitcast_shape(shape, old, new):
    """XLA's rule: a narrower dtype adds a trailing axis of the size ratio; a wider one
    takes a trailing axis of that size away."""
    old, new = np.dtype(old), np.dtype(new)
    if old.itemsize == new.itemsize:
        return tuple(shape)
    if old.itemsize > new.itemsize:
        return tuple(shape) + (old.itemsize // new.itemsize,)
    ratio = new.itemsize // old.itemsize
    if not shape or shape[-1] != ratio:
        raise TypeError(f"bitcast_convert_type: {old.name} to the wider {new.name} needs a "
                        f"last axis of size {ratio}, got shape {tuple(shape)}")
    return tuple(shape[:-1])


def _bitcast_impl(x, *, new_dtype):
    x = np.asarray(x, order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
    shape = _bitcast_shape(x.shape, x.dtype, new_dtype)
    return x.reshape(x.shape or (1,)).view(new_dtype).reshape(shape)


def _bitcast_abstract_eval(x, *, new_dtype):
    return ShapedArray(_bitcast_shape(x.shape, x.dtype, new_dtype), np.dtype(new_dtype))


def _bitcast_batch(vals, dims, **params):
    x = bdim_to_front(vals[0], dims[0])  # the size rule reads the last axis
    return bitcast_convert_type_p.bind(x, **params), 0


bitcast_convert_type_p.impl = _bitcast_impl
bitcast_convert_type_p.abstract_eval = _bitcast_abstract_eval
defnoderiv(bitcast_convert_type_p, 1)
bitcast_convert_type_p.batch = _bitcast_batch

# ======================================================================== stop_gradient

stop_gradient_p = Primitive("stop_gradient")
stop_gradient_p.impl = lambda x: x
stop_gradient_p.abstract_eval = lambda x: x
defnoderiv(stop_gradient_p, 1)
stop_gradient_p.batch = lambda vals, dims: (stop_gradient_p.bind(vals[0]), dims[0])

# ======================================================================== shapes

# --- broadcast_in_dim --------------------------------------------------------------
broadcast_in_dim_p = Primitive("broadcast_in_dim")


@broadcast_in_dim_p.def_impl
def _broadcast_in_dim_impl(x, *, shape, broadcast_dimensions):
    x = np.asarray(x)
    expanded = [1] * len(shape)
    for i, d in enumerate(broadcast_dimensions):
        expanded[d] = x.shape[i]
    return np.broadcast_to(x.reshape(expanded), shape)


@broadcast_in_dim_p.def_abstract_eval
def _broadcast_in_dim_abstract_eval(x, *, shape, broadcast_dimensions):
    if len(broadcast_dimensions) != x.ndim or any(
            not 0 <= d < len(shape) or x.shape[i] not in (1, shape[d])
            for i, d in enumerate(broadcast_dimensions)):
        raise ValueError(f"broadcast_in_dim: cannot broadcast {x.str_short()} to shape {shape} "
                         f"with broadcast_dimensions={broadcast_dimensions}")
    return ShapedArray(shape, x.dtype)


def _broadcast_in_dim_transpose(ct, x, *, shape, broadcast_dimensions):
    x_shape = _aval_shape(x)
    kept = set(broadcast_dimensions)
    axes = tuple(d for d in range(len(shape)) if d not in kept)
    axes += tuple(d for i, d in enumerate(broadcast_dimensions) if x_shape[i] == 1 != shape[d])
    out = reduce_sum_p.bind(ct, axes=tuple(sorted(axes))) if axes else ct
    return reshape_p.bind(out, new_sizes=tuple(x_shape)) if _aval_shape(out) != x_shape else out


deflinear(broadcast_in_dim_p, _broadcast_in_dim_transpose)


def _broadcast_in_dim_batch(vals, dims, *, shape, broadcast_dimensions):
    x = bdim_to_front(vals[0], dims[0])
    size = _aval_shape(x)[0]
    return broadcast_in_dim_p.bind(x, shape=(size,) + tuple(shape),
                                   broadcast_dimensions=(0,) + tuple(d + 1 for d in broadcast_dimensions)), 0


broadcast_in_dim_p.batch = _broadcast_in_dim_batch


def broadcast_in_dim(operand, shape, broadcast_dimensions, *, out_sharding=None):
    """Broadcast `operand` to `shape`, its axes landing on `broadcast_dimensions` (lax
    semantics).

    Example:
        >>> import nanofn
        >>> nanofn.lax.broadcast_in_dim(nanofn.numpy.array([1, 2]), (2, 3), (0,)).shape
        (2, 3)
    """
    del out_sharding  # one device: every sharding places the result the same way
    operand = _py_scalar(operand)
    shape, dims = tuple(shape), tuple(broadcast_dimensions)
    if any(b <= a for a, b in zip(dims, dims[1:])):  # not increasing (the primitive's form)
        ndim = len(_aval_shape(operand))
        if len(dims) != ndim or len(set(dims)) != ndim:
            raise TypeError(f"broadcast_in_dim: broadcast_dimensions {dims} must name {ndim} "
                            f"distinct axes of the result shape {shape}, one per axis of the "
                            f"operand {tuple(_aval_shape(operand))}")
        # operand axis i lands on dims[i]: put them in order first
        order = tuple(int(i) for i in np.argsort(dims))
        operand, dims = transpose(operand, order), tuple(sorted(dims))
    return broadcast_in_dim_p.bind(operand, shape=shape, broadcast_dimensions=dims)


def _py_scalar(x):
    """A Python scalar as an array of its default dtype (1.0 -> float32), as JAX's lax
    functions take it; anything else unchanged."""
    return scalar_value(x) if type(x) in _PY_SCALARS else x


_PY_SCALARS = frozenset((bool, int, float, complex))


def broadcast_to(x, shape):
    """numpy-style broadcast of `x` to `shape` (trailing axes aligned)."""
    shape = tuple(shape)
    xs = _aval_shape(x)
    if xs == shape:
        return x
    lead = len(shape) - len(xs)
    return broadcast_in_dim(x, shape, tuple(range(lead, len(shape))))


def full(shape, fill_value, dtype=None, *, sharding=None):
    """An array of `shape` (a tuple or an int) filled with the scalar `fill_value`, of
    `dtype`, or by default of `fill_value`'s (a Python float gives float32, as in JAX).

    Example:
        >>> import nanofn
        >>> nanofn.lax.full((2,), 1.5)
        Array([1.5, 1.5], dtype=float32)
    """
    del sharding  # one device
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(d) for d in shape)
    if np.ndim(fill_value) != 0:
        raise TypeError(f"full: fill_value must be a scalar, got an array of shape "
                        f"{np.shape(fill_value)}")
    if isinstance(fill_value, Tracer):
        if dtype is not None and np.dtype(dtype) != fill_value.aval.dtype:
            fill_value = convert_element_type(fill_value, dtype)
    elif dtype is None:
        fill_value = np.asarray(_py_scalar(fill_value))
    else:
        fill_value = np.asarray(fill_value).astype(dtype)
    return broadcast_in_dim_p.bind(fill_value, shape=shape, broadcast_dimensions=())


# --- reshape -------------------------------------------------------------------------
reshape_p = Primitive("reshape")
reshape_p.impl = lambda x, *, new_sizes: np.reshape(x, new_sizes)


@reshape_p.def_abstract_eval
def _reshape_abstract_eval(x, *, new_sizes):
    if math.prod(new_sizes) != x.size:
        raise ValueError(f"reshape: cannot reshape {x.str_short()} ({x.size} elements) to "
                         f"shape {tuple(new_sizes)}")
    return ShapedArray(new_sizes, x.dtype)


deflinear(reshape_p, lambda ct, x, *, new_sizes: reshape_p.bind(ct, new_sizes=tuple(_aval_shape(x))))


def _reshape_batch(vals, dims, *, new_sizes):
    x = bdim_to_front(vals[0], dims[0])
    return reshape_p.bind(x, new_sizes=(_aval_shape(x)[0],) + tuple(new_sizes)), 0


reshape_p.batch = _reshape_batch


def reshape(operand, new_sizes, dimensions=None, *, out_sharding=None):
    """Reshape `operand` (row-major), lax semantics: `new_sizes` is the full new shape;
    `dimensions`, if given, is a permutation applied first (as `jax.lax.reshape`).

    Example:
        >>> import nanofn
        >>> nanofn.lax.reshape(nanofn.numpy.arange(6), (2, 3)).shape
        (2, 3)
        >>> nanofn.lax.reshape(nanofn.numpy.arange(6).reshape(2, 3), (6,), dimensions=(1, 0))
        Array([0, 3, 1, 4, 2, 5], dtype=int32)
    """
    del out_sharding  # one device
    new_sizes = tuple(int(d) for d in new_sizes)
    operand = _py_scalar(operand)
    if dimensions is not None:
        operand = transpose(operand, dimensions)
    if _aval_shape(operand) == new_sizes:
        return operand
    return reshape_p.bind(operand, new_sizes=new_sizes)


# --- transpose ---------------------------------------------------------------------
transpose_p = Primitive("transpose")
transpose_p.impl = lambda x, *, permutation: np.transpose(x, permutation)


@transpose_p.def_abstract_eval
def _transpose_abstract_eval(x, *, permutation):
    if sorted(permutation) != list(range(x.ndim)):
        raise ValueError(f"transpose: permutation {permutation} is not a permutation of the "
                         f"axes of {x.str_short()}")
    return ShapedArray([x.shape[p] for p in permutation], x.dtype)


deflinear(transpose_p, lambda ct, x, *, permutation:
          transpose_p.bind(ct, permutation=tuple(np.argsort(permutation).tolist())))
transpose_p.batch = lambda vals, dims, *, permutation: (
    transpose_p.bind(bdim_to_front(vals[0], dims[0]),
                     permutation=(0,) + tuple(p + 1 for p in permutation)), 0)


def transpose(operand, permutation):
    """Permute the axes of `operand` (lax semantics: `permutation` is required).

    Example:
        >>> import nanofn
        >>> nanofn.lax.transpose(nanofn.numpy.zeros((2, 3)), (1, 0)).shape
        (3, 2)
    """
    permutation = tuple(int(p) for p in permutation)
    identity = tuple(range(len(_aval_shape(operand))))
    if permutation == identity:
        return operand
    if tuple(sorted(permutation)) != identity:
        raise TypeError(f"transpose: permutation {permutation} is not a permutation of the "
                        f"{len(identity)} axes of an operand of shape "
                        f"{tuple(_aval_shape(operand))}")
    return transpose_p.bind(operand, permutation=permutation)


# --- squeeze -------------------------------------------------------------------------
squeeze_p = Primitive("squeeze")
squeeze_p.impl = lambda x, *, dimensions: np.squeeze(x, axis=dimensions)


@squeeze_p.def_abstract_eval
def _squeeze_abstract_eval(x, *, dimensions):
    if any(x.shape[d] != 1 for d in dimensions):
        raise ValueError(f"squeeze: dimensions {dimensions} of {x.str_short()} are not all of "
                         "size 1")
    return ShapedArray([s for i, s in enumerate(x.shape) if i not in dimensions], x.dtype)


deflinear(squeeze_p, lambda ct, x, *, dimensions: reshape_p.bind(ct, new_sizes=tuple(_aval_shape(x))))
squeeze_p.batch = lambda vals, dims, *, dimensions: (
    squeeze_p.bind(bdim_to_front(vals[0], dims[0]),
                   dimensions=tuple(d + 1 for d in dimensions)), 0)


def squeeze(array, dimensions):
    """Remove the size-1 axes `dimensions` from `array`."""
    ndim = len(_aval_shape(array))
    return squeeze_p.bind(array, dimensions=tuple(sorted(d % ndim for d in dimensions)))


def expand_dims(array, dimensions):
    """Insert size-1 axes at `dimensions` (positions in the result). Not a primitive: a reshape."""
    array = _py_scalar(array)
    shape = list(_aval_shape(array))
    ndim = len(shape) + len(dimensions)
    dims = sorted(d % ndim if -ndim <= d < ndim else ndim for d in dimensions)
    if len(set(dims)) != len(dims) or (dims and dims[-1] >= ndim):
        raise ValueError(f"expand_dims: dimensions {tuple(dimensions)} must be distinct axes "
                         f"of the {ndim}-d result (operand shape {tuple(shape)})")
    for d in dims:
        shape.insert(d, 1)
    return reshape_p.bind(array, new_sizes=tuple(shape))  # a new shape: never the same


# ======================================================================== reductions


def _reduce_shape(name):
    def rule(x, *, axes):
        if any(not 0 <= a < x.ndim for a in axes) or len(set(axes)) != len(axes):
            raise ValueError(f"{name}: axes {axes} are invalid for {x.str_short()}")
        return ShapedArray([s for i, s in enumerate(x.shape) if i not in axes], x.dtype)
    return rule


def _reduce_batch(prim):
    def rule(vals, dims, *, axes):
        x = bdim_to_front(vals[0], dims[0])
        return prim.bind(x, axes=tuple(a + 1 for a in axes)), 0
    return rule


def _keep_axes(ct, x_shape, axes):
    """Broadcast a reduced cotangent back over the reduced axes."""
    kept = tuple(i for i in range(len(x_shape)) if i not in axes)
    return broadcast_in_dim_p.bind(ct, shape=tuple(x_shape), broadcast_dimensions=kept)


# --- reduce_sum ----------------------------------------------------------------------
_BLAS_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


@functools.lru_cache(maxsize=32)
def _ones(n, dtype):
    ones = np.ones(n, dtype)
    ones.flags.writeable = False
    return ones


def sum_np(x, axes, out=None):
    """`np.add.reduce(x, axes)` in x's dtype (into `out` when given): reduce_sum's impl,
    and the jit plan's. A sum over the leading axes of a C-contiguous float32 or float64
    array (a bias gradient: the column sums of a (rows, features) matrix) runs as one BLAS
    product with a vector of ones: numpy adds such rows one at a time, 1.4x (512 columns)
    to 4x (128 columns) slower on 2048 rows."""
    k = len(axes)
    if (0 < k < x.ndim and x.dtype in _BLAS_FLOATS and x.flags.c_contiguous and x.size
            and axes == tuple(range(k)) and (out is None or out.flags.c_contiguous)):
        rows = math.prod(x.shape[:k])
        if rows >= 8:
            flat = np.matmul(_ones(rows, x.dtype), x.reshape(rows, -1),
                             out=None if out is None else out.reshape(-1))
            return flat.reshape(x.shape[k:]) if out is None else out
    return np.add.reduce(x, axis=axes, dtype=x.dtype, out=out)


reduce_sum_p = Primitive("reduce_sum")
reduce_sum_p.impl = lambda x, *, axes: sum_np(np.asarray(x), tuple(axes))
reduce_sum_p.abstract_eval = _reduce_shape("reduce_sum")
deflinear(reduce_sum_p, lambda ct, x, *, axes: _keep_axes(ct, _aval_shape(x), axes))
reduce_sum_p.batch = _reduce_batch(reduce_sum_p)


def reduce_sum(operand, axes, *, out_sharding=None):
    """Sum `operand` over `axes` (a tuple of non-negative axes; `out_sharding` is accepted
    for JAX compatibility: one device)."""
    del out_sharding
    return reduce_sum_p.bind(_py_scalar(operand), axes=tuple(axes))


# --- reduce_max, reduce_min ---------------------------------------------------------------
def _reduce_extremum(name, np_fn):
    prim = Primitive(name)
    prim.impl = lambda x, *, axes: np_fn(x, axis=axes)
    prim.abstract_eval = _reduce_shape(name)
    prim.batch = _reduce_batch(prim)

    def location(x, out, axes):
        # 1 at every position that attains the extremum, shared equally among ties (as JAX)
        x_shape = _aval_shape(x)
        hit = eq_p.bind(x, _keep_axes(out, x_shape, axes))
        hit = convert_element_type_p.bind(hit, new_dtype=_dtype(x))
        count = reduce_sum_p.bind(hit, axes=axes)
        return hit, count

    def jvp_term(t, x, *, out, axes):
        hit, count = location(x, out, axes)
        return _div(reduce_sum_p.bind(_mul(t, hit), axes=axes), count)

    def vjp(ct, x, *, out, axes):
        hit, count = location(x, out, axes)
        return _mul(_keep_axes(_div(ct, count), _aval_shape(x), axes), hit)

    prim.jvp_terms = [jvp_term]
    prim.vjp = [vjp]
    return prim


reduce_max_p = _reduce_extremum("reduce_max", np.max)
reduce_min_p = _reduce_extremum("reduce_min", np.min)


# --- argmax, argmin --------------------------------------------------------------------
def _arg_extremum(name, np_fn):
    prim = Primitive(name)
    prim.impl = lambda x, *, axis, index_dtype: np_fn(x, axis=axis).astype(index_dtype)

    def abstract_eval(x, *, axis, index_dtype):
        if not 0 <= axis < x.ndim:
            raise ValueError(f"{name}: axis {axis} is out of range for {x.str_short()}")
        if x.shape[axis] == 0:
            raise ValueError(f"{name}: cannot take the {name} of an empty axis ({x.str_short()})")
        return ShapedArray([s for i, s in enumerate(x.shape) if i != axis], index_dtype)

    prim.abstract_eval = abstract_eval
    defnoderiv(prim, 1)
    prim.batch = lambda vals, dims, *, axis, index_dtype: (
        prim.bind(bdim_to_front(vals[0], dims[0]), axis=axis + 1, index_dtype=index_dtype), 0)
    return prim


argmax_p = _arg_extremum("argmax", np.argmax)
argmin_p = _arg_extremum("argmin", np.argmin)

# ======================================================================== iota

iota_p = Primitive("iota")


@iota_p.def_impl
def _iota_impl(*, dtype, shape, dimension):
    ramp = np.arange(shape[dimension], dtype=dtype)
    view = [1] * len(shape)
    view[dimension] = shape[dimension]
    return np.broadcast_to(ramp.reshape(view), shape)


iota_p.abstract_eval = lambda *, dtype, shape, dimension: ShapedArray(shape, dtype)
iota_p.jvp_terms = []
iota_p.vjp = []


def iota(dtype, size):
    """`[0, 1, ..., size - 1]` as a 1-d array of `dtype`.

    Example:
        >>> import nanofn
        >>> nanofn.lax.iota("int32", 3)
        Array([0, 1, 2], dtype=int32)
    """
    return iota_p.bind(dtype=np.dtype(dtype), shape=(int(size),), dimension=0)


def broadcasted_iota(dtype, shape, dimension, *, out_sharding=None):
    """An array of `shape` whose values count along `dimension` (`out_sharding` is accepted
    for JAX compatibility: nanofn runs on one device)."""
    return iota_p.bind(dtype=np.dtype(dtype), shape=tuple(shape), dimension=int(dimension))


# ======================================================================== dot_general


def _dot_general_dims(x_ndim, y_ndim, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    x_free = [d for d in range(x_ndim) if d not in lc and d not in lb]
    y_free = [d for d in range(y_ndim) if d not in rc and d not in rb]
    return tuple(lc), tuple(rc), tuple(lb), tuple(rb), x_free, y_free


dot_general_p = Primitive("dot_general")


@dot_general_p.def_impl
def _dot_general_impl(x, y, *, dimension_numbers, preferred_element_type=None):
    lc, rc, lb, rb, x_free, y_free = _dot_general_dims(x.ndim, y.ndim, dimension_numbers)
    xt = np.transpose(x, list(lb) + x_free + list(lc))
    yt = np.transpose(y, list(rb) + list(rc) + y_free)
    b = [x.shape[d] for d in lb]
    m = [x.shape[d] for d in x_free]
    n = [y.shape[d] for d in y_free]
    k = math.prod([x.shape[d] for d in lc])
    mm, nn = math.prod(m), math.prod(n)
    pet = preferred_element_type
    if pet is not None and (np.can_cast(x.dtype, pet, "safe") or
                            (x.dtype.kind in "biu" and np.dtype(pet).kind == "f")):
        # a wider type: accumulate in it (int8 products summed in int32); a narrower or
        # other one (JAX takes those for dot_general too) converts the result instead
        xt, yt = xt.astype(pet, copy=False), yt.astype(pet, copy=False)
    # batch axes stay apart: merging them would copy an operand whose batch axes are not
    # adjacent in memory (attention's heads, transposed out of (B, T, N, H)); matmul
    # loops over them with any strides
    out = np.matmul(xt.reshape(b + [mm, k]), yt.reshape(b + [k, nn]))
    out = out.reshape(b + m + n)
    if preferred_element_type is not None:
        out = out.astype(preferred_element_type, copy=False)
    return out


@dot_general_p.def_abstract_eval
def _dot_general_abstract_eval(x, y, *, dimension_numbers, preferred_element_type=None):
    lc, rc, lb, rb, x_free, y_free = _dot_general_dims(x.ndim, y.ndim, dimension_numbers)
    if x.dtype != y.dtype:
        raise TypeError(f"dot_general requires operands of one dtype, got {x.str_short()} and "
                        f"{y.str_short()}")
    if ([x.shape[d] for d in lc] != [y.shape[d] for d in rc]
            or [x.shape[d] for d in lb] != [y.shape[d] for d in rb]):
        raise ValueError(
            f"dot_general: contracting dimensions {lc} of {x.str_short()} and {rc} of "
            f"{y.str_short()} (batch dimensions {lb} and {rb}) have different sizes")
    shape = [x.shape[d] for d in lb] + [x.shape[d] for d in x_free] + [y.shape[d] for d in y_free]
    return ShapedArray(shape, preferred_element_type or x.dtype)


def _dot_general_cotangent(ct, x, y, dimension_numbers, which):
    """The cotangent of operand `which` (0: x, 1: y) of a dot_general.

    ct has axes (batch, x free, y free). Contracting it with the other operand's free axes
    gives the wanted cotangent up to an axis permutation, with two choices of operand
    order; take the one that needs no transpose when there is one, so the result is the
    C-contiguous output of the matmul (a transposed view would slow down what uses it)."""
    x_ndim, y_ndim = len(_aval_shape(x)), len(_aval_shape(y))
    lc, rc, lb, rb, x_free, y_free = _dot_general_dims(x_ndim, y_ndim, dimension_numbers)
    nb, nxf, nyf = len(lb), len(x_free), len(y_free)
    ct_batch = tuple(range(nb))
    ct_x_free = tuple(range(nb, nb + nxf))
    ct_y_free = tuple(range(nb + nxf, nb + nxf + nyf))
    if which == 0:  # the other operand is y; x's contracting dims come from y's
        other, other_free, other_batch, ct_free = y, tuple(y_free), rb, ct_y_free
        mine_batch, mine_free = list(lb), list(x_free)
        from_other = [lc[i] for i in np.argsort(rc)]  # y's contracting dims, as x dims
    else:
        other, other_free, other_batch, ct_free = x, tuple(x_free), lb, ct_x_free
        mine_batch, mine_free = list(rb), list(y_free)
        from_other = [rc[i] for i in np.argsort(lc)]
    other = _like_dtype(other, ct)  # a preferred_element_type: contract in the ct's dtype
    # order A: dot_general(ct, other) -> batch, my free dims, my contracting dims
    # order B: dot_general(other, ct) -> batch, my contracting dims, my free dims
    dims_a = mine_batch + mine_free + from_other
    dims_b = mine_batch + from_other + mine_free
    if dims_a != sorted(dims_a) and dims_b == sorted(dims_b):
        res = dot_general_p.bind(other, ct, dimension_numbers=((other_free, ct_free),
                                                                (other_batch, ct_batch)))
        return res  # already in my axis order
    res = dot_general_p.bind(ct, other, dimension_numbers=((ct_free, other_free),
                                                            (ct_batch, other_batch)))
    return transpose(res, tuple(np.argsort(dims_a).tolist()))


def _like_dtype(v, like):
    """`v` cast to the dtype of `like` (no copy when it already has it)."""
    d = _dtype(like)
    return v if _dtype(v) == d else convert_element_type_p.bind(v, new_dtype=d)


def _dot_general_ct_x(ct, x, y, *, out, dimension_numbers, preferred_element_type=None):
    return _like_dtype(_dot_general_cotangent(ct, x, y, dimension_numbers, 0), x)


def _dot_general_ct_y(ct, x, y, *, out, dimension_numbers, preferred_element_type=None):
    return _like_dtype(_dot_general_cotangent(ct, x, y, dimension_numbers, 1), y)


def _dot_general_tangent_x(t, x, y, *, out, **params):
    return dot_general_p.bind(t, y, **params)


def _dot_general_tangent_y(t, x, y, *, out, **params):
    return dot_general_p.bind(x, t, **params)


dot_general_p.jvp_terms = [_dot_general_tangent_x, _dot_general_tangent_y]
dot_general_p.vjp = [_dot_general_ct_x, _dot_general_ct_y]


def _dot_general_batch(vals, dims, *, dimension_numbers, preferred_element_type=None):
    (x, y), (dx, dy) = vals, dims
    (lc, rc), (lb, rb) = dimension_numbers
    shift = lambda ds: tuple(d + 1 for d in ds)  # noqa: E731
    if dx is not None and dy is not None:
        x, y = bdim_to_front(x, dx), bdim_to_front(y, dy)
        dn = ((shift(lc), shift(rc)), ((0,) + shift(lb), (0,) + shift(rb)))
        return dot_general_p.bind(x, y, dimension_numbers=dn,
                                  preferred_element_type=preferred_element_type), 0
    if dx is not None:
        # the batch axis becomes x's first free axis: it lands right after the batch dims
        x = bdim_to_front(x, dx)
        dn = ((shift(lc), rc), (shift(lb), rb))
        return dot_general_p.bind(x, y, dimension_numbers=dn,
                                  preferred_element_type=preferred_element_type), len(lb)
    y = bdim_to_front(y, dy)
    dn = ((lc, shift(rc)), (lb, shift(rb)))
    x_free = len(_aval_shape(x)) - len(lc) - len(lb)
    return dot_general_p.bind(x, y, dimension_numbers=dn,
                              preferred_element_type=preferred_element_type), len(lb) + x_free


dot_general_p.batch = _dot_general_batch


class Precision(enum.Enum):
    """How precisely a contraction is computed on accelerators (jax.lax.Precision).

    nanofn computes in the operands' own dtype on the CPU, so every value gives the same
    result; the enum exists so that programs passing `precision=` run unchanged. Strings
    are accepted as in JAX: "default"/"bfloat16", "high"/"tensorfloat32",
    "highest"/"float32".

    Example:
        >>> import nanofn
        >>> nanofn.lax.Precision("highest")
        <Precision.HIGHEST: 2>
    """
    DEFAULT = 0
    HIGH = 1
    HIGHEST = 2

    @classmethod
    def _missing_(cls, value):
        names = {"default": 0, "bfloat16": 0, "fastest": 0, "high": 1, "tensorfloat32": 1,
                 "bfloat16_3x": 1, "highest": 2, "float32": 2}
        if isinstance(value, str) and value.lower() in names:
            return cls(names[value.lower()])
        return None


class DotAlgorithmPreset(enum.Enum):
    """Named algorithms for a contraction on accelerators (jax.lax.DotAlgorithmPreset),
    accepted as `precision=`. On the CPU nanofn computes in the operands' dtype (or
    `preferred_element_type`), so every preset gives the same result.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.dot(fnp.ones(3), fnp.ones(3),
        ...                precision=nanofn.lax.DotAlgorithmPreset.F32_F32_F32)
        Array(3., dtype=float32)
    """
    DEFAULT = enum.auto()
    ANY_F8_ANY_F8_F32 = enum.auto()
    ANY_F8_ANY_F8_F32_FAST_ACCUM = enum.auto()
    ANY_F8_ANY_F8_ANY = enum.auto()
    ANY_F8_ANY_F8_ANY_FAST_ACCUM = enum.auto()
    F16_F16_F16 = enum.auto()
    F16_F16_F32 = enum.auto()
    BF16_BF16_BF16 = enum.auto()
    BF16_BF16_F32 = enum.auto()
    BF16_BF16_F32_X3 = enum.auto()
    BF16_BF16_F32_X6 = enum.auto()
    BF16_BF16_F32_X9 = enum.auto()
    TF32_TF32_F32 = enum.auto()
    TF32_TF32_F32_X3 = enum.auto()
    F32_F32_F32 = enum.auto()
    F64_F64_F64 = enum.auto()


@dataclasses.dataclass(frozen=True)
class DotAlgorithm:
    """An explicit contraction algorithm (jax.lax.DotAlgorithm), accepted as `precision=`
    and, as every precision here, without effect on the CPU's result.

    Example:
        >>> import numpy as np, nanofn
        >>> nanofn.lax.DotAlgorithm(np.float32, np.float32, np.float32).accumulation_type
        <class 'numpy.float32'>
    """
    lhs_precision_type: Any
    rhs_precision_type: Any
    accumulation_type: Any
    lhs_component_count: int = 1
    rhs_component_count: int = 1
    num_primitive_operations: int = 1
    allow_imprecise_accumulation: bool = False


def canonicalize_precision(precision, fname="dot_general"):
    """Check a `precision=` argument (None, a Precision or its name, or a pair of them, or
    a DotAlgorithmPreset or DotAlgorithm)."""
    if precision is None or isinstance(precision, (DotAlgorithmPreset, DotAlgorithm)):
        return None
    items = precision if isinstance(precision, (tuple, list)) else (precision,)
    if len(items) not in (1, 2):
        raise ValueError(f"{fname}: precision must be one Precision or a pair, got {precision!r}")
    try:
        out = tuple(p if isinstance(p, Precision) else Precision(p) for p in items)
    except ValueError:
        raise ValueError(f"{fname}: unknown precision {precision!r}; use None, "
                         "nanofn.lax.Precision.DEFAULT/HIGH/HIGHEST or their names, or a "
                         "nanofn.lax.DotAlgorithmPreset") from None
    return out if len(out) == 2 else out[0]


def check_preferred_element_type(fname, dtype, preferred_element_type):
    """`preferred_element_type` as a dtype (or None), checked against the operands' `dtype`
    as JAX checks it: the same kind (an integer may widen to a float), the same signedness,
    and not narrower."""
    if preferred_element_type is None:
        return None
    dtype, pet = np.dtype(dtype), np.dtype(preferred_element_type)
    if not (dtype.kind in "iu" and pet.kind == "f"):
        kinds = {"i": "iu", "u": "iu", "f": "f", "c": "c"}
        if dtype.kind in kinds and pet.kind not in kinds[dtype.kind]:
            raise TypeError(f"{fname}: preferred_element_type={pet.name} does not fit "
                            f"operands of dtype {dtype.name}; the pairs allowed are (integer, "
                            "integer), (integer, floating), (floating, floating) and "
                            "(complex, complex)")
        if dtype.kind == "i" and pet.kind != "i":
            raise TypeError(f"{fname}: preferred_element_type={pet.name} must be signed, as "
                            f"the operands ({dtype.name}) are")
    if pet.itemsize < dtype.itemsize:
        raise TypeError(f"{fname}: preferred_element_type={pet.name} must not be narrower than "
                        f"the operands' dtype {dtype.name}")
    return pet


def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None, *,
                out_sharding=None):
    """General tensor contraction (lax semantics).

    `dimension_numbers = ((lhs_contracting, rhs_contracting), (lhs_batch, rhs_batch))`;
    the result's axes are the batch axes, then lhs's free axes, then rhs's free axes.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.dot_general(fnp.ones((2, 3)), fnp.ones((3, 4)), (((1,), (0,)), ((), ()))).shape
        (2, 4)
    """
    del out_sharding  # one device
    canonicalize_precision(precision)  # checked; numpy computes in the operands' precision
    (lc, rc), (lb, rb) = dimension_numbers
    dn = ((tuple(lc), tuple(rc)), (tuple(lb), tuple(rb)))
    pet = None if preferred_element_type is None else np.dtype(preferred_element_type)
    return dot_general_p.bind(lhs, rhs, dimension_numbers=dn, preferred_element_type=pet)


# Every rule in this file is written with primitives and shape/dtype queries only, so the
# reverse pass of an eager `grad` may run these primitives' rules on numpy values.
for _p in [v for v in list(globals().values()) if isinstance(v, Primitive)]:
    _p.numpy_rules = True
del _p


# ======================================================================== numpy-mode reverse rules
#
# The reverse pass of an eager `grad` runs on numpy values (`nanofn/_ad.py`, `backward`).
# For the hot primitives it calls `vjp_numpy` instead of the rules above: the same
# arithmetic as the same ufuncs in the same order, so the cotangents are bitwise the same,
# but with no `bind` per operation, and with `out=` into buffers nobody else sees (the
# rule's own temporaries, and `ct` when the walker says it owns it). `vjp_reads` names the
# values the rules above read (the others only lend their shape and dtype), so the tape
# can forget the rest. Each rule's comment gives the rule above that it repeats.

def _general_vjp(prim, ct, primals, out, keys):
    """The rules above, for the cases a numpy rule leaves to them."""
    return [None if k is None or d is None else d(ct, *primals, out=out)
            for d, k in zip(prim.vjp, keys)]


def _into(ct, owned):
    return ct if owned else None


def _np_add(ct, primals, out, keys, owned):  # g, g
    return [ct, ct]


def _np_sub(ct, primals, out, keys, owned):  # g, -g
    if keys[1] is None:
        return [ct, None]
    return [ct, np.negative(ct, out=_into(ct, owned and keys[0] is None))]


def _np_neg(ct, primals, out, keys, owned):  # -g
    return [np.negative(ct, out=_into(ct, owned))]


def _ones_broadcast(ct) -> bool:
    """Whether `ct` is ones broadcast (the cotangent a sum hands back from its unit seed:
    `grad` of `sum(f(x))`), real: a product with it is the other factor, bitwise. (A
    complex number times 1 is NaN where its imaginary part is infinite.)"""
    return (type(ct) is np.ndarray and ct.size > 0 and not any(ct.strides)
            and ct.dtype.kind == "f" and ct[(0,) * ct.ndim] == 1)


def _other_factor(v, traced, ct, out):
    """`ct * v` for `ct` ones broadcast, without the pass, when that is the product's shape
    and dtype: `v` itself if it is a value this pass traced (nanofn's own, never the
    caller's buffer), or a one-element `v` broadcast. None when it does not apply."""
    v = np.asarray(v)
    shape = out.shape if hasattr(out, "shape") else ct.shape
    if v.dtype != ct.dtype:
        return None
    if v.shape == shape and traced:
        return v
    if v.size == 1:  # read-only, like the cotangent it replaces, over a copy of the number
        return np.broadcast_to(v.reshape(()).copy(), shape)
    return None


def _np_mul(ct, primals, out, keys, owned):  # g * y, x * g
    x, y = primals
    kx, ky = keys
    if not owned and _ones_broadcast(ct):  # a fresh cotangent is never ones broadcast
        gx = None if kx is None else _other_factor(y, ky is not None, ct, out)
        gy = None if ky is None else _other_factor(x, kx is not None, ct, out)
        if (kx is None or gx is not None) and (ky is None or gy is not None):
            return [gx, gy]
    if kx is not None and ky is not None:
        if x is y:  # x * x: g * x and x * g are the same numbers; compute them once
            g = np.multiply(ct, y, out=_into(ct, owned))
            return [g, g]
        return [np.multiply(ct, y), np.multiply(x, ct, out=_into(ct, owned))]
    if kx is not None:
        return [np.multiply(ct, y, out=_into(ct, owned)), None]
    return [None, np.multiply(x, ct, out=_into(ct, owned))]


def _np_div(ct, primals, out, keys, owned):  # ct_x = g / y, ct_y = -(ct_x * out)
    if ct.dtype.kind not in "fc":  # integer division: the rule above, through div's impl
        return _div_vjp(ct, primals, out, [k is not None for k in keys])
    flat = _one_pass(ct, primals[1], out) if keys[0] is not None and keys[1] is not None \
        else None
    if flat is not None:  # both cotangents in one pass
        ct_x, ct_y = _result_buffer(ct, owned), np.empty(ct.shape, ct.dtype)
        _div_vjp_kernel(*flat, ct_x.reshape(-1), ct_y.reshape(-1))
        return [ct_x, ct_y]
    ct_x = np.true_divide(ct, primals[1], out=ct if owned else ...)
    if keys[1] is None:
        return [ct_x, None]
    ct_y = np.multiply(ct_x, out, out=ct_x if keys[0] is None else ...)
    return [None if keys[0] is None else ct_x, np.negative(ct_y, out=ct_y)]


def _np_exp(ct, primals, out, keys, owned):  # g * out
    return [np.multiply(ct, out, out=_into(ct, owned))]


def _np_log(ct, primals, out, keys, owned):  # g / x
    return [np.true_divide(ct, primals[0], out=_into(ct, owned))]


def _np_sin(ct, primals, out, keys, owned):  # g * cos(x)
    t = np.cos(primals[0], out=...)
    return [np.multiply(ct, t, out=t)]


def _np_cos(ct, primals, out, keys, owned):  # -(g * sin(x))
    t = np.sin(primals[0], out=...)
    np.multiply(ct, t, out=t)
    return [np.negative(t, out=t)]


# On large float arrays the rules with several passes run as one kernel pass instead:
# the same operations in the same order, each rounded to the dtype as a ufunc rounds it
# (numba contracts nothing into fused multiply-adds), so the numbers are bitwise those of
# the ufunc passes; memory is read once instead of three times (W3's eager step). Each
# element is computed on its own, so the loops are `prange`s: on numba's threads for
# large arrays (see `nanofn._kernels.kernel`), bitwise the same.
_ONE_PASS_MIN = 1 << 16
prange = range  # numba's prange in the parallel builds


@kernel(parallel_arg=1)
def _tanh_vjp_kernel(ct, out, one, r):
    if ct.size == 1:  # a broadcast cotangent (the gradient of a sum)
        c = ct[0]
        for i in prange(r.size):
            r[i] = c * (one - out[i] * out[i])
    else:
        for i in prange(r.size):
            r[i] = ct[i] * (one - out[i] * out[i])


@kernel(parallel_arg=1)
def _logistic_vjp_kernel(ct, out, one, r):
    if ct.size == 1:
        c = ct[0]
        for i in prange(r.size):
            r[i] = c * (out[i] * (one - out[i]))
    else:
        for i in prange(r.size):
            r[i] = ct[i] * (out[i] * (one - out[i]))


@kernel(parallel_arg=1)
def _div_vjp_kernel(ct, y, out, ct_x, ct_y):
    if ct.size == 1:
        c = ct[0]
        for i in prange(ct_x.size):
            q = c / y[i]
            ct_x[i] = q
            ct_y[i] = -(q * out[i])
    else:
        for i in prange(ct_x.size):
            q = ct[i] / y[i]
            ct_x[i] = q
            ct_y[i] = -(q * out[i])


def _one_pass(ct, *others):
    """`ct` and `others` as flat arrays if a one-pass kernel may run on them, else None.
    A cotangent broadcast from one value (strides all 0: a sum's) goes as one element."""
    if (ct.size < _ONE_PASS_MIN or ct.dtype.kind != "f" or not kernels_enabled()
            or any(b.dtype != ct.dtype or b.shape != ct.shape or not b.flags.c_contiguous
                   for b in others)):
        return None
    if not any(ct.strides):
        return [ct.reshape(-1)[:1]] + [b.reshape(-1) for b in others]
    if not ct.flags.c_contiguous:
        return None
    return [ct.reshape(-1)] + [b.reshape(-1) for b in others]


def _result_buffer(ct, owned):
    """Where a rule may write its cotangent: `ct` if owned (and a real buffer), else new."""
    return ct if owned and ct.flags.c_contiguous and ct.flags.writeable else np.empty(
        ct.shape, ct.dtype)


def _np_tanh(ct, primals, out, keys, owned):  # g * (1 - out * out)
    flat = _one_pass(ct, out)
    if flat is not None:
        r = _result_buffer(ct, owned)
        _tanh_vjp_kernel(*flat, out.dtype.type(1), r.reshape(-1))
        return [r]
    t = np.multiply(out, out, out=...)
    np.subtract(np.asarray(1, out.dtype), t, out=t)
    return [np.multiply(ct, t, out=t)]


def _np_logistic(ct, primals, out, keys, owned):  # g * (out * (1 - out))
    flat = _one_pass(ct, out)
    if flat is not None:
        r = _result_buffer(ct, owned)
        _logistic_vjp_kernel(*flat, out.dtype.type(1), r.reshape(-1))
        return [r]
    t = np.subtract(np.asarray(1, out.dtype), out, out=...)
    np.multiply(out, t, out=t)
    return [np.multiply(ct, t, out=t)]


def _np_sqrt(ct, primals, out, keys, owned):  # (g * 0.5) / out
    t = np.multiply(ct, np.asarray(0.5, out.dtype), out=ct if owned else ...)
    return [np.true_divide(t, out, out=t)]


def _np_integer_pow(ct, primals, out, keys, owned, *, y):  # g * (y * x ** (y - 1))
    if y == 0:
        return [None]
    if y == 1:
        return [ct]
    x = primals[0]
    t = _integer_pow_impl(x, y=y - 1)  # a new array (or a numpy scalar for a 0-d x)
    t = np.multiply(np.asarray(y, x.dtype), t, out=t if type(t) is np.ndarray else ...)
    return [np.multiply(ct, t, out=t)]


def _np_reduce_sum(ct, primals, out, keys, owned, *, axes):  # broadcast ct back over axes
    shape = primals[0].shape
    if ct.ndim == 0 and type(ct) is np.ndarray:  # a full sum: a read-only stride-0 view
        g = np.ndarray(shape, ct.dtype, ct, 0, (0,) * len(shape))
        g.flags.writeable = False
        return [g]
    return [_keep_axes(ct, shape, axes)]


def _np_convert(ct, primals, out, keys, owned, *, new_dtype):  # back to x's dtype
    old = primals[0].dtype
    if not np.issubdtype(old, np.inexact) or not np.issubdtype(new_dtype, np.inexact):
        return [None]
    if ct.dtype.kind == "c" and old.kind != "c":
        ct = ct.real
    return [ct.astype(old)]


for _p, _rule, _reads in [
        (add_p, _np_add, ((), False)), (sub_p, _np_sub, ((), False)),
        (neg_p, _np_neg, ((), False)), (mul_p, _np_mul, ((0, 1), False)),
        (div_p, _np_div, ((1,), True)), (exp_p, _np_exp, ((), True)),
        (log_p, _np_log, ((0,), False)), (sin_p, _np_sin, ((0,), False)),
        (cos_p, _np_cos, ((0,), False)), (tanh_p, _np_tanh, ((), True)),
        (logistic_p, _np_logistic, ((), True)), (sqrt_p, _np_sqrt, ((), True)),
        (integer_pow_p, _np_integer_pow, ((0,), False)),
        (reduce_sum_p, _np_reduce_sum, ((), False)),
        (convert_element_type_p, _np_convert, ((), False))]:
    _p.vjp_numpy = _rule
    _p.vjp_reads = _reads
# rules above that read only shapes and dtypes of some values (no numpy version needed)
broadcast_in_dim_p.vjp_reads = reshape_p.vjp_reads = ((), False)
transpose_p.vjp_reads = squeeze_p.vjp_reads = ((), False)
select_n_p.vjp_reads = ((0,), False)
del _p, _rule, _reads
