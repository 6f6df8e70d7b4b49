"""Port: optax's name lookups in optimizer states (`optax/tree_utils/_state_utils_test.py`,
google-deepmind/optax repository): `optax.tree.get_all_with_path`, `get` and `set`, with
paths of key entries in which each NamedTuple field is an
`optax.tree_utils.NamedTupleKey(tuple_name, name)`, and a NamedTuple matched by its class
name; plus `optax.tree.unwrap_random_key_data`.

The program looks names up in the states of `chain(add_noise, scale_by_adam)`,
`inject_stateful_hyperparams` (dict hyperparameters, a schedule's own state), nested
chains, `masked`, and plain nested dicts, filters by `NamedTupleKey.tuple_name` and by
value, sets fields, dict entries and whole NamedTuples, and runs the optimizers after
`set`. Paths are not arrays: each list of matches is recorded as the codepoints of its
paths' `jax.tree_util.keystr` strings and of their entries' class names, next to the
matched values' leaves; errors are recorded as the exception's name. Checked against
optax 0.2.8. The tests below the program also pin the exact key-entry tuples optax
returns, the results of the lookups on plain trees, and the module names.
"""

import numpy as np
import pytest

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    keystr = jax.tree_util.keystr
    NamedTupleKey = optax.tree_utils.NamedTupleKey
    unwrap = optax.tree_utils.tree_unwrap_random_key_data
    t = optax.tree

    def text(s):
        return jnp.asarray([ord(c) for c in s], dtype=jnp.int32)

    def leaves(value):
        return {str(i): jnp.asarray(x)
                for i, x in enumerate(jax.tree_util.tree_leaves(unwrap(value)))}

    def matches(found, field_first=False):
        # field_first: the first entry (a NamedTupleKey) is shown by its field name only,
        # since the class of the state differs (see inject_hyperparams below)
        def shown(path):
            return path[0].name + keystr(path[1:]) if field_first else keystr(path)
        return {"paths": text("|".join(shown(p) for p, _ in found)),
                "kinds": text("|".join(",".join(type(e).__name__ for e in p)
                                       for p, _ in found)),
                "values": {str(i): leaves(v) for i, (_, v) in enumerate(found)}}

    def attempt(f):
        try:
            return {"ok": leaves(f()), "error": text("")}
        except Exception as e:  # noqa: BLE001 (the exception's name is the result)
            return {"ok": {}, "error": text(type(e).__name__)}

    def of_tuple(name):
        return lambda path, _: (isinstance(path[-1], NamedTupleKey)
                                and path[-1].tuple_name == name)

    params = {"w": jnp.asarray([1.0, -2.0, 0.5]), "b": jnp.asarray(0.25)}
    grads = {"w": jnp.asarray([0.3, 0.1, -0.2]), "b": jnp.asarray(-0.5)}
    cases = {}

    # chain(add_noise, scale_by_adam): two `count`s, a key, states found by class name
    # (eta=0: the state's key still advances each step, but the noise draws, which are not
    # what this file checks, drop out of the updates)
    noisy = optax.chain(optax.add_noise(0.0, 0.9, key=0), optax.scale_by_adam())
    s = noisy.init(params)
    for _ in range(2):
        _, s = noisy.update(grads, s, params)
    adam_only = of_tuple("ScaleByAdamState")
    fresh_noise = optax.AddNoiseState(count=jnp.asarray(42, dtype=jnp.int32),
                                      rng_key=jnp.asarray([4, 8], dtype=jnp.uint32))
    set_count = t.set(s, adam_only, count=jnp.asarray(42, dtype=jnp.int32))
    set_noise = t.set(s, AddNoiseState=fresh_noise)
    cases["noisy_adam"] = {
        "count": matches(t.get_all_with_path(s, "count")),
        "count_of_noise": matches(t.get_all_with_path(s, "count", of_tuple("AddNoiseState"))),
        "rng_key": matches(t.get_all_with_path(s, "rng_key")),
        "mu": matches(t.get_all_with_path(s, "mu")),
        "by_class": matches(t.get_all_with_path(s, "AddNoiseState")),
        "by_class_adam": matches(t.get_all_with_path(s, "ScaleByAdamState")),
        "none": matches(t.get_all_with_path(s, "nope")),
        "get_count_adam": attempt(lambda: t.get(s, "count", filtering=adam_only)),
        "get_count_both": attempt(lambda: t.get(s, "count")),
        "get_state": attempt(lambda: t.get(s, "AddNoiseState")),
        "get_default": attempt(lambda: t.get(s, "nope", default=jnp.asarray(7.0))),
        "get_none": attempt(lambda: [t.get(s, "nope")]),
        "set_count_adam": leaves(set_count),
        "set_count_all": leaves(t.set(s, count=jnp.asarray(5, dtype=jnp.int32))),
        "set_state": leaves(set_noise),
        "set_two": leaves(t.set(s, adam_only, count=jnp.asarray(9, dtype=jnp.int32),
                                mu={"b": jnp.asarray(1.0), "w": jnp.ones(3)})),
        "set_missing": attempt(lambda: t.set(s, nope=1.0)),
        "set_filtered_out": attempt(lambda: t.set(s, of_tuple("TraceState"), count=1)),
        "set_state_filtered_out": attempt(lambda: t.set(s, adam_only,
                                                        AddNoiseState=fresh_noise)),
        # the optimizer runs on from the states `set` made
        "after_set_count": leaves(noisy.update(grads, set_count, params)),
        "after_set_state": leaves(noisy.update(grads, set_noise, params)),
    }

    # inject_stateful_hyperparams: hyperparameters in a dict, a schedule's own state
    injected = optax.inject_stateful_hyperparams(optax.adam)(
        learning_rate=lambda count: 0.1 / (count + 1), b1=0.8)
    s = injected.init(params)
    for _ in range(3):
        _, s = injected.update(grads, s, params)
    is_array = lambda _, v: not isinstance(v, tuple)  # noqa: E731
    set_b1 = t.set(s, b1=jnp.asarray(0.5))

    @jax.jit
    def jitted_lr(state):
        return t.get(state, "learning_rate", filtering=is_array)

    @jax.jit
    def jitted_set(state, b1):
        return t.set(state, b1=b1)

    cases["inject_stateful"] = {
        "learning_rate": matches(t.get_all_with_path(s, "learning_rate")),
        "learning_rate_array": matches(t.get_all_with_path(s, "learning_rate", is_array)),
        "learning_rate_state": matches(t.get_all_with_path(
            s, "learning_rate", lambda _, v: isinstance(v, tuple))),
        "count": matches(t.get_all_with_path(s, "count")),
        "hyperparams": matches(t.get_all_with_path(s, "hyperparams")),
        "wrapped": matches(t.get_all_with_path(s, "WrappedScheduleState")),
        "get_lr": attempt(lambda: t.get(s, "learning_rate")),
        "get_lr_array": attempt(lambda: t.get(s, "learning_rate", filtering=is_array)),
        "get_b1": attempt(lambda: t.get(s, "b1")),
        "get_lr_jit": jitted_lr(s),
        "set_b1": leaves(set_b1),
        "set_b1_jit": leaves(jitted_set(s, jnp.asarray(0.5))),
        # a count outside and one in inner_state: `set` replaces only the outer one
        "set_count": leaves(t.set(s, count=jnp.asarray(11, dtype=jnp.int32))),
        "set_lr_array": leaves(t.set(s, is_array, learning_rate=jnp.asarray(0.25))),
        "set_lr_nothing": attempt(lambda: t.set(s, lambda *_: False, learning_rate=1.0)),
        "after_set_b1": leaves(injected.update(grads, set_b1, params)),
    }

    # inject_hyperparams: optax 0.2.8's state class is InjectStatefulHyperparamsState,
    # nanofn's InjectHyperparamsState, so the paths are recorded from the field on
    plain = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.9)
    s = plain.init(params)
    _, s = plain.update(grads, s, params)
    halved = t.set(s, learning_rate=jnp.asarray(0.05))
    cases["inject"] = {
        "learning_rate": matches(t.get_all_with_path(s, "learning_rate"), field_first=True),
        "trace": matches(t.get_all_with_path(s, "trace"), field_first=True),
        "get_lr": attempt(lambda: t.get(s, "learning_rate")),
        "get_momentum": attempt(lambda: t.get(s, "momentum")),
        "get_count": attempt(lambda: t.get(s, "count")),
        "set_lr": attempt(lambda: t.get(halved, "learning_rate")),
        "after_set_lr": leaves(plain.update(grads, halved, params)),
    }

    # nested chains: matches of the outer nodes first, then those nested below them
    nested = optax.chain(
        optax.inject_stateful_hyperparams(optax.sgd)(learning_rate=1.0),
        optax.chain(optax.adam(1.0),
                    optax.inject_stateful_hyperparams(optax.adam)(learning_rate=1e-4)))
    s = nested.init(params)
    cases["nested"] = {
        "learning_rate": matches(t.get_all_with_path(s, "learning_rate")),
        "count": matches(t.get_all_with_path(s, "count")),
        "count_deep": matches(t.get_all_with_path(s, "count", lambda p, _: len(p) > 2)),
        "adam_states": matches(t.get_all_with_path(s, "ScaleByAdamState")),
        "empty_states": matches(t.get_all_with_path(s, "EmptyState")),
        "get_adam": attempt(lambda: t.get(s, "ScaleByAdamState")),
        "set_count": leaves(t.set(s, count=jnp.asarray(3, dtype=jnp.int32))),
        "set_lr": leaves(t.set(s, learning_rate=jnp.asarray(0.5))),
        "set_adam": leaves(t.set(s, of_tuple("ScaleByAdamState"),
                                 mu={"b": jnp.asarray(2.0), "w": jnp.full(3, 2.0)})),
    }

    # masked: the inner state sits in MaskedState.inner_state, masked leaves are MaskedNode
    masked = optax.masked(optax.adam(0.1), {"w": True, "b": False})
    s = masked.init(params)
    _, s = masked.update(grads, s, params)
    cases["masked"] = {
        "mu": matches(t.get_all_with_path(s, "mu")),
        "w": matches(t.get_all_with_path(s, "w")),
        "by_class": matches(t.get_all_with_path(s, "MaskedState")),
        "set_w": leaves(t.set(s, w=jnp.zeros(3))),
    }

    # plain dicts (as in optax's tests), with filtering on the value
    hp = {"hparams": {"learning_rate": jnp.asarray(1.0)}, "learning_rate": jnp.asarray(2)}
    is_float = lambda _, v: hasattr(v, "dtype") and v.dtype == jnp.float32  # noqa: E731
    twice = {"a": {"a": jnp.asarray(1.0)}, "b": {"a": jnp.asarray(1)}}
    deep = {"z": {"x": jnp.asarray(1.0), "y": {"x": jnp.asarray(2.0)}},
            "a": {"x": jnp.asarray(3.0)}, "m": [{"x": jnp.asarray(4.0)}]}
    in_tuple = {"x": jnp.asarray(0.0), "y": ({"x": jnp.asarray(1.0)},)}
    cases["dicts"] = {
        "hp": matches(t.get_all_with_path(hp, "learning_rate")),
        "hp_float": matches(t.get_all_with_path(hp, "learning_rate", is_float)),
        "hp_get": attempt(lambda: t.get(hp, "learning_rate")),
        "hp_get_float": attempt(lambda: t.get(hp, "learning_rate", filtering=is_float)),
        "hp_set_float": matches(t.get_all_with_path(
            t.set(hp, is_float, learning_rate=jnp.asarray(0.5)), "learning_rate")),
        "twice": matches(t.get_all_with_path(twice, "a")),
        "twice_set_float": leaves(t.set(twice, is_float, a=jnp.asarray(2.0))),
        "twice_set_dict": matches(t.get_all_with_path(
            t.set(twice, lambda _, v: isinstance(v, dict), a={"c": jnp.asarray(0.0)}), "c")),
        "deep": matches(t.get_all_with_path(deep, "x")),
        "deep_set": leaves(t.set(deep, x=jnp.asarray(-1.0))),
        "in_tuple": matches(t.get_all_with_path(in_tuple, "x")),
        "in_tuple_set": leaves(t.set(in_tuple, x=jnp.asarray(-1.0))),
        "flat_get": attempt(lambda: [t.get((), "foo", default=jnp.asarray(3))]),
        "flat_set": attempt(lambda: t.set(jnp.asarray([1.0, 2.0]), foo=1.0)),
    }

    cases["unwrap_random_key_data"] = leaves(
        t.unwrap_random_key_data({"key": jax.random.key(3), "raw": jax.random.PRNGKey(5),
                                  "x": jnp.asarray(1.5)}))
    cases["tree_utils_unwrap"] = leaves(
        optax.tree_utils.tree_unwrap_random_key_data((jax.random.key(7), None)))
    return cases


def test_tree_paths_match_optax():
    got, _ = check_against_optax("test_optax_tree_paths", program)
    as_text = lambda key: "".join(map(chr, got[key]))  # noqa: E731
    assert as_text("noisy_adam/count/paths") == (
        "[0]AddNoiseState.count|[1]ScaleByAdamState.count")
    assert as_text("noisy_adam/get_count_both/error") == "KeyError"
    assert as_text("inject_stateful/learning_rate/paths") == (
        "InjectStatefulHyperparamsState.hyperparams['learning_rate']|"
        "InjectStatefulHyperparamsState.hyperparams_states['learning_rate']")


# --- the exact key entries optax 0.2.8 returns, and lookups on plain trees ---------------


def test_paths_are_optaxs_key_entries():
    import nanofn.numpy as jnp
    from nanofn import optim, tree_util
    from nanofn.optim.tree_utils import NamedTupleKey
    SequenceKey, DictKey = tree_util.SequenceKey, tree_util.DictKey

    params = jnp.array([1.0, 2.0, 3.0])
    state = optim.chain(optim.add_noise(1.0, 0.9, key=0), optim.scale_by_adam()).init(params)
    found = optim.tree.get_all_with_path(state, "count")
    assert [p for p, _ in found] == [
        (SequenceKey(0), NamedTupleKey("AddNoiseState", "count")),
        (SequenceKey(1), NamedTupleKey("ScaleByAdamState", "count"))]
    found = optim.tree.get_all_with_path(state, "AddNoiseState")
    assert [p for p, _ in found] == [(SequenceKey(0),)]
    assert found[0][1] is state[0]
    assert type(optim.tree.get(state, "ScaleByAdamState")).__name__ == "ScaleByAdamState"

    state = optim.scale_by_adam().init(params)
    assert optim.tree.get_all_with_path(state, "count") == [
        ((NamedTupleKey("ScaleByAdamState", "count"),), state.count)]

    opt = optim.chain(
        optim.inject_stateful_hyperparams(optim.sgd)(learning_rate=1.0),
        optim.chain(optim.adam(1.0),
                    optim.inject_stateful_hyperparams(optim.adam)(learning_rate=1e-4)))
    found = optim.tree.get_all_with_path(opt.init(params), "learning_rate")
    hyper = NamedTupleKey("InjectStatefulHyperparamsState", "hyperparams")
    assert [p for p, _ in found] == [
        (SequenceKey(0), hyper, DictKey("learning_rate")),
        (SequenceKey(1), SequenceKey(1), hyper, DictKey("learning_rate"))]
    np.testing.assert_allclose([float(v) for _, v in found], [1.0, 1e-4], rtol=1e-6)

    opt = optim.inject_stateful_hyperparams(optim.sgd)(learning_rate=lambda c: c)
    found = optim.tree.get_all_with_path(opt.init(params), "learning_rate",
                                         filtering=lambda _, v: isinstance(v, tuple))
    assert [p for p, _ in found] == [
        (NamedTupleKey("InjectStatefulHyperparamsState", "hyperparams_states"),
         DictKey("learning_rate"))]
    assert type(found[0][1]).__name__ == "WrappedScheduleState"
    assert tree_util.keystr(found[0][0]) == (
        "InjectStatefulHyperparamsState.hyperparams_states['learning_rate']")


def test_lookups_on_plain_trees_are_optaxs():
    from nanofn import tree_util
    from nanofn.optim import tree
    DictKey, SequenceKey = tree_util.DictKey, tree_util.SequenceKey

    assert tree.get_all_with_path((), "foo") == []
    assert tree.get_all_with_path({"a": {"a": 1.0}}, "a") == [
        ((DictKey("a"),), {"a": 1.0}), ((DictKey("a"), DictKey("a")), 1.0)]
    hp = {"hparams": {"learning_rate": 1.0}, "learning_rate": "foo"}
    # the outer match comes first, whatever the dict's order
    assert tree.get_all_with_path(hp, "learning_rate") == [
        ((DictKey("learning_rate"),), "foo"),
        ((DictKey("hparams"), DictKey("learning_rate")), 1.0)]
    assert tree.get(hp, "learning_rate", filtering=lambda _, v: isinstance(v, float)) == 1.0
    with pytest.raises(KeyError):
        tree.get(hp, "learning_rate")
    assert tree.get(hp, "nope") is None and tree.get(hp, "nope", default=7.0) == 7.0

    # outer matches in leaf order (sorted dict keys), then the matches below each of them
    deep = {"z": {"x": 1.0, "y": {"x": 2.0}}, "a": {"x": 3.0}, "m": [{"x": 4.0}]}
    assert [tree_util.keystr(p) for p, _ in tree.get_all_with_path(deep, "x")] == [
        "['a']['x']", "['m'][0]['x']", "['z']['x']", "['z']['y']['x']"]

    assert tree.set({"a": {"a": 1.0}, "b": {"a": 1}}, lambda _, v: isinstance(v, float),
                    a=2.0) == {"a": {"a": 2.0}, "b": {"a": 1}}
    assert tree.set({"a": {"a": 1.0}, "b": {"a": 1}}, lambda _, v: isinstance(v, dict),
                    a={"c": 0.0}) == {"a": {"c": 0.0}, "b": {"a": 1}}
    # below a node that holds the name, `set` goes through dicts and NamedTuples only: the
    # `x` in the tuple is found but kept
    in_tuple = {"x": 0.0, "y": ({"x": 1.0},)}
    assert [p for p, _ in tree.get_all_with_path(in_tuple, "x")] == [
        (DictKey("x"),), (DictKey("y"), SequenceKey(0), DictKey("x"))]
    assert tree.set(in_tuple, x=5.0) == {"x": 5.0, "y": ({"x": 1.0},)}

    with pytest.raises(KeyError):
        tree.set((), foo=1.0)
    with pytest.raises(KeyError, match="filtering"):
        tree.set({"a": 1.0}, lambda *_: False, a=2.0)
    with pytest.raises(KeyError):  # a sibling key that is not a str or int
        tree.set({"x": 1.0, ("a",): 2.0}, x=0.0)


def test_named_tuple_key_and_module_names():
    import dataclasses

    from nanofn.optim import schedules, tree, tree_utils

    key = tree_utils.NamedTupleKey("ScaleByAdamState", "mu")
    assert str(key) == "ScaleByAdamState.mu"
    assert repr(key) == "NamedTupleKey(tuple_name='ScaleByAdamState', name='mu')"
    assert key == tree_utils.NamedTupleKey("ScaleByAdamState", "mu") and hash(key)
    with pytest.raises(dataclasses.FrozenInstanceError):
        key.name = "nu"
    # optax.tree has no NamedTupleKey; optax.tree_utils has it under its own name
    assert "NamedTupleKey" not in tree.__all__ and "NamedTupleKey" in tree_utils.__all__
    assert "tree_NamedTupleKey" not in tree_utils.__all__
    assert tree_utils.tree_unwrap_random_key_data is tree.unwrap_random_key_data
    assert len(tree.__all__) == 35  # optax 0.2.8's optax.tree
    assert sorted(schedules.__all__) == sorted([  # optax 0.2.8's optax.schedules
        "InjectHyperparamsState", "InjectStatefulHyperparamsState", "Schedule",
        "StatefulSchedule", "WrappedSchedule", "constant_schedule", "cosine_decay_schedule",
        "cosine_onecycle_schedule", "exponential_decay", "inject_hyperparams",
        "inject_stateful_hyperparams", "join_schedules", "linear_onecycle_schedule",
        "linear_schedule", "piecewise_constant_schedule", "piecewise_interpolate_schedule",
        "polynomial_schedule", "sgdr_schedule", "warmup_constant_schedule",
        "warmup_cosine_decay_schedule", "warmup_exponential_decay_schedule"])
