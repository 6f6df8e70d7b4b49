"""`jit`: trace once per signature, simplify the jaxpr, run it as a compiled plan.

`jit(f)(*args)` flattens the arguments and builds a cache key from the pytree structure,
each leaf's shape and dtype, and the values of static arguments. On a miss it traces `f`
with abstract values into a jaxpr (so Python side effects in `f` run once, at trace
time), simplifies it, and compiles a *plan*: a flat list of steps, each an `impl` with its
input and output slots, where every value is dropped as soon as its last reader has run.
On a hit it just runs the plan. No per-equation Python decisions happen at call time.

Called inside another transformation (`grad(jit(f))`, `vmap(jit(f))`), the cached jaxpr is
replayed with `eval_jaxpr`, which binds each equation, so the enclosing transformation
sees ordinary primitives: jit needs no rules of its own.

Simplification (`simplify`) is three passes over the jaxpr: constant folding (equations
whose inputs are all known are evaluated once, at compile time), common subexpression
elimination, and dead code elimination.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from nanofn import _core as core
from nanofn._config import config
from nanofn._core import ClosedJaxpr, Eqn, Jaxpr, Literal, Tracer, Var, get_aval
from nanofn.tree_util import tree_flatten, tree_flatten_with_path, tree_unflatten, keystr

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
            outs = prim.impl(*[core.to_numpy(v) for v in vals], **eqn.params)
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


class Plan:
    """A jaxpr compiled to straight-line steps over numbered slots."""

    def __init__(self, closed: ClosedJaxpr):
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
        literals = []

        def ref(x):
            if type(x) is Literal:
                literals.append(x.val)
                return -len(literals)  # negative: a literal, stored in the frame's tail
            return slot[id(x)]

        last_use: dict[int, int] = {}
        for i, e in enumerate(jaxpr.eqns):
            for x in e.invars:
                if type(x) is Var:
                    last_use[slot[id(x)]] = i
        outs = {slot[id(x)] for x in jaxpr.outvars if type(x) is Var}
        steps = []
        for i, e in enumerate(jaxpr.eqns):
            ins = [ref(x) for x in e.invars]
            dead = [s for s in set(x for x in ins if x >= 0)
                    if last_use.get(s) == i and s not in outs]
            impl = e.primitive.impl
            if e.params:
                impl = functools.partial(impl, **e.params)
            steps.append((impl, ins, [slot[id(v)] for v in e.outvars],
                          e.primitive.multiple_results, dead, e))
        self.steps = steps
        self.literals = literals
        self.out_refs = [ref(x) for x in jaxpr.outvars]

    def __call__(self, args):
        env = [None] * self.nslots + self.literals[::-1]
        for s, c in zip(self.const_slots, self.consts):
            env[s] = c
        for s, a in zip(self.in_slots, args):
            env[s] = a
        for impl, ins, outs, multiple, dead, eqn in self.steps:
            try:
                result = impl(*[env[i] for i in ins])
            except Exception as err:  # noqa: BLE001
                core._impl_failed(eqn.primitive, [env[i] for i in ins], eqn.params, err)
            if core.debug_nans:
                core.check_nans(eqn.primitive, result)
            if multiple:
                for s, r in zip(outs, result):
                    env[s] = r
            else:
                env[outs[0]] = result
            for s in dead:
                env[s] = None
        return [env[i] for i in self.out_refs]


# ------------------------------------------------------------------------ jit


def _leaf_to_value(x):
    """Make a jit argument leaf concrete and typed: Python scalars get their default dtype."""
    if type(x) in core._PY_SCALAR_DTYPE:
        return np.asarray(x, core._PY_SCALAR_DTYPE[type(x)])
    if type(x) is core.Array:
        return x._value
    if isinstance(x, (np.ndarray, np.generic, Tracer)):
        return x
    raise TypeError(f"jit: argument leaf of type {type(x).__name__} is not an array; mark the "
                    "argument static with static_argnums / static_argnames")


class _Compiled:
    """A cached trace: the simplified jaxpr (what transformations replay) and its plan.

    The first call runs the plain plan. A second call with the same signature marks the
    function as hot: its plan is rebuilt with elementwise chains fused into generated
    numba kernels (`nanofn._fusion`). So a function called once never pays numba's
    start-up, and one called in a loop runs fused from its second call on.
    """

    __slots__ = ("closed", "out_tree", "plan", "calls")

    def __init__(self, closed, out_tree):
        self.closed = closed
        self.out_tree = out_tree
        self.plan = Plan(closed)
        self.calls = 0

    def run(self, values):
        self.calls += 1
        if self.calls == 2 and config.nanofn_use_kernels:
            from nanofn._fusion import fuse
            self.plan = Plan(fuse(self.closed))
        return self.plan(values)


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
        self._cache: dict = {}
        self.trace_count = 0

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

    def __call__(self, *args, **kwargs):
        if config.jax_disable_jit:
            return self.fun(*args, **kwargs)
        static, dyn_args, dyn_kwargs = self._split(args, kwargs)
        leaves, in_tree = tree_flatten((dyn_args, dyn_kwargs))
        values = [_leaf_to_value(x) for x in leaves]
        avals = tuple(get_aval(v) for v in values)
        key = (in_tree, avals, static)
        compiled = self._cache.get(key)
        if compiled is None:
            compiled = self._compile(args, kwargs, static, in_tree, avals)
        if any(isinstance(v, Tracer) for v in values) or core.under_transform():
            outs = core.eval_jaxpr(compiled.closed.jaxpr, compiled.closed.consts, *values)
            outs = [o if isinstance(o, (Tracer, core.Array)) else core.wrap(o) for o in outs]
        else:
            outs = [core.Array(o) if isinstance(o, np.ndarray) else core.wrap(o)
                    for o in compiled.run(values)]
        return tree_unflatten(compiled.out_tree, outs)

    def _compile(self, args, kwargs, static, in_tree, avals):
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
        closed = simplify(closed)
        compiled = _Compiled(closed, out_tree_box[0])
        if not any(isinstance(c, Tracer) for c in closed.consts):  # never cache leaked tracers
            self._cache[(in_tree, avals, static)] = compiled
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

    def lower(self, *args, **kwargs):
        """The simplified jaxpr this function runs for these arguments."""
        static, dyn_args, dyn_kwargs = self._split(args, kwargs)
        leaves, in_tree = tree_flatten((dyn_args, dyn_kwargs))
        avals = tuple(get_aval(_leaf_to_value(x)) for x in leaves)
        compiled = self._cache.get((in_tree, avals, static)) or \
            self._compile(args, kwargs, static, in_tree, avals)
        return compiled.closed

    def __get__(self, obj, objtype=None):  # support decorating methods
        return self if obj is None else functools.partial(self, obj)


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


def jit(fun=None, *, static_argnums=(), static_argnames=(), donate_argnums=()):
    """Compile `fun`: trace it once per argument signature and run the cached program.

    Args:
        fun: a pure function of arrays (pytrees of arrays).
        static_argnums: positions of arguments that are Python values (hashable); each new
            value triggers a new trace.
        static_argnames: names of keyword arguments that are static.
        donate_argnums: accepted for JAX compatibility; ignored.

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
    del donate_argnums  # unused: buffers are reused inside the plan instead
    if fun is None:
        return functools.partial(jit, static_argnums=static_argnums,
                                 static_argnames=static_argnames)
    return JitFunction(fun, static_argnums, static_argnames)


def make_jaxpr(fun, static_argnums=()):
    """Return a function that traces `fun` and gives its jaxpr (a readable program).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> print(nanofn.make_jaxpr(lambda x: fnp.sum(fnp.sin(x)))(fnp.zeros(3)))
        { lambda ; a:f32[3]. let
            b:f32[3] = sin a
            c:f32[] = reduce_sum[axes=(0,)] b
          in (c) }
    """
    static_argnums = _as_tuple(static_argnums)

    def make(*args, **kwargs):
        dyn = [a for i, a in enumerate(args) if i not in static_argnums]
        leaves, in_tree = tree_flatten((dyn, kwargs))
        avals = [get_aval(_leaf_to_value(x)) if not hasattr(x, "shape") or
                 isinstance(x, (np.ndarray, core.Array, Tracer, np.generic))
                 else core.ShapedArray(x.shape, x.dtype) for x in leaves]

        def flat_fun(*flat):
            dyn_args, dyn_kwargs = tree_unflatten(in_tree, flat)
            it = iter(dyn_args)
            full = [a if i in static_argnums else next(it) for i, a in enumerate(args)]
            return tree_flatten(fun(*full, **dyn_kwargs))[0]

        return core.trace_to_jaxpr(flat_fun, avals)

    return make


class ShapeDtypeStruct:
    """A shape and dtype standing in for an array (what `eval_shape` returns)."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape, dtype=np.int64)))

    def __repr__(self):
        return f"ShapeDtypeStruct(shape={self.shape}, dtype={self.dtype.name})"

    def __eq__(self, other):
        return isinstance(other, ShapeDtypeStruct) and (self.shape, self.dtype) == \
            (other.shape, other.dtype)

    def __hash__(self):
        return hash((self.shape, self.dtype))


def eval_shape(fun, *args, **kwargs):
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
