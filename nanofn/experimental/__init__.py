"""nanofn.experimental: features whose interface may still change (jax.experimental).

Example:
    >>> from nanofn.experimental import ode
    >>> callable(ode.odeint)
    True
"""

from nanofn.experimental import ode as ode

__all__ = ["ode"]
