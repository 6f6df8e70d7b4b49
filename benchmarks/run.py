"""nanofn benchmark runner: the workloads of BENCHMARKS.md, with ratios taken in one run.

    python -m benchmarks                # all workloads, W1-W6
    python -m benchmarks W1 W4          # some of them
    python -m benchmarks --reps 50      # more repetitions (default 20)
    python -m benchmarks --quick        # small sizes, 3 reps: checks that every row runs

The workloads are defined once, in `benchmarks/workloads.py`. Each has rows for nanofn
(jit and eager), a hand-written numpy reference, and JAX and PyTorch when they are
installed. Each workload runs in its own child process; its rows are warmed up, then
timed in interleaved rounds (every row once per round, so they share the machine's
state), and each row reports the median with its min-max. The ratios named in the
targets are computed from medians of the same run. A row that fails prints its error and
the others go on.

W6 runs fresh processes: `import nanofn`; the first calls of the jitted W1 step with an
empty kernel cache and again with the cache warm (JAX's first call, in two fresh
processes, for comparison); and the peak RSS of a process that runs W1 steps.

The machine, library versions and BLAS configuration are printed first. The child
processes run with the BLAS kernels detected for the CPU: an OPENBLAS_CORETYPE override
in the environment is removed from theirs (nanofn itself never changes a user's
environment).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CHILD_TIMEOUT = 1800  # seconds for one child process


def available(module):
    """Whether an optional library is installed (without importing it)."""
    import importlib.util
    return module is None or importlib.util.find_spec(module) is not None


# ------------------------------------------------------------------------ timing (children)


def time_rows(fns, reps, warmup=3):
    """Warm up every row, then time `reps` interleaved rounds; a failing row is dropped
    with its error. Returns {row: (median ms, min ms, max ms) or {"error": message}}."""
    results, live = {}, {}
    for name, fn in fns.items():
        try:
            for _ in range(warmup):
                fn()
            live[name] = []
        except Exception as err:  # noqa: BLE001 - report and go on with the other rows
            results[name] = {"error": f"{type(err).__name__}: {err}"[:500]}
    # time jit's compiled plans, not the numpy path they run while they compile
    if "nanofn" in sys.modules and _wait_for_nanofn():
        for name in list(live):  # the call that switches to the compiled plan
            fns[name]()
    for _ in range(reps):
        for name in list(live):
            t = time.perf_counter()
            try:
                fns[name]()
            except Exception as err:  # noqa: BLE001
                results[name] = {"error": f"{type(err).__name__}: {err}"[:500]}
                del live[name]
                continue
            live[name].append(time.perf_counter() - t)
    for name, times in live.items():
        results[name] = (statistics.median(times) * 1e3, min(times) * 1e3, max(times) * 1e3)
    return {name: results[name] for name in fns}


def _wait_for_nanofn() -> bool:
    """Wait for nanofn's background kernel builds; whether any was pending (a nanofn
    without them: False)."""
    try:
        from nanofn import _background, warmup
    except ImportError:
        return False
    pending = _background.pending() > 0
    warmup.wait()
    return pending


def numba_threads_started():
    """Whether numba's parallel threading layer was started in this process."""
    if "numba" not in sys.modules:
        return False
    import numba
    try:
        numba.threading_layer()
    except ValueError:  # "threading layer is not initialized"
        return False
    return True


def child_workload(wid, reps, small):
    from benchmarks.workloads import WORKLOADS
    w = WORKLOADS[wid]
    sizes = w.small if small else w.sizes
    fns, out = {}, {}
    # nanofn decides on its parallel kernels before PyTorch is imported, as in a program
    # that uses nanofn first: numba's OpenMP layer loads GNU OpenMP with passive threads,
    # and PyTorch's `libgomp.so.1` is then that same library. Imported the other way
    # round, PyTorch's spinning OpenMP threads make nanofn keep to its serial kernels
    # (`nanofn._kernels._openmp_loaded_spinning`; docs/performance.md, "Threads").
    if any(name.startswith("nanofn") for name in w.rows):
        from nanofn import _kernels
        _kernels.parallel_threads()
    for name, (module, builder) in w.rows.items():
        if not available(module):
            out[name] = {"skipped": f"{module} is not installed"}
            continue
        try:
            fns[name] = builder(**sizes)
        except Exception as err:  # noqa: BLE001
            out[name] = {"error": f"{type(err).__name__}: {err}"[:500]}
    timed = time_rows(fns, reps)
    rows = {name: out.get(name, timed.get(name)) for name in w.rows}
    return {"rows": rows, "numba_threads_started": numba_threads_started()}


def child_first_calls(lib, small):
    """Seconds for the first three calls of the jitted W1 step (the first traces and
    compiles; nanofn builds its fused plan from its second call, in a background thread
    unless NANOFN_BACKGROUND_COMPILE=0). Data and device setup come before. For nanofn,
    calls go on until the compiled plan runs: how many ran on numpy meanwhile, the
    slowest call after the first, and when the compiled plan was ready."""
    from benchmarks.workloads import build
    run = build("W1", "nanofn jit" if lib == "nanofn" else "jax jit", small)
    ready = (lambda: True) if lib != "nanofn" else _nanofn_ready
    times, numpy_calls = [], 0
    start = time.perf_counter()
    for i in range(3):
        numpy_calls += i == 0 or (i > 0 and not ready())
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    out = {"calls": times}
    if lib == "nanofn":
        from nanofn import _kernels
        more = []
        while not ready() and time.perf_counter() - start < 300:
            t = time.perf_counter()
            run()
            more.append(time.perf_counter() - t)
        out["ready_after"] = time.perf_counter() - start
        out["numpy_calls"] = numpy_calls + len(more)
        out["slowest_after_first"] = max(times[1:] + more)
        out["compiled"] = _kernels.compile_count
        out["loaded"] = _kernels.cache_hit_count
    return out


def _nanofn_ready():
    """Whether no background kernel build is pending (the next call runs compiled)."""
    try:
        from nanofn import _background, _config
        try:  # the fused plan, not the parallel builds that follow it
            busy = _background.pending(plans_only=True)
        except TypeError:  # a nanofn without parallel builds
            busy = _background.pending()
        return not (_config.config.nanofn_background_compile and busy)
    except (ImportError, AttributeError):  # a nanofn without background builds
        return True


def _rss_now():
    """Resident memory now (MB; Linux), else the peak so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_rss_parts(steps, small):
    """Resident memory (MB) of a nanofn W1 process at each stage, with the numba,
    llvmlite and scipy modules loaded by then."""
    import resource
    stages = []

    def mark(label):
        counts = {p: sum(1 for m in sys.modules if m == p or m.startswith(p + "."))
                  for p in ("numba", "llvmlite", "scipy")}
        stages.append([label, round(_rss_now(), 1), counts])

    mark("python")
    import numpy  # noqa: F401
    mark("import numpy")
    import nanofn  # noqa: F401
    mark("import nanofn")
    from benchmarks.workloads import build
    run = build("W1", "nanofn jit", small)
    mark("W1 data and params")
    run()
    mark("1st call (numpy)")
    run()
    run()
    mark("3rd call")
    _wait_for_nanofn()
    mark("kernels compiled")
    for _ in range(steps):
        run()
    mark(f"{steps} more steps")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"stages": stages, "peak_rss_mb": peak}


def child_rss(row, steps, small):
    """Peak resident memory (MB) of a process that runs `steps` W1 steps of one row."""
    import resource
    if row != "python + numpy":
        from benchmarks.workloads import build
        run = build("W1", row, small)
        for _ in range(steps):
            run()
        if "nanofn" in sys.modules:  # a run that lasts: its kernels compiled and loaded
            _wait_for_nanofn()
            for _ in range(3):
                run()
    else:
        import numpy  # noqa: F401
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child_import():
    t = time.perf_counter()
    import nanofn  # noqa: F401
    return {"seconds": time.perf_counter() - t, "numba_imported": "numba" in sys.modules}


# ------------------------------------------------------------------------ machine description


def _openblas_runtime():
    """The OpenBLAS core type and thread count in use (threadpoolctl, else numpy's bundled
    scipy-openblas through ctypes)."""
    try:
        from threadpoolctl import threadpool_info
        return "; ".join(f"{p.get('internal_api')} {p.get('version', '')} "
                         f"{p.get('architecture', '')} threads={p.get('num_threads')}"
                         for p in threadpool_info())
    except Exception:  # noqa: BLE001 - threadpoolctl is optional
        pass
    import ctypes
    import glob
    import numpy as np
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs",
                                  "libscipy_openblas*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""),
                               ("openblas", "64_"), ("openblas", "")):
            try:
                core = getattr(lib, f"{prefix}_get_corename{suffix}")
                threads = getattr(lib, f"{prefix}_get_num_threads{suffix}")
            except AttributeError:
                continue
            core.restype = ctypes.c_char_p
            return f"OpenBLAS core {core().decode()} threads={threads()}"
    return "unknown (threadpoolctl not installed, OpenBLAS library not found)"


def child_describe():
    import importlib.metadata as md
    import numpy as np
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            cpu = [line.split(":", 1)[1].strip() for line in f if line.startswith(
                ("model name", "flags"))]
        info["cpu"] = cpu[0]
        flags = cpu[1].split() if len(cpu) > 1 else []
        info["simd"] = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_vnni") if f in flags)
    except (OSError, IndexError):
        info["cpu"] = platform.processor() or platform.machine()
    for pkg in ("numpy", "numba", "jax", "jaxlib", "torch"):
        try:
            info[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            info[pkg] = "not installed"
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas_build"] = (f"{blas.get('name', '?')} {blas.get('version', '')} "
                              f"({blas.get('openblas configuration', '')})").strip()
    except Exception:  # noqa: BLE001
        info["blas_build"] = "unknown"
    info["blas_runtime"] = _openblas_runtime()
    info["env"] = {k: os.environ.get(k, "(unset)") for k in (
        "OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
        "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER")}
    try:
        import numba
        info["numba_config"] = (f"threading layer setting {numba.config.THREADING_LAYER!r}, "
                                f"NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}")
    except ImportError:
        pass
    info["nanofn_kernels"] = ("nogil; fused elementwise loops of 65536+ elements on numba's "
                              "threads (NANOFN_PARALLEL_KERNELS="
                              f"{os.environ.get('NANOFN_PARALLEL_KERNELS', '1')}), the rest "
                              "single-threaded; BLAS keeps its own threads")
    if available("torch"):
        import torch
        info["torch_threads"] = torch.get_num_threads()
    return info


# ------------------------------------------------------------------------ parent


THREADS = None  # --threads N: thread count for every library in the children


def child_env(extra=None):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)  # use the kernels detected for this CPU
    # Python's own default: bytecode cached in __pycache__. With PYTHONDONTWRITEBYTECODE
    # set, every `import nanofn` (a source checkout) compiles 80 modules again (0.17 s
    # here), while numpy, JAX and PyTorch load the bytecode pip compiled at install time.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if THREADS:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS"):
            env[var] = str(THREADS)
        if THREADS == 1:  # XLA's CPU client: no intra-op thread pool
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                                " --xla_cpu_multi_thread_eigen=false").strip()
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def one_cpu():
    """With `--threads 1`, the CPU a workload child is pinned to (None: no pinning). The
    thread-count settings alone do not hold every library to one core: XLA's CPU client
    with `--xla_cpu_multi_thread_eigen=false` still ran W1 on two cores here (4.2 ms a
    step, against 7.6 ms pinned to one), so a one-thread row could borrow a second core.
    Pinning the whole process makes "one thread" mean one core for every row."""
    if THREADS != 1 or not hasattr(os, "sched_getaffinity"):
        return None
    return max(os.sched_getaffinity(0))


def run_child(args, extra_env=None, cpu=None):
    """Runs `python -m benchmarks.run --child ...args` (on CPU `cpu` alone, if given);
    returns (JSON result, error text)."""
    cmd = [sys.executable, "-m", "benchmarks.run", "--child", *map(str, args)]
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=child_env(extra_env),
                             cwd=ROOT, timeout=CHILD_TIMEOUT, preexec_fn=pin)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {CHILD_TIMEOUT} s"
    if out.returncode:
        return None, (out.stderr or out.stdout)[-2000:]
    try:
        return json.loads(out.stdout.strip().splitlines()[-1]), None
    except (ValueError, IndexError):
        return None, f"unreadable output: {out.stdout[-500:]} {out.stderr[-1500:]}"


JUDGE = True  # False under --quick: small sizes say nothing about the targets


def verdict(ratio, target):
    if not JUDGE:
        return f"target <= {target}, not judged at --quick sizes"
    return f"target <= {target}: {'meets' if ratio <= target else 'misses'}"


def report_workload(wid, reps, small, summary):
    from benchmarks.workloads import WORKLOADS
    w = WORKLOADS[wid]
    print(f"{wid} {w.title}")
    res, err = run_child([wid, "--reps", reps] + (["--small"] if small else []),
                         cpu=one_cpu())
    if err:
        print(f"  FAILED:\n{err}\n")
        return
    rows = res["rows"]
    for name, r in rows.items():
        if isinstance(r, dict):
            what = r.get("skipped") or f"ERROR {r.get('error')}"
            print(f"  {name:26s} {'-':>10s}  ({what})")
        else:
            med, lo, hi = r
            print(f"  {name:26s} {med:10.3f}  [{lo:.3f}-{hi:.3f}]")
    for num, den, target in w.ratios:
        if isinstance(target, tuple):  # (one thread, library-default threads)
            target = target[0] if THREADS == 1 else target[1]
        if isinstance(rows.get(num), list) and isinstance(rows.get(den), list):
            ratio = rows[num][0] / rows[den][0]
            print(f"  ratio {num} / {den} = {ratio:.2f}  ({verdict(ratio, target)})")
            summary.append((f"{wid} {num} / {den}", ratio, target))
        else:
            print(f"  ratio {num} / {den}: not measured (a row is missing)")
    if res.get("numba_threads_started"):
        print("  note: numba's threading layer ran in this process (nanofn's parallel loops)")
    print()


def report_w6(reps, small, summary):
    print("W6 start-up, first calls and memory")
    # import nanofn
    times, numba_loaded = [], False
    run_child(["import"])  # writes nanofn's bytecode cache, as a first import after install
    for _ in range(max(5, reps // 2)):
        res, err = run_child(["import"])
        if err:
            print(f"  import nanofn: FAILED\n{err}")
            break
        times.append(res["seconds"])
        numba_loaded |= res["numba_imported"]
    if times:
        med = statistics.median(times)
        print(f"  import nanofn (s)          {med:10.3f}  [{min(times):.3f}-{max(times):.3f}]"
              f"  numba imported: {numba_loaded}  (target <= 0.25 s)")
        summary.append(("W6 import nanofn (s)", med, 0.25))
    # first calls of the jitted W1 step
    quick = ["--small"] if small else []
    cache = tempfile.mkdtemp(prefix="nanofn-bench-cache-")
    env = {"NANOFN_CACHE_DIR": os.path.join(cache, "nanofn"),
           "NUMBA_CACHE_DIR": os.path.join(cache, "numba")}
    first = {}
    blocking = dict(env, NANOFN_BACKGROUND_COMPILE="0",
                    NANOFN_CACHE_DIR=os.path.join(cache, "nanofn-b"),
                    NUMBA_CACHE_DIR=os.path.join(cache, "numba-b"))
    try:
        for label, lib, extra in (("nanofn, empty cache", "nanofn", env),
                                  ("nanofn, cache warm", "nanofn", env),
                                  ("blocking, empty cache", "nanofn", blocking),
                                  ("blocking, cache warm", "nanofn", blocking),
                                  ("jax, fresh process 1", "jax", None),
                                  ("jax, fresh process 2", "jax", None)):
            if not available(lib if lib == "jax" else None):
                print(f"  first calls, {label}: skipped (not installed)")
                continue
            res, err = run_child(["first", lib] + quick, extra)
            if err:
                print(f"  first calls, {label}: FAILED\n{err}")
                continue
            c = res["calls"]
            first[label] = c
            kern = (f"; kernels compiled {res['compiled']}, loaded from cache {res['loaded']}"
                    if "compiled" in res else "")
            print(f"  W1 jit, {label:22s} 1st call {c[0]:7.3f} s, 2nd {c[1]:7.3f} s, "
                  f"3rd {c[2]:7.3f} s{kern}")
            if "ready_after" in res:
                print(f"  {'':32s}compiled plan ready {res['ready_after']:.2f} s after the "
                      f"1st call began; {res['numpy_calls']} calls ran on numpy meanwhile; "
                      f"slowest call after the 1st {res['slowest_after_first']:.3f} s")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    jax_runs = [first[k] for k in ("jax, fresh process 1", "jax, fresh process 2") if k in first]
    if jax_runs:
        jax_first = statistics.mean(c[0] for c in jax_runs)
        jax_two = statistics.mean(c[0] + c[1] for c in jax_runs)
        for label, target in (("nanofn, empty cache", 1.0), ("nanofn, cache warm", 0.25)):
            if label in first:
                c = first[label]
                r1, r2 = c[0] / jax_first, (c[0] + c[1]) / jax_two
                print(f"  ratio first call, {label} / jax = {r1:.2f}; first two calls = {r2:.2f}"
                      f"  ({verdict(max(r1, r2), target)})")
                summary.append((f"W6 first calls, {label} / jax", max(r1, r2), target))
    # peak RSS
    steps = 5 if small else max(20, reps)
    res, err = run_child(["rssparts", "--steps", steps] + quick)
    if err:
        print(f"  RSS by stage: FAILED\n{err}")
    else:
        print("  RSS by stage (MB, nanofn jit W1; modules loaded: numba / llvmlite / scipy)")
        prev = None
        for label, mb, counts in res["stages"]:
            delta = f"+{mb - prev:6.1f}" if prev is not None else " " * 7
            print(f"    {label:26s} {mb:7.1f} {delta}   {counts['numba']:4d} / "
                  f"{counts['llvmlite']:3d} / {counts['scipy']:3d}")
            prev = mb
        print(f"    peak                       {res['peak_rss_mb']:7.1f}")
    rss = {}
    for row, lib in (("python + numpy", None), ("nanofn jit", None), ("nanofn eager", None),
                     ("numpy", None), ("jax jit", "jax"), ("torch", "torch")):
        if not available(lib):
            print(f"  peak RSS, {row}: skipped ({lib} not installed)")
            continue
        res, err = run_child(["rss", row, "--steps", steps] + quick)
        if err:
            print(f"  peak RSS, {row}: FAILED\n{err}")
            continue
        rss[row] = res["peak_rss_mb"]
        print(f"  peak RSS (MB), {row:18s} {rss[row]:8.1f}  ({steps} W1 steps)"
              if row != "python + numpy" else
              f"  peak RSS (MB), {row:18s} {rss[row]:8.1f}  (no work: the floor)")
    if "nanofn jit" in rss and "jax jit" in rss:
        r = rss["nanofn jit"] / rss["jax jit"]
        print(f"  ratio peak RSS nanofn jit / jax jit = {r:.2f}  ({verdict(r, 0.5)})")
        summary.append(("W6 peak RSS nanofn jit / jax jit", r, 0.5))
    print()


ALL = ["W1", "W2", "W3", "W4", "W5", "W6", "W7"]


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(prog="python -m benchmarks",
                                 description="nanofn benchmarks (workloads of BENCHMARKS.md)")
    ap.add_argument("workloads", nargs="*", default=ALL, metavar="W",
                    help=f"workload ids (default: all of {' '.join(ALL)})")
    ap.add_argument("--reps", type=int, default=20, help="timed repetitions per row")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes and 3 reps: a smoke test that every row runs")
    ap.add_argument("--threads", type=int, default=None,
                    help="thread count for BLAS, OpenMP (PyTorch), numba and XLA in the "
                         "benchmark processes (default: each library's own default)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--small", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=20, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, rest = args.child[0], args.child[1:]
        if kind == "describe":
            out = child_describe()
        elif kind == "import":
            out = child_import()
        elif kind == "first":
            out = child_first_calls(rest[0], args.small)
        elif kind == "rss":
            out = child_rss(rest[0], args.steps, args.small)
        elif kind == "rssparts":
            out = child_rss_parts(args.steps, args.small)
        else:
            out = child_workload(kind, args.reps, args.small)
        print(json.dumps(out))
        return
    unknown = [w for w in args.workloads if w not in ALL]
    if unknown:
        ap.error(f"unknown workload(s) {unknown}; choose from {ALL}")
    reps = 3 if args.quick else args.reps
    global THREADS, JUDGE
    THREADS = args.threads
    JUDGE = not args.quick
    info, err = run_child(["describe"])
    print("machine:", json.dumps(info) if info else f"(description failed: {err})")
    print(f"OPENBLAS_CORETYPE in this shell: {os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; "
          "the benchmarks run without it")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("PYTHONDONTWRITEBYTECODE is set in this shell; the benchmarks run without it "
              "(bytecode cached, as after pip install)")
    print(f"command: python -m benchmarks {' '.join(argv if argv is not None else sys.argv[1:])}"
          f"; load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if one_cpu() is not None:
        print(f"--threads 1: each workload's process is pinned to CPU {one_cpu()}")
    print(f"median ms over {reps} interleaved reps after warm-up [min-max]; ratios from this "
          "run" + ("; --quick: SMALL sizes, ratios mean nothing" if args.quick else "") + "\n")
    summary = []
    for wid in args.workloads:
        if wid == "W6":
            report_w6(reps, args.quick, summary)
        else:
            report_workload(wid, reps, args.quick, summary)
    if summary:
        print("targets (ratios from this run)")
        for name, value, target in summary:
            print(f"  {name:52s} {value:7.2f}  {verdict(value, target)}")


if __name__ == "__main__":
    main()
