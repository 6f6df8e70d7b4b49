"""Loss functions with optax's names and meanings (also importable as nanofn.optim.losses).

Every loss returns one value per example (or per element) and never reduces over the
batch: take `.mean()` (or a weighted sum) yourself, as with optax:

    loss = softmax_cross_entropy_with_integer_labels(logits, labels).mean()

Shapes are checked and mismatches raise a `ValueError` naming both shapes. Integer
labels are also checked to lie in range when their values are known (outside `jit`);
under `jit` an out-of-range label cannot be detected and contributes a loss equal to the
log-normaliser, so validate labels before tracing.
"""

from __future__ import annotations

import math

import numpy as np

from nanofn import numpy as fnp
from nanofn._core import Tracer
from nanofn.nn._functions import log_sigmoid, log_softmax, logsumexp, one_hot

__all__ = [
    "absolute_error", "binary_cross_entropy", "cosine_distance", "cosine_similarity",
    "hinge_loss", "huber_loss", "kl_divergence", "kl_divergence_with_log_targets", "l2_loss",
    "log_cosh", "mae", "nll", "pairwise_distance", "sigmoid_binary_cross_entropy", "smooth_labels",
    "softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels", "squared_error",
    "triplet_margin_loss",
]


# ------------------------------------------------------------------------ checks


def _shape(x):
    return tuple(getattr(x, "shape", np.shape(x)))


def _floating(name, arg, x):
    x = fnp.asarray(x)
    if not fnp.issubdtype(x.dtype, fnp.floating):
        raise TypeError(f"{name}: {arg} must be a floating array, got dtype {x.dtype}; "
                        f"convert it with .astype(jnp.float32)")
    return x


def _same_shape(name, a_name, a, b_name, b):
    if _shape(a) != _shape(b):
        raise ValueError(f"{name}: {a_name} and {b_name} must have the same shape, got "
                         f"{a_name} {_shape(a)} and {b_name} {_shape(b)}")


def _broadcastable(name, a_name, a, b_name, b):
    try:
        np.broadcast_shapes(_shape(a), _shape(b))
    except ValueError:
        raise ValueError(f"{name}: {b_name} of shape {_shape(b)} does not broadcast with "
                         f"{a_name} of shape {_shape(a)}") from None


def _errors(name, predictions, targets):
    predictions = _floating(name, "predictions", predictions)
    if targets is None:
        return predictions
    targets = fnp.asarray(targets)
    _broadcastable(name, "predictions", predictions, "targets", targets)
    return predictions - targets


def _concrete(x):
    """The numpy value of `x` if it is known now (not under jit), else None."""
    if isinstance(x, Tracer):
        return None
    return np.asarray(x)


# ------------------------------------------------------------------------ regression


def squared_error(predictions, targets=None):
    """Elementwise `(predictions - targets) ** 2` (targets default to zeros).

    Args:
      predictions: floating array of any shape.
      targets: array broadcastable to `predictions`, or None for zeros.

    Returns:
      An array of the broadcast shape.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> nanofn.nn.losses.squared_error(jnp.array([1.0, 3.0]), jnp.array([0.0, 1.0]))
        Array([1., 4.], dtype=float32)
    """
    e = _errors("squared_error", predictions, targets)
    return e * e


def l2_loss(predictions, targets=None):
    """Half the squared error: `0.5 * (predictions - targets) ** 2`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> nanofn.nn.losses.l2_loss(jnp.array([2.0]))
        Array([2.], dtype=float32)
    """
    return 0.5 * squared_error(predictions, targets)


def mae(predictions, targets=None):
    """Mean absolute error over the last axis: `mean(|predictions - targets|, axis=-1)`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> nanofn.nn.losses.mae(jnp.array([[1.0, -3.0]]), jnp.array([[0.0, 0.0]]))
        Array([2.], dtype=float32)
    """
    return fnp.mean(absolute_error(predictions, targets), axis=-1)


def absolute_error(predictions, targets=None):
    """Elementwise `|predictions - targets|` (the mean of it is the MAE).

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> nanofn.nn.losses.absolute_error(jnp.array([1.0, -3.0]))
        Array([1., 3.], dtype=float32)
    """
    return fnp.abs(_errors("absolute_error", predictions, targets))


def huber_loss(predictions, targets=None, *, delta=1.0):
    """Huber loss: `0.5 e^2` for `|e| <= delta`, `delta * (|e| - 0.5 delta)` beyond.

    Args:
      predictions: floating array.
      targets: array broadcastable to `predictions`, or None for zeros.
      delta: where the loss turns from quadratic to linear.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> nanofn.nn.losses.huber_loss(jnp.array([0.5, 3.0]))
        Array([0.125, 2.5  ], dtype=float32)
    """
    abs_e = fnp.abs(_errors("huber_loss", predictions, targets))
    quadratic = fnp.minimum(abs_e, delta)
    linear = abs_e - quadratic  # = max(|e| - delta, 0), without a doubled gradient at the kink
    return 0.5 * quadratic * quadratic + delta * linear


def log_cosh(predictions, targets=None):
    """`log(cosh(predictions - targets))`, computed without overflow.

    About `e^2 / 2` for small errors and `|e| - log 2` for large ones.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> nanofn.nn.losses.log_cosh(jnp.array([0.0, 1000.0])).round(3)
        Array([  0.   , 999.307], dtype=float32)
    """
    e = _errors("log_cosh", predictions, targets)
    return fnp.logaddexp(e, -e) - float(np.log(2.0))


def cosine_similarity(predictions, targets, *, epsilon=0.0, axis=-1, where=None):
    """Cosine of the angle between `predictions` and `targets` along `axis`.

    Args:
      predictions: floating array `[..., dim]`.
      targets: floating array of the same shape.
      epsilon: lower bound on the squared norms (avoids dividing by zero).
      axis: the axis (or axes) holding the vectors.
      where: optional boolean mask (broadcastable to `predictions`): the elements the
        norms and the product count.

    Returns:
      An array of shape `[...]`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> float(nanofn.nn.losses.cosine_similarity(jnp.array([1.0, 0.0]),
        ...                                          jnp.array([1.0, 1.0])).round(4))
        0.7071
    """
    a = _floating("cosine_similarity", "predictions", predictions)
    b = _floating("cosine_similarity", "targets", targets)
    _broadcastable("cosine_similarity", "predictions", a, "targets", b)
    a_norm = fnp.sqrt(fnp.maximum(fnp.sum(a * a, axis=axis, keepdims=True, where=where),
                                  epsilon))
    b_norm = fnp.sqrt(fnp.maximum(fnp.sum(b * b, axis=axis, keepdims=True, where=where),
                                  epsilon))
    return fnp.sum((a / a_norm) * (b / b_norm), axis=axis, where=where)


def cosine_distance(predictions, targets, *, epsilon=0.0, axis=-1, where=None):
    """`1 - cosine_similarity(predictions, targets)` (the same arguments).

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> float(nanofn.nn.losses.cosine_distance(jnp.array([1.0, 0.0]),
        ...                                        jnp.array([-1.0, 0.0])))
        2.0
    """
    return 1.0 - cosine_similarity(predictions, targets, epsilon=epsilon, axis=axis,
                                   where=where)


def pairwise_distance(x1, x2, *, norm_degree=2, eps=1e-6, axis=-1):
    """The `norm_degree`-norm of `x1 - x2` along `axis`, with `eps` added inside the root
    so its gradient is finite when `x1 == x2`: `(sum(|x1 - x2| ** p) + eps) ** (1 / p)`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> float(nanofn.nn.losses.pairwise_distance(jnp.array([3.0, 0.0]),
        ...                                          jnp.array([0.0, 4.0]), eps=0.0))
        5.0
    """
    a = _floating("pairwise_distance", "x1", x1)
    b = _floating("pairwise_distance", "x2", x2)
    _broadcastable("pairwise_distance", "x1", a, "x2", b)
    p = float(norm_degree)
    d = fnp.abs(a - b)
    powered = d * d if p == 2 else d ** p
    return (fnp.sum(powered, axis=axis) + eps) ** (1.0 / p)


def triplet_margin_loss(anchors, positives, negatives, axis=-1, norm_degree=2, margin=1.0,
                        eps=1e-6):
    """`max(d(anchor, positive) - d(anchor, negative) + margin, 0)` with `d` the
    `pairwise_distance`: pulls positives closer to the anchor than negatives, by `margin`.

    Args:
      anchors, positives, negatives: floating arrays `[batch, dim]` of one shape.
      axis: the axis holding the embeddings.
      norm_degree: the norm of the distance (2: Euclidean).
      margin: the required gap between the two distances.
      eps: added inside the norm's root, for a finite gradient at zero distance.

    Returns:
      One loss per triplet, shape `[batch]`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> a, p, n = jnp.array([[0.0, 0.0]]), jnp.array([[0.0, 1.0]]), jnp.array([[3.0, 0.0]])
        >>> nanofn.nn.losses.triplet_margin_loss(a, p, n, eps=0.0)
        Array([0.], dtype=float32)
    """
    _same_shape("triplet_margin_loss", "anchors", anchors, "positives", positives)
    _same_shape("triplet_margin_loss", "anchors", anchors, "negatives", negatives)
    pos = pairwise_distance(anchors, positives, norm_degree=norm_degree, eps=eps, axis=axis)
    neg = pairwise_distance(anchors, negatives, norm_degree=norm_degree, eps=eps, axis=axis)
    return fnp.maximum(pos - neg + margin, 0.0)


# ------------------------------------------------------------------------ classification


def _class_mask(where, logits, axis):
    """`where` as a mask of `logits`' shape: one without the class axis gets it back."""
    if where is None:
        return None
    where = fnp.asarray(where)
    if where.ndim != logits.ndim:
        where = fnp.expand_dims(where, axis)
    return where


def softmax_cross_entropy(logits, labels, axis=-1, where=None):
    """Cross entropy between `softmax(logits)` and the distributions `labels`:
    `-sum(labels * log_softmax(logits), axis)`.

    Args:
      logits: unnormalised log-probabilities `[..., num_classes]`.
      labels: probabilities (e.g. one-hot) of the same shape.
      axis: the class axis (or axes).
      where: optional boolean mask of the classes that take part (as optax's `where`):
        the softmax and the sum run over those only.

    Returns:
      One loss per example, shape `[...]`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
        >>> labels = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        >>> nanofn.nn.losses.softmax_cross_entropy(logits, labels).round(4)
        Array([0.2761, 2.9518], dtype=float32)
    """
    logits = _floating("softmax_cross_entropy", "logits", logits)
    labels = fnp.asarray(labels)
    _same_shape("softmax_cross_entropy", "logits", logits, "labels", labels)
    where = _class_mask(where, logits, axis)
    log_probs = log_softmax(logits, axis=axis, where=where)
    return -fnp.sum(labels * log_probs, axis=axis, where=where)


def _check_integer_labels(name, logits, labels, axis, where=None):
    labels = fnp.asarray(labels)
    if not fnp.issubdtype(labels.dtype, fnp.integer):
        raise TypeError(f"{name}: labels must be integers (class indices), got dtype "
                        f"{labels.dtype}; for one-hot or soft labels use softmax_cross_entropy")
    ax = axis % logits.ndim if logits.ndim else 0
    expected = tuple(d for i, d in enumerate(logits.shape) if i != ax)
    if tuple(labels.shape) != expected:
        raise ValueError(f"{name}: labels must have the shape of logits without the class axis, "
                         f"{expected} for logits of shape {tuple(logits.shape)} (axis={axis}); "
                         f"got labels of shape {tuple(labels.shape)}")
    num_classes = logits.shape[ax]
    value = _concrete(labels)
    if value is not None and where is not None:
        # only the examples `where` keeps need a valid label: a masked-out one (padding,
        # often labelled -1) has loss 0 whatever its label, as in optax
        mask = _concrete(where)
        keep = None if mask is None else np.any(np.broadcast_to(mask, logits.shape), axis=ax)
        value = None if keep is None else value[keep]
    if value is not None and value.size:
        lo, hi = int(value.min()), int(value.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name}: labels must lie in [0, {num_classes}) for logits with "
                             f"{num_classes} classes, found label {bad}")
    return labels, ax, num_classes


def softmax_cross_entropy_with_integer_labels(logits, labels, axis=-1, where=None):
    """Cross entropy with integer class labels: `logsumexp(logits) - logits[label]`.

    Args:
      logits: unnormalised log-probabilities `[..., num_classes]`.
      labels: integer classes in `[0, num_classes)`, shape `[...]`.
      axis: the class axis of `logits`; a tuple of axes is one class axis, flattened in
        order.
      where: optional boolean mask of the classes that take part (as optax's `where`):
        the normaliser sums over those only, and an example with no class in it has loss
        0 (its label is not looked at, so padding may carry any label, such as -1).

    Returns:
      One loss per example, shape `[...]`.

    Raises:
      ValueError: labels of the wrong shape, or (when their values are known) out of range
        in an example that takes part.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
        >>> loss = nanofn.nn.losses.softmax_cross_entropy_with_integer_labels
        >>> loss(logits, jnp.array([0, 1])).round(4)
        Array([0.2761, 2.9518], dtype=float32)
    """
    name = "softmax_cross_entropy_with_integer_labels"
    logits = _floating(name, "logits", logits)
    if logits.ndim == 0:
        raise ValueError(f"{name}: logits need a class axis, got a scalar")
    where = _class_mask(where, logits, axis)
    if isinstance(axis, (tuple, list)):  # the class axes last, flattened into one
        class_axes = tuple(sorted(a % logits.ndim for a in axis))
        batch_axes = tuple(a for a in range(logits.ndim) if a not in class_axes)
        order = batch_axes + class_axes

        def flat(x):
            x = fnp.transpose(x, order)
            return x.reshape(x.shape[:len(batch_axes)] + (-1,))
        where = None if where is None else flat(fnp.broadcast_to(where, logits.shape))
        logits = flat(logits)
        axis = -1
    labels, ax, n = _check_integer_labels(name, logits, labels, axis, where)
    if where is not None:  # the kernel has no mask: written with operations
        kept = fnp.any(fnp.broadcast_to(where, logits.shape), axis=ax)
        labels = fnp.where(kept, labels, 0)  # a masked-out example's label is never used
        picked = fnp.take_along_axis(logits, fnp.expand_dims(labels, ax), axis=ax)
        loss = logsumexp(logits, axis=ax, where=where) - fnp.squeeze(picked, ax)
        return fnp.where(kept, loss, 0.0)
    # one kernel pass forward (loss and the softmax kept for the backward), one backward
    from nanofn.ops import _nn
    if ax != logits.ndim - 1:
        logits = fnp.moveaxis(logits, ax, -1)
    return _nn.ce_int_p.bind(logits, labels)[0]


def nll(log_probs, labels, axis=-1):
    """Negative log-likelihood of integer labels under log-probabilities: `-log_probs[label]`.

    Use it after a `LogSoftmax` layer; `softmax_cross_entropy_with_integer_labels(logits,
    labels)` equals `nll(log_softmax(logits), labels)`.

    Args:
      log_probs: log-probabilities `[..., num_classes]`.
      labels: integer classes in `[0, num_classes)`, shape `[...]`.
      axis: the class axis of `log_probs`.

    Returns:
      One loss per example, shape `[...]`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> logp = jnp.log(jnp.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))
        >>> nanofn.nn.losses.nll(logp, jnp.array([0, 1])).round(4)
        Array([0.6931, 0.2231], dtype=float32)
    """
    log_probs = _floating("nll", "log_probs", log_probs)
    if log_probs.ndim == 0:
        raise ValueError("nll: log_probs need a class axis, got a scalar")
    labels, ax, n = _check_integer_labels("nll", log_probs, labels, axis)
    return -fnp.sum(log_probs * one_hot(labels, n, dtype=log_probs.dtype, axis=ax), axis=ax)


def sigmoid_binary_cross_entropy(logits, labels):
    """Elementwise binary cross entropy of `sigmoid(logits)` against `labels` in [0, 1]:
    `-labels * log_sigmoid(logits) - (1 - labels) * log_sigmoid(-logits)`.

    Args:
      logits: floating array of log-odds.
      labels: array of the same shape with values in [0, 1].

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> loss = nanofn.nn.losses.sigmoid_binary_cross_entropy
        >>> loss(jnp.array([-1000.0, 1000.0]), jnp.array([1.0, 0.0]))
        Array([1000., 1000.], dtype=float32)
        >>> round(float(loss(jnp.array(0.0), jnp.array(1.0))), 4)
        0.6931
    """
    logits = _floating("sigmoid_binary_cross_entropy", "logits", logits)
    labels = fnp.astype(fnp.asarray(labels), logits.dtype)
    _broadcastable("sigmoid_binary_cross_entropy", "logits", logits, "labels", labels)
    return -labels * log_sigmoid(logits) - (1.0 - labels) * log_sigmoid(-logits)


def binary_cross_entropy(probabilities, labels, *, epsilon=1e-7):
    """Binary cross entropy from probabilities (not logits):
    `-labels * log(p) - (1 - labels) * log(1 - p)` with `p` clipped to
    `[epsilon, 1 - epsilon]`. Prefer `sigmoid_binary_cross_entropy` on logits: it is exact
    where this one must clip.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> loss = nanofn.nn.losses.binary_cross_entropy
        >>> loss(jnp.array([0.5, 1.0]), jnp.array([1.0, 1.0])).round(4)
        Array([0.6931, 0.    ], dtype=float32)
    """
    p = _floating("binary_cross_entropy", "probabilities", probabilities)
    labels = fnp.astype(fnp.asarray(labels), p.dtype)
    _broadcastable("binary_cross_entropy", "probabilities", p, "labels", labels)
    p = fnp.clip(p, epsilon, 1.0 - epsilon)
    return -labels * fnp.log(p) - (1.0 - labels) * fnp.log1p(-p)


def hinge_loss(predictor_outputs, targets):
    """Binary hinge loss `max(0, 1 - predictor_outputs * targets)`, targets in {-1, 1}.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> nanofn.nn.losses.hinge_loss(jnp.array([0.5, 2.0]), jnp.array([1.0, -1.0]))
        Array([0.5, 3. ], dtype=float32)
    """
    out = _floating("hinge_loss", "predictor_outputs", predictor_outputs)
    targets = fnp.asarray(targets)
    _broadcastable("hinge_loss", "predictor_outputs", out, "targets", targets)
    return fnp.maximum(0.0, 1.0 - out * targets)


def _xlogx_ratio(targets, log_targets, log_predictions):
    # targets * (log targets - log predictions), with 0 * log 0 = 0
    safe = fnp.where(targets > 0, log_targets, 0.0)
    return fnp.where(targets > 0, targets * (safe - log_predictions), 0.0)


def kl_divergence(log_predictions, targets, axis=-1, where=None):
    """KL divergence `KL(targets || predictions)` along `axis`, from log-probabilities
    `log_predictions` and probabilities `targets` (terms with `targets == 0` count 0);
    `where`, a boolean mask, keeps only those terms.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> p = jnp.array([0.5, 0.5])
        >>> float(nanofn.nn.losses.kl_divergence(jnp.log(p), jnp.array([1.0, 0.0])).round(4))
        0.6931
    """
    log_p = _floating("kl_divergence", "log_predictions", log_predictions)
    t = _floating("kl_divergence", "targets", targets)
    _broadcastable("kl_divergence", "log_predictions", log_p, "targets", t)
    log_t = fnp.log(fnp.where(t > 0, t, 1.0))
    return fnp.sum(_xlogx_ratio(t, log_t, log_p), axis=axis, where=where)


def kl_divergence_with_log_targets(log_predictions, log_targets, axis=-1, where=None):
    """KL divergence from log-probabilities on both sides:
    `sum(exp(log_targets) * (log_targets - log_predictions), axis)`; `where`, a boolean
    mask, keeps only those terms.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> lp = jnp.log(jnp.array([0.5, 0.5]))
        >>> float(nanofn.nn.losses.kl_divergence_with_log_targets(lp, lp))
        0.0
    """
    log_p = _floating("kl_divergence_with_log_targets", "log_predictions", log_predictions)
    log_t = _floating("kl_divergence_with_log_targets", "log_targets", log_targets)
    _broadcastable("kl_divergence_with_log_targets", "log_predictions", log_p, "log_targets",
                   log_t)
    return fnp.sum(fnp.exp(log_t) * (log_t - log_p), axis=axis, where=where)


def smooth_labels(labels, alpha, *, axis=-1, where=None):
    """Label smoothing: `(1 - alpha) * labels + alpha / num_classes`, with `num_classes`
    the size of `axis` (a tuple: their product), or with a boolean mask `where` the
    number of classes it keeps along `axis`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> nanofn.nn.losses.smooth_labels(jnp.array([1.0, 0.0]), 0.5)
        Array([0.75, 0.25], dtype=float32)
    """
    labels = _floating("smooth_labels", "labels", labels)
    if where is not None:
        num_classes = fnp.sum(fnp.asarray(where), axis=axis, keepdims=True)
    elif axis is None:
        num_classes = labels.size
    else:
        axes = axis if isinstance(axis, (tuple, list)) else (axis,)
        num_classes = math.prod(labels.shape[a] for a in axes)
    return (1.0 - alpha) * labels + alpha / num_classes

