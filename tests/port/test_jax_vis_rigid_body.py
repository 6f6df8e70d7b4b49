"""Port: rigid-body and spring-chain mechanics in JAX, the kind of simulation code users
write for robotics and physics notebooks.

A torque-free asymmetric rigid body is integrated in body coordinates (Euler's equations
with RK4 in `lax.scan`) while its attitude quaternion is advanced by the exponential map;
kinetic energy and the world-frame angular momentum (rotated with
`jax.scipy.spatial.transform.Rotation`) are conserved. `Rotation` is exercised the way
such code uses it: `from_quat`, `from_rotvec`, `from_euler`, `as_matrix`, `apply`,
`inv`, composition with `*`, `as_rotvec`, `magnitude`, `mean`, and `Slerp` between key
frames. A chain of masses joined by springs is integrated with
`jax.experimental.ode.odeint`; its energy is checked and the gradient of the final
position w.r.t. the spring stiffness (reverse mode through the adaptive solver, also
under `vmap` over stiffnesses) is compared with a finite difference.
"""

import importlib

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax, jsp):
    # Submodules a JAX program imports by name (`import jax.scipy.spatial.transform`).
    transform = importlib.import_module(jsp.__name__ + ".spatial.transform")
    Rotation, Slerp = transform.Rotation, transform.Slerp
    odeint = importlib.import_module(jax.__name__ + ".experimental.ode").odeint

    # ---- quaternion helpers (scalar-last, as scipy and jax.scipy use)
    def quat_mul(p, q):
        pv, pw = p[:3], p[3]
        qv, qw = q[:3], q[3]
        return jnp.concatenate([pw * qv + qw * pv + jnp.cross(pv, qv),
                                jnp.array([pw * qw - jnp.dot(pv, qv)])])

    def quat_exp(v):
        angle = jnp.linalg.norm(v)
        axis = v / jnp.where(angle > 0, angle, 1.0)
        return jnp.concatenate([jnp.sin(angle / 2) * axis, jnp.cos(angle / 2)[None]])

    inertia = jnp.array([1.0, 2.0, 3.0])

    def euler_rhs(w):
        i1, i2, i3 = inertia
        return jnp.array([(i2 - i3) * w[1] * w[2] / i1,
                          (i3 - i1) * w[2] * w[0] / i2,
                          (i1 - i2) * w[0] * w[1] / i3])

    def rk4(w, h):
        k1 = euler_rhs(w)
        k2 = euler_rhs(w + 0.5 * h * k1)
        k3 = euler_rhs(w + 0.5 * h * k2)
        k4 = euler_rhs(w + h * k3)
        return w + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)

    def body_step(carry, _):
        q, w = carry
        h = 0.01
        w_new = rk4(w, h)
        q = quat_mul(q, quat_exp(0.5 * h * (w + w_new)))
        q = q / jnp.linalg.norm(q)
        rot = Rotation.from_quat(q)
        l_world = rot.apply(inertia * w_new)
        energy = 0.5 * jnp.sum(inertia * w_new ** 2)
        return (q, w_new), (q, l_world, energy)

    q0 = Rotation.from_euler("xyz", jnp.array([0.3, -0.2, 0.5])).as_quat()
    w0 = jnp.array([0.1, 1.5, 0.05])  # near the unstable middle axis
    (q_end, w_end), (qs, l_world, energy) = jax.jit(
        lambda q, w: lax.scan(body_step, (q, w), None, length=150))(q0, w0)

    # ---- Rotation API
    r1 = Rotation.from_rotvec(jnp.array([0.2, -0.4, 0.7]))
    r2 = Rotation.from_quat(q_end)
    composed = r1 * r2
    vecs = jnp.array([[1.0, 0.0, 0.0], [0.3, -0.5, 2.0]])
    rot_api = {
        "matrix": composed.as_matrix(),
        "apply": composed.apply(vecs),
        "apply_inverse": composed.apply(vecs, inverse=True),
        "inv_matrix": composed.inv().as_matrix(),
        "roundtrip": (composed * composed.inv()).as_rotvec(),
        "rotvec": composed.as_rotvec(),
        "magnitude": composed.magnitude(),
        "euler_zyx": composed.as_euler("zyx"),
        "mean": Rotation.from_quat(qs[::30]).mean().as_matrix(),
    }
    key_times = jnp.array([0.0, 1.0, 2.5])
    key_rots = Rotation.from_quat(jnp.stack([q0, qs[74], q_end]))
    slerp = Slerp.init(key_times, key_rots)
    interp = slerp(jnp.array([0.0, 0.4, 1.0, 1.7, 2.5]))
    rot_api["slerp"] = interp.as_matrix()

    # Gradient of a rotation-fitting loss w.r.t. a rotation vector.
    target = Rotation.from_euler("zyx", jnp.array([0.4, 0.1, -0.3])).apply(vecs)

    def align(rotvec):
        return jnp.sum((Rotation.from_rotvec(rotvec).apply(vecs) - target) ** 2)

    rv = jnp.array([0.1, 0.1, 0.1])
    align_hist = []
    for _ in range(30):
        value, g = jax.value_and_grad(align)(rv)
        align_hist.append(value)
        rv = rv - 0.1 * g

    # ---- spring-mass chain with odeint
    n_mass = 4
    masses = jnp.array([1.0, 0.8, 1.2, 1.0])

    def chain_rhs(state, t, k, damping):
        x, v = state[:n_mass], state[n_mass:]
        ext = jnp.diff(jnp.concatenate([jnp.zeros(1), x]))  # first mass tied to a wall
        tension = k * ext
        force = -tension + jnp.concatenate([tension[1:], jnp.zeros(1)])
        return jnp.concatenate([v, (force - damping * v) / masses])

    def chain_energy(state, k):
        x, v = state[:n_mass], state[n_mass:]
        ext = jnp.diff(jnp.concatenate([jnp.zeros(1), x]))
        return 0.5 * jnp.sum(masses * v ** 2) + 0.5 * k * jnp.sum(ext ** 2)

    s0 = jnp.concatenate([jnp.array([0.1, -0.2, 0.3, 0.5]), jnp.zeros(n_mass)])
    ts = jnp.linspace(0.0, 3.0, 7)
    traj = odeint(chain_rhs, s0, ts, 2.0, 0.0, rtol=1e-6, atol=1e-6)
    energies = jax.vmap(chain_energy, in_axes=(0, None))(traj, 2.0)
    damped = odeint(chain_rhs, s0, ts, 2.0, 0.3, rtol=1e-6, atol=1e-6)

    def final_position(k):
        return odeint(chain_rhs, s0, jnp.array([0.0, 1.5]), k, 0.1,
                      rtol=1e-6, atol=1e-6)[-1, n_mass - 1]

    dk = jax.grad(final_position)(2.0)
    dk_batch = jax.vmap(jax.grad(final_position))(jnp.array([1.5, 2.0, 2.5]))
    eps = 1e-2
    dk_fd = (final_position(2.0 + eps) - final_position(2.0 - eps)) / (2 * eps)
    return {"q_end": q_end, "w_end": w_end, "l_world": l_world, "energy": energy,
            "rot": rot_api, "align_history": jnp.stack(align_hist), "align_rv": rv,
            "chain_traj": traj, "chain_energy": energies, "chain_damped": damped,
            "dk": dk, "dk_batch": dk_batch, "dk_fd": dk_fd}


def test_rigid_body_matches_jax():
    got, _ = check_against_jax("test_jax_vis_rigid_body", program, rtol=1e-3, atol=1e-4)
    # Torque-free motion conserves energy and world-frame angular momentum.
    assert np.ptp(got["energy"]) < 1e-4 * got["energy"].mean()
    assert np.max(np.ptp(got["l_world"], axis=0)) < 1e-2
    assert np.ptp(got["chain_energy"]) < 1e-3 * got["chain_energy"].mean()
    np.testing.assert_allclose(got["rot/roundtrip"], 0.0, atol=1e-5)
    np.testing.assert_allclose(got["dk"], got["dk_fd"], rtol=1e-2, atol=1e-4)
    np.testing.assert_allclose(got["dk"], got["dk_batch"][1], rtol=1e-3, atol=1e-5)
