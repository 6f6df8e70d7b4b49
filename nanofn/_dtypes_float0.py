"""`float0`: the dtype of the gradient of an integer or boolean input (JAX's `float0`).

A zero-size structured dtype: an array of it has a shape but no data. `grad(...,
allow_int=True)` returns such arrays for integer inputs. (`nanofn.dtypes` re-exports it.)

Example:
    >>> from nanofn._dtypes_float0 import float0
    >>> float0.itemsize
    0
"""

import numpy as np

float0 = np.dtype([("float0", np.void, 0)])


def float0_zeros(shape):
    """The gradient of an integer input of `shape`: a numpy array of dtype float0."""
    return np.zeros(shape, dtype=float0)
