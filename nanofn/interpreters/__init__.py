"""Rules for primitives you define, under JAX's names (`jax.interpreters`): `ad`
(differentiation), `batching` (`vmap`) and `mlir` (lowering, accepted and ignored).

Example:
    >>> from nanofn.interpreters import ad, batching
    >>> batching.not_mapped is None
    True
"""

from nanofn.interpreters import ad as ad, batching as batching, mlir as mlir

__all__ = ["ad", "batching", "mlir"]
