"""Jacobians and linearization, built from the transformations below them.

* `jacfwd` pushes forward one basis vector per input element: it is `vmap` of `jvp` over
  the rows of an identity matrix. Cheap when there are few inputs.
* `jacrev` pulls back one basis vector per output element: it runs `vjp` once and `vmap`s
  the pullback over the rows of an identity matrix. Cheap when there are few outputs.
  The pullback can be vmapped because every VJP rule binds primitives.
* `hessian` is `jacfwd(jacrev(f))`: forward over reverse.
* `linearize` evaluates `f` once and returns its tangent map as a staged linear program.

Jacobians follow JAX's layout: for an output leaf of shape `out` and an input leaf of shape
`in`, the Jacobian leaf has shape `out + in`, and the result is a pytree shaped like the
output whose leaves are pytrees shaped like the (chosen) inputs.

Each input leaf (for `jacfwd`) or output leaf (for `jacrev`) gets its own vmapped pass, so
no concatenation or slicing of the basis is needed; the other leaves get symbolic zero
tangents (or cotangents), which cost nothing.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from nanofn import _core as core
from nanofn._ad import (_as_array, _check_differentiable, _check_output_dtype, _lower_aux,
                        _normalize_argnums,
                        _wraps, is_float, jvp_flat, vjp_flat, zeros_like_aval)
from nanofn._batching import vmap_flat
from nanofn._core import get_aval
from nanofn._traceback_util import api_boundary
from nanofn.tree_util import Partial, tree_flatten, tree_unflatten

__all__ = ["jacfwd", "jacrev", "jacobian", "hessian", "linearize"]


def _ops():
    from nanofn.ops import _base  # noqa: the ops layer sits above this module's import
    return _base


def _basis(aval):
    """The rows of an identity matrix, each reshaped to `aval.shape`: shape (n,) + shape."""
    n = aval.size
    return core.Array(np.eye(n, dtype=aval.dtype).reshape((n,) + aval.shape))


def _split_aux(out, fname):
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError(f"{fname}: has_aux=True requires the function to return a pair "
                        f"(output, aux), got {type(out).__name__}")
    return out


class _Partial:
    """`fun` as a flat function of the leaves of its differentiated arguments."""

    def __init__(self, fun, fname, args, kwargs, argnums, has_aux, holomorphic=False,
                 allow_int=False):
        self.fun, self.fname, self.args, self.kwargs = fun, fname, args, kwargs
        self.single, nums = _normalize_argnums(argnums, len(args), fname)
        # an argument named twice (argnums=(0, 0)) is differentiated once; `assemble` then
        # repeats its block for every entry that names it
        self.nums = tuple(dict.fromkeys(nums))
        self.repeat = None if self.nums == nums else tuple(self.nums.index(i) for i in nums)
        for i in self.nums:
            _check_differentiable(fname, i, args[i], holomorphic, allow_int)
        dyn = args[self.nums[0]] if self.single else tuple(args[i] for i in self.nums)
        leaves, self.in_tree = tree_flatten(dyn)
        self.in_leaves = [_as_array(x) for x in leaves]
        self.has_aux = has_aux
        self.out_tree = None
        self.aux = None

    def __call__(self, *xs):
        full = list(self.args)
        dyn = tree_unflatten(self.in_tree, xs)
        for i, a in zip(self.nums, [dyn] if self.single else dyn):
            full[i] = a
        out = self.fun(*full, **self.kwargs)
        if self.has_aux:
            out, self.aux = _split_aux(out, self.fname)
        flat, self.out_tree = tree_flatten(out)
        for o in flat:
            if not core.is_array_like(o):
                raise TypeError(f"{self.fname}: the function returned a {type(o).__name__}, "
                                "which is not an array; return arrays (or pytrees of arrays)")
        return [_as_array(o) for o in flat]

    def assemble(self, blocks):
        """`blocks[j][i]`: the Jacobian of output leaf j w.r.t. input leaf i."""
        rows = [tree_unflatten(self.in_tree, row) for row in blocks]
        if self.repeat is not None:
            rows = [tuple(row[k] for k in self.repeat) for row in rows]
        jac = tree_unflatten(self.out_tree, rows)
        return (jac, _lower_aux(self.aux)) if self.has_aux else jac


def _float0_block(shape):
    from nanofn._dtypes_float0 import float0_zeros
    return float0_zeros(shape)


def _reshape(x, shape):
    shape = tuple(shape)
    return x if tuple(x.shape) == shape else _ops().reshape_p.bind(x, new_sizes=shape)


def jacfwd(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
           holomorphic: bool = False) -> Callable:
    """The Jacobian of `fun`, computed column by column with forward mode (`vmap` of `jvp`).

    Args:
        fun: function of arrays (pytrees of arrays) to differentiate.
        argnums: int or tuple of ints: the positional arguments to differentiate.
        has_aux: if True, `fun` returns `(output, aux)`; the result is `(jacobian, aux)`.
        holomorphic: whether `fun` is promised to be holomorphic: complex inputs and
            outputs, and the Jacobian holds complex derivatives. Without it the inputs
            must be real (as in JAX; use `jvp` directly for other complex functions).

    Returns:
        A function with `fun`'s signature returning the Jacobian: a pytree shaped like the
        output, whose leaves are pytrees shaped like the chosen argument(s) (a tuple of
        them when `argnums` is a tuple). A leaf has shape `out_leaf.shape + in_leaf.shape`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.jacfwd(lambda x: x ** 2)(fnp.array([1.0, 2.0]))
        Array([[2., 0.],
               [0., 4.]], dtype=float32)
    """
    def jacfun(*args, **kwargs):
        f = _Partial(fun, "jacfwd", args, kwargs, argnums, has_aux, holomorphic)
        xs = f.in_leaves
        for x in xs:
            if not holomorphic and x.dtype.kind == "c":
                raise TypeError(
                    f"jacfwd requires real-valued inputs (a float dtype), but got "
                    f"{get_aval(x).str_short()}. For holomorphic differentiation, pass "
                    "holomorphic=True. For differentiation of non-holomorphic functions "
                    "involving complex inputs, use jvp directly.")
        if not xs:  # nothing to differentiate: only the output's structure is needed
            outs = f(*xs)
            return f.assemble([[] for _ in outs])
        columns = []  # columns[i][j]: d output j / d input i
        for i, x in enumerate(xs):
            aval = get_aval(x)

            def push(t, i=i):
                tangents = [None] * len(xs)
                tangents[i] = t
                return jvp_flat(f, xs, tangents)[1]

            t_outs = vmap_flat(push, [_basis(aval)], [0], -1, aval.size)
            columns.append(t_outs)
        out_avals = [get_aval(t) for t in columns[0]]
        if holomorphic:
            for a in out_avals:
                if a.dtype.kind != "c":
                    raise TypeError("jacfwd with holomorphic=True requires outputs with "
                                    f"complex dtype, but got {a.dtype.name}.")
        blocks = [[_reshape(columns[i][j], out_avals[j].shape[:-1] + get_aval(x).shape)
                   for i, x in enumerate(xs)] for j in range(len(out_avals))]
        return f.assemble(blocks)

    _wraps(jacfun, fun, "jacfwd")
    return api_boundary(jacfun)


def jacrev(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
           holomorphic: bool = False, allow_int: bool = False) -> Callable:
    """The Jacobian of `fun`, computed row by row with reverse mode (`vmap` of the pullback).

    Args:
        fun: function of arrays (pytrees of arrays) to differentiate; its outputs must be
            floating point.
        argnums: int or tuple of ints: the positional arguments to differentiate.
        has_aux: if True, `fun` returns `(output, aux)`; the result is `(jacobian, aux)`.
        holomorphic: whether `fun` is promised to be holomorphic (complex inputs and
            outputs; the Jacobian holds complex derivatives).
        allow_int: whether integer and boolean inputs are allowed; their Jacobian blocks
            are zero-size `float0` arrays.

    Returns:
        A function with `fun`'s signature returning the Jacobian, laid out as in `jacfwd`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> jac = nanofn.jacrev(lambda p: p["w"] * p["b"])({"w": fnp.ones(2), "b": fnp.ones(2)})
        >>> jac["w"].shape, jac["b"].shape
        ((2, 2), (2, 2))
    """
    def jacfun(*args, **kwargs):
        f = _Partial(fun, "jacrev", args, kwargs, argnums, has_aux, holomorphic, allow_int)
        all_xs = f.in_leaves
        xs = [x for x in all_xs if x.dtype.kind in "fc"]  # integer leaves are held fixed

        def f_float(*a):
            it = iter(a)
            return f(*[x if x.dtype.kind not in "fc" else next(it) for x in all_xs])

        outs, pullback, _ = vjp_flat(lambda *a: (f_float(*a), None), xs)
        out_avals = [get_aval(o) for o in outs]
        blocks = []
        for j, aval in enumerate(out_avals):
            if not np.issubdtype(aval.dtype, np.inexact):
                raise TypeError(f"jacrev requires floating-point outputs, but output leaf {j} "
                                f"is {aval.str_short()}. Use jacfwd, or convert the output "
                                "with .astype(nanofn.numpy.float32).")
            _check_output_dtype("jacrev", holomorphic, aval)

            def pull(ct, j=j):
                cts = [None] * len(outs)
                cts[j] = ct
                return [zeros_like_aval(get_aval(x)) if c is None else c
                        for c, x in zip(pullback(cts), xs)]

            rows = vmap_flat(pull, [_basis(aval)], [0], 0, aval.size) if xs else []
            rows = iter(rows)
            blocks.append([_reshape(next(rows), aval.shape + get_aval(x).shape)
                           if x.dtype.kind in "fc" else _float0_block(aval.shape + x.shape)
                           for x in all_xs])
        return f.assemble(blocks)

    _wraps(jacfun, fun, "jacrev")
    return api_boundary(jacfun)


jacobian = jacrev


def hessian(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
            holomorphic: bool = False) -> Callable:
    """The Hessian of a scalar function: `jacfwd(jacrev(fun))` (forward over reverse).

    Args:
        fun: function returning a real scalar (it may return any array; then the result has
            shape `out.shape + in.shape + in.shape`).
        argnums: int or tuple of ints: the positional arguments to differentiate.
        has_aux: if True, `fun` returns `(output, aux)`; the result is `(hessian, aux)`.
        holomorphic: whether `fun` is promised to be holomorphic (complex inputs and output).

    Returns:
        A function with `fun`'s signature returning the Hessian: for an argument of shape
        `s`, an array of shape `s + s` (nested pytrees for pytree arguments, as in JAX).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.hessian(lambda x: fnp.sum(x ** 3))(fnp.array([1.0, 2.0]))
        Array([[ 6.,  0.],
               [ 0., 12.]], dtype=float32)
    """
    return jacfwd(jacrev(fun, argnums, has_aux, holomorphic), argnums, has_aux, holomorphic)


@api_boundary
def linearize(fun: Callable, *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """Evaluate `fun` at `primals` and return its linear tangent map as a function.

    How it works: `fun` is run once under `jvp` with concrete primals and *staged* tangents
    (a jaxpr trace that is not dynamic). Everything that depends only on the primals runs
    right away, once; only the operations that touch a tangent are recorded, with the
    primal values they need as constants. That recorded program is linear in the tangents
    (JAX calls this partial evaluation); it is simplified (`nanofn._jit.simplify`:
    constant folding, common subexpressions, dead code) and `f_jvp` replays it. So each
    `f_jvp` call does only the linear work, but the constants stay in memory for as long
    as `f_jvp` lives, as residuals do for `vjp`.

    Args:
        fun: function of arrays (pytrees of arrays).
        *primals: the point to linearize at.
        has_aux: if True, `fun` returns `(output, aux)` and `aux` is returned third.

    Returns:
        `(primals_out, f_jvp)` (and `aux` with `has_aux`), where `f_jvp(*tangents)` takes
        tangents shaped like `primals` and returns the output tangent, equal to
        `jvp(fun, primals, tangents)[1]`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> y, f_jvp = nanofn.linearize(fnp.sin, 0.5)
        >>> print(round(float(f_jvp(2.0)), 4), round(2 * float(fnp.cos(0.5)), 4))
        1.7552 1.7552
    """
    from nanofn._jit import simplify
    primals_flat, in_tree = tree_flatten(primals)
    primals_flat = [_as_array(p) for p in primals_flat]
    in_avals = [get_aval(p) for p in primals_flat]
    box = {}

    def fun_flat(*xs):
        out = fun(*tree_unflatten(in_tree, xs))
        if has_aux:
            out, box["aux"] = _split_aux(out, "linearize")
        flat, box["tree"] = tree_flatten(out)
        return [_as_array(o) for o in flat]

    diff = [i for i, p in enumerate(primals_flat) if is_float(p)]
    builder = core.JaxprBuilder()
    with core.new_main(core.JaxprTrace, builder) as main:
        trace = main.trace
        t_in = [trace.new_arg(in_avals[i]) for i in diff]
        tangents = [None] * len(primals_flat)
        for i, t in zip(diff, t_in):
            tangents[i] = t
        out_primals, out_tangents = jvp_flat(fun_flat, primals_flat, tangents)
        t_out = [trace.full_raise(t) for t in out_tangents]
    closed = simplify(builder.build(t_in, t_out))
    core.typecheck_jaxpr(closed.jaxpr)
    out_tree = box["tree"]

    def f_jvp(*tangents):
        t_flat, t_tree = tree_flatten(tangents)
        if t_tree != in_tree:
            raise ValueError("linearize: f_jvp takes tangents with the structure of the "
                             f"primals:\n  primals:  {in_tree}\n  tangents: {t_tree}")
        for k, (t, a) in enumerate(zip(t_flat, in_avals)):
            if tuple(np.shape(t)) != a.shape:
                raise ValueError(f"linearize: tangent leaf {k} has shape {tuple(np.shape(t))}, "
                                 f"the primal has shape {a.shape}")
        args = [_as_array(t_flat[i]) for i in diff]
        args = [core.Array(np.asarray(t._value, in_avals[i].dtype))
                if type(t) is core.Array and t.dtype != in_avals[i].dtype else t
                for t, i in zip(args, diff)]
        outs = core.eval_jaxpr(closed.jaxpr, closed.consts, *args)
        outs = [o if isinstance(o, (core.Array, core.Tracer)) else core.wrap(np.asarray(o))
                for o in outs]
        outs = [o if is_float(p) else _float0_block(get_aval(p).shape)  # as jvp does
                for o, p in zip(outs, out_primals)]
        return tree_unflatten(out_tree, outs)

    # a pytree (with no leaves), as JAX's: it can be passed to jit-compiled functions
    f_jvp = Partial(api_boundary(f_jvp))
    f_jvp.jaxpr = closed  # the linear program, for inspection
    result = (tree_unflatten(out_tree, out_primals), f_jvp)
    if has_aux:
        return result + (_lower_aux(box["aux"]),)
    return result
