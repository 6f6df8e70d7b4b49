"""Compiling a jitted function's kernels in a background thread.

From its second call on, a jitted function wants its fused plan: elementwise chains fused
into generated numba kernels (`nanofn._fusion`), and primitives running their hand-written
numba kernels. Building that plan means starting numba (about a second in a fresh
process) and compiling or loading each kernel. With `nanofn.config.nanofn_background_compile`
on (the default), `jit` hands that work to one daemon thread here (`submit`) and goes on
calling the plain plan with numpy only (`_kernels.numpy_only()`), so no call waits for
numba; the first call after the job is done switches to the fused plan.

The thread builds the fused plan, then runs it once on the arguments of the call that
asked for it (results thrown away), which compiles every hand-written kernel the plan
calls, for the argument types it calls them with. That dry run is skipped for programs
with side effects (printing, callbacks), and when every fused kernel of the plan came from
the disk cache (the program ran here before: its hand-written kernels are on disk too,
and the first call loads them in milliseconds); an error in it is ignored (the caller may
have changed its arrays in place since): then hand-written kernels compile on first use,
on the calling thread.

The thread also compiles the parallel builds of kernels (`later`): queued behind the
fused plan that asked for them, so the plan is ready as early as without them, and the
calls use them once they are compiled.

Jobs run one at a time, in order. The thread runs at the process's priority: measured on
a loaded 2-core machine, a lower one (nice +5) doubled the time to the compiled plan and
made no call faster. `wait()` blocks until every job submitted so far is
done (what tests and benchmarks call when they need the compiled plan). At interpreter
exit, jobs not started are dropped and the running one is given a few seconds to finish,
so that numba is not writing its disk cache while the process ends.

The GIL. numba's compiler is mostly Python, so the thread holds the GIL much of the time,
and each time a call's numpy step releases it (every BLAS call, every large ufunc) the
call then waits up to the interpreter's switch interval (5 ms by default) to get it
back: a plan of 60 steps could wait 300 ms per call. While a build runs, the switch
interval is lowered to `SWITCH_INTERVAL` (0.5 ms; put back afterwards unless someone
changed it meanwhile). Measured on W1 under load, that halved how much a build slows the
calls (from about 3x to about 1.5-2x) without slowing the build.

Locks: the thread holds no nanofn lock of its own while it compiles; the kernel machinery
takes numba's global compiler lock before `nanofn._kernels`' lock (see `get_kernel`).
"""

from __future__ import annotations

import atexit
import collections
import sys
import threading
import time

import numpy as np

from nanofn import _core as core

EXIT_WAIT_SECONDS = 10.0  # at interpreter exit, how long the running job may finish
SWITCH_INTERVAL = 0.0005  # seconds: the interpreter's GIL switch interval during a build


class Job:
    """One fused plan to build, or with `task` one function to run (a kernel's parallel
    build: `later`). `done` is set when it is built (`plan`) or failed (`error`, with
    `plan` None)."""

    __slots__ = ("closed", "values", "done", "plan", "error", "seconds", "task")

    def __init__(self, closed, values, task=None):
        self.closed = closed
        self.values = values
        self.done = threading.Event()
        self.plan = None
        self.error = None
        self.seconds = None
        self.task = task


_cv = threading.Condition()  # guards the fields below; never held while compiling
_queue: collections.deque = collections.deque()
_unfinished = 0  # jobs submitted and not done
_worker: threading.Thread | None = None
_exiting = False
_running: Job | None = None  # the job the thread is on
built_count = 0  # fused plans built in this process (for tests)
dry_run_count = 0  # of them, those run once on their caller's arguments (for tests)


def submit(closed, values) -> Job:
    """Queue the fused plan of `closed` for the background thread; `values` are the
    numpy arguments of the call that asked (for the dry run). They may be read-only views
    of a caller's buffers (`jit` lends them): the dry run only reads them, and its results
    are dropped, so a caller writing to its buffers meanwhile changes nothing."""
    return _enqueue(Job(closed, list(values)))


def later(task) -> Job:
    """Queue `task()` (no arguments; its errors are kept on the job, not raised) for the
    background thread, after what is queued already: the parallel builds of kernels
    (`nanofn._kernels`), which calls do without until they are ready."""
    return _enqueue(Job(None, None, task))


def _enqueue(job: Job) -> Job:
    global _unfinished, _worker
    with _cv:
        if _exiting:
            job.error = RuntimeError("the interpreter is exiting")
            job.done.set()
            return job
        _queue.append(job)
        _unfinished += 1
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_loop, name="nanofn-compile", daemon=True)
            _worker.start()
        _cv.notify_all()
    return job


def _loop():
    global _unfinished, built_count, _running
    while True:
        with _cv:
            while not _queue:
                _cv.wait()
            job = _running = _queue.popleft()
        start = time.perf_counter()
        interval = sys.getswitchinterval()
        if interval > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            if job.task is not None:
                job.task()
            else:
                job.plan = build(job.closed, job.values)
        except BaseException as err:  # noqa: BLE001 - the caller falls back and reports it
            job.error = err
        finally:
            if sys.getswitchinterval() == SWITCH_INTERVAL < interval:  # unless changed since
                sys.setswitchinterval(interval)
        job.values = None
        job.seconds = time.perf_counter() - start
        with _cv:
            _unfinished -= 1
            built_count += job.task is None
            _running = None
            job.done.set()
            _cv.notify_all()


def build(closed, values=None):
    """The fused plan of `closed`, with the hand-written kernels it calls compiled by a run
    on `values`. The run is skipped when `values` is None, when the program has side
    effects, and when every fused kernel of the plan came from the disk cache: then this
    program ran on this machine before, with the same nanofn, and its hand-written kernels
    are on disk too, to be loaded (a few milliseconds each) by the first call that needs
    them. The run's buffers, results and held arguments were W1's peak memory's last 6 MB
    (docs/performance.md)."""
    from nanofn import _kernels
    from nanofn._fusion import fuse
    from nanofn._jit import Plan
    compiled, loaded = _kernels.compile_count, _kernels.cache_hit_count
    plan = Plan(fuse(closed))
    _trim()
    from_disk = _kernels.compile_count == compiled and _kernels.cache_hit_count > loaded
    if (values is not None and not from_disk
            and not any(core.has_effects(e) for e in plan.jaxpr.eqns)):
        global dry_run_count
        dry_run_count += 1
        try:
            with np.errstate(all="ignore"):
                plan(values)
        except Exception:  # noqa: BLE001 - only a warm-up (the caller may have changed
            pass  # its arrays since): the plan stands, its kernels compile on first use
        # the warm-up's buffers came from this thread's malloc arena: freed here, the
        # caller's thread allocates its own where it freed the plain plan's (`_switch`)
        plan._arenas.clear()
        _trim()
    return plan


_malloc_trim = False  # not looked up yet


def _trim():
    """Give the memory this thread freed back to the system (glibc's `malloc_trim`; a
    no-op elsewhere). glibc keeps a thread's freed memory in that thread's own arena,
    where the main thread's allocations never reuse it: without this, what numba and LLVM
    free after a compilation stays resident (about 9 MB of W1's peak)."""
    global _malloc_trim
    if _malloc_trim is False:
        _malloc_trim = None
        try:
            import ctypes
            _malloc_trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError, TypeError):
            pass
    if _malloc_trim is not None:
        _malloc_trim(0)


def wait(timeout: float | None = None) -> bool:
    """Block until every job submitted so far is done; False if `timeout` (seconds)
    passed first."""
    with _cv:
        return _cv.wait_for(lambda: _unfinished == 0, timeout)


def pending(plans_only: bool = False) -> int:
    """How many jobs are queued or running; with `plans_only`, only fused plans (not the
    parallel builds that calls do without until they are ready)."""
    if plans_only:
        with _cv:
            running = 0 if _running is None or _running.task is not None else 1
            return running + sum(1 for job in _queue if job.task is None)
    return _unfinished


def _at_exit():
    global _exiting, _unfinished
    with _cv:
        _exiting = True
        while _queue:
            job = _queue.popleft()
            job.error = RuntimeError("the interpreter is exiting")
            job.values = None
            _unfinished -= 1
            job.done.set()
        _cv.notify_all()
    wait(EXIT_WAIT_SECONDS)


atexit.register(_at_exit)
