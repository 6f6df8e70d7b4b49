"""Results that used to be silently wrong: list dtypes, repeated argnums, update shapes that
broadcast into the params, a finite loss for an impossible label, and NaN gradients from
the branch a `where` did not take."""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp
from nanofn import optim
from nanofn.nn.losses import softmax_cross_entropy_with_integer_labels as ce_int


# --- Python lists and tuples take nanofn's default dtypes, as Python scalars do (JAX) -----

@pytest.mark.parametrize("data", [[1.0, 2.0], (1.0, 2.0), [[0.5], [1.5]]])
def test_float_lists_get_the_default_float(data):
    default = jnp.sin(1.0).dtype  # a Python float: nanofn's default float dtype
    assert default == np.float32  # as JAX without x64
    assert jnp.sin(data).dtype == default
    assert jnp.add(data, data).dtype == default
    assert jnp.sum(data).dtype == default
    assert jnp.result_type(data) == default


def test_python_types_as_dtype_mean_the_default_dtypes():
    # as in JAX: dtype=float is float32 (int: int32, complex: complex64), not numpy's 64-bit
    from nanofn import dtypes, random
    made = [jnp.zeros(2, float), jnp.ones(2, dtype=int), jnp.full(2, 1, dtype=complex),
            jnp.arange(3, dtype=float), jnp.asarray([1, 2], dtype=float),
            jnp.ones(2).astype(int), jnp.sum(jnp.ones(2), dtype=float),
            jnp.linspace(0, 1, 3, dtype=float), jnp.eye(2, dtype=int),
            random.normal(random.key(0), (2,), float), random.randint(random.key(0), (2,),
                                                                      0, 5, int)]
    assert [x.dtype for x in made] == [np.float32, np.int32, np.complex64, np.float32,
                                       np.float32, np.int32, np.float32, np.float32, np.int32,
                                       np.float32, np.int32]
    assert dtypes.canonicalize_dtype(float) == np.float32
    assert jnp.zeros(2, np.float64).dtype == np.float64  # an explicit numpy dtype is kept


def test_int_and_complex_lists_get_the_default_dtypes():
    assert jnp.add([1, 2], [3, 4]).dtype == jnp.add(1, 2).dtype == np.int32
    assert jnp.negative((1, 2)).dtype == np.int32
    assert jnp.multiply([1j], [2.0]).dtype == np.complex64
    assert jnp.sin([1, 2]).dtype == np.float32  # integers promote to the default float


def test_lists_do_not_widen_arrays():
    x = jnp.ones(2, dtype=jnp.float16)
    assert (x + jnp.asarray([1.0, 2.0])).dtype == np.float32  # the list is a float32 array
    assert jnp.add(np.ones(2, np.float64), [1.0, 2.0]).dtype == np.float64  # float64 stays


# --- grad with a repeated argnum -------------------------------------------------------

def test_grad_repeated_argnums():
    g = nanofn.grad(lambda x: x * x, argnums=(0, 0))(3.0)
    np.testing.assert_allclose([float(g[0]), float(g[1])], [6.0, 6.0])
    g = nanofn.grad(lambda x, y: x * x * y, argnums=(1, 0, 1))(3.0, 2.0)
    np.testing.assert_allclose([float(v) for v in g], [9.0, 12.0, 9.0])
    (v, aux), g = nanofn.value_and_grad(lambda x: (jnp.sum(x ** 3), 1.0), argnums=(0, 0),
                                         has_aux=True)(jnp.array([1.0, 2.0]))
    for gi in g:
        np.testing.assert_allclose(np.asarray(gi), [3.0, 12.0])


@pytest.mark.parametrize("transform", [nanofn.jacrev, nanofn.jacfwd])
def test_jacobians_repeated_argnums(transform):
    jac = transform(lambda x, y: x * x * y, argnums=(0, 1, 0))(3.0, 2.0)
    np.testing.assert_allclose([float(v) for v in jac], [12.0, 9.0, 12.0])
    h = nanofn.hessian(lambda x: x ** 3, argnums=(0, 0))(2.0)
    np.testing.assert_allclose([[float(v) for v in row] for row in h], [[12.0, 12.0]] * 2)


# --- updates whose shape differs from the param ----------------------------------------

def test_apply_updates_refuses_a_shape_that_would_broadcast():
    with pytest.raises(ValueError, match=r"params\['w'\].*\(2, 3\).*\(3,\)"):
        optim.apply_updates({"w": np.ones(3)}, {"w": np.ones((2, 3))})
    with pytest.raises(ValueError, match=r"params\['b'\]\[1\].*\(1,\).*\(\)"):
        optim.apply_updates({"b": [jnp.ones(()), jnp.ones(())]},
                            {"b": [jnp.ones(()), jnp.ones(1)]})


@pytest.mark.parametrize("make", [lambda: optim.sgd(0.1), lambda: optim.adam(0.1),
                                  lambda: optim.adamw(0.1)])
def test_optimizer_update_refuses_a_wrong_shape(make):
    tx = make()
    params = {"w": jnp.ones(3), "b": jnp.zeros(())}
    state = tx.init(params)
    bad = {"w": jnp.ones((2, 3)), "b": jnp.zeros(())}
    with pytest.raises(ValueError, match=r"params\['w'\] has shape \(2, 3\).*\(3,\)"):
        tx.update(bad, state, params)
    updates, _ = tx.update({"w": jnp.ones(3), "b": jnp.zeros(())}, state, params)
    assert updates["w"].shape == (3,)


# --- integer labels out of range --------------------------------------------------------

def test_out_of_range_label_gives_nan_under_jit():
    logits = jnp.array([[1.0, 2.0, 3.0], [0.5, 0.0, -0.5]])
    f = nanofn.jit(ce_int)
    for _ in range(3):  # the first call runs numpy, later ones the kernel
        loss = np.asarray(f(logits, jnp.array([2, 3])))
        assert np.isfinite(loss[0]) and np.isnan(loss[1])
        assert np.isnan(np.asarray(f(logits, jnp.array([-4, 0])))[0])
    np.testing.assert_allclose(loss[0], np.asarray(ce_int(logits, jnp.array([2, 0])))[0])
    g = nanofn.jit(nanofn.grad(lambda x, y: ce_int(x, y)[0]))(logits, jnp.array([2, 3]))
    assert np.isfinite(np.asarray(g)).all()


def test_out_of_range_label_raises_in_eager_mode_and_with_debug_nans():
    logits = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match=r"found label 3"):
        ce_int(logits, jnp.array([0, 3]))
    with nanofn.debug_nans():
        with pytest.raises(ValueError, match=r"found label 3"):
            ce_int(logits, jnp.array([0, 3]))
        with pytest.raises(FloatingPointError, match=r"found label 7"):
            nanofn.jit(ce_int)(logits, jnp.array([7, 0]))


# --- the branch a `where` did not take gets a zero cotangent, even where the taken branch's
# --- cotangent is inf or NaN (JAX's rule: select, not multiplication by the mask)

def test_where_gives_zero_gradient_to_the_branch_not_taken():
    m = np.array([True, False])
    # d/ds log(s) at s = 0 is inf; times the zero cotangent from the outer where: NaN. That
    # NaN reaches only what feeds s: the kept element, not the masked one.
    f = lambda x: jnp.sum(jnp.where(np.array([True]), 0.0,  # noqa: E731
                                    jnp.log(jnp.sum(jnp.where(m, x, 0.0), keepdims=True))))
    g = np.asarray(nanofn.grad(f)(np.zeros(2)))
    assert np.isnan(g[0]) and g[1] == 0.0
    assert np.asarray(nanofn.jit(nanofn.grad(f))(np.zeros(2)))[1] == 0.0
    assert np.asarray(nanofn.vmap(nanofn.grad(f))(np.zeros((3, 2))))[:, 1].tolist() == [0.0] * 3


@pytest.mark.parametrize("fn", ["logsumexp", "log_softmax", "softmax"])
def test_fully_masked_rows_have_zero_gradient(fn):
    x = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    where = np.array([[True, False, True], [False, False, False]])
    f = getattr(nanofn.nn, fn)

    def loss(x):
        out = f(x, axis=1, where=where)
        return jnp.sum(jnp.where(jnp.isfinite(out), out, 0.0))
    g = np.asarray(nanofn.grad(loss)(x))
    assert np.isfinite(g).all()
    assert (g[1] == 0).all() and g[0, 1] == 0.0


# --- floats to integers saturate as in XLA (numpy's cast of an out-of-range float wraps) ---

@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.uint32, np.int64, np.uint64])
def test_float_to_integer_casts_saturate_eagerly_and_in_fused_kernels(dtype):
    info = np.iinfo(dtype)
    x = np.array([300.0, -5.0, 1e10, -1e10, np.nan, 2.7, -2.7, np.inf, -np.inf, 1e30],
                 np.float32)
    want = [min(300, info.max), max(-5, info.min), min(10**10, info.max),
            max(-10**10, info.min), 0, 2, max(-2, info.min), info.max, info.min, info.max]
    assert np.asarray(jnp.asarray(x).astype(dtype)).tolist() == want
    fused = nanofn.jit(lambda v: (v * 1.0 + 0.0).astype(dtype))  # mul, add, convert: fused
    for _ in range(3):
        fused(x)
    from nanofn import warmup
    warmup.wait()  # the fused plan's kernels are ready: the next call runs them
    assert np.asarray(fused(x)).tolist() == want


def test_integer_powers_of_integer_arrays_wrap_like_jax():
    base = np.array([2, 3, -2, 0, 5, 2, 1, -1, 7], np.int32)
    exponent = np.array([3, 0, 3, 0, 20, -1, -2, -3, 11], np.int32)

    def wrap(v):
        return (v + 2**31) % 2**32 - 2**31
    want = [wrap(int(b) ** int(e)) if e >= 0 else (int(b) ** int(e) if abs(b) == 1 else 0)
            for b, e in zip(base, exponent)]
    assert np.asarray(jnp.power(base, exponent)).tolist() == want
    assert np.asarray(nanofn.jit(jnp.power)(base, exponent)).tolist() == want
    assert np.asarray(jnp.power(np.array([2], np.uint8), np.array([9], np.uint8))).tolist() == [0]
