"""nanofn.scipy.spatial.transform (Rotation, Slerp) against scipy.spatial.transform, analytic
identities, gradients (check_grads), jit/vmap against eager, and argument errors."""

import warnings

import numpy as np
import pytest
import scipy.spatial.transform as sst
from hypothesis import given, settings
from hypothesis import strategies as st

import nanofn
from nanofn.scipy.spatial.transform import Rotation, Slerp
from nanofn.testing import check_grads

TOL = {np.float64: 1e-10, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]
SEQS = ["xyz", "zyx", "XYZ", "ZYX", "zxz", "XZX", "yxy", "YZX", "xzy"]

draw = settings(max_examples=25, deadline=None)
seeds = st.integers(0, 2 ** 32 - 1)
sizes = st.integers(1, 6)


def unit_quats(seed, n):
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def a(x):
    return np.asarray(x, dtype=np.float64)


def close(actual, expected, dtype, scale=1.0):
    np.testing.assert_allclose(a(actual), a(expected), rtol=0, atol=TOL[dtype] * scale)


def same_up_to_sign(q1, q2, dtype):
    q1, q2 = a(q1), a(q2)
    sign = np.where(np.sum(q1 * q2, axis=-1, keepdims=True) < 0, -1.0, 1.0)
    close(q1 * sign, q2, dtype)


def _canon(q):
    q = a(q).copy()
    q[q[:, 3] < 0] *= -1
    return q


# ---------------------------------------------------------------------------------------
# Conversions against scipy
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@draw
@given(seed=seeds, n=sizes)
def test_from_quat_conversions_match_scipy(dtype, seed, n):
    q = unit_quats(seed, n)
    raw = (q * np.random.default_rng(seed).uniform(0.5, 2.0, size=(n, 1))).astype(dtype)
    r, ref = Rotation.from_quat(raw), sst.Rotation.from_quat(q)
    assert r.quat.dtype == dtype and len(r) == n and not r.single
    for out in (r.as_matrix(), r.as_rotvec(), r.as_mrp(), r.as_quat(), r.magnitude()):
        assert out.dtype == dtype
    close(r.as_quat(), q, dtype)  # normalized, sign kept
    close(r.as_matrix(), ref.as_matrix(), dtype)
    close(r.as_rotvec(), ref.as_rotvec(), dtype)
    close(r.as_rotvec(degrees=True), ref.as_rotvec(degrees=True), dtype, scale=60)
    close(r.as_mrp(), ref.as_mrp(), dtype)
    close(r.magnitude(), ref.magnitude(), dtype)
    canon = _canon(q)
    close(r.as_quat(canonical=True), canon, dtype)
    close(r.as_quat(canonical=True, scalar_first=True), np.roll(canon, 1, axis=-1), dtype)
    close(r.as_quat(scalar_first=True), np.roll(q, 1, axis=-1), dtype)
    one = Rotation.from_quat(raw[0])
    assert one.single and one.quat.shape == (4,)
    close(one.as_matrix(), ref[0].as_matrix(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@draw
@given(seed=seeds, n=sizes)
def test_from_matrix_matches_scipy(dtype, seed, n):
    ref = sst.Rotation.from_quat(unit_quats(seed, n))
    r = Rotation.from_matrix(ref.as_matrix().astype(dtype))
    assert r.quat.dtype == dtype
    close(r.as_quat(canonical=True), ref.as_quat(canonical=True), dtype)
    close(r.as_matrix(), ref.as_matrix(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@draw
@given(seed=seeds, n=sizes)
def test_from_rotvec_and_mrp_match_scipy(dtype, seed, n):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 3)) * rng.choice([1e-6, 1e-2, 1.0, 3.0], size=(n, 1))
    ref = sst.Rotation.from_rotvec(v)
    r = Rotation.from_rotvec(v.astype(dtype))
    assert r.quat.dtype == dtype
    close(r.as_quat(canonical=True), ref.as_quat(canonical=True), dtype)
    r_deg = Rotation.from_rotvec(np.rad2deg(v).astype(dtype), degrees=True)
    close(r_deg.as_matrix(), ref.as_matrix(), dtype)
    # round trip for angles below pi
    short = v * np.minimum(1.0, 3.0 / np.linalg.norm(v, axis=1, keepdims=True))
    close(Rotation.from_rotvec(short.astype(dtype)).as_rotvec(), short, dtype)
    # MRPs of any norm; the round trip returns the one of norm <= 1
    p = rng.normal(size=(n, 3))
    r_mrp = Rotation.from_mrp(p.astype(dtype))
    ref_mrp = sst.Rotation.from_mrp(p)
    close(r_mrp.as_matrix(), ref_mrp.as_matrix(), dtype)
    close(r_mrp.as_mrp(), ref_mrp.as_mrp(), dtype)
    assert np.all(np.linalg.norm(a(r_mrp.as_mrp()), axis=1) <= 1 + TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seq", SEQS)
@draw
@given(seed=seeds, n=sizes)
def test_euler_matches_scipy(dtype, seq, seed, n):
    rng = np.random.default_rng(seed)
    angles = rng.uniform(-np.pi, np.pi, size=(n, 3))
    ref = sst.Rotation.from_euler(seq, angles)
    r = Rotation.from_euler(seq, angles.astype(dtype))
    assert r.quat.dtype == dtype
    close(r.as_matrix(), ref.as_matrix(), dtype)
    close(Rotation.from_euler(seq, np.rad2deg(angles).astype(dtype), degrees=True).as_matrix(),
          ref.as_matrix(), dtype)
    q = unit_quats(seed, n)
    out = Rotation.from_quat(q.astype(dtype)).as_euler(seq)
    assert out.dtype == dtype
    if dtype == np.float64:
        close(out, sst.Rotation.from_quat(q).as_euler(seq), dtype)
        close(Rotation.from_quat(q).as_euler(seq, degrees=True),
              sst.Rotation.from_quat(q).as_euler(seq, degrees=True), dtype, scale=60)
    else:  # outer angles are ill-conditioned near gimbal lock: compare the rotations
        back = Rotation.from_euler(seq, out).as_matrix()
        close(back, sst.Rotation.from_quat(q).as_matrix(), dtype)


@pytest.mark.parametrize("seq", ["x", "Y", "xy", "ZX", "zy"])
def test_euler_fewer_axes_match_scipy(seq):
    rng = np.random.default_rng(3)
    angles = rng.uniform(-3, 3, size=(5, len(seq)))
    close(Rotation.from_euler(seq, angles).as_matrix(),
          sst.Rotation.from_euler(seq, angles).as_matrix(), np.float64)
    single = Rotation.from_euler(seq, angles[0])
    assert single.single
    if len(seq) == 1:  # a scalar angle makes a single rotation too
        close(Rotation.from_euler(seq, angles[0, 0]).as_quat(), single.as_quat(),
              np.float64)


@pytest.mark.parametrize("seq", SEQS)
def test_as_euler_gimbal_lock_matches_scipy(seq):
    symmetric = seq[0].lower() == seq[2].lower()
    for middle in ([0.0, np.pi] if symmetric else [np.pi / 2, -np.pi / 2]):
        ref = sst.Rotation.from_euler(seq, [0.3, middle, 0.5])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = ref.as_euler(seq)
        got = Rotation.from_quat(ref.as_quat()).as_euler(seq)
        np.testing.assert_allclose(a(got), expected, atol=1e-6)
        close(Rotation.from_euler(seq, got).as_matrix(), ref.as_matrix(), np.float64, 1e3)


# ---------------------------------------------------------------------------------------
# Using rotations: apply, composition, inverse, mean; analytic identities
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@draw
@given(seed=seeds, n=sizes)
def test_apply_compose_inverse_match_scipy(dtype, seed, n):
    rng = np.random.default_rng(seed)
    q1, q2 = unit_quats(seed, n), unit_quats(seed + 1, n)
    v = rng.normal(size=(n, 3))
    r1, r2 = Rotation.from_quat(q1.astype(dtype)), Rotation.from_quat(q2.astype(dtype))
    s1, s2 = sst.Rotation.from_quat(q1), sst.Rotation.from_quat(q2)
    vd = v.astype(dtype)
    close(r1.apply(vd), s1.apply(v), dtype)
    close(r1.apply(vd, inverse=True), s1.apply(v, inverse=True), dtype)
    close(r1.apply(vd[0]), s1.apply(v[0]), dtype)         # N rotations, one vector
    close(r1[0].apply(vd), s1[0].apply(v), dtype)          # one rotation, N vectors
    assert r1[0].apply(vd[0]).shape == (3,)
    close((r1 * r2).as_matrix(), (s1 * s2).as_matrix(), dtype)
    close((r1[0] * r2).as_matrix(), (s1[0] * s2).as_matrix(), dtype)
    close(r1.inv().as_matrix(), s1.inv().as_matrix(), dtype)
    assert (r1 * r2).quat.dtype == dtype and r1.apply(vd).dtype == dtype
    # identities
    m1, m2 = a(r1.as_matrix()), a(r2.as_matrix())
    close(np.einsum("nij,nkj->nik", m1, m1), np.broadcast_to(np.eye(3), m1.shape), dtype)
    close(np.linalg.det(m1), np.ones(n), dtype)
    close(r1.apply(vd), np.einsum("nij,nj->ni", m1, v), dtype)
    close((r1 * r2).as_matrix(), m1 @ m2, dtype)
    close((r1 * r1.inv()).as_quat(canonical=True), np.tile([0.0, 0, 0, 1], (n, 1)), dtype)
    close(r1.inv().apply(r1.apply(vd)), v, dtype)
    close(r1.magnitude(), np.linalg.norm(a(r1.as_rotvec()), axis=1), dtype)


@draw
@given(seed=seeds, n=st.integers(1, 8))
def test_mean_matches_scipy(seed, n):
    q = unit_quats(seed, n)
    w = np.random.default_rng(seed).uniform(0.1, 1.0, size=n)
    r, ref = Rotation.from_quat(q), sst.Rotation.from_quat(q)
    same_up_to_sign(r.mean().as_quat(), ref.mean().as_quat(), np.float64)
    same_up_to_sign(r.mean(w).as_quat(), ref.mean(w).as_quat(), np.float64)
    same_up_to_sign(r[0].mean().as_quat(), q[0], np.float64)


def test_identity_random_concatenate_indexing():
    ident = Rotation.identity()
    assert ident.single and ident.quat.dtype == np.float32
    np.testing.assert_array_equal(a(ident.quat), [0, 0, 0, 1])
    assert Rotation.identity(dtype=np.float64).quat.dtype == np.float64
    assert Rotation.identity(3).quat.shape == (3, 4) and len(Rotation.identity(3)) == 3
    key = nanofn.random.PRNGKey(0)
    r = Rotation.random(key, 200)
    assert r.quat.shape == (200, 4)
    np.testing.assert_allclose(np.linalg.norm(a(r.quat), axis=1), 1, atol=1e-6)
    np.testing.assert_array_equal(a(Rotation.random(key, 200).quat), a(r.quat))
    assert abs(float(np.mean(a(r.as_quat(canonical=True))[:, :3]))) < 0.1
    assert Rotation.random(key).single
    both = Rotation.concatenate([ident, Rotation.identity(2), r[:3]])
    assert len(both) == 6
    np.testing.assert_array_equal(a(both[3:].quat), a(r[:3].quat))
    np.testing.assert_array_equal(a(r[5].quat), a(r.quat[5]))
    with pytest.raises(TypeError):
        ident[0]
    with pytest.raises(TypeError):
        len(ident)


def test_rotation_is_a_pytree():
    r = Rotation.from_rotvec(np.ones((2, 3)))
    leaves, treedef = nanofn.tree_util.tree_flatten(r)
    assert len(leaves) == 1 and leaves[0] is r.quat
    assert isinstance(nanofn.tree_util.tree_unflatten(treedef, leaves), Rotation)
    paths = [nanofn.tree_util.keystr(p)
             for p, _ in nanofn.tree_util.tree_leaves_with_path(r)]
    assert paths == [".quat"]
    # two-tree maps work for single and batched rotations alike
    for rot in (r, r[0]):
        summed = nanofn.tree_util.tree_map(lambda x, y: x + y, rot, rot)
        np.testing.assert_allclose(a(summed.quat), 2 * a(rot.quat))
    s = Slerp.init([0.0, 1.0], r)
    assert len(nanofn.tree_util.tree_leaves(s)) == 4


# ---------------------------------------------------------------------------------------
# Slerp
# ---------------------------------------------------------------------------------------

@draw
@given(seed=seeds, n=st.integers(2, 5))
def test_slerp_matches_scipy_and_hits_keys(seed, n):
    rng = np.random.default_rng(seed)
    q = unit_quats(seed, n)
    times = np.cumsum(rng.uniform(0.2, 2.0, size=n))
    slerp = Slerp.init(times, Rotation.from_quat(q))
    ref = sst.Slerp(times, sst.Rotation.from_quat(q))
    t = np.sort(rng.uniform(times[0], times[-1], size=7))
    close(slerp(t).as_matrix(), ref(t).as_matrix(), np.float64)
    close(slerp(times).as_matrix(), sst.Rotation.from_quat(q).as_matrix(), np.float64)
    one = slerp(float(t[3]))
    assert one.single
    close(one.as_matrix(), ref(t[3]).as_matrix(), np.float64)
    # constant angular speed inside each interval: the angle from the interval's start
    # grows linearly in time
    for k in range(n - 1):
        ts = np.linspace(times[k], times[k + 1], 5)
        start = Rotation.from_quat(q[k])
        angles = a((start.inv() * slerp(ts)).magnitude())
        total = a((start.inv() * Rotation.from_quat(q[k + 1])).magnitude())
        close(angles, total * (ts - times[k]) / (times[k + 1] - times[k]), np.float64, 1e2)


def test_slerp_dtype_and_extrapolation():
    keys = Rotation.from_rotvec(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 3.0]],
                                         dtype=np.float32))
    slerp = Slerp.init([0, 1, 2], keys)
    assert slerp.times.dtype == np.float32 and slerp(0.5).quat.dtype == np.float32
    # outside the key times the first and last intervals continue at their own speed
    np.testing.assert_allclose(a(slerp(np.array([-0.5, 2.5])).as_rotvec()),
                               [[0, 0, -0.5], [0, 0, 4.0 - 2 * np.pi]], atol=1e-5)


# ---------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------

X = np.array([[0.3, -1.2, 0.8], [1.0, 0.5, -0.4]])


@pytest.mark.parametrize("v", [np.array([0.4, -0.7, 1.1]), np.array([2e-4, -1e-4, 3e-4]),
                               np.zeros(3)])
def test_grad_from_rotvec_apply(v):
    check_grads(lambda v: Rotation.from_rotvec(v).apply(X), (v,), order=2)


def test_grad_from_rotvec_at_zero_is_exact():
    # at v = 0: d/dv (R(v) x) = -[x]_x, the cross-product matrix of x
    jac = nanofn.jacobian(lambda v: Rotation.from_rotvec(v).apply(X[0]))(np.zeros(3))
    x = X[0]
    cross = np.array([[0, -x[2], x[1]], [x[2], 0, -x[0]], [-x[1], x[0], 0]])
    np.testing.assert_allclose(a(jac), -cross, atol=1e-12)
    jac = nanofn.jacobian(lambda q: Rotation(q).as_rotvec())(np.array([0.0, 0, 0, 1]))
    np.testing.assert_allclose(a(jac), np.hstack([2 * np.eye(3), np.zeros((3, 1))]),
                               atol=1e-12)


def test_grad_conversions():
    q = np.array([0.3, -0.5, 0.2, 0.75])
    check_grads(lambda q: Rotation.from_quat(q).as_matrix(), (q,), order=2)
    check_grads(lambda q: Rotation.from_quat(q).as_rotvec(), (q,), order=1)
    check_grads(lambda q: Rotation.from_quat(q).as_euler("zyx"), (q,), order=1)
    check_grads(lambda m: Rotation.from_matrix(m).as_quat(),
                (sst.Rotation.from_quat(q).as_matrix(),), order=1)
    check_grads(lambda p: Rotation.from_mrp(p).as_matrix(), (np.array([0.2, -0.3, 0.5]),),
                order=1)
    angles = np.array([0.4, -0.3, 1.2])
    for seq in ("xyz", "ZXZ"):
        check_grads(lambda e: Rotation.from_euler(seq, e).apply(X), (angles,), order=2)


def test_grad_slerp_time():
    keys = Rotation.from_quat(unit_quats(7, 3))
    slerp = Slerp.init(np.array([0.0, 1.0, 2.5]), keys)
    for t in (0.3, 1.7):
        check_grads(lambda t: slerp(t).as_matrix(), (t,), order=2)
    check_grads(lambda t: slerp(t).apply(X), (np.array([0.2, 1.4]),), order=1)
    # d/dt of the angle travelled equals the interval's constant angular speed
    speed = float((keys[0].inv() * keys[1]).magnitude()) / (1.0 - 0.0)
    dangle = nanofn.grad(lambda t: (keys[0].inv() * slerp(t)).magnitude())(np.float64(0.4))
    np.testing.assert_allclose(float(dangle), speed, rtol=1e-8)


# ---------------------------------------------------------------------------------------
# jit and vmap equal eager
# ---------------------------------------------------------------------------------------

def test_jit_and_vmap_equal_eager():
    v = np.random.default_rng(0).normal(size=(4, 3))
    f = lambda v, x: Rotation.from_rotvec(v).apply(x)  # noqa: E731
    eager = f(v, X[0])
    np.testing.assert_allclose(a(nanofn.jit(f)(v, X[0])), a(eager), atol=1e-12)
    np.testing.assert_allclose(a(nanofn.vmap(f, in_axes=(0, None))(v, X[0])), a(eager),
                               atol=1e-12)
    # Rotations as jit arguments and results, and vmapped over
    r = Rotation.from_rotvec(v)
    g = nanofn.jit(lambda r, s: (r * s.inv(), r.as_euler("ZXY")))
    comp, eul = g(r, r[::-1])
    assert isinstance(comp, Rotation)
    np.testing.assert_allclose(a(comp.quat), a((r * r[::-1].inv()).quat), atol=1e-12)
    np.testing.assert_allclose(a(eul), a(r.as_euler("ZXY")), atol=1e-12)
    mats = nanofn.vmap(lambda rot: rot.as_matrix())(r)
    np.testing.assert_allclose(a(mats), a(r.as_matrix()), atol=1e-12)
    # Slerp through jit (as an argument) and vmap (over times)
    slerp = Slerp.init([0.0, 1.0, 2.0], Rotation.from_quat(unit_quats(1, 3)))
    t = np.array([0.1, 0.9, 1.6])
    eager = slerp(t).as_quat()
    np.testing.assert_allclose(a(nanofn.jit(lambda s, t: s(t).as_quat())(slerp, t)),
                               a(eager), atol=1e-12)
    np.testing.assert_allclose(a(nanofn.vmap(lambda t: slerp(t).as_quat())(t)), a(eager),
                               atol=1e-12)


def test_traced_flags_and_nd_batches():
    # as in JAX, `inverse` and `degrees` may be traced values
    v = np.array([0.3, -0.2, 0.9])
    f = nanofn.jit(lambda v, inv: Rotation.from_rotvec(v).apply(X, inverse=inv))
    for inv in (True, False):
        np.testing.assert_allclose(a(f(v, inv)), a(Rotation.from_rotvec(v).apply(X, inv)),
                                   atol=1e-12)
    g = nanofn.vmap(lambda d: Rotation.from_rotvec(v, degrees=d).as_rotvec(degrees=d))
    np.testing.assert_allclose(a(g(np.array([True, False]))), np.stack([v, v]), atol=1e-12)
    # batches with several axes broadcast like any array
    angles = np.random.default_rng(2).uniform(-1, 1, size=(2, 4, 3))
    r = Rotation.from_euler("XYZ", angles)
    assert r.quat.shape == (2, 4, 4) and len(r) == 2
    np.testing.assert_allclose(a(r.as_euler("XYZ")), angles, atol=1e-12)
    ref = sst.Rotation.from_euler("XYZ", angles.reshape(-1, 3))
    np.testing.assert_allclose(a(r.apply(X[0])).reshape(-1, 3), ref.apply(X[0]), atol=1e-12)


# ---------------------------------------------------------------------------------------
# Argument errors
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: Rotation.from_quat(np.ones(3)), r"`quat`.*\(3,\)"),
    (lambda: Rotation.from_quat(np.ones((2, 5))), r"`quat`.*\(2, 5\)"),
    (lambda: Rotation.from_matrix(np.eye(2)), r"`matrix`.*\(2, 2\)"),
    (lambda: Rotation.from_matrix(np.ones((4, 3, 4))), r"`matrix`.*\(4, 3, 4\)"),
    (lambda: Rotation.from_rotvec(np.ones(2)), r"`rotvec`.*\(2,\)"),
    (lambda: Rotation.from_mrp(np.ones((3, 4))), r"`mrp`.*\(3, 4\)"),
    (lambda: Rotation.from_euler("xyzx", np.ones(4)), r"`seq`.*'xyzx'"),
    (lambda: Rotation.from_euler("", np.ones(1)), r"`seq`.*''"),
    (lambda: Rotation.from_euler("abc", np.ones(3)), r"`seq`.*'abc'"),
    (lambda: Rotation.from_euler("xYz", np.ones(3)), r"`seq`.*mixing.*'xYz'"),
    (lambda: Rotation.from_euler("xxy", np.ones(3)), r"consecutive.*`seq`.*'xxy'"),
    (lambda: Rotation.from_euler("xyz", np.ones(2)), r"`angles`.*\(2,\)"),
    (lambda: Rotation.from_euler("z", np.ones(2)), r"`angles`.*\(2,\)"),
    (lambda: Rotation.identity().as_euler("xy"), r"`seq`.*'xy'"),
    (lambda: Rotation.identity().as_euler("XyZ"), r"`seq`.*'XyZ'"),
    (lambda: Rotation.identity().apply(np.ones(2)), r"`vectors`.*\(2,\)"),
    (lambda: Rotation.identity(2).apply(np.ones((3, 3))), r"`vectors`.*\(3, 3\)"),
    (lambda: Rotation.identity(2).mean(np.ones((2, 1))), r"`weights`.*\(2, 1\)"),
    (lambda: Rotation.identity(2).mean(np.ones(3)), r"`weights`.*3 weights"),
    (lambda: Slerp.init([0.0], Rotation.identity(1)), r"`rotations`"),
    (lambda: Slerp.init([0.0, 1.0], Rotation.identity()), r"`rotations`"),
    (lambda: Slerp.init([0.0, 1.0, 2.0], Rotation.identity(2)), r"`times`.*3 times"),
    (lambda: Slerp.init([[0.0, 1.0]], Rotation.identity(2)), r"`times`.*\(1, 2\)"),
    (lambda: Slerp.init([0.0, 1.0], Rotation.identity(2))(np.ones((2, 2))), r"`times`"),
])
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_slerp_needs_a_rotation():
    with pytest.raises(TypeError, match="`rotations`"):
        Slerp.init([0.0, 1.0], np.ones((2, 4)))
