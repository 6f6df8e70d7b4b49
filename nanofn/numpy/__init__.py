"""nanofn.numpy: numpy's functions and semantics (jax.numpy's names), built on primitives.

Example:
    >>> import nanofn.numpy as fnp
    >>> fnp.sum(fnp.arange(4.0) ** 2)
    Array(14., dtype=float32)
"""

from nanofn._core import Array as ndarray
from nanofn.numpy._dtypes import (
    bool_ as bool_, complex64 as complex64, complex128 as complex128, float16 as float16,
    float32 as float32, float64 as float64, float_ as float_, int8 as int8, int16 as int16,
    int32 as int32, int64 as int64, uint8 as uint8, uint16 as uint16, uint32 as uint32,
    uint64 as uint64, inexact as inexact, floating as floating, integer as integer,
    signedinteger as signedinteger, unsignedinteger as unsignedinteger, number as number,
    result_type as result_type, issubdtype as issubdtype, finfo as finfo, iinfo as iinfo,
)
from nanofn.numpy._scalar_types import *  # noqa: F401,F403  float32 etc. that cast
from nanofn.numpy._lax_numpy import (
    array as array, asarray as asarray, zeros as zeros, ones as ones, full as full,
    empty as empty, zeros_like as zeros_like, ones_like as ones_like, full_like as full_like,
    empty_like as empty_like, arange as arange, linspace as linspace, eye as eye,
    identity as identity,
    sin as sin, cos as cos, tan as tan, arcsin as arcsin, arccos as arccos, arctan as arctan,
    sinh as sinh, cosh as cosh, tanh as tanh, arcsinh as arcsinh, arccosh as arccosh,
    arctanh as arctanh, exp as exp, exp2 as exp2, log as log, log1p as log1p, expm1 as expm1,
    log2 as log2, log10 as log10, sqrt as sqrt, cbrt as cbrt, square as square,
    reciprocal as reciprocal, floor as floor, ceil as ceil, round as round, around as around,
    rint as rint, trunc as trunc, fix as fix, negative as negative, positive as positive,
    sign as sign, abs as abs, absolute as absolute, isfinite as isfinite, isnan as isnan,
    isinf as isinf, logical_not as logical_not, invert as invert, bitwise_not as bitwise_not,
    add as add, subtract as subtract, multiply as multiply, divide as divide,
    true_divide as true_divide, floor_divide as floor_divide, remainder as remainder,
    mod as mod, fmod as fmod, power as power, pow as pow, float_power as float_power,
    maximum as maximum, minimum as minimum, arctan2 as arctan2, hypot as hypot,
    logaddexp as logaddexp, nextafter as nextafter, equal as equal, not_equal as not_equal,
    less as less, less_equal as less_equal, greater as greater, greater_equal as greater_equal,
    logical_and as logical_and, logical_or as logical_or, logical_xor as logical_xor,
    bitwise_and as bitwise_and, bitwise_or as bitwise_or, bitwise_xor as bitwise_xor,
    left_shift as left_shift, right_shift as right_shift,
    where as where, nonzero as nonzero, clip as clip, astype as astype,
    sum as sum, mean as mean, var as var, std as std, max as max, min as min, amax as amax,
    amin as amin, all as all, any as any, argmax as argmax, argmin as argmin,
    matmul as matmul, dot as dot, vdot as vdot, inner as inner, outer as outer,
    tensordot as tensordot,
    reshape as reshape, ravel as ravel, transpose as transpose, moveaxis as moveaxis,
    broadcast_to as broadcast_to, squeeze as squeeze, expand_dims as expand_dims, stack as stack,
)
from nanofn.numpy._shape_funcs import *  # noqa: F401,F403  concatenate, split, tile, take...
from nanofn.numpy._reductions import *  # noqa: F401,F403  prod, cumsum, sort, einsum...
from nanofn.numpy._complex_funcs import (
    real as real, imag as imag, conj as conj, conjugate as conjugate, angle as angle,
    iscomplexobj as iscomplexobj, isrealobj as isrealobj, iscomplex as iscomplex,
    isreal as isreal, real_if_close as real_if_close, logaddexp2 as logaddexp2,
)
from nanofn.numpy import linalg as linalg
from nanofn.numpy import fft as fft
from nanofn.numpy._convolve import *  # noqa: F401,F403  convolve, correlate
from nanofn.numpy._scientific import *  # noqa: F401,F403  diff, gradient, kron, cross, interp...
from nanofn.numpy._setops import *  # noqa: F401,F403  unique, set ops, searchsorted, histogram...
from nanofn.numpy._polynomial import *  # noqa: F401,F403  polyfit, roots, polyadd..., windows
from nanofn.numpy._surface import *  # noqa: F401,F403  allclose, shape, frexp, indices, put...
from nanofn.numpy._ufunc import *  # noqa: F401,F403  ufunc, frompyfunc; add.outer, add.at...
from nanofn.numpy import _array_methods  # noqa: F401  (installs operators on arrays)

pi = 3.141592653589793
e = 2.718281828459045
inf = float("inf")
nan = float("nan")
newaxis = None

# Arrays of typed PRNG keys (`random.key`) go through the functions that only move, pick or
# copy elements, as in JAX: each runs on the keys' words (nanofn/_keys.py).
from nanofn import _keys  # noqa: E402

for _name in _keys.KEY_ARRAY_FUNCTIONS:
    globals()[_name] = _keys.accepting_keys(globals()[_name])
del _name

from nanofn._public import public_names as _public_names  # noqa: E402

__all__ = _public_names(globals())
