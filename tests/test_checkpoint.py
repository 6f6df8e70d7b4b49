"""checkpoint (remat): same values and gradients, fewer saved intermediates, composes."""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import _core as core
from nanofn._ad import TapeTrace, TapeTracer
from nanofn import checkpoint, lax, remat, vmap
from nanofn.testing import check_grads
from nanofn.tree_util import tree_flatten, tree_leaves

RNG = np.random.default_rng(3)
DEPTH, BATCH, WIDTH = 6, 16, 8
WS = [fnp.asarray(RNG.normal(size=(WIDTH, WIDTH)) / np.sqrt(WIDTH)) for _ in range(DEPTH)]
X = fnp.asarray(RNG.normal(size=(BATCH, WIDTH)))


def layer(w, x):
    return fnp.tanh(x @ w)


def mlp(ws, x, lay=layer):
    for w in ws:
        x = lay(w, x)
    return fnp.sum(x * x)


def _close(a, b, tol=1e-12):
    la, ta = tree_flatten(a)
    lb, tb = tree_flatten(b)
    assert ta == tb
    for u, v in zip(la, lb):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=tol, atol=tol)


def record_tape(fun, *args):
    """Run `fun` forward on tape tracers, as grad does, and return what the tape saved:
    (number of entries, ids and bytes of the distinct arrays it keeps alive)."""
    with core.new_main(TapeTrace, []) as main:
        trace = main.trace
        leaves, tree = tree_flatten(args)
        tracers = [TapeTracer(trace, x, i) for i, x in enumerate(leaves)]
        fun(*tree.unflatten(tracers))
    tape = list(main.global_data)
    main.global_data.clear()
    saved = {}
    for _, _, _, primals, out, _ in tape:
        for v in list(primals) + (list(out) if isinstance(out, list) else [out]):
            saved[id(core.to_numpy(v))] = np.asarray(v).nbytes
    inputs = {id(core.to_numpy(x)) for x in leaves}
    intermediate = {k: b for k, b in saved.items() if k not in inputs}
    return len(tape), len(intermediate), sum(intermediate.values())


def test_checkpointed_grads_equal_plain_grads():
    g_plain = nanofn.grad(mlp, argnums=(0, 1))(WS, X)
    g_layer = nanofn.grad(lambda ws, x: mlp(ws, x, checkpoint(layer)), argnums=(0, 1))(WS, X)
    g_whole = nanofn.grad(checkpoint(mlp), argnums=(0, 1))(WS, X)
    _close(g_layer, g_plain)
    _close(g_whole, g_plain)
    assert float(checkpoint(mlp)(WS, X)) == float(mlp(WS, X))
    nanofn.testing.check_grads(lambda x: mlp(WS[:2], x, remat(layer)), (X[:2],), order=2)


def test_tape_saves_fewer_intermediates():
    entries_plain, arrays_plain, bytes_plain = record_tape(mlp, WS, X)
    entries_ck, arrays_ck, bytes_ck = record_tape(lambda ws, x: mlp(ws, x, checkpoint(layer)),
                                                  WS, X)
    # plain: a matmul and a tanh per layer, each output saved; checkpointed: one entry per
    # layer that saves only the layer's output (the next layer's input). Both also save
    # x * x and the scalar loss.
    assert entries_ck < entries_plain
    act = BATCH * WIDTH * 8
    assert arrays_plain == 2 * DEPTH + 2 and bytes_plain == (2 * DEPTH + 1) * act + 8
    assert arrays_ck == DEPTH + 2 and bytes_ck == (DEPTH + 1) * act + 8
    # checkpointing the whole network saves nothing but its output
    entries_all, arrays_all, _ = record_tape(checkpoint(mlp), WS, X)
    assert entries_all == 1 and arrays_all == 1


def test_backward_recomputes_the_forward_pass():
    calls = []

    def counted(w, x):
        calls.append(1)
        return layer(w, x)

    f = checkpoint(counted)
    nanofn.grad(lambda w: f(w, X).sum())(WS[0])
    # traced once; the forward pass and its recomputation in the backward pass run the
    # traced program (the tape tests above show that nothing in between was kept)
    assert len(calls) == 1
    calls.clear()
    f(WS[0], X)  # outside any transformation it is a plain call
    assert len(calls) == 1
    jaxpr = nanofn.make_jaxpr(nanofn.grad(lambda w: f(w, X).sum()))(WS[0])
    names = [e.primitive.name for e in jaxpr.eqns]
    assert names.count("checkpoint") == 1 and "tanh" in names  # recomputed tanh is staged


def test_checkpoint_composes_with_jit_vmap_jvp_and_grad_of_grad():
    ck = checkpoint(layer)
    loss = lambda w, x: fnp.sum(ck(w, x) ** 2)  # noqa: E731
    ref = lambda w, x: fnp.sum(layer(w, x) ** 2)  # noqa: E731
    w = WS[0]
    _close(nanofn.jit(nanofn.grad(loss))(w, X), nanofn.grad(ref)(w, X))
    _close(nanofn.grad(nanofn.jit(loss))(w, X), nanofn.grad(ref)(w, X))
    _close(vmap(nanofn.grad(loss), in_axes=(None, 0))(w, X[:, None]),
           vmap(nanofn.grad(ref), in_axes=(None, 0))(w, X[:, None]))
    _close(nanofn.grad(lambda w: vmap(loss, in_axes=(None, 0))(w, X[:, None]).sum())(w),
           nanofn.grad(ref)(w, X))
    t = fnp.ones_like(w)
    _close(nanofn.jvp(lambda w: loss(w, X), (w,), (t,)),
           nanofn.jvp(lambda w: ref(w, X), (w,), (t,)))
    s = X[0, 0]
    _close(nanofn.grad(nanofn.grad(lambda a: loss(w * a, X)))(s),
           nanofn.grad(nanofn.grad(lambda a: ref(w * a, X)))(s), tol=1e-10)


def test_static_argnums_kwargs_and_pytrees():
    def block(params, x, act, *, scale):
        return act(x @ params["w"] + params["b"]) * scale

    ck = checkpoint(block, static_argnums=(2,))
    params = {"w": WS[0], "b": fnp.zeros(WIDTH, "float64")}

    def loss(p, f):
        return fnp.sum(f(p, X, fnp.sin, scale=fnp.asarray(2.0, "float64")))

    _close(nanofn.grad(lambda p: loss(p, ck))(params),
           nanofn.grad(lambda p: loss(p, block))(params))
    assert len(tree_leaves(nanofn.grad(lambda p: loss(p, ck))(params))) == 2


def test_checkpoint_errors():
    with pytest.raises(TypeError, match="policy must be a function"):
        checkpoint(layer, policy="dots")
    f = checkpoint(lambda x, act: act(x))
    with pytest.raises(TypeError, match="holds a function.*static_argnums"):
        nanofn.grad(lambda x: f(x, fnp.sin).sum())(X)


# --- a checkpointed function that closes over traced values -----------------------------


def _closure_programs(remat):
    """Programs whose checkpointed body closes over `w`, traced by the enclosing grad/jit,
    and runs inside control flow; `remat` is nanofn.checkpoint or the identity."""
    ones = np.ones(3)

    def in_scan(w):
        body = remat(lambda c, _: (fnp.tanh(c * w), None))
        return lax.scan(body, ones, None, length=4)[0].sum()

    def in_cond(w):
        return lax.cond(True, remat(lambda c: fnp.sin(c * w) * w), lambda c: c, ones).sum()

    def in_fori(w):
        return lax.fori_loop(0, 3, remat(lambda i, c: fnp.tanh(c * w + i)), ones).sum()

    def nested(w):  # a checkpoint inside a checkpoint, both closing over w
        inner = remat(lambda c: fnp.sin(c * w))
        outer = remat(lambda c, _: (inner(c) * w, None))
        return lax.scan(outer, ones, None, length=3)[0].sum()
    return [in_scan, in_cond, in_fori, nested]


@pytest.mark.parametrize("index", range(4))
def test_checkpoint_closing_over_traced_values_inside_control_flow(index):
    f = _closure_programs(nanofn.checkpoint)[index]
    plain = _closure_programs(lambda fun: fun)[index]
    w = np.float64(0.7)
    want = nanofn.grad(plain)(w)
    np.testing.assert_allclose(np.asarray(nanofn.grad(f)(w)), np.asarray(want), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(nanofn.jit(nanofn.grad(f))(w)), np.asarray(want),
                               rtol=1e-12)
    ws = np.array([0.3, 0.9])
    np.testing.assert_allclose(np.asarray(nanofn.vmap(nanofn.grad(f))(ws)),
                               np.asarray(nanofn.vmap(nanofn.grad(plain))(ws)), rtol=1e-12)
    check_grads(f, (w,), order=2)
