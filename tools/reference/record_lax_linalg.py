"""Record jax.lax.linalg's results for the cases of lax_linalg_cases.py.

Runs only where JAX is installed (tests never import JAX; they read the npz):

    python tools/reference/record_lax_linalg.py
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))  # the cases sit beside this script
DATA = os.path.join(HERE, "..", "..", "tests", "ops")  # read by the tests


def main():
    import numpy as np
    import jax
    jax.config.update("jax_enable_x64", True)
    from jax.lax import linalg
    sys.path.insert(0, HERE)
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
