"""nanofn.experimental.pjit: JAX's older home of `jit` with shardings
(`jax.experimental.pjit`, deprecated in JAX for `jax.jit`).

Example:
    >>> from nanofn.experimental.pjit import pjit
    >>> callable(pjit)
    True
"""

from __future__ import annotations

import warnings

__all__ = ["pjit"]


def pjit(fun, in_shardings=None, out_shardings=None, static_argnums=None,
         static_argnames=None, donate_argnums=None, donate_argnames=None, keep_unused=False,
         device=None, backend=None, inline=False, abstracted_axes=None, compiler_options=None):
    """`nanofn.jit` under its older name: compile `fun` (deprecated, as in JAX: it warns;
    use `nanofn.jit`, which takes the same arguments).

    `in_shardings` and `out_shardings` are accepted and, as with `nanofn.jit`, do not
    change the result: nanofn holds every array whole in its process, so a layout
    changes nothing it computes. `static_argnums` and `static_argnames` work as in `jit`;
    `donate_argnums`, `donate_argnames`, `keep_unused`, `device`, `backend`, `inline`,
    `compiler_options` are accepted as `jit` accepts them, and `abstracted_axes` (in older
    JAX's `pjit`, for dynamic shapes) is accepted and unused.

    Example:
        >>> import warnings, nanofn, nanofn.numpy as fnp
        >>> from nanofn.experimental.pjit import pjit
        >>> from nanofn.sharding import PartitionSpec as P
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", DeprecationWarning)
        ...     step = pjit(lambda x: 2 * x, in_shardings=P(), out_shardings=P())
        >>> step(fnp.arange(3.0))
        Array([0., 2., 4.], dtype=float32)
    """
    from nanofn._jit import jit
    warnings.warn("nanofn.experimental.pjit.pjit is deprecated (as jax.experimental.pjit.pjit "
                  "is); use nanofn.jit", DeprecationWarning, stacklevel=2)
    del abstracted_axes  # dynamic shapes: not part of nanofn's jit
    return jit(fun, in_shardings=in_shardings, out_shardings=out_shardings,
               static_argnums=static_argnums, static_argnames=static_argnames,
               donate_argnums=donate_argnums, donate_argnames=donate_argnames,
               keep_unused=keep_unused, device=device, backend=backend, inline=inline,
               compiler_options=compiler_options)
