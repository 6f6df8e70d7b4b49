"""Record JAX's values, gradients and Hessians at the kink cases into kinks.json.

Runs only where JAX is installed (tests never import JAX; they read the JSON):

    python tools/reference/record_kinks.py
"""

from __future__ import annotations

import json
import os

import numpy as np

from _recording import data_dir, jax_x64  # beside this script

DATA = data_dir("reference")  # read by the tests


def _tolist(x):
    return np.asarray(x, dtype=np.float64).tolist()


def record():
    jax = jax_x64()
    import jax.numpy as jnp
    from kink_cases import CASES

    out = {"jax_version": jax.__version__, "cases": {}}
    for name, (make, args) in CASES.items():
        f = make(jnp, jax.nn)
        xs = [jnp.asarray(a, dtype=jnp.float64) for a in args]
        nums = tuple(range(len(xs)))
        value = f(*xs)
        grads = jax.grad(lambda *a: jnp.sum(f(*a)), argnums=nums)(*xs)
        hess = jax.hessian(lambda *a: jnp.sum(f(*a)), argnums=nums)(*xs)
        out["cases"][name] = {
            "value": _tolist(value),
            "grad": [_tolist(g) for g in grads],
            "hessian": [[_tolist(h) for h in row] for row in hess],
        }
    with open(os.path.join(DATA, "kinks.json"), "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    record()
