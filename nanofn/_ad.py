"""Automatic differentiation: forward mode (`jvp`) and reverse mode (`vjp`, `grad`).

**Forward mode** follows each value together with its tangent. `JVPTrace` wraps values in
`JVPTracer(primal, tangent)`; for each primitive it asks the primitive's JVP rule for the
output tangent. A tangent of `None` is a symbolic zero: constants and integer values carry
one, and rules skip the work for it.

**Reverse mode** records and then walks back. `TapeTrace` runs the function forward on
`TapeTracer`s that carry their primal value and a key; every primitive that touches a
tracer appends one entry to a tape: the primitive, its params, the input keys and primal
values, and the output. That tape *is* a jaxpr of the program as it ran (with Python
control flow already resolved by the concrete values). `backward` walks it in reverse,
asking each primitive's VJP rule for the cotangents of its inputs, and sums cotangents
that meet at the same value. Cotangents of broadcasting elementwise primitives are summed
back to their input's shape in one place, `unbroadcast`.

The rules are written with nanofn primitives, so the backward pass binds primitives like
any other code: if an enclosing transformation is active (another `grad`, a `jvp`, a
`vmap`, or `jit` staging a jaxpr), it traces the backward pass too. That is why
`grad(grad(f))`, `jvp(grad(f))` and `jit(grad(f))` need nothing special. Levels keep the
nested derivatives apart (no perturbation confusion).
"""

from __future__ import annotations

import itertools
import operator
import sys
from typing import Any, Callable, Sequence

import numpy as np

from nanofn import _core as core
from nanofn._core import Array, ShapedArray, Tracer, Trace, get_aval
from nanofn._dtypes_float0 import float0_zeros
from nanofn._traceback_util import api_boundary
from nanofn.tree_util import Partial, tree_flatten, tree_unflatten, tree_map

def _split_aux(out, has_aux):
    """`(output, aux)` of a function's result: the pair it returned with has_aux=True."""
    if not has_aux:
        return out, None
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError("has_aux=True requires the function to return a pair "
                        f"(output, aux), got {type(out).__name__}")
    return out[0], out[1]


# ------------------------------------------------------------------------ helpers used by rules


_base = None


def _ops():
    global _base
    if _base is None:
        from nanofn.ops import _base  # noqa: E402 - the ops layer sits above this module's import
    return _base


def zeros_like_aval(aval):
    return core.Array(np.zeros(aval.shape, aval.dtype)) if not core.under_transform() \
        else _ops().full(aval.shape, 0, aval.dtype)


def add_any(x, y):
    """Sum two cotangents (either may be None, a symbolic zero)."""
    if x is None:
        return y
    if y is None:
        return x
    return _ops().add_p.bind(x, y)


def unbroadcast(ct, primal):
    """Sum a cotangent of a broadcast result down to the shape (and dtype) of its input."""
    shape = primal.shape
    ct_shape = ct.shape
    if ct_shape == shape and ct.dtype == primal.dtype:
        return ct
    dtype = primal.dtype  # primal: a value, or the shape and dtype the tape kept of one
    if ct_shape != shape:
        ops = _ops()
        lead = len(ct_shape) - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, d in enumerate(shape) if d == 1 and ct_shape[lead + i] != 1)
        if axes:
            ct = ops.reduce_sum_p.bind(ct, axes=axes)
        if (ct.shape if isinstance(ct, Tracer) else np.shape(ct)) != shape:
            ct = ops.reshape_p.bind(ct, new_sizes=shape)
    if ct.dtype != dtype and np.issubdtype(dtype, np.inexact):
        ct = _ops().convert_element_type_p.bind(ct, new_dtype=dtype)
    return ct


def is_float(x) -> bool:
    return np.issubdtype(get_aval(x).dtype, np.inexact)


# ------------------------------------------------------------------------ forward mode


class JVPTracer(Tracer):
    __slots__ = ("primal", "tangent")

    def __init__(self, trace, primal, tangent):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent  # None is a symbolic zero

    aval = property(lambda self: get_aval(self.primal))
    shape = property(operator.attrgetter("primal.shape"))
    dtype = property(operator.attrgetter("primal.dtype"))

    def concrete_value(self):
        return self.primal


class JVPTrace(Trace):
    __slots__ = ()

    def pure(self, val):
        return JVPTracer(self, val, None)

    lift = pure

    def process_primitive(self, prim, tracers, params):
        primals = [t.primal for t in tracers]
        tangents = [t.tangent for t in tracers]
        if all(t is None for t in tangents):
            out = prim.bind(*primals, **params)
            if prim.multiple_results:
                return [JVPTracer(self, o, None) for o in out]
            return JVPTracer(self, out, None)
        if prim.jvp is not None:
            out, t_out = prim.jvp(primals, tangents, **params)
        elif prim.jvp_terms is not None:
            out = prim.bind(*primals, **params)
            t_out = None
            for rule, t in zip(prim.jvp_terms, tangents):
                if t is not None and rule is not None:
                    t_out = add_any(t_out, rule(t, *primals, out=out, **params))
            if t_out is not None and t_out.shape != out.shape:  # a broadcasting primitive
                t_out = _ops().broadcast_to(t_out, out.shape)
        else:
            raise NotImplementedError(f"no forward-mode (jvp) rule for primitive '{prim.name}'")
        if prim.multiple_results:
            return [JVPTracer(self, o, t) for o, t in zip(out, t_out)]
        return JVPTracer(self, out, t_out)


def jvp_flat(fun_flat, primals, tangents):
    with core.new_main(JVPTrace) as main:
        trace = main.trace
        tracers_in = [JVPTracer(trace, p, t) for p, t in zip(primals, tangents)]
        outs = fun_flat(*tracers_in)
        outs = [trace.full_raise(o) for o in outs]
        primals_out = [o.primal for o in outs]
        tangents_out = [o.tangent for o in outs]
    tangents_out = [zeros_like_aval(get_aval(p)) if t is None else t
                    for p, t in zip(primals_out, tangents_out)]
    return primals_out, tangents_out


def _check_tangent_types(primals, tangents):
    for i, (p, t) in enumerate(zip(primals, tangents)):
        pa, ta = get_aval(p), get_aval(t)
        if pa.shape != ta.shape:
            raise ValueError(f"jvp: primal and tangent shapes differ at leaf {i}: "
                             f"primal {pa.str_short()}, tangent {ta.str_short()}")
        if is_float(p) and pa.dtype != ta.dtype:
            raise TypeError(f"jvp: primal and tangent dtypes differ at leaf {i}: "
                            f"primal {pa.str_short()}, tangent {ta.str_short()}")


@api_boundary
def jvp(fun: Callable, primals: Sequence[Any], tangents: Sequence[Any],
        has_aux: bool = False) -> tuple[Any, ...]:
    """Evaluate `fun` and its directional derivative (Jacobian-vector product).

    Args:
        fun: function of arrays (pytrees of arrays) to differentiate.
        primals: tuple (or list) of the arguments at which to differentiate.
        tangents: tuple (or list) of tangent vectors, with the same structure, shapes and
            dtypes as `primals`.
        has_aux: if True, `fun` returns `(output, aux)` and `aux` is returned untouched.

    Returns:
        `(primals_out, tangents_out)` (and `aux` if `has_aux`).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> y, dy = nanofn.jvp(fnp.sin, (0.0,), (2.0,))
        >>> print(float(y), float(dy))
        0.0 2.0
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp: primals and tangents must be tuples or lists of arguments, got "
                        f"{type(primals).__name__} and {type(tangents).__name__}")
    primals_flat, in_tree = tree_flatten(tuple(primals))
    tangents_flat, t_tree = tree_flatten(tuple(tangents))
    if in_tree != t_tree:
        raise ValueError(f"jvp: primal and tangent structures differ:\n  primals:  {in_tree}\n"
                         f"  tangents: {t_tree}")
    primals_flat = [_as_array(p) for p in primals_flat]
    tangents_flat = [_as_array(t) if is_float(p) else None
                     for p, t in zip(primals_flat, tangents_flat)]
    _check_tangent_types(primals_flat, [t if t is not None else p
                                        for p, t in zip(primals_flat, tangents_flat)])
    out_store = {}

    def fun_flat(*args):
        out = fun(*tree_unflatten(in_tree, args))
        if has_aux:
            out, out_store["aux"] = out
        flat, out_store["tree"] = tree_flatten(out)
        return flat

    p_out, t_out = jvp_flat(fun_flat, primals_flat, tangents_flat)
    # as JAX: integer and boolean outputs have float0 tangents (no data, just a shape)
    t_out = [t if is_float(p) else float0_zeros(get_aval(p).shape)
             for p, t in zip(p_out, t_out)]
    tree = out_store["tree"]
    result = (tree_unflatten(tree, p_out), tree_unflatten(tree, t_out))
    if has_aux:
        return result + (_lower_aux(out_store["aux"]),)
    return result


def _as_array(x):
    """Turn a Python scalar argument into an array; leave arrays and tracers alone."""
    if type(x) in core._PY_SCALAR_DTYPE:
        return core.Array(core.scalar_value(x))
    if isinstance(x, (np.ndarray, np.generic)):  # a caller's writable buffer is copied
        return core.Array(core.owned(core.check_numeric(np.asarray(x))))
    if not isinstance(x, (core.Array, Tracer)):
        raise TypeError(f"expected an array argument, got {type(x).__name__}: {x!r}")
    return x


def _lower_aux(aux):
    """Replace tracers of finished transformations in auxiliary outputs by their values."""
    def lower(x):
        if not isinstance(x, Tracer):
            return x
        while isinstance(x, Tracer) and not x._trace.main.alive:
            x = x.concrete_value()
        return Array(x) if type(x) is np.ndarray else x  # a tape tracer's numpy primal
    return tree_map(lower, aux)


# ------------------------------------------------------------------------ reverse mode

_keys = itertools.count()


class TapeTracer(Tracer):
    """A value followed by the tape: its primal (an ndarray when computed eagerly on numpy
    values, else an Array or a tracer of an enclosing transformation) and its key."""

    __slots__ = ("primal", "key")

    def __init__(self, trace, primal, key):
        self._trace = trace
        self.primal = primal
        self.key = key  # None: a constant, no cotangent flows to it

    aval = property(lambda self: get_aval(self.primal))
    shape = property(operator.attrgetter("primal.shape"))
    dtype = property(operator.attrgetter("primal.dtype"))

    def concrete_value(self):
        return self.primal


class TapeTrace(Trace):
    """Runs primitives on primal values and records each one that touches a traced input.

    A tape entry is `(prim, params, keys, primals, out, out_keys)`. When every primal is
    concrete and nothing is being staged (the common eager case), the primitive runs
    straight on numpy values and the entry keeps those numpy values (its `out` is then an
    ndarray, or a list of them, never an Array or a tracer): the reverse pass can then
    run on numpy too, without wrapping (see `backward`). Such an entry keeps of a large
    value its reverse rules do not read (`Primitive.vjp_reads`) only its `ShapedArray`."""

    __slots__ = ()

    def pure(self, val):
        return TapeTracer(self, val, None)

    lift = pure

    takes_raw_args = True  # `bind` passes arguments as they are: no TapeTracer per constant

    def process_primitive(self, prim, tracers, params):
        keys, vals = [], []
        tracked = False
        concrete = True
        for t in tracers:
            if type(t) is TapeTracer and t._trace is self:
                k = t.key
                if k is not None:
                    tracked = True
                keys.append(k)
                t = t.primal
            else:  # a constant, or a value of an enclosing transformation
                keys.append(None)
            if type(t) is np.ndarray:
                vals.append(t)
            elif type(t) is Array:
                vals.append(t._value)
            else:
                if isinstance(t, Tracer):
                    concrete = False
                vals.append(t)
        if concrete and core._state.dynamic_trace is None:
            # the hot path of eager grad: as eager `bind` does, written out; the tracers
            # hold the numpy results (no Array per operation)
            token = core.quiet_enter()
            try:
                out = prim.impl(*vals, **params)
            except Exception as err:  # noqa: BLE001 - re-raised with the primitive's name
                core._impl_failed(prim, vals, params, err)
            finally:
                core.quiet_leave(token)
            if core.debug_nans:
                core.check_nans(prim, out)
            if prim.multiple_results:
                out = res = [o if isinstance(o, np.ndarray) else np.asarray(o) for o in out]
            elif type(out) is np.ndarray:
                res = out
            else:
                out = res = out if isinstance(out, np.ndarray) else np.asarray(out)
        else:  # staged, or under an enclosing transformation: its rules see Arrays, as before
            vals = None
            primals = []
            for t in tracers:
                if type(t) is TapeTracer and t._trace is self:
                    t = t.primal
                primals.append(Array(t) if type(t) is np.ndarray else t)
            out = res = prim.bind(*primals, **params)
        if not tracked or prim.no_derivative:  # no gradient can flow through the results
            if prim.multiple_results:
                return [TapeTracer(self, o, None) for o in res]
            return TapeTracer(self, res, None)
        if prim.multiple_results:
            out_keys = [next(_keys) for _ in out]
            outs = [TapeTracer(self, o, k) for o, k in zip(res, out_keys)]
        else:
            out_keys = next(_keys)
            outs = TapeTracer(self, res, out_keys)
        if core.debug_nans:  # remember where the forward op ran, for backward-pass NaN reports
            params = dict(params, _nan_origin=core.user_frame())
        if vals is None:
            self.main.global_data.append((prim, params, keys, primals, out, out_keys))
        else:
            reads = prim.vjp_reads
            if reads is not None and out.size >= inplace_min_size:
                out = _forget_unread(reads, vals, out)
            self.main.global_data.append((prim, params, keys, vals, out, out_keys))
        return outs


def _forget_unread(reads, vals, out):
    """Replace the large values of a numpy tape entry that its reverse rules never read
    (`Primitive.vjp_reads`) by their shape and dtype, so the tape does not keep them alive.
    Changes `vals` in place; returns the entry's `out`."""
    read_args, out_read = reads
    big = inplace_min_size
    for i, v in enumerate(vals):
        if i not in read_args and type(v) is np.ndarray and v.size >= big:
            vals[i] = ShapedArray(v.shape, v.dtype)
    if not out_read and out.size >= big:
        out = ShapedArray(out.shape, out.dtype)
    return out


def _as_arrays(xs):
    return [Array(x) if isinstance(x, np.ndarray) else x for x in xs]


def _as_numpy(x):
    return x._value if type(x) is Array else x


def _call_rule(prim, ct, primals, out, keys, params):
    """Ask `prim`'s reverse-mode rule for the cotangents of its inputs (a list, None =
    zero) given the output cotangent(s) `ct`."""
    if prim.multiple_results:
        if prim.vjp_joint is None:
            raise NotImplementedError(f"no reverse-mode (vjp) rule for primitive '{prim.name}'")
        return prim.vjp_joint(ct, primals, out, [k is not None for k in keys], **params)
    if prim.vjp_joint is not None:
        return prim.vjp_joint(ct, primals, out, [k is not None for k in keys], **params)
    rules = prim.vjp
    if rules is None:
        raise NotImplementedError(f"no reverse-mode (vjp) rule for primitive '{prim.name}'")
    return [None if k is None or rules[i] is None
            else rules[i](ct, *primals, out=out, **params)
            for i, k in enumerate(keys)]


# Whether the reverse pass of an eager `grad` may run on numpy values (see `backward`).
# Turning it off gives the plain Array path, for tests that compare the two.
numpy_backward = True


# Arrays with fewer elements than this are cheap to allocate: below it the eager reverse
# pass neither writes cotangents in place nor lets the tape forget residuals (the checks
# would cost more than they save). Tests lower it to exercise those paths on small arrays.
inplace_min_size = 1 << 12


def backward(tape, out_keys, out_cts, in_keys, consume=False):
    """Walk the tape in reverse, turning output cotangents into input cotangents.

    With no transformation active and concrete cotangents (the reverse pass of an eager
    `grad`), the walk runs on numpy values: `core._state.numpy_mode` makes every `bind` compute
    straight away on numpy arrays, and cotangents are wrapped as Arrays only at the end.
    Rules of primitives that are not marked `numpy_rules` still see Arrays.

    On numpy values (and with debug_nans off), a primitive's `vjp_numpy` rule is used
    when it has one, and cotangent buffers that nothing else refers to are reused: the
    rule may write into its output cotangent, and cotangents meeting at one value are
    summed into one of their buffers. "Nothing else refers to it" is read off the
    reference count: a buffer this walk allocated and holds in exactly the references it
    knows of (its own dict and locals) cannot be a residual, a user's array or a view.
    Results are bitwise those of the general path: the same ufuncs on the same values.

    `consume=True` (a pullback that runs once, as in `grad`) empties the tape as it goes,
    so each residual is freed as soon as the rule that reads it has run."""
    state = core._state  # this thread's transformation state
    on_numpy = numpy_backward and not state.trace_stack and state.dynamic_trace is None
    if on_numpy:
        for c in out_cts:
            if isinstance(c, Tracer):
                on_numpy = False
    fast = on_numpy and not core.debug_nans
    big = inplace_min_size
    refs = sys.getrefcount
    ndarray = np.ndarray
    np_add = np.add
    cts: dict[int, object] = {}
    add_p = _ops().add_p
    section = core.special_section() if on_numpy else None  # lets `bind` see numpy_mode
    if section is not None:
        section.__enter__()
    prev_mode = state.numpy_mode
    state.numpy_mode = on_numpy
    try:
        for k, ct in zip(out_keys, out_cts):
            if k is not None and ct is not None:
                cts[k] = add_any(cts.get(k), _as_numpy(ct) if on_numpy else ct)
        ct = None
        for prim, params, keys, primals, out, okeys in reversed(tape):
            if consume:
                tape.pop()  # the entry just read (the iterator goes on from the one before)
            if prim.multiple_results:
                ct = [cts.pop(k, None) for k in okeys]
                if all(c is None for c in ct):
                    continue
                numpy_entry = not out or isinstance(out[0], np.ndarray)
            else:
                ct = cts.pop(okeys, None)
                if ct is None:
                    continue
                # recorded on numpy values (`out` an ndarray, or the shape the tape kept)
                numpy_entry = type(out) is ndarray or type(out) is ShapedArray
            if "_nan_origin" in params:
                params = dict(params)
                state.nan_context = (f"in the backward pass of '{prim.name}' (whose forward ran "
                                     f"at {params.pop('_nan_origin')})")
            rules = prim.vjp
            if fast and numpy_entry and prim.vjp_numpy is not None:
                owned = (type(ct) is ndarray and ct.size >= big and ct.base is None
                         and refs(ct) == 2 and ct.dtype == out.dtype)
                ct_in = prim.vjp_numpy(ct, primals, out, keys, owned, **params)
                ct = None  # the rule may have returned it: drop this walk's extra reference
            elif (rules is not None and prim.numpy_rules and (numpy_entry or not on_numpy)
                    and prim.vjp_joint is None and not prim.multiple_results):
                ct_in = None  # the common case, inline: one rule per argument, no wrapping
            elif not on_numpy and not numpy_entry:
                ct_in = _call_rule(prim, ct, primals, out, keys, params)
            else:  # the rule gets Arrays, as in any eager code
                if numpy_entry:
                    primals = _as_arrays(primals)
                    out = _as_arrays(out) if prim.multiple_results else _as_arrays([out])[0]
                if on_numpy:
                    ct = _as_arrays(ct) if prim.multiple_results else Array(ct)
                    state.numpy_mode = False
                    try:
                        ct_in = _call_rule(prim, ct, primals, out, keys, params)
                    finally:
                        state.numpy_mode = True
                    ct_in = [None if g is None else _as_numpy(g) for g in ct_in]
                else:
                    ct_in = _call_rule(prim, ct, primals, out, keys, params)
            listed = type(ct_in) is list
            for i, k in enumerate(keys):
                if k is None:
                    continue
                if ct_in is None:
                    rule = rules[i]
                    if rule is None:
                        continue
                    g = rule(ct, *primals, out=out, **params)
                else:
                    g = ct_in[i]
                    if listed:
                        ct_in[i] = None  # so the list holds no reference to g
                if g is None:
                    continue
                p = primals[i]
                if g.shape != p.shape or g.dtype != p.dtype:
                    g = unbroadcast(g, p)
                prev = cts.get(k)
                if prev is None:
                    cts[k] = g
                elif fast:  # add's impl, straight (what `add_p.bind` would run)
                    if (type(g) is ndarray and g.size >= big and type(prev) is ndarray
                            and g.dtype == prev.dtype and g.shape == prev.shape):
                        # sum into a buffer that only this walk refers to (see the docstring)
                        if prev.base is None and refs(prev) == 3:  # cts, prev, refs' argument
                            np_add(prev, g, out=prev)
                        elif g.base is None and refs(g) == 2:  # g, refs' argument
                            cts[k] = np_add(prev, g, out=g)
                        else:
                            cts[k] = np_add(prev, g)
                    else:
                        cts[k] = np_add(prev, g)
                else:
                    cts[k] = add_p.bind(prev, g)
                g = prev = None
            ct_in = ct = None
    finally:
        state.numpy_mode = prev_mode
        state.nan_context = None
        if section is not None:
            section.__exit__(None, None, None)
    if on_numpy:
        return [None if k not in cts else core.wrap(cts[k]) for k in in_keys]
    return [cts.get(k) for k in in_keys]


def vjp_flat(fun_flat, primals):
    """Run `fun_flat` forward on tape tracers. Returns the outputs, a function mapping
    output cotangents to input cotangents (None for zero), and `extra` (what `fun_flat`
    returned beside its outputs). `pullback(cts, consume=True)` empties the tape as it
    walks it: for a pullback that is called only once."""
    with core.new_main(TapeTrace, []) as main:
        trace = main.trace
        in_keys = [next(_keys) for _ in primals]
        tracers_in = [TapeTracer(trace, p, k) for p, k in zip(primals, in_keys)]
        outs, extra = fun_flat(*tracers_in)
        outs = [trace.full_raise(o) for o in outs]
        primals_out = [Array(p) if type(p) is np.ndarray else p
                       for p in (o.primal for o in outs)]
        out_keys = [o.key for o in outs]
    tape = main.global_data

    def pullback(cts, consume=False):
        token = core.quiet_enter()  # the reverse pass's numpy rules warn no more than impls
        try:
            return backward(tape, out_keys, cts, in_keys, consume)
        finally:
            core.quiet_leave(token)

    return primals_out, pullback, extra


@api_boundary
def vjp(fun: Callable, *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """Evaluate `fun` and return a function that pulls output cotangents back to the inputs.

    Args:
        fun: function of arrays (pytrees of arrays) to differentiate.
        *primals: the arguments at which to differentiate.
        has_aux: if True, `fun` returns `(output, aux)` and `aux` is returned as a third value.

    Returns:
        `(primals_out, vjp_fn)` (and `aux` if `has_aux`), where `vjp_fn(ct)` takes a
        cotangent with the structure of `primals_out` and returns a tuple with one cotangent
        per primal.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> y, f_vjp = nanofn.vjp(lambda x: x * x, fnp.array([1.0, 2.0]))
        >>> f_vjp(fnp.ones(2))
        (Array([2., 4.], dtype=float32),)
    """
    primals_flat, in_tree = tree_flatten(primals)
    primals_flat = [_as_array(p) for p in primals_flat]

    def fun_flat(*args):
        out = fun(*tree_unflatten(in_tree, args))
        out, aux = _split_aux(out, has_aux)
        flat, out_tree = tree_flatten(out)
        return flat, (out_tree, aux)

    out_flat, pullback, (out_tree, aux) = vjp_flat(fun_flat, primals_flat)
    out_avals = [get_aval(o) for o in out_flat]

    def vjp_fn(ct):
        ct_flat, ct_tree = tree_flatten(ct)
        if ct_tree != out_tree:
            raise ValueError("vjp_fn: the cotangent's structure must match the output's:\n"
                             f"  output:    {out_tree}\n  cotangent: {ct_tree}")
        for i, (c, a) in enumerate(zip(ct_flat, out_avals)):
            if np.shape(c) != a.shape:
                raise ValueError(f"vjp_fn: cotangent leaf {i} has shape {np.shape(c)}, "
                                 f"the output has shape {a.shape}")
            kind = np.dtype(c.dtype).kind if hasattr(c, "dtype") else a.dtype.kind  # numbers
            if a.dtype.kind in "fc" and kind != a.dtype.kind:
                raise TypeError(  # precision may differ (it is cast), the kind may not
                    f"vjp_fn: cotangent leaf {i} has dtype {np.dtype(c.dtype).name}, but the "
                    f"output is {a.str_short()}: a cotangent must have its output's dtype")
        from nanofn._dtypes_float0 import float0, float0_zeros
        ct_flat = [None if getattr(c, "dtype", None) == float0 else  # an integer output's
                   c if isinstance(c, (Tracer, core.Array)) else
                   core.Array(np.asarray(c, a.dtype)) for c, a in zip(ct_flat, out_avals)]
        cts = pullback(ct_flat)
        # as JAX: integer and boolean inputs get float0 cotangents (no data, just a shape)
        cts = [float0_zeros(get_aval(p).shape) if get_aval(p).dtype.kind in "biu" else
               zeros_like_aval(_ct_aval(p)) if c is None else c
               for c, p in zip(cts, primals_flat)]
        return tree_unflatten(in_tree, cts)

    # a pytree (with no leaves), as JAX's: it can be passed to jit-compiled functions
    vjp_fn = Partial(api_boundary(vjp_fn))
    result = tree_unflatten(out_tree, out_flat)
    if has_aux:
        return result, vjp_fn, _lower_aux(aux)
    return result, vjp_fn


def _ct_aval(primal):
    aval = get_aval(primal)
    return aval if np.issubdtype(aval.dtype, np.inexact) else aval.update(dtype=np.float32)


def _normalize_argnums(argnums, nargs, fname):
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    for a in nums:
        if not isinstance(a, int) or not -nargs <= a < nargs:
            raise ValueError(f"{fname}: argnums={argnums!r} is out of range for a function "
                             f"called with {nargs} positional argument(s)")
    return single, tuple(a % nargs for a in nums)


def _check_differentiable(fname, argnum, x, holomorphic=False, allow_int=False):
    for leaf in tree_flatten(x)[0]:
        aval = get_aval(leaf)
        if holomorphic and aval.dtype.kind != "c":
            raise TypeError(f"{fname} with holomorphic=True requires inputs with complex dtype, "
                            f"but argument {argnum} has dtype {aval.dtype.name} "
                            f"({aval.str_short()}).")
        if aval.dtype.kind not in "fc" and not (allow_int and aval.dtype.kind in "biu"):
            raise TypeError(
                f"{fname} requires real- or complex-valued inputs (float dtypes), but argument "
                f"{argnum} has dtype {aval.dtype.name} ({aval.str_short()}). Differentiate with "
                "respect to float arrays, or convert with x.astype(nanofn.numpy.float32); "
                "to pass integer data, move it to another argument (argnums), use vjp, or "
                "set allow_int=True (its gradient is then a float0 array).")


def _check_output_dtype(fname, holomorphic, aval):
    """JAX's rule for the output of grad/jacrev: real floating point, or complex with
    holomorphic=True."""
    if holomorphic:
        if aval.dtype.kind != "c":
            raise TypeError(f"{fname} with holomorphic=True requires outputs with complex "
                            f"dtype, but got {aval.str_short()}.")
    elif aval.dtype.kind == "c":
        raise TypeError(f"{fname} requires real-valued outputs (a float dtype), but got "
                        f"{aval.str_short()}. For holomorphic differentiation, pass "
                        "holomorphic=True. For differentiation of non-holomorphic functions "
                        "involving complex outputs, use vjp directly.")


def value_and_grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
                   holomorphic: bool = False, allow_int: bool = False,
                   reduce_axes: Sequence[Any] = ()) -> Callable:
    """Create a function that returns `fun`'s value and its gradient.

    For a real-valued `fun` of a complex input `z = x + iy` the gradient is
    `df/dx - i df/dy` (JAX's convention: `grad(lambda z: abs(z) ** 2)(3 + 4j)` is `6 - 8j`).

    Args:
        fun: function returning a real scalar (or `(scalar, aux)` with `has_aux`).
        argnums: int or tuple of ints: the positional arguments to differentiate.
        has_aux: whether `fun` returns `(value, aux)`.
        holomorphic: whether `fun` is promised to be holomorphic: its inputs and its output
            are then complex, and the gradient is the complex derivative `f'(z)`.
        allow_int: whether integer and boolean inputs are allowed; their gradient is a
            zero-size array of dtype `float0` with the input's shape.

    Returns:
        A function with `fun`'s signature returning `(value, grads)` (or
        `((value, aux), grads)` with `has_aux`); `grads` has the structure of the chosen
        argument(s).

    Example:
        >>> import nanofn
        >>> v, g = nanofn.value_and_grad(lambda x: x ** 3)(2.0)
        >>> print(float(v), float(g))
        8.0 12.0
    """
    _no_reduce_axes("value_and_grad", reduce_axes)
    norm_cache = {}  # number of positional arguments -> (single, argument indices)

    def value_and_grad_f(*args, **kwargs):
        # `vjp` followed by its `vjp_fn`, written out: the checks and pytree work that the
        # public pair does for arbitrary cotangents are not needed for the unit cotangent
        # of a scalar, and eager grad pays for them on every call
        nargs = len(args)
        norm = norm_cache.get(nargs)
        if norm is None:
            single, nums = _normalize_argnums(argnums, nargs, "grad")
            # an argument named twice (argnums=(0, 0)) is differentiated once; its gradient
            # then fills every entry that names it
            uniq = tuple(dict.fromkeys(nums))
            repeat = None if uniq == nums else tuple(uniq.index(i) for i in nums)
            norm = norm_cache[nargs] = single, uniq, repeat
        single, nums, repeat = norm
        primals_flat = [args[i] for i in nums]
        in_tree = None  # None: every differentiated argument is a float Array (one leaf)
        int_leaves = None  # with allow_int: the integer leaves, held fixed
        for leaf in primals_flat:
            if type(leaf) is not Array or leaf.dtype.kind not in "fc" or holomorphic:
                for i in nums:  # the general check, with its error message
                    _check_differentiable("grad", i, args[i], holomorphic, allow_int)
                primals_flat, in_tree = tree_flatten(tuple(primals_flat))
                primals_flat = [_as_array(p) for p in primals_flat]
                if allow_int and any(p.dtype.kind not in "fc" for p in primals_flat):
                    int_leaves = primals_flat
                    primals_flat = [p for p in primals_flat if p.dtype.kind in "fc"]
                break

        def fun_flat(*leaves):
            if int_leaves is not None:  # put the integer leaves back among the float ones
                it = iter(leaves)
                leaves = [p if p.dtype.kind not in "fc" else next(it) for p in int_leaves]
            full = list(args)
            for i, a in zip(nums, leaves if in_tree is None else tree_unflatten(in_tree, leaves)):
                full[i] = a
            out = fun(*full, **kwargs)
            out, aux = _split_aux(out, has_aux)
            if isinstance(out, Tracer) or type(out) is Array:
                return [out], (None, aux)
            flat, out_tree = tree_flatten(out)
            return flat, (out_tree, aux)

        outs, pullback, (out_tree, aux) = vjp_flat(fun_flat, primals_flat)
        value = outs[0] if out_tree is None else tree_unflatten(out_tree, outs)
        aval = get_aval(value) if core.is_array_like(value) else None
        if aval is not None and aval.shape == ():
            _check_output_dtype("grad", holomorphic, aval)
        if aval is None or aval.shape != () or aval.dtype.kind not in "fc":
            what = aval.str_short() if aval is not None else type(value).__name__
            raise TypeError(
                f"grad requires a real scalar output (shape ()), but the function returned "
                f"{what}" + (f" with shape {aval.shape}" if aval is not None else "") +
                ". For a vector output use vjp, jacrev or jacfwd, or reduce it (e.g. .sum()).")
        ct = (core.Array(np.array(1, aval.dtype)) if not isinstance(value, Tracer)
              else _ops().full((), 1, aval.dtype))
        cts = pullback([ct], consume=True)
        cts = [zeros_like_aval(_ct_aval(p)) if c is None else c
               for c, p in zip(cts, primals_flat)]
        if int_leaves is not None:
            from nanofn._dtypes_float0 import float0_zeros
            it = iter(cts)
            cts = [float0_zeros(p.shape) if p.dtype.kind not in "fc" else next(it)
                   for p in int_leaves]
        grads = tuple(cts) if in_tree is None else tree_unflatten(in_tree, cts)
        if repeat is not None:
            grads = tuple(grads[k] for k in repeat)
        grads = grads[0] if single else grads
        if has_aux:
            return (value, _lower_aux(aux)), grads
        return value, grads

    _wraps(value_and_grad_f, fun, "value_and_grad")
    return api_boundary(value_and_grad_f)


def grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
         holomorphic: bool = False, allow_int: bool = False,
         reduce_axes: Sequence[Any] = ()) -> Callable:
    """Create a function that returns the gradient of a scalar function `fun`.

    For a real-valued `fun` of a complex input `z = x + iy` the gradient is
    `df/dx - i df/dy`, as in JAX (`grad(lambda z: abs(z) ** 2)(3 + 4j)` is `6 - 8j`).

    Args:
        fun: function returning a real scalar (or `(scalar, aux)` with `has_aux`).
        argnums: int or tuple of ints: the positional arguments to differentiate.
        has_aux: whether `fun` returns `(value, aux)`; then `(grads, aux)` is returned.
        holomorphic: whether `fun` is promised to be holomorphic (complex inputs and
            output; the gradient is then the complex derivative).
        allow_int: whether integer and boolean inputs are allowed (their gradient is a
            `float0` array).

    Returns:
        A function with `fun`'s signature returning the gradient, with the structure of
        the chosen argument(s).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.grad(lambda x: fnp.sum(x * x))(fnp.array([1.0, 2.0]))
        Array([2., 4.], dtype=float32)
    """
    _no_reduce_axes("grad", reduce_axes)
    vg = value_and_grad(fun, argnums, has_aux, holomorphic, allow_int)

    def grad_f(*args, **kwargs):
        out, g = vg(*args, **kwargs)
        return (g, out[1]) if has_aux else g

    _wraps(grad_f, fun, "grad")
    return api_boundary(grad_f)


def _no_reduce_axes(name, reduce_axes):
    """JAX's deprecated `reduce_axes` argument: only its default, `()`, is accepted."""
    if reduce_axes:
        raise NotImplementedError(f"{name}: the reduce_axes argument is deprecated in JAX "
                                  "and not supported; sum the gradient over those axes")


def _wraps(wrapper, fun, kind):
    """Give the transformed function `fun`'s name, as JAX does (`grad(f).__name__ == "f"`);
    `kind` names the transformation in its `__nanofn_transform__`."""
    name = getattr(fun, "__name__", type(fun).__name__)
    wrapper.__name__ = name
    wrapper.__qualname__ = getattr(fun, "__qualname__", name)
    wrapper.__module__ = getattr(fun, "__module__", wrapper.__module__)
    wrapper.__nanofn_transform__ = kind
    wrapper.__doc__ = getattr(fun, "__doc__", None)
    wrapper.__wrapped__ = fun
