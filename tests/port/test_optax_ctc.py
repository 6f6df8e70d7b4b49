"""Port: optax's CTC loss (`optax.ctc_loss`, `optax.ctc_loss_with_forward_probs`, from
`optax/losses/_classification.py`, google-deepmind/optax repository).

A few small batches with random logits, labels with repeated symbols, and paddings on
both frames and labels: the default blank (0) and another blank id, a batch where some
label sequences cannot fit in their frames (the loss then grows like `-log_epsilon`), a
non-default `log_epsilon`, and a label-free batch. Checked against optax: the
per-sequence losses, both forward-probability arrays, and the gradients of the mean
loss with respect to the logits, eagerly, under `jit` and under `vmap`.
"""

import numpy as np

from _jax_port import check_against_optax


def _paddings(lengths, size):
    return (np.arange(size)[None, :] >= np.asarray(lengths)[:, None]).astype(np.float32)


def program(jax, jnp, optax):
    rng = np.random.default_rng(20240607)

    def batch(b, t, k, labels, label_lengths, frame_lengths):
        logits = rng.normal(size=(b, t, k)).astype(np.float32) * 2.0
        labels = np.asarray(labels, dtype=np.int32)
        return (jnp.asarray(logits), jnp.asarray(_paddings(frame_lengths, t)),
                jnp.asarray(labels), jnp.asarray(_paddings(label_lengths, labels.shape[1])))

    def case(args, **kw):
        loss, blank, emit = optax.ctc_loss_with_forward_probs(*args, **kw)
        mean = lambda x: jnp.mean(optax.ctc_loss(x, *args[1:], **kw))  # noqa: E731
        value, grad = jax.value_and_grad(mean)(args[0])
        jitted = jax.jit(lambda *a: optax.ctc_loss(*a, **kw))(*args)
        return {"loss": loss, "logalpha_blank": blank, "logalpha_emit": emit,
                "mean": value, "grad": grad, "jit_loss": jitted}

    # Blank 0; labels with repeats (2 2, 1 1 1), padded with 0s and with a label value.
    basic = batch(4, 9, 5,
                  [[1, 2, 2, 3], [4, 4, 1, 0], [1, 1, 1, 0], [3, 0, 0, 0]],
                  [4, 3, 3, 1], [9, 7, 9, 4])
    # Blank 2 among 6 classes; labels use 0 and repeat; one pads with its last label.
    other_blank = batch(3, 7, 6,
                        [[0, 0, 1, 5, 5], [3, 1, 4, 4, 4], [5, 0, 1, 1, 1]],
                        [5, 2, 4], [7, 6, 7])
    # Sequences too long for their frames: 1 1 1 needs 5 frames, 1 2 3 needs 3.
    too_short = batch(3, 4, 4,
                      [[1, 1, 1], [1, 2, 3], [2, 3, 0]],
                      [3, 3, 2], [4, 2, 4])
    # No labels at all: the loss is that of all-blank paths.
    no_labels = batch(2, 5, 3, np.zeros((2, 0)), [0, 0], [5, 3])

    out = {
        "basic": case(basic),
        "other_blank": case(other_blank, blank_id=2),
        "too_short": case(too_short),
        "log_epsilon": case(too_short, blank_id=3, log_epsilon=-1e3),
        "no_labels": case(no_labels),
    }

    # vmap over a leading axis of two batches of the same shapes.
    second = batch(4, 9, 5, [[2, 2, 2, 1], [1, 3, 3, 0], [4, 0, 0, 0], [1, 2, 1, 2]],
                   [4, 3, 1, 4], [9, 9, 5, 8])
    stacked = [jnp.stack([a, b]) for a, b in zip(basic, second)]
    out["vmap_loss"] = jax.vmap(optax.ctc_loss)(*stacked)
    out["vmap_grad"] = jax.vmap(jax.grad(
        lambda x, *rest: jnp.sum(optax.ctc_loss(x, *rest, blank_id=4))))(*stacked)
    return out


def test_ctc_loss_matches_optax():
    got, ref = check_against_optax("test_optax_ctc", program, rtol=2e-4, atol=2e-5)
    # Sanity of the recording itself: finite, positive losses; jit equals eager; the
    # impossible sequences cost about -log_epsilon, the possible ones far less.
    for name in ("basic", "other_blank", "too_short", "log_epsilon", "no_labels"):
        loss = ref[f"{name}/loss"]
        assert np.all(np.isfinite(loss)) and np.all(loss > 0), name
        np.testing.assert_allclose(got[f"{name}/jit_loss"], got[f"{name}/loss"], rtol=1e-6)
    assert np.all(ref["too_short/loss"][:2] > 5e4) and ref["too_short/loss"][2] < 50
    assert np.all(ref["basic/loss"] < 100)
    np.testing.assert_allclose(ref["vmap_loss"][0], ref["basic/loss"], rtol=1e-5)
