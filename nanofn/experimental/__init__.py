"""nanofn.experimental: features whose interface may still change (jax.experimental).

Example:
    >>> from nanofn.experimental import ode
    >>> callable(ode.odeint)
    True
"""

from nanofn.experimental import ode as ode
from nanofn.experimental import mesh_utils as mesh_utils
from nanofn._jax_api import io_callback as io_callback, enable_x64 as enable_x64


def disable_x64():
    """Context manager: inside it, arrays nanofn creates default to 32-bit dtypes
    (jax.experimental.disable_x64).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> with nanofn.experimental.disable_x64():
        ...     fnp.zeros(1).dtype
        dtype('float32')
    """
    return enable_x64(False)


__all__ = ["ode", "mesh_utils", "io_callback", "enable_x64", "disable_x64"]
