"""Port: a Kalman filter and Rauch-Tung-Striebel smoother in JAX, in the pattern of the
state-space models users write with `lax.scan` (filter forward, smoother with
`reverse=True`) and `jnp.linalg`, and the marginal log-likelihood's gradient with respect
to the noise scales (reverse mode through both scans and the linear solves), as a
maximum-likelihood fit does.

A constant-velocity model in 2-d, observations of position only, simulated with numpy's
seeded generator.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax):
    dt = 0.1
    F = jnp.array([[1, 0, dt, 0], [0, 1, 0, dt], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    H = jnp.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    rng = np.random.default_rng(3)
    steps = 25
    truth = np.zeros((steps, 4), np.float32)
    state = np.array([0.0, 0.0, 1.0, 0.5])
    for t in range(steps):
        state = np.asarray(F) @ state + 0.05 * rng.normal(size=4)
        truth[t] = state
    ys = jnp.asarray(truth[:, :2] + 0.2 * rng.normal(size=(steps, 2)), jnp.float32)

    def filter_(log_q, log_r, ys):
        Q = jnp.exp(log_q) * jnp.eye(4)
        R = jnp.exp(log_r) * jnp.eye(2)

        def step(carry, y):
            m, P = carry
            m_pred, P_pred = F @ m, F @ P @ F.T + Q
            S = H @ P_pred @ H.T + R
            K = jnp.linalg.solve(S, H @ P_pred).T
            resid = y - H @ m_pred
            m_new = m_pred + K @ resid
            P_new = (jnp.eye(4) - K @ H) @ P_pred
            sign, logdet = jnp.linalg.slogdet(S)
            ll = -0.5 * (resid @ jnp.linalg.solve(S, resid) + logdet + 2 * jnp.log(2 * jnp.pi))
            return (m_new, P_new), (m_new, P_new, m_pred, P_pred, ll)

        init = (jnp.zeros(4), jnp.eye(4))
        _, (ms, Ps, m_preds, P_preds, lls) = lax.scan(step, init, ys)
        return ms, Ps, m_preds, P_preds, jnp.sum(lls)

    def smoother(ms, Ps, m_preds, P_preds):
        def step(carry, inputs):
            m_next, P_next = carry
            m, P, m_pred, P_pred = inputs
            G = P @ F.T @ jnp.linalg.inv(P_pred)
            m_s = m + G @ (m_next - m_pred)
            P_s = P + G @ (P_next - P_pred) @ G.T
            return (m_s, P_s), (m_s, P_s)

        inputs = (ms[:-1], Ps[:-1], m_preds[1:], P_preds[1:])
        _, (m_s, P_s) = lax.scan(step, (ms[-1], Ps[-1]), inputs, reverse=True)
        return jnp.concatenate([m_s, ms[-1:]]), jnp.concatenate([P_s, Ps[-1:]])

    ms, Ps, m_preds, P_preds, ll = jax.jit(filter_)(jnp.log(0.0025), jnp.log(0.04), ys)
    m_s, P_s = smoother(ms, Ps, m_preds, P_preds)
    loglik = lambda p: filter_(p[0], p[1], ys)[-1]
    g = jax.grad(loglik)(jnp.array([jnp.log(0.0025), jnp.log(0.04)]))
    hess = jax.hessian(loglik)(jnp.array([-5.0, -3.0]))
    return {"filtered_mean": ms, "filtered_var_trace": jnp.trace(Ps, axis1=1, axis2=2),
            "smoothed_mean": m_s, "smoothed_var_diag": jnp.diagonal(P_s, axis1=1, axis2=2),
            "loglik": ll, "grad_loglik": g, "hessian_loglik": hess}


def test_kalman_matches_jax():
    got, _ = check_against_jax("test_jax_kalman", program, rtol=2e-3, atol=2e-4,
                               overrides={"hessian": (1e-2, 1e-2)})
    # the smoother uses every observation: closer to the truth than the filter on average
    assert np.all(got["smoothed_var_diag"] <= got["filtered_var_trace"][:, None] + 1e-6)
