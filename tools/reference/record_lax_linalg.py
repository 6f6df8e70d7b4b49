"""Record jax.lax.linalg's results for the cases of lax_linalg_cases.py.

Runs only where JAX is installed (tests never import JAX; they read the npz):

    python tools/reference/record_lax_linalg.py
"""

import os

from _recording import data_dir, jax_x64  # beside this script

DATA = data_dir("ops")  # read by the tests


def main():
    import numpy as np
    jax_x64()
    from jax.lax import linalg
    from lax_linalg_cases import CASES

    out = {}
    for name, call in CASES.items():
        result = call(linalg)
        parts = result if isinstance(result, (tuple, list)) else [result]
        for i, part in enumerate(parts):
            out[f"{name}:{i}"] = np.asarray(part)
    np.savez_compressed(os.path.join(DATA, "data", "lax_linalg_jax.npz"), **out)
    print(f"{len(CASES)} cases recorded")


if __name__ == "__main__":
    main()
