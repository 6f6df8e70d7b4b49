"""Record JAX reference values for the JAX port programs (tests/port/test_jax_*.py).

Runs only where JAX (and scipy) are installed; they are never test dependencies:

    python tools/reference/record_jax_reference.py  # every test_jax_*.py file
    python tools/reference/record_jax_reference.py test_jax_newton_sqrt

For each file it runs `program` with JAX's modules on CPU (float32, x64 off) and writes
the results to `tests/port/jax_reference/<file>.npz`, which the tests read.
"""

import pathlib
import sys

HERE = pathlib.Path(__file__).parents[2] / "tests" / "port"  # the port programs


def main(names):
    import os
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    sys.path.insert(0, str(HERE))
    import _jax_port

    files = sorted(HERE.glob("test_jax_*.py"))
    if names:
        files = [f for f in files if f.stem in names]
    _jax_port.record(files, _jax_port.jax_modules(), _jax_port.REFERENCE_DIR)


if __name__ == "__main__":
    main(sys.argv[1:])
