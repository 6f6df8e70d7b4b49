"""Record jax.scipy.optimize.minimize (BFGS) and jax.scipy.cluster.vq.vq results at the
cases of sciopt_cases.py, and the signatures of minimize, integrate.trapezoid and
cluster.vq.vq, into sciopt_jax.json.

Runs only where JAX is installed (tests never import JAX; they read the JSON):

    python tools/reference/record_sciopt.py
"""

from __future__ import annotations

import inspect
import json
import os

import numpy as np

from _recording import data_dir, jax_x64  # beside this script

DATA = data_dir("reference")  # read by the tests


def _tolist(x):
    return np.asarray(x).tolist()


def _describe(fn):
    return [[p.name, str(p.kind), None if p.default is inspect.Parameter.empty else repr(p.default)]
            for p in inspect.signature(fn).parameters.values()]


def record():
    jax = jax_x64()
    import jax.scipy.integrate
    import jax.numpy as jnp
    from jax.scipy.cluster.vq import vq
    from jax.scipy.optimize import minimize
    from sciopt_cases import MINIMIZE, VQ

    out = {"jax_version": jax.__version__, "minimize": {}, "vq": {}, "signatures": {
        "optimize.minimize": _describe(minimize),
        "integrate.trapezoid": _describe(jax.scipy.integrate.trapezoid),
        "cluster.vq.vq": _describe(vq)}}
    for name, (make, x0, args) in MINIMIZE.items():
        res = minimize(make(jnp), jnp.asarray(x0), tuple(jnp.asarray(a) for a in args),
                       method="BFGS")
        out["minimize"][name] = {k: _tolist(getattr(res, k)) for k in
                                 ("x", "fun", "jac", "hess_inv", "success", "status",
                                  "nfev", "njev", "nit")}
    for name, (obs, book) in VQ.items():
        codes, dists = vq(jnp.asarray(obs), jnp.asarray(book))
        out["vq"][name] = {"codes": _tolist(codes), "dists": _tolist(dists)}
    path = os.path.join(DATA, "sciopt_jax.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    record()
