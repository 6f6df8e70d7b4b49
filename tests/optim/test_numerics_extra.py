"""nanofn.optim's power_iteration, matrix_inverse_pth_root, nnls, multi_normal,
scale_by_distance_over_gradients and inject_stateful_hyperparams without JAX: numpy and
scipy references (eigen-decompositions, scipy.optimize.nnls, scipy.stats.norm), errors,
jit against eager. (optax's own numbers are checked in
tests/port/test_optax_numerics_extra.py.)"""

import numpy as np
import pytest
import scipy.optimize
import scipy.stats

import nanofn
import nanofn.numpy as jnp
from nanofn import optim, random
from nanofn.optim import _numerics_extra as ne


def _psd(n, seed=0, shift=0.1):
    a = np.random.RandomState(seed).normal(size=(n, n))
    return a @ a.T + shift * np.eye(n)


def _root(m, p):
    w, v = np.linalg.eigh(m)
    return (v * w ** (-1.0 / p)) @ v.T


def _align(v):
    v = np.asarray(v)
    return v * np.sign(v[np.argmax(np.abs(v))])


# --- power_iteration -------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 4, 9])
def test_power_iteration_matches_eigh(n):
    m = _psd(n, seed=n)
    w, v = np.linalg.eigh(m)
    val, vec = ne.power_iteration(jnp.asarray(m), num_iters=1000, error_tolerance=1e-12)
    assert val.dtype == np.float64
    np.testing.assert_allclose(float(val), w[-1], rtol=1e-8)
    np.testing.assert_allclose(_align(vec), _align(v[:, -1]), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vec), 1.0, rtol=1e-12)


def test_power_iteration_operator_on_pytree():
    def mvp(t):
        return {"a": 2.0 * t["a"], "b": [0.5 * t["b"][0]]}

    v0 = {"a": jnp.ones(3), "b": [jnp.ones((2, 2))]}
    val, vec = ne.power_iteration(mvp, v0=v0, error_tolerance=1e-7)
    assert abs(float(val) - 2.0) < 1e-5
    assert nanofn.tree.structure(vec) == nanofn.tree.structure(v0)
    np.testing.assert_allclose(np.abs(vec["a"]), np.full(3, 3 ** -0.5), atol=1e-4)
    np.testing.assert_allclose(vec["b"][0], 0.0, atol=1e-4)


def test_power_iteration_hessian_vector_product():
    target = np.array([1.0, -2.0, 0.5])
    h = _psd(3, seed=3)

    def loss(x):
        d = x - target
        return 0.5 * d @ jnp.asarray(h) @ d + 0.1 * jnp.sum(d ** 4)

    x0 = jnp.asarray(target)  # at the minimum the quartic term has zero Hessian

    def hvp(t):
        return nanofn.jvp(nanofn.grad(loss), (x0,), (t,))[1]

    val, _ = ne.power_iteration(hvp, v0=jnp.asarray(np.ones(3)), num_iters=500,
                                error_tolerance=1e-10)
    np.testing.assert_allclose(float(val), np.linalg.eigvalsh(h)[-1], rtol=1e-6)


def test_power_iteration_iteration_count_and_defaults():
    m = jnp.asarray(_psd(5).astype(np.float32))
    # no iteration: eigenvalue 0 and the normalized first product
    val, vec = ne.power_iteration(m, num_iters=0)
    v0 = random.uniform(random.PRNGKey(0), (5,), minval=-1.0, maxval=1.0)
    z = np.asarray(m) @ (np.asarray(v0) / np.linalg.norm(v0))
    assert float(val) == 0.0
    np.testing.assert_allclose(vec, z / np.linalg.norm(z), rtol=1e-5)
    # the default key is PRNGKey(0); another key gives another start
    a = ne.power_iteration(m, num_iters=2)
    b = ne.power_iteration(m, num_iters=2, key=random.PRNGKey(0))
    c = ne.power_iteration(m, num_iters=2, key=random.PRNGKey(1))
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.allclose(a[1], c[1])
    # one iteration's eigenvalue is the Rayleigh quotient of the first product
    val1, _ = ne.power_iteration(m, num_iters=1)
    u = z / np.linalg.norm(z)
    np.testing.assert_allclose(float(val1), u @ np.asarray(m) @ u, rtol=1e-5)


def test_power_iteration_jit_equals_eager():
    m = jnp.asarray(_psd(6).astype(np.float32))
    v0 = jnp.arange(1.0, 7.0)
    eager = ne.power_iteration(m, v0=v0, num_iters=7)
    jitted = nanofn.jit(lambda m, v, k: ne.power_iteration(m, v0=v, num_iters=k))(m, v0, 7)
    np.testing.assert_allclose(jitted[0], eager[0], rtol=1e-6)
    np.testing.assert_allclose(jitted[1], eager[1], rtol=1e-6, atol=1e-7)


def test_power_iteration_errors():
    with pytest.raises(ValueError, match="v0 must be provided"):
        ne.power_iteration(lambda v: v)
    with pytest.raises(ValueError, match="`matrix` must be a square"):
        ne.power_iteration(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="`v0` must have shape"):
        ne.power_iteration(jnp.eye(3), v0=jnp.ones(2))
    with pytest.raises(ValueError, match="`num_iters`"):
        ne.power_iteration(jnp.eye(3), num_iters=-1)
    with pytest.raises(ValueError, match="`error_tolerance`"):
        ne.power_iteration(jnp.eye(3), error_tolerance=-1e-3)


# --- matrix_inverse_pth_root ----------------------------------------------------------------


@pytest.mark.parametrize("p", [1, 2, 3, 4, 5, 8])
def test_matrix_inverse_pth_root_matches_eigh(p):
    m = _psd(6, seed=p, shift=1.0)
    root, error = ne.matrix_inverse_pth_root(jnp.asarray(m), p, ridge_epsilon=0.0,
                                             error_tolerance=1e-12)
    assert root.dtype == np.float64 and root.shape == (6, 6)
    np.testing.assert_allclose(root, _root(m, p), rtol=1e-7, atol=1e-9)
    assert float(error) < 1e-10
    # float32: the iteration's own error measure, and the root to float32 accuracy
    root32, err32 = ne.matrix_inverse_pth_root(jnp.asarray(m.astype(np.float32)), p)
    assert root32.dtype == np.float32 and float(err32) < 1e-5
    np.testing.assert_allclose(root32, _root(m, p), rtol=2e-3, atol=1e-4)


def test_matrix_inverse_pth_root_ridge_is_relative_to_top_eigenvalue():
    m = _psd(5, seed=2)
    eps = 1e-2
    root, _ = ne.matrix_inverse_pth_root(jnp.asarray(m), 2, ridge_epsilon=eps,
                                         error_tolerance=1e-12)
    damped = m + eps * np.linalg.eigvalsh(m)[-1] * np.eye(5)
    np.testing.assert_allclose(root, _root(damped, 2), rtol=1e-6)


def test_matrix_inverse_pth_root_ill_conditioned():
    rs = np.random.RandomState(0)
    for e in range(2, 7):
        u = scipy.stats.ortho_group.rvs(dim=16, random_state=rs)
        ms = u @ np.diag([10.0 ** (-e * i / 15) for i in range(16)]) @ u.T
        _, error = ne.matrix_inverse_pth_root(jnp.asarray(ms.astype(np.float32)), 4,
                                              ridge_epsilon=1e-12)
        assert float(error) < 0.1, e


def test_matrix_inverse_pth_root_one_by_one_and_traced_p():
    root, error = ne.matrix_inverse_pth_root(jnp.asarray([[4.0]]), 2, ridge_epsilon=0.0)
    np.testing.assert_allclose(root, [[0.5]], rtol=1e-6)
    assert root.shape == (1, 1) and float(error) == 0.0
    m = jnp.asarray(_psd(4, shift=1.0))
    f = nanofn.jit(lambda m, p: ne.matrix_inverse_pth_root(m, p, error_tolerance=1e-12))
    for p in (1, 3, 4):
        traced = f(m, p)
        eager = ne.matrix_inverse_pth_root(m, p, error_tolerance=1e-12)
        np.testing.assert_allclose(traced[0], eager[0], rtol=1e-10)


def test_matrix_inverse_pth_root_errors():
    with pytest.raises(ValueError, match="`p` must be a positive integer"):
        ne.matrix_inverse_pth_root(jnp.eye(3), 0)
    with pytest.raises(ValueError, match="`p` must be a positive integer"):
        ne.matrix_inverse_pth_root(jnp.eye(3), 2.5)
    with pytest.raises(ValueError, match="`matrix` must be a square"):
        ne.matrix_inverse_pth_root(jnp.ones((3, 2)), 2)
    with pytest.raises(ValueError, match="`ridge_epsilon`"):
        ne.matrix_inverse_pth_root(jnp.eye(3), 2, ridge_epsilon=-1.0)


# --- nnls ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(10, 4), (6, 8), (20, 20)])
def test_nnls_matches_scipy(shape):
    rs = np.random.RandomState(sum(shape))
    a = rs.normal(size=shape)
    b = rs.normal(size=shape[0])
    x = ne.nnls(jnp.asarray(a), jnp.asarray(b), 20000)
    ref, _ = scipy.optimize.nnls(a, b)
    assert x.shape == (shape[1],) and np.all(np.asarray(x) >= 0)
    # the optimum's objective (the minimizer itself may not be unique when M < N)
    np.testing.assert_allclose(np.linalg.norm(a @ x - b), np.linalg.norm(a @ ref - b),
                               rtol=1e-6, atol=1e-9)
    if shape[0] >= shape[1]:
        np.testing.assert_allclose(x, ref, atol=1e-6)


def test_nnls_several_right_hand_sides_and_monotone():
    rs = np.random.RandomState(0)
    a = rs.normal(size=(10, 11)).astype(np.float32)
    b = rs.normal(size=(10, 3)).astype(np.float32)
    objectives = []
    for iters in range(6):
        x = ne.nnls(jnp.asarray(a), jnp.asarray(b), iters)
        assert x.shape == (11, 3) and x.dtype == np.float32 and np.all(np.asarray(x) >= 0)
        objectives.append(np.sum((a @ np.asarray(x) - b) ** 2, axis=0))
    assert np.all(np.diff(np.stack(objectives), axis=0) <= 1e-6)
    x = ne.nnls(jnp.asarray(a), jnp.asarray(b), 3)
    for k in range(3):  # the columns are independent problems
        np.testing.assert_allclose(x[:, k], ne.nnls(jnp.asarray(a), jnp.asarray(b[:, k]), 3),
                                   rtol=1e-6, atol=1e-7)


def test_nnls_zero_matrix_and_given_bound_and_jit():
    x = ne.nnls(jnp.zeros((3, 2)), jnp.ones(3), 5)  # L = 0 is replaced by 1
    np.testing.assert_array_equal(x, np.zeros(2))
    rs = np.random.RandomState(1)
    a, b = jnp.asarray(rs.normal(size=(6, 3))), jnp.asarray(rs.normal(size=6))
    lmax = np.linalg.eigvalsh(np.asarray(a).T @ np.asarray(a))[-1]
    np.testing.assert_allclose(ne.nnls(a, b, 5000, L=lmax), scipy.optimize.nnls(
        np.asarray(a), np.asarray(b))[0], atol=1e-8)
    eager = ne.nnls(a, b, 9, unroll=2)
    np.testing.assert_allclose(nanofn.jit(lambda a, b: ne.nnls(a, b, 9))(a, b), eager,
                               rtol=1e-12)


def test_nnls_errors():
    with pytest.raises(ValueError, match="`A` must be a 2-d"):
        ne.nnls(jnp.ones(3), jnp.ones(3), 5)
    with pytest.raises(ValueError, match="`b` must be 1-d or 2-d"):
        ne.nnls(jnp.ones((3, 2)), jnp.ones((3, 2, 1)), 5)
    with pytest.raises(ValueError, match="as many rows"):
        ne.nnls(jnp.ones((3, 2)), jnp.ones(4), 5)
    with pytest.raises(ValueError, match="`iters`"):
        ne.nnls(jnp.ones((3, 2)), jnp.ones(3), -1)
    with pytest.raises(ValueError, match="`L`"):
        ne.nnls(jnp.ones((3, 2)), jnp.ones(3), 5, L=-2.0)


# --- multi_normal ---------------------------------------------------------------------------


def test_multi_normal_log_prob_and_params():
    loc = np.array([[0.0, 1.0, -1.0]])
    log_scale = np.array([[0.1], [-0.3]])
    dist = ne.multi_normal(jnp.asarray(loc), jnp.asarray(log_scale))
    assert isinstance(dist, ne.MultiNormalDiagFromLogScale)
    mean, ls = dist.params
    np.testing.assert_array_equal(mean, loc)
    np.testing.assert_array_equal(ls, log_scale)
    np.testing.assert_array_equal(dist.log_scale, log_scale)
    x = np.random.RandomState(0).normal(size=(4, 2, 3))
    ref = scipy.stats.norm.logpdf(x, loc=loc, scale=np.exp(log_scale)).sum(axis=(-1, -2))
    np.testing.assert_allclose(dist.log_prob(jnp.asarray(x)), ref, rtol=1e-10)
    scalar = ne.multi_normal(0.5, 0.0)
    np.testing.assert_allclose(scalar.log_prob(jnp.asarray([1.0, 2.0])),
                               scipy.stats.norm.logpdf([1.0, 2.0], loc=0.5), rtol=1e-6)


def test_multi_normal_sample():
    dist = ne.multi_normal(jnp.asarray([1.0, -2.0]), jnp.log(jnp.asarray([0.5, 2.0])))
    s = dist.sample([20000], random.PRNGKey(0))
    assert s.shape == (20000, 2)
    np.testing.assert_allclose(np.mean(s, axis=0), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(np.std(s, axis=0), [0.5, 2.0], rtol=0.03)
    z = random.normal(random.PRNGKey(3), (2, 2))
    np.testing.assert_allclose(dist.sample((2,), random.PRNGKey(3)),
                               z * np.array([0.5, 2.0]) + np.array([1.0, -2.0]), rtol=1e-6)


def test_multi_normal_bad_broadcast():
    with pytest.raises(ValueError, match="Incompatible shapes for broadcasting"):
        ne.multi_normal(jnp.zeros((2, 3)), jnp.zeros((3, 2)))


# --- scale_by_distance_over_gradients -------------------------------------------------------


def _dog_reference(params, grads, reps_rel, eps, global_scale):
    x0 = {k: np.asarray(v, np.float64) for k, v in params[0].items()}
    dist = {k: reps_rel * (1 + np.linalg.norm(v)) for k, v in x0.items()}
    sos = {k: 0.0 for k in x0}
    out = []
    for p, g in zip(params, grads):
        step = {}
        for k in x0:
            dist[k] = max(dist[k], np.linalg.norm(np.asarray(p[k]) - x0[k]))
            sos[k] += np.sum(np.asarray(g[k], np.float64) ** 2)
            step[k] = global_scale * dist[k] / np.sqrt(sos[k] + eps) * np.asarray(g[k])
        out.append(step)
    return out


def test_dog_matches_numpy_reference():
    rs = np.random.RandomState(0)
    params = [{"w": rs.normal(size=(2, 3)), "b": rs.normal(size=3)} for _ in range(4)]
    grads = [{"w": rs.normal(size=(2, 3)), "b": rs.normal(size=3)} for _ in range(4)]
    tx = ne.scale_by_distance_over_gradients(reps_rel=1e-2, eps=1e-6, global_scale=-2.0,
                                             param_dtype=np.float64)
    state = tx.init(params[0])
    ref = _dog_reference(params, grads, 1e-2, 1e-6, -2.0)
    for p, g, r in zip(params, grads, ref):
        u, state = tx.update({k: jnp.asarray(v) for k, v in g.items()}, state,
                             {k: jnp.asarray(v) for k, v in p.items()})
        for k in r:
            np.testing.assert_allclose(u[k], r[k], rtol=1e-10)
    assert state.grad_sum_of_squares["w"].shape == (1,)
    assert state.max_dist["w"].shape == ()


def test_dog_state_dtypes_scalar_leaf_and_jit():
    params = {"s": jnp.asarray(2.0), "v": jnp.asarray([1.0, -1.0])}
    tx = ne.scale_by_distance_over_gradients()
    state = tx.init(params)
    assert state.init_params["s"].dtype == np.float32
    u, new_state = tx.update(params, state, params)
    assert u["s"].shape == () and u["v"].shape == (2,)
    assert nanofn.tree.structure(new_state) == nanofn.tree.structure(state)
    for a, b in zip(nanofn.tree.leaves(new_state), nanofn.tree.leaves(state)):
        assert a.dtype == b.dtype and a.shape == b.shape
    jitted = nanofn.jit(tx.update)(params, state, params)
    np.testing.assert_allclose(jitted[0]["v"], u["v"], rtol=1e-6)


def test_dog_descends_with_negative_scale():
    def loss(p):
        return jnp.sum((p - 3.0) ** 2)

    tx = ne.scale_by_distance_over_gradients(reps_rel=1e-4, global_scale=-1.0)
    params = jnp.zeros(4)
    state = tx.init(params)
    for _ in range(200):
        u, state = tx.update(nanofn.grad(loss)(params), state, params)
        params = optim.apply_updates(params, u)
    assert float(loss(params)) < 1e-2


def test_dog_errors():
    tx = ne.scale_by_distance_over_gradients()
    with pytest.raises(ValueError, match="needs the current parameters"):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)))
    with pytest.raises(ValueError, match="`reps_rel`"):
        ne.scale_by_distance_over_gradients(reps_rel=-1.0)
    with pytest.raises(ValueError, match="`eps`"):
        ne.scale_by_distance_over_gradients(eps=-1.0)


# --- inject_stateful_hyperparams ------------------------------------------------------------


def _grads(n):
    rs = np.random.RandomState(5)
    return [{"w": jnp.asarray(rs.normal(size=(2, 2)).astype(np.float32))} for _ in range(n)]


def test_inject_hyperparams_is_the_stateful_form_and_follows_the_plain_optimizer():
    # optax 0.2.8 defines inject_hyperparams as inject_stateful_hyperparams: the same state
    sched = optim.exponential_decay(0.1, 3, 0.5)
    b = optim.inject_hyperparams(optim.adam)(learning_rate=sched, b1=0.8)
    plain = optim.adam(sched, b1=0.8)
    params = {"w": jnp.zeros((2, 2))}
    sb, sp = b.init(params), plain.init(params)
    assert isinstance(sb, ne.InjectStatefulHyperparamsState)
    assert sb._fields == ("count", "hyperparams", "hyperparams_states", "inner_state")
    for g in _grads(6):
        ub, sb = b.update(g, sb, params)
        up, sp = plain.update(g, sp, params)
        np.testing.assert_allclose(ub["w"], up["w"], rtol=2e-5)  # float32 rounding
    assert int(sb.count) == 6 and int(sb.hyperparams_states["learning_rate"].count) == 6
    np.testing.assert_allclose(float(sb.hyperparams["learning_rate"]), float(sched(5)),
                               rtol=1e-6)
    assert sb.hyperparams["b1"].dtype == np.float32


def test_inject_stateful_schedule_sees_extra_args_and_numeric_override():
    class Counter:  # value = sum of the losses seen so far
        def init(self):
            return jnp.asarray(0.0)

        def update(self, state, value=None, **extra):
            return state + value

        def __call__(self, state, **extra):
            return 0.1 + state

    tx = ne.inject_stateful_hyperparams(optim.sgd)(learning_rate=Counter(), momentum=0.0)
    params = jnp.zeros(1)
    state = tx.init(params)
    lrs = []
    for loss in (1.0, 2.0, 3.0):
        u, state = tx.update(jnp.ones(1), state, params, value=jnp.asarray(loss))
        lrs.append(float(-u[0]))
    np.testing.assert_allclose(lrs, [0.1, 1.1, 3.1], rtol=1e-6)
    np.testing.assert_allclose(state.hyperparams_states["learning_rate"], 6.0)
    state.hyperparams["momentum"] = jnp.asarray(0.5)
    u, state = tx.update(jnp.ones(1), state, params, value=jnp.asarray(0.0))
    np.testing.assert_allclose(state.hyperparams["momentum"], 0.5)


def test_inject_stateful_jit_and_dtype():
    tx = ne.inject_stateful_hyperparams(optim.sgd, hyperparam_dtype=np.float64)(
        learning_rate=ne.WrappedSchedule(optim.linear_schedule(0.5, 0.1, 4)))
    params = {"w": jnp.zeros((2, 2))}
    state = tx.init(params)
    assert state.hyperparams["learning_rate"].dtype == np.float64
    step = nanofn.jit(tx.update)
    eager_state = state
    for g in _grads(5):
        u, state = step(g, state, params)
        ue, eager_state = tx.update(g, eager_state, params)
        np.testing.assert_allclose(u["w"], ue["w"], rtol=1e-6)
    np.testing.assert_allclose(state.hyperparams["learning_rate"], 0.1, rtol=1e-6)


def test_wrapped_schedule_and_errors():
    ws = ne.WrappedSchedule(lambda c: 2.0 * c)
    s = ws.init()
    assert int(s.count) == 0 and s.count.dtype == np.int32
    s = ws.update(ws.update(s, value=1.0))
    assert float(ws(s, value=3.0)) == 4.0
    with pytest.raises(TypeError, match="`schedule_fn`"):
        ne.WrappedSchedule(0.1)
    with pytest.raises(ValueError, match="`static_args`"):
        ne.inject_stateful_hyperparams(optim.sgd, static_args="nope")
    with pytest.raises(ValueError, match="learning_rate"):
        ne.inject_stateful_hyperparams(optim.adam)(learning_rate=-1.0)
