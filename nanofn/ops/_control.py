"""Control flow as primitives: `cond`, `switch`, `while_loop`, `fori_loop`, `scan`, `map`.

Python's `if`, `while` and `for` run at trace time, so under `jit` they cannot depend on
traced values, and a Python loop is unrolled into one equation per step. The functions
here stage the control flow itself. Each one traces the user's functions (the branches,
the loop body) once, on the abstract values of the operands, into jaxprs, and binds one
*higher-order primitive* whose params hold those jaxprs:

    cond   [branches=(jaxpr_0, jaxpr_1, ...)]                 index, *operands
    while  [cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts]  *consts, *carry
    scan   [jaxpr, num_consts, num_carry, length, reverse]    *consts, *carry, *xs

Values a function closes over (a traced value of an enclosing transformation, or an
array) become explicit operands of the primitive, so transformations see them and
gradients flow to them, as in autodidax's `cond`.

Every rule works by building new jaxprs from the old ones and binding the same primitive
again. The JVP of a loop is a loop over the JVP of its body (traced with
`nanofn._ad.jvp_flat`); the VJP of `cond` is a `cond` over the branches' pullbacks
(traced with `nanofn._ad.vjp_flat`). The VJP of `scan` traces the pullback of one step
and splits it (a partial evaluation): the equations that need only primal values run
in a forward scan that records, per step, the values the rest reads (its residuals);
the rest runs in a scan in the opposite direction that reads those residuals instead
of recomputing the step, summing the constants' cotangents in its carry. When reverse
mode is recording the user's `scan` call, the residuals are outputs of that scan
itself, so the forward pass runs once. A `while_loop`
has no reverse rule (its trip count is unknown), which is why `fori_loop` with static
bounds is a `scan`. Batching vmaps the jaxprs; a batched predicate turns `cond` into a
select over every branch and a `while_loop` into one that runs until every lane is done.

The `impl` rules run a body's jaxpr as a compiled `Plan` (the same straight-line
program `jit` runs, simplified, and fused from a body's second impl call on), built
once per body and run once per step on numpy arrays.
"""

from __future__ import annotations

import builtins

import numpy as np

from nanofn import _core as core
from nanofn._core import ClosedJaxpr, Jaxpr, Primitive, ShapedArray, Tracer, Var, get_aval
from nanofn._tree import structure_difference
from nanofn._traceback_util import api_boundary
from nanofn.ops import _base
from nanofn.tree_util import (keystr, tree_flatten, tree_flatten_with_path,
                              tree_unflatten, treedef_children)

__all__ = ["cond", "switch", "while_loop", "fori_loop", "scan", "map", "associative_scan",
           "cumlogsumexp"]

# ======================================================================== jaxpr helpers


class _Body(ClosedJaxpr):
    """A jaxpr held in a control-flow primitive's params. Its constants are concrete
    (traced values are always operands).

    The impl rules run it as a compiled `Plan`, as `jit` does: simplified (constant
    folding, common subexpressions, dead code) on the first call of an impl, and from the
    second impl call on (a loop inside a function that is called again: a jitted step)
    also with its elementwise chains fused into numba kernels. With background compiles
    on (`nanofn.config.nanofn_background_compile`), that fused plan is built in
    `nanofn._background`'s thread, as a jitted function's is, and the calls run the
    simplified plan until it is ready: no loop waits for numba. The plan is built once
    and kept on the body, which jit's cache keeps alive with the jaxpr holding it."""

    __slots__ = ("_plan", "_hoisted", "_calls", "_invariant", "_fusing")

    def __init__(self, jaxpr, consts=()):
        super().__init__(jaxpr, consts)
        self._plan = self._hoisted = None
        self._calls = 0
        self._invariant = 0
        self._fusing = None  # (background job, its result box) while the fused plan builds

    def runner(self):
        """The compiled plan: `plan(list_of_numpy_args) -> list of outputs`. Each impl
        call asks for it once (the count decides when to fuse), then runs it per step."""
        return self.loop_runner(0)[1]

    def loop_runner(self, invariant):
        """`(hoisted, plan)` for a loop whose first `invariant` inputs are the same on
        every step (scan's constants). The equations that depend on those inputs alone
        are taken out of the body (loop-invariant code motion): `hoisted(those inputs)`
        computes their values once, before the loop (None when there are none), and
        `plan` takes them as inputs right after those inputs."""
        from nanofn._config import config
        self._calls += 1
        fusing = self._fusing
        if fusing is not None and fusing[0].done.is_set():
            self._fusing = None
            built = fusing[1]
            if built and built[2] == self._invariant:  # else: a failed build stays unfused
                self._hoisted, self._plan = built[0], built[1]
        fuse = self._calls >= 2 and config.nanofn_use_kernels
        if self._plan is None or self._invariant != invariant:
            self._hoisted, self._plan = self._build(invariant, fuse)
            self._invariant = invariant
        elif self._calls == 2 and fuse:
            if config.nanofn_background_compile and not _in_background():
                from nanofn import _background
                box: list = []
                job = _background.later(
                    lambda: box.extend(self._build(invariant, True) + (invariant,)))
                self._fusing = (job, box)
            else:
                self._hoisted, self._plan = self._build(invariant, True)
        return self._hoisted, self._plan

    def _build(self, invariant, fuse):
        """`(hoisted, plan)`: the body simplified, fused with `fuse`, and split."""
        from nanofn._jit import Plan, simplify  # the compiled evaluator jit uses
        closed = _merge_padded_sums(simplify(self))
        if fuse:
            from nanofn._fusion import fuse as fused
            closed = fused(closed)
        hoisted, closed = _hoist_invariant(closed, invariant)
        return (None if hoisted is None else Plan(hoisted)), Plan(closed)

    def run(self, args):
        """Evaluate on numpy arrays, returning numpy arrays (one-shot impl calls)."""
        return [np.asarray(o) for o in self.runner()(list(args))]


def _in_background() -> bool:
    """Whether this is `nanofn._background`'s thread (which builds plans synchronously)."""
    import threading

    from nanofn import _background
    return threading.current_thread() is _background._worker


def _hoist_invariant(closed: ClosedJaxpr, invariant: int):
    """Split `closed` into `(hoisted, rest)`: `hoisted` computes, from the first
    `invariant` inputs alone, the values of the equations that read nothing else (and
    have no side effects); `rest` is the body with those values as inputs after the
    first `invariant`. `(None, closed)` when there is nothing to hoist."""
    jaxpr = closed.jaxpr
    if not invariant:
        return None, closed
    known = {id(v) for v in jaxpr.invars[:invariant]} | {id(v) for v in jaxpr.constvars}
    hoisted, rest = [], []
    for e in jaxpr.eqns:
        if not core.has_effects(e) and builtins.all(
                type(x) is not Var or id(x) in known for x in e.invars):
            hoisted.append(e)
            known.update(id(v) for v in e.outvars)
        else:
            rest.append(e)
    made = {id(v): v for e in hoisted for v in e.outvars}
    used = {id(x) for e in rest for x in e.invars} | {id(x) for x in jaxpr.outvars}
    values = [v for i, v in made.items() if i in used]
    if not values:
        return None, closed
    head = jaxpr.invars[:invariant]
    lifted = Jaxpr(jaxpr.constvars, head, hoisted, values)
    body = Jaxpr(jaxpr.constvars, head + values + jaxpr.invars[invariant:], rest,
                 jaxpr.outvars)
    return (ClosedJaxpr(core.dce_jaxpr(lifted), closed.consts),
            ClosedJaxpr(core.dce_jaxpr(body), closed.consts))


def _zero_pad_piece(eqn):
    """`(axis, lo)` if `eqn` pads its operand with zeros along one axis only (no interior
    or negative padding): the transpose of a slice. None otherwise."""
    value = eqn.invars[1]
    if type(value) is not core.Literal or np.asarray(value.val) != 0:
        return None
    padded = [(a, lo) for a, (lo, hi, interior) in enumerate(eqn.params["padding_config"])
              if lo or hi or interior]
    if len(padded) != 1:
        return None
    axis, lo = padded[0]
    _, hi, interior = eqn.params["padding_config"][axis]
    if interior or lo < 0 or hi < 0 or type(eqn.invars[0]) is not Var:
        return None
    return axis, lo


def _merge_padded_sums(closed: ClosedJaxpr) -> ClosedJaxpr:
    """Rewrite sums of zero-padded pieces that tile an axis as one `concatenate`.

    The gradient of slicing an array into parts (a GRU's gates) pads each part's
    cotangent back to the full shape and adds them: n allocations and n - 1 passes over
    the full array. When the pieces are disjoint and cover the axis, the sum is their
    concatenation: one pass. Other equations are unchanged; pads left unused are pruned."""
    jaxpr = closed.jaxpr
    pieces: dict[int, tuple] = {}  # id(var) -> (axis, ((start, stop, piece var), ...))
    eqns, changed = [], False
    for e in jaxpr.eqns:
        name = e.primitive.name
        if name == "pad":
            found = _zero_pad_piece(e)
            if found is not None:
                axis, lo = found
                n = e.invars[0].aval.shape[axis]
                pieces[id(e.outvars[0])] = (axis, ((lo, lo + n, e.invars[0]),))
        elif name == "add" and builtins.all(type(x) is Var and id(x) in pieces
                                             for x in e.invars):
            (ax_a, pa), (ax_b, pb) = (pieces[id(x)] for x in e.invars)
            a, b = e.invars
            merged = tuple(sorted(pa + pb, key=lambda p: p[0]))
            disjoint = builtins.all(p[1] <= q[0] for p, q in zip(merged, merged[1:]))
            if ax_a == ax_b and a.aval == b.aval == e.outvars[0].aval and disjoint:
                pieces[id(e.outvars[0])] = (ax_a, merged)
                full = e.outvars[0].aval.shape[ax_a]
                tiles = merged[0][0] == 0 and merged[-1][1] == full and builtins.all(
                    p[1] == q[0] for p, q in zip(merged, merged[1:]))
                if tiles:
                    from nanofn.ops._shape import concatenate_p
                    eqns.append(core.Eqn(concatenate_p, [p[2] for p in merged],
                                         {"dimension": ax_a}, e.outvars))
                    changed = True
                    continue
        eqns.append(e)
    if not changed:
        return closed
    return ClosedJaxpr(core.dce_jaxpr(Jaxpr(jaxpr.constvars, jaxpr.invars, eqns,
                                            jaxpr.outvars)), closed.consts)


def _eval(body: ClosedJaxpr, args):
    """Evaluate a body by binding its equations, so transformations see them."""
    return core.eval_jaxpr(body.jaxpr, body.consts, *args)


def _make_body(fun_flat, avals) -> _Body:
    """Trace a flat function (used by rules; it closes over no traced values)."""
    closed = core.trace_to_jaxpr(lambda *a: list(fun_flat(*a)), avals)
    if any(isinstance(c, Tracer) for c in closed.consts):
        raise core.UnexpectedTracerError("control flow: a rule's body closed over a traced "
                                         "value (internal error)")
    return _Body(core.dce_jaxpr(closed.jaxpr), closed.consts)


def _without_effects(body: _Body) -> _Body:
    """The body with side effects (debug printing) removed, also inside nested control
    flow. Rules re-run a body to differentiate it; the user's prints should run once."""
    def strip(param):
        if isinstance(param, _Body):
            return _without_effects(param)
        if isinstance(param, tuple) and param and all(isinstance(b, _Body) for b in param):
            return tuple(_without_effects(b) for b in param)
        return param

    eqns = [core.Eqn(e.primitive, e.invars, {k: strip(v) for k, v in e.params.items()},
                     e.outvars)
            for e in body.jaxpr.eqns if not (core.has_effects(e) and not e.outvars)]
    j = body.jaxpr
    return _Body(Jaxpr(j.constvars, j.invars, eqns, j.outvars), body.consts)


class _Traced:
    """A user function traced to a jaxpr: `body(*consts, *args) -> flat outputs`."""

    __slots__ = ("body", "consts", "out_tree")

    def __init__(self, body, consts, out_tree):
        self.body, self.consts, self.out_tree = body, consts, out_tree

    out_avals = property(lambda self: self.body.out_avals)


def _trace_user(fun, avals, what) -> _Traced:
    """Trace `fun(*flat_args) -> pytree` and move its constants into leading inputs."""
    box = []

    def flat_fun(*args):
        out = fun(*args)
        leaves, tree = tree_flatten(out)
        for leaf in leaves:
            if not core.is_array_like(leaf):
                raise TypeError(f"{what} must return arrays (pytrees of arrays), got a "
                                f"{type(leaf).__name__}: {leaf!r:.80}")
        box.append(tree)
        return leaves

    closed = core.trace_to_jaxpr(flat_fun, avals)
    j = closed.jaxpr
    body = _Body(core.dce_jaxpr(Jaxpr([], list(j.constvars) + list(j.invars), j.eqns, j.outvars)))
    return _Traced(body, list(closed.consts), box[0])


def _to_operand(x, what):
    """An operand leaf as an array or tracer (Python scalars take their default dtype)."""
    if isinstance(x, (Tracer, core.Array)):
        return x
    if isinstance(x, (np.ndarray, np.generic)):
        return core.Array(np.asarray(x))
    dtype = core._PY_SCALAR_DTYPE.get(type(x))
    if dtype is not None:
        return core.Array(np.asarray(x, dtype))
    raise TypeError(f"{what}: every leaf must be an array or a Python scalar, got a "
                    f"{type(x).__name__}: {x!r:.80}")


def _flatten_operands(tree, what):
    leaves, treedef = tree_flatten(tree)
    return [_to_operand(x, what) for x in leaves], treedef


class _AvalRepr:
    """Shows an aval inside a printed pytree (`f32[3]` rather than `'f32[3]'`)."""

    def __init__(self, aval):
        self.aval = aval

    def __repr__(self):
        return self.aval.str_short()


def _types_str(tree, avals):
    return repr(tree_unflatten(tree, [_AvalRepr(a) for a in avals]))


def _check_same_types(what, name_a, tree_a, avals_a, name_b, tree_b, avals_b, example=None):
    """Raise a TypeError naming both structures or types when they differ."""
    if tree_a != tree_b:
        diff = structure_difference(tree_a, tree_b, f"{what} must have the same tree structure",
                                    name_a, name_b)
        raise TypeError(diff)
    if list(avals_a) != list(avals_b):
        lines = [f"{what} must have identical types (shapes and dtypes), but they differ:"]
        paths = None
        if example is not None:
            paths = [keystr(p) for p, _ in tree_flatten_with_path(example)[0]]
        for i, (a, b) in enumerate(zip(avals_a, avals_b)):
            if a != b:
                where = paths[i] if paths is not None and i < len(paths) else f"leaf {i}"
                lines.append(f"  at {where or 'the root'}: {name_a} has {a.str_short()}, "
                             f"{name_b} has {b.str_short()}")
        lines.append(f"  {name_a}: {_types_str(tree_a, avals_a)}")
        lines.append(f"  {name_b}: {_types_str(tree_b, avals_b)}")
        raise TypeError("\n".join(lines))


# ------------------------------------------------------------------------ rule helpers


def _is_float(aval) -> bool:
    return np.issubdtype(aval.dtype, np.inexact)


def _zeros(aval):
    return _base.full(aval.shape, 0, aval.dtype)


def _fit(ct, aval):
    """A cotangent with exactly the shape and dtype of `aval` (None stays None)."""
    if ct is None or get_aval(ct) == aval:
        return ct
    from nanofn._ad import unbroadcast
    return unbroadcast(ct, aval)


def _or_zeros(x, aval):
    return _zeros(aval) if x is None else x


def _body_jvp(body, primals, tangents):
    """Outputs and output tangents (zeros instantiated) of a body, on traced values."""
    from nanofn._ad import jvp_flat
    return jvp_flat(lambda *a: _eval(body, a), list(primals), list(tangents))


def _body_vjp(body, primals, cts):
    """Input cotangents (None for zero) of a body, given output cotangents (None = zero)."""
    from nanofn._ad import vjp_flat
    _, pullback, _ = vjp_flat(lambda *a: (_eval(body, a), None), list(primals))
    return pullback(list(cts))


def _split(seq, *sizes):
    out, start = [], 0
    for n in sizes:
        out.append(list(seq[start:start + n]))
        start += n
    out.append(list(seq[start:]))
    return out


def _batched_outs(body, in_batched):
    """Which outputs of `body` depend on a batched input (what vmap makes batched)."""
    env = {id(v) for v, b in zip(body.jaxpr.invars, in_batched) if b}
    for eqn in body.jaxpr.eqns:
        if any(type(x) is Var and id(x) in env for x in eqn.invars):
            env.update(id(v) for v in eqn.outvars)
    return [type(v) is Var and id(v) in env for v in body.jaxpr.outvars]


def _batched_aval(aval, size):
    return ShapedArray((size,) + aval.shape, aval.dtype)


def _bcast(x, size):
    """Give an unbatched value a leading batch axis of `size`."""
    shape = tuple(get_aval(x).shape)
    return _base.broadcast_in_dim(x, (size,) + shape, tuple(range(1, len(shape) + 1)))


def _vmapped(body, in_batched, out_batched, size):
    """`body` as a Python function vmapped over axis 0 of the batched inputs; outputs
    marked batched come back with a leading batch axis, the others without one."""
    from nanofn._batching import vmap_flat
    in_dims = [0 if b else None for b in in_batched]
    out_dims = [0 if b else None for b in out_batched]
    return lambda *args: vmap_flat(lambda *a: _eval(body, a), list(args), in_dims, out_dims,
                                   size)


def _vmap_body(body, in_batched, out_batched, size) -> _Body:
    """The jaxpr of `body` vmapped: batched inputs and outputs get a leading axis."""
    avals = [_batched_aval(a, size) if b else a for a, b in zip(body.in_avals, in_batched)]
    return _make_body(_vmapped(body, in_batched, out_batched, size), avals)


def _axis_size(vals, dims):
    for v, d in zip(vals, dims):
        if d is not None:
            return get_aval(v).shape[d]
    raise ValueError("control flow batching rule called without a batched operand")


def _as_batched(x, d, size, want):
    """Move the batch axis of `x` to the front, or add one if `want` and it has none."""
    if d is not None:
        return _base.bdim_to_front(x, d)
    return _bcast(x, size) if want else x


# ======================================================================== cond / switch

cond_p = Primitive("cond", multiple_results=True)
# Control flow has side effects when a body it holds has (debug.print): then jit must not
# drop or fold it.
cond_p.effectful = lambda params: any(core.jaxpr_has_effects(b.jaxpr) for b in params["branches"])


def _cond_impl(index, *args, branches):
    i = builtins.min(builtins.max(int(index), 0), len(branches) - 1)
    return branches[i].run(args)


def _cond_abstract_eval(index, *avals, branches):
    if index.shape != () or not np.issubdtype(index.dtype, np.integer):
        raise TypeError(f"cond: the branch index must be an integer scalar, got "
                        f"{index.str_short()}")
    expected = branches[0].in_avals
    if list(avals) != list(expected):
        raise TypeError("cond: operand types "
                        f"({', '.join(a.str_short() for a in avals)}) do not match the "
                        f"branches' inputs ({', '.join(a.str_short() for a in expected)})")
    return branches[0].out_avals


def _cond_jvp(primals, tangents, *, branches):
    index, *args = primals
    arg_tangents = tangents[1:]
    nonzero = [t is not None for t in arg_tangents]
    out_float = [_is_float(a) for a in branches[0].out_avals]
    nz_tangents = [t for t in arg_tangents if t is not None]
    avals = [get_aval(a) for a in args] + [get_aval(t) for t in nz_tangents]
    n = len(args)

    def jvp_branch(branch):
        def f(*a):
            it = iter(a[n:])
            outs, t_outs = _body_jvp(branch, a[:n], [next(it) if z else None for z in nonzero])
            return outs + [t for t, fl in zip(t_outs, out_float) if fl]
        return _make_body(f, avals)

    res = cond_p.bind(index, *args, *nz_tangents,
                      branches=tuple(jvp_branch(b) for b in branches))
    outs, rest = res[:len(out_float)], iter(res[len(out_float):])
    return outs, [next(rest) if fl else None for fl in out_float]


def _cond_vjp(cts, primals, outs, needs, *, branches):
    del outs  # unused: each pullback branch recomputes what it needs
    index, *args = primals
    out_avals = branches[0].out_avals
    in_avals = [get_aval(a) for a in args]
    ct_idx = [i for i, (c, a) in enumerate(zip(cts, out_avals)) if c is not None and _is_float(a)]
    want = [bool(needs[1 + i]) and _is_float(a) for i, a in enumerate(in_avals)]
    if not ct_idx or not any(want):
        return [None] * len(primals)
    ct_vals = [_fit(cts[i], out_avals[i]) for i in ct_idx]
    n = len(args)
    avals = in_avals + [out_avals[i] for i in ct_idx]

    def vjp_branch(branch):
        branch = _without_effects(branch)

        def f(*a):
            full = [None] * len(out_avals)
            for i, c in zip(ct_idx, a[n:]):
                full[i] = c
            g = _body_vjp(branch, a[:n], full)
            return [_or_zeros(_fit(g[i], in_avals[i]), in_avals[i]) for i in range(n) if want[i]]
        return _make_body(f, avals)

    res = iter(cond_p.bind(index, *args, *ct_vals,
                           branches=tuple(vjp_branch(b) for b in branches)))
    return [None] + [next(res) if w else None for w in want]


def _cond_batch(vals, dims, *, branches):
    index, *args = vals
    index_dim, *arg_dims = dims
    size = _axis_size(vals, dims)
    arg_b = [d is not None for d in arg_dims]
    if index_dim is None:
        out_b = [builtins.any(bs) for bs in zip(*[_batched_outs(b, arg_b) for b in branches])]
        moved = [_as_batched(x, d, size, False) for x, d in zip(args, arg_dims)]
        new = tuple(_vmap_body(b, arg_b, out_b, size) for b in branches)
        outs = cond_p.bind(index, *moved, branches=new)
        return outs, [0 if b else None for b in out_b]
    # A batched index: every branch runs on every lane, then each lane picks its result.
    index = _base.bdim_to_front(index, index_dim)
    moved = [_as_batched(x, d, size, False) for x, d in zip(args, arg_dims)]
    n_out = len(branches[0].out_avals)
    results = []
    for branch in branches:
        results.append(_vmapped(branch, arg_b, [True] * n_out, size)(*moved))
    selected = []
    for j in range(n_out):
        shape = tuple(get_aval(results[0][j]).shape)
        which = _base.broadcast_in_dim(index, shape, (0,))
        selected.append(_base.select_n_p.bind(which, *[r[j] for r in results]))
    return selected, [0] * n_out


cond_p.impl = _cond_impl
cond_p.abstract_eval = _cond_abstract_eval
cond_p.jvp = _cond_jvp
cond_p.vjp_joint = _cond_vjp
cond_p.batch = _cond_batch

_NO_OPERAND = object()


def _bind_cond(what, index, funs, names, operands, ref=0):
    """Trace every branch, check they agree with `funs[ref]`, and bind `cond_p`."""
    ops, in_tree = _flatten_operands(tuple(operands), f"{what} operands")
    avals = [get_aval(x) for x in ops]
    traced = [_trace_user(lambda *a, f=f: f(*tree_unflatten(in_tree, a)), avals,
                          f"{what}: {name}") for f, name in zip(funs, names)]
    base = traced[ref]
    for k, t in enumerate(traced):
        if k != ref:
            _check_same_types(f"{what}: {names[ref]} and {names[k]} output", names[ref],
                              base.out_tree, base.out_avals, names[k], t.out_tree, t.out_avals)
    # Every branch takes every branch's constants (ignoring the others'), then the operands.
    consts = [c for t in traced for c in t.consts]
    bodies = []
    for k, t in enumerate(traced):
        j = t.body.jaxpr
        own = len(t.consts)
        before = [Var(get_aval(c)) for tt in traced[:k] for c in tt.consts]
        after = [Var(get_aval(c)) for tt in traced[k + 1:] for c in tt.consts]
        invars = before + j.invars[:own] + after + j.invars[own:]
        bodies.append(_Body(Jaxpr([], invars, j.eqns, j.outvars)))
    outs = cond_p.bind(index, *consts, *ops, branches=tuple(bodies))
    return tree_unflatten(base.out_tree, outs)


def _scalar_aval(x, what):
    try:
        return get_aval(x)
    except TypeError:
        raise TypeError(f"{what} must be a scalar array or Python scalar, got "
                        f"{type(x).__name__}: {x!r:.80}") from None


@api_boundary
def cond(pred, true_fun, false_fun, *operands, operand=_NO_OPERAND):
    """Run `true_fun(*operands)` if `pred` is true, else `false_fun(*operands)`.

    Unlike a Python `if`, this is staged: under `jit` both branches are traced and the
    choice happens at run time; under `vmap` with a batched `pred` both branches run and
    each lane selects its result. Both branches must return the same pytree structure
    with the same shapes and dtypes. Differentiable in both modes (the gradient flows
    through the branch that was taken).

    Args:
        pred: boolean (or integer, nonzero meaning true) scalar.
        true_fun: function of `*operands` returning a pytree of arrays.
        false_fun: function with the same signature and output types as `true_fun`.
        *operands: pytrees of arrays passed to the chosen branch.
        operand: the older single-operand form (`cond(pred, t, f, operand=x)`).

    Returns:
        The output of the chosen branch.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> f = nanofn.jit(lambda x: nanofn.lax.cond(x > 0, fnp.sin, fnp.cos, x))
        >>> print(round(float(f(1.0)), 4), round(float(f(-1.0)), 4))
        0.8415 0.5403
    """
    if operand is not _NO_OPERAND:
        if operands:
            raise TypeError("cond: pass the operands either positionally or as operand=, "
                            "not both")
        operands = (operand,)
    if not callable(true_fun) or not callable(false_fun):
        raise TypeError("cond: true_fun and false_fun must be callable, got "
                        f"{type(true_fun).__name__} and {type(false_fun).__name__}")
    aval = _scalar_aval(pred, "cond: pred")
    if aval.shape != ():
        raise TypeError(f"cond: pred must be a scalar, got {aval.str_short()}; for an "
                        "elementwise choice use nanofn.numpy.where or lax.select")
    pred = _to_operand(pred, "cond: pred")
    if aval.dtype == bool:
        index = _base.convert_element_type(pred, np.int32)
    elif aval.dtype.kind in "iuf":  # a number is true when nonzero (NaN too), as in JAX
        index = _base.convert_element_type(_base.ne_p.bind(pred, _base._c(pred, 0)), np.int32)
    else:
        raise TypeError(f"cond: pred must be a boolean or real number scalar, got "
                        f"{aval.str_short()}; compare it first (e.g. x > 0)")
    # Branch 0 runs when pred is false; errors name true_fun first, as JAX's do.
    return _bind_cond("cond", index, (false_fun, true_fun), ("false_fun", "true_fun"),
                      operands, ref=1)


@api_boundary
def switch(index, branches, *operands, operand=_NO_OPERAND):
    """Run `branches[index](*operands)`, with `index` clamped to `[0, len(branches) - 1]`.

    Args:
        index: integer scalar choosing the branch; out-of-range values are clamped, as in
            JAX.
        branches: sequence of functions of `*operands` with identical output types.
        *operands: pytrees of arrays passed to the chosen branch.
        operand: the older single-operand form.

    Returns:
        The output of the chosen branch.

    Example:
        >>> import nanofn
        >>> fs = [lambda x: x + 1, lambda x: x * 10, lambda x: -x]
        >>> [int(nanofn.lax.switch(i, fs, 5)) for i in (0, 1, 2, 7)]
        [6, 50, -5, -5]
    """
    if operand is not _NO_OPERAND:
        if operands:
            raise TypeError("switch: pass the operands either positionally or as operand=, "
                            "not both")
        operands = (operand,)
    try:
        branches = tuple(branches)
    except TypeError:
        raise TypeError(f"switch: branches must be a sequence of callables, got "
                        f"{type(branches).__name__}") from None
    if not branches:
        raise ValueError("switch: branches must be a non-empty sequence of callables")
    for i, b in enumerate(branches):
        if not callable(b):
            raise TypeError(f"switch: branches[{i}] is a {type(b).__name__}, not a callable")
    aval = _scalar_aval(index, "switch: index")
    if aval.shape != ():
        raise TypeError(f"switch: index must be a scalar, got {aval.str_short()}")
    if not np.issubdtype(aval.dtype, np.integer):
        raise TypeError(f"switch: index must be an integer scalar, got {aval.str_short()}")
    if len(branches) == 1:
        return branches[0](*operands)
    index = _base.convert_element_type(_to_operand(index, "switch: index"), np.int32)
    index = _base.max_p.bind(_base.min_p.bind(index, np.asarray(len(branches) - 1, np.int32)),
                             np.asarray(0, np.int32))
    names = tuple(f"branches[{i}]" for i in range(len(branches)))
    return _bind_cond("switch", index, branches, names, operands)


# ======================================================================== while_loop

while_p = Primitive("while", multiple_results=True)
while_p.effectful = lambda params: (core.jaxpr_has_effects(params["cond_jaxpr"].jaxpr) or
                                    core.jaxpr_has_effects(params["body_jaxpr"].jaxpr))


def _while_impl(*args, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    cconsts, bconsts, carry = _split(args, cond_nconsts, body_nconsts)
    (ctest, test), (cstep, step) = (cond_jaxpr.loop_runner(cond_nconsts),
                                    body_jaxpr.loop_runner(body_nconsts))
    if ctest is not None:  # what depends on the constants alone, computed once
        cconsts = [*cconsts, *ctest(list(cconsts))]
    if cstep is not None:
        bconsts = [*bconsts, *cstep(list(bconsts))]
    (test, test_done), (step, step_done) = test.stepper(), step.stepper()
    try:
        while test([*cconsts, *carry])[0]:
            carry = step([*bconsts, *carry])
    finally:
        test_done()
        step_done()
    return [np.asarray(c) for c in carry]


def _while_abstract_eval(*avals, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    cconsts, bconsts, carry = _split(avals, cond_nconsts, body_nconsts)
    if cconsts + carry != list(cond_jaxpr.in_avals) or \
            bconsts + carry != list(body_jaxpr.in_avals):
        raise TypeError("while: operand types "
                        f"({', '.join(a.str_short() for a in avals)}) do not match the "
                        "cond and body jaxprs' inputs")
    return body_jaxpr.out_avals


def _while_jvp(primals, tangents, *, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    cconsts, bconsts, carry = _split(primals, cond_nconsts, body_nconsts)
    _, bconst_t, carry_t = _split(tangents, cond_nconsts, body_nconsts)
    carry_avals = [get_aval(c) for c in carry]
    # A carry's tangent may become nonzero on any step: give every float carry one.
    carry_float = [_is_float(a) for a in carry_avals]
    carry_t = [_or_zeros(t, a) for t, a, fl in zip(carry_t, carry_avals, carry_float) if fl]
    bnz = [t is not None for t in bconst_t]
    bconst_t = [t for t in bconst_t if t is not None]
    nb, nk = len(bconsts), len(carry)
    body_avals = ([get_aval(c) for c in bconsts] + [get_aval(t) for t in bconst_t] +
                  carry_avals + [get_aval(t) for t in carry_t])

    def body(*a):
        bc, bct, k, kt = _split(a, nb, len(bconst_t), nk)
        bct, kt = iter(bct), iter(kt)
        outs, t_outs = _body_jvp(body_jaxpr, bc + k,
                                 [next(bct) if z else None for z in bnz] +
                                 [next(kt) if fl else None for fl in carry_float])
        return outs + [t for t, fl in zip(t_outs, carry_float) if fl]

    def cond(*a):
        return _eval(cond_jaxpr, a[:cond_nconsts + nk])

    cond_avals = [get_aval(c) for c in cconsts] + carry_avals + [get_aval(t) for t in carry_t]
    res = while_p.bind(*cconsts, *bconsts, *bconst_t, *carry, *carry_t,
                       cond_jaxpr=_make_body(cond, cond_avals),
                       body_jaxpr=_make_body(body, body_avals),
                       cond_nconsts=cond_nconsts, body_nconsts=nb + len(bconst_t))
    outs, rest = res[:nk], iter(res[nk:])
    return outs, [next(rest) if fl else None for fl in carry_float]


_WHILE_VJP_ERROR = (
    "Reverse-mode differentiation does not work for lax.while_loop with a dynamic trip "
    "count (nor for fori_loop with traced bounds, which is a while_loop); use lax.scan "
    "or fori_loop with static bounds (Python ints). Forward mode (jvp, jacfwd) works.")


def _while_vjp(cts, primals, outs, needs, **params):
    del needs, params  # unused
    if builtins.all(c is None or not _is_float(get_aval(o)) for c, o in zip(cts, outs)):
        return [None] * len(primals)
    raise ValueError(_WHILE_VJP_ERROR)


def _while_batch(vals, dims, *, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    size = _axis_size(vals, dims)
    cconsts, bconsts, carry = _split(vals, cond_nconsts, body_nconsts)
    cdims, bdims, kdims = _split(dims, cond_nconsts, body_nconsts)
    cb, bb = [d is not None for d in cdims], [d is not None for d in bdims]
    kb = [d is not None for d in kdims]
    while True:  # a carry is batched if its init is, or if the body makes it so
        out = _batched_outs(body_jaxpr, bb + kb)
        new = [a or b for a, b in zip(kb, out)]
        if new == kb:
            break
        kb = new
    pred_batched = _batched_outs(cond_jaxpr, cb + kb)[0]
    if pred_batched:
        kb = [True] * len(kb)
    cconsts = [_as_batched(x, d, size, False) for x, d in zip(cconsts, cdims)]
    bconsts = [_as_batched(x, d, size, False) for x, d in zip(bconsts, bdims)]
    carry = [_as_batched(x, d, size, b) for x, d, b in zip(carry, kdims, kb)]
    if not pred_batched:
        outs = while_p.bind(*cconsts, *bconsts, *carry,
                            cond_jaxpr=_vmap_body(cond_jaxpr, cb + kb, [False], size),
                            body_jaxpr=_vmap_body(body_jaxpr, bb + kb, kb, size),
                            cond_nconsts=cond_nconsts, body_nconsts=body_nconsts)
        return outs, [0 if b else None for b in kb]
    # A batched predicate: loop while any lane goes on; finished lanes keep their carry.
    cond_v = _vmapped(cond_jaxpr, cb + kb, [True], size)
    body_v = _vmapped(body_jaxpr, bb + kb, kb, size)
    nc, nb = len(cconsts), len(bconsts)
    c_avals = [get_aval(x) for x in cconsts]
    b_avals = [get_aval(x) for x in bconsts]
    k_avals = [get_aval(x) for x in carry]

    def cond(*a):
        pred = cond_v(*a)[0]
        return [_base.reduce_max_p.bind(pred, axes=(0,))]

    def body(*a):
        cc, bc, k = _split(a, nc, nb)
        pred = cond_v(*cc, *k)[0]
        new = body_v(*bc, *k)
        return [_base._select(_base.broadcast_in_dim(pred, get_aval(o).shape, (0,)), o, n)
                for o, n in zip(k, new)]

    outs = while_p.bind(*cconsts, *cconsts, *bconsts, *carry,
                        cond_jaxpr=_make_body(cond, c_avals + k_avals),
                        body_jaxpr=_make_body(body, c_avals + b_avals + k_avals),
                        cond_nconsts=nc, body_nconsts=nc + nb)
    return outs, [0] * len(outs)


while_p.impl = _while_impl
while_p.abstract_eval = _while_abstract_eval
while_p.jvp = _while_jvp
while_p.vjp_joint = _while_vjp
while_p.batch = _while_batch


def _weak_flags(tree):
    """Which leaves are Python scalars (weakly typed in JAX: their dtype may adapt)."""
    return [type(x) in (int, float, complex) for x in tree_flatten(tree)[0]]


def _promote_weak(carry, weak, out_avals):
    """Give Python-scalar carries the dtype the body returns for them, as JAX does."""
    new, changed = [], False
    for c, w, a in zip(carry, weak, out_avals):
        aval = get_aval(c)
        if w and aval.shape == a.shape and aval.dtype != a.dtype:
            c = core.Array(np.asarray(core.to_numpy(c), a.dtype))
            changed = True
        new.append(c)
    return new, changed


def _check_carry(what, init, init_tree, init_avals, out_tree, out_avals, in_name, out_name):
    _check_same_types(what, in_name, init_tree, init_avals, out_name, out_tree, out_avals,
                      example=init)


@api_boundary
def while_loop(cond_fun, body_fun, init_val):
    """Repeat `val = body_fun(val)` while `cond_fun(val)` is true; return the final `val`.

    The loop is staged (under `jit` it runs at run time, its trip count unknown when
    tracing). `body_fun` must return a value with the same structure, shapes and dtypes
    as `init_val`. Forward-mode differentiation works; reverse mode does not (the trip
    count is dynamic): use `scan`, or `fori_loop` with static bounds.

    Args:
        cond_fun: function of the loop value returning a boolean scalar.
        body_fun: function from the loop value to a new loop value of the same type.
        init_val: the initial loop value, a pytree of arrays.

    Returns:
        The loop value once `cond_fun` is false.

    Example:
        >>> import nanofn
        >>> i, total = nanofn.lax.while_loop(lambda c: c[0] < 5,
        ...                                  lambda c: (c[0] + 1, c[1] + c[0]), (0, 0))
        >>> print(int(i), int(total))
        5 10
    """
    if not callable(cond_fun) or not callable(body_fun):
        raise TypeError("while_loop: cond_fun and body_fun must be callable, got "
                        f"{type(cond_fun).__name__} and {type(body_fun).__name__}")
    carry, tree = _flatten_operands(init_val, "while_loop init_val")
    weak = _weak_flags(init_val)
    for _ in range(2):
        avals = [get_aval(x) for x in carry]
        body_t = _trace_user(lambda *a: body_fun(tree_unflatten(tree, a)), avals,
                             "while_loop: body_fun")
        if body_t.out_tree != tree:
            break
        carry, changed = _promote_weak(carry, weak, body_t.out_avals)
        if not changed:
            break
    cond_t = _trace_user(lambda *a: cond_fun(tree_unflatten(tree, a)), avals,
                         "while_loop: cond_fun")
    c_out = cond_t.out_avals
    if len(c_out) != 1 or c_out[0].shape != () or c_out[0].dtype != bool:
        raise TypeError("while_loop: cond_fun must return a boolean scalar, but got output "
                        f"type(s) {_types_str(cond_t.out_tree, c_out)}")
    _check_carry("while_loop: body_fun output and input (init_val)", init_val, tree, avals,
                 body_t.out_tree, body_t.out_avals, "input", "output")
    outs = while_p.bind(*cond_t.consts, *body_t.consts, *carry,
                        cond_jaxpr=cond_t.body, body_jaxpr=body_t.body,
                        cond_nconsts=len(cond_t.consts), body_nconsts=len(body_t.consts))
    return tree_unflatten(tree, outs)


# ======================================================================== scan

scan_p = Primitive("scan", multiple_results=True)
scan_p.effectful = lambda params: core.jaxpr_has_effects(params["jaxpr"].jaxpr)


def _scan_impl(*args, jaxpr, num_consts, num_carry, length, reverse):
    consts, carry, xs = _split(args, num_consts, num_carry)
    ys = [np.empty((length,) + a.shape, a.dtype) for a in jaxpr.out_avals[num_carry:]]
    if not length:
        return [np.asarray(c) for c in carry] + ys
    hoisted, plan = jaxpr.loop_runner(num_consts)
    if hoisted is not None:  # what depends on the constants alone, computed once
        consts = [*consts, *hoisted(list(consts))]
    step, done = plan.stepper(len(ys))
    try:
        for i in (range(length - 1, -1, -1) if reverse else range(length)):
            # the step writes its ys straight into their rows of the stacked outputs
            carry = step([*consts, *carry, *[x[i] for x in xs]],
                         [y[i, ...] for y in ys] if ys else None)[:num_carry]
    finally:
        done()
    # a carry may view a row it was written into (`c = y.T`): outputs do not share memory
    carry = [np.array(c) if any(np.may_share_memory(c, y) for y in ys) else np.asarray(c)
             for c in carry]
    return carry + ys


def _scan_abstract_eval(*avals, jaxpr, num_consts, num_carry, length, reverse):
    del reverse  # unused
    consts, carry, xs = _split(avals, num_consts, num_carry)
    bad = [x for x in xs if x.shape[:1] != (length,)]
    if bad:
        raise TypeError(f"scan: scanned operands must have leading axis {length}, got "
                        f"{', '.join(x.str_short() for x in bad)}")
    x_slices = [x.update(shape=x.shape[1:]) for x in xs]
    if consts + carry + x_slices != list(jaxpr.in_avals):
        raise TypeError("scan: operand types "
                        f"({', '.join(a.str_short() for a in avals)}) do not match the "
                        f"body's inputs ({', '.join(a.str_short() for a in jaxpr.in_avals)}) "
                        f"with length {length}")
    outs = jaxpr.out_avals
    return outs[:num_carry] + [_batched_aval(a, length) for a in outs[num_carry:]]


def _scan_jvp(primals, tangents, *, jaxpr, num_consts, num_carry, length, reverse):
    nc, nk = num_consts, num_carry
    consts, init, xs = _split(primals, nc, nk)
    const_t, init_t, xs_t = _split(tangents, nc, nk)
    in_avals = jaxpr.in_avals
    carry_avals, x_avals = in_avals[nc:nc + nk], in_avals[nc + nk:]
    carry_float = [_is_float(a) for a in carry_avals]
    y_float = [_is_float(a) for a in jaxpr.out_avals[nk:]]
    cnz = [t is not None for t in const_t]
    xnz = [t is not None for t in xs_t]
    const_t = [t for t in const_t if t is not None]
    xs_t = [t for t in xs_t if t is not None]
    # A carry's tangent may become nonzero on any step: give every float carry one.
    init_t = [_or_zeros(t, a) for t, a, fl in zip(init_t, carry_avals, carry_float) if fl]
    nx, nct, nkt = len(xs), len(const_t), len(init_t)
    body_avals = (in_avals[:nc] + [get_aval(t) for t in const_t] + carry_avals +
                  [get_aval(t) for t in init_t] + x_avals +
                  [get_aval(t).update(shape=get_aval(t).shape[1:]) for t in xs_t])

    def body(*a):
        c, ct, k, kt, x, xt = _split(a, nc, nct, nk, nkt, nx)
        ct, kt, xt = iter(ct), iter(kt), iter(xt)
        outs, t_outs = _body_jvp(jaxpr, c + k + x,
                                 [next(ct) if z else None for z in cnz] +
                                 [next(kt) if fl else None for fl in carry_float] +
                                 [next(xt) if z else None for z in xnz])
        k_out, y_out = outs[:nk], outs[nk:]
        kt_out, yt_out = t_outs[:nk], t_outs[nk:]
        return (k_out + [t for t, fl in zip(kt_out, carry_float) if fl] +
                y_out + [t for t, fl in zip(yt_out, y_float) if fl])

    res = scan_p.bind(*consts, *const_t, *init, *init_t, *xs, *xs_t,
                      jaxpr=_make_body(body, body_avals), num_consts=nc + nct,
                      num_carry=nk + nkt, length=length, reverse=reverse)
    k_out, kt_out, y_out, yt_out = _split(res, nk, nkt, len(y_float))
    kt_out, yt_out = iter(kt_out), iter(yt_out)
    return (k_out + y_out,
            [next(kt_out) if fl else None for fl in carry_float] +
            [next(yt_out) if fl else None for fl in y_float])


def _step_pullback(step, nc, nk, length, want_c, want_x, k_float, y_idx) -> "_PartialEval":
    """The pullback of one scan step, traced once and split by `_partial_eval`.

    Its inputs: the constants, the float carries' cotangents, running sums of the
    cotangents of the constants in `want_c`, then the step's x, carry in, and the
    cotangents of the ys in `y_idx`. Its outputs: the new carries' cotangents, the new
    running sums, and the cotangents of the xs in `want_x`."""
    in_avals = step.in_avals
    c_avals, k_avals, x_avals = _split(in_avals, nc, nk)
    y_avals = step.out_avals[nk:]
    nx, ny = len(x_avals), len(y_avals)
    nkf, nwc = len(k_float), len(want_c)

    def back(*a):
        c, ctk, acc, x, k, cty = _split(a, nc, nkf, nwc, nx, nk)
        full = [None] * (nk + ny)
        for i, g in zip(k_float, ctk):
            full[i] = g
        for j, g in zip(y_idx, cty):
            full[nk + j] = g
        g = _body_vjp(step, c + k + x, full)
        g_c, g_k, g_x = _split(g, nc, nk)
        new_ctk = [_or_zeros(_fit(g_k[i], k_avals[i]), k_avals[i]) for i in k_float]
        new_acc = [s if g_c[i] is None else _base._add(s, _fit(g_c[i], c_avals[i]))
                   for s, i in zip(acc, want_c)]
        ct_x = [_or_zeros(_fit(g_x[i], x_avals[i]), x_avals[i]) for i in want_x]
        return new_ctk + new_acc + ct_x

    back_avals = (c_avals + [k_avals[i] for i in k_float] + [c_avals[i] for i in want_c] +
                  x_avals + k_avals + [y_avals[j] for j in y_idx])
    pe = _partial_eval(_make_body(back, back_avals), nc, nkf + nwc, nx, nk)
    pe.want_c, pe.want_x, pe.k_float, pe.y_idx = want_c, want_x, k_float, y_idx
    return pe


def _record_body(step, pe, nc, nk, user_step=None) -> _Body:
    """The step followed by the forward part of its pullback: outputs the new carry, the
    ys of `user_step` (if given: the user's step, effects included), and the residuals."""
    def record(*a):
        c, k, x = _split(a, nc, nk)
        if user_step is None:
            head = _eval(step, a)[:nk]
        else:
            head = _eval(user_step, a)
        return head + core.eval_jaxpr(pe.fwd, pe.consts, *c, *x, *k)
    return _simplified(_make_body(record, step.in_avals))


def _scan_backward(pe, consts, ct_k, ct_y, xs, stacked, nc, length, reverse):
    """Run the cotangent part of `pe` backward over the steps, from the recorded
    residuals `stacked`. Returns (carry cotangents, constant cotangents, xs cotangents)."""
    c_avals = pe.bwd.in_avals[:nc]
    hoisted = core.eval_jaxpr(pe.hoist, pe.consts, *consts) if pe.hoist.outvars else []
    res_xs = [xs[src] if kind == "x" else stacked[src] for kind, src in pe.res_from]
    nkf, nwc = len(pe.k_float), len(pe.want_c)
    res = scan_p.bind(*consts, *hoisted, *ct_k, *[_zeros(c_avals[i]) for i in pe.want_c],
                      *res_xs, *ct_y, jaxpr=pe.bwd, num_consts=nc + len(hoisted),
                      num_carry=nkf + nwc, length=length, reverse=not reverse)
    return _split(res, nkf, nwc)


class _ResidualBody(_Body):
    """The body of a scan bound while reverse-mode differentiation records it (see
    `_scan`): after the user's carry and ys it outputs the residuals of its pullback,
    `pe`, so the VJP rule needs no second forward pass. `ny` counts the user's ys."""

    __slots__ = ("pe", "ny")


def _scan_vjp(cts, primals, outs, needs, *, jaxpr, num_consts, num_carry, length, reverse):
    nc, nk = num_consts, num_carry
    consts, init, xs = _split(primals, nc, nk)
    in_avals = jaxpr.in_avals
    c_avals, k_avals, x_avals = _split(in_avals, nc, nk)
    y_avals = jaxpr.out_avals[nk:]
    nx, ny = len(xs), len(y_avals)
    want_c = [i for i in range(nc) if needs[i] and _is_float(c_avals[i])]
    want_x = [i for i in range(nx) if needs[nc + nk + i] and _is_float(x_avals[i])]
    k_float = [i for i in range(nk) if _is_float(k_avals[i])]
    ct_k = [_fit(cts[i], k_avals[i]) for i in k_float]
    y_idx = [j for j in range(ny) if cts[nk + j] is not None and _is_float(y_avals[j])]
    want_k = [i for i in k_float if needs[nc + i]]
    if (builtins.all(c is None for c in ct_k) and not y_idx) or \
            not (want_c or want_x or want_k):
        return [None] * len(primals)
    ct_k = [_or_zeros(c, k_avals[i]) for c, i in zip(ct_k, k_float)]

    pe = getattr(jaxpr, "pe", None)
    if pe is not None and builtins.all(j < jaxpr.ny for j in y_idx):
        pe = pe.pruned([i for i in pe.want_c if needs[i]],
                       [i for i in pe.want_x if needs[nc + nk + i]])
        # The forward pass recorded the residuals (outputs after the user's ys), and no
        # cotangent flows into them: pull back from them directly. The pullback was split
        # for every float input and output; missing cotangents are zeros, and the unneeded
        # cotangents are dropped after the loop (dead code in the jitted program).
        ct_y = [_or_zeros(_fit(cts[nk + j], _batched_aval(y_avals[j], length)),
                          _batched_aval(y_avals[j], length)) for j in pe.y_idx]
        stacked = outs[nk + jaxpr.ny:]
    else:
        # 1. Run the loop again, recording per step the values the pullback needs (its
        #    residuals: intermediate values, and the carry entering the step).
        step = _without_effects(jaxpr)
        pe = _step_pullback(step, nc, nk, length, want_c, want_x, k_float, y_idx)
        ct_y = [_fit(cts[nk + j], _batched_aval(y_avals[j], length)) for j in y_idx]
        if pe.res_avals:
            res = scan_p.bind(*consts, *init, *xs, jaxpr=_record_body(step, pe, nc, nk),
                              num_consts=nc, num_carry=nk, length=length, reverse=reverse)
            stacked = res[nk:]
        else:
            stacked = []
    # 2. Walk the steps in the opposite order, pulling cotangents back through each one
    #    from the residuals alone. Carry: the carry's cotangent, and running sums of the
    #    constants' cotangents.
    ct_init, ct_consts, ct_xs = _scan_backward(pe, consts, ct_k, ct_y, xs, stacked, nc,
                                               length, reverse)
    result = [None] * len(primals)
    for i, g in zip(pe.want_c, ct_consts):
        if needs[i]:
            result[i] = g
    for i, g in zip(pe.k_float, ct_init):
        if needs[nc + i]:
            result[nc + i] = g
    for i, g in zip(pe.want_x, ct_xs):
        if needs[nc + nk + i]:
            result[nc + nk + i] = g
    return result


def _bind_recording(consts, init, xs, body, nc, nk, length, reverse):
    """Bind `scan` for a caller that reverse mode is recording: the body also outputs
    its pullback's residuals, which the VJP rule then uses instead of running the
    forward pass again. Returns the user's outputs (carry and ys) only."""
    in_avals = body.in_avals
    c_avals, k_avals, x_avals = _split(in_avals, nc, nk)
    y_avals = body.out_avals[nk:]
    step = _without_effects(body)
    pe = _step_pullback(step, nc, nk, length,
                        [i for i, a in enumerate(c_avals) if _is_float(a)],
                        [i for i, a in enumerate(x_avals) if _is_float(a)],
                        [i for i, a in enumerate(k_avals) if _is_float(a)],
                        [j for j, a in enumerate(y_avals) if _is_float(a)])
    rec = _record_body(step, pe, nc, nk, user_step=body)
    rbody = _ResidualBody(rec.jaxpr, rec.consts)
    rbody.pe, rbody.ny = pe, len(y_avals)
    outs = scan_p.bind(*consts, *init, *xs, jaxpr=rbody, num_consts=nc, num_carry=nk,
                       length=length, reverse=reverse)
    return outs[:nk + len(y_avals)]


def _recorded_by_reverse_mode(operands) -> bool:
    """Whether reverse-mode differentiation records an operation on these operands."""
    from nanofn._ad import TapeTracer
    return builtins.any(type(x) is TapeTracer and x.key is not None for x in operands)


class _PartialEval:
    """A scan step's pullback split in three (see `_partial_eval`)."""

    __slots__ = ("hoist", "fwd", "bwd", "consts", "res_avals", "res_from", "want_c", "want_x",
                 "k_float", "y_idx", "_pruned")

    def pruned(self, want_c, want_x) -> "_PartialEval":
        """The same split computing only the cotangents of the constants `want_c` and the
        xs `want_x` (subsets of this one's): the others' running sums and outputs go."""
        if want_c == self.want_c and want_x == self.want_x:
            return self
        key = (tuple(want_c), tuple(want_x))
        cache = getattr(self, "_pruned", None)
        if cache is None:
            cache = self._pruned = {}
        if key in cache:
            return cache[key]
        j = self.bwd.jaxpr
        nkf, nwc = len(self.k_float), len(self.want_c)
        n_front = len(j.invars) - nkf - nwc - len(self.res_from) - len(self.y_idx)
        keep_acc = [i in want_c for i in self.want_c]
        keep_x = [i in want_x for i in self.want_x]
        ctk_out, acc_out, x_out = _split(j.outvars, nkf, nwc)
        front, ctk_in, acc_in, rest = _split(j.invars, n_front, nkf, nwc)
        outvars = (ctk_out + [v for v, k in zip(acc_out, keep_acc) if k] +
                   [v for v, k in zip(x_out, keep_x) if k])
        pruned = core.dce_jaxpr(Jaxpr(j.constvars, j.invars, j.eqns, outvars))
        used = {id(x) for e in pruned.eqns for x in e.invars} | {id(x) for x in outvars}
        dropped = [v for v, k in zip(acc_in, keep_acc) if not k]
        if builtins.any(id(v) in used for v in dropped):
            return self  # a running sum feeds something else: keep the whole program
        pe = _PartialEval()
        pe.hoist, pe.fwd, pe.consts = self.hoist, self.fwd, self.consts
        pe.res_avals, pe.res_from = self.res_avals, self.res_from
        pe.k_float, pe.y_idx = self.k_float, self.y_idx
        pe.want_c, pe.want_x = list(want_c), list(want_x)
        invars = front + ctk_in + [v for v, k in zip(acc_in, keep_acc) if k] + rest
        pe.bwd = _Body(Jaxpr(j.constvars, invars, pruned.eqns, outvars), self.bwd.consts)
        cache[key] = pe
        return pe


def _partial_eval(back: _Body, nc, nct, nx, nk) -> _PartialEval:
    """Split the pullback `back(consts, cts_carried, xs, carry_in, cts_y)` of a scan step
    (inputs in that order, of the given counts; whatever follows `carry_in` is the ys'
    cotangents) by what its equations need:

    * `hoist(consts)`: equations that read only the scan's constants (and literals),
      used by the cotangent part: computed once, before the loop;
    * `fwd(consts, xs, carry_in) -> residuals`: equations that read primal values only,
      at least one of which changes per step: the forward work, run by the recording
      scan, whose outputs are the values the cotangent part reads;
    * `bwd(consts, hoisted, cts_carried, residuals, cts_y)`: everything else, reading
      residuals instead of recomputing the step's forward pass.

    `res_from` says where each residual comes from: ("x", i) is the i-th scanned input
    itself (nothing to record), ("rec", j) the j-th recorded output."""
    j = back.jaxpr
    c_in, ct_in, x_in, k_in, cty_in = _split(j.invars, nc, nct, nx, nk)
    known = {id(v) for v in j.constvars} | {id(v) for v in c_in + x_in + k_in}
    varying = {id(v) for v in x_in + k_in}
    const_eqns, fwd_eqns, bwd_eqns = [], [], []
    for e in j.eqns:
        ins = [id(x) for x in e.invars if type(x) is Var]
        if not core.has_effects(e) and builtins.all(i in known for i in ins):
            known.update(id(v) for v in e.outvars)
            if builtins.any(i in varying for i in ins):
                varying.update(id(v) for v in e.outvars)
                fwd_eqns.append(e)
            else:
                const_eqns.append(e)
        else:
            bwd_eqns.append(e)
    # What the cotangent part reads from the other two parts.
    needed, seen = [], set()
    for x in [x for e in bwd_eqns for x in e.invars] + j.outvars:
        if type(x) is Var and id(x) in known and id(x) not in seen:
            seen.add(id(x))
            needed.append(x)
    outer = {id(v) for v in j.constvars + c_in}
    residuals = [v for v in needed if id(v) in varying]
    hoisted = [v for v in needed if id(v) not in varying and id(v) not in outer]
    x_pos = {id(v): i for i, v in enumerate(x_in)}
    recorded = [v for v in residuals if id(v) not in x_pos]
    rec_index = {id(v): i for i, v in enumerate(recorded)}
    pe = _PartialEval()
    pe.consts = back.consts
    pe.hoist = core.dce_jaxpr(Jaxpr(j.constvars, c_in, const_eqns, hoisted))
    pe.fwd = core.dce_jaxpr(Jaxpr(j.constvars, c_in + x_in + k_in, const_eqns + fwd_eqns,
                                  recorded))
    pe.res_avals = [v.aval for v in recorded]
    pe.res_from = [("x", x_pos[id(v)]) if id(v) in x_pos else ("rec", rec_index[id(v)])
                   for v in residuals]
    # The cotangent part reads the residuals as fresh variables of the same type.
    fresh = {id(v): Var(v.aval) for v in residuals + hoisted}

    def sub(x):
        return fresh.get(id(x), x) if type(x) is Var else x

    eqns = [core.Eqn(e.primitive, [sub(x) for x in e.invars], e.params, e.outvars)
            for e in bwd_eqns]
    invars = (c_in + [fresh[id(v)] for v in hoisted] + ct_in +
              [fresh[id(v)] for v in residuals] + cty_in)
    pe.bwd = _Body(core.dce_jaxpr(Jaxpr(j.constvars, invars, eqns,
                                        [sub(x) for x in j.outvars])), back.consts)
    return pe


def _simplified(body: _Body) -> _Body:
    """`body` with common subexpressions merged (the recording scan's step evaluates the
    user's step and the forward part of its pullback: the same equations, twice)."""
    from nanofn._jit import simplify
    closed = simplify(body)
    return _Body(closed.jaxpr, closed.consts)


def _scan_batch(vals, dims, *, jaxpr, num_consts, num_carry, length, reverse):
    size = _axis_size(vals, dims)
    nc, nk = num_consts, num_carry
    consts, init, xs = _split(vals, nc, nk)
    cdims, kdims, xdims = _split(dims, nc, nk)
    cb, kb, xb = ([d is not None for d in ds] for ds in (cdims, kdims, xdims))
    while True:  # a carry is batched if its init is, or if the body makes it so
        out = _batched_outs(jaxpr, cb + kb + xb)
        new = [a or b for a, b in zip(kb, out[:nk])]
        if new == kb:
            break
        kb = new
    yb = out[nk:]
    consts = [_as_batched(x, d, size, False) for x, d in zip(consts, cdims)]
    init = [_as_batched(x, d, size, b) for x, d, b in zip(init, kdims, kb)]
    # The scanned axis stays first; the batch axis goes second (first in each slice).
    xs = [x if d is None else _base._moveaxis(x, d, 1) for x, d in zip(xs, xdims)]
    body = _vmap_body(jaxpr, cb + kb + xb, kb + yb, size)
    outs = scan_p.bind(*consts, *init, *xs, jaxpr=body, num_consts=nc, num_carry=nk,
                       length=length, reverse=reverse)
    return outs, [0 if b else None for b in kb] + [1 if b else None for b in yb]


scan_p.impl = _scan_impl
scan_p.abstract_eval = _scan_abstract_eval
scan_p.jvp = _scan_jvp
scan_p.vjp_joint = _scan_vjp
scan_p.batch = _scan_batch


def _scan(f, init, xs, length, reverse, what, carry_names=("carry input", "carry output")):
    xs_flat, xs_tree = _flatten_operands(xs, f"{what} xs")
    for x in xs_flat:
        if get_aval(x).ndim == 0:
            raise ValueError(f"{what}: every leaf of xs needs a leading axis to scan over, "
                             f"got a scalar {get_aval(x).str_short()}")
    lengths = sorted({get_aval(x).shape[0] for x in xs_flat})
    if length is not None:
        try:
            length = int(length)
        except (TypeError, core.ConcretizationError):
            raise TypeError(f"{what}: length must be a Python int, got {length!r:.60}") from None
        if lengths and lengths != [length]:
            raise ValueError(f"{what}: length={length} disagrees with the leading axis sizes "
                             f"of xs: {', '.join(str(n) for n in lengths)}")
    elif not lengths:
        raise ValueError(f"{what}: there are no xs to scan over and `length` was not given; "
                         "pass length=...")
    elif len(lengths) > 1:
        shapes = ", ".join(get_aval(x).str_short() for x in xs_flat)
        raise ValueError(f"{what}: the leaves of xs have different leading axis sizes "
                         f"({shapes}); they must all have the same length")
    else:
        length = lengths[0]
    carry, carry_tree = _flatten_operands(init, f"{what} init")
    weak = _weak_flags(init)
    x_avals = [get_aval(x).update(shape=get_aval(x).shape[1:]) for x in xs_flat]
    nk = len(carry)

    def body(*a):
        out = f(tree_unflatten(carry_tree, a[:nk]), tree_unflatten(xs_tree, a[nk:]))
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(f"{what}: the body function must return a pair (carry, y), got "
                            f"{type(out).__name__}" +
                            (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
        return tuple(out)

    for _ in range(2):
        carry_avals = [get_aval(c) for c in carry]
        traced = _trace_user(body, carry_avals + x_avals, f"{what}: the body function")
        out_carry_tree, y_tree = treedef_children(traced.out_tree)
        n_out_carry = out_carry_tree.num_leaves
        if out_carry_tree != carry_tree:
            break
        carry, changed = _promote_weak(carry, weak, traced.out_avals[:nk])
        if not changed:
            break
    _check_carry(f"{what}: the body function's {carry_names[0]} and {carry_names[1]}", init,
                 carry_tree, carry_avals, out_carry_tree, traced.out_avals[:n_out_carry],
                 carry_names[0], carry_names[1])
    operands = [*traced.consts, *carry, *xs_flat]
    if length and _recorded_by_reverse_mode(operands) and \
            not core.jaxpr_has_effects(traced.body.jaxpr):
        outs = _bind_recording(traced.consts, carry, xs_flat, traced.body,
                               len(traced.consts), nk, length, bool(reverse))
    else:
        outs = scan_p.bind(*operands, jaxpr=traced.body, num_consts=len(traced.consts),
                           num_carry=nk, length=length, reverse=bool(reverse))
    return tree_unflatten(carry_tree, outs[:nk]), tree_unflatten(y_tree, outs[nk:])


@api_boundary
def scan(f, init, xs=None, length=None, reverse=False, unroll=1, _split_transpose=False):
    """Loop `f` over the leading axis of `xs`, threading a carry and stacking outputs.

    Semantics (for pytrees `init`, `xs`)::

        def scan(f, init, xs, length=None):
            carry, ys = init, []
            for x in xs:
                carry, y = f(carry, x)
                ys.append(y)
            return carry, stack(ys)

    The body is traced once, so a long loop makes a small program. Differentiable in
    both modes: under reverse mode the loop also records, per step, the intermediate
    values the step's pullback needs, and the pullback then runs backward over the
    steps without recomputing the forward pass.

    Args:
        f: function `(carry, x) -> (new_carry, y)`; `new_carry` must have the structure,
            shapes and dtypes of `carry`.
        init: the initial carry, a pytree of arrays.
        xs: pytree of arrays scanned along their leading axis, or None.
        length: number of steps; required when `xs` is None.
        reverse: scan from the end of `xs` to the start (ys keep `xs`'s order).
        unroll: accepted for JAX compatibility (a non-negative int or bool); nanofn always
            runs one step per iteration.
        _split_transpose: accepted for JAX compatibility; ignored.

    Returns:
        `(final_carry, ys)`, `ys` stacked along a new leading axis of size `length`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> total, partial = nanofn.lax.scan(lambda c, x: (c + x, c + x), 0.0,
        ...                                  fnp.array([1.0, 2.0, 3.0]))
        >>> print(float(total), partial.tolist())
        6.0 [1.0, 3.0, 6.0]
    """
    del _split_transpose  # unused
    if not callable(f):
        raise TypeError(f"scan: f must be callable, got {type(f).__name__}")
    if not isinstance(unroll, (bool, int, np.integer)) or \
            (not isinstance(unroll, bool) and unroll < 0):
        raise ValueError(f"scan: unroll must be a non-negative int or a bool, got {unroll!r}")
    return _scan(f, init, xs, length, reverse, "scan")


# ======================================================================== fori_loop


def _index_dtype(lower, upper):
    dtypes = [get_aval(v).dtype for v in (lower, upper) if type(v) is not int]
    dtype = np.dtype(np.int32) if not dtypes else np.result_type(*dtypes)
    if not np.issubdtype(dtype, np.integer):
        raise TypeError("fori_loop: lower and upper must be integers, got "
                        f"{get_aval(lower).str_short()} and {get_aval(upper).str_short()}")
    return dtype


@api_boundary
def fori_loop(lower, upper, body_fun, init_val, *, unroll=None):
    """Run `val = body_fun(i, val)` for `i` in `range(lower, upper)`; return `val`.

    With static bounds (Python ints or concrete arrays) this is a `scan`, so both
    forward and reverse-mode differentiation work. With traced bounds it is a
    `while_loop` (forward mode only).

    Args:
        lower: first loop index (integer scalar).
        upper: loop end, exclusive (integer scalar).
        body_fun: function `(i, val) -> new_val`, `new_val` of `val`'s type.
        init_val: initial loop value, a pytree of arrays.
        unroll: accepted for JAX compatibility; ignored.

    Returns:
        The final loop value.

    Example:
        >>> import nanofn
        >>> print(int(nanofn.lax.fori_loop(0, 5, lambda i, acc: acc + i * i, 0)))
        30
    """
    del unroll  # unused
    if not callable(body_fun):
        raise TypeError(f"fori_loop: body_fun must be callable, got {type(body_fun).__name__}")
    for name, v in (("lower", lower), ("upper", upper)):
        if get_aval(v).shape != ():
            raise TypeError(f"fori_loop: {name} must be a scalar, got {get_aval(v).str_short()}")
    dtype = _index_dtype(lower, upper)
    if not isinstance(lower, Tracer) and not isinstance(upper, Tracer):
        lo, hi = int(lower), int(upper)
        one = np.asarray(1, dtype)

        def step(carry, _):
            i, val = carry
            return (_base._add(i, one), body_fun(i, val)), None

        (_, out), _ = _scan(step, (np.asarray(lo, dtype), init_val), None,
                            builtins.max(hi - lo, 0), False, "fori_loop",
                            ("(index, init_val)", "(index, body_fun output)"))
        return out
    lower = _base.convert_element_type(_to_operand(lower, "fori_loop lower"), dtype)
    upper = _base.convert_element_type(_to_operand(upper, "fori_loop upper"), dtype)

    def body(carry):
        i, hi, val = carry
        return _base._add(i, np.asarray(1, dtype)), hi, body_fun(i, val)

    _, _, out = while_loop(lambda c: _base.lt_p.bind(c[0], c[1]), body, (lower, upper, init_val))
    return out


# ======================================================================== map, associative_scan


@api_boundary
def map(f, xs, *, batch_size=None):
    """Apply `f` to each slice of `xs` along its leading axis and stack the results.

    A `scan` without a carry: the body is traced once, unlike a Python loop.

    Args:
        f: function of one slice (a pytree like `xs` without the leading axis).
        xs: pytree of arrays with a common leading axis.
        batch_size: accepted for JAX compatibility; nanofn maps one slice at a time.

    Returns:
        The outputs of `f`, stacked along a new leading axis.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.map(lambda row: fnp.sum(row), fnp.ones((3, 2))).tolist()
        [2.0, 2.0, 2.0]
    """
    del batch_size  # unused
    _, ys = _scan(lambda carry, x: (carry, f(x)), (), xs, None, False, "map")
    return ys


def associative_scan(fn, elems, reverse=False, axis=0):
    """Inclusive prefix scan with an associative binary function `fn`.

    `out[i] = fn(... fn(fn(elems[0], elems[1]), elems[2]) ..., elems[i])` along `axis`
    (from the end when `reverse`). As in JAX, the prefixes are built by a parallel
    (odd-even) tree of log2(n) levels, and `fn` is applied to whole blocks of elements:
    its arguments keep the scan axis (of some length k), so `fn` must be vectorised
    over it, and it returns a pytree of arrays with that same leading length k. The
    grouping of `fn` calls is JAX's, so floating-point rounding and the derivatives of
    operations with ties (`max`, `min`) agree with JAX's.

    Args:
        fn: associative function of two pytrees of blocks, returning one.
        elems: pytree of arrays sharing the length of `axis`.
        reverse: scan from the end.
        axis: the axis to scan along.

    Returns:
        A pytree like `elems` holding the prefix results.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.associative_scan(lambda a, b: a + b, fnp.arange(1.0, 5.0)).tolist()
        [1.0, 3.0, 6.0, 10.0]
    """
    from nanofn.ops import _shape

    if not callable(fn):
        raise TypeError(f"associative_scan: fn must be callable, got {type(fn).__name__}")
    leaves, tree = _flatten_operands(elems, "associative_scan elems")
    if not leaves:
        return elems
    ndim = get_aval(leaves[0]).ndim
    if not -ndim <= axis < ndim:
        raise ValueError(f"associative_scan: axis {axis} is out of bounds for elems of "
                         f"{ndim} dimensions")
    axis = axis % ndim
    lengths = [get_aval(x).shape[axis] if get_aval(x).ndim > axis else None for x in leaves]
    if len(set(lengths)) != 1 or lengths[0] is None:
        shapes = [get_aval(x).str_short() for x in leaves]
        raise ValueError("associative_scan: every array in elems must have the same length "
                         f"along axis {axis}; got {shapes}")

    def cut(x, start, stop, step=1):
        return _shape.slice_in_dim(x, start, stop, step, axis)

    def combine(a, b):
        out = fn(tree_unflatten(tree, a), tree_unflatten(tree, b))
        out_leaves, out_tree = tree_flatten(out)
        if out_tree != tree:
            raise TypeError(structure_difference(
                tree, out_tree, "associative_scan: fn must return a pytree of elems' "
                "structure", "elems", "fn output"))
        want = get_aval(a[0]).shape[axis]
        out_leaves = [_to_operand(x, "associative_scan fn output") for x in out_leaves]
        for x in out_leaves:
            if get_aval(x).ndim <= axis or get_aval(x).shape[axis] != want:
                raise ValueError(
                    f"associative_scan: fn returned {get_aval(x).str_short()} for inputs of "
                    f"length {want} along axis {axis}; fn must keep the scan axis (apply "
                    "it elementwise over that axis)")
        return out_leaves

    def interleave(even, odd):
        # out[2j] = even[j], out[2j+1] = odd[j]; `even` is as long as `odd` or one longer
        n_even, n_odd = get_aval(even).shape[axis], get_aval(odd).shape[axis]
        if n_even != n_odd:
            odd = _shape.concatenate([odd, cut(even, n_even - 1, n_even)], axis)
        pair = _shape.concatenate([_base.expand_dims(even, (axis + 1,)),
                                   _base.expand_dims(odd, (axis + 1,))], axis + 1)
        shape = list(get_aval(even).shape)
        shape[axis] = 2 * n_even
        merged = _base.reshape(pair, tuple(shape))
        return cut(merged, 0, n_even + n_odd)

    def scan(xs):
        n = get_aval(xs[0]).shape[axis]
        if n < 2:
            return xs
        # Reduce neighbouring pairs (0,1), (2,3), ...; their prefixes are the odd outputs.
        odd = scan(combine([cut(x, 0, n - 1, 2) for x in xs], [cut(x, 1, n, 2) for x in xs]))
        # Each even output 2j (j >= 1) is the odd output 2j-1 combined with element 2j.
        tails = [cut(x, 2, n, 2) for x in xs]
        heads = [cut(o, 0, get_aval(o).shape[axis] - 1) for o in odd] if n % 2 == 0 else odd
        even = combine(heads, tails) if get_aval(tails[0]).shape[axis] else tails
        even = [_shape.concatenate([cut(x, 0, 1), e], axis) for x, e in zip(xs, even)]
        return [interleave(e, o) for e, o in zip(even, odd)]

    if reverse:
        leaves = [_shape.rev(x, (axis,)) for x in leaves]
    out = scan(leaves)
    if reverse:
        out = [_shape.rev(x, (axis,)) for x in out]
    return tree_unflatten(tree, out)


def cumlogsumexp(operand, axis=0, reverse=False):
    """Running `log(sum(exp(operand)))` along `axis` (`jax.lax.cumlogsumexp`).

    Each prefix is combined with `logaddexp`, so no element underflows against a larger
    one elsewhere in the array, and `-inf` entries (log of zero) are exact.

    Args:
        operand: a floating-point array.
        axis: the axis to scan (negative values count from the end).
        reverse: scan from the end.

    Returns:
        An array of `operand`'s shape and dtype.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.cumlogsumexp(fnp.log(fnp.array([1.0, 2.0, 3.0])))
        Array([0.       , 1.0986123, 1.7917595], dtype=float32)
    """
    from nanofn.ops._complex import logaddexp_p
    ndim = len(core.get_aval(operand).shape)
    if not -ndim <= axis < max(ndim, 1):
        raise ValueError(f"cumlogsumexp: axis {axis} is out of range for an array of "
                         f"{ndim} dimensions")
    return associative_scan(lambda a, b: logaddexp_p.bind(a, b), operand, reverse=reverse,
                            axis=axis % max(ndim, 1))
