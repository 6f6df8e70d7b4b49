"""nanofn benchmark runner: the workloads of BENCHMARKS.md, with ratios taken in one run.

    python -m benchmarks            # all workloads
    python -m benchmarks W2 W3      # some of them
    python -m benchmarks --reps 50  # more repetitions

Each workload has rows for nanofn (jit and eager), a hand-written numpy reference, and
JAX and PyTorch when they are installed. Every row reports the median over the timed
repetitions (after warm-up) with its min-max, and the ratios named in the targets are
computed from medians of this same run. The machine, library versions and BLAS
configuration are printed first. The benchmark subprocesses run with the BLAS kernels
detected for the CPU: a global OPENBLAS_CORETYPE override is removed from the child
processes' environment (nanofn itself never changes a user's environment).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def timeit(fn, reps, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3, min(times) * 1e3, max(times) * 1e3


def have(module):
    try:
        __import__(module)
        return True
    except Exception:  # noqa: BLE001 - an optional library that fails to import is absent
        return False


# ------------------------------------------------------------------------ workloads
# Each returns {row name: zero-argument callable}. Rows that need a missing library are
# left out. All data is float32, made from a fixed numpy generator.


def w1_mlp():
    """MLP 784-512-512-10, ReLU, softmax cross-entropy, batch 256, Adam step."""
    import numpy as np

    import nanofn
    import nanofn.numpy as fnp
    from nanofn import optim
    rng = np.random.default_rng(0)
    sizes = [784, 512, 512, 10]
    params = [{"w": (rng.normal(size=(m, n)) / np.sqrt(m)).astype(np.float32),
               "b": np.zeros(n, np.float32)} for m, n in zip(sizes[:-1], sizes[1:])]
    x = rng.normal(size=(256, 784)).astype(np.float32)
    y = rng.integers(0, 10, 256)
    onehot = np.eye(10, dtype=np.float32)[y]

    def loss(params, x, onehot):
        h = x
        for layer in params[:-1]:
            h = fnp.maximum(h @ layer["w"] + layer["b"], 0.0)
        logits = h @ params[-1]["w"] + params[-1]["b"]
        logits = logits - fnp.max(logits, axis=1, keepdims=True)
        logp = logits - fnp.log(fnp.sum(fnp.exp(logits), axis=1, keepdims=True))
        return -fnp.mean(fnp.sum(onehot * logp, axis=1))

    opt = optim.adam(1e-3)
    nf_params = nanofn.tree.map(fnp.asarray, params)

    def step(params, state, x, onehot):
        g = nanofn.grad(loss)(params, x, onehot)
        updates, state = opt.update(g, state, params)
        return optim.apply_updates(params, updates), state

    jstep = nanofn.jit(step)
    st = {"p": nf_params, "s": opt.init(nf_params)}
    se = {"p": nf_params, "s": opt.init(nf_params)}

    def run_jit():
        st["p"], st["s"] = jstep(st["p"], st["s"], x, onehot)

    def run_eager():
        se["p"], se["s"] = step(se["p"], se["s"], x, onehot)

    # numpy reference: forward, backward and Adam written by hand
    ref = {"p": [dict(l) for l in params], "m": [{k: np.zeros_like(v) for k, v in l.items()}
                                                 for l in params],
           "v": [{k: np.zeros_like(v) for k, v in l.items()} for l in params], "t": 0}

    def run_numpy():
        p = ref["p"]
        hs = [x]
        for layer in p[:-1]:
            hs.append(np.maximum(hs[-1] @ layer["w"] + layer["b"], 0))
        logits = hs[-1] @ p[-1]["w"] + p[-1]["b"]
        logits -= logits.max(1, keepdims=True)
        e = np.exp(logits)
        probs = e / e.sum(1, keepdims=True)
        d = (probs - onehot) / len(x)
        grads = [None] * len(p)
        for i in range(len(p) - 1, -1, -1):
            grads[i] = {"w": hs[i].T @ d, "b": d.sum(0)}
            if i:
                d = (d @ p[i]["w"].T) * (hs[i] > 0)
        ref["t"] += 1
        t = ref["t"]
        for layer, g, m, v in zip(p, grads, ref["m"], ref["v"]):
            for k in layer:
                m[k] = 0.9 * m[k] + 0.1 * g[k]
                v[k] = 0.999 * v[k] + 0.001 * g[k] * g[k]
                mh = m[k] / (1 - 0.9 ** t)
                vh = v[k] / (1 - 0.999 ** t)
                layer[k] = layer[k] - 1e-3 * mh / (np.sqrt(vh) + 1e-8)

    rows = {"nanofn jit": run_jit, "nanofn eager": run_eager, "numpy": run_numpy}
    if have("jax"):
        import jax
        import jax.numpy as jnp

        def jloss(params, x, onehot):
            h = x
            for layer in params[:-1]:
                h = jnp.maximum(h @ layer["w"] + layer["b"], 0.0)
            logits = h @ params[-1]["w"] + params[-1]["b"]
            return -jnp.mean(jnp.sum(onehot * jax.nn.log_softmax(logits), axis=1))

        def jadam_step(params, m, v, t):
            g = jax.grad(jloss)(params, x, onehot)
            m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
            v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
            params = jax.tree.map(lambda p, m, v: p - 1e-3 * (m / (1 - 0.9 ** t)) /
                                  (jnp.sqrt(v / (1 - 0.999 ** t)) + 1e-8), params, m, v)
            return params, m, v

        jstate = {"p": jax.tree.map(jnp.asarray, params)}
        jstate["m"] = jax.tree.map(jnp.zeros_like, jstate["p"])
        jstate["v"] = jax.tree.map(jnp.zeros_like, jstate["p"])
        jj = jax.jit(jadam_step)

        def run_jax():
            jstate["p"], jstate["m"], jstate["v"] = jj(jstate["p"], jstate["m"], jstate["v"], 1.0)
            jax.block_until_ready(jstate["p"])
        rows["jax jit"] = run_jax
    return rows


def w2_small_grad():
    """grad of a ~30-op elementwise scalar function on a 16-element vector."""
    import numpy as np

    import nanofn
    import nanofn.numpy as fnp
    x = np.linspace(-1, 1, 16).astype(np.float32)

    def f(x, np_=fnp):
        y = x
        for _ in range(3):
            y = np_.sin(y) * 0.5 + np_.cos(y)
            y = np_.exp(-y * y) + np_.tanh(y) / 3.0
            y = y * y + y / (1.0 + y * y)
        return np_.sum(y)

    g = nanofn.grad(f)
    jg = nanofn.jit(g)
    xa = fnp.asarray(x)
    rows = {"nanofn jit(grad)": lambda: jg(xa), "nanofn eager grad": lambda: g(xa),
            "numpy forward only": lambda: f(x, np)}
    if have("jax"):
        import jax
        import jax.numpy as jnp
        jgrad = jax.jit(jax.grad(lambda x: f(x, jnp)))
        rows["jax jit(grad)"] = lambda: jgrad(x).block_until_ready()
    if have("torch"):
        import torch
        tx = torch.tensor(x, requires_grad=True)

        def run_torch():
            tx.grad = None
            f(tx, torch).backward()
        rows["torch eager grad"] = run_torch
    return rows


def w3_big_elementwise():
    """value_and_grad of sum(tanh(x)*sin(x) + 0.5*exp(-x*x) + x/(1+x*x)) on 4M elements."""
    import numpy as np

    import nanofn
    import nanofn.numpy as fnp
    x = np.random.default_rng(0).normal(size=4_000_000).astype(np.float32)

    def f(x):
        return fnp.sum(fnp.tanh(x) * fnp.sin(x) + 0.5 * fnp.exp(-x * x) + x / (1 + x * x))

    vg = nanofn.value_and_grad(f)
    jvg = nanofn.jit(vg)

    def numpy_ref():
        t, s, e = np.tanh(x), np.sin(x), np.exp(-x * x)
        d = 1 + x * x
        val = np.sum(t * s + 0.5 * e + x / d)
        grad = (1 - t * t) * s + t * np.cos(x) - x * e + (1 - x * x) / (d * d)
        return val, grad

    rows = {"nanofn jit": lambda: jvg(x), "nanofn eager": lambda: vg(x), "numpy": numpy_ref}
    if have("jax"):
        import jax
        import jax.numpy as jnp
        jf = jax.jit(jax.value_and_grad(lambda x: jnp.sum(jnp.tanh(x) * jnp.sin(x) + 0.5 *
                                                           jnp.exp(-x * x) + x / (1 + x * x))))
        rows["jax jit"] = lambda: jax.block_until_ready(jf(x))
    return rows


def w4_convnet():
    """convnet train step, batch 64x28x28x1: conv3x3(16)+relu+pool, conv3x3(32)+relu+pool,
    dense 10, softmax CE, SGD."""
    import numpy as np

    import nanofn
    import nanofn.numpy as fnp
    from nanofn import lax
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 28, 28, 1)).astype(np.float32)
    onehot = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 64)]
    params = {"c1": (rng.normal(size=(3, 3, 1, 16)) * 0.3).astype(np.float32),
              "c2": (rng.normal(size=(3, 3, 16, 32)) * 0.1).astype(np.float32),
              "w": (rng.normal(size=(7 * 7 * 32, 10)) * 0.02).astype(np.float32),
              "b": np.zeros(10, np.float32)}
    dn = ("NHWC", "HWIO", "NHWC")

    def loss(p, x, onehot):
        h = lax.conv_general_dilated(x, p["c1"], (1, 1), "SAME", dimension_numbers=dn)
        h = lax.reduce_window(fnp.maximum(h, 0.0), -np.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                              "VALID")
        h = lax.conv_general_dilated(h, p["c2"], (1, 1), "SAME", dimension_numbers=dn)
        h = lax.reduce_window(fnp.maximum(h, 0.0), -np.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                              "VALID")
        logits = h.reshape(64, -1) @ p["w"] + p["b"]
        logits = logits - fnp.max(logits, axis=1, keepdims=True)
        logp = logits - fnp.log(fnp.sum(fnp.exp(logits), axis=1, keepdims=True))
        return -fnp.mean(fnp.sum(onehot * logp, axis=1))

    def step(p, x, onehot):
        g = nanofn.grad(loss)(p, x, onehot)
        return nanofn.tree.map(lambda a, b: a - 0.01 * b, p, g)

    jstep = nanofn.jit(step)
    box = {"j": nanofn.tree.map(fnp.asarray, params), "e": nanofn.tree.map(fnp.asarray, params)}

    def run_jit():
        box["j"] = jstep(box["j"], x, onehot)

    def run_eager():
        box["e"] = step(box["e"], x, onehot)

    rows = {"nanofn jit": run_jit, "nanofn eager": run_eager}
    if have("jax"):
        import jax
        import jax.numpy as jnp

        def jloss(p, x, onehot):
            h = jax.lax.conv_general_dilated(x, p["c1"], (1, 1), "SAME", dimension_numbers=dn)
            h = jax.lax.reduce_window(jnp.maximum(h, 0.0), -jnp.inf, jax.lax.max, (1, 2, 2, 1),
                                      (1, 2, 2, 1), "VALID")
            h = jax.lax.conv_general_dilated(h, p["c2"], (1, 1), "SAME", dimension_numbers=dn)
            h = jax.lax.reduce_window(jnp.maximum(h, 0.0), -jnp.inf, jax.lax.max, (1, 2, 2, 1),
                                      (1, 2, 2, 1), "VALID")
            logits = h.reshape(64, -1) @ p["w"] + p["b"]
            return -jnp.mean(jnp.sum(onehot * jax.nn.log_softmax(logits), axis=1))

        jj = jax.jit(lambda p: jax.tree.map(lambda a, b: a - 0.01 * b, p,
                                            jax.grad(jloss)(p, x, onehot)))
        jbox = {"p": params}

        def run_jax():
            jbox["p"] = jax.block_until_ready(jj(jbox["p"]))
        rows["jax jit"] = run_jax
    return rows


def w6_import():
    """`import nanofn` in a fresh process (seconds), and whether numba got imported."""
    code = ("import time, sys; t = time.perf_counter(); import nanofn; "
            "print(time.perf_counter() - t, 'numba' in sys.modules)")
    return code


WORKLOADS = {"W1": ("MLP train step (Adam)", w1_mlp),
             "W2": ("grad of 30-op scalar fn, 16 elems", w2_small_grad),
             "W3": ("value_and_grad, 4M elementwise", w3_big_elementwise),
             "W4": ("convnet train step (SGD)", w4_convnet)}

RATIOS = {  # (numerator row, denominator row): target
    "W1": [("nanofn jit", "jax jit", 1.0), ("nanofn eager", "numpy", 1.5)],
    "W2": [("nanofn jit(grad)", "jax jit(grad)", 1.5), ("nanofn eager grad", "torch eager grad", 1.0)],
    "W3": [("nanofn jit", "numpy", 1.0), ("nanofn eager", "numpy", 1.5)],
    "W4": [("nanofn jit", "jax jit", 1.0)],
}


def run_one(wid, reps):
    """Run one workload in this process and return its rows as JSON-able data."""
    _, make = WORKLOADS[wid]
    rows = make()
    return {name: timeit(fn, reps) for name, fn in rows.items()}


def describe_machine():
    import numpy as np
    info = {"python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "numpy": np.__version__}
    for mod in ("numba", "jax", "torch"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            info[mod] = "not installed"
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info["blas"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # noqa: BLE001
        info["blas"] = "unknown"
    try:
        from threadpoolctl import threadpool_info
        info["blas_runtime"] = "; ".join(f"{p.get('internal_api')} {p.get('architecture', '')} "
                                         f"threads={p.get('num_threads')}" for p in threadpool_info())
    except Exception:  # noqa: BLE001
        pass
    return info


def child_env():
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)  # use the kernels detected for this CPU
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="nanofn benchmarks (see BENCHMARKS.md)")
    ap.add_argument("workloads", nargs="*", default=["W1", "W2", "W3", "W4", "W6"])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(args.child, args.reps)))
        return
    print("machine:", json.dumps(describe_machine()))
    print(f"OPENBLAS_CORETYPE in this shell: {os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; "
          "benchmarks run without it")
    print(f"median ms over {args.reps} reps after warm-up [min-max]; ratios from this run\n")
    for wid in args.workloads:
        if wid == "W6":
            run_w6(args.reps)
            continue
        title, _ = WORKLOADS[wid]
        out = subprocess.run([sys.executable, "-m", "benchmarks.run", "--child", wid, "--reps",
                              str(args.reps)], capture_output=True, text=True, env=child_env(),
                             cwd=ROOT)
        if out.returncode:
            print(f"{wid} {title}: FAILED\n{out.stderr[-2000:]}")
            continue
        rows = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{wid} {title}")
        for name, (med, lo, hi) in rows.items():
            print(f"  {name:24s} {med:10.3f}  [{lo:.3f}-{hi:.3f}]")
        for num, den, target in RATIOS.get(wid, []):
            if num in rows and den in rows:
                r = rows[num][0] / rows[den][0]
                ok = "meets" if r <= target else "misses"
                print(f"  ratio {num} / {den} = {r:.2f}  (target <= {target}: {ok})")
        print()


def run_w6(reps):
    code = w6_import()
    times, numba_loaded = [], False
    for _ in range(max(5, reps // 4)):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=child_env(), cwd=ROOT)
        t, loaded = out.stdout.split()
        times.append(float(t))
        numba_loaded |= loaded == "True"
    print("W6 start-up")
    print(f"  import nanofn (s)        {statistics.median(times):10.3f}  "
          f"[{min(times):.3f}-{max(times):.3f}]  numba imported: {numba_loaded}  (target <= 0.25 s)")
    print()


if __name__ == "__main__":
    main()
