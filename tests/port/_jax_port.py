"""Shared helpers of the port programs: JAX's (tests/port/test_jax_*.py) and optax's and
stax's (test_optax_*.py, test_stax_*.py).

Each port file defines `program(...)`, written once against JAX's names: its parameters
name the modules it uses (`jax`, `jnp`, `lax`, `jsp` for jax.scipy, `stax`,
`optimizers`, `optax`), bound to JAX's modules by tools/reference/record_jax_reference.py
and record_optax_reference.py (where JAX and optax are installed) and to nanofn's by the
test (`import nanofn as jax`, `nanofn.numpy as jnp`, `nanofn.optim as optax`, ...). The
program returns a dict of arrays; the recorded values live in `jax_reference/<file>.npz`
(or `optax_reference/`) and the test compares nanofn's results with them. Programs about
primitives and jaxprs also name `core`, `extend`, `ad`, `batching` and `mlir` (jax.core,
jax.extend and jax.interpreters.*; nanofn.core, nanofn.extend, nanofn.interpreters.*).
"""

import inspect
import pathlib

import numpy as np

REFERENCE_DIR = pathlib.Path(__file__).parent / "jax_reference"
OPTAX_REFERENCE_DIR = pathlib.Path(__file__).parent / "optax_reference"


def nanofn_modules():
    import nanofn
    import nanofn.lax
    import nanofn.numpy
    import nanofn.optim
    import nanofn.scipy
    import nanofn.core
    import nanofn.extend.core
    from nanofn.example_libraries import optimizers, stax
    from nanofn.interpreters import ad, batching, mlir
    return {"jax": nanofn, "jnp": nanofn.numpy, "lax": nanofn.lax, "jsp": nanofn.scipy,
            "stax": stax, "optimizers": optimizers, "optax": nanofn.optim,
            "core": nanofn.core, "extend": nanofn.extend, "ad": ad, "batching": batching,
            "mlir": mlir}


def jax_modules():
    import jax
    import jax.lax
    import jax.numpy
    import jax.scipy
    import jax.scipy.linalg
    import jax.scipy.special
    import jax.scipy.signal
    import jax.scipy.optimize  # noqa: F401 (jsp.optimize, jsp.integrate, jsp.cluster.vq)
    import jax.scipy.integrate  # noqa: F401
    import jax.scipy.cluster.vq  # noqa: F401
    import jax.experimental.ode  # noqa: F401 (jax.experimental.ode.odeint)
    import jax.core
    import jax.extend.core
    from jax.example_libraries import optimizers, stax
    from jax.interpreters import ad, batching, mlir
    return {"jax": jax, "jnp": jax.numpy, "lax": jax.lax, "jsp": jax.scipy, "stax": stax,
            "optimizers": optimizers, "core": jax.core, "extend": jax.extend, "ad": ad,
            "batching": batching, "mlir": mlir}


def run_program(program, modules):
    names = inspect.signature(program).parameters
    return as_numpy(program(**{n: modules[n] for n in names}))


def record(files, modules, out_dir):
    """Run each port file's `program` with `modules` and write its results to
    `out_dir/<file>.npz` (what the recorders in tools/reference call)."""
    import importlib.util
    out_dir.mkdir(exist_ok=True)
    for path in files:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        results = run_program(module.program, modules)
        out = out_dir / f"{path.stem}.npz"
        np.savez_compressed(out, **results)
        print(f"{path.stem}: {len(results)} arrays -> {out.name}")


def as_numpy(results):
    """A program's (nested) dict of results as a flat dict of numpy arrays ('a/0/b')."""
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


def check_against_jax(name, program, rtol=2e-4, atol=2e-5, overrides=None,
                      reference_dir=REFERENCE_DIR):
    """Run `program` with nanofn's modules and compare every result with JAX's recording.

    `overrides` maps a key prefix to its own `(rtol, atol)`. Returns (nanofn's, JAX's).
    """
    ref = dict(np.load(reference_dir / f"{name}.npz"))
    got = run_program(program, nanofn_modules())
    compare(got, ref, rtol, atol, overrides)
    return got, ref


def check_against_optax(name, program, rtol=2e-4, atol=2e-5, overrides=None):
    """`check_against_jax` for an optax or stax port, recorded in `optax_reference/`."""
    return check_against_jax(name, program, rtol, atol, overrides, OPTAX_REFERENCE_DIR)


def compare(got, ref, rtol, atol, overrides=None):
    """Every recorded array against nanofn's: integers exactly, floats to `(rtol, atol)`
    or the tolerance of the first `overrides` prefix a key starts with."""
    assert sorted(got) == sorted(ref), (sorted(got), sorted(ref))
    for key in sorted(ref):
        r, a = rtol, atol
        for prefix, tol in (overrides or {}).items():
            if key.startswith(prefix):
                r, a = tol
        assert got[key].shape == ref[key].shape, (key, got[key].shape, ref[key].shape)
        if ref[key].dtype.kind in "biu":
            np.testing.assert_array_equal(got[key], ref[key], err_msg=key)
        else:
            np.testing.assert_allclose(got[key], ref[key], rtol=r, atol=a, err_msg=key)
