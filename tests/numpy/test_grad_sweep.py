"""A sweep of every differentiable `nanofn.numpy` function of one and two arguments.

Every public function of `nanofn.numpy` has either a row in `ROWS` (how to call it, its
input domain, the dtypes it takes) or an entry in `EXCLUDED` saying why it has no
derivative to check. `test_every_function_is_swept_or_excluded` fails for a new name with
neither, so a function added later without correct rules fails a test.

The functions of `nanofn.numpy.linalg` and `nanofn.numpy.fft` are swept the same way, from
`LINALG_ROWS` and `FFT_ROWS` (with their exclusions), enumerated from each module's
`__all__`.

Each row is checked with `check_grads` (forward and reverse mode against central finite
differences) over broadcasting shapes (0-d, size 1, empty, mixed ranks) in float32,
float64 and complex128 (complex inputs are perturbed in both the real and the imaginary
directions), and to second order in float64 on one shape.
"""

from __future__ import annotations

import importlib.util
import pathlib
import types
import zlib
from typing import Callable, NamedTuple

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn.testing import check_grads

# --- shapes -------------------------------------------------------------------------------

ELEM1 = [(), (1,), (0,), (4,), (2, 3)]
ELEM2 = [((), ()), ((), (3,)), ((2, 1), (3,)), ((0,), (1,)), ((1,), ()), ((2, 3), (1, 3))]
NONEMPTY1 = [(), (1,), (4,), (2, 3)]
ND1 = [(1,), (0,), (4,), (2, 3)]
ND1_NONEMPTY = [(1,), (4,), (2, 3)]
ND2 = [(1, 1), (0, 3), (2, 3)]
ND2_NONEMPTY = [(1, 1), (2, 3), (3, 2)]
SQUARE = [(1, 1), (3, 3)]
VEC2 = [((3,), (3,)), ((1,), (1,)), ((0,), (0,))]
MATMUL = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 4)), ((2, 2, 3), (3, 1)),
          ((0, 3), (3, 2))]
ANY2 = [((), ()), ((3,), (2,)), ((2, 2), (3,)), ((0,), (2,))]
SCALAR2 = [((), ())]

REAL = ("float32", "float64")
ALL = ("float32", "float64", "complex128")


class Row(NamedTuple):
    fn: Callable
    nargs: int
    shapes: list           # one shape per case (nargs == 1) or a tuple of shapes
    lo: float = -2.0       # real parts are drawn from (lo, hi)
    hi: float = 2.0
    dtypes: tuple = ALL
    order2: bool = True    # also check second order (float64, first non-trivial shape)


def _fn(name):
    return getattr(fnp, name)


def _unary(name, lo=-2.0, hi=2.0, dtypes=ALL, shapes=ELEM1, order2=True):
    return Row(_fn(name), 1, shapes, lo, hi, dtypes, order2)


def _binary(name, lo=-2.0, hi=2.0, dtypes=ALL, shapes=ELEM2, order2=True):
    return Row(_fn(name), 2, shapes, lo, hi, dtypes, order2)


def _distinct(x):
    return x  # values are continuous draws: ties have probability zero


ROWS: dict[str, Row] = {
    # elementwise, one argument
    "abs": _unary("abs", 0.3, 2.0), "absolute": _unary("absolute", 0.3, 2.0),
    "angle": _unary("angle", 0.3, 2.0),
    "arccos": _unary("arccos", -0.8, 0.8), "arcsin": _unary("arcsin", -0.8, 0.8),
    "arctan": _unary("arctan"), "arccosh": _unary("arccosh", 1.2, 3.0),
    "arcsinh": _unary("arcsinh"), "arctanh": _unary("arctanh", -0.8, 0.8),
    "cbrt": _unary("cbrt", 0.3, 2.0, REAL),
    "ceil": _unary("ceil", 0.1, 0.4, REAL), "floor": _unary("floor", 0.1, 0.4, REAL),
    "fix": _unary("fix", 0.1, 0.4, REAL), "trunc": _unary("trunc", 0.1, 0.4, REAL),
    "rint": _unary("rint", 0.1, 0.4, REAL), "round": _unary("round", 0.1, 0.4, REAL),
    "around": _unary("around", 0.1, 0.4, REAL),
    "conj": _unary("conj"), "conjugate": _unary("conjugate"),
    "real": _unary("real"), "imag": _unary("imag"),
    "cos": _unary("cos"), "cosh": _unary("cosh"), "sin": _unary("sin"), "sinh": _unary("sinh"),
    "tan": _unary("tan", -1.0, 1.0), "tanh": _unary("tanh"),
    "exp": _unary("exp"), "exp2": _unary("exp2"), "expm1": _unary("expm1"),
    "log": _unary("log", 0.3, 3.0), "log10": _unary("log10", 0.3, 3.0),
    "log1p": _unary("log1p", -0.5, 3.0), "log2": _unary("log2", 0.3, 3.0),
    "negative": _unary("negative"), "positive": _unary("positive"),
    "reciprocal": _unary("reciprocal", 0.5, 2.0), "sqrt": _unary("sqrt", 0.3, 3.0),
    "square": _unary("square"),
    # sign's derivative is zero by definition (JAX's), which finite differences of the
    # complex sign z/|z| do not see: real inputs only
    "sign": _unary("sign", 0.3, 2.0, REAL),
    # elementwise, two arguments
    "add": _binary("add"), "subtract": _binary("subtract"), "multiply": _binary("multiply"),
    "divide": Row(lambda x, y: fnp.divide(x, y + 3.0), 2, ELEM2),
    "true_divide": Row(lambda x, y: fnp.true_divide(x, y + 3.0), 2, ELEM2),
    "power": _binary("power", 0.5, 2.0), "pow": _binary("pow", 0.5, 2.0),
    "float_power": _binary("float_power", 0.5, 2.0),
    "maximum": _binary("maximum", dtypes=REAL), "minimum": _binary("minimum", dtypes=REAL),
    "arctan2": _binary("arctan2", 0.3, 2.0, REAL), "hypot": _binary("hypot", 0.3, 2.0, REAL),
    "logaddexp": _binary("logaddexp", dtypes=("float32", "float64")),
    "logaddexp[c128]": Row(fnp.logaddexp, 2, ELEM2, -0.5, 0.5, ("complex128",)),
    "logaddexp2": _binary("logaddexp2", dtypes=REAL),
    # fmod/remainder/floor_divide: x in (0.1, 0.9), y in (1.5, 2.5): no jump nearby
    "fmod": Row(lambda x, y: fnp.fmod(x, y + 2.0), 2, ELEM2, 0.1, 0.5, REAL),
    "remainder": Row(lambda x, y: fnp.remainder(x, y + 2.0), 2, ELEM2, 0.1, 0.5, REAL),
    "mod": Row(lambda x, y: fnp.mod(x, y + 2.0), 2, ELEM2, 0.1, 0.5, REAL),
    "floor_divide": Row(lambda x, y: fnp.floor_divide(x, y + 2.0), 2, ELEM2, 0.1, 0.5, REAL),
    "where": Row(lambda x, y: fnp.where(fnp.real(x) > fnp.real(y), x, y), 2, ELEM2),
    "clip": Row(lambda x: fnp.clip(x, -0.5, 0.5), 1, ELEM1, dtypes=REAL),
    # reductions
    # (the mean of an empty array is NaN whatever its input: non-empty shapes)
    "sum": _unary("sum"), "mean": _unary("mean", shapes=NONEMPTY1), "prod": _unary("prod"),
    "average": Row(lambda x: fnp.average(x, axis=-1), 1, ND1_NONEMPTY),
    "var": _unary("var", shapes=ND1_NONEMPTY), "std": _unary("std", shapes=[(2,), (2, 3)]),
    "max": _unary("max", dtypes=REAL, shapes=NONEMPTY1),
    "min": _unary("min", dtypes=REAL, shapes=NONEMPTY1),
    "amax": _unary("amax", dtypes=REAL, shapes=NONEMPTY1),
    "amin": _unary("amin", dtypes=REAL, shapes=NONEMPTY1),
    "ptp": _unary("ptp", dtypes=REAL, shapes=[(2,), (2, 3)]),
    "nansum": _unary("nansum"), "nanmean": _unary("nanmean", shapes=NONEMPTY1),
    "nanprod": _unary("nanprod"),
    "nanmax": _unary("nanmax", dtypes=REAL, shapes=NONEMPTY1),
    "nanmin": _unary("nanmin", dtypes=REAL, shapes=NONEMPTY1),
    "nanvar": _unary("nanvar", shapes=ND1_NONEMPTY),
    "nanstd": _unary("nanstd", shapes=[(2,), (2, 3)]),
    "median": _unary("median", dtypes=REAL, shapes=NONEMPTY1),
    "percentile": Row(lambda x: fnp.percentile(x, 30.0), 1, NONEMPTY1, dtypes=REAL),
    "quantile": Row(lambda x: fnp.quantile(x, 0.3), 1, NONEMPTY1, dtypes=REAL),
    "cumsum": _unary("cumsum"), "cumprod": _unary("cumprod"),
    "cumulative_sum": Row(lambda x: fnp.cumulative_sum(x, axis=-1), 1, ND1),
    "cumulative_prod": Row(lambda x: fnp.cumulative_prod(x, axis=-1), 1, ND1),
    "nancumsum": _unary("nancumsum"), "nancumprod": _unary("nancumprod"),
    "trace": _unary("trace", shapes=ND2), "diagonal": _unary("diagonal", shapes=ND2),
    "diag": _unary("diag", shapes=[(3,), (2, 3), (0,)]),
    "tril": _unary("tril", shapes=ND2), "triu": _unary("triu", shapes=ND2),
    "cov": Row(lambda x: fnp.cov(x), 1, [(2, 3), (1, 4)], dtypes=REAL),
    "corrcoef": Row(lambda x: fnp.corrcoef(x), 1, [(2, 3), (3, 4)], dtypes=REAL),
    "sort": Row(lambda x: _distinct(fnp.sort(x)), 1, ND1, dtypes=REAL),
    # shape and indexing functions (linear: every dtype)
    "ravel": _unary("ravel"), "transpose": _unary("transpose"), "squeeze": _unary("squeeze"),
    "flip": _unary("flip"), "fliplr": _unary("fliplr", shapes=ND2),
    "flipud": _unary("flipud", shapes=ND1), "rot90": _unary("rot90", shapes=ND2),
    "atleast_1d": _unary("atleast_1d"), "atleast_2d": _unary("atleast_2d"),
    "atleast_3d": _unary("atleast_3d"),
    "expand_dims": Row(lambda x: fnp.expand_dims(x, 0), 1, ELEM1),
    "moveaxis": Row(lambda x: fnp.moveaxis(x, 0, -1), 1, ND1),
    "swapaxes": Row(lambda x: fnp.swapaxes(x, 0, -1), 1, ND1),
    "reshape": Row(lambda x: fnp.reshape(x, (-1,)), 1, ELEM1),
    "roll": Row(lambda x: fnp.roll(x, 1), 1, ELEM1),
    "repeat": Row(lambda x: fnp.repeat(x, 2), 1, ELEM1),
    "tile": Row(lambda x: fnp.tile(x, (2,)), 1, ELEM1),
    "pad": Row(lambda x: fnp.pad(x, 1), 1, ND1),
    "take": Row(lambda x: fnp.take(x, np.array([0, 0])), 1, ND1_NONEMPTY),
    "take_along_axis": Row(lambda x: fnp.take_along_axis(
        x, np.zeros((1,) * x.ndim, np.int32), axis=-1), 1, ND1_NONEMPTY),
    "split": Row(lambda x: fnp.split(x, 2, axis=-1), 1, [(2,), (3, 4), (0,)]),
    "array_split": Row(lambda x: fnp.array_split(x, 2, axis=-1), 1, [(3,), (2, 3)]),
    "broadcast_to": Row(lambda x: fnp.broadcast_to(x, (2,) + x.shape), 1, ELEM1),
    "broadcast_arrays": Row(lambda x, y: fnp.broadcast_arrays(x, y), 2, ELEM2),
    "asarray": _unary("asarray"), "array": _unary("array"),
    "astype": Row(lambda x: fnp.astype(x, x.dtype), 1, ELEM1),
    "full_like": Row(lambda x: fnp.full_like(x, 2.0) * x, 1, ELEM1),
    "zeros_like": Row(lambda x: fnp.zeros_like(x) + x, 1, ELEM1),
    "ones_like": Row(lambda x: fnp.ones_like(x) * x, 1, ELEM1),
    "empty_like": Row(lambda x: fnp.empty_like(x) * 0 + x, 1, ELEM1),
    "full": Row(lambda x: fnp.full((2,), x), 1, [()]),
    "linspace": Row(lambda a, b: fnp.linspace(a, b, 4), 2, SCALAR2),
    # joining (two arrays)
    "append": Row(lambda x, y: fnp.append(x, y), 2, ANY2),
    "concatenate": Row(lambda x, y: fnp.concatenate([x, y]), 2, [((2,), (3,)), ((0,), (2,)),
                                                                  ((1, 3), (2, 3))]),
    "stack": Row(lambda x, y: fnp.stack([x, y]), 2, [((), ()), ((3,), (3,)), ((0,), (0,))]),
    "hstack": Row(lambda x, y: fnp.hstack([x, y]), 2, [((2,), (3,)), ((), ()), ((2, 1), (2, 2))]),
    "vstack": Row(lambda x, y: fnp.vstack([x, y]), 2, [((3,), (3,)), ((1, 2), (2, 2))]),
    "dstack": Row(lambda x, y: fnp.dstack([x, y]), 2, [((3,), (3,)), ((2, 2), (2, 2))]),
    "column_stack": Row(lambda x, y: fnp.column_stack([x, y]), 2, [((3,), (3,)),
                                                                    ((2, 1), (2,))]),
    "meshgrid": Row(lambda x, y: fnp.meshgrid(x, y), 2, [((2,), (3,)), ((1,), (0,))]),
    # products
    "matmul": _binary("matmul", shapes=MATMUL), "dot": _binary("dot", shapes=MATMUL),
    "vdot": _binary("vdot", shapes=VEC2 + [((2, 3), (6,))]),
    "inner": _binary("inner", shapes=[((3,), (3,)), ((2, 3), (3,)), ((), (2,))]),
    "outer": _binary("outer", shapes=ANY2),
    "tensordot": Row(lambda x, y: fnp.tensordot(x, y, axes=1), 2, MATMUL[:4]),
    "einsum": Row(lambda x, y: fnp.einsum("...i,i->...", x, y), 2, MATMUL[:2]),
    # scientific helpers
    "convolve": Row(lambda x, y: fnp.convolve(x, y), 2, [((3,), (2,)), ((1,), (1,)),
                                                         ((4,), (4,))]),
    "correlate": Row(lambda x, y: fnp.correlate(x, y, "full"), 2, [((3,), (2,)),
                                                                   ((1,), (1,))]),
    "cross": Row(lambda x, y: fnp.cross(x, y), 2, [((3,), (3,)), ((2, 3), (3,)), ((2,), (2,))]),
    "kron": _binary("kron", shapes=[((2,), (3,)), ((2, 2), (1, 2)), ((), (2,))]),
    "polyval": Row(lambda p, x: fnp.polyval(p, x), 2, [((3,), ()), ((2,), (4,))]),
    "select": Row(lambda x, y: fnp.select([fnp.real(x) > 0], [x], y), 2, ELEM2),
    "fmax": _binary("fmax", dtypes=REAL), "fmin": _binary("fmin", dtypes=REAL),
    "deg2rad": _unary("deg2rad", dtypes=REAL), "rad2deg": _unary("rad2deg", dtypes=REAL),
    "degrees": _unary("degrees", dtypes=REAL), "radians": _unary("radians", dtypes=REAL),
    "nan_to_num": _unary("nan_to_num"), "sinc": _unary("sinc", 0.3, 2.0, REAL),
    "diff": Row(lambda x: fnp.diff(x), 1, ND1), "ediff1d": Row(lambda x: fnp.ediff1d(x), 1, ND1),
    "gradient": Row(lambda x: fnp.gradient(x), 1, [(3,), (4,)]),
    "trapezoid": Row(lambda y: fnp.trapezoid(y), 1, ND1_NONEMPTY),
    "interp": Row(lambda x: fnp.interp(x, np.array([-3.0, 0.0, 3.0]), np.array([1.0, 2.0, 0.0])),
                  1, ELEM1, dtypes=REAL),
    "partition": Row(lambda x: fnp.partition(x, 0, axis=-1), 1, ND1_NONEMPTY, dtypes=REAL),
    "hsplit": Row(lambda x: fnp.hsplit(x, 2), 1, [(2,), (3, 4)]),
    "vsplit": Row(lambda x: fnp.vsplit(x, 2), 1, [(2, 3), (4, 1)]),
    "dsplit": Row(lambda x: fnp.dsplit(x, 2), 1, [(1, 1, 2), (2, 3, 4)]),
}

EXCLUDED: dict[str, str] = {
    **{n: "comparison or logical test: boolean output" for n in (
        "equal", "not_equal", "greater", "greater_equal", "less", "less_equal", "logical_and",
        "logical_not", "logical_or", "logical_xor", "isfinite", "isinf", "isnan", "iscomplex",
        "isreal", "all", "any")},
    **{n: "integer (bitwise) operation" for n in (
        "bitwise_and", "bitwise_not", "bitwise_or", "bitwise_xor", "invert", "left_shift",
        "right_shift")},
    **{n: "integer index output" for n in (
        "argmax", "argmin", "argsort", "lexsort", "nonzero", "count_nonzero", "ix_",
        "argpartition")},
    **{n: "creates an array from shapes or integers: no array input to differentiate" for n in (
        "arange", "empty", "eye", "identity", "ones", "zeros")},
    **{n: "dtype information, not an array function" for n in (
        "finfo", "iinfo", "issubdtype", "result_type", "iscomplexobj", "isrealobj")},
    "nextafter": "the next float after x: a step function of x's bits (JAX has no derivative)",
    "real_if_close": "the output dtype depends on the values (eager only); real() is swept",
}


def _surface_sweep():
    """The rows and exclusions of tests/numpy/test_surface_grads.py, the sweep of the
    helpers that complete jax.numpy's surface (same conventions, its own file)."""
    path = pathlib.Path(__file__).with_name("test_surface_grads.py")
    spec = importlib.util.spec_from_file_location("_surface_grad_rows", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {n for n in module.ROWS if "." not in n}, set(module.EXCLUDED)


def test_every_function_is_swept_or_excluded():
    names = {n for n in dir(fnp) if not n.startswith("_")}
    functions = {n for n in names if callable(getattr(fnp, n))
                 and not isinstance(getattr(fnp, n), (type, types.ModuleType))}
    swept = {n.split("[")[0] for n in ROWS}
    surface_rows, surface_excluded = _surface_sweep()
    missing = sorted(functions - swept - set(EXCLUDED) - surface_rows - surface_excluded)
    assert not missing, f"nanofn.numpy functions with no sweep row or exclusion: {missing}"
    assert not swept & set(EXCLUDED)
    assert not (swept | set(EXCLUDED)) - functions, "rows for names nanofn.numpy lacks"


def _draw(rng, shape, dtype, lo, hi):
    x = rng.uniform(lo, hi, size=shape)
    if np.dtype(dtype).kind == "c":  # an imaginary part that keeps off the real-axis cuts
        x = x + 1j * rng.uniform(0.2, 0.6, size=shape)
    return x.astype(dtype)


def _shape_cases(row):
    return [(s,) if row.nargs == 1 else tuple(s) for s in row.shapes]


@pytest.mark.parametrize("name", sorted(ROWS))
def test_sweep(name):
    _check_row(name, ROWS[name])


def _check_row(name, row):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for dtype in row.dtypes:
        for shapes in _shape_cases(row):
            args = tuple(_draw(rng, s, dtype, row.lo, row.hi) for s in shapes)
            try:
                check_grads(row.fn, args, order=1)
            except AssertionError as err:
                raise AssertionError(f"{name} at {dtype} {shapes}:\n{err}") from None
            # jit's abstract values and compiled plan agree with eager (dtype included)
            eager, jitted = (nanofn.tree_util.tree_leaves(g(*args))
                             for g in (row.fn, nanofn.jit(row.fn)))
            for e, j in zip(eager, jitted):
                assert np.asarray(j).dtype == np.asarray(e).dtype, (name, dtype, shapes)
                np.testing.assert_allclose(np.asarray(j), np.asarray(e), rtol=1e-5, atol=1e-6,
                                           err_msg=f"jit of {name} at {dtype} {shapes}")
    if row.order2 and "float64" in row.dtypes:
        shapes = max(_shape_cases(row), key=lambda ss: sum(int(np.prod(s)) > 0 for s in ss))
        args = tuple(_draw(rng, s, "float64", row.lo, row.hi) for s in shapes)
        check_grads(row.fn, args, order=2)


# --- the submodules: nanofn.numpy.linalg and nanofn.numpy.fft ------------------------------

la, ff = fnp.linalg, fnp.fft
SQ = [(3, 3), (2, 2, 2), (1, 1), (0, 2, 2)]  # square, batched, 1 x 1, an empty batch
TALL = [(3, 2), (2, 4, 3), (1, 1), (0, 3, 2)]  # m >= n (qr's derivative needs it)
ANYM = [(3, 2), (2, 3), (2, 2, 3), (1, 1), (0, 2, 3)]


def _ct(a):
    return fnp.conj(fnp.swapaxes(a, -1, -2))


def _spd(a):
    """A Hermitian positive definite matrix from any square `a`."""
    return a @ _ct(a) + 3.0 * fnp.eye(a.shape[-1], dtype=a.dtype)


def _wellposed(a):
    return a + 3.0 * fnp.eye(a.shape[-1], dtype=a.dtype)


def _phase_free(u, vh):
    """Functions of singular vectors (eigenvectors) that do not depend on their phases."""
    return fnp.abs(u) ** 2, u @ vh


LINALG_ROWS: dict[str, Row] = {
    "inv": Row(lambda a: la.inv(_wellposed(a)), 1, SQ),
    "det": Row(la.det, 1, SQ),
    "slogdet": Row(lambda a: tuple(la.slogdet(_wellposed(a))), 1, SQ),
    "solve": Row(lambda a, b: la.solve(_wellposed(a), b), 2,
                 [((3, 3), (3,)), ((2, 2, 2), (2, 2, 1)), ((1, 1), (1,))]),
    "cholesky": Row(lambda a: la.cholesky(_spd(a)), 1, SQ),
    "svd": Row(lambda a: (lambda u, s, vh: (s,) + _phase_free(u, vh))(
        *la.svd(a, full_matrices=False)), 1, ANYM),
    "svdvals": Row(la.svdvals, 1, ANYM),
    # (order 2 of the eigenvectors is in test_linalg_decomp.py, at separated eigenvalues:
    # here the drawn ones can be close, and finite differences of order 2 too coarse)
    "eigh": Row(lambda a: (lambda w, v: (w,) + _phase_free(v, _ct(v)))(*la.eigh(_spd(a))), 1, SQ,
                order2=False),
    "eigvalsh": Row(lambda a: la.eigvalsh(_spd(a)), 1, SQ),
    "eigvals": Row(la.eigvals, 1, SQ, order2=False),
    "qr": Row(lambda a: tuple(la.qr(a)), 1, TALL),
    "pinv": Row(la.pinv, 1, ANYM),
    "lstsq": Row(lambda a, b: la.lstsq(a, b)[:2], 2, [((3, 2), (3,)), ((4, 2), (4, 2))]),
    "matrix_power": Row(lambda a: la.matrix_power(_wellposed(a), -2), 1, SQ),
    "cond": Row(lambda a: la.cond(_wellposed(a)), 1, SQ),
    "tensorinv": Row(lambda a: la.tensorinv(_wellposed(a), ind=1), 1, [(3, 3)]),
    "tensorsolve": Row(lambda a, b: la.tensorsolve(_wellposed(a), b), 2, [((3, 3), (3,))]),
    "norm": Row(lambda a: tuple(la.norm(a, o, axis=(-2, -1)) for o in (None, 2, "nuc", 1)), 1,
                ANYM),
    "vector_norm": Row(lambda x: (la.vector_norm(x), la.vector_norm(x, ord=3, axis=-1)), 1,
                       [(3,), (2, 3)]),
    "matrix_norm": Row(lambda a: (la.matrix_norm(a), la.matrix_norm(a, ord=-2)), 1, ANYM),
    "trace": Row(la.trace, 1, ANYM), "diagonal": Row(la.diagonal, 1, ANYM),
    "matrix_transpose": Row(la.matrix_transpose, 1, ANYM),
    "outer": Row(la.outer, 2, [((3,), (2,)), ((1,), (4,))]),
    "vecdot": Row(la.vecdot, 2, [((3,), (3,)), ((2, 3), (3,))]),
    "cross": Row(la.cross, 2, [((3,), (3,)), ((2, 3), (3,))]),
    "matmul": Row(la.matmul, 2, MATMUL[:4]),
    "tensordot": Row(lambda x, y: la.tensordot(x, y, axes=1), 2, MATMUL[:4]),
    "multi_dot": Row(lambda x, y: la.multi_dot([x, y, x.T]), 2, [((2, 3), (3, 3))]),
}

LINALG_EXCLUDED = {
    "eig": "its eigenvectors have no derivative, as in JAX (eigvals is swept)",
    "matrix_rank": "integer output",
}

_R1 = [(1,), (4,), (2, 5), (0, 3)]
FFT_ROWS: dict[str, Row] = {
    "fft": Row(lambda x: ff.fft(x, norm="ortho"), 1, _R1),
    "ifft": Row(lambda x: ff.ifft(x, n=6), 1, _R1),
    "rfft": Row(ff.rfft, 1, _R1, dtypes=REAL),
    "irfft": Row(lambda x: ff.irfft(x, n=6), 1, _R1),
    "hfft": Row(lambda x: ff.hfft(x, n=4), 1, _R1),
    "ihfft": Row(ff.ihfft, 1, _R1, dtypes=REAL),
    "fft2": Row(ff.fft2, 1, [(2, 3), (2, 1, 4)]),
    "ifft2": Row(lambda x: ff.ifft2(x, s=(3, 2)), 1, [(2, 3), (2, 1, 4)]),
    "rfft2": Row(ff.rfft2, 1, [(2, 3), (2, 1, 4)], dtypes=REAL),
    "irfft2": Row(ff.irfft2, 1, [(2, 3), (2, 1, 4)]),
    "fftn": Row(lambda x: ff.fftn(x, norm="forward"), 1, [(2,), (2, 3), (2, 1, 4)]),
    "ifftn": Row(ff.ifftn, 1, [(2,), (2, 3)]),
    "rfftn": Row(ff.rfftn, 1, [(2,), (2, 3)], dtypes=REAL),
    "irfftn": Row(lambda x: ff.irfftn(x, axes=(-1,)), 1, [(2,), (2, 3)]),
    "fftshift": Row(ff.fftshift, 1, [(1,), (4,), (2, 3)]),
    "ifftshift": Row(ff.ifftshift, 1, [(1,), (4,), (2, 3)]),
}

FFT_EXCLUDED = {n: "sample frequencies from an integer n: no array input" for n in (
    "fftfreq", "rfftfreq")}


@pytest.mark.parametrize("module,rows,excluded", [
    (la, LINALG_ROWS, LINALG_EXCLUDED), (ff, FFT_ROWS, FFT_EXCLUDED)], ids=["linalg", "fft"])
def test_every_submodule_function_is_swept_or_excluded(module, rows, excluded):
    public = set(module.__all__)
    missing = sorted(public - set(rows) - set(excluded))
    assert not missing, f"{module.__name__} functions with no sweep row or exclusion: {missing}"
    assert not set(rows) & set(excluded)
    assert not (set(rows) | set(excluded)) - public


@pytest.mark.parametrize("name", sorted(LINALG_ROWS))
def test_sweep_linalg(name):
    _check_row("linalg." + name, LINALG_ROWS[name])


@pytest.mark.parametrize("name", sorted(FFT_ROWS))
def test_sweep_fft(name):
    _check_row("fft." + name, FFT_ROWS[name])


@pytest.mark.parametrize("name,prim,slot", [("sin", "sin_p", "vjp"), ("abs", "abs_p", "jvp_terms"),
                                            ("hypot", "max_p", "vjp")])
def test_sweep_catches_a_wrong_rule(monkeypatch, name, prim, slot):
    from nanofn.ops import _base
    p = getattr(_base, prim)
    wrong = [lambda g, *args, out, **params: g] * len(getattr(p, slot))  # identity: wrong
    monkeypatch.setattr(p, slot, wrong)
    monkeypatch.setattr(p, "vjp_numpy", None)
    with pytest.raises(AssertionError, match="check failed"):
        test_sweep(name)


def test_submodule_sweep_catches_a_wrong_rule(monkeypatch):
    # svd's reverse rule with a forgotten conjugation: right for real input only
    svd_p = fnp.linalg.svd_p
    rule = svd_p.vjp_joint

    def forgot_conj(*args, **params):
        return [fnp.conj(ct) if ct is not None and fnp.iscomplexobj(ct) else ct
                for ct in rule(*args, **params)]

    monkeypatch.setattr(svd_p, "vjp_joint", forgot_conj)
    with pytest.raises(AssertionError, match="VJP check failed"):
        test_sweep_linalg("svdvals")
