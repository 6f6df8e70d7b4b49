"""Record JAX's solutions of the Krylov solver cases into sparse_solvers.json.

Runs only where JAX is installed (tests never import JAX; they read the JSON):

    python tools/reference/record_sparse_solvers.py
"""

from __future__ import annotations

import json
import os

import numpy as np

from _recording import data_dir, jax_x64  # beside this script


def record():
    jax = jax_x64()
    import jax.scipy.sparse.linalg as jsl
    from sparse_solver_cases import CASES, system

    out = {"jax_version": jax.__version__, "cases": {}}
    for name, (solver, kind, kwargs) in CASES.items():
        a, b, m = system(kind)
        kwargs = dict(kwargs, M=m if kwargs.get("M") else None)
        x = np.asarray(getattr(jsl, solver)(a, b, **kwargs)[0])
        out["cases"][name] = {"real": x.real.tolist(), "imag": x.imag.tolist()}
    with open(os.path.join(data_dir("scipy", "data"), "sparse_solvers.json"), "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    record()
