"""Port: k-means++ with Lloyd iterations, PCA/whitening and spectral clustering, in the
style of the clustering code users write with JAX (scikit-learn's algorithms re-expressed
in jax.numpy).

k-means++ picks the first centre with `jax.random.choice` and each next one with
`jax.random.choice(..., p=d2 / d2.sum())` (one restart uses `jax.random.categorical` on
the log-weights instead); seeding runs in a `lax.fori_loop` that writes centres with
`.at[].set`. Lloyd's iterations run in a `lax.while_loop` until the assignments stop
changing, with centroids from `jax.ops.segment_sum`; restarts run under `vmap`. PCA
comes from `jnp.linalg.svd` of the centred data and, for whitening, `jnp.linalg.eigh` of
the covariance. Spectral clustering embeds the points with the lowest eigenvectors of a
normalised graph Laplacian built from a Gaussian affinity, then runs the same k-means.
Signs of singular/eigen vectors are fixed so that results are comparable.
"""

import numpy as np

from _jax_port import check_against_jax

K = 3


def program(jax, jnp, lax):
    key = jax.random.key(42)
    k_data, k_init, k_ring = jax.random.split(key, 3)
    centres = jnp.array([[0.0, 0.0, 0.0], [4.0, 4.0, 0.0], [-4.0, 3.0, 2.0]])
    labels_true = jnp.repeat(jnp.arange(K), 20)
    x = centres[labels_true] + jax.random.normal(k_data, (60, 3)) * jnp.array([1.0, 0.6, 0.3])

    def sq_dists(x, c):
        return jnp.sum((x[:, None, :] - c[None, :, :]) ** 2, axis=-1)

    def kmeans_pp(key, x, k, use_categorical=False):
        n = x.shape[0]
        k0, key = jax.random.split(key)
        first = jax.random.choice(k0, n)
        init = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[first])

        def body(i, carry):
            c, key = carry
            key, sub = jax.random.split(key)
            d2 = jnp.min(jnp.where(jnp.arange(k) < i, sq_dists(x, c), jnp.inf), axis=1)
            if use_categorical:
                idx = jax.random.categorical(sub, jnp.log(d2))
            else:
                idx = jax.random.choice(sub, n, p=d2 / d2.sum())
            return c.at[i].set(x[idx]), key

        c, _ = lax.fori_loop(1, k, body, (init, key))
        return c

    def lloyd(x, c0, max_iter=50):
        def assign(c):
            return jnp.argmin(sq_dists(x, c), axis=1)

        def cond(state):
            _, labels, prev, it = state
            return jnp.logical_and(jnp.any(labels != prev), it < max_iter)

        def body(state):
            c, labels, _, it = state
            sums = jax.ops.segment_sum(x, labels, num_segments=K)
            counts = jax.ops.segment_sum(jnp.ones(x.shape[0]), labels, num_segments=K)
            c = jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1)[:, None], c)
            return c, assign(c), labels, it + 1

        labels0 = assign(c0)
        c, labels, _, it = lax.while_loop(
            cond, body, (c0, labels0, jnp.full_like(labels0, -1), 0))
        inertia = jnp.sum(jnp.min(sq_dists(x, c), axis=1))
        return c, labels, inertia, it

    @jax.jit
    def fit(keys, x):
        inits = jax.vmap(lambda k: kmeans_pp(k, x, K))(keys)
        cs, labels, inertias, iters = jax.vmap(lloyd, (None, 0))(x, inits)
        best = jnp.argmin(inertias)
        return inits, cs[best], labels[best], inertias, iters

    inits, c_best, labels, inertias, iters = fit(jax.random.split(k_init, 4), x)
    init_cat = jax.jit(lambda k: kmeans_pp(k, x, K, use_categorical=True))(k_init)

    # Canonical cluster order (by first coordinate) so the labels are comparable.
    order = jnp.argsort(c_best[:, 0])
    rank = jnp.argsort(order)
    c_sorted, labels_sorted = c_best[order], rank[labels]

    # PCA by SVD, whitening by eigh of the covariance.
    xc = x - x.mean(0)
    u, s, vt = jnp.linalg.svd(xc, full_matrices=False)
    signs = jnp.sign(vt[jnp.arange(3), jnp.argmax(jnp.abs(vt), axis=1)])
    vt = vt * signs[:, None]
    explained = s ** 2 / jnp.sum(s ** 2)
    cov = xc.T @ xc / (x.shape[0] - 1)
    evals, evecs = jnp.linalg.eigh(cov)
    evecs = evecs * jnp.sign(evecs[jnp.argmax(jnp.abs(evecs), axis=0), jnp.arange(3)])
    white = xc @ evecs / jnp.sqrt(evals)
    white_cov = white.T @ white / (x.shape[0] - 1)

    # Spectral clustering of two noisy concentric rings.
    n_ring = 24
    theta = jnp.linspace(0, 2 * jnp.pi, n_ring, endpoint=False)
    radius = jnp.concatenate([jnp.full(n_ring // 2, 1.0), jnp.full(n_ring // 2, 3.0)])
    angle = jnp.concatenate([theta[::2], theta[1::2]])
    ring = jnp.stack([radius * jnp.cos(angle), radius * jnp.sin(angle)], 1)
    ring = ring + 0.05 * jax.random.normal(k_ring, ring.shape)
    d2 = jnp.sum((ring[:, None] - ring[None]) ** 2, -1)
    w = jnp.exp(-d2 / (2 * 0.5 ** 2)) * (1 - jnp.eye(n_ring))
    deg = w.sum(1)
    lap = jnp.eye(n_ring) - w / jnp.sqrt(deg[:, None] * deg[None, :])
    lap_evals, lap_evecs = jnp.linalg.eigh(lap)
    emb = lap_evecs[:, :2] / jnp.linalg.norm(lap_evecs[:, :2], axis=1, keepdims=True)
    # Two-cluster k-means on the embedding, started from two far-apart points (the
    # third centre is parked far away so that it never wins a point).
    far = jnp.argmax(jnp.sum((emb - emb[0]) ** 2, 1))
    c0 = jnp.stack([emb[0], emb[far], jnp.full(2, 1e3)])
    _, ring_labels, _, _ = lloyd(emb, c0)
    same_ring = ring_labels == ring_labels[0]

    return {"data": x, "inits": inits, "init_categorical": init_cat, "centres": c_sorted,
            "labels": labels_sorted, "inertias": inertias, "iters": iters,
            "singular_values": s, "components": vt, "explained": explained,
            "cov_evals": evals, "white_cov": white_cov, "whitened": white,
            "laplacian_evals": lap_evals[:4], "ring_same_cluster": same_ring}


def test_kmeans_pca_matches_jax():
    got, _ = check_against_jax("test_jax_ml_kmeans_pca", program, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(got["white_cov"], np.eye(3), atol=1e-4)
    # The rings separate: the first half (inner ring) is one cluster, the rest the other.
    same = got["ring_same_cluster"]
    assert same[:12].all() and not same[12:].any()
    assert np.all(np.bincount(got["labels"], minlength=3) == 20)
