"""Global switches, read with `nanofn.config.<name>` and set with `nanofn.config.update`."""

from __future__ import annotations

import contextlib
import os


class Config:
    """nanofn's settings (JAX's names where JAX has one).

    * `jax_disable_jit`: run jitted functions eagerly (for debugging).
    * `jax_debug_nans`: raise at the first primitive that produces a NaN.
    * `nanofn_use_kernels`: use numba kernels where nanofn has them (off: numpy only).
    * `nanofn_background_compile`: compile a jitted function's kernels in a background
      thread while its calls run on numpy (off: its second call compiles them and waits;
      `NANOFN_BACKGROUND_COMPILE=0`). `nanofn.warmup.wait()` waits for pending compiles.

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
            "nanofn_background_compile":
                os.environ.get("NANOFN_BACKGROUND_COMPILE", "1") != "0",
        }

    def update(self, name, value):
        if name not in self._values:
            raise ValueError(f"unknown config option {name!r}; options: {sorted(self._values)}")
        self._values[name] = value
        if name == "jax_debug_nans":
            from nanofn import _core
            _core.debug_nans = bool(value)

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"nanofn.config has no option {name!r}") from None

    @contextlib.contextmanager
    def _override(self, name, value):
        old = self._values[name]
        self.update(name, value)
        try:
            yield
        finally:
            self.update(name, old)


config = Config()


def debug_nans(enable: bool = True):
    """Context manager: raise at the first primitive that produces a NaN, naming it and the
    line of your code that ran it (in the forward pass or the backward pass).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> with nanofn.debug_nans():
        ...     fnp.log(fnp.array(-1.0))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        FloatingPointError: debug_nans: primitive 'log' produced a NaN at ...
    """
    return config._override("jax_debug_nans", enable)


def disable_jit(disable: bool = True):
    """Context manager: inside it, jitted functions run eagerly (Python prints every call).

    Example:
        >>> import nanofn
        >>> with nanofn.disable_jit():
        ...     nanofn.jit(lambda x: x + 1)(nanofn.numpy.array(1.0))
        Array(2., dtype=float32)
    """
    return config._override("jax_disable_jit", disable)
