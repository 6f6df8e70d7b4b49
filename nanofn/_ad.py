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

import numpy as np

from nanofn import _core as core
from nanofn._core import Array, Tracer, Trace, get_aval
from nanofn.tree_util import tree_flatten, tree_unflatten, tree_map, tree_structure

# ------------------------------------------------------------------------ helpers used by rules


_base = None


def _ops():
    global _base
    if _base is None:
        from nanofn.ops import _base  # noqa: the ops layer sits above this module's import
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
    aval = get_aval(primal)
    if ct_shape != shape:
        ops = _ops()
        lead = len(ct_shape) - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, d in enumerate(shape) if d == 1 and ct_shape[lead + i] != 1)
        if axes:
            ct = ops.reduce_sum_p.bind(ct, axes=axes)
        if (ct.shape if isinstance(ct, Tracer) else np.shape(ct)) != shape:
            ct = ops.reshape_p.bind(ct, new_sizes=shape)
    ct_dtype = ct.dtype
    if ct_dtype != aval.dtype and np.issubdtype(aval.dtype, np.inexact):
        ct = _ops().convert_element_type_p.bind(ct, new_dtype=aval.dtype)
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


def jvp(fun, primals, tangents, has_aux=False):
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
    tree = out_store["tree"]
    result = (tree_unflatten(tree, p_out), tree_unflatten(tree, t_out))
    if has_aux:
        return result + (_lower_aux(out_store["aux"]),)
    return result


def _as_array(x):
    """Turn a Python scalar argument into an array; leave arrays and tracers alone."""
    if type(x) in core._PY_SCALAR_DTYPE:
        return core.Array(np.asarray(x, core._PY_SCALAR_DTYPE[type(x)]))
    if isinstance(x, (np.ndarray, np.generic)):
        return core.Array(np.asarray(x))
    if not isinstance(x, (core.Array, Tracer)):
        raise TypeError(f"expected an array argument, got {type(x).__name__}: {x!r}")
    return x


def _lower_aux(aux):
    """Replace tracers of finished transformations in auxiliary outputs by their values."""
    def lower(x):
        while isinstance(x, Tracer) and not x._trace.main.alive:
            x = x.concrete_value()
        return x
    return tree_map(lower, aux)


# ------------------------------------------------------------------------ reverse mode

_keys = itertools.count()


class TapeTracer(Tracer):
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
    run on numpy too, without wrapping (see `backward`)."""

    __slots__ = ()

    def pure(self, val):
        return TapeTracer(self, val, None)

    lift = pure

    takes_raw_args = True  # `bind` passes arguments as they are: no TapeTracer per constant

    def process_primitive(self, prim, tracers, params):
        primals, keys, vals = [], [], []
        tracked = False
        for t in tracers:
            if type(t) is TapeTracer and t._trace is self:
                p, k = t.primal, t.key
                if k is not None:
                    tracked = True
            else:  # a constant, or a value of an enclosing transformation
                p, k = t, None
            primals.append(p)
            keys.append(k)
            if vals is not None:
                if type(p) is Array:
                    vals.append(p._value)
                elif isinstance(p, Tracer):
                    vals = None
                else:
                    vals.append(p)
        if vals is not None and core._dynamic_trace is None:
            try:  # as eager `bind` does (written out here: the hot path of eager grad)
                out = prim.impl(*vals, **params)
            except Exception as err:  # noqa: BLE001 - re-raised with the primitive's name
                core._impl_failed(prim, vals, params, err)
            if core.debug_nans:
                core.check_nans(prim, out)
            if prim.multiple_results:
                out = [o if isinstance(o, np.ndarray) else np.asarray(o) for o in out]
                out_arr = [Array(o) for o in out]
            else:
                if type(out) is not np.ndarray:
                    out = out if isinstance(out, np.ndarray) else np.asarray(out)
                out_arr = Array(out)
        else:
            vals = None
            out = out_arr = prim.bind(*primals, **params)
        if not tracked:
            if prim.multiple_results:
                return [TapeTracer(self, o, None) for o in out_arr]
            return TapeTracer(self, out_arr, None)
        if prim.multiple_results:
            out_keys = [next(_keys) for _ in out]
            outs = [TapeTracer(self, o, k) for o, k in zip(out_arr, out_keys)]
        else:
            out_keys = next(_keys)
            outs = TapeTracer(self, out_arr, out_keys)
        if core.debug_nans:  # remember where the forward op ran, for backward-pass NaN reports
            params = dict(params, _nan_origin=core.user_frame())
        self.main.global_data.append(
            (prim, params, keys, primals if vals is None else vals, out, out_keys))
        return outs


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


def backward(tape, out_keys, out_cts, in_keys):
    """Walk the tape in reverse, turning output cotangents into input cotangents.

    With no transformation active and concrete cotangents (the reverse pass of an eager
    `grad`), the walk runs on numpy values: `core.numpy_mode` makes every `bind` compute
    straight away on numpy arrays, and cotangents are wrapped as Arrays only at the end.
    Rules of primitives that are not marked `numpy_rules` still see Arrays."""
    on_numpy = (numpy_backward and not core._trace_stack and core._dynamic_trace is None
                and not any(isinstance(c, Tracer) for c in out_cts))
    cts: dict[int, object] = {}
    add_p = _ops().add_p
    prev_mode = core.numpy_mode
    core.numpy_mode = on_numpy
    try:
        for k, ct in zip(out_keys, out_cts):
            if k is not None and ct is not None:
                cts[k] = add_any(cts.get(k), _as_numpy(ct) if on_numpy else ct)
        for prim, params, keys, primals, out, okeys in reversed(tape):
            if prim.multiple_results:
                ct = [cts.pop(k, None) for k in okeys]
                if all(c is None for c in ct):
                    continue
                numpy_entry = not out or isinstance(out[0], np.ndarray)
            else:
                ct = cts.pop(okeys, None)
                if ct is None:
                    continue
                numpy_entry = isinstance(out, np.ndarray)  # recorded on numpy values
            if "_nan_origin" in params:
                params = dict(params)
                core.nan_context = (f"in the backward pass of '{prim.name}' (whose forward ran "
                                    f"at {params.pop('_nan_origin')})")
            rules = prim.vjp
            if (rules is not None and prim.numpy_rules and (numpy_entry or not on_numpy)
                    and prim.vjp_joint is None and not prim.multiple_results):
                ct_in = None  # the common case, inline: one rule per argument, no wrapping
            elif not on_numpy and not numpy_entry:
                ct_in = _call_rule(prim, ct, primals, out, keys, params)
            else:  # the rule gets Arrays, as in any eager code
                if numpy_entry:
                    primals = _as_arrays(primals)
                    out = _as_arrays(out) if prim.multiple_results else Array(out)
                if on_numpy:
                    ct = _as_arrays(ct) if prim.multiple_results else Array(ct)
                    core.numpy_mode = False
                    try:
                        ct_in = _call_rule(prim, ct, primals, out, keys, params)
                    finally:
                        core.numpy_mode = True
                    ct_in = [None if g is None else _as_numpy(g) for g in ct_in]
                else:
                    ct_in = _call_rule(prim, ct, primals, out, keys, params)
            for i, k in enumerate(keys):
                if k is not None:
                    if ct_in is None:
                        rule = rules[i]
                        g = None if rule is None else rule(ct, *primals, out=out, **params)
                    else:
                        g = ct_in[i]
                    if g is not None:
                        p = primals[i]
                        if g.shape != p.shape or g.dtype != p.dtype:
                            g = unbroadcast(g, p)
                        prev = cts.get(k)
                        cts[k] = g if prev is None else add_p.bind(prev, g)
    finally:
        core.numpy_mode = prev_mode
        core.nan_context = None
    if on_numpy:
        return [None if k not in cts else core.wrap(cts[k]) for k in in_keys]
    return [cts.get(k) for k in in_keys]


def vjp_flat(fun_flat, primals):
    """Run `fun_flat` forward on tape tracers. Returns the outputs, a function mapping
    output cotangents to input cotangents (None for zero), and the tape's main trace."""
    with core.new_main(TapeTrace, []) as main:
        trace = main.trace
        in_keys = [next(_keys) for _ in primals]
        tracers_in = [TapeTracer(trace, p, k) for p, k in zip(primals, in_keys)]
        outs, extra = fun_flat(*tracers_in)
        outs = [trace.full_raise(o) for o in outs]
        primals_out = [o.primal for o in outs]
        out_keys = [o.key for o in outs]
    tape = main.global_data

    def pullback(cts):
        return backward(tape, out_keys, cts, in_keys)

    return primals_out, pullback, extra


def vjp(fun, *primals, has_aux=False):
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
        aux = None
        if has_aux:
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError("has_aux=True requires the function to return a pair "
                                f"(output, aux), got {type(out).__name__}")
            out, aux = out
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
        ct_flat = [c if isinstance(c, (Tracer, core.Array)) else
                   core.Array(np.asarray(c, a.dtype)) for c, a in zip(ct_flat, out_avals)]
        cts = pullback(ct_flat)
        cts = [zeros_like_aval(_ct_aval(p)) if c is None else c
               for c, p in zip(cts, primals_flat)]
        return tree_unflatten(in_tree, cts)

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


def _check_differentiable(fname, argnum, x):
    for leaf in tree_flatten(x)[0]:
        aval = get_aval(leaf)
        if aval.dtype.kind not in "fc":  # not inexact
            raise TypeError(
                f"{fname} requires real- or complex-valued inputs (float dtypes), but argument "
                f"{argnum} has dtype {aval.dtype.name} ({aval.str_short()}). Differentiate with "
                "respect to float arrays, or convert with x.astype(nanofn.numpy.float32); "
                "to pass integer data, move it to another argument (argnums).")


def value_and_grad(fun, argnums=0, has_aux=False):
    """Create a function that returns `fun`'s value and its gradient.

    Args:
        fun: function returning a real scalar (or `(scalar, aux)` with `has_aux`).
        argnums: int or tuple of ints: the positional arguments to differentiate.
        has_aux: whether `fun` returns `(value, aux)`.

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
    def value_and_grad_f(*args, **kwargs):
        single, nums = _normalize_argnums(argnums, len(args), "grad")
        for i in nums:
            _check_differentiable("grad", i, args[i])

        def f_partial(*diff_args):
            full = list(args)
            for i, a in zip(nums, diff_args):
                full[i] = a
            return fun(*full, **kwargs)

        out = vjp(f_partial, *[args[i] for i in nums], has_aux=has_aux)
        if has_aux:
            value, vjp_fn, aux = out
        else:
            (value, vjp_fn), aux = out, None
        aval = get_aval(value) if core.is_array_like(value) else None
        if aval is None or aval.shape != () or aval.dtype.kind != "f":
            what = aval.str_short() if aval is not None else type(value).__name__
            raise TypeError(
                f"grad requires a real scalar output (shape ()), but the function returned "
                f"{what}" + (f" with shape {aval.shape}" if aval is not None else "") +
                ". For a vector output use vjp, jacrev or jacfwd, or reduce it (e.g. .sum()).")
        grads = vjp_fn(core.Array(np.array(1, aval.dtype)) if not isinstance(value, Tracer)
                       else _ops().full((), 1, aval.dtype))
        grads = grads[0] if single else grads
        return ((value, aux) if has_aux else value), grads

    _wraps(value_and_grad_f, fun, "value_and_grad")
    return value_and_grad_f


def grad(fun, argnums=0, has_aux=False):
    """Create a function that returns the gradient of a scalar function `fun`.

    Args:
        fun: function returning a real scalar (or `(scalar, aux)` with `has_aux`).
        argnums: int or tuple of ints: the positional arguments to differentiate.
        has_aux: whether `fun` returns `(value, aux)`; then `(grads, aux)` is returned.

    Returns:
        A function with `fun`'s signature returning the gradient, with the structure of
        the chosen argument(s).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.grad(lambda x: fnp.sum(x * x))(fnp.array([1.0, 2.0]))
        Array([2., 4.], dtype=float32)
    """
    vg = value_and_grad(fun, argnums, has_aux)

    def grad_f(*args, **kwargs):
        out, g = vg(*args, **kwargs)
        return (g, out[1]) if has_aux else g

    _wraps(grad_f, fun, "grad")
    return grad_f


def _wraps(wrapper, fun, kind):
    name = getattr(fun, "__name__", type(fun).__name__)
    wrapper.__name__ = f"{kind}({name})"
    wrapper.__qualname__ = wrapper.__name__
    wrapper.__doc__ = getattr(fun, "__doc__", None)
    wrapper.__wrapped__ = fun
