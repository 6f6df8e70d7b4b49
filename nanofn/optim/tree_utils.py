"""optax's older `optax.tree_utils` names (`tree_add`, `tree_norm`, ...): each is the
`nanofn.optim.tree` function of the same name without the `tree_` prefix. `NamedTupleKey`,
the path entry of `tree_get_all_with_path`, keeps its own name, as in optax.

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
