"""Port: per-example gradients, clipping and gradient statistics in JAX, as users write
differentially private training and data-attribution tools (the pattern of the JAX
"per-example gradients" FAQ and of DP-SGD written without a library).

A two-layer MLP regressor on a synthetic dataset; per-example gradients by
`vmap(grad(loss), in_axes=(None, 0, 0))`; per-example global norms through
`jax.tree.leaves`/`jax.tree.reduce`; clipping by `jax.tree.map` with a broadcast scale;
noise added leaf by leaf with keys from `jax.random.split` over `jax.tree.structure`
(`jax.tree.unflatten`); layer-wise norms keyed by path
(`jax.tree_util.tree_flatten_with_path`, `keystr`). Per-example losses are evaluated
by `lax.map` with `batch_size` and gradient similarities (a TracIn-style influence
score) by `jax.flatten_util.ravel_pytree` of the per-example gradients. Trained for a
few `jit`ted DP-SGD steps.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp):
    import importlib
    lax = jax.lax
    # `from jax.flatten_util import ravel_pytree`, for whichever library `jax` names
    ravel_pytree = importlib.import_module(jax.__name__ + ".flatten_util").ravel_pytree
    rs = np.random.RandomState(13)
    n, d = 40, 5
    x = jnp.asarray(rs.normal(size=(n, d)), jnp.float32)
    y = jnp.asarray(np.tanh(rs.normal(size=(n,))) + 0.5 * np.asarray(x[:, 0]), jnp.float32)

    k1, k2 = jax.random.split(jax.random.PRNGKey(8))
    params = {"hidden": {"kernel": jax.random.normal(k1, (d, 12)) / jnp.sqrt(float(d)),
                         "bias": jnp.zeros(12)},
              "head": {"kernel": jax.random.normal(k2, (12,)) / jnp.sqrt(12.0),
                       "bias": jnp.zeros(())}}

    def predict(params, xi):
        h = jax.nn.gelu(xi @ params["hidden"]["kernel"] + params["hidden"]["bias"])
        return h @ params["head"]["kernel"] + params["head"]["bias"]

    def loss(params, xi, yi):
        return 0.5 * (predict(params, xi) - yi) ** 2

    per_example_grad = jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))

    def global_norms(grads):
        squares = jax.tree.map(lambda g: jnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=1), grads)
        return jnp.sqrt(jax.tree.reduce(jnp.add, squares))

    def clip(grads, max_norm):
        norms = global_norms(grads)
        scale = jnp.minimum(1.0, max_norm / (norms + 1e-6))
        return jax.tree.map(lambda g: g * scale.reshape((-1,) + (1,) * (g.ndim - 1)), grads)

    def noisy_mean(grads, key, noise):
        leaves, treedef = jax.tree.flatten(grads)
        keys = jax.random.split(key, len(leaves))
        noised = [jnp.sum(g, 0) + noise * jax.random.normal(k, g.shape[1:])
                  for g, k in zip(leaves, keys)]
        return jax.tree.unflatten(treedef, [g / grads_count for g in noised])

    grads_count = 20

    @jax.jit
    def dp_step(params, key, xb, yb):
        grads = clip(per_example_grad(params, xb, yb), 1.0)
        update = noisy_mean(grads, key, 0.5)
        return jax.tree.map(lambda p, u: p - 0.1 * u, params, update)

    key = jax.random.PRNGKey(0)
    grads0 = per_example_grad(params, x, y)
    norms0 = global_norms(grads0)
    clipped_norms = global_norms(clip(grads0, 1.0))
    for i in range(6):
        key, sub = jax.random.split(key)
        batch = slice((i % 2) * 20, (i % 2) * 20 + 20)
        params = dp_step(params, sub, x[batch], y[batch])

    per_loss = lax.map(lambda xy: loss(params, xy[0], xy[1]), (x, y), batch_size=8)
    grads = per_example_grad(params, x, y)
    flat = jax.vmap(lambda g: ravel_pytree(g)[0])(grads)
    test_grad, unravel = ravel_pytree(jax.grad(loss)(params, x[0] * 0.5, y[0]))
    influence = flat @ test_grad
    layer_norms = {jax.tree_util.keystr(path): jnp.linalg.norm(leaf.reshape(n, -1), axis=1)
                   for path, leaf in jax.tree_util.tree_flatten_with_path(grads)[0]}
    return {"norms0": norms0, "clipped_norms": clipped_norms, "params": params,
            "per_loss": per_loss, "influence": influence, "layer_norms": layer_norms,
            "top_influence": jnp.argsort(-influence)[:5],
            "unravelled": unravel(test_grad)}


def test_per_example_gradients_matches_jax():
    got, _ = check_against_jax("test_jax_per_example_gradients", program, rtol=2e-3,
                               atol=2e-4)
    assert np.all(got["clipped_norms"] <= 1.0 + 1e-5)
    assert sorted(k for k in got if k.startswith("layer_norms")) == [
        "layer_norms/['head']['bias']", "layer_norms/['head']['kernel']",
        "layer_norms/['hidden']['bias']", "layer_norms/['hidden']['kernel']"]
