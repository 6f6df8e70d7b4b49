"""Global switches, read with `nanofn.config.<name>` and set with `nanofn.config.update`."""

from __future__ import annotations

import contextlib
import os


class Config:
    """nanofn's settings (JAX's names where JAX has one).

    * `jax_disable_jit`: run jitted functions eagerly (for debugging).
    * `jax_debug_nans`: raise at the first primitive that produces a NaN.
    * `nanofn_use_kernels`: use numba kernels where nanofn has them (off: numpy only).

    Example:
        >>> import nanofn
        >>> nanofn.config.update("jax_debug_nans", False)
        >>> nanofn.config.jax_debug_nans
        False
    """

    def __init__(self):
        self._values = {
            "jax_disable_jit": False,
            "jax_debug_nans": False,
            "nanofn_use_kernels": os.environ.get("NANOFN_USE_KERNELS", "1") != "0",
        }

    def update(self, name, value):
        if name not in self._values:
            raise ValueError(f"unknown config option {name!r}; options: {sorted(self._values)}")
        self._values[name] = value

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"nanofn.config has no option {name!r}") from None

    @contextlib.contextmanager
    def _override(self, name, value):
        old = self._values[name]
        self._values[name] = value
        try:
            yield
        finally:
            self._values[name] = old


config = Config()


def disable_jit(disable: bool = True):
    """Context manager: inside it, jitted functions run eagerly (Python prints every call).

    Example:
        >>> import nanofn
        >>> with nanofn.disable_jit():
        ...     nanofn.jit(lambda x: x + 1)(1.0)
        Array(2., dtype=float32)
    """
    return config._override("jax_disable_jit", disable)
