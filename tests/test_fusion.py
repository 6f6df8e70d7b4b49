"""Elementwise fusion (nanofn/_fusion.py) and the kernel cache (nanofn/_kernels.py).

Each test compares a fused jaxpr's plan with the unfused one, which runs every primitive's
numpy `impl`. Only a handful of distinct kernels are generated (hypothesis varies shapes,
dtypes and values, which do not change a kernel's source), so numba compiles few loops.
"""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import pathlib
import platform

import numpy as np
import pytest
from hypothesis import given, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn import _core as core
from nanofn import _fusion, _jit, _kernels
from nanofn import lax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
R = core.registry


@pytest.fixture(autouse=True)
def kernels_on():
    """These tests are about fusion: run them even where NANOFN_USE_KERNELS=0 is set."""
    with nanofn.config._override("nanofn_use_kernels", True):
        yield


def jaxpr_of(f, *args):
    return _jit.simplify(nanofn.make_jaxpr(f)(*args))


def run_both(closed, args):
    """(unfused results, fused results, fused jaxpr), checking the fused jaxpr's types."""
    fused = _fusion.fuse(closed)
    core.typecheck_jaxpr(fused.jaxpr)
    return _jit.Plan(closed)(list(args)), _jit.Plan(fused)(list(args)), fused


def names(closed):
    return [e.primitive.name for e in closed.eqns]


def assert_same(ref, got, exact):
    assert len(ref) == len(got)
    for r, g in zip(ref, got):
        r, g = np.asarray(r), np.asarray(g)
        assert r.shape == g.shape and r.dtype == g.dtype, (r.shape, g.shape, r.dtype, g.dtype)
        if exact or r.dtype == bool:
            np.testing.assert_array_equal(g, r)
        else:
            tol = 1e-5 if r.dtype == np.float32 else 1e-12
            np.testing.assert_allclose(g, r, rtol=tol, atol=tol)


# ------------------------------------------------------------------------ every operation

UNARY = ["neg", "abs", "sign", "floor", "ceil", "sqrt", "rsqrt", "exp", "exp2", "log", "log1p",
         "expm1", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh",
         "acosh", "atanh", "logistic", "erf"]
BINARY = ["add", "sub", "mul", "div", "max", "min", "pow", "atan2"]
COMPARE = ["eq", "ne", "lt", "le", "gt", "ge"]


def every_op(x, y):
    """Each fusible primitive applied to x (and y), all tied into one group by a sum."""
    outs = [R[n].bind(x) for n in UNARY] + [R[n].bind(x, y) for n in BINARY]
    outs += [R["integer_pow"].bind(x, y=p) for p in (0, 1, 2, 3, -2)]
    for n in COMPARE:
        c = R[n].bind(x, y)
        outs += [c, R["select_n"].bind(c, x, y)]
    b, fin = R["lt"].bind(x, y), R["is_finite"].bind(x)
    outs += [fin, R["not"].bind(b), R["and"].bind(b, fin), R["or"].bind(b, fin),
             R["xor"].bind(b, fin)]
    other = np.dtype("float64" if x.dtype == np.float32 else "float32")
    outs += [R["convert_element_type"].bind(x, new_dtype=other),
             R["convert_element_type"].bind(b, new_dtype=x.dtype),
             R["convert_element_type"].bind(x, new_dtype=np.dtype(bool)),
             R["stop_gradient"].bind(x)]
    total = x
    for o in outs:
        total = R["add"].bind(total, R["convert_element_type"].bind(o, new_dtype=x.dtype)
                              if o.dtype != x.dtype else o)
    return outs + [total]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_operation_matches_numpy_on_special_values(dtype, monkeypatch):
    # ulp-level differences are allowed only where numba calls the C library (libm) and
    # numpy its own vectorised functions; inf, nan and signed zeros must agree everywhere.
    monkeypatch.setattr(_fusion, "FUSE_MAX_SIZE", dict.fromkeys(_fusion._TRANSCENDENTAL_OPS))
    vals = np.array([0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 2.5, -3.7, 1e-30, 88.0, -100.0, 1e30,
                     np.inf, -np.inf, np.nan, 0.999], dtype)
    x, y = np.repeat(vals, len(vals)), np.tile(vals, len(vals))
    with np.errstate(all="ignore"):
        closed = jaxpr_of(every_op, x, y)
        ref, got, fused = run_both(closed, [x, y])
    assert names(fused) == ["fused_elementwise"]
    for r, g in zip(ref, got):
        r, g = np.asarray(r), np.asarray(g)
        assert r.dtype == g.dtype and r.shape == g.shape
        if r.dtype == bool:
            np.testing.assert_array_equal(g, r)
            continue
        with np.errstate(all="ignore"):
            close = (r == g) | (np.isnan(r) & np.isnan(g)) | \
                (np.abs(r - g) <= 4 * np.finfo(r.dtype).eps * np.abs(r))
            assert close.all(), (x[~close][:3], y[~close][:3], r[~close][:3], g[~close][:3])


def gelu_and_grad(x, b, g):
    """A bias add, GELU (the tanh approximation) and its gradient: W7's MLP activation."""
    from nanofn.ops._nn import gelu_grad_p, gelu_p
    h = x + b
    y = gelu_p.bind(h)
    return y, gelu_grad_p.bind(h, g * y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gelu_and_its_gradient_fuse_with_the_bias_add(dtype, monkeypatch):
    # float32: the kernels' own arithmetic (the vectorising tanh), so fused equals the
    # primitives' kernels bit for bit; float64: numpy's tanh against the C library's
    monkeypatch.setattr(_fusion, "FUSE_MAX_SIZE", dict.fromkeys(_fusion._TRANSCENDENTAL_OPS))
    vals = np.array([0.0, -0.0, 1e-30, 0.5, -0.5, 3.0, -3.0, 9.5, -9.5, 10.0, -10.0, 11.0,
                     -11.0, 1e20, -1e20, np.inf, -np.inf, np.nan], dtype)
    rng = np.random.default_rng(0)
    x = np.concatenate([vals, rng.normal(scale=3, size=46).astype(dtype)]).reshape(8, 8)
    b, g = rng.normal(size=8).astype(dtype), rng.normal(size=(8, 8)).astype(dtype)
    with np.errstate(all="ignore"):
        ref, got, fused = run_both(jaxpr_of(gelu_and_grad, x, b, g), [x, b, g])
    assert names(fused) == ["fused_elementwise"]
    if dtype == "float32":
        assert_same(ref, got, exact=True)
        return
    for r, v in zip(ref, got):
        r, v = np.asarray(r), np.asarray(v)
        close = (r == v) | (np.isnan(r) & np.isnan(v)) | (np.abs(r - v) <= 1e-14 * np.abs(r))
        assert close.all(), (x[~close], r[~close], v[~close])


def test_float64_gelu_of_large_arrays_is_left_to_its_primitive():
    x = np.ones((64, 64))
    fused = _fusion.fuse(jaxpr_of(gelu_and_grad, x, x[0], x))
    assert "gelu" in names(fused) and "gelu_grad" in names(fused)
    x32 = x.astype(np.float32)
    assert names(_fusion.fuse(jaxpr_of(gelu_and_grad, x32, x32[0], x32))) == \
        ["fused_elementwise"]


# ------------------------------------------------------------------------ random chains


def cheap_chain(x, s):
    y = fnp.where(x > s, x * s - 1.5, -x / (1.0 + x * x))
    z = fnp.maximum(y, 0.25) - fnp.minimum(x, s) * fnp.abs(y)
    return z, fnp.sqrt(fnp.abs(z)) + s


def transcendental_chain(x, s):
    return (fnp.tanh(x) * fnp.sin(s) + 0.5 * fnp.exp(-x * x) + fnp.log1p(fnp.abs(x))
            + lax.logistic(x * s),)


SHAPES = [(), (0,), (1,), (5,), (2, 3), (0, 4), (3, 1, 2)]


@given(shape=st.sampled_from(SHAPES), dtype=st.sampled_from(["float32", "float64"]),
       scalar_s=st.booleans(), transcendental=st.booleans(), seed=st.integers(0, 2 ** 16),
       special=st.booleans())
def test_fused_chains_equal_unfused(shape, dtype, scalar_s, transcendental, seed, special):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype(dtype) * 2
    if special and x.size:
        x.reshape(-1)[rng.integers(0, x.size)] = rng.choice([np.inf, -np.inf, np.nan, 0.0])
    s = (rng.normal(size=() if scalar_s else shape)).astype(dtype)
    f = transcendental_chain if transcendental else cheap_chain
    with np.errstate(all="ignore"):
        ref, got, fused = run_both(jaxpr_of(f, x, s), [x, s])
    # sin(s) of a scalar s has another shape than the chain: it stays a separate step
    assert names(fused) == ["sin", "fused_elementwise"] if transcendental and s.shape != x.shape \
        else ["fused_elementwise"]
    # cheap arithmetic is IEEE-exact in both; libm and numpy may differ by an ulp or two
    assert_same(ref, got, exact=not transcendental)


def bias_chain(x, b, c, s):
    # rows of both lengths (b: the last axis; c: the last two axes), leading 1s, a scalar,
    # comparisons and a select: the pattern of `relu(x @ w + b)` and its backward mask
    y = x + b
    h = fnp.where(y > 0, y * c, -y / (1.0 + c * c))
    return fnp.maximum(h, b * s) - c, (y > c).astype(x.dtype) * b


ROW_CASES = [((2, 3, 4), (4,), (3, 4)), ((5, 6), (1, 6), (6,)), ((2, 1, 7), (7,), (1, 1, 7)),
             ((4, 3), (3,), (3,)), ((0, 5), (5,), (5,)), ((3, 2, 5), (1, 5), (2, 5))]


@given(case=st.sampled_from(ROW_CASES), dtype=st.sampled_from(["float32", "float64"]),
       seed=st.integers(0, 2 ** 16))
def test_rows_broadcast_in_the_kernel_equal_numpy_broadcasting(case, dtype, seed):
    xs, bs, cs = case
    rng = np.random.default_rng(seed)
    x, b, c = (rng.normal(size=sh).astype(dtype) for sh in (xs, bs, cs))
    s = np.asarray(rng.normal(), dtype)
    closed = jaxpr_of(bias_chain, x, b, c, s)
    with np.errstate(all="ignore"):
        ref, got, fused = run_both(closed, [x, b, c, s])
    assert names(fused).count("fused_elementwise") >= 1
    main = [e for e in fused.eqns if e.primitive.name == "fused_elementwise"
            and e.params["program"].shape == xs]
    assert len(main) == 1 and main[0].params["program"].cols  # the rows went in
    assert_same(ref, got, exact=True)  # IEEE arithmetic: bit for bit


def test_row_kinds_and_their_checks():
    x, b, c = np.ones((2, 3, 4), np.float32), np.ones(4, np.float32), np.ones((3, 4), np.float32)
    fused = _fusion.fuse(jaxpr_of(lambda x, b, c: ((x + b) * c - b,), x, b, c))
    (eqn,) = fused.eqns
    program = eqn.params["program"]
    assert program.cols == 12 and sorted(k for k, _ in program.inputs) == ["a", "q", "r"]
    assert "c % m" in program.source and "i = r * cols + c" in program.source
    # an operand that is not a row of the program's shape is refused by its type check
    kinds = [k for k, _ in program.inputs]
    bad = [np.ones((2, 4), np.float32) if k == "q" else v
           for k, v in zip(kinds, [x if k == "a" else b if k == "q" else c for k in kinds])]
    with pytest.raises(TypeError, match="row of the last axes"):
        nanofn.make_jaxpr(lambda *a: eqn.primitive.bind(*a, **eqn.params))(*bad)
    # a column (broadcast along the last axis) is not a row: that add stays unfused
    col = np.ones((2, 3, 1), np.float32)
    assert names(_fusion.fuse(jaxpr_of(lambda x, k: (x + k,), x, col))) == ["add"]


def test_rows_in_a_plan_can_be_differentiated_and_batched():
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    b = np.linspace(0.5, -0.5, 4)

    def f(x, b):
        return fnp.sum(nanofn.nn.relu(x * 2.0 + b) * b)

    g = nanofn.jit(nanofn.grad(f, argnums=(0, 1)))
    for _ in range(2):  # the second call runs the fused plan
        gx, gb = g(x, b)
    y = x * 2 + b
    np.testing.assert_allclose(gx, (y > 0) * b * 2)
    np.testing.assert_allclose(gb, ((y > 0) * b + np.maximum(y, 0)).sum(0))
    batched = nanofn.jit(nanofn.vmap(f, in_axes=(0, None)))
    xs = np.stack([x, -x])
    for _ in range(2):
        out = batched(xs, b)
    np.testing.assert_allclose(out, [f(x, b), f(-x, b)])


# ------------------------------------------------------------------------ windows


def gates(h, b, c, s, k, offsets):
    """A GRU-like cell over windows of the last axis of `h + b`: each gate a slice of it,
    with a row `b` of the whole width, a row `c` of the last two axes (or one element), a
    scalar, comparisons and a select (IEEE arithmetic, so fused equals unfused exactly)."""
    z = h + b
    r, u, n = (z[..., o:o + k] for o in offsets)
    g = fnp.where(r > s, r * c, u - s) * n
    return (1.0 - u) * g + u * s, fnp.maximum(r, n) - c


WINDOW_CASES = [((6,), 2), ((4, 9), 3), ((3, 2, 12), 4), ((2, 5), 1), ((0, 6), 2), ((1, 1, 8), 2)]


@given(case=st.sampled_from(WINDOW_CASES), dtype=st.sampled_from(["float32", "float64"]),
       overlap=st.booleans(), row_c=st.booleans(), seed=st.integers(0, 2 ** 16),
       fortran=st.booleans())
def test_last_axis_windows_are_read_in_place_and_equal_numpy_slicing(
        case, dtype, overlap, row_c, seed, fortran):
    shape, k = case
    rng = np.random.default_rng(seed)
    width = shape[-1]
    offsets = (0, k, width - k) if not overlap else (0, 1, width - k - 1 if width > k else 0)
    h = rng.normal(size=shape).astype(dtype)
    if fortran and h.ndim > 1:
        h = np.asfortranarray(h)  # a parent that is not C-contiguous is read through a copy
    b = rng.normal(size=width).astype(dtype)
    c_shape = shape[-2:-1] + (k,) if row_c and len(shape) > 1 else ()
    c = rng.normal(size=c_shape).astype(dtype)
    s = np.asarray(rng.normal(), dtype)
    closed = jaxpr_of(lambda h, b, c, s: gates(h, b, c, s, k, offsets), h, b, c, s)
    ref, got, fused = run_both(closed, [h, b, c, s])
    assert_same(ref, got, exact=True)
    programs = [e.params["program"] for e in fused.eqns if e.primitive.name == "fused_elementwise"]
    assert len(programs) == 1 and programs[0].windows  # one kernel reads h's windows
    assert "add" not in names(fused)  # `h + b` moved below the slices, into the kernel
    if c.ndim == 2 and c.shape[0] > 1 and h.ndim == 3:
        # a row of more axes than the windows' rows is read at the flat index
        assert "p" in [kind for kind, _ in programs[0].inputs]


def test_windows_from_products_fuse_in_jit_and_transform():
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(3, 12)).astype(np.float32)
    b, h = rng.normal(size=12).astype(np.float32), rng.normal(size=(5, 4)).astype(np.float32)

    def cell(x, w, b, h):  # a GRU step: gates are windows of one product
        z = x @ w + b
        r, u = nanofn.nn.sigmoid(z[:, :4]), nanofn.nn.sigmoid(z[:, 4:8])
        n = fnp.tanh(z[:, 8:] * r)
        return fnp.sum((1.0 - u) * n + u * h)

    closed = jaxpr_of(nanofn.grad(cell, argnums=(1, 2, 3)), x, w, b, h)
    fused = _fusion.fuse(closed)
    assert any(e.params["program"].windows for e in fused.eqns
               if e.primitive.name == "fused_elementwise")
    ref = nanofn.grad(cell, argnums=(1, 2, 3))(x, w, b, h)
    g = nanofn.jit(nanofn.grad(cell, argnums=(1, 2, 3)))
    for _ in range(2):  # the second call runs the fused plan
        got = g(x, w, b, h)
    for r, v in zip(ref, got):
        np.testing.assert_allclose(v, r, rtol=2e-5, atol=1e-6)
    batched = nanofn.jit(nanofn.vmap(cell, in_axes=(0, None, None, 0)))
    xs, hs = np.stack([x, -x]), np.stack([h, 2 * h])
    for _ in range(2):
        out = batched(xs, w, b, hs)
    np.testing.assert_allclose(out, [cell(x, w, b, h), cell(-x, w, b, 2 * h)], rtol=2e-5)


def test_a_slice_moves_below_arithmetic_only_when_a_kernel_takes_it():
    x, b = np.ones((3, 8), np.float32), np.ones(8, np.float32)
    w = np.ones((4, 2), np.float32)
    # the slice feeds a product, not arithmetic: `x + b` stays whole, the slice a view
    kept = _fusion.fuse(jaxpr_of(lambda x, b: ((x * 2.0 + b)[:, 4:] @ w,), x, b))
    assert names(kept) == ["fused_elementwise", "slice", "dot_general"]
    # the result is also returned whole: the arithmetic cannot move below the slices
    both = _fusion.fuse(jaxpr_of(lambda x, b: ((x + b)[:, :4] * 3.0, x + b), x, b))
    assert sum(e.primitive.name == "add" for e in _fusion._sink_slices(both.jaxpr).eqns) <= 1
    ref, got, _ = run_both(jaxpr_of(lambda x, b: ((x + b)[:, :4] * 3.0, x + b), x, b), [x, b])
    assert_same(ref, got, exact=True)


def test_window_inputs_are_type_checked():
    h, b = np.ones((2, 6), np.float32), np.ones(6, np.float32)
    fused = _fusion.fuse(jaxpr_of(lambda h, b: ((h + b)[:, 2:4] * (h + b)[:, :2],), h, b))
    (eqn,) = [e for e in fused.eqns if e.primitive.name == "fused_elementwise"]
    assert eqn.params["program"].windows
    args = [np.ones(v.aval.shape[:-1] + (v.aval.shape[-1] + 1,), np.float32)
            if kind == "w" else np.ones(v.aval.shape, np.float32)
            for v, (kind, _) in zip(eqn.invars, eqn.params["program"].inputs)]
    with pytest.raises(TypeError, match=r"expected float32\[2, 6\]"):
        nanofn.make_jaxpr(lambda *a: eqn.primitive.bind(*a, **eqn.params))(*args)


def joined(a, b, c, s):
    """Concatenations along the last axis of values computed in one group: parts that are
    results, an input itself, a constant of equal elements, one value twice, booleans."""
    u, v = a * b + s, fnp.maximum(a, c) - 1.0
    return (fnp.concatenate([u, v, a, fnp.full_like(a, 2.0), u], axis=-1),
            fnp.concatenate([u > v, v > s], axis=-1), u * v)


@given(shape=st.sampled_from([(3,), (2, 4), (2, 3, 5), (0, 3), (1, 1)]),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2 ** 16))
def test_concatenations_are_written_by_the_kernel_in_their_columns(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    a, b, c = (rng.normal(size=shape).astype(dtype) for _ in range(3))
    s = np.asarray(rng.normal(), dtype)
    ref, got, fused = run_both(jaxpr_of(joined, a, b, c, s), [a, b, c, s])
    assert_same(ref, got, exact=True)
    assert "concatenate" not in names(fused)
    (program,) = [e.params["program"] for e in fused.eqns
                  if e.primitive.name == "fused_elementwise"]
    assert sorted(len(o) for o in program.outputs if type(o) is tuple) == [2, 5]
    assert program.cols == shape[-1]


def test_a_concatenation_of_other_shapes_or_axes_is_left_to_numpy():
    a, b = np.ones((2, 3), np.float32), np.ones((2, 4), np.float32)
    f = lambda a, b: (fnp.concatenate([a * 2.0, b * 2.0], axis=-1),)  # noqa: E731
    assert "concatenate" in names(_fusion.fuse(jaxpr_of(f, a, b)))
    g = lambda a: (fnp.concatenate([a * 2.0, a - 1.0], axis=0),)  # noqa: E731
    ref, got, fused = run_both(jaxpr_of(g, a), [a])
    assert "concatenate" in names(fused)
    assert_same(ref, got, exact=True)


_MANY_ARRAYS_SCRIPT = textwrap.dedent("""
    import numpy as np, nanofn
    from nanofn import _fusion, _jit
    def f(h, b):  # nine outputs over six windows and their rows: ~150 overlap checks
        z = h + b
        w = [z[:, 16 * j:16 * j + 16] for j in range(6)]
        return tuple(w[j % 6] * w[(j + 1) % 6] + float(j) for j in range(9))
    h, b = np.ones((8, 96), np.float32), np.ones(96, np.float32)
    fused = _fusion.fuse(_jit.simplify(nanofn.make_jaxpr(f)(h, b)))
    (eqn,) = [e for e in fused.eqns if e.primitive.name == "fused_elementwise"]
    program = eqn.params["program"]
    program.runner()
    asm = "".join(program._serial.inspect_asm().values())
    print(len(program.outputs), "mulps" in asm)  # packed: vmulps; scalar: vmulss
""")


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="reads x86 assembly")
def test_a_kernel_over_many_arrays_is_vectorised(tmp_path):
    # LLVM leaves a loop scalar past 128 run-time overlap checks unless nanofn raises it
    env = {"NANOFN_CACHE_DIR": str(tmp_path), "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "NANOFN_USE_KERNELS": "1"}
    assert _python(_MANY_ARRAYS_SCRIPT, env) == ["9", "True"]


_WIDE_SCRIPT = textwrap.dedent("""
    import numpy as np, nanofn
    from numba.core import config
    from nanofn import _fusion, _jit
    x = np.ones(4096, np.float32)
    fused = _fusion.fuse(_jit.simplify(nanofn.make_jaxpr(lambda x: x * x + 1.0)(x)))
    (eqn,) = [e for e in fused.eqns if e.primitive.name == "fused_elementwise"]
    program = eqn.params["program"]
    program.runner()
    asm = "".join(program._serial.inspect_asm().values())
    print(config.CPU_FEATURES is not None and config.CPU_FEATURES.endswith("-prefer-256-bit"),
          "zmm" in asm)
""")


def _has_avx512():
    try:
        from llvmlite import binding
        return "+avx512f" in binding.get_host_cpu_features().flatten().split(",")
    except Exception:  # noqa: BLE001 - no llvmlite, or no features: not an AVX-512 CPU
        return False


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="reads x86 assembly")
def test_kernels_use_512_bit_vectors_where_the_cpu_has_them(tmp_path):
    env = {"NANOFN_CACHE_DIR": str(tmp_path), "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "NANOFN_USE_KERNELS": "1"}
    wide = _has_avx512()
    assert _python(_WIDE_SCRIPT, env) == [str(wide), str(wide)]


def test_features_the_user_chose_for_numba_are_left_alone(tmp_path):
    from llvmlite import binding
    features = binding.get_host_cpu_features().flatten()
    env = {"NANOFN_CACHE_DIR": str(tmp_path), "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "NANOFN_USE_KERNELS": "1", "NUMBA_CPU_FEATURES": features}
    wide, _ = _python(_WIDE_SCRIPT, env)
    assert wide == "False"


def test_scalar_inputs_are_passed_once_not_broadcast():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    closed = jaxpr_of(lambda x, s: (x * s + 1.0) * s, x, np.float32(2))
    ref, got, fused = run_both(closed, [x, np.float32(2)])
    program = fused.eqns[0].params["program"]
    assert [kind for kind, _ in program.inputs] == ["a", "s", "s"]  # x, s, the literal 1.0
    assert_same(ref, got, exact=True)


def test_inputs_of_any_memory_layout_and_loose_dtypes_give_the_same_values():
    base = np.arange(12, dtype=np.float32).reshape(3, 4) - 5
    closed = jaxpr_of(lambda a, b: (a * 2.0 + b) * fnp.abs(b), base, base)
    fused = _fusion.fuse(closed)
    plan = _jit.Plan(fused)
    fortran = np.asfortranarray(base)
    cases = [(base, base), (fortran, fortran), (base, fortran), (fortran[:, ::-1].copy(), base),
             (np.broadcast_to(np.float32(3), (3, 4)), base[::-1]),
             (base.astype(np.float64), base)]  # another dtype: converted, as numpy would
    for a, b in cases:
        out = plan([a, b])[0]
        expect = (np.asarray(a, np.float32) * 2 + b) * np.abs(b)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, expect)
    assert plan([fortran, fortran])[0].flags.f_contiguous  # all inputs transposed: no copy
    column = base[:, 1]  # a strided 1-d view
    flat = _jit.Plan(_fusion.fuse(jaxpr_of(lambda a: a * 2.0 + 1.0, column)))
    np.testing.assert_array_equal(flat([column])[0], column * 2 + 1)


# ------------------------------------------------------------------------ gradients


def w2(x):
    y = x
    for _ in range(3):
        y = fnp.sin(y) * 0.5 + fnp.cos(y)
        y = fnp.exp(-y * y) + fnp.tanh(y) / 3.0
        y = y * y + y / (1.0 + y * y)
    return fnp.sum(y)


@pytest.mark.parametrize("dtype,shape", [("float32", (16,)), ("float64", (3, 4))])
def test_backward_chain_fuses_into_one_kernel(dtype, shape):
    x = np.linspace(-1, 1, int(np.prod(shape))).reshape(shape).astype(dtype)
    closed = jaxpr_of(nanofn.grad(w2), x)
    assert len(closed.eqns) > 100
    ref, got, fused = run_both(closed, [x])
    assert names(fused) == ["fused_elementwise"]
    assert_same(ref, got, exact=False)
    np.testing.assert_allclose(got[0], nanofn.grad(w2)(x), rtol=1e-5)


def test_exact_mode_fuses_only_arithmetic_and_matches_numpy_bit_for_bit(monkeypatch):
    monkeypatch.setattr(_fusion, "EXACT", True)
    x = np.linspace(-1, 1, 16).astype(np.float32)
    ref, got, fused = run_both(jaxpr_of(nanofn.grad(w2), x), [x])
    kept = {n for n in names(fused) if n != "fused_elementwise"}
    assert kept == {"sin", "cos", "exp", "tanh"}
    assert_same(ref, got, exact=True)


def w3(x):
    return fnp.sum(fnp.tanh(x) * fnp.sin(x) + 0.5 * fnp.exp(-x * x) + x / (1 + x * x))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_arrays_leave_transcendentals_to_numpy_and_fuse_across_a_reduction(dtype):
    x = np.random.default_rng(0).normal(size=5000).astype(dtype)
    closed = jaxpr_of(nanofn.value_and_grad(w3), x)
    ref, got, fused = run_both(closed, [x])
    kept = [n for n in names(fused) if n != "fused_elementwise"]
    # sin and cos (and in float64 tanh and exp) stay numpy calls at this size: float32 tanh
    # and exp are vectorising arithmetic in kernels; the value's reduce_sum sits in the
    # middle of the program, and the backward arithmetic after it joins the forward's
    want = ["cos", "reduce_sum", "sin"] if dtype == "float32" else \
        ["cos", "exp", "reduce_sum", "sin", "tanh"]
    assert sorted(kept) == want
    big = max((e for e in fused.eqns if e.primitive.name == "fused_elementwise"),
              key=lambda e: len(e.params["program"].ops))
    assert len(big.params["program"].ops) > 25
    assert_same(ref, got, exact=False)
    small = x[:16]
    assert names(_fusion.fuse(jaxpr_of(nanofn.value_and_grad(w3), small))).count("tanh") == 0


def test_float32_tanh_in_a_kernel_is_the_fast_approximation(monkeypatch):
    # float32 tanh inside a kernel is nanofn/ops/_fastmath.py's rational (the same bits as
    # tanh_float32), within a few ulp of numpy's; float64 tanh calls the C library
    from nanofn.ops import _fastmath
    monkeypatch.setattr(_fusion, "FUSE_MAX_SIZE", dict(_fusion.FUSE_MAX_SIZE, tanh=None))
    f32 = np.float32
    x = np.concatenate([np.linspace(-12, 12, 100_001), [0.0, -0.0, 1e-40, np.inf, -np.inf,
                                                        np.nan, 9.1, 3e38]]).astype(f32)
    f = lambda v: fnp.tanh(v * 2.0) * 0.5 - 1.0  # noqa: E731
    with np.errstate(over="ignore"):
        ref, got, fused = run_both(jaxpr_of(f, x), [x])
        want = _fastmath.tanh_float32(x * f32(2)) * f32(0.5) - f32(1)
    assert names(fused) == ["fused_elementwise"]
    np.testing.assert_array_equal(got[0].view(np.int32), want.view(np.int32))
    assert np.nanmax(np.abs(got[0] - ref[0])) <= 6e-7  # within a few ulp of numpy's tanh
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):
        ref, got, fused = run_both(jaxpr_of(f, x64), [x64])
    assert names(fused) == ["fused_elementwise"]
    assert_same(ref, got, exact=False)
    # at any size float32 tanh fuses; float64 tanh (the C library's) only on small arrays
    monkeypatch.undo()
    assert names(_fusion.fuse(jaxpr_of(f, x))) == ["fused_elementwise"]
    assert names(_fusion.fuse(jaxpr_of(f, x64))).count("tanh") == 1
    assert names(_fusion.fuse(jaxpr_of(f, x64[:200]))) == ["fused_elementwise"]


def _ulps(got, exact):
    """|got - exact| in units of float32's spacing at `exact` (float64), where `exact` is a
    normal float32."""
    with np.errstate(all="ignore"):
        normal = np.isfinite(exact) & (np.abs(exact) >= np.finfo(np.float32).tiny) & \
            (np.abs(exact) <= np.finfo(np.float32).max)
        spacing = np.spacing(np.abs(exact[normal]).astype(np.float32)).astype(np.float64)
        return np.abs(got[normal].astype(np.float64) - exact[normal]) / spacing


def test_fma_rounds_once():
    # the exp polynomials' Horner steps: a * b + c rounded once. For float32 operands of
    # similar size the exact value fits in a float64, so rounding that to float32 is the
    # reference; two roundings (a * b, then + c) differ from it in the last bit often
    import numba
    from nanofn._bitcast import fma

    @numba.njit
    def fmas(a, b, c, out):
        for i in range(a.size):
            out[i] = fma(a[i], b[i], c[i])
    rng = np.random.default_rng(0)
    a, b = (rng.uniform(1, 2, 100_000).astype(np.float32) for _ in range(2))
    c = -rng.uniform(1, 4, 100_000).astype(np.float32)
    out = np.empty_like(a)
    fmas(a, b, c, out)
    exact = (a.astype(np.float64) * b + c).astype(np.float32)
    np.testing.assert_array_equal(out, exact)
    assert (a * b + c != exact).sum() > 1000
    out64 = np.empty(3)
    fmas(np.full(3, 0.1), np.full(3, 10.0), np.full(3, -1.0), out64)
    assert out64.tolist() == [5.551115123125783e-17] * 3  # 0.1 * 10 - 1, rounded once


def test_float32_exp_and_logistic_in_a_kernel_are_within_a_few_ulp_everywhere():
    # float32 exp in kernels is `_exp32` (range reduction, polynomial, 2^n from its bits),
    # logistic is built on it: at any size they fuse, over the whole float32 line
    x = np.concatenate([np.linspace(-110, 95, 400_001),
                        [0.0, -0.0, 1e-40, -1e-40, np.inf, -np.inf, np.nan, 88.72, 88.73,
                         -87.33, -103.9, -103.98, 3e38, -3e38]]).astype(np.float32)
    f = lambda v: (fnp.exp(v) * 1.0 + 0.0, lax.logistic(v) * 1.0 + 0.0)  # noqa: E731
    with np.errstate(all="ignore"):
        ref, got, fused = run_both(jaxpr_of(f, x), [x])
        exact_exp = np.exp(x.astype(np.float64))
        exact_logistic = 1 / (1 + np.exp(-x.astype(np.float64)))
    assert set(names(fused)) == {"fused_elementwise"}
    e, lg = np.asarray(got[0]), np.asarray(got[1])
    assert _ulps(e, exact_exp).max() <= 1.25
    assert _ulps(lg, exact_logistic).max() <= 2.5
    # subnormal results within one subnormal step; zeros, infinities and NaN as numpy's
    sub = (exact_exp < np.finfo(np.float32).tiny) & (exact_exp > 2.0 ** -150)
    assert (np.abs(e[sub] - exact_exp[sub]) <= 2.0 ** -149).all()
    special = ~(exact_exp > 2.0 ** -150) | ~(exact_exp <= np.finfo(np.float32).max)
    np.testing.assert_array_equal(e[special], np.asarray(ref[0])[special])
    np.testing.assert_array_equal(np.isnan(lg), np.isnan(x))
    assert lg[x == np.inf].tolist() == [1.0] and lg[x == -np.inf].tolist() == [0.0]
    assert ((lg >= 0) & (lg <= 1))[~np.isnan(x)].all()


def test_a_plan_never_runs_a_fused_kernel_over_its_own_input():
    # an output overlapping an input makes LLVM take the loop's scalar version
    x = np.ones(4096, np.float32)
    plan = _jit.Plan(_fusion.fuse(jaxpr_of(lambda v: fnp.exp(fnp.tanh(v * 2.0)) * 3.0 - v, x)))
    fused = [st for st in plan.steps if st.kind == "fused"]
    assert fused and not any(st.inplace_ok for st in fused)


def test_a_value_that_depends_on_the_group_through_another_op_is_not_fused_back():
    # c = a + sum(a): joining c to a's group would make the group feed itself.
    def f(x):
        a = x * 2.0 + 1.0
        return a * fnp.sum(a) - 1.0
    x = np.arange(4.0, dtype=np.float32)
    ref, got, fused = run_both(jaxpr_of(f, x), [x])
    assert names(fused) == ["fused_elementwise", "reduce_sum", "fused_elementwise"]
    assert_same(ref, got, exact=True)


def test_side_effects_keep_their_order_and_split_groups():
    seen = []

    def f(x):
        a = x * 2.0 + 1.0
        nanofn.debug.callback(lambda v: seen.append(("first", float(v[0]))), a)
        b = a * a - x
        nanofn.debug.callback(lambda v: seen.append(("second", float(v[0]))), b)
        return b * 3.0 + a

    x = np.arange(3.0, dtype=np.float32)
    closed = jaxpr_of(f, x)
    ref, got, fused = run_both(closed, [x])
    assert seen == [("first", 1.0), ("second", 1.0)] * 2
    order = [n for n in names(fused) if n == "debug_callback"]
    assert len(order) == 2 and names(fused)[0] == "fused_elementwise"
    assert_same(ref, got, exact=True)


# ------------------------------------------------------------------------ transformations


def test_fused_jaxprs_can_still_be_differentiated_and_batched():
    x = np.linspace(-1, 1, 6).astype(np.float64)
    closed = jaxpr_of(lambda x: fnp.sin(x) * x + fnp.exp(-x) / 3.0, x)
    fused = _fusion.fuse(closed)
    assert names(fused) == ["fused_elementwise"]

    def via(c):
        return lambda x: fnp.sum(core.eval_jaxpr(c.jaxpr, c.consts, x)[0] ** 2)

    np.testing.assert_allclose(nanofn.grad(via(fused))(x), nanofn.grad(via(closed))(x))
    _, t_fused = nanofn.jvp(via(fused), (x,), (np.ones_like(x),))
    _, t_plain = nanofn.jvp(via(closed), (x,), (np.ones_like(x),))
    np.testing.assert_allclose(t_fused, t_plain)
    xs = np.stack([x, 2 * x])
    np.testing.assert_allclose(nanofn.vmap(via(fused))(xs), nanofn.vmap(via(closed))(xs))


# ------------------------------------------------------------------------ switches, failures


def test_config_switch_and_debug_nans_disable_fusion():
    x = np.ones(4, np.float32)
    closed = jaxpr_of(lambda x: x * 2.0 + 1.0, x)
    with nanofn.config._override("nanofn_use_kernels", False):
        assert _fusion.fuse(closed) is closed
    with nanofn.debug_nans():
        assert _fusion.fuse(closed) is closed
    assert names(_fusion.fuse(closed)) == ["fused_elementwise"]


def test_a_kernel_that_fails_to_compile_falls_back_with_one_warning(monkeypatch):
    def broken(out, args, params, cx):
        return [f"{out} = no_such_function({args[0]}, {args[1]})"]

    monkeypatch.setitem(_fusion._OPS, "mul", broken)
    x = np.arange(5, dtype=np.float32)

    def f(x):  # two groups, both with a mul; a reduction in between
        a = x * 3.0 - 1.0
        return (a * fnp.sum(a) + 2.0) * x

    closed = jaxpr_of(f, x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fused = _fusion.fuse(closed)
        again = _fusion.fuse(closed)  # known failures are not retried, nor warned again
    assert len([w for w in caught if "could not be compiled" in str(w.message)]) == 1
    assert names(fused) == names(closed) and names(again) == names(closed)
    assert_same(_jit.Plan(closed)([x]), _jit.Plan(fused)([x]), exact=True)

    # A fused equation met later (e.g. from a saved program) falls back the same way.
    monkeypatch.setitem(_fusion._OPS, "mul", _fusion._CHEAP_OPS["mul"])
    good = _fusion.fuse(jaxpr_of(lambda x: x * 5.0 + 2.0, x))
    p = good.eqns[0].params["program"]
    monkeypatch.setitem(_fusion._OPS, "mul", broken)
    fresh = _fusion.FusedProgram(p.inputs, p.ops, p.outputs, p.shape)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outs = [_fusion.fused_elementwise_p.bind(x, *[e.val for e in good.eqns[0].invars[1:]],
                                                program=fresh, kernel_key=fresh.kernel_key)
                for _ in range(2)]
    assert len([w for w in caught if "could not be compiled" in str(w.message)]) == 1
    np.testing.assert_array_equal(outs[0][0], x * 5 + 2)
    np.testing.assert_array_equal(outs[1][0], x * 5 + 2)


def test_corrupted_cache_files_are_detected_and_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setattr(_kernels, "_cache_dir", str(tmp_path))
    x = np.arange(7, dtype=np.float64)
    closed = jaxpr_of(lambda x: fnp.maximum(x * 0.5 - 2.0, -1.0) * x, x)

    def build():
        _kernels.clear_memory_cache()
        eqn = _fusion.fuse(closed).eqns[0]
        p = eqn.params["program"]
        fresh = _fusion.FusedProgram(p.inputs, p.ops, p.outputs, p.shape)
        return fresh, fresh.runner()(x, *[lit.val for lit in eqn.invars[1:]])[0]

    program, first = build()
    src = tmp_path / f"nanofn_kernel_{program.kernel_key}.py"
    assert src.read_text() == program.source
    src.write_text(program.source.replace("for i in range(n):", "for i in range(1):"))
    before = _kernels.compile_count
    program, second = build()
    assert src.read_text() == program.source  # the edited file was rewritten
    np.testing.assert_array_equal(second, first)
    assert _kernels.compile_count == before  # numba's cache of the true source still serves
    # numba keeps its index beside the source, or under NUMBA_CACHE_DIR when that is set
    import numba
    roots = [tmp_path] + ([pathlib.Path(numba.config.CACHE_DIR)] if numba.config.CACHE_DIR else [])
    indexes = [f for root in roots
               for f in root.rglob(f"nanofn_kernel_{program.kernel_key}*.nbi")]
    assert indexes, "numba wrote no cache index for the kernel"
    for index in indexes:
        index.write_bytes(b"not a pickle")
    with pytest.warns(RuntimeWarning, match="dropped the unusable numba cache file"):
        program, third = build()
    assert _kernels.compile_count == before + 1  # the unreadable entry was compiled anew
    np.testing.assert_array_equal(third, first)
    np.testing.assert_array_equal(first, np.maximum(x * 0.5 - 2.0, -1.0) * x)


# ------------------------------------------------------------------------ processes

_CACHE_SCRIPT = textwrap.dedent("""
    import json, numpy as np, nanofn, nanofn.numpy as fnp
    from nanofn import _fusion, _jit, _kernels
    x = np.arange(8, dtype=np.float32)
    closed = _jit.simplify(nanofn.make_jaxpr(
        lambda x: fnp.maximum(x * 3.0 - 1.0, 0.0) / (1.0 + x * x))(x))
    out = _jit.Plan(_fusion.fuse(closed))([x])[0]
    print(_kernels.compile_count, _kernels.cache_hit_count,
          json.dumps(out.tolist(), separators=(",", ":")))
""")


def _python(code, env_extra):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               **env_extra)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.split()


def test_a_second_process_loads_kernels_from_the_disk_cache(tmp_path):
    env = {"NANOFN_CACHE_DIR": str(tmp_path), "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "NANOFN_USE_KERNELS": "1"}
    compiled, hits, values = _python(_CACHE_SCRIPT, env)
    assert (int(compiled), int(hits)) == (1, 0)
    compiled, hits, values_again = _python(_CACHE_SCRIPT, env)
    assert (int(compiled), int(hits)) == (0, 1)
    assert values_again == values
    x = np.arange(8, dtype=np.float32)
    assert json.loads(values) == (np.maximum(x * 3 - 1, 0) / (1 + x * x)).tolist()


def test_import_nanofn_does_not_import_numba():
    code = ("import sys, nanofn, nanofn._fusion, nanofn._kernels; "
            "print('numba' in sys.modules)")
    assert _python(code, {}) == ["False"]


_FIRST_CALL_SCRIPT = textwrap.dedent("""
    import json, sys, numpy as np, nanofn, nanofn.numpy as fnp
    from nanofn import nn, _kernels
    f = nanofn.jit(lambda x: fnp.maximum(nn.log_softmax(x) * 2.0 + 1.0, -3.0))
    x = np.linspace(-2.0, 2.0, 12, dtype=np.float32).reshape(3, 4)
    eager = np.asarray(nn.log_softmax(x))  # the kernel is not needed before jit either
    first = np.asarray(f(x))
    after_first = "numba" in sys.modules
    second = np.asarray(f(x))
    print(json.dumps([after_first, "numba" in sys.modules, _kernels.started(),
                      first.tolist(), second.tolist()], separators=(",", ":")))
""")


def test_a_jitted_function_called_once_does_not_start_numba(tmp_path):
    # The first call runs inside `_kernels.deferred()`: log_softmax takes its numpy path
    # instead of importing numba; the second call fuses, and kernels start then.
    env = {"NANOFN_CACHE_DIR": str(tmp_path), "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "NANOFN_USE_KERNELS": "1"}
    code = _FIRST_CALL_SCRIPT.replace("eager = np.asarray(nn.log_softmax(x))  # the kernel "
                                      "is not needed before jit either\n", "")
    after_first, after_second, started, first, second = json.loads(_python(code, env)[0])
    assert (after_first, after_second, started) == (False, True, True)
    x = np.linspace(-2.0, 2.0, 12).reshape(3, 4)
    ref = np.maximum((x - np.log(np.exp(x).sum(1, keepdims=True))) * 2 + 1, -3)
    np.testing.assert_allclose(first, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(second, first, rtol=1e-6, atol=1e-6)
    # numba already running (an eager kernel ran first): the first jitted call uses it
    after_first, _, started, _, _ = json.loads(_python(_FIRST_CALL_SCRIPT, env)[0])
    assert (after_first, started) == (True, True)


def test_deferred_turns_kernels_off_only_until_numba_has_started(monkeypatch):
    monkeypatch.setattr(_kernels, "_started", False)
    assert _kernels.enabled()
    with _kernels.deferred():
        assert not _kernels.enabled()
        with _kernels.deferred():
            assert not _kernels.enabled()
        assert not _kernels.enabled()
        monkeypatch.setattr(_kernels, "_started", True)
        assert _kernels.enabled()
        with nanofn.config._override("nanofn_use_kernels", False):
            assert not _kernels.enabled()
    monkeypatch.setattr(_kernels, "_started", False)
    assert _kernels.enabled()  # outside the context again


def test_groups_that_need_each_other_through_outside_equations_stay_acyclic():
    # Each group alone is convex, but a1 -> cumsum -> b2 and b1 -> cumsum -> a2: fusing
    # both groups would need a cycle, so one of them must stay unfused.
    def f(x, y):
        a1 = x * 2.0
        b1 = y * 3.0
        a2 = a1 + lax.cumsum(b1)
        b2 = b1 + lax.cumsum(a1)
        return a2, b2

    args = (np.arange(5.0), np.linspace(-1.0, 1.0, 5))
    fused = _fusion.fuse(_jit.simplify(nanofn.make_jaxpr(f)(*args)))
    assert [e.primitive.name for e in fused.eqns].count("fused_elementwise") == 1
    got = core.eval_jaxpr(fused.jaxpr, fused.consts, *args)
    for a, b in zip(f(*args), got):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12)


def test_an_equation_joins_every_group_it_can_when_not_all_of_them_can_merge():
    # relu's backward: the select reads the forward group's mask and two products of the
    # incoming gradient. The forward group cannot take the select (the gradient depends
    # on the forward group through the product), but both products can, with it.
    def f(x, w):
        a = x * 2.0
        mask = a > 0.0
        g = (a @ w) @ w.T
        return fnp.where(mask, g * 0.5, g * 0.25), a

    x = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    w = np.linspace(0.5, 2.0, 16).reshape(4, 4)
    ref, got, fused = run_both(jaxpr_of(f, x, w), [x, w])
    assert_same(ref, got, exact=True)
    assert "mul" not in names(fused) and names(fused).count("fused_elementwise") == 2


def test_a_concatenation_sliced_back_is_not_read_inside_the_group_that_writes_it():
    # `c` is written in columns by the group of `u` and `v`; its windows have their shape
    # too, but a kernel cannot read the array it writes: the slice goes to another group
    def f(a, b):
        u, v = a * b, a - b
        c = fnp.concatenate([u, v], axis=-1)
        return (c[:, 2:] * u + 1.0, c[:, 1:3] - v)

    a, b = np.linspace(-1.0, 1.0, 6).reshape(3, 2), np.linspace(2.0, 3.0, 6).reshape(3, 2)
    ref, got, fused = run_both(jaxpr_of(f, a, b), [a, b])
    assert_same(ref, got, exact=True)
    for e in fused.eqns:
        if e.primitive.name == "fused_elementwise":
            made = {id(v) for v in e.outvars}
            assert not any(id(x) in made for x in e.invars)
