"""Special functions numpy lacks: erf and its inverse, as numba ufuncs over libm.

Both compile on first use (numba is imported then, never by `import nanofn`) and are
cached on disk. The inverse uses Giles' single-precision approximation ("Approximating
the erfinv function", GPU Gems 2010) as a starting point, refined by Newton steps on
libm's erf (on log erfc for |y| >= 1/2, where erf saturates): two for float64, one for
float32 (two more near +-1).
"""

from __future__ import annotations

import math

import numpy as np

_ufuncs: dict = {}

def _compile():
    import numba  # imported on first use only, so `import nanofn` stays fast

    @numba.vectorize(["float32(float32)", "float64(float64)"], cache=True)
    def erf(v):
        return math.erf(v)

    def make_erfinv(newton_steps):
        def erfinv(y):
            if y <= -1.0 or y >= 1.0:
                if y == 1.0:
                    return math.inf
                if y == -1.0:
                    return -math.inf
                return math.nan
            w = -math.log((1.0 - y) * (1.0 + y))
            if w < 5.0:
                w = w - 2.5
                p = 2.81022636e-08
                p = 3.43273939e-07 + p * w
                p = -3.5233877e-06 + p * w
                p = -4.39150654e-06 + p * w
                p = 0.00021858087 + p * w
                p = -0.00125372503 + p * w
                p = -0.00417768164 + p * w
                p = 0.246640727 + p * w
                p = 1.50140941 + p * w
            else:
                w = math.sqrt(w) - 3.0
                p = -0.000200214257
                p = 0.000100950558 + p * w
                p = 0.00134934322 + p * w
                p = -0.00367342844 + p * w
                p = 0.00573950773 + p * w
                p = -0.0076224613 + p * w
                p = 0.00943887047 + p * w
                p = 1.00167406 + p * w
                p = 2.83297682 + p * w
            x = p * y
            if abs(y) < 0.5:
                for _ in range(newton_steps):  # x -= (erf(x) - y) / erf'(x)
                    x = x - (math.erf(x) - y) / (1.1283791670955126 * math.exp(-x * x))
                return x
            # near +-1, erf(x) is 1 to within its last bits: Newton on log(erfc(|x|)) =
            # log(1 - |y|) instead (1 - |y| is exact here), which converges from the
            # single-precision start even in the far tail (erfinv(1 - 2**-52) was 5.41,
            # not 5.81)
            t = abs(x)
            log_q = math.log(1.0 - abs(y))
            for _ in range(newton_steps + 2):
                c = math.erfc(t)
                t = t + (math.log(c) - log_q) * c / (1.1283791670955126 * math.exp(-t * t))
            return math.copysign(t, y)
        return erfinv

    erfinv64 = numba.vectorize(["float64(float64)"], cache=True)(make_erfinv(2))
    erfinv32 = numba.vectorize(["float64(float64)"], cache=True)(make_erfinv(1))
    _ufuncs.update(erf=erf, erfinv64=erfinv64, erfinv32=erfinv32)


def erf(x):
    if not _ufuncs:
        _compile()
    return _ufuncs["erf"](x)


def erf_inv(y):
    """Inverse error function: erf_inv(erf(x)) == x."""
    if not _ufuncs:
        _compile()
    y = np.asarray(y)
    if y.dtype == np.float64:
        return _ufuncs["erfinv64"](y)
    # float32 (and float16): refine in double precision, round once at the end
    return _ufuncs["erfinv32"](y.astype(np.float64)).astype(y.dtype)
