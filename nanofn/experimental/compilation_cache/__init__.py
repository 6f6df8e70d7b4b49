"""nanofn.experimental.compilation_cache: where compiled kernels are kept between runs
(`jax.experimental.compilation_cache`); see its `compilation_cache` module.

Example:
    >>> from nanofn.experimental.compilation_cache import compilation_cache as cc
    >>> callable(cc.set_cache_dir)
    True
"""

from nanofn.experimental.compilation_cache import compilation_cache as compilation_cache

__all__ = ["compilation_cache"]
