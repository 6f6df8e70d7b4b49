"""Record JAX's gradients of the complex cases into complex_grads.json.

Runs only where JAX is installed (tests never import JAX; they read the JSON):

    python tools/reference/record_complex.py
"""

from __future__ import annotations

import json
import os

import numpy as np

from _recording import data_dir, jax_x64  # beside this script

DATA = data_dir("reference")  # read by the tests


def record():
    jax = jax_x64()
    import jax.numpy as jnp
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
