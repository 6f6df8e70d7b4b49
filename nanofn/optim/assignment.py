"""The linear assignment problem, with ``optax.assignment``'s names.

Given an ``n x m`` cost matrix ``C``, choose ``min(n, m)`` (row, column) pairs, no row and
no column twice, with the least total cost ``C[i, j].sum()``: the minimum-weight
maximum matching of a complete bipartite graph. Two exact ``O(n^2 m)`` solvers, both
built from ``lax`` loops so they run eagerly, under ``nanofn.jit`` and under
``nanofn.vmap`` (a batch of cost matrices of one shape):

- :func:`hungarian_algorithm`: the potentials-and-Dijkstra form of the Hungarian method
  (as in the Scenic library), growing one row at a time;
- :func:`base_hungarian_algorithm`: the shortest-augmenting-path method of Crouse (2016),
  the algorithm behind ``scipy.optimize.linear_sum_assignment``.

Both return ``(i, j)``, a row-index and a column-index array of length ``min(n, m)``,
ordered as optax 0.2.8 orders them (see each function), so that a ported program gets
the same pairs in the same order. Costs may be any real dtype (integers are solved in
floating point); they must not contain NaN. Ties between optimal assignments are broken
the way optax breaks them.

Example:
    >>> import nanofn.numpy as jnp
    >>> from nanofn.optim import assignment
    >>> cost = jnp.array([[4.0, 1.0], [2.0, 0.0]])
    >>> i, j = assignment.hungarian_algorithm(cost)
    >>> print(float(cost[i, j].sum()))
    3.0
"""

from __future__ import annotations

from typing import Any

import nanofn.numpy as jnp
from nanofn import lax

__all__ = ["base_hungarian_algorithm", "hungarian_algorithm"]


def _default_int():
    return jnp.asarray(0).dtype


def _as_cost_matrix(fn: str, cost_matrix: Any):
    cost = jnp.asarray(cost_matrix)
    if cost.ndim != 2:
        raise ValueError(f"{fn}: argument `cost_matrix` must be a 2-d array, got shape "
                         f"{tuple(cost.shape)}.")
    if jnp.issubdtype(cost.dtype, jnp.complexfloating):
        raise TypeError(f"{fn}: argument `cost_matrix` must be real, got dtype {cost.dtype}.")
    # Integers and low-precision floats are solved in the default float dtype (float32,
    # or float64 with jax_enable_x64); float64 inputs stay float64.
    return cost, jnp.promote_types(cost.dtype, jnp.asarray(0.0).dtype)


def _empty():
    return jnp.zeros((0,), _default_int()), jnp.zeros((0,), _default_int())


def hungarian_algorithm(cost_matrix: Any):
    r"""Solves the linear assignment problem with the Hungarian method.

    Minimizes :math:`\sum_{ij} C_{ij} X_{ij}` over 0/1 matrices ``X`` with at most one
    1 per row and per column and ``min(n, m)`` ones in all. The rows of the (possibly
    transposed, so that it is wide) matrix are added one at a time; each addition runs a
    Dijkstra-like search over the columns with row and column potentials (``lax``
    ``while_loop`` inside ``scan``), then flips the augmenting path it found.

    Args:
        cost_matrix: an ``n x m`` array of real costs.

    Returns:
        ``(i, j)``, integer arrays of length ``min(n, m)``; the cost of the assignment is
        ``cost_matrix[i, j].sum()``. The order is optax's: for a square matrix ``j`` is
        ``0..n-1`` and ``i`` the row of each column; for a wide one (``n < m``) the pairs
        come by decreasing row; for a tall one (``n > m``) by decreasing column.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.assignment import hungarian_algorithm
        >>> cost = jnp.array([[8, 4, 7], [5, 2, 3], [9, 6, 7], [9, 4, 8]])
        >>> i, j = hungarian_algorithm(cost)
        >>> print(int(cost[i, j].sum()), i.tolist(), j.tolist())
        15 [1, 3, 0] [2, 1, 0]
    """
    cost, fdt = _as_cost_matrix("hungarian_algorithm", cost_matrix)
    if cost.shape[0] == 0 or cost.shape[1] == 0:
        return _empty()
    transpose = cost.shape[0] > cost.shape[1]
    if transpose:
        cost = cost.T
    rows, cols = cost.shape
    idt = _default_int()

    # 1-based bookkeeping: column 0 is a virtual column that holds the row being added;
    # `owner[c]` is the (1-based) row matched to column c, 0 for none. The row potential
    # has an extra last slot that absorbs the updates meant for no row.
    u0 = jnp.zeros((rows + 2,), fdt)
    v0 = jnp.zeros((cols + 1,), fdt)
    owner0 = jnp.zeros((cols + 1,), idt)

    def add_row(carry, row):
        u, v, owner = carry
        owner = owner.at[0].set((row + 1).astype(idt))

        def search_continues(state):
            return owner[state[-1]] != 0

        def search_step(state):
            u, v, visited, best, prev, col = state
            visited = visited.at[col].set(True)
            open_cols = ~visited[1:]
            r = owner[col]
            reduced = cost[r - 1] - u[r] - v[1:]
            reduced = jnp.where(open_cols, reduced, jnp.inf)
            closer = reduced < best
            prev = jnp.where(closer, col, prev)
            best = jnp.where(closer, reduced, best)
            # the nearest unvisited column is visited next; every potential moves by its
            # distance so that reduced costs stay non-negative
            masked = jnp.where(open_cols, best, jnp.inf)
            col = (jnp.argmin(masked) + 1).astype(idt)
            delta = jnp.min(masked)
            rows_to_raise = jnp.where(visited, owner, rows + 1)
            u = u.at[rows_to_raise].add(delta)
            v = jnp.where(visited, v - delta, v)
            best = jnp.where(open_cols, best - delta, best)
            return u, v, visited, best, prev, col

        state = (u, v, jnp.zeros((cols + 1,), bool), jnp.full((cols,), jnp.inf, fdt),
                 jnp.zeros((cols,), idt), jnp.zeros((), idt))
        u, v, _, _, prev, col = lax.while_loop(search_continues, search_step, state)

        # walk the path back to the virtual column, shifting each column's row along it
        def walk_continues(walk):
            return walk[1] != 0

        def walk_step(walk):
            owner, col = walk
            back = prev[col - 1]
            return owner.at[col].set(owner[back]), back

        owner, _ = lax.while_loop(walk_continues, walk_step, (owner, col))
        return (u, v, owner), None

    (_, _, owner), _ = lax.scan(add_row, (u0, v0, owner0), jnp.arange(rows, dtype=idt))

    if rows == cols:
        matched, columns = owner[1:], jnp.arange(rows, dtype=idt)
    else:
        # the `rows` matched columns are those with a nonzero owner; top_k lists them by
        # decreasing owner, which is the order optax returns
        matched, columns = lax.top_k(owner[1:], rows)
        columns = columns.astype(idt)
    matched = matched - 1
    if transpose:
        return columns, matched
    return matched, columns


def base_hungarian_algorithm(cost_matrix: Any):
    r"""Solves the linear assignment problem with shortest augmenting paths (Crouse).

    The same problem as :func:`hungarian_algorithm`, by the method of D. F. Crouse, "On
    implementing 2D rectangular assignment algorithms" (IEEE TAES, 2016), which SciPy's
    ``linear_sum_assignment`` also uses: for each row of the (possibly transposed, so
    that it is wide) matrix, a Dijkstra search over reduced costs finds the cheapest
    augmenting path to a free column; the dual variables are then updated and the path
    flipped. Written with ``lax.fori_loop`` and ``lax.while_loop``.

    Args:
        cost_matrix: an ``n x m`` array of real costs.

    Returns:
        ``(i, j)``, integer arrays of length ``min(n, m)``, with ``i`` increasing (the
        order optax returns); the cost of the assignment is ``cost_matrix[i, j].sum()``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.assignment import base_hungarian_algorithm
        >>> cost = jnp.array([[8, 4, 7], [5, 2, 3], [9, 6, 7], [9, 4, 8]])
        >>> i, j = base_hungarian_algorithm(cost)
        >>> print(int(cost[i, j].sum()), i.tolist(), j.tolist())
        15 [0, 1, 3] [0, 2, 1]
    """
    cost, fdt = _as_cost_matrix("base_hungarian_algorithm", cost_matrix)
    if cost.shape[0] == 0 or cost.shape[1] == 0:
        return _empty()
    transpose = cost.shape[1] < cost.shape[0]
    if transpose:
        cost = cost.T
    cost = cost.astype(fdt)
    nr, nc = cost.shape
    idt = _default_int()
    positions = jnp.arange(nc, dtype=idt)
    row_ids = jnp.arange(nr, dtype=idt)

    def shortest_path(u, v, path, row4col, start):
        # State: the row being scanned, the current path length, how many columns are left
        # to scan and which (the first `left` entries of `todo`), the rows and columns
        # reached, the tentative distances, the predecessor row of each column, the sink.
        def searching(s):
            return s[-1] == -1

        def scan_row(s):
            i, dist_i, left, todo, seen_r, seen_c, dist, path, _ = s
            seen_r = seen_r.at[i].set(True)
            active = ~seen_c
            reduced = dist_i + cost[i] - u[i] - v
            shorter = active & (reduced < dist)
            path = jnp.where(shorter, i, path)
            dist = jnp.where(active, jnp.minimum(dist, reduced), dist)

            # Pick the next column among `todo[:left]`: the nearest one, preferring a free
            # column on ties; among equals the last in `todo` order wins, except that the
            # first nearest column stands when no later equal one is free. (This is the
            # choice of the scan over `todo` that Crouse's pseudocode makes.)
            valid = positions < left
            d = jnp.where(valid, dist[todo], jnp.inf)
            free = row4col[todo] == -1
            nearest = jnp.min(d)
            tied_free = valid & (d == nearest) & free
            last_tied_free = jnp.max(jnp.where(tied_free, positions, -1))
            first_nearest = jnp.argmin(d).astype(idt)
            index = jnp.where(nearest < jnp.inf,
                              jnp.maximum(last_tied_free, first_nearest), last_tied_free)
            index = jnp.where(index < 0, index + nc, index)

            j = todo[index]
            reached_free = row4col[j] == -1
            sink = jnp.where(reached_free, j, -1).astype(idt)
            i = jnp.where(reached_free, i, row4col[j]).astype(idt)
            seen_c = seen_c.at[j].set(True)
            left = left - 1
            todo = todo.at[index].set(todo[left])
            return i, nearest, left, todo, seen_r, seen_c, dist, path, sink

        s = (start, jnp.zeros((), fdt), jnp.asarray(nc, idt), positions[::-1],
             jnp.zeros((nr,), bool), jnp.zeros((nc,), bool), jnp.full((nc,), jnp.inf, fdt),
             path, jnp.asarray(-1, idt))
        _, length, _, _, seen_r, seen_c, dist, path, sink = lax.while_loop(
            searching, scan_row, s)
        return sink, length, seen_r, seen_c, dist, path

    def add_row(current, carry):
        u, v, path, row4col, col4row = carry
        current = jnp.asarray(current, idt)
        sink, length, seen_r, seen_c, dist, path = shortest_path(u, v, path, row4col,
                                                                 current)
        # dual update
        u = u.at[current].add(length)
        others = seen_r & (row_ids != current)
        matched_col = jnp.where(col4row < 0, 0, col4row)
        u = jnp.where(others, u + length - dist[matched_col], u)
        v = jnp.where(seen_c, v + dist - length, v)

        # flip the augmenting path from the sink back to the current row
        def flipping(a):
            return ~a[-1]

        def flip(a):
            j, row4col, col4row, _ = a
            i = path[j]
            row4col = row4col.at[j].set(i)
            j_next = col4row[i]
            col4row = col4row.at[i].set(j)
            return j_next, row4col, col4row, i == current

        _, row4col, col4row, _ = lax.while_loop(
            flipping, flip, (sink, row4col, col4row, jnp.asarray(False)))
        return u, v, path, row4col, col4row

    init = (jnp.zeros((nr,), fdt), jnp.zeros((nc,), fdt), jnp.full((nc,), -1, idt),
            jnp.full((nc,), -1, idt), jnp.full((nr,), -1, idt))
    _, _, _, _, col4row = lax.fori_loop(0, nr, add_row, init)

    if transpose:
        order = jnp.argsort(col4row).astype(idt)
        return col4row[order], order
    return row_ids, col4row

