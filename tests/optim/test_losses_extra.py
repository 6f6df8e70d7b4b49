"""optax's sparsemax, Fenchel-Young and ranking losses without JAX: values against numpy
references, gradients against their closed forms and finite differences (float64),
jit/vmap against eager code, edge cases (masks, ties, one-hot sparsemax), and errors that
name the bad argument."""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp
from nanofn.optim._losses_extra import (make_fenchel_young_loss, multiclass_sparsemax_loss,
                                        ranking_softmax_loss, sparsemax_loss)
from nanofn.testing import check_grads

RNG = np.random.default_rng(7)


# --- numpy references ----------------------------------------------------------------------


def _np_sparse_plus(z):
    return np.where(z <= -1, 0.0, np.where(z >= 1, z, (z + 1) ** 2 / 4))


def _np_sparsemax(s):
    """Projection of the vector ``s`` onto the probability simplex (by sorting)."""
    u = np.sort(s)[::-1]
    css = np.cumsum(u)
    k = np.arange(1, s.size + 1)
    support = u - (css - 1) / k > 0
    kk = k[support][-1]
    tau = (css[kk - 1] - 1) / kk
    return np.maximum(s - tau, 0.0)


def _np_multiclass_sparsemax(scores, labels):
    out = []
    for s, y in zip(scores, labels):
        p = _np_sparsemax(s)
        out.append(p @ s + 0.5 * (1 - p @ p) - s[y])
    return np.array(out)


def _np_logsumexp(s):
    m = s.max(-1, keepdims=True)
    return (m + np.log(np.exp(s - m).sum(-1, keepdims=True)))[..., 0]


def _np_ranking(logits, labels, where=None, weights=None):
    """Per-list losses, 0 for lists with no valid item."""
    where = np.ones(logits.shape, bool) if where is None else where
    w = np.ones(logits.shape) if weights is None else weights
    out = np.zeros(logits.shape[:-1])
    for idx in np.ndindex(*logits.shape[:-1]):
        m = where[idx]
        if not m.any():
            continue
        s = logits[idx][m]
        logp = s - _np_logsumexp(s)
        out[idx] = -np.sum(labels[idx][m] * w[idx][m] * logp)
    return out


# --- sparsemax_loss ------------------------------------------------------------------------


def test_sparsemax_loss_values_and_zero_set():
    logits = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.5, -2.0, 0.3, 1.5])
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1, 0, 0])
    got = np.asarray(sparsemax_loss(logits, labels))
    want = _np_sparse_plus(np.where(labels == 1, -logits, logits))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got.dtype == np.float64
    # Zero exactly where the sparse sigmoid equals the label.
    hit = np.asarray(nanofn.nn.sparse_sigmoid(logits)) == labels
    np.testing.assert_array_equal(got == 0, hit)
    # Boolean (and any nonzero) labels mean the positive class.
    np.testing.assert_allclose(np.asarray(sparsemax_loss(logits, labels == 1)), want)
    np.testing.assert_allclose(np.asarray(sparsemax_loss(logits, 3 * labels)), want)


def test_sparsemax_loss_gradient_and_transforms():
    logits = np.array([-3.0, -0.4, 0.2, 0.7, 2.0, -1.7])
    labels = np.array([1.0, 1.0, 0.0, 1.0, 0.0, 0.0])
    z = np.where(labels == 1, -logits, logits)
    dz = np.clip((z + 1) / 2, 0, 1)
    want = np.where(labels == 1, -dz, dz)
    got = nanofn.grad(lambda x: jnp.sum(sparsemax_loss(x, labels)))(logits)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
    check_grads(lambda x: sparsemax_loss(x, labels), (logits,), order=2,
                modes=("fwd", "rev"))
    f32 = logits.astype(np.float32)
    eager = np.asarray(sparsemax_loss(f32, labels))
    np.testing.assert_allclose(np.asarray(nanofn.jit(sparsemax_loss)(f32, labels)), eager)
    np.testing.assert_allclose(
        np.asarray(nanofn.vmap(sparsemax_loss)(f32.reshape(2, 3), labels.reshape(2, 3))),
        eager.reshape(2, 3))


def test_sparsemax_loss_broadcasts_and_rejects_bad_shapes():
    out = sparsemax_loss(np.zeros((2, 3)), np.array([1, 0, 1]))
    assert out.shape == (2, 3)
    with pytest.raises(ValueError, match="sparsemax_loss: `labels`"):
        sparsemax_loss(np.zeros((2, 3)), np.zeros(2))


# --- multiclass_sparsemax_loss -------------------------------------------------------------


def test_multiclass_sparsemax_values():
    scores = RNG.normal(size=(7, 5)) * 1.5
    scores[2] = [4.0, 0.0, -1.0, 0.5, 0.2]    # sparsemax is one-hot on class 0
    scores[3] = [1.0, 1.0, 1.0, -2.0, 1.0]    # ties
    labels = np.array([0, 1, 0, 3, 4, 2, 2])
    got = np.asarray(multiclass_sparsemax_loss(scores, labels))
    # (nanofn's projection_simplex computes its 1/k in float32 even for float64 input, so
    # float64 results agree to about 1e-8 only.)
    np.testing.assert_allclose(got, _np_multiclass_sparsemax(scores, labels), rtol=1e-7,
                               atol=1e-7)
    assert got.dtype == np.float64 and got.shape == (7,)
    assert np.all(got >= -1e-12) and got[2] == 0.0
    # float32 stays float32; integer scores are computed in float32.
    assert multiclass_sparsemax_loss(scores.astype(np.float32), labels).dtype == np.float32
    ints = multiclass_sparsemax_loss(np.array([[2, 0, 0]]), np.array([1]))
    assert ints.dtype == np.float32
    np.testing.assert_allclose(np.asarray(ints), [2.0])
    # A -inf score is simply never chosen.
    inf_scores = np.array([[0.5, -np.inf, 0.1]])
    np.testing.assert_allclose(np.asarray(multiclass_sparsemax_loss(inf_scores, [2])),
                               _np_multiclass_sparsemax(np.array([[0.5, -1e9, 0.1]]), [2]))
    # Empty batch.
    assert multiclass_sparsemax_loss(np.zeros((0, 4)), np.zeros(0, np.int32)).shape == (0,)


def test_multiclass_sparsemax_gradient():
    scores = RNG.normal(size=(6, 5))
    labels = np.array([0, 1, 2, 3, 4, 0])
    grad = nanofn.grad(lambda s: jnp.sum(multiclass_sparsemax_loss(s, labels)))(scores)
    want = np.stack([_np_sparsemax(s) for s in scores]) - np.eye(5)[labels]
    np.testing.assert_allclose(np.asarray(grad), want, atol=1e-7)
    check_grads(lambda s: multiclass_sparsemax_loss(s, labels), (scores,), order=1,
                modes=("fwd", "rev"))


def test_multiclass_sparsemax_jit_vmap():
    scores = RNG.normal(size=(2, 4, 3)).astype(np.float32)
    labels = np.array([[0, 1, 2, 1], [2, 2, 0, 1]])
    eager = np.stack([np.asarray(multiclass_sparsemax_loss(s, y))
                      for s, y in zip(scores, labels)])
    np.testing.assert_allclose(np.asarray(nanofn.vmap(multiclass_sparsemax_loss)(
        scores, labels)), eager, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(nanofn.jit(multiclass_sparsemax_loss)(
        scores[0], labels[0])), eager[0], rtol=1e-6)
    g = nanofn.jit(nanofn.grad(lambda s, y: jnp.sum(multiclass_sparsemax_loss(s, y))))
    want = nanofn.grad(lambda s: jnp.sum(multiclass_sparsemax_loss(s, labels[1])))(scores[1])
    np.testing.assert_allclose(np.asarray(g(scores[1], labels[1])), np.asarray(want),
                               rtol=1e-6)


def test_multiclass_sparsemax_errors():
    f = multiclass_sparsemax_loss
    with pytest.raises(ValueError, match="`scores` must have rank 2"):
        f(np.zeros(3), np.array(0))
    with pytest.raises(TypeError, match="`labels` must be integers"):
        f(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"`labels` must have shape \(2,\)"):
        f(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"`labels` must lie in \[0, 3\).*found label 3"):
        f(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="found label -1"):
        f(np.zeros((2, 3)), np.array([-1, 0]))
    with pytest.raises(ValueError, match="no classes"):
        f(np.zeros((2, 0)), np.array([0, 0]))


# --- make_fenchel_young_loss ---------------------------------------------------------------


def test_fenchel_young_logsumexp_values_and_gradients():
    fy = make_fenchel_young_loss(nanofn.scipy.special.logsumexp)
    theta = RNG.normal(size=(3, 4, 5))
    y = RNG.dirichlet(np.ones(5), size=(4,))
    got = np.asarray(fy(theta, y))           # targets broadcast over the leading axis
    want = _np_logsumexp(theta) - np.einsum("...i,...i->...", y, theta)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got.shape == (3, 4)
    # The gradient in the scores is softmax(scores) - targets; in the targets, -scores.
    grad = nanofn.grad(lambda t: jnp.sum(fy(t, y)))(theta)
    soft = np.exp(theta - _np_logsumexp(theta)[..., None])
    np.testing.assert_allclose(np.asarray(grad), soft - y, atol=1e-12)
    grad_y = nanofn.grad(lambda t: jnp.sum(fy(theta[0], t)))(y)
    np.testing.assert_allclose(np.asarray(grad_y), -theta[0], atol=1e-12)
    check_grads(fy, (theta[0], y), order=2, modes=("fwd", "rev"))
    # With one-hot targets it is the softmax cross-entropy.
    labels = np.array([0, 4, 2, 1])
    ce = nanofn.optim.losses.softmax_cross_entropy_with_integer_labels(theta[0], labels)
    np.testing.assert_allclose(np.asarray(fy(theta[0], np.eye(5)[labels])), np.asarray(ce),
                               rtol=1e-12)
    # A single vector gives a scalar.
    assert fy(theta[0, 0], y[0]).shape == ()


def test_fenchel_young_gini_is_multiclass_sparsemax():
    def gini_max(s):
        p = nanofn.optim.projections.projection_simplex(s)
        return jnp.dot(p, s) + 0.5 * (1.0 - jnp.dot(p, p))

    fy = make_fenchel_young_loss(gini_max)
    scores = RNG.normal(size=(5, 4))
    labels = np.array([0, 3, 1, 2, 2])
    np.testing.assert_allclose(np.asarray(fy(scores, np.eye(4)[labels])),
                               np.asarray(multiclass_sparsemax_loss(scores, labels)),
                               atol=1e-7)
    grad = nanofn.grad(lambda s: jnp.sum(fy(s, np.eye(4)[labels])))(scores)
    want = np.stack([_np_sparsemax(s) for s in scores]) - np.eye(4)[labels]
    np.testing.assert_allclose(np.asarray(grad), want, atol=1e-7)


def test_fenchel_young_jit_vmap_and_extra_arguments():
    fy = make_fenchel_young_loss(nanofn.nn.logsumexp)
    theta = RNG.normal(size=(4, 3)).astype(np.float32)
    y = RNG.dirichlet(np.ones(3), size=4).astype(np.float32)
    eager = np.asarray(fy(theta, y))
    np.testing.assert_allclose(np.asarray(nanofn.jit(fy)(theta, y)), eager, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(nanofn.vmap(fy)(theta, y)), eager, rtol=1e-6)
    vg = nanofn.vmap(nanofn.grad(fy))(theta, y)
    np.testing.assert_allclose(np.asarray(vg), np.asarray(nanofn.grad(
        lambda t: jnp.sum(fy(t, y)))(theta)), rtol=1e-6)

    # Extra arguments reach max_fun, for every row.
    def smooth_max(s, temperature=1.0):
        return temperature * nanofn.nn.logsumexp(s / temperature)

    fy_t = make_fenchel_young_loss(smooth_max)
    t64 = theta.astype(np.float64)
    want = 0.5 * _np_logsumexp(t64 / 0.5) - np.sum(y * t64, -1)
    np.testing.assert_allclose(np.asarray(fy_t(t64, y, temperature=0.5)), want, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(fy_t(t64, y, 0.5)), want, rtol=1e-6)


def test_fenchel_young_errors():
    with pytest.raises(TypeError, match="`max_fun` must be a callable"):
        make_fenchel_young_loss(3.0)
    fy = make_fenchel_young_loss(nanofn.nn.logsumexp)
    with pytest.raises(ValueError, match="`scores` must have at least one axis"):
        fy(1.0, np.ones(3))
    with pytest.raises(ValueError, match="`targets` must have at least one axis"):
        fy(np.ones(3), 1.0)
    with pytest.raises(ValueError, match="last axes of `scores`"):
        fy(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="`targets` has shape"):
        fy(np.ones((2, 3)), np.ones((4, 3)))


# --- ranking_softmax_loss ------------------------------------------------------------------


def _ranking_case():
    logits = RNG.normal(size=(4, 6))
    labels = RNG.integers(0, 3, size=(4, 6)).astype(np.float64)
    where = RNG.random((4, 6)) > 0.3
    where[2] = False
    where[0, :2] = True
    weights = RNG.uniform(0.5, 2.0, size=(4, 6))
    return logits, labels, where, weights


def test_ranking_softmax_loss_values():
    logits, labels, where, weights = _ranking_case()
    per_list = _np_ranking(logits, labels)
    np.testing.assert_allclose(np.asarray(ranking_softmax_loss(logits, labels)),
                               per_list.mean(), rtol=1e-12)
    np.testing.assert_allclose(
        np.asarray(ranking_softmax_loss(logits, labels, reduce_fn=None)), per_list,
        rtol=1e-12)
    masked = _np_ranking(logits, labels, where, weights)
    got = ranking_softmax_loss(logits, labels, where=where, weights=weights, reduce_fn=None)
    np.testing.assert_allclose(np.asarray(got), masked, rtol=1e-12)
    assert float(got[2]) == 0.0
    valid = where.any(-1)
    np.testing.assert_allclose(
        np.asarray(ranking_softmax_loss(logits, labels, where=where, weights=weights)),
        masked[valid].mean(), rtol=1e-12)
    np.testing.assert_allclose(
        np.asarray(ranking_softmax_loss(logits, labels, where=where, reduce_fn=jnp.sum)),
        _np_ranking(logits, labels, where).sum(), rtol=1e-12)
    # optax's docstring example.
    loss = ranking_softmax_loss(jnp.array([2.0, 1.0, 3.0]), jnp.array([1.0, 0.0, 0.0]))
    assert f"{float(loss):.3f}" == "1.408"
    # Integer labels are cast to the logits' dtype.
    out = ranking_softmax_loss(logits.astype(np.float32), labels.astype(np.int32))
    assert out.dtype == np.float32


def test_ranking_softmax_loss_all_masked_is_zero_with_zero_gradient():
    logits, labels, _, _ = _ranking_case()
    none = np.zeros(logits.shape, bool)
    for reduce_fn in (jnp.mean, jnp.sum, None):
        f = lambda s: jnp.sum(ranking_softmax_loss(s, labels, where=none,  # noqa: E731
                                                   reduce_fn=reduce_fn))
        assert float(f(logits)) == 0.0
        grad = np.asarray(nanofn.grad(f)(logits))
        assert np.all(grad == 0.0), reduce_fn
    # A nan in the losses is not hidden by the mean.
    bad = logits.copy()
    bad[0, 0] = np.nan
    assert np.isnan(float(ranking_softmax_loss(bad, labels)))


def test_ranking_softmax_loss_gradients():
    logits, labels, where, weights = _ranking_case()
    f = lambda s: ranking_softmax_loss(s, labels, where=where, weights=weights,  # noqa: E731
                                       reduce_fn=jnp.sum)
    grad = np.asarray(nanofn.grad(f)(logits))
    # Per valid list: softmax(s) * sum(w y) - w y over the valid items; 0 elsewhere.
    want = np.zeros_like(logits)
    for i in range(4):
        m = where[i]
        if not m.any():
            continue
        s = logits[i][m]
        p = np.exp(s - _np_logsumexp(s))
        wy = (labels[i] * weights[i])[m]
        want[i][m] = p * wy.sum() - wy
    np.testing.assert_allclose(grad, want, atol=1e-12)
    check_grads(lambda s: ranking_softmax_loss(s, labels, weights=weights), (logits,),
                order=2, modes=("fwd", "rev"))
    # Only the valid items vary; finite differences on them (masked ones are -inf inside).
    check_grads(lambda s: f(jnp.where(where, s, 0.0)), (logits,), order=1, modes=("rev",))


def test_ranking_softmax_loss_jit_vmap_and_batch_axes():
    logits, labels, where, _ = _ranking_case()
    logits = logits.astype(np.float32)
    eager = np.asarray(ranking_softmax_loss(logits, labels, where=where, reduce_fn=None))
    f = nanofn.jit(lambda s, y, m: ranking_softmax_loss(s, y, where=m, reduce_fn=None))
    np.testing.assert_allclose(np.asarray(f(logits, labels, where)), eager, rtol=1e-6)
    v = nanofn.vmap(lambda s, y, m: ranking_softmax_loss(s, y, where=m))(logits, labels,
                                                                         where)
    np.testing.assert_allclose(np.asarray(v), eager, rtol=1e-6)
    batched = ranking_softmax_loss(logits.reshape(2, 2, 6), labels.reshape(2, 2, 6),
                                   where=where.reshape(2, 2, 6), reduce_fn=None)
    np.testing.assert_allclose(np.asarray(batched), eager.reshape(2, 2), rtol=1e-6)
    # A mask of one list broadcasts over the batch.
    m1 = np.array([True, True, False, True, True, True])
    got = ranking_softmax_loss(logits, labels, where=m1, reduce_fn=None)
    np.testing.assert_allclose(np.asarray(got), _np_ranking(
        logits.astype(np.float64), labels, np.broadcast_to(m1, logits.shape)), rtol=1e-5)


def test_ranking_softmax_loss_errors():
    f = ranking_softmax_loss
    with pytest.raises(TypeError, match="`logits` must be a floating array"):
        f(np.array([1, 2, 3]), np.array([1, 0, 0]))
    with pytest.raises(ValueError, match="`logits` must have at least one axis"):
        f(np.float32(1.0), np.float32(1.0))
    with pytest.raises(ValueError, match="`labels` has shape"):
        f(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(TypeError, match="`where` must be a boolean array"):
        f(np.zeros((2, 3)), np.zeros((2, 3)), where=np.ones((2, 3)))
    with pytest.raises(ValueError, match="`where` has shape"):
        f(np.zeros((2, 3)), np.zeros((2, 3)), where=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="`weights` has shape"):
        f(np.zeros((2, 3)), np.zeros((2, 3)), weights=np.ones(4))
    with pytest.raises(TypeError, match="`reduce_fn` must be a callable or None"):
        f(np.zeros((2, 3)), np.zeros((2, 3)), reduce_fn="mean")
