"""nanofn.image against jax.image: `resize` (every method, with and without antialiasing,
up and down, batch and channel axes, nearest) and `scale_and_translate` values and
gradients in image, scale and translation, recorded from JAX into
tests/reference/image_jax.npz by tools/reference/record_image.py (this test does not
import JAX); gradients in the image also against finite differences; jit, vmap, float32
and integer inputs, and errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import image as nimage
from nanofn.testing import check_grads

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference")
from image_cases import RESIZE, SCALE_AND_TRANSLATE  # noqa: E402

REF = np.load(os.path.join(HERE, "image_jax.npz"))


@pytest.mark.parametrize("name", list(RESIZE))
def test_resize_matches_jax(name):
    _, out_shape, method, antialias = RESIZE[name]
    image = REF[f"resize/{name}/image"]
    got = nimage.resize(fnp.asarray(image), out_shape, method, antialias=antialias)
    expected = REF[f"resize/{name}/out"]
    assert got.shape == expected.shape and got.dtype == np.float64
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(SCALE_AND_TRANSLATE))
def test_scale_and_translate_values_and_gradients_match_jax(name):
    _, out_shape, method, antialias, dims, scale, translation = SCALE_AND_TRANSLATE[name]
    image, w = REF[f"st/{name}/image"], REF[f"st/{name}/w"]

    def f(image, scale, translation):
        return nimage.scale_and_translate(image, out_shape, dims, scale, translation, method,
                                          antialias=antialias)

    args = (fnp.asarray(image), fnp.asarray(np.asarray(scale)),
            fnp.asarray(np.asarray(translation)))
    np.testing.assert_allclose(np.asarray(f(*args)), REF[f"st/{name}/out"], rtol=1e-12,
                               atol=1e-12)
    grads = nanofn.grad(lambda *a: fnp.sum(w * f(*a)), argnums=(0, 1, 2))(*args)
    for i, g in enumerate(grads):
        np.testing.assert_allclose(np.asarray(g), REF[f"st/{name}/grad{i}"], rtol=1e-10,
                                   atol=1e-10)


@pytest.mark.parametrize("method", ["linear", "cubic", "lanczos3", "area", "nearest"])
def test_resize_gradient_in_image_by_finite_differences(method):
    image = np.random.default_rng(3).normal(size=(4, 3))
    check_grads(lambda x: nimage.resize(x, (3, 5), method), (fnp.asarray(image),), order=2,
                modes=("rev", "fwd"))


def test_scale_and_translate_gradient_by_finite_differences():
    image = np.random.default_rng(4).normal(size=(5, 4))
    f = lambda x, s, t: nimage.scale_and_translate(x, (6, 3), (0, 1), s, t, "lanczos3")
    check_grads(f, (fnp.asarray(image), fnp.asarray([1.3, 0.7]), fnp.asarray([0.4, -0.2])),
                order=1, modes=("rev",))


def test_jit_vmap_and_float32():
    name = "down2d/cubic/True"
    image = REF[f"resize/{name}/image"]
    expected = REF[f"resize/{name}/out"]
    f = lambda x: nimage.resize(x, (3, 5), "bicubic")
    np.testing.assert_allclose(np.asarray(nanofn.jit(f)(fnp.asarray(image))), expected,
                               rtol=1e-12, atol=1e-12)
    batch = np.stack([image, 2 * image])
    np.testing.assert_allclose(np.asarray(nanofn.vmap(f)(fnp.asarray(batch))),
                               np.stack([expected, 2 * expected]), rtol=1e-12, atol=1e-12)
    got32 = f(fnp.asarray(image.astype(np.float32)))
    assert got32.dtype == np.float32
    np.testing.assert_allclose(np.asarray(got32), expected, rtol=1e-5, atol=1e-5)


def test_integer_images_and_method_names():
    image = fnp.asarray(np.arange(12, dtype=np.int32).reshape(3, 4))
    near = nimage.resize(image, (6, 2), "nearest")
    assert near.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(near), np.asarray(image)[[0, 0, 1, 1, 2, 2]][:, [1, 3]])
    lin = nimage.resize(image, (6, 2), nimage.ResizeMethod.LINEAR)
    assert lin.dtype.kind == "f"
    np.testing.assert_array_equal(np.asarray(lin),
                                  np.asarray(nimage.resize(image, (6, 2), "triangle")))
    # the identity resize returns the image (every kernel interpolates)
    x = REF["resize/same/lanczos3/image"]
    np.testing.assert_array_equal(np.asarray(nimage.resize(fnp.asarray(x), x.shape, "lanczos5")), x)


def test_errors_name_the_culprit():
    x = fnp.zeros((3, 4))
    with pytest.raises(ValueError, match="Unknown resize method"):
        nimage.resize(x, (2, 2), "bogus")
    with pytest.raises(ValueError, match="shape must have length"):
        nimage.resize(x, (2,), "linear")
    with pytest.raises(TypeError, match="shape"):
        nimage.resize(x, (2, 2.5), "linear")
    with pytest.raises(ValueError, match="nearest"):
        nimage.scale_and_translate(x, (2, 2), (0, 1), [1.0, 1.0], [0.0, 0.0], "nearest")
    with pytest.raises(ValueError, match="scale must have one entry"):
        nimage.scale_and_translate(x, (2, 2), (0, 1), [1.0], [0.0, 0.0], "linear")
    with pytest.raises(ValueError, match="spatial_dims"):
        nimage.scale_and_translate(x, (2, 2), (0, 5), [1.0, 1.0], [0.0, 0.0], "linear")


def test_traced_scale_and_translation_under_jit_and_vmap():
    name = "st2d/cubic/True"
    image, expected = REF[f"st/{name}/image"], REF[f"st/{name}/out"]
    f = lambda s, t: nimage.scale_and_translate(fnp.asarray(image), (7, 8), (0, 1), s, t, "cubic")
    s, t = fnp.asarray(np.array([1.3, 0.7])), fnp.asarray(np.array([0.4, -1.2]))  # float64
    np.testing.assert_allclose(np.asarray(nanofn.jit(f)(s, t)), expected, rtol=1e-12, atol=1e-12)
    batched = nanofn.vmap(f)(fnp.stack([s, s]), fnp.stack([t, t + 0.5]))
    np.testing.assert_allclose(np.asarray(batched[0]), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(batched[1]), np.asarray(f(s, t + 0.5)), rtol=1e-12)
