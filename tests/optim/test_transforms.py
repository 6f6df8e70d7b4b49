"""Building blocks of nanofn.optim: the first two updates against the equations.

Each row of BLOCKS pairs a transformation with a plain-numpy transcription of its update
equations. The reference takes the two gradients and the params and returns the two
expected updates; the test runs the real transformation twice (in float64, so the
comparison is tight) and compares.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nanofn
import nanofn.numpy as jnp
from nanofn import optim, tree_util


def _np(x):
    return np.asarray(x, dtype=np.float64)


# --- numpy references: (g1, g2, p) -> [u1, u2] -------------------------------------------


def ref_scale(g1, g2, p):
    return [-0.3 * g1, -0.3 * g2]


def ref_learning_rate(g1, g2, p):
    return [-0.01 * g1, -0.01 * g2]


def ref_schedule(g1, g2, p):
    # step_size_fn(count) = 0.5 / (count + 1), count = 0 then 1
    return [0.5 * g1, 0.25 * g2]


def _adam(g1, g2, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, nesterov=False):
    m = v = 0.0
    out = []
    for t, g in enumerate((g1, g2), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if nesterov:
            m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1 ** t)
        else:
            m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        out.append(m_hat / (np.sqrt(v_hat + eps_root) + eps))
    return out


def ref_adam(g1, g2, p):
    return _adam(g1, g2, b1=0.8, b2=0.9, eps=1e-3, eps_root=1e-4)


def ref_nadam(g1, g2, p):
    return _adam(g1, g2, b1=0.8, b2=0.9, eps=1e-3, nesterov=True)


def ref_amsgrad(g1, g2, p):
    b1, b2, eps = 0.8, 0.9, 1e-3
    m = v = vmax = 0.0
    out = []
    for t, g in enumerate((g1, g2), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v / (1 - b2 ** t))
        out.append(m / (1 - b1 ** t) / (np.sqrt(vmax) + eps))
    return out


def ref_adamax(g1, g2, p):
    b1, b2, eps = 0.8, 0.9, 1e-3
    m = v = 0.0
    out = []
    for t, g in enumerate((g1, g2), start=1):
        m = b1 * m + (1 - b1) * g
        v = np.maximum(np.abs(g) + eps, b2 * v)
        out.append(m / (1 - b1 ** t) / v)
    return out


def _radam(g1, g2, threshold):
    b1, b2, eps = 0.8, 0.9, 1e-3
    rho_inf = 2 / (1 - b2) - 1
    m = v = 0.0
    out = []
    for t, g in enumerate((g1, g2), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        rho = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
        if rho >= threshold:
            r = math.sqrt(max((rho - 4) * (rho - 2) * rho_inf
                              / ((rho_inf - 4) * (rho_inf - 2) * rho), 0.0))
            out.append(r * m_hat / (np.sqrt(v_hat) + eps))
        else:
            out.append(m_hat)
    return out


def ref_radam(g1, g2, p):
    return _radam(g1, g2, threshold=5.0)  # rho_1 = 1, rho_2 < 2: plain momentum


def ref_radam_rectified(g1, g2, p):
    return _radam(g1, g2, threshold=0.0)


def ref_yogi(g1, g2, p):
    b1, b2, eps, v0 = 0.8, 0.9, 1e-3, 1e-6
    m = v = v0
    out = []
    for t, g in enumerate((g1, g2), start=1):
        m = b1 * m + (1 - b1) * g
        v = v - (1 - b2) * np.sign(v - g * g) * g * g
        out.append(m / (1 - b1 ** t) / (np.sqrt(v / (1 - b2 ** t)) + eps))
    return out


def ref_belief(g1, g2, p):
    b1, b2, eps, eps_root = 0.8, 0.9, 1e-3, 1e-4
    m = s = 0.0
    out = []
    for t, g in enumerate((g1, g2), start=1):
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * (g - m) ** 2 + eps_root
        out.append(m / (1 - b1 ** t) / (np.sqrt(s / (1 - b2 ** t)) + eps))
    return out


def ref_lion(g1, g2, p):
    b1, b2 = 0.8, 0.9
    m = 0.0
    out = []
    for g in (g1, g2):
        out.append(np.sign(b1 * m + (1 - b1) * g))
        m = b2 * m + (1 - b2) * g
    return out


def ref_rss(g1, g2, p):
    s = 0.1
    out = []
    for g in (g1, g2):
        s = s + g * g
        out.append(g / np.sqrt(s + 1e-7))
    return out


def ref_rms(g1, g2, p):
    v = 0.5  # initial_scale
    out = []
    for g in (g1, g2):
        v = 0.8 * v + 0.2 * g * g
        out.append(g / np.sqrt(v + 1e-3))
    return out


def ref_rms_debiased(g1, g2, p):
    v = 0.0
    out = []
    for t, g in enumerate((g1, g2), start=1):
        v = 0.8 * v + 0.2 * g * g
        out.append(g / (np.sqrt(v / (1 - 0.8 ** t)) + 1e-3))
    return out


def ref_stddev(g1, g2, p):
    m, v = 0.0, 0.5
    out = []
    for g in (g1, g2):
        m = 0.8 * m + 0.2 * g
        v = 0.8 * v + 0.2 * g * g
        out.append(g / np.sqrt(v - m * m + 1e-3))
    return out


def ref_adadelta(g1, g2, p):
    rho, eps = 0.8, 1e-3
    e_g = e_x = 0.0
    out = []
    for g in (g1, g2):
        e_g = rho * e_g + (1 - rho) * g * g
        u = np.sqrt(e_x + eps) / np.sqrt(e_g + eps) * g
        e_x = rho * e_x + (1 - rho) * u * u
        out.append(u)
    return out


def ref_novograd(g1, g2, p):
    b1, b2, eps, wd = 0.8, 0.5, 1e-3, 0.1
    v1 = np.sum(g1 * g1)
    m1 = g1 / (np.sqrt(v1) + eps) + wd * p
    v2 = b2 * v1 + (1 - b2) * np.sum(g2 * g2)
    m2 = b1 * m1 + g2 / (np.sqrt(v2) + eps) + wd * p
    return [m1, m2]


def ref_trust_ratio(g1, g2, p):
    def one(g):
        pn, gn = np.linalg.norm(p), np.linalg.norm(g)
        if pn == 0 or gn == 0:
            return g
        return g * 0.5 * pn / (gn + 1e-3)

    return [one(g1), one(g2)]


def ref_param_block_rms(g1, g2, p):
    s = max(np.sqrt(np.mean(p * p)), 1e-3)
    return [g1 * s, g2 * s]


def ref_param_block_norm(g1, g2, p):
    s = max(np.linalg.norm(p), 1e-3)
    return [g1 * s, g2 * s]


def ref_sign(g1, g2, p):
    return [np.sign(g1), np.sign(g2)]


def ref_trace(g1, g2, p):
    return [g1, g2 + 0.7 * g1]


def ref_trace_nesterov(g1, g2, p):
    t1 = g1
    t2 = g2 + 0.7 * t1
    return [g1 + 0.7 * t1, g2 + 0.7 * t2]


def ref_ema(g1, g2, p):
    e1 = 0.3 * g1
    e2 = 0.7 * e1 + 0.3 * g2
    return [e1 / (1 - 0.7), e2 / (1 - 0.7 ** 2)]


def ref_ema_biased(g1, g2, p):
    e1 = 0.3 * g1
    return [e1, 0.7 * e1 + 0.3 * g2]


def ref_decayed_weights(g1, g2, p):
    return [g1 + 0.1 * p, g2 + 0.1 * p]


def ref_clip(g1, g2, p):
    return [np.clip(g1, -0.5, 0.5), np.clip(g2, -0.5, 0.5)]


def ref_clip_by_global_norm(g1, g2, p):
    def one(g):
        n = np.linalg.norm(g)
        return g if n < 1.0 else g / n
    return [one(g1), one(g2)]


def ref_clip_by_block_rms(g1, g2, p):
    def one(g):
        return g / max(1.0, np.sqrt(np.mean(g * g)) / 0.5)
    return [one(g1), one(g2)]


def ref_centralize(g1, g2, p):
    return [g - g.mean(axis=1, keepdims=True) for g in (g1, g2)]


def ref_zero_nans(g1, g2, p):
    return [np.where(np.isnan(g), 0.0, g) for g in (g1, g2)]


def ref_nonnegative(g1, g2, p):
    return [np.where(p + g < 0, -p, g) for g in (g1, g2)]


def _factored(g1, g2, p, factored_dims):
    eps, decay_rate = 1e-30, 0.8
    out = []
    row = col = v = 0.0
    for step, g in enumerate((g1, g2)):
        d = 1 - (step + 1) ** -decay_rate
        g_sq = g * g + eps
        if factored_dims:  # rows = axis 0 (size 3), cols = axis 1 (size 4)
            row = d * row + (1 - d) * g_sq.mean(axis=1)
            col = d * col + (1 - d) * g_sq.mean(axis=0)
            v_hat = np.outer(row, col) / row.mean()
            out.append(g / np.sqrt(v_hat))
        else:
            v = d * v + (1 - d) * g_sq
            out.append(g / np.sqrt(v))
    return out


def ref_factored(g1, g2, p):
    return _factored(g1, g2, p, factored_dims=True)


def ref_factored_small(g1, g2, p):
    return _factored(g1, g2, p, factored_dims=False)


# (id, transformation, reference, shape of params and grads)
BLOCKS = [
    ("scale", lambda: optim.scale(-0.3), ref_scale, (3,)),
    ("scale_by_learning_rate", lambda: optim.scale_by_learning_rate(0.01), ref_learning_rate,
     (3,)),
    ("scale_by_schedule", lambda: optim.scale_by_schedule(lambda c: 0.5 / (c + 1)),
     ref_schedule, (3,)),
    ("scale_by_adam", lambda: optim.scale_by_adam(0.8, 0.9, 1e-3, 1e-4), ref_adam, (3,)),
    ("scale_by_adam_nesterov", lambda: optim.scale_by_adam(0.8, 0.9, 1e-3, nesterov=True),
     ref_nadam, (3,)),
    ("scale_by_amsgrad", lambda: optim.scale_by_amsgrad(0.8, 0.9, 1e-3), ref_amsgrad, (3,)),
    ("scale_by_adamax", lambda: optim.scale_by_adamax(0.8, 0.9, 1e-3), ref_adamax, (3,)),
    ("scale_by_radam", lambda: optim.scale_by_radam(0.8, 0.9, 1e-3), ref_radam, (3,)),
    ("scale_by_radam_rectified", lambda: optim.scale_by_radam(0.8, 0.9, 1e-3, threshold=0.0),
     ref_radam_rectified, (3,)),
    ("scale_by_yogi", lambda: optim.scale_by_yogi(0.8, 0.9, 1e-3), ref_yogi, (3,)),
    ("scale_by_belief", lambda: optim.scale_by_belief(0.8, 0.9, 1e-3, 1e-4), ref_belief, (3,)),
    ("scale_by_lion", lambda: optim.scale_by_lion(0.8, 0.9), ref_lion, (3,)),
    ("scale_by_rss", lambda: optim.scale_by_rss(), ref_rss, (3,)),
    ("scale_by_rms", lambda: optim.scale_by_rms(0.8, 1e-3, initial_scale=0.5), ref_rms, (3,)),
    ("scale_by_rms_debiased",
     lambda: optim.scale_by_rms(0.8, 1e-3, eps_in_sqrt=False, bias_correction=True),
     ref_rms_debiased, (3,)),
    ("scale_by_stddev", lambda: optim.scale_by_stddev(0.8, 1e-3, initial_scale=0.5),
     ref_stddev, (3,)),
    ("scale_by_adadelta", lambda: optim.scale_by_adadelta(0.8, 1e-3), ref_adadelta, (3,)),
    ("scale_by_novograd", lambda: optim.scale_by_novograd(0.8, 0.5, 1e-3, weight_decay=0.1),
     ref_novograd, (3,)),
    ("scale_by_trust_ratio",
     lambda: optim.scale_by_trust_ratio(trust_coefficient=0.5, eps=1e-3), ref_trust_ratio,
     (3,)),
    ("scale_by_param_block_rms", lambda: optim.scale_by_param_block_rms(), ref_param_block_rms,
     (3,)),
    ("scale_by_param_block_norm", lambda: optim.scale_by_param_block_norm(),
     ref_param_block_norm, (3,)),
    ("scale_by_factored_rms", lambda: optim.scale_by_factored_rms(min_dim_size_to_factor=3),
     ref_factored, (3, 4)),
    ("scale_by_factored_rms_small", lambda: optim.scale_by_factored_rms(), ref_factored_small,
     (3, 4)),
    ("scale_by_sign", lambda: optim.scale_by_sign(), ref_sign, (3,)),
    ("trace", lambda: optim.trace(0.7), ref_trace, (3,)),
    ("trace_nesterov", lambda: optim.trace(0.7, nesterov=True), ref_trace_nesterov, (3,)),
    ("ema", lambda: optim.ema(0.7), ref_ema, (3,)),
    ("ema_biased", lambda: optim.ema(0.7, debias=False), ref_ema_biased, (3,)),
    ("add_decayed_weights", lambda: optim.add_decayed_weights(0.1), ref_decayed_weights, (3,)),
    ("clip", lambda: optim.clip(0.5), ref_clip, (3,)),
    ("clip_by_global_norm", lambda: optim.clip_by_global_norm(1.0), ref_clip_by_global_norm,
     (3,)),
    ("clip_by_block_rms", lambda: optim.clip_by_block_rms(0.5), ref_clip_by_block_rms, (3,)),
    ("centralize", lambda: optim.centralize(), ref_centralize, (2, 3)),
    ("zero_nans", lambda: optim.zero_nans(), ref_zero_nans, (3,)),
    ("keep_params_nonnegative", lambda: optim.keep_params_nonnegative(), ref_nonnegative, (3,)),
]

_values = st.floats(-4.0, 4.0, allow_nan=False, width=64)


def _run_two(tx, g1, g2, p, dtype):
    params = jnp.asarray(p, dtype=dtype)
    state = tx.init(params)
    u1, state = tx.update(jnp.asarray(g1, dtype=dtype), state, params)
    u2, state = tx.update(jnp.asarray(g2, dtype=dtype), state, params)
    return u1, u2, state


@pytest.mark.parametrize("name, make, ref, shape", BLOCKS, ids=[b[0] for b in BLOCKS])
@given(data=st.data())
def test_first_two_updates_match_equations(name, make, ref, shape, data):
    g1, g2, p = (data.draw(hnp.arrays(np.float64, shape, elements=_values)) for _ in range(3))
    if name == "zero_nans":
        g1 = np.where(g1 > 2, np.nan, g1)
    u1, u2, _ = _run_two(make(), g1, g2, p, np.float64)
    want1, want2 = ref(g1, g2, p)
    np.testing.assert_allclose(_np(u1), want1, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(_np(u2), want2, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name, make, ref, shape", BLOCKS, ids=[b[0] for b in BLOCKS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_and_state_structure_are_kept(name, make, ref, shape, dtype):
    rng = np.random.default_rng(0)
    g1, g2, p = (rng.uniform(-2, 2, size=shape) for _ in range(3))
    tx = make()
    params = jnp.asarray(p, dtype=dtype)
    state0 = tx.init(params)
    u1, u2, state2 = _run_two(tx, g1, g2, p, dtype)
    assert u1.dtype == dtype and u2.dtype == dtype
    assert tree_util.tree_structure(state2) == tree_util.tree_structure(state0)
    for before, after in zip(tree_util.tree_leaves(state0), tree_util.tree_leaves(state2)):
        assert (before.dtype, before.shape) == (after.dtype, after.shape)
    if dtype == np.float32:  # float32 arithmetic still follows the equations
        want1, want2 = ref(g1.astype(np.float32), g2.astype(np.float32), p.astype(np.float32))
        np.testing.assert_allclose(_np(u2), want2, rtol=2e-4, atol=1e-5)


@pytest.mark.parametrize("name, make, ref, shape", BLOCKS, ids=[b[0] for b in BLOCKS])
def test_blocks_run_under_jit_like_eager(name, make, ref, shape):
    rng = np.random.default_rng(1)
    g1, g2, p = (jnp.asarray(rng.uniform(-2, 2, size=shape), dtype=np.float32)
                 for _ in range(3))
    tx = make()
    state = tx.init(p)
    update = nanofn.jit(tx.update)
    ue, se = tx.update(g1, state, p)
    uj, sj = update(g1, state, p)
    np.testing.assert_allclose(_np(uj), _np(ue), rtol=1e-5, atol=1e-6)
    ue, _ = tx.update(g2, se, p)
    uj, _ = update(g2, sj, p)
    np.testing.assert_allclose(_np(uj), _np(ue), rtol=1e-5, atol=1e-6)


def test_step_counts_are_int32_scalars():
    p = jnp.zeros(3)
    state = optim.scale_by_adam().init(p)
    _, state = optim.scale_by_adam().update(jnp.ones(3), state)
    assert state.count.dtype == np.int32 and state.count.shape == ()
    assert int(state.count) == 1


def test_mu_dtype_and_accumulator_dtype():
    p = jnp.zeros(2, dtype=np.float64)
    state = optim.scale_by_adam(mu_dtype=np.float32).init(p)
    assert state.mu.dtype == np.float32 and state.nu.dtype == np.float64
    _, state = optim.scale_by_adam(mu_dtype=np.float32).update(jnp.ones(2, np.float64), state)
    assert state.mu.dtype == np.float32
    trace_state = optim.trace(0.9, accumulator_dtype=np.float32).init(p)
    assert trace_state.trace.dtype == np.float32


def test_add_decayed_weights_with_mask_and_schedule():
    params = {"w": jnp.array([2.0]), "b": jnp.array([2.0])}
    grads = {"w": jnp.array([1.0]), "b": jnp.array([1.0])}
    tx = optim.add_decayed_weights(0.5, mask={"w": True, "b": False})
    u, _ = tx.update(grads, tx.init(params), params)
    assert float(u["w"][0]) == 2.0 and float(u["b"][0]) == 1.0
    sched = optim.add_decayed_weights(lambda count: 0.5 * (count + 1))
    state = sched.init(params)
    u1, state = sched.update(grads, state, params)
    u2, state = sched.update(grads, state, params)
    assert float(u1["w"][0]) == 1.0 + 0.5 * 2.0 and float(u2["w"][0]) == 1.0 + 1.0 * 2.0


def test_transformations_needing_params_say_so():
    for tx in [optim.add_decayed_weights(0.1), optim.scale_by_trust_ratio(),
               optim.keep_params_nonnegative(), optim.scale_by_param_block_rms()]:
        with pytest.raises(ValueError, match="params"):
            tx.update(jnp.ones(2), tx.init(jnp.ones(2)))


def test_clip_by_global_norm_is_global_across_leaves():
    grads = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([0.0, 4.0])}  # global norm 5
    u, _ = optim.clip_by_global_norm(2.5).update(grads, optim.EmptyState())
    np.testing.assert_allclose(_np(u["a"]), [1.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(_np(u["b"]), [0.0, 2.0], rtol=1e-6)


def test_zero_nans_records_where_it_found_them():
    tx = optim.zero_nans()
    g = {"a": jnp.array([1.0, np.nan]), "b": jnp.array([1.0])}
    _, state = tx.update(g, tx.init(g))
    assert bool(state.found_nan["a"]) and not bool(state.found_nan["b"])


def test_add_noise_has_the_annealed_variance():
    eta, gamma = 0.5, 0.55
    tx = optim.add_noise(eta, gamma, key=3)
    zeros = jnp.zeros(40_000)
    state = tx.init(zeros)
    u1, state = tx.update(zeros, state)
    u2, state = tx.update(zeros, state)
    assert abs(np.std(_np(u1)) / math.sqrt(eta) - 1) < 0.03
    assert abs(np.std(_np(u2)) / math.sqrt(eta / 2 ** gamma) - 1) < 0.03
    assert abs(np.mean(_np(u1))) < 0.02
    assert not np.allclose(_np(u1), _np(u2))  # the key moves on every step
    again, _ = tx.update(zeros, tx.init(zeros))
    np.testing.assert_array_equal(_np(again), _np(u1))  # same key, same noise


BAD_HYPERPARAMETERS = [
    (optim.scale_by_adam, dict(b1=1.5), "b1"),
    (optim.scale_by_adam, dict(b2=-0.1), "b2"),
    (optim.scale_by_adam, dict(eps=-1e-8), "eps"),
    (optim.scale_by_adam, dict(eps=float("nan")), "eps"),
    (optim.scale_by_rms, dict(decay=1.0), "decay"),
    (optim.scale_by_rss, dict(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (optim.trace, dict(decay=-0.5), "decay"),
    (optim.ema, dict(decay=2.0), "decay"),
    (optim.scale_by_learning_rate, dict(learning_rate=-0.1), "learning_rate"),
    (optim.scale_by_learning_rate, dict(learning_rate=float("inf")), "learning_rate"),
    (optim.scale, dict(step_size=float("nan")), "step_size"),
    (optim.clip, dict(max_delta=-1.0), "max_delta"),
    (optim.clip_by_global_norm, dict(max_norm=0.0), "max_norm"),
    (optim.clip_by_block_rms, dict(threshold=-1.0), "threshold"),
    (optim.add_decayed_weights, dict(weight_decay=float("inf")), "weight_decay"),
    (optim.add_noise, dict(eta=-1.0, gamma=0.5), "eta"),
    (optim.scale_by_lion, dict(mode="soft"), "mode"),
]


@pytest.mark.parametrize("factory, kwargs, argname", BAD_HYPERPARAMETERS,
                         ids=[f"{f.__name__}-{a}" for f, _, a in BAD_HYPERPARAMETERS])
def test_bad_hyperparameters_fail_at_construction(factory, kwargs, argname):
    with pytest.raises(ValueError, match=f"`{argname}`"):
        factory(**kwargs)


# --- the fused eager Adam kernel -----------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nesterov", [False, True])
def test_fused_adam_kernel_matches_the_array_code(dtype, nesterov, monkeypatch):
    from nanofn.optim import _fused

    rng = np.random.default_rng(5)
    shape = (70, 90)  # above MIN_FUSED_SIZE
    assert shape[0] * shape[1] >= _fused.MIN_FUSED_SIZE
    params = {"w": jnp.asarray(rng.normal(size=shape), dtype=dtype),
              "b": jnp.asarray(rng.normal(size=7), dtype=dtype)}
    grads = [tree_util.tree_map(lambda p: jnp.asarray(rng.normal(size=p.shape), dtype=dtype),
                                params) for _ in range(3)]
    tx = optim.scale_by_adam(b1=0.8, b2=0.95, eps=1e-6, eps_root=1e-9, nesterov=nesterov)

    def run():
        state, out = tx.init(params), []
        for g in grads:
            u, state = tx.update(g, state)
            out.append(u)
        return out, state

    fused_updates, fused_state = run()
    monkeypatch.setattr(_fused, "MIN_FUSED_SIZE", float("inf"))  # force the array code
    plain_updates, plain_state = run()
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    for a, b in zip(tree_util.tree_leaves((fused_updates, fused_state)),
                    tree_util.tree_leaves((plain_updates, plain_state))):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(_np(a), _np(b), rtol=rtol, atol=1e-30)
    # and the numpy transcription of the kernel agrees with both on the first step
    g = np.asarray(grads[0]["w"])
    u, m, v = _fused.adam_reference(g, np.zeros_like(g), np.zeros_like(g), 0.8, 0.95, 1e-6,
                                    1e-9, 1, nesterov)
    state = tx.init(params)
    u1, state = tx.update(grads[0], state)
    np.testing.assert_allclose(_np(u1["w"]), u, rtol=rtol)
    np.testing.assert_allclose(_np(state.nu["w"]), v, rtol=rtol)


def test_fused_path_is_not_used_under_tracing():
    from nanofn.optim import _fused

    p = jnp.ones((100, 100))
    tx = optim.scale_by_adam()
    state = tx.init(p)
    seen = []

    @nanofn.jit
    def step(g, state):
        seen.append(_fused.use_adam_update([(g, state.mu, state.nu)], 0.9, 0.999, 1e-8, 0.0))
        return tx.update(g, state)

    step(p, state)
    assert seen == [False]
    assert _fused.use_adam_update([(p, state.mu, state.nu)], 0.9, 0.999, 1e-8, 0.0)
