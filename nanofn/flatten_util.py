"""`ravel_pytree`: a pytree of arrays as one flat vector, and back (`jax.flatten_util`)."""

from __future__ import annotations

import numpy as np

from nanofn.tree_util import tree_flatten, tree_unflatten

__all__ = ["ravel_pytree"]


def ravel_pytree(pytree):
    """Flatten a pytree of arrays into one 1-d array, with a function that undoes it.

    The leaves are raveled and concatenated in tree-flatten order; the vector's dtype is
    the leaves' promoted dtype. `unravel` casts the pieces of a vector of that dtype
    back to the leaves' dtypes. As in JAX, a vector of another dtype is refused
    (TypeError) if the leaves have different dtypes, and unraveled in its own dtype if
    they all have one (without x64, float64 and float32 count as one dtype here, as JAX
    sees them). Both directions trace, so they work inside `grad`, `jit` and `vmap`.

    Args:
        pytree: a pytree of arrays (or scalars).

    Returns:
        `(flat, unravel)`: the 1-d array, and a function mapping a vector of the same
        length to a pytree of the original structure, shapes and dtypes.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.flatten_util import ravel_pytree
        >>> flat, unravel = ravel_pytree({"b": fnp.ones(2), "w": fnp.zeros((1, 2))})
        >>> flat
        Array([1., 1., 0., 0.], dtype=float32)
        >>> unravel(flat * 2)["w"]
        Array([[0., 0.]], dtype=float32)
    """
    import nanofn.numpy as fnp
    leaves, treedef = tree_flatten(pytree)
    leaves = [fnp.asarray(x) for x in leaves]
    shapes = [tuple(x.shape) for x in leaves]
    dtypes = [x.dtype for x in leaves]
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    if leaves:
        dtype = fnp.result_type(*leaves)
        flat = fnp.concatenate([fnp.ravel(x).astype(dtype) for x in leaves])
    else:
        dtype = np.dtype(np.float32)
        flat = fnp.zeros((0,), dtype)
    total = sum(sizes)
    # As in JAX: a vector of the raveled dtype is cut and cast back to the leaves' dtypes.
    # Another dtype is kept when all leaves share one dtype (so unravel also takes, say,
    # complex or integer vectors) and refused otherwise. "The raveled dtype" counts as JAX
    # sees it: without x64, float64 and float32 are one dtype (nanofn keeps float64 leaves
    # as they are, where JAX would have made them float32).
    single_dtype = all(d == dtype for d in dtypes)
    canonical = _canonical(dtype)

    def unravel(vec):
        shape = tuple(getattr(vec, "shape", np.shape(vec)))
        if shape != (total,):
            raise ValueError(f"unravel: the vector must have shape ({total},) as the one "
                             f"ravel_pytree made, got {shape}")
        vec = fnp.asarray(vec)
        keep = _canonical(vec.dtype) != canonical
        if keep and not single_dtype:
            raise TypeError(f"unravel function given array of dtype {vec.dtype}, but "
                            f"expected dtype {dtype}")
        pieces, start = [], 0
        for s, n, d in zip(shapes, sizes, dtypes):
            piece = fnp.reshape(vec[start:start + n], s)
            pieces.append(piece if keep else piece.astype(d))
            start += n
        return tree_unflatten(treedef, pieces)

    return flat, unravel


def _canonical(dtype):
    """The dtype JAX compares: without x64, a 64-bit dtype counts as its 32-bit kind."""
    from nanofn._config import config
    dtype = np.dtype(dtype)
    if not config.jax_enable_x64:
        if dtype.kind in "iuf" and dtype.itemsize == 8:
            return np.dtype(f"{dtype.kind}4")
        if dtype == np.complex128:
            return np.dtype(np.complex64)
    return dtype
