"""nanofn.nn against values recorded from JAX 0.10.2's jax.nn and jax.nn.initializers
(tools/reference/record_jax_nn.py writes tests/nn/data/jax_nn_reference.npz; no JAX needed
here). Each case is a behaviour where nanofn once differed from JAX."""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn import nn
from nanofn.nn import initializers as I

REF = np.load(os.path.join(os.path.dirname(__file__), "data", "jax_nn_reference.npz"))
TOL = {"float32": {"rtol": 2e-6, "atol": 1e-6}, "float64": {"rtol": 1e-12, "atol": 1e-13}}


def _same(ours, ref, rtol=0.0, atol=0.0):
    ours = np.asarray(ours)
    assert ours.dtype == ref.dtype, (ours.dtype, ref.dtype)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol, equal_nan=True)


def _fd(f, x, eps=1e-6):
    """Central finite differences of a scalar function of a float64 array."""
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (float(f(x + e)) - float(f(x - e))) / (2 * eps)
    return g


# --------------------------------------------------------------- names and signatures

def test_every_jax_nn_name_exists():
    names = ["celu", "dot_product_attention", "elu", "gelu", "get_scaled_dot_general_config",
             "glu", "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh", "identity",
             "initializers", "leaky_relu", "log1mexp", "log_sigmoid", "log_softmax",
             "logmeanexp", "logsumexp", "mish", "one_hot", "relu", "relu6",
             "scaled_dot_general", "scaled_matmul", "selu", "sigmoid", "silu", "soft_sign",
             "softmax", "softplus", "sparse_plus", "sparse_sigmoid", "squareplus",
             "standardize", "swish", "tanh"]
    assert [n for n in names if not hasattr(nn, n)] == []
    inits = ["Initializer", "constant", "delta_orthogonal", "glorot_normal", "glorot_uniform",
             "he_normal", "he_uniform", "kaiming_normal", "kaiming_uniform", "lecun_normal",
             "lecun_uniform", "normal", "ones", "orthogonal", "truncated_normal", "uniform",
             "variance_scaling", "xavier_normal", "xavier_uniform", "zeros"]
    assert [n for n in inits if not hasattr(I, n)] == []


def test_initializer_defaults_are_jax_s():
    for f in (I.constant, I.uniform, I.normal, I.truncated_normal, I.orthogonal,
              I.delta_orthogonal, I.glorot_normal, I.variance_scaling):
        assert inspect.signature(f).parameters["dtype"].default is None, f
    for f in (I.zeros, I.ones, I.normal()):
        assert list(inspect.signature(f).parameters)[-2:] == ["dtype", "out_sharding"]
    assert inspect.signature(nn.standardize).parameters["algorithm"].default == "fast"


# --------------------------------------------------------------- elementwise

@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_relu6_and_log1mexp(dt):
    x = fnp.asarray(REF["special"], dt)
    _same(nn.relu6(x), REF[f"relu6/{dt}/value"])
    _same(nanofn.vmap(nanofn.grad(nn.relu6))(x), REF[f"relu6/{dt}/grad"])
    _same(nn.log1mexp(x), REF[f"log1mexp/{dt}/value"], **TOL[dt])
    # JAX's derivative rule 1 / expm1(x): finite (or +-inf) where the value is nan or -inf
    _same(nanofn.vmap(nanofn.grad(nn.log1mexp))(x), REF[f"log1mexp/{dt}/grad"], **TOL[dt])


def test_relu6_of_integers_is_a_float():
    # JAX's minimum(maximum(x, 0), 6.) promotes integers to the default float
    ref = REF["relu6/int32/value"]  # recorded under x64: float64
    _same(nn.relu6(fnp.asarray(REF["relu6/int32/input"])), ref.astype(np.float32))
    _same(nn.relu6(5), np.asarray(5.0, np.float32))


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("alpha", [1.0, 0.5, 2.0])
def test_celu_values_and_derivatives(dt, alpha):
    x = fnp.asarray(REF["special"], dt)
    f = lambda v: nn.celu(v, alpha)
    _same(f(x), REF[f"celu/{alpha}/{dt}/value"], **TOL[dt])
    _same(nanofn.vmap(nanofn.grad(f))(x), REF[f"celu/{alpha}/{dt}/grad"], **TOL[dt])
    g2 = np.asarray(nanofn.vmap(nanofn.grad(nanofn.grad(f)))(x))
    ref = REF[f"celu/{alpha}/{dt}/grad2"]
    at0 = np.asarray(REF["special"]) == 0
    # a documented difference (tests/numpy/test_kinks.py): at 0, nanofn gives the left
    # branch's 1/alpha, JAX 1/(4 alpha) (the product of max's and min's halves at the tie)
    np.testing.assert_allclose(g2[at0], 1.0 / alpha)
    np.testing.assert_allclose(ref[at0], 0.25 / alpha)
    np.testing.assert_allclose(g2[~at0], ref[~at0], equal_nan=True, **TOL[dt])


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(1e-3, 30.0), min_size=1, max_size=6))
def test_log1mexp_gradient_matches_finite_differences(xs):
    x = np.asarray(xs, np.float64)
    g = nanofn.grad(lambda v: fnp.sum(nn.log1mexp(v)))(x)
    h = 1e-6 * x  # elementwise: every element moved at once, by a step relative to it
    fd = (np.asarray(nn.log1mexp(x + h)) - np.asarray(nn.log1mexp(x - h))) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(g, 1.0 / np.expm1(x), rtol=1e-12)


# --------------------------------------------------------------- standardize

@pytest.mark.parametrize("alg", ["fast", "stable"])
@pytest.mark.parametrize("ax_name,ax", [("last", -1), ("0", 0), ("02", (0, 2)), ("all", None)])
@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_standardize(alg, ax_name, ax, dt):
    x = fnp.asarray(REF["standardize/x"], dt)
    tol = {"rtol": 2e-5, "atol": 2e-5} if dt == "float32" else {"rtol": 1e-9, "atol": 1e-9}
    _same(nn.standardize(x, axis=ax, algorithm=alg), REF[f"standardize/{alg}/{ax_name}/{dt}"],
          **tol)
    mask = fnp.asarray(REF["standardize/mask"])
    if dt == "float32":  # slices with one kept element amplify float32 rounding
        tol = {"rtol": 2e-4, "atol": 2e-4}
    _same(nn.standardize(x, axis=ax, algorithm=alg, where=mask),
          REF[f"standardize/{alg}/{ax_name}/{dt}/where"], **tol)
    if dt == "float64":
        f = lambda v: fnp.sum(fnp.sin(nn.standardize(v, axis=ax, algorithm=alg)))
        _same(nanofn.grad(f)(x), REF[f"standardize/{alg}/{ax_name}/grad"], rtol=1e-9, atol=1e-9)


def test_standardize_default_is_fast_and_bad_algorithm_raises():
    x = fnp.asarray(REF["standardize/x"])
    _same(nn.standardize(x), REF["standardize/default/last/float64"], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="Unknown algorithm"):
        nn.standardize(x, algorithm="exact")
    # Python numbers for mean and variance take x's dtype, as JAX's weak types do
    x32 = fnp.asarray(x, "float32")
    want = str(REF["standardize/scalars/dtype"])
    assert str(nn.standardize(x32, mean=0.5, variance=2.0).dtype) == want
    with nanofn.enable_x64(True):
        assert nn.standardize(x32, mean=0.5, variance=2.0).dtype == np.float32


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 6), st.integers(1, 4), st.sampled_from(["fast", "stable"]))
def test_standardize_gradient_matches_finite_differences(n, m, alg):
    x = np.random.default_rng(n * 10 + m).normal(size=(m, n))
    w = np.random.default_rng(1).normal(size=(m, n))
    f = lambda v: fnp.sum(nn.standardize(v, algorithm=alg) * w)
    np.testing.assert_allclose(nanofn.grad(f)(x), _fd(f, x), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------- logsumexp with signs

@pytest.mark.parametrize("ax_name,ax", [("last", -1), ("0", 0), ("all", None)])
def test_logsumexp_with_negative_weights(ax_name, ax):
    a, b = fnp.asarray(REF["lse/a"]), fnp.asarray(REF["lse/b"])
    _same(nn.logsumexp(a, axis=ax, b=b), REF[f"lse/{ax_name}/value"], rtol=1e-12, atol=1e-12)
    out, sign = nn.logsumexp(a, axis=ax, b=b, return_sign=True)
    _same(out, REF[f"lse/{ax_name}/sign_value"], rtol=1e-12, atol=1e-12)
    _same(sign, REF[f"lse/{ax_name}/sign"])
    # where the weighted sum is negative the value is nan and no gradient flows (JAX's)
    f = lambda u, w: fnp.sum(fnp.nan_to_num(nn.logsumexp(u, axis=ax, b=w)))
    ga, gb = nanofn.grad(f, argnums=(0, 1))(a, b)
    _same(ga, REF[f"lse/{ax_name}/grad_a"], rtol=1e-10, atol=1e-12)
    _same(gb, REF[f"lse/{ax_name}/grad_b"], rtol=1e-10, atol=1e-12)


def test_logsumexp_weight_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(3, 4)), rng.random((3, 4)) + 0.1
    f = lambda w: fnp.sum(nn.logsumexp(a, axis=-1, b=w))
    np.testing.assert_allclose(nanofn.grad(f)(b), _fd(f, b), rtol=1e-6, atol=1e-8)
    g = lambda u: fnp.sum(nn.logsumexp(u, axis=-1, b=b))
    np.testing.assert_allclose(nanofn.grad(g)(a), _fd(g, a), rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------- masked softmax

@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_masked_softmax_special_values(dt):
    x, where = fnp.asarray(REF["softmax/x"], dt), fnp.asarray(REF["softmax/where"])
    # a slice holding nan or +inf is all nan, a fully masked slice all 0 (-inf for log)
    _same(nn.softmax(x, where=where), REF[f"softmax/{dt}/value"], **TOL[dt])
    _same(nn.log_softmax(x, where=where), REF[f"log_softmax/{dt}/value"], **TOL[dt])


@pytest.mark.parametrize("nm", ["softmax", "log_softmax"])
@pytest.mark.parametrize("ax_name,ax", [("last", -1), ("1", 1), ("02", (0, 2))])
def test_masked_softmax_values_and_gradients(nm, ax_name, ax):
    f = getattr(nn, nm)
    x, mask, ct = REF["softmax/fx"], REF["softmax/fmask"], REF["softmax/ct"]
    _same(f(fnp.asarray(x), axis=ax, where=fnp.asarray(mask)), REF[f"{nm}/f/{ax_name}/value"],
          rtol=1e-12, atol=1e-12)
    loss = lambda v: fnp.sum(fnp.where(mask, f(v, axis=ax, where=mask), 0.0) * ct)
    g = nanofn.grad(loss)(fnp.asarray(x))
    _same(g, REF[f"{nm}/f/{ax_name}/grad"], rtol=1e-10, atol=1e-12)
    if ax_name == "last":
        small = (slice(0, 2), slice(0, 2))  # finite differences on a few rows
        np.testing.assert_allclose(np.asarray(g)[small], _fd(loss, x)[small], rtol=1e-5, atol=1e-8)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_masked_softmax_agrees_with_the_unmasked_one_on_the_kept_entries(rows, cols, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, cols)) * 5
    mask = rng.random((rows, cols)) > 0.4
    p = np.asarray(nn.softmax(x, where=mask))
    lp = np.asarray(nn.log_softmax(x, where=mask))
    for r in range(rows):
        kept = mask[r]
        if not kept.any():
            assert (p[r] == 0).all() and (lp[r] == -np.inf).all()
            continue
        np.testing.assert_allclose(p[r, kept], np.asarray(nn.softmax(x[r, kept])), rtol=1e-12)
        np.testing.assert_allclose(lp[r, kept], np.asarray(nn.log_softmax(x[r, kept])),
                                   rtol=1e-12, atol=1e-12)
        assert (p[r, ~kept] == 0).all() and (lp[r, ~kept] == -np.inf).all()


# --------------------------------------------------------------- initializers

KEY = nanofn.random.key(7)
SHAPES = {"2d": (6, 5), "conv": (3, 3, 4, 8), "3d": (5, 2, 3)}


def _init_tol(dist, dt):
    # uniform draws are JAX's to the last bit; nanofn.random.normal's inverse error
    # function differs from XLA's by a few ulp
    if dist == "uniform":
        return {"rtol": 0, "atol": 0}
    return {"rtol": 2e-6, "atol": 1e-7} if dt == "float32" else {"rtol": 1e-14, "atol": 1e-15}


@pytest.mark.parametrize("sname", sorted(SHAPES))
@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg", "fan_geo_avg"])
@pytest.mark.parametrize("dist", ["truncated_normal", "normal", "uniform"])
def test_variance_scaling_values(sname, mode, dist):
    for dt in ("float32", "float64"):
        w = I.variance_scaling(1.5, mode, dist, dtype=dt)(KEY, SHAPES[sname])
        _same(w, REF[f"init/vs/{mode}/{dist}/{sname}/{dt}"], **_init_tol(dist, dt))


@pytest.mark.parametrize("cname,axes", [("seq_in", ((0, 1), -1, ())), ("batch", (-2, -1, 0)),
                                        ("seq_all", ((0,), (2,), (1,)))])
@pytest.mark.parametrize("dist", ["uniform", "normal"])
def test_variance_scaling_axis_sequences(cname, axes, dist):
    w = I.variance_scaling(2.0, "fan_avg", dist, *axes)(KEY, (3, 4, 5))
    _same(w, REF[f"init/axes/{cname}/{dist}"], **_init_tol(dist, "float32"))


def test_variance_scaling_fans_and_errors():
    w = I.variance_scaling(1.0, "fan_in", "uniform", in_axis=0, out_axis=0)(KEY, (7,))
    _same(w, REF["init/vs/1d_in_axis0"])
    with pytest.raises(ValueError, match="at least 2D"):
        I.variance_scaling(1.0, "fan_in", "uniform")(KEY, (7,))
    assert I.compute_fans((3, 3, 16, 32)) == (144.0, 288.0)
    assert I.compute_fans((2, 3, 4), in_axis=(0, 1), out_axis=-1) == (6.0, 4.0)
    # scale is not checked, as in JAX: 0 gives zeros
    assert not np.asarray(I.variance_scaling(0.0, "fan_in", "normal")(KEY, (3, 4))).any()


@pytest.mark.parametrize("nm,dist", [("glorot_normal", "n"), ("glorot_uniform", "uniform"),
                                     ("he_normal", "n"), ("he_uniform", "uniform"),
                                     ("lecun_normal", "n"), ("lecun_uniform", "uniform")])
def test_named_initializers(nm, dist):
    _same(getattr(I, nm)()(KEY, (6, 5)), REF[f"init/{nm}/float32"], **_init_tol(dist, "float32"))
    _same(getattr(I, nm)(dtype="float32")(KEY, (6, 5)), REF[f"init/{nm}/float32"],
          **_init_tol(dist, "float32"))
    # the default dtype is the default float: float64 under jax_enable_x64
    with nanofn.enable_x64(True):
        _same(getattr(I, nm)()(KEY, (6, 5)), REF[f"init/{nm}/default"],
              **_init_tol(dist, "float64"))


def test_simple_initializers():
    _same(I.uniform(3.0)(KEY, (4, 5)), REF["init/uniform/float32"])
    _same(I.uniform(3.0, dtype="float64")(KEY, (4, 5)), REF["init/uniform/float64"])
    _same(I.normal(0.5)(KEY, (4, 5)), REF["init/normal/float32"], **_init_tol("n", "float32"))
    _same(I.normal(0.5, dtype="float64")(KEY, (4, 5)), REF["init/normal/float64"],
          **_init_tol("n", "float64"))
    _same(I.truncated_normal(2.0, lower=-1.0, upper=0.5)(KEY, (50,)),
          REF["init/truncated_normal/float32"], **_init_tol("n", "float32"))
    _same(I.truncated_normal(2.0, dtype="float64")(KEY, (50,)),
          REF["init/truncated_normal/float64"], **_init_tol("n", "float64"))
    _same(I.constant(np.arange(3.0), dtype="float64")(KEY, (2, 3)), REF["init/constant/float64"])
    _same(I.constant(2, dtype="int32")(KEY, (2, 3)), REF["init/constant/int32"])
    assert I.zeros(KEY, (2, 3)).dtype == np.float32
    with nanofn.enable_x64(True):
        _same(I.zeros(KEY, (2, 3)), REF["init/zeros/default"])
        assert I.constant(1.0)(KEY, (2,)).dtype == np.float64
        assert I.zeros(KEY, (2,), out_sharding=None).dtype == np.float64


@pytest.mark.parametrize("sname,shape,col", [("45", (4, 5), -1), ("54", (5, 4), -1),
                                             ("324", (3, 2, 4), 0), ("3344", (3, 3, 4, 4), -1)])
@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_orthogonal_values(sname, shape, col, dt):
    w = I.orthogonal(2.0, column_axis=col, dtype=dt)(KEY, shape)
    tol = {"rtol": 2e-5, "atol": 2e-6} if dt == "float32" else {"rtol": 1e-12, "atol": 1e-13}
    _same(w, REF[f"init/orthogonal/{sname}/{dt}"], **tol)


def test_orthogonal_under_jit_and_zero_sizes():
    f = nanofn.jit(lambda k: I.orthogonal(2.0, dtype="float32")(k, (4, 5)))
    _same(f(KEY), REF["init/orthogonal/45/float32"], rtol=2e-5, atol=2e-6)
    assert not np.asarray(I.orthogonal()(KEY, (0, 3))).any()
    with pytest.raises(ValueError, match="2D"):
        I.orthogonal()(KEY, (3,))


@pytest.mark.parametrize("sname,shape", [("334", (3, 3, 4)), ("4423", (4, 4, 2, 3)),
                                         ("22223", (2, 2, 2, 2, 3))])
def test_delta_orthogonal_values(sname, shape):
    w = I.delta_orthogonal(dtype="float32")(KEY, shape)
    _same(w, REF[f"init/delta_orthogonal/{sname}"], rtol=2e-5, atol=2e-6)
    _same(nanofn.jit(lambda k: I.delta_orthogonal(dtype="float32")(k, shape))(KEY),
          REF[f"init/delta_orthogonal/{sname}"], rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("dist", ["uniform", "truncated_normal"])
def test_complex_variance_scaling(dist):
    w = I.variance_scaling(1.0, "fan_in", dist, dtype="complex64")(KEY, (4, 6))
    _same(w, REF[f"init/complex/{dist}"], rtol=2e-5, atol=2e-6)


# --------------------------------------------------------------- scaled matmul

def test_scaled_matmul_is_its_definition():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(2, 3, 8)), rng.normal(size=(2, 5, 8))
    sa, sb = rng.random((2, 3, 2)) + 0.5, rng.random((2, 5, 4)) + 0.5
    with pytest.raises(ValueError, match="the two scales must agree"):
        nn.scaled_matmul(a, b, sa, sb)  # the scales' contracting sizes differ
    sb = rng.random((2, 5, 2)) + 0.5
    out = nn.scaled_matmul(a, b, sa, sb)
    want = np.einsum("bmk,bnk->bmn", a * np.repeat(sa, 4, -1), b * np.repeat(sb, 4, -1))
    assert out.dtype == np.float32 and out.shape == (2, 3, 5)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="3 axes"):
        nn.scaled_matmul(a[0], b[0], sa[0], sb[0])
    dn = (((1,), (0,)), ((), ()))
    np.testing.assert_allclose(nn.scaled_dot_general(a[0], a[0].T, dn), a[0] @ a[0].T, rtol=1e-5)
    cfg = nn.get_scaled_dot_general_config("mxfp8")
    assert (cfg.mode, cfg.block_size) == ("mxfp8", 32)
    assert nn.get_scaled_dot_general_config("nvfp4").block_size == 16
    with pytest.raises(ValueError, match="mode must be 'mxfp8' or 'nvfp4'"):
        nn.get_scaled_dot_general_config("int8")
    with pytest.raises(NotImplementedError):
        nn.scaled_dot_general(a[0], a[0].T, dn, configs=[cfg, cfg])
