"""Check automatic derivatives against finite differences.

`check_grads` answers one question: do the derivatives that nanofn computes for `f` agree
with what `f` itself says when you nudge its inputs? It never looks at a derivative
rule; it only calls `f`, `nanofn.jvp` and `nanofn.vjp`, so it tests the whole chain
from the primitives' rules through the transforms.

Two checks, each along random directions (so the cost does not grow with the size of
the Jacobian):

* Forward mode ("JVP"). Pick a random tangent `v`. A central difference
  `(f(x + eps v) - f(x - eps v)) / (2 eps)` approximates `J v` to second order in
  `eps`; `nanofn.jvp` must agree with it element by element.
* Reverse mode ("VJP"). Pick a random output cotangent `u`. `nanofn.vjp` gives
  `J^T u`; the inner-product identity `<u, J v> == <J^T u, v>` must hold, with `J v`
  taken from the same central difference. One scalar per check, but any error in
  `J^T u` shows up in it with probability one.

Higher orders recurse: the JVP function `(x, v) -> (f(x), J v)` and the VJP function
`(x, u) -> J^T u` are functions too, and their derivatives are checked the same way.

All comparisons run in float64 numpy. Random directions come from a numpy generator
seeded afresh on every call, so a failure is reproducible. Integer and boolean inputs
are held fixed (never perturbed) and integer outputs are ignored, as JAX does with
`float0` tangents.

Complex inputs and outputs are checked too, in complex128. A random direction for a
complex input moves its real and imaginary parts at once, so both are checked; the
inner product is `Re(sum(u * v))`, the pairing of JAX's convention in which a cotangent
`c` of `z` stands for the covector `dz -> Re(c dz)` (see docs/numerics.md).
"""

from __future__ import annotations

import numpy as np

import nanofn
from nanofn import tree_util

__all__ = ["assert_trees_allclose", "check_grads", "check_jvp", "check_vjp"]

# Per dtype: (finite-difference step, atol, rtol). The step balances the truncation error
# of the central difference (~ eps**2 * f''') against rounding (~ machine_eps * |f| / eps).
_DEFAULTS = {
    np.dtype(np.float16): (1e-2, 5e-2, 5e-2),
    np.dtype(np.float32): (1e-3, 2e-3, 2e-3),
    np.dtype(np.float64): (1e-4, 1e-5, 1e-5),
}
_DEFAULTS[np.dtype(np.complex64)] = _DEFAULTS[np.dtype(np.float32)]
_DEFAULTS[np.dtype(np.complex128)] = _DEFAULTS[np.dtype(np.float64)]
_SEED = 0
# Localising a reverse-mode error element by element costs two calls of `f` per element.
_MAX_ELEMENTS_TO_LOCALISE = 64
# How many ulps of rounding in each evaluation of `f` the finite difference tolerates.
_ROUNDING_ULPS = 4.0


# --- small helpers ------------------------------------------------------------------------


def _leaf_dtype(x):
    dtype = getattr(x, "dtype", None)
    return np.dtype(dtype) if dtype is not None else np.asarray(x).dtype


def _is_float(x) -> bool:
    """Real or complex floating point: the leaves that are differentiated."""
    return np.issubdtype(_leaf_dtype(x), np.inexact)


def _f64(x) -> np.ndarray:
    """`x` in float64, or in complex128 when it is complex."""
    x = np.asarray(x)
    return x.astype(np.complex128 if x.dtype.kind == "c" else np.float64)


def _as_arrays(xs):
    # f sees nanofn arrays (with `.at`, methods and nanofn semantics) when it is evaluated
    # for the finite differences, just as it sees tracers under jvp and vjp.
    return [nanofn.numpy.asarray(x) for x in xs]


def _least_precise(dtypes):
    dtypes = [np.dtype(d) for d in dtypes if np.dtype(d) in _DEFAULTS] or [np.dtype(np.float64)]
    return max(dtypes, key=lambda d: np.finfo(d).eps)


def _resolve(value, dtype, default, name):
    """A tolerance or step given as a number, a {dtype: number} dict, or None."""
    if value is None:
        return default
    if isinstance(value, dict):
        value = {np.dtype(k): v for k, v in value.items()}
        return float(value.get(dtype, default))
    value = float(value)
    if not value >= 0:
        raise ValueError(f"check_grads: {name} must be a non-negative number, got {value!r}.")
    return value


def _fmt(x) -> str:
    x = complex(x)
    return f"{x.real:.7g}" if x.imag == 0 else f"{x:.7g}"


def _fmt_array(a) -> str:
    return np.array2string(np.asarray(a), precision=6, threshold=40, edgeitems=3,
                           max_line_width=96)


def _elementwise_report(name, expected, actual, tol, expected_label, actual_label):
    """None if `actual` is within `tol` of `expected`, else a paragraph describing the worst
    element (its index, both values, the error and the tolerance)."""
    expected, actual = _f64(expected), _f64(actual)
    tol = np.broadcast_to(tol, expected.shape)
    with np.errstate(invalid="ignore"):
        err = np.abs(actual - expected)
        ok = (err <= tol) | (expected == actual) | (np.isnan(expected) & np.isnan(actual))
    if ok.all():
        return None
    # The worst element exceeds its tolerance the most; a NaN on one side only is worst.
    excess = np.where(ok, -np.inf, np.nan_to_num(err - tol, nan=np.inf))
    index = np.unravel_index(int(np.argmax(excess)), expected.shape)
    where = f" at index {tuple(int(i) for i in index)}" if expected.ndim else ""
    lines = [
        (f"{name} (shape {expected.shape}): {int(np.sum(~ok))} of {expected.size} elements "
         "out of tolerance;"),
        (f"  largest error{where}: {expected_label} {_fmt(expected[index])}, "
         f"{actual_label} {_fmt(actual[index])},\n    |error| {_fmt(err[index])} > "
         f"tolerance {_fmt(tol[index])}"),
    ]
    if expected.ndim:
        lines += [f"  {expected_label}: " + _fmt_array(expected).replace("\n", "\n    "),
                  f"  {actual_label}: " + _fmt_array(actual).replace("\n", "\n    ")]
    if "finite differences" in expected_label and not np.isfinite(expected[index]):
        lines.append("  (the finite difference is not finite: is an input at the edge of f's "
                     "domain?)")
    return "\n".join(lines)


# --- the flat problem --------------------------------------------------------------------
#
# check_grads turns `f(*args)` with pytree inputs and outputs into a flat function
# `fn(*xs) -> list of float arrays` of the float leaves only. Each leaf keeps a name
# (`args[0]['w']`, `out[1]`) for the error messages. Higher orders build new flat
# functions out of nanofn.jvp / nanofn.vjp of the previous one.


class _Problem:
    """A flat function at one point, with names for its inputs and outputs."""

    def __init__(self, fn, xs, in_names, out_names, chain):
        self.fn = fn                  # fn(*xs) -> list of float arrays
        self.xs = xs                  # list of numpy float arrays (the point)
        self.in_names = in_names
        self.out_names = out_names
        self.chain = chain            # e.g. ("VJP",) when checking derivatives of the VJP

    def label(self, mode):
        return " of ".join((mode,) + tuple(reversed(self.chain)))

    def __call__(self, xs):
        return [_f64(y) for y in self.fn(*_as_arrays(xs))]

    def evaluate_point(self):
        """f at the point, in float64; also records the output dtypes."""
        out = self.fn(*_as_arrays(self.xs))
        self.out_dtypes = [_leaf_dtype(y) for y in out]
        return [_f64(y) for y in out]


def _flatten_problem(f, args):
    leaves_with_path, treedef = tree_util.tree_flatten_with_path(args)
    paths = [p for p, _ in leaves_with_path]
    leaves = [leaf for _, leaf in leaves_with_path]
    diff = [i for i, leaf in enumerate(leaves) if _is_float(leaf)]
    if not diff:
        dtypes = sorted({str(_leaf_dtype(leaf)) for leaf in leaves}) or ["no leaves"]
        raise TypeError("check_grads: args have no floating-point leaves to differentiate "
                        f"(found {', '.join(dtypes)}). Pass float arrays, e.g. "
                        "np.asarray(x, dtype=np.float64).")

    def call(*xs):
        full = list(leaves)
        for i, x in zip(diff, xs):
            full[i] = x
        return f(*tree_util.tree_unflatten(treedef, full))

    def fn(*xs):
        return [y for y in tree_util.tree_leaves(call(*xs)) if _is_float(y)]

    xs = [np.asarray(leaves[i]) for i in diff]
    out_with_path, _ = tree_util.tree_flatten_with_path(call(*_as_arrays(xs)))
    out_names = ["out" + tree_util.keystr(p) for p, y in out_with_path if _is_float(y)]
    in_names = ["args" + tree_util.keystr(paths[i]) for i in diff]
    return _Problem(fn, xs, in_names, out_names, chain=())


def _jvp_problem(p, tangents):
    """The JVP function (x, v) -> (f(x), J v) at the point (p.xs, tangents)."""
    n = len(p.xs)

    def fn(*zs):
        primal_out, tangent_out = nanofn.jvp(p.fn, tuple(zs[:n]), tuple(zs[n:]))
        return list(primal_out) + list(tangent_out)

    return _Problem(fn, p.xs + tangents,
                    p.in_names + ["tangent of " + s for s in p.in_names],
                    p.out_names + ["tangent of " + s for s in p.out_names],
                    p.chain + ("JVP",))


def _vjp_problem(p, cotangents):
    """The VJP function (x, u) -> J^T u at the point (p.xs, cotangents)."""
    n = len(p.xs)

    def fn(*zs):
        _, vjp_fn = nanofn.vjp(p.fn, *zs[:n])
        return list(vjp_fn(list(zs[n:])))

    return _Problem(fn, p.xs + cotangents,
                    p.in_names + ["cotangent of " + s for s in p.out_names],
                    ["cotangent of " + s for s in p.in_names],
                    p.chain + ("VJP",))


# --- the checks ----------------------------------------------------------------------------


class _Settings:
    def __init__(self, dtype, eps, atol, rtol, rng):
        default_eps, default_atol, default_rtol = _DEFAULTS[dtype]
        self.dtype = dtype
        self.eps = _resolve(eps, dtype, default_eps, "eps")
        if not self.eps > 0:
            raise ValueError(f"check_grads: eps must be positive, got {eps!r}.")
        self.atol = _resolve(atol, dtype, default_atol, "atol")
        self.rtol = _resolve(rtol, dtype, default_rtol, "rtol")
        self.rng = rng

    def describe(self):
        return f"atol={self.atol:g}, rtol={self.rtol:g}, eps={self.eps:g}, seed={_SEED}"


class _FiniteDifference:
    """A central difference of `p` along a tangent, with its rounding noise per element."""

    def __init__(self, p, tangents, eps):
        x_plus = [(_f64(x) + eps * t).astype(x.dtype) for x, t in zip(p.xs, tangents)]
        x_minus = [(_f64(x) - eps * t).astype(x.dtype) for x, t in zip(p.xs, tangents)]
        # The step actually taken after rounding the perturbed inputs to their dtype; the
        # derivatives are compared along this direction, so input rounding cancels out.
        self.tangents = [((_f64(a) - _f64(b)) / (2 * eps)).astype(x.dtype)
                         for a, b, x in zip(x_plus, x_minus, p.xs)]
        y_plus, y_minus = p(x_plus), p(x_minus)
        self.jv = [(a - b) / (2 * eps) for a, b in zip(y_plus, y_minus)]
        self.noise = [_ROUNDING_ULPS * np.finfo(_noise_dtype(y)).eps
                      * (np.abs(a) + np.abs(b)) / (2 * eps)
                      for y, a, b in zip(p.out_dtypes, y_plus, y_minus)]


def _noise_dtype(dtype):
    return dtype if dtype in _DEFAULTS else np.dtype(np.float64)


def _random(rng, shape, dtype):
    """Standard normal values; for a complex dtype both parts are random, so a direction
    moves the real and the imaginary parts at once."""
    dtype = np.dtype(dtype)
    v = rng.standard_normal(shape)
    if dtype.kind == "c":
        v = v + 1j * rng.standard_normal(shape)
    return v.astype(dtype)


def _random_like(rng, arrays):
    return [_random(rng, np.shape(a), a.dtype) for a in arrays]


def _fail(settings, p, mode, body):
    order = len(p.chain) + 1
    raise AssertionError(f"check_grads: {p.label(mode)} check failed at order {order}.\n"
                         f"({settings.describe()})\n" + body)


def _check_primal(settings, p, mode, primal_out, reference):
    for name, y, ref in zip(p.out_names, primal_out, reference):
        tol = settings.atol + settings.rtol * np.abs(ref)
        report = _elementwise_report(f"primal output {name} of {mode}", ref, y, tol,
                                     "f(x)", mode)
        if report:
            _fail(settings, p, mode, report)


def _check_shapes(settings, p, mode, kind, names, got, want):
    if len(got) != len(want):
        _fail(settings, p, mode, f"{mode} returned {len(got)} {kind}s, expected {len(want)}.")
    for name, g, w in zip(names, got, want):
        if np.shape(g) != np.shape(w):
            _fail(settings, p, mode, f"{kind} {name} has shape {np.shape(g)}, but it must have "
                                     f"the shape {np.shape(w)} of the value it belongs to.")


def _check_jvp(settings, p, fd, reference, jvp=None):
    if jvp is None:
        primal_out, tangent_out = nanofn.jvp(p.fn, tuple(p.xs), tuple(fd.tangents))
    else:  # a user's JVP function (check_jvp)
        primal_out, tangent_out = jvp(p.xs, fd.tangents)
    primal_out, tangent_out = [_f64(y) for y in primal_out], [_f64(t) for t in tangent_out]
    _check_shapes(settings, p, "JVP", "tangent output", p.out_names, tangent_out, reference)
    _check_primal(settings, p, "JVP", primal_out, reference)
    for name, t, jv, noise in zip(p.out_names, tangent_out, fd.jv, fd.noise):
        tol = settings.atol + settings.rtol * np.abs(jv) + noise
        report = _elementwise_report(f"tangent output {name}", jv, t, tol,
                                     "expected (finite differences)", "actual (JVP)")
        if report:
            _fail(settings, p, "JVP", "J v by forward mode differs from central finite "
                                      "differences along a random input tangent v.\n" + report)


def _inner(a_list, b_list):
    """The real pairing `sum Re(a * b)` of cotangents and tangents (no conjugation: JAX's
    convention, in which a complex cotangent c stands for the covector dz -> Re(c dz))."""
    return float(np.real(sum(np.sum(a * b) for a, b in zip(a_list, b_list))))


def _check_vjp(settings, p, fd, reference, vjp=None):
    primal_out, vjp_fn = nanofn.vjp(p.fn, *p.xs) if vjp is None else vjp(p.xs)
    primal_out = [_f64(y) for y in primal_out]
    _check_primal(settings, p, "VJP", primal_out, reference)
    cotangents = [_random(settings.rng, y.shape, dtype)
                  for y, dtype in zip(reference, p.out_dtypes)]
    cts = [_f64(c) for c in vjp_fn(list(cotangents))]
    _check_shapes(settings, p, "VJP", "cotangent", p.in_names, cts, p.xs)
    us = [_f64(u) for u in cotangents]
    vs = [_f64(t) for t in fd.tangents]
    expected = _inner(us, fd.jv)          # <u, J v> by finite differences
    actual = _inner(cts, vs)              # <J^T u, v> by reverse mode
    # The elementwise tolerance of J v, summed with weights |u|, bounds the error of <u, J v>.
    tol = sum(np.sum(np.abs(u) * (settings.atol + noise)) for u, noise in zip(us, fd.noise))
    tol += settings.rtol * max(_inner([np.abs(u) for u in us], [np.abs(j) for j in fd.jv]),
                               _inner([np.abs(c) for c in cts], [np.abs(v) for v in vs]))
    if abs(actual - expected) <= tol or actual == expected:
        return cotangents
    body = (f"<u, J v> = {_fmt(expected)} by central finite differences, but <J^T u, v> = "
            f"{_fmt(actual)} by reverse mode,\n  for random u and v: |error| "
            f"{_fmt(abs(actual - expected))} > tolerance {_fmt(tol)}.\n"
            + _localise_vjp_error(settings, p, us, cts))
    _fail(settings, p, "VJP", body)


def _localise_vjp_error(settings, p, us, cts):
    """Find the input whose cotangent is wrong, and the worst element when it is small."""
    eps, worst, worst_ratio = settings.eps, None, -1.0
    for k, x in enumerate(p.xs):
        v = [np.zeros(np.shape(y)) for y in p.xs]
        v[k] = _random(settings.rng, np.shape(x), x.dtype)
        fd = _FiniteDifference(p, v, eps)
        vk = _f64(fd.tangents[k])
        expected, actual = _inner(us, fd.jv), _inner([cts[k]], [vk])
        tol = settings.atol * sum(np.sum(np.abs(u)) for u in us) + settings.rtol * abs(expected)
        ratio = abs(actual - expected) / tol if tol > 0 else np.inf
        if ratio > worst_ratio:
            worst, worst_ratio = k, ratio
    name = p.in_names[worst]
    x = p.xs[worst]
    if x.size > _MAX_ELEMENTS_TO_LOCALISE:
        return (f"The largest error is in the cotangent for input {name} (shape {x.shape}); it "
                f"has more than {_MAX_ELEMENTS_TO_LOCALISE} elements, so it was not checked "
                "element by element.")
    # J^T u for this input, one element at a time, by central differences of <u, f(x)>.
    # For a complex input, the cotangent is d/d(real part) - i d/d(imaginary part).
    numeric = np.zeros(x.shape, np.complex128 if x.dtype.kind == "c" else np.float64)
    for index in np.ndindex(*x.shape):
        for direction in ((1.0, 1j) if x.dtype.kind == "c" else (1.0,)):
            v = [np.zeros(np.shape(y), y.dtype) for y in p.xs]
            v[worst][index] = direction
            fd = _FiniteDifference(p, v, eps)
            step = _f64(fd.tangents[worst])[index] / direction
            numeric[index] += np.conj(direction) * _inner(us, fd.jv) / float(np.real(step))
    tol = settings.atol + settings.rtol * np.abs(numeric)
    report = _elementwise_report(f"cotangent for input {name}", numeric, cts[worst], tol,
                                 "expected (finite differences)", "actual (VJP)")
    return report or (f"The largest error is in the cotangent for input {name} (shape "
                      f"{x.shape}), though no single element of it is out of tolerance.")


def _check(settings, p, order, modes):
    reference = p.evaluate_point()
    tangents = _random_like(settings.rng, p.xs)
    fd = _FiniteDifference(p, tangents, settings.eps)
    if "fwd" in modes:
        _check_jvp(settings, p, fd, reference)
    cotangents = _check_vjp(settings, p, fd, reference) if "rev" in modes else None
    if order > 1:
        if "fwd" in modes:
            _check(settings, _jvp_problem(p, list(fd.tangents)), order - 1, modes)
        if "rev" in modes:
            _check(settings, _vjp_problem(p, cotangents), order - 1, modes)


def check_grads(f, args, order, modes=("fwd", "rev"), atol=None, rtol=None, eps=None):
    """Check the derivatives of ``f`` at ``args`` against finite differences.

    Mirrors ``jax.test_util.check_grads``. Forward mode ("fwd") compares
    ``nanofn.jvp(f, args, v)`` with a central difference
    ``(f(x + eps v) - f(x - eps v)) / (2 eps)`` along a random tangent ``v``, element by
    element. Reverse mode ("rev") checks ``nanofn.vjp`` through the identity
    ``<u, J v> == <J^T u, v>`` for random ``u`` and ``v``, with ``J v`` from the same
    central difference. Both also check that the primal output equals ``f(*args)``.
    With ``order > 1`` the JVP function ``(x, v) -> (f(x), J v)`` and the VJP function
    ``(x, u) -> J^T u`` are checked in turn, recursively, in every mode.

    Random directions come from ``numpy.random.default_rng(0)``, so a failing check fails
    the same way on every run. Comparisons are made in float64 (complex128 for complex
    values). Integer and boolean leaves of ``args`` are held fixed, and integer leaves of
    the output are ignored. Complex inputs are perturbed in random complex directions, so
    their real and imaginary parts are both checked; the reverse-mode identity uses the
    pairing ``Re(sum(u * v))`` of JAX's convention.

    Args:
      f: the function to check, called as ``f(*args)``. Its inputs and output may be
        pytrees of arrays.
      args: tuple of arguments (pytrees of arrays or Python scalars).
      order: the highest order of derivatives to check (1: first derivatives; 2: also the
        derivatives of the JVP and VJP functions).
      modes: which modes to check: ``"fwd"`` (JVP) and/or ``"rev"`` (VJP).
      atol: absolute tolerance, a number or a ``{dtype: number}`` dict. Defaults by the least
        precise float dtype among inputs and outputs: 1e-5 for float64, 2e-3 for float32.
      rtol: relative tolerance, as ``atol``; same defaults.
      eps: finite-difference step, as ``atol``. Defaults: 1e-4 for float64, 1e-3 for float32.

    Returns:
      None.

    Raises:
      AssertionError: when a derivative disagrees with finite differences. The message names
        the mode (``JVP``/``VJP``, e.g. ``JVP of VJP`` at order 2), the order, the output or
        input at fault with the index of its largest error, the expected (finite-difference)
        and actual values, and the tolerance.

    Example:
      >>> import numpy as np
      >>> import nanofn, nanofn.numpy as jnp
      >>> from nanofn.testing import check_grads
      >>> x = np.array([0.5, -1.0, 2.0])
      >>> check_grads(lambda x: jnp.sum(jnp.sin(x) * x), (x,), order=2)
      >>> try:
      ...     check_grads(lambda x: jnp.sin(nanofn.lax.stop_gradient(x)), (x,), order=1)
      ... except AssertionError as e:
      ...     print(str(e).splitlines()[0])
      check_grads: JVP check failed at order 1.
    """
    if isinstance(modes, str):
        modes = (modes,)
    unknown = [m for m in modes if m not in ("fwd", "rev")]
    if unknown or not modes:
        raise ValueError(f"check_grads: modes must be a non-empty subset of ('fwd', 'rev'), "
                         f"got {tuple(modes)!r}.")
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"check_grads: order must be an integer >= 1, got {order!r}.")
    if not isinstance(args, (tuple, list)):
        raise TypeError(f"check_grads: args must be a tuple of arguments, got "
                        f"{type(args).__name__}; to check f(x) write check_grads(f, (x,), ...).")
    p = _flatten_problem(f, tuple(args))
    p.evaluate_point()
    dtype = _least_precise([x.dtype for x in p.xs] + p.out_dtypes)
    settings = _Settings(dtype, eps, atol, rtol, np.random.default_rng(_SEED))
    _check(settings, p, int(order), tuple(modes))


def _user_rule_problem(name, f, args, atol, rtol, eps):
    """The flat problem of `f` at `args`, its settings, and a way to call a user's rule on
    flat float leaves: `rebuild(xs, fill)` gives the args pytree with the float leaves `xs`
    and every other leaf from `fill(leaf)`."""
    if not isinstance(args, (tuple, list)):
        raise TypeError(f"{name}: args must be a tuple of arguments, got "
                        f"{type(args).__name__}; to check f(x) write {name}(f, rule, (x,)).")
    args = tuple(args)
    p = _flatten_problem(f, args)
    p.evaluate_point()
    dtype = _least_precise([x.dtype for x in p.xs] + p.out_dtypes)
    settings = _Settings(dtype, eps, atol, rtol, np.random.default_rng(_SEED))
    leaves, treedef = tree_util.tree_flatten(args)
    diff = [i for i, leaf in enumerate(leaves) if _is_float(leaf)]

    def rebuild(xs, fill):
        full = [fill(leaf) for leaf in leaves]
        for i, x in zip(diff, xs):
            full[i] = x
        return tree_util.tree_unflatten(treedef, full)
    return p, settings, rebuild, diff


def _zeros_of(leaf):
    return np.zeros(np.shape(leaf), _leaf_dtype(leaf))


def _float_leaves(tree):
    return [y for y in tree_util.tree_leaves(tree) if _is_float(y)]


def _with_message(err_msg, check, *args):
    try:
        check(*args)
    except AssertionError as e:
        if not err_msg:
            raise
        raise AssertionError(f"{err_msg}\n{e}") from None


def check_jvp(f, f_jvp, args, atol=None, rtol=None, eps=None, err_msg=""):
    """Check a JVP function ``f_jvp(primals, tangents) -> (f(primals), J tangents)`` of ``f``
    against central finite differences of ``f`` along a random tangent, as
    ``jax.test_util.check_jvp``; its primal output must equal ``f(*args)``.

    Args:
      f: the function, called as ``f(*args)``.
      f_jvp: the JVP function to check, e.g. ``functools.partial(nanofn.jvp, f)`` or a
        hand-written rule; called with the tuple of arguments and a tuple of tangents of
        the same structure (integer and boolean leaves get zero tangents of their dtype).
      args: tuple of arguments (pytrees of arrays).
      atol, rtol, eps: as in ``check_grads``.
      err_msg: text put before the failure message.

    Raises:
      AssertionError: when the tangent or the primal output disagrees.

    Example:
      >>> import functools, numpy as np
      >>> import nanofn, nanofn.numpy as jnp
      >>> from nanofn.testing import check_jvp
      >>> check_jvp(jnp.sin, functools.partial(nanofn.jvp, jnp.sin), (np.array([0.3, 1.0]),))
      >>> bad = lambda primals, tangents: (jnp.sin(*primals), jnp.sin(*tangents))
      >>> try:
      ...     check_jvp(jnp.sin, bad, (np.array([0.3, 1.0]),))
      ... except AssertionError as e:
      ...     print(str(e).splitlines()[0])
      check_grads: JVP check failed at order 1.
    """
    p, settings, rebuild, _ = _user_rule_problem("check_jvp", f, args, atol, rtol, eps)

    def jvp(xs, ts):
        primal_out, tangent_out = f_jvp(tuple(rebuild(xs, np.asarray)),
                                        tuple(rebuild(ts, _zeros_of)))
        outs = tree_util.tree_leaves(primal_out)
        keep = [i for i, y in enumerate(outs) if _is_float(y)]
        touts = tree_util.tree_leaves(tangent_out)
        if len(touts) != len(outs):
            _fail(settings, p, "JVP", f"f_jvp returned {len(touts)} tangent leaves for "
                                      f"{len(outs)} primal output leaves.")
        return [_f64(outs[i]) for i in keep], [_f64(touts[i]) for i in keep]

    reference = p.evaluate_point()
    fd = _FiniteDifference(p, _random_like(settings.rng, p.xs), settings.eps)
    _with_message(err_msg, _check_jvp, settings, p, fd, reference, jvp)


def check_vjp(f, f_vjp, args, atol=None, rtol=None, eps=None, err_msg=""):
    """Check a VJP function ``f_vjp(*args) -> (f(*args), pullback)`` of ``f`` through the
    identity ``<u, J v> == <J^T u, v>`` for random ``u`` and ``v``, with ``J v`` from central
    finite differences of ``f``, as ``jax.test_util.check_vjp``; its primal output must
    equal ``f(*args)``.

    Args:
      f: the function, called as ``f(*args)``.
      f_vjp: the VJP function to check, e.g. ``functools.partial(nanofn.vjp, f)``; its
        pullback takes a cotangent shaped like ``f``'s output (integer leaves get zeros) and
        returns a tuple of cotangents, one per argument.
      args: tuple of arguments (pytrees of arrays).
      atol, rtol, eps: as in ``check_grads``.
      err_msg: text put before the failure message.

    Raises:
      AssertionError: when the pullback or the primal output disagrees.

    Example:
      >>> import functools, numpy as np
      >>> import nanofn, nanofn.numpy as jnp
      >>> from nanofn.testing import check_vjp
      >>> f = lambda x, y: jnp.sum(x * y)
      >>> check_vjp(f, functools.partial(nanofn.vjp, f), (np.ones(3), np.arange(3.0)))
    """
    p, settings, rebuild, diff = _user_rule_problem("check_vjp", f, args, atol, rtol, eps)

    def vjp(xs):
        primal_out, pullback = f_vjp(*rebuild(xs, np.asarray))
        outs, out_tree = tree_util.tree_flatten(primal_out)
        keep = [i for i, y in enumerate(outs) if _is_float(y)]

        def back(cts):
            full = [_zeros_of(y) for y in outs]
            for i, c in zip(keep, cts):
                full[i] = c
            ct_args = tree_util.tree_leaves(pullback(tree_util.tree_unflatten(out_tree, full)))
            if len(ct_args) != len(tree_util.tree_leaves(tuple(args))):
                _fail(settings, p, "VJP", f"the pullback returned {len(ct_args)} cotangent "
                                          "leaves; expected one per leaf of args.")
            return [ct_args[i] for i in diff]
        return [outs[i] for i in keep], back

    reference = p.evaluate_point()
    fd = _FiniteDifference(p, _random_like(settings.rng, p.xs), settings.eps)
    _with_message(err_msg, _check_vjp, settings, p, fd, reference, vjp)


# --- comparing pytrees -------------------------------------------------------------------


def assert_trees_allclose(actual, desired, rtol=1e-7, atol=0.0, err_msg=""):
    """Assert that two pytrees have the same structure and elementwise-close leaves.

    Leaves are compared as float64 arrays with ``|actual - desired| <= atol + rtol *
    |desired|`` (as ``numpy.testing.assert_allclose``); NaNs in the same place are equal.

    Args:
      actual: a pytree of arrays or scalars.
      desired: a pytree with the same structure.
      rtol: relative tolerance.
      atol: absolute tolerance.
      err_msg: text prepended to the failure message.

    Returns:
      None.

    Raises:
      AssertionError: when the structures differ, a leaf's shape differs, or a leaf is not
        close. The message names the leaf's key path, the index of its largest error and
        the error's size.

    Example:
      >>> import numpy as np
      >>> from nanofn.testing import assert_trees_allclose
      >>> assert_trees_allclose({"w": np.ones(2)}, {"w": np.ones(2) + 1e-9}, rtol=1e-6)
      >>> try:
      ...     assert_trees_allclose({"w": np.ones(2)}, {"w": np.array([1.0, 1.5])})
      ... except AssertionError as e:
      ...     print(str(e).splitlines()[0])
      leaf ['w'] (shape (2,)): 1 of 2 elements out of tolerance;
    """
    prefix = f"{err_msg}\n" if err_msg else ""
    a_leaves, a_tree = tree_util.tree_flatten_with_path(actual)
    d_leaves, d_tree = tree_util.tree_flatten_with_path(desired)
    if a_tree != d_tree:
        raise AssertionError(f"{prefix}pytree structures differ:\n  actual:  {a_tree}\n"
                             f"  desired: {d_tree}")
    for (path, a), (_, d) in zip(a_leaves, d_leaves):
        name = tree_util.keystr(path) or "(root)"
        a, d = _f64(a), _f64(d)
        if a.shape != d.shape:
            raise AssertionError(f"{prefix}leaf {name}: actual shape {a.shape} != desired "
                                 f"shape {d.shape}")
        report = _elementwise_report(f"leaf {name}", d, a, atol + rtol * np.abs(d),
                                     "desired", "actual")
        if report:
            raise AssertionError(prefix + report)
