"""Second-order quantities of a loss, with ``optax.second_order``'s names.

Each function takes a loss written as ``loss(params, inputs, targets)`` (``params`` any
pytree of arrays) and evaluates a curvature quantity at ``(params, inputs, targets)``:

- :func:`hvp`: a Hessian-vector product, by forward-mode differentiation of the gradient
  (the cost of a few gradients, without forming the Hessian);
- :func:`hessian_diag`: the diagonal of the Hessian, one ``hvp`` per parameter entry
  (batched with ``nanofn.vmap``), so meant for small models;
- :func:`fisher_diag`: the diagonal of the observed Fisher information, the squared
  gradient of a negative log-likelihood.

Vectors and diagonals refer to the parameters flattened in ``nanofn.flatten_util.
ravel_pytree`` order. optax 0.2.7 deprecated this module (it is removed in optax 0.2.9),
and so, as optax does, each call emits a ``DeprecationWarning``; nanofn keeps the
functions so that programs written for optax 0.2.8 run unchanged. New code can use
``nanofn.jvp``, ``nanofn.grad`` and ``nanofn.hessian`` directly.

Example:
    >>> import warnings
    >>> import nanofn.numpy as jnp
    >>> from nanofn.optim import second_order
    >>> loss = lambda p, x, y: jnp.sum((p["w"] * x - y) ** 2)
    >>> params = {"w": jnp.array([1.0, 2.0])}
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     d = second_order.hessian_diag(loss, params, jnp.array([1.0, 3.0]), jnp.zeros(2))
    >>> print(d.tolist())
    [2.0, 18.0]
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np

import nanofn
import nanofn.numpy as jnp
from nanofn.flatten_util import ravel_pytree

__all__ = ["fisher_diag", "hessian_diag", "hvp"]

LossFn = Callable[[Any, Any, Any], Any]


def _deprecated(name: str) -> None:
    warnings.warn(
        f"optax.second_order.{name} is deprecated (since optax 0.2.7; optax 0.2.9 removes "
        f"it). nanofn keeps it for ported programs; nanofn.jvp, nanofn.grad and "
        f"nanofn.hessian give the same quantities.", DeprecationWarning, stacklevel=3)


def _check_callable(fn: str, name: str, value) -> None:
    if not callable(value):
        raise TypeError(f"{fn}: argument `{name}` must be a function "
                        f"(params, inputs, targets) -> scalar, got {value!r}.")


def _flat(tree):
    return ravel_pytree(tree)[0]


def _hvp(loss, v, params, inputs, targets):
    flat, unravel = ravel_pytree(params)
    shape = tuple(np.shape(v))
    if shape != tuple(flat.shape):
        raise ValueError(f"hvp: argument `v` must be a vector with one entry per parameter, "
                         f"shape {tuple(flat.shape)}; got shape {shape}.")

    def grad_at(p):
        return nanofn.grad(lambda q: loss(q, inputs, targets))(p)

    return nanofn.jvp(grad_at, (params,), (unravel(v),))[1]


def hvp(loss: LossFn, v: Any, params: Any, inputs: Any, targets: Any) -> Any:
    """The product of the Hessian of ``loss`` (in ``params``) with the vector ``v``.

    Computed as the forward-mode derivative of the gradient along ``v``, so the Hessian
    is never formed.

    Args:
        loss: the loss, ``loss(params, inputs, targets) -> scalar``.
        v: a vector with one entry per parameter entry, in ``ravel_pytree(params)`` order.
        params: the parameters, a pytree of arrays, where the Hessian is taken.
        inputs: the inputs passed to ``loss``.
        targets: the targets passed to ``loss``.

    Returns:
        ``H v``, as a pytree with the structure of ``params`` (as optax returns it).

    Example:
        >>> import warnings
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.second_order import hvp
        >>> loss = lambda p, x, y: jnp.sum(p ** 3 * x) - y
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", DeprecationWarning)
        ...     out = hvp(loss, jnp.array([1.0, 0.0]), jnp.array([1.0, 2.0]), 2.0, 0.0)
        >>> print(out.tolist())
        [12.0, 0.0]
    """
    _deprecated("hvp")
    _check_callable("hvp", "loss", loss)
    return _hvp(loss, v, params, inputs, targets)


def hessian_diag(loss: LossFn, params: Any, inputs: Any, targets: Any) -> Any:
    """The diagonal of the Hessian of ``loss`` in ``params``, as one flat vector.

    Entry ``k`` is ``e_k . (H e_k)``, from one Hessian-vector product per parameter entry
    (batched over ``k`` with ``nanofn.vmap``): the cost grows with the square of the
    number of parameters, as in optax.

    Args:
        loss: the loss, ``loss(params, inputs, targets) -> scalar``.
        params: the parameters, a pytree of arrays.
        inputs: the inputs passed to ``loss``.
        targets: the targets passed to ``loss``.

    Returns:
        A vector with one entry per parameter entry, in ``ravel_pytree(params)`` order.

    Example:
        >>> import warnings
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.second_order import hessian_diag
        >>> loss = lambda p, x, y: jnp.sum(p ** 3 * x) - y
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", DeprecationWarning)
        ...     d = hessian_diag(loss, jnp.array([1.0, 2.0]), 2.0, 0.0)
        >>> print(d.tolist())
        [12.0, 24.0]
    """
    _deprecated("hessian_diag")
    _check_callable("hessian_diag", "loss", loss)
    n = int(_flat(params).size)
    basis = jnp.eye(n)

    def entry(e):
        return jnp.vdot(e, _flat(_hvp(loss, e, params, inputs, targets)))

    return nanofn.vmap(entry)(basis)


def fisher_diag(negative_log_likelihood: LossFn, params: Any, inputs: Any,
                targets: Any) -> Any:
    """The diagonal of the observed Fisher information: the squared gradient of
    ``negative_log_likelihood`` in ``params``, as one flat vector.

    Args:
        negative_log_likelihood: ``nll(params, inputs, targets) -> scalar``.
        params: the parameters, a pytree of arrays.
        inputs: the inputs passed to ``negative_log_likelihood``.
        targets: the targets passed to ``negative_log_likelihood``.

    Returns:
        A vector with one entry per parameter entry, in ``ravel_pytree(params)`` order.

    Example:
        >>> import warnings
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.second_order import fisher_diag
        >>> nll = lambda p, x, y: jnp.sum(p * x) - y
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", DeprecationWarning)
        ...     d = fisher_diag(nll, jnp.array([1.0, 2.0]), jnp.array([3.0, -1.0]), 0.0)
        >>> print(d.tolist())
        [9.0, 1.0]
    """
    _deprecated("fisher_diag")
    _check_callable("fisher_diag", "negative_log_likelihood", negative_log_likelihood)
    grads = nanofn.grad(negative_log_likelihood)(params, inputs, targets)
    return jnp.square(_flat(grads))
