"""Record JAX/optax reference values for the optax and stax port programs.

Runs only where JAX and optax are installed (they are never test dependencies):

    python tools/reference/record_optax_reference.py  # every test_optax_*/test_stax_* file
    python tools/reference/record_optax_reference.py test_stax_mnist_classifier

For each port file it runs the file's `program` with JAX's modules on CPU in float32
and writes the results to `tests/port/optax_reference/<file>.npz`, which the tests read.
"""

import pathlib
import sys

HERE = pathlib.Path(__file__).parents[2] / "tests" / "port"  # the port programs


def jax_modules():
    import jax
    import jax.lax
    import jax.numpy
    import optax
    from jax.example_libraries import optimizers, stax
    return {"jax": jax, "jnp": jax.numpy, "lax": jax.lax, "optax": optax, "stax": stax,
            "optimizers": optimizers}


def main(names):
    sys.path.insert(0, str(HERE))
    import _jax_port

    files = sorted(HERE.glob("test_optax_*.py")) + sorted(HERE.glob("test_stax_*.py"))
    if names:
        files = [f for f in files if f.stem in names]
    _jax_port.record(files, jax_modules(), _jax_port.OPTAX_REFERENCE_DIR)


if __name__ == "__main__":
    main(sys.argv[1:])
