"""`closure_convert`: make the values a function closes over into explicit arguments.

A `custom_vjp` rule (and any higher-order function that differentiates its argument, like
`odeint`) must see every array a function depends on, or a gradient with respect to a
closed-over array would be silently dropped. `closure_convert` traces the function once at
example arguments, and returns it rewritten as a function of its arguments followed by the
floating-point values (and the traced values of enclosing transformations) it closed over.
"""

from __future__ import annotations

import numpy as np

from nanofn import _core as core
from nanofn._core import Tracer, get_aval
from nanofn.tree_util import tree_flatten, tree_unflatten

__all__ = ["closure_convert"]


def closure_convert(fun, *example_args):
    """Closure-convert `fun` for use with `custom_vjp` (jax.closure_convert).

    Args:
        fun: a function of pytrees of arrays returning a pytree of arrays.
        *example_args: arguments (or arrays of the same shapes and dtypes) to trace `fun`
            at; later calls must match their structure, shapes and dtypes.

    Returns:
        `(converted, consts)`: `converted(*args, *consts)` computes `fun(*args)`, and
        `consts` lists the floating-point arrays and traced values `fun` closed over, in
        the order `converted` takes them.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> w = fnp.array([2.0, 3.0])
        >>> f, consts = nanofn.closure_convert(lambda x: x * w, fnp.ones(2))
        >>> len(consts), f(fnp.ones(2), *consts)
        (1, Array([2., 3.], dtype=float32))
    """
    flat, in_tree = tree_flatten(example_args)
    avals = [get_aval(x) for x in flat]
    out_trees = []

    def flat_fun(*xs):
        leaves, tree = tree_flatten(fun(*tree_unflatten(in_tree, list(xs))))
        out_trees.append(tree)
        return leaves

    # every closed-over value a constvar: a scalar float written inline as a literal
    # would not be hoisted, and a gradient with respect to it would be lost
    closed = core.trace_to_jaxpr(flat_fun, avals, inline_scalars=False)
    jaxpr, consts = closed.jaxpr, list(closed.consts)
    hoist = [i for i, c in enumerate(consts)
             if isinstance(c, Tracer) or np.issubdtype(get_aval(c).dtype, np.inexact)]
    n_args = len(example_args)

    def converted(*args_and_consts):
        args, hoisted = args_and_consts[:n_args], args_and_consts[n_args:]
        leaves, tree = tree_flatten(tuple(args))
        if tree != in_tree:
            raise TypeError(f"closure_convert: {getattr(fun, '__name__', 'the function')} was "
                            f"converted for arguments of structure {in_tree}, got {tree}")
        if len(hoisted) != len(hoist):
            raise TypeError(f"closure_convert: expected {len(hoist)} constants after the "
                            f"{n_args} arguments, got {len(hoisted)}")
        vals = list(consts)
        for i, c in zip(hoist, hoisted):
            vals[i] = c
        return tree_unflatten(out_trees[0], core.eval_jaxpr(jaxpr, vals, *leaves))

    return converted, [consts[i] for i in hoist]
