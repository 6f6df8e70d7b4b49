"""Port: k-nearest-neighbour classification and rank-based statistics in JAX, built on
`lax.top_k`, sorting and `searchsorted` (the pattern of retrieval and evaluation code
users write around embeddings).

1. kNN: pairwise squared distances by the `|a|² - 2ab + |b|²` expansion, the k nearest
   training points per query by `lax.top_k` of the negated distances, a distance-weighted
   vote by `jax.nn.one_hot` (and an unweighted one by `jnp.bincount(length=)` under
   `vmap`), and leave-one-out accuracy for several k.
2. Ranking metrics: recall@k and mean reciprocal rank from `jnp.argsort` (stable,
   descending) of query-item scores; an ROC AUC from `jnp.argsort` ranks of scores.
3. Empirical CDFs and quantiles: `jnp.searchsorted` (both sides) into `jnp.sort`ed
   samples, `jnp.quantile`/`jnp.percentile`, `lax.sort` with two operands (`num_keys=1`)
   to carry labels along, `jnp.unique(size=, fill_value=)` with counts.
4. A differentiable top-k: the gradient of the sum of the k largest entries (`top_k`
   values) and of a softmax-weighted k-NN regression (`jax.grad` through `top_k`).
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp):
    lax = jax.lax
    rs = np.random.RandomState(31)
    centers = np.array([[0.0, 0.0], [3.0, 0.5], [1.0, 3.0]], np.float32)
    train_y = rs.randint(0, 3, size=45)
    train_x = jnp.asarray(centers[train_y] + 0.8 * rs.normal(size=(45, 2)), jnp.float32)
    train_y = jnp.asarray(train_y)
    query = jnp.asarray(rs.uniform(-1, 4, size=(10, 2)), jnp.float32)

    def sqdist(a, b):
        return (jnp.sum(a ** 2, 1)[:, None] - 2 * a @ b.T + jnp.sum(b ** 2, 1)[None, :])

    def knn_predict(q, k):
        d = sqdist(q, train_x)
        neg, idx = lax.top_k(-d, k)
        w = 1.0 / (jnp.sqrt(jnp.maximum(-neg, 0.0)) + 1e-3)
        votes = jnp.sum(w[..., None] * jax.nn.one_hot(train_y[idx], 3), axis=1)
        counts = jax.vmap(lambda i: jnp.bincount(train_y[i], length=3))(idx)
        return jnp.argmax(votes, -1), votes / jnp.sum(votes, -1, keepdims=True), counts, idx

    pred, probs, counts, idx = knn_predict(query, 5)

    def loo_accuracy(k):
        d = sqdist(train_x, train_x) + jnp.diag(jnp.full(45, jnp.inf))
        _, nn = lax.top_k(-d, k)
        vote = jnp.argmax(jnp.sum(jax.nn.one_hot(train_y[nn], 3), axis=1), -1)
        return jnp.mean(vote == train_y)

    loo = jnp.stack([loo_accuracy(k) for k in (1, 3, 7)])

    scores = jnp.asarray(rs.normal(size=(6, 20)), jnp.float32)
    relevant = jnp.asarray(rs.randint(0, 20, size=6))
    scores = scores.at[jnp.arange(6), relevant].add(jnp.linspace(0.0, 2.5, 6))
    order = jnp.argsort(-scores, axis=1, stable=True)
    rank = jnp.argmax(order == relevant[:, None], axis=1) + 1
    recall_at_3 = jnp.mean(rank <= 3)
    mrr = jnp.mean(1.0 / rank)

    labels = jnp.asarray(rs.randint(0, 2, size=30))
    raw = jnp.asarray(rs.normal(size=30), jnp.float32) + 0.8 * labels
    ranks = jnp.argsort(jnp.argsort(raw)) + 1
    n_pos = jnp.sum(labels)
    auc = (jnp.sum(jnp.where(labels == 1, ranks, 0)) - n_pos * (n_pos + 1) / 2) / (
        n_pos * (30 - n_pos))

    samples = jnp.sort(raw)
    grid = jnp.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    ecdf_right = jnp.searchsorted(samples, grid, side="right") / 30.0
    ecdf_left = jnp.searchsorted(samples, grid, side="left") / 30.0
    sorted_scores, sorted_labels = lax.sort((raw, labels), num_keys=1)
    uniq, uniq_counts = jnp.unique(train_y[:12], size=4, fill_value=-1, return_counts=True)

    topk_sum_grad = jax.grad(lambda v: jnp.sum(lax.top_k(v, 3)[0]))(raw[:10])
    target = jnp.asarray(rs.normal(size=45), jnp.float32)

    def soft_knn(q, temperature):
        neg, i = lax.top_k(-sqdist(q[None], train_x)[0], 6)
        return jnp.sum(jax.nn.softmax(neg / temperature) * target[i])

    soft_grad = jax.vmap(jax.grad(soft_knn, argnums=(0, 1)), (0, None))(query, 0.5)
    return {"pred": pred, "probs": probs, "counts": counts, "idx": idx, "loo": loo,
            "rank": rank, "recall_at_3": recall_at_3, "mrr": mrr, "auc": auc,
            "ecdf_right": ecdf_right, "ecdf_left": ecdf_left,
            "quantiles": jnp.quantile(raw, jnp.array([0.1, 0.5, 0.9])),
            "percentile": jnp.percentile(raw, 75.0, method="nearest"),
            "sorted_scores": sorted_scores, "sorted_labels": sorted_labels,
            "uniq": uniq, "uniq_counts": uniq_counts, "topk_sum_grad": topk_sum_grad,
            "soft_grad": soft_grad}


def test_knn_ranking_matches_jax():
    got, _ = check_against_jax("test_jax_knn_ranking", program, rtol=2e-3, atol=2e-4)
    assert got["loo"][1] > 0.7
