"""Port: the empirical neural tangent kernel of a small MLP, in the style of the
empirical-NTK recipes of the neural-tangents library and the "Fast Finite Width Neural
Tangent Kernel" paper's JAX code.

The network's parameters are a list of `(W, b)` dicts. The NTK
`K(x1, x2) = J(x1) J(x2)^T` is computed three ways: by `jax.jacrev` of the network over
the parameter pytree with the per-leaf contractions summed, by `jax.jacfwd` on the
parameters flattened with `jax.flatten_util.ravel_pytree`, and by NTK-vector products
(`jax.jvp` of the network after `jax.vjp`, never materialising the Jacobian), all under
`vmap` over inputs. Kernel regression then predicts test outputs with
`jnp.linalg.solve` and with `jax.scipy.linalg.cho_factor`/`cho_solve`, and the
linearised network's gradient-flow prediction at time t uses `jnp.linalg.eigh`.
"""

import importlib

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax, jsp):
    # `from jax.flatten_util import ravel_pytree`, for whichever library `jax` names
    ravel_pytree = importlib.import_module(jax.__name__ + ".flatten_util").ravel_pytree

    sizes = [2, 16, 16, 1]
    keys = jax.random.split(jax.random.key(0), len(sizes))
    params = []
    for k, (m, n) in zip(keys, zip(sizes[:-1], sizes[1:])):
        kw, kb = jax.random.split(k)
        params.append({"W": jax.random.normal(kw, (m, n)) / jnp.sqrt(m),
                       "b": 0.1 * jax.random.normal(kb, (n,))})

    def net(params, x):
        h = x
        for layer in params[:-1]:
            h = jnp.tanh(h @ layer["W"] + layer["b"])
        out = h @ params[-1]["W"] + params[-1]["b"]
        return out[..., 0]

    x_train = jnp.stack([jnp.linspace(-2.0, 2.0, 10), jnp.sin(jnp.linspace(0, 3, 10))], 1)
    y_train = jnp.cos(2.0 * x_train[:, 0]) + 0.3 * x_train[:, 1]
    x_test = jax.random.uniform(keys[-1], (5, 2), minval=-2.0, maxval=2.0)

    # 1. Jacobian contraction over the pytree (jacrev; one row per input).
    def ntk_jacrev(params, x1, x2):
        j1 = jax.jacrev(net)(params, x1)
        j2 = jax.jacrev(net)(params, x2)
        prods = jax.tree.map(
            lambda a, b: jnp.einsum("i...,j...->ij", a.reshape(a.shape[0], -1),
                                    b.reshape(b.shape[0], -1)), j1, j2)
        return sum(jax.tree.leaves(prods))

    # 2. Flattened parameters and forward mode.
    flat, unravel = ravel_pytree(params)

    def net_flat(flat, x):
        return net(unravel(flat), x)

    def ntk_jacfwd(flat, x1, x2):
        j1 = jax.vmap(jax.jacfwd(net_flat), in_axes=(None, 0))(flat, x1)
        j2 = jax.vmap(jax.jacfwd(net_flat), in_axes=(None, 0))(flat, x2)
        return j1 @ j2.T

    # 3. NTK-vector products: K(x1, x2) v = J1 (J2^T v), via vjp then jvp.
    def ntk_vp(params, x1, x2, v):
        _, vjp_fn = jax.vjp(lambda p: net(p, x2), params)
        (ct,) = vjp_fn(v)
        _, out = jax.jvp(lambda p: net(p, x1), (params,), (ct,))
        return out

    k_train = jax.jit(ntk_jacrev)(params, x_train, x_train)
    k_fwd = ntk_jacfwd(flat, x_train, x_train)
    k_test = ntk_jacrev(params, x_test, x_train)
    eye = jnp.eye(x_train.shape[0])
    k_cols = jax.vmap(lambda v: ntk_vp(params, x_train, x_train, v))(eye)

    # Kernel regression on the residuals of the network at initialisation.
    f0_train = net(params, x_train)
    f0_test = net(params, x_test)
    reg = 1e-3
    alpha = jnp.linalg.solve(k_train + reg * eye, y_train - f0_train)
    pred_solve = f0_test + k_test @ alpha
    cho = jsp.linalg.cho_factor(k_train + reg * eye, lower=True)
    pred_cho = f0_test + k_test @ jsp.linalg.cho_solve(cho, y_train - f0_train)

    # Linearised gradient flow on the MSE: f_t = f_0 + K_* K^{-1} (I - e^{-eta K t}) r.
    evals, evecs = jnp.linalg.eigh(k_train)

    def predict_at(t, eta=0.5):
        decay = (1.0 - jnp.exp(-eta * evals * t)) / evals
        coeff = evecs @ (decay * (evecs.T @ (y_train - f0_train)))
        return f0_test + k_test @ coeff, f0_train + k_train @ coeff

    times = jnp.array([0.0, 1.0, 10.0, 100.0])
    test_t, train_t = jax.vmap(predict_at)(times)
    train_mse = jnp.mean((train_t - y_train) ** 2, axis=1)

    # The NTK trace and its gradient w.r.t. the first-layer weights.
    def ntk_trace(params):
        return jnp.trace(ntk_jacrev(params, x_train, x_train))

    trace_grad = jax.grad(ntk_trace)(params)

    return {"k_train": k_train, "k_fwd": k_fwd, "k_test": k_test, "k_cols": k_cols,
            "n_params": jnp.array(flat.size), "pred_solve": pred_solve,
            "pred_cho": pred_cho, "evals": evals, "test_t": test_t,
            "train_mse": train_mse, "trace_grad_W0": trace_grad[0]["W"],
            "trace_grad_b2": trace_grad[2]["b"]}


def test_ntk_matches_jax():
    got, _ = check_against_jax("test_jax_sci_ntk", program, rtol=2e-3, atol=2e-4,
                               overrides={"evals": (2e-3, 1e-3)})
    np.testing.assert_allclose(got["k_fwd"], got["k_train"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["k_cols"], got["k_train"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["pred_cho"], got["pred_solve"], rtol=1e-3, atol=1e-4)
    assert np.all(np.diff(got["train_mse"]) <= 1e-6)
