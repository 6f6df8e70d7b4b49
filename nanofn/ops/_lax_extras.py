"""More of jax.lax's public names, so `from nanofn.lax import X` works where JAX's does.

Three kinds, none of them new primitives:

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

import numpy as np

from nanofn import _core
from nanofn._core import get_aval
from nanofn.ops import _base, _shape

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


def broadcast(operand, sizes):
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


def full_like(x, fill_value, dtype=None, shape=None):
    """An array like `x` (its shape and dtype unless given) filled with `fill_value`.

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


def stack(arrays, axis=0):
    """Arrays of one shape and dtype joined along a new axis (jax.lax's `stack`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.stack([fnp.ones(2), fnp.zeros(2)], axis=1).shape
        (2, 2)
    """
    arrays = list(arrays)
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


def _bool_reduce(name, reducer):
    def fn(operand, axes):
        dtype = get_aval(operand).dtype
        if dtype != np.bool_:
            raise TypeError(f"{name}: nanofn supports boolean operands only, got {dtype.name}")
        as_int = _base.convert_element_type(operand, np.int32)
        return _base.convert_element_type(reducer.bind(as_int, axes=tuple(axes)), np.bool_)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"Logical {name[7:]} of a boolean array over `axes` "
                  f"(jax.lax.{name}, for booleans).")
    return fn


reduce_and = _bool_reduce("reduce_and", _base.reduce_min_p)
reduce_or = _bool_reduce("reduce_or", _base.reduce_max_p)


def reduce(operands, init_values, computation, dimensions):
    """Reduce over `dimensions` with a monoid `computation` (jax.lax.reduce) for the
    monoids nanofn has: `lax.add`, `lax.mul`, `lax.max`, `lax.min` with their identity as
    the initial value (0, 1, -inf, +inf). Other computations raise NotImplementedError.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.reduce(fnp.ones((2, 3)), 0.0, lax.add, (1,))
        Array([3., 3.], dtype=float32)
    """
    import nanofn.ops as ops
    single = not isinstance(operands, (tuple, list))
    ops_list = [operands] if single else list(operands)
    inits = [init_values] if single else list(init_values)
    reg = _core.registry
    table = {ops.add: (reg["reduce_sum"], 0), ops.mul: (reg["reduce_prod"], 1),
             ops.max: (reg["reduce_max"], -np.inf), ops.min: (reg["reduce_min"], np.inf)}
    if computation not in table:
        raise NotImplementedError(
            "lax.reduce: nanofn reduces with lax.add, lax.mul, lax.max or lax.min; for "
            f"another computation ({getattr(computation, '__name__', computation)!r}) use "
            "lax.scan or an explicit loop")
    prim, ident = table[computation]
    outs = []
    for x, init in zip(ops_list, inits):
        r = prim.bind(x, axes=tuple(dimensions))
        dtype = get_aval(x).dtype
        if not (np.ndim(init) == 0 and _is_identity(init, ident, dtype)):
            r = computation(r, _base.broadcast_in_dim(
                _base.convert_element_type(init, dtype), _shape_of(r), ()))
        outs.append(r)
    return outs[0] if single else outs


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
    """`x` unchanged: nanofn runs on one device (jax.lax.with_sharding_constraint)."""
    del shardings  # unused
    return x


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


_COMPOSITIONS = ["clamp", "square", "reciprocal", "dot", "batch_matmul", "broadcast",
                 "broadcast_shapes", "stack", "unstack",
                 "broadcast_to_rank", "full_like", "collapse", "split", "tile", "reduce_and",
                 "reduce_or", "reduce", "optimization_barrier", "with_sharding_constraint",
                 "lgamma", "digamma", "polygamma", "igamma", "igammac", "zeta", "betainc",
                 "erfc", "bessel_i0e", "bessel_i1e"]


def exports(namespace: dict) -> dict:
    """The names to add to `namespace` (nanofn.ops'): those it does not define already."""
    names = {n: globals()[n] for n in _COMPOSITIONS}
    names.update(_primitives())
    return {n: v for n, v in names.items() if n not in namespace}
