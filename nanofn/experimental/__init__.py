"""nanofn.experimental: features whose interface may still change (jax.experimental).

Example:
    >>> from nanofn.experimental import ode
    >>> callable(ode.odeint)
    True
"""

from nanofn.experimental import ode as ode
from nanofn.experimental import mesh_utils as mesh_utils
from nanofn.experimental import multihost_utils as multihost_utils
from nanofn.experimental import compilation_cache as compilation_cache
from nanofn.experimental import pjit as pjit
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


_LAZY = ("checkify", "jet", "sparse")  # imported on first use


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return importlib.import_module(f"nanofn.experimental.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ode", "mesh_utils", "multihost_utils", "compilation_cache", "pjit", *_LAZY,
           "io_callback", "enable_x64", "disable_x64"]
