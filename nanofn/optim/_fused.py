"""Fused optimizer updates: Adam's and momentum's per-leaf arithmetic as one primitive each.

Written with array operations, ``scale_by_adam`` makes about a dozen passes over every
parameter (two moments, two bias corrections, a square root, a division, ...), and
``trace`` (SGD momentum) two or three. Each pass reads and writes whole arrays, so a
large model spends its optimizer time moving memory. The primitives below do all of a
leaf's work in one pass of a numba kernel:

* ``adam_update(g, mu, nu, bc1, bc2, bc1_next) -> (update, new_mu, new_nu)``, with
  ``b1, b2, eps, eps_root, nesterov`` as parameters. The bias corrections
  ``1 - b1^t``, ``1 - b2^t`` and ``1 - b1^(t+1)`` are scalar operands, because the step
  count is a traced value under ``jit``.
* ``momentum_update(g, trace) -> (new_trace,)``, or ``(update, new_trace)`` with
  ``nesterov=True``, with ``decay`` as a parameter.

Each impl is a numba kernel (``nanofn._kernels.kernel``) with its plain numpy reference
beside it; the reference runs when kernels are switched off (``nanofn_use_kernels``).
Both compute in the leaf's dtype with the hyperparameters rounded to it, as the plain
array code in ``_transform.py`` does with its weakly typed Python numbers, so the three
agree to a rounding or two.

The primitives have every rule (shape, JVP, VJP, batching), written with primitives, so
``grad`` through an optimizer step (meta-learning), ``vmap`` over a batch of optimizer
states and ``jit`` all work, including higher derivatives.

When the transforms use them (``use_adam_update``, ``use_momentum_update``): float32 or
float64 leaves whose state has the leaf's dtype and shape, Python-number hyperparameters,
kernels switched on, and at least ``MIN_FUSED_SIZE`` elements in all (0 by default). A tree
with a complex leaf takes the plain array code (whose second moment is ``|g|^2``, optax's).
Not while a jaxpr is being traced (``jit``, ``make_jaxpr``), unless ``FUSE_UNDER_JIT`` is
set: there the plan's elementwise fusion (``nanofn._fusion``) already turns the plain
array code, together with ``scale_by_learning_rate`` and ``apply_updates`` after it, into
one generated loop per leaf that reads g, mu, nu, params and writes mu, nu, params. The
primitive would split that loop in two, writing and reading the update once more:
measured on one Adam step of 1,000,640 float32 parameters, the fused plain code took
2.7 ms against 3.4 ms with the primitive (best of 60; eager with the primitive: 8 ms;
eager without: 23 ms).

numba is imported on first use only; kernels are cached on disk.
"""

from __future__ import annotations

import numpy as np

from nanofn import _core as core
from nanofn._core import Primitive, ShapedArray
from nanofn._kernels import enabled, kernel

# The transforms take the plain array code for trees with fewer elements than this in all.
# Measured in eager mode, the primitives never lose: one bind and one kernel call cost less
# than Adam's dozen eager operations even on 16-element leaves (10 leaves: ~350 us against
# ~470 us), and momentum's two operations cost about the same as one kernel call on small
# leaves (within 10%) while the kernel is twice as fast on large ones. Tests raise it to
# force the plain code.
MIN_FUSED_SIZE = 0

# Bind the primitives inside `jit` too (True), or leave the plain array code to the jit
# plan's elementwise fusion, which also fuses the learning rate and `apply_updates` (False).
FUSE_UNDER_JIT = False

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, (bool, np.generic))


def _staging() -> bool:
    """True while a jaxpr is being traced (jit, make_jaxpr, control-flow bodies)."""
    return core._state.dynamic_trace is not None


def _leaves_ok(groups) -> bool:
    """Every group is a tuple of leaves with one float32/float64 dtype and one shape, and
    their total size reaches MIN_FUSED_SIZE."""
    total = 0
    for group in groups:
        first = core.get_aval(group[0])
        if first.dtype not in _FLOATS:
            return False
        for x in group[1:]:
            aval = core.get_aval(x)
            if aval.dtype != first.dtype or aval.shape != first.shape:
                return False
        total += first.size
    return total >= MIN_FUSED_SIZE


def use_adam_update(leaves, b1, b2, eps, eps_root) -> bool:
    """True if ``scale_by_adam`` should bind ``adam_update`` for these ``(g, mu, nu)``
    leaf triples."""
    if not enabled() or not all(_is_number(h) for h in (b1, b2, eps, eps_root)):
        return False
    if not _leaves_ok(leaves):
        return False
    return FUSE_UNDER_JIT or not _staging()


def use_momentum_update(leaves, decay) -> bool:
    """True if ``trace`` should bind ``momentum_update`` for these ``(g, trace)`` pairs."""
    if not enabled() or not _is_number(decay) or not _leaves_ok(leaves):
        return False
    return FUSE_UNDER_JIT or not _staging()


# ============================================================================ adam_update

adam_update_p = Primitive("adam_update", multiple_results=True)


@kernel
def _adam_kernel(g, m, v, u_out, m_out, v_out, b1, one_minus_b1, b2, one_minus_b2,
                 eps, eps_root, bc1, bc2, bc1_next, nesterov):
    for i in range(g.size):
        gi = g[i]
        mi = one_minus_b1 * gi + b1 * m[i]
        vi = one_minus_b2 * (gi * gi) + b2 * v[i]
        if nesterov:
            m_hat = b1 * mi / bc1_next + one_minus_b1 * gi / bc1
        else:
            m_hat = mi / bc1
        u_out[i] = m_hat / (np.sqrt(vi / bc2 + eps_root) + eps)
        m_out[i] = mi
        v_out[i] = vi


def adam_update_reference(g, m, v, bc1, bc2, bc1_next, *, b1, b2, eps, eps_root, nesterov):
    """The kernel's computation in plain numpy (scalars rounded to the leaf's dtype)."""
    dt = np.dtype(g.dtype).type
    b1_, b2_, bc1, bc2, bc1_next = dt(b1), dt(b2), dt(bc1), dt(bc2), dt(bc1_next)
    with np.errstate(all="ignore"):
        m = dt(1 - b1) * g + b1_ * m
        v = dt(1 - b2) * (g * g) + b2_ * v
        m_hat = b1_ * m / bc1_next + dt(1 - b1) * g / bc1 if nesterov else m / bc1
        v_hat = v / bc2 + dt(eps_root) if eps_root else v / bc2
        return [m_hat / (np.sqrt(v_hat) + dt(eps)), m, v]


def adam_reference(g, m, v, b1, b2, eps, eps_root, count, nesterov):
    """``adam_update_reference`` at step ``count`` (the count after this update, from 1)."""
    dt = np.dtype(g.dtype).type
    bc = [dt(1) - dt(b) ** dt(c) for b, c in ((b1, count), (b2, count), (b1, count + 1))]
    return tuple(adam_update_reference(g, m, v, *bc, b1=b1, b2=b2, eps=eps, eps_root=eps_root,
                                       nesterov=nesterov))


def _flat(x):
    return np.ascontiguousarray(x).reshape(-1)


def _validate(prim, arrays, scalars, params):
    """The kernels index every array by the first one's size: check shapes and dtypes first
    (eager calls get the shape rule's error, never an out-of-bounds read)."""
    g = arrays[0]
    if (g.dtype in _FLOATS and all(a.shape == g.shape and a.dtype == g.dtype for a in arrays)
            and all(np.shape(b) == () and np.result_type(b) == g.dtype for b in scalars)):
        return
    prim.abstract_eval(*[core.get_aval(x) for x in (*arrays, *scalars)], **params)


@adam_update_p.def_impl
def _adam_impl(g, m, v, bc1, bc2, bc1_next, *, b1, b2, eps, eps_root, nesterov):
    g, m, v = np.asarray(g), np.asarray(m), np.asarray(v)
    params = dict(b1=b1, b2=b2, eps=eps, eps_root=eps_root, nesterov=nesterov)
    _validate(adam_update_p, (g, m, v), (bc1, bc2, bc1_next), params)
    if not enabled():
        return adam_update_reference(g, m, v, bc1, bc2, bc1_next, **params)
    dt = g.dtype.type
    u_out, m_out, v_out = (np.empty(g.shape, g.dtype) for _ in range(3))
    _adam_kernel(_flat(g), _flat(m), _flat(v), u_out.reshape(-1), m_out.reshape(-1),
                 v_out.reshape(-1), dt(b1), dt(1 - b1), dt(b2), dt(1 - b2), dt(eps),
                 dt(eps_root), dt(bc1), dt(bc2), dt(bc1_next), bool(nesterov))
    return [u_out, m_out, v_out]


def _check_hyper(name, **hyper):
    for key, value in hyper.items():
        if not _is_number(value):
            raise TypeError(f"{name}: parameter {key} must be a Python number, got "
                            f"{value!r}")


@adam_update_p.def_abstract_eval
def _adam_abstract_eval(g, m, v, bc1, bc2, bc1_next, *, b1, b2, eps, eps_root, nesterov):
    _check_hyper("adam_update", b1=b1, b2=b2, eps=eps, eps_root=eps_root)
    _check_arrays("adam_update", ("g", g), ("mu", m), ("nu", v))
    _check_scalars("adam_update", g, ("bc1", bc1), ("bc2", bc2), ("bc1_next", bc1_next))
    return [ShapedArray(g.shape, g.dtype)] * 3


def _check_arrays(name, *named):
    (n0, a0) = named[0]
    if a0.dtype not in _FLOATS:
        raise TypeError(f"{name}: {n0} must be float32 or float64, got {a0.str_short()}")
    for n, a in named[1:]:
        if a.dtype != a0.dtype or a.shape != a0.shape:
            raise TypeError(f"{name}: {n} must have the shape and dtype of {n0} "
                            f"({a0.str_short()}), got {a.str_short()}; cast the optimizer "
                            f"state to the parameters' dtype or use the plain transform")


def _check_scalars(name, like, *named):
    for n, a in named:
        if a.shape != () or a.dtype != like.dtype:
            raise TypeError(f"{name}: {n} must be a scalar of dtype {like.dtype.name}, got "
                            f"{a.str_short()}")


# --- rules, written with nanofn.numpy so that they compose -------------------------------


def _jnp():
    import nanofn.numpy as jnp  # the optim layer sits above nanofn.numpy
    return jnp


def _adam_formula(g, m, v, bc1, bc2, bc1_next, *, b1, b2, eps, eps_root, nesterov):
    """``adam_update`` with array operations (for the batching rule's general case)."""
    jnp = _jnp()
    m = (1 - b1) * g + b1 * m
    v = (1 - b2) * (g * g) + b2 * v
    m_hat = b1 * m / bc1_next + (1 - b1) * g / bc1 if nesterov else m / bc1
    v_hat = v / bc2 + eps_root if eps_root else v / bc2
    return [m_hat / (jnp.sqrt(v_hat) + eps), m, v]


def _plus(a, b):
    return b if a is None else a if b is None else a + b


def _adam_jvp(primals, tangents, *, b1, b2, eps, eps_root, nesterov):
    jnp = _jnp()
    g, m0, v0, bc1, bc2, bc1n = primals
    tg, tm0, tv0, tbc1, tbc2, tbc1n = tangents
    u, m, v = adam_update_p.bind(*primals, b1=b1, b2=b2, eps=eps, eps_root=eps_root,
                                 nesterov=nesterov)
    # m = (1-b1) g + b1 m0 ;  v = (1-b2) g^2 + b2 v0
    tm = _plus(None if tg is None else (1 - b1) * tg, None if tm0 is None else b1 * tm0)
    tv = _plus(None if tg is None else (1 - b2) * 2 * g * tg, None if tv0 is None else b2 * tv0)
    if nesterov:  # m_hat = b1 m / bc1n + (1-b1) g / bc1
        a, c = b1 * m / bc1n, (1 - b1) * g / bc1
        m_hat = a + c
        t_hat = _plus(None if tm is None else b1 * tm / bc1n,
                      None if tbc1n is None else -a * tbc1n / bc1n)
        t_hat = _plus(t_hat, None if tg is None else (1 - b1) * tg / bc1)
        t_hat = _plus(t_hat, None if tbc1 is None else -c * tbc1 / bc1)
    else:  # m_hat = m / bc1
        m_hat = m / bc1
        t_hat = _plus(None if tm is None else tm / bc1,
                      None if tbc1 is None else -m_hat * tbc1 / bc1)
    v_hat = v / bc2
    tv_hat = _plus(None if tv is None else tv / bc2,
                   None if tbc2 is None else -v_hat * tbc2 / bc2)
    s = jnp.sqrt(v_hat + eps_root if eps_root else v_hat)
    denom = s + eps
    tu = None if t_hat is None else t_hat / denom
    if tv_hat is not None:  # d(sqrt(x)) = dx / (2 sqrt(x)); u = m_hat / denom
        tu = _plus(tu, -(u / denom) * (tv_hat / (2 * s)))
    return [u, m, v], [tu, tm, tv]


def _adam_vjp(cts, primals, outs, needs, *, b1, b2, eps, eps_root, nesterov):
    jnp = _jnp()
    g, m0, v0, bc1, bc2, bc1n = primals
    u, m, v = outs
    cu, cm, cv = cts
    ct_g = ct_bc1 = ct_bc2 = ct_bc1n = None
    if cu is not None:
        v_hat = v / bc2
        s = jnp.sqrt(v_hat + eps_root if eps_root else v_hat)
        denom = s + eps
        c_hat = cu / denom  # cotangent of m_hat
        c_vhat = -(cu * u / denom) / (2 * s)  # through denom = sqrt(v_hat + eps_root) + eps
        cv = _plus(cv, c_vhat / bc2)
        if needs[4]:
            ct_bc2 = -jnp.sum(c_vhat * v_hat) / bc2
        if nesterov:
            cm = _plus(cm, c_hat * (b1 / bc1n))
            ct_g = c_hat * ((1 - b1) / bc1)
            if needs[5]:
                ct_bc1n = -jnp.sum(c_hat * (b1 * m)) / (bc1n * bc1n)
            if needs[3]:
                ct_bc1 = -jnp.sum(c_hat * ((1 - b1) * g)) / (bc1 * bc1)
        else:
            cm = _plus(cm, c_hat / bc1)
            if needs[3]:
                ct_bc1 = -jnp.sum(c_hat * m) / (bc1 * bc1)
    ct_g = _plus(ct_g, None if cm is None else (1 - b1) * cm)
    ct_g = _plus(ct_g, None if cv is None else (1 - b2) * 2 * g * cv)
    ct_m0 = None if cm is None else b1 * cm
    ct_v0 = None if cv is None else b2 * cv
    out = [ct_g, ct_m0, ct_v0, ct_bc1, ct_bc2, ct_bc1n]
    return [c if need else None for c, need in zip(out, needs)]


def _batched_operands(vals, dims, narrays):
    """Arrays with the batch axis in front (unbatched ones broadcast), and the size."""
    jnp = _jnp()
    size = next(core.get_aval(x).shape[d] for x, d in zip(vals, dims) if d is not None)
    arrays = []
    for x, d in zip(vals[:narrays], dims[:narrays]):
        if d is None:
            x = jnp.broadcast_to(x, (size,) + tuple(core.get_aval(x).shape))
        elif d != 0:
            x = jnp.moveaxis(x, d, 0)
        arrays.append(x)
    return arrays, size


def _batched_scalars(vals, dims, narrays, ndim):
    """The scalar operands, those batched shaped ``(size, 1, ..., 1)`` to broadcast."""
    jnp = _jnp()
    out = []
    for x, d in zip(vals[narrays:], dims[narrays:]):
        out.append(x if d is None else jnp.reshape(x, (-1,) + (1,) * (ndim - 1)))
    return out


def _adam_batch(vals, dims, **params):
    arrays, _ = _batched_operands(vals, dims, 3)
    if all(d is None for d in dims[3:]):
        return adam_update_p.bind(*arrays, *vals[3:], **params), [0, 0, 0]
    # batched bias corrections (a batch of step counts): the array formula
    ndim = len(core.get_aval(arrays[0]).shape)
    return _adam_formula(*arrays, *_batched_scalars(vals, dims, 3, ndim), **params), [0, 0, 0]


adam_update_p.jvp = _adam_jvp
adam_update_p.vjp_joint = _adam_vjp
adam_update_p.batch = _adam_batch


def adam_update(g, mu, nu, bc1, bc2, bc1_next, *, b1, b2, eps, eps_root=0.0,
                nesterov=False):
    """One leaf of Adam's update in one pass: the new moments and the update.

    ``mu' = (1-b1) g + b1 mu``, ``nu' = (1-b2) g^2 + b2 nu``, and the update
    ``m_hat / (sqrt(nu' / bc2 + eps_root) + eps)`` with ``m_hat = mu' / bc1`` (or, with
    ``nesterov``, ``b1 mu' / bc1_next + (1-b1) g / bc1``).

    Args:
        g, mu, nu: float32 or float64 arrays of one shape and dtype (the gradient and the
            moments).
        bc1, bc2, bc1_next: scalar bias corrections ``1 - b1^t``, ``1 - b2^t``,
            ``1 - b1^(t+1)`` of the same dtype (``bc1_next`` is used only with nesterov).
        b1, b2, eps, eps_root: Python numbers, as in :func:`nanofn.optim.scale_by_adam`.
        nesterov: Nadam's first-moment estimate.

    Returns:
        ``[update, new_mu, new_nu]``.

    Example:
        >>> import numpy as np, nanofn.numpy as jnp
        >>> from nanofn.optim._fused import adam_update
        >>> g, z = jnp.array([3.0, -0.5]), jnp.zeros(2)
        >>> bc = [jnp.asarray(x, dtype=np.float32) for x in (0.1, 0.001, 0.19)]
        >>> u, mu, nu = adam_update(g, z, z, *bc, b1=0.9, b2=0.999, eps=1e-8)
        >>> print([round(x, 4) for x in u.tolist()])
        [1.0, -1.0]
    """
    return adam_update_p.bind(g, mu, nu, bc1, bc2, bc1_next, b1=float(b1), b2=float(b2),
                              eps=float(eps), eps_root=float(eps_root),
                              nesterov=bool(nesterov))


# ========================================================================= momentum_update

momentum_update_p = Primitive("momentum_update", multiple_results=True)


@kernel
def _momentum_kernel(g, t, u_out, t_out, decay):
    for i in range(g.size):
        ti = g[i] + decay * t[i]
        t_out[i] = ti
        u_out[i] = g[i] + decay * ti


@kernel
def _trace_kernel(g, t, t_out, decay):
    for i in range(g.size):
        t_out[i] = g[i] + decay * t[i]


def momentum_update_reference(g, t, *, decay, nesterov):
    """The kernels' computation in plain numpy."""
    d = np.dtype(g.dtype).type(decay)
    t = g + d * t
    return [g + d * t, t] if nesterov else [t]


@momentum_update_p.def_impl
def _momentum_impl(g, t, *, decay, nesterov):
    g, t = np.asarray(g), np.asarray(t)
    _validate(momentum_update_p, (g, t), (), dict(decay=decay, nesterov=nesterov))
    if not enabled():
        return momentum_update_reference(g, t, decay=decay, nesterov=nesterov)
    d = g.dtype.type(decay)
    t_out = np.empty(g.shape, g.dtype)
    if not nesterov:
        _trace_kernel(_flat(g), _flat(t), t_out.reshape(-1), d)
        return [t_out]
    u_out = np.empty(g.shape, g.dtype)
    _momentum_kernel(_flat(g), _flat(t), u_out.reshape(-1), t_out.reshape(-1), d)
    return [u_out, t_out]


@momentum_update_p.def_abstract_eval
def _momentum_abstract_eval(g, t, *, decay, nesterov):
    _check_hyper("momentum_update", decay=decay)
    _check_arrays("momentum_update", ("g", g), ("trace", t))
    return [ShapedArray(g.shape, g.dtype)] * (2 if nesterov else 1)


def _momentum_jvp(primals, tangents, *, decay, nesterov):
    g, _ = primals
    tg, tt0 = tangents
    outs = momentum_update_p.bind(*primals, decay=decay, nesterov=nesterov)
    tt = _plus(tg, None if tt0 is None else decay * tt0)
    if not nesterov:
        return outs, [tt]
    return outs, [_plus(tg, None if tt is None else decay * tt), tt]


def _momentum_vjp(cts, primals, outs, needs, *, decay, nesterov):
    if nesterov:
        cu, ct = cts
        if cu is not None:  # u = g + decay t
            ct = _plus(ct, decay * cu)
    else:
        cu, ct = None, cts[0]
    ct_g = _plus(cu, ct)
    ct_t0 = None if ct is None else decay * ct
    return [ct_g if needs[0] else None, ct_t0 if needs[1] else None]


def _momentum_batch(vals, dims, *, decay, nesterov):
    arrays, _ = _batched_operands(vals, dims, 2)
    outs = momentum_update_p.bind(*arrays, decay=decay, nesterov=nesterov)
    return outs, [0] * len(outs)


momentum_update_p.jvp = _momentum_jvp
momentum_update_p.vjp_joint = _momentum_vjp
momentum_update_p.batch = _momentum_batch


def momentum_update(g, trace, *, decay, nesterov=False):
    """One leaf of momentum (``nanofn.optim.trace``) in one pass.

    ``trace' = g + decay * trace``; the update is ``trace'``, or with ``nesterov``
    ``g + decay * trace'``.

    Args:
        g, trace: float32 or float64 arrays of one shape and dtype.
        decay: the momentum coefficient, a Python number.
        nesterov: Nesterov's look-ahead form.

    Returns:
        ``[new_trace]``, or ``[update, new_trace]`` with ``nesterov``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim._fused import momentum_update
        >>> u, t = momentum_update(jnp.ones(2), jnp.ones(2), decay=0.5, nesterov=True)
        >>> print(u.tolist(), t.tolist())
        [1.75, 1.75] [1.5, 1.5]
    """
    return momentum_update_p.bind(g, trace, decay=float(decay), nesterov=bool(nesterov))
