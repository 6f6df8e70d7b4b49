"""nanofn.scipy.interpolate.RegularGridInterpolator: values against
scipy.interpolate.RegularGridInterpolator (linear and nearest, 1-3 dimensions, trailing
value axes, fill values and extrapolation, the forms of xi), the pytree protocol under
jit and vmap, gradients in values, query points and grid against finite differences in
float64, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.interpolate

import nanofn
import nanofn.numpy as fnp
from nanofn.scipy.interpolate import RegularGridInterpolator
from nanofn.testing import check_grads


def _grid(rng, sizes):
    return tuple(np.cumsum(rng.uniform(0.3, 1.5, size=n)) for n in sizes)


@pytest.mark.parametrize("method", ["linear", "nearest"])
@pytest.mark.parametrize("sizes,trailing", [((5,), ()), ((4, 3), ()), ((3, 4, 2), (2,))])
@pytest.mark.parametrize("fill_value", [np.nan, -1.5, None])
def test_values_match_scipy(method, sizes, trailing, fill_value):
    rng = np.random.default_rng(len(sizes))
    grid = _grid(rng, sizes)
    values = rng.normal(size=sizes + trailing)
    # inside the grid and up to one cell beyond it on each side
    xi = np.stack([rng.uniform(g[0] - 0.8, g[-1] + 0.8, size=(3, 4)) for g in grid], axis=-1)
    ours = RegularGridInterpolator(tuple(fnp.asarray(g) for g in grid), fnp.asarray(values),
                                   method=method, fill_value=fill_value)
    ref = scipy.interpolate.RegularGridInterpolator(grid, values, method=method,
                                                    bounds_error=False, fill_value=fill_value)
    got = ours(fnp.asarray(xi))
    assert got.shape == (3, 4) + trailing and got.dtype == np.float64
    np.testing.assert_allclose(np.asarray(got), ref(xi), rtol=1e-12, atol=1e-12)


def test_forms_of_xi_and_method_override():
    rng = np.random.default_rng(5)
    grid = _grid(rng, (4, 5))
    values = rng.normal(size=(4, 5))
    ours = RegularGridInterpolator(grid, values)
    ref = scipy.interpolate.RegularGridInterpolator(grid, values, bounds_error=False)
    x, y = rng.uniform(grid[0][0], grid[0][-1], 6), rng.uniform(grid[1][0], grid[1][-1], 6)
    expected = ref(np.stack([x, y], -1))
    np.testing.assert_allclose(np.asarray(ours((fnp.asarray(x), fnp.asarray(y)))), expected)
    flat = np.stack([x, y], -1).reshape(-1)  # a 1-D array of flattened pairs
    np.testing.assert_allclose(np.asarray(ours(fnp.asarray(flat))), expected)
    # a tuple of arrays that broadcast: a 6x1 column against a row of 3
    grid_out = ours((fnp.asarray(x[:, None]), fnp.asarray(y[None, :3])))
    assert grid_out.shape == (6, 3)
    np.testing.assert_allclose(np.asarray(grid_out)[:, 0],
                               ref(np.stack([x, np.full(6, y[0])], -1)))
    np.testing.assert_allclose(np.asarray(ours(np.stack([x, y], -1), method="nearest")),
                               ref(np.stack([x, y], -1), method="nearest"))


def test_pytree_jit_and_vmap():
    rng = np.random.default_rng(6)
    grid = _grid(rng, (4, 3))
    interp = RegularGridInterpolator(grid, rng.normal(size=(4, 3)))
    leaves, treedef = nanofn.tree_util.tree_flatten(interp)
    assert len(leaves) == 4  # two grid axes, values, fill value
    xi = np.stack([rng.uniform(grid[0][0], grid[0][-1], (2, 5)),
                   rng.uniform(grid[1][0], grid[1][-1], (2, 5))], -1)
    expected = np.asarray(interp(xi))
    np.testing.assert_allclose(np.asarray(nanofn.jit(lambda f, x: f(x))(interp, xi)), expected,
                               rtol=1e-12)
    np.testing.assert_allclose(np.asarray(nanofn.vmap(interp)(fnp.asarray(xi))), expected,
                               rtol=1e-12)


@pytest.mark.parametrize("method", ["linear", "nearest"])
def test_gradients(method):
    rng = np.random.default_rng(7)
    grid = _grid(rng, (3, 4))
    values = rng.normal(size=(3, 4))
    # query points inside cells, away from the cell edges and the nearest-point switch
    cells = [rng.integers(0, len(g) - 1, 5) for g in grid]
    frac = rng.choice([0.2, 0.35, 0.65, 0.8], size=(2, 5))
    xi = np.stack([g[c] + f * (g[c + 1] - g[c]) for g, c, f in zip(grid, cells, frac)], -1)

    def f(values, xi, g0, g1):
        return RegularGridInterpolator((g0, g1), values, method=method)(xi)

    check_grads(f, tuple(fnp.asarray(a) for a in (values, xi) + grid), order=1,
                modes=("rev",))
    check_grads(lambda v, x: f(v, x, *grid), (fnp.asarray(values), fnp.asarray(xi)), order=2,
                modes=("rev", "fwd"))


def test_errors_name_the_culprit():
    g = fnp.array([0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="method 'cubic'"):
        RegularGridInterpolator((g,), fnp.zeros(3), method="cubic")
    with pytest.raises(NotImplementedError, match="bounds_error"):
        RegularGridInterpolator((g,), fnp.zeros(3), bounds_error=True)
    with pytest.raises(ValueError, match="2 point arrays"):
        RegularGridInterpolator((g, g), fnp.zeros(3))
    with pytest.raises(ValueError, match="3 points in dimension 0"):
        RegularGridInterpolator((g,), fnp.zeros(4))
    with pytest.raises(ValueError, match="fill_value"):
        RegularGridInterpolator((g,), fnp.zeros(3), fill_value=1j)
    with pytest.raises(ValueError, match="dimension 3"):
        RegularGridInterpolator((g,), fnp.zeros(3))(fnp.zeros((2, 3)))
