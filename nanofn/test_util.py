"""`jax.test_util`: `check_grads`, `check_jvp` and `check_vjp` under JAX's module path, so
`from jax.test_util import check_grads` ports as `from nanofn.test_util import
check_grads`. The same functions as `nanofn.testing`, which also has hypothesis
strategies and `assert_trees_allclose`.

Example:
    >>> import numpy as np, nanofn.numpy as fnp
    >>> from nanofn.test_util import check_grads
    >>> check_grads(fnp.tanh, (np.array([0.1, 0.7]),), order=2)
"""

from nanofn.testing._check_grads import check_grads as check_grads
from nanofn.testing._check_grads import check_jvp as check_jvp
from nanofn.testing._check_grads import check_vjp as check_vjp

__all__ = ["check_grads", "check_jvp", "check_vjp"]
