"""ONNX export: every mapped primitive and four models give onnxruntime outputs equal to
nanofn's (float32 tolerance)."""

import functools

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp
from nanofn import lax, nn

onnx = pytest.importorskip("onnx", reason="needs the [onnx] extra")  # CI installs it
ort = pytest.importorskip("onnxruntime", reason="needs the [onnx] extra")
from nanofn import onnx as nf_onnx  # noqa: E402
from nanofn.ops import _nn  # noqa: E402
from nanofn.ops._attention import fused_attention  # noqa: E402


def run_ort(model, *args):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    leaves = nanofn.tree_util.tree_leaves(list(args))
    feeds = {i.name: np.asarray(x) for i, x in zip(sess.get_inputs(), leaves)}
    return sess.run(None, feeds)


def check(fun, *args, rtol=1e-5, atol=1e-5, **kwargs):
    model = nf_onnx.export(fun, *args, **kwargs)
    got = run_ort(model, *args)
    want = nanofn.tree_util.tree_leaves(fun(*args))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype, w.dtype)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    return model


rng = np.random.default_rng(0)
X = rng.normal(size=(3, 4)).astype(np.float32)
Y = rng.normal(size=(3, 4)).astype(np.float32)
P = np.abs(X) + 0.5
I = rng.integers(-5, 5, size=(3, 4)).astype(np.int32)

UNARY = {
    "neg": jnp.negative, "exp": jnp.exp, "tanh": jnp.tanh, "logistic": nn.sigmoid,
    "sin": jnp.sin, "cos": jnp.cos, "tan": jnp.tan, "atan": jnp.arctan, "sinh": jnp.sinh,
    "cosh": jnp.cosh, "asinh": jnp.arcsinh, "abs": jnp.abs, "sign": jnp.sign,
    "floor": jnp.floor, "ceil": jnp.ceil, "erf": nanofn.scipy.special.erf,
    "round": jnp.round, "round_away": lax.round, "expm1": jnp.expm1, "exp2": jnp.exp2,
    "stop_gradient": lax.stop_gradient, "is_finite": jnp.isfinite,
}
POSITIVE = {"log": jnp.log, "sqrt": jnp.sqrt, "rsqrt": lax.rsqrt, "log1p": jnp.log1p,
            "acosh": lambda x: jnp.arccosh(x + 1)}
UNIT = {"asin": jnp.arcsin, "acos": jnp.arccos, "atanh": jnp.arctanh}
BINARY = {"add": jnp.add, "sub": jnp.subtract, "mul": jnp.multiply, "div": jnp.divide,
          "max": jnp.maximum, "min": jnp.minimum, "eq": jnp.equal, "ne": jnp.not_equal,
          "lt": jnp.less, "le": jnp.less_equal, "gt": jnp.greater, "ge": jnp.greater_equal,
          "atan2": jnp.arctan2, "rem": jnp.remainder if False else lax.rem,
          "pow": lambda a, b: jnp.power(jnp.abs(a) + 0.5, b), "logaddexp": jnp.logaddexp}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name):
    check(UNARY[name], X * 3)


@pytest.mark.parametrize("name", sorted(POSITIVE))
def test_unary_positive(name):
    check(POSITIVE[name], P)


@pytest.mark.parametrize("name", sorted(UNIT))
def test_unary_unit_interval(name):
    check(UNIT[name], np.tanh(X))


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary(name):
    check(BINARY[name], X, Y)


def test_logaddexp_edges_and_softplus():
    inf = np.float32(np.inf)
    a = np.array([-inf, inf, 0.0, -inf, 1.0], np.float32)
    b = np.array([-inf, inf, 0.0, 2.0, -1.0], np.float32)
    check(jnp.logaddexp, a, b)
    check(lambda x: (nn.softplus(x), nn.log_sigmoid(x)), X * 3)


def test_integer_and_logical_ops():
    check(lambda a, b: (a + b, a * b, lax.div(a, jnp.where(b == 0, 1, b)),
                        lax.rem(a, jnp.where(b == 0, 1, b)), a & b, a | b, a ^ b, ~a,
                        jnp.logical_and(a > 0, b > 0), jnp.logical_or(a > 0, b > 0),
                        jnp.logical_not(a > 0), jnp.logical_xor(a > 0, b > 0)), I, I[::-1])


def test_integer_pow_convert_select():
    check(lambda x: (x ** 2, x ** 3, x ** -1, x.astype(jnp.int32), (x > 0).astype(jnp.float32),
                     jnp.where(x > 0, x, -2 * x), lax.select_n(jnp.int32(2), x, x + 1, x + 2)),
          X)


def test_shape_ops():
    def f(x):
        return (x.reshape(4, 3), x.T, jnp.squeeze(x[None]), jnp.concatenate([x, x], axis=1),
                x[1:3, ::2], jnp.flip(x, 1), jnp.pad(x, ((1, 2), (0, 1))),
                lax.pad(x, 0.5, ((-1, 1, 0), (2, -1, 0))), jnp.broadcast_to(x[:, :1], (3, 4)),
                jnp.expand_dims(x, 0) * jnp.ones((2, 1, 1)))
    check(f, X)


def test_dynamic_slice_and_gather():
    def f(x, i):
        return (lax.dynamic_slice(x, (i, 1), (2, 2)), x[jnp.array([2, 0, 1])],
                jnp.take(x, jnp.array([[0, 3], [5, 1]]), axis=1, mode="clip"),
                jnp.take(x, jnp.array([0, 9]), axis=0, mode="fill", fill_value=-1.0))
    check(f, X, np.int32(2))
    check(f, X, np.int32(7))  # clamped, as in XLA


def test_reductions_and_cumsum():
    def f(x):
        return (x.sum(), x.sum(0), x.max(1), x.min(), jnp.prod(x, 1), jnp.argmax(x, 1),
                jnp.argmin(x, 0), jnp.cumsum(x, 1), lax.cumsum(x, 0, reverse=True), x.mean(1))
    check(f, X)


def test_boolean_reductions():
    check(lambda x: (jnp.any(x > 1, axis=1), jnp.all(x > -3), jnp.all(x > 0, axis=0)), X)


def test_cumulative_product_max_and_min():
    check(lambda x: (jnp.cumprod(x, 1), lax.cummax(x, 0), lax.cummin(x, 1, reverse=True),
                     lax.cumprod(x, 0, reverse=True), lax.cummax(I, 1)), X, rtol=1e-4)
    with pytest.raises(NotImplementedError, match="cumprod along an axis of 300"):
        nf_onnx.export(lambda x: jnp.cumprod(x), np.ones(300, np.float32))


# ties, repeated values, NaN and infinities: lax.sort's order (NaN last), stable
SORTABLE = np.array([[3.0, np.nan, -1.0, 3.0, -np.inf, 0.5],
                     [2.0, 2.0, np.inf, np.nan, -2.0, 2.0],
                     [0.0, -0.0, 1.0, -1.0, np.nan, np.nan]], np.float32)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_sort_argsort_and_top_k(axis):
    labels = (np.arange(SORTABLE.size).reshape(SORTABLE.shape) % 3).astype(np.int32)

    def f(x, i):
        return (jnp.sort(x, axis=axis), jnp.argsort(x, axis=axis, stable=True),
                jnp.sort(i, axis=axis), jnp.argsort(i, axis=axis),
                jnp.argsort(-i, axis=axis, descending=False),
                lax.sort((i, x), dimension=axis % 2, num_keys=2),
                lax.sort((x > 1, x), dimension=axis % 2, num_keys=1))
    check(f, SORTABLE, labels)
    check(lambda x: lax.top_k(x, 3), np.nan_to_num(SORTABLE) + np.arange(6) * 1e-3)
    check(lambda x: jnp.take_along_axis(x, jnp.argsort(x, axis=axis), axis=axis), X)


def test_dynamic_update_slice():
    def f(x, i, j):
        return (lax.dynamic_update_slice(x, jnp.full((2, 2), 9.0), (i, j)),
                lax.dynamic_update_slice(x, jnp.zeros((3, 1)), (i, j)),
                lax.dynamic_update_slice(x, jnp.zeros((1, 4)), (j, 0)),
                lax.dynamic_update_slice(x, x, (i, j)),
                jnp.asarray(x).at[1:3, 2:].set(-1.0))
    for i, j in [(0, 0), (1, 2), (2, 3), (-4, 7), (5, -1)]:  # out-of-range starts: clamped
        check(f, X, np.int32(i), np.int32(j))


@pytest.mark.parametrize("combine", ["set", "add", "mul", "min", "max"])
def test_scatter_combines_repeats_and_drops_out_of_bounds(combine):
    rows = np.array([0, 2, 2, 7, -9], np.int32)  # a repeat, and two out of bounds

    def f(x, idx, u):
        x = jnp.asarray(x)
        ref = x.at[idx]
        return (getattr(ref, "set" if combine == "set" else combine)(u, mode="drop"),
                getattr(x.at[1, 3], "set" if combine == "set" else combine)(5.0),
                getattr(x.at[:, jnp.array([3, 0])], "set" if combine == "set" else
                        combine)(u[:3, :2]))
    u = rng.normal(size=(5, 4)).astype(np.float32)
    if combine == "set":
        u[1] = u[2]  # which of two updates of one row lands is not specified: make them equal
    check(f, X, rows, u)


def test_while_loop_as_onnx_loop():
    def f(x, n):
        def body(c):
            i, y = c
            return i + 1, jnp.tanh(y @ w) + x
        w = jnp.eye(4) * 0.5
        return lax.while_loop(lambda c: c[0] < n, body, (0, x))
    for n in (0, 1, 5):
        m = check(f, X, np.int32(n), rtol=1e-5)
    assert "Loop" in [node.op_type for node in m.graph.node]
    check(lambda x: lax.fori_loop(0, 3, lambda i, c: c * 1.5 + i, x), X)


def test_dot_general_forms():
    a, b = rng.normal(size=(2, 3, 4)).astype(np.float32), rng.normal(size=(2, 4, 5)).astype(
        np.float32)
    check(lambda x, y: (x @ y, jnp.einsum("bij,bjk->bik", x, y), jnp.einsum("bij,cjk->bcik",
                                                                             x, y),
                        x[0] @ y[0], jnp.tensordot(x, y, axes=([0, 2], [0, 1]))), a, b)


def test_nn_primitives():
    def f(x):
        return (nn.softmax(x), nn.log_softmax(x), nanofn.scipy.special.logsumexp(x, axis=-1),
                nn.gelu(x), nn.relu(x), nn.silu(x))
    check(f, X)
    ln = nn.LayerNorm()
    _, p = ln.init(nanofn.random.key(0), (-1, 4))
    check(functools.partial(ln.apply, p), X)
    check(lambda x: (_nn.attention_softmax(x, 0.5), _nn.attention_softmax(x, 2.0, True)),
          np.stack([X, Y]))
    q, k, v = (rng.normal(size=shape).astype(np.float32)
               for shape in ((2, 3, 2, 4), (2, 5, 2, 4), (2, 5, 2, 4)))
    for causal in (False, True):  # both results of the fused primitive
        check(lambda q, k, v: fused_attention(q, k, v, 0.5, causal), q, k, v)


def test_conv_and_pooling():
    x = rng.normal(size=(2, 7, 6, 3)).astype(np.float32)
    w = rng.normal(size=(3, 2, 3, 4)).astype(np.float32)
    check(lambda x, w: (lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                 dimension_numbers=("NHWC", "HWIO", "NHWC")),
                        lax.conv_general_dilated(x, w, (2, 1), ((1, 0), (2, 1)),
                                                 rhs_dilation=(1, 2),
                                                 dimension_numbers=("NHWC", "HWIO", "NHWC")),
                        lax.conv_general_dilated(x, w, (1, 1), "VALID", lhs_dilation=(2, 1),
                                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))),
          x, w, rtol=1e-4, atol=1e-4)
    for layer in (nn.MaxPool((2, 2), (2, 2)), nn.MaxPool((3, 2), (1, 2), "SAME"),
                  nn.AvgPool((2, 3)), nn.SumPool((2, 2), (1, 1), "SAME")):
        _, p = layer.init(nanofn.random.key(0), (-1, 7, 6, 3))
        check(functools.partial(layer.apply, p), x)


def test_scan_as_onnx_scan_and_unrolled():
    def f(c0, xs):
        def body(c, x):
            c = jnp.tanh(c * 0.5 + x)
            return c, c * 2
        return lax.scan(body, c0, xs)
    c0, xs = X[0], rng.normal(size=(5, 4)).astype(np.float32)
    m = check(f, c0, xs)
    assert "Scan" in [n.op_type for n in m.graph.node]
    m = check(f, c0, xs, unroll_scan=True)
    assert "Scan" not in [n.op_type for n in m.graph.node]
    check(lambda c, xs: lax.scan(lambda c, x: (c + x, c), c, xs, reverse=True), c0, xs)


def test_cond_and_custom_derivatives():
    def f(x, p):
        return lax.cond(p > 0, lambda y: jnp.sin(y), lambda y: y * 3.0, x)
    check(f, X, np.float32(1.0))
    check(f, X, np.float32(-1.0))
    check(lambda x, i: lax.switch(i, [jnp.sin, jnp.cos, jnp.tanh], x), X, np.int32(2))

    @nanofn.custom_jvp
    def g(x):
        return jnp.log1p(jnp.exp(x))
    g.defjvp(lambda primals, tangents: (g(primals[0]), tangents[0] * nn.sigmoid(primals[0])))
    check(g, X)


def test_inputs_are_named_from_pytree_paths_and_closures_are_initializers():
    init, apply = nn.serial(nn.Dense(5), nn.Relu, nn.Dense(2))
    _, params = init(nanofn.random.key(0), (-1, 4))
    m = check(apply, params, X)
    names = [i.name for i in m.graph.input]
    assert names[-1] == "inputs" and "params[0]['w']" in names
    m = check(functools.partial(apply, params), X)
    assert [i.name for i in m.graph.input] == ["inputs"]
    assert len(m.graph.initializer) >= 4


def test_unmapped_primitive_names_it_and_the_source_line():
    with pytest.raises(NotImplementedError, match=r"'eigh'.*test_onnx\.py:\d+"):
        nf_onnx.export(lambda x: jnp.linalg.eigh(x @ x.T)[0], X)


def test_export_writes_the_file(tmp_path):
    path = tmp_path / "f.onnx"
    nf_onnx.export(jnp.tanh, X, path=str(path))
    assert onnx.load(str(path)).graph.node[0].op_type == "Tanh"


# --------------------------------------------------------------------------- models


def test_mlp_model():
    init, apply = nn.serial(nn.Dense(32), nn.Relu, nn.Dense(10), nn.LogSoftmax)
    _, params = init(nanofn.random.key(0), (-1, 64))
    check(functools.partial(apply, params), rng.normal(size=(8, 64)).astype(np.float32))


def test_cnn_model_with_batchnorm_in_inference_mode():
    model = nn.serial(nn.Conv(8, (3, 3), padding="SAME"), nn.BatchNorm(), nn.Relu,
                      nn.MaxPool((2, 2), (2, 2)), nn.Flatten, nn.Dropout(0.5), nn.Dense(10))
    init, apply = model
    _, params = init(nanofn.random.key(0), (-1, 8, 8, 1))
    _, state = model.init_state((-1, 8, 8, 1))
    x = rng.normal(size=(4, 8, 8, 1)).astype(np.float32)
    # a few training steps' worth of statistics, so inference uses non-trivial ones
    for _ in range(2):
        _, state = apply(params, x, state=state, training=True, rng=nanofn.random.key(1))

    def infer(x):
        return apply(params, x, state=state)[0]
    check(infer, x, rtol=1e-4, atol=1e-4)


def test_gru_model():
    init, apply = nn.serial(nn.GRU(16, return_sequences=False), nn.Dense(10))
    _, params = init(nanofn.random.key(0), (-1, 8, 8))
    check(functools.partial(apply, params), rng.normal(size=(4, 8, 8)).astype(np.float32),
          rtol=1e-4, atol=1e-4)


def test_transformer_model_with_causal_attention():
    model = nn.serial(nn.Embedding(50, 16),
                      nn.TransformerEncoderLayer(2, 32, causal=True),
                      nn.LayerNorm(), nn.Dense(50))
    init, apply = model
    _, params = init(nanofn.random.key(0), (-1, 7))
    tokens = rng.integers(0, 50, size=(3, 7)).astype(np.int32)
    check(functools.partial(apply, params), tokens, rtol=1e-4, atol=1e-4)


def test_nanofn_onnx_is_an_attribute_after_import_nanofn_alone():
    # `import nanofn; nanofn.onnx.export(...)` as the docs write it; `import nanofn` itself
    # does not import the onnx package (the submodule loads on first use)
    import subprocess
    import sys
    code = ("import sys, nanofn; assert 'onnx' not in sys.modules; "
            "import numpy as np; m = nanofn.onnx.export(lambda x: x * 2.0, np.ones(3, np.float32)); "
            "print(type(m).__name__, 'onnx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["ModelProto", "True"]
