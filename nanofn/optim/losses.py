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

__all__ = list(_nn_losses) + [
    "multiclass_hinge_loss", "multiclass_perceptron_loss", "perceptron_loss",
    "poly_loss_cross_entropy", "safe_softmax_cross_entropy", "sigmoid_focal_loss",
    "generalized_kl_divergence", "convex_kl_divergence"]


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


def poly_loss_cross_entropy(logits, labels, *, epsilon=2.0, axis=-1):
    """PolyLoss: ``softmax_cross_entropy + epsilon * (1 - p_t)`` (Leng et al., 2022).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> loss = optim.poly_loss_cross_entropy(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))
        >>> print(round(float(loss), 4))  # log 2 + 2 * 0.5
        1.6931
    """
    _check_floating("poly_loss_cross_entropy", "logits", logits)
    p = _fn.softmax(_jnp.asarray(logits), axis=axis)
    one_minus_pt = _jnp.sum(labels * (1 - p), axis=axis)
    return _softmax_ce(logits, labels, axis=axis) + epsilon * one_minus_pt


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


def generalized_kl_divergence(log_predictions, targets, axis=-1):
    """KL divergence for unnormalised measures: ``KL(t || p) + sum(p - t)`` along ``axis``.

    Equal to :func:`kl_divergence` when both sides sum to one; convex in the predictions.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> loss = optim.generalized_kl_divergence(jnp.log(jnp.array([1.0, 1.0])),
        ...                                        jnp.array([1.0, 0.0]))
        >>> print(round(float(loss), 4))  # 0 + (2 - 1)
        1.0
    """
    kl = _kl_divergence(log_predictions, targets, axis=axis)
    return kl + _jnp.sum(_jnp.exp(log_predictions) - targets, axis=axis)


def convex_kl_divergence(log_predictions, targets, axis=-1):
    """optax's older name of :func:`generalized_kl_divergence`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> loss = optim.convex_kl_divergence(jnp.log(jnp.array([0.5, 0.5])),
        ...                                   jnp.array([0.5, 0.5]))
        >>> print(round(float(loss), 4))
        0.0
    """
    return generalized_kl_divergence(log_predictions, targets, axis=axis)
