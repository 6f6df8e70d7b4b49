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


def as_numpy(results):
    """A program's dict of results as a flat dict of numpy arrays ('a/0/1' for nesting)."""
    out = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}/{k}" if prefix else str(k), v)
        elif isinstance(value, (list, tuple)) and not (value and np.isscalar(value[0])):
            for i, v in enumerate(value):
                walk(f"{prefix}/{i}", v)
        else:
            out[prefix] = np.asarray(value)
    walk("", results)
    return out


def check_against_reference(name, program, rtol=2e-4, atol=2e-5, overrides=None):
    """Run `program` with nanofn and compare every result with the recorded JAX values.

    `overrides` maps a key prefix to its own `(rtol, atol)`.
    """
    path = REFERENCE_DIR / f"{name}.npz"
    ref = dict(np.load(path))
    got = as_numpy(call_program(program, nanofn_modules()))
    assert sorted(got) == sorted(ref), (sorted(got), sorted(ref))
    for key in sorted(ref):
        r, a = rtol, atol
        for prefix, tol in (overrides or {}).items():
            if key.startswith(prefix):
                r, a = tol
        assert got[key].shape == ref[key].shape, (key, got[key].shape, ref[key].shape)
        np.testing.assert_allclose(got[key], ref[key], rtol=r, atol=a, err_msg=key)
    return got, ref
