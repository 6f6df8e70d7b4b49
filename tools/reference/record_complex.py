"""Record JAX's gradients of the complex cases into complex_grads.json.

Runs only where JAX is installed (tests never import JAX; they read the JSON):

    python tools/reference/record_complex.py
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))  # the cases sit beside this script
DATA = os.path.join(HERE, "..", "..", "tests", "reference")  # read by the tests


def record():
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
    sys.path.insert(0, HERE)
    from complex_cases import CASES

    out = {"jax_version": jax.__version__, "cases": {}}
    for name, (make, z, holomorphic) in CASES.items():
        f = make(jnp)
        g = np.asarray(jax.grad(f, holomorphic=holomorphic)(jnp.asarray(z, jnp.complex128)))
        out["cases"][name] = {"real": g.real.tolist(), "imag": g.imag.tolist()}
    with open(os.path.join(DATA, "complex_grads.json"), "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    record()
