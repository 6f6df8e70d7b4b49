"""Port: image processing and differentiable image registration in JAX, as users write
it with `jax.image` and `jax.scipy` (the pattern of the "image alignment by gradient
descent" tutorials).

A synthetic image (two Gaussian blobs and a ramp) is resized with `jax.image.resize`
(linear, cubic, lanczos3 and nearest), blurred with `jax.scipy.signal.convolve2d`
(modes same/valid/full) and with an FFT convolution through `jnp.fft.rfft2`/`irfft2`,
and its Sobel gradient magnitude is taken. A shifted, rotated copy is then registered
back: the moving image is warped by `jax.scipy.ndimage.map_coordinates` (order 1,
`mode="nearest"`) at a rigid transform of the pixel grid, and the transform's three
parameters are fitted by `jit(value_and_grad)` of the mean squared difference.
`jax.image.scale_and_translate` gives the matching affine resampling.
"""

from _jax_port import check_against_jax


def program(jax, jnp, jsp):
    n = 24
    yy, xx = jnp.meshgrid(jnp.arange(n, dtype=jnp.float32), jnp.arange(n, dtype=jnp.float32),
                          indexing="ij")

    def blobs(cy, cx):
        return (jnp.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)
                + 0.6 * jnp.exp(-((yy - cy - 6.0) ** 2 + (xx - cx + 5.0) ** 2) / 8.0)
                + 0.02 * xx)

    image = blobs(11.0, 12.0)
    resized = {m: jax.image.resize(image, (15, 31), method=m)
               for m in ("linear", "cubic", "lanczos3", "nearest")}
    down = jax.image.resize(image, (12, 12), method="linear", antialias=True)

    g = jnp.exp(-jnp.arange(-2.0, 3.0) ** 2 / 2.0)
    kernel = jnp.outer(g, g) / jnp.sum(g) ** 2
    blurred = {mode: jsp.signal.convolve2d(image, kernel, mode=mode)
               for mode in ("same", "valid", "full")}
    shape = (n + 4, n + 4)
    fft_full = jnp.fft.irfft2(jnp.fft.rfft2(image, shape) * jnp.fft.rfft2(kernel, shape), shape)

    sobel = jnp.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
    gx = jsp.signal.convolve2d(image, sobel, mode="same")
    gy = jsp.signal.convolve2d(image, sobel.T, mode="same")
    edges = jnp.sqrt(gx ** 2 + gy ** 2 + 1e-12)

    def warp(img, params):
        angle, ty, tx = params
        c, s = jnp.cos(angle), jnp.sin(angle)
        cy, cx = (n - 1) / 2.0, (n - 1) / 2.0
        ys = c * (yy - cy) - s * (xx - cx) + cy + ty
        xs = s * (yy - cy) + c * (xx - cx) + cx + tx
        return jsp.ndimage.map_coordinates(img, [ys, xs], order=1, mode="nearest")

    true_params = jnp.array([0.12, 1.5, -2.0])
    moving = warp(image, true_params)

    def loss(params):
        return jnp.mean((warp(moving, params) - image) ** 2)

    @jax.jit
    def step(params):
        value, grads = jax.value_and_grad(loss)(params)
        return params - jnp.array([0.02, 8.0, 8.0]) * grads, value

    params = jnp.zeros(3)
    losses = []
    for _ in range(15):
        params, value = step(params)
        losses.append(value)

    affine = jax.image.scale_and_translate(image, (20, 20), (0, 1), jnp.array([0.8, 0.8]),
                                           jnp.array([1.0, -0.5]), method="linear")
    return {"resized": resized, "down": down, "blurred": blurred, "fft_full": fft_full,
            "edges": edges, "moving": moving, "losses": jnp.stack(losses),
            "params": params, "affine": affine,
            "warp_jac": jax.jacfwd(lambda p: warp(image, p)[10:13, 10:13])(true_params)}


def test_image_registration_matches_jax():
    got, _ = check_against_jax("test_jax_image_registration", program, rtol=2e-3, atol=2e-4)
    import numpy as np
    np.testing.assert_allclose(got["fft_full"], got["blurred/full"], atol=1e-5)
    assert got["losses"][-1] < 0.5 * got["losses"][0]
