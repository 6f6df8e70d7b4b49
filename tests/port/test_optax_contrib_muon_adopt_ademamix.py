"""Port: optax.contrib's Muon, ADOPT and AdEMAMix (`optax/contrib/_muon.py`, `_adopt.py`,
`_ademamix.py` and their tests, google-deepmind/optax repository).

Each optimizer runs 20 steps on the small problem of test_optax_aliases.py (a parabola
plus a Rosenbrock-like term on a pytree with a vector and a matrix leaf), with optax's
defaults and with other settings. For Muon the matrix leaf takes the Muon path and the
vector leaf the AdamW path; a second problem adds a 3-d leaf routed by
`MuonDimensionNumbers` (a batch axis, or two axes flattened into the output). The
Newton-Schulz helper itself is compared on a few matrices, with each preconditioning.
Checked against optax: every loss along the trajectory and the final parameters.
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

    rs = np.random.RandomState(0)
    params3 = dict(params0, t=jnp.asarray(rs.normal(size=(2, 3, 4)).astype(np.float32)),
                   w=jnp.asarray(rs.normal(size=(4, 2)).astype(np.float32)))
    target_t = jnp.asarray(rs.normal(size=(2, 3, 4)).astype(np.float32))

    def loss3(p):
        return (loss(p) + jnp.sum((p["t"] - target_t) ** 2) + 0.1 * jnp.sum(p["t"] ** 4)
                + jnp.sum((p["w"] @ p["m"] - 0.5) ** 2))

    def run(opt, params=params0, f=loss, steps=20):
        state = opt.init(params)
        losses = []
        for _ in range(steps):
            value, grad = jax.value_and_grad(f)(params)
            updates, state = opt.update(grad, state, params)
            losses.append(value)
            params = optax.apply_updates(params, updates)
        return {"losses": jnp.stack(losses), "params": params}

    dims = contrib.MuonDimensionNumbers
    mask = {"v": True, "m": False}
    cases = {
        # Muon: "m" (2-d) takes the Muon path, "v" (1-d) AdamW's
        "muon": run(contrib.muon(0.05)),
        "muon_options": run(contrib.muon(0.05, beta=0.9, nesterov=False, adaptive=True,
                                         weight_decay=0.1, consistent_rms=0.2,
                                         adam_learning_rate=0.02, adam_weight_decay=0.01)),
        "muon_spectral": run(contrib.muon(0.05, preconditioning="spectral", ns_steps=3)),
        "muon_aol_dion": run(contrib.muon(0.05, ns_coeffs="dion", preconditioning="aol")),
        "muon_schatten": run(contrib.muon(0.05, preconditioning="schatten",
                                          ns_coeffs=((3.0, -3.2, 1.2), (2.0, -1.5, 0.5)))),
        "muon_dims": run(contrib.muon(
            0.05, muon_weight_dimension_numbers={
                "v": None, "m": dims(), "w": None, "t": dims(reduction_axis=1, output_axis=2)}),
            params=params3, f=loss3),
        "muon_dims_fn": run(contrib.muon(
            0.05, weight_decay=0.05, weight_decay_mask={"v": False, "m": True, "t": False,
                                                        "w": True},
            muon_weight_dimension_numbers=lambda p: {
                "v": None, "m": dims(1, 0), "w": dims(),
                "t": dims(reduction_axis=(1,), output_axis=(0, 2))}),
            params=params3, f=loss3),
        "muon_default_rule": run(contrib.muon(0.05, mu_dtype=jnp.float32), params=params3,
                                 f=loss3),
        # optax's scale_by_muon takes a bare matrix when given no dimension numbers
        "scale_by_muon": run(optax.chain(contrib.scale_by_muon(ns_steps=6),
                                         optax.scale(-0.05)),
                             params=params0["m"], f=lambda m: loss(dict(params0, m=m))),
        # ADOPT
        "adopt": run(contrib.adopt(0.05)),
        "adopt_nesterov": run(contrib.adopt(0.05, b1=0.8, b2=0.99, nesterov=True)),
        "adopt_noclip": run(contrib.adopt(0.02, use_clipping=False)),
        "adopt_clip_fn": run(contrib.adopt(0.05, clip_value_fn=lambda c: 0.5 * c ** 0.5)),
        # AdEMAMix
        "ademamix": run(contrib.ademamix(0.05)),
        "ademamix_options": run(contrib.ademamix(0.05, b3=0.99, alpha=2.0, eps_root=1e-8,
                                                 weight_decay=0.1, mask=mask)),
        "ademamix_schedules": run(contrib.ademamix(
            0.05, b3=optax.linear_schedule(0.9, 0.999, 10),
            alpha=optax.linear_schedule(0.0, 5.0, 15))),
        "scale_by_ademamix": run(optax.chain(contrib.scale_by_ademamix(b3=0.99),
                                             optax.scale(-0.02))),
        "simplified_ademamix": run(contrib.simplified_ademamix(0.005)),
        "simplified_ademamix_options": run(contrib.simplified_ademamix(
            0.01, b1=0.9, b2=0.99, alpha=optax.linear_schedule(0.0, 3.0, 10),
            weight_decay=0.1, mask=mask)),
    }

    helper = contrib._muon.orthogonalize_via_newton_schulz
    x = jnp.asarray(rs.normal(size=(5, 3)).astype(np.float32))
    x3 = jnp.asarray(rs.normal(size=(3, 2, 4)).astype(np.float32))
    coeffs = jnp.asarray([3.4445, -4.7750, 2.0315])
    cases["newton_schulz"] = {
        "converged": helper(x, jnp.asarray([2.0, -1.5, 0.5]), ns_steps=20, eps=1e-12),
        "frobenius": helper(x, coeffs),
        "spectral": helper(x.T, coeffs, preconditioning="spectral"),
        "aol": helper(x, coeffs, ns_steps=4, preconditioning="aol"),
        "schatten": helper(x, jnp.asarray([[3.0, -3.2, 1.2], [2.0, -1.5, 0.5]]),
                           preconditioning="schatten"),
        "batched": helper(x3, coeffs, dimension_numbers=dims(reduction_axis=2, output_axis=1)),
        "flattened": helper(x3, coeffs, dimension_numbers=dims(reduction_axis=(0, 1),
                                                               output_axis=2)),
    }
    return cases


def test_contrib_muon_adopt_ademamix_match_optax():
    got, _ = check_against_optax("test_optax_contrib_muon_adopt_ademamix", program,
                                 rtol=2e-4, atol=2e-5)
    for name in ("muon", "muon_options", "muon_aol_dion", "muon_dims", "muon_dims_fn", "adopt",
                 "adopt_nesterov", "ademamix", "ademamix_schedules", "simplified_ademamix"):
        losses = got[f"{name}/losses"]
        assert losses[-1] < losses[0], (name, losses[0], losses[-1])
    # ADOPT's first step only fills the second moment: the params do not move.
    assert got["adopt/losses"][1] == got["adopt/losses"][0]
    q = got["newton_schulz/converged"]
    np.testing.assert_allclose(q.T @ q, np.eye(3), atol=1e-4)
