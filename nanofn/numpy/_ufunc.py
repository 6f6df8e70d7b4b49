"""Universal functions: `ufunc` and `frompyfunc`, and the ufunc methods (`outer`, `reduce`,
`accumulate`, `at`, `reduceat`) of the binary functions jax.numpy makes ufuncs
(`fnp.add.outer(a, b)`, `fnp.maximum.accumulate(x)`, `fnp.add.at(x, i, v, inplace=False)`).

The elementwise functions themselves stay plain functions (the hot path of every `x + y`
is one Python call); the methods are attached to them as attributes. A generic method
loops over the reduced axis in Python, binding one elementwise call per element, so it
traces and differentiates like any other nanofn code; the common ufuncs use their
reduction primitives instead (`add.reduce` is `sum`, `maximum.accumulate` is `cummax`).
"""

from __future__ import annotations

import operator

import numpy as np

from nanofn._core import Tracer
import nanofn.numpy as fnp  # the finished namespace, used at call time
from nanofn.numpy._dtypes import asarray_value, dtype_of
from nanofn.numpy._lax_numpy import (_ndim, _no_out, _shape, canonicalize_axes,
                                     canonicalize_axis)

__all__ = ["ufunc", "frompyfunc"]


class ufunc:
    """A function of `nin` arrays, applied elementwise with broadcasting, with numpy's ufunc
    methods (jax.numpy.ufunc).

    Args:
        func: the elementwise function (written with nanofn.numpy operations).
        nin: the number of inputs.
        nout: the number of outputs.
        name: the name shown in errors (default: `func.__name__`).
        nargs: `nin + nout` by default.
        identity: the neutral element; `reduce` starts from it when it is given (as JAX).
        call, reduce, accumulate, at, reduceat: faster implementations of the methods.

    Example:
        >>> import nanofn.numpy as fnp
        >>> mul_add = fnp.ufunc(lambda a, b: a * b + 1, nin=2, nout=1)
        >>> mul_add.outer(fnp.arange(2.0), fnp.arange(3.0))
        Array([[1., 1., 1.],
               [1., 2., 3.]], dtype=float32)
        >>> mul_add.accumulate(fnp.arange(4.0))
        Array([ 0.,  1.,  3., 10.], dtype=float32)
    """

    def __init__(self, func, /, nin, nout, *, name=None, nargs=None, identity=None,
                 call=None, reduce=None, accumulate=None, at=None, reduceat=None):
        self._func = func
        self.nin, self.nout = operator.index(nin), operator.index(nout)
        self.nargs = self.nin + self.nout if nargs is None else operator.index(nargs)
        self.identity = identity
        self.__name__ = name or getattr(func, "__name__", "ufunc")
        self._call, self._reduce, self._accumulate = call, reduce, accumulate
        self._at, self._reduceat = at, reduceat

    def __repr__(self):
        return f"<nanofn.numpy.ufunc '{self.__name__}'>"

    def __call__(self, *args, out=None, where=None):
        _no_out(out, self.__name__)
        if where is not None:
            raise NotImplementedError(f"{self.__name__}: where= is not supported (as in "
                                      "JAX); use fnp.where on the result")
        if len(args) != self.nin:
            raise TypeError(f"{self.__name__}: expected {self.nin} arguments, got {len(args)}")
        return (self._call or self._func)(*args)

    def _result_dtype(self, *dtypes):
        """The dtype `func` returns for inputs of `dtypes` (JAX's default for the methods)."""
        return dtype_of(self(*[fnp.zeros((), d) for d in dtypes]))

    def _binary(self, method):
        if self.nin != 2 or self.nout != 1:
            raise ValueError(f"{self.__name__}.{method} needs a ufunc of two inputs and one "
                             f"output (nin={self.nin}, nout={self.nout})")

    def outer(self, A, B, /):
        """`func(a, b)` for every pair: the result has shape `A.shape + B.shape`."""
        self._binary("outer")
        A, B = asarray_value(A), asarray_value(B)
        a = fnp.reshape(A, tuple(_shape(A)) + (1,) * _ndim(B))
        return self(a, B)

    def reduce(self, a, axis=0, dtype=None, out=None, keepdims=False, initial=None,
               where=None):
        """Fold `func` along `axis` (None: over the flattened array)."""
        self._binary("reduce")
        _no_out(out, f"{self.__name__}.reduce")
        if self._reduce is not None:
            return self._reduce(a, axis=axis, dtype=dtype, keepdims=keepdims, initial=initial,
                                where=where)
        a = asarray_value(a)
        dtype = self._result_dtype(dtype_of(a), dtype_of(a)) if dtype is None else dtype
        a = a.astype(dtype)
        shape = tuple(_shape(a))
        axes = canonicalize_axes(axis, len(shape))
        kept_axes = [d for d in range(len(shape)) if d not in axes]

        def front(v):  # the reduced axes, flattened, first
            v = fnp.transpose(v, tuple(axes) + tuple(kept_axes))
            return fnp.reshape(v, (-1,) + tuple(shape[d] for d in kept_axes))
        x = front(a)
        w = None if where is None else front(
            fnp.broadcast_to(asarray_value(where, np.bool_), shape))
        start = initial if initial is not None else self.identity
        n = _shape(x)[0]
        if start is None:
            if n == 0:
                raise ValueError(f"{self.__name__}.reduce: zero-size reduction with no "
                                 "identity; pass initial=")
            if w is not None:
                raise ValueError(f"{self.__name__}.reduce: where= needs initial= or an "
                                 "identity")
            acc, rest = x[0], range(1, n)
        else:
            acc = fnp.full(_shape(x)[1:], start, dtype)
            rest = range(n)
        for i in rest:
            new = self(acc, x[i]).astype(dtype)
            acc = new if w is None else fnp.where(w[i], new, acc)
        if keepdims:
            acc = fnp.reshape(acc, [1 if i in axes else d for i, d in enumerate(shape)])
        return acc

    def accumulate(self, a, axis=0, dtype=None, out=None):
        """The running fold of `func` along `axis` (the first element is kept)."""
        self._binary("accumulate")
        _no_out(out, f"{self.__name__}.accumulate")
        if self._accumulate is not None:
            return self._accumulate(a, axis=axis, dtype=dtype)
        a = asarray_value(a)
        dtype = self._result_dtype(dtype_of(a), dtype_of(a)) if dtype is None else dtype
        a = a.astype(dtype)  # so the first element has the result's dtype too (as JAX)
        ax = canonicalize_axis(axis, _ndim(a))
        x = fnp.moveaxis(a, ax, 0)
        if _shape(x)[0] == 0:
            return a
        outs = [x[0]]
        for i in range(1, _shape(x)[0]):
            outs.append(self(outs[-1], x[i]).astype(dtype))
        return fnp.moveaxis(fnp.stack(outs), 0, ax)

    def at(self, a, indices, b=None, /, *, inplace=True):
        """A copy of `a` with `a[indices] = func(a[indices], b)`, applied once per index,
        in order, so repeated indices accumulate (JAX needs `inplace=False`)."""
        if inplace:
            raise ValueError(f"{self.__name__}.at: nanofn arrays are immutable; call "
                             f"{self.__name__}.at(..., inplace=False) and use the result")
        if self._at is not None:
            return self._at(a, indices, b)
        a = fnp.asarray(a)
        args = () if b is None else (asarray_value(b),)
        a = a.astype(self._result_dtype(dtype_of(a), *[dtype_of(v) for v in args]))  # JAX
        index = indices if isinstance(indices, tuple) else (indices,)
        if any(isinstance(i, Tracer) for i in index):
            raise NotImplementedError(f"{self.__name__}.at: traced indices need a built-in "
                                      "ufunc (add, multiply, minimum, maximum, subtract)")
        arrays = [np.asarray(i) for i in index if not isinstance(i, slice)]
        shape = np.broadcast_shapes(*[i.shape for i in arrays]) if arrays else ()
        if not shape:  # one position (or slices): a single update
            return a.at[indices].set(self(a[indices], *args))
        count = int(np.prod(shape))
        flat = [i if isinstance(i, slice) else np.broadcast_to(np.asarray(i), shape).ravel()
                for i in index]
        if args:  # one value per index position (the values' trailing axes are kept)
            v = args[0]
            v = fnp.broadcast_to(v, shape + tuple(_shape(v)[len(shape):]))
            args = (fnp.reshape(v, (count,) + tuple(_shape(v)[len(shape):])),)
        for k in range(count):  # in order, so repeated indices apply once each
            idx = tuple(i if isinstance(i, slice) else int(i[k]) for i in flat)
            a = a.at[idx].set(self(a[idx], *[v[k] for v in args]))
        return a

    def reduceat(self, a, indices, axis=0, dtype=None, out=None):
        """Reductions over the slices `indices[i]:indices[i+1]` along `axis` (numpy's rule:
        a non-increasing pair gives `a[indices[i]]`)."""
        self._binary("reduceat")
        _no_out(out, f"{self.__name__}.reduceat")
        if self._reduceat is not None:
            return self._reduceat(a, indices, axis=axis, dtype=dtype)
        a = asarray_value(a) if dtype is None else asarray_value(a, dtype)
        ax = canonicalize_axis(axis, _ndim(a))
        idx = np.asarray(indices).astype(int).reshape(-1)
        n = _shape(a)[ax]
        x = fnp.moveaxis(a, ax, 0)
        outs = []
        for k, i in enumerate(idx.tolist()):
            j = idx[k + 1] if k + 1 < len(idx) else n
            if not 0 <= i < n:
                raise ValueError(f"{self.__name__}.reduceat: index {i} is out of bounds for "
                                 f"an axis of size {n}")
            outs.append(self.reduce(x[i:j], axis=0) if i < j else x[i])
        return fnp.moveaxis(fnp.stack(outs), 0, ax)


def frompyfunc(func, /, nin, nout, *, identity=None):
    """Make a `ufunc` of `func` (which must use nanofn.numpy operations).

    Example:
        >>> import nanofn.numpy as fnp
        >>> hyp = fnp.frompyfunc(lambda a, b: fnp.sqrt(a * a + b * b), nin=2, nout=1)
        >>> hyp.reduce(fnp.array([3.0, 4.0, 12.0]))
        Array(13., dtype=float32)
    """
    return ufunc(func, nin, nout, identity=identity)


# ------------------------------------------------------------------------ built-in ufuncs


def _sum_reduce(f):
    return lambda a, axis=0, dtype=None, keepdims=False, initial=None, where=None: f(
        a, axis=axis, dtype=dtype, keepdims=keepdims, initial=initial, where=where)


def _extreme_reduce(f):
    def reduce(a, axis=0, dtype=None, keepdims=False, initial=None, where=None):
        a = asarray_value(a) if dtype is None else asarray_value(a, dtype)
        if initial is not None:  # in a's dtype, as JAX (a bool max stays bool)
            initial = fnp.asarray(initial).astype(dtype_of(a))
        return f(a, axis=axis, keepdims=keepdims, initial=initial, where=where)
    return reduce


def _logical_reduce(f):
    def reduce(a, axis=0, dtype=None, keepdims=False, initial=None, where=None):
        out = f(a, axis=axis, keepdims=keepdims, where=where)
        if initial is not None:
            out = (fnp.logical_and if f is fnp.all else fnp.logical_or)(out, initial)
        return out if dtype is None else out.astype(dtype)
    return reduce


def _cumulative(name):
    def accumulate(a, axis=0, dtype=None):
        from nanofn import ops
        a = asarray_value(a) if dtype is None else asarray_value(a, dtype)
        ax = canonicalize_axis(axis, _ndim(a))
        if name in ("cumsum", "cumprod"):
            return getattr(fnp, name)(a, axis=ax)
        return getattr(ops, name)(fnp.asarray(a), axis=ax)
    return accumulate


def _scatter(method, negate=False):
    def at(a, indices, b):
        if b is None:
            raise TypeError("at: this ufunc needs the values b")
        b = fnp.negative(b) if negate else b
        return getattr(fnp.asarray(a).at[indices], method)(b)
    return at


def _install():
    specs = {  # name: identity, reduce, accumulate, at
        "negative": (None, None, None, None),  # unary: only `at` (and calling it)
        "add": (0, _sum_reduce(fnp.sum), _cumulative("cumsum"), _scatter("add")),
        "multiply": (1, _sum_reduce(fnp.prod), _cumulative("cumprod"), _scatter("multiply")),
        "subtract": (None, None, None, _scatter("add", negate=True)),
        "maximum": (None, _extreme_reduce(fnp.max), _cumulative("cummax"), _scatter("max")),
        "minimum": (None, _extreme_reduce(fnp.min), _cumulative("cummin"), _scatter("min")),
        "logical_and": (True, _logical_reduce(fnp.all), None, None),
        "logical_or": (False, _logical_reduce(fnp.any), None, None),
        "logical_xor": (False, None, None, None),
        "bitwise_and": (-1, None, None, None),
        "bitwise_or": (0, None, None, None),
        "bitwise_xor": (0, None, None, None),
        "logaddexp": (-np.inf, None, None, None),
        "logaddexp2": (-np.inf, None, None, None),
    }
    for name, (identity, reduce, accumulate, at) in specs.items():
        fn = getattr(fnp, name)
        nin = 1 if name == "negative" else 2
        u = ufunc(fn, nin, 1, name=name, identity=identity, reduce=reduce,
                  accumulate=accumulate, at=at)
        for attr in ("outer", "reduce", "accumulate", "at", "reduceat"):
            setattr(fn, attr, getattr(u, attr))
        fn.nin, fn.nout, fn.nargs, fn.identity = nin, 1, nin, identity  # nargs: as JAX


_install()
