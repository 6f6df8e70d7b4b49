"""Tests for nanofn.serialization: bit-exact round trips, safe loading, atomic writes."""

import collections
import io
import json
import os
import stat
import struct
import sys
import types
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nanofn import serialization
from nanofn.serialization import from_bytes, load, save, to_bytes


class Pair(NamedTuple):
    first: object
    second: object


class AdamLikeState(NamedTuple):
    count: np.ndarray
    mu: dict
    nu: dict


class ArrayLike:
    """Stands in for nanofn.Array / jax.Array: an object that only offers __array__."""

    def __init__(self, value):
        self._value = np.asarray(value)

    def __array__(self, dtype=None, copy=None):
        return self._value if dtype is None else self._value.astype(dtype)


def assert_same(a, b, path="tree"):
    """Exact equality: same types, same container layout and key order, same bits."""
    assert type(a) is type(b), f"{path}: {type(a)} != {type(b)}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert a.tobytes() == b.tobytes(), path
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), path
    elif isinstance(a, float):
        assert struct.pack(">d", a) == struct.pack(">d", b), path
    elif isinstance(a, complex):
        assert struct.pack(">dd", a.real, a.imag) == struct.pack(">dd", b.real, b.imag), path
    elif isinstance(a, dict):
        assert len(a) == len(b), path
        for (ka, va), (kb, vb) in zip(a.items(), b.items()):
            assert_same(ka, kb, f"{path} key")
            assert_same(va, vb, f"{path}[{ka!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b)):
            assert_same(u, v, f"{path}[{i}]")
    else:
        assert a == b, path



def at_least(n):
    """n examples, or more when the hypothesis profile asks for more (HYPOTHESIS_PROFILE=deep)."""
    return max(n, settings().max_examples)

# --- round trips -----------------------------------------------------------------------------

DTYPES = [np.int32, np.float32, np.float64, np.bool_, np.int8, np.uint8, np.int64, np.float16,
          np.complex64, np.uint32]

array_leaves = st.sampled_from(DTYPES).flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)))
numpy_scalars = st.sampled_from(DTYPES).flatmap(lambda dt: hnp.arrays(dt, ())).map(
    lambda a: a[()])
python_leaves = st.one_of(st.none(), st.booleans(), st.integers(-2**80, 2**80), st.floats(),
                          st.complex_numbers(), st.text(max_size=6))
leaves = st.one_of(array_leaves, numpy_scalars, python_leaves)
keys = st.one_of(st.text(max_size=5), st.integers(-5, 5), st.none(),
                 st.floats(allow_nan=False))


def containers(children):
    return st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(keys, children, max_size=3),
        st.dictionaries(st.text(max_size=3), children, max_size=3).map(collections.OrderedDict),
        st.builds(Pair, children, children),
    )


trees = st.recursive(leaves, containers, max_leaves=10)


@settings(max_examples=at_least(80))
@given(tree=trees)
def test_round_trip_bytes_is_exact(tree):
    assert_same(from_bytes(to_bytes(tree)), tree)


@settings(max_examples=at_least(10))
@given(tree=trees)
def test_round_trip_file_is_exact(tree):
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "ckpt.npz")
        save(path, tree)
        assert_same(load(path), tree)
        assert os.listdir(directory) == ["ckpt.npz"]


def test_optimizer_state_like_tree(tmp_path):
    params = {"dense": {"w": np.arange(6, dtype=np.float32).reshape(2, 3),
                        "b": np.zeros(3, np.float32)},
              "scale": np.float64(0.5)}
    state = (AdamLikeState(np.array(3, np.int32), params, params), None, ())
    tree = {"params": params, "opt_state": state, "step": 3, "lr": 1e-3,
            "mask": np.array([True, False])}
    path = tmp_path / "state.npz"
    save(path, tree)
    out = load(path)
    assert_same(out, tree)
    assert isinstance(out["opt_state"][0], AdamLikeState)  # the class itself comes back
    assert out["opt_state"][0].mu["dense"]["w"].flags.writeable


def test_array_like_leaves_are_saved_as_numpy(tmp_path):
    tree = [ArrayLike(np.arange(4, dtype=np.int32)), ArrayLike(2.5)]
    out = from_bytes(to_bytes(tree))
    assert type(out[0]) is np.ndarray and out[0].dtype == np.int32
    np.testing.assert_array_equal(out[0], np.arange(4))
    assert type(out[1]) is np.ndarray and out[1].shape == () and out[1] == 2.5


def test_checkpoint_is_a_plain_npz(tmp_path):
    path = tmp_path / "ckpt.npz"
    save(path, {"w": np.arange(3.0)})
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["__nanofn_tree__", "a0"]
        np.testing.assert_array_equal(npz["a0"], np.arange(3.0))


# --- what cannot be saved ----------------------------------------------------------------------

@pytest.mark.parametrize("tree, message", [
    ({"a": [1, {3, 4}]}, r"object at tree\['a'\]\[1\] of type builtins.set"),
    ({"f": len}, r"object at tree\['f'\] of type builtins.builtin_function_or_method"),
    ([np.array([None, 1], dtype=object)], r"array at tree\[0\] has dtype object"),
    ({(1, 2): np.zeros(2)}, r"key \(1, 2\) of type tuple"),
    (collections.defaultdict(list), "of type collections.defaultdict"),
])
def test_unsupported_objects_raise_type_error_before_writing(tmp_path, tree, message):
    path = tmp_path / "ckpt.npz"
    save(path, {"old": 1})
    with pytest.raises(TypeError, match=message):
        save(path, tree)
    assert load(path) == {"old": 1}
    assert os.listdir(tmp_path) == ["ckpt.npz"]


# --- NamedTuple classes: found safely or restored as plain tuples -----------------------------

def _namedtuple_bytes(module, qualname, fields):
    cls = collections.namedtuple("Tmp", fields)
    cls.__module__, cls.__qualname__ = module, qualname
    return to_bytes(cls(*range(len(fields))))


def test_namedtuple_found_by_module_and_qualname():
    out = from_bytes(_namedtuple_bytes(__name__, "Pair", ["first", "second"]))
    assert type(out) is Pair and out == Pair(0, 1)


@pytest.mark.parametrize("module, qualname, fields, why", [
    ("nanofn_no_such_module", "Pair", ["first", "second"], "is not imported"),
    (__name__, "NoSuchClass", ["first", "second"], "has no attribute 'NoSuchClass'"),
    ("json", "dumps", ["first", "second"], "is not a NamedTuple class"),
    (__name__, "ArrayLike", ["first", "second"], "is not a NamedTuple class"),
    (__name__, "Pair", ["first", "third"], "now has fields ['first', 'second']"),
    (__name__, "test_namedtuple_found_by_module_and_qualname.<locals>.X", ["a"], "no attribute"),
])
def test_namedtuple_fallback_is_a_plain_tuple_with_warning(module, qualname, fields, why):
    data = _namedtuple_bytes(module, qualname, fields)
    with pytest.warns(UserWarning, match="as a plain tuple") as record:
        out = from_bytes(data)
    assert type(out) is tuple and out == tuple(range(len(fields)))
    assert why in str(record[0].message)


def test_load_never_imports_modules_named_by_the_file():
    assert "this" not in sys.modules  # importing `this` prints the Zen of Python
    with pytest.warns(UserWarning, match="module 'this' is not imported"):
        out = from_bytes(_namedtuple_bytes("this", "Zen", ["a"]))
    assert out == (0,) and "this" not in sys.modules


def test_load_runs_no_module_getattr_hooks(monkeypatch):
    calls = []
    module = types.ModuleType("nanofn_test_lazy_module")
    module.__getattr__ = lambda name: calls.append(name) or Pair  # a PEP 562 lazy hook
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with pytest.warns(UserWarning, match="has no attribute 'Lazy'"):
        out = from_bytes(_namedtuple_bytes(module.__name__, "Lazy", ["first", "second"]))
    assert out == (0, 1) and calls == []


# --- bad files ---------------------------------------------------------------------------------

SMALL_TREE = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.int32(7),
              "rest": [Pair(1.5, None), "text"]}


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.npz")
    with pytest.raises(FileNotFoundError, match="no such checkpoint file .*nope.npz"):
        load(path)


@pytest.mark.parametrize("content, message", [
    (b"", "is not a nanofn checkpoint: it is empty"),
    (b"\x93NUMPY\x01\x00", "is not a nanofn checkpoint: it starts with"),
    (b"{\"json\": 1}", "is not a nanofn checkpoint"),
    (b"PK\x03\x04garbage", "is truncated or corrupted"),
])
def test_foreign_and_garbage_files(tmp_path, content, message):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        load(path)
    assert repr(str(path)) in str(info.value)


def test_foreign_npz_is_rejected(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, w=np.zeros(3))
    with pytest.raises(ValueError, match="not written by nanofn.serialization.save"):
        load(path)


def test_from_bytes_garbage_names_bytes():
    with pytest.raises(ValueError, match="'<bytes>' is not a nanofn checkpoint"):
        from_bytes(b"hello")


def test_every_truncation_is_detected():
    data = to_bytes(SMALL_TREE)
    for n in range(len(data)):
        with pytest.raises(ValueError, match="'<bytes>'"):
            from_bytes(data[:n])


def test_every_byte_flip_is_detected_or_harmless():
    # A flipped byte either makes load fail with ValueError or lands in bytes that do not
    # matter (zip timestamps, unused header fields); it never yields a different tree.
    data = to_bytes(SMALL_TREE)
    failures = 0
    for i in range(len(data)):
        for flip in (0xFF, 0x01):
            corrupted = bytearray(data)
            corrupted[i] ^= flip
            try:
                out = from_bytes(bytes(corrupted))
            except ValueError:
                failures += 1
                continue
            assert_same(out, SMALL_TREE)
    assert failures > len(data)  # most flips are caught (CRC, headers, structure)


def _npz_with_record(record, arrays=()):
    members = {"__nanofn_tree__": np.frombuffer(json.dumps(record).encode(), np.uint8)}
    members.update((f"a{i}", a) for i, a in enumerate(arrays))
    buffer = io.BytesIO()
    np.savez(buffer, **members)
    return buffer.getvalue()


def _record(tree, leaves=0, **changes):
    record = {"format": "nanofn.serialization", "version": 1, "leaves": leaves, "tree": tree}
    record.update(changes)
    return record


LEAF0 = {"t": "array", "i": 0}


@pytest.mark.parametrize("record, arrays, message", [
    (_record({"t": "none"}, format="other"), (), "not in nanofn's format"),
    (_record({"t": "none"}, version=2), (), "format version 2"),
    (_record({"t": "none"}, leaves=-1), (), "bad leaf count"),
    (_record(LEAF0, leaves=1), (), r"declares 1 arrays \(field 'leaves'\) but the archive "
     "holds only 0"),
    (_record({"t": "none"}, leaves=0), (np.zeros(1),), r"\['a0.npy'\] are unexpected"),
    (_record({"t": "none"}, leaves=1), (np.zeros(1),), "1 stored arrays are not referenced"),
    (_record({"t": "list", "c": [LEAF0, LEAF0]}, leaves=1), (np.zeros(1),), "referenced twice"),
    (_record({"t": "array", "i": 3}, leaves=1), (np.zeros(1),), "leaf index 3 out of range"),
    (_record({"t": "scalar", "i": 0}, leaves=1), (np.zeros(2),), r"has shape \(2,\)"),
    (_record({"t": "set", "c": []}), (), "unknown node type 'set'"),
    (_record({"t": "float", "v": 1.5}), (), "malformed float bits"),
    (_record({"t": "float", "v": "zz" * 8}), (), "truncated or corrupted"),
    (_record({"t": "int", "v": True}), (), "malformed int node"),
    (_record({"t": "tuple"}), (), "without children list"),
    (_record({"t": "dict", "k": [{"t": "int", "v": 1}], "c": []}), (), "dict keys do not match"),
    (_record({"t": "dict", "k": [LEAF0], "c": [{"t": "none"}]}, leaves=1), (np.zeros(1),),
     "malformed dict key"),
    (_record({"t": "dict", "k": [{"t": "int", "v": 1}, {"t": "bool", "v": True}],
              "c": [{"t": "none"}, {"t": "none"}]}), (), "duplicate dict keys"),
    (_record({"t": "namedtuple", "type": "x", "fields": [], "c": []}), (),
     "malformed namedtuple node"),
    (_record([1, 2]), (), "malformed structure node"),
    ([1, 2], (), "not in nanofn's format"),
])
def test_inconsistent_structure_records(record, arrays, message):
    with pytest.raises(ValueError, match=message):
        from_bytes(_npz_with_record(record, arrays))


def test_pickled_arrays_are_refused():
    buffer = io.BytesIO()
    members = {"__nanofn_tree__": np.frombuffer(json.dumps(_record(LEAF0, 1)).encode(), np.uint8),
               "a0": np.array([{"evil": 1}], dtype=object)}
    np.savez(buffer, allow_pickle=True, **members)
    with pytest.raises(ValueError, match="'a0.npy' has dtype object.*needs pickle"):
        from_bytes(buffer.getvalue())


# --- atomic writes -----------------------------------------------------------------------------

OLD = {"step": 1, "w": np.ones(4, np.float32)}
NEW = {"step": 2, "w": np.arange(1000, dtype=np.float64)}


def _partial_then_fail(f, members):
    buffer = io.BytesIO()
    np.savez(buffer, **members)
    f.write(buffer.getvalue()[:100])  # half a checkpoint reaches the disk, then ...
    raise RuntimeError("simulated crash mid-write")


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_failed_write_keeps_the_old_checkpoint(tmp_path, monkeypatch, exc):
    path = tmp_path / "ckpt.npz"
    save(path, OLD)

    def fail(f, members):
        buffer = io.BytesIO()
        np.savez(buffer, **members)
        f.write(buffer.getvalue()[:100])
        raise exc("simulated crash mid-write")

    monkeypatch.setattr(serialization, "_write_npz", fail)
    with pytest.raises(exc, match="simulated crash"):
        save(path, NEW)
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # no temporary file left behind
    assert_same(load(path), OLD)


def test_failed_fsync_or_rename_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    save(path, OLD)

    def boom(*args):
        raise OSError("disk on fire")

    for name in ("fsync", "replace"):
        with monkeypatch.context() as m:
            m.setattr(serialization.os, name, boom)
            with pytest.raises(OSError, match="disk on fire"):
                save(path, NEW)
        assert os.listdir(tmp_path) == ["ckpt.npz"]
        assert_same(load(path), OLD)
    save(path, NEW)
    assert_same(load(path), NEW)


def test_first_save_failure_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(serialization, "_write_npz", _partial_then_fail)
    with pytest.raises(RuntimeError):
        save(tmp_path / "ckpt.npz", NEW)
    assert os.listdir(tmp_path) == []


def test_save_into_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="directory .*missing.* does not exist"):
        save(tmp_path / "missing" / "ckpt.npz", OLD)


def test_overwrite_keeps_permissions(tmp_path):
    path = tmp_path / "ckpt.npz"
    save(path, OLD)
    os.chmod(path, 0o600)
    save(path, NEW)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert_same(load(path), NEW)


def test_safetensors_names_a_typed_key_by_its_own_path(tmp_path):
    # a typed PRNG key is one tensor (its uint32 words) named like any leaf, and comes back
    # as a key when loaded with like=
    pytest.importorskip("safetensors", reason="needs the [safetensors] extra")  # CI installs it
    import safetensors.numpy
    from nanofn import random
    tree = {"w": np.ones(2, np.float32), "rng": random.key(3),
            "layers": [{"keys": random.split(random.key(1), (2, 3))}]}
    path = tmp_path / "m.safetensors"
    serialization.save_safetensors(path, tree)
    raw = safetensors.numpy.load_file(str(path))
    assert sorted(raw) == ["layers.0.keys", "rng", "w"]
    assert raw["rng"].tolist() == [0, 3] and raw["layers.0.keys"].shape == (2, 3, 2)
    back = serialization.load_safetensors(path, like=tree)
    assert back["rng"].shape == () and str(back["rng"].dtype) == "key<fry>"
    assert bool((back["layers"][0]["keys"] == tree["layers"][0]["keys"]).all())
