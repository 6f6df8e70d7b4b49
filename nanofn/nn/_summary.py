"""Model summaries: a table of layers with output shapes, parameter counts, bytes and
FLOPs (as flax's `tabulate` and torchinfo's `summary` give), and a shapes-only view of
any params pytree.

FLOPs are counted from the traced program, not from a per-layer formula: every
`dot_general` contributes 2 x (output size) x (contracted size), which covers dense
layers, attention and convolutions (nanofn lowers a convolution to patches and one
`dot_general`); control flow multiplies its body by its trip count where it is known
(`scan`). Elementwise work is not counted, as in torchinfo's multiply-add figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nanofn import tree_util

__all__ = ["summary", "Summary", "SummaryRow", "param_table", "count_flops"]


def count_flops(program) -> int:
    """Multiply-add FLOPs (2 per multiply-add) of the `dot_general`s in a jaxpr.

    Args:
        program: a `ClosedJaxpr` (from `make_jaxpr`) or a `Jaxpr`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> prog = nanofn.make_jaxpr(lambda a, b: a @ b)(fnp.ones((2, 3)), fnp.ones((3, 4)))
        >>> nanofn.nn.count_flops(prog)  # 2 * (2*4 outputs) * 3 contracted
        48
    """
    from nanofn._core import ClosedJaxpr, Jaxpr

    jaxpr = program.jaxpr if isinstance(program, ClosedJaxpr) else program
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            (contract_a, _), _ = eqn.params["dimension_numbers"]
            a_shape = eqn.invars[0].aval.shape
            k = math.prod(a_shape[d] for d in contract_a)
            total += 2 * math.prod(eqn.outvars[0].aval.shape) * k
            continue
        inner = 0
        for v in eqn.params.values():
            for sub in (v if isinstance(v, (list, tuple)) else [v]):
                if isinstance(sub, (Jaxpr, ClosedJaxpr)):
                    inner = max(inner, count_flops(sub)) if name == "cond" else \
                        inner + count_flops(sub)
        if name == "scan":
            inner *= eqn.params.get("length", 1)
        total += inner
    return total


@dataclass
class SummaryRow:
    """One layer of a summary."""

    name: str
    output_shape: tuple
    params: int  # number of parameters (array elements)
    bytes: int
    flops: int  # per example (a batch of one)


@dataclass
class Summary:
    """A model summary; `str()` prints the table, `rows` holds the figures."""

    rows: list[SummaryRow]
    input_shape: tuple

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def total_bytes(self) -> int:
        return sum(r.bytes for r in self.rows)

    @property
    def total_flops(self) -> int:
        return sum(r.flops for r in self.rows)

    def __str__(self):
        w = max([len(r.name) for r in self.rows] + [5])
        w = min(w, 48)
        head = f"{'layer':<{w}}  {'output shape':<18} {'params':>10} {'bytes':>10} {'FLOPs':>12}"
        lines = [f"input shape {self.input_shape}", head, "-" * len(head)]
        for r in self.rows:
            name = r.name if len(r.name) <= w else r.name[: w - 3] + "..."
            lines.append(f"{name:<{w}}  {str(r.output_shape):<18} {r.params:>10,} "
                         f"{_human_bytes(r.bytes):>10} {r.flops:>12,}")
        lines.append("-" * len(head))
        lines.append(f"{'total':<{w}}  {'':<18} {self.total_params:>10,} "
                     f"{_human_bytes(self.total_bytes):>10} {self.total_flops:>12,}")
        lines.append("(FLOPs per example: 2 per multiply-add of dot/conv)")
        return "\n".join(lines)

    __repr__ = __str__


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _count(params) -> tuple[int, int]:
    leaves = tree_util.tree_leaves(params)
    n = sum(int(np.size(x)) for x in leaves)
    b = sum(int(np.size(x)) * np.dtype(getattr(x, "dtype", np.float32)).itemsize
            for x in leaves)
    return n, b


def _example(shape, dtype):
    from nanofn import numpy as fnp
    if isinstance(shape, list):
        return [_example(s, dtype) for s in shape]
    return fnp.zeros(tuple(1 if d == -1 else d for d in shape), dtype)


def _flops(apply, params, input_shape, dtype, kwargs) -> int:
    from nanofn._jit import make_jaxpr
    try:
        prog = make_jaxpr(lambda p, x: apply(p, x, **kwargs))(params,
                                                              _example(input_shape, dtype))
    except Exception:  # noqa: BLE001  (a layer that needs more than (params, x))
        return 0
    return count_flops(prog)


def summary(model, input_shape, params=None, *, rng=None, dtype=np.float32,
            **apply_kwargs) -> Summary:
    """A table of the layers of an `(init, apply)` model: output shape, parameter count,
    bytes and FLOPs per example, with totals (like flax's `tabulate` or torchinfo).

    A `serial` model gets one row per layer (nested `serial`s are opened up); any other
    layer is one row.

    Args:
        model: a `nanofn.nn` layer or an `(init, apply)` pair.
        input_shape: the input shape as for `init` (`-1` for the batch axis).
        params: the model's params; initialised from `rng` (default key 0) if None.
        rng: a PRNG key for the initialisation.
        dtype: the input dtype used to trace FLOPs.
        **apply_kwargs: passed to each layer's `apply` (e.g. `training=False`).

    Returns:
        A `Summary`; print it for the table.

    Example:
        >>> import nanofn
        >>> nn = nanofn.nn
        >>> model = nn.serial(nn.Dense(512), nn.Relu, nn.Dense(10))
        >>> s = nn.summary(model, (-1, 64))
        >>> [(r.name, r.output_shape, r.params) for r in s.rows]
        [('Dense(512)', (-1, 512), 33280), ('elementwise(relu)', (-1, 512), 0), ('Dense(10)', (-1, 10), 5130)]
        >>> s.total_params, s.total_flops
        (38410, 75776)
    """
    from nanofn import random
    from nanofn.nn._base import as_pair

    init, apply = as_pair(model, "summary")
    if params is None:
        _, params = init(random.key(0) if rng is None else rng, input_shape)
    rows: list[SummaryRow] = []

    def walk(layer, p, shape):
        children = getattr(layer, "layers", None)
        if children is not None and getattr(layer, "kind", None) == "serial":
            for child, cp in zip(children, p):
                shape = walk(child, cp, shape)
            return shape
        layer_init, layer_apply = as_pair(layer, "summary")
        out_shape, _ = layer_init(random.key(0), shape)
        n, b = _count(p)
        rows.append(SummaryRow(getattr(layer, "name", "layer"), out_shape, n, b,
                               _flops(layer_apply, p, shape, dtype, apply_kwargs)))
        return out_shape

    walk(model, params, input_shape)
    return Summary(rows, tuple(input_shape) if not isinstance(input_shape, list)
                   else input_shape)


def param_table(params) -> str:
    """The shapes and dtypes of a params pytree, one leaf per line with its path, and
    the total count and size (values are never printed).

    Example:
        >>> import nanofn
        >>> _, params = nanofn.nn.Dense(3).init(nanofn.random.key(0), (-1, 2))
        >>> print(nanofn.nn.param_table(params))
        ['b']  float32[3]      3
        ['w']  float32[2,3]    6
        total: 9 parameters, 36 B
    """
    leaves = tree_util.tree_flatten_with_path(params)[0]
    entries = []
    for path, x in leaves:
        shape = tuple(np.shape(x))
        dtype = np.dtype(getattr(x, "dtype", np.asarray(x).dtype))
        entries.append((tree_util.keystr(path) or "(root)",
                        f"{dtype.name}[{','.join(map(str, shape))}]", int(np.prod(shape))))
    wp = max([len(e[0]) for e in entries] + [1])
    wt = max([len(e[1]) for e in entries] + [1])
    lines = [f"{p:<{wp}}  {t:<{wt}}  {n:>5,}" for p, t, n in entries]
    n, b = _count(params)
    lines.append(f"total: {n:,} parameters, {_human_bytes(b)}")
    return "\n".join(lines)
