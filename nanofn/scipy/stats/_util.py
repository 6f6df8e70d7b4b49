"""Shared helpers of `nanofn.scipy.stats`: argument checks and promotion."""

from __future__ import annotations

import numpy as np

from nanofn._core import Array
from nanofn.numpy._dtypes import dtype_of, promote_float


def promote_args(fname, **args):
    """The arguments as arrays of one inexact dtype (integers become float32, as in JAX),
    after checking that each is numeric; a bad one raises a TypeError naming it."""
    for name, value in args.items():
        if isinstance(value, (Array, np.ndarray, np.generic)):
            kind = dtype_of(value).kind
        elif isinstance(value, (bool, int, float, complex)):
            continue
        else:
            try:
                kind = np.asarray(value).dtype.kind
            except Exception:  # noqa: BLE001 - anything numpy cannot read is not a number
                kind = "O"
        if kind not in "biufc":
            raise TypeError(f"{fname}: `{name}` must be a number or a numeric array, got "
                            f"{type(value).__name__}"
                            + (f" of dtype {np.asarray(value).dtype}" if kind != "O" else ""))
    return promote_float(*args.values())


def const(x, value):
    """`value` as a 0-d constant of `x`'s dtype."""
    return np.asarray(value, dtype_of(x))
