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

from typing import Callable, NamedTuple

import numpy as np

__all__ = [
    "checkpoint_dots", "checkpoint_dots_with_no_batch_dims", "dots_saveable",
    "dots_with_no_batch_dims_saveable", "everything_saveable", "nothing_saveable",
    "offload_dot_with_no_batch_dims", "save_and_offload_only_these_names",
    "save_any_names_but_these", "save_anything_except_these_names", "save_from_both_policies",
    "save_only_these_names",
]

_DOTS = ("dot_general", "conv_general_dilated")  # what dots_saveable saves, as in JAX


def _name(prim) -> str:
    return getattr(prim, "name", str(prim))


def everything_saveable(prim, *avals, **params) -> bool:
    """Every result may be saved."""
    return True


def nothing_saveable(prim, *avals, **params) -> bool:
    """No result is saved: everything is recomputed."""
    return False


def dots_saveable(prim, *avals, **params) -> bool:
    """Results of matrix products and convolutions (`dot_general`,
    `conv_general_dilated`) may be saved."""
    return _name(prim) in _DOTS


checkpoint_dots = dots_saveable


def dots_with_no_batch_dims_saveable(prim, *avals, **params) -> bool:
    """Results of matrix products without batch dimensions may be saved."""
    if _name(prim) != "dot_general":
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


def save_any_names_but_these(*names: str) -> Callable:
    """Only values named by `checkpoint_name` may be saved, except those in `names`.

    Example:
        >>> from nanofn import checkpoint_policies as cp
        >>> policy = cp.save_any_names_but_these("a")
        >>> policy("name", name="b"), policy("name", name="a")  # a primitive or its name
        (True, False)
    """
    names_ = frozenset(names)

    def policy(prim, *avals, **params):
        return _name(prim) == "name" and params.get("name") not in names_
    return policy


def save_only_these_names(*names: str) -> Callable:
    """Only values named (by `checkpoint_name`) in `names` may be saved."""
    names_ = frozenset(names)

    def policy(prim, *avals, **params):
        return _name(prim) == "name" and params.get("name") in names_
    return policy


def save_from_both_policies(policy_1: Callable, policy_2: Callable) -> Callable:
    """A result may be saved if either policy saves it (both must answer True or False)."""
    def policy(prim, *avals, **params):
        out1, out2 = policy_1(prim, *avals, **params), policy_2(prim, *avals, **params)
        if not (isinstance(out1, (bool, np.bool_)) and isinstance(out2, (bool, np.bool_))):
            msg = (f"save_from_both_policies: both policies must return a bool, got "
                   f"{out1!r} and {out2!r}; write a custom policy instead")
            raise ValueError(msg)  # noqa: TRY004 - the error JAX raises here
        return bool(out1 or out2)
    return policy


class _Decision:
    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return self._name


Saveable = _Decision("Saveable")  # a policy's answer: keep the value for the backward pass
Recompute = _Decision("Recompute")  # a policy's answer: compute the value again


class Offloadable(NamedTuple):
    """A policy's answer: keep the value, moved from memory `src` to `dst` (on a CPU
    there is one memory, so this is the same as `Saveable`)."""
    src: str
    dst: str


def save_and_offload_only_these_names(*, names_which_can_be_saved,
                                      names_which_can_be_offloaded, offload_src,
                                      offload_dst) -> Callable:
    """Like `save_only_these_names`, but values named in `names_which_can_be_offloaded`
    are offloaded (to host memory, in JAX) rather than recomputed.

    Example:
        >>> from nanofn import checkpoint_policies as cp
        >>> policy = cp.save_and_offload_only_these_names(
        ...     names_which_can_be_saved=["a"], names_which_can_be_offloaded=["b"],
        ...     offload_src="device", offload_dst="pinned_host")
        >>> policy("name", name="a"), policy("name", name="b"), policy("name", name="c")
        (Saveable, Offloadable(src='device', dst='pinned_host'), Recompute)
    """
    saved, offloaded = set(names_which_can_be_saved), set(names_which_can_be_offloaded)
    if saved & offloaded:
        raise ValueError("save_and_offload_only_these_names: a name cannot be both saved and "
                         f"offloaded, got {sorted(saved & offloaded)} in both lists")

    def policy(prim, *avals, **params):
        if _name(prim) == "name" and params.get("name") in saved:
            return Saveable
        if _name(prim) == "name" and params.get("name") in offloaded:
            return Offloadable(offload_src, offload_dst)
        return Recompute
    return policy


def offload_dot_with_no_batch_dims(offload_src, offload_dst) -> Callable:
    """Like `dots_with_no_batch_dims_saveable`, but such products are offloaded (to host
    memory, in JAX) rather than saved.

    Example:
        >>> from nanofn import checkpoint_policies as cp
        >>> from nanofn.ops._base import dot_general_p
        >>> cp.offload_dot_with_no_batch_dims("device", "pinned_host")(
        ...     dot_general_p, dimension_numbers=(((1,), (0,)), ((), ())))
        Offloadable(src='device', dst='pinned_host')
    """
    def policy(prim, *avals, **params):
        if dots_with_no_batch_dims_saveable(prim, *avals, **params):
            return Offloadable(offload_src, offload_dst)
        return Recompute
    return policy
