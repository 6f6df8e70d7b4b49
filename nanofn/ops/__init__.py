"""nanofn.ops (also importable as nanofn.lax): the primitives, with jax.lax's names, and
jax.ops's segment reductions (`segment_sum`, `segment_prod`, `segment_max`, `segment_min`).

Every function here binds one primitive (or a few, for convenience wrappers). The
primitives and all their rules live in the private modules of this package, one block
per primitive.

Example:
    >>> import nanofn
    >>> nanofn.lax.add(nanofn.numpy.float32(1), nanofn.numpy.float32(2))
    Array(3., dtype=float32)
"""

import numpy as _np

from nanofn import _core
from nanofn._core import Tracer
from nanofn.ops import _base
from nanofn.ops._shape import *  # noqa: F401,F403  concatenate, pad, slicing, gather, scatter
from nanofn.ops._reduce import *  # noqa: F401,F403  reduce_prod, cumulative ops, sort
from nanofn.ops._conv import *  # noqa: F401,F403  conv_general_dilated, reduce_window
from nanofn.ops._control import *  # noqa: F401,F403  cond, switch, while_loop, fori_loop, scan
from nanofn.ops._solvers import *  # noqa: F401,F403  custom_root, custom_linear_solve
from nanofn.ops._fft import *  # noqa: F401,F403  fft, FftType
from nanofn.ops import _nn  # noqa: F401  softmax, cross-entropy and layer-norm kernel primitives
from nanofn.ops import _attention  # noqa: F401  the fused attention primitive
from nanofn.ops._complex import real as real, imag as imag, conj as conj, complex as complex
from nanofn.ops._parallel import *  # noqa: F401,F403  psum, all_gather, ppermute, axis_index, ...
from nanofn.ops._segment import *  # noqa: F401,F403  segment_sum, ... (jax.ops)
from nanofn.ops._base import (
    broadcast_in_dim as broadcast_in_dim, broadcast_to as broadcast_to,
    broadcasted_iota as broadcasted_iota, convert_element_type as convert_element_type,
    dot_general as dot_general, expand_dims as expand_dims, full as full, iota as iota,
    Precision as Precision, DotAlgorithm as DotAlgorithm,
    DotAlgorithmPreset as DotAlgorithmPreset,
    reduce_sum as reduce_sum, reshape as reshape, squeeze as squeeze, transpose as transpose,
)


def _check_same_dtype(prim, args, params):
    # eager dispatch skips shape rules; lax's contract (one dtype) is checked here
    dtypes = {getattr(a, "dtype", None) for a in args}
    if len(dtypes) > 1:
        prim.abstract_eval(*[_core.get_aval(a) for a in args], **params)


_SCALAR_KINDS = {bool: "b", int: "iu", float: "f", complex: "c"}


def _scalar(x, other=None):
    """A Python scalar operand as an array: of `other`'s dtype when that is of the scalar's
    kind (a weakly typed scalar, as in JAX: `lax.mul(x, 2.0)` keeps `x`'s float dtype),
    else of the default dtype (float32, int32, ...), as JAX's lax does."""
    kinds = _SCALAR_KINDS.get(type(x))
    if kinds is None:
        return x
    dtype = getattr(other, "dtype", None)
    if dtype is not None and type(other) not in _SCALAR_KINDS and dtype.kind in kinds:
        return _np.asarray(x, dtype)
    return _core.scalar_value(x)


def _unary_wrapper(prim, name, accuracy):
    if accuracy:
        def fn(x, *, accuracy=None):
            del accuracy  # accepted for JAX compatibility: numpy has one accuracy
            return prim.bind(_scalar(x))
    else:
        def fn(x):
            return prim.bind(_scalar(x))
    return fn


def _binary_wrapper(prim, name, arg_names):
    if arg_names == ("x1", "x2"):
        def fn(x1, x2):
            x1, x2 = _scalar(x1, x2), _scalar(x2, x1)
            _check_same_dtype(prim, (x1, x2), {})
            return prim.bind(x1, x2)
    else:
        def fn(x, y):
            x, y = _scalar(x, y), _scalar(y, x)
            _check_same_dtype(prim, (x, y), {})
            return prim.bind(x, y)
    return fn


# public name -> (primitive name, arity); jax.lax's argument names: x (unary), x and y
# (binary; nextafter: x1 and x2). The transcendental ones take JAX's `accuracy=` too.
_ELEMENTWISE = {
    "neg": ("neg", 1), "sign": ("sign", 1), "floor": ("floor", 1), "ceil": ("ceil", 1),
    "abs": ("abs", 1), "exp": ("exp", 1), "exp2": ("exp2", 1), "log": ("log", 1),
    "log1p": ("log1p", 1), "expm1": ("expm1", 1), "sin": ("sin", 1), "cos": ("cos", 1),
    "tan": ("tan", 1), "asin": ("asin", 1), "acos": ("acos", 1), "atan": ("atan", 1),
    "sinh": ("sinh", 1), "cosh": ("cosh", 1), "tanh": ("tanh", 1), "asinh": ("asinh", 1),
    "acosh": ("acosh", 1), "atanh": ("atanh", 1), "logistic": ("logistic", 1),
    "sqrt": ("sqrt", 1), "rsqrt": ("rsqrt", 1), "cbrt": ("cbrt", 1), "erf": ("erf", 1),
    "erf_inv": ("erf_inv", 1), "is_finite": ("is_finite", 1),
    "add": ("add", 2), "sub": ("sub", 2), "mul": ("mul", 2), "div": ("div", 2),
    "rem": ("rem", 2), "pow": ("pow", 2), "max": ("max", 2), "min": ("min", 2),
    "atan2": ("atan2", 2), "nextafter": ("nextafter", 2),
    "eq": ("eq", 2), "ne": ("ne", 2), "lt": ("lt", 2), "le": ("le", 2), "gt": ("gt", 2),
    "ge": ("ge", 2), "bitwise_and": ("and", 2), "bitwise_or": ("or", 2),
    "bitwise_xor": ("xor", 2), "bitwise_not": ("not", 1), "shift_left": ("shift_left", 2),
    "shift_right_logical": ("shift_right_logical", 2),
    "shift_right_arithmetic": ("shift_right_arithmetic", 2),
}
_WITH_ACCURACY = {"exp", "exp2", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh",
                  "logistic", "sqrt", "rsqrt", "cbrt"}


def _def_elementwise():
    g = globals()
    for public, (prim_name, arity) in _ELEMENTWISE.items():
        prim = getattr(_base, f"{prim_name}_p")
        if arity == 1:
            fn = _unary_wrapper(prim, public, public in _WITH_ACCURACY)
        else:
            fn = _binary_wrapper(prim, public, ("x1", "x2") if public == "nextafter" else
                                 ("x", "y"))
        fn.__name__ = fn.__qualname__ = public
        fn.__doc__ = (f"The `{prim_name}` primitive: elementwise, operands of one dtype, "
                      "numpy broadcasting.")
        g[public] = fn


_def_elementwise()
_pow_one_dtype = pow  # noqa: F821 - made by _def_elementwise
_shift_right_arithmetic_one_kind = shift_right_arithmetic  # made by _def_elementwise too


def shift_right_arithmetic(x, y):
    """`x >> y` filling with copies of the top bit, as XLA does for every integer dtype:
    unsigned operands are shifted as the signed integers of the same bits (uint8 255 >> 1
    is 255; `nanofn.numpy.right_shift` is the logical shift for them, as numpy's).

    Example:
        >>> import numpy as np, nanofn
        >>> nanofn.lax.shift_right_arithmetic(np.uint8(200), np.uint8(2))
        Array(242, dtype=uint8)
    """
    x, y = _scalar(x, y), _scalar(y, x)
    dt = _np.dtype(_base._dtype(x))
    if dt.kind != "u" or _np.dtype(_base._dtype(y)) != dt:
        return _shift_right_arithmetic_one_kind(x, y)
    signed = _np.dtype(dt.str.replace("u", "i"))
    out = _shift_right_arithmetic_one_kind(bitcast_convert_type(x, signed),
                                           bitcast_convert_type(y, signed))
    return bitcast_convert_type(out, dt)


def pow(x, y):  # noqa: A001 - jax.lax's name
    """`x ** y` elementwise (the `pow` primitive, numpy broadcasting). An integer exponent
    (an array or a Python int) with a floating or complex base is converted to the base's
    dtype, as JAX allows; otherwise both operands have one dtype.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.pow(fnp.array([2.0, 3.0]), fnp.array([3, 2]))
        Array([8., 9.], dtype=float32)
    """
    import numpy as np
    xd = getattr(x, "dtype", None)
    if xd is not None and xd.kind in "fc":
        if type(y) is int:
            y = np.asarray(y, xd)
        elif getattr(y, "dtype", np.dtype("f")).kind in "iu":
            y = _base.convert_element_type_p.bind(y, new_dtype=xd)
    return _pow_one_dtype(x, y)


def integer_pow(x, y):
    """`x ** y` for a Python int `y`, by repeated multiplication.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.integer_pow(fnp.array([2.0, 3.0]), 3)
        Array([ 8., 27.], dtype=float32)
    """
    if isinstance(y, (Tracer, _core.Array)) or int(y) != y:
        raise TypeError(f"integer_pow: the exponent y must be a Python int, got {y!r}")
    return _base.integer_pow_p.bind(x, y=int(y))


def square(x):
    """`x * x`, elementwise.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.square(fnp.array([2.0, -3.0]))
        Array([4., 9.], dtype=float32)
    """
    return _base.integer_pow_p.bind(x, y=2)


def reciprocal(x):
    """`1 / x`, elementwise.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.reciprocal(fnp.array([2.0, 4.0]))
        Array([0.5 , 0.25], dtype=float32)
    """
    return _base.integer_pow_p.bind(x, y=-1)


def clamp(min, x, max):
    """`x` limited to `[min, max]` elementwise (jax.lax.clamp's argument order; `min` and
    `max` are scalars or arrays of `x`'s shape and dtype).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.clamp(0.0, fnp.array([-1.0, 0.5, 2.0]), 1.0)
        Array([0. , 0.5, 1. ], dtype=float32)
    """
    import numpy as np
    dt = getattr(x, "dtype", None)
    if dt is not None:  # Python scalar bounds take x's dtype (they are weakly typed in JAX)
        min = np.asarray(min, dt) if isinstance(min, (int, float)) else min
        max = np.asarray(max, dt) if isinstance(max, (int, float)) else max
    _check_same_dtype(_base.max_p, (min, x), {})
    _check_same_dtype(_base.min_p, (x, max), {})
    return _base.min_p.bind(_base.max_p.bind(x, min), max)


class RoundingMethod(int, __import__("enum").Enum):
    """How `round` breaks ties: away from zero (0) or to the nearest even integer (1)."""
    AWAY_FROM_ZERO = 0
    TO_NEAREST_EVEN = 1


def round(x, rounding_method=RoundingMethod.AWAY_FROM_ZERO):
    """Round to the nearest integer: halves away from zero (0) or to even (1).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.round(fnp.array([0.5, 2.5]), nanofn.lax.RoundingMethod.TO_NEAREST_EVEN)
        Array([0., 2.], dtype=float32)
    """
    return _base.round_p.bind(x, rounding_method=int(rounding_method))


def select_n(which, *cases):
    """`cases[which]` elementwise: `which` is bool (two cases) or an int array. With one
    case, that case (as in JAX: every index must be 0).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.select_n(fnp.array([0, 2, 1]), fnp.zeros(3), fnp.ones(3), fnp.full(3, 2.0))
        Array([0., 2., 1.], dtype=float32)
    """
    if len(cases) == 1:
        return cases[0]
    return _base.select_n_p.bind(which, *cases)


def select(pred, on_true, on_false):
    """`on_true` where `pred`, else `on_false` (lax.select's argument order).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.select(fnp.array([True, False]), fnp.ones(2), fnp.zeros(2))
        Array([1., 0.], dtype=float32)
    """
    return _base.select_n_p.bind(pred, on_false, on_true)


def dot(lhs, rhs, *, dimension_numbers=None, precision=None, preferred_element_type=None,
        out_sharding=None):
    """Vector/matrix products of 1-d and 2-d operands (jax.lax.dot), or `dot_general`
    when `dimension_numbers` is given.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.dot(fnp.ones((2, 3)), fnp.ones(3), precision=nanofn.lax.Precision.HIGHEST)
        Array([3., 3.], dtype=float32)
    """
    if dimension_numbers is None:
        nl, nr = len(lhs.shape), len(rhs.shape)
        if not (1 <= nl <= 2 and 1 <= nr <= 2):
            raise TypeError(f"dot: operands must be 1-d or 2-d, got shapes {tuple(lhs.shape)} "
                            f"and {tuple(rhs.shape)}; use dot_general")
        if lhs.shape[-1] != rhs.shape[0]:
            raise TypeError(f"dot: incompatible shapes {tuple(lhs.shape)} and "
                            f"{tuple(rhs.shape)}")
        dimension_numbers = (((nl - 1,), (0,)), ((), ()))
    return dot_general(lhs, rhs, dimension_numbers, precision, preferred_element_type)


def stop_gradient(x):
    """The identity, with a zero derivative: gradients do not flow through `x`.

    Example:
        >>> import nanofn
        >>> float(nanofn.grad(lambda x: x * nanofn.lax.stop_gradient(x))(3.0))
        3.0
    """
    from nanofn.tree_util import tree_map
    return tree_map(lambda v: _base.stop_gradient_p.bind(v), x)


def _extremum_reduce(prim, operand, axes, lowest):
    operand, axes = _base._py_scalar(operand), tuple(int(a) for a in axes)
    shape = tuple(_base._aval_shape(operand))
    if all(0 <= a < len(shape) for a in axes) and 0 in [shape[a] for a in axes]:
        # nothing to compare: the identity, as JAX gives (-inf for a max of floats, the
        # smallest integer for integers, False for booleans)
        dt = _np.dtype(_base._dtype(operand))
        if dt == bool:
            ident = not lowest
        elif dt.kind in "iu":
            ident = _np.iinfo(dt).min if lowest else _np.iinfo(dt).max
        else:
            ident = -_np.inf if lowest else _np.inf
        kept = tuple(n for i, n in enumerate(shape) if i not in axes)
        return _base.full(kept, ident, dt)
    return prim.bind(operand, axes=axes)


def reduce_max(operand, axes):
    """Maximum over `axes`; over an empty axis, the lowest value of the dtype (-inf).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.reduce_max(fnp.array([[1.0, 3.0], [2.0, 0.0]]), (1,))
        Array([3., 2.], dtype=float32)
    """
    return _extremum_reduce(_base.reduce_max_p, operand, axes, True)


def reduce_min(operand, axes):
    """Minimum over `axes`; over an empty axis, the highest value of the dtype (inf).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.reduce_min(fnp.zeros((0, 2)), (0,))
        Array([inf, inf], dtype=float32)
    """
    return _extremum_reduce(_base.reduce_min_p, operand, axes, False)


def _index_dtype(fname, index_dtype):
    dt = _np.dtype(index_dtype)
    if dt.kind not in "iu":
        raise TypeError(f"{fname}: index_dtype must be an integer dtype, got {dt.name}")
    return dt


def argmax(operand, axis, index_dtype):
    """Index of the (first) maximum along `axis`, as `index_dtype`.

    Example:
        >>> import numpy as np, nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.argmax(fnp.array([1.0, 3.0, 3.0]), 0, np.int32)
        Array(1, dtype=int32)
    """
    return _base.argmax_p.bind(_base._py_scalar(operand), axis=int(axis),
                               index_dtype=_index_dtype("argmax", index_dtype))


def argmin(operand, axis, index_dtype):
    """Index of the (first) minimum along `axis`, as `index_dtype`.

    Example:
        >>> import numpy as np, nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.argmin(fnp.array([1.0, 0.0, 0.0]), 0, np.int32)
        Array(1, dtype=int32)
    """
    return _base.argmin_p.bind(_base._py_scalar(operand), axis=int(axis),
                               index_dtype=_index_dtype("argmin", index_dtype))


def bitcast_convert_type(operand, new_dtype):
    """Reinterpret the bits of `operand` as `new_dtype` (`jax.lax.bitcast_convert_type`):
    a narrower dtype adds a trailing axis of the size ratio (float32 to uint8: `(..., 4)`),
    a wider one needs and removes a trailing axis of that size.

    Example:
        >>> import numpy as np, nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> lax.bitcast_convert_type(fnp.ones(2), np.uint16).shape
        (2, 2)
    """
    import numpy as np
    return _base.bitcast_convert_type_p.bind(operand, new_dtype=np.dtype(new_dtype))

from nanofn.ops import _lax_extras  # noqa: E402  more jax.lax names (those not defined above)
globals().update(_lax_extras.exports(globals()))

# Arrays of typed PRNG keys go through the lax functions that only move, pick or copy
# elements (and eq/ne compare whole keys), as in JAX: each runs on the keys' words.
from nanofn import _keys  # noqa: E402

for _name in _keys.KEY_LAX_FUNCTIONS:
    globals()[_name] = _keys.accepting_keys(globals()[_name])
del _name

from nanofn._public import public_names as _public_names  # noqa: E402

__all__ = _public_names(globals())


def __getattr__(name):
    # The special functions' primitives (lgamma_p, igamma_p, ...) register when their module
    # first loads, which `import nanofn` skips to start fast; look them up on demand.
    if name.endswith("_p"):
        from nanofn.ops import _special_fns  # noqa: F401  registers them
        found = _lax_extras._primitives().get(name)
        if found is not None:
            globals()[name] = found
            return found
    raise AttributeError(f"module 'nanofn.lax' has no attribute {name!r}")
