"""Linear-algebra cases whose values and gradients are recorded from JAX
(record_linalg.py, JAX only) and compared with nanofn (tests/test_linalg_vs_jax.py).

Each case is `make(numpy_linalg, scipy_linalg, numpy) -> f` plus its float64 inputs, the
same lambda run on JAX's and on nanofn's modules. `f` returns an array or a tuple of
arrays; the recorded gradient is that of `sum(w * out)` over every output, with fixed
weights (the real and imaginary parts of a complex output both count), so outputs defined
only up to sign (or phase) enter through sign-free expressions.
"""

from __future__ import annotations

import numpy as np

_rng = np.random.default_rng(20261206)


def _m(*shape):
    return _rng.normal(size=shape)


def _sep(m, n):
    """Well-separated singular values (unique singular vectors up to sign)."""
    k = min(m, n)
    u = np.linalg.qr(_m(m, m))[0][:, :k]
    v = np.linalg.qr(_m(n, n))[0][:, :k]
    return (u * (1.0 + 2.0 * np.arange(k)[::-1] + 0.3)) @ v.T


_A = _m(3, 3)
_B = _m(3, 2)
_SPD = _A @ _A.T + 3 * np.eye(3)
_RANK2 = _m(3, 2) @ _m(2, 3)
_RANK1 = np.outer(_m(3), _m(3))
_SEP43 = _sep(4, 3)
_SEP34 = _sep(3, 4)
_SYM = _SEP43[:3] + _SEP43[:3].T

CASES = {
    # det and its gradient, also at singular matrices (the adjugate)
    "det": (lambda la, sla, np_: la.det, [_A]),
    "det_rank2": (lambda la, sla, np_: la.det, [_RANK2]),
    "det_rank1": (lambda la, sla, np_: la.det, [_RANK1]),
    "slogdet": (lambda la, sla, np_: lambda a: la.slogdet(a)[1], [_A]),
    "inv": (lambda la, sla, np_: la.inv, [_A + 3 * np.eye(3)]),
    "solve": (lambda la, sla, np_: la.solve, [_A + 3 * np.eye(3), _B]),
    # decompositions, through sign-free functions of their vectors
    "svd_values": (lambda la, sla, np_: lambda a: la.svd(a, compute_uv=False), [_SEP43]),
    "svd_vectors_tall": (lambda la, sla, np_: lambda a: (
        la.svd(a, full_matrices=False)[0] ** 2, la.svd(a, full_matrices=False)[2] ** 2),
        [_SEP43]),
    "svd_vectors_wide": (lambda la, sla, np_: lambda a: (
        la.svd(a, full_matrices=False)[0] ** 2, la.svd(a, full_matrices=False)[2] ** 2),
        [_SEP34]),
    "svd_hermitian": (lambda la, sla, np_: lambda a: la.svd(a, hermitian=True,
                                                             compute_uv=False), [_SYM]),
    "eigh": (lambda la, sla, np_: lambda a: (la.eigh(a)[0], la.eigh(a)[1] ** 2), [_A]),
    # symmetric inputs: for a non-symmetric one JAX's rule re-decomposes (a + a.T) / 2
    # under differentiation, while nanofn keeps using the triangle it read
    "eigh_unsymmetrized": (lambda la, sla, np_: lambda a: (
        la.eigh(a, symmetrize_input=False)[0], la.eigh(a, symmetrize_input=False)[1] ** 2),
        [_SYM]),
    "eigh_upper": (lambda la, sla, np_: lambda a: la.eigh(a, UPLO="U",
                                                          symmetrize_input=False)[1] ** 2,
                   [_SYM]),
    "eigvalsh": (lambda la, sla, np_: la.eigvalsh, [_A]),
    "qr": (lambda la, sla, np_: lambda a: tuple(la.qr(a)), [_m(4, 3)]),
    "qr_complete_square": (lambda la, sla, np_: lambda a: tuple(la.qr(a, mode="complete")),
                           [_A]),
    "cholesky": (lambda la, sla, np_: la.cholesky, [_SPD]),
    "cholesky_unsymmetrized": (lambda la, sla, np_: lambda a: la.cholesky(
        a, symmetrize_input=False), [_SPD + np.triu(_m(3, 3), 1)]),
    "cholesky_upper": (lambda la, sla, np_: lambda a: la.cholesky(a, upper=True), [_SPD]),
    # composites
    "pinv": (lambda la, sla, np_: la.pinv, [_SEP43]),
    "pinv_rank1": (lambda la, sla, np_: la.pinv, [_RANK1]),
    "lstsq": (lambda la, sla, np_: lambda a, b: la.lstsq(a, b)[0], [_SEP43, _m(4, 2)]),
    "lstsq_resid": (lambda la, sla, np_: lambda a, b: la.lstsq(a, b)[1], [_SEP43, _m(4, 2)]),
    "matrix_power": (lambda la, sla, np_: lambda a: la.matrix_power(a, -3),
                     [_A + 3 * np.eye(3)]),
    "cond": (lambda la, sla, np_: la.cond, [_SEP43[:3]]),
    "cond_fro": (lambda la, sla, np_: lambda a: la.cond(a, "fro"), [_A + 3 * np.eye(3)]),
    "norm_2": (lambda la, sla, np_: lambda a: la.norm(a, 2), [_SEP43]),
    "norm_nuc": (lambda la, sla, np_: lambda a: la.norm(a, "nuc"), [_SEP43]),
    "tensorinv": (lambda la, sla, np_: lambda a: la.tensorinv(a, ind=1),
                  [np.reshape(_A + 3 * np.eye(3), (3, 3))]),
    "multi_dot": (lambda la, sla, np_: lambda a, b, c: la.multi_dot([a, b, c]),
                  [_m(3), _m(3, 4), _m(4, 2)]),
    "cross": (lambda la, sla, np_: la.cross, [_m(2, 3), _m(2, 3)]),
    # scipy.linalg
    "expm": (lambda la, sla, np_: sla.expm, [_A]),
    "expm_frechet": (lambda la, sla, np_: lambda a, e: sla.expm_frechet(
        a, e, compute_expm=False), [_A, _m(3, 3)]),
    "lu": (lambda la, sla, np_: lambda a: sla.lu(a)[1:], [_A]),
    "lu_wide": (lambda la, sla, np_: lambda a: sla.lu(a)[1:], [_m(2, 4)]),
    "lu_tall": (lambda la, sla, np_: lambda a: sla.lu(a)[1:], [_m(4, 2)]),
    "lu_factor": (lambda la, sla, np_: lambda a: sla.lu_factor(a)[0], [_A]),
    "lu_solve": (lambda la, sla, np_: lambda a, b: sla.lu_solve(sla.lu_factor(a), b),
                 [_A + 3 * np.eye(3), _B]),
    "solve_triangular": (lambda la, sla, np_: lambda a, b: sla.solve_triangular(
        a, b, lower=True), [_A + 3 * np.eye(3), _B]),
    "solve_triangular_trans_unit": (lambda la, sla, np_: lambda a, b: sla.solve_triangular(
        a, b, trans=1, unit_diagonal=True), [_A, _B]),
    "cho_solve": (lambda la, sla, np_: lambda a, b: sla.cho_solve(sla.cho_factor(a), b),
                  [_SPD, _B]),
    "scipy_cholesky": (lambda la, sla, np_: sla.cholesky, [_SPD]),
    "scipy_eigh_lower": (lambda la, sla, np_: lambda a: sla.eigh(a, eigvals_only=True), [_A]),
    "scipy_eigh_upper": (lambda la, sla, np_: lambda a: sla.eigh(a, lower=False,
                                                               eigvals_only=True), [_A]),
    "scipy_solve_pos": (lambda la, sla, np_: lambda a, b: sla.solve(a, b, assume_a="pos"),
                        [_SPD, _B]),
    "solve_sylvester": (lambda la, sla, np_: sla.solve_sylvester,
                        [_A + 3 * np.eye(3), _m(2, 2) + 3 * np.eye(2), _B]),
    "polar": (lambda la, sla, np_: lambda a: sla.polar(a)[1], [_SEP43]),
    "toeplitz": (lambda la, sla, np_: sla.toeplitz, [_m(3), _m(4)]),
    "block_diag": (lambda la, sla, np_: sla.block_diag, [_A, _B]),
}

# complex128 cases (drawn after the real ones, so those keep their values); outputs that
# are defined up to a phase enter through phase-free expressions (|u|^2, u @ vh)
_CA = _m(3, 3) + 1j * _m(3, 3)
_CT = _m(4, 2) + 1j * _m(4, 2)
_CB = _m(3, 2) + 1j * _m(3, 2)
_HPD = _CA @ _CA.conj().T + 3 * np.eye(3)
CASES.update({
    "c128_det": (lambda la, sla, np_: la.det, [_CA]),
    "c128_inv": (lambda la, sla, np_: la.inv, [_CA]),
    "c128_solve": (lambda la, sla, np_: la.solve, [_CA, _CB]),
    "c128_slogdet": (lambda la, sla, np_: lambda a: tuple(la.slogdet(a)), [_CA]),
    "c128_svd": (lambda la, sla, np_: lambda a: (lambda u, s, vh: (
        s, np_.abs(u) ** 2, u @ vh))(*la.svd(a)), [_CA]),
    "c128_svd_tall": (lambda la, sla, np_: lambda a: (lambda u, s, vh: (
        s, np_.abs(u) ** 2, u @ vh))(*la.svd(a, full_matrices=False)), [_CT]),
    "c128_svd_wide": (lambda la, sla, np_: lambda a: (lambda u, s, vh: (
        s, np_.abs(vh) ** 2, u @ vh))(*la.svd(a.T, full_matrices=False)), [_CT]),
    "c128_eigh": (lambda la, sla, np_: lambda a: (lambda w, v: (
        w, np_.abs(v) ** 2))(*la.eigh(a)), [_HPD]),
    "c128_cholesky": (lambda la, sla, np_: la.cholesky, [_HPD]),
    "c128_qr": (lambda la, sla, np_: lambda a: tuple(la.qr(a)), [_CT]),
    "c128_pinv": (lambda la, sla, np_: la.pinv, [_CT]),
    "c128_lstsq": (lambda la, sla, np_: lambda a, b: la.lstsq(a, b)[:2], [_CT, _m(4) + 0j]),
    "c128_norms": (lambda la, sla, np_: lambda a: (
        la.norm(a), la.norm(a, 2), la.norm(a, "nuc"), la.norm(a, 1), la.cond(a)), [_CA]),
    "c128_eigvals": (lambda la, sla, np_: la.eigvals, [_CA]),
    "eigvals_real": (lambda la, sla, np_: la.eigvals, [_A]),
    "c128_cho_solve": (lambda la, sla, np_: lambda a, b: sla.cho_solve(
        sla.cho_factor((a + a.conj().T) / 2), b), [_HPD, _CB]),
    "c128_expm": (lambda la, sla, np_: sla.expm, [0.3 * _CA]),
})


def weights(shape, index):
    """Fixed weights for output `index` of a case (the recorded gradient's direction)."""
    return np.random.default_rng(1000 + index).normal(size=shape)


def loss_term(np_, w, out):
    """The real number an output adds to the loss: sum(w * out), real and imaginary parts
    both for a complex output."""
    term = w * out
    return np_.sum(np_.real(term) + np_.imag(term)) if np_.iscomplexobj(out) else np_.sum(term)
