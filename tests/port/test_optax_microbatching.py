"""Port: optax.microbatching (microbatch, micro_vmap, micro_grad, reshape_batch_axis).

A program in the style of optax's microbatching docs and tests: a batch split into
microbatches evaluated one after another and combined with each AccumulationType (SUM,
MEAN, RUNNING_MEAN, CONCAT), a pytree of them, and a custom Accumulator; keyword batch
arguments, batch axes other than 0, early stopping with `num_real_microbatches` (a
Python int and a traced one under `jax.jit`); `micro_vmap`; `micro_grad` (the docstring's
example, per-example gradient clipping as in DP-SGD); and two small training runs of 20
steps with optax optimizers, one on the gradient of a microbatched mean loss, one on
clipped per-example gradients. Checked against optax 0.2.8: every output, the losses and
the final parameters.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    mb = optax.microbatching
    acc = mb.AccumulationType
    rs = np.random.RandomState(0)
    xs = rs.normal(size=(12, 3)).astype(np.float32)
    ys = (np.sin(xs @ np.array([1.0, -2.0, 0.5])) + 0.1 * rs.normal(size=12)).astype(
        np.float32)
    xs, ys = jnp.asarray(xs), jnp.asarray(ys)
    out = {}

    # --- microbatch with each accumulation type ---------------------------------------
    def stats(w, x, y):
        pred = jnp.tanh(x @ w)
        return {"err": pred - y, "sse": jnp.sum((pred - y) ** 2),
                "mean": jnp.mean(pred * y)}

    w0 = jnp.asarray([0.3, -0.2, 0.4])
    tree_acc = {"err": acc.CONCAT, "sse": acc.SUM, "mean": acc.MEAN}
    out["tree"] = mb.microbatch(stats, argnums=(1, 2), microbatch_size=4,
                                accumulator=tree_acc)(w0, xs, ys)
    out["full"] = stats(w0, xs, ys)
    for kind in ("SUM", "MEAN", "RUNNING_MEAN"):
        f = mb.microbatch(lambda x: jnp.mean(x ** 2, axis=0), argnums=0,
                          microbatch_size=3, accumulator=getattr(acc, kind))
        out[f"kind_{kind}"] = f(xs)
        out[f"early_{kind}"] = mb.microbatch(
            lambda x: jnp.mean(x ** 2, axis=0), argnums=0, microbatch_size=3,
            accumulator=getattr(acc, kind), num_real_microbatches=3)(xs)
    out["early_CONCAT"] = mb.microbatch(lambda x: 2 * x, 0, 4, acc.CONCAT,
                                        num_real_microbatches=2)(xs)
    out["int_sum"] = mb.microbatch(jnp.sum, 0, 5)(jnp.arange(20))
    out["strided"] = mb.microbatch(lambda x: x[:-1] @ x[1:], 0, 3)(jnp.arange(6.0))
    out["reshaped"] = mb.reshape_batch_axis({"a": jnp.arange(24).reshape(2, 12)}, 4, axis=1)

    # keyword batch arguments and batch axis 1
    def corr(a, *, b):
        return jnp.einsum("bij,kbj->ik", a, b)

    a = jnp.asarray(rs.normal(size=(8, 2, 3)).astype(np.float32))
    b = jnp.transpose(a, (1, 0, 2))
    out["kwargs_axis1"] = mb.microbatch(corr, argnums=0, argnames="b", microbatch_size=2,
                                        in_axes=(0, 1), accumulator=acc.MEAN)(a, b=b)

    # a custom accumulator: the running maximum
    running_max = mb.Accumulator(
        init=lambda s: jnp.full(s.shape, -jnp.inf, s.dtype),
        update=lambda carry, value, index: jnp.maximum(carry, value),
        finalize=lambda carry: carry,
        aggregate=lambda values: jnp.max(values, axis=0))
    out["custom_max"] = mb.microbatch(lambda x: jnp.max(x, axis=0), 0, 2,
                                      (running_max))(xs)

    # early stopping with a traced count
    @jax.jit
    def partial_sum(x, steps):
        return mb.microbatch(jnp.sum, argnums=0, microbatch_size=4,
                             num_real_microbatches=steps)(x)

    out["dynamic"] = jnp.stack([partial_sum(jnp.arange(32.0), k) for k in (1, 3, 8)])

    # --- micro_vmap -------------------------------------------------------------------
    out["vmap_concat"] = mb.micro_vmap(lambda w, x: jnp.tanh(x @ w), in_axes=(None, 0),
                                       microbatch_size=3)(w0, xs)
    out["vmap_sum"] = mb.micro_vmap(jnp.sum, in_axes=1, microbatch_size=2,
                                    accumulator=acc.SUM)(jnp.transpose(xs))
    out["vmap_kwargs"] = mb.micro_vmap(lambda x, *, y: jnp.sum(x) * y, microbatch_size=4,
                                       accumulator=acc.MEAN)(xs, y=ys)
    out["vmap_max"] = mb.micro_vmap(lambda x: jnp.sum(x), microbatch_size=6,
                                    accumulator=running_max)(xs)
    out["vmap_early"] = mb.micro_vmap(jnp.sum, microbatch_size=4, num_real_microbatches=2,
                                      accumulator=acc.SUM)(xs)

    # --- micro_grad: the docstring's example -------------------------------------------
    def mean_squared_loss(params, features, targets):
        return 0.5 * jnp.mean((features @ params - targets) ** 2)

    (g, g2), aux = mb.micro_grad(
        mean_squared_loss, argnums=0, batch_argnums=(1, 2), accumulator=acc.MEAN,
        transform_fn=lambda x: (x, x ** 2), metrics_fn=jnp.linalg.norm,
    )(jnp.zeros(1), jnp.ones((4, 1)), jnp.array([0.0, 2.0, 4.0, 6.0]))
    out["doc"] = {"grads": g, "squared": g2, "values": aux.values, "metrics": aux.metrics}

    # --- training: adam on the gradient of a microbatched mean loss --------------------
    def loss(w, x, y):
        return jnp.mean((jnp.tanh(x @ w) - y) ** 2)

    mloss = mb.microbatch(loss, argnums=(1, 2), microbatch_size=4, accumulator=acc.MEAN)
    opt = optax.adam(0.05)

    @jax.jit
    def step(w, state):
        value, grads = jax.value_and_grad(mloss)(w, xs, ys)
        updates, state = opt.update(grads, state, w)
        return optax.apply_updates(w, updates), state, value

    w, state, losses = w0, opt.init(w0), []
    for _ in range(20):
        w, state, value = step(w, state)
        losses.append(value)
    out["adam"] = {"losses": jnp.stack(losses), "params": w}

    # --- training: sgd on clipped per-example gradients (DP-SGD without noise) --------
    def example_loss(p, x, y):
        pred = jnp.tanh(x @ p["w"]) * p["s"]
        return jnp.sum((pred - y) ** 2), pred

    def clip(g):
        norm = jnp.sqrt(sum(jnp.sum(v ** 2) for v in jax.tree.leaves(g)))
        return jax.tree.map(lambda v: v * jnp.minimum(1.0, 0.5 / norm), g)

    grad_fn = mb.micro_grad(example_loss, has_aux=True, batch_argnums=(1, 2),
                            microbatch_size=3, accumulator=acc.MEAN, transform_fn=clip,
                            metrics_fn=lambda g: jnp.abs(g["s"]))
    sgd = optax.sgd(0.5, momentum=0.5)

    @jax.jit
    def dp_step(p, state):
        grads, aux = grad_fn(p, xs, ys)
        updates, state = sgd.update(grads, state, p)
        return optax.apply_updates(p, updates), state, jnp.mean(aux.values), aux

    p = {"w": w0, "s": jnp.ones(1)}
    state, dp_losses = sgd.init(p), []
    for _ in range(20):
        p, state, value, aux = dp_step(p, state)
        dp_losses.append(value)
    out["dp"] = {"losses": jnp.stack(dp_losses), "params": p, "last_metrics": aux.metrics,
                 "last_preds": aux.aux}
    return out


def test_microbatching_matches_optax():
    got, _ = check_against_optax("test_optax_microbatching", program, rtol=2e-4, atol=2e-5)
    for key in ("err", "sse", "mean"):  # microbatched == full batch
        np.testing.assert_allclose(got[f"tree/{key}"], got[f"full/{key}"], rtol=1e-5,
                                   atol=1e-6)
    np.testing.assert_allclose(got["kind_MEAN"], got["kind_RUNNING_MEAN"], rtol=1e-5)
    for run in ("adam", "dp"):
        losses = got[f"{run}/losses"]
        assert losses[-1] < 0.8 * losses[0], (run, losses)
