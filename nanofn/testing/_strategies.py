"""Hypothesis strategies for property tests of array code.

Shapes with 0-d, empty and size-1 axes, groups of shapes that broadcast together, float
values kept inside a function's domain, and pytrees of arrays. They are thin layers over
`hypothesis.extra.numpy`, chosen so that gradient checks on the values they draw are
meaningful: values stay a margin away from domain edges, so a finite-difference step
never crosses one.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = ["arrays", "broadcastable_shapes", "floats_in", "pytrees_of_arrays", "shapes"]


def _check_dims(fn, min_dims, max_dims, min_side, max_side):
    if not 0 <= min_dims <= max_dims:
        raise ValueError(f"{fn}: need 0 <= min_dims <= max_dims, got min_dims={min_dims}, "
                         f"max_dims={max_dims}.")
    if not 0 <= min_side <= max_side:
        raise ValueError(f"{fn}: need 0 <= min_side <= max_side, got min_side={min_side}, "
                         f"max_side={max_side}.")


def shapes(min_dims=0, max_dims=3, min_side=0, max_side=5):
    """Strategy for array shapes: tuples of ``min_dims..max_dims`` sides in
    ``min_side..max_side``.

    The defaults include 0-d shapes ``()``, empty axes (side 0) and size-1 axes, the
    cases where array code most often goes wrong.

    Args:
      min_dims: fewest axes.
      max_dims: most axes.
      min_side: smallest length of an axis.
      max_side: largest length of an axis.

    Returns:
      A hypothesis strategy of tuples of ints.

    Example:
      >>> from hypothesis import given
      >>> from nanofn.testing import shapes
      >>> @given(shapes(min_dims=2, max_dims=2, min_side=1))
      ... def test_matrix_shapes(shape):
      ...     assert len(shape) == 2 and all(1 <= side <= 5 for side in shape)
      >>> test_matrix_shapes()
    """
    _check_dims("shapes", min_dims, max_dims, min_side, max_side)
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcastable_shapes(n, min_dims=0, max_dims=3, min_side=0, max_side=5):
    """Strategy for ``n`` shapes that broadcast together under numpy's rules.

    The shapes may differ in their number of axes (missing leading axes) and may have
    size-1 axes where the others have longer ones, e.g. ``((3, 1), (4, 1, 5), (5,))``.

    Args:
      n: how many shapes to draw.
      min_dims: fewest axes of each shape.
      max_dims: most axes of each shape.
      min_side: smallest length of an axis of the broadcast result.
      max_side: largest length of an axis.

    Returns:
      A hypothesis strategy of ``n``-tuples of shapes.

    Example:
      >>> import numpy as np
      >>> from hypothesis import given
      >>> from nanofn.testing import broadcastable_shapes
      >>> @given(broadcastable_shapes(2))
      ... def test_add_broadcasts(shapes):
      ...     a, b = shapes
      ...     assert (np.ones(a) + np.ones(b)).shape == np.broadcast_shapes(a, b)
      >>> test_add_broadcasts()
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"broadcastable_shapes: n must be a positive int, got {n!r}.")
    _check_dims("broadcastable_shapes", min_dims, max_dims, min_side, max_side)
    return hnp.mutually_broadcastable_shapes(
        num_shapes=int(n), min_dims=min_dims, max_dims=max_dims, min_side=min_side,
        max_side=max_side).map(lambda b: tuple(b.input_shapes))


def _representable(value, width, direction):
    """`value` rounded to the float width, moved towards `direction` if rounding moved it
    away (hypothesis wants bounds that the width represents exactly)."""
    dtype = {16: np.float16, 32: np.float32, 64: np.float64}[width]
    rounded = dtype(value)
    if (direction > 0 and rounded < value) or (direction < 0 and rounded > value):
        rounded = np.nextafter(rounded, dtype(direction * np.inf))
    return float(rounded)


def floats_in(domain=(None, None), *, margin=0.1, bound=10.0, width=64):
    """Strategy for finite floats inside a function's domain, a margin away from its edges.

    ``domain`` is ``(lo, hi)``, the open interval where the function is smooth, with
    ``None`` for an unbounded side: ``(0, None)`` for ``log`` and ``sqrt``, ``(-1, 1)`` for
    ``arctanh``, ``(None, None)`` for ``sin``. Values are drawn from
    ``[lo + margin, hi - margin]`` (the margin shrinks to a quarter of the width for narrow
    domains), so a finite-difference step of ``eps << margin`` stays inside. An unbounded
    side is cut at ``bound`` beyond zero (or beyond the other edge), so values stay in a
    range where finite differences are accurate.

    Args:
      domain: ``(lo, hi)`` with ``lo < hi``; either may be ``None``.
      margin: distance kept from a finite edge.
      bound: how far an unbounded side extends.
      width: float width in bits (16, 32 or 64), as in ``hypothesis.strategies.floats``.

    Returns:
      A hypothesis strategy of Python floats.

    Example:
      >>> import numpy as np
      >>> from hypothesis import given
      >>> from nanofn.testing import floats_in
      >>> @given(floats_in((-1, 1)))
      ... def test_arctanh_is_finite(x):
      ...     assert -0.9 <= x <= 0.9 and np.isfinite(np.arctanh(x))
      >>> test_arctanh_is_finite()
    """
    try:
        lo, hi = domain
    except (TypeError, ValueError):
        raise ValueError(f"floats_in: domain must be a pair (lo, hi) with None for an "
                         f"unbounded side, got {domain!r}.") from None
    if lo is not None and hi is not None and not lo < hi:
        raise ValueError(f"floats_in: domain (lo, hi) needs lo < hi, got {domain!r}.")
    if width not in (16, 32, 64):
        raise ValueError(f"floats_in: width must be 16, 32 or 64, got {width!r}.")
    if not (margin >= 0 and bound > 0):
        raise ValueError(f"floats_in: need margin >= 0 and bound > 0, got margin={margin!r}, "
                         f"bound={bound!r}.")
    a = lo if lo is not None else min(0.0 if hi is None else hi, 0.0) - bound
    b = hi if hi is not None else max(0.0 if lo is None else lo, 0.0) + bound
    m = min(margin, (b - a) / 4)
    a = a + m if lo is not None else a
    b = b - m if hi is not None else b
    return st.floats(_representable(a, width, +1), _representable(b, width, -1),
                     allow_nan=False, allow_infinity=False, allow_subnormal=False, width=width)


def _elements_for(dtype, elements):
    if isinstance(elements, st.SearchStrategy):
        return elements
    if np.issubdtype(dtype, np.floating):
        domain = (None, None) if elements is None else elements
        return floats_in(domain, width=8 * dtype.itemsize)
    if dtype == np.bool_:
        if elements is not None:
            raise ValueError("arrays: boolean arrays take elements=None or a strategy.")
        return st.booleans()
    if np.issubdtype(dtype, np.integer):
        lo, hi = (-10, 10) if elements is None else elements
        info = np.iinfo(dtype)
        lo = info.min if lo is None else max(int(lo), info.min)
        hi = info.max if hi is None else min(int(hi), info.max)
        return st.integers(lo, hi)
    raise ValueError(f"arrays: unsupported dtype {dtype}; use a float, int or bool dtype.")


def arrays(shape, dtype=np.float64, elements=None):
    """Strategy for numpy arrays of a given shape and dtype.

    Args:
      shape: a shape tuple, an int, or a strategy of shapes (e.g. ``shapes()``).
      dtype: a numpy float, int or bool dtype.
      elements: ``None`` (floats in ``[-10, 10]``, ints in ``[-10, 10]``); a domain
        ``(lo, hi)`` as for :func:`floats_in` (for int dtypes, closed integer bounds); or a
        hypothesis strategy of scalars.

    Returns:
      A hypothesis strategy of ``numpy.ndarray``.

    Example:
      >>> import numpy as np
      >>> from hypothesis import given
      >>> from nanofn.testing import arrays
      >>> @given(arrays((2, 3), elements=(0, None)))
      ... def test_log_is_finite(x):
      ...     assert x.shape == (2, 3) and x.dtype == np.float64
      ...     assert np.isfinite(np.log(x)).all()
      >>> test_log_is_finite()
    """
    dtype = np.dtype(dtype)
    return hnp.arrays(dtype, shape, elements=_elements_for(dtype, elements))


_KEYS = st.sampled_from(["a", "b", "c", "w", "bias", "scale"])


def pytrees_of_arrays(shape=None, dtype=np.float64, elements=None, max_leaves=4):
    """Strategy for pytrees of arrays: nested dicts, lists and tuples with array leaves.

    Every container holds at least one child, so each tree has at least one leaf. A tree
    may also be a single array.

    Args:
      shape: a shape or a strategy of shapes for the leaves; default
        ``shapes(max_dims=2, max_side=3)`` (each leaf draws its own shape).
      dtype: dtype of the leaves.
      elements: as in :func:`arrays`.
      max_leaves: the most leaves in one tree (a soft limit, as in
        ``hypothesis.strategies.recursive``).

    Returns:
      A hypothesis strategy of pytrees.

    Example:
      >>> import numpy as np
      >>> from hypothesis import given
      >>> import nanofn
      >>> from nanofn.testing import pytrees_of_arrays
      >>> @given(pytrees_of_arrays())
      ... def test_leaves_are_arrays(tree):
      ...     leaves = nanofn.tree_util.tree_leaves(tree)
      ...     assert leaves and all(isinstance(x, np.ndarray) for x in leaves)
      >>> test_leaves_are_arrays()
    """
    shape = shapes(max_dims=2, max_side=3) if shape is None else shape
    leaf = arrays(shape, dtype, elements)

    def extend(children):
        return st.one_of(
            st.lists(children, min_size=1, max_size=3),
            st.lists(children, min_size=1, max_size=3).map(tuple),
            st.dictionaries(_KEYS, children, min_size=1, max_size=3),
        )

    return st.recursive(leaf, extend, max_leaves=max_leaves)
