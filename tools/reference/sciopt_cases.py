"""The problems the jax.scipy.optimize / cluster reference values are recorded at.

Each objective is written against a numpy-like module `np_` so the same code runs under
JAX (when recording) and nanofn (when testing).
"""

import numpy as np


def rosen(np_):
    def f(x):
        return np_.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    return f


def quadratic(np_):
    def f(x, A, b):
        return 0.5 * x @ A @ x - b @ x
    return f


def himmelblau(np_):
    def f(x):
        return (x[0] ** 2 + x[1] - 11.0) ** 2 + (x[0] + x[1] ** 2 - 7.0) ** 2
    return f


_rng = np.random.default_rng(0)
_M = _rng.normal(size=(3, 3))
QUAD_A = _M @ _M.T + 3.0 * np.eye(3)
QUAD_B = _rng.normal(size=3)

# name: (objective maker, x0, extra args)
MINIMIZE = {
    "rosen4_zeros": (rosen, np.zeros(4), ()),
    "rosen2_classic": (rosen, np.array([-1.2, 1.0]), ()),
    "quadratic3": (quadratic, np.array([1.0, -1.0, 0.5]), (QUAD_A, QUAD_B)),
    "himmelblau": (himmelblau, np.array([1.0, 1.0]), ()),
}

# name: (obs, code_book)
VQ = {
    "rows": (_rng.normal(size=(6, 3)), _rng.normal(size=(4, 3))),
    "flat": (_rng.normal(size=5), _rng.normal(size=3)),
}
