"""The layer protocol: what every `(init, apply)` pair in nanofn.nn promises.

A **layer** is a pair of pure functions, as in stax:

    out_shape, params = init(rng, input_shape)
    outputs = apply(params, inputs, *, rng=None, training=False, **kwargs)

`input_shape` is a tuple of ints (or, for layers with several inputs, a list of such
tuples); `-1` stands for a size not known at init, usually the batch. `params` is a
pytree of arrays (dicts with named entries, tuples for combinators, `()` for layers
without parameters). `rng` is a PRNG key, needed only by layers that draw random numbers
while training (Dropout); `training` switches layers that behave differently while
training (Dropout, BatchNorm). Unknown keyword arguments are passed along and ignored,
so `serial` can hand every keyword to every layer (an attention `mask=`, say).

**State.** A few layers keep statistics that are not trained by gradients (BatchNorm's
running mean and variance). They keep them in a separate pytree, the *state*, that the
caller threads explicitly:

    _, state = layer.init_state(input_shape)                     # like init, without rng
    outputs, state = apply(params, inputs, state=state, training=True)

The rule is the same for every layer and combinator: **when `state=` is given, apply
returns `(outputs, new_state)`; otherwise it returns `outputs`.** A layer without state
has the state `()` and returns it unchanged, so a model that never mentions state never
sees it. `Layer` objects carry `init_state(input_shape) -> (out_shape, state)`; a plain
`(init, apply)` tuple written by a user is treated as a stateless layer.

**Input checks.** Layers record the input shapes that `init` saw (with `-1` for the
leading, batch, axis and for every axis given as `-1`) and `apply` checks its inputs
against them, so feeding `(32, 8, 8)` images to a `Dense` layer built for `(-1, 64)`
says so in those words instead of failing deep inside a matrix product.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence, Tuple, Union

import numpy as np

from nanofn import tree_util

__all__ = ["Layer", "init_state"]

# Types of the layer constructors' arguments (annotations only).
Shape = Sequence[int]
Padding = Union[str, Sequence[Tuple[int, int]]]  # "SAME", "VALID" or (low, high) per axis
Initializer = Callable[..., Any]  # initializer(key, shape, dtype=float32) -> array


class Layer(tuple):
    """A layer: the pair `(init, apply)`, plus `init_state`.

    It is a 2-tuple, so `init, apply = layer` works exactly as with stax; the extra
    attribute `init_state(input_shape) -> (output_shape, state)` gives the initial state
    (`()` for layers without state).

    Args:
      init: `init(rng, input_shape) -> (output_shape, params)`.
      apply: `apply(params, inputs, *, rng=None, state=None, **kwargs)`.
      init_state: `init_state(input_shape) -> (output_shape, state)`; if None, the layer is
        stateless and its output shape comes from `init` with a fixed key.
      name: a short description used in error messages and the repr.

    Example:
        >>> import nanofn
        >>> layer = nanofn.nn.Dense(3)
        >>> init, apply = layer            # a 2-tuple, as in stax
        >>> layer.init_state((-1, 2))      # Dense has no state
        ((-1, 3), ())
    """

    def __new__(cls, init: Callable, apply: Callable, init_state: Callable | None = None,
                name: str = "layer"):
        self = super().__new__(cls, (init, apply))
        self.name = name
        self._init_state = init_state
        return self

    @property
    def init(self) -> Callable:
        return self[0]

    @property
    def apply(self) -> Callable:
        return self[1]

    def init_state(self, input_shape):
        """`(output_shape, state)` for inputs of `input_shape` (`()` when stateless)."""
        if self._init_state is not None:
            return self._init_state(canonical_shape(self.name, input_shape))
        return _stateless_init_state(self.init, input_shape)

    def __repr__(self):
        return f"Layer({self.name})"


def _stateless_init_state(init, input_shape):
    from nanofn import random
    out_shape, _ = init(random.key(0), input_shape)
    return out_shape, ()


def init_state(layer, input_shape):
    """The initial state of any layer, including a plain `(init, apply)` tuple.

    Args:
      layer: a `Layer` or an `(init, apply)` pair.
      input_shape: the input shape, as for `init`.

    Returns:
      `(output_shape, state)`; the state is `()` for layers without state.

    Example:
        >>> import nanofn
        >>> _, state = nanofn.nn.init_state(nanofn.nn.BatchNorm(), (-1, 3))
        >>> sorted(state)
        ['mean', 'var']
    """
    if isinstance(layer, Layer):
        return layer.init_state(input_shape)
    init, _ = as_pair(layer, "init_state")
    return _stateless_init_state(init, input_shape)


def as_pair(layer, where):
    try:
        init, apply = layer
    except (TypeError, ValueError):
        raise TypeError(f"{where}: expected a layer, an (init, apply) pair, got "
                        f"{type(layer).__name__}: {layer!r:.80}") from None
    return init, apply


def has_state(state) -> bool:
    """Whether a (sub)layer's state holds any arrays, so it must be threaded."""
    return state is not None and len(tree_util.tree_leaves(state)) > 0


# ------------------------------------------------------------------------ shapes


def _is_shape(s) -> bool:
    return isinstance(s, (tuple, list)) and all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in s)


def canonical_shape(name, shape):
    """A shape as a tuple of ints, or a list of such tuples for several inputs."""
    if _is_shape(shape):
        dims = tuple(int(d) for d in shape)
        bad = [d for d in dims if d < -1]
        if bad:
            raise ValueError(f"{name}: input_shape {dims} has negative sizes; use -1 for a size "
                             "not known at init (usually the batch)")
        return dims
    if isinstance(shape, (tuple, list)) and shape and all(
            _is_shape(s) or isinstance(s, (tuple, list)) for s in shape):
        return [canonical_shape(name, s) for s in shape]
    raise TypeError(f"{name}: input_shape must be a tuple of ints (use -1 for the batch size, "
                    f"e.g. (-1, 64)) or a list of such tuples, got {shape!r}")


def fmt_shape(shape) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(fmt_shape(s) for s in shape) + "]"
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def known(name, size, what, input_shape):
    """`size`, which must be known at init (not -1)."""
    if size < 0:
        raise ValueError(f"{name}: the size of {what} must be known at init, got input_shape "
                         f"{fmt_shape(input_shape)} (only the batch axis may be -1)")
    return size


def need_rank(name, input_shape, rank, what):
    if not isinstance(input_shape, tuple):
        raise ValueError(f"{name}: expects one input ({what}), got a list of input shapes "
                         f"{fmt_shape(input_shape)}")
    if len(input_shape) != rank:
        raise ValueError(f"{name}: expects inputs of rank {rank} ({what}), got input_shape "
                         f"{fmt_shape(input_shape)}")


def need_min_rank(name, input_shape, rank, what):
    if not isinstance(input_shape, tuple):
        raise ValueError(f"{name}: expects one input ({what}), got a list of input shapes "
                         f"{fmt_shape(input_shape)}")
    if len(input_shape) < rank:
        raise ValueError(f"{name}: expects inputs of rank >= {rank} ({what}), got input_shape "
                         f"{fmt_shape(input_shape)}")


def prod(sizes) -> int:
    """Product of sizes, -1 if any is unknown."""
    sizes = list(sizes)
    return -1 if any(d < 0 for d in sizes) else math.prod(sizes)


def expected_shape(shape):
    """The shape apply accepts: init's shape with the leading (batch) axis set free."""
    if isinstance(shape, list):
        return [expected_shape(s) for s in shape]
    return (-1,) + tuple(shape[1:]) if shape else ()


def shape_of(x):
    if isinstance(x, (list, tuple)) and not hasattr(x, "shape"):
        return [shape_of(v) for v in x]
    shape = getattr(x, "shape", None)
    return tuple(shape) if shape is not None else np.shape(x)


def shapes_match(expected, actual) -> bool:
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(shapes_match(e, a) for e, a in zip(expected, actual)))
    return (isinstance(actual, tuple) and len(expected) == len(actual)
            and all(e < 0 or e == a for e, a in zip(expected, actual)))


class ShapeRecord:
    """The input shapes that a layer's `init` has seen; `check` compares apply's inputs."""

    def __init__(self, name):
        self.name = name
        self.shapes: list = []

    def add(self, input_shape):
        expected = expected_shape(input_shape)
        if expected not in self.shapes:
            self.shapes.append(expected)

    def check(self, inputs):
        if not self.shapes:  # params built elsewhere (e.g. loaded from a checkpoint)
            return
        actual = shape_of(inputs)
        if any(shapes_match(e, actual) for e in self.shapes):
            return
        expected = " or ".join(fmt_shape(e) for e in self.shapes)
        raise ValueError(f"{self.name}: expected inputs of shape {expected} (as given to init; "
                         f"-1 = any size), got inputs of shape {fmt_shape(actual)}. Reshape the "
                         "inputs, or build the layer for this shape and call init again.")


def leaf_layer(name: str, out_shape: Callable, init_params: Callable | None,
               forward: Callable, *, check_shapes: bool = True,
               initial_state: Callable | None = None) -> Layer:
    """Builds a `Layer` from its parts, adding the protocol's common behaviour.

    Args:
      name: description for errors, e.g. "Dense(10)".
      out_shape: `input_shape -> output_shape` (validates `input_shape`).
      init_params: `(rng, input_shape) -> params`, or None for `()`.
      forward: `forward(params, inputs, **kwargs) -> outputs`; for a stateful layer,
        `forward(params, inputs, state=..., **kwargs)` receives the state (None if the
        caller passed none) and returns `(outputs, new_state)`.
      check_shapes: record init's input shape and check apply's inputs against it.
      initial_state: `input_shape -> state` for a stateful layer; None if stateless.
    """
    record = ShapeRecord(name) if check_shapes else None

    def init(rng, input_shape):
        input_shape = canonical_shape(name, input_shape)
        shape = out_shape(input_shape)
        params = init_params(rng, input_shape) if init_params is not None else ()
        if record is not None:
            record.add(input_shape)
        return shape, params

    if initial_state is None:
        def apply(params, inputs, *, state=None, **kwargs):
            if record is not None:
                record.check(inputs)
            outputs = forward(params, inputs, **kwargs)
            return outputs if state is None else (outputs, state)

        def init_state(input_shape):
            return out_shape(input_shape), ()
    else:
        def apply(params, inputs, *, state=None, **kwargs):
            if record is not None:
                record.check(inputs)
            outputs, new_state = forward(params, inputs, state=state, **kwargs)
            return outputs if state is None else (outputs, new_state)

        def init_state(input_shape):
            return out_shape(input_shape), initial_state(input_shape)

    apply.__name__ = init.__name__ = name
    return Layer(init, apply, init_state, name)


def apply_layer(layer, params, inputs, rng, state, kwargs):
    """Calls a sublayer, threading its state only when it has some."""
    _, apply = layer
    if has_state(state):
        return apply(params, inputs, rng=rng, state=state, **kwargs)
    return apply(params, inputs, rng=rng, **kwargs), state


def split_key(rng, i):
    """An independent key for sublayer `i` (None stays None)."""
    if rng is None:
        return None
    from nanofn import random
    return random.fold_in(rng, i)


def check_len(name, what, items: Sequence[Any], n: int):
    if not isinstance(items, (tuple, list)) or len(items) != n:
        got = f"{type(items).__name__} of length {len(items)}" if isinstance(
            items, (tuple, list)) else type(items).__name__
        raise ValueError(f"{name}: expected {what} with {n} entries (one per layer), got {got}")
