"""nanofn.ops (also importable as nanofn.lax): the primitives, with jax.lax's names.

Every function here binds one primitive (or a few, for convenience wrappers). The
primitives and all their rules live in the private modules of this package, one block
per primitive.

Example:
    >>> import nanofn
    >>> nanofn.lax.add(nanofn.numpy.float32(1), nanofn.numpy.float32(2))
    Array(3., dtype=float32)
"""

from nanofn import _core
from nanofn.ops import _base
from nanofn.ops._shape import *  # noqa: F401,F403  concatenate, pad, slicing, gather, scatter
from nanofn.ops._reduce import *  # noqa: F401,F403  reduce_prod, cumulative ops, sort
from nanofn.ops._conv import *  # noqa: F401,F403  conv_general_dilated, reduce_window
from nanofn.ops._control import *  # noqa: F401,F403  cond, switch, while_loop, fori_loop, scan
from nanofn.ops._fft import *  # noqa: F401,F403  fft, FftType
from nanofn.ops import _nn  # noqa: F401  softmax, cross-entropy and layer-norm kernel primitives
from nanofn.ops._complex import real as real, imag as imag, conj as conj, complex as complex
from nanofn.ops._parallel import *  # noqa: F401,F403  psum, all_gather, ppermute, axis_index, ...
from nanofn.ops._base import (
    broadcast_in_dim as broadcast_in_dim, broadcast_to as broadcast_to,
    broadcasted_iota as broadcasted_iota, convert_element_type as convert_element_type,
    dot_general as dot_general, expand_dims as expand_dims, full as full, iota as iota,
    reduce_sum as reduce_sum, reshape as reshape, squeeze as squeeze, transpose as transpose,
)


def _wrap_prim(prim, name, doc):
    def fn(*args, **params):
        if len(args) > 1:  # eager dispatch skips shape rules; lax's contract is checked here
            dtypes = {getattr(a, "dtype", None) for a in args}
            if len(dtypes) > 1:
                prim.abstract_eval(*[_core.get_aval(a) for a in args], **params)
        return prim.bind(*args, **params)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


def _def_elementwise():
    g = globals()
    names = {
        "neg": "neg", "sign": "sign", "floor": "floor", "ceil": "ceil", "abs": "abs",
        "exp": "exp", "exp2": "exp2", "log": "log", "log1p": "log1p", "expm1": "expm1",
        "sin": "sin", "cos": "cos", "tan": "tan", "asin": "asin", "acos": "acos", "atan": "atan",
        "sinh": "sinh", "cosh": "cosh", "tanh": "tanh", "asinh": "asinh", "acosh": "acosh",
        "atanh": "atanh", "logistic": "logistic", "sqrt": "sqrt", "rsqrt": "rsqrt",
        "cbrt": "cbrt", "erf": "erf", "erf_inv": "erf_inv", "is_finite": "is_finite",
        "add": "add", "sub": "sub", "mul": "mul", "div": "div", "rem": "rem", "pow": "pow",
        "max": "max", "min": "min", "atan2": "atan2", "nextafter": "nextafter",
        "eq": "eq", "ne": "ne", "lt": "lt", "le": "le", "gt": "gt", "ge": "ge",
        "bitwise_and": "and", "bitwise_or": "or", "bitwise_xor": "xor", "bitwise_not": "not",
        "shift_left": "shift_left", "shift_right_logical": "shift_right_logical",
        "shift_right_arithmetic": "shift_right_arithmetic",
    }
    for public, prim_name in names.items():
        prim = getattr(_base, f"{prim_name}_p")
        g[public] = _wrap_prim(prim, public, f"The `{prim_name}` primitive: elementwise, "
                               "operands of one dtype, numpy broadcasting.")


_def_elementwise()


def integer_pow(x, y):
    """`x ** y` for a Python int `y`, by repeated multiplication."""
    return _base.integer_pow_p.bind(x, y=int(y))


def round(x, rounding_method=0):
    """Round to the nearest integer: halves away from zero (0) or to even (1)."""
    return _base.round_p.bind(x, rounding_method=int(rounding_method))


def select_n(which, *cases):
    """`cases[which]` elementwise: `which` is bool (two cases) or an int array."""
    return _base.select_n_p.bind(which, *cases)


def select(pred, on_true, on_false):
    """`on_true` where `pred`, else `on_false` (lax.select's argument order)."""
    return _base.select_n_p.bind(pred, on_false, on_true)


def stop_gradient(x):
    """The identity, with a zero derivative: gradients do not flow through `x`.

    Example:
        >>> import nanofn
        >>> float(nanofn.grad(lambda x: x * nanofn.lax.stop_gradient(x))(3.0))
        3.0
    """
    from nanofn.tree_util import tree_map
    return tree_map(lambda v: _base.stop_gradient_p.bind(v), x)


def reduce_max(x, axes):
    """Maximum over `axes`."""
    return _base.reduce_max_p.bind(x, axes=tuple(axes))


def reduce_min(x, axes):
    """Minimum over `axes`."""
    return _base.reduce_min_p.bind(x, axes=tuple(axes))


def argmax(x, axis, index_dtype):
    """Index of the maximum along `axis`."""
    import numpy as np
    return _base.argmax_p.bind(x, axis=int(axis), index_dtype=np.dtype(index_dtype))


def argmin(x, axis, index_dtype):
    """Index of the minimum along `axis`."""
    import numpy as np
    return _base.argmin_p.bind(x, axis=int(axis), index_dtype=np.dtype(index_dtype))


def bitcast_convert_type(x, new_dtype):
    """Reinterpret the bits of `x` as `new_dtype` (same item size)."""
    import numpy as np
    return _base.bitcast_convert_type_p.bind(x, new_dtype=np.dtype(new_dtype))

from nanofn.ops import _lax_extras  # noqa: E402  more jax.lax names (those not defined above)
globals().update(_lax_extras.exports(globals()))

from nanofn._public import public_names as _public_names

__all__ = _public_names(globals())
