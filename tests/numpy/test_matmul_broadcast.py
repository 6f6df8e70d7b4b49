"""`matmul` with batch axes that broadcast: numpy's values, finite-difference gradients,
and products that never materialise a broadcast copy of an operand.

`x (B, T, C) @ w (C, D)` must be one (B*T, C) x (C, D) product (as `jax.numpy.matmul`
lowers it), and the gradient with respect to `w` one contraction over B and T, not B
per-example products of a broadcast `w` summed afterwards (W7's projections and their
weight gradients)."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn.testing import check_grads


@st.composite
def _matmul_shapes(draw):
    """Two operand shapes numpy's matmul accepts: 1-d or matrices with batch axes that
    are absent, of size 1, or equal, in any mix."""
    m, k, n = (draw(st.integers(1, 3)) for _ in range(3))
    nb = draw(st.integers(0, 3))
    batch = [draw(st.integers(2, 3)) for _ in range(nb)]

    def side(core):
        if draw(st.integers(0, 3)) == 0:
            return (k,)  # a 1-d operand: its one axis is contracted
        keep = draw(st.integers(0, nb))
        dims = [d if draw(st.booleans()) else 1 for d in batch[nb - keep:]]
        return tuple(dims) + core
    return side((m, k)), side((k, n))


@given(_matmul_shapes(), st.integers(0, 2**31 - 1))
def test_matmul_matches_numpy_on_broadcast_batches(shapes, seed):
    sa, sb = shapes
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    want = np.matmul(a, b)
    got = fnp.matmul(fnp.asarray(a, dtype=np.float64), fnp.asarray(b, dtype=np.float64))
    assert got.shape == want.shape
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)
    jitted = nanofn.jit(fnp.matmul)(a.astype(np.float32), b.astype(np.float32))
    np.testing.assert_allclose(np.asarray(jitted), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("sa, sb", [((4, 2, 3), (3, 2)), ((5, 1, 2, 3), (4, 3, 2)),
                                    ((1, 4, 2, 3), (5, 1, 3, 2)), ((3,), (4, 3, 2)),
                                    ((4, 2, 3), (3,)), ((1, 2, 3), (1, 3, 2)),
                                    ((2, 2, 3), (2, 3, 2))])
def test_matmul_gradients_on_broadcast_batches(sa, sb):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    check_grads(lambda x, y: fnp.sin(fnp.matmul(x, y)), (a, b), order=2)


def test_matmul_against_a_matrix_is_one_product_and_so_is_its_weight_gradient():
    x = np.ones((16, 8, 4), np.float32)
    w = np.ones((4, 3), np.float32)
    loss = lambda x, w: fnp.sum(fnp.tanh(x @ w))
    for fun in (lambda x, w: x @ w, nanofn.grad(loss, argnums=1)):
        jaxpr = nanofn.make_jaxpr(fun)(x, w).jaxpr
        dots = [e for e in jaxpr.eqns if e.primitive.name == "dot_general"]
        assert dots, str(jaxpr)
        for e in dots:
            (_, _), (lb, rb) = e.params["dimension_numbers"]
            assert lb == () and rb == (), str(jaxpr)  # no batch axes: one product
            assert all(v.aval.shape != (16, 4, 3) for v in e.invars), str(jaxpr)
        assert not any(e.primitive.name == "broadcast_in_dim" and e.outvars[0].aval.shape
                       == (16, 4, 3) for e in jaxpr.eqns), str(jaxpr)
