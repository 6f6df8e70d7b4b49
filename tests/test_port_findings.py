"""Fixes found by the port programs (tests/port): each test fails on the code before it.

Checked against numpy and analytic values (no JAX needed).
"""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp
from nanofn import optim

LOGITS = np.array([[1.0, 2.0, 3.0], [0.5, 0.1, -1.0], [0.2, 0.3, 0.4]], np.float32)


def _expected(logits, labels, keep):
    lse = np.log(np.sum(np.exp(logits), axis=-1))
    picked = logits[np.arange(len(labels)), np.clip(labels, 0, logits.shape[-1] - 1)]
    return np.where(keep, lse - picked, 0.0)


@pytest.mark.parametrize("padding_label", [-1, 7])
def test_integer_label_cross_entropy_ignores_masked_out_labels(padding_label):
    # Sequence models pad their labels (often with -1) and mask the padding with
    # `where`: optax gives those examples loss 0; nanofn raised outside jit (and an
    # out-of-range label raised from take_along_axis even under the mask).
    labels = jnp.array([0, padding_label, 2])
    keep = jnp.array([True, False, True])
    loss_fn = optim.softmax_cross_entropy_with_integer_labels
    want = _expected(LOGITS, np.array([0, 0, 2]), np.array([True, False, True]))
    eager = loss_fn(jnp.asarray(LOGITS), labels, where=keep)
    jitted = nanofn.jit(lambda l, y, w: loss_fn(l, y, where=w))(jnp.asarray(LOGITS), labels, keep)
    np.testing.assert_allclose(eager, want, rtol=1e-6)
    np.testing.assert_allclose(jitted, want, rtol=1e-6)
    grad = nanofn.grad(lambda l: loss_fn(l, labels, where=keep).sum())(jnp.asarray(LOGITS))
    np.testing.assert_array_equal(np.asarray(grad)[1], 0.0)
    probs = np.exp(LOGITS[0]) / np.exp(LOGITS[0]).sum()
    np.testing.assert_allclose(np.asarray(grad)[0], probs - np.eye(3)[0], rtol=1e-5, atol=1e-7)


def test_integer_label_cross_entropy_still_rejects_a_bad_label_that_counts():
    with pytest.raises(ValueError, match="found label -1"):
        optim.softmax_cross_entropy_with_integer_labels(
            jnp.asarray(LOGITS), jnp.array([0, -1, 2]), where=jnp.array([True, True, False]))


def test_integer_label_cross_entropy_tuple_axis_with_a_per_example_mask():
    # `axis=(1, 2)` with a `where` of the batch's shape: the mask was broadcast against
    # the already-flattened logits, which raised.
    logits = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7.0
    labels = jnp.array([5, 11])
    loss = optim.softmax_cross_entropy_with_integer_labels(
        jnp.asarray(logits), labels, axis=(1, 2), where=jnp.array([True, False]))
    flat = logits.reshape(2, 12)
    want = _expected(flat, np.array([5, 11]), np.array([True, False]))
    np.testing.assert_allclose(loss, want, rtol=1e-6)
