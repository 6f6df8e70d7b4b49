"""nanofn.nn.losses (= nanofn.optim.losses): values against numpy formulas, gradients,
extreme inputs and clear errors for bad labels."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nanofn
import nanofn.numpy as jnp
from nanofn.nn import losses
from nanofn.testing import check_grads

RNG = np.random.default_rng(0)


def _log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


floats = st.floats(-10, 10, allow_subnormal=False)
pairs = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4).flatmap(
    lambda s: st.tuples(hnp.arrays(np.float64, s, elements=floats),
                        hnp.arrays(np.float64, s, elements=floats)))


@settings(max_examples=15)
@given(pair=pairs, delta=st.floats(0.1, 3))
def test_regression_losses_match_formulas(pair, delta):
    p, t = pair
    e = p - t
    np.testing.assert_allclose(np.asarray(losses.squared_error(p, t)), e ** 2, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(losses.squared_error(p)), p ** 2, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(losses.l2_loss(p, t)), 0.5 * e ** 2, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(losses.absolute_error(p, t)), np.abs(e), rtol=1e-12)
    huber = np.where(np.abs(e) <= delta, 0.5 * e ** 2, delta * (np.abs(e) - 0.5 * delta))
    np.testing.assert_allclose(np.asarray(losses.huber_loss(p, t, delta=delta)), huber,
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(losses.log_cosh(p, t)), np.log(np.cosh(e)),
                               rtol=1e-9, atol=1e-12)


def test_regression_extremes_and_gradients():
    p = jnp.array([1e30, -1e30, 5e3], dtype=jnp.float32)
    for fn in (losses.log_cosh, losses.huber_loss, losses.absolute_error):
        out = np.asarray(fn(p))
        g = np.asarray(nanofn.grad(lambda v: jnp.sum(fn(v)))(p))
        assert np.isfinite(out).all() and np.isfinite(g).all(), fn.__name__
    np.testing.assert_allclose(np.asarray(losses.log_cosh(p)), np.abs(np.asarray(p, np.float64))
                               - np.log(2), rtol=1e-6)
    p, t = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
    for fn in (losses.squared_error, losses.l2_loss, losses.log_cosh):
        check_grads(fn, (p, t), order=2)
    check_grads(lambda a, b: losses.huber_loss(a, b, delta=0.5), (p, t), order=1)


def test_softmax_cross_entropy_matches_formula_and_integer_version():
    logits = RNG.normal(size=(5, 7)) * 3
    labels = RNG.integers(0, 7, size=5).astype(np.int32)
    onehot = np.eye(7)[labels]
    expected = -(onehot * _log_softmax(logits)).sum(-1)
    np.testing.assert_allclose(np.asarray(losses.softmax_cross_entropy(logits, onehot)),
                               expected, rtol=1e-12)
    np.testing.assert_allclose(
        np.asarray(losses.softmax_cross_entropy_with_integer_labels(logits, labels)), expected,
        rtol=1e-12)
    soft = np.abs(RNG.normal(size=(5, 7)))
    soft /= soft.sum(-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(losses.softmax_cross_entropy(logits, soft)),
                               -(soft * _log_softmax(logits)).sum(-1), rtol=1e-12)
    check_grads(lambda x: losses.softmax_cross_entropy(x, soft), (logits,), order=2)
    check_grads(lambda x: losses.softmax_cross_entropy_with_integer_labels(x, labels),
                (logits,), order=2)


def test_cross_entropy_axis_argument():
    logits = RNG.normal(size=(4, 3))
    labels = np.array([0, 2, 1], np.int32)
    out = losses.softmax_cross_entropy_with_integer_labels(logits, labels, axis=0)
    expected = losses.softmax_cross_entropy_with_integer_labels(logits.T, labels)
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), rtol=1e-12)


def test_cross_entropy_at_huge_logits():
    logits = jnp.array([[1e4, -1e4, 0.0], [-1e38, 1e38, 0.0]], dtype=jnp.float32)
    labels = jnp.array([0, 0])
    loss = losses.softmax_cross_entropy_with_integer_labels(logits, labels)
    g = nanofn.grad(lambda x: jnp.sum(
        losses.softmax_cross_entropy_with_integer_labels(x, labels)))(logits)
    np.testing.assert_allclose(np.asarray(loss), [0.0, 2e38], rtol=1e-6)
    assert np.isfinite(np.asarray(g)).all()
    np.testing.assert_allclose(np.asarray(g), [[0, 0, 0], [-1, 1, 0]], atol=1e-6)


def test_integer_labels_errors():
    logits = jnp.zeros((3, 4))
    loss = losses.softmax_cross_entropy_with_integer_labels
    with pytest.raises(ValueError, match=r"found label 4"):
        loss(logits, jnp.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"found label -1"):
        loss(logits, jnp.array([0, -1, 2]))
    with pytest.raises(ValueError, match=r"\(3,\).*got labels of shape \(3, 1\)"):
        loss(logits, jnp.zeros((3, 1), dtype=jnp.int32))
    with pytest.raises(TypeError, match="integers"):
        loss(logits, jnp.zeros(3))
    with pytest.raises(ValueError, match="same shape"):
        losses.softmax_cross_entropy(logits, jnp.zeros((3, 5)))
    # under jit the labels are abstract: the shape is still checked, the range cannot be
    jitted = nanofn.jit(loss)
    assert jitted(logits, jnp.array([0, 1, 3])).shape == (3,)
    with pytest.raises(ValueError, match="labels"):
        jitted(logits, jnp.zeros((2,), dtype=jnp.int32))


@settings(max_examples=15)
@given(pair=pairs)
def test_sigmoid_binary_cross_entropy(pair):
    logits, raw = pair
    labels = (raw > 0).astype(np.float64)
    expected = -labels * _log_sigmoid(logits) - (1 - labels) * _log_sigmoid(-logits)
    np.testing.assert_allclose(np.asarray(losses.sigmoid_binary_cross_entropy(logits, labels)),
                               expected, rtol=1e-10, atol=1e-12)
    probs = 1 / (1 + np.exp(-np.clip(logits, -5, 5)))
    bce = -labels * np.log(probs) - (1 - labels) * np.log(1 - probs)
    np.testing.assert_allclose(np.asarray(losses.binary_cross_entropy(probs, labels)), bce,
                               rtol=1e-6, atol=1e-9)


def test_binary_losses_extremes_and_gradients():
    logits = jnp.array([-1e4, 1e4, 0.0], dtype=jnp.float32)
    labels = jnp.array([1.0, 0.0, 1.0])
    out = losses.sigmoid_binary_cross_entropy(logits, labels)
    np.testing.assert_allclose(np.asarray(out), [1e4, 1e4, np.log(2)], rtol=1e-6)
    g = nanofn.grad(lambda x: jnp.sum(losses.sigmoid_binary_cross_entropy(x, labels)))(logits)
    np.testing.assert_allclose(np.asarray(g), [-1, 1, -0.5], atol=1e-6)
    x, y = RNG.normal(size=(6,)), RNG.uniform(size=(6,))
    check_grads(lambda v: losses.sigmoid_binary_cross_entropy(v, y), (x,), order=2)
    p = jnp.array([0.0, 1.0])
    assert np.isfinite(np.asarray(losses.binary_cross_entropy(p, jnp.array([1.0, 0.0])))).all()


def test_hinge_and_kl():
    out = losses.hinge_loss(np.array([0.5, 2.0, -0.3]), np.array([1.0, 1.0, -1.0]))
    np.testing.assert_allclose(np.asarray(out), [0.5, 0.0, 0.7])
    p = RNG.dirichlet(np.ones(5), size=3)
    q = RNG.dirichlet(np.ones(5), size=3)
    q[0, 1] = 0.0  # a zero target probability contributes 0 (0 log 0 = 0)
    q[0] /= q[0].sum()
    terms = np.where(q > 0, q * (np.log(np.where(q > 0, q, 1)) - np.log(p)), 0)
    np.testing.assert_allclose(np.asarray(losses.kl_divergence(np.log(p), q)), terms.sum(-1),
                               rtol=1e-12)
    q2 = RNG.dirichlet(np.ones(5), size=3)
    np.testing.assert_allclose(
        np.asarray(losses.kl_divergence_with_log_targets(np.log(p), np.log(q2))),
        (q2 * (np.log(q2) - np.log(p))).sum(-1), rtol=1e-12)
    keep = RNG.random((3, 5)) < 0.7  # optax's where=: only these terms count
    np.testing.assert_allclose(
        np.asarray(losses.kl_divergence_with_log_targets(np.log(p), np.log(q2), where=keep)),
        np.where(keep, q2 * (np.log(q2) - np.log(p)), 0.0).sum(-1), rtol=1e-12)
    g = nanofn.grad(lambda lp: jnp.sum(losses.kl_divergence(lp, q)))(np.log(p))
    assert np.isfinite(np.asarray(g)).all()
    check_grads(lambda lp: losses.kl_divergence(lp, q), (np.log(p),), order=2)


def test_cosine_and_distances():
    a, b = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
    cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    np.testing.assert_allclose(np.asarray(losses.cosine_similarity(a, b)), cos, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(losses.cosine_distance(a, b)), 1 - cos, rtol=1e-12)
    check_grads(losses.cosine_similarity, (a, b), order=2)
    zero = losses.cosine_similarity(jnp.zeros(3), jnp.ones(3), epsilon=1e-12)
    assert np.isfinite(float(zero))
    d = losses.pairwise_distance(a, b, eps=0.0)
    np.testing.assert_allclose(np.asarray(d), np.linalg.norm(a - b, axis=-1), rtol=1e-12)
    d1 = losses.pairwise_distance(a, b, norm_degree=1, eps=0.0)
    np.testing.assert_allclose(np.asarray(d1), np.abs(a - b).sum(-1), rtol=1e-12)
    g = nanofn.grad(lambda x: jnp.sum(losses.pairwise_distance(x, x)))(a)
    assert np.isfinite(np.asarray(g)).all()


def test_triplet_margin_loss():
    a, p, n = (RNG.normal(size=(5, 3)) for _ in range(3))
    dp = np.sqrt(((a - p) ** 2).sum(-1) + 1e-6)
    dn = np.sqrt(((a - n) ** 2).sum(-1) + 1e-6)
    out = losses.triplet_margin_loss(a, p, n, margin=0.5)
    np.testing.assert_allclose(np.asarray(out), np.maximum(dp - dn + 0.5, 0), rtol=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        losses.triplet_margin_loss(a, p[:2], n)


def test_shape_and_dtype_errors_name_the_arguments():
    with pytest.raises(ValueError, match=r"targets of shape \(4,\).*predictions of shape \(3,\)"):
        losses.squared_error(jnp.zeros(3), jnp.zeros(4))
    with pytest.raises(TypeError, match="predictions must be a floating array"):
        losses.squared_error(jnp.zeros(3, dtype=jnp.int32))


def test_smooth_labels_and_optim_alias():
    out = losses.smooth_labels(np.eye(4)[[1, 3]], 0.2)
    np.testing.assert_allclose(np.asarray(out).sum(-1), 1.0)
    np.testing.assert_allclose(np.asarray(out)[0], [0.05, 0.85, 0.05, 0.05])
    from nanofn.optim import losses as optim_losses
    assert optim_losses.softmax_cross_entropy is losses.softmax_cross_entropy
    assert all(getattr(optim_losses, name) is getattr(losses, name) for name in losses.__all__)


def test_nll_after_log_softmax_equals_integer_cross_entropy():
    import nanofn.numpy as fnp
    from nanofn import nn
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(5, 4)) * 3, rng.integers(0, 4, 5)
    got = nn.losses.nll(nn.log_softmax(logits), labels)
    np.testing.assert_allclose(got, nn.losses.softmax_cross_entropy_with_integer_labels(
        logits, labels), rtol=1e-12)
    np.testing.assert_allclose(got, -np.log(np.exp(logits) / np.exp(logits).sum(1, keepdims=True))[
        np.arange(5), labels], rtol=1e-10)
    with pytest.raises(ValueError, match=r"nll: labels must lie in \[0, 4\)"):
        nn.losses.nll(fnp.zeros((2, 4)), np.array([0, 4]))
    np.testing.assert_allclose(nn.losses.mae(np.array([[1.0, -3.0]]), np.zeros((1, 2))), [2.0])


# ------------------------------------------------------------------------ where= masks


def _masked_log_softmax(x, where):
    m = np.where(where, x, -np.inf).max(-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    s = np.where(where, np.exp(x - m), 0.0).sum(-1, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.where(where, x - m - np.log(s), -np.inf)


masks = hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=5).flatmap(
    lambda s: st.tuples(hnp.arrays(np.float64, s, elements=floats),
                        hnp.arrays(np.bool_, s)))


@settings(max_examples=20, deadline=None)
@given(pair=masks)
def test_cross_entropies_with_class_masks(pair):
    # optax's `where`: only the kept classes enter the softmax and the sum; a row with no
    # class kept has loss 0 and gradient 0 (not NaN)
    logits, where = pair
    where = where.copy()
    labels = RNG.dirichlet(np.ones(logits.shape[-1]), size=logits.shape[:-1])
    logp = _masked_log_softmax(logits, where)
    want = -np.where(where, labels * np.where(where, logp, 0.0), 0.0).sum(-1)
    got = losses.softmax_cross_entropy(logits, labels, where=where)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    ints = np.argmax(np.where(where, RNG.random(where.shape), -1.0), -1)
    kept = where.any(-1)
    want_int = np.where(kept, -np.take_along_axis(np.where(where, logp, 0.0),
                                                 ints[..., None], -1)[..., 0], 0.0)
    got_int = losses.softmax_cross_entropy_with_integer_labels(logits, ints, where=where)
    np.testing.assert_allclose(got_int, want_int, rtol=1e-10, atol=1e-12)
    for loss in (lambda x: jnp.sum(losses.softmax_cross_entropy(x, labels, where=where)),
                 lambda x: jnp.sum(losses.softmax_cross_entropy_with_integer_labels(
                     x, ints, where=where))):
        g = np.asarray(nanofn.grad(loss)(logits))
        assert np.isfinite(g).all() and (g[~where] == 0).all()
        assert (g[~kept] == 0).all()
    if where.all():
        check_grads(lambda x: jnp.sum(losses.softmax_cross_entropy(x, labels, where=where)),
                    (logits,), order=1, modes=("rev",))


def test_masks_of_the_other_losses_and_tuple_axes():
    x, t = RNG.normal(size=(3, 6)), RNG.dirichlet(np.ones(6), size=3)
    where = RNG.random((3, 6)) > 0.4
    logp = _log_softmax(x)
    kl = np.where(where, t * (np.log(t) - logp), 0.0).sum(-1)
    np.testing.assert_allclose(losses.kl_divergence(logp, t, where=where), kl, rtol=1e-12)
    from nanofn import optim
    np.testing.assert_allclose(
        optim.generalized_kl_divergence(logp, t, where=where),
        kl + np.where(where, np.exp(logp) - t, 0.0).sum(-1), rtol=1e-12)
    a2 = np.where(where, x * x, 0.0).sum(-1, keepdims=True)
    b2 = np.where(where, t * t, 0.0).sum(-1, keepdims=True)
    cos = np.where(where, x / np.sqrt(a2) * t / np.sqrt(b2), 0.0).sum(-1)
    np.testing.assert_allclose(losses.cosine_similarity(x, t, where=where), cos, rtol=1e-12)
    np.testing.assert_allclose(losses.cosine_distance(x, t, where=where), 1 - cos, rtol=1e-12)
    smooth = losses.smooth_labels(t, 0.3, where=where)
    np.testing.assert_allclose(smooth, 0.7 * t + 0.3 / where.sum(-1, keepdims=True))
    np.testing.assert_allclose(losses.smooth_labels(t, 0.3, axis=0), 0.7 * t + 0.1)
    # a tuple of class axes is one flattened class axis
    x4 = x.reshape(3, 2, 3)
    labels = np.array([0, 5, 3])
    np.testing.assert_allclose(
        losses.softmax_cross_entropy_with_integer_labels(x4, labels, axis=(1, 2)),
        losses.softmax_cross_entropy_with_integer_labels(x, labels), rtol=1e-12)
