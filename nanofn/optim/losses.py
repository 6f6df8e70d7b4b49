"""Loss functions (optax.losses): the same functions as `nanofn.nn.losses`."""

from nanofn.nn.losses import *  # noqa: F401,F403
