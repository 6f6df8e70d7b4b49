"""Port: a differentiable bouncing-ball simulation and shooting problem in JAX, as users
write small physics simulators with structured control flow.

A ball under gravity and quadratic drag is integrated with semi-implicit Euler; a
`lax.cond` reflects (with restitution) the vertical velocity when it hits the floor and
a `lax.switch` picks the wall material. Simulated two ways: `lax.while_loop` until the
ball passes a target distance (differentiated in forward mode with `jax.jacfwd`, since
while loops have no reverse mode) and `lax.fori_loop` for a fixed number of steps
(differentiated in reverse mode, `jax.grad`, and batched over launch angles with
`vmap`). A shooting problem then fits the launch speed by Newton's method on the
fixed-step simulation so that the ball lands at a target distance.
"""

from _jax_port import check_against_jax


def program(jax, jnp):
    lax = jax.lax
    dt, g, drag = 0.01, 9.81, 0.05

    def physics(state, restitution):
        pos, vel = state
        speed = jnp.sqrt(jnp.sum(vel ** 2))
        acc = jnp.array([0.0, -g]) - drag * speed * vel
        vel = vel + dt * acc
        pos = pos + dt * vel

        def bounce(pv):
            p, v = pv
            return p * jnp.array([1.0, -1.0]), v * jnp.array([0.9, -restitution])

        return lax.cond(pos[1] < 0.0, bounce, lambda pv: pv, (pos, vel))

    def launch(speed, angle):
        return (jnp.zeros(2), speed * jnp.array([jnp.cos(angle), jnp.sin(angle)]))

    def material_restitution(material):
        return lax.switch(material, [lambda: 0.8, lambda: 0.5, lambda: 0.3])

    def fixed_steps(speed, angle, material=0, steps=150):
        restitution = material_restitution(material)
        pos, vel = lax.fori_loop(0, steps, lambda i, s: physics(s, restitution),
                                 launch(speed, angle))
        return pos, vel

    def until_distance(speed, angle, target=4.0):
        def cond_fn(carry):
            (pos, _), t = carry
            return (pos[0] < target) & (t < 400)

        def body_fn(carry):
            state, t = carry
            return physics(state, 0.8), t + 1

        (pos, vel), t = lax.while_loop(cond_fn, body_fn, (launch(speed, angle), 0))
        return pos[1], vel, t

    height, vel_at, steps_taken = until_distance(8.0, 0.7)
    dheight = jax.jacfwd(lambda p: until_distance(p[0], p[1])[0])(jnp.array([8.0, 0.7]))

    angles = jnp.array([0.4, 0.6, 0.8, 1.0])
    final_x = jax.vmap(lambda a: fixed_steps(7.0, a)[0][0])(angles)
    dx_dangle = jax.vmap(jax.grad(lambda a: fixed_steps(7.0, a)[0][0]))(angles)
    by_material = jnp.stack([fixed_steps(7.0, 0.8, m)[0] for m in range(3)])

    def range_error(speed):
        return fixed_steps(speed, 0.6, steps=120)[0][0] - 5.0

    speed = 6.0
    speeds = []
    for _ in range(4):
        value, slope = jax.value_and_grad(range_error)(speed)
        speed = speed - value / slope
        speeds.append(speed)
    return {"height": height, "vel_at": vel_at, "steps_taken": steps_taken,
            "dheight": dheight, "final_x": final_x, "dx_dangle": dx_dangle,
            "by_material": by_material, "speeds": jnp.stack(speeds),
            "final_error": range_error(speed),
            "jit_grad": jax.jit(jax.grad(lambda s, a: fixed_steps(s, a)[0][1],
                                         argnums=(0, 1)))(7.0, 0.8)}


def test_bouncing_ball_sim_matches_jax():
    got, _ = check_against_jax("test_jax_bouncing_ball_sim", program, rtol=2e-3, atol=2e-4,
                               overrides={"final_error": (1.0, 1e-3)})
    assert abs(got["final_error"]) < 1e-3
