"""With `jax_enable_x64` on, the same key gives JAX's draws and JAX's dtypes: int64 by default
for randint, permutation, choice, rademacher, categorical and geometric, uint64 for bits,
64-bit seeds from Python ints, and float64 uniforms inside rademacher (recorded by
tools/reference/record_x64_streams.py). x64 is switched on for each test only."""

import os

import numpy as np
import pytest

import nanofn
from nanofn import random

HERE = os.path.dirname(os.path.abspath(__file__))
from x64_stream_cases import CASES  # noqa: E402

REF = dict(np.load(os.path.join(HERE, "data", "x64_streams_jax.npz")))


# `x64` and `x32` (the flag on or off for one test) are tests/conftest.py's fixtures


def test_every_case_is_recorded():
    assert sorted(REF) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_key_gives_jax_x64_draws(x64, name):
    seed, draw = CASES[name]
    got = np.asarray(draw(random, random.PRNGKey(seed)))
    ref = REF[name]
    assert (got.shape, got.dtype) == (ref.shape, ref.dtype)
    if ref.dtype.kind in "biu":
        np.testing.assert_array_equal(got, ref)
    else:  # float64 math: numpy's and XLA's transcendental functions differ by an ulp or so
        tol = 1e-12 if ref.dtype in (np.float64, np.complex128) else 2e-6
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)


def test_x64_integer_draws_under_jit_and_vmap(x64):
    key = random.PRNGKey(7)
    for name in ("randint_default", "rademacher_default", "choice_replace", "choice_p",
                 "permutation_int", "bits_default"):
        _, draw = CASES[name]
        got = nanofn.jit(lambda k: draw(random, k))(key)
        assert got.dtype == REF[name].dtype
        np.testing.assert_array_equal(got, REF[name])
    keys = random.split(key, 3)
    batched = nanofn.vmap(lambda k: random.randint(k, (4,), 0, 100))(keys)
    assert batched.dtype == np.int64
    eager = np.stack([np.asarray(random.randint(k, (4,), 0, 100)) for k in keys])
    np.testing.assert_array_equal(batched, eager)


def test_x64_default_dtypes(x64):
    key = random.PRNGKey(0)
    assert random.poisson(key, 3.0, (2,)).dtype == np.int64
    assert random.binomial(key, 5, 0.5, (2,)).dtype == np.float64
    assert random.choice(key, 10, (0,)).dtype == np.int64
    assert random.randint(key, (2,), 0.0, 5.0).dtype == np.int64


def test_poisson_computes_in_float32_like_jax(x64):
    # JAX converts lam to float32 whatever the flag, so only the dtype changes with x64
    key = random.PRNGKey(3)
    lam = np.array([0.5, 3.0, 30.0, 300.0])
    wide = np.asarray(random.poisson(key, lam, (2, 4)))
    nanofn.config.update("jax_enable_x64", False)
    narrow = np.asarray(random.poisson(key, lam, (2, 4)))
    assert (wide.dtype, narrow.dtype) == (np.int64, np.int32)
    np.testing.assert_array_equal(wide, narrow)


def test_32_bit_defaults_are_unchanged(x32):
    key = random.PRNGKey(7)
    assert random.PRNGKey(2 ** 40 + 3).tolist() == [0, 3]  # a Python int is a 32-bit seed
    assert random.bits(key, (2,)).dtype == np.uint32
    for x in (random.randint(key, (3,), 0, 10), random.permutation(key, 5),
              random.choice(key, 10, (3,)), random.rademacher(key, (3,)),
              random.choice(key, 5, (3,), p=np.array([0.1, 0.2, 0.3, 0.2, 0.2], np.float32))):
        assert x.dtype == np.int32
