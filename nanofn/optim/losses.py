"""Loss functions (optax.losses): the functions of `nanofn.nn.losses`, plus a few more.

Every loss is also available at the top of `nanofn.optim`, as in optax
(`optim.l2_loss`, `optim.softmax_cross_entropy_with_integer_labels`, ...).
"""

import numpy as _np

import nanofn.numpy as _jnp
from nanofn.nn import _functions as _fn
from nanofn.nn.losses import *  # noqa: F401,F403
from nanofn.nn.losses import sigmoid_binary_cross_entropy as _sigmoid_bce
from nanofn.nn.losses import kl_divergence as _kl_divergence
from nanofn.nn.losses import softmax_cross_entropy as _softmax_ce
from nanofn.nn.losses import __all__ as _nn_losses
from nanofn.optim._ctc import ctc_loss, ctc_loss_with_forward_probs  # noqa: F401
from nanofn.optim._losses_extra import (  # noqa: F401
    make_fenchel_young_loss, multiclass_sparsemax_loss, ranking_softmax_loss, sparsemax_loss,
)

__all__ = list(_nn_losses) + [
    "multiclass_hinge_loss", "multiclass_perceptron_loss", "perceptron_loss",
    "poly_loss_cross_entropy", "safe_softmax_cross_entropy", "sigmoid_focal_loss",
    "generalized_kl_divergence", "convex_kl_divergence", "ntxent", "dice_loss",
    "binary_dice_loss", "multiclass_generalized_dice_loss", "ctc_loss",
    "ctc_loss_with_forward_probs", "make_fenchel_young_loss", "multiclass_sparsemax_loss",
    "ranking_softmax_loss", "sparsemax_loss"]


def _check_floating(name, arg, x):
    if not _jnp.issubdtype(_jnp.result_type(x), _jnp.floating):
        raise TypeError(f"{name}: `{arg}` must be a floating array, got dtype "
                        f"{_jnp.result_type(x)}.")


def sigmoid_focal_loss(logits, labels, *, alpha=None, gamma=2.0):
    """Focal loss: sigmoid cross-entropy down-weighted on well-classified examples.

    ``loss = bce(logits, labels) * (1 - p_t) ** gamma``, optionally weighted by
    ``alpha`` for positives and ``1 - alpha`` for negatives (Lin et al., 2017).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> loss = optim.sigmoid_focal_loss(jnp.array([0.0]), jnp.array([1.0]))
        >>> print(round(float(loss[0]), 4))  # log(2) * 0.5**2
        0.1733
    """
    _check_floating("sigmoid_focal_loss", "logits", logits)
    logits = _jnp.asarray(logits)
    labels = _jnp.asarray(labels, dtype=logits.dtype)
    ce = _sigmoid_bce(logits, labels)
    p = _fn.sigmoid(logits)
    one_minus_p_t = labels * (1 - p) + (1 - labels) * p
    loss = ce * one_minus_p_t ** gamma
    if alpha is None:
        return loss
    return (alpha * labels + (1.0 - alpha) * (1.0 - labels)) * loss


def safe_softmax_cross_entropy(logits, labels):
    """Softmax cross-entropy that gives 0, not nan, where a label is 0 and its logit is -inf.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> logits = jnp.array([[0.0, -jnp.inf]])
        >>> print(optim.safe_softmax_cross_entropy(logits, jnp.array([[1.0, 0.0]])).tolist())
        [0.0]
    """
    _check_floating("safe_softmax_cross_entropy", "logits", logits)
    log_p = _fn.log_softmax(_jnp.asarray(logits), axis=-1)
    labels = _jnp.asarray(labels)
    weighted = _jnp.where(labels == 0, 0.0, labels * _jnp.where(labels == 0, 0.0, log_p))
    return -_jnp.sum(weighted, axis=-1)


def poly_loss_cross_entropy(logits, labels, *, epsilon=2.0, axis=-1, where=None):
    """PolyLoss: ``softmax_cross_entropy + epsilon * (1 - p_t)`` (Leng et al., 2022).

    ``where``, a boolean mask of the classes that take part (as in
    :func:`softmax_cross_entropy`), restricts the softmax and both sums to those classes.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> loss = optim.poly_loss_cross_entropy(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))
        >>> print(round(float(loss), 4))  # log 2 + 2 * 0.5
        1.6931
        >>> loss = optim.poly_loss_cross_entropy(  # the third class masked out
        ...     jnp.array([0.0, 0.0, 5.0]), jnp.array([1.0, 0.0, 0.0]),
        ...     where=jnp.array([True, True, False]))
        >>> print(round(float(loss), 4))
        1.6931
    """
    _check_floating("poly_loss_cross_entropy", "logits", logits)
    logits = _jnp.asarray(logits)
    mask = None
    if where is not None:
        mask = _jnp.asarray(where)
        if mask.ndim != logits.ndim:  # a mask without the class axis gets it back
            mask = _jnp.expand_dims(mask, axis)
    p = _fn.softmax(logits, axis=axis, where=mask)
    one_minus_pt = _jnp.sum(labels * (1 - p), axis=axis, where=mask)
    return _softmax_ce(logits, labels, axis=axis, where=where) + epsilon * one_minus_pt


def perceptron_loss(predictor_outputs, targets):
    """Binary perceptron loss ``max(0, -y f(x))`` for targets in {-1, 1}.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> print(optim.perceptron_loss(jnp.array([2.0, -1.0]), jnp.array([1.0, 1.0])).tolist())
        [0.0, 1.0]
    """
    if _np.shape(predictor_outputs) != _np.shape(targets):
        raise ValueError(f"perceptron_loss: `predictor_outputs` has shape "
                         f"{_np.shape(predictor_outputs)} but `targets` has "
                         f"{_np.shape(targets)}; they must match.")
    return _jnp.maximum(0, -predictor_outputs * targets)


def multiclass_hinge_loss(scores, labels):
    """Multiclass hinge loss ``max_k(s_k + [k != y]) - s_y`` for integer labels.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> print(optim.multiclass_hinge_loss(jnp.array([[2.0, 1.5]]), jnp.array([0])).tolist())
        [0.5]
    """
    scores = _jnp.asarray(scores)
    one_hot = _fn.one_hot(labels, scores.shape[-1], dtype=scores.dtype)
    return _jnp.max(scores + 1.0 - one_hot, axis=-1) - _jnp.sum(scores * one_hot, axis=-1)


def multiclass_perceptron_loss(scores, labels):
    """Multiclass perceptron loss ``max_k s_k - s_y`` for integer labels.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> print(optim.multiclass_perceptron_loss(jnp.array([[2.0, 1.5]]), jnp.array([1])).tolist())
        [0.5]
    """
    scores = _jnp.asarray(scores)
    one_hot = _fn.one_hot(labels, scores.shape[-1], dtype=scores.dtype)
    return _jnp.max(scores, axis=-1) - _jnp.sum(scores * one_hot, axis=-1)


def generalized_kl_divergence(log_predictions, targets, axis=-1, where=None):
    """KL divergence for unnormalised measures: ``KL(t || p) + sum(p - t)`` along ``axis``
    (the terms a boolean mask ``where`` keeps).

    Equal to :func:`kl_divergence` when both sides sum to one; convex in the predictions.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> loss = optim.generalized_kl_divergence(jnp.log(jnp.array([1.0, 1.0])),
        ...                                        jnp.array([1.0, 0.0]))
        >>> print(round(float(loss), 4))  # 0 + (2 - 1)
        1.0
    """
    kl = _kl_divergence(log_predictions, targets, axis=axis, where=where)
    return kl + _jnp.sum(_jnp.exp(log_predictions) - targets, axis=axis, where=where)


def convex_kl_divergence(log_predictions, targets, axis=-1, where=None):
    """optax's older name of :func:`generalized_kl_divergence`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> loss = optim.convex_kl_divergence(jnp.log(jnp.array([0.5, 0.5])),
        ...                                   jnp.array([0.5, 0.5]))
        >>> print(round(float(loss), 4))
        0.0
    """
    return generalized_kl_divergence(log_predictions, targets, axis=axis, where=where)


def ntxent(embeddings, labels, temperature=0.07):
    """NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

    For each pair of embeddings with the same label (an anchor and a positive), the
    cross-entropy of picking the positive among the positive and all embeddings with
    other labels, scored by cosine similarity over ``temperature``; averaged over pairs.

    Args:
        embeddings: ``(batch, features)`` floating array.
        labels: ``(batch,)`` integer labels; equal labels mark positive pairs.
        temperature: the softmax temperature.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> emb = jnp.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> print(round(float(optim.ntxent(emb, jnp.array([0, 0, 1, 1]))), 4))
        0.0
    """
    _check_floating("ntxent", "embeddings", embeddings)
    embeddings = _jnp.asarray(embeddings)
    labels = _jnp.asarray(labels)
    if labels.shape[0] != embeddings.shape[0]:
        raise ValueError(f"ntxent: `labels` has leading size {labels.shape[0]} but "
                         f"`embeddings` has {embeddings.shape[0]}; they must match.")
    import nanofn
    from nanofn.nn.losses import cosine_similarity
    eps = _np.finfo(_np.dtype(embeddings.dtype)).eps
    xcs = cosine_similarity(embeddings[None, :, :], embeddings[:, None, :],
                            epsilon=eps) / temperature
    same = labels[:, None] == labels[None, :]
    diffs = _jnp.logical_not(same)
    matches = _jnp.logical_and(same, _jnp.logical_not(_jnp.eye(same.shape[0], dtype=bool)))
    xcs_diffs = _jnp.where(diffs, xcs, -_np.inf)
    xcs_matches = _jnp.where(matches, xcs, -_np.inf)
    xcs_max = _jnp.max(_jnp.concatenate((xcs_diffs, xcs_matches), axis=-1), axis=1,
                       keepdims=True)
    stop = nanofn.lax.stop_gradient
    shift_diffs = xcs_diffs - stop(xcs_max)
    shift_matches = xcs_matches - stop(xcs_max)
    denom = _jnp.sum(_jnp.exp(shift_diffs), axis=1, keepdims=True) + _jnp.exp(shift_matches)
    log_softmax = shift_matches - _jnp.log(denom)
    return -_jnp.sum(_jnp.where(matches, log_softmax, 0.0)) / _jnp.sum(matches)


def _reduce(loss, reduction, axis=None):
    if reduction == "mean":
        return _jnp.mean(loss, axis=axis)
    if reduction == "sum":
        return _jnp.sum(loss, axis=axis)
    if reduction == "none":
        return loss
    raise ValueError(f"dice_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}.")


def dice_loss(predictions, targets, *, class_weights=None, smooth=1.0, alpha=0.5, beta=0.5,
              apply_softmax=True, reduction="mean", ignore_background=False, axis=None):
    """Dice (Tversky, with ``alpha``/``beta``) loss for segmentation, one value per example.

    ``1 - (|P n T| + smooth) / (|P n T| + alpha |P - T| + beta |T - P| + smooth)`` per
    class, summed over the spatial axes (all but the first and last), then reduced
    over classes.

    Args:
        predictions: logits (or probabilities with ``apply_softmax=False``), classes last.
        targets: one-hot targets of the same shape.
        class_weights: a weight per class.
        smooth: added to numerator and denominator.
        alpha: weight of false positives.
        beta: weight of false negatives.
        apply_softmax: softmax (sigmoid for one class) on ``predictions`` first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over classes.
        ignore_background: drop class 0.
        axis: the axes summed instead of the spatial ones.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> t = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
        >>> print(round(float(optim.dice_loss(100 * (2 * t - 1), t)[0]), 4))
        0.0
    """
    predictions, targets = _jnp.asarray(predictions), _jnp.asarray(targets)
    if predictions.ndim == targets.ndim - 1:
        predictions = predictions[..., None]
    if targets.ndim == predictions.ndim - 1:
        targets = targets[..., None]
    if predictions.shape != targets.shape:
        raise ValueError(f"dice_loss: `predictions` has shape {predictions.shape} but "
                         f"`targets` has {targets.shape}; they must match.")
    probs = predictions
    if apply_softmax:
        probs = (_fn.sigmoid(predictions) if predictions.shape[-1] == 1
                 else _fn.softmax(predictions, axis=-1))
    axis = tuple(range(1, probs.ndim - 1)) if axis is None else axis
    intersection = _jnp.sum(probs * targets, axis=axis)
    pred_sum = _jnp.sum(probs, axis=axis)
    target_sum = _jnp.sum(targets, axis=axis)
    denominator = (intersection + alpha * (pred_sum - intersection)
                   + beta * (target_sum - intersection) + smooth)
    loss = 1.0 - (intersection + smooth) / denominator
    if class_weights is not None:
        loss = loss * _jnp.asarray(class_weights)
    if ignore_background and probs.shape[-1] > 1:
        loss = loss[..., 1:]
    return _reduce(loss, reduction, axis=-1)


def binary_dice_loss(predictions, targets, *, smooth=1.0, apply_sigmoid=True):
    """Dice loss for one foreground class (sigmoid of the logits), one value per example.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> t = jnp.array([[1.0, 0.0, 1.0]])
        >>> print(round(float(optim.binary_dice_loss(100 * (2 * t - 1), t)[0]), 4))
        0.0
    """
    predictions, targets = _jnp.asarray(predictions), _jnp.asarray(targets)
    if predictions.ndim == targets.ndim and predictions.shape[-1] != 1:
        predictions, targets = predictions[..., None], targets[..., None]
    return dice_loss(predictions, targets, smooth=smooth, apply_softmax=apply_sigmoid,
                     reduction="mean")


def multiclass_generalized_dice_loss(predictions, targets, *, smooth=1.0, apply_softmax=True,
                                     ignore_background=False):
    """Generalised Dice loss: classes weighted by the inverse square of their frequency.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> t = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
        >>> print(round(float(optim.multiclass_generalized_dice_loss(100 * (2 * t - 1), t)), 4))
        0.0
    """
    predictions, targets = _jnp.asarray(predictions), _jnp.asarray(targets)
    if predictions.shape != targets.shape:
        raise ValueError(f"multiclass_generalized_dice_loss: `predictions` has shape "
                         f"{predictions.shape} but `targets` has {targets.shape}.")
    freq = _jnp.sum(targets, axis=tuple(range(targets.ndim - 1)))
    weights = 1.0 / (freq ** 2 + 1e-7)
    weights = weights / _jnp.sum(weights) * weights.shape[0]
    return _jnp.mean(dice_loss(predictions, targets, class_weights=weights, smooth=smooth,
                               apply_softmax=apply_softmax, reduction="none",
                               ignore_background=ignore_background))
