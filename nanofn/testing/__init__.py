"""Testing utilities: gradient checks and hypothesis strategies (mirrors ``jax.test_util``).

``check_grads`` compares nanofn's forward- and reverse-mode derivatives with finite
differences (``check_jvp`` and ``check_vjp`` check a given JVP or VJP function); ``assert_trees_allclose`` compares pytrees leaf by leaf. The hypothesis
strategies (``shapes``, ``broadcastable_shapes``, ``arrays``, ``floats_in``,
``pytrees_of_arrays``) generate inputs for property tests; see docs/property-testing.md.
"""

from nanofn.testing._check_grads import assert_trees_allclose as assert_trees_allclose
from nanofn.testing._check_grads import check_grads as check_grads
from nanofn.testing._check_grads import check_jvp as check_jvp
from nanofn.testing._check_grads import check_vjp as check_vjp

# The strategies need hypothesis, which is a test dependency (pip install "nanofn[test]")
# rather than a runtime one. They are imported on first use, so `check_grads` works
# without hypothesis and `import nanofn.testing` stays fast.
_STRATEGIES = ("arrays", "broadcastable_shapes", "floats_in", "pytrees_of_arrays", "shapes")

__all__ = [
    "arrays",
    "assert_trees_allclose",
    "broadcastable_shapes",
    "check_grads",
    "check_jvp",
    "check_vjp",
    "floats_in",
    "pytrees_of_arrays",
    "shapes",
]


def __getattr__(name):
    if name in _STRATEGIES:
        try:
            from nanofn.testing import _strategies
        except ImportError as e:
            raise ImportError(f"nanofn.testing.{name} needs hypothesis; install it with "
                              "`pip install hypothesis` (or `pip install nanofn[test]`).") from e
        return getattr(_strategies, name)
    raise AttributeError(f"module 'nanofn.testing' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
