"""Gradients of the jax.numpy helpers added to complete nanofn.numpy's surface.

Every public function of `nanofn/numpy/_surface.py`, `_setops.py` and `_polynomial.py`
has a row here (how to call it, its input domain) or an entry in `EXCLUDED` saying why
it has no derivative to check; `test_every_new_function_is_swept_or_excluded` fails for
a function added later with neither. Each row is checked with `check_grads` (forward and
reverse mode against central finite differences, float64), and jit against eager.

The rows use the same conventions as tests/numpy/test_grad_sweep.py, so they can move
there when the two sweeps are merged.
"""

from __future__ import annotations

import types
import zlib
from typing import Callable, NamedTuple

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn.numpy import _polynomial, _setops, _surface, _ufunc
from nanofn.testing import check_grads

ELEM1 = [(), (1,), (0,), (4,), (2, 3)]
ELEM2 = [((), ()), ((2, 1), (3,)), ((0,), (1,)), ((2, 3), (1, 3))]
ND1 = [(1,), (4,), (2, 3)]
ND1_EMPTY = [(1,), (0,), (4,), (2, 3)]
NONEMPTY = [(), (4,), (2, 3)]
SCALAR2 = [((), ())]


class Row(NamedTuple):
    fn: Callable
    nargs: int
    shapes: list          # one shape per case (nargs == 1) or a tuple of shapes
    lo: float = -2.0      # values are drawn from (lo, hi)
    hi: float = 2.0
    jit: bool = True      # also compare jit with eager
    order2: bool = False  # also check second order on the first shape


def _u(name, lo=-2.0, hi=2.0, shapes=ELEM1, order2=False):
    return Row(getattr(fnp, name), 1, shapes, lo, hi, True, order2)


MASK4 = np.array([True, False, True, True])
IDX3 = np.array([0, 2, 1])
XS = np.linspace(-1.0, 1.0, 5)

ROWS: dict[str, Row] = {
    # array API aliases
    "acos": _u("acos", -0.8, 0.8), "asin": _u("asin", -0.8, 0.8), "atan": _u("atan"),
    "acosh": _u("acosh", 1.2, 3.0), "asinh": _u("asinh"), "atanh": _u("atanh", -0.8, 0.8),
    "atan2": Row(fnp.atan2, 2, ELEM2, 0.3, 2.0),
    "concat": Row(lambda x, y: fnp.concat([x, y]), 2, [((2,), (3,)), ((0,), (1,))]),
    "permute_dims": Row(lambda x: fnp.permute_dims(x, tuple(range(x.ndim))[::-1]), 1, ELEM1),
    "matrix_transpose": Row(fnp.matrix_transpose, 1, [(2, 3), (2, 1, 3)]),
    "unstack": Row(lambda x: fnp.unstack(x), 1, ND1),
    "copy": _u("copy"),
    "rollaxis": Row(lambda x: fnp.rollaxis(x, -1), 1, ND1),
    "fabs": _u("fabs", 0.3, 2.0),
    # elementwise
    "copysign": Row(fnp.copysign, 2, ELEM2, 0.3, 2.0),
    "ldexp": Row(lambda x: fnp.ldexp(x, np.int32(3)), 1, ELEM1),
    "frexp": Row(lambda x: fnp.frexp(x)[0], 1, ELEM1, 0.55, 0.95),  # off powers of two
    "modf": Row(fnp.modf, 1, ELEM1, 0.1, 0.9),
    "divmod": Row(lambda x, y: fnp.divmod(x, y + 3.0), 2, ELEM2, 0.1, 0.9),
    "i0": _u("i0", order2=True),
    "sort_complex": Row(fnp.sort_complex, 1, ND1),
    # nan-aware quantiles (NaNs where the input is below -1.5: ignored, so no derivative)
    "nanquantile": Row(lambda x: fnp.nanquantile(fnp.where(x < -1.5, fnp.nan, x), 0.3), 1,
                       NONEMPTY),
    "nanpercentile": Row(lambda x: fnp.nanpercentile(x, 70.0, axis=-1), 1, ND1),
    "nanmedian": Row(lambda x: fnp.nanmedian(x), 1, NONEMPTY),
    # products
    "vecdot": Row(fnp.vecdot, 2, [((3,), (3,)), ((2, 3), (3,))], order2=True),
    "matvec": Row(fnp.matvec, 2, [((2, 3), (3,)), ((1, 2, 3), (2, 3))]),
    "vecmat": Row(fnp.vecmat, 2, [((3,), (3, 2)), ((2, 3), (3, 2))]),
    # functional updates (values flow through; positions are constants)
    "diagflat": Row(lambda x: fnp.diagflat(x, 1), 1, [(3,), (2, 2)]),
    "put": Row(lambda x, v: fnp.put(x, np.array([0, 2]), v, inplace=False), 2,
               [((4,), (2,)), ((2, 2), (2,))]),
    "put_along_axis": Row(lambda x, v: fnp.put_along_axis(x, np.array([[1], [0]]), v, axis=1,
                                                          inplace=False), 2, [((2, 3), (2, 1))]),
    "fill_diagonal": Row(lambda x, v: fnp.fill_diagonal(x, v, inplace=False), 2,
                         [((3, 3), (3,)), ((2, 4), ())]),
    "place": Row(lambda x, v: fnp.place(x, MASK4, v, inplace=False), 2, [((4,), (2,))],
                 jit=False),
    "insert": Row(lambda x, v: fnp.insert(x, 1, v), 2, [((3,), ()), ((2, 2), (2,))]),
    "delete": Row(lambda x: fnp.delete(x, [0]), 1, ND1),
    "choose": Row(lambda x, y: fnp.choose(np.array([0, 1, 1]), [x, y]), 2, [((3,), (3,)),
                                                                         ((3,), ())]),
    "resize": Row(lambda x: fnp.resize(x, (2, 3)), 1, [(), (4,), (2, 3)]),
    "trim_zeros": Row(lambda x: fnp.trim_zeros(fnp.concatenate([fnp.zeros(1), x])), 1,
                      [(3,)], 0.5, 2.0, jit=False),
    "extract": Row(lambda x: fnp.extract(MASK4, x), 1, [(4,)]),
    "compress": Row(lambda x: fnp.compress(np.array([True, False]), x, axis=0), 1,
                    [(2,), (2, 3)]),
    # construction
    "block": Row(lambda x, y: fnp.block([[x, y]]), 2, [((2, 1), (2, 2))]),
    "logspace": Row(lambda a, b: fnp.logspace(a, b, 4), 2, SCALAR2, -1.0, 1.0),
    "geomspace": Row(lambda a, b: fnp.geomspace(a, b, 4), 2, SCALAR2, 0.5, 2.0),
    # functions of functions
    "piecewise": Row(lambda x: fnp.piecewise(x, [x < 0], [lambda t: t * t, lambda t: 2 * t]),
                     1, ELEM1),
    "apply_along_axis": Row(lambda x: fnp.apply_along_axis(lambda v: v * v[0], -1, x), 1,
                            ND1),
    "apply_over_axes": Row(lambda x: fnp.apply_over_axes(fnp.sum, x, [0]), 1, ND1),
    "unwrap": Row(lambda x: fnp.unwrap(x * 3.0), 1, ND1),
    # sets (continuous draws: no ties)
    "unique": Row(lambda x: fnp.unique(x), 1, ND1_EMPTY, jit=False),  # jit needs size=
    "unique_values": Row(lambda x: fnp.unique_values(x, size=3, fill_value=0.0), 1, ND1),
    "union1d": Row(fnp.union1d, 2, [((3,), (2,)), ((0,), (2, 2))], jit=False),
    # counting with weights (linear in the weights)
    "bincount": Row(lambda w: fnp.bincount(IDX3, w, length=4), 1, [(3,)]),
    "histogram": Row(lambda w: fnp.histogram(XS, 3, weights=w)[0], 1, [(5,)]),
    "histogram2d": Row(lambda w: fnp.histogram2d(XS, XS[::-1], 2, weights=w)[0], 1, [(5,)]),
    "histogramdd": Row(lambda w: fnp.histogramdd(np.stack([XS, XS], 1), 2, weights=w)[0], 1,
                       [(5,)]),
    "histogram_bin_edges": Row(lambda a: fnp.histogram_bin_edges(a, 3), 1, [(4,)]),
    # polynomials
    "polyadd": Row(fnp.polyadd, 2, [((3,), (2,)), ((1,), (1,))]),
    "polysub": Row(fnp.polysub, 2, [((3,), (2,))]),
    "polymul": Row(fnp.polymul, 2, [((3,), (2,))], order2=True),
    "polydiv": Row(fnp.polydiv, 2, [((4,), (2,)), ((3,), (3,))], 0.5, 2.0),
    "polyder": Row(lambda p: fnp.polyder(p, 2), 1, [(4,), (2,)]),
    "polyint": Row(lambda p: fnp.polyint(p, 2), 1, [(3,)]),
    "poly": Row(fnp.poly, 1, [(2,), (3,)]),
    "polyfit": Row(lambda y: fnp.polyfit(XS, y, 2), 1, [(5,)]),
    "vander": Row(lambda x: fnp.vander(x, 3), 1, [(3,)]),
    "kaiser": Row(lambda beta: fnp.kaiser(5, beta), 1, [()], 0.5, 3.0),
    # ufuncs: a generic one (Python loop over the axis) and the built-in methods
    "frompyfunc": Row(lambda x: (lambda u: (u.reduce(x, axis=-1), u.accumulate(x, axis=-1),
                                            u.outer(x, x)))(
        fnp.frompyfunc(lambda a, b: a * b + fnp.sin(b), nin=2, nout=1)), 1, ND1),
    "add.outer": Row(lambda x, y: fnp.add.outer(x, y), 2, ELEM2),
    "multiply.reduce": Row(lambda x: fnp.multiply.reduce(x, axis=None), 1, ELEM1),
    "maximum.accumulate": Row(lambda x: fnp.maximum.accumulate(x, axis=-1), 1, ND1),
    "add.at": Row(lambda x, v: fnp.add.at(x, np.array([0, 0, 1]), v, inplace=False), 2,
                  [((3,), (3,)), ((2, 2), ())]),
}

EXCLUDED: dict[str, str] = {
    **{n: "boolean output" for n in (
        "allclose", "isclose", "array_equal", "array_equiv", "signbit", "isneginf", "isposinf",
        "isin")},
    **{n: "integer output (indices, counts or bits)" for n in (
        "gcd", "lcm", "bitwise_invert", "bitwise_left_shift", "bitwise_right_shift",
        "bitwise_count", "packbits", "unpackbits", "nanargmax", "nanargmin", "unravel_index",
        "ravel_multi_index", "indices", "tri", "tril_indices", "triu_indices",
        "tril_indices_from", "triu_indices_from", "diag_indices", "diag_indices_from",
        "mask_indices", "searchsorted", "digitize", "argwhere", "flatnonzero")},
    **{n: "shape, dtype or Python-object query: no array computation" for n in (
        "shape", "ndim", "size", "isscalar", "iterable", "broadcast_shapes", "isdtype",
        "can_cast", "promote_types", "einsum_path")},
    **{n: "reads or writes bytes, files or text: no array computation" for n in (
        "frombuffer", "fromiter", "fromstring", "fromfile", "from_dlpack", "load", "save",
        "savez", "array_repr", "array_str", "printoptions", "get_printoptions",
        "set_printoptions")},
    **{n: "a window of M points: no array input" for n in (
        "bartlett", "blackman", "hamming", "hanning")},
    **{n: "the output depends on exact equality between the inputs, which a perturbation "
          "breaks; the values are copied as in unique (swept)" for n in (
        "intersect1d", "setdiff1d", "setxor1d")},
    **{n: "values as unique's (swept); the other outputs are integers" for n in (
        "unique_counts", "unique_inverse", "unique_all")},
    "spacing": "the gap to the next float: a step function of x's bits (as nextafter)",
    "heaviside": "a step function: zero derivative in x1; x2 is picked only where x1 == 0",
    "fromfunction": "calls the function on integer index grids: nothing to differentiate",
    "roots": "eigenvalues of a companion matrix (linalg.eigvals, swept with linalg); "
             "strip_zeros reads the values",
}


def _new_functions():
    names = set(_surface.__all__) | set(_setops.__all__) | set(_polynomial.__all__) | \
        set(_ufunc.__all__)
    return {n for n in names if callable(getattr(fnp, n))
            and not isinstance(getattr(fnp, n), (type, types.ModuleType))}


def test_every_new_function_is_swept_or_excluded():
    functions = _new_functions()
    swept = {n for n in ROWS if "." not in n}  # "add.outer": a method, not a name
    missing = sorted(functions - swept - set(EXCLUDED))
    assert not missing, f"new nanofn.numpy functions with no row or exclusion: {missing}"
    assert not swept & set(EXCLUDED)
    assert not (swept | set(EXCLUDED)) - functions, "rows for names that are not new"


def _cases(row):
    return [(s,) if row.nargs == 1 else tuple(s) for s in row.shapes]


@pytest.mark.parametrize("name", sorted(ROWS))
def test_gradients(name):
    row = ROWS[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for shapes in _cases(row):
        args = tuple(rng.uniform(row.lo, row.hi, size=s) for s in shapes)
        try:
            check_grads(row.fn, args, order=1)
        except AssertionError as err:
            raise AssertionError(f"{name} at {shapes}:\n{err}") from None
        if row.jit:
            eager = nanofn.tree_util.tree_leaves(row.fn(*args))
            jitted = nanofn.tree_util.tree_leaves(nanofn.jit(row.fn)(*args))
            for e, j in zip(eager, jitted):
                assert np.asarray(j).dtype == np.asarray(e).dtype, (name, shapes)
                np.testing.assert_allclose(np.asarray(j), np.asarray(e), rtol=1e-10,
                                           atol=1e-12, err_msg=f"jit of {name} at {shapes}")
    if row.order2:
        args = tuple(rng.uniform(row.lo, row.hi, size=s) for s in _cases(row)[0])
        check_grads(row.fn, args, order=2)
