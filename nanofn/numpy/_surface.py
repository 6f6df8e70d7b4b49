"""The rest of jax.numpy's surface that programs reach for: array API aliases, comparisons
of whole arrays (`allclose`, `array_equal`), shape queries, dtype objects and predicates,
elementwise helpers (`copysign`, `frexp`, `ldexp`, `modf`, `gcd`, ...), nan-aware
arg-reductions and quantiles, index helpers (`indices`, `mgrid`, `tril_indices`, ...),
functional updates (`put`, `fill_diagonal`, `put_along_axis`, `insert`, `delete`),
construction helpers (`block`, `logspace`, `fromfunction`, ...), `vectorize`,
`piecewise`, `apply_along_axis` and bit packing.

Everything is written with other `nanofn.numpy` functions (so it traces and, where it
makes sense, differentiates), except the helpers that only read shapes or dtypes.
"""

from __future__ import annotations

import builtins
import functools
import math
import operator
import os
import re

import numpy as np

from nanofn import _core as core
from nanofn._core import Array, Tracer
import nanofn.numpy as fnp  # the finished namespace, used at call time
from nanofn.numpy import _reductions as red
from nanofn.numpy import _shape_funcs as sf
from nanofn.numpy._dtypes import (asarray_value, default_int, dtype_of, promote, promote_float,
                                  result_type)
from nanofn.numpy._lax_numpy import (_canon_shape, _check_ranks, _ndim, _no_out, _shape,
                                     _wrap_output, canonicalize_axis)
from nanofn.numpy._setops import unravel_index
from nanofn.ops import _base as lax
from nanofn.ops._complex import complex_dtype

__all__ = [
    # array API and numpy aliases
    "acos", "acosh", "asin", "asinh", "atan", "atanh", "atan2", "bitwise_invert",
    "bitwise_left_shift", "bitwise_right_shift", "concat", "permute_dims",
    "matrix_transpose", "unstack", "copy", "rollaxis", "fabs", "unravel_index",
    # dtypes
    "bool", "double", "single", "cdouble", "csingle", "complex_", "int_", "uint",
    "complexfloating", "generic", "character", "flexible", "object_", "dtype", "isdtype",
    "can_cast", "promote_types", "ComplexWarning", "euler_gamma",
    # whole-array comparisons and queries
    "allclose", "isclose", "array_equal", "array_equiv", "shape", "ndim", "size",
    "isscalar", "iterable", "broadcast_shapes",
    # elementwise
    "copysign", "signbit", "frexp", "ldexp", "modf", "divmod", "gcd", "lcm", "heaviside",
    "spacing", "isneginf", "isposinf", "bitwise_count", "sort_complex",
    # nan-aware
    "nanargmax", "nanargmin", "nanquantile", "nanpercentile", "nanmedian",
    # products
    "vecdot", "matvec", "vecmat",
    # index helpers
    "indices", "mgrid", "ogrid", "index_exp", "s_", "tri", "tril_indices", "triu_indices",
    "tril_indices_from", "triu_indices_from", "diag_indices", "diag_indices_from",
    "mask_indices", "ravel_multi_index", "diagflat",
    # functional updates
    "put", "put_along_axis", "fill_diagonal", "place", "insert", "delete", "choose",
    "resize", "trim_zeros",
    # construction
    "block", "logspace", "geomspace", "fromfunction", "frombuffer", "fromiter",
    "fromstring", "fromfile", "from_dlpack", "load", "save", "savez", "array_repr",
    "array_str", "printoptions", "get_printoptions", "set_printoptions", "einsum_path",
    # functions of functions
    "vectorize", "piecewise", "apply_along_axis", "apply_over_axes", "unwrap",
    # bits
    "packbits", "unpackbits",
]

# ------------------------------------------------------------------------ aliases

acos, acosh, asin, asinh = fnp.arccos, fnp.arccosh, fnp.arcsin, fnp.arcsinh
atan, atanh, atan2 = fnp.arctan, fnp.arctanh, fnp.arctan2
bitwise_invert, bitwise_left_shift, bitwise_right_shift = fnp.invert, fnp.left_shift, \
    fnp.right_shift
concat = sf.concatenate


def permute_dims(a, /, axes):
    """Permute the axes of `a` (the array API's name for `transpose`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.permute_dims(fnp.zeros((2, 3)), (1, 0)).shape
        (3, 2)
    """
    return fnp.transpose(a, axes)


def matrix_transpose(x, /):
    """Swap the last two axes of `x` (at least 2-d).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.matrix_transpose(fnp.zeros((4, 2, 3))).shape
        (4, 3, 2)
    """
    x = asarray_value(x)
    if _ndim(x) < 2:
        raise ValueError(f"matrix_transpose: x must be at least 2-d, got shape {_shape(x)}")
    return sf.swapaxes(x, -1, -2)


def unstack(x, /, *, axis=0):
    """Split `x` into a tuple of arrays along `axis`, removing that axis.

    Example:
        >>> import nanofn.numpy as fnp
        >>> [a.shape for a in fnp.unstack(fnp.zeros((2, 3)))]
        [(3,), (3,)]
    """
    x = asarray_value(x)
    if _ndim(x) == 0:
        raise ValueError("unstack: x must be at least 1-d")
    axis = canonicalize_axis(axis, _ndim(x))
    return tuple(sf.take(x, i, axis=axis) for i in range(_shape(x)[axis]))


def copy(a, order=None):
    """A copy of `a` (arrays are immutable, so this is `asarray` of a new array).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.copy([1.0, 2.0])
        Array([1., 2.], dtype=float32)
    """
    del order  # unused: one layout
    return fnp.array(a, copy=True)


def rollaxis(a, axis, start=0):
    """Move `axis` to before position `start` (numpy's older `moveaxis`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.rollaxis(fnp.zeros((2, 3, 4)), 2).shape
        (4, 2, 3)
    """
    a = asarray_value(a)
    n = _ndim(a)
    axis = canonicalize_axis(axis, n)
    start = operator.index(start)
    if start < 0:
        start += n
    if not 0 <= start <= n:
        raise ValueError(f"rollaxis: start {start} is out of bounds for {n} dimensions")
    if axis < start:
        start -= 1
    return fnp.moveaxis(a, axis, start)


def fabs(x, /):
    """Absolute value, as a float (numpy.fabs rejects complex input).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fabs(fnp.array([-1, 2]))
        Array([1., 2.], dtype=float32)
    """
    (x,) = promote_float(asarray_value(x))
    if dtype_of(x).kind == "c":
        raise TypeError("fabs: complex input is not supported; use abs")
    return fnp.abs(x)


# ------------------------------------------------------------------------ dtypes

bool = np.bool_
double, single, cdouble, csingle = np.float64, np.float32, np.complex128, np.complex64
complex_, int_, uint = np.complex128, np.int64, np.uint64
complexfloating, generic, character, flexible, object_ = (
    np.complexfloating, np.generic, np.character, np.flexible, np.object_)
dtype = np.dtype
ComplexWarning = np.exceptions.ComplexWarning
euler_gamma = 0.5772156649015329

_ISDTYPE_KINDS = {
    "bool": lambda d: d.kind == "b",
    "signed integer": lambda d: d.kind == "i",
    "unsigned integer": lambda d: d.kind == "u",
    "integral": lambda d: d.kind in "iu",
    "real floating": lambda d: d.kind == "f",
    "complex floating": lambda d: d.kind == "c",
    "numeric": lambda d: d.kind in "iufc",
}


def isdtype(dtype, kind):
    """Whether `dtype` is of `kind` (a dtype, an array API kind name, or a tuple of them).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.isdtype(fnp.float32, "real floating"), fnp.isdtype(fnp.int8, "integral")
        (True, True)
    """
    d = np.dtype(dtype)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for k in kinds:
        if isinstance(k, str):
            if k not in _ISDTYPE_KINDS:
                raise ValueError(f"isdtype: unknown kind {k!r}; expected one of "
                                 f"{sorted(_ISDTYPE_KINDS)} or a dtype")
            if _ISDTYPE_KINDS[k](d):
                return True
        elif d == np.dtype(k):
            return True
    return False


def can_cast(from_, to, casting="safe"):
    """Whether a cast from `from_` (a dtype or array) to `to` is allowed by `casting`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.can_cast(fnp.int32, fnp.float64), fnp.can_cast(fnp.float64, fnp.int32)
        (True, False)
    """
    src = dtype_of(from_) if isinstance(from_, (Array, Tracer)) else from_
    return builtins.bool(np.can_cast(src, to, casting))


def promote_types(a, b):
    """The dtype two dtypes promote to under nanofn's (JAX's) rules.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.promote_types(fnp.int32, fnp.float32)
        dtype('float32')
    """
    return np.dtype(result_type(np.dtype(a), np.dtype(b)))


# ------------------------------------------------------------------------ whole-array tests


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Elementwise `|a - b| <= atol + rtol * |b|`; infinities must match exactly.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.isclose(fnp.array([1.0, 1.1]), 1.0)
        Array([ True, False], dtype=bool)
    """
    _check_ranks("isclose", a, b)
    a, b = promote(a, b)
    d = dtype_of(a)
    if d.kind in "biu":
        return _wrap_output(fnp.equal(a, b))
    (a, b) = promote_float(a, b)
    rdt = np.finfo(dtype_of(a)).dtype
    rtol = asarray_value(rtol, rdt)
    atol = asarray_value(atol, rdt)
    both_finite = fnp.isfinite(a) & fnp.isfinite(b)
    fa, fb = fnp.where(both_finite, a, 0), fnp.where(both_finite, b, 0)  # no inf - inf
    close = fnp.abs(fa - fb) <= atol + rtol * fnp.abs(fb)
    out = fnp.where(both_finite, close, fnp.equal(a, b))
    if equal_nan:
        out = out | (fnp.isnan(a) & fnp.isnan(b))
    return _wrap_output(out)


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True if every element of `a` is close to `b` (see `isclose`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.allclose(fnp.array([1.0, 2.0]), fnp.array([1.0, 2.0 + 1e-7])).item()
        True
    """
    _check_ranks("isclose", a, b)
    return fnp.all(isclose(a, b, rtol, atol, equal_nan))


def array_equal(a1, a2, equal_nan=False):
    """True if `a1` and `a2` have the same shape and elements.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.array_equal(fnp.array([1, 2]), fnp.array([1, 2])).item()
        True
    """
    try:
        a1, a2 = asarray_value(a1), asarray_value(a2)
    except (TypeError, ValueError):
        return fnp.asarray(False)
    if _shape(a1) != _shape(a2):
        return fnp.asarray(False)
    eq = fnp.equal(a1, a2)
    if equal_nan and result_type(a1, a2).kind in "fc":
        eq = eq | (fnp.isnan(a1) & fnp.isnan(a2))
    return fnp.all(eq)


def array_equiv(a1, a2):
    """True if `a1` and `a2` broadcast to each other and their elements are equal.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.array_equiv(fnp.array([1, 2]), fnp.array([[1, 2], [1, 2]])).item()
        True
    """
    try:
        a1, a2 = asarray_value(a1), asarray_value(a2)
        np.broadcast_shapes(_shape(a1), _shape(a2))
    except (TypeError, ValueError):
        return fnp.asarray(False)
    return fnp.all(fnp.equal(a1, a2))


def shape(a):
    """The shape of `a` (a tuple).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.shape([[1, 2, 3]])
        (1, 3)
    """
    return tuple(_shape(a)) if isinstance(a, (Array, Tracer)) else np.shape(a)


def ndim(a):
    """The number of axes of `a`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.ndim(fnp.zeros((2, 3)))
        2
    """
    return len(shape(a))


def size(a, axis=None):
    """The number of elements of `a` (along `axis`, if given).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.size(fnp.zeros((2, 3))), fnp.size(fnp.zeros((2, 3)), 1)
        (6, 3)
    """
    s = shape(a)
    if axis is None:
        return int(np.prod(s, dtype=np.int64))
    return s[canonicalize_axis(axis, len(s))]


def isscalar(element):
    """True for Python and numpy scalars and 0-d arrays (JAX's rule).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.isscalar(1.0), fnp.isscalar(fnp.array(1.0)), fnp.isscalar([1.0])
        (True, True, False)
    """
    if isinstance(element, (Array, Tracer, np.ndarray)):
        return _ndim(element) == 0
    return isinstance(element, (builtins.bool, int, float, complex, np.generic))


def iterable(y):
    """True if `iter(y)` works.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.iterable([1]), fnp.iterable(2)
        (True, False)
    """
    try:
        iter(y)
    except TypeError:
        return False
    return True


def broadcast_shapes(*shapes):
    """The shape that arrays of `shapes` broadcast to.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.broadcast_shapes((2, 1), (3,))
        (2, 3)
    """
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(f"broadcast_shapes: incompatible shapes {shapes}") from None


# ------------------------------------------------------------------------ elementwise


def _float_args(fname, *xs):
    xs = promote_float(*[asarray_value(x) for x in xs])
    if builtins.any(dtype_of(x).kind == "c" for x in xs):
        raise TypeError(f"{fname}: complex input is not supported")
    return xs


def signbit(x, /):
    """True where the sign bit of `x` is set (including -0.0 and negative NaNs).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.signbit(fnp.array([-1.0, -0.0, 0.0, 2.0]))
        Array([ True,  True, False, False], dtype=bool)
    """
    x = asarray_value(x)
    d = dtype_of(x)
    if d.kind == "b" or d.kind == "u":
        return fnp.zeros(_shape(x), bool)
    if d.kind == "i":
        return _wrap_output(x < 0)
    if d.kind != "f":
        raise TypeError(f"signbit: expected a real input, got {d}")
    ints = lax.bitcast_convert_type_p.bind(x, new_dtype=np.dtype(f"i{d.itemsize}"))
    return _wrap_output(ints < 0)


def copysign(x1, x2, /):
    """`|x1|` with the sign of `x2`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.copysign(fnp.array([1.0, -2.0]), -1.0)
        Array([-1., -2.], dtype=float32)
    """
    _check_ranks("copysign", x1, x2)
    x1, x2 = _float_args("copysign", x1, x2)
    return _wrap_output(fnp.where(signbit(x2), -fnp.abs(x1), fnp.abs(x1)))


def ldexp(x1, x2, /):
    """`x1 * 2 ** x2` for integer `x2`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.ldexp(fnp.array([1.0, 3.0]), fnp.array([2, -1]))
        Array([4. , 1.5], dtype=float32)
    """
    x2 = asarray_value(x2)
    if not np.issubdtype(dtype_of(x2), np.integer):
        raise TypeError(f"ldexp: x2 must be integers, got {dtype_of(x2)}")
    _check_ranks("ldexp", x1, x2)
    (x1,) = _float_args("ldexp", x1)
    d = dtype_of(x1)
    # two steps keep 2 ** x2 finite where x1 * 2 ** x2 is (e.g. subnormal x1)
    h = x2 // 2
    return _wrap_output(x1 * fnp.exp2(h.astype(d)) * fnp.exp2((x2 - h).astype(d)))


def frexp(x, /):
    """Mantissa and exponent: `x == m * 2 ** e` with `0.5 <= |m| < 1` (`m = e = 0` at 0).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.frexp(fnp.array([3.0, -0.3]))
        (Array([ 0.75, -0.6 ], dtype=float32), Array([ 2, -1], dtype=int32))
    """
    (x,) = _float_args("frexp", x)
    d = dtype_of(x)
    ax = fnp.abs(x)
    finite_nonzero = fnp.isfinite(x) & (x != 0)
    safe = fnp.where(finite_nonzero, ax, 1.0)
    e = fnp.floor(fnp.log2(safe)) + 1
    m = ldexp(x, -e.astype(np.int32))
    am = fnp.abs(m)  # log2 may round across a power of two: one correction step
    e = fnp.where(am >= 1, e + 1, fnp.where(am < 0.5, e - 1, e))
    m = fnp.where(am >= 1, m / 2, fnp.where(am < 0.5, m * 2, m))
    m = fnp.where(finite_nonzero, m, x)
    e = fnp.where(finite_nonzero, e, 0).astype(np.int32)
    return _wrap_output(m.astype(d)), _wrap_output(e)


def modf(x, /, out=None):
    """Fractional and integral parts of `x`, both with `x`'s sign.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.modf(fnp.array([-1.5, 2.25]))
        (Array([-0.5 ,  0.25], dtype=float32), Array([-1.,  2.], dtype=float32))
    """
    _no_out(out, "modf")
    (x,) = _float_args("modf", x)
    whole = fnp.trunc(x)
    return _wrap_output(x - whole), whole


def divmod(x1, x2, /):
    """`(floor_divide(x1, x2), remainder(x1, x2))`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.divmod(fnp.array([7, -7]), 2)
        (Array([ 3, -4], dtype=int32), Array([1, 1], dtype=int32))
    """
    _check_ranks("divmod", x1, x2)
    return fnp.floor_divide(x1, x2), fnp.remainder(x1, x2)


def _int_args(fname, x1, x2):
    x1, x2 = promote(x1, x2)
    if not np.issubdtype(dtype_of(x1), np.integer):
        raise TypeError(f"{fname}: arguments must be integers, got {dtype_of(x1)}")
    return x1, x2


def gcd(x1, x2):
    """The greatest common divisor of `|x1|` and `|x2|` (Euclid's algorithm, elementwise).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.gcd(fnp.array([12, -4, 0]), 8)
        Array([4, 4, 8], dtype=int32)
    """
    from nanofn.ops import while_loop
    a, b = _int_args("gcd", x1, x2)
    a, b = fnp.broadcast_arrays(fnp.abs(a), fnp.abs(b))

    def body(ab):
        a, b = ab
        nz = b != 0
        safe_b = fnp.where(nz, b, 1)
        return fnp.where(nz, b, a), fnp.where(nz, a % safe_b, 0)

    g, _ = while_loop(lambda ab: fnp.any(ab[1] != 0), body, (a, b))
    return _wrap_output(g)


def lcm(x1, x2):
    """The least common multiple of `|x1|` and `|x2|` (0 if either is 0).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.lcm(fnp.array([4, 0]), 6)
        Array([12,  0], dtype=int32)
    """
    _check_ranks("lcm", x1, x2)
    a, b = _int_args("lcm", x1, x2)
    g = gcd(a, b)
    return _wrap_output(fnp.where(g == 0, 0, fnp.abs(a) // fnp.where(g == 0, 1, g) * fnp.abs(b)))


def heaviside(x1, x2, /):
    """The Heaviside step: 0 where `x1 < 0`, `x2` where `x1 == 0`, 1 where `x1 > 0`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.heaviside(fnp.array([-1.0, 0.0, 2.0]), 0.5)
        Array([0. , 0.5, 1. ], dtype=float32)
    """
    x1, x2 = _float_args("heaviside", x1, x2)
    return _wrap_output(fnp.where(x1 < 0, 0, fnp.where(x1 > 0, 1, x2)).astype(dtype_of(x1)))


def spacing(x, /):
    """The distance from `x` to the next float away from zero.

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.spacing(fnp.float32(1.0)))
        1.1920928955078125e-07
    """
    (x,) = _float_args("spacing", x)
    inf = asarray_value(np.inf, dtype_of(x))
    finite = fnp.isfinite(x)
    x = fnp.where(finite, x, 0)  # spacing(inf) and spacing(nan) are nan
    return _wrap_output(fnp.where(finite, fnp.nextafter(x, fnp.where(signbit(x), -inf, inf)) - x,
                                  np.nan))


def isposinf(x, /, out=None):
    """True where `x` is +inf.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.isposinf(fnp.array([1.0, fnp.inf, -fnp.inf]))
        Array([False,  True, False], dtype=bool)
    """
    _no_out(out, "isposinf")
    x = asarray_value(x)
    return _wrap_output(fnp.isinf(x) & (fnp.real(x) > 0) if dtype_of(x).kind in "fc"
                        else fnp.zeros(_shape(x), bool))


def isneginf(x, /, out=None):
    """True where `x` is -inf.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.isneginf(fnp.array([1.0, fnp.inf, -fnp.inf]))
        Array([False, False,  True], dtype=bool)
    """
    _no_out(out, "isneginf")
    x = asarray_value(x)
    return _wrap_output(fnp.isinf(x) & (fnp.real(x) < 0) if dtype_of(x).kind in "fc"
                        else fnp.zeros(_shape(x), bool))


def bitwise_count(x, /):
    """The number of set bits in `|x|` (uint8), elementwise.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.bitwise_count(fnp.array([-1, 7]))
        Array([1, 3], dtype=uint8)
    """
    x = asarray_value(x)
    d = dtype_of(x)
    if d.kind == "b":
        return _wrap_output(x.astype(np.uint8))
    if d.kind not in "iu":
        raise TypeError(f"bitwise_count: x must be integers or booleans, got {d}")
    u = fnp.abs(x).astype(np.dtype(f"u{d.itemsize}")) if d.kind == "i" else x
    count = fnp.zeros(_shape(x), np.uint8)
    for i in range(8 * d.itemsize):
        count = count + ((u >> i) & 1).astype(np.uint8)
    return _wrap_output(count)


def sort_complex(a):
    """Sort `a` by real part, then imaginary part; the result is complex.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.sort_complex(fnp.array([2.0, 1.0]))
        Array([1.+0.j, 2.+0.j], dtype=complex64)
    """
    (a,) = promote_float(asarray_value(a))  # integers: the default float's complex type
    a = a.astype(complex_dtype(dtype_of(a)))
    if _ndim(a) == 0:
        return a
    order = red.lexsort((fnp.imag(a), fnp.real(a)), axis=-1)
    return _wrap_output(sf.take_along_axis(a, order, axis=-1))


# ------------------------------------------------------------------------ nan-aware


def _nan_arg(name, fill, pick):
    def fn(a, axis=None, out=None, keepdims=None):
        _no_out(out, name)
        a = asarray_value(a)
        if dtype_of(a).kind not in "fc":
            return pick(a, axis=axis, keepdims=builtins.bool(keepdims))
        nan = fnp.isnan(a)
        i = pick(fnp.where(nan, fill, a), axis=axis, keepdims=builtins.bool(keepdims))
        all_nan = fnp.all(nan, axis=axis, keepdims=builtins.bool(keepdims))
        return _wrap_output(fnp.where(all_nan, -1, i))
    fn.__name__ = fn.__qualname__ = name
    which = name[6:]
    fn.__doc__ = (f"Index of the {which}imum along `axis`, ignoring NaNs (-1 for an "
                  f"all-NaN slice).\n\n    Example:\n        >>> import nanofn.numpy as fnp\n"
                  f"        >>> int(fnp.{name}(fnp.array([1.0, fnp.nan, 3.0])))\n"
                  f"        {2 if which == 'max' else 0}\n")
    return fn


nanargmax = _nan_arg("nanargmax", -np.inf, fnp.argmax)
nanargmin = _nan_arg("nanargmin", np.inf, fnp.argmin)


def nanquantile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
                keepdims=False, *, weights=None):
    """The `q`-th quantiles of `a` along `axis`, ignoring NaNs; the methods and `weights`
    of `quantile`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.nanquantile(fnp.array([1.0, fnp.nan, 3.0]), 0.5))
        2.0
    """
    _no_out(out, "nanquantile")
    del overwrite_input  # unused: arrays are immutable
    q = asarray_value(q)
    if not isinstance(q, Tracer):
        qv = np.asarray(core.to_numpy(q))
        if not np.all((qv >= 0) & (qv <= 1)):
            raise ValueError("nanquantile: q must be in [0, 1] (nanpercentile: [0, 100])")
    return red._quantile("nanquantile", a, q, axis, method, keepdims, weights,
                         ignore_nan=True)


def nanpercentile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
                  keepdims=False, *, weights=None):
    """The `q`-th percentiles of `a` along `axis`, ignoring NaNs.

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.nanpercentile(fnp.array([1.0, fnp.nan, 3.0]), 50))
        2.0
    """
    (a,) = promote_float(asarray_value(a))
    q = asarray_value(q, dtype_of(a)) / 100
    return nanquantile(a, q, axis, out, overwrite_input, method, keepdims, weights=weights)


def nanmedian(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """The median of `a` along `axis`, ignoring NaNs.

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.nanmedian(fnp.array([1.0, fnp.nan, 3.0, 10.0])))
        3.0
    """
    return nanquantile(a, 0.5, axis, out, overwrite_input, keepdims=keepdims)


# ------------------------------------------------------------------------ products


def vecdot(x1, x2, /, *, axis=-1, precision=None, preferred_element_type=None):
    """`sum(conj(x1) * x2)` along `axis` (with broadcasting).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.vecdot(fnp.ones((2, 3)), fnp.arange(3.0))
        Array([3., 3.], dtype=float32)
    """
    del precision  # unused: one precision on CPU
    x1, x2 = promote(x1, x2)
    if preferred_element_type is not None:
        x1, x2 = x1.astype(preferred_element_type), x2.astype(preferred_element_type)
    n1, n2 = _shape(x1)[canonicalize_axis(axis, _ndim(x1))], \
        _shape(x2)[canonicalize_axis(axis, _ndim(x2))]
    if n1 != n2:
        raise ValueError(f"vecdot: the axes to contract have sizes {n1} and {n2} (shapes "
                         f"{_shape(x1)} and {_shape(x2)})")
    if dtype_of(x1).kind == "c":
        x1 = fnp.conj(x1)
    prod = x1 * x2
    return fnp.sum(prod, axis=axis, dtype=dtype_of(prod))  # JAX: integers do not widen


def matvec(x1, x2, /):
    """Matrix-vector product over the last axes, broadcasting the rest.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.matvec(fnp.ones((2, 3)), fnp.arange(3.0))
        Array([3., 3.], dtype=float32)
    """
    x1, x2 = asarray_value(x1), asarray_value(x2)
    if _ndim(x1) < 2 or _ndim(x2) < 1:
        raise ValueError(f"matvec: x1 must be at least 2-d and x2 at least 1-d, got shapes "
                         f"{_shape(x1)} and {_shape(x2)}")
    return fnp.matmul(x1, fnp.expand_dims(x2, -1))[..., 0]


def vecmat(x1, x2, /):
    """Vector-matrix product `conj(x1) @ x2` over the last axes, broadcasting the rest.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.vecmat(fnp.arange(3.0), fnp.ones((3, 2)))
        Array([3., 3.], dtype=float32)
    """
    x1, x2 = asarray_value(x1), asarray_value(x2)
    if _ndim(x1) < 1 or _ndim(x2) < 2:
        raise ValueError(f"vecmat: x1 must be at least 1-d and x2 at least 2-d, got shapes "
                         f"{_shape(x1)} and {_shape(x2)}")
    if dtype_of(x1).kind == "c":
        x1 = fnp.conj(x1)
    return fnp.matmul(fnp.expand_dims(x1, -2), x2)[..., 0, :]


# ------------------------------------------------------------------------ index helpers


def indices(dimensions, dtype=None, sparse=False):
    """An array of grid indices for an array of shape `dimensions`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.indices((2, 2))[0]
        Array([[0, 0],
               [1, 1]], dtype=int32)
    """
    dims = tuple(operator.index(d) for d in dimensions)
    dtype = default_int() if dtype is None else np.dtype(dtype)
    out = []
    for i, d in enumerate(dims):
        s = [1] * len(dims)
        s[i] = d
        r = fnp.reshape(fnp.arange(d, dtype=dtype), s)
        out.append(r if sparse else fnp.broadcast_to(r, dims))
    if sparse:
        return tuple(out)
    return fnp.stack(out) if out else fnp.zeros((0,), dtype)


class _Grid:
    """`mgrid[...]` / `ogrid[...]`: grids from slices (a complex step means a count)."""

    def __init__(self, sparse, name):
        self.sparse, self.name = sparse, name

    def __getitem__(self, key):
        single = not isinstance(key, tuple)
        keys = (key,) if single else key
        axes = []
        for k in keys:
            if not isinstance(k, builtins.slice):
                raise TypeError(f"{self.name}: expected slices like 0:5 or 0:1:5j, got {k!r}")
            start = 0 if k.start is None else k.start
            step = 1 if k.step is None else k.step
            if isinstance(step, complex):
                axes.append(fnp.linspace(start, k.stop, int(abs(step))))
            else:
                vals = [start, k.stop, step]
                is_float = builtins.any(isinstance(v, float) for v in vals)
                axes.append(fnp.arange(start, k.stop, step,
                                       dtype=np.float32 if is_float else None))
        if single:
            return axes[0]
        axes = promote(*axes) if len(axes) > 1 else axes
        grids = sf.meshgrid(*axes, indexing="ij", sparse=self.sparse)
        return grids if self.sparse else fnp.stack(grids)


mgrid = _Grid(False, "mgrid")
ogrid = _Grid(True, "ogrid")
index_exp = np.index_exp
s_ = np.s_


def tri(N, M=None, k=0, dtype=None):
    """An `N x M` array with ones at and below diagonal `k`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.tri(2, 3)
        Array([[1., 0., 0.],
               [1., 1., 0.]], dtype=float32)
    """
    N = operator.index(N)
    M = N if M is None else operator.index(M)
    k = operator.index(k)
    mask = fnp.arange(M)[None, :] <= fnp.arange(N)[:, None] + k
    return mask.astype(np.float32 if dtype is None else dtype)


def _tri_indices(n, k, m, lower):
    n = operator.index(n)
    m = n if m is None else operator.index(m)
    k = operator.index(k)
    rows, cols = np.nonzero(np.tri(n, m, k, dtype=builtins.bool) if lower
                            else ~np.tri(n, m, k - 1, dtype=builtins.bool))
    return core.wrap(rows.astype(default_int())), core.wrap(cols.astype(default_int()))


def tril_indices(n, k=0, m=None):
    """Row and column indices of the lower triangle of an `n x m` array.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.tril_indices(2)
        (Array([0, 1, 1], dtype=int32), Array([0, 0, 1], dtype=int32))
    """
    return _tri_indices(n, k, m, True)


def triu_indices(n, k=0, m=None):
    """Row and column indices of the upper triangle of an `n x m` array.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.triu_indices(2)
        (Array([0, 0, 1], dtype=int32), Array([0, 1, 1], dtype=int32))
    """
    return _tri_indices(n, k, m, False)


def _from(arr, fname):
    s = shape(arr)
    if len(s) != 2:
        raise ValueError(f"{fname}: arr must be 2-d, got shape {s}")
    return s


def tril_indices_from(arr, k=0):
    """`tril_indices` for the shape of the 2-d `arr`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.tril_indices_from(fnp.zeros((2, 2)))[1]
        Array([0, 0, 1], dtype=int32)
    """
    n, m = _from(arr, "tril_indices_from")
    return tril_indices(n, k, m)


def triu_indices_from(arr, k=0):
    """`triu_indices` for the shape of the 2-d `arr`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.triu_indices_from(fnp.zeros((2, 2)))[1]
        Array([0, 1, 1], dtype=int32)
    """
    n, m = _from(arr, "triu_indices_from")
    return triu_indices(n, k, m)


def diag_indices(n, ndim=2):
    """Indices of the main diagonal of an `n x n x ...` array (`ndim` copies of `arange(n)`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.diag_indices(2)
        (Array([0, 1], dtype=int32), Array([0, 1], dtype=int32))
    """
    n, ndim = operator.index(n), operator.index(ndim)
    if n < 0 or ndim < 0:
        raise ValueError(f"diag_indices: n and ndim must be non-negative, got {n}, {ndim}")
    return (fnp.arange(n, dtype=default_int()),) * ndim


def diag_indices_from(arr):
    """`diag_indices` for `arr`, whose axes must all have one length.

    Example:
        >>> import nanofn.numpy as fnp
        >>> len(fnp.diag_indices_from(fnp.zeros((3, 3))))
        2
    """
    s = shape(arr)
    if len(s) < 2 or len(set(s)) != 1:
        raise ValueError(f"diag_indices_from: arr must be at least 2-d with equal axes, got "
                         f"shape {s}")
    return diag_indices(s[0], len(s))


def mask_indices(n, mask_func, k=0, *, size=None):
    """Indices where `mask_func(ones((n, n)), k)` is non-zero (e.g. `mask_func=triu`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.mask_indices(2, fnp.triu)
        (Array([0, 0, 1], dtype=int32), Array([0, 1, 1], dtype=int32))
    """
    m = mask_func(fnp.ones((n, n), np.int32), k)
    return fnp.nonzero(m, size=size)


def ravel_multi_index(multi_index, dims, mode="raise", order="C", *, dtype=None):
    """Flat indices from a tuple of index arrays for an array of shape `dims`.

    `mode` is "raise" (eager check), "wrap" or "clip", applied per axis.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.ravel_multi_index((fnp.array([1, 0]), fnp.array([2, 1])), (2, 3))
        Array([5, 1], dtype=int32)
    """
    dims = tuple(operator.index(d) for d in dims)
    if len(multi_index) != len(dims):
        raise ValueError(f"ravel_multi_index: {len(multi_index)} index arrays for "
                         f"{len(dims)} dimensions")
    if order not in ("C", "F"):
        raise ValueError(f"ravel_multi_index: order must be 'C' or 'F', got {order!r}")
    idx = [asarray_value(i) for i in multi_index]
    for i in idx:
        if not np.issubdtype(dtype_of(i), np.integer):
            raise TypeError(f"ravel_multi_index: indices must be integers, got {dtype_of(i)}")
    if mode == "raise":
        for i, d in zip(idx, dims):
            if not isinstance(i, Tracer):
                v = np.asarray(core.to_numpy(i))
                if v.size and (v.min() < 0 or v.max() >= d):
                    raise ValueError(f"ravel_multi_index: an index is out of bounds for "
                                     f"dimension of size {d}")
    elif mode == "wrap":
        idx = [i % d for i, d in zip(idx, dims)]
    elif mode == "clip":
        idx = [fnp.clip(i, 0, d - 1) for i, d in zip(idx, dims)]
    else:
        raise ValueError(f"ravel_multi_index: mode must be 'raise', 'wrap' or 'clip', got "
                         f"{mode!r}")
    order_axes = range(len(dims)) if order == "C" else reversed(range(len(dims)))
    out = 0
    for ax in order_axes:
        out = out * dims[ax] + idx[ax]
    out = fnp.asarray(out)
    return _wrap_output(out.astype(default_int() if dtype is None else dtype))


def diagflat(v, k=0):
    """A 2-d array with the flattened `v` on diagonal `k`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.diagflat(fnp.array([[1, 2]]))
        Array([[1, 0],
               [0, 2]], dtype=int32)
    """
    return sf.diag(fnp.ravel(asarray_value(v)), k)


# ------------------------------------------------------------------------ functional updates


def _require_not_inplace(inplace, fname):
    if inplace:
        raise ValueError(f"{fname}: nanofn arrays are immutable, so in-place updates are "
                         f"impossible; call {fname}(..., inplace=False) and use the "
                         "returned array")


def put(a, ind, v, mode=None, *, inplace=True):
    """A copy of `a` with the flattened positions `ind` set to `v` (JAX: `inplace=False`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.put(fnp.zeros(4), fnp.array([1, 3]), 7.0, inplace=False)
        Array([0., 7., 0., 7.], dtype=float32)
    """
    _require_not_inplace(inplace, "put")
    a = asarray_value(a)
    flat = fnp.ravel(a)
    ind = fnp.ravel(asarray_value(ind))
    v = fnp.ravel(asarray_value(v))
    n = _shape(ind)[0]
    if _shape(v)[0] != n and n:
        v = sf.tile(v, -(-n // builtins.max(_shape(v)[0], 1)))[:n] if _shape(v)[0] else v
    if mode == "wrap":
        ind = ind % builtins.max(_shape(flat)[0], 1)
    elif mode == "clip":
        ind = fnp.clip(ind, 0, _shape(flat)[0] - 1)
    elif mode not in (None, "fill", "drop", "promise_in_bounds"):
        raise ValueError(f"put: mode must be None, 'wrap' or 'clip', got {mode!r}")
    # out-of-range indices (mode None): dropped, as JAX's scatter does
    out = flat.at[ind].set(v.astype(dtype_of(a)), mode="drop")
    return fnp.reshape(out, _shape(a))


def put_along_axis(arr, indices, values, axis, inplace=True, *, mode=None):
    """A copy of `arr` with `values` placed at `indices` along `axis` (inverse of
    `take_along_axis`; JAX needs `inplace=False`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> a = fnp.zeros((2, 3))
        >>> fnp.put_along_axis(a, fnp.array([[0], [2]]), 1.0, axis=1, inplace=False)
        Array([[1., 0., 0.],
               [0., 0., 1.]], dtype=float32)
    """
    _require_not_inplace(inplace, "put_along_axis")
    arr = fnp.asarray(arr)
    idx = asarray_value(indices)
    if axis is None:
        return fnp.reshape(put_along_axis(fnp.ravel(arr), fnp.ravel(idx), fnp.ravel(
            asarray_value(values)), 0, inplace=False, mode=mode), _shape(arr))
    axis = canonicalize_axis(axis, _ndim(arr))
    if _ndim(idx) != _ndim(arr):
        raise ValueError(f"put_along_axis: indices must have arr's {_ndim(arr)} dimensions, "
                         f"got shape {_shape(idx)}")
    bshape = tuple(np.broadcast_shapes(tuple(d for i, d in enumerate(_shape(arr)) if i != axis),
                                       tuple(d for i, d in enumerate(_shape(idx)) if i != axis)))
    full_shape = bshape[:axis] + (_shape(idx)[axis],) + bshape[axis:]
    idx = fnp.broadcast_to(idx, full_shape)
    values = fnp.broadcast_to(asarray_value(values, dtype_of(arr)), full_shape)
    grids = []
    for i in range(_ndim(arr)):
        if i == axis:
            grids.append(idx)
        else:
            s = [1] * _ndim(arr)
            s[i] = full_shape[i]
            grids.append(fnp.broadcast_to(fnp.reshape(fnp.arange(full_shape[i]), s), full_shape))
    return arr.at[tuple(grids)].set(values, **({} if mode is None else {"mode": mode}))


def fill_diagonal(a, val, wrap=False, *, inplace=True):
    """A copy of `a` (at least 2-d, equal axes unless 2-d) with its main diagonal set to
    `val` (JAX needs `inplace=False`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fill_diagonal(fnp.zeros((2, 3)), 5.0, inplace=False)
        Array([[5., 0., 0.],
               [0., 5., 0.]], dtype=float32)
    """
    _require_not_inplace(inplace, "fill_diagonal")
    a = asarray_value(a)
    s = _shape(a)
    if len(s) < 2:
        raise ValueError(f"fill_diagonal: a must be at least 2-d, got shape {s}")
    if len(s) > 2 and len(set(s)) != 1:
        raise ValueError(f"fill_diagonal: all axes must have one length, got shape {s}")
    flat = fnp.ravel(a)
    total = int(np.prod(s, dtype=np.int64))
    # numpy's rule: every `step`-th element of the flattened array, where `step` moves one
    # along every axis; a tall 2-d matrix restarts below its square part only with `wrap`
    step = s[1] + 1 if len(s) == 2 else 1 + int(np.cumprod(s[:-1]).sum())
    end = total if wrap or len(s) > 2 else builtins.min(total, s[1] * s[1])
    pos = np.arange(0, end, step)
    n = len(pos)
    v = fnp.ravel(asarray_value(val)).astype(dtype_of(a))
    if _shape(v)[0] != n and n:
        v = sf.tile(v, -(-n // builtins.max(_shape(v)[0], 1)))[:n]
    return fnp.reshape(flat.at[fnp.asarray(pos.astype(np.int32))].set(v), s)


def place(arr, mask, vals, *, inplace=True):
    """A copy of `arr` with the elements where `mask` is true set to `vals` in order,
    repeating `vals` if needed (eager; JAX needs `inplace=False`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.place(fnp.zeros(4), fnp.array([True, False, True, True]),
        ...           fnp.array([1.0, 2.0]), inplace=False)
        Array([1., 0., 2., 1.], dtype=float32)
    """
    _require_not_inplace(inplace, "place")
    from nanofn.numpy._setops import _compact
    arr = asarray_value(arr)
    m = fnp.ravel(fnp.broadcast_to(asarray_value(mask, np.bool_), _shape(arr)))
    flat = fnp.ravel(arr)
    idx, valid = _compact(m, None, "place")
    k = _shape(idx)[0]
    vals = fnp.ravel(asarray_value(vals)).astype(dtype_of(arr))
    if k == 0:
        return arr
    if _shape(vals)[0] == 0:
        raise ValueError("place: vals is empty but mask selects elements")
    vals = sf.tile(vals, -(-k // _shape(vals)[0]))[:k]
    return fnp.reshape(flat.at[idx].set(vals), _shape(arr))


def _static_positions(obj, n, fname):
    if isinstance(obj, builtins.slice):
        return np.arange(n)[obj]
    try:
        v = core._lowest(obj) if isinstance(obj, Tracer) else core.to_numpy(obj)
    except core.ConcretizationError:
        raise core.ConcretizationError(f"{fname}: obj must be concrete (it sets the result's "
                                       "shape)") from None
    v = np.asarray(v)
    if v.dtype == np.bool_:
        return np.flatnonzero(v)
    if not np.issubdtype(v.dtype, np.integer):
        raise TypeError(f"{fname}: obj must be integers, a slice or a boolean mask, got "
                        f"{v.dtype}")
    return v


def delete(arr, obj, axis=None, *, assume_unique_indices=False):
    """`arr` without the entries `obj` (indices, a slice or a mask) along `axis`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.delete(fnp.arange(5), fnp.array([0, 2]))
        Array([1, 3, 4], dtype=int32)
    """
    del assume_unique_indices  # unused
    arr = asarray_value(arr)
    if axis is None:
        arr, axis = fnp.ravel(arr), 0
    axis = canonicalize_axis(axis, _ndim(arr))
    n = _shape(arr)[axis]
    pos = _static_positions(obj, n, "delete")
    if pos.size and (pos.min() < -n or pos.max() >= n):
        raise ValueError(f"delete: index out of bounds for axis {axis} of size {n}")
    keep = np.ones(n, builtins.bool)
    keep[pos % builtins.max(n, 1)] = False
    return sf.take(arr, fnp.asarray(np.flatnonzero(keep).astype(np.int32)), axis=axis)


def insert(arr, obj, values, axis=None):
    """`arr` with `values` inserted before the indices `obj` along `axis`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.insert(fnp.array([1, 2, 3]), 1, 9)
        Array([1, 9, 2, 3], dtype=int32)
    """
    arr = asarray_value(arr)
    if axis is None:
        arr, axis = fnp.ravel(arr), 0
    axis = canonicalize_axis(axis, _ndim(arr))
    n = _shape(arr)[axis]
    scalar_obj = np.ndim(obj) == 0 and not isinstance(obj, builtins.slice)
    pos = np.atleast_1d(_static_positions(obj, n, "insert"))  # a slice: numpy's range(n)
    if pos.size and (pos.min() < -n or pos.max() > n):
        raise ValueError(f"insert: index out of bounds for axis {axis} of size {n}")
    pos = np.where(pos < 0, pos + n, pos)
    values = asarray_value(values, dtype_of(arr))
    vshape = list(_shape(arr))
    if scalar_obj:  # a block: values' first axis becomes `axis` (numpy's rule)
        values = fnp.reshape(values, (1,) * (_ndim(arr) - _ndim(values)) + tuple(_shape(values)))
        values = fnp.moveaxis(values, 0, axis)
        vshape[axis] = _shape(values)[axis]
        pos = np.full(vshape[axis], pos[0])
    else:
        vshape[axis] = pos.size
    values = fnp.broadcast_to(values, tuple(vshape))
    order = np.argsort(np.concatenate([np.arange(n), pos - 0.5]), kind="stable")
    joined = sf.concatenate([arr, values], axis=axis)
    return sf.take(joined, fnp.asarray(order.astype(np.int32)), axis=axis)


def choose(a, choices, out=None, mode="raise"):
    """`choices[a]` elementwise (all broadcast together); `mode` handles out-of-range `a`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.choose(fnp.array([0, 1, 0]), [fnp.zeros(3), fnp.ones(3)])
        Array([0., 1., 0.], dtype=float32)
    """
    _no_out(out, "choose")
    a = asarray_value(a)
    if not np.issubdtype(dtype_of(a), np.integer):
        raise TypeError(f"choose: a must be integers, got {dtype_of(a)}")
    choices = promote(*[asarray_value(c) for c in choices])
    k = len(choices)
    if mode == "raise":
        if not isinstance(a, Tracer):
            v = np.asarray(core.to_numpy(a))
            if v.size and (v.min() < 0 or v.max() >= k):
                raise ValueError(f"choose: an index is out of range for {k} choices")
    elif mode == "wrap":
        a = a % k
    elif mode == "clip":
        a = fnp.clip(a, 0, k - 1)
    else:
        raise ValueError(f"choose: mode must be 'raise', 'wrap' or 'clip', got {mode!r}")
    out = choices[-1]
    for i in range(k - 2, -1, -1):
        out = fnp.where(a == i, choices[i], out)
    return _wrap_output(fnp.broadcast_to(out, np.broadcast_shapes(_shape(out), _shape(a))))


def resize(a, new_shape):
    """An array of `new_shape` filled with `a`'s elements, repeated as needed.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.resize(fnp.array([1, 2, 3]), (2, 2))
        Array([[1, 2],
               [3, 1]], dtype=int32)
    """
    a = fnp.ravel(asarray_value(a))
    new_shape = _canon_shape(new_shape, "resize: new_shape")
    total = math.prod(new_shape)
    if total > np.iinfo(np.intp).max:
        raise ValueError(f"resize: new_shape {new_shape} has more elements than an array can "
                         f"hold")
    n = _shape(a)[0]
    if n == 0:
        return fnp.zeros(new_shape, dtype_of(a))
    reps = -(-total // n)
    return fnp.reshape(sf.tile(a, reps)[:total], new_shape)


def trim_zeros(filt, trim="fb", axis=None):
    """`filt` without its leading (`"f"`) and/or trailing (`"b"`) zeros (eager).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.trim_zeros(fnp.array([0, 1, 2, 0]))
        Array([1, 2], dtype=int32)
    """
    filt = asarray_value(filt)
    if axis is not None and _ndim(filt) > 1:
        raise NotImplementedError("trim_zeros: axis= for arrays of more than one dimension "
                                  "is not supported")
    if _ndim(filt) != 1:
        raise ValueError(f"trim_zeros: filt must be 1-d, got shape {_shape(filt)}")
    try:
        v = np.asarray(core._lowest(filt) if isinstance(filt, Tracer) else core.to_numpy(filt))
    except core.ConcretizationError:
        raise core.ConcretizationError("trim_zeros: the result's length depends on the "
                                       "values; it cannot be traced") from None
    nz = np.flatnonzero(v)
    if nz.size == 0:
        return filt[:0]
    start = int(nz[0]) if "f" in trim.lower() else 0
    stop = int(nz[-1]) + 1 if "b" in trim.lower() else v.size
    return filt[start:stop]


# ------------------------------------------------------------------------ construction


def block(arrays):
    """Assemble an array from nested lists of blocks (numpy.block).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.block([[fnp.ones((1, 2)), fnp.zeros((1, 1))]])
        Array([[1., 1., 0.]], dtype=float32)
    """
    def depth(x):
        return 1 + depth(x[0]) if isinstance(x, list) and x else (1 if isinstance(x, list)
                                                                   else 0)

    d = depth(arrays)

    def build(x, level):
        if not isinstance(x, list):
            return asarray_value(x)
        if not x:
            raise ValueError("block: lists must not be empty")
        parts = [build(p, level + 1) for p in x]
        nd = builtins.max(d, builtins.max(_ndim(p) for p in parts))
        parts = [fnp.reshape(p, (1,) * (nd - _ndim(p)) + tuple(_shape(p))) for p in parts]
        return sf.concatenate(parts, axis=-(d - level))

    if not isinstance(arrays, list):
        return asarray_value(arrays)
    return _wrap_output(build(arrays, 0))


def logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    """`base ** linspace(start, stop, num)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.logspace(0.0, 2.0, 3)
        Array([  1.,  10., 100.], dtype=float32)
    """
    y = fnp.linspace(start, stop, num, endpoint=endpoint, axis=axis)
    out = fnp.power(asarray_value(base, dtype_of(y)), y)
    return out if dtype is None else out.astype(dtype)


def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    """Numbers spaced evenly on a log scale from `start` to `stop` (same signs; with
    different signs only the ends are numbers and the rest NaN, as in numpy).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.geomspace(1.0, 100.0, 3)
        Array([  1.,  10., 100.], dtype=float32)
    """
    start, stop = promote_float(start, stop)
    y = fnp.linspace(fnp.log10(fnp.abs(start)), fnp.log10(fnp.abs(stop)), num,
                     endpoint=endpoint, axis=axis)
    sign = fnp.where(fnp.sign(start) == fnp.sign(stop), fnp.sign(start), np.nan)  # as numpy
    out = fnp.moveaxis(sign * fnp.power(fnp.asarray(10.0).astype(dtype_of(y)), y), axis, 0)
    if num:  # pin the ends exactly, as numpy does
        out = out.at[0].set(start.astype(dtype_of(out)))
        if num > 1 and endpoint:
            out = out.at[-1].set(stop.astype(dtype_of(out)))
    out = fnp.moveaxis(out, 0, axis)
    return out if dtype is None else out.astype(dtype)


def fromfunction(function, shape, *, dtype=float, **kwargs):
    """`function(*indices(shape))`: call `function` once on index grids of `dtype`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fromfunction(lambda i, j: i + j, (2, 2), dtype=int)
        Array([[0, 1],
               [1, 2]], dtype=int32)
    """
    grids = indices(shape, dtype=_default(dtype), sparse=False)
    return function(*[grids[i] for i in range(len(shape))], **kwargs)


def _default(dtype):
    from nanofn.numpy._dtypes import dtype_arg
    return dtype_arg(dtype)


def frombuffer(buffer, dtype=float, count=-1, offset=0):
    """An array from the bytes of `buffer` (a copy; `float` means float32).

    Example:
        >>> import numpy as np
        >>> import nanofn.numpy as fnp
        >>> fnp.frombuffer(np.array([1, 2], np.int32).tobytes(), dtype=np.int32)
        Array([1, 2], dtype=int32)
    """
    return fnp.array(np.frombuffer(buffer, dtype=_default(dtype), count=count, offset=offset))


def fromiter(iterable, dtype, count=-1, *, like=None):
    """A 1-d array from an iterable.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fromiter(range(3), dtype=int)
        Array([0, 1, 2], dtype=int32)
    """
    del like  # unused
    return fnp.array(np.fromiter(iterable, dtype=_default(dtype), count=count))


def fromstring(string, dtype=float, count=-1, *, sep):
    """A 1-d array from numbers written in `string`, separated by `sep`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fromstring("1 2 3", dtype=int, sep=" ")
        Array([1, 2, 3], dtype=int32)
    """
    return fnp.array(np.fromstring(string, dtype=_default(dtype), count=count, sep=sep))


def fromfile(file, dtype=float, count=-1, sep="", offset=0):
    """An array from a file (numpy.fromfile, then copied into a nanofn array).

    `file` is a path or an open file. A path that does not exist raises numpy's OSError
    (FileNotFoundError).

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> import nanofn.numpy as fnp
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = os.path.join(d, "x.bin")
        ...     np.arange(3, dtype=np.int32).tofile(path)
        ...     fnp.fromfile(path, dtype=np.int32)
        Array([0, 1, 2], dtype=int32)
    """
    if not isinstance(file, (str, bytes, os.PathLike)) and not hasattr(file, "fileno"):
        raise TypeError(f"fromfile: file must be a path or an open file, got "
                        f"{core.describe_value(file)}")
    return fnp.array(np.fromfile(file, dtype=dtype, count=count, sep=sep, offset=offset))


def from_dlpack(x, /, *, device=None, copy=None):
    """An array from an object that supports DLPack (a copy).

    Example:
        >>> import numpy as np
        >>> import nanofn.numpy as fnp
        >>> fnp.from_dlpack(np.arange(3))
        Array([0, 1, 2], dtype=int64)
    """
    del device, copy  # unused: one CPU device, always a copy
    try:
        value = np.from_dlpack(x)
    except (AttributeError, BufferError) as err:
        raise TypeError(f"from_dlpack: cannot read a DLPack array from "
                        f"{type(x).__name__}: {err}") from None
    return fnp.array(value, dtype=None)


def load(file, *args, **kwargs):
    """numpy.load, with arrays returned as nanofn arrays.

    A path that does not exist raises numpy's OSError (FileNotFoundError).

    Example:
        >>> import io, numpy as np
        >>> import nanofn.numpy as fnp
        >>> buf = io.BytesIO(); fnp.save(buf, fnp.arange(3)); _ = buf.seek(0)
        >>> fnp.load(buf)
        Array([0, 1, 2], dtype=int32)
    """
    out = np.load(file, *args, **kwargs)
    return fnp.array(out) if isinstance(out, np.ndarray) and out.dtype != object else out


def save(file, arr, allow_pickle=True):
    """numpy.save of a nanofn array.

    Example:
        >>> import io
        >>> import nanofn.numpy as fnp
        >>> fnp.save(io.BytesIO(), fnp.ones(2))
    """
    np.save(file, np.asarray(arr), allow_pickle=allow_pickle)


def savez(file, *args, **kwds):
    """numpy.savez of nanofn arrays.

    Example:
        >>> import io
        >>> import nanofn.numpy as fnp
        >>> fnp.savez(io.BytesIO(), a=fnp.ones(2))
    """
    np.savez(file, *[np.asarray(a) for a in args], **{k: np.asarray(v) for k, v in kwds.items()})


def array_repr(arr, max_line_width=None, precision=None, suppress_small=None):
    """numpy's `repr` of `arr`'s values.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.array_repr(fnp.array([1, 2]))
        'array([1, 2], dtype=int32)'
    """
    return np.array_repr(np.asarray(arr), max_line_width, precision, suppress_small)


def array_str(a, max_line_width=None, precision=None, suppress_small=None):
    """numpy's `str` of `a`'s values.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.array_str(fnp.array([1, 2]))
        '[1 2]'
    """
    return np.array_str(np.asarray(a), max_line_width, precision, suppress_small)


printoptions = np.printoptions
get_printoptions = np.get_printoptions
set_printoptions = np.set_printoptions


def einsum_path(subscripts, /, *operands, optimize="auto"):
    """The contraction order numpy's `einsum_path` would choose (and its report).

    Only the operands' shapes are read. nanofn's `einsum` chooses its own greedy order.

    Example:
        >>> import nanofn.numpy as fnp
        >>> path, report = fnp.einsum_path("ij,jk->ik", fnp.ones((2, 3)), fnp.ones((3, 4)))
        >>> path
        ['einsum_path', (0, 1)]
    """
    opt = "greedy" if optimize == "auto" or optimize is True else optimize
    if not isinstance(subscripts, str):  # the interleaved form: operand, sublist, ...
        subscripts, operands = red._interleaved_to_subscripts((subscripts,) + operands)
    if not operands:
        raise ValueError("einsum_path: needs at least one operand")
    dummies = []
    for o in operands:
        o = asarray_value(o)
        dummies.append(np.broadcast_to(np.zeros((), dtype_of(o)), _shape(o)))
    return np.einsum_path(subscripts, *dummies, optimize=opt)


# ------------------------------------------------------------------------ functions of functions

_DIMS = r"\w+"
_CORE = rf"\((?:{_DIMS}(?:,{_DIMS})*)?\)"
_ARGS = rf"{_CORE}(?:,{_CORE})*"
_SIGNATURE = re.compile(rf"^{_ARGS}->{_ARGS}$")


def _parse_signature(signature):
    sig = signature.replace(" ", "")
    if not _SIGNATURE.match(sig):
        raise ValueError(f"vectorize: not a valid gufunc signature: {signature!r}")
    ins, outs = sig.split("->")
    parse = lambda s: [tuple(re.findall(_DIMS, arg)) for arg in re.findall(_CORE, s)]
    return parse(ins), parse(outs)


class vectorize:
    """Turn a function of scalars (or of core shapes given by `signature`) into one that
    maps over leading (broadcast) axes, with `vmap`.

    Args:
        pyfunc: the function.
        excluded: positions or names of arguments passed through unmapped.
        signature: a gufunc signature such as `"(n),(n)->()"`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> f = fnp.vectorize(lambda a, b: a + 2 * b)
        >>> f(fnp.arange(3.0), 1.0)
        Array([2., 3., 4.], dtype=float32)
        >>> dot = fnp.vectorize(fnp.dot, signature="(n),(n)->()")
        >>> dot(fnp.ones((2, 3)), fnp.arange(3.0))
        Array([3., 3.], dtype=float32)
    """

    def __init__(self, pyfunc, *, excluded=frozenset(), signature=None):
        self.pyfunc = pyfunc
        self.excluded = frozenset(excluded)
        self.signature = signature
        functools.update_wrapper(self, pyfunc, updated=())

    def __call__(self, *args, **kwargs):
        from nanofn import vmap
        excluded_kw = {k: v for k, v in kwargs.items() if k in self.excluded}
        mapped_kw = {k: v for k, v in kwargs.items() if k not in self.excluded}
        names = list(mapped_kw)
        pos = [i for i in range(len(args)) if i not in self.excluded]
        arrays = [asarray_value(args[i]) for i in pos] + [asarray_value(mapped_kw[k])
                                                          for k in names]

        def call(*xs):
            full = list(args)
            for i, x in zip(pos, xs):
                full[i] = x
            kw = dict(excluded_kw, **dict(zip(names, xs[len(pos):])))
            return self.pyfunc(*full, **kw)

        if self.signature is None:
            cores = [()] * len(arrays)
        else:
            in_cores, _ = _parse_signature(self.signature)
            if len(in_cores) != len(arrays):
                raise TypeError(f"vectorize: the signature {self.signature!r} has "
                                f"{len(in_cores)} inputs but {len(arrays)} were given")
            cores = in_cores
        loop_shapes = []
        for x, c in zip(arrays, cores):
            if _ndim(x) < len(c):
                raise ValueError(f"vectorize: an input of shape {_shape(x)} has fewer "
                                 f"dimensions than its core signature {c}")
            loop_shapes.append(tuple(_shape(x))[:_ndim(x) - len(c)])
        loop = tuple(np.broadcast_shapes(*loop_shapes)) if loop_shapes else ()
        arrays = [fnp.broadcast_to(x, loop + tuple(_shape(x))[_ndim(x) - len(c):])
                  for x, c in zip(arrays, cores)]
        f = call
        for _ in loop:
            f = vmap(f)
        return f(*arrays)


def piecewise(x, condlist, funclist, *args, **kw):
    """`funclist[i](x)` where `condlist[i]` holds (the first true one wins, as in JAX), else
    the extra last function (or 0). Entries of `funclist` may be constants.

    Example:
        >>> import nanofn.numpy as fnp
        >>> x = fnp.array([-1.0, 2.0])
        >>> fnp.piecewise(x, [x < 0, x >= 0], [lambda x: -x, lambda x: x ** 2])
        Array([1., 4.], dtype=float32)
    """
    x = asarray_value(x)
    if isinstance(condlist, (list, tuple)):
        conds = [asarray_value(c, np.bool_) for c in condlist]
    else:  # one condition (of x's shape, or a scalar), or conditions stacked along axis 0
        c = asarray_value(condlist, np.bool_)
        conds = [c] if _ndim(c) in (0, _ndim(x)) else [c[i] for i in range(_shape(c)[0])]
    if not isinstance(funclist, (list, tuple)):
        raise TypeError(f"piecewise: funclist must be a list of functions or constants, got "
                        f"{core.describe_value(funclist)}")
    n = len(conds)
    if len(funclist) not in (n, n + 1):
        raise ValueError(f"piecewise: funclist has {len(funclist)} entries; expected "
                         f"{n} or {n + 1} for {n} conditions")

    def value(f):
        v = f(x, *args, **kw) if callable(f) else f
        return fnp.broadcast_to(asarray_value(v, dtype_of(x)), _shape(x))

    out = value(funclist[n]) if len(funclist) == n + 1 else fnp.zeros(_shape(x), dtype_of(x))
    for c, f in zip(reversed(conds), reversed(funclist[:n])):
        out = fnp.where(fnp.broadcast_to(c, _shape(x)), value(f), out)
    return _wrap_output(out)


def apply_along_axis(func1d, axis, arr, *args, **kwargs):
    """Apply `func1d` to every 1-d slice of `arr` along `axis` (with `vmap`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.apply_along_axis(fnp.sum, 1, fnp.ones((2, 3)))
        Array([3., 3.], dtype=float32)
    """
    from nanofn import vmap
    arr = asarray_value(arr)
    nd = _ndim(arr)
    axis = canonicalize_axis(axis, nd)
    f = lambda v: func1d(v, *args, **kwargs)
    for i in range(axis + 1, nd):  # map over the axes after `axis` (they end up last)
        f = vmap(f, in_axes=-1, out_axes=-1)
    for i in range(axis):
        f = vmap(f, in_axes=0, out_axes=0)
    return f(arr)


def apply_over_axes(func, a, axes):
    """Apply `func(a, axis)` for each axis in turn, keeping the number of dimensions.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.apply_over_axes(fnp.sum, fnp.ones((2, 3)), [0, 1])
        Array([[6.]], dtype=float32)
    """
    a = asarray_value(a)
    for axis in axes:
        b = func(a, axis)
        if _ndim(b) == _ndim(a) - 1:
            b = fnp.expand_dims(b, axis)
        elif _ndim(b) != _ndim(a):
            raise ValueError("apply_over_axes: func must keep the number of dimensions or "
                             "remove one")
        a = b
    return a


def unwrap(p, discont=None, axis=-1, period=2 * np.pi):
    """Unwrap phase angles: remove jumps larger than `discont` along `axis` by adding
    multiples of `period`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.round(fnp.unwrap(fnp.array([0.0, 3.0, -3.0])), 3)
        Array([0.   , 3.   , 3.283], dtype=float32)
    """
    from nanofn.numpy._scientific import diff
    # integers stay integers when the period is one too (numpy, JAX)
    p, period = promote(p, period)
    if dtype_of(p).kind == "c":
        raise ValueError(f"unwrap: p must be real, got {dtype_of(p)}")
    axis = canonicalize_axis(axis, _ndim(p))
    if _shape(p)[axis] == 0:
        return fnp.asarray(p)
    half = period // 2 if dtype_of(p).kind in "iu" else period / 2
    discont = period / 2 if discont is None else fnp.maximum(asarray_value(discont),
                                                            period / 2)
    dd = diff(p, axis=axis)
    ddmod = fnp.remainder(dd + half, period) - half
    ddmod = fnp.where((ddmod == -half) & (dd > 0), half, ddmod)
    correction = fnp.where(fnp.abs(dd) < discont, 0, ddmod - dd)
    first = sf.take(p, fnp.asarray([0]), axis=axis)
    rest = sf.take(p, fnp.arange(1, _shape(p)[axis]), axis=axis) + red.cumsum(correction,
                                                                             axis=axis)
    return sf.concatenate([first, rest], axis=axis) if _shape(p)[axis] else p


# ------------------------------------------------------------------------ bits


def _bit_axis(a, axis, fname):
    a = asarray_value(a)
    if dtype_of(a).kind not in "biu":
        raise TypeError(f"{fname}: a must be integers or booleans, got {dtype_of(a)}")
    if axis is None:
        return fnp.ravel(a), 0
    return a, canonicalize_axis(axis, _ndim(a))


def packbits(a, axis=None, bitorder="big"):
    """Pack the truth of each element into the bits of uint8 values along `axis`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.packbits(fnp.array([1, 0, 1], dtype=fnp.uint8))
        Array([160], dtype=uint8)
    """
    if bitorder not in ("big", "little"):
        raise ValueError(f"packbits: bitorder must be 'big' or 'little', got {bitorder!r}")
    a, axis = _bit_axis(a, axis, "packbits")
    bits = fnp.moveaxis((a != 0).astype(np.uint8), axis, -1)
    n = _shape(bits)[-1]
    pad = (-n) % 8
    if pad:
        bits = sf.concatenate([bits, fnp.zeros(tuple(_shape(bits)[:-1]) + (pad,), np.uint8)],
                              axis=-1)
    bits = fnp.reshape(bits, tuple(_shape(bits)[:-1]) + ((n + pad) // 8, 8))
    shifts = fnp.arange(7, -1, -1) if bitorder == "big" else fnp.arange(8)
    packed = fnp.sum(bits.astype(np.uint32) << shifts.astype(np.uint32), axis=-1)
    return fnp.moveaxis(packed.astype(np.uint8), -1, axis)


def unpackbits(a, axis=None, count=None, bitorder="big"):
    """Unpack uint8 values into their bits (0 or 1) along `axis`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.unpackbits(fnp.array([160], dtype=fnp.uint8))
        Array([1, 0, 1, 0, 0, 0, 0, 0], dtype=uint8)
    """
    if bitorder not in ("big", "little"):
        raise ValueError(f"unpackbits: bitorder must be 'big' or 'little', got {bitorder!r}")
    a, axis = _bit_axis(a, axis, "unpackbits")
    if dtype_of(a) != np.uint8:
        raise TypeError(f"unpackbits: a must be uint8, got {dtype_of(a)}")
    shifts = fnp.arange(7, -1, -1) if bitorder == "big" else fnp.arange(8)
    x = fnp.moveaxis(a, axis, -1)
    bits = (fnp.expand_dims(x, -1) >> shifts.astype(np.uint8)) & 1
    bits = fnp.reshape(bits, tuple(_shape(x)[:-1]) + (_shape(x)[-1] * 8,))
    if count is not None:
        count = operator.index(count)
        n = _shape(bits)[-1]
        if count > n:
            bits = sf.concatenate([bits, fnp.zeros(tuple(_shape(bits)[:-1]) + (count - n,),
                                                   np.uint8)], axis=-1)
        else:
            bits = bits[..., :count]
    return fnp.moveaxis(bits.astype(np.uint8), -1, axis)
