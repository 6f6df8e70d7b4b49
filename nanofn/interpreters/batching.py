"""Batching rules for primitives you define, the JAX way (`jax.interpreters.batching`).

`primitive_batchers[p] = rule`, where `rule(vector_arg_values, batch_axes, **params)`
returns `(out, out_axis)`: each argument comes with the axis that holds the batch, or
`not_mapped` (None) for an argument that is the same for every example, and the rule
says which axis of its result holds the batch (a list of axes for a primitive with
`multiple_results`). `vmap` calls it once for the whole batch. `defvectorized` and
`defbroadcasting` register the rules of elementwise primitives.

The registry holds the rules of primitives made with `nanofn.extend.core.Primitive` only:
nanofn's own primitives have their rules built in (looking one up raises `KeyError`).

Example:
    >>> import numpy as np
    >>> import nanofn, nanofn.numpy as fnp
    >>> from nanofn.extend.core import Primitive
    >>> from nanofn.interpreters import batching
    >>> rowsum_p = Primitive("rowsum")
    >>> _ = rowsum_p.def_impl(lambda x: np.sum(x, axis=-1))
    >>> def rowsum_batch(args, axes):
    ...     x, = args
    ...     x = batching.bdim_at_front(x, axes[0], x.shape[axes[0]])  # the batch axis first
    ...     return rowsum_p.bind(x), 0
    >>> batching.primitive_batchers[rowsum_p] = rowsum_batch
    >>> nanofn.vmap(lambda x: rowsum_p.bind(x), in_axes=1)(fnp.ones((3, 2)))
    Array([3., 3.], dtype=float32)
"""

from __future__ import annotations

from nanofn import _batching
from nanofn.interpreters.ad import _RuleTable

__all__ = ["not_mapped", "primitive_batchers", "defvectorized", "defbroadcasting",
           "bdim_at_front", "broadcast"]

not_mapped = None
"""The batch axis of an argument that is the same for every example: None."""

primitive_batchers = _RuleTable("batching.primitive_batchers", "batching")
"""The batching rule of each primitive you define:
`primitive_batchers[p] = rule(vector_arg_values, batch_axes, **params) -> (out,
out_axis)` (`jax.interpreters.batching.primitive_batchers`)."""


def _shape(x):
    return _batching._shape(x)


def bdim_at_front(x, bdim, size: int):
    """`x` with its batch axis `bdim` moved to the front; an unmapped `x` (`bdim` None)
    is broadcast to `size` examples along a new leading axis.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.interpreters import batching
        >>> batching.bdim_at_front(fnp.ones((2, 3)), 1, 3).shape
        (3, 2)
        >>> batching.bdim_at_front(fnp.ones(2), batching.not_mapped, 4).shape
        (4, 2)
    """
    return _batching.broadcast_batch(_batching._as_array(x), bdim, size, 0)


def broadcast(x, sz: int, axis: int, mesh_axis=None):
    """`x` repeated `sz` times along a new axis at position `axis` (`mesh_axis` is
    accepted and unused: no sharding).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.interpreters import batching
        >>> batching.broadcast(fnp.ones(2), 3, 1).shape
        (2, 3)
    """
    del mesh_axis  # unused: one device
    x = _batching._as_array(x)
    return _batching.broadcast_batch(x, None, sz, axis % (len(_shape(x)) + 1))


class _VectorizedBatcher:
    """The batching rule of an elementwise primitive (what `defvectorized` registers)."""

    def __init__(self, prim):
        self.prim = prim

    def __call__(self, vals, dims, **params):
        mapped = {d for d in dims if d is not None}
        if len(mapped) == 1 and all(d is not None for d in dims):
            out_dim = mapped.pop()
        else:  # batch axes differ, or some arguments are not mapped: batch first
            size = _batching.axis_size_of(vals, dims)
            vals = [bdim_at_front(v, d, size) for v, d in zip(vals, dims)]
            out_dim = 0
        out = self.prim.bind(*vals, **params)
        if self.prim.multiple_results:
            return out, [out_dim] * len(out)
        return out, out_dim


def defvectorized(prim) -> None:
    """Give the elementwise primitive `prim` its batching rule: it is applied to the
    batched arguments as they are, their batch axes lined up.

    Example:
        >>> import numpy as np
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn.extend.core import Primitive
        >>> from nanofn.interpreters import batching
        >>> sq_p = Primitive("square_it")
        >>> _ = sq_p.def_impl(np.square)
        >>> batching.defvectorized(sq_p)
        >>> nanofn.vmap(lambda x: sq_p.bind(x))(fnp.array([1.0, 2.0]))
        Array([1., 4.], dtype=float32)
    """
    primitive_batchers[prim] = _VectorizedBatcher(prim)


class _BroadcastingBatcher:
    """The batching rule of a primitive that broadcasts its arguments as numpy does
    (what `defbroadcasting` registers)."""

    def __init__(self, prim):
        self.prim = prim

    def __call__(self, vals, dims, **params):
        ranks = [len(_shape(v)) - (d is not None) for v, d in zip(vals, dims)]
        mapped = [(len(_shape(v)), d) for v, d in zip(vals, dims) if d is not None]
        if (len(set(mapped)) == 1
                and all(d is not None or r == 0 for d, r in zip(dims, ranks))):
            out_dim = mapped[0][1]  # same batch axis, same rank, the rest scalars: as is
        else:  # batch axis first, every argument of one rank (numpy broadcasts the rest)
            from nanofn.numpy import reshape
            rank = max(ranks)
            new = []
            for v, d, r in zip(vals, dims, ranks):
                if d is None and r == 0:
                    new.append(v)
                    continue
                v = _batching._as_array(v)
                if d is None:
                    new.append(reshape(v, (1,) * (rank + 1 - r) + _shape(v)))
                else:
                    v = _batching.moveaxis(v, d, 0)
                    shape = _shape(v)
                    new.append(reshape(v, shape[:1] + (1,) * (rank - r) + shape[1:]))
            vals, out_dim = new, 0
        out = self.prim.bind(*vals, **params)
        if self.prim.multiple_results:
            return out, [out_dim] * len(out)
        return out, out_dim


def defbroadcasting(prim) -> None:
    """Give `prim`, which broadcasts its arguments against each other as numpy does, its
    batching rule: the batch axes are moved to the front and the arguments given one rank,
    so that broadcasting lines the examples up.

    Example:
        >>> import numpy as np
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn.extend.core import Primitive
        >>> from nanofn.interpreters import batching
        >>> add_p = Primitive("add_them")
        >>> _ = add_p.def_impl(np.add)
        >>> batching.defbroadcasting(add_p)
        >>> xs, y = fnp.array([[1.0, 2.0], [3.0, 4.0]]), fnp.array([10.0, 20.0])
        >>> nanofn.vmap(lambda x: add_p.bind(x, y), in_axes=1)(xs)
        Array([[11., 23.],
               [12., 24.]], dtype=float32)
    """
    primitive_batchers[prim] = _BroadcastingBatcher(prim)


def _batch_rule(prim, vals, dims, **params):
    """nanofn's batching rule for a primitive made with nanofn.extend.core.Primitive: the
    registered JAX-style rule, its result axes made non-negative."""
    rule = primitive_batchers._rules.get(prim)
    if rule is None:
        raise NotImplementedError(
            f"primitive '{prim.name}' has no batching rule: set "
            f"batching.primitive_batchers[{prim.name}_p] = rule(vector_arg_values, "
            "batch_axes, **params) -> (out, out_axis), or use batching.defvectorized / "
            "batching.defbroadcasting")
    vals = tuple(_batching._as_array(v) for v in vals)
    out, out_dim = rule(vals, tuple(dims), **params)
    if prim.multiple_results:
        out = list(out)
        dims_out = (list(out_dim) if isinstance(out_dim, (list, tuple))
                    else [out_dim] * len(out))
        return out, [_canonical(o, d) for o, d in zip(out, dims_out)]
    return out, _canonical(out, out_dim)


def _canonical(out, dim):
    return dim if dim is None or dim >= 0 else dim + len(_shape(out))
