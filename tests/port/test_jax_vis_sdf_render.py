"""Port: differentiable rendering of a signed distance function in JAX, in the pattern of
the "sphere tracing in JAX" notebooks.

The scene is a smooth union (polynomial smooth-min) of a sphere, a rounded box and a
ground plane. Each pixel's ray is marched by sphere tracing in `lax.while_loop` (stop
when the distance is small or the ray has gone far, with a step cap), and by a
fixed-step `lax.fori_loop` version that reverse-mode can differentiate. Surface normals
are `jax.grad` of the SDF, shading is Lambertian with a soft shadow march in `lax.scan`,
and pixels are rendered by `vmap` over the image plane. Finally the sphere's position
is fitted to a target image by `jit(value_and_grad)` through the fixed-step renderer,
and the result is checked against a finite difference.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax):
    def smin(a, b, k=0.3):
        h = jnp.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
        return b * (1.0 - h) + a * h - k * h * (1.0 - h)

    def length(v):
        # The usual safe norm: JAX's gradient of `norm` at the zero vector is NaN (inside
        # the box the clamped offset is exactly zero).
        return jnp.sqrt(jnp.sum(v * v) + 1e-12)

    def sdf(p, centre):
        sphere = jnp.linalg.norm(p - centre) - 0.6
        q = jnp.abs(p - jnp.array([0.9, -0.3, 0.4])) - jnp.array([0.3, 0.3, 0.3])
        box = length(jnp.maximum(q, 0.0)) + jnp.minimum(jnp.max(q), 0.0) - 0.05
        plane = p[1] + 0.65
        return jnp.minimum(smin(sphere, box), plane)

    normal_fn = jax.grad(sdf)
    light = jnp.array([0.5, 0.8, -0.4]) / jnp.linalg.norm(jnp.array([0.5, 0.8, -0.4]))
    eye = jnp.array([0.0, 0.2, -3.0])

    def ray_dir(u, v):
        d = jnp.array([u, v, 1.6])
        return d / jnp.linalg.norm(d)

    def march_while(origin, direction, centre):
        def cond(state):
            t, d, i = state
            return (d > 1e-3) & (t < 8.0) & (i < 64)

        def body(state):
            t, _, i = state
            d = sdf(origin + t * direction, centre)
            return t + d, d, i + 1

        t, _, steps = lax.while_loop(cond, body, (0.0, 1.0, 0))
        return t, steps

    def march_fixed(origin, direction, centre, n_steps=40):
        def body(_, t):
            return t + sdf(origin + t * direction, centre)
        return jnp.minimum(lax.fori_loop(0, n_steps, body, 0.0), 8.0)

    def shade(p, centre):
        n = normal_fn(p, centre)
        n = n / (jnp.linalg.norm(n) + 1e-8)
        diffuse = jnp.maximum(jnp.dot(n, light), 0.0)

        def shadow_step(carry, _):
            t, occ = carry
            d = sdf(p + n * 2e-2 + t * light, centre)
            return (t + jnp.clip(d, 0.02, 0.3), jnp.minimum(occ, 8.0 * d / t)), None

        (_, occlusion), _ = lax.scan(shadow_step, (0.05, 1.0), None, length=12)
        return 0.1 + 0.9 * diffuse * jnp.clip(occlusion, 0.0, 1.0)

    def pixel(u, v, centre, fixed):
        d = ray_dir(u, v)
        if fixed:
            t = march_fixed(eye, d, centre)
            steps = jnp.int32(40)
        else:
            t, steps = march_while(eye, d, centre)
        hit = t < 7.9
        colour = jnp.where(hit, shade(eye + t * d, centre), 0.0)
        return colour, t, steps

    res = 10
    us = jnp.linspace(-0.8, 0.8, res)
    vs = jnp.linspace(0.6, -0.6, res)

    def render(centre, fixed):
        row = jax.vmap(lambda u, v: pixel(u, v, centre, fixed), in_axes=(0, None))
        return jax.vmap(lambda v: row(us, v))(vs)

    true_centre = jnp.array([-0.3, 0.0, 0.2])
    image_w, depth_w, steps_w = jax.jit(lambda c: render(c, False))(true_centre)
    image_f, depth_f, _ = jax.jit(lambda c: render(c, True))(true_centre)
    probes = jnp.array([[-0.3, 0.6, 0.2], [1.25, 0.1, 0.3], [0.0, -0.6, -1.0], [0.5, -0.2, 0.3]])
    normals = jax.vmap(normal_fn, in_axes=(0, None))(probes, true_centre)

    def loss(centre):
        img = render(centre, True)[0]
        return jnp.mean((img - image_f) ** 2)

    loss_grad = jax.jit(jax.value_and_grad(loss))
    centre = jnp.array([-0.1, 0.1, 0.3])
    history = []
    for _ in range(5):
        value, g = loss_grad(centre)
        history.append(value)
        centre = centre - 1.0 * g
    start = jnp.array([-0.1, 0.1, 0.3])
    g0 = loss_grad(start)[1]
    eps = 1e-2
    e0 = jnp.array([eps, 0.0, 0.0])
    fd = (loss(start + e0) - loss(start - e0)) / (2 * eps)
    return {"image_while": image_w, "depth_while": depth_w,
            "steps": steps_w.astype(jnp.float32),
            "image_fixed": image_f, "depth_fixed": depth_f, "normals": normals,
            "loss_history": jnp.stack(history), "centre_fit": centre, "grad0": g0,
            "fd_x": fd}


def test_sdf_render_matches_jax():
    got, _ = check_against_jax("test_jax_vis_sdf_render", program, rtol=2e-3, atol=2e-4,
                               overrides={"fd_x": (2e-2, 1e-4), "steps": (0.0, 1.01)})
    assert got["loss_history"][-1] < got["loss_history"][0]
    np.testing.assert_allclose(got["grad0"][0], got["fd_x"], rtol=0.1, atol=2e-4)
