"""Which integer and boolean inputs the activations take, as in JAX 0.10: the functions
built on `lax.logistic` (sigmoid, silu/swish, glu) take floating and complex inputs only;
log_sigmoid, softmax, log_softmax and one_hot refuse booleans; the rest convert."""

import numpy as np
import pytest

import nanofn.numpy as fnp
from nanofn import nn

INTS = [fnp.array([1, -2, 3, 4]), fnp.array([1, 2, 3, 4], dtype=fnp.uint8), 2]
BOOLS = [fnp.array([True, False, True, False])]


@pytest.mark.parametrize("name", ["sigmoid", "silu", "swish", "glu"])
@pytest.mark.parametrize("x", INTS + BOOLS)
def test_logistic_based_activations_refuse_integers_and_booleans(name, x):
    dtype = fnp.asarray(x).dtype.name
    with pytest.raises(TypeError, match=f"does not accept dtype {dtype}"):
        getattr(nn, name)(x)


@pytest.mark.parametrize("name", ["log_sigmoid", "softmax", "log_softmax"])
def test_booleans_refused_integers_converted(name):
    with pytest.raises(TypeError, match=f"{name} does not accept dtype bool"):
        getattr(nn, name)(BOOLS[0])
    got = getattr(nn, name)(fnp.array([1, -2, 3]))
    want = getattr(nn, name)(fnp.array([1.0, -2.0, 3.0]))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("name", ["relu", "relu6", "softplus", "soft_sign", "elu", "celu",
                                  "selu", "gelu", "leaky_relu", "hard_sigmoid", "hard_silu",
                                  "mish", "squareplus", "sparse_plus"])
def test_other_activations_take_integers_and_booleans(name):
    f = getattr(nn, name)
    for x in (fnp.array([1, -2, 3]), fnp.array([True, False, True])):
        out = f(x)
        assert out.shape == (3,)


def test_float_and_complex_inputs_still_work():
    np.testing.assert_allclose(nn.sigmoid(fnp.array([0.0])), [0.5])
    assert nn.sigmoid(fnp.array([0.5 + 0j])).dtype == np.complex64
    np.testing.assert_allclose(nn.glu(fnp.array([[2.0, 0.0]])), [[1.0]])
