"""Derivatives at kinks, ties and domain edges follow JAX's choices.

`tools/reference/record_kinks.py` evaluated every case of `tools/reference/kink_cases.py`
with JAX (float64) into `tests/reference/kinks.json`: the value, the gradient and the
Hessian. Here nanofn evaluates the same cases. Where nanofn chooses differently on
purpose, `DIFFERENT` says what nanofn gives and why (docs/numerics.md lists every
choice); a new difference fails until it is written down there.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp

REF_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reference")
from kink_cases import CASES  # noqa: E402

with open(os.path.join(REF_DIR, "kinks.json")) as _fh:
    JAX = json.load(_fh)["cases"]

# FINITE: nanofn's values are finite, and equal JAX's wherever JAX's are not NaN
FINITE = "finite where JAX is NaN"

# name -> (what nanofn gives instead: {"grad": ..., "hessian": ...}, why)
_ZERO3x3 = [[[[0.0] * 3] * 3]]
DIFFERENT = {
    "norm@0": ({"grad": [[0.0, 0.0, 0.0]], "hessian": _ZERO3x3},
               "the 2-norm's derivatives at the zero vector are 0, a subgradient (JAX: NaN)"),
    "norm(axis=1)@zero-row": ({"grad": [[[0.0, 0.0], [0.6, 0.8]]],
                               "hessian": [[[[[[0.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]],
                                             [[[0.0, 0.0], [0.128, -0.096]],
                                              [[0.0, 0.0], [-0.096, 0.072]]]]]]},
                              "as norm@0, row by row: the zero row's gradient is 0"),
    "norm(ord=2)@equal-singular-values": (
        {"hessian": [[np.zeros((2, 2, 2, 2)).tolist()]]},
        "svd's derivative drops the 1 / (s_i^2 - s_j^2) terms of equal singular values "
        "(0 where JAX's 1/0 gives NaN); the gradient itself is JAX's"),
    "eigh-simple-vector@degenerate": (
        {"grad": [[[0.0, 0.0, 1.0], [0.0, 0.0, 2.0], [1.0, 2.0, 0.0]]], "hessian": FINITE},
        "eigh's derivative drops the 1 / (w_i - w_j) terms of equal eigenvalues, so the "
        "vector of a simple eigenvalue beside a degenerate pair keeps its (exact) gradient; "
        "JAX's inf * 0 spreads NaN over the whole matrix"),
    "eigvalsh@degenerate": ({"hessian": FINITE},
                            "as above: the degenerate pair's terms are 0, the others finite"),
    "svdvals@degenerate": ({"hessian": FINITE}, "as norm(ord=2) at equal singular values"),
    "celu@0": ({"hessian": [[1.0]]},
               "celu'' at 0 is the left branch's 1 (JAX's 0.25 is the product of the halves "
               "that max(x, 0) and min(x, 0) take at their tie, a value neither side has)"),
}


def _nanofn_derivatives(name):
    make, args = CASES[name]
    f = make(fnp, nanofn.nn)
    xs = [np.asarray(a, dtype=np.float64) for a in args]
    nums = tuple(range(len(xs)))
    total = lambda *a: fnp.sum(f(*a))  # noqa: E731
    value = f(*xs)
    grads = nanofn.grad(total, argnums=nums)(*xs)
    hess = nanofn.hessian(total, argnums=nums)(*xs)
    return {"value": np.asarray(value).tolist(),
            "grad": [np.asarray(g).tolist() for g in grads],
            "hessian": [[np.asarray(h).tolist() for h in row] for row in hess]}


def _same(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-12, atol=1e-14, equal_nan=True)


def test_reference_covers_every_case():
    assert sorted(JAX) == sorted(CASES), "re-run tools/reference/record_kinks.py"
    assert set(DIFFERENT) <= set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_kink_matches_jax(name):
    ours, ref = _nanofn_derivatives(name), JAX[name]
    expected = dict(ref)
    if name in DIFFERENT:
        expected.update(DIFFERENT[name][0])
    for key in ("value", "grad", "hessian"):
        if expected[key] is FINITE:
            a, b = np.asarray(ours[key], np.float64), np.asarray(ref[key], np.float64)
            assert a.shape == b.shape and np.isfinite(a).all(), (name, key, ours[key])
            assert _same(np.where(np.isnan(b), a, b), a), (name, key, ours[key], ref[key])
            continue
        assert _same(ours[key], expected[key]), (
            f"{name}: {key} is {ours[key]}, JAX gives {ref[key]}"
            + (f" (documented difference expected {expected[key]})" if name in DIFFERENT else ""))
