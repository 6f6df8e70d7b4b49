"""Euclidean projections onto convex sets, with ``optax.projections``' names.

Each function returns the point of a set nearest (in the Euclidean norm) to its input,
which may be an array or any pytree of arrays; a pytree is treated as one flat vector, so
``projection_l2_ball`` bounds the norm of the whole tree, not of each leaf. The sets:

- boxes: :func:`projection_non_negative`, :func:`projection_box`,
  :func:`projection_hypercube`, :func:`projection_linf_ball`;
- simplices and norm balls: :func:`projection_simplex`, :func:`projection_l1_sphere`,
  :func:`projection_l1_ball`, :func:`projection_l2_sphere`, :func:`projection_l2_ball`;
- affine sets: :func:`projection_vector`, :func:`projection_hyperplane`,
  :func:`projection_halfspace`.

They are built from traceable operations (the simplex projection has its own JVP rule,
whose Jacobian is the projection's exact one almost everywhere), so they work under
``nanofn.jit``, ``nanofn.vmap`` and every differentiation mode. Names, arguments,
defaults and numerics follow optax 0.2.8.

Example:
    >>> import nanofn.numpy as jnp
    >>> from nanofn.optim import projections
    >>> p = projections.projection_simplex(jnp.array([0.5, 1.5, -1.0]))
    >>> print(p.tolist())
    [0.0, 1.0, 0.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

import nanofn
import nanofn.numpy as jnp
from nanofn import lax, tree_util
from nanofn.optim import tree as otu

__all__ = [
    "projection_box", "projection_halfspace", "projection_hypercube",
    "projection_hyperplane", "projection_l1_ball", "projection_l1_sphere",
    "projection_l2_ball", "projection_l2_sphere", "projection_linf_ball",
    "projection_non_negative", "projection_simplex", "projection_vector",
]

_map = tree_util.tree_map


# --- helpers -----------------------------------------------------------------------------


def _bound_like(fn: str, name: str, bound: Any, tree: Any) -> Any:
    """``bound`` as a tree of ``tree``'s structure: a tree of that structure as it is, or
    one array (or scalar) repeated for every leaf."""
    tdef = tree_util.tree_structure(tree)
    bdef = tree_util.tree_structure(bound)
    if bdef == tdef:
        return bound
    if tree_util.treedef_is_leaf(bdef) and bdef.num_leaves == 1:
        return tdef.unflatten([bound] * tdef.num_leaves)
    raise ValueError(f"{fn}: argument `{name}` must be a scalar, an array, or a tree with "
                     f"the structure of `tree` ({tdef}); got one with structure {bdef}.")


def _same_structure(fn: str, x: Any, a: Any) -> None:
    xdef, adef = tree_util.tree_structure(x), tree_util.tree_structure(a)
    if xdef != adef:
        raise ValueError(f"{fn}: argument `a` must have the structure of `x` ({xdef}), "
                         f"got {adef}.")


def _ravel(fn: str, tree: Any):
    """The leaves of ``tree`` as one vector, and the inverse map.

    As ``jax.flatten_util.ravel_pytree`` does, the inverse casts each piece back to its
    leaf's dtype only when the leaves' dtypes differ; with one common dtype it keeps the
    vector's dtype (so an integer tree comes back as floats after a float computation).
    """
    leaves, treedef = tree_util.tree_flatten(tree)
    leaves = [jnp.asarray(x) for x in leaves]
    if not leaves:
        raise ValueError(f"{fn}: argument `tree` has no leaves to project.")
    shapes = [tuple(x.shape) for x in leaves]
    dtypes = [x.dtype for x in leaves]
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    common = jnp.result_type(*leaves)
    flat = jnp.concatenate([jnp.ravel(x).astype(common) for x in leaves])
    mixed = any(d != common for d in dtypes)

    def unravel(vec):
        pieces, start = [], 0
        for shape, size, dtype in zip(shapes, sizes, dtypes):
            piece = jnp.reshape(vec[start:start + size], shape)
            pieces.append(piece.astype(dtype) if mixed else piece)
            start += size
        return tree_util.tree_unflatten(treedef, pieces)

    return flat, unravel


# --- boxes -------------------------------------------------------------------------------


def projection_non_negative(tree: Any) -> Any:
    r"""Projects onto the non-negative orthant: every entry below zero becomes zero.

    Solves :math:`\min_p \|x - p\|_2^2` subject to :math:`p \ge 0`.

    Args:
        tree: the array or pytree to project.

    Returns:
        The projection, with the structure of ``tree``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.projections import projection_non_negative
        >>> print(projection_non_negative(jnp.array([-1.0, 2.0])).tolist())
        [0.0, 2.0]
    """
    return _map(nanofn.nn.relu, tree)


def projection_box(tree: Any, lower: Any, upper: Any) -> Any:
    r"""Projects onto the box ``lower <= p <= upper`` (entrywise clipping).

    Solves :math:`\min_p \|x - p\|_2^2` subject to :math:`\text{lower} \le p \le
    \text{upper}`.

    Args:
        tree: the array or pytree to project.
        lower: the lower bound: a scalar or array (used for every leaf, broadcasting
            against it), or a tree with the structure of ``tree``.
        upper: the upper bound, in the same forms as ``lower``.

    Returns:
        The projection, with the structure of ``tree``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.projections import projection_box
        >>> print(projection_box(jnp.array([-1.0, 0.5, 3.0]), 0.0, 2.0).tolist())
        [0.0, 0.5, 2.0]
    """
    lower = _bound_like("projection_box", "lower", lower, tree)
    upper = _bound_like("projection_box", "upper", upper, tree)
    return _map(jnp.clip, tree, lower, upper)


def projection_hypercube(tree: Any, scale: Any = 1) -> Any:
    r"""Projects onto the hypercube ``0 <= p <= scale`` (the unit cube by default).

    The same as ``projection_box(tree, 0, scale)``.

    Args:
        tree: the array or pytree to project.
        scale: the side of the cube: a scalar or array, or a tree with the structure of
            ``tree`` (default 1).

    Returns:
        The projection, with the structure of ``tree``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.projections import projection_hypercube
        >>> print(projection_hypercube(jnp.array([-1.0, 0.5, 3.0])).tolist())
        [0.0, 0.5, 1.0]
    """
    return projection_box(tree, lower=0, upper=scale)


def projection_linf_ball(tree: Any, scale: Any = 1) -> Any:
    r"""Projects onto the l-infinity ball of radius ``scale``: clips to ``[-scale, scale]``.

    Solves :math:`\min_y \|x - y\|_2^2` subject to :math:`\|y\|_\infty \le
    \text{scale}`. As in optax, the bounds take each leaf's dtype (an integer leaf is
    clipped to integer bounds).

    Args:
        tree: the array or pytree to project.
        scale: the radius of the ball (default 1).

    Returns:
        The projection, with the structure of ``tree``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.projections import projection_linf_ball
        >>> print(projection_linf_ball(jnp.array([-3.0, 0.5, 2.0]), 1.5).tolist())
        [-1.5, 0.5, 1.5]
    """
    def clip(x):
        x = jnp.asarray(x)
        bound = jnp.broadcast_to(jnp.asarray(scale).astype(x.dtype), x.shape)
        return jnp.clip(x, -bound, bound)

    return _map(clip, tree)


# --- simplex and norm balls --------------------------------------------------------------


def _unit_simplex_value(values):
    # Sort descending; the projection is relu(values - theta) with theta chosen from the
    # largest k entries, k the count of prefixes whose entries all stay positive.
    # (-inf entries make inf - inf = nan in the prefix test, which then fails, as in optax;
    # numpy's warning about it is silenced.)
    n = values.shape[0]
    with np.errstate(invalid="ignore"):
        u = jnp.sort(values)[::-1]
        csum = jnp.cumsum(u)
        k = jnp.arange(1, n + 1, dtype=values.dtype)  # in the values' precision
        kept = 1 / k + (u - csum / k) > 0
        count = jnp.count_nonzero(kept)
        size = count.astype(values.dtype)
        return nanofn.nn.relu(1 / size + (values - csum[count - 1] / size))


@nanofn.custom_jvp
def _unit_simplex(values):
    return _unit_simplex_value(values)


@_unit_simplex.defjvp
def _unit_simplex_jvp(primals, tangents):
    (values,), (dvalues,) = primals, tangents
    out = _unit_simplex(values)
    # On the support S of the output the map is the projection onto {sum = 1} restricted
    # to S, so its Jacobian is diag(1_S) - 1_S 1_S^T / |S|.
    support = (out > 0).astype(dvalues.dtype)
    size = jnp.count_nonzero(out > 0).astype(dvalues.dtype)
    dout = support * dvalues - (jnp.dot(support, dvalues) / size) * support
    return out, dout


def projection_simplex(tree: Any, scale: Any = 1) -> Any:
    r"""Projects onto the simplex ``{p >= 0, sum(p) = scale}`` (the probability simplex
    by default).

    Solves :math:`\min_p \|x - p\|_2^2` subject to :math:`p \ge 0,\ p^\top 1 =
    \text{scale}`, for the whole tree seen as one vector, by sorting (``O(n log n)``). It
    is differentiable: its Jacobian is ``diag(s) - s s^T / |s|``, with ``s`` the indicator
    of the output's support.

    Args:
        tree: the array or pytree to project (at least one entry).
        scale: the value the entries of the projection sum to (default 1), positive.

    Returns:
        The projection, with the structure of ``tree``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import projections, tree
        >>> data = {"w": jnp.array([2.5, 3.2]), "b": jnp.array(0.5)}
        >>> p = projections.projection_simplex(data)
        >>> print(round(float(tree.sum(p)), 5), [round(x, 2) for x in p["w"].tolist()])
        1.0 [0.15, 0.85]
    """
    values, unravel = _ravel("projection_simplex", tree)
    if values.shape[0] == 0:
        raise ValueError("projection_simplex: argument `tree` has no entries to project.")
    return unravel(scale * _unit_simplex(values / scale))


def projection_l1_sphere(tree: Any, scale: Any = 1) -> Any:
    r"""Projects onto the l1 sphere ``{y : ||y||_1 = scale}``.

    The magnitudes are projected onto the simplex of sum ``scale`` and the signs kept.

    Args:
        tree: the array or pytree to project.
        scale: the radius of the sphere (default 1).

    Returns:
        The projection, with the structure of ``tree``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.projections import projection_l1_sphere
        >>> print(projection_l1_sphere(jnp.array([2.0, -1.0]), 2.0).tolist())
        [1.5, -0.5]
    """
    magnitudes = projection_simplex(_map(jnp.abs, tree), scale)
    return otu.mul(_map(jnp.sign, tree), magnitudes)


def projection_l1_ball(tree: Any, scale: Any = 1) -> Any:
    r"""Projects onto the l1 ball ``{y : ||y||_1 <= scale}``.

    A point inside the ball is returned unchanged (with a unit derivative); one outside
    goes to the l1 sphere (:func:`projection_l1_sphere`). The choice is made with
    ``lax.cond``, so it works under ``jit``. Integer leaves are computed in floats.

    Args:
        tree: the array or pytree to project.
        scale: the radius of the ball (default 1).

    Returns:
        The projection, with the structure of ``tree``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.projections import projection_l1_ball
        >>> print(projection_l1_ball(jnp.array([2.0, -1.0]), 2.0).tolist())
        [1.5, -0.5]
        >>> print(projection_l1_ball(jnp.array([0.5, -1.0]), 2.0).tolist())
        [0.5, -1.0]
    """
    tree = _map(_as_inexact, tree)
    inside = otu.norm(tree, ord=1) <= scale
    return lax.cond(inside, lambda t: t, lambda t: projection_l1_sphere(t, scale), tree)


def _as_inexact(x):
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return x
    return x.astype(jnp.promote_types(x.dtype, jnp.asarray(0.0).dtype))


def projection_l2_sphere(tree: Any, scale: Any = 1) -> Any:
    r"""Projects onto the l2 sphere ``{y : ||y||_2 = scale}``: rescales to norm ``scale``.

    The zero tree has no nearest point on the sphere; as in optax it gives NaNs.

    Args:
        tree: the array or pytree to project.
        scale: the radius of the sphere (default 1).

    Returns:
        The projection, with the structure of ``tree``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.projections import projection_l2_sphere
        >>> print(projection_l2_sphere(jnp.array([3.0, 4.0]), 10.0).tolist())
        [6.0, 8.0]
    """
    return otu.scale(scale / otu.norm(tree), tree)


def projection_l2_ball(tree: Any, scale: Any = 1) -> Any:
    r"""Projects onto the l2 ball ``{y : ||y||_2 <= scale}``.

    Multiplies by ``scale / max(||x||_2, scale)``, computed from the squared norm so that
    the derivative at zero is finite (the identity).

    Args:
        tree: the array or pytree to project.
        scale: the radius of the ball (default 1).

    Returns:
        The projection, with the structure of ``tree``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.projections import projection_l2_ball
        >>> print(projection_l2_ball(jnp.array([3.0, 4.0]), 2.5).tolist())
        [1.5, 2.0]
    """
    squared = otu.norm(tree, squared=True)
    factor = scale / jnp.sqrt(jnp.maximum(squared, scale ** 2))
    return otu.scale(factor, tree)


# --- affine sets -------------------------------------------------------------------------


def projection_vector(x: Any, a: Any) -> Any:
    r"""Projects ``x`` onto the line spanned by ``a``: ``(<x, a> / <a, a>) a``.

    Args:
        x: the array or pytree to project.
        a: the direction, a tree with the structure of ``x``.

    Returns:
        The projection, with the structure of ``x``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.projections import projection_vector
        >>> print(projection_vector(jnp.array([1.0, 2.0]), jnp.array([2.0, 0.0])).tolist())
        [1.0, 0.0]
    """
    _same_structure("projection_vector", x, a)
    coef = otu.vdot(x, a) / otu.vdot(a, a)
    return otu.scale(coef, a)


def projection_hyperplane(x: Any, a: Any, b: Any) -> Any:
    r"""Projects ``x`` onto the hyperplane ``{y : <a, y> = b}``.

    The result is ``x + ((b - <x, a>) / <a, a>) a``.

    Args:
        x: the array or pytree to project.
        a: the normal of the hyperplane, a tree with the structure of ``x``.
        b: the offset, a scalar.

    Returns:
        The projection, with the structure of ``x``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.projections import projection_hyperplane
        >>> y = projection_hyperplane(jnp.array([1.0, 2.0]), jnp.array([0.0, 1.0]), 5.0)
        >>> print(y.tolist())
        [1.0, 5.0]
    """
    _same_structure("projection_hyperplane", x, a)
    coef = (b - otu.vdot(x, a)) / otu.vdot(a, a)
    return otu.add_scale(x, coef, a)


def projection_halfspace(x: Any, a: Any, b: Any) -> Any:
    r"""Projects ``x`` onto the halfspace ``{y : <a, y> <= b}``.

    A point already in the halfspace is returned as it is; one outside goes to the
    bounding hyperplane (:func:`projection_hyperplane`).

    Args:
        x: the array or pytree to project.
        a: the outward normal, a tree with the structure of ``x``.
        b: the offset, a scalar.

    Returns:
        The projection, with the structure of ``x``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.projections import projection_halfspace
        >>> a = jnp.array([0.0, 1.0])
        >>> print(projection_halfspace(jnp.array([1.0, 7.0]), a, 5.0).tolist())
        [1.0, 5.0]
        >>> print(projection_halfspace(jnp.array([1.0, 2.0]), a, 5.0).tolist())
        [1.0, 2.0]
    """
    _same_structure("projection_halfspace", x, a)
    coef = jnp.minimum((b - otu.vdot(x, a)) / otu.vdot(a, a), 0)
    return otu.add_scale(x, coef, a)
