"""Pytree programs run under both JAX and nanofn (`jax.tree_util`, `jax.tree`,
`jax.flatten_util`): record_jax_tree.py runs them with JAX into
tests/data/jax_tree_reference.json; tests/test_tree_jax_parity.py runs them with nanofn
and compares.

`run_cases(api)` takes a namespace with `tu` (tree_util), `T` (tree), `ravel_pytree` and
`np` (numpy) and returns {case name: result made JSON-comparable by `norm`}: containers as
[type name, items], keys as [class, str, repr], treedefs as their repr, arrays as
[dtype, shape, values], errors as ["ERR", exception type name]. Cases where nanofn differs
from JAX on purpose (see the parity test) are not here.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import operator

import numpy as np

Point = collections.namedtuple("Point", ["x", "y"])


def norm(x, api):
    tu = api.tu
    if isinstance(x, (bool, int, str, type(None))):
        return [type(x).__name__, x]
    if isinstance(x, float):
        return ["float", repr(x)]
    if isinstance(x, (tu.SequenceKey, tu.DictKey, tu.GetAttrKey, tu.FlattenedIndexKey)):
        return ["KEY", type(x).__name__, str(x), repr(x)]
    if isinstance(x, tu.PyTreeDef):
        return ["TREEDEF", repr(x)]
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        a = np.asarray(x)
        values = (a.tolist() if a.dtype.kind != "c"
                  else [[float(v.real), float(v.imag)] for v in a.ravel()])
        return ["ARR", str(a.dtype), list(a.shape), values]
    if isinstance(x, (list, tuple)):
        return [type(x).__name__, [norm(c, api) for c in x]]
    if isinstance(x, dict):
        return [type(x).__name__, [[repr(k), norm(v, api)] for k, v in x.items()]]
    if isinstance(x, type):
        return ["TYPE", x.__name__]
    return ["OBJ", type(x).__name__, repr(x)]


def _classes(api):
    """The custom node classes, registered once per API (JAX's or nanofn's registry)."""
    if getattr(api, "_classes", None) is not None:
        return api._classes
    tu, T = api.tu, api.T

    class Node:
        def __init__(self, a, b, meta="m"):
            self.a, self.b, self.meta = a, b, meta

        def __repr__(self):
            return f"Node({self.a!r}, {self.b!r}, {self.meta!r})"

    tu.register_pytree_node(Node, lambda n: ((n.a, n.b), n.meta),
                            lambda m, c: Node(c[0], c[1], m))

    class KNode:
        def __init__(self, a, b):
            self.a, self.b = a, b

        def __repr__(self):
            return f"KNode({self.a!r}, {self.b!r})"

    tu.register_pytree_with_keys(
        KNode, lambda n: (((tu.GetAttrKey("a"), n.a), (tu.DictKey("bee"), n.b)), None),
        lambda m, c: KNode(*c))

    @tu.register_pytree_node_class
    class CNode:
        def __init__(self, v, s):
            self.v, self.s = v, s

        def tree_flatten(self):
            return (self.v,), self.s

        @classmethod
        def tree_unflatten(cls, aux, children):
            return cls(children[0], aux)

        def __repr__(self):
            return f"CNode({self.v!r}, {self.s!r})"

    @tu.register_pytree_with_keys_class
    class CKNode:
        def __init__(self, v):
            self.v = v

        def tree_flatten_with_keys(self):
            return ((tu.GetAttrKey("v"), self.v),), None

        @classmethod
        def tree_unflatten(cls, aux, children):
            return cls(*children)

        def __repr__(self):
            return f"CKNode({self.v!r})"

    @tu.register_dataclass
    @dataclasses.dataclass
    class DC:
        w: object
        b: object
        act: str = dataclasses.field(default="relu", metadata={"static": True})

    @functools.partial(tu.register_dataclass, data_fields=["x"], meta_fields=["n"])
    @dataclasses.dataclass
    class DC2:
        x: object
        n: object

    @tu.register_dataclass
    @dataclasses.dataclass
    class DC3:
        x: object
        op: str = T.static(default="add")

    class Plain:
        def __init__(self, x, n):
            self.x, self.n = x, n

        def __repr__(self):
            return f"Plain({self.x!r}, {self.n!r})"

    tu.register_dataclass(Plain, data_fields=["x"], meta_fields=["n"])

    @tu.register_static
    class Tag:
        def __init__(self, s):
            self.s = s

        def __eq__(self, other):
            return type(other) is Tag and other.s == self.s

        def __hash__(self):
            return hash(self.s)

        def __repr__(self):
            return f"Tag({self.s!r})"

    api._classes = dict(Node=Node, KNode=KNode, CNode=CNode, CKNode=CKNode, DC=DC,
                        DC2=DC2, DC3=DC3, Plain=Plain, Tag=Tag)
    return api._classes


def trees(api):
    c = _classes(api)
    tu = api.tu
    return {
        "scalar": 1.0,
        "none": None,
        "empty_tuple": (),
        "empty_list": [],
        "empty_dict": {},
        "nested": {"b": (1, [2, 3]), "a": 4, "c": None},
        "tuple_of_lists": ([1, 2], [3], []),
        "namedtuple": Point(1, (2, 3)),
        "ordered": collections.OrderedDict([("z", 1), ("a", 2)]),
        "defaultdict": collections.defaultdict(list, {"z": 1, "a": 2}),
        "intkeys": {3: "c", 1: "a", 2: "b"},
        "custom": c["Node"](1, [2, 3], "meta"),
        "knode": c["KNode"](1, (2,)),
        "cnode": c["CNode"](5, "s"),
        "cknode": c["CKNode"](6),
        "dataclass": c["DC"](w=1.0, b=2.0),
        "dataclass_explicit": c["DC2"](x=[1, 2], n=3),
        "dataclass_tree_static": c["DC3"](x=1),
        "plain_class": c["Plain"](x=(1,), n=7),
        "static": [c["Tag"]("t"), 1],
        "partial": tu.Partial(operator.add, 2),
        "partial_kw": tu.Partial(max, 1, key=None),
        "partial_nested": tu.Partial(tu.Partial(operator.add, 2), 3),
        "none_in_list": [None, 1, None],
        "deep": [[[[1]]], {"x": {"y": (2,)}}],
        "nested_none_dict": {"a": None, "b": {"c": None}},
    }


def run_cases(api):
    tu, T, np_ = api.tu, api.T, api.np
    out = {}
    n = lambda x: norm(x, api)

    def case(name):
        def deco(f):
            try:
                out[name] = n(f())
            except Exception as e:  # noqa: BLE001 (the error type is the result)
                out[name] = ["ERR", type(e).__name__]
            return f
        return deco

    c = _classes(api)
    for name, t in trees(api).items():
        @case(f"flatten/{name}")
        def _(t=t):
            leaves, d = tu.tree_flatten(t)
            return [leaves, d, d.num_leaves, d.num_nodes, str(d)]

        @case(f"roundtrip/{name}")
        def _(t=t):
            leaves, d = tu.tree_flatten(t)
            return repr(tu.tree_unflatten(d, leaves))

        @case(f"children/{name}")
        def _(t=t):
            return tu.tree_structure(t).children()

        @case(f"node_data/{name}")
        def _(t=t):
            nd = tu.tree_structure(t).node_data()
            return None if nd is None else [nd[0].__name__, n(nd[1])]

        @case(f"treedef_is_leaf/{name}")
        def _(t=t):
            return tu.treedef_is_leaf(tu.tree_structure(t))

        @case(f"with_path/{name}")
        def _(t=t):
            pairs, d = tu.tree_flatten_with_path(t)
            return [[list(p), tu.keystr(p), tu.keystr(p, simple=True, separator="/"), x]
                    for p, x in pairs] + [d]

        @case(f"map_with_path/{name}")
        def _(t=t):
            return repr(T.map_with_path(lambda p, x: tu.keystr(p), t))

        @case(f"map/{name}")
        def _(t=t):
            return repr(T.map(lambda x: [x], t))

        @case(f"flatten_one_level/{name}")
        def _(t=t):
            children, aux = tu.flatten_one_level(t)
            return [list(children), n(aux)]

        @case(f"is_tree_node/{name}")
        def _(t=t):
            return [tu.is_tree_node(type(t)), tu.all_leaves([t])]

        @case(f"walk/{name}")
        def _(t=t):
            leaves, d = tu.tree_flatten(t)
            return d.walk(lambda ch, data: [list(ch), n(data)], lambda x: ("leaf", x), leaves)

        @case(f"from_node_data_and_children/{name}")
        def _(t=t):
            d = tu.tree_structure(t)
            r = tu.PyTreeDef.from_node_data_and_children(tu.default_registry, d.node_data(),
                                                         d.children())
            return [r, r == d]

        @case(f"default_registry/{name}")
        def _(t=t):
            r = tu.default_registry
            one = r.flatten_one_level(t)
            paths, d = r.flatten_with_path(t)
            return [r.flatten(t), None if one is None else [list(one[0]), n(one[1])],
                    [[list(p), x] for p, x in paths], d, r.is_node(type(t))]

    C = case
    # tree_map and friends with several trees, is_leaf and None
    C("map/several")(lambda: tu.tree_map(lambda a, b, c: a + b + c, {"x": 1, "y": (2, 3)},
                                          {"x": 10, "y": (20, 30)}, {"y": (200, 300), "x": 100}))
    C("map/prefix")(lambda: tu.tree_map(lambda a, b: [a, b], (1, 2), ([5, 6], {"q": 7})))
    C("map/is_leaf")(lambda: tu.tree_map(len, {"a": [1, 2], "b": ([3],)},
                                         is_leaf=lambda x: isinstance(x, list)))
    C("map/is_leaf_none")(lambda: tu.tree_map(lambda x: x is None, [None, 1, (None,)],
                                              is_leaf=lambda x: x is None))
    C("map/none_both")(lambda: tu.tree_map(lambda a, b: (a, b), [1, None], [2, None]))
    C("map/none_under_leaf")(lambda: tu.tree_map(lambda a, b: (a, b), [1, 2], [2, None]))
    C("map/none_vs_leaf")(lambda: tu.tree_map(lambda a, b: a, [1, None], [2, 3]))
    C("map/length")(lambda: tu.tree_map(lambda a, b: a, [1, 2], [1, 2, 3]))
    C("map/type")(lambda: tu.tree_map(lambda a, b: a, (1, 2), [1, 2]))
    C("map/keys")(lambda: tu.tree_map(lambda a, b: a, {"a": 1}, {"b": 1}))
    C("map/aux")(lambda: tu.tree_map(lambda a, b: a, c["Node"](1, 2, "x"), c["Node"](1, 2, "y")))
    C("map/dict_vs_ordered")(lambda: tu.tree_map(
        lambda a, b: (a, b), {"a": 1, "b": 2}, collections.OrderedDict([("b", 3), ("a", 4)])))
    C("map/ordered_vs_dict")(lambda: tu.tree_map(
        lambda a, b: (a, b), collections.OrderedDict([("b", 3), ("a", 4)]), {"a": 1, "b": 2}))
    C("map/ordered_orders")(lambda: tu.tree_map(
        lambda a, b: (a, b), collections.OrderedDict([("b", 3), ("a", 4)]),
        collections.OrderedDict([("a", 1), ("b", 2)])))
    C("map/dict_vs_defaultdict")(lambda: tu.tree_map(
        lambda a, b: (a, b), {"a": 1}, collections.defaultdict(list, {"a": 2})))
    C("map/namedtuple_vs_tuple")(lambda: tu.tree_map(lambda a, b: (a, b), Point(1, 2), (3, 4)))
    C("map/tuple_vs_namedtuple")(lambda: tu.tree_map(lambda a, b: (a, b), (3, 4), Point(1, 2)))
    C("map_with_path/several")(lambda: tu.tree_map_with_path(
        lambda p, a, b: (tu.keystr(p), a + b), {"a": 1, "b": [2]}, {"a": 10, "b": [20]}))
    C("map_with_path/is_leaf_takes_path")(lambda: T.map_with_path(
        lambda p, a: tu.keystr(p), {"a": (1, 2), "b": [3]}, is_leaf=lambda p, x: len(p) == 1,
        is_leaf_takes_path=True))
    C("map_with_path/mismatch")(lambda: tu.tree_map_with_path(lambda p, a, b: a, [1], [1, 2]))
    C("leaves_with_path/is_leaf")(lambda: [[tu.keystr(p), v] for p, v in tu.tree_leaves_with_path(
        {"a": (1, 2), "b": 3}, is_leaf=lambda x: isinstance(x, tuple))])
    C("flatten/is_leaf_root")(lambda: tu.tree_flatten([1, 2], is_leaf=lambda x: isinstance(x, list)))
    C("flatten/is_leaf_none")(lambda: tu.tree_flatten([None, 1], is_leaf=lambda x: x is None))
    C("leaves/unsortable_keys")(lambda: tu.tree_leaves({1: "a", "b": 2}))
    C("leaves/ordered_unsortable_keys")(lambda: tu.tree_leaves(
        collections.OrderedDict([(1, "a"), ("b", 2)])))
    C("leaves/dict_subclass")(lambda: len(tu.tree_leaves(type("D", (dict,), {})(a=1))))
    C("leaves/arrays")(lambda: tu.tree_leaves([np_.arange(3), np_.float32(1)]))
    # reduce, all, transpose, broadcast
    C("reduce/plain")(lambda: tu.tree_reduce(operator.add, {"a": 1, "b": [2, 3]}))
    C("reduce/initializer")(lambda: tu.tree_reduce(operator.add, [1, 2], 100))
    C("reduce/initializer_kw")(lambda: T.reduce(operator.add, [1, 2], initializer=100))
    C("reduce/empty")(lambda: tu.tree_reduce(operator.add, []))
    C("reduce/empty_initializer")(lambda: tu.tree_reduce(operator.add, [], 5))
    C("reduce/none_initializer")(lambda: tu.tree_reduce(lambda a, b: (a, b), [1], None))
    C("reduce/is_leaf")(lambda: T.reduce(lambda a, b: a + [b], [(1, 2), 3], [],
                                         is_leaf=lambda x: isinstance(x, tuple)))
    C("reduce_associative/order")(lambda: tu.tree_reduce_associative(
        lambda a, b: f"({a}{b})", list("abcde")))
    C("reduce_associative/empty")(lambda: tu.tree_reduce_associative(operator.add, []))
    C("reduce_associative/identity")(lambda: T.reduce_associative(operator.add, [], identity=0))
    C("all/true")(lambda: tu.tree_all([True, {"a": 1}]))
    C("all/false")(lambda: T.all([True, {"a": 0}]))
    C("all/empty")(lambda: tu.tree_all([]))
    C("all/is_leaf")(lambda: tu.tree_all([[], [1]], is_leaf=lambda x: isinstance(x, list)
                                         and len(x) < 2))
    C("all/positional_is_leaf")(lambda: tu.tree_all([1], lambda x: False))
    C("transpose/plain")(lambda: tu.tree_transpose(
        tu.tree_structure([0, 0]), tu.tree_structure({"w": 0, "b": 0}),
        [{"w": 1, "b": 2}, {"w": 3, "b": 4}]))
    C("transpose/inner_none")(lambda: T.transpose(T.structure([0, 0, 0]), None,
                                                  [(1, 2), (3, 4), (5, 6)]))
    C("transpose/mismatch")(lambda: tu.tree_transpose(
        tu.tree_structure([0, 0]), tu.tree_structure((0, 0)), [(1, 2), (3,)]))
    C("broadcast/plain")(lambda: tu.tree_broadcast((0, 1), ([5, 6], {"a": 7, "b": 8})))
    C("broadcast/none")(lambda: T.broadcast([1, None], [(2, 3), None]))
    C("broadcast/leaf_prefix")(lambda: T.broadcast(1, {"a": (None, 2)}))
    C("broadcast/mismatch")(lambda: T.broadcast([1, 2], [1, 2, 3]))
    # keys and keystr
    keys = {"seq": lambda: tu.SequenceKey(0), "dict_str": lambda: tu.DictKey("a"),
            "dict_int": lambda: tu.DictKey(1), "dict_tuple": lambda: tu.DictKey(("t", 1)),
            "dict_none": lambda: tu.DictKey(None), "attr": lambda: tu.GetAttrKey("bias"),
            "flat": lambda: tu.FlattenedIndexKey(3)}
    for name, make in keys.items():
        C(f"key/{name}")(lambda make=make: [
            make(), make() == make(), hash(make()) == hash(make()), tu.keystr((make(),)),
            tu.keystr((make(),), simple=True), tu.keystr((make(), make()), separator=".")])
    C("key/cross_equality")(lambda: [
        tu.SequenceKey(0) == tu.FlattenedIndexKey(0), tu.DictKey(0) == tu.SequenceKey(0),
        tu.DictKey("a") == "a", tu.SequenceKey(1) == 1, tu.GetAttrKey("a") == tu.DictKey("a")])
    C("key/fields")(lambda: [tu.SequenceKey(2).idx, tu.DictKey("k").key, tu.GetAttrKey("n").name,
                             tu.FlattenedIndexKey(4).key])
    C("key/match_args")(lambda: [tu.SequenceKey.__match_args__, tu.DictKey.__match_args__,
                                 tu.GetAttrKey.__match_args__,
                                 tu.FlattenedIndexKey.__match_args__])
    C("key/bool_index")(lambda: [tu.SequenceKey(True), tu.FlattenedIndexKey(False)])
    C("key/numpy_index")(lambda: tu.SequenceKey(np.int64(2)))
    C("key/seq_str")(lambda: tu.SequenceKey("a"))
    C("key/seq_float")(lambda: tu.SequenceKey(2.0))
    C("key/attr_int")(lambda: tu.GetAttrKey(1))
    C("key/flat_str")(lambda: tu.FlattenedIndexKey("a"))
    C("key/dict_unhashable")(lambda: tu.DictKey([1]))
    C("key/immutable")(lambda: setattr(tu.SequenceKey(1), "idx", 3))
    C("keystr/empty")(lambda: [tu.keystr(()), tu.keystr((), simple=True, separator="/")])
    path = lambda: (tu.DictKey("a"), tu.SequenceKey(0), tu.GetAttrKey("w"),
                    tu.FlattenedIndexKey(1), tu.DictKey(3))
    C("keystr/mixed")(lambda: [tu.keystr(path()), tu.keystr(path(), simple=True),
                               tu.keystr(path(), separator="/"),
                               tu.keystr(path(), simple=True, separator="/")])
    C("keystr/list")(lambda: tu.keystr([tu.DictKey("a"), tu.SequenceKey(0)]))
    C("keystr/other_objects")(lambda: tu.keystr(("raw", 3)))
    C("keystr/positional_simple")(lambda: tu.keystr((tu.DictKey("a"),), True))
    # treedefs
    s = tu.tree_structure
    C("treedef/compose")(lambda: [s([0, 0]).compose(s((0, {"a": 0}))),
                                  s([0, 0]).compose(s((0, {"a": 0}))).num_nodes])
    C("treedef/compose_none")(lambda: s([0, None]).compose(s((0, 0))))
    C("treedef/flatten_up_to")(lambda: s((0, {"a": 0})).flatten_up_to(([1, 2], {"a": (3, 4)})))
    C("treedef/flatten_up_to_mismatch")(lambda: s((0, {"a": 0})).flatten_up_to(([1], {"b": 2})))
    C("treedef/flatten_up_to_none")(lambda: s([None, 0]).flatten_up_to([None, 5]))
    C("treedef/flatten_up_to_none_mismatch")(lambda: s([None, 0]).flatten_up_to([3, 5]))
    C("treedef/unflatten_iterator")(lambda: s((0, 0)).unflatten(iter([1, 2])))
    C("treedef/unflatten_too_many")(lambda: s((0, 0)).unflatten([1, 2, 3]))
    C("treedef/unflatten_too_few")(lambda: s((0, 0)).unflatten([1]))
    C("treedef/equality_none")(lambda: [s(None) == s(None), s([None]) == s([1]),
                                        s(None) == s(()), s((None,)) == s((None,))])
    C("treedef/equality_namedtuple_tuple")(lambda: s(Point(1, 2)) == s((1, 2)))
    C("treedef/equality_dicts")(lambda: [
        s({"a": 1}) == s(collections.OrderedDict(a=1)),
        s(collections.OrderedDict([("a", 1), ("b", 2)]))
        == s(collections.OrderedDict([("b", 1), ("a", 2)])),
        s({"a": 1, "b": 2}) == s({"b": 1, "a": 2}),
        s(collections.defaultdict(list, a=1)) == s(collections.defaultdict(dict, a=1))])
    C("treedef/equality_aux")(lambda: [s(c["Node"](1, 2, "x")) == s(c["Node"](3, 4, "x")),
                                       s(c["Node"](1, 2, "x")) == s(c["Node"](3, 4, "y"))])
    C("treedef/equality_static")(lambda: [s([c["Tag"]("a"), 1]) == s([c["Tag"]("a"), 2]),
                                          s([c["Tag"]("a"), 1]) == s([c["Tag"]("b"), 2])])
    C("treedef/equality_partial")(lambda: [
        s(tu.Partial(operator.add, 1)) == s(tu.Partial(operator.add, 2)),
        s(tu.Partial(operator.add, 1)) == s(tu.Partial(operator.mul, 1))])
    C("treedef/unhashable_aux_hashes")(lambda: [
        isinstance(hash(s(c["Node"](1, 2, ["l"]))), int),
        hash(s(c["Node"](1, 2, ["l"]))) == hash(s(c["Node"](5, 6, ["l"]))),
        isinstance(hash(s(c["DC2"](x=1, n=[1]))), int)])
    C("treedef/set")(lambda: len({s({"a": 1}), s({"a": 2}), s([1])}))
    C("treedef/str_repr")(lambda: [str(d) for d in [s({
        "a": (1, [2, None]), "b": Point(1, 2), "c": c["Node"](1, 2, "m"),
        "d": collections.OrderedDict(z=1), "e": collections.defaultdict(list, k=1),
        "f": c["DC"](1, 2)})]])
    C("treedef/repr_one_tuple")(lambda: [repr(s((1,))), repr(s(((),))), repr(s([()]))])
    C("treedef/construct")(lambda: tu.PyTreeDef())
    C("treedef/tuple")(lambda: tu.treedef_tuple([s([1, 2]), s({"x": 3}), s(None)]))
    C("treedef/tuple_empty")(lambda: tu.treedef_tuple([]))
    C("treedef/children_fn")(lambda: tu.treedef_children(s({"a": (1, 2), "b": 3})))
    C("treedef/is_leaf_fn")(lambda: [tu.treedef_is_leaf(s(x)) for x in (1, None, (), [], [1])])
    C("treedef/walk_too_many")(lambda: s([1]).walk(lambda ch, d: ch, lambda x: x, [1, 2]))
    C("treedef/walk_too_few")(lambda: s([1, 2]).walk(lambda ch, d: ch, lambda x: x, [1]))
    C("flatten_one_level/leaf")(lambda: tu.flatten_one_level(1))
    C("flatten_one_level_with_keys/dict")(lambda: [
        [list(kv) for kv in tu.flatten_one_level_with_keys({"b": 1, "a": [2]})[0]]])
    C("is_tree_node/types")(lambda: [tu.is_tree_node(t) for t in (
        tuple, list, dict, type(None), int, float, Point, collections.OrderedDict,
        collections.defaultdict, c["Node"], tu.Partial, np.ndarray, c["Tag"], c["DC"])])
    C("all_leaves/plain")(lambda: [tu.all_leaves([1, 2.0, "x"]), tu.all_leaves([1, None]),
                                   tu.all_leaves([1, [2]]), tu.all_leaves([])])
    # registration
    C("register/twice")(lambda: tu.register_pytree_node(
        c["Node"], lambda x: ((), None), lambda a, ch: None))
    C("register/returns")(lambda: [
        tu.register_pytree_node(type("R1", (), {}), lambda x: ((), None), lambda a, ch: None),
        tu.register_pytree_with_keys(type("R2", (), {}), lambda x: ((), None),
                                     lambda a, ch: None)])
    C("register_static/unflatten")(lambda: repr(tu.tree_unflatten(
        tu.tree_structure([c["Tag"]("a"), 1]), [5])))
    C("register_dataclass/unflatten")(lambda: repr(tu.tree_unflatten(
        tu.tree_structure(c["DC"](w=1.0, b=2.0, act="tanh")), [3, 4])))

    def register_dataclass_case(name, **kwargs):
        @C(f"register_dataclass/{name}")
        def _():
            @dataclasses.dataclass
            class X:
                a: int
                b: int = 0
                c: int = dataclasses.field(init=False, default=5)
                s: str = dataclasses.field(default="q", metadata={"static": True})
            tu.register_dataclass(X, **kwargs)
            leaves, d = tu.tree_flatten(X(1, 2))
            return [leaves, d, repr(tu.tree_unflatten(d, [9] * len(leaves)))]
    register_dataclass_case("inferred")
    register_dataclass_case("inferred_drop", drop_fields=["b"])
    register_dataclass_case("explicit", data_fields=["a", "b"], meta_fields=["s"])
    register_dataclass_case("explicit_drop", data_fields=["a"], meta_fields=[],
                            drop_fields=["b", "s"])
    register_dataclass_case("missing_field", data_fields=["a"], meta_fields=[])
    register_dataclass_case("non_init_field", data_fields=["a", "b", "c"], meta_fields=["s"])
    register_dataclass_case("only_data_fields", data_fields=["a", "b"])
    register_dataclass_case("overlap", data_fields=["a", "b"], meta_fields=["a", "s"])
    C("register_dataclass/not_a_dataclass")(lambda: tu.register_dataclass(type("Y", (), {})))
    C("register_dataclass/no_nodetype")(lambda: tu.register_dataclass(
        data_fields=["a"], meta_fields=[]))
    C("tree_static/field")(lambda: [T.static(default=3).default,
                                    dict(T.static(default=3).metadata)])
    C("tree_static/metadata")(lambda: [dict(T.static(metadata={"a": 1}).metadata),
                                       dict(T.static(metadata={"static": False}).metadata),
                                       dict(T.static(metadata=None).metadata)])
    # Partial
    C("partial/call")(lambda: [tu.Partial(operator.add, 2)(3),
                               tu.tree_map(lambda x: x * 10, tu.Partial(operator.add, 2))(3)])
    C("partial/keywords")(lambda: tu.tree_leaves(tu.Partial(sorted, [3, 1], key=None,
                                                            reverse=True)))
    C("partial/functools_inside")(lambda: [
        tu.Partial(functools.partial(operator.add, 2))(5),
        tu.tree_leaves(tu.Partial(functools.partial(operator.add, 2), 3)),
        tu.Partial(functools.partial(operator.add, 2)).func.args])
    C("partial/nested")(lambda: [
        tu.Partial(tu.Partial(operator.add, 2), 3)(),
        tu.tree_leaves(tu.Partial(tu.Partial(tu.Partial(operator.add), 1), 2)),
        tu.tree_map(lambda x: x * 10, tu.Partial(tu.Partial(operator.add, 1), 2))()])
    C("partial/isinstance")(lambda: isinstance(tu.Partial(operator.add), functools.partial))
    # ravel_pytree (dtypes on which nanofn's and JAX's defaults agree)
    ravel = api.ravel_pytree
    ravel_trees = {
        "float32": lambda: {"a": np.ones(2, np.float32), "b": np.zeros((1, 2), np.float32)},
        "int32_float32": lambda: [np.arange(2, dtype=np.int32), np.ones(1, np.float32)],
        "int8_uint8": lambda: [np.arange(2, dtype=np.int8), np.ones(1, np.uint8)],
        "bool_int32": lambda: [np.array([True]), np.arange(2, dtype=np.int32)],
        "float16_float32": lambda: [np.ones(2, np.float16), np.ones(1, np.float32)],
        "complex64_float32": lambda: [np.ones(1, np.complex64), np.ones(1, np.float32)],
        "bfloat_free_ints": lambda: [np.arange(3, dtype=np.int32)],
        "empty_list": list,
        "empty_dict": dict,
        "none": lambda: None,
        "python_scalars": lambda: [1.0, 2],
        "python_int": lambda: [3],
        "python_bool": lambda: [True],
        "numpy_scalar": lambda: np.float32(2.5),
        "zero_size": lambda: [np.zeros((0, 3), np.float32), np.ones(2, np.float32)],
    }
    for name, make in ravel_trees.items():
        @C(f"ravel/{name}")
        def _(make=make):
            flat, unravel = ravel(make())
            return [flat, unravel(flat)]
    C("ravel/unravel_shape")(lambda: ravel([np.ones(2, np.float32)])[1](np.ones(3, np.float32)))
    C("ravel/unravel_2d")(lambda: ravel([np.ones(2, np.float32)])[1](np.ones((1, 2), np.float32)))
    C("ravel/unravel_one_dtype_keeps_vector_dtype")(
        lambda: ravel([np.ones(2, np.float32)])[1](np_.asarray(np.ones(2, np.int32))))
    C("ravel/unravel_one_dtype_complex")(lambda: ravel({"a": np.ones(2, np.float32)})[1](
        np_.asarray(np.ones(2, np.complex64))))
    C("ravel/unravel_mixed_wrong_dtype")(lambda: ravel(
        [np.ones(2, np.float32), np.ones(1, np.int32)])[1](np_.asarray(np.ones(3, np.int32))))
    C("ravel/unravel_mixed_casts_back")(lambda: ravel(
        [np.ones(2, np.float16), np.arange(2, dtype=np.int32)])[1](
            np_.asarray(np.array([0.5, 1.5, 2.5, 3.5], np.float32))))
    return out
