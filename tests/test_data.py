"""Tests for nanofn.data: the embedded digits, the IDX reader and `batches`."""

import csv
import gzip
import hashlib
import importlib.resources
import io
import os
import struct
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nanofn.data import batches, load_digits, load_mnist, read_idx


def at_least(n):
    """n examples, or more when the hypothesis profile asks for more (HYPOTHESIS_PROFILE=deep)."""
    return max(n, settings().max_examples)

# --- the embedded digits -------------------------------------------------------------------

# sha256 of sklearn/datasets/data/digits.csv.gz as scikit-learn distributes it; nanofn ships
# the file unchanged.
DIGITS_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"


def _raw_digits_table():
    """The packaged CSV parsed independently of nanofn.data, with the csv module."""
    raw = importlib.resources.files("nanofn.data").joinpath("digits.csv.gz").read_bytes()
    rows = list(csv.reader(io.StringIO(gzip.decompress(raw).decode("ascii"))))
    return np.array([[int(v) for v in row] for row in rows])


def test_digits_file_is_the_unchanged_upstream_file_with_licence():
    files = importlib.resources.files("nanofn.data")
    raw = files.joinpath("digits.csv.gz").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == DIGITS_SHA256
    licence = files.joinpath("DIGITS_LICENSE.txt").read_text()
    for needle in ("Alpaydin", "Kaynak", "CC BY 4.0", "10.24432/C50P49", "BSD-3-Clause"):
        assert needle in licence


def test_digits_full_set_matches_the_csv():
    table = _raw_digits_table()
    assert table.shape == (1797, 65)
    x, y = load_digits()
    assert x.shape == (1797, 8, 8) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int32
    np.testing.assert_array_equal(x.reshape(1797, 64) * 16, table[:, :64])
    np.testing.assert_array_equal(y, table[:, 64])
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(np.unique(y)) == set(range(10))
    counts = np.bincount(y, minlength=10)
    assert counts.sum() == 1797 and counts.min() >= 170 and counts.max() <= 190


def test_digits_raw_values_flatten_and_dtype():
    raw, _ = load_digits(normalize=False, dtype=np.int64)
    assert raw.dtype == np.int64 and raw.min() == 0 and raw.max() == 16
    flat, _ = load_digits(flatten=True, dtype=np.float64)
    assert flat.shape == (1797, 64) and flat.dtype == np.float64
    np.testing.assert_array_equal(flat * 16, raw.reshape(1797, 64))
    # rows are images in row-major order: pixel (r, c) is column 8 * r + c
    np.testing.assert_array_equal(flat[:, 8 * 3 + 5] * 16, raw[:, 3, 5])


def test_digits_split_is_fixed_and_held_out():
    table = _raw_digits_table()
    x_tr, y_tr = load_digits("train")
    x_te, y_te = load_digits("test")
    assert x_tr.shape == (1498, 8, 8) and x_te.shape == (299, 8, 8)
    # documented rule: every sixth row (5, 11, 17, ...) is test, the rest train, in file order
    is_test = np.arange(len(table)) % 6 == 5
    np.testing.assert_array_equal(y_tr, table[~is_test, 64])
    np.testing.assert_array_equal(y_te, table[is_test, 64])
    np.testing.assert_array_equal(x_te.reshape(299, 64) * 16, table[is_test, :64])
    x_all, y_all = load_digits()
    np.testing.assert_array_equal(x_all[is_test], x_te)
    np.testing.assert_array_equal(x_all[~is_test], x_tr)
    np.testing.assert_array_equal(y_all[is_test], y_te)
    assert np.bincount(y_te, minlength=10).min() >= 20  # every class is in the test split
    x2, y2 = load_digits("test")
    np.testing.assert_array_equal(x2, x_te)
    np.testing.assert_array_equal(y2, y_te)


def test_digits_results_cannot_corrupt_the_cache():
    x, y = load_digits("train", normalize=False, dtype=np.uint8)
    expected_x, expected_y = x.copy(), y.copy()
    x[:] = 99  # the caller owns its arrays ...
    y[:] = -1
    x2, y2 = load_digits("train", normalize=False, dtype=np.uint8)
    np.testing.assert_array_equal(x2, expected_x)  # ... and the next caller is unaffected
    np.testing.assert_array_equal(y2, expected_y)


def test_digits_argument_errors():
    with pytest.raises(ValueError, match="split must be None, 'train' or 'test', got 'valid'"):
        load_digits("valid")
    with pytest.raises(ValueError, match="floating dtype, got dtype=int32"):
        load_digits(dtype=np.int32)


# --- IDX files -------------------------------------------------------------------------------

IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
             np.float64: 0x0E}


def idx_bytes(array, code=None):
    """An IDX file for ``array``, built here with struct, independently of read_idx."""
    array = np.asarray(array)
    code = IDX_CODES[array.dtype.type] if code is None else code
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, data, gz=False):
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if gz else data)
    return str(path)


@pytest.mark.parametrize("dtype", list(IDX_CODES))
@pytest.mark.parametrize("gz", [False, True])
@settings(max_examples=at_least(5))
@given(data=st.data())
def test_read_idx_round_trips_every_dtype(dtype, gz, data):
    array = data.draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                          max_side=4)))
    with tempfile.TemporaryDirectory() as directory:
        path = write(os.path.join(directory, "x-idx.gz" if gz else "x-idx"), idx_bytes(array), gz)
        out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.shape == array.shape
    assert out.tobytes() == array.tobytes()  # bit-exact, NaN payloads included
    assert out.flags.writeable


def test_read_idx_detects_gzip_by_magic_and_accepts_pathlike(tmp_path):
    array = np.arange(12, dtype=np.int16).reshape(3, 4) - 6
    path = tmp_path / "no-suffix"
    write(path, idx_bytes(array), gz=True)
    np.testing.assert_array_equal(read_idx(path), array)


def test_read_idx_known_bytes(tmp_path):
    # two int32 values 1 and -2, written out by hand in big-endian
    raw = bytes([0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFE])
    out = read_idx(write(tmp_path / "f", raw))
    assert out.dtype == np.int32 and out.tolist() == [1, -2]


@pytest.mark.parametrize("raw, message", [
    (b"", "too short to be an IDX file: it has 0 bytes"),
    (b"\x00\x00\x08", "too short to be an IDX file: it has 3 bytes"),
    (bytes([0, 1, 8, 1, 0, 0, 0, 0]), "bad magic number 00 01 08 01"),
    (bytes([0x50, 0x4B, 3, 4, 0, 0]), "bad magic number"),
    (bytes([0, 0, 0x0A, 1, 0, 0, 0, 0]), "unknown dtype code 0x0A"),
    (bytes([0, 0, 0x07, 1, 0, 0, 0, 0]), "unknown dtype code 0x07"),
    (bytes([0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0]), "truncated in its header: 3 dimensions need 16"),
    (bytes([0, 0, 0x08, 1, 0, 0, 0, 5, 1, 2, 3]),
     "is truncated: expected 5 data bytes for shape (5,) of uint8, got 3"),
    (bytes([0, 0, 0x0D, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(20),
     "is truncated: expected 24 data bytes for shape (2, 3) of float32, got 20"),
    (bytes([0, 0, 0x08, 1, 0, 0, 0, 2, 1, 2, 3]),
     "too long (trailing bytes): expected 2 data bytes"),
    (bytes([0, 0, 0x08, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]), "is truncated"),
])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_bad_files(tmp_path, raw, message, gz):
    path = write(tmp_path / ("bad.gz" if gz else "bad"), raw, gz)
    with pytest.raises(ValueError) as info:
        read_idx(path)
    assert repr(path) in str(info.value)
    assert message in str(info.value)


def test_read_idx_bad_gzip_and_missing_file(tmp_path):
    path = write(tmp_path / "images.gz", idx_bytes(np.zeros(3, np.uint8)))  # not compressed
    with pytest.raises(ValueError, match="is not a valid gzip file"):
        read_idx(path)
    truncated = gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8)))[:-10]
    path = write(tmp_path / "cut.gz", truncated)
    with pytest.raises(ValueError, match="cut.gz.*is not a valid gzip file"):
        read_idx(path)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing")


def write_mnist(directory, split, images, labels, gz=False):
    prefix = "train" if split == "train" else "t10k"
    suffix = ".gz" if gz else ""
    write(os.path.join(directory, f"{prefix}-images-idx3-ubyte{suffix}"), idx_bytes(images), gz)
    write(os.path.join(directory, f"{prefix}-labels-idx1-ubyte{suffix}"), idx_bytes(labels), gz)


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist(tmp_path, split, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 5, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, size=6, dtype=np.uint8)
    write_mnist(tmp_path, split, images, labels, gz)
    x, y = load_mnist(tmp_path, split)
    assert x.shape == (6, 5, 4) and x.dtype == np.float32
    np.testing.assert_array_equal(x * np.float32(255), images)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, labels)
    x, _ = load_mnist(str(tmp_path), split, normalize=False, dtype=np.uint8, flatten=True)
    np.testing.assert_array_equal(x, images.reshape(6, 20))


def test_load_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path, "test")
    for needle in (repr(str(tmp_path)), "'t10k-images-idx3-ubyte'", "'t10k-images-idx3-ubyte.gz'"):
        assert needle in str(info.value)
    # images present, labels missing
    write(tmp_path / "train-images-idx3-ubyte", idx_bytes(np.zeros((2, 3, 3), np.uint8)))
    with pytest.raises(FileNotFoundError, match="'train-labels-idx1-ubyte'"):
        load_mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(ValueError, match="has 2 images but .* has 3 labels"):
        load_mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros((2, 1), np.uint8)))
    with pytest.raises(ValueError, match=r"shape \(2, 1\), expected 1-d labels"):
        load_mnist(tmp_path)
    write(tmp_path / "train-images-idx3-ubyte", idx_bytes(np.zeros((2, 9), np.uint8)))
    with pytest.raises(ValueError, match=r"shape \(2, 9\), expected 3-d images"):
        load_mnist(tmp_path)
    write(tmp_path / "train-images-idx3-ubyte", idx_bytes(np.zeros((2, 3, 3), np.float32)))
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros(2, np.uint8)))
    with pytest.raises(ValueError, match="holds float32 values; pass normalize=False"):
        load_mnist(tmp_path)
    assert load_mnist(tmp_path, normalize=False)[0].shape == (2, 3, 3)
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        load_mnist(tmp_path, "val")


# --- batches ---------------------------------------------------------------------------------

def make_key(seed):
    return np.array([0, seed], np.uint32)


def dataset(n):
    """Rows that identify themselves: x[i] = (i, 10 i), y[i] = i."""
    x = np.stack([np.arange(n), 10 * np.arange(n)], axis=1).astype(np.float32)
    return x, np.arange(n, dtype=np.int32)


@settings(max_examples=at_least(40))
@given(n=st.integers(0, 40), batch_size=st.integers(1, 12), seed=st.integers(0, 2**32 - 1),
       shuffle=st.booleans())
def test_batches_cover_every_row_once(n, batch_size, seed, shuffle):
    x, y = dataset(n)
    out = list(batches((x, y), batch_size, key=make_key(seed), shuffle=shuffle))
    assert len(out) == -(-n // batch_size)
    assert len(out) == len(batches((x, y), batch_size, key=make_key(seed), shuffle=shuffle))
    for xb, yb in out[:-1]:
        assert xb.shape == (batch_size, 2) and yb.shape == (batch_size,)
    if out:
        assert 1 <= out[-1][1].shape[0] <= batch_size
    seen = np.concatenate([yb for _, yb in out]) if out else np.zeros(0, np.int32)
    np.testing.assert_array_equal(np.sort(seen), np.arange(n))
    if not shuffle:
        np.testing.assert_array_equal(seen, np.arange(n))
    for xb, yb in out:  # rows stay aligned across the arrays
        np.testing.assert_array_equal(xb[:, 0], yb)
        np.testing.assert_array_equal(xb[:, 1], 10 * yb)
        assert xb.dtype == np.float32 and yb.dtype == np.int32


@settings(max_examples=at_least(30))
@given(n=st.integers(0, 40), batch_size=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_batches_drop_last(n, batch_size, seed):
    x, y = dataset(n)
    out = list(batches((x, y), batch_size, key=make_key(seed), drop_last=True))
    assert len(out) == n // batch_size
    assert all(yb.shape == (batch_size,) for _, yb in out)
    seen = np.concatenate([yb for _, yb in out]) if out else np.zeros(0, np.int32)
    assert len(set(seen.tolist())) == len(seen) == (n // batch_size) * batch_size


def test_batches_are_determined_by_the_key():
    x, y = dataset(50)

    def order(seed):
        return np.concatenate([yb for _, yb in batches((x, y), 8, key=make_key(seed))])

    np.testing.assert_array_equal(order(3), order(3))
    assert not np.array_equal(order(3), order(4))
    assert not np.array_equal(order(3), np.arange(50))
    b = batches((x, y), 8, key=make_key(3))
    first, second = [yb for _, yb in b], [yb for _, yb in b]  # re-iterable, same batches
    for u, v in zip(first, second, strict=True):
        np.testing.assert_array_equal(u, v)


def test_batches_pytrees():
    x, y = dataset(5)
    out = list(batches({"image": x, "label": y}, 2, shuffle=False))
    assert [sorted(b) for b in out] == [["image", "label"]] * 3
    np.testing.assert_array_equal(out[2]["label"], [4])
    single = list(batches(y, 3, shuffle=False))
    np.testing.assert_array_equal(single[0], [0, 1, 2])
    np.testing.assert_array_equal(single[1], [3, 4])


def test_batches_errors():
    x, y = dataset(5)
    with pytest.raises(ValueError, match=r"leading sizes \[5, 4\]"):
        batches((x, y[:4]), 2, key=make_key(0))
    with pytest.raises(ValueError, match="needs a PRNG key"):
        batches((x, y), 2)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        batches((x, y), 0, shuffle=False)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 2.5"):
        batches((x, y), 2.5, shuffle=False)
    with pytest.raises(ValueError, match="scalar"):
        batches((x, np.float32(1.0)), 2, shuffle=False)
    with pytest.raises(ValueError, match="holds no arrays"):
        batches((), 2, shuffle=False)


def test_batches_take_typed_and_raw_keys_alike():
    from nanofn import random
    from nanofn.data import batches
    x, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    typed = [b[1].tolist() for b in batches((x, y), 3, key=random.key(4))]
    raw = [b[1].tolist() for b in batches((x, y), 3, key=random.PRNGKey(4))]
    assert typed == raw
    assert sorted(sum(typed, [])) == list(range(10))
    want = np.asarray(random.permutation(random.key(4), 10))
    assert sum(typed, []) == want.tolist()
