"""optax's numerical helpers and two leftover wrappers, with optax's names and defaults.

* ``power_iteration``: the dominant eigenpair of a matrix, or of a linear operator on
  pytrees given as a matrix-vector product (e.g. a Hessian-vector product).
* ``matrix_inverse_pth_root``: ``M^(-1/p)`` of a symmetric PSD matrix by the coupled
  Newton iteration that Shampoo uses, with a ridge proportional to the top eigenvalue.
* ``nnls``: non-negative least squares by Polyak's fast projected gradient method.
* ``multi_normal``: a diagonal Gaussian parameterised by its mean and log scale.
* ``scale_by_distance_over_gradients``: layer-wise DoG, a learning-rate-free step size.
* ``inject_stateful_hyperparams``: ``inject_hyperparams`` whose schedules may carry a
  state of their own (objects with ``init``, ``update`` and ``__call__``); plain
  step-count schedules are wrapped in :class:`WrappedSchedule`.

Loops whose trip count depends on values (power iteration, Newton iteration) are
``lax.while_loop`` and the projected gradient is a ``lax.scan``, so everything here
runs under ``jit`` with traced inputs.
"""

from __future__ import annotations

import functools
import inspect
import numbers
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

import nanofn.lax as lax
import nanofn.numpy as jnp
from nanofn import random, tree_util
from nanofn.optim import _base
from nanofn.optim import tree as otu
from nanofn.optim._base import GradientTransformationExtraArgs, OptState
from nanofn.optim._combine import (
    _as_hyperparam,
    _cast_like,
    _highest_float_dtype,
    _is_numeric,
)
from nanofn.optim._transform import _zeros_count, safe_increment

__all__ = [
    "InjectStatefulHyperparamsState",
    "WrappedSchedule",
    "inject_stateful_hyperparams",
    "matrix_inverse_pth_root",
    "multi_normal",
    "nnls",
    "power_iteration",
    "scale_by_distance_over_gradients",
]


# --- helpers --------------------------------------------------------------------------------


def _concrete_float(x) -> Optional[float]:
    """``x`` as a Python float when it is a known scalar, ``None`` when traced or not one."""
    if isinstance(x, numbers.Real):
        return float(x)
    if tuple(getattr(x, "shape", np.shape(x))) != ():
        return None
    try:
        return float(x)
    except TypeError:  # a traced value (nanofn's concretization errors are TypeErrors)
        return None


def _normalize(tree):
    return otu.scale(1.0 / otu.norm(tree), tree)


def _float_dtype(dtype, minimum=np.float32):
    """``dtype`` if it is a float at least as wide as ``minimum``, else ``minimum``."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        return np.dtype(minimum)
    return np.promote_types(dtype, minimum)


# --- power iteration -----------------------------------------------------------------------


def power_iteration(
    matrix: Union[Any, Callable[[Any], Any]],
    *,
    v0: Optional[Any] = None,
    num_iters=100,
    error_tolerance=1e-6,
    precision: lax.Precision = lax.Precision.HIGHEST,
    key: Optional[Any] = None,
):
    """The dominant eigenvalue of a diagonalizable operator and its eigenvector.

    Repeatedly applies the operator to a unit vector and renormalizes. It stops after
    ``num_iters`` products or once ``|A v - lambda v| / |lambda|`` is below
    ``error_tolerance``, where ``lambda = v . A v`` is the current estimate. The
    returned eigenvector is the normalized last product ``A v``.

    Args:
        matrix: a square ``(n, n)`` array, or a function computing a matrix-vector
            product on pytrees (e.g. a Hessian-vector product).
        v0: the starting vector: shape ``(n,)`` for an array ``matrix``, or a pytree
            accepted by the function ``matrix``, for which it is required. ``None``
            draws it uniformly in ``[-1, 1]`` with ``key``.
        num_iters: the maximum number of products.
        error_tolerance: stop once the relative residual is below this.
        precision: the matmul precision for an array ``matrix`` (accepted for
            compatibility; nanofn computes in the arrays' dtype).
        key: random key for the default ``v0``; ``None`` uses ``random.PRNGKey(0)``.

    Returns:
        ``(eigenvalue, eigenvector)``, the eigenvector with unit norm and the structure
        of ``v0``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> val, vec = optim.power_iteration(jnp.array([[2.0, 0.0], [0.0, 1.0]]))
        >>> print(round(float(val), 4), [round(abs(x), 4) for x in vec.tolist()])
        2.0 [1.0, 0.0]
        >>> hvp = lambda v: {"a": 3.0 * v["a"], "b": v["b"]}
        >>> val, _ = optim.power_iteration(hvp, v0={"a": jnp.ones(2), "b": jnp.ones(3)})
        >>> print(round(float(val), 4))
        3.0
    """
    fn = "power_iteration"
    _base.check_nonneg(fn, "num_iters", num_iters)
    _base.check_nonneg(fn, "error_tolerance", error_tolerance)
    if callable(matrix):
        mvp = matrix
        if v0 is None:
            raise ValueError(f"{fn}: v0 must be provided when `matrix` is a callable (a "
                             "matrix-vector product): its pytree structure is unknown.")
    else:
        matrix = jnp.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"{fn}: argument `matrix` must be a square 2-d array or a "
                             f"matrix-vector product function, got shape {matrix.shape}.")

        def mvp(v):
            return jnp.matmul(matrix, v, precision=precision)

        if v0 is None:
            key = random.PRNGKey(0) if key is None else key
            v0 = random.uniform(key, shape=matrix.shape[-1:], dtype=matrix.dtype,
                                minval=-1.0, maxval=1.0)
        else:
            v0 = jnp.asarray(v0)
            if v0.shape != matrix.shape[-1:]:
                raise ValueError(f"{fn}: argument `v0` must have shape {matrix.shape[-1:]} "
                                 f"for a matrix of shape {matrix.shape}, got {v0.shape}.")

    v0 = _normalize(v0)
    z0 = mvp(v0)
    eig_dtype = jnp.result_type(otu.vdot(v0, z0))

    def cond_fn(carry):
        vec, z, eig, i = carry
        residual = otu.norm(otu.sub(z, otu.scale(eig, vec)))
        converged = jnp.abs(residual / eig) < error_tolerance
        return jnp.logical_and(jnp.logical_not(converged), i < num_iters)

    def body_fn(carry):
        _, z, _, i = carry
        vec = _normalize(z)
        z = mvp(vec)
        return vec, z, jnp.asarray(otu.vdot(vec, z), dtype=eig_dtype), i + 1

    init = (v0, z0, jnp.zeros((), dtype=eig_dtype), jnp.zeros((), dtype=jnp.int32))
    _, z, eig, _ = lax.while_loop(cond_fn, body_fn, init)
    return eig, _normalize(z)


# --- matrix inverse p-th root ------------------------------------------------------------


def _matrix_power(mat, p, precision):
    """``mat ** p`` for a positive integer ``p`` (a Python int, or a traced int)."""
    def mul(a, b):
        return jnp.matmul(a, b, precision=precision)

    if isinstance(p, int):
        result, base = None, mat
        while p:
            if p & 1:
                result = base if result is None else mul(result, base)
            p >>= 1
            if p:
                base = mul(base, base)
        return result

    def body(carry):
        result, base, k = carry
        result = jnp.where(k % 2 == 1, mul(result, base), result)
        return result, mul(base, base), k // 2

    eye = jnp.eye(mat.shape[0], dtype=mat.dtype)
    result, _, _ = lax.while_loop(lambda c: c[2] > 0, body,
                                  (eye, mat, jnp.asarray(p, dtype=jnp.int32)))
    return result


def matrix_inverse_pth_root(matrix, p, num_iters=100, ridge_epsilon=1e-6,
                            error_tolerance=1e-6,
                            precision: lax.Precision = lax.Precision.HIGHEST):
    """``matrix ** (-1/p)`` of a symmetric PSD matrix by coupled Newton iterations.

    This is the preconditioner root of Shampoo (Higham, *Functions of Matrices*, eq.
    7.18). The matrix is first damped by ``ridge_epsilon`` times its largest eigenvalue
    (from :func:`power_iteration`). The iteration keeps ``M_k -> I`` and
    ``H_k -> matrix ** (-1/p)``; it stops after ``num_iters`` steps, once
    ``max|M_k - I| <= error_tolerance``, or when that error grows by more than a factor
    1.2, in which case the previous ``H`` is returned. Arithmetic is at least float32.

    Args:
        matrix: a symmetric positive semi-definite ``(n, n)`` matrix.
        p: the root, a positive integer (a traced integer is allowed too).
        num_iters: the maximum number of Newton steps.
        ridge_epsilon: the relative ridge added to the diagonal.
        error_tolerance: stop once ``max|M_k - I|`` is at most this.
        precision: matmul precision (accepted for compatibility).

    Returns:
        ``(root, error)``: the ``(n, n)`` root in the matrix's dtype and
        ``max|M - I|`` of the last iterate (0 for a 1x1 matrix).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> root, err = optim.matrix_inverse_pth_root(jnp.array([[4.0, 0.0], [0.0, 16.0]]),
        ...                                           2, ridge_epsilon=0.0)
        >>> print([[round(x, 4) for x in row] for row in root.tolist()], float(err) < 1e-5)
        [[0.5, 0.0], [0.0, 0.25]] True
    """
    fn = "matrix_inverse_pth_root"
    matrix = jnp.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{fn}: argument `matrix` must be a square 2-d array, got shape "
                         f"{matrix.shape}.")
    p_value = _concrete_float(p)
    if p_value is not None:
        if not (p_value >= 1 and float(p_value).is_integer()):
            raise ValueError(f"{fn}: argument `p` must be a positive integer, got {p!r}.")
        p = int(p_value)
    _base.check_nonneg(fn, "num_iters", num_iters)
    _base.check_nonneg(fn, "ridge_epsilon", ridge_epsilon)
    _base.check_nonneg(fn, "error_tolerance", error_tolerance)

    out_dtype = matrix.dtype if np.dtype(matrix.dtype).kind == "f" else np.dtype(np.float32)
    dtype = _float_dtype(matrix.dtype)
    n = matrix.shape[0]
    alpha = jnp.asarray(-1.0 / jnp.asarray(p, dtype=dtype), dtype=dtype)
    identity = jnp.eye(n, dtype=dtype)
    max_ev, _ = power_iteration(matrix, num_iters=100, error_tolerance=1e-6,
                                precision=precision)
    ridge = ridge_epsilon * jnp.maximum(max_ev, 1e-16)

    if n == 1:
        return (jnp.asarray(matrix, dtype=dtype) + ridge) ** alpha, jnp.zeros((), dtype=dtype)

    def cond_fn(carry):
        i, _, _, _, error, run_step = carry
        return jnp.logical_and(i < num_iters, jnp.logical_and(error > error_tolerance,
                                                              run_step))

    def body_fn(carry):
        i, mat_m, mat_h, _, error, _ = carry
        mat_m_i = (1 - alpha) * identity + alpha * mat_m
        new_m = jnp.matmul(_matrix_power(mat_m_i, p, precision), mat_m, precision=precision)
        new_h = jnp.matmul(mat_h, mat_m_i, precision=precision)
        new_error = jnp.max(jnp.abs(new_m - identity))
        # the error may rise for a step before converging: allow growth up to 1.2x
        return i + 1, new_m, new_h, mat_h, new_error, new_error < error * 1.2

    damped = jnp.asarray(matrix, dtype=dtype) + ridge * identity
    z = (1 + jnp.asarray(p, dtype=dtype)) / (2 * jnp.linalg.norm(damped))
    m0 = jnp.asarray(damped * z, dtype=dtype)
    h0 = jnp.asarray(identity * jnp.power(z, 1.0 / jnp.asarray(p, dtype=dtype)), dtype=dtype)
    error0 = jnp.asarray(jnp.max(jnp.abs(m0 - identity)), dtype=dtype)
    init = (jnp.zeros((), dtype=jnp.int32), m0, h0, h0, error0, jnp.asarray(True))
    _, mat_m, mat_h, old_h, _, converging = lax.while_loop(cond_fn, body_fn, init)
    error = jnp.max(jnp.abs(mat_m - identity))
    root = jnp.where(converging, mat_h, old_h)
    return jnp.asarray(root, dtype=out_dtype), error


# --- non-negative least squares ------------------------------------------------------------


def _spectral_radius_upper_bound(matrix):
    if matrix.size == 0:
        return jnp.zeros((), dtype=matrix.dtype)
    return jnp.minimum(jnp.linalg.matrix_norm(matrix, ord="fro"),
                       jnp.linalg.matrix_norm(matrix, ord=1))


def nnls(A, b, iters: int, unroll: Union[int, bool] = 1, L=None):  # noqa: N803 (optax's names)
    """Non-negative least squares: minimizes ``|A x - b|_2`` subject to ``x >= 0``.

    Runs ``iters`` steps of Polyak's fast projected gradient method (2015): a gradient
    step on ``x^T Q x / 2 - q^T x`` (``Q = A^T A``, ``q = A^T b``) with step ``1/L``,
    projected on ``x >= 0``, plus Nesterov-style momentum. Starts from ``x = 0``.

    Args:
        A: the ``(M, N)`` matrix.
        b: the ``(M,)`` vector, or an ``(M, K)`` matrix of K right-hand sides.
        iters: the number of iterations (a Python int).
        unroll: passed to ``lax.scan``.
        L: an upper bound on the largest eigenvalue of ``A^T A``; ``None`` uses
            ``min(|Q|_F, |Q|_1)``.

    Returns:
        ``x`` of shape ``(N,)`` or ``(N, K)``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> x = optim.nnls(jnp.array([[1.0, 2.0], [3.0, 4.0]]), jnp.array([5.0, 6.0]), 1000)
        >>> print([round(v, 2) for v in x.tolist()])
        [0.0, 1.7]
    """
    fn = "nnls"
    A = jnp.asarray(A)  # noqa: N806
    b = jnp.asarray(b)
    if A.ndim != 2:
        raise ValueError(f"{fn}: argument `A` must be a 2-d matrix, got shape {A.shape}.")
    if b.ndim not in (1, 2):
        raise ValueError(f"{fn}: argument `b` must be 1-d or 2-d, got shape {b.shape}.")
    if b.shape[0] != A.shape[0]:
        raise ValueError(f"{fn}: `b` must have as many rows as `A`: A has shape {A.shape}, "
                         f"b has shape {b.shape}.")
    if isinstance(iters, bool) or not isinstance(iters, (int, np.integer)) or iters < 0:
        raise ValueError(f"{fn}: argument `iters` must be a non-negative Python int, got "
                         f"{iters!r}.")
    if L is not None:
        _base.check_nonneg(fn, "L", L)

    Q = A.mT @ A  # noqa: N806
    q = A.mT @ b
    if L is None:
        L = _spectral_radius_upper_bound(Q)  # noqa: N806
    L = jnp.where(L == 0, 1, L)  # noqa: N806 (no division by zero)

    dtype = jnp.result_type(A, b)
    c_dtype = np.float64 if np.dtype(dtype) == np.float64 else np.float32

    def step(carry, _):
        x, p, c = carry
        cn = (1 + jnp.sqrt(1 + 4 * c ** 2)) / 2
        s = jnp.asarray((c - 1) / cn, dtype=dtype)
        xn = jnp.asarray(jnp.clip(p - (Q @ p - q) / L, 0), dtype=dtype)
        pn = xn + s * (xn - x)
        return (xn, pn, cn), None

    x = jnp.zeros(A.shape[-1:] + b.shape[1:], dtype=dtype)
    (x, _, _), _ = lax.scan(step, (x, x, jnp.zeros((), dtype=c_dtype)), length=int(iters),
                            unroll=unroll)
    return x


# --- a diagonal Gaussian -------------------------------------------------------------------


class MultiNormalDiagFromLogScale:
    """A Gaussian with diagonal covariance that exposes its mean and log scale.

    Made by :func:`multi_normal`. The mean and the log scale broadcast together to the
    parameter shape; ``log_prob`` sums the per-entry log densities over those axes.
    """

    def __init__(self, loc, log_scale):
        self._log_scale = jnp.asarray(log_scale)
        self._scale = jnp.exp(self._log_scale)
        self._mean = jnp.asarray(loc)
        try:
            self._param_shape = tuple(np.broadcast_shapes(self._mean.shape,
                                                          self._scale.shape))
        except ValueError:
            raise ValueError(
                f"multi_normal: Incompatible shapes for broadcasting: `loc` has shape "
                f"{tuple(self._mean.shape)} and `log_scale` has shape "
                f"{tuple(self._log_scale.shape)}.") from None

    def sample(self, shape, key):
        """``shape + param_shape`` samples drawn with ``key``."""
        sample_shape = tuple(shape) + self._param_shape
        return random.normal(key, shape=sample_shape) * self._scale + self._mean

    def log_prob(self, x):
        """The log density of ``x`` (summed over the parameter axes)."""
        log_prob = _norm_logpdf(x, self._mean, self._scale)
        axes = tuple(-(i + 1) for i in range(len(self._param_shape)))
        return jnp.sum(log_prob, axis=axes) if axes else log_prob

    @property
    def log_scale(self):
        """The log of the standard deviations."""
        return self._log_scale

    @property
    def params(self):
        """``[mean, log_scale]``."""
        return [self._mean, self._log_scale]


def _norm_logpdf(x, loc, scale):
    from nanofn.scipy.stats import norm
    return norm.logpdf(x, loc=loc, scale=scale)


def multi_normal(loc, log_scale) -> MultiNormalDiagFromLogScale:
    """A diagonal Gaussian with mean ``loc`` and standard deviation ``exp(log_scale)``.

    Args:
        loc: the mean; broadcast against ``log_scale``.
        log_scale: the log standard deviation.

    Returns:
        A :class:`MultiNormalDiagFromLogScale` with ``sample(shape, key)``,
        ``log_prob(x)``, ``log_scale`` and ``params`` (``[mean, log_scale]``).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim, random
        >>> dist = optim.multi_normal(jnp.zeros(3), jnp.zeros(3))
        >>> dist.sample((4,), random.PRNGKey(0)).shape
        (4, 3)
        >>> print(round(float(dist.log_prob(jnp.zeros(3))), 4))
        -2.7568
    """
    return MultiNormalDiagFromLogScale(loc=loc, log_scale=log_scale)


# --- distance over gradients ---------------------------------------------------------------


class ScaleByDistanceOverGradientsState(NamedTuple):
    """State of :func:`scale_by_distance_over_gradients` (one scalar set per leaf)."""

    max_dist: OptState  # per leaf: the largest distance from the initial params so far
    grad_sum_of_squares: OptState  # per leaf: shape (1,), the sum of all squared gradients
    init_params: OptState  # the initial parameters, in `param_dtype`


def scale_by_distance_over_gradients(reps_rel=1e-6, eps=1e-8, param_dtype=jnp.float32,
                                     global_scale=1.0) -> GradientTransformationExtraArgs:
    """Layer-wise DoG: step size = distance travelled / root of summed squared gradients.

    For each leaf, ``eta = global_scale * d / sqrt(G + eps)`` where ``d`` is the largest
    distance of the parameters from their initial value so far (at least
    ``reps_rel * (1 + |x0|)``) and ``G`` the sum of the squared norms of all gradients
    seen, including the current one; the update is ``eta * g``. It does not flip the
    sign: use ``global_scale=-1.0`` (or chain a negative scale) to descend. Ivgi et al.,
    *DoG is SGD's Best Friend* (2023); the authors recommend averaging the iterates.

    Args:
        reps_rel: sets the first step's distance (1e-4 for models with batch norm, 1e-6
            otherwise, as recommended).
        eps: added under the square root.
        param_dtype: the dtype in which the initial parameters are stored.
        global_scale: a factor on every update, usually 1.0 or -1.0.

    Returns:
        A :class:`GradientTransformation` with state
        :class:`ScaleByDistanceOverGradientsState`; ``update`` needs ``params``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_distance_over_gradients(reps_rel=0.1, global_scale=-1.0)
        >>> params = jnp.array([3.0, 4.0])
        >>> u, state = tx.update(jnp.array([1.0, 0.0]), tx.init(params), params)
        >>> print([round(x, 4) for x in u.tolist()])
        [-0.6, 0.0]
    """
    fn = "scale_by_distance_over_gradients"
    _base.check_nonneg(fn, "reps_rel", reps_rel)
    _base.check_nonneg(fn, "eps", eps)
    _base.check_finite(fn, "global_scale", global_scale)

    def l2(x, y=0.0):
        return jnp.sqrt(jnp.sum(jnp.square(x - y)))

    def init_fn(params):
        def init_dist(x):
            return reps_rel * (1 + l2(x))

        def init_sos(x):
            return jnp.zeros((1,), dtype=_float_dtype(_base._dtype(x)))

        return ScaleByDistanceOverGradientsState(
            max_dist=tree_util.tree_map(init_dist, params),
            grad_sum_of_squares=tree_util.tree_map(init_sos, params),
            init_params=otu.cast(params, param_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args  # unused
        if params is None:
            raise ValueError(f"{fn}: " + _base.NO_PARAMS_MSG)
        max_dist = _base.tree_map_checked(
            lambda d, x, x0: jnp.asarray(jnp.maximum(d, l2(x, x0)), dtype=d.dtype),
            state.max_dist, params, state.init_params,
            names=("state.max_dist", "params", "state.init_params"), where=fn)
        sos = _base.tree_map_checked(
            lambda s, g: jnp.asarray(s + jnp.sum(jnp.square(g)), dtype=s.dtype),
            state.grad_sum_of_squares, updates,
            names=("state.grad_sum_of_squares", "updates"), where=fn)

        def step(g, d, s):
            eta = global_scale * (d / jnp.sqrt(s + eps))
            # eta has shape (1,); index it so a scalar leaf keeps its shape
            return eta[0] * g

        new_updates = tree_util.tree_map(step, updates, max_dist, sos)
        return new_updates, ScaleByDistanceOverGradientsState(
            max_dist=max_dist, grad_sum_of_squares=sos, init_params=state.init_params)

    return GradientTransformationExtraArgs(init_fn, update_fn)


# --- stateful schedules in the state -------------------------------------------------------


class WrappedScheduleState(NamedTuple):
    """State of a :class:`WrappedSchedule`: the step count."""

    count: Any  # int32, shape ()


class WrappedSchedule:
    """A stateful schedule made from a plain ``step -> value`` schedule.

    ``init()`` returns a zero count, ``update(state, **extra_args)`` increments it and
    ``schedule(state, **extra_args)`` evaluates the wrapped schedule at the count.

    Args:
        schedule_fn: a function of the step count.

    Example:
        >>> from nanofn import optim
        >>> sched = optim.WrappedSchedule(lambda count: 0.5 ** count)
        >>> state = sched.update(sched.update(sched.init()))
        >>> print(float(sched(state)))
        0.25
    """

    def __init__(self, schedule_fn: Callable[[Any], Any]):
        if not callable(schedule_fn):
            raise TypeError(f"WrappedSchedule: argument `schedule_fn` must be a function of "
                            f"the step count, got {type(schedule_fn).__name__}.")
        self.schedule_fn = schedule_fn

    def init(self) -> WrappedScheduleState:
        """The initial state: count 0."""
        return WrappedScheduleState(count=_zeros_count())

    def update(self, state: WrappedScheduleState, **extra_args) -> WrappedScheduleState:
        """The state after one more step (``extra_args`` are ignored)."""
        del extra_args  # unused
        return WrappedScheduleState(count=safe_increment(state.count))

    def __call__(self, state: WrappedScheduleState, **extra_args):
        """The schedule's value at the state's count."""
        del extra_args  # unused
        return self.schedule_fn(state.count)


def _is_stateful_schedule(value) -> bool:
    return (callable(value) and callable(getattr(value, "init", None))
            and callable(getattr(value, "update", None)))


class InjectStatefulHyperparamsState(NamedTuple):
    """State of a transformation made by :func:`inject_stateful_hyperparams`.

    ``hyperparams`` maps each numeric or scheduled hyperparameter to its current value
    (numeric ones may be changed between steps); ``hyperparams_states`` holds each
    schedule's own state.
    """

    count: Any  # int32, shape ()
    hyperparams: dict
    hyperparams_states: dict
    inner_state: OptState


def inject_stateful_hyperparams(inner_factory: Callable[..., Any],
                                static_args: Union[str, tuple, list, set] = (),
                                hyperparam_dtype: Optional[Any] = None
                                ) -> Callable[..., GradientTransformationExtraArgs]:
    """Like :func:`inject_hyperparams`, with schedules that may keep a state.

    A stateful schedule is an object with ``init()``, ``update(state, **extra_args)``
    and ``__call__(state, **extra_args)``; it receives the ``extra_args`` given to
    ``update`` (e.g. ``value=loss``), so its value can depend on more than the step
    count. A plain function of the step count is wrapped in :class:`WrappedSchedule`.
    Each step uses the schedules' values at their current state, then advances them.

    Args:
        inner_factory: a function returning a transformation, such as an alias.
        static_args: names of arguments that must stay Python values. Booleans,
            strings, dtypes and ``None`` always stay static.
        hyperparam_dtype: dtype of the float hyperparameters; ``None`` uses the widest
            float dtype of the params.

    Returns:
        A function with the signature of ``inner_factory`` that returns a
        :class:`GradientTransformation` with state :class:`InjectStatefulHyperparamsState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> class Halving:  # halves the value whenever the loss went up
        ...     def init(self):
        ...         return {"lr": jnp.asarray(1.0), "last": jnp.asarray(jnp.inf)}
        ...     def update(self, state, value=0.0, **kw):
        ...         up = value > state["last"]
        ...         return {"lr": jnp.where(up, state["lr"] / 2, state["lr"]),
        ...                 "last": jnp.asarray(value)}
        ...     def __call__(self, state, **kw):
        ...         return state["lr"]
        >>> tx = optim.inject_stateful_hyperparams(optim.sgd)(learning_rate=Halving())
        >>> state = tx.init(jnp.zeros(1))
        >>> for loss in (3.0, 4.0, 2.0):
        ...     u, state = tx.update(jnp.ones(1), state, value=loss)
        >>> print(float(u[0]), float(state.hyperparams["learning_rate"]))
        -0.5 0.5
    """
    return _inject(inner_factory, static_args, hyperparam_dtype, "inject_stateful_hyperparams")


def _inject(inner_factory, static_args, hyperparam_dtype, name):
    """`inject_stateful_hyperparams` (and `inject_hyperparams`, which optax now defines as
    the same thing); `name` is the one errors give."""
    static_args = {static_args} if isinstance(static_args, str) else set(static_args)
    signature = inspect.signature(inner_factory)
    unknown = static_args - set(signature.parameters)
    if unknown:
        raise ValueError(
            f"{name}: `static_args` {sorted(unknown)} are not parameters of "
            f"{getattr(inner_factory, '__name__', inner_factory)!r}, which takes "
            f"{list(signature.parameters)}.")

    @functools.wraps(inner_factory)
    def wrapped(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        scheduled, numeric, static = {}, {}, {}
        for key, value in bound.arguments.items():
            if (key in static_args or value is None
                    or isinstance(value, (bool, str, type, np.dtype))):
                static[key] = value
            elif _is_stateful_schedule(value):
                scheduled[key] = value
            elif callable(value):
                scheduled[key] = WrappedSchedule(value)
            elif _is_numeric(value):
                numeric[key] = value
            else:
                static[key] = value
        # validate the arguments now, with each schedule at its initial value
        inner_factory(**static, **numeric, **{k: f(f.init()) for k, f in scheduled.items()})

        def build(hyperparams):
            return _base.with_extra_args_support(inner_factory(**static, **hyperparams))

        def dtype_of(tree):
            if hyperparam_dtype is not None:
                return np.dtype(hyperparam_dtype)
            return _highest_float_dtype(tree)

        def init_fn(params):
            dtype = dtype_of(params)
            hyperparams = {k: _as_hyperparam(v, dtype) for k, v in numeric.items()}
            sched_states = {k: f.init() for k, f in scheduled.items()}
            hyperparams.update({k: _as_hyperparam(f(sched_states[k]), dtype)
                                for k, f in scheduled.items()})
            return InjectStatefulHyperparamsState(
                count=_zeros_count(), hyperparams=hyperparams,
                hyperparams_states=sched_states,
                inner_state=build(hyperparams).init(params))

        def update_fn(updates, state, params=None, **extra_args):
            dtype = dtype_of(updates if params is None else params)
            hyperparams = {k: _as_hyperparam(state.hyperparams[k], dtype) for k in numeric}
            hyperparams.update(
                {k: _as_hyperparam(f(state.hyperparams_states[k], **extra_args), dtype)
                 for k, f in scheduled.items()})
            sched_states = {k: f.update(state.hyperparams_states[k], **extra_args)
                            for k, f in scheduled.items()}
            new_updates, inner_state = build(hyperparams).update(
                updates, state.inner_state, params, **extra_args)
            # array hyperparameters may promote a moment's dtype; keep the state stable
            inner_state = _cast_like(inner_state, state.inner_state)
            new_updates = _cast_like(new_updates, updates)
            return new_updates, InjectStatefulHyperparamsState(
                count=safe_increment(state.count), hyperparams=hyperparams,
                hyperparams_states=sched_states, inner_state=inner_state)

        return GradientTransformationExtraArgs(init_fn, update_fn)

    return wrapped

