"""nanofn.numpy.linalg and nanofn.scipy.linalg against values and gradients recorded from
JAX (tools/reference/record_linalg.py, run where JAX is installed, wrote
linalg_jax.npz; this test does not import JAX). The cases (tools/reference/linalg_cases.py)
include JAX's conventions at the edges: det's gradient at singular matrices, eigh and
cholesky with symmetrize_input=False, the pseudo-inverse of a rank-deficient matrix."""

from __future__ import annotations

import os

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn.numpy import linalg as nl
from nanofn.scipy import linalg as nsl

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference")
from linalg_cases import CASES, loss_term, weights  # noqa: E402

REF = np.load(os.path.join(HERE, "linalg_jax.npz"))


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_jax(name):
    make, args = CASES[name]
    f = make(nl, nsl, fnp)
    outs = _outputs(f(*args))
    for i, out in enumerate(outs):
        want = REF[f"{name}/out{i}"]
        assert np.shape(out) == want.shape, (i, np.shape(out), want.shape)
        np.testing.assert_allclose(np.asarray(out), want, rtol=1e-9, atol=1e-11,
                                   err_msg=f"{name}: output {i}")
    if f"{name}/grad0" not in REF:  # JAX cannot differentiate this one; nanofn can
        return

    def loss(*a):
        return sum(loss_term(fnp, weights(np.shape(o), i), o)
                   for i, o in enumerate(_outputs(f(*a))))

    grads = nanofn.grad(loss, argnums=tuple(range(len(args))))(*args)
    for i, g in enumerate(grads):
        np.testing.assert_allclose(np.asarray(g), REF[f"{name}/grad{i}"], rtol=1e-8, atol=1e-10,
                                   err_msg=f"{name}: gradient of argument {i}")
