"""Port: complex-valued optimisation in JAX: phase retrieval and a complex FIR equaliser
(the patterns of the JAX FAQ on complex differentiation and of signal-processing users).

1. Phase retrieval: recover a complex signal from the magnitudes of its oversampled
   `jnp.fft.fft`, by gradient descent on a real loss of complex parameters (for a real
   loss `jax.grad` returns the conjugate of the steepest-ascent direction, so the step
   is `z - lr * jnp.conj(g)`, as JAX's FAQ explains).
2. A complex FIR equaliser fitted by least squares through `jax.value_and_grad` of
   `jnp.abs(...)**2` with complex `jnp.convolve`, checked against the normal equations.
3. Holomorphic derivatives: `jax.grad(..., holomorphic=True)` of a complex polynomial
   and `jnp.exp`/`jnp.log`, `jax.jacfwd`/`jacrev(holomorphic=True)` of a complex map,
   and `jax.vjp` with a complex cotangent.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp):
    rs = np.random.RandomState(17)
    n, m = 8, 32
    true = (rs.normal(size=n) + 1j * rs.normal(size=n)).astype(np.complex64)
    true = jnp.asarray(true)
    measured = jnp.abs(jnp.fft.fft(true, m))

    def phase_loss(z):
        return jnp.mean((jnp.abs(jnp.fft.fft(z, m)) - measured) ** 2)

    @jax.jit
    def phase_step(z):
        value, g = jax.value_and_grad(phase_loss)(z)
        return z - 0.3 * jnp.conj(g), value

    z = jnp.asarray((rs.normal(size=n) + 1j * rs.normal(size=n)).astype(np.complex64)) * 0.5
    z = true + 0.3 * z
    losses = []
    for _ in range(20):
        z, value = phase_step(z)
        losses.append(value)

    channel = jnp.array([1.0 + 0.2j, 0.4 - 0.3j, 0.1 + 0.05j], jnp.complex64)
    symbols = jnp.asarray(np.exp(1j * np.pi / 2 * rs.randint(0, 4, size=64)).astype(np.complex64))
    received = jnp.convolve(symbols, channel)[:64]

    def eq_loss(taps):
        out = jnp.convolve(received, taps)[:64]
        return jnp.mean(jnp.abs(out - symbols) ** 2)

    taps = jnp.zeros(5, jnp.complex64).at[0].set(1.0)
    eq_losses = []
    step = jax.jit(jax.value_and_grad(eq_loss))
    for _ in range(30):
        value, g = step(taps)
        taps = taps - 0.5 * jnp.conj(g)
        eq_losses.append(value)

    cols = jnp.stack([jnp.concatenate([jnp.zeros(k, jnp.complex64), received[:64 - k]])
                      for k in range(5)], axis=1)
    taps_ls = jnp.linalg.solve(jnp.conj(cols.T) @ cols, jnp.conj(cols.T) @ symbols)

    poly = lambda w: w ** 3 - 2j * w + jnp.exp(w) * jnp.log(w + 2.0)
    w0 = jnp.asarray(0.3 + 0.4j, jnp.complex64)
    dpoly = jax.grad(poly, holomorphic=True)(w0)
    d2poly = jax.grad(jax.grad(poly, holomorphic=True), holomorphic=True)(w0)

    def cmap(v):
        return jnp.stack([v[0] * v[1], jnp.sin(v[0]) + v[1] ** 2, jnp.tanh(v[1])])

    v0 = jnp.array([0.2 + 0.1j, -0.5 + 0.3j], jnp.complex64)
    out, pullback = jax.vjp(cmap, v0)
    (cot,) = pullback(jnp.array([1.0 + 1.0j, 0.5j, -1.0], jnp.complex64))
    return {"z": z, "losses": jnp.stack(losses), "phase_grad": jax.grad(phase_loss)(true * 0.9),
            "eq_losses": jnp.stack(eq_losses), "taps": taps, "taps_ls": taps_ls,
            "dpoly": dpoly, "d2poly": d2poly,
            "jacfwd": jax.jacfwd(cmap, holomorphic=True)(v0),
            "jacrev": jax.jacrev(cmap, holomorphic=True)(v0), "vjp_out": out, "vjp": cot,
            "grad_abs2": jax.grad(lambda c: jnp.abs(c) ** 2 + jnp.real(c * 1j))(w0)}


def test_complex_phase_retrieval_matches_jax():
    got, _ = check_against_jax("test_jax_complex_phase_retrieval", program, rtol=2e-3,
                               atol=2e-4)
    assert got["losses"][-1] < got["losses"][0]
    np.testing.assert_allclose(got["jacfwd"], got["jacrev"], rtol=1e-5, atol=1e-6)
