"""Saving policies for `checkpoint` (`jax.checkpoint_policies`), with JAX's names.

A policy is a function `policy(primitive, *avals, **params) -> bool` saying whether the
result of an equation may be saved for the backward pass (True) or must be recomputed.
`nanofn.checkpoint` accepts every one of them and, whatever the policy, saves only the
checkpointed function's inputs and recomputes the rest (the memory-lean end, what
`nothing_saveable` asks for): values and gradients are the same under every policy, only
the trade of memory for recomputation differs from JAX. The policies themselves answer as
JAX's do, so code that calls them (or combines them) behaves the same.

Example:
    >>> import nanofn, nanofn.numpy as fnp
    >>> from nanofn import checkpoint_policies as cp
    >>> layer = nanofn.checkpoint(lambda w, x: fnp.tanh(x @ w),
    ...                           policy=cp.dots_with_no_batch_dims_saveable)
    >>> nanofn.grad(lambda w: layer(w, fnp.ones((2, 3))).sum())(fnp.ones((3, 3))).shape
    (3, 3)
"""

from __future__ import annotations

from typing import Callable

__all__ = [
    "everything_saveable", "nothing_saveable", "dots_saveable", "checkpoint_dots",
    "dots_with_no_batch_dims_saveable", "checkpoint_dots_with_no_batch_dims",
    "save_anything_except_these_names", "save_any_names_but_these", "save_only_these_names",
    "save_from_both_policies",
]

_DOTS = ("dot_general",)


def _name(prim) -> str:
    return getattr(prim, "name", str(prim))


def everything_saveable(prim, *avals, **params) -> bool:
    """Every result may be saved."""
    return True


def nothing_saveable(prim, *avals, **params) -> bool:
    """No result is saved: everything is recomputed."""
    return False


def dots_saveable(prim, *avals, **params) -> bool:
    """Results of matrix products (`dot_general`) may be saved."""
    return _name(prim) in _DOTS


checkpoint_dots = dots_saveable


def dots_with_no_batch_dims_saveable(prim, *avals, **params) -> bool:
    """Results of matrix products without batch dimensions may be saved."""
    if _name(prim) not in _DOTS:
        return False
    dims = params.get("dimension_numbers")
    if dims is None:
        return True
    (_, _), (lhs_batch, rhs_batch) = dims
    return not lhs_batch and not rhs_batch


checkpoint_dots_with_no_batch_dims = dots_with_no_batch_dims_saveable


def save_anything_except_these_names(*names: str) -> Callable:
    """Everything may be saved except values named (by `checkpoint_name`) in `names`."""
    names_ = frozenset(names)

    def policy(prim, *avals, **params):
        return not (_name(prim) == "name" and params.get("name") in names_)
    return policy


save_any_names_but_these = save_anything_except_these_names


def save_only_these_names(*names: str) -> Callable:
    """Only values named (by `checkpoint_name`) in `names` may be saved."""
    names_ = frozenset(names)

    def policy(prim, *avals, **params):
        return _name(prim) == "name" and params.get("name") in names_
    return policy


def save_from_both_policies(policy_1: Callable, policy_2: Callable) -> Callable:
    """A result may be saved if either policy saves it."""
    def policy(prim, *avals, **params):
        return bool(policy_1(prim, *avals, **params) or policy_2(prim, *avals, **params))
    return policy
