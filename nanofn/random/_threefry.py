"""PRNG keys on the Threefry-2x32 counter-based hash: `key`, `split`, `fold_in`, `bits`.

A **key** is a plain `uint32` array of shape `(2,)` (JAX's "raw" or legacy keys, the kind
`jax.random.PRNGKey` makes). A key is not a generator with hidden state: every random
function is a pure function of its key, and the same key always gives the same numbers.

Everything here rests on one primitive, `threefry2x32_p(k1, k2, x1, x2) -> (y1, y2)`: the
Threefry-2x32 block cipher of Salmon et al. (SC'11, "Parallel random numbers: as easy as
1, 2, 3") with 20 rounds, keyed by the two words of a key and applied elementwise to
pairs of 32-bit counter words. Random bits are the hash of a counter: the `i`-th number
drawn from `key` is `hash(key, (0, i))`, so any number can be computed on its own, in any
order, and arrays of them in one vectorised pass. `split` hashes counters too (new key
`i` is `hash(key, (0, i))`), and `fold_in(key, d)` is `hash(key, (0, d))`, so
`split(key, n)[i] == fold_in(key, i)`.

This is JAX's construction (`jax._src.random.threefry2x32`) with JAX's current default
`jax_threefry_partitionable=True` (the default since JAX 0.5), and the streams match JAX
bit for bit for `key`/`PRNGKey`, `split`, `fold_in` and `bits`. JAX before 0.5 (or with
that flag off) laid counters out differently for `split` and `bits` and so drew other
numbers from the same key (see docs/random.md).
"""

from __future__ import annotations

import operator

import numpy as np

from nanofn import _core as core
from nanofn._core import Array, Primitive, ShapedArray, Tracer
from nanofn import ops
from nanofn.numpy._dtypes import _DEFAULT
from nanofn.ops import _base as lax
from nanofn._keys import PRNGKeyArray

_U32 = np.dtype(np.uint32)
_UINT_BY_BITS = {8: np.dtype(np.uint8), 16: np.dtype(np.uint16), 32: _U32,
                 64: np.dtype(np.uint64)}

# Rotation constants of Threefry-2x32 (Random123's R_32x2), four rounds per group, groups
# alternating between the two rows; the key schedule adds the parity word 0x1BD11BDA.
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA

# ======================================================================== threefry2x32_p


def _threefry2x32_numpy(k1, k2, x1, x2):
    """Reference implementation on numpy uint32 arrays (broadcasting, wrapping arithmetic)."""
    shape = np.broadcast_shapes(k1.shape, k2.shape, x1.shape, x2.shape)
    ks = [k1, k2, k1 ^ k2 ^ np.uint32(_PARITY)]
    ks = [np.broadcast_to(k, shape).ravel() if np.ndim(k) else k for k in ks]
    # Work on flat 1-d copies: in-place updates, and no scalar-overflow warnings.
    a = np.array(np.broadcast_to(x1, shape), dtype=np.uint32).ravel()
    b = np.array(np.broadcast_to(x2, shape), dtype=np.uint32).ravel()
    a += ks[0]
    b += ks[1]
    t = np.empty_like(a)
    for group in range(5):
        for r in _ROTATIONS[group % 2]:
            a += b
            np.left_shift(b, np.uint32(r), out=t)  # b = rotl(b, r) ^ a
            b >>= np.uint32(32 - r)
            b |= t
            b ^= a
        a += ks[(group + 1) % 3]
        b += ks[(group + 2) % 3]
        b += np.uint32(group + 1)
    return a.reshape(shape), b.reshape(shape)


_kernel = None
_KERNEL_MIN_SIZE = 4096  # below this, numpy is fast enough and numba need not load


def _get_kernel():
    """The numba kernel: one pass over the elements, 20 rounds in registers (compiled on
    first use, cached on disk, so `import nanofn.random` never imports numba)."""
    global _kernel
    if _kernel is None:
        import numba

        @numba.njit(cache=True, nogil=True)
        def threefry2x32_kernel(k1, k2, x1, x2, y1, y2):  # pragma: no cover - compiled
            # Inputs are 1-d of length n or 1 (a broadcast scalar). numba widens uint32
            # arithmetic to 64 bits, so every step masks back to 32 bits.
            mask = np.uint64(0xFFFFFFFF)
            rot = (13, 15, 26, 6, 17, 29, 16, 24)
            n = y1.shape[0]
            b1, b2, b3, b4 = k1.shape[0] > 1, k2.shape[0] > 1, x1.shape[0] > 1, x2.shape[0] > 1
            for i in range(n):
                ka = np.uint64(k1[i if b1 else 0])
                kb = np.uint64(k2[i if b2 else 0])
                kc = ka ^ kb ^ np.uint64(0x1BD11BDA)
                a = (np.uint64(x1[i if b3 else 0]) + ka) & mask
                b = (np.uint64(x2[i if b4 else 0]) + kb) & mask
                for g in range(5):
                    for j in range(4):
                        r = np.uint64(rot[(g % 2) * 4 + j])
                        a = (a + b) & mask
                        b = ((b << r) | (b >> (np.uint64(32) - r))) & mask
                        b ^= a
                    # key injection g + 1: words (g+1) % 3 and (g+2) % 3, plus the count
                    if g == 0:
                        a, b = (a + kb) & mask, (b + kc + np.uint64(1)) & mask
                    elif g == 1:
                        a, b = (a + kc) & mask, (b + ka + np.uint64(2)) & mask
                    elif g == 2:
                        a, b = (a + ka) & mask, (b + kb + np.uint64(3)) & mask
                    elif g == 3:
                        a, b = (a + kb) & mask, (b + kc + np.uint64(4)) & mask
                    else:
                        a, b = (a + kc) & mask, (b + ka + np.uint64(5)) & mask
                y1[i] = np.uint32(a)
                y2[i] = np.uint32(b)

        _kernel = threefry2x32_kernel
    return _kernel


def _threefry2x32_numba(k1, k2, x1, x2):
    shape = np.broadcast_shapes(k1.shape, k2.shape, x1.shape, x2.shape)
    n = int(np.prod(shape, dtype=np.int64))

    def flat(v):  # 1-d, length n or 1; materialise only partial broadcasts
        if v.size == 1:
            return np.ascontiguousarray(v, dtype=np.uint32).reshape(1)
        if v.shape != shape:
            v = np.broadcast_to(v, shape)
        return np.ascontiguousarray(v, dtype=np.uint32).reshape(n)

    y1 = np.empty(n, np.uint32)
    y2 = np.empty(n, np.uint32)
    _get_kernel()(flat(k1), flat(k2), flat(x1), flat(x2), y1, y2)
    return y1.reshape(shape), y2.reshape(shape)


def _threefry2x32_impl(k1, k2, x1, x2):
    from nanofn._config import config
    args = [np.asarray(v) for v in (k1, k2, x1, x2)]
    if any(a.dtype != _U32 for a in args):
        raise TypeError("threefry2x32 takes uint32 operands")
    shape = np.broadcast_shapes(*(a.shape for a in args))
    if config.nanofn_use_kernels and int(np.prod(shape, dtype=np.int64)) >= _KERNEL_MIN_SIZE:
        return list(_threefry2x32_numba(*args))
    return list(_threefry2x32_numpy(*args))


threefry2x32_p = Primitive("threefry2x32", multiple_results=True)
threefry2x32_p.impl = _threefry2x32_impl


@threefry2x32_p.def_abstract_eval
def _threefry2x32_abstract_eval(k1, k2, x1, x2):
    avals = (k1, k2, x1, x2)
    if any(a.dtype != _U32 for a in avals):
        raise TypeError("threefry2x32 takes uint32 operands (key words k1, k2 and counter "
                        f"words x1, x2), got {', '.join(a.str_short() for a in avals)}")
    shape = lax.broadcast_shapes("threefry2x32", *(a.shape for a in avals))
    return [ShapedArray(shape, _U32), ShapedArray(shape, _U32)]


lax.defnoderiv(threefry2x32_p, 4)  # integer bits: no derivative


def _threefry2x32_batch(vals, dims):
    # Elementwise and broadcasting: move each batch axis to the front and give batched
    # operands the full rank, so numpy broadcasting lines the rest up.
    ranks = [len(lax._aval_shape(v)) - (d is not None) for v, d in zip(vals, dims)]
    out_rank = max(ranks)
    moved = []
    for v, d, r in zip(vals, dims, ranks):
        if d is not None:
            v = lax.bdim_to_front(v, d)
            if r < out_rank:
                shape = lax._aval_shape(v)
                v = lax.reshape_p.bind(v, new_sizes=(shape[0],) + (1,) * (out_rank - r)
                                       + tuple(shape[1:]))
        moved.append(v)
    return threefry2x32_p.bind(*moved), [0, 0]


threefry2x32_p.batch = _threefry2x32_batch


def threefry2x32(k1, k2, x1, x2):
    """The Threefry-2x32 hash (20 rounds), elementwise with numpy broadcasting.

    Args:
      k1, k2: the two uint32 words of the key.
      x1, x2: the two uint32 words of each counter block.

    Returns:
      `(y1, y2)`, two uint32 arrays of the broadcast shape.

    Example:
        >>> import numpy as np
        >>> from nanofn.random._threefry import threefry2x32
        >>> y1, y2 = threefry2x32(np.uint32(0), np.uint32(0), np.uint32(0), np.uint32(0))
        >>> hex(int(y1)), hex(int(y2))  # Random123's known-answer vector
        ('0x6b200159', '0x99ba4efe')
    """
    return tuple(threefry2x32_p.bind(k1, k2, x1, x2))


# ======================================================================== key words


def _key_words(key):
    """`(key[..., 0], key[..., 1])`: the two uint32 words of a key (or of a batch of keys)."""
    if type(key) is Array or isinstance(key, np.ndarray):
        v = core.to_numpy(key)
        return v[..., 0], v[..., 1]
    return (ops.index_in_dim(key, 0, axis=-1, keepdims=False),
            ops.index_in_dim(key, 1, axis=-1, keepdims=False))


def _pack_words(w1, w2):
    """Stack two uint32 arrays of one shape into key data of shape (*shape, 2)."""
    if not isinstance(w1, Tracer) and not isinstance(w2, Tracer):
        w1, w2 = np.asarray(core.to_numpy(w1)), np.asarray(core.to_numpy(w2))
        return core.wrap(np.stack([w1, w2], axis=-1).astype(_U32, copy=False))
    ndim = len(w1.shape if isinstance(w1, Tracer) else w2.shape)
    return ops.concatenate([lax.expand_dims(w1, (ndim,)), lax.expand_dims(w2, (ndim,))], ndim)


# ======================================================================== checking arguments


def _describe(x):
    if core.is_array_like(x):
        a = core.get_aval(x)
        return f"an array of shape {a.shape} and dtype {a.dtype.name}"
    return f"a {type(x).__name__}"


def _check_key(name, key):
    """The raw key (uint32 words, shape (2,)) of a typed or raw key, as an Array/tracer, or
    a TypeError saying what a key is."""
    # A batch of keys is a ValueError, as in JAX (a wrong kind of argument is a TypeError).
    if isinstance(key, PRNGKeyArray):
        if key.shape:
            raise ValueError(
                f"{name}: expected a single PRNG key, but got an array of keys of shape "
                f"{key.shape}. Map over the keys with nanofn.vmap (e.g. "
                f"nanofn.vmap(lambda k: nanofn.random.{name}(k, ...))(keys)).")
        key = key._base
    if isinstance(key, (Array, Tracer, np.ndarray)):
        if key.dtype == _U32 and tuple(key.shape) == (2,):
            return core.wrap(key) if isinstance(key, np.ndarray) else key
        if key.dtype == _U32 and len(key.shape) > 1 and key.shape[-1] == 2:
            raise ValueError(
                f"{name}: expected a single PRNG key, a uint32 array of shape (2,), but got a "
                f"batch of keys of shape {tuple(key.shape)}. Map over the keys with "
                f"nanofn.vmap (e.g. nanofn.vmap(lambda k: nanofn.random.{name}(k, ...))(keys)).")
    raise TypeError(
        f"{name}: key must be a PRNG key, a uint32 array of shape (2,) made by "
        f"nanofn.random.key(seed) (or PRNGKey, split, fold_in); got {_describe(key)}. "
        "Create one with key = nanofn.random.key(0).")


def _canonical_shape(name, shape, arg="shape"):
    """A tuple of non-negative ints (an int n means (n,))."""
    if isinstance(shape, Tracer):
        raise core.ConcretizationError(
            f"{name}: {arg} must be concrete (a tuple of Python ints); it decides the shape of "
            "the result. Mark it static with jit(..., static_argnums=...).")
    dims = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    try:
        dims = tuple(operator.index(d) for d in dims)
    except TypeError:
        raise TypeError(f"{name}: {arg} must be a tuple of integers, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"{name}: {arg} {dims} has a negative entry; every entry of {arg} "
                         "must be >= 0")
    return dims


# ======================================================================== keys


def _seed_words(seed):
    """(hi, lo) uint32 words of an integer seed (concrete), following JAX."""
    if isinstance(seed, (bool, np.bool_)):
        seed = int(seed)
    x64 = _DEFAULT["i"].itemsize == 8
    if isinstance(seed, int):
        if not -(1 << 63) <= seed < (1 << 63):  # JAX converts it to a C long (int64)
            raise OverflowError(f"key: seed {seed} does not fit in a signed 64-bit integer")
        if x64:  # x64: JAX takes a Python int as an int64 seed
            return (seed >> 32) & 0xFFFFFFFF, seed & 0xFFFFFFFF
        # Otherwise it acts as JAX's default int32 seed: the low 32 bits, high word 0.
        return 0, seed & 0xFFFFFFFF
    v = np.asarray(core.to_numpy(seed))
    if not np.issubdtype(v.dtype, np.integer):
        raise TypeError(f"key: seed must be an integer, got dtype {v.dtype.name}")
    s = int(v)
    # 64-bit seeds fill both words (JAX under x64; nanofn keeps int64 inputs as int64).
    if v.dtype.itemsize == 8:
        return (s >> 32) & 0xFFFFFFFF, s & 0xFFFFFFFF
    return 0, s & 0xFFFFFFFF


def _only_threefry(name, impl, dtype=None):
    """JAX's `impl=` and `dtype=` arguments: nanofn has one PRNG, threefry2x32."""
    if impl not in (None, "threefry2x32", "threefry"):
        raise ValueError(f"{name}: impl must be None or 'threefry2x32' (nanofn's only PRNG), "
                         f"got {impl!r}")
    if dtype is not None:
        raise ValueError(f"{name}: dtype must be None (keys are raw uint32 arrays in nanofn), "
                         f"got {dtype!r}")


def key(seed, *, impl=None, dtype=None) -> PRNGKeyArray:
    """A typed PRNG key from an integer seed, as `jax.random.key` makes it.

    The key is a scalar of the key dtype `key<fry>` (`nanofn/_keys.py`): `split`
    and `fold_in` of it give typed keys too, whose shape is the shape of the batch of keys.
    Its data, `key_data(k)`, are two uint32 words, the raw key that `PRNGKey(seed)`
    returns; every sampler accepts either kind and draws the same numbers from both.
    32-bit seeds give the words `[0, seed mod 2**32]`, as in JAX; a 64-bit integer array
    seed gives `[high 32 bits, low 32 bits]`. A Python int is a 32-bit seed, or a 64-bit one
    under `jax_enable_x64` (as in JAX, where it becomes the default integer). The seed may
    be a traced integer scalar (under `jit` or `vmap`).

    Args:
      seed: an integer (Python int, or an integer scalar array).
      impl, dtype: JAX's arguments; `impl` may be None or "threefry2x32" and `dtype` None.

    Returns:
      The key: a typed key array of shape ().

    Example:
        >>> import nanofn
        >>> k = nanofn.random.key(42)
        >>> k.shape, str(k.dtype)
        ((), 'key<fry>')
        >>> nanofn.random.key_data(k)
        Array([ 0, 42], dtype=uint32)
    """
    _only_threefry("key", impl, dtype)
    return PRNGKeyArray(_raw_key(seed))


def _raw_key(seed):
    """The raw key (uint32 words, shape (2,)) of an integer seed."""
    if isinstance(seed, Tracer):
        if seed.shape != () or not np.issubdtype(seed.dtype, np.integer):
            raise TypeError(f"key: seed must be an integer scalar, got {_describe(seed)}")
        lo = lax.convert_element_type_p.bind(seed, new_dtype=_U32)
        if seed.dtype.itemsize == 8:
            shifted = lax.shift_right_logical_p.bind(seed, np.asarray(32, seed.dtype))
            hi = lax.convert_element_type_p.bind(shifted, new_dtype=_U32)
        else:
            hi = np.uint32(0)
        return _pack_words(hi, lo)
    if np.ndim(core.to_numpy(seed)) != 0:
        raise TypeError(f"key: seed must be a scalar, got {_describe(seed)}; to make many "
                        "keys, use nanofn.random.split(key, n) or nanofn.vmap(key)(seeds)")
    hi, lo = _seed_words(seed)
    return core.wrap(np.array([hi, lo], dtype=_U32))


def PRNGKey(seed, *, impl=None) -> Array:  # noqa: N802 - JAX's name
    """A raw PRNG key from an integer seed: the uint32 words of `key(seed)`.

    Args:
      seed: an integer (Python int, or an integer scalar array).
      impl: None or "threefry2x32".

    Returns:
      The key: a uint32 array of shape (2,).

    Example:
        >>> import nanofn
        >>> nanofn.random.PRNGKey(1701)
        Array([   0, 1701], dtype=uint32)
    """
    _only_threefry("PRNGKey", impl)
    return _raw_key(seed)


def _iota(shape):
    """Counter words 0, 1, ..., size - 1 laid out row-major in `shape`, as uint32."""
    size = int(np.prod(shape, dtype=np.int64))
    if size > 1 << 32:
        raise ValueError(f"random arrays are limited to 2**32 elements, asked for shape {shape}")
    if not shape:
        return np.uint32(0)
    flat = lax.iota_p.bind(dtype=_U32, shape=(size,), dimension=0)
    return lax.reshape(flat, shape)


def _hash_counters(key, shape):
    """`threefry(key, (0, i))` for the row-major index `i` of every position of `shape`."""
    k1, k2 = _key_words(key)
    y1, y2 = threefry2x32_p.bind(k1, k2, np.uint32(0), _iota(shape))
    return y1, y2


def split(key, num=2) -> Array:
    """Split a key into `num` new, independent keys.

    Args:
      key: a PRNG key: typed (`key(seed)`) or raw (`PRNGKey(seed)`, uint32 of shape (2,)).
      num: the number of keys (an int), or a tuple giving the shape of the key array.

    Returns:
      Keys of the same kind: typed keys of shape `(num,)` (or `num`), or raw keys, a
      uint32 array of shape `(num, 2)` (or `(*num, 2)`), one key per row.

    Example:
        >>> import nanofn
        >>> key, subkey = nanofn.random.split(nanofn.random.key(0))
        >>> subkey.shape, nanofn.random.split(nanofn.random.PRNGKey(0), 3).shape
        ((), (3, 2))
    """
    typed = isinstance(key, PRNGKeyArray)
    key = _check_key("split", key)
    shape = _canonical_shape("split", num, "num")
    keys = _pack_words(*_hash_counters(key, shape))
    return PRNGKeyArray(keys) if typed else keys


def fold_in(key, data) -> Array:
    """A new key that depends on `key` and the integer `data` (say a step or layer index).

    `fold_in(key, i)` equals `split(key, n)[i]` for every `n > i`.

    Args:
      key: a PRNG key, typed or raw.
      data: an integer scalar (Python int or integer array, may be traced); taken modulo
        2**32.

    Returns:
      The new key, of the same kind as `key`.

    Example:
        >>> import nanofn
        >>> k = nanofn.random.key(0)
        >>> bool((nanofn.random.fold_in(k, 1) == nanofn.random.split(k, 3)[1]).all())
        True
    """
    typed = isinstance(key, PRNGKeyArray)
    key = _check_key("fold_in", key)
    # As in JAX, `data` becomes a uint32 scalar the way `jnp.uint32(data)` makes one: integer
    # arrays wrap modulo 2**32, floats and bools convert, and a Python int must fit.
    if isinstance(data, (Tracer, Array, np.ndarray, np.generic)):
        if data.shape != ():
            raise TypeError(f"fold_in: data must be a scalar, got {_describe(data)}; "
                            "to fold in many values, map with nanofn.vmap")
        if not isinstance(data, Tracer) and not isinstance(data, Array):
            data = core.wrap(np.asarray(data))
        if data.dtype.kind not in "biuf":
            raise TypeError(f"fold_in: data must be a real scalar, got {_describe(data)}")
        data = lax.convert_element_type(data, _U32) if data.dtype != _U32 else data
    elif isinstance(data, (int, np.integer)):
        if not 0 <= int(data) < (1 << 32):
            raise OverflowError(f"fold_in: Python integer {data} out of bounds for uint32")
        data = np.uint32(int(data))
    elif isinstance(data, float):
        data = lax.convert_element_type(core.wrap(np.float32(data)), _U32)
    else:
        raise TypeError(f"fold_in: data must be an integer scalar, got {_describe(data)}")
    k1, k2 = _key_words(key)
    y1, y2 = threefry2x32_p.bind(k1, k2, np.uint32(0), data)
    new = _pack_words(y1, y2)
    return PRNGKeyArray(new) if typed else new


def _random_bits(key, bit_width, shape):
    """Uniform random bits: an unsigned array of `bit_width` bits and shape `shape`."""
    y1, y2 = _hash_counters(key, shape)
    if bit_width == 64:
        hi = lax.convert_element_type_p.bind(y1, new_dtype=_UINT_BY_BITS[64])
        lo = lax.convert_element_type_p.bind(y2, new_dtype=_UINT_BY_BITS[64])
        return lax.or_p.bind(lax.shift_left_p.bind(hi, np.uint64(32)), lo)
    bits = lax.xor_p.bind(y1, y2)
    if bit_width == 32:
        return bits
    return lax.convert_element_type_p.bind(bits, new_dtype=_UINT_BY_BITS[bit_width])


def bits(key, shape=(), dtype=None) -> Array:
    """Uniformly random bits, as unsigned integers.

    Args:
      key: a PRNG key (uint32, shape (2,)).
      shape: the shape of the result (a tuple of non-negative ints). Default ().
      dtype: an unsigned integer dtype: uint8, uint16, uint32 or uint64 (default uint32,
        uint64 under `jax_enable_x64`, as in JAX).

    Returns:
      An array of `shape` and `dtype`, every bit independent and uniform.

    Example:
        >>> import nanofn
        >>> b = nanofn.random.bits(nanofn.random.key(0), (3,))
        >>> b.shape, b.dtype
        ((3,), dtype('uint32'))
    """
    key = _check_key("bits", key)
    dtype = _DEFAULT["u"] if dtype is None else np.dtype(dtype)
    if dtype.kind != "u":
        raise ValueError(f"bits: dtype must be an unsigned integer dtype (uint8, uint16, uint32 "
                         f"or uint64), got {dtype.name}")
    shape = _canonical_shape("bits", shape)
    return _random_bits(key, dtype.itemsize * 8, shape)


def key_data(keys) -> Array:
    """The uint32 words of a key or an array of keys: shape `(*keys.shape, 2)` for typed
    keys; raw keys (`PRNGKey`'s) already are their words and come back as they are.

    Args:
      keys: a typed key array, or raw keys (uint32, last axis of size 2).

    Returns:
      A uint32 array whose last axis holds each key's two words.

    Example:
        >>> import nanofn
        >>> nanofn.random.key_data(nanofn.random.key(3))
        Array([0, 3], dtype=uint32)
        >>> nanofn.random.key_data(nanofn.random.split(nanofn.random.key(3), 4)).shape
        (4, 2)
    """
    if isinstance(keys, PRNGKeyArray):
        return keys._base
    if not isinstance(keys, (Array, Tracer, np.ndarray)) or keys.dtype != _U32 \
            or not keys.shape or keys.shape[-1] != 2:
        raise TypeError("key_data: expected a PRNG key or array of keys (uint32, last axis of "
                        f"size 2), got {_describe(keys)}")
    return core.wrap(keys) if isinstance(keys, np.ndarray) else keys


def wrap_key_data(key_bits_array, *, impl=None, dtype=None) -> PRNGKeyArray:
    """Typed keys from their uint32 words (for example words saved to disk): the inverse
    of `key_data`.

    Args:
      key_bits_array: a uint32 array whose last axis has size 2 (one key's two words).
      impl: the PRNG implementation; only None or "threefry2x32" are supported.
      dtype: JAX's key dtype: None, or the dtype of a typed key (`key<fry>`).

    Returns:
      A typed key array of shape `key_bits_array.shape[:-1]`.

    Example:
        >>> import numpy as np, nanofn
        >>> k = nanofn.random.wrap_key_data(np.array([0, 7], np.uint32))
        >>> k.shape, bool(k == nanofn.random.key(7))
        ((), True)
    """
    from nanofn._keys import KeyDType
    _only_threefry("wrap_key_data", impl, None if isinstance(dtype, KeyDType) else dtype)
    if isinstance(key_bits_array, PRNGKeyArray):
        raise TypeError("wrap_key_data: expected the uint32 words of keys, got typed keys; "
                        "they are keys already")
    return PRNGKeyArray(key_data(key_bits_array))
