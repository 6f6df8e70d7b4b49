"""Fused numba kernels for the hottest optimizer step: Adam's moment update.

Written with array operations, ``scale_by_adam`` makes about a dozen passes over every
parameter (two moments, two bias corrections, a square root, a division, ...). In eager
mode each pass is a separate numpy call that reads and writes whole arrays, so a large
model spends its optimizer time moving memory. The kernel below does all of it in one
pass per leaf.

It is used only where it cannot change the meaning of the program: in eager mode (every
leaf a concrete ``nanofn.Array``, never a tracer, so ``grad``/``jit``/``vmap`` of an
update still see the plain array code), for float32/float64 leaves whose moments share
the leaf's dtype, and with Python-number hyperparameters. The plain code in
``_transform.py`` is the reference; tests compare the two.

numba is imported on first use, and kernels are compiled with ``cache=True`` so a second
process loads them from disk instead of recompiling.
"""

from __future__ import annotations

import numpy as np

from nanofn import Array

# Leaves smaller than this go through the plain path: a kernel call costs more than a few
# numpy calls on tiny arrays, and small leaves do not decide the step time.
MIN_FUSED_SIZE = 4096

_kernels: dict = {}


def _adam_kernel():
    kernel = _kernels.get("adam")
    if kernel is None:
        import numba  # imported here so `import nanofn.optim` does not load numba

        # error_model="numpy": division by zero gives inf/nan as in numpy instead of a
        # Python exception, which also lets LLVM vectorise the loop (about 15x faster).
        @numba.njit(cache=True, nogil=True, error_model="numpy")
        def adam_step(g, m, v, u_out, m_out, v_out, b1, one_minus_b1, b2, one_minus_b2,
                      eps, eps_root, bc1, bc2, bc1_next, nesterov):
            for i in range(g.size):
                gi = g[i]
                mi = one_minus_b1 * gi + b1 * m[i]
                vi = one_minus_b2 * (gi * gi) + b2 * v[i]
                if nesterov:
                    m_hat = b1 * mi / bc1_next + one_minus_b1 * gi / bc1
                else:
                    m_hat = mi / bc1
                u_out[i] = m_hat / (np.sqrt(vi / bc2 + eps_root) + eps)
                m_out[i] = mi
                v_out[i] = vi

        kernel = _kernels["adam"] = adam_step
    return kernel


def adam_reference(g, m, v, b1, b2, eps, eps_root, count, nesterov):
    """The kernel's computation in plain numpy, for tests (``count`` is the new count)."""
    dt = g.dtype.type
    b1, b2 = dt(b1), dt(b2)
    m = (1 - b1) * g + b1 * m
    v = (1 - b2) * (g * g) + b2 * v
    bc1, bc2 = 1 - b1 ** dt(count), 1 - b2 ** dt(count)
    m_hat = b1 * m / (1 - b1 ** dt(count + 1)) + (1 - b1) * g / bc1 if nesterov else m / bc1
    return m_hat / (np.sqrt(v / bc2 + dt(eps_root)) + dt(eps)), m, v


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def can_fuse_adam(leaves, b1, b2, eps, eps_root) -> bool:
    """True if ``scale_by_adam`` may use the kernel for these (g, m, v) leaf triples."""
    if not all(_is_number(h) for h in (b1, b2, eps, eps_root)):
        return False
    total = 0
    for g, m, v in leaves:
        if type(g) is not Array or type(m) is not Array or type(v) is not Array:
            return False  # traced (jit, grad, vmap) or not a nanofn array
        if g.dtype not in (np.float32, np.float64) or m.dtype != g.dtype or v.dtype != g.dtype:
            return False
        if g.shape != m.shape or g.shape != v.shape:
            return False
        total += g.size
    return total >= MIN_FUSED_SIZE


def adam_leaves(leaves, b1, b2, eps, eps_root, count: int, nesterov: bool):
    """Runs the fused Adam step on each (g, m, v) triple; returns lists (u, m, v) of Arrays.

    ``count`` is the step number after this update (1 on the first update).
    """
    kernel = _adam_kernel()
    us, ms, vs = [], [], []
    for g, m, v in leaves:
        dt = np.dtype(g.dtype).type
        g_np = np.ascontiguousarray(np.asarray(g)).reshape(-1)
        m_np = np.ascontiguousarray(np.asarray(m)).reshape(-1)
        v_np = np.ascontiguousarray(np.asarray(v)).reshape(-1)
        u_out, m_out, v_out = (np.empty_like(g_np) for _ in range(3))
        # Scalars in the leaf's dtype, computed as the plain path computes them.
        b1_, b2_ = dt(b1), dt(b2)
        bc1 = dt(1) - b1_ ** dt(count)
        bc2 = dt(1) - b2_ ** dt(count)
        bc1_next = dt(1) - b1_ ** dt(count + 1)
        kernel(g_np, m_np, v_np, u_out, m_out, v_out, b1_, dt(1 - b1), b2_, dt(1 - b2),
               dt(eps), dt(eps_root), bc1, bc2, bc1_next, nesterov)
        shape = g.shape
        us.append(Array(u_out.reshape(shape)))
        ms.append(Array(m_out.reshape(shape)))
        vs.append(Array(v_out.reshape(shape)))
    return us, ms, vs
