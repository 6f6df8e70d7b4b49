"""Port: a diagonal linear state-space layer (S4D / LRU style), the way the annotated S4
and LRU reference implementations compute it in JAX.

The continuous-time diagonal system has complex eigenvalues `lambda = -exp(log_re) +
i * im`; zero-order-hold discretisation gives `A = exp(lambda * dt)` (a complex `exp`)
and `B = (A - 1) / lambda * b`. The recurrence `h_t = A h_{t-1} + B u_t`, `y_t =
Re(C h_t) + D u_t` is computed three ways: a sequential `lax.scan`, a parallel
`lax.associative_scan` with the binary operator on (A, Bu) pairs, and as a causal
convolution with the kernel `K_l = Re(C A^l B)`, evaluated with `jnp.fft.rfft`/`irfft`
(zero-padded to avoid wrap-around). All three agree, and so do the gradients of a
regression loss through each with respect to the real and imaginary eigenvalue
parameters, `C`, and the step size; a batched multi-channel layer runs under `vmap`
and `jit`.
"""

import numpy as np

from _jax_port import check_against_jax

N_STATE = 6
SEQ_LEN = 24


def program(jax, jnp, lax):
    key = jax.random.key(3)
    k_b, k_cre, k_cim, k_u, k_y, k_batch = jax.random.split(key, 6)
    params = {
        "log_re": jnp.log(0.5 * jnp.ones(N_STATE)) + 0.1 * jnp.arange(N_STATE),
        "im": jnp.pi * jnp.arange(N_STATE, dtype=jnp.float32) / 2.0,
        "b": jax.random.normal(k_b, (N_STATE,)),
        "c_re": jax.random.normal(k_cre, (N_STATE,)) / jnp.sqrt(N_STATE),
        "c_im": jax.random.normal(k_cim, (N_STATE,)) / jnp.sqrt(N_STATE),
        "log_dt": jnp.log(0.1),
        "d": jnp.float32(0.3),
    }

    def discretise(p):
        lam = -jnp.exp(p["log_re"]) + 1j * p["im"]
        dt = jnp.exp(p["log_dt"])
        a_bar = jnp.exp(lam * dt)
        b_bar = (a_bar - 1.0) / lam * p["b"]
        c = p["c_re"] + 1j * p["c_im"]
        return a_bar, b_bar, c

    def ssm_scan(p, u):
        a_bar, b_bar, c = discretise(p)

        def step(h, u_t):
            h = a_bar * h + b_bar * u_t
            return h, jnp.real(jnp.sum(c * h)) + p["d"] * u_t

        h_last, y = lax.scan(step, jnp.zeros(N_STATE, dtype=jnp.complex64), u)
        return y, h_last

    def ssm_assoc(p, u):
        a_bar, b_bar, c = discretise(p)

        def combine(left, right):
            a_l, bu_l = left
            a_r, bu_r = right
            return a_r * a_l, a_r * bu_l + bu_r

        a_seq = jnp.broadcast_to(a_bar, (u.shape[0], N_STATE))
        bu = b_bar[None, :] * u[:, None]
        _, h = lax.associative_scan(combine, (a_seq, bu))
        return jnp.real(h @ c) + p["d"] * u, h[-1]

    def ssm_kernel(p, length):
        a_bar, b_bar, c = discretise(p)
        powers = a_bar[None, :] ** jnp.arange(length)[:, None]   # (L, N) complex
        return jnp.real(powers @ (c * b_bar))

    def ssm_fft(p, u):
        n = u.shape[0]
        k = ssm_kernel(p, n)
        size = 2 * n
        y = jnp.fft.irfft(jnp.fft.rfft(u, n=size) * jnp.fft.rfft(k, n=size), n=size)[:n]
        return y + p["d"] * u

    u = jnp.sin(jnp.linspace(0.0, 6.0, SEQ_LEN)) + 0.3 * jax.random.normal(k_u, (SEQ_LEN,))
    target = jnp.roll(u, 2) * 0.5 + 0.1 * jax.random.normal(k_y, (SEQ_LEN,))

    y_scan, h_scan = ssm_scan(params, u)
    y_assoc, h_assoc = ssm_assoc(params, u)
    y_fft = ssm_fft(params, u)
    a_bar, b_bar, c = discretise(params)

    def loss(method):
        def f(p):
            y = method(p, u)
            y = y if method is ssm_fft else y[0]
            return jnp.mean((y - target) ** 2) + 0.1 * jnp.mean(y ** 2)
        return f

    g_scan = jax.grad(loss(ssm_scan))(params)
    g_assoc = jax.grad(loss(ssm_assoc))(params)
    g_fft = jax.grad(loss(ssm_fft))(params)

    # Gradient of |h_T|^2 w.r.t. the complex discretised A (conjugate convention).
    def final_state_energy(a, bb):
        def step(h, u_t):
            return a * h + bb * u_t, None
        h, _ = lax.scan(step, jnp.zeros(N_STATE, jnp.complex64), u)
        return jnp.sum(jnp.abs(h) ** 2)

    g_complex = jax.grad(final_state_energy, argnums=(0, 1))(a_bar, b_bar)

    # A multi-channel layer on a batch: vmap over channels (parameters) and batch.
    channel_params = jax.tree_util.tree_map(
        lambda x: jnp.stack([x, x * 0.9, x * 1.1]), params)
    ub = jax.random.normal(k_batch, (2, SEQ_LEN))

    @jax.jit
    def layer(cp, batch):
        per_channel = jax.vmap(lambda p: jax.vmap(lambda s: ssm_assoc(p, s)[0])(batch))
        return jax.nn.gelu(per_channel(cp))                     # (channels, batch, L)

    @jax.jit
    def layer_fft(cp, batch):
        per_channel = jax.vmap(lambda p: jax.vmap(lambda s: ssm_fft(p, s))(batch))
        return jax.nn.gelu(per_channel(cp))

    out_layer = layer(channel_params, ub)
    out_layer_fft = layer_fft(channel_params, ub)
    g_layer = jax.grad(lambda cp: jnp.sum(layer(cp, ub) ** 2))(channel_params)

    return {"y_scan": y_scan, "y_assoc": y_assoc, "y_fft": y_fft,
            "h_scan": h_scan, "h_assoc": h_assoc, "a_bar": a_bar, "b_bar": b_bar,
            "kernel": ssm_kernel(params, SEQ_LEN),
            "grad_scan": g_scan, "grad_assoc": g_assoc, "grad_fft": g_fft,
            "grad_complex": g_complex, "layer": out_layer, "layer_fft": out_layer_fft,
            "grad_layer": g_layer}


def test_ssm_matches_jax():
    got, _ = check_against_jax("test_jax_seq_ssm", program, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(got["y_assoc"], got["y_scan"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["y_fft"], got["y_scan"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got["h_assoc"], got["h_scan"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["layer_fft"], got["layer"], rtol=1e-4, atol=1e-4)
    for name in ("log_re", "im", "b", "c_re", "c_im", "log_dt", "d"):
        np.testing.assert_allclose(got[f"grad_assoc/{name}"], got[f"grad_scan/{name}"],
                                   rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(got[f"grad_fft/{name}"], got[f"grad_scan/{name}"],
                                   rtol=1e-3, atol=1e-4)
