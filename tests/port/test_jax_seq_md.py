"""Port: a small molecular-dynamics simulation in the style of JAX MD's tutorials and the
hand-written Lennard-Jones examples built on `jax.grad`.

Particles sit in a periodic 2-d box. Pairwise displacements come from
`vmap(vmap(displacement))`, with the minimum-image convention written both ways users
write it (`d - L * jnp.round(d / L)` and `jnp.mod(d + L/2, L) - L/2`). The energy is a
truncated-and-shifted Lennard-Jones plus a soft-sphere variant; the self pairs and pairs
beyond the cutoff are masked with the "double where" so the gradient stays finite at
r = 0. Forces are `-jax.grad(energy)`; velocity Verlet runs in a `lax.fori_loop` inside a
function jitted with `static_argnums` for the number of steps; positions wrap with
`jnp.mod`. The total energy drift stays small; a `vmap` over two initial velocity draws
runs two replicas at once; the stress-like virial and the Hessian-vector product of the
energy are checked too.
"""

import numpy as np

from _jax_port import check_against_jax

BOX = 6.0
SIDE = 4           # SIDE * SIDE particles on a jittered lattice
CUTOFF = 2.5


def program(jax, jnp, lax):
    key = jax.random.key(5)
    k_jit, k_vel, k_rep = jax.random.split(key, 3)
    grid = (jnp.arange(SIDE) + 0.5) * (BOX / SIDE)
    lattice = jnp.stack(jnp.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)
    positions = lattice + 0.1 * jax.random.normal(k_jit, lattice.shape)
    n = positions.shape[0]

    def displacement_round(a, b):
        d = a - b
        return d - BOX * jnp.round(d / BOX)

    def displacement_mod(a, b):
        return jnp.mod(a - b + BOX / 2, BOX) - BOX / 2

    pairwise = jax.vmap(jax.vmap(displacement_round, (None, 0)), (0, None))
    pairwise_mod = jax.vmap(jax.vmap(displacement_mod, (None, 0)), (0, None))

    def safe_distance(dr, mask):
        r2 = jnp.sum(dr ** 2, axis=-1)
        r2_safe = jnp.where(mask, r2, 1.0)          # double where: finite grads on i == j
        return jnp.sqrt(r2_safe)

    def lj_pair(r, sigma=1.0, eps=1.0):
        sr6 = (sigma / r) ** 6
        return 4.0 * eps * (sr6 ** 2 - sr6)

    def lj_energy(pos):
        dr = pairwise(pos, pos)
        not_self = ~jnp.eye(n, dtype=bool)
        r = safe_distance(dr, not_self)
        within = not_self & (r < CUTOFF)
        e = jnp.where(within, lj_pair(r) - lj_pair(CUTOFF), 0.0)
        return 0.5 * jnp.sum(e)

    def soft_sphere_energy(pos, sigma=1.6, alpha=2.5):
        dr = pairwise_mod(pos, pos)
        not_self = ~jnp.eye(n, dtype=bool)
        r = safe_distance(dr, not_self)
        overlap = jnp.where(not_self & (r < sigma), 1.0 - r / sigma, 0.0)
        return 0.5 * jnp.sum(overlap ** alpha) / alpha

    forces = lambda pos: -jax.grad(lj_energy)(pos)  # noqa: E731

    def kinetic(vel, mass=1.0):
        return 0.5 * mass * jnp.sum(vel ** 2)

    def verlet(pos, vel, dt, n_steps):
        def step(_, state):
            pos, vel, f = state
            vel_half = vel + 0.5 * dt * f
            pos = jnp.mod(pos + dt * vel_half, BOX)
            f = forces(pos)
            return pos, vel_half + 0.5 * dt * f, f

        pos, vel, _ = lax.fori_loop(0, n_steps, step, (pos, vel, forces(pos)))
        return pos, vel

    @jax.jit
    def total_energy(pos, vel):
        return lj_energy(pos) + kinetic(vel)

    simulate = jax.jit(verlet, static_argnums=(3,))

    velocities = 0.3 * jax.random.normal(k_vel, positions.shape)
    velocities = velocities - velocities.mean(axis=0)   # no centre-of-mass drift

    e0 = total_energy(positions, velocities)
    # Short equilibration first, then the measured run.
    pos1, vel1 = simulate(positions, velocities, 0.002, 20)
    pos2, vel2 = simulate(pos1, vel1, 0.002, 40)
    energies = jnp.stack([e0, total_energy(pos1, vel1), total_energy(pos2, vel2)])

    # Two replicas with different velocity draws under vmap.
    rep_vel = 0.3 * jax.random.normal(k_rep, (2,) + positions.shape)
    rep_vel = rep_vel - rep_vel.mean(axis=1, keepdims=True)
    rep_pos, rep_v = jax.vmap(lambda v: simulate(positions, v, 0.002, 20))(rep_vel)

    # Virial: sum over pairs of r_ij . f_ij, from the pairwise-energy gradient.
    def pair_energy_from_dr(dr):
        not_self = ~jnp.eye(n, dtype=bool)
        r = safe_distance(dr, not_self)
        e = jnp.where(not_self & (r < CUTOFF), lj_pair(r) - lj_pair(CUTOFF), 0.0)
        return 0.5 * jnp.sum(e)

    dr0 = pairwise(positions, positions)
    virial = -jnp.sum(dr0 * jax.grad(pair_energy_from_dr)(dr0))

    # Hessian-vector product of the energy (forward-over-reverse).
    direction = jnp.cos(jnp.arange(positions.size, dtype=jnp.float32)).reshape(
        positions.shape)
    hvp = jax.jvp(jax.grad(lj_energy), (positions,), (direction,))[1]

    shift = jax.jvp(jax.grad(lj_energy), (positions,), (jnp.ones_like(positions),))[1]

    return {"positions": positions, "hvp_translation": shift, "lj_energy": lj_energy(positions),
            "soft_energy": soft_sphere_energy(positions + 0.2),
            "soft_forces": -jax.grad(soft_sphere_energy)(positions + 0.2),
            "forces": forces(positions), "pairwise_mod": pairwise_mod(positions, positions),
            "pos_end": pos2, "vel_end": vel2, "energies": energies,
            "replica_pos": rep_pos, "replica_vel": rep_v, "virial": virial, "hvp": hvp,
            "self_grad": jax.grad(lambda p: safe_distance(pairwise(p, p),
                                                          ~jnp.eye(n, dtype=bool)).sum())(
                                                              positions)}


def test_md_matches_jax():
    got, _ = check_against_jax("test_jax_seq_md", program, rtol=2e-3, atol=2e-4,
                               overrides={"hvp": (5e-3, 5e-2)})
    # Newton's third law: the forces sum to zero; the energy drift is small.
    np.testing.assert_allclose(got["forces"].sum(0), 0.0, atol=1e-3)
    energies = got["energies"]
    assert abs(energies[-1] - energies[0]) < 1e-2 * abs(energies[0]) + 1e-2
    # A uniform translation is a zero mode of the energy: its Hessian-vector product
    # vanishes.  Both minimum-image conventions stay in the box, and no gradient is NaN.
    assert np.all(np.isfinite(got["self_grad"]))
    np.testing.assert_allclose(got["hvp_translation"], 0.0, atol=1e-2)
    assert np.all(np.abs(got["pairwise_mod"]) <= 3.0 + 1e-6)
