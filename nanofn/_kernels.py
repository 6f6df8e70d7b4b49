"""Shared machinery for generated numba kernels: lazy import, a source cache on disk, counters.

nanofn writes some kernels as Python source at run time (the fused elementwise loops of
`nanofn/_fusion.py`). numba's own disk cache (`cache=True`) only works for functions that
live in a real file, so each generated source is written once to a file in a cache
directory, named by the sha256 of its text, and imported from there as a module. A second
process that generates the same source finds the same file, and numba finds its compiled
machine code next to it: nothing is compiled twice.

* numba is imported the first time a kernel is needed, never by `import nanofn`. Its
  start-up is not cheap (importing numba, then the registries it loads before its first
  compilation or cache load: about 1 s on a quiet 2-core machine, more than `jax.jit`'s
  whole first call of a small program). Inside `deferred()` (what `jit` wraps around the
  trace and first call of each function) `enabled()` answers False until numba has been
  started in this process, so a function called once never pays for it; kernels that are
  already available are used as usual.
* `compile_count` counts kernels compiled in this process (numba cache misses);
  `cache_hit_count` counts kernels loaded from numba's disk cache instead.
* A source file whose text does not match the hash in its name (a truncated or edited
  file) is rewritten; a numba cache entry that cannot be loaded is dropped and the kernel
  recompiled once; anything else that goes wrong raises `KernelError`, so callers can fall
  back to plain numpy.
* Kernels are single-threaded (no `parallel=True`): nanofn runs next to BLAS, whose own
  threads a second thread pool would fight. They release the GIL (`nogil=True`).

Where the files go: `$NANOFN_CACHE_DIR` if set, else `$NUMBA_CACHE_DIR/nanofn_kernels` if
numba's cache directory is set, else `$XDG_CACHE_HOME/nanofn/kernels` (by default
`~/.cache/nanofn/kernels`). If that directory cannot be written, a per-user directory
under the system's temporary directory is used; if none can be written, kernels are
compiled in memory (not cached across processes).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import threading

import numpy as np

compile_count = 0  # kernels compiled in this process (numba cache misses)
cache_hit_count = 0  # kernels loaded from numba's disk cache

_KEY_LEN = 32  # hex digits of the sha256 kept in file and module names
_kernels: dict = {}  # (source key, entry name, signature) -> compiled numba dispatcher
_lock = threading.RLock()
_import_lock = threading.Lock()
_numba = None
_started = False  # numba was imported by `numba()`: kernels no longer cost a start-up


class _Deferral(threading.local):
    depth = 0  # > 0: inside `deferred()` in this thread
    off = 0  # > 0: inside `numpy_only()` in this thread


_deferral = _Deferral()
_cache_dir: str | None | bool = False  # False: not chosen yet; None: no writable directory


class KernelError(RuntimeError):
    """A generated kernel could not be built (numba missing, or compilation failed)."""


def numba():
    """The numba module, imported on first use (raises `KernelError` if it is missing)."""
    global _numba, _started
    if _numba is None:
        with _import_lock:  # never held while numba compiles
            if _numba is None:
                try:
                    import numba as nb
                except ImportError as err:
                    raise KernelError(f"numba is not installed ({err}); nanofn runs "
                                      "without kernels") from err
                _register_kernel_type(nb)
                from nanofn._numba_setup import defer_scipy_linalg
                defer_scipy_linalg()
                _numba = nb
                _started = True
    return _numba


def source_key(source: str) -> str:
    """The hash that names a generated source (hex digits of its sha256)."""
    return hashlib.sha256(source.encode()).hexdigest()[:_KEY_LEN]


def _writable(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
        return True
    except OSError:
        return False


def cache_dir() -> str | None:
    """The directory that holds generated kernel sources (None if none is writable)."""
    global _cache_dir
    if _cache_dir is False:
        candidates = []
        if os.environ.get("NANOFN_CACHE_DIR"):
            candidates.append(os.environ["NANOFN_CACHE_DIR"])
        elif os.environ.get("NUMBA_CACHE_DIR"):
            candidates.append(os.path.join(os.environ["NUMBA_CACHE_DIR"], "nanofn_kernels"))
        else:
            base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
                os.path.expanduser("~"), ".cache")
            candidates.append(os.path.join(base, "nanofn", "kernels"))
        user = os.environ.get("USER") or str(getattr(os, "getuid", lambda: "user")())
        candidates.append(os.path.join(tempfile.gettempdir(), f"nanofn-kernels-{user}"))
        _cache_dir = next((c for c in candidates if _writable(c)), None)
    return _cache_dir


def _write_source(path: str, source: str, key: str) -> None:
    """Make `path` hold exactly `source`: keep a good file, replace a corrupted one."""
    try:
        with open(path, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest()[:_KEY_LEN] == key:
                return
    except OSError:
        pass
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(source)
    os.replace(tmp, path)  # atomic: another process sees the old file or the new one


def _import_file(module_name: str, path: str):
    """Import a kernel file as a module. It stays in `sys.modules`: numba finds a cached
    kernel's globals by importing its module by name."""
    module = sys.modules.get(module_name)
    if module is not None and getattr(module, "__file__", None) == path:
        return module
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _exec_source(module_name: str, source: str):
    """Run a source in a fresh module that has no file (no disk cache possible)."""
    import types
    module = types.ModuleType(module_name)
    exec(compile(source, f"<{module_name}>", "exec"), module.__dict__)  # noqa: S102
    return module


def _signature(nb, arg_types):
    """A numba signature `void(...)` from `(dtype name, kind)` pairs: kind "scalar" is a
    scalar argument, "in" a read-only contiguous 1-d array, "out" a writable one."""
    args = []
    for dtype, kind in arg_types:
        t = nb.from_dtype(np.dtype(dtype))
        if kind != "scalar":
            t = nb.types.Array(t, 1, "C", readonly=kind == "in")
        args.append(t)
    return nb.types.void(*args)


def _compile(disp, signature):
    """Compile `disp` for `signature`, counting whether numba's disk cache supplied it."""
    global compile_count, cache_hit_count
    disp.compile(signature)
    stats = disp.stats
    compile_count += sum(stats.cache_misses.values())
    cache_hit_count += sum(stats.cache_hits.values())
    disp.disable_compile()  # other argument types raise TypeError instead of compiling


def get_kernel(source: str, entry: str, arg_types: tuple, *, options=None):
    """Compile function `entry` of the Python `source` with numba for one signature.

    The source must define `entry` as a plain Python function and import what it needs;
    it is compiled with `njit(cache=True, nogil=True, **options)`. Results are cached in
    this process (by source hash, entry and signature) and on disk.

    `arg_types` is a tuple of `(dtype name, kind)` pairs, one per argument: kind "scalar"
    for a scalar, "in" for a read-only contiguous 1-d array, "out" for a writable one; the
    function returns nothing.

    Returns the numba dispatcher, which accepts only that signature (other argument types
    raise `TypeError`). Raises `KernelError` if numba is missing or compilation fails.
    """
    key = source_key(source)
    ckey = (key, entry, tuple(arg_types))
    disp = _kernels.get(ckey)
    if disp is not None:
        return disp
    nb = numba()
    # Lock order: numba's global compiler lock first, then ours (numba may call back into
    # `kernel.dispatcher()` while it holds its lock; taking them the other way round here
    # deadlocks against such a thread).
    with compiler_lock(), _lock:
        disp = _kernels.get(ckey)
        if disp is not None:
            return disp
        opts = dict(nogil=True, **(options or {}))
        module_name = f"nanofn_kernel_{key}"
        folder = cache_dir()
        try:
            signature = _signature(nb, arg_types)
            if folder is None:
                module, cache = _exec_source(module_name, source), False
            else:
                path = os.path.join(folder, module_name + ".py")
                _write_source(path, source, key)
                module, cache = _import_file(module_name, path), True
            disp = nb.njit(cache=cache, **opts)(getattr(module, entry))
            try:
                _compile(disp, signature)
            except nb.core.errors.NumbaError:
                raise  # the source itself does not compile
            except Exception:  # noqa: BLE001 - an unreadable numba cache entry: drop it, retry
                if not cache:
                    raise
                disp._cache.flush()
                disp = nb.njit(cache=True, **opts)(getattr(module, entry))
                _compile(disp, signature)
        except Exception as err:  # noqa: BLE001 - reported as one KernelError
            raise KernelError(f"numba could not compile a generated kernel ({key}): "
                              f"{type(err).__name__}: {err}") from err
        _kernels[ckey] = disp
        return disp


def enabled() -> bool:
    """Whether primitives may use their numba kernels now: `nanofn.config.nanofn_use_kernels`,
    and, inside `deferred()`, only once numba has been started in this process."""
    from nanofn._config import config
    return (config.nanofn_use_kernels and not _deferral.off
            and (_started or not _deferral.depth))


def started() -> bool:
    """Whether numba has been imported for kernels in this process (no start-up cost left)."""
    return _started


class deferred:  # noqa: N801 - a context manager, used like a function
    """Within this context (in this thread), `enabled()` is False until numba has been
    started: primitives take their numpy paths rather than import numba for one call.

    Example:
        >>> from nanofn import _kernels
        >>> with _kernels.deferred():
        ...     print(_kernels.enabled() <= _kernels.started())  # no start-up in here
        True
    """

    def __enter__(self):
        _deferral.depth += 1
        return self

    def __exit__(self, *exc):
        _deferral.depth -= 1
        return False


class numpy_only:  # noqa: N801 - a context manager, used like a function
    """Within this context (in this thread), `enabled()` is False: primitives take their
    numpy paths, so nothing waits for numba (what `jit` runs while a function's kernels
    compile in the background).

    Example:
        >>> from nanofn import _kernels
        >>> with _kernels.numpy_only():
        ...     print(_kernels.enabled())
        False
    """

    def __enter__(self):
        _deferral.off += 1
        return self

    def __exit__(self, *exc):
        _deferral.off -= 1
        return False


def compiler_lock():
    """numba's global compiler lock (numba must be imported). Any nanofn lock held while
    numba compiles is taken after it, never before."""
    from numba.core.compiler_lock import global_compiler_lock
    return global_compiler_lock


class kernel:  # noqa: N801 - used as a decorator, like numba.njit
    """Decorator for a hand-written kernel: a plain-Python loop function that numba
    compiles on its first call (`njit(cache=True, nogil=True, error_model="numpy")`, plus
    `options`), so defining it imports nothing and a second process loads the machine
    code from numba's disk cache. `error_model="numpy"` makes division by zero give
    inf/nan as numpy does, and lets LLVM vectorise the loops.

    The undecorated function stays at `.py_func` (it runs, slowly, as plain Python).
    One kernel may call another (numba sees a `kernel` as its dispatcher), so loops
    that share a piece, such as a row's maximum, write it once.

    Example:
        >>> import numpy as np
        >>> from nanofn._kernels import kernel
        >>> @kernel
        ... def total(x):
        ...     s = 0.0
        ...     for i in range(x.size):
        ...         s += x[i]
        ...     return s
        >>> float(total.py_func(np.arange(4.0)))
        6.0
    """

    def __init__(self, fn=None, **options):
        self.py_func, self.options, self._dispatcher = fn, options, None
        if fn is not None:
            self.__doc__, self.__name__ = fn.__doc__, fn.__name__

    def __call__(self, *args):
        if self.py_func is None:  # used as @kernel(**options)
            return type(self)(args[0], **self.options)
        return (self._dispatcher or self.dispatcher())(*args)

    def dispatcher(self):
        """The numba dispatcher, compiled from `py_func` on first use."""
        nb = numba()
        with compiler_lock(), _lock:  # numba's lock first (see `get_kernel`)
            if self._dispatcher is None:
                opts = dict(nogil=True, error_model="numpy", **self.options)
                try:
                    self._dispatcher = nb.njit(cache=True, **opts)(self.py_func)
                except RuntimeError:  # defined outside a file (a REPL): no disk cache
                    self._dispatcher = nb.njit(**opts)(self.py_func)
            return self._dispatcher


def _register_kernel_type(nb):
    """Teach numba that a `kernel` is its dispatcher, so one kernel can call another
    (a helper shared by several loops) like any numba function."""
    from numba.extending import typeof_impl

    @typeof_impl.register(kernel)
    def _typeof_kernel(val, c):
        return typeof_impl(val.dispatcher(), c)


def clear_memory_cache() -> None:
    """Forget the kernels loaded in this process (the disk cache stays). For tests."""
    with _lock:
        for key, _, _ in _kernels:
            sys.modules.pop(f"nanofn_kernel_{key}", None)
        _kernels.clear()
