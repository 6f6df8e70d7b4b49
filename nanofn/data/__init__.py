"""Datasets and minibatching: the embedded 8x8 digits, MNIST-format IDX files, `batches`.

``load_digits`` needs no download: the UCI optical digits (1,797 8x8 images, CC BY 4.0)
ship inside nanofn. ``load_mnist`` and ``read_idx`` read IDX files the user already has.
``load_text`` gives the embedded text corpus (Python standard-library docstrings, PSF
licence) as bytes, for the GPT example. ``batches`` cuts a pytree of arrays into minibatches shuffled by a nanofn PRNG key.
"""

from nanofn.data._batching import batches as batches
from nanofn.data._digits import load_digits as load_digits
from nanofn.data._digits import shifted_copies as shifted_copies
from nanofn.data._idx import load_mnist as load_mnist
from nanofn.data._idx import read_idx as read_idx
from nanofn.data._text import load_text as load_text

__all__ = ["batches", "load_digits", "load_mnist", "load_text", "read_idx", "shifted_copies"]
