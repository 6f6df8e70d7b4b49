"""The arguments JAX programs pass to jax.numpy and jax.lax functions, accepted with JAX's
names and meanings (values against numpy, jit against eager)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn import lax
from nanofn.testing import shapes


def _seed(data):
    return np.random.default_rng(data.draw(st.integers(0, 2**31 - 1), label="seed"))


# ------------------------------------------------------------------------ jax.numpy


def test_clip_min_max_and_deprecated_names():
    x = np.arange(6.0) - 2
    np.testing.assert_array_equal(fnp.clip(x, min=-1.0, max=2.0), np.clip(x, -1.0, 2.0))
    np.testing.assert_array_equal(fnp.clip(x, max=0.5), np.minimum(x, 0.5))
    np.testing.assert_array_equal(fnp.asarray(x).clip(min=1.0), np.maximum(x, 1.0))
    with pytest.warns(DeprecationWarning, match="a_min= is deprecated"):
        np.testing.assert_array_equal(fnp.clip(x, a_min=0.0), np.maximum(x, 0.0))
    with pytest.raises(ValueError, match="not both"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            fnp.clip(x, min=0.0, a_min=0.0)


@given(data=st.data())
def test_where_and_nonzero_with_size_trace(data):
    rng = _seed(data)
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=4), label="shape")
    x = rng.integers(0, 2, size=shape)
    size = data.draw(st.integers(0, 6), label="size")
    want = [np.concatenate([i[:size], np.full(max(size - len(i), 0), -1)])
            for i in np.nonzero(x)]
    for f in (lambda v: fnp.where(v, size=size, fill_value=-1),
              lambda v: fnp.nonzero(v, size=size, fill_value=-1)):
        for g in (f, nanofn.jit(f)):
            got = g(x)
            assert len(got) == len(want)
            for a, b in zip(got, want):
                np.testing.assert_array_equal(a, b)
                assert np.asarray(a).dtype == np.int32
    with pytest.raises(ValueError, match="one-argument form"):
        fnp.where(x > 0, 1.0, 0.0, size=3)


@given(data=st.data())
def test_var_std_correction_and_mean(data):
    rng = _seed(data)
    shape = data.draw(shapes(min_dims=1, max_dims=2, min_side=2, max_side=4), label="shape")
    x = rng.normal(size=shape)
    c = data.draw(st.sampled_from([0, 1, 0.5]), label="correction")
    np.testing.assert_allclose(fnp.var(x, axis=0, correction=c), np.var(x, axis=0, ddof=c))
    np.testing.assert_allclose(fnp.std(x, correction=c), np.std(x, ddof=c))
    m = np.mean(x, axis=-1, keepdims=True)
    np.testing.assert_allclose(fnp.var(x, axis=-1, mean=m), np.var(x, axis=-1, mean=m))
    np.testing.assert_allclose(fnp.nanstd(x, axis=-1, mean=m), np.nanstd(x, axis=-1, mean=m))
    with pytest.raises(ValueError, match="not both"):
        fnp.var(x, ddof=1, correction=1)


PRODUCTS = [
    ("dot", lambda a, b, **k: fnp.dot(a, b, **k), (2, 3), (3, 4)),
    ("matmul", lambda a, b, **k: fnp.matmul(a, b, **k), (2, 3), (3,)),
    ("tensordot", lambda a, b, **k: fnp.tensordot(a, b, 1, **k), (2, 3), (3, 2)),
    ("inner", lambda a, b, **k: fnp.inner(a, b, **k), (2, 3), (4, 3)),
    ("vdot", lambda a, b, **k: fnp.vdot(a, b, **k), (2, 3), (6,)),
    ("einsum", lambda a, b, **k: fnp.einsum("ij,kj->ik", a, b, **k), (2, 3), (4, 3)),
]


@pytest.mark.parametrize("name,f,sa,sb", PRODUCTS, ids=[p[0] for p in PRODUCTS])
def test_products_take_precision_and_preferred_element_type(name, f, sa, sb):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=sa).astype(np.float32), rng.normal(size=sb).astype(np.float32)
    plain = f(a, b)
    for p in (lax.Precision.HIGHEST, "highest", "bfloat16", ("high", "default"), None):
        np.testing.assert_array_equal(f(a, b, precision=p), plain)
    wide = f(a, b, preferred_element_type=np.float64)
    assert np.asarray(wide).dtype == np.float64
    np.testing.assert_allclose(wide, plain, rtol=1e-5)
    # int8 operands accumulate in the preferred int32, so 100 * 100 does not wrap
    big = np.full(sa, 100, np.int8), np.full(sb, 100, np.int8)
    exact = f(*[v.astype(np.int32) for v in big])
    np.testing.assert_array_equal(f(*big, preferred_element_type=np.int32), exact)
    jitted = nanofn.jit(lambda u, v: f(u, v, precision="highest",
                                      preferred_element_type=np.float64))
    np.testing.assert_allclose(jitted(a, b), wide)
    with pytest.raises(ValueError, match="unknown precision"):
        f(a, b, precision="fastest-ever")


def test_joining_reshaping_casting_arguments():
    ones, zeros = fnp.ones(2), fnp.zeros(2)
    assert fnp.stack([ones, zeros], dtype=np.int32).dtype == np.int32
    assert fnp.concatenate([ones, zeros], dtype=np.float64).dtype == np.float64
    assert fnp.reshape(fnp.arange(6), shape=(2, 3), copy=True).shape == (2, 3)
    assert fnp.reshape(fnp.arange(6), (3, 2), copy=False).shape == (3, 2)
    assert fnp.reshape(fnp.arange(6), newshape=(6, 1)).shape == (6, 1)
    assert fnp.astype(ones, np.int32, copy=True).dtype == np.int32
    assert ones.astype(np.float64, copy=False).dtype == np.float64
    with pytest.raises(ValueError, match="not both"):
        fnp.reshape(fnp.arange(6), shape=(6,), newshape=(6,))


def test_promote_integers():
    small = np.array([100, 100], np.int8)
    assert fnp.sum(small).dtype == np.int32 and int(fnp.sum(small)) == 200
    assert fnp.sum(small, promote_integers=False).dtype == np.int8  # wraps, as in JAX
    assert fnp.prod(small, promote_integers=False).dtype == np.int8
    assert fnp.sum(np.array([True, True]), promote_integers=False).dtype == np.int32
    assert fnp.sum(np.array([1, 2], np.uint8)).dtype == np.uint32


def test_out_none_accepted_and_out_array_refused():
    x = fnp.ones(3)
    for f in (fnp.add, fnp.multiply, fnp.logical_and, fnp.logaddexp):
        np.testing.assert_array_equal(f(x, x, out=None, where=None), f(x, x))
    np.testing.assert_array_equal(fnp.negative(x, out=None), -np.ones(3))
    for call in (lambda: fnp.add(x, x, out=np.zeros(3)), lambda: fnp.sum(x, out=np.zeros(())),
                 lambda: fnp.outer(x, x, out=np.zeros((3, 3))), lambda: fnp.round(x, out=x)):
        with pytest.raises(TypeError, match="out= argument is not supported"):
            call()
    with pytest.raises(NotImplementedError, match="where="):
        fnp.add(x, x, where=x > 0)


def test_where_on_reductions():
    x = np.arange(6.0).reshape(2, 3)
    w = x % 2 == 0
    for name, kw in [("sum", {}), ("prod", {}), ("mean", {}), ("var", {}), ("std", {}),
                     ("max", {"initial": -1.0}), ("min", {"initial": 99.0}), ("all", {}),
                     ("any", {}), ("nansum", {}), ("nanmean", {})]:
        got = getattr(fnp, name)(x, axis=1, where=w, **kw)
        want = getattr(np, name)(x, axis=1, where=w, **kw)
        np.testing.assert_allclose(got, want, err_msg=name)


# ------------------------------------------------------------------------ jax.lax


def test_lax_elementwise_take_jax_keyword_names():
    x, y = fnp.array([1.0, 4.0]), fnp.array([2.0, 3.0])
    np.testing.assert_array_equal(lax.add(x=x, y=y), [3.0, 7.0])
    np.testing.assert_array_equal(lax.sub(x, y=y), [-1.0, 1.0])
    np.testing.assert_array_equal(lax.max(x=x, y=y), [2.0, 4.0])
    np.testing.assert_array_equal(lax.min(x=x, y=y), [1.0, 3.0])
    np.testing.assert_array_equal(lax.pow(x=x, y=y), [1.0, 64.0])
    np.testing.assert_array_equal(lax.integer_pow(x=x, y=2), [1.0, 16.0])
    np.testing.assert_array_equal(lax.nextafter(x1=x, x2=x), x)
    np.testing.assert_array_equal(lax.select(pred=x > 2, on_true=x, on_false=y), [2.0, 4.0])
    np.testing.assert_array_equal(lax.clamp(min=1.5, x=x, max=3.0), [1.5, 3.0])
    np.testing.assert_array_equal(lax.clamp(fnp.zeros(2), x, fnp.full(2, 2.0)), [1.0, 2.0])
    np.testing.assert_allclose(lax.exp(x=x, accuracy=None), np.exp([1.0, 4.0]), rtol=1e-6)
    np.testing.assert_array_equal(lax.neg(x=x), [-1.0, -4.0])
    np.testing.assert_array_equal(lax.square(x), [1.0, 16.0])
    np.testing.assert_array_equal(lax.reciprocal(x), [1.0, 0.25])
    np.testing.assert_array_equal(lax.round(fnp.array([2.5]), lax.RoundingMethod.TO_NEAREST_EVEN),
                                  [2.0])
    np.testing.assert_array_equal(lax.reduce_max(operand=x, axes=(0,)), 4.0)
    np.testing.assert_array_equal(lax.argmax(operand=x, axis=0, index_dtype=np.int32), 1)
    with pytest.raises(TypeError):
        lax.add(x, fnp.array([1, 2]))  # lax does not promote: one dtype


def test_lax_dot_and_precision():
    a, b = fnp.ones((2, 3)), fnp.arange(3.0)
    np.testing.assert_array_equal(lax.dot(a, b, precision=lax.Precision.HIGHEST), [3.0, 3.0])
    np.testing.assert_array_equal(
        lax.dot(a, a, dimension_numbers=(((1,), (1,)), ((0,), (0,)))), [3.0, 3.0])
    assert lax.Precision("tensorfloat32") is lax.Precision.HIGH
    assert lax.Precision("float32") is lax.Precision.HIGHEST
    np.testing.assert_array_equal(
        lax.dot_general(a, b, (((1,), (0,)), ((), ())), precision="highest"), [3.0, 3.0])
    with pytest.raises(ValueError, match="unknown precision"):
        lax.dot_general(a, b, (((1,), (0,)), ((), ())), precision="max")
    with pytest.raises(TypeError, match="incompatible shapes"):
        lax.dot(a, a)


def test_lax_elementwise_accept_every_jax_keyword():
    import inspect
    import json
    import pathlib
    recorded = json.loads((pathlib.Path(__file__).parent / "data" /
                           "jax_numpy_names.json").read_text())["lax_keywords"]
    ignored = {("mul", "out_dtype"), ("dot", "out_sharding")}  # sharding: one CPU device
    missing = []
    for name, keywords in sorted(recorded.items()):
        f = getattr(lax, name, None)
        assert f is not None, f"nanofn.lax lacks {name}"
        params = inspect.signature(f).parameters
        missing += [f"{name}({k}=)" for k in keywords if (name, k) not in ignored and (
            k not in params or params[k].kind is inspect.Parameter.POSITIONAL_ONLY)]
    assert not missing, f"JAX keywords nanofn.lax does not accept: {missing}"


def test_more_array_methods_match_numpy():
    x = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    a = fnp.asarray(x)
    np.testing.assert_array_equal(a.ptp(axis=1), np.ptp(x, axis=1))
    np.testing.assert_array_equal(a.copy(), x.copy())
    np.testing.assert_array_equal(np.sort(x, axis=1)[:, :1],
                                  np.take_along_axis(x, np.asarray(a.argpartition(0, axis=1)),
                                                     axis=1)[:, :1])
    np.testing.assert_array_equal(a.compress([True, False], axis=0),
                                  x.compress([True, False], axis=0))
    s = np.sort(x, axis=None)
    np.testing.assert_array_equal(fnp.asarray(s).searchsorted(x, side="right"),
                                  s.searchsorted(x, side="right"))
    np.testing.assert_array_equal(fnp.array([0, 1]).choose([fnp.zeros(2), fnp.ones(2)]),
                                  np.array([0, 1]).choose([np.zeros(2), np.ones(2)]))
    assert (a.itemsize, a.nbytes, a.tobytes()) == (x.itemsize, x.nbytes, x.tobytes())
    assert float(nanofn.jit(lambda v: v.ptp())(a)) == np.ptp(x)
