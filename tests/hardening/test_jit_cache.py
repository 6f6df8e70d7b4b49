"""The jit cache is bounded (LRU, `config.nanofn_jit_cache_size`) and can be cleared with
JAX's names: `jit(f).clear_cache()` and `nanofn.clear_caches()`."""

import gc
import weakref

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp


@pytest.fixture
def cache_size():
    old = nanofn.config.nanofn_jit_cache_size
    yield lambda n: nanofn.config.update("nanofn_jit_cache_size", n)
    nanofn.config.update("nanofn_jit_cache_size", old)


def test_default_bound_is_set():
    assert 16 <= nanofn.config.nanofn_jit_cache_size <= 4096


def test_clear_cache_retraces():
    f = nanofn.jit(lambda x: x * 2)
    f(1.0)
    f(jnp.ones(2))
    assert f._cache_size() == 2
    f.clear_cache()
    assert f._cache_size() == 0
    np.testing.assert_array_equal(np.asarray(f(jnp.ones(2))), [2.0, 2.0])
    assert f.trace_count == 3


def test_clear_caches_clears_every_jitted_function():
    f = nanofn.jit(lambda x: x + 1)
    g = nanofn.jit(lambda x: x - 1)
    f(1.0), g(1.0)
    nanofn.clear_caches()
    assert f._cache_size() == g._cache_size() == 0
    assert float(f(1.0)) == 2.0 and float(g(1.0)) == 0.0


def test_cleared_functions_can_be_garbage_collected():
    f = nanofn.jit(lambda x: x + 1)
    f(1.0)
    ref = weakref.ref(f)
    del f
    gc.collect()
    assert ref() is None  # the registry behind clear_caches keeps no function alive
    nanofn.clear_caches()


def test_lru_bound(cache_size):
    cache_size(3)
    f = nanofn.jit(lambda x: x.sum())
    for n in range(1, 7):
        f(jnp.ones(n))
    assert f._cache_size() == 3
    assert f.trace_count == 6
    f(jnp.ones(5))  # recent: still cached
    assert f.trace_count == 6
    f(jnp.ones(4))  # most recent use moves (4,) to the end; (5,) and (6,) stay
    f(jnp.ones(1))  # evicted long ago: traced again, evicting the least recent, (6,)
    assert f.trace_count == 7
    f(jnp.ones(5))
    assert f.trace_count == 7
    f(jnp.ones(6))
    assert f.trace_count == 8
    assert float(f(jnp.ones(6))) == 6.0
