"""The workloads of BENCHMARKS.md, each defined once with its sizes as parameters.

The runner (`benchmarks/run.py`) times them at the sizes BENCHMARKS.md gives; the tests
(`tests/test_workloads.py`) run the same programs at small sizes and check that `jit`
and eager agree, with numba kernels on and off.

For each workload there are:

* `<name>_data(**sizes)`: the inputs, as float32 numpy arrays from a fixed generator;
* the nanofn program (`mlp_loss`, `mlp_train_step`, `convnet_loss`, `gru_loss_scan`, ...),
  written as a user porting the JAX program would write it (changing imports only);
* row builders `(**sizes) -> zero-argument callable` that run one repetition: nanofn
  jit and eager, a hand-written numpy reference, JAX (`jax.jit`) and PyTorch. A row that
  needs a missing library is reported as skipped by the runner.

`WORKLOADS` maps the workload id ("W1" ... "W5", "W7") to a `Workload` record.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

import nanofn
import nanofn.numpy as fnp
from nanofn import lax, nn, optim


class Workload(NamedTuple):
    title: str
    sizes: dict  # the sizes of BENCHMARKS.md
    small: dict  # small sizes, for the tests and `--quick`
    rows: dict  # row name -> (module it needs or None, builder(**sizes) -> callable)
    ratios: list  # (numerator row, denominator row, target, or (1-thread, all-core) targets)


def _block_jax(tree):
    import jax
    return jax.block_until_ready(tree)


# ------------------------------------------------------------------------ W1: MLP + Adam


def mlp_data(batch=256, sizes=(784, 512, 512, 10), seed=0):
    """Parameters (list of {"w", "b"}), inputs, integer labels and one-hot labels."""
    rng = np.random.default_rng(seed)
    params = [{"w": (rng.normal(size=(m, n)) / np.sqrt(m)).astype(np.float32),
               "b": np.zeros(n, np.float32)} for m, n in zip(sizes[:-1], sizes[1:])]
    x = rng.normal(size=(batch, sizes[0])).astype(np.float32)
    labels = rng.integers(0, sizes[-1], batch)
    onehot = np.eye(sizes[-1], dtype=np.float32)[labels]
    return params, x, labels, onehot


def mlp_loss(params, x, onehot):
    """Mean softmax cross-entropy of an MLP with ReLU hidden layers (nanofn)."""
    h = x
    for layer in params[:-1]:
        h = fnp.maximum(h @ layer["w"] + layer["b"], 0.0)
    logits = h @ params[-1]["w"] + params[-1]["b"]
    return -fnp.mean(fnp.sum(onehot * nn.log_softmax(logits), axis=1))


def mlp_train_step(opt):
    """One training step of `mlp_loss` with the optimizer `opt` (an optax-style pair)."""
    def step(params, state, x, onehot):
        g = nanofn.grad(mlp_loss)(params, x, onehot)
        updates, state = opt.update(g, state, params)
        return optim.apply_updates(params, updates), state
    return step


def _w1_nanofn(use_jit, **sizes):
    params, x, _, onehot = mlp_data(**sizes)
    opt = optim.adam(1e-3)
    step = mlp_train_step(opt)
    step = nanofn.jit(step) if use_jit else step
    p = nanofn.tree.map(fnp.asarray, params)
    box = [p, opt.init(p)]

    def run():
        box[0], box[1] = step(box[0], box[1], x, onehot)
    run.box = box
    return run


def _w1_numpy(**sizes):
    """Forward, backward and Adam written by hand in numpy."""
    params, x, _, onehot = mlp_data(**sizes)
    p = [dict(layer) for layer in params]
    m = [{k: np.zeros_like(v) for k, v in layer.items()} for layer in p]
    v = [{k: np.zeros_like(a) for k, a in layer.items()} for layer in p]
    count = [0]

    def run():
        hs = [x]
        for layer in p[:-1]:
            hs.append(np.maximum(hs[-1] @ layer["w"] + layer["b"], 0))
        logits = hs[-1] @ p[-1]["w"] + p[-1]["b"]
        logits -= logits.max(1, keepdims=True)
        e = np.exp(logits)
        d = (e / e.sum(1, keepdims=True) - onehot) / len(x)
        grads = [None] * len(p)
        for i in range(len(p) - 1, -1, -1):
            grads[i] = {"w": hs[i].T @ d, "b": d.sum(0)}
            if i:
                d = (d @ p[i]["w"].T) * (hs[i] > 0)
        count[0] += 1
        t = count[0]
        for layer, g, mi, vi in zip(p, grads, m, v):
            for k in layer:
                mi[k] = 0.9 * mi[k] + 0.1 * g[k]
                vi[k] = 0.999 * vi[k] + 0.001 * g[k] * g[k]
                mh = mi[k] / (1 - 0.9 ** t)
                vh = vi[k] / (1 - 0.999 ** t)
                layer[k] = layer[k] - 1e-3 * mh / (np.sqrt(vh) + 1e-8)
    run.params = p
    return run


def _w1_jax(**sizes):
    """JAX with the same loss; Adam written with tree maps (optax's arithmetic)."""
    import jax
    import jax.numpy as jnp
    params, x, _, onehot = mlp_data(**sizes)

    def loss(params, x, onehot):
        h = x
        for layer in params[:-1]:
            h = jnp.maximum(h @ layer["w"] + layer["b"], 0.0)
        logits = h @ params[-1]["w"] + params[-1]["b"]
        return -jnp.mean(jnp.sum(onehot * jax.nn.log_softmax(logits), axis=1))

    @jax.jit
    def step(params, m, v, t, x, onehot):
        g = jax.grad(loss)(params, x, onehot)
        m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
        v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
        params = jax.tree.map(lambda p, m, v: p - 1e-3 * (m / (1 - 0.9 ** t)) /
                              (jnp.sqrt(v / (1 - 0.999 ** t)) + 1e-8), params, m, v)
        return params, m, v, t + 1

    p = jax.tree.map(jnp.asarray, params)
    box = [p, jax.tree.map(jnp.zeros_like, p), jax.tree.map(jnp.zeros_like, p),
           jnp.asarray(1.0, jnp.float32)]
    x, onehot = jnp.asarray(x), jnp.asarray(onehot)

    def run():
        box[:] = _block_jax(step(*box, x, onehot))
    return run


def _w1_torch(**sizes):
    """PyTorch on the CPU: the same MLP, F.cross_entropy, torch.optim.Adam."""
    import torch
    import torch.nn.functional as F
    params, x, labels, _ = mlp_data(**sizes)
    tp = [{k: torch.tensor(v, requires_grad=True) for k, v in layer.items()}
          for layer in params]
    opt = torch.optim.Adam([t for layer in tp for t in layer.values()], lr=1e-3)
    tx, ty = torch.from_numpy(x), torch.from_numpy(labels)

    def run():
        opt.zero_grad(set_to_none=True)
        h = tx
        for layer in tp[:-1]:
            h = torch.relu(h @ layer["w"] + layer["b"])
        F.cross_entropy(h @ tp[-1]["w"] + tp[-1]["b"], ty).backward()
        opt.step()
    return run


W1 = Workload(
    "MLP 784-512-512-10 train step (Adam), batch 256",
    sizes={"batch": 256, "sizes": (784, 512, 512, 10)},
    small={"batch": 8, "sizes": (12, 64, 64, 5)},  # a 64x64 leaf: fused Adam
    rows={"nanofn jit": (None, lambda **s: _w1_nanofn(True, **s)),
          "nanofn eager": (None, lambda **s: _w1_nanofn(False, **s)),
          "numpy": (None, _w1_numpy),
          "jax jit": ("jax", _w1_jax),
          "torch": ("torch", _w1_torch)},
    # one core: clearly ahead of JAX (issue 17); every core: level with it or better
    ratios=[("nanofn jit", "jax jit", (0.9, 1.0)), ("nanofn eager", "numpy", 1.5)])


# ------------------------------------------------------------------------ W2: small grad


def w2_data(n=16):
    return np.linspace(-1, 1, n).astype(np.float32)


def w2_fun(x, np_=fnp):
    """A scalar function of 33 elementwise operations, for any numpy-like namespace."""
    y = x
    for _ in range(3):
        y = np_.sin(y) * 0.5 + np_.cos(y)
        y = np_.exp(-y * y) + np_.tanh(y) / 3.0
        y = y * y + y / (1.0 + y * y)
    return np_.sum(y)


def _w2_nanofn(use_jit, n):
    g = nanofn.grad(w2_fun)
    g = nanofn.jit(g) if use_jit else g
    x = fnp.asarray(w2_data(n))
    return lambda: g(x)


def _w2_numpy(n):
    x = w2_data(n)
    return lambda: w2_fun(x, np)


def _w2_jax(n):
    import jax
    import jax.numpy as jnp
    g = jax.jit(jax.grad(lambda x: w2_fun(x, jnp)))
    x = jnp.asarray(w2_data(n))
    return lambda: g(x).block_until_ready()


def _w2_torch(n):
    import torch
    x = torch.tensor(w2_data(n), requires_grad=True)

    def run():
        x.grad = None
        w2_fun(x, torch).backward()
    return run


W2 = Workload(
    "grad of a 33-op elementwise scalar function, 16 elements",
    sizes={"n": 16}, small={"n": 16},
    rows={"nanofn jit(grad)": (None, lambda **s: _w2_nanofn(True, **s)),
          "nanofn eager grad": (None, lambda **s: _w2_nanofn(False, **s)),
          "numpy forward only": (None, _w2_numpy),
          "jax jit(grad)": ("jax", _w2_jax),
          "torch eager grad": ("torch", _w2_torch)},
    ratios=[("nanofn jit(grad)", "jax jit(grad)", 1.5),
            ("nanofn eager grad", "torch eager grad", 1.0)])


# ------------------------------------------------------------------------ W3: big elementwise


def w3_data(n=4_000_000):
    return np.random.default_rng(0).normal(size=n).astype(np.float32)


def w3_fun(x, np_=fnp):
    return np_.sum(np_.tanh(x) * np_.sin(x) + 0.5 * np_.exp(-x * x) + x / (1 + x * x))


def _w3_nanofn(use_jit, n):
    vg = nanofn.value_and_grad(w3_fun)
    vg = nanofn.jit(vg) if use_jit else vg
    x = w3_data(n)
    return lambda: vg(x)


def _w3_numpy(n):
    """Value and gradient written by hand with numpy ufuncs (one pass per operation)."""
    x = w3_data(n)

    def run():
        t, s, e = np.tanh(x), np.sin(x), np.exp(-x * x)
        d = 1 + x * x
        val = np.sum(t * s + 0.5 * e + x / d)
        grad = (1 - t * t) * s + t * np.cos(x) - x * e + (1 - x * x) / (d * d)
        return val, grad
    return run


def _w3_jax(n):
    import jax
    import jax.numpy as jnp
    vg = jax.jit(jax.value_and_grad(lambda x: w3_fun(x, jnp)))
    x = jnp.asarray(w3_data(n))
    return lambda: _block_jax(vg(x))


def _w3_torch(n):
    import torch
    x = torch.tensor(w3_data(n), requires_grad=True)

    def run():
        x.grad = None
        w3_fun(x, torch).backward()
    return run


W3 = Workload(
    "value_and_grad of a 4M-element elementwise function",
    sizes={"n": 4_000_000}, small={"n": 1000},
    rows={"nanofn jit": (None, lambda **s: _w3_nanofn(True, **s)),
          "nanofn eager": (None, lambda **s: _w3_nanofn(False, **s)),
          "numpy": (None, _w3_numpy),
          "jax jit": ("jax", _w3_jax),
          "torch": ("torch", _w3_torch)},
    ratios=[("nanofn jit", "numpy", 1.0), ("nanofn eager", "numpy", 1.5),
            ("nanofn jit", "jax jit", 1.0)])


# ------------------------------------------------------------------------ W4: convnet + SGD

_DN = ("NHWC", "HWIO", "NHWC")


def convnet_data(batch=64, image=28, seed=0):
    """NHWC images, one-hot labels, and HWIO conv kernels + a dense layer (float32)."""
    if image % 4:
        raise ValueError(f"convnet_data: image={image} must be a multiple of 4 (two 2x2 "
                         "poolings)")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, image, image, 1)).astype(np.float32)
    labels = rng.integers(0, 10, batch)
    onehot = np.eye(10, dtype=np.float32)[labels]
    flat = (image // 4) ** 2 * 32
    params = {"c1": (rng.normal(size=(3, 3, 1, 16)) * 0.3).astype(np.float32),
              "c2": (rng.normal(size=(3, 3, 16, 32)) * 0.1).astype(np.float32),
              "w": (rng.normal(size=(flat, 10)) * 0.02).astype(np.float32),
              "b": np.zeros(10, np.float32)}
    return params, x, labels, onehot


def _conv_block(lx, np_, h, k):
    """conv3x3 SAME + ReLU + 2x2 max pool, with `lx` = nanofn.lax or jax.lax."""
    h = lx.conv_general_dilated(h, k, (1, 1), "SAME", dimension_numbers=_DN)
    return lx.reduce_window(np_.maximum(h, 0.0), -np.inf, lx.max, (1, 2, 2, 1), (1, 2, 2, 1),
                            "VALID")


def convnet_loss(p, x, onehot):
    """Two conv blocks, a dense layer, mean softmax cross-entropy (nanofn)."""
    h = _conv_block(lax, fnp, x, p["c1"])
    h = _conv_block(lax, fnp, h, p["c2"])
    logits = h.reshape(h.shape[0], -1) @ p["w"] + p["b"]
    return -fnp.mean(fnp.sum(onehot * nn.log_softmax(logits), axis=1))


def convnet_train_step(p, x, onehot, lr=0.01):
    """One SGD step of `convnet_loss`."""
    g = nanofn.grad(convnet_loss)(p, x, onehot)
    return nanofn.tree.map(lambda a, b: a - lr * b, p, g)


def _w4_nanofn(use_jit, **sizes):
    params, x, _, onehot = convnet_data(**sizes)
    step = nanofn.jit(convnet_train_step) if use_jit else convnet_train_step
    box = [nanofn.tree.map(fnp.asarray, params)]

    def run():
        box[0] = step(box[0], x, onehot)
    run.box = box
    return run


def _im2col3x3(x):
    """(N, H, W, C) -> (N*H*W, 9*C) patches of a SAME 3x3 convolution, in (kh, kw, c) order."""
    n, h, w, c = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))  # N,H,W,C,3,3
    return np.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3)).reshape(n * h * w, 9 * c)


def _col2im3x3(cols, shape):
    """The transpose of `_im2col3x3`: adds each patch's gradient back onto the image."""
    n, h, w, c = shape
    cols = cols.reshape(n, h, w, 3, 3, c)
    out = np.zeros((n, h + 2, w + 2, c), cols.dtype)
    for i in range(3):
        for j in range(3):
            out[:, i:i + h, j:j + w, :] += cols[:, :, :, i, j, :]
    return out[:, 1:-1, 1:-1, :]


def _maxpool2(y):
    """2x2 max pool of (N, H, W, C): returns the result and the argmax of each window."""
    n, h, w, c = y.shape
    win = y.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4)
    win = win.reshape(n, h // 2, w // 2, c, 4)
    arg = win.argmax(axis=-1)
    return np.take_along_axis(win, arg[..., None], -1)[..., 0], arg


def _maxpool2_grad(g, arg, shape):
    n, h, w, c = shape
    out = np.zeros((n, h // 2, w // 2, c, 4), g.dtype)
    np.put_along_axis(out, arg[..., None], g[..., None], -1)
    out = out.reshape(n, h // 2, w // 2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3)
    return out.reshape(shape)


def _w4_numpy(**sizes):
    """im2col + GEMM convolutions, argmax pooling, col2im backward and SGD, by hand."""
    params, x, _, onehot = convnet_data(**sizes)
    p = {k: v.copy() for k, v in params.items()}
    n = x.shape[0]

    def run():
        # forward
        cols1 = _im2col3x3(x)
        y1 = (cols1 @ p["c1"].reshape(-1, 16)).reshape(x.shape[:3] + (16,))
        r1 = np.maximum(y1, 0)
        h1, arg1 = _maxpool2(r1)
        cols2 = _im2col3x3(h1)
        y2 = (cols2 @ p["c2"].reshape(-1, 32)).reshape(h1.shape[:3] + (32,))
        r2 = np.maximum(y2, 0)
        h2, arg2 = _maxpool2(r2)
        flat = h2.reshape(n, -1)
        logits = flat @ p["w"] + p["b"]
        logits -= logits.max(1, keepdims=True)
        e = np.exp(logits)
        d = (e / e.sum(1, keepdims=True) - onehot) / n
        # backward
        g = {"w": flat.T @ d, "b": d.sum(0)}
        dr2 = _maxpool2_grad((d @ p["w"].T).reshape(h2.shape), arg2, r2.shape) * (y2 > 0)
        dy2 = dr2.reshape(-1, 32)
        g["c2"] = (cols2.T @ dy2).reshape(p["c2"].shape)
        dh1 = _col2im3x3(dy2 @ p["c2"].reshape(-1, 32).T, h1.shape)
        dy1 = (_maxpool2_grad(dh1, arg1, r1.shape) * (y1 > 0)).reshape(-1, 16)
        g["c1"] = (cols1.T @ dy1).reshape(p["c1"].shape)
        for k in p:
            p[k] -= 0.01 * g[k]
    run.params = p
    return run


def _w4_jax(**sizes):
    import jax
    import jax.numpy as jnp
    params, x, _, onehot = convnet_data(**sizes)

    def loss(p, x, onehot):
        h = _conv_block(jax.lax, jnp, x, p["c1"])
        h = _conv_block(jax.lax, jnp, h, p["c2"])
        logits = h.reshape(h.shape[0], -1) @ p["w"] + p["b"]
        return -jnp.mean(jnp.sum(onehot * jax.nn.log_softmax(logits), axis=1))

    @jax.jit
    def step(p, x, onehot):
        g = jax.grad(loss)(p, x, onehot)
        return jax.tree.map(lambda a, b: a - 0.01 * b, p, g)

    box = [jax.tree.map(jnp.asarray, params)]
    x, onehot = jnp.asarray(x), jnp.asarray(onehot)

    def run():
        box[0] = _block_jax(step(box[0], x, onehot))
    return run


def _w4_torch(**sizes):
    """PyTorch in its native NCHW layout: conv2d, max_pool2d, linear, cross_entropy, SGD."""
    import torch
    import torch.nn.functional as F
    params, x, labels, _ = convnet_data(**sizes)
    tp = {"c1": torch.tensor(params["c1"].transpose(3, 2, 0, 1).copy(), requires_grad=True),
          "c2": torch.tensor(params["c2"].transpose(3, 2, 0, 1).copy(), requires_grad=True),
          "w": torch.tensor(params["w"], requires_grad=True),
          "b": torch.tensor(params["b"], requires_grad=True)}
    opt = torch.optim.SGD(list(tp.values()), lr=0.01)
    tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    ty = torch.from_numpy(labels)

    def run():
        opt.zero_grad(set_to_none=True)
        h = F.max_pool2d(torch.relu(F.conv2d(tx, tp["c1"], padding=1)), 2)
        h = F.max_pool2d(torch.relu(F.conv2d(h, tp["c2"], padding=1)), 2)
        F.cross_entropy(h.flatten(1) @ tp["w"] + tp["b"], ty).backward()
        opt.step()
    return run


W4 = Workload(
    "convnet train step (SGD), batch 64x28x28x1",
    sizes={"batch": 64, "image": 28}, small={"batch": 3, "image": 8},
    rows={"nanofn jit": (None, lambda **s: _w4_nanofn(True, **s)),
          "nanofn eager": (None, lambda **s: _w4_nanofn(False, **s)),
          "numpy im2col": (None, _w4_numpy),
          "jax jit": ("jax", _w4_jax),
          "torch": ("torch", _w4_torch)},
    ratios=[("nanofn jit", "jax jit", 1.0), ("nanofn jit", "numpy im2col", 1.0)])


# ------------------------------------------------------------------------ W5: GRU grad


def gru_data(batch=128, steps=28, features=28, hidden=128, classes=10, seed=0):
    """Time-major inputs (steps, batch, features), one-hot labels, and the parameters of a
    GRU cell (gates r, z, n packed along the last axis) and a dense classifier."""
    rng = np.random.default_rng(seed)

    def mat(m, n):
        return (rng.normal(size=(m, n)) / np.sqrt(m)).astype(np.float32)

    params = {"w_i": mat(features, 3 * hidden), "w_h": mat(hidden, 3 * hidden),
              "b_i": np.zeros(3 * hidden, np.float32), "b_h": np.zeros(3 * hidden, np.float32),
              "w": mat(hidden, classes), "b": np.zeros(classes, np.float32)}
    xs = rng.normal(size=(steps, batch, features)).astype(np.float32)
    onehot = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, batch)]
    return params, xs, onehot


def gru_cell(p, h, x, sigmoid, tanh):
    """One GRU step (PyTorch's equations) for nanofn, JAX, numpy or PyTorch arrays."""
    k = h.shape[-1]
    xi = x @ p["w_i"] + p["b_i"]
    hh = h @ p["w_h"] + p["b_h"]
    r = sigmoid(xi[:, :k] + hh[:, :k])
    z = sigmoid(xi[:, k:2 * k] + hh[:, k:2 * k])
    n = tanh(xi[:, 2 * k:] + r * hh[:, 2 * k:])
    return (1.0 - z) * n + z * h


def _gru_head(p, h, onehot, log_softmax, np_):
    logits = h @ p["w"] + p["b"]
    return -np_.mean(np_.sum(onehot * log_softmax(logits), axis=1))


def gru_loss_scan(p, xs, onehot):
    """GRU over the time axis with `nanofn.lax.scan`, then dense + softmax cross-entropy."""
    h0 = fnp.zeros((xs.shape[1], p["w_h"].shape[0]), xs.dtype)

    def body(h, x_t):
        return gru_cell(p, h, x_t, nn.sigmoid, fnp.tanh), None

    h, _ = lax.scan(body, h0, xs)
    return _gru_head(p, h, onehot, nn.log_softmax, fnp)


def gru_loss_loop(p, xs, onehot):
    """The same loss with a Python loop over time steps (the eager idiom)."""
    h = fnp.zeros((xs.shape[1], p["w_h"].shape[0]), xs.dtype)
    for t in range(xs.shape[0]):
        h = gru_cell(p, h, xs[t], nn.sigmoid, fnp.tanh)
    return _gru_head(p, h, onehot, nn.log_softmax, fnp)


def _w5_nanofn(use_jit, **sizes):
    params, xs, onehot = gru_data(**sizes)
    p = nanofn.tree.map(fnp.asarray, params)
    g = nanofn.jit(nanofn.grad(gru_loss_scan)) if use_jit else nanofn.grad(gru_loss_loop)
    xs = fnp.asarray(xs)
    return lambda: g(p, xs, onehot)


def _w5_jax(**sizes):
    import jax
    import jax.numpy as jnp
    params, xs, onehot = gru_data(**sizes)

    def loss(p, xs, onehot):
        h0 = jnp.zeros((xs.shape[1], p["w_h"].shape[0]), xs.dtype)

        def body(h, x_t):
            return gru_cell(p, h, x_t, jax.nn.sigmoid, jnp.tanh), None

        h, _ = jax.lax.scan(body, h0, xs)
        return _gru_head(p, h, onehot, jax.nn.log_softmax, jnp)

    g = jax.jit(jax.grad(loss))
    p = jax.tree.map(jnp.asarray, params)
    xs, onehot = jnp.asarray(xs), jnp.asarray(onehot)
    return lambda: _block_jax(g(p, xs, onehot))


def _w5_torch_loop(**sizes):
    """PyTorch autograd through a Python loop of the same cell."""
    import torch
    params, xs, onehot = gru_data(**sizes)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    txs, toh = torch.from_numpy(xs), torch.from_numpy(onehot)

    def run():
        for t in tp.values():
            t.grad = None
        h = torch.zeros(txs.shape[1], tp["w_h"].shape[0])
        for t in range(txs.shape[0]):
            h = gru_cell(tp, h, txs[t], torch.sigmoid, torch.tanh)
        _gru_head(tp, h, toh, lambda z: torch.log_softmax(z, 1), torch).backward()
    return run


def _w5_torch_gru(**sizes):
    """PyTorch's fused `torch.nn.GRU` layer (same equations, its own weight layout)."""
    import torch
    params, xs, onehot = gru_data(**sizes)
    hidden = params["w_h"].shape[0]
    gru = torch.nn.GRU(xs.shape[2], hidden)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.from_numpy(params["w_i"].T.copy()))
        gru.weight_hh_l0.copy_(torch.from_numpy(params["w_h"].T.copy()))
        gru.bias_ih_l0.zero_()
        gru.bias_hh_l0.zero_()
    w = torch.tensor(params["w"], requires_grad=True)
    b = torch.tensor(params["b"], requires_grad=True)
    txs, toh = torch.from_numpy(xs), torch.from_numpy(onehot)

    def run():
        gru.zero_grad(set_to_none=True)
        w.grad = b.grad = None
        _, h = gru(txs)
        _gru_head({"w": w, "b": b}, h[0], toh, lambda z: torch.log_softmax(z, 1),
                  torch).backward()
    return run


W5 = Workload(
    "GRU grad, batch 128, 28 steps, input 28, hidden 128, dense 10 + CE",
    sizes={"batch": 128, "steps": 28, "features": 28, "hidden": 128},
    small={"batch": 4, "steps": 5, "features": 6, "hidden": 8},
    rows={"nanofn jit (scan)": (None, lambda **s: _w5_nanofn(True, **s)),
          "nanofn eager (loop)": (None, lambda **s: _w5_nanofn(False, **s)),
          "jax jit (scan)": ("jax", _w5_jax),
          "torch (loop, same cell)": ("torch", _w5_torch_loop),
          "torch nn.GRU": ("torch", _w5_torch_gru)},
    ratios=[("nanofn jit (scan)", "jax jit (scan)", (0.9, 1.0))])


# ------------------------------------------------------------------------ W7: GPT step


def gpt_data(batch=16, context=128, seed=0):
    """A batch of next-byte prediction windows from the embedded text corpus."""
    from nanofn.data import load_text
    text = load_text("train")
    rng = np.random.default_rng(seed)
    start = rng.integers(0, len(text) - context - 1, batch)
    chunk = text[start[:, None] + np.arange(context + 1)].astype(np.int32)
    return chunk[:, :-1], chunk[:, 1:]


def _gpt_example():
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "gpt.py"
    spec = importlib.util.spec_from_file_location("example_gpt", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _w7_nanofn(use_jit, batch, context, d_model, heads, layers):
    """The GPT of examples/gpt.py (no dropout), AdamW (lr 3e-4, wd 0.1) with clipping."""
    gpt = _gpt_example()
    init, apply = gpt.make_gpt(context, d_model, heads, layers, 0.0)
    _, params = init(nanofn.random.key(0), (-1, context))
    opt = optim.chain(optim.clip_by_global_norm(1.0),
                      optim.adamw(3e-4, weight_decay=0.1,
                                  mask=lambda p: nanofn.tree.map(lambda x: x.ndim > 1, p)))
    x, y = gpt_data(batch, context)

    def step(params, state, x, y):
        def loss(p):
            logits = apply(p, x)
            return nn.losses.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        g = nanofn.grad(loss)(params)
        updates, state = opt.update(g, state, params)
        return optim.apply_updates(params, updates), state

    step = nanofn.jit(step) if use_jit else step
    box = [params, opt.init(params)]

    def run():
        box[:] = step(*box, x, y)
    run.box = box
    return run


def _w7_jax(batch, context, d_model, heads, layers):
    """The same GPT written with JAX's names (jax.numpy, jax.nn, optax)."""
    import jax
    import jax.numpy as jnp
    import optax
    x, y = gpt_data(batch, context)
    rng = np.random.default_rng(0)

    def dense(m, n):
        lim = np.sqrt(6.0 / (m + n))
        return {"w": jnp.asarray(rng.uniform(-lim, lim, (m, n)).astype(np.float32)),
                "b": jnp.zeros(n, jnp.float32)}

    def norm():
        return {"scale": jnp.ones(d_model, jnp.float32), "bias": jnp.zeros(d_model, jnp.float32)}

    params = {"embed": jnp.asarray(rng.normal(0, d_model ** -0.5, (256, d_model)).astype(
        np.float32)), "pos": jnp.asarray(0.02 * rng.normal(size=(context, d_model)).astype(
            np.float32)), "norm": norm(),
        "blocks": [{"ln1": norm(), "q": dense(d_model, d_model), "k": dense(d_model, d_model),
                    "v": dense(d_model, d_model), "o": dense(d_model, d_model),
                    "ln2": norm(), "fc1": dense(d_model, 4 * d_model),
                    "fc2": dense(4 * d_model, d_model)} for _ in range(layers)]}

    def ln(p, h):
        mu = h.mean(-1, keepdims=True)
        var = ((h - mu) ** 2).mean(-1, keepdims=True)
        return (h - mu) * jax.lax.rsqrt(var + 1e-5) * p["scale"] + p["bias"]

    def forward(p, tokens):
        t = tokens.shape[1]
        h = p["embed"][tokens] + p["pos"][:t]
        for blk in p["blocks"]:
            a = ln(blk["ln1"], h)
            q, k, v = ((a @ blk[n]["w"] + blk[n]["b"]).reshape(a.shape[0], t, heads, -1)
                       for n in "qkv")
            o = jax.nn.dot_product_attention(q, k, v, is_causal=True)
            h = h + o.reshape(h.shape) @ blk["o"]["w"] + blk["o"]["b"]
            m = ln(blk["ln2"], h)
            m = jax.nn.gelu(m @ blk["fc1"]["w"] + blk["fc1"]["b"])
            h = h + m @ blk["fc2"]["w"] + blk["fc2"]["b"]
        return ln(p["norm"], h) @ p["embed"].T

    opt = optax.chain(optax.clip_by_global_norm(1.0),
                      optax.adamw(3e-4, weight_decay=0.1,
                                  mask=lambda p: jax.tree.map(lambda a: a.ndim > 1, p)))

    @jax.jit
    def step(params, state, x, y):
        def loss(p):
            return optax.softmax_cross_entropy_with_integer_labels(forward(p, x), y).mean()
        g = jax.grad(loss)(params)
        updates, state = opt.update(g, state, params)
        return optax.apply_updates(params, updates), state

    box = [params, opt.init(params)]
    x, y = jnp.asarray(x), jnp.asarray(y)

    def run():
        box[:] = _block_jax(step(*box, x, y))
    return run


def _w7_torch(batch, context, d_model, heads, layers):
    """PyTorch eager: nn.TransformerEncoderLayer (pre-norm, causal, fused attention)."""
    import torch
    x, y = (torch.from_numpy(a.astype(np.int64)) for a in gpt_data(batch, context))

    class GPT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(256, d_model)
            self.pos = torch.nn.Parameter(0.02 * torch.randn(context, d_model))
            self.blocks = torch.nn.ModuleList(torch.nn.TransformerEncoderLayer(
                d_model, heads, 4 * d_model, dropout=0.0, activation="gelu", batch_first=True,
                norm_first=True) for _ in range(layers))
            self.norm = torch.nn.LayerNorm(d_model)

        def forward(self, tokens):
            t = tokens.shape[1]
            mask = torch.nn.Transformer.generate_square_subsequent_mask(t)
            h = self.embed(tokens) + self.pos[:t]
            for blk in self.blocks:
                h = blk(h, src_mask=mask, is_causal=True)
            return self.norm(h) @ self.embed.weight.T

    model = GPT()
    decay = [p for p in model.parameters() if p.ndim > 1]
    other = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": other, "weight_decay": 0.0}], lr=3e-4)

    def run():
        opt.zero_grad(set_to_none=True)
        logits = model(x)
        torch.nn.functional.cross_entropy(logits.reshape(-1, 256), y.reshape(-1)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return run


W7 = Workload(
    "GPT train step: bytes, context 128, batch 16, 4 layers, d_model 128, 4 heads, AdamW",
    sizes={"batch": 16, "context": 128, "d_model": 128, "heads": 4, "layers": 4},
    small={"batch": 2, "context": 16, "d_model": 16, "heads": 2, "layers": 1},
    rows={"nanofn jit": (None, lambda **s: _w7_nanofn(True, **s)),
          "nanofn eager": (None, lambda **s: _w7_nanofn(False, **s)),
          "jax jit": ("jax", _w7_jax),
          "torch eager": ("torch", _w7_torch)},
    ratios=[("nanofn jit", "torch eager", 0.9), ("nanofn eager", "torch eager", 1.2),
            ("nanofn jit", "jax jit", 1.0)])


WORKLOADS: dict[str, Workload] = {"W1": W1, "W2": W2, "W3": W3, "W4": W4, "W5": W5, "W7": W7}


def build(wid: str, row: str, small: bool = False) -> Callable[[], object]:
    """The zero-argument callable for one row of a workload, at full or small sizes."""
    w = WORKLOADS[wid]
    _, builder = w.rows[row]
    return builder(**(w.small if small else w.sizes))
