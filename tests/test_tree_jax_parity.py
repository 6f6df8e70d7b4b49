"""nanofn's pytree API (tree_util, tree, flatten_util) against JAX 0.10.2's.

The programs of tools/reference/tree_cases.py were run under JAX by
tools/reference/record_jax_tree.py into tests/data/jax_tree_reference.json; here they run
under nanofn and each result (values, types, orderings, key strings, treedef reprs, error
types) must equal JAX's. This test does not import JAX.

The explicit tests below pin the behaviours that were fixed to agree with JAX, and the
places where nanofn differs from JAX on purpose (JAX's behaviour there is a quirk of its
C++ implementation):

* ``all_leaves(xs, is_leaf)``: JAX computes ``list(xs) == tree_leaves(list(xs), is_leaf)``,
  so an ``is_leaf`` that accepts lists swallows the wrapping list itself and answers False;
  nanofn asks whether each element is a leaf.
* ``flatten_one_level_with_keys`` of a namedtuple: JAX names every child after the first
  field; nanofn gives each child its own field (as ``tree_flatten_with_path`` does in both).
* ``register_pytree_node`` of something that is not a class: JAX accepts it silently;
  nanofn raises TypeError.
* ``treedef == None``: JAX raises TypeError; nanofn answers False.
* ``PyTreeDef.walk(f_node, None, leaves)``: JAX's signature allows ``f_leaf=None`` but its
  binding refuses it; nanofn accepts it (leaves pass through).
* Structure-mismatch messages: both raise ValueError; nanofn's text names the key path,
  both structures and what differs.
* ``flatten_one_level`` returns the children as a list for every node type (JAX gives a
  tuple for tuples, dicts and None).
* ravel_pytree's dtypes follow nanofn's dtype policy (float64 inputs stay float64 without
  x64); the recorded cases use dtypes on which both agree.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import operator
import os
import types

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tree_cases import run_cases  # tools/reference, put on sys.path by tests/conftest.py

import nanofn
import nanofn.numpy as fnp
from nanofn import tree, tree_util
from nanofn.flatten_util import ravel_pytree

REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                         "jax_tree_reference.json")
with open(REFERENCE) as fh:
    _RECORDED = json.load(fh)
JAX, JAX_NAMES = _RECORDED["cases"], _RECORDED["names"]


@pytest.fixture(scope="module")
def nanofn_results():
    api = types.SimpleNamespace(tu=tree_util, T=tree, np=fnp, ravel_pytree=ravel_pytree)
    return json.loads(json.dumps(run_cases(api)))  # tuples -> lists, as in the JSON


def test_same_cases_recorded(nanofn_results):
    assert sorted(nanofn_results) == sorted(JAX)


@pytest.mark.parametrize("name", sorted(JAX))
def test_case_matches_jax(nanofn_results, name):
    assert nanofn_results[name] == JAX[name]


# ---------------------------------------------------------------------------------------
# The public names
# ---------------------------------------------------------------------------------------

def test_every_jax_name_exists():
    # the public names of jax.tree_util and jax.tree, recorded with the cases
    for module, names in ((tree_util, JAX_NAMES["tree_util"]), (tree, JAX_NAMES["tree"])):
        assert [n for n in names if not hasattr(module, n)] == []
        assert set(names) <= set(module.__all__)
    for name in ("walk", "from_node_data_and_children", "node_data", "children",
                 "flatten_up_to", "compose", "unflatten"):
        assert hasattr(tree_util.PyTreeDef, name), name


# ---------------------------------------------------------------------------------------
# What was fixed
# ---------------------------------------------------------------------------------------

def test_tree_static_marks_a_dataclass_field_static():
    @tree_util.register_dataclass
    @dataclasses.dataclass
    class Op:
        x: object
        op: str = tree.static(default="add")

    leaves, treedef = tree.flatten(Op(x=1.0))
    assert leaves == [1.0] and repr(treedef) == "PyTreeDef(CustomNode(Op[('add',)], [*]))"
    assert tree.unflatten(treedef, [2.0]) == Op(x=2.0)
    assert dict(tree.static(metadata={"doc": "d"}).metadata) == {"static": True, "doc": "d"}


def test_default_registry():
    registry = tree_util.default_registry
    assert registry.flatten({"a": (1, 2)}) == tree_util.tree_flatten({"a": (1, 2)})
    assert registry.flatten_one_level(1.0) is None
    assert registry.flatten_one_level_with_keys(1.0) is None
    assert registry.flatten_one_level({"b": 1, "a": 2}) == ([2, 1], ("a", "b"))
    paths, _ = registry.flatten_with_path({"a": [1]}, lambda path, x: isinstance(x, list))
    assert paths == [((tree_util.DictKey("a"),), [1])]
    assert registry.is_node(list) and not registry.is_node(int)

    class Box:
        def __init__(self, v):
            self.v = v

    registry.register_node(Box, lambda b: ((b.v,), None), lambda _, c: Box(*c))
    assert tree_util.tree_leaves([Box(3)]) == [3]


def test_partial_inside_partial_keeps_inner_arguments_static():
    inner = tree_util.Partial(operator.add, 2)
    outer = tree_util.Partial(inner, 3)
    assert outer() == 5
    assert tree_util.tree_leaves(outer) == [3]
    assert tree_util.tree_map(lambda x: x * 10, outer)() == 32
    wrapped = tree_util.Partial(functools.partial(operator.add, 2))
    assert wrapped.func.func is operator.add and wrapped.func.args == (2,)


def test_key_constructors_check_their_argument():
    assert tree_util.SequenceKey(True).idx == 1 and type(tree_util.SequenceKey(True).idx) is int
    assert tree_util.SequenceKey(np.int64(2)) == tree_util.SequenceKey(2)
    for bad in (lambda: tree_util.SequenceKey("a"), lambda: tree_util.SequenceKey(1.0),
                lambda: tree_util.FlattenedIndexKey("a"), lambda: tree_util.GetAttrKey(1)):
        with pytest.raises(TypeError):
            bad()


def test_node_data_gives_dict_keys_as_a_list():
    assert tree_util.tree_structure({"b": 1, "a": 2}).node_data() == (dict, ["a", "b"])
    Point = collections.namedtuple("Point", "x y")
    assert tree_util.flatten_one_level(Point(1, 2)) == ([1, 2], Point)


def test_treedef_with_unhashable_aux_data_hashes_and_jits():
    @tree_util.register_dataclass
    @dataclasses.dataclass
    class Model:
        w: object
        sizes: list = dataclasses.field(metadata={"static": True})

    a = tree_util.tree_structure(Model(1.0, [1, 2]))
    assert hash(a) == hash(tree_util.tree_structure(Model(2.0, [1, 2])))
    assert a != tree_util.tree_structure(Model(1.0, [1]))
    f = nanofn.jit(lambda m: m.w * len(m.sizes))
    np.testing.assert_allclose(f(Model(fnp.ones(2), [1, 2, 3])), [3.0, 3.0])
    np.testing.assert_allclose(f(Model(fnp.ones(2), [1])), [1.0, 1.0])


def test_register_dataclass_needs_the_class():
    with pytest.raises(TypeError):
        tree_util.register_dataclass(data_fields=["a"], meta_fields=[])


def test_unravel_keeps_one_dtype_and_checks_mixed_ones():
    _, unravel = ravel_pytree({"a": np.ones(2, np.float32)})
    assert unravel(fnp.asarray(np.ones(2, np.complex64)))["a"].dtype == np.complex64
    flat, unravel = ravel_pytree([np.ones(2, np.float32), np.arange(1, dtype=np.int32)])
    assert flat.dtype == np.float32
    assert [x.dtype for x in unravel(flat)] == [np.float32, np.int32]
    with pytest.raises(TypeError, match="dtype"):
        unravel(fnp.asarray(np.ones(3, np.int32)))
    g = nanofn.grad(lambda v: (unravel(v)[0] ** 2).sum())(flat)  # traces through unravel
    np.testing.assert_allclose(g, [2.0, 2.0, 0.0])
    # Without x64 JAX sees float64 as float32, so these vectors have "the raveled dtype":
    # cast back to the leaves' dtypes (nanofn keeps float64 leaves, JAX makes them f32).
    _, unravel = ravel_pytree({"a": np.ones(2, np.float64)})
    assert unravel(fnp.zeros(2, np.float32))["a"].dtype == np.float64
    _, unravel = ravel_pytree({"a": np.ones(2, np.float32)})
    assert unravel(np.zeros(2, np.float64))["a"].dtype == np.float32


def test_walk_and_from_node_data_and_children():
    treedef = tree_util.tree_structure({"a": (1, None), "b": [2]})
    assert treedef.walk(lambda ch, data: sum(ch), lambda x: 10 * x, [1, 2]) == 30
    assert treedef.walk(lambda ch, data: (ch, data), None, [1, 2]) == (
        (((1, ((), None)), None), ((2,), None)), ["a", "b"])
    rebuilt = tree_util.PyTreeDef.from_node_data_and_children(
        tree_util.default_registry, treedef.node_data(), treedef.children())
    assert rebuilt == treedef and rebuilt.num_leaves == 2
    with pytest.raises(ValueError):
        treedef.walk(lambda ch, data: ch, None, [1])


# ---------------------------------------------------------------------------------------
# Where nanofn differs on purpose (see the module docstring)
# ---------------------------------------------------------------------------------------

def test_deliberate_differences():
    assert tree_util.all_leaves([[1]], is_leaf=lambda x: isinstance(x, list))  # JAX: False
    Point = collections.namedtuple("Point", "x y")
    keyed, _ = tree_util.flatten_one_level_with_keys(Point(1, 2))
    assert [k.name for k, _ in keyed] == ["x", "y"]  # JAX: ["x", "x"]
    with pytest.raises(TypeError):
        tree_util.register_pytree_node(3, lambda x: ((), None), lambda a, c: None)
    assert (tree_util.tree_structure(1) == None) is False  # JAX: TypeError
    with pytest.raises(ValueError, match=r"tree #1.*\n(.*\n)*.*PyTreeDef\(\[\*, \*\]\)"):
        tree_util.tree_map(lambda a, b: a, [1, 2], [1, 2, 3])


# ---------------------------------------------------------------------------------------
# Nested trees from hypothesis: JAX's ordering and key-path rules
# ---------------------------------------------------------------------------------------

Pair = collections.namedtuple("Pair", "first second")
KEYS = st.sampled_from(["a", "b", "c", "w", "z"])


SMALL_INTS = st.integers(-5, 5)


def _trees(leaves=SMALL_INTS):
    def extend(children):
        return st.one_of(
            st.lists(children, max_size=3),
            st.lists(children, max_size=3).map(tuple),
            st.dictionaries(KEYS, children, max_size=3),
            st.dictionaries(KEYS, children, max_size=3).map(
                lambda d: collections.OrderedDict(reversed(list(d.items())))),
            st.tuples(children, children).map(lambda t: Pair(*t)),
            st.builds(tree_util.Partial, st.just(max), children))
    return st.recursive(st.one_of(leaves, st.none()), extend, max_leaves=12)


def _expected_leaves(x):
    """JAX's leaf order, written out: dicts by sorted key, OrderedDicts as inserted."""
    if x is None:
        return []
    if isinstance(x, tree_util.Partial):
        return _expected_leaves(x.args) + _expected_leaves(x.keywords)
    if isinstance(x, collections.OrderedDict):
        return [leaf for v in x.values() for leaf in _expected_leaves(v)]
    if isinstance(x, dict):
        return [leaf for k in sorted(x) for leaf in _expected_leaves(x[k])]
    if isinstance(x, (list, tuple)):
        return [leaf for c in x for leaf in _expected_leaves(c)]
    return [x]


def _follow(x, path):
    for key in path:
        if isinstance(key, tree_util.GetAttrKey):
            x = getattr(x, key.name)
        elif isinstance(key, tree_util.DictKey):
            x = x[key.key]
        elif isinstance(key, tree_util.SequenceKey):
            x = x[key.idx]
        else:  # FlattenedIndexKey: the Partial's (args, keywords)
            x = (x.args, x.keywords)[key.key]
    return x


@given(_trees())
def test_random_trees_follow_jax_rules(t):
    leaves, treedef = tree_util.tree_flatten(t)
    assert leaves == _expected_leaves(t)
    back = tree_util.tree_unflatten(treedef, leaves)
    assert tree_util.tree_structure(back) == treedef and tree_util.tree_leaves(back) == leaves
    pairs, path_treedef = tree_util.tree_flatten_with_path(t)
    assert path_treedef == treedef and [x for _, x in pairs] == leaves
    for path, leaf in pairs:
        assert _follow(t, path) == leaf
    assert treedef.num_leaves == len(leaves)
    assert treedef.walk(lambda ch, data: sum(ch), lambda x: 1, leaves) == len(leaves)

    def rebuild(td):
        data = td.node_data()
        children = [rebuild(c) for c in td.children()]
        return tree_util.PyTreeDef.from_node_data_and_children(
            tree_util.default_registry, data, children)

    assert rebuild(treedef) == treedef and hash(rebuild(treedef)) == hash(treedef)
    doubled = tree.map(lambda a, b: a + b, t, t)
    assert tree.leaves(doubled) == [2 * x for x in leaves]


@given(_trees(st.integers(-3, 3).map(lambda v: np.full((2,), v, np.float32))))
def test_random_trees_ravel_roundtrip(t):
    flat, unravel = ravel_pytree(t)
    leaves = tree_util.tree_leaves(t)
    assert flat.shape == (2 * len(leaves),) and flat.dtype == np.float32
    back = unravel(flat)
    assert tree_util.tree_structure(back) == tree_util.tree_structure(t)
    for a, b in zip(tree_util.tree_leaves(back), leaves):
        np.testing.assert_array_equal(np.asarray(a), b)
