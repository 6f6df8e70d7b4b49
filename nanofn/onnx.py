"""Export a nanofn function to ONNX, to serve it with onnxruntime or any ONNX runtime.

`export(fun, *example_args)` traces `fun` to a jaxpr at the example arguments' shapes and
dtypes and writes each equation as ONNX nodes (opset 18):

* positional array arguments become the graph's inputs, named from their pytree paths
  (`params['w']`, `x`); arrays the function closes over become initializers, so
  `export(functools.partial(apply, params), x)` bakes the weights into the model;
* outputs keep their pytree order (`output_0`, `output_1`, ...);
* constants computed only from other constants (`iota`, a causal mask) are folded at
  export time;
* `scan` becomes an ONNX `Scan` whose body is the scan's program (or is unrolled with
  `unroll_scan=True`), `cond` an ONNX `If`, and custom-derivative functions are inlined.

A primitive with no ONNX mapping raises `NotImplementedError` naming it and the line of
your code that produced it. The mapped primitives are listed in `SUPPORTED`.

`onnx` is an optional extra (`pip install "nanofn[onnx]"`, which also installs
onnxruntime); it is imported only when `export` runs.

Example:
    >>> import functools, numpy as np, nanofn
    >>> from nanofn import nn, onnx as nf_onnx
    >>> init, apply = nn.serial(nn.Dense(4), nn.Relu, nn.Dense(2))
    >>> _, params = init(nanofn.random.key(0), (-1, 3))
    >>> model = nf_onnx.export(functools.partial(apply, params), np.ones((5, 3), np.float32))
    >>> [i.name for i in model.graph.input], [o.name for o in model.graph.output]
    (['inputs'], ['output_0'])
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from nanofn import _core
from nanofn._core import ClosedJaxpr, Jaxpr, Literal

__all__ = ["export", "SUPPORTED", "OPSET"]

OPSET = 18
_FOLD_LIMIT = 1 << 16  # fold constant subexpressions whose results are at most this big


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as err:
        raise ImportError("nanofn.onnx needs the onnx package: pip install 'nanofn[onnx]'") \
            from err
    return onnx, helper, numpy_helper


# ------------------------------------------------------------------------ the graph


class _Graph:
    """Nodes, initializers and the ONNX name of every jaxpr value, for one (sub)graph."""

    def __init__(self, names=None, counter=None, outer=None, unroll=False):
        self.nodes, self.initializers = [], []
        self.names: dict[int, str] = {} if names is None else names  # id(Var) -> name
        self.consts: dict[int, np.ndarray] = {}  # id(Var) -> value, where known at export
        self.counter = counter if counter is not None else itertools.count()
        self.outer = outer
        self.unroll = unroll  # write scans unrolled

    def fresh(self, base="t") -> str:
        return f"{base}_{next(self.counter)}"

    def const(self, value, dtype=None, base="c") -> str:
        _, _, numpy_helper = _onnx()
        arr = np.array(value, dtype=dtype, order="C")  # (ascontiguousarray makes 0-d 1-d)
        name = self.fresh(base)
        if self.outer is None:
            self.initializers.append(numpy_helper.from_array(arr, name))
        else:  # inside a Scan/If body: a Constant node (initializers there are not reliable)
            _, helper, _ = _onnx()
            self.nodes.append(helper.make_node("Constant", [], [name],
                                               value=numpy_helper.from_array(arr, name)))
        return name

    def ints(self, values) -> str:
        return self.const(np.asarray(values, np.int64), base="shape")

    def op(self, op_type, inputs, n_out=1, **attrs) -> list[str] | str:
        _, helper, _ = _onnx()
        outs = [self.fresh(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, **attrs))
        return outs if n_out > 1 else outs[0]

    def read(self, x) -> str:
        if isinstance(x, Literal):
            return self.const(_literal(x))
        if id(x) in self.names:
            return self.names[id(x)]
        if id(x) in self.consts:  # a folded constant used for the first time
            self.names[id(x)] = name = self.const(self.consts[id(x)], base="folded")
            return name
        raise KeyError(f"ONNX export: value {x.aval.str_short()} has no name")


def _literal(x):
    return np.asarray(x.val, x.aval.dtype).reshape(x.aval.shape)


def _known(g: _Graph, x):
    if isinstance(x, Literal):
        return _literal(x)
    return g.consts.get(id(x))


# ------------------------------------------------------------------------ rules

RULES: dict = {}


def _rule(*names):
    def register(f):
        for n in names:
            RULES[n] = f
        return f
    return register


_UNARY = {"neg": "Neg", "exp": "Exp", "log": "Log", "tanh": "Tanh", "logistic": "Sigmoid",
          "sin": "Sin", "cos": "Cos", "tan": "Tan", "asin": "Asin", "acos": "Acos",
          "atan": "Atan", "sinh": "Sinh", "cosh": "Cosh", "asinh": "Asinh", "acosh": "Acosh",
          "atanh": "Atanh", "sqrt": "Sqrt", "abs": "Abs", "sign": "Sign", "floor": "Floor",
          "ceil": "Ceil", "erf": "Erf", "stop_gradient": "Identity"}
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "max": "Max",
           "min": "Min", "eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater",
           "ge": "GreaterOrEqual"}
_LOGICAL = {"and": ("And", "BitwiseAnd"), "or": ("Or", "BitwiseOr"), "xor": ("Xor", "BitwiseXor")}


def _dtype(x):
    return np.dtype(x.aval.dtype)


for _name, _op in _UNARY.items():
    RULES[_name] = (lambda op: lambda g, eqn, ins: g.op(op, ins))(_op)
for _name, _op in _BINARY.items():
    RULES[_name] = (lambda op: lambda g, eqn, ins: g.op(op, ins))(_op)


@_rule("and", "or", "xor")
def _logical(g, eqn, ins):
    boolean, bitwise = _LOGICAL[eqn.primitive.name]
    return g.op(boolean if _dtype(eqn.invars[0]) == np.bool_ else bitwise, ins)


@_rule("not")
def _not(g, eqn, ins):
    return g.op("Not" if _dtype(eqn.invars[0]) == np.bool_ else "BitwiseNot", ins)


@_rule("ne")
def _ne(g, eqn, ins):
    return g.op("Not", [g.op("Equal", ins)])


def _scalar(g, value, like):
    return g.const(np.asarray(value, _dtype(like)))


@_rule("rsqrt")
def _rsqrt(g, eqn, ins):
    return g.op("Reciprocal", [g.op("Sqrt", ins)])


@_rule("log1p")
def _log1p(g, eqn, ins):
    return g.op("Log", [g.op("Add", [ins[0], _scalar(g, 1, eqn.invars[0])])])


@_rule("expm1")
def _expm1(g, eqn, ins):
    return g.op("Sub", [g.op("Exp", ins), _scalar(g, 1, eqn.invars[0])])


@_rule("exp2")
def _exp2(g, eqn, ins):
    return g.op("Pow", [_scalar(g, 2, eqn.invars[0]), ins[0]])


@_rule("is_finite")
def _is_finite(g, eqn, ins):
    return g.op("Not", [g.op("Or", [g.op("IsNaN", ins), g.op("IsInf", ins)])])


@_rule("rem")
def _rem(g, eqn, ins):
    return g.op("Mod", ins, fmod=1)  # the sign of the dividend, as lax.rem


@_rule("round")
def _round(g, eqn, ins):
    if eqn.params.get("rounding_method", 0) == 1:
        return g.op("Round", ins)  # half to even
    x = ins[0]  # half away from zero: sign(x) * floor(|x| + 0.5)
    half = _scalar(g, 0.5, eqn.invars[0])
    return g.op("Mul", [g.op("Sign", [x]), g.op("Floor", [g.op("Add", [g.op("Abs", [x]), half])])])


@_rule("atan2")
def _atan2(g, eqn, ins):
    y, x = ins
    like = eqn.invars[0]
    base = g.op("Atan", [g.op("Div", [y, x])])
    zero, pi = _scalar(g, 0, like), _scalar(g, math.pi, like)
    up = g.op("Where", [g.op("GreaterOrEqual", [y, zero]), pi, g.op("Neg", [pi])])
    return g.op("Add", [base, g.op("Where", [g.op("Less", [x, zero]), up, zero])])


@_rule("logaddexp")
def _logaddexp(g, eqn, ins):
    # max(x1, x2) + log1p(exp(-|x1 - x2|)); x1 + x2 where x1 - x2 is NaN (infinities of one
    # sign: logaddexp(-inf, -inf) = -inf), as the primitive's impl
    x1, x2 = ins
    like = eqn.invars[0]
    delta = g.op("Sub", [x1, x2])
    tail = g.op("Log", [g.op("Add", [_scalar(g, 1, like),
                                     g.op("Exp", [g.op("Neg", [g.op("Abs", [delta])])])])])
    return g.op("Where", [g.op("IsNaN", [delta]), g.op("Add", [x1, x2]),
                          g.op("Add", [g.op("Max", [x1, x2]), tail])])


@_rule("integer_pow")
def _integer_pow(g, eqn, ins):
    y = eqn.params["y"]
    if y == 2:
        return g.op("Mul", [ins[0], ins[0]])
    if y == 1:
        return g.op("Identity", ins)
    return g.op("Pow", [ins[0], _scalar(g, y, eqn.invars[0])])


@_rule("convert_element_type")
def _convert_element_type(g, eqn, ins):
    _, helper, _ = _onnx()
    return g.op("Cast", ins, to=helper.np_dtype_to_tensor_dtype(np.dtype(eqn.params["new_dtype"])))


@_rule("select_n")
def _select_n(g, eqn, ins):
    which, *cases = ins
    if len(cases) == 1:
        return g.op("Identity", [cases[0]])
    if _dtype(eqn.invars[0]) == np.bool_:
        return g.op("Where", [which, cases[1], cases[0]])
    out = cases[-1]
    for k in range(len(cases) - 2, -1, -1):
        is_k = g.op("Equal", [which, g.const(np.asarray(k, _dtype(eqn.invars[0])))])
        out = g.op("Where", [is_k, cases[k], out])
    return out


@_rule("broadcast_in_dim")
def _broadcast_in_dim(g, eqn, ins):
    shape, dims = eqn.params["shape"], eqn.params["broadcast_dimensions"]
    in_shape = eqn.invars[0].aval.shape
    view = [1] * len(shape)
    for d, n in zip(dims, in_shape):
        view[d] = n
    x = g.op("Reshape", [ins[0], g.ints(view)]) if tuple(view) != tuple(in_shape) else ins[0]
    return g.op("Expand", [x, g.ints(shape)])


@_rule("reshape")
def _reshape(g, eqn, ins):
    return g.op("Reshape", [ins[0], g.ints(eqn.outvars[0].aval.shape)])


@_rule("squeeze")
def _squeeze(g, eqn, ins):
    return g.op("Reshape", [ins[0], g.ints(eqn.outvars[0].aval.shape)])


@_rule("transpose")
def _transpose(g, eqn, ins):
    return g.op("Transpose", ins, perm=list(eqn.params["permutation"]))


@_rule("concatenate")
def _concatenate(g, eqn, ins):
    return g.op("Concat", ins, axis=eqn.params["dimension"])


@_rule("slice")
def _slice(g, eqn, ins):
    start, limit = eqn.params["start_indices"], eqn.params["limit_indices"]
    strides = eqn.params["strides"] or (1,) * len(start)
    axes = list(range(len(start)))
    return g.op("Slice", [ins[0], g.ints(start), g.ints(limit), g.ints(axes), g.ints(strides)])


@_rule("rev")
def _rev(g, eqn, ins):
    dims = list(eqn.params["dimensions"])
    if not dims:
        return g.op("Identity", ins)
    big = np.iinfo(np.int64).min
    return g.op("Slice", [ins[0], g.ints([-1] * len(dims)), g.ints([big] * len(dims)),
                          g.ints(dims), g.ints([-1] * len(dims))])


@_rule("pad")
def _pad(g, eqn, ins):
    config = eqn.params["padding_config"]
    if any(interior for _, _, interior in config):
        raise _Unsupported("pad with interior padding")
    x = ins[0]
    if any(lo < 0 or hi < 0 for lo, hi, _ in config):  # negative padding crops
        shape = eqn.invars[0].aval.shape
        starts = [max(-lo, 0) for lo, _, _ in config]
        ends = [n - max(-hi, 0) for n, (_, hi, _) in zip(shape, config)]
        x = g.op("Slice", [x, g.ints(starts), g.ints(ends)])
    pads = [max(lo, 0) for lo, _, _ in config] + [max(hi, 0) for _, hi, _ in config]
    return g.op("Pad", [x, g.ints(pads), ins[1]], mode="constant")


@_rule("dynamic_slice")
def _dynamic_slice(g, eqn, ins):
    sizes = eqn.params["slice_sizes"]
    shape = eqn.invars[0].aval.shape
    starts = []
    for s, n, k in zip(ins[1:], shape, sizes):
        s = g.op("Cast", [s], to=7)  # int64
        s = g.op("Min", [g.op("Max", [s, g.ints(0)]), g.ints(n - k)])  # clamp so the window fits
        starts.append(g.op("Reshape", [s, g.ints([1])]))
    start = g.op("Concat", starts, axis=0)
    return g.op("Slice", [ins[0], start, g.op("Add", [start, g.ints(sizes)])])


@_rule("iota")
def _iota(g, eqn, ins):
    p = eqn.params
    return g.const(np.asarray(eqn.primitive.impl(**p)), base="iota")


@_rule("gather")
def _gather(g, eqn, ins):
    x, idx = ins
    x_shape = eqn.invars[0].aval.shape
    k = eqn.invars[1].aval.shape[-1]
    dims = np.asarray(x_shape[:k], np.int64)
    idx = g.op("Cast", [idx], to=7)
    clipped = g.op("Min", [g.op("Max", [idx, g.ints(0)]), g.ints(np.maximum(dims - 1, 0))])
    out = g.op("GatherND", [x, clipped])
    if eqn.params["mode"] == "clip":
        return out
    from nanofn.ops._shape import _default_fill
    fill = eqn.params["fill_value"]
    fill = _default_fill(_dtype(eqn.invars[0])) if fill is None else fill
    inside = g.op("And", [g.op("GreaterOrEqual", [idx, g.ints(0)]),
                          g.op("Less", [idx, g.ints(dims)])])
    inside = g.op("ReduceMin", [g.op("Cast", [inside], to=6), g.ints([-1])], keepdims=0)  # int32
    trailing = len(eqn.outvars[0].aval.shape) - (len(eqn.invars[1].aval.shape) - 1)
    if trailing:
        inside = g.op("Unsqueeze", [inside, g.ints(list(range(-trailing, 0)))])
    inside = g.op("Cast", [inside], to=9)  # bool
    return g.op("Where", [inside, out, g.const(np.asarray(fill, _dtype(eqn.invars[0])))])


_REDUCE = {"reduce_sum": "ReduceSum", "reduce_max": "ReduceMax", "reduce_min": "ReduceMin",
           "reduce_prod": "ReduceProd"}


@_rule(*_REDUCE)
def _reduce(g, eqn, ins):
    axes = list(eqn.params["axes"])
    if not axes:
        return g.op("Identity", ins)
    x = ins[0]
    boolean = _dtype(eqn.invars[0]) == np.bool_  # any / all: ONNX reduces numbers only
    if boolean:
        x = g.op("Cast", [x], to=6)  # int32
    out = g.op(_REDUCE[eqn.primitive.name], [x, g.ints(axes)], keepdims=0)
    return g.op("Cast", [out], to=9) if boolean else out


@_rule("argmax", "argmin")
def _argmax(g, eqn, ins):
    _, helper, _ = _onnx()
    op = "ArgMax" if eqn.primitive.name == "argmax" else "ArgMin"
    out = g.op(op, ins, axis=eqn.params["axis"], keepdims=0)
    return g.op("Cast", [out], to=helper.np_dtype_to_tensor_dtype(np.dtype(eqn.params["index_dtype"])))


@_rule("cumsum")
def _cumsum(g, eqn, ins):
    return g.op("CumSum", [ins[0], g.ints(eqn.params["axis"])],
                reverse=int(bool(eqn.params.get("reverse", False))))


_CUMULATIVE = {"cumprod": "Mul", "cummax": "Max", "cummin": "Min"}
_UNROLL_LIMIT = 256  # longest axis a cumulative product, max or min is written out for


@_rule(*_CUMULATIVE)
def _cumulative(g, eqn, ins):
    # ONNX has CumSum only: the others are written out along the axis, one node per element
    axis, reverse = eqn.params["axis"], eqn.params.get("reverse", False)
    n = eqn.invars[0].aval.shape[axis]
    if n > _UNROLL_LIMIT:
        raise _Unsupported(f"{eqn.primitive.name} along an axis of {n} > {_UNROLL_LIMIT} "
                           "elements")
    if n == 0:
        return g.op("Identity", ins)
    op = _CUMULATIVE[eqn.primitive.name]
    parts = g.op("Split", [ins[0], g.ints([1] * n)], n_out=n, axis=axis) if n > 1 else [ins[0]]
    order = range(n - 1, -1, -1) if reverse else range(n)
    acc, outs = None, [None] * n
    for i in order:
        acc = parts[i] if acc is None else g.op(op, [acc, parts[i]])
        outs[i] = acc
    return g.op("Concat", outs, axis=axis) if n > 1 else outs[0]


def _sort_key(g, key, dtype):
    """`key` in a type ONNX's TopK sorts, in the same order (bool and small ints widened)."""
    if dtype == np.bool_ or (dtype.kind in "iu" and dtype.itemsize < 4):
        return g.op("Cast", [key], to=6)  # int32
    if dtype == np.float16:
        return g.op("Cast", [key], to=1)  # float32
    if dtype == np.uint32:
        return g.op("Cast", [key], to=7)  # int64
    return key


@_rule("sort")
def _sort(g, eqn, ins):
    # A stable ascending TopK over the whole axis gives each key's permutation (ONNX: equal
    # elements keep their order). Several keys: stable sorts from the last key to the
    # first. NaN sorts last, as in lax.sort: it is a key of its own, sorted after the value.
    d, num_keys = eqn.params["dimension"], eqn.params["num_keys"]
    n = eqn.invars[0].aval.shape[d]
    if n <= 1:
        return [g.op("Identity", [x]) for x in ins]
    k = g.ints([n])
    perm = None
    keys = []
    for i in range(num_keys):
        dtype = _dtype(eqn.invars[i])
        key = _sort_key(g, ins[i], dtype)
        if dtype.kind == "f":
            nan = g.op("IsNaN", [key])
            inf = np.asarray(np.inf, np.float32 if dtype == np.float16 else dtype)
            keys.append(g.op("Cast", [nan], to=6))  # the NaN flag, then the value
            keys.append(g.op("Where", [nan, g.const(inf), key]))
        else:
            keys.append(key)
    for key in reversed(keys):  # the least significant first
        if perm is not None:
            key = g.op("GatherElements", [key, perm], axis=d)
        _, order = g.op("TopK", [key, k], n_out=2, axis=d, largest=0, sorted=1)
        perm = order if perm is None else g.op("GatherElements", [perm, order], axis=d)
    return [g.op("GatherElements", [x, perm], axis=d) for x in ins]


@_rule("dynamic_update_slice")
def _dynamic_update_slice(g, eqn, ins):
    # Axis by axis: the rows the update covers are cut out with Slice, updated along the
    # next axes, and put back between the rows before and after them with Concat.
    x, update, starts = ins[0], ins[1], ins[2:]
    shape, ushape = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape
    if not shape or 0 in ushape:
        return g.op("Identity", [update if not shape else x])
    begins = []
    for s, n, u in zip(starts, shape, ushape):
        s = g.op("Cast", [s], to=7)  # int64
        s = g.op("Min", [g.op("Max", [s, g.ints(0)]), g.ints(n - u)])  # clamped, as JAX does
        begins.append(g.op("Reshape", [s, g.ints([1])]))

    def put(x, axis):
        if axis == len(shape):
            return update
        if ushape[axis] == shape[axis]:  # the whole axis: nothing before or after
            return put(x, axis + 1)
        begin = begins[axis]
        end = g.op("Add", [begin, g.ints([ushape[axis]])])
        axes = g.ints([axis])
        before = g.op("Slice", [x, g.ints([0]), begin, axes])
        rows = g.op("Slice", [x, begin, end, axes])
        after = g.op("Slice", [x, end, g.ints([shape[axis]]), axes])
        return g.op("Concat", [before, put(rows, axis + 1), after], axis=axis)
    return put(x, 0)


_SCATTER_REDUCTION = {"set": "none", "add": "add", "mul": "mul", "min": "min", "max": "max"}


@_rule("scatter")
def _scatter(g, eqn, ins):
    # ScatterND, with nanofn's bounds rule: an update whose index lies outside the operand
    # is dropped. Such indices are sent to one extra row past the end of every indexed
    # axis, which is cut off afterwards.
    x, idx, update = ins
    shape, k = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape[-1]
    if k == 0:
        raise _Unsupported("a scatter with no index axes (a whole-array update)")
    dims = np.asarray(shape[:k], np.int64)
    idx = g.op("Cast", [idx], to=7)
    inside = g.op("And", [g.op("GreaterOrEqual", [idx, g.ints(0)]),
                          g.op("Less", [idx, g.ints(dims)])])
    inside = g.op("ReduceMin", [g.op("Cast", [inside], to=6), g.ints([-1])], keepdims=1)
    idx = g.op("Where", [g.op("Cast", [inside], to=9), idx, g.ints(dims)])
    pads = [0] * len(shape) + [1] * k + [0] * (len(shape) - k)
    padded = g.op("Pad", [x, g.ints(pads), g.const(np.zeros((), _dtype(eqn.invars[0])))],
                  mode="constant")
    out = g.op("ScatterND", [padded, idx, update],
               reduction=_SCATTER_REDUCTION[eqn.params["combine"]])
    return g.op("Slice", [out, g.ints([0] * k), g.ints(dims), g.ints(list(range(k)))])


@_rule("dot_general")
def _dot_general(g, eqn, ins):
    (ca, cb), (ba, bb) = eqn.params["dimension_numbers"]
    ra, rb = len(eqn.invars[0].aval.shape), len(eqn.invars[1].aval.shape)
    letters = iter("abcdefghijklmnopqrstuvwxyz")
    a = [None] * ra
    b = [None] * rb
    for i, j in zip(ba, bb):
        a[i] = b[j] = next(letters)
    for i, j in zip(ca, cb):
        a[i] = b[j] = next(letters)
    for i in range(ra):
        a[i] = a[i] or next(letters)
    for j in range(rb):
        b[j] = b[j] or next(letters)
    out = [a[i] for i in ba] + [a[i] for i in range(ra) if i not in ba and i not in ca] + \
        [b[j] for j in range(rb) if j not in bb and j not in cb]
    x, y = ins
    want = _dtype(eqn.outvars[0])
    if _dtype(eqn.invars[0]) != want:
        x = g.op("Cast", [x], to=_onnx()[1].np_dtype_to_tensor_dtype(want))
    if _dtype(eqn.invars[1]) != want:
        y = g.op("Cast", [y], to=_onnx()[1].np_dtype_to_tensor_dtype(want))
    if ra == 2 and rb == 2 and not ba and ca == (1,) and cb == (0,):
        return g.op("MatMul", [x, y])
    return g.op("Einsum", [x, y], equation=f"{''.join(a)},{''.join(b)}->{''.join(out)}")


@_rule("softmax")
def _softmax(g, eqn, ins):
    return g.op("Softmax", ins, axis=-1)


def _scaled_softmax(g, x, dt, t, s, scale, causal):
    """Softmax over the last axis of `x * scale`, keys `j > i` hidden under `causal`."""
    x = g.op("Mul", [x, g.const(np.asarray(scale, dt))])
    if causal:
        keep = g.const(np.tril(np.ones((t, s), bool)))
        x = g.op("Where", [keep, x, g.const(np.asarray(-np.inf, dt))])
    return g.op("Softmax", [x], axis=-1)


@_rule("attention_softmax")
def _attention_softmax(g, eqn, ins):
    t, s = eqn.invars[0].aval.shape[-2:]
    return _scaled_softmax(g, ins[0], _dtype(eqn.invars[0]), t, s, eqn.params["scale"],
                           eqn.params["causal"])


@_rule("attention")
def _attention(g, eqn, ins):
    q, k, v = ins  # (B, T, N, H), (B, S, N, H), (B, S, N, H)
    t, s = eqn.invars[0].aval.shape[1], eqn.invars[1].aval.shape[1]
    logits = g.op("MatMul", [g.op("Transpose", [q], perm=[0, 2, 1, 3]),
                             g.op("Transpose", [k], perm=[0, 2, 3, 1])])
    w = _scaled_softmax(g, logits, _dtype(eqn.invars[0]), t, s, eqn.params["scale"],
                        eqn.params["causal"])
    out = g.op("MatMul", [w, g.op("Transpose", [v], perm=[0, 2, 1, 3])])
    return [g.op("Transpose", [out], perm=[0, 2, 1, 3]), w]


@_rule("log_softmax")
def _log_softmax(g, eqn, ins):
    return g.op("LogSoftmax", ins, axis=-1)


@_rule("logsumexp")
def _logsumexp(g, eqn, ins):
    return g.op("ReduceLogSumExp", [ins[0], g.ints([-1])], keepdims=0)


@_rule("layer_norm")
def _layer_norm(g, eqn, ins):
    x, scale, bias = ins
    bd = eqn.params["batch_dims"]
    eps = float(eqn.params["epsilon"])
    if bd == 0:
        return g.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=eps)
    n = eqn.invars[0].aval.shape[-1]
    ones = g.const(np.ones(n, _dtype(eqn.invars[0])))
    zeros = g.const(np.zeros(n, _dtype(eqn.invars[0])))
    y = g.op("LayerNormalization", [x, ones, zeros], axis=-1, epsilon=eps)
    shape = eqn.invars[0].aval.shape
    view = list(shape[:bd]) + [1] * (len(shape) - bd - 1) + [n]
    return g.op("Add", [g.op("Mul", [y, g.op("Reshape", [scale, g.ints(view)])]),
                        g.op("Reshape", [bias, g.ints(view)])])


@_rule("gelu")
def _gelu(g, eqn, ins):
    # GELU's tanh form, written out (ONNX's own Gelu op needs opset 20): x * 0.5 * (1 +
    # tanh(sqrt(2/pi) * (xc + 0.044715 xc^3))) with xc = x clipped to [-10, 10], as nanofn
    dt = _dtype(eqn.invars[0])

    def c(v):
        return g.const(np.asarray(v, dt))
    xc = g.op("Clip", [ins[0], c(-10.0), c(10.0)])
    cube = g.op("Mul", [g.op("Mul", [xc, xc]), xc])
    inner = g.op("Mul", [c(math.sqrt(2 / math.pi)),
                         g.op("Add", [xc, g.op("Mul", [c(0.044715), cube])])])
    half_phi = g.op("Mul", [c(0.5), g.op("Add", [c(1.0), g.op("Tanh", [inner])])])
    return g.op("Mul", [ins[0], half_phi])


def _lhs_dilate(g, x, shape, dilation):
    """Insert `d - 1` zeros between neighbours along each spatial axis (N, C, *spatial)."""
    for i, d in enumerate(dilation):
        if d == 1:
            continue
        axis = 2 + i
        n = shape[axis]
        x = g.op("Unsqueeze", [x, g.ints([axis + 1])])
        pads = [0] * (len(shape) + 1) * 2
        pads[len(shape) + 1 + axis + 1] = d - 1
        x = g.op("Pad", [x, g.ints(pads)], mode="constant")
        merged = list(shape)
        merged[axis] = n * d
        x = g.op("Reshape", [x, g.ints(merged)])
        ends = list(merged)
        ends[axis] = (n - 1) * d + 1
        x = g.op("Slice", [x, g.ints([0] * len(shape)), g.ints(ends)])
        shape = tuple(ends)
    return x, shape


@_rule("conv_patches")
def _conv_patches(g, eqn, ins):
    p = eqn.params
    if p["pad_value"] not in (0, 0.0):
        raise _Unsupported("conv_patches with a non-zero pad value")
    x = ins[0]
    shape = eqn.invars[0].aval.shape  # (N, C, *spatial)
    x, shape = _lhs_dilate(g, x, shape, p["lhs_dilation"])
    c, window = shape[1], tuple(p["window"])
    k = math.prod(window)
    pads = [lo for lo, _ in p["padding"]] + [hi for _, hi in p["padding"]]
    if any(v < 0 for v in pads):
        raise _Unsupported("conv_patches with negative padding")
    kernel = np.zeros((c * k, 1) + window, _dtype(eqn.invars[0]))
    for ci in range(c):
        for j, pos in enumerate(np.ndindex(*window)):
            kernel[(ci * k + j, 0) + pos] = 1
    out = g.op("Conv", [x, g.const(kernel, base="patch_kernel")], group=c,
               kernel_shape=list(window), strides=list(p["strides"]), pads=pads,
               dilations=list(p["rhs_dilation"]))
    n, out_spatial = shape[0], eqn.outvars[0].aval.shape[1:1 + len(window)]
    out = g.op("Reshape", [out, g.ints((n, c) + window + tuple(out_spatial))])
    ns = len(window)
    # (N, C, *window, *out) -> (N, *out, *window, C)
    perm = [0] + [2 + ns + i for i in range(ns)] + [2 + i for i in range(ns)] + [1]
    return g.op("Transpose", [out], perm=perm)


def _pool(g, eqn, ins, op):
    p = eqn.params
    shape = eqn.invars[0].aval.shape
    if any(d != 1 for d in p["base_dilation"]):
        raise _Unsupported(f"{eqn.primitive.name} with base dilation")
    pooled = [i for i in range(len(shape)) if p["window_dimensions"][i] != 1
              or p["window_strides"][i] != 1 or p["padding"][i] != (0, 0)]
    if not pooled:
        return g.op("Identity", ins)
    if op == "AveragePool" and any(p["window_dilation"][i] != 1 for i in pooled):
        raise _Unsupported("reduce_window_sum with window dilation")
    rest = [i for i in range(len(shape)) if i not in pooled]
    x = g.op("Transpose", ins, perm=rest + pooled)
    m = math.prod(shape[i] for i in rest)
    x = g.op("Reshape", [x, g.ints([m, 1] + [shape[i] for i in pooled])])
    attrs = dict(kernel_shape=[p["window_dimensions"][i] for i in pooled],
                 strides=[p["window_strides"][i] for i in pooled],
                 pads=[p["padding"][i][0] for i in pooled] + [p["padding"][i][1] for i in pooled])
    if op == "MaxPool":
        attrs["dilations"] = [p["window_dilation"][i] for i in pooled]
    else:
        attrs["count_include_pad"] = 1
    y = g.op(op, [x], **attrs)
    if op == "AveragePool":  # a sum is an average times the window size
        size = math.prod(p["window_dimensions"][i] for i in pooled)
        y = g.op("Mul", [y, g.const(np.asarray(size, _dtype(eqn.invars[0])))])
    out_shape = eqn.outvars[0].aval.shape
    y = g.op("Reshape", [y, g.ints([out_shape[i] for i in rest + pooled])])
    inverse = list(np.argsort(rest + pooled))
    return g.op("Transpose", [y], perm=[int(i) for i in inverse])


RULES["reduce_window_max"] = lambda g, eqn, ins: _pool(g, eqn, ins, "MaxPool")
RULES["reduce_window_sum"] = lambda g, eqn, ins: _pool(g, eqn, ins, "AveragePool")


def _inner_closed(eqn):
    """The program of a custom-derivative or checkpoint call, traced at its input types."""
    fun = getattr(eqn.params.get("call"), "fun_flat", None)
    if fun is None:
        raise _Unsupported(f"{eqn.primitive.name} without a function to inline")
    from nanofn import tree_util

    def flat(*xs):
        return tree_util.tree_leaves(fun(*xs))
    return _core.trace_to_jaxpr(flat, [v.aval for v in eqn.invars])


@_rule("custom_jvp_call", "custom_vjp_call", "checkpoint")
def _inline(g, eqn, ins):
    closed = _inner_closed(eqn)
    return _convert(g, closed.jaxpr, ins, closed.consts)


@_rule("scan")
def _scan(g, eqn, ins):
    p = eqn.params
    body = p["jaxpr"]
    body_jaxpr, body_consts = (body.jaxpr, body.consts) if isinstance(body, ClosedJaxpr) \
        else (body, [])
    nc, nk = p["num_consts"], p["num_carry"]
    consts, carry, xs = ins[:nc], ins[nc:nc + nk], ins[nc + nk:]
    if g.unroll or not xs:
        return _unrolled_scan(g, eqn, body_jaxpr, body_consts, consts, carry, xs)
    _, helper, _ = _onnx()
    sub = _Graph(counter=g.counter, outer=g, unroll=g.unroll)
    n_ys = len(eqn.outvars) - nk
    carry_in = [g.fresh("carry_in") for _ in carry]
    x_in = [g.fresh("x_in") for _ in xs]
    body_ins = list(consts) + carry_in + x_in
    outs = _convert(sub, body_jaxpr, body_ins, body_consts)
    outs = [sub.op("Identity", [o]) for o in outs]  # body outputs need their own names

    def info(name, aval):
        return helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(np.dtype(aval.dtype)), list(aval.shape))
    in_avals = [v.aval for v in body_jaxpr.invars]
    graph = helper.make_graph(
        sub.nodes, g.fresh("scan_body"),
        [info(n, a) for n, a in zip(carry_in + x_in, in_avals[nc:])],
        [info(n, v.aval) for n, v in zip(outs, body_jaxpr.outvars)],
        initializer=sub.initializers)
    direction = [1 if p["reverse"] else 0]
    return g.op("Scan", list(carry) + list(xs), n_out=len(eqn.outvars), body=graph,
                num_scan_inputs=len(xs), scan_input_directions=direction * len(xs),
                scan_output_directions=direction * n_ys)


def _unrolled_scan(g, eqn, body_jaxpr, body_consts, consts, carry, xs):
    p = eqn.params
    length = p["length"]
    ys_steps = []
    steps = range(length - 1, -1, -1) if p["reverse"] else range(length)
    for t in steps:
        x_t = [g.op("Gather", [x, g.ints(t)], axis=0) for x in xs]
        outs = _convert(g, body_jaxpr, list(consts) + list(carry) + x_t, body_consts)
        carry, ys = outs[:len(carry)], outs[len(carry):]
        ys_steps.append(ys)
    if p["reverse"]:
        ys_steps.reverse()
    stacked = [g.op("Concat", [g.op("Unsqueeze", [y[i], g.ints([0])]) for y in ys_steps], axis=0)
               for i in range(len(eqn.outvars) - len(carry))]
    return list(carry) + stacked


@_rule("cond")
def _cond(g, eqn, ins):
    _, helper, _ = _onnx()
    branches = eqn.params["branches"]
    index, operands = ins[0], ins[1:]

    def parts(br):
        return (br.jaxpr, br.consts) if isinstance(br, ClosedJaxpr) else (br, [])

    if len(branches) == 2:  # an ONNX If: index 0 runs branch 0, anything else branch 1
        def graph(br):
            jaxpr, consts = parts(br)
            sub = _Graph(counter=g.counter, outer=g, unroll=g.unroll)
            outs = [sub.op("Identity", [o]) for o in _convert(sub, jaxpr, operands, consts)]
            return helper.make_graph(sub.nodes, g.fresh("branch"), [], [
                helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(
                    np.dtype(v.aval.dtype)), list(v.aval.shape))
                for n, v in zip(outs, jaxpr.outvars)], initializer=sub.initializers)
        pred = g.op("Cast", [index], to=9)  # bool: non-zero
        outs = g.op("If", [pred], n_out=len(eqn.outvars), then_branch=graph(branches[1]),
                    else_branch=graph(branches[0]))
        return outs if isinstance(outs, list) else [outs]
    # more branches: every branch computed, the result chosen by index (pure, so equal)
    results = [_convert(g, *parts(br)[:1], operands, parts(br)[1]) for br in branches]
    idx_dtype = _dtype(eqn.invars[0])
    clamped = g.op("Min", [g.op("Max", [index, g.const(np.asarray(0, idx_dtype))]),
                           g.const(np.asarray(len(branches) - 1, idx_dtype))])
    chosen = results[-1]
    for k in range(len(branches) - 2, -1, -1):
        is_k = g.op("Equal", [clamped, g.const(np.asarray(k, idx_dtype))])
        chosen = [g.op("Where", [is_k, a, b]) for a, b in zip(results[k], chosen)]
    return chosen


@_rule("while")
def _while(g, eqn, ins):
    # An ONNX Loop without a trip count: the condition is computed once before the loop
    # and again at the end of each body, on the new carry.
    _, helper, _ = _onnx()
    p = eqn.params

    def parts(j):
        return (j.jaxpr, j.consts) if isinstance(j, ClosedJaxpr) else (j, [])
    (cond, cond_consts), (body, body_consts) = parts(p["cond_jaxpr"]), parts(p["body_jaxpr"])
    nc, nb = p["cond_nconsts"], p["body_nconsts"]
    cond_ins, body_ins, init = ins[:nc], ins[nc:nc + nb], ins[nc + nb:]
    first = _convert(g, cond, list(cond_ins) + list(init), cond_consts)[0]
    sub = _Graph(counter=g.counter, outer=g, unroll=g.unroll)
    step, flag = g.fresh("iteration"), g.fresh("cond_in")
    carry_in = [g.fresh("carry_in") for _ in init]
    new = _convert(sub, body, list(body_ins) + carry_in, body_consts)
    again = _convert(sub, cond, list(cond_ins) + new, cond_consts)[0]
    outs = [sub.op("Identity", [o]) for o in [again] + new]

    def info(name, dtype, shape):
        return helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), list(shape))
    avals = [v.aval for v in eqn.outvars]
    graph = helper.make_graph(
        sub.nodes, g.fresh("while_body"),
        [info(step, np.int64, ()), info(flag, np.bool_, ())] +
        [info(n, a.dtype, a.shape) for n, a in zip(carry_in, avals)],
        [info(outs[0], np.bool_, ())] +
        [info(n, a.dtype, a.shape) for n, a in zip(outs[1:], avals)],
        initializer=sub.initializers)
    out = g.op("Loop", ["", first] + list(init), n_out=len(init), body=graph)
    return out if isinstance(out, list) else [out]


# ------------------------------------------------------------------------ driver


class _Unsupported(Exception):
    pass


SUPPORTED = tuple(sorted(RULES))


def _convert(g: _Graph, jaxpr: Jaxpr, in_names, consts):
    """Convert `jaxpr`'s equations into `g`; return the names of its outputs."""
    for v, c in zip(jaxpr.constvars, consts):
        g.consts[id(v)] = np.asarray(_core.to_numpy(c))
    for v, name in zip(jaxpr.invars, in_names):
        g.names[id(v)] = name
    for eqn in jaxpr.eqns:
        known = [_known(g, x) for x in eqn.invars]
        size = sum(math.prod(v.aval.shape) for v in eqn.outvars)
        inputs_size = sum(np.size(k) for k in known if k is not None)
        if eqn.primitive.name not in ("scan", "cond", "while") and eqn.primitive.impl and \
                all(k is not None for k in known) and \
                (size <= _FOLD_LIMIT or size <= inputs_size):
            out = eqn.primitive.impl(*known, **eqn.params)  # constant folding
            outs = out if eqn.primitive.multiple_results else [out]
            for v, o in zip(eqn.outvars, outs):
                g.consts[id(v)] = np.asarray(o)
            continue
        rule = RULES.get(eqn.primitive.name)
        where = _source_of(eqn)
        if rule is None:
            raise NotImplementedError(
                f"ONNX export: no ONNX mapping for the primitive '{eqn.primitive.name}' "
                f"({', '.join(v.aval.str_short() for v in eqn.invars)}), produced at {where}. "
                f"Mapped primitives: nanofn.onnx.SUPPORTED")
        ins = [g.read(x) for x in eqn.invars]
        _ENCLOSING.append(where)
        try:
            outs = rule(g, eqn, ins)
        except _Unsupported as err:
            raise NotImplementedError(f"ONNX export: {err} cannot be exported (primitive "
                                      f"'{eqn.primitive.name}', produced at {where})") from None
        finally:
            _ENCLOSING.pop()
        outs = outs if isinstance(outs, list) else [outs]
        for v, name in zip(eqn.outvars, outs):
            g.names[id(v)] = name
    return [g.read(x) for x in jaxpr.outvars]


_SOURCES: dict[int, str] = {}
_ENCLOSING: list[str] = []  # the sources of the equations whose inner programs are converting


def _source_of(eqn) -> str:
    """The user's line that produced `eqn`; for an equation of an inner program (a custom
    derivative's, traced again to inline it), the line of the call that encloses it."""
    key = id(eqn.outvars[0]) if eqn.outvars else id(eqn)
    return _SOURCES.get(key) or next(
        (s for s in reversed(_ENCLOSING) if s != "<unknown>"), "<unknown>")


def _trace_with_sources(fun, args):
    """`make_jaxpr(fun)(*args)`, remembering the user's source line of every equation."""
    from unittest import mock

    from nanofn._jit import make_jaxpr
    original = _core.JaxprTrace.process_primitive

    def recording(self, prim, tracers, params):
        out = original(self, prim, tracers, params)
        eqn = self.main.global_data.eqns[-1]
        # keyed by the first result, which outlives the equation when a pass rebuilds it
        _SOURCES[id(eqn.outvars[0]) if eqn.outvars else id(eqn)] = _core.user_frame()
        return out

    _SOURCES.clear()
    with mock.patch.object(_core.JaxprTrace, "process_primitive", recording):
        return make_jaxpr(fun)(*args)


def export(fun, *example_args, path=None, unroll_scan: bool = False, opset: int = OPSET,
           model_name: str | None = None):
    """Export `fun` at the example arguments' shapes and dtypes as an ONNX model.

    Args:
        fun: a function of arrays (pytrees of arrays) returning arrays (or a pytree).
        *example_args: arguments fixing the input shapes and dtypes; every array leaf
            becomes a graph input named from its pytree path.
        path: if given, the model is also written there (`.onnx`).
        unroll_scan: write `scan` unrolled instead of as an ONNX `Scan`.
        opset: the ONNX opset (18 or newer).
        model_name: the graph's name (default: the function's name).

    Returns:
        The `onnx.ModelProto`, checked by `onnx.checker`.

    Example:
        >>> import numpy as np, nanofn.numpy as jnp
        >>> from nanofn import onnx as nf_onnx
        >>> m = nf_onnx.export(lambda x: jnp.tanh(x) * 2, np.ones(3, np.float32))
        >>> [n.op_type for n in m.graph.node]
        ['Tanh', 'Mul', 'Identity']
    """
    onnx, helper, _ = _onnx()
    if opset < 18:
        raise ValueError(f"export: opset must be 18 or newer, got {opset}")
    import inspect

    from nanofn import tree_util
    closed = _trace_with_sources(fun, example_args)
    leaves_with_paths = tree_util.tree_flatten_with_path(list(example_args))[0]
    try:
        params = list(inspect.signature(fun).parameters)
    except (TypeError, ValueError):
        params = []
    input_names = []
    for path_keys, _ in leaves_with_paths:
        i = path_keys[0].idx
        base = params[i] if i < len(params) and not params[i].startswith("*") else f"arg{i}"
        input_names.append(base + tree_util.keystr(tuple(path_keys[1:])))
    g = _Graph(unroll=unroll_scan)
    outs = _convert(g, closed.jaxpr, input_names, closed.consts)
    out_names = []
    for i, name in enumerate(outs):
        out_names.append(f"output_{i}")
        g.nodes.append(helper.make_node("Identity", [name], [f"output_{i}"]))

    def info(name, aval):
        return helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(np.dtype(aval.dtype)), list(aval.shape))
    graph = helper.make_graph(
        g.nodes, model_name or getattr(fun, "__name__", "nanofn_function"),
        [info(n, a) for n, a in zip(input_names, closed.jaxpr.in_avals)],
        [info(n, v.aval) for n, v in zip(out_names, closed.jaxpr.outvars)],
        initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="nanofn")
    model.ir_version = min(model.ir_version, 10)  # what current onnxruntime releases read
    onnx.checker.check_model(model)
    if path is not None:
        onnx.save(model, path)
    return model
