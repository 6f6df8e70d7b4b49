"""Stages of ahead-of-time compilation (`jax.stages`): `jit(f).trace(...)`, `.lower()`,
`.compile()`.

A jitted function compiles on its first call with each argument signature. Its stages can
also be taken one at a time, before any call, from example arguments or from
`ShapeDtypeStruct`s (no data):

* `jit(f).trace(*args)` gives a `Traced`: the jaxpr as traced (what `make_jaxpr` shows),
  with the signature's argument and output shapes;
* `.lower()` (or `jit(f).lower(*args)`) gives a `Lowered`: the simplified jaxpr nanofn
  compiles (constants folded, common subexpressions merged, dead code dropped), as text
  (`as_text`) or as the `ClosedJaxpr` itself (`compiler_ir`), with a cost estimate;
* `.compile()` gives a `Compiled`: the signature's plan, built now (kernels fused and
  compiled, as a jitted function's second call would otherwise build them in the
  background), callable with arguments of exactly that signature.

What nanofn has in place of XLA's: the "compiler input" is a jaxpr, the "executable" is
a plan (the source of one straight-line Python function calling numpy and generated numba
kernels; `Compiled.as_text` shows it), and the analyses are nanofn's own estimates from
the jaxpr and the plan (see `Lowered.cost_analysis` and `Compiled.memory_analysis`).

Stages share the jitted function's cache: lowering a signature traces it once and caches
it, compiling it builds its plan there, so a later plain call neither traces nor waits.

Example:
    >>> import nanofn, nanofn.numpy as fnp
    >>> f = nanofn.jit(lambda w, x: fnp.tanh(x @ w))
    >>> compiled = f.lower(fnp.ones((3, 2)), fnp.ones((4, 3))).compile()
    >>> compiled(fnp.ones((3, 2)), fnp.zeros((4, 3)))
    Array([[0., 0.],
           [0., 0.],
           [0., 0.],
           [0., 0.]], dtype=float32)
    >>> f(fnp.ones((3, 2)), fnp.zeros((4, 3))).shape, f.trace_count
    ((4, 2), 1)
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
import time
from typing import Any, Protocol, runtime_checkable

import numpy as np

from nanofn import _core as core
from nanofn._core import ClosedJaxpr, Jaxpr, Literal, Tracer, Var, get_aval
from nanofn.tree_util import tree_flatten, tree_structure, tree_unflatten

__all__ = ["ArgInfo", "Compiled", "CompilerOptions", "Lowered", "Traced", "Wrapped"]

CompilerOptions = dict  # JAX's type of `compile(compiler_options=...)`: XLA flags by name


@dataclasses.dataclass(frozen=True)
class ArgInfo:
    """One argument leaf of a staged signature: its abstract value and whether it is
    donated (never, here: nanofn accepts `donate_argnums` and ignores it).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> (info,), kwargs = nanofn.jit(lambda x: x).lower(fnp.ones(3)).args_info
        >>> info.shape, info.dtype, info.donated, kwargs
        ((3,), dtype('float32'), False, {})
    """

    _aval: Any
    donated: bool = False

    @property
    def shape(self) -> tuple:
        """The argument's shape."""
        return self._aval.shape

    @property
    def dtype(self) -> np.dtype:
        """The argument's dtype."""
        return self._aval.dtype

    def __repr__(self):
        return f"ArgInfo(shape={self.shape}, dtype={self.dtype.name}, donated={self.donated})"


class _Stage:
    """What every stage knows: the jitted function, its signature and cached trace."""

    __slots__ = ("_jit", "_key", "_compiled", "_names", "_labels")

    def __init__(self, jit_fun, key, compiled, args, kwargs):
        self._jit = jit_fun
        self._key = key  # (in_tree, avals, static, flags): the jitted function's cache key
        self._compiled = compiled  # its `_Compiled`: simplified jaxpr, out_tree, plan
        static = key[2]
        self._names = jit_fun._arg_names(args, kwargs, static)  # one per argument leaf
        self._labels = _positional_labels(jit_fun, len(args), static)

    @property
    def fun_name(self) -> str:
        """The name of the function staged."""
        return _fun_name(self._jit)

    @property
    def args_info(self):
        """The arguments as `(args, kwargs)`, each leaf an `ArgInfo` (static arguments,
        which are part of the signature, are left out, as in JAX)."""
        in_tree, avals = self._key[:2]
        args, kwargs = tree_unflatten(in_tree, [ArgInfo(a) for a in avals])
        return tuple(args), kwargs

    @property
    def in_tree(self):
        """The pytree structure of `(args, kwargs)` (static arguments left out)."""
        return tree_structure(self.args_info)

    @property
    def in_avals(self):
        """The arguments' abstract values, as `(args, kwargs)`."""
        in_tree, avals = self._key[:2]
        args, kwargs = tree_unflatten(in_tree, list(avals))
        return tuple(args), kwargs

    @property
    def donate_argnums(self) -> tuple:
        """Flat indices of donated arguments: none (donation is accepted and ignored)."""
        return ()

    @property
    def out_tree(self):
        """The pytree structure of the outputs."""
        return self._compiled.out_tree

    @property
    def out_info(self):
        """The outputs' shapes and dtypes: a pytree of `ShapeDtypeStruct`."""
        from nanofn._jit import ShapeDtypeStruct
        return tree_unflatten(self.out_tree, [ShapeDtypeStruct(a.shape, a.dtype)
                                              for a in self._compiled.closed.out_avals])

    def _new(self, cls):
        stage = cls.__new__(cls)
        for name in _Stage.__slots__:
            setattr(stage, name, getattr(self, name))
        return stage


class Traced(_Stage):
    """A function traced for one signature (`jit(f).trace(...)`): the jaxpr as traced,
    before nanofn simplifies it, ready to `lower()`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> traced = nanofn.jit(lambda x, n: x * n, static_argnums=1).trace(fnp.ones(2), 3)
        >>> traced.fun_name, traced.out_info
        ('<lambda>', ShapeDtypeStruct(shape=(2,), dtype=float32))
        >>> traced.lower().compile()(fnp.ones(2))
        Array([3., 3.], dtype=float32)
    """

    __slots__ = ("jaxpr",)

    def __init__(self, jit_fun, key, compiled, jaxpr, args, kwargs):
        super().__init__(jit_fun, key, compiled, args, kwargs)
        self.jaxpr = jaxpr  # the ClosedJaxpr as traced, as `make_jaxpr` gives it

    @property
    def out_avals(self):
        """The outputs' abstract values, as a pytree."""
        return tree_unflatten(self.out_tree, list(self.jaxpr.out_avals))

    def lower(self, *, lowering_platforms=None, _private_parameters=None) -> "Lowered":
        """The `Lowered` stage of this signature (`lowering_platforms` is accepted: the
        one platform is this process's CPU).

        Example:
            >>> import nanofn, nanofn.numpy as fnp
            >>> traced = nanofn.jit(lambda x: fnp.sin(x) + fnp.sin(x)).trace(fnp.ones(2))
            >>> print(traced.lower().as_text())  # one sin: common subexpressions merged
            { lambda ; a:f32[2]. let
                b:f32[2] = sin a
                c:f32[2] = add b b
              in (c) }
        """
        del lowering_platforms, _private_parameters  # one platform
        return self._new(Lowered)

    def __call__(self, *args, **kwargs):
        """Run the traced jaxpr on arguments of this signature (static ones left out).

        Example:
            >>> import nanofn, nanofn.numpy as fnp
            >>> nanofn.jit(lambda x: x * 2).trace(fnp.ones(2))(fnp.arange(2.0))
            Array([0., 2.], dtype=float32)
        """
        from nanofn._jit import _leaf_to_value
        leaves = [_leaf_to_value(x) for x in _check_call(self, args, kwargs)]
        outs = core.eval_jaxpr(self.jaxpr.jaxpr, self.jaxpr.consts, *leaves)
        outs = [o if isinstance(o, (Tracer, core.Array)) else core.wrap(o) for o in outs]
        return tree_unflatten(self.out_tree, outs)


class Lowered(_Stage):
    """A function lowered for one signature (`jit(f).lower(...)`): the simplified jaxpr
    that nanofn compiles (its "compiler IR"), ready to `compile()`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> lowered = nanofn.jit(lambda x: fnp.exp(x).sum()).lower(fnp.ones(4))
        >>> print(lowered.as_text())
        { lambda ; a:f32[4]. let
            b:f32[4] = exp a
            c:f32[] = reduce_sum[axes=(0,)] b
          in (c) }
        >>> lowered.compile()(fnp.zeros(4))
        Array(4., dtype=float32)
    """

    __slots__ = ()

    def compile(self, compiler_options: CompilerOptions | None = None, *,
                device_assignment=None) -> "Compiled":
        """Build this signature's plan now and return it as a `Compiled`.

        With kernels on (`nanofn_use_kernels`), this is the plan a jitted function runs
        from its second call: elementwise chains fused into generated numba kernels, each
        compiled (or loaded from the disk cache) here, and the plan run once on zeros so
        that the hand-written kernels it calls compile too (skipped for programs with side
        effects). It blocks until done, and the jitted function's own cache gets the plan:
        a later call with this signature runs it without tracing or compiling.
        `compiler_options` and `device_assignment` (XLA's) are accepted and ignored.

        Example:
            >>> import nanofn, nanofn.numpy as fnp
            >>> f = nanofn.jit(lambda x: fnp.sin(x) ** 2 + 1)
            >>> compiled = f.lower(nanofn.ShapeDtypeStruct((3,), "float32")).compile()
            >>> compiled(fnp.zeros(3))
            Array([1., 1., 1.], dtype=float32)
        """
        del compiler_options, device_assignment  # XLA's settings; one device
        _build_plan(self._jit, self._key, self._compiled)
        return self._new(Compiled)

    def as_text(self, dialect: str | None = None, *, debug_info: bool = False) -> str:
        """The simplified jaxpr as text (whatever `dialect` is asked for: nanofn has no
        StableHLO or HLO; `debug_info` is accepted).

        Example:
            >>> import nanofn, nanofn.numpy as fnp
            >>> print(nanofn.jit(lambda x: -x).lower(fnp.ones(2)).as_text("stablehlo"))
            { lambda ; a:f32[2]. let b:f32[2] = neg a in (b) }
        """
        del dialect, debug_info  # one representation
        return str(self._compiled.closed)

    def compiler_ir(self, dialect: str | None = None) -> ClosedJaxpr:
        """The simplified jaxpr itself (a `ClosedJaxpr`): nanofn's compiler input.
        `dialect` may be None or "jaxpr"; "stablehlo", "hlo" and others raise
        NotImplementedError, as nanofn lowers to no MLIR or HLO.

        Example:
            >>> import nanofn, nanofn.numpy as fnp
            >>> closed = nanofn.jit(lambda x: fnp.sin(x)).lower(fnp.ones(2)).compiler_ir()
            >>> [e.primitive.name for e in closed.eqns]
            ['sin']
        """
        if dialect not in (None, "jaxpr"):
            raise NotImplementedError(
                f"Lowered.compiler_ir: nanofn has no {dialect!r} representation (it lowers "
                "to no MLIR or HLO); its compiler input is the jaxpr: compiler_ir() or "
                "as_text()")
        return self._compiled.closed

    def cost_analysis(self) -> dict:
        """nanofn's estimate of the program's cost, counted on the simplified jaxpr, in
        XLA's terms (a dict of floats):

        * "flops": 2·m·k·n per matrix product (`dot_general`, so convolutions too, which
          nanofn computes as products of patches), one per element for each arithmetic,
          comparison or selection step (`integer_pow` as its multiplications), n - 1 per
          reduction of n elements to one;
        * "transcendentals": one per element of `exp`, `log`, `tanh`, `sqrt`, `pow`, ...;
        * "bytes accessed": the bytes each equation reads and writes, summed (unfused:
          the plan's fused kernels touch less memory).

        `scan` bodies count `length` times, `while` bodies once (the trip count is not
        known), the costlier branch of a `cond`. Primitives without a rule (data
        movement, nanofn's nn kernels, decompositions, FFTs, sorting) count bytes only.

        Example:
            >>> import nanofn, nanofn.numpy as fnp
            >>> lowered = nanofn.jit(lambda a, b: a @ b + 1).lower(fnp.ones((4, 5)),
            ...                                                    fnp.ones((5, 6)))
            >>> cost = lowered.cost_analysis()
            >>> cost["flops"], cost["bytes accessed"]  # 2*4*5*6 + 4*6; (20+30+24)*4 + 49*4
            (264.0, 492.0)
        """
        return _cost(self._compiled.closed.jaxpr)


class Compiled(_Stage):
    """A function compiled for one signature (`lowered.compile()`): its plan, callable
    with arguments of exactly that signature (static arguments left out).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> compiled = nanofn.jit(lambda x: x * 2).lower(fnp.ones(2)).compile()
        >>> compiled(fnp.arange(2.0))
        Array([0., 2.], dtype=float32)
        >>> compiled(fnp.ones(3))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        TypeError: Argument types differ from the types for which this computation was ...
        Argument 'x' compiled with f32[2] and called with f32[3]
    """

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        """Run the plan on `args`, which must have the compiled signature's pytree
        structure, shapes and dtypes (TypeError otherwise, naming each mismatch). It
        cannot be called under a transformation (`grad`, `vmap`): call the jitted
        function there."""
        from nanofn._jit import _leaf_to_value, _unaliased
        leaves = _check_call(self, args, kwargs, transformable=False)
        lent: list = []
        values = [_leaf_to_value(x, lent) for x in leaves]
        avals = tuple(get_aval(v) for v in values)
        if avals != self._key[1]:
            lines = [f"Argument {n!r} compiled with {old.str_short()} and called with "
                     f"{new.str_short()}" for n, new, old in zip(self._names, avals,
                                                                 self._key[1]) if new != old]
            raise TypeError("Argument types differ from the types for which this "
                            "computation was compiled. The mismatches are:\n"
                            + "\n".join(lines))
        outs = [core.Array(_unaliased(o, lent)) if isinstance(o, np.ndarray) else core.wrap(o)
                for o in self._compiled.run(values)]
        return tree_unflatten(self._compiled.out_tree, outs)

    def as_text(self) -> str:
        """The plan's source: the straight-line Python function a call runs, one line per
        step (`_f<i>` are the steps' functions, `_b<i>` buffers reused between calls;
        `del` frees each value after its last use), between switching numpy's
        floating-point warnings off and back on.

        Example:
            >>> import nanofn, nanofn.numpy as fnp
            >>> compiled = nanofn.jit(lambda x: x + 1).lower(fnp.ones(2)).compile()
            >>> print(compiled.as_text())  # doctest: +ELLIPSIS
            def plan(_B, s0):
                _token = _quiet_enter()
                try:
                    s1 = _f0(s0, l1)
                    return [s1]
                finally:
                    _quiet_leave(_token)
        """
        return self._compiled.plan.source

    def cost_analysis(self) -> dict:
        """nanofn's cost estimate of the program, as `Lowered.cost_analysis` counts it
        (on the simplified jaxpr, before fusion).

        Example:
            >>> import nanofn, nanofn.numpy as fnp
            >>> c = nanofn.jit(lambda x: fnp.exp(x)).lower(fnp.ones(8)).compile()
            >>> c.cost_analysis()["transcendentals"]
            8.0
        """
        return _cost(self._compiled.closed.jaxpr)

    def memory_analysis(self) -> "CompiledMemoryStats":
        """The plan's memory, under the field names of XLA's `CompiledMemoryStats`:
        argument and output bytes (the signature's), alias bytes (outputs that are
        arguments returned as they are), temp bytes (the buffers the plan reuses between
        calls for its intermediate values; values a step allocates itself are not
        counted) and generated code bytes (the plan's Python source; the machine code of
        numba kernels is not counted). `host_*` fields are 0, as on JAX's CPU backend.

        Example:
            >>> import nanofn, nanofn.numpy as fnp
            >>> c = nanofn.jit(lambda x: x.sum()).lower(fnp.ones((4, 5))).compile()
            >>> m = c.memory_analysis()
            >>> m.argument_size_in_bytes, m.output_size_in_bytes, m.alias_size_in_bytes
            (80, 4, 0)
        """
        closed, plan = self._compiled.closed, self._compiled.plan
        jaxpr = closed.jaxpr
        inputs = {id(v) for v in jaxpr.invars}
        aliased = sum(_nbytes(v.aval) for v in jaxpr.outvars
                      if type(v) is Var and id(v) in inputs)
        return CompiledMemoryStats(
            generated_code_size_in_bytes=len(plan.source.encode()),
            argument_size_in_bytes=sum(_nbytes(a) for a in self._key[1]),
            output_size_in_bytes=sum(_nbytes(a) for a in closed.out_avals),
            alias_size_in_bytes=aliased,
            temp_size_in_bytes=sum(plan.buffer_nbytes))

    def runtime_executable(self):
        """The plan object itself (`nanofn._jit.Plan`), for debugging."""
        return self._compiled.plan

    @property
    def input_shardings(self):
        """Each argument's sharding, as `(args, kwargs)`: a `SingleDeviceSharding` on this
        process's first device (nanofn computes on one CPU device)."""
        return tree_unflatten(tree_structure(self.args_info),
                              [_one_device()] * len(self._key[1]))

    @property
    def output_shardings(self):
        """Each output's sharding: a `SingleDeviceSharding`, as for the arguments."""
        return tree_unflatten(self.out_tree, [_one_device()] * self.out_tree.num_leaves)


@dataclasses.dataclass(frozen=True)
class CompiledMemoryStats:
    """What `Compiled.memory_analysis` returns (XLA's field names; bytes)."""

    generated_code_size_in_bytes: int = 0
    argument_size_in_bytes: int = 0
    output_size_in_bytes: int = 0
    alias_size_in_bytes: int = 0
    temp_size_in_bytes: int = 0
    host_generated_code_size_in_bytes: int = 0
    host_argument_size_in_bytes: int = 0
    host_output_size_in_bytes: int = 0
    host_alias_size_in_bytes: int = 0
    host_temp_size_in_bytes: int = 0


@runtime_checkable
class Wrapped(Protocol):
    """What `jit` returns, as a protocol: callable, and with `trace` and `lower`.

    Example:
        >>> import nanofn
        >>> isinstance(nanofn.jit(lambda x: x), nanofn.stages.Wrapped)
        True
    """

    def __call__(self, *args, **kwargs):
        """Run the function, tracing and compiling as needed."""
        raise NotImplementedError

    def trace(self, *args, **kwargs) -> Traced:
        """Trace the function for these arguments."""
        raise NotImplementedError

    def lower(self, *args, **kwargs) -> Lowered:
        """Lower the function for these arguments."""
        raise NotImplementedError


# ------------------------------------------------------------------------ helpers


def _fun_name(jit_fun) -> str:
    return getattr(jit_fun.fun, "__name__", None) or type(jit_fun.fun).__name__


def _one_device():
    from nanofn.distributed._state import local_devices
    from nanofn.sharding import SingleDeviceSharding
    return SingleDeviceSharding(local_devices()[0])


def _nbytes(aval) -> int:
    return int(np.prod(aval.shape, dtype=np.int64)) * aval.dtype.itemsize


def _positional_labels(jit_fun, nargs, static) -> list[str]:
    """The names of the dynamic positional arguments of a call with `nargs` of them."""
    static_keys = {k for k, _ in static}
    sig = jit_fun._signature
    params = list(sig.parameters.values()) if sig is not None else []
    labels = []
    for i in range(nargs):
        if i in static_keys or (i - nargs) in static_keys:
            continue
        p = params[i] if i < len(params) else None
        ok = p is not None and p.kind != inspect.Parameter.VAR_POSITIONAL
        labels.append(p.name if ok else f"args[{i}]")
    return labels


_LEAF = object()


def _tree_differences(new_tree, old_tree, labels) -> list[str]:
    """How two `(args, kwargs)` pytree structures differ, argument by argument."""
    new_args, new_kw = tree_unflatten(new_tree, [_LEAF] * new_tree.num_leaves)
    old_args, old_kw = tree_unflatten(old_tree, [_LEAF] * old_tree.num_leaves)
    lines = []
    if len(new_args) != len(old_args):
        lines.append(f"{len(new_args)} positional array arguments now and {len(old_args)} "
                     "before")
    for j, (a, b) in enumerate(zip(new_args, old_args)):
        ta, tb = tree_structure(a), tree_structure(b)
        if ta != tb:
            name = labels[j] if j < len(labels) else f"args[{j}]"
            lines.append(f"at {name}, the pytree is now {ta} and before {tb}")
    for k in sorted(set(new_kw) | set(old_kw)):
        if k not in old_kw:
            lines.append(f"keyword argument {k!r} is new")
        elif k not in new_kw:
            lines.append(f"keyword argument {k!r} was passed before and is not now")
        elif tree_structure(new_kw[k]) != tree_structure(old_kw[k]):
            lines.append(f"at {k}, the pytree is now {tree_structure(new_kw[k])} and before "
                         f"{tree_structure(old_kw[k])}")
    return lines


def _check_call(stage, args, kwargs, transformable=True) -> list:
    """The flat leaves of a call of a stage, checked to have its pytree structure."""
    dyn_kwargs = {k: kwargs[k] for k in sorted(kwargs)}
    leaves, in_tree = tree_flatten((list(args), dyn_kwargs))
    if in_tree != stage._key[0]:
        lines = _tree_differences(in_tree, stage._key[0], stage._labels)
        raise TypeError("Function compiled with input pytree does not match the input pytree "
                        f"it was called with: {len(lines)} mismatch(es):\n"
                        + "\n".join("    * " + line for line in lines))
    if not transformable and (core.under_transform()
                              or any(isinstance(x, Tracer) for x in leaves)):
        raise TypeError("A function compiled ahead of time for one signature cannot be "
                        "transformed (it was called with a traced value): call the jitted "
                        "function under grad / vmap / jit instead")
    return leaves


def _build_plan(jit_fun, key, compiled):
    """Make `compiled` (a `_Compiled`) run its final plan from its next call on: the
    fused one with kernels compiled, built here (or the pending background build, waited
    for). It goes (back) into the jitted function's cache under `key`."""
    from nanofn import _background
    from nanofn._config import config
    job = compiled.job
    if job is not None:
        job.done.wait()
        compiled._switch(job)
    elif not compiled.hot and config.nanofn_use_kernels:
        # the dry run on zeros compiles the hand-written kernels; not for a `while` loop,
        # whose trip count depends on the data (it might never end on zeros)
        values = None if _may_loop(compiled.closed.jaxpr) else \
            [np.zeros(a.shape, a.dtype) for a in key[1]]
        start = time.perf_counter()
        compiled.plan = _background.build(compiled.closed, values)
        compiled._record_build(time.perf_counter() - start)
        compiled.hot = True
    compiled.calls = max(compiled.calls, 1)  # the next call runs `plan`, as a later one
    cache = jit_fun._cache
    if key not in cache and not any(isinstance(c, Tracer) for c in compiled.closed.consts):
        cache[key] = compiled


def _sub_jaxprs(e):
    """The jaxprs an equation runs (scan and while bodies, cond branches, and the traced
    functions of checkpoint / custom_jvp / custom_vjp calls); raises if one cannot be
    traced."""
    subs = []
    for v in e.params.values():
        for item in (v if isinstance(v, (list, tuple)) else (v,)):
            j = _as_jaxpr(item)
            if j is not None:
                subs.append(j)
            elif hasattr(item, "fun_flat") and hasattr(item, "in_avals"):
                subs.append(core.trace_to_jaxpr(item.fun_flat, list(item.in_avals)).jaxpr)
    return subs


def _may_loop(jaxpr) -> bool:
    """Whether a program runs a `while` loop (or may: a call that does not trace)."""
    for e in jaxpr.eqns:
        if e.primitive.name == "while":
            return True
        try:
            subs = _sub_jaxprs(e)
        except Exception:  # noqa: BLE001 - cannot look inside: assume it may
            return True
        if any(_may_loop(j) for j in subs):
            return True
    return False


# ------------------------------------------------------------------------ cost


_TRANSCENDENTAL = {
    "exp", "exp2", "log", "log1p", "expm1", "sin", "cos", "tan", "asin", "acos", "atan",
    "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "sqrt", "rsqrt", "cbrt", "pow",
    "atan2", "logistic", "erf", "erf_inv", "lgamma", "digamma", "igamma", "igammac",
}
_ARITHMETIC = {  # one flop per output element
    "add", "sub", "mul", "div", "neg", "abs", "sign", "max", "min", "floor", "ceil", "round",
    "rem", "nextafter", "is_finite", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "xor",
    "not", "select_n", "clamp", "shift_left", "shift_right_arithmetic",
    "shift_right_logical", "conj", "square", "reciprocal",
}
_REDUCTIONS = {"reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "argmax", "argmin"}
_CUMULATIVE = {"cumsum", "cumprod", "cummax", "cummin"}


def _size(aval) -> int:
    return int(np.prod(aval.shape, dtype=np.int64))


def _atom_nbytes(x) -> int:
    if type(x) is Literal:
        return np.asarray(x.val).nbytes
    return _nbytes(x.aval)


def _as_jaxpr(obj):
    if isinstance(obj, ClosedJaxpr):
        return obj.jaxpr
    if isinstance(obj, Jaxpr):
        return obj
    inner = getattr(obj, "jaxpr", None)
    return None if inner is None or inner is obj else _as_jaxpr(inner)


def _add(total, part, times=1.0):
    for k, v in part.items():
        total[k] = total.get(k, 0.0) + v * times


def _cost(jaxpr) -> dict:
    total = {"flops": 0.0, "transcendentals": 0.0, "bytes accessed": 0.0}
    for e in jaxpr.eqns:
        inner = _inner_cost(e)
        if inner is not None:
            _add(total, inner)
            continue
        name = e.primitive.name
        out = e.outvars[0].aval if e.outvars else None
        n = _size(out) if out is not None and hasattr(out, "shape") else 0
        flops = trans = 0.0
        if name == "dot_general":
            (lc, _), _ = e.params["dimension_numbers"]
            k = int(np.prod([e.invars[0].aval.shape[d] for d in lc], dtype=np.int64))
            flops = 2.0 * n * k
        elif name == "integer_pow":
            y = abs(int(e.params["y"]))
            muls = max(y.bit_length() - 1 + bin(y).count("1") - 1, 0)
            flops = float(n * (muls + (e.params["y"] < 0)))
        elif name in _TRANSCENDENTAL:
            trans = float(n)
        elif name in _ARITHMETIC:
            flops = float(n)
        elif name in _REDUCTIONS:
            flops = float(_size(e.invars[0].aval) - n)
        elif name in _CUMULATIVE:
            flops = float(n)
        elif name == "logaddexp":
            flops, trans = 2.0 * n, 2.0 * n
        total["flops"] += flops
        total["transcendentals"] += trans
        total["bytes accessed"] += float(sum(_atom_nbytes(x) for x in e.invars)
                                         + sum(_nbytes(v.aval) for v in e.outvars
                                               if hasattr(v.aval, "shape")))
    return total


def _inner_cost(e):
    """The cost of an equation that runs jaxprs of its own (scan, while, cond, calls), or
    None for others."""
    name, params = e.primitive.name, e.params
    if name == "scan":
        body = _as_jaxpr(params["jaxpr"])
        if body is not None:
            out: dict = {}
            _add(out, _cost(body), float(params["length"]))
            return out
    if name == "cond":
        costs = [_cost(j) for j in map(_as_jaxpr, params["branches"]) if j is not None]
        if costs:
            return {k: max(c.get(k, 0.0) for c in costs) for k in costs[0]}
    try:
        subs = _sub_jaxprs(e)
    except Exception:  # noqa: BLE001 - an estimate: count its bytes only
        return None
    if not subs:
        return None
    out = {}
    for j in subs:
        _add(out, _cost(j))
    return out


# ------------------------------------------------------------------------ logging


def _where() -> str:
    """`file:line (function)` of the innermost frame outside nanofn (the user's call)."""
    pkg = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(pkg):
        frame = frame.f_back
    if frame is None:
        return "an unknown place"
    return f"{frame.f_code.co_filename}:{frame.f_lineno} ({frame.f_code.co_name})"


def _defined_at(fun) -> str:
    code = getattr(inspect.unwrap(fun), "__code__", None)
    return f" defined at {code.co_filename}:{code.co_firstlineno}" if code else ""


def _static_label(jit_fun, k) -> str:
    if isinstance(k, str):
        return k
    sig = jit_fun._signature
    params = list(sig.parameters) if sig is not None else []
    return params[k] if 0 <= k < len(params) else f"args[{k}]"


def _differences(jit_fun, args, kwargs, key, old) -> list[str]:
    """What differs between the signature `key` of a call and a cached one, `old`."""
    in_tree, avals, static, flags = key
    old_tree, old_avals, old_static, old_flags = old
    lines = [f"flags (jax_enable_x64, jax_numpy_rank_promotion, jax_numpy_dtype_promotion): "
             f"now {flags} and before {old_flags}"] if flags != old_flags else []
    new_s, old_s = dict(static), dict(old_static)
    for k in sorted(set(new_s) | set(old_s), key=str):
        if k not in old_s or k not in new_s or new_s[k] != old_s[k]:
            now, before = (repr(d[k]) if k in d else "not given" for d in (new_s, old_s))
            lines.append(f"static argument {_static_label(jit_fun, k)}: now {now} and "
                         f"before {before}")
    if in_tree != old_tree:
        lines += _tree_differences(in_tree, old_tree,
                                   _positional_labels(jit_fun, len(args), static))
        return lines
    names = jit_fun._arg_names(args, kwargs, static)
    lines += [f"at {n}, now {a.str_short()} and before {b.str_short()}"
              for n, a, b in zip(names, avals, old_avals) if a != b]
    return lines


def _explain_cache_miss(jit_fun, args, kwargs, static, in_tree, avals) -> None:
    """Log (WARNING, logger `nanofn._jit`) why a call of `jit_fun` traces: what differs
    from the closest signature it has cached (`jax_explain_cache_misses`)."""
    from nanofn._jit import logger
    name = _fun_name(jit_fun)
    head = f"TRACING CACHE MISS at {_where()}:\n  for {name}{_defined_at(jit_fun.fun)}\n"
    keys = list(jit_fun._cache)
    if not keys:
        why = ("  never seen function" if not jit_fun.trace_count else
               "  no signature is cached (cleared, or dropped as least recently used: "
               "nanofn_jit_cache_size)")
        logger.warning("%s", head + why)
        return
    key = (in_tree, avals, static, core.trace_flags)
    best = min((_differences(jit_fun, args, kwargs, key, k) for k in keys), key=len)
    logger.warning("%s", head + "  all previously seen cache keys differ. For the closest "
                   "previous key:\n" + "\n".join("  * " + line for line in best))


def _compile_message(jit_fun, args, kwargs, static, avals, seconds) -> str:
    """What `jax_log_compiles` logs for a new signature."""
    names = jit_fun._arg_names(args, kwargs, static)
    shapes = ", ".join(a.str_short() for a in avals)
    text = (f"Compiling jit({_fun_name(jit_fun)}) with global shapes and types ({shapes}). "
            f"Argument names: ({', '.join(names)}).")
    if static:
        text += " Static arguments: (" + ", ".join(
            f"{_static_label(jit_fun, k)}={v!r}" for k, v in static) + ")."
    return text + f" Traced and planned in {seconds * 1e3:.2f} ms."
