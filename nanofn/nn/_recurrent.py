"""Recurrent cells and the layers that run them over sequences with `lax.scan`.

A **cell** computes one time step. It is a `Cell(init, apply, initial_carry)`:

    out_shape, params = cell.init(rng, (batch, features))   # one step's input shape
    carry, y = cell.apply(params, carry, x_t)                # x_t: (batch, features)
    carry = cell.initial_carry((batch,), dtype)              # zeros

`RNN(cell)` turns a cell into a layer over `(batch, time, features)` inputs by scanning
the cell over the time axis (`nanofn.lax.scan`, so the loop is one primitive that `grad`,
`jit` and `vmap` understand). `SimpleRNN`, `LSTM` and `GRU` are `RNN` of the matching
cell; `Bidirectional` runs one cell forward and one backward and concatenates.

Gates are packed into one matrix per input (`w_i: (features, gates * hidden)`,
`w_h: (hidden, gates * hidden)`), so a step costs two matrix products.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from nanofn import numpy as fnp
from nanofn import ops as lax
from nanofn import random
from nanofn.nn import _functions as F
from nanofn.nn import initializers as inits
from nanofn.nn._base import fmt_shape, known, leaf_layer, need_rank
from nanofn.nn._base import Initializer, Layer  # noqa: F401  (annotations)

__all__ = ["Bidirectional", "Cell", "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "SimpleRNN",
           "SimpleRNNCell"]


class Cell(NamedTuple):
    """One step of a recurrent network (see the module docstring)."""
    init: Callable
    apply: Callable
    initial_carry: Callable
    name: str = "cell"


def _key(rng, i):
    return random.fold_in(rng, i)


def _gates(z, n, hidden):
    """Splits the last axis of `z` into `n` blocks of `hidden`."""
    return [lax.slice_in_dim(z, k * hidden, (k + 1) * hidden, axis=z.ndim - 1)
            for k in range(n)]


def _cell(name, hidden, n_gates, w_init, recurrent_init, bias, step, carry_of_zeros):
    w_init = w_init if w_init is not None else inits.glorot_uniform()
    recurrent_init = recurrent_init if recurrent_init is not None else inits.orthogonal()

    def init(rng, input_shape):
        need_rank(name, tuple(input_shape), 2, "batch, features")
        features = known(name, input_shape[-1], "the feature axis", input_shape)
        params = {"w_i": w_init(_key(rng, 0), (features, n_gates * hidden)),
                  "w_h": recurrent_init(_key(rng, 1), (hidden, n_gates * hidden))}
        params.update(bias())
        return (input_shape[0], hidden), params

    def apply(params, carry, x):
        x = fnp.asarray(x)
        if x.shape[-1] != params["w_i"].shape[0]:
            raise ValueError(f"{name}: expects {params['w_i'].shape[0]} input features per "
                             f"step, got a step input of shape {fmt_shape(tuple(x.shape))}")
        return step(params, carry, x)

    def initial_carry(batch_shape, dtype=np.float32):
        return carry_of_zeros(tuple(batch_shape) + (hidden,), dtype)

    return Cell(init, apply, initial_carry, name)


def SimpleRNNCell(hidden_size: int, activation: Callable = fnp.tanh,
                  w_init: Initializer | None = None,
                  recurrent_init: Initializer | None = None) -> Layer:
    """Elman cell: `h' = activation(x @ w_i + h @ w_h + b)`; the output is `h'`.

    Args:
      hidden_size: size of the hidden state.
      activation: the nonlinearity (default tanh).
      w_init: initializer of `w_i` (default glorot_uniform).
      recurrent_init: initializer of `w_h` (default orthogonal).

    Example:
        >>> import nanofn
        >>> cell = nanofn.nn.SimpleRNNCell(4)
        >>> _, params = cell.init(nanofn.random.key(0), (-1, 3))
        >>> h, y = cell.apply(params, cell.initial_carry((2,)), nanofn.numpy.ones((2, 3)))
        >>> h.shape, y.shape
        ((2, 4), (2, 4))
    """
    h = int(hidden_size)

    def step(params, carry, x):
        new = activation(x @ params["w_i"] + carry @ params["w_h"] + params["b"])
        return new, new

    return _cell(f"SimpleRNNCell({h})", h, 1, w_init, recurrent_init,
                 lambda: {"b": fnp.zeros((h,))}, step, fnp.zeros)


def LSTMCell(hidden_size: int, w_init: Initializer | None = None,
             recurrent_init: Initializer | None = None, forget_bias: float = 1.0) -> Layer:
    """Long short-term memory cell (Hochreiter & Schmidhuber, 1997).

    Gates `i, f, g, o` come from `x @ w_i + h @ w_h + b` (in that order along the last
    axis); `c' = sigmoid(f) * c + sigmoid(i) * tanh(g)`, `h' = sigmoid(o) * tanh(c')`.
    The carry is `(h, c)` and the output is `h'`.

    Args:
      hidden_size: size of `h` and `c`.
      w_init, recurrent_init: initializers of `w_i` and `w_h`.
      forget_bias: initial bias of the forget gate (1.0 helps remember early on).

    Example:
        >>> import nanofn
        >>> cell = nanofn.nn.LSTMCell(4)
        >>> _, params = cell.init(nanofn.random.key(0), (-1, 3))
        >>> (h, c), y = cell.apply(params, cell.initial_carry((2,)), nanofn.numpy.ones((2, 3)))
        >>> h.shape, c.shape
        ((2, 4), (2, 4))
    """
    h = int(hidden_size)

    def bias():
        b = np.zeros(4 * h, np.float32)
        b[h:2 * h] = forget_bias
        return {"b": fnp.asarray(b)}

    def step(params, carry, x):
        h_prev, c_prev = carry
        z = x @ params["w_i"] + h_prev @ params["w_h"] + params["b"]
        i, f, g, o = _gates(z, 4, h)
        c = F.sigmoid(f) * c_prev + F.sigmoid(i) * fnp.tanh(g)
        new_h = F.sigmoid(o) * fnp.tanh(c)
        return (new_h, c), new_h

    def zeros(shape, dtype):
        return (fnp.zeros(shape, dtype), fnp.zeros(shape, dtype))

    return _cell(f"LSTMCell({h})", h, 4, w_init, recurrent_init, bias, step, zeros)


def GRUCell(hidden_size: int, w_init: Initializer | None = None,
            recurrent_init: Initializer | None = None) -> Layer:
    """Gated recurrent unit (Cho et al., 2014), with PyTorch's equations:

        r = sigmoid(x w_ir + b_ir + h w_hr + b_hr)
        z = sigmoid(x w_iz + b_iz + h w_hz + b_hz)
        n = tanh(x w_in + b_in + r * (h w_hn + b_hn))
        h' = (1 - z) * n + z * h

    The gates `r, z, n` are packed in that order; the carry and the output are `h'`.

    Example:
        >>> import nanofn
        >>> cell = nanofn.nn.GRUCell(4)
        >>> _, params = cell.init(nanofn.random.key(0), (-1, 3))
        >>> sorted(params)
        ['b_h', 'b_i', 'w_h', 'w_i']
    """
    h = int(hidden_size)

    def step(params, carry, x):
        xi = x @ params["w_i"] + params["b_i"]
        hh = carry @ params["w_h"] + params["b_h"]
        xr, xz, xn = _gates(xi, 3, h)
        hr, hz, hn = _gates(hh, 3, h)
        r = F.sigmoid(xr + hr)
        z = F.sigmoid(xz + hz)
        n = fnp.tanh(xn + r * hn)
        new = (1.0 - z) * n + z * carry
        return new, new

    return _cell(f"GRUCell({h})", h, 3, w_init, recurrent_init,
                 lambda: {"b_i": fnp.zeros((3 * h,)), "b_h": fnp.zeros((3 * h,))}, step,
                 fnp.zeros)


def _run(cell, params, x, reverse):
    """Scans `cell` over the time axis (1) of `x`: returns (final carry, outputs (B, T, H))."""
    carry = cell.initial_carry(tuple(x.shape[:1]), x.dtype)
    xs = fnp.moveaxis(x, 1, 0)

    def body(c, x_t):
        return cell.apply(params, c, x_t)

    carry, ys = lax.scan(body, carry, xs, reverse=reverse)
    return carry, fnp.moveaxis(ys, 0, 1)


def _last(ys, reverse):
    t = ys.shape[1]
    return lax.index_in_dim(ys, 0 if reverse else t - 1, axis=1, keepdims=False)


def RNN(cell: Layer, return_sequences: bool = True, reverse: bool = False) -> Layer:
    """Runs a recurrent cell over `(batch, time, features)` inputs.

    Args:
      cell: a `Cell` (`SimpleRNNCell`, `LSTMCell`, `GRUCell` or your own).
      return_sequences: return every step's output `(batch, time, hidden)` (default) or
        only the last one `(batch, hidden)`.
      reverse: process the sequence from the last step to the first (outputs stay
        aligned with their inputs; the "last" output is then the one of step 0).

    Returns:
      A layer whose params are the cell's.

    Example:
        >>> import nanofn
        >>> init, apply = nanofn.nn.RNN(nanofn.nn.GRUCell(5), return_sequences=False)
        >>> _, params = init(nanofn.random.key(0), (-1, 8, 3))
        >>> apply(params, nanofn.numpy.ones((2, 8, 3))).shape
        (2, 5)
    """
    name = f"RNN({cell.name})"

    hidden = {}  # features -> the cell's output size, found once with a throwaway init

    def out_shape(input_shape):
        need_rank(name, input_shape, 3, "batch, time, features")
        b, t, f = input_shape
        f = known(name, f, "the feature axis", input_shape)
        if f not in hidden:
            hidden[f] = cell.init(random.key(0), (1, f))[0][-1]
        return (b, t, hidden[f]) if return_sequences else (b, hidden[f])

    def init_params(rng, input_shape):
        return cell.init(rng, (input_shape[0], input_shape[2]))[1]

    def forward(params, x, **kwargs):
        x = F._float(x)
        if x.ndim != 3:
            raise ValueError(f"{name}: expects inputs (batch, time, features), got shape "
                             f"{fmt_shape(tuple(x.shape))}")
        _, ys = _run(cell, params, x, reverse)
        return ys if return_sequences else _last(ys, reverse)

    return leaf_layer(name, out_shape, init_params, forward)


def SimpleRNN(hidden_size: int, return_sequences: bool = True, reverse: bool = False,
              **cell_kwargs) -> Layer:
    """`RNN(SimpleRNNCell(hidden_size, **cell_kwargs), return_sequences, reverse)`.

    Example:
        >>> import nanofn
        >>> nanofn.nn.SimpleRNN(4).init(nanofn.random.key(0), (-1, 6, 2))[0]
        (-1, 6, 4)
    """
    return RNN(SimpleRNNCell(hidden_size, **cell_kwargs), return_sequences, reverse)


def LSTM(hidden_size: int, return_sequences: bool = True, reverse: bool = False,
         **cell_kwargs) -> Layer:
    """`RNN(LSTMCell(hidden_size, **cell_kwargs), return_sequences, reverse)`.

    Example:
        >>> import nanofn
        >>> nanofn.nn.LSTM(4, return_sequences=False).init(nanofn.random.key(0), (-1, 6, 2))[0]
        (-1, 4)
    """
    return RNN(LSTMCell(hidden_size, **cell_kwargs), return_sequences, reverse)


def GRU(hidden_size: int, return_sequences: bool = True, reverse: bool = False,
        **cell_kwargs) -> Layer:
    """`RNN(GRUCell(hidden_size, **cell_kwargs), return_sequences, reverse)`.

    Example:
        >>> import nanofn
        >>> nanofn.nn.GRU(4).init(nanofn.random.key(0), (-1, 6, 2))[0]
        (-1, 6, 4)
    """
    return RNN(GRUCell(hidden_size, **cell_kwargs), return_sequences, reverse)


def Bidirectional(cell: Layer, backward_cell: Layer | None = None,
                  return_sequences: bool = True) -> Layer:
    """Runs `cell` forward and `backward_cell` (default: a second copy of `cell`, with its
    own parameters) backward over the sequence, concatenating their outputs on the last
    axis.

    Returns:
      A layer with params `{"forward": ..., "backward": ...}` mapping `(batch, time, f)`
      to `(batch, time, 2 * hidden)` (or `(batch, 2 * hidden)` with
      `return_sequences=False`: the forward pass's last step and the backward pass's
      step 0, each the summary of the whole sequence in its direction).

    Example:
        >>> import nanofn
        >>> nanofn.nn.Bidirectional(nanofn.nn.GRUCell(3)).init(nanofn.random.key(0),
        ...                                                   (-1, 5, 2))[0]
        (-1, 5, 6)
    """
    fwd = RNN(cell, return_sequences)
    bwd = RNN(backward_cell if backward_cell is not None else cell, return_sequences,
              reverse=True)
    name = f"Bidirectional({cell.name})"

    def out_shape(input_shape):
        a = fwd.init_state(input_shape)[0]
        b = bwd.init_state(input_shape)[0]
        return a[:-1] + (a[-1] + b[-1],)

    def init_params(rng, input_shape):
        return {"forward": fwd.init(_key(rng, 0), input_shape)[1],
                "backward": bwd.init(_key(rng, 1), input_shape)[1]}

    def forward(params, x, **kwargs):
        a = fwd.apply(params["forward"], x)
        b = bwd.apply(params["backward"], x)
        return fnp.concatenate([a, b], axis=-1)

    return leaf_layer(name, out_shape, init_params, forward)
