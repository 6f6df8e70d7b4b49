"""Custom batching rules: `custom_vmap` and `sequential_vmap`, as `jax.custom_batching`.

`custom_vmap(f)` wraps a function in the higher-order primitive `custom_vmap_call`, built
like the primitives of `nanofn/_custom.py`: its param `call` holds the function as a flat
function of a list of arrays, and the user's batching rule as a flat rule.

* `impl` runs the function; `abstract_eval` traces it. So outside `vmap` (eagerly, under
  `jit`, `grad`, `jvp`) the function behaves as the plain function; a jitted function
  stages the call as one equation, whose batch rule runs when the jaxpr is replayed under
  `vmap` (`vmap(jit(f))`).
* `batch` moves the batch axis of each batched operand to the front, leaves unbatched
  operands as they are, and calls the user's rule `rule(axis_size, in_batched, *args)`
  with `in_batched` a list of pytrees of bools shaped like the arguments. The rule returns
  `(out, out_batched)`; the structures are checked (with JAX's messages), so is each
  output's shape (JAX does not check it), and each output gets batch dim 0 (batched) or
  None (the same for every example).
* `jvp`, as in JAX: the JVP of a custom_vmap call is again a `custom_vmap_call`, of the
  function's JVP, whose rule is derived from the user's rule: under `vmap` it runs the
  user's rule on the operands batched in primal or tangent and differentiates it. When
  no operand is batched in both (a fixed tangent, `jacfwd`), the rule sees nothing
  batched and the batched operands are batched around it by ordinary `vmap`, as in JAX.
  When some are, an operand batched in only one of the two is broadcast in the other,
  so the rule runs once on the whole batch (JAX vmaps the rule over such operands, which
  gives outputs batched twice).
* reverse mode (`grad`, `vjp`) differentiates the function itself (JAX refuses reverse
  mode of a custom_vmap function outside `vmap`). Under `grad(vmap(f))` the batched
  forward pass runs the rule, so reverse mode differentiates the rule, as in JAX; under
  `vmap(grad(f))` the forward pass uses the rule and the backward pass batches the
  function's derivative by ordinary rules (JAX refuses this composition).

The function may close over values traced by an enclosing transformation (`grad`, `jit`):
they are hoisted into explicit inputs of the equation (as `checkpoint` does), so reverse
mode sees the dependence and a replayed jaxpr finds them. The rule, a Python function, runs
on what it closes over. A function that closes over a value batched by the `vmap` that
reaches its rule is refused: pass such a value as an argument. (Called with no traced
argument, the wrapper runs the function directly, as `custom_jvp` does: then such a
closure is batched by ordinary rules.)
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from nanofn import _core as core
from nanofn._ad import jvp_flat, zeros_like_aval
from nanofn._batching import axis_size_of, batch_flat, broadcast_batch, moveaxis
from nanofn._core import Primitive, ShapedArray, get_aval
from nanofn._custom import (_Call, _as_array, _concrete, _cotangent_mask, _hoist_tracers,
                            _leaves_as_arrays, _name, _positional, _pullback_once, _signature,
                            _to_np, _wrap_np)
from nanofn._traceback_util import api_boundary
from nanofn.tree_util import tree_flatten, tree_map, tree_unflatten

__all__ = ["custom_vmap", "sequential_vmap"]


# ======================================================================== the primitive


class _VmapCall(_Call):
    """The function and its rule, flat. Set per instance:

    * `fun_flat(*xs) -> outs`, over all inputs (hoisted closure values first);
    * `rule_flat(axis_size, flags, vals, check=True) -> (outs, out_flags)`: `vals` are all
      inputs, the batched ones (`flags[i]` True) with their batch axis at 0; `check`: check
      the outputs' shapes against the function's.
    """

    kind = "custom_vmap"

    def __init__(self, name, in_avals, info):
        super().__init__(name, in_avals, info)
        self._jvp = None

    def example_out_avals(self):
        """The per-example output avals, or None if the function cannot be traced
        abstractly (Python control flow on values)."""
        try:
            return self.out_avals(self.fun_flat, tuple(self.in_avals))
        except core.ConcretizationError:
            return None

    def jvp_call(self):
        """The call of the function's JVP (inputs: primals, then tangents; outputs: primal
        outputs, then tangent outputs), whose rule is derived from this call's rule."""
        if self._jvp is None:
            self._jvp = _jvp_call(self)
        return self._jvp


custom_vmap_call_p = Primitive("custom_vmap_call", multiple_results=True)
custom_vmap_call_p.impl = lambda *xs, call: _to_np(call.fun_flat(*_wrap_np(xs)), call)
custom_vmap_call_p.abstract_eval = lambda *avals, call: call.out_avals(call.fun_flat, avals)


def _custom_vmap_batch(vals, dims, *, call):
    size = axis_size_of(vals, dims)
    vals = [v if d is None else moveaxis(v, d, 0) for v, d in zip(vals, dims)]
    outs, flags = call.rule_flat(size, [d is not None for d in dims], vals)
    return outs, [0 if b else None for b in flags]


def _custom_vmap_jvp(primals, tangents, *, call):
    tangents = [zeros_like_aval(get_aval(p)) if t is None else t
                for p, t in zip(primals, tangents)]
    outs = custom_vmap_call_p.bind(*primals, *tangents, call=call.jvp_call())
    n = len(outs) // 2
    return outs[:n], outs[n:]


def _custom_vmap_vjp(cts, primals, outs, needs, *, call):
    # Reverse mode differentiates the function (see the module's notes).
    cts = [zeros_like_aval(get_aval(o)) if c is None else c for c, o in zip(cts, outs)]
    return _cotangent_mask(_pullback_once(call.fun_flat, list(primals), cts), primals, needs)


custom_vmap_call_p.batch = _custom_vmap_batch
custom_vmap_call_p.jvp = _custom_vmap_jvp
custom_vmap_call_p.vjp_joint = _custom_vmap_vjp


def _jvp_call(call):
    m = len(call.in_avals)
    jcall = _VmapCall(f"jvp({call.name})", list(call.in_avals) * 2, {})

    def fun_flat(*xs):
        outs, t_outs = jvp_flat(call.fun_flat, list(xs[:m]), list(xs[m:]))
        return list(outs) + list(t_outs)

    def rule_flat(size, flags, vals, check=True):
        p_flags, t_flags = flags[:m], flags[m:]
        box = {}

        def rule_of_primals(*ps):
            outs, box["flags"] = call.rule_flat(size, both, list(ps), check=check and mutual)
            return outs

        def jvp_of_rule(*xs):
            outs, t_outs = jvp_flat(rule_of_primals, list(xs[:m]), list(xs[m:]))
            return list(outs) + list(t_outs)

        mutual = any(p and t for p, t in zip(p_flags, t_flags))
        if mutual:
            # Some operand is batched in primal and tangent: the rule sees it batched, and
            # an operand batched in only one of the two is broadcast in the other, so the
            # rule runs once on the whole batch.
            both = [p or t for p, t in zip(p_flags, t_flags)]
            vals = [broadcast_batch(v, None, size) if b and not f else v
                    for v, f, b in zip(vals, flags, both * 2)]
            outs = jvp_of_rule(*vals)
            return outs, box["flags"] * 2
        # Only primals or only tangents are batched (vmap of jvp with a fixed tangent,
        # jacfwd): as in JAX, the rule sees nothing batched, and the batched operands are
        # batched around it by ordinary vmap.
        both = [False] * m
        extra = [0 if f else None for f in flags]
        outs, dims = batch_flat(jvp_of_rule, list(vals), extra, size)
        outs = [o if d is None else moveaxis(o, d, 0) for o, d in zip(outs, dims)]
        return outs, [d is not None for d in dims]

    jcall.fun_flat, jcall.rule_flat = fun_flat, rule_flat
    return jcall


def _hoist_closure(call):
    """Make the traced values that `call.fun_flat` closes over explicit inputs
    (`nanofn._custom._hoist_tracers`, as for `checkpoint`). Returns (hoisted, k), with
    `call.fun_flat` and `call.in_avals` updated to take the `k` hoisted values first."""
    found = _hoist_tracers(call.fun_flat, call.in_avals)
    if found is None:
        return [], 0
    hoisted, call.fun_flat, out_avals = found
    call.in_avals = [get_aval(x) for x in hoisted] + list(call.in_avals)
    call._avals_cache[tuple(call.in_avals)] = out_avals
    return hoisted, len(hoisted)


# ======================================================================== the public API


def _rule_name(rule):
    return getattr(rule, "__name__", "<unnamed rule>")


class custom_vmap:
    """Give a function its own batching rule, used by `vmap`.

    The decorated function behaves like `fun` everywhere (eagerly, under `jit`, `grad`,
    `jvp`) except under `vmap`, where the rule set with `def_vmap` computes the whole batch.
    The rule is called as `rule(axis_size, in_batched, *args)`:

    * `axis_size`: the batch size;
    * `in_batched`: a list with one entry per argument, each a pytree of bools shaped like
      the argument, saying which leaves are batched;
    * `args`: the arguments, each batched leaf with its batch axis at 0 (whatever `in_axes`
      said) and each unbatched leaf as it is (the same for every example, not broadcast).

    It returns `(out, out_batched)`: the batched output and a pytree of bools with `out`'s
    structure; an output marked False has no batch axis (it is the same for every
    example). Under nested `vmap` the rule is called once per level.

    Forward mode (`jvp`) under `vmap` uses a rule derived from this one, as in JAX. Reverse
    mode differentiates `fun` itself, or the rule where the batched function is
    differentiated (`grad(vmap(f))`); JAX refuses reverse mode outside `vmap`. To give
    reverse mode its own rule too, wrap the custom_vmap function in `nanofn.custom_vjp`.

    Args:
        fun: the function (of pytrees of arrays).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> @nanofn.custom_batching.custom_vmap
        ... def f(x, y):
        ...     return x + y
        >>> @f.def_vmap
        ... def f_vmap_rule(axis_size, in_batched, xs, ys):
        ...     assert in_batched == [True, False] and xs.shape[0] == axis_size
        ...     return xs * ys, True
        >>> nanofn.vmap(f, in_axes=(0, None))(fnp.arange(3.0), 2.0)  # the rule: x * y
        Array([0., 2., 4.], dtype=float32)
        >>> f(fnp.asarray(1.0), 2.0)  # outside vmap: the function itself
        Array(3., dtype=float32)
    """

    def __init__(self, fun: Callable[..., Any]):
        functools.update_wrapper(self, fun)
        # State under private names: wrappers such as `jit` copy this object's __dict__
        # onto themselves, so plain names could overwrite theirs (see nanofn/_custom.py).
        self._cvfun = fun
        self._cvsig = _signature(fun)
        self._cvrule = None

    fun = property(lambda self: self._cvfun)
    vmap_rule = property(lambda self: self._cvrule)

    def def_vmap(self, vmap_rule: Callable[..., tuple[Any, Any]]
                 ) -> Callable[..., tuple[Any, Any]]:
        """Set the batching rule `vmap_rule(axis_size, in_batched, *args) -> (out,
        out_batched)` (see `custom_vmap`). Returns the rule, so it can be a decorator.

        Example:
            >>> import nanofn, nanofn.numpy as fnp
            >>> f = nanofn.custom_batching.custom_vmap(lambda x: fnp.sin(x))
            >>> _ = f.def_vmap(lambda n, in_batched, xs: (fnp.zeros(n), True))
            >>> nanofn.vmap(f)(fnp.ones(2))
            Array([0., 0.], dtype=float32)
        """
        self._cvrule = vmap_rule
        return vmap_rule

    @api_boundary
    def __call__(self, *args, **kwargs):
        name = _name(self._cvfun)
        args = _positional(self._cvfun, self._cvsig, args, kwargs,
                           f"custom_vmap function {name!r}")
        if self._cvrule is None:
            raise AttributeError(f"No batching rule defined for custom_vmap function {name} "
                                 "using def_vmap.")
        if _concrete(args, {}):
            return self._cvfun(*args)
        leaves, in_tree = tree_flatten(args)
        leaves = _leaves_as_arrays(leaves, f"custom_vmap function {name!r}",
                                   "close over Python values instead of passing them")
        call = _VmapCall(name, [get_aval(x) for x in leaves], {})

        def fun_flat(*xs):
            out_flat, call.info["out_tree"] = tree_flatten(self._cvfun(
                *tree_unflatten(in_tree, xs)))
            return [_as_array(o, "output") for o in out_flat]

        call.fun_flat = fun_flat
        hoisted, k = _hoist_closure(call)
        call.rule_flat = functools.partial(self._rule_flat, call, k, in_tree)
        outs = custom_vmap_call_p.bind(*hoisted, *leaves, call=call)
        return tree_unflatten(call.info["out_tree"], outs)

    def _rule_flat(self, call, k, in_tree, size, flags, vals, check=True):
        rule, name = self._cvrule, call.name
        if any(flags[:k]):
            raise ValueError(
                f"custom_vmap function {name!r} closes over a value that is batched by the "
                "vmap calling its rule; pass that value as an argument instead")
        args = tree_unflatten(in_tree, list(vals[k:]))
        in_batched = list(tree_unflatten(in_tree, list(flags[k:])))
        result = rule(size, in_batched, *args)
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(f"custom vmap rule ({_rule_name(rule)}) of function {name!r} must "
                            "return a pair (out, out_batched), got "
                            f"{type(result).__name__}")
        out, out_batched = result
        out_flat, out_tree = tree_flatten(out)
        flags_out, batched_tree = tree_flatten(out_batched)
        if out_tree != batched_tree:
            raise ValueError(
                "structure of output value and output batching specification returned by "
                f"custom vmap rule ({_rule_name(rule)}) do not match.\n"
                f"Output values: {out_tree}\nBatching spec: {batched_tree}")
        original = call.info.get("out_tree")
        if original is not None and out_tree != original:
            raise ValueError(
                f"structure of output returned by custom vmap rule ({_rule_name(rule)}) does "
                "not match that of original custom-vmapped function.\n"
                f"Original output: {original}\nRule output: {out_tree}")
        for b in flags_out:
            if not isinstance(b, bool) and type(b).__name__ != "bool_":
                raise TypeError(f"custom vmap rule ({_rule_name(rule)}) of function {name!r} "
                                "must return out_batched as a pytree of bools, got a "
                                f"{type(b).__name__} ({b!r:.40})")
        out_flat = [_as_array(o, "output") for o in out_flat]
        # The derived rule of the JVP calls this one under an ordinary vmap of the values
        # batched in only the primal or the tangent: shapes are not checked there.
        expected = call.example_out_avals() if check else None
        if expected is not None:
            for i, (o, b, a) in enumerate(zip(out_flat, flags_out, expected[:])):
                want = ShapedArray(((size,) if b else ()) + tuple(a.shape), a.dtype)
                got = get_aval(o)
                if tuple(got.shape) != tuple(want.shape) or got.dtype != want.dtype:
                    raise ValueError(
                        f"custom vmap rule ({_rule_name(rule)}) of function {name!r} returned "
                        f"{got.str_short()} for output leaf {i}, marked "
                        f"{'batched' if b else 'unbatched'}; the function returns "
                        f"{a.str_short()} there, so the rule must return "
                        f"{want.str_short()}")
        return out_flat, [bool(b) for b in flags_out]


def sequential_vmap(f: Callable[..., Any]) -> custom_vmap:
    """A `custom_vmap` function whose batching rule is a loop: under `vmap`, `f` runs once
    per example (with `nanofn.lax.map`), on the batched arguments' slices and the
    unbatched arguments as they are. Useful for functions that cannot be batched (or are
    cheaper one example at a time). Every output is batched.

    Args:
        f: the function (of pytrees of arrays).

    Returns:
        A `custom_vmap` function that behaves as `f` outside `vmap`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> @nanofn.custom_batching.sequential_vmap
        ... def f(x, y):
        ...     return fnp.sum(x) * y
        >>> nanofn.vmap(f, in_axes=(0, None))(fnp.ones((3, 2)), 5.0)
        Array([10., 10., 10.], dtype=float32)
    """
    from nanofn.ops import _control

    f = custom_vmap(f)

    @f.def_vmap
    def rule(axis_size, in_batched, *args):
        del axis_size
        # The batched leaves are mapped over; the others are the same for every slice.
        mapped = tree_map(lambda b, x: x if b else None, in_batched, list(args))
        shared = tree_map(lambda b, x: None if b else x, in_batched, list(args))

        def one(mapped_slice):
            full = tree_map(lambda b, m, s: m if b else s, in_batched, mapped_slice, shared)
            return f(*full)

        out = _control.map(one, mapped)
        return out, tree_map(lambda _: True, out)

    return f
