"""optax's older `optax.tree_utils` names (`tree_add`, `tree_norm`, ...): each is the
`nanofn.optim.tree` function of the same name without the `tree_` prefix. `NamedTupleKey`,
the path entry of `tree_get_all_with_path`, keeps its own name, as in optax. The names
optax deprecated there (`tree_l2_norm`, `tree_scalar_mul`, ...) still work and warn, as
optax's do.

Example:
    >>> import nanofn.numpy as jnp
    >>> from nanofn.optim import tree_utils
    >>> tree_utils.tree_add({"a": jnp.array(1.0)}, {"a": jnp.array(2.0)})
    {'a': Array(3., dtype=float32)}
"""

from nanofn.optim import tree as _tree

NamedTupleKey = _tree.NamedTupleKey
__all__ = ["NamedTupleKey"] + [f"tree_{name}" for name in _tree.__all__]
globals().update({f"tree_{name}": getattr(_tree, name) for name in _tree.__all__})


def _deprecated():
    import functools

    return {"tree_scalar_mul": ("tree_scale", _tree.scale),
            "tree_add_scalar_mul": ("tree_add_scale", _tree.add_scale),
            "tree_l1_norm": ("tree_norm(..., ord=1)", functools.partial(_tree.norm, ord=1)),
            "tree_l2_norm": ("tree_norm", functools.partial(_tree.norm, ord=2)),
            "tree_linf_norm": ("tree_norm(..., ord='inf')",
                               functools.partial(_tree.norm, ord="inf"))}


def __getattr__(name):
    moved = _deprecated().get(name)
    if moved is None:
        raise AttributeError(f"module 'nanofn.optim.tree_utils' has no attribute {name!r}")
    import warnings
    warnings.warn(f"nanofn.optim.tree_utils.{name} is deprecated, as optax's is: use "
                  f"nanofn.optim.tree_utils.{moved[0]}", DeprecationWarning, stacklevel=2)
    return moved[1]
