"""Port: optax's projections, second_order, assignment and perturbations sub-packages
(`optax/projections/_projections_test.py`, `optax/second_order/_deprecated.py`,
`optax/assignment/_hungarian_algorithm_test.py`, `optax/perturbations/_make_pert_test.py`,
google-deepmind/optax repository).

One program, written against optax's names (`optax.projections.projection_simplex`, ...):

- every projection on a pytree with a vector and a matrix leaf (and on arrays), with the
  default and other `scale`s, inside and outside the balls; the simplex projection's
  Jacobian (forward and reverse), gradients of losses through the projections (at zero
  too), and the projections under `jit` and `vmap`;
- the Hessian-vector product, Hessian diagonal and Fisher diagonal of a small tanh model;
- both Hungarian algorithms on optax's docstring matrices, their transposes, random
  matrices of several shapes (empty ones too), matrices with many tied optima (so the
  tie-breaking is compared, not only the cost), under `jit` and `vmap`;
- perturbed one-hot argmax and perturbed linear maps with Gumbel and normal noise, their
  values, gradients and Jacobians for a fixed key, with and without the baseline, under
  `jit`; and the noise samplers' draws and log-densities.

The noise draws of nanofn.random agree with JAX's to a few float32 ulps (its normal
sampler to about 5e-6 relative), so the perturbation results are compared with a
slightly looser tolerance than the rest.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    proj = optax.projections
    tree = {"v": jnp.asarray([0.5, 2.1, -3.5]),
            "m": jnp.asarray(np.linspace(-1.0, 1.5, 6, dtype=np.float32).reshape(2, 3))}
    arr = jnp.asarray([0.3, -1.2, 2.5, 0.7, 0.71])
    out = {}

    # --- projections: values -------------------------------------------------------------
    lower = {"v": jnp.asarray([-1.0, 0.0, -4.0]), "m": jnp.full((2, 3), -0.5)}
    upper = {"v": jnp.asarray([0.0, 1.0, 4.0]), "m": jnp.full((2, 3), 0.25)}
    out["non_negative"] = proj.projection_non_negative(tree)
    out["box_tree"] = proj.projection_box(tree, lower, upper)
    out["box_scalar"] = proj.projection_box(arr, 0.0, 1.0)
    out["hypercube"] = proj.projection_hypercube(arr)
    out["hypercube_08"] = proj.projection_hypercube(arr, 0.8)
    out["hypercube_arr"] = proj.projection_hypercube(arr, jnp.linspace(0.1, 1.0, 5))
    out["simplex"] = proj.projection_simplex(tree)
    out["simplex_25"] = proj.projection_simplex(tree, 2.5)
    out["simplex_arr"] = proj.projection_simplex(arr, 0.8)
    out["simplex_int"] = proj.projection_simplex(jnp.asarray([1, 2, 3]))
    out["simplex_edge"] = proj.projection_simplex(jnp.asarray([0.0, 0.0, -jnp.inf]))
    out["l1_sphere"] = proj.projection_l1_sphere(tree)
    out["l1_sphere_321"] = proj.projection_l1_sphere(tree, 3.21)
    out["l1_ball_out"] = proj.projection_l1_ball(tree, 2.0)
    out["l1_ball_in"] = proj.projection_l1_ball(tree, 50.0)
    out["l2_sphere"] = proj.projection_l2_sphere(tree)
    out["l2_sphere_3"] = proj.projection_l2_sphere(tree, 3.0)
    out["l2_ball_out"] = proj.projection_l2_ball(tree)
    out["l2_ball_in"] = proj.projection_l2_ball(tree, 10.0)
    out["linf_ball"] = proj.projection_linf_ball(tree)
    out["linf_ball_05"] = proj.projection_linf_ball(tree, 0.5)
    a = {"v": jnp.asarray([1.0, -2.0, 0.5]), "m": jnp.ones((2, 3)) * 0.3}
    out["vector"] = proj.projection_vector(tree, a)
    out["hyperplane"] = proj.projection_hyperplane(tree, a, 1.5)
    out["halfspace_out"] = proj.projection_halfspace(tree, a, -10.0)
    out["halfspace_in"] = proj.projection_halfspace(tree, a, 10.0)

    # --- projections: derivatives, jit, vmap ---------------------------------------------
    x5 = jnp.asarray([0.2, 0.6, 0.1, 0.45, 0.3])
    out["simplex_jacfwd"] = jax.jacfwd(proj.projection_simplex)(x5)
    out["simplex_jacrev"] = jax.jacrev(proj.projection_simplex)(x5)
    out["simplex_jvp_tree"] = jax.jvp(lambda t: proj.projection_simplex(t, 1.5), (tree,),
                                      (a,))[1]
    weights = {"v": jnp.asarray([1.0, -0.5, 2.0]),
               "m": jnp.asarray(np.linspace(0.5, -0.5, 6, dtype=np.float32).reshape(2, 3))}

    def weighted(p):
        return sum(jnp.sum(w * jnp.sin(q)) for w, q in
                   zip(jax.tree_util.tree_leaves(weights), jax.tree_util.tree_leaves(p)))

    for name, fn in [("simplex", lambda t: proj.projection_simplex(t, 2.0)),
                     ("l1_sphere", lambda t: proj.projection_l1_sphere(t, 2.0)),
                     ("l1_ball", lambda t: proj.projection_l1_ball(t, 2.0)),
                     ("l2_sphere", proj.projection_l2_sphere),
                     ("l2_ball", proj.projection_l2_ball),
                     ("linf_ball", proj.projection_linf_ball),
                     ("box", lambda t: proj.projection_box(t, lower, upper)),
                     ("hyperplane", lambda t: proj.projection_hyperplane(t, a, 1.5)),
                     ("halfspace", lambda t: proj.projection_halfspace(t, a, -10.0))]:
        out[f"grad_{name}"] = jax.grad(lambda t: weighted(fn(t)))(tree)
    out["grad_l2_ball_zero"] = jax.grad(proj.projection_l2_ball)(0.0)
    out["grad_l1_ball_zero"] = jax.grad(proj.projection_l1_ball)(0.0)
    out["grad_l1_ball_inside"] = jax.grad(lambda t: weighted(proj.projection_l1_ball(t, 50.0)))(
        tree)
    out["jit_simplex"] = jax.jit(proj.projection_simplex)(tree, 0.7)
    out["jit_l1_ball"] = jax.jit(proj.projection_l1_ball)(tree, 3.0)
    out["jit_l2_ball"] = jax.jit(proj.projection_l2_ball)(tree, 2.0)
    batch = jnp.asarray(np.random.RandomState(0).randn(3, 6).astype(np.float32))
    scales = jnp.asarray([1.0, 0.8, 2.5])
    out["vmap_simplex"] = jax.vmap(proj.projection_simplex)(batch, scales)
    out["vmap_l1_ball"] = jax.vmap(proj.projection_l1_ball)(batch, scales)
    out["vmap_l2_sphere"] = jax.vmap(proj.projection_l2_sphere)(batch, scales)
    out["vmap_linf_ball"] = jax.vmap(proj.projection_linf_ball)(batch, scales)
    out["vmap_jac_simplex"] = jax.vmap(jax.jacfwd(proj.projection_simplex))(batch)

    # --- second order ----------------------------------------------------------------------
    so = optax.second_order
    params = {"w": jnp.asarray(np.linspace(-1.0, 1.0, 6, dtype=np.float32).reshape(3, 2)),
              "b": jnp.asarray([0.1, -0.2])}
    inputs = jnp.asarray(np.linspace(0.0, 1.0, 12, dtype=np.float32).reshape(4, 3))
    targets = jnp.asarray([0.0, 1.0, 0.5, -0.5])

    def mse(p, x, y):
        return jnp.mean((jnp.tanh(x @ p["w"] + p["b"]).sum(-1) - y) ** 2)

    def nll(p, x, y):
        logits = x @ p["w"] + p["b"]
        labels = (y > 0.2).astype(jnp.int32)
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(4), labels])

    out["hvp"] = so.hvp(mse, jnp.linspace(-1.0, 1.0, 8), params, inputs, targets)
    out["hessian_diag"] = so.hessian_diag(mse, params, inputs, targets)
    out["fisher_diag"] = so.fisher_diag(nll, params, inputs, targets)

    # --- assignment ------------------------------------------------------------------------
    asg = optax.assignment
    rng = np.random.RandomState(1)
    doc1 = jnp.asarray([[8, 4, 7], [5, 2, 3], [9, 6, 7], [9, 4, 8]])
    doc2 = jnp.asarray([[90, 80, 75, 70], [35, 85, 55, 65], [125, 95, 90, 95],
                        [45, 110, 95, 115], [50, 100, 90, 100]])
    matrices = {
        "doc1": doc1, "doc1_T": doc1.T, "doc1_sq": doc1[:3], "doc2": doc2, "doc2_T": doc2.T,
        "ties_ones": jnp.ones((4, 4)),
        "ties_mod": jnp.asarray(np.arange(30).reshape(5, 6) % 3, dtype=jnp.float32),
        "ties_mod_T": jnp.asarray(np.arange(30).reshape(6, 5) % 4, dtype=jnp.float32),
        "ints": jnp.asarray(rng.randint(0, 4, size=(6, 6))),
    }
    for shape in [(1, 1), (1, 4), (4, 1), (6, 6), (5, 8), (8, 5), (12, 12)]:
        matrices[f"rand_{shape[0]}x{shape[1]}"] = jnp.asarray(
            rng.randn(*shape).astype(np.float32))
    matrices["empty_0x3"] = jnp.zeros((0, 3))
    matrices["empty_3x0"] = jnp.zeros((3, 0))
    for fname in ["hungarian_algorithm", "base_hungarian_algorithm"]:
        fn = getattr(asg, fname)
        for mname, cost in matrices.items():
            i, j = fn(cost)
            out[f"{fname}/{mname}/i"] = i
            out[f"{fname}/{mname}/j"] = j
            out[f"{fname}/{mname}/cost"] = jnp.sum(cost[i, j]) if i.shape[0] else 0.0
        i, j = jax.jit(fn)(matrices["rand_5x8"])
        out[f"{fname}/jit_5x8"] = (i, j)
        i, j = jax.jit(fn)(matrices["rand_8x5"])
        out[f"{fname}/jit_8x5"] = (i, j)
        out[f"{fname}/vmap_wide"] = jax.vmap(fn)(
            jnp.asarray(rng.randn(3, 4, 5).astype(np.float32)))
        out[f"{fname}/vmap_tall"] = jax.vmap(fn)(
            jnp.asarray(rng.randn(3, 5, 4).astype(np.float32)))

    # --- perturbations ---------------------------------------------------------------------
    pert = optax.perturbations
    key = jax.random.PRNGKey(0)

    def one_hot_argmax(x):
        flat = jnp.reshape(x, (-1,))
        return jnp.reshape(jax.nn.one_hot(jnp.argmax(flat), flat.shape[0]), x.shape)

    def argmax_tree(t):
        return jax.tree_util.tree_map(one_hot_argmax, t)

    xt = {"a": jnp.asarray([0.3, 0.1, 0.5]), "b": jnp.asarray([[0.2, 0.25], [0.0, -0.1]])}

    def smooth_loss(fn):
        def loss(k, t):
            leaves = jax.tree_util.tree_leaves(fn(k, t))
            return sum(jnp.sum(leaf ** 2 + jnp.cos(leaf)) for leaf in leaves)
        return loss

    for name, noise in [("gumbel", pert.Gumbel()), ("normal", pert.Normal())]:
        for sigma in [0.5, 1.0]:
            fn = pert.make_perturbed_fun(argmax_tree, 300, sigma, noise)
            tag = f"pert/{name}_{sigma}"
            out[f"{tag}/value"] = fn(key, xt)
            out[f"{tag}/jit"] = jax.jit(fn)(key, xt)
            out[f"{tag}/grad"] = jax.grad(smooth_loss(fn), argnums=1)(key, xt)
        fn = pert.make_perturbed_fun(argmax_tree, 300, 0.5, noise, use_baseline=False)
        out[f"pert/{name}_nobaseline/value"] = fn(key, xt)
        out[f"pert/{name}_nobaseline/grad"] = jax.grad(smooth_loss(fn), argnums=1)(key, xt)
        amat = jnp.asarray([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]])
        lin = pert.make_perturbed_fun(lambda v: amat @ v + 1.0, 500, 0.5, noise)
        out[f"pert/{name}_linear/value"] = lin(key, jnp.asarray([0.3, -0.2]))
        out[f"pert/{name}_linear/jac"] = jax.jacobian(lin, argnums=1)(
            key, jnp.asarray([0.3, -0.2]))
        quad = pert.make_perturbed_fun(lambda v: 0.5 * jnp.sum(v ** 2), 500, 0.5, noise)
        out[f"pert/{name}_quad/hessian"] = jax.hessian(quad, argnums=1)(key, jnp.zeros(2))
        out[f"pert/{name}_default"] = pert.make_perturbed_fun(argmax_tree, noise=noise)(
            key, xt)
        out[f"pert/{name}_sample"] = noise.sample(key, (4, 3))
        out[f"pert/{name}_log_prob"] = noise.log_prob(jnp.linspace(-2.0, 2.0, 5))
    out["pert/default_noise"] = pert.make_perturbed_fun(argmax_tree, 50)(key, xt)
    return out


def test_optax_submodules_match_optax():
    got, _ = check_against_optax("test_optax_submodules", program, rtol=2e-4, atol=2e-5,
                                 overrides={"pert/": (5e-4, 5e-5)})
    # sanity on top of the comparison: the projections land in their sets
    assert abs(float(got["simplex/m"].sum() + got["simplex/v"].sum()) - 1.0) < 1e-5
    assert np.all(got["simplex_arr"] >= 0)
    l1 = sum(np.abs(got[f"l1_ball_out/{k}"]).sum() for k in ("v", "m"))
    assert abs(l1 - 2.0) < 1e-5
    # every assignment is as cheap as scipy's (checked against optax's pairs above)
    from scipy.optimize import linear_sum_assignment
    for key in got:
        if key.startswith("hungarian_algorithm/") and key.endswith("/cost"):
            name = key.split("/")[1]
            base = got[f"base_hungarian_algorithm/{name}/cost"]
            np.testing.assert_allclose(got[key], base, rtol=1e-6, atol=1e-5)
    cost = np.asarray([[8, 4, 7], [5, 2, 3], [9, 6, 7], [9, 4, 8]])
    r, c = linear_sum_assignment(cost)
    assert got["hungarian_algorithm/doc1/cost"] == cost[r, c].sum() == 15
