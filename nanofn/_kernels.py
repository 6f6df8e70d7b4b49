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
  file) is rewritten; a numba cache entry that is unreadable, corrupted or belongs to
  another kernel (a truncated, damaged or swapped `.nbi`/`.nbc` file, or a directory in
  its place) is dropped with one warning and the kernel recompiled; every data file
  holds its cache key and a sha256 of its bytes, checked before numba sees it. Anything
  else that goes wrong raises `KernelError`, so callers can fall back to plain numpy.
* Kernels release the GIL (`nogil=True`). Most are single-threaded; a fused
  elementwise loop over at least `PARALLEL_MIN` elements, and a hand-written kernel
  marked `@kernel(parallel_arg=i)` on that many, also have a `parallel=True` build, run
  on numba's threads when `parallel_threads()` allows it (see there).
  Building and loading kernels is safe from several threads (see `_lock`).

Where the files go: `$NANOFN_CACHE_DIR` if set, else `$NUMBA_CACHE_DIR/nanofn_kernels` if
numba's cache directory is set, else `kernels` in the per-user cache directory that
`platformdirs` gives (`~/.cache/nanofn/kernels` on Linux, or under `$XDG_CACHE_HOME`).
numba unpickles its index files, so whoever can write that directory can run code in
this process: nanofn creates it with mode 0700 and uses it only if it is a real directory
(not a symlink) owned by this user and not writable by group or others. Otherwise it
warns once and compiles kernels in memory (not cached across processes); it never falls
back to a shared temporary directory.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import itertools
import os
import pickle
import shutil
import stat
import sys
import tempfile
import threading
import types
import warnings

import numpy as np

compile_count = 0  # kernels compiled in this process (numba cache misses)
cache_hit_count = 0  # kernels loaded from numba's disk cache

_KEY_LEN = 32  # hex digits of the sha256 kept in file and module names
_kernels: dict = {}  # (source key, entry name, signature) -> compiled numba dispatcher
# Guards `_kernels`, the counters and each `kernel`'s dispatcher. Lock order: numba
# compiles while holding its own global compiler lock
# (`numba.core.compiler_lock.global_compiler_lock`), and a compilation can call back into
# nanofn (typing a `kernel` that another kernel calls takes this lock). So this lock is
# only ever taken *after* numba's lock, never before it (`with compiler_lock(), _lock:`);
# taking it first deadlocks against a thread that is compiling.
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
        from nanofn._numba_setup import (
            defer_scipy_linalg, start_runtime, vectorise_many_arrays, wide_vectors)
        with _import_lock:  # never held while numba compiles
            if _numba is None:
                try:
                    import numba as nb
                except ImportError as err:
                    raise KernelError(f"numba is not installed ({err}); nanofn runs "
                                      "without kernels") from err
                wide_vectors()  # first: numba's code generator must not exist yet
                _register_kernel_type(nb)
                import nanofn._bitcast  # noqa: F401 - numba's `fma` (nanofn/ops/_fastmath.py)
                defer_scipy_linalg()
                vectorise_many_arrays()
                _numba = nb
                _started = True
        start_runtime()  # takes numba's compiler lock: not under ours (returns if started)
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


def _private_dir_problem(path: str) -> str | None:
    """Why `path` is not safe to hold files this process will unpickle (None if it is):
    it must be a real directory, not a symlink, owned by this user and not writable by
    group or others."""
    try:
        st = os.lstat(path)
    except OSError as err:
        return f"cannot inspect it ({err})"
    if stat.S_ISLNK(st.st_mode):
        return "it is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a directory"
    if hasattr(os, "getuid"):  # POSIX: Windows' per-user profile has no mode bits to check
        if st.st_uid != os.getuid():
            return f"it is owned by user id {st.st_uid}, not by this user ({os.getuid()})"
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return f"its mode {stat.S_IMODE(st.st_mode):04o} lets group or others write to it"
    return None


def _user_cache_dir() -> str | None:
    """`kernels` in the platform's per-user cache directory, created with mode 0700 and
    verified; None (with one warning) if it cannot be made safe."""
    import platformdirs
    base = platformdirs.user_cache_dir("nanofn", appauthor=False)
    path = os.path.join(base, "kernels")
    problem = None
    try:
        os.makedirs(os.path.dirname(base), exist_ok=True)  # the platform's cache folder
        for folder in (base, path):  # nanofn's own folders: private from the start
            try:
                os.mkdir(folder, mode=0o700)
            except FileExistsError:
                pass
    except OSError as err:
        problem = f"it cannot be created ({err})"
    # the folder nanofn owns (`.../nanofn`) and the kernel folder both must be private
    problem = problem or _private_dir_problem(base) or _private_dir_problem(path)
    if problem is None and not _writable(path):
        problem = "it cannot be written"
    if problem is not None:
        warnings.warn(f"nanofn: not using the kernel cache directory {path}: {problem}. "
                      "Kernels are compiled in memory in this process (set "
                      "NANOFN_CACHE_DIR to a directory of your own to cache them).",
                      RuntimeWarning, stacklevel=4)
        return None
    return path


def cache_dir() -> str | None:
    """The directory that holds generated kernel sources (None if there is none to use)."""
    global _cache_dir
    if _cache_dir is False:
        with _lock:
            if _cache_dir is False:
                if os.environ.get("NANOFN_CACHE_DIR"):
                    chosen = os.environ["NANOFN_CACHE_DIR"]
                elif os.environ.get("NUMBA_CACHE_DIR"):
                    chosen = os.path.join(os.environ["NUMBA_CACHE_DIR"], "nanofn_kernels")
                else:
                    chosen = None
                if chosen is None:
                    _cache_dir = _user_cache_dir()  # the default is checked before use
                elif _writable(chosen):
                    _cache_dir = chosen  # a directory the user named is theirs to secure
                else:
                    warnings.warn(f"nanofn: the kernel cache directory {chosen} cannot be "
                                  "written; kernels are compiled in memory in this process",
                                  RuntimeWarning, stacklevel=3)
                    _cache_dir = None
    return _cache_dir


def _remove(path: str) -> None:
    """Remove a file, or a directory that stands where a cache file should be."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def _write_source(path: str, source: str, key: str) -> None:
    """Make `path` hold exactly `source`: keep a good file, replace a corrupted one (or a
    directory found in its place)."""
    try:
        with open(path, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest()[:_KEY_LEN] == key:
                return
    except IsADirectoryError:
        _remove(path)
    except OSError:
        pass
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(source)
    os.replace(tmp, path)  # atomic: another process sees the old file or the new one


# ------------------------------------------------------------------------ numba's disk cache

_DATA_MAGIC = b"nanofn-kernel-cache 1\n"
_checked_file_class = None


def _warn_dropped(path: str, why: str) -> None:
    warnings.warn(f"nanofn: dropped the unusable numba cache file {path} ({why}); the "
                  "kernel is compiled again and the file rewritten", RuntimeWarning,
                  stacklevel=2)


def _checked_cache_file():
    """A subclass of numba's `IndexDataCacheFile` that checks what it loads.

    numba trusts its cache files: a truncated index raises `UnpicklingError` on every
    later run, and a data file swapped with another kernel's loads the wrong machine code
    (a crash). Here each data file holds a magic line, the sha256 of the rest, and the
    pickled `(key, data)`; a load checks all three against the key it was asked for. An
    index or data file that fails (or is a directory) is removed with one warning and
    treated as missing, so numba compiles the kernel and writes fresh files."""
    global _checked_file_class
    if _checked_file_class is not None:
        return _checked_file_class
    from numba.core.caching import IndexDataCacheFile

    class CheckedCacheFile(IndexDataCacheFile):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # a different version string: numba's own (unchecked) files are ignored quietly
            self._version = f"{self._version}+nanofn-checked-1"

        def _load_index(self):
            try:
                return super()._load_index()
            except Exception as err:  # noqa: BLE001 - any unreadable index: drop it
                _remove(self._index_path)
                _warn_dropped(self._index_path, f"{type(err).__name__}: {err}")
                return {}

        def _save_index(self, overloads):
            if os.path.isdir(self._index_path):
                _remove(self._index_path)
            super()._save_index(overloads)

        def save(self, key, data):
            overloads = self._load_index()
            name = overloads.get(key)
            if name is None:
                used = set(overloads.values())
                name = next(n for n in map(self._data_name, itertools.count(1))
                            if n not in used)
                overloads[key] = name
                self._save_index(overloads)
            path = self._data_path(name)
            if os.path.isdir(path):
                _remove(path)
            payload = self._dump((key, data))
            with self._open_for_write(path) as f:
                f.write(_DATA_MAGIC + hashlib.sha256(payload).digest() + payload)

        def load(self, key):
            name = self._load_index().get(key)
            if name is None:
                return None
            path = self._data_path(name)
            try:
                with open(path, "rb") as f:
                    blob = f.read()
            except FileNotFoundError:
                return None
            except OSError as err:
                why = f"{type(err).__name__}: {err}"
            else:
                why = _check_data(blob, key)
                if not isinstance(why, str):
                    return why[1]
            _remove(path)
            _warn_dropped(path, why)
            return None

    _checked_file_class = CheckedCacheFile
    return CheckedCacheFile


def _check_data(blob: bytes, key):
    """`(key, data)` from a data file's bytes, or a string saying what is wrong with them."""
    head, digest = len(_DATA_MAGIC), len(_DATA_MAGIC) + 32
    if not blob.startswith(_DATA_MAGIC) or len(blob) < digest:
        return "not a nanofn cache file, or truncated"
    payload = blob[digest:]
    if hashlib.sha256(payload).digest() != blob[head:digest]:
        return "its checksum does not match: truncated or corrupted"
    try:
        stored = pickle.loads(payload)  # noqa: S301 - our own file in our own directory
    except Exception as err:  # noqa: BLE001
        return f"{type(err).__name__}: {err}"
    if not (isinstance(stored, tuple) and len(stored) == 2 and stored[0] == key):
        return "it belongs to another kernel or signature"
    return stored


# Modules whose numba functions other modules' kernels call (and LLVM inlines): numba keys
# a kernel's disk cache on its own file only, so a change here would leave kernels elsewhere
# loading code compiled with the old helpers. Their stamps join every kernel's.
_SHARED_HELPERS = ("_bitcast.py", os.path.join("ops", "_fastmath.py"),
                   os.path.join("ops", "_softmax32.py"))


@functools.lru_cache(maxsize=1)
def _helpers_stamp() -> tuple:
    """The helpers' (mtime, size) stamps, read once per process (as numba reads a kernel
    file's own stamp once, when it makes the kernel's cache)."""
    here = os.path.dirname(os.path.abspath(__file__))
    stamps = []
    for name in _SHARED_HELPERS:
        try:
            st = os.stat(os.path.join(here, name))
            stamps.append((st.st_mtime, st.st_size))
        except OSError:
            stamps.append(None)
    return tuple(stamps)


def _use_checked_cache(disp):
    """Give dispatcher `disp` (made with `cache=True`) the checked cache file, and loads
    without numba's registries (`nanofn._numba_setup.lean_cache_loads`). The cache is
    keyed on the kernel's file and on the helpers' (`_SHARED_HELPERS`). This reaches into
    numba's `Cache` object (its layout has been stable for years); if a numba version lays
    it out differently, numba's own unchecked cache file stays in use."""
    from nanofn._numba_setup import lean_cache_loads
    cache = disp._cache
    try:
        cache._cache_file = _checked_cache_file()(
            cache_path=cache._cache_path, filename_base=cache._impl.filename_base,
            source_stamp=(cache._impl.locator.get_source_stamp(), _helpers_stamp()))
    except (AttributeError, TypeError):
        pass
    lean_cache_loads(cache)
    return disp


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
            if cache:
                _use_checked_cache(disp)
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


# ------------------------------------------------------------------------ parallel kernels

PARALLEL_MIN = 1 << 16  # elements: a smaller loop loses more starting threads than it gains


class _Parallel:
    """Whether kernels with a parallel variant run it now (`ok`: the config flag
    `nanofn_parallel_kernels`, and not in a forked child), and on how many threads
    (`threads`, decided on first use by `parallel_threads`; None until then)."""

    ok = os.environ.get("NANOFN_PARALLEL_KERNELS", "1") != "0"
    forked = False
    threads = None

    def set(self, on: bool) -> None:
        self.ok = bool(on) and not self.forked


parallel = _Parallel()


def parallel_threads() -> int:
    """How many threads nanofn's parallel kernels use in this process; 1 means they are
    not built. It is numba's thread count (`NUMBA_NUM_THREADS`, by default every CPU)
    when `nanofn.config.nanofn_parallel_kernels` is on and numba's threading layer is
    OpenMP or TBB. numba's last resort, "workqueue", is not: two threads launching
    kernels at once abort the process, and nanofn's kernels may run in several threads
    (background compiles, a user's threads). Nor is OpenMP when another library loaded it
    first with spinning threads (`_openmp_loaded_spinning`).

    Example:
        >>> from nanofn import _kernels
        >>> _kernels.parallel_threads() >= 1
        True
    """
    if not parallel.ok:
        return 1
    if parallel.threads is None:  # no lock: two threads deciding at once decide the same
        nb = numba()
        n = nb.config.NUMBA_NUM_THREADS
        if n > 1 and _openmp_loaded_spinning():
            n = 1  # numba's OpenMP layer would share that library and its spinning threads
        elif n > 1:
            try:
                with _passive_openmp():
                    nb.get_num_threads()  # loads the threading layer
                layer = nb.threading_layer()
            except (ValueError, ImportError, OSError):
                layer = None
            n = n if layer in ("omp", "tbb") else 1
        parallel.threads = n
    return parallel.threads


def _openmp_loaded_spinning() -> bool:
    """Whether GNU OpenMP was loaded into this process before numba's threading layer
    (PyTorch, for one, ships its own `libgomp.so.1`, which numba's layer then shares) with
    threads that spin after each parallel loop: its wait policy was read when it loaded,
    so `_passive_openmp` cannot make it passive, and nanofn's parallel kernels would fight
    BLAS's threads for the cores. Linux (glibc) only: elsewhere this cannot tell."""
    policy = os.environ.get("OMP_WAIT_POLICY", "").strip().upper()
    if policy == "PASSIVE" or os.environ.get("GOMP_SPINCOUNT", "").strip() == "0":
        return False
    noload = getattr(os, "RTLD_NOLOAD", None)
    if noload is None or "numba.np.ufunc.omppool" in sys.modules:
        return False  # cannot tell, or numba's own layer loaded it
    try:
        import ctypes
        ctypes.CDLL("libgomp.so.1", mode=noload | os.RTLD_LAZY)
    except OSError:  # not loaded yet: numba's layer loads it, passive
        return False
    return True


@contextlib.contextmanager
def _passive_openmp():
    """`OMP_WAIT_POLICY=PASSIVE` (unless the user set a policy) while numba loads its
    OpenMP threading layer, which reads it then; the environment is restored after.

    GNU OpenMP's default lets the threads of a parallel loop spin for a while after it
    ends, waiting for the next one. BLAS's threads run between nanofn's parallel kernels,
    and on a machine with as many cores as threads the spinning ones take the cores they
    wait for: W1's step on 2 cores took 45 ms instead of 6, W7's 1.05 s instead of 0.145.
    Passive threads sleep as soon as a loop ends, at the cost of a wake-up (microseconds)
    at the next: nanofn's parallel kernels are at least `PARALLEL_MIN` elements long."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        yield
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        yield
    finally:
        os.environ.pop("OMP_WAIT_POLICY", None)


def _after_fork_in_child():
    # GNU OpenMP's threads are not copied by fork: a parallel kernel in the child would
    # hang or abort (numba stops it with "fork() called from a process already using
    # GNU OpenMP"), so the child runs the serial kernels.
    parallel.forked = True
    parallel.ok = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def lock():
    """nanofn's kernel lock, for short bookkeeping (never held while numba compiles)."""
    return _lock


def later(task) -> None:
    """Run `task()` in nanofn's compile thread (`nanofn._background.later`), or now when
    background compiles are off (`nanofn.config.nanofn_background_compile`). Parallel
    builds go there: a call never waits for one, it runs the serial build until the
    parallel one is ready."""
    from nanofn._config import config
    if config.nanofn_background_compile:
        from nanofn import _background
        _background.later(task)
    else:
        task()


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

    `@kernel(parallel_arg=i)` marks a kernel whose outer loop is a `prange` over
    independent rows or elements (`prange` is `range` in the kernel's module, so the
    serial build and `.py_func` see a plain loop). When argument `i` has at least
    `PARALLEL_MIN` elements and `parallel_threads()` allows it, a call runs a second
    build, with `parallel=True` and numba's real `prange`, on numba's threads, once that
    build is compiled for the call's argument types: the first such call asks for it
    (`later`) and runs the serial build, as do the calls until it is ready. Each
    iteration must write only its own outputs: the results are then the serial ones,
    bit for bit. If numba cannot parallelise the loop, the serial build stays.

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

    def __init__(self, fn=None, parallel_arg=None, **options):
        self.py_func, self.options, self._dispatcher = fn, options, None
        self.parallel_arg, self._parallel = parallel_arg, None
        self._asked: set = set()  # argument types whose parallel build was asked for
        if fn is not None:
            self.__doc__, self.__name__ = fn.__doc__, fn.__name__
            if parallel_arg is not None:
                _with_parallel_builds.append(self)

    def __call__(self, *args):
        if self.py_func is None:  # used as @kernel(**options)
            return type(self)(args[0], parallel_arg=self.parallel_arg, **self.options)
        i = self.parallel_arg
        if (i is not None and parallel.ok and args[i].size >= PARALLEL_MIN
                and parallel_threads() > 1):
            typeof = numba().typeof
            sig = tuple(typeof(a) for a in args)
            disp = self._parallel
            if disp is not None and sig in disp.overloads:
                return disp(*args)
            if sig not in self._asked:
                self._asked.add(sig)
                later(lambda: self._build_parallel(sig))
        return (self._dispatcher or self.dispatcher())(*args)

    def _build_parallel(self, sig):
        """Compile the parallel build for `sig` (in the compile thread; see `later`)."""
        try:
            self.parallel_dispatcher().compile(sig)
        except Exception:  # noqa: BLE001 - cannot parallelise (or build): stays serial
            self.parallel_arg = None

    def parallel_dispatcher(self):
        """The `parallel=True` build (see the class docstring), compiled on first use. It
        is made from a copy of `py_func` whose globals bind `prange` to numba's, under
        its own name, so its disk cache entry is apart from the serial build's."""
        if self._parallel is not None:
            return self._parallel
        nb = numba()
        with compiler_lock(), _lock:
            if self._parallel is None:
                fn = self.py_func
                copy = types.FunctionType(fn.__code__, dict(fn.__globals__, prange=nb.prange),
                                          fn.__name__, fn.__defaults__, fn.__closure__)
                copy.__qualname__ = fn.__qualname__ + "_parallel"
                copy.__module__ = fn.__module__
                self._parallel = _njit(nb, copy, parallel=True, **self.options)
            return self._parallel

    def dispatcher(self):
        """The numba dispatcher, compiled from `py_func` on first use."""
        if self._dispatcher is not None:
            return self._dispatcher
        nb = numba()
        with compiler_lock(), _lock:  # numba's lock first (see `get_kernel`)
            if self._dispatcher is None:
                self._dispatcher = _njit(nb, self.py_func, **self.options)
            return self._dispatcher


def _njit(nb, fn, **options):
    """A kernel's numba dispatcher for `fn`: `nogil`, numpy's error model, and the checked
    disk cache (none for a function defined outside a file, e.g. in a REPL)."""
    opts = dict(nogil=True, error_model="numpy", **options)
    try:
        return _use_checked_cache(nb.njit(cache=True, **opts)(fn))
    except RuntimeError:  # no file to key a disk cache on
        return nb.njit(**opts)(fn)


_with_parallel_builds: list = []  # every `kernel` made with a `parallel_arg`


def compile_parallel_builds() -> int:
    """Compile (or load from the disk cache) the parallel build of every
    `@kernel(parallel_arg=...)` kernel for each signature its serial build has, so that a
    first large call does not compile on the calling thread (`python -m nanofn.warmup`
    runs it). Returns how many builds it made; none where `parallel_threads()` is 1."""
    if parallel_threads() < 2:
        return 0
    made = 0
    for k in list(_with_parallel_builds):
        if k.parallel_arg is None or k._dispatcher is None:
            continue
        for sig in k._dispatcher.signatures:
            k._build_parallel(sig)
            if k.parallel_arg is None:  # not parallelisable: stays serial
                break
            made += 1
    return made


def _register_kernel_type(nb):
    """Teach numba that a `kernel` is its dispatcher, so one kernel can call another
    (a helper shared by several loops) like any numba function."""
    from numba.extending import typeof_impl

    @typeof_impl.register(kernel)
    def _typeof_kernel(val, c):
        return typeof_impl(val.dispatcher(), c)


def clear_memory_cache() -> None:
    """Forget the kernels loaded in this process (the disk cache stays). For tests."""
    with _lock:  # nothing compiles in here, so numba's lock is not needed first
        for key, _, _ in _kernels:
            sys.modules.pop(f"nanofn_kernel_{key}", None)
        _kernels.clear()
