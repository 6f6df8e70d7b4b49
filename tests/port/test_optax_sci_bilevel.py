"""Port: bilevel hyperparameter optimisation with optax, as in the hypergradient
tutorials users follow (optax's meta-learning guide, JAXopt's implicit-differentiation
examples rewritten without JAXopt).

The inner problem is an L2-regularised logistic regression whose per-feature strength
is `exp(log_lam)`. The validation loss's gradient with respect to `log_lam` comes two
ways: through an unrolled inner loop of `optax.sgd(momentum=0.9)` updates inside
`jax.lax.scan` (reverse mode through every step), and through the implicit function
theorem at the inner solution, solving `H v = grad_w val_loss` with
`jax.scipy.sparse.linalg.cg` on a Hessian-vector product (`jax.jvp` of `jax.grad`) and
then differentiating the inner gradient in `log_lam` with `jax.vjp`. An outer
`optax.chain(optax.clip_by_global_norm, optax.adam)` loop steps the hyperparameters on
the implicit hypergradient; `jax.vmap` sweeps a grid of scalar strengths.
"""

import importlib

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    lax = jax.lax
    sparse_linalg = importlib.import_module(jax.__name__ + ".scipy.sparse.linalg")

    d, n_train, n_val = 6, 40, 30
    kw, kx, kv, kn = jax.random.split(jax.random.key(11), 4)
    w_true = jax.random.normal(kw, (d,)) * jnp.array([2.0, 1.0, 0.5, 0.0, 0.0, 0.0])
    x_train = jax.random.normal(kx, (n_train, d))
    x_val = jax.random.normal(kv, (n_val, d))
    noise = 0.7 * jax.random.normal(kn, (n_train + n_val,))
    y_train = (x_train @ w_true + noise[:n_train] > 0).astype(jnp.float32)
    y_val = (x_val @ w_true + noise[n_train:] > 0).astype(jnp.float32)

    def logloss(w, x, y):
        logits = x @ w
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y))

    def inner_loss(w, log_lam):
        return logloss(w, x_train, y_train) + 0.5 * jnp.sum(jnp.exp(log_lam) * w ** 2)

    def val_loss(w):
        return logloss(w, x_val, y_val)

    inner_opt = optax.sgd(learning_rate=0.5, momentum=0.9)
    n_inner = 150

    def inner_solve(log_lam):
        w0 = jnp.zeros(d)

        def step(carry, _):
            w, state = carry
            g = jax.grad(inner_loss)(w, log_lam)
            updates, state = inner_opt.update(g, state, w)
            return (optax.apply_updates(w, updates), state), inner_loss(w, log_lam)

        (w, _), losses = lax.scan(step, (w0, inner_opt.init(w0)), None, length=n_inner)
        return w, losses

    def unrolled_objective(log_lam):
        w, _ = inner_solve(log_lam)
        return val_loss(w)

    def implicit_hypergrad(log_lam):
        w, _ = inner_solve(log_lam)
        w = lax.stop_gradient(w)
        grad_w = jax.grad(inner_loss)

        def hvp(v):
            return jax.jvp(lambda u: grad_w(u, log_lam), (w,), (v,))[1]

        g_val = jax.grad(val_loss)(w)
        v, _ = sparse_linalg.cg(hvp, g_val, tol=1e-7, maxiter=50)
        _, vjp_lam = jax.vjp(lambda lam: grad_w(w, lam), log_lam)
        (cross,) = vjp_lam(v)
        return val_loss(w), -cross

    log_lam0 = jnp.full((d,), jnp.log(0.1))
    w_star, inner_losses = jax.jit(inner_solve)(log_lam0)
    val0, hg_unrolled = jax.jit(jax.value_and_grad(unrolled_objective))(log_lam0)
    val0_implicit, hg_implicit = jax.jit(implicit_hypergrad)(log_lam0)

    # Outer loop on the implicit hypergradient.
    outer_opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(0.3))

    @jax.jit
    def outer_step(carry, _):
        log_lam, state = carry
        val, hg = implicit_hypergrad(log_lam)
        updates, state = outer_opt.update(hg, state, log_lam)
        return (optax.apply_updates(log_lam, updates), state), val

    (log_lam_end, _), outer_vals = lax.scan(
        outer_step, (log_lam0, outer_opt.init(log_lam0)), None, length=8)

    # A grid of scalar strengths: validation loss and its derivative.
    grid = jnp.linspace(-4.0, 1.0, 5)
    grid_val, grid_grad = jax.vmap(jax.value_and_grad(
        lambda s: unrolled_objective(jnp.full((d,), s))))(grid)

    return {"w_star": w_star, "inner_losses": inner_losses[::10], "val0": val0,
            "hg_unrolled": hg_unrolled, "val0_implicit": val0_implicit,
            "hg_implicit": hg_implicit, "log_lam_end": log_lam_end,
            "outer_vals": outer_vals, "grid_val": grid_val, "grid_grad": grid_grad}


def test_bilevel_matches_optax():
    got, _ = check_against_optax("test_optax_sci_bilevel", program, rtol=2e-3,
                                 atol=2e-5)
    # The unrolled and implicit hypergradients agree once the inner loop has converged.
    np.testing.assert_allclose(got["hg_implicit"], got["hg_unrolled"], rtol=2e-2,
                               atol=2e-4)
    assert got["outer_vals"][-1] < got["outer_vals"][0]
