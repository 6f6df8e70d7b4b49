"""inf and nan are values, not warnings: JAX never warns about them, and nanofn's
primitives run with numpy's floating-point warnings off (eagerly in `bind`, in every jit
plan, in constant folding and in eager `grad`'s reverse pass), so a test suite that turns
warnings into errors runs the same programs under both. The user's own numpy calls keep
their warnings."""

import warnings

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import lax, nn

X = np.array([np.inf, -np.inf, 0.0, 1.0, np.nan, 3e38], np.float32)
Y = np.array([np.inf, np.inf, 0.0, 0.0, 1.0, 3e38], np.float32)

CASES = {
    "mul": (lambda x, y: x * y, lambda x, y: x * y),
    "add": (lambda x, y: x + y, lambda x, y: x + y),
    "sub": (lambda x, y: x - y, lambda x, y: x - y),
    "div": (lambda x, y: x / y, lambda x, y: x / y),
    "square": (lambda x, y: x * x, lambda x, y: x * x),
    "matmul": (lambda x, y: fnp.ones((2, 6)) @ x[:, None], lambda x, y: np.ones((2, 6)) @ x[:, None]),
    "sum": (lambda x, y: fnp.sum(x[:2]), lambda x, y: np.sum(x[:2])),
    "mean": (lambda x, y: fnp.mean(x[:2]), lambda x, y: np.mean(x[:2])),
    "cumsum": (lambda x, y: fnp.cumsum(x), lambda x, y: np.cumsum(x)),
    "prod": (lambda x, y: fnp.prod(y[5:] * 2), lambda x, y: np.prod(y[5:] * 2)),
    "log": (lambda x, y: fnp.log(x - 1), lambda x, y: np.log(x - 1)),
    "var": (lambda x, y: fnp.var(x[:2]), lambda x, y: np.var(x[:2])),
    "lax.mul": (lambda x, y: lax.mul(x, fnp.zeros(6)), lambda x, y: x * np.zeros(6, np.float32)),
    "logsumexp": (lambda x, y: nn.logsumexp(x[1:2]), lambda x, y: np.float32(-np.inf)),
}


def _expected(f):
    with np.errstate(all="ignore"):
        return f(X, Y)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_special_values_give_values_and_no_warning(name, mode):
    f, ref = CASES[name]
    g = nanofn.jit(f) if mode == "jit" else f
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = g(fnp.asarray(X), fnp.asarray(Y))
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(_expected(ref), np.float64),
                               rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("transform", ["grad", "jit_grad", "vmap", "jvp"])
def test_transforms_through_special_values_do_not_warn(transform):
    def f(t):
        return fnp.sum(fnp.sqrt(t) + t * t * 1e30 + fnp.log(t) * fnp.array([0.0, 1.0]))

    t = fnp.array([0.0, 1e20])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if transform == "grad":
            g = nanofn.grad(f)(t)
        elif transform == "jit_grad":
            g = nanofn.jit(nanofn.grad(f))(t)
        elif transform == "vmap":
            g = nanofn.vmap(lambda r: f(r))(fnp.stack([t, t]))
        else:
            g = nanofn.jvp(f, (t,), (fnp.ones(2),))[1]
    assert not np.all(np.isfinite(np.asarray(g)))  # the infinities are there, unannounced


def test_the_users_own_numpy_calls_still_warn():
    fnp.log(fnp.array([0.0]))  # nanofn's call is quiet ...
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        np.log(np.array([0.0]))  # ... and the user's numpy settings are as they were
