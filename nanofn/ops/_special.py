"""Special functions numpy lacks: erf (a numba ufunc over libm's erf) and its inverse."""

from __future__ import annotations

import math

import numpy as np

_erf_ufunc = None


def erf(x):
    global _erf_ufunc
    if _erf_ufunc is None:
        import numba  # imported on first use only, so `import nanofn` stays fast

        @numba.vectorize(["float32(float32)", "float64(float64)"], cache=True)
        def _erf(v):
            return math.erf(v)

        _erf_ufunc = _erf
    return _erf_ufunc(x)


def erf_inv(y):
    """Inverse error function: Giles' single-precision approximation ("Approximating the
    erfinv function", GPU Gems 2010), refined by Newton steps on erf for full precision."""
    y = np.asarray(y)
    with np.errstate(all="ignore"):
        yd = y.astype(np.float64)
        w = -np.log((1.0 - yd) * (1.0 + yd))
        small = w < 5.0
        ws = w - 2.5
        p_small = 2.81022636e-08
        for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                  -0.00125372503, -0.00417768164, 0.246640727, 1.50140941):
            p_small = c + p_small * ws
        wl = np.sqrt(w) - 3.0
        p_large = -0.000200214257
        for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                  -0.0076224613, 0.00943887047, 1.00167406, 2.83297682):
            p_large = c + p_large * wl
        x = np.where(small, p_small, p_large) * yd
        for _ in range(2):  # Newton: x -= (erf(x) - y) / erf'(x)
            err = erf(x) - yd
            x = x - err / (2.0 / math.sqrt(math.pi) * np.exp(-x * x))
        x = np.where(np.abs(yd) == 1.0, np.copysign(np.inf, yd), x)
        x = np.where(np.abs(yd) > 1.0, np.nan, x)
    return x.astype(y.dtype, copy=False)
