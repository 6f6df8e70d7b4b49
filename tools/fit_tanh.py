"""Fit the rational approximation of tanh in nanofn/ops/_fastmath.py, and measure it.

    python tools/fit_tanh.py [--all] [--stride N]

On `[0, CLAMP]`, `tanh(x) ~ x * P(x^2) / Q(x^2)` with `P` of degree 5 and `Q` of degree 4
in `s = x^2`, both with constant term 1 (so `tanh(x) = x` where `x^2` vanishes beside 1).
The fit minimises the largest relative error over a dense grid, by two classical
iterations run together:

* Sanathanan-Koerner: `P/Q - f` is not linear in the coefficients, `P - f Q` is; weighting
  that residual by `1 / (f Q_prev)` (the previous iterate's `Q`) makes the linear least
  squares problem approach the relative error of `P/Q` as the iterates settle.
* Lawson: multiplying each point's weight by its current error turns least squares into
  the minimax (equioscillating) fit.

`CLAMP = 9.1` is past where float32 tanh rounds to 1 (tanh(x) > 1 - 2^-25 from x = 9.011
on), so beyond it the approximation returns +-1 exactly.

The script prints the coefficients (Python literals for `_fastmath.py`), the fit's
relative error in float64, and the error of what the kernels compute (the rational
evaluated in float32, every operation rounded, as `tanh_float32_ref` does) in float32 ulps
against numpy's float64 tanh: over every float32 in `[0, 1.01 CLAMP]` with `--all` (about
1.1e9 values, a few minutes), else over every `--stride`-th one. tanh is odd and the
evaluation symmetric, so the negative half has the same errors. The float32 evaluation's
roundings, not the fit, make most of the error: the same rational evaluated in float64
and rounded once is within 0.525 ulp.
"""

from __future__ import annotations

import argparse

import numpy as np

CLAMP = 9.1
P_DEGREE, Q_DEGREE = 5, 4


def fit(iterations=60, points=40001):
    """`(p, q, max relative error)`: coefficients of `s^0..s^n` with `p[0] = q[0] = 1`."""
    x = np.unique(np.concatenate([np.linspace(0, CLAMP, points),  # dense at both ends
                                  CLAMP * np.sin(np.linspace(0, np.pi / 2, points))]))[1:]
    f = np.tanh(x) / x
    u = (x / CLAMP) ** 2  # scaled to [0, 1] for a well-conditioned least squares problem
    powers = np.stack([u ** k for k in range(1, max(P_DEGREE, Q_DEGREE) + 1)], 1)
    a = np.hstack([powers[:, :P_DEGREE], -f[:, None] * powers[:, :Q_DEGREE]])
    weight, q_prev, best = np.ones_like(u), np.ones_like(u), None
    for _ in range(iterations):
        row = np.sqrt(weight) / (f * q_prev)
        sol = np.linalg.lstsq(a * row[:, None], (f - 1) * row, rcond=None)[0]
        p = np.concatenate([[1.0], sol[:P_DEGREE]])
        q = np.concatenate([[1.0], sol[P_DEGREE:]])
        q_prev = np.polynomial.polynomial.polyval(u, q)
        err = np.abs(np.polynomial.polynomial.polyval(u, p) / q_prev - f) / f
        if best is None or err.max() < best[2]:
            best = (p, q, err.max())
        weight = weight * (err + 1e-3 * err.max())
        weight /= weight.sum()
    p, q, worst = best
    scale = CLAMP ** -2.0  # back from u = s / CLAMP^2 to s
    return p * scale ** np.arange(len(p)), q * scale ** np.arange(len(q)), worst


def tanh32(x, p, q):
    """What the kernels compute, in numpy: `nanofn.ops._fastmath.tanh_float32_ref` for
    coefficients `p` and `q` (float32 Horner, result kept within [-1, 1])."""
    x = np.asarray(x, np.float32)
    p, q = [np.float32(c) for c in p], [np.float32(c) for c in q]
    s = x * x
    num, den = np.full_like(s, p[-1]), np.full_like(s, q[-1])
    with np.errstate(all="ignore"):
        for c in p[-2::-1]:
            num = num * s + c
        for c in q[-2::-1]:
            den = den * s + c
        r = np.clip(x * (num / den), -1, 1)
    clamp = np.float32(CLAMP)
    return np.where(x >= clamp, np.float32(1), np.where(x <= -clamp, np.float32(-1), r))


def ulp_error(x, r):
    """`|r - tanh(x)|` in float32 ulps of the exact value (x, r float32)."""
    exact = np.tanh(x.astype(np.float64))
    _, e = np.frexp(exact)
    ulp = np.maximum(np.ldexp(1.0, e - 24), 2.0 ** -149)
    return np.abs(r.astype(np.float64) - exact) / ulp


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="every float32 in [0, 1.01 CLAMP]")
    parser.add_argument("--stride", type=int, default=61)
    args = parser.parse_args(argv)
    p, q, worst = fit()
    print(f"_P = ({', '.join(repr(float(c)) for c in p)})")
    print(f"_Q = ({', '.join(repr(float(c)) for c in q)})")
    print(f"fit: max relative error {worst:.3g} ({worst / 2 ** -24:.3f} x 2^-24) on [0, {CLAMP}]")
    stride = 1 if args.all else args.stride
    top = int(np.float32(CLAMP * 1.01).view(np.int32))
    worst_ulp, where = 0.0, 0.0
    for start in range(0, top, 1 << 24):
        x = np.arange(start, min(start + (1 << 24), top), stride, np.int32).view(np.float32)
        e = ulp_error(x, tanh32(x, p, q))
        if e.max() > worst_ulp:
            worst_ulp, where = float(e.max()), float(x[e.argmax()])
    print(f"float32 result: max error {worst_ulp:.3f} ulp (at x = {where!r}) over "
          f"{'every float32' if args.all else f'1 in {stride} float32s'} in "
          f"[0, {CLAMP * 1.01:.4g}]")


if __name__ == "__main__":
    main()
