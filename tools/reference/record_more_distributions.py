"""Record jax.random's draws for the samplers of nanofn/random/_more_distributions.py.

Runs only where JAX is installed (tests never import JAX; they read the npz):

    python tools/reference/record_more_distributions.py
"""

import os

from _recording import data_dir  # beside this script

DATA = data_dir("random")  # read by the tests


def main():
    import numpy as np
    import jax
    from more_distribution_cases import CASES

    out = {name: np.asarray(draw(jax.random, jax.random.PRNGKey(seed)))
           for name, (seed, draw) in CASES.items()}
    np.savez_compressed(os.path.join(DATA, "data", "more_distributions_jax.npz"), **out)
    print(f"{len(out)} cases recorded")


if __name__ == "__main__":
    main()
