"""Compile nanofn's numba kernels ahead of time, and wait for background compiles.

A jitted function runs its first calls on numpy while its kernels compile in a background
thread (`nanofn.config.nanofn_background_compile`); compiled kernels go to numba's disk
cache, so the next process loads them instead of compiling. For a deployment (a container
image, a batch job's first node) that cache can be filled before the program runs:

    python -m nanofn.warmup                    # nanofn's built-in kernels
    python -m nanofn.warmup mypkg.train        # and mypkg.train's warm-up function
    python -m nanofn.warmup mypkg.train:warm   # ... naming the function

Point it at the cache the program will use (`NANOFN_CACHE_DIR`, `NUMBA_CACHE_DIR`; see
`nanofn._kernels`). Built-in kernels are the hand-written loops of the softmax family,
cross-entropy, layer norm, GELU, convolution patches and pooling, scatter-add and the
fused optimizer updates, compiled by running small programs that use them (`builtin`), in
float32 and float64, with the row-parallel builds that large arrays run where numba has
more than one thread. A fused elementwise kernel belongs to one program, so only running
that program compiles it: a user module names a function that calls its jitted functions
on example inputs (by default its `warmup` attribute, if it has one; otherwise importing
the module is all that runs). Everything runs with background compilation off, so each
kernel is compiled (or found in the cache) before the command returns.

`wait()` blocks until the kernels being compiled in the background are ready, for tests
and benchmarks that need the compiled plan rather than the numpy path.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["builtin", "main", "wait"]


def wait(timeout: float | None = None) -> bool:
    """Block until every jitted function's background kernel build started so far is done.

    The next call of each such function then runs its compiled plan. Returns False if
    `timeout` (seconds) passed first; True at once when nothing is pending.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn import warmup
        >>> f = nanofn.jit(lambda x: x * 2.0 + 1.0)
        >>> x = fnp.arange(3.0)
        >>> _ = f(x), f(x)  # the second call may start a background build
        >>> warmup.wait()
        True
        >>> f(x)  # compiled from here on
        Array([1., 3., 5.], dtype=float32)
    """
    if "nanofn._background" not in sys.modules:
        return True  # nothing was ever submitted
    from nanofn import _background
    return _background.wait(timeout)


def _programs(dtype):
    """Small functions (with example arguments) that together call every built-in kernel
    for `dtype`: a convnet and an MLP with layer norm, their gradients, and optimizer
    updates."""
    import numpy as np

    import nanofn
    import nanofn.numpy as fnp
    from nanofn import nn, optim

    rng = np.random.default_rng(0)
    init, apply = nn.serial(
        nn.Conv(4, (3, 3), padding="SAME"), nn.Relu, nn.MaxPool((2, 2), strides=(2, 2)),
        nn.Conv(4, (3, 3), padding="SAME"), nn.MaxPool((2, 2)), nn.AvgPool((2, 2)),
        nn.Flatten, nn.LayerNorm(),
        nn.Dense(5))
    _, params = init(nanofn.random.key(0), (2, 8, 8, 1))
    params = nanofn.tree.map(lambda p: fnp.asarray(p, dtype), params)
    x = fnp.asarray(rng.standard_normal((2, 8, 8, 1)), dtype)
    labels = fnp.asarray([1, 3])

    def loss(p, x, labels):
        logits = apply(p, x)
        ce = optim.losses.softmax_cross_entropy_with_integer_labels(logits, labels)
        return (fnp.mean(ce) + fnp.mean(nn.log_softmax(logits)) * 1e-3
                + fnp.mean(nn.softmax(logits)) * 1e-3 + fnp.mean(nn.logsumexp(logits, axis=-1))
                + fnp.mean(nn.gelu(logits)) * 1e-3)

    def step(opt):
        def run(p, s, x, labels):
            g = nanofn.grad(loss)(p, x, labels)
            u, s = opt.update(g, s, p)
            return optim.apply_updates(p, u), s
        return run

    def gather(table, idx):  # take, whose gradient is a scatter-add
        return fnp.sum(fnp.take(table, idx, axis=0) ** 2)

    table = fnp.asarray(rng.standard_normal((6, 3)), dtype)
    idx = fnp.asarray([0, 2, 2, 5])
    out = [(nanofn.grad(gather), (table, idx))]
    for opt in (optim.adam(1e-3), optim.adamw(1e-3, weight_decay=0.1),
                optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(1e-2, momentum=0.9)),
                optim.sgd(1e-2, momentum=0.9, nesterov=True)):
        out.append((step(opt), (params, opt.init(params), x, labels)))
    return out


def builtin(dtypes=("float32", "float64")) -> None:
    """Compile (or load from the disk cache) nanofn's hand-written kernels for `dtypes`,
    by running small programs that use them, eagerly and as `jit`'s plan (unfused: a
    fused kernel belongs to its program, so compiling these programs' own would only fill
    the cache).

    Example:
        >>> from nanofn import warmup
        >>> warmup.builtin(dtypes=("float32",))  # doctest: +SKIP
    """
    import nanofn
    from nanofn import _jit, _kernels
    from nanofn._core import to_numpy
    from nanofn.tree_util import tree_leaves
    for dtype in dtypes:
        for fn, args in _programs(dtype):
            fn(*args)  # eager
            closed = nanofn.jit(fn).lower(*args).compiler_ir()  # the simplified jaxpr
            _jit.Plan(closed)([to_numpy(a) for a in tree_leaves(args)])
    _kernels.compile_parallel_builds()  # the row-parallel builds large arrays run


def _run_target(target: str) -> str:
    """Import `module` (or `module:function`) and call its warm-up function."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    name = attr or "warmup"
    fn = getattr(module, name, None)
    if fn is None:
        if attr:
            raise SystemExit(f"nanofn.warmup: {module_name} has no attribute {attr!r}")
        return f"imported {module_name} (it has no `warmup` function)"
    if not callable(fn):
        raise SystemExit(f"nanofn.warmup: {module_name}.{name} is not callable")
    fn()
    return f"ran {module_name}.{name}()"


def main(argv=None) -> int:
    """`python -m nanofn.warmup [--no-builtin] [--dtype D ...] [module[:function] ...]`:
    fill the kernel caches; prints what it compiled and loaded, and where the cache is.

    Example:
        >>> from nanofn import warmup
        >>> warmup.main(["--help"])  # doctest: +ELLIPSIS
        usage: python -m nanofn.warmup ...
        ...
        0
    """
    import argparse
    import time

    ap = argparse.ArgumentParser(
        prog="python -m nanofn.warmup",
        description="Compile nanofn's numba kernels into the disk cache ahead of time.")
    ap.add_argument("targets", nargs="*", metavar="module[:function]",
                    help="a module to import and its warm-up function to call (default "
                         "name: warmup), e.g. mypkg.train or mypkg.train:warm")
    ap.add_argument("--no-builtin", action="store_true",
                    help="skip nanofn's built-in kernels")
    ap.add_argument("--dtype", action="append", choices=["float32", "float64"],
                    help="dtypes of the built-in kernels (default: both)")
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:  # --help, or bad arguments (argparse printed why)
        return int(exc.code or 0)

    from nanofn import _kernels
    from nanofn._config import config
    if not config.nanofn_use_kernels:
        print("nanofn.warmup: kernels are off (NANOFN_USE_KERNELS=0): nothing to compile")
        return 0
    try:
        _kernels.numba()
    except _kernels.KernelError as err:
        print(f"nanofn.warmup: {err}")
        return 1
    start = time.perf_counter()
    done = []
    if not args.no_builtin:
        builtin(tuple(args.dtype or ("float32", "float64")))
        done.append("built-in kernels")
    with config._override("nanofn_background_compile", False):
        for target in args.targets:
            done.append(_run_target(target))
    wait()
    import numba
    print(f"nanofn.warmup: {'; '.join(done) or 'nothing to do'} in "
          f"{time.perf_counter() - start:.1f} s: {_kernels.compile_count} generated "
          f"kernels compiled, {_kernels.cache_hit_count} loaded from the cache; "
          f"kernel sources in {_kernels.cache_dir()}, numba's cache in "
          f"{numba.config.CACHE_DIR or 'the __pycache__ beside each source'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
