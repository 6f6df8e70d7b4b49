"""Large arrays nanofn allocates for its kernels (the plan's reused buffers, fused and nn
kernels' results) start on a 64-byte boundary (`nanofn._malloc.empty`), on any platform."""

import numpy as np
from hypothesis import given, strategies as st

import nanofn
import nanofn.warmup
from nanofn import _malloc, profiler


@given(st.lists(st.integers(0, 300), min_size=0, max_size=3),
       st.sampled_from(["float32", "float64", "int8", "complex128", "bool"]),
       st.sampled_from(["C", "F"]))
def test_empty_gives_the_array_numpy_would_large_ones_on_a_cache_line(dims, dtype, order):
    shape = tuple(dims)
    a = _malloc.empty(shape, dtype, order=order)
    b = np.empty(shape, dtype, order=order)
    assert (a.shape, a.dtype, a.strides) == (b.shape, b.dtype, b.strides)
    assert a.flags.writeable and a.flags.aligned
    if a.nbytes >= _malloc.ALIGN_MIN_BYTES:
        assert a.ctypes.data % _malloc.ALIGN == 0
    a[...] = 1  # all of it is writable memory
    assert (a == 1).all()


def test_plan_buffers_and_fused_results_start_on_a_cache_line():
    f = nanofn.jit(lambda x, w: (nanofn.numpy.tanh(x @ w) * 2.0 + 1.0) @ w.T)
    x, w = np.ones((512, 600), np.float32), np.ones((600, 600), np.float32)
    for _ in range(3):
        f(x, w)
    nanofn.warmup.wait()
    out = f(x, w)
    compiled, _ = profiler._compiled(f, (x, w), {})
    big = [b for b in compiled.plan._new_arena() if b.nbytes >= _malloc.ALIGN_MIN_BYTES]
    assert big and all(b.ctypes.data % _malloc.ALIGN == 0 for b in big)
    assert np.asarray(out).shape == (512, 600)
