"""The kink cases: functions evaluated at their non-differentiable points (kinks, ties,
domain edges), written once for both libraries.

Each case is `name -> (make, args)`: `make(np_, nn)` builds the function from a numpy-like
module (`jax.numpy` or `nanofn.numpy`) and an nn module (`jax.nn` or `nanofn.nn`); `args`
are float64 values. `record_kinks.py` evaluates the cases with JAX into `kinks.json`;
`tests/numpy/test_kinks.py` evaluates them with nanofn and compares.
"""

INF = float("inf")

CASES = {
    # abs, sign, sqrt, powers at 0
    "abs@0": (lambda np_, nn: np_.abs, (0.0,)),
    "abs@-0": (lambda np_, nn: np_.abs, (-0.0,)),
    "sign@0": (lambda np_, nn: np_.sign, (0.0,)),
    "sqrt@0": (lambda np_, nn: np_.sqrt, (0.0,)),
    "cbrt@1": (lambda np_, nn: np_.cbrt, (1.0,)),
    "square@0": (lambda np_, nn: np_.square, (0.0,)),
    "power(x,2.0)@0": (lambda np_, nn: lambda x: np_.power(x, np_.float64(2.0)), (0.0,)),
    "power(x,0.5)@0": (lambda np_, nn: lambda x: np_.power(x, np_.float64(0.5)), (0.0,)),
    "power(0,y)@2": (lambda np_, nn: lambda y: np_.power(np_.float64(0.0), y), (2.0,)),
    "power(x,y)@(0,2)": (lambda np_, nn: np_.power, (0.0, 2.0)),
    "arccos@1": (lambda np_, nn: np_.arccos, (1.0,)),
    "arcsin@-1": (lambda np_, nn: np_.arcsin, (-1.0,)),
    "log@0": (lambda np_, nn: np_.log, (0.0,)),
    # hypot: at the origin, on an axis, at a tie
    "hypot@(0,0)": (lambda np_, nn: np_.hypot, (0.0, 0.0)),
    "hypot@(3,0)": (lambda np_, nn: np_.hypot, (3.0, 0.0)),
    "hypot@(0,-3)": (lambda np_, nn: np_.hypot, (0.0, -3.0)),
    "hypot@(2,2)": (lambda np_, nn: np_.hypot, (2.0, 2.0)),
    # maximum / minimum / clip at ties
    "maximum@tie": (lambda np_, nn: np_.maximum, (1.0, 1.0)),
    "minimum@tie": (lambda np_, nn: np_.minimum, (1.0, 1.0)),
    "maximum@(2,1)": (lambda np_, nn: np_.maximum, (2.0, 1.0)),
    "clip@lower": (lambda np_, nn: lambda x, lo, hi: np_.clip(x, lo, hi), (0.0, 0.0, 1.0)),
    "clip@upper": (lambda np_, nn: lambda x, lo, hi: np_.clip(x, lo, hi), (1.0, 0.0, 1.0)),
    "clip@inside": (lambda np_, nn: lambda x, lo, hi: np_.clip(x, lo, hi), (0.5, 0.0, 1.0)),
    "max@ties": (lambda np_, nn: np_.max, ([1.0, 3.0, 3.0, 2.0],)),
    "min@ties": (lambda np_, nn: np_.min, ([1.0, 1.0, 1.0, 2.0],)),
    "max@all-equal": (lambda np_, nn: np_.max, ([2.0, 2.0],)),
    "amax(axis=0)@ties": (lambda np_, nn: lambda x: np_.sum(np_.amax(x, axis=0)),
                          ([[1.0, 2.0], [1.0, 0.0]],)),
    # where-built functions and activations at their kinks
    "where(x>0,x,0)@0": (lambda np_, nn: lambda x: np_.where(x > 0, x, 0.0), (0.0,)),
    "where(x>=0,x,-x)@0": (lambda np_, nn: lambda x: np_.where(x >= 0, x, -x), (0.0,)),
    "relu@0": (lambda np_, nn: nn.relu, (0.0,)),
    "relu6@0": (lambda np_, nn: nn.relu6, (0.0,)),
    "relu6@6": (lambda np_, nn: nn.relu6, (6.0,)),
    "leaky_relu@0": (lambda np_, nn: nn.leaky_relu, (0.0,)),
    "hard_tanh@1": (lambda np_, nn: nn.hard_tanh, (1.0,)),
    "hard_tanh@-1": (lambda np_, nn: nn.hard_tanh, (-1.0,)),
    "elu@0": (lambda np_, nn: nn.elu, (0.0,)),
    "celu@0": (lambda np_, nn: nn.celu, (0.0,)),
    "selu@0": (lambda np_, nn: nn.selu, (0.0,)),
    "soft_sign@0": (lambda np_, nn: nn.soft_sign, (0.0,)),
    "hard_sigmoid@3": (lambda np_, nn: nn.hard_sigmoid, (3.0,)),
    # logaddexp and what is built on it: smooth at the tie (no second kink)
    "logaddexp@tie": (lambda np_, nn: np_.logaddexp, (0.0, 0.0)),
    "logaddexp@(1,1)": (lambda np_, nn: np_.logaddexp, (1.0, 1.0)),
    "logaddexp@(inf,inf)": (lambda np_, nn: np_.logaddexp, (INF, INF)),
    "logaddexp@(-inf,0)": (lambda np_, nn: np_.logaddexp, (-INF, 0.0)),
    "logaddexp2@tie": (lambda np_, nn: np_.logaddexp2, (0.0, 0.0)),
    "softplus@0": (lambda np_, nn: nn.softplus, (0.0,)),
    "log_sigmoid@0": (lambda np_, nn: nn.log_sigmoid, (0.0,)),
    "logsumexp@ties": (lambda np_, nn: nn.logsumexp, ([0.0, 0.0, 0.0],)),
    # norms at zero and on an axis
    "norm@0": (lambda np_, nn: np_.linalg.norm, ([0.0, 0.0, 0.0],)),
    "norm@e1": (lambda np_, nn: np_.linalg.norm, ([1.0, 0.0, 0.0],)),
    "norm(ord=1)@0": (lambda np_, nn: lambda x: np_.linalg.norm(x, ord=1), ([0.0, 1.0],)),
    "norm(ord=inf)@ties": (lambda np_, nn: lambda x: np_.linalg.norm(x, ord=np_.inf),
                           ([2.0, -2.0, 1.0],)),
    "sqrt(sum(x*x))@0": (lambda np_, nn: lambda x: np_.sqrt(np_.sum(x * x)), ([0.0, 0.0],)),
    # logaddexp at infinities of the same and of opposite signs
    "logaddexp@(-inf,-inf)": (lambda np_, nn: np_.logaddexp, (-INF, -INF)),
    "logaddexp@(inf,-inf)": (lambda np_, nn: np_.logaddexp, (INF, -INF)),
    "logaddexp2@(inf,inf)": (lambda np_, nn: np_.logaddexp2, (INF, INF)),
    "logaddexp2@(-inf,-inf)": (lambda np_, nn: np_.logaddexp2, (-INF, -INF)),
    "logsumexp@(-inf,0)": (lambda np_, nn: nn.logsumexp, ([-INF, 0.0],)),
    "logsumexp@all-inf": (lambda np_, nn: nn.logsumexp, ([-INF, -INF],)),
    # more ties: fmax/fmin, order statistics
    "fmax@tie": (lambda np_, nn: np_.fmax, (1.0, 1.0)),
    "fmin@tie": (lambda np_, nn: np_.fmin, (1.0, 1.0)),
    "median@ties": (lambda np_, nn: np_.median, ([1.0, 2.0, 2.0, 3.0],)),
    "sort@ties": (lambda np_, nn: lambda x: np_.sort(x) * np_.arange(1.0, 4.0),
                  ([2.0, 1.0, 2.0],)),
    "ptp@ties": (lambda np_, nn: np_.ptp, ([1.0, 3.0, 3.0, 1.0],)),
    # products through zeros (no division by the zero)
    "prod@one-zero": (lambda np_, nn: np_.prod, ([2.0, 0.0, 3.0],)),
    "prod@two-zeros": (lambda np_, nn: np_.prod, ([0.0, 2.0, 0.0],)),
    "cumprod@zero": (lambda np_, nn: np_.cumprod, ([2.0, 0.0, 3.0],)),
    # removable singularities and 0 * inf
    "sinc@0": (lambda np_, nn: np_.sinc, (0.0,)),
    "power(x,0.0)@0": (lambda np_, nn: lambda x: np_.power(x, np_.float64(0.0)), (0.0,)),
    "x**0@0": (lambda np_, nn: lambda x: x ** 0, (0.0,)),
    "arctan2@(0,0)": (lambda np_, nn: np_.arctan2, (0.0, 0.0)),
    "where(x>0,sqrt(x),0)@0": (lambda np_, nn: lambda x: np_.where(x > 0, np_.sqrt(x), 0.0),
                               (0.0,)),
    "std@constant": (lambda np_, nn: np_.std, ([1.0, 1.0, 1.0],)),
    "norm(axis=1)@zero-row": (lambda np_, nn: lambda x: np_.linalg.norm(x, axis=1),
                              ([[0.0, 0.0], [3.0, 4.0]],)),
    "eigvalsh@degenerate": (lambda np_, nn: lambda x: np_.linalg.eigvalsh(x) * np_.arange(1.0, 4.0),
                            ([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 5.0]],)),
    # the simple eigenvalue's eigenvector is well defined beside a degenerate pair
    "eigh-simple-vector@degenerate": (lambda np_, nn: lambda x: (lambda w, v: np_.sum(
        v[:, 2] * np_.arange(1.0, 4.0)) ** 2)(*np_.linalg.eigh(x)),
        ([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 5.0]],)),
    "svdvals@degenerate": (lambda np_, nn: lambda x: np_.linalg.svd(x, compute_uv=False)
                           * np_.arange(1.0, 3.0), ([[1.0, 0.0], [0.0, 1.0]],)),
    "norm(ord=2)@equal-singular-values": (lambda np_, nn: lambda x: np_.linalg.norm(x, ord=2),
                                          ([[1.0, 0.0], [0.0, 1.0]],)),
}
