"""Record jax.random's draws with `jax_enable_x64` on, for tests/random/test_x64_streams.py.

Runs only where JAX is installed (tests never import JAX; they read the npz):

    python tools/reference/record_x64_streams.py
"""

import os

from _recording import data_dir, jax_x64  # beside this script

DATA = data_dir("random")  # read by the tests


def main():
    import numpy as np
    from x64_stream_cases import CASES

    jax = jax_x64()  # the point of these cases: JAX's dtypes and streams under x64
    out = {name: np.asarray(draw(jax.random, jax.random.PRNGKey(seed)))
           for name, (seed, draw) in CASES.items()}
    np.savez_compressed(os.path.join(DATA, "data", "x64_streams_jax.npz"), **out)
    print(f"{len(out)} cases recorded with JAX {jax.__version__}")


if __name__ == "__main__":
    main()
