"""Keys, split, fold_in, bits and the threefry2x32 primitive: known values, transforms, errors.

Pinned numbers come from outside nanofn: Random123's known-answer vectors for Threefry-2x32,
and values printed in JAX's own tests and documentation (JAX >= 0.5, whose default
`jax_threefry_partitionable=True` layout nanofn follows). The JAX < 0.5 layout is checked
too, by rebuilding it from the raw hash (see `legacy_bits`), against JAX's older pinned
values: that checks each distribution's recipe independently of the counter layout.
"""

import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import given, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn import random
from nanofn.random import _distributions, _threefry
from nanofn.random._threefry import threefry2x32_p

try:
    from nanofn import vmap
except ImportError:  # vmap is being exported by the transforms work
    from nanofn._batching import vmap

U32 = np.uint32


def u32(*xs):
    return np.array(xs, dtype=U32)


# ------------------------------------------------------------------------ the hash


# Random123's known-answer tests for threefry2x32 with 20 rounds (key, counter, result).
KAT = [
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


@pytest.mark.parametrize("key,count,expected", KAT)
def test_threefry_known_answers(key, count, expected):
    y1, y2 = threefry2x32_p.bind(U32(key[0]), U32(key[1]), U32(count[0]), U32(count[1]))
    assert (int(y1), int(y2)) == expected


@pytest.mark.parametrize("key,count,expected", KAT)
def test_threefry_kernel_known_answers(key, count, expected):
    n = 5000  # above the size where the numba kernel takes over
    y1, y2 = threefry2x32_p.bind(U32(key[0]), U32(key[1]), np.full(n, count[0], U32),
                                 np.full(n, count[1], U32))
    assert (np.asarray(y1) == expected[0]).all() and (np.asarray(y2) == expected[1]).all()


@given(st.integers(0, 2**32 - 1), st.sampled_from(["scalar_key", "batched_key", "row"]))
def test_threefry_kernel_matches_numpy_reference(seed, layout):
    rng = np.random.default_rng(seed)
    x1 = rng.integers(0, 2**32, (3, 700), dtype=U32)
    x2 = rng.integers(0, 2**32, (3, 700), dtype=U32)
    if layout == "scalar_key":
        k1, k2 = rng.integers(0, 2**32, 2, dtype=U32)
        k1, k2 = np.asarray(k1), np.asarray(k2)
    elif layout == "batched_key":
        k1 = rng.integers(0, 2**32, (3, 1), dtype=U32)
        k2 = rng.integers(0, 2**32, (3, 1), dtype=U32)
    else:
        k1 = rng.integers(0, 2**32, (700,), dtype=U32)
        k2 = rng.integers(0, 2**32, (3, 700), dtype=U32)
    ref = _threefry._threefry2x32_numpy(k1, k2, x1, x2)
    fast = _threefry._threefry2x32_numba(k1, k2, x1, x2)
    for a, b in zip(ref, fast):
        assert a.shape == b.shape == (3, 700) and (a == b).all()


def test_threefry_rejects_non_uint32():
    with pytest.raises(TypeError, match="threefry2x32 takes uint32"):
        nanofn.make_jaxpr(lambda x: threefry2x32_p.bind(x, x, x, x))(fnp.zeros(2, "int32"))


def test_threefry_has_no_derivative_but_random_programs_differentiate():
    k = random.key(0)
    z = random.normal(k, (3,))
    g = nanofn.grad(lambda m: fnp.sum(m * random.normal(k, (3,))))(2.0)
    np.testing.assert_allclose(float(g), float(fnp.sum(z)), rtol=1e-6)


def test_import_does_not_load_numba():
    code = "import sys, nanofn.random; assert 'numba' not in sys.modules, 'numba imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------ keys


@pytest.mark.parametrize("seed,expected", [
    (0, [0, 0]), (np.int32(1), [0, 1]), (np.uint32(2), [0, 2]), (np.int64(3), [0, 3]),
    (-1, [0, 4294967295]), (np.int32(-2), [0, 4294967294]),
    # 64-bit seeds fill both words (JAX with x64 on; nanofn keeps int64 as int64)
    (np.int64(-3), [4294967295, 4294967293]), (np.uint64(2**32 + 5), [1, 5]),
    (2**32 + 5, [0, 5]),  # a Python int acts as JAX's default 32-bit seed
])
def test_key_from_seed(seed, expected):
    raw, typed = random.PRNGKey(seed), random.key(seed)
    assert raw.dtype == U32 and raw.shape == (2,) and raw.tolist() == expected
    assert typed.shape == () and str(typed.dtype) == "key<fry>"
    assert random.key_data(typed).tolist() == expected
    if not isinstance(seed, int):
        assert random.key_data(nanofn.jit(random.key)(seed)).tolist() == expected
        assert nanofn.jit(random.PRNGKey)(seed).tolist() == expected


def test_split_matches_jax():
    # jax.random.split(jax.random.PRNGKey(0)) under JAX's default (partitionable) Threefry
    expected = [[1797259609, 2579123966], [928981903, 3453687069]]
    assert random.split(random.PRNGKey(0)).tolist() == expected
    assert nanofn.jit(random.split)(random.PRNGKey(0)).tolist() == expected


def test_fold_in_matches_jax():
    # jax.random.fold_in(PRNGKey(0), 4), pinned in JAX's tests (same in both layouts)
    assert random.fold_in(random.PRNGKey(0), 4).tolist() == [2285895361, 433833334]
    assert random.fold_in(random.PRNGKey(0), fnp.array(4)).tolist() == [2285895361, 433833334]


def test_uniform_matches_jax_documentation():
    # JAX's typed-key JEP: jax.random.uniform(jax.random.key(0), shape=(3,))
    np.testing.assert_array_equal(random.uniform(random.key(0), (3,)),
                                  np.float32([0.947667, 0.9785799, 0.33229148]))
    # JAX's stateful-RNG JEP: two draws of rng.random((5,)) from stateful_rng(1701), i.e.
    # uniform(fold_in(key(1701), i), (5,)) for i = 0, 1
    k = random.key(1701)
    np.testing.assert_array_equal(
        random.uniform(random.fold_in(k, 0), (5,)),
        np.float32([0.09609699, 0.26730824, 0.5619041, 0.24421775, 0.7715055]))
    np.testing.assert_array_equal(
        nanofn.jit(lambda k: random.uniform(random.fold_in(k, 1), (5,)))(k),
        np.float32([0.8131045, 0.33873856, 0.88808906, 0.96005905, 0.7616446]))


def test_split_equals_fold_in_and_keys_are_distinct():
    k = random.PRNGKey(72)
    keys = random.split(k, 5)
    for i in range(5):
        assert keys[i].tolist() == random.fold_in(k, i).tolist()
    rows = {tuple(row) for row in keys.tolist()} | {tuple(k.tolist())}
    assert len(rows) == 6
    assert random.split(k, (2, 3)).shape == (2, 3, 2)
    assert random.split(k, 0).shape == (0, 2)
    assert random.split(k, np.int64(3)).shape == (3, 2)


def test_split_chain_gives_distinct_keys():
    k, seen = random.PRNGKey(0), set()
    for _ in range(200):
        k, sub = random.split(k)
        seen.add(tuple(sub.tolist()))
    assert len(seen) == 200


def test_fold_in_wraps_array_data_modulo_2_32():
    k = random.PRNGKey(5)
    assert random.fold_in(k, fnp.array(-1)).tolist() == random.fold_in(k, 2**32 - 1).tolist()
    assert random.fold_in(k, np.int64(2**32 + 3)).tolist() == random.fold_in(k, 3).tolist()
    # as `jnp.uint32(data)` in JAX: a Python int must fit in uint32; floats and bools convert
    for bad in (-1, 2**32):
        with pytest.raises(OverflowError, match="uint32"):
            random.fold_in(k, bad)
    assert random.fold_in(k, 2.7).tolist() == random.fold_in(k, 2).tolist()
    assert random.fold_in(k, fnp.float32(1.5)).tolist() == random.fold_in(k, 1).tolist()
    assert random.fold_in(k, True).tolist() == random.fold_in(k, 1).tolist()
    traced = nanofn.jit(random.fold_in)(random.key(5), 2.5)
    assert random.key_data(traced).tolist() == random.fold_in(k, 2).tolist()
    with pytest.raises(TypeError, match="scalar"):
        random.fold_in(k, fnp.arange(2))


def test_key_data_and_wrap_key_data_round_trip():
    k = random.split(random.PRNGKey(3), 4)
    data = random.key_data(k)
    assert data.dtype == U32 and data.shape == (4, 2)
    again = random.wrap_key_data(np.asarray(data))
    assert again.shape == (4,) and random.key_data(again).tolist() == k.tolist()
    np.testing.assert_array_equal(random.normal(again[1], (3,)), random.normal(k[1], (3,)))


# ------------------------------------------------------------------------ bits


def test_bits_dtypes_and_layout():
    k = random.key(1701)
    b32 = np.asarray(random.bits(k, (4,)))
    assert b32.dtype == U32
    # with one counter per element, narrower bits are the low bits of the same words
    np.testing.assert_array_equal(random.bits(k, (4,), "uint8"), b32.astype(np.uint8))
    np.testing.assert_array_equal(random.bits(k, (4,), "uint16"), b32.astype(np.uint16))
    y1, y2 = threefry2x32_p.bind(U32(0), U32(1701), U32(0), np.arange(4, dtype=U32))
    np.testing.assert_array_equal(b32, np.asarray(y1) ^ np.asarray(y2))
    b64 = np.asarray(random.bits(k, (4,), np.uint64))
    expect64 = (np.asarray(y1).astype(np.uint64) << np.uint64(32)) | np.asarray(y2)
    np.testing.assert_array_equal(b64, expect64)
    assert random.bits(k).shape == () and random.bits(k, (2, 0)).shape == (2, 0)


def test_bits_reshape_invariance():
    # element i of a (6,)-draw is element i (row-major) of a (2, 3)-draw
    k = random.key(9)
    np.testing.assert_array_equal(random.bits(k, (2, 3)), np.asarray(random.bits(k, (6,)))
                                  .reshape(2, 3))


def test_bits_are_balanced():
    b = np.asarray(random.bits(random.key(11), (20000,)))
    ones = np.unpackbits(b.view(np.uint8)).mean()
    assert abs(ones - 0.5) < 0.005
    per_bit = ((b[:, None] >> np.arange(32, dtype=U32)) & 1).mean(axis=0)
    assert np.all(np.abs(per_bit - 0.5) < 0.02)


# ------------------------------------------------------------------------ JAX < 0.5 layout


def legacy_hash(key, count):
    """JAX's original threefry_2x32(key, count): the flat counter split in two halves."""
    k = np.asarray(key)
    flat = np.asarray(count, U32).ravel()
    n = flat.size
    if n % 2:
        flat = np.concatenate([flat, np.zeros(1, U32)])
    h = flat.size // 2
    y1, y2 = threefry2x32_p.bind(k[0], k[1], flat[:h], flat[h:])
    return np.concatenate([np.asarray(y1), np.asarray(y2)])[:n]


def legacy_bits(key, bit_width, shape):
    size = int(np.prod(shape, dtype=np.int64))
    bits = legacy_hash(key, np.arange(-(-bit_width * size // 32), dtype=U32))
    if bit_width == 64:
        hi, lo = np.split(bits, 2)
        out = (hi.astype(np.uint64) << np.uint64(32)) | lo.astype(np.uint64)
    else:
        out = bits.view(f"uint{bit_width}")[:size]
    return fnp.asarray(out.reshape(shape))


def legacy_split(key, n=2):
    return [fnp.asarray(row) for row in legacy_hash(key, np.arange(2 * n, dtype=U32))
            .reshape(n, 2)]


def test_hash_reproduces_legacy_jax_split_and_bits():
    # jax.random.split(PRNGKey(0)) with jax_threefry_partitionable=False
    assert [r.tolist() for r in legacy_split(random.PRNGKey(0))] == \
        [[4146024105, 967050713], [2718843009, 1272950319]]
    # JAX's testRngRandomBits (legacy layout), seed 1701
    k = random.PRNGKey(1701)
    assert legacy_bits(k, 8, (3,)).tolist() == [216, 115, 43]
    assert legacy_bits(k, 16, (3,)).tolist() == [41682, 1300, 55017]
    assert legacy_bits(k, 32, (3,)).tolist() == [56197195, 4200222568, 961309823]
    assert legacy_bits(k, 64, (3,)).tolist() == [3982329540505020460, 16822122385914693683,
                                                  7882654074788531506]


# JAX's RandomValuesCase table (tests/random_test.py), threefry2x32, legacy layout: the key
# is PRNGKey(adler32(name + "threefry2x32")) and the draw has shape (5,).
LEGACY_VALUES = [
    ("bernoulli", {"p": 0.5}, None, [False, True, True, True, False]),
    ("bits", {}, np.uint8, [10, 158, 82, 54, 158]),
    ("bits", {}, np.uint16, [6738, 38161, 50695, 57337, 61600]),
    ("bits", {}, np.uint32, [1978747883, 4134381225, 3628107870, 689687174, 2788938207]),
    ("bits", {}, np.uint64, [17649965731882839947, 1415307058040849897, 8282622628079774249,
                             14024425113645909402, 2012979996110532418]),
    ("cauchy", {}, np.float32, [-0.088416, -10.169713, 3.49677, -1.18056, 0.34556]),
    ("exponential", {}, np.float32, [0.526067, 0.043046, 0.039932, 0.46427, 0.123886]),
    ("gumbel", {}, np.float32, [2.06701, 0.911726, 0.145736, 0.185427, -0.00711]),
    ("laplace", {}, np.float32, [0.578939, -0.204902, 0.555733, 0.911053, -0.96456]),
    ("logistic", {}, np.float32, [0.19611, -1.709053, -0.274093, -0.208322, -1.675489]),
    ("normal", {}, np.float32, [-1.173234, -1.511662, 0.070593, -0.099764, 1.052845]),
    ("rademacher", {}, np.int32, [-1, -1, -1, -1, 1]),
    ("randint", {"minval": 0, "maxval": 10}, np.int32, [0, 5, 7, 7, 5]),
    ("truncated_normal", {"lower": 0, "upper": 2}, np.float32,
     [0.582807, 1.709771, 0.159513, 0.861376, 0.36148]),
    ("uniform", {}, np.float32, [0.298671, 0.073213, 0.873356, 0.260549, 0.412797]),
]


@pytest.fixture
def legacy_layout(monkeypatch):
    monkeypatch.setattr(_distributions, "_random_bits", legacy_bits)
    monkeypatch.setattr(_distributions, "_split", legacy_split)
    monkeypatch.setattr(_threefry, "_random_bits", legacy_bits)


@pytest.mark.parametrize("name,params,dtype,expected", LEGACY_VALUES,
                         ids=[f"{c[0]}-{np.dtype(c[2]).name if c[2] else ''}"
                              for c in LEGACY_VALUES])
def test_distribution_recipes_match_jax_pinned_values(legacy_layout, name, params, dtype,
                                                      expected):
    key = random.PRNGKey(zlib.adler32((name + "threefry2x32").encode()))
    fn = getattr(random, name)
    if name == "randint":
        out = fn(key, (5,), params["minval"], params["maxval"], dtype)
    elif dtype is None:
        out = fn(key, **params, shape=(5,))
    else:
        out = fn(key, **params, shape=(5,), dtype=dtype)
    out = np.asarray(out)
    if out.dtype.kind == "f":
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    else:
        assert out.tolist() == expected


def test_randint_and_mvn_recipes_match_jax_pinned_values(legacy_layout):
    k = random.PRNGKey(0)  # JAX's testPRNGValues
    assert random.randint(k, (3, 3), 0, 8).tolist() == [[2, 1, 3], [6, 1, 5], [6, 3, 4]]
    assert random.randint(k, (3, 3), 0, 8, "int64").tolist() == [[7, 2, 6], [2, 1, 0], [6, 7, 7]]
    k = random.PRNGKey(zlib.adler32(b"multivariate_normalthreefry2x32"))
    out = random.multivariate_normal(k, np.ones((1, 3)), np.eye(3), (2,), np.float32)
    np.testing.assert_allclose(out, [[1.067826, 1.215599, 0.234166],
                                     [-0.237534, 1.32591, 1.413987]], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------ transforms


def test_jit_equals_eager_for_key_functions():
    k = random.PRNGKey(123)
    for f in (random.split, lambda k: random.split(k, (2, 2)), lambda k: random.fold_in(k, 7),
              lambda k: random.bits(k, (3, 4)), lambda k: random.bits(k, (5,), "uint64")):
        np.testing.assert_array_equal(nanofn.jit(f)(k), f(k))
    fold = nanofn.jit(random.fold_in)
    np.testing.assert_array_equal(fold(k, fnp.array(9)), random.fold_in(k, 9))


def test_vmap_over_keys_equals_loop():
    keys = random.split(random.PRNGKey(0), 4)
    draw = lambda k: random.normal(k, (3,))  # noqa: E731
    batched = vmap(draw)(keys)
    np.testing.assert_array_equal(batched, np.stack([np.asarray(draw(k)) for k in keys]))
    np.testing.assert_array_equal(vmap(random.split)(keys),
                                  np.stack([np.asarray(random.split(k)) for k in keys]))
    # keys along axis 1, and fold_in over a batch of data with one key
    np.testing.assert_array_equal(vmap(draw, in_axes=1)(fnp.transpose(keys)), batched)
    ks = vmap(random.fold_in, in_axes=(None, 0))(keys[0], fnp.arange(3))
    assert ks.tolist() == random.split(keys[0], 3).tolist()
    seeds = vmap(random.PRNGKey)(fnp.arange(3))
    assert seeds.tolist() == [[0, 0], [0, 1], [0, 2]]
    typed = vmap(random.key)(fnp.arange(3))
    assert typed.shape == (3,) and random.key_data(typed).tolist() == seeds.tolist()


def test_keys_inside_scan_equal_a_python_loop():
    def body(key, _):
        key, sub = random.split(key)
        return key, random.uniform(sub, (2,))

    final, xs = nanofn.lax.scan(body, random.PRNGKey(1), None, length=4)
    key, expected = random.PRNGKey(1), []
    for _ in range(4):
        key, sub = random.split(key)
        expected.append(np.asarray(random.uniform(sub, (2,))))
    np.testing.assert_array_equal(xs, np.stack(expected))
    assert final.tolist() == key.tolist()
    jitted = nanofn.jit(lambda k: nanofn.lax.scan(body, k, None, length=4))(random.PRNGKey(1))
    np.testing.assert_array_equal(jitted[1], xs)


def test_fold_in_with_traced_loop_counter():
    out = nanofn.lax.fori_loop(0, 3, lambda i, k: random.fold_in(k, i), random.PRNGKey(0))
    k = random.PRNGKey(0)
    for i in range(3):
        k = random.fold_in(k, i)
    assert out.tolist() == k.tolist()


def test_jaxpr_shows_one_threefry_equation():
    text = str(nanofn.make_jaxpr(lambda k: random.uniform(k, (3,)))(random.key(0)))
    assert text.count("threefry2x32") == 1 and "bitcast_convert_type" in text


# ------------------------------------------------------------------------ errors


@pytest.mark.parametrize("bad", [
    np.zeros(2, np.int32), np.zeros(3, U32), np.zeros((), U32), [0, 0], 0, "key",
    np.zeros(2, np.float32),
])
def test_non_keys_raise_type_error_saying_what_a_key_is(bad):
    for fn in (lambda k: random.split(k), lambda k: random.normal(k, (2,)),
               lambda k: random.fold_in(k, 1), lambda k: random.bits(k)):
        with pytest.raises(TypeError, match=r"uint32 array of shape \(2,\).*random.key\(seed\)"):
            fn(bad)


def test_batch_of_keys_points_to_vmap():
    # JAX raises ValueError for a batch of keys (typed or raw) given to a sampler
    for keys in (random.split(random.key(0), 3), random.split(random.PRNGKey(0), 3)):
        for draw in (lambda k: random.uniform(k, (2,)), random.split, random.bits,
                     lambda k: random.fold_in(k, 1)):
            with pytest.raises(ValueError, match="vmap"):
                draw(keys)


def test_negative_shape_raises_value_error_naming_shape():
    for fn in (lambda: random.bits(random.key(0), (2, -1)),
               lambda: random.uniform(random.key(0), (-3,)),
               lambda: random.normal(random.key(0), -1)):
        with pytest.raises(ValueError, match=r"shape \(.*-\d.*\) has a negative entry"):
            fn()
    with pytest.raises(ValueError, match=r"num \(-2,\) has a negative entry"):
        random.split(random.key(0), -2)


def test_bad_seed_and_bits_dtype_and_fold_in_data():
    with pytest.raises(TypeError, match="seed must be a scalar"):
        random.key(np.arange(2))
    with pytest.raises(TypeError, match="seed must be an integer"):
        random.key(np.float32(1.5))
    with pytest.raises(ValueError, match="unsigned integer dtype"):
        random.bits(random.key(0), (2,), np.int32)
    with pytest.raises(TypeError, match="fold_in: data must be a scalar"):
        random.fold_in(random.key(0), fnp.arange(2))
    with pytest.raises(OverflowError, match="key: seed"):
        random.key(2**63)
    with pytest.raises(ValueError, match="threefry2x32"):
        random.wrap_key_data(np.zeros(2, U32), impl="rbg")
    with pytest.raises(ValueError, match="key: impl must be None or 'threefry2x32'"):
        random.key(0, impl="unsafe_rbg")
    with pytest.raises(ValueError, match="PRNGKey: impl"):
        random.PRNGKey(0, impl="rbg")


def test_jax_impl_argument_names_the_default_prng():
    # ported code often spells the default out: jax.random.key(0, impl="threefry2x32")
    for k in (random.key(3, impl="threefry2x32"), random.PRNGKey(3, impl="threefry2x32"),
              random.wrap_key_data(np.array([0, 3], U32), impl="threefry2x32", dtype=None)):
        assert random.key_data(k).tolist() == random.PRNGKey(3).tolist()
