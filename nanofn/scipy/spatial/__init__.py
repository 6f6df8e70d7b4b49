"""nanofn.scipy.spatial: spatial data structures (jax.scipy.spatial's names).

Example:
    >>> from nanofn.scipy.spatial import transform
    >>> transform.Rotation.identity().as_quat()
    Array([0., 0., 0., 1.], dtype=float32)
"""

from nanofn.scipy.spatial import transform as transform

__all__ = ["transform"]
