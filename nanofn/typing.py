"""Type annotations for code that takes arrays and dtypes (`jax.typing`).

* `ArrayLike`: what nanofn functions accept as an array: a nanofn `Array` (or a traced
  value), a numpy array or scalar, or a Python bool, int, float or complex.
* `DTypeLike`: what they accept as a dtype: a numpy dtype, a scalar type
  (`nanofn.numpy.float32`, `np.int32`, `float`), or a name (`"float32"`).

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.typing import ArrayLike, DTypeLike
    >>> def scale(x: ArrayLike, dtype: DTypeLike = "float32"):
    ...     return fnp.asarray(x, dtype) * 2
    >>> scale([1, 2])
    Array([2., 4.], dtype=float32)
"""

from __future__ import annotations

from typing import Any, Protocol, Union

import numpy as np

from nanofn._core import Array


class SupportsDType(Protocol):
    @property
    def dtype(self) -> np.dtype: ...


ArrayLike = Union[Array, np.ndarray, np.bool_, np.number, bool, int, float, complex]
DTypeLike = Union[str, type[Any], np.dtype, SupportsDType]

__all__ = ["ArrayLike", "DTypeLike"]
