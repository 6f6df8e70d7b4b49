"""Port: optax.contrib's SAM, normalize, complex splitting, DP-SGD, ACProp, Sophia and GaLore
(`optax/contrib/_sam.py`, `_complex_valued.py`, `_privacy.py`, `_acprop.py`, `_sophia.py`,
`_galore.py` and their tests, google-deepmind/optax repository).

Each optimizer runs up to 20 steps (SAM: 40 calls, half of them adversarial) on the
small problem of test_optax_aliases.py (a parabola plus a Rosenbrock-like term on a
pytree with a vector and a matrix leaf), with optax's defaults and with other settings:
SAM in optax's two-call loop (eager and jitted, several sync periods, with and without
state resets) and in opaque mode with `grad_fn`; Sophia with `obj_fn` and Hutchinson
probes from a given key; GaLore with left and right projections, dimension numbers and
a 3-d leaf. DP-SGD runs on per-example gradients from `vmap(grad)`: its noise comes from
the PRNG keys, so matching optax checks that nanofn.random's threefry split and normal
give JAX's numbers. Complex parameters go through `split_real_and_imaginary` with
conjugated gradients, as in optax's test. Checked against optax: every loss along each
trajectory, the final parameters, the DP aggregate of one batch (noise included), one
Hutchinson estimate and GaLore's projectors.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    contrib = optax.contrib
    params0 = {"v": jnp.asarray([1.0, -1.5, 0.5]),
               "m": jnp.asarray(np.linspace(-1.0, 1.0, 6, dtype=np.float32).reshape(2, 3))}

    def loss(p):
        v, m = p["v"], p["m"]
        return (jnp.sum((v - 0.3) ** 2) + 0.5 * jnp.sum((m[1:] - m[:-1] ** 2) ** 2)
                + jnp.sum((1.0 - m) ** 2) + 0.1 * jnp.sum(v * m[0]))

    def run(opt, steps=20, extra=None, jit=False, params=None, loss_fn=loss):
        params = params0 if params is None else params
        state = opt.init(params)
        losses = []

        def step(params, state):
            value, grad = jax.value_and_grad(loss_fn)(params)
            kwargs = extra(params) if extra is not None else {}
            updates, state = opt.update(grad, state, params, **kwargs)
            return optax.apply_updates(params, updates), state, value

        if jit:
            step = jax.jit(step)
        for _ in range(steps):
            params, state, value = step(params, state)
            losses.append(value)
        return {"losses": jnp.stack(losses), "params": params}, state

    cases = {}

    # --- SAM: optax's two-call loop (non-opaque), and the opaque mode with grad_fn ----------
    adv_sgd = optax.chain(contrib.normalize(), optax.sgd(0.05))
    cases["sam_sgd"], _ = run(contrib.sam(optax.sgd(0.05), adv_sgd), steps=40)
    cases["sam_sgd_jit"], _ = run(contrib.sam(optax.sgd(0.05), adv_sgd), steps=40, jit=True)
    cases["sam_adam_sync3_keep"], st = run(
        contrib.sam(optax.adam(0.05), optax.chain(contrib.normalize(), optax.adam(0.02)),
                    sync_period=3, reset_state=False), steps=40)
    cases["sam_adam_sync3_keep"]["steps_since_sync"] = st.steps_since_sync
    cases["sam_adam_sync3_keep"]["adv_mu"] = st.adv_state[1][0].mu
    cases["sam_momentum_sync4"], _ = run(
        contrib.sam(optax.sgd(0.05, momentum=0.9), optax.chain(contrib.normalize(),
                                                                optax.adam(0.02)),
                    sync_period=4), steps=40)
    grad_fn = lambda p, _: jax.grad(loss)(p)  # noqa: E731
    cases["sam_opaque"], _ = run(contrib.sam(optax.sgd(0.05), adv_sgd, opaque_mode=True),
                                 extra=lambda p: {"grad_fn": grad_fn})
    cases["sam_opaque_sync3_jit"], _ = run(
        contrib.sam(optax.adam(0.05), optax.chain(contrib.normalize(), optax.adam(0.02)),
                    sync_period=3, opaque_mode=True, reset_state=False),
        extra=lambda p: {"grad_fn": grad_fn}, jit=True)
    cases["normalize_sgd"], _ = run(optax.chain(contrib.normalize(), optax.sgd(0.1)))

    # --- ACProp --------------------------------------------------------------------------
    cases["acprop"], _ = run(contrib.acprop(0.1))
    cases["acprop_wd"], _ = run(contrib.acprop(0.05, b1=0.8, b2=0.99, eps=1e-8, eps_root=0.0,
                                               weight_decay=0.01, mask={"v": True, "m": False}))

    # --- Sophia with Hutchinson's estimator ------------------------------------------------
    obj = lambda p: {"obj_fn": loss}  # noqa: E731
    cases["sophia"], st = run(contrib.sophia(0.05), extra=obj)
    cases["sophia"]["nu"] = st[0].nu
    cases["sophia_custom"], st = run(contrib.sophia(
        0.1, b1=0.9, b2=0.95, weight_decay=0.0, gamma=0.05, update_interval=3,
        hessian_diagonal_fn=contrib.hutchinson_estimator_diag_hessian(jax.random.PRNGKey(5))),
        extra=obj, jit=True)
    cases["sophia_custom"]["nu"] = st[0].nu
    # unclipped, the first step divides by eps (the Hessian average starts at 0)
    cases["sophia_noclip"], _ = run(contrib.sophia(0.1, eps=1.0, clip_threshold=None,
                                                   gamma=1.0), extra=obj)
    hutch = contrib.hutchinson_estimator_diag_hessian(jax.random.PRNGKey(11))
    hstate = hutch.init(params0)
    estimates = []
    for _ in range(3):
        estimate, hstate = hutch.update(params0, hstate, params0, obj_fn=loss)
        estimates.append(estimate)
    cases["hutchinson"] = {"estimates": estimates, "key": hstate.key}

    # --- GaLore ------------------------------------------------------------------------------
    cases["galore"], st = run(contrib.galore(0.05))
    cases["galore"]["projector"] = st[0].projector["m"]
    cases["galore_rank1_gap5"], st = run(contrib.galore(0.05, rank=1, update_proj_gap=5))
    cases["galore_rank1_gap5"]["projector"] = st[0].projector["m"]
    dims = {"v": None, "m": contrib.GaLoreDimensionNumbers(reduction_axis=1, output_axis=0)}
    cases["galore_dims"], st = run(contrib.galore(
        0.05, rank=1, update_proj_gap=3, scale=0.5,
        base_optimizer=optax.scale_by_adam(b1=0.8), weight_decay=0.01,
        weight_dimension_numbers=dims), jit=True)
    cases["galore_dims"]["projector"] = st[0].projector["m"]

    t0 = jnp.asarray(np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(2, 2, 3))
    target = jnp.asarray(np.cos(np.arange(12, dtype=np.float32)).reshape(2, 2, 3))

    def loss3(p):
        t = p["t"]
        return jnp.sum((t - target) ** 2) + 0.1 * jnp.sum(t ** 4) + jnp.sum(p["b"] ** 2)

    p3 = {"t": t0, "b": jnp.asarray([0.5, -0.5])}
    cases["galore_3d"], st = run(contrib.galore(
        0.1, rank=2, update_proj_gap=4,
        weight_dimension_numbers=contrib.GaLoreDimensionNumbers(0, (1, 2))),
        params=p3, loss_fn=loss3)
    cases["galore_3d"]["projector"] = st[0].projector["t"]

    # --- complex parameters: conjugated gradients through split_real_and_imaginary ----------
    z0 = {"z": jnp.asarray([0.5 + 1.0j, -1.0 + 0.2j, 0.3 - 0.7j], dtype=jnp.complex64),
          "r": jnp.asarray([0.2, -0.4])}
    zc = jnp.asarray([1.0 - 0.5j, 0.2 + 0.3j, -0.6 + 0.1j], dtype=jnp.complex64)

    def loss_c(p):
        d = p["z"] - zc
        return (jnp.sum(jnp.real(d * jnp.conj(d))) + 0.1 * jnp.sum(jnp.real(d * d * d))
                + jnp.sum((p["r"] - 1.0) ** 2))

    def run_complex(inner, steps=20):
        opt = contrib.split_real_and_imaginary(inner)
        params, state, losses = z0, opt.init(z0), []
        for _ in range(steps):
            value, grad = jax.value_and_grad(loss_c)(params)
            grad = jax.tree_util.tree_map(jnp.conj, grad)
            updates, state = opt.update(grad, state, params)
            params = optax.apply_updates(params, updates)
            losses.append(value)
        return {"losses": jnp.stack(losses), "params": params}

    cases["complex_adam"] = run_complex(optax.adam(0.05))
    cases["complex_block_norm"] = run_complex(optax.chain(optax.scale_by_param_block_norm(),
                                                          optax.sgd(0.02)))

    # --- DP-SGD: per-example gradients of a small regression ------------------------------------
    rs = np.random.RandomState(0)
    xs = jnp.asarray(rs.normal(size=(8, 3)).astype(np.float32))
    ys = xs @ jnp.asarray([1.0, -2.0, 0.5]) + 0.3
    w0 = {"w": jnp.asarray([0.5, -0.5, 0.2]), "b": jnp.asarray(0.1)}

    def example_loss(p, x, y):
        return (jnp.dot(p["w"], x) + p["b"] - y) ** 2

    def batch_loss(p):
        return jnp.mean(jax.vmap(example_loss, in_axes=(None, 0, 0))(p, xs, ys))

    per_example_grads = jax.vmap(jax.grad(example_loss), in_axes=(None, 0, 0))

    def run_dp(opt, steps=20):
        params, state, losses = w0, opt.init(w0), []
        for _ in range(steps):
            losses.append(batch_loss(params))
            updates, state = opt.update(per_example_grads(params, xs, ys), state, params)
            params = optax.apply_updates(params, updates)
        return {"losses": jnp.stack(losses), "params": params}

    cases["dpsgd"] = run_dp(contrib.dpsgd(0.1, l2_norm_clip=1.0, noise_multiplier=0.3, seed=0))
    cases["dpsgd_momentum"] = run_dp(contrib.dpsgd(0.05, l2_norm_clip=0.5, noise_multiplier=1.1,
                                                   seed=42, momentum=0.9, nesterov=True))
    agg = contrib.differentially_private_aggregate(l2_norm_clip=0.8, noise_multiplier=2.0,
                                                    key=jax.random.key(3))
    astate = agg.init(w0)
    aggregates = []
    for _ in range(2):
        out, astate = agg.update(per_example_grads(w0, xs, ys), astate)
        aggregates.append(out)
    no_noise = contrib.differentially_private_aggregate(l2_norm_clip=1e9,
                                                        noise_multiplier=0.0, key=7)
    cases["dp_aggregate"] = {
        "noised": aggregates,
        "clip_only": no_noise.update(per_example_grads(w0, xs, ys), no_noise.init(w0))[0],
        "mean_grad": jax.grad(batch_loss)(w0),
    }
    return cases


def test_optax_contrib_sam_misc_match_optax():
    got, _ = check_against_optax("test_optax_contrib_sam_misc", program, rtol=2e-4,
                                 atol=2e-5)
    for name in ("sam_sgd", "sam_opaque", "sam_momentum_sync4", "acprop", "acprop_wd",
                 "sophia", "sophia_custom", "galore", "galore_rank1_gap5", "galore_dims",
                 "galore_3d", "complex_adam", "complex_block_norm", "dpsgd", "dpsgd_momentum",
                 "normalize_sgd", "sophia_noclip"):
        assert got[f"{name}/losses"][-1] < got[f"{name}/losses"][0], name
    # the jitted SAM loop gives the eager one's trajectory
    np.testing.assert_allclose(got["sam_sgd_jit/losses"], got["sam_sgd/losses"], rtol=1e-6)
    # no noise and no clipping: the aggregate is the mean gradient
    for leaf in ("w", "b"):
        np.testing.assert_allclose(got[f"dp_aggregate/clip_only/{leaf}"],
                                   got[f"dp_aggregate/mean_grad/{leaf}"], rtol=1e-5, atol=1e-6)
    assert int(got["sam_adam_sync3_keep/steps_since_sync"]) == 40 % 3
