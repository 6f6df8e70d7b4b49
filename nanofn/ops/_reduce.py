"""Products, cumulative ops and sorting: primitives with all their rules side by side.

* `reduce_prod` multiplies over axes. Its derivative with respect to `x[i]` is the product
  of every *other* element, computed as (exclusive prefix product) * (exclusive suffix
  product), never as `out / x`, so it is right when the input holds zeros, and because
  those products are `cumprod`s, its own derivative (the Hessian of a product) is too.
* `cumsum`, `cumprod`, `cummax`, `cummin` scan along one `axis`, forward or `reverse`, as
  in `jax.lax`. `cumsum` is linear: its transpose is a `cumsum` in the other direction.
  `cumprod`'s tangent solves `d out[k] = x[k] d out[k-1] + out[k-1] t[k]` by a log-depth
  scan of products (exact through zeros, to every order); its transpose runs backwards.
* `sort` sorts several operands of one shape along `dimension` by the first `num_keys`
  of them (lexicographically), stably. Its JVP sorts the tangents along as extra
  operands; its VJP needs the inverse permutation, which is itself a sort: sorting
  `(perm, ct)` by `perm` puts every cotangent back where its element came from.

Every rule is written with primitives, so derivatives can be taken again, and every
primitive has a batching rule.
"""

from __future__ import annotations

import operator

import numpy as np

from nanofn._core import Primitive, ShapedArray
from nanofn.ops._base import (
    _add, _aval_shape, _c, _dtype, _keep_axes, _mul, _reduce_batch, _reduce_shape,
    bdim_to_front, broadcast_in_dim_p, div_p, eq_p, iota_p, lt_p, max_p,
    min_p, ne_p,
    neg_p, not_p, reduce_sum_p, reshape, select_n_p, transpose,
)
from nanofn.ops._shape import pad_p, slice_in_dim

__all__ = ["reduce_prod", "cumsum", "cumprod", "cummax", "cummin", "sort", "sort_key_val",
           "top_k"]

_INDEX = np.dtype(np.int32)


def _check_numeric(name, aval, *, allow_bool=False, allow_complex=True):
    if aval.dtype == bool and not allow_bool:
        raise TypeError(f"{name} does not accept booleans ({aval.str_short()}); convert them "
                        "to an integer or float dtype first")
    if aval.dtype.kind not in ("biufc" if allow_complex else "biuf"):
        raise TypeError(f"{name} does not accept dtype {aval.dtype.name} ({aval.str_short()})")


def _positions(shape, axis):
    """int32 positions along `axis`, as a constant of `shape`."""
    return iota_p.bind(dtype=_INDEX, shape=tuple(shape), dimension=axis)


def _shift(x, axis, *, reverse, fill):
    """Shift `x` by one step along `axis` in the scan direction, filling the vacated end:
    forward `[fill, x0, ..., x(n-2)]`, reverse `[x1, ..., x(n-1), fill]` (a `pad` that adds
    one element at one end and crops one at the other)."""
    config = [(0, 0, 0)] * len(_aval_shape(x))
    config[axis] = (-1, 1, 0) if reverse else (1, -1, 0)
    return pad_p.bind(x, _c(x, fill), padding_config=tuple(config))


# ======================================================================== reduce_prod

reduce_prod_p = Primitive("reduce_prod")
reduce_prod_p.impl = lambda x, *, axes: np.prod(x, axis=axes, dtype=x.dtype)


def _reduce_prod_abstract_eval(x, *, axes):
    _check_numeric("reduce_prod", x)
    return _reduce_shape("reduce_prod")(x, axes=axes)


reduce_prod_p.abstract_eval = _reduce_prod_abstract_eval
reduce_prod_p.batch = _reduce_batch(reduce_prod_p)


def _others_product(x, axes):
    """`prod(x over axes) / x` without dividing: for each element, the product of all the
    other elements of its reduced group, as exclusive prefix * exclusive suffix products."""
    shape = _aval_shape(x)
    kept = [d for d in range(len(shape)) if d not in axes]
    perm = tuple(kept) + tuple(axes)
    grouped_shape = tuple(shape[d] for d in kept) + (
        int(np.prod([shape[d] for d in axes], dtype=np.int64)),)
    g = reshape(transpose(x, perm), grouped_shape)
    last = len(grouped_shape) - 1
    before = cumprod_p.bind(_shift(g, last, reverse=False, fill=1), axis=last, reverse=False)
    after = cumprod_p.bind(_shift(g, last, reverse=True, fill=1), axis=last, reverse=True)
    others = _mul(before, after)
    others = reshape(others, tuple(shape[d] for d in perm))
    return transpose(others, tuple(np.argsort(perm).tolist()))


def _reduce_prod_jvp(t, x, *, out, axes):
    del out  # unused
    return reduce_sum_p.bind(_mul(t, _others_product(x, axes)), axes=axes)


def _reduce_prod_vjp(ct, x, *, out, axes):
    del out  # unused
    return _mul(_keep_axes(ct, _aval_shape(x), axes), _others_product(x, axes))


reduce_prod_p.jvp_terms = [_reduce_prod_jvp]
reduce_prod_p.vjp = [_reduce_prod_vjp]


def reduce_prod(operand, axes):
    """Multiply the elements of `operand` over `axes`.

    Its gradient is exact when elements are zero (and so is its second derivative): the
    derivative with respect to one element is the product of the others, computed from
    prefix and suffix products rather than by dividing the result by the element.

    Args:
        operand: a numeric array.
        axes: a sequence of distinct axes (negative values count from the end).

    Returns:
        The product, with `axes` removed from the shape.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.reduce_prod(fnp.array([[1.0, 2.0], [3.0, 4.0]]), (1,))
        Array([ 2., 12.], dtype=float32)
        >>> nanofn.grad(lambda x: nanofn.lax.reduce_prod(x, (0,)))(fnp.array([0.0, 2.0, 3.0]))
        Array([6., 0., 0.], dtype=float32)
    """
    from nanofn.ops._base import _py_scalar
    operand = _py_scalar(operand)
    ndim = len(_aval_shape(operand))
    return reduce_prod_p.bind(operand, axes=tuple(sorted(_axis(a, ndim, "reduce_prod")
                                                         for a in axes)))


def _axis(axis, ndim, name):
    a = operator.index(axis)
    if not -ndim <= a < ndim:
        raise ValueError(f"{name}: axis {axis} is out of range for an array with {ndim} "
                         "dimensions")
    return a % ndim


# ======================================================================== cumulative ops


def _scan_impl(fn, ordered):
    def impl(x, *, axis, reverse):
        # booleans only for ordered scans (max, min; complex numbers in lexicographic order)
        if x.dtype == bool and not ordered:
            raise TypeError("bad dtype")  # the core re-raises the shape rule's message
        if reverse:
            return np.flip(fn(np.flip(x, axis), axis), axis)
        return fn(x, axis)
    return impl


def _cumulative(name, fn, *, ordered=False):
    """A scan primitive with params `axis` and `reverse`, its shape rule and batching rule.
    `ordered` scans (max, min) also take booleans; all take complex numbers (ordered
    lexicographically, real part first, as numpy and JAX compare them)."""
    prim = Primitive(name)
    prim.impl = _scan_impl(fn, ordered)

    def abstract_eval(x, *, axis, reverse):
        _check_numeric(name, x, allow_bool=ordered)
        if not 0 <= axis < x.ndim:
            raise ValueError(f"{name}: axis {axis} is out of range for {x.str_short()} (the "
                             f"primitive takes a non-negative axis; lax.{name} normalises it)")
        if not isinstance(reverse, (bool, np.bool_)):
            raise TypeError(f"{name}: reverse must be a bool, got {reverse!r}")
        return x

    prim.abstract_eval = abstract_eval
    prim.batch = lambda vals, dims, *, axis, reverse: (
        prim.bind(bdim_to_front(vals[0], dims[0]), axis=axis + 1, reverse=reverse), 0)
    return prim


def _cumulative_wrapper(prim, name, doc):
    def fn(operand, axis=0, reverse=False):
        ndim = len(_aval_shape(operand))
        return prim.bind(operand, axis=_axis(axis, ndim, name), reverse=bool(reverse))
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


# --- cumsum: linear -----------------------------------------------------------------------
cumsum_p = _cumulative("cumsum", lambda x, axis: np.cumsum(x, axis=axis, dtype=x.dtype))
cumsum_p.jvp_terms = [lambda t, x, *, out, axis, reverse:
                      cumsum_p.bind(t, axis=axis, reverse=reverse)]
# the transpose of a running sum is a running sum in the opposite direction
cumsum_p.vjp = [lambda ct, x, *, out, axis, reverse:
                cumsum_p.bind(ct, axis=axis, reverse=not reverse)]

cumsum = _cumulative_wrapper(cumsum_p, "cumsum", """Running sum of `operand` along `axis`.

    Args:
        operand: a numeric array.
        axis: the axis to scan (negative values count from the end).
        reverse: scan from the end: `out[i] = sum(operand[i:])`.

    Returns:
        An array of `operand`'s shape and dtype.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.cumsum(fnp.array([1, 2, 3]))
        Array([1, 3, 6], dtype=int32)
        >>> nanofn.lax.cumsum(fnp.array([1, 2, 3]), reverse=True)
        Array([6, 5, 3], dtype=int32)
    """)

# --- cumprod ---------------------------------------------------------------------------------
cumprod_p = _cumulative("cumprod", lambda x, axis: np.cumprod(x, axis=axis, dtype=x.dtype))


def _shift_by(x, steps, axis, *, reverse, fill):
    """`_shift` by `steps` positions (a pad that adds `steps` elements at one end and crops
    as many at the other)."""
    config = [(0, 0, 0)] * len(_aval_shape(x))
    config[axis] = (-steps, steps, 0) if reverse else (steps, -steps, 0)
    return pad_p.bind(x, _c(x, fill), padding_config=tuple(config))


def _linear_recurrence(a, b, axis, reverse):
    """`y[k] = a[k] y[k-1] + b[k]` (`y[-1] = 0`) along `axis` in the scan direction, by a
    Hillis-Steele scan: log2(n) rounds of shifted products, composing `(a, b)` pairs as
    `(a_late a_early, a_late b_early + b_late)`. Built from mul, add and pad, so every
    derivative of it is exact, also where `a` has zeros (no division)."""
    n = _aval_shape(a)[axis]
    steps = 1
    while steps < n:
        b = _add(b, _mul(a, _shift_by(b, steps, axis, reverse=reverse, fill=0)))
        if 2 * steps < n:  # the last round's products are not needed
            a = _mul(a, _shift_by(a, steps, axis, reverse=reverse, fill=1))
        steps *= 2
    return b


def _cumprod_jvp(t, x, *, out, axis, reverse):
    # out[k] = out[k-1] x[k], so d out[k] = x[k] d out[k-1] + out[k-1] t[k]: a linear
    # recurrence (exact where x has zeros, where out / x would divide by zero)
    before = _shift(out, axis, reverse=reverse, fill=1)  # the exclusive running product
    return _linear_recurrence(x, _mul(before, t), axis, reverse)


def _cumprod_vjp(ct, x, *, out, axis, reverse):
    # the transpose of the recurrence runs the other way: z[k] = ct[k] + x[k+1] z[k+1],
    # and the cotangent of t is out[k-1] z[k]
    before = _shift(out, axis, reverse=reverse, fill=1)
    after = _shift(x, axis, reverse=not reverse, fill=0)  # x[k+1] (0 past the end)
    return _mul(before, _linear_recurrence(after, ct, axis, not reverse))


cumprod_p.jvp_terms = [_cumprod_jvp]
cumprod_p.vjp = [_cumprod_vjp]

cumprod = _cumulative_wrapper(cumprod_p, "cumprod", """Running product of `operand` along `axis`.

    Derivatives of every order are exact also where `operand` has zeros: the tangent
    solves the linear recurrence `d out[k] = x[k] d out[k-1] + out[k-1] t[k]` by a
    log-depth scan of products, never `out / x`.

    Args:
        operand: a numeric array.
        axis: the axis to scan (negative values count from the end).
        reverse: scan from the end: `out[i] = prod(operand[i:])`.

    Returns:
        An array of `operand`'s shape and dtype.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.cumprod(fnp.array([1.0, 2.0, 3.0]))
        Array([1., 2., 6.], dtype=float32)
    """)


# --- cummax, cummin ---------------------------------------------------------------------------
def _tree_tangent(x, t, axis, reverse, extremum_p):
    """The tangent of the running extremum as JAX defines it: the derivative of an
    `associative_scan` of `max` (`min`), where each pairwise extremum splits a tie evenly
    between its two arguments (so tied elements share the derivative, in proportions set
    by the scan's tree)."""
    from nanofn.ops._control import associative_scan

    def combine(a, b):
        (va, ta), (vb, tb) = a, b
        v = extremum_p.bind(va, vb)
        a_hit, b_hit = eq_p.bind(va, v), eq_p.bind(vb, v)
        half, one, zero = _c(ta, 0.5), _c(ta, 1), _c(ta, 0)
        wa = select_n_p.bind(a_hit, zero, select_n_p.bind(b_hit, one, half))
        wb = select_n_p.bind(b_hit, zero, select_n_p.bind(a_hit, one, half))
        return v, _add(_mul(ta, wa), _mul(tb, wb))

    return associative_scan(combine, (x, t), reverse=reverse, axis=axis)[1]


def _def_cum_extremum(name, np_ufunc, extremum_p):
    prim = _cumulative(name, lambda x, axis: np_ufunc.accumulate(x, axis=axis), ordered=True)

    def jvp(t, x, *, out, axis, reverse):
        return _tree_tangent(x, t, axis, reverse, extremum_p)

    def vjp(ct, x, *, out, axis, reverse):
        from nanofn._ad import vjp as vjp_of
        # the tangent map is linear in t: its transpose is its vjp at any point (zeros)
        _, pull = vjp_of(lambda t: _tree_tangent(x, t, axis, reverse, extremum_p),
                         _mul(ct, _c(ct, 0)))
        return pull(ct)[0]

    prim.jvp_terms = [jvp]
    prim.vjp = [vjp]
    return prim


cummax_p = _def_cum_extremum("cummax", np.maximum, max_p)
cummin_p = _def_cum_extremum("cummin", np.minimum, min_p)

_CUM_EXTREMUM_NOTE = """
    Derivatives are JAX's: those of a parallel prefix scan (`associative_scan`) of
    pairwise {kind}ima, each of which splits a tie evenly between its arguments. Without
    ties the derivative of `out[k]` goes to the one element holding the running {kind};
    tied elements share it."""

cummax = _cumulative_wrapper(cummax_p, "cummax", """Running maximum of `operand` along `axis`.
""" + _CUM_EXTREMUM_NOTE.format(kind="max") + """

    Args:
        operand: a real or boolean array.
        axis: the axis to scan (negative values count from the end).
        reverse: scan from the end: `out[i] = max(operand[i:])`.

    Returns:
        An array of `operand`'s shape and dtype.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.cummax(fnp.array([1.0, 3.0, 2.0, 5.0]))
        Array([1., 3., 3., 5.], dtype=float32)
    """)

cummin = _cumulative_wrapper(cummin_p, "cummin", """Running minimum of `operand` along `axis`.
""" + _CUM_EXTREMUM_NOTE.format(kind="min") + """

    Args:
        operand: a real or boolean array.
        axis: the axis to scan (negative values count from the end).
        reverse: scan from the end: `out[i] = min(operand[i:])`.

    Returns:
        An array of `operand`'s shape and dtype.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.cummin(fnp.array([3.0, 1.0, 2.0]), reverse=True)
        Array([1., 1., 2.], dtype=float32)
    """)


# ======================================================================== sort

sort_p = Primitive("sort", multiple_results=True)


@sort_p.def_abstract_eval
def _sort_abstract_eval(*operands, dimension, is_stable, num_keys):
    del is_stable  # unused
    if not operands:
        raise TypeError("sort needs at least one operand")
    shapes = {op.shape for op in operands}
    if len(shapes) > 1:
        raise ValueError("sort: every operand must have one shape, got "
                         f"{', '.join(op.str_short() for op in operands)}")
    if not 1 <= num_keys <= len(operands):
        raise ValueError(f"sort: num_keys={num_keys} must be between 1 and the number of "
                         f"operands ({len(operands)})")
    ndim = operands[0].ndim
    if not 0 <= dimension < ndim:
        raise ValueError(f"sort: dimension {dimension} is out of range for operands of shape "
                         f"{operands[0].shape} (sort needs at least one dimension)")
    for op in operands[:num_keys]:
        if op.dtype.kind not in "biufc":
            raise TypeError(f"sort: keys must be numbers or booleans, got {op.str_short()}")
    return list(operands)


@sort_p.def_impl
def _sort_impl(*operands, dimension, is_stable, num_keys):
    # numpy would quietly accept operands of different shapes: check like the shape rule
    _sort_abstract_eval(*[ShapedArray(op.shape, op.dtype) for op in operands],
                        dimension=dimension, is_stable=is_stable, num_keys=num_keys)
    # a complex key orders by its real part, then its imaginary part (numpy's and JAX's)
    keys = [part for k in operands[:num_keys]
            for part in ((k.real, k.imag) if np.iscomplexobj(k) else (k,))]
    if len(keys) == 1:
        perm = np.argsort(keys[0], axis=dimension, kind="stable")
    else:  # lexsort takes its primary key last
        perm = np.lexsort(keys[::-1], axis=dimension)
    return [np.take_along_axis(op, perm, axis=dimension) for op in operands]


def _sort_jvp(primals, tangents, *, dimension, is_stable, num_keys):
    # sort the tangents along with the primals, as extra (non-key) operands
    carried = [i for i, t in enumerate(tangents) if t is not None]
    outs = sort_p.bind(*primals, *[tangents[i] for i in carried], dimension=dimension,
                       is_stable=is_stable, num_keys=num_keys)
    n = len(primals)
    t_out = [None] * n
    for j, i in enumerate(carried):
        t_out[i] = outs[n + j]
    return outs[:n], t_out


def sort_permutation(keys, dimension):
    """The stable sorting permutation of `keys` (a list of arrays) along `dimension`:
    `sorted[k] = x[perm[k]]`. Written with `sort`, so it can be traced."""
    pos = _positions(_aval_shape(keys[0]), dimension)
    return sort_p.bind(*keys, pos, dimension=dimension, is_stable=True, num_keys=len(keys))[-1]


def _sort_vjp(cts, primals, outs, needs, *, dimension, is_stable, num_keys):
    del outs, is_stable  # unused
    wanted = [i for i, (ct, need) in enumerate(zip(cts, needs))
              if need and ct is not None and np.issubdtype(_dtype(primals[i]), np.inexact)]
    result = [None] * len(primals)
    if not wanted:
        return result
    perm = sort_permutation(list(primals[:num_keys]), dimension)
    # sorting by perm moves element k of the sorted order back to position perm[k]
    back = sort_p.bind(perm, *[cts[i] for i in wanted], dimension=dimension, is_stable=True,
                       num_keys=1)[1:]
    for i, b in zip(wanted, back):
        result[i] = b
    return result


def _sort_batch(vals, dims, *, dimension, is_stable, num_keys):
    size = next(_aval_shape(v)[d] for v, d in zip(vals, dims) if d is not None)
    moved = []
    for v, d in zip(vals, dims):
        if d is None:
            shape = _aval_shape(v)
            v = broadcast_in_dim_p.bind(v, shape=(size,) + tuple(shape),
                                        broadcast_dimensions=tuple(range(1, len(shape) + 1)))
        else:
            v = bdim_to_front(v, d)
        moved.append(v)
    outs = sort_p.bind(*moved, dimension=dimension + 1, is_stable=is_stable, num_keys=num_keys)
    return outs, [0] * len(outs)


sort_p.jvp = _sort_jvp
sort_p.vjp_joint = _sort_vjp
sort_p.batch = _sort_batch


def sort(operand, dimension=-1, is_stable=True, num_keys=1):
    """Sort along `dimension`; several operands are sorted together by the first `num_keys`.

    Keys compare lexicographically (the first key is primary). NaNs sort to the end and
    equal keys keep their order (the sort is always stable). Differentiable with respect to
    float operands: the derivative follows each element to its sorted position.

    Args:
        operand: an array, or a sequence of arrays of one shape.
        dimension: the axis to sort along (negative values count from the end).
        is_stable: accepted for compatibility; the sort is always stable.
        num_keys: how many of the leading operands are sort keys.

    Returns:
        The sorted array, or a tuple of sorted arrays if `operand` was a sequence.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.sort(fnp.array([3, 1, 2]))
        Array([1, 2, 3], dtype=int32)
        >>> keys, vals = nanofn.lax.sort((fnp.array([2, 1]), fnp.array([10.0, 20.0])))
        >>> vals
        Array([20., 10.], dtype=float32)
    """
    single = not isinstance(operand, (tuple, list))
    operands = [operand] if single else list(operand)
    if not operands:
        raise TypeError("sort: needs at least one operand")
    ndim = len(_aval_shape(operands[0]))
    if ndim == 0:
        raise ValueError("sort: operands must have at least one dimension, got a 0-d array")
    outs = sort_p.bind(*operands, dimension=_axis(dimension, ndim, "sort"),
                       is_stable=bool(is_stable), num_keys=int(num_keys))
    return outs[0] if single else tuple(outs)


def sort_key_val(keys, values, dimension=-1, is_stable=True):
    """Sort `keys` along `dimension` and apply the same permutation to `values`.

    Args:
        keys: the array to sort by.
        values: an array of the same shape, permuted like `keys`.
        dimension: the axis to sort along.
        is_stable: accepted for compatibility; the sort is always stable.

    Returns:
        `(sorted_keys, permuted_values)`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> k, v = nanofn.lax.sort_key_val(fnp.array([3, 1, 2]), fnp.array([0, 1, 2]))
        >>> v
        Array([1, 2, 0], dtype=int32)
    """
    return sort((keys, values), dimension=dimension, is_stable=is_stable, num_keys=1)


def descending_key(x):
    """An array whose ascending order is `x`'s descending order, NaNs first (as reversing an
    ascending sort would put them). Returns a list of keys for `sort`."""
    dtype = _dtype(x)
    if dtype == bool or np.issubdtype(dtype, np.integer):
        return [not_p.bind(x)]  # ~x reverses the order of integers without overflow
    is_nan = ne_p.bind(x, x)
    return [not_p.bind(is_nan), neg_p.bind(x)]


def top_k(operand, k, *, axis=-1):
    """The `k` largest entries along `axis`, largest first, and their indices.

    Equal entries keep their order (the lower index first), except that 0.0 ranks above
    -0.0 (top_k orders floats totally, as JAX's does; `sort` treats the two zeros as
    equal). The values are differentiable.

    Args:
        operand: a real array.
        k: how many entries to keep (at most the size of `axis`).
        axis: the axis to search (negative values count from the end).

    Returns:
        `(values, indices)`; `axis` has size `k` in both, and `indices` is int32.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> vals, idx = nanofn.lax.top_k(fnp.array([9.0, 3.0, 6.0, 4.0, 10.0]), 3)
        >>> vals, idx
        (Array([10.,  9.,  6.], dtype=float32), Array([4, 0, 2], dtype=int32))
    """
    shape = _aval_shape(operand)
    if not shape:
        raise ValueError("top_k: operand must have at least one dimension, got a 0-d array")
    axis = _axis(axis, len(shape), "top_k")
    k = operator.index(k)
    if not 0 <= k <= shape[axis]:
        raise ValueError(f"top_k: k={k} must be between 0 and the size of axis {axis} "
                         f"({shape[axis]}) of the operand of shape {tuple(shape)}")
    keys = descending_key(operand)
    dtype = _dtype(operand)
    if np.issubdtype(dtype, np.floating):
        # a last key that tells the zeros apart: 1 / -0.0 = -inf < 0 (ranks it after 0.0);
        # it only breaks ties, so its value for other entries does not matter
        keys.append(lt_p.bind(div_p.bind(_c(operand, 1), operand), _c(operand, 0)))
    outs = sort_p.bind(*keys, operand, _positions(shape, axis), dimension=axis, is_stable=True,
                       num_keys=len(keys))
    return _leading(outs[-2], k, axis), _leading(outs[-1], k, axis)


def _leading(x, k, axis):
    """The first `k` entries of `x` along `axis`."""
    return slice_in_dim(x, 0, k, axis=axis)
