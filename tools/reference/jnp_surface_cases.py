"""Cases where JAX's answer is not numpy's (defaults of `size=` fills, edge values, dtypes),
written once for both libraries.

Each case is `name -> (make, args)`: `make(np_)` builds the function from a numpy-like
module (`jax.numpy` or `nanofn.numpy`); `args` are numpy arrays of 32-bit dtypes (JAX's
defaults, without x64). `record_jnp_surface.py` evaluates them with JAX into
`jnp_surface.json`; tests/numpy/test_surface.py evaluates them with nanofn and compares
values and dtypes.
"""

import numpy as np

F = np.float32
I = np.int32
INF, NAN = np.inf, np.nan


def f32(*v):
    return np.array(v, F)


def i32(*v):
    return np.array(v, I)


CASES = {
    # value-dependent sizes: JAX's fill values when size= is larger than the result
    "unique(size)": (lambda np_: lambda x: np_.unique(x, size=4), (i32(3, 1, 1),)),
    "unique(size, all)": (lambda np_: lambda x: np_.unique(
        x, size=4, return_index=True, return_inverse=True, return_counts=True), (i32(3, 1, 1),)),
    "union1d(size)": (lambda np_: lambda a, b: np_.union1d(a, b, size=6),
                      (i32(1, 2, 3), i32(2, 5))),
    "intersect1d(size)": (lambda np_: lambda a, b: np_.intersect1d(a, b, size=3),
                          (i32(1, 2, 3), i32(2, 3, 4))),
    "setdiff1d(size)": (lambda np_: lambda a, b: np_.setdiff1d(a, b, size=3),
                        (i32(1, 2, 3), i32(2))),
    "nonzero(size)": (lambda np_: lambda x: np_.nonzero(x, size=3),
                      (np.array([[0, 1], [1, 0]], I),)),
    "argwhere(size)": (lambda np_: lambda x: np_.argwhere(x, size=3), (i32(0, 1, 1),)),
    "flatnonzero(size)": (lambda np_: lambda x: np_.flatnonzero(x, size=4), (i32(0, 2, 3),)),
    "extract(size)": (lambda np_: lambda c, x: np_.extract(c, x, size=3),
                      (np.array([True, False, True]), f32(1, 2, 3))),
    "bincount(negative)": (lambda np_: lambda x: np_.bincount(x, length=3), (i32(-1, 0, 2),)),
    # edge values
    "polydiv(remainder length)": (lambda np_: np_.polydiv, (f32(1, -3, 2), f32(1, -1))),
    "modf(inf)": (lambda np_: np_.modf, (f32(-INF, INF, -1.5),)),
    # (not subnormals: XLA on CPU flushes them, so JAX's answer there is not numpy's; nanofn
    # gives numpy's, see test_elementwise_helpers)
    "frexp(edges)": (lambda np_: np_.frexp, (f32(0.0, -0.0, INF, 3.0, -0.3, 1e-30),)),
    "nanargmax(all nan)": (lambda np_: lambda x: np_.nanargmax(x, axis=1),
                           (np.array([[NAN, NAN], [1.0, 2.0]], F),)),
    "spacing": (lambda np_: np_.spacing, (f32(0.0, 1.0, -1.0, 1e30),)),
    "isclose(inf, nan)": (lambda np_: lambda a, b: np_.isclose(a, b, equal_nan=True),
                          (f32(INF, -INF, NAN, 1.0), f32(INF, INF, NAN, 1.000001))),
    "digitize(decreasing)": (lambda np_: np_.digitize, (f32(0.5, 1.0, 2.5, 3.0), f32(3, 2, 1))),
    "searchsorted(nan)": (lambda np_: lambda a, v: np_.searchsorted(a, v, side="right"),
                          (f32(1, 2, NAN), f32(NAN, 1.5, 3))),
    "heaviside": (lambda np_: np_.heaviside, (f32(-1, 0, 1), f32(0.5))),
    "ldexp(overflow)": (lambda np_: np_.ldexp, (f32(1.0, 3.0, 1.0), i32(1000, -1000, 3))),
    "gcd": (lambda np_: np_.gcd, (i32(0, -4, 12), i32(0, 6, -8))),
    "lcm": (lambda np_: np_.lcm, (i32(0, -4, 12), i32(3, 6, -8))),
    "bitwise_count": (lambda np_: np_.bitwise_count, (i32(-1, 7, 0),)),
    "sort_complex": (lambda np_: np_.sort_complex, (f32(3, 1, 2),)),
    "histogram": (lambda np_: lambda x: np_.histogram(x, bins=3), (f32(1, 2, 2, 3),)),
    "unwrap": (lambda np_: np_.unwrap, (f32(0.0, 3.0, -3.0, 2.0),)),
    "var(correction)": (lambda np_: lambda x: np_.var(x, correction=1), (f32(1, 3, 4),)),
    "std(mean)": (lambda np_: lambda x: np_.std(x, mean=np_.zeros(1, np_.float32)),
                  (f32(1, 3, 4),)),
    "kaiser": (lambda np_: lambda b: np_.kaiser(5, b), (f32(2.0),)),
    "hamming": (lambda np_: lambda: np_.hamming(5), ()),
    "polyint(k)": (lambda np_: lambda p: np_.polyint(p, m=2, k=np_.array([1.0, 2.0])),
                   (f32(3, 2, 1),)),
    "clip(min, max)": (lambda np_: lambda x: np_.clip(x, min=1, max=3), (i32(0, 2, 5),)),
    "sum(promote_integers=False)": (lambda np_: lambda x: np_.sum(x, promote_integers=False),
                                    (np.array([100, 100], np.int8),)),
    "dot(preferred_element_type)": (
        lambda np_: lambda a, b: np_.dot(a, b, preferred_element_type=np_.int32),
        (np.array([100, 100], np.int8), np.array([2, 2], np.int8))),
    "add.outer": (lambda np_: np_.add.outer, (f32(1, 2), f32(10, 20, 30))),
    "maximum.accumulate": (lambda np_: np_.maximum.accumulate, (i32(1, 3, 2),)),
    "add.at": (lambda np_: lambda x: np_.add.at(x, np.array([0, 0, 2]), 1.0, inplace=False),
               (f32(0, 0, 0),)),
    "frompyfunc.reduce(identity)": (
        lambda np_: lambda x: np_.frompyfunc(lambda a, b: a * b + 1, nin=2, nout=1,
                                             identity=0).reduce(x), (f32(0, 1, 2, 3),)),
}
