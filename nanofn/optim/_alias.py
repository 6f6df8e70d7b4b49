"""Aliases: the popular optimizers, each a short chain of building blocks.

Every alias follows the same recipe: statistics of the gradient first (momentum,
second moments, trust ratios), then optional weight decay, then
``scale_by_learning_rate``, which multiplies by ``-learning_rate`` so that
``apply_updates`` descends. Names, argument order and defaults are optax's.

In the equations, ``g_t`` is the gradient at step ``t`` (counting from 1), ``alpha_t``
the learning rate (a float or a schedule), ``u_t`` the update returned, which
``apply_updates`` adds to the parameters ``w``.
"""

from __future__ import annotations

import functools
from typing import Any, Optional

import nanofn.numpy as jnp
from nanofn.optim import _base, _combine, _transform
from nanofn.optim._base import GradientTransformation, ScalarOrSchedule, identity
from nanofn.optim._combine import chain


def sgd(learning_rate: ScalarOrSchedule, momentum: Optional[float] = None,
        nesterov: bool = False, accumulator_dtype: Optional[Any] = None
        ) -> GradientTransformation:
    r"""Stochastic gradient descent, with optional (Nesterov) momentum.

    Without momentum ``u_t = -alpha_t g_t``. With momentum ``beta``::

        m_t = g_t + beta m_{t-1}
        u_t = -alpha_t m_t                    (heavy ball)
        u_t = -alpha_t (g_t + beta m_t)       (nesterov=True)

    Args:
        learning_rate: a float or a schedule.
        momentum: the momentum coefficient ``beta`` in [0, 1], or ``None`` for none.
        nesterov: use Nesterov momentum.
        accumulator_dtype: dtype of the momentum buffer; ``None`` uses the params'.

    Returns:
        A :class:`GradientTransformation`: ``chain(trace, scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.sgd(learning_rate=0.1)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> updates, state = solver.update(nanofn.grad(f)(params), state, params)
        >>> params = optim.apply_updates(params, updates)
        >>> print(round(float(f(params)), 4))  # each x became 0.8 x: 0.64 * 14
        8.96

    References:
        Sutskever et al., On the importance of initialization and momentum in deep
        learning, ICML 2013. Nesterov, A method for unconstrained convex minimization
        problem with the rate of convergence O(1/k^2), 1983.
    """
    _base.check_rate("sgd", "momentum", momentum, allow_one=True)
    first = (_transform.trace(decay=momentum, nesterov=nesterov,
                              accumulator_dtype=accumulator_dtype)
             if momentum is not None else identity())
    return chain(first, _transform.scale_by_learning_rate(learning_rate))


def adam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-8, eps_root: float = 0.0, mu_dtype: Optional[Any] = None, *,
         nesterov: bool = False) -> GradientTransformation:
    r"""The Adam optimizer.

    Adam keeps exponential moving averages of the gradient and of its square and
    steps along their bias-corrected ratio::

        m_t = b1 m_{t-1} + (1 - b1) g_t
        v_t = b2 v_{t-1} + (1 - b2) g_t^2
        m^_t = m_t / (1 - b1^t),   v^_t = v_t / (1 - b2^t)
        u_t = -alpha_t m^_t / (sqrt(v^_t + eps_root) + eps)

    With ``nesterov=True`` (Nadam, see :func:`nadam`)
    ``m^_t = b1 m_t / (1 - b1^(t+1)) + (1 - b1) g_t / (1 - b1^t)``.

    Args:
        learning_rate: a float or a schedule.
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root (needed to differentiate through Adam,
            e.g. in meta-learning).
        mu_dtype: dtype of the first moment; ``None`` uses the params'.
        nesterov: use Nesterov momentum.

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_adam,
        scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.adam(learning_rate=0.1)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> updates, state = solver.update(nanofn.grad(f)(params), state, params)
        >>> params = optim.apply_updates(params, updates)
        >>> print([round(x, 4) for x in params.tolist()])  # first step: lr * sign(g)
        [0.9, 1.9, 2.9]

    References:
        Kingma and Ba, Adam: A Method for Stochastic Optimization, ICLR 2015.
    """
    return chain(
        _transform.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                                 nesterov=nesterov),
        _transform.scale_by_learning_rate(learning_rate))


nadam = functools.partial(adam, nesterov=True)
nadam.__doc__ = r"""The NAdam optimizer: Adam with Nesterov momentum.

    Same as :func:`adam` except for the first moment's estimate::

        m_t = b1 m_{t-1} + (1 - b1) g_t
        v_t = b2 v_{t-1} + (1 - b2) g_t^2
        m^_t = b1 m_t / (1 - b1^(t+1)) + (1 - b1) g_t / (1 - b1^t)
        v^_t = v_t / (1 - b2^t)
        u_t = -alpha_t m^_t / (sqrt(v^_t + eps_root) + eps)

    Dozat's Algorithm 2 also multiplies ``v^_t`` by ``b2``; like optax and most other
    implementations, nanofn leaves that factor out.

    Args:
        learning_rate: a float or a schedule.
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root.
        mu_dtype: dtype of the first moment; ``None`` uses the params'.

    Returns:
        A :class:`GradientTransformation`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> solver = optim.nadam(learning_rate=0.1)
        >>> state = solver.init(jnp.zeros(2))
        >>> updates, state = solver.update(jnp.array([1.0, -1.0]), state)
        >>> print(updates.shape)
        (2,)

    References:
        Dozat, Incorporating Nesterov Momentum into Adam, ICLR workshop 2016.
    """


def adamw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8, eps_root: float = 0.0, mu_dtype: Optional[Any] = None,
          weight_decay: ScalarOrSchedule = 1e-4, mask=None, *, nesterov: bool = False
          ) -> GradientTransformation:
    r"""Adam with decoupled weight decay (AdamW).

    The decay is added to Adam's direction, not to the gradient, so it is not
    rescaled by the second moment::

        m_t, v_t, m^_t, v^_t as in adam
        u_t = -alpha_t (m^_t / (sqrt(v^_t + eps_root) + eps) + lambda w_{t-1})

    As in PyTorch, the decay ``lambda`` is multiplied by the learning rate (the paper
    multiplies it by the schedule multiplier only).

    Args:
        learning_rate: a float or a schedule.
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root.
        mu_dtype: dtype of the first moment; ``None`` uses the params'.
        weight_decay: the decay ``lambda``, a float or a schedule.
        mask: optional pytree of booleans (or function of the params returning one)
            saying which params are decayed; typically not biases and norm scales.
        nesterov: use Nesterov momentum (see :func:`nadamw`).

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_adam, add_decayed_weights,
        scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.adamw(learning_rate=0.1, weight_decay=0.0)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> updates, state = solver.update(nanofn.grad(f)(params), state, params)
        >>> print([round(x, 4) for x in optim.apply_updates(params, updates).tolist()])
        [0.9, 1.9, 2.9]

    References:
        Loshchilov and Hutter, Decoupled Weight Decay Regularization, ICLR 2019.
    """
    _check_nonneg_decay("adamw", weight_decay)
    return chain(
        _transform.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                                 nesterov=nesterov),
        _transform.add_decayed_weights(weight_decay, mask),
        _transform.scale_by_learning_rate(learning_rate))


nadamw = functools.partial(adamw, nesterov=True)
nadamw.__doc__ = r"""NAdamW: AdamW with Nesterov momentum.

    Same as :func:`adamw` with Nadam's first-moment estimate
    ``m^_t = b1 m_t / (1 - b1^(t+1)) + (1 - b1) g_t / (1 - b1^t)``.

    Args:
        learning_rate: a float or a schedule.
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root.
        mu_dtype: dtype of the first moment; ``None`` uses the params'.
        weight_decay: the decay, a float or a schedule.
        mask: optional pytree of booleans saying which params are decayed.

    Returns:
        A :class:`GradientTransformation`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> solver = optim.nadamw(learning_rate=0.1)
        >>> params = jnp.ones(2)
        >>> updates, state = solver.update(jnp.array([1.0, -1.0]), solver.init(params), params)
        >>> print(updates.shape)
        (2,)

    References:
        Loshchilov and Hutter, Decoupled Weight Decay Regularization, ICLR 2019.
        Dozat, Incorporating Nesterov Momentum into Adam, ICLR workshop 2016.
    """


def _check_nonneg_decay(fn, weight_decay):
    _base.check_nonneg(fn, "weight_decay", weight_decay)


def adamax(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
           eps: float = 1e-8) -> GradientTransformation:
    r"""The Adamax optimizer: Adam with the infinity norm in place of the second moment.

    ::

        m_t = b1 m_{t-1} + (1 - b1) g_t
        v_t = max(|g_t| + eps, b2 v_{t-1})
        u_t = -alpha_t m_t / ((1 - b1^t) v_t)

    Args:
        learning_rate: a float or a schedule.
        b1: decay of the first moment, in [0, 1).
        b2: decay of the infinity norm, in [0, 1).
        eps: added to ``|g_t|`` so that ``v_t > 0``.

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_adamax,
        scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.adamax(learning_rate=0.1)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> updates, state = solver.update(nanofn.grad(f)(params), state, params)
        >>> print([round(x, 4) for x in optim.apply_updates(params, updates).tolist()])
        [0.9, 1.9, 2.9]

    References:
        Kingma and Ba, Adam: A Method for Stochastic Optimization, ICLR 2015 (section 7).
    """
    return chain(_transform.scale_by_adamax(b1=b1, b2=b2, eps=eps),
                 _transform.scale_by_learning_rate(learning_rate))


def amsgrad(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
            eps: float = 1e-8, eps_root: float = 0.0, mu_dtype: Optional[Any] = None,
            bias_correction_mu: bool = True, bias_correction_nu: bool = True
            ) -> GradientTransformation:
    r"""The AMSGrad optimizer: Adam dividing by the running maximum of the second moment.

    ::

        m_t, v_t as in adam;  m^_t = m_t / (1 - b1^t),  v^_t = v_t / (1 - b2^t)
        v_max_t = max(v_max_{t-1}, v^_t)
        u_t = -alpha_t m^_t / (sqrt(v_max_t + eps_root) + eps)

    The step size never grows because of a shrinking ``v``, which fixes Adam's
    non-convergence counterexample.

    Args:
        learning_rate: a float or a schedule.
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root.
        mu_dtype: dtype of the first moment; ``None`` uses the params'.
        bias_correction_mu: bias-correct ``m`` (False matches the paper).
        bias_correction_nu: bias-correct ``v`` before the maximum (False matches the
            paper).

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_amsgrad,
        scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.amsgrad(learning_rate=0.1)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> updates, state = solver.update(nanofn.grad(f)(params), state, params)
        >>> print([round(x, 4) for x in optim.apply_updates(params, updates).tolist()])
        [0.9, 1.9, 2.9]

    References:
        Reddi et al., On the Convergence of Adam and Beyond, ICLR 2018.
    """
    return chain(
        _transform.scale_by_amsgrad(b1=b1, b2=b2, eps=eps, eps_root=eps_root,
                                    mu_dtype=mu_dtype, bias_correction_mu=bias_correction_mu,
                                    bias_correction_nu=bias_correction_nu),
        _transform.scale_by_learning_rate(learning_rate))


def radam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8, eps_root: float = 0.0, threshold: float = 5.0, *,
          nesterov: bool = False) -> GradientTransformation:
    r"""Rectified Adam: plain momentum until the adaptive step's variance is tractable.

    ::

        m_t, v_t, m^_t, v^_t as in adam
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 t b2^t / (1 - b2^t)
        r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        u_t = -alpha_t r_t m^_t / (sqrt(v^_t + eps_root) + eps)   if rho_t >= threshold
        u_t = -alpha_t m^_t                                        otherwise

    Args:
        learning_rate: a float or a schedule.
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root.
        threshold: ``rho_t`` from which the adaptive step is used (the paper uses 4,
            optax 5).
        nesterov: use Nesterov momentum.

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_radam,
        scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.radam(learning_rate=0.1)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> updates, state = solver.update(nanofn.grad(f)(params), state, params)
        >>> print([round(x, 4) for x in optim.apply_updates(params, updates).tolist()])
        [0.8, 1.6, 2.4]

    References:
        Liu et al., On the Variance of the Adaptive Learning Rate and Beyond, ICLR 2020.
    """
    return chain(
        _transform.scale_by_radam(b1=b1, b2=b2, eps=eps, eps_root=eps_root,
                                  threshold=threshold, nesterov=nesterov),
        _transform.scale_by_learning_rate(learning_rate))


def rmsprop(learning_rate: ScalarOrSchedule, decay: float = 0.9, eps: float = 1e-8,
            initial_scale: float = 0.0, eps_in_sqrt: bool = True, centered: bool = False,
            momentum: Optional[float] = None, nesterov: bool = False,
            bias_correction: bool = False) -> GradientTransformation:
    r"""RMSProp: divide by a moving root mean square of the gradient.

    ::

        v_t = decay v_{t-1} + (1 - decay) g_t^2
        s_t = g_t / sqrt(v_t + eps)                       (plain)
        m_t = decay m_{t-1} + (1 - decay) g_t
        s_t = g_t / sqrt(v_t - m_t^2 + eps)               (centered=True)
        u_t = -alpha_t s_t, or with momentum beta:
        u_t = -(alpha_t s_t + beta u'_{t-1})              (trace of the scaled steps)

    With ``eps_in_sqrt=False`` the denominator is ``sqrt(.) + eps``; with
    ``bias_correction`` the averages are divided by ``1 - decay^t``.

    Args:
        learning_rate: a float or a schedule.
        decay: decay of the moving averages, in [0, 1).
        eps: stabilising term of the denominator.
        initial_scale: initial value of ``v`` (TensorFlow uses 1, PyTorch 0).
        eps_in_sqrt: put ``eps`` inside the square root.
        centered: divide by the standard deviation instead of the RMS.
        momentum: optional momentum coefficient applied after the learning rate.
        nesterov: use Nesterov momentum.
        bias_correction: bias-correct the moving averages.

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_rms or scale_by_stddev,
        scale_by_learning_rate, trace)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.rmsprop(learning_rate=0.01)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(3):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(float(f(params)) < 14.0)
        True

    References:
        Hinton, Lecture 6.5 of Neural Networks for Machine Learning, 2012.
        Graves, Generating Sequences With Recurrent Neural Networks, 2013 (centered).
    """
    _base.check_rate("rmsprop", "momentum", momentum, allow_one=True)
    if centered:
        stats = _transform.scale_by_stddev(decay=decay, eps=eps, initial_scale=initial_scale,
                                           eps_in_sqrt=eps_in_sqrt,
                                           bias_correction=bias_correction)
    else:
        stats = _transform.scale_by_rms(decay=decay, eps=eps, initial_scale=initial_scale,
                                        eps_in_sqrt=eps_in_sqrt, bias_correction=bias_correction)
    return chain(
        stats,
        _transform.scale_by_learning_rate(learning_rate),
        _transform.trace(decay=momentum, nesterov=nesterov) if momentum is not None
        else identity())


def adagrad(learning_rate: ScalarOrSchedule, initial_accumulator_value: float = 0.1,
            eps: float = 1e-7) -> GradientTransformation:
    r"""Adagrad: per-coordinate step sizes from the sum of all squared gradients.

    ::

        s_t = s_{t-1} + g_t^2        (s_0 = initial_accumulator_value)
        u_t = -alpha_t g_t / sqrt(s_t + eps)

    Args:
        learning_rate: a float or a schedule.
        initial_accumulator_value: the starting value of ``s``, >= 0.
        eps: added inside the square root.

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_rss, scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.adagrad(learning_rate=0.1)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(3):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(float(f(params)) < 14.0)
        True

    References:
        Duchi et al., Adaptive Subgradient Methods for Online Learning and Stochastic
        Optimization, JMLR 2011.
    """
    return chain(
        _transform.scale_by_rss(initial_accumulator_value=initial_accumulator_value, eps=eps),
        _transform.scale_by_learning_rate(learning_rate))


def adadelta(learning_rate: Optional[ScalarOrSchedule] = None, rho: float = 0.9,
             eps: float = 1e-6, weight_decay: float = 0.0, weight_decay_mask=None
             ) -> GradientTransformation:
    r"""Adadelta: step sizes from the ratio of past update and gradient magnitudes.

    ::

        g'_t = g_t + lambda w_{t-1}                          (weight decay)
        E[g^2]_t = rho E[g^2]_{t-1} + (1 - rho) g'_t^2
        d_t = sqrt(E[dx^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) g'_t
        E[dx^2]_t = rho E[dx^2]_{t-1} + (1 - rho) d_t^2
        u_t = -alpha_t d_t          (alpha_t = 1 when learning_rate is None)

    Args:
        learning_rate: a float, a schedule, or ``None`` (no scaling: ``u = d``, which
            moves the params by ``+d``; pass 1.0 for the paper's descent).
        rho: decay of both moving averages, in [0, 1).
        eps: added inside both square roots; it sets the size of the first steps.
        weight_decay: coefficient of L2 weight decay added to the gradient.
        weight_decay_mask: optional pytree of booleans saying which params are decayed.

    Returns:
        A :class:`GradientTransformation`: ``chain(add_decayed_weights,
        scale_by_adadelta, scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.adadelta(learning_rate=10.0)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(3):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(float(f(params)) < 14.0)
        True

    References:
        Zeiler, ADADELTA: An Adaptive Learning Rate Method, 2012.
    """
    return chain(
        _transform.add_decayed_weights(weight_decay, mask=weight_decay_mask),
        _transform.scale_by_adadelta(rho=rho, eps=eps),
        _transform.scale_by_learning_rate(learning_rate))


def adabelief(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
              eps: float = 1e-16, eps_root: float = 1e-16,
              weight_decay: Optional[ScalarOrSchedule] = None, weight_decay_mask=None, *,
              nesterov: bool = False) -> GradientTransformation:
    r"""AdaBelief: Adam with the variance of the gradient around its prediction.

    The step is large when the gradient agrees with its moving average (high
    "belief") and small when it does not::

        m_t = b1 m_{t-1} + (1 - b1) g_t
        s_t = b2 s_{t-1} + (1 - b2) (g_t - m_t)^2 + eps_root
        m^_t = m_t / (1 - b1^t),   s^_t = s_t / (1 - b2^t)
        u_t = -alpha_t (m^_t / (sqrt(s^_t) + eps) + lambda w_{t-1})

    Args:
        learning_rate: a float or a schedule.
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment of the prediction error, in [0, 1).
        eps: added to the denominator outside the square root.
        eps_root: added to ``s_t`` each step.
        weight_decay: optional decoupled weight decay ``lambda``.
        weight_decay_mask: optional pytree of booleans saying which params are decayed.
        nesterov: use Nesterov momentum.

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_belief, [add_decayed_weights],
        scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.adabelief(learning_rate=0.1)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(3):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(float(f(params)) < 14.0)
        True

    References:
        Zhuang et al., AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
        Gradients, NeurIPS 2020. (The paper's defaults are eps=1e-8, eps_root=0.)
    """
    txs = [_transform.scale_by_belief(b1=b1, b2=b2, eps=eps, eps_root=eps_root,
                                      nesterov=nesterov)]
    if weight_decay is not None:
        _check_nonneg_decay("adabelief", weight_decay)
        txs.append(_transform.add_decayed_weights(weight_decay, mask=weight_decay_mask))
    txs.append(_transform.scale_by_learning_rate(learning_rate))
    return chain(*txs)


def adafactor(learning_rate: Optional[ScalarOrSchedule] = None,
              min_dim_size_to_factor: int = 128, decay_rate: float = 0.8,
              decay_offset: int = 0, multiply_by_parameter_scale: bool = True,
              clipping_threshold: Optional[float] = 1.0, momentum: Optional[float] = None,
              dtype_momentum: Any = jnp.float32,
              weight_decay_rate: Optional[ScalarOrSchedule] = None, eps: float = 1e-30,
              factored: bool = True, weight_decay_mask=None) -> GradientTransformation:
    r"""Adafactor: Adam-like scaling with a factored (memory-light) second moment.

    For a matrix the second moment is kept as its row and column means, ``n + m``
    numbers instead of ``n m``::

        beta_t = 1 - t^(-decay_rate)
        R_t = beta_t R_{t-1} + (1 - beta_t) mean_cols(g_t^2 + eps)
        C_t = beta_t C_{t-1} + (1 - beta_t) mean_rows(g_t^2 + eps)
        V^_t = outer(R_t, C_t) / mean(R_t)           (full V for small leaves)
        d_t = g_t / sqrt(V^_t), clipped to RMS <= clipping_threshold
        u_t = -alpha_t max(RMS(w), 1e-3) d_t         (parameter-relative step)

    Optional momentum (an EMA of ``d_t``) and weight decay come after the scaling.

    Args:
        learning_rate: a float, a schedule or ``None`` (no extra scaling).
        min_dim_size_to_factor: factor only leaves whose two largest dimensions are at
            least this large.
        decay_rate: exponent of the step-dependent decay.
        decay_offset: subtracted from the step (for fine-tuning).
        multiply_by_parameter_scale: make the step relative to the parameters' RMS.
        clipping_threshold: clip each leaf's RMS to this (>= 1), or ``None``.
        momentum: optional EMA coefficient of the updates.
        dtype_momentum: dtype of the momentum buffer.
        weight_decay_rate: optional weight decay.
        eps: added to the squared gradients.
        factored: use the factored estimate at all.
        weight_decay_mask: optional pytree of booleans saying which params are decayed.

    Returns:
        A :class:`GradientTransformation`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.adafactor(learning_rate=0.1)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(3):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(float(f(params)) < 14.0)
        True

    References:
        Shazeer and Stern, Adafactor: Adaptive Learning Rates with Sublinear Memory Cost,
        ICML 2018.
    """
    _base.check_rate("adafactor", "momentum", momentum)
    _base.check_positive("adafactor", "clipping_threshold", clipping_threshold)
    txs = [_transform.scale_by_factored_rms(factored, decay_rate, decay_offset,
                                            min_dim_size_to_factor, eps)]
    if clipping_threshold is not None:
        txs.append(_transform.clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        txs.append(_transform.scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        txs.append(_transform.scale_by_param_block_rms())
    if momentum is not None:
        txs.append(_transform.ema(momentum, debias=False, accumulator_dtype=dtype_momentum))
    if weight_decay_rate is not None:
        txs.append(_transform.add_decayed_weights(weight_decay_rate, mask=weight_decay_mask))
    txs.append(_transform.scale(-1))  # descent
    return chain(*txs)


def lamb(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-6, eps_root: float = 0.0, weight_decay: float = 0.0, mask=None
         ) -> GradientTransformation:
    r"""LAMB: AdamW whose step is rescaled per layer by a trust ratio.

    ::

        r_t = m^_t / (sqrt(v^_t + eps_root) + eps) + lambda w_{t-1}    (AdamW direction)
        u_t = -alpha_t (||w_{t-1}|| / ||r_t||) r_t                     (per leaf)

    Args:
        learning_rate: a float or a schedule.
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root.
        weight_decay: decoupled weight decay ``lambda``.
        mask: optional pytree of booleans saying which params are decayed.

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_adam, add_decayed_weights,
        scale_by_trust_ratio, scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.lamb(learning_rate=0.1)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(3):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(float(f(params)) < 14.0)
        True

    References:
        You et al., Large Batch Optimization for Deep Learning: Training BERT in 76
        minutes, ICLR 2020.
    """
    _check_nonneg_decay("lamb", weight_decay)
    return chain(
        _transform.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root),
        _transform.add_decayed_weights(weight_decay=weight_decay, mask=mask),
        _transform.scale_by_trust_ratio(),
        _transform.scale_by_learning_rate(learning_rate))


def lars(learning_rate: ScalarOrSchedule, weight_decay: float = 0.0,
         weight_decay_mask=True, trust_coefficient: float = 0.001, eps: float = 0.0,
         trust_ratio_mask=True, momentum: float = 0.9, nesterov: bool = False
         ) -> GradientTransformation:
    r"""LARS: SGD with momentum whose step is rescaled per layer by a trust ratio.

    ::

        r_t = g_t + lambda w_{t-1}
        s_t = eta ||w_{t-1}|| / (||r_t|| + eps) r_t      (per leaf; eta = trust_coefficient)
        m_t = -alpha_t s_t + beta m_{t-1},   u_t = m_t

    Args:
        learning_rate: a float or a schedule.
        weight_decay: L2 weight decay ``lambda`` added to the gradient.
        weight_decay_mask: pytree of booleans (or True for all) saying which params are
            decayed.
        trust_coefficient: ``eta``, the trust-ratio multiplier.
        eps: added to the update norm.
        trust_ratio_mask: pytree of booleans (or True) saying which params get the trust
            ratio; biases and norm scales are often excluded.
        momentum: the momentum coefficient ``beta``.
        nesterov: use Nesterov momentum.

    Returns:
        A :class:`GradientTransformation`: ``chain(add_decayed_weights,
        masked(scale_by_trust_ratio), scale_by_learning_rate, trace)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.lars(learning_rate=1.0)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(3):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(float(f(params)) < 14.0)
        True

    References:
        You et al., Large Batch Training of Convolutional Networks, 2017.
    """
    _check_nonneg_decay("lars", weight_decay)
    _base.check_rate("lars", "momentum", momentum, allow_one=True)
    return chain(
        _transform.add_decayed_weights(weight_decay, mask=weight_decay_mask),
        _combine.masked(_transform.scale_by_trust_ratio(trust_coefficient=trust_coefficient,
                                                        eps=eps), trust_ratio_mask),
        _transform.scale_by_learning_rate(learning_rate),
        _transform.trace(decay=momentum, nesterov=nesterov))


def lion(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.99,
         mu_dtype: Optional[Any] = None, weight_decay: ScalarOrSchedule = 1e-3, mask=None
         ) -> GradientTransformation:
    r"""Lion: the sign of an interpolated momentum, found by program search.

    ::

        c_t = b1 m_{t-1} + (1 - b1) g_t
        u_t = -alpha_t (sign(c_t) + lambda w_{t-1})
        m_t = b2 m_{t-1} + (1 - b2) g_t

    Every coordinate moves by exactly ``alpha_t`` (plus decay), so Lion wants a
    learning rate 3-10 times smaller than Adam's.

    Args:
        learning_rate: a float or a schedule.
        b1: weight of the momentum in the direction, in [0, 1].
        b2: decay of the momentum, in [0, 1).
        mu_dtype: dtype of the momentum; ``None`` uses the params'.
        weight_decay: decoupled weight decay ``lambda``.
        mask: optional pytree of booleans saying which params are decayed.

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_lion, add_decayed_weights,
        scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.lion(learning_rate=0.1, weight_decay=0.0)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> updates, state = solver.update(nanofn.grad(f)(params), state, params)
        >>> print([round(x, 4) for x in optim.apply_updates(params, updates).tolist()])
        [0.9, 1.9, 2.9]

    References:
        Chen et al., Symbolic Discovery of Optimization Algorithms, NeurIPS 2023.
    """
    _check_nonneg_decay("lion", weight_decay)
    return chain(
        _transform.scale_by_lion(b1=b1, b2=b2, mu_dtype=mu_dtype),
        _transform.add_decayed_weights(weight_decay, mask),
        _transform.scale_by_learning_rate(learning_rate))


def novograd(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.25,
             eps: float = 1e-6, eps_root: float = 0.0, weight_decay: float = 0.0
             ) -> GradientTransformation:
    r"""NovoGrad: layer-wise second moments and decoupled weight decay.

    For each leaf (layer) ``l``::

        v_t = ||g_t||^2                                  (t = 1)
        v_t = b2 v_{t-1} + (1 - b2) ||g_t||^2            (t > 1)
        m_t = g_t / (sqrt(v_t + eps_root) + eps) + lambda w_{t-1} + b1 m_{t-1}
        u_t = -alpha_t m_t                               (m_0 = 0)

    Args:
        learning_rate: a float or a schedule.
        b1: decay of the first moment, in [0, 1).
        b2: decay of the per-layer second moment, in [0, 1).
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root.
        weight_decay: decoupled weight decay ``lambda``.

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_novograd,
        scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.novograd(learning_rate=0.1)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(3):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(float(f(params)) < 14.0)
        True

    References:
        Ginsburg et al., Stochastic Gradient Methods with Layer-wise Adaptive Moments for
        Training of Deep Networks, 2019.
    """
    return chain(
        _transform.scale_by_novograd(b1=b1, b2=b2, eps=eps, eps_root=eps_root,
                                     weight_decay=weight_decay),
        _transform.scale_by_learning_rate(learning_rate))


def noisy_sgd(learning_rate: ScalarOrSchedule, eta: float = 0.01, gamma: float = 0.55,
              key=None, *, seed: Optional[int] = None) -> GradientTransformation:
    r"""SGD with annealed Gaussian gradient noise.

    ::

        sigma_t^2 = eta / t^gamma
        u_t = -alpha_t (g_t + N(0, sigma_t^2))

    Args:
        learning_rate: a float or a schedule.
        eta: initial variance of the noise, >= 0.
        gamma: decay exponent of the variance, >= 0.
        key: an int seed or a ``nanofn.random`` key; ``None`` means seed 0.
        seed: the older optax spelling of an int ``key``.

    Returns:
        A :class:`GradientTransformation`: ``chain(add_noise, scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.noisy_sgd(learning_rate=0.1, eta=1e-4, key=0)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(3):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(float(f(params)) < 14.0)
        True

    References:
        Neelakantan et al., Adding Gradient Noise Improves Learning for Very Deep
        Networks, 2015.
    """
    return chain(_transform.add_noise(eta, gamma, key, seed=seed),
                 _transform.scale_by_learning_rate(learning_rate))


def yogi(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-3) -> GradientTransformation:
    r"""Yogi: Adam with an additive, sign-controlled second-moment update.

    ::

        m_t = b1 m_{t-1} + (1 - b1) g_t
        v_t = v_{t-1} - (1 - b2) sign(v_{t-1} - g_t^2) g_t^2
        u_t = -alpha_t (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps)

    ``v`` changes by at most ``(1 - b2) g^2`` per step, so the effective learning rate
    cannot jump up as fast as Adam's when gradients become sparse.

    Args:
        learning_rate: a float or a schedule.
        b1: decay of the first moment, in [0, 1).
        b2: rate of the second moment, in [0, 1).
        eps: added to the denominator (Yogi's default is large, 1e-3).

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_yogi, scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.yogi(learning_rate=0.1)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(3):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(float(f(params)) < 14.0)
        True

    References:
        Zaheer et al., Adaptive Methods for Nonconvex Optimization, NeurIPS 2018.
    """
    return chain(_transform.scale_by_yogi(b1=b1, b2=b2, eps=eps),
                 _transform.scale_by_learning_rate(learning_rate))


def fromage(learning_rate: ScalarOrSchedule, min_norm: float = 1e-6) -> GradientTransformation:
    r"""Fromage: per-layer relative steps that respect the network's compositional geometry.

    For each leaf::

        d_t = (||w_{t-1}|| / ||g_t||) g_t
        w_t = (w_{t-1} - alpha_t d_t) / sqrt(1 + alpha_t^2)

    which, written as an additive update, is
    ``u_t = -alpha_t / sqrt(1 + alpha_t^2) d_t + (1 / sqrt(1 + alpha_t^2) - 1) w_{t-1}``.

    Args:
        learning_rate: a float or a schedule.
        min_norm: lower bound of the norms in the trust ratio.

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_trust_ratio,
        scale_by_learning_rate, add_decayed_weights)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.fromage(learning_rate=0.1)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(3):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(float(f(params)) < 14.0)
        True

    References:
        Bernstein et al., On the distance between two neural networks and the stability
        of learning, NeurIPS 2020.
    """
    _base.check_nonneg("fromage", "learning_rate", learning_rate)
    if callable(learning_rate):
        def shrink(count):
            return 1 / (1 + learning_rate(count) ** 2) ** 0.5

        step = lambda count: shrink(count) * learning_rate(count)  # noqa: E731
        decay = lambda count: shrink(count) - 1  # noqa: E731
    else:
        shrink = 1 / (1 + learning_rate ** 2) ** 0.5
        step, decay = learning_rate * shrink, shrink - 1
    return chain(_transform.scale_by_trust_ratio(min_norm),
                 _transform.scale_by_learning_rate(step),
                 _transform.add_decayed_weights(decay))
