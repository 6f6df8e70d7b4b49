"""Fit a small nonlinear regression with nanofn.grad: y = tanh(x @ w + b), by gradient descent.

The data is made here: inputs from a fixed numpy generator, targets from a known set of
weights plus noise. The script prints the loss falling and the recovered weights.

    python examples/regression.py [--steps 300]
    python examples/regression.py --fast       # 60 steps, for CI
"""

import argparse

import numpy as np

import nanofn
import nanofn.numpy as fnp


def loss(params, x, y):
    pred = fnp.tanh(x @ params["w"] + params["b"])
    return fnp.mean((pred - y) ** 2)


def main(steps=300, lr=0.5, verbose=True):
    rng = np.random.default_rng(0)
    true_w = np.array([[0.5], [-1.0], [0.25]], np.float32)
    x = rng.normal(size=(256, 3)).astype(np.float32)
    y = np.tanh(x @ true_w + 0.1) + 0.01 * rng.normal(size=(256, 1)).astype(np.float32)

    params = {"w": fnp.zeros((3, 1)), "b": fnp.zeros(1)}
    step = nanofn.jit(lambda p, x, y: nanofn.tree.map(
        lambda v, g: v - lr * g, p, nanofn.grad(loss)(p, x, y)))
    losses = []
    for i in range(steps):
        if i % 50 == 0 or i == steps - 1:
            losses.append(float(loss(params, x, y)))
            if verbose:
                print(f"step {i:4d}  loss {losses[-1]:.5f}")
        params = step(params, x, y)
    if verbose:
        print("fitted w:", np.asarray(params["w"]).ravel().round(3), " true w:", true_w.ravel())
    return losses, params


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--fast", action="store_true", help="60 steps (a quick check)")
    args = ap.parse_args()
    main(60 if args.fast else args.steps)
