"""jax.lax behaviours found missing by running the same calls under JAX and nanofn: an
integer exponent in `lax.pow`, `select_n` with one case, complex sort keys."""

from __future__ import annotations

import numpy as np
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import nanofn
import nanofn.numpy as fnp
from nanofn import lax
from nanofn.testing import check_grads


@given(hnp.arrays(np.float64, 4, elements=st.floats(0.1, 3.0)),
       hnp.arrays(np.int32, 4, elements=st.integers(-3, 4)))
def test_pow_takes_an_integer_exponent_with_a_float_base(x, n):
    got = lax.pow(x, n)
    assert got.dtype == np.float64
    np.testing.assert_allclose(np.asarray(got), x ** n.astype(np.float64), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(lax.pow(x, 3)), x ** 3, rtol=1e-12)  # a Python int
    check_grads(lambda b: lax.pow(b, n), (x,), order=2)
    c = (x + 1j * x[::-1]).astype(np.complex128)
    np.testing.assert_allclose(np.asarray(lax.pow(c, n)), c ** n.astype(np.complex128),
                               rtol=1e-12)


def test_select_n_with_one_case_returns_it():
    x = np.arange(3.0)
    assert np.asarray(lax.select_n(np.zeros(3, np.int32), x)).tolist() == [0.0, 1.0, 2.0]
    assert np.asarray(lax.select_n(np.array([False, False, False]), x)).tolist() == [0, 1, 2]


@given(hnp.arrays(np.complex128, st.integers(1, 6),
                  elements=st.complex_numbers(max_magnitude=4, allow_nan=False,
                                              allow_infinity=False)))
def test_complex_keys_sort_by_real_then_imaginary_part(z):
    # numpy's (and JAX's) order; equal keys keep their order, values follow their keys
    z = np.round(z, 0)  # ties in the real part, so the imaginary part decides
    order = np.lexsort((z.imag, z.real))
    np.testing.assert_array_equal(np.asarray(lax.sort(z)), z[order])
    keys, vals = lax.sort_key_val(z, np.arange(len(z)))
    np.testing.assert_array_equal(np.asarray(vals), order)
    np.testing.assert_array_equal(np.asarray(nanofn.jit(lax.sort)(z)), z[order])
    w = np.arange(1.0, len(z) + 1)
    got = nanofn.grad(lambda v: fnp.sum(fnp.real(lax.sort(v)) * w))(z)
    want = np.zeros(len(z))
    want[order] = w  # d/d real(z[order[k]]) = w[k]
    np.testing.assert_allclose(np.real(np.asarray(got)), want)
