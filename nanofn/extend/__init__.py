"""Interfaces for extending nanofn, under JAX's names (`jax.extend`): `nanofn.extend.core`
holds the jaxpr IR and the `Primitive` class for defining your own primitives.

Example:
    >>> from nanofn.extend import core
    >>> core.Primitive("my_op").name
    'my_op'
"""

from nanofn.extend import core as core

__all__ = ["core"]
