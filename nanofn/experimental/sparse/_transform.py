"""sparsify: run a function written for dense arrays on BCOO arguments
(jax.experimental.sparse.sparsify), for a fixed set of operations.

As in JAX, the function is first traced with a dense stand-in (shape and dtype) for each
BCOO argument, giving a jaxpr; then the jaxpr is run equation by equation with the real
arguments. An equation whose inputs are all dense binds its primitive as usual; one with a
BCOO input uses the sparse rule of its primitive below, or raises NotImplementedError
naming the primitive. The rules:

* `dot_general` (`@`, `dot`, `matmul`, `einsum` contractions): `bcoo_dot_general`, dense
  or (two BCOOs) sparse result;
* `transpose`: `bcoo_transpose`;
* `reduce_sum` (`sum`): `bcoo_reduce_sum`; a sum over all axes is a dense scalar;
* `mul` by a dense array or scalar, or by a BCOO; `div` by a dense array or scalar;
* `add` / `sub` of two BCOOs of one shape (a BCOO), or of a BCOO and a dense array of the
  result's shape (a dense array);
* `neg`, `conj`, `real`, `imag`, `copy`, `convert_element_type` on the stored values;
  the zero-preserving `abs`, `sign`, `sin`, `sinh`, `tan`, `tanh`, `asin`, `asinh`,
  `atan`, `atanh`, `expm1`, `log1p`, `sqrt`, `square` and `integer_pow` with a positive
  exponent, after adding up duplicate entries;
* `slice`, `dynamic_slice`, `reshape`, `squeeze`, `rev`, `broadcast_in_dim` and
  `concatenate` (so basic indexing, `reshape`, `expand_dims`, `concatenate`, `stack` and
  `flip`): `bcoo_slice`, `bcoo_dynamic_slice`, `bcoo_reshape`, ...;
* `sparse.todense(x)` inside the function densifies `x`.

Anything else (advanced indexing, control flow or a nested `jit` taking a BCOO,
functions like `exp` that do not keep zeros) raises
NotImplementedError naming the primitive. BCSR arguments are converted to BCOO first.
The function is traced again at every call.
"""

from __future__ import annotations

import threading

from nanofn import _core
from nanofn.experimental.sparse import _bcoo
from nanofn.tree_util import tree_flatten, tree_unflatten

__all__ = ["sparsify"]

_state = threading.local()

# `sparse.todense(x)` inside a function being traced by sparsify is marked in the jaxpr by
# an identity function under `custom_jvp` (an equation `custom_jvp_call` whose call has
# this name), which the replay recognizes; nothing new is registered with the core.
_MARK = "_nanofn_sparsify_todense"
_marker = None


def _mark_todense(x):
    global _marker
    if not (getattr(_state, "tracing", False) and isinstance(x, _core.Tracer)):
        return x
    if _marker is None:
        import nanofn

        def identity(x):
            return x
        identity.__name__ = identity.__qualname__ = _MARK
        _marker = nanofn.custom_jvp(identity)
        _marker.defjvp(lambda primals, tangents: (primals[0], tangents[0]))
    return _marker(x)


def _is_mark(eqn):
    return (eqn.primitive.name == "custom_jvp_call"
            and getattr(eqn.params.get("call"), "name", None) == _MARK)


def sparsify(f, use_tracer=False):
    """A version of `f` that takes BCOO arrays where `f` takes dense ones
    (jax.experimental.sparse.sparsify), for the operations listed in this module's
    documentation: products (`@`, `dot`, `matmul`, `dot_general`), `transpose`, `sum`,
    `*` and `/` by scalars and dense arrays, `*`, `+`, `-` between BCOOs, `+` with a dense
    array, negation, zero-preserving elementwise functions (`abs`, `sin`, `sqrt`, ...),
    `astype`, basic indexing, `reshape`, `expand_dims`, `concatenate`, `stack`, `flip`
    and `sparse.todense`. Other operations on a sparse value raise
    NotImplementedError naming the primitive. Results that are sparse come back as BCOO
    (BCSR arguments are converted to BCOO). `use_tracer=True` (JAX's other
    implementation) is not supported.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> @sparse.sparsify
        ... def f(M, v):
        ...     return 2 * fnp.dot(M.T, v) + 1
        >>> M = sparse.BCOO.fromdense(fnp.array([[0., 1.], [3., 0.]]))
        >>> f(M, fnp.array([1., 2.]))
        Array([13.,  3.], dtype=float32)
    """
    if use_tracer:
        raise NotImplementedError("sparsify(use_tracer=True) is not supported by nanofn")

    def wrapped(*args, **kwargs):
        leaves, tree = tree_flatten((args, kwargs),
                                    is_leaf=lambda x: isinstance(x, _bcoo.JAXSparse))
        leaves = [x.to_bcoo() if isinstance(x, _bcoo.JAXSparse) and not _bcoo._is_bcoo(x)
                  else x for x in leaves]  # BCSR arguments run as BCOO
        if not any(_bcoo._is_bcoo(x) for x in leaves):
            return f(*args, **kwargs)
        dyn = [i for i, x in enumerate(leaves)
               if _bcoo._is_bcoo(x) or _core.is_array_like(x) and type(x) not in
               (bool, int, float, complex)]
        box = {}

        def flat(*vals):
            full = list(leaves)
            for i, v in zip(dyn, vals):
                full[i] = v
            a, kw = tree_unflatten(tree, full)
            out = f(*a, **kw)
            out_leaves, box["tree"] = tree_flatten(out)
            return out_leaves

        import nanofn
        stand_ins = [nanofn.ShapeDtypeStruct(leaves[i].shape, leaves[i].dtype) for i in dyn]
        was = getattr(_state, "tracing", False)
        _state.tracing = True
        try:
            closed = nanofn.make_jaxpr(flat)(*stand_ins)
        finally:
            _state.tracing = was
        outs = _eval(closed.jaxpr, closed.consts, [leaves[i] for i in dyn])
        return tree_unflatten(box["tree"], outs)

    wrapped.__name__ = getattr(f, "__name__", "sparsified")
    wrapped.__doc__ = getattr(f, "__doc__", None)
    wrapped.__wrapped__ = f
    return wrapped


def _eval(jaxpr, consts, args):
    env = {}
    for v, x in zip(jaxpr.constvars, consts):
        env[id(v)] = x
    for v, x in zip(jaxpr.invars, args):
        env[id(v)] = x

    def read(x):
        return x.val if type(x) is _core.Literal else env[id(x)]

    for eqn in jaxpr.eqns:
        vals = [read(x) for x in eqn.invars]
        prim = eqn.primitive
        if _is_mark(eqn):
            outs = [_bcoo.bcoo_todense(v) if _bcoo._is_bcoo(v) else v for v in vals]
        elif any(_bcoo._is_bcoo(v) for v in vals):
            rule = _RULES.get(prim.name)
            if rule is None:
                raise NotImplementedError(
                    f"sparsify: no sparse rule for the primitive '{prim.name}' applied to a "
                    "BCOO array; densify it first with sparse.todense")
            outs = rule(*vals, **eqn.params)
        else:
            outs = prim.bind(*vals, **eqn.params)
        if prim.multiple_results:
            for v, o in zip(eqn.outvars, outs):
                env[id(v)] = o
        else:
            env[id(eqn.outvars[0])] = outs
    return [read(x) for x in jaxpr.outvars]


# --------------------------------------------------------------------------- rules


def _dot_general(lhs, rhs, *, dimension_numbers, preferred_element_type=None, **_):
    return _bcoo.bcoo_dot_general(lhs, rhs, dimension_numbers=dimension_numbers,
                                  preferred_element_type=preferred_element_type)


def _transpose(x, *, permutation):
    return x.transpose(permutation)


def _reduce_sum(x, *, axes, **_):
    out = _bcoo.bcoo_reduce_sum(x, axes=axes)
    if out.ndim == 0:
        import nanofn.numpy as fnp
        return fnp.sum(out.data)
    return out


def _mul(a, b):
    return a * b if _bcoo._is_bcoo(a) else b * a


def _div(a, b):
    if _bcoo._is_bcoo(b):
        raise NotImplementedError("sparsify: 'div' by a BCOO array would give a dense "
                                  "result; densify it first with sparse.todense")
    return a / b


def _add(a, b):
    return _bcoo._add(a, b)


def _sub(a, b):
    return _bcoo._add(a, -b)


def _on_data(prim, dedupe):
    def rule(x, **params):
        if dedupe:
            x = x._unique()
        return x._with_data(prim.bind(x.data, **params))
    return rule


def _integer_pow(x, *, y):
    if y <= 0:
        raise NotImplementedError(f"sparsify: 'integer_pow' with exponent {y} would give a "
                                  "dense result; densify it first with sparse.todense")
    return _on_data(_core.registry["integer_pow"], True)(x, y=y)


def _unit_dims(long, short):
    """The dimensions of `long` to drop to get `short`, when `long` is `short` with size-1
    dimensions inserted (the earliest size-1 dimensions are dropped first); else None."""
    dropped, j = [], 0
    for i, n in enumerate(long):
        if n == 1 and _fits(long[i + 1:], short[j:]):
            dropped.append(i)
        elif j < len(short) and n == short[j]:
            j += 1
        else:
            return None
    return tuple(dropped) if dropped and j == len(short) else None


def _fits(long, short):
    """Whether `long` without some of its size-1 dimensions is `short`."""
    j = 0
    for n in long:
        if j < len(short) and n == short[j]:
            j += 1
        elif n != 1:
            return False
    return j == len(short)


def _shape_rules():
    from nanofn.experimental.sparse import _bcoo_shape as sh

    def slice_(x, *, start_indices, limit_indices, strides=None):
        return sh.bcoo_slice(x, start_indices=start_indices, limit_indices=limit_indices,
                             strides=strides)

    def dynamic_slice(x, *starts, slice_sizes):
        if any(_bcoo._is_bcoo(s) for s in starts):
            raise NotImplementedError("sparsify: 'dynamic_slice' with sparse start indices")
        return sh.bcoo_dynamic_slice(x, starts, slice_sizes)

    def reshape(x, *, new_sizes, dimensions=None, **_):
        # nanofn.numpy writes squeeze and expand_dims (as in indexing) as reshapes; JAX
        # writes them as squeeze and broadcast_in_dim, whose sparse layouts differ
        new_sizes = tuple(new_sizes)
        if dimensions is None and new_sizes == x.shape:  # x[0, None]: squeeze, then expand
            return x
        if dimensions is None:
            dropped = _unit_dims(x.shape, new_sizes)
            if dropped is not None:
                return sh.bcoo_squeeze(x, dimensions=dropped)
            added = _unit_dims(new_sizes, x.shape)
            if added is not None:
                kept = tuple(d for d in range(len(new_sizes)) if d not in added)
                return sh.bcoo_broadcast_in_dim(x, shape=new_sizes, broadcast_dimensions=kept)
        return sh.bcoo_reshape(x, new_sizes=new_sizes, dimensions=dimensions)

    def squeeze(x, *, dimensions):
        return sh.bcoo_squeeze(x, dimensions=dimensions)

    def rev(x, *, dimensions):
        return sh.bcoo_rev(x, dimensions)

    def broadcast_in_dim(x, *, shape, broadcast_dimensions, **_):
        return sh.bcoo_broadcast_in_dim(x, shape=shape,
                                        broadcast_dimensions=broadcast_dimensions)

    def concatenate(*xs, dimension):
        if not all(_bcoo._is_bcoo(x) for x in xs):
            raise NotImplementedError("sparsify: 'concatenate' of sparse and dense arrays; "
                                      "convert the dense ones with BCOO.fromdense")
        return sh.bcoo_concatenate(xs, dimension=dimension)

    return {"slice": slice_, "dynamic_slice": dynamic_slice, "reshape": reshape,
            "squeeze": squeeze, "rev": rev, "broadcast_in_dim": broadcast_in_dim,
            "concatenate": concatenate}


def _convert(x, **params):
    return x._with_data(_core.registry["convert_element_type"].bind(x.data, **params))


_RULES = {
    "dot_general": _dot_general,
    "transpose": _transpose,
    "reduce_sum": _reduce_sum,
    "mul": _mul,
    "div": _div,
    "add": _add,
    "sub": _sub,
    "integer_pow": _integer_pow,
    "convert_element_type": _convert,
    **_shape_rules(),
}
for _name, _dedupe in [("neg", False), ("conj", False), ("real", False), ("imag", False),
                       ("copy", False), ("abs", True), ("sign", True), ("sin", True),
                       ("sinh", True), ("tan", True), ("tanh", True), ("asin", True),
                       ("asinh", True), ("atan", True), ("atanh", True), ("expm1", True),
                       ("log1p", True), ("sqrt", True), ("square", True)]:
    if _name in _core.registry:
        _RULES[_name] = _on_data(_core.registry[_name], _dedupe)
del _name, _dedupe
