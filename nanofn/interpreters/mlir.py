"""Lowering rules (`jax.interpreters.mlir`): accepted and ignored.

JAX compiles each primitive to XLA through the lowering rule registered with
`register_lowering`. nanofn has no XLA: `jit` runs a primitive's `impl` (its
`def_impl` rule) on numpy arrays. So `register_lowering` accepts a rule and does nothing
with it, and `lower_fun` returns a rule that is never called: code written for JAX runs
unchanged, and the primitive's evaluation rule is what computes it.

Example:
    >>> from nanofn.extend.core import Primitive
    >>> from nanofn.interpreters import mlir
    >>> p = Primitive("lowered")
    >>> mlir.register_lowering(p, lambda ctx, x: [x], platform="cpu")
"""

from __future__ import annotations

from typing import Callable

from nanofn import _core

__all__ = ["register_lowering", "lower_fun"]


def register_lowering(prim, rule: Callable, platform: str | None = None, inline: bool = True,
                      cacheable: bool = True) -> None:
    """Accept a lowering rule for `prim` and ignore it: nanofn has no XLA, and `jit` runs
    the primitive's evaluation rule (`def_impl`) instead. The arguments are checked only
    for their types.

    Example:
        >>> from nanofn.extend.core import Primitive
        >>> from nanofn.interpreters import mlir
        >>> mlir.register_lowering(Primitive("ignored"), lambda ctx, *args: args)
    """
    del platform, inline, cacheable  # unused: nothing is lowered
    if not isinstance(prim, _core.Primitive):
        raise TypeError(f"register_lowering: expected a Primitive, got {type(prim).__name__}")
    if not callable(rule):
        raise TypeError(f"register_lowering: the rule must be callable, got "
                        f"{type(rule).__name__}")


def lower_fun(fun: Callable, multiple_results: bool = True) -> Callable:
    """A lowering rule made from `fun`, for `register_lowering`, which ignores it (nanofn
    has no XLA). The rule raises `NotImplementedError` if called.

    Example:
        >>> from nanofn.extend.core import Primitive
        >>> from nanofn.interpreters import mlir
        >>> rule = mlir.lower_fun(lambda x: x * 2, multiple_results=False)
        >>> mlir.register_lowering(Primitive("doubled"), rule)
    """
    del multiple_results  # unused: nothing is lowered

    def rule(ctx, *args, **params):
        raise NotImplementedError(
            f"nanofn has no XLA lowering: {getattr(fun, '__name__', 'fun')} is run by the "
            "primitive's evaluation rule (def_impl), not lowered")
    return rule
