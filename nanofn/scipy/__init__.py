"""nanofn.scipy: scipy's functions (jax.scipy's names), built on nanofn primitives.

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.scipy.special import logsumexp
    >>> round(float(logsumexp(fnp.zeros(4))), 4)  # log(4)
    1.3863
"""

from nanofn.scipy import special as special
from nanofn.scipy import signal as signal
from nanofn.scipy import linalg as linalg
from nanofn.scipy import stats as stats
from nanofn.scipy import ndimage as ndimage
from nanofn.scipy import interpolate as interpolate
from nanofn.scipy import optimize as optimize
from nanofn.scipy import integrate as integrate
from nanofn.scipy import cluster as cluster

__all__ = ["special", "signal", "linalg", "stats", "ndimage", "interpolate", "optimize",
           "integrate", "cluster"]
