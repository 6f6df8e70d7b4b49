"""Port: t-SNE (van der Maaten & Hinton, 2008) written with JAX and optax, as in the
"t-SNE in JAX" notebooks.

Each point's Gaussian bandwidth is found by bisection on the log-precision so that the
conditional distribution's entropy matches log(perplexity): a `lax.while_loop` per point,
run for all points at once under `vmap` (so the loop runs until every point converges).
The affinities are symmetrised, the embedding uses the Student-t kernel, and the KL
gradient is taken by `jax.grad` (checked against the closed-form t-SNE gradient). The
optimiser is `optax.inject_hyperparams(optax.sgd)(momentum=...)` with the learning rate
and an early-exaggeration factor changed between phases through the injected
hyperparameters (`opt_state.hyperparams`), as the original algorithm schedules them.
"""

import numpy as np

from _jax_port import check_against_optax

N, DIM, OUT = 36, 5, 2


def program(jax, jnp, lax, optax):
    k_x, k_y = jax.random.split(jax.random.key(5))
    centres = 4.0 * jnp.eye(DIM)[:3]
    x = jnp.repeat(centres, N // 3, axis=0) + jax.random.normal(k_x, (N, DIM))
    d2 = jnp.sum((x[:, None] - x[None]) ** 2, -1)
    perplexity = 8.0
    target = jnp.log(perplexity)

    def cond_probs(d_row, beta, i):
        logits = jnp.where(jnp.arange(N) == i, -jnp.inf, -d_row * beta)
        return jax.nn.softmax(logits)

    def entropy(p):
        return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))

    def find_beta(d_row, i):
        def cond(s):
            lo, hi, it = s
            return jnp.logical_and(hi - lo > 1e-5, it < 100)

        def body(s):
            lo, hi, it = s
            mid = 0.5 * (lo + hi)
            h = entropy(cond_probs(d_row, jnp.exp(mid), i))
            # Entropy falls as the precision grows: too high -> raise the precision.
            lo, hi = jnp.where(h > target, mid, lo), jnp.where(h > target, hi, mid)
            return lo, hi, it + 1

        lo, hi, it = lax.while_loop(cond, body, (jnp.float32(-10.0), jnp.float32(5.0), 0))
        return jnp.exp(0.5 * (lo + hi)), it

    betas, iters = jax.jit(jax.vmap(find_beta))(d2, jnp.arange(N))
    p_cond = jax.vmap(cond_probs)(d2, betas, jnp.arange(N))
    entropies = jax.vmap(entropy)(p_cond)
    p = (p_cond + p_cond.T) / (2 * N)

    def kl(y, p, exaggeration):
        dy = jnp.sum((y[:, None] - y[None]) ** 2, -1)
        w = jnp.where(jnp.eye(N, dtype=bool), 0.0, 1.0 / (1.0 + dy))
        q = w / w.sum()
        pe = exaggeration * p
        return jnp.sum(jnp.where(pe > 0, pe * (jnp.log(jnp.where(pe > 0, pe, 1.0))
                                               - jnp.log(jnp.where(pe > 0, q, 1.0))), 0.0))

    def analytic_grad(y, p):
        diff = y[:, None] - y[None]
        w = jnp.where(jnp.eye(N, dtype=bool), 0.0, 1.0 / (1.0 + jnp.sum(diff ** 2, -1)))
        q = w / w.sum()
        return 4.0 * jnp.sum(((p - q) * w)[:, :, None] * diff, axis=1)

    y0 = 1e-2 * jax.random.normal(k_y, (N, OUT))
    g_auto = jax.grad(kl)(y0 + 0.5 * jnp.arange(N * OUT).reshape(N, OUT) % 3, p, 1.0)
    g_closed = analytic_grad(y0 + 0.5 * jnp.arange(N * OUT).reshape(N, OUT) % 3, p)

    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=10.0, momentum=0.5)

    @jax.jit
    def run_phase(y, state, exaggeration, n_steps):
        def step(carry, _):
            y, state = carry
            loss, g = jax.value_and_grad(kl)(y, p, exaggeration)
            updates, state = opt.update(g, state, y)
            y = optax.apply_updates(y, updates)
            return (y - y.mean(0), state), loss
        (y, state), losses = lax.scan(step, (y, state), None, length=n_steps)
        return y, state, losses

    run_phase = jax.jit(run_phase.__wrapped__, static_argnums=3)
    state = opt.init(y0)
    y, state, early = run_phase(y0, state, 4.0, 40)
    state.hyperparams["momentum"] = jnp.asarray(0.8)
    state.hyperparams["learning_rate"] = jnp.asarray(20.0)
    y, state, late = run_phase(y, state, 1.0, 60)

    # Embedding quality: the nearest neighbour of each point lies in its own cluster.
    dy = jnp.sum((y[:, None] - y[None]) ** 2, -1) + jnp.diag(jnp.full(N, jnp.inf))
    labels = jnp.repeat(jnp.arange(3), N // 3)
    nn_agree = jnp.mean(labels[jnp.argmin(dy, 1)] == labels)
    return {"betas": betas, "iters": iters, "entropies": entropies, "P": p,
            "grad_auto": g_auto, "grad_closed": g_closed, "early_losses": early[::4],
            "late_losses": late[::4], "final_kl": kl(y, p, 1.0),
            "embedding_dist": jnp.sqrt(jnp.sum((y[:, None] - y[None]) ** 2, -1)),
            "nn_agreement": nn_agree,
            "lr_after": state.hyperparams["learning_rate"]}


def test_tsne_matches_optax():
    got, _ = check_against_optax("test_optax_ml_tsne", program, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(got["entropies"], np.log(8.0), atol=1e-3)
    np.testing.assert_allclose(got["grad_auto"], got["grad_closed"], rtol=1e-4, atol=1e-6)
    assert got["late_losses"][-1] < got["late_losses"][0]
    assert got["nn_agreement"] == 1.0
