"""jax.random draws under `jax_enable_x64`: name -> (seed, draw(random_module, key)).

Shared by tests/random/test_x64_streams.py and by record_x64_streams.py, which runs them
under JAX with x64 on. With x64 JAX's integer samplers default to int64 and several of them
draw their intermediate uniforms in float64 or their bits in 64-bit words, so these cases
pin both the dtypes and the values. Inputs are numpy arrays or Python scalars, so the same
lambda runs in both libraries."""

import numpy as np

_LOGITS = np.log(np.array([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]]))
_P = np.array([0.1, 0.2, 0.3, 0.15, 0.25])

CASES = {
    # keys: a Python int seed is a 64-bit seed under x64 (both words of the key)
    "key_small": (0, lambda r, k: r.key_data(r.PRNGKey(7))),
    "key_wide": (0, lambda r, k: r.key_data(r.PRNGKey(2 ** 40 + 3))),
    "key_negative": (0, lambda r, k: r.key_data(r.PRNGKey(-5))),
    "key_int64": (0, lambda r, k: r.key_data(r.PRNGKey(np.int64(-(2 ** 35) - 1)))),
    "split": (7, lambda r, k: r.split(k, 3)),
    "fold_in": (7, lambda r, k: r.fold_in(k, 12)),
    # bits: uint64 by default under x64
    "bits_default": (7, lambda r, k: r.bits(k, (4,))),
    "bits_uint8": (7, lambda r, k: r.bits(k, (4,), np.uint8)),
    "bits_uint32": (7, lambda r, k: r.bits(k, (4,), np.uint32)),
    # randint: int64 by default under x64 (so 64-bit words are drawn)
    "randint_default": (7, lambda r, k: r.randint(k, (6,), 0, 10)),
    "randint_int64": (7, lambda r, k: r.randint(k, (6,), -5, 1000, np.int64)),
    "randint_int32": (7, lambda r, k: r.randint(k, (6,), 0, 10, np.int32)),
    "randint_int8": (7, lambda r, k: r.randint(k, (6,), -3, 100, np.int8)),
    "randint_array_bounds": (7, lambda r, k: r.randint(k, (2, 3), np.array([0, 10, 100]),
                                                       np.array([5, 20, 1000]))),
    # permutation / choice: the int64 arange of an int, the array's own dtype otherwise
    "permutation_int": (7, lambda r, k: r.permutation(k, 7)),
    "permutation_int64_array": (7, lambda r, k: r.permutation(k, np.arange(10, 16))),
    "permutation_int32_array": (7, lambda r, k: r.permutation(
        k, np.arange(6, dtype=np.int32))),
    "permutation_2d": (7, lambda r, k: r.permutation(k, np.arange(12.0).reshape(4, 3))),
    "permutation_2d_axis1": (7, lambda r, k: r.permutation(
        k, np.arange(12).reshape(3, 4), axis=1)),
    "permutation_independent": (7, lambda r, k: r.permutation(
        k, np.arange(12).reshape(3, 4), axis=1, independent=True)),
    "choice_replace": (7, lambda r, k: r.choice(k, 10, (3,))),
    "choice_no_replace": (7, lambda r, k: r.choice(k, 10, (3,), replace=False)),
    "choice_scalar": (7, lambda r, k: r.choice(k, 10)),
    "choice_array": (7, lambda r, k: r.choice(k, np.arange(20, 30), (2, 2))),
    "choice_array_axis1": (7, lambda r, k: r.choice(
        k, np.arange(12.0).reshape(3, 4), (2,), axis=1)),
    "choice_array_no_replace": (7, lambda r, k: r.choice(
        k, np.arange(20, 30), (4,), replace=False)),
    "choice_p": (7, lambda r, k: r.choice(k, 5, (6,), p=_P)),
    "choice_p_no_replace": (7, lambda r, k: r.choice(k, 5, (3,), replace=False, p=_P)),
    "choice_p_array": (7, lambda r, k: r.choice(k, np.arange(50, 55), (4,), p=_P)),
    "choice_p_float32": (7, lambda r, k: r.choice(k, 5, (6,), p=_P.astype(np.float32))),
    # rademacher: int64 by default; its uniform is float64 under x64
    "rademacher_default": (7, lambda r, k: r.rademacher(k, (8,))),
    "rademacher_int64": (7, lambda r, k: r.rademacher(k, (5,), np.int64)),
    "rademacher_int32": (7, lambda r, k: r.rademacher(k, (8,), np.int32)),
    "rademacher_float32": (7, lambda r, k: r.rademacher(k, (8,), np.float32)),
    # categorical: argmax/top_k indices are int64
    "categorical": (7, lambda r, k: r.categorical(k, _LOGITS)),
    "categorical_shape": (7, lambda r, k: r.categorical(k, _LOGITS, shape=(3, 2))),
    "categorical_axis0": (7, lambda r, k: r.categorical(k, _LOGITS, axis=0)),
    "categorical_no_replace": (7, lambda r, k: r.categorical(
        k, _LOGITS, shape=(3, 2), replace=False)),
    "categorical_float32": (7, lambda r, k: r.categorical(k, _LOGITS.astype(np.float32))),
    # geometric: int64 by default; its uniform has p's (float64) dtype
    "geometric": (7, lambda r, k: r.geometric(k, 0.3, (8,))),
    "geometric_int32": (7, lambda r, k: r.geometric(k, 0.3, (8,), np.int32)),
    "geometric_float32_p": (7, lambda r, k: r.geometric(k, np.float32(0.3), (8,))),
    # float samplers: float64 by default under x64
    "uniform": (7, lambda r, k: r.uniform(k, (4,))),
    "uniform_bounds": (7, lambda r, k: r.uniform(k, (4,), minval=-2.0, maxval=3.0)),
    "uniform_float32": (7, lambda r, k: r.uniform(k, (4,), np.float32)),
    "normal": (7, lambda r, k: r.normal(k, (4,))),
    "normal_complex": (7, lambda r, k: r.normal(k, (3,), np.complex128)),
    "truncated_normal": (7, lambda r, k: r.truncated_normal(k, -1.0, 2.0, (4,))),
    "lognormal": (7, lambda r, k: r.lognormal(k, 0.5, (4,))),
    "multivariate_normal": (7, lambda r, k: r.multivariate_normal(
        k, np.zeros(2), np.array([[2.0, 0.5], [0.5, 1.0]]), (3,))),
    "bernoulli": (7, lambda r, k: r.bernoulli(k, 0.3, (8,))),
    "bernoulli_high": (7, lambda r, k: r.bernoulli(k, 0.3, (8,), mode="high")),
    "gumbel": (7, lambda r, k: r.gumbel(k, (4,))),
    "gumbel_high": (7, lambda r, k: r.gumbel(k, (4,), mode="high")),
    "exponential": (7, lambda r, k: r.exponential(k, (4,))),
    "laplace": (7, lambda r, k: r.laplace(k, (4,))),
    "logistic": (7, lambda r, k: r.logistic(k, (4,))),
    "cauchy": (7, lambda r, k: r.cauchy(k, (4,))),
    "pareto": (7, lambda r, k: r.pareto(k, 3.0, (4,))),
    "maxwell": (7, lambda r, k: r.maxwell(k, (4,))),
    "double_sided_maxwell": (7, lambda r, k: r.double_sided_maxwell(k, 1.0, 2.0, (4,))),
    "weibull_min": (7, lambda r, k: r.weibull_min(k, 2.0, 1.5, (4,))),
    "rayleigh": (7, lambda r, k: r.rayleigh(k, 0.5, (4,))),
    "wald": (7, lambda r, k: r.wald(k, 1.5, (4,))),
    "triangular": (7, lambda r, k: r.triangular(k, -1.0, 0.2, 2.0, (4,))),
    "orthogonal": (7, lambda r, k: r.orthogonal(k, 3)),
}
