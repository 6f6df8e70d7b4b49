"""Port: dense optical flow in JAX, Lucas-Kanade and Horn-Schunck as computer-vision
course code writes them.

Two frames of a smooth textured scene, the second a sub-pixel shift plus a mild
rotation of the first. Spatial derivatives come from `jnp.gradient`, the structure
tensor is box-filtered by `jax.scipy.signal.convolve2d`, and the per-pixel 2x2 systems
are solved in closed form (the Lucas-Kanade step). Warping uses bilinear
`jax.scipy.ndimage.map_coordinates` (`mode="nearest"`), and a coarse-to-fine pyramid
is built with `jax.image.resize` (antialiased linear down-sampling); the flow is
up-sampled and refined level by level, with iterative warping in `lax.fori_loop`.
Horn-Schunck runs as a Jacobi iteration in `lax.scan`. A global affine flow is also
fitted by `jax.grad` of the photometric error through the warp, and the Lucas-Kanade
solve is `vmap`ped over a batch of frame pairs.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax, jsp):
    n = 24
    yy, xx = jnp.meshgrid(jnp.arange(n, dtype=jnp.float32), jnp.arange(n, dtype=jnp.float32),
                          indexing="ij")

    def scene(y, x):
        return (jnp.sin(0.45 * x + 0.2 * y) + jnp.cos(0.35 * y - 0.15 * x)
                + 0.8 * jnp.exp(-((y - 10.0) ** 2 + (x - 14.0) ** 2) / 20.0))

    true_flow = jnp.stack([0.8 + 0.03 * (xx - n / 2), -0.6 + 0.02 * (yy - n / 2)])  # (dy, dx)
    frame0 = scene(yy, xx)
    frame1 = scene(yy - true_flow[0], xx - true_flow[1])

    def warp(img, flow):
        # frame1(p + flow) ~ frame0(p): sample the moving frame forward along the flow.
        return jsp.ndimage.map_coordinates(img, [yy[:img.shape[0], :img.shape[1]] + flow[0],
                                                 xx[:img.shape[0], :img.shape[1]] + flow[1]],
                                           order=1, mode="nearest")

    box = jnp.ones((5, 5)) / 25.0

    def lucas_kanade(i0, i1, flow):
        warped = warp(i1, flow)
        gy, gx = jnp.gradient(warped)
        it = warped - i0
        sxx = jsp.signal.convolve2d(gx * gx, box, mode="same")
        syy = jsp.signal.convolve2d(gy * gy, box, mode="same")
        sxy = jsp.signal.convolve2d(gx * gy, box, mode="same")
        sxt = jsp.signal.convolve2d(gx * it, box, mode="same")
        syt = jsp.signal.convolve2d(gy * it, box, mode="same")
        det = sxx * syy - sxy ** 2 + 1e-4
        du_x = -(syy * sxt - sxy * syt) / det
        du_y = -(sxx * syt - sxy * sxt) / det
        return flow + jnp.stack([du_y, du_x])

    def iterate_lk(i0, i1, flow, n_iter):
        return lax.fori_loop(0, n_iter, lambda _, f: lucas_kanade(i0, i1, f), flow)

    # Single-scale, few iterations.
    flow_single = jax.jit(iterate_lk, static_argnums=3)(frame0, frame1,
                                                        jnp.zeros((2, n, n)), 4)

    # Coarse-to-fine pyramid.
    def pyramid(img, levels):
        out = [img]
        for _ in range(levels - 1):
            h, w = out[-1].shape
            out.append(jax.image.resize(out[-1], (h // 2, w // 2), "linear", antialias=True))
        return out[::-1]

    @jax.jit
    def coarse_to_fine(i0, i1):
        p0, p1 = pyramid(i0, 3), pyramid(i1, 3)
        flow = jnp.zeros((2,) + p0[0].shape)
        for a, b in zip(p0, p1):
            if flow.shape[1:] != a.shape:
                flow = 2.0 * jax.image.resize(flow, (2,) + a.shape, "linear")
            flow = iterate_lk(a, b, flow, 3)
        return flow

    flow_pyr = coarse_to_fine(frame0, frame1)
    levels = pyramid(frame0, 3)

    # Horn-Schunck: Jacobi iterations on the smoothness-regularised flow.
    def horn_schunck(i0, i1, alpha=1.0, n_iter=40):
        gy, gx = jnp.gradient(0.5 * (i0 + i1))
        it = i1 - i0
        avg = jnp.array([[1.0, 2.0, 1.0], [2.0, 0.0, 2.0], [1.0, 2.0, 1.0]]) / 12.0

        def step(uv, _):
            u, v = uv
            ub = jsp.signal.convolve2d(u, avg, mode="same")
            vb = jsp.signal.convolve2d(v, avg, mode="same")
            common = (gx * ub + gy * vb + it) / (alpha ** 2 + gx ** 2 + gy ** 2)
            u, v = ub - gx * common, vb - gy * common
            return (u, v), jnp.mean(u)
        (u, v), trace = lax.scan(step, (jnp.zeros_like(i0), jnp.zeros_like(i0)), None,
                                 length=n_iter)
        return jnp.stack([v, u]), trace

    flow_hs, hs_trace = jax.jit(horn_schunck)(frame0, frame1)

    # Global affine flow by gradient descent on the photometric error.
    def affine_flow(theta):
        cy, cx = yy - n / 2, xx - n / 2
        return jnp.stack([theta[0] + theta[2] * cx + theta[3] * cy,
                          theta[1] + theta[4] * cx + theta[5] * cy])

    def photometric(theta):
        diff = warp(frame1, -affine_flow(theta)) - frame0
        return jnp.mean(diff[3:-3, 3:-3] ** 2)

    grad_fn = jax.jit(jax.value_and_grad(photometric))
    theta = jnp.zeros(6)
    history = []
    for _ in range(30):
        value, g = grad_fn(theta)
        history.append(value)
        theta = theta - jnp.array([2.0, 2.0, 0.02, 0.02, 0.02, 0.02]) * g

    # A batch of frame pairs (shifts) through one vmapped LK step.
    shifts = jnp.array([[0.3, -0.2], [-0.5, 0.4], [0.0, 0.7]])
    batch1 = jax.vmap(lambda s: scene(yy - s[0], xx - s[1]))(shifts)
    batch_flow = jax.vmap(lambda b: lucas_kanade(frame0, b, jnp.zeros((2, n, n))))(batch1)
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    mean_batch_flow = jnp.mean(batch_flow[inner], axis=(2, 3))

    epe = lambda f: jnp.mean(jnp.sqrt(jnp.sum((f - true_flow) ** 2, axis=0))[4:-4, 4:-4])
    return {"flow_single": flow_single[:, 4:-4, 4:-4], "flow_pyr": flow_pyr[:, 4:-4, 4:-4],
            "levels": levels, "flow_hs": flow_hs, "hs_trace": hs_trace,
            "epe": jnp.stack([epe(flow_single), epe(flow_pyr)]),
            "affine_history": jnp.stack(history), "theta": theta,
            "mean_batch_flow": mean_batch_flow}


def test_optical_flow_matches_jax():
    got, _ = check_against_jax("test_jax_vis_optical_flow", program, rtol=2e-3, atol=2e-4)
    assert np.all(got["epe"] < 0.3)
    assert got["affine_history"][-1] < 0.2 * got["affine_history"][0]
