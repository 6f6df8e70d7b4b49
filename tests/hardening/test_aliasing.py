"""A nanofn array never changes after it is made: writes to the caller's numpy buffer after
the call leave every nanofn result alone (nanofn copies writable caller buffers once, where
they come in), and nothing a user is handed can write into nanofn's own state."""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp

# operations that numpy would answer with a view of their input
VIEW_OPS = {
    "asarray": jnp.asarray,
    "array_copy_false": lambda x: jnp.array(x, copy=False),
    "reshape": lambda x: jnp.reshape(x, (2, 3)),
    "reshape_same": lambda x: jnp.reshape(x, x.shape),
    "transpose": jnp.transpose,
    "astype_same": lambda x: jnp.astype(x, x.dtype),
    "ravel": jnp.ravel,
    "squeeze": jnp.squeeze,
    "squeeze_nothing": lambda x: jnp.squeeze(x.reshape(2, 3)),
    "expand_dims": lambda x: jnp.expand_dims(x, 0),
    "swapaxes": lambda x: jnp.swapaxes(x, 0, 1),
    "moveaxis": lambda x: jnp.moveaxis(x, 0, -1),
    "slice": lambda x: jnp.asarray(x)[1:],
    "take_first": lambda x: jnp.take(x, 0, axis=0),
    "broadcast_to": lambda x: jnp.broadcast_to(x, (2,) + x.shape),
    "broadcast_to_same": lambda x: jnp.broadcast_to(x, x.shape),
    "real": jnp.real,
    "atleast_2d": jnp.atleast_2d,
    "split": lambda x: jnp.split(x, 2, axis=0)[0],
    "diagonal": jnp.diagonal,
    "flip": lambda x: jnp.flip(x, 0),
}


def _caller_array():
    return np.arange(6, dtype=np.float32).reshape(2, 3)


@pytest.mark.parametrize("name", sorted(VIEW_OPS))
def test_view_ops_do_not_alias_the_callers_buffer(name):
    x = _caller_array()
    out = VIEW_OPS[name](x)
    before = np.array(out, copy=True)
    x[...] = -7.0
    np.testing.assert_array_equal(np.asarray(out), before)


TRANSFORMS = {
    "jit": lambda x: nanofn.jit(lambda y: y)(x),
    "jit_reshape": lambda x: nanofn.jit(lambda y: y.reshape(-1))(x),
    "jit_slice": lambda x: nanofn.jit(lambda y: y[1:])(x),
    "jit_transpose_in_a_tuple": lambda x: nanofn.jit(lambda y: (y * 2, y.T))(x)[1],
    "vmap": lambda x: nanofn.vmap(lambda y: y)(x),
    "vmap_in_axes_none": lambda x: nanofn.vmap(lambda y, z: z, in_axes=(0, None))(x, x),
    "jvp_primal": lambda x: nanofn.jvp(lambda y: y, (x,), (x,))[0],
    "jvp_tangent": lambda x: nanofn.jvp(lambda y: y, (x,), (x,))[1],
    "vjp_primal": lambda x: nanofn.vjp(lambda y: y, x)[0],
    "grad_aux": lambda x: nanofn.grad(lambda y: (y.sum(), y), has_aux=True)(x)[1],
    "linearize": lambda x: nanofn.linearize(lambda y: y, x)[0],
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_transforms_of_identity_do_not_alias(name):
    x = _caller_array()
    out = TRANSFORMS[name](x)
    before = np.array(out, copy=True)
    x[...] = -7.0
    np.testing.assert_array_equal(np.asarray(out), before)


def test_read_only_buffers_are_not_copied():
    x = _caller_array()
    x.flags.writeable = False
    assert np.shares_memory(np.asarray(jnp.asarray(x)), x)
    a = jnp.arange(6.0)
    assert jnp.asarray(a) is a


def test_jit_closure_constant_is_captured_at_trace_time():
    c = np.ones(3, np.float32)
    f = nanofn.jit(lambda x: x + c)
    first = np.asarray(f(jnp.zeros(3)))
    c[:] = 100.0  # as in JAX: the constant was baked in when f was traced
    np.testing.assert_array_equal(np.asarray(f(jnp.zeros(3))), first)


def test_pullbacks_keep_the_constants_they_saw():
    c = np.full(3, 2.0, np.float32)
    _, pullback = nanofn.vjp(lambda w: w * c, jnp.ones(3))
    _, f_jvp = nanofn.linearize(lambda w: w * c, jnp.ones(3))
    c[:] = 100.0
    np.testing.assert_array_equal(np.asarray(pullback(jnp.ones(3))[0]), [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(np.asarray(f_jvp(jnp.ones(3))), [2.0, 2.0, 2.0])


def test_outputs_cannot_corrupt_jit_state():
    c = jnp.ones(3)
    f = nanofn.jit(lambda x: (c, x * 2))
    const_out, _ = f(jnp.zeros(3))
    view = np.asarray(const_out)
    with pytest.raises(ValueError):
        view[0] = 5.0
    with pytest.raises(ValueError):  # numpy refuses to make the read-only view writable
        view.flags.writeable = True
    with pytest.raises(TypeError):  # nor can its base be written
        view.base[0] = 5.0
    np.testing.assert_array_equal(np.asarray(f(jnp.zeros(3))[0]), np.ones(3))
    np.testing.assert_array_equal(np.asarray(c), np.ones(3))


def test_jit_does_not_write_into_its_arguments():
    x = jnp.arange(4.0)
    f = nanofn.jit(lambda y: jnp.exp(y * 2.0) + 1.0)
    for _ in range(3):  # the second call runs fused kernels
        f(x)
    np.testing.assert_array_equal(np.asarray(x), np.arange(4.0, dtype=np.float32))


def test_jit_reads_a_callers_buffer_without_copying_it():
    # a plain call only reads its numpy arguments: it is lent them, not given copies
    import tracemalloc
    x = np.ones((1024, 1024), np.float32)  # 4 MB
    f = nanofn.jit(lambda y: y[0, :4] * 2.0)
    f(x)
    tracemalloc.start()
    try:
        f(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes // 4
    assert x.flags.writeable  # the caller's buffer is left as it was


def test_a_vjp_of_jit_keeps_the_inputs_it_saw():
    # under a transformation jit copies its numpy arguments: residuals must not change
    x = np.full(3, 2.0, np.float32)
    _, pullback = nanofn.vjp(nanofn.jit(lambda y: y * y), x)
    x[:] = 100.0
    np.testing.assert_array_equal(np.asarray(pullback(jnp.ones(3))[0]), [4.0, 4.0, 4.0])
