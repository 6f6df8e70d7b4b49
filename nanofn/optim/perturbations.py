"""Smoothing a function by random perturbations, with ``optax.perturbations``' names.

:func:`make_perturbed_fun` turns ``f`` (pytree to pytree, possibly piecewise constant,
such as an argmax) into a Monte-Carlo estimate of ``f_sigma(x) = E_z f(x + sigma z)``,
with ``z`` drawn from a noise distribution (:class:`Gumbel` by default, or
:class:`Normal`). The estimate is written so that differentiating it with nanofn (any
order, forward or reverse) gives unbiased estimates of the derivatives of ``f_sigma``
from values of ``f`` alone: the score-function (REINFORCE) estimator, expressed with the
"magic box" ``exp(l - stop_gradient(l))`` of Foerster et al. (2018). ``f`` itself is
never differentiated.

The noise is drawn with ``nanofn.random`` from the key the returned function takes, split
as optax splits it (one key per sample, then one per leaf). nanofn's threefry keys are
JAX's bit for bit, and its normal and Gumbel draws agree with JAX's to a few float32 ulps
(the normal's tails to about 5e-6 relative), so for a given key the estimate matches
optax 0.2.8's to about that precision.

Example:
    >>> import nanofn, nanofn.numpy as jnp
    >>> from nanofn.optim.perturbations import make_perturbed_fun
    >>> relu_sum = lambda x: jnp.sum(jnp.maximum(x, 0.0))
    >>> smooth = make_perturbed_fun(relu_sum, num_samples=1000, sigma=0.1)
    >>> g = nanofn.grad(smooth, argnums=1)(nanofn.random.PRNGKey(0), jnp.zeros(3))
    >>> g.shape
    (3,)
"""

from __future__ import annotations

import numbers
from typing import Any, Callable

import nanofn
import nanofn.numpy as jnp
import nanofn.random as jrandom
from nanofn import lax, tree_util
from nanofn.optim import tree as otu

__all__ = ["Gumbel", "Normal", "make_perturbed_fun"]


def _sample_dtype(dtype):
    # Python's `float` means the default float dtype, as in JAX (float32 unless
    # jax_enable_x64), rather than numpy's float64.
    if dtype is float:
        return jnp.asarray(0.0).dtype
    return dtype


class Normal:
    """The standard normal distribution, as noise for :func:`make_perturbed_fun`.

    ``log_prob`` is the log-density up to its additive constant, ``-x**2 / 2``: only its
    derivatives matter to the estimator.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn.optim.perturbations import Normal
        >>> z = Normal().sample(nanofn.random.PRNGKey(0), (2, 3))
        >>> z.shape, z.dtype
        ((2, 3), dtype('float32'))
        >>> print(Normal().log_prob(jnp.array([0.0, 2.0])).tolist())
        [-0.0, -2.0]
    """

    def sample(self, key, sample_shape=(), dtype=float):
        """Draws ``nanofn.random.normal(key, sample_shape, dtype)``."""
        return jrandom.normal(key, tuple(sample_shape), _sample_dtype(dtype))

    def log_prob(self, inputs):
        """The log-density up to a constant: ``-inputs**2 / 2``."""
        return -0.5 * inputs ** 2


class Gumbel:
    """The standard Gumbel distribution, as noise for :func:`make_perturbed_fun`.

    ``log_prob`` is its log-density ``-x - exp(-x)``. With Gumbel noise, the perturbed
    one-hot argmax is the softmax of ``x / sigma`` in expectation (the Gumbel-max trick).

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn.optim.perturbations import Gumbel
        >>> z = Gumbel().sample(nanofn.random.PRNGKey(0), (4,))
        >>> z.shape
        (4,)
        >>> print(Gumbel().log_prob(jnp.array([0.0])).tolist())
        [-1.0]
    """

    def sample(self, key, sample_shape=(), dtype=float):
        """Draws ``nanofn.random.gumbel(key, sample_shape, dtype)``."""
        return jrandom.gumbel(key, tuple(sample_shape), _sample_dtype(dtype))

    def log_prob(self, inputs):
        """The log-density ``-inputs - exp(-inputs)``."""
        return -inputs - jnp.exp(-inputs)


def _magic_box(x):
    # 1 in value; its derivative is its argument's derivative (times 1), to every order.
    return jnp.exp(x - lax.stop_gradient(x))


def make_perturbed_fun(fun: Callable[[Any], Any], num_samples: int = 1000,
                       sigma: Any = 0.1, noise: Any = Gumbel(),
                       use_baseline: bool = True) -> Callable[[Any, Any], Any]:
    r"""Makes a differentiable Monte-Carlo approximation of ``fun`` by perturbing its input.

    The returned ``g(key, x)`` estimates :math:`f_\sigma(x) = \mathbb{E}_{z \sim \mu}
    f(x + \sigma z)` from ``num_samples`` draws of the noise (one key per draw, split
    from ``key``; one key per leaf of ``x`` within each draw). Its derivatives in ``x``
    with ``nanofn.grad``, ``jacobian``, ``hessian`` ... are unbiased estimates of those
    of :math:`f_\sigma`, obtained from values of ``fun`` only (score-function estimator;
    Berthet et al., 2020, "Learning with Differentiable Perturbed Optimizers"), so ``fun``
    need not be differentiable. With ``use_baseline``, ``fun(x)`` at the unperturbed
    input is subtracted inside the derivative estimate, which leaves it unbiased and
    lowers its variance; the value estimate is unchanged.

    Args:
        fun: a function from a pytree of arrays to a pytree of arrays.
        num_samples: the number of perturbed evaluations averaged, a positive int.
        sigma: the scale of the perturbation.
        noise: the noise distribution: an object with ``sample(key, shape, dtype)`` and
            ``log_prob(z)``, such as :class:`Gumbel` (the default) or :class:`Normal`.
        use_baseline: whether to use ``fun(x)`` as a control variate.

    Returns:
        ``g(key, x)``: the estimate, with the structure of ``fun(x)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn.optim.perturbations import make_perturbed_fun
        >>> one_hot_argmax = lambda x: nanofn.nn.one_hot(jnp.argmax(x), 3)
        >>> soft = make_perturbed_fun(one_hot_argmax, num_samples=2000, sigma=1.0)
        >>> p = soft(nanofn.random.PRNGKey(0), jnp.array([1.0, 2.0, 0.5]))
        >>> print(round(float(p.sum()), 5), int(jnp.argmax(p)))
        1.0 1
    """
    if not callable(fun):
        raise TypeError(f"make_perturbed_fun: argument `fun` must be a function, got {fun!r}.")
    if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral):
        raise TypeError("make_perturbed_fun: argument `num_samples` must be an int, got "
                        f"{num_samples!r}.")
    if num_samples < 1:
        raise ValueError("make_perturbed_fun: argument `num_samples` must be >= 1, got "
                         f"{num_samples}.")
    if not (callable(getattr(noise, "sample", None))
            and callable(getattr(noise, "log_prob", None))):
        raise TypeError("make_perturbed_fun: argument `noise` must have `sample(key, shape, "
                        f"dtype)` and `log_prob(z)` methods (like Gumbel()), got {noise!r}.")
    if isinstance(sigma, numbers.Real) and not sigma > 0:
        raise ValueError(f"make_perturbed_fun: argument `sigma` must be > 0, got {sigma!r}.")
    num_samples = int(num_samples)

    def one_draw(key, x, baseline):
        z = otu.random_like(key, x, sampler=noise.sample)
        # The perturbed point is a constant for differentiation; the noise is recovered
        # from it so that x enters only through the log-density (the score).
        moved = lax.stop_gradient(tree_util.tree_map(lambda a, b: a + sigma * b, x, z))
        z = tree_util.tree_map(lambda a, y: (y - a) / sigma, x, moved)
        box = _magic_box(otu.sum(tree_util.tree_map(noise.log_prob, z)))
        out = otu.scale(box, fun(moved))
        if use_baseline:
            out = otu.add_scale(out, 1 - box, baseline)
        return out

    def perturbed(key, x):
        x = tree_util.tree_map(jnp.asarray, x)
        baseline = fun(lax.stop_gradient(x)) if use_baseline else None
        keys = jrandom.split(key, num_samples)
        outs = nanofn.vmap(one_draw, in_axes=(0, None, None))(keys, x, baseline)
        return tree_util.tree_map(lambda o: jnp.mean(o, axis=0), outs)

    return perturbed

