"""Record reference values from JAX for tests/nn/test_jax_nn_parity.py.

Run with a Python that has JAX (0.10.2 was used) and nanofn's repository on the path:

    PYTHONPATH=. python tools/reference/record_jax_nn.py

It writes tests/nn/data/jax_nn_reference.npz: inputs and JAX's outputs (values,
gradients, dtypes) for the behaviours where nanofn once differed from JAX:
relu6 of integers, celu's second derivative at 0, log1mexp's derivative, standardize's
`algorithm`, logsumexp with negative weights, masked softmax / log_softmax with nan,
+-inf and fully masked slices, and every initializer (values for fixed keys, float32 and
float64, fan modes and axes). The test needs no JAX.
"""

from __future__ import annotations

import os
import sys

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)  # float64 references; float32 ones asked for
import jax.numpy as jnp

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "nn", "data",
                   "jax_nn_reference.npz")

ref: dict[str, np.ndarray] = {}


def put(name, value):
    value = np.asarray(value)
    assert name not in ref, name
    ref[name] = value


def main():
    J = jax.nn
    I = jax.nn.initializers

    # --- elementwise functions: values and first/second derivatives -----------------
    special = np.array([0.0, -0.0, 1e-8, -1e-8, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0, 6.0,
                        -6.0, 20.0, -20.0, 100.0, -100.0, np.inf, -np.inf, np.nan])
    put("special", special)
    for dt in ("float32", "float64"):
        x = jnp.asarray(special, dt)
        for alpha in (1.0, 0.5, 2.0):
            f = lambda v, a=alpha: J.celu(v, a)
            put(f"celu/{alpha}/{dt}/value", f(x))
            put(f"celu/{alpha}/{dt}/grad", jax.vmap(jax.grad(f))(x))
            put(f"celu/{alpha}/{dt}/grad2", jax.vmap(jax.grad(jax.grad(f)))(x))
        put(f"log1mexp/{dt}/value", J.log1mexp(x))
        put(f"log1mexp/{dt}/grad", jax.vmap(jax.grad(J.log1mexp))(x))
        put(f"relu6/{dt}/value", J.relu6(x))
        put(f"relu6/{dt}/grad", jax.vmap(jax.grad(J.relu6))(x))
    ints = np.array([-3, 0, 2, 6, 9], np.int32)
    put("relu6/int32/input", ints)
    put("relu6/int32/value", J.relu6(jnp.asarray(ints)))

    # --- standardize ----------------------------------------------------------------
    rng = np.random.default_rng(0)
    xs = (rng.normal(size=(3, 4, 6)) * 2 + 1).astype(np.float64)
    mask = rng.random(xs.shape) > 0.3
    put("standardize/x", xs)
    put("standardize/mask", mask)
    for alg in ("fast", "stable"):
        for ax_name, ax in (("last", -1), ("0", 0), ("02", (0, 2)), ("all", None)):
            for dt in ("float32", "float64"):
                xv = jnp.asarray(xs, dt)
                put(f"standardize/{alg}/{ax_name}/{dt}",
                    J.standardize(xv, axis=ax, algorithm=alg))
                put(f"standardize/{alg}/{ax_name}/{dt}/where",
                    J.standardize(xv, axis=ax, algorithm=alg, where=jnp.asarray(mask)))
            put(f"standardize/{alg}/{ax_name}/grad",
                jax.grad(lambda v, ax=ax, alg=alg: jnp.sum(jnp.sin(
                    J.standardize(v, axis=ax, algorithm=alg))))(
                    jnp.asarray(xs)))
    put("standardize/default/last/float64", J.standardize(jnp.asarray(xs)))
    x32 = jnp.asarray(xs, "float32")
    put("standardize/scalars/dtype", np.array(str(J.standardize(x32, mean=0.5,
                                                                 variance=2.0).dtype)))

    # --- logsumexp with signed weights ----------------------------------------------
    a = rng.normal(size=(4, 5)) * 2
    b = rng.normal(size=(4, 5))
    put("lse/a", a)
    put("lse/b", b)
    for ax_name, ax in (("last", -1), ("0", 0), ("all", None)):
        put(f"lse/{ax_name}/value", J.logsumexp(jnp.asarray(a), axis=ax, b=jnp.asarray(b)))
        ga, gb = jax.grad(lambda u, w, ax=ax: jnp.sum(jnp.nan_to_num(
            J.logsumexp(u, axis=ax, b=w))), argnums=(0, 1))(jnp.asarray(a), jnp.asarray(b))
        put(f"lse/{ax_name}/grad_a", ga)
        put(f"lse/{ax_name}/grad_b", gb)
        out, sign = J.logsumexp(jnp.asarray(a), axis=ax, b=jnp.asarray(b), return_sign=True)
        put(f"lse/{ax_name}/sign_value", out)
        put(f"lse/{ax_name}/sign", sign)

    # --- masked softmax / log_softmax ----------------------------------------------
    rows = np.array([[0.0, 1.0, 2.0, -1.0],
                     [np.nan, 0.0, 1.0, 2.0],
                     [np.inf, 0.0, 1.0, 2.0],
                     [-np.inf, -np.inf, -np.inf, -np.inf],
                     [-np.inf, 0.0, 1.0, 2.0],
                     [1e30, 0.0, -1e30, 2.0],
                     [3.0, 1.0, 4.0, 1.5]])
    wmask = np.array([[True, True, False, True],
                      [True, True, True, False],
                      [True, False, True, True],
                      [True, True, False, False],
                      [False, True, True, False],
                      [True, True, True, True],
                      [False, False, False, False]])
    put("softmax/x", rows)
    put("softmax/where", wmask)
    for dt in ("float32", "float64"):
        xv = jnp.asarray(rows, dt)
        put(f"softmax/{dt}/value", J.softmax(xv, where=jnp.asarray(wmask)))
        put(f"log_softmax/{dt}/value", J.log_softmax(xv, where=jnp.asarray(wmask)))
    finite = rng.normal(size=(3, 4, 5)) * 3
    fmask = rng.random(finite.shape) > 0.35
    fmask[0, 1, :] = False
    ct = rng.normal(size=finite.shape)
    put("softmax/fx", finite)
    put("softmax/fmask", fmask)
    put("softmax/ct", ct)
    for ax_name, ax in (("last", -1), ("1", 1), ("02", (0, 2))):
        for nm in ("softmax", "log_softmax"):
            f = getattr(J, nm)
            put(f"{nm}/f/{ax_name}/value",
                f(jnp.asarray(finite), axis=ax, where=jnp.asarray(fmask)))
            put(f"{nm}/f/{ax_name}/grad", jax.grad(lambda v, f=f, ax=ax: jnp.sum(jnp.where(
                fmask, f(v, axis=ax, where=jnp.asarray(fmask)), 0.0) * ct))(
                jnp.asarray(finite)))

    # --- initializers: exact values for fixed keys -----------------------------------
    key = jax.random.key(7)
    shapes = {"2d": (6, 5), "conv": (3, 3, 4, 8), "3d": (5, 2, 3)}
    for sname, shape in shapes.items():
        for mode in ("fan_in", "fan_out", "fan_avg", "fan_geo_avg"):
            for dist in ("truncated_normal", "normal", "uniform"):
                for dt in ("float32", "float64"):
                    put(f"init/vs/{mode}/{dist}/{sname}/{dt}",
                        I.variance_scaling(1.5, mode, dist, dtype=dt)(key, shape))
    axes_cases = {"seq_in": ((0, 1), -1, ()), "batch": (-2, -1, 0), "seq_all": ((0,), (2,), (1,))}
    for cname, (ia, oa, ba) in axes_cases.items():
        for dist in ("uniform", "normal"):
            put(f"init/axes/{cname}/{dist}",
                I.variance_scaling(2.0, "fan_avg", dist, ia, oa, ba, "float32")(key, (3, 4, 5)))
    put("init/vs/1d_in_axis0", I.variance_scaling(1.0, "fan_in", "uniform", in_axis=0,
                                                  out_axis=0, dtype="float32")(key, (7,)))
    for nm in ("glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal",
               "lecun_uniform"):
        put(f"init/{nm}/default", getattr(I, nm)()(key, (6, 5)))  # x64: float64 default
        put(f"init/{nm}/float32", getattr(I, nm)(dtype="float32")(key, (6, 5)))
    put("init/uniform/float32", I.uniform(3.0, dtype="float32")(key, (4, 5)))
    put("init/uniform/float64", I.uniform(3.0)(key, (4, 5)))
    put("init/normal/float32", I.normal(0.5, dtype="float32")(key, (4, 5)))
    put("init/normal/float64", I.normal(0.5)(key, (4, 5)))
    put("init/truncated_normal/float32",
        I.truncated_normal(2.0, dtype="float32", lower=-1.0, upper=0.5)(key, (50,)))
    put("init/truncated_normal/float64", I.truncated_normal(2.0)(key, (50,)))
    put("init/constant/float64", I.constant(np.arange(3.0))(key, (2, 3)))
    put("init/constant/int32", I.constant(2, dtype="int32")(key, (2, 3)))
    put("init/zeros/default", I.zeros(key, (2, 3)))
    for sname, shape, col in (("45", (4, 5), -1), ("54", (5, 4), -1), ("324", (3, 2, 4), 0),
                              ("3344", (3, 3, 4, 4), -1)):
        for dt in ("float32", "float64"):
            put(f"init/orthogonal/{sname}/{dt}",
                I.orthogonal(2.0, column_axis=col, dtype=dt)(key, shape))
    for sname, shape in (("334", (3, 3, 4)), ("4423", (4, 4, 2, 3)), ("22223", (2, 2, 2, 2, 3))):
        put(f"init/delta_orthogonal/{sname}",
            I.delta_orthogonal(dtype="float32")(key, shape))
    put("init/complex/uniform", I.variance_scaling(1.0, "fan_in", "uniform",
                                                   dtype="complex64")(key, (4, 6)))
    put("init/complex/truncated_normal",
        I.variance_scaling(1.0, "fan_in", "truncated_normal", dtype="complex64")(key, (4, 6)))

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **ref)
    print(f"wrote {len(ref)} arrays with JAX {jax.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
