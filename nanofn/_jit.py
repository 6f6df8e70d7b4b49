"""`jit`: trace once per signature, simplify the jaxpr, run it as a compiled plan.

`jit(f)(*args)` flattens the arguments and builds a cache key from the pytree structure,
each leaf's shape and dtype, and the values of static arguments. On a miss it traces `f`
with abstract values into a jaxpr (so Python side effects in `f` run once, at trace
time), simplifies it, and compiles a *plan* (`Plan`): the source of one straight-line
Python function, one line per equation with its parameters bound, where every value is
deleted right after its last reader. On a hit it just calls that function: no
per-equation Python decisions happen at call time.

The plan owns its memory. Elementwise equations that a numpy ufunc computes exactly run
as that ufunc with `out=`; reductions and matrix products (of any rank) run as numpy calls
with `out=`; primitives with an `impl_into` (convolution patches and their transpose,
pooling and its gradients) and fused elementwise kernels (`nanofn._fusion`, from a
signature's second call) write into given buffers. Liveness analysis at compile time assigns those results buffers from a
pool of dead ones, so a call allocates little beyond the arrays it returns, and an
elementwise step may overwrite an operand that dies there. Views are tracked
conservatively (any other primitive's result may view its operands), and returned values
are always fresh arrays. See the comment above `Plan` for the rules.

Called inside another transformation (`grad(jit(f))`, `vmap(jit(f))`), the cached jaxpr is
replayed with `eval_jaxpr`, which binds each equation, so the enclosing transformation
sees ordinary primitives: jit needs no rules of its own.

Simplification (`simplify`) is three passes over the jaxpr: constant folding (equations
whose inputs are all known are evaluated once, at compile time), common subexpression
elimination, and dead code elimination.

`jit(f).trace(...)`, `.lower(...)` and `.eval_shape(...)` take these steps ahead of time
for one signature, from arrays or `ShapeDtypeStruct`s (`nanofn.stages`: `.compile()`
builds the plan into the same cache). With `jax_log_compiles` on, each new signature is
logged; with `jax_explain_cache_misses` on, each retrace says what changed. Both run on
the cache-miss path only.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import inspect
import logging
import math
import time
import weakref
from typing import Any, Callable, Sequence

import numpy as np

from nanofn import _core as core
from nanofn import _kernels, _malloc
from nanofn._config import config
from nanofn._core import ClosedJaxpr, Eqn, Jaxpr, Literal, Tracer, Var, get_aval
from nanofn._dtypes_float0 import float0
from nanofn._traceback_util import api_boundary
from nanofn.tree_util import tree_flatten, tree_flatten_with_path, tree_unflatten, keystr

# `jax_log_compiles` and `jax_explain_cache_misses` write here (WARNING when on, DEBUG off)
logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------ simplification


def _hashable_params(params):
    try:
        key = tuple(sorted(params.items()))
        hash(key)
        return key
    except TypeError:
        return None


def simplify(closed: ClosedJaxpr) -> ClosedJaxpr:
    """Constant-fold, deduplicate and prune a closed jaxpr (semantics unchanged)."""
    jaxpr = closed.jaxpr
    known: dict[int, object] = {id(v): c for v, c in zip(jaxpr.constvars, closed.consts)
                                if not isinstance(c, Tracer)}
    subst: dict[int, object] = {}
    seen: dict[tuple, list] = {}
    eqns = []

    def read(x):
        return subst.get(id(x), x) if type(x) is Var else x

    def value(x):
        if type(x) is Literal:
            return x.val
        return known.get(id(x), _MISSING)

    for eqn in jaxpr.eqns:
        invars = [read(x) for x in eqn.invars]
        prim = eqn.primitive
        pure = not core.has_effects(eqn)
        vals = [value(x) for x in invars]
        if pure and all(v is not _MISSING for v in vals) and _small_enough(eqn):
            token = core.quiet_enter()  # as every impl runs: no floating-point warnings
            try:
                outs = prim.impl(*[core.to_numpy(v) for v in vals], **eqn.params)
            finally:
                core.quiet_leave(token)
            outs = outs if prim.multiple_results else [outs]
            for v, o in zip(eqn.outvars, outs):
                known[id(v)] = np.asarray(o)
            continue
        key = None
        if pure:
            pkey = _hashable_params(eqn.params)
            if pkey is not None:
                key = (prim.name, tuple(id(x) if type(x) is Var else ("lit", x.val.item()
                       if hasattr(x.val, "item") and np.ndim(x.val) == 0 else id(x))
                       for x in invars), pkey)
        if key is not None and key in seen:
            for v, prev in zip(eqn.outvars, seen[key]):
                subst[id(v)] = prev
            continue
        new = Eqn(prim, invars, eqn.params, eqn.outvars)
        if key is not None:
            seen[key] = eqn.outvars
        eqns.append(new)

    outvars = [read(x) for x in jaxpr.outvars]
    # Folded values that are still used become constants (scalars become literals).
    constvars, consts = [], []
    needed = {id(x) for e in eqns for x in e.invars if type(x) is Var}
    needed |= {id(x) for x in outvars if type(x) is Var}
    const_by_id = {id(v): (v, c) for v, c in zip(jaxpr.constvars, closed.consts)}
    folded_vars = {id(v): v for e in jaxpr.eqns for v in e.outvars}
    for vid in needed:
        if vid in const_by_id:
            v, c = const_by_id[vid]
            constvars.append(v)
            consts.append(c)
        elif vid in known and vid in folded_vars:
            constvars.append(folded_vars[vid])
            consts.append(known[vid])
    pruned = core.dce_jaxpr(Jaxpr(constvars, jaxpr.invars, eqns, outvars))
    used = {id(x) for e in pruned.eqns for x in e.invars} | {id(x) for x in pruned.outvars}
    keep = [(v, c) for v, c in zip(constvars, consts) if id(v) in used]
    out = Jaxpr([v for v, _ in keep], pruned.invars, pruned.eqns, pruned.outvars)
    out, consts = core._inline_literals(out, [c for _, c in keep])
    return ClosedJaxpr(out, consts)


_MISSING = object()


def _small_enough(eqn) -> bool:
    """Fold only equations whose results are small: large folded constants cost memory."""
    return all(v.aval.size <= 1 << 16 for v in eqn.outvars)


# ------------------------------------------------------------------------ the plan
#
# A plan is the jaxpr compiled once into the source of one straight-line Python function:
# each equation becomes one line that calls its implementation, with every parameter bound
# in advance, and each value is deleted right after its last reader (so the residuals of a
# gradient are freed as soon as the backward pass is done with them).
#
# Buffers. Elementwise equations whose implementation is a plain numpy ufunc, reductions
# and matrix products, primitives with an `impl_into` (their impl writing into a given
# C-contiguous `out`), and fused kernels (`nanofn._fusion`) write into preallocated
# buffers (so a step neither allocates nor touches fresh pages): liveness analysis at compile
# time gives each such value a buffer from a pool of buffers whose values are dead (of the
# same size in bytes), so a program allocates them once, keeps them between calls and
# reuses each many times within a call. An elementwise step may write over one of its own
# operands when that operand dies there. The rules that keep this safe:
#
# * only values computed into a buffer are ever written over: never an argument, a
#   constant, or a value a step allocated itself;
# * any other step's result is assumed to be a view of its operands (reshape, transpose,
#   slice and broadcast results are), so a buffer stays busy while any value that may
#   view it is alive;
# * a value returned to the caller, or handed to a primitive with side effects (which may
#   keep it), is never put in a buffer, nor is anything it may view: each call returns
#   freshly allocated arrays;
# * an `impl_into` may return its buffer's memory in another layout (col2im's is channels
#   last; the primitive says so with `impl_into_views = True`): no step writes over such a
#   value in place.
#
# A set of buffers (an *arena*) serves one call at a time: concurrent or reentrant calls
# take another. Arenas above `KEEP_BUFFERS_BYTES` are not kept between calls.

KEEP_BUFFERS_BYTES = 1 << 28

# Elementwise primitives computed exactly by one numpy ufunc: name -> (ufunc, dtype kinds of
# the operands it covers). Every plan runs with numpy's floating-point warnings off, as
# eager primitives run (`nanofn._core.bind`): an inf or nan is a value, not a warning.
_UFUNCS = {
    "neg": (np.negative, "fiu"), "abs": (np.absolute, "fiu"), "sign": (np.sign, "f"),
    "floor": (np.floor, "f"), "ceil": (np.ceil, "f"), "exp": (np.exp, "f"),
    "exp2": (np.exp2, "f"), "log": (np.log, "f"), "log1p": (np.log1p, "f"),
    "expm1": (np.expm1, "f"), "sin": (np.sin, "f"), "cos": (np.cos, "f"), "tan": (np.tan, "f"),
    "asin": (np.arcsin, "f"), "acos": (np.arccos, "f"), "atan": (np.arctan, "f"),
    "sinh": (np.sinh, "f"), "cosh": (np.cosh, "f"), "tanh": (np.tanh, "f"),
    "asinh": (np.arcsinh, "f"), "acosh": (np.arccosh, "f"), "atanh": (np.arctanh, "f"),
    "sqrt": (np.sqrt, "f"), "cbrt": (np.cbrt, "f"), "is_finite": (np.isfinite, "f"),
    "add": (np.add, "fiub"), "sub": (np.subtract, "fiu"), "mul": (np.multiply, "fiub"),
    "div": (np.true_divide, "f"), "max": (np.maximum, "fiub"), "min": (np.minimum, "fiub"),
    "pow": (np.power, "f"), "atan2": (np.arctan2, "f"), "rem": (np.fmod, "f"),
    "nextafter": (np.nextafter, "f"),
    "eq": (np.equal, "fiub"), "ne": (np.not_equal, "fiub"), "lt": (np.less, "fiub"),
    "le": (np.less_equal, "fiub"), "gt": (np.greater, "fiub"), "ge": (np.greater_equal, "fiub"),
    "and": (np.bitwise_and, "iub"), "or": (np.bitwise_or, "iub"), "xor": (np.bitwise_xor, "iub"),
}


# Binary ufuncs whose Python operator on two 0-d operands (numpy scalars or 0-d arrays)
# computes the same result through numpy's scalar arithmetic.
_SCALAR_OPERATORS = {"add": "+", "sub": "-", "mul": "*", "lt": "<", "le": "<=", "gt": ">",
                     "ge": ">=", "eq": "==", "ne": "!=", "and": "&", "or": "|", "xor": "^"}


def _ufunc_step(eqn):
    """`(ufunc, operands)` computing `eqn` exactly as its impl does, or None. Operands are
    Vars, or literals as typed numpy scalars."""
    name = eqn.primitive.name
    invars = list(eqn.invars)
    if name == "integer_pow" and eqn.params.get("y") == 2:
        name, invars = "mul", invars * 2  # the impl computes x * x
    elif eqn.params or name not in _UFUNCS:
        return None
    ufunc, kinds = _UFUNCS[name]
    dtypes = [x.aval.dtype for x in invars]
    out = eqn.outvars[0].aval
    if len(set(dtypes)) != 1 or dtypes[0].kind not in kinds or core.has_effects(eqn):
        return None
    try:
        resolved = ufunc.resolve_dtypes(tuple(dtypes) + (None,))
    except (TypeError, ValueError):
        return None
    if list(resolved[:-1]) != dtypes or resolved[-1] != out.dtype:
        return None
    operands = []
    for x in invars:
        if type(x) is Literal:
            val = np.asarray(x.val)
            if val.dtype != dtypes[0]:
                return None
            x = val[()]
        operands.append(x)
    return ufunc, operands


def _mm(ta, tb):
    """`matmul` of two matrices, each transposed first or not, into `out` if given."""
    if ta and tb:
        return lambda a, b, out=None: np.matmul(a.T, b.T, out=out)
    if ta:
        return lambda a, b, out=None: np.matmul(a.T, b, out=out)
    if tb:
        return lambda a, b, out=None: np.matmul(a, b.T, out=out)
    return np.matmul


_MATMUL = {(ta, tb): _mm(ta, tb) for ta in (False, True) for tb in (False, True)}


def _matmul_step(eqn, transposed=False):
    """`(function, operands)` computing a matrix product `dot_general` (2-d operands, one
    contracting dimension each, no batch dimensions) as one `matmul`, or None. With
    `transposed`, the function computes the transpose of the product (as `y.T @ x.T`)."""
    if eqn.primitive.name != "dot_general" or len(eqn.invars) != 2:
        return None
    x, y = eqn.invars
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    pet = eqn.params.get("preferred_element_type")
    if (type(x) is not Var or type(y) is not Var or len(x.aval.shape) != 2
            or len(y.aval.shape) != 2 or len(lc) != 1 or len(rc) != 1 or lb or rb
            or x.aval.dtype != y.aval.dtype or x.aval.dtype.kind != "f"
            or (pet is not None and np.dtype(pet) != x.aval.dtype)):
        return None
    tx, ty = lc[0] == 0, rc[0] == 1  # x.T @ y.T ... as needed to contract x's lc with y's rc
    if transposed:  # (x' @ y').T = y'.T @ x'.T
        return _MATMUL[(not ty, not tx)], [y, x]
    return _MATMUL[(tx, ty)], [x, y]


def _dot_step(eqn):
    """`(function, operands)` computing any other float `dot_general` as one `matmul` of
    (batch..., rows, contraction) by (batch..., contraction, columns) operands, as its
    impl does, with the product written into `out` when given (a C-contiguous result
    reshapes to the product's shape without a copy). The batch axes stay apart: merging
    them would copy an operand whose batch axes are not adjacent in memory (attention's
    heads, transposed out of (B, T, N, H)), and `matmul` loops over them with any strides.
    None when the equation is not a float product of one dtype."""
    if eqn.primitive.name != "dot_general" or len(eqn.invars) != 2:
        return None
    x, y = eqn.invars
    pet = eqn.params.get("preferred_element_type")
    if (type(x) is not Var or type(y) is not Var or x.aval.dtype != y.aval.dtype
            or x.aval.dtype.kind != "f" or (pet is not None and np.dtype(pet) != x.aval.dtype)):
        return None
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    xs, ys = x.aval.shape, y.aval.shape
    x_free = [d for d in range(len(xs)) if d not in lc and d not in lb]
    y_free = [d for d in range(len(ys)) if d not in rc and d not in rb]
    px, py = tuple(lb) + tuple(x_free) + tuple(lc), tuple(rb) + tuple(rc) + tuple(y_free)
    b = tuple(xs[d] for d in lb if xs[d] != 1)  # unit batch axes dropped
    m, k = math.prod(xs[d] for d in x_free), math.prod(xs[d] for d in lc)
    n = math.prod(ys[d] for d in y_free)
    shape = eqn.outvars[0].aval.shape
    sx, sy, so = b + (m, k), b + (k, n), b + (m, n)
    tx = None if px == tuple(range(len(xs))) else px
    ty = None if py == tuple(range(len(ys))) else py

    def dot(a, b, out=None):
        a = (a if tx is None else a.transpose(tx)).reshape(sx)
        b = (b if ty is None else b.transpose(ty)).reshape(sy)
        if out is None:
            return np.matmul(a, b).reshape(shape)
        np.matmul(a, b, out=out.reshape(so))
        return out
    return dot, [x, y]


def _into_step(eqn):
    """`(function, operands)` for a primitive with an `impl_into` (its impl writing into a
    given C-contiguous `out`; see nanofn/ops/_conv.py), params bound. None for others."""
    prim = eqn.primitive
    into = getattr(prim, "impl_into", None)
    if into is None or prim.multiple_results or core.has_effects(eqn):
        return None
    return functools.partial(into, **eqn.params), list(eqn.invars)


def _fresh_into(fn, aval):
    """`fn` (an `impl_into` with params bound) writing into a new array: what a step runs
    when its result may not live in a buffer (it is returned, or kept)."""
    shape, dtype = aval.shape, aval.dtype
    empty = _malloc.allocator(aval.size * dtype.itemsize)
    return lambda *args: fn(*args, out=empty(shape, dtype))


def _owned_step(eqn):
    """`(function, operands)` for equations the plan computes itself with a numpy function
    that returns a fresh array, or writes into `out=` when given one: reductions and
    matrix products. None for others."""
    name = eqn.primitive.name
    if name in ("reduce_sum", "reduce_max", "reduce_min") and type(eqn.invars[0]) is Var:
        x = eqn.invars[0]
        axes = tuple(eqn.params["axes"])
        if name == "reduce_sum":
            from nanofn.ops._base import sum_np
            fn = functools.partial(sum_np, axes=axes)
        else:
            ufunc = np.maximum if name == "reduce_max" else np.minimum
            fn = functools.partial(ufunc.reduce, axis=axes)
        return fn, [x]
    return _matmul_step(eqn) or _dot_step(eqn)


class _Step:
    """One equation of a plan, as decided at compile time."""

    __slots__ = ("eqn", "kind", "fn", "ins", "outs", "buffers", "inplace_ok", "c_order",
                 "inline")

    def __init__(self, eqn, kind, fn, ins, outs):
        self.eqn, self.kind, self.fn, self.ins, self.outs = eqn, kind, fn, ins, outs
        # the step as a source expression of its operands' names ("{0}.reshape(...)"), or
        # None: a plan then calls `fn`
        self.inline = None
        self.buffers = [None] * len(outs)  # buffer number per output, None: allocated
        # numpy's elementwise ufuncs may overwrite an operand. A fused kernel may not: its
        # loop is vectorised only behind LLVM's run-time check that outputs and inputs do
        # not overlap, so writing over an input runs it one element at a time (measured:
        # W3's 30-op kernel 1.3 ms on separate arrays, 3.6 ms in place; W3's step 47 -> 39 ms)
        self.inplace_ok = kind == "ufunc"
        # the result is its buffer itself (C order), not a view of it in another layout
        self.c_order = kind != "into" or not getattr(eqn.primitive, "impl_into_views", False)


class Plan:
    """A jaxpr compiled to one straight-line Python function over reused buffers.

    `Plan(closed)(args)` runs the program on a list of numpy arguments and returns the list
    of outputs (fresh arrays, or the arguments/constants themselves where the program
    returns them). `reuse=False` makes every step allocate its result (the reference the
    tests compare with).
    """

    def __init__(self, closed: ClosedJaxpr, *, reuse: bool = True):
        jaxpr = closed.jaxpr
        slot: dict[int, int] = {}
        for v in jaxpr.constvars + jaxpr.invars:
            slot[id(v)] = len(slot)
        for e in jaxpr.eqns:
            for v in e.outvars:
                slot[id(v)] = len(slot)
        self.nslots = len(slot)
        self.const_slots = [slot[id(v)] for v in jaxpr.constvars]
        self.consts = [core.to_numpy(c) for c in closed.consts]
        self.in_slots = [slot[id(v)] for v in jaxpr.invars]
        self.jaxpr = jaxpr
        aval_of = {slot[id(v)]: v.aval for v in jaxpr.constvars + jaxpr.invars}
        for e in jaxpr.eqns:
            for v in e.outvars:
                aval_of[slot[id(v)]] = v.aval
        self._literals: list = []

        def ref(x):
            if type(x) is Var:
                return slot[id(x)]
            self._literals.append(x.val if type(x) is Literal else x)
            return -len(self._literals)  # negative: a literal

        # A matrix product read only by a transpose is computed transposed, in one step:
        # weight gradients then come out in the memory order of the weights.
        pairs = {}  # id(dot equation) -> the transpose equation that reads it
        pair_of = {}  # id(transpose equation) -> the dot equation it reads
        if reuse:
            uses: dict[int, int] = {}
            for e in jaxpr.eqns:
                for x in e.invars:
                    if type(x) is Var:
                        uses[id(x)] = uses.get(id(x), 0) + 1
            for x in jaxpr.outvars:
                uses[id(x)] = uses.get(id(x), 0) + 1
            producer = {id(e.outvars[0]): e for e in jaxpr.eqns if len(e.outvars) == 1}
            for e in jaxpr.eqns:
                if e.primitive.name == "transpose" and e.params["permutation"] == (1, 0) \
                        and type(e.invars[0]) is Var and uses[id(e.invars[0])] == 1:
                    dot = producer.get(id(e.invars[0]))
                    if dot is not None and _matmul_step(dot) is not None:
                        pairs[id(dot)] = e
                        pair_of[id(e)] = dot
        steps = []
        for e in jaxpr.eqns:
            outs = [slot[id(v)] for v in e.outvars]
            if id(e) in pairs:
                continue  # computed by the transpose that reads it
            if id(e) in pair_of:
                dot = pair_of[id(e)]
                fn, operands = _matmul_step(dot, transposed=True)
                steps.append(_Step(dot, "owned", fn, [ref(x) for x in operands], outs))
                continue
            uf = _ufunc_step(e) if reuse else None
            owned = _owned_step(e) if reuse and uf is None else None
            into = _into_step(e) if reuse and uf is None and owned is None else None
            if uf is not None:
                steps.append(_Step(e, "ufunc", uf[0], [ref(x) for x in uf[1]], outs))
            elif owned is not None:
                steps.append(_Step(e, "owned", owned[0], [ref(x) for x in owned[1]], outs))
            elif into is not None:
                steps.append(_Step(e, "into", into[0], [ref(x) for x in into[1]], outs))
            elif reuse and e.primitive.name == "fused_elementwise":
                steps.append(_Step(e, "fused", None, [ref(x) for x in e.invars], outs))
            else:
                # `impl.raw`: an impl without the argument checks tracing already did
                impl = getattr(e.primitive.impl, "raw", e.primitive.impl)
                if e.params:
                    impl = functools.partial(impl, **e.params)
                steps.append(_Step(e, "call", impl, [ref(x) for x in e.invars], outs))
                if reuse and e.primitive.name == "reshape" and type(e.invars[0]) is Var:
                    # a view, as `np.reshape` makes it: a method call costs a fraction of
                    # the partial, the impl and numpy's dispatch (13-16 us a reshape in
                    # W7's step, with the interpreter's data out of the caches)
                    steps[-1].inline = f"{{0}}.reshape({tuple(e.params['new_sizes'])!r})"
        self.steps = steps
        self.out_refs = [ref(x) for x in jaxpr.outvars]
        self._aval_of = aval_of
        self.buffer_nbytes: list[int] = []
        if reuse:
            self._assign_buffers(aval_of)
        self._arenas: list = []
        # whether a call gives its buffers back for the next (small enough to keep)
        self._keep_arenas = sum(self.buffer_nbytes) <= KEEP_BUFFERS_BYTES
        self._build()

    # -------------------------------------------------------------- buffer assignment

    def _assign_buffers(self, aval_of):
        steps = self.steps
        last_use: dict[int, int] = {}
        for i, st in enumerate(steps):
            for s in st.ins:
                if s >= 0:
                    last_use[s] = i
        # roots[s]: the buffered values slot s may be (a view of). Arguments and constants
        # have none; a step that writes into a buffer makes a new root; any other step's
        # result may view its operands.
        roots: dict[int, frozenset] = {}
        empty = frozenset()
        for st in steps:
            if st.kind != "call":  # results are fresh arrays or buffers, never views
                for o in st.outs:
                    roots[o] = frozenset((o,))
            else:
                r = empty.union(*[roots.get(s, empty) for s in st.ins if s >= 0])
                for o in st.outs:
                    roots[o] = r
        escaping = set()
        for s in self.out_refs:
            if s >= 0:
                escaping |= roots.get(s, empty)
        for st in steps:
            if core.has_effects(st.eqn):
                for s in st.ins:
                    if s >= 0:
                        escaping |= roots.get(s, empty)
        end: dict[int, int] = {}  # root -> last step at which some view of it is read
        for i, st in enumerate(steps):
            for o in st.outs:
                for r in roots[o]:
                    end[r] = max(end.get(r, i), last_use.get(o, i))
        ending: dict[int, list] = {}
        for r, i in end.items():
            ending.setdefault(i, []).append(r)
        free: dict[int, list] = {}  # nbytes -> buffer numbers whose values are dead
        buffer_of: dict[int, int] = {}  # root -> buffer number
        nbytes = self.buffer_nbytes
        # buffers holding a result in another layout than their own (C order): an
        # elementwise step must not write over them in C order while reading them
        odd_layout = {o for st in steps if not st.c_order for o in st.outs}
        for i, st in enumerate(steps):
            dying = [r for r in ending.get(i, ()) if r in buffer_of]
            if st.kind != "call":
                for k, o in enumerate(st.outs):
                    aval = aval_of[o]
                    size = math.prod(aval.shape) * aval.dtype.itemsize
                    if o in escaping or size == 0 or not aval.shape:
                        continue  # returned (or kept) by someone, or a scalar
                    b = self._inplace(st, o, aval, size, dying, buffer_of, roots, aval_of,
                                      odd_layout)
                    if b is None:
                        pool = free.get(size)
                        if pool:
                            b = pool.pop()
                        else:
                            b = len(nbytes)
                            nbytes.append(size)
                    buffer_of[o] = b
                    st.buffers[k] = b
            for r in dying:
                if r in buffer_of and buffer_of[r] not in st.buffers:
                    free.setdefault(nbytes[buffer_of[r]], []).append(buffer_of[r])

    @staticmethod
    def _inplace(st, o, aval, size, dying, buffer_of, roots, aval_of, odd_layout):
        """A buffer of an operand that dies at this step and that the step may overwrite:
        every operand viewing it is the buffered value itself, of the result's shape and
        dtype, in the buffer's own (C) order (an elementwise step then reads each element
        before writing it)."""
        if not st.inplace_ok:
            return None
        for r in dying:
            b = buffer_of[r]
            if b in st.buffers or r in odd_layout:
                continue
            a = aval_of[r]
            if a.shape != aval.shape or a.dtype != aval.dtype:
                continue
            if all(s == r for s in st.ins if s >= 0 and r in roots.get(s, ())):
                return b
        return None

    # -------------------------------------------------------------- code generation

    def _build(self):
        """Write the plan's function: one line per step, dead values deleted."""
        src, ns, line_step, arena = self._write(dests=0)
        self._line_step = line_step
        self._arena_layout = arena
        self.source = src
        self._code = compile(src, f"<nanofn jit plan {id(self):x}>", "exec")
        exec(self._code, ns)  # noqa: S102
        self._fn = ns["plan"]
        self._into = {}  # number of trailing outputs -> (function, its line -> step map)

    def _write(self, dests):
        """The source of the plan's function and its namespace, with its line -> step map
        and arena layout. With `dests` > 0 the function takes, after the arena, a list of
        arrays for the last `dests` outputs to be written into: steps whose result is one
        of them write it there (`out=`, or a fused kernel's output buffer), the others are
        copied into it at the end, and the function returns those arrays (`run_into`)."""
        # (unsafe: as `dest[...] = value` casts, e.g. a literal whose type is the output's)
        ns = {"_quiet_enter": core.quiet_enter, "_quiet_leave": core.quiet_leave,
              "_copyto": functools.partial(np.copyto, casting="unsafe")}
        lines = []
        line_step: dict[int, int] = {}
        last_use: dict[int, int] = {}
        for i, st in enumerate(self.steps):
            for s in st.ins:
                if s >= 0:
                    last_use[s] = i
        keep = {s for s in self.out_refs if s >= 0} | set(self.in_slots) | set(self.const_slots)
        for s, c in zip(self.const_slots, self.consts):
            ns[f"s{s}"] = c
        for j, lit in enumerate(self._literals):
            ns[f"l{j + 1}"] = lit

        def name(s):
            return f"s{s}" if s >= 0 else f"l{-s}"

        # results that steps write straight into a destination (each slot at most once)
        first_dest = len(self.out_refs) - dests
        direct: dict[int, int] = {}  # slot -> destination number
        made_by = {o: st for st in self.steps for o in st.outs}
        returned = set(self.out_refs[:first_dest])  # also returned as itself: not aliased
        for j, s in enumerate(self.out_refs[first_dest:]):
            st = made_by.get(s)
            if (st is not None and s not in direct and s not in returned and st.c_order
                    and st.kind in ("ufunc", "owned", "into", "fused")):
                direct[s] = j
        arena: list[tuple] = []  # (buffer number, dtype, shape, flat) per arena entry
        for i, st in enumerate(self.steps):
            args = [name(s) for s in st.ins]
            outs = [f"s{o}" for o in st.outs]
            fn = f"_f{i}"
            fix = []  # destinations a fused kernel may have filled in Fortran order
            if st.kind in ("ufunc", "owned", "into"):
                ns[fn] = st.fn
                b = st.buffers[0]
                if st.outs[0] in direct:  # `out=` returns the destination itself
                    args.append(f"out=_d{direct[st.outs[0]]}")
                elif b is not None:
                    arena.append((b, self._aval_of[st.outs[0]], False))
                    args.append(f"out=_b{len(arena) - 1}")
                elif st.kind == "into":
                    ns[fn] = _fresh_into(st.fn, self._aval_of[st.outs[0]])
            elif st.kind == "fused":
                program = st.eqn.params["program"]
                ns[fn] = _fused_call(program, [b is not None or o in direct
                                               for b, o in zip(st.buffers, st.outs)])
                for b, o in zip(st.buffers, st.outs):
                    if o in direct:
                        d = f"_d{direct[o]}"
                        args += [f"{d}.reshape(-1)", d]
                        fix.append((o, direct[o]))
                    elif b is not None:
                        arena.append((b, self._aval_of[o], True))
                        arena.append((b, self._aval_of[o], False))
                        args += [f"_b{len(arena) - 2}", f"_b{len(arena) - 1}"]
            else:
                ns[fn] = st.fn
            call = f"{fn}({', '.join(args)})" if st.inline is None else st.inline.format(*args)
            op = _SCALAR_OPERATORS.get(st.eqn.primitive.name) if st.kind == "ufunc" else None
            if op is not None and len(args) == 2 and all(
                    not self._aval_of[s].shape if s >= 0 else np.ndim(self._literals[-s - 1]) == 0
                    for s in (*st.ins, *st.outs)):
                # numpy's scalar arithmetic: 0-d operands give the ufunc's numbers and dtype
                # (a numpy scalar), 20-50 ns instead of about 1.4 us for a ufunc call (a loop's
                # counter and its test)
                call = f"({args[0]} {op} {args[1]})"
            if not outs:
                line = call
            elif st.eqn.primitive.multiple_results:
                line = f"{', '.join(outs)}{',' if len(outs) == 1 else ''} = {call}"
            else:
                line = f"{outs[0]} = {call}"
            dead = sorted({s for s in st.ins if s >= 0 and last_use.get(s) == i} - keep)
            dead += [o for o in st.outs if o not in last_use and o not in keep]
            line_step[len(lines)] = i
            lines.append(line)
            for o, j in fix:  # a fused kernel may have written Fortran order: make it C
                lines += [f"if s{o} is not _d{j}:", f"    _copyto(_d{j}, s{o})",
                          f"    s{o} = _d{j}"]
            if dead:
                lines.append(f"del {', '.join(name(s) for s in dead)}")
        results = [name(s) for s in self.out_refs[:first_dest]]
        for j, s in enumerate(self.out_refs[first_dest:]):
            if direct.get(s) != j:
                lines.append(f"_copyto(_d{j}, {name(s)})")
            results.append(f"_d{j}")
        lines.append(f"return [{', '.join(results)}]")
        params = ["_B"] + (["_D"] if dests else []) + [f"s{s}" for s in self.in_slots]
        head = [f"def plan({', '.join(params)}):"]
        if arena:
            head.append(f"    {', '.join(f'_b{k}' for k in range(len(arena)))}, = _B")
        if dests:
            head.append(f"    {', '.join(f'_d{k}' for k in range(dests))}, = _D")
        # numpy's floating-point warnings off for the body (see _UFUNCS), by the context
        # variable switch of eager `bind`: a plan runs once per loop step in `scan`
        head += ["    _token = _quiet_enter()", "    try:"]
        indent = "        "
        tail = ["    finally:", "        _quiet_leave(_token)"]
        first = len(head) + 1  # line numbers start at 1
        line_step = {first + k: i for k, i in line_step.items()}
        src = "\n".join(head + [indent + line for line in lines] + tail) + "\n"
        return src, ns, line_step, arena

    def _new_arena(self):
        # each buffer on a cache line, so that a view of any dtype is aligned
        storage = [_malloc.empty(n, np.uint8) for n in self.buffer_nbytes]
        views = []
        for b, aval, flat in self._arena_layout:
            v = storage[b][:math.prod(aval.shape) * aval.dtype.itemsize].view(aval.dtype)
            views.append(v if flat else v.reshape(aval.shape))
        return views

    # -------------------------------------------------------------- running

    def __call__(self, args):
        if core.debug_nans:
            return self._interpret(args)
        return self._run(self._fn, self._line_step, args)

    def run_into(self, args, dests):
        """Run the plan with its last `len(dests)` outputs written into `dests`, C-contiguous
        arrays of those outputs' shapes and dtypes, which it returns in their places. A
        step whose result is one of them writes it there; the others are copied in. This
        is how `scan` gets a step's ys into its stacked outputs without a copy each."""
        n = len(dests)
        if core.debug_nans or not n:
            outs = self(args)
            for d, o in zip(dests, outs[len(outs) - n:]):
                np.copyto(d, o, casting="unsafe")
            return outs[:len(outs) - n] + list(dests)
        fn, line_step = self._into_entry(n)
        return self._run(fn, line_step, args, dests)

    def _into_entry(self, n):
        """The plan's function writing its last `n` outputs into given arrays, and its
        line -> step map (written on first use)."""
        entry = self._into.get(n)
        if entry is None:
            src, ns, line_step, _ = self._write(dests=n)
            exec(compile(src, f"<nanofn jit plan {id(self):x} into>", "exec"), ns)  # noqa: S102
            entry = self._into[n] = (ns["plan"], line_step)
        return entry

    def stepper(self, dests=0):
        """`(step, done)` for running the plan once per step of a loop: `step(args)` (or
        `step(args, dest_arrays)` with `dests` > 0, as `run_into`) runs it on one set of
        buffers taken for the whole loop, and `done()` gives them back. Saves `__call__`'s
        and `run_into`'s per-call bookkeeping, which is most of a small body's cost."""
        if core.debug_nans:  # checked step by step by the interpreter
            return ((lambda args, d=None: self.run_into(args, d)) if dests else
                    (lambda args, d=None: self(args))), (lambda: None)
        if dests:
            fn, line_step = self._into_entry(dests)
        else:
            fn, line_step = self._fn, self._line_step
        arenas = self._arenas
        try:
            arena = arenas.pop()
        except IndexError:
            arena = self._new_arena() if self._arena_layout else ()

        def step(args, d=None):
            try:
                return fn(arena, *args) if d is None else fn(arena, d, *args)
            except Exception as err:  # noqa: BLE001
                self._report(err, fn.__code__, line_step)
                raise

        def done():
            if arena and self._keep_arenas:
                arenas.append(arena)
        return step, done

    def _run(self, fn, line_step, args, dests=None):
        arenas = self._arenas
        try:
            arena = arenas.pop()  # atomic: each concurrent call gets its own buffers
        except IndexError:
            arena = self._new_arena() if self._arena_layout else ()
        try:
            return fn(arena, *args) if dests is None else fn(arena, dests, *args)
        except Exception as err:  # noqa: BLE001
            self._report(err, fn.__code__, line_step)
            raise
        finally:
            if arena and self._keep_arenas:
                arenas.append(arena)

    def _report(self, err, code, line_step):
        """Re-raise an error from a step naming its primitive, shapes and params."""
        tb = err.__traceback__
        while tb is not None and tb.tb_frame.f_code is not code:
            tb = tb.tb_next
        if tb is None:
            return
        i = line_step.get(tb.tb_lineno)
        if i is None:
            return
        st, local = self.steps[i], tb.tb_frame.f_locals
        glob = tb.tb_frame.f_globals
        vals = [local.get(f"s{s}", glob.get(f"s{s}")) if s >= 0 else self._literals[-s - 1]
                for s in st.ins]
        if st.kind == "ufunc" and st.eqn.primitive.name == "integer_pow":
            vals = vals[:1]
        if any(v is None for v in vals):  # not the operands' fault: the original error
            return
        core._impl_failed(st.eqn.primitive, vals, st.eqn.params, err)

    def _interpret(self, args):
        """Run the equations one at a time on fresh arrays, checking each result for NaNs
        (what `nanofn.debug_nans()` asks for)."""
        jaxpr = self.jaxpr
        env = {id(v): c for v, c in zip(jaxpr.constvars, self.consts)}
        env.update((id(v), a) for v, a in zip(jaxpr.invars, args))

        def read(x):
            return env[id(x)] if type(x) is Var else x.val

        for e in jaxpr.eqns:
            vals = [read(x) for x in e.invars]
            token = core.quiet_enter()
            try:
                result = e.primitive.impl(*vals, **e.params)
            except Exception as err:  # noqa: BLE001
                core._impl_failed(e.primitive, vals, e.params, err)
            finally:
                core.quiet_leave(token)
            core.check_nans(e.primitive, result)
            results = result if e.primitive.multiple_results else [result]
            for v, r in zip(e.outvars, results):
                env[id(v)] = r
        return [read(x) for x in jaxpr.outvars]


def _fused_call(program, given):
    """The function a plan calls for a fused equation: the program's kernel writing the
    outputs flagged in `given` into the buffers passed after the inputs. If the kernel
    cannot be built, the program's primitives run with numpy (one warning), their results
    copied into those buffers."""
    from nanofn import _fusion, _kernels
    try:
        return program.runner_into(given)
    except _kernels.KernelError as err:
        _fusion._warn_failed(program, err)
    n = len(program.inputs)

    def run(*args):
        outs = program.eval_numpy(*args[:n])
        bufs = iter(args[n:])
        res = []
        for g, o in zip(given, outs):
            if g:
                next(bufs)  # the flat buffer
                view = next(bufs)
                np.copyto(view, o)
                o = view
            res.append(o)
        return res
    return run


# ------------------------------------------------------------------------ jit


def _unaliased(out, lent):
    """A result of a call that was lent the caller's buffers `lent`, copied if it is or
    views one of them (an argument returned as it is, reshaped or sliced): a nanofn array
    must not change when the caller writes to its buffer later."""
    if lent and out.base is not None and any(np.may_share_memory(out, b) for b in lent):
        return out.copy()
    return out


def _leaf_to_value(x, lent=None):
    """Make a jit argument leaf concrete and typed: Python scalars get their default dtype.

    A caller's writable numpy buffer is copied (a traced program may keep its inputs),
    unless `lent` is a list: then the call only reads it, so it gets a read-only view and
    the buffer is appended to `lent` (see `_unaliased`)."""
    if type(x) in core._PY_SCALAR_DTYPE:
        return core.scalar_value(x)
    if type(x) is core.Array:
        return x._value
    if isinstance(x, (np.ndarray, np.generic)):
        x = core.check_numeric(x, "jit")
        if lent is None or not isinstance(x, np.ndarray) or not x.flags.writeable:
            return core.owned(x)
        lent.append(x)
        view = x.view(np.ndarray)
        view.flags.writeable = False
        return view
    if isinstance(x, Tracer):
        return x
    raise TypeError(f"jit: argument leaf of type {type(x).__name__} is not an array; mark the "
                    "argument static with static_argnums / static_argnames")


class _Compiled:
    """A cached trace: the simplified jaxpr (what transformations replay) and its plan.

    The first call runs the plain plan, inside `_kernels.deferred()`: primitives whose
    kernels would need numba's start-up (about a second: importing numba and its
    registries) take their numpy paths instead (all of them, with background compilation
    on: a kernel not yet compiled for these types would compile on this thread). A second
    call with the same signature marks the function as hot: its plan is rebuilt with
    elementwise chains fused into generated numba kernels (`nanofn._fusion`), and kernels
    run from then on. So a function called once never imports numba.

    With `nanofn.config.nanofn_background_compile` on (the default), the fused plan is
    built in a background thread (`nanofn._background`): calls keep running the plain
    plan with numpy only (`_kernels.numpy_only()`, so none waits for numba) until it is
    ready, and the first call after that switches to it. Off, the second call builds it
    and waits.
    """

    __slots__ = ("closed", "out_tree", "plan", "calls", "job", "hot", "fun_name")

    def __init__(self, closed, out_tree, fun_name=""):
        self.closed = closed
        self.out_tree = out_tree
        self.fun_name = fun_name  # for nanofn.monitoring's events
        self.plan = Plan(closed)
        self.calls = 0
        self.job = None  # the background build of the fused plan, while it is pending
        self.hot = False  # the fused plan was asked for (built, or being built)

    def run(self, values):
        # Threads may share this object: `calls += 1` can lose a count, so fusing is keyed
        # on `hot`, not on seeing exactly 2; two threads may both fuse (the same kernels,
        # built once by `_kernels`), which costs time but never correctness. No lock here:
        # fusing compiles kernels, and no nanofn lock may be held across numba compiling
        # unless it is taken after numba's own lock (see `nanofn._kernels._lock`).
        if core.debug_nans and self.plan.jaxpr is not self.closed.jaxpr:
            return Plan(self.closed)(values)  # debug_nans/infs name a primitive, not a fusion
        self.calls += 1
        if self.calls == 1:
            if config.nanofn_background_compile:  # no kernel may compile on this thread
                with _kernels.numpy_only():
                    return self.plan(values)
            with _kernels.deferred():
                return self.plan(values)
        job = self.job
        if job is not None:
            if not job.done.is_set():
                with _kernels.numpy_only():
                    return self.plan(values)
            self._switch(job)
        elif not self.hot and config.nanofn_use_kernels:
            self.hot = True
            if config.nanofn_background_compile:
                from nanofn import _background
                self.job = _background.submit(self.closed, values)
                with _kernels.numpy_only():
                    return self.plan(values)
            from nanofn._fusion import fuse
            start = time.perf_counter()
            self.plan = Plan(fuse(self.closed))
            self._record_build(time.perf_counter() - start)
        return self.plan(values)

    def _record_build(self, seconds):
        from nanofn import monitoring
        monitoring.record_event_duration_secs(monitoring.BACKEND_COMPILE_EVENT, seconds,
                                              fun_name=self.fun_name)

    def _switch(self, job):
        """Take the background build's plan (or, if it failed, keep the plain plan and say
        why once)."""
        if job.plan is not None:
            self.plan = job.plan
            self._record_build(job.seconds)
            # the plain plan's buffers are freed here: hand them back to the system, as
            # this process's raised malloc thresholds would keep them (nanofn/_malloc.py)
            from nanofn import _background
            _background._trim()
        elif not isinstance(job.error, RuntimeError) or "exiting" not in str(job.error):
            import warnings
            warnings.warn(f"nanofn: compiling a jitted function's kernels in the background "
                          f"failed, so it runs unfused: {type(job.error).__name__}: "
                          f"{job.error}", RuntimeWarning, stacklevel=4)
        self.job = None

    @property
    def pending(self) -> bool:
        """Whether the fused plan is being built in the background (calls run numpy)."""
        job = self.job
        return job is not None and not job.done.is_set()


_trace_hook = None  # nanofn.profiler's span recorder while a trace runs (start_trace)


class JitFunction:
    """A function compiled by `jit`; call it like the original."""

    def __init__(self, fun, static_argnums=(), static_argnames=()):
        functools.update_wrapper(self, fun, updated=())  # name and docs only, not __dict__
        self.fun = fun
        self.static_argnums = _as_tuple(static_argnums)
        self.static_argnames = _as_tuple(static_argnames)
        try:
            self._signature = inspect.signature(fun)
        except (TypeError, ValueError):
            self._signature = None
        if self._signature is not None:  # static args may be named either way, as in JAX
            _check_static_args(self._signature, self.static_argnums, self.static_argnames)
            params = list(self._signature.parameters)
            nums = set(self.static_argnums)
            names = set(self.static_argnames)
            for n in names:
                if n in params:
                    nums.add(params.index(n))
            for i in list(nums):
                if 0 <= i < len(params):
                    names.add(params[i])
            self.static_argnums = tuple(sorted(nums))
            self.static_argnames = tuple(sorted(names))
        self._cache: collections.OrderedDict = collections.OrderedDict()  # LRU order
        self.trace_count = 0
        _live_jit_functions.add(self)

    def _split(self, args, kwargs):
        static, dyn_args, dyn_kwargs = [], [], {}
        nargs = len(args)
        for i, a in enumerate(args):
            if i in self.static_argnums or (i - nargs) in self.static_argnums:
                static.append((i, _check_hashable(a, f"positional argument {i}")))
            else:
                dyn_args.append(a)
        for k in sorted(kwargs):
            if k in self.static_argnames:
                static.append((k, _check_hashable(kwargs[k], f"argument {k!r}")))
            else:
                dyn_kwargs[k] = kwargs[k]
        return tuple(static), dyn_args, dyn_kwargs

    @api_boundary
    def __call__(self, *args, **kwargs):
        if _trace_hook is not None and (traced := _trace_hook(self, args, kwargs)):
            return traced[0]  # a profiler trace is running: the call ran in its span
        if config.jax_disable_jit:
            return self.fun(*args, **kwargs)
        static, dyn_args, dyn_kwargs = self._split(args, kwargs)
        leaves, in_tree = tree_flatten((dyn_args, dyn_kwargs))
        # A plain call only reads its numpy arguments: they are lent, not copied. Under a
        # transformation (or with tracers) they may be kept, as residuals: copied.
        tracing = core.under_transform() or any(isinstance(x, Tracer) for x in leaves)
        lent = None if tracing else []
        values = [_leaf_to_value(x, lent) for x in leaves]
        avals = tuple(get_aval(v) for v in values)
        key = (in_tree, avals, static, core.trace_flags)
        compiled = self._cache.get(key)
        if compiled is None:
            compiled = self._compile(args, kwargs, static, in_tree, avals)
        elif len(self._cache) > 1:
            try:
                self._cache.move_to_end(key)  # most recently used last
            except KeyError:  # dropped meanwhile (another thread, clear_cache)
                pass
        if tracing:
            outs = core.eval_jaxpr(compiled.closed.jaxpr, compiled.closed.consts, *values)
            outs = [o if isinstance(o, (Tracer, core.Array)) or _is_float0(o) else core.wrap(o)
                    for o in outs]
        else:
            outs = [o if _is_float0(o) else core.Array(_unaliased(o, lent))
                    if isinstance(o, np.ndarray) else core.wrap(o) for o in compiled.run(values)]
        return tree_unflatten(compiled.out_tree, outs)

    def _compile(self, args, kwargs, static, in_tree, avals, raw_box=None, store=True):
        """Trace and plan a new signature (and cache it, with `store`); with `raw_box` (a
        list), the jaxpr as traced, before simplification, is appended to it. With the
        `jax_explain_cache_misses` / `jax_log_compiles` flags on, says why and what."""
        if config.jax_explain_cache_misses and store:
            from nanofn import stages
            stages._explain_cache_miss(self, args, kwargs, static, in_tree, avals)
        start = time.perf_counter()
        static_pos = {k: v for k, v in static if isinstance(k, int)}
        static_kw = {k: v for k, v in static if isinstance(k, str)}
        out_tree_box = []

        def flat_fun(*flat):
            dyn_args, dyn_kwargs = tree_unflatten(in_tree, flat)
            it = iter(dyn_args)
            nargs = len(args)
            full_args = [static_pos[i] if i in static_pos else
                         (static_pos[i - nargs] if (i - nargs) in static_pos else next(it))
                         for i in range(nargs)]
            out = self.fun(*full_args, **dyn_kwargs, **static_kw)
            out_flat, out_tree = tree_flatten(out)
            out_tree_box.append(out_tree)
            for o in out_flat:
                if not core.is_array_like(o):
                    raise TypeError(f"jit: the function returned a {type(o).__name__}, which is "
                                    "not an array; return arrays (or pytrees of arrays) only")
            return out_flat

        self.trace_count += 1
        closed = core.trace_to_jaxpr(flat_fun, avals,
                                     arg_names=lambda: self._arg_names(args, kwargs, static))
        if raw_box is not None:
            raw_box.append(closed)
        if config.jax_enable_checks:
            _typecheck(closed, "as traced")
        with _kernels.deferred():  # constant folding never starts numba
            closed = simplify(closed)
        if config.jax_enable_checks:
            _typecheck(closed, "after simplification")
        name = getattr(self.fun, "__name__", None) or type(self.fun).__name__
        compiled = _Compiled(closed, out_tree_box[0], name)
        from nanofn import monitoring
        monitoring.record_event_duration_secs(monitoring.JAXPR_TRACE_EVENT,
                                              time.perf_counter() - start, fun_name=name)
        level = logging.WARNING if config.jax_log_compiles else logging.DEBUG
        if logger.isEnabledFor(level):
            from nanofn import stages
            logger.log(level, "%s", stages._compile_message(
                self, args, kwargs, static, avals, time.perf_counter() - start))
        if store and not any(isinstance(c, Tracer) for c in closed.consts):  # no leaked tracers
            self._cache[(in_tree, avals, static, core.trace_flags)] = compiled
            while len(self._cache) > max(int(config.nanofn_jit_cache_size), 1):
                try:  # the least recently used signature goes
                    self._cache.popitem(last=False)
                except KeyError:
                    break
        return compiled

    def _arg_names(self, args, kwargs, static):
        static_keys = {k for k, _ in static}
        params = list(self._signature.parameters) if self._signature is not None else []
        names = []
        for i, a in enumerate(args):
            if i in static_keys:
                continue
            base = params[i] if i < len(params) and \
                self._signature.parameters[params[i]].kind != inspect.Parameter.VAR_POSITIONAL \
                else f"args[{i}]"
            for path, _ in tree_flatten_with_path(a)[0]:
                names.append(base + keystr(path))
        for k in sorted(kwargs):
            if k in static_keys:
                continue
            for path, _ in tree_flatten_with_path(kwargs[k])[0]:
                names.append(k + keystr(path))
        return names

    def _cache_size(self):
        return len(self._cache)

    def clear_cache(self):
        """Drop every trace and compiled plan this function holds (JAX's name); the next
        call traces again.

        Example:
            >>> import nanofn
            >>> f = nanofn.jit(lambda x: x + 1)
            >>> _ = f(1.0)
            >>> f.clear_cache()
            >>> _ = f(1.0)
            >>> f.trace_count
            2
        """
        self._cache.clear()

    def _stage_key(self, args, kwargs):
        """`(static, in_tree, avals)` of a call with these arguments, which may be abstract
        (`ShapeDtypeStruct`, or anything with a shape and a dtype)."""
        static, dyn_args, dyn_kwargs = self._split(args, kwargs)
        leaves, in_tree = tree_flatten((dyn_args, dyn_kwargs))
        return static, in_tree, tuple(_abstract_aval(x) for x in leaves)

    def _entry(self, args, kwargs):
        """The cached `_Compiled` of this signature (traced now on a miss) and its key."""
        static, in_tree, avals = self._stage_key(args, kwargs)
        key = (in_tree, avals, static, core.trace_flags)
        compiled = self._cache.get(key)
        if compiled is None:
            compiled = self._compile(args, kwargs, static, in_tree, avals)
        return key, compiled

    @api_boundary
    def trace(self, *args, **kwargs):
        """Trace this function for these arguments (JAX's `jit(f).trace`): a
        `nanofn.stages.Traced` holding the jaxpr as traced, before simplification (what
        `make_jaxpr` shows). Arguments may be arrays, Python scalars or
        `ShapeDtypeStruct`s; static arguments are given as in a call. It traces each time
        (Python side effects in the function run); a new signature is cached, so a later
        call does not trace it again.

        Example:
            >>> import nanofn, nanofn.numpy as fnp
            >>> traced = nanofn.jit(lambda x: fnp.sin(x) * 2).trace(fnp.ones(3))
            >>> print(traced.jaxpr)
            { lambda ; a:f32[3]. let
                b:f32[3] = sin a
                c:f32[3] = mul b 2.0
              in (c) }
            >>> traced.out_info
            ShapeDtypeStruct(shape=(3,), dtype=float32)
        """
        from nanofn import stages
        static, in_tree, avals = self._stage_key(args, kwargs)
        key = (in_tree, avals, static, core.trace_flags)
        cached = self._cache.get(key)
        raw = []
        compiled = self._compile(args, kwargs, static, in_tree, avals, raw_box=raw,
                                 store=cached is None)
        return stages.Traced(self, key, cached or compiled, raw[0], args, kwargs)

    @api_boundary
    def lower(self, *args, **kwargs):
        """Lower this function for these arguments (JAX's `jit(f).lower`): a
        `nanofn.stages.Lowered` holding the simplified jaxpr that nanofn compiles (as
        `.as_text()`, or the `ClosedJaxpr` itself as `.compiler_ir()`). Arguments may be
        arrays, Python scalars or `ShapeDtypeStruct`s (no data needed); static arguments
        are given as in a call. The signature is traced once and cached: `.compile()`
        then builds its plan, and a later call with the same signature does not trace.

        Example:
            >>> import nanofn, nanofn.numpy as fnp
            >>> f = nanofn.jit(lambda x, y: x @ y)
            >>> lowered = f.lower(nanofn.ShapeDtypeStruct((2, 3), "float32"),
            ...                   nanofn.ShapeDtypeStruct((3, 4), "float32"))
            >>> lowered.cost_analysis()["flops"]
            48.0
            >>> compiled = lowered.compile()
            >>> compiled(fnp.ones((2, 3)), fnp.ones((3, 4))).shape
            (2, 4)
            >>> f.trace_count
            1
        """
        from nanofn import stages
        key, compiled = self._entry(args, kwargs)
        return stages.Lowered(self, key, compiled, args, kwargs)

    @api_boundary
    def eval_shape(self, *args, **kwargs):
        """The shapes and dtypes of this function's outputs for these arguments (JAX's
        `jit(f).eval_shape`): a pytree of `ShapeDtypeStruct`. Arguments may be arrays,
        Python scalars or `ShapeDtypeStruct`s; the signature is traced once and cached.

        Example:
            >>> import nanofn
            >>> f = nanofn.jit(lambda x: {"sum": x.sum(0), "x": x})
            >>> f.eval_shape(nanofn.ShapeDtypeStruct((2, 3), "float32"))["sum"]
            ShapeDtypeStruct(shape=(3,), dtype=float32)
        """
        _, compiled = self._entry(args, kwargs)
        return tree_unflatten(compiled.out_tree, [ShapeDtypeStruct(a.shape, a.dtype)
                                                  for a in compiled.closed.out_avals])

    def __get__(self, obj, objtype=None):  # support decorating methods
        return self if obj is None else functools.partial(self, obj)


_live_jit_functions: "weakref.WeakSet[JitFunction]" = weakref.WeakSet()


def _typecheck(closed, stage):
    """`jax_enable_checks`: every equation of a jaxpr jit is about to plan must be typed as
    its primitive's shape rule says (a transformation or simplification bug otherwise)."""
    from nanofn.errors import JaxprTypeError
    try:
        core.typecheck_jaxpr(closed.jaxpr)
    except (TypeError, ValueError) as err:
        raise JaxprTypeError(f"jax_enable_checks: the jaxpr {stage} fails its type check: "
                             f"{err}") from err


def _abstract_aval(x):
    """The aval of an argument leaf of `trace` / `lower`: a `ShapeDtypeStruct` (or any
    object with a shape and a dtype that is not an array) stands for an array of its
    shape and dtype; other leaves are read as a call reads them (without a copy)."""
    if (hasattr(x, "shape") and hasattr(x, "dtype")
            and not isinstance(x, (np.ndarray, np.generic, core.Array, Tracer))):
        return core.ShapedArray(tuple(x.shape), x.dtype)
    return get_aval(_leaf_to_value(x, []))


def clear_caches():
    """Drop the compiled traces of every jitted function (JAX's `jax.clear_caches`).

    Each jitted function keeps at most `config.nanofn_jit_cache_size` signatures (the least
    recently used go first); this empties them all, and each traces again on its next
    call. Numba's compiled kernels (in memory and on disk) are kept.

    Example:
        >>> import nanofn
        >>> f = nanofn.jit(lambda x: x * 2)
        >>> _ = f(1.0)
        >>> nanofn.clear_caches()
        >>> _ = f(1.0)
        >>> f.trace_count
        2
    """
    for fun in list(_live_jit_functions):
        fun.clear_cache()


def _check_static_args(signature, static_argnums, static_argnames):
    """Raise as JAX does for static arguments that the function cannot take."""
    kinds = [p.kind for p in signature.parameters.values()]
    P = inspect.Parameter
    if P.VAR_POSITIONAL not in kinds:
        n = sum(k in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD) for k in kinds)
        bad = [i for i in static_argnums if not isinstance(i, int) or not -n <= i < n]
        if bad:
            raise ValueError(f"jit: static_argnums={tuple(static_argnums)} includes {bad[0]!r}, "
                             f"but the function accepts only {n} positional argument(s)")
    if P.VAR_KEYWORD not in kinds:
        names = {name for name, p in signature.parameters.items()
                 if p.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY)}
        bad = sorted(set(static_argnames) - names)
        if bad:
            raise ValueError(f"jit: static_argnames={tuple(static_argnames)} names {bad}, which "
                             f"the function does not take (its parameters: {sorted(names)})")


def _as_tuple(x):
    if x is None:
        return ()
    return (x,) if isinstance(x, (int, str)) else tuple(x)


def _check_hashable(value, what):
    try:
        hash(value)
    except TypeError:
        raise ValueError(
            f"jit: static {what} must be hashable, got an unhashable {type(value).__name__} "
            f"({value!r:.60}). Pass a tuple instead of a list, or make it a traced (non-static) "
            "argument.") from None
    return value


def jit(fun: Callable | None = None, /, *, in_shardings: Any = None, out_shardings: Any = None,
        static_argnums: int | Sequence[int] | None = (),
        static_argnames: str | Sequence[str] | None = (),
        donate_argnums: int | Sequence[int] | None = (),
        donate_argnames: str | Sequence[str] | None = (), keep_unused: bool = False,
        device: Any = None, backend: str | None = None, inline: bool = False,
        compiler_options: dict | None = None) -> Any:
    """Compile `fun`: trace it once per argument signature and run the cached program.

    Args:
        fun: a pure function of arrays (pytrees of arrays).
        static_argnums: positions of arguments that are Python values (hashable); each new
            value triggers a new trace.
        static_argnames: names of keyword arguments that are static.
        donate_argnums, donate_argnames: accepted for JAX compatibility; ignored (the
            plan reuses its own buffers, and a caller's arrays are never written).
        in_shardings, out_shardings, device, backend: accepted for JAX compatibility:
            nanofn runs on this process's CPU.
        keep_unused, inline, compiler_options: accepted for JAX compatibility (XLA's
            settings); unused arguments cost nothing here.

    Returns:
        A function with `fun`'s signature. Its `trace_count` says how often it traced.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> f = nanofn.jit(lambda x: fnp.maximum(x * 2 - 1, 0))
        >>> f(fnp.arange(3.0))
        Array([0., 1., 3.], dtype=float32)
        >>> f.trace_count
        1
    """
    # unused (see Args): buffers are reused inside the plan, and there is one device
    del in_shardings, out_shardings, donate_argnums, donate_argnames, keep_unused, device
    del backend, inline, compiler_options
    static_argnums = () if static_argnums is None else static_argnums
    static_argnames = () if static_argnames is None else static_argnames
    if fun is None:
        return functools.partial(jit, static_argnums=static_argnums,
                                 static_argnames=static_argnames)
    return JitFunction(fun, static_argnums, static_argnames)


def make_jaxpr(fun: Callable, static_argnums: int | Sequence[int] = (),
               axis_env: Sequence[tuple[Any, int]] | None = None,
               return_shape: bool = False) -> Callable:
    """Return a function that traces `fun` and gives its jaxpr (a readable program).

    Args:
        fun: the function to trace.
        static_argnums: positions of arguments used as Python values, not traced.
        axis_env: `(name, size)` pairs binding axis names, so that collectives
            (`lax.psum(x, name)`, ...) trace outside `vmap` or `pmap`.
        return_shape: also return the outputs' shapes and dtypes (a pytree of
            `ShapeDtypeStruct`), as `(jaxpr, shapes)`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> print(nanofn.make_jaxpr(lambda x: fnp.sum(fnp.sin(x)))(fnp.zeros(3)))
        { lambda ; a:f32[3]. let
            b:f32[3] = sin a
            c:f32[] = reduce_sum[axes=(0,)] b
          in (c) }
        >>> _, shape = nanofn.make_jaxpr(lambda x: x[:2], return_shape=True)(fnp.zeros(3))
        >>> shape
        ShapeDtypeStruct(shape=(2,), dtype=float32)
    """
    static_argnums = _as_tuple(static_argnums)
    frames = [] if axis_env is None else list(axis_env)

    def make(*args, **kwargs):
        dyn = [a for i, a in enumerate(args) if i not in static_argnums]
        leaves, in_tree = tree_flatten((dyn, kwargs))
        avals = [get_aval(_leaf_to_value(x)) if not hasattr(x, "shape") or
                 isinstance(x, (np.ndarray, core.Array, Tracer, np.generic))
                 else core.ShapedArray(x.shape, x.dtype) for x in leaves]

        out_tree = []

        def flat_fun(*flat):
            dyn_args, dyn_kwargs = tree_unflatten(in_tree, flat)
            it = iter(dyn_args)
            full = [a if i in static_argnums else next(it) for i, a in enumerate(args)]
            out, tree = tree_flatten(fun(*full, **dyn_kwargs))
            out_tree.append(tree)
            return out

        from nanofn import _named_axes
        with contextlib.ExitStack() as stack:
            for name, size in frames:
                stack.enter_context(_named_axes.extend_axis_env(
                    _named_axes.AxisFrame(name, size)))
            closed = core.trace_to_jaxpr(flat_fun, avals)
        if not return_shape:
            return closed
        shapes = [ShapeDtypeStruct(a.shape, a.dtype) for a in closed.out_avals]
        return closed, tree_unflatten(out_tree[0], shapes)

    return api_boundary(make)


def _is_float0(x):
    """An integer input's gradient (JAX's float0): a numpy array, as `grad` returns it."""
    return isinstance(x, np.ndarray) and x.dtype == float0


class ShapeDtypeStruct:
    """A shape and dtype standing in for an array (what `eval_shape` returns).

    `sharding` and `weak_type` are JAX's keyword arguments, kept as attributes (nanofn has
    one device, and its arrays carry no weak type).

    Example:
        >>> import nanofn
        >>> s = nanofn.ShapeDtypeStruct((3, 2), "float32")
        >>> s.update(shape=(4,)), len(s), s.ndim
        (ShapeDtypeStruct(shape=(4,), dtype=float32), 3, 2)
    """

    __slots__ = ("shape", "dtype", "sharding", "weak_type")

    def __init__(self, shape, dtype, *, sharding=None, weak_type=False):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.sharding = sharding
        self.weak_type = bool(weak_type)

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: math.prod(self.shape))

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def update(self, **kwargs):
        """A copy with some of `shape`, `dtype`, `sharding`, `weak_type` replaced."""
        fields = {"shape": self.shape, "dtype": self.dtype, "sharding": self.sharding,
                  "weak_type": self.weak_type}
        unknown = set(kwargs) - set(fields)
        if unknown:
            raise TypeError(f"ShapeDtypeStruct.update: unknown fields {sorted(unknown)}")
        fields.update(kwargs)
        return ShapeDtypeStruct(fields.pop("shape"), fields.pop("dtype"), **fields)

    def __repr__(self):
        weak = ", weak_type=True" if self.weak_type else ""
        return f"ShapeDtypeStruct(shape={self.shape}, dtype={self.dtype.name}{weak})"

    def __eq__(self, other):
        return isinstance(other, ShapeDtypeStruct) and (self.shape, self.dtype, self.weak_type) \
            == (other.shape, other.dtype, other.weak_type)

    def __hash__(self):
        return hash((self.shape, self.dtype, self.weak_type))


@api_boundary
def eval_shape(fun: Callable, *args: Any, **kwargs: Any) -> Any:
    """The shapes and dtypes of `fun`'s outputs, computed without doing the arithmetic.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.eval_shape(lambda x: x @ x.T, nanofn.ShapeDtypeStruct((3, 2), "float32"))
        ShapeDtypeStruct(shape=(3, 3), dtype=float32)
    """
    leaves, in_tree = tree_flatten((args, kwargs))
    avals = [core.ShapedArray(x.shape, x.dtype) if hasattr(x, "shape") and hasattr(x, "dtype")
             else get_aval(x) for x in leaves]
    out_tree_box = []

    def flat_fun(*flat):
        a, k = tree_unflatten(in_tree, flat)
        out_flat, out_tree = tree_flatten(fun(*a, **k))
        out_tree_box.append(out_tree)
        return out_flat

    closed = core.trace_to_jaxpr(flat_fun, avals)
    return tree_unflatten(out_tree_box[0], [ShapeDtypeStruct(a.shape, a.dtype)
                                            for a in closed.out_avals])
