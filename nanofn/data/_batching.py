"""Minibatches over a pytree of arrays that share a leading (example) axis."""

from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np

from nanofn import tree_util


def _permutation(key, n: int) -> np.ndarray:
    """A permutation of range(n) drawn from the nanofn PRNG key ``key``."""
    try:
        import nanofn.random as nanofn_random
    except ModuleNotFoundError as e:
        if e.name != "nanofn.random":
            raise
        # nanofn.random is not there yet: derive a deterministic numpy permutation from the
        # key's two words instead.
        words = np.asarray(key)
        if words.dtype != np.uint32 or words.shape != (2,):
            raise ValueError(f"batches: key must be a PRNG key, a uint32 array of shape (2,) as "
                             f"nanofn.random.PRNGKey(seed) makes; got {words.dtype}"
                             f"{list(words.shape)}") from None
        return np.random.default_rng([int(w) for w in words]).permutation(n)
    return np.asarray(nanofn_random.permutation(key, n)).astype(np.intp)


class _Batches:
    """Iterable of minibatches; re-iterating yields the same batches in the same order."""

    def __init__(self, leaves, treedef, n, batch_size, order, drop_last):
        self._leaves, self._treedef = leaves, treedef
        self._n, self._batch_size, self._order = n, batch_size, order
        self._drop_last = drop_last

    def __len__(self) -> int:
        if self._drop_last:
            return self._n // self._batch_size
        return math.ceil(self._n / self._batch_size)

    def __iter__(self) -> Iterator[Any]:
        for b in range(len(self)):
            rows = slice(b * self._batch_size, min((b + 1) * self._batch_size, self._n))
            if self._order is not None:
                rows = self._order[rows]  # fancy indexing: each batch is a fresh copy
            yield tree_util.tree_unflatten(self._treedef, [leaf[rows] for leaf in self._leaves])


def batches(arrays: Any, batch_size: int, *, key=None, shuffle: bool = True,
            drop_last: bool = False):
    """Splits a dataset into minibatches along the leading axis, shuffled by a PRNG key.

    ``arrays`` is any pytree (a tuple ``(images, labels)``, a dict, a single array) whose
    leaves are arrays with the same leading size ``N``; each batch is the same pytree with
    every leaf cut to the same rows. With ``shuffle=True`` the row order is
    ``nanofn.random.permutation(key, N)``: the same key gives the same batches on every
    run and every machine, and a new key (``nanofn.random.split`` or ``fold_in`` of the
    epoch number) gives a new order. Every row appears exactly once per pass, except the
    last ``N % batch_size`` rows of the order when ``drop_last=True``.

    The returned object is re-iterable (each pass gives the same batches) and has a
    ``len``. Leaves are converted with ``np.asarray``; batches are numpy arrays (copies when
    shuffled, views of the inputs when not).

    Args:
      arrays: a pytree of arrays sharing their leading axis.
      batch_size: rows per batch, a positive int. The last batch may be smaller unless
        ``drop_last``.
      key: a nanofn PRNG key, typed (``nanofn.random.key(seed)``) or raw
        (``nanofn.random.PRNGKey(seed)``, a uint32 array of shape (2,)); both give the same
        order. Required when ``shuffle=True``, ignored otherwise.
      shuffle: if False, batches follow the original row order.
      drop_last: if True, skip a final batch smaller than ``batch_size``.

    Returns:
      An iterable of pytrees shaped like ``arrays``, with leading size ``batch_size``.

    Raises:
      ValueError: leaves disagree on their leading size (the message lists them), a leaf is
        0-d, ``batch_size`` is not positive, or ``shuffle=True`` without a ``key``.

    Example:
      >>> import numpy as np
      >>> from nanofn.data import batches
      >>> x, y = np.arange(10.0).reshape(5, 2), np.arange(5)
      >>> for xb, yb in batches((x, y), 2, shuffle=False):
      ...     print(xb.shape, yb)
      (2, 2) [0 1]
      (2, 2) [2 3]
      (1, 2) [4]
      >>> key = np.array([0, 42], np.uint32)
      >>> sorted(int(i) for _, yb in batches((x, y), 2, key=key) for i in yb)
      [0, 1, 2, 3, 4]
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size <= 0:
        raise ValueError(f"batches: batch_size must be a positive int, got {batch_size!r}")
    batch_size = int(batch_size)
    leaves, treedef = tree_util.tree_flatten(arrays)
    if not leaves:
        raise ValueError("batches: `arrays` holds no arrays; pass e.g. (images, labels)")
    leaves = [np.asarray(leaf) for leaf in leaves]
    for i, leaf in enumerate(leaves):
        if leaf.ndim == 0:
            raise ValueError(f"batches: leaf {i} of `arrays` is a scalar (shape ()); every "
                             "leaf needs a leading example axis")
    sizes = [leaf.shape[0] for leaf in leaves]
    if len(set(sizes)) != 1:
        shapes = ", ".join(str(leaf.shape) for leaf in leaves)
        raise ValueError(f"batches: the arrays must share their leading size, got leading "
                         f"sizes {sizes} (shapes {shapes})")
    n = sizes[0]
    order = None
    if shuffle:
        if key is None:
            raise ValueError("batches: shuffle=True needs a PRNG key, e.g. "
                             "batches(arrays, batch_size, key=nanofn.random.PRNGKey(0)); or "
                             "pass shuffle=False to keep the original order")
        order = _permutation(key, n) if n else np.zeros(0, np.intp)
    return _Batches(leaves, treedef, n, batch_size, order, drop_last)
