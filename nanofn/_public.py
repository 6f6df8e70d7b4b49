"""`__all__` for the public modules whose names are gathered from several files.

`help(module)` lists only the names in `__all__` (or, without it, only functions defined
in the module itself: none, for a package that re-exports), and `from module import *`
follows it too. Computing it from the finished namespace keeps it in step with the
imports above it.
"""

from types import ModuleType


def public_names(namespace: dict) -> list[str]:
    """The public, non-module names of a module's namespace, sorted."""
    return sorted(n for n, v in namespace.items()
                  if not n.startswith("_") and not isinstance(v, ModuleType))
