"""`jax.custom_derivatives`: the custom-derivative decorators under their module path, so
`from jax.custom_derivatives import custom_vjp` ports as
`from nanofn.custom_derivatives import custom_vjp`. The same objects as at the top of
`nanofn` (see docs/design.md, "Custom derivatives").

Example:
    >>> import nanofn, nanofn.numpy as fnp
    >>> from nanofn.custom_derivatives import custom_jvp
    >>> @custom_jvp
    ... def f(x):
    ...     return fnp.sin(x)
    >>> f.defjvp(lambda primals, tangents: (f(*primals), 2.0 * tangents[0]))
    <function <lambda> at ...>
    >>> float(nanofn.grad(f)(0.5))
    2.0
"""

from nanofn._closure import closure_convert as closure_convert
from nanofn._custom import (
    CustomVJPPrimal as CustomVJPPrimal, SymbolicZero as SymbolicZero, custom_jvp as custom_jvp,
    custom_vjp as custom_vjp, custom_vjp_primal_tree_values as custom_vjp_primal_tree_values,
    zero_from_primal as zero_from_primal,
)
from nanofn._custom_gradient import custom_gradient as custom_gradient

__all__ = ["CustomVJPPrimal", "SymbolicZero", "closure_convert", "custom_gradient",
           "custom_jvp", "custom_vjp", "custom_vjp_primal_tree_values", "zero_from_primal"]
