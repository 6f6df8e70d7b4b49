"""Errors a port meets keep both kinds: the exception class JAX raises (what tests written
against JAX catch) and the one numpy raises, with a message that names the problem."""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp

CASES = [  # (call, JAX's class, numpy's class, message)
    (lambda: fnp.ones(3)[fnp.array([0.5])], TypeError, IndexError, "integer .* type"),
    (lambda: fnp.ones(3)[np.array([0.5])], TypeError, IndexError, "dtype float64"),
    (lambda: nanofn.jit(lambda x, i: x[i])(fnp.ones(3), fnp.array([0.5])), TypeError,
     IndexError, "traced array of dtype float32"),
    (lambda: fnp.zeros((2, -1)), TypeError, ValueError, r"\(2, -1\) has a negative"),
    (lambda: fnp.transpose(fnp.ones((2, 3)), (0, 0)), TypeError, ValueError, "repeated axis"),
    (lambda: fnp.sum(fnp.ones((2, 3)), axis=(1, -1)), TypeError, ValueError, "repeated axis"),
    (lambda: fnp.dot(fnp.ones((2, 3)), fnp.ones((2, 3))), TypeError, ValueError, r"\(2, 3\)"),
]


@pytest.mark.parametrize("index", range(len(CASES)))
def test_error_is_both_jax_and_numpy_kind(index):
    call, jax_kind, numpy_kind, message = CASES[index]
    with pytest.raises(jax_kind, match=message) as info:
        call()
    assert isinstance(info.value, numpy_kind)
