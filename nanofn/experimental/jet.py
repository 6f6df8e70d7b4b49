"""Taylor-mode derivatives along a curve (`jax.experimental.jet`).

`jet(f, (x0,), ((x1, x2, ..., xK),))` takes a point `x0` and the first `K` derivatives
of a curve through it, `x(t) = x0 + x1 t + x2 t^2 / 2! + ... + xK t^K / K!`, and returns
`f(x0)` with the first `K` derivatives of `f(x(t))` at `t = 0`: `f_1 = f'(x0) x1`,
`f_2 = f''(x0)[x1, x1] + f'(x0) x2`, and so on (Faa di Bruno's formula). With
`factorial_scaled=False` (`jet2`), input and output terms are Taylor coefficients instead
(the `k`-th derivative divided by `k!`).

JAX propagates truncated Taylor polynomials through each primitive with rules of its own.
nanofn has no such rules: it writes the curve as a function of the scalar `t` and takes
`jvp` of `jvp` of ... `K` times with respect to `t`, each level returning every lower
derivative as well, so one nested evaluation gives all `K` terms. The results are exact
derivatives, as JAX's are, for every function `jvp` differentiates (every primitive,
`custom_jvp` rules, control flow); the cost grows as `2^K` evaluations of `f` where
JAX's grows as `K^2`, which is the price of needing no per-primitive rules, and fine for
the few orders jet is used with.

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.experimental.jet import jet
    >>> y0, (y1, y2, y3) = jet(fnp.sin, (0.0,), ((1.0, 0.0, 0.0),))  # sin(t) at 0
    >>> [round(float(v), 6) for v in (y0, y1, y2, y3)]
    [0.0, 1.0, 0.0, -1.0]
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["jet", "jet2"]


def jet(fun, primals, series, factorial_scaled=True, **_):
    """Taylor-mode derivatives of `fun` along a curve (JAX's `jax.experimental.jet.jet`).

    Args:
      fun: a function of arrays returning an array or a pytree of arrays.
      primals: a tuple or list of the point's arguments, one array (or scalar) per
        positional parameter of `fun`.
      series: a tuple or list with, for each argument, a tuple or list of its `K` terms
        (every argument the same `K`): the curve's derivatives at the point (or, with
        `factorial_scaled=False`, its Taylor coefficients), each an array of the
        argument's shape.
      factorial_scaled: True (the default): terms are derivatives, the `k`-th term being
        the Taylor coefficient times `k!`, in and out. False: terms are Taylor
        coefficients.

    Returns:
      `(primals_out, series_out)`: `fun(*primals)`, and the pytree of `fun`'s output with
      each leaf replaced by the list of its `K` terms (zeros for integer and boolean
      outputs).

    Raises:
      ValueError: the arguments' term lists differ in length, or a primal or a term is
        not an array.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental.jet import jet
        >>> # f(y) = sin(y) along h(z) = z^3 at z = 0.5: h's derivatives 3 z^2 and 6 z
        >>> f0, (f1, f2) = jet(fnp.sin, (0.5 ** 3,), ((3 * 0.5 ** 2, 6 * 0.5),))
        >>> round(float(f1), 5), round(float(-fnp.sin(0.125) * 0.75 ** 2 + fnp.cos(0.125) * 3), 5)
        (0.74415, 2.90646)
    """
    import nanofn
    import nanofn.numpy as fnp
    from nanofn.tree_util import tree_flatten, tree_unflatten

    primals, series = tuple(primals), tuple(tuple(terms) for terms in series)
    if len(series) != len(primals):
        raise ValueError(f"jet: {len(primals)} primals but {len(series)} term lists")
    orders = {len(terms) for terms in series}
    if len(orders) > 1:
        raise ValueError("jet terms have inconsistent lengths for different arguments: "
                         f"{[len(terms) for terms in series]}")
    order = orders.pop() if orders else 0
    for i, (x, terms) in enumerate(zip(primals, series)):
        if not _is_array_leaf(x):
            raise ValueError(f"jet: primal value at position {i} is not an array")
        for j, term in enumerate(terms):
            if not _is_array_leaf(term):
                raise ValueError(f"jet: term {j} for argument {i} is not an array")
    primals = [fnp.asarray(x) for x in primals]
    dtype = fnp.result_type(*[x.dtype for x in primals], float) if primals else \
        fnp.result_type(float)
    # the curve's Taylor coefficients: x(t) = x0 + c1 t + ... + cK t^K
    coeffs = [[fnp.asarray(term, x.dtype) / (math.factorial(k + 1) if factorial_scaled else 1)
               for k, term in enumerate(terms)] for x, terms in zip(primals, series)]

    def curve_out(t):  # the flat outputs of fun along the curve, at t
        args = []
        for x, cs in zip(primals, coeffs):
            if x.dtype.kind not in "fc" or not cs:  # an integer argument stays put
                args.append(x)
                continue
            tx, acc = t.astype(x.dtype), 0
            for c in reversed(cs):  # Horner: t (c1 + t (c2 + ...))
                acc = (acc + c) * tx
            args.append(x + acc)
        leaves, tree = tree_flatten(fun(*args))
        out_tree.append(tree)
        return [fnp.asarray(leaf) for leaf in leaves]

    out_tree = []

    def derivatives(k, t):  # [outputs, first derivatives, ..., k-th derivatives] at t
        if k == 0:
            return [curve_out(t)]
        below = functools.partial(derivatives, k - 1)
        outs, tangents = nanofn.jvp(below, (t,), (fnp.ones((), dtype),))
        return outs + [tangents[-1]]

    levels = derivatives(order, fnp.zeros((), dtype))
    outs, tree = levels[0], out_tree[-1]
    terms = [[_term(levels[k][i], y, k, factorial_scaled) for k in range(1, order + 1)]
             for i, y in enumerate(outs)]
    return tree_unflatten(tree, outs), tree_unflatten(tree, terms)


def _term(derivative, out, k, factorial_scaled):
    """The `k`-th output term from the `k`-th derivative. An integer or boolean output's
    terms are zeros: in JAX's dtype (its terms are scaled by a float factorial), integer
    zeros under `jet2`. (JAX carries terms through a cast to an integer dtype; nanofn's
    derivatives stop there.)"""
    import nanofn.numpy as fnp
    if out.dtype.kind not in "fc":
        return fnp.zeros(out.shape, fnp.result_type(float) if factorial_scaled else out.dtype)
    return derivative if factorial_scaled else derivative / math.factorial(k)


jet2 = functools.partial(jet, factorial_scaled=False)
jet2.__doc__ = """`jet` with `factorial_scaled=False`: input and output terms are Taylor
coefficients (JAX's `jax.experimental.jet.jet2`).

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.experimental.jet import jet2
    >>> y0, (c1, c2) = jet2(fnp.exp, (0.0,), ((1.0, 0.0),))  # exp(t) = 1 + t + t^2/2 + ...
    >>> [float(v) for v in (y0, c1, c2)]
    [1.0, 1.0, 0.5]
"""


def _is_array_leaf(x):
    from nanofn._core import Array, Tracer
    return isinstance(x, (Array, Tracer, np.ndarray, np.generic, int, float, complex, bool))
