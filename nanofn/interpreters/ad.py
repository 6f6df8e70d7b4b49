"""Differentiation rules for primitives you define, the JAX way (`jax.interpreters.ad`).

Forward mode: `primitive_jvps[p] = rule`, where `rule(primals, tangents, **params)`
returns `(primal_out, tangent_out)`; a tangent that is known to be zero reaches the rule
as `Zero(aval)`, and the rule may return one. `defjvp(p, *rules)` builds such a rule from
one function per argument, `deflinear(p, transpose)` declares `p` linear.

Reverse mode: nanofn's `grad` records the primitives a function applies and walks them
back, asking each for the cotangents of its inputs (see docs/design.md). For a primitive
defined here that answer is derived from the JAX rules:

* a primitive declared linear (`deflinear`, `deflinear2`) answers with its transpose rule;
* any other primitive answers with the transpose of its JVP's tangent map: the tangent
  output is linear in the tangents, so nanofn records the JVP rule on zero tangents and
  walks that record back. Where the JVP applies a primitive of its own to tangents (the
  tutorial's `multiply_add` does), that use is linear in the tangent arguments, and its
  transpose rule, `primitive_transposes[p] = rule(ct, *args, **params)`, answers: the
  linear arguments reach it as `UndefinedPrimal(aval)`, the others as values, and it
  returns one cotangent per argument (None or `Zero` for the others).

So `grad` needs a JVP rule (and a transpose rule for the primitives the JVP applies to
tangents); both are written with primitives, so `grad` of `grad`, `jit(grad(f))` and
`vmap(grad(f))` work as for nanofn's own primitives.

These registries hold the rules of primitives made with `nanofn.extend.core.Primitive`
only: the rules of nanofn's own primitives (`lax.sin_p`, ...) are built in, in nanofn's
conventions, so looking one up raises `KeyError` and setting one raises `TypeError`.

Example:
    >>> import nanofn
    >>> from nanofn.extend.core import Primitive
    >>> from nanofn.interpreters import ad
    >>> cube_p = Primitive("cube")
    >>> _ = cube_p.def_impl(lambda x: x ** 3)
    >>> ad.defjvp(cube_p, lambda t, x: 3.0 * x * x * t)
    >>> nanofn.grad(lambda x: cube_p.bind(x))(2.0)
    Array(12., dtype=float32)
"""

from __future__ import annotations

import threading
from collections.abc import MutableMapping
from typing import Any, Callable

import numpy as np

from nanofn import _ad
from nanofn import _core as core
from nanofn._core import ShapedArray, get_aval
from nanofn.extend.core import _is_user_primitive, primal_dtype_to_tangent_dtype
from nanofn.tree_util import register_pytree_node

__all__ = ["Zero", "UndefinedPrimal", "is_undefined_primal", "instantiate_zeros",
           "zeros_like_aval", "add_tangents", "primitive_jvps", "primitive_transposes",
           "defjvp", "defjvp2", "deflinear", "deflinear2", "defbilinear",
           "get_primitive_transpose"]


# ------------------------------------------------------------------------ symbolic values


class Zero:
    """A tangent or cotangent known to be zero, of abstract value `aval`
    (`jax.interpreters.ad.Zero`).

    JVP rules receive one for each argument whose tangent is zero (a constant, an integer
    value) and may return one; transpose rules may receive one as the output cotangent
    and may return one for an argument.

    Example:
        >>> from nanofn.interpreters import ad
        >>> import nanofn.numpy as fnp
        >>> z = ad.Zero.from_primal_value(fnp.ones(3))
        >>> z
        Zero(f32[3])
        >>> z.instantiate()
        Array([0., 0., 0.], dtype=float32)
    """

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self):
        return f"Zero({self.aval.str_short()})"

    def instantiate(self):
        """An array of zeros of this abstract value."""
        return zeros_like_aval(self.aval)

    @staticmethod
    def from_primal_value(value) -> "Zero":
        """The zero tangent of `value`: its shape, and its dtype if inexact (`float0`
        for integers and booleans)."""
        return Zero(_tangent_aval(value))


class UndefinedPrimal:
    """What a transpose rule receives for an argument it transposes with respect to
    (`jax.interpreters.ad.UndefinedPrimal`): the argument's value is not known, only its
    abstract value `aval`; its cotangent is what the rule returns for it.

    Example:
        >>> from nanofn.interpreters import ad
        >>> from nanofn.core import ShapedArray
        >>> x = ad.UndefinedPrimal(ShapedArray((2,), "float32"))
        >>> x, ad.is_undefined_primal(x), ad.is_undefined_primal(1.0)
        (UndefinedPrimal(f32[2]), True, False)
    """

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self):
        return f"UndefinedPrimal({self.aval.str_short()})"


# pytrees without leaves, as in JAX: tree functions pass them through
register_pytree_node(Zero, lambda z: ((), z.aval), lambda aval, _: Zero(aval))
register_pytree_node(UndefinedPrimal, lambda u: ((), u.aval),
                     lambda aval, _: UndefinedPrimal(aval))


def is_undefined_primal(x: Any) -> bool:
    """Whether a transpose rule's argument `x` is an `UndefinedPrimal` (an argument to
    transpose with respect to) rather than a known value.

    Example:
        >>> from nanofn.interpreters import ad
        >>> from nanofn.core import ShapedArray
        >>> ad.is_undefined_primal(ad.UndefinedPrimal(ShapedArray((), "float32")))
        True
    """
    return type(x) is UndefinedPrimal


def zeros_like_aval(aval: ShapedArray):
    """An array of zeros with the shape and dtype of `aval` (traced under a transformation).

    Example:
        >>> from nanofn.interpreters import ad
        >>> from nanofn.core import ShapedArray
        >>> ad.zeros_like_aval(ShapedArray((2,), "float32"))
        Array([0., 0.], dtype=float32)
    """
    from nanofn._dtypes_float0 import float0, float0_zeros
    if aval.dtype == float0:
        return float0_zeros(aval.shape)
    return _ad.zeros_like_aval(aval)


def instantiate_zeros(tangent):
    """`tangent` itself, or an array of zeros if it is a symbolic `Zero`.

    Example:
        >>> from nanofn.interpreters import ad
        >>> import nanofn.numpy as fnp
        >>> ad.instantiate_zeros(ad.Zero.from_primal_value(fnp.ones(2)))
        Array([0., 0.], dtype=float32)
        >>> ad.instantiate_zeros(fnp.ones(2))
        Array([1., 1.], dtype=float32)
    """
    return zeros_like_aval(tangent.aval) if type(tangent) is Zero else tangent


def add_tangents(x, y):
    """The sum of two tangents, either of which may be a symbolic `Zero`.

    Example:
        >>> from nanofn.interpreters import ad
        >>> import nanofn.numpy as fnp
        >>> ad.add_tangents(ad.Zero.from_primal_value(fnp.ones(2)), fnp.ones(2))
        Array([1., 1.], dtype=float32)
    """
    if type(x) is Zero:
        return y
    if type(y) is Zero:
        return x
    from nanofn.numpy import add
    return add(x, y)


def _tangent_aval(value) -> ShapedArray:
    aval = get_aval(value)
    return ShapedArray(aval.shape, primal_dtype_to_tangent_dtype(aval.dtype))


def _is_float(value) -> bool:
    return np.issubdtype(get_aval(value).dtype, np.inexact)


# ------------------------------------------------------------------------ registries


class _RuleTable(MutableMapping):
    """A dict from primitive to rule, for primitives made with `nanofn.extend.core`."""

    def __init__(self, name: str, what: str):
        self._name = name
        self._what = what
        self._rules: dict = {}

    def __getitem__(self, prim):
        return self._rules[prim]

    def __setitem__(self, prim, rule):
        if not _is_user_primitive(prim):
            raise TypeError(
                f"{self._name}: {prim!r} is not a primitive made with "
                "nanofn.extend.core.Primitive" + (
                    " (it is one of nanofn's own, whose rules are built in)"
                    if isinstance(prim, core.Primitive) else ""))
        if not callable(rule):
            raise TypeError(f"{self._name}[{prim.name}]: the {self._what} rule must be "
                            f"callable, got {type(rule).__name__}")
        self._rules[prim] = rule

    def __delitem__(self, prim):
        del self._rules[prim]

    def __iter__(self):
        return iter(list(self._rules))

    def __len__(self):
        return len(self._rules)

    def __repr__(self):
        return f"<{self._name}: {self._what} rules of {len(self)} primitive(s)>"


primitive_jvps = _RuleTable("ad.primitive_jvps", "JVP")
"""The JVP rule of each primitive you define: assign
`primitive_jvps[p] = rule`, `rule(primals, tangents, **params) -> (primal_out,
tangent_out)`, with `Zero` for zero tangents (`jax.interpreters.ad.primitive_jvps`).
Reverse mode transposes it."""

primitive_transposes = _RuleTable("ad.primitive_transposes", "transpose")
"""The transpose rule of each primitive you define:
`primitive_transposes[p] = rule`, `rule(ct, *args, **params)` returning one cotangent per
argument, where the arguments to transpose with respect to are `UndefinedPrimal`s
(`jax.interpreters.ad.primitive_transposes`). Used where the primitive is applied
linearly: inside JVP rules, and always for primitives declared with `deflinear`."""


def get_primitive_transpose(prim) -> Callable:
    """The transpose rule registered for `prim`; `NotImplementedError` if there is none.

    Example:
        >>> from nanofn.extend.core import Primitive
        >>> from nanofn.interpreters import ad
        >>> p = Primitive("no_rules")
        >>> ad.get_primitive_transpose(p)
        Traceback (most recent call last):
        ...
        NotImplementedError: primitive 'no_rules' has no transpose rule: ...
    """
    try:
        return primitive_transposes[prim]
    except KeyError:
        raise NotImplementedError(
            f"primitive '{prim.name}' has no transpose rule: set "
            f"ad.primitive_transposes[{prim.name}_p] = rule(ct, *args, **params)") from None


# ------------------------------------------------------------------------ rule builders


class _TermsJVP:
    """A JVP rule from one tangent function per argument (what `defjvp` registers)."""

    def __init__(self, prim, rules, with_out):
        self.prim, self.rules, self.with_out = prim, rules, with_out

    def __call__(self, primals, tangents, **params):
        out = self.prim.bind(*primals, **params)
        t_out = Zero.from_primal_value(out)
        for rule, t in zip(self.rules, tangents):
            if rule is None or type(t) is Zero:
                continue
            term = (rule(t, out, *primals, **params) if self.with_out
                    else rule(t, *primals, **params))
            t_out = add_tangents(t_out, term)
        return out, t_out


def defjvp(prim, *rules) -> None:
    """Give `prim` a JVP rule made of one function per argument: `rules[i](t, *primals,
    **params)` is argument `i`'s contribution to the output tangent, for its tangent `t`
    (None for an argument that is not differentiable). Single-output primitives only.

    Example:
        >>> import nanofn
        >>> from nanofn.extend.core import Primitive
        >>> from nanofn.interpreters import ad
        >>> mul_p = Primitive("my_mul")
        >>> _ = mul_p.def_impl(lambda x, y: x * y)
        >>> ad.defjvp(mul_p, lambda t, x, y: t * y, lambda t, x, y: x * t)
        >>> nanofn.jvp(lambda x: mul_p.bind(x, 3.0), (2.0,), (1.0,))
        (Array(6., dtype=float32), Array(3., dtype=float32))
    """
    _single_output("defjvp", prim)
    primitive_jvps[prim] = _TermsJVP(prim, rules, with_out=False)


def defjvp2(prim, *rules) -> None:
    """`defjvp` whose functions also receive the primitive's output:
    `rules[i](t, out, *primals, **params)`.

    Example:
        >>> import nanofn
        >>> from nanofn.extend.core import Primitive
        >>> from nanofn.interpreters import ad
        >>> exp_p = Primitive("my_exp")
        >>> _ = exp_p.def_impl(lambda x: __import__("numpy").exp(x))
        >>> ad.defjvp2(exp_p, lambda t, out, x: t * out)
        >>> nanofn.grad(lambda x: exp_p.bind(x))(0.0)
        Array(1., dtype=float32)
    """
    _single_output("defjvp2", prim)
    primitive_jvps[prim] = _TermsJVP(prim, rules, with_out=True)


def _single_output(fname, prim):
    if getattr(prim, "multiple_results", False):
        raise TypeError(f"ad.{fname}: '{prim.name}' has multiple results; register a whole "
                        "JVP rule with ad.primitive_jvps[p] = rule instead")


class _LinearJVP:
    """The JVP of a linear primitive: the primitive applied to the tangents."""

    def __init__(self, prim):
        self.prim = prim

    def __call__(self, primals, tangents, **params):
        out = self.prim.bind(*primals, **params)
        if all(type(t) is Zero for t in tangents):
            zeros = [Zero.from_primal_value(o) for o in (out if self.prim.multiple_results
                                                         else [out])]
            return out, (zeros if self.prim.multiple_results else zeros[0])
        return out, self.prim.bind(*[instantiate_zeros(t) for t in tangents], **params)


class _LinearTranspose:
    """The transpose rule of a primitive declared linear (`deflinear`, `deflinear2`)."""

    def __init__(self, rule, with_args):
        self.rule, self.with_args = rule, with_args

    def __call__(self, ct, *args, **params):
        if type(ct) is Zero:
            return [Zero(x.aval) if is_undefined_primal(x) else None for x in args]
        return self.rule(ct, *args, **params) if self.with_args else self.rule(ct, **params)


def deflinear(prim, transpose_rule) -> None:
    """Declare `prim` linear in all its arguments, with `transpose_rule(ct, **params)`
    returning one cotangent per argument. Its JVP applies `prim` to the tangents; its
    reverse mode is the transpose rule.

    Example:
        >>> import numpy as np
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn.extend.core import Primitive
        >>> from nanofn.interpreters import ad
        >>> flip_p = Primitive("flip")  # reverse a vector: its own transpose
        >>> _ = flip_p.def_impl(lambda x: x[::-1])
        >>> ad.deflinear(flip_p, lambda ct: [flip_p.bind(ct)])
        >>> nanofn.grad(lambda x: flip_p.bind(x)[0])(fnp.array([1.0, 2.0]))
        Array([0., 1.], dtype=float32)
    """
    primitive_jvps[prim] = _LinearJVP(prim)
    primitive_transposes[prim] = _LinearTranspose(transpose_rule, with_args=False)


def deflinear2(prim, transpose_rule) -> None:
    """`deflinear` with a transpose rule that also receives the arguments:
    `transpose_rule(ct, *args, **params)`, each argument an `UndefinedPrimal` or a value.

    Example:
        >>> import nanofn
        >>> from nanofn.extend.core import Primitive
        >>> from nanofn.interpreters import ad
        >>> add_p = Primitive("my_add")
        >>> _ = add_p.def_impl(lambda x, y: x + y)
        >>> ad.deflinear2(add_p, lambda ct, x, y: [ct, ct])
        >>> nanofn.grad(lambda x, y: add_p.bind(x, y), argnums=(0, 1))(1.0, 2.0)
        (Array(1., dtype=float32), Array(1., dtype=float32))
    """
    primitive_jvps[prim] = _LinearJVP(prim)
    primitive_transposes[prim] = _LinearTranspose(transpose_rule, with_args=True)


class _BilinearTranspose:
    def __init__(self, lhs_rule, rhs_rule):
        self.lhs_rule, self.rhs_rule = lhs_rule, rhs_rule

    def __call__(self, ct, x, y, **params):
        if is_undefined_primal(x):
            g = Zero(x.aval) if type(ct) is Zero else self.lhs_rule(ct, x, y, **params)
            return g, None
        g = Zero(y.aval) if type(ct) is Zero else self.rhs_rule(ct, x, y, **params)
        return None, g


def defbilinear(prim, lhs_rule, rhs_rule) -> None:
    """Declare the two-argument `prim` linear in each argument: its JVP applies `prim` with
    one argument replaced by its tangent, and its transpose with respect to `x` (`y`) is
    `lhs_rule(ct, x, y, **params)` (`rhs_rule(...)`), `x` (`y`) an `UndefinedPrimal`.

    Example:
        >>> import nanofn
        >>> from nanofn.extend.core import Primitive
        >>> from nanofn.interpreters import ad
        >>> mul_p = Primitive("bilinear_mul")
        >>> _ = mul_p.def_impl(lambda x, y: x * y)
        >>> ad.defbilinear(mul_p, lambda ct, x, y: mul_p.bind(ct, y),
        ...                lambda ct, x, y: mul_p.bind(x, ct))
        >>> nanofn.grad(lambda x, y: mul_p.bind(x, y), argnums=(0, 1))(2.0, 5.0)
        (Array(5., dtype=float32), Array(2., dtype=float32))
    """
    defjvp(prim, lambda t, x, y, **params: prim.bind(t, y, **params),
           lambda t, x, y, **params: prim.bind(x, t, **params))
    primitive_transposes[prim] = _BilinearTranspose(lhs_rule, rhs_rule)


# ------------------------------------------------------------------------ the adapters
# nanofn.extend.core.Primitive fills its `jvp` and `vjp_joint` slots with these two, which
# look the JAX-style rules up in the registries above when they are called.


def _jvp_rule(prim, primals, tangents, **params):
    """nanofn's forward rule (None = zero tangent) from the registered JAX JVP rule."""
    rule = primitive_jvps._rules.get(prim)
    if rule is None:
        raise NotImplementedError(_no_jvp_message(prim))
    tangents = tuple(Zero(_tangent_aval(p)) if t is None else t
                     for p, t in zip(primals, tangents))
    out, t_out = rule(tuple(primals), tangents, **params)
    if prim.multiple_results:
        return list(out), [None if type(t) is Zero else t for t in t_out]
    return out, None if type(t_out) is Zero else t_out


def _no_jvp_message(prim) -> str:
    return (f"primitive '{prim.name}' has no JVP rule: set ad.primitive_jvps[{prim.name}_p] "
            "= rule(primals, tangents, **params) -> (primal_out, tangent_out), or use "
            "ad.defjvp / ad.deflinear (jvp, grad and every other derivative need it: "
            "reverse mode transposes the JVP)")


class _LinearState(threading.local):
    """Per thread: whether the reverse pass now running transposes a JVP's tangent map
    (whose every recorded primitive is applied linearly to the tangents), and which
    primitives' tangent maps are being transposed (to catch a JVP that applies its own
    primitive to tangents when there is no transpose rule)."""

    linear = False

    def __init__(self):
        self.deriving: list = []


_state = _LinearState()


def _vjp_rule(prim, cts, primals, outs, needs, **params):
    """nanofn's reverse rule for a primitive with JAX-style rules: the cotangents of its
    arguments (None for zero) from the cotangent(s) of its output(s)."""
    linear, _state.linear = _state.linear, False  # the rules below run user code
    try:
        transpose = primitive_transposes._rules.get(prim)
        if transpose is not None and (linear or isinstance(transpose, _LinearTranspose)):
            return _apply_transpose(prim, transpose, cts, primals, outs, needs, params)
        if prim.vjp is not None:  # nanofn-style reverse rules, set on the primitive
            return [None if not need or rule is None else
                    rule(cts, *primals, out=outs, **params)
                    for rule, need in zip(prim.vjp, needs)]
        if prim.jvp is None or (getattr(prim.jvp, "func", None) is _jvp_rule
                                and prim not in primitive_jvps._rules):
            raise NotImplementedError(_no_jvp_message(prim))
        if linear and prim in _state.deriving:
            raise NotImplementedError(
                f"primitive '{prim.name}' has no transpose rule, and its JVP rule applies "
                f"'{prim.name}' to tangents: reverse mode transposes that use, so set "
                f"ad.primitive_transposes[{prim.name}_p] = rule(ct, *args, **params) "
                "(the arguments it is linear in arrive as ad.UndefinedPrimal)")
        return _transpose_jvp(prim, cts, primals, outs, needs, params)
    finally:
        _state.linear = linear


def _apply_transpose(prim, rule, cts, primals, outs, needs, params):
    wanted = [need and _is_float(p) for p, need in zip(primals, needs)]
    args = [UndefinedPrimal(get_aval(p)) if w else p for p, w in zip(primals, wanted)]
    if prim.multiple_results:
        ct = [Zero(_tangent_aval(o)) if c is None else c for c, o in zip(cts, outs)]
    else:
        ct = cts
    res = rule(ct, *args, **params)
    if not isinstance(res, (list, tuple)):
        if len(args) != 1:
            raise TypeError(f"the transpose rule of '{prim.name}' returned "
                            f"{type(res).__name__}; it must return a list or tuple with one "
                            f"cotangent (or None) per argument ({len(args)})")
        res = [res]
    if len(res) != len(args):
        raise TypeError(f"the transpose rule of '{prim.name}' returned {len(res)} cotangents "
                        f"for {len(args)} arguments")
    return [g if w and g is not None and type(g) is not Zero and type(g) is not UndefinedPrimal
            else None for g, w in zip(res, wanted)]


def _transpose_jvp(prim, cts, primals, outs, needs, params):
    """The cotangents of `prim`'s arguments, as the transpose of its JVP's tangent map at
    `primals`: record the JVP rule on zero tangents, then walk that record back with the
    output cotangents (the record holds only operations applied linearly to tangents)."""
    diff = [i for i, (p, need) in enumerate(zip(primals, needs)) if need and _is_float(p)]
    result = [None] * len(primals)
    if not diff:
        return result
    multiple = prim.multiple_results

    def tangent_map(*ts):
        tangents = [None] * len(primals)
        for i, t in zip(diff, ts):
            tangents[i] = t
        out, t_out = prim.jvp(primals, tangents, **params)
        outs_ = out if multiple else [out]
        t_out = t_out if multiple else [t_out]
        return [zeros_like_aval(get_aval(o)) if t is None else t for o, t in zip(outs_, t_out)]

    zero_tangents = [zeros_like_aval(get_aval(primals[i])) for i in diff]
    ct_list = list(cts) if multiple else [cts]
    _state.deriving.append(prim)
    try:
        with core.new_main(_ad.TapeTrace, []) as main:
            trace = main.trace
            in_keys = [next(_ad._keys) for _ in diff]
            t_outs = tangent_map(*[_ad.TapeTracer(trace, z, k)
                                   for z, k in zip(zero_tangents, in_keys)])
            out_keys = [trace.full_raise(t).key for t in t_outs]
        tape = main.global_data
        _state.linear = True
        try:
            grads = _ad.backward(tape, out_keys, ct_list, in_keys)
        finally:
            _state.linear = False
            tape.clear()  # a finished main and its trace refer to each other: free the tape now
    finally:
        _state.deriving.pop()
    for i, g in zip(diff, grads):
        result[i] = g
    return result
