"""Record JAX's answers for the pytree programs of tree_cases.py, and the public names of
jax.tree_util and jax.tree, into tests/data/jax_tree_reference.json, which tests/test_tree_jax_parity.py compares nanofn's
answers with.

Runs only where JAX is installed (the test never imports JAX; it reads the JSON). JAX runs
with its defaults (float32, x64 off), as the cases assume:

    python tools/reference/record_jax_tree.py
"""

import json
import os
import types

from _recording import data_dir  # beside this script


def main():
    import jax
    import jax.numpy as jnp
    import jax.tree as T
    import jax.tree_util as tu
    from jax.flatten_util import ravel_pytree
    from tree_cases import run_cases

    api = types.SimpleNamespace(tu=tu, T=T, np=jnp, ravel_pytree=ravel_pytree)
    cases = run_cases(api)
    os.makedirs(data_dir("data"), exist_ok=True)
    path = os.path.join(data_dir("data"), "jax_tree_reference.json")
    with open(path, "w") as fh:
        names = {"tree_util": sorted(n for n in dir(tu) if not n.startswith("_")),
                 "tree": sorted(n for n in dir(T) if not n.startswith("_"))}
        json.dump({"jax_version": jax.__version__, "cases": cases, "names": names}, fh,
                  indent=0, sort_keys=True)
    print(f"wrote {os.path.basename(path)}: {len(cases)} cases from jax {jax.__version__}")


if __name__ == "__main__":
    main()
