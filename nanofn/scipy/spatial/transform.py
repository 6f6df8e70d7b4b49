"""nanofn.scipy.spatial.transform: 3-D rotations (jax.scipy.spatial.transform's names).

`Rotation` holds one rotation or a batch of them as unit quaternions in scalar-last order
``(x, y, z, w)``, the convention of scipy and JAX; `Slerp` interpolates between key
rotations. Both are namedtuples of arrays and pytrees, so they pass through `nanofn.jit`,
`nanofn.vmap` and `nanofn.grad`, and every method is a pure function of the arrays.

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.scipy.spatial.transform import Rotation
    >>> r = Rotation.from_euler('z', 90, degrees=True)
    >>> fnp.round(r.apply(fnp.array([1.0, 0.0, 0.0])), 5) + 0.0
    Array([0., 1., 0.], dtype=float32)
"""

from __future__ import annotations

import typing

import numpy as np

import nanofn.numpy as fnp
from nanofn import tree_util as _tree_util
from nanofn.numpy._dtypes import asarray_value, promote_float

__all__ = ["Rotation", "Slerp"]

# Below this angle (radians) the rotation-vector maps use their Taylor series, which are
# smooth (and exactly differentiable) at the identity rotation.
_SMALL_ANGLE = 1e-3
# |middle Euler angle - 0 or pi| below which `as_euler` reports gimbal lock.
_GIMBAL_EPS = 1e-7


# ---------------------------------------------------------------------------------------
# Argument checks (on static shapes and strings only: nothing here looks at values)
# ---------------------------------------------------------------------------------------

def _float_array(x):
    """`x` as an array of a floating dtype (integers become the default float)."""
    return promote_float(asarray_value(x))[0]


def _check_vectors(x, size, method, arg):
    """`x` as a float array of shape (..., size), else a ValueError naming `arg`."""
    x = _float_array(x)
    if x.ndim < 1 or x.shape[-1] != size:
        raise ValueError(f"Rotation.{method}: `{arg}` must have shape (..., {size}) "
                         f"(last axis of length {size}), got shape {tuple(x.shape)}")
    return x


def _choose(flag, if_true, if_false):
    """``if_true()`` or ``if_false()`` for a Python (or NumPy) flag; for a traced flag
    (JAX's `degrees` and `inverse` may be traced too), both, merged by `fnp.where`."""
    if isinstance(flag, (bool, int, np.bool_, np.integer)) or (
            isinstance(flag, np.ndarray) and flag.ndim == 0):
        return if_true() if flag else if_false()
    return fnp.where(flag, if_true(), if_false())


def _check_seq(seq, method, min_len, max_len):
    """Validate an Euler axis sequence; returns (axis indices, extrinsic?)."""
    if not isinstance(seq, str):
        raise ValueError(f"Rotation.{method}: `seq` must be a string such as 'xyz' or 'ZXZ', "
                         f"got {seq!r}")
    if not min_len <= len(seq) <= max_len:
        wanted = "3 axes" if min_len == max_len else f"{min_len} to {max_len} axes"
        raise ValueError(f"Rotation.{method}: `seq` must name {wanted}, got {seq!r} "
                         f"({len(seq)} characters)")
    extrinsic = all(c in "xyz" for c in seq)
    intrinsic = all(c in "XYZ" for c in seq)
    if not (extrinsic or intrinsic):
        raise ValueError(
            f"Rotation.{method}: `seq` must use only 'x', 'y', 'z' (extrinsic) or only "
            f"'X', 'Y', 'Z' (intrinsic), without mixing the two, got {seq!r}")
    for a, b in zip(seq, seq[1:]):
        if a == b:
            raise ValueError(f"Rotation.{method}: consecutive axes of `seq` must differ, "
                             f"got {seq!r}")
    return ["xyz".index(c) for c in seq.lower()], extrinsic


# ---------------------------------------------------------------------------------------
# Quaternion arithmetic on the last axis, scalar-last (x, y, z, w); batch axes broadcast
# ---------------------------------------------------------------------------------------

def _parts(q):
    return q[..., 0], q[..., 1], q[..., 2], q[..., 3]


def _safe_norm(v):
    """Euclidean norm over the last axis whose derivative at 0 is 0 rather than NaN."""
    sq = fnp.sum(v * v, axis=-1)
    nonzero = sq > 0
    return fnp.where(nonzero, fnp.sqrt(fnp.where(nonzero, sq, 1.0)), 0.0)


def _normalize(q):
    return q / fnp.sqrt(fnp.sum(q * q, axis=-1, keepdims=True))


def _multiply(p, q):
    """Hamilton product p * q (the rotation q followed by p)."""
    px, py, pz, pw = _parts(p)
    qx, qy, qz, qw = _parts(q)
    return fnp.stack([pw * qx + px * qw + py * qz - pz * qy,
                      pw * qy + py * qw + pz * qx - px * qz,
                      pw * qz + pz * qw + px * qy - py * qx,
                      pw * qw - px * qx - py * qy - pz * qz], axis=-1)


def _conjugate(q):
    return fnp.concatenate([-q[..., :3], q[..., 3:]], axis=-1)


def _positive_w(q):
    """The quaternion of the same rotation whose scalar part is >= 0."""
    return fnp.where(q[..., 3:] < 0, -q, q)


def _canonical(q):
    """scipy's canonical sign: w > 0, or the first nonzero of (w, x, y, z) positive."""
    x, y, z, w = _parts(q)
    w0, x0, y0 = w == 0, x == 0, y == 0
    flip = (w < 0) | (w0 & (x < 0)) | (w0 & x0 & (y < 0)) | (w0 & x0 & y0 & (z < 0))
    return fnp.where(flip[..., None], -q, q)


def _to_matrix(q):
    x, y, z, w = _parts(q)
    xx, yy, zz, ww = x * x, y * y, z * z, w * w
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    rows = [[ww + xx - yy - zz, 2 * (xy - wz), 2 * (xz + wy)],
            [2 * (xy + wz), ww - xx + yy - zz, 2 * (yz - wx)],
            [2 * (xz - wy), 2 * (yz + wx), ww - xx - yy + zz]]
    return fnp.stack([fnp.stack(row, axis=-1) for row in rows], axis=-2)


def _from_matrix(m):
    # Four candidate (unnormalized) quaternions, each accurate when its leading term
    # (a diagonal entry, or the trace) is the largest; pick that one per rotation.
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    trace = m00 + m11 + m22
    candidates = fnp.stack([
        fnp.stack([1 + 2 * m00 - trace, m01 + m10, m02 + m20, m21 - m12], axis=-1),
        fnp.stack([m01 + m10, 1 + 2 * m11 - trace, m12 + m21, m02 - m20], axis=-1),
        fnp.stack([m02 + m20, m12 + m21, 1 + 2 * m22 - trace, m10 - m01], axis=-1),
        fnp.stack([m21 - m12, m02 - m20, m10 - m01, 1 + trace], axis=-1),
    ], axis=-2)
    best = fnp.argmax(fnp.stack([m00, m11, m22, trace], axis=-1), axis=-1)
    pick = (fnp.arange(4) == best[..., None])[..., None]
    return _normalize(fnp.sum(fnp.where(pick, candidates, 0.0), axis=-2))


def _from_rotvec(v):
    angle_sq = fnp.sum(v * v, axis=-1)
    small = angle_sq <= _SMALL_ANGLE ** 2
    angle = fnp.where(small, 1.0, _safe_norm(v))  # only used where the angle is large
    # sin(a/2)/a and cos(a/2), with their series in a^2 near a = 0
    scale = fnp.where(small, 0.5 - angle_sq / 48 + angle_sq * angle_sq / 3840,
                      fnp.sin(angle / 2) / angle)
    w = fnp.where(small, 1 - angle_sq / 8 + angle_sq * angle_sq / 384, fnp.cos(angle / 2))
    return fnp.concatenate([scale[..., None] * v, w[..., None]], axis=-1)


def _to_rotvec(q):
    q = _positive_w(q)  # angle in [0, pi]
    angle = 2 * fnp.arctan2(_safe_norm(q[..., :3]), q[..., 3])
    small = angle <= _SMALL_ANGLE
    safe = fnp.where(small, 1.0, angle)
    sq = angle * angle
    # a / sin(a/2), with its series near a = 0
    scale = fnp.where(small, 2 + sq / 12 + 7 * sq * sq / 2880, safe / fnp.sin(safe / 2))
    return scale[..., None] * q[..., :3]


def _from_mrp(p):
    sq = fnp.sum(p * p, axis=-1, keepdims=True)
    return fnp.concatenate([2 * p, 1 - sq], axis=-1) / (1 + sq)


def _to_mrp(q):
    q = _positive_w(q)  # the MRP of norm <= 1
    return q[..., :3] / (1 + q[..., 3:])


def _axis_quat(axis, angle):
    """Quaternion of a rotation by `angle` about the coordinate axis `axis` (0, 1, 2)."""
    half = angle / 2
    zero = fnp.zeros_like(half)
    parts = [zero, zero, zero, fnp.cos(half)]
    parts[axis] = fnp.sin(half)
    return fnp.stack(parts, axis=-1)


def _to_euler(q, axes, extrinsic):
    # Quaternion-to-Euler in the manner of Bernardes & Viollet (2022), the method scipy
    # uses. Axes are static, so every branch on them is a Python branch.
    first, third = (0, 2) if extrinsic else (2, 0)
    i, j, k = axes if extrinsic else axes[::-1]
    symmetric = i == k
    if symmetric:
        k = 3 - i - j
    sign = (i - j) * (j - k) * (k - i) // 2  # +1 for a cyclic (i, j, k), else -1
    qw, qi, qj, qk = q[..., 3], q[..., i], q[..., j], q[..., k]
    if symmetric:
        a, b, c, d = qw, qi, qj, qk * sign
    else:
        a, b, c, d = qw - qj, qi + qk * sign, qj + qw, qk * sign - qi
    middle = 2 * fnp.arctan2(fnp.hypot(c, d), fnp.hypot(a, b))
    half_sum = fnp.arctan2(b, a)
    half_diff = fnp.arctan2(d, c)
    # Gimbal lock (middle angle 0 or pi): only the sum or the difference of the outer
    # angles is defined; scipy's convention puts it all in angles[0] and sets angles[2] = 0.
    at_zero = fnp.abs(middle) <= _GIMBAL_EPS
    at_pi = fnp.abs(middle - np.pi) <= _GIMBAL_EPS
    locked = at_zero | at_pi
    outer = {first: half_sum - half_diff, third: half_sum + half_diff}
    locked_0 = fnp.where(at_zero, 2 * half_sum, 2 * half_diff * (-1 if extrinsic else 1))
    ang0 = fnp.where(locked, locked_0, outer[0])
    ang2 = fnp.where(locked, 0.0, outer[2])
    if not symmetric:
        if third == 0:
            ang0 = ang0 * sign
        else:
            ang2 = ang2 * sign
        middle = middle - np.pi / 2
    # outer angles into [-pi, pi]
    ang0 = fnp.where(ang0 < -np.pi, ang0 + 2 * np.pi,
                     fnp.where(ang0 > np.pi, ang0 - 2 * np.pi, ang0))
    ang2 = fnp.where(ang2 < -np.pi, ang2 + 2 * np.pi,
                     fnp.where(ang2 > np.pi, ang2 - 2 * np.pi, ang2))
    return fnp.stack([ang0, middle, ang2], axis=-1)


# ---------------------------------------------------------------------------------------
# Rotation
# ---------------------------------------------------------------------------------------

class Rotation(typing.NamedTuple):
    """One 3-D rotation, or a batch of them (jax.scipy.spatial.transform.Rotation).

    The nanofn counterpart of :class:`scipy.spatial.transform.Rotation`. The one field,
    `quat`, holds unit quaternions in scalar-last order ``(x, y, z, w)``: shape ``(4,)``
    for a single rotation, ``(N, 4)`` (or more batch axes) for several. Build one with the
    ``from_*`` class methods, `identity` or `random`; calling ``Rotation(quat)`` directly
    stores `quat` as given, without normalizing it. A Rotation is a pytree with the one leaf
    `quat`, so it can be an argument or result of `nanofn.jit` and `nanofn.vmap`.

    Float32 and float64 inputs keep their dtype; integer inputs become float32.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.spatial.transform import Rotation
        >>> r = Rotation.from_euler('z', 90, degrees=True)
        >>> fnp.round(r.as_rotvec(), 4)
        Array([0.    , 0.    , 1.5708], dtype=float32)
        >>> r2 = Rotation.from_euler('x', 90, degrees=True)
        >>> fnp.round((r * r2).as_matrix(), 4) + 0.0
        Array([[0., 0., 1.],
               [1., 0., 0.],
               [0., 1., 0.]], dtype=float32)
    """

    quat: typing.Any

    # --- constructors ------------------------------------------------------------------

    @classmethod
    def concatenate(cls, rotations: typing.Sequence):
        """Join rotations into one batch, in order (a single rotation counts as a batch
        of one).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> r = Rotation.concatenate([Rotation.identity(),
            ...                           Rotation.from_rotvec(fnp.zeros((2, 3)))])
            >>> len(r)
            3
        """
        quats = [fnp.atleast_2d(rot.quat) for rot in rotations]
        if not quats:
            raise ValueError("Rotation.concatenate: `rotations` must not be empty")
        return cls(fnp.concatenate(quats, axis=0))

    @classmethod
    def from_euler(cls, seq: str, angles, degrees: bool = False):
        """Rotations from Euler angles about the axes named in `seq`.

        `seq` names 1 to 3 axes: lowercase ``'x'``, ``'y'``, ``'z'`` for rotations about
        the fixed frame's axes (extrinsic), or uppercase ``'X'``, ``'Y'``, ``'Z'`` for
        rotations about the rotating body's axes (intrinsic); the two cannot be mixed and
        consecutive axes must differ. `angles` has shape ``(..., len(seq))``, in radians
        unless `degrees`; for a one-axis `seq` a scalar is also accepted.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> r = Rotation.from_euler('xyz', fnp.array([90.0, 0.0, 0.0]), degrees=True)
            >>> fnp.round(r.as_quat(), 4)
            Array([0.7071, 0.    , 0.    , 0.7071], dtype=float32)
        """
        axes, extrinsic = _check_seq(seq, "from_euler", 1, 3)
        angles = _float_array(angles)
        if angles.ndim == 0 and len(seq) == 1:
            angles = angles[None]
        if angles.ndim < 1 or angles.shape[-1] != len(seq):
            raise ValueError(
                f"Rotation.from_euler: `angles` must have shape (..., {len(seq)}) to match "
                f"seq={seq!r} (one angle per axis; use shape (N, 1) for N rotations about "
                f"one axis), got shape {tuple(angles.shape)}")
        angles = _choose(degrees, lambda: fnp.deg2rad(angles), lambda: angles)
        quat = _axis_quat(axes[0], angles[..., 0])
        for n in range(1, len(axes)):
            step = _axis_quat(axes[n], angles[..., n])
            # extrinsic: each later rotation acts after (to the left of) the earlier ones
            quat = _multiply(step, quat) if extrinsic else _multiply(quat, step)
        return cls(quat)

    @classmethod
    def from_matrix(cls, matrix):
        """Rotations from rotation matrices of shape ``(..., 3, 3)``.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> m = fnp.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
            >>> fnp.round(Rotation.from_matrix(m).as_rotvec(), 4)
            Array([0.    , 0.    , 1.5708], dtype=float32)
        """
        matrix = _float_array(matrix)
        if matrix.ndim < 2 or tuple(matrix.shape[-2:]) != (3, 3):
            raise ValueError("Rotation.from_matrix: `matrix` must have shape (..., 3, 3), "
                             f"got shape {tuple(matrix.shape)}")
        return cls(_from_matrix(matrix))

    @classmethod
    def from_mrp(cls, mrp):
        """Rotations from Modified Rodrigues Parameters, shape ``(..., 3)``: the unit
        rotation axis times ``tan(angle / 4)``.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> r = Rotation.from_mrp(fnp.array([0.0, 0.0, 1.0]))  # tan(pi / 4) = 1
            >>> fnp.round(r.magnitude(), 4)
            Array(3.1416, dtype=float32)
        """
        return cls(_from_mrp(_check_vectors(mrp, 3, "from_mrp", "mrp")))

    @classmethod
    def from_quat(cls, quat):
        """Rotations from quaternions, scalar-last ``(x, y, z, w)``, shape ``(..., 4)``;
        they are normalized to unit length.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> Rotation.from_quat(fnp.array([0.0, 0.0, 2.0, 0.0])).as_quat()
            Array([0., 0., 1., 0.], dtype=float32)
        """
        return cls(_normalize(_check_vectors(quat, 4, "from_quat", "quat")))

    @classmethod
    def from_rotvec(cls, rotvec, degrees: bool = False):
        """Rotations from rotation vectors, shape ``(..., 3)``: the rotation axis scaled
        by the angle (radians, or degrees if `degrees`). Smooth at the zero vector, where
        its derivative is exact.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> r = Rotation.from_rotvec(fnp.array([0.0, 180.0, 0.0]), degrees=True)
            >>> fnp.round(r.as_quat(), 4) + 0.0
            Array([0., 1., 0., 0.], dtype=float32)
        """
        rotvec = _check_vectors(rotvec, 3, "from_rotvec", "rotvec")
        rotvec = _choose(degrees, lambda: fnp.deg2rad(rotvec), lambda: rotvec)
        return cls(_from_rotvec(rotvec))

    @classmethod
    def identity(cls, num: int | None = None, dtype=float):
        """The identity rotation (quaternion ``(0, 0, 0, 1)``), or a batch of `num` of them.

        `dtype=float` means the default float, float32 (as in JAX). JAX only accepts
        ``num=None``; nanofn also takes an integer `num`, as scipy does.

        Example:
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> Rotation.identity().as_quat()
            Array([0., 0., 0., 1.], dtype=float32)
            >>> Rotation.identity(2).as_quat().shape
            (2, 4)
        """
        quat = fnp.array([0.0, 0.0, 0.0, 1.0], dtype=dtype)
        if num is None:
            return cls(quat)
        if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 0:
            raise ValueError(f"Rotation.identity: `num` must be None or a non-negative "
                             f"integer, got {num!r}")
        return cls(fnp.tile(quat, (int(num), 1)))

    @classmethod
    def random(cls, random_key, num: int | None = None):
        """Rotations drawn uniformly (by the Haar measure) from `random_key`: one if `num`
        is None, else a batch of `num`. Normalized standard-normal 4-vectors, scipy's
        method. (JAX declares this method but raises NotImplementedError.)

        Example:
            >>> import nanofn
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> r = Rotation.random(nanofn.random.PRNGKey(0), 5)
            >>> r.as_quat().shape
            (5, 4)
        """
        import nanofn.random as _random  # loaded on first use, like nanofn.scipy's modules

        if num is not None and (isinstance(num, bool) or not isinstance(num, (int, np.integer))
                                or num < 0):
            raise ValueError(f"Rotation.random: `num` must be None or a non-negative "
                             f"integer, got {num!r}")
        shape = (4,) if num is None else (int(num), 4)
        return cls(_normalize(_random.normal(random_key, shape)))

    # --- container protocol --------------------------------------------------------------

    def __getitem__(self, indexer):
        """The rotation(s) at `indexer` of a batch, as a Rotation (TypeError if single).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> r = Rotation.from_rotvec(fnp.array([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0]]))
            >>> fnp.round(r[1].magnitude(), 4)
            Array(2., dtype=float32)
        """
        if self.single:
            raise TypeError("a single Rotation is not subscriptable")
        return Rotation(self.quat[indexer])

    def __len__(self):
        """The number of rotations in a batch (TypeError for a single rotation).

        Example:
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> len(Rotation.identity(3))
            3
        """
        if self.single:
            raise TypeError("a single Rotation has no len()")
        return self.quat.shape[0]

    def __mul__(self, other) -> Rotation:
        """The composition ``self * other``: apply `other` first, then `self`. Batches
        broadcast against each other (and a single rotation against a batch).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> a = Rotation.from_rotvec(fnp.array([0.0, 0.0, 0.5]))
            >>> b = Rotation.from_rotvec(fnp.array([0.0, 0.0, 0.25]))
            >>> fnp.round((a * b).as_rotvec(), 4)
            Array([0.  , 0.  , 0.75], dtype=float32)
        """
        if not isinstance(other, Rotation):
            return NotImplemented
        return Rotation(_normalize(_multiply(self.quat, other.quat)))

    # --- use ---------------------------------------------------------------------------

    def apply(self, vectors, inverse: bool = False):
        """Rotate `vectors` (shape ``(..., 3)``), or undo the rotation if `inverse`.

        The batch axes of the rotation and of `vectors` broadcast: one rotation applied to
        N vectors, N rotations to one vector, or N rotations to N vectors pairwise.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> r = Rotation.from_rotvec(fnp.array([0.0, 0.0, fnp.pi / 2]))
            >>> fnp.round(r.apply(fnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])), 4) + 0.0
            Array([[0., 1., 0.],
                   [0., 0., 2.]], dtype=float32)
            >>> fnp.round(r.apply(fnp.array([1.0, 0.0, 0.0]), inverse=True), 4) + 0.0
            Array([ 0., -1.,  0.], dtype=float32)
        """
        vectors = _check_vectors(vectors, 3, "apply", "vectors")
        try:
            np.broadcast_shapes(tuple(self.quat.shape[:-1]), tuple(vectors.shape[:-1]))
        except ValueError:
            raise ValueError(
                f"Rotation.apply: `vectors` of shape {tuple(vectors.shape)} do not broadcast "
                f"against {tuple(self.quat.shape[:-1]) or 'a single'} rotation(s) "
                f"(quat shape {tuple(self.quat.shape)})") from None
        matrix = self.as_matrix()
        matrix = _choose(inverse, lambda: fnp.swapaxes(matrix, -1, -2), lambda: matrix)
        return fnp.matmul(matrix, vectors[..., None])[..., 0]

    def as_euler(self, seq: str, degrees: bool = False):
        """Euler angles for the 3-axis sequence `seq` (see `from_euler`), shape
        ``(..., 3)``, in radians unless `degrees`.

        The first and third angles lie in [-pi, pi]; the middle one in [-pi/2, pi/2] when
        the first and third axes differ, else in [0, pi]. At gimbal lock the third angle
        is set to 0, as in scipy (which also warns; nanofn does not).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> r = Rotation.from_euler('ZYX', fnp.array([30.0, 20.0, 10.0]), degrees=True)
            >>> fnp.round(r.as_euler('ZYX', degrees=True), 3)
            Array([30., 20., 10.], dtype=float32)
        """
        axes, extrinsic = _check_seq(seq, "as_euler", 3, 3)
        angles = _to_euler(self.quat, axes, extrinsic)
        return _choose(degrees, lambda: fnp.rad2deg(angles), lambda: angles)

    def as_matrix(self):
        """Rotation matrices, shape ``(..., 3, 3)``.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> Rotation.identity().as_matrix()
            Array([[1., 0., 0.],
                   [0., 1., 0.],
                   [0., 0., 1.]], dtype=float32)
        """
        return _to_matrix(self.quat)

    def as_mrp(self):
        """Modified Rodrigues Parameters, shape ``(..., 3)``, chosen with norm <= 1
        (rotation angle <= pi).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> r = Rotation.from_rotvec(fnp.array([0.0, fnp.pi / 2, 0.0]))
            >>> fnp.round(r.as_mrp(), 4)  # tan(pi / 8)
            Array([0.    , 0.4142, 0.    ], dtype=float32)
        """
        return _to_mrp(self.quat)

    def as_quat(self, canonical: bool = False, scalar_first: bool = False):
        """Quaternions, shape ``(..., 4)``: scalar-last ``(x, y, z, w)`` unless
        `scalar_first`. With `canonical`, the sign is fixed so that ``w >= 0`` (ties
        broken by the first nonzero of x, y, z being positive); otherwise the stored sign
        is returned as is.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> r = Rotation(fnp.array([0.0, 0.0, -0.6, -0.8]))
            >>> r.as_quat(canonical=True)
            Array([0. , 0. , 0.6, 0.8], dtype=float32)
            >>> r.as_quat(scalar_first=True)
            Array([-0.8,  0. ,  0. , -0.6], dtype=float32)
        """
        quat = _canonical(self.quat) if canonical else self.quat
        if scalar_first:
            quat = fnp.concatenate([quat[..., 3:], quat[..., :3]], axis=-1)
        return quat

    def as_rotvec(self, degrees: bool = False):
        """Rotation vectors, shape ``(..., 3)``: the axis times the angle in [0, pi]
        (radians, or degrees if `degrees`). Smooth at the identity.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> r = Rotation.from_euler('y', 45.0, degrees=True)
            >>> fnp.round(r.as_rotvec(degrees=True), 3)
            Array([ 0., 45.,  0.], dtype=float32)
        """
        rotvec = _to_rotvec(self.quat)
        return _choose(degrees, lambda: fnp.rad2deg(rotvec), lambda: rotvec)

    def inv(self):
        """The inverse rotation(s).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> r = Rotation.from_rotvec(fnp.array([0.1, 0.2, 0.3]))
            >>> fnp.round(r.inv().as_rotvec(), 4)
            Array([-0.1, -0.2, -0.3], dtype=float32)
        """
        return Rotation(_conjugate(self.quat))

    def magnitude(self):
        """The rotation angle(s) in radians, in [0, pi].

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> fnp.round(Rotation.from_rotvec(fnp.array([0.0, 0.3, 0.4])).magnitude(), 4)
            Array(0.5, dtype=float32)
        """
        return 2 * fnp.arctan2(_safe_norm(self.quat[..., :3]), fnp.abs(self.quat[..., 3]))

    def mean(self, weights=None):
        """The weighted mean rotation of a batch: the rotation minimizing the weighted sum
        of squared chordal distances (the top eigenvector of the weighted quaternion outer
        product sum; its sign is arbitrary). `weights` is 1-D, one non-negative weight per
        rotation; None weighs them equally. A single rotation is its own mean.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> r = Rotation.from_rotvec(fnp.array([[0.0, 0.0, 0.2], [0.0, 0.0, 0.4]]))
            >>> fnp.round(fnp.abs(r.mean().as_rotvec()), 4)
            Array([0. , 0. , 0.3], dtype=float32)
        """
        quat = self.quat[None] if self.single else self.quat
        if quat.ndim != 2:
            raise ValueError(f"Rotation.mean: needs a 1-D batch of rotations, got quat of "
                             f"shape {tuple(self.quat.shape)}")
        if weights is None:
            weights = fnp.ones(quat.shape[0], dtype=quat.dtype)
        else:
            weights = fnp.asarray(weights, dtype=quat.dtype)
        if weights.ndim != 1:
            raise ValueError(f"Rotation.mean: `weights` must be 1-D, got shape "
                             f"{tuple(weights.shape)}")
        if weights.shape[0] != quat.shape[0]:
            raise ValueError(f"Rotation.mean: `weights` must have one value per rotation, got "
                             f"{weights.shape[0]} weights for {quat.shape[0]} rotations")
        outer = fnp.matmul(fnp.swapaxes(weights[:, None] * quat, 0, 1), quat)
        _, vectors = fnp.linalg.eigh(outer)
        return Rotation(vectors[:, -1])

    @property
    def single(self) -> bool:
        """True if this holds one rotation (quat of shape ``(4,)``), False for a batch.

        Example:
            >>> from nanofn.scipy.spatial.transform import Rotation
            >>> Rotation.identity().single, Rotation.identity(1).single
            (True, False)
        """
        return self.quat.ndim == 1


# Registered explicitly (rather than left to the generic namedtuple handling) because
# Rotation's own __len__ and __getitem__ describe the batch, not the tuple's one field.
_tree_util.register_pytree_with_keys(
    Rotation,
    lambda r: (((_tree_util.GetAttrKey("quat"), tuple.__getitem__(r, 0)),), None),
    lambda _, children: Rotation(*children),
    lambda r: ((tuple.__getitem__(r, 0),), None))


# ---------------------------------------------------------------------------------------
# Slerp
# ---------------------------------------------------------------------------------------

class Slerp(typing.NamedTuple):
    """Spherical linear interpolation of rotations (jax.scipy.spatial.transform.Slerp).

    The nanofn counterpart of :class:`scipy.spatial.transform.Slerp`. Build it with
    ``Slerp.init(times, rotations)``; call it with times to get the interpolated
    rotations. Between consecutive key times the rotation turns about a fixed axis at a
    constant angular speed. Times outside the key range extrapolate the first or last
    interval (scipy raises there; JAX and nanofn cannot check traced values). Key times
    must be strictly increasing; this is not checked.

    Fields: `times` (the key times), `timedelta` (their differences), `rotations` (the
    key rotations but the last) and `rotvecs` (the rotation vector of each interval).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.spatial.transform import Rotation, Slerp
        >>> keys = Rotation.from_euler('z', fnp.array([[0.0], [90.0]]), degrees=True)
        >>> slerp = Slerp.init(fnp.array([0.0, 1.0]), keys)
        >>> fnp.round(slerp(fnp.array([0.0, 0.5, 1.0])).as_euler('zyx', degrees=True), 3)
        Array([[ 0.,  0.,  0.],
               [45.,  0.,  0.],
               [90.,  0.,  0.]], dtype=float32)
    """

    times: typing.Any
    timedelta: typing.Any
    rotations: Rotation
    rotvecs: typing.Any

    @classmethod
    def init(cls, times, rotations: Rotation):
        """A Slerp through `rotations` (a batch of at least 2) at the 1-D key `times`,
        one per rotation, converted to the rotations' dtype.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation, Slerp
            >>> keys = Rotation.from_rotvec(fnp.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
            >>> slerp = Slerp.init([0, 2], keys)
            >>> slerp.timedelta, fnp.round(slerp.rotvecs, 4)
            (Array([2.], dtype=float32), Array([[0., 0., 1.]], dtype=float32))
        """
        if not isinstance(rotations, Rotation):
            raise TypeError(f"Slerp.init: `rotations` must be a Rotation, got "
                            f"{type(rotations).__name__}")
        if rotations.single or rotations.quat.ndim != 2 or len(rotations) < 2:
            raise ValueError(f"Slerp.init: `rotations` must be a 1-D batch of at least 2 "
                             f"rotations, got quat of shape {tuple(rotations.quat.shape)}")
        times = fnp.asarray(times, dtype=rotations.quat.dtype)
        if times.ndim != 1:
            raise ValueError(f"Slerp.init: `times` must be 1-D, got shape "
                             f"{tuple(times.shape)}")
        if times.shape[0] != len(rotations):
            raise ValueError(f"Slerp.init: `times` must have one entry per rotation, got "
                             f"{times.shape[0]} times for {len(rotations)} rotations")
        starts = Rotation(rotations.quat[:-1])
        ends = Rotation(rotations.quat[1:])
        return cls(times=times, timedelta=fnp.diff(times), rotations=starts,
                   rotvecs=(starts.inv() * ends).as_rotvec())

    def __call__(self, times):
        """The interpolated rotation(s) at `times`: a single Rotation for a scalar time,
        a batch for a 1-D array. Differentiable in `times`.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.spatial.transform import Rotation, Slerp
            >>> keys = Rotation.from_rotvec(fnp.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
            >>> slerp = Slerp.init(fnp.array([0.0, 2.0]), keys)
            >>> slerp(0.5).as_rotvec()
            Array([0.  , 0.  , 0.25], dtype=float32)
        """
        t = fnp.asarray(times, dtype=self.times.dtype)
        if t.ndim > 1:
            raise ValueError(f"Slerp: `times` must be a scalar or 1-D, got shape "
                             f"{tuple(t.shape)}")
        scalar = t.ndim == 0
        t = fnp.atleast_1d(t)
        # index of the interval holding each time; the end intervals extend outwards
        last = self.timedelta.shape[0] - 1
        ind = fnp.clip(fnp.searchsorted(self.times, t) - 1, 0, last)
        alpha = (t - self.times[ind]) / self.timedelta[ind]
        step = Rotation.from_rotvec(self.rotvecs[ind] * alpha[:, None])
        result = self.rotations[ind] * step
        return result[0] if scalar else result
