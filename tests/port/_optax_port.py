"""Shared helpers of the optax/stax port programs (tests/port/test_optax_*.py, test_stax_*.py).

Each port file defines `program(...)`, written once against JAX's names: its parameters
are module names (`jax`, `jnp`, `optax`, `stax`, `optimizers`), and it returns a dict of
arrays. `record_optax_reference.py` runs it with JAX's modules (where JAX and optax are
installed) and stores the dict in `optax_reference/<file>.npz`; the test runs it with
nanofn's modules and compares with the stored values.
"""

import inspect
import pathlib

import numpy as np
from _jax_port import as_numpy, compare  # noqa: F401 (as_numpy: the record script)

REFERENCE_DIR = pathlib.Path(__file__).parent / "optax_reference"


def nanofn_modules():
    import nanofn
    import nanofn.numpy
    import nanofn.optim
    from nanofn.example_libraries import optimizers, stax
    return {"jax": nanofn, "jnp": nanofn.numpy, "optax": nanofn.optim, "stax": stax,
            "optimizers": optimizers}


def call_program(program, modules):
    names = inspect.signature(program).parameters
    return program(**{n: modules[n] for n in names})


def check_against_reference(name, program, rtol=2e-4, atol=2e-5, overrides=None):
    """Run `program` with nanofn and compare every result with the recorded JAX values.

    `overrides` maps a key prefix to its own `(rtol, atol)`. Returns (nanofn's, JAX's).
    """
    ref = dict(np.load(REFERENCE_DIR / f"{name}.npz"))
    got = as_numpy(call_program(program, nanofn_modules()))
    compare(got, ref, rtol, atol, overrides)
    return got, ref
