"""Sparse-aware derivatives (jax.experimental.sparse.grad, value_and_grad, jacfwd, jacrev,
jacobian).

`nanofn.grad` of a function of a BCOO already differentiates with respect to its leaves,
`data` and `indices`. These wrappers differentiate only with respect to the stored values
of each sparse argument (its first buffer, `data`) and return the derivative as a sparse
array of the same kind with the argument's indices: the gradient in the subspace of the
sparsity pattern. Dense arguments are differentiated as usual.
"""

from __future__ import annotations

import functools
import operator

import nanofn
import nanofn.numpy as fnp
from nanofn.experimental.sparse._bcoo import JAXSparse
from nanofn.tree_util import tree_flatten, tree_unflatten

__all__ = ["grad", "jacfwd", "jacobian", "jacrev", "value_and_grad"]


def _argnums_tuple(argnums):
    return (operator.index(argnums),) if not isinstance(argnums, (tuple, list)) else \
        tuple(operator.index(a) for a in argnums)


def _flat_problem(fun, argnums, args):
    """`fun` as a function of the flat buffers of `args`, the positions of the buffers to
    differentiate (for a sparse argument only its data), and a function turning the
    derivatives with respect to those buffers back into the structure of `args[argnums]`."""
    nums = _argnums_tuple(argnums)
    if any(not 0 <= a < len(args) for a in nums):
        raise ValueError(f"argnums={argnums} out of range for {len(args)} positional "
                         "arguments")
    is_sparse = lambda x: isinstance(x, JAXSparse)  # noqa: E731
    # per argument: its leaves (sparse arrays kept whole), then each leaf's buffers
    arg_leaves = [tree_flatten(a, is_leaf=is_sparse) for a in args]
    buffers, diff, slots = [], [], []
    for i, (leaves, _) in enumerate(arg_leaves):
        arg_slots = []
        for leaf in leaves:
            bufs, btree = tree_flatten(leaf)
            start = len(buffers)
            buffers += bufs
            if i in nums and bufs:
                diff += [start] if is_sparse(leaf) else list(range(start, start + len(bufs)))
            arg_slots.append((leaf, start, len(bufs), btree))
        slots.append(arg_slots)

    def fun_flat(*flat, **kwargs):
        rebuilt = []
        for (leaves, tree), arg_slots in zip(arg_leaves, slots):
            new = [tree_unflatten(bt, list(flat[s:s + n])) for _, s, n, bt in arg_slots]
            rebuilt.append(tree_unflatten(tree, new))
        return fun(*rebuilt, **kwargs)

    def rebuild(grads):
        """Derivatives with respect to the `diff` buffers -> the argnums structure."""
        by_buffer = dict(zip(diff, grads))
        out = []
        for i in sorted(set(nums)):  # JAX returns them in argument order
            leaves, tree = arg_leaves[i]
            new = []
            for leaf, s, n, bt in slots[i]:
                if is_sparse(leaf):
                    new.append(_sparse_like(leaf, by_buffer[s]))
                else:
                    new.append(tree_unflatten(bt, [by_buffer[k] for k in range(s, s + n)]))
            out.append(tree_unflatten(tree, new))
        # as in JAX, a single differentiated argument is returned bare even for
        # argnums=(i,)
        return out[0] if len(out) == 1 else tuple(out)

    return fun_flat, tuple(diff), buffers, rebuild


def _sparse_like(mat, g):
    """A sparse array like `mat` holding `g` as its data; leading extra dimensions of `g`
    (the output dimensions of a Jacobian) become leading batch dimensions."""
    bufs, tree = tree_flatten(mat)
    extra = g.ndim - bufs[0].ndim
    if extra == 0:
        return tree_unflatten(tree, [g] + bufs[1:])
    lead = tuple(g.shape[:extra])
    rest = [fnp.broadcast_to(b, lead + tuple(b.shape)) for b in bufs[1:]]
    out = tree_unflatten(tree, [g] + rest)
    out.shape = lead + tuple(mat.shape)
    return out


def value_and_grad(fun, argnums=0, has_aux=False, **kwargs):
    """`nanofn.value_and_grad` where the gradient with respect to a sparse argument is a
    sparse array with its indices, holding the derivative with respect to its stored
    values (jax.experimental.sparse.value_and_grad).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> X = sparse.BCOO.fromdense(fnp.arange(6.))
        >>> y = fnp.ones(6)
        >>> value, g = sparse.value_and_grad(lambda X, y: X @ y)(X, y)
        >>> value, g
        (Array(15., dtype=float32), BCOO(float32[6], nse=5))
        >>> g.data
        Array([1., 1., 1., 1., 1.], dtype=float32)
    """
    @functools.wraps(fun)
    def value_and_grad_fun(*args, **kw):
        fun_flat, diff, bufs, rebuild = _flat_problem(fun, argnums, args)
        val, g = nanofn.value_and_grad(fun_flat, argnums=diff, has_aux=has_aux,
                                       **kwargs)(*bufs, **kw)
        return val, rebuild(g)
    return value_and_grad_fun


def _wrap(transform, name):
    def wrapper(fun, argnums=0, has_aux=False, **kwargs):
        @functools.wraps(fun)
        def wrapped(*args, **kw):
            fun_flat, diff, bufs, rebuild = _flat_problem(fun, argnums, args)
            out = transform(fun_flat, argnums=diff, has_aux=has_aux, **kwargs)(*bufs, **kw)
            return (rebuild(out[0]), out[1]) if has_aux else rebuild(out)
        return wrapped
    wrapper.__name__ = wrapper.__qualname__ = name
    return wrapper


grad = _wrap(nanofn.grad, "grad")
grad.__doc__ = """`nanofn.grad` where the gradient with respect to a sparse argument is a
sparse array with its indices, holding the derivative with respect to its stored values
(jax.experimental.sparse.grad).

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.experimental import sparse
    >>> X = sparse.BCOO.fromdense(fnp.array([[1., 0.], [0., 2.]]))
    >>> g = sparse.grad(lambda X: (X @ fnp.array([3., 4.])).sum())(X)
    >>> g
    BCOO(float32[2, 2], nse=2)
    >>> g.data
    Array([3., 4.], dtype=float32)
"""

jacfwd = _wrap(nanofn.jacfwd, "jacfwd")
jacfwd.__doc__ = """`nanofn.jacfwd` where the Jacobian with respect to a sparse argument is
a sparse array with its indices: the output dimensions become leading batch dimensions
(jax.experimental.sparse.jacfwd). Dense outputs only, as in JAX.

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.experimental import sparse
    >>> X = sparse.BCOO.fromdense(fnp.array([0., 2., 3.]))
    >>> J = sparse.jacfwd(lambda X: 2 * X.todense())(X)
    >>> J.shape, J.data
    ((3, 3), Array([[0., 0.],
           [2., 0.],
           [0., 2.]], dtype=float32))
"""

jacrev = _wrap(nanofn.jacrev, "jacrev")
jacrev.__doc__ = """`nanofn.jacrev` where the Jacobian with respect to a sparse argument is
a sparse array with its indices: the output dimensions become leading batch dimensions
(jax.experimental.sparse.jacrev). Dense outputs only, as in JAX.

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.experimental import sparse
    >>> X = sparse.BCOO.fromdense(fnp.array([0., 2., 3.]))
    >>> J = sparse.jacrev(lambda X: X @ fnp.array([1., 2., 3.]))(X)
    >>> J.shape, J.data
    ((3,), Array([2., 3.], dtype=float32))
"""

jacobian = jacrev
