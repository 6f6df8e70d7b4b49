"""`custom_gradient` (jax.custom_gradient): a function that returns its value and its VJP.

`fun(*args)` returns `(value, vjp_rule)`, where `vjp_rule(ct)` maps a cotangent of `value`
to a tuple of cotangents, one per positional argument. The rule is a Python closure over
values of the forward pass, which `custom_vjp` cannot keep as residuals (they must be
arrays). So the forward rule closure-converts it: the closure is traced once at a zero
cotangent into a function of the cotangent and the arrays it closed over, and those arrays
travel as residuals inside a small pytree whose static part is the converted function.
"""

from __future__ import annotations

from typing import Callable

from nanofn._closure import closure_convert
from nanofn._custom import custom_vjp
from nanofn.tree_util import register_pytree_node, tree_map

__all__ = ["custom_gradient"]


class _Rule:
    """A closure-converted VJP rule: the converted function (static) and the arrays it
    closed over (the residuals)."""

    def __init__(self, converted, consts):
        self.converted = converted
        self.consts = tuple(consts)

    def __call__(self, ct):
        return self.converted(ct, *self.consts)


register_pytree_node(_Rule, lambda r: (r.consts, r.converted),
                     lambda converted, consts: _Rule(converted, consts))


def custom_gradient(fun: Callable) -> Callable:
    """Define a function's gradient by returning it from the function (jax.custom_gradient).

    `fun(*args)` returns `(value, vjp_rule)`; `vjp_rule(ct)` returns a tuple with one
    cotangent per positional argument of `fun` (a single argument's cotangent may also be
    returned bare). The result differentiates with that rule under `grad`, `vjp`, `jit`
    and `vmap`, and to higher orders where the rule is itself differentiable.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> @nanofn.custom_gradient
        ... def clipped_identity(x):
        ...     return x, lambda g: (fnp.clip(g, -1.0, 1.0),)
        >>> nanofn.grad(lambda x: 5.0 * clipped_identity(x))(2.0)
        Array(1., dtype=float32)
    """

    name = getattr(fun, "__name__", "custom_gradient")

    def value_only(*args):
        value, _ = fun(*args)
        return value

    def fwd(*args):
        from nanofn import numpy as fnp
        value, rule = fun(*args)
        if not callable(rule):
            raise TypeError(f"custom_gradient: {name} must return (value, vjp_rule) with a "
                            f"callable rule, got a {type(rule).__name__}")
        zero_ct = tree_map(fnp.zeros_like, value)
        converted, consts = closure_convert(_tupled(rule, len(args)), zero_ct)
        return value, _Rule(converted, consts)

    def bwd(rule, ct):
        return rule(ct)

    value_only.__name__ = value_only.__qualname__ = name
    value_only.__doc__ = getattr(fun, "__doc__", None)
    wrapped = custom_vjp(value_only)
    wrapped.defvjp(fwd, bwd)
    return wrapped


def _tupled(rule, nargs):
    """The rule, returning a tuple even when it returns one argument's cotangent bare."""
    def tupled(ct):
        cts = rule(ct)
        if not isinstance(cts, tuple):  # one argument's cotangent, returned bare
            cts = (cts,)
        if len(cts) != nargs:
            raise ValueError(f"custom_gradient: the VJP rule returned {len(cts)} cotangents "
                             f"for a function of {nargs} positional arguments")
        return tuple(cts)
    return tupled
