"""The composition matrix: on a few real functions, every mix of transforms agrees.

grad, jit(grad), grad(jit), vmap(grad) against a loop of per-example grads,
jit(vmap(grad)), jacfwd against jacrev, and hessian against jacfwd(jacrev) — on an MLP
loss, a scan-based RNN and a function with cond (autodidax ends with the same check).
"""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import lax

rng = np.random.default_rng(0)


def mlp_loss(params, x, y):
    h = fnp.tanh(x @ params["w1"] + params["b1"])
    out = h @ params["w2"]
    return fnp.mean((out - y) ** 2)


def rnn_loss(params, x, y):
    def cell(h, xt):
        h = fnp.tanh(h @ params["wh"] + xt @ params["wx"])
        return h, fnp.sum(h)
    h, ys = lax.scan(cell, fnp.zeros(params["wh"].shape[0], x.dtype), x)
    return fnp.sum(h * y) + 0.1 * fnp.sum(ys)


def cond_loss(params, x, y):
    z = fnp.sum(x @ params["w"])
    out = lax.cond(z > 0, lambda v: fnp.sin(v) * y, lambda v: v ** 2 - y, z)
    return fnp.sum(out)


CASES = {
    "mlp": (mlp_loss,
            {"w1": rng.normal(size=(3, 4)), "b1": rng.normal(size=4), "w2": rng.normal(size=(4, 2))},
            rng.normal(size=(5, 3)), rng.normal(size=(5, 2))),
    "rnn": (rnn_loss, {"wh": rng.normal(size=(3, 3)) * 0.5, "wx": rng.normal(size=(2, 3))},
            rng.normal(size=(5, 4, 2)), rng.normal(size=3)),
    "cond": (cond_loss, {"w": rng.normal(size=(3, 2))}, rng.normal(size=(5, 3)),
             rng.normal(size=())),
}


def _close(a, b):
    for x, y in zip(nanofn.tree.leaves(a), nanofn.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_grad_jit_compositions_agree(name):
    f, params, xs, y = CASES[name]
    x = xs[0] if name == "rnn" else xs
    g = nanofn.grad(f)(params, x, y)
    _close(nanofn.jit(nanofn.grad(f))(params, x, y), g)
    _close(nanofn.grad(nanofn.jit(f))(params, x, y), g)
    _close(nanofn.jit(nanofn.grad(nanofn.jit(f)))(params, x, y), g)


@pytest.mark.parametrize("name", sorted(CASES))
def test_per_example_gradients(name):
    f, params, xs, y = CASES[name]
    single = (lambda p, x, y: f(p, x, y)) if name == "rnn" else \
        (lambda p, x, y: f(p, x[None], y[None] if np.ndim(y) else y))
    ys = np.broadcast_to(y, (len(xs),) + np.shape(y)) if name != "mlp" else y
    loop = [nanofn.grad(single)(params, xi, yi) for xi, yi in zip(xs, ys)]
    stacked = nanofn.tree.map(lambda *g: np.stack([np.asarray(v) for v in g]), *loop)
    vg = nanofn.vmap(nanofn.grad(single), in_axes=(None, 0, 0))
    _close(vg(params, xs, ys), stacked)
    _close(nanofn.jit(vg)(params, xs, ys), stacked)


@pytest.mark.parametrize("name", sorted(CASES))
def test_jacobians_and_hessians_agree(name):
    f, params, xs, y = CASES[name]
    x = xs[0] if name == "rnn" else xs
    flat = lambda p: f(p, x, y)  # noqa: E731
    jf = nanofn.jacfwd(nanofn.grad(flat))(params)
    jr = nanofn.jacrev(nanofn.grad(flat))(params)
    _close(jf, jr)
    _close(nanofn.hessian(flat)(params), jf)
    # the Hessian is symmetric: H[a][b] == H[b][a].T (over flattened leaves)
    for a in params:
        for b in params:
            ha = np.asarray(jf[a][b]).reshape(np.size(params[a]), np.size(params[b]))
            hb = np.asarray(jf[b][a]).reshape(np.size(params[b]), np.size(params[a]))
            np.testing.assert_allclose(ha, hb.T, rtol=1e-8, atol=1e-10)


def test_vmap_of_grad_and_grad_of_vmap():
    w = rng.normal(size=(3,))
    xs = rng.normal(size=(4, 3))
    per = nanofn.vmap(nanofn.grad(lambda w, x: fnp.sin(x @ w)), in_axes=(None, 0))(w, xs)
    np.testing.assert_allclose(np.asarray(per), np.cos(xs @ w)[:, None] * xs, rtol=1e-12)
    total = nanofn.grad(lambda w: fnp.sum(nanofn.vmap(lambda x: fnp.sin(x @ w))(xs)))(w)
    np.testing.assert_allclose(np.asarray(total), np.asarray(per).sum(0), rtol=1e-12)


def test_linearize_matches_jvp():
    x = rng.normal(size=3)
    f = lambda x: fnp.sin(x) * fnp.exp(x)  # noqa: E731
    y, f_jvp = nanofn.linearize(f, x)
    t = rng.normal(size=3)
    np.testing.assert_allclose(np.asarray(f_jvp(t)), np.asarray(nanofn.jvp(f, (x,), (t,))[1]),
                               rtol=1e-12)
    np.testing.assert_allclose(np.asarray(y), np.sin(x) * np.exp(x), rtol=1e-12)
