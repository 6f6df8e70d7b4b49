"""Type promotion and argument conversion for nanofn.numpy.

nanofn follows JAX's rules where they differ from numpy's:

* Python scalars are *weakly typed*: `x_f32 * 2.0` stays float32, `x_i32 + 1` stays int32.
* Mixing integers and floats gives the float operand's type (`i32 + f32 -> f32`, where
  numpy would say float64).
* float64 inputs stay float64 (there is no global x64 flag); arrays nanofn creates from
  Python data default to float32 / int32.
"""

from __future__ import annotations

import os
import sys

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


def default_float() -> np.dtype:
    """The default float dtype of arrays nanofn creates: float32, or float64 with
    `jax_enable_x64` (JAX's `float_`)."""
    return _DEFAULT["f"]


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
    out = np.promote_types(a, b)
    if out.itemsize == 8 and out.kind == "i" and a.itemsize < 8 and b.itemsize < 8:
        # uint32 with a signed int: JAX's 64-bit int is the default int, int32 without
        # jax_enable_x64 (nanofn keeps 64 bits only where an operand has them)
        return _DEFAULT["i"]
    return out


class TypePromotionError(ValueError):
    """Raised where `jax_numpy_dtype_promotion` is "strict" and an operation would promote
    between different dtypes implicitly (JAX's class, public as
    `nanofn.dtypes.TypePromotionError`; a ValueError, as in JAX).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn.dtypes import TypePromotionError
        >>> with nanofn.numpy_dtype_promotion("strict"):
        ...     try:
        ...         fnp.ones(2, "int32") + fnp.ones(2, "float32")
        ...     except TypePromotionError:
        ...         print("cast one operand explicitly")
        cast one operand explicitly
    """


TypePromotionError.__module__ = "nanofn.dtypes"  # its public home, as in JAX

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
# nanofn's modules that only pass a call on: Array's operator methods, and the
# transformations, which call the user's function (or a numpy function given as one)
_FORWARDERS = tuple(os.sep + name for name in (
    "_array_methods.py", "_jit.py", "_batching.py", "_ad.py", "_core.py", "_jacobians.py",
    "_custom.py", "_custom_gradient.py", "_closure.py", "_check_grads.py",
    "_traceback_util.py", "_keys.py"))


def _is_nanofn(frame) -> bool:
    while frame is not None and frame.f_code.co_filename.endswith(_FORWARDERS):
        frame = frame.f_back
    return frame is not None and \
        os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE)


def called_by_nanofn(depth: int) -> bool:
    """Whether the code `depth` frames above the caller is nanofn's own (a library function
    built from numpy functions) rather than the user's; calls passed on by Array's
    operators or by a transformation count as the user's. The rank and strict dtype checks
    look at the operands the user passes: nanofn's composite functions are not checked
    inside."""
    return _is_nanofn(sys._getframe(depth + 1))


# `jax_numpy_dtype_promotion == "strict"`, set by `nanofn.config.update`. Strict, the
# only implicit promotions are a weakly typed Python scalar taking the dtype of an array
# of its kind or a higher one (int -> any int/float/complex, float -> any float/complex,
# complex -> any complex), as on JAX's strict lattice.
_strict_promotion = False
_AS_32_BIT = {np.dtype(a): np.dtype(b) for a, b in (("float64", "float32"), ("int64", "int32"),
                                                    ("uint64", "uint32"),
                                                    ("complex128", "complex64"))}


def _differ_in_jax(a: np.dtype, b: np.dtype) -> bool:
    """Whether JAX sees dtypes `a` and `b` as different: without `jax_enable_x64` it makes
    every 64-bit value 32-bit before promoting (nanofn keeps float64 data float64)."""
    if _DEFAULT["f"].itemsize == 8:
        return a != b
    return _AS_32_BIT.get(a, a) != _AS_32_BIT.get(b, b)


def _refuse_promotion(args, dtypes_ok):
    frame = sys._getframe(1)
    while frame.f_code.co_filename == __file__:  # out of this module: the numpy function
        frame = frame.f_back
    if _is_nanofn(frame) and _is_nanofn(frame.f_back):  # called by nanofn, not the user
        return

    def show(x):
        kind = _WEAK_KIND.get(type(x))
        if kind is not None:
            return f"{type(x).__name__} (a weakly typed Python scalar)"
        return str(np.dtype(x) if dtypes_ok and isinstance(x, (str, type, np.dtype))
                   else dtype_of(x))
    raise TypePromotionError(
        f"{_caller()}: operands of dtypes {', '.join(show(x) for x in args)} would be "
        "promoted implicitly, which jax_numpy_dtype_promotion='strict' forbids. Cast "
        "explicitly (x.astype(dtype), asarray(x, dtype=...)) or set the flag to "
        "'standard'.")


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
        if kind is None and dtypes_ok and t is type:
            kind = _WEAK_KIND.get(x)  # Python's int, float, complex as dtypes: weak, as in JAX
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
        if strong is None:
            strong = d
        elif d != strong:
            if _strict_promotion and _differ_in_jax(d, strong):
                _refuse_promotion(args, dtypes_ok)
            strong = _promote_two(strong, d)
    if strong is None:
        return _DEFAULT[{-1: "f", 1: "i", 2: "f", 3: "c"}[weak_rank]]
    if weak_rank > _KIND_RANK[strong.kind]:
        if _strict_promotion:  # e.g. an int array and a Python float
            _refuse_promotion(args, dtypes_ok)
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


def promote_numeric(*args):
    """Like `promote`, but booleans become the default integer (int32; int64 under
    jax_enable_x64): JAX's rule for arithmetic that has no boolean meaning (`square`,
    `power`, `floor_divide`, `remainder`, the shifts...)."""
    out = promote(*args)
    if dtype_of(out[0]) == np.bool_:
        out = [asarray_value(x, _DEFAULT["i"]) for x in out]
    return out


def promote_float(*args):
    """Like `promote`, but integers and bools become floats (for sin, exp...): float32, or
    the default float for 64-bit integers (float64 under jax_enable_x64), as in JAX."""
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
        # JAX's rule: integers of up to 32 bits and booleans become float32; 64-bit ones
        # the default float (float64 under jax_enable_x64)
        dtype = _DEFAULT["f"] if dtype.itemsize == 8 else np.dtype(np.float32)
    return [asarray_value(x, dtype) for x in args]


def issubdtype(arg1, arg2) -> bool:
    from nanofn.dtypes import issubdtype as dtypes_issubdtype  # knows typed keys' dtype
    return dtypes_issubdtype(arg1, arg2)


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
