import collections
import dataclasses
import functools
import operator
import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nanofn import tree, tree_util
from nanofn import _tree

# ---------------------------------------------------------------------------------------
# Node types used across the tests (registered once, at import)
# ---------------------------------------------------------------------------------------

Point = collections.namedtuple("Point", ["x", "y"])
Other = collections.namedtuple("Other", ["x", "y"])


class Box:
    """Registered without keys: one child, a hashable tag as aux data."""

    def __init__(self, value, tag):
        self.value, self.tag = value, tag


tree_util.register_pytree_node(
    Box, lambda b: ((b.value,), b.tag), lambda tag, children: Box(children[0], tag))


@tree_util.register_dataclass
@dataclasses.dataclass
class Inferred:
    x: Any
    y: Any
    name: str = dataclasses.field(default="n", metadata=dict(static=True))


@functools.partial(tree_util.register_dataclass, data_fields=["w"], meta_fields=["act"])
@dataclasses.dataclass
class Explicit:
    w: Any
    act: str


class PlainFields:
    """Not a dataclass: registered with explicit field lists, rebuilt via __init__(**kw)."""

    def __init__(self, a, b, scale):
        self.a, self.b, self.scale = a, b, scale


tree_util.register_dataclass(PlainFields, ["a", "b"], ["scale"])


@tree_util.register_pytree_node_class
class Scaled:
    def __init__(self, value, scale):
        self.value, self.scale = value, scale

    def tree_flatten(self):
        return (self.value,), self.scale

    @classmethod
    def tree_unflatten(cls, scale, children):
        return cls(children[0], scale)


@tree_util.register_pytree_with_keys_class
class Keyed:
    def __init__(self, left, right):
        self.left, self.right = left, right

    def tree_flatten_with_keys(self):
        return (((tree_util.GetAttrKey("left"), self.left),
                 (tree_util.GetAttrKey("right"), self.right)), None)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)


# ---------------------------------------------------------------------------------------
# Hypothesis trees and an independent reference flattener
# ---------------------------------------------------------------------------------------

_keys = st.text(alphabet="abcde", min_size=1, max_size=2)
_leaves = st.one_of(
    st.integers(-5, 5), st.floats(-2, 2), st.text(alphabet="xyz", max_size=2),
    st.integers(0, 3).map(lambda n: np.arange(n, dtype=np.float32)))


def _extend(children):
    small = dict(max_size=3)
    return st.one_of(
        st.lists(children, **small).map(tuple),
        st.lists(children, **small),
        st.dictionaries(_keys, children, **small),
        st.builds(Point, children, children),
        st.dictionaries(_keys, children, **small).map(collections.OrderedDict),
        st.dictionaries(_keys, children, **small).map(
            lambda d: collections.defaultdict(list, d)),
        st.builds(Box, children, st.sampled_from(["p", "q"])),
        st.builds(Inferred, children, children, st.sampled_from(["m", "n"])),
        st.builds(tree_util.Partial, st.just(operator.add), children, children),
    )


trees = st.recursive(st.one_of(_leaves, st.none()), _extend, max_leaves=12)
# Trees are cheap: draw more than the profile's default, and more again in the deep profile.
_EXAMPLES = max(60, settings.default.max_examples)


def reference_paths_and_leaves(x, path=""):
    """Depth-first leaves with their keystr paths, written without nanofn."""
    if x is None:
        return []
    if type(x) in (dict, collections.defaultdict):
        items = [(f"[{k!r}]", x[k]) for k in sorted(x)]
    elif type(x) is collections.OrderedDict:
        items = [(f"[{k!r}]", v) for k, v in x.items()]
    elif type(x) is Point:
        items = [(".x", x.x), (".y", x.y)]
    elif type(x) in (tuple, list):
        items = [(f"[{i}]", c) for i, c in enumerate(x)]
    elif type(x) is Box:
        items = [("[<flat index 0>]", x.value)]
    elif type(x) is Inferred:
        items = [(".x", x.x), (".y", x.y)]
    elif type(x) is tree_util.Partial:
        items = [("[<flat index 0>]", x.args), ("[<flat index 1>]", x.keywords)]
    else:
        return [(path, x)]
    return [pl for key, child in items for pl in reference_paths_and_leaves(child, path + key)]


def assert_same_tree(a, b):
    """Same node types and aux data all the way down, and the very same leaf objects."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b) or sorted(a) == sorted(b)
        if isinstance(a, collections.OrderedDict):
            assert list(a) == list(b)
        if isinstance(a, collections.defaultdict):
            assert a.default_factory is b.default_factory
        for k in a:
            assert_same_tree(a[k], b[k])
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_tree(x, y)
    elif isinstance(a, tree_util.Partial):
        assert a.func is b.func
        assert_same_tree(a.args, b.args)
        assert_same_tree(a.keywords, b.keywords)
    elif isinstance(a, (Box, Inferred)):
        assert vars(a).keys() == vars(b).keys()
        for k in vars(a):
            if k in ("tag", "name"):
                assert getattr(a, k) == getattr(b, k)
            else:
                assert_same_tree(getattr(a, k), getattr(b, k))
    else:
        assert a is b, (a, b)


# ---------------------------------------------------------------------------------------
# Round trips and leaf order
# ---------------------------------------------------------------------------------------

@settings(max_examples=_EXAMPLES, deadline=None)
@given(trees)
def test_flatten_unflatten_round_trip(t):
    leaves, treedef = tree_util.tree_flatten(t)
    assert treedef.num_leaves == len(leaves)
    rebuilt = tree_util.tree_unflatten(treedef, leaves)
    assert_same_tree(rebuilt, t)
    assert tree_util.tree_structure(rebuilt) == treedef
    assert hash(tree_util.tree_structure(rebuilt)) == hash(treedef)
    assert [id(x) for x in tree_util.tree_leaves(t)] == [id(x) for x in leaves]
    assert [id(x) for x in treedef.flatten_up_to(t)] == [id(x) for x in leaves]
    assert pickle.loads(pickle.dumps(treedef)) == treedef


@settings(max_examples=_EXAMPLES, deadline=None)
@given(trees)
def test_leaves_and_paths_match_reference(t):
    expected = reference_paths_and_leaves(t)
    pairs, treedef = tree_util.tree_flatten_with_path(t)
    assert [(tree_util.keystr(p), id(x)) for p, x in pairs] == [
        (p, id(x)) for p, x in expected]
    assert treedef == tree_util.tree_structure(t)
    assert [id(x) for x in tree.leaves(t)] == [id(x) for _, x in expected]


@settings(max_examples=_EXAMPLES, deadline=None)
@given(trees)
def test_map_keeps_structure_and_visits_every_leaf(t):
    mapped = tree_util.tree_map(lambda x: ("seen", x), t)
    assert tree_util.tree_structure(mapped, is_leaf=lambda x: isinstance(x, tuple) and
                                    x[:1] == ("seen",)) == tree_util.tree_structure(t)
    leaves = tree_util.tree_leaves(t)
    wrapped = tree_util.tree_leaves(mapped, is_leaf=lambda x: type(x) is tuple and
                                    len(x) == 2 and x[0] == "seen")
    assert [id(w[1]) for w in wrapped] == [id(x) for x in leaves]


def test_round_trip_of_each_node_type():
    arr = np.ones(2)
    examples = [
        arr, 1.0, None, (), [], {}, (arr,), [arr, 2], {"b": 1, "a": (2, 3)},
        Point(1, [2, 3]), collections.OrderedDict([("z", 1), ("a", 2)]),
        collections.defaultdict(list, {"k": 1}), Box(arr, "t"), Inferred(1, 2, "s"),
        Explicit(w=arr, act="relu"), Scaled(3.0, 2), Keyed(1, (2,)),
        tree_util.Partial(operator.add, 1),
    ]
    for example in examples:
        leaves, treedef = tree_util.tree_flatten(example)
        rebuilt = treedef.unflatten(leaves)
        assert type(rebuilt) is type(example)
        assert tree_util.tree_structure(rebuilt) == treedef
        assert [id(x) for x in tree_util.tree_leaves(rebuilt)] == [id(x) for x in leaves]


def test_unflatten_accepts_any_iterable():
    treedef = tree_util.tree_structure({"a": 0, "b": (0, 0)})
    assert treedef.unflatten(x for x in [1, 2, 3]) == {"a": 1, "b": (2, 3)}
    assert tree_util.tree_unflatten(treedef, (1, 2, 3)) == {"a": 1, "b": (2, 3)}


# ---------------------------------------------------------------------------------------
# Built-in node semantics
# ---------------------------------------------------------------------------------------

def test_dict_children_are_sorted_by_key():
    leaves, treedef = tree_util.tree_flatten({"b": 1, "c": 2, "a": 3})
    assert leaves == [3, 1, 2]
    assert repr(treedef) == "PyTreeDef({'a': *, 'b': *, 'c': *})"
    assert list(treedef.unflatten([1, 2, 3])) == ["a", "b", "c"]
    assert treedef == tree_util.tree_structure({"a": 0, "c": 0, "b": 0})
    assert tree_util.tree_leaves({10: "ten", 2: "two", -1: "minus"}) == ["minus", "two", "ten"]


def test_unsortable_dict_keys_raise_value_error():
    with pytest.raises(ValueError, match="cannot be sorted"):
        tree_util.tree_flatten({1: "a", "b": 2})


def test_ordered_and_default_dicts():
    od = collections.OrderedDict([("z", 1), ("a", 2)])
    assert tree_util.tree_leaves(od) == [1, 2]
    assert list(tree_util.tree_map(lambda x: x, od)) == ["z", "a"]
    assert tree_util.tree_structure(od) != tree_util.tree_structure({"z": 1, "a": 2})
    dd = collections.defaultdict(list, {"b": 1, "a": 2})
    rebuilt = tree_util.tree_map(lambda x: x * 10, dd)
    assert type(rebuilt) is collections.defaultdict and rebuilt.default_factory is list
    assert dict(rebuilt) == {"a": 20, "b": 10}
    assert tree_util.tree_structure(dd) != tree_util.tree_structure(
        collections.defaultdict(dict, {"b": 1, "a": 2}))


def test_none_is_an_empty_node_not_a_leaf():
    assert tree_util.tree_leaves([None, 1, (None,)]) == [1]
    treedef = tree_util.tree_structure([None, 1])
    assert repr(treedef) == "PyTreeDef([None, *])"
    assert treedef.num_leaves == 1 and treedef.num_nodes == 3
    assert tree_util.tree_structure(None) != tree_util.tree_structure(1)
    assert tree_util.treedef_is_leaf(tree_util.tree_structure(None))
    assert tree_util.tree_structure(None).num_leaves == 0
    assert tree_util.tree_map(lambda x: x + 1, [None, 1]) == [None, 2]
    assert tree_util.tree_map(lambda x, y: x + y, [None, 1], [None, 2]) == [None, 3]
    assert tree_util.tree_leaves([None, 1], is_leaf=lambda x: x is None) == [None, 1]


def test_namedtuples_are_nodes_of_their_own_type():
    p = Point(1, (2, 3))
    leaves, treedef = tree_util.tree_flatten(p)
    assert leaves == [1, 2, 3]
    assert repr(treedef) == "PyTreeDef(CustomNode(namedtuple[Point], [*, (*, *)]))"
    rebuilt = treedef.unflatten([4, 5, 6])
    assert type(rebuilt) is Point and rebuilt == Point(4, (5, 6))
    assert treedef != tree_util.tree_structure((1, (2, 3)))
    assert treedef != tree_util.tree_structure(Other(1, (2, 3)))


def test_unregistered_objects_and_subclasses_are_leaves():
    class MyDict(dict):
        pass

    class Opaque:
        pass

    obj = Opaque()
    arr = np.zeros((2, 2))
    values = [obj, arr, np.float32(1), "text", MyDict(a=1), 3 + 1j]
    assert [id(x) for x in tree_util.tree_leaves(values)] == [id(x) for x in values]
    assert tree_util.all_leaves(values)
    assert not tree_util.all_leaves([1, (2,)])
    assert not tree_util.all_leaves([None])
    assert tree_util.all_leaves([(1, 2)], is_leaf=lambda x: isinstance(x, tuple))
    assert not tree_util.is_tree_node(MyDict) and tree_util.is_tree_node(Point)
    assert tree_util.is_tree_node(type(None)) and tree_util.is_tree_node(Box)


def test_is_leaf_stops_the_walk():
    t = {"a": (1, 2), "b": [(3, 4), 5]}
    leaves, treedef = tree_util.tree_flatten(t, is_leaf=lambda x: isinstance(x, tuple))
    assert leaves == [(1, 2), (3, 4), 5]
    assert repr(treedef) == "PyTreeDef({'a': *, 'b': [*, *]})"
    assert tree_util.tree_leaves(t, is_leaf=lambda x: x is t) == [t]
    mapped = tree_util.tree_map(lambda x: sum(x) if isinstance(x, tuple) else -x, t,
                                is_leaf=lambda x: isinstance(x, tuple))
    assert mapped == {"a": 3, "b": [7, -5]}


# ---------------------------------------------------------------------------------------
# map, reduce, all, transpose, broadcast
# ---------------------------------------------------------------------------------------

def test_map_over_several_trees():
    a = {"w": 1, "b": (2, 3)}
    b = {"w": 10, "b": (20, 30)}
    c = {"w": 100, "b": (200, 300)}
    assert tree_util.tree_map(lambda x, y, z: x + y + z, a, b, c) == {
        "w": 111, "b": (222, 333)}
    assert tree.map(lambda x, y: x * y, [1, 2], [3, 4]) == [3, 8]


def test_map_with_prefix_trees_passes_subtrees():
    axes = (0, {"x": None})
    args = ([1, 2], {"x": (3, 4)})
    seen = tree_util.tree_map(lambda ax, sub: (ax, sub), axes, args,
                              is_leaf=lambda x: x is None)
    assert seen == ((0, [1, 2]), {"x": (None, (3, 4))})
    axes_def = tree_util.tree_structure(axes, is_leaf=lambda x: x is None)
    assert axes_def.flatten_up_to(args) == [[1, 2], (3, 4)]
    with pytest.raises(ValueError, match="None vs tuple of length 2"):
        tree_util.tree_structure(axes).flatten_up_to(args)


def test_reduce_all_and_reduce_associative():
    t = {"a": 1, "b": [2, 3], "c": None}
    assert tree_util.tree_reduce(operator.add, t) == 6
    assert tree.reduce(operator.add, t, 10) == 16
    assert tree_util.tree_reduce(lambda acc, x: acc + [x], t, []) == [1, 2, 3]
    with pytest.raises(TypeError, match="initializer"):
        tree_util.tree_reduce(operator.add, [None])
    assert tree_util.tree_reduce(operator.add, [None], initializer=0) == 0
    assert tree_util.tree_all({"a": True, "b": [1, np.True_]})
    assert not tree.all([True, (0,)])
    assert tree.all([None, ()])
    assert tree_util.tree_all([(1, 0)], is_leaf=lambda x: isinstance(x, tuple))
    order = []
    result = tree_util.tree_reduce_associative(
        lambda x, y: order.append((x, y)) or x + y, ["a", "b", "c", "d"])
    assert result == "abcd" and ("ab", "cd") in order
    assert tree.reduce_associative(operator.add, [], identity=0) == 0
    with pytest.raises(TypeError, match="identity"):
        tree.reduce_associative(operator.add, [])


def test_transpose():
    outer = tree_util.tree_structure([0, 0, 0])
    inner = tree_util.tree_structure({"w": 0, "b": (0, 0)})
    t = [{"w": i, "b": (10 * i, 100 * i)} for i in range(3)]
    expected = {"w": [0, 1, 2], "b": ([0, 10, 20], [0, 100, 200])}
    assert tree_util.tree_transpose(outer, inner, t) == expected
    assert tree.transpose(outer, None, t) == expected
    back = tree.transpose(inner, outer, expected)
    assert back == t
    with pytest.raises(TypeError, match="expected: PyTreeDef"):
        tree.transpose(outer, inner, [{"w": 1, "b": (2, 3)}] * 2)


def test_broadcast():
    assert tree_util.tree_broadcast((0, 1), ([5, 6], {"a": 7, "b": None})) == (
        [0, 0], {"a": 1, "b": None})
    assert tree.broadcast(7, {"x": (1, 2)}) == {"x": (7, 7)}
    with pytest.raises(ValueError, match="tree_broadcast: prefix_tree and full_tree"):
        tree.broadcast((1, 2), [1, 2])


# ---------------------------------------------------------------------------------------
# Treedefs
# ---------------------------------------------------------------------------------------

def test_treedef_equality_hash_and_repr():
    t1 = tree_util.tree_structure({"a": np.ones(2), "b": (1, 2)})
    t2 = tree_util.tree_structure({"b": ("x", "y"), "a": 0})
    t3 = tree_util.tree_structure({"a": 1, "b": [1, 2]})
    assert t1 == t2 and hash(t1) == hash(t2) and not (t1 != t2)
    assert t1 != t3
    assert t1 != "PyTreeDef({'a': *, 'b': (*, *)})"
    cache = {t1: "hit"}
    assert cache[t2] == "hit" and t3 not in cache
    assert repr(t1) == "PyTreeDef({'a': *, 'b': (*, *)})"
    assert repr(tree_util.tree_structure((1,))) == "PyTreeDef((*,))"
    assert repr(tree_util.tree_structure(Box(1, "tag"))) == "PyTreeDef(CustomNode(Box[tag], [*]))"
    assert tree_util.tree_structure(Box(1, "p")) != tree_util.tree_structure(Box(1, "q"))
    assert tree_util.tree_structure(Box(1, "p")) == tree_util.tree_structure(Box(2, "p"))
    assert tree_util.tree_structure(Inferred(1, 2, "m")) != tree_util.tree_structure(
        Inferred(1, 2, "n"))


def test_treedef_is_immutable_and_not_constructible():
    treedef = tree_util.tree_structure([1])
    with pytest.raises(AttributeError):
        treedef.num_leaves = 3
    with pytest.raises(TypeError, match="cannot be constructed directly"):
        tree_util.PyTreeDef()


def test_unhashable_aux_data_gives_clear_errors():
    # As in JAX, a treedef hashes even if some aux data does not; == still compares it.
    treedef = tree_util.tree_structure(Box(1, ["unhashable"]))
    assert hash(treedef) == hash(tree_util.tree_structure(Box(2, ["unhashable"])))
    assert treedef != tree_util.tree_structure(Box(1, ["other"]))
    array_aux = tree_util.tree_structure(Box(1, np.arange(3)))
    other = tree_util.tree_structure(Box(1, np.arange(3)))
    with pytest.raises(ValueError, match="aux data"):
        _ = array_aux == other


def test_treedef_children_nodes_compose_and_tuple():
    treedef = tree_util.tree_structure([(1, 2), 3, {"a": 4}, None])
    assert treedef.num_leaves == 4 and treedef.num_nodes == 8
    children = tree_util.treedef_children(treedef)
    assert children == [tree_util.tree_structure((0, 0)), tree_util.tree_structure(0),
                        tree_util.tree_structure({"a": 0}), tree_util.tree_structure(None)]
    assert [c.num_leaves for c in children] == [2, 1, 1, 0]
    assert tree_util.tree_structure(1).children() == []
    assert tree_util.treedef_is_leaf(tree_util.tree_structure(1))
    assert not tree_util.treedef_is_leaf(treedef)
    assert tree_util.treedef_tuple(children) == tree_util.tree_structure(
        ((1, 2), 3, {"a": 4}, None))
    composed = tree_util.tree_structure([0, 0]).compose(tree_util.tree_structure((0, {"k": 0})))
    assert composed == tree_util.tree_structure([(0, {"k": 0}), (0, {"k": 0})])
    assert composed.num_leaves == 4
    assert treedef.node_data() == (list, None)
    assert tree_util.tree_structure(1).node_data() is None


def test_flatten_one_level():
    assert tree_util.flatten_one_level({"b": [1], "a": 2}) == ([2, [1]], ("a", "b"))
    assert tree_util.flatten_one_level(Box(5, "t")) == ([5], "t")
    keyed, aux = tree_util.flatten_one_level_with_keys(Point(1, 2))
    assert keyed == [(tree_util.GetAttrKey("x"), 1), (tree_util.GetAttrKey("y"), 2)]
    with pytest.raises(ValueError, match="leaf"):
        tree_util.flatten_one_level(1.0)


# ---------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------

def test_register_pytree_node_custom_class():
    leaves, treedef = tree_util.tree_flatten([Box((1, 2), "t"), 3])
    assert leaves == [1, 2, 3]
    rebuilt = treedef.unflatten(["a", "b", "c"])
    assert isinstance(rebuilt[0], Box) and rebuilt[0].value == ("a", "b")
    assert rebuilt[0].tag == "t" and rebuilt[1] == "c"

    class SubBox(Box):
        pass

    assert len(tree_util.tree_leaves(SubBox((1, 2), "t"))) == 1  # subclasses stay leaves
    with pytest.raises(ValueError, match="only once"):
        tree_util.register_pytree_node(Box, lambda b: ((), None), lambda a, c: Box(None, a))
    with pytest.raises(ValueError, match="only once"):
        tree_util.register_pytree_node(dict, lambda b: ((), None), lambda a, c: {})


def test_register_pytree_node_after_type_was_seen_as_leaf():
    class Late:
        def __init__(self, v):
            self.v = v

    late = Late(1)
    assert tree_util.tree_leaves(late) == [late]
    tree_util.register_pytree_node(Late, lambda x: ((x.v,), None), lambda _, c: Late(*c))
    assert tree_util.tree_leaves(Late(2)) == [2]


def test_register_pytree_node_class_and_with_keys_class():
    leaves, treedef = tree_util.tree_flatten(Scaled((1, 2), 3))
    assert leaves == [1, 2]
    assert repr(treedef) == "PyTreeDef(CustomNode(Scaled[3], [(*, *)]))"
    assert treedef.unflatten([5, 6]).value == (5, 6)
    pairs = tree_util.tree_leaves_with_path(Keyed(1, [2]))
    assert [(tree_util.keystr(p), x) for p, x in pairs] == [(".left", 1), (".right[0]", 2)]
    assert tree_util.tree_map(lambda x: -x, Keyed(1, 2)).right == -2


def test_register_static():
    @tree_util.register_static
    class Mode(str):
        pass

    t = {"mode": Mode("train"), "x": 1.0}
    assert tree_util.tree_leaves(t) == [1.0]
    assert tree_util.tree_structure(t) != tree_util.tree_structure(
        {"mode": Mode("eval"), "x": 1.0})
    assert tree_util.tree_map(lambda x: x + 1, t)["mode"] == "train"


def test_register_dataclass_decorator_infers_fields():
    obj = Inferred(x=np.ones(2), y=(1, 2), name="layer")
    leaves, treedef = tree_util.tree_flatten(obj)
    assert [type(x) for x in leaves] == [np.ndarray, int, int]
    assert repr(treedef) == "PyTreeDef(CustomNode(Inferred[('layer',)], [*, (*, *)]))"
    rebuilt = treedef.unflatten([1, 2, 3])
    assert rebuilt == Inferred(x=1, y=(2, 3), name="layer")
    paths = [tree_util.keystr(p) for p, _ in tree_util.tree_leaves_with_path(obj)]
    assert paths == [".x", ".y[0]", ".y[1]"]


def test_register_dataclass_explicit_fields():
    leaves, treedef = tree_util.tree_flatten(Explicit(w=(1, 2), act="tanh"))
    assert leaves == [1, 2]
    assert treedef.unflatten([3, 4]) == Explicit(w=(3, 4), act="tanh")
    assert treedef != tree_util.tree_structure(Explicit(w=(1, 2), act="relu"))
    plain = tree_util.tree_map(lambda x: 2 * x, PlainFields(1, [2], scale=0.5))
    assert (plain.a, plain.b, plain.scale) == (2, [4], 0.5)
    assert [tree_util.keystr(p) for p, _ in tree_util.tree_leaves_with_path(plain)] == [
        ".a", ".b[0]"]


def test_register_dataclass_validation_errors():
    @dataclasses.dataclass
    class D:
        a: Any
        b: Any

    class NotDataclass:
        pass

    with pytest.raises(TypeError, match="both data_fields and meta_fields"):
        tree_util.register_dataclass(D, data_fields=["a"])
    with pytest.raises(TypeError, match="dataclass"):
        tree_util.register_dataclass(NotDataclass)
    with pytest.raises(ValueError, match=r"Missing: \['b'\]"):
        tree_util.register_dataclass(D, ["a"], [])
    with pytest.raises(ValueError, match=r"\['a'\] are listed both"):
        tree_util.register_dataclass(D, ["a", "b"], ["a"])

    @dataclasses.dataclass
    class WithDropped:
        a: Any
        cache: Any = None

    tree_util.register_dataclass(WithDropped, drop_fields=["cache"])
    assert tree_util.tree_leaves(WithDropped(1, cache="ignored")) == [1]


# ---------------------------------------------------------------------------------------
# Key paths
# ---------------------------------------------------------------------------------------

def test_key_paths_and_keystr():
    t = {"params": [{"w": 1}, Point(2, 3)], "opt": (Box(4, "t"), None)}
    pairs, treedef = tree.flatten_with_path(t)
    assert treedef == tree.structure(t)
    assert [(tree_util.keystr(p), x) for p, x in pairs] == [
        ("['opt'][0][<flat index 0>]", 4), ("['params'][0]['w']", 1),
        ("['params'][1].x", 2), ("['params'][1].y", 3)]
    path = pairs[1][0]
    assert path == (tree_util.DictKey("params"), tree_util.SequenceKey(0),
                    tree_util.DictKey("w"))
    assert tree_util.keystr(path, simple=True, separator="/") == "params/0/w"
    assert repr(path[1]) == "SequenceKey(idx=0)" and repr(path[0]) == "DictKey(key='params')"
    assert repr(tree_util.GetAttrKey("x")) == "GetAttrKey(name='x')"
    assert repr(tree_util.FlattenedIndexKey(0)) == "FlattenedIndexKey(key=0)"
    assert len({tree_util.SequenceKey(1), tree_util.SequenceKey(1)}) == 1
    assert tree_util.SequenceKey(0) != tree_util.FlattenedIndexKey(0)
    match tree_util.DictKey("k"):
        case tree_util.DictKey(key=k):
            assert k == "k"
    assert tree.leaves_with_path([1, {"x": 3}]) == [
        ((tree_util.SequenceKey(0),), 1),
        ((tree_util.SequenceKey(1), tree_util.DictKey("x")), 3)]


def test_map_with_path_and_path_aware_is_leaf():
    t = {"a": [1, 2], "b": 3}
    out = tree.map_with_path(lambda p, x, y: f"{tree_util.keystr(p)}:{x + y}", t,
                             {"a": [10, 20], "b": 30})
    assert out == {"a": ["['a'][0]:11", "['a'][1]:22"], "b": "['b']:33"}
    pairs = tree_util.tree_leaves_with_path(
        t, is_leaf=lambda p, x: len(p) == 1, is_leaf_takes_path=True)
    assert pairs == [((tree_util.DictKey("a"),), [1, 2]), ((tree_util.DictKey("b"),), 3)]
    pairs = tree_util.tree_leaves_with_path(t, is_leaf=lambda x: isinstance(x, list))
    assert [x for _, x in pairs] == [[1, 2], 3]
    with pytest.raises(ValueError, match=r"tree_map_with_path: tree #1 and tree #2 differ"):
        tree.map_with_path(lambda p, x, y: x, t, {"a": [1], "b": 3})


# ---------------------------------------------------------------------------------------
# Partial
# ---------------------------------------------------------------------------------------

def test_partial_is_a_pytree_of_its_arguments():
    p = tree_util.Partial(operator.add, 1)
    assert p(2) == 3
    assert tree_util.tree_leaves(p) == [1]
    doubled = tree_util.tree_map(lambda x: x * 10, p)
    assert isinstance(doubled, tree_util.Partial) and doubled(2) == 12
    kw = tree_util.Partial(lambda a, *, b: a - b, b=5)
    assert tree_util.tree_leaves(kw) == [5] and tree_util.tree_map(lambda x: 1, kw)(3) == 2
    assert tree_util.tree_structure(tree_util.Partial(operator.add, 1)) == (
        tree_util.tree_structure(tree_util.Partial(operator.add, 7)))
    assert tree_util.tree_structure(tree_util.Partial(operator.add, 1)) != (
        tree_util.tree_structure(tree_util.Partial(operator.mul, 1)))


def test_partial_keeps_plain_functools_partial_static():
    plain = functools.partial(operator.add, 100)
    assert tree_util.tree_leaves(plain) == [plain]  # a plain partial is a leaf
    p = tree_util.Partial(plain, 1)
    assert tree_util.tree_leaves(p) == [1]
    assert p() == 101


# ---------------------------------------------------------------------------------------
# Error messages
# ---------------------------------------------------------------------------------------

def _map_error(*trees, **kwargs):
    with pytest.raises(ValueError) as info:
        tree_util.tree_map(lambda *xs: xs, *trees, **kwargs)
    return str(info.value)


def test_error_dict_keys_differ_shows_path_both_sides_and_both_structures():
    msg = _map_error({"params": {"w": {"a": 1, "b": 2}}}, {"params": {"w": {"a": 1, "c": 2}}})
    assert "at key path ['params']['w']" in msg
    assert "dict with keys ['a', 'b'] vs dict with keys ['a', 'c']" in msg
    assert "keys only in tree #1: ['b']; keys only in tree #2: ['c']" in msg
    assert "PyTreeDef({'params': {'w': {'a': *, 'b': *}}})" in msg
    assert "PyTreeDef({'params': {'w': {'a': *, 'c': *}}})" in msg


def test_error_node_types_differ():
    msg = _map_error({"x": (1, 2)}, {"x": [1, 2]})
    assert "tree_map: tree #1 and tree #2 differ at key path ['x']" in msg
    assert "tuple of length 2 vs list of length 2" in msg
    msg = _map_error((1, 2), Point(1, 2))
    assert "at the root: tuple of length 2 vs namedtuple Point of length 2" in msg
    msg = _map_error([1, (2, 3)], [1, 5.0])
    assert "at key path [1]: tuple of length 2 vs leaf (float)" in msg
    msg = _map_error({"w": (1, 2)}, {"w": np.ones((2, 3), np.float32)})
    assert "leaf (ndarray of shape (2, 3) and dtype float32)" in msg
    msg = _map_error((1, 2), (1, 2, 3))
    assert "tuple of length 2 vs tuple of length 3" in msg


def test_error_points_at_the_mismatching_tree_and_deep_path():
    msg = _map_error([Point(1, {"k": 2})], [Point(1, {"k": 2})], [Point(1, {"j": 2})])
    assert "tree #1 and tree #3 differ at key path [0].y:" in msg
    msg = _map_error([Box(1, "p")], [Box(1, "q")])
    assert "at key path [0]: Box node with aux data 'p' and 1 children vs " in msg
    assert "Box node with aux data 'q'" in msg


def test_error_none_explains_none_is_not_a_leaf():
    msg = _map_error((1, None), (1, 2))
    assert "at key path [1]: None vs leaf (int)" in msg
    assert "is_leaf=lambda x: x is None" in msg


def test_flatten_up_to_error_and_leaf_prefix_is_fine():
    treedef = tree_util.tree_structure({"a": 0, "b": [0, 0]})
    assert treedef.flatten_up_to({"a": (1, 2), "b": [3, {"c": 4}]}) == [(1, 2), 3, {"c": 4}]
    with pytest.raises(ValueError) as info:
        treedef.flatten_up_to({"a": 1, "b": (2, 3)})
    msg = str(info.value)
    assert msg.startswith("PyTreeDef.flatten_up_to: the treedef and the tree differ at key "
                          "path ['b']: list of length 2 vs tuple of length 2.")
    assert "PyTreeDef({'a': *, 'b': [*, *]})" in msg and "PyTreeDef({'a': *, 'b': (*, *)})" in msg


def test_unflatten_with_wrong_number_of_leaves():
    treedef = tree_util.tree_structure({"a": 1, "b": (2, 3)})
    with pytest.raises(ValueError, match=r"has 3 leaves, but 2 leaves were given"):
        tree_util.tree_unflatten(treedef, [1, 2])
    with pytest.raises(ValueError, match=r"has 3 leaves, but 4 leaves were given"):
        treedef.unflatten(iter([1, 2, 3, 4]))


def test_structure_difference_for_identical_structure_checks():
    a = tree_util.tree_structure({"out": (1, 2)})
    b = tree_util.tree_structure({"out": (1, [2])})
    msg = _tree.structure_difference(a, b, "cond", "true_fun output", "false_fun output")
    assert msg.startswith("cond: true_fun output and false_fun output differ at key path "
                          "['out'][1]: leaf vs list of length 1.")
    assert _tree.structure_difference(a, tree_util.tree_structure({"out": ("x", "y")})) is None


# ---------------------------------------------------------------------------------------
# The two public modules
# ---------------------------------------------------------------------------------------

def test_tree_module_aliases_tree_util():
    pairs = {"map": "tree_map", "leaves": "tree_leaves", "structure": "tree_structure",
             "flatten": "tree_flatten", "unflatten": "tree_unflatten", "reduce": "tree_reduce",
             "all": "tree_all", "flatten_with_path": "tree_flatten_with_path",
             "map_with_path": "tree_map_with_path", "leaves_with_path": "tree_leaves_with_path",
             "transpose": "tree_transpose", "broadcast": "tree_broadcast",
             "reduce_associative": "tree_reduce_associative"}
    for short, long in pairs.items():
        assert getattr(tree, short) is getattr(tree_util, long)
    assert sorted(tree.__all__) == sorted([*pairs, "static"])  # static: jax.tree.static
    for name in tree_util.__all__:
        assert hasattr(tree_util, name), name
