"""Debugging inside transformed functions: `print` and `callback`, as in `jax.debug`.

A Python `print` in a function under `jit` runs once, while tracing, and shows tracers
rather than numbers. `nanofn.debug.print` instead binds an *effectful* primitive,
`debug_callback_p`, whose operands are the values to show. Each transformation treats it
like any other primitive, which gives the behaviour you want everywhere:

* eagerly (no transformation) its impl runs at once and prints the values;
* under `grad` and `jvp` it prints the primal values (it has no derivative);
* under `jit` it is staged into the jaxpr; `effectful = True` tells jit never to drop,
  fold or deduplicate it, so the impl prints every time the compiled function runs;
* under `vmap` it prints once per example, in order (as JAX does);
* inside `scan`, `while_loop` and `cond` bodies it prints on every step that runs.
"""

from __future__ import annotations

import builtins
import functools
import logging
import os
import string
import sys

import numpy as np

from nanofn import _core as core
from nanofn._core import Primitive, Tracer
from nanofn.tree_util import tree_flatten, tree_unflatten

__all__ = ["print", "log", "callback", "inspect_array_sharding", "visualize_sharding",
           "visualize_array_sharding"]

debug_callback_p = Primitive("debug_callback", multiple_results=True)
debug_callback_p.effectful = True


def _is_dynamic(x) -> bool:
    return isinstance(x, (Tracer, core.Array, np.ndarray, np.generic))


def _impl(*args, callback, tree, static):
    leaves, it = [], iter(args)
    for is_static, value in static:
        leaves.append(value if is_static else core.wrap(np.asarray(next(it))))
    cb_args, cb_kwargs = tree_unflatten(tree, leaves)
    callback(*cb_args, **cb_kwargs)
    return []


def _jvp(primals, tangents, **params):
    del tangents  # unused: a side effect has no derivative
    return debug_callback_p.bind(*primals, **params), []


def _vjp(cts, primals, outs, needs, **params):
    del cts, outs, needs, params  # unused
    return [None] * len(primals)


def _batch(vals, dims, **params):
    # once per example, in order, as JAX does: slice every batched operand at each index
    from nanofn._batching import axis_size_of
    from nanofn.ops._base import bdim_to_front
    from nanofn.ops._shape import index_in_dim
    moved = [v if d is None else bdim_to_front(v, d) for v, d in zip(vals, dims)]
    for i in range(axis_size_of(vals, dims)):
        debug_callback_p.bind(*[v if d is None else index_in_dim(v, i, 0, keepdims=False)
                                for v, d in zip(moved, dims)], **params)
    return [], []


debug_callback_p.impl = _impl
debug_callback_p.abstract_eval = lambda *avals, **params: []
debug_callback_p.jvp = _jvp
debug_callback_p.vjp_joint = _vjp
debug_callback_p.batch = _batch


class _ByIdentity(tuple):
    """A tuple hashed by identity: params must be hashable, non-array arguments may not be."""

    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other


def callback(callback, *args, ordered=False, **kwargs):
    """Call `callback(*args, **kwargs)` with concrete values, even inside transformations.

    Array arguments arrive as concrete `nanofn.Array`s: under `jit` the call happens each
    time the compiled function runs, under `grad`/`jvp` it sees primal values, and under
    `vmap` it is called once per example, in order, as in JAX. Python numbers
    arrive as arrays (as in JAX); other non-array arguments are passed through unchanged.

    Args:
        callback: a Python function returning None (its result is ignored).
        *args: pytrees of arrays (and other values) to pass.
        ordered: accepted for JAX compatibility; nanofn runs effects in program order.
        **kwargs: keyword arguments to pass.

    Returns:
        None.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> shapes = []
        >>> f = nanofn.jit(lambda x: nanofn.debug.callback(lambda v: shapes.append(v.shape), x)
        ...                or x)
        >>> _ = f(fnp.ones(3)); _ = f(fnp.ones(3))
        >>> shapes
        [(3,), (3,)]
    """
    del ordered  # unused
    if not callable(callback):
        raise TypeError(f"debug.callback: callback must be callable, got "
                        f"{type(callback).__name__}")
    leaves, tree = tree_flatten((args, kwargs))
    # Python numbers arrive as arrays, as in JAX (other non-array leaves pass unchanged)
    leaves = [core.Array(core.scalar_value(x)) if type(x) in core._PY_SCALAR_DTYPE else x
              for x in leaves]
    dynamic = [x for x in leaves if _is_dynamic(x)]
    static = tuple((False, None) if _is_dynamic(x) else (True, x) for x in leaves)
    try:
        hash(static)
    except TypeError:
        static = _ByIdentity(static)
    debug_callback_p.bind(*dynamic, callback=callback, tree=tree, static=static)
    return None


def print(fmt=None, *args, ordered=False, partitioned=False, skip_format_check=False,
          **kwargs):
    """Print `fmt.format(*args, **kwargs)` with concrete values, even under jit and vmap.

    Like `jax.debug.print`: eagerly it prints at once; under `jit` it prints every time
    the compiled function runs (not when it is traced); under `grad` or `jvp` it prints
    the primal values; under `vmap` it prints once per example, in order. A format
    with no `{}` field prints the values after it, separated by spaces, as JAX does. The
    options may also come first, JAX's two-call form: `print(ordered=True)("x = {}", x)`.

    Args:
        fmt: a `str.format` string, e.g. `"x = {}"` or `"loss {l:.3f}"`.
        *args: values (pytrees of arrays) for the positional fields.
        ordered: accepted for JAX compatibility; nanofn prints in program order.
        partitioned: accepted for JAX compatibility (arrays are whole here).
        skip_format_check: don't check for keyword arguments the format does not use
            (by default they raise ValueError, as in JAX).
        **kwargs: values for the named fields.

    Returns:
        None (or, called with options only, the function that prints).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> f = nanofn.jit(lambda x: nanofn.debug.print("x = {}", x * 2) or x)
        >>> _ = f(fnp.array([1.0, 2.0]))
        x = [2. 4.]
        >>> nanofn.debug.print("no fields:", fnp.arange(2), 7)
        no fields: [0 1] 7
    """
    if fmt is None:
        if args or kwargs:
            raise TypeError("debug.print: the format string is missing")
        return functools.partial(print, ordered=ordered, partitioned=partitioned,
                                 skip_format_check=skip_format_check)
    _emit("print", fmt, args, kwargs, ordered, skip_format_check, None)
    return None


def log(fmt=None, *args, ordered=False, partitioned=False, skip_format_check=False,
        **kwargs):
    """Like `print`, but the message goes to Python's `logging` (JAX's `jax.debug.log`):
    an INFO record of the logger `nanofn.debug`, carrying the file and line of the `log`
    call, emitted each time the value is known (every call of a jitted function).

    Example:
        >>> import logging, sys, nanofn, nanofn.numpy as fnp
        >>> handler = logging.StreamHandler(sys.stdout)
        >>> logger = logging.getLogger("nanofn.debug")
        >>> logger.addHandler(handler); logger.setLevel(logging.INFO)
        >>> nanofn.jit(lambda x: nanofn.debug.log("y = {y}", y=x + 1) or x)(fnp.ones(2))
        y = [2. 2.]
        Array([1., 1.], dtype=float32)
        >>> logger.removeHandler(handler); logger.setLevel(logging.NOTSET)
    """
    if fmt is None:
        if args or kwargs:
            raise TypeError("debug.log: the format string is missing")
        return functools.partial(log, ordered=ordered, partitioned=partitioned,
                                 skip_format_check=skip_format_check)
    where = _caller()  # where the log call stands, as JAX's record says
    _emit("log", fmt, args, kwargs, ordered, skip_format_check, where)
    return None


_logger = logging.getLogger("nanofn.debug")


def _caller():
    """`(file, line)` of the innermost frame outside nanofn."""
    pkg = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            pkg + os.sep):
        frame = frame.f_back
    return (frame.f_code.co_filename, frame.f_lineno) if frame else ("(unknown file)", 0)


def _emit(name, fmt, args, kwargs, ordered, skip_format_check, where):
    if not isinstance(fmt, str):
        raise TypeError(f"debug.{name}: fmt must be a format string, got "
                        f"{type(fmt).__name__}")
    fields = [field for _, field, _, _ in string.Formatter().parse(fmt) if field is not None]
    if not skip_format_check:
        named = {f.split(".")[0].split("[")[0] for f in fields}
        unused = sorted(set(kwargs) - named)
        if unused:
            raise ValueError(f"Unused keyword arguments to `jax.debug.{name}`: {unused}. You "
                             f"may be passing an f-string (f\"{{x}}\") into debug.{name}; "
                             "pass a plain format string and the values as arguments.")

    def show(*a, **k):
        msg = fmt.format(*a, **k) if fields else " ".join((fmt, *(str(v) for v in a)))
        if where is None:
            builtins.print(msg)
        elif _logger.isEnabledFor(logging.INFO):
            _logger.handle(_logger.makeRecord(_logger.name, logging.INFO, where[0], where[1],
                                              msg, (), None))

    callback(show, *args, ordered=ordered, **kwargs)


def inspect_array_sharding(value, *, callback):
    """Call `callback(sharding)` for each array of the pytree `value`, as early as the
    sharding is known (`jax.debug.inspect_array_sharding`).

    Eagerly that is at once, with the array's `sharding`. Under `jit` it is while the
    function is traced, once: nanofn's compiled programs hold every value whole in one
    process, so a traced value's sharding is the single-device one.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> seen = []
        >>> nanofn.debug.inspect_array_sharding({"w": fnp.ones(2)}, callback=seen.append)
        >>> seen[0].num_devices
        1
    """
    if not callable(callback):
        raise TypeError(f"debug.inspect_array_sharding: callback must be callable, got "
                        f"{type(callback).__name__}")
    from nanofn.sharding import SingleDeviceSharding, _first_device
    for leaf in tree_flatten(value)[0]:
        if isinstance(leaf, Tracer):
            sharding = SingleDeviceSharding(_first_device())
        else:
            sharding = getattr(leaf, "sharding", None) or SingleDeviceSharding(_first_device())
        callback(sharding)
    return None


def visualize_sharding(shape, sharding, *, use_color=True, scale=1.0, min_width=9,
                       max_width=80, color_map=None):
    """Print which device holds which block of an array of `shape` under `sharding`
    (`jax.debug.visualize_sharding`): a grid of the blocks along the first axis (rows)
    and the second (columns), each labelled with its devices (`CPU 0,1` for a block two
    devices hold). Block widths follow their sizes, between `min_width` and the grid's
    `max_width * scale`. JAX draws with the `rich` package and colours; nanofn prints
    plain box-drawing text, so `use_color` and `color_map` are accepted and unused.

    Raises:
        ValueError: the shape has more than two axes (as in JAX).

    Example:
        >>> import nanofn
        >>> from nanofn.sharding import SingleDeviceSharding
        >>> nanofn.debug.visualize_sharding((4,), SingleDeviceSharding(nanofn.devices()[0]))
        ┌─────────┐
        │  CPU 0  │
        └─────────┘
    """
    del use_color, color_map  # plain text
    shape = tuple(int(d) for d in shape)
    if len(shape) > 2:
        raise ValueError(f"visualize_sharding: only 1D and 2D shapes can be shown, got shape "
                         f"{shape}")
    rows_n, cols_n = (1, shape[0]) if len(shape) == 1 else shape if shape else (1, 1)
    blocks = {}  # (row range, column range) -> device ids
    for device, index in sharding.devices_indices_map(shape).items():
        index = tuple(index) + (slice(None),) * (2 - len(index))
        if len(shape) == 1:
            index = (slice(None), index[0])
        rows, cols = (s.indices(n)[:2] for s, n in zip(index, (rows_n, cols_n)))
        blocks.setdefault((rows, cols), []).append(device.id)
    row_edges = sorted({r for r, _ in blocks})
    col_edges = sorted({c for _, c in blocks})
    label = {k: "CPU " + ",".join(str(i) for i in sorted(v)) for k, v in blocks.items()}
    total = max(int(max_width * scale), min_width)
    widths = [max(min_width, len(max((label[k] for k in blocks if k[1] == c), key=len)) + 2,
                  round(total * (c[1] - c[0]) / max(cols_n, 1)) if len(col_edges) > 1 else 0)
              for c in col_edges]

    def rule(left, mid, right):
        return left + mid.join("─" * w for w in widths) + right

    lines = [rule("┌", "┬", "┐")]
    for i, r in enumerate(row_edges):
        lines.append("│" + "│".join(label.get((r, c), "").center(w)
                                     for c, w in zip(col_edges, widths)) + "│")
        lines.append(rule("├", "┼", "┤") if i < len(row_edges) - 1 else rule("└", "┴", "┘"))
    builtins.print("\n".join(lines))


def visualize_array_sharding(arr, **kwargs):
    """Print the device layout of a concrete array (`jax.debug.visualize_array_sharding`):
    `visualize_sharding(arr.shape, arr.sharding, **kwargs)`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.debug.visualize_array_sharding(fnp.ones((2, 3)))
        ┌─────────┐
        │  CPU 0  │
        └─────────┘
    """
    if isinstance(arr, Tracer):
        raise TypeError("visualize_array_sharding: needs a concrete array; under jit, use "
                        "debug.inspect_array_sharding with a callback")
    from nanofn.sharding import SingleDeviceSharding, _first_device
    sharding = getattr(arr, "sharding", None) or SingleDeviceSharding(_first_device())
    visualize_sharding(np.shape(arr), sharding, **kwargs)
