"""safetensors round trips, read back by the safetensors library itself."""

import os

import numpy as np
import pytest

import nanofn
from nanofn import nn, serialization

st = pytest.importorskip("safetensors.numpy", reason="needs the [safetensors] extra")  # CI installs it


def test_round_trip_of_a_model_and_names_readable_by_safetensors(tmp_path):
    init, apply = nn.serial(nn.Dense(4), nn.Relu, nn.Dense(2))
    _, params = init(nanofn.random.key(0), (-1, 3))
    tree = {"params": params, "step": np.int32(7), "mask": np.array([True, False])}
    path = tmp_path / "model.safetensors"
    serialization.save_safetensors(path, tree, metadata={"format": "nanofn"})
    raw = st.load_file(str(path))  # the library itself reads it
    assert sorted(raw) == ["mask", "params.0.b", "params.0.w", "params.2.b", "params.2.w",
                           "step"]
    np.testing.assert_array_equal(raw["params.0.w"], np.asarray(params[0]["w"]))
    back = serialization.load_safetensors(path, like=tree)
    assert nanofn.tree.structure(back) == nanofn.tree.structure(tree)
    for a, b in zip(nanofn.tree.leaves(back), nanofn.tree.leaves(tree)):
        np.testing.assert_array_equal(a, np.asarray(b))
        assert a.dtype == np.asarray(b).dtype
    x = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(apply(back["params"], x), apply(params, x))


def test_a_file_written_by_safetensors_loads_into_a_tree(tmp_path):
    path = str(tmp_path / "other.safetensors")
    st.save_file({"w": np.arange(6, dtype=np.float64).reshape(2, 3),
                  "b": np.zeros(3, np.float64)}, path)
    like = {"w": np.zeros((2, 3)), "b": np.zeros(3)}
    back = serialization.load_safetensors(path, like=like)
    np.testing.assert_array_equal(back["w"], np.arange(6.0).reshape(2, 3))
    assert set(serialization.load_safetensors(path)) == {"w", "b"}


def test_mismatches_name_the_tensor(tmp_path):
    path = tmp_path / "m.safetensors"
    serialization.save_safetensors(path, {"w": np.ones((2, 3), np.float32)})
    with pytest.raises(ValueError, match=r"'w'.*float32\[2, 3\].*float32\[3, 2\]"):
        serialization.load_safetensors(path, like={"w": np.ones((3, 2), np.float32)})
    with pytest.raises(ValueError, match="missing b"):
        serialization.load_safetensors(path, like={"w": np.ones((2, 3), np.float32),
                                                   "b": np.ones(1, np.float32)})
    with pytest.raises(ValueError, match="not a readable safetensors"):
        (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 20)
        serialization.load_safetensors(tmp_path / "bad.safetensors")
    with pytest.raises(TypeError, match="'s'"):
        serialization.save_safetensors(path, {"s": np.array(["text"])})


def test_save_is_atomic_and_replaces(tmp_path):
    path = tmp_path / "m.safetensors"
    serialization.save_safetensors(path, {"w": np.ones(3, np.float32)})
    serialization.save_safetensors(path, {"w": np.zeros(3, np.float32)})
    assert serialization.load_safetensors(path)["w"].sum() == 0
    assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []
