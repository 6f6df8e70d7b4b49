"""What nanofn does once, right after it imports numba, to keep numba's start-up lean.

Three things, each falling back to numba's own way when its internals are not what it
expects: `defer_scipy_linalg()` and `start_runtime()` once, and `lean_cache_loads(cache)`
for each of nanofn's kernels (below). And two for speed: `vectorise_many_arrays()` (LLVM
vectorises loops over more arrays than it would by default) and `wide_vectors()` (on a
CPU with AVX-512, loops are vectorised 512 bits wide).

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

import hashlib
import importlib.util
import os
import sys
import threading


# LLVM's loop vectoriser gives up on a loop that needs more than 128 run-time checks that
# its arrays do not overlap (its `-vectorize-memory-check-threshold`), and then runs it
# one element at a time. A fused kernel with 9 outputs and 13 inputs needs about 150 (each
# output against every other array): a GRU's gates kernel took 374 us a step scalar, 57 us
# vectorised (docs/performance.md). The checks run once per loop, before it.
MEMORY_CHECK_THRESHOLD = 2048


def vectorise_many_arrays() -> bool:
    """Raise LLVM's limit on run-time overlap checks (see above). `nanofn._kernels` calls
    it once, when it imports numba; setting the option again is harmless.

    It is an LLVM option of the process, so it applies to every loop numba compiles in
    it: a loop over many arrays is vectorised where LLVM would have left it scalar.
    Returns whether the option is set.

    Example:
        >>> from nanofn._numba_setup import vectorise_many_arrays
        >>> vectorise_many_arrays()
        True
    """
    from llvmlite import binding as ll
    ll.set_option("nanofn", f"-vectorize-memory-check-threshold={MEMORY_CHECK_THRESHOLD}")
    return True


# LLVM's tuning for Intel CPUs with AVX-512 prefers 256-bit vectors (its `prefer-256-bit`
# feature), from the days when 512-bit instructions lowered the clock of the whole core:
# numba's loops then run 8 float32 lanes wide where the CPU has 16. nanofn's kernels that
# are bound by arithmetic gain about a quarter from 512-bit vectors (GELU's forward kernel
# over W7's 1M elements: 0.84 -> 0.64 ms; its backward 1.17 -> 0.84 ms), and OpenBLAS's
# matrix products already run 512 bits wide, so the clock is what it is either way.
WIDE_VECTOR_FEATURE = "-prefer-256-bit"


def wide_vectors() -> bool:
    """Let LLVM vectorise numba's loops 512 bits wide on a CPU with AVX-512 (see above).

    It sets numba's `config.CPU_FEATURES` to the host's features with the preference
    turned off, so it applies to every function numba compiles in this process (and their
    disk caches are keyed by it, as by any features). It does nothing (returns False) when
    the CPU has no AVX-512, when the user chose the CPU or its features
    (`NUMBA_CPU_NAME`, `NUMBA_CPU_FEATURES`), or when numba has compiled already (its
    code generator is built then, with the features it had). Returns whether it set them.

    Example:
        >>> from nanofn._numba_setup import wide_vectors
        >>> wide_vectors() in (True, False)
        True
    """
    try:
        from numba.core import codegen, config, registry
        if (config.CPU_FEATURES is not None or config.CPU_NAME is not None
                or "_toplevel_target_context" in vars(registry.cpu_target)):
            return False
        features = codegen.get_host_cpu_features()
    except Exception:  # noqa: BLE001 - numba changed: leave its features alone
        return False
    if "+avx512f" not in features.split(",") or "prefer-256-bit" in features:
        return False
    config.CPU_FEATURES = f"{features},{WIDE_VECTOR_FEATURE}"
    return True


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


def lean_cache_loads(cache) -> bool:
    """Make the numba disk cache `cache` (a `cache=True` dispatcher's `_cache`) load
    without installing numba's registries.

    Before loading a cached function, numba "refreshes" its target context: it imports
    and installs every registry of implementations (arrays, ufuncs, typed containers,
    random, jitclass, ...: about 60 modules). Loading a kernel's compiled code needs only
    the runtime (the symbols the code links against); the registries are for compiling.
    nanofn's kernels (`nanofn._kernels`), all loaded from the disk cache, so never import
    them: about 10 MB of resident memory and 0.08 s of start-up less for W1. A compile
    still refreshes the context (numba's compiler does so before it starts). Only
    nanofn's own kernels' caches are changed: numba's ufunc builder, for one, lowers a
    wrapper around a cached function after loading it, which needs the registries.

    Returns True when it replaced the cache's `load_overload`, False when numba's caching
    differs from what this expects (numba's own loading stays).

    Example:
        >>> from nanofn._numba_setup import lean_cache_loads
        >>> from nanofn.ops._nn import _attn_normalise_kernel
        >>> cache = _attn_normalise_kernel.dispatcher()._cache  # a kernel's: lean already
        >>> lean_cache_loads(cache)
        True
    """
    if not (hasattr(cache, "load_overload") and hasattr(cache, "_load_overload")
            and hasattr(cache, "_guard_against_spurious_io_errors")):
        return False

    def load_overload(sig, target_context):
        start_runtime(target_context)  # the runtime symbols that loaded code links to
        with cache._guard_against_spurious_io_errors():
            return cache._load_overload(sig, target_context)

    cache.load_overload = load_overload
    return True


# The object code of numba's runtime module, as `start_runtime` keeps it: this header, the
# sha256 of the rest, then the object code and the module's bitcode, each after its length.
_RUNTIME_MAGIC = b"nanofn-numba-runtime 1\n"


def start_runtime(target_context=None) -> None:
    """Start numba's runtime (NRT), loading its small LLVM module from object code kept in
    nanofn's cache folder instead of compiling it.

    numba starts its runtime before it compiles or loads anything: it registers the C
    functions that compiled code calls, then compiles an LLVM module of a few more. That
    compile is LLVM's whole optimisation and code generation pipeline, which brings about
    20 MB of LLVM's own code into resident memory and takes 25 ms; a process whose kernels
    all come from the disk cache needs LLVM for nothing else. Loaded from object code (a
    6 KB file, keyed by the numba and llvmlite versions and the CPU, as numba keys its own
    cache), the module costs 4 ms and about 10 MB. The first process without the file
    compiles the module and writes it (atomically). On anything unexpected, numba's own
    `rtsys.initialize` runs instead.

    Example:
        >>> from nanofn._numba_setup import start_runtime
        >>> start_runtime()  # once per process; later calls return at once
    """
    try:
        from numba.core.runtime import rtsys
        if rtsys._init:
            return
        if target_context is None:
            from numba.core.registry import cpu_target
            target_context = cpu_target.target_context
    except Exception:  # noqa: BLE001 - numba missing or changed: numba starts it itself
        return
    try:
        _start_runtime_from_cache(target_context, rtsys)
    except Exception:  # noqa: BLE001 - numba changed, or a bad file: numba's own way
        rtsys.initialize(target_context)


def _runtime_path(codegen):
    import llvmlite
    import numba

    from nanofn import _kernels
    folder = _kernels.cache_dir()
    if folder is None:
        return None
    key = repr((numba.__version__, llvmlite.__version__, codegen.magic_tuple(),
                sys.version_info[:2]))
    return os.path.join(folder, f"numba_runtime_{hashlib.sha256(key.encode()).hexdigest()[:16]}.o")


def _start_runtime_from_cache(target_context, rtsys):
    from llvmlite import binding as ll
    from numba.core import config
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.runtime import _nrt_python, nrtdynmod
    if config.NRT_STATS:  # numba's initialize also turns the statistics on
        raise RuntimeError("NRT statistics requested")
    codegen = target_context.codegen()
    path = _runtime_path(codegen)
    blobs = _read_runtime(path) if path else None
    with global_compiler_lock:
        if rtsys._init:
            return
        for name, address in _nrt_python.c_helpers.items():  # as rtsys.initialize does
            ll.add_symbol(name if name.startswith("_") else "NRT_" + name, address)
        if blobs is not None:
            library = codegen.unserialize_library(("nrt", "object", blobs))
        else:
            module, library = nrtdynmod.create_nrt_module(target_context)
            library.enable_object_caching()
            library.add_ir_module(module)
            library.finalize()
            if path:
                _write_runtime(path, library.serialize_using_object_code()[2])
        rtsys._library = library
        rtsys._init = True


def _read_runtime(path):
    """The two blobs of a good runtime file, or None (missing, or not what was written)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    head = len(_RUNTIME_MAGIC)
    if not data.startswith(_RUNTIME_MAGIC) or len(data) < head + 32:
        return None
    body = data[head + 32:]
    if hashlib.sha256(body).digest() != data[head:head + 32]:
        return None
    blobs, at = [], 0
    for _ in range(2):
        n = int.from_bytes(body[at:at + 8], "little")
        blobs.append(body[at + 8:at + 8 + n])
        at += 8 + n
    return tuple(blobs) if at == len(body) else None


def _write_runtime(path, blobs):
    body = b"".join(len(b).to_bytes(8, "little") + bytes(b) for b in blobs)
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(_RUNTIME_MAGIC + hashlib.sha256(body).digest() + body)
        os.replace(tmp, path)  # atomic: another process sees no file or the whole one
    except OSError:  # a read-only cache: the next process compiles the module again
        try:
            os.unlink(tmp)
        except OSError:
            pass
