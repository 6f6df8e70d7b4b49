"""Elementwise fusion: chains of elementwise primitives become one generated numba loop.

Most of a jitted gradient is elementwise arithmetic: `grad` of a 30-op function is a
120-equation chain of `mul`, `add`, `sin`, `div`, ... Run one equation at a time, each is
a numpy call that reads and writes whole arrays. On small arrays the cost is the Python and
numpy overhead of every call (about half a microsecond each); on large arrays it is memory
traffic, and a freshly allocated result for every equation.

`fuse(closed)` finds maximal groups of such equations and replaces each group with ONE
equation of the primitive `fused_elementwise`. Its implementation is a loop generated for
the group and compiled by numba: one pass over the elements, every intermediate value in
a register, only the values the rest of the program needs written to memory.

How it works, in three steps:

1. **Grouping.** Walk the equations in order. An elementwise equation (one of `_OPS`) whose
   operands all have its output shape or are scalars joins the group(s) that produced its
   operands, if they share its shape; otherwise it starts a group. Two groups merge when an
   equation uses both. A merge is refused if it would make the program circular: if some
   equation outside the merged group depends on the group and the group depends on it.
   Each equation's ancestors are kept as a bit mask (one bit per equation), which makes
   that test a few integer operations. Equations with side effects close every open group.
   A slice of the last axis joins as a window onto its operand, and a concatenation along
   the last axis of a group's values as an output of it (`_sink_slices` first moves
   arithmetic below such slices).
2. **Code generation.** A group becomes a program (`FusedProgram`): its inputs (arrays of
   the group's shape, or scalars), a list of operations, and its outputs (values used
   outside the group). The program is printed as the source of a Python loop
   (`kernel_source`), which `nanofn._kernels` writes to a file named by its hash and
   compiles with numba's disk cache on, so another process reuses the machine code.
3. **Emission.** Groups and the remaining equations are put back in an order that respects
   every dependency (equations with side effects keep their order).

**Policy, from measurement** (docs/performance.md has the tables). numba from PyPI has no
vector math library, so inside a loop `sin`, `exp`, `tanh` and friends call the scalar C
library: per element 5-10x (exp, log, sin) to over 100x (tanh) slower than numpy's
vectorised float32 ufuncs. Cheap arithmetic (`add`, `mul`, `div`, `max`, `select_n`,
comparisons, `sqrt`, ...) vectorises well and always wins when fused. Hence: a
transcendental function joins a group only when the group's arrays are small (at most
`FUSE_MAX_SIZE[name]` elements, where the per-call overhead of a separate numpy step
outweighs the slower scalar loop); on larger arrays it stays a numpy call and the cheap
arithmetic around it is fused. float32 `tanh`, `exp` and `logistic` are computed in
kernels by arithmetic that vectorises (a rational approximation, nanofn/ops/_fastmath.py,
and a range-reduced polynomial, `_exp32`), not by the C library, and fuse at any size.
The C library, the approximations and numpy may round such functions differently in the
last bits; `EXACT = True` keeps them out of kernels altogether, so that jitted results
equal eager ones bit for bit.

If a generated kernel cannot be compiled (or numba is missing), its group is left as the
original equations and one warning says so. `nanofn.config.update("nanofn_use_kernels",
False)` turns fusion off. Kernels are single-threaded (see `nanofn._kernels`).

The fused primitive also has differentiation and batching rules, which replay the group's
original primitives: a fused jaxpr can still be transformed (the rules are not fast; jit
transforms the unfused jaxpr).
"""

from __future__ import annotations

import heapq
import warnings

import numpy as np

from nanofn import _core as core
from nanofn import _kernels, _malloc, _numba_setup
from nanofn._config import config
from nanofn._core import ClosedJaxpr, Eqn, Jaxpr, Literal, Primitive, ShapedArray, Var

# A transcendental function joins a group only if the group's arrays have at most this
# many elements (None: always). Inside a kernel it calls the scalar C library; beyond these
# sizes numpy's vectorised ufunc plus a split kernel is faster. Each limit is a little below
# the measured crossover (docs/performance.md): exp/exp2/log ~3k elements, sin ~2k,
# cos/cosh/pow/asin/acos ~1k, atan/log1p/expm1/sinh/acosh/atanh ~700, tan/tanh ~300,
# asinh/atan2 ~250. Unfused, logistic is several numpy passes and erf a numba ufunc, so
# fusing them never loses.
#
# In float32, `tanh`, `exp` and `logistic` are the exception (`VECTORISED_FLOAT32`): kernels
# compute them with arithmetic that vectorises, not the C library, so they fuse at any
# size. tanh is nanofn/ops/_fastmath.py's rational approximation (within 6.02 ulp; 0.7 ns
# an element in a loop, numpy's float32 tanh 0.4-0.6), exp a range reduction and Taylor
# polynomial (`_exp32`, within 1.2 ulp; 0.7 ns an element, numpy's 0.5), and logistic
# is built on that exp (within 2.5 ulp, its tails included). Fusing them at any size pays
# only because a plan never runs a fused kernel in place (nanofn/_jit.py's `_Step`): on
# an output that overlaps an input, LLVM takes the loop's scalar version.
FUSE_MAX_SIZE = {
    "exp": 2048, "exp2": 2048, "log": 2048, "sin": 2048,
    "cos": 1024, "cosh": 1024, "pow": 1024, "asin": 1024, "acos": 1024,
    "atan": 512, "log1p": 512, "expm1": 512, "sinh": 512, "acosh": 512, "atanh": 512,
    "tan": 256, "tanh": 256,
    "asinh": 128, "atan2": 128,
    "logistic": None, "erf": None, "gelu": 256, "gelu_grad": 256,
}
_DEFAULT_FUSE_MAX_SIZE = 256  # for a transcendental missing from the table
# no size limit in float32 (see above); GELU and its gradient are built on that tanh
VECTORISED_FLOAT32 = {"tanh", "exp", "logistic", "gelu", "gelu_grad"}
# Inside a kernel, transcendental functions come from the C library, numpy's from its own
# vectorised code: results can differ in the last bit, so a jitted function may not equal
# its eager run bit for bit. True: never fuse them (only IEEE-exact arithmetic fuses, so
# jit and eager agree exactly), at the cost of the small-array speed-up (docs/performance.md).
EXACT = False
# A group needs at least this many equations (one equation gains nothing from a kernel).
MIN_GROUP_SIZE = 2
# Groups are cut at this many equations: numba's compile time grows with the loop body.
MAX_GROUP_SIZE = 400

_FLOATS = ("float32", "float64")
_FLOATS_AND_BOOL = ("float32", "float64", "bool")

# ------------------------------------------------------------------------ the operations
#
# Each fusible primitive has an emitter: `emit(out, args, params, cx)` returns the source
# lines that compute the variable named `out` from the variables named in `args`, for one
# element. `cx` gives the numpy scalar type of the output (`cx.t`), and typed constants
# (`cx.c(value)` in the output dtype, `cx.ci(value)` in the first operand's dtype). Every
# float result is cast to its dtype, so float32 code never drifts to float64.


def _ufunc(fn):
    return lambda o, a, p, cx: [f"{o} = {cx.t}({fn}({a[0]}))"]


def _binary(op):
    return lambda o, a, p, cx: [f"{o} = {cx.t}({a[0]} {op} {a[1]})"]


def _compare(op):
    return lambda o, a, p, cx: [f"{o} = {a[0]} {op} {a[1]}"]


def _tanh(o, a, p, cx):
    if cx.out_dtype != "float32":
        return _ufunc("np.tanh")(o, a, p, cx)
    # float32: nanofn/ops/_fastmath.py's rational approximation (within 6.02 ulp), written
    # out here so the kernel's source, and so its cache key, holds the coefficients
    from nanofn.ops import _fastmath as fm
    cx.imports.add("from nanofn._bitcast import fma as _fma")
    x, s, one, clamp = a[0], f"{o}_s", cx.c(1), cx.c(fm.CLAMP)

    def horner(coeffs):  # its steps as fused multiply-adds, as `tanh_approx`'s
        text = cx.c(coeffs[-1])
        for c in coeffs[-2:0:-1]:
            text = f"_fma({text}, {s}, {cx.c(c)})"
        return f"_fma({text}, {s}, {one})"
    return [f"{s} = {x} * {x}",
            f"{o} = {x} * (({horner(fm._P)}) / ({horner(fm._Q)}))",
            f"{o} = {one} if {o} > {one} else {o}",
            f"{o} = -{one} if {o} < -{one} else {o}",
            f"{o} = {one} if {x} >= {clamp} else {o}",
            f"{o} = -{one} if {x} <= -{clamp} else {o}"]


# float32 exp as arithmetic that vectorises: x = n ln2 + r with n = round(x log2(e)) and
# |r| <= ln2/2 (ln2 in two parts, the first with few bits, so that n * ln2 is exact), exp(r)
# by its Taylor polynomial to degree 7 (truncation error below 0.1 ulp; Horner's steps as
# fused multiply-adds, `nanofn._bitcast.fma`), times 2^n as two
# float32 powers of two made from their bits (nanofn/_bitcast.py), so that results from
# the subnormals to overflow need no special case. Within 1.2 ulp of the exact exp over
# float32's whole range (tests/test_fusion.py measures it); NaN stays NaN.
_EXP_CLAMP = (-104.0, 88.8)  # exp is 0 below (float32), inf above
_LN2_HI, _LN2_LO = 0.693359375, -2.12194440e-4
_EXP_TAYLOR = tuple(1.0 / np.prod(np.arange(1, k + 1)) for k in range(8))  # 1/k!


def _exp32(o, x, cx):
    """Lines computing the float32 `exp(x)` into `o` (x a variable name)."""
    cx.imports.add("from nanofn._bitcast import float32_from_bits as _f32bits")
    cx.imports.add("from nanofn._bitcast import fma as _fma")
    lo, hi = (cx.c(v) for v in _EXP_CLAMP)
    poly = cx.c(_EXP_TAYLOR[-1])
    for c in _EXP_TAYLOR[-2::-1]:  # Horner's steps as fused multiply-adds
        poly = f"_fma({poly}, {o}_r, {cx.c(c)})"
    two_to = "_f32bits(np.int32(({} + 127) << 23))"
    return [f"{o}_x = {hi} if {x} > {hi} else ({lo} if {x} < {lo} else {x})",
            f"{o}_n = np.floor({o}_x * {cx.c(1 / np.log(2))} + {cx.c(0.5)})",
            f"{o}_n = {cx.c(0)} if {o}_n != {o}_n else {o}_n",  # NaN: any n (result NaN)
            f"{o}_r = ({o}_x - {o}_n * {cx.c(_LN2_HI)}) - {o}_n * {cx.c(_LN2_LO)}",
            f"{o}_i = np.int32({o}_n)",
            f"{o}_h = np.int32({o}_i >> 1)",
            f"{o} = {poly} * {two_to.format(f'{o}_h')} * {two_to.format(f'({o}_i - {o}_h)')}"]


def _exp(o, a, p, cx):
    if cx.out_dtype != "float32":
        return _ufunc("np.exp")(o, a, p, cx)
    return _exp32(o, a[0], cx)


def _logistic(o, a, p, cx):
    x, one = a[0], cx.c(1)
    if cx.out_dtype == "float32":
        e = [f"{o}_a = -abs({x})"] + _exp32(f"{o}_e", f"{o}_a", cx)
    else:
        e = [f"{o}_e = {cx.t}(np.exp(-abs({x})))"]
    return e + [  # exp(-|x|) never overflows
        f"{o} = {cx.t}({one} / ({one} + {o}_e)) if {x} >= {cx.c(0)} "
        f"else {cx.t}({o}_e / ({one} + {o}_e))"]


def _gelu_parts(o, x, cx):
    """Lines computing `{o}_c` (x clipped to +-10) and `{o}_t`, the tanh of GELU's tanh
    approximation at it: the formulas of nanofn/ops/_nn.py's `gelu` kernels, in the
    output dtype (float32 with the vectorising tanh)."""
    from nanofn.ops import _nn
    c, u, clip = f"{o}_c", f"{o}_u", cx.c(_nn._GELU_CLIP)
    return ([f"{c} = {clip} if {x} > {clip} else {x}",  # NaN stays NaN
             f"{c} = -{clip} if {c} < -{clip} else {c}",
             (f"{u} = {cx.t}({cx.c(_nn._SQRT_2_OVER_PI)} * ({c} + "
              f"{cx.c(_nn._GELU_CUBIC)} * ({c} * {c} * {c})))")]
            + _tanh(f"{o}_t", [u], {}, cx))


def _gelu(o, a, p, cx):
    x, half, one = a[0], cx.c(0.5), cx.c(1)
    return _gelu_parts(o, x, cx) + [f"{o} = {cx.t}({x} * ({half} * ({one} + {o}_t)))"]


def _gelu_grad(o, a, p, cx):  # gelu_grad(x, g) = g * gelu'(x)
    from nanofn.ops import _nn
    (x, g), half, one, c, t = a, cx.c(0.5), cx.c(1), f"{o}_c", f"{o}_t"
    slope = (f"({cx.c(_nn._SQRT_2_OVER_PI)} * ({one} + "
             f"{cx.c(3.0 * _nn._GELU_CUBIC)} * ({c} * {c})))")
    return _gelu_parts(o, x, cx) + [
        f"{o}_d = {cx.t}({half} * (({one} - {t}) * ({one} + {t})) * {slope})",
        f"{o} = {cx.t}({g} * ({half} * ({one} + {t}) + {x} * {o}_d))"]


def _sign(o, a, p, cx):
    x = a[0]
    return [f"{o} = {cx.t}({cx.c(1)} if {x} > {cx.c(0)} else "
            f"({cx.c(-1)} if {x} < {cx.c(0)} else {x}))"]  # keeps +-0 and nan


def _maximum(o, a, p, cx):  # nan wins, as in np.maximum
    x, y = a
    return [f"{o} = {x} if ({x} >= {y} or {x} != {x}) else {y}"]


def _minimum(o, a, p, cx):
    x, y = a
    return [f"{o} = {x} if ({x} <= {y} or {x} != {x}) else {y}"]


def _integer_pow(o, a, p, cx):
    x, y = a[0], p["y"]
    if y == 0:
        return [f"{o} = {cx.c(1)}"]
    if y == 1:
        return [f"{o} = {x}"]
    if y == 2:
        return [f"{o} = {cx.t}({x} * {x})"]
    return [f"{o} = {cx.t}({x} ** {cx.c(float(y))})"]


def _convert(o, a, p, cx):
    if cx.out_dtype == "bool":
        return [f"{o} = {a[0]} != {cx.ci(0)}"]  # nan converts to True, as in numpy
    if np.dtype(cx.in_dtype).kind == "f" and np.dtype(cx.out_dtype).kind in "iu":
        # as XLA (and `_base.saturating_cast`): toward zero, clamped to the range, NaN -> 0
        info, v = np.iinfo(cx.out_dtype), a[0]
        high, low = cx._const(float(info.max), "float64"), cx._const(float(info.min), "float64")
        return [f"{o} = {cx.t}(0) if {v} != {v} else ({cx.t}({info.max}) if "
                f"np.float64({v}) >= {high} else ({cx.t}({info.min}) if np.float64({v}) <= "
                f"{low} else {cx.t}({v})))"]
    return [f"{o} = {cx.t}({a[0]})"]


_CHEAP_OPS = {
    "neg": lambda o, a, p, cx: [f"{o} = {cx.t}(-{a[0]})"],
    "abs": lambda o, a, p, cx: [f"{o} = {cx.t}(abs({a[0]}))"],
    "sign": _sign,
    "floor": _ufunc("np.floor"),
    "ceil": _ufunc("np.ceil"),
    "sqrt": _ufunc("np.sqrt"),
    "rsqrt": lambda o, a, p, cx: [f"{o} = {cx.t}({cx.c(1)} / np.sqrt({a[0]}))"],
    "integer_pow": _integer_pow,
    "add": _binary("+"),
    "sub": _binary("-"),
    "mul": _binary("*"),
    "div": _binary("/"),
    "max": _maximum,
    "min": _minimum,
    "eq": _compare("=="),
    "ne": _compare("!="),
    "lt": _compare("<"),
    "le": _compare("<="),
    "gt": _compare(">"),
    "ge": _compare(">="),
    "select_n": lambda o, a, p, cx: [f"{o} = {a[2]} if {a[0]} else {a[1]}"],
    "convert_element_type": _convert,
    "is_finite": lambda o, a, p, cx: [f"{o} = np.isfinite({a[0]})"],
    "not": lambda o, a, p, cx: [f"{o} = not {a[0]}"],
    "and": _compare("&"),
    "or": _compare("|"),
    "xor": _compare("^"),
    "stop_gradient": lambda o, a, p, cx: [f"{o} = {a[0]}"],
    "broadcast_in_dim": lambda o, a, p, cx: [f"{o} = {a[0]}"],  # of a scalar only
    # a window of the last axis (`_window_slice`): its operand is a window input, read
    # at the window's offset, so in the loop the slice is the value itself
    "slice": lambda o, a, p, cx: [f"{o} = {a[0]}"],
}

_TRANSCENDENTAL_OPS = {
    "exp": _exp,
    "exp2": _ufunc("np.exp2"),
    "log": _ufunc("np.log"),
    "log1p": _ufunc("np.log1p"),
    "expm1": _ufunc("np.expm1"),
    "sin": _ufunc("np.sin"),
    "cos": _ufunc("np.cos"),
    "tan": _ufunc("np.tan"),
    "asin": _ufunc("np.arcsin"),
    "acos": _ufunc("np.arccos"),
    "atan": _ufunc("np.arctan"),
    "sinh": _ufunc("np.sinh"),
    "cosh": _ufunc("np.cosh"),
    "tanh": _tanh,
    "asinh": _ufunc("np.arcsinh"),
    "acosh": _ufunc("np.arccosh"),
    "atanh": _ufunc("np.arctanh"),
    "logistic": _logistic,
    "gelu": _gelu,
    "gelu_grad": _gelu_grad,
    "erf": _ufunc("math.erf"),
    "pow": _binary("**"),
    "atan2": lambda o, a, p, cx: [f"{o} = {cx.t}(np.arctan2({a[0]}, {a[1]}))"],
}

_OPS = {**_CHEAP_OPS, **_TRANSCENDENTAL_OPS}

# operand dtypes each primitive may have inside a kernel (others are left to numpy)
_BOOL_ONLY = {"not", "and", "or", "xor"}
_ANY_DTYPE = {"select_n", "convert_element_type", "stop_gradient", "broadcast_in_dim",
              "eq", "ne"}


def _dtypes_ok(eqn) -> bool:
    name = eqn.primitive.name
    ins = [x.aval.dtype.name for x in eqn.invars]
    outs = [v.aval.dtype.name for v in eqn.outvars]
    if any(d not in _FLOATS_AND_BOOL for d in ins + outs):
        return False
    if name == "select_n":
        return len(ins) == 3 and ins[0] == "bool"
    if name in _BOOL_ONLY:
        return all(d == "bool" for d in ins)
    if name in _ANY_DTYPE:
        return True
    return all(d in _FLOATS for d in ins)


def is_transcendental(name: str) -> bool:
    """Whether a primitive calls a scalar C library function inside a kernel (or, for
    float32 `tanh`, `exp` and `logistic`, vectorising arithmetic; see `FUSE_MAX_SIZE`)."""
    return name in _TRANSCENDENTAL_OPS


def _window_slice(eqn) -> bool:
    """Whether `eqn` is a `slice` of the last axis only (unit stride, every other axis
    whole) of a Var: inside a group its operand is read through a window, in place."""
    if eqn.primitive.name != "slice" or type(eqn.invars[0]) is not Var:
        return False
    x, p = eqn.invars[0].aval, eqn.params
    start, limit, strides = p["start_indices"], p["limit_indices"], p["strides"]
    return (x.ndim >= 1 and x.dtype.name in _FLOATS_AND_BOOL
            and all(st == 1 for st in strides or ())
            and all(s == 0 and lim == d for s, lim, d in zip(start[:-1], limit[:-1], x.shape))
            and 0 < limit[-1] - start[-1] < x.shape[-1])


def _joined_rows(eqn) -> bool:
    """Whether `eqn` is a `concatenate` along the last axis of operands of one shape and
    dtype: a group whose values they are writes each into its columns of the result."""
    if eqn.primitive.name != "concatenate" or len(eqn.invars) < 2:
        return False
    x = eqn.invars[0].aval
    return (x.ndim >= 1 and eqn.params["dimension"] == x.ndim - 1 and x.shape[-1] > 0
            and x.dtype.name in _FLOATS_AND_BOOL
            and all(type(v) is Var and v.aval.shape == x.shape and v.aval.dtype == x.dtype
                    for v in eqn.invars))


def _fusible_shape(eqn):
    """The shape of the group `eqn` could join, or None if it cannot be fused."""
    prim = eqn.primitive
    if prim.name == "slice":
        return eqn.outvars[0].aval.shape if _window_slice(eqn) else None
    if prim.name == "concatenate":  # joins the group of its operands' shape
        return eqn.invars[0].aval.shape if _joined_rows(eqn) else None
    if prim.name not in _OPS or prim.multiple_results or core.has_effects(eqn):
        return None
    if len(eqn.outvars) != 1 or not _dtypes_ok(eqn):
        return None
    shape = eqn.outvars[0].aval.shape
    for x in eqn.invars:
        s = x.aval.shape
        if s != shape and not (x.aval.size == 1 and len(s) <= len(shape)) and not (
                prim.name in _ROW_OPS and _row_size(s, shape)):
            return None
    if prim.name == "broadcast_in_dim" and eqn.invars[0].aval.size != 1:
        return None
    if is_transcendental(prim.name):
        limit = FUSE_MAX_SIZE.get(prim.name, _DEFAULT_FUSE_MAX_SIZE)
        if prim.name in VECTORISED_FLOAT32 and eqn.outvars[0].aval.dtype == np.float32:
            limit = None
        if EXACT or (limit is not None and _size(shape) > limit):
            return None
    return shape


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


# Binary operations whose impl broadcasts as numpy does: an operand may be a row (a bias)
_ROW_OPS = {"add", "sub", "mul", "div", "max", "min", "pow", "atan2", "rem", "nextafter",
            "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "xor"}


def _row_size(s, shape) -> int:
    """The element count of an operand of shape `s` that broadcasts against `shape` by
    repeating along leading axes only (a bias row: `s`, without leading 1s, is the last
    axes of `shape`, fewer than all of them), if more than 1; else 0."""
    s = tuple(s)
    while s and s[0] == 1:
        s = s[1:]
    if not s or len(s) >= len(shape) or tuple(shape[len(shape) - len(s):]) != s:
        return 0
    n = _size(s)
    return n if n > 1 else 0


# ------------------------------------------------------------------------ programs

_PENDING = object()  # a program's parallel kernel: asked for, not compiled yet


class FusedProgram:
    """What one fused equation computes: a hashable description of a small elementwise
    program over arrays of one `shape`.

    * `inputs`: one `(kind, dtype name)` per argument; kind "a" is an array of `shape`,
      "s" a scalar (any array of one element), broadcast over the loop; "r" a row (a bias:
      an array whose shape, without leading 1s, is the last axes of `shape`) of `cols`
      elements, repeated along the leading axes; "q" a shorter row (fewer last axes);
      "w" a window: an array whose last axis is longer than `shape`'s, read at an offset
      (a `slice` in `ops` takes it), and "p" a longer row (more last axes than the rows of
      a program with windows), read at the flat index modulo its size.
    * `ops`: one `(primitive name, argument value numbers, params, dtype name)` per step.
      Values are numbered inputs first, then one per step.
    * `outputs`: the values returned: a value number, an array of `shape`; or a tuple of
      value numbers, their concatenation along the last axis (a `concatenate` the group
      took in: each value is written into its columns of the result).
    * `cols`: with rows, the loop runs over `size // cols` rows of `cols` elements (0: no
      rows, one flat loop). A program with windows has rows of its last axis.
    * `windows`: `(input number, width, offset)` per window input: its last axis has
      `width` elements, and the window starts at `offset`. The kernel takes both as
      arguments, so its source does not depend on them.
    """

    __slots__ = ("inputs", "ops", "outputs", "shape", "cols", "windows", "_hash", "_source",
                 "_key", "_runner", "_into", "_parallel", "_serial")

    def __init__(self, inputs, ops, outputs, shape, cols=0, windows=()):
        self.inputs = tuple(inputs)
        self.ops = tuple(ops)
        self.outputs = tuple(outputs)
        self.shape = tuple(shape)
        self.cols = int(cols)
        self.windows = tuple(windows)
        self._hash = hash(self._identity())
        self._source = self._key = self._runner = self._parallel = self._serial = None
        self._into: dict = {}

    def _identity(self):
        return self.inputs, self.ops, self.outputs, self.shape, self.cols, self.windows

    def __eq__(self, other):
        return (type(other) is FusedProgram and self._hash == other._hash
                and self._identity() == other._identity())

    def __hash__(self):
        return self._hash

    def __str__(self):
        names = [op[0] for op in self.ops]
        shown = " ".join(names[:6]) + (f" ... ({len(names)} ops)" if len(names) > 6 else "")
        return "{" + shown + "}"

    __repr__ = __str__

    def dtype_of(self, value) -> str:
        """The dtype name of a value (or of an output: a value or a tuple of them)."""
        if type(value) is tuple:
            value = value[0]
        n = len(self.inputs)
        return self.inputs[value][1] if value < n else self.ops[value - n][3]

    def shape_of(self, output) -> tuple:
        """The shape of an output: `shape`, or a concatenation's along the last axis."""
        if type(output) is tuple:
            return self.shape[:-1] + (len(output) * self.shape[-1],)
        return self.shape

    @property
    def out_avals(self):
        return [ShapedArray(self.shape_of(v), self.dtype_of(v)) for v in self.outputs]

    @property
    def source(self) -> str:
        """The kernel's Python source (independent of `shape`)."""
        if self._source is None:
            self._source = kernel_source(self)
        return self._source

    @property
    def kernel_key(self) -> str:
        if self._key is None:
            self._key = _kernels.source_key(self.source)
        return self._key

    def arg_types(self):
        sizes = (("int64", "scalar"),) * (2 if self.cols else 1)
        ins = []
        for kind, d in self.inputs:
            ins.append((d, "in"))
            if kind == "w":  # its width and offset
                ins += [("int64", "scalar")] * 2
        return sizes + tuple(ins) + tuple((self.dtype_of(v), "out") for v in self.outputs)

    def kernel(self, parallel=False):
        """The compiled numba kernel, or with `parallel` its variant whose loop numba
        splits over its threads (raises `_kernels.KernelError` if it cannot be built)."""
        source = kernel_source(self, parallel=True) if parallel else self.source
        return _kernels.get_kernel(source, "kernel", self.arg_types(),
                                   options=dict(error_model="numpy", parallel=parallel))

    def _kernels(self):
        """(serial kernel, parallel kernel or None): a parallel slot only for loops of
        `_kernels.PARALLEL_MIN` elements or more. Until the parallel kernel is compiled
        the slot holds `_first_parallel_call`, which asks for it once, when a call finds
        parallel kernels on (so turning them on later works too), and runs the serial
        kernel: building a plan or calling it never waits for the parallel build."""
        serial = self._serial = self.kernel()
        if _size(self.shape) < _kernels.PARALLEL_MIN:
            return serial, None
        state = self._parallel
        return serial, (self._first_parallel_call if state is None or state is _PENDING
                        else state)

    def _first_parallel_call(self, *args):
        """Stands in for the parallel kernel (see `_kernels`)."""
        with _kernels.lock():
            state = self._parallel
            if state is None:
                self._parallel = _PENDING
        if state is None:  # the first call with parallel kernels on: ask, once
            if _kernels.parallel_threads() > 1:
                _kernels.later(self._build_parallel)
            else:  # no threads for them in this process: the serial kernel for good
                self._parallel = self._serial
                self._use_parallel(self._serial)
        elif state is not _PENDING:  # built meanwhile, after this runner was patched
            self._use_parallel(state)
            return state(*args)
        return self._serial(*args)

    def _build_parallel(self):
        """Compile the parallel kernel and switch this program's runners to it."""
        try:
            kp = self.kernel(parallel=True)
        except Exception:  # noqa: BLE001 - numba could not parallelise it: stays serial
            kp = self._serial
        self._parallel = kp
        self._use_parallel(kp)

    def _use_parallel(self, kp):
        for run in [self._runner, *self._into.values()]:
            ns = getattr(run, "__globals__", None)
            if ns is not None and ns.get("_kp") is not None:
                ns["_kp"] = kp

    def runner(self):
        """A Python function of the inputs (numpy values) returning the list of outputs."""
        if self._runner is None:
            self._runner = _make_runner(self, *self._kernels())
        return self._runner

    def runner_into(self, given):
        """Like `runner`, but the outputs flagged in `given` (one bool per output) are
        written into buffers the caller passes after the inputs: for each, its flat buffer
        and its C-ordered view of `shape` (see `_make_runner`). Raises
        `_kernels.KernelError` if the kernel cannot be built."""
        given = tuple(bool(g) for g in given)
        run = self._into.get(given)
        if run is None:
            run = self._into[given] = _make_runner(self, *self._kernels(), given)
        return run

    def eval_numpy(self, *args):
        """Run the program one primitive `impl` at a time (the unfused reference)."""
        env = list(args)
        for name, argnums, params, _ in self.ops:
            env.append(core.registry[name].impl(*[env[i] for i in argnums], **dict(params)))

        def whole(v):
            return np.broadcast_to(env[v], self.shape) if np.shape(env[v]) != self.shape \
                else np.asarray(env[v])
        return [np.concatenate([whole(u) for u in v], axis=-1) if type(v) is tuple
                else whole(v) for v in self.outputs]

    def eval_bind(self, *args):
        """Replay the program by binding its primitives (so transformations can trace it)."""
        from nanofn.ops import _base
        env = list(args)
        for name, argnums, params, _ in self.ops:
            env.append(core.registry[name].bind(*[env[i] for i in argnums], **dict(params)))

        def whole(v):
            return _base.broadcast_to(env[v], self.shape)
        return [core.registry["concatenate"].bind(*[whole(u) for u in v],
                                                  dimension=len(self.shape) - 1)
                if type(v) is tuple else whole(v) for v in self.outputs]


class _Context:
    """Typed constants for the emitters; they become module globals of the kernel source."""

    def __init__(self):
        self.consts: dict = {}
        self.imports: set = set()  # lines the kernel's module needs besides math and numpy
        self.t = self.out_dtype = self.in_dtype = None

    def _const(self, value, dtype):
        key = (dtype, float(value).hex() if dtype != "bool" else bool(value))
        if key not in self.consts:
            self.consts[key] = f"_k{len(self.consts)}"
        return self.consts[key]

    def c(self, value):
        return self._const(value, self.out_dtype)

    def ci(self, value):
        return self._const(value, self.in_dtype)

    def lines(self):
        out = []
        for (dtype, v), name in self.consts.items():
            if dtype == "bool":
                out.append(f"{name} = np.bool_({v})")
            else:
                out.append(f"{name} = np.{dtype}(float.fromhex({v!r}))")
        return out


def kernel_source(program: FusedProgram, parallel=False) -> str:
    """The Python source of a program's loop, compiled by numba (shape-independent);
    with `parallel`, the loop is a `prange` (each element is computed on its own, so
    the results do not depend on how the loop is split)."""
    n_in = len(program.inputs)
    cx = _Context()
    xs = [f"x{i}, w{i}, o{i}" if kind == "w" else f"x{i}"
          for i, (kind, _) in enumerate(program.inputs)]
    ys = [f"y{k}" for k in range(len(program.outputs))]
    pre, outer, body = [], [], []  # before the loop, per row, per element
    for i, (kind, _) in enumerate(program.inputs):
        if kind == "s":
            pre.append(f"v{i} = x{i}[0]")
        elif kind in "qp":
            pre.append(f"m{i} = x{i}.size")
            body.append(f"v{i} = x{i}[{'c' if kind == 'q' else 'i'} % m{i}]")
        elif kind == "w":  # the row's window as a view: indexed by `c`, which LLVM knows
            outer.append(f"x{i}r = x{i}[r * w{i} + o{i}:]")  # is >= 0, the loop vectorises
            body.append(f"v{i} = x{i}r[c]")
        else:
            body.append(f"v{i} = x{i}[{'c' if kind == 'r' else 'i'}]")
    for j, (name, argnums, params, dtype) in enumerate(program.ops):
        out = f"v{n_in + j}"
        first = program.dtype_of(argnums[-1] if name == "select_n" else argnums[0])
        cx.out_dtype, cx.in_dtype = dtype, first
        cx.t = f"np.{dtype}" if dtype != "bool" else "np.bool_"
        body.extend(_OPS[name](out, [f"v{a}" for a in argnums], dict(params), cx))
    for y, v in zip(ys, program.outputs):
        if type(v) is tuple:  # a concatenation: each value into its columns of the row
            outer.append(f"{y}r = {y}[r * {len(v)} * cols:]")
            body += [f"{y}r[{j} * cols + c] = v{u}" for j, u in enumerate(v)]
        else:
            body.append(f"{y}[i] = v{v}")
    import nanofn
    lines = [f"# A fused elementwise kernel generated by nanofn {nanofn.__version__} "
             "(nanofn/_fusion.py).",
             "# The file is named by the hash of its text: do not edit it.",
             # part of the text, so that a new limit compiles the kernels again
             f"# LLVM overlap checks allowed: {_numba_setup.MEMORY_CHECK_THRESHOLD}",
             "import math", "", "import numpy as np", ""]
    imports = sorted(cx.imports | ({"from numba import prange"} if parallel else set()))
    lines += imports + ([""] if imports else [])
    lines += cx.lines()
    loop = "prange" if parallel else "range"
    if program.cols:  # rows of `cols` elements; the inner loop vectorises
        lines += ["", "", f"def kernel(n, cols, {', '.join(xs + ys)}):"]
        lines += ["    " + s for s in pre]
        lines += [f"    for r in {loop}(n // cols):"] + ["        " + s for s in outer]
        lines += ["        for c in range(cols):",
                  "            i = r * cols + c"] + ["            " + s for s in body]
    else:
        lines += ["", "", f"def kernel(n, {', '.join(xs + ys)}):"]
        lines += ["    " + s for s in pre]
        lines += [f"    for i in {loop}(n):"] + ["        " + s for s in body]
    return "\n".join(lines) + "\n"


def _make_runner(program: FusedProgram, kernel, parallel_kernel=None, given=None):
    """A Python function that allocates the outputs and calls the kernel. Written as source
    for this shape, so a call costs one numba dispatch and a few numpy allocations.

    The kernel sees flat arrays. For arrays of two or more dimensions the runner picks the
    memory order most array inputs have (as numpy's ufuncs do with order "K"): a chain over
    transposed (Fortran-ordered) arrays then runs without copying and gives
    Fortran-ordered results; inputs in the other order are copied. A program with rows
    (biases) runs in C order, the order in which a row repeats.

    `given` (one bool per output, default all False) says which outputs the caller
    provides instead: for each, after the inputs, the runner takes the output's flat
    buffer (a contiguous 1-d array of the output's dtype and size) and its C-ordered view
    of the program's shape. That is how `jit`'s plan makes a kernel write into a reused
    buffer; the result returned is a view of the buffer (in the order the runner chose).

    With a `parallel_kernel` (the same loop as a `prange`), the runner calls it while
    `_kernels.parallel.ok`, else `kernel`."""
    shape, n = program.shape, _size(program.shape)
    n_out = len(program.outputs)
    given = tuple(given) if given is not None else (False,) * n_out
    xs = [f"x{i}" for i in range(len(program.inputs))]
    arrays = [x for x, (kind, _) in zip(xs, program.inputs) if kind == "a"]
    params = xs + [a for k in range(n_out) if given[k] for a in (f"f{k}", f"s{k}")]
    widest = max((np.dtype(program.dtype_of(v)).itemsize * _size(program.shape_of(v))
                  for v in program.outputs), default=0)
    ns = {"_k": kernel, "_kp": parallel_kernel, "_P": _kernels.parallel,
          "_empty": _malloc.allocator(widest),
          "_contig": np.ascontiguousarray, "_fcontig": np.asfortranarray, "_shape": shape,
          "_rshape": shape[::-1], "_order": _memory_order, "_F": "F",
          **{f"_d{i}": np.dtype(d) for i, (_, d) in enumerate(program.inputs)},
          **{f"_o{k}": np.dtype(program.dtype_of(v)) for k, v in enumerate(program.outputs)},
          **{f"_s{k}": program.shape_of(v) for k, v in enumerate(program.outputs)}}
    ret = f"    return [{', '.join(f'y{k}' for k in range(n_out))}]"

    def call(order):
        """Lines that allocate (or take) the outputs in `order` and run the kernel."""
        t = ".T" if order == "F" else ""
        order_arg = ", order=_F" if t else ""
        lines, ys = [], []
        for k in range(n_out):
            if given[k]:
                lines.append(f"    y{k} = f{k}.reshape(_rshape).T" if t else f"    y{k} = s{k}")
                ys.append(f"f{k}")
            else:
                lines.append(f"    y{k} = _empty(_s{k}, _o{k}{order_arg})")
                ys.append(f"y{k}" if len(shape) == 1 else f"y{k}{t}.reshape(-1)")
        fast = [x if kind == "a" and len(shape) == 1 else
                f"{x}{t if kind == 'a' else ''}.reshape(-1)"
                for x, (kind, _) in zip(xs, program.inputs)]
        slow = [f"_fcontig({x}, _d{i}).T.reshape(-1)" if kind == "a" and t else
                f"_contig({x}, _d{i}).reshape(-1)"
                for i, (x, (kind, _)) in enumerate(zip(xs, program.inputs))]
        for i, width, offset in program.windows:  # a window's parent, flat in C order
            fast[i] += f", {width}, {offset}"
            slow[i] += f", {width}, {offset}"
        k = "_k" if parallel_kernel is None else "(_kp if _P.ok else _k)"
        sizes = f"{n}, {program.cols}" if program.cols else f"{n}"
        return lines + [
            "    try:",
            f"        {k}({sizes}, {', '.join(fast + ys)})",
            "    except (TypeError, AttributeError):  # strided, another dtype, a Python scalar",
            f"        {k}({sizes}, {', '.join(slow + ys)})",
            ret]

    head = [f"def run({', '.join(params)}):"]
    if len(shape) >= 2 and arrays and not program.cols:  # rows repeat along C order only
        body = ([f"    if _order({', '.join(arrays)}) == 'F':"]
                + ["    " + line for line in call("F")] + call("C"))
    else:
        body = call("C")
    src = "\n".join(head + body)
    exec(compile(src, f"<nanofn fused runner {program.kernel_key}>", "exec"), ns)  # noqa: S102
    return ns["run"]


def _memory_order(*arrays) -> str:
    """"F" if more of `arrays` are Fortran-contiguous than C-contiguous, else "C"."""
    c = f = 0
    for x in arrays:
        flags = getattr(x, "flags", None)
        if flags is None or flags.c_contiguous:
            c += 1
        elif flags.f_contiguous:
            f += 1
    return "F" if f > c else "C"


# ------------------------------------------------------------------------ the primitive

fused_elementwise_p = Primitive("fused_elementwise", multiple_results=True)
_failed_keys: set = set()  # kernels that failed to compile in this process (warned once)


def _fused_impl(*args, program, kernel_key):
    del kernel_key  # unused: the program knows its kernel
    return (program._runner or _first_runner(program))(*args)


def _first_runner(program):
    """Build a program's runner; if its kernel cannot be compiled, warn once and run the
    original primitives with numpy from then on."""
    try:
        return program.runner()
    except _kernels.KernelError as err:
        _warn_failed(program, err)
        program._runner = program.eval_numpy
        return program._runner


def _fused_abstract_eval(*avals, program, kernel_key):
    del kernel_key  # unused
    if len(avals) != len(program.inputs):
        raise TypeError(f"fused_elementwise takes {len(program.inputs)} operands, got "
                        f"{len(avals)}")
    for i, (aval, (kind, dtype)) in enumerate(zip(avals, program.inputs)):
        width = {j: w for j, w, _ in program.windows}.get(i)
        ok_shape = (aval.shape == program.shape if kind == "a" else aval.size == 1
                    if kind == "s" else aval.shape == program.shape[:-1] + (width,)
                    if kind == "w" else _row_size(aval.shape, program.shape) > 1)
        if not ok_shape or aval.dtype.name != dtype:
            want = (f"{dtype}{list(program.shape)}" if kind == "a" else
                    f"a one-element {dtype}" if kind == "s" else
                    f"{dtype}{list(program.shape[:-1] + (width,))}" if kind == "w" else
                    f"a {dtype} row of the last axes of {list(program.shape)}")
            raise TypeError(f"fused_elementwise: operand {i} is {aval.str_short()}, expected "
                            f"{want}")
    return program.out_avals


def _fused_jvp(primals, tangents, *, program, kernel_key):
    from nanofn import _ad
    return _ad.jvp_flat(program.eval_bind, list(primals), list(tangents))


def _fused_vjp(cts, primals, outs, needs, *, program, kernel_key):
    from nanofn import _ad
    _, pullback, _ = _ad.vjp_flat(lambda *xs: (program.eval_bind(*xs), None), list(primals))
    return [g if need else None for g, need in zip(pullback(list(cts)), needs)]


def _fused_batch(vals, dims, *, program, kernel_key):
    from nanofn import _batching
    size = _batching.axis_size_of(vals, dims)
    return _batching.batch_flat(program.eval_bind, list(vals), list(dims), size)


fused_elementwise_p.impl = _fused_impl
fused_elementwise_p.abstract_eval = _fused_abstract_eval
fused_elementwise_p.jvp = _fused_jvp
fused_elementwise_p.vjp_joint = _fused_vjp
fused_elementwise_p.batch = _fused_batch


def _warn_failed(program, err):
    """Warn once per kernel that a fused equation met outside `fuse` cannot be compiled."""
    key = program.kernel_key
    if key not in _failed_keys:
        _failed_keys.add(key)
        warnings.warn(f"nanofn: a fused elementwise kernel ({len(program.ops)} operations) "
                      "could not be compiled, so those operations run unfused with numpy "
                      f"(correct, but slower). Cause: {err}", RuntimeWarning, stacklevel=3)


# ------------------------------------------------------------------------ grouping


class _Group:
    __slots__ = ("members", "mask", "shape", "ext", "ext_anc", "windows")

    def __init__(self, shape):
        self.members: list[int] = []  # equation indices
        self.mask = 0  # bit i set: equation i is a member
        self.shape = shape
        self.ext: dict[int, None] = {}  # ids of Vars members read that no member produces
        self.ext_anc = 0  # union of the ancestor masks of those Vars
        self.windows: set[int] = set()  # ids of the Vars members read through windows


class _Grouper:
    """Forms the groups of one jaxpr (see step 1 of the module docstring)."""

    def __init__(self, jaxpr: Jaxpr):
        self.eqns = jaxpr.eqns
        self.producer: dict[int, int] = {}  # Var id -> index of the equation that makes it
        self.anc: dict[int, int] = {}  # Var id -> mask of the equations it depends on
        self.owner: list[_Group | None] = [None] * len(self.eqns)

    def _outside_and_dependent(self, vid, mask) -> bool:
        """Var `vid` comes from outside the group `mask` but depends on the group."""
        p = self.producer.get(vid)
        return p is not None and not mask >> p & 1 and self.anc[vid] & mask != 0

    def _acyclic(self, mask, groups, new_ids, new_windows=()) -> bool:
        """Whether the group made of `groups` plus the new equation (all in `mask`) reads
        nothing that depends on itself through an equation outside it, and reads through a
        window nothing it makes (a window's array is the kernel's input: a concatenation
        the group writes cannot be sliced back inside it)."""
        for g in groups:
            if g.ext_anc & mask:  # rare: some Var g reads depends on another merged group
                if any(self._outside_and_dependent(v, mask) for v in g.ext):
                    return False
        for vid in [*new_windows, *(v for g in groups for v in g.windows)]:
            p = self.producer.get(vid)
            if p is not None and mask >> p & 1:
                return False
        return not any(self._outside_and_dependent(v, mask) for v in new_ids)

    def run(self) -> list[_Group]:
        groups: list[_Group] = []
        open_groups: set[int] = set()  # ids of groups that may still grow
        for i, eqn in enumerate(self.eqns):
            in_ids = [id(x) for x in eqn.invars if type(x) is Var]
            mask = 1 << i
            for vid in in_ids:
                mask |= self.anc.get(vid, 0)
            for v in eqn.outvars:
                self.producer[id(v)] = i
                self.anc[id(v)] = mask
            if core.has_effects(eqn):
                open_groups.clear()  # no group spans an equation with side effects
                continue
            shape = _fusible_shape(eqn)
            if shape is None:
                continue
            cands: list[_Group] = []
            for vid in in_ids:
                p = self.producer.get(vid)
                g = self.owner[p] if p is not None else None
                if (g is not None and id(g) in open_groups and g.shape == shape
                        and all(g is not c for c in cands)):
                    cands.append(g)
            cands.sort(key=lambda g: -len(g.members))
            chosen: list[_Group] = []
            bit = 1 << i
            windows = [id(eqn.invars[0])] if eqn.primitive.name == "slice" else []
            if cands and 1 + sum(len(g.members) for g in cands) <= MAX_GROUP_SIZE and \
                    self._acyclic(bit | _or(g.mask for g in cands), cands, in_ids, windows):
                chosen = cands
            else:  # as many of them as can merge, largest first
                mask, size = bit, 1
                for g in cands:
                    if size + len(g.members) <= MAX_GROUP_SIZE and \
                            self._acyclic(mask | g.mask, chosen + [g], in_ids, windows):
                        chosen.append(g)
                        mask |= g.mask
                        size += len(g.members)
            if chosen:
                target = chosen[0]
                for g in chosen[1:]:
                    self._absorb(target, g)
                    open_groups.discard(id(g))
            else:
                target = _Group(shape)
                groups.append(target)
                open_groups.add(id(target))
            target.members.append(i)
            target.mask |= bit
            target.windows.update(windows)
            self.owner[i] = target
            self._update_ext(target, in_ids, merged=len(chosen) > 1)
        live = {id(g) for g in self.owner if g is not None}
        return [g for g in groups if id(g) in live]

    def _absorb(self, target: _Group, g: _Group):
        for j in g.members:
            self.owner[j] = target
        target.members.extend(g.members)
        target.mask |= g.mask
        target.ext.update(g.ext)
        target.windows.update(g.windows)

    def _update_ext(self, g: _Group, new_ids, merged: bool):
        def inside(vid):
            p = self.producer.get(vid)
            return p is not None and g.mask >> p & 1

        if merged:  # Vars one merged group read from another are internal now
            g.ext = {v: None for v in g.ext if not inside(v)}
            g.ext_anc = _or(self.anc.get(v, 0) for v in g.ext)
        for vid in new_ids:
            if vid not in g.ext and not inside(vid):
                g.ext[vid] = None
                g.ext_anc |= self.anc.get(vid, 0)


def _or(masks) -> int:
    out = 0
    for m in masks:
        out |= m
    return out


def _uniform_value(c):
    """The single value of a constant array whose elements are all the same bits, or None."""
    c = core.to_numpy(c)
    if not isinstance(c, np.ndarray) or c.size <= 1:
        return None
    if all(s == 0 for s in c.strides):  # a broadcast view of one element
        return np.asarray(c.flat[0])
    if c.size > 1 << 16 or c.dtype.kind not in "fb":
        return None
    bits = c.reshape(-1).view(np.uint8 if c.dtype.itemsize == 1 else f"u{c.dtype.itemsize}")
    return np.asarray(c.flat[0]) if (bits == bits[0]).all() else None


def _fused_eqn(g: _Group, eqns, used_outside: set, uniform: dict) -> Eqn:
    """The `fused_elementwise` equation that computes group `g`."""
    shape = g.shape
    value_of: dict = {}  # Var id or literal key -> value number
    inputs, invars, ops, outvars, outputs = [], [], [], [], []

    rows: dict = {}  # input number -> row size, for inputs of kind "r"

    def arg(x):
        """The value number of operand `x`, made an input of the program if it is new."""
        if type(x) is Var and id(x) in value_of:
            return value_of[id(x)]
        if type(x) is Var and id(x) in uniform:  # a constant of equal elements: a scalar
            x = Literal(uniform[id(x)])
        if type(x) is Literal:
            val = np.asarray(x.val)
            key = ("lit", val.dtype.name, val.tobytes())
            if key in value_of:
                return value_of[key]
            kind = "s"
        else:
            key, kind = id(x), "a" if x.aval.shape == shape else "s"
            if kind == "s" and x.aval.size != 1:
                kind = "r"
                rows[len(inputs)] = _row_size(x.aval.shape, shape)
        value_of[key] = len(inputs)
        inputs.append((kind, x.aval.dtype.name))
        invars.append(x)
        return value_of[key]

    windows = []  # (input number, width, offset) per window input

    def window(eqn):
        """The input number of the window a last-axis `slice` member reads (one input per
        operand and offset)."""
        x, offset = eqn.invars[0], eqn.params["start_indices"][-1]
        key = ("window", id(x), offset)
        if key not in value_of:
            value_of[key] = len(inputs)
            windows.append((len(inputs), x.aval.shape[-1], offset))
            inputs.append(("w", x.aval.dtype.name))
            invars.append(x)
        return value_of[key]

    def operands(eqn):
        if eqn.primitive.name == "slice":
            return (window(eqn),)
        return tuple(arg(x) for x in eqn.invars)

    members = sorted(g.members)  # the original order is a valid order inside the group
    made_inside = {id(eqns[j].outvars[0]) for j in members}
    for j in members:  # number the inputs first, the steps after them
        if eqns[j].primitive.name == "slice":
            window(eqns[j])
            continue
        for x in eqns[j].invars:
            if not (type(x) is Var and id(x) in made_inside):
                arg(x)
    n_in = len(inputs)
    for j in members:
        eqn = eqns[j]
        out = eqn.outvars[0]
        if eqn.primitive.name == "concatenate":  # no step: its values go to its columns
            if id(out) in used_outside:
                outvars.append(out)
                outputs.append(tuple(arg(x) for x in eqn.invars))
            continue
        ops.append((eqn.primitive.name, operands(eqn), tuple(sorted(eqn.params.items())),
                    out.aval.dtype.name))
        value_of[id(out)] = n_in + len(ops) - 1
        if id(out) in used_outside:
            outvars.append(out)
            outputs.append(n_in + len(ops) - 1)
    if windows or any(type(o) is tuple for o in outputs):
        # rows of the last axis; longer rows are read at the flat index
        cols = shape[-1]
        for i, n in rows.items():
            if n != cols:
                inputs[i] = ("p", inputs[i][1])
    else:
        cols = max(rows.values(), default=0)
        for i, n in rows.items():  # rows shorter than the longest repeat within it
            if n < cols:
                inputs[i] = ("q", inputs[i][1])
    program = FusedProgram(inputs, ops, outputs, shape, cols, windows)
    return Eqn(fused_elementwise_p, invars, dict(program=program, kernel_key=program.kernel_key),
               outvars)


def _toposort(eqns, groups: list[_Group]):
    """Order the graph in which each group is contracted to one node, keeping every
    dependency (and the order of equations with side effects); ties go to the earliest
    original position. Returns `(order, stuck)`: `order` lists groups and the indices of
    equations outside groups; `stuck` lists the groups on a cycle (empty when acyclic)."""
    node_of = [None] * len(eqns)
    nodes: list = []  # (priority: first original position, group or equation index)
    for g in groups:
        for j in g.members:
            node_of[j] = len(nodes)
        nodes.append((min(g.members), g))
    for i in range(len(eqns)):
        if node_of[i] is None:
            node_of[i] = len(nodes)
            nodes.append((i, i))
    producer = {id(v): node_of[i] for i, e in enumerate(eqns) for v in e.outvars}
    succ: list[set[int]] = [set() for _ in nodes]
    for i, e in enumerate(eqns):
        n = node_of[i]
        for x in e.invars:
            d = producer.get(id(x)) if type(x) is Var else None
            if d is not None and d != n:
                succ[d].add(n)
    prev = None
    for i, e in enumerate(eqns):  # equations with side effects stay in order
        if core.has_effects(e):
            if prev is not None and prev != node_of[i]:
                succ[prev].add(node_of[i])
            prev = node_of[i]
    indeg = [0] * len(nodes)
    for s in succ:
        for m in s:
            indeg[m] += 1
    heap = [(nodes[n][0], n) for n in range(len(nodes)) if indeg[n] == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        _, n = heapq.heappop(heap)
        order.append(nodes[n][1])
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                heapq.heappush(heap, (nodes[m][0], m))
    stuck = [nodes[n][1] for n in range(len(nodes))
             if indeg[n] > 0 and isinstance(nodes[n][1], _Group)]
    return order, stuck


def _acyclic_groups(eqns, groups: list[_Group]) -> list[_Group]:
    """Drop groups until contracting each remaining one to a single node leaves the graph
    acyclic. The grouper keeps each group convex, but two groups can still need each other
    through equations outside both (a1 -> x -> b2 and b1 -> y -> a2): then the later of
    them stays unfused."""
    while True:
        _, stuck = _toposort(eqns, groups)
        if not stuck:
            return groups
        drop = max(stuck, key=lambda g: min(g.members))
        groups = [g for g in groups if g is not drop]


def _emit(eqns, groups: list[_Group], fused: dict) -> list[Eqn]:
    """All equations, each fused group replaced by its equation, in dependency order."""
    order, stuck = _toposort(eqns, groups)
    assert not stuck, "groups come from _acyclic_groups"
    return [fused[id(n)] if isinstance(n, _Group) else eqns[n] for n in order]


# ------------------------------------------------------------------------ slices


def _sink_slices(jaxpr: Jaxpr) -> Jaxpr:
    """Move last-axis slices above the elementwise equations they read, where every use
    of such an equation's result is such a slice: `slice(x @ w + b)` becomes
    `slice(x @ w) + slice(b)`. The slices then read the product in place (windows), and
    the arithmetic joins the group that uses the slices, instead of a pass over the
    whole array before them (a GRU's gates: one kernel from the two products, where
    there were two bias adds, six slices copied, and the gates' kernel). The values are
    the same: each element is computed from the same operands by the same operation.

    Only when every slice's result feeds fusible arithmetic, so nothing is moved that
    no kernel will absorb."""
    eqns = list(jaxpr.eqns)
    for _ in range(4):  # a chain of elementwise equations sinks one link per round
        uses: dict[int, list] = {}
        for e in eqns:
            for x in e.invars:
                if type(x) is Var:
                    uses.setdefault(id(x), []).append(e)
        outs = {id(x) for x in jaxpr.outvars if type(x) is Var}
        moved: dict[int, list] = {}  # id(slice eqn) -> equations replacing it
        dead = set()
        for e in eqns:
            if not _sinkable(e, uses, outs):
                continue
            for sl in uses[id(e.outvars[0])]:
                moved[id(sl)] = _sunk(e, sl)
            dead.add(id(e))
        if not moved:
            break
        eqns = [r for e in eqns if id(e) not in dead for r in moved.get(id(e), [e])]
    if eqns == jaxpr.eqns:
        return jaxpr
    return Jaxpr(jaxpr.constvars, jaxpr.invars, eqns, jaxpr.outvars)


def _sinkable(e, uses, outs) -> bool:
    """Whether elementwise `e` may move below the last-axis slices of its result."""
    if _fusible_shape(e) is None or e.primitive.name in ("slice", "broadcast_in_dim",
                                                         "concatenate"):
        return False
    v = e.outvars[0]
    users = uses.get(id(v), [])
    if id(v) in outs or not users or v.aval.ndim == 0:
        return False
    n = v.aval.shape[-1]
    for sl in users:
        if not (_window_slice(sl) and sl.invars[0] is v):
            return False
        if not any(_fusible_shape(u) is not None and u.primitive.name != "slice"
                   for u in uses.get(id(sl.outvars[0]), [])):
            return False
    # each operand: the result's shape, one element, or a row of the last axis
    return all(x.aval.shape == v.aval.shape or x.aval.size == 1
               or _row_size(x.aval.shape, v.aval.shape) == n for x in e.invars)


def _sunk(e, sl) -> list:
    """`e` applied to slices of its operands: the equations computing `sl`'s result."""
    start, limit = sl.params["start_indices"][-1], sl.params["limit_indices"][-1]
    shape = e.outvars[0].aval.shape
    out, args = [], []
    for x in e.invars:
        if x.aval.size == 1 and x.aval.shape != shape:
            args.append(x)
            continue
        xs = x.aval.shape
        y = Var(x.aval.update(shape=xs[:-1] + (limit - start,)))
        params = dict(start_indices=(0,) * (len(xs) - 1) + (start,),
                      limit_indices=xs[:-1] + (limit,), strides=None)
        out.append(Eqn(sl.primitive, [x], params, [y]))
        args.append(y)
    out.append(Eqn(e.primitive, args, e.params, sl.outvars))
    return out


# ------------------------------------------------------------------------ fuse


def fuse(closed: ClosedJaxpr) -> ClosedJaxpr:
    """Replace each maximal group of fusible elementwise equations with one equation of
    `fused_elementwise` (a generated numba kernel). The result computes the same values.

    Returns `closed` itself when fusion is off (`nanofn.config.nanofn_use_kernels`) or
    finds nothing to fuse. A group whose kernel cannot be compiled stays unfused (with one
    warning).

    Args:
        closed: a closed jaxpr, typically after `nanofn._jit.simplify`.

    Returns:
        An equivalent closed jaxpr.

    Example:
        >>> import numpy as np, nanofn, nanofn.numpy as fnp
        >>> from nanofn._fusion import fuse
        >>> closed = nanofn.make_jaxpr(lambda x: fnp.maximum(x * 2.0 - 1.0, 0.0))(np.ones(3))
        >>> with nanofn.config._override("nanofn_use_kernels", True):  # the default
        ...     print([e.primitive.name for e in fuse(closed).eqns])
        ['fused_elementwise']
    """
    if not config.nanofn_use_kernels or core.debug_nans:
        return closed  # with debug_nans/infs on, each primitive is checked: keep them apart
    jaxpr = _sink_slices(closed.jaxpr)
    groups = [g for g in _Grouper(jaxpr).run() if len(g.members) >= MIN_GROUP_SIZE]
    groups = _acyclic_groups(jaxpr.eqns, groups)
    if not groups:
        return closed
    group_of = {j: gi for gi, g in enumerate(groups) for j in g.members}
    producer = {id(v): i for i, e in enumerate(jaxpr.eqns) for v in e.outvars}
    used_outside = {id(x) for x in jaxpr.outvars if type(x) is Var}  # read outside its group
    for i, e in enumerate(jaxpr.eqns):
        for x in e.invars:
            if type(x) is Var and id(x) in producer:
                gi = group_of.get(i)
                if gi is None or group_of.get(producer[id(x)]) != gi:
                    used_outside.add(id(x))
    uniform = {}
    for v, c in zip(jaxpr.constvars, closed.consts):
        u = _uniform_value(c)
        if u is not None:
            uniform[id(v)] = u
    fused: dict[int, Eqn] = {}  # id(group) -> its fused equation
    failures = []
    for g in groups:
        eqn = _fused_eqn(g, jaxpr.eqns, used_outside, uniform)
        program = eqn.params["program"]
        if not program.outputs or eqn.params["kernel_key"] in _failed_keys:
            continue  # dead code (left to DCE), or a kernel known not to compile
        try:
            program.runner()  # compile now: a failure leaves the group unfused
        except _kernels.KernelError as err:
            _failed_keys.add(eqn.params["kernel_key"])
            failures.append(err)
            continue
        fused[id(g)] = eqn
    if failures:
        warnings.warn(f"nanofn: {len(failures)} fused elementwise kernel(s) could not be "
                      "compiled, so their operations run unfused with numpy (correct, but "
                      f"slower). First cause: {failures[0]}", RuntimeWarning, stacklevel=2)
    if not fused:
        return closed
    eqns = _emit(jaxpr.eqns, [g for g in groups if id(g) in fused], fused)
    used = {id(x) for e in eqns for x in e.invars} | {id(x) for x in jaxpr.outvars}
    keep = [(v, c) for v, c in zip(jaxpr.constvars, closed.consts) if id(v) in used]
    out = Jaxpr([v for v, _ in keep], jaxpr.invars, eqns, jaxpr.outvars)
    return ClosedJaxpr(out, [c for _, c in keep])
