"""Port: a discrete hidden Markov model in log space, in the style of the HMM code users
write from JAX's documentation and dynamax-like reference implementations.

The forward pass is a `lax.scan` with `logsumexp`; the backward pass is the same scan with
`reverse=True`; their sum gives the posterior state marginals and, with the transition
terms, the pairwise marginals. Viterbi decoding keeps `max`/`argmax` back-pointers in a
forward scan and backtracks them with a reverse scan. Baum-Welch (EM) runs a few
iterations over a batch of sequences (`vmap` of the E-step), and `jax.grad` of the
log-likelihood w.r.t. the transition logits is checked against the expected-count
identity (grad = counts - row sums * softmax). Data are sampled from a known HMM with
`jax.random.categorical` inside a `lax.scan`.
"""

import numpy as np

from _jax_port import check_against_jax

N_STATES = 3
N_SYMBOLS = 4
T = 20
N_SEQ = 5


def program(jax, jnp, lax):
    logsumexp = jax.scipy.special.logsumexp

    true_trans = jnp.array([[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.2, 0.1, 0.7]])
    true_emit = jnp.array([[0.6, 0.2, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1],
                           [0.1, 0.1, 0.2, 0.6]])
    true_init = jnp.array([0.5, 0.3, 0.2])

    def sample(key):
        k0, k1 = jax.random.split(key)

        def step(z, k):
            kz, kx = jax.random.split(k)
            x = jax.random.categorical(kx, jnp.log(true_emit[z]))
            z_next = jax.random.categorical(kz, jnp.log(true_trans[z]))
            return z_next, (z, x)

        z0 = jax.random.categorical(k0, jnp.log(true_init))
        _, (zs, xs) = lax.scan(step, z0, jax.random.split(k1, T))
        return zs, xs

    states, obs = jax.vmap(sample)(jax.random.split(jax.random.key(0), N_SEQ))

    def forward(log_pi, log_A, log_B, xs):
        def step(log_alpha, x):
            log_alpha = logsumexp(log_alpha[:, None] + log_A, axis=0) + log_B[:, x]
            return log_alpha, log_alpha

        alpha0 = log_pi + log_B[:, xs[0]]
        last, alphas = lax.scan(step, alpha0, xs[1:])
        alphas = jnp.concatenate([alpha0[None], alphas])
        return logsumexp(last), alphas

    def backward(log_A, log_B, xs):
        def step(log_beta, x_next):
            log_beta = logsumexp(log_A + (log_B[:, x_next] + log_beta)[None, :], axis=1)
            return log_beta, log_beta

        _, betas = lax.scan(step, jnp.zeros(N_STATES), xs[1:], reverse=True)
        return jnp.concatenate([betas, jnp.zeros((1, N_STATES))])

    def e_step(log_pi, log_A, log_B, xs):
        loglik, alphas = forward(log_pi, log_A, log_B, xs)
        betas = backward(log_A, log_B, xs)
        gamma = jnp.exp(alphas + betas - loglik)
        # xi[t, i, j] = p(z_t = i, z_{t+1} = j | x)
        log_xi = (alphas[:-1, :, None] + log_A[None]
                  + (log_B[:, xs[1:]].T + betas[1:])[:, None, :] - loglik)
        xi = jnp.exp(log_xi)
        emit_counts = gamma.T @ jax.nn.one_hot(xs, N_SYMBOLS)
        return loglik, gamma, xi.sum(0), emit_counts

    def viterbi(log_pi, log_A, log_B, xs):
        def step(delta, x):
            scores = delta[:, None] + log_A
            return jnp.max(scores, axis=0) + log_B[:, x], jnp.argmax(scores, axis=0)

        delta0 = log_pi + log_B[:, xs[0]]
        last, pointers = lax.scan(step, delta0, xs[1:])
        best_last = jnp.argmax(last)

        def back(state, ptr):
            prev = ptr[state]
            return prev, prev

        _, path = lax.scan(back, best_last, pointers, reverse=True)
        return jnp.concatenate([path, best_last[None]]), jnp.max(last)

    @jax.jit
    def baum_welch_step(params):
        log_pi, log_A, log_B = (jnp.log(p) for p in params)
        lls, gammas, trans, emits = jax.vmap(e_step, (None, None, None, 0))(
            log_pi, log_A, log_B, obs)
        pi = gammas[:, 0].mean(0)
        A = trans.sum(0) / trans.sum((0, 2))[:, None]
        B = emits.sum(0) / emits.sum((0, 2))[:, None]
        return (pi, A, B), lls.sum()

    key = jax.random.key(1)
    k_a, k_b = jax.random.split(key)
    params = (jnp.ones(N_STATES) / N_STATES,
              jax.nn.softmax(jax.random.normal(k_a, (N_STATES, N_STATES)) + 2 * jnp.eye(3)),
              jax.nn.softmax(jax.random.normal(k_b, (N_STATES, N_SYMBOLS))))
    lls = []
    for _ in range(6):
        params, ll = baum_welch_step(params)
        lls.append(ll)

    # Gradient of the log-likelihood w.r.t. unconstrained transition logits.
    def total_loglik(trans_logits, log_pi, log_B):
        log_A = jax.nn.log_softmax(trans_logits, axis=-1)
        return jnp.sum(jax.vmap(lambda xs: forward(log_pi, log_A, log_B, xs)[0])(obs))

    logits = jnp.log(params[1])
    g = jax.grad(total_loglik)(logits, jnp.log(params[0]), jnp.log(params[2]))
    _, gammas, trans, _ = jax.vmap(e_step, (None, None, None, 0))(
        jnp.log(params[0]), jnp.log(params[1]), jnp.log(params[2]), obs)
    counts = trans.sum(0)
    g_identity = counts - counts.sum(1, keepdims=True) * params[1]

    paths, path_scores = jax.vmap(viterbi, (None, None, None, 0))(
        jnp.log(true_init), jnp.log(true_trans), jnp.log(true_emit), obs)
    true_ll, _ = forward(jnp.log(true_init), jnp.log(true_trans), jnp.log(true_emit), obs[0])
    return {"states": states, "obs": obs, "loglik_trace": jnp.stack(lls),
            "pi": params[0], "A": params[1], "B": params[2], "posterior": gammas[0],
            "grad_trans_logits": g, "grad_identity": g_identity,
            "viterbi_paths": paths, "viterbi_scores": path_scores, "true_loglik": true_ll}


def test_hmm_matches_jax():
    got, _ = check_against_jax("test_jax_ml_hmm", program, rtol=2e-4, atol=2e-5,
                               overrides={"grad_identity": (1e-3, 2e-4)})
    # EM never decreases the likelihood.
    assert np.all(np.diff(got["loglik_trace"]) > -1e-3)
    np.testing.assert_allclose(got["grad_trans_logits"], got["grad_identity"], atol=1e-3)
    np.testing.assert_allclose(got["posterior"].sum(1), 1.0, rtol=1e-4)
    # The Viterbi path agrees with the true states on most steps.
    assert np.mean(got["viterbi_paths"] == got["states"]) > 0.5
