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
    `log(p)` where p is small, `log1p(-q)` where it is near 1, so neither loses digits.
    Where `p` is exactly 0 (outside the support, where it is constant) the result is -inf
    with a zero derivative, not `(1 / 0) * 0`."""
    from nanofn import numpy as jnp
    zero = jnp.equal(p, const(p, 0))
    small = jnp.less(p, const(p, 0.5))
    out = jnp.where(small, jnp.log(jnp.where(small & ~zero, p, const(p, 1))),
                    jnp.log1p(jnp.negative(jnp.where(small, const(q, 0), q))))
    return jnp.where(zero, const(out, -np.inf), out)


def inside(y, lower, upper=None):
    """`(y_safe, mask)`: `mask` is `lower < y` (and `y < upper`), and `y_safe` is `y` there
    and a point inside the support elsewhere. A distribution function evaluated at
    `y_safe` and then replaced by its constant outside the support (0 or 1 with
    `jnp.where(mask, ...)`) gets a zero derivative there: its derivative at the support's
    edge, often infinite (the incomplete gamma's at 0 when `a < 1`), never multiplies
    the zero that `clip` or `where` passes back."""
    from nanofn import numpy as jnp
    mask = jnp.greater(y, const(y, lower))
    if upper is None:
        point = lower + 1
    else:
        mask = mask & jnp.less(y, const(y, upper))
        point = (lower + upper) / 2
    return jnp.where(mask, y, const(y, point)), mask


def nan_unless(out, *positive, also=None):
    """`out` with NaN wherever one of `positive` is not `> 0` (NaN included) or `also`
    holds, as JAX's (and scipy's) distribution functions give for invalid shapes."""
    from nanofn import numpy as jnp
    bad = None
    for p in positive:
        b = jnp.logical_not(jnp.greater(p, const(p, 0)))
        bad = b if bad is None else bad | b
    if also is not None:
        bad = also if bad is None else bad | also
    return jnp.where(bad, const(out, np.nan), out)
