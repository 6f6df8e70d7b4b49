"""SAM, sharpness-aware minimisation (optax.contrib.sam), as a pair of optimizers.

SAM alternates adversarial steps, which climb towards the worst point near the current
weights (usually one step of normalised SGD of length ``rho``), with an outer step that
applies the gradient found there to the weights the climb started from::

    w_adv = w + rho * g(w) / |g(w)|           (adversarial step, inner optimizer)
    w     = w - lr * g(w_adv)                 (outer step, outer optimizer)

:func:`sam` takes both optimizers; ``normalize()`` (in ``nanofn.optim.contrib``) gives
the normalised gradient of the paper. By default each call to ``update`` does one of the
two kinds of step, so a training loop runs ``sync_period`` calls per outer step; with
``opaque_mode=True`` a single call runs them all, asking ``grad_fn`` for the gradients.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, NamedTuple, Optional

import nanofn.numpy as jnp
from nanofn import tree_util
from nanofn.optim import _base
from nanofn.optim._base import NO_PARAMS_MSG, GradientTransformation, OptState, Params, Updates
from nanofn.optim._combine import _select
from nanofn.optim._transform import _zeros_count

__all__ = ["SAMState", "sam"]


class SAMState(NamedTuple):
    """State of :func:`sam`.

    Attributes:
        steps_since_sync: adversarial steps taken since the last outer step (int32).
        opt_state: the outer optimizer's state.
        adv_state: the adversarial (inner) optimizer's state.
        cache: the weights the current adversarial climb started from (``None`` with
            ``opaque_mode=True``, which needs no cache).
    """

    steps_since_sync: Any
    opt_state: OptState
    adv_state: OptState
    cache: Optional[Params]


def _negate(tree):
    return tree_util.tree_map(lambda x: -x, tree)


def sam(optimizer: GradientTransformation, adv_optimizer: GradientTransformation,
        sync_period: int = 2, reset_state: bool = True, opaque_mode: bool = False,
        batch_axis_name: Optional[str] = None) -> GradientTransformation:
    """Sharpness-aware minimisation: adversarial inner steps, then one outer step.

    In the default (transparent) mode the calls to ``update`` cycle through
    ``sync_period`` steps. The first ``sync_period - 1`` are adversarial: the update is
    the *negated* output of ``adv_optimizer`` (an ascent step, so
    ``chain(normalize(), sgd(rho))`` moves the weights ``rho`` uphill). The last is the
    outer step: ``optimizer`` turns the gradient at the adversarial weights into an
    update, and the returned update also takes the weights back to where the climb
    started, so after it the weights are ``start + outer_update``. The outer optimizer's
    state only advances on outer steps; the adversarial state is reset to its ``init``
    after each outer step (``reset_state=True``) or kept as it was before that step.

    With ``opaque_mode=True`` each call does a whole cycle: it runs the
    ``sync_period - 1`` adversarial steps internally, calling
    ``grad_fn(adversarial_params, i)`` (a keyword argument of ``update``) for the
    gradient after the ``i``-th of them, and returns only the outer update. Use it when
    a call to ``update`` has side effects besides the weights (e.g. batch-norm
    statistics) that adversarial steps must not touch.

    Note:
        As in optax 0.2.8, the transparent mode with ``sync_period=1`` applies each
        outer update to the weights of the step before (the cache is refreshed before
        it is read), so it is not plain ``optimizer``; use ``sync_period >= 2``, or
        ``opaque_mode=True``.

    Args:
        optimizer: the outer optimizer.
        adv_optimizer: the adversarial (inner) optimizer, whose output is negated.
        sync_period: steps per cycle (``sync_period - 1`` adversarial steps and one outer
            step), an int >= 1; 2 is the SAM of the paper.
        reset_state: re-initialise the adversarial optimizer's state after each outer
            step.
        opaque_mode: run whole cycles inside one ``update`` call, with ``grad_fn``.
        batch_axis_name: opaque mode only (ignored otherwise): average each adversarial
            gradient over this named axis with ``lax.pmean`` (under ``pmap``/``vmap``
            with ``axis_name``).

    Returns:
        A :class:`GradientTransformation` with state :class:`SAMState`; its update needs
        ``params`` (and ``grad_fn=`` in opaque mode). Other keyword arguments of
        ``update`` are passed on to both optimizers.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> from nanofn.optim.contrib import normalize, sam
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> opt = sam(optim.sgd(0.1), optim.chain(normalize(), optim.sgd(0.05)))
        >>> params = jnp.array([1.0, 2.0])
        >>> state = opt.init(params)
        >>> for _ in range(4):  # two adversarial steps and two outer steps
        ...     updates, state = opt.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(float(f(params)) < 5.0, int(state.steps_since_sync))
        True 0

    References:
        Foret et al., Sharpness-Aware Minimization for Efficiently Improving
        Generalization, ICLR 2021.
    """
    if isinstance(sync_period, bool) or not isinstance(sync_period, numbers.Integral):
        raise TypeError(f"sam: argument `sync_period` must be an int, got {sync_period!r}.")
    if sync_period < 1:
        raise ValueError(f"sam: argument `sync_period` must be >= 1, got {sync_period}.")
    optimizer = _base.with_extra_args_support(optimizer)
    adv_optimizer = _base.with_extra_args_support(adv_optimizer)

    def init_fn(params):
        return SAMState(steps_since_sync=_zeros_count(), opt_state=optimizer.init(params),
                        adv_state=adv_optimizer.init(params),
                        cache=None if opaque_mode else params)

    def transparent_update_fn(updates: Updates, state: SAMState, params=None, *,
                              grad_fn: Optional[Callable] = None, **extra_args):
        del grad_fn  # only the opaque mode asks for gradients
        if params is None:
            raise ValueError("sam: " + NO_PARAMS_MSG)
        first_step = state.steps_since_sync == 0
        last_step = state.steps_since_sync == sync_period - 1

        adv_updates, adv_state = adv_optimizer.update(updates, state.adv_state, params,
                                                      **extra_args)
        adv_updates = _negate(adv_updates)

        # The outer optimizer sees the weights the climb started from; its update is
        # shifted by (cache - params) so that applying it to the adversarial weights
        # lands at cache + update.
        opt_updates, opt_state = optimizer.update(updates, state.opt_state, state.cache,
                                                  **extra_args)
        opt_updates = _base.tree_map_checked(
            lambda c, p, u: c - p + u, state.cache, params, opt_updates,
            names=("state.cache", "params", "updates"), where="sam")

        cache = _select(first_step, params, state.cache)
        new_updates = _select(last_step, opt_updates, adv_updates)
        if reset_state:
            adv_state = _select(last_step, adv_optimizer.init(params), adv_state)
        else:
            adv_state = _select(last_step, state.adv_state, adv_state)
        opt_state = _select(last_step, opt_state, state.opt_state)
        steps = (state.steps_since_sync + 1) % sync_period
        return new_updates, SAMState(steps_since_sync=jnp.asarray(steps, dtype=jnp.int32),
                                     opt_state=opt_state, adv_state=adv_state, cache=cache)

    def opaque_update_fn(updates: Updates, state: SAMState, params=None, *,
                         grad_fn: Optional[Callable] = None, **extra_args):
        if grad_fn is None:
            raise ValueError("sam: opaque_mode=True needs a gradient function: call "
                             "`update(updates, state, params, grad_fn=grad_fn)` with "
                             "`grad_fn(params, i) -> gradients`.")
        if params is None:
            raise ValueError("sam: " + NO_PARAMS_MSG)
        adv_params, adv_updates, adv_state = params, updates, state.adv_state
        for i in range(sync_period - 1):
            adv_updates, adv_state = adv_optimizer.update(adv_updates, adv_state, adv_params,
                                                          **extra_args)
            adv_params = _base.apply_updates(adv_params, _negate(adv_updates))
            adv_updates = grad_fn(adv_params, i)
            if batch_axis_name is not None:
                from nanofn import lax

                adv_updates = lax.pmean(adv_updates, axis_name=batch_axis_name)
        if reset_state:
            adv_state = adv_optimizer.init(params)
        new_updates, opt_state = optimizer.update(adv_updates, state.opt_state, params,
                                                  **extra_args)
        return new_updates, SAMState(steps_since_sync=_zeros_count(), opt_state=opt_state,
                                     adv_state=adv_state, cache=None)

    update_fn = opaque_update_fn if opaque_mode else transparent_update_fn
    return GradientTransformation(init_fn, update_fn)
