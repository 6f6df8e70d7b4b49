"""Shared helpers of `nanofn.scipy.stats`: argument checks and promotion."""

from __future__ import annotations

import numpy as np

from nanofn._core import Array
from nanofn.numpy._dtypes import dtype_of, promote_float


def promote_args(fname, **args):
    """The arguments as arrays of one inexact dtype (integers become float32, as in JAX),
    after checking that each is numeric; a bad one raises a TypeError naming it."""
    for name, value in args.items():
        if isinstance(value, (Array, np.ndarray, np.generic)) or hasattr(value, "aval"):
            kind = dtype_of(value).kind  # arrays and tracers
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


def log_prob(p, q):
    """`log(p)` for a probability `p` with complement `q = 1 - p` (each computed on its own):
    `log(p)` where p is small, `log1p(-q)` where it is near 1, so neither loses digits."""
    from nanofn import numpy as jnp
    small = jnp.less(p, const(p, 0.5))
    return jnp.where(small, jnp.log(jnp.where(small, p, const(p, 1))),
                     jnp.log1p(jnp.negative(jnp.where(small, const(q, 0), q))))
