"""The embedded text corpus: Python standard-library docstrings, as bytes."""

from __future__ import annotations

import gzip
import importlib.resources

import numpy as np

_FILE = "stdlib_docstrings.txt.gz"


def load_text(split: str | None = None, *, held_out: float = 0.1) -> np.ndarray:
    """The text corpus that ships with nanofn, as a `uint8` array of bytes (ASCII).

    The corpus is the docstrings of Python's standard library (about 890 KB of English
    prose about programming; PSF licence, see `STDLIB_DOCSTRINGS_LICENSE.txt`; rebuilt by
    `tools/make_text_corpus.py`). Nothing is downloaded.

    Args:
        split: None for all of it, "train" for the first `1 - held_out` of the bytes,
            "test" for the rest (a contiguous tail, so no sentence is in both).
        held_out: the fraction kept for "test".

    Example:
        >>> from nanofn.data import load_text
        >>> text = load_text("train")
        >>> text.dtype, bytes(text[:6])
        (dtype('uint8'), b'Comman')
    """
    if split not in (None, "train", "test"):
        raise ValueError(f"load_text: split must be None, 'train' or 'test', got {split!r}")
    if not 0.0 < held_out < 1.0:
        raise ValueError(f"load_text: held_out must lie in (0, 1), got {held_out}")
    raw = importlib.resources.files("nanofn.data").joinpath(_FILE).read_bytes()
    data = np.frombuffer(gzip.decompress(raw), np.uint8)
    cut = int(len(data) * (1.0 - held_out))
    return {None: data, "train": data[:cut], "test": data[cut:]}[split]
