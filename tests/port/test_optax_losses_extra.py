"""Port: optax's sparsemax, Fenchel-Young and ranking losses (`optax.losses.sparsemax_loss`,
`multiclass_sparsemax_loss`, `make_fenchel_young_loss`, `ranking_softmax_loss`, from
`optax/losses/_classification.py`, `_fenchel_young.py` and `_ranking.py`,
google-deepmind/optax repository, and their tests).

Runs, written against `optax.losses`: each loss on small random batches (with ties,
logits exactly at the kinks of the sparse-plus function, rows whose sparsemax is one-hot,
Fenchel-Young losses of `logsumexp`, of the Gini conjugate built on
`optax.projections.projection_simplex` and of `max`, with broadcast leading axes, and
ranking lists with masks, an all-masked list, item weights and every reduction), their
gradients, and the same eagerly, under `jit` and under `vmap`; then a linear classifier
trained for 20 steps of `optax.adam` on the multiclass sparsemax loss and a linear
ranker on the ranking softmax loss. Checked against optax: every returned value.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    rng = np.random.default_rng(20240611)
    losses = optax.losses

    def arr(*shape, scale=1.0):
        return jnp.asarray((scale * rng.normal(size=shape)).astype(np.float32))

    out = {}

    # --- sparsemax_loss ----------------------------------------------------------------
    logits = jnp.asarray(np.concatenate([
        rng.normal(size=10) * 2.0, [-1.0, 1.0, -1.0, 1.0, 0.0, 3.0]]).astype(np.float32))
    labels = jnp.asarray(np.concatenate([rng.integers(0, 2, size=10), [0, 0, 1, 1, 1, 0]]))
    out["sparsemax/loss"] = losses.sparsemax_loss(logits, labels)
    out["sparsemax/bool_labels"] = losses.sparsemax_loss(logits, labels == 1)
    out["sparsemax/grad"] = jax.grad(
        lambda x: jnp.sum(losses.sparsemax_loss(x, labels)))(logits)
    out["sparsemax/jit"] = jax.jit(losses.sparsemax_loss)(logits, labels)
    out["sparsemax/vmap"] = jax.vmap(losses.sparsemax_loss)(
        logits.reshape(4, 4), labels.reshape(4, 4))

    # --- multiclass_sparsemax_loss -----------------------------------------------------
    scores = arr(6, 5, scale=1.5)
    scores = scores.at[3].set(jnp.asarray([4.0, 0.0, -1.0, 0.5, 0.2]))   # one-hot sparsemax
    scores = scores.at[4].set(jnp.asarray([1.0, 1.0, 1.0, -2.0, 1.0]))   # ties
    classes = jnp.asarray([0, 1, 4, 0, 2, 3])
    mc = losses.multiclass_sparsemax_loss
    out["multiclass/loss"] = mc(scores, classes)
    out["multiclass/grad"] = jax.grad(lambda s: jnp.sum(mc(s, classes)))(scores)
    out["multiclass/jit"] = jax.jit(mc)(scores, classes)
    out["multiclass/jit_grad"] = jax.jit(jax.grad(lambda s: jnp.mean(mc(s, classes))))(scores)
    stacked = jnp.stack([scores, arr(6, 5)])
    stacked_classes = jnp.stack([classes, jnp.asarray([4, 3, 2, 1, 0, 0])])
    out["multiclass/vmap"] = jax.vmap(mc)(stacked, stacked_classes)
    out["multiclass/vmap_grad"] = jax.vmap(jax.grad(
        lambda s, c: jnp.sum(mc(s, c))))(stacked, stacked_classes)

    # --- make_fenchel_young_loss -------------------------------------------------------
    fy_lse = losses.make_fenchel_young_loss(jax.nn.logsumexp)

    def gini_max(s):
        p = optax.projections.projection_simplex(s)
        return jnp.dot(p, s) + 0.5 * (1.0 - jnp.dot(p, p))

    fy_gini = losses.make_fenchel_young_loss(gini_max)
    fy_max = losses.make_fenchel_young_loss(jnp.max)
    theta = arr(3, 4, 5)
    soft = jax.nn.softmax(arr(4, 5), axis=-1)
    one_hot = jax.nn.one_hot(classes[:4], 5)
    for key, fy in (("lse", fy_lse), ("gini", fy_gini), ("max", fy_max)):
        out[f"fy_{key}/loss"] = fy(theta, soft)
        out[f"fy_{key}/grad"] = jax.grad(lambda t: jnp.sum(fy(t, soft)))(theta)
        out[f"fy_{key}/grad_targets"] = jax.grad(lambda y: jnp.sum(fy(theta, y)))(soft)
        out[f"fy_{key}/jit"] = jax.jit(fy)(theta[0], one_hot)
        out[f"fy_{key}/vmap_grad"] = jax.vmap(jax.grad(fy))(theta[0], soft)
    out["fy_lse/vector"] = fy_lse(theta[0, 0], soft[0])
    out["fy_lse/broadcast_targets"] = fy_lse(theta, soft[0])
    out["fy_gini/one_hot"] = fy_gini(scores[:4], one_hot)

    # --- ranking_softmax_loss ----------------------------------------------------------
    rk = losses.ranking_softmax_loss
    r_logits = arr(4, 6)
    r_labels = jnp.asarray(rng.integers(0, 3, size=(4, 6)).astype(np.float32))
    mask = jnp.asarray(rng.random((4, 6)) > 0.3).at[2].set(False).at[0, :2].set(True)
    item_w = jnp.asarray(rng.uniform(0.5, 2.0, size=(4, 6)).astype(np.float32))
    cases = {
        "default": {},
        "where": {"where": mask},
        "weights": {"weights": item_w},
        "where_weights_sum": {"where": mask, "weights": item_w, "reduce_fn": jnp.sum},
        "none": {"reduce_fn": None},
        "where_none": {"where": mask, "reduce_fn": None},
        "all_masked": {"where": jnp.zeros((4, 6), dtype=bool)},
    }
    for key, kw in cases.items():
        out[f"ranking/{key}/loss"] = rk(r_logits, r_labels, **kw)
        out[f"ranking/{key}/grad"] = jax.grad(
            lambda s: jnp.sum(rk(s, r_labels, **kw)))(r_logits)
    out["ranking/vector"] = rk(r_logits[0], r_labels[0])
    out["ranking/int_labels"] = rk(r_logits, r_labels.astype(jnp.int32))
    out["ranking/batch3"] = rk(r_logits.reshape(2, 2, 6), r_labels.reshape(2, 2, 6),
                               where=mask.reshape(2, 2, 6), reduce_fn=None)
    out["ranking/jit"] = jax.jit(lambda s, y, m: rk(s, y, where=m))(r_logits, r_labels, mask)
    out["ranking/vmap"] = jax.vmap(lambda s, y, m: rk(s, y, where=m))(
        r_logits, r_labels, mask)
    out["ranking/vmap_grad"] = jax.vmap(jax.grad(lambda s, y: rk(s, y)))(r_logits, r_labels)

    # --- training with the losses ------------------------------------------------------
    x = arr(32, 4)
    w_true = arr(4, 3, scale=2.0)
    y = jnp.argmax(x @ w_true, axis=-1)

    def train(loss_fn, params, steps=20, lr=0.1):
        opt = optax.adam(lr)
        state = opt.init(params)
        history = []
        for _ in range(steps):
            value, grad = jax.value_and_grad(loss_fn)(params)
            updates, state = opt.update(grad, state, params)
            params = optax.apply_updates(params, updates)
            history.append(value)
        return jnp.stack(history), params

    def classifier_loss(p):
        return jnp.mean(mc(x @ p["w"] + p["b"], y))

    hist, params = train(jax.jit(classifier_loss), {"w": jnp.zeros((4, 3)),
                                                    "b": jnp.zeros((3,))})
    out["train_multiclass/losses"] = hist
    out["train_multiclass/params"] = params

    docs = arr(5, 7, 4)
    relevance = jnp.clip(jnp.round(docs @ jnp.asarray([1.0, -0.5, 0.3, 0.0]) + 1.0), 0, 3)
    valid = jnp.asarray(rng.random((5, 7)) > 0.2)

    def ranker_loss(w):
        return rk(docs @ w, relevance, where=valid)

    hist, w = train(ranker_loss, jnp.zeros((4,)), lr=0.05)
    out["train_ranking/losses"] = hist
    out["train_ranking/w"] = w
    return out


def test_optax_losses_extra():
    got, ref = check_against_optax("test_optax_losses_extra", program, rtol=2e-4, atol=2e-5)
    # Sanity of the recording and of nanofn: jit and vmap agree with eager code; the
    # losses are non-negative where they must be; the all-masked ranking loss is 0 with a
    # zero gradient; the trained models' losses go down.
    np.testing.assert_allclose(got["sparsemax/jit"], got["sparsemax/loss"], rtol=1e-6)
    np.testing.assert_allclose(got["multiclass/jit"], got["multiclass/loss"], rtol=1e-6)
    np.testing.assert_allclose(got["multiclass/vmap"][0], got["multiclass/loss"], rtol=1e-6)
    assert np.all(ref["multiclass/loss"] >= -1e-6) and abs(ref["multiclass/loss"][3]) < 1e-6
    assert np.all(ref["fy_gini/loss"] >= -1e-6) and np.all(ref["fy_lse/loss"] >= -1e-6)
    np.testing.assert_allclose(got["fy_gini/one_hot"], got["multiclass/loss"][:4],
                               rtol=1e-5, atol=1e-6)
    assert float(ref["ranking/all_masked/loss"]) == 0.0
    assert not np.any(ref["ranking/all_masked/grad"])
    assert ref["ranking/where_none/loss"][2] == 0.0
    # (The ranking loss cannot reach 0: the labels are not one-hot.)
    for key, factor in (("train_multiclass", 0.7), ("train_ranking", 0.9)):
        h = got[f"{key}/losses"]
        assert h[-1] < factor * h[0] and np.all(np.diff(h) < 0), (key, h)
