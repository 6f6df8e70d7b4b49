"""Port: a recommender by low-rank matrix factorisation with missing ratings, solved two
ways as in the usual JAX/optax tutorials: alternating least squares (ALS) and adam.

ALS solves every user's (then every item's) ridge-regression normal equations with
`jnp.linalg.solve` under `vmap`, each row weighted by its observation mask. The same
objective is then minimised with `optax.chain(optax.clip_by_global_norm, optax.adamw)`
where the weight decay is applied through `optax.masked` only to the factor matrices (not
to the bias terms), inside a jitted `lax.scan` training loop; a separate
`optax.masked(optax.set_to_zero(), ...)` run freezes the biases. Both objectives, the
held-out RMSE and the factors' Gram matrices (invariant to the rotation ambiguity of a
factorisation) are compared.
"""

import numpy as np

from _jax_port import check_against_optax

N_USERS, N_ITEMS, RANK = 12, 10, 3


def program(jax, jnp, lax, optax):
    k_u, k_v, k_mask, k_noise, k_init = jax.random.split(jax.random.key(11), 5)
    u_true = jax.random.normal(k_u, (N_USERS, RANK))
    v_true = jax.random.normal(k_v, (N_ITEMS, RANK))
    ratings = u_true @ v_true.T + 0.1 * jax.random.normal(k_noise, (N_USERS, N_ITEMS))
    observed = jax.random.uniform(k_mask, (N_USERS, N_ITEMS)) < 0.6
    train = observed.astype(jnp.float32)
    test = 1.0 - train
    lam = 0.1

    def objective(u, v):
        resid = (ratings - u @ v.T) * train
        return 0.5 * jnp.sum(resid ** 2) + 0.5 * lam * (jnp.sum(u ** 2) + jnp.sum(v ** 2))

    def solve_rows(other, r, mask):
        # One ridge problem per row: (O^T diag(m) O + lam I) x = O^T (m * r).
        def one(r_row, m_row):
            gram = (other * m_row[:, None]).T @ other + lam * jnp.eye(RANK)
            return jnp.linalg.solve(gram, other.T @ (m_row * r_row))
        return jax.vmap(one)(r, mask)

    @jax.jit
    def als_sweep(uv, _):
        u, v = uv
        u = solve_rows(v, ratings, train)
        v = solve_rows(u, ratings.T, train.T)
        return (u, v), objective(u, v)

    k1, k2 = jax.random.split(k_init)
    u0 = 0.3 * jax.random.normal(k1, (N_USERS, RANK))
    v0 = 0.3 * jax.random.normal(k2, (N_ITEMS, RANK))
    (u_als, v_als), als_trace = lax.scan(als_sweep, (u0, v0), None, length=12)

    # Gradient-based fit with biases; weight decay only on the factor matrices.
    params = {"u": u0, "v": v0, "user_bias": jnp.zeros(N_USERS),
              "item_bias": jnp.zeros(N_ITEMS), "offset": jnp.zeros(())}

    def predict(p):
        return (p["u"] @ p["v"].T + p["user_bias"][:, None] + p["item_bias"][None, :]
                + p["offset"])

    def loss(p):
        return 0.5 * jnp.sum(((ratings - predict(p)) * train) ** 2) / train.sum()

    decay_mask = jax.tree_util.tree_map_with_path(
        lambda path, _: path[0].key in ("u", "v"), params)
    opt = optax.chain(
        optax.clip_by_global_norm(5.0),
        optax.scale_by_adam(b1=0.9, b2=0.99),
        optax.masked(optax.add_decayed_weights(1e-3), decay_mask),
        optax.scale_by_learning_rate(optax.exponential_decay(0.05, 100, 0.5)),
    )

    def make_train(opt, steps):
        @jax.jit
        def train_loop(p):
            def step(carry, _):
                p, s = carry
                l, g = jax.value_and_grad(loss)(p)
                updates, s = opt.update(g, s, p)
                return (optax.apply_updates(p, updates), s), l
            (p, _), losses = lax.scan(step, (p, opt.init(p)), None, length=steps)
            return p, losses
        return train_loop

    p_adam, adam_losses = make_train(opt, 300)(params)

    frozen = optax.chain(
        optax.masked(optax.set_to_zero(),
                     {"u": False, "v": False, "user_bias": True, "item_bias": True,
                      "offset": True}),
        optax.adam(0.05))
    p_frozen, frozen_losses = make_train(frozen, 100)(params)

    def rmse(pred, mask):
        return jnp.sqrt(jnp.sum(((ratings - pred) * mask) ** 2) / mask.sum())

    return {"ratings": ratings, "observed": observed, "als_trace": als_trace,
            "als_gram_u": u_als.T @ u_als, "als_pred": u_als @ v_als.T,
            "als_test_rmse": rmse(u_als @ v_als.T, test),
            "adam_losses": adam_losses[::10], "adam_pred": predict(p_adam),
            "adam_objective": objective(p_adam["u"], p_adam["v"]),
            "adam_test_rmse": rmse(predict(p_adam), test),
            "adam_biases": (p_adam["user_bias"], p_adam["item_bias"], p_adam["offset"]),
            "frozen_losses": frozen_losses[::10], "frozen_bias": p_frozen["user_bias"]}


def test_matrix_factorization_matches_optax():
    got, _ = check_against_optax("test_optax_ml_matrix_factorization", program,
                                 rtol=2e-3, atol=2e-4)
    assert np.all(np.diff(got["als_trace"]) <= 1e-3)  # ALS is monotone
    assert got["adam_losses"][-1] < 0.1 * got["adam_losses"][0]
    np.testing.assert_array_equal(got["frozen_bias"], 0.0)
