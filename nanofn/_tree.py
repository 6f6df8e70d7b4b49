"""Pytrees: nested containers flattened into a list of leaves plus a structure.

A *pytree* is a nested Python value built from container *nodes* (tuples, lists, dicts,
``None``, namedtuples, ``collections.OrderedDict`` and ``defaultdict``, and any class
registered with :func:`register_pytree_node` or :func:`register_dataclass`). Anything else
is a *leaf*: numpy arrays, Python scalars, nanofn arrays, strings, functions.

Every transform in nanofn works on flat lists of arrays. A pytree is the thin layer that
turns a user's nested arguments into such a list and back::

    leaves, treedef = tree_flatten({'w': w, 'b': b})   # [b, w], PyTreeDef({'b': *, 'w': *})
    tree_unflatten(treedef, [b2, w2])                   # {'b': b2, 'w': w2}

How it works here. Flattening walks the tree depth-first, left to right, and dispatches on
``type(x)`` through one dict (``_kinds``), so subclasses of a node type are leaves unless
registered themselves (namedtuples are the one exception: any tuple subclass with
``_fields``). Each node becomes a *spec*, a plain tuple ``(node_type, aux_data,
child_specs)``; a leaf becomes the marker ``_LEAF``. Dict children are ordered by sorted
key, so ``{'b': 1, 'a': 2}`` and ``{'a': 2, 'b': 1}`` flatten alike. A :class:`PyTreeDef`
wraps a spec; because specs are nested tuples, comparing and hashing treedefs (jit cache
keys) is done by Python's own tuple code. Unflattening walks the spec and pulls leaves from
an iterator.
"""

from __future__ import annotations

import collections
import functools
import operator
from typing import Any, Callable, Hashable, Iterable, TypeVar

__all__ = [
    "DictKey", "FlattenedIndexKey", "GetAttrKey", "KeyEntry", "KeyPath", "Partial",
    "PyTreeDef", "PyTreeRegistry", "SequenceKey", "all_leaves", "default_registry",
    "flatten_one_level", "flatten_one_level_with_keys", "is_tree_node", "keystr",
    "register_dataclass", "register_pytree_node", "register_pytree_node_class",
    "register_pytree_with_keys", "register_pytree_with_keys_class", "register_static",
    "static", "tree_all", "tree_broadcast", "tree_flatten", "tree_flatten_with_path",
    "tree_leaves", "tree_leaves_with_path", "tree_map", "tree_map_with_path", "tree_reduce",
    "tree_reduce_associative", "tree_structure", "tree_transpose", "tree_unflatten",
    "treedef_children", "treedef_is_leaf", "treedef_tuple",
]

T = TypeVar("T")
PyTree = Any
Leaf = Any
KeyEntry = Any
KeyPath = tuple  # tuple[KeyEntry, ...]

_NoneType = type(None)


# ---------------------------------------------------------------------------------------
# The node registry
# ---------------------------------------------------------------------------------------

class _Kind:
    """Tag stored in ``_kinds`` for the built-in node kinds and for leaves."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<{self.name}>"


_LEAF_KIND = _Kind("leaf")
_TUPLE = _Kind("tuple")
_LIST = _Kind("list")
_DICT = _Kind("dict")
_NONE = _Kind("None")
_NAMEDTUPLE = _Kind("namedtuple")


class _Registration:
    """A registered node type: how to take it apart and put it back together."""

    __slots__ = ("type", "flatten", "unflatten", "flatten_with_keys", "data_fields")

    def __init__(self, nodetype, flatten, unflatten, flatten_with_keys=None,
                 data_fields=None):
        self.type = nodetype
        self.flatten = flatten
        self.unflatten = unflatten
        self.flatten_with_keys = flatten_with_keys
        self.data_fields = data_fields  # field names, for dataclasses (gives key paths)


# type -> kind tag or _Registration. Also caches the kind of every type seen so far
# (leaf or namedtuple), so classifying a leaf costs one dict lookup.
_kinds: dict[type, Any] = {tuple: _TUPLE, list: _LIST, dict: _DICT, _NoneType: _NONE}
_registry: dict[type, _Registration] = {}  # user-registered (and OrderedDict, ...) only
_KIND_CACHE_LIMIT = 4096  # stop caching leaf types past this (dynamically made classes)


def _classify(t):
    """Kind of a type that is not in ``_kinds`` yet: a namedtuple or a leaf."""
    kind = _NAMEDTUPLE if issubclass(t, tuple) and hasattr(t, "_fields") else _LEAF_KIND
    if len(_kinds) < _KIND_CACHE_LIMIT:
        _kinds[t] = kind
    return kind


def _register(nodetype, registration):
    if not isinstance(nodetype, type):
        raise TypeError(f"register_pytree_node: nodetype must be a class, got {nodetype!r}.")
    if nodetype in _registry or nodetype in (tuple, list, dict, _NoneType):
        raise ValueError(
            f"register_pytree_node: {nodetype.__qualname__} is already a registered pytree "
            "node type; a type can be registered only once.")
    _registry[nodetype] = registration
    _kinds[nodetype] = registration  # overrides a cached 'leaf' entry


# ---------------------------------------------------------------------------------------
# Flattening and the spec representation
# ---------------------------------------------------------------------------------------

class _LeafMarker:
    """The spec of a leaf; printed as ``*``."""

    __slots__ = ()

    def __repr__(self):
        return "*"

    def __reduce__(self):
        return "_LEAF"  # pickle by reference, so the marker stays a singleton


_LEAF = _LeafMarker()
_NONE_SPEC = (_NoneType, None, ())


def _sorted_keys(d):
    try:
        return tuple(sorted(d))
    except TypeError as e:
        raise ValueError(
            f"Cannot flatten a dict whose keys cannot be sorted: {list(d)!r}. Pytrees order "
            "dict children by sorted key, so the keys of one dict must be mutually "
            "comparable (all strings, or all numbers). Use an OrderedDict to keep insertion "
            "order instead.") from e


def _flatten(x, leaves, is_leaf):
    """Appends the leaves of ``x`` to ``leaves`` and returns the spec of ``x``."""
    if is_leaf is not None and is_leaf(x):
        leaves.append(x)
        return _LEAF
    kind = _kinds.get(type(x)) or _classify(type(x))
    if kind is _LEAF_KIND:
        leaves.append(x)
        return _LEAF
    if kind is _DICT:
        keys = _sorted_keys(x)
        return (dict, keys, tuple([_flatten(x[k], leaves, is_leaf) for k in keys]))
    if kind is _TUPLE:
        return (tuple, None, tuple([_flatten(c, leaves, is_leaf) for c in x]))
    if kind is _LIST:
        return (list, None, tuple([_flatten(c, leaves, is_leaf) for c in x]))
    if kind is _NONE:
        return _NONE_SPEC
    if kind is _NAMEDTUPLE:
        return (type(x), None, tuple([_flatten(c, leaves, is_leaf) for c in x]))
    children, aux = kind.flatten(x)
    return (type(x), aux, tuple([_flatten(c, leaves, is_leaf) for c in children]))


def _flatten_leaves(x, leaves, is_leaf):
    """Like ``_flatten`` but only collects leaves (no spec): ``tree_leaves``'s fast path."""
    if is_leaf is not None and is_leaf(x):
        leaves.append(x)
        return
    kind = _kinds.get(type(x)) or _classify(type(x))
    if kind is _LEAF_KIND:
        leaves.append(x)
    elif kind is _DICT:
        for k in _sorted_keys(x):
            _flatten_leaves(x[k], leaves, is_leaf)
    elif kind is _TUPLE or kind is _LIST or kind is _NAMEDTUPLE:
        for c in x:
            _flatten_leaves(c, leaves, is_leaf)
    elif kind is not _NONE:
        for c in kind.flatten(x)[0]:
            _flatten_leaves(c, leaves, is_leaf)


def _unflatten(spec, it):
    node_type, data, child_specs = spec
    children = [next(it) if s is _LEAF else _unflatten(s, it) for s in child_specs]
    if node_type is dict:
        return dict(zip(data, children))
    if node_type is tuple:
        return tuple(children)
    if node_type is list:
        return children
    if node_type is _NoneType:
        return None
    registration = _registry.get(node_type)
    if registration is None:  # a namedtuple
        return node_type(*children)
    return registration.unflatten(data, tuple(children))


def _count_leaves(spec):
    if spec is _LEAF:
        return 1
    return sum([_count_leaves(s) for s in spec[2]])


def _count_nodes(spec):
    if spec is _LEAF:
        return 1
    return 1 + sum([_count_nodes(s) for s in spec[2]])


def _spec_repr(spec):
    if spec is _LEAF:
        return "*"
    node_type, data, child_specs = spec
    children = ", ".join([_spec_repr(s) for s in child_specs])
    if node_type is tuple:
        return f"({children},)" if len(child_specs) == 1 else f"({children})"
    if node_type is list:
        return f"[{children}]"
    if node_type is dict:
        items = ", ".join(f"{k!r}: {_spec_repr(s)}" for k, s in zip(data, child_specs))
        return "{" + items + "}"
    if node_type is _NoneType:
        return "None"
    if node_type not in _registry:
        return f"CustomNode(namedtuple[{node_type.__name__}], [{children}])"
    return f"CustomNode({node_type.__name__}[{data}], [{children}])"


def _make_treedef(spec, num_leaves):
    treedef = _new_object(PyTreeDef)
    treedef._spec = spec
    treedef._num_leaves = num_leaves
    return treedef


_new_object = object.__new__


class PyTreeDef:
    """The structure of a pytree: its nodes and where the leaves go, without the leaves.

    Treedefs are immutable, hashable and comparable with ``==``, so they can be used as
    cache keys. Get one from :func:`tree_flatten` or :func:`tree_structure`; do not
    construct it directly.

    Example:
        >>> from nanofn import tree_util
        >>> treedef = tree_util.tree_structure({'a': 1, 'b': (2, 3)})
        >>> treedef
        PyTreeDef({'a': *, 'b': (*, *)})
        >>> treedef.num_leaves, treedef.num_nodes
        (3, 5)
        >>> treedef.unflatten([10, 20, 30])
        {'a': 10, 'b': (20, 30)}
        >>> treedef == tree_util.tree_structure({'b': ('x', 'y'), 'a': 'z'})
        True
    """

    __slots__ = ("_spec", "_num_leaves", "_num_nodes", "_hash")

    def __init__(self, *args, **kwargs):
        raise TypeError("PyTreeDef cannot be constructed directly; use "
                        "tree_util.tree_structure(tree) or tree_util.tree_flatten(tree).")

    @property
    def num_leaves(self) -> int:
        """The number of leaves of the trees with this structure."""
        return self._num_leaves

    @property
    def num_nodes(self) -> int:
        """The number of nodes, counting leaves, ``None`` and containers."""
        try:
            return self._num_nodes
        except AttributeError:
            self._num_nodes = _count_nodes(self._spec)
            return self._num_nodes

    def children(self) -> list[PyTreeDef]:
        """Returns the treedefs of the root's children (``[]`` for a leaf).

        Example:
            >>> from nanofn import tree_util
            >>> tree_util.tree_structure([(1, 2), 3]).children()
            [PyTreeDef((*, *)), PyTreeDef(*)]
        """
        if self._spec is _LEAF:
            return []
        return [_make_treedef(s, _count_leaves(s)) for s in self._spec[2]]

    def node_data(self) -> tuple[type, Any] | None:
        """Returns ``(node_type, aux_data)`` of the root node, or ``None`` for a leaf.

        Example:
            >>> from nanofn import tree_util
            >>> tree_util.tree_structure({'b': 1, 'a': 2}).node_data()
            (<class 'dict'>, ['a', 'b'])
        """
        if self._spec is _LEAF:
            return None
        node_type, data = self._spec[0], self._spec[1]
        if node_type is dict:  # JAX gives a dict's sorted keys as a list
            data = list(data)
        return node_type, data

    def unflatten(self, leaves: Iterable[Leaf]) -> PyTree:
        """Builds the tree with this structure from its leaves; see :func:`tree_unflatten`.

        Example:
            >>> from nanofn import tree_util
            >>> tree_util.tree_structure((1, [2])).unflatten(['a', 'b'])
            ('a', ['b'])
        """
        if not isinstance(leaves, (list, tuple)):
            leaves = list(leaves)
        if len(leaves) != self._num_leaves:
            raise ValueError(
                f"tree_unflatten: the treedef {self!r} has {self._num_leaves} "
                f"leaves, but {len(leaves)} leaves were given. Pass exactly one leaf per "
                "'*' in the treedef.")
        spec = self._spec
        if spec is _LEAF:
            return leaves[0]
        return _unflatten(spec, iter(leaves))

    def flatten_up_to(self, tree: PyTree) -> list[PyTree]:
        """Flattens ``tree`` down to this structure: returns its subtrees at our leaves.

        This treedef must be a *prefix* of ``tree``'s structure: the same nodes down to
        each of our leaves, below which ``tree`` may hold whole subtrees.

        Args:
            tree: a pytree whose structure has this treedef as a prefix.

        Returns:
            A list of ``num_leaves`` subtrees of ``tree``, in leaf order.

        Raises:
            ValueError: if ``tree`` does not have this structure as a prefix. The message
                gives the key path of the first difference and both structures.

        Example:
            >>> from nanofn import tree_util
            >>> prefix = tree_util.tree_structure((0, {'a': 0}))
            >>> prefix.flatten_up_to(([1, 2], {'a': (3, 4)}))
            [[1, 2], (3, 4)]
        """
        return _flatten_up_to_checked(self, tree, "PyTreeDef.flatten_up_to",
                                      "the treedef", "the tree")

    def compose(self, inner: PyTreeDef) -> PyTreeDef:
        """Returns the treedef made by putting ``inner`` at each leaf of this one.

        Example:
            >>> from nanofn import tree_util
            >>> outer = tree_util.tree_structure([0, 0])
            >>> outer.compose(tree_util.tree_structure((0, 0)))
            PyTreeDef([(*, *), (*, *)])
        """
        inner_spec = inner._spec

        def substitute(spec):
            if spec is _LEAF:
                return inner_spec
            return (spec[0], spec[1], tuple([substitute(s) for s in spec[2]]))

        return _make_treedef(substitute(self._spec), self._num_leaves * inner._num_leaves)

    def __repr__(self):
        return f"PyTreeDef({_spec_repr(self._spec)})"

    def __eq__(self, other):
        if not isinstance(other, PyTreeDef):
            return NotImplemented
        if self is other:
            return True
        if self._num_leaves != other._num_leaves:
            return False
        try:
            return self._spec == other._spec
        except Exception as e:  # e.g. arrays in aux data: ambiguous truth value
            raise ValueError(
                "Could not compare two PyTreeDefs because comparing the aux data of one of "
                "their custom nodes raised an error. Aux data must be hashable and compare "
                "with simple equality (no arrays); put arrays in the children instead.\n"
                f"  {self!r}\n  {other!r}") from e

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self):
        try:
            return self._hash
        except AttributeError:
            pass
        try:
            self._hash = hash(self._spec)
        except TypeError:
            # As in JAX, a treedef hashes even when some aux data does not (a list in a
            # dataclass's meta field): such aux data is left out of the hash, and ==
            # still compares it.
            self._hash = hash(_hashable_spec(self._spec))
        return self._hash

    def __reduce__(self):
        return (_make_treedef, (self._spec, self._num_leaves))

    def walk(self, f_node: Callable[[tuple, Any], Any], f_leaf: Callable[[Any], Any] | None,
             leaves: Iterable[Leaf]) -> Any:
        """Folds over the tree with this structure holding ``leaves``, bottom up.

        Each leaf becomes ``f_leaf(leaf)`` (the leaf itself if ``f_leaf`` is None); each
        node becomes ``f_node(children, node_data)``, where ``children`` is the tuple of
        what its children became and ``node_data`` the node's aux data (a dict's sorted
        keys as a list, a namedtuple's class, None for tuples, lists and None).

        Example:
            >>> from nanofn import tree_util
            >>> treedef = tree_util.tree_structure([1, (2, 3)])
            >>> treedef.walk(lambda children, data: sum(children), lambda x: 10 * x,
            ...              [1, 2, 3])
            60
        """
        it = iter(leaves)
        leaf_fn = (lambda x: x) if f_leaf is None else f_leaf

        def go(spec):
            if spec is _LEAF:
                try:
                    return leaf_fn(next(it))
                except StopIteration:
                    raise ValueError("PyTreeDef.walk: too few leaves for "
                                     f"{self!r}") from None
            node_type, data, child_specs = spec
            children = tuple([go(s) for s in child_specs])
            if node_type is dict:
                data = list(data)
            elif node_type not in _registry and node_type not in (tuple, list, _NoneType):
                data = node_type  # a namedtuple: its class, as in JAX
            return f_node(children, data)

        out = go(self._spec)
        if next(it, _MISSING) is not _MISSING:
            raise ValueError(f"PyTreeDef.walk: too many leaves for {self!r}")
        return out

    @staticmethod
    def from_node_data_and_children(registry: Any, node_data: tuple[type, Any] | None,
                                    children: Iterable[PyTreeDef]) -> PyTreeDef:
        """Builds a treedef from a root's :meth:`node_data` and its :meth:`children`.

        The inverse of taking a treedef apart with ``node_data()`` and ``children()``;
        ``node_data=None`` (with no children) makes a leaf. ``registry`` is
        ``tree_util.default_registry``.

        Example:
            >>> from nanofn import tree_util
            >>> td = tree_util.tree_structure({'a': 1, 'b': (2, 3)})
            >>> tree_util.PyTreeDef.from_node_data_and_children(
            ...     tree_util.default_registry, td.node_data(), td.children()) == td
            True
        """
        del registry  # nanofn has one registry
        children = list(children)
        if node_data is None:
            if children:
                raise ValueError("from_node_data_and_children: a leaf (node_data=None) "
                                 f"has no children, got {len(children)}")
            return _make_treedef(_LEAF, 1)
        node_type, data = node_data
        if node_type is dict:
            data = tuple(data)
            if len(data) != len(children):
                raise ValueError(f"from_node_data_and_children: a dict with {len(data)} "
                                 f"keys needs {len(data)} children, got {len(children)}")
        elif not is_tree_node(node_type):
            raise ValueError(f"from_node_data_and_children: {node_type!r} is not a "
                             "registered pytree node type")
        spec = (node_type, data, tuple([c._spec for c in children]))
        if node_type is _NoneType:
            spec = _NONE_SPEC
        return _make_treedef(spec, sum(c._num_leaves for c in children))


class _UnhashableAux:
    """Stands in the hash of a treedef for aux data that cannot be hashed."""

    def __repr__(self):
        return "<unhashable aux data>"


_UNHASHABLE_AUX = _UnhashableAux()


def _hashable_spec(spec):
    if spec is _LEAF:
        return spec
    node_type, data, child_specs = spec
    try:
        hash(data)
    except TypeError:
        data = _UNHASHABLE_AUX
    return (node_type, data, tuple([_hashable_spec(s) for s in child_specs]))


# ---------------------------------------------------------------------------------------
# Structure mismatches: fast check, then a slow walk that explains the first difference
# ---------------------------------------------------------------------------------------

class _Mismatch(Exception):
    pass


def _flatten_up_to(spec, x, out):
    if spec is _LEAF:
        out.append(x)
        return
    node_type, data, child_specs = spec
    if node_type is dict:
        if type(x) is not dict or len(x) != len(data):
            raise _Mismatch
        try:
            children = [x[k] for k in data]
        except KeyError:
            raise _Mismatch from None
    elif node_type is tuple or node_type is list:
        if type(x) is not node_type or len(x) != len(child_specs):
            raise _Mismatch
        children = x
    elif node_type is _NoneType:
        if x is not None:
            raise _Mismatch
        return
    else:
        if type(x) is not node_type:
            raise _Mismatch
        registration = _registry.get(node_type)
        if registration is None:  # namedtuple
            children = x
        else:
            children, aux = registration.flatten(x)
            children = list(children)
            if not _aux_equal(aux, data):
                raise _Mismatch
        if len(children) != len(child_specs):
            raise _Mismatch
    for s, c in zip(child_specs, children):
        if s is _LEAF:
            out.append(c)
        else:
            _flatten_up_to(s, c, out)


def _aux_equal(a, b):
    try:
        return bool(a == b)
    except Exception:
        return a is b


def _flatten_up_to_checked(treedef, tree, what, prefix_name, tree_name):
    """``treedef.flatten_up_to(tree)`` whose error names the caller and both trees."""
    spec = treedef._spec
    if spec is _LEAF:
        return [tree]
    out = []
    try:
        _flatten_up_to(spec, tree, out)
    except _Mismatch:
        raise _prefix_error(treedef, tree, what, prefix_name, tree_name) from None
    return out


def _spec_node(spec):
    """(node_type, data, [(key, child_spec)]) of a non-leaf spec."""
    node_type, data, child_specs = spec
    if node_type is dict:
        keys = [DictKey(k) for k in data]
    elif node_type is tuple or node_type is list:
        keys = [SequenceKey(i) for i in range(len(child_specs))]
    elif node_type in _registry:
        fields = _registry[node_type].data_fields
        if fields is not None and len(fields) == len(child_specs):
            keys = [GetAttrKey(f) for f in fields]
        else:
            keys = [FlattenedIndexKey(i) for i in range(len(child_specs))]
    elif node_type is not _NoneType:  # namedtuple
        keys = [GetAttrKey(f) for f in node_type._fields]
    else:
        keys = []
    return node_type, data, list(zip(keys, child_specs))


def _value_node(x):
    """(node_type, data, [(key, child)]) of a value, or None if it is a leaf."""
    kind = _kinds.get(type(x)) or _classify(type(x))
    if kind is _LEAF_KIND:
        return None
    if kind is _DICT:
        try:
            keys = tuple(sorted(x))
        except TypeError:
            keys = tuple(x)
        return dict, keys, [(DictKey(k), x[k]) for k in keys]
    if kind is _NONE:
        return _NoneType, None, []
    if kind is _NAMEDTUPLE:
        return type(x), None, [(GetAttrKey(f), c) for f, c in zip(type(x)._fields, x)]
    if kind is _TUPLE or kind is _LIST:
        return type(x), None, [(SequenceKey(i), c) for i, c in enumerate(x)]
    keyed, aux = _flatten_one_level_with_keys(x, kind)
    return type(x), aux, keyed


def _describe(node, x=None, is_value=False):
    """Short English description of one node, for error messages."""
    if node is None:
        if not is_value:
            return "leaf"
        shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
        if shape is not None and dtype is not None:
            return f"leaf ({type(x).__name__} of shape {tuple(shape)} and dtype {dtype})"
        return f"leaf ({type(x).__name__})"
    node_type, data, children = node
    if node_type is dict:
        return f"dict with keys {list(data)!r}"
    if node_type is tuple or node_type is list:
        return f"{node_type.__name__} of length {len(children)}"
    if node_type is _NoneType:
        return "None"
    if node_type not in _registry:
        return f"namedtuple {node_type.__name__} of length {len(children)}"
    return (f"{node_type.__name__} node with aux data {data!r} and "
            f"{len(children)} children")


def _first_difference(a, b, b_is_value, prefix, names, path=()):
    """Finds where the spec ``a`` and ``b`` (a value or a spec) first differ.

    Returns ``None`` if they match, else ``(key_path, description_a, description_b,
    hint)``. With ``prefix=True``, a leaf of ``a`` matches any subtree of ``b``. ``names``
    are the names of the two trees, for the hint.
    """
    node_b = (_value_node(b) if b_is_value else (None if b is _LEAF else _spec_node(b)))
    if a is _LEAF:
        if prefix or node_b is None:
            return None
        return path, "leaf", _describe(node_b), ""
    node_a = _spec_node(a)
    none_hint = ("None is a pytree node with no children, not a leaf, so it only matches "
                 "None. To treat None as a leaf, pass is_leaf=lambda x: x is None.")
    if node_b is None:
        hint = none_hint if node_a[0] is _NoneType else ""
        return path, _describe(node_a), _describe(None, b, b_is_value), hint
    type_a, data_a, children_a = node_a
    type_b, data_b, children_b = node_b
    desc_a, desc_b = _describe(node_a), _describe(node_b)
    if type_a is not type_b or len(children_a) != len(children_b):
        hint = ""
        if type_a is _NoneType or type_b is _NoneType:
            hint = none_hint
        elif type_a is dict and type_b is dict:
            hint = _key_hint(data_a, data_b, names)
        return path, desc_a, desc_b, hint
    if not _aux_equal(data_a, data_b):
        hint = _key_hint(data_a, data_b, names) if type_a is dict else ""
        return path, desc_a, desc_b, hint
    for (key_a, child_a), (key_b, child_b) in zip(children_a, children_b):
        key = key_b if b_is_value else key_a
        found = _first_difference(child_a, child_b, b_is_value, prefix, names, (*path, key))
        if found is not None:
            return found
    return None


def _key_hint(keys_a, keys_b, names):
    only_a = [k for k in keys_a if k not in keys_b]
    only_b = [k for k in keys_b if k not in keys_a]
    parts = [f"keys only in {name}: {keys!r}"
             for name, keys in zip(names, (only_a, only_b)) if keys]
    return "; ".join(parts)


def _safe_structure_repr(tree):
    try:
        return repr(tree_structure(tree))
    except Exception:
        text = repr(tree)
        return text if len(text) <= 200 else text[:200] + "..."


def _mismatch_message(what, name_a, name_b, repr_a, repr_b, diff, relation):
    lines = []
    if diff is None:
        lines.append(f"{what}: {name_a} and {name_b} have different structures.")
    else:
        path, desc_a, desc_b, hint = diff
        where = f"at key path {keystr(path)}" if path else "at the root"
        lines.append(f"{what}: {name_a} and {name_b} differ {where}: {desc_a} vs {desc_b}.")
        if hint:
            lines.append(f"  ({hint})")
    lines.append(f"Expected {name_a} to {relation}.")
    width = max(len(name_a), len(name_b))
    lines.append(f"  {name_a + ':':<{width + 1}} {repr_a}")
    lines.append(f"  {name_b + ':':<{width + 1}} {repr_b}")
    return "\n".join(lines)


def _prefix_error(treedef, tree, what, prefix_name, tree_name):
    diff = _first_difference(treedef._spec, tree, True, True, (prefix_name, tree_name))
    message = _mismatch_message(
        what, prefix_name, tree_name, repr(treedef), _safe_structure_repr(tree), diff,
        f"be a prefix of {tree_name}'s structure (the same nodes, where each leaf of "
        f"{prefix_name} may stand for a whole subtree of {tree_name})")
    return ValueError(message)


def structure_difference(treedef_a: PyTreeDef, treedef_b: PyTreeDef,
                         what: str = "structure mismatch", name_a: str = "the first tree",
                         name_b: str = "the second tree") -> str | None:
    """Explains why two treedefs differ, or returns None if they are equal.

    Used by transforms that need two structures to be identical (the branches of
    ``cond``, the carry of ``scan``); the text names the key path of the first difference
    and shows both structures.
    """
    if treedef_a == treedef_b:
        return None
    diff = _first_difference(treedef_a._spec, treedef_b._spec, False, False, (name_a, name_b))
    return _mismatch_message(what, name_a, name_b, repr(treedef_a), repr(treedef_b), diff,
                             f"have the same structure as {name_b}")


# ---------------------------------------------------------------------------------------
# Public API: flatten, unflatten, map, reduce
# ---------------------------------------------------------------------------------------

def tree_flatten(tree: PyTree, is_leaf: Callable[[Any], bool] | None = None
                 ) -> tuple[list[Leaf], PyTreeDef]:
    """Flattens a pytree into its list of leaves and its structure.

    Leaves come in depth-first, left-to-right order; dict children in sorted-key order.
    ``None`` is a node without children, so it contributes no leaf. ``nanofn.tree.flatten``
    is the same function.

    Args:
        tree: the pytree to flatten.
        is_leaf: optional predicate called on every subtree before it is taken apart; where
            it returns True the subtree is kept whole as one leaf.

    Returns:
        ``(leaves, treedef)``: the list of leaves and a :class:`PyTreeDef` from which
        :func:`tree_unflatten` rebuilds the tree.

    Example:
        >>> from nanofn import tree_util
        >>> leaves, treedef = tree_util.tree_flatten({'b': (1, 2), 'a': 3, 'c': None})
        >>> leaves
        [3, 1, 2]
        >>> treedef
        PyTreeDef({'a': *, 'b': (*, *), 'c': None})
    """
    leaves = []
    spec = _flatten(tree, leaves, is_leaf)
    return leaves, _make_treedef(spec, len(leaves))


def tree_unflatten(treedef: PyTreeDef, leaves: Iterable[Leaf]) -> PyTree:
    """Rebuilds a pytree from its structure and its leaves; the inverse of tree_flatten.

    ``nanofn.tree.unflatten`` is the same function.

    Args:
        treedef: the structure, from :func:`tree_flatten` or :func:`tree_structure`.
        leaves: an iterable of exactly ``treedef.num_leaves`` leaves, in leaf order.

    Returns:
        The pytree with ``treedef``'s structure holding ``leaves``.

    Raises:
        ValueError: if the number of leaves is not ``treedef.num_leaves``.

    Example:
        >>> from nanofn import tree_util
        >>> leaves, treedef = tree_util.tree_flatten([1, (2, 3)])
        >>> tree_util.tree_unflatten(treedef, [x * 10 for x in leaves])
        [10, (20, 30)]
    """
    return treedef.unflatten(leaves)


def tree_leaves(tree: PyTree, is_leaf: Callable[[Any], bool] | None = None) -> list[Leaf]:
    """Returns the leaves of a pytree, in the order of :func:`tree_flatten`.

    ``nanofn.tree.leaves`` is the same function.

    Args:
        tree: the pytree.
        is_leaf: optional predicate marking subtrees to keep whole (see tree_flatten).

    Returns:
        The list of leaves.

    Example:
        >>> from nanofn import tree_util
        >>> tree_util.tree_leaves({'x': [1, 2], 'y': None, 'z': (3,)})
        [1, 2, 3]
    """
    leaves = []
    _flatten_leaves(tree, leaves, is_leaf)
    return leaves


def tree_structure(tree: PyTree, is_leaf: Callable[[Any], bool] | None = None
                   ) -> PyTreeDef:
    """Returns the structure (treedef) of a pytree.

    ``nanofn.tree.structure`` is the same function.

    Args:
        tree: the pytree.
        is_leaf: optional predicate marking subtrees to keep whole (see tree_flatten).

    Returns:
        The :class:`PyTreeDef` of ``tree``.

    Example:
        >>> from nanofn import tree_util
        >>> tree_util.tree_structure([1, (2, 3), {'a': 4}])
        PyTreeDef([*, (*, *), {'a': *}])
    """
    return tree_flatten(tree, is_leaf)[1]


def tree_map(f: Callable[..., Any], tree: PyTree, *rest: PyTree,
             is_leaf: Callable[[Any], bool] | None = None) -> PyTree:
    """Applies ``f`` to the leaves of one or more pytrees, keeping the first's structure.

    ``nanofn.tree.map`` is the same function.

    Args:
        f: function of ``1 + len(rest)`` arguments, called once per leaf of ``tree``.
        tree: the pytree whose structure the result has.
        *rest: more pytrees, each with ``tree``'s structure or with ``tree``'s structure
            as a prefix (then ``f`` receives their whole subtrees at ``tree``'s leaves).
        is_leaf: optional predicate marking subtrees of ``tree`` to keep whole.

    Returns:
        A pytree with ``tree``'s structure whose leaves are ``f(x, *xs)``.

    Raises:
        ValueError: if a tree in ``rest`` does not match ``tree``; the message gives the
            key path of the first difference and both structures.

    Example:
        >>> from nanofn import tree_util
        >>> tree_util.tree_map(lambda x: x + 1, {'a': 1, 'b': (2, 3)})
        {'a': 2, 'b': (3, 4)}
        >>> tree_util.tree_map(lambda x, y: x * y, [1, 2], [10, 20])
        [10, 40]
    """
    leaves = []
    spec = _flatten(tree, leaves, is_leaf)
    treedef = _make_treedef(spec, len(leaves))
    if not rest:
        return treedef.unflatten([f(x) for x in leaves])
    others = [
        _flatten_up_to_checked(treedef, other, "tree_map", "tree #1", f"tree #{i + 2}")
        for i, other in enumerate(rest)]
    return treedef.unflatten([f(*xs) for xs in zip(leaves, *others)])


class _Missing:
    def __repr__(self):
        return "<no initializer>"


_MISSING = _Missing()


def tree_reduce(function: Callable[[T, Any], T], tree: PyTree, initializer: Any = _MISSING,
                is_leaf: Callable[[Any], bool] | None = None) -> T:
    """Folds ``function`` over the leaves of a pytree, like ``functools.reduce``.

    ``nanofn.tree.reduce`` is the same function.

    Args:
        function: a function of two arguments ``(accumulated, leaf)``.
        tree: the pytree whose leaves are reduced.
        initializer: optional starting value; without it the first leaf is the start,
            and a tree without leaves raises a TypeError.
        is_leaf: optional predicate marking subtrees to keep whole.

    Returns:
        The reduced value.

    Example:
        >>> import operator
        >>> from nanofn import tree_util
        >>> tree_util.tree_reduce(operator.add, {'a': 1, 'b': [2, 3]})
        6
        >>> tree_util.tree_reduce(max, [], initializer=0)
        0
    """
    leaves = tree_leaves(tree, is_leaf)
    if initializer is _MISSING:
        if not leaves:
            raise TypeError("tree_reduce: the tree has no leaves and no initializer was "
                            "given; pass initializer=... to reduce an empty tree.")
        return functools.reduce(function, leaves)
    return functools.reduce(function, leaves, initializer)


def tree_reduce_associative(operation: Callable[[T, T], T], tree: PyTree, *,
                            identity: Any = _MISSING,
                            is_leaf: Callable[[Any], bool] | None = None) -> T:
    """Reduces the leaves with an associative ``operation`` as a balanced binary tree.

    The result equals :func:`tree_reduce` for associative operations, but the combination
    order keeps round-off growth logarithmic in the number of leaves.
    ``nanofn.tree.reduce_associative`` is the same function.

    Args:
        operation: an associative function of two arguments.
        tree: the pytree whose leaves are reduced.
        identity: the value returned for a tree without leaves.
        is_leaf: optional predicate marking subtrees to keep whole.

    Returns:
        The reduced value.

    Example:
        >>> import operator
        >>> from nanofn import tree_util
        >>> tree_util.tree_reduce_associative(operator.add, [1, (2, 3), {'a': 4}])
        10
    """
    leaves = tree_leaves(tree, is_leaf)
    if not leaves:
        if identity is _MISSING:
            raise TypeError("tree_reduce_associative: the tree has no leaves; pass "
                            "identity=... to reduce an empty tree.")
        return identity

    def reduce(lo, hi):
        if hi - lo == 1:
            return leaves[lo]
        mid = (lo + hi) // 2
        return operation(reduce(lo, mid), reduce(mid, hi))

    return reduce(0, len(leaves))


def tree_all(tree: PyTree, *, is_leaf: Callable[[Any], bool] | None = None) -> bool:
    """Returns True if every leaf of the pytree is truthy (True for a tree without leaves).

    ``nanofn.tree.all`` is the same function.

    Args:
        tree: the pytree.
        is_leaf: optional predicate marking subtrees to keep whole.

    Returns:
        ``all(tree_leaves(tree))``.

    Example:
        >>> from nanofn import tree_util
        >>> tree_util.tree_all([True, {'a': 1}]), tree_util.tree_all((True, [0]))
        (True, False)
    """
    return all(tree_leaves(tree, is_leaf))


def tree_transpose(outer_treedef: PyTreeDef, inner_treedef: PyTreeDef | None,
                   pytree_to_transpose: PyTree) -> PyTree:
    """Turns a tree of structure ``outer`` of trees ``inner`` into ``inner`` of ``outer``.

    ``nanofn.tree.transpose`` is the same function.

    Args:
        outer_treedef: the structure of the outer tree.
        inner_treedef: the structure of each inner tree, or None to take it from the first
            subtree of ``pytree_to_transpose`` under ``outer_treedef``.
        pytree_to_transpose: a tree with structure ``outer_treedef.compose(inner_treedef)``.

    Returns:
        The transposed tree, with structure ``inner_treedef.compose(outer_treedef)``.

    Raises:
        TypeError: if ``pytree_to_transpose`` does not have the composed structure.

    Example:
        >>> from nanofn import tree_util
        >>> outer = tree_util.tree_structure([0, 0])
        >>> inner = tree_util.tree_structure({'w': 0, 'b': 0})
        >>> tree_util.tree_transpose(outer, inner, [{'w': 1, 'b': 2}, {'w': 3, 'b': 4}])
        {'b': [2, 4], 'w': [1, 3]}
    """
    leaves, treedef = tree_flatten(pytree_to_transpose)
    if inner_treedef is None:
        inner_treedef = tree_structure(outer_treedef.flatten_up_to(pytree_to_transpose)[0])
    expected = outer_treedef.compose(inner_treedef)
    if treedef != expected:
        raise TypeError(
            "tree_transpose: the tree does not have the structure outer_treedef composed "
            "with inner_treedef.\n"
            f"  expected: {expected!r}\n  got:      {treedef!r}")
    inner_size = inner_treedef.num_leaves
    outer_size = outer_treedef.num_leaves
    rows = [leaves[i * inner_size:(i + 1) * inner_size] for i in range(outer_size)]
    columns = [outer_treedef.unflatten([row[j] for row in rows]) for j in range(inner_size)]
    return inner_treedef.unflatten(columns)


def tree_broadcast(prefix_tree: PyTree, full_tree: PyTree,
                   is_leaf: Callable[[Any], bool] | None = None) -> PyTree:
    """Repeats each leaf of ``prefix_tree`` over the matching subtree of ``full_tree``.

    ``nanofn.tree.broadcast`` is the same function.

    Args:
        prefix_tree: a pytree whose structure is a prefix of ``full_tree``'s.
        full_tree: the pytree whose structure the result has.
        is_leaf: optional predicate marking subtrees of ``prefix_tree`` to keep whole.

    Returns:
        A pytree with ``full_tree``'s structure whose leaves come from ``prefix_tree``.

    Example:
        >>> from nanofn import tree_util
        >>> tree_util.tree_broadcast((0, 1), ([5, 6], {'a': 7, 'b': 8}))
        ([0, 0], {'a': 1, 'b': 1})
    """
    prefix_leaves, prefix_def = tree_flatten(prefix_tree, is_leaf)
    subtrees = _flatten_up_to_checked(prefix_def, full_tree, "tree_broadcast",
                                      "prefix_tree", "full_tree")
    return prefix_def.unflatten([
        tree_map(lambda _, p=p: p, sub) for p, sub in zip(prefix_leaves, subtrees)])


# ---------------------------------------------------------------------------------------
# Treedef helpers
# ---------------------------------------------------------------------------------------

def treedef_children(treedef: PyTreeDef) -> list[PyTreeDef]:
    """Returns the treedefs of the children of ``treedef``'s root node.

    Args:
        treedef: a treedef.

    Returns:
        A list with one treedef per child (empty for a leaf or None).

    Example:
        >>> from nanofn import tree_util
        >>> tree_util.treedef_children(tree_util.tree_structure({'a': (1, 2), 'b': 3}))
        [PyTreeDef((*, *)), PyTreeDef(*)]
    """
    return treedef.children()


def treedef_is_leaf(treedef: PyTreeDef) -> bool:
    """Returns True if ``treedef`` has a single node (a leaf, or ``None``), as in JAX.

    Args:
        treedef: a treedef.

    Returns:
        ``treedef.num_nodes == 1``.

    Example:
        >>> from nanofn import tree_util
        >>> tree_util.treedef_is_leaf(tree_util.tree_structure(1.0))
        True
        >>> tree_util.treedef_is_leaf(tree_util.tree_structure([1.0]))
        False
    """
    return treedef.num_nodes == 1


def treedef_tuple(treedefs: Iterable[PyTreeDef]) -> PyTreeDef:
    """Makes the treedef of a tuple whose children have the given treedefs.

    Args:
        treedefs: an iterable of treedefs.

    Returns:
        The treedef of ``tuple(trees)`` for trees with those structures.

    Example:
        >>> from nanofn import tree_util
        >>> a, b = tree_util.tree_structure([1, 2]), tree_util.tree_structure({'x': 3})
        >>> tree_util.treedef_tuple([a, b])
        PyTreeDef(([*, *], {'x': *}))
    """
    treedefs = list(treedefs)
    spec = (tuple, None, tuple([t._spec for t in treedefs]))
    return _make_treedef(spec, sum(t.num_leaves for t in treedefs))


def all_leaves(iterable: Iterable[Any], is_leaf: Callable[[Any], bool] | None = None
               ) -> bool:
    """Returns True if every element of ``iterable`` is a pytree leaf.

    Args:
        iterable: the values to check.
        is_leaf: optional predicate that declares extra values to be leaves.

    Returns:
        True if no element is a pytree node (``None`` is a node, not a leaf).

    Example:
        >>> from nanofn import tree_util
        >>> tree_util.all_leaves([1.0, 'a']), tree_util.all_leaves([1.0, (2.0,)])
        (True, False)
    """
    for x in iterable:
        if is_leaf is not None and is_leaf(x):
            continue
        if (_kinds.get(type(x)) or _classify(type(x))) is not _LEAF_KIND:
            return False
    return True


def is_tree_node(typ: type) -> bool:
    """Returns True if instances of ``typ`` are pytree nodes (built-in or registered).

    Args:
        typ: a type.

    Returns:
        True for tuple, list, dict, NoneType, namedtuple classes and registered types.

    Example:
        >>> from nanofn import tree_util
        >>> tree_util.is_tree_node(dict), tree_util.is_tree_node(float)
        (True, False)
    """
    return (_kinds.get(typ) or _classify(typ)) is not _LEAF_KIND


def flatten_one_level(tree: PyTree) -> tuple[list[Any], Hashable]:
    """Takes apart the root node of a pytree: returns its children and its aux data.

    Args:
        tree: a pytree node (not a leaf).

    Returns:
        ``(children, aux_data)``; for a dict the aux data is the sorted keys, for a
        namedtuple its class.

    Raises:
        ValueError: if ``tree`` is a leaf.

    Example:
        >>> from nanofn import tree_util
        >>> tree_util.flatten_one_level({'b': [1, 2], 'a': 3})
        ([3, [1, 2]], ('a', 'b'))
    """
    node = _value_node(tree)
    if node is None:
        raise ValueError(f"flatten_one_level: a {type(tree).__name__} is a pytree leaf, "
                         "not a node, so it has no children to flatten.")
    return [c for _, c in node[2]], _one_level_aux(node)


def flatten_one_level_with_keys(tree: PyTree) -> tuple[list[tuple[KeyEntry, Any]], Hashable]:
    """Like :func:`flatten_one_level` but returns ``(key, child)`` pairs.

    Args:
        tree: a pytree node (not a leaf).

    Returns:
        ``([(key, child), ...], aux_data)``.

    Example:
        >>> from nanofn import tree_util
        >>> tree_util.flatten_one_level_with_keys([7, 8])
        ([(SequenceKey(idx=0), 7), (SequenceKey(idx=1), 8)], None)
    """
    node = _value_node(tree)
    if node is None:
        raise ValueError(f"flatten_one_level_with_keys: a {type(tree).__name__} is a pytree "
                         "leaf, not a node, so it has no children to flatten.")
    return node[2], _one_level_aux(node)


def _one_level_aux(node):
    """The aux data ``flatten_one_level`` gives: a namedtuple's is its class, as in JAX."""
    node_type, data, _ = node
    if (node_type not in _registry and node_type not in (tuple, list, dict, _NoneType)):
        return node_type
    return data


# ---------------------------------------------------------------------------------------
# Key paths
# ---------------------------------------------------------------------------------------

class _KeyEntry:
    """Base of the key classes: one immutable field, compared by type and value."""

    __slots__ = ()
    _field = ""

    def __init__(self, value):
        object.__setattr__(self, self._field, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return getattr(self, self._field) == getattr(other, self._field)

    def __hash__(self):
        return hash((type(self).__name__, getattr(self, self._field)))

    def __repr__(self):
        return f"{type(self).__name__}({self._field}={getattr(self, self._field)!r})"

    def __reduce__(self):
        return type(self), (getattr(self, self._field),)


def _check_index(cls_name, value):
    """``value`` as an int (bools and numpy ints too), or TypeError, as JAX's keys do."""
    try:
        return int(operator.index(value))
    except TypeError:
        raise TypeError(f"{cls_name}: the index must be an int, got "
                        f"{type(value).__name__}") from None


class SequenceKey(_KeyEntry):
    """Key of a child of a tuple or list, by position; prints as ``[idx]``.

    Example:
        >>> from nanofn import tree_util
        >>> str(tree_util.SequenceKey(2)), tree_util.SequenceKey(2).idx
        ('[2]', 2)
    """

    __slots__ = ("idx",)
    __match_args__ = ("idx",)
    _field = "idx"

    def __init__(self, idx: int):
        super().__init__(_check_index("SequenceKey", idx))

    def __str__(self):
        return f"[{self.idx!r}]"


class DictKey(_KeyEntry):
    """Key of a child of a dict (also OrderedDict, defaultdict); prints as ``['key']``.

    Example:
        >>> from nanofn import tree_util
        >>> str(tree_util.DictKey('w'))
        "['w']"
    """

    __slots__ = ("key",)
    __match_args__ = ("key",)
    _field = "key"

    def __init__(self, key: Hashable):
        super().__init__(key)

    def __str__(self):
        return f"[{self.key!r}]"


class GetAttrKey(_KeyEntry):
    """Key of a named child (namedtuple field, dataclass field); prints as ``.name``.

    Example:
        >>> from nanofn import tree_util
        >>> str(tree_util.GetAttrKey('bias'))
        '.bias'
    """

    __slots__ = ("name",)
    __match_args__ = ("name",)
    _field = "name"

    def __init__(self, name: str):
        if not isinstance(name, str):
            raise TypeError(f"GetAttrKey: name must be a str, got {type(name).__name__}")
        super().__init__(name)

    def __str__(self):
        return f".{self.name}"


class FlattenedIndexKey(_KeyEntry):
    """Key of a child of a custom node registered without keys, by position.

    Example:
        >>> from nanofn import tree_util
        >>> str(tree_util.FlattenedIndexKey(1))
        '[<flat index 1>]'
    """

    __slots__ = ("key",)
    __match_args__ = ("key",)
    _field = "key"

    def __init__(self, key: int):
        super().__init__(_check_index("FlattenedIndexKey", key))

    def __str__(self):
        return f"[<flat index {self.key}>]"


def keystr(keys: KeyPath, *, simple: bool = False, separator: str = "") -> str:
    """Formats a key path, as given by the ``*_with_path`` functions, as a string.

    Args:
        keys: a tuple of keys (SequenceKey, DictKey, GetAttrKey, FlattenedIndexKey, or
            any object with a ``str``).
        simple: if True, print each key bare (``0``, ``w``, ``bias``) instead of in its
            Python accessor form (``[0]``, ``['w']``, ``.bias``).
        separator: the text put between keys.

    Returns:
        The joined string.

    Example:
        >>> from nanofn import tree_util
        >>> path = (tree_util.DictKey('layers'), tree_util.SequenceKey(0))
        >>> tree_util.keystr(path)
        "['layers'][0]"
        >>> tree_util.keystr(path, simple=True, separator='/')
        'layers/0'
    """
    if not simple:
        return separator.join([str(k) for k in keys])
    return separator.join([str(_simple_key(k)) for k in keys])


def _simple_key(key):
    if isinstance(key, SequenceKey):
        return key.idx
    if isinstance(key, (DictKey, FlattenedIndexKey)):
        return key.key
    if isinstance(key, GetAttrKey):
        return key.name
    return key


def _flatten_one_level_with_keys(x, registration):
    if registration.flatten_with_keys is not None:
        keyed, aux = registration.flatten_with_keys(x)
        return list(keyed), aux
    children, aux = registration.flatten(x)
    fields = registration.data_fields
    if fields is not None:
        return [(GetAttrKey(f), c) for f, c in zip(fields, children)], aux
    return [(FlattenedIndexKey(i), c) for i, c in enumerate(children)], aux


def _flatten_with_path(x, path, out, is_leaf):
    if is_leaf is not None and is_leaf(path, x):
        out.append((path, x))
        return _LEAF
    node = _value_node(x)
    if node is None:
        out.append((path, x))
        return _LEAF
    node_type, data, keyed = node
    if node_type is dict:
        data = _sorted_keys(x)
    child_specs = tuple([_flatten_with_path(c, (*path, k), out, is_leaf) for k, c in keyed])
    if node_type is _NoneType:
        return _NONE_SPEC
    return (node_type, data, child_specs)


def tree_flatten_with_path(tree: PyTree, is_leaf: Callable[..., bool] | None = None,
                           is_leaf_takes_path: bool = False
                           ) -> tuple[list[tuple[KeyPath, Leaf]], PyTreeDef]:
    """Like :func:`tree_flatten`, but pairs each leaf with its key path.

    ``nanofn.tree.flatten_with_path`` is the same function.

    Args:
        tree: the pytree to flatten.
        is_leaf: optional predicate marking subtrees to keep whole.
        is_leaf_takes_path: if True, ``is_leaf`` is called as ``is_leaf(path, x)``.

    Returns:
        ``([(key_path, leaf), ...], treedef)``; the treedef equals ``tree_structure(tree)``.

    Example:
        >>> from nanofn import tree_util
        >>> pairs, treedef = tree_util.tree_flatten_with_path({'w': [1, 2]})
        >>> [(tree_util.keystr(path), leaf) for path, leaf in pairs]
        [("['w'][0]", 1), ("['w'][1]", 2)]
    """
    if is_leaf is not None and not is_leaf_takes_path:
        predicate = is_leaf
        is_leaf = lambda _, x: predicate(x)  # noqa: E731
    out = []
    spec = _flatten_with_path(tree, (), out, is_leaf)
    return out, _make_treedef(spec, len(out))


def tree_leaves_with_path(tree: PyTree, is_leaf: Callable[..., bool] | None = None,
                          is_leaf_takes_path: bool = False) -> list[tuple[KeyPath, Leaf]]:
    """Returns ``(key_path, leaf)`` pairs for the leaves of a pytree.

    ``nanofn.tree.leaves_with_path`` is the same function.

    Args:
        tree: the pytree.
        is_leaf: optional predicate marking subtrees to keep whole.
        is_leaf_takes_path: if True, ``is_leaf`` is called as ``is_leaf(path, x)``.

    Returns:
        The list of ``(key_path, leaf)`` pairs, in leaf order.

    Example:
        >>> from nanofn import tree_util
        >>> tree_util.tree_leaves_with_path([1, {'x': 3}])
        [((SequenceKey(idx=0),), 1), ((SequenceKey(idx=1), DictKey(key='x')), 3)]
    """
    return tree_flatten_with_path(tree, is_leaf, is_leaf_takes_path)[0]


def tree_map_with_path(f: Callable[..., Any], tree: PyTree, *rest: PyTree,
                       is_leaf: Callable[..., bool] | None = None,
                       is_leaf_takes_path: bool = False) -> PyTree:
    """Like :func:`tree_map`, but ``f`` also receives each leaf's key path first.

    ``nanofn.tree.map_with_path`` is the same function.

    Args:
        f: function called as ``f(key_path, x, *xs)`` for each leaf ``x`` of ``tree``.
        tree: the pytree whose structure the result has.
        *rest: more pytrees with ``tree``'s structure as a prefix.
        is_leaf: optional predicate marking subtrees of ``tree`` to keep whole.
        is_leaf_takes_path: if True, ``is_leaf`` is called as ``is_leaf(path, x)``.

    Returns:
        A pytree with ``tree``'s structure whose leaves are ``f(path, x, *xs)``.

    Example:
        >>> from nanofn import tree_util
        >>> tree_util.tree_map_with_path(
        ...     lambda path, x: f"{tree_util.keystr(path)}={x}", {'a': 1, 'b': [2]})
        {'a': "['a']=1", 'b': ["['b'][0]=2"]}
    """
    pairs, treedef = tree_flatten_with_path(tree, is_leaf, is_leaf_takes_path)
    others = [
        _flatten_up_to_checked(treedef, other, "tree_map_with_path", "tree #1",
                               f"tree #{i + 2}")
        for i, other in enumerate(rest)]
    return treedef.unflatten([f(path, x, *xs) for (path, x), *xs in zip(pairs, *others)])


# ---------------------------------------------------------------------------------------
# Registering node types
# ---------------------------------------------------------------------------------------

def register_pytree_node(nodetype: type, flatten_func: Callable[[Any], tuple[Iterable, Any]],
                         unflatten_func: Callable[[Any, tuple], Any],
                         flatten_with_keys_func: Callable | None = None) -> None:
    """Makes instances of ``nodetype`` pytree nodes instead of leaves.

    Only instances of exactly ``nodetype`` are affected; subclasses stay leaves unless
    registered too. A type can be registered once.

    Args:
        nodetype: the class to register.
        flatten_func: ``flatten_func(obj) -> (children, aux_data)``: ``children`` is an
            iterable of the sub-pytrees, ``aux_data`` is hashable static data (compared
            with ``==`` and used in jit cache keys, so no arrays).
        unflatten_func: ``unflatten_func(aux_data, children) -> obj``, where ``children``
            is a tuple. It should not validate the children: transforms call it with
            placeholder objects.
        flatten_with_keys_func: optional ``obj -> ([(key, child), ...], aux_data)`` giving
            key paths; without it children get :class:`FlattenedIndexKey` keys.

    Returns:
        None.

    Example:
        >>> from nanofn import tree_util
        >>> class Pair:
        ...     def __init__(self, first, second):
        ...         self.first, self.second = first, second
        >>> tree_util.register_pytree_node(
        ...     Pair, lambda p: ((p.first, p.second), None), lambda _, xs: Pair(*xs))
        >>> tree_util.tree_leaves([Pair(1, (2, 3)), 4])
        [1, 2, 3, 4]
    """
    _register(nodetype, _Registration(nodetype, flatten_func, unflatten_func,
                                      flatten_with_keys_func))


def register_pytree_with_keys(nodetype: type,
                              flatten_with_keys: Callable[[Any], tuple[Iterable, Any]],
                              unflatten_func: Callable[[Any, tuple], Any],
                              flatten_func: Callable | None = None) -> None:
    """Registers a pytree node type whose flatten function also names its children.

    Args:
        nodetype: the class to register.
        flatten_with_keys: ``obj -> ([(key, child), ...], aux_data)``.
        unflatten_func: ``unflatten_func(aux_data, children) -> obj``.
        flatten_func: optional faster ``obj -> (children, aux_data)`` with the same order
            and aux data; derived from ``flatten_with_keys`` if omitted.

    Returns:
        None.

    Example:
        >>> from nanofn import tree_util
        >>> class Box:
        ...     def __init__(self, value):
        ...         self.value = value
        >>> tree_util.register_pytree_with_keys(
        ...     Box, lambda b: (((tree_util.GetAttrKey('value'), b.value),), None),
        ...     lambda _, xs: Box(*xs))
        >>> [tree_util.keystr(p) for p, _ in tree_util.tree_leaves_with_path([Box(1)])]
        ['[0].value']
    """
    if flatten_func is None:
        def flatten_func(x):
            keyed, aux = flatten_with_keys(x)
            return [c for _, c in keyed], aux
    register_pytree_node(nodetype, flatten_func, unflatten_func, flatten_with_keys)


def register_pytree_node_class(cls: type[T]) -> type[T]:
    """Class decorator: registers a class with ``tree_flatten``/``tree_unflatten`` methods.

    The class defines ``tree_flatten(self) -> (children, aux_data)`` and the classmethod
    ``tree_unflatten(cls, aux_data, children)``.

    Args:
        cls: the class to register.

    Returns:
        ``cls`` unchanged, so this can be used as a decorator.

    Example:
        >>> from nanofn import tree_util
        >>> @tree_util.register_pytree_node_class
        ... class Scaled:
        ...     def __init__(self, value, scale):
        ...         self.value, self.scale = value, scale
        ...     def tree_flatten(self):
        ...         return (self.value,), self.scale
        ...     @classmethod
        ...     def tree_unflatten(cls, scale, children):
        ...         return cls(children[0], scale)
        >>> tree_util.tree_structure(Scaled(1.0, scale=2))
        PyTreeDef(CustomNode(Scaled[2], [*]))
    """
    register_pytree_node(cls, lambda x: x.tree_flatten(), cls.tree_unflatten)
    return cls


def register_pytree_with_keys_class(cls: type[T]) -> type[T]:
    """Class decorator like :func:`register_pytree_node_class`, with key paths.

    The class defines ``tree_flatten_with_keys(self) -> ([(key, child), ...], aux_data)``
    and the classmethod ``tree_unflatten(cls, aux_data, children)``; ``tree_flatten`` is
    optional.

    Args:
        cls: the class to register.

    Returns:
        ``cls`` unchanged.

    Example:
        >>> from nanofn import tree_util
        >>> @tree_util.register_pytree_with_keys_class
        ... class Named:
        ...     def __init__(self, x):
        ...         self.x = x
        ...     def tree_flatten_with_keys(self):
        ...         return ((tree_util.GetAttrKey('x'), self.x),), None
        ...     @classmethod
        ...     def tree_unflatten(cls, aux, children):
        ...         return cls(*children)
        >>> tree_util.keystr(tree_util.tree_leaves_with_path(Named(5))[0][0])
        '.x'
    """
    flatten = None
    if hasattr(cls, "tree_flatten"):
        flatten = lambda x: x.tree_flatten()  # noqa: E731
    register_pytree_with_keys(cls, lambda x: x.tree_flatten_with_keys(), cls.tree_unflatten,
                              flatten)
    return cls


def register_static(cls: type[T]) -> type[T]:
    """Registers ``cls`` as a pytree node with no children: its instances are static.

    The whole object becomes aux data, so it must be hashable; it is part of the
    structure (and of jit cache keys), not a leaf.

    Args:
        cls: the class to register.

    Returns:
        ``cls`` unchanged.

    Example:
        >>> from nanofn import tree_util
        >>> @tree_util.register_static
        ... class Tag(str):
        ...     pass
        >>> tree_util.tree_leaves([Tag('relu'), 1.0])
        [1.0]
    """
    register_pytree_with_keys(cls, lambda x: ((), x), lambda x, _: x, lambda x: ((), x))
    return cls


def register_dataclass(nodetype: type[T],
                       data_fields: Iterable[str] | None = None,
                       meta_fields: Iterable[str] | None = None,
                       drop_fields: Iterable[str] = ()) -> type[T]:
    """Registers a class whose attributes are split into data (children) and metadata.

    Data fields become children (arrays, sub-pytrees); meta fields are static aux data
    (hashable, part of jit cache keys). Instances are rebuilt by calling
    ``nodetype(**fields)``. For a ``dataclasses.dataclass`` both lists may be omitted:
    fields are data unless declared with ``field(metadata=dict(static=True))`` (or
    ``nanofn.tree.static()``).

    Args:
        nodetype: the class. ``@register_dataclass`` and
            ``@functools.partial(register_dataclass, data_fields=..., meta_fields=...)``
            both work as class decorators.
        data_fields: names of the attributes that are children.
        meta_fields: names of the attributes that are static metadata.
        drop_fields: dataclass fields to leave out of the pytree altogether (inference
            form only).

    Returns:
        ``nodetype`` unchanged.

    Raises:
        TypeError: if only one of ``data_fields``/``meta_fields`` is given, or neither is
            given for a class that is not a dataclass.
        ValueError: if the fields overlap, or miss or add to the dataclass's init fields.

    Example:
        >>> import dataclasses
        >>> from nanofn import tree_util
        >>> @tree_util.register_dataclass
        ... @dataclasses.dataclass
        ... class Linear:
        ...     w: float
        ...     b: float
        ...     act: str = dataclasses.field(default='relu', metadata=dict(static=True))
        >>> leaves, treedef = tree_util.tree_flatten(Linear(w=1.0, b=2.0))
        >>> leaves, treedef
        ([1.0, 2.0], PyTreeDef(CustomNode(Linear[('relu',)], [*, *])))
        >>> treedef.unflatten([3.0, 4.0])
        Linear(w=3.0, b=4.0, act='relu')
    """
    import dataclasses  # here, not at the top: keeps `import nanofn` fast

    drop_fields = tuple(drop_fields)
    name = getattr(nodetype, "__qualname__", repr(nodetype))
    if data_fields is None or meta_fields is None:
        if (data_fields is None) != (meta_fields is None):
            raise TypeError(
                f"register_dataclass({name}): give both data_fields and meta_fields, or "
                f"neither (to infer them from a dataclass); got data_fields={data_fields!r}"
                f", meta_fields={meta_fields!r}.")
        if not dataclasses.is_dataclass(nodetype):
            raise TypeError(
                f"register_dataclass({name}): data_fields and meta_fields can only be "
                "inferred for a dataclass; decorate the class with @dataclasses.dataclass "
                "first, or pass both lists.")
        fields = [f for f in dataclasses.fields(nodetype) if f.name not in drop_fields]
        data_fields = [f.name for f in fields if not f.metadata.get("static", False)]
        meta_fields = [f.name for f in fields if f.metadata.get("static", False)]
    data_fields, meta_fields = tuple(data_fields), tuple(meta_fields)
    if overlap := sorted(set(data_fields) & set(meta_fields)):
        raise ValueError(f"register_dataclass({name}): fields {overlap} are listed both in "
                         "data_fields and meta_fields; each field must be one or the other.")
    if dataclasses.is_dataclass(nodetype):
        init_fields = {f.name for f in dataclasses.fields(nodetype) if f.init}
        init_fields -= set(drop_fields)
        given = set(data_fields) | set(meta_fields)
        if given != init_fields:
            missing, unexpected = sorted(init_fields - given), sorted(given - init_fields)
            raise ValueError(
                f"register_dataclass({name}): data_fields and meta_fields must together "
                f"list exactly the dataclass fields with init=True. Missing: {missing}; "
                f"unexpected: {unexpected}. Add fields to leave out to drop_fields.")

    def flatten(x):
        return (tuple([getattr(x, f) for f in data_fields]),
                tuple([getattr(x, f) for f in meta_fields]))

    def flatten_with_keys(x):
        return ([(GetAttrKey(f), getattr(x, f)) for f in data_fields],
                tuple([getattr(x, f) for f in meta_fields]))

    def unflatten(meta, children):
        kwargs = dict(zip(meta_fields, meta))
        kwargs.update(zip(data_fields, children))
        return nodetype(**kwargs)

    _register(nodetype, _Registration(nodetype, flatten, unflatten, flatten_with_keys,
                                      data_fields))
    return nodetype


register_pytree_with_keys(
    collections.OrderedDict,
    lambda d: ([(DictKey(k), v) for k, v in d.items()], tuple(d)),
    lambda keys, values: collections.OrderedDict(zip(keys, values)),
    lambda d: (list(d.values()), tuple(d)))


def _flatten_defaultdict_with_keys(d):
    keys = _sorted_keys(d)
    return [(DictKey(k), d[k]) for k in keys], (d.default_factory, keys)


def _flatten_defaultdict(d):
    keys = _sorted_keys(d)
    return [d[k] for k in keys], (d.default_factory, keys)


register_pytree_with_keys(
    collections.defaultdict, _flatten_defaultdict_with_keys,
    lambda aux, values: collections.defaultdict(aux[0], zip(aux[1], values)),
    _flatten_defaultdict)


# ---------------------------------------------------------------------------------------
# Partial
# ---------------------------------------------------------------------------------------

class _HashableCallableShim:
    """Hides a functools.partial from ``Partial.__new__``, which would merge its args."""

    __slots__ = ("args", "fun", "func", "keywords")

    def __init__(self, fun):
        self.fun = fun

    def __call__(self, *args, **kwargs):
        return self.fun(*args, **kwargs)

    def __eq__(self, other):
        if isinstance(other, _HashableCallableShim):
            return self.fun == other.fun
        return self.fun == other

    def __hash__(self):
        return hash(self.fun)

    def __repr__(self):
        return f"_HashableCallableShim({self.fun!r})"  # JAX's name and repr


class Partial(functools.partial):
    """A ``functools.partial`` that is a pytree: its bound arguments are the leaves.

    The function itself is static aux data. Use it to pass a function with array
    arguments through transforms such as ``jit``: the arrays are traced like any other
    leaves. (A plain ``functools.partial`` is a leaf, and its arguments stay hidden.)

    Args:
        func: the function to wrap.
        *args: positional arguments to bind (pytree children).
        **kwargs: keyword arguments to bind (pytree children).

    Example:
        >>> import operator
        >>> from nanofn import tree_util
        >>> add_two = tree_util.Partial(operator.add, 2)
        >>> add_two(3)
        5
        >>> tree_util.tree_leaves(add_two)
        [2]
        >>> tree_util.tree_map(lambda x: x * 10, add_two)(3)
        23
    """

    def __new__(cls, func, *args, **kwargs):
        # functools.partial.__new__ merges a partial ``func`` into the new object, which
        # would turn the wrapped partial's (static) args into leaves, so hide it.
        # As in JAX, this holds for a Partial too: only this Partial's own arguments are
        # its children, and those of the partial it wraps are static.
        if isinstance(func, functools.partial):
            inner = func
            func = _HashableCallableShim(inner)
            out = super().__new__(cls, func, *args, **kwargs)
            func.func, func.args, func.keywords = inner.func, inner.args, inner.keywords
            return out
        return super().__new__(cls, func, *args, **kwargs)


register_pytree_node(
    Partial,
    lambda p: ((p.args, p.keywords), p.func),
    lambda func, children: Partial(func, *children[0], **children[1]))


# ---------------------------------------------------------------------------------------
# The registry object, and dataclass fields marked static
# ---------------------------------------------------------------------------------------

class PyTreeRegistry:
    """The pytree node registry as an object, like JAX's ``PyTreeRegistry``.

    nanofn has one registry; :data:`default_registry` is its only instance, and its methods
    are the module-level functions under the names JAX's registry uses. Example::

        >>> from nanofn import tree_util
        >>> leaves, treedef = tree_util.default_registry.flatten({'a': (1, 2)})
        >>> leaves, treedef
        ([1, 2], PyTreeDef({'a': (*, *)}))
        >>> tree_util.default_registry.flatten_one_level(3.0) is None
        True
    """

    def __init__(self):
        if "default_registry" in globals():
            raise TypeError("nanofn has a single pytree registry: use "
                            "tree_util.default_registry.")

    def flatten(self, tree: PyTree, leaf_predicate: Callable[[Any], bool] | None = None
                ) -> tuple[list[Leaf], PyTreeDef]:
        """``tree_flatten(tree, is_leaf=leaf_predicate)``."""
        return tree_flatten(tree, leaf_predicate)

    def flatten_one_level(self, tree: PyTree) -> tuple[list[Any], Any] | None:
        """``flatten_one_level(tree)``, or None if ``tree`` is a leaf."""
        node = _value_node(tree)
        return None if node is None else ([c for _, c in node[2]], _one_level_aux(node))

    def flatten_one_level_with_keys(self, tree: PyTree
                                    ) -> tuple[list[tuple[KeyEntry, Any]], Any] | None:
        """``flatten_one_level_with_keys(tree)``, or None if ``tree`` is a leaf."""
        node = _value_node(tree)
        return None if node is None else (node[2], _one_level_aux(node))

    def flatten_with_path(self, tree: PyTree,
                          leaf_predicate: Callable[[Any, Any], bool] | None = None
                          ) -> tuple[list[tuple[KeyPath, Leaf]], PyTreeDef]:
        """``tree_flatten_with_path``; ``leaf_predicate`` is called as ``(path, x)``."""
        return tree_flatten_with_path(tree, leaf_predicate, is_leaf_takes_path=True)

    def is_node(self, type: type) -> bool:
        """``is_tree_node(type)``."""
        return is_tree_node(type)

    def register_node(self, type: type, to_iterable: Callable, from_iterable: Callable,
                      to_iterable_with_keys: Callable | None = None) -> None:
        """``register_pytree_node(type, to_iterable, from_iterable, to_iterable_with_keys)``."""
        register_pytree_node(type, to_iterable, from_iterable, to_iterable_with_keys)

    def register_dataclass_node(self, type: type, data_fields: Iterable[str],
                                meta_fields: Iterable[str], /) -> None:
        """``register_dataclass(type, data_fields, meta_fields)``."""
        register_dataclass(type, data_fields, meta_fields)

    def __repr__(self):
        return "<nanofn.tree_util.default_registry>"


default_registry = PyTreeRegistry()


def static(**kwargs: Any) -> Any:
    """A ``dataclasses.field`` marked static, for :func:`register_dataclass`.

    Takes the arguments of :func:`dataclasses.field` and adds ``static=True`` to its
    ``metadata``, so the field becomes aux data (part of the structure), not a child.
    ``nanofn.tree.static`` is this function (``jax.tree.static``).

    Example:
        >>> import dataclasses
        >>> from nanofn import tree, tree_util
        >>> @tree_util.register_dataclass
        ... @dataclasses.dataclass
        ... class Op:
        ...     x: float
        ...     op: str = tree.static(default='add')
        >>> tree.flatten(Op(x=1.0))
        ([1.0], PyTreeDef(CustomNode(Op[('add',)], [*])))
    """
    import dataclasses
    metadata = {"static": True, **(kwargs.pop("metadata", {}) or {})}
    return dataclasses.field(metadata=metadata, **kwargs)
