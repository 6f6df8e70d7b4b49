"""nanofn.scipy.ndimage.map_coordinates: values against scipy.ndimage.map_coordinates for
every mode and order (JAX's "constant" and "wrap" are scipy's "grid-constant" and
"grid-wrap"), integer inputs, jit and vmap, gradients in input and coordinates against
finite differences in float64, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage

import nanofn
import nanofn.numpy as fnp
from nanofn.scipy.ndimage import map_coordinates
from nanofn.testing import check_grads

SCIPY_MODE = {"constant": "grid-constant", "nearest": "nearest", "wrap": "grid-wrap",
              "mirror": "mirror", "reflect": "reflect"}


@pytest.mark.parametrize("mode", list(SCIPY_MODE))
@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("shape", [(7,), (4, 5), (3, 2, 4)])
def test_values_match_scipy(mode, order, shape):
    rng = np.random.default_rng(len(shape) * 10 + order)
    image = rng.normal(size=shape)
    # points well inside and beyond every edge; avoid exact .5 ties for order 0
    coords = [rng.uniform(-2.3 * n - 1, 3.3 * n + 1, size=(6, 5)) for n in shape]
    got = map_coordinates(fnp.asarray(image), [fnp.asarray(c) for c in coords], order,
                          mode=mode, cval=0.75)
    expected = scipy.ndimage.map_coordinates(image, np.stack(coords), order=order,
                                             mode=SCIPY_MODE[mode], cval=0.75)
    assert got.dtype == np.float64 and got.shape == (6, 5)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-12, atol=1e-12)


def test_integer_input_rounds_and_keeps_dtype():
    image = np.arange(10, dtype=np.int32) * 3
    coords = np.array([0.5, 1.5, 2.25, 8.9, -0.5])
    got = map_coordinates(fnp.asarray(image), [fnp.asarray(coords)], 1, mode="nearest")
    assert got.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(got), [2, 5, 7, 27, 0])  # halves away from zero
    near = map_coordinates(fnp.asarray(image), [fnp.asarray(np.array([0.5, 1.5, -0.5]))], 0)
    np.testing.assert_array_equal(np.asarray(near), [3, 6, 0])  # index -1: cval


def test_jit_and_vmap():
    rng = np.random.default_rng(1)
    image = fnp.asarray(rng.normal(size=(4, 5)))
    coords = rng.uniform(-1, 5, size=(3, 2, 6))  # a batch of 3 coordinate sets
    f = lambda c: map_coordinates(image, [c[0], c[1]], 1, mode="reflect")
    eager = np.stack([np.asarray(f(fnp.asarray(c))) for c in coords])
    np.testing.assert_allclose(np.asarray(nanofn.jit(f)(fnp.asarray(coords[0]))), eager[0],
                               rtol=1e-12)
    np.testing.assert_allclose(np.asarray(nanofn.vmap(f)(fnp.asarray(coords))), eager,
                               rtol=1e-12)


@pytest.mark.parametrize("mode", ["constant", "wrap", "mirror"])
def test_gradients_in_input_and_coordinates(mode):
    rng = np.random.default_rng(2)
    image = rng.normal(size=(3, 4))
    # fractional parts away from the kinks at integers
    coords = np.floor(rng.uniform(-2, 5, size=(2, 5))) + rng.uniform(0.2, 0.8, size=(2, 5))
    f = lambda im, c: map_coordinates(im, [c[0], c[1]], 1, mode=mode, cval=0.5)
    check_grads(f, (fnp.asarray(image), fnp.asarray(coords)), order=2, modes=("rev", "fwd"))


def test_order_zero_has_zero_coordinate_gradient():
    image = fnp.asarray(np.arange(6.0))
    g = nanofn.grad(lambda c: map_coordinates(image, [c], 0).sum())(fnp.asarray([1.2, 3.7]))
    np.testing.assert_array_equal(np.asarray(g), [0.0, 0.0])


def test_errors_name_the_culprit():
    image = fnp.zeros((3, 4))
    with pytest.raises(ValueError, match="length input.ndim"):
        map_coordinates(image, [fnp.zeros(2)], 1)
    with pytest.raises(NotImplementedError, match="order"):
        map_coordinates(image, [fnp.zeros(2), fnp.zeros(2)], 3)
    with pytest.raises(NotImplementedError, match="'grid-wrap'"):
        map_coordinates(image, [fnp.zeros(2), fnp.zeros(2)], 1, mode="grid-wrap")
    with pytest.raises(ValueError, match="one shape"):
        map_coordinates(image, [fnp.zeros(2), fnp.zeros(3)], 1)
