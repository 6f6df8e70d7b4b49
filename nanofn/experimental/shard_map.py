"""nanofn.experimental.shard_map: JAX's older home of `shard_map`
(`jax.experimental.shard_map`, deprecated in JAX 0.8 and kept as a legacy entry point).

Example:
    >>> from nanofn.experimental.shard_map import shard_map
    >>> callable(shard_map)
    True
"""

import warnings

from nanofn.distributed._shard_map import _shard_map

__all__ = ["shard_map"]


def shard_map(f, mesh, in_specs, out_specs, check_rep=True):
    """`nanofn.shard_map` with JAX's older signature: `mesh`, `in_specs` and `out_specs`
    positional, and `check_rep` for `check_vma`. Deprecated as in JAX (it warns); use
    `nanofn.shard_map(f, mesh=..., in_specs=..., out_specs=...)`.

    Example:
        >>> import warnings, nanofn, nanofn.numpy as fnp
        >>> from nanofn.experimental.shard_map import shard_map
        >>> mesh = nanofn.make_mesh((1,), ("x",))
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", DeprecationWarning)
        ...     double = shard_map(lambda b: 2 * b, mesh, nanofn.P("x"), nanofn.P("x"))
        >>> double(fnp.arange(3.0))
        Array([0., 2., 4.], dtype=float32)
    """
    warnings.warn("nanofn.experimental.shard_map.shard_map is deprecated (as "
                  "jax.experimental.shard_map is); use nanofn.shard_map",
                  DeprecationWarning, stacklevel=2)
    return _shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs,
                      axis_names=frozenset(), check_vma=check_rep)
