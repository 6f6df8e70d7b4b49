"""Global switches, read with `nanofn.config.<name>` and set with `nanofn.config.update`."""

from __future__ import annotations

import contextlib
import os


# JAX flags that programs set and nanofn accepts with no effect, with their JAX defaults.
# (There is one CPU device and no XLA compiler to configure.)
_ACCEPTED = {
    "jax_platform_name": "", "jax_platforms": None, "jax_default_device": None,
    "jax_default_matmul_precision": None,
    "jax_persistent_cache_min_compile_time_secs": 1.0,
    "jax_persistent_cache_min_entry_size_bytes": 0, "jax_cpu_enable_async_dispatch": True,
    "jax_dynamic_shapes": False, "jax_use_shardy_partitioner": False,
    "jax_num_cpu_devices": -1,  # read by nanofn.local_device_count (simulated devices)
}
_CHOICES = {
    "jax_traceback_filtering": ("off", "tracebackhide", "remove_frames",
                                "quiet_remove_frames", "auto"),
    "jax_numpy_rank_promotion": ("allow", "warn", "raise"),
    "jax_numpy_dtype_promotion": ("standard", "strict"),
    "jax_legacy_prng_key": ("allow", "warn", "error"),
    "jax_default_matmul_precision": (None, "default", "high", "highest", "bfloat16",
                                     "tensorfloat32", "float32", "bfloat16_3x",
                                     "fastest", "ANY_F8_ANY_F8_F32"),
}


# JAX's checking and PRNG flags, with their JAX defaults; what each does in nanofn is in
# the docstring of `Config`.
_CHECKS = {
    "jax_numpy_rank_promotion": "allow", "jax_numpy_dtype_promotion": "standard",
    "jax_debug_infs": False, "jax_enable_checks": False, "jax_check_tracer_leaks": False,
    "jax_debug_key_reuse": False, "jax_softmax_custom_jvp": False,
    "jax_default_prng_impl": "threefry2x32", "jax_threefry_partitionable": True,
    "jax_legacy_prng_key": "allow", "jax_enable_custom_prng": False,
}
# Flags with one value nanofn implements: (that value, JAX's other values, why only it).
# Setting another of JAX's values raises NotImplementedError rather than doing the default.
_ONLY = {
    "jax_default_prng_impl": (
        "threefry2x32", ("threefry4x32", "rbg", "unsafe_rbg", "philox2x32", "philox4x32"),
        "nanofn.random implements the threefry2x32 generator only"),
    "jax_threefry_partitionable": (
        True, (False,), "nanofn's threefry lays out its counters as JAX does by default "
        "(True, since JAX 0.5); the older layout is not implemented"),
    "jax_enable_custom_prng": (
        False, (True,), "nanofn implements the threefry2x32 generator only, with no custom "
        "PRNG implementations"),
}


def _check_supported(name, value):
    supported, others, why = _ONLY[name]
    if value == supported:
        return
    if value in others:
        raise NotImplementedError(f"nanofn.config: {name}={value!r} is not supported: {why}. "
                                  f"nanofn supports {name}={supported!r} only")
    raise ValueError(f"config option {name!r} must be one of {(supported,) + others}, got "
                     f"{value!r}")


def _env_flag(name, default):
    value = os.environ.get(name.upper())
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


class Config:
    """nanofn's settings, under JAX's flag names (`jax.config`).

    * `jax_enable_x64`: arrays nanofn creates default to float64 / int64 / complex128
      (off: float32 / int32 / complex64, as in JAX). Float64 inputs stay float64 either way.
    * `jax_disable_jit`: run jitted functions eagerly (for debugging).
    * `jax_debug_nans`: raise at the first primitive that produces a NaN.
    * `jax_debug_infs`: raise FloatingPointError at the first primitive that produces an
      infinity, naming it (eagerly, under `jit` and in the backward pass, as debug_nans).
    * `jax_numpy_rank_promotion`: `"allow"` (default) lets nanofn.numpy's elementwise
      functions (arithmetic, comparisons, logical and bitwise ones, `isclose`, `clip`...)
      broadcast operands of different ranks; `"warn"` warns (UserWarning) and `"raise"`
      raises ValueError naming the shapes. Scalars and 0-d arrays are exempt, and so are
      functions JAX exempts (`where`, `matmul`, `outer`, ...) and the axis `vmap` adds.
      This flag and the next look at the operands your code passes: nanofn's functions
      that are built from numpy functions are not checked inside.
    * `jax_numpy_dtype_promotion`: `"standard"` (default) promotes on JAX's lattice;
      `"strict"` raises `nanofn.dtypes.TypePromotionError` where operands of different
      dtypes would be promoted implicitly. Python scalars still take an array's dtype
      where JAX's strict lattice lets them (an int scalar with any number array, a float
      with a float or complex one); explicit casts (`astype`, `asarray(x, dtype)`) work.
      Without x64, a 64-bit dtype and the 32-bit one of its kind count as one, as JAX
      makes 64-bit values 32-bit. Unlike JAX, nanofn has no weakly typed arrays: a Python
      scalar made an array (by `asarray`, or as an argument of a jitted function) is
      strongly typed, and strict mode does not promote it.
    * `jax_default_prng_impl` (`"threefry2x32"`), `jax_threefry_partitionable` (True),
      `jax_enable_custom_prng` (False): nanofn implements these values only (threefry
      keys, typed from `random.key`, raw from `random.PRNGKey`); setting another of JAX's
      values raises NotImplementedError saying why.
    * `jax_legacy_prng_key` (`"allow"`, `"warn"`, `"error"`): accepted, with no effect.
      JAX warns about or refuses raw keys (`PRNGKey`'s) under the last two; nanofn allows
      raw and typed keys alike (a program that JAX runs under "error" runs here).
    * `jax_debug_key_reuse`: accepted, with no effect. JAX tracks typed keys
      (`jax.random.key`) under it and raises where one is used twice; nanofn does not track
      keys, so nothing is raised.
    * `jax_softmax_custom_jvp`: accepted; nanofn's softmax has one derivative rule (from
      its output, as JAX's custom rule), so both values give the same results.
    * `jax_check_tracer_leaks`: accepted; nanofn does not scan for leaked tracers when a
      trace ends. A leaked tracer raises `UnexpectedTracerError` when it is used.
    * `jax_enable_checks`: `jit` type-checks each jaxpr it plans, as traced and after
      simplification (every equation's outputs against its primitive's shape rule), and
      raises `nanofn.errors.JaxprTypeError` where one disagrees.
    * `jax_traceback_filtering`: `"off"` shows nanofn's own frames in tracebacks; any
      other of JAX's values (default `"auto"`) hides them.
    * `nanofn_use_kernels`: use numba kernels where nanofn has them (off: numpy only).
    * `jax_log_compiles`: each time a jitted function traces and plans a new signature,
      log a WARNING (logger `nanofn._jit`) naming it and its argument shapes and dtypes
      (off: the same message at DEBUG level; `JAX_LOG_COMPILES=1`).
    * `jax_explain_cache_misses`: when a jitted function traces again, log a WARNING
      saying what differs from the closest signature it has cached (an argument's shape
      or dtype, a static value, the pytree structure; `JAX_EXPLAIN_CACHE_MISSES=1`).
    * `nanofn_jit_cache_size`: how many argument signatures each jitted function keeps
      compiled (least recently used dropped first; default 512).
    * JAX's other common flags (`jax_platform_name`, `jax_platforms`,
      `jax_default_matmul_precision`, ...) are accepted and read back; they change nothing,
      as nanofn has one CPU device and computes float32 matmuls in float32.
    * `jax_compilation_cache_dir`: the folder of nanofn's kernel cache, for kernels built
      from then on (None: the default folder; see
      `nanofn.experimental.compilation_cache.compilation_cache.set_cache_dir`).
    * `jax_num_cpu_devices`: how many CPU devices a one-process run simulates for `pmap`
      (as JAX's flag, or `XLA_FLAGS=--xla_force_host_platform_device_count=N`).
    * `nanofn_background_compile`: compile a jitted function's kernels in a background
      thread while its calls run on numpy (off: its second call compiles them and waits;
      `NANOFN_BACKGROUND_COMPILE=0`). `nanofn.warmup.wait()` waits for pending compiles.
    * `nanofn_parallel_kernels`: fused elementwise loops, and the row-wise nn kernels
      (softmax family, layer norm, GELU), over 65536 elements or more run on numba's
      threads (`NUMBA_NUM_THREADS`, by default every CPU) with its OpenMP or TBB
      threading layer (off: one thread; `NANOFN_PARALLEL_KERNELS=0`). Results are the
      same either way, bit for bit.

    Not a flag: `import nanofn` raises glibc malloc's mmap and trim thresholds so that
    fresh arrays reuse freed memory instead of faulting new pages
    (`NANOFN_RETAIN_FREED_MEMORY=0` before the import leaves malloc alone; see
    `nanofn/_malloc.py` and docs/performance.md).

    Example:
        >>> import nanofn
        >>> nanofn.config.update("jax_debug_nans", False)
        >>> nanofn.config.jax_debug_nans
        False
        >>> nanofn.config.read("jax_enable_x64")
        False
    """

    def __init__(self):
        self._values = {
            "jax_enable_x64": False,
            "jax_disable_jit": False,
            "jax_debug_nans": False,
            "nanofn_jit_cache_size": 512,  # signatures kept per jitted function (LRU)
            "jax_log_compiles": _env_flag("jax_log_compiles", False),
            "jax_explain_cache_misses": _env_flag("jax_explain_cache_misses", False),
            "jax_traceback_filtering": "auto",
            "nanofn_use_kernels": os.environ.get("NANOFN_USE_KERNELS", "1") != "0",
            "jax_compilation_cache_dir": None,  # the kernel cache's folder (None: default)
            **_ACCEPTED,
            **_CHECKS,
            "nanofn_background_compile":
                os.environ.get("NANOFN_BACKGROUND_COMPILE", "1") != "0",
            "nanofn_parallel_kernels":
                os.environ.get("NANOFN_PARALLEL_KERNELS", "1") != "0",
        }
        for env in ("JAX_TRACEBACK_FILTERING", "NANOFN_TRACEBACK_FILTERING"):
            if os.environ.get(env):
                self._values["jax_traceback_filtering"] = os.environ[env].strip().lower()

    def update(self, name, value):
        """Set flag `name` to `value` (JAX's `jax.config.update`).

        Example:
            >>> import nanofn
            >>> nanofn.config.update("jax_platform_name", "cpu")
            >>> nanofn.config.jax_platform_name
            'cpu'
        """
        if name not in self._values:
            raise ValueError(f"unknown config option {name!r}; options: {sorted(self._values)}")
        choices = _CHOICES.get(name)
        if choices is not None and value not in choices:
            raise ValueError(f"config option {name!r} must be one of {choices}, got {value!r}")
        if name in _ONLY:
            _check_supported(name, value)
        self._values[name] = value
        if name in ("jax_debug_nans", "jax_debug_infs"):
            from nanofn import _core
            checking = (bool(self._values["jax_debug_nans"]),
                        bool(self._values["jax_debug_infs"]))
            _core.checking, _core.debug_nans = checking, any(checking)
        elif name == "jax_numpy_rank_promotion":
            from nanofn.numpy import _lax_numpy
            _lax_numpy._rank_promotion = None if value == "allow" else value
        elif name == "jax_numpy_dtype_promotion":
            from nanofn.numpy import _dtypes
            _dtypes._strict_promotion = value == "strict"
        elif name == "jax_enable_x64":
            _set_x64(bool(value))
        elif name == "nanofn_parallel_kernels":
            from nanofn import _kernels
            _kernels.parallel.set(value)
        elif name == "jax_compilation_cache_dir":
            from nanofn.experimental.compilation_cache import compilation_cache
            compilation_cache._use_folder(value)
        if name in ("jax_enable_x64", "jax_numpy_rank_promotion", "jax_numpy_dtype_promotion"):
            from nanofn import _core
            _core.trace_flags = (bool(self._values["jax_enable_x64"]),
                                 self._values["jax_numpy_rank_promotion"],
                                 self._values["jax_numpy_dtype_promotion"])

    def read(self, name):
        """The value of flag `name` (JAX's `jax.config.read`).

        Example:
            >>> import nanofn
            >>> nanofn.config.read("jax_disable_jit")
            False
        """
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"nanofn.config has no option {name!r}") from None

    @property
    def values(self) -> dict:
        """All flags and their values (a copy)."""
        return dict(self._values)

    def config_with_absl(self):
        """Accepted for compatibility: nanofn reads no absl flags."""

    def parse_flags_with_absl(self):
        """Accepted for compatibility: nanofn reads no absl flags."""

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self.read(name)

    @contextlib.contextmanager
    def _override(self, name, value):
        old = self._values[name]
        self.update(name, value)
        try:
            yield
        finally:
            self.update(name, old)


def _set_x64(on: bool):
    """Make the default dtypes of created arrays and Python scalars 64-bit (or 32-bit).

    The defaults live in one table, `nanofn.numpy._dtypes._DEFAULT` (with its copy for
    Python scalars in the core); both are updated in place so every reader follows."""
    import numpy as np
    from nanofn import _core
    from nanofn.numpy import _dtypes
    f, i, u, c = ((np.float64, np.int64, np.uint64, np.complex128) if on else
                  (np.float32, np.int32, np.uint32, np.complex64))
    _dtypes._DEFAULT.update(f=np.dtype(f), i=np.dtype(i), u=np.dtype(u), c=np.dtype(c))
    _core._PY_SCALAR_DTYPE.update({int: np.dtype(i), float: np.dtype(f),
                                   complex: np.dtype(c)})


config = Config()
if _env_flag("jax_enable_x64", False):
    config._values["jax_enable_x64"] = True  # applied once nanofn.numpy is importable


def debug_nans(enable: bool = True):
    """Context manager: raise at the first primitive that produces a NaN, naming it and the
    line of your code that ran it (in the forward pass or the backward pass).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> with nanofn.debug_nans():
        ...     fnp.log(fnp.array(-1.0))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        FloatingPointError: debug_nans: primitive 'log' produced a NaN at ...
    """
    return config._override("jax_debug_nans", enable)


def disable_jit(disable: bool = True):
    """Context manager: inside it, jitted functions run eagerly (Python prints every call).

    Example:
        >>> import nanofn
        >>> with nanofn.disable_jit():
        ...     nanofn.jit(lambda x: x + 1)(nanofn.numpy.array(1.0))
        Array(2., dtype=float32)
    """
    return config._override("jax_disable_jit", disable)
