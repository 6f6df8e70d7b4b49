"""Scalar types that cast (`jnp.float32(x)`), as jax.numpy's are.

`fnp.float32` works wherever numpy's `np.float32` does as a dtype (`fnp.zeros(3,
fnp.float32)`, `x.astype(fnp.float32)`, `x.dtype == fnp.float32`, `np.dtype(fnp.float32)`),
and calling it makes a nanofn array of that dtype, so it also casts traced values inside
`jit`, `grad` and `vmap` (numpy's `np.float32(tracer)` would need the concrete value).

Example:
    >>> import nanofn, nanofn.numpy as fnp
    >>> nanofn.jit(lambda x: fnp.int32(x) + 1)(2.7)
    Array(3, dtype=int32)
"""

import numpy as np


class _ScalarMeta(type):
    """A class standing for a numpy scalar type: equal to it, hashing like it, and
    converting to its dtype when called."""

    def __hash__(cls):
        return hash(cls.dtype.type)

    def __eq__(cls, other):
        return cls is other or cls.dtype.type == other

    def __ne__(cls, other):
        return not cls == other

    def __call__(cls, x):
        from nanofn.numpy._lax_numpy import asarray
        return asarray(x, dtype=cls.dtype)

    def __instancecheck__(cls, instance):
        return isinstance(instance, cls.dtype.type)


def _make_scalar_type(np_type):
    name = np.dtype(np_type).name if np_type is not np.bool_ else "bool_"
    doc = (f"The {np.dtype(np_type).name} scalar type: a dtype, and a function that casts "
           f"its argument (array-like or traced) to a {np.dtype(np_type).name} array.")
    return _ScalarMeta(name, (object,), {"dtype": np.dtype(np_type), "__doc__": doc,
                                         "__module__": "nanofn.numpy"})


bool_ = _make_scalar_type(np.bool_)
float16 = _make_scalar_type(np.float16)
float32 = _make_scalar_type(np.float32)
float64 = _make_scalar_type(np.float64)
float_ = float64
int8 = _make_scalar_type(np.int8)
int16 = _make_scalar_type(np.int16)
int32 = _make_scalar_type(np.int32)
int64 = _make_scalar_type(np.int64)
uint8 = _make_scalar_type(np.uint8)
uint16 = _make_scalar_type(np.uint16)
uint32 = _make_scalar_type(np.uint32)
uint64 = _make_scalar_type(np.uint64)
complex64 = _make_scalar_type(np.complex64)
complex128 = _make_scalar_type(np.complex128)

__all__ = ["bool_", "float16", "float32", "float64", "float_", "int8", "int16", "int32",
           "int64", "uint8", "uint16", "uint32", "uint64", "complex64", "complex128"]
