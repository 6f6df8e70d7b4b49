"""Port: a data-augmentation pipeline in JAX, in the style of the `augment(key, image)`
functions users `vmap` over a batch with one key per example.

Each example gets a random crop (`lax.dynamic_slice` at a random offset), a random
horizontal and vertical flip (`jnp.where` on random bits), a random rotation about the
centre resampled by `jax.scipy.ndimage.map_coordinates` (order 1, several modes), a
brightness/contrast jitter, and a resize back to the model's input size by
`jax.image.resize` (linear, cubic, lanczos5, nearest) or `jax.image.scale_and_translate`
(a random zoom). The whole pipeline runs under `jit(vmap(...))`, and the gradient of a
loss on the augmented batch w.r.t. the input images flows back through the warps.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax, jsp):
    n, h, w, ch = 4, 14, 12, 3
    crop, out = 10, 12
    yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                          indexing="ij")
    base = jnp.stack([jnp.sin(yy / 2.0) * jnp.cos(xx / 3.0),
                      jnp.exp(-((yy - 6.0) ** 2 + (xx - 5.0) ** 2) / 10.0),
                      (yy + 2.0 * xx) / 40.0], axis=-1)
    images = base[None] * jnp.linspace(0.5, 1.5, n)[:, None, None, None]

    def rotate(img, angle, mode):
        c, s = jnp.cos(angle), jnp.sin(angle)
        gy, gx = jnp.meshgrid(jnp.arange(crop, dtype=jnp.float32),
                              jnp.arange(crop, dtype=jnp.float32), indexing="ij")
        cy = cx = (crop - 1) / 2.0
        sy = c * (gy - cy) + s * (gx - cx) + cy
        sx = -s * (gy - cy) + c * (gx - cx) + cx
        chan = lambda im: jsp.ndimage.map_coordinates(im, [sy, sx], order=1, mode=mode,
                                                      cval=0.25)
        return jax.vmap(chan, in_axes=2, out_axes=2)(img)

    def augment(key, img, mode="constant", method="linear"):
        k_crop, k_flip, k_rot, k_jit = jax.random.split(key, 4)
        oy, ox = jax.random.randint(k_crop, (2,), 0, jnp.array([h - crop + 1, w - crop + 1]))
        x = lax.dynamic_slice(img, (oy, ox, 0), (crop, crop, ch))
        flips = jax.random.bernoulli(k_flip, 0.5, (2,))
        x = jnp.where(flips[0], x[:, ::-1], x)
        x = jnp.where(flips[1], jnp.flip(x, axis=0), x)
        angle = jax.random.uniform(k_rot, minval=-0.4, maxval=0.4)
        x = rotate(x, angle, mode)
        gain, bias = jax.random.uniform(k_jit, (2,), minval=jnp.array([0.8, -0.1]),
                                        maxval=jnp.array([1.2, 0.1]))
        x = jnp.clip(gain * (x - x.mean()) + x.mean() + bias, -1.5, 1.5)
        x = jax.image.resize(x, (out, out, ch), method=method)
        return x, (oy, ox, flips, angle)

    keys = jax.random.split(jax.random.key(11), n)
    batch, (oys, oxs, flips, angles) = jax.jit(jax.vmap(augment))(keys, images)
    per_method = {m: jax.vmap(lambda k, im, m=m: augment(k, im, "nearest", m)[0])(keys, images)
                  for m in ("cubic", "lanczos5", "nearest")}
    modes = {m: jax.vmap(lambda k, im, m=m: augment(k, im, m)[0])(keys[:2], images[:2])
             for m in ("reflect", "mirror", "wrap")}
    one = augment(keys[2], images[2])[0]

    def zoom(key, img):
        s = jax.random.uniform(key, (2,), minval=0.8, maxval=1.3)
        scale = s * jnp.array([out / h, out / w])
        translation = (1.0 - scale) * jnp.array([h / 2.0, w / 2.0]) * 0.5
        return jax.image.scale_and_translate(img, (out, out, ch), (0, 1), scale,
                                             translation, method="linear")

    zoomed = jax.vmap(zoom)(keys, images)
    zoomed_cubic = jax.image.scale_and_translate(images[0], (9, 15, ch), (0, 1),
                                                 jnp.array([0.7, 1.25]), jnp.array([0.5, -1.0]),
                                                 method="cubic", antialias=False)
    zoomed_aa = jax.image.scale_and_translate(images[0], (7, 6, ch), (0, 1),
                                              jnp.array([0.5, 0.5]), jnp.array([0.0, 0.0]),
                                              method="lanczos3", antialias=True)

    target = jnp.linspace(-1.0, 1.0, out * out * ch).reshape(out, out, ch)

    def loss(imgs):
        aug = jax.vmap(augment)(keys, imgs)[0]
        zo = jax.vmap(zoom)(keys, imgs)
        return jnp.mean((aug - target) ** 2) + 0.1 * jnp.mean(zo ** 2)

    value, grad_images = jax.jit(jax.value_and_grad(loss))(images)

    # Gradient w.r.t. the warp itself (through the sampling coordinates), and the
    # nearest-neighbour sampler (order 0) used for label maps.
    patch = images[1, :crop, :crop]
    angle_grad = jax.vmap(jax.grad(lambda a: jnp.sum(rotate(patch, a, "nearest") ** 2)))(
        jnp.array([-0.3, 0.1, 0.35]))
    labels = (patch[..., 1] > 0.4).astype(jnp.float32)
    gy, gx = jnp.meshgrid(jnp.arange(crop) * 0.9 + 0.3, jnp.arange(crop) * 1.1 - 0.2,
                          indexing="ij")
    label_warp = jsp.ndimage.map_coordinates(labels, [gy, gx], order=0, mode="nearest")
    return {"batch": batch, "offsets": jnp.stack([oys, oxs], 1),
            "flips": flips.astype(jnp.int32), "angles": angles, "per_method": per_method,
            "modes": modes, "one": one, "zoomed": zoomed, "zoomed_cubic": zoomed_cubic,
            "zoomed_aa": zoomed_aa, "loss": value, "grad_images": grad_images,
            "angle_grad": angle_grad, "label_warp": label_warp}


def test_augment_matches_jax():
    got, _ = check_against_jax("test_jax_vis_augment", program, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(got["one"], got["batch"][2], rtol=1e-5, atol=1e-6)
    # Pixels outside every crop receive no gradient.
    assert np.any(got["grad_images"] != 0.0)
