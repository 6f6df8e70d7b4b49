"""Port: sorting, ranking and their differentiable relaxations, in the style of the
learning-to-rank and soft-sort snippets written with JAX (pairwise-sigmoid soft ranks,
NeuralSort-style soft permutation matrices, quantile losses through `jnp.sort`).

* Hard ops: `jnp.sort`/`jnp.argsort` (stable and descending, with ties and NaN),
  `lax.sort` with several operands and `num_keys`, `lax.sort_key_val`, `jnp.lexsort`,
  `jnp.searchsorted` (both sides, the sorter-free binning of values into quantile edges),
  and ranks from the inverse permutation.
* Soft ranks: `r_i = 1 + sum_j sigmoid((x_i - x_j) / tau)` minus the self term; as tau
  shrinks they approach the hard ranks.
* NeuralSort: the soft permutation matrix `softmax(((n + 1 - 2i) x - A 1) / tau)`, whose
  product with x approximates `sort(x)` descending.
* Gradients: of a trimmed-mean / quantile loss through `jnp.sort` (which routes the
  cotangent back through the permutation), of a Spearman-like loss through soft ranks,
  and a small ranking model trained with it, under `jit` and `vmap`.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax):
    key = jax.random.key(8)
    k_x, k_w, k_feat, k_rel = jax.random.split(key, 4)
    x = jnp.array([0.3, -1.2, 2.5, 0.3, 1.1, -0.4, 2.5, 0.0])
    out = {}

    # ----- hard sorting.
    out["sort"] = jnp.sort(x)
    out["sort_desc"] = jnp.sort(x, descending=True)
    out["argsort_stable"] = jnp.argsort(x, stable=True)
    out["argsort_desc_stable"] = jnp.argsort(x, stable=True, descending=True)
    with_nan = x.at[2].set(jnp.nan)
    out["sort_nan"] = jnp.sort(with_nan)
    out["argsort_nan"] = jnp.argsort(with_nan)
    inv = jnp.argsort(jnp.argsort(x, stable=True), stable=True)
    out["ranks"] = inv + 1

    groups = jnp.array([1, 0, 1, 0, 1, 0, 0, 1], dtype=jnp.int32)
    ids = jnp.arange(8, dtype=jnp.int32)
    # Sort by group, then by value; carry the ids along.
    g_sorted, v_sorted, id_sorted = lax.sort((groups, x, ids), num_keys=2)
    out["lax_sort_2keys"] = {"groups": g_sorted, "values": v_sorted, "ids": id_sorted}
    g1, v1, id1 = lax.sort((groups, x, ids), num_keys=1, is_stable=True)
    out["lax_sort_1key"] = {"groups": g1, "values": v1, "ids": id1}
    out["sort_key_val"] = lax.sort_key_val(x, ids)
    out["lexsort"] = jnp.lexsort((x, groups))
    mat = jnp.array([[3.0, 1.0, 2.0], [0.5, -1.0, 4.0]])
    out["lax_sort_dim0"] = lax.sort(mat, dimension=0)
    out["sort_axis0"] = jnp.sort(mat, axis=0)
    out["sort_none"] = jnp.sort(mat, axis=None)

    edges = jnp.quantile(x, jnp.array([0.25, 0.5, 0.75]))
    out["quantile_edges"] = edges
    out["bins_left"] = jnp.searchsorted(edges, x)
    out["bins_right"] = jnp.searchsorted(edges, x, side="right")
    sorted_x = jnp.sort(x)
    out["search_sorted_self"] = jnp.searchsorted(sorted_x, jnp.array([-2.0, 0.3, 2.5, 9.0]),
                                                 side="left")
    out["search_method_compare"] = jnp.searchsorted(sorted_x, jnp.array([0.3, 2.5]),
                                                    side="right", method="compare_all")
    out["digitize"] = jnp.digitize(x, edges)

    # ----- soft ranks and NeuralSort.
    def soft_rank(v, tau):
        diff = (v[:, None] - v[None, :]) / tau
        return 0.5 + jnp.sum(jax.nn.sigmoid(diff), axis=1)   # the self term adds 0.5

    def neural_sort(v, tau):
        n = v.shape[0]
        a = jnp.abs(v[:, None] - v[None, :])
        b = a @ jnp.ones(n)
        scaling = n + 1 - 2 * (jnp.arange(n) + 1)
        p_max = (v[None, :] * scaling[:, None] - b[None, :]) / tau
        return jax.nn.softmax(p_max, axis=-1)

    distinct = jax.random.normal(k_x, (7,))
    out["soft_rank_warm"] = soft_rank(distinct, 1.0)
    out["soft_rank_cold"] = soft_rank(distinct, 1e-3)
    out["hard_rank"] = jnp.argsort(jnp.argsort(distinct)) + 1
    perm = neural_sort(distinct, 0.05)
    out["neural_sort_perm"] = perm
    out["neural_sorted"] = perm @ distinct
    out["soft_rank_jac"] = jax.jacfwd(soft_rank)(distinct, 0.5)

    # ----- gradients through jnp.sort.
    def trimmed_mean(v, trim=2):
        s = jnp.sort(v)
        return jnp.mean(s[trim:-trim])

    def quantile_loss(v, q=0.7):
        return jnp.quantile(v, q) ** 2

    out["grad_trimmed_mean"] = jax.grad(trimmed_mean)(distinct)
    out["grad_quantile"] = jax.grad(quantile_loss)(distinct)
    out["grad_sort_weighted"] = jax.grad(
        lambda v: jnp.sum(jnp.sort(v) * jnp.arange(7.0)))(distinct)
    out["grad_sort_desc"] = jax.grad(
        lambda v: jnp.sum(jnp.sort(v, descending=True)[:3] ** 2))(distinct)
    out["grad_lax_sort_val"] = jax.grad(
        lambda v: jnp.sum(lax.sort((jnp.arange(7, 0, -1), v), num_keys=1)[1]
                          * jnp.arange(7.0)))(distinct)
    out["jvp_sort"] = jax.jvp(jnp.sort, (distinct,), (jnp.arange(7.0),))

    # ----- learning to rank with soft ranks: a linear scorer per query.
    feats = jax.random.normal(k_feat, (4, 6, 3))             # (queries, docs, features)
    true_w = jnp.array([1.0, -0.5, 0.25])
    relevance = feats @ true_w + 0.1 * jax.random.normal(k_rel, (4, 6))

    def spearman_loss(w, f, rel, tau=0.1):
        scores = f @ w
        r_pred = soft_rank(scores, tau)
        r_true = soft_rank(rel, 1e-3)
        r_pred = r_pred - r_pred.mean()
        r_true = r_true - r_true.mean()
        return 1.0 - jnp.sum(r_pred * r_true) / jnp.sqrt(
            jnp.sum(r_pred ** 2) * jnp.sum(r_true ** 2))

    batched_loss = lambda w: jnp.mean(  # noqa: E731
        jax.vmap(spearman_loss, in_axes=(None, 0, 0))(w, feats, relevance))
    step = jax.jit(lambda w: w - 0.5 * jax.grad(batched_loss)(w))
    w = jnp.array([0.1, 0.1, 0.1])
    losses = []
    for _ in range(6):
        losses.append(batched_loss(w))
        w = step(w)
    out["ltr_losses"] = jnp.stack(losses)
    out["ltr_w"] = w
    out["ltr_hard_ranks"] = jax.vmap(lambda s: jnp.argsort(jnp.argsort(-s)))(feats @ w)
    return out


def test_soft_sort_matches_jax():
    got, _ = check_against_jax("test_jax_seq_soft_sort", program, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(got["soft_rank_cold"], got["hard_rank"], atol=1e-3)
    np.testing.assert_allclose(got["neural_sorted"], np.sort(got["neural_sorted"])[::-1],
                               atol=1e-6)
    # Gradients through sort scatter back to the sorted positions.
    np.testing.assert_allclose(np.sort(got["grad_sort_weighted"]), np.arange(7.0))
    assert got["ltr_losses"][-1] < got["ltr_losses"][0]
