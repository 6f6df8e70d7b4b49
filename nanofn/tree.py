"""Pytree functions under the short names of ``jax.tree``.

Each name here but ``static`` is the same function as its ``tree_``-prefixed twin in
``nanofn.tree_util`` (``nanofn.tree.map is nanofn.tree_util.tree_map``), whose docstring
describes it. Example::

    >>> from nanofn import tree
    >>> tree.map(lambda x: 2 * x, {'w': 1.0, 'b': (2.0, 3.0)})
    {'b': (4.0, 6.0), 'w': 2.0}
    >>> tree.leaves([1, None, (2, 3)])
    [1, 2, 3]
"""

from nanofn._tree import (
    static,
    tree_all as all,
    tree_broadcast as broadcast,
    tree_flatten as flatten,
    tree_flatten_with_path as flatten_with_path,
    tree_leaves as leaves,
    tree_leaves_with_path as leaves_with_path,
    tree_map as map,
    tree_map_with_path as map_with_path,
    tree_reduce as reduce,
    tree_reduce_associative as reduce_associative,
    tree_structure as structure,
    tree_transpose as transpose,
    tree_unflatten as unflatten,
)

__all__ = [
    "all", "broadcast", "flatten", "flatten_with_path", "leaves", "leaves_with_path",
    "map", "map_with_path", "reduce", "reduce_associative", "static", "structure",
    "transpose", "unflatten",
]
