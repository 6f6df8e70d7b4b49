"""`update_moment_per_elem_norm` raises a real gradient as it is (an odd order keeps the
sign, as optax's does) and a complex one by its magnitude; `tree.norm(squared=True)`
squares a norm of any order, as optax's `tree_norm` does."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from nanofn import optim

grads = hnp.arrays(np.float64, st.integers(1, 5), elements=st.floats(-3, 3))


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@given(g=grads, decay=st.floats(0.0, 0.99))
def test_real_gradients_are_raised_signed(order, g, decay):
    m = np.linspace(0.0, 1.0, g.size)
    (got,) = optim.update_moment_per_elem_norm([g], [m], decay, order)
    np.testing.assert_allclose(np.asarray(got), (1 - decay) * g ** order + decay * m,
                               rtol=1e-12, atol=1e-12)
    assert optim.tree.update_moment_per_elem_norm is optim.update_moment_per_elem_norm


@pytest.mark.parametrize("order", [1, 2, 3])
def test_complex_gradients_are_raised_by_magnitude(order):
    g = np.array([3 + 4j, -1j])
    (got,) = optim.update_moment_per_elem_norm([g], [np.zeros(2, complex)], 0.5, order)
    np.testing.assert_allclose(np.asarray(got), 0.5 * np.abs(g) ** order, rtol=1e-12)


@pytest.mark.parametrize("ord_,want", [(None, 14.0), (2, 14.0), (1, 36.0), ("inf", 9.0),
                                       ("infinity", 9.0), (np.inf, 9.0)])
def test_squared_norm_of_every_order(ord_, want):
    # optax's tree_norm(..., squared=True) squares the norm of any order
    tree = {"a": np.array([-3.0, 1.0]), "b": np.array(2.0)}
    assert float(optim.tree.norm(tree, ord=ord_, squared=True)) == want
    assert float(optim.tree.norm(tree, ord=ord_)) ** 2 == pytest.approx(want)


def test_batch_shape_broadcasts_every_leaf():
    # optax's tree.batch_shape adds leading batch dimensions to the leaves themselves
    tree = {"a": np.array([1.0, 2.0]), "b": np.array(3.0)}
    out = optim.tree.batch_shape(tree, (4, 1))
    assert out["a"].shape == (4, 1, 2) and out["b"].shape == (4, 1)
    np.testing.assert_array_equal(np.asarray(out["a"])[2, 0], [1.0, 2.0])
    assert float(np.asarray(out["b"]).sum()) == 12.0
