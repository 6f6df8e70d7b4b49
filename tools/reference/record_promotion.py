"""Record JAX's dtype promotion, standard and strict, into promotion_jax.json.

For every pair of dtypes, and every dtype with each kind of Python scalar, it records
the dtype of `jnp.add(x, y)` under `jax_numpy_dtype_promotion` "standard" and "strict",
or "TypePromotionError" where JAX refuses. It runs with float64 enabled, so that 64-bit
arrays keep their dtypes, as nanofn's always do. Runs only where JAX is installed (the
tests never import JAX; they read the JSON):

    python tools/reference/record_promotion.py
"""

from __future__ import annotations

import json
import os

from _recording import data_dir, jax_x64  # beside this script

DATA = data_dir("reference")  # read by the tests

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64", "complex64", "complex128"]
SCALARS = {"True": True, "int": 3, "float": 2.5, "complex": 1 + 2j}


def record():
    jax = jax_x64()
    import jax.numpy as jnp
    from jax.dtypes import TypePromotionError

    def outcome(x, y):
        try:
            return str(jnp.add(x, y).dtype)
        except TypePromotionError:
            return "TypePromotionError"

    out = {"jax_version": jax.__version__, "dtypes": DTYPES, "scalars": list(SCALARS)}
    for mode in ("standard", "strict"):
        table = out[mode] = {}
        with jax.numpy_dtype_promotion(mode):
            for a in DTYPES:
                x = jnp.ones(2, a)
                for b in DTYPES:
                    table[f"{a}+{b}"] = outcome(x, jnp.ones(2, b))
                for name, value in SCALARS.items():
                    table[f"{a}+{name}"] = outcome(x, value)
                    table[f"{name}+{a}"] = outcome(value, x)
    with open(os.path.join(DATA, "promotion_jax.json"), "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    record()
