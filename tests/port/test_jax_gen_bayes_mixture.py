"""Port: Bayesian mixture-model pieces in the style of hand-written JAX samplers and
variational code (truncated Dirichlet-process mixtures, conjugate-prior checks).

- A truncated stick-breaking prior: `random.beta` sticks turned into weights with
  `cumprod`, component means from `random.multivariate_normal`, assignments from
  `random.categorical`, observations added with a Student-t scale mixture
  (`random.gamma`).
- Log-densities from `jax.scipy.stats`: `beta`, `gamma`, `dirichlet`,
  `multivariate_normal` and `t`, their gradients with respect to the distribution
  parameters (`grad` over several arguments), `vmap`ped over a batch of parameters.
- Reparameterised gradients through the samplers: d/dalpha of a Monte-Carlo mean of
  `random.gamma`, `random.beta` and `random.dirichlet` draws (implicit gradients), checked
  against the analytic mean's derivative.
- A full-covariance Gaussian variational objective, `E_q[log p] + H[q]` with
  `random.multivariate_normal` draws: its gradient with respect to the covariance, and
  the (symmetric) gradient of `multivariate_normal.logpdf` with respect to `cov`.
- A jitted log-joint of the truncated mixture with `logsumexp` over components and its
  gradient with respect to the concentration, the weights' logits and the means.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax, jsp):
    stats, random = jsp.stats, jax.random
    k_trunc, dim, n = 6, 2, 40

    def stick_breaking(v):
        # w_k = v_k * prod_{j<k} (1 - v_j); the last stick takes the remainder.
        v = v.at[-1].set(1.0)
        rest = jnp.concatenate([jnp.ones(1), jnp.cumprod(1.0 - v)[:-1]])
        return v * rest

    def sample_prior(key, alpha):
        k_v, k_mu, k_z, k_s, k_e = random.split(key, 5)
        v = random.beta(k_v, 1.0, alpha, (k_trunc,))
        w = stick_breaking(v)
        mus = random.multivariate_normal(k_mu, jnp.zeros(dim), 4.0 * jnp.eye(dim), (k_trunc,))
        z = random.categorical(k_z, jnp.log(w), shape=(n,))
        scale = 1.0 / jnp.sqrt(random.gamma(k_s, 2.0, (n,)) / 2.0)  # Student-t, 4 dof
        x = mus[z] + 0.3 * scale[:, None] * random.normal(k_e, (n, dim))
        return w, mus, z, x

    w, mus, z, x = jax.jit(sample_prior)(random.PRNGKey(0), 1.5)
    w_batch = jax.vmap(lambda k: sample_prior(k, 0.7)[0])(random.split(random.PRNGKey(1), 4))

    # Densities and their parameter gradients.
    def beta_lp(xv, a, b):
        return jnp.sum(stats.beta.logpdf(xv, a, b))

    def gamma_lp(xv, a, scale):
        return jnp.sum(stats.gamma.logpdf(xv, a, scale=scale))

    def dirichlet_lp(alpha, p):
        return stats.dirichlet.logpdf(p, alpha)

    def mvn_lp(mean, chol):
        cov = chol @ chol.T + 0.1 * jnp.eye(dim)
        return jnp.sum(stats.multivariate_normal.logpdf(x, mean, cov))

    def t_lp(df, loc, scale):
        return jnp.sum(stats.t.logpdf(x[:, 0], df, loc, scale))

    xs = jnp.array([0.1, 0.4, 0.75])
    pos = jnp.array([0.3, 1.2, 2.5])
    ab = jnp.array([[0.5, 0.5], [2.0, 3.0], [5.0, 1.5]])
    p_simplex = jnp.array([0.2, 0.5, 0.3])
    alpha_vec = jnp.array([1.5, 2.0, 0.7])
    chol = jnp.array([[1.0, 0.0], [0.3, 0.8]])
    densities = {
        "beta": jax.vmap(lambda p: beta_lp(xs, p[0], p[1]))(ab),
        "beta_grad": jax.vmap(jax.grad(beta_lp, argnums=(1, 2)), (None, 0, 0))(xs, ab[:, 0],
                                                                             ab[:, 1]),
        "beta_cdf": stats.beta.cdf(xs, 2.0, 3.0),
        "gamma": gamma_lp(pos, 2.5, 1.5),
        "gamma_grad": jax.grad(gamma_lp, argnums=(1, 2))(pos, 2.5, 1.5),
        "dirichlet": dirichlet_lp(alpha_vec, p_simplex),
        "dirichlet_grad": jax.grad(dirichlet_lp)(alpha_vec, p_simplex),
        "mvn": mvn_lp(jnp.array([0.5, -0.5]), chol),
        "mvn_grad": jax.grad(mvn_lp, argnums=(0, 1))(jnp.array([0.5, -0.5]), chol),
        "t": t_lp(4.0, 0.1, 1.3),
        "t_grad": jax.grad(t_lp, argnums=(0, 1, 2))(4.0, 0.1, 1.3),
    }

    # Reparameterised (implicit) gradients through the samplers.
    keys = random.split(random.PRNGKey(2), 3)

    def gamma_mean(a):
        return jnp.mean(random.gamma(keys[0], a, (4000,)))

    def beta_mean(a):
        return jnp.mean(random.beta(keys[1], a, 2.0, (4000,)))

    def dirichlet_mean(alpha):
        return jnp.mean(random.dirichlet(keys[2], alpha, (2000,)), axis=0)

    def mvn_expected_log_target(mean, cov):
        z = random.multivariate_normal(random.PRNGKey(4), mean, cov, (500,))
        log_p = stats.multivariate_normal.logpdf(z, jnp.array([1.0, -1.0]),
                                                 jnp.array([[1.0, 0.5], [0.5, 2.0]]))
        entropy = 0.5 * jnp.linalg.slogdet(2 * jnp.pi * jnp.e * cov)[1]
        return jnp.mean(log_p) + entropy

    reparam = {
        "gamma_mean": gamma_mean(3.0), "gamma_dmean": jax.grad(gamma_mean)(3.0),
        "beta_mean": beta_mean(1.5), "beta_dmean": jax.grad(beta_mean)(1.5),
        "dirichlet_mean": dirichlet_mean(alpha_vec),
        "dirichlet_jac": jax.jacrev(dirichlet_mean)(alpha_vec),
        "gamma_samples_grad": jax.vmap(jax.grad(lambda a, k: random.gamma(k, a)))(
            jnp.array([0.3, 1.0, 4.0]), random.split(random.PRNGKey(3), 3)),
        # full-covariance Gaussian VI: E_q[log p] by reparameterised mvn draws
        "mvn_reparam_grad": jax.grad(mvn_expected_log_target, argnums=(0, 1))(
            jnp.array([0.2, -0.1]), jnp.array([[1.0, 0.3], [0.3, 0.5]])),
        "mvn_cov_grad": jax.grad(lambda cov: stats.multivariate_normal.logpdf(
            x[:5], jnp.zeros(dim), cov).sum())(jnp.array([[2.0, 0.4], [0.4, 1.0]])),
    }

    # Log-joint of the truncated mixture (stick logits, means, concentration).
    @jax.jit
    def log_joint(params):
        v = jax.nn.sigmoid(params["stick_logits"])
        log_w = jnp.log(stick_breaking(v) + 1e-12)
        alpha = jnp.exp(params["log_alpha"])
        comp = jax.vmap(lambda m: stats.multivariate_normal.logpdf(
            x, m, 0.5 * jnp.eye(dim)))(params["means"])          # (K, n)
        lik = jnp.sum(jsp.special.logsumexp(log_w[:, None] + comp, axis=0))
        prior_v = jnp.sum(stats.beta.logpdf(v[:-1], 1.0, alpha))
        prior_alpha = stats.gamma.logpdf(alpha, 1.0)
        prior_mu = jnp.sum(stats.norm.logpdf(params["means"], 0.0, 2.0))
        return lik + prior_v + prior_alpha + prior_mu

    params = {"stick_logits": jnp.linspace(-1.0, 1.0, k_trunc), "log_alpha": jnp.float32(0.3),
              "means": mus}
    value, grads = jax.value_and_grad(log_joint)(params)
    return {"w": w, "mus": mus, "z": z, "x": x, "w_batch": w_batch,
            "densities": densities, "reparam": reparam, "log_joint": value,
            "log_joint_grad": grads}


def test_bayes_mixture_matches_jax():
    got, _ = check_against_jax("test_jax_gen_bayes_mixture", program, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(got["w"].sum(), 1.0, rtol=1e-5)
    # Analytic means: E[Gamma(a)] = a, E[Beta(a, b)] = a / (a + b); derivatives 1, b/(a+b)^2.
    np.testing.assert_allclose(got["reparam/gamma_dmean"], 1.0, rtol=0.05)
    np.testing.assert_allclose(got["reparam/beta_dmean"], 2.0 / 3.5 ** 2, rtol=0.1)
