"""nanofn.scipy: scipy's functions (jax.scipy's names), built on nanofn primitives.

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.scipy.special import logsumexp
    >>> round(float(logsumexp(fnp.zeros(4))), 4)  # log(4)
    1.3863
"""

import importlib as _importlib

__all__ = ["special", "signal", "linalg", "stats", "ndimage", "interpolate", "optimize",
           "integrate", "cluster", "fft", "spatial", "sparse"]


def __getattr__(name):
    # Submodules load on first use: `nanofn.lax.linalg` needs `nanofn.scipy.linalg` when
    # nanofn is imported, and that must not import `optimize` (which brings in
    # `nanofn.optim`, `nn` and `random`) nor the rest.
    if name in __all__:
        return _importlib.import_module(f"nanofn.scipy.{name}")
    raise AttributeError(f"module 'nanofn.scipy' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
