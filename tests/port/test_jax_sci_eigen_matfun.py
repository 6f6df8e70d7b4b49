"""Port: eigenvalue and matrix-function programs in JAX, the dense linear algebra of
spectral design, system identification and low-rank fitting scripts.

1. Spectral design: the smallest eigenvalue of a symmetric matrix `A0 + sum_i p_i A_i`
   (`jnp.linalg.eigh`) is maximised over `p` by gradient ascent in `lax.scan`; its
   gradient is checked against the analytic `v^T A_i v`. Power iteration in
   `lax.fori_loop` (with a Rayleigh quotient) estimates the largest eigenvalue.
2. A linear ODE `x' = A x` is fitted to noisy samples: `x(t) = expm(t A) x0` with
   `jax.scipy.linalg.expm` under `vmap` over times, and the fit's gradient in `A`.
3. Low-rank approximation: a truncated `jnp.linalg.svd` and the gradient of the sum
   of the top singular values (nuclear-norm-like) with respect to the matrix.
4. Least squares four ways: `jnp.linalg.lstsq`, `qr` with a triangular solve
   (`jax.scipy.linalg.solve_triangular`), `pinv`, and the normal equations via
   `cho_factor`; plus `slogdet` and its gradient (`inv(A)^T`), and `jnp.linalg.norm`
   with `ord=2` and `'nuc'`.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax, jsp):
    k1, k2, k3, k4, k5 = jax.random.split(jax.random.key(21), 5)
    n = 5

    def sym(m):
        return 0.5 * (m + m.T)

    a0 = sym(jax.random.normal(k1, (n, n)))
    basis = jax.vmap(sym)(jax.random.normal(k2, (3, n, n)))

    def assemble(p):
        return a0 + jnp.einsum("i,ijk->jk", p, basis)

    def smallest_eig(p):
        return jnp.linalg.eigh(assemble(p))[0][0]

    p0 = jnp.array([0.3, -0.2, 0.1])
    g_eig = jax.grad(smallest_eig)(p0)
    w, v = jnp.linalg.eigh(assemble(p0))
    g_analytic = jnp.einsum("j,ijk,k->i", v[:, 0], basis, v[:, 0])

    def ascent(p, _):
        p = p + 0.1 * jax.grad(smallest_eig)(p) - 0.01 * p
        return p, smallest_eig(p)

    p_end, eig_path = lax.scan(ascent, p0, None, length=15)

    def power_iteration(m, iters=60):
        def body(_, x):
            y = m @ x
            return y / jnp.linalg.norm(y)

        x = lax.fori_loop(0, iters, body, jnp.ones(m.shape[0]) / jnp.sqrt(m.shape[0]))
        return x @ m @ x, x

    spd = a0 @ a0.T + jnp.eye(n)
    lam_power, _ = jax.jit(power_iteration)(spd)
    lam_max = jnp.linalg.eigvalsh(spd)[-1]

    # 2. Fit a 2x2 linear ODE through expm.
    a_true = jnp.array([[-0.3, 1.2], [-1.0, -0.2]])
    x0 = jnp.array([1.0, 0.0])
    ts = jnp.linspace(0.0, 3.0, 12)

    def trajectory(a):
        return jax.vmap(lambda t: jsp.linalg.expm(t * a) @ x0)(ts)

    data = trajectory(a_true) + 0.02 * jax.random.normal(k3, (12, 2))

    def fit_loss(a):
        return jnp.mean((trajectory(a) - data) ** 2)

    a_init = jnp.array([[0.0, 1.0], [-1.0, 0.0]])

    def fit_step(a, _):
        loss, g = jax.value_and_grad(fit_loss)(a)
        return a - 0.5 * g, loss

    a_fit, fit_losses = lax.scan(fit_step, a_init, None, length=25)
    g_expm = jax.grad(lambda a: jnp.sum(jsp.linalg.expm(a) * jnp.array([[1.0, 2.0],
                                                                       [0.5, -1.0]])))(
        a_init + 0.1)

    # 3. Low rank: a truncated SVD and the gradient of the top singular values.
    m = jax.random.normal(k4, (6, 4)) @ jnp.diag(jnp.array([3.0, 2.0, 0.3, 0.1]))
    u, s, vt = jnp.linalg.svd(m, full_matrices=False)
    rank2 = (u[:, :2] * s[:2]) @ vt[:2]
    top2_grad = jax.grad(lambda x: jnp.sum(jnp.linalg.svd(x, compute_uv=False)[:2]))(m)

    # 4. Least squares and determinants.
    design = jax.random.normal(k5, (10, 3))
    target = design @ jnp.array([1.0, -2.0, 0.5]) + 0.1 * jnp.sin(jnp.arange(10.0))
    coef_lstsq, resid, rank, sv = jnp.linalg.lstsq(design, target)
    q, r = jnp.linalg.qr(design)
    coef_qr = jsp.linalg.solve_triangular(r, q.T @ target, lower=False)
    coef_pinv = jnp.linalg.pinv(design) @ target
    cho = jsp.linalg.cho_factor(design.T @ design)
    coef_normal = jsp.linalg.cho_solve(cho, design.T @ target)
    sign, logdet = jnp.linalg.slogdet(spd)
    g_logdet = jax.grad(lambda x: jnp.linalg.slogdet(x)[1])(spd)
    lstsq_grad = jax.grad(lambda y: jnp.sum(jnp.linalg.lstsq(design, y)[0] ** 2))(target)

    return {"g_eig": g_eig, "g_analytic": g_analytic, "eig_min": w[0], "p_end": p_end,
            "eig_path": eig_path, "lam_power": lam_power, "lam_max": lam_max,
            "a_fit": a_fit, "fit_losses": fit_losses, "g_expm": g_expm,
            "singular_values": s, "rank2": rank2, "rank2_err": jnp.linalg.norm(m - rank2),
            "top2_grad": top2_grad, "coef_lstsq": coef_lstsq, "resid": resid,
            "rank": rank, "sv": sv, "coef_qr": coef_qr, "coef_pinv": coef_pinv,
            "coef_normal": coef_normal, "sign": sign, "logdet": logdet,
            "g_logdet": g_logdet, "lstsq_grad": lstsq_grad,
            "norm2": jnp.linalg.norm(m, ord=2), "norm_nuc": jnp.linalg.norm(m, ord="nuc"),
            "abs_r_diag": jnp.abs(jnp.diag(r)), "spd": spd}


def test_eigen_matfun_matches_jax():
    got, _ = check_against_jax("test_jax_sci_eigen_matfun", program, rtol=1e-3,
                               atol=1e-4)
    np.testing.assert_allclose(got["g_eig"], got["g_analytic"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["lam_power"], got["lam_max"], rtol=1e-4)
    assert got["fit_losses"][-1] < 0.2 * got["fit_losses"][0]
    for key in ("coef_qr", "coef_pinv", "coef_normal"):
        np.testing.assert_allclose(got[key], got["coef_lstsq"], rtol=1e-4, atol=1e-5)
    # d logdet(X) / dX = X^-T
    np.testing.assert_allclose(got["g_logdet"].T @ got["spd"], np.eye(5), atol=1e-4)
