"""Record optax's optimizers on complex parameters into optax_complex.npz.

Runs only where JAX and optax are installed (tests never import JAX; they read the file):

    python tools/reference/record_optax_complex.py

Each case of optax_complex_cases.py runs in single precision (complex64/float32, JAX's
default) and, with x64 switched on, in double precision (complex128/float64). For each
precision ``<p>`` the file holds:

* ``<p>:cases``: the case names, in the order of the rows below;
* ``<p>:trajectories``: ``(cases, STEPS, size)`` complex128, the parameters after each
  step, every leaf flattened and concatenated in ``tree_leaves`` order (``b``, ``k``,
  ``w``: sorted keys); ``<p>:grads0``: ``(cases, size)``, the first step's gradients;
* ``<p>:leaf_dtypes``: ``(cases, leaves)``, the parameters' dtypes after the last step;
  ``<p>:state_dtypes``: the dtypes of the final state's leaves, sorted, comma-separated;
* ``<p>:error_cases`` and ``<p>:errors``: the type of the error optax raises ("" if none);
* ``<p>:tree_functions:<name>[:<key>]``: the tree functions on the starting parameters;
* ``jax_version``, ``optax_version``.
"""

from __future__ import annotations

import os

import numpy as np

from _recording import data_dir  # beside this script

DATA = data_dir("reference")  # read by the tests

PRECISIONS = {"float32": ("complex64", "float32"), "float64": ("complex128", "float64")}


def flat(jax, tree):
    """The leaves of ``tree`` as one complex128 vector, and their dtypes."""
    leaves = [np.asarray(x) for x in jax.tree.leaves(tree)]
    return (np.concatenate([x.astype(np.complex128).ravel() for x in leaves]),
            [x.dtype.name for x in leaves])


def update_kwargs(extras, value, grads, loss):
    if extras is None:
        return {}
    if extras == "value":
        return {"value": value}
    if extras == "linesearch":
        return {"value": value, "grad": grads, "value_fn": loss}
    raise ValueError(f"unknown extras {extras!r}")


def run_case(jax, jnp, optax, cases, make, extras, cdt, rdt):
    """``(trajectory, first gradients, leaf dtypes, state dtypes)`` of one case."""
    params = cases.make_params(jnp, cdt, rdt)
    loss = cases.make_loss(jnp)
    tx = make(optax)
    state = tx.init(params)
    steps, grads0 = [], None
    for _ in range(cases.STEPS):
        value, grads = jax.value_and_grad(loss)(params)
        grads0 = flat(jax, grads)[0] if grads0 is None else grads0
        updates, state = tx.update(grads, state, params,
                                   **update_kwargs(extras, value, grads, loss))
        params = optax.apply_updates(params, updates)
        steps.append(flat(jax, params))
    state_dtypes = sorted(np.asarray(x).dtype.name for x in jax.tree.leaves(state))
    return np.stack([v for v, _ in steps]), grads0, steps[-1][1], ",".join(state_dtypes)


def put(out, key, x):
    """Stores ``x`` (an array, or a dict of them, one key per entry) under ``key``."""
    if isinstance(x, dict):
        for k, v in x.items():
            put(out, f"{key}:{k}", v)
    else:
        out[key] = np.asarray(x)


def record_precision(out, p, jax, jnp, optax, cases, cdt, rdt):
    names = list(cases.CASES)
    runs = [run_case(jax, jnp, optax, cases, *cases.CASES[name], cdt, rdt) for name in names]
    out[f"{p}:cases"] = np.asarray(names)
    for i, key in enumerate(("trajectories", "grads0", "leaf_dtypes", "state_dtypes")):
        out[f"{p}:{key}"] = np.asarray([run[i] for run in runs])
    params = cases.make_params(jnp, cdt, rdt)
    errors = []
    for make in cases.ERROR_CASES.values():
        error = ""
        try:
            tx = make(optax)
            tx.update(params, tx.init(params), params)
        except Exception as e:  # noqa: BLE001 (the type is what is recorded)
            error = type(e).__name__
        errors.append(error)
    out[f"{p}:error_cases"] = np.asarray(list(cases.ERROR_CASES))
    out[f"{p}:errors"] = np.asarray(errors)
    for name, f in cases.TREE_FUNCTIONS.items():
        put(out, f"{p}:tree_functions:{name}", f(optax, jnp, params))


def record():
    import jax
    import jax.numpy as jnp
    import optax

    import optax_complex_cases as cases

    out = {"jax_version": np.asarray(jax.__version__),
           "optax_version": np.asarray(optax.__version__)}
    for precision, (cdt, rdt) in PRECISIONS.items():  # float32 first, with x64 still off
        jax.config.update("jax_enable_x64", precision == "float64")
        record_precision(out, precision, jax, jnp, optax, cases, cdt, rdt)
    np.savez_compressed(os.path.join(DATA, "optax_complex.npz"), **out)


if __name__ == "__main__":
    record()
