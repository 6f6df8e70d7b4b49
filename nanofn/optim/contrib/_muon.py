"""Muon: momentum whose matrix-shaped leaves are orthogonalised by a Newton-Schulz iteration.

Follows ``optax.contrib`` (``muon``, ``scale_by_muon``, ``MuonState``,
``MuonDimensionNumbers``) with optax's defaults. :func:`muon` sends every 2-D parameter
(or every parameter given a :class:`MuonDimensionNumbers` in
``muon_weight_dimension_numbers``) through Muon, and everything else (biases, scales,
embeddings marked ``None``) through AdamW.

How a leaf is orthogonalised: its axes are split by a :class:`MuonDimensionNumbers`
into reduction axes, output axes and the remaining *batch* axes; the leaf is viewed as
a stack of ``(prod(reduction), prod(output))`` matrices, each matrix is rescaled and
then pushed towards the nearest semi-orthogonal matrix by a few odd-polynomial
(Newton-Schulz) steps ``X <- c0 X + (c1 A + c2 A A) X`` with ``A = X X^H``, and the
result is reshaped back. The steps are unrolled in Python (``ns_steps`` is normally a
Python int), so an update traces to straight-line code under ``nanofn.jit``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import numpy as np

import nanofn.numpy as jnp
from nanofn import lax, tree_util
from nanofn.optim import _base
from nanofn.optim._alias import adamw
from nanofn.optim._base import EmptyState, GradientTransformation, ScalarOrSchedule, Updates
from nanofn.optim._combine import MaskedNode, chain, partition
from nanofn.optim._transform import (
    _bias_correction,
    _canonical_dtype,
    _cast,
    _zeros_count,
    _zeros_like_tree,
    add_decayed_weights,
    safe_increment,
    scale_by_learning_rate,
)

__all__ = ["MuonDimensionNumbers", "MuonState", "muon", "scale_by_muon"]

_PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")
_DEFAULT_NS_COEFFS = (3.4445, -4.7750, 2.0315)
# Per-step coefficients of the Dion paper (one row per Newton-Schulz step).
_DION_NS_COEFFS = (
    (4.0848, -6.8946, 2.9270),
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
)
_NS_COEFFS_PRESETS = {"standard": _DEFAULT_NS_COEFFS, "dion": _DION_NS_COEFFS}
# The floor of the AOL / Schatten-4 rescaling; optax fixes it at 1e-8 (not the `eps`
# argument), and so does nanofn.
_FIRST_STEP_EPS = 1e-8


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a parameter form the matrix that Muon orthogonalises.

    A weight used as ``y = x @ W`` has its reduction (input) axis first and its output
    axis second, hence the defaults ``reduction_axis=0, output_axis=1``. Each field is
    an axis or a sequence of axes (negative values count from the end); the reduction
    axes are flattened into the matrix's rows and the output axes into its columns.
    Every axis named in neither field is a *batch* axis: each slice along it is
    orthogonalised on its own.

    Attributes:
        reduction_axis: the axis or axes contracted with the layer's input.
        output_axis: the axis or axes of the layer's output.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import contrib
        >>> # a stack of 4 heads, each a (8, 16) matrix: axis 0 is a batch axis
        >>> dims = contrib.MuonDimensionNumbers(reduction_axis=1, output_axis=2)
        >>> tx = contrib.scale_by_muon(weight_dimension_numbers=dims)
        >>> u, _ = tx.update(jnp.ones((4, 8, 16)), tx.init(jnp.zeros((4, 8, 16))))
        >>> u.shape
        (4, 8, 16)
    """

    reduction_axis: Union[Sequence[int], int] = 0
    output_axis: Union[Sequence[int], int] = 1


WeightDimNumOrFn = Union[MuonDimensionNumbers, Any, Callable[[Any], Any]]


def _is_spec_leaf(x) -> bool:
    return x is None or isinstance(x, (MuonDimensionNumbers, MaskedNode))


# --- reshaping a leaf into a stack of matrices -------------------------------------------


def _axes_tuple(where: str, field: str, axes, ndim: int) -> tuple[int, ...]:
    raw = (axes,) if isinstance(axes, numbers.Integral) else tuple(axes)
    out = []
    for ax in raw:
        if not isinstance(ax, numbers.Integral) or isinstance(ax, bool):
            raise TypeError(f"{where}: MuonDimensionNumbers.{field} must be an int or a "
                            f"sequence of ints, got {axes!r}.")
        if not -ndim <= ax < ndim:
            raise ValueError(f"{where}: MuonDimensionNumbers.{field}={axes!r} names axis {ax}, "
                             f"out of range for a parameter of rank {ndim}.")
        out.append(int(ax) % ndim)
    return tuple(out)


def _normalize_axes(where: str, shape: tuple, dim_nums: MuonDimensionNumbers):
    ndim = len(shape)
    reduction = _axes_tuple(where, "reduction_axis", dim_nums.reduction_axis, ndim)
    output = _axes_tuple(where, "output_axis", dim_nums.output_axis, ndim)
    if set(reduction) & set(output):
        raise ValueError(f"{where}: the reduction axes {reduction} and output axes {output} "
                         f"must be disjoint (from {dim_nums} for shape {tuple(shape)}).")
    return reduction, output


def _matrix_view(where: str, shape: tuple, dim_nums: MuonDimensionNumbers):
    """``(to_stack, from_stack)``: maps a leaf of ``shape`` to ``(batch, rows, cols)``
    (batch axes first, then reduction axes, then output axes) and back."""
    if len(shape) < 2:
        raise ValueError(f"{where}: Muon orthogonalises parameters of rank >= 2, got one of "
                         f"shape {shape}; route it to Adam (None in the dimension numbers).")
    reduction, output = _normalize_axes(where, shape, dim_nums)
    batch = tuple(ax for ax in range(len(shape)) if ax not in reduction and ax not in output)
    order = batch + reduction + output
    inverse = tuple(int(i) for i in np.argsort(order))
    sizes = [shape[ax] for ax in order]
    stacked = (math.prod(shape[ax] for ax in batch), math.prod(shape[ax] for ax in reduction),
               math.prod(shape[ax] for ax in output))

    def to_stack(x):
        return jnp.reshape(jnp.transpose(x, order), stacked)

    def from_stack(x):
        return jnp.transpose(jnp.reshape(x, sizes), inverse)

    return to_stack, from_stack


# --- Newton-Schulz ---------------------------------------------------------------------------


def _mT(x):
    return jnp.swapaxes(x, -1, -2)


def _gram(x, conj=True):
    """``X X^H`` (``X X^T`` with ``conj=False``) of each matrix in the stack."""
    if conj and jnp.iscomplexobj(x):
        return x @ jnp.conj(_mT(x))
    return x @ _mT(x)


def _ns_step(x, a, c):
    """One quintic step ``c0 X + (c1 A + c2 A A) X`` given ``A = X X^H``."""
    b = c[1] * a + c[2] * (a @ a)
    return c[0] * x + b @ x


def _aol_first_step(x, c):
    # "Almost orthogonal layer" rescaling: row i of X is divided by the square root of
    # the i-th absolute row sum of X X^H, which bounds the spectrum by 1.
    a = _gram(x)
    s = lax.rsqrt(jnp.maximum(jnp.sum(jnp.abs(a), axis=-1), _FIRST_STEP_EPS))[..., None]
    return _ns_step(x * s, a * s * _mT(s), c)


def _schatten_first_step(x, c):
    # Divides X by the square root of ||X X^T||_F, i.e. by its Schatten-4 norm (optax
    # forms X X^T here without conjugation, and so does nanofn).
    a = _gram(x, conj=False)
    fro = jnp.sqrt(jnp.sum(_base.abs_sq(a), axis=(-2, -1)))
    s = lax.rsqrt(jnp.maximum(fro, _FIRST_STEP_EPS))[..., None, None]
    return _ns_step(x * s, a * (s * s), c)


def _coeffs_dtype(params):
    """float64 when a parameter is float64 or complex128, else float32: the coefficients are
    cast to each matrix's dtype, and a float64 matrix must not see float32-rounded ones."""
    for leaf in tree_util.tree_leaves(params):
        dtype = getattr(leaf, "dtype", None)  # (MaskedNode and None have none)
        if (dtype is not None and np.dtype(dtype).kind in "fc"
                and np.finfo(dtype).dtype == np.float64):
            return np.dtype(np.float64)
    return np.dtype(np.float32)


def _check_ns_coeffs(where: str, ns_coeffs):
    if isinstance(ns_coeffs, str):
        raise TypeError(f"{where}: `ns_coeffs` must be 3 numbers or rows of 3 numbers, got the "
                        f"string {ns_coeffs!r} (preset names are accepted by `muon` only).")
    shape = np.shape(ns_coeffs)
    if len(shape) not in (1, 2) or shape[-1] != 3:
        raise ValueError(f"{where}: `ns_coeffs` must have shape (3,) or (n, 3), got {shape}.")
    return shape


def _check_ns_steps(where: str, ns_steps):
    """``ns_steps`` as a Python int, or as a traced int32 scalar (``inject_hyperparams``
    under ``jit``), in which case the iteration becomes a ``fori_loop``."""
    if isinstance(ns_steps, bool) or not (isinstance(ns_steps, numbers.Integral) or (
            hasattr(ns_steps, "dtype") and np.shape(ns_steps) == ()
            and np.dtype(ns_steps.dtype).kind in "iu")):
        raise ValueError(f"{where}: `ns_steps` must be a non-negative int, got {ns_steps!r}.")
    try:
        steps = int(ns_steps)
    except TypeError:  # traced: its value is only known when the step runs
        return ns_steps
    if steps < 0:
        raise ValueError(f"{where}: `ns_steps` must be a non-negative int, got {ns_steps!r}.")
    return steps


def _first_step(x, c, preconditioning):
    if preconditioning == "aol":
        return _aol_first_step(x, c)
    if preconditioning == "schatten":
        return _schatten_first_step(x, c)
    return _ns_step(x, _gram(x), c)


def _orthogonalize_stack(x, coeffs, ns_steps, preconditioning, eps):
    """Newton-Schulz on each matrix of a ``(batch, rows, cols)`` stack."""
    transposed = x.shape[-2] > x.shape[-1]
    if transposed:  # iterate on the wide side: X X^H is then the smaller Gram matrix
        x = _mT(x)
    if preconditioning == "frobenius":
        x = x / (jnp.sqrt(jnp.sum(_base.abs_sq(x), axis=(-2, -1), keepdims=True)) + eps)
    elif preconditioning == "spectral":
        x = x / (jnp.linalg.norm(x, ord=2, axis=(-2, -1), keepdims=True) + eps)
    coeffs = jnp.asarray(coeffs, dtype=x.dtype)
    if coeffs.ndim == 1 and not isinstance(ns_steps, int):  # a traced number of steps
        def body(i, y):
            if preconditioning in ("aol", "schatten"):
                return lax.cond(i == 0, lambda z: _first_step(z, coeffs, preconditioning),
                                lambda z: _ns_step(z, _gram(z), coeffs), y)
            return _ns_step(y, _gram(y), coeffs)
        x = lax.fori_loop(0, ns_steps, body, x)
    else:
        rows = ([coeffs] * ns_steps if coeffs.ndim == 1
                else [coeffs[i] for i in range(coeffs.shape[0])])
        for i, c in enumerate(rows):
            x = _first_step(x, c, preconditioning) if i == 0 else _ns_step(x, _gram(x), c)
    return _mT(x) if transposed else x


def orthogonalize_via_newton_schulz(x, ns_coeffs, ns_steps: int = 5,
                                    preconditioning: str = "frobenius", eps: float = 1e-8,
                                    dimension_numbers: Optional[MuonDimensionNumbers] = None):
    r"""Pushes a matrix (or a stack of them) towards the nearest semi-orthogonal matrix.

    The matrix is first rescaled (by its Frobenius or spectral norm, or inside the first
    step for ``"aol"`` and ``"schatten"``) so its singular values are at most about 1,
    then each step applies the odd polynomial
    ``X <- c0 X + (c1 A + c2 A^2) X`` with ``A = X X^H``. The default coefficients of
    :func:`muon` are tuned for speed rather than convergence: the singular values end
    up spread around 1 (roughly in [0.5, 1.5]) instead of exactly 1, which optimisation
    tolerates. A tall matrix is iterated in transposed form (the result is the same).

    This is optax's helper of the same name (``optax/contrib/_muon.py``); like optax,
    ``optax.contrib`` / ``nanofn.optim.contrib`` do not re-export it.

    Args:
        x: a 2-D array, or an array of higher rank with ``dimension_numbers``.
        ns_coeffs: the step coefficients, shape ``(3,)`` (used ``ns_steps`` times) or
            ``(n, 3)`` (one row per step, ``n`` steps).
        ns_steps: the number of steps when ``ns_coeffs`` has shape ``(3,)``.
        preconditioning: ``"frobenius"``, ``"spectral"``, ``"aol"`` or ``"schatten"``.
        eps: added to the norm the matrix is divided by (``"frobenius"``, ``"spectral"``).
        dimension_numbers: how to view ``x`` as matrices (ignored for a 2-D ``x``, which
            is always ``(rows, cols)``).

    Returns:
        An array of the shape of ``x``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.contrib import _muon
        >>> x = jnp.array([[3.0, 1.0], [1.0, 2.0], [0.0, 1.0]])
        >>> q = _muon.orthogonalize_via_newton_schulz(x, jnp.array([2.0, -1.5, 0.5]),
        ...                                           ns_steps=20)
        >>> print(jnp.round(q.T @ q, 3).tolist())
        [[1.0, 0.0], [0.0, 1.0]]
    """
    where = "orthogonalize_via_newton_schulz"
    x = jnp.asarray(x)
    if x.ndim != 2 and not isinstance(dimension_numbers, MuonDimensionNumbers):
        raise ValueError(f"{where}: `x` must be 2-D, or `dimension_numbers` must say how to "
                         f"view it as matrices; got shape {x.shape} and {dimension_numbers!r}.")
    if x.ndim == 2:
        dimension_numbers = MuonDimensionNumbers(0, 1)
    _check_ns_coeffs(where, ns_coeffs)
    if preconditioning not in _PRECONDITIONINGS:
        raise ValueError(f"{where}: `preconditioning` must be one of {_PRECONDITIONINGS}, got "
                         f"{preconditioning!r}.")
    ns_steps = _check_ns_steps(where, ns_steps)
    to_stack, from_stack = _matrix_view(where, x.shape, dimension_numbers)
    return from_stack(_orthogonalize_stack(to_stack(x), ns_coeffs, ns_steps, preconditioning,
                                           eps))


# --- dimension numbers over a tree ----------------------------------------------------------


def _leaf_dim_nums(where: str, spec, tree) -> list:
    """One entry per leaf of ``tree``: its :class:`MuonDimensionNumbers`, or None.

    ``spec`` is None (None for every leaf), one ``MuonDimensionNumbers`` (for every
    leaf), a tree with the structure of ``tree`` or a prefix of it whose leaves are
    ``MuonDimensionNumbers`` or None, or a function of ``tree`` returning one of these.
    """
    if callable(spec):
        spec = spec(tree)
    n = len(tree_util.tree_leaves(tree))
    if spec is None or isinstance(spec, MuonDimensionNumbers):
        return [spec] * n
    values, spec_def = tree_util.tree_flatten(spec, is_leaf=_is_spec_leaf)
    try:
        subtrees = spec_def.flatten_up_to(tree)
    except ValueError as e:
        raise ValueError(f"{where}: the weight dimension numbers must have the structure of the "
                         f"params or a prefix of it.\n{e}") from None
    out = []
    for value, sub in zip(values, subtrees):
        if not _is_spec_leaf(value):
            raise TypeError(f"{where}: the leaves of the weight dimension numbers must be "
                            f"MuonDimensionNumbers or None, got {value!r}.")
        out.extend([None if isinstance(value, MaskedNode) else value]
                   * len(tree_util.tree_leaves(sub)))
    return out


def _leaf_paths(tree) -> list:
    return [tree_util.keystr(path) for path, _ in tree_util.tree_flatten_with_path(tree)[0]]


# --- the transformations ----------------------------------------------------------------------


class MuonState(NamedTuple):
    """State of :func:`scale_by_muon`.

    Attributes:
        count: the number of updates so far (int32, shape ``()``).
        mu: the momentum, an exponential moving average of the updates.
        ns_coeffs: the Newton-Schulz coefficients, shape ``(3,)`` or ``(n, 3)``.
    """

    count: Any  # int32, shape ()
    mu: Updates
    ns_coeffs: Any


def scale_by_muon(ns_coeffs=_DEFAULT_NS_COEFFS, ns_steps: int = 5, beta: float = 0.95,
                  eps: float = 1e-8, mu_dtype: Optional[Any] = None, *, nesterov: bool = True,
                  adaptive: bool = False, preconditioning: str = "frobenius",
                  weight_dimension_numbers: Optional[WeightDimNumOrFn] = None
                  ) -> GradientTransformation:
    r"""Rescales updates by Muon: orthogonalised, bias-corrected momentum. See :func:`muon`.

    With ``m_t = beta m_{t-1} + (1 - beta) g_t``, the direction is ``m_t / (1 - beta^t)``
    (or, with ``nesterov``, ``beta m_t / (1 - beta^(t+1)) + (1 - beta) g_t / (1 - beta^t)``),
    and the update is that direction orthogonalised by
    :func:`orthogonalize_via_newton_schulz` leaf by leaf. With ``adaptive`` the result
    ``O`` is further multiplied by ``<direction, O>`` (the dual norm of the direction).

    Args:
        ns_coeffs: Newton-Schulz coefficients, 3 numbers (applied ``ns_steps`` times) or
            rows of 3 (one row per step; there must be at most ``ns_steps`` rows, and
            all of them are used).
        ns_steps: the number of Newton-Schulz steps, a non-negative int (an int32 scalar
            array also works, e.g. injected by ``inject_hyperparams``).
        beta: decay of the momentum, in [0, 1).
        eps: added to the norm each matrix is divided by before the iteration.
        mu_dtype: dtype of the momentum; ``None`` uses each parameter's dtype.
        nesterov: use Nesterov momentum.
        adaptive: scale each orthogonalised leaf by its inner product with the
            direction (https://arxiv.org/abs/2409.20325).
        preconditioning: the rescaling before (or within the first) step:
            ``"frobenius"``, ``"spectral"``, ``"aol"`` or ``"schatten"``.
        weight_dimension_numbers: how each leaf is viewed as matrices: a
            :class:`MuonDimensionNumbers` for every leaf, a tree of them with the
            params' structure (or a prefix of it), or a function ``params -> such a
            tree``. ``None`` (the default, or a ``None`` leaf) means the leaf must be a
            2-D matrix.

    Returns:
        A :class:`GradientTransformation` with state :class:`MuonState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import contrib
        >>> tx = contrib.scale_by_muon()
        >>> u, state = tx.update(jnp.array([[3.0, 0.0], [0.0, 1.0]]), tx.init(jnp.zeros((2, 2))))
        >>> print([[round(v, 2) for v in row] for row in u.tolist()])  # 3 and 1 moved near 1
        [[0.75, 0.0], [0.0, 1.13]]
    """
    where = "scale_by_muon"
    shape = _check_ns_coeffs(where, ns_coeffs)
    ns_steps = _check_ns_steps(where, ns_steps)
    if len(shape) == 2 and isinstance(ns_steps, int) and shape[0] > ns_steps:
        raise ValueError(f"{where}: `ns_coeffs` has {shape[0]} rows (one per step) but "
                         f"ns_steps={ns_steps}; optax requires at most `ns_steps` rows.")
    _base.check_rate(where, "beta", beta)
    _base.check_nonneg(where, "eps", eps)
    if preconditioning not in _PRECONDITIONINGS:
        raise ValueError(f"{where}: `preconditioning` must be one of {_PRECONDITIONINGS}, got "
                         f"{preconditioning!r}.")
    mu_dtype = _canonical_dtype(mu_dtype)

    def init_fn(params):
        # (optax keeps the last `ns_steps` rows, which is all of them given the check above)
        coeffs = jnp.asarray(np.asarray(ns_coeffs, dtype=_coeffs_dtype(params)))
        return MuonState(count=_zeros_count(), mu=_zeros_like_tree(params, mu_dtype),
                         ns_coeffs=coeffs)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        gs, treedef = tree_util.tree_flatten(updates)
        ms, m_def = tree_util.tree_flatten(state.mu)
        if m_def != treedef:
            raise _base.structure_error(where, "updates", treedef, "state.mu", m_def)
        dims = _leaf_dim_nums(where, weight_dimension_numbers, updates)
        paths = _leaf_paths(updates)
        count = safe_increment(state.count)
        bc = _bias_correction(beta, count)
        bc_next = _bias_correction(beta, safe_increment(count)) if nesterov else None
        new_u, new_m = [], []
        for g, m_prev, dim, path in zip(gs, ms, dims, paths):
            if dim is None and g.ndim != 2:
                raise ValueError(
                    f"{where}: the update for params{path} has shape {g.shape}; Muon needs "
                    "2-D matrices, or a MuonDimensionNumbers for this leaf in "
                    "`weight_dimension_numbers` (optax.contrib.muon sends other leaves to Adam).")
            m = (1 - beta) * g + beta * m_prev
            if nesterov:
                direction = beta * (m / bc_next(m.dtype)) + (1 - beta) * (g / bc(g.dtype))
            else:
                direction = m / bc(m.dtype)
            leaf_where = f"{where} (params{path})"
            view = _matrix_view(leaf_where, g.shape, dim or MuonDimensionNumbers())
            if g.ndim == 2:
                # Like optax, a 2-d leaf is always viewed as (rows, cols): its dimension
                # numbers (checked above) only matter to scale_by_shape, and Newton-Schulz
                # commutes with transposition anyway.
                view = _matrix_view(leaf_where, g.shape, MuonDimensionNumbers())
            to_stack, from_stack = view
            u = from_stack(_orthogonalize_stack(to_stack(direction), state.ns_coeffs, ns_steps,
                                                preconditioning, eps))
            if adaptive:
                u = jnp.sum(jnp.conj(direction) * u) * u
            new_u.append(_cast(u, g.dtype))
            new_m.append(_cast(m, m_prev.dtype))
        return tree_util.tree_unflatten(treedef, new_u), MuonState(
            count=count, mu=tree_util.tree_unflatten(treedef, new_m), ns_coeffs=state.ns_coeffs)

    return GradientTransformation(init_fn, update_fn)


def scale_by_shape(weight_dimension_numbers: Optional[WeightDimNumOrFn] = None,
                   consistent_rms=None) -> GradientTransformation:
    """Multiplies each matrix-shaped update by a factor of its fan-in and fan-out.

    ``fan_in`` is the product of the sizes of the reduction axes and ``fan_out`` that of
    the output axes. Without ``consistent_rms`` the factor is
    ``sqrt(max(1, fan_out / fan_in))`` (Keller Jordan's width scaling); with it,
    ``sqrt(max(fan_in, fan_out)) * consistent_rms``, which gives every matrix the same
    update RMS whatever its shape (https://arxiv.org/abs/2502.16982).

    Used by :func:`muon` after :func:`scale_by_muon`; like optax, ``contrib`` does not
    re-export it.

    Args:
        weight_dimension_numbers: as in :func:`scale_by_muon`; ``None`` treats every
            leaf as a ``(fan_in, fan_out)`` matrix.
        consistent_rms: ``None``, or the target RMS factor (optax suggests 0.2).

    Returns:
        A stateless :class:`GradientTransformation`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.contrib import _muon
        >>> tx = _muon.scale_by_shape()
        >>> u, _ = tx.update(jnp.ones((2, 8)), tx.init(None))  # fan_out / fan_in = 4
        >>> print(float(u[0, 0]))
        2.0
    """
    where = "scale_by_shape"
    if consistent_rms is not None:
        _base.check_finite(where, "consistent_rms", consistent_rms)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        gs, treedef = tree_util.tree_flatten(updates)
        dims = _leaf_dim_nums(where, weight_dimension_numbers, updates)
        out = []
        for g, dim in zip(gs, dims):
            reduction, output = _normalize_axes(where, g.shape, dim or MuonDimensionNumbers())
            fan_in = math.prod(g.shape[ax] for ax in reduction)
            fan_out = math.prod(g.shape[ax] for ax in output)
            if consistent_rms is None:
                factor = math.sqrt(max(1.0, fan_out / fan_in))
            else:
                factor = math.sqrt(max(fan_in, fan_out)) * consistent_rms
            out.append(_cast(factor * g, g.dtype))
        return tree_util.tree_unflatten(treedef, out), state

    return GradientTransformation(lambda params: EmptyState(), update_fn)


def muon(learning_rate: ScalarOrSchedule, ns_coeffs=_DEFAULT_NS_COEFFS, ns_steps: int = 5,
         beta: float = 0.95, eps: float = 1e-8, weight_decay: float = 0.0,
         weight_decay_mask=None, mu_dtype: Optional[Any] = None, *, nesterov: bool = True,
         adaptive: bool = False, preconditioning: str = "frobenius", adam_b1: float = 0.9,
         adam_b2: float = 0.999, adam_eps_root: float = 0.0, adam_weight_decay: float = 0.0,
         adam_learning_rate: Optional[ScalarOrSchedule] = None,
         muon_weight_dimension_numbers: Optional[WeightDimNumOrFn] = None,
         consistent_rms=None) -> GradientTransformation:
    r"""Muon (MomentUm Orthogonalized by Newton-schulz), with AdamW for non-matrix params.

    For the Muon parameters::

        d_t = bias-corrected (Nesterov) momentum of the gradients   (scale_by_muon)
        O_t = NewtonSchulz(d_t) * shape factor                       (scale_by_shape)
        u_t = -learning_rate * (O_t + weight_decay * w_{t-1})

    Orthogonalising the momentum equalises its singular values, which makes Muon
    steepest descent under (approximately) the spectral norm. Which parameters are
    Muon parameters: by default every 2-D one; with ``muon_weight_dimension_numbers``,
    those given a :class:`MuonDimensionNumbers` (those given ``None`` are not). All
    others are optimised by :func:`~nanofn.optim.adamw` with ``adam_*`` settings, the
    same ``eps``, ``mu_dtype`` and ``nesterov`` (so by default NAdamW).

    Args:
        learning_rate: a float or a schedule.
        ns_coeffs: Newton-Schulz coefficients: 3 numbers, rows of 3 (one per step, at
            most ``ns_steps`` rows), or a preset name, ``"standard"`` or ``"dion"``.
        ns_steps: the number of Newton-Schulz steps (ignored for rows of coefficients).
        beta: decay of the momentum, in [0, 1).
        eps: added to the norm before the iteration, and Adam's ``eps``.
        weight_decay: decoupled weight decay of the Muon parameters, multiplied by the
            learning rate.
        weight_decay_mask: a tree of booleans (or a function of the params returning one)
            saying which Muon parameters are decayed.
        mu_dtype: dtype of the momenta; ``None`` uses each parameter's dtype.
        nesterov: use Nesterov momentum (in Muon and in Adam).
        adaptive: scale each orthogonalised update by its inner product with the
            momentum direction.
        preconditioning: ``"frobenius"`` (default), ``"spectral"``, ``"aol"`` or
            ``"schatten"``; see :func:`scale_by_muon`.
        adam_b1: Adam's first-moment decay.
        adam_b2: Adam's second-moment decay.
        adam_eps_root: Adam's ``eps_root``.
        adam_weight_decay: Adam's decoupled weight decay.
        adam_learning_rate: Adam's learning rate; ``None`` uses ``learning_rate``.
        muon_weight_dimension_numbers: a tree (or a prefix of the params' tree) of
            :class:`MuonDimensionNumbers` and ``None``, or a function of the params
            returning one; ``None`` entries go to Adam. ``None`` (the default) means:
            the 2-D parameters, as ``(fan_in, fan_out)`` matrices.
        consistent_rms: ``None`` for the width factor ``sqrt(max(1, fan_out/fan_in))``,
            or a float ``r`` for ``sqrt(max(fan_in, fan_out)) * r`` (0.2 matches AdamW's
            RMS).

    Returns:
        A :class:`GradientTransformation` (a ``partition`` into ``"muon"`` and ``"adam"``).

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> params = {"w": jnp.array([[1.0, -0.5], [0.25, 2.0]]), "b": jnp.array([0.5, -1.0])}
        >>> loss = lambda p: jnp.sum(p["w"] ** 2) + jnp.sum(p["b"] ** 2)
        >>> solver = optim.contrib.muon(learning_rate=0.1)
        >>> state = solver.init(params)
        >>> for _ in range(3):
        ...     updates, state = solver.update(nanofn.grad(loss)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(round(float(loss(params)), 3))  # from 6.562
        4.359

    References:
        Jordan, modded-nanogpt: Speedrunning the NanoGPT baseline, 2024.
        Bernstein and Newhouse, Old Optimizer, New Norm: An Anthology, 2024.
        Liu et al., Muon is Scalable for LLM Training, 2025.
        Ahn et al., Dion: Distributed Orthonormalized Updates, 2025.
    """
    where = "muon"
    if isinstance(ns_coeffs, str):
        if ns_coeffs not in _NS_COEFFS_PRESETS:
            raise ValueError(f"{where}: unknown `ns_coeffs` preset {ns_coeffs!r}; the presets are "
                             f"{sorted(_NS_COEFFS_PRESETS)}.")
        ns_coeffs = _NS_COEFFS_PRESETS[ns_coeffs]
    _base.check_nonneg(where, "weight_decay", weight_decay)
    _base.check_nonneg(where, "adam_weight_decay", adam_weight_decay)
    if adam_learning_rate is None:
        adam_learning_rate = learning_rate

    if muon_weight_dimension_numbers is None:
        def param_labels(params):
            return tree_util.tree_map(lambda x: "muon" if np.ndim(x) == 2 else "adam", params)
        dims_spec = MuonDimensionNumbers()
    else:
        def param_labels(params):
            dims = _leaf_dim_nums(where, muon_weight_dimension_numbers, params)
            return tree_util.tree_structure(params).unflatten(
                ["adam" if d is None else "muon" for d in dims])
        # The Muon branch sees the params with the Adam leaves masked out; the same spec
        # (or function) resolves on that tree.
        dims_spec = muon_weight_dimension_numbers

    return partition(
        transforms={
            "muon": chain(
                scale_by_muon(ns_coeffs=ns_coeffs, ns_steps=ns_steps, beta=beta, eps=eps,
                              mu_dtype=mu_dtype, nesterov=nesterov, adaptive=adaptive,
                              preconditioning=preconditioning,
                              weight_dimension_numbers=dims_spec),
                scale_by_shape(weight_dimension_numbers=dims_spec,
                               consistent_rms=consistent_rms),
                add_decayed_weights(weight_decay, weight_decay_mask),
                scale_by_learning_rate(learning_rate),
            ),
            "adam": adamw(learning_rate=adam_learning_rate, b1=adam_b1, b2=adam_b2, eps=eps,
                          eps_root=adam_eps_root, weight_decay=adam_weight_decay,
                          mu_dtype=mu_dtype, nesterov=nesterov),
        },
        param_labels=param_labels,
    )
