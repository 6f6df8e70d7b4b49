"""Record the public names of JAX's and optax's modules that nanofn's API reference
compares against, into docs/hooks/reference_names.json.

Runs only where jax and optax are installed (the docs build reads the recorded file):

    python docs/hooks/record_reference_names.py
"""

import importlib
import json
import pathlib

MODULES = ["jax", "jax.numpy", "jax.numpy.linalg", "jax.numpy.fft", "jax.lax", "jax.lax.linalg",
           "jax.random", "jax.nn", "jax.nn.initializers", "jax.tree", "jax.tree_util",
           "jax.test_util", "jax.scipy.special", "jax.scipy.stats", "jax.scipy.linalg",
           "jax.scipy.signal", "jax.scipy.optimize", "jax.scipy.integrate",
           "jax.scipy.cluster.vq", "jax.experimental.ode", "jax.example_libraries.stax",
           "jax.example_libraries.optimizers", "jax.debug", "jax.distributed", "jax.errors",
           "jax.dtypes", "jax.flatten_util", "jax.typing", "optax", "optax.losses",
           "optax.schedules", "optax.tree", "optax.transforms", "optax.contrib"]
MODULES += ["jax.scipy.ndimage", "jax.scipy.interpolate", "jax.image", "jax.scipy.fft",
            "optax.projections", "optax.second_order", "optax.assignment",
            "optax.perturbations", "optax.microbatching"]
MODULES += ["jax.sharding", "jax.ops", "jax.custom_derivatives", "jax.core", "jax.extend",
            "jax.extend.core", "jax.interpreters.ad", "jax.interpreters.batching",
            "jax.interpreters.mlir", "jax.scipy.spatial.transform", "optax.tree_utils"]
MODULES += ["jax.profiler", "jax.experimental.mesh_utils", "jax.monitoring", "jax.dlpack"]
MODULES += ["jax.stages"]
MODULES += ["jax.custom_batching"]
MODULES += ["jax.experimental.multihost_utils",
            "jax.experimental.compilation_cache.compilation_cache", "jax.experimental.pjit"]
# Deprecated names that these modules still serve through `__getattr__` (absent from dir())
SERVED_DEPRECATED = ["jax.experimental.pjit"]
MODULES += ["jax.experimental.checkify"]
MODULES += ["jax.experimental.sparse", "jax.experimental.jet"]


def main():
    names = {}
    for name in MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        names[name] = sorted(n for n in dir(mod) if not n.startswith("_"))
        if name in SERVED_DEPRECATED:
            served = {n for n, (_, v) in getattr(mod, "_deprecations", {}).items() if v}
            names[name] = sorted(set(names[name]) | served)
    import jax
    import optax
    names["versions"] = {"jax": jax.__version__, "optax": optax.__version__}
    out = pathlib.Path(__file__).with_name("reference_names.json")
    out.write_text(json.dumps(names, indent=0, sort_keys=True) + "\n")
    print(f"wrote {out.name}: {sum(len(v) for k, v in names.items() if k != 'versions')} names")


if __name__ == "__main__":
    main()
