"""Complex inputs through jax.numpy.linalg, jax.scipy.linalg and scipy.signal.istft: how
many of nanofn's values and gradients match JAX's (float64/complex128).

Run each side in an environment that has it, then compare (JAX is not a dependency):

    python tools/complex_linalg_audit.py jax jax.pkl       # where JAX is installed
    python tools/complex_linalg_audit.py nanofn nanofn.pkl
    python tools/complex_linalg_audit.py compare jax.pkl nanofn.pkl

The one expected difference is the gradient of scipy.linalg.solve(assume_a="pos"), where
JAX 0.10 is wrong (see docs/linalg.md).
"""

import pickle
import sys

import numpy as np


def _compare(jax_file, nanofn_file):
    J = pickle.load(open(jax_file, "rb"))
    N = pickle.load(open(nanofn_file, "rb"))
    vals = grads = n_vals = n_grads = 0
    bad = []
    for k, j in J.items():
        n = N[k]
        if j[0] == "ERR":
            continue
        n_vals += 1
        if n[0] != "ERR" and len(n[0]) == len(j[0]) and all(
                a.shape == b.shape and np.allclose(a, b, atol=1e-7, rtol=1e-6)
                for a, b in zip(n[0], j[0])):
            vals += 1
        else:
            bad.append((k, "value"))
        if isinstance(j[1], tuple):  # JAX cannot differentiate it
            continue
        n_grads += 1
        if n[0] != "ERR" and not isinstance(n[1], tuple) and n[1].shape == j[1].shape \
                and np.allclose(n[1], j[1], atol=1e-6, rtol=1e-5):
            grads += 1
        else:
            bad.append((k, "gradient"))
    print(f"complex values matching JAX: {vals}/{n_vals}; gradients: {grads}/{n_grads}")
    print("differing:", bad)


if sys.argv[1] == "compare":
    _compare(sys.argv[2], sys.argv[3])
    sys.exit()
mode = sys.argv[1]
if mode == "jax":
    import jax
    import jax.numpy as jnp
    import jax.scipy.linalg as sl
    import jax.scipy.signal as sg
    jax.config.update("jax_enable_x64", True)
    grad = jax.grad
else:
    import nanofn
    import nanofn.numpy as jnp
    import nanofn.scipy.linalg as sl
    import nanofn.scipy.signal as sg
    grad = nanofn.grad
la = jnp.linalg
rng = np.random.default_rng(5)


def _cx(*shape):
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


A, B, T, c = _cx(3, 3), _cx(3, 2), _cx(4, 3), _cx(3)
H = A @ A.conj().T + 3 * np.eye(3)


def R(o):
    """A real scalar from any output: the loss whose gradient is compared."""
    leaves = o if isinstance(o, (tuple, list)) else [o]
    return sum(jnp.sum(jnp.real(x) * 0.7 + jnp.imag(x) * 0.3) for x in leaves
               if hasattr(x, "dtype") and x.dtype.kind in "fc")


def P(vectors_and_values):
    """Phase-free outputs of a decomposition: the values and |vectors|^2."""
    return vectors_and_values[1], jnp.abs(vectors_and_values[0]) ** 2



C = {
    "la.cholesky": (lambda a: la.cholesky((a + a.conj().T) / 2), H),
    "la.cond": (la.cond, A),
    "la.cross": (lambda a: la.cross(a, a[::-1]), c),
    "la.det": (la.det, A),
    "la.diagonal": (la.diagonal, A),
    "la.eig": (lambda a: la.eig(a)[0], A),
    "la.eigh": (lambda a: P(la.eigh((a + a.conj().T) / 2)[::-1]), H),
    "la.eigvals": (la.eigvals, A),
    "la.eigvalsh": (la.eigvalsh, H),
    "la.inv": (la.inv, A),
    "la.lstsq": (lambda a: la.lstsq(a, T[:, 0])[0], T),
    "la.matmul": (lambda a: la.matmul(a, a), A),
    "la.matrix_norm": (lambda a: la.matrix_norm(a, ord=2), A),
    "la.matrix_power": (lambda a: la.matrix_power(a, 3), A),
    "la.matrix_rank": (la.matrix_rank, A),
    "la.matrix_transpose": (la.matrix_transpose, A),
    "la.multi_dot": (lambda a: la.multi_dot([a, a, a]), A),
    "la.norm": (lambda a: la.norm(a, "nuc"), A),
    "la.outer": (lambda a: la.outer(a, a), c),
    "la.pinv": (la.pinv, T),
    "la.qr": (lambda a: la.qr(a), T),
    "la.slogdet": (lambda a: tuple(la.slogdet(a)), A),
    "la.solve": (lambda a: la.solve(a, B), A),
    "la.svd": (lambda a: P(la.svd(a, full_matrices=False)), T),
    "la.svdvals": (la.svdvals, T),
    "la.tensordot": (lambda a: la.tensordot(a, a, axes=1), A),
    "la.tensorinv": (lambda a: la.tensorinv(a, ind=1), A),
    "la.tensorsolve": (lambda a: la.tensorsolve(a, c), A),
    "la.trace": (la.trace, A),
    "la.vecdot": (lambda a: la.vecdot(a, a[::-1]), c),
    "la.vector_norm": (lambda a: la.vector_norm(a, ord=3), c),
    "sl.block_diag": (lambda a: sl.block_diag(a, a[:1]), A),
    "sl.cho_factor": (lambda a: sl.cho_factor((a + a.conj().T) / 2)[0], H),
    "sl.cho_solve": (lambda a: sl.cho_solve(sl.cho_factor((a + a.conj().T) / 2), B), H),
    "sl.cholesky": (lambda a: sl.cholesky((a + a.conj().T) / 2), H),
    "sl.circulant": (sl.circulant, c),
    "sl.companion": (lambda a: sl.companion(jnp.concatenate([jnp.ones(1, a.dtype), a])), c),
    "sl.convolution_matrix": (lambda a: sl.convolution_matrix(a, 4), c),
    "sl.det": (sl.det, A),
    "sl.eigh": (lambda a: sl.eigh((a + a.conj().T) / 2, eigvals_only=True), H),
    "sl.expm": (lambda a: sl.expm(0.5 * a), A),
    "sl.expm_frechet": (lambda a: sl.expm_frechet(0.5 * a, A, compute_expm=False), A),
    "sl.funm": (lambda a: sl.funm(a, jnp.exp), H),
    "sl.hankel": (sl.hankel, c),
    "sl.hessenberg": (lambda a: jnp.abs(sl.hessenberg(a)), A),
    "sl.inv": (sl.inv, A),
    "sl.lu": (lambda a: sl.lu(a)[1:], A),
    "sl.lu_factor": (lambda a: sl.lu_factor(a)[0], A),
    "sl.lu_solve": (lambda a: sl.lu_solve(sl.lu_factor(a), B, trans=2), A),
    "sl.polar": (lambda a: sl.polar(a, side="right")[1], T),
    "sl.qr": (lambda a: sl.qr(a, mode="economic"), T),
    "sl.qr_multiply": (lambda a: sl.qr_multiply(a, B.T)[0], A),
    "sl.rsf2csf": (lambda a: jnp.abs(jnp.diagonal(sl.rsf2csf(*sl.schur(a))[0])), A.real.copy()),
    "sl.schur": (lambda a: jnp.abs(jnp.diagonal(sl.schur(a, output="complex")[0])), A),
    "sl.solve": (lambda a: sl.solve((a + a.conj().T) / 2, B, assume_a="pos"), H),
    "sl.solve_sylvester": (lambda a: sl.solve_sylvester(a + 3 * jnp.eye(3), a.T, A), A),
    "sl.solve_triangular": (lambda a: sl.solve_triangular(a + 3 * jnp.eye(3), B, trans="C"), A),
    "sl.sqrtm": (sl.sqrtm, H),
    "sl.svd": (lambda a: P(sl.svd(a, full_matrices=False)), T),
    "sl.toeplitz": (sl.toeplitz, c),
    "sg.istft": (lambda z: sg.istft(jnp.reshape(z, (3, 3)), nperseg=4)[1], A.ravel()),
}
out = {}
for k, (f, x) in C.items():
    try:
        v = f(x)
        val = [np.asarray(t) for t in (v if isinstance(v, (tuple, list)) else [v])]
    except Exception as e:
        out[k] = ("ERR", type(e).__name__); continue
    try:
        g = np.asarray(grad(lambda a: R(f(a)))(x))
    except Exception as e:
        g = ("ERR", type(e).__name__)
    out[k] = (val, g)
pickle.dump(out, open(sys.argv[2], "wb"))
