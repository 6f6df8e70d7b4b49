"""Record jax.image's values and gradients at the image cases into image_jax.npz.

Runs only where JAX is installed (tests never import JAX; they read the npz):

    python tools/reference/record_image.py
"""

from __future__ import annotations

import os

import numpy as np

from _recording import data_dir, jax_x64  # beside this script

DATA = data_dir("reference")  # read by the tests


def record():
    jax = jax_x64()
    import jax.numpy as jnp
    from image_cases import RESIZE, SCALE_AND_TRANSLATE

    rng = np.random.default_rng(20261206)
    data = {"jax_version": np.asarray(jax.__version__)}
    for name, (in_shape, out_shape, method, antialias) in RESIZE.items():
        image = rng.normal(size=in_shape)
        data[f"resize/{name}/image"] = image
        data[f"resize/{name}/out"] = np.asarray(
            jax.image.resize(jnp.asarray(image), out_shape, method, antialias=antialias))
    for name, case in SCALE_AND_TRANSLATE.items():
        in_shape, out_shape, method, antialias, dims, scale, translation = case
        image = rng.normal(size=in_shape)
        w = rng.normal(size=out_shape)

        def f(image, scale, translation):
            return jax.image.scale_and_translate(image, out_shape, dims, scale, translation,
                                                 method, antialias=antialias)

        args = (jnp.asarray(image), jnp.asarray(scale, jnp.float64),
                jnp.asarray(translation, jnp.float64))
        data[f"st/{name}/image"] = image
        data[f"st/{name}/w"] = w
        data[f"st/{name}/out"] = np.asarray(f(*args))
        grads = jax.grad(lambda *a: jnp.sum(w * f(*a)), argnums=(0, 1, 2))(*args)
        for i, g in enumerate(grads):
            data[f"st/{name}/grad{i}"] = np.asarray(g)
    np.savez_compressed(os.path.join(DATA, "image_jax.npz"), **data)


if __name__ == "__main__":
    record()
