"""DLPack interchange (`jax.dlpack`): arrays from other libraries' DLPack capsules.

nanofn's arrays export DLPack themselves (`Array.__dlpack__`, so `torch.from_dlpack` and
`np.from_dlpack` read them); this module reads the other way.

Example:
    >>> import numpy as np
    >>> from nanofn import dlpack
    >>> dlpack.from_dlpack(np.ones(2, np.float32))
    Array([1., 1.], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from nanofn.numpy._surface import from_dlpack as _from_dlpack

__all__ = ["from_dlpack", "is_supported_dtype"]


def from_dlpack(external_array, device=None, copy=None):
    """An array from any object with `__dlpack__` (JAX's `jax.dlpack.from_dlpack`): a
    NumPy array, a PyTorch CPU tensor, ... The data are copied (nanofn arrays own their
    memory, so a later change to the source does not reach the result); `device` and
    `copy` are accepted (there is one CPU device).

    Example:
        >>> import numpy as np
        >>> from nanofn import dlpack
        >>> dlpack.from_dlpack(np.arange(3, dtype=np.int32))
        Array([0, 1, 2], dtype=int32)
    """
    return _from_dlpack(external_array, device=device, copy=copy)


def is_supported_dtype(dtype) -> bool:
    """Whether arrays of `dtype` can travel through DLPack here (JAX's
    `jax.dlpack.is_supported_dtype`): booleans, integers, floats and complex numbers.

    Example:
        >>> import numpy as np
        >>> from nanofn import dlpack
        >>> dlpack.is_supported_dtype(np.float32), dlpack.is_supported_dtype(np.str_)
        (True, False)
    """
    return np.dtype(dtype).kind in "biufc"
