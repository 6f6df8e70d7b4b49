"""Record the public names of `jax.numpy` and the argument names of its functions (run
where JAX is installed).

    python tests/numpy/data/record_jnp_names.py

writes jax_numpy_names.json beside this file: JAX's version, the sorted public names of
`jax.numpy`, and for each function the names of the arguments a caller can pass by
keyword. tests/numpy/test_surface.py reads it and checks that every name is either in
`nanofn.numpy` or listed, with a reason, in docs/jax-numpy-coverage.md, and that nanofn's
functions accept JAX's keywords.
"""

import inspect
import json
import pathlib


def main():
    import jax
    import jax.numpy as jnp

    names = sorted(n for n in dir(jnp) if not n.startswith("_"))
    keywords = {}
    for n in names:
        f = getattr(jnp, n)
        if not callable(f) or isinstance(f, type):
            continue
        try:
            params = inspect.signature(f).parameters.values()
        except (TypeError, ValueError):
            continue
        keywords[n] = [p.name for p in params
                       if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    out = pathlib.Path(__file__).with_name("jax_numpy_names.json")
    out.write_text(json.dumps({"jax_version": jax.__version__, "names": names,
                               "keywords": keywords}, indent=0, sort_keys=True) + "\n")
    print(f"wrote {out.name}: {len(names)} names from jax {jax.__version__}")


if __name__ == "__main__":
    main()
