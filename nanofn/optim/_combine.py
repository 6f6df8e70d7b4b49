"""Combinators: gradient transformations built from other gradient transformations.

``chain`` runs transformations one after another; ``masked`` and ``multi_transform``
route parts of the parameter tree to different transformations; ``inject_hyperparams``
moves hyperparameters into the state so they can be read and changed between steps;
``apply_if_finite``, ``MultiSteps`` and ``lookahead`` wrap an optimizer to skip bad
steps, accumulate gradients, or keep slow weights.

Decisions that would be a Python ``if`` on a value (skip this step? emit the
accumulated gradient?) are made with ``where`` on arrays, so every combinator works on
traced values under ``jit``; both branches are computed and one is selected.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping, NamedTuple, Optional, Union

import numpy as np

import nanofn.numpy as jnp
from nanofn import _tree, tree_util
from nanofn.optim import _base
from nanofn.optim._base import GradientTransformation, OptState, Params, PyTree, Updates
from nanofn.optim._transform import _cast, _zeros_count, safe_increment


# --- chain ---------------------------------------------------------------------------------


def chain(*args: GradientTransformation) -> GradientTransformation:
    """Applies transformations in sequence: the updates of one are the input of the next.

    The state is a tuple with one state per transformation, in order.

    Args:
        *args: the transformations, first applied first.

    Returns:
        A :class:`GradientTransformation`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.chain(optim.clip(1.0), optim.scale(-0.1))
        >>> u, state = tx.update(jnp.array([5.0, 0.5]), tx.init(jnp.zeros(2)))
        >>> print([round(x, 3) for x in u.tolist()])
        [-0.1, -0.05]
    """
    for i, tx in enumerate(args):
        if not (isinstance(tx, tuple) and len(tx) == 2 and all(map(callable, tx))):
            raise TypeError(
                f"chain: argument {i} must be a GradientTransformation(init, update), got "
                f"{tx!r}. Did you pass an alias without calling it, e.g. `adam` instead of "
                "`adam(1e-3)`?")
    transforms = [_base.with_extra_args_support(tx) for tx in args]

    def init_fn(params):
        return tuple(tx.init(params) for tx in transforms)

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, tuple) or len(state) != len(transforms):
            got = f"a {type(state).__name__} of length {len(state)}" if isinstance(
                state, (tuple, list)) else repr(type(state).__name__)
            raise ValueError(
                f"chain: expected a state tuple of length {len(transforms)} (one per "
                f"transformation), got {got}. Pass the state returned by this chain's `init` "
                "or by its previous `update`.")
        # A first transformation that takes per-example gradients (a batch axis in front,
        # e.g. contrib.differentially_private_aggregate) is checked after it aggregates.
        checked = not transforms or not getattr(transforms[0].update, "per_example_updates",
                                                False)
        if checked:
            _base.check_update_shapes("chain.update", updates, params)
        new_state = []
        for tx, s in zip(transforms, state):
            updates, s = tx.update(updates, s, params, **extra_args)
            new_state.append(s)
            if not checked:
                _base.check_update_shapes("chain.update", updates, params)
                checked = True
        return updates, tuple(new_state)

    return GradientTransformation(init_fn, update_fn)


def named_chain(*args: tuple[str, GradientTransformation]) -> GradientTransformation:
    """Like :func:`chain`, but each transformation has a name and the state is a dict.

    Args:
        *args: ``(name, transformation)`` pairs with distinct names.

    Returns:
        A :class:`GradientTransformation` whose state maps each name to its state.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.named_chain(("clip", optim.clip(1.0)), ("adam", optim.scale_by_adam()))
        >>> state = tx.init(jnp.zeros(2))
        >>> sorted(state)
        ['adam', 'clip']
    """
    names = [name for name, _ in args]
    if len(names) != len(set(names)):
        raise ValueError(f"named_chain: names must be distinct, got {names}.")
    transforms = [(name, _base.with_extra_args_support(tx)) for name, tx in args]

    def init_fn(params):
        return {name: tx.init(params) for name, tx in transforms}

    def update_fn(updates, state, params=None, **extra_args):
        missing = [name for name in names if name not in state]
        if missing:
            raise ValueError(f"named_chain: the state lacks entries {missing}; pass the state "
                             "returned by this named_chain's `init`.")
        new_state = {}
        for name, tx in transforms:
            updates, new_state[name] = tx.update(updates, state[name], params, **extra_args)
        return updates, new_state

    return GradientTransformation(init_fn, update_fn)


# --- masking and routing --------------------------------------------------------------------


class MaskedState(NamedTuple):
    """State of :func:`masked`: the inner state, built for the masked-in leaves only."""

    inner_state: Any


class MaskedNode(NamedTuple):
    """Stands in for a masked-out leaf: an empty pytree node, so it holds no array."""


def _expand_prefix(prefix: PyTree, tree: PyTree, where: str, prefix_name: str) -> list:
    """Repeats each leaf of ``prefix`` over its subtree of ``tree``; one value per leaf."""
    prefix_leaves, prefix_def = tree_util.tree_flatten(prefix)
    try:
        subtrees = prefix_def.flatten_up_to(tree)
    except ValueError as e:
        explain = getattr(_tree, "_prefix_error", None)  # names both trees and the keys
        if explain is not None:
            e = explain(prefix_def, tree, where, f"`{prefix_name}`", "`params`")
        raise ValueError(
            f"{e}\nGive `{prefix_name}` the structure of the params, or a prefix of it."
        ) from None
    out = []
    for value, sub in zip(prefix_leaves, subtrees):
        out.extend([value] * len(tree_util.tree_leaves(sub)))
    return out


def _mask_leaves(mask, tree, where):
    """Per leaf of ``tree``, True if the mask selects it."""
    mask_tree = mask(tree) if callable(mask) else mask
    flags = _expand_prefix(mask_tree, tree, where, "mask")
    out = []
    for f in flags:
        if isinstance(f, (bool, np.bool_)):
            out.append(bool(f))
        elif hasattr(f, "shape") and f.shape == () and str(f.dtype) == "bool":
            out.append(bool(f))  # a concrete boolean scalar array
        else:
            raise TypeError(f"{where}: the leaves of `mask` must be booleans, got {f!r}.")
    return out


def masked(inner: GradientTransformation, mask, *, mask_compatible_extra_args: bool = False
           ) -> GradientTransformation:
    """Applies ``inner`` only to the leaves where ``mask`` is True; others pass through.

    ``inner`` sees (and keeps state for) the masked-in leaves only: masked-out leaves
    are replaced by :class:`MaskedNode`, an empty node, in what it receives.

    Args:
        inner: the transformation to apply to part of the tree.
        mask: a pytree of booleans with the structure of the params, or a prefix of it
            (``{"w": True, "b": False}`` for ``params = {"w": ..., "b": ...}`` even if
            each entry is itself a subtree), or a function ``params -> such a tree``.
        mask_compatible_extra_args: also mask each keyword ``extra_args`` value whose
            tree structure is that of the updates (per-parameter extra inputs).

    Returns:
        A :class:`GradientTransformation` with state :class:`MaskedState`.

    Raises:
        ValueError: (at ``init``/``update``) if the mask does not match the params; the
            message names the missing or extra keys.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.masked(optim.scale(10.0), {"w": True, "b": False})
        >>> g = {"w": jnp.ones(1), "b": jnp.ones(1)}
        >>> u, _ = tx.update(g, tx.init(g))
        >>> print(float(u["w"][0]), float(u["b"][0]))
        10.0 1.0
    """
    inner = _base.with_extra_args_support(inner)

    def mask_tree(tree, keep):
        leaves, treedef = tree_util.tree_flatten(tree)
        return treedef.unflatten([x if k else MaskedNode() for x, k in zip(leaves, keep)])

    def init_fn(params):
        if _is_params_placeholder(params):  # optim.tree.map_params finding param leaves
            return MaskedState(inner_state=inner.init(params))
        keep = _mask_leaves(mask, params, "masked")
        return MaskedState(inner_state=inner.init(mask_tree(params, keep)))

    def update_fn(updates, state, params=None, **extra_args):
        leaves, treedef = tree_util.tree_flatten(updates)
        keep = _mask_leaves(mask, updates, "masked")
        masked_params = None
        if params is not None:
            p_leaves, p_def = tree_util.tree_flatten(params)
            if p_def != treedef:
                raise _base.structure_error("masked", "updates", treedef, "params", p_def)
            masked_params = treedef.unflatten(
                [p if k else MaskedNode() for p, k in zip(p_leaves, keep)])
        masked_updates = treedef.unflatten([g if k else MaskedNode() for g, k in zip(leaves, keep)])
        if mask_compatible_extra_args:
            extra_args = {name: _mask_like(value, treedef, keep)
                          for name, value in extra_args.items()}
        new_inner, inner_state = inner.update(masked_updates, state.inner_state, masked_params,
                                              **extra_args)
        new_leaves = iter(tree_util.tree_leaves(new_inner))
        merged = [next(new_leaves) if k else g for g, k in zip(leaves, keep)]
        return treedef.unflatten(merged), MaskedState(inner_state=inner_state)

    return GradientTransformation(init_fn, update_fn)


def _is_params_placeholder(params) -> bool:
    from nanofn.optim.tree import _ParamsPlaceholder
    return isinstance(params, _ParamsPlaceholder)


def _mask_like(value, treedef, keep):
    """``value`` with its masked-out leaves replaced, if it has the structure ``treedef``."""
    leaves, value_def = tree_util.tree_flatten(value)
    if value_def != treedef:
        return value
    return treedef.unflatten([x if k else MaskedNode() for x, k in zip(leaves, keep)])


class PartitionState(NamedTuple):
    """State of :func:`multi_transform` (:func:`partition`): one inner state per label.
    Named as optax names it, so state paths and lookups by class name match optax's."""

    inner_states: Mapping[Hashable, OptState]


MultiTransformState = PartitionState


def multi_transform(transforms: Mapping[Hashable, GradientTransformation], param_labels, *,
                    mask_compatible_extra_args: bool = False) -> GradientTransformation:
    """Routes each parameter to the transformation named by its label.

    Args:
        transforms: maps each label to a transformation.
        param_labels: a pytree of labels with the structure of the params (or a prefix
            of it), or a function ``params -> such a tree``. Every label must be a key of
            ``transforms``.
        mask_compatible_extra_args: pass each transformation only its own entries of the
            keyword ``extra_args`` that have the structure of the updates.

    Returns:
        A :class:`GradientTransformation` with state :class:`PartitionState`
        (`MultiTransformState`).

    Raises:
        ValueError: if a label has no transformation, or the labels do not match the
            params (the message names the missing or extra keys).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.multi_transform({"train": optim.sgd(0.1), "freeze": optim.set_to_zero()},
        ...                            {"w": "train", "b": "freeze"})
        >>> g = {"w": jnp.ones(1), "b": jnp.ones(1)}
        >>> u, _ = tx.update(g, tx.init(g))
        >>> print(round(float(u["w"][0]), 3), float(u["b"][0]))
        -0.1 0.0
    """
    transforms = {k: _base.with_extra_args_support(v) for k, v in transforms.items()}

    def labels_of(tree):
        labels = param_labels(tree) if callable(param_labels) else param_labels
        flat = _expand_prefix(labels, tree, "multi_transform", "param_labels")
        unknown = sorted({repr(label) for label in flat if label not in transforms})
        if unknown:
            raise ValueError(
                f"multi_transform: labels {', '.join(unknown)} in `param_labels` have no "
                f"transformation; `transforms` has keys {sorted(transforms, key=repr)}. "
                "Add a transformation for each label (optim.set_to_zero() freezes).")
        return flat

    def masked_for(label, flat_labels):
        return masked(transforms[label], lambda tree: tree_util.tree_structure(tree).unflatten(
            [lab == label for lab in flat_labels]),
            mask_compatible_extra_args=mask_compatible_extra_args)

    def init_fn(params):
        if _is_params_placeholder(params):  # optim.tree.map_params finding param leaves
            return PartitionState({label: masked(tx, True).init(params)
                                        for label, tx in transforms.items()})
        flat = labels_of(params)
        return PartitionState(
            {label: masked_for(label, flat).init(params) for label in transforms})

    def update_fn(updates, state, params=None, **extra_args):
        flat = labels_of(updates)
        new_states = {}
        for label in transforms:
            updates, new_states[label] = masked_for(label, flat).update(
                updates, state.inner_states[label], params, **extra_args)
        return updates, PartitionState(new_states)

    return GradientTransformation(init_fn, update_fn)


partition = multi_transform


# --- hyperparameters in the state ---------------------------------------------------------


class InjectHyperparamsState(NamedTuple):
    """The older state of :func:`inject_hyperparams`, kept because optax still exports it;
    both injections now return :class:`InjectStatefulHyperparamsState`, which has these
    fields and ``hyperparams_states``.

    ``hyperparams`` maps each numeric (or scheduled) hyperparameter to a scalar array;
    change one between steps with
    ``state.hyperparams["learning_rate"] = jnp.asarray(1e-4)``.
    """

    count: Any  # int32, shape ()
    hyperparams: dict
    inner_state: OptState


def _highest_float_dtype(tree):
    dtypes = [np.dtype(x.dtype) for x in tree_util.tree_leaves(tree) if hasattr(x, "dtype")]
    floats = [d for d in dtypes if d.kind == "f"]
    return max(floats, key=lambda d: d.itemsize) if floats else np.dtype(np.float32)


def _is_numeric(value) -> bool:
    return (isinstance(value, (int, float, np.number)) and not isinstance(value, bool)) or (
        hasattr(value, "dtype") and hasattr(value, "shape"))


def _as_hyperparam(value, float_dtype):
    if hasattr(value, "dtype"):
        kind = np.dtype(value.dtype).kind
    else:
        kind = "i" if isinstance(value, (int, np.integer)) else "f"
    return jnp.asarray(value, dtype=float_dtype if kind == "f" else None)


def inject_hyperparams(inner_factory: Callable[..., GradientTransformation],
                       static_args: Union[str, tuple, list, set] = (),
                       hyperparam_dtype: Optional[Any] = None
                       ) -> Callable[..., GradientTransformation]:
    """Makes an optimizer's numeric hyperparameters part of its state.

    ``inject_hyperparams(optim.adam)(learning_rate=0.1)`` behaves like
    ``optim.adam(0.1)``, but its state holds ``hyperparams["learning_rate"]`` (and every
    other numeric argument) as arrays that can be read or changed between steps.
    Arguments given as schedules are evaluated at the step count and the value is
    stored in ``hyperparams`` each step. As in optax, this is
    :func:`inject_stateful_hyperparams`: each schedule is wrapped in a
    :class:`WrappedSchedule` whose step count lives in ``hyperparams_states``.

    Args:
        inner_factory: a function returning a transformation, such as an alias.
        static_args: names of arguments that must stay Python values (e.g. sizes used
            in Python control flow). Booleans, strings, dtypes and ``None`` always stay static.
        hyperparam_dtype: dtype of the float hyperparameters; ``None`` uses the widest
            float dtype of the params.

    Returns:
        A function with the signature of ``inner_factory`` that returns a
        :class:`GradientTransformation` with state :class:`InjectStatefulHyperparamsState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.inject_hyperparams(optim.sgd)(learning_rate=0.1)
        >>> state = tx.init(jnp.zeros(1))
        >>> state.hyperparams["learning_rate"] = jnp.asarray(0.5)
        >>> u, state = tx.update(jnp.ones(1), state)
        >>> print(float(u[0]))
        -0.5
    """
    from nanofn.optim._numerics_extra import _inject  # defined with its stateful form
    return _inject(inner_factory, static_args, hyperparam_dtype, "inject_hyperparams")


def _cast_like(tree, like):
    leaves, treedef = tree_util.tree_flatten(tree)
    like_leaves, like_def = tree_util.tree_flatten(like)
    if treedef != like_def:
        return tree
    return treedef.unflatten([
        _cast(x, y.dtype) if hasattr(x, "dtype") and hasattr(y, "dtype") else x
        for x, y in zip(leaves, like_leaves)])


def _select(pred, on_true, on_false):
    """``where(pred, a, b)`` over two pytrees of the same structure, keeping dtypes."""
    return tree_util.tree_map(
        lambda a, b: _cast(jnp.where(pred, a, b), b.dtype), on_true, on_false)


def _all_finite(tree):
    result = jnp.asarray(True)
    for x in tree_util.tree_leaves(tree):
        result = jnp.logical_and(result, jnp.all(jnp.isfinite(x)))
    return result


# --- skipping non-finite steps --------------------------------------------------------------


class ApplyIfFiniteState(NamedTuple):
    """State of :func:`apply_if_finite`."""

    notfinite_count: Any  # int32: consecutive non-finite updates so far
    last_finite: Any  # bool: whether the last update was finite
    total_notfinite: Any  # int32: non-finite updates seen in total
    inner_state: OptState


def apply_if_finite(inner: GradientTransformation, max_consecutive_errors: int
                    ) -> GradientTransformation:
    """Skips steps whose updates contain NaN or inf, and counts them.

    A skipped step returns zero updates and leaves the inner state unchanged. After
    more than ``max_consecutive_errors`` non-finite steps in a row, updates are applied
    anyway (so a persistent problem shows up instead of silently freezing training).

    Args:
        inner: the transformation to protect.
        max_consecutive_errors: how many non-finite steps in a row to skip, >= 0.

    Returns:
        A :class:`GradientTransformation` with state :class:`ApplyIfFiniteState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.apply_if_finite(optim.sgd(0.1), max_consecutive_errors=3)
        >>> state = tx.init(jnp.zeros(1))
        >>> u, state = tx.update(jnp.array([jnp.nan]), state)
        >>> print(float(u[0]), int(state.total_notfinite))
        0.0 1
    """
    _base.check_nonneg("apply_if_finite", "max_consecutive_errors", max_consecutive_errors)
    inner = _base.with_extra_args_support(inner)

    def init_fn(params):
        return ApplyIfFiniteState(
            notfinite_count=_zeros_count(), last_finite=jnp.asarray(True),
            total_notfinite=_zeros_count(), inner_state=inner.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        finite = _all_finite(updates)
        notfinite_count = jnp.where(finite, 0, safe_increment(state.notfinite_count))
        apply = jnp.logical_or(finite, notfinite_count > max_consecutive_errors)
        new_updates, new_inner = inner.update(updates, state.inner_state, params, **extra_args)
        zeros = tree_util.tree_map(jnp.zeros_like, new_updates)
        return _select(apply, new_updates, zeros), ApplyIfFiniteState(
            notfinite_count=_cast(notfinite_count, np.dtype(np.int32)),
            last_finite=finite,
            total_notfinite=jnp.where(finite, state.total_notfinite,
                                      safe_increment(state.total_notfinite)),
            inner_state=_select(apply, new_inner, state.inner_state))

    return GradientTransformation(init_fn, update_fn)


# --- gradient accumulation ------------------------------------------------------------------


def skip_not_finite(updates: Updates, gradient_step, params: Optional[Params]):
    """A ``should_skip_update_fn`` for :class:`MultiSteps`: skip if any update is not finite.

    Args:
        updates: the incoming updates.
        gradient_step: the current gradient step (unused).
        params: the current params (unused).

    Returns:
        ``(should_skip, {"should_skip": ..., "num_not_finite": ...})``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> skip, info = optim.skip_not_finite(jnp.array([1.0, jnp.inf]), 0, None)
        >>> print(bool(skip), int(info["num_not_finite"]))
        True 1
    """
    del gradient_step, params  # unused
    num = jnp.asarray(0, dtype=jnp.int32)
    for x in tree_util.tree_leaves(updates):
        num = num + jnp.asarray(jnp.sum(jnp.logical_not(jnp.isfinite(x))), dtype=jnp.int32)
    should_skip = num > 0
    return should_skip, {"should_skip": should_skip, "num_not_finite": num}


def skip_large_updates(updates: Updates, gradient_step, params: Optional[Params],
                       max_squared_norm: float):
    """A ``should_skip_update_fn`` for :class:`MultiSteps`: skip if ``||u||^2`` is too large.

    Use with ``functools.partial(skip_large_updates, max_squared_norm=...)``.

    Args:
        updates: the incoming updates.
        gradient_step: the current gradient step (unused).
        params: the current params (unused).
        max_squared_norm: the largest squared global norm that is not skipped.

    Returns:
        ``(should_skip, {"should_skip": ..., "norm_squared": ...})``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> skip, info = optim.skip_large_updates(jnp.array([3.0, 4.0]), 0, None, 10.0)
        >>> print(bool(skip), float(info["norm_squared"]))
        True 25.0
    """
    del gradient_step, params  # unused
    norm_sq = _base.global_norm(updates) ** 2
    should_skip = jnp.logical_not(norm_sq < max_squared_norm)  # NaN norms are skipped too
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_sq}


class MultiStepsState(NamedTuple):
    """State of :class:`MultiSteps`."""

    mini_step: Any  # int32: mini-batches accumulated since the last real step
    gradient_step: Any  # int32: real (inner optimizer) steps taken
    inner_opt_state: OptState
    acc_grads: Updates
    skip_state: Any = ()


class MultiSteps:
    """Gradient accumulation: one inner step every ``k`` calls, with the mean gradient.

    Calls in between return zero updates, so the training loop does not change:
    ``k`` mini-batches of size ``b`` then act like one batch of size ``k * b``.

    Args:
        opt: the inner optimizer.
        every_k_schedule: ``k``, an int, or a function of the gradient step giving ``k``.
        use_grad_mean: average the accumulated gradients (True) or sum them.
        should_skip_update_fn: optional ``(updates, gradient_step, params) ->
            (should_skip, info)``, e.g. :func:`skip_not_finite`; a skipped mini-batch is
            not accumulated.
        accumulator_dtype: dtype of the accumulated gradients; ``None`` (nanofn's
            default; optax uses float32) keeps each parameter's dtype.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> ms = optim.MultiSteps(optim.sgd(1.0), every_k_schedule=2)
        >>> state = ms.init(jnp.zeros(1))
        >>> u1, state = ms.update(jnp.array([1.0]), state)
        >>> u2, state = ms.update(jnp.array([3.0]), state)
        >>> print(float(u1[0]), float(u2[0]))
        0.0 -2.0
    """

    def __init__(self, opt: GradientTransformation,
                 every_k_schedule: Union[int, Callable[[Any], Any]],
                 use_grad_mean: bool = True,
                 should_skip_update_fn: Optional[Callable] = None,
                 accumulator_dtype: Optional[Any] = None):
        if isinstance(every_k_schedule, (int, np.integer)):
            _base.check_positive("MultiSteps", "every_k_schedule", every_k_schedule)
            k = int(every_k_schedule)
            self._every_k_schedule = lambda step: k
        elif callable(every_k_schedule):
            self._every_k_schedule = every_k_schedule
        else:
            raise TypeError("MultiSteps: `every_k_schedule` must be a positive int or a "
                            f"function of the gradient step, got {every_k_schedule!r}.")
        self._opt = _base.with_extra_args_support(opt)
        self._use_grad_mean = use_grad_mean
        self._should_skip_update_fn = should_skip_update_fn
        self._accumulator_dtype = None if accumulator_dtype is None else np.dtype(
            accumulator_dtype)

    @property
    def inner_opt(self) -> GradientTransformation:
        """The wrapped optimizer."""
        return self._opt

    def init(self, params: Params) -> MultiStepsState:
        """Initial state: zero accumulators and the inner optimizer's initial state."""
        gradient_step = _zeros_count()
        skip_state = ()
        if self._should_skip_update_fn is not None:
            zeros = tree_util.tree_map(jnp.zeros_like, params)
            _, skip_state = self._should_skip_update_fn(zeros, gradient_step, params)
        return MultiStepsState(
            mini_step=_zeros_count(), gradient_step=gradient_step,
            inner_opt_state=self._opt.init(params),
            acc_grads=tree_util.tree_map(
                lambda p: jnp.zeros_like(p, dtype=self._accumulator_dtype), params),
            skip_state=skip_state)

    def update(self, updates: Updates, state: MultiStepsState, params: Optional[Params] = None,
               **extra_args) -> tuple[Updates, MultiStepsState]:
        """Accumulates ``updates``; every k-th call runs the inner optimizer on the mean."""
        k = self._every_k_schedule(state.gradient_step)
        n = state.mini_step

        def accumulate(g, acc):
            if self._use_grad_mean:  # running mean: acc + (g - acc) / (n + 1)
                return _cast(acc + (g - acc) / jnp.asarray(n + 1, dtype=acc.dtype), acc.dtype)
            return _cast(acc + g, acc.dtype)

        acc_grads = _base.tree_map_checked(
            accumulate, updates, state.acc_grads, names=("updates", "state.acc_grads"),
            where="MultiSteps")
        emit = n == k - 1
        inner_updates, inner_state = self._opt.update(
            _cast_like(acc_grads, updates), state.inner_opt_state, params, **extra_args)
        zero_updates = tree_util.tree_map(jnp.zeros_like, inner_updates)
        new_updates = _select(emit, inner_updates, zero_updates)
        new_state = MultiStepsState(
            mini_step=jnp.where(emit, 0, safe_increment(n)),
            gradient_step=jnp.where(emit, safe_increment(state.gradient_step),
                                    state.gradient_step),
            inner_opt_state=_select(emit, inner_state, state.inner_opt_state),
            acc_grads=tree_util.tree_map(lambda a: jnp.where(emit, jnp.zeros_like(a), a),
                                         acc_grads),
            skip_state=state.skip_state)
        if self._should_skip_update_fn is None:
            return new_updates, new_state
        skip, skip_state = self._should_skip_update_fn(updates, state.gradient_step, params)
        if getattr(skip, "shape", None) != () or str(getattr(skip, "dtype", "")) != "bool":
            raise ValueError(
                "MultiSteps: `should_skip_update_fn` must return a boolean scalar array first, "
                f"got {skip!r}.")
        kept_state = state._replace(skip_state=skip_state)
        new_state = new_state._replace(skip_state=skip_state)
        return (_select(skip, zero_updates, new_updates),
                _select(skip, kept_state, new_state))

    def has_updated(self, state: MultiStepsState):
        """True right after a call that ran the inner optimizer."""
        return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def gradient_transformation(self) -> GradientTransformation:
        """This accumulator as a plain :class:`GradientTransformation`."""
        return GradientTransformation(self.init, self.update)


# --- lookahead -----------------------------------------------------------------------------


class LookaheadState(NamedTuple):
    """State of :func:`lookahead`."""

    fast_state: OptState
    steps_since_sync: Any  # int32


class LookaheadParams(NamedTuple):
    """The two copies of the parameters that :func:`lookahead` keeps."""

    fast: Params
    slow: Params

    @classmethod
    def init_synced(cls, params: Params) -> "LookaheadParams":
        """Both copies equal to ``params``."""
        return cls(fast=params, slow=params)


def lookahead(fast_optimizer: GradientTransformation, sync_period: int,
              slow_step_size: float, reset_state: bool = False) -> GradientTransformation:
    """Lookahead: a fast optimizer explores; every ``sync_period`` steps the slow weights
    move ``slow_step_size`` of the way towards the fast ones and the fast weights reset
    to them.

    Parameters are :class:`LookaheadParams` ``(fast, slow)``; updates are returned for
    both, so ``apply_updates`` works unchanged. Evaluate the model with ``params.slow``.

    Args:
        fast_optimizer: the inner optimizer.
        sync_period: fast steps between synchronisations, >= 1.
        slow_step_size: interpolation factor of the slow weights, in [0, 1].
        reset_state: reset the fast optimizer's state at each synchronisation.

    Returns:
        A :class:`GradientTransformation` with state :class:`LookaheadState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.lookahead(optim.sgd(1.0), sync_period=2, slow_step_size=0.5)
        >>> params = optim.LookaheadParams.init_synced(jnp.zeros(1))
        >>> state = tx.init(params)
        >>> for _ in range(2):
        ...     u, state = tx.update(jnp.ones(1), state, params)
        ...     params = optim.apply_updates(params, u)
        >>> print(float(params.slow[0]), float(params.fast[0]))
        -1.0 -1.0
    """
    _base.check_positive("lookahead", "sync_period", sync_period)
    _base.check_range("lookahead", "slow_step_size", slow_step_size, low=0.0, high=1.0)
    fast_optimizer = _base.with_extra_args_support(fast_optimizer)

    def init_fn(params):
        fast = params.fast if isinstance(params, LookaheadParams) else params
        return LookaheadState(fast_state=fast_optimizer.init(fast),
                              steps_since_sync=_zeros_count())

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(params, LookaheadParams):
            raise ValueError(
                "lookahead: `params` must be a LookaheadParams(fast, slow); build them with "
                "LookaheadParams.init_synced(params).")
        updates, fast_state = fast_optimizer.update(updates, state.fast_state, params.fast,
                                                    **extra_args)
        sync = state.steps_since_sync == sync_period - 1
        # After this step the fast weights would be fast + u; at a sync the slow weights
        # move to slow + a * (fast + u - slow) and the fast weights jump to them.
        diff = tree_util.tree_map(lambda f, u, s: f + u - s, params.fast, updates, params.slow)
        slow_updates = tree_util.tree_map(
            lambda d: _cast(jnp.where(sync, slow_step_size * d, jnp.zeros_like(d)), d.dtype), diff)
        fast_updates = tree_util.tree_map(
            lambda u, d: _cast(jnp.where(sync, u - (1 - slow_step_size) * d, u), u.dtype),
            updates, diff)
        if reset_state:
            fast_state = _select(sync, fast_optimizer.init(params.fast), fast_state)
        steps = jnp.where(sync, 0, state.steps_since_sync + 1)
        return LookaheadParams(fast=fast_updates, slow=slow_updates), LookaheadState(
            fast_state=fast_state, steps_since_sync=steps)

    return GradientTransformation(init_fn, update_fn)
