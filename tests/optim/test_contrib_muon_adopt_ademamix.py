"""nanofn.optim.contrib's Muon, ADOPT and AdEMAMix without JAX: errors, jit against eager,
state layout, and properties of the Newton-Schulz iteration. (The numbers themselves are
checked against optax in tests/port/test_optax_contrib_muon_adopt_ademamix.py.)"""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp
from nanofn import optim
from nanofn.optim import contrib
from nanofn.optim.contrib import _muon

DIMS = contrib.MuonDimensionNumbers


def _params():
    rs = np.random.RandomState(1)
    return {"v": jnp.asarray(rs.normal(size=3).astype(np.float32)),
            "m": jnp.asarray(rs.normal(size=(2, 3)).astype(np.float32)),
            "t": jnp.asarray(rs.normal(size=(2, 3, 4)).astype(np.float32))}


def _loss(p):
    return (jnp.sum((p["v"] - 0.3) ** 2) + jnp.sum((1.0 - p["m"]) ** 2)
            + jnp.sum(p["t"] ** 2) + 0.1 * jnp.sum(p["v"] * p["m"][0]))


def _run(opt, steps, jit):
    params = _params()
    state = opt.init(params)

    def step(params, state):
        updates, state = opt.update(nanofn.grad(_loss)(params), state, params)
        return optim.apply_updates(params, updates), state

    if jit:
        step = nanofn.jit(step)
    for _ in range(steps):
        params, state = step(params, state)
    return params


T_DIMS = {"v": None, "m": DIMS(), "t": DIMS(reduction_axis=1, output_axis=2)}

OPTIMIZERS = {
    "muon": lambda: contrib.muon(0.05, muon_weight_dimension_numbers=T_DIMS),
    "muon_aol": lambda: contrib.muon(0.05, ns_coeffs="dion", preconditioning="aol",
                                     adaptive=True, muon_weight_dimension_numbers=T_DIMS),
    "muon_schatten": lambda: contrib.muon(0.05, preconditioning="schatten", nesterov=False,
                                          weight_decay=0.1),
    "muon_spectral": lambda: contrib.muon(0.05, preconditioning="spectral", consistent_rms=0.2),
    "adopt": lambda: contrib.adopt(0.05, nesterov=True),
    "ademamix": lambda: contrib.ademamix(0.05, alpha=optim.linear_schedule(0.0, 5.0, 3),
                                         b3=optim.linear_schedule(0.9, 0.99, 3)),
    "simplified_ademamix": lambda: contrib.simplified_ademamix(0.01, alpha=1.0,
                                                               weight_decay=0.1),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_jit_matches_eager(name):
    eager = _run(OPTIMIZERS[name](), 4, jit=False)
    jitted = _run(OPTIMIZERS[name](), 4, jit=True)
    for key in eager:
        np.testing.assert_allclose(np.asarray(jitted[key]), np.asarray(eager[key]),
                                   rtol=1e-5, atol=1e-6, err_msg=f"{name}/{key}")
        assert jitted[key].shape == eager[key].shape


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_losses_decrease(name):
    assert float(_loss(_run(OPTIMIZERS[name](), 15, jit=False))) < float(_loss(_params()))


def test_muon_routes_matrices_to_muon_and_the_rest_to_adam():
    params = _params()
    state = contrib.muon(0.1).init(params)
    muon_state = state.inner_states["muon"].inner_state[0]
    assert isinstance(muon_state, contrib.MuonState)
    # default rule: only the 2-d leaf is a Muon parameter
    assert muon_state.mu["m"].shape == (2, 3)
    assert isinstance(muon_state.mu["v"], optim.MaskedNode)
    assert isinstance(muon_state.mu["t"], optim.MaskedNode)
    adam_state = state.inner_states["adam"].inner_state[0]
    assert adam_state.mu["t"].shape == (2, 3, 4)
    assert isinstance(adam_state.mu["m"], optim.MaskedNode)
    # a prefix of dimension numbers: None sends a whole subtree to Adam
    nested = {"a": {"x": jnp.ones((2, 2)), "y": jnp.ones((2, 2))}, "b": jnp.ones((3, 2))}
    opt = contrib.muon(0.1, muon_weight_dimension_numbers={"a": None, "b": DIMS()})
    mu = opt.init(nested).inner_states["muon"].inner_state[0].mu
    assert isinstance(mu["a"]["x"], optim.MaskedNode) and mu["b"].shape == (3, 2)
    updates, _ = opt.update(nested, opt.init(nested), nested)
    assert {k: v.shape for k, v in updates["a"].items()} == {"x": (2, 2), "y": (2, 2)}


def test_muon_update_is_orthogonal_and_width_scaled():
    w = jnp.asarray(np.random.RandomState(2).normal(size=(4, 8)).astype(np.float32))
    u, _ = contrib.muon(1.0).update({"w": w}, contrib.muon(1.0).init({"w": w}), {"w": w})
    s = np.linalg.svd(-np.asarray(u["w"]) / np.sqrt(8 / 4), compute_uv=False)
    assert np.all((s > 0.5) & (s < 1.3)), s  # near 1, as the tuned coefficients promise


def test_batch_axes_are_orthogonalised_independently():
    x = jnp.asarray(np.random.RandomState(3).normal(size=(3, 4, 5)).astype(np.float32))
    coeffs = jnp.asarray(_muon._DEFAULT_NS_COEFFS)
    stacked = _muon.orthogonalize_via_newton_schulz(x, coeffs, dimension_numbers=DIMS(1, 2))
    for i in range(3):
        one = _muon.orthogonalize_via_newton_schulz(x[i], coeffs)
        np.testing.assert_allclose(np.asarray(stacked[i]), np.asarray(one), rtol=1e-5,
                                   atol=1e-6)
    # transposing the matrix transposes the result
    np.testing.assert_allclose(
        np.asarray(_muon.orthogonalize_via_newton_schulz(x[0].T, coeffs)),
        np.asarray(_muon.orthogonalize_via_newton_schulz(x[0], coeffs)).T, rtol=1e-5,
        atol=1e-6)


def test_newton_schulz_on_complex_matrices_gives_a_unitary():
    rs = np.random.RandomState(4)
    z = jnp.asarray((rs.normal(size=(4, 3)) + 1j * rs.normal(size=(4, 3))).astype(np.complex64))
    q = np.asarray(_muon.orthogonalize_via_newton_schulz(z, jnp.asarray([2.0, -1.5, 0.5]),
                                                         ns_steps=25))
    np.testing.assert_allclose(q.conj().T @ q, np.eye(3), atol=1e-4)


def test_muon_state_keeps_coefficient_rows():
    state = contrib.scale_by_muon(ns_coeffs=_muon._DION_NS_COEFFS).init(jnp.zeros((2, 2)))
    assert state.ns_coeffs.shape == (5, 3)
    assert contrib.scale_by_muon().init(jnp.zeros((2, 2))).ns_coeffs.shape == (3,)


def test_adopt_first_step_is_zero_and_state_is_adams():
    tx = contrib.adopt(0.1)
    state = tx.init({"a": jnp.ones(2)})
    u, state = tx.update({"a": jnp.asarray([3.0, -2.0])}, state)
    assert np.all(np.asarray(u["a"]) == 0.0)
    assert isinstance(state[0], optim.ScaleByAdamState)
    np.testing.assert_allclose(np.asarray(state[0].nu["a"]), [9.0, 4.0])


def test_ademamix_schedules_read_the_slow_count():
    seen = []

    def alpha(count):
        seen.append(count)
        return 2.0

    tx = contrib.scale_by_ademamix(alpha=alpha)
    state = tx.init(jnp.zeros(1))
    for _ in range(2):
        _, state = tx.update(jnp.ones(1), state)
    assert [int(c) for c in seen] == [0, 1]
    assert int(state.count_m2) == 2


@pytest.mark.parametrize("make, message", [
    (lambda: contrib.muon(-0.1), "learning_rate"),
    (lambda: contrib.muon(0.1, ns_coeffs="muon"), "preset"),
    (lambda: contrib.muon(0.1, preconditioning="newton"), "preconditioning"),
    (lambda: contrib.muon(0.1, weight_decay=-1.0), "weight_decay"),
    (lambda: contrib.muon(0.1, adam_b2=1.0), "b2"),
    (lambda: contrib.scale_by_muon(ns_coeffs=(1.0, 2.0)), "ns_coeffs"),
    (lambda: contrib.scale_by_muon(ns_coeffs="dion"), "ns_coeffs"),
    (lambda: contrib.scale_by_muon(ns_coeffs=_muon._DION_NS_COEFFS, ns_steps=3), "rows"),
    (lambda: contrib.scale_by_muon(ns_steps=2.5), "ns_steps"),
    (lambda: contrib.scale_by_muon(beta=1.0), "beta"),
    (lambda: contrib.adopt(0.1, b1=1.5), "b1"),
    (lambda: contrib.adopt(0.1, eps=-1e-6), "eps"),
    (lambda: contrib.ademamix(0.1, b3=1.0), "b3"),
    (lambda: contrib.ademamix(0.1, alpha=float("inf")), "alpha"),
    (lambda: contrib.simplified_ademamix(0.1, b2=-0.1), "b2"),
    (lambda: contrib.simplified_ademamix(0.1, weight_decay=-0.1), "weight_decay"),
])
def test_bad_hyperparameters_name_the_argument(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_bad_dimension_numbers_are_explained():
    params = {"v": jnp.ones(3), "m": jnp.ones((2, 3))}
    grads = params
    # a 1-d leaf given dimension numbers cannot be a matrix
    opt = contrib.muon(0.1, muon_weight_dimension_numbers={"v": DIMS(), "m": DIMS()})
    with pytest.raises(ValueError, match="rank >= 2"):
        opt.update(grads, opt.init(params), params)
    opt = contrib.muon(0.1, muon_weight_dimension_numbers={"v": None, "m": DIMS(0, 0)})
    with pytest.raises(ValueError, match="disjoint"):
        opt.update(grads, opt.init(params), params)
    opt = contrib.muon(0.1, muon_weight_dimension_numbers={"v": None, "m": DIMS(0, 5)})
    with pytest.raises(ValueError, match="out of range"):
        opt.update(grads, opt.init(params), params)
    opt = contrib.muon(0.1, muon_weight_dimension_numbers={"v": None, "x": DIMS()})
    with pytest.raises(ValueError, match="prefix"):
        opt.init(params)
    tx = contrib.scale_by_muon()
    with pytest.raises(ValueError, match=r"params\['v'\].*2-D"):
        tx.update(grads, tx.init(params))
    with pytest.raises(ValueError, match="dimension_numbers"):
        _muon.orthogonalize_via_newton_schulz(jnp.ones((2, 2, 2)), jnp.ones(3))


@pytest.mark.parametrize("name, kwargs", [
    ("muon", {"preconditioning": "aol"}), ("adopt", {}),
    ("ademamix", {"alpha": optim.linear_schedule(0.0, 5.0, 3)}), ("simplified_ademamix", {})])
def test_inject_hyperparams_under_jit_matches_the_plain_optimizer(name, kwargs):
    # every numeric argument becomes a (traced, under jit) array: Muon's ns_steps then
    # drives a fori_loop, ADOPT's clip_value_fn arrives as this step's bound
    factory = getattr(contrib, name)
    injected = optim.inject_hyperparams(factory)(learning_rate=0.1, **kwargs)
    plain = factory(0.1, **kwargs)
    params = _params()
    s_inj, s_plain = injected.init(params), plain.init(params)
    update = nanofn.jit(injected.update)
    for _ in range(3):
        grads = nanofn.grad(_loss)(params)
        u_inj, s_inj = update(grads, s_inj, params)
        u_plain, s_plain = plain.update(grads, s_plain, params)
        for key in u_plain:
            np.testing.assert_allclose(np.asarray(u_inj[key]), np.asarray(u_plain[key]),
                                       rtol=1e-5, atol=1e-6, err_msg=key)
        params = optim.apply_updates(params, u_plain)
