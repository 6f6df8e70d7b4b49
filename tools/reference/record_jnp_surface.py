"""Record JAX's answers for the cases of jnp_surface_cases.py into jnp_surface.json.

Runs only where JAX is installed (tests never import JAX; they read the JSON):

    python tools/reference/record_jnp_surface.py
"""

import json
import os

import numpy as np

from _recording import data_dir  # beside this script

DATA = data_dir("numpy", "data")  # read by the tests


def _leaves(out):
    if isinstance(out, (tuple, list)):
        return [leaf for o in out for leaf in _leaves(o)]
    return [out]


def _encode(a):
    """Values as nested lists; complex values as [real, imag] pairs."""
    if a.dtype.kind == "c":
        value = np.stack([a.real, a.imag], axis=-1).tolist()
    else:
        value = a.tolist()
    return {"value": value, "dtype": str(a.dtype)}


def main():
    import jax
    import jax.numpy as jnp

    from jnp_surface_cases import CASES

    cases = {}
    for name, (make, args) in CASES.items():
        out = make(jnp)(*args)
        cases[name] = [_encode(np.asarray(o)) for o in _leaves(out)]
    path = os.path.join(DATA, "jnp_surface.json")
    with open(path, "w") as fh:
        json.dump({"jax_version": jax.__version__, "cases": cases}, fh, indent=0)
    print(f"wrote {os.path.basename(path)}: {len(cases)} cases from jax {jax.__version__}")


if __name__ == "__main__":
    main()
