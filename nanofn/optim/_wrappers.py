"""Wrappers from optax.transforms: freezing, flattening, conditional steps, gradient scaling.

Like the combinators in ``_combine.py``, decisions on values (``should_transform_fn``)
compute both branches and select with ``where``, so they work under ``jit``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import numpy as np

import nanofn
import nanofn.numpy as jnp
from nanofn import tree_util
from nanofn.optim import _base
from nanofn.optim import tree as otu
from nanofn.optim._base import GradientTransformation
from nanofn.optim._combine import _select, chain, masked, multi_transform
from nanofn.optim._transform import _zeros_count, safe_increment

ConditionFn = Callable[..., Any]  # (step, **extra_args) -> bool
ShouldSkipUpdateFunction = Callable[..., tuple]  # (updates, gradient_step, params) -> (skip, info)
MaskOrFn = Any  # a pytree of booleans, or a function params -> such a pytree
TransformUpdateExtraArgsFn = _base.TransformUpdateFn  # every nanofn update takes **extra_args
ClipState = _base.EmptyState  # state of `clip`
ClipByGlobalNormState = _base.EmptyState  # state of `clip_by_global_norm`


def freeze(mask) -> GradientTransformation:
    """Zeros the updates of the parameters where ``mask`` is True (holds them constant).

    Args:
        mask: a bool, or a pytree of booleans with the structure of the params (or a
            prefix of it); True freezes.

    Returns:
        ``masked(set_to_zero(), mask)``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.chain(optim.freeze({"w": True, "b": False}), optim.sgd(0.1))
        >>> g = {"w": jnp.ones(1), "b": jnp.ones(1)}
        >>> u, _ = tx.update(g, tx.init(g))
        >>> print(float(u["w"][0]), round(float(u["b"][0]), 3))
        0.0 -0.1
    """
    return masked(_base.set_to_zero(), mask)


def selective_transform(optimizer: GradientTransformation, *, freeze_mask
                        ) -> GradientTransformation:
    """Runs ``optimizer`` on the parameters not frozen by ``freeze_mask``; frozen ones get zero updates.

    Unlike :func:`freeze` in a chain, the optimizer keeps no state for frozen params.

    Args:
        optimizer: the transformation for the trainable parameters.
        freeze_mask: a pytree of booleans (True freezes) with the params' structure.

    Returns:
        A :func:`partition` with labels ``"train"`` and ``"freeze"``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.selective_transform(optim.sgd(0.1), freeze_mask={"w": True, "b": False})
        >>> g = {"w": jnp.ones(1), "b": jnp.ones(1)}
        >>> u, _ = tx.update(g, tx.init(g))
        >>> print(float(u["w"][0]), round(float(u["b"][0]), 3))
        0.0 -0.1
    """

    def label_fn(params):
        del params  # unused
        return tree_util.tree_map(lambda m: "freeze" if m else "train", freeze_mask)

    return multi_transform({"train": optimizer, "freeze": _base.set_to_zero()}, label_fn)


def flatten(inner: GradientTransformation) -> GradientTransformation:
    """Runs ``inner`` on one flat vector holding every leaf, then restores the tree.

    Useful for transformations that work best on a single array (fewer, larger ops).

    Args:
        inner: the transformation to run on the flat vector.

    Returns:
        A :class:`GradientTransformation` whose state is ``inner``'s state for a vector.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.flatten(optim.sgd(0.1))
        >>> g = {"w": jnp.ones((2, 2)), "b": jnp.ones(1)}
        >>> u, state = tx.update(g, tx.init(g))
        >>> u["w"].shape
        (2, 2)
    """
    inner = _base.with_extra_args_support(inner)

    def _flatten(tree):
        leaves = tree_util.tree_leaves(tree)
        if not leaves:
            return jnp.zeros((0,))
        return jnp.concatenate([jnp.reshape(x, (-1,)) for x in leaves])

    def _unflatten(like, flat):
        leaves, treedef = tree_util.tree_flatten(like)
        out, start = [], 0
        for x in leaves:
            n = int(np.size(x))
            out.append(jnp.reshape(flat[start:start + n], np.shape(x)))
            start += n
        return treedef.unflatten(out)

    def init_fn(params):
        return inner.init(_flatten(params))

    def update_fn(updates, state, params=None, **extra_args):
        flat_params = None if params is None else _flatten(params)
        new_flat, state = inner.update(_flatten(updates), state, flat_params, **extra_args)
        return _unflatten(updates, new_flat), state

    return GradientTransformation(init_fn, update_fn)


class ConditionallyTransformState(NamedTuple):
    """State of :func:`conditionally_transform`."""

    inner_state: Any
    step: Any  # int32, shape ()


def conditionally_transform(inner: GradientTransformation, should_transform_fn: ConditionFn,
                            forward_extra_args: bool = False) -> GradientTransformation:
    """Applies ``inner`` on the steps where ``should_transform_fn(step)`` is True; otherwise
    passes the updates through and keeps ``inner``'s state.

    Args:
        inner: the transformation to apply conditionally.
        should_transform_fn: ``step -> bool`` (``step`` counts calls from 0); with
            ``forward_extra_args`` it also receives the update's keyword ``extra_args``.
        forward_extra_args: pass ``extra_args`` to ``should_transform_fn``.

    Returns:
        A :class:`GradientTransformation` with state :class:`ConditionallyTransformState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.conditionally_transform(optim.scale(10.0), lambda step: step >= 1)
        >>> state = tx.init(jnp.zeros(1))
        >>> u0, state = tx.update(jnp.ones(1), state)
        >>> u1, state = tx.update(jnp.ones(1), state)
        >>> print(float(u0[0]), float(u1[0]))
        1.0 10.0
    """
    inner = _base.with_extra_args_support(inner)

    def init_fn(params):
        return ConditionallyTransformState(inner_state=inner.init(params), step=_zeros_count())

    def update_fn(updates, state, params=None, **extra_args):
        kwargs = extra_args if forward_extra_args else {}
        pred = jnp.asarray(should_transform_fn(state.step, **kwargs))
        new_updates, new_inner = inner.update(updates, state.inner_state, params, **extra_args)
        new_updates = _select(pred, new_updates, updates)
        new_inner = _select(pred, new_inner, state.inner_state)
        return new_updates, ConditionallyTransformState(new_inner, safe_increment(state.step))

    return GradientTransformation(init_fn, update_fn)


class ConditionallyMaskState(NamedTuple):
    """State of :func:`conditionally_mask`."""

    step: Any  # int32, shape ()
    inner_state: Any


def conditionally_mask(inner: GradientTransformation, should_transform_fn: ConditionFn,
                       forward_extra_args: bool = False) -> GradientTransformation:
    """Applies ``inner`` where ``should_transform_fn(step)`` is True; otherwise returns zero
    updates and keeps ``inner``'s state.

    Args:
        inner: the transformation to apply conditionally.
        should_transform_fn: ``step -> bool`` (``step`` counts calls from 0).
        forward_extra_args: pass the keyword ``extra_args`` to ``should_transform_fn``.

    Returns:
        A :class:`GradientTransformation` with state :class:`ConditionallyMaskState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.conditionally_mask(optim.scale(10.0), lambda step: step >= 1)
        >>> state = tx.init(jnp.zeros(1))
        >>> u0, state = tx.update(jnp.ones(1), state)
        >>> u1, state = tx.update(jnp.ones(1), state)
        >>> print(float(u0[0]), float(u1[0]))
        0.0 10.0
    """
    inner = _base.with_extra_args_support(inner)

    def init_fn(params):
        return ConditionallyMaskState(step=_zeros_count(), inner_state=inner.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        kwargs = extra_args if forward_extra_args else {}
        pred = jnp.asarray(should_transform_fn(state.step, **kwargs))
        new_updates, new_inner = inner.update(updates, state.inner_state, params, **extra_args)
        new_updates = _select(pred, new_updates, otu.zeros_like(updates))
        new_inner = _select(pred, new_inner, state.inner_state)
        return new_updates, ConditionallyMaskState(safe_increment(state.step), new_inner)

    return GradientTransformation(init_fn, update_fn)


def scale_gradient(inputs, scale: float):
    """The identity on ``inputs`` whose gradient is multiplied by ``scale``.

    Args:
        inputs: a pytree of arrays.
        scale: the factor applied to cotangents flowing back through ``inputs``.

    Returns:
        ``inputs``, unchanged in value.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(optim.scale_gradient(x, 0.5) ** 2)
        >>> print(nanofn.grad(f)(jnp.array([2.0])).tolist())
        [2.0]
    """
    stop = nanofn.lax.stop_gradient
    return tree_util.tree_map(lambda x: x * scale + stop(x - x * scale), inputs)


# --- monitoring -------------------------------------------------------------------------------


class SnapshotState(NamedTuple):
    """State of :func:`snapshot`: the last measurement, under its name."""

    measurement: dict


def snapshot(measure_name: str, measure: Callable) -> GradientTransformation:
    """Keeps ``measure(updates)`` in the state (``measure(params)`` after ``init``);
    the updates pass through unchanged.

    Args:
        measure_name: the key of the measurement in ``state.measurement``.
        measure: a function of a pytree, e.g. ``optim.tree.norm``.

    Returns:
        A :class:`GradientTransformation` with state :class:`SnapshotState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> opt = optim.chain(optim.sgd(0.1), optim.snapshot("norm", optim.tree.norm))
        >>> u, state = opt.update(jnp.array([30.0, 40.0]), opt.init(jnp.zeros(2)))
        >>> print(round(float(state[1].measurement["norm"]), 4))  # of the sgd updates
        5.0
    """

    def init_fn(params):
        return SnapshotState({measure_name: measure(params)})

    def update_fn(updates, state, params=None, **extra_args):
        del state, params, extra_args  # unused
        return updates, SnapshotState({measure_name: measure(updates)})

    return GradientTransformation(init_fn, update_fn)


class MonitorState(NamedTuple):
    """State of :func:`monitor`: the last measurements and the measures' own states."""

    measurements: dict
    measure_states: tuple


def monitor(measures: dict) -> GradientTransformation:
    """Records measurements of the updates in the state; the updates pass through.

    Args:
        measures: maps a name to a function of the updates, or to a transformation
            whose *output* is the measurement (e.g. :func:`measure_with_ema`).

    Returns:
        A :class:`GradientTransformation` with state :class:`MonitorState`; as in optax,
        ``measurements`` is empty until the first update.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> opt = optim.chain(optim.monitor({"grad_norm": optim.tree.norm}), optim.sgd(0.1))
        >>> u, state = opt.update(jnp.array([3.0, 4.0]), opt.init(jnp.zeros(2)))
        >>> print(float(state[0].measurements["grad_norm"]))
        5.0
    """
    transforms = {}
    for name, measure in measures.items():
        if callable(measure):
            transforms[name] = _base.stateless(lambda u, _, m=measure: m(u))
        else:
            transforms[name] = _base.with_extra_args_support(measure)
    names = tuple(transforms)

    def init_fn(params):
        return MonitorState({}, tuple(transforms[n].init(params) for n in names))

    def update_fn(updates, state, params=None, **extra_args):
        measurements, new_states = {}, []
        for i, name in enumerate(names):
            measurements[name], s = transforms[name].update(
                updates, state.measure_states[i], params, **extra_args)
            new_states.append(s)
        return updates, MonitorState(measurements, tuple(new_states))

    return GradientTransformation(init_fn, update_fn)


def measure_with_ema(measure: Callable, decay: float, debias: bool = True,
                     accumulator_dtype: Optional[Any] = None) -> GradientTransformation:
    """A transformation whose output is an exponential moving average of ``measure(updates)``.

    Meant as a measure of :func:`monitor`, not as a step of an optimizer chain.

    Args:
        measure: a function of the updates.
        decay: the decay of the average.
        debias: divide by ``1 - decay^t``.
        accumulator_dtype: dtype of the average.

    Returns:
        ``chain(stateless(measure), ema(decay, ...))`` with ``init`` measuring the params.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> opt = optim.monitor({"ema_norm": optim.measure_with_ema(optim.tree.norm, 0.9)})
        >>> state = opt.init(jnp.zeros(2))
        >>> for g in ([3.0, 4.0], [6.0, 8.0]):
        ...     u, state = opt.update(jnp.array(g), state)
        >>> print(round(float(state.measurements["ema_norm"]), 4))  # (0.09*5 + 0.1*10) / 0.19
        7.6316
    """
    from nanofn.optim._transform import ema
    base_ema = ema(decay, debias, accumulator_dtype)
    measurement_ema = base_ema._replace(init=lambda params: base_ema.init(measure(params)))
    return chain(_base.stateless(lambda updates, _: measure(updates)), measurement_ema)
