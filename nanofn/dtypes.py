"""Dtype helpers under the names of `jax.dtypes`.

nanofn's dtypes are numpy's. Arrays it creates from Python data default to 32-bit
(64-bit with `config.update("jax_enable_x64", True)`), and, unlike JAX without x64,
float64 arrays stay float64: so `canonicalize_dtype` returns the dtype it is given.

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn import dtypes
    >>> dtypes.result_type(fnp.ones(2, "float32"), 2.0)
    dtype('float32')
    >>> dtypes.issubdtype(fnp.float32, fnp.floating)
    True
"""

from __future__ import annotations

import numpy as np

from nanofn._dtypes_float0 import float0 as float0
from nanofn.numpy._dtypes import TypePromotionError as TypePromotionError
from nanofn.numpy._dtypes import result_type as _result_type


class extended(np.generic):
    """The abstract type of JAX's extended dtypes (`jax.dtypes.extended`). nanofn's one
    extended dtype is typed PRNG keys' (`prng_key`); numpy's dtypes are not below it.

    Example:
        >>> import numpy as np
        >>> from nanofn import dtypes
        >>> dtypes.issubdtype(np.float32, dtypes.extended)
        False
    """


class prng_key(extended):
    """The abstract type of typed PRNG keys (`jax.dtypes.prng_key`): the dtype `key<fry>`
    of `random.key`'s keys is below it; raw keys (`random.PRNGKey`'s uint32 words) are not.

    Example:
        >>> import nanofn
        >>> from nanofn import dtypes
        >>> dtypes.issubdtype(nanofn.random.key(0).dtype, dtypes.prng_key)
        True
        >>> dtypes.issubdtype(nanofn.random.PRNGKey(0).dtype, dtypes.prng_key)
        False
    """


def result_type(*args, return_weak_type_flag: bool = False):
    """The dtype that `args` (arrays, dtypes, Python scalars) promote to, on JAX's lattice
    (`jax.dtypes.result_type`). Python's int, float and complex values (and those types)
    are weakly typed: they take the dtype of the arrays they meet.

    With `return_weak_type_flag=True` it returns `(dtype, weak)`, where `weak` says the
    result is weakly typed: every argument is a Python number (nanofn's arrays are never
    weakly typed). In strict promotion (`jax_numpy_dtype_promotion="strict"`) mixing
    different dtypes raises `TypePromotionError`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import dtypes
        >>> dtypes.result_type(fnp.ones(2, "int8"), 3)
        dtype('int8')
        >>> dtypes.result_type(2.0, 1, return_weak_type_flag=True)
        (dtype('float32'), True)
    """
    if not args:
        raise ValueError("result_type: at least one array or dtype is required")
    dtype = _result_type(*args)
    if not return_weak_type_flag:
        return dtype
    python_numbers = (int, float, complex)
    weak = all(type(a) in python_numbers or (type(a) is type and a in python_numbers)
               for a in args)
    return dtype, weak and dtype.kind != "b"


def canonicalize_dtype(dtype, allow_extended_dtype: bool = False) -> np.dtype:
    """The dtype an array of `dtype` has in nanofn: `dtype` itself (float64 stays float64),
    except Python's `int`, `float` and `complex`, which mean the default dtypes (as in JAX).

    Example:
        >>> from nanofn import dtypes
        >>> dtypes.canonicalize_dtype("int32"), dtypes.canonicalize_dtype(float)
        (dtype('int32'), dtype('float32'))
    """
    if _is_key_dtype(dtype):  # typed keys' dtype, JAX's one extended dtype
        if not allow_extended_dtype:
            raise ValueError(f"canonicalize_dtype: {dtype} is an extended dtype; pass "
                             "allow_extended_dtype=True")
        return dtype
    from nanofn.numpy._dtypes import dtype_arg
    return dtype_arg(dtype)


def issubdtype(a, b) -> bool:
    """Whether dtype `a` is below `b` in numpy's type hierarchy (`np.issubdtype`).

    Example:
        >>> import numpy as np
        >>> from nanofn import dtypes
        >>> dtypes.issubdtype("int8", np.signedinteger)
        True
    """
    if a is float0 or b is float0:
        return a is b
    key_a, key_b = _is_key_dtype(a), _is_key_dtype(b)
    if key_a or key_b:  # typed keys' dtype: below prng_key and extended only
        return (key_a and key_b and a == b) or (key_a and b in (prng_key, extended, np.generic))
    return bool(np.issubdtype(a, b))


def _is_key_dtype(d) -> bool:
    from nanofn._keys import KeyDType
    return isinstance(d, KeyDType)


def finfo(dtype):
    """Machine limits of a float dtype (`np.finfo`).

    Example:
        >>> from nanofn import dtypes
        >>> float(dtypes.finfo("float32").eps)
        1.1920928955078125e-07
    """
    return np.finfo(dtype)


def iinfo(dtype):
    """Machine limits of an integer dtype (`np.iinfo`).

    Example:
        >>> from nanofn import dtypes
        >>> dtypes.iinfo("int8").max
        127
    """
    return np.iinfo(dtype)


def scalar_type_of(x) -> type:
    """The Python scalar type matching `x`'s dtype: bool, int, float or complex.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import dtypes
        >>> dtypes.scalar_type_of(fnp.ones(2))
        <class 'float'>
    """
    kind = np.dtype(getattr(x, "dtype", None) or np.asarray(x).dtype).kind
    return {"b": bool, "i": int, "u": int, "f": float, "c": complex}[kind]


def itemsize_bits(dtype) -> int:
    """The size of one element of `dtype` in bits.

    Example:
        >>> from nanofn import dtypes
        >>> dtypes.itemsize_bits("float16")
        16
    """
    return np.dtype(dtype).itemsize * 8


__all__ = ["canonicalize_dtype", "issubdtype", "result_type", "float0", "finfo", "iinfo",
           "scalar_type_of", "itemsize_bits", "TypePromotionError", "extended", "prng_key"]
