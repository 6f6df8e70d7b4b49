"""Record jax.random's gamma-family and count-sampler draws, with `jax_enable_x64` off and
on, for tests/random/test_gamma_streams.py.

Runs only where JAX is installed (tests never import JAX; they read the npz):

    python tools/reference/record_gamma_streams.py

Each case is stored twice, as `x32/<name>` and `x64/<name>`.
"""

import os

from _recording import data_dir  # beside this script

DATA = data_dir("random")  # read by the tests


def main():
    import jax
    import numpy as np
    from gamma_stream_cases import CASES

    out = {}
    for mode, x64 in (("x32", False), ("x64", True)):
        jax.config.update("jax_enable_x64", x64)
        for name, (seed, draw) in CASES.items():
            out[f"{mode}/{name}"] = np.asarray(draw(jax.random, jax.random.PRNGKey(seed)))
    np.savez_compressed(os.path.join(DATA, "data", "gamma_streams_jax.npz"), **out)
    print(f"{len(CASES)} cases recorded in two modes with JAX {jax.__version__}")


if __name__ == "__main__":
    main()
