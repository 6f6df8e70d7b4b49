"""The 8x8 handwritten digits that ship inside nanofn (UCI optical digits, 1,797 images).

The file is decoded once per process, on first use, and kept as read-only uint8/int32
arrays; every call to `load_digits` returns fresh arrays built from that cache, so a
caller that writes into its result cannot change what the next caller sees.
"""

from __future__ import annotations

import gzip
import importlib.resources
import threading

import numpy as np

_FILE = "digits.csv.gz"
NUM_IMAGES = 1797
# The held-out test split is every sixth image (rows 5, 11, 17, ...): fixed, with no
# randomness, and spread over the whole file. A contiguous block would not do: the file
# is ordered by writer, so its last rows come from writers the first rows never saw
# (a nearest-neighbour classifier drops from ~98% to ~95% on such a block).
_ALL = np.arange(NUM_IMAGES)
_TEST_ROWS = _ALL[5::6]
_TRAIN_ROWS = np.setdiff1d(_ALL, _TEST_ROWS)
NUM_TEST, NUM_TRAIN = len(_TEST_ROWS), len(_TRAIN_ROWS)
_SPLITS = {None: _ALL, "train": _TRAIN_ROWS, "test": _TEST_ROWS}

_cache: tuple[np.ndarray, np.ndarray] | None = None
_lock = threading.Lock()


def _decode(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Parses the CSV text (65 integers a row) into uint8 images and int32 labels."""
    table = np.loadtxt(raw.decode("ascii").splitlines(), delimiter=",", dtype=np.int64, ndmin=2)
    if table.shape != (NUM_IMAGES, 65):
        raise ValueError(f"nanofn.data: the packaged {_FILE} has shape {table.shape}, expected "
                         f"({NUM_IMAGES}, 65); the installation is damaged, reinstall nanofn")
    pixels, labels = table[:, :64], table[:, 64]
    if pixels.min() < 0 or pixels.max() > 16 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"nanofn.data: the packaged {_FILE} holds values outside pixels 0..16 / "
                         "labels 0..9; the installation is damaged, reinstall nanofn")
    images = pixels.astype(np.uint8).reshape(NUM_IMAGES, 8, 8)
    labels = labels.astype(np.int32)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _cached() -> tuple[np.ndarray, np.ndarray]:
    global _cache
    with _lock:
        if _cache is None:
            raw = gzip.decompress(importlib.resources.files(__package__).joinpath(_FILE)
                                  .read_bytes())
            _cache = _decode(raw)
        return _cache


def load_digits(split: str | None = None, *, dtype=np.float32, normalize: bool = True,
                flatten: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Loads the 8x8 handwritten digits embedded in nanofn (no download, no files to manage).

    The data are the 1,797 images of the UCI "Optical Recognition of Handwritten Digits"
    dataset (E. Alpaydin and C. Kaynak, 1998, CC BY 4.0; see ``DIGITS_LICENSE.txt``), as
    redistributed by scikit-learn. Each pixel counts the "on" pixels of a 4x4 block of a
    32x32 bitmap, so raw values are integers in 0..16.

    The split is fixed and needs no randomness: ``"test"`` is every sixth image of the
    file (rows 5, 11, 17, ...; 299 images) and ``"train"`` the other 1,498, in file order,
    identical on every machine. Every class has at least 28 test images.

    Args:
      split: ``None`` for all 1,797 images, ``"train"`` (1,498) or ``"test"`` (299).
      dtype: dtype of the returned images (default float32).
      normalize: if True, divide the pixels by 16 so they lie in [0, 1]; needs a floating
        ``dtype``. If False, the raw integers 0..16 are returned in ``dtype``.
      flatten: if True, images have shape ``(N, 64)`` (row-major) instead of ``(N, 8, 8)``.

    Returns:
      ``(images, labels)``: numpy arrays of shapes ``(N, 8, 8)`` (or ``(N, 64)``) and
      ``(N,)``; labels are int32 in 0..9. Both are fresh copies that the caller owns.

    Example:
      >>> from nanofn.data import load_digits
      >>> x, y = load_digits("train")
      >>> x.shape, x.dtype, y.shape, y.dtype
      ((1498, 8, 8), dtype('float32'), (1498,), dtype('int32'))
      >>> float(x.min()), float(x.max())
      (0.0, 1.0)
    """
    if split not in _SPLITS:
        raise ValueError(f"load_digits: split must be None, 'train' or 'test', got {split!r}")
    dtype = np.dtype(dtype)
    if normalize and not np.issubdtype(dtype, np.floating):
        raise ValueError(f"load_digits: normalize=True scales pixels into [0, 1], which needs a "
                         f"floating dtype, got dtype={dtype}; pass a float dtype or "
                         "normalize=False for the raw 0..16 integers")
    images, labels = _cached()
    rows = _SPLITS[split]
    x = images[rows].astype(dtype)  # astype always copies, so the cache stays untouched
    if normalize:
        x /= dtype.type(16)
    if flatten:
        x = x.reshape(x.shape[0], 64)
    return x, labels[rows].copy()


def shifted_copies(images, labels):
    """Augment images with copies moved one pixel up, down, left and right.

    A standard augmentation for handwritten digits: it teaches a model that a digit drawn
    slightly off-centre is the same digit. Pixels moved past an edge wrap around (digit
    images have empty borders, so nothing is lost).

    Args:
      images: ``(N, H, W)`` or ``(N, H, W, C)`` images (numpy arrays).
      labels: ``(N,)`` labels.

    Returns:
      ``(images, labels)`` with ``5 * N`` entries: the originals first, then the four shifts.

    Example:
      >>> from nanofn.data import load_digits, shifted_copies
      >>> x, y = shifted_copies(*load_digits("train"))
      >>> x.shape, y.shape
      ((7490, 8, 8), (7490,))
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim < 3 or len(images) != len(labels):
        raise ValueError(f"shifted_copies: expected images (N, H, W[, C]) and labels (N,), got "
                         f"shapes {images.shape} and {labels.shape}")
    moved = [np.roll(images, shift, axis) for axis in (1, 2) for shift in (1, -1)]
    return np.concatenate([images] + moved), np.concatenate([labels] * (1 + len(moved)))
