"""What nanofn does once, right after it imports numba, to keep numba's start-up lean.

Two things, each a no-op when numba's internals are not what it expects:
`defer_scipy_linalg()` and `lean_cache_loads()` (below).

numba's first compilation (or first load from its disk cache) imports its registries of
implementations. One of them, `numba.np.arraymath`, asks at import time whether BLAS is
available by importing `scipy.linalg.cython_blas`, which imports all of `scipy.linalg`:
about 0.2 s and 15-30 MB of resident memory (scipy's own BLAS and LAPACK, and about 75
modules), which no nanofn kernel uses (they are plain loops; matrix products run in
numpy).

`defer_scipy_linalg()` lets that module answer the question without the import: BLAS is
taken to be available when scipy is installed (what the import would have found). numba's
linear algebra itself still imports `scipy.linalg` where it needs it (its own functions
call the same check when they are compiled), so numba code that uses `np.dot` or
`np.linalg` in this process works as usual and pays for scipy then.
"""

from __future__ import annotations

import importlib.util
import sys


def defer_scipy_linalg() -> bool:
    """Import `numba.np.arraymath` without it importing `scipy.linalg`.

    Does nothing (returns False) when that module or `scipy.linalg` is imported already,
    when scipy is not installed, or when numba's internals differ from what this expects;
    returns True when it imported the module lazily.

    Example:
        >>> from nanofn._numba_setup import defer_scipy_linalg
        >>> defer_scipy_linalg() in (True, False)
        True
    """
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return False
    try:
        if importlib.util.find_spec("scipy") is None:
            return False
        import numba.np.linalg as linalg
    except Exception:  # noqa: BLE001 - numba missing or changed: leave it alone
        return False
    original = getattr(linalg, "ensure_blas", None)
    if original is None:
        return False

    def blas_available():  # what importing scipy.linalg.cython_blas would have answered
        return None

    linalg.ensure_blas = blas_available
    try:
        import numba.np.arraymath as arraymath
    except Exception:  # noqa: BLE001 - numba will import it again (and raise) itself
        return False
    finally:
        linalg.ensure_blas = original
    if getattr(arraymath, "ensure_blas", None) is blas_available:
        arraymath.ensure_blas = original
    return True


def lean_cache_loads() -> bool:
    """Load kernels from numba's disk cache without installing numba's registries.

    Before loading a cached function, numba "refreshes" its target context: it imports
    and installs every registry of implementations (arrays, ufuncs, typed containers,
    random, jitclass, ...: about 60 modules) and starts its runtime. Loading compiled
    code needs only the runtime (the symbols the code links against); the registries are
    for compiling. A process whose kernels are all in the disk cache so never imports
    them: about 10 MB of resident memory and 0.15 s of start-up less for W1. A compile
    still refreshes the context (numba's compiler does so before it starts), so a kernel
    that is not in the cache compiles as usual.

    Returns True when it replaced numba's `Cache.load_overload`, False when numba is
    missing, its caching differs from what this expects, or this ran already.

    Example:
        >>> from nanofn._numba_setup import lean_cache_loads
        >>> lean_cache_loads() in (True, False)
        True
    """
    try:
        from numba.core import caching
        from numba.core.runtime import rtsys
    except Exception:  # noqa: BLE001 - numba missing or changed: leave it alone
        return False
    cache = getattr(caching, "Cache", None)
    original = getattr(cache, "load_overload", None)
    if (original is None or getattr(original, "_nanofn_lean", False)
            or not hasattr(cache, "_load_overload")
            or not hasattr(cache, "_guard_against_spurious_io_errors")):
        return False

    def load_overload(self, sig, target_context):
        rtsys.initialize(target_context)  # the runtime symbols that loaded code links to
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)

    load_overload._nanofn_lean = True
    cache.load_overload = load_overload
    return True
