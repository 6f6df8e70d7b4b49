"""Tracebacks show the user's frames, not nanofn's (issue 13, item 6), unless
`jax_traceback_filtering` is "off" (or JAX_TRACEBACK_FILTERING=off is set)."""

import os
import subprocess
import sys
import traceback

import pytest

import nanofn
import nanofn.numpy as jnp

NANOFN_DIR = os.path.dirname(os.path.abspath(nanofn.__file__)) + os.sep


def user_model(x):
    return jnp.dot(x, jnp.ones(4))  # the failing line: (3,) . (4,)


def user_loss(x):
    return jnp.sum(user_model(x))


def _frames(exc):
    return [(os.path.abspath(f.filename), f.name) for f in traceback.extract_tb(exc.__traceback__)]


def _nanofn_frames(exc):
    return [name for path, name in _frames(exc) if path.startswith(NANOFN_DIR)]


@pytest.mark.parametrize("transform, shape", [
    (lambda f: nanofn.jit(nanofn.grad(f)), (3,)),
    (lambda f: nanofn.vmap(nanofn.grad(f)), (2, 3)),
    (lambda f: nanofn.jacrev(f), (3,)),
    (lambda f: (lambda x: nanofn.lax.scan(lambda c, _: (c + f(x), None), 0.0, None,
                                          length=2)[0]), (3,)),
])
def test_user_frames_kept_and_nanofn_frames_cut(transform, shape):
    with pytest.raises(TypeError) as info:
        transform(user_loss)(jnp.ones(shape))
    names = [name for _, name in _frames(info.value)]
    assert "user_loss" in names and "user_model" in names
    # only the boundary that re-raised the error remains of nanofn
    assert set(_nanofn_frames(info.value)) <= {"reraise_with_filtered_traceback"}
    assert len(_nanofn_frames(info.value)) <= 1


def test_switch_off_shows_everything():
    nanofn.config.update("jax_traceback_filtering", "off")
    try:
        with pytest.raises(TypeError) as info:
            nanofn.jit(nanofn.grad(user_loss))(jnp.ones(3))
    finally:
        nanofn.config.update("jax_traceback_filtering", "auto")
    inner = _nanofn_frames(info.value)
    assert len(inner) > 5 and "trace_to_jaxpr" in inner


def test_exception_type_message_and_cause_unchanged():
    class Boom(Exception):
        pass

    def f(x):
        try:
            {}["missing"]
        except KeyError as e:
            raise Boom("user error") from e

    with pytest.raises(Boom, match="user error") as info:
        nanofn.grad(f)(1.0)
    assert isinstance(info.value.__cause__, KeyError)


def test_environment_variable_turns_filtering_off():
    code = ("import nanofn, nanofn.numpy as jnp\n"
            "def loss(x):\n    return jnp.sum(jnp.dot(x, jnp.ones(4)))\n"
            "nanofn.grad(loss)(jnp.ones(3))\n")
    env = dict(os.environ)
    runs = {}
    for value in ("off", None):
        env.pop("JAX_TRACEBACK_FILTERING", None)
        if value:
            env["JAX_TRACEBACK_FILTERING"] = value
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=120)
        assert "not aligned" in proc.stderr
        runs[value] = proc.stderr.count(NANOFN_DIR)
    assert runs["off"] > 3 and runs[None] <= 1
