"""nanofn.random: counter-based pseudo-random numbers with jax.random's names and meanings.

Keys are explicit: make one with `key(seed)`, derive independent ones with `split` or
`fold_in`, and pass a key to every sampler. The same key gives the same numbers, eagerly,
under `jit`, inside `vmap` and `scan`, on every machine. See docs/random.md.

Example:
    >>> import nanofn
    >>> key, sub = nanofn.random.split(nanofn.random.key(0))
    >>> x = nanofn.random.normal(sub, (3,))
    >>> x.shape, x.dtype
    ((3,), dtype('float32'))
"""

from nanofn.random._threefry import (
    PRNGKey as PRNGKey, bits as bits, fold_in as fold_in, key as key, key_data as key_data,
    split as split, wrap_key_data as wrap_key_data,
)
from nanofn.random._distributions import (
    ball as ball, bernoulli as bernoulli, beta as beta, categorical as categorical,
    cauchy as cauchy, choice as choice, dirichlet as dirichlet, exponential as exponential,
    gamma as gamma, generalized_normal as generalized_normal, gumbel as gumbel,
    laplace as laplace, loggamma as loggamma, logistic as logistic, lognormal as lognormal,
    multivariate_normal as multivariate_normal, normal as normal, permutation as permutation,
    rademacher as rademacher, randint as randint, random_gamma_grad as random_gamma_grad,
    truncated_normal as truncated_normal, uniform as uniform,
)
from nanofn.random._more_distributions import *  # noqa: F401,F403  pareto, maxwell, wald...
from nanofn.random._discrete import *  # noqa: F401,F403  poisson, binomial, multinomial

from nanofn._public import public_names as _public_names

__all__ = _public_names(globals())
