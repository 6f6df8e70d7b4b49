"""numpy's functions, written with nanofn primitives (so every transform applies).

This layer does what primitives do not: type promotion, Python scalars, `axis=None`,
negative axes and `keepdims`. Broadcasting is done by the elementwise primitives
themselves (numpy's rule), so `x + 1.0` is one primitive.
"""

from __future__ import annotations

import builtins
import math
import operator

import numpy as np

from nanofn import _core as core
from nanofn._core import Array, Tracer
from nanofn.ops import _base as lax
from nanofn.numpy._dtypes import (asarray_value, dtype_arg, dtype_of, promote,
                                  promote_float, promote_numeric, result_type)
from nanofn.numpy._dtypes import _DEFAULT, called_by_nanofn, default_int

# ------------------------------------------------------------------------ helpers

_ARRAYS = (Array, Tracer)


def _shape(x):
    return x.shape if isinstance(x, (Array, Tracer, np.ndarray, np.generic)) else np.shape(x)


def _ndim(x):
    return len(_shape(x))


# `jax_numpy_rank_promotion`, set by `nanofn.config.update`: None while it is "allow" (the
# default: a binary function reads this once and goes on), else "warn" or "raise".
_rank_promotion = None


def _check_ranks(name, *args):
    """With `jax_numpy_rank_promotion` at "warn" or "raise": warn, or raise ValueError,
    where function `name` would broadcast operands of different ranks (JAX checks the
    operands of its numpy functions, not `lax`'s; scalars and 0-d arrays are exempt).
    The operands checked are the user's: nanofn's own functions are not checked inside."""
    mode = _rank_promotion
    if not mode:
        return
    try:
        shapes = [tuple(_shape(x)) for x in args]
    except ValueError:  # a ragged list: the function itself says what is wrong with it
        return
    if len({len(s) for s in shapes if s}) < 2 or called_by_nanofn(2):
        return
    shown = " ".join(map(str, shapes))
    if mode == "raise":
        raise ValueError(
            f"{name}: operands of shapes {shown} have different ranks, and "
            "jax_numpy_rank_promotion='raise' forbids broadcasting them to a common rank. "
            "Add the missing axes yourself (x[None, :], expand_dims, broadcast_to) or set "
            "the flag to 'allow'.")
    import warnings
    warnings.warn(f"{name}: broadcasting operands of shapes {shown} to a common rank "
                  "(implicit rank promotion; jax_numpy_rank_promotion='warn'). Set the flag "
                  "to 'allow' to silence this, or to 'raise' to make it an error.",
                  UserWarning, stacklevel=3)


def canonicalize_axis(axis, ndim, name="axis"):
    a = operator.index(axis)
    if not -ndim <= a < ndim:
        raise ValueError(f"{name} {axis} is out of bounds for an array of dimension {ndim}")
    return a % ndim


def canonicalize_axes(axis, ndim, name="axis"):
    """`axis=None` means every axis; ints and tuples may be negative."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        axes = tuple(canonicalize_axis(a, ndim, name) for a in axis)
        if len(set(axes)) != len(axes):
            raise core.ShapeError(f"repeated axis in {name}={axis}")
        return axes
    return (canonicalize_axis(axis, ndim, name),)


def _wrap_output(x):
    """Primitives called on plain numpy data return Arrays already; constants get wrapped."""
    if isinstance(x, (Array, Tracer)):
        return x
    return core.wrap(core.owned(np.asarray(x)))  # a caller's writable buffer is copied


# ------------------------------------------------------------------------ creation


def _check_order(order, fname):
    if order not in (None, "K"):
        raise NotImplementedError(f"{fname}: only order='K' (or None) is supported, got "
                                  f"order={order!r}; nanofn arrays have no memory layout")


def array(object, dtype=None, copy=True, order="K", ndmin=0, *, device=None):
    """Create an array (a copy of numpy data; Python floats default to float32).

    `order` is accepted as in JAX (only "K" or None); `device` is ignored (one CPU).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.array([1, 2, 3])
        Array([1, 2, 3], dtype=int32)
    """
    del device  # unused: one CPU device
    _check_order(order, "array")
    x = asarray_value(object, None if dtype is None else dtype_arg(dtype))
    if isinstance(x, (np.ndarray, np.generic)):
        x = core.wrap(np.array(x, copy=True) if copy else core.owned(np.asarray(x)))
    if ndmin and _ndim(x) < ndmin:
        x = reshape(x, (1,) * (ndmin - _ndim(x)) + tuple(_shape(x)))
    return x


def asarray(a, dtype=None, order=None, *, copy=None, device=None):
    """Convert to an array without copying when `a` already is one (`order` and `device`
    as in `array`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.asarray(2.0).dtype
        dtype('float32')
    """
    del device  # unused: one CPU device
    _check_order(order, "asarray")
    x = asarray_value(a, None if dtype is None else dtype_arg(dtype))
    if isinstance(x, (np.ndarray, np.generic)):
        x = core.wrap(np.array(x, copy=True) if copy else core.owned(np.asarray(x)))
    return x


def _creation_dtype(dtype, default=None):
    if dtype is None:
        return _DEFAULT["f"] if default is None else np.dtype(default)
    return dtype_arg(dtype)


def _canon_shape(shape, name="shape"):
    shape = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    try:
        shape = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of integers, got {shape!r}") from None
    if builtins.any(d < 0 for d in shape):
        raise core.ShapeError(f"{name} {shape} has a negative dimension")
    return shape


def full(shape, fill_value, dtype=None):
    """An array of `shape` filled with `fill_value`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.full((2,), 7)
        Array([7, 7], dtype=int32)
    """
    shape = _canon_shape(shape)
    dtype = dtype_of(fill_value) if dtype is None else dtype_arg(dtype)
    if isinstance(fill_value, Tracer) or core.under_transform():
        v = asarray_value(fill_value, dtype)
        return lax.broadcast_to(v, shape) if _shape(v) != shape else v
    return core.wrap(np.full(shape, core.to_numpy(asarray_value(fill_value, dtype)), dtype))


def zeros(shape, dtype=None):
    """An array of zeros (float32 unless `dtype` is given).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.zeros((2, 2)).shape
        (2, 2)
    """
    return core.wrap(np.zeros(_canon_shape(shape), _creation_dtype(dtype)))


def ones(shape, dtype=None):
    """An array of ones (float32 unless `dtype` is given).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.ones(3)
        Array([1., 1., 1.], dtype=float32)
    """
    return core.wrap(np.ones(_canon_shape(shape), _creation_dtype(dtype)))


def empty(shape, dtype=None):
    """Like `zeros` (arrays are immutable, so there is nothing to leave uninitialised)."""
    return zeros(shape, dtype)


def _like(a, dtype, shape):
    """The dtype and shape of `a` (overridden by `dtype`, `shape`); `a` may also be a
    `ShapeDtypeStruct` or any object with `shape` and `dtype`, as in JAX."""
    if not core.is_array_like(a) and hasattr(a, "shape") and hasattr(a, "dtype"):
        own_dtype, own_shape = np.dtype(a.dtype), tuple(a.shape)
    else:
        own_dtype, own_shape = None, None
    d = dtype_arg(dtype) if dtype is not None else (own_dtype or dtype_of(a))
    s = shape if shape is not None else (own_shape if own_shape is not None else _shape(a))
    return d, s


def zeros_like(a, dtype=None, shape=None):
    """Zeros with the shape and dtype of `a`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.zeros_like(fnp.ones(2))
        Array([0., 0.], dtype=float32)
    """
    d, s = _like(a, dtype, shape)
    return full(s, 0, d)


def ones_like(a, dtype=None, shape=None):
    """Ones with the shape and dtype of `a`."""
    d, s = _like(a, dtype, shape)
    return full(s, 1, d)


def full_like(a, fill_value, dtype=None, shape=None):
    """`fill_value` with the shape and dtype of `a`."""
    d, s = _like(a, dtype, shape)
    return full(s, fill_value, d)


def empty_like(prototype, dtype=None, shape=None, *, device=None):
    del device  # unused: one CPU device
    return zeros_like(prototype, dtype, shape)


def arange(start, stop=None, step=None, dtype=None):
    """Evenly spaced values in `[start, stop)`, like `numpy.arange` (int32/float32 defaults).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.arange(3)
        Array([0, 1, 2], dtype=int32)
    """
    for name, v in (("start", start), ("stop", stop), ("step", step)):
        if isinstance(v, Tracer):
            raise core.ConcretizationError(
                f"arange: {name} must be a concrete value (the result's size depends on it); "
                "pass it as a static argument")
    if step is not None and not isinstance(step, Tracer) and np.all(core.to_numpy(step) == 0):
        raise ValueError(f"arange: step must not be zero, got step={step!r}")
    vals = [v for v in (start, stop, step) if v is not None]
    if dtype is None:
        return core.wrap(np.arange(*[core.to_numpy(v) for v in vals]).astype(result_type(*vals)))
    # numpy's rule for a given dtype: the first two values are cast, and their difference
    # is the step (arange(0, 5, 1.5, dtype=int) is [0, 1, 2, 3]), as JAX
    return core.wrap(np.arange(*[core.to_numpy(v) for v in vals], dtype=dtype_arg(dtype)))


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    """`num` evenly spaced values from `start` to `stop`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linspace(0.0, 1.0, 3)
        Array([0. , 0.5, 1. ], dtype=float32)
    """
    # default: the inputs' promoted inexact dtype (float32 for Python floats), as JAX
    dtype = dtype_of(promote_float(start, stop)[0]) if dtype is None else dtype_arg(dtype)
    if isinstance(start, Tracer) or isinstance(stop, Tracer):
        start, stop = promote_float(start, stop)
        div = (num - 1) if endpoint else num
        steps = lax.iota(dtype, num)
        step = (stop - start) / builtins.max(div, 1)
        out = start + steps.reshape((num,) + (1,) * _ndim(start)) * step
        out = moveaxis(out, 0, axis)
        if np.dtype(dtype).kind in "iu":  # integers: floored, as numpy and JAX
            out = floor(out)
        out = astype(out, dtype)
        return (out, step) if retstep else out
    out = np.linspace(core.to_numpy(start), core.to_numpy(stop), num, endpoint=endpoint,
                      retstep=retstep, axis=axis)
    values = out[0] if retstep else out
    if np.dtype(dtype).kind in "iu" and values.dtype.kind == "f":  # floored, as numpy, JAX
        values = np.floor(values)
    if retstep:  # the step in the result's inexact dtype, as JAX
        step_dtype = dtype if np.dtype(dtype).kind in "fc" else dtype_of(promote_float(0)[0])
        return core.wrap(values.astype(dtype)), core.wrap(np.asarray(out[1], step_dtype))
    return core.wrap(values.astype(dtype))


def eye(N, M=None, k=0, dtype=None):
    """A 2-d array with ones on the `k`-th diagonal.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.eye(2)
        Array([[1., 0.],
               [0., 1.]], dtype=float32)
    """
    return core.wrap(np.eye(N, M, k, dtype=_creation_dtype(dtype)))


def identity(n, dtype=None):
    """The `n` x `n` identity matrix."""
    return eye(n, dtype=dtype)


# ------------------------------------------------------------------------ elementwise


def _unary(name, prim, *, to_float=True, doc_in=0.5):
    kinds = "fc" if to_float else "biufc"

    def fn(x, /):
        if not (isinstance(x, _ARRAYS) and x.dtype.kind in kinds):  # else: nothing to convert
            (x,) = promote_float(x) if to_float else promote(x)
        return prim.bind(x)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"Elementwise `{name}`, like `numpy.{name}`.\n\n"
                  f"    Example:\n        >>> import nanofn.numpy as fnp\n"
                  f"        >>> fnp.{name}(fnp.array([{doc_in}])).shape\n        (1,)\n")
    return fn


sin = _unary("sin", lax.sin_p)
cos = _unary("cos", lax.cos_p)
tan = _unary("tan", lax.tan_p)
arcsin = _unary("arcsin", lax.asin_p)
arccos = _unary("arccos", lax.acos_p)
arctan = _unary("arctan", lax.atan_p)
sinh = _unary("sinh", lax.sinh_p)
cosh = _unary("cosh", lax.cosh_p)
tanh = _unary("tanh", lax.tanh_p)
arcsinh = _unary("arcsinh", lax.asinh_p)
arccosh = _unary("arccosh", lax.acosh_p, doc_in=1.5)
arctanh = _unary("arctanh", lax.atanh_p)
exp = _unary("exp", lax.exp_p)
exp2 = _unary("exp2", lax.exp2_p)
log = _unary("log", lax.log_p)
log1p = _unary("log1p", lax.log1p_p)
expm1 = _unary("expm1", lax.expm1_p)
sqrt = _unary("sqrt", lax.sqrt_p)
cbrt = _unary("cbrt", lax.cbrt_p)


def _integers_unchanged(name, prim):
    """`floor`/`ceil`: integers and booleans are already whole, and come back as they are
    (JAX, numpy >= 2.1); floats round."""
    rounded = _unary(name, prim)

    def fn(x, /):
        (x,) = promote(x) if not isinstance(x, _ARRAYS) else (x,)
        return _wrap_output(x) if dtype_of(x).kind in "biu" else rounded(x)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = rounded.__doc__
    return fn


floor = _integers_unchanged("floor", lax.floor_p)
ceil = _integers_unchanged("ceil", lax.ceil_p)


def negative(x, /, *, out=None, where=None):
    """Elementwise `-x`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.negative(fnp.array([1, -2]))
        Array([-1,  2], dtype=int32)
    """
    if out is not None or where is not None:
        _ufunc_kwargs(lax.neg_p, out, where)
    if not isinstance(x, _ARRAYS):
        (x,) = promote(x)
    return lax.neg_p.bind(x)
sign = _unary("sign", lax.sign_p, to_float=False)
abs = absolute = _unary("abs", lax.abs_p, to_float=False)
isfinite = _unary("isfinite", lax.is_finite_p)
arcsin.__name__, arccos.__name__ = "arcsin", "arccos"


def positive(x, /):
    """Elementwise `+x` (a no-op that returns an array)."""
    return asarray(x)


def log2(x, /):
    """Base-2 logarithm, `log(x) / log(2)`."""
    (x,) = promote_float(x)
    return lax.div_p.bind(lax.log_p.bind(x), lax._c(x, math.log(2)))


def log10(x, /):
    """Base-10 logarithm, `log(x) / log(10)`."""
    (x,) = promote_float(x)
    return lax.div_p.bind(lax.log_p.bind(x), lax._c(x, math.log(10)))


def square(x, /):
    """`x * x`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.square(fnp.array([3]))
        Array([9], dtype=int32)
    """
    (x,) = promote_numeric(x)
    return lax.integer_pow_p.bind(x, y=2)


def reciprocal(x, /):
    """`1 / x`."""
    (x,) = promote_float(x)
    return lax.div_p.bind(lax._c(x, 1), x)


def round(a, decimals=0, out=None):
    """Round to `decimals` places, halves to even (numpy's rule).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.round(fnp.array([0.5, 1.5, 2.25]), 1)
        Array([0.5, 1.5, 2.2], dtype=float32)
    """
    _no_out(out, "round")
    (a,) = promote(a)
    if not np.issubdtype(dtype_of(a), np.inexact):
        decimals = operator.index(decimals)
        if decimals >= 0 or dtype_of(a).kind == "b":
            return _wrap_output(a)
        return _round_integers(a, -decimals)
    if dtype_of(a).kind == "c":  # each part on its own, as numpy and JAX
        from nanofn.ops._complex import complex_p, imag_p, real_p
        return complex_p.bind(round(real_p.bind(a), decimals), round(imag_p.bind(a), decimals))
    if decimals == 0:
        return lax.round_p.bind(a, rounding_method=1)
    decimals = operator.index(decimals)
    if decimals > 400:  # finer than any float's digits: nothing changes
        return a
    if decimals < -400:  # coarser than any float: everything rounds to zero
        return lax.mul_p.bind(a, lax._c(a, 0.0))
    f = lax._c(a, 10.0 ** decimals)
    return lax.div_p.bind(lax.round_p.bind(lax.mul_p.bind(a, f), rounding_method=1), f)


def _round_integers(a, places):
    """Integers rounded to a multiple of `10**places`, halves to the even multiple (numpy's
    `round(a, -places)`; JAX raises NotImplementedError)."""
    step = 10 ** places
    if step > np.iinfo(dtype_of(a)).max:  # coarser than the dtype: everything rounds to 0
        return lax.mul_p.bind(a, lax._c(a, 0))
    unit = lax._c(a, step)
    q = floor_divide(a, unit)
    r = lax.sub_p.bind(a, lax.mul_p.bind(q, unit))  # 0 <= r < step; step // 2 is the half
    half = lax._c(a, step // 2)
    odd = lax.ne_p.bind(lax.rem_p.bind(q, lax._c(a, 2)), lax._c(a, 0))
    up = lax.or_p.bind(lax.gt_p.bind(r, half), lax.and_p.bind(lax.eq_p.bind(r, half), odd))
    q = lax.add_p.bind(q, lax.convert_element_type(up, dtype_of(a)))
    return lax.mul_p.bind(q, unit)


around = round


def rint(x, /):
    """Round to the nearest whole number, halves to even; integers and booleans become the
    default float type, as in JAX and numpy.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.rint(fnp.array([0.5, 1.5, 2]))
        Array([0., 2., 2.], dtype=float32)
    """
    (x,) = promote_float(x)
    return round(x)


def trunc(x):
    """Round toward zero; integers and booleans come back as they are (JAX)."""
    (x,) = promote(x) if not isinstance(x, _ARRAYS) else (x,)
    if dtype_of(x).kind in "biu":
        return _wrap_output(x)
    (x,) = promote_float(x)
    return lax.round_toward_zero(x)


fix = trunc


def isnan(x, /):
    """True where `x` is NaN."""
    (x,) = promote(x)
    if not np.issubdtype(dtype_of(x), np.inexact):
        return full(_shape(x), False, bool)
    return lax.ne_p.bind(x, x)


def isinf(x, /):
    """True where `x` is +inf or -inf."""
    (x,) = promote(x)
    if not np.issubdtype(dtype_of(x), np.inexact):
        return full(_shape(x), False, bool)
    magnitude = lax.abs_p.bind(x)  # real also for complex x: inf where either part is
    return lax.eq_p.bind(magnitude, lax._c(magnitude, np.inf))


def logical_not(x, /):
    """Elementwise `not`."""
    return lax.not_p.bind(asarray_value(x, bool))


def invert(x, /):
    """Bitwise `~x` (logical not for booleans)."""
    (x,) = promote(x)
    return lax.not_p.bind(x)


bitwise_not = invert


def _binary_fn(prim, to_float, operator=False, swap=False, name=None, numeric=False):
    """The body of a binary numpy function. As an operator method (`operator=True`, for
    `Array` and tracers, `swap=True` for the reflected `__radd__` etc.), it returns
    NotImplemented for operand types nanofn does not know, so Python can try the other
    operand; written out per variant to keep the hot path to one Python call."""
    def fn(x1, x2, /, *, out=None, where=None):
        if out is not None or where is not None:  # JAX's ufuncs take them, as None only
            _ufunc_kwargs(prim, out, where)
        if swap:
            x1, x2 = x2, x1
        if _rank_promotion:  # jax_numpy_rank_promotion is not "allow"
            _check_ranks(name, x1, x2)
        t1, t2 = type(x1), type(x2)
        # fast paths (no conversion needed): two arrays of one dtype; a float array and a
        # Python float or int (weakly typed: it takes the array's dtype)
        if t1 is t2 and (t1 is Array or isinstance(x1, Tracer)):
            d = x1.dtype
            if d == x2.dtype and (d.kind in "fc" or not (to_float or numeric and d.kind == "b")):
                return prim.bind(x1, x2)
        elif (t2 is float or t2 is int) and isinstance(x1, _ARRAYS):
            d = x1.dtype
            if d.kind == "f":
                return prim.bind(x1, np.asarray(x2, d))
        elif (t1 is float or t1 is int) and isinstance(x2, _ARRAYS):
            d = x2.dtype
            if d.kind == "f":
                return prim.bind(np.asarray(x1, d), x2)
        if operator:
            other = x1 if swap else x2
            if not core.is_array_like(other) and not isinstance(other, (list, tuple)):
                return NotImplemented
        x1, x2 = (promote_float if to_float else promote_numeric if numeric else promote)(
            x1, x2)
        return prim.bind(x1, x2)
    return fn


def _ufunc_kwargs(prim, out, where):
    _no_out(out, prim.name)
    raise NotImplementedError(f"{prim.name}: the where= argument of a ufunc call is not "
                              "supported (as in JAX); use fnp.where on the result")


def _binary(name, prim, *, to_float=False, ints=False, numeric=False):
    fn = _binary_fn(prim, to_float, name=name, numeric=numeric)
    fn.as_operator = _binary_fn(prim, to_float, operator=True, name=name,  # _array_methods
                                numeric=numeric)
    fn.as_reflected_operator = _binary_fn(prim, to_float, operator=True, swap=True, name=name,
                                          numeric=numeric)
    fn.__name__ = fn.__qualname__ = name
    dt = ', "int32"' if ints else ""
    fn.__doc__ = (f"Elementwise `{name}` with numpy broadcasting and JAX type promotion.\n\n"
                  f"    Example:\n        >>> import nanofn.numpy as fnp\n"
                  f"        >>> fnp.{name}(fnp.ones((2, 1){dt}), fnp.ones(3{dt})).shape\n"
                  f"        (2, 3)\n")
    return fn


add = _binary("add", lax.add_p)
subtract = _binary("subtract", lax.sub_p)
multiply = _binary("multiply", lax.mul_p)
maximum = _binary("maximum", lax.max_p)
minimum = _binary("minimum", lax.min_p)
arctan2 = _binary("arctan2", lax.atan2_p, to_float=True)
nextafter = _binary("nextafter", lax.nextafter_p, to_float=True)
equal = _binary("equal", lax.eq_p)
not_equal = _binary("not_equal", lax.ne_p)
less = _binary("less", lax.lt_p)
less_equal = _binary("less_equal", lax.le_p)
greater = _binary("greater", lax.gt_p)
greater_equal = _binary("greater_equal", lax.ge_p)
bitwise_and = _binary("bitwise_and", ints=True, prim=lax.and_p)
bitwise_or = _binary("bitwise_or", ints=True, prim=lax.or_p)
bitwise_xor = _binary("bitwise_xor", ints=True, prim=lax.xor_p)
left_shift = _binary("left_shift", ints=True, numeric=True, prim=lax.shift_left_p)
right_shift = _binary("right_shift", ints=True, numeric=True,
                      prim=lax.shift_right_arithmetic_p)


def _logical(name, prim):
    def fn(x1, x2, /, *, out=None, where=None):
        if out is not None or where is not None:
            _ufunc_kwargs(prim, out, where)
        _check_ranks(name, x1, x2)
        return prim.bind(asarray_value(x1, bool), asarray_value(x2, bool))
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise logical `{name.split('_')[1]}` of the truth values of the inputs."
    return fn


logical_and = _logical("logical_and", lax.and_p)
logical_or = _logical("logical_or", lax.or_p)
logical_xor = _logical("logical_xor", lax.xor_p)


true_divide = _binary("true_divide", lax.div_p, to_float=True)
true_divide.__doc__ = """`x1 / x2` in floating point (integers are promoted to float32).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.divide(fnp.array([1, 2]), 2)
        Array([0.5, 1. ], dtype=float32)
    """


divide = true_divide


def floor_divide(x1, x2, /):
    """`x1 // x2`, rounding toward minus infinity (numpy's rule)."""
    _check_ranks("floor_divide", x1, x2)
    x1, x2 = promote_numeric(x1, x2)
    if np.issubdtype(dtype_of(x1), np.integer):
        q = lax.div_p.bind(x1, x2)  # rounds toward zero: step down where signs differ
        r = lax.rem_p.bind(x1, x2)
        zero = lax._c(r, 0)
        fix = lax.and_p.bind(lax.ne_p.bind(r, zero),
                             lax.ne_p.bind(lax.lt_p.bind(r, zero), lax.lt_p.bind(x2, zero)))
        return lax.select_n_p.bind(fix, q, lax.sub_p.bind(q, lax._c(q, 1)))
    return lax.floor_p.bind(lax.div_p.bind(x1, x2))


def remainder(x1, x2, /):
    """`x1 % x2` with the sign of the divisor (numpy's and Python's rule).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.remainder(fnp.array([-3, 3]), 2)
        Array([1, 1], dtype=int32)
    """
    _check_ranks("remainder", x1, x2)
    x1, x2 = promote_numeric(x1, x2)
    r = lax.rem_p.bind(x1, x2)
    zero = lax._c(r, 0)
    fix = lax.and_p.bind(lax.ne_p.bind(r, zero),
                         lax.ne_p.bind(lax.lt_p.bind(r, zero), lax.lt_p.bind(x2, zero)))
    return lax.select_n_p.bind(fix, r, lax.add_p.bind(r, x2))


mod = remainder


def fmod(x1, x2, /):
    """C-style remainder: the sign of the dividend."""
    _check_ranks("fmod", x1, x2)
    x1, x2 = promote_numeric(x1, x2)
    return lax.rem_p.bind(x1, x2)


def power(x1, x2, /):
    """`x1 ** x2`. A Python int exponent uses repeated multiplication (`integer_pow`),
    which is exact and has a gradient at `x1 = 0`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.power(fnp.array([2.0, 3.0]), 2)
        Array([4., 9.], dtype=float32)
    """
    _check_ranks("power", x1, x2)
    if type(x2) is int and -2 ** 31 <= x2 < 2 ** 31 and not isinstance(x1, (int, float)):
        (x1,) = promote_numeric(x1)
        return lax.integer_pow_p.bind(x1, y=x2)
    x1, x2 = promote_numeric(x1, x2)
    if np.issubdtype(dtype_of(x1), np.integer):
        return _integer_power(x1, x2)
    return lax.pow_p.bind(x1, x2)


def _integer_power(x1, x2):
    """Integers to integer powers as JAX computes them: squaring and multiplying once per
    bit of the exponent, wrapping around on overflow; a negative exponent gives
    `1 / x1 ** -x2` truncated (0 unless `x1` is 1 or -1)."""
    from nanofn.numpy._shape_funcs import broadcast_arrays
    dtype = dtype_of(x1)
    x1, x2 = broadcast_arrays(x1, x2)
    shape = tuple(np.shape(x1))

    def c(v):
        return lax.full(shape, v, dtype)
    one = c(1)
    negative = lax.lt_p.bind(x2, c(0)) if dtype.kind == "i" else None
    e = x2 if negative is None else lax.select_n_p.bind(negative, x2, lax.neg_p.bind(x2))
    acc, base = one, x1
    for _ in range(8 * dtype.itemsize):  # every bit of a (non-negative) exponent
        bit = lax.eq_p.bind(lax.and_p.bind(e, one), one)
        acc = lax.select_n_p.bind(bit, acc, lax.mul_p.bind(acc, base))
        base = lax.mul_p.bind(base, base)
        e = lax.shift_right_logical_p.bind(e, one)
    if negative is None:
        return acc
    unit = lax.eq_p.bind(lax.mul_p.bind(x1, x1), one)  # x1 is 1 or -1
    return lax.select_n_p.bind(negative, acc, lax.select_n_p.bind(unit, c(0), acc))


pow = power


def float_power(x1, x2, /):
    """`x1 ** x2` computed in floating point."""
    _check_ranks("float_power", x1, x2)
    x1, x2 = promote_float(x1, x2)
    return lax.pow_p.bind(x1, x2)


def hypot(x1, x2, /):
    """`sqrt(x1**2 + x2**2)`, without overflow for large inputs."""
    _check_ranks("hypot", x1, x2)
    x1, x2 = promote_float(x1, x2)
    a, b = lax.abs_p.bind(x1), lax.abs_p.bind(x2)
    hi, lo = lax.max_p.bind(a, b), lax.min_p.bind(a, b)
    safe = lax.select_n_p.bind(lax.eq_p.bind(hi, lax._c(hi, 0)), hi, lax._c(hi, 1))
    r = lax.div_p.bind(lo, safe)
    return lax.mul_p.bind(hi, lax.sqrt_p.bind(lax.add_p.bind(lax._c(r, 1), lax.mul_p.bind(r, r))))


def logaddexp(x1, x2, /, *, out=None, where=None):
    """`log(exp(x1) + exp(x2))`, computed without overflow; one primitive, so its
    derivatives are smooth where `x1 == x2` (the second derivative there is 1/4).
    `logaddexp(-inf, -inf) == -inf` and `logaddexp(inf, inf) == inf`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.logaddexp(fnp.array([0.0, -fnp.inf]), fnp.array([0.0, -fnp.inf]))
        Array([0.6931472,      -inf], dtype=float32)
    """
    from nanofn.ops._complex import logaddexp_p
    if out is not None or where is not None:
        _ufunc_kwargs(logaddexp_p, out, where)
    _check_ranks("logaddexp", x1, x2)
    x1, x2 = promote_float(x1, x2)
    return logaddexp_p.bind(x1, x2)


def where(condition, x=None, y=None, /, *, size=None, fill_value=None):
    """Choose `x` where `condition` is true, else `y` (numpy broadcasting).

    With only `condition`, returns the indices of its non-zero elements, as `nonzero`:
    eager, or traceable with `size=` (and `fill_value=`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.where(fnp.array([True, False]), 1.0, 0.0)
        Array([1., 0.], dtype=float32)
        >>> fnp.where(fnp.array([0, 1, 1]), size=3, fill_value=-1)
        (Array([ 1,  2, -1], dtype=int32),)
    """
    if x is None and y is None:
        return nonzero(condition, size=size, fill_value=fill_value)
    if x is None or y is None:
        raise ValueError("where: give both x and y, or neither")
    if size is not None or fill_value is not None:
        raise ValueError("where: size and fill_value apply only to the one-argument form "
                         "where(condition)")
    x, y = promote(x, y)
    return lax.select_n_p.bind(asarray_value(condition, bool), y, x)


def nonzero(a, *, size=None, fill_value=None):
    """Indices of the non-zero elements (a tuple, one array per axis).

    The number of results depends on the values, so this is eager only unless `size` is
    given: then the first `size` indices are returned, padded with `fill_value` (default
    0; a tuple gives one fill value per axis), and the function traces under jit.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.nonzero(fnp.array([[0, 1], [1, 0]]))
        (Array([0, 1], dtype=int32), Array([1, 0], dtype=int32))
        >>> fnp.nonzero(fnp.array([0, 3, 0]), size=2, fill_value=-1)
        (Array([ 1, -1], dtype=int32),)
    """
    if size is not None:
        return _nonzero_sized(a, size, fill_value)
    if isinstance(a, Tracer) and size is None:
        try:
            a = core._lowest(a)
        except core.ConcretizationError:
            raise core.ConcretizationError(
                "nonzero/where with one argument has a data-dependent output shape and cannot "
                "be traced; pass size=... or use the three-argument where(cond, x, y)") from None
    v = np.asarray(core._lowest(a) if isinstance(a, Tracer) else core.to_numpy(a))
    idx = np.nonzero(v)
    if size is not None:
        fill = 0 if fill_value is None else fill_value
        idx = tuple(np.concatenate([i[:size], np.full(builtins.max(size - len(i), 0), fill)]) for i in idx)
    return tuple(core.wrap(i.astype(_DEFAULT["i"])) for i in idx)


def _nonzero_sized(a, size, fill_value):
    """`nonzero(a, size=...)` with primitives only, so it traces: a stable argsort of
    `where(a != 0, 0, 1)` lists the true positions first, in order."""
    from nanofn.numpy import argsort, unravel_index
    a = asarray_value(a)
    try:
        size = operator.index(size)
    except TypeError:
        raise TypeError(f"nonzero: size must be an int, got {size!r}") from None
    if size < 0:
        raise ValueError(f"nonzero: size must be non-negative, got {size}")
    shape = tuple(_shape(a)) or (1,)
    mask = ravel(not_equal(a, 0))
    n = _shape(mask)[0]
    nd = len(shape)
    fills = fill_value if isinstance(fill_value, (tuple, list)) else (fill_value,) * nd
    if len(fills) != nd:
        raise ValueError(f"nonzero: fill_value has {len(fills)} entries for an array of "
                         f"{nd} dimensions")
    if n == 0:
        return tuple(full((size,), 0 if f is None else f, _DEFAULT["i"]) for f in fills)
    order = argsort(where(mask, 0, 1).astype(default_int()))
    if size > n:
        order = concatenate_([order, zeros(size - n, default_int())])
    order = order[:size]
    valid = arange(size) < sum(mask)
    idx = unravel_index(order, shape) if _ndim(a) else (order,)
    index = _DEFAULT["i"]
    return tuple(where(valid, i, np.asarray(0 if f is None else f, index)).astype(index)
                 for i, f in zip(idx, fills))


def concatenate_(arrays, axis=0):
    from nanofn.numpy import concatenate
    return concatenate(arrays, axis=axis)


_NO_BOUND = object()


def clip(arr=None, /, min=None, max=None, *, a_min=_NO_BOUND, a_max=_NO_BOUND):
    """Limit the values of `arr` to `[min, max]` (either may be None).

    `a_min`/`a_max` are the names older JAX and numpy use; they still work, with a
    DeprecationWarning.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.clip(fnp.array([-2.0, 0.5, 3.0]), -1.0, 1.0)
        Array([-1. ,  0.5,  1. ], dtype=float32)
        >>> fnp.clip(fnp.arange(5), min=1, max=3)
        Array([1, 1, 2, 3, 3], dtype=int32)
    """
    import warnings
    for old, new, value in (("a_min", "min", a_min), ("a_max", "max", a_max)):
        if value is not _NO_BOUND:
            warnings.warn(f"clip: {old}= is deprecated; use {new}=", DeprecationWarning,
                          stacklevel=2)
            if (min if new == "min" else max) is not None:
                raise ValueError(f"clip: give {new}= or {old}=, not both")
    min = a_min if a_min is not _NO_BOUND else min
    max = a_max if a_max is not _NO_BOUND else max
    if arr is None:
        raise TypeError("clip: the array argument is missing")
    bounds = [b for b in (min, max) if b is not None]
    # a Python number clipped by arrays stays weakly typed: the bounds' dtype wins
    a = arr if type(arr) in (int, float) and bounds else promote(arr)[0]
    _check_ranks("clip", a, *bounds)
    if min is not None:
        a = maximum(a, min)
    if max is not None:
        a = minimum(a, max)
    return a


def astype(x, dtype, /, *, copy=False, device=None):
    """Cast `x` to `dtype` (`copy` and `device` are accepted for JAX compatibility:
    arrays are immutable and there is one CPU device).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.astype(fnp.array([1.5, 2.5]), fnp.int32)
        Array([1, 2], dtype=int32)
    """
    del copy, device  # unused: immutable arrays, one device
    x = asarray_value(x)
    dtype = dtype_arg(dtype)
    if dtype.kind not in "biufc":
        raise TypeError(f"{core.caller_name()}: cannot convert to dtype {dtype}: nanofn arrays "
                        "hold bool, integer, float or complex numbers")
    if dtype_of(x) == dtype:
        return _wrap_output(x)
    return lax.convert_element_type_p.bind(x, new_dtype=dtype)


# ------------------------------------------------------------------------ reductions


def _reduction(x, axis, keepdims, reduce, name, where=None, initial=None):
    x = asarray_value(x)
    ndim = _ndim(x)
    axes = canonicalize_axes(axis, ndim, "axis")
    out = reduce(x, axes)
    if keepdims:
        shape = [1 if i in axes else d for i, d in enumerate(_shape(x))]
        out = lax.reshape(out, shape)
    return _wrap_output(out)


def sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None,
        promote_integers=True):
    """Sum over `axis` (all axes by default). Booleans and small ints sum as int32 (with
    `promote_integers=False`, small ints keep their dtype; booleans still count as int32).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.sum(fnp.ones((2, 3)), axis=1)
        Array([3., 3.], dtype=float32)
    """
    _no_out(out, "sum")
    a = asarray_value(a)
    if where is not None:
        a = where_(where, a, 0)
    d = dtype_of(a)
    if dtype is not None:
        a = astype(a, dtype)
    elif d == bool or (promote_integers and np.issubdtype(d, np.integer)
                       and d.itemsize < _DEFAULT["i"].itemsize):  # to the default int, as JAX
        a = astype(a, _DEFAULT["i"] if d.kind != "u" else _DEFAULT["u"])
    half = dtype_of(a) == np.float16  # added in float32, rounded once (JAX)
    s = _reduction(astype(a, np.float32) if half else a, axis, keepdims,
                   lambda x, axes: lax.reduce_sum_p.bind(x, axes=axes), "sum")
    s = astype(s, np.float16) if half else s
    return s if initial is None else add(s, _initial(initial, s))


def _initial(initial, result):
    """A reduction's `initial=` in the result's dtype, as JAX (an int sum's 2.5 is 2)."""
    return astype(asarray_value(initial), dtype_of(result))


where_ = where


def _no_out(out, name):
    if out is not None:
        raise TypeError(f"{name}: the out= argument is not supported (nanofn arrays are "
                        "immutable); use the return value")


def _count(a, axis):
    shape = _shape(a)
    axes = canonicalize_axes(axis, len(shape))
    return math.prod([shape[i] for i in axes])


def mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    """Arithmetic mean over `axis`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.mean(fnp.array([1.0, 2.0, 6.0]))
        Array(3., dtype=float32)
    """
    _no_out(out, "mean")
    (a,) = promote_float(a) if dtype is None else [astype(a, dtype)]
    if dtype_of(a) == np.float16:  # computed in float32, rounded once (JAX)
        return astype(mean(astype(a, np.float32), axis, None, None, keepdims, where=where),
                      np.float16)
    if where is not None:
        w = broadcast_to(asarray_value(where, bool), _shape(a))  # count where= per element
        n = sum(w, axis=axis, keepdims=keepdims, dtype=dtype_of(a))
        out = divide(sum(a, axis=axis, keepdims=keepdims, where=w), n)
    else:
        n = _count(a, axis)
        out = divide(sum(a, axis=axis, keepdims=keepdims), np.asarray(n, dtype_of(a)))
    # an integer dtype= gives an integer mean (truncated), as in numpy and JAX
    return astype(out, dtype) if dtype is not None and dtype_of(a).kind in "biu" else out


def _correction(ddof, correction, fname):
    if correction is None:
        return ddof
    if ddof != 0:
        raise ValueError(f"{fname}: give ddof= or correction= (its array API name), not both")
    return correction


def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None,
        mean=None, correction=None):
    """Variance over `axis`, dividing by `N - ddof` (`correction` is the array API's name
    for `ddof`; `mean`, if given, is used instead of computing the mean, with
    `keepdims=True` shape).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.var(fnp.array([1.0, 3.0]))
        Array(1., dtype=float32)
        >>> fnp.var(fnp.array([1.0, 3.0]), correction=1)
        Array(2., dtype=float32)
    """
    _no_out(out, "var")
    ddof = _correction(ddof, correction, "var")
    (a,) = promote_float(a) if dtype is None else [astype(a, dtype)]
    if dtype_of(a) == np.float16:  # computed in float32, rounded once (JAX)
        return astype(var(astype(a, np.float32), axis, None, None, ddof, keepdims, where=where,
                          mean=mean), np.float16)
    m = mean_(a, axis=axis, keepdims=True, where=where) if mean is None else mean
    centered = subtract(a, m)
    sq = _abs_squared(centered)
    if where is not None:
        w = broadcast_to(asarray_value(where, bool), _shape(a))
        n = subtract(sum(w, axis=axis, keepdims=keepdims, dtype=dtype_of(sq)), ddof)
        return _divide_dof(sum(sq, axis=axis, keepdims=keepdims, where=w), n)
    n = _count(a, axis) - ddof
    if n > 0:
        return divide(sum(sq, axis=axis, keepdims=keepdims), np.asarray(n, dtype_of(sq)))
    return _divide_dof(sum(sq, axis=axis, keepdims=keepdims), np.asarray(n, dtype_of(sq)))


def _abs_squared(z):
    """`|z|^2`, real: `z * z`, or for complex `z` the sum of its parts' squares (the terms
    of a variance, as numpy and JAX define it)."""
    if dtype_of(z).kind != "c":
        return multiply(z, z)
    from nanofn.ops._complex import imag_p, real_p
    re, im = real_p.bind(z), imag_p.bind(z)
    return add(multiply(re, re), multiply(im, im))


def _divide_dof(total, dof):
    """`total / dof`, nan where `dof <= 0` (JAX's rule for a variance with too few elements;
    the divisor is kept positive so that no inf or nan reaches the gradient)."""
    zero, one = np.asarray(0, dtype_of(total)), np.asarray(1, dtype_of(total))
    ok = greater(dof, zero)
    return where_(ok, divide(total, where_(ok, dof, one)), np.asarray(np.nan, dtype_of(total)))


def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None,
        mean=None, correction=None):
    """Standard deviation over `axis` (the square root of `var`, with its arguments).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.std(fnp.array([1.0, 3.0]), correction=1)
        Array(1.4142135, dtype=float32)
    """
    return sqrt(var(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims,
                    where=where, mean=mean, correction=correction))


mean_ = mean


def _extremum(prim, name):
    def fn(a, axis=None, out=None, keepdims=False, initial=None, where=None):
        _no_out(out, name)
        a = asarray_value(a)
        if where is not None:
            if initial is None:
                raise ValueError(f"{name}: where= needs initial= (the value for empty slices)")
            a = where_(where, a, _initial(initial, a))
        shape = _shape(a)
        axes = canonicalize_axes(axis, len(shape))
        if builtins.any(shape[i] == 0 for i in axes):
            if initial is None:
                raise ValueError(f"{name}: zero-size reduction over axis {axis} of an array of "
                                 f"shape {tuple(shape)} has no identity; pass initial=")
            out = [1 if i in axes else d for i, d in enumerate(shape)] if keepdims else \
                [d for i, d in enumerate(shape) if i not in axes]
            return broadcast_to(_initial(initial, a), tuple(out))
        r = _reduction(a, axis, keepdims, lambda x, axes: prim.bind(x, axes=axes), name)
        if initial is not None:  # in a's dtype (a bool max stays bool), as JAX
            r = (maximum if name == "max" else minimum)(r, _initial(initial, a))
        return r
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"The {name}imum over `axis` (all axes by default).\n\n"
                  f"    Example:\n        >>> import nanofn.numpy as fnp\n"
                  f"        >>> float(fnp.{name}(fnp.array([1.0, 3.0, 2.0])))\n"
                  f"        {3.0 if name == 'max' else 1.0}\n")
    return fn


max = amax = _extremum(lax.reduce_max_p, "max")
min = amin = _extremum(lax.reduce_min_p, "min")


def all(a, axis=None, out=None, keepdims=False, where=None):
    """True where every element along `axis` is true."""
    _no_out(out, "all")
    a = asarray_value(a, bool)
    if where is not None:
        a = where_(where, a, True)
    if _count(a, axis) == 0:
        return ones_like(sum(a, axis=axis, keepdims=keepdims), dtype=bool)
    return _reduction(a, axis, keepdims, lambda x, axes: lax.reduce_min_p.bind(x, axes=axes), "all")


def any(a, axis=None, out=None, keepdims=False, where=None):
    """True where some element along `axis` is true."""
    _no_out(out, "any")
    a = asarray_value(a, bool)
    if where is not None:
        a = where_(where, a, False)
    if _count(a, axis) == 0:
        return zeros_like(sum(a, axis=axis, keepdims=keepdims), dtype=bool)
    return _reduction(a, axis, keepdims, lambda x, axes: lax.reduce_max_p.bind(x, axes=axes), "any")


def _arg_extremum(prim, name):
    def fn(a, axis=None, out=None, keepdims=False):
        _no_out(out, name)
        a = asarray_value(a)
        ndim = _ndim(a)
        if axis is None:
            a = lax.reshape(a, (math.prod(_shape(a)),))
            axis_ = 0
        else:
            axis_ = canonicalize_axis(axis, _ndim(a))
        r = prim.bind(a, axis=axis_, index_dtype=_DEFAULT["i"])
        if keepdims:  # axis=None keeps every axis with size 1, as numpy and JAX
            shape = list(_shape(a)) if axis is not None else [1] * ndim
            if axis is not None:
                shape[axis_] = 1
            r = lax.reshape(r, shape)
        return r
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"Index of the {name[3:]}imum along `axis` (of the flattened array by default).\n\n"
                  f"    Example:\n        >>> import nanofn.numpy as fnp\n"
                  f"        >>> int(fnp.{name}(fnp.array([1.0, 3.0, 2.0])))\n"
                  f"        {1 if name == 'argmax' else 0}\n")
    return fn


argmax = _arg_extremum(lax.argmax_p, "argmax")
argmin = _arg_extremum(lax.argmin_p, "argmin")


# ------------------------------------------------------------------------ products


def _dot_operands(a, b, precision, preferred_element_type, fname):
    """Promote `a` and `b`; with `preferred_element_type`, compute in that dtype (JAX
    accumulates in it). `precision` is checked and otherwise unused: numpy computes in
    the operands' own precision."""
    lax.canonicalize_precision(precision, fname)
    a, b = promote(a, b)
    if preferred_element_type is not None:
        pet = np.dtype(preferred_element_type)
        a, b = astype(a, pet), astype(b, pet)
    return a, b


def matmul(a, b, *, precision=None, preferred_element_type=None):
    """Matrix product with numpy's rules: 1-d operands are promoted to matrices and
    leading (batch) axes broadcast.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.matmul(fnp.ones((2, 3)), fnp.ones((3, 4))).shape
        (2, 4)
    """
    a, b = _dot_operands(a, b, precision, preferred_element_type, "matmul")
    sa, sb = tuple(_shape(a)), tuple(_shape(b))
    if not sa or not sb:
        raise ValueError(f"matmul: operands must be at least 1-d, got shapes {sa} and {sb}")
    a2 = lax.reshape(a, (1,) + sa) if len(sa) == 1 else a
    b2 = lax.reshape(b, sb + (1,)) if len(sb) == 1 else b
    sa2, sb2 = tuple(_shape(a2)), tuple(_shape(b2))
    if sa2[-1] != sb2[-2]:
        raise core.ShapeError(
            f"matmul: shapes {sa} and {sb} are not aligned: the contracted dimensions are "
            f"axis -1 of the first (size {sa2[-1]}) and axis {-2 if len(sb) > 1 else 0} of the "
            f"second (size {sb2[-2]})")
    batch = lax.broadcast_shapes("matmul", sa2[:-2], sb2[:-2])
    nb = len(batch)
    # Each batch axis of the result is a batch axis of the product only where both
    # operands have it with size > 1. An axis only one operand has (or has with size > 1)
    # is a free axis of that operand: `x (B, T, C) @ w (C, D)` is one (B*T, C) x (C, D)
    # product, and its weight gradient one contraction over B and T, never B products of
    # a broadcast copy of `w` summed afterwards.
    off_a, off_b = nb - (len(sa2) - 2), nb - (len(sb2) - 2)  # result axis i is a2's i - off_a
    a_drop, b_drop, a_batch, b_batch, a_free, b_free, both = [], [], [], [], [], [], []
    for i in range(nb):
        da = sa2[i - off_a] if i >= off_a else None
        db = sb2[i - off_b] if i >= off_b else None
        if da is not None and da == db and da != 1:
            a_batch.append(i - off_a)
            b_batch.append(i - off_b)
            both.append(i)
        elif db is None or (da is not None and db == 1):  # a's axis (b has none, or size 1)
            a_free.append(i)
            if db is not None:
                b_drop.append(i - off_b)
        else:  # b's axis (a has none, or size 1)
            b_free.append(i)
            if da is not None:
                a_drop.append(i - off_a)
    a2 = lax.squeeze(a2, tuple(a_drop)) if a_drop else a2
    b2 = lax.squeeze(b2, tuple(b_drop)) if b_drop else b2
    # positions in the squeezed operands
    a_pos = [d for d in range(len(sa2)) if d not in a_drop]
    b_pos = [d for d in range(len(sb2)) if d not in b_drop]
    dn = (((a_pos.index(len(sa2) - 1),), (b_pos.index(len(sb2) - 2),)),
          (tuple(a_pos.index(d) for d in a_batch), tuple(b_pos.index(d) for d in b_batch)))
    out = lax.dot_general_p.bind(a2, b2, dimension_numbers=dn, preferred_element_type=None)
    # dot_general's result axes: both-batch, a's free axes in order (its broadcast axes,
    # then its row), b's free axes (its broadcast axes, then its column)
    order = both + a_free + ["row"] + b_free + ["col"]
    want = list(range(nb)) + ["row", "col"]
    perm = tuple(order.index(w) for w in want)
    if perm != tuple(range(len(perm))):
        out = lax.transpose(out, perm)
    if len(sa) == 1:
        out = lax.squeeze(out, (nb,))
    if len(sb) == 1:
        out = lax.squeeze(out, (len(_shape(out)) - 1,))
    return out


def dot(a, b, *, precision=None, preferred_element_type=None):
    """numpy's `dot`: products of scalars, vectors, matrices; for N-d operands, a sum over
    the last axis of `a` and the second-to-last of `b`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.dot(fnp.array([1.0, 2.0]), fnp.array([3.0, 4.0])))
        11.0
    """
    a, b = _dot_operands(a, b, precision, preferred_element_type, "dot")
    na, nb = _ndim(a), _ndim(b)
    if na == 0 or nb == 0:
        return multiply(a, b)
    if nb <= 2:
        return matmul(a, b)
    contract_b = nb - 2
    if _shape(a)[-1] != _shape(b)[contract_b]:
        raise core.ShapeError(f"dot: shapes {tuple(_shape(a))} and {tuple(_shape(b))} are not aligned")
    return lax.dot_general_p.bind(a, b, dimension_numbers=(((na - 1,), (contract_b,)), ((), ())),
                                  preferred_element_type=None)


def vdot(a, b, *, precision=None, preferred_element_type=None):
    """Dot product of the flattened inputs, conjugating `a` when it is complex (numpy's rule).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.vdot(fnp.array([1 + 1j, 2]), fnp.array([1, 1j]))
        Array(1.+1.j, dtype=complex64)
    """
    a, b = _dot_operands(a, b, precision, preferred_element_type, "vdot")
    if dtype_of(a).kind == "c":
        from nanofn.ops._complex import conj_p
        a = conj_p.bind(a)
    return dot(ravel(a), ravel(b))


def inner(a, b, *, precision=None, preferred_element_type=None):
    """Sum over the last axes of `a` and `b`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.inner(fnp.ones((2, 3)), fnp.arange(3.0))
        Array([3., 3.], dtype=float32)
    """
    a, b = _dot_operands(a, b, precision, preferred_element_type, "inner")
    if _ndim(a) == 0 or _ndim(b) == 0:
        return multiply(a, b)
    return lax.dot_general_p.bind(a, b, dimension_numbers=(((_ndim(a) - 1,), (_ndim(b) - 1,)), ((), ())),
                                  preferred_element_type=None)


def outer(a, b, out=None):
    """Outer product of the flattened inputs.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.outer(fnp.ones(2), fnp.ones(3)).shape
        (2, 3)
    """
    _no_out(out, "outer")
    a, b = (ravel(v) for v in promote(a, b))  # a Python scalar stays weakly typed
    return multiply(lax.reshape(a, (_shape(a)[0], 1)), b)


def tensordot(a, b, axes=2, *, precision=None, preferred_element_type=None):
    """Sum products over the given axes (`axes` an int N for the last N of `a` and first N
    of `b`, or a pair of sequences).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.tensordot(fnp.ones((2, 3, 4)), fnp.ones((3, 4, 5))).shape
        (2, 5)
    """
    a, b = _dot_operands(a, b, precision, preferred_element_type, "tensordot")
    na, nb = _ndim(a), _ndim(b)
    if isinstance(axes, (int, np.integer)):
        if not 0 <= axes <= builtins.min(na, nb):
            raise ValueError(f"tensordot: axes={axes} must lie in [0, {builtins.min(na, nb)}] for "
                             f"arrays of {na} and {nb} dimensions")
        ax_a, ax_b = tuple(range(na - axes, na)), tuple(range(axes))
    else:
        try:
            ax_a, ax_b = axes
        except (TypeError, ValueError):
            raise TypeError(f"tensordot: axes must be an int or a pair of axis sequences, got "
                            f"{axes!r:.60}") from None
        ax_a = canonicalize_axes(ax_a if isinstance(ax_a, (tuple, list)) else [ax_a], na)
        ax_b = canonicalize_axes(ax_b if isinstance(ax_b, (tuple, list)) else [ax_b], nb)
    sa, sb = _shape(a), _shape(b)
    if [sa[i] for i in ax_a] != [sb[i] for i in ax_b]:
        raise ValueError(f"tensordot: shapes {tuple(sa)} and {tuple(sb)} do not match on the "
                         f"contracted axes {ax_a} and {ax_b}")
    return lax.dot_general_p.bind(a, b, dimension_numbers=((tuple(ax_a), tuple(ax_b)), ((), ())),
                                  preferred_element_type=None)


# ------------------------------------------------------------------------ basic shapes


def reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    """Give `a` a new shape (one entry may be -1).

    `newshape` is numpy's older name for `shape`; `copy` is accepted for JAX
    compatibility (arrays are immutable).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.reshape(fnp.arange(6), (3, -1)).shape
        (3, 2)
    """
    if order not in ("C", "F", "A"):
        raise ValueError(f"reshape: order must be 'C', 'F' or 'A', got {order!r:.60}")
    del copy  # unused: arrays are immutable
    if shape is not None and newshape is not None:
        raise ValueError("reshape: give shape= or newshape=, not both")
    newshape = shape if newshape is None else newshape
    if newshape is None:
        raise TypeError("reshape: the shape argument is missing")
    a = asarray_value(a)
    if order == "F":  # column-major: reverse the axes, reshape row-major, reverse back
        newshape = (newshape,) if np.ndim(newshape) == 0 else tuple(newshape)
        return transpose(reshape(transpose(a), newshape[::-1]))
    newshape = (newshape,) if np.ndim(newshape) == 0 else tuple(newshape)
    try:
        newshape = tuple(operator.index(d) for d in newshape)
    except TypeError:
        raise TypeError(f"reshape: the new shape must hold integers, got "
                        f"{newshape!r:.60}") from None
    size = math.prod(_shape(a))
    if sum_neg := builtins.sum(1 for d in newshape if d == -1):
        if sum_neg > 1:
            raise ValueError(f"reshape: can only specify one unknown dimension, got {newshape}")
        known = math.prod(d for d in newshape if d != -1)
        if known == 0 or size % known:
            raise core.ShapeError(f"reshape: cannot reshape array of shape {tuple(_shape(a))} "
                             f"(size {size}) into shape {newshape}")
        newshape = tuple(size // known if d == -1 else d for d in newshape)
    if math.prod(newshape) != size or builtins.min(newshape, default=0) < 0:
        raise core.ShapeError(f"reshape: cannot reshape array of shape {tuple(_shape(a))} "
                         f"(size {size}) into shape {newshape}")
    return _wrap_output(lax.reshape(a, newshape))


def ravel(a, order="C"):
    """Flatten to 1-d (`order="F"`: column by column; "A" reads as "C", since nanofn arrays
    have no memory layout of their own)."""
    return reshape(a, (-1,), order)


def transpose(a, axes=None):
    """Permute axes (reverse them by default).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.transpose(fnp.zeros((2, 3, 4))).shape
        (4, 3, 2)
    """
    a = asarray_value(a)
    n = _ndim(a)
    perm = tuple(range(n))[::-1] if axes is None else canonicalize_axes(tuple(axes), n, "axes")
    if len(perm) != n:
        raise ValueError(f"transpose: axes {axes} do not match an array of {n} dimensions")
    return _wrap_output(lax.transpose(a, perm))


def moveaxis(a, source, destination):
    """Move axes of `a` to new positions, keeping the order of the others."""
    a = asarray_value(a)
    n = _ndim(a)
    src = canonicalize_axes(source if isinstance(source, (tuple, list)) else [source], n, "source")
    dst = canonicalize_axes(destination if isinstance(destination, (tuple, list)) else [destination],
                            n, "destination")
    if len(src) != len(dst):
        raise ValueError("moveaxis: source and destination need the same number of axes")
    order = [i for i in range(n) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return _wrap_output(lax.transpose(a, tuple(order)))


def broadcast_to(array, shape):
    """Broadcast `array` to `shape` (numpy rules).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.broadcast_to(fnp.ones(3), (2, 3)).shape
        (2, 3)
    """
    array = asarray_value(array)
    shape = _canon_shape(shape)
    src = tuple(_shape(array))
    if len(src) > len(shape) or lax.broadcast_shapes("broadcast_to", src, shape) != shape:
        raise ValueError(f"broadcast_to: cannot broadcast shape {src} to {shape}")
    return _wrap_output(lax.broadcast_to(array, shape))


def squeeze(a, axis=None):
    """Remove size-1 axes (all of them, or those in `axis`)."""
    a = asarray_value(a)
    shape = _shape(a)
    if axis is None:
        axes = tuple(i for i, d in enumerate(shape) if d == 1)
    else:
        axes = canonicalize_axes(axis, len(shape))
        bad = [i for i in axes if shape[i] != 1]
        if bad:
            raise ValueError(f"squeeze: cannot select axis {bad[0]}: it has size {shape[bad[0]]}, "
                             f"not 1 (shape {tuple(shape)})")
    return _wrap_output(lax.squeeze(a, axes) if axes else a)


def expand_dims(a, axis):
    """Insert size-1 axes at `axis` (an int or tuple, positions in the result)."""
    a = asarray_value(a)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    n = _ndim(a) + len(axes)
    return _wrap_output(lax.expand_dims(a, canonicalize_axes(tuple(axes), n)))


def stack(arrays, axis=0, out=None, dtype=None):
    """Join arrays of one shape along a new axis (cast to `dtype` if given).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.stack([fnp.ones(2), fnp.zeros(2)], dtype=fnp.int32)
        Array([[1, 1],
               [0, 0]], dtype=int32)
    """
    from nanofn.numpy import concatenate
    _no_out(out, "stack")
    arrays = [asarray_value(x) for x in arrays]
    if dtype is not None:
        arrays = [astype(x, dtype) for x in arrays]
    if not arrays:
        raise ValueError("stack: need at least one array")
    shapes = {tuple(_shape(x)) for x in arrays}
    if len(shapes) > 1:
        raise ValueError(f"stack: all input arrays must have the same shape, got {sorted(shapes)}")
    axis = canonicalize_axis(axis, _ndim(arrays[0]) + 1)
    return concatenate([expand_dims(x, axis) for x in arrays], axis=axis)
