"""Gradient transformations: the interface every optimizer in nanofn.optim shares.

A gradient transformation is a pair of pure functions, ``init(params) -> state`` and
``update(updates, state, params=None, **extra_args) -> (updates, state)``, kept together
in the two-field NamedTuple :class:`GradientTransformation`. Optimizers hold no hidden
state: everything they remember (moments, step counts, random keys) lives in the
``state`` pytree, which ``update`` returns anew each step. That is what lets an
optimizer step be jitted, vmapped and checkpointed like any other function of pytrees.

This module also holds the helpers every building block uses: the stateless
constructors, ``apply_updates``, ``global_norm``, and the pytree checks that turn a
structure mismatch into an error naming both structures and the first difference.
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import Any, Callable, NamedTuple, Optional, Protocol, Union

import numpy as np

import nanofn.numpy as jnp
from nanofn import _tree, tree_util

# --- shared type aliases ---------------------------------------------------------------

PyTree = Any
Params = Any  # a pytree of arrays
Updates = Any  # a pytree of arrays with the structure of Params
OptState = Any  # a pytree of arrays
Schedule = Callable[[Any], Any]  # step count (int32 array) -> scalar
ScalarOrSchedule = Union[float, Any, Schedule]

NO_PARAMS_MSG = (
    "this transformation needs the current parameters: call "
    "`update(updates, state, params)` with `params`, not `update(updates, state)`."
)


class TransformInitFn(Protocol):
    """The ``init`` half of a :class:`GradientTransformation`: ``params -> state``."""

    def __call__(self, params: Params) -> OptState: ...


class TransformUpdateFn(Protocol):
    """The ``update`` half: ``(updates, state, params=None, **extra_args) -> (updates, state)``."""

    def __call__(
        self, updates: Updates, state: OptState, params: Optional[Params] = None, **extra_args
    ) -> tuple[Updates, OptState]: ...


class GradientTransformation(NamedTuple):
    """A pair of pure functions that transform gradients into parameter updates.

    ``init(params)`` builds the initial state (a pytree of arrays) from example
    parameters. ``update(updates, state, params=None, **extra_args)`` maps a pytree of
    candidate updates (usually gradients) and the current state to transformed updates
    and the next state. Every update function in nanofn accepts (and ignores unknown)
    keyword ``extra_args``, so transformations that need e.g. the loss value can be
    chained with those that don't.

    Attributes:
        init: ``params -> state``.
        update: ``(updates, state, params=None, **extra_args) -> (updates, new_state)``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.GradientTransformation(
        ...     init=lambda params: optim.EmptyState(),
        ...     update=lambda updates, state, params=None, **kw: (updates, state))
        >>> updates, state = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))
        >>> updates.shape
        (2,)
    """

    init: TransformInitFn
    update: TransformUpdateFn


class GradientTransformationExtraArgs(GradientTransformation):
    """Kept for porting optax code: in nanofn every transformation takes ``**extra_args``.

    It is a :class:`GradientTransformation` with no difference in behaviour.
    """


class EmptyState(NamedTuple):
    """The state of a stateless transformation: an empty pytree."""


def init_empty_state(params: Params) -> EmptyState:
    """``init`` for transformations without state: returns :class:`EmptyState`.

    Args:
        params: ignored.

    Returns:
        ``EmptyState()``.

    Example:
        >>> from nanofn import optim
        >>> optim.init_empty_state({"w": 1.0})
        EmptyState()
    """
    del params  # unused
    return EmptyState()


def with_extra_args_support(tx: GradientTransformation) -> GradientTransformation:
    """Wraps ``tx`` so its ``update`` accepts (and ignores) extra keyword arguments.

    Transformations written for the three-argument optax interface
    ``update(updates, state, params=None)`` can then sit in a :func:`chain` whose other
    members take ``**extra_args``.

    Args:
        tx: any gradient transformation.

    Returns:
        ``tx`` itself if its update already accepts ``**kwargs``, else a wrapper.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> plain = optim.GradientTransformation(
        ...     optim.init_empty_state, lambda u, s, params=None: (u, s))
        >>> tx = optim.with_extra_args_support(plain)
        >>> u, _ = tx.update(jnp.ones(1), tx.init(None), loss=3.0)
        >>> u.shape
        (1,)
    """
    if _accepts_var_kwargs(tx.update):
        return tx
    inner_update = tx.update

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args  # the wrapped update does not take them
        return inner_update(updates, state, params)

    return GradientTransformation(tx.init, update_fn)


def _accepts_var_kwargs(fn) -> bool:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: assume the full API
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def identity() -> GradientTransformation:
    """Leaves the updates unchanged (stateless).

    Not to be confused with :func:`set_to_zero`, which is what keeps *parameters*
    unchanged.

    Returns:
        A :class:`GradientTransformation`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.identity()
        >>> u, _ = tx.update(jnp.array([1.0, -2.0]), tx.init(None))
        >>> print(u.tolist())
        [1.0, -2.0]
    """

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        return updates, state

    return GradientTransformation(init_empty_state, update_fn)


def set_to_zero() -> GradientTransformation:
    """Maps every update to zeros, so applying them leaves the parameters unchanged.

    Combine with :func:`masked` or :func:`multi_transform` to freeze part of a model.

    Returns:
        A :class:`GradientTransformation`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.set_to_zero()
        >>> u, _ = tx.update(jnp.array([1.0, -2.0]), tx.init(None))
        >>> print(u.tolist())
        [0.0, 0.0]
    """

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        return tree_util.tree_map(jnp.zeros_like, updates), state

    return GradientTransformation(init_empty_state, update_fn)


def stateless(f: Callable[[Updates, Optional[Params]], Updates]) -> GradientTransformation:
    """Builds a stateless transformation from a function ``f(updates, params) -> updates``.

    Args:
        f: takes the whole updates pytree and the params pytree (or ``None``) and
            returns new updates.

    Returns:
        A :class:`GradientTransformation` whose state is :class:`EmptyState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim, tree_util
        >>> double = optim.stateless(lambda u, p: tree_util.tree_map(lambda g: 2 * g, u))
        >>> u, _ = double.update(jnp.array([1.0, 3.0]), double.init(None))
        >>> print(u.tolist())
        [2.0, 6.0]
    """

    def update_fn(updates, state, params=None, **extra_args):
        del state, extra_args  # unused
        return f(updates, params), EmptyState()

    return GradientTransformation(init_empty_state, update_fn)


def stateless_with_tree_map(f: Callable[[Any, Optional[Any]], Any]) -> GradientTransformation:
    """Like :func:`stateless`, but ``f(update, param)`` works on one array at a time.

    Args:
        f: maps one update array and its parameter array (``None`` when ``update`` is
            called without params) to a new update array.

    Returns:
        A :class:`GradientTransformation` whose state is :class:`EmptyState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.stateless_with_tree_map(lambda g, p: g * p)
        >>> u, _ = tx.update({"w": jnp.array([2.0])}, tx.init(None), {"w": jnp.array([3.0])})
        >>> print(u["w"].tolist())
        [6.0]
    """

    def update_fn(updates, state, params=None, **extra_args):
        del state, extra_args  # unused
        if params is None:
            return tree_util.tree_map(lambda g: f(g, None), updates), EmptyState()
        new = tree_map_checked(f, updates, params, names=("updates", "params"), where="stateless")
        return new, EmptyState()

    return GradientTransformation(init_empty_state, update_fn)


# --- applying updates -------------------------------------------------------------------


def apply_updates(params: Params, updates: Updates) -> Params:
    """Returns ``params + updates``, leaf by leaf, keeping each parameter's dtype.

    Args:
        params: a pytree of parameter arrays.
        updates: a pytree of updates with the same structure (from an optimizer's
            ``update``).

    Returns:
        The new parameters, with the structure and dtypes of ``params``.

    Raises:
        ValueError: if the two trees have different structures (the message shows both
            and the first difference), or an update's shape differs from its parameter's.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> p = optim.apply_updates({"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([0.5, -1.0])})
        >>> print(p["w"].tolist())
        [1.5, 1.0]
    """

    def add(p, u):
        new = p + u
        return new if _dtype(new) == _dtype(p) else jnp.asarray(new, dtype=_dtype(p))

    check_update_shapes("apply_updates", updates, params)
    return tree_map_checked(add, params, updates, names=("params", "updates"),
                            where="apply_updates")


def _shape(x):
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def check_update_shapes(where: str, updates, params) -> None:
    """Raises ValueError if an update's shape differs from its parameter's (numpy would
    broadcast it into the parameter and silently change the parameter's shape)."""
    if params is None:
        return
    u_leaves, p_leaves = tree_util.tree_leaves(updates), tree_util.tree_leaves(params)
    if len(u_leaves) != len(p_leaves):
        return  # a structure mismatch: the tree checks name it
    for i, (u, p) in enumerate(zip(u_leaves, p_leaves)):
        if _shape(u) != _shape(p):
            path = tree_util.keystr(tree_util.tree_flatten_with_path(params)[0][i][0])
            raise ValueError(
                f"{where}: the update for params{path} has shape {_shape(u)}, but the parameter "
                f"has shape {_shape(p)}; each gradient/update must have its parameter's shape")


def incremental_update(new_tensors: Params, old_tensors: Params, step_size) -> Params:
    """Polyak averaging: ``step_size * new + (1 - step_size) * old``, leaf by leaf.

    Typical use: keeping a slowly moving "target" copy of the parameters.

    Args:
        new_tensors: the latest values.
        old_tensors: the running average, same structure.
        step_size: weight of ``new_tensors``, in ``[0, 1]``.

    Returns:
        The new running average.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> t = optim.incremental_update(jnp.array([1.0]), jnp.array([0.0]), step_size=0.1)
        >>> print(round(float(t[0]), 3))
        0.1
    """
    check_range("incremental_update", "step_size", step_size, low=0.0, high=1.0)
    return tree_map_checked(
        lambda new, old: step_size * new + (1.0 - step_size) * old,
        new_tensors, old_tensors, names=("new_tensors", "old_tensors"),
        where="incremental_update")


def periodic_update(new_tensors: Params, old_tensors: Params, steps, update_period: int) -> Params:
    """Returns ``new_tensors`` every ``update_period`` steps, else ``old_tensors``.

    Works with a traced ``steps`` under ``jit`` (the choice is a ``where``, not an
    ``if``).

    Args:
        new_tensors: the latest values.
        old_tensors: the values to keep between periods, same structure.
        steps: the current step (int or int32 array).
        update_period: how many steps between refreshes, a positive int.

    Returns:
        ``new_tensors`` if ``steps % update_period == 0`` else ``old_tensors``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> print(float(optim.periodic_update(jnp.array(1.0), jnp.array(0.0), 10, 5)))
        1.0
        >>> print(float(optim.periodic_update(jnp.array(1.0), jnp.array(0.0), 11, 5)))
        0.0
    """
    check_range("periodic_update", "update_period", update_period, low=1)
    refresh = jnp.asarray(steps) % update_period == 0
    return tree_map_checked(
        lambda new, old: jnp.where(refresh, new, old), new_tensors, old_tensors,
        names=("new_tensors", "old_tensors"), where="periodic_update")


def abs_sq(x):
    """``|x|^2`` elementwise: ``x * x`` for real ``x``, ``real(x * conj(x))`` for complex.

    The squared magnitude every second moment, sum of squares and norm in nanofn.optim is
    built from (optax's ``numerics.abs_sq``): a complex parameter counts as the pair of
    its real and imaginary parts, and the result is real. The choice is made from the
    dtype when the function is traced, so real arrays cost one multiplication, as before.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim._base import abs_sq
        >>> abs_sq(jnp.array([3 + 4j])).tolist(), abs_sq(jnp.array([-2.0])).tolist()
        ([25.0], [4.0])
    """
    if jnp.iscomplexobj(x):
        return jnp.real(x * jnp.conj(x))
    return x * x


def wide_float(dtype) -> np.dtype:
    """The dtype a leaf's scalar factors are computed in: the leaf's real dtype, but at
    least float32. A half-precision leaf gets them in float32, rounded once, as in optax:
    in float16 itself ``1 - 0.999**t`` is off by 2% (``0.999`` rounds to ``0.99902``).

    Example:
        >>> import numpy as np
        >>> from nanofn.optim._base import wide_float
        >>> wide_float(np.float16), wide_float(np.complex128)
        (dtype('float32'), dtype('float64'))
    """
    dtype = np.dtype(dtype)
    real = np.finfo(dtype).dtype if dtype.kind == "c" else dtype
    return np.promote_types(real, np.float32)


def bias_factor(decay, count, dtype):
    """``1 - decay**count`` for a leaf of ``dtype`` (the factor Adam-style moments are
    divided by): computed in :func:`wide_float` of ``dtype`` and rounded once to ``dtype``.

    Example:
        >>> import numpy as np
        >>> from nanofn.optim._base import bias_factor
        >>> float(bias_factor(0.999, 1, np.float16))
        0.0010004043579101562
    """
    wide = wide_float(dtype)
    return jnp.asarray(1 - jnp.asarray(decay, dtype=wide) ** jnp.asarray(count, dtype=wide),
                       dtype=dtype)


def reject_complex(where: str, tree: PyTree, what: str = "parameters") -> None:
    """Raises ValueError if a leaf of ``tree`` is complex (for transformations that order
    or compare values, which complex numbers cannot be; optax refuses them too)."""
    for x in tree_util.tree_leaves(tree):
        if jnp.iscomplexobj(x):
            raise ValueError(
                f"{where} does not support complex {what} (got a leaf of dtype "
                f"{_dtype(x)}): it compares or orders values, which complex numbers have "
                "no order for. Optimize the real and imaginary parts as separate real "
                "parameters, e.g. with `optim.contrib.split_real_and_imaginary`.")


def global_norm(updates: PyTree):
    """The L2 norm of all leaves of a pytree taken together.

    Complex leaves count with their magnitude, ``|x|^2``, as in optax.

    Args:
        updates: a pytree of arrays.

    Returns:
        A scalar array, ``sqrt(sum of squares of every element)``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> print(float(optim.global_norm({"a": jnp.array([3.0]), "b": jnp.array([4.0])})))
        5.0
    """
    leaves = tree_util.tree_leaves(updates)
    if not leaves:
        return jnp.asarray(0.0)
    total = None
    for x in leaves:
        sq = jnp.sum(abs_sq(x))
        total = sq if total is None else total + sq
    return jnp.sqrt(total)


# --- pytree helpers shared by the building blocks ----------------------------------------


def _dtype(x):
    return x.dtype if hasattr(x, "dtype") else np.result_type(x)


def tree_map_checked(f, tree, *rest, names: tuple[str, ...], where: str):
    """``tree_map(f, tree, *rest)`` whose structure mismatch error names the culprits.

    Each tree is flattened once; if a treedef differs from the first one, a ValueError
    shows both structures and the first path where they differ.
    """
    leaves, treedef = tree_util.tree_flatten(tree)
    all_leaves = [leaves]
    for name, other in zip(names[1:], rest):
        other_leaves, other_def = tree_util.tree_flatten(other)
        if other_def != treedef:
            raise structure_error(where, names[0], treedef, name, other_def)
        all_leaves.append(other_leaves)
    return tree_util.tree_unflatten(treedef, [f(*xs) for xs in zip(*all_leaves)])


def structure_error(where: str, name_a: str, def_a, name_b: str, def_b) -> ValueError:
    """A ValueError showing two tree structures and the first place they differ."""
    message = _tree.structure_difference(def_a, def_b, where, f"`{name_a}`", f"`{name_b}`")
    return ValueError(
        f"{message}\nPass updates with the structure of the params given to `init` (same "
        "containers, keys and lengths), or call `init` again for the new params.")


# --- hyperparameter checks -------------------------------------------------------------


def _is_python_number(x) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, numbers.Real):
        return True
    return isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind in "fiu"


def check_range(fn: str, name: str, value, *, low=None, high=None,
                low_open: bool = False, high_open: bool = False,
                finite: bool = True, hint: str = "") -> None:
    """Raises ValueError naming ``fn`` and ``name`` if a concrete number is out of range.

    Arrays (which may be traced, e.g. hyperparameters injected by
    ``inject_hyperparams``) and schedules are not checked.
    """
    if isinstance(value, (str, bytes)) or not (
            value is None or callable(value) or isinstance(value, numbers.Number)
            or hasattr(value, "dtype")):
        raise TypeError(f"{fn}: argument `{name}` must be a number, an array or a schedule, "
                        f"got {type(value).__name__} {value!r:.60}")
    if value is None or callable(value) or not _is_python_number(value):
        return
    v = float(value)
    too_low = low is not None and (v < low or (low_open and v == low))
    too_high = high is not None and (v > high or (high_open and v == high))
    if finite and not math.isfinite(v):
        need = "a finite number"
    elif too_low or too_high:
        if low is not None and high is not None:
            need = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        elif low is not None:
            need = f"{'>' if low_open else '>='} {low}"
        else:
            need = f"{'<' if high_open else '<='} {high}"
    else:
        return
    raise ValueError(f"{fn}: argument `{name}` must be {need}, got {value!r}.{hint}")


def check_rate(fn: str, name: str, value, *, allow_one: bool = False) -> None:
    """A decay rate or momentum coefficient: ``0 <= value < 1`` (``<= 1`` if allowed)."""
    check_range(fn, name, value, low=0.0, high=1.0, high_open=not allow_one)


def check_nonneg(fn: str, name: str, value) -> None:
    """A non-negative finite number (eps, learning rate, weight decay, ...)."""
    check_range(fn, name, value, low=0.0)


def check_positive(fn: str, name: str, value) -> None:
    """A strictly positive finite number (a clipping threshold, a period, ...)."""
    check_range(fn, name, value, low=0.0, low_open=True)


def check_finite(fn: str, name: str, value) -> None:
    """Any finite number."""
    check_range(fn, name, value)
