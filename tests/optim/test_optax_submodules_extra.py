"""nanofn.optim.projections, second_order, assignment and perturbations without JAX.

What the optax recording (tests/port/test_optax_submodules.py) cannot show: the
projections against independent numpy references on hypothesis-drawn inputs, their
optimality, their derivatives against finite differences, jit and vmap against eager;
the second-order quantities against the dense Hessian and finite differences; both
assignment solvers against scipy.optimize.linear_sum_assignment on hypothesis-drawn
cost matrices (ties included), with optax's output order; the perturbed functions'
statistics (the Gumbel-max trick, unbiased Jacobians and Hessians) and their noise; and
argument errors.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.optimize import linear_sum_assignment

import nanofn
import nanofn.numpy as jnp
from nanofn import optim, tree_util
from nanofn.testing import check_grads

proj = optim.projections
so = optim.second_order
asg = optim.assignment
pert = optim.perturbations


def _leaves(tree):
    return [np.asarray(x) for x in tree_util.tree_leaves(tree)]


def _flat(tree):
    return np.concatenate([np.ravel(x).astype(np.float64) for x in _leaves(tree)])


def _assert_trees_close(a, b, **kw):
    assert tree_util.tree_structure(a) == tree_util.tree_structure(b)
    for x, y in zip(_leaves(a), _leaves(b)):
        np.testing.assert_allclose(x, y, **kw)


def test_public_names_are_optaxs():
    assert sorted(proj.__all__) == sorted([
        "projection_box", "projection_halfspace", "projection_hypercube",
        "projection_hyperplane", "projection_l1_ball", "projection_l1_sphere",
        "projection_l2_ball", "projection_l2_sphere", "projection_linf_ball",
        "projection_non_negative", "projection_simplex", "projection_vector"])
    assert sorted(so.__all__) == ["fisher_diag", "hessian_diag", "hvp"]
    assert sorted(asg.__all__) == ["base_hungarian_algorithm", "hungarian_algorithm"]
    assert sorted(pert.__all__) == ["Gumbel", "Normal", "make_perturbed_fun"]
    for module in (proj, so, asg, pert):
        for name in module.__all__:
            assert getattr(optim, module.__name__.rsplit(".", 1)[1]) is module
            assert getattr(module, name).__doc__, name


# --- projections: numpy references --------------------------------------------------------


def _np_simplex(x, s=1.0):
    """Projection onto {p >= 0, sum p = s} by bisection on the threshold (float64)."""
    x = np.asarray(x, np.float64)
    lo, hi = x.min() - s, x.max()
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.maximum(x - mid, 0).sum() > s:
            lo = mid
        else:
            hi = mid
    return np.maximum(x - 0.5 * (lo + hi), 0)


def _np_l1_ball(x, s):
    x = np.asarray(x, np.float64)
    if np.abs(x).sum() <= s:
        return x
    return np.sign(x) * _np_simplex(np.abs(x), s)


vectors = hnp.arrays(np.float32, st.integers(1, 12),
                     elements=st.floats(-5, 5, width=32, allow_subnormal=False))
scales = st.floats(0.1, 4.0)


def _tree_of(v):
    """A pytree (a dict of a vector and a matrix when the size allows) holding ``v``."""
    v = jnp.asarray(v)
    if v.shape[0] >= 4 and v.shape[0] % 2 == 0:
        half = v.shape[0] // 2
        return {"a": v[:half].reshape(half // 2, 2) if half % 2 == 0 else v[:half],
                "b": v[half:]}
    return v


@given(vectors, scales)
def test_simplex_matches_bisection_reference_and_is_optimal(v, s):
    tree = _tree_of(v)
    p = proj.projection_simplex(tree, s)
    assert tree_util.tree_structure(p) == tree_util.tree_structure(tree)
    flat = _flat(p)
    np.testing.assert_allclose(flat, _np_simplex(_flat(tree), s), atol=2e-5 * (1 + s))
    assert flat.min() >= 0 and abs(flat.sum() - s) < 1e-4 * (1 + s)
    # the variational inequality <x - p, y - p> <= 0 for points y of the simplex
    rng = np.random.default_rng(0)
    for y in rng.dirichlet(np.ones(flat.size), size=5) * s:
        assert np.dot(_flat(tree) - flat, y - flat) <= 1e-4 * (1 + s) * (1 + np.abs(v).max())


@given(vectors, scales)
def test_l1_projections_match_reference(v, s):
    x = _flat(v)
    np.testing.assert_allclose(np.asarray(proj.projection_l1_ball(jnp.asarray(v), s)),
                               _np_l1_ball(x, s), atol=3e-5 * (1 + s))
    sphere = np.asarray(proj.projection_l1_sphere(jnp.asarray(v), s))
    # As in optax, the result is sign(x) * simplex(|x|): zero entries of x stay zero even
    # where the simplex gives them mass, so it lies on the sphere only when x has no zeros.
    np.testing.assert_allclose(sphere, np.sign(x) * _np_simplex(np.abs(x), s),
                               atol=3e-5 * (1 + s))
    if np.all(x != 0):
        assert abs(np.abs(sphere).sum() - s) < 1e-4 * (1 + s)


@given(vectors, scales)
def test_l2_and_linf_and_box_match_reference(v, s):
    tree = _tree_of(v)
    x = _flat(tree)
    norm = np.linalg.norm(x)
    np.testing.assert_allclose(_flat(proj.projection_l2_ball(tree, s)),
                               x * s / max(norm, s), rtol=1e-5, atol=1e-6)
    if norm > 1e-3:
        np.testing.assert_allclose(_flat(proj.projection_l2_sphere(tree, s)), x * s / norm,
                                   rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_flat(proj.projection_linf_ball(tree, s)),
                               np.clip(x, -np.float32(s), np.float32(s)), rtol=1e-6)
    np.testing.assert_array_equal(_flat(proj.projection_non_negative(tree)),
                                  np.maximum(x, 0))
    np.testing.assert_allclose(_flat(proj.projection_hypercube(tree, s)),
                               np.clip(x, 0, np.float32(s)), rtol=1e-6)
    np.testing.assert_allclose(_flat(proj.projection_box(tree, -s, 0.5 * s)),
                               np.clip(x, -np.float32(s), np.float32(0.5 * s)), rtol=1e-6)


@given(vectors, st.floats(-3, 3))
def test_affine_projections_match_reference(v, b):
    x = _flat(v)
    a = np.cos(np.arange(x.size) + 1.0)
    aj = jnp.asarray(a.astype(np.float32))
    xj = jnp.asarray(v)
    np.testing.assert_allclose(np.asarray(proj.projection_vector(xj, aj)),
                               a * (x @ a) / (a @ a), rtol=1e-4, atol=1e-4)
    plane = np.asarray(proj.projection_hyperplane(xj, aj, b))
    np.testing.assert_allclose(plane, x + (b - x @ a) / (a @ a) * a, rtol=1e-4, atol=1e-4)
    half = np.asarray(proj.projection_halfspace(xj, aj, b))
    expected = x if x @ a <= b else x + (b - x @ a) / (a @ a) * a
    np.testing.assert_allclose(half, expected, rtol=1e-4, atol=1e-4)


@given(vectors)
def test_projections_are_idempotent(v):
    x = jnp.asarray(v)
    for fn in (proj.projection_simplex, proj.projection_l1_ball, proj.projection_l2_ball,
               proj.projection_linf_ball, proj.projection_non_negative):
        once = fn(x)
        np.testing.assert_allclose(np.asarray(fn(once)), np.asarray(once), atol=1e-5)


def test_python_scalar_leaves_and_bounds_broadcast_over_a_tree():
    tree = (-1.0, {"k1": 2.0, "k2": (2.0, 3.0)}, 3.0)
    expected = (0.0, {"k1": 2.0, "k2": (2.0, 2.0)}, 2.0)
    _assert_trees_close(proj.projection_box(tree, 0.0, 2.0), expected)
    _assert_trees_close(proj.projection_non_negative(tree), (0.0, {"k1": 2.0,
                                                                  "k2": (2.0, 3.0)}, 3.0))
    _assert_trees_close(proj.projection_hypercube(tree, 2.0), expected)
    lower = (0.0, {"k1": 0.0, "k2": (0.0, 0.0)}, 0.0)
    upper = (2.0, {"k1": 2.0, "k2": (2.0, 2.0)}, 2.0)
    _assert_trees_close(proj.projection_box(tree, lower, upper), expected)


def test_simplex_edge_cases_and_dtypes():
    for s in (1.0, 0.8):
        np.testing.assert_allclose(
            np.asarray(proj.projection_simplex(jnp.asarray([0.0, 0.0, -jnp.inf]), s)),
            [s / 2, s / 2, 0.0])
    out = proj.projection_simplex(jnp.asarray([1, 2, 3]))
    assert out.dtype == jnp.float32 and out.tolist() == [0.0, 0.0, 1.0]
    out = proj.projection_simplex(jnp.asarray([0.2, 0.9], dtype=jnp.float64))
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(out), [0.15, 0.85], rtol=1e-12)
    # leaves of different dtypes come back in their own dtypes
    mixed = proj.projection_simplex({"a": jnp.asarray([0.5], jnp.float16),
                                     "b": jnp.asarray([0.7, 0.1])})
    assert mixed["a"].dtype == jnp.float16 and mixed["b"].dtype == jnp.float32
    assert proj.projection_l1_ball(jnp.asarray([1, 2, 3])).dtype == jnp.float32
    assert proj.projection_linf_ball(jnp.asarray([1, -2, 3])).tolist() == [1, -1, 1]


# --- projections: derivatives, jit, vmap --------------------------------------------------


def _simplex_jacobian(p):
    s = (np.asarray(p) > 0).astype(np.float64)
    return np.diag(s) - np.outer(s, s) / s.sum()


@given(hnp.arrays(np.float64, st.integers(1, 8), elements=st.floats(-3, 3)), scales)
def test_simplex_jacobian_is_the_support_formula(x, s):
    p = proj.projection_simplex(jnp.asarray(x), s)
    jac = _simplex_jacobian(p)
    np.testing.assert_allclose(np.asarray(nanofn.jacfwd(proj.projection_simplex)(
        jnp.asarray(x), s)), jac, atol=1e-12)
    np.testing.assert_allclose(np.asarray(nanofn.jacrev(proj.projection_simplex)(
        jnp.asarray(x), s)), jac, atol=1e-12)


X5 = jnp.asarray([0.2, 0.6, 0.1, 0.45, 0.3], dtype=jnp.float64)
TREE = {"v": jnp.asarray([0.5, 2.1, -3.5], dtype=jnp.float64),
        "m": jnp.asarray([[-1.0, -0.5, 0.25], [0.75, 1.2, 1.5]], dtype=jnp.float64)}
A = {"v": jnp.asarray([1.0, -2.0, 0.5], dtype=jnp.float64),
     "m": jnp.full((2, 3), 0.3, dtype=jnp.float64)}


@pytest.mark.parametrize("name, fn, args", [
    ("simplex", proj.projection_simplex, (X5,)),
    ("simplex_tree", proj.projection_simplex, (TREE, 2.0)),
    ("l1_sphere", proj.projection_l1_sphere, (TREE, 2.0)),
    ("l1_ball_out", proj.projection_l1_ball, (TREE, 2.0)),
    ("l1_ball_in", proj.projection_l1_ball, (TREE, 50.0)),
    ("l2_sphere", proj.projection_l2_sphere, (TREE, 3.0)),
    ("l2_ball_out", proj.projection_l2_ball, (TREE, 2.0)),
    ("l2_ball_in", proj.projection_l2_ball, (TREE, 20.0)),
    ("linf_ball", proj.projection_linf_ball, (TREE, 1.3)),
    ("box", lambda t: proj.projection_box(t, -1.1, 1.1), (TREE,)),
    ("vector", proj.projection_vector, (TREE, A)),
    ("hyperplane", proj.projection_hyperplane, (TREE, A, 1.5)),
    ("halfspace", proj.projection_halfspace, (TREE, A, -10.0)),
])
def test_projection_derivatives_match_finite_differences(name, fn, args):
    check_grads(fn, args, order=1, modes=("fwd", "rev"))


@pytest.mark.parametrize("fn, args", [
    (proj.projection_simplex, (X5,)),
    (proj.projection_l2_ball, (TREE, 2.0)),
    (proj.projection_l2_sphere, (TREE, 3.0)),
    (proj.projection_hyperplane, (TREE, A, 1.5)),
])
def test_second_derivatives_match_finite_differences(fn, args):
    check_grads(fn, args, order=2, modes=("fwd", "rev"))


def test_ball_gradients_at_zero_are_the_identity():
    assert float(nanofn.grad(proj.projection_l2_ball)(0.0)) == 1.0
    assert float(nanofn.grad(proj.projection_l1_ball)(0.0)) == 1.0


@given(hnp.arrays(np.float32, (3, 6), elements=st.floats(-4, 4, width=32)),
       hnp.arrays(np.float32, (3,), elements=st.floats(0.25, 3, width=32)))
def test_jit_and_vmap_agree_with_eager(batch, s):
    for fn in (proj.projection_simplex, proj.projection_l1_ball, proj.projection_l1_sphere,
               proj.projection_l2_ball, proj.projection_l2_sphere, proj.projection_linf_ball,
               proj.projection_hypercube):
        eager = np.stack([np.asarray(fn(jnp.asarray(b), float(c))) for b, c in zip(batch, s)])
        np.testing.assert_allclose(np.asarray(nanofn.vmap(fn)(jnp.asarray(batch),
                                                              jnp.asarray(s))),
                                   eager, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(nanofn.jit(fn)(jnp.asarray(batch[0]), s[0])),
                                   eager[0], rtol=1e-5, atol=1e-6)


def test_projection_errors_name_the_argument():
    x = {"a": jnp.ones(2), "b": jnp.ones(3)}
    with pytest.raises(ValueError, match="`lower`"):
        proj.projection_box(x, {"a": 0.0}, 1.0)
    with pytest.raises(ValueError, match="`upper`"):
        proj.projection_box(x, 0.0, [1.0, 2.0])
    with pytest.raises(ValueError, match="`a`"):
        proj.projection_vector(x, {"a": jnp.ones(2)})
    with pytest.raises(ValueError, match="`a`"):
        proj.projection_hyperplane(x, [jnp.ones(2), jnp.ones(3)], 1.0)
    with pytest.raises(ValueError, match="`a`"):
        proj.projection_halfspace(x, jnp.ones(5), 1.0)
    with pytest.raises(ValueError, match="projection_simplex.*`tree`"):
        proj.projection_simplex(jnp.zeros(0))
    with pytest.raises(ValueError, match="projection_simplex.*`tree`"):
        proj.projection_simplex({})


# --- second order --------------------------------------------------------------------------


PARAMS = {"w": jnp.asarray(np.linspace(-1, 1, 6).reshape(3, 2)),
          "b": jnp.asarray([0.1, -0.2], dtype=jnp.float64)}
INPUTS = jnp.asarray(np.linspace(0, 1, 12).reshape(4, 3))
TARGETS = jnp.asarray([0.0, 1.0, 0.5, -0.5])


def _mse(p, x, y):
    return jnp.mean((jnp.tanh(x @ p["w"] + p["b"]).sum(-1) - y) ** 2)


def _dense_hessian():
    flat, unravel = nanofn.flatten_util.ravel_pytree(PARAMS)
    h = nanofn.hessian(lambda f: _mse(unravel(f), INPUTS, TARGETS))(flat)
    return flat, unravel, np.asarray(h)


@pytest.fixture
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def test_hvp_and_hessian_diag_match_the_dense_hessian(quiet):
    flat, unravel, h = _dense_hessian()
    v = np.linspace(-1, 1, flat.size)
    out = so.hvp(_mse, jnp.asarray(v), PARAMS, INPUTS, TARGETS)
    assert tree_util.tree_structure(out) == tree_util.tree_structure(PARAMS)
    np.testing.assert_allclose(np.asarray(nanofn.flatten_util.ravel_pytree(out)[0]), h @ v,
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(so.hessian_diag(_mse, PARAMS, INPUTS, TARGETS)),
                               np.diag(h), rtol=1e-10, atol=1e-12)


def test_hessian_diag_matches_second_differences(quiet):
    flat, unravel = nanofn.flatten_util.ravel_pytree(PARAMS)
    f = np.asarray(flat)
    eps = 1e-4

    def loss(z):
        return float(_mse(unravel(jnp.asarray(z)), INPUTS, TARGETS))

    fd = []
    for k in range(f.size):
        e = np.zeros_like(f)
        e[k] = eps
        fd.append((loss(f + e) - 2 * loss(f) + loss(f - e)) / eps ** 2)
    np.testing.assert_allclose(np.asarray(so.hessian_diag(_mse, PARAMS, INPUTS, TARGETS)),
                               fd, rtol=1e-4, atol=1e-6)


def test_fisher_diag_is_the_squared_gradient(quiet):
    g = nanofn.grad(_mse)(PARAMS, INPUTS, TARGETS)
    np.testing.assert_allclose(np.asarray(so.fisher_diag(_mse, PARAMS, INPUTS, TARGETS)),
                               _flat(g) ** 2, rtol=1e-12)


def test_second_order_under_jit(quiet):
    jitted = nanofn.jit(so.hessian_diag, static_argnums=0)
    np.testing.assert_allclose(np.asarray(jitted(_mse, PARAMS, INPUTS, TARGETS)),
                               np.diag(_dense_hessian()[2]), rtol=1e-10, atol=1e-12)


def test_second_order_warns_deprecated_and_checks_arguments():
    with pytest.warns(DeprecationWarning, match="hvp"):
        so.hvp(_mse, jnp.zeros(8), PARAMS, INPUTS, TARGETS)
    with pytest.warns(DeprecationWarning, match="hessian_diag"):
        so.hessian_diag(_mse, PARAMS, INPUTS, TARGETS)
    with pytest.warns(DeprecationWarning, match="fisher_diag"):
        so.fisher_diag(_mse, PARAMS, INPUTS, TARGETS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ValueError, match="`v`.*\\(8,\\)"):
            so.hvp(_mse, jnp.zeros(7), PARAMS, INPUTS, TARGETS)
        with pytest.raises(TypeError, match="`loss`"):
            so.hessian_diag("mse", PARAMS, INPUTS, TARGETS)
        with pytest.raises(TypeError, match="`negative_log_likelihood`"):
            so.fisher_diag(None, PARAMS, INPUTS, TARGETS)


# --- assignment ----------------------------------------------------------------------------


SOLVERS = [asg.hungarian_algorithm, asg.base_hungarian_algorithm]

cost_matrices = st.one_of(
    # continuous costs: one optimum almost surely
    hnp.arrays(np.float64, st.tuples(st.integers(0, 7), st.integers(0, 7)),
               elements=st.floats(-10, 10, allow_subnormal=False)),
    # small integers: many tied optima
    hnp.arrays(np.int32, st.tuples(st.integers(0, 7), st.integers(0, 7)),
               elements=st.integers(0, 3)),
)


def _check_assignment(cost, i, j):
    n, m = cost.shape
    r = min(n, m)
    i, j = np.asarray(i), np.asarray(j)
    assert i.shape == j.shape == (r,)
    assert np.issubdtype(i.dtype, np.integer) and np.issubdtype(j.dtype, np.integer)
    assert len(set(i.tolist())) == r and len(set(j.tolist())) == r
    assert np.all((0 <= i) & (i < n)) and np.all((0 <= j) & (j < m))
    rs, cs = linear_sum_assignment(cost)
    tol = 1e-9 if cost.dtype != np.float32 else 1e-6
    c64 = cost.astype(np.float64)
    np.testing.assert_allclose(c64[i, j].sum(), c64[rs, cs].sum(), rtol=tol, atol=tol)
    return i, j


@settings(max_examples=40)
@given(cost_matrices)
def test_solvers_match_scipy_with_optax_order(cost):
    n, m = cost.shape
    i, j = _check_assignment(cost, *asg.hungarian_algorithm(jnp.asarray(cost)))
    if 0 < n == m:
        assert j.tolist() == list(range(n))
    elif 0 < n < m:
        assert np.all(np.diff(i) < 0)
    elif n > m > 0:
        assert np.all(np.diff(j) < 0)
    i, j = _check_assignment(cost, *asg.base_hungarian_algorithm(jnp.asarray(cost)))
    assert np.all(np.diff(i) > 0)
    if n <= m:
        assert i.tolist() == list(range(n))


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("shape", [(5, 5), (4, 7), (7, 4), (1, 3), (3, 1)])
def test_solvers_under_jit_and_vmap(solver, shape):
    rng = np.random.default_rng(sum(shape))
    batch = rng.normal(size=(3,) + shape).astype(np.float32)
    eager = [solver(jnp.asarray(c)) for c in batch]
    for c, (i, j) in zip(batch, eager):
        _check_assignment(c, i, j)
    ij = nanofn.jit(solver)(jnp.asarray(batch[0]))
    np.testing.assert_array_equal(np.asarray(ij[0]), np.asarray(eager[0][0]))
    np.testing.assert_array_equal(np.asarray(ij[1]), np.asarray(eager[0][1]))
    bi, bj = nanofn.vmap(solver)(jnp.asarray(batch))
    np.testing.assert_array_equal(np.asarray(bi), np.stack([np.asarray(e[0]) for e in eager]))
    np.testing.assert_array_equal(np.asarray(bj), np.stack([np.asarray(e[1]) for e in eager]))


@pytest.mark.parametrize("solver", SOLVERS)
def test_solvers_on_optaxs_docstring_examples(solver):
    cost = np.array([[8, 4, 7], [5, 2, 3], [9, 6, 7], [9, 4, 8]])
    i, j = _check_assignment(cost, *solver(jnp.asarray(cost)))
    assert cost[i, j].sum() == 15
    cost = np.array([[90, 80, 75, 70], [35, 85, 55, 65], [125, 95, 90, 95],
                     [45, 110, 95, 115], [50, 100, 90, 100]])
    i, j = _check_assignment(cost, *solver(jnp.asarray(cost)))
    assert cost[i, j].sum() == 265


@pytest.mark.parametrize("solver", SOLVERS)
def test_solvers_keep_float64_and_handle_empty(solver):
    # costs whose optimum differs from the runner-up by less than float32 resolves
    cost = np.array([[1e8, 1e8 + 1], [1e8 + 1, 1e8 + 3]])
    i, j = solver(jnp.asarray(cost))
    assert sorted(zip(np.asarray(i).tolist(), np.asarray(j).tolist())) == [(0, 1), (1, 0)]
    for shape in [(0, 0), (0, 4), (4, 0)]:
        i, j = solver(jnp.zeros(shape))
        assert i.shape == j.shape == (0,) and i.dtype == jnp.int32


@pytest.mark.parametrize("solver", SOLVERS)
def test_solver_errors_name_the_argument(solver):
    with pytest.raises(ValueError, match="`cost_matrix`.*2-d"):
        solver(jnp.ones(3))
    with pytest.raises(ValueError, match="`cost_matrix`.*2-d"):
        solver(jnp.ones((2, 2, 2)))
    with pytest.raises(TypeError, match="`cost_matrix`.*real"):
        solver(jnp.ones((2, 2), dtype=jnp.complex64))


# --- perturbations -------------------------------------------------------------------------


def _one_hot_argmax(x):
    return nanofn.nn.one_hot(jnp.argmax(x), x.shape[0])


KEY = nanofn.random.PRNGKey(7)


@pytest.mark.parametrize("sigma", [0.5, 1.0])
def test_gumbel_perturbed_argmax_is_softmax(sigma):
    # Gumbel-max: E[one_hot(argmax(x + sigma z))] = softmax(x / sigma) exactly, so the
    # estimate and its Jacobian are unbiased estimates of softmax's; with 20000 draws
    # their standard errors are below 0.01.
    x = jnp.asarray([0.3, -0.2, 0.5, 0.1])
    fn = pert.make_perturbed_fun(_one_hot_argmax, 20000, sigma)
    np.testing.assert_allclose(np.asarray(fn(KEY, x)),
                               np.asarray(nanofn.nn.softmax(x / sigma)), atol=0.03)
    jac = nanofn.jacobian(fn, argnums=1)(KEY, x)
    expected = nanofn.jacobian(lambda v: nanofn.nn.softmax(v / sigma))(x)
    np.testing.assert_allclose(np.asarray(jac), np.asarray(expected), atol=0.05)
    np.testing.assert_allclose(np.asarray(nanofn.jit(fn)(KEY, x)), np.asarray(fn(KEY, x)),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("noise", [pert.Gumbel(), pert.Normal()], ids=["gumbel", "normal"])
def test_perturbed_linear_and_quadratic_maps(noise):
    amat = jnp.asarray([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]])
    x = jnp.asarray([0.3, -0.2])
    lin = pert.make_perturbed_fun(lambda v: amat @ v, 20000, 0.5, noise)
    # the Jacobian estimate is unbiased for A whatever the noise's mean
    np.testing.assert_allclose(np.asarray(nanofn.jacobian(lin, argnums=1)(KEY, x)),
                               np.asarray(amat), atol=0.1)
    quad = pert.make_perturbed_fun(lambda v: 0.5 * jnp.sum(v ** 2), 50000, 0.5, noise)
    np.testing.assert_allclose(np.asarray(nanofn.hessian(quad, argnums=1)(KEY, jnp.zeros(2))),
                               np.eye(2), atol=0.1)


def test_perturbed_value_uses_one_key_per_sample_and_leaf():
    # with f the identity, the estimate is x + sigma * mean(noise): rebuild the draws from
    # nanofn.random with the same key-splitting and compare
    x = {"a": jnp.asarray([0.5, -1.0]), "b": jnp.asarray(2.0)}
    n, sigma = 64, 0.3
    est = pert.make_perturbed_fun(lambda t: t, n, sigma, pert.Normal())(KEY, x)
    keys = nanofn.random.split(KEY, n)
    draws = {"a": [], "b": []}
    for k in keys:
        ka, kb = nanofn.random.split(k, 2)
        draws["a"].append(np.asarray(nanofn.random.normal(ka, (2,))))
        draws["b"].append(np.asarray(nanofn.random.normal(kb, ())))
    for name in ("a", "b"):
        expected = np.mean(np.asarray(x[name]) + sigma * np.stack(draws[name]), axis=0)
        np.testing.assert_allclose(np.asarray(est[name]), expected, rtol=1e-5, atol=1e-6)


def test_fun_need_not_be_differentiable_and_baseline_is_optional():
    x = jnp.asarray([0.2, 1.4])
    step = lambda v: jnp.sum(jnp.floor(v))  # noqa: E731 (zero derivative everywhere)
    for use_baseline in (True, False):
        fn = pert.make_perturbed_fun(step, 20000, 0.5, pert.Normal(), use_baseline)
        g = np.asarray(nanofn.grad(fn, argnums=1)(KEY, x))
        # d/dx E[floor(x + sigma z)] = density of the nearby integers' crossing, about
        # sum_k phi((k - x) / sigma) / sigma per coordinate
        ks = np.arange(-5, 7)
        expected = [np.sum(np.exp(-0.5 * ((ks - xi) / 0.5) ** 2) / math.sqrt(2 * math.pi)
                           / 0.5) for xi in np.asarray(x)]
        np.testing.assert_allclose(g, expected, atol=0.15 if use_baseline else 0.3)


def test_perturbed_gradient_of_nonflat_input():
    fn = pert.make_perturbed_fun(lambda v: v[0, 0], 10)
    g = nanofn.grad(fn, argnums=1)(KEY, jnp.ones((1, 2)))
    assert g.shape == (1, 2) and np.all(np.isfinite(np.asarray(g)))


def test_fun_custom_derivative_is_never_called():
    @nanofn.custom_jvp
    def f(v):
        return v

    @f.defjvp
    def _rule(primals, tangents):
        raise AssertionError("the perturbed function differentiated fun")

    nanofn.grad(pert.make_perturbed_fun(f, 10), argnums=1)(KEY, jnp.asarray(0.0))


def test_noise_samplers():
    for noise, mean, var in [(pert.Normal(), 0.0, 1.0),
                             (pert.Gumbel(), 0.5772156649, math.pi ** 2 / 6)]:
        z = np.asarray(noise.sample(KEY, (200000,)))
        assert z.dtype == np.float32
        assert abs(z.mean() - mean) < 0.02 and abs(z.var() - var) < 0.03
        assert noise.sample(KEY, (2,), jnp.float64).dtype == jnp.float64
        assert noise.sample(KEY).shape == ()
    np.testing.assert_allclose(np.asarray(pert.Normal().log_prob(jnp.asarray([0.0, 2.0]))),
                               [0.0, -2.0])
    np.testing.assert_allclose(np.asarray(pert.Gumbel().log_prob(jnp.asarray([0.0, 1.0]))),
                               [-1.0, -1.0 - math.exp(-1.0)], rtol=1e-6)


def test_make_perturbed_fun_errors_name_the_argument():
    f = lambda v: v  # noqa: E731
    with pytest.raises(TypeError, match="`fun`"):
        pert.make_perturbed_fun(3)
    with pytest.raises(ValueError, match="`num_samples`"):
        pert.make_perturbed_fun(f, 0)
    with pytest.raises(TypeError, match="`num_samples`"):
        pert.make_perturbed_fun(f, 2.5)
    with pytest.raises(TypeError, match="`num_samples`"):
        pert.make_perturbed_fun(f, True)
    with pytest.raises(ValueError, match="`sigma`"):
        pert.make_perturbed_fun(f, 10, 0.0)
    with pytest.raises(TypeError, match="`noise`"):
        pert.make_perturbed_fun(f, 10, 0.1, noise="gumbel")
