"""one_hot warns, as JAX does (a DeprecationWarning), when the labels are floats, and
still encodes them by comparison with the class indices; boolean labels are a TypeError,
as in JAX 0.10 (its iota of the class indices takes no bool)."""

import warnings

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import nn


@pytest.mark.parametrize("labels", [[0.0, 2.0, 1.5]])
def test_non_integer_labels_warn_and_still_encode(labels):
    x = fnp.asarray(labels)
    with pytest.warns(DeprecationWarning, match=r"one_hot input should be integer-typed"):
        got = nn.one_hot(x, 3)
    want = (np.asarray(labels, np.float32)[:, None] == np.arange(3)).astype(np.float32)
    np.testing.assert_array_equal(got, want)


def test_boolean_labels_raise_type_error_naming_one_hot():
    with pytest.raises(TypeError, match="one_hot does not accept dtype bool"):
        nn.one_hot(fnp.asarray([True, False]), 3)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64])
def test_integer_labels_do_not_warn_under_jit_and_vmap(dtype):
    x = np.array([0, 2, 5], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eager = nn.one_hot(x, 3)
        jitted = nanofn.jit(lambda v: nn.one_hot(v, 3))(x)
        mapped = nanofn.vmap(lambda v: nn.one_hot(v, 3))(x)
    want = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]], np.float32)
    for got in (eager, jitted, mapped):
        np.testing.assert_array_equal(got, want)
