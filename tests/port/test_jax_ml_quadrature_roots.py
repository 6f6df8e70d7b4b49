"""Port: numerical quadrature, root finding and polynomial fitting in JAX, as in
numerical-methods course notebooks ported to JAX.

Gauss-Legendre nodes come from Newton's method on the Legendre polynomial (evaluated by
its three-term recurrence in a `lax.fori_loop`, with the derivative from the standard
identity), the weights from the derivative at the nodes; the rule is checked on
polynomials and compared with `jax.scipy.integrate.trapezoid` on a smooth integrand.
A bracketing root finder (bisection steps safeguarding secant steps, in a
`lax.while_loop`) is wrapped in `jax.custom_jvp` with the implicit-function derivative
dx*/dθ = -f_θ / f_x, differentiated with `jax.grad` and `jax.jacfwd` and vectorised with
`vmap`. Finally `jnp.polyfit` (also weighted) / `jnp.polyval` / `jnp.roots` /
`jnp.polyder` / `jnp.polyint` recover a cubic's coefficients and its roots.
"""

from functools import partial

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax, jsp):
    def legendre(n, x):
        """P_n(x) and P_n'(x) by the three-term recurrence."""
        def body(k, carry):
            p_prev, p = carry
            p_next = ((2 * k + 1) * x * p - k * p_prev) / (k + 1)
            return p, p_next
        p_prev, p = lax.fori_loop(1, n, body, (jnp.ones_like(x), x))
        dp = n * (x * p - p_prev) / (x ** 2 - 1)
        return p, dp

    def gauss_legendre(n):
        i = jnp.arange(1, n + 1)
        x = jnp.cos(jnp.pi * (i - 0.25) / (n + 0.5))  # Tricomi's initial guesses

        def newton(_, x):
            p, dp = legendre(n, x)
            return x - p / dp
        x = lax.fori_loop(0, 8, newton, x)
        _, dp = legendre(n, x)
        w = 2.0 / ((1 - x ** 2) * dp ** 2)
        return x[::-1], w[::-1]

    nodes, weights = jax.jit(gauss_legendre, static_argnums=0)(6)

    def gl_integrate(f, a, b):
        t = 0.5 * (b - a) * nodes + 0.5 * (a + b)
        return 0.5 * (b - a) * jnp.sum(weights * f(t))

    poly_exact = jnp.stack([gl_integrate(lambda t, k=k: t ** k, -1.0, 1.0)
                            for k in range(12)])
    f_smooth = lambda t: jnp.exp(-t) * jnp.cos(3 * t)
    gl_val = gl_integrate(f_smooth, 0.0, 2.0)
    grid = jnp.linspace(0.0, 2.0, 201)
    trap_val = jsp.integrate.trapezoid(f_smooth(grid), grid)
    trap_dx = jsp.integrate.trapezoid(f_smooth(grid), dx=grid[1] - grid[0])
    # Differentiating through the quadrature: d/dα ∫_0^2 exp(-α t) cos 3t dt.
    dint = jax.grad(lambda a: gl_integrate(lambda t: jnp.exp(-a * t) * jnp.cos(3 * t),
                                           0.0, 2.0))(1.0)

    # Safeguarded secant / bisection root finder with an implicit derivative.
    def residual(x, theta):
        return x ** 3 + theta[0] * x - theta[1]

    @jax.custom_jvp
    def find_root(theta):
        def cond(s):
            lo, hi, it = s
            return jnp.logical_and(hi - lo > 1e-6, it < 60)

        def body(s):
            lo, hi, it = s
            f_lo, f_hi = residual(lo, theta), residual(hi, theta)
            secant = hi - f_hi * (hi - lo) / (f_hi - f_lo)
            mid = 0.5 * (lo + hi)
            # Take the secant point when it falls well inside the bracket.
            inside = (secant > lo + 0.1 * (hi - lo)) & (secant < hi - 0.1 * (hi - lo))
            x = lax.cond(inside & (it % 2 == 0), lambda: secant, lambda: mid)
            f_x = residual(x, theta)
            same = jnp.sign(f_x) == jnp.sign(f_lo)
            return jnp.where(same, x, lo), jnp.where(same, hi, x), it + 1

        lo, hi, _ = lax.while_loop(cond, body, (jnp.float32(-5.0), jnp.float32(5.0), 0))
        return 0.5 * (lo + hi)

    @find_root.defjvp
    def find_root_jvp(primals, tangents):
        (theta,), (dtheta,) = primals, tangents
        x = find_root(theta)
        f_x = jax.grad(residual, 0)(x, theta)
        f_theta = jax.grad(residual, 1)(x, theta)
        return x, -(f_theta @ dtheta) / f_x

    thetas = jnp.array([[1.0, 2.0], [2.0, -1.0], [0.5, 4.0], [3.0, 0.3]])
    roots = jax.vmap(find_root)(thetas)
    root_grads = jax.vmap(jax.grad(find_root))(thetas)
    root_jac = jax.jacfwd(find_root)(thetas[0])
    residuals = jax.vmap(residual)(roots, thetas)
    # Analytic: x = r(θ) solves x^3 + a x - b = 0 => dx/da = -x/(3x^2+a), dx/db = 1/(3x^2+a)
    denom = 3 * roots ** 2 + thetas[:, 0]
    analytic = jnp.stack([-roots / denom, 1.0 / denom], 1)

    # Polynomial fitting: recover a cubic from noisy samples and find its roots.
    coeffs_true = jnp.array([1.0, -0.5, -2.0, 0.6])
    xs = jnp.linspace(-2.0, 2.0, 25)
    noise = 0.01 * jax.random.normal(jax.random.key(2), xs.shape)
    ys = jnp.polyval(coeffs_true, xs) + noise
    fit = jnp.polyfit(xs, ys, 3)
    fit_w = jnp.polyfit(xs, ys, 3, w=1.0 / (1.0 + xs ** 2))
    fit_roots = jnp.roots(fit)
    roots_sorted = jnp.sort(fit_roots.real)
    deriv = jnp.polyder(fit)
    antideriv = jnp.polyint(fit)
    area = jnp.polyval(antideriv, 1.0) - jnp.polyval(antideriv, -1.0)
    area_gl = gl_integrate(partial(jnp.polyval, fit), -1.0, 1.0)
    return {"nodes": nodes, "weights": weights, "moments": poly_exact, "gl": gl_val,
            "trapezoid": trap_val, "trapezoid_dx": trap_dx, "d_integral": dint,
            "roots": roots, "root_grads": root_grads, "root_jac": root_jac,
            "root_residuals": residuals, "root_grads_analytic": analytic,
            "polyfit": fit, "polyfit_weighted": fit_w, "poly_roots": roots_sorted,
            "poly_roots_imag": jnp.abs(fit_roots.imag), "polyder": deriv,
            "polyint": antideriv, "area": area, "area_gl": area_gl}


def test_quadrature_roots_matches_jax():
    got, _ = check_against_jax("test_jax_ml_quadrature_roots", program, rtol=2e-4,
                               atol=2e-5, overrides={"root_residuals": (1.0, 1e-4)})
    exact = np.array([2.0 / (k + 1) if k % 2 == 0 else 0.0 for k in range(12)])
    np.testing.assert_allclose(got["moments"], exact, atol=1e-5)
    np.testing.assert_allclose(got["gl"], got["trapezoid"], rtol=5e-4)
    np.testing.assert_allclose(got["root_grads"], got["root_grads_analytic"], rtol=1e-4)
    np.testing.assert_allclose(got["area"], got["area_gl"], rtol=1e-5)
