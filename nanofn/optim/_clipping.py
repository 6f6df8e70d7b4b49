"""Clipping by units and by examples (optax.transforms' AGC and DP helpers), safe norms.

``unitwise_norm`` measures one norm per output unit of a layer (per column of a dense
kernel, per output channel of an HWIO conv kernel); ``adaptive_grad_clip`` (AGC, from
NFNets) clips each unit's gradient relative to its weights' norm. The per-example
clips take gradients with a leading batch axis, as differentially private SGD does.
"""

from __future__ import annotations

import numpy as np

import nanofn
import nanofn.numpy as jnp
from nanofn import tree_util
from nanofn.optim import _base
from nanofn.optim import tree as otu
from nanofn.optim._base import EmptyState, GradientTransformation, abs_sq, init_empty_state

AdaptiveGradClipState = EmptyState


def safe_norm(x, min_norm, ord=None, axis=None, keepdims: bool = False):  # noqa: A002
    """``max(norm(x), min_norm)`` whose gradient stays finite at ``x = 0``.

    Args:
        x: an array.
        min_norm: the smallest value returned.
        ord: the norm's order, as in ``nanofn.numpy.linalg.norm``.
        axis: the axes reduced (``None``: all).
        keepdims: keep the reduced axes with size 1.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> print(float(optim.safe_norm(jnp.zeros(3), 1e-3)))
        0.001
        >>> print(nanofn.grad(lambda x: optim.safe_norm(x, 1e-3))(jnp.zeros(2)).tolist())
        [0.0, 0.0]
    """
    norm = jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=True)
    x = jnp.where(norm <= min_norm, jnp.ones_like(x), x)
    if not keepdims:
        norm = jnp.squeeze(norm, axis=axis)
    masked_norm = jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)
    return jnp.where(norm <= min_norm, min_norm, masked_norm)


def safe_root_mean_squares(x, min_rms):
    """``max(rms(x), min_rms)`` whose gradient stays finite at ``x = 0``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> print(float(optim.safe_root_mean_squares(jnp.array([3.0, 4.0]), 1e-3)) ** 2)
        12.5
    """
    rms = jnp.sqrt(jnp.mean(abs_sq(x)))
    x = jnp.where(rms <= min_rms, jnp.ones_like(x), x)
    return jnp.where(rms <= min_rms, min_rms, jnp.sqrt(jnp.mean(abs_sq(x))))


def unitwise_norm(x, axis=None):
    """The norm of each unit of ``x``, broadcast back to ``x``'s shape.

    Without ``axis``: one norm for a vector (or scalar); per column of a 2-d or 3-d
    kernel (reducing axis 0); per output channel of a 4-d (HWIO) or 5-d kernel.

    Args:
        x: an array.
        axis: the axes to reduce instead of the rank-based choice.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> optim.transforms.unitwise_norm(jnp.array([[3.0, 0.0], [4.0, 1.0]])).tolist()
        [[5.0, 1.0], [5.0, 1.0]]
    """
    shape = np.shape(x)
    if axis is not None:
        sq = jnp.sum(abs_sq(x), axis=axis, keepdims=True)
    elif len([d for d in shape if d != 1]) <= 1:
        sq = jnp.sum(abs_sq(x), keepdims=True)
    elif len(shape) in (2, 3):
        sq = jnp.sum(abs_sq(x), axis=0, keepdims=True)
    elif len(shape) == 4:
        sq = jnp.sum(abs_sq(x), axis=(0, 1, 2), keepdims=True)
    elif len(shape) == 5:
        sq = jnp.sum(abs_sq(x), axis=(0, 1, 2, 3), keepdims=True)
    else:
        raise ValueError(f"unitwise_norm: expected a parameter of rank 1 to 5, got shape "
                         f"{shape}; pass `axis=` to choose the axes to reduce.")
    return jnp.broadcast_to(jnp.sqrt(sq), shape)


def unitwise_clip(g_norm, max_norm, grad, div_eps: float = 1e-6):
    """``grad`` rescaled to norm ``max_norm`` where ``g_norm >= max_norm``, elsewhere kept.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> g = jnp.array([3.0, 4.0])
        >>> optim.transforms.unitwise_clip(jnp.full(2, 5.0), jnp.full(2, 1.0), g).tolist()
        [0.6000000238418579, 0.800000011920929]
    """
    for name, value in (("max_norm", max_norm), ("grad", grad)):
        if np.shape(value) != np.shape(g_norm):
            raise ValueError(f"unitwise_clip: `{name}` has shape {np.shape(value)} but "
                             f"`g_norm` has {np.shape(g_norm)}; they must match.")
    clipped = grad * (max_norm / jnp.maximum(g_norm, div_eps))
    return jnp.where(g_norm < max_norm, grad, clipped)


def adaptive_grad_clip(clipping: float, eps: float = 1e-3, axis=None) -> GradientTransformation:
    """Clips each unit's gradient to ``clipping`` times its weights' norm (AGC, NFNets).

    Args:
        clipping: the largest allowed ratio ``||g|| / max(||w||, eps)`` per unit.
        eps: the smallest weight norm used.
        axis: the axes of a unit's norm; ``None`` picks them by rank (see
            :func:`unitwise_norm`).

    Returns:
        A stateless :class:`GradientTransformation` whose ``update`` needs ``params``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.adaptive_grad_clip(0.1)
        >>> u, _ = tx.update(jnp.array([3.0, 4.0]), tx.init(None), jnp.array([0.0, 10.0]))
        >>> print([round(x, 4) for x in u.tolist()])
        [0.6, 0.8]

    References:
        Brock et al., High-Performance Large-Scale Image Recognition Without
        Normalization, 2021.
    """

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args  # unused
        if params is None:
            raise ValueError("adaptive_grad_clip: " + _base.NO_PARAMS_MSG)
        g_norm = tree_util.tree_map(lambda x: unitwise_norm(x, axis=axis), updates)
        p_norm = tree_util.tree_map(lambda x: unitwise_norm(x, axis=axis), params)
        max_norm = tree_util.tree_map(lambda x: clipping * jnp.maximum(x, eps), p_norm)
        return tree_util.tree_map(unitwise_clip, g_norm, max_norm, updates), state

    return GradientTransformation(init_empty_state, update_fn)


def _check_batch_dim(where, grads):
    leaves = tree_util.tree_leaves(grads)
    sizes = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
    if None in sizes or len(sizes) > 1:
        raise ValueError(f"{where}: expects `grads` with one batch axis first (the same size "
                         f"in every leaf), got shapes "
                         f"{[tuple(np.shape(x)) for x in leaves]}.")


def per_example_global_norm_clip(grads, l2_norm_clip):
    """Clips each example's gradient to global norm ``l2_norm_clip`` and sums them (DP-SGD).

    Args:
        grads: per-example gradients, each leaf with the batch on axis 0.
        l2_norm_clip: the largest global norm of one example's gradient.

    Returns:
        ``(summed clipped gradients, number of examples clipped)``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> g = {"w": jnp.array([[3.0, 4.0], [0.3, 0.4]])}
        >>> summed, n = optim.per_example_global_norm_clip(g, 1.0)
        >>> print([round(x, 4) for x in summed["w"].tolist()], int(n))
        [0.9, 1.2] 1
    """
    _check_batch_dim("per_example_global_norm_clip", grads)
    norms = nanofn.vmap(otu.norm)(grads)
    multipliers = jnp.nan_to_num(jnp.minimum(l2_norm_clip / norms, 1.0), nan=1.0)
    num_clipped = jnp.sum(multipliers < 1.0)
    return tree_util.tree_map(lambda g: jnp.tensordot(multipliers, g, axes=1), grads), num_clipped


def per_example_layer_norm_clip(grads, global_l2_norm_clip, uniform: bool = True):
    """Per-example clipping layer by layer, with the clip norm split between the layers.

    Args:
        grads: per-example gradients, each leaf with the batch on axis 0.
        global_l2_norm_clip: the overall clip norm.
        uniform: split it equally between layers; else in proportion to their sizes.

    Returns:
        ``(summed clipped gradients, numbers clipped)``, two trees like ``grads``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> g = {"a": jnp.array([[3.0], [0.1]]), "b": jnp.array([[0.1], [4.0]])}
        >>> summed, counts = optim.per_example_layer_norm_clip(g, 2 ** 0.5)
        >>> print(round(float(summed["a"][0]), 4), int(counts["b"]))
        1.1 1
    """
    _check_batch_dim("per_example_layer_norm_clip", grads)
    leaves, treedef = tree_util.tree_flatten(grads)
    if uniform:
        clips = [global_l2_norm_clip * (1.0 / len(leaves)) ** 0.5 for _ in leaves]
    else:
        total = sum(int(np.size(g[0])) for g in leaves)
        clips = [global_l2_norm_clip * (int(np.size(g[0])) / total) ** 0.5 for g in leaves]
    results = [per_example_global_norm_clip(g, c) for g, c in zip(leaves, clips)]
    return (treedef.unflatten([r[0] for r in results]),
            treedef.unflatten([r[1] for r in results]))
