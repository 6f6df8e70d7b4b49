"""nanofn.scipy.stats: probability distributions and sample statistics (jax.scipy.stats's
names, signatures and defaults).

Each distribution is a module of functions (`norm.logpdf(x, loc=0, scale=1)`,
`poisson.logpmf(k, mu, loc=0)`, ...) with exactly the methods JAX gives it. All are written
with `nanofn.numpy` and `nanofn.scipy.special`, so they broadcast their arguments and take
`grad`, `vmap` and `jit`; log densities and log tails are computed in logs, so they stay
finite far in the tails.

Example:
    >>> from nanofn.scipy.stats import norm
    >>> round(float(norm.logpdf(0.0)), 6)
    -0.918939
"""

from nanofn.scipy.stats import (
    bernoulli as bernoulli, beta as beta, betabinom as betabinom, binom as binom,
    cauchy as cauchy, chi2 as chi2, dirichlet as dirichlet, expon as expon, gamma as gamma,
    gennorm as gennorm, geom as geom, gumbel_l as gumbel_l, gumbel_r as gumbel_r,
    laplace as laplace, logistic as logistic, multinomial as multinomial,
    multivariate_normal as multivariate_normal, nbinom as nbinom, norm as norm,
    pareto as pareto, poisson as poisson, t as t, truncnorm as truncnorm, uniform as uniform,
    vonmises as vonmises, wrapcauchy as wrapcauchy,
)
from nanofn.scipy.stats._core import (
    ModeResult as ModeResult, mode as mode, rankdata as rankdata, sem as sem,
)
from nanofn.scipy.stats._kde import gaussian_kde as gaussian_kde

__all__ = ["bernoulli", "beta", "betabinom", "binom", "cauchy", "chi2", "dirichlet", "expon",
           "gamma", "gaussian_kde", "gennorm", "geom", "gumbel_l", "gumbel_r", "laplace",
           "logistic", "mode", "multinomial", "multivariate_normal", "nbinom", "norm", "pareto",
           "poisson", "rankdata", "sem", "t", "truncnorm", "uniform", "vonmises", "wrapcauchy"]
