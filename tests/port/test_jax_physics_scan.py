"""Port: a physics simulation with `lax.scan`, in the pattern of JAX's control-flow
documentation (jax-ml/jax, docs/control-flow.md and the `jax.lax.scan` docstring: a
carry updated step by step, per-step outputs stacked).

A pendulum and a chain of springs integrated with velocity Verlet inside `lax.scan`;
forces from `jax.grad` of the potential energy; the trajectory, the energy drift, the
gradient of the final angle with respect to the initial one (reverse mode through the
scan) and the same with `jacfwd`, and a `vmap` over initial conditions.
"""

from _jax_port import check_against_jax


def program(jax, jnp, lax):
    g, length, dt = 9.81, 1.0, 0.01

    def potential(theta):
        return -g / length * jnp.cos(theta)

    force = jax.grad(potential)

    def verlet(state, _):
        theta, omega = state
        a = -force(theta)
        theta_new = theta + dt * omega + 0.5 * dt ** 2 * a
        omega_new = omega + 0.5 * dt * (a - force(theta_new))
        energy = 0.5 * omega_new ** 2 + potential(theta_new)
        return (theta_new, omega_new), (theta_new, energy)

    def simulate(theta0, omega0=0.0, steps=300):
        final, (thetas, energies) = lax.scan(verlet, (theta0, omega0), None, length=steps)
        return final, thetas, energies

    (theta_T, omega_T), thetas, energies = jax.jit(simulate)(1.0)
    final_angle = lambda t0: simulate(t0)[0][0]

    # a chain of 4 masses and springs, positions x (n,) and velocities v (n,)
    k_spring = 5.0

    def chain_energy(x):
        return 0.5 * k_spring * (jnp.sum(jnp.diff(x) ** 2) + x[0] ** 2)

    def chain_step(carry, _):
        x, v = carry
        a = -jax.grad(chain_energy)(x)
        v = v + dt * a
        x = x + dt * v
        return (x, v), chain_energy(x) + 0.5 * jnp.sum(v ** 2)

    x0 = jnp.array([0.1, -0.2, 0.3, 0.0])
    (xT, vT), chain_energies = lax.scan(chain_step, (x0, jnp.zeros(4)), jnp.arange(200))
    return {"thetas": thetas[::10], "energies": energies[::10], "theta_T": theta_T,
            "omega_T": omega_T, "energy_drift": energies[-1] - energies[0],
            "dtheta_T_dtheta0": jax.grad(final_angle)(1.0),
            "dtheta_T_dtheta0_fwd": jax.jacfwd(final_angle)(1.0),
            "batch_final": jax.vmap(final_angle)(jnp.array([0.1, 0.5, 1.0, 2.0])),
            "chain_xT": xT, "chain_vT": vT, "chain_energies": chain_energies[::20],
            "chain_grad": jax.grad(lambda x: lax.scan(chain_step, (x, jnp.zeros(4)), None,
                                                      length=50)[0][0][3])(x0)}


def test_physics_scan_matches_jax():
    got, _ = check_against_jax("test_jax_physics_scan", program, rtol=1e-3, atol=1e-4)
    assert abs(got["energy_drift"]) < 1e-3
    assert abs(got["dtheta_T_dtheta0"] - got["dtheta_T_dtheta0_fwd"]) < 1e-3
