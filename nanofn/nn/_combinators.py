"""Combinators: layers built from layers (stax's `serial`, `parallel`, fan-out/fan-in).

Combinators thread three things through their sublayers:

* **shapes** at init, each sublayer's output shape feeding the next;
* **keys**: sublayer `i` gets `fold_in(rng, i)` (at init and, when an `rng` is given, at
  apply), so every sublayer draws independent numbers;
* **state**: the state of a combinator is the tuple of its sublayers' states (`()` for a
  stateless one); apply passes each stateful sublayer its own part and collects the new
  parts. Stateless sublayers are called without `state=`, so any stax-style
  `(init, apply)` pair can be used inside a combinator.
"""

from __future__ import annotations

from nanofn import numpy as fnp
from nanofn.nn._base import (
    Layer, apply_layer, as_pair, canonical_shape, check_len, expected_shape, fmt_shape,
    init_state, leaf_layer, shape_of, shapes_match, split_key,
)
from nanofn.nn._base import Shape  # noqa: F401  (annotations)

__all__ = ["FanInConcat", "FanInSum", "FanOut", "Identity", "parallel", "residual", "serial",
           "shape_dependent"]


def _describe(layers):
    return ", ".join(getattr(layer, "name", "layer") for layer in layers)


def _returns(outputs, state, new_states):
    return outputs if state is None else (outputs, tuple(new_states))


def serial(*layers):
    """Composes layers one after the other: `serial(a, b)(x) = b(a(x))`.

    Args:
      *layers: layers (`Layer`s or `(init, apply)` pairs).

    Returns:
      A layer whose params (and state) are the tuple of its layers' params (states).

    Example:
        >>> import nanofn
        >>> nn = nanofn.nn
        >>> init, apply = nn.serial(nn.Dense(16), nn.Relu, nn.Dense(3))
        >>> out_shape, params = init(nanofn.random.key(0), (-1, 4))
        >>> out_shape, len(params), apply(params, nanofn.numpy.ones((2, 4))).shape
        ((-1, 3), 3, (2, 3))
    """
    pairs = [as_pair(layer, "serial") for layer in layers]
    name = f"serial({_describe(layers)})"

    def init(rng, input_shape):
        params = []
        for i, (layer_init, _) in enumerate(pairs):
            input_shape, p = layer_init(split_key(rng, i), input_shape)
            params.append(p)
        return input_shape, tuple(params)

    def init_state_(input_shape):
        states = []
        for layer in layers:
            input_shape, s = init_state(layer, input_shape)
            states.append(s)
        return input_shape, tuple(states)

    def apply(params, inputs, *, rng=None, state=None, **kwargs):
        check_len("serial", "params", params, len(layers))
        if state is not None:
            check_len("serial", "state", state, len(layers))
        new_states = []
        for i, (layer, p) in enumerate(zip(layers, params)):
            s = None if state is None else state[i]
            inputs, s = apply_layer(layer, p, inputs, split_key(rng, i), s, kwargs)
            new_states.append(s)
        return _returns(inputs, state, new_states)

    layer = Layer(init, apply, init_state_, name)
    layer.kind, layer.layers = "serial", tuple(layers)  # read by nn.summary
    return layer


def parallel(*layers):
    """Applies layer `i` to input `i` of a list of inputs; returns the list of outputs.

    Often used between `FanOut` and `FanInSum`/`FanInConcat`.

    Example:
        >>> import nanofn
        >>> nn = nanofn.nn
        >>> init, apply = nn.serial(nn.FanOut(2), nn.parallel(nn.Dense(3), nn.Dense(5)),
        ...                         nn.FanInConcat())
        >>> init(nanofn.random.key(0), (-1, 4))[0]
        (-1, 8)
    """
    pairs = [as_pair(layer, "parallel") for layer in layers]
    name = f"parallel({_describe(layers)})"

    def shapes_of(input_shape):
        input_shape = canonical_shape(name, input_shape)
        if not isinstance(input_shape, list) or len(input_shape) != len(layers):
            raise ValueError(f"{name}: expects a list of {len(layers)} input shapes (one per "
                             f"layer), got {fmt_shape(input_shape)}")
        return input_shape

    def init(rng, input_shape):
        outs = [layer_init(split_key(rng, i), shape)
                for i, ((layer_init, _), shape) in enumerate(zip(pairs, shapes_of(input_shape)))]
        return [o[0] for o in outs], tuple(o[1] for o in outs)

    def init_state_(input_shape):
        outs = [init_state(layer, shape) for layer, shape in zip(layers, shapes_of(input_shape))]
        return [o[0] for o in outs], tuple(o[1] for o in outs)

    def apply(params, inputs, *, rng=None, state=None, **kwargs):
        check_len(name, "params", params, len(layers))
        check_len(name, "inputs", inputs, len(layers))
        if state is not None:
            check_len(name, "state", state, len(layers))
        outputs, new_states = [], []
        for i, (layer, p, x) in enumerate(zip(layers, params, inputs)):
            s = None if state is None else state[i]
            y, s = apply_layer(layer, p, x, split_key(rng, i), s, kwargs)
            outputs.append(y)
            new_states.append(s)
        return _returns(outputs, state, new_states)

    return Layer(init, apply, init_state_, name)


def FanOut(num: int) -> Layer:
    """Copies its input into a list of `num` identical inputs.

    Example:
        >>> import nanofn
        >>> nanofn.nn.FanOut(2).init(nanofn.random.key(0), (-1, 3))[0]
        [(-1, 3), (-1, 3)]
    """
    num = int(num)

    def out_shape(input_shape):
        return [input_shape] * num

    def forward(params, x, **kwargs):
        return [x] * num

    return leaf_layer(f"FanOut({num})", out_shape, None, forward, check_shapes=False)


def _fan_in_shapes(name, input_shape):
    if not isinstance(input_shape, list) or not input_shape:
        raise ValueError(f"{name}: expects a list of input shapes, got {fmt_shape(input_shape)}")
    return input_shape


def _fan_in_sum():
    name = "FanInSum"

    def out_shape(input_shape):
        shapes = _fan_in_shapes(name, input_shape)
        first = shapes[0]
        for s in shapes[1:]:
            if len(s) != len(first) or any(a != b and a >= 0 and b >= 0
                                           for a, b in zip(s, first)):
                raise ValueError(f"{name}: all inputs must have one shape, got "
                                 f"{fmt_shape(shapes)}")
        return first

    def forward(params, inputs, **kwargs):
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return total

    return leaf_layer(name, out_shape, None, forward, check_shapes=False)


FanInSum = _fan_in_sum()


def FanInConcat(axis: int | Shape | None = -1) -> Layer:
    """Concatenates a list of inputs along `axis` (default: the last).

    Example:
        >>> import nanofn
        >>> nanofn.nn.FanInConcat().init(nanofn.random.key(0), [(-1, 3), (-1, 5)])[0]
        (-1, 8)
    """
    name = f"FanInConcat(axis={axis})"

    def out_shape(input_shape):
        shapes = _fan_in_shapes(name, input_shape)
        ndim = len(shapes[0])
        if any(len(s) != ndim for s in shapes) or not -ndim <= axis < ndim:
            raise ValueError(f"{name}: inputs of shapes {fmt_shape(shapes)} cannot be "
                             f"concatenated along axis {axis}")
        ax = axis % ndim
        sizes = [s[ax] for s in shapes]
        size = -1 if any(d < 0 for d in sizes) else sum(sizes)
        return shapes[0][:ax] + (size,) + shapes[0][ax + 1:]

    def forward(params, inputs, **kwargs):
        return fnp.concatenate(list(inputs), axis=axis)

    return leaf_layer(name, out_shape, None, forward, check_shapes=False)


def _identity():
    return leaf_layer("Identity", lambda s: s, None, lambda params, x, **kwargs: x,
                      check_shapes=False)


Identity = _identity()


def residual(*layers):
    """A residual block: `x + serial(*layers)(x)`; the block must keep the shape.

    Args:
      *layers: the layers of the block.

    Returns:
      A layer whose params (and state) are those of `serial(*layers)`.

    Example:
        >>> import nanofn
        >>> nn = nanofn.nn
        >>> init, apply = nn.residual(nn.Dense(4), nn.Relu)
        >>> init(nanofn.random.key(0), (-1, 4))[0]
        (-1, 4)
    """
    block = serial(*layers)
    name = f"residual({_describe(layers)})"

    def check(input_shape, out_shape):
        if out_shape != input_shape:
            raise ValueError(f"{name}: the block maps inputs of shape {fmt_shape(input_shape)} "
                             f"to {fmt_shape(out_shape)}; x + block(x) needs the same shape")

    def init(rng, input_shape):
        input_shape = canonical_shape(name, input_shape)
        out_shape, params = block.init(rng, input_shape)
        check(input_shape, out_shape)
        return out_shape, params

    def init_state_(input_shape):
        out_shape, state = block.init_state(input_shape)
        return out_shape, state

    def apply(params, inputs, *, rng=None, state=None, **kwargs):
        if state is None:
            return inputs + block.apply(params, inputs, rng=rng, **kwargs)
        y, new_state = block.apply(params, inputs, rng=rng, state=state, **kwargs)
        return inputs + y, new_state

    return Layer(init, apply, init_state_, name)


def shape_dependent(make_layer):
    """Delays building a layer until its input shape is known.

    Args:
      make_layer: `input_shape -> layer`.

    Returns:
      A layer that calls `make_layer` with init's input shape and reuses that layer for
      inputs of a matching shape (building a new one for other shapes, as stax does).

    Example:
        >>> import nanofn
        >>> nn = nanofn.nn
        >>> same_width = nn.shape_dependent(lambda shape: nn.Dense(shape[-1]))
        >>> same_width.init(nanofn.random.key(0), (-1, 7))[0]
        (-1, 7)
    """
    built = []  # [(expected input shape, layer)], one per input shape seen by init

    def layer_for(input_shape=None, inputs=None):
        if input_shape is not None:
            key = expected_shape(input_shape)
            for expected, layer in built:
                if expected == key:
                    return layer
            layer = make_layer(input_shape)
            built.append((key, layer))
            return layer
        actual = shape_of(inputs)
        for expected, layer in built:
            if shapes_match(expected, actual):
                return layer
        return make_layer(actual)

    def init(rng, input_shape):
        input_shape = canonical_shape("shape_dependent", input_shape)
        return layer_for(input_shape=input_shape)[0](rng, input_shape)

    def init_state_(input_shape):
        input_shape = canonical_shape("shape_dependent", input_shape)
        return init_state(layer_for(input_shape=input_shape), input_shape)

    def apply(params, inputs, **kwargs):
        return layer_for(inputs=inputs)[1](params, inputs, **kwargs)

    return Layer(init, apply, init_state_, "shape_dependent")
