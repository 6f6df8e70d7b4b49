"""Where nanofn keeps compiled kernels between runs
(`jax.experimental.compilation_cache.compilation_cache`).

JAX's persistent compilation cache stores XLA executables in a folder. nanofn's
counterpart is its kernel cache: the Python source of each generated numba kernel (named
by its hash), the machine code numba caches next to it, and numba's runtime module, so a
second process loads kernels instead of compiling them. It is on by default, in
`$NANOFN_CACHE_DIR`, else `$NUMBA_CACHE_DIR/nanofn_kernels`, else `kernels` in the
per-user cache folder (see docs/performance.md). `set_cache_dir(path)`, like
`nanofn.config.update("jax_compilation_cache_dir", path)`, moves it to `path`.

The folder is read when a kernel is built: kernels built or loaded earlier in the process
stay in memory and are not written again, and kernels built after the call go to the new
folder. nanofn's plans (what `jit` compiles a function into) are kept in memory only. Two
things stay where numba puts them: with `$NUMBA_CACHE_DIR` set, numba writes its machine
code there rather than next to the sources, and nanofn's hand-written kernels (functions
in nanofn's own files) are cached by numba next to those files or under
`$NUMBA_CACHE_DIR`.

As with JAX's cache, anyone who can write the folder can run code in processes that use
it (numba unpickles its index): point it at a folder only you can write.

Example:
    >>> from nanofn.experimental.compilation_cache import compilation_cache as cc
    >>> cc.reset_cache()
"""

from __future__ import annotations

import os
import warnings

__all__ = ["set_cache_dir", "reset_cache"]


def set_cache_dir(path) -> None:
    """Keep the kernels compiled from now on in the folder `path` (created if missing),
    and look for compiled kernels there first.

    The same as `nanofn.config.update("jax_compilation_cache_dir", path)`, as in JAX.
    Kernels already built in this process stay in memory and are not copied; only kernels
    built after the call are read from and written to `path`. A folder that cannot be
    written is reported with a `RuntimeWarning`, and kernels are then compiled in memory.
    `None` goes back to nanofn's default folder (see the module docs).

    Example:
        >>> import os, tempfile
        >>> from nanofn.experimental.compilation_cache import compilation_cache as cc
        >>> folder = tempfile.mkdtemp()
        >>> cc.set_cache_dir(folder)
        >>> from nanofn import _kernels
        >>> _kernels.cache_dir() == folder
        True
        >>> cc.set_cache_dir(None)       # back to the default folder
    """
    from nanofn._config import config
    config.update("jax_compilation_cache_dir", None if path is None else os.fspath(path))


def reset_cache() -> None:
    """Forget the folder chosen for the kernel cache: the next kernel built chooses it
    again, from `jax_compilation_cache_dir` if set, else from `$NANOFN_CACHE_DIR`,
    `$NUMBA_CACHE_DIR` or the per-user default, read afresh (so a change to those
    variables takes effect). Kernels already built stay in memory, and the files stay
    on disk (as in JAX, which drops only its cache object).

    Example:
        >>> from nanofn.experimental.compilation_cache import compilation_cache as cc
        >>> cc.reset_cache()
    """
    from nanofn._config import config
    _use_folder(config.read("jax_compilation_cache_dir"))


def _use_folder(path) -> None:
    """Point the kernel cache at `path` (None or "": choose the default folder when next
    needed).
    Called by `nanofn.config.update("jax_compilation_cache_dir", ...)`."""
    from nanofn import _kernels
    path = os.fspath(path) if path is not None else None
    path = path or None  # "" as None: no folder named
    with _kernels._lock:
        if path is None:
            _kernels._cache_dir = False  # chosen again from the environment when needed
        elif _kernels._writable(path):
            _kernels._cache_dir = path  # a folder the user named is theirs to secure
        else:
            warnings.warn(f"nanofn: the kernel cache folder {path} cannot be written; "
                          "kernels are compiled in memory in this process",
                          RuntimeWarning, stacklevel=4)
            _kernels._cache_dir = None
