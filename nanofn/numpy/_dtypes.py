"""Type promotion and argument conversion for nanofn.numpy.

nanofn follows JAX's rules where they differ from numpy's:

* Python scalars are *weakly typed*: `x_f32 * 2.0` stays float32, `x_i32 + 1` stays int32.
* Mixing integers and floats gives the float operand's type (`i32 + f32 -> f32`, where
  numpy would say float64).
* float64 inputs stay float64 (there is no global x64 flag); arrays nanofn creates from
  Python data default to float32 / int32.
"""

from __future__ import annotations

import numpy as np

from nanofn import _core as core
from nanofn._core import Array, Tracer

float16, float32, float64 = np.float16, np.float32, np.float64
int8, int16, int32, int64 = np.int8, np.int16, np.int32, np.int64
uint8, uint16, uint32, uint64 = np.uint8, np.uint16, np.uint32, np.uint64
bool_ = np.bool_
complex64, complex128 = np.complex64, np.complex128
float_ = float64
inexact, floating, integer, signedinteger, unsignedinteger, number = (
    np.inexact, np.floating, np.integer, np.signedinteger, np.unsignedinteger, np.number)

_WEAK_KIND = {int: "i", float: "f", complex: "c"}
_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
_DEFAULT = {"b": np.dtype(bool), "i": np.dtype(np.int32), "u": np.dtype(np.uint32),
            "f": np.dtype(np.float32), "c": np.dtype(np.complex64)}


def default_int() -> np.dtype:
    """The default integer dtype, of indices and counts: int32, or int64 with
    `jax_enable_x64` (JAX's `int_`)."""
    return _DEFAULT["i"]


def dtype_of(x) -> np.dtype:
    if isinstance(x, (Array, Tracer)):
        return x.dtype
    if isinstance(x, (np.ndarray, np.generic)):
        return check_numeric(x).dtype
    t = type(x)
    if t is bool:
        return np.dtype(bool)
    if t in _WEAK_KIND:
        return _DEFAULT[_WEAK_KIND[t]]
    if isinstance(x, (list, tuple)) and any(isinstance(e, _ARRAYS) for e in _iter_nested(x)):
        return _result_type(list(_iter_nested(x)))  # what `asarray_value` stacks them to
    return _canonical_default(_from_python(x).dtype)


_caller, _describe, check_numeric = core.caller_name, core.describe_value, core.check_numeric
_KIND_NAMES = core.KIND_NAMES


_PYTHON_DATA = (list, tuple, bool, int, float, complex)


def _from_python(x, dtype=None):
    """Python data (nested lists and tuples of numbers, array-likes) as a numpy array with a
    numeric dtype, or a TypeError / ValueError naming the function and the value."""
    if x is None or isinstance(x, (str, bytes, np.dtype, type)):
        raise TypeError(f"{_caller()}: expected an array, a numpy array or a Python scalar, "
                        f"got {_describe(x)}")
    try:
        value = x
        if dtype is not None and not isinstance(x, _PYTHON_DATA):
            # numpy converts any object to a requested dtype (`bool(object())` is True): read
            # it as it is first, so that one which holds no numbers is refused below
            value = np.asarray(x)
            if value.dtype.kind not in _KIND_RANK:
                raise TypeError(f"it holds {_KIND_NAMES.get(value.dtype.kind, 'other values')}"
                                f" (dtype {value.dtype}), not numbers")
        arr = np.asarray(value, dtype=dtype)
    except ValueError as err:
        if "inhomogeneous" in str(err) or "sequence" in str(err):
            raise ValueError(f"{_caller()}: cannot make an array from a ragged nested "
                             f"sequence: {_describe(x)}; every row needs the same length") from None
        raise TypeError(f"{_caller()}: cannot convert {_describe(x)} to a nanofn array: "
                        f"{err}") from None
    except OverflowError as err:
        raise core.IntegerOverflowError(f"{_caller()}: cannot convert {_describe(x)} to a "
                                        f"nanofn array: {err}") from None
    except TypeError as err:
        raise TypeError(f"{_caller()}: cannot convert {_describe(x)} to a nanofn array: "
                        f"{err}") from None
    if arr.dtype.kind not in _KIND_RANK:
        raise TypeError(f"{_caller()}: cannot convert {_describe(x)} to a nanofn array: it "
                        f"holds {_KIND_NAMES.get(arr.dtype.kind, 'other values')} (dtype "
                        f"{arr.dtype}), not numbers")
    return arr


def _promote_two(a: np.dtype, b: np.dtype) -> np.dtype:
    if a == b:
        return a
    ka, kb = _KIND_RANK[a.kind], _KIND_RANK[b.kind]
    if ka != kb:
        hi, lo = (a, b) if ka > kb else (b, a)
        if hi.kind == "c" and lo.kind == "f":
            return np.promote_types(hi, lo)
        return hi  # JAX: the float (or complex) operand's type wins over ints and bools
    return np.promote_types(a, b)


def result_type(*args) -> np.dtype:
    """The dtype that `args` promote to (JAX's lattice, with weak Python scalars).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.result_type(fnp.zeros(2, "float32"), 2.0)
        dtype('float32')
    """
    return _result_type(args, dtypes_ok=True)


def _result_type(args, dtypes_ok=False):
    """`result_type` of values (`dtypes_ok=False`: a string is a value, not a dtype name)."""
    strong = None
    weak_rank = -1
    for x in args:
        t = type(x)
        kind = _WEAK_KIND.get(t)
        if kind is not None:
            weak_rank = max(weak_rank, _KIND_RANK[kind])
            continue
        if dtypes_ok and isinstance(x, (str, type, np.dtype)):
            d = np.dtype(x)
        else:
            d = dtype_of(x)
        if d.kind not in _KIND_RANK:
            raise TypeError(f"{_caller()}: dtype {d} is not a numeric dtype (got it from "
                            f"{_describe(x)})")
        strong = d if strong is None else _promote_two(strong, d)
    if strong is None:
        return _DEFAULT[{-1: "f", 1: "i", 2: "f", 3: "c"}[weak_rank]]
    if weak_rank > _KIND_RANK[strong.kind]:
        weak_kind = {1: "i", 2: "f", 3: "c"}[weak_rank]
        if weak_kind == "c" and strong.kind == "f":
            return np.promote_types(strong, np.complex64)
        return _DEFAULT[weak_kind]
    return strong


_PYTHON_TYPE_KIND = {bool: "b", int: "i", float: "f", complex: "c"}


def dtype_arg(dtype) -> np.dtype:
    """A `dtype=` argument as a numpy dtype, with JAX's meaning for Python's own types:
    `int`, `float` and `complex` stand for the default dtypes (int32, float32, complex64;
    their 64-bit forms with `jax_enable_x64`), not numpy's 64-bit ones. Every other dtype
    is numpy's (an explicit float64 stays float64)."""
    kind = _PYTHON_TYPE_KIND.get(dtype) if isinstance(dtype, type) else None
    return _DEFAULT[kind] if kind is not None else np.dtype(dtype)


def asarray_value(x, dtype=None):
    """Convert array-like input to something primitives accept: an Array, a tracer, or a
    numpy array / scalar of the right dtype. Never copies Arrays or tracers."""
    if dtype is not None:
        dtype = dtype_arg(dtype)
    if isinstance(x, (Array, Tracer)):
        if dtype is not None and x.dtype != dtype:
            from nanofn.ops._base import convert_element_type_p
            return convert_element_type_p.bind(x, new_dtype=np.dtype(dtype))
        return x
    if isinstance(x, (np.ndarray, np.generic)):
        check_numeric(x)
        return x if dtype is None or x.dtype == dtype else check_numeric(np.asarray(x, dtype))
    if dtype is None:
        dtype = dtype_of(x) if type(x) in (bool, int, float, complex) else None
    if isinstance(x, (list, tuple)) and any(isinstance(e, (Array, Tracer)) for e in _iter_nested(x)):
        from nanofn.numpy._lax_numpy import stack
        return stack([asarray_value(e, dtype) for e in x])
    arr = _from_python(x, dtype)
    if dtype is None:
        arr = arr.astype(_canonical_default(arr.dtype), copy=False)
    return arr


def _iter_nested(x):
    for e in x:
        if isinstance(e, (list, tuple)):
            yield from _iter_nested(e)
        else:
            yield e


_NUMPY_DEFAULT_KIND = {np.dtype(np.float64): "f", np.dtype(np.int64): "i",
                       np.dtype(np.complex128): "c"}


def _canonical_default(d: np.dtype) -> np.dtype:
    """Python lists give numpy's 64-bit defaults; nanofn gives its own defaults (`_DEFAULT`:
    32-bit, like JAX; 64-bit with `jax_enable_x64`), as it does for Python scalars."""
    kind = _NUMPY_DEFAULT_KIND.get(d)
    return d if kind is None else _DEFAULT[kind]


_ARRAYS = (Array, Tracer)


def promote(*args):
    """Convert every argument to their common dtype (see `result_type`)."""
    if len(args) == 2:  # fast path for the common case: an array and a weak scalar or twin
        a, b = args
        ta, tb = type(a), type(b)
        if isinstance(a, _ARRAYS) and (tb is float or tb is int) and a.dtype.kind == "f":
            return [a, np.asarray(b, a.dtype)]
        if isinstance(b, _ARRAYS) and (ta is float or ta is int) and b.dtype.kind == "f":
            return [np.asarray(a, b.dtype), b]
        if isinstance(a, _ARRAYS) and isinstance(b, _ARRAYS) and a.dtype == b.dtype:
            return [a, b]
    elif len(args) == 1 and isinstance(args[0], _ARRAYS):
        return [args[0]]
    dtype = _result_type(args)
    return [asarray_value(x, dtype) for x in args]


def promote_float(*args):
    """Like `promote`, but integers and bools become the default float type (for sin, exp...)."""
    if len(args) == 1:
        if isinstance(args[0], _ARRAYS) and args[0].dtype.kind in "fc":
            return [args[0]]
    elif len(args) == 2:  # an inexact array and a weak scalar or twin: as in `promote`
        a, b = args
        ta, tb = type(a), type(b)
        if isinstance(a, _ARRAYS):
            da = a.dtype
            if (tb is float or tb is int) and da.kind == "f":
                return [a, np.asarray(b, da)]
            if isinstance(b, _ARRAYS) and da.kind in "fc" and b.dtype == da:
                return [a, b]
        elif isinstance(b, _ARRAYS) and (ta is float or ta is int) and b.dtype.kind == "f":
            return [np.asarray(a, b.dtype), b]
    dtype = _result_type(args)
    if not np.issubdtype(dtype, np.inexact):
        dtype = _DEFAULT["f"]
    return [asarray_value(x, dtype) for x in args]


def issubdtype(arg1, arg2) -> bool:
    return np.issubdtype(arg1, arg2)


def finfo(dtype):
    return np.finfo(dtype)


def iinfo(dtype):
    return np.iinfo(dtype)


def canonicalize_dtype(dtype) -> np.dtype:
    return dtype_arg(dtype)


def is_weak(x) -> bool:
    return type(x) in _WEAK_KIND


from nanofn._config import config as _config  # noqa: E402

if _config.jax_enable_x64:  # JAX_ENABLE_X64=1 in the environment: apply it now
    _config.update("jax_enable_x64", True)

__all__ = ["result_type", "promote", "promote_float", "asarray_value", "dtype_of", "core"]
