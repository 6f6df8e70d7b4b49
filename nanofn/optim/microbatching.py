"""Microbatching: evaluate a function on slices of a batch, one after another, with
``optax.microbatching``'s names and meanings.

:func:`microbatch` turns ``fun(batch)`` into a function that splits the batch arguments
into ``num_microbatches = batch_size // microbatch_size`` microbatches, calls ``fun`` on
each inside a ``nanofn.lax.fori_loop`` (so only one microbatch is live at a time), and
combines the results with an accumulator: :class:`AccumulationType` ``SUM``, ``MEAN``,
``RUNNING_MEAN`` or ``CONCAT``, a custom :class:`Accumulator`, or a pytree of these (a
prefix of ``fun``'s output). :func:`micro_vmap` is a ``vmap`` evaluated microbatch by
microbatch, and :func:`micro_grad` computes per-example gradients, transforms them
(e.g. clips them) and sums them, microbatch by microbatch.

The batch axis is split as optax splits it, by :func:`reshape_batch_axis`: microbatch
``i`` holds the examples ``i, i + n, i + 2n, ...`` (``n`` the number of microbatches),
not a contiguous block. For a function that is a sum (or mean) over examples this makes
no difference; ``CONCAT`` puts every example back in its place.

``num_real_microbatches`` stops the loop early: only the first ``k`` microbatches are
evaluated (``SUM`` then sums ``k`` of them, ``MEAN`` still divides by the full count,
``RUNNING_MEAN`` averages the ``k``, and ``CONCAT`` leaves zeros where the others would
go). It may be a traced value under ``nanofn.jit``; the loop is then a ``while_loop``,
which (as in JAX) supports forward-mode differentiation only.

Example:
    >>> import nanofn.numpy as jnp
    >>> from nanofn.optim import microbatching
    >>> fun = lambda x: (x + 1, jnp.sum(3 * x))
    >>> strategy = (microbatching.AccumulationType.CONCAT,
    ...             microbatching.AccumulationType.SUM)
    >>> mfun = microbatching.microbatch(fun, argnums=0, microbatch_size=2,
    ...                                 accumulator=strategy)
    >>> per_example, total = mfun(jnp.array([1, 2, 3, 4]))
    >>> per_example.tolist(), int(total)
    ([2, 3, 4, 5], 30)
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import numbers
from typing import Any, Callable, Sequence

import numpy as np

import nanofn
import nanofn.numpy as jnp
from nanofn import lax, tree_util
from nanofn._core import Tracer

__all__ = ["AccumulationType", "Accumulator", "micro_grad", "micro_vmap", "microbatch",
           "reshape_batch_axis"]

# what micro_grad returns beside the gradient: per-example values, metrics and aux
_IndividualOutputs = collections.namedtuple("Aux", ["values", "metrics", "aux"])


@dataclasses.dataclass(frozen=True)
class Accumulator:
    """How the results of the microbatches are combined into one result.

    For microbatch results ``x_0, ..., x_{n-1}``, :func:`microbatch` computes::

        carry = init(shape_and_dtype_of(x_0))     # nanofn.ShapeDtypeStruct leaves
        for i in range(n):
            carry = update(carry, x_i, i)         # i is a traced int32 scalar
        result = finalize(carry)

    ``aggregate`` reduces values that carry a leading batch axis in one go (it is what
    :func:`micro_vmap` applies inside each microbatch). A custom accumulator receives the
    whole sub-tree of ``fun``'s output at its place in the ``accumulator`` tree; the
    built-in :class:`AccumulationType` ones act leaf by leaf.

    Attributes:
        init: ``init(shapes)``: the initial carry, from the shapes and dtypes of one
            microbatch's result.
        update: ``update(carry, value, index)``: the carry after microbatch ``index``.
        finalize: ``finalize(carry)``: the result, from the last carry.
        aggregate: ``aggregate(values)``: the reduction over a leading batch axis.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import microbatching
        >>> running_max = microbatching.Accumulator(
        ...     init=lambda s: jnp.full(s.shape, -jnp.inf, s.dtype),
        ...     update=lambda carry, value, index: jnp.maximum(carry, value),
        ...     finalize=lambda carry: carry,
        ...     aggregate=lambda values: jnp.max(values, axis=0))
        >>> mfun = microbatching.microbatch(jnp.max, argnums=0, microbatch_size=2,
        ...                                 accumulator=running_max)
        >>> float(mfun(jnp.array([3.0, -1.0, 7.0, 2.0])))
        7.0
    """

    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any], Any]
    finalize: Callable[[Any], Any]
    aggregate: Callable[[Any], Any]


class AccumulationType(enum.Enum):
    """The built-in ways of combining microbatch results (each acts leaf by leaf).

    Example:
        >>> from nanofn.optim import microbatching
        >>> [t.name for t in microbatching.AccumulationType]
        ['MEAN', 'SUM', 'RUNNING_MEAN', 'CONCAT']
    """

    MEAN = enum.auto()
    """The mean over all ``num_microbatches`` results (floating-point outputs only)."""
    SUM = enum.auto()
    """The sum of the results."""
    RUNNING_MEAN = enum.auto()
    """The mean over the microbatches actually evaluated (``num_real_microbatches``)."""
    CONCAT = enum.auto()
    """The results concatenated along axis 0, each example back in its place."""


# ----------------------------------------------------------------------------- helpers


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _int_tuple(value, name: str, where: str) -> tuple:
    """An int or a sequence of ints as a tuple, or a TypeError naming `name`."""
    if _is_int(value):
        return (int(value),)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{where}: {name} must be an int or a sequence of ints, got "
                        f"{value!r}")
    if not all(_is_int(v) for v in value):
        raise TypeError(f"{where}: {name} must be an int or a sequence of ints, got "
                        f"{value!r}")
    return tuple(int(v) for v in value)


def _check_microbatch_size(microbatch_size, where: str):
    if microbatch_size is None:
        return None
    if not _is_int(microbatch_size) or microbatch_size <= 0:
        raise ValueError(f"{where}: microbatch_size must be a positive integer or None, got "
                         f"{microbatch_size!r}")
    return int(microbatch_size)


def _check_num_real(num_real_microbatches, where: str):
    """A concrete count as an int (checked later against the number of microbatches); a
    traced one as it is."""
    if num_real_microbatches is None or isinstance(num_real_microbatches, Tracer):
        return num_real_microbatches
    value = np.asarray(num_real_microbatches)
    if value.shape != () or value.dtype.kind not in "iu":
        raise TypeError(f"{where}: num_real_microbatches must be an integer scalar or None, "
                        f"got {num_real_microbatches!r}")
    if int(value) < 0:
        raise ValueError(f"{where}: num_real_microbatches must be >= 0, got {int(value)}")
    return int(value)


def _positive_axis(axis: int, ndim: int, shape, where: str) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{where}: batch axis {axis} is out of range for a leaf of shape "
                         f"{tuple(shape)}")
    return axis % ndim


def _zeros(shape_dtype):
    return jnp.zeros(shape_dtype.shape, shape_dtype.dtype)


def _split_leaf(x, microbatch_size: int, axis: int, where: str):
    """`x` with its batch axis of size `n * microbatch_size` replaced by two axes
    `(n, microbatch_size)`, example `b` going to `(b % n, b // n)` (optax's column-major
    split)."""
    x = jnp.asarray(x)
    ax = _positive_axis(axis, x.ndim, x.shape, where)
    size = x.shape[ax]
    if size % microbatch_size != 0:
        raise ValueError(f"{where}: batch size {size} (axis {axis} of a leaf of shape "
                         f"{tuple(x.shape)}) must be divisible by microbatch_size="
                         f"{microbatch_size}")
    n = size // microbatch_size
    y = jnp.reshape(x, x.shape[:ax] + (microbatch_size, n) + x.shape[ax + 1:])
    return jnp.swapaxes(y, ax, ax + 1)


def reshape_batch_axis(tree: Any, microbatch_size: int, axis: int = 0) -> Any:
    """Split the batch axis of every leaf into ``(num_microbatches, microbatch_size)``.

    The two new axes take the place of the batch axis. The split is column-major, as in
    optax: example ``b`` lands at microbatch ``b % num_microbatches``, position
    ``b // num_microbatches``, so each microbatch strides through the batch.

    Args:
        tree: a pytree of arrays, each with a batch axis at ``axis``.
        microbatch_size: the number of examples per microbatch; it must divide the batch
            size.
        axis: the batch axis (may be negative).

    Returns:
        The pytree of reshaped arrays.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import microbatching
        >>> microbatching.reshape_batch_axis(jnp.arange(6), 2).tolist()
        [[0, 3], [1, 4], [2, 5]]
        >>> microbatching.reshape_batch_axis(jnp.zeros((4, 6, 5)), 3, axis=1).shape
        (4, 2, 3, 5)
    """
    where = "reshape_batch_axis"
    if not _is_int(microbatch_size) or microbatch_size <= 0:
        raise ValueError(f"{where}: microbatch_size must be a positive integer, got "
                         f"{microbatch_size!r}")
    if not _is_int(axis):
        raise TypeError(f"{where}: axis must be an int, got {axis!r}")
    return tree_util.tree_map(lambda x: _split_leaf(x, int(microbatch_size), int(axis),
                                                    where), tree)


# ------------------------------------------------------------------------ accumulators


def _lift(acc: Accumulator) -> Accumulator:
    """An accumulator of single arrays, applied to every leaf of a pytree."""
    return Accumulator(
        init=lambda shapes: tree_util.tree_map(acc.init, shapes),
        update=lambda carry, value, index: tree_util.tree_map(
            lambda c, v: acc.update(c, v, index), carry, value),
        finalize=lambda carry: tree_util.tree_map(acc.finalize, carry),
        aggregate=lambda values: tree_util.tree_map(acc.aggregate, values),
    )


def _compose(accumulators: Any) -> Accumulator:
    """One accumulator from a pytree of them, a prefix of the values' pytree."""
    def each(method):
        return lambda acc, *xs: getattr(acc, method)(*xs)

    return Accumulator(
        init=lambda shapes: tree_util.tree_map(each("init"), accumulators, shapes),
        update=lambda carry, value, index: tree_util.tree_map(
            lambda acc, c, v: acc.update(c, v, index), accumulators, carry, value),
        finalize=lambda carry: tree_util.tree_map(each("finalize"), accumulators, carry),
        aggregate=lambda values: tree_util.tree_map(each("aggregate"), accumulators,
                                                    values),
    )


def _floating_zeros(kind: str):
    def init(shape_dtype):
        if not jnp.issubdtype(shape_dtype.dtype, jnp.floating):
            raise ValueError(f"microbatch: the {kind} accumulator needs floating-point "
                             f"outputs, got dtype {np.dtype(shape_dtype.dtype).name}; "
                             "return floats from fun or use AccumulationType.SUM")
        return _zeros(shape_dtype)
    return init


def _sum_accumulator() -> Accumulator:
    return _lift(Accumulator(init=_zeros,
                             update=lambda carry, value, index: carry + value,
                             finalize=lambda carry: carry,
                             aggregate=lambda values: jnp.sum(values, axis=0)))


def _check_count(num_microbatches, kind: str):
    if num_microbatches is None or num_microbatches <= 0:
        raise ValueError(f"microbatch: the {kind} accumulator needs a positive number of "
                         f"microbatches, got {num_microbatches!r}")


def _mean_accumulator(num_microbatches: int) -> Accumulator:
    _check_count(num_microbatches, "MEAN")
    return _lift(Accumulator(init=_floating_zeros("MEAN"),
                             update=lambda carry, value, index: carry + value,
                             finalize=lambda carry: carry / num_microbatches,
                             aggregate=lambda values: jnp.mean(values, axis=0)))


def _running_mean_update(carry, value, index):
    # mean of the first index + 1 results: old mean * index/(index+1) + value/(index+1)
    keep = jnp.asarray(index / (index + 1)).astype(carry.dtype)
    return carry * keep + value * (1 - keep)


def _running_mean_accumulator() -> Accumulator:
    return _lift(Accumulator(init=_floating_zeros("RUNNING_MEAN"),
                             update=_running_mean_update,
                             finalize=lambda carry: carry,
                             aggregate=lambda values: jnp.mean(values, axis=0)))


def _concat_accumulator(num_microbatches: int) -> Accumulator:
    _check_count(num_microbatches, "CONCAT")

    def init(shape_dtype):
        return jnp.zeros((num_microbatches,) + tuple(shape_dtype.shape), shape_dtype.dtype)

    def finalize(carry):
        # (num_microbatches, microbatch_size, ...) back to the batch order: example
        # b = i + num_microbatches * j sits at carry[i, j]
        if carry.ndim < 2:
            return carry
        return jnp.reshape(jnp.swapaxes(carry, 0, 1), (-1,) + carry.shape[2:])

    return _lift(Accumulator(init=init,
                             update=lambda carry, value, index: carry.at[index].set(value),
                             finalize=finalize,
                             aggregate=lambda values: values))


def _canonicalize(tree: Any, num_microbatches) -> Accumulator:
    """One accumulator from a pytree of Accumulators and AccumulationTypes."""
    def make(acc):
        if isinstance(acc, Accumulator):
            return acc
        if acc is AccumulationType.SUM:
            return _sum_accumulator()
        if acc is AccumulationType.MEAN:
            return _mean_accumulator(num_microbatches)
        if acc is AccumulationType.RUNNING_MEAN:
            return _running_mean_accumulator()
        if acc is AccumulationType.CONCAT:
            return _concat_accumulator(num_microbatches)
        raise ValueError(f"microbatch: accumulator must be an Accumulator, an "
                         f"AccumulationType or a pytree of them, got a leaf {acc!r}")
    return _compose(tree_util.tree_map(make, tree))


# -------------------------------------------------------------------------- microbatch


def _batch_leaves(args, kwargs, argnums, argnames, in_axes, where):
    """The batch arguments with their axes, checked against the call."""
    picked = []
    for i, ax in zip(argnums, in_axes):
        if not -len(args) <= i < len(args):
            raise ValueError(f"{where}: argnums names positional argument {i}, but the "
                             f"function was called with {len(args)} positional arguments")
        picked.append((args[i], ax))
    for name, ax in zip(argnames, in_axes[len(argnums):]):
        if name not in kwargs:
            raise ValueError(f"{where}: argnames names keyword argument {name!r}, which was "
                             f"not passed (got {sorted(kwargs)})")
        picked.append((kwargs[name], ax))
    return picked


def _batch_size(picked, where) -> int:
    sizes = []
    for tree, ax in picked:
        for leaf in tree_util.tree_leaves(tree):
            shape = np.shape(leaf)
            sizes.append(shape[_positive_axis(ax, len(shape), shape, where)])
    if not sizes:
        raise ValueError(f"{where}: the batch arguments (argnums, argnames) hold no arrays, "
                         "so there is no batch axis to split")
    if len(set(sizes)) > 1:
        raise ValueError(f"{where}: the batch arguments must all have the same batch size "
                         f"along their in_axes, got sizes {sizes}")
    return sizes[0]


def microbatch(
    fun: Callable,
    argnums: int | Sequence[int],
    microbatch_size: int | None,
    accumulator: Any = AccumulationType.SUM,
    *,
    argnames: str | Sequence[str] = (),
    in_axes: int | Sequence[int] = 0,
    num_real_microbatches: Any = None,
) -> Callable:
    """Evaluate ``fun`` microbatch by microbatch and combine the results.

    The returned function takes ``fun``'s arguments. The batch arguments (positional
    ``argnums`` and keyword ``argnames``, pytrees whose leaves share a batch size along
    ``in_axes``) are split with :func:`reshape_batch_axis`; ``fun`` is called on each
    microbatch in a ``nanofn.lax.fori_loop``, the other arguments passed unchanged, and
    the results are combined by ``accumulator``. It works under ``nanofn.jit`` and can
    be differentiated (reverse mode needs a static ``num_real_microbatches``).

    Args:
        fun: any function of arrays.
        argnums: the index, or indices, of the positional batch arguments.
        microbatch_size: examples per microbatch; it must divide the batch size. None
            returns ``fun`` itself.
        accumulator: an :class:`AccumulationType`, an :class:`Accumulator`, or a pytree of
            them that is a prefix of ``fun``'s output (default ``SUM``).
        argnames: the name, or names, of the keyword batch arguments.
        in_axes: the batch axis of every batch argument (an int), or one per argument in
            the order ``argnums + argnames``.
        num_real_microbatches: evaluate only the first this many microbatches (an int, or
            a traced integer under ``jit``); None evaluates all of them.

    Returns:
        The microbatched function.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import microbatching
        >>> loss = lambda w, x: jnp.mean((x @ w) ** 2)
        >>> x = jnp.arange(12.0).reshape(6, 2)
        >>> mloss = microbatching.microbatch(loss, argnums=1, microbatch_size=2,
        ...                                  accumulator=microbatching.AccumulationType.MEAN)
        >>> float(mloss(jnp.ones(2), x)) == float(loss(jnp.ones(2), x))
        True
    """
    where = "microbatch"
    if not callable(fun):
        raise TypeError(f"{where}: fun must be callable, got {type(fun).__name__}")
    microbatch_size = _check_microbatch_size(microbatch_size, where)
    if microbatch_size is None:
        return fun
    argnums = _int_tuple(argnums, "argnums", where)
    if isinstance(argnames, str):
        argnames = (argnames,)
    if not all(isinstance(n, str) for n in argnames):
        raise TypeError(f"{where}: argnames must be a str or a sequence of str, got "
                        f"{argnames!r}")
    argnames = tuple(argnames)
    if not argnums and not argnames:
        raise ValueError(f"{where}: argnums and argnames are both empty: name at least one "
                         "batch argument")
    count = len(argnums) + len(argnames)
    if _is_int(in_axes):
        in_axes = (int(in_axes),) * count
    else:
        in_axes = _int_tuple(in_axes, "in_axes", where)
        if len(in_axes) != count:
            raise ValueError(f"{where}: in_axes has {len(in_axes)} entries, but argnums and "
                             f"argnames name {count} batch arguments")
    num_real = _check_num_real(num_real_microbatches, where)

    def microbatched_fun(*args, **kwargs):
        picked = _batch_leaves(args, kwargs, argnums, argnames, in_axes, where)
        batch_size = _batch_size(picked, where)
        if batch_size % microbatch_size != 0:
            raise ValueError(f"{where}: batch size {batch_size} must be divisible by "
                             f"microbatch_size={microbatch_size}")
        num_microbatches = batch_size // microbatch_size
        acc = _canonicalize(accumulator, num_microbatches)
        split = [tree_util.tree_map(lambda x, ax=ax: _split_leaf(x, microbatch_size, ax,
                                                                   where), tree)
                 for tree, ax in picked]

        def take(tree, ax, index):
            # the microbatch axis of each split leaf stands where the batch axis was
            return tree_util.tree_map(
                lambda x: jnp.take(x, index, axis=ax if ax >= 0 else ax + x.ndim - 1), tree)

        def call(index):
            new_args, new_kwargs = list(args), dict(kwargs)
            for k, (i, ax) in enumerate(zip(argnums, in_axes)):
                new_args[i] = take(split[k], ax, index)
            for k, (name, ax) in enumerate(zip(argnames, in_axes[len(argnums):])):
                new_kwargs[name] = take(split[len(argnums) + k], ax, index)
            return fun(*new_args, **new_kwargs)

        if num_real is None:
            upper = num_microbatches
        elif isinstance(num_real, Tracer):
            upper = jnp.minimum(num_real, num_microbatches)
        else:
            if num_real > num_microbatches:
                raise ValueError(f"{where}: num_real_microbatches={num_real} exceeds the "
                                 f"number of microbatches, {num_microbatches} (batch size "
                                 f"{batch_size} / microbatch_size {microbatch_size})")
            upper = num_real
        carry = acc.init(nanofn.eval_shape(call, 0))
        carry = lax.fori_loop(0, upper, lambda i, c: acc.update(c, call(i), i), carry)
        return acc.finalize(carry)

    return microbatched_fun


# -------------------------------------------------------------------------- micro_vmap


def micro_vmap(
    fun: Callable,
    in_axes: int | Sequence[int | None] = 0,
    out_axes: Any = 0,
    *,
    microbatch_size: int | None = None,
    vmap_fn: Callable = nanofn.vmap,
    accumulator: Any = AccumulationType.CONCAT,
    num_real_microbatches: Any = None,
) -> Callable:
    """``vmap`` evaluated microbatch by microbatch, with an optional reduction.

    Each microbatch is vmapped with ``vmap_fn`` and reduced by the accumulator's
    ``aggregate``; the microbatch results are then combined as in :func:`microbatch`.
    With the default ``CONCAT`` the result equals ``vmap(fun, in_axes)(...)``; ``SUM`` or
    ``MEAN`` reduce over the batch without ever holding every example's output.
    Keyword arguments are mapped over axis 0, as ``vmap`` maps them.

    Args:
        fun: the function to map.
        in_axes: the batch axis of each positional argument (an int for a single
            argument, or a sequence of ints and None, None for unmapped arguments).
        out_axes: must be 0 (other values are not supported).
        microbatch_size: examples per microbatch (must divide the batch size); None maps
            the whole batch at once.
        vmap_fn: the vectorizing map, called as ``vmap_fn(fun, in_axes, out_axes)``
            (default ``nanofn.vmap``).
        accumulator: how to combine the outputs (default ``CONCAT``): see
            :func:`microbatch`.
        num_real_microbatches: evaluate only the first this many microbatches.

    Returns:
        The mapped function.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import microbatching
        >>> microbatching.micro_vmap(lambda x: x ** 2, microbatch_size=2)(
        ...     jnp.arange(6)).tolist()
        [0, 1, 4, 9, 16, 25]
        >>> total = microbatching.micro_vmap(
        ...     jnp.sum, in_axes=1, microbatch_size=2,
        ...     accumulator=microbatching.AccumulationType.SUM)
        >>> int(total(jnp.ones((3, 4), dtype=jnp.int32)))
        12
    """
    where = "micro_vmap"
    if not callable(fun):
        raise TypeError(f"{where}: fun must be callable, got {type(fun).__name__}")
    if not (isinstance(out_axes, numbers.Integral) and out_axes == 0):
        raise NotImplementedError(f"{where}: out_axes must be 0, got {out_axes!r}")
    if _is_int(in_axes):
        in_axes = (int(in_axes),)
    elif (isinstance(in_axes, (str, bytes)) or not isinstance(in_axes, Sequence)
          or not all(ax is None or _is_int(ax) for ax in in_axes)):
        raise TypeError(f"{where}: in_axes must be an int or a sequence of ints and None, "
                        f"got {in_axes!r}")
    in_axes = tuple(None if ax is None else int(ax) for ax in in_axes)
    _check_microbatch_size(microbatch_size, where)

    def vmap_reduce(*args, kwargs):
        output = vmap_fn(fun, in_axes, out_axes)(*args, **kwargs)
        leaves = tree_util.tree_leaves(output)
        if not leaves:
            raise ValueError(f"{where}: fun returned no arrays")
        # only `aggregate` is used, which does not depend on the number of microbatches
        return _canonicalize(accumulator, leaves[0].shape[0]).aggregate(output)

    mapped = microbatch(
        vmap_reduce,
        argnums=tuple(i for i, ax in enumerate(in_axes) if ax is not None),
        argnames="kwargs",
        microbatch_size=microbatch_size,
        accumulator=accumulator,
        in_axes=tuple(ax for ax in in_axes if ax is not None) + (0,),
        num_real_microbatches=num_real_microbatches,
    )

    def wrapped(*args, **kwargs):
        return mapped(*args, kwargs=kwargs)

    return wrapped


# -------------------------------------------------------------------------- micro_grad


def _add_example_axis(fun: Callable, batch_argnums: Sequence[int]) -> Callable:
    """`fun` with a size-1 axis inserted at position 1 of every batch argument's leaves,
    so that the per-example function sees batches of one."""
    def wrapped(*args, **kwargs):
        args = list(args)
        for i in batch_argnums:
            args[i] = tree_util.tree_map(lambda x: jnp.expand_dims(x, 1), args[i])
        return fun(*args, **kwargs)
    return wrapped


def micro_grad(
    fun: Callable,
    has_aux: bool = False,
    argnums: int | Sequence[int] = 0,
    *,
    batch_argnums: int | Sequence[int] = 1,
    keep_batch_dim: bool = True,
    microbatch_size: int | None = None,
    accumulator: Any = AccumulationType.SUM,
    transform_fn: Callable[[Any], Any] = lambda x: x,
    metrics_fn: Callable[[Any], Any] = lambda x: None,
    num_real_microbatches: Any = None,
) -> Callable:
    """Per-example gradients, transformed and combined, microbatch by microbatch.

    Like ``nanofn.value_and_grad`` applied to every example on its own: for each example
    the gradient ``g`` of ``fun`` with respect to ``argnums`` is computed, then
    ``transform_fn(g)`` is combined over the batch by ``accumulator`` (a sum by default)
    and ``metrics_fn(g)`` is kept per example. Useful for per-example clipping (DP-SGD)
    or gradient moments.

    The returned function takes ``fun``'s arguments and returns
    ``(combined, aux)``, where ``aux`` is a namedtuple with per-example fields
    ``values`` (``fun``'s value), ``metrics`` (``metrics_fn(g)``) and ``aux`` (``fun``'s
    auxiliary output with ``has_aux``, else None).

    Args:
        fun: the function to differentiate, returning a scalar (or ``(scalar, aux)``).
        has_aux: whether ``fun`` returns ``(value, aux)``.
        argnums: the argument(s) to differentiate with respect to.
        batch_argnums: the positional argument(s) with a leading batch axis.
        keep_batch_dim: whether ``fun`` sees each example with a batch axis of size 1
            (True) or without it (False).
        microbatch_size: examples per microbatch (see :func:`microbatch`); None
            processes the whole batch at once.
        accumulator: how the transformed gradients are combined (default ``SUM``).
        transform_fn: applied to each example's gradient before combining.
        metrics_fn: applied to each example's gradient; returned per example.
        num_real_microbatches: evaluate only the first this many microbatches.

    Returns:
        The function computing ``(combined, aux)``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import microbatching
        >>> def loss(params, features, targets):
        ...     return 0.5 * jnp.mean((features @ params - targets) ** 2)
        >>> (grads, sq_grads), aux = microbatching.micro_grad(
        ...     loss, argnums=0, batch_argnums=(1, 2),
        ...     accumulator=microbatching.AccumulationType.MEAN,
        ...     transform_fn=lambda g: (g, g ** 2), metrics_fn=jnp.linalg.norm,
        ... )(jnp.zeros(1), jnp.ones((4, 1)), jnp.array([0.0, 2.0, 4.0, 6.0]))
        >>> grads.tolist(), sq_grads.tolist()   # per-example gradients -0, -2, -4, -6
        ([-3.0], [14.0])
        >>> aux.values.tolist(), aux.metrics.tolist()
        ([0.0, 2.0, 8.0, 18.0], [0.0, 2.0, 4.0, 6.0])
    """
    where = "micro_grad"
    if not callable(fun):
        raise TypeError(f"{where}: fun must be callable, got {type(fun).__name__}")
    batch_argnums = _int_tuple(batch_argnums, "batch_argnums", where)
    if not batch_argnums:
        raise ValueError(f"{where}: batch_argnums is empty: name at least one batch "
                         "argument")
    if any(i < 0 for i in batch_argnums):
        raise ValueError(f"{where}: batch_argnums must be non-negative, got "
                         f"{batch_argnums}")
    _check_microbatch_size(microbatch_size, where)
    if not has_aux:
        plain = fun

        def fun(*args, **kwargs):
            return plain(*args, **kwargs), None

    value_and_grad = nanofn.value_and_grad(fun, argnums, has_aux=True)

    def per_example(*args, **kwargs):
        (value, aux), grads = value_and_grad(*args, **kwargs)
        return transform_fn(grads), _IndividualOutputs(values=value,
                                                       metrics=metrics_fn(grads), aux=aux)

    in_axes = [None] * (max(batch_argnums) + 1)
    for i in batch_argnums:
        in_axes[i] = 0
    mapped = micro_vmap(per_example, in_axes=in_axes,
                        accumulator=(accumulator, AccumulationType.CONCAT),
                        microbatch_size=microbatch_size,
                        num_real_microbatches=num_real_microbatches)
    if keep_batch_dim:
        mapped = _add_example_axis(mapped, batch_argnums)
    return mapped

