"""nanofn.scipy.integrate: integration of sampled data (jax.scipy.integrate's names).

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.scipy.integrate import trapezoid
    >>> trapezoid(fnp.array([1.0, 2.0, 3.0]))
    Array(4., dtype=float32)
"""

from __future__ import annotations

from nanofn.numpy import _scientific
from nanofn.numpy._dtypes import asarray_value, promote_float

__all__ = ["trapezoid"]


def trapezoid(y, x=None, dx=1.0, axis=-1):
    """The integral of samples `y` along `axis` by the trapezoidal rule
    (jax.scipy.integrate.trapezoid): at the points `x` (1-D along `axis`, or shaped like
    `y`) if given, else with spacing `dx`. Differentiable in `y`, `x` and `dx`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.integrate import trapezoid
        >>> trapezoid(fnp.array([[0.0, 1.0, 4.0], [1.0, 1.0, 1.0]]), x=fnp.array([0.0, 1.0, 3.0]))
        Array([5.5, 3. ], dtype=float32)
    """
    if x is not None:  # promoted together, as JAX: int32 y with int64 x is float64
        y, x = promote_float(asarray_value(y), asarray_value(x))
    return _scientific.trapezoid(y, x=x, dx=dx, axis=axis)
