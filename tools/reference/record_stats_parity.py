"""Record jax.scipy.stats and jax.scipy.optimize results where nanofn once differed, into
tests/scipy/data/stats_jax_parity.json (read by tests/scipy/test_stats_jax_parity.py).

Distribution cases: invalid shapes (<= 0), NaN points and `scale = 0` for beta, gamma and
chi2's cdf/sf/logcdf/logsf, beta's pdf/logpdf, pareto's logpdf and gennorm's cdf. For each
case the recorder also stores scipy.stats's value, and whether the two agree: the tests
hold nanofn to JAX only where JAX agrees with scipy (JAX's betainc and gammainc return 0 or
1 for some invalid shapes at the support's edge, where scipy and nanofn give NaN).

Also: mode (NaN entries, the dtypes of its results), rankdata's dtype and minimize's
counter dtypes, all under jax_enable_x64.

Runs only where JAX and scipy are installed (tests never import JAX):

    python tools/reference/record_stats_parity.py
"""

from __future__ import annotations

import itertools
import json
import os

import numpy as np
from _recording import data_dir, jax_x64  # beside this script

OUT = os.path.join(data_dir("scipy", "data"), "stats_jax_parity.json")

X = [-np.inf, -1.0, 0.0, 0.3, 1.0, 2.5, np.inf, np.nan]
GRIDS = {
    # name: (functions, shape-parameter grids, with loc/scale)
    "beta": (["cdf", "sf", "logcdf", "logsf", "pdf", "logpdf"],
             [[0.5, 2.0, 0.0, -1.0, np.nan], [1.0, 3.0, 0.0, -1.0]]),
    "gamma": (["cdf", "sf", "logcdf", "logsf"], [[0.5, 2.0, 0.0, -1.0, np.nan]]),
    "chi2": (["cdf", "sf", "logcdf", "logsf"], [[1.0, 3.0, 0.0, -1.0, np.nan]]),
    "pareto": (["pdf", "logpdf"], [[0.0, 0.5, 2.0]]),
    "gennorm": (["cdf"], [[0.5, 2.0, 0.0, -1.0]]),
}
LOC = [0.0, 0.5]
SCALE = [1.0, 2.0, 0.0, -1.0]


def _f(v):
    v = float(v)
    return "nan" if np.isnan(v) else ("inf" if v == np.inf else ("-inf" if v == -np.inf else v))


def distribution_cases(js, ss, jnp):
    out = []
    for name, (fns, shapes) in GRIDS.items():
        with_ls = name != "gennorm"
        grids = [X] + shapes + ([LOC, SCALE] if with_ls else [])
        args = [np.array(c) for c in zip(*itertools.product(*grids))]
        for fn in fns:
            got = np.asarray(getattr(getattr(js, name), fn)(*[jnp.asarray(a) for a in args]))
            with np.errstate(all="ignore"):
                ref = np.asarray(getattr(getattr(ss, name), fn)(*args), dtype=np.float64)
            agree = np.isclose(got, ref, rtol=1e-7, atol=1e-12, equal_nan=True)
            out.append({"dist": name, "fn": fn, "args": [[_f(v) for v in a] for a in args],
                        "jax": [_f(v) for v in got], "agrees_with_scipy": agree.tolist()})
    return out


def main():
    jax = jax_x64()
    import jax.numpy as jnp
    import jax.scipy.optimize as jo
    import jax.scipy.stats as js
    import scipy.stats as ss

    data = {"distributions": distribution_cases(js, ss, jnp)}

    mode_inputs = [[1.0, 2.0, 2.0, 3.0, 3.0, 3.0, np.nan], [3.0, 1.0, np.nan, 1.0],
                   [np.nan, np.nan], [[1, 2, 2], [3, 1, 1], [2, 2, 5]], []]
    modes = []
    for a in mode_inputs:
        arr = np.asarray(a, dtype=np.int64 if a and isinstance(np.ravel(a)[0], (int, np.integer))
                         else np.float64)
        for axis in [None, 0, -1]:
            if axis == -1 and arr.ndim < 2:
                continue
            m, c = js.mode(jnp.asarray(arr), axis=axis)
            modes.append({"a": [[_f(v) for v in row] for row in arr] if arr.ndim == 2
                          else [_f(v) for v in arr], "dtype": str(arr.dtype), "axis": axis,
                          "mode": np.asarray(m).ravel().tolist(), "mode_dtype": str(m.dtype),
                          "count": np.asarray(c).ravel().tolist(), "count_dtype": str(c.dtype)})
    data["mode_x64"] = modes

    ranks = []
    for arr in [np.array([40, 10, 30, 10]), np.array([True, False, True]),
                np.array([0.5, 0.25, 0.5], np.float32)]:
        r = js.rankdata(jnp.asarray(arr))
        ranks.append({"a": arr.tolist(), "dtype": str(arr.dtype), "ranks": np.asarray(r).tolist(),
                      "out_dtype": str(r.dtype)})
    data["rankdata_x64"] = ranks

    def quad(x, a):
        return jnp.sum((x - a) ** 2 * jnp.arange(1, x.shape[0] + 1))

    res = jo.minimize(quad, jnp.array([3.0, -2.0]), args=(jnp.array([1.0, 2.0]),), method="BFGS")
    data["minimize_bfgs_x64"] = {
        "x0": [3.0, -2.0], "a": [1.0, 2.0],
        "x": np.asarray(res.x).tolist(), "fun": float(res.fun), "success": bool(res.success),
        **{k: int(getattr(res, k)) for k in ("status", "nfev", "njev", "nit")},
        "dtypes": {k: str(getattr(res, k).dtype) for k in res._fields
                   if getattr(res, k) is not None},
    }
    data["jax_version"] = jax.__version__
    with open(OUT, "w") as f:
        json.dump(data, f)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
