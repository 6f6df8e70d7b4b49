"""nanofn.scipy.sparse: iterative solvers for linear systems given as functions
(jax.scipy.sparse's names).

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.scipy.sparse import linalg
    >>> x, _ = linalg.cg(lambda v: 2.0 * v, fnp.ones(3))
    >>> x
    Array([0.5, 0.5, 0.5], dtype=float32)
"""

from nanofn.scipy.sparse import linalg as linalg

__all__ = ["linalg"]
