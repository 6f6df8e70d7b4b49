"""optax's deprecated names that ported programs still use: they work and warn, as optax's
do (`optax.tree_utils.tree_l2_norm`, `optax.dpsgd`, ...)."""

from __future__ import annotations

import numpy as np
import pytest

import nanofn.optim as optim

TREE = {"w": np.array([3.0, -4.0]), "b": np.array(-12.0)}


@pytest.mark.parametrize("name,ord_,want", [("tree_l1_norm", 1, 19.0), ("tree_l2_norm", 2, 13.0),
                                            ("tree_linf_norm", "inf", 12.0)])
def test_tree_norm_aliases(name, ord_, want):
    with pytest.warns(DeprecationWarning, match=f"tree_utils.{name} is deprecated"):
        fn = getattr(optim.tree_utils, name)
    assert float(fn(TREE)) == want == float(optim.tree_utils.tree_norm(TREE, ord=ord_))


def test_scalar_mul_aliases_and_moved_contrib_names():
    with pytest.warns(DeprecationWarning):
        scaled = optim.tree_utils.tree_scalar_mul(2.0, TREE)
    np.testing.assert_array_equal(np.asarray(scaled["w"]), [6.0, -8.0])
    with pytest.warns(DeprecationWarning):
        added = optim.tree_utils.tree_add_scalar_mul(TREE, 0.5, TREE)
    np.testing.assert_array_equal(np.asarray(added["w"]), [4.5, -6.0])
    for name in ("dpsgd", "differentially_private_aggregate",
                 "DifferentiallyPrivateAggregateState"):
        with pytest.warns(DeprecationWarning, match=f"use nanofn.optim.contrib.{name}"):
            assert getattr(optim, name) is getattr(optim.contrib, name)
    with pytest.raises(AttributeError, match="no attribute 'tree_l3_norm'"):
        optim.tree_utils.tree_l3_norm  # noqa: B018
