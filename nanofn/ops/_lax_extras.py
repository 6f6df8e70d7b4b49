"""More of jax.lax's public names, so `from nanofn.lax import X` works where JAX's does.

Three kinds (and one primitive of its own, `reduce_precision`):

* the primitives themselves under JAX's `<name>_p` names (`add_p`, `sin_p`, `while_p`,
  ...), for programs that look them up (custom interpreters, jaxpr walkers);
* small compositions of existing primitives (`clamp`, `square`, `reciprocal`, `dot`,
  `batch_matmul`, `broadcast`, `full_like`, `collapse`, `split`, `tile`, `reduce`, ...);
* jax.lax's names for special functions that nanofn computes in `nanofn.scipy.special`
  (`lgamma`, `digamma`, `igamma`, `erfc`, `bessel_i0e`, ...), imported when first called.

`nanofn/ops/__init__.py` takes from here only the names it does not define itself.

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.lax import clamp, square
    >>> clamp(0.0, fnp.array([-1.0, 0.5, 2.0]), 1.0)
    Array([0. , 0.5, 1. ], dtype=float32)
    >>> square(fnp.array([3.0]))
    Array([9.], dtype=float32)
"""

from __future__ import annotations

import dataclasses
import enum
import math
import operator
from typing import Sequence, Union

import numpy as np

from nanofn import _core
from nanofn._core import get_aval
from nanofn.ops import _base, _conv, _shape

# ------------------------------------------------------------------ compositions


def _shape_of(x):
    return tuple(get_aval(x).shape)


def _like(x, value):
    aval = get_aval(x)
    return _base.full(aval.shape, value, aval.dtype)


def clamp(min, x, max):
    """`x` clipped to `[min, max]` elementwise; `min` and `max` are scalars or have `x`'s
    shape, and all three one dtype (jax.lax.clamp).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.clamp(-1, fnp.arange(-3, 4), 1)
        Array([-1, -1, -1,  0,  1,  1,  1], dtype=int32)
    """
    shape = _shape_of(x)
    dtype = get_aval(x).dtype
    lo, hi = (b if _shape_of(b) == shape else
              _base.broadcast_in_dim(_base.convert_element_type(b, dtype), shape, ())
              for b in (min, max))
    return _base.min_p.bind(_base.max_p.bind(x, lo), hi)


def square(x):
    """`x * x` elementwise (jax.lax.square).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.square(fnp.array([2.0, -3.0]))
        Array([4., 9.], dtype=float32)
    """
    return _base.integer_pow_p.bind(x, y=2)


def reciprocal(x):
    """`1 / x` elementwise (jax.lax.reciprocal).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.reciprocal(fnp.array([2.0, 4.0]))
        Array([0.5 , 0.25], dtype=float32)
    """
    return _base.integer_pow_p.bind(x, y=-1)


def dot(lhs, rhs, precision=None, preferred_element_type=None):
    """Vector/matrix product: contracts the last axis of `lhs` with the first of `rhs`
    (jax.lax.dot; `precision` is accepted, float32 is computed in float32).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.dot(fnp.ones((2, 3)), fnp.ones(3))
        Array([3., 3.], dtype=float32)
    """
    nl = len(_shape_of(lhs))
    return _base.dot_general(lhs, rhs, (((nl - 1,), (0,)), ((), ())), precision=precision,
                             preferred_element_type=preferred_element_type)


def batch_matmul(lhs, rhs, precision=None):
    """Matrix products over matching leading batch axes (jax.lax.batch_matmul).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.batch_matmul(fnp.ones((4, 2, 3)), fnp.ones((4, 3, 5))).shape
        (4, 2, 5)
    """
    n = len(_shape_of(lhs))
    if n < 2 or n != len(_shape_of(rhs)):
        raise TypeError(f"batch_matmul: operands must have one rank >= 2, got shapes "
                        f"{_shape_of(lhs)} and {_shape_of(rhs)}")
    batch = tuple(range(n - 2))
    return _base.dot_general(lhs, rhs, (((n - 1,), (n - 2,)), (batch, batch)),
                             precision=precision)


def broadcast(operand, sizes, *, out_sharding=None):
    """`operand` with new leading axes of `sizes` (jax.lax.broadcast).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.broadcast(fnp.ones(3), (2,)).shape
        (2, 3)
    """
    shape = _shape_of(operand)
    sizes = tuple(sizes)
    return _base.broadcast_in_dim(operand, sizes + shape,
                                  tuple(range(len(sizes), len(sizes) + len(shape))))


def broadcast_to_rank(x, rank):
    """`x` with leading size-1 axes added up to `rank` (jax.lax.broadcast_to_rank).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.broadcast_to_rank(fnp.ones(3), 3).shape
        (1, 1, 3)
    """
    shape = _shape_of(x)
    return x if len(shape) >= rank else _base.reshape(x, (1,) * (rank - len(shape)) + shape)


def full_like(x, fill_value, dtype=None, shape=None, sharding=None):
    """An array like `x` (its shape and dtype unless given) filled with `fill_value`
    (`sharding` is accepted for JAX compatibility: nanofn runs on one device).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.full_like(fnp.ones(2, "int32"), 7)
        Array([7, 7], dtype=int32)
    """
    aval = get_aval(x)
    return _base.full(aval.shape if shape is None else tuple(shape), fill_value,
                      aval.dtype if dtype is None else np.dtype(dtype))


def collapse(operand, start_dimension, stop_dimension=None):
    """`operand` with the axes `[start_dimension, stop_dimension)` merged into one.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.collapse(fnp.ones((2, 3, 4)), 1).shape
        (2, 12)
    """
    shape = _shape_of(operand)
    stop = len(shape) if stop_dimension is None else stop_dimension
    start = start_dimension % max(len(shape), 1)
    stop = stop % (len(shape) + 1) if stop < 0 else stop
    size = int(np.prod(shape[start:stop], dtype=np.int64))
    return _base.reshape(operand, shape[:start] + (size,) + shape[stop:])


def split(operand, sizes, axis=0):
    """`operand` cut along `axis` into pieces of the given `sizes` (jax.lax.split).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> [p.shape for p in lax.split(fnp.ones(5), (2, 3))]
        [(2,), (3,)]
    """
    shape = _shape_of(operand)
    axis = axis % len(shape)
    if sum(sizes) != shape[axis]:
        raise ValueError(f"split: sizes {tuple(sizes)} must add up to the size of axis "
                         f"{axis}, {shape[axis]} (operand shape {shape})")
    out, start = [], 0
    for s in sizes:
        out.append(_shape.slice_in_dim(operand, start, start + s, axis=axis))
        start += s
    return out


def tile(operand, reps):
    """`operand` repeated `reps[i]` times along axis i (jax.lax.tile).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.tile(fnp.array([1, 2]), (2,))
        Array([1, 2, 1, 2], dtype=int32)
    """
    shape = _shape_of(operand)
    reps = tuple(reps)
    if len(reps) != len(shape):
        raise ValueError(f"tile: reps {reps} must have one entry per axis of {shape}")
    # broadcast to (r0, s0, r1, s1, ...) and merge each pair
    target = tuple(d for r, s in zip(reps, shape) for d in (r, s))
    dims = tuple(range(1, 2 * len(shape), 2))
    return _base.reshape(_base.broadcast_in_dim(operand, target, dims),
                         tuple(r * s for r, s in zip(reps, shape)))


def broadcast_shapes(*shapes):
    """The shape that `shapes` broadcast to, by numpy's rules (jax.lax.broadcast_shapes).

    Example:
        >>> from nanofn import lax
        >>> lax.broadcast_shapes((2, 1), (3,))
        (2, 3)
    """
    return _base.broadcast_shapes("broadcast_shapes", *[tuple(s) for s in shapes])


def stack(operands, axis=0):
    """Arrays of one shape and dtype joined along a new axis (jax.lax's `stack`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.stack([fnp.ones(2), fnp.zeros(2)], axis=1).shape
        (2, 2)
    """
    arrays = list(operands)
    shape = _shape_of(arrays[0])
    axis = axis % (len(shape) + 1)
    new = shape[:axis] + (1,) + shape[axis:]
    return _shape.concatenate([_base.reshape(a, new) for a in arrays], axis)


def unstack(x, axis=0):
    """The slices of `x` along `axis`, as a list (jax.lax's `unstack`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> [p.shape for p in lax.unstack(fnp.ones((3, 2)))]
        [(2,), (2,), (2,)]
    """
    shape = _shape_of(x)
    axis = axis % len(shape)
    return [_shape.index_in_dim(x, i, axis=axis, keepdims=False) for i in range(shape[axis])]


def _bool_reduce(name, reducer, bitwise, ones):
    def fn(operand, axes):
        import nanofn.ops as ops
        dtype = get_aval(operand).dtype
        shape = _shape_of(operand)
        if dtype == np.bool_ and 0 in [shape[a] for a in axes]:  # nothing to combine
            return _base.full(tuple(n for i, n in enumerate(shape) if i not in axes), ones,
                              np.bool_)
        if dtype == np.bool_:
            as_int = _base.convert_element_type(operand, np.int32)
            return _base.convert_element_type(reducer.bind(as_int, axes=tuple(axes)),
                                              np.bool_)
        if not np.issubdtype(dtype, np.integer):
            raise TypeError(f"{name}: needs booleans or integers, got {dtype.name}")
        init = np.array(-1 if ones else 0).astype(dtype)  # all bits set, or none
        return reduce(operand, init, getattr(ops, bitwise), axes)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"Logical {name[7:]} over `axes` (jax.lax.{name}): of booleans, or "
                  f"bitwise of integers.")
    return fn


reduce_and = _bool_reduce("reduce_and", _base.reduce_min_p, "bitwise_and", True)
reduce_or = _bool_reduce("reduce_or", _base.reduce_max_p, "bitwise_or", False)


def reduce(operands, init_values, computation, dimensions, out_sharding=None):
    """Reduce `operands` over `dimensions` with `computation` (jax.lax.reduce).

    `operands` is an array or a tuple of arrays of one shape, `init_values` the matching
    scalar(s), and `computation(a, b)` combines two partial results: two arrays (two
    tuples of arrays for tuple operands) into one (one tuple). As in XLA, `computation`
    must be associative and commutative, with `init_values` its identity. The monoids
    `lax.add`, `lax.mul`, `lax.max` and `lax.min` run as one reduction primitive each; any
    other computation runs as a pairwise tree over the reduced elements (about log2(n)
    calls of `computation` on arrays), so it may also return several results at once, as
    a variadic reduction computing an argmax does, and is differentiable where
    `computation` is.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.reduce(fnp.ones((2, 3)), 0.0, lax.add, (1,))
        Array([3., 3.], dtype=float32)
        >>> def larger(a, b):  # (value, index) pairs: the larger value, the first index
        ...     take_a = (a[0] > b[0]) | ((a[0] == b[0]) & (a[1] < b[1]))
        ...     return fnp.where(take_a, a[0], b[0]), fnp.where(take_a, a[1], b[1])
        >>> x = fnp.array([[1.0, 5.0, 5.0], [7.0, 2.0, 3.0]])
        >>> lax.reduce((x, lax.broadcasted_iota(fnp.int32, x.shape, 1)),
        ...            (-fnp.inf, 0), larger, (1,))[1]
        Array([1, 0], dtype=int32)
    """
    import nanofn.ops as ops
    from nanofn.tree_util import tree_flatten, tree_unflatten
    ops_list, tree = tree_flatten(operands)
    inits, init_tree = tree_flatten(init_values)
    if len(inits) != len(ops_list):
        raise ValueError(f"lax.reduce: {len(ops_list)} operands but {len(inits)} init_values")
    if init_tree != tree and not (isinstance(operands, (tuple, list)) and
                                  isinstance(init_values, (tuple, list))):
        raise ValueError(f"lax.reduce: operands ({tree}) and init_values ({init_tree}) must "
                         "have one tree structure")
    single = tree.num_leaves == 1 and not isinstance(operands, (tuple, list, dict))
    if not single and not isinstance(operands, (tuple, list)):
        # any other pytree: the computation sees that structure, the tree reduce sees leaves
        user_computation = computation

        def computation(a, b):
            return tree_flatten(user_computation(tree_unflatten(tree, a),
                                                 tree_unflatten(tree, b)))[0]
        return tree_unflatten(tree, reduce(tuple(ops_list), tuple(inits), computation,
                                           dimensions))
    shapes = [_shape_of(x) for x in ops_list]
    if any(s != shapes[0] for s in shapes):
        raise ValueError(f"lax.reduce: operands must have one shape, got {shapes}")
    ndim = len(shapes[0])
    dims = tuple(sorted({_normalize_axis("lax.reduce", d, ndim) for d in dimensions}))
    reg = _core.registry
    table = {ops.add: (reg["reduce_sum"], 0), ops.mul: (reg["reduce_prod"], 1),
             ops.max: (reg["reduce_max"], -np.inf), ops.min: (reg["reduce_min"], np.inf)}
    if computation not in table:
        return _tree_reduce(ops_list, inits, computation, dims, shapes[0], single)
    prim, ident = table[computation]
    outs = []
    for x, init in zip(ops_list, inits):
        r = prim.bind(x, axes=dims)
        dtype = get_aval(x).dtype
        if not (np.ndim(init) == 0 and _is_identity(init, ident, dtype)):
            r = computation(r, _base.broadcast_in_dim(
                _base.convert_element_type(init, dtype), _shape_of(r), ()))
        outs.append(r)
    return outs[0] if single else outs


def _normalize_axis(name, d, ndim):
    d = operator.index(d)
    if not -ndim <= d < ndim:
        raise ValueError(f"{name}: dimension {d} is out of range for operands of rank {ndim}")
    return d % ndim


def _tree_reduce(xs, inits, computation, dims, shape, single):
    """`lax.reduce` with any associative, commutative `computation`: the reduced axes are
    moved to the front and flattened, then halves are combined pairwise (a length that is
    odd is padded with the identity `inits`) until one row is left, which is combined
    with the identity once more, as XLA does; an empty reduction gives `inits`."""
    keep = [d for d in range(len(shape)) if d not in dims]
    n = math.prod(shape[d] for d in dims)
    rest = tuple(shape[d] for d in keep)
    dtypes = [get_aval(x).dtype for x in xs]
    xs = [_base.reshape(_base.transpose(x, tuple(dims) + tuple(keep)), (n,) + rest)
          for x in xs]

    def fill(k):  # each init value, broadcast to (k,) + rest
        return [_base.broadcast_in_dim(_base.convert_element_type(i, dt), (k,) + rest, ())
                for i, dt in zip(inits, dtypes)]

    def combine(a, b):
        out = computation(a[0], b[0]) if single else computation(tuple(a), tuple(b))
        out = [out] if single else list(out)
        if len(out) != len(a):
            raise TypeError(f"lax.reduce: computation returned {len(out)} results for "
                            f"{len(a)} operands")
        return out

    while n > 1:
        if n % 2:
            xs = [_shape.concatenate([x, f], 0) for x, f in zip(xs, fill(1))]
            n += 1
        half = n // 2
        xs = combine([_shape.slice_in_dim(x, 0, half, axis=0) for x in xs],
                     [_shape.slice_in_dim(x, half, n, axis=0) for x in xs])
        n = half
    out = fill(1) if n == 0 else combine(fill(1), xs)
    out = [_base.reshape(o, rest) for o in out]
    return out[0] if single else out


def _is_identity(init, ident, dtype):
    if isinstance(init, _core.Tracer):
        return False
    v = np.asarray(_core.to_numpy(init))
    if np.isinf(ident) and np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        ident = info.min if ident < 0 else info.max
    return bool(v == ident)


def optimization_barrier(operand):
    """`operand` unchanged: nanofn does not reorder computations across it."""
    return operand


def with_sharding_constraint(x, shardings):
    """`x`, with the layout `shardings` asks for checked (jax.lax.with_sharding_constraint).

    nanofn holds arrays whole in one process, so the constraint is a check: each leaf of
    `x` must fit its sharding (a `NamedSharding`, or a `PartitionSpec` read against the
    mesh set by `nanofn.set_mesh` or the older `with mesh:`), every split axis dividing
    evenly, as `device_put` checks. `shardings` is a pytree prefix of `x`; a None leaf
    leaves its values unconstrained. Concrete results report the sharding (see
    `nanofn.sharding`); under `jit` the values pass through unchanged.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> mesh = nanofn.make_mesh((1,), ("x",))
        >>> y = lax.with_sharding_constraint(fnp.ones(4), nanofn.NamedSharding(mesh, nanofn.P("x")))
        >>> y.sharding.spec
        P('x',)
    """
    from nanofn.sharding import _constrain
    return _constrain(x, shardings)


def reduce_xor(operand, axes):
    """Exclusive or over `axes` (jax.lax.reduce_xor): parity for booleans, bitwise for
    integers.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.reduce_xor(fnp.array([[True, True], [True, False]]), (1,))
        Array([False,  True], dtype=bool)
    """
    import nanofn.numpy as fnp
    x = fnp.asarray(operand)
    axes = sorted({int(a) % max(x.ndim, 1) for a in axes}, reverse=True)
    if x.dtype == np.bool_:
        count = _base.reduce_sum_p.bind(_base.convert_element_type(x, np.int32),
                                        axes=tuple(axes))
        return (count % 2).astype(np.bool_)
    if not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"reduce_xor: needs booleans or integers, got {x.dtype.name}")
    for a in axes:  # the last axes first, so the others keep their numbers
        x = fnp.bitwise_xor.reduce(x, axis=a)
    return x


def population_count(x):
    """The number of bits set in each element of an integer array, in its dtype
    (jax.lax.population_count).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.population_count(fnp.array([0, 1, 7, -1], dtype=fnp.int32))
        Array([ 0,  1,  3, 32], dtype=int32)
    """
    import nanofn.numpy as fnp
    from nanofn import ops
    x = fnp.asarray(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"population_count: needs integers, got {x.dtype.name}")
    # the bits of two's complement: numpy's bitwise_count counts those of |x|
    u = ops.bitcast_convert_type(x, np.dtype(f"uint{8 * x.dtype.itemsize}"))
    return fnp.bitwise_count(u).astype(x.dtype)


def clz(x):
    """The number of leading zero bits of each element of an integer array (jax.lax.clz).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.clz(fnp.array([0, 1, 255, -1], dtype=fnp.int32))
        Array([32, 31, 24,  0], dtype=int32)
    """
    import nanofn.numpy as fnp
    from nanofn import ops
    x = fnp.asarray(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"clz: needs integers, got {x.dtype.name}")
    bits = 8 * x.dtype.itemsize
    u = ops.bitcast_convert_type(x, np.dtype(f"uint{bits}")) if x.dtype.kind == "i" else x
    shift = 1
    while shift < bits:  # every bit below the highest set bit set too
        u = u | (u >> np.asarray(shift, u.dtype))
        shift *= 2
    return (bits - fnp.bitwise_count(u).astype(np.int32)).astype(x.dtype)


def _reduce_precision_impl(x, *, exponent_bits, mantissa_bits):
    # XLA's ReducePrecision, on the bits: round the mantissa to nearest even, then send
    # exponents past the reduced range to +-inf (overflow) or +-0 (underflow); NaN stays NaN
    x = np.asarray(x)
    finfo = np.finfo(x.dtype)
    src_m, src_e, nbits = finfo.nmant, finfo.nexp, 8 * x.dtype.itemsize
    utype = np.dtype(f"uint{nbits}")
    u = np.ascontiguousarray(x).view(utype)

    def c(v):
        return utype.type(v)
    if mantissa_bits < src_m:
        drop = src_m - mantissa_bits
        last = 1 << drop
        bias = ((u & c(last)) >> c(drop)) + c((last >> 1) - 1)
        u = (u + bias) & c(~(last - 1) & ((1 << nbits) - 1))
    if exponent_bits < src_e:
        exp_mask = ((1 << src_e) - 1) << src_m
        bias = (1 << (src_e - 1)) - 1
        reduced = (1 << (exponent_bits - 1)) - 1
        e = u & c(exp_mask)
        signed_zero = u & c(1 << (nbits - 1))
        u = np.where(e > c((bias + reduced) << src_m), signed_zero | c(exp_mask),
                     np.where(e <= c((bias - reduced) << src_m), signed_zero, u))
    return np.where(np.isnan(x), x, np.asarray(u, utype).view(x.dtype))


def _reduce_precision_abstract_eval(x, *, exponent_bits, mantissa_bits):
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"reduce_precision: needs a float array, got {x.str_short()}")
    if exponent_bits < 1 or mantissa_bits < 0:
        raise ValueError(f"reduce_precision: needs exponent_bits >= 1 and mantissa_bits >= 0, "
                         f"got {exponent_bits} and {mantissa_bits}")
    return _core.ShapedArray(x.shape, x.dtype)


# As in JAX, the rounding counts as linear: tangents and cotangents are rounded alike.
reduce_precision_p = _core.Primitive("reduce_precision")
reduce_precision_p.impl = _reduce_precision_impl
reduce_precision_p.abstract_eval = _reduce_precision_abstract_eval
_base.deflinear(reduce_precision_p, lambda ct, x, **params: reduce_precision_p.bind(ct, **params))
reduce_precision_p.batch = lambda vals, dims, **params: (
    reduce_precision_p.bind(vals[0], **params), dims[0])


def reduce_precision(operand, exponent_bits, mantissa_bits):
    """Round a float array to a format with `exponent_bits` and `mantissa_bits`, keeping its
    dtype (jax.lax.reduce_precision; e.g. 8 and 7 for bfloat16): round to nearest even,
    overflow to infinity, underflow to zero. Derivatives round the tangent (and the
    cotangent) the same way, as JAX's do.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.reduce_precision(fnp.array([1.0 + 2.0 ** -10, 3.0e38]), 8, 7)
        Array([1.e+00, 3.e+38], dtype=float32)
        >>> lax.reduce_precision(fnp.array([1.0 + 2.0 ** -10, 7e4]), 5, 10)  # float16's
        Array([1.0009766,       inf], dtype=float32)
    """
    import nanofn.numpy as fnp
    x = operand if isinstance(operand, _core.Tracer) else fnp.asarray(operand)
    return reduce_precision_p.bind(x, exponent_bits=int(exponent_bits),
                                   mantissa_bits=int(mantissa_bits))


def approx_max_k(operand, k, reduction_dimension=-1, recall_target=0.95,
                 reduction_input_size_override=-1, aggregate_to_topk=True):
    """The `k` largest values along `reduction_dimension` and their indices
    (jax.lax.approx_max_k); nanofn computes them exactly, so any `recall_target` is met.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.approx_max_k(fnp.array([[1.0, 5.0, 3.0]]), 2)
        [Array([[5., 3.]], dtype=float32), Array([[1, 2]], dtype=int32)]
    """
    del recall_target, reduction_input_size_override, aggregate_to_topk  # exact here
    import nanofn.numpy as fnp
    from nanofn import ops
    x = fnp.asarray(operand)
    axis = reduction_dimension % x.ndim
    values, indices = ops.top_k(fnp.moveaxis(x, axis, -1), k)
    return [fnp.moveaxis(values, -1, axis), fnp.moveaxis(indices, -1, axis)]


def approx_min_k(operand, k, reduction_dimension=-1, recall_target=0.95,
                 reduction_input_size_override=-1, aggregate_to_topk=True):
    """The `k` smallest values along `reduction_dimension` and their indices
    (jax.lax.approx_min_k), computed exactly.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.approx_min_k(fnp.array([[1.0, 5.0, 3.0]]), 2)
        [Array([[1., 3.]], dtype=float32), Array([[0, 2]], dtype=int32)]
    """
    values, indices = approx_max_k(-_as_array(operand), k, reduction_dimension)
    return [-values, indices]


def _as_array(x):
    import nanofn.numpy as fnp
    return fnp.asarray(x)


def index_take(src, idxs, axes):
    """`src` indexed along `axes` by the integer arrays `idxs` (one per axis, of one
    shape, taken modulo the axis sizes), the other axes kept (jax.lax.index_take).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.index_take(fnp.arange(12).reshape(3, 4), (fnp.array([2, 0]),), (0,))
        Array([[ 8,  9, 10, 11],
               [ 0,  1,  2,  3]], dtype=int32)
    """
    import nanofn.numpy as fnp
    src = fnp.asarray(src)
    axes = tuple(int(a) for a in axes)
    idx = fnp.stack([fnp.asarray(i) for i in idxs], axis=1)
    idx = idx % np.asarray([src.shape[a] for a in axes], idx.dtype)
    sizes = tuple(1 if d in axes else n for d, n in enumerate(src.shape))
    dn = _shape.GatherDimensionNumbers(offset_dims=tuple(range(1, src.ndim - len(axes) + 1)),
                                       collapsed_slice_dims=axes, start_index_map=axes)
    return _shape.gather(src, idx, dn, sizes)


def ragged_dot(lhs, rhs, group_sizes, precision=None, preferred_element_type=None,
               group_offset=None):
    """Grouped matrix product (jax.lax.ragged_dot): the rows of `lhs` `(m, k)` come in
    consecutive groups of `group_sizes` `(g,)` rows, and group `i` is multiplied by
    `rhs[i]` `(k, n)`; rows past the groups give zeros. The result is `(m, n)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> rhs = fnp.stack([fnp.eye(2), 2 * fnp.eye(2)])
        >>> lax.ragged_dot(fnp.ones((3, 2)), rhs, fnp.array([1, 2]))
        Array([[1., 1.],
               [2., 2.],
               [2., 2.]], dtype=float32)
    """
    del precision  # unused: products are computed at the operands' precision
    import nanofn.numpy as fnp
    if group_offset is not None:
        raise NotImplementedError("ragged_dot: group_offset is not supported")
    lhs, rhs = fnp.asarray(lhs), fnp.asarray(rhs)
    if lhs.ndim != 2 or rhs.ndim != 3 or lhs.shape[1] != rhs.shape[1]:
        raise ValueError(f"ragged_dot: needs lhs (m, k) and rhs (g, k, n), got "
                         f"{lhs.shape} and {rhs.shape}")
    sizes = fnp.asarray(group_sizes)
    if sizes.shape != (rhs.shape[0],):
        raise ValueError(f"ragged_dot: group_sizes must have shape ({rhs.shape[0]},), one "
                         f"per group of rhs, got {sizes.shape}")
    ends = fnp.cumsum(sizes)
    rows = fnp.arange(lhs.shape[0])
    member = (rows[None, :] >= (ends - sizes)[:, None]) & (rows[None, :] < ends[:, None])
    out = fnp.einsum("gm,mk,gkn->mn", member.astype(lhs.dtype), lhs, rhs)
    return out if preferred_element_type is None else out.astype(preferred_element_type)


def random_gamma_grad(a, x):
    """The derivative of a gamma sample `x` with respect to its shape `a`
    (jax.lax.random_gamma_grad; nanofn.random.random_gamma_grad).

    Example:
        >>> from nanofn import lax
        >>> float(lax.random_gamma_grad(2.0, 1.5)).__round__(4)
        0.9366
    """
    from nanofn.random import random_gamma_grad as grad
    return grad(a, x)


def platform_dependent(*args, default=None, **per_platform):
    """Call the function given for the platform nanofn runs on ("cpu"), else `default`
    (jax.lax.platform_dependent).

    Example:
        >>> from nanofn import lax
        >>> lax.platform_dependent(2.0, cpu=lambda x: x + 1, default=lambda x: x)
        3.0
    """
    fn = per_platform.get("cpu", default)
    if fn is None:
        raise ValueError(f"platform_dependent: no function for 'cpu' and no default (given: "
                         f"{sorted(per_platform)})")
    return fn(*args)


# ------------------------------------------------------------------ shape helpers


def conv_general_permutations(dimension_numbers):
    """`(lhs_perm, rhs_perm, out_perm)`: the axis orders that bring each operand of a
    convolution to NCHW / OIHW / NCHW (jax.lax.conv_general_permutations), for string
    specs such as `("NHWC", "HWIO", "NHWC")`.

    Example:
        >>> from nanofn import lax
        >>> lax.conv_general_permutations(("NHWC", "HWIO", "NHWC"))
        ((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))
    """
    lhs, rhs, out = dimension_numbers
    for spec, pair in zip((lhs, rhs, out), ("NC", "OI", "NC")):
        if any(spec.count(ch) != 1 for ch in pair) or len(set(spec)) != len(spec):
            raise TypeError(f"conv_general_permutations: {spec!r} must name {pair[0]} and "
                            f"{pair[1]} once and each axis once")
    if not set(lhs) - set("NC") == set(rhs) - set("OI") == set(out) - set("NC"):
        raise TypeError(f"conv_general_permutations: the spatial axes of {dimension_numbers} "
                        "do not match")

    def perm(spec, pair):
        spatial = [i for i, ch in enumerate(spec) if ch not in pair]
        if spec is not rhs:
            spatial.sort(key=lambda i: rhs.index(spec[i]))
        return (spec.index(pair[0]), spec.index(pair[1])) + tuple(spatial)
    return perm(lhs, "NC"), perm(rhs, "OI"), perm(out, "NC")


def conv_shape_tuple(lhs_shape, rhs_shape, strides, pads, batch_group_count=1):
    """The NCHW output shape of a convolution of NCHW `lhs_shape` by OIHW `rhs_shape`
    (jax.lax.conv_shape_tuple); `pads` is "SAME", "VALID" or (low, high) pairs.

    Example:
        >>> from nanofn import lax
        >>> lax.conv_shape_tuple((8, 3, 28, 28), (16, 3, 3, 3), (1, 1), "SAME")
        (8, 16, 28, 28)
    """
    from nanofn.ops._conv import padtype_to_pads
    if isinstance(pads, str):
        pads = padtype_to_pads(lhs_shape[2:], rhs_shape[2:], strides, pads)
    if len(pads) != len(lhs_shape) - 2:
        raise TypeError(f"conv_shape_tuple: pads {pads} must have one pair per spatial axis "
                        f"of {lhs_shape}")
    spatial = tuple(max(0, (n + lo + hi - k) // s + 1) for n, k, s, (lo, hi)
                    in zip(lhs_shape[2:], rhs_shape[2:], strides, pads))
    return (lhs_shape[0] // batch_group_count, rhs_shape[0]) + spatial


def conv_general_shape_tuple(lhs_shape, rhs_shape, window_strides, padding,
                             dimension_numbers):
    """The output shape of `conv_general_dilated` without dilation, in the output's own
    layout (jax.lax.conv_general_shape_tuple).

    Example:
        >>> from nanofn import lax
        >>> lax.conv_general_shape_tuple((8, 28, 28, 3), (3, 3, 3, 16), (2, 2), "SAME",
        ...                              ("NHWC", "HWIO", "NHWC"))
        (8, 14, 14, 16)
    """
    from nanofn.ops._conv import conv_dimension_numbers
    dn = conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    lhs = tuple(lhs_shape[i] for i in dn.lhs_spec)
    rhs = tuple(rhs_shape[i] for i in dn.rhs_spec)
    out = conv_shape_tuple(lhs, rhs, window_strides, padding)
    shape = [0] * len(out)
    for d, n in zip(dn.out_spec, out):
        shape[d] = n
    return tuple(shape)


def conv_transpose_shape_tuple(lhs_shape, rhs_shape, window_strides, padding,
                               dimension_numbers):
    """The output shape of `conv_transpose` (jax.lax.conv_transpose_shape_tuple), in the
    output's layout: each spatial size `(n - 1) * stride - k + 2 + low + high`, with the
    (low, high) pads of the dilated input given, or those "SAME" (`n * stride` in all) or
    "VALID" (`n * stride + max(k - stride, 0)`) stand for.

    Example:
        >>> from nanofn import lax
        >>> lax.conv_transpose_shape_tuple((8, 3, 14, 14), (16, 3, 3, 3), (2, 2), "SAME",
        ...                                None)
        (8, 16, 28, 28)
    """
    from nanofn.ops._conv import conv_dimension_numbers
    dn = conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    lhs = tuple(lhs_shape[i] for i in dn.lhs_spec)
    rhs = tuple(rhs_shape[i] for i in dn.rhs_spec)
    spatial = []
    for k, (n, w, s) in enumerate(zip(lhs[2:], rhs[2:], window_strides)):
        if isinstance(padding, str):
            mode = padding.upper()
            if mode not in ("SAME", "VALID"):
                raise ValueError(f"conv_transpose_shape_tuple: padding must be 'SAME', "
                                 f"'VALID' or (low, high) pairs, got {padding!r}")
            pads = w + s - 2 + (max(w - s, 0) if mode == "VALID" else 0)
        else:
            pads = sum(padding[k])
        spatial.append(max((n - 1) * s - w + 2 + pads, 0))
    out = (lhs[0], rhs[0]) + tuple(spatial)
    shape = [0] * len(out)
    for d, n in zip(dn.out_spec, out):
        shape[d] = n
    return tuple(shape)


def reduce_window_shape_tuple(operand_shape, window_dimensions, window_strides, padding,
                              base_dilation=None, window_dilation=None):
    """The output shape of `reduce_window` (jax.lax.reduce_window_shape_tuple); `padding`
    is (low, high) pairs.

    Example:
        >>> from nanofn import lax
        >>> lax.reduce_window_shape_tuple((8, 28, 28, 3), (1, 2, 2, 1), (1, 2, 2, 1),
        ...                               ((0, 0),) * 4)
        (8, 14, 14, 3)
    """
    nd = len(operand_shape)
    base_dilation = base_dilation or (1,) * nd
    window_dilation = window_dilation or (1,) * nd
    out = []
    for n, w, s, (lo, hi), bd, wd in zip(operand_shape, window_dimensions, window_strides,
                                         padding, base_dilation, window_dilation):
        size = (n - 1) * bd + 1 + lo + hi
        extent = (w - 1) * wd + 1
        out.append(max(0, (size - extent) // s + 1))
    return tuple(out)


# ------------------------------------------------------------------ small utilities


def empty(shape, dtype, *, out_sharding=None):
    """An array of `shape` and `dtype` whose contents the caller will overwrite
    (`jax.lax.empty`); nanofn fills it with zeros, so it is never uninitialised memory.

    Example:
        >>> import numpy as np
        >>> from nanofn import lax
        >>> lax.empty((2,), np.float32)
        Array([0., 0.], dtype=float32)
    """
    del out_sharding  # one device
    return _base.full(tuple(shape), 0, np.dtype(dtype))


def broadcast_like(arr, like_arr):
    """`arr` broadcast to the shape of `like_arr` (`jax.lax.broadcast_like`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.broadcast_like(fnp.arange(3.0), fnp.zeros((2, 3))).shape
        (2, 3)
    """
    return _base.broadcast_to(arr, _shape_of(like_arr))


def composite(decomposition, name, version=0):
    """Mark `decomposition` as a named composite operation (`jax.lax.composite`).

    XLA can swap a composite for a fused kernel of the same name; nanofn has no such
    kernels, so the result runs `decomposition` itself, and transforms (including
    derivatives, which JAX refuses here) go through its body.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> double = lax.composite(lambda x: x * 2, name="my.double")
        >>> double(fnp.ones(2))
        Array([2., 2.], dtype=float32)
    """
    import functools
    if not isinstance(name, str) or not name:
        raise TypeError(f"composite: name must be a non-empty string, got {name!r}")

    @functools.wraps(decomposition)
    def run(*args, **kwargs):
        return decomposition(*args, **kwargs)
    run.composite_name, run.composite_version = name, int(version)
    return run


def mulhi(x, y, /):
    """The high half of the double-width product of two integer arrays (`jax.lax.mulhi`):
    for 32-bit `x` and `y`, `(x * y) >> 32` computed exactly in 64 bits.

    Example:
        >>> import numpy as np
        >>> from nanofn import lax
        >>> lax.mulhi(np.int32(-5), np.int32(7))
        Array(-1, dtype=int32)
    """
    import nanofn.numpy as fnp
    x, y = fnp.asarray(x), fnp.asarray(y)
    if x.dtype != y.dtype or not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"mulhi: x and y must be integers of one dtype, got {x.dtype.name} "
                        f"and {y.dtype.name}")
    dtype, bits = x.dtype, 8 * x.dtype.itemsize
    signed = np.issubdtype(dtype, np.signedinteger)
    if bits < 64:
        wide = np.int64 if signed else np.uint64
        prod = x.astype(wide) * y.astype(wide)
        return (prod >> bits).astype(dtype)
    # 64 bits: the unsigned product from 32-bit halves, then the two's-complement fix-up
    u64, mask = np.uint64, np.uint64(0xFFFFFFFF)
    a, b = x.astype(u64), y.astype(u64)
    a_lo, a_hi, b_lo, b_hi = a & mask, a >> u64(32), b & mask, b >> u64(32)
    lo_lo, hi_lo, lo_hi = a_lo * b_lo, a_hi * b_lo, a_lo * b_hi
    cross = (lo_lo >> u64(32)) + (hi_lo & mask) + (lo_hi & mask)
    hi = a_hi * b_hi + (hi_lo >> u64(32)) + (lo_hi >> u64(32)) + (cross >> u64(32))
    if signed:
        hi = hi - fnp.where(x < 0, b, u64(0)) - fnp.where(y < 0, a, u64(0))
    return hi.astype(dtype)


# ------------------------------------------------------------------ special functions


def _special(jax_name, scipy_name, doc):
    def fn(*args):
        from nanofn.scipy import special
        return getattr(special, scipy_name)(*args)
    fn.__name__ = fn.__qualname__ = jax_name
    fn.__doc__ = f"{doc} (jax.lax.{jax_name}; computed by nanofn.scipy.special.{scipy_name})."
    return fn


lgamma = _special("lgamma", "gammaln", "log |Gamma(x)|")
digamma = _special("digamma", "digamma", "The digamma function")
polygamma = _special("polygamma", "polygamma", "The polygamma function of order `m`")
igamma = _special("igamma", "gammainc", "The regularized lower incomplete gamma P(a, x)")
igammac = _special("igammac", "gammaincc", "The regularized upper incomplete gamma Q(a, x)")


def igamma_grad_a(a, x):
    """d/da of the regularized lower incomplete gamma P(a, x) (`jax.lax.igamma_grad_a`).

    Example:
        >>> from nanofn import lax
        >>> round(float(lax.igamma_grad_a(2.0, 1.5)), 6)
        -0.313489
    """
    import nanofn.numpy as fnp
    from nanofn.ops import _special_fns
    a, x = fnp.asarray(a), fnp.asarray(x)
    dtype = fnp.result_type(a, x)
    a, x = fnp.broadcast_arrays(a.astype(dtype), x.astype(dtype))
    return _special_fns.igamma_grad_a_p.bind(a, x)
zeta = _special("zeta", "zeta", "The Hurwitz zeta function")
betainc = _special("betainc", "betainc", "The regularized incomplete beta function")
erfc = _special("erfc", "erfc", "The complementary error function 1 - erf(x)")
bessel_i0e = _special("bessel_i0e", "i0e", "The exponentially scaled Bessel function I0")
bessel_i1e = _special("bessel_i1e", "i1e", "The exponentially scaled Bessel function I1")


# ------------------------------------------------------------------ primitives by name

# nanofn's primitive names that differ from the names jax.lax gives the same primitive
_JAX_PRIMITIVE_NAME = {"and": "and_p", "or": "or_p", "not": "not_p", "xor": "xor_p",
                       "while": "while_p", "cond": "cond_p", "scan": "scan_p"}


def _primitives():
    """`{'add_p': add_p, ...}` for every primitive registered by nanofn.ops."""
    out = {}
    for name, prim in _core.registry.items():
        if type(prim).__module__.startswith("nanofn") and name.isidentifier():
            out[_JAX_PRIMITIVE_NAME.get(name, f"{name}_p")] = prim
    return out


# ----------------------------------------------------------- types programs name (jax.lax)


class AccuracyMode(enum.Enum):
    """The accuracy a transcendental function (`lax.exp`, `lax.tanh`, ...) is asked for
    with `accuracy=` (jax.lax.AccuracyMode). nanofn computes each with numpy's (or its
    kernels') one implementation, so the argument is accepted and changes nothing.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.exp(fnp.zeros(2), accuracy=lax.AccuracyMode.HIGHEST)
        Array([1., 1.], dtype=float32)
    """
    HIGHEST = enum.auto()
    DEFAULT = enum.auto()


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """A requested error bound for a transcendental function's `accuracy=`
    (jax.lax.Tolerance): accepted, as every `accuracy=` here (see `AccuracyMode`).

    Example:
        >>> from nanofn import lax
        >>> lax.Tolerance(atol=1e-6).rtol
        0.0
    """
    atol: float = 0.0
    rtol: float = 0.0
    ulps: int = 0


class RandomAlgorithm(enum.Enum):
    """XLA's bit-generator algorithms (jax.lax.RandomAlgorithm), for code that names
    them. nanofn's random bits come from `nanofn.random` (threefry, JAX's default
    stream); `lax.rng_bit_generator`, which takes these, is not provided.

    Example:
        >>> from nanofn import lax
        >>> lax.RandomAlgorithm.RNG_THREE_FRY.name
        'RNG_THREE_FRY'
    """
    RNG_DEFAULT = enum.auto()
    RNG_THREE_FRY = enum.auto()
    RNG_PHILOX = enum.auto()


# Type aliases that annotations in JAX programs name (`precision: lax.PrecisionLike`).
PrecisionLike = Union[None, str, _base.Precision, tuple, _base.DotAlgorithm,
                      _base.DotAlgorithmPreset]
DotDimensionNumbers = tuple[tuple[Sequence[int], Sequence[int]],
                            tuple[Sequence[int], Sequence[int]]]
ConvGeneralDilatedDimensionNumbers = Union[None, _conv.ConvDimensionNumbers,
                                           tuple[str, str, str]]


def dtype(x):
    """The dtype `x` has as an operand of a lax function: a Python number takes the default
    dtype of its kind (float32, int32, complex64; 64-bit under `jax_enable_x64`), as in
    JAX; arrays and numpy scalars keep theirs (64-bit ones stay 64-bit in nanofn).

    Example:
        >>> import numpy as np
        >>> from nanofn import lax
        >>> lax.dtype(1.0), lax.dtype(True), lax.dtype(np.ones(2, np.int16))
        (dtype('float32'), dtype('bool'), dtype('int16'))
    """
    if type(x) in (bool, int, float, complex):
        return np.dtype(_core.scalar_value(x).dtype)
    if hasattr(x, "dtype"):
        return np.dtype(x.dtype)
    from nanofn.numpy import asarray  # lists and tuples: the dtype asarray gives them
    return np.dtype(asarray(x).dtype)


_COMPOSITIONS = ["dtype", "clamp", "square", "reciprocal", "dot", "batch_matmul", "broadcast",
                 "broadcast_shapes", "stack", "unstack",
                 "broadcast_to_rank", "full_like", "collapse", "split", "tile", "reduce_and",
                 "reduce_or", "reduce", "optimization_barrier", "with_sharding_constraint",
                 "lgamma", "digamma", "polygamma", "igamma", "igammac", "zeta", "betainc",
                 "erfc", "bessel_i0e", "bessel_i1e", "reduce_xor", "population_count", "clz",
                 "reduce_precision", "approx_max_k", "approx_min_k", "index_take",
                 "ragged_dot", "platform_dependent", "random_gamma_grad",
                 "conv_general_permutations",
                 "conv_shape_tuple", "conv_general_shape_tuple", "conv_transpose_shape_tuple",
                 "reduce_window_shape_tuple", "empty", "broadcast_like", "composite", "mulhi",
                 "igamma_grad_a", "AccuracyMode", "Tolerance", "RandomAlgorithm",
                 "PrecisionLike", "DotDimensionNumbers", "ConvGeneralDilatedDimensionNumbers"]


def exports(namespace: dict) -> dict:
    """The names to add to `namespace` (nanofn.ops'): those it does not define already."""
    names = {n: globals()[n] for n in _COMPOSITIONS}
    names.update(_primitives())
    return {n: v for n, v in names.items() if n not in namespace}
