"""Record the public names of `jax.numpy` (run where JAX is installed).

    python tests/numpy/data/record_jnp_names.py

writes jax_numpy_names.json beside this file: JAX's version and the sorted public names
of `jax.numpy`. tests/numpy/test_surface.py reads it and checks that every name is either
in `nanofn.numpy` or listed, with a reason, in docs/jax-numpy-coverage.md.
"""

import json
import pathlib


def main():
    import jax
    import jax.numpy as jnp

    names = sorted(n for n in dir(jnp) if not n.startswith("_"))
    out = pathlib.Path(__file__).with_name("jax_numpy_names.json")
    out.write_text(json.dumps({"jax_version": jax.__version__, "names": names}, indent=0) + "\n")
    print(f"wrote {out.name}: {len(names)} names from jax {jax.__version__}")


if __name__ == "__main__":
    main()
