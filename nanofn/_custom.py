"""Custom derivatives (`custom_jvp`, `custom_vjp`) and rematerialization (`checkpoint`).

All three wrap a user's Python function in a *higher-order primitive*: a primitive whose
param `call` holds the function (and its rules) as flat functions of lists of arrays. So
every transformation sees one primitive, and composes with it through the ordinary rule
slots:

    custom_jvp_call[call=f]  *args -> *outs
    custom_vjp_call[call=f]  *args -> *outs, *residuals
    checkpoint[call=f]       *args -> *outs

* `impl` runs the function eagerly on concrete arrays (with no tape: nothing inside is
  recorded); `abstract_eval` traces it with `core.trace_to_jaxpr` for the output avals, so
  under `jit` the call is staged as one equation.
* `batch` binds the same primitive again with every function `vmap`ped (all inputs and
  outputs batched along axis 0), so the custom rules still apply inside `vmap` and
  `grad(vmap(f))`.

**custom_vjp.** The reverse-mode tape (`nanofn/_ad.py`) calls `vjp_joint(cts, primals, outs,
needs)` with the values the equation consumed and produced, and nothing else. So the
residuals must be among the outputs: `custom_vjp_call`'s impl runs `fwd`, not `fun`, and
returns the primal outputs followed by the residual leaves; the public wrapper returns
only the primal outputs. The tape then hands the residuals back to `vjp_joint`, which
calls `bwd(residuals, cts)`. Cotangents that reach the residuals themselves (when the
backward pass is differentiated again, as in `grad(grad(f))`) are pulled back by
differentiating `fwd`, as JAX does. The cost of this design: under a transformation that
does not differentiate (`jit`, `vmap`), `fwd` runs in place of `fun` and its residuals are
computed and dropped. When no argument is traced and nothing is being staged, the wrapper
calls `fun` directly, as does a call of the function inside its own `fwd`. `fun` is also
traced once per argument signature to check that `fwd` returns outputs of the same
structure, shapes and dtypes. Forward mode is refused, as in JAX.

**custom_jvp.** `jvp` calls the user's rule. Reverse mode uses it too: the tangent part of
the rule is linear in the tangents, so its VJP (taken with the tape, at a zero tangent)
is the transpose that reverse mode needs.

**checkpoint.** `impl` runs `fun` without recording, so under `grad` the tape keeps only the
checkpoint's inputs and outputs, not its intermediates; `vjp_joint` runs `vjp` of `fun` on
the saved inputs (recomputing the forward pass) and pulls the cotangents back through it.

**Closed-over values.** Functions given to these wrappers may close over values traced by
an enclosing transformation (an argument of an enclosing `jit`, a value being vmapped), as
in JAX. The function and its rules are traced once at the inputs' avals, and the
constants of those programs that are such tracers become the first inputs of the
equation, which then runs the traced programs (see "closed-over tracers" below): a jit
plan, or `grad(jit(f))` replaying a jitted program, reruns the equation on the values it
is given, and `vmap` batches them. A function whose closure visibly holds no tracer
(defined at module level, or closing over Python numbers, arrays and functions) is not
traced for this. The custom rules give derivatives for the arguments only, so, as in
JAX, differentiating with respect to a closed-over value that the outputs depend on is
an error (`CustomVJPException` / `CustomJVPException`); values of a `jit` or a `vmap`
are not differentiated and are fine. `nondiff_argnums` arguments must not be traced
values (use them for Python values: functions, flags, sizes).
"""

from __future__ import annotations

import functools
import inspect
import types
from typing import Callable, Sequence

import numpy as np

from nanofn import _core as core
from nanofn import _ad
from nanofn._ad import TapeTrace, TapeTracer, add_any, backward, jvp_flat, zeros_like_aval
from nanofn._batching import axis_size_of, broadcast_batch, vmap_flat
from nanofn._core import Primitive, ShapedArray, Tracer, get_aval
from nanofn._tree import PyTreeDef, _flatten_up_to_checked
from nanofn._traceback_util import api_boundary
from nanofn.tree_util import tree_flatten, tree_leaves, tree_map, tree_unflatten

__all__ = ["CustomVJPPrimal", "SymbolicZero", "checkpoint", "custom_jvp", "custom_vjp",
           "custom_vjp_primal_tree_values", "remat", "zero_from_primal"]


# ======================================================================== symbolic zeros


class SymbolicZero:
    """A zero tangent or cotangent known without its values: what rules defined with
    `symbolic_zeros=True` may return instead of a zero array (`jax.custom_derivatives.
    SymbolicZero`). It has the `shape` and `dtype` of the value it stands for.

    nanofn hands such rules every tangent (and cotangent) as an array, a zero array where
    JAX would pass a `SymbolicZero`: a rule that tests `type(t) is SymbolicZero` gives the
    same results, doing the work for the zeros too.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn._custom import SymbolicZero
        >>> f = nanofn.custom_jvp(lambda x, y: x * y)
        >>> _ = f.defjvp(lambda p, t: (f(*p), SymbolicZero.from_primal_value(p[0])),
        ...              symbolic_zeros=True)
        >>> nanofn.jvp(f, (2.0, 3.0), (1.0, 1.0))[1]
        Array(0., dtype=float32)
    """

    def __init__(self, aval):
        self.aval = aval

    shape = property(lambda self: tuple(self.aval.shape))
    dtype = property(lambda self: self.aval.dtype)
    ndim = property(lambda self: len(self.aval.shape))
    size = property(lambda self: int(np.prod(self.aval.shape, dtype=np.int64)))

    def __repr__(self):
        return "SymbolicZero"

    @staticmethod
    def from_primal_value(val) -> SymbolicZero:
        """The symbolic zero tangent of the primal value `val` (float0 for integers)."""
        aval = get_aval(val)
        if not np.issubdtype(aval.dtype, np.inexact):
            from nanofn._dtypes_float0 import float0
            aval = ShapedArray(aval.shape, float0)
        return SymbolicZero(aval)

    def instantiate(self):
        """The zero array this stands for."""
        if not np.issubdtype(self.dtype, np.inexact):
            from nanofn._dtypes_float0 import float0_zeros
            return float0_zeros(self.shape)
        return zeros_like_aval(self.aval)


def zero_from_primal(val, symbolic_zeros: bool = False):
    """The zero tangent of each leaf of the pytree `val`: a `SymbolicZero` with
    `symbolic_zeros=True`, else a zero array (float0 for integer leaves).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn._custom import zero_from_primal
        >>> zero_from_primal({"w": fnp.ones(2)})
        {'w': Array([0., 0.], dtype=float32)}
    """
    def zero(x):
        z = SymbolicZero.from_primal_value(x)
        return z if symbolic_zeros else z.instantiate()
    return tree_map(zero, val)


class CustomVJPPrimal:
    """An argument of a `custom_vjp` forward rule defined with `symbolic_zeros=True`:
    `value` is the primal, `perturbed` whether it may have a nonzero tangent (nanofn says
    True for every floating-point value, False for integers and booleans).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> f = nanofn.custom_vjp(lambda x: x * 2.0)
        >>> f.defvjp(lambda x: (x.value * 2.0, None), lambda r, g: (g * 3.0,),
        ...          symbolic_zeros=True)
        >>> nanofn.grad(f)(1.0)
        Array(3., dtype=float32)
    """

    __slots__ = ("perturbed", "value")

    def __init__(self, value, perturbed: bool):
        self.value, self.perturbed = value, perturbed

    def __repr__(self):
        return f"CustomVJPPrimal(value={self.value!r}, perturbed={self.perturbed})"


def custom_vjp_primal_tree_values(tree):
    """The pytree of `CustomVJPPrimal`s `tree` with each replaced by its `value` (for
    forward rules defined with `symbolic_zeros=True`).

    Example:
        >>> from nanofn._custom import CustomVJPPrimal, custom_vjp_primal_tree_values
        >>> custom_vjp_primal_tree_values({"a": CustomVJPPrimal(1.0, True)})
        {'a': 1.0}
    """
    def value(leaf):
        if type(leaf) is not CustomVJPPrimal:
            raise TypeError(f"custom_vjp_primal_tree_values: expected CustomVJPPrimal leaves, "
                            f"got {type(leaf).__name__}")
        return leaf.value
    return tree_map(value, tree)


# ======================================================================== shared machinery


def _name(f):
    return getattr(f, "__name__", None) or type(f).__name__


def _is_float(aval):
    return np.issubdtype(aval.dtype, np.inexact)


def _as_array(x, what):
    if type(x) in core._PY_SCALAR_DTYPE:
        return core.Array(core.scalar_value(x))
    if isinstance(x, (np.ndarray, np.generic)):
        return core.Array(np.asarray(x))
    if isinstance(x, (core.Array, Tracer)):
        return x
    raise TypeError(f"{what} is a {type(x).__name__}, not an array")


def _leaves_as_arrays(leaves, owner, advice):
    """The argument leaves of a `checkpoint`/`custom_vmap` call as arrays, or a TypeError
    naming `owner`, the leaf that is not an array and what to do instead (`advice`)."""
    try:
        return [_as_array(x, "x") for x in leaves]
    except TypeError:
        bad = next(x for x in leaves if not core.is_array_like(x))
        raise TypeError(f"{owner}: an argument holds a {type(bad).__name__} ({bad!r:.40}), "
                        f"which is not an array; {advice}") from None


def _positional(fun, signature, args, kwargs, what):
    """`args` with keyword arguments (and defaults) moved to their positions."""
    if signature is None:
        if kwargs:
            raise TypeError(f"{what}: keyword arguments need a function with a signature")
        return tuple(args)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"{what}: {e}") from None
    bound.apply_defaults()
    if bound.kwargs:
        raise TypeError(f"{what}: keyword-only arguments {sorted(bound.kwargs)} cannot be "
                        "resolved to positions; pass them positionally")
    return bound.args


def _signature(fun):
    try:
        return inspect.signature(fun)
    except (TypeError, ValueError):
        return None


def _arg_label(signature, i):
    if signature is not None:
        params = list(signature.parameters.values())
        if i < len(params) and params[i].kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                  inspect.Parameter.POSITIONAL_OR_KEYWORD):
            return f"argument {params[i].name!r} (positional argument {i})"
    return f"positional argument {i}"


def _concrete(args, kwargs):
    """True when a call would run eagerly anyway: no traced argument and no jaxpr being
    staged. Then the wrappers call the user's function directly (for custom_vjp: `fun`,
    not `fwd`). This is also what lets `fwd` and rules call the function they belong to."""
    if core._state.dynamic_trace is not None:
        return False
    return not any(isinstance(x, Tracer) for x in tree_leaves((args, kwargs)))


def _wrap_np(xs):
    return [core.Array(x) if isinstance(x, np.ndarray) else core.wrap(np.asarray(x)) for x in xs]


def _to_np(outs, call):
    vals = []
    for o in outs:
        if isinstance(o, Tracer):
            raise core.UnexpectedTracerError(
                f"{call.kind} function {call.name!r} returned a traced value while running on "
                "concrete inputs: it closes over a value traced by an enclosing transformation. "
                "Pass that value as an argument instead of closing over it.")
        vals.append(core.to_numpy(o))
    return vals


class _Call:
    """The user's function (and rules) as one primitive's `call` param: flat functions of
    lists of arrays. Hashable by identity, printed by name in jaxprs."""

    kind = "custom"

    def __init__(self, name, in_avals, info):
        self.name = name
        self.in_avals = in_avals  # avals of the flat inputs (one example, under vmap)
        self.info = info  # filled when the function runs: out_tree, n_out (shared by batches)
        self._avals_cache = {}
        self._batched = {}

    def __repr__(self):
        return self.name

    def out_avals(self, fun_flat, avals):
        key = tuple(avals)
        out = self._avals_cache.get(key)
        if out is None:
            out = self._avals_cache[key] = core.trace_to_jaxpr(fun_flat, avals).out_avals
        return out

    def batched(self, size):
        b = self._batched.get(size)
        if b is None:
            b = self._batched[size] = self._make_batched(size)
        return b


def _vmap0(f, size):
    """`f` (flat in, flat out) vmapped with every input and output batched on axis 0."""
    return lambda *xs: vmap_flat(f, list(xs), [0] * len(xs), 0, size)


def _batched_avals(avals, size):
    return [ShapedArray((size,) + a.shape, a.dtype) for a in avals]


def _batch_rule(prim):
    """Batching for a call primitive: batch every input on axis 0, bind the batched call."""
    def rule(vals, dims, *, call):
        size = axis_size_of(vals, dims)
        vals = [broadcast_batch(v, d, size) for v, d in zip(vals, dims)]
        outs = prim.bind(*vals, call=call.batched(size))
        return outs, [0] * len(outs)
    return rule


def _pullback_once(fun_flat, primals, cts, needs=None):
    """The VJP of `fun_flat` at `primals` applied to `cts`, for rules that need one pullback
    (recomputation). Same as `nanofn._ad.vjp_flat` followed by the pullback, but the tape
    is emptied as soon as the pullback has run: a finished MainTrace and its Trace refer
    to each other, so without this the tape would live until the next garbage collection,
    which would defeat `checkpoint`'s memory saving. With `needs` (a flag per primal), only
    the flagged primals are differentiated (the others' cotangents are None): a custom
    function called inside then sees exactly which of its inputs are."""
    if needs is None:
        needs = [True] * len(primals)
    with core.new_main(TapeTrace, []) as main:
        trace = main.trace
        in_keys = [next(_ad._keys) if need else None for need in needs]
        outs = fun_flat(*[TapeTracer(trace, p, k) for p, k in zip(primals, in_keys)])
        out_keys = [trace.full_raise(o).key for o in outs]
    tape = main.global_data
    try:
        return backward(tape, out_keys, cts, in_keys)
    finally:
        tape.clear()


def _cotangent_mask(cts, primals, needs):
    return [c if need and _is_float(get_aval(p)) else None
            for c, p, need in zip(cts, primals, needs)]


# ------------------------------------------------------------------------ closed-over tracers
#
# A function given to these wrappers may close over values traced by an enclosing
# transformation: an argument of the enclosing `jit`, a value being vmapped. The equation
# that records the call must name them as inputs: a jit plan, or an enclosing transformation
# replaying a jitted program (`grad(jit(f))`), runs the equation later, when those tracers
# are gone, and `vmap` must batch them. So the function (and its rules) are traced once at
# the inputs' avals; the constants of those programs that are tracers ("hoisted" values)
# become the first inputs of the call, which then runs the traced programs on them. The
# rules give no derivative for those inputs: one that is needed is an error, as in JAX.


# Types that never hold a tracer. (`core.Array` is tested by exact type: `isinstance(x,
# Array)` is true for tracers too.)
_NO_TRACERS = (type(None), bool, int, float, complex, str, bytes, np.ndarray, np.generic,
               np.dtype, ShapedArray, PyTreeDef, core.Jaxpr, type, types.ModuleType,
               types.BuiltinFunctionType)


def _may_hold_tracers(objs) -> bool:
    """False when none of `objs` can hold a tracer: none is one, nor holds one in its
    containers or in the closure cells, defaults or bound object of its functions. True
    when one does, or when that cannot be told (an object of some other class): then the
    caller traces to find out. So a function and rules defined at module level, or closing
    over Python numbers, arrays and functions, are called as they always were. (Globals are
    not looked at: a tracer kept in a global has leaked anyway.)"""
    seen = set()
    stack = list(objs)
    while stack:
        x = stack.pop()
        if type(x) is core.Array or isinstance(x, _NO_TRACERS) or id(x) in seen:
            continue
        seen.add(id(x))
        if len(seen) > 1000:
            return True
        if isinstance(x, types.FunctionType):
            for cell in x.__closure__ or ():
                try:
                    stack.append(cell.cell_contents)
                except ValueError:  # a cell not yet filled
                    pass
            stack.extend(x.__defaults__ or ())
            stack.extend((x.__kwdefaults__ or {}).values())
        elif isinstance(x, types.MethodType):
            stack += [x.__func__, x.__self__]
        elif isinstance(x, functools.partial):
            stack += [x.func, *x.args, *x.keywords.values()]
        elif isinstance(x, (list, tuple, set, frozenset)):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, core.ClosedJaxpr):
            stack.extend(x.consts)
        elif isinstance(x, _UserFunction):
            stack.extend(x._functions())
        else:
            return True  # a tracer, or an object whose contents cannot be told
    return False


def _trace_or_none(fun_flat, in_avals):
    """`fun_flat` traced at `in_avals`, or None if it cannot be traced abstractly (Python
    control flow on values, numpy on traced values) or raises: then the caller keeps running
    the function itself, which raises its own error where it always did."""
    try:
        return core.trace_to_jaxpr(fun_flat, in_avals)
    except Exception:  # noqa: BLE001 - any failure: fall back to the function itself
        return None


def _tracer_index(closed_jaxprs):
    """The constants of `closed_jaxprs` (None entries skipped) that are tracers, each once,
    and a map from their ids to their positions in that list."""
    hoisted, index = [], {}
    for closed in closed_jaxprs:
        for c in closed.consts if closed is not None else ():
            if isinstance(c, Tracer) and id(c) not in index:
                index[id(c)] = len(hoisted)
                hoisted.append(c)
    return hoisted, index


class _Program:
    """A traced function with its tracer constants made explicit: `program(hoisted, *xs)`
    evaluates the jaxpr with each constant that was a tracer replaced by its value in
    `hoisted` (positions from `index`, see `_tracer_index`). `uses` is the set of those
    positions the program reads."""

    __slots__ = ("consts", "jaxpr", "out_avals", "slots")

    def __init__(self, closed, index):
        consts = list(closed.consts)
        self.slots = [(i, index[id(c)]) for i, c in enumerate(consts) if isinstance(c, Tracer)]
        for i, _ in self.slots:
            consts[i] = None  # supplied at each call: the program keeps no tracer alive
        self.jaxpr, self.consts, self.out_avals = closed.jaxpr, consts, closed.out_avals

    uses = property(lambda self: {j for _, j in self.slots})

    def __call__(self, hoisted, *xs):
        vals = list(self.consts)
        for i, j in self.slots:
            vals[i] = hoisted[j]
        return core.eval_jaxpr(self.jaxpr, vals, *xs)


class CustomVJPException(core.UnexpectedTracerError):
    """A `custom_vjp` function was differentiated with respect to a value it closes over.
    JAX's name for this error; an `UnexpectedTracerError`, which is what JAX raises in most
    of these cases."""


class CustomJVPException(core.UnexpectedTracerError):
    """A `custom_jvp` function was differentiated with respect to a value it closes over
    (see `CustomVJPException`)."""


def _closure_error(call, avals):
    vjp = call.kind == "custom_vjp"
    return (CustomVJPException if vjp else CustomJVPException)(
        f"{call.kind} function {call.name!r} is differentiated with respect to a value it "
        f"closes over ({', '.join(a.str_short() for a in avals)}), but its "
        f"{'fwd and bwd rules give cotangents' if vjp else 'JVP rule gives tangents'} for "
        "its arguments only, so that derivative is not defined. Pass the value to the "
        "function as an argument and extend the rule to it (nanofn.closure_convert turns "
        "the values a function closes over into arguments). Closing over values of an "
        "enclosing jit or vmap is fine: only values being differentiated are refused.")


def _differentiated_closure(call, hoisted, flags):
    """The avals of the hoisted values (the call's first inputs) that the outputs depend on
    (`call.hoisted_used`) and that are differentiated (`flags`)."""
    return [get_aval(h) for h, flag, used in zip(hoisted, flags, call.hoisted_used)
            if flag and used and _is_float(get_aval(h))]


def _check_closure_tangents(call, primals, tangents):
    """Forward mode: refuse a tangent for a value the function closes over, as JAX does."""
    k = len(call.hoisted_used)
    bad = _differentiated_closure(call, primals[:k], [t is not None for t in tangents[:k]])
    if bad:
        raise _closure_error(call, bad)


def _closure_cotangents(call, primals, needs, cts):
    """Reverse mode: the cotangents of the hoisted values, None where they are not needed.
    The rule cannot give a needed one, so that is an error, raised at once when the
    backward pass runs; when it is being traced (a jit, or a rule that traces the pullback
    of a loop body and may differentiate more than it keeps), the cotangent is an equation
    that raises when it runs, so the error comes only if the cotangent is used."""
    k = len(call.hoisted_used)
    bad = _differentiated_closure(call, primals[:k], needs[:k])
    if not bad:
        return [None] * k
    if core._state.dynamic_trace is None:
        raise _closure_error(call, bad)
    seed = next(c for c in cts if c is not None)
    return [closure_cotangent_p.bind(seed, aval=get_aval(h), call=call)
            if need and used and _is_float(get_aval(h)) else None
            for h, need, used in zip(primals[:k], needs[:k], call.hoisted_used)]


def _closure_cotangent_impl(seed, *, aval, call):
    del seed  # unused: it only ties the equation to the backward pass
    raise _closure_error(call, [aval])


def _closure_cotangent_batch(vals, dims, *, aval, call):
    (seed,), (dim,) = vals, dims
    if dim is None:
        return closure_cotangent_p.bind(seed, aval=aval, call=call), None
    size = axis_size_of(vals, dims)
    batched = ShapedArray((size,) + aval.shape, aval.dtype)
    return closure_cotangent_p.bind(seed, aval=batched, call=call), 0


# custom_closure_cotangent[aval, call] seed -> ct: a cotangent that a custom rule cannot
# give (see `_closure_cotangents`). It raises when it runs; when nothing reads it, dead-code
# elimination drops it first. `seed` (a cotangent of the call) only places it in the
# backward pass.
closure_cotangent_p = Primitive("custom_closure_cotangent")
closure_cotangent_p.impl = _closure_cotangent_impl
closure_cotangent_p.abstract_eval = lambda seed, *, aval, call: aval
closure_cotangent_p.batch = _closure_cotangent_batch
closure_cotangent_p.jvp = lambda primals, tangents, **params: (
    closure_cotangent_p.bind(*primals, **params), None)
closure_cotangent_p.no_derivative = True


class _UserFunction:
    """What `custom_jvp` and `custom_vjp` share: argument handling and output checks."""

    kind = "custom"

    def __init__(self, fun, nondiff_argnums, nondiff_argnames=()):
        functools.update_wrapper(self, fun)
        self._cfun = fun
        self._csig = _signature(fun)
        nums = [int(i) for i in nondiff_argnums]
        if isinstance(nondiff_argnames, str):
            nondiff_argnames = (nondiff_argnames,)
        if nondiff_argnames:  # JAX's names for positions: found in the signature
            params = list(self._csig.parameters) if self._csig is not None else []
            for name in nondiff_argnames:
                if name not in params:
                    raise ValueError(f"{self.kind} function {getattr(fun, '__name__', fun)!r}: "
                                     f"nondiff_argnames names {name!r}, which is not one of "
                                     f"its parameters {params}")
                if params.index(name) not in nums:
                    nums.append(params.index(name))
        self.nondiff_argnums = tuple(nums)
        self._cout_cache = {}

    # Read-only views of the function and its rules, under JAX's names. The state lives in
    # `_c*` attributes: wrappers such as `jit` copy this object's __dict__ onto themselves
    # (functools.update_wrapper), so plain names like `fun` could overwrite theirs.
    fun = property(lambda self: self._cfun)

    def __getattr__(self, name):
        # Attributes this object lacks are the wrapped function's, as in JAX: so
        # `custom_vjp(custom_vmap(f))` still offers the inner function's `def_vmap`.
        fun = self.__dict__.get("_cfun")
        if fun is None or name.startswith("__"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(fun, name)

    def _split(self, args, kwargs):
        """Positional args -> (all args, nondiff values, flat diff leaves, diff tree)."""
        name = _name(self._cfun)
        args = _positional(self._cfun, self._csig, args, kwargs, f"{self.kind} function "
                           f"{name!r}")
        nondiff = {}
        for i in self.nondiff_argnums:
            if not -len(args) <= i < len(args):
                raise ValueError(f"{self.kind} function {name!r}: nondiff_argnums contains {i}, "
                                 f"but it was called with {len(args)} positional argument(s)")
            i %= len(args)
            if any(isinstance(x, Tracer) for x in tree_leaves(args[i])):
                raise core.UnexpectedTracerError(
                    f"{self.kind} function {name!r}: {_arg_label(self._csig, i)} is in "
                    "nondiff_argnums but holds a traced value. nondiff_argnums is for values "
                    "that cannot be traced (functions, flags, sizes); pass arrays as ordinary "
                    "arguments (their derivative can be set to zero in the rule).")
            nondiff[i] = args[i]
        diff_pos = [i for i in range(len(args)) if i not in nondiff]
        leaves, diff_tree = tree_flatten(tuple(args[i] for i in diff_pos))
        labels = None
        out = []
        for x in leaves:
            try:
                out.append(_as_array(x, "x"))
            except TypeError:
                labels = labels or [_arg_label(self._csig, i) for i in diff_pos]
                raise TypeError(
                    f"{self.kind} function {name!r}: an argument holds a "
                    f"{type(x).__name__} ({x!r:.40}), which is not an array. Mark non-array "
                    f"arguments with nondiff_argnums (differentiable ones: {', '.join(labels)})"
                ) from None
        return args, nondiff, diff_pos, out, diff_tree

    def _functions(self):
        """The user's function and rules (what `_may_hold_tracers` looks into)."""
        return [self._cfun]

    def _call_through(self, prim, args, kwargs):
        """Call the function as one equation of `prim`, with the traced values it closes
        over as the call's first inputs; or call it directly when nothing is traced."""
        concrete = _concrete(args, kwargs)
        if concrete and not (core._state.trace_stack and
                             _may_hold_tracers([*self._functions(), args, kwargs])):
            return self._cfun(*args, **kwargs)
        try:
            full, nondiff, diff_pos, leaves, diff_tree = self._split(args, kwargs)
        except (TypeError, ValueError):
            if concrete:  # not a call the rule could serve: as it always ran
                return self._cfun(*args, **kwargs)
            raise
        call = self._make_call(full, nondiff, diff_pos, leaves, diff_tree)
        hoisted = []
        if concrete or _may_hold_tracers([*self._functions(), *nondiff.values()]):
            hoisted, call = self._hoist(call)
        if concrete and not hoisted:  # closes over no traced value after all
            return self._cfun(*args, **kwargs)
        outs = prim.bind(*hoisted, *leaves, call=call)
        return tree_unflatten(call.info["out_tree"], outs[:call.n_out])

    def _rebuild(self, args, nondiff, diff_pos, diff_tree, xs):
        full = list(args)
        for i, a in zip(diff_pos, tree_unflatten(diff_tree, xs)):
            full[i] = a
        return full

    def _fun_out(self, args, nondiff, diff_pos, diff_tree, xs):
        """The output structure and avals of the primal function (traced once per
        signature), to check what a rule returns against; None if the function cannot be
        traced abstractly (Python control flow on values), and then nothing is checked."""
        avals = tuple(get_aval(x) for x in xs)
        try:
            key = (diff_tree, avals, tuple(sorted(nondiff.items())))
            hash(key)
        except TypeError:
            key = None
        hit = self._cout_cache.get(key) if key is not None else None
        if hit is not None:
            return hit
        box = {}

        def flat(*ys):
            out = self._cfun(*self._rebuild(args, nondiff, diff_pos, diff_tree, ys))
            leaves, box["tree"] = tree_flatten(out)
            return leaves

        try:
            out_avals = core.trace_to_jaxpr(flat, avals).out_avals
        except (core.ConcretizationError, core.TracerArrayConversionError):
            return None
        result = (box["tree"], out_avals)
        if key is not None:
            self._cout_cache[key] = result
        return result

    def _check_primal_out(self, rule_kind, rule, out_tree, out_flat, expected):
        if expected is None:
            return
        exp_tree, exp_avals = expected
        name, rname = _name(self._cfun), _name(rule)
        if out_tree != exp_tree:
            raise TypeError(
                f"{rule_kind} rule {rname!r} of {self.kind} function {name!r} must return "
                "primal outputs with the same structure as the function:\n"
                f"  function returns: {exp_tree}\n  rule returns:     {out_tree}")
        for k, (o, a) in enumerate(zip(out_flat, exp_avals)):
            got = get_aval(o)
            if got.shape != a.shape or got.dtype != a.dtype:
                raise TypeError(
                    f"{rule_kind} rule {rname!r} of {self.kind} function {name!r} returned a "
                    f"primal output {got.str_short()} at leaf {k}, but the function returns "
                    f"{a.str_short()} there; they must have the same shape and dtype")


# ======================================================================== custom_vjp


class _VJPCall(_Call):
    kind = "custom_vjp"

    # set per instance: fwd_flat(*xs, inner_rule=False) -> outs + residuals;
    # bwd_flat(hoisted, residuals, cts) -> one cotangent array per input leaf after the
    # hoisted ones. `hoisted_used` has one flag per hoisted input (the first inputs):
    # whether fwd reads it (a value only bwd reads does not change the outputs).
    hoisted_used = ()

    n_out = property(lambda self: self.info["n_out"])

    def _make_batched(self, size):
        b = _VJPCall(f"vmap({self.name})", _batched_avals(self.in_avals, size), self.info)
        b.hoisted_used = self.hoisted_used
        b.fwd_flat = lambda *xs, inner_rule=False: _vmap0(
            functools.partial(self.fwd_flat, inner_rule=inner_rule), size)(*xs)

        def bwd_flat(hoisted, res, cts):
            k, m = len(hoisted), len(hoisted) + len(res)
            return _vmap0(lambda *a: self.bwd_flat(list(a[:k]), list(a[k:m]), list(a[m:])),
                          size)(*hoisted, *res, *cts)
        b.bwd_flat = bwd_flat
        return b


custom_vjp_call_p = Primitive("custom_vjp_call", multiple_results=True)
custom_vjp_call_p.impl = lambda *xs, call: _to_np(call.fwd_flat(*_wrap_np(xs)), call)
custom_vjp_call_p.abstract_eval = lambda *avals, call: call.out_avals(call.fwd_flat, avals)


def _custom_vjp_call_jvp(primals, tangents, *, call):
    k = len(call.hoisted_used)
    _check_closure_tangents(call, primals, tangents)
    if all(t is None for t in tangents[k:]):  # only values that bwd alone reads have tangents
        outs = custom_vjp_call_p.bind(*primals, call=call)
        return outs, [None] * len(outs)
    raise TypeError(
        f"can't apply forward-mode autodiff (jvp) to a custom_vjp function ({call.name!r}). "
        "custom_vjp defines only reverse mode: use grad / vjp / jacrev, or define the function "
        "with custom_jvp (whose rule serves both modes) to use jvp / jacfwd / hessian.")


def _custom_vjp_call_vjp(cts, primals, outs, needs, *, call):
    n, k = call.n_out, len(call.hoisted_used)
    closure_cts = _closure_cotangents(call, primals, needs, cts)
    out_cts, res_cts = list(cts[:n]), list(cts[n:])
    result = [None] * len(primals)
    if any(c is not None for c in out_cts):
        out_cts = [zeros_like_aval(get_aval(o)) if c is None else c
                   for c, o in zip(out_cts, outs[:n])]
        result[k:] = call.bwd_flat(list(primals[:k]), list(outs[n:]), out_cts)
    if any(c is not None for c in res_cts):
        # The residuals were used by a backward pass that is itself being differentiated
        # (grad of grad): their cotangents flow back through fwd, by ordinary autodiff.
        # The call of the function inside fwd keeps its own rule here (`inner_rule`): the
        # forward pass may hold a loop that has no reverse-mode rule (Newton iterations).
        res_in = _pullback_once(lambda *xs: call.fwd_flat(*xs, inner_rule=True)[n:],
                                list(primals), res_cts, [False] * k + list(needs[k:]))
        result = [add_any(a, b) for a, b in zip(result, res_in)]
    result[:k] = closure_cts
    return _cotangent_mask(result, primals, needs)


custom_vjp_call_p.jvp = _custom_vjp_call_jvp
custom_vjp_call_p.vjp_joint = _custom_vjp_call_vjp
custom_vjp_call_p.batch = _batch_rule(custom_vjp_call_p)


class custom_vjp(_UserFunction):
    """Give a function a custom reverse-mode derivative (a VJP rule).

    Decorate the primal function, then attach the rule with `defvjp(fwd, bwd)`:

    * `fwd(*args) -> (out, residuals)` runs the function and saves what the backward pass
      needs (`residuals`: any pytree of arrays); it takes the same arguments as `fun`.
    * `bwd(*nondiff_args, residuals, ct) -> tuple` returns one cotangent per argument not
      in `nondiff_argnums` (a tuple even for one argument), each with its argument's
      structure, shapes and dtypes; `None` (for an argument or any subtree) means zero.

    Under `grad`/`vjp`/`jacrev` the rule is used instead of differentiating `fun`; it also
    works under `jit` and `vmap` and in their compositions. Forward mode (`jvp`, `jacfwd`,
    `hessian`) is not available, as in JAX. Called on concrete values, the function runs
    `fun`; on traced values `fwd` runs (see the notes of `nanofn/_custom.py`). `fun`, `fwd`
    and `bwd` may close over values of an enclosing `jit` or `vmap`; differentiating with
    respect to a closed-over value is an error (`nanofn.errors.UnexpectedTracerError`), as
    in JAX.

    Args:
        fun: the primal function.
        nondiff_argnums: positions of arguments that are not differentiated and are not
            arrays (functions, flags, sizes); `bwd` receives them first.
        nondiff_argnames: the same, by parameter name.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> @nanofn.custom_vjp
        ... def clip_gradient(x):
        ...     return x
        >>> def fwd(x):
        ...     return x, None
        >>> def bwd(res, g):
        ...     return (fnp.clip(g, -1.0, 1.0),)
        >>> clip_gradient.defvjp(fwd, bwd)
        >>> float(nanofn.grad(lambda x: 5.0 * clip_gradient(x))(2.0))
        1.0
    """

    kind = "custom_vjp"

    def __init__(self, fun, nondiff_argnums=(), nondiff_argnames=()):
        super().__init__(fun, nondiff_argnums, nondiff_argnames)
        self._cfwd = None
        self._cbwd = None
        self._csymbolic = False  # defvjp(..., symbolic_zeros=True)
        self._cin_fwd = 0  # > 0 while fwd runs with calls of this function inlined
        self._cin_inner = 0  # > 0 while fwd is traced with those calls keeping the rule
        self._cin_bwd = 0  # > 0 while bwd is traced

    fwd = property(lambda self: self._cfwd)
    bwd = property(lambda self: self._cbwd)

    def _functions(self):
        return [self._cfun, self._cfwd, self._cbwd]

    def defvjp(self, fwd, bwd, symbolic_zeros=False, optimize_remat=False):
        """Set the rule: `fwd(*args) -> (out, residuals)`, `bwd(*nondiff, residuals, ct)`.

        Args:
            fwd: the forward function, returning the output and the residuals.
            bwd: the backward function, returning a tuple of cotangents.
            symbolic_zeros: if True, `fwd` receives each array leaf of the
                differentiable arguments as a `CustomVJPPrimal(value, perturbed)`, and
                `bwd` may return `SymbolicZero`s (as None). The cotangents given to `bwd`
                are arrays (zeros where JAX would pass a `SymbolicZero`).
            optimize_remat: accepted for compatibility; no effect.

        Example:
            >>> import nanofn, nanofn.numpy as fnp
            >>> f = nanofn.custom_vjp(lambda x: fnp.sin(x))
            >>> f.defvjp(lambda x: (fnp.sin(x), fnp.cos(x)), lambda cos_x, g: (cos_x * g,))
            >>> print(round(float(nanofn.grad(f)(0.0)), 3))
            1.0
        """
        del optimize_remat  # unused: there is no separate remat pass to optimize
        self._cfwd, self._cbwd = fwd, bwd
        self._csymbolic = bool(symbolic_zeros)

    @api_boundary
    def __call__(self, *args, **kwargs):
        name = _name(self._cfun)
        if self._cfwd is None:
            raise AttributeError(f"No VJP rule is defined for the custom_vjp function {name!r}: "
                                 f"call {name}.defvjp(fwd, bwd) before using it")
        # Inside its own fwd (the usual `return f(x), res`), the function is just `fun`:
        # fwd's outputs are differentiated by bwd, so the inner call needs no rule (and
        # staging it would trace fwd again, forever).
        if self._cin_fwd:
            return self._cfun(*args, **kwargs)
        return self._call_through(custom_vjp_call_p, args, kwargs)

    def _make_call(self, args, nondiff, diff_pos, leaves, diff_tree):
        in_avals = [get_aval(x) for x in leaves]
        call = _VJPCall(_name(self._cfun), in_avals, {})
        rebuild = functools.partial(self._rebuild, args, nondiff, diff_pos, diff_tree)
        nondiff_vals = [nondiff[i] for i in sorted(nondiff)]

        def fwd_flat(*xs, inner_rule=False):
            # Calls of this function inside fwd run `fun` (see __call__), except when fwd
            # is being differentiated (`inner_rule`): there the inner call is one level up
            # and keeps its rule, so grad(grad(f)) uses f's rule at both orders, as in JAX.
            guard = 0 if inner_rule else 1
            self._cin_fwd += guard
            try:
                if self._csymbolic:
                    pair = self._cfwd(*rebuild([CustomVJPPrimal(x, _is_float(get_aval(x)))
                                                for x in xs]))
                else:
                    pair = self._cfwd(*rebuild(xs))
            finally:
                self._cin_fwd -= guard
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise TypeError(
                    f"custom_vjp fwd rule {_name(self._cfwd)!r} of function {call.name!r} must "
                    "return a pair (primal_output, residuals), got "
                    f"{type(pair).__name__}" + (f" of length {len(pair)}"
                                                if isinstance(pair, (tuple, list)) else ""))
            out, res = pair
            out_flat, out_tree = tree_flatten(out)
            self._check_primal_out("fwd", self._cfwd, out_tree, out_flat,
                                   self._fun_out(args, nondiff, diff_pos, diff_tree, xs))
            res_flat, call.info["res_tree"] = tree_flatten(res)
            try:
                res_flat = [_as_array(r, "r") for r in res_flat]
            except TypeError:
                bad = next(r for r in res_flat if not core.is_array_like(r))
                raise TypeError(
                    f"custom_vjp fwd rule {_name(self._cfwd)!r} of function {call.name!r} "
                    f"returned a residual of type {type(bad).__name__} ({bad!r:.40}); residuals "
                    "must be arrays (or pytrees of arrays). Keep Python values in "
                    "nondiff_argnums, or close over them in bwd.") from None
            call.info["out_tree"], call.info["n_out"] = out_tree, len(out_flat)
            return [_as_array(o, "output") for o in out_flat] + res_flat

        def bwd_flat(hoisted, res, cts):
            del hoisted  # unused: bwd reads what it closes over itself
            res_tree = call.info["res_tree"]
            ct_tree = call.info["out_tree"]
            cts_in = self._cbwd(*nondiff_vals, tree_unflatten(res_tree, res),
                              tree_unflatten(ct_tree, cts))
            return self._check_cotangents(cts_in, diff_pos, diff_tree, in_avals, call.name)

        call.fwd_flat, call.bwd_flat = fwd_flat, bwd_flat
        return call

    def _hoist(self, call):
        """The call with the traced values that fwd and bwd close over as its first inputs
        (see "closed-over tracers" above): `(hoisted values, call)`, or `([], call)` when
        they close over none (or fwd cannot be traced abstractly)."""
        avals = list(call.in_avals)
        fwd = _trace_or_none(call.fwd_flat, avals)
        if fwd is None:
            return [], call
        n = call.info["n_out"]
        res_avals, ct_avals = fwd.out_avals[n:], fwd.out_avals[:n]
        r = len(res_avals)
        # bwd, traced now while what it closes over is alive; not inside such a trace of
        # this same function (a bwd that calls the function, as implicit differentiation
        # does, would trace bwd again, forever): there bwd runs as it is when needed.
        bwd = None
        if not self._cin_bwd:
            self._cin_bwd += 1
            try:
                bwd = _trace_or_none(lambda *a: call.bwd_flat([], list(a[:r]), list(a[r:])),
                                     res_avals + ct_avals)
            finally:
                self._cin_bwd -= 1
        hoisted, index = _tracer_index([fwd, bwd])
        if not hoisted:
            call._avals_cache[tuple(avals)] = fwd.out_avals  # spares abstract_eval a trace
            return [], call
        # fwd with the inner call of this function keeping its rule, for the residuals'
        # cotangents in grad(grad(f)) (see `_custom_vjp_call_vjp`), traced now while what it
        # closes over is alive. Not inside such a trace of this same function: that inner
        # call traces it when it is needed, if it still can (else see `fwd_flat` below).
        inner = None
        if not self._cin_inner:
            self._cin_inner += 1
            try:
                inner = _trace_or_none(lambda *xs: call.fwd_flat(*xs, inner_rule=True), avals)
            finally:
                self._cin_inner -= 1
            hoisted, index = _tracer_index([fwd, bwd, inner])
        k = len(hoisted)
        fwd, bwd = _Program(fwd, index), bwd and _Program(bwd, index)
        programs = {False: fwd, True: inner and _Program(inner, index)}
        new = _VJPCall(call.name, [get_aval(h) for h in hoisted] + avals, call.info)
        new.hoisted_used = tuple(j in fwd.uses for j in range(k))
        new._avals_cache[tuple(new.in_avals)] = fwd.out_avals

        def fwd_flat(*xs, inner_rule=False):
            program = programs[inner_rule]
            if program is None:  # trace it now, if what fwd closes over is still alive;
                # if not, fwd as traced above (the inner call inlined) stands in for it
                closed = _trace_or_none(lambda *a: call.fwd_flat(*a, inner_rule=True), avals)
                ok = closed is not None and all(
                    id(c) in index for c in closed.consts if isinstance(c, Tracer))
                program = programs[True] = _Program(closed, index) if ok else fwd
            return program(xs[:k], *xs[k:])

        def bwd_flat(hoisted, res, cts):
            if bwd is None:  # not traced (see above), or not traceable: it runs as it is
                return call.bwd_flat([], res, cts)
            return bwd(hoisted, *res, *cts)

        new.fwd_flat, new.bwd_flat = fwd_flat, bwd_flat
        return hoisted, new

    def _check_cotangents(self, cts_in, diff_pos, diff_tree, in_avals, name):
        """One cotangent array per input leaf from what `bwd` returned (zeros for None)."""
        rule = f"custom_vjp bwd rule {_name(self._cbwd)!r} of function {name!r}"
        n = len(diff_pos)
        if not isinstance(cts_in, (tuple, list)) or len(cts_in) != n:
            got = (f"a {type(cts_in).__name__} of length {len(cts_in)}"
                   if isinstance(cts_in, (tuple, list)) else
                   f"a value of type {type(cts_in).__name__}")
            raise TypeError(
                f"{rule} must return a tuple with one cotangent per differentiable argument "
                f"({n} here: {', '.join(_arg_label(self._csig, i) for i in diff_pos)}), "
                f"got {got}. For a single argument return a 1-tuple: `return (ct,)`.")
        avals_per_arg = tree_unflatten(diff_tree, in_avals)
        out = []
        for k, (ct, arg_avals) in enumerate(zip(cts_in, avals_per_arg)):
            label = _arg_label(self._csig, diff_pos[k])
            ct_leaves, ct_def = tree_flatten(ct, is_leaf=lambda x: x is None)
            ct_leaves = [None if isinstance(c, SymbolicZero) else c for c in ct_leaves]
            try:
                subtrees = _flatten_up_to_checked(ct_def, arg_avals, rule, "the cotangent",
                                                  "the argument")
            except ValueError as e:
                raise TypeError(f"{rule} returned a cotangent for {label} whose structure does "
                                f"not match the argument's:\n{e}") from None
            for c, sub in zip(ct_leaves, subtrees):
                if c is None:
                    out.extend(zeros_like_aval(a) for a in tree_leaves(sub))
                    continue
                if not isinstance(sub, ShapedArray):
                    raise TypeError(f"{rule} returned a single array for {label}, where the "
                                    f"argument is a pytree ({tree_map(lambda a: a.shape, sub)})")
                out.append(_checked_ct(c, sub, rule, label))
        return out


def _checked_ct(c, aval, rule, label):
    if type(c) in core._PY_SCALAR_DTYPE and aval.shape == ():
        return core.Array(np.asarray(c, aval.dtype))
    if not core.is_array_like(c):
        raise TypeError(f"{rule} returned a {type(c).__name__} as the cotangent for {label}; "
                        "cotangents must be arrays (or None for zero)")
    got = get_aval(c)
    if not _is_float(aval):
        return zeros_like_aval(aval)  # integer inputs have no cotangent; ignore what came back
    if got.shape != aval.shape or got.dtype != aval.dtype:
        raise TypeError(f"{rule} returned a cotangent of type {got.str_short()} for {label}, "
                        f"whose primal is {aval.str_short()}: a cotangent must have the shape "
                        "and dtype of its primal")
    return _as_array(c, "cotangent")


# ======================================================================== custom_jvp


class _JVPCall(_Call):
    kind = "custom_jvp"

    # set per instance: fun_flat(*xs) -> outs; jvp_flat(primals, tangents) -> outs + t_outs,
    # over all inputs. `hoisted_used` has one flag per hoisted input (the first inputs):
    # whether the function reads it (a value only the rule's tangent reads does not change
    # the outputs); the rule ignores their tangents.
    hoisted_used = ()

    n_out = property(lambda self: self.info["out_tree"].num_leaves)

    def _make_batched(self, size):
        b = _JVPCall(f"vmap({self.name})", _batched_avals(self.in_avals, size), self.info)
        b.hoisted_used = self.hoisted_used
        b.fun_flat = _vmap0(self.fun_flat, size)
        b.jvp_flat = lambda ps, ts: _vmap0(
            lambda *a: self.jvp_flat(list(a[:len(ps)]), list(a[len(ps):])), size)(*ps, *ts)
        return b


custom_jvp_call_p = Primitive("custom_jvp_call", multiple_results=True)
custom_jvp_call_p.impl = lambda *xs, call: _to_np(call.fun_flat(*_wrap_np(xs)), call)
custom_jvp_call_p.abstract_eval = lambda *avals, call: call.out_avals(call.fun_flat, avals)


def _instantiate(tangents, primals):
    return [zeros_like_aval(get_aval(p)) if t is None else t for t, p in zip(tangents, primals)]


def _custom_jvp_call_jvp(primals, tangents, *, call):
    _check_closure_tangents(call, primals, tangents)
    res = call.jvp_flat(list(primals), _instantiate(tangents, primals))
    n = len(res) // 2
    return res[:n], res[n:]


def _custom_jvp_call_vjp(cts, primals, outs, needs, *, call):
    # The rule's tangent output is linear in the tangents, so its VJP at a zero tangent
    # is the transpose of the JVP: reverse mode from the custom forward rule.
    k = len(call.hoisted_used)
    closure_cts = _closure_cotangents(call, primals, needs, cts)
    primals = list(primals)
    n = len(outs)

    def tangent_part(*ts):
        return call.jvp_flat(primals, list(ts))[n:]

    zero_tangents = _instantiate([None] * len(primals), primals)
    result = _pullback_once(tangent_part, zero_tangents, list(cts), [False] * k + list(needs[k:]))
    result[:k] = closure_cts
    return _cotangent_mask(result, primals, needs)


custom_jvp_call_p.jvp = _custom_jvp_call_jvp
custom_jvp_call_p.vjp_joint = _custom_jvp_call_vjp
custom_jvp_call_p.batch = _batch_rule(custom_jvp_call_p)


class custom_jvp(_UserFunction):
    """Give a function a custom forward-mode derivative (a JVP rule), used by every
    differentiation mode.

    Attach the rule with `defjvp`: `jvp(*nondiff_args, primals, tangents) ->
    (primal_out, tangent_out)`, where `primals` and `tangents` are tuples of the arguments
    not in `nondiff_argnums` (tangents of integer arguments are integer zeros). The tangent
    output must be linear in the tangents: reverse mode (`grad`, `vjp`) transposes it.
    Or give one rule per argument with `defjvps`. The function and its rule may close over
    values of an enclosing `jit` or `vmap`; differentiating with respect to a closed-over
    value is an error (`nanofn.errors.UnexpectedTracerError`), as in JAX.

    Args:
        fun: the primal function.
        nondiff_argnums: positions of arguments that are not differentiated and are not
            arrays (functions, flags, sizes); the rule receives them first.
        nondiff_argnames: the same, by parameter name.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> @nanofn.custom_jvp
        ... def log1pexp(x):
        ...     return fnp.log(1.0 + fnp.exp(x))
        >>> @log1pexp.defjvp
        ... def log1pexp_jvp(primals, tangents):
        ...     (x,), (t,) = primals, tangents
        ...     return log1pexp(x), t * (1.0 - 1.0 / (1.0 + fnp.exp(x)))
        >>> float(nanofn.grad(log1pexp)(100.0))  # the naive derivative gives nan
        1.0
    """

    kind = "custom_jvp"

    def __init__(self, fun, nondiff_argnums=(), nondiff_argnames=()):
        super().__init__(fun, nondiff_argnums, nondiff_argnames)
        self._cjvp = None
        self._cin_rule = 0  # > 0 while the rule is traced with calls of this function kept
        self._cinline = 0  # > 0 while the rule is traced with those calls inlined

    jvp = property(lambda self: self._cjvp)

    def _functions(self):
        return [self._cfun, self._cjvp]

    def defjvp(self, jvp, symbolic_zeros=False):
        """Set the rule `jvp(*nondiff_args, primals, tangents) -> (primal_out, tangent_out)`.

        Returns the rule, so `defjvp` can be used as a decorator. With
        `symbolic_zeros=True` the rule may return `SymbolicZero`s in `tangent_out`; it is
        given every tangent as an array (a zero array where JAX would pass a
        `SymbolicZero`), which a rule written for symbolic zeros handles alike. (Any rule
        may return `SymbolicZero`s.)

        Example:
            >>> import nanofn, nanofn.numpy as fnp
            >>> f = nanofn.custom_jvp(lambda x: fnp.sin(x))
            >>> _ = f.defjvp(lambda p, t: (f(p[0]), 2.0 * t[0]))
            >>> print(float(nanofn.jvp(f, (0.0,), (1.0,))[1]))
            2.0
        """
        self._cjvp = jvp
        return jvp

    def defjvps(self, *jvps):
        """Set one rule per argument: `jvps[i](t_i, primal_out, *primals)` is argument i's
        contribution to the output tangent (None: argument i has no derivative).

        Example:
            >>> import nanofn, nanofn.numpy as fnp
            >>> f = nanofn.custom_jvp(lambda x, y: x * y)
            >>> f.defjvps(lambda tx, out, x, y: tx * y, lambda ty, out, x, y: x * ty)
            >>> print(float(nanofn.grad(f, argnums=1)(3.0, 4.0)))
            3.0
        """
        if self.nondiff_argnums:
            raise TypeError(f"custom_jvp function {_name(self._cfun)!r}: defjvps cannot be used "
                            "with nondiff_argnums; use defjvp")

        def jvp(primals, tangents):
            if len(jvps) != len(primals):
                raise TypeError(f"custom_jvp function {_name(self._cfun)!r}: defjvps got "
                                f"{len(jvps)} rule(s) for {len(primals)} argument(s)")
            out = self(*primals)
            t_out = None
            for rule, t in zip(jvps, tangents):
                if rule is None:
                    continue
                term = rule(t, out, *primals)
                t_out = term if t_out is None else tree_map(add_any, t_out, term)
            if t_out is None:
                t_out = tree_map(lambda o: zeros_like_aval(get_aval(o)), out)
            return out, t_out

        jvp.__name__ = f"defjvps({_name(self._cfun)})"
        self.defjvp(jvp)

    @api_boundary
    def __call__(self, *args, **kwargs):
        name = _name(self._cfun)
        if self._cjvp is None:
            raise AttributeError(f"No JVP rule is defined for the custom_jvp function {name!r}: "
                                 f"call {name}.defjvp(rule) before using it")
        if self._cinline:  # inside a trace of the rule made to find what it closes over
            return self._cfun(*args, **kwargs)
        return self._call_through(custom_jvp_call_p, args, kwargs)

    def _make_call(self, args, nondiff, diff_pos, leaves, diff_tree):
        call = _JVPCall(_name(self._cfun), [get_aval(x) for x in leaves], {})
        rebuild = functools.partial(self._rebuild, args, nondiff, diff_pos, diff_tree)
        nondiff_vals = [nondiff[i] for i in sorted(nondiff)]

        def fun_flat(*xs):
            out_flat, call.info["out_tree"] = tree_flatten(self._cfun(*rebuild(xs)))
            return out_flat

        def jvp_flat(primals, tangents):
            rname = _name(self._cjvp)
            result = self._cjvp(*nondiff_vals, tree_unflatten(diff_tree, primals),
                              tree_unflatten(diff_tree, tangents))
            if not (isinstance(result, (tuple, list)) and len(result) == 2):
                raise TypeError(f"custom_jvp rule {rname!r} of function {call.name!r} must return "
                                f"a pair (primal_out, tangent_out), got {type(result).__name__}")
            p_flat, p_tree = tree_flatten(result[0])
            t_flat, t_tree = tree_flatten(result[1])
            self._check_primal_out("jvp", self._cjvp, p_tree, p_flat,
                                   self._fun_out(args, nondiff, diff_pos, diff_tree, primals))
            if t_tree != p_tree:
                raise TypeError(f"custom_jvp rule {rname!r} of function {call.name!r} must return "
                                "primal and tangent outputs with the same structure:\n"
                                f"  primal_out:  {p_tree}\n  tangent_out: {t_tree}")
            t_out = []
            for k, (p, t) in enumerate(zip(p_flat, t_flat)):
                pa = get_aval(p)
                if isinstance(t, SymbolicZero):
                    t = zeros_like_aval(pa)
                if type(t) in core._PY_SCALAR_DTYPE and pa.shape == ():
                    t = core.Array(np.asarray(t, pa.dtype))
                ta = get_aval(t)
                if ta.shape != pa.shape or (_is_float(pa) and ta.dtype != pa.dtype):
                    raise TypeError(
                        f"custom_jvp rule {rname!r} of function {call.name!r} returned a "
                        f"tangent {ta.str_short()} for the primal output {pa.str_short()} at "
                        f"leaf {k}; a tangent must have its primal's shape and dtype")
                t_out.append(_as_array(t, "tangent"))
            call.info["out_tree"] = p_tree
            return [_as_array(p, "output") for p in p_flat] + t_out

        call.fun_flat, call.jvp_flat = fun_flat, jvp_flat
        return call

    def _hoist(self, call):
        """The call with the traced values that the function and its rule close over as
        its first inputs (see "closed-over tracers" above): `(hoisted values, call)`, or
        `([], call)` when they close over none (or the function cannot be traced)."""
        avals = list(call.in_avals)
        fun = _trace_or_none(call.fun_flat, avals)
        if fun is None:
            return [], call
        m = len(avals)

        def rule_flat(*a):
            return call.jvp_flat(list(a[:m]), list(a[m:]))

        # The rule, with calls of this function inside it keeping their rule (so that a
        # second derivative uses it too), traced now while what it closes over is alive.
        # Inside such a trace of this same function, those calls inline the function
        # instead (else each would trace the rule again, forever), and trace the rule for
        # themselves when it is needed, if they still can.
        nested = self._cin_rule > 0
        guard = "_cinline" if nested else "_cin_rule"
        setattr(self, guard, getattr(self, guard) + 1)
        try:
            rule = _trace_or_none(rule_flat, avals + avals)
        finally:
            setattr(self, guard, getattr(self, guard) - 1)
        hoisted, index = _tracer_index([fun, rule])
        if not hoisted:
            call._avals_cache[tuple(avals)] = fun.out_avals  # spares abstract_eval a trace
            return [], call
        k = len(hoisted)
        fun = _Program(fun, index)
        rule = rule and _Program(rule, index)
        state = {"rule": rule, "retrace": nested}
        new = _JVPCall(call.name, [get_aval(h) for h in hoisted] + avals, call.info)
        new.hoisted_used = tuple(j in fun.uses for j in range(k))
        new._avals_cache[tuple(new.in_avals)] = fun.out_avals
        new.fun_flat = lambda *xs: fun(xs[:k], *xs[k:])

        def jvp_flat(primals, tangents):
            if state["retrace"]:  # trace it now, if what the rule closes over is alive;
                # if not, the rule as traced above (with inner calls inlined) stands in
                state["retrace"] = False
                closed = _trace_or_none(rule_flat, avals + avals)
                if closed is not None and all(id(c) in index for c in closed.consts
                                              if isinstance(c, Tracer)):
                    state["rule"] = _Program(closed, index)
            program = state["rule"]
            if program is None:  # the rule cannot be traced abstractly: it runs as it is
                return call.jvp_flat(list(primals[k:]), list(tangents[k:]))
            return program(primals[:k], *primals[k:], *tangents[k:])

        new.jvp_flat = jvp_flat
        return hoisted, new


# ======================================================================== checkpoint


class _RematCall(_Call):
    kind = "checkpoint"

    # set per instance: fun_flat(*xs) -> outs

    def _make_batched(self, size):
        b = _RematCall(f"vmap({self.name})", _batched_avals(self.in_avals, size), self.info)
        b.fun_flat = _vmap0(self.fun_flat, size)
        return b


checkpoint_p = Primitive("checkpoint", multiple_results=True)
checkpoint_p.impl = lambda *xs, call: _to_np(call.fun_flat(*_wrap_np(xs)), call)
checkpoint_p.abstract_eval = lambda *avals, call: call.out_avals(call.fun_flat, avals)


def _checkpoint_jvp(primals, tangents, *, call):
    return jvp_flat(call.fun_flat, list(primals), list(tangents))


def _checkpoint_vjp(cts, primals, outs, needs, *, call):
    del outs  # unused: the forward pass is recomputed from the saved inputs
    return _cotangent_mask(_pullback_once(call.fun_flat, list(primals), list(cts), needs),
                           primals, needs)


checkpoint_p.jvp = _checkpoint_jvp
checkpoint_p.vjp_joint = _checkpoint_vjp
checkpoint_p.batch = _batch_rule(checkpoint_p)


def _hoist_closure(call, leaves):
    """Make the traced values that `call.fun_flat` closes over explicit inputs.

    A checkpointed function may close over values traced by an enclosing transformation
    (a layer's weights under `grad`, used inside a `scan` body). The equation that records
    the call must name them as inputs: otherwise a control-flow body or a jit plan that runs
    it later would find the closure's tracers, and reverse mode would not see the
    dependence. So the function is traced once at the inputs' avals; its constants that are
    tracers come first among the new call's inputs, and the forward pass and its
    recomputation run the traced program (the user's function runs once per call). Returns
    `(hoisted values, call)`; a function that cannot be traced abstractly (Python control
    flow on values) keeps its call, which runs the function itself."""
    found = _hoist_tracers(call.fun_flat, call.in_avals)
    if found is None:
        return [], call
    hoisted, fun_flat, out_avals = found
    new = _RematCall(call.name, [get_aval(x) for x in hoisted] + list(call.in_avals), call.info)
    new.fun_flat = fun_flat
    new._avals_cache[tuple(new.in_avals)] = out_avals
    return hoisted, new


def _hoist_tracers(fun_flat, in_avals):
    """`(hoisted, fun_flat', out_avals)`: `fun_flat` traced once at `in_avals`, its
    constants that are tracers of enclosing transformations (`hoisted`) made its first
    inputs (`fun_flat'` takes them, then the original inputs, and runs the traced
    program). None when the function cannot be traced abstractly (Python control flow on
    values). Shared by `checkpoint` and `custom_vmap`."""
    try:
        closed = core.trace_to_jaxpr(fun_flat, in_avals, inline_scalars=False)
    except core.ConcretizationError:
        return None
    consts = list(closed.consts)
    hoist = [i for i, c in enumerate(consts) if isinstance(c, Tracer)]
    jaxpr, k = closed.jaxpr, len(hoist)

    def traced(*xs):
        vals = list(consts)
        for i, x in zip(hoist, xs[:k]):
            vals[i] = x
        return core.eval_jaxpr(jaxpr, vals, *xs[k:])
    return [consts[i] for i in hoist], traced, closed.out_avals


def checkpoint(fun: Callable, *, prevent_cse: bool = True, policy: Callable | None = None,
               static_argnums: int | Sequence[int] = (),
               static_argnames: str | Sequence[str] = ()) -> Callable:
    """Make `fun` recompute its intermediates in the backward pass instead of saving them.

    Under `grad` (`vjp`, `jacrev`), the forward pass of a checkpointed function keeps only
    its inputs (and outputs); the backward pass reruns `fun` on the saved inputs to get
    the intermediates it needs. This trades compute for memory: checkpointing each block of
    a deep network keeps one activation per block alive instead of every intermediate.
    Values and derivatives are unchanged. Also known as `remat`.

    Args:
        fun: function of arrays (pytrees of arrays).
        prevent_cse: accepted for compatibility with JAX. The checkpointed call is one
            opaque equation under `jit`, so common-subexpression elimination cannot merge
            the recomputation with the forward pass anyway.
        policy: one of JAX's saving policies (`nanofn.checkpoint_policies`) or None. It is
            accepted and, whatever it says, only the inputs are saved and the rest is
            recomputed (values and gradients are the same under every policy).
        static_argnums: positions of arguments that are Python values, not arrays.
        static_argnames: the same, by parameter name (passed by position or by keyword).

    Returns:
        A function with `fun`'s signature.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> layer = nanofn.checkpoint(lambda w, x: fnp.tanh(x @ w))
        >>> g = nanofn.grad(lambda w, x: layer(w, x).sum())(fnp.ones((3, 3)), fnp.ones((2, 3)))
        >>> g.shape
        (3, 3)
    """
    del prevent_cse  # unused: see the docstring
    if policy is not None and not callable(policy):
        raise TypeError(f"checkpoint: policy must be a function (see "
                        f"nanofn.checkpoint_policies) or None, got {type(policy).__name__}")
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    names = {static_argnames} if isinstance(static_argnames, str) else set(static_argnames)
    if names:  # the positions of the named parameters count as static too
        try:
            params = list(inspect.signature(fun).parameters)
        except (TypeError, ValueError):
            params = []
        static += tuple(i for i, p in enumerate(params) if p in names)
    name = _name(fun)

    def checkpointed(*args, **kwargs):
        if _concrete(args, kwargs):
            return fun(*args, **kwargs)  # nothing traces it, so nothing would be saved
        nums = {i % len(args) for i in static if -len(args) <= i < len(args)}
        dyn = tuple(a for i, a in enumerate(args) if i not in nums)
        static_kw = {k: v for k, v in kwargs.items() if k in names}
        kwargs = {k: v for k, v in kwargs.items() if k not in names}
        leaves, in_tree = tree_flatten((dyn, kwargs))
        leaves = _leaves_as_arrays(leaves, f"checkpoint of {name!r}",
                                   "mark it with static_argnums")
        call = _RematCall(name, [get_aval(x) for x in leaves], {})

        def fun_flat(*xs):
            dyn_args, kw = tree_unflatten(in_tree, xs)
            it = iter(dyn_args)
            full = [args[i] if i in nums else next(it) for i in range(len(args))]
            out_flat, call.info["out_tree"] = tree_flatten(fun(*full, **kw, **static_kw))
            return out_flat

        call.fun_flat = fun_flat
        hoisted, call = _hoist_closure(call, leaves)
        outs = checkpoint_p.bind(*hoisted, *leaves, call=call)
        return tree_unflatten(call.info["out_tree"], outs)

    functools.update_wrapper(checkpointed, fun)
    return checkpointed


remat = checkpoint
