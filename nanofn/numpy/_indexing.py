"""Indexing: `x[idx]` (basic) — a placeholder the indexing work replaces."""

from __future__ import annotations

import numpy as np

from nanofn._core import Tracer
from nanofn.ops import _base as lax


def getitem(x, idx):
    if isinstance(x, Tracer) or isinstance(idx, Tracer):
        raise NotImplementedError("indexing of traced values is not implemented yet")
    from nanofn import _core
    return _core.wrap(np.asarray(_core.to_numpy(x))[idx])


class IndexUpdateHelper:
    def __init__(self, x):
        self.x = x
