"""Record JAX reference values for the JAX port programs (tests/port/test_jax_*.py).

Runs only where JAX (and scipy) are installed; they are never test dependencies:

    python tools/reference/record_jax_reference.py  # every test_jax_*.py file
    python tools/reference/record_jax_reference.py test_jax_newton_sqrt

For each file it runs `program` with JAX's modules on CPU (float32, x64 off) and writes
the results to `tests/port/jax_reference/<file>.npz`, which the tests read.
"""

import importlib.util
import pathlib
import sys

HERE = pathlib.Path(__file__).parents[2] / "tests" / "port"  # the port programs


def main(names):
    import os
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import numpy as np

    sys.path.insert(0, str(HERE))
    import _jax_port

    files = sorted(HERE.glob("test_jax_*.py"))
    if names:
        files = [f for f in files if f.stem in names]
    modules = _jax_port.jax_modules()
    _jax_port.REFERENCE_DIR.mkdir(exist_ok=True)
    for path in files:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        results = _jax_port.run_program(module.program, modules)
        out = _jax_port.REFERENCE_DIR / f"{path.stem}.npz"
        np.savez_compressed(out, **results)
        print(f"{path.stem}: {len(results)} arrays -> {out.name}")


if __name__ == "__main__":
    main(sys.argv[1:])
