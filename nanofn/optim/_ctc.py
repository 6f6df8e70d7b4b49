"""Connectionist temporal classification (CTC) loss, with optax's names and conventions.

CTC (Graves et al., 2006) scores a label sequence against per-frame class scores without
a given alignment: it sums the probability of every frame-level path that collapses to
the labels once repeats are merged and blanks are dropped. Two labels in a row that are
equal need a blank between them in the path.

The sum is computed by the forward algorithm, one frame at a time with `lax.scan`, in
log space. Improbable states hold ``log_epsilon`` (a large negative number) instead of
``-inf``, so the loss stays finite and differentiable even where no path exists.

Shapes follow optax: ``logits`` is ``(B, T, K)``, ``labels`` is ``(B, N)``, and the
padding indicators are floats where ``1.0`` marks a padded (ignored) frame or label.
Labels must be right-padded. Both functions return one loss per sequence; reduce over
the batch yourself (e.g. ``.mean()``).
"""

from __future__ import annotations

import numpy as np

import nanofn.numpy as jnp
from nanofn import lax
from nanofn.nn._functions import log_softmax, one_hot

__all__ = ["ctc_loss", "ctc_loss_with_forward_probs"]


def _shape(x):
    return tuple(getattr(x, "shape", np.shape(x)))


def _check_args(name, logits, logit_paddings, labels, label_paddings, blank_id):
    """Convert the arguments to arrays and check their ranks, shapes and ``blank_id``."""
    logits = jnp.asarray(logits)
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise TypeError(f"{name}: `logits` must be a floating array, got dtype "
                        f"{logits.dtype}.")
    if logits.ndim != 3:
        raise ValueError(f"{name}: `logits` must have rank 3 (batch, frames, classes), got "
                         f"shape {_shape(logits)}.")
    if logits.shape[1] == 0:
        raise ValueError(f"{name}: `logits` needs at least one frame, got shape "
                         f"{_shape(logits)}.")
    labels = jnp.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{name}: `labels` must have rank 2 (batch, label steps), got "
                         f"shape {_shape(labels)}.")
    logit_paddings = jnp.asarray(logit_paddings)
    if _shape(logit_paddings) != _shape(logits)[:2]:
        raise ValueError(f"{name}: `logit_paddings` must have shape {_shape(logits)[:2]} "
                         f"(the first two axes of `logits` {_shape(logits)}), got "
                         f"{_shape(logit_paddings)}.")
    label_paddings = jnp.asarray(label_paddings)
    if _shape(label_paddings) != _shape(labels):
        raise ValueError(f"{name}: `label_paddings` must have the shape of `labels` "
                         f"{_shape(labels)}, got {_shape(label_paddings)}.")
    batch, _, num_classes = _shape(logits)
    if labels.shape[0] != batch:
        raise ValueError(f"{name}: `labels` has batch size {labels.shape[0]} but `logits` "
                         f"has batch size {batch} (shapes {_shape(labels)} and "
                         f"{_shape(logits)}).")
    if (isinstance(blank_id, (bool, np.bool_)) or not isinstance(blank_id, (int, np.integer))
            or not 0 <= blank_id < num_classes):
        raise ValueError(f"{name}: `blank_id` must be an integer in [0, {num_classes}) for "
                         f"logits with {num_classes} classes, got {blank_id!r}.")
    return logits, logit_paddings, labels, label_paddings


def _forward(name, logits, logit_paddings, labels, label_paddings, blank_id, log_epsilon):
    logits, logit_paddings, labels, label_paddings = _check_args(
        name, logits, logit_paddings, labels, label_paddings, blank_id)
    batch, _, num_classes = logits.shape
    max_labels = labels.shape[1]

    logprobs = log_softmax(logits, axis=-1)
    # The carry is at least as wide as the default float (float32 unless x64 is on), as
    # in optax, where the initial states are made with the default dtype.
    dtype = jnp.promote_types(logprobs.dtype, jnp.zeros(()).dtype)
    log_eps = jnp.asarray(log_epsilon, dtype=dtype)
    label_lengths = max_labels - jnp.sum(label_paddings, axis=1).astype(jnp.int32)

    # same_next[b, n] is 1 where labels[b, n + 1] repeats labels[b, n] (0 for the last).
    same_next = (labels[:, :-1] == labels[:, 1:]).astype(dtype)
    same_next = jnp.pad(same_next, ((0, 0), (0, 1)))

    # Per frame, time-major: the log-probability of a blank, [T, B, 1], and of emitting
    # each label of the sequence, [T, B, N] (selected with a one-hot contraction).
    blank_logprob = jnp.transpose(logprobs[:, :, blank_id:blank_id + 1], (1, 0, 2))
    label_onehot = one_hot(labels, num_classes, dtype=logprobs.dtype)
    emit_logprob = jnp.transpose(jnp.einsum("btk,bnk->btn", logprobs, label_onehot),
                                 (1, 0, 2))

    # Two kinds of state per label position: `blank[:, n]` (n labels done, the path may
    # now sit on blanks), n = 0..N, and `emit[:, n]` (the path is on label n), n < N.
    blank0 = jnp.full((batch, max_labels + 1), log_eps, dtype=dtype).at[:, 0].set(0.0)
    emit0 = jnp.full((batch, max_labels), log_eps, dtype=dtype)

    def add_into_blank(blank, extra):
        # blank[:, n + 1] (+)= extra[:, n] in log space; blank[:, 0] is left as it is.
        return jnp.concatenate([blank[:, :1], jnp.logaddexp(blank[:, 1:], extra)], axis=-1)

    def step(carry, frame):
        blank_prev, emit_prev = carry
        emit_lp, blank_lp, pad = frame
        # Finishing label n without using a frame reaches blank state n + 1, unless
        # label n + 1 repeats it (then a blank frame must come in between).
        blank_reach = add_into_blank(blank_prev, emit_prev + log_eps * same_next)
        # Emit label n: either start it from blank state n or keep emitting it.
        emit_next = jnp.logaddexp(blank_reach[:, :-1] + emit_lp, emit_prev + emit_lp)
        # Stay on blanks; and, before a repeated label, go from label n to a blank frame.
        blank_next = add_into_blank(blank_reach + blank_lp,
                                    emit_prev + blank_lp + log_eps * (1.0 - same_next))
        # A padded frame leaves both states unchanged.
        pad = pad.reshape((batch, 1)).astype(dtype)
        emit_next = pad * emit_prev + (1.0 - pad) * emit_next
        blank_next = pad * blank_prev + (1.0 - pad) * blank_next
        return (blank_next, emit_next), (blank_next, emit_next)

    frames = (emit_logprob, blank_logprob, jnp.transpose(logit_paddings, (1, 0)))
    _, (logalpha_blank, logalpha_emit) = lax.scan(step, (blank0, emit0), frames)

    # After the last frame, a path that ends on label n also counts for blank state n + 1.
    final_blank = add_into_blank(logalpha_blank[-1], logalpha_emit[-1])
    logalpha_blank = logalpha_blank.at[-1].set(final_blank)

    at_length = one_hot(label_lengths, max_labels + 1, dtype=dtype)
    loss = -jnp.einsum("bn,bn->b", final_blank, at_length)
    return loss, logalpha_blank, logalpha_emit


def ctc_loss_with_forward_probs(logits, logit_paddings, labels, label_paddings, *,
                                blank_id=0, log_epsilon=-1e5):
    r"""CTC loss per sequence, with the log forward probabilities of the forward algorithm.

    The forward probabilities come in two parts, for each frame ``t`` and label
    position ``n``: ``logalpha_blank[t, b, n]``, the log-probability of the paths over
    frames ``0..t`` that have produced the first ``n`` labels and may continue with a
    blank (after the last frame it also counts paths ending on label ``n - 1``), and
    ``logalpha_emit[t, b, n]``, that of the paths whose frame ``t`` emits label ``n``.
    States no path reaches hold values near ``log_epsilon`` (or multiples of it).

    Args:
      logits: ``(B, T, K)`` array of class scores: B sequences, T frames, K classes
        (the blank included). A log-softmax over the last axis is taken inside.
      logit_paddings: ``(B, T)`` array, ``1.0`` where a frame is padding (ignored) and
        ``0.0`` where it is real.
      labels: ``(B, N)`` array of label ids, right-padded to N.
      label_paddings: ``(B, N)`` array, ``1.0`` where a label is padding and ``0.0``
        where it is real; each row must be zeros followed by ones.
      blank_id: the class of the blank symbol, an integer in ``[0, K)`` (static).
      log_epsilon: the stand-in for ``log(0)``.

    Returns:
      ``(loss, logalpha_blank, logalpha_emit)``: the ``(B,)`` negative
      log-likelihoods, and the ``(T, B, N + 1)`` and ``(T, B, N)`` log forward
      probabilities.

    Raises:
      ValueError: when a shape does not fit (the message names the argument) or
        ``blank_id`` is not a class of ``logits``.
      TypeError: when ``logits`` is not floating.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim._ctc import ctc_loss_with_forward_probs
        >>> logits = jnp.zeros((1, 3, 2))            # every class equally likely
        >>> loss, blank, emit = ctc_loss_with_forward_probs(
        ...     logits, jnp.zeros((1, 3)), jnp.array([[1]]), jnp.zeros((1, 1)))
        >>> print(blank.shape, emit.shape)
        (3, 1, 2) (3, 1, 1)
        >>> print(round(float(jnp.exp(-loss[0])), 4))  # 6 of the 8 paths give "1"
        0.75
    """
    return _forward("ctc_loss_with_forward_probs", logits, logit_paddings, labels,
                    label_paddings, blank_id, log_epsilon)


def ctc_loss(logits, logit_paddings, labels, label_paddings, *, blank_id=0,
             log_epsilon=-1e5):
    """CTC loss: the negative log-likelihood of each label sequence, summed over alignments.

    The arguments are those of :func:`ctc_loss_with_forward_probs`: ``logits`` of shape
    ``(B, T, K)`` with ``logit_paddings`` ``(B, T)``, ``labels`` of shape ``(B, N)`` with
    ``label_paddings`` ``(B, N)`` (``1.0`` marks padding), the blank class ``blank_id``
    and ``log_epsilon`` standing for ``log(0)``. Works under ``jit``, ``vmap`` and
    ``grad``.

    Returns:
      The ``(B,)`` array of per-sequence losses.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn.optim._ctc import ctc_loss
        >>> logits = jnp.zeros((1, 2, 2))
        >>> labels, no_pad = jnp.array([[1]]), jnp.zeros((1, 1))
        >>> # "1" comes from the paths 1 1, 0 1 and 1 0: probability 3/4.
        >>> print(round(float(ctc_loss(logits, jnp.zeros((1, 2)), labels, no_pad)[0]), 4))
        0.2877
        >>> g = nanofn.grad(lambda x: ctc_loss(x, jnp.zeros((1, 2)), labels, no_pad).sum())
        >>> print(g(logits).shape)
        (1, 2, 2)
    """
    loss, _, _ = _forward("ctc_loss", logits, logit_paddings, labels, label_paddings,
                          blank_id, log_epsilon)
    return loss
