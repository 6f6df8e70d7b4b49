"""Arithmetic on pytrees of arrays, with optax.tree's names (``optax.tree.add``, ...).

Every function takes whole pytrees and works leaf by leaf; reductions (``sum``, ``norm``,
``vdot``, ``max``) return one scalar for the whole tree. ``None`` leaves stay ``None``
in the moment helpers, as in optax, so masked states pass through. Complex leaves follow
optax: ``norm`` and ``update_moment_per_elem_norm`` use magnitudes ``|x|`` (``|x|^2`` is
``real(x * conj(x))``), and ``vdot`` conjugates its first argument.

Example:
    >>> import nanofn.numpy as jnp
    >>> from nanofn.optim import tree
    >>> a = {"w": jnp.array([1.0, 2.0]), "b": jnp.array(3.0)}
    >>> print(float(tree.norm(a, squared=True)), float(tree.vdot(a, a)))
    14.0 14.0
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import operator
from typing import Any, Callable, Optional

import numpy as np

import nanofn.numpy as jnp
from nanofn import tree_util
from nanofn.optim._base import abs_sq, bias_factor

__all__ = [
    "add", "add_scale", "allclose", "batch_shape", "bias_correction", "cast", "cast_like",
    "clip", "conj", "div", "dtype", "full_like", "get", "get_all_with_path", "map_params",
    "max", "min",
    "mul", "norm", "ones_like", "random_like", "real", "scale", "set", "size",
    "split_key_like", "sub", "sum", "unwrap_random_key_data",
    "update_infinity_moment", "update_moment", "update_moment_per_elem_norm", "vdot",
    "where", "zeros_like",
]

_map = tree_util.tree_map


def _check_same(where: str, x, *others):
    treedef = tree_util.tree_structure(x)
    for i, other in enumerate(others):
        other_def = tree_util.tree_structure(other)
        if other_def != treedef:
            raise ValueError(f"optim.tree.{where}: argument {i + 2} has structure {other_def}, "
                             f"but the first argument has {treedef}; give trees of one structure.")


def add(tree_x: Any, tree_y: Any, *other_trees: Any) -> Any:
    """Leafwise sum of two or more trees of one structure.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.add({"a": jnp.array(1.0)}, {"a": jnp.array(2.0)}, {"a": jnp.array(3.0)})
        {'a': Array(6., dtype=float32)}
    """
    _check_same("add", tree_x, tree_y, *other_trees)
    return _map(lambda *xs: functools.reduce(operator.add, xs), tree_x, tree_y, *other_trees)


def sub(tree_x: Any, tree_y: Any) -> Any:
    """Leafwise ``tree_x - tree_y``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.sub([jnp.array(3.0)], [jnp.array(1.0)])
        [Array(2., dtype=float32)]
    """
    _check_same("sub", tree_x, tree_y)
    return _map(operator.sub, tree_x, tree_y)


def mul(tree_x: Any, tree_y: Any) -> Any:
    """Leafwise ``tree_x * tree_y``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.mul([jnp.array(3.0)], [jnp.array(2.0)])
        [Array(6., dtype=float32)]
    """
    _check_same("mul", tree_x, tree_y)
    return _map(operator.mul, tree_x, tree_y)


def div(tree_x: Any, tree_y: Any) -> Any:
    """Leafwise ``tree_x / tree_y``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.div([jnp.array(3.0)], [jnp.array(2.0)])
        [Array(1.5, dtype=float32)]
    """
    _check_same("div", tree_x, tree_y)
    return _map(operator.truediv, tree_x, tree_y)


def scale(scalar, tree: Any) -> Any:
    """Multiplies every leaf by ``scalar``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.scale(2.0, {"a": jnp.array([1.0, 2.0])})
        {'a': Array([2., 4.], dtype=float32)}
    """
    return _map(lambda x: scalar * x, tree)


def add_scale(tree_x: Any, scalar, tree_y: Any) -> Any:
    """Leafwise ``tree_x + scalar * tree_y``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.add_scale([jnp.array(1.0)], 0.5, [jnp.array(4.0)])
        [Array(3., dtype=float32)]
    """
    _check_same("add_scale", tree_x, tree_y)
    return _map(lambda x, y: x + scalar * y, tree_x, tree_y)


def vdot(tree_x: Any, tree_y: Any):
    """The inner product of two trees: the sum over leaves of ``vdot(x, y)``.

    As ``numpy.vdot``, complex leaves of ``tree_x`` are conjugated (``sum(conj(x) * y)``).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.vdot([jnp.array([1.0, 2.0])], [jnp.array([3.0, 4.0])])
        Array(11., dtype=float32)
    """
    _check_same("vdot", tree_x, tree_y)
    xs, ys = tree_util.tree_leaves(tree_x), tree_util.tree_leaves(tree_y)
    parts = [jnp.vdot(x, y) for x, y in zip(xs, ys)]
    return functools.reduce(operator.add, parts) if parts else jnp.asarray(0.0)


def sum(tree: Any, associative_reduction: bool = False):  # noqa: A001 (optax's name)
    """The sum of all entries of all leaves.

    ``associative_reduction`` is accepted for optax compatibility; the order of the
    additions does not change the meaning.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.sum({"a": jnp.array([1.0, 2.0]), "b": jnp.array(3.0)})
        Array(6., dtype=float32)
    """
    del associative_reduction  # unused
    parts = [jnp.sum(x) for x in tree_util.tree_leaves(tree)]
    return functools.reduce(operator.add, parts) if parts else jnp.asarray(0)


def max(tree: Any):  # noqa: A001 (optax's name)
    """The largest entry over all leaves.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.max({"a": jnp.array([1.0, 5.0]), "b": jnp.array(3.0)})
        Array(5., dtype=float32)
    """
    leaves = tree_util.tree_leaves(tree)
    if not leaves:
        return jnp.asarray(-np.inf)
    return functools.reduce(jnp.maximum, [jnp.max(x) for x in leaves])


def min(tree: Any):  # noqa: A001 (optax's name)
    """The smallest entry over all leaves.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.min({"a": jnp.array([1.0, 5.0]), "b": jnp.array(3.0)})
        Array(1., dtype=float32)
    """
    leaves = tree_util.tree_leaves(tree)
    if not leaves:
        return jnp.asarray(np.inf)
    return functools.reduce(jnp.minimum, [jnp.min(x) for x in leaves])


def norm(tree: Any, ord: Any = None, squared: bool = False):  # noqa: A002 (optax's name)
    """The norm of the tree seen as one flat vector.

    Args:
        tree: a pytree of arrays.
        ord: ``None`` or ``2`` (Euclidean), ``1``, or ``"inf"``/``inf`` (largest magnitude).
        squared: return the square of the norm.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> print(float(tree.norm({"a": jnp.array([3.0]), "b": jnp.array(4.0)})))
        5.0
        >>> print(float(tree.norm([jnp.array([-3.0, 1.0])], ord=1)))
        4.0
    """
    leaves = tree_util.tree_leaves(tree)
    if ord in (None, 2, "fro"):
        sq = functools.reduce(operator.add, [jnp.sum(abs_sq(x))
                                             for x in leaves]) if leaves else jnp.asarray(0.0)
        return sq if squared else jnp.sqrt(sq)
    if ord == 1:
        out = functools.reduce(operator.add, [jnp.sum(jnp.abs(x)) for x in leaves])
    elif ord in ("inf", "infinity", np.inf):
        out = functools.reduce(jnp.maximum, [jnp.max(jnp.abs(x)) for x in leaves])
    else:
        raise ValueError(f"optim.tree.norm: ord must be None, 1, 2 or 'inf', got {ord!r}.")
    return out * out if squared else out  # the norm squared, whatever its order (optax)


def zeros_like(tree: Any, dtype: Optional[Any] = None) -> Any:
    """A tree of zeros with the shapes (and dtypes, unless given) of ``tree``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.zeros_like({"a": jnp.ones(2)})
        {'a': Array([0., 0.], dtype=float32)}
    """
    return _map(lambda x: jnp.zeros_like(x, dtype=dtype), tree)


def ones_like(tree: Any, dtype: Optional[Any] = None) -> Any:
    """A tree of ones with the shapes (and dtypes, unless given) of ``tree``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.ones_like({"a": jnp.zeros(2)})
        {'a': Array([1., 1.], dtype=float32)}
    """
    return _map(lambda x: jnp.ones_like(x, dtype=dtype), tree)


def full_like(tree: Any, fill_value, dtype: Optional[Any] = None) -> Any:
    """A tree filled with ``fill_value``, with the shapes of ``tree``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.full_like({"a": jnp.zeros(2)}, 7.0)
        {'a': Array([7., 7.], dtype=float32)}
    """
    return _map(lambda x: jnp.full_like(x, fill_value, dtype=dtype), tree)


def clip(tree: Any, min_value=None, max_value=None) -> Any:
    """Clips every entry to ``[min_value, max_value]`` (``None`` leaves a side open).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.clip([jnp.array([-2.0, 0.5, 3.0])], -1.0, 1.0)
        [Array([-1. ,  0.5,  1. ], dtype=float32)]
    """
    return _map(lambda x: jnp.clip(x, min_value, max_value), tree)


def where(condition, tree_x: Any, tree_y: Any) -> Any:
    """Leafwise ``where(condition, x, y)``; ``condition`` is a scalar or a tree of masks.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.where(jnp.array(False), [jnp.array(1.0)], [jnp.array(2.0)])
        [Array(2., dtype=float32)]
    """
    _check_same("where", tree_x, tree_y)
    if tree_util.tree_structure(condition) == tree_util.tree_structure(tree_x) and \
            tree_util.tree_structure(condition).num_leaves != 1:
        return _map(jnp.where, condition, tree_x, tree_y)
    return _map(lambda x, y: jnp.where(condition, x, y), tree_x, tree_y)


def real(tree: Any) -> Any:
    """The real part of every leaf.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.real([jnp.array(2.0)])
        [Array(2., dtype=float32)]
    """
    return _map(jnp.real, tree)


def conj(tree: Any) -> Any:
    """The complex conjugate of every leaf.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.conj([jnp.array(2.0)])
        [Array(2., dtype=float32)]
    """
    return _map(jnp.conj, tree)


def cast(tree: Any, dtype: Optional[Any]) -> Any:
    """Every leaf as ``dtype`` (``None`` keeps the tree as it is).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.cast([jnp.array(2.5)], jnp.int32)
        [Array(2, dtype=int32)]
    """
    if dtype is None:
        return tree
    return _map(lambda x: jnp.asarray(x, dtype=dtype), tree)


def cast_like(tree: Any, other_tree: Any) -> Any:
    """Every leaf of ``tree`` cast to the dtype of the matching leaf of ``other_tree``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.cast_like([jnp.array(2.5)], [jnp.array(1, dtype=jnp.int32)])
        [Array(2, dtype=int32)]
    """
    _check_same("cast_like", tree, other_tree)
    return _map(lambda x, y: jnp.asarray(x, dtype=jnp.result_type(y)), tree, other_tree)


def dtype(tree: Any, mixed_dtype_handler: Optional[str] = None):
    """The dtype shared by all leaves.

    Args:
        tree: a pytree of arrays.
        mixed_dtype_handler: what to do when the leaves differ: ``None`` raises,
            ``"promote"`` returns their promoted dtype, ``"highest"``/``"lowest"`` the
            widest/narrowest of them.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.dtype({"a": jnp.ones(2), "b": jnp.zeros(())})
        dtype('float32')
    """
    dtypes = sorted({np.dtype(jnp.result_type(x)) for x in tree_util.tree_leaves(tree)},
                    key=lambda d: (d.kind, d.itemsize))
    if not dtypes:
        return np.dtype(jnp.result_type(float))
    if len(dtypes) == 1:
        return dtypes[0]
    if mixed_dtype_handler is None:
        raise ValueError(f"optim.tree.dtype: the leaves have several dtypes {dtypes}; pass "
                         "mixed_dtype_handler='promote', 'highest' or 'lowest'.")
    if mixed_dtype_handler == "promote":
        return np.dtype(jnp.result_type(*dtypes))
    if mixed_dtype_handler == "highest":
        return builtins.max(dtypes, key=lambda d: d.itemsize)
    if mixed_dtype_handler == "lowest":
        return builtins.min(dtypes, key=lambda d: d.itemsize)
    raise ValueError("optim.tree.dtype: mixed_dtype_handler must be None, 'promote', "
                     f"'highest' or 'lowest', got {mixed_dtype_handler!r}.")


def size(tree: Any) -> int:
    """The total number of entries over all leaves.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.size({"a": jnp.ones((2, 3)), "b": jnp.ones(())})
        7
    """
    return builtins.sum(int(np.size(x)) for x in tree_util.tree_leaves(tree))


def batch_shape(tree: Any, shape: tuple = ()) -> Any:
    """Each leaf broadcast to leading batch dimensions ``shape`` (optax's
    ``tree.batch_shape``: the leaf of shape ``s`` becomes one of ``shape + s``).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.batch_shape({"a": jnp.ones(2)}, (4,))["a"].shape
        (4, 2)
    """
    return _map(lambda x: jnp.broadcast_to(x, tuple(shape) + tuple(np.shape(x))), tree)


def allclose(a: Any, b: Any, rtol=1e-05, atol=1e-08, equal_nan: bool = False) -> bool:
    """True when the trees have one structure and every pair of leaves is close.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.allclose([jnp.array(1.0)], [jnp.array(1.0 + 1e-7)])
        True
    """
    if tree_util.tree_structure(a) != tree_util.tree_structure(b):
        return False
    return builtins.all(
        np.allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol, equal_nan=equal_nan)
        for x, y in zip(tree_util.tree_leaves(a), tree_util.tree_leaves(b)))


def split_key_like(rng_key, target_tree: Any) -> Any:
    """One fresh key per leaf of ``target_tree``, from ``random.split(rng_key, n_leaves)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> keys = tree.split_key_like(nanofn.random.PRNGKey(0), {"a": jnp.ones(2), "b": 1.0})
        >>> sorted(keys)
        ['a', 'b']
    """
    import nanofn.random as jrandom
    treedef = tree_util.tree_structure(target_tree)
    keys = jrandom.split(rng_key, treedef.num_leaves)
    return treedef.unflatten([keys[i] for i in range(treedef.num_leaves)])


def random_like(rng_key, target_tree: Any, sampler: Optional[Callable] = None,
                dtype: Optional[Any] = None) -> Any:
    """A tree of random arrays shaped like ``target_tree`` (``sampler(key, shape, dtype)``).

    Args:
        rng_key: a PRNG key, split into one key per leaf.
        target_tree: gives the shapes and (unless ``dtype``) dtypes.
        sampler: ``(key, shape, dtype) -> array``; ``nanofn.random.normal`` by default.
        dtype: the dtype of every leaf, instead of the target's.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> r = tree.random_like(nanofn.random.PRNGKey(0), {"a": jnp.ones((2, 3))})
        >>> r["a"].shape
        (2, 3)
    """
    import nanofn.random as jrandom
    sampler = jrandom.normal if sampler is None else sampler
    keys = split_key_like(rng_key, target_tree)
    return _map(lambda leaf, key: sampler(key, np.shape(leaf), dtype or jnp.result_type(leaf)),
                target_tree, keys)


def unwrap_random_key_data(input_tree: Any) -> Any:
    """The tree with every typed PRNG key (``nanofn.random.key``'s) replaced by its raw
    ``uint32`` data (``nanofn.random.key_data``), for comparing states that hold keys
    (``AddNoiseState.rng_key``, ...) leaf by leaf. Raw keys (``PRNGKey``'s) and other
    leaves come back as they are.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.unwrap_random_key_data({"key": nanofn.random.key(3), "x": jnp.ones(1)})
        {'key': Array([0, 3], dtype=uint32), 'x': Array([1.], dtype=float32)}
    """
    from nanofn._keys import PRNGKeyArray
    return tree_util.tree_map(lambda x: x._base if isinstance(x, PRNGKeyArray) else x,
                              input_tree, is_leaf=lambda x: isinstance(x, PRNGKeyArray))


# --- moments (the statistics optimizers keep) -------------------------------------------


def _none_or(f):
    return lambda g, t: None if g is None else f(g, t)


def update_moment(updates, moments, decay, order):
    """``(1 - decay) g**order + decay m`` leaf by leaf: an exponential moving moment.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.update_moment([jnp.array(2.0)], [jnp.array(1.0)], 0.5, 2)
        [Array(2.5, dtype=float32)]
    """
    return _map(_none_or(lambda g, t: (1 - decay) * (g ** order) + decay * t),
                updates, moments, is_leaf=lambda x: x is None)


def update_infinity_moment(updates, moments, decay, eps):
    """``max(|g| + eps, decay m)`` leaf by leaf (Adamax's moment).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.update_infinity_moment([jnp.array(-2.0)], [jnp.array(1.0)], 0.5, 0.0)
        [Array(2., dtype=float32)]
    """
    return _map(_none_or(lambda g, t: jnp.maximum(jnp.abs(g) + eps, decay * t)),
                updates, moments, is_leaf=lambda x: x is None)


def update_moment_per_elem_norm(updates, moments, decay, order):
    """``(1 - decay) g**order + decay m`` leaf by leaf; for complex `g`, ``|g|**order``
    (optax's rule: a real `g` is raised as it is, so an odd order keeps its sign).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.update_moment_per_elem_norm([jnp.array(-2.0)], [jnp.array(0.0)], 0.5, 2)
        [Array(2., dtype=float32)]
    """
    def moment(g, t):
        if order == 2:
            mag = abs_sq(g)
        elif jnp.iscomplexobj(g):  # optax's |g|^order of a complex g: (|g|^2)^(order/2)
            half = order / 2
            mag = abs_sq(g) ** (int(half) if float(half).is_integer() else half)
        else:  # optax's real case: g ** order itself, signed for an odd order
            mag = g ** order
        return (1 - decay) * mag + decay * t
    return _map(_none_or(moment), updates, moments, is_leaf=lambda x: x is None)


def bias_correction(moment, decay, count):
    """``moment / (1 - decay**count)`` leaf by leaf, in each leaf's dtype.

    The factor ``1 - decay**count`` is computed in at least float32 and rounded once to
    the leaf's dtype (as optax does), so half-precision moments are corrected by
    ``1 - 0.999**t`` itself, not by the power of ``0.999`` rounded to float16.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import tree
        >>> tree.bias_correction([jnp.array(0.5)], 0.5, jnp.array(1))
        [Array(1., dtype=float32)]
    """
    def correct(t):
        dt = jnp.result_type(t)
        return jnp.asarray(t / bias_factor(decay, count, dt), dtype=dt)
    return _map(correct, moment)


# --- reading and writing entries of a state by name ----------------------------------------


@dataclasses.dataclass(frozen=True)
class NamedTupleKey:
    """A path entry that steps into a NamedTuple field and records the NamedTuple's class.

    The paths given by :func:`get_all_with_path` (and passed to the ``filtering``
    functions of :func:`get` and :func:`set`) use it instead of a plain field name, so a
    filter can tell apart fields of one name in different states, e.g. the ``count`` of
    ``ScaleByAdamState`` from that of ``AddNoiseState``. ``tree_util.keystr`` prints it
    as ``TupleName.field``.

    Attributes:
        tuple_name: the class name of the NamedTuple.
        name: the field's name.

    Example:
        >>> from nanofn.optim.tree_utils import NamedTupleKey
        >>> entry = NamedTupleKey("ScaleByAdamState", "mu")
        >>> str(entry), entry.tuple_name, entry.name
        ('ScaleByAdamState.mu', 'ScaleByAdamState', 'mu')
    """

    tuple_name: str
    name: str

    def __str__(self):
        return f"{self.tuple_name}.{self.name}"


def _is_namedtuple(node) -> bool:
    return isinstance(node, tuple) and hasattr(node, "_fields")


def _holds(node, names: tuple) -> bool:
    """Whether ``node`` is a NamedTuple with a field or class name in ``names``, or a dict
    with a key in ``names``: the nodes the name lookups stop at."""
    if _is_namedtuple(node):
        return (builtins.any(n in node._fields for n in names)
                or type(node).__name__ in names)
    return isinstance(node, dict) and builtins.any(n in node for n in names)


def _named_leaves(tree, stop: Callable) -> list:
    """``(path, node)`` for the leaves of ``tree`` and the subtrees where ``stop`` holds.

    Paths are those of ``tree_util.tree_leaves_with_path``, except that a step into a
    NamedTuple field is a :class:`NamedTupleKey` (class name and field) rather than a
    ``GetAttrKey``.
    """
    out = []
    pairs = tree_util.tree_leaves_with_path(tree, is_leaf=lambda x: stop(x) or _is_namedtuple(x))
    for path, node in pairs:
        if stop(node) or not _is_namedtuple(node):
            out.append((path, node))
            continue
        cls = type(node).__name__
        for field in node._fields:
            step = NamedTupleKey(cls, field)
            out.extend(((*path, step, *sub), leaf)
                       for sub, leaf in _named_leaves(getattr(node, field), stop))
    return out


def _children(path: tuple, node) -> list:
    """``(path, child)`` for each field of a NamedTuple or entry of a dict, in order."""
    if _is_namedtuple(node):
        cls = type(node).__name__
        return [((*path, NamedTupleKey(cls, f)), getattr(node, f)) for f in node._fields]
    return [((*path, tree_util.DictKey(k)), v) for k, v in node.items()]


def _entry_name(entry):
    """The field name or dict key that a path entry of :func:`_children` stands for."""
    if isinstance(entry, NamedTupleKey):
        return entry.name
    if isinstance(entry.key, (str, int)):
        return entry.key
    raise KeyError(f"optim.tree.set: only str and int dict keys can be set by name, got the "
                   f"key {entry.key!r} of type {type(entry.key).__name__}.")


def _find(tree, key) -> list:
    """Every ``(path, value)`` named ``key`` in ``tree``, ``filtering`` aside.

    The matches of the outermost nodes that hold ``key`` come first (in leaf order), then
    the matches found below each of those nodes, searched the same way.
    """
    stop = functools.partial(_holds, names=(key,))
    holders = [(p, n) for p, n in _named_leaves(tree, stop) if stop(n)]
    found = []
    for path, node in holders:
        if _is_namedtuple(node) and type(node).__name__ == key:
            found.append((path, node))  # the NamedTuple itself, by its class name
        elif _is_namedtuple(node):
            found.append(((*path, NamedTupleKey(type(node).__name__, key)),
                          getattr(node, key)))
        else:
            found.append(((*path, tree_util.DictKey(key)), node[key]))
    for path, node in holders:
        for child_path, child in _children(path, node):
            found.extend(((*child_path, *sub), value) for sub, value in _find(child, key))
    return found


def get_all_with_path(tree: Any, key: Any, filtering: Optional[Callable] = None) -> list:
    """Every ``(path, value)`` in ``tree`` named ``key``: a dict key, a NamedTuple field,
    or the class name of a NamedTuple (which gives the NamedTuple itself).

    A path is a tuple of ``tree_util`` key entries (``SequenceKey``, ``DictKey``, ...) in
    which each step into a NamedTuple field is a :class:`NamedTupleKey`; print one with
    ``tree_util.keystr``. The matches of the outermost nodes come first, then the matches
    nested inside them (a value named ``key`` inside another one is found too).

    Args:
        tree: the tree to search, typically an optimizer state.
        key: the name to look for.
        filtering: ``filtering(path, value) -> bool``; only the matches it accepts are kept.

    Returns:
        A list of ``(path, value)`` pairs, empty when nothing matches.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim, tree_util
        >>> opt = optim.chain(optim.add_noise(1.0, 0.9, key=0), optim.scale_by_adam())
        >>> state = opt.init(jnp.zeros(2))
        >>> for path, value in optim.tree.get_all_with_path(state, "count"):
        ...     print(tree_util.keystr(path), int(value))
        [0]AddNoiseState.count 0
        [1]ScaleByAdamState.count 0
        >>> adam_only = lambda path, value: path[-1].tuple_name == "ScaleByAdamState"
        >>> [tree_util.keystr(p) for p, _ in
        ...  optim.tree.get_all_with_path(state, "count", adam_only)]
        ['[1]ScaleByAdamState.count']
    """
    found = _find(tree, key)
    if filtering:
        found = [(path, value) for path, value in found if filtering(path, value)]
    return found


def get(tree: Any, key: Any, default: Optional[Any] = None,
        filtering: Optional[Callable] = None) -> Any:
    """The one value in ``tree`` named ``key`` (a dict key, a NamedTuple field, or a
    NamedTuple's class name), as found by :func:`get_all_with_path`.

    Returns ``default`` when nothing matches; raises ``KeyError`` when several values
    match (give a ``filtering(path, value)`` that keeps one of them).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> opt = optim.inject_hyperparams(optim.sgd)(learning_rate=0.1)
        >>> print(round(float(optim.tree.get(opt.init(jnp.zeros(1)), "learning_rate")), 3))
        0.1
        >>> opt = optim.chain(optim.add_noise(1.0, 0.9, key=0), optim.scale_by_adam())
        >>> state = opt.init(jnp.zeros(2))
        >>> type(optim.tree.get(state, "AddNoiseState")).__name__
        'AddNoiseState'
        >>> adam_only = lambda path, value: path[-1].tuple_name == "ScaleByAdamState"
        >>> int(optim.tree.get(state, "count", filtering=adam_only))
        0
    """
    found = get_all_with_path(tree, key, filtering)
    if len(found) > 1:
        paths = [tree_util.keystr(path) for path, _ in found]
        raise KeyError(f"optim.tree.get: {len(found)} values match {key!r}, at {paths}; "
                       "pass `filtering` to keep only one.")
    return found[0][1] if found else default


def set(tree: Any, filtering: Optional[Callable] = None, /, **kwargs: Any) -> Any:  # noqa: A001
    """A copy of ``tree`` in which the values named by ``kwargs`` are replaced.

    A name is a dict key, a NamedTuple field or a NamedTuple's class name (which replaces
    the whole NamedTuple). ``filtering(path, value)``, with the paths of
    :func:`get_all_with_path`, limits the replacement to the matches it accepts.

    Raises ``KeyError`` when a name matches nothing (or nothing that ``filtering``
    accepts). The search starts at the outermost nodes that hold a name and goes down
    through their dict and NamedTuple children only: a match nested in a tuple or list
    below such a node is left as it is, though :func:`get_all_with_path` finds it.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> state = optim.adam(0.1).init({"w": jnp.zeros(2)})
        >>> new = optim.tree.set(state, count=jnp.asarray(5, dtype=jnp.int32))
        >>> int(optim.tree.get(new, "count"))
        5
        >>> opt = optim.chain(optim.add_noise(1.0, 0.9, key=0), optim.scale_by_adam())
        >>> state = opt.init(jnp.zeros(2))
        >>> noise = optim.tree.get(state, "AddNoiseState")
        >>> new = optim.tree.set(state, AddNoiseState=noise._replace(count=jnp.asarray(3)))
        >>> [int(c) for c in (new[0].count, new[1].count)]
        [3, 0]
    """
    for key in kwargs:
        if not get_all_with_path(tree, key, filtering):
            how = " that `filtering` accepts" if filtering else ""
            raise KeyError(f"optim.tree.set: found no value named {key!r}{how} in the tree "
                           f"{tree_util.tree_structure(tree)}.")

    stop = functools.partial(_holds, names=tuple(kwargs))

    def accepts(path, value):
        return filtering is None or filtering(path, value)

    def replace(path, node):
        if not stop(node):
            return node
        cls = type(node).__name__
        if _is_namedtuple(node) and cls in kwargs and accepts(path, node):
            return kwargs[cls]
        new = {}
        for child_path, child in _children(path, node):
            name = _entry_name(child_path[-1])
            if name in kwargs and accepts(child_path, child):
                new[name] = kwargs[name]
            elif isinstance(child, (dict, list, tuple)):
                new[name] = replace(child_path, child)
            else:
                new[name] = child
        return node._replace(**new) if _is_namedtuple(node) else new

    treedef = tree_util.tree_structure(tree, is_leaf=stop)
    return treedef.unflatten([replace(path, node) for path, node in _named_leaves(tree, stop)])


# --- mapping over the parameter-shaped parts of an optimizer state ------------------------


class _ParamsPlaceholder:
    """Stands in for the params when an ``init`` is traced for :func:`map_params`."""


tree_util.register_pytree_node(_ParamsPlaceholder, lambda p: ((), None),
                               lambda aux, children: _ParamsPlaceholder())


def map_params(initable, f: Callable, state: Any, /, *rest: Any,
               transform_non_params: Optional[Callable] = None,
               is_leaf: Optional[Callable] = None) -> Any:
    """Applies ``f`` to every leaf of ``state`` that mirrors a parameter (moments, traces).

    It finds those leaves by calling ``initable`` (an optimizer, or its ``init``) on a
    placeholder for the params: the parts of the state built from the params mirror
    them, the rest (step counts, hyperparameters) does not and is kept, or mapped by
    ``transform_non_params``.

    Args:
        initable: a :class:`GradientTransformation` or an ``init`` function.
        f: applied to each parameter-shaped leaf (with the matching leaves of ``rest``).
        state: the optimizer state.
        *rest: trees with the params' structure, passed to ``f`` alongside.
        transform_non_params: applied to the other parts of the state, if given.
        is_leaf: passed to the map over each parameter-shaped subtree.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> opt = optim.adam(0.1)
        >>> state = opt.init({"w": jnp.ones(3)})
        >>> halved = optim.tree.map_params(opt, lambda x: x + 1.0, state)
        >>> print(halved[0].mu["w"].tolist(), int(halved[0].count))
        [1.0, 1.0, 1.0] 0
    """
    init = initable.init if hasattr(initable, "init") else initable
    with_placeholders = init(_ParamsPlaceholder())

    def map_one(maybe_placeholder, value):
        if isinstance(maybe_placeholder, _ParamsPlaceholder):
            return tree_util.tree_map(f, value, *rest, is_leaf=is_leaf)
        if transform_non_params is not None:
            return transform_non_params(value)
        return value

    return tree_util.tree_map(map_one, with_placeholders, state,
                              is_leaf=lambda v: isinstance(v, _ParamsPlaceholder))
