"""A float32 tanh for numba loops that LLVM can vectorise.

numba from PyPI has no vector math library (no SVML), so `np.tanh` inside a numba loop
calls the scalar C library: over 100x slower per element than numpy's vectorised float32
ufunc. `tanh_approx` is built from float32 multiplications, additions, one division and
comparisons only, so a loop calling it vectorises like plain arithmetic (a loop of it
alone runs at about the speed of numpy's float32 `np.tanh`).

It is the kind of approximation XLA and Eigen use for float32 tanh, a ratio of an odd
and an even polynomial, with its own coefficients, fitted by `tools/fit_tanh.py` (minimax
relative error; the script prints them and measures the result):

    tanh(x) = x * P(x^2) / Q(x^2)   for |x| < CLAMP = 9.1,     +-1 beyond,

with `P` of degree 5 and `Q` of degree 4 in `x^2`, both with constant term 1. The fit's
relative error is below 1.5e-9 (0.025 float32 half-ulps); evaluated in float32, as here,
the roundings of the two polynomials make the result's error: at most **6.02 ulp** from
the exact tanh, measured over every float32 in `[0, 9.2]` against numpy's float64 tanh
(tanh is odd and the evaluation symmetric). Where the result is near +-1 (|x| >= 1) about
a third of the values are off by more than 1 ulp and 6.5% by more than 2; below that the
errors are smaller. XLA's float32 tanh on CPU, the same kind of approximation, was
measured at up to 4.2 ulp on a sample. (Evaluated in float64 and rounded once, the same
rational is within 0.525 ulp, but float64 division made the GELU kernels 1.6x slower.)

Edge values: `tanh(x) = x` exactly where `x^2` is negligible beside 1 (tiny and subnormal
`x`, and `-0.0`), `+-1` exactly for `|x| >= 9.1` (float32 tanh rounds to 1 from 9.011 on)
and for `+-inf`, never beyond `[-1, 1]`, NaN for NaN.

A float32 logistic built on it, `0.5 + 0.5 * tanh(x / 2)`, is not provided: in its lower
tail it is the small difference of two numbers near 0.5, so the tanh's absolute error
becomes a relative error that grows as the logistic shrinks. Measured against the exact
logistic, up to 8 float32 ulp on [-2, 0], 54 on [-4, 0], 500 on [-6, 0], 37000 on
[-10, 0]. Even with the rational in float64 (absolute error 1.5e-9) it is 17 ulp off at
-8, 0.09% at -14, and 0 instead of 1.1e-8 from x = -18.2 on.
"""

from __future__ import annotations

import numpy as np

from nanofn._kernels import kernel

__all__ = ["CLAMP", "fma", "tanh_approx", "tanh_float32", "tanh_float32_ref"]

# Printed by tools/fit_tanh.py: coefficients of s^0 .. s^5 and s^0 .. s^4, s = x^2.
_P = (1.0, 0.13677786410063916, 0.003865631028241338, 2.7951301268040558e-05,
      3.044317199725795e-08, -1.2092333684029902e-11)
_Q = (1.0, 0.4701111881720118, 0.027236044955045172, 0.0003933813996089253,
      1.2833513651113204e-06)
CLAMP = 9.1  # float32 tanh rounds to +-1 from |x| = 9.011 on

# float32 constants, so that numba computes in float32 (a Python float would be float64)
_P1, _P2, _P3, _P4, _P5 = (np.float32(c) for c in _P[1:])
_Q1, _Q2, _Q3, _Q4 = (np.float32(c) for c in _Q[1:])
_ONE = np.float32(1.0)
_CLAMP = np.float32(CLAMP)


def fma(a, b, c):
    """`a * b + c` rounded once: a fused multiply-add.

    In numba kernels it is LLVM's `llvm.fma` (`nanofn/_bitcast.py` registers it when
    nanofn starts numba): one instruction, and it vectorises. numba itself never fuses
    `a * b + c` (it keeps IEEE arithmetic, so kernels' cheap arithmetic equals numpy's),
    so the polynomials of the vectorising float32 `tanh` and `exp` call this for their
    Horner steps: half the latency, and at least as accurate. In plain Python (numpy
    scalars or arrays, as the numpy references of those kernels use it) it gives the same
    bits: float32 through float64 with the intermediate sum rounded to odd (which makes
    rounding it again to float32 correct), float64 exactly through fractions.

    Example:
        >>> import numpy as np
        >>> from nanofn.ops._fastmath import fma
        >>> a = np.float32(1 + 2 ** -12)
        >>> float(fma(a, a, -np.float32(1 + 2 ** -11))), float(a * a - np.float32(1 + 2 ** -11))
        (5.960464477539063e-08, 0.0)
    """
    a, b, c = np.asarray(a), np.asarray(b), np.asarray(c)
    dtype = np.result_type(a, b, c)
    if dtype == np.float32:
        with np.errstate(all="ignore"):
            p = a.astype(np.float64) * b  # exact: 48 bits
            c64 = c.astype(np.float64)
            s = p + c64
            back = s - c64  # the sum's rounding error, exactly (Knuth's two-sum)
            err = (p - back) + (c64 - (s - back))
            even = (s.view(np.int64) & 1) == 0
            odd = np.nextafter(s, np.where(err > 0, np.inf, -np.inf))
            s = np.where((err != 0) & even & np.isfinite(s), odd, s)
        out = s.astype(np.float32)
    elif dtype == np.float64:
        from fractions import Fraction

        def one(x, y, z):
            if not (np.isfinite(x) and np.isfinite(y) and np.isfinite(z)):
                return x * y + z
            return float(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z)))
        out = np.vectorize(one, otypes=[np.float64])(a, b, c)
    else:
        raise TypeError(f"fma: a, b and c must be float32 or float64, got {dtype}")
    return out[()] if out.ndim == 0 else out


@kernel
def tanh_approx(x):
    """tanh of a float32 scalar, within 6.02 ulp, for numba kernels: any loop calling it
    vectorises. `tanh_approx.py_func` runs it in plain Python (on numpy float32 scalars).

    Example:
        >>> import numpy as np
        >>> from nanofn.ops._fastmath import tanh_approx
        >>> t = tanh_approx.py_func
        >>> round(float(t(np.float32(0.5))), 6), float(t(np.float32(20))), float(t(np.float32(0)))
        (0.462117, 1.0, 0.0)
    """
    s = x * x
    p = fma(fma(fma(fma(fma(_P5, s, _P4), s, _P3), s, _P2), s, _P1), s, _ONE)
    q = fma(fma(fma(fma(_Q4, s, _Q3), s, _Q2), s, _Q1), s, _ONE)
    r = x * (p / q)  # NaN for NaN (and for |x| so large that s overflows: replaced below)
    r = _ONE if r > _ONE else r  # rounding may overshoot where tanh is within ulps of 1
    r = -_ONE if r < -_ONE else r
    r = _ONE if x >= _CLAMP else r
    return -_ONE if x <= -_CLAMP else r


@kernel
def _tanh_loop(x, out):
    for i in range(x.size):
        out[i] = tanh_approx(x[i])


def tanh_float32(x):
    """`tanh_approx` over a float32 array (a numba kernel).

    Example:
        >>> import numpy as np
        >>> from nanofn.ops._fastmath import tanh_float32
        >>> tanh_float32(np.array([0.0, 1.0, -np.inf, np.nan], np.float32))
        array([ 0.       ,  0.7615942, -1.       ,        nan], dtype=float32)
    """
    x = np.asarray(x, np.float32)
    out = np.empty(x.shape, np.float32)
    _tanh_loop(np.ascontiguousarray(x).reshape(-1), out.reshape(-1))
    return out


def tanh_float32_ref(x):
    """`tanh_float32` in numpy: the same float32 operations in the same order (the same
    bits), for tests and for where kernels are off.

    Example:
        >>> import numpy as np
        >>> from nanofn.ops._fastmath import tanh_float32_ref
        >>> tanh_float32_ref(np.array([0.5, 10.0], np.float32))
        array([0.46211714, 1.        ], dtype=float32)
    """
    x = np.asarray(x, np.float32)
    with np.errstate(all="ignore"):
        s = x * x
        p = fma(fma(fma(fma(fma(_P5, s, _P4), s, _P3), s, _P2), s, _P1), s, _ONE)
        q = fma(fma(fma(fma(_Q4, s, _Q3), s, _Q2), s, _Q1), s, _ONE)
        r = np.clip(x * (p / q), -_ONE, _ONE)  # keeps NaN
    return np.where(x >= _CLAMP, _ONE, np.where(x <= -_CLAMP, -_ONE, r))
