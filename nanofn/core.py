"""Abstract values, traces and the jaxpr IR, under JAX's names (`jax.core`).

Besides the names `jax.core` has today (`ShapedArray`, `Trace`, `Tracer`, `eval_jaxpr`,
...), this module keeps the names older JAX had here and that tutorials still use
(`Literal`, `Jaxpr`, `ClosedJaxpr`, `JaxprEqn`, `Var`, `Primitive`, `jaxpr_as_fun`),
the same objects as in `nanofn.extend.core`. nanofn has one kind of abstract value, so
`AbstractValue` is `ShapedArray`; shapes are concrete, so `max_dim` and `min_dim` are
`max` and `min`.

Example:
    >>> import nanofn, nanofn.numpy as fnp
    >>> from nanofn import core
    >>> closed = nanofn.make_jaxpr(lambda x: fnp.exp(fnp.tanh(x)))(fnp.ones(3))
    >>> [type(v) is core.Var for v in closed.jaxpr.invars]
    [True]
    >>> core.eval_jaxpr(closed.jaxpr, closed.literals, fnp.zeros(3))
    [Array([1., 1., 1.], dtype=float32)]
"""

from __future__ import annotations

from typing import Any, Union

from nanofn._core import ShapedArray, Trace, Tracer, compile_time_eval as _compile_time_eval
from nanofn._core import eval_jaxpr
from nanofn._jax_api import ensure_compile_time_eval
from nanofn.extend.core import (ClosedJaxpr, Jaxpr, JaxprEqn, Literal, Primitive, Var,
                                jaxpr_as_fun)

__all__ = ["AbstractValue", "Atom", "ParamDict", "ShapedArray", "Trace", "Tracer", "Value",
           "ensure_compile_time_eval", "eval_context", "eval_jaxpr", "max_dim", "min_dim",
           "Literal", "Jaxpr", "ClosedJaxpr", "JaxprEqn", "Var", "Primitive", "jaxpr_as_fun"]

AbstractValue = ShapedArray
"""The type of abstract values: `ShapedArray`, nanofn's one kind."""
Atom = Union[Var, Literal]
"""What an equation reads: a variable or an inline constant (`Literal`)."""
ParamDict = dict[str, Any]
"""The type of an equation's params: keyword arguments of `bind`, hashable values."""
Value = Any
"""The type of a value a jaxpr computes with (an array, a tracer, a numpy value)."""


def eval_context():
    """Context manager: inside it, operations on concrete values compute at once, even
    while a function is being traced by `jit` (the same as `ensure_compile_time_eval`).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn import core
        >>> def f(x):
        ...     with core.eval_context():
        ...         n = int(fnp.sum(fnp.arange(3)))
        ...     return x * n
        >>> nanofn.jit(f)(2.0)
        Array(6., dtype=float32)
    """
    return _compile_time_eval()


def max_dim(d1: int, d2: int) -> int:
    """The larger of two dimension sizes (nanofn's shapes are concrete integers).

    Example:
        >>> from nanofn import core
        >>> core.max_dim(3, 5)
        5
    """
    return max(d1, d2)


def min_dim(d1: int, d2: int) -> int:
    """The smaller of two dimension sizes (nanofn's shapes are concrete integers).

    Example:
        >>> from nanofn import core
        >>> core.min_dim(3, 5)
        3
    """
    return min(d1, d2)
