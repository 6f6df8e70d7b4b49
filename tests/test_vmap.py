"""vmap: the batching law on every primitive of nanofn/ops/_base.py, in_axes/out_axes
handling, composition with grad/jit/vmap, and the error messages."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn import _core as core
from nanofn import vmap
from nanofn._batching import BatchedConcretizationError
from nanofn.ops import _base

RNG = np.random.default_rng(0)

# ------------------------------------------------------------------------ the batching law

F32 = np.dtype(np.float32)


class Arg:
    """One operand of a primitive: per-example shape, dtype and value range."""

    def __init__(self, shape, dtype=F32, lo=-2.0, hi=2.0):
        self.shape, self.dtype, self.lo, self.hi = tuple(shape), np.dtype(dtype), lo, hi

    def sample(self, rng):
        if self.dtype == bool:
            return rng.random(self.shape) < 0.5
        if np.issubdtype(self.dtype, np.integer):
            return rng.integers(int(self.lo), int(self.hi), self.shape).astype(self.dtype)
        return rng.uniform(self.lo, self.hi, self.shape).astype(self.dtype)


def spec(name, args, **params):
    return pytest.param(name, args, params, id=f"{name}-{len(SPECS)}")


SPECS = []


def add_spec(name, args, **params):
    SPECS.append(spec(name, args, **params))


UNARY_DOMAIN = {
    "log": (0.1, 3), "sqrt": (0.1, 3), "rsqrt": (0.1, 3), "log1p": (0.1, 3),
    "asin": (-0.9, 0.9), "acos": (-0.9, 0.9), "atanh": (-0.9, 0.9), "erf_inv": (-0.9, 0.9),
    "acosh": (1.1, 3),
}
for _name in ["neg", "sign", "floor", "ceil", "abs", "exp", "exp2", "log", "log1p", "expm1",
              "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh",
              "acosh", "atanh", "logistic", "sqrt", "rsqrt", "cbrt", "erf", "erf_inv",
              "is_finite", "stop_gradient"]:
    lo, hi = UNARY_DOMAIN.get(_name, (-2, 2))
    add_spec(_name, [Arg((2, 3), lo=lo, hi=hi)])
add_spec("sin", [Arg(())])
add_spec("round", [Arg((2, 3), lo=-3, hi=3)], rounding_method=0)
add_spec("integer_pow", [Arg((2, 3))], y=3)
add_spec("not", [Arg((4,), bool)])
for _name in ["add", "sub", "mul", "max", "min", "atan2", "nextafter",
              "eq", "ne", "lt", "le", "gt", "ge"]:
    add_spec(_name, [Arg((2, 3)), Arg((2, 3))])
add_spec("add", [Arg((3,)), Arg((2, 3))])  # numpy broadcasting between operands
add_spec("mul", [Arg((2, 1)), Arg((1, 3))])
add_spec("mul", [Arg(()), Arg((2, 3))])
add_spec("div", [Arg((2, 3)), Arg((2, 3), lo=0.5, hi=2)])
add_spec("rem", [Arg((2, 3), lo=-5, hi=5), Arg((2, 3), lo=0.5, hi=2)])
add_spec("pow", [Arg((2, 3), lo=0.1, hi=2), Arg((2, 3))])
for _name in ["and", "or", "xor"]:
    add_spec(_name, [Arg((4,), bool), Arg((4,), bool)])
for _name in ["shift_left", "shift_right_logical", "shift_right_arithmetic"]:
    add_spec(_name, [Arg((4,), np.int32, 0, 100), Arg((4,), np.int32, 0, 5)])
add_spec("select_n", [Arg((2, 3), bool), Arg((2, 3)), Arg((2, 3))])
add_spec("select_n", [Arg((3,), np.int32, 0, 3), Arg((3,)), Arg((3,)), Arg((3,))])
add_spec("convert_element_type", [Arg((2, 3), lo=-5, hi=5)], new_dtype=np.dtype(np.int32))
add_spec("bitcast_convert_type", [Arg((2, 3))], new_dtype=np.dtype(np.int32))
add_spec("broadcast_in_dim", [Arg((3,))], shape=(2, 3), broadcast_dimensions=(1,))
add_spec("broadcast_in_dim", [Arg((2, 1))], shape=(2, 4), broadcast_dimensions=(0, 1))
add_spec("broadcast_in_dim", [Arg(())], shape=(2, 2), broadcast_dimensions=())
add_spec("reshape", [Arg((2, 3))], new_sizes=(3, 2))
add_spec("reshape", [Arg((2, 3))], new_sizes=(6,))
add_spec("transpose", [Arg((2, 3, 4))], permutation=(2, 0, 1))
add_spec("squeeze", [Arg((2, 1, 3))], dimensions=(1,))
for _name in ["reduce_sum", "reduce_max", "reduce_min"]:
    add_spec(_name, [Arg((2, 3, 4))], axes=(0, 2))
add_spec("reduce_sum", [Arg((2, 3))], axes=())
for _name in ["argmax", "argmin"]:
    add_spec(_name, [Arg((2, 3))], axis=1, index_dtype=np.dtype(np.int32))
add_spec("dot_general", [Arg((2, 3)), Arg((3, 4))],
         dimension_numbers=(((1,), (0,)), ((), ())), preferred_element_type=None)
add_spec("dot_general", [Arg((2, 3, 4)), Arg((2, 4, 5))],
         dimension_numbers=(((2,), (1,)), ((0,), (0,))), preferred_element_type=None)
add_spec("dot_general", [Arg((3,)), Arg((3,))],
         dimension_numbers=(((0,), (0,)), ((), ())), preferred_element_type=None)
add_spec("dot_general", [Arg((2, 3, 4)), Arg((4, 3))],
         dimension_numbers=(((1, 2), (1, 0)), ((), ())), preferred_element_type=None)

NO_OPERANDS = {"iota"}  # nothing to batch


def test_every_base_primitive_has_a_vmap_spec():
    prims = {v.name for v in vars(_base).values() if isinstance(v, core.Primitive)}
    covered = {p.values[0] for p in SPECS}
    assert prims - NO_OPERANDS <= covered, sorted(prims - NO_OPERANDS - covered)


def _stack(fun, examples):
    """The reference: apply `fun` to each example and stack the results with numpy."""
    return np.stack([np.asarray(fun(*ex)) for ex in examples])


def _assert_same(got, want):
    got = np.asarray(got)
    assert got.shape == want.shape and got.dtype == want.dtype, \
        (got.shape, got.dtype, want.shape, want.dtype)
    if np.issubdtype(want.dtype, np.inexact):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, want)


def _axes_variants(args):
    n = len(args)
    variants = [(0,) * n, (-1,) * n, tuple(min(1, len(a.shape)) for a in args)]
    if n > 1:
        variants.append((None,) + (0,) * (n - 1))
        variants.append((0,) * (n - 1) + (None,))
    return variants


@pytest.mark.parametrize("name, args, params", SPECS)
def test_vmap_law(name, args, params):
    prim = core.registry[name]
    fun = lambda *xs: prim.bind(*xs, **params)  # noqa: E731
    rng = np.random.default_rng(len(name))
    for in_axes in _axes_variants(args):
        for size in ((3, 1, 0) if in_axes == (0,) * len(args) else (3,)):
            shared = [a.sample(rng) for a in args]
            examples = [[a.sample(rng) if ax is not None else s
                         for a, ax, s in zip(args, in_axes, shared)] for _ in range(size)]
            batched = []
            for i, (a, ax) in enumerate(zip(args, in_axes)):
                if ax is None:
                    batched.append(shared[i])
                else:
                    col = [ex[i] for ex in examples]
                    stack_axis = ax % (len(a.shape) + 1)
                    batched.append(np.stack(col, stack_axis) if col else
                                   np.zeros(a.shape[:stack_axis] + (0,) + a.shape[stack_axis:],
                                            a.dtype))
            got = vmap(fun, in_axes=in_axes)(*batched)
            if size:
                want = _stack(fun, examples)
            else:
                one = np.asarray(fun(*shared))
                want = np.zeros((0,) + one.shape, one.dtype)
            _assert_same(got, want)
    # out_axes: the batch axis can go last
    examples = [[a.sample(rng) for a in args] for _ in range(2)]
    batched = [np.stack([ex[i] for ex in examples]) for i in range(len(args))]
    got = vmap(fun, out_axes=-1)(*batched)
    _assert_same(got, np.moveaxis(_stack(fun, examples), 0, -1))


@given(shape=st.lists(st.integers(1, 3), max_size=2), size=st.integers(0, 3), data=st.data())
def test_vmap_composite_any_axis(shape, size, data):
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    out_rank = max(len(shape) - 1, 0) + 1
    out_axis = data.draw(st.integers(-out_rank, out_rank - 1))
    per_example = RNG.uniform(-1, 1, [size] + shape).astype(np.float32)
    x = np.moveaxis(per_example, 0, axis)

    def f(v):
        if v.ndim == 0:
            return fnp.sin(v) * 2
        return fnp.sum(fnp.tanh(v) * v, axis=0) + fnp.max(v)

    got = vmap(f, in_axes=axis, out_axes=out_axis)(x)
    one = np.asarray(f(fnp.ones(shape)))
    want = (np.stack([np.asarray(f(fnp.asarray(e))) for e in per_example]) if size
            else np.zeros((0,) + one.shape, one.dtype))
    _assert_same(got, np.moveaxis(want, 0, out_axis))


# ------------------------------------------------------------------------ in_axes / out_axes


def test_in_axes_pytree_prefix_with_none_leaves():
    params = {"w": fnp.asarray(RNG.normal(size=(3, 2)).astype(np.float32)),
              "b": fnp.asarray(RNG.normal(size=(4, 2)).astype(np.float32))}
    xs = RNG.normal(size=(4, 3)).astype(np.float32)

    def f(p, x):
        return x @ p["w"] + p["b"]

    got = vmap(f, in_axes=({"w": None, "b": 0}, 0))(params, xs)
    want = np.stack([np.asarray(f({"w": params["w"], "b": params["b"][i]}, xs[i]))
                     for i in range(4)])
    _assert_same(got, want)


def test_in_axes_list_is_read_as_tuple_and_negative_axes():
    x = RNG.normal(size=(3, 5)).astype(np.float32)
    y = RNG.normal(size=(5,)).astype(np.float32)
    got = vmap(lambda a, b: a * b, in_axes=[-1, 0])(x, y)
    _assert_same(got, (x * y).T)


def test_kwargs_are_mapped_over_axis_0():
    x = RNG.normal(size=(4, 3)).astype(np.float32)
    s = RNG.normal(size=(4,)).astype(np.float32)
    got = vmap(lambda x, *, scale: x * scale, in_axes=0)(x, scale=s)
    _assert_same(got, x * s[:, None])


def test_out_axes_pytree_prefix_and_none_for_unbatched_outputs():
    x = RNG.normal(size=(4, 3)).astype(np.float32)
    c = fnp.ones(2)

    def f(v):
        return {"y": fnp.sin(v), "const": c * 2}, v.sum()

    (d, s) = vmap(f, out_axes=({"y": 1, "const": None}, 0))(x)
    _assert_same(d["y"], np.sin(x).T)
    _assert_same(d["const"], np.full(2, 2.0, np.float32))
    _assert_same(s, x.sum(1))


def test_unbatched_outputs_are_broadcast_and_axis_size():
    x = RNG.normal(size=(4, 3)).astype(np.float32)
    out = vmap(lambda v: (v, fnp.zeros(2)))(x)
    _assert_same(out[1], np.zeros((4, 2), np.float32))
    got = vmap(lambda: fnp.ones(3), in_axes=(), axis_size=5)()
    _assert_same(got, np.ones((5, 3), np.float32))
    got = vmap(lambda a: a + 1.0, in_axes=None, axis_size=2, out_axes=1)(fnp.zeros(3))
    _assert_same(got, np.ones((3, 2), np.float32))


def test_python_scalars_and_unbatched_control_flow():
    x = RNG.normal(size=(4,)).astype(np.float32)

    def f(v, flag):
        return v * 2 if flag > 0 else -v  # `flag` is not mapped: Python may branch on it

    _assert_same(vmap(f, in_axes=(0, None))(x, fnp.asarray(1.0)), x * 2)
    _assert_same(vmap(lambda v: 1.5)(x), np.full(4, 1.5, np.float32))


def test_size_zero_and_size_one_batches_of_a_network():
    w = fnp.asarray(RNG.normal(size=(3, 2)).astype(np.float32))

    def net(x):
        return fnp.tanh(x @ w).sum(axis=-1)

    assert vmap(net)(np.zeros((0, 5, 3), np.float32)).shape == (0, 5)
    one = RNG.normal(size=(1, 5, 3)).astype(np.float32)
    _assert_same(vmap(net)(one), np.asarray(net(fnp.asarray(one[0])))[None])


# ------------------------------------------------------------------------ composition


def test_nested_vmap_outer_product():
    a = RNG.normal(size=(3,)).astype(np.float32)
    b = RNG.normal(size=(4,)).astype(np.float32)
    outer = vmap(vmap(lambda x, y: x * y, in_axes=(None, 0)), in_axes=(0, None))
    _assert_same(outer(a, b), np.outer(a, b))
    # the inner vmap mapping a non-leading axis of an outer-batched value
    m = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    got = vmap(vmap(lambda r: fnp.sum(r * r), in_axes=1), in_axes=2)(m)
    _assert_same(got, np.einsum("ijk,ijk->kj", m, m))


def test_vmap_of_grad_and_grad_of_vmap():
    xs = RNG.normal(size=(5, 3)).astype(np.float32)
    w = RNG.normal(size=(3,)).astype(np.float32)

    def loss(w, x):
        return fnp.sum(fnp.tanh(x * w) ** 2)

    per_example = vmap(nanofn.grad(loss), in_axes=(None, 0))(w, xs)
    want = np.stack([np.asarray(nanofn.grad(loss)(w, x)) for x in xs])
    _assert_same(per_example, want)
    total = nanofn.grad(lambda w: vmap(loss, in_axes=(None, 0))(w, xs).sum())(w)
    _assert_same(total, want.sum(0))
    # analytic: d/dw sum tanh(xw)^2 = sum 2 tanh(xw) (1 - tanh^2(xw)) x
    t = np.tanh(xs * w)
    np.testing.assert_allclose(total, (2 * t * (1 - t * t) * xs).sum(0), rtol=1e-5)


def test_jit_of_vmap_and_vmap_of_jit():
    xs = RNG.normal(size=(4, 3)).astype(np.float32)
    f = lambda v: fnp.exp(v) @ fnp.ones((3, 2)) + v.sum()  # noqa: E731
    want = vmap(f)(xs)
    _assert_same(nanofn.jit(vmap(f))(xs), np.asarray(want))
    _assert_same(vmap(nanofn.jit(f))(xs), np.asarray(want))
    jaxpr = nanofn.make_jaxpr(vmap(f))(xs)
    assert "dot_general" in str(jaxpr)


def test_jvp_of_vmap_and_vmap_of_jvp():
    xs = RNG.normal(size=(4, 3)).astype(np.float32)
    ts = RNG.normal(size=(4, 3)).astype(np.float32)
    _, t1 = nanofn.jvp(vmap(fnp.sin), (xs,), (ts,))
    _, t2 = vmap(lambda x, t: nanofn.jvp(fnp.sin, (x,), (t,)))(xs, ts)
    _assert_same(t1, np.cos(xs) * ts)
    _assert_same(t2, np.cos(xs) * ts)


# ------------------------------------------------------------------------ errors


def f2(x, y):
    return x + y


def test_error_in_axes_structure_shows_both():
    with pytest.raises(ValueError) as e:
        vmap(f2, in_axes=(0, 0, 0))(np.zeros(3), np.zeros(3))
    msg = str(e.value)
    assert "in_axes=(0, 0, 0)" in msg and "PyTreeDef((*, *, *))" in msg
    assert "PyTreeDef((*, *))" in msg
    with pytest.raises(ValueError, match=r"keys only in in_axes: \['a'\]"):
        vmap(lambda p: p["w"], in_axes=({"a": 0},))({"w": np.zeros(3)})


def test_error_axis_out_of_range_names_argument_and_shape():
    with pytest.raises(ValueError, match=r"argument y over axis 2.*shape is \(3,\) \(rank 1\)"):
        vmap(f2, in_axes=(0, 2))(np.zeros((3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"argument p\['b'\] over axis 0.*scalar"):
        vmap(lambda p: p["b"])({"b": np.float32(1.0)})


def test_error_inconsistent_sizes_lists_every_argument():
    with pytest.raises(ValueError) as e:
        vmap(f2)(np.zeros((4, 3)), np.zeros(3))
    msg = str(e.value)
    assert "inconsistent sizes" in msg
    assert "argument x of shape (4, 3) has size 4 on axis 0" in msg
    assert "argument y of shape (3,) has size 3 on axis 0" in msg
    with pytest.raises(ValueError, match="axis_size=2 was given"):
        vmap(fnp.sin, axis_size=2)(np.zeros(3))


def test_error_out_axes_none_for_batched_output():
    with pytest.raises(ValueError, match=r"out_axes is None for output\[1\].*batched"):
        vmap(lambda x: (x.sum() * 0 + 1.0, x), out_axes=(0, None))(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"out_axes=3 is out of range.*\[-2, 2\)"):
        vmap(fnp.sin, out_axes=3)(np.zeros((2, 3)))


def test_error_other_bad_inputs():
    with pytest.raises(ValueError, match="at least one argument to map"):
        vmap(f2, in_axes=None)(np.zeros(3), np.zeros(3))
    with pytest.raises(TypeError, match="in_axes must be an int, None"):
        vmap(f2, in_axes=(0, "x"))
    with pytest.raises(TypeError, match="argument y is a str, not an array"):
        vmap(lambda x, y: x)(np.zeros(3), "abc")
    with pytest.raises(TypeError, match=r"returned a str at output\[1\]"):
        vmap(lambda x: (x, "s"))(np.zeros(3))


def test_error_python_control_flow_on_batched_value():
    def f(x):
        return x if x > 0 else -x

    with pytest.raises(BatchedConcretizationError) as e:
        vmap(f)(np.arange(3.0, dtype=np.float32))
    assert isinstance(e.value, nanofn.ConcretizationError)
    assert "where" in str(e.value) and "cond" in str(e.value) and "3 examples" in str(e.value)


@pytest.fixture
def no_rule_p():
    """A primitive without a batching rule, registered for one test only."""
    prim = core.Primitive("test_vmap_no_batch_rule")
    prim.impl = lambda x: x
    prim.abstract_eval = lambda x: x
    yield prim
    del core.registry[prim.name]


def test_error_missing_batching_rule(no_rule_p):
    with pytest.raises(NotImplementedError,
                       match="no batching rule for primitive 'test_vmap_no_batch_rule'"):
        vmap(no_rule_p.bind)(np.zeros(3))
    # an unbatched operand needs no rule: the primitive is just applied once
    out = vmap(lambda x, c: x + no_rule_p.bind(c), in_axes=(0, None))(
        np.zeros(3, np.float32), np.float32(1.0))
    _assert_same(out, np.ones(3, np.float32))
