"""optax.microbatching (nanofn.optim.microbatching): the cases of optax's
_microbatching_test.py (results equal the full-batch computation), jit and grad through
the microbatched functions, early stopping, custom accumulators and argument errors."""

import functools

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp
from nanofn import optim, tree_util

mb = optim.microbatching
Acc = mb.AccumulationType


def _leaves(tree):
    return [np.asarray(x) for x in tree_util.tree_leaves(tree)]


def _assert_trees_close(a, b, **kw):
    assert tree_util.tree_structure(a) == tree_util.tree_structure(b)
    for x, y in zip(_leaves(a), _leaves(b)):
        assert x.shape == y.shape
        np.testing.assert_allclose(x, y, **kw)


def per_example_function(nonbatch, b1, b2):
    return b1 * b2, b1 / b2 * nonbatch


def sum_function(nonbatch, b1, b2):
    return jnp.sum(nonbatch + b1 + 2 * b2, axis=0)


def mean_function(nonbatch, b1, b2):
    return jnp.mean(nonbatch * b1), {"key": jnp.mean(b2)}


def sum_function_with_kwargs(nonbatch, b1, *, b2):
    return jnp.sum(nonbatch + b1 + 2 * b2, axis=0)


def mixed_function(nonbatch, b1, b2):
    return {"per_example": per_example_function(nonbatch, b1, b2),
            "sum": sum_function(nonbatch, b1, b2),
            "mean": mean_function(nonbatch, b1, b2)}


PAIRS = {
    "per_example": (per_example_function, Acc.CONCAT),
    "sum": (sum_function, Acc.SUM),
    "mean": (mean_function, Acc.MEAN),
    "mixed": (mixed_function, {"per_example": Acc.CONCAT, "sum": Acc.SUM,
                               "mean": Acc.MEAN}),
}


def _data(seed=0, dtype=np.float32):
    rs = np.random.RandomState(seed)
    return (jnp.asarray(rs.normal(size=()).astype(dtype)),
            jnp.asarray(rs.normal(size=(10, 3)).astype(dtype)),
            jnp.asarray((rs.normal(size=(10, 3)) + 3.0).astype(dtype)))


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize("microbatch_size", [1, 2, 5, 10])
def test_microbatch_equals_full_batch(name, microbatch_size):
    fun, acc = PAIRS[name]
    args = _data()
    mfun = mb.microbatch(fun, argnums=(1, 2), microbatch_size=microbatch_size,
                         accumulator=acc)
    _assert_trees_close(mfun(*args), fun(*args), rtol=1e-5, atol=1e-5)
    _assert_trees_close(nanofn.jit(mfun)(*args), fun(*args), rtol=1e-5, atol=1e-5)


def test_microbatch_with_kwargs():
    x, b1, b2 = _data(1)
    mfun = mb.microbatch(sum_function_with_kwargs, argnums=(1,), microbatch_size=2,
                         argnames=("b2",))
    _assert_trees_close(mfun(x, b1, b2=b2), sum_function_with_kwargs(x, b1, b2=b2),
                        rtol=1e-5, atol=1e-6)


def test_microbatch_size_none_returns_fun():
    assert mb.microbatch(jnp.sum, 0, None) is jnp.sum


def test_nondecomposable_function_shows_the_strided_split():
    fun = lambda x: x[:-1] @ x[1:]  # noqa: E731
    x = jnp.arange(6.0)
    # microbatches [0, 2, 4] and [1, 3, 5]
    assert float(mb.microbatch(fun, 0, 3)(x)) == 0 * 2 + 2 * 4 + 1 * 3 + 3 * 5


def test_reshape_batch_axis():
    x = jnp.arange(24).reshape(2, 12)
    y = mb.reshape_batch_axis({"a": x}, 4, axis=1)["a"]
    assert y.shape == (2, 3, 4)
    np.testing.assert_array_equal(np.asarray(y)[1, 2], np.asarray(x)[1, 2::3])
    np.testing.assert_array_equal(np.asarray(mb.reshape_batch_axis(x, 4, axis=-1)),
                                  np.asarray(y))
    with pytest.raises(ValueError, match="divisible by microbatch_size=5"):
        mb.reshape_batch_axis(x, 5, axis=1)
    with pytest.raises(ValueError, match="microbatch_size"):
        mb.reshape_batch_axis(x, 0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("acc", [Acc.SUM, Acc.MEAN, Acc.RUNNING_MEAN])
def test_dtype_is_kept(dtype, acc):
    args = _data(2, dtype)
    out = mb.microbatch(sum_function, (1, 2), 2, acc)(*args)
    assert out.dtype == np.dtype(dtype)


def test_integer_sum_and_float_only_means():
    x = jnp.arange(8)
    assert int(mb.microbatch(jnp.sum, 0, 2)(x)) == 28
    for acc in (Acc.MEAN, Acc.RUNNING_MEAN):
        with pytest.raises(ValueError, match="floating-point"):
            mb.microbatch(jnp.sum, 0, 2, acc)(x)


def test_early_stopping():
    x = jnp.arange(12.0) + 1
    out = mb.microbatch(lambda v: v, 0, 3, Acc.CONCAT, num_real_microbatches=2)(x)
    # microbatches 0 and 1 hold the examples 0, 1 mod 4
    expect = np.where(np.arange(12) % 4 < 2, np.arange(12.0) + 1, 0.0)
    np.testing.assert_array_equal(np.asarray(out), expect)
    x = jnp.arange(8.0)  # microbatch sums 4, 6, 8, 10
    f = functools.partial(mb.microbatch, jnp.sum, 0, 2, num_real_microbatches=3)
    assert float(f(Acc.SUM)(x)) == 18.0
    assert float(f(Acc.MEAN)(x)) == 4.5  # still divided by all 4
    assert float(f(Acc.RUNNING_MEAN)(x)) == 6.0
    assert float(mb.microbatch(jnp.sum, 0, 2, num_real_microbatches=0)(x)) == 0.0


def test_dynamic_steps_under_jit():
    @nanofn.jit
    def fun(x, steps):
        return mb.microbatch(jnp.sum, argnums=0, microbatch_size=4,
                             num_real_microbatches=steps)(x)

    x = jnp.ones(128)
    assert float(fun(x, 4)) == 16.0
    assert float(fun(x, 7)) == 28.0
    assert float(fun(x, 1000)) == 128.0  # a traced count is capped at the microbatch count


@pytest.mark.parametrize("acc", list(Acc))
def test_in_axes_invariant(acc):
    a0 = jnp.asarray(np.random.RandomState(3).normal(size=(10, 4, 5)).astype(np.float32))
    a1 = jnp.transpose(a0, (1, 0, 2))
    f0 = functools.partial(jnp.einsum, "bij,bkj->ik")
    f1 = functools.partial(jnp.einsum, "ibj,kbj->ik")
    r0 = mb.microbatch(f0, (0, 1), 2, acc, in_axes=0)(a0, a0)
    r1 = mb.microbatch(f1, (0, 1), 2, acc, in_axes=1)(a1, a1)
    rneg = mb.microbatch(f1, (0, 1), 2, acc, in_axes=-2)(a1, a1)
    _assert_trees_close(r0, r1, rtol=1e-5, atol=1e-5)
    _assert_trees_close(r0, rneg, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("acc", list(Acc))
def test_in_axes_with_argnames(acc):
    a0 = jnp.asarray(np.random.RandomState(4).normal(size=(10, 4, 5)).astype(np.float32))
    a1 = jnp.transpose(a0, (1, 0, 2))

    def fun(a, b):
        return jnp.einsum("bij,kbj->ik", a, b)

    m = functools.partial(mb.microbatch, fun, microbatch_size=2, accumulator=acc)
    ref = m(argnums=(0, 1), in_axes=(0, 1))(a0, a1)
    for got in (m(argnums=(1, 0), in_axes=(1, 0))(a0, a1),
                m(argnums=(), argnames=("a", "b"), in_axes=(0, 1))(a=a0, b=a1),
                m(argnums=(), argnames=("b", "a"), in_axes=(1, 0))(b=a1, a=a0),
                m(argnums=0, argnames="b", in_axes=(0, 1))(a0, b=a1)):
        _assert_trees_close(got, ref, rtol=1e-5, atol=1e-5)


def test_argnums_argnames_invariant():
    def fun(a, b, c, *, d, e, f):
        return jnp.sum(a + b + c + d + e + f)

    o1 = mb.microbatch(fun, argnums=(0, 1), microbatch_size=2)(
        jnp.ones(16), jnp.ones(16), 1, d=2, e=3, f=4)
    o2 = mb.microbatch(fun, argnums=0, argnames="b", microbatch_size=2)(
        jnp.ones(16), b=jnp.ones(16), c=1, d=2, e=3, f=4)
    o3 = mb.microbatch(fun, argnums=(), argnames=("b", "a"), microbatch_size=2)(
        a=jnp.ones(16), b=jnp.ones(16), c=1, d=2, e=3, f=4)
    assert float(o1) == float(o2) == float(o3) == 16 * 12


def test_pytree_batch_arguments():
    batch = {"x": jnp.arange(12.0).reshape(6, 2), "y": jnp.arange(6.0)}
    fun = lambda w, b: jnp.sum((b["x"] @ w - b["y"]) ** 2)  # noqa: E731
    w = jnp.asarray([0.5, -1.0])
    got = mb.microbatch(fun, 1, 3)(w, batch)
    np.testing.assert_allclose(float(got), float(fun(w, batch)), rtol=1e-6)


def test_custom_accumulator_and_tree_of_accumulators():
    running_max = mb.Accumulator(
        init=lambda s: jnp.full(s.shape, -jnp.inf, s.dtype),
        update=lambda c, v, i: jnp.maximum(c, v),
        finalize=lambda c: c,
        aggregate=lambda v: jnp.max(v, axis=0))
    x = jnp.asarray([3.0, -1.0, 9.0, 2.0, 5.0, 0.0])
    fun = lambda v: (jnp.max(v), jnp.sum(v))  # noqa: E731
    got = mb.microbatch(fun, 0, 2, (running_max, Acc.SUM))(x)
    assert (float(got[0]), float(got[1])) == (9.0, 18.0)
    # a custom accumulator at the root receives the whole output tree
    whole = mb.Accumulator(
        init=lambda s: tree_util.tree_map(lambda t: jnp.zeros(t.shape, t.dtype), s),
        update=lambda c, v, i: tree_util.tree_map(lambda a, b: a + 2 * b, c, v),
        finalize=lambda c: c, aggregate=lambda v: v)
    got = mb.microbatch(fun, 0, 3, whole)(x)
    assert float(got[1]) == 36.0
    # micro_vmap uses `aggregate` inside each microbatch
    assert float(mb.micro_vmap(lambda v: v * 2, microbatch_size=3,
                               accumulator=running_max)(x)) == 18.0


def test_grad_through_microbatch_equals_full_batch_grad():
    rs = np.random.RandomState(5)
    xs = jnp.asarray(rs.normal(size=(12, 3)).astype(np.float32))
    ys = jnp.asarray(rs.normal(size=(12,)).astype(np.float32))
    w = jnp.asarray([0.1, -0.2, 0.3])

    def loss(w, x, y):
        return jnp.mean(jnp.tanh(x @ w) - y) ** 2 + jnp.mean((x @ w - y) ** 2)

    full = nanofn.grad(lambda w: jnp.mean((xs @ w - ys) ** 2))(w)
    mloss = mb.microbatch(lambda w, x, y: jnp.mean((x @ w - y) ** 2), (1, 2), 4, Acc.MEAN)
    np.testing.assert_allclose(np.asarray(nanofn.jit(nanofn.grad(mloss))(w, xs, ys)),
                               np.asarray(full), rtol=1e-5, atol=1e-6)
    running = mb.microbatch(lambda w, x, y: jnp.mean((x @ w - y) ** 2), (1, 2), 3,
                            Acc.RUNNING_MEAN)
    np.testing.assert_allclose(np.asarray(nanofn.grad(running)(w, xs, ys)),
                               np.asarray(full), rtol=1e-5, atol=1e-6)


def test_micro_vmap_matches_vmap():
    x = jnp.arange(2 * 4 * 8).reshape(2, 4, 8)
    got = mb.micro_vmap(jnp.sum, in_axes=1, microbatch_size=2)(x)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(nanofn.vmap(jnp.sum, 1)(x)))
    got = mb.micro_vmap(jnp.sum, in_axes=1)(x)  # no microbatching
    np.testing.assert_array_equal(np.asarray(got), np.asarray(nanofn.vmap(jnp.sum, 1)(x)))


def test_micro_vmap_kwargs_and_unmapped_args():
    x = jnp.arange(32).reshape(4, 8)
    y = jnp.ones((4, 8), dtype=jnp.int32)

    def fun(x, *, y):
        return jnp.sum(x + y)

    got = mb.micro_vmap(fun, in_axes=0, microbatch_size=2)(x, y=y)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(nanofn.vmap(fun)(x, y=y)))
    w = jnp.asarray([1.0, 2.0])
    xs = jnp.arange(12.0).reshape(6, 2)
    got = mb.micro_vmap(lambda w, x: x @ w, in_axes=(None, 0), microbatch_size=3,
                        accumulator=Acc.MEAN)(w, xs)
    np.testing.assert_allclose(float(got), float(jnp.mean(xs @ w)), rtol=1e-6)


def test_micro_vmap_early_stopping():
    f = mb.micro_vmap(jnp.sum, microbatch_size=4, num_real_microbatches=3,
                      accumulator=Acc.SUM)
    assert float(f(jnp.ones((16, 2)))) == 24.0


@pytest.mark.parametrize("keep_batch_dim", [False, True])
@pytest.mark.parametrize("microbatch_size", [None, 1, 2])
def test_micro_grad_basic(keep_batch_dim, microbatch_size):
    def loss(params, features, targets):
        assert features.ndim == int(keep_batch_dim) + 1
        return 0.5 * jnp.mean((features @ params - targets) ** 2)

    grad_fn = mb.micro_grad(loss, argnums=0, batch_argnums=(1, 2),
                            transform_fn=lambda g: (g, g ** 2), metrics_fn=jnp.linalg.norm,
                            keep_batch_dim=keep_batch_dim, microbatch_size=microbatch_size)
    (g, g2), aux = grad_fn(jnp.zeros(1), jnp.ones((4, 1)), jnp.arange(4.0))
    assert float(g[0]) == -6.0 and float(g2[0]) == 14.0
    np.testing.assert_allclose(np.asarray(aux.values), [0, 0.5, 2, 4.5])
    np.testing.assert_allclose(np.asarray(aux.metrics), [0, 1, 2, 3])
    assert aux.aux is None
    assert type(aux).__name__ == "Aux" and aux._fields == ("values", "metrics", "aux")


def test_micro_grad_clipping_has_aux_and_jit():
    rs = np.random.RandomState(6)
    xs = jnp.asarray(rs.normal(size=(8, 3)).astype(np.float32))
    ys = jnp.asarray(rs.normal(size=(8,)).astype(np.float32))
    w = jnp.asarray([0.3, -0.1, 0.2])

    def loss(w, x, y):
        pred = x @ w
        return jnp.sum((pred - y) ** 2), pred

    def clip(g):
        return g * jnp.minimum(1.0, 0.5 / jnp.linalg.norm(g))

    gfn = nanofn.jit(mb.micro_grad(loss, has_aux=True, microbatch_size=2,
                                   batch_argnums=(1, 2), keep_batch_dim=False,
                                   transform_fn=clip))
    g, aux = gfn(w, xs, ys)
    per = [nanofn.grad(lambda w: loss(w, xs[i], ys[i])[0])(w) for i in range(8)]
    expect = sum(np.asarray(clip(p)) for p in per)
    np.testing.assert_allclose(np.asarray(g), expect, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(aux.aux), np.asarray(xs @ w), rtol=1e-5)


def test_micro_grad_early_stopping():
    gfn = mb.micro_grad(lambda c, x: c * x.sum(), microbatch_size=4, num_real_microbatches=3)
    g, _ = gfn(1.0, jnp.ones(16))
    assert float(g) == 12.0


# --- argument errors --------------------------------------------------------------------


def test_errors_name_the_argument():
    x = jnp.ones(10)
    with pytest.raises(ValueError, match="must be divisible by microbatch_size=3"):
        mb.microbatch(jnp.sum, 0, 3)(x)
    with pytest.raises(ValueError, match="microbatch_size"):
        mb.microbatch(jnp.sum, 0, 0)
    with pytest.raises(ValueError, match="microbatch_size"):
        mb.microbatch(jnp.sum, 0, 2.5)
    with pytest.raises(TypeError, match="argnums"):
        mb.microbatch(jnp.sum, "x", 2)
    with pytest.raises(ValueError, match="argnums and argnames are both empty"):
        mb.microbatch(jnp.sum, (), 2)
    with pytest.raises(ValueError, match="in_axes has 1 entries"):
        mb.microbatch(lambda a, b: a, (0, 1), 2, in_axes=(0,))
    with pytest.raises(ValueError, match="argnums names positional argument 2"):
        mb.microbatch(lambda a, b: a, (0, 2), 2)(x, x)
    with pytest.raises(ValueError, match="argnames names keyword argument 'y'"):
        mb.microbatch(lambda a, y=0: a, 0, 2, argnames="y")(x)
    with pytest.raises(ValueError, match="same batch size"):
        mb.microbatch(lambda a, b: a, (0, 1), 2)(x, jnp.ones(8))
    with pytest.raises(ValueError, match="out of range"):
        mb.microbatch(jnp.sum, 0, 2, in_axes=1)(x)
    with pytest.raises(ValueError, match="num_real_microbatches=6 exceeds"):
        mb.microbatch(jnp.sum, 0, 2, num_real_microbatches=6)(x)
    with pytest.raises(ValueError, match="num_real_microbatches must be >= 0"):
        mb.microbatch(jnp.sum, 0, 2, num_real_microbatches=-1)
    with pytest.raises(ValueError, match="accumulator"):
        mb.microbatch(jnp.sum, 0, 2, "sum")(x)
    with pytest.raises(NotImplementedError, match="out_axes"):
        mb.micro_vmap(jnp.sum, out_axes=1)
    with pytest.raises(TypeError, match="in_axes"):
        mb.micro_vmap(jnp.sum, in_axes={"a": 0})
    with pytest.raises(ValueError, match="batch_argnums"):
        mb.micro_grad(jnp.sum, batch_argnums=())
