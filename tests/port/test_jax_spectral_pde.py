"""Port: a pseudo-spectral solver for the viscous Burgers equation on a periodic domain,
as users write spectral methods in JAX: derivatives by `jnp.fft.rfft`/`irfft` with
`jnp.fft.rfftfreq` wavenumbers, a 2/3 dealiasing mask, an integrating-factor RK2 step in
`lax.scan`; then the gradient of the final energy with respect to the initial condition
(reverse mode through the complex FFTs), checked against a directional `jvp`, and the
complex spectrum itself.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax):
    n, nu, dt, steps = 64, 0.05, 0.01, 40
    x = jnp.linspace(0.0, 2 * jnp.pi, n, endpoint=False)
    kx = 2 * jnp.pi * jnp.fft.rfftfreq(n, d=2 * jnp.pi / n)
    dealias = (jnp.abs(kx) < (2.0 / 3.0) * jnp.max(jnp.abs(kx))).astype(jnp.float32)
    decay = jnp.exp(-nu * kx ** 2 * dt)

    def nonlinear(u_hat):
        u = jnp.fft.irfft(u_hat, n=n)
        return -0.5 * 1j * kx * jnp.fft.rfft(u * u) * dealias

    def step(u_hat, _):
        n1 = nonlinear(u_hat)
        u_star = decay * (u_hat + dt * n1)
        u_new = decay * u_hat + 0.5 * dt * (decay * n1 + nonlinear(u_star))
        return u_new, jnp.sum(jnp.abs(u_new) ** 2)

    def solve(u0):
        u_hat, energies = lax.scan(step, jnp.fft.rfft(u0), None, length=steps)
        return jnp.fft.irfft(u_hat, n=n), energies

    u0 = jnp.sin(x) + 0.5 * jnp.cos(2 * x)
    u_end, energies = jax.jit(solve)(u0)
    energy = lambda u0: jnp.mean(solve(u0)[0] ** 2)
    g = jax.grad(energy)(u0)
    direction = jnp.cos(3 * x)
    _, tangent = jax.jvp(energy, (u0,), (direction,))
    spectrum = jnp.fft.rfft(u_end)
    return {"u_end": u_end, "energies": energies, "grad": g, "jvp": tangent,
            "grad_dot_direction": jnp.dot(g, direction),
            "spectrum_real": spectrum.real, "spectrum_imag": spectrum.imag}


def test_spectral_pde_matches_jax():
    got, _ = check_against_jax("test_jax_spectral_pde", program, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(got["grad_dot_direction"], got["jvp"], rtol=1e-3)
