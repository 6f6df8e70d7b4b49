"""Optimizers on complex parameters, against optax's trajectories.

optax treats a complex parameter as a pair of real ones: wherever it forms a second
moment, a sum of squares or a norm it uses the squared magnitude ``|g|^2 = real(conj(g)
g)``, and inner products conjugate their first argument. The cases (and the parameters
and the loss) live in tools/reference/optax_complex_cases.py; record_optax_complex.py ran
them with JAX and optax, in single and double precision, into
tests/reference/optax_complex.npz. Here nanofn runs the same cases, eagerly and with the
update under ``nanofn.jit``, and must follow optax's parameters step by step, keep the
optimizer state in optax's dtypes, and refuse what optax refuses.
"""

from __future__ import annotations

import builtins
import os

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp
from nanofn import optim, tree_util
from nanofn.optim import _fused
from nanofn.optim._base import abs_sq

import optax_complex_cases as cases  # tools/reference, put on the path by conftest

_REF = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reference")
with np.load(os.path.join(_REF, "optax_complex.npz")) as _npz:  # keys: see the recorder
    OPTAX = dict(_npz)

DTYPES = {"float32": (np.complex64, np.float32), "float64": (np.complex128, np.float64)}
# Five steps of rounding in XLA's order against numpy's: a few float32 ulps, grown by the
# steps (relative to the largest entry of each leaf).
TOLERANCE = {"float32": 2e-5, "float64": 1e-11}
# A difference that real parameters share: optax's adafactor computes its decay rate in
# float32 even with x64 on. In single precision the zoom line search of `lbfgs` turns
# rounding into other steps: on these parameters its first search fails in optax too (it
# starts from the slope Re(vdot(u, g)) but goes on with Re(sum(u * g))), and nanofn does
# the same, so that case is left out.
LOOSER = {(n, "float64"): 1e-8 for n in ("adafactor", "adafactor_factored",
                                          "adafactor_momentum")}
# GaLore takes the SVD of the gradient in float32 in optax too, even with x64 on; numpy's
# LAPACK and the one XLA calls round that float32 SVD differently (by an ulp), which
# reaches the float64 parameters at ~1e-8, real parameters too. With the float32 SVD from
# the same LAPACK as XLA, nanofn follows optax to 1e-11, so only the SVD is different.
# not generated: each of these is checked in the other precision
SKIPPED = {("lbfgs", "float32"), ("contrib.galore", "float64")}


def _as_tree(vector, dtypes, like):
    """A recorded flat vector (leaves concatenated) as a tree like ``like``."""
    leaves, treedef = tree_util.tree_flatten(like)
    out, start = [], 0
    for leaf, dtype in zip(leaves, dtypes):
        size = int(np.size(leaf))
        x = vector[start:start + size].reshape(np.shape(leaf))
        out.append((x if np.dtype(dtype).kind == "c" else x.real).astype(dtype))
        start += size
    assert start == len(vector)
    return tree_util.tree_unflatten(treedef, out)


def recorded_case(name, precision):
    """optax's ``(trajectory, first gradients, state dtypes)`` for a case."""
    row = list(OPTAX[f"{precision}:cases"]).index(name)
    like = cases.make_params(np, *DTYPES[precision])
    dtypes = list(OPTAX[f"{precision}:leaf_dtypes"][row])
    grad_dtypes = [np.asarray(x).dtype for x in tree_util.tree_leaves(like)]
    trajectory = [_as_tree(v, dtypes, like) for v in OPTAX[f"{precision}:trajectories"][row]]
    grads0 = _as_tree(OPTAX[f"{precision}:grads0"][row], grad_dtypes, like)
    state_dtypes = [d for d in str(OPTAX[f"{precision}:state_dtypes"][row]).split(",") if d]
    return trajectory, grads0, state_dtypes


def recorded_tree_function(name, precision):
    key = f"{precision}:tree_functions:{name}"
    if key in OPTAX:
        return OPTAX[key]
    return {k[len(key) + 1:]: v for k, v in OPTAX.items() if k.startswith(key + ":")}


def assert_close(got, want, tol, what):
    if isinstance(want, dict):
        assert sorted(got) == sorted(want), what
        for k in want:
            assert_close(got[k], want[k], tol, f"{what}[{k!r}]")
        return
    got = np.asarray(got)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, optax's {want.dtype}"
    scale = max(float(np.max(np.abs(want), initial=0.0)), 1.0)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


def update_kwargs(extras, value, grads, loss):
    if extras is None:
        return {}
    if extras == "value":
        return {"value": value}
    return {"value": value, "grad": grads, "value_fn": loss}


def run_case(name, precision, jit):
    make, extras = cases.CASES[name]
    params = cases.make_params(jnp, *DTYPES[precision])
    loss = cases.make_loss(jnp)
    tx = make(optim)
    state = tx.init(params)

    def step(grads, state, params, value):
        return tx.update(grads, state, params, **update_kwargs(extras, value, grads, loss))

    step = nanofn.jit(step) if jit else step
    trajectory, grads0 = [], None
    for _ in range(cases.STEPS):
        value, grads = nanofn.value_and_grad(loss)(params)
        grads0 = grads if grads0 is None else grads0
        updates, state = step(grads, state, params, value)
        params = optim.apply_updates(params, updates)
        trajectory.append(params)
    return trajectory, grads0, state


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name,precision", [(n, p) for n in sorted(cases.CASES)
                                            for p in sorted(DTYPES) if (n, p) not in SKIPPED])
def test_trajectory_matches_optax(name, precision, jit):
    want_trajectory, want_grads0, want_state_dtypes = recorded_case(name, precision)
    trajectory, grads0, state = run_case(name, precision, jit)
    tol = LOOSER.get((name, precision), TOLERANCE[precision])
    assert_close(grads0, want_grads0, TOLERANCE[precision], f"{name}: first gradients")
    assert len(trajectory) == len(want_trajectory)
    for i, (got, want) in enumerate(zip(trajectory, want_trajectory)):
        assert_close(got, want, tol, f"{name}: params after step {i + 1}")
    # the float and complex leaves of the state (x64 widens ints)
    dtypes = sorted(np.asarray(x).dtype.name for x in tree_util.tree_leaves(state))
    assert ([d for d in dtypes if d[0] in "fc"]
            == [d for d in want_state_dtypes if d[0] in "fc"]), f"{name}: state dtypes"


@pytest.mark.parametrize("precision", sorted(DTYPES))
@pytest.mark.parametrize("name", sorted(cases.ERROR_CASES))
def test_refuses_complex_params_as_optax(name, precision):
    row = list(OPTAX[f"{precision}:error_cases"]).index(name)
    error = str(OPTAX[f"{precision}:errors"][row])
    params = cases.make_params(jnp, *DTYPES[precision])
    tx = cases.ERROR_CASES[name](optim)
    assert error, f"optax accepted {name} on complex parameters"
    with pytest.raises(getattr(builtins, error), match="complex"):
        tx.update(params, tx.init(params), params)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("precision", sorted(DTYPES))
@pytest.mark.parametrize("name", sorted(cases.TREE_FUNCTIONS))
def test_tree_function_matches_optax(name, precision, jit):
    f = cases.TREE_FUNCTIONS[name]
    params = cases.make_params(jnp, *DTYPES[precision])
    fn = (lambda t: f(optim, jnp, t))
    got = (nanofn.jit(fn) if jit else fn)(params)
    assert_close(got, recorded_tree_function(name, precision), TOLERANCE[precision], name)


# --- nanofn's own checks ---------------------------------------------------------------


def test_abs_sq_is_one_multiplication_for_real_arrays():
    x = np.array([-1.5, 0.25, 3.0], dtype=np.float32)
    got = np.asarray(abs_sq(jnp.asarray(x)))
    assert got.dtype == np.float32 and np.array_equal(got, x * x)  # bit for bit
    jaxpr = str(nanofn.make_jaxpr(abs_sq)(jnp.asarray(x)))
    assert jaxpr.count(" = ") == 1 and "mul" in jaxpr
    z = np.array([3 + 4j, -1j], dtype=np.complex64)
    got = np.asarray(nanofn.jit(abs_sq)(jnp.asarray(z)))
    assert got.dtype == np.float32 and got.tolist() == [25.0, 1.0]


def test_complex_second_moments_are_real_valued_in_the_params_dtype():
    params = cases.make_params(jnp, np.complex64, np.float32)
    grads = nanofn.grad(cases.make_loss(jnp))(params)
    for tx in (optim.scale_by_adam(), optim.scale_by_amsgrad(), optim.scale_by_rms(),
               optim.scale_by_rss(), optim.scale_by_belief(), optim.scale_by_yogi()):
        state = tx.init(params)
        for _ in range(2):
            _, state = tx.update(grads, state, params)
        moments = [s for s in state if isinstance(s, dict)]
        for leaf in (m["w"] for m in moments):
            assert leaf.dtype == np.complex64
        second = moments[-1]["k"]  # nu / sum_of_squares / nu_max: |g|^2 based
        assert np.all(np.imag(np.asarray(second)) == 0) and np.all(np.real(second) > 0)


def test_fused_adam_leaves_complex_trees_to_the_plain_code():
    z = jnp.zeros(3, dtype=jnp.complex64)
    r = jnp.zeros(3, dtype=jnp.float32)
    assert not _fused.use_adam_update([(z, z, z)], 0.9, 0.999, 1e-8, 0.0)
    assert not _fused.use_adam_update([(r, r, r), (z, z, z)], 0.9, 0.999, 1e-8, 0.0)
    assert not _fused.use_momentum_update([(z, z)], 0.9)
    # Adam on a mixed tree, eagerly (fused path considered) and under jit (plain code)
    params = cases.make_params(jnp, np.complex64, np.float32)
    grads = nanofn.grad(cases.make_loss(jnp))(params)
    tx = optim.adam(0.1)
    eager, _ = tx.update(grads, tx.init(params), params)
    jitted, _ = nanofn.jit(tx.update)(grads, tx.init(params), params)
    for k in params:
        np.testing.assert_allclose(np.asarray(eager[k]), np.asarray(jitted[k]), rtol=1e-6)
    np.testing.assert_allclose(np.abs(np.asarray(eager["w"])), 0.1, rtol=1e-5)  # |m|/sqrt(v)


def test_skip_large_updates_measures_magnitudes():
    # optax squares the entries here (a complex "norm"); nanofn uses |g|^2, as global_norm.
    params = cases.make_params(jnp, np.complex128, np.float64)
    skip, info = optim.skip_large_updates(params, 0, params, 30.0)
    want = sum(np.sum(np.abs(np.asarray(x)) ** 2) for x in params.values())
    assert info["norm_squared"].dtype == np.float64
    np.testing.assert_allclose(float(info["norm_squared"]), want, rtol=1e-12)
    assert bool(skip) == (want >= 30.0)
    np.testing.assert_allclose(float(optim.global_norm(params)) ** 2, want, rtol=1e-12)


def test_multi_steps_keeps_imaginary_parts():
    # optax 0.2.8 stores MultiSteps' accumulators as float32, dropping imaginary parts;
    # nanofn keeps the parameters' dtype, so two mini-steps of g equal one step of g.
    params = cases.make_params(jnp, np.complex64, np.float32)
    grads = nanofn.grad(cases.make_loss(jnp))(params)
    ms = optim.MultiSteps(optim.sgd(0.1), every_k_schedule=2)
    state = ms.init(params)
    _, state = ms.update(grads, state, params)
    updates, state = ms.update(grads, state, params)
    for k in params:
        np.testing.assert_allclose(np.asarray(updates[k]), -0.1 * np.asarray(grads[k]),
                                   rtol=1e-6)
