"""Record JAX's values and gradients at the linalg cases into linalg_jax.npz.

Runs only where JAX is installed (tests never import JAX; they read the npz):

    python tools/reference/record_linalg.py
"""

from __future__ import annotations

import os

import numpy as np

from _recording import data_dir, jax_x64  # beside this script

DATA = data_dir("reference")  # read by the tests


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def record():
    jax = jax_x64()
    import jax.numpy as jnp
    import jax.scipy.linalg as jsl
    from linalg_cases import CASES, loss_term, weights

    data = {"jax_version": np.asarray(jax.__version__)}
    for name, (make, args) in CASES.items():
        f = make(jnp.linalg, jsl, jnp)
        xs = [jnp.asarray(a, dtype=jnp.result_type(a, jnp.float64)) for a in args]
        outs = _outputs(f(*xs))

        def loss(*a):
            return sum(loss_term(jnp, jnp.asarray(weights(o.shape, i)), o)
                       for i, o in enumerate(_outputs(f(*a))))

        for i, o in enumerate(outs):
            data[f"{name}/out{i}"] = np.asarray(o)
        try:
            grads = jax.grad(loss, argnums=tuple(range(len(xs))))(*xs)
        except (NotImplementedError, ValueError):  # JAX cannot differentiate this one
            continue
        for i, g in enumerate(grads):
            data[f"{name}/grad{i}"] = np.asarray(g)
    np.savez_compressed(os.path.join(DATA, "linalg_jax.npz"), **data)


if __name__ == "__main__":
    record()
