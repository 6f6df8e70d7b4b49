"""optax.contrib's sam, normalize, split_real_and_imaginary, DP aggregation, ACProp, Sophia
and GaLore: the cases of optax's _sam_test.py, _complex_valued_test.py, _privacy_test.py
and _galore_test.py, eager-vs-jit equality, map_params over their states, and argument
errors."""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp
from nanofn import optim, tree_util

contrib = optim.contrib


def _leaves(tree):
    return [np.asarray(x) for x in tree_util.tree_leaves(tree)]


def _assert_trees_close(a, b, **kw):
    assert tree_util.tree_structure(a) == tree_util.tree_structure(b)
    for x, y in zip(_leaves(a), _leaves(b)):
        np.testing.assert_allclose(x, y, **kw)


# --- sam and normalize ----------------------------------------------------------------------


def _parabola():
    final = jnp.asarray([1.0, -1.0, 1.0])
    return jnp.asarray([-1.0, 10.0, 1.0]), final, nanofn.grad(
        lambda p: jnp.sum((p - final) ** 2))


@pytest.mark.parametrize("opaque_mode", [False, True])
def test_sam_converges_on_parabola(opaque_mode):
    params, final, grad = _parabola()
    adv = optim.chain(contrib.normalize(), optim.adam(1e-3))
    opt = contrib.sam(optim.sgd(0.1), adv, opaque_mode=opaque_mode)
    kwargs = {"grad_fn": lambda p, _: grad(p)} if opaque_mode else {}

    @nanofn.jit
    def step(params, state):
        updates, state = opt.update(grad(params), state, params, **kwargs)
        return optim.apply_updates(params, updates), state

    state = opt.init(params)
    state = optim.tree.map_params(opt, lambda v: v, state)  # a no-op, as in optax's test
    for _ in range(200):
        params, state = step(params, state)
    np.testing.assert_allclose(np.asarray(params), np.asarray(final), atol=1e-2)


def test_sam_two_step_cycle_is_the_sam_update():
    f = lambda w: jnp.sum(jnp.asarray([1.0, 3.0]) * w ** 2)  # noqa: E731
    rho, lr = 0.05, 0.1
    opt = contrib.sam(optim.sgd(lr), optim.chain(contrib.normalize(), optim.sgd(rho)))
    w0 = jnp.asarray([1.0, -2.0])
    state = opt.init(w0)
    u, state = opt.update(nanofn.grad(f)(w0), state, w0)
    w_adv = optim.apply_updates(w0, u)
    g0 = np.asarray(nanofn.grad(f)(w0))
    np.testing.assert_allclose(np.asarray(w_adv), np.asarray(w0) + rho * g0 / np.linalg.norm(g0),
                               rtol=1e-6)
    assert int(state.steps_since_sync) == 1
    u, state = opt.update(nanofn.grad(f)(w_adv), state, w_adv)
    w1 = optim.apply_updates(w_adv, u)
    expected = np.asarray(w0) - lr * np.asarray(nanofn.grad(f)(w_adv))
    np.testing.assert_allclose(np.asarray(w1), expected, rtol=1e-6)
    assert int(state.steps_since_sync) == 0


def test_sam_sync_period_one_follows_optax():
    # optax 0.2.8 applies each outer update to the weights of the step before
    opt = contrib.sam(optim.sgd(0.1), optim.chain(contrib.normalize(), optim.sgd(0.05)),
                      sync_period=1)
    p = jnp.asarray([1.0, 2.0])
    state, seen = opt.init(p), []
    for _ in range(3):
        u, state = opt.update(2 * p, state, p)
        p = optim.apply_updates(p, u)
        seen.append(np.asarray(p).tolist())
    np.testing.assert_allclose(seen, [[0.8, 1.6], [0.84, 1.68], [0.632, 1.264]], rtol=1e-6)


def test_sam_reset_state_false_keeps_adversarial_state():
    adv = optim.chain(contrib.normalize(), optim.adam(0.01))
    for reset, expected_count in ((True, 0), (False, 1)):
        opt = contrib.sam(optim.sgd(0.1), adv, reset_state=reset)
        p = jnp.ones(2)
        state = opt.init(p)
        for _ in range(2):
            u, state = opt.update(p, state, p)
            p = optim.apply_updates(p, u)
        assert int(state.adv_state[1][0].count) == expected_count


def test_sam_map_params_reaches_the_cache():
    opt = contrib.sam(optim.sgd(0.1), optim.sgd(0.1))
    state = opt.init({"w": jnp.ones(2)})
    mapped = optim.tree.map_params(opt, lambda x: 2 * x, state)
    assert np.asarray(mapped.cache["w"]).tolist() == [2.0, 2.0]
    assert int(mapped.steps_since_sync) == 0
    opaque = contrib.sam(optim.sgd(0.1), optim.sgd(0.1), opaque_mode=True)
    assert opaque.init({"w": jnp.ones(2)}).cache is None


def test_sam_opaque_batch_axis_name_averages_gradients():
    targets = jnp.asarray([[1.0, 2.0], [3.0, -1.0]])
    loss = lambda p, t: jnp.sum((p - t) ** 2)  # noqa: E731
    adv = optim.chain(contrib.normalize(), optim.sgd(0.05))
    opt = contrib.sam(optim.sgd(0.1), adv, opaque_mode=True, batch_axis_name="batch")
    p = jnp.zeros(2)
    state = opt.init(p)

    def replica(t, p, state):
        g = nanofn.lax.pmean(nanofn.grad(loss)(p, t), "batch")
        return opt.update(g, state, p, grad_fn=lambda q, _: nanofn.grad(loss)(q, t))[0]

    per_replica = nanofn.vmap(replica, in_axes=(0, None, None), axis_name="batch")(
        targets, p, state)
    mean_loss = lambda p: 0.5 * (loss(p, targets[0]) + loss(p, targets[1]))  # noqa: E731
    single = contrib.sam(optim.sgd(0.1), adv, opaque_mode=True)
    u, _ = single.update(nanofn.grad(mean_loss)(p), single.init(p), p,
                         grad_fn=lambda q, _: nanofn.grad(mean_loss)(q))
    for row in np.asarray(per_replica):
        np.testing.assert_allclose(row, np.asarray(u), rtol=1e-6)


def test_sam_errors():
    with pytest.raises(ValueError, match="sync_period"):
        contrib.sam(optim.sgd(0.1), optim.sgd(0.1), sync_period=0)
    with pytest.raises(TypeError, match="sync_period"):
        contrib.sam(optim.sgd(0.1), optim.sgd(0.1), sync_period=1.5)
    opt = contrib.sam(optim.sgd(0.1), optim.sgd(0.1), opaque_mode=True)
    with pytest.raises(ValueError, match="grad_fn"):
        opt.update(jnp.ones(2), opt.init(jnp.ones(2)), jnp.ones(2))
    opt = contrib.sam(optim.sgd(0.1), optim.sgd(0.1))
    with pytest.raises(ValueError, match="params"):
        opt.update(jnp.ones(2), opt.init(jnp.ones(2)))


def test_normalize_gives_unit_global_norm():
    tx = contrib.normalize()
    u, _ = tx.update({"a": jnp.asarray([1.0, 2.0]), "b": jnp.asarray([[2.0]])}, tx.init(None))
    assert np.isclose(float(optim.tree.norm(u)), 1.0)
    assert contrib.NormalizeState is optim.EmptyState


# --- split_real_and_imaginary ---------------------------------------------------------------


@pytest.mark.parametrize("make", [optim.scale_by_adam, optim.scale_by_param_block_norm])
def test_split_real_and_imaginary_matches_real_pairs(make):
    loss_c = lambda z: jnp.sum(jnp.real(jnp.conj(z) * z))  # noqa: E731
    loss_r = lambda xy: loss_c(xy[0] + xy[1] * 1j)  # noqa: E731
    x = jnp.asarray([[0.1, 0.2, 0.3], [-0.1, -0.2, -0.3]])
    y = jnp.asarray([[0.5, -0.5, 0.0], [0.1, 0.3, -0.2]])
    z = x + y * 1j
    real_opt, complex_opt = make(), contrib.split_real_and_imaginary(make())
    real_state, complex_state = real_opt.init((x, y)), complex_opt.init(z)
    update = nanofn.jit(complex_opt.update)
    for _ in range(3):
        gx, gy = tree_util.tree_map(jnp.conj, nanofn.grad(loss_r)((x, y)))
        (ux, uy), real_state = real_opt.update((gx, gy), real_state, (x, y))
        x, y = optim.apply_updates((x, y), (ux, uy))
        gz = jnp.conj(nanofn.grad(loss_c)(z))
        uz, complex_state = update(gz, complex_state, z)
        z = optim.apply_updates(z, uz)
        np.testing.assert_allclose(np.asarray(gz), np.asarray(gx + gy * 1j), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(z), np.asarray(x + y * 1j), rtol=1e-6)
    assert isinstance(complex_state, contrib.SplitRealAndImaginaryState)


def test_split_real_and_imaginary_passes_real_leaves_through():
    tx = contrib.split_real_and_imaginary(optim.sgd(1.0))
    params = {"r": jnp.ones(2), "c": jnp.ones(2, dtype=jnp.complex64)}
    u, _ = tx.update(params, tx.init(params), params)
    assert u["r"].dtype == np.float32 and u["c"].dtype == np.complex64
    np.testing.assert_allclose(np.asarray(u["c"]), -np.ones(2))


# --- differential privacy -------------------------------------------------------------------


def _per_example(batch_size=8):
    params = {"a": (jnp.zeros((2, 3, 4)), jnp.zeros(())), "b": jnp.zeros((6, 7))}
    a = np.arange(batch_size, dtype=np.float32)
    grads = tree_util.tree_map(
        lambda p: jnp.asarray(np.moveaxis(a * np.ones(np.shape(p) + (batch_size,),
                                                      np.float32), -1, 0)), params)
    return params, grads


def test_dp_aggregate_without_privacy_is_the_mean():
    params, grads = _per_example()
    tx = contrib.differentially_private_aggregate(
        l2_norm_clip=float(np.finfo(np.float32).max), noise_multiplier=0.0, key=0)
    state, update = tx.init(params), nanofn.jit(tx.update)
    for _ in range(3):
        u, state = update(grads, state)
        _assert_trees_close(u, tree_util.tree_map(lambda g: g.mean(0), grads), rtol=1e-6)


@pytest.mark.parametrize("clip", [0.5, 10.0, 40.0])
def test_dp_aggregate_clips_each_example(clip):
    params, grads = _per_example()
    tx = contrib.differentially_private_aggregate(l2_norm_clip=clip, noise_multiplier=0.0,
                                                  key=42)
    norms = np.sqrt(sum(np.sum(np.reshape(x, (8, -1)) ** 2, axis=1) for x in _leaves(grads)))
    expected = np.mean(np.arange(8) / np.maximum(norms / clip, 1.0))
    u, _ = tx.update(grads, tx.init(params), params)
    for leaf in _leaves(u):
        np.testing.assert_allclose(leaf, expected, rtol=1e-5)


def test_dp_aggregate_noise_std_and_key_chain():
    tx = contrib.differentially_private_aggregate(l2_norm_clip=3.0, noise_multiplier=2.0,
                                                  key=1337)
    state = tx.init(None)
    outs = []
    for _ in range(2):
        u, state = tx.update([jnp.ones((1, 100, 100))], state)
        assert abs(float(np.std(np.asarray(u[0]))) - 6.0) < 0.6
        outs.append(np.asarray(u[0]))
    assert not np.allclose(outs[0], outs[1])
    # the noise is normal(split(key, 2)[1]) and the next key split(key, 2)[0]
    keys = nanofn.random.split(nanofn.random.key(1337), 2)
    noise = nanofn.random.normal(keys[1], (100, 100))
    clipped = 3.0 / 100.0  # the example (norm 100) is clipped to norm 3
    np.testing.assert_allclose(outs[0], clipped + 6.0 * np.asarray(noise), rtol=1e-5,
                               atol=1e-5)
    # a key given as a key, or the older `seed=`, gives the same stream
    for other in (contrib.differentially_private_aggregate(3.0, 2.0, nanofn.random.key(1337)),
                  contrib.differentially_private_aggregate(3.0, 2.0, seed=1337)):
        u, _ = other.update([jnp.ones((1, 100, 100))], other.init(None))
        np.testing.assert_array_equal(np.asarray(u[0]), outs[0])


def test_dp_aggregate_errors():
    params, grads = _per_example()
    tx = contrib.differentially_private_aggregate(l2_norm_clip=0.1, noise_multiplier=1.1,
                                                  key=2021)
    mean_grads = tree_util.tree_map(lambda g: g.mean(0), grads)
    with pytest.raises(ValueError, match="per-example"):
        tx.update(mean_grads, tx.init(params), params)
    with pytest.raises(ValueError, match="l2_norm_clip"):
        contrib.differentially_private_aggregate(-1.0, 1.0, key=0)
    with pytest.raises(ValueError, match="noise_multiplier"):
        contrib.differentially_private_aggregate(1.0, -1.0, key=0)
    with pytest.raises(ValueError, match="key"):
        contrib.differentially_private_aggregate(1.0, 1.0, key=0, seed=1)
    with pytest.raises(TypeError, match="key"):
        contrib.differentially_private_aggregate(1.0, 1.0, key=jnp.zeros(3))


def test_dpsgd_takes_params_and_runs_jitted():
    params, grads = _per_example()
    opt = contrib.dpsgd(0.1, l2_norm_clip=1.0, noise_multiplier=0.5, seed=3, momentum=0.9)
    state = opt.init(params)
    u_eager, s_eager = opt.update(grads, state, params)
    u_jit, s_jit = nanofn.jit(opt.update)(grads, state, params)
    _assert_trees_close(u_eager, u_jit, rtol=1e-6, atol=1e-7)
    assert len(s_eager) == 3
    assert tree_util.tree_structure(u_eager) == tree_util.tree_structure(params)


# --- ACProp ---------------------------------------------------------------------------------


def test_acprop_steps():
    tx = contrib.scale_by_acprop(b1=0.5, b2=0.5, eps=0.0, eps_root=0.0)
    state = tx.init(jnp.zeros(1))
    u, state = tx.update(jnp.asarray([2.0]), state)
    assert float(u[0]) == 2.0  # the first step divides by 1
    # s_1 = 0.5 * (2 - 0)^2 = 2, bias-corrected by 1 - 0.5: 4; m_1 = 1
    u, state = tx.update(jnp.asarray([3.0]), state)
    np.testing.assert_allclose(float(u[0]), 3.0 / 2.0, rtol=1e-6)
    # s_2 = 0.5 * 2 + 0.5 * (3 - 1)^2 = 3, corrected by 1 - 0.25
    u, state = tx.update(jnp.asarray([1.0]), state)
    np.testing.assert_allclose(float(u[0]), 1.0 / np.sqrt(4.0), rtol=1e-6)
    assert int(state.count) == 3


def test_acprop_jit_matches_eager_and_errors():
    opt = contrib.acprop(0.1, weight_decay=0.01)
    params = {"w": jnp.asarray([1.0, -2.0]), "b": jnp.asarray(0.5)}
    state = opt.init(params)
    for _ in range(2):
        u1, s1 = opt.update(params, state, params)
        u2, s2 = nanofn.jit(opt.update)(params, state, params)
        _assert_trees_close(u1, u2, rtol=1e-6)
        state = s1
    with pytest.raises(ValueError, match="b1"):
        contrib.acprop(0.1, b1=1.5)
    with pytest.raises(ValueError, match="weight_decay"):
        contrib.acprop(0.1, weight_decay=-1.0)


# --- Sophia and Hutchinson ------------------------------------------------------------------


def test_hutchinson_is_unbiased():
    a = np.asarray([[2.0, 0.5, 0.0], [0.5, 1.0, -0.3], [0.0, -0.3, 3.0]], np.float32)
    obj = lambda w: 0.5 * jnp.dot(w, jnp.asarray(a) @ w)  # noqa: E731
    est = contrib.hutchinson_estimator_diag_hessian(nanofn.random.key(0))
    w = jnp.ones(3)
    update = nanofn.jit(lambda s: est.update(None, s, w, obj_fn=obj))
    state, total = est.init(w), np.zeros(3)
    for _ in range(200):
        d, state = update(state)
        total += np.asarray(d)
    np.testing.assert_allclose(total / 200, np.diag(a), atol=0.1)


def test_hutchinson_errors():
    est = contrib.hutchinson_estimator_diag_hessian()
    with pytest.raises(ValueError, match="obj_fn"):
        est.update(None, est.init(jnp.ones(2)), jnp.ones(2))
    with pytest.raises(ValueError, match="params"):
        est.update(None, est.init(jnp.ones(2)), obj_fn=jnp.sum)


def test_sophia_refreshes_hessian_every_interval():
    f = lambda w: jnp.sum(w ** 2)  # noqa: E731
    opt = contrib.sophia(0.01, update_interval=3, weight_decay=0.0)
    w = jnp.asarray([1.0, -1.0])
    state = opt.init(w)
    nus = []
    for _ in range(5):
        u, state = opt.update(nanofn.grad(f)(w), state, w, obj_fn=f)
        w = optim.apply_updates(w, u)
        nus.append(float(state[0].nu[0]))
    # refreshed at steps 1 and 4 (count 0 and 3), kept in between
    b2 = 0.99
    expected_1 = (1 - b2) * 2.0
    np.testing.assert_allclose(nus, [expected_1] * 3 + [b2 * expected_1 + (1 - b2) * 2.0] * 2,
                               rtol=1e-5)


def test_sophia_jit_matches_eager_and_errors():
    f = lambda p: jnp.sum(p["w"] ** 4) + jnp.sum(p["b"] ** 2)  # noqa: E731
    opt = contrib.sophia(0.05)
    params = {"w": jnp.asarray([1.0, -0.5]), "b": jnp.asarray(0.3)}
    state = opt.init(params)
    step = nanofn.jit(lambda g, s, p: opt.update(g, s, p, obj_fn=f))
    for _ in range(3):
        g = nanofn.grad(f)(params)
        u1, s1 = opt.update(g, state, params, obj_fn=f)
        u2, _ = step(g, state, params)
        _assert_trees_close(u1, u2, rtol=1e-5, atol=1e-7)
        params, state = optim.apply_updates(params, u1), s1
    with pytest.raises(ValueError, match="obj_fn"):
        opt.update(g, opt.init(params), params)
    with pytest.raises(ValueError, match="update_interval"):
        contrib.sophia(0.1, update_interval=0)
    with pytest.raises(ValueError, match="clip_threshold"):
        contrib.sophia(0.1, clip_threshold=-1.0)


def test_sophia_verbose_prints_win_rate(capsys):
    f = lambda w: jnp.sum(w ** 2)  # noqa: E731
    opt = contrib.sophia(0.1, verbose=True, print_win_rate_every_n_steps=2)
    w = jnp.ones(2)
    state = opt.init(w)
    for _ in range(4):
        _, state = opt.update(nanofn.grad(f)(w), state, w, obj_fn=f)
    assert capsys.readouterr().out.count("Sophia optimizer win rate") == 2


# --- GaLore ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,proj_shape,low_shape", [((8, 4), (8, 2), (2, 4)),
                                                       ((4, 8), (8, 2), (4, 2))])
def test_galore_left_and_right_projection_shapes(shape, proj_shape, low_shape):
    tx = contrib.scale_by_galore(rank=2)
    state = tx.init({"w": jnp.ones(shape)})
    assert state.projector["w"].shape == proj_shape
    assert state.base_optimizer_state.mu["w"].shape == low_shape


def test_galore_rank_is_clipped_and_projector_is_orthonormal():
    tx = contrib.scale_by_galore(rank=10)
    g = jnp.asarray(np.random.RandomState(0).normal(size=(6, 3)).astype(np.float32))
    state = tx.init(g)
    assert state.projector.shape == (6, 3)
    _, state = tx.update(g, state)
    p = np.asarray(state.projector)
    np.testing.assert_allclose(p.T @ p, np.eye(3), atol=1e-5)


def test_galore_projector_only_changes_every_gap():
    rs = np.random.RandomState(1)
    tx = contrib.scale_by_galore(rank=1, update_proj_gap=3)
    state = tx.init(jnp.zeros((5, 3)))
    projectors = []
    for _ in range(4):
        g = jnp.asarray(rs.normal(size=(5, 3)).astype(np.float32))
        _, state = tx.update(g, state)
        projectors.append(np.asarray(state.projector))
    np.testing.assert_array_equal(projectors[0], projectors[1])
    np.testing.assert_array_equal(projectors[0], projectors[2])
    assert not np.allclose(np.abs(projectors[0]), np.abs(projectors[3]))


def test_galore_full_rank_matches_adam():
    # with full rank the projector is orthogonal, so the first Adam step is the same
    rs = np.random.RandomState(2)
    g = jnp.asarray(rs.normal(size=(4, 4)).astype(np.float32))
    params = {"w": jnp.zeros((4, 4)), "b": jnp.zeros(3)}
    grads = {"w": g, "b": jnp.asarray([1.0, -2.0, 0.5])}
    galore, adam = contrib.galore(0.1, rank=4), optim.adam(0.1)
    u_gal, _ = galore.update(grads, galore.init(params), params)
    u_adam, _ = adam.update(grads, adam.init(params), params)
    np.testing.assert_allclose(np.asarray(u_gal["b"]), np.asarray(u_adam["b"]), rtol=1e-6)
    assert np.all(np.isfinite(np.asarray(u_gal["w"])))


def test_galore_dimension_numbers_and_jit():
    params = {"attn": jnp.ones((8, 2, 3)), "bias": jnp.ones(3)}
    dims = {"attn": contrib.GaLoreDimensionNumbers(0, (1, 2)), "bias": None}
    opt = contrib.galore(0.01, rank=2, weight_dimension_numbers=dims)
    state = opt.init(params)
    assert state[0].projector["attn"].shape == (8, 2)
    rs = np.random.RandomState(3)
    grads = {"attn": jnp.asarray(rs.normal(size=(8, 2, 3)).astype(np.float32)),
             "bias": jnp.ones(3)}
    u1, _ = opt.update(grads, state, params)
    u2, _ = nanofn.jit(opt.update)(grads, state, params)
    _assert_trees_close(u1, u2, rtol=1e-5, atol=1e-6)
    assert u1["attn"].shape == (8, 2, 3)
    # a callable giving the same tree, and a single spec for every rank >= 2 leaf
    for spec in (lambda p: dims, contrib.GaLoreDimensionNumbers(0, (1, 2))):
        u3, _ = opt.update(grads, contrib.galore(0.01, rank=2,
                                                 weight_dimension_numbers=spec).init(params),
                           params)
        _assert_trees_close(u1, u3, rtol=1e-6)


def test_galore_map_params_and_errors():
    opt = contrib.galore(0.1, rank=2)
    state = opt.init({"w": jnp.ones((4, 3))})
    mapped = optim.tree.map_params(opt, lambda x: x, state)
    assert tree_util.tree_structure(mapped) == tree_util.tree_structure(state)
    with pytest.raises(ValueError, match="rank"):
        contrib.scale_by_galore(rank=0)
    with pytest.raises(TypeError, match="rank"):
        contrib.scale_by_galore(rank=2.5)
    with pytest.raises(ValueError, match="update_proj_gap"):
        contrib.scale_by_galore(update_proj_gap=0)
    overlap = contrib.scale_by_galore(
        weight_dimension_numbers=contrib.GaLoreDimensionNumbers(0, 0))
    with pytest.raises(ValueError, match="overlap"):
        overlap.init(jnp.ones((3, 3)))
    missing = contrib.scale_by_galore(
        weight_dimension_numbers=contrib.GaLoreDimensionNumbers(0, 1))
    with pytest.raises(ValueError, match="every axis"):
        missing.init(jnp.ones((3, 3, 3)))
    low_rank_leaf = contrib.scale_by_galore(
        weight_dimension_numbers={"b": contrib.GaLoreDimensionNumbers()})
    with pytest.raises(ValueError, match="rank >= 2"):
        low_rank_leaf.init({"b": jnp.ones(3)})
    wrong_tree = contrib.scale_by_galore(
        weight_dimension_numbers={"w": contrib.GaLoreDimensionNumbers()})
    with pytest.raises(ValueError):
        wrong_tree.init({"w": jnp.ones((3, 3)), "b": jnp.ones(3)})
    with pytest.raises(TypeError, match="weight_dimension_numbers"):
        contrib.scale_by_galore(weight_dimension_numbers={"w": 3})


def test_a_chain_starting_with_the_private_aggregate_takes_per_example_gradients():
    # optax's documented pattern: chain(differentially_private_aggregate(...), sgd(...)),
    # called with params; the shapes are checked once the batch axis is aggregated away
    import nanofn.numpy as jnp
    from nanofn import optim
    opt = optim.chain(optim.contrib.differentially_private_aggregate(1.0, 0.0, seed=0),
                      optim.sgd(0.1))
    params = {"w": jnp.zeros(3)}
    per_example = {"w": jnp.ones((4, 3))}
    updates, _ = opt.update(per_example, opt.init(params), params)
    assert updates["w"].shape == (3,)
    with pytest.raises(ValueError, match=r"params\['w'\]"):
        opt.update({"w": jnp.ones((4, 2))}, opt.init(params), params)
