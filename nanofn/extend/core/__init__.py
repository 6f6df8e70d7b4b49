"""The jaxpr IR and primitives you define, under JAX's names (`jax.extend.core`).

A `Primitive` made here gets its rules the JAX way: `def_impl`, `def_abstract_eval`,
and the registries of `nanofn.interpreters.ad` and `nanofn.interpreters.batching`
(`ad.primitive_jvps[p] = rule`, `ad.defjvp`, `ad.deflinear`,
`ad.primitive_transposes[p] = rule`, `batching.primitive_batchers[p] = rule`). A missing
rule is an error that names the primitive and the rule to give. See "Defining your own
primitives" in docs/design.md.

The IR classes are nanofn's own (`make_jaxpr` returns them); their constructors take
nanofn's argument order (`Jaxpr(constvars, invars, eqns, outvars)`,
`JaxprEqn(primitive, invars, params, outvars)`, `Literal(val)`): build equations with
`new_jaxpr_eqn`, which takes JAX's order. Effects, source information and debug
information are not kept.

Example:
    >>> import nanofn
    >>> from nanofn.extend import core
    >>> closed = nanofn.make_jaxpr(lambda x: x * 2.0)(1.0)
    >>> [eqn.primitive.name for eqn in closed.jaxpr.eqns]
    ['mul']
    >>> isinstance(closed.jaxpr.eqns[0].invars[1], core.Literal)
    True
"""

from __future__ import annotations

import functools
import itertools
from typing import Any, Callable

import numpy as np

from nanofn import _core
from nanofn._core import ClosedJaxpr, Eqn, Jaxpr, Literal, ShapedArray, Var

__all__ = ["Primitive", "Literal", "Jaxpr", "ClosedJaxpr", "JaxprEqn", "Var", "jaxpr_as_fun",
           "new_jaxpr_eqn", "check_jaxpr", "mapped_aval", "unmapped_aval",
           "primal_dtype_to_tangent_dtype", "valid_jaxtype"]

JaxprEqn = Eqn
"""An equation of a jaxpr, `outvars = primitive[params] invars` (nanofn's `Eqn`; its
constructor takes `(primitive, invars, params, outvars)`: see `new_jaxpr_eqn`)."""

_ids = itertools.count()


class _PrimitiveMeta(type):
    """`isinstance(p, Primitive)` holds for nanofn's own primitives too (`lax.exp_p`, ...),
    as every primitive is a `jax.extend.core.Primitive` in JAX."""

    def __instancecheck__(cls, x):
        return isinstance(x, _core.Primitive)


def _missing_impl(name):
    def impl(*args, **params):
        raise NotImplementedError(f"primitive '{name}' has no evaluation rule: give one with "
                                  f"{name}_p.def_impl(f)")
    return impl


def _missing_abstract_eval(prim):
    def abstract_eval(*avals, **params):
        if getattr(prim.impl, "_nanofn_missing", False):  # called for an eager error
            raise NotImplementedError(
                f"primitive '{prim.name}' has no evaluation rule and no abstract evaluation "
                f"rule: give them with {prim.name}_p.def_impl(f) and "
                f"{prim.name}_p.def_abstract_eval(f)")
        raise NotImplementedError(
            f"primitive '{prim.name}' has no abstract evaluation rule: jit, make_jaxpr "
            f"and eval_shape need one; give it with {prim.name}_p.def_abstract_eval(f), "
            "f(*avals, **params) returning a ShapedArray (a list of them with "
            "multiple_results)")
    return abstract_eval


class Primitive(_core.Primitive, metaclass=_PrimitiveMeta):
    """A primitive operation you define, with JAX's interface (`jax.extend.core.Primitive`).

    Give it an evaluation rule (`def_impl`, computing on numpy arrays) and a shape rule
    (`def_abstract_eval`, returning a `ShapedArray`), and its transformation rules
    through the registries of `nanofn.interpreters.ad` and `nanofn.interpreters.batching`.
    Every transformation then works on it: `jit`, `vmap`, `jvp`, and `grad`, whose rule is
    derived from the forward rule (see "Defining your own primitives" in docs/design.md).
    A rule that is missing raises `NotImplementedError` naming the primitive and the rule.

    Several primitives may share a name (unlike nanofn's own, which are registered by
    name). Set `multiple_results = True` for a primitive that returns a list.

    Its nanofn rule slots (`jvp`, `vjp_joint`, `batch`: docs/design.md, section 3) hold
    adapters that look the JAX-style rules up when called; assigning one of them a rule
    written in nanofn's conventions replaces that lookup.

    Example:
        >>> import numpy as np
        >>> import nanofn
        >>> from nanofn import core
        >>> from nanofn.extend.core import Primitive
        >>> twice_p = Primitive("twice")
        >>> _ = twice_p.def_impl(lambda x: 2 * x)  # on numpy arrays
        >>> _ = twice_p.def_abstract_eval(lambda x: core.ShapedArray(x.shape, x.dtype))
        >>> nanofn.jit(lambda x: twice_p.bind(x) + 1.0)(np.float32(3.0))
        Array(7., dtype=float32)
    """

    def __init__(self, name: str, *, multiple_results: bool = False):
        # nanofn's primitives are registered by name; one defined by the user is not (JAX
        # lets two primitives share a name): register it under a unique key, then take it out
        key = f"{name}#user{next(_ids)}"
        super().__init__(key, multiple_results=multiple_results)
        del _core.registry[key]
        self.name = name
        self.impl = _missing_impl(name)
        self.impl._nanofn_missing = True
        self.abstract_eval = _missing_abstract_eval(self)
        from nanofn.interpreters import ad, batching  # they import this module
        self.jvp = functools.partial(ad._jvp_rule, self)
        self.vjp_joint = functools.partial(ad._vjp_rule, self)
        self.batch = functools.partial(batching._batch_rule, self)


def _is_user_primitive(prim) -> bool:
    """Whether `prim` was made with this module's `Primitive` (not one of nanofn's own)."""
    return Primitive in type(prim).__mro__


def jaxpr_as_fun(closed_jaxpr: ClosedJaxpr, *args) -> Callable:
    """A function that runs `closed_jaxpr` (`jax.extend.core.jaxpr_as_fun`).

    The function takes the jaxpr's inputs (after any `args` given here) and returns the
    list of its outputs; it binds each equation, so it can itself be transformed.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn.extend.core import jaxpr_as_fun
        >>> closed = nanofn.make_jaxpr(lambda x, y: (x * y, x + y))(2.0, 3.0)
        >>> jaxpr_as_fun(closed)(fnp.float32(2.0), fnp.float32(5.0))
        [Array(10., dtype=float32), Array(7., dtype=float32)]
    """
    def run(*more):
        return _core.eval_jaxpr(closed_jaxpr.jaxpr, closed_jaxpr.consts, *args, *more)
    return run


def new_jaxpr_eqn(invars, outvars, primitive, params, effects=None, source_info=None,
                  ctx=None) -> Eqn:
    """An equation `outvars = primitive[params] invars`, with JAX's argument order
    (`jax.extend.core.new_jaxpr_eqn`). `effects`, `source_info` and `ctx` are accepted
    and not kept.

    Example:
        >>> import nanofn
        >>> from nanofn.extend.core import Jaxpr, Var, new_jaxpr_eqn
        >>> from nanofn.core import ShapedArray
        >>> a, b = Var(ShapedArray((), "float32")), Var(ShapedArray((), "float32"))
        >>> eqn = new_jaxpr_eqn([a], [b], nanofn.lax.sin_p, {})
        >>> print(Jaxpr([], [a], [eqn], [b]))
        { lambda ; a:f32[]. let
            b:f32[] = sin a
          in (b) }
    """
    del effects, source_info, ctx  # unused: nanofn keeps none of them
    return Eqn(primitive, list(invars), dict(params), list(outvars))


def check_jaxpr(jaxpr) -> None:
    """Check that a jaxpr is well typed: every variable is defined before it is used and
    every equation's outputs have the types its primitive's shape rule gives
    (`jax.extend.core.check_jaxpr`). Raises `TypeError` otherwise.

    Example:
        >>> import nanofn
        >>> from nanofn.extend.core import check_jaxpr
        >>> check_jaxpr(nanofn.make_jaxpr(lambda x: x + 1.0)(1.0).jaxpr)
    """
    _core.typecheck_jaxpr(jaxpr.jaxpr if isinstance(jaxpr, ClosedJaxpr) else jaxpr)


def mapped_aval(size: int, axis: int | None, aval: ShapedArray) -> ShapedArray:
    """The abstract value of one example of `aval`, mapped over `axis` of length `size`
    (`jax.extend.core.mapped_aval`); `axis=None` leaves `aval` unchanged.

    Example:
        >>> from nanofn.extend.core import mapped_aval
        >>> from nanofn.core import ShapedArray
        >>> mapped_aval(4, 0, ShapedArray((4, 3), "float32"))
        ShapedArray(float32[3])
    """
    if axis is None:
        return aval
    shape = list(aval.shape)
    if shape[axis] != size:
        raise ValueError(f"mapped_aval: axis {axis} of {aval.str_short()} has size "
                         f"{shape[axis]}, not {size}")
    del shape[axis]
    return aval.update(shape=shape)


def unmapped_aval(size: int, axis: int | None, aval: ShapedArray,
                  explicit_mesh_axis=None) -> ShapedArray:
    """The abstract value of `size` examples of `aval` stacked along `axis`
    (`jax.extend.core.unmapped_aval`); `axis=None` leaves `aval` unchanged.
    `explicit_mesh_axis` is accepted and unused.

    Example:
        >>> from nanofn.extend.core import unmapped_aval
        >>> from nanofn.core import ShapedArray
        >>> unmapped_aval(4, 1, ShapedArray((3,), "float32"))
        ShapedArray(float32[3,4])
    """
    del explicit_mesh_axis  # unused: no sharding
    if axis is None:
        return aval
    shape = list(aval.shape)
    shape.insert(axis, size)
    return aval.update(shape=shape)


def primal_dtype_to_tangent_dtype(dtype) -> np.dtype:
    """The dtype of the tangents of values of `dtype`: the same for inexact dtypes,
    `float0` (no data) for integers and booleans
    (`jax.extend.core.primal_dtype_to_tangent_dtype`).

    Example:
        >>> from nanofn.extend.core import primal_dtype_to_tangent_dtype
        >>> primal_dtype_to_tangent_dtype("float32"), primal_dtype_to_tangent_dtype("int32")
        (dtype('float32'), dtype([('float0', 'V')]))
    """
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.inexact):
        return dtype
    from nanofn._dtypes_float0 import float0
    return float0


def valid_jaxtype(x: Any) -> bool:
    """Whether `x` is a value nanofn computes with: an array, a traced value, a numpy
    value or a Python scalar (`jax.extend.core.valid_jaxtype`).

    Example:
        >>> from nanofn.extend.core import valid_jaxtype
        >>> valid_jaxtype(1.0), valid_jaxtype("a")
        (True, False)
    """
    return _core.is_array_like(x)
