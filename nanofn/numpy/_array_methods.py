"""Operators and methods of `Array` and of every tracer, installed by nanofn.numpy.

The core defines `Array` and `Tracer` without arithmetic; this module gives both the same
numpy-style surface, written with nanofn.numpy functions, so `x + y`, `x @ w` and
`x.sum(axis=0)` trace the same way whether `x` is concrete or traced (JAX does the same
in `jax/_src/numpy/array_methods.py`).
"""

from __future__ import annotations

import numpy as np

from nanofn import _core as core
from nanofn.numpy import _lax_numpy as lnp
from nanofn.numpy._dtypes import dtype_arg


def _swap(f):
    return lambda self, other: f(other, self)


def _defer(f):
    """Binary operators return NotImplemented for types nanofn does not know (e.g. lists of
    strings), so Python can try the other operand."""
    def op(self, other):
        if not core.is_array_like(other) and not isinstance(other, (list, tuple)):
            return NotImplemented
        return f(self, other)
    return op


_OPERATORS = {
    "__add__": lnp.add, "__sub__": lnp.subtract, "__mul__": lnp.multiply,
    "__truediv__": lnp.true_divide, "__floordiv__": lnp.floor_divide,
    "__mod__": lnp.remainder, "__pow__": lnp.power, "__matmul__": lnp.matmul,
    "__eq__": lnp.equal, "__ne__": lnp.not_equal,
    "__lt__": lnp.less, "__le__": lnp.less_equal,
    "__gt__": lnp.greater, "__ge__": lnp.greater_equal,
    "__and__": lnp.bitwise_and, "__or__": lnp.bitwise_or, "__xor__": lnp.bitwise_xor,
    "__lshift__": lnp.left_shift, "__rshift__": lnp.right_shift,
}

_REFLECTED = {  # x.__radd__(y) is y + x
    "__radd__": lnp.add, "__rsub__": lnp.subtract, "__rmul__": lnp.multiply,
    "__rtruediv__": lnp.true_divide, "__rfloordiv__": lnp.floor_divide,
    "__rmod__": lnp.remainder, "__rpow__": lnp.power, "__rmatmul__": lnp.matmul,
    "__rand__": lnp.bitwise_and, "__ror__": lnp.bitwise_or, "__rxor__": lnp.bitwise_xor,
}

_UNARY = {
    "__neg__": lnp.negative, "__pos__": lnp.positive, "__abs__": lnp.abs,
    "__invert__": lnp.invert,
}


def _getitem(self, idx):
    from nanofn.numpy import _indexing
    return _indexing.getitem(self, idx)


def _at(self):
    from nanofn.numpy import _indexing
    return _indexing.IndexUpdateHelper(self)


def _method(name):
    def call(self, *args, **kwargs):
        from nanofn import numpy as fnp
        return getattr(fnp, name)(self, *args, **kwargs)
    call.__name__ = name
    return call


_METHODS = ["sum", "mean", "var", "std", "max", "min", "prod", "all", "any", "argmax",
            "argmin", "cumsum", "cumprod", "clip", "round", "sort", "argsort", "ravel",
            "squeeze", "swapaxes", "take", "repeat", "nonzero", "dot", "conj", "conjugate",
            "diagonal", "trace"]


def _reshape(self, *shape, order="C"):
    shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
    return lnp.reshape(self, shape, order)


def _transpose(self, *axes):
    axes = axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes
    return lnp.transpose(self, axes or None)


def install(cls):
    # nanofn.numpy's elementwise binary functions come with operator versions that make the
    # NotImplemented check themselves (one Python call less per operation); others get _defer
    for name, f in _OPERATORS.items():
        setattr(cls, name, getattr(f, "as_operator", None) or _defer(f))
    for name, f in _REFLECTED.items():
        setattr(cls, name, getattr(f, "as_reflected_operator", None) or _defer(_swap(f)))
    for name, f in _UNARY.items():
        setattr(cls, name, f)
    for name in _METHODS:
        setattr(cls, name, _method(name))
    cls.__getitem__ = _getitem
    cls.at = property(_at)
    cls.reshape = _reshape
    cls.transpose = _transpose
    cls.astype = lambda self, dtype, copy=False, device=None: lnp.astype(self, dtype)
    cls.flatten = lambda self, order="C": lnp.ravel(self, order)
    cls.T = property(lambda self: lnp.transpose(self))
    cls.mT = property(lambda self: _method("swapaxes")(self, -1, -2))
    cls.real = property(_method("real"))
    cls.imag = property(_method("imag"))
    cls.__hash__ = None


install(core.Array)
install(core.Tracer)


# The rest of jax.Array's numpy methods (device and sharding attributes live elsewhere)
_MORE_METHODS = ["argpartition", "choose", "copy", "ptp", "searchsorted"]


def _install_more(cls):
    for name in _MORE_METHODS:
        setattr(cls, name, _method(name))
    cls.compress = lambda self, condition, axis=None, **kw: _fnp_call(
        "compress", condition, self, axis, **kw)  # numpy's method takes the condition first
    cls.itemsize = property(lambda self: self.dtype.itemsize)
    cls.nbytes = property(lambda self: self.size * self.dtype.itemsize)
    cls.tobytes = lambda self, order="C": np.asarray(self).tobytes(order)


def _fnp_call(name, *args, **kwargs):
    from nanofn import numpy as fnp
    return getattr(fnp, name)(*args, **kwargs)


_install_more(core.Array)
_install_more(core.Tracer)


# ---------------------------------------------------------- the rest of jax.Array's surface


def _view(self, dtype=None, type=None):
    """`x.view(dtype)`: the same bits as `dtype`, numpy's way: the last axis grows or
    shrinks by the size ratio (one `bitcast_convert_type`)."""
    if type is not None:
        raise NotImplementedError("Array.view: type= is not supported (there is one array type)")
    if dtype is None:
        return self
    from nanofn.ops import _base
    old, new = self.dtype, dtype_arg(dtype)
    if old == bool or new == bool:  # a bool is one byte holding 0 or 1, as in numpy
        if (old if new == bool else new).itemsize != 1:
            raise TypeError(f"Array.view: cannot view {old.name} as {new.name}: a bool can "
                            "only be viewed as a one-byte dtype (int8, uint8), and back")
        return lnp.astype(self, new) if old == bool else lnp.not_equal(self, 0)
    if old.itemsize == new.itemsize:
        return _base.bitcast_convert_type_p.bind(self, new_dtype=new)
    if self.ndim == 0:
        raise ValueError(f"Array.view: a 0-d {old.name} array cannot be viewed as {new.name}, "
                         "which has another size")
    shape = tuple(self.shape)
    if old.itemsize > new.itemsize:
        out = _base.bitcast_convert_type_p.bind(self, new_dtype=new)
        return lnp.reshape(out, shape[:-1] + (shape[-1] * (old.itemsize // new.itemsize),))
    ratio = new.itemsize // old.itemsize
    if shape[-1] % ratio:
        raise ValueError(f"Array.view: the last axis ({shape[-1]}) of a {old.name} array must "
                         f"be a multiple of {ratio} to view it as {new.name}")
    grouped = lnp.reshape(self, shape[:-1] + (shape[-1] // ratio, ratio))
    return _base.bitcast_convert_type_p.bind(grouped, new_dtype=new)


def _round_builtin(self, ndigits=None):
    """`round(x)` rounds to integers (to nearest even) and returns an integer array, as
    Python's `round` of a number returns an int; `round(x, n)` keeps the dtype."""
    if ndigits is not None:
        return lnp.round(self, ndigits)
    x = _method("real")(self) if np.issubdtype(self.dtype, np.complexfloating) else self
    return lnp.astype(lnp.round(x), dtype_arg(int))


def _contains(self, item):
    return bool(lnp.any(lnp.equal(self, item)))


def _install_array_surface(cls):
    cls.view = _view
    cls.__round__ = _round_builtin
    cls.__divmod__ = _defer(lambda self, other: _fnp_call("divmod", self, other))
    cls.__rdivmod__ = _defer(lambda self, other: _fnp_call("divmod", other, self))
    cls.__rlshift__ = _defer(lambda self, other: lnp.left_shift(other, self))
    cls.__rrshift__ = _defer(lambda self, other: lnp.right_shift(other, self))
    cls.__contains__ = _contains
    cls.clone = _method("copy")


_install_array_surface(core.Array)
_install_array_surface(core.Tracer)
