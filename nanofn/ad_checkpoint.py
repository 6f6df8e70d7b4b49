"""`jax.ad_checkpoint`: `checkpoint` (`remat`), its saving policies and `checkpoint_name`.

Example:
    >>> import nanofn, nanofn.numpy as fnp
    >>> from nanofn.ad_checkpoint import checkpoint, checkpoint_name
    >>> f = checkpoint(lambda x: checkpoint_name(fnp.sin(x), "h") * 2.0)
    >>> nanofn.grad(f)(0.0)
    Array(2., dtype=float32)
"""

from nanofn import checkpoint_policies
from nanofn._custom import checkpoint, remat
from nanofn.checkpoint_policies import Offloadable, Recompute, Saveable

__all__ = ["checkpoint", "remat", "checkpoint_name", "checkpoint_policies", "Offloadable",
           "Recompute", "Saveable"]


def checkpoint_name(x, name: str):
    """Name `x` for the saving policies that select values by name
    (`checkpoint_policies.save_only_these_names`, ...). nanofn's `checkpoint` saves only
    its inputs whatever the policy, so the value is returned unchanged.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.ad_checkpoint import checkpoint_name
        >>> checkpoint_name(fnp.ones(2), "hidden")
        Array([1., 1.], dtype=float32)
    """
    if not isinstance(name, str):
        raise TypeError(f"checkpoint_name: name must be a str, got {type(name).__name__}")
    return x
