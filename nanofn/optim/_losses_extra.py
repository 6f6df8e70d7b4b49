"""More of ``optax.losses``: sparsemax losses, Fenchel-Young losses and a ranking loss.

- :func:`sparsemax_loss`: the binary sparsemax loss, zero exactly where the sparse
  sigmoid of the logit equals the (0/1) label;
- :func:`multiclass_sparsemax_loss`: the multiclass sparsemax loss, the Fenchel-Young loss
  of the Gini negentropy, whose gradient is ``sparsemax(scores) - one_hot(label)``;
- :func:`make_fenchel_young_loss`: builds the Fenchel-Young loss
  ``max_fun(scores) - <targets, scores>`` of any "max function" (``logsumexp`` gives the
  softmax cross-entropy with soft targets);
- :func:`ranking_softmax_loss`: the listwise softmax cross-entropy of learning to rank,
  with optional masks of valid items, item weights and a reduction over lists.

Names, arguments, defaults and numerics (values and gradients) follow optax 0.2.8. Every
function is built from traceable operations, so it works under ``nanofn.jit``,
``nanofn.vmap`` and ``nanofn.grad``.

Example:
    >>> import nanofn.numpy as jnp
    >>> from nanofn.optim import _losses_extra as losses
    >>> scores = jnp.array([[2.0, 1.0, -1.0]])
    >>> print(round(float(losses.multiclass_sparsemax_loss(scores, jnp.array([0]))[0]), 4))
    0.0
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

import nanofn
import nanofn.numpy as jnp
from nanofn._core import Tracer
from nanofn.optim.projections import projection_simplex

__all__ = ["make_fenchel_young_loss", "multiclass_sparsemax_loss", "ranking_softmax_loss",
           "sparsemax_loss"]


# --- helpers -----------------------------------------------------------------------------


def _shape(x) -> tuple:
    return tuple(getattr(x, "shape", np.shape(x)))


def _dtype(x):
    return jnp.result_type(x)


def _broadcastable(fn: str, a_name: str, a_shape, b_name: str, b_shape) -> None:
    try:
        np.broadcast_shapes(tuple(a_shape), tuple(b_shape))
    except ValueError:
        raise ValueError(f"{fn}: `{a_name}` has shape {tuple(a_shape)}, which does not "
                         f"broadcast with `{b_name}` of shape {tuple(b_shape)}.") from None


def _known(x) -> Optional[np.ndarray]:
    """The numpy value of ``x`` when it is known now (not traced), else ``None``."""
    if isinstance(x, Tracer):
        return None
    return np.asarray(x)


# --- sparsemax losses --------------------------------------------------------------------


def sparsemax_loss(logits, labels):
    r"""Binary sparsemax loss, one value per element.

    With :math:`z = -\text{logit}` where the label is 1 (true) and
    :math:`z = \text{logit}` where it is 0, the loss is ``sparse_plus(z)``: 0 for
    :math:`z \le -1`, :math:`(z + 1)^2 / 4` in between, :math:`z` for :math:`z \ge 1`.
    It vanishes exactly where ``nanofn.nn.sparse_sigmoid(logits) == labels``. Any
    nonzero label counts as the positive class.

    Args:
        logits: scores of the model, a floating array.
        labels: the 0/1 (or boolean) labels, broadcastable with ``logits``.

    Returns:
        The losses, with the broadcast shape of ``logits`` and ``labels``.

    References:
        Blondel, Martins and Niculae, `Learning with Fenchel-Young Losses
        <https://arxiv.org/abs/1901.02324>`_, JMLR 2020 (section 4.4).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim._losses_extra import sparsemax_loss
        >>> print(sparsemax_loss(jnp.array([2.0, 0.0, -3.0]), jnp.array([1, 1, 1])).tolist())
        [0.0, 0.25, 3.0]
    """
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    _broadcastable("sparsemax_loss", "labels", labels.shape, "logits", logits.shape)
    return nanofn.nn.sparse_plus(jnp.where(labels, -logits, logits))


def _sparsemax_one(scores, label):
    """The multiclass sparsemax loss of one score vector and its integer label."""
    proba = projection_simplex(scores)
    # The loss is <p, s> + (1 - <p, p>) / 2 - s_label (the conjugate of the Gini
    # negentropy at s, minus the score of the true class), written with the scores shifted
    # so that the true class scores exactly 0, and with the entries outside the support of
    # p left out, which keeps a -inf score from giving 0 * -inf.
    shifted = (scores - scores[label]).at[label].set(0.0)
    inner = jnp.dot(proba, jnp.where(proba != 0, shifted, 0.0))
    return inner + 0.5 * (1.0 - jnp.dot(proba, proba))


def multiclass_sparsemax_loss(scores, labels):
    r"""Multiclass sparsemax loss, one value per example.

    For scores :math:`s` and label :math:`y`, with :math:`p = \text{sparsemax}(s)` the
    Euclidean projection of :math:`s` onto the probability simplex,

    .. math::
        \ell(s, y) = \langle p, s \rangle + \tfrac12 (1 - \|p\|^2) - s_y,

    the Fenchel-Young loss of the Gini negentropy. It is non-negative, zero exactly when
    ``sparsemax(s)`` is the one-hot vector of ``y``, and its gradient with respect to the
    scores is ``sparsemax(s) - one_hot(y)``.

    Args:
        scores: ``(batch, num_classes)`` scores of the model.
        labels: ``(batch,)`` integer labels in ``[0, num_classes)``.

    Returns:
        The ``(batch,)`` losses.

    References:
        Martins and Astudillo, `From Softmax to Sparsemax: A Sparse Model of Attention and
        Multi-Label Classification <https://arxiv.org/abs/1602.02068>`_, ICML 2016.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim._losses_extra import multiclass_sparsemax_loss
        >>> scores = jnp.array([[1.0, 0.5, -2.0], [0.0, 0.0, 0.0]])
        >>> loss = multiclass_sparsemax_loss(scores, jnp.array([1, 2]))
        >>> print([round(x, 4) for x in loss.tolist()])
        [0.5625, 0.3333]
    """
    name = "multiclass_sparsemax_loss"
    scores = jnp.asarray(scores)
    if not jnp.issubdtype(scores.dtype, jnp.inexact):
        scores = scores.astype(jnp.float32)
    labels = jnp.asarray(labels)
    if scores.ndim != 2:
        raise ValueError(f"{name}: `scores` must have rank 2 (batch, num_classes), got "
                         f"shape {scores.shape}.")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"{name}: `labels` must be integers (class indices), got dtype "
                        f"{labels.dtype}.")
    if labels.shape != scores.shape[:1]:
        raise ValueError(f"{name}: `labels` must have shape {scores.shape[:1]} (one label "
                         f"per row of `scores`), got {labels.shape}.")
    num_classes = scores.shape[1]
    if num_classes == 0:
        raise ValueError(f"{name}: `scores` has no classes (shape {scores.shape}).")
    value = _known(labels)
    if value is not None and value.size:
        low, high = int(value.min()), int(value.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise ValueError(f"{name}: `labels` must lie in [0, {num_classes}) for "
                             f"{num_classes} classes, found label {bad}.")
    return nanofn.vmap(_sparsemax_one)(scores, labels)


# --- Fenchel-Young losses ----------------------------------------------------------------


def make_fenchel_young_loss(max_fun: Callable[..., Any]) -> Callable[..., Any]:
    r"""Builds the Fenchel-Young loss of a "max function" (a convex, smooth maximum).

    The loss is :math:`\ell(\theta, y) = \Omega^*(\theta) - \langle y, \theta \rangle`,
    where :math:`\Omega^*` is ``max_fun`` (the conjugate of a regulariser
    :math:`\Omega`), computed over the last axis of its inputs, any leading axes being
    batch axes (broadcast between ``scores`` and ``targets``). Its gradient with respect
    to the scores is ``grad(max_fun)(scores) - targets``: with ``logsumexp`` it is
    ``softmax(scores) - targets``, and the loss is the softmax cross-entropy (up to the
    entropy of ``targets``).

    The returned function is ``loss(scores, targets, *args, **kwargs)``; extra arguments
    are handed to ``max_fun`` unchanged, for every row. (optax 0.2.8 rejects extra
    positional arguments and silently drops keyword ones; called without them, the two
    agree.)

    Args:
        max_fun: a function from a vector of scores to a scalar.

    Returns:
        The Fenchel-Young loss built on ``max_fun``.

    References:
        Blondel, Martins and Niculae, `Learning with Fenchel-Young Losses
        <https://arxiv.org/abs/1901.02324>`_, JMLR 2020.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn.scipy.special import logsumexp
        >>> from nanofn.optim._losses_extra import make_fenchel_young_loss
        >>> fy_loss = make_fenchel_young_loss(logsumexp)
        >>> scores, targets = jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0])
        >>> print(round(float(fy_loss(scores, targets)), 4))  # log 2
        0.6931
        >>> print(nanofn.grad(fy_loss)(scores, targets).tolist())  # softmax - targets
        [-0.5, 0.5]
    """
    if not callable(max_fun):
        raise TypeError(f"make_fenchel_young_loss: `max_fun` must be a callable, got "
                        f"{type(max_fun).__name__}.")
    vdot_last = jnp.vectorize(jnp.vdot, signature="(n),(n)->()")

    def fenchel_young_loss(scores, targets, *args, **kwargs):
        scores, targets = jnp.asarray(scores), jnp.asarray(targets)
        name = "fenchel_young_loss"
        for arg, x in (("scores", scores), ("targets", targets)):
            if x.ndim == 0:
                raise ValueError(f"{name}: `{arg}` must have at least one axis (the last "
                                 f"one holds the scores), got a scalar.")
        if scores.shape[-1] != targets.shape[-1]:
            raise ValueError(f"{name}: the last axes of `scores` {scores.shape} and "
                             f"`targets` {targets.shape} must have the same size.")
        _broadcastable(name, "targets", targets.shape[:-1], "scores", scores.shape[:-1])
        max_last = jnp.vectorize(lambda row: max_fun(row, *args, **kwargs),
                                 signature="(n)->()")
        return max_last(scores) - vdot_last(targets, scores)

    return fenchel_young_loss


# --- ranking -----------------------------------------------------------------------------


def _safe_reduce(loss, where, reduce_fn):
    """``reduce_fn(loss, where=where)``, as optax reduces its ranking losses.

    A mean over no valid list is 0 rather than nan (unless ``loss`` itself has a nan);
    without a reduction, the losses of the lists that ``where`` leaves out are set to 0.
    """
    out = loss if reduce_fn is None else reduce_fn(loss, where=where)
    if reduce_fn is jnp.mean:
        finite_input = jnp.logical_not(jnp.any(jnp.isnan(loss)))
        out = jnp.where(jnp.isnan(out) & finite_input, 0.0, out)
    if reduce_fn is None and where is not None:
        out = jnp.where(where, out, 0.0)
    return out


def ranking_softmax_loss(logits, labels, *, where=None, weights=None, reduce_fn=jnp.mean):
    r"""Listwise ranking softmax loss (softmax cross-entropy between scores and labels).

    For each list (the last axis; leading axes are batch axes) with item scores
    :math:`s` and relevance labels :math:`y`,

    .. math::
        \ell(s, y) = -\sum_i y_i \log \frac{\exp s_i}{\sum_j \exp s_j},

    the labels being multiplied by ``weights`` first when given. Items that ``where``
    marks False take no part: they get label 0 and score :math:`-\infty`, so neither the
    sum nor the normaliser sees them, and a list with no valid item is left out of the
    reduction.

    Args:
        logits: ``[..., list_size]`` floating scores of the items.
        labels: ``[..., list_size]`` relevance labels (cast to the dtype of ``logits``).
        where: optional boolean ``[..., list_size]`` mask of the valid items.
        weights: optional ``[..., list_size]`` weights of the items.
        reduce_fn: a function reducing the per-list losses, called as
            ``reduce_fn(losses, where=mask)`` (``jnp.mean``, the default, or ``jnp.sum``),
            or ``None`` for the ``[...]`` per-list losses (0 for lists with no valid item).
            With ``jnp.mean``, no valid list at all gives 0 rather than nan.

    Returns:
        The reduced loss, or the per-list losses when ``reduce_fn`` is ``None``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim._losses_extra import ranking_softmax_loss
        >>> scores = jnp.array([[2.0, 1.0, 0.0], [1.0, 0.5, 1.5]])
        >>> labels = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        >>> where = jnp.array([[True, True, False], [True, True, True]])
        >>> print(round(float(ranking_softmax_loss(scores, labels, where=where)), 3))
        0.497
    """
    name = "ranking_softmax_loss"
    logits = jnp.asarray(logits)
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise TypeError(f"{name}: `logits` must be a floating array, got dtype "
                        f"{logits.dtype}.")
    if logits.ndim == 0:
        raise ValueError(f"{name}: `logits` must have at least one axis (the items of a "
                         f"list), got a scalar.")
    if reduce_fn is not None and not callable(reduce_fn):
        raise TypeError(f"{name}: `reduce_fn` must be a callable or None, got "
                        f"{type(reduce_fn).__name__}.")
    labels = jnp.asarray(labels)
    _broadcastable(name, "labels", labels.shape, "logits", logits.shape)
    labels = labels.astype(logits.dtype)

    if where is not None:
        where = jnp.asarray(where)
        if where.dtype != jnp.bool_:
            raise TypeError(f"{name}: `where` must be a boolean array, got dtype "
                            f"{where.dtype}.")
        _broadcastable(name, "where", where.shape, "logits", logits.shape)
        labels = jnp.where(where, labels, jnp.zeros_like(labels))
        logits = jnp.where(where, logits, -jnp.inf)

    if weights is not None:
        weights = jnp.asarray(weights)
        _broadcastable(name, "weights", weights.shape, "logits", logits.shape)
        labels = labels * weights.astype(labels.dtype)

    log_probs = nanofn.nn.log_softmax(logits, axis=-1)
    # (A masked item has 0 * -inf = nan here; the masked sum leaves it out.)
    with np.errstate(invalid="ignore"):
        loss = -jnp.sum(labels * log_probs, axis=-1, where=where)

    if where is not None:
        where = jnp.any(where, axis=-1)
    return _safe_reduce(loss, where, reduce_fn)
