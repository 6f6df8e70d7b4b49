"""CTC loss without JAX: against a brute-force sum over every alignment, derivatives
against finite differences (float64), jit/vmap against eager, the forward probabilities'
meaning, dtypes, and errors that name the bad argument."""

import itertools

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp
from nanofn.optim._ctc import ctc_loss, ctc_loss_with_forward_probs
from nanofn.testing import check_grads


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _collapse(path, blank):
    out, prev = [], None
    for s in path:
        if s != prev and s != blank:
            out.append(s)
        prev = s
    return out


def _brute_force_loss(logits, frames, labels, blank):
    """-log of the summed probability of every path over the first `frames` frames that
    collapses to `labels` (merge repeats, then drop blanks); inf when there is none."""
    logp = _log_softmax(np.asarray(logits, np.float64))[:frames]
    num_classes = logp.shape[-1]
    total = 0.0
    for path in itertools.product(range(num_classes), repeat=frames):
        if _collapse(path, blank) == list(labels):
            total += np.exp(sum(logp[t, s] for t, s in enumerate(path)))
    return -np.log(total) if total > 0 else np.inf


def _paddings(lengths, size, dtype=np.float64):
    return (np.arange(size)[None, :] >= np.asarray(lengths)[:, None]).astype(dtype)


def _case(seed, batch, frames, classes, labels, label_lengths, frame_lengths,
          dtype=np.float64):
    rng = np.random.default_rng(seed)
    logits = (1.5 * rng.normal(size=(batch, frames, classes))).astype(dtype)
    labels = np.asarray(labels, np.int32).reshape(batch, -1)
    return (logits, _paddings(frame_lengths, frames, dtype), labels,
            _paddings(label_lengths, labels.shape[1], dtype))


CASES = [
    # (seed, B, T, K, labels, label lengths, frame lengths, blank)
    (0, 3, 4, 3, [[1, 2], [1, 1], [2, 0]], [2, 2, 1], [4, 4, 3], 0),
    (1, 3, 5, 3, [[1, 1, 2], [2, 2, 2], [1, 2, 1]], [3, 2, 3], [5, 5, 4], 0),
    (2, 2, 5, 3, [[0, 0, 1], [1, 0, 1]], [3, 3], [5, 4], 2),   # blank 2, label 0 repeats
    (3, 2, 4, 4, [[3, 3, 1], [0, 2, 2]], [2, 3], [4, 4], 1),   # padded with a repeat
    (4, 2, 3, 3, [[1, 2], [2, 1]], [0, 1], [3, 1], 0),         # empty and one-label rows
]


@pytest.mark.parametrize("seed,b,t,k,labels,label_lengths,frame_lengths,blank", CASES)
def test_matches_brute_force(seed, b, t, k, labels, label_lengths, frame_lengths, blank):
    logits, lpad, labels, ypad = _case(seed, b, t, k, labels, label_lengths, frame_lengths)
    got = np.asarray(ctc_loss(logits, lpad, labels, ypad, blank_id=blank))
    assert got.dtype == np.float64
    for i in range(b):
        want = _brute_force_loss(logits[i], frame_lengths[i], labels[i, :label_lengths[i]],
                                 blank)
        np.testing.assert_allclose(got[i], want, rtol=1e-10, atol=1e-10)


def test_impossible_sequence_costs_about_minus_log_epsilon():
    # "1 1" needs three frames (1, blank, 1); with two the loss is ~ -log_epsilon.
    logits, lpad, labels, ypad = _case(5, 1, 2, 3, [[1, 1]], [2], [2])
    assert np.isinf(_brute_force_loss(logits[0], 2, [1, 1], 0))
    for eps in (-1e5, -1e3):
        loss = float(ctc_loss(logits, lpad, labels, ypad, log_epsilon=eps)[0])
        assert -eps < loss < -eps + 50


def test_float32_close_to_float64_brute_force():
    logits, lpad, labels, ypad = _case(6, 2, 5, 4, [[1, 3, 3], [2, 2, 0]], [3, 2], [5, 4],
                                       dtype=np.float32)
    loss = np.asarray(ctc_loss(logits, lpad, labels, ypad))
    assert loss.dtype == np.float32
    for i, (n, f) in enumerate([(3, 5), (2, 4)]):
        want = _brute_force_loss(logits[i], f, labels[i, :n], 0)
        np.testing.assert_allclose(loss[i], want, rtol=2e-6)


def test_forward_probabilities():
    b, t, k = 2, 5, 4
    logits, lpad, labels, ypad = _case(7, b, t, k, [[1, 2, 2], [3, 1, 0]], [3, 2], [5, 5])
    loss, blank, emit = ctc_loss_with_forward_probs(logits, lpad, labels, ypad)
    assert blank.shape == (t, b, 4) and emit.shape == (t, b, 3)
    logp = _log_softmax(logits)
    blank, emit = np.asarray(blank), np.asarray(emit)
    # blank state 0 is the all-blank path; the loss reads the final blank state at the
    # label length.
    np.testing.assert_allclose(blank[:, :, 0], np.cumsum(logp[:, :, 0], axis=1).T,
                               rtol=1e-12)
    np.testing.assert_allclose(-np.asarray(loss), blank[-1, [0, 1], [3, 2]], rtol=1e-12)
    # emit state 0 at frame 0 is label 0 emitted straight away.
    np.testing.assert_allclose(emit[0, :, 0], logp[[0, 1], 0, labels[:, 0]], rtol=1e-12)


def test_padded_frames_keep_the_state_and_get_no_gradient():
    logits, lpad, labels, ypad = _case(8, 2, 6, 3, [[1, 2], [2, 1]], [2, 2], [4, 6])
    loss, blank, emit = ctc_loss_with_forward_probs(logits, lpad, labels, ypad)
    blank, emit = np.asarray(blank), np.asarray(emit)
    np.testing.assert_array_equal(emit[4, 0], emit[3, 0])
    np.testing.assert_array_equal(blank[4, 0], blank[3, 0])
    # Changing padded logits changes nothing.
    other = logits.copy()
    other[0, 4:] += 10.0
    np.testing.assert_allclose(ctc_loss(other, lpad, labels, ypad), loss, rtol=1e-12)
    grad = nanofn.grad(lambda x: jnp.sum(ctc_loss(x, lpad, labels, ypad)))(logits)
    np.testing.assert_array_equal(np.asarray(grad)[0, 4:], 0.0)


def test_one_to_one_alignment_gradient():
    # As many frames as labels (no repeats): one path, so d loss / d logits is
    # softmax - one_hot(labels) on every frame.
    logits, lpad, labels, ypad = _case(9, 2, 4, 5, [[1, 2, 3, 4], [4, 3, 1, 2]], [4, 4],
                                       [4, 4])
    grad = nanofn.grad(lambda x: jnp.sum(ctc_loss(x, lpad, labels, ypad)))(logits)
    want = np.exp(_log_softmax(logits)) - np.eye(5)[labels]
    np.testing.assert_allclose(grad, want, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("blank", [0, 2])
def test_check_grads_float64(blank):
    logits, lpad, labels, ypad = _case(10, 2, 5, 3, [[1, 1, 2], [0, 1, 1]], [3, 2], [5, 4])
    labels = np.where(labels == blank, (blank + 1) % 3, labels)

    def f(x):
        return ctc_loss(x, lpad, labels, ypad, blank_id=blank)

    check_grads(f, (logits,), order=1, modes=("fwd", "rev"))

    def g(x):
        loss, blank_alpha, emit_alpha = ctc_loss_with_forward_probs(
            x, lpad, labels, ypad, blank_id=blank, log_epsilon=-30.0)
        return loss, blank_alpha, emit_alpha

    check_grads(g, (logits,), order=1, modes=("rev",))


def test_jit_and_vmap_match_eager():
    batches = [_case(s, 3, 5, 4, [[1, 2, 2], [3, 3, 0], [2, 1, 3]], [3, 2, 3], [5, 3, 4],
                     dtype=np.float32) for s in (11, 12)]
    eager = [np.asarray(ctc_loss(*a, blank_id=0)) for a in batches]
    jitted = nanofn.jit(ctc_loss, static_argnames="blank_id")
    for args, want in zip(batches, eager):
        np.testing.assert_allclose(jitted(*args, blank_id=0), want, rtol=1e-6)
    stacked = [np.stack(x) for x in zip(*batches)]
    np.testing.assert_allclose(nanofn.vmap(ctc_loss)(*stacked), np.stack(eager), rtol=1e-6)
    out = nanofn.jit(nanofn.vmap(ctc_loss_with_forward_probs))(*stacked)
    assert out[1].shape == (2, 5, 3, 4) and out[2].shape == (2, 5, 3, 3)
    np.testing.assert_allclose(out[0], np.stack(eager), rtol=1e-6)
    g = nanofn.jit(nanofn.grad(lambda x, *r: jnp.mean(ctc_loss(x, *r))))
    g_eager = nanofn.grad(lambda x, *r: jnp.mean(ctc_loss(x, *r)))
    np.testing.assert_allclose(g(*batches[0]), g_eager(*batches[0]), rtol=1e-5, atol=1e-7)


def test_low_precision_logits_give_float32():
    logits, lpad, labels, ypad = _case(13, 1, 3, 3, [[1]], [1], [3], dtype=np.float32)
    loss = ctc_loss(logits.astype(np.float16), lpad, labels, ypad)
    assert np.asarray(loss).dtype == np.float32


def _good():
    return _case(14, 2, 4, 3, [[1, 2], [2, 1]], [2, 1], [4, 3])


@pytest.mark.parametrize("fn", [ctc_loss, ctc_loss_with_forward_probs])
@pytest.mark.parametrize("index,value,match", [
    (0, np.zeros((2, 4)), r"`logits` must have rank 3 .*\(2, 4\)"),
    (0, np.zeros((2, 4, 3), np.int32), r"`logits` must be a floating array"),
    (0, np.zeros((2, 0, 3)), r"`logits` needs at least one frame"),
    (1, np.zeros((2, 5)), r"`logit_paddings` must have shape \(2, 4\).*got \(2, 5\)"),
    (2, np.zeros((2,), np.int32), r"`labels` must have rank 2 .*\(2,\)"),
    (2, np.zeros((3, 2), np.int32), r"`label_paddings` must have the shape of `labels`"),
    (3, np.zeros((2, 3)), r"`label_paddings` must have the shape of `labels` \(2, 2\), got"),
])
def test_shape_errors_name_the_argument(fn, index, value, match):
    args = list(_good())
    args[index] = value
    with pytest.raises((ValueError, TypeError), match=match) as info:
        fn(*args)
    assert fn.__name__ in str(info.value)


def test_batch_mismatch_and_blank_id_errors():
    logits, lpad, labels, ypad = _good()
    with pytest.raises(ValueError, match=r"ctc_loss: `labels` has batch size 3 but "):
        ctc_loss(logits, lpad, np.zeros((3, 2), np.int32), np.zeros((3, 2)))
    for bad in (-1, 3, 1.0, True):
        with pytest.raises(ValueError, match=r"`blank_id` must be an integer in \[0, 3\)"):
            ctc_loss(logits, lpad, labels, ypad, blank_id=bad)
