"""Bad input gets a TypeError or ValueError that names the function, the value and its
dtype, raised where values become nanofn arrays, never a bare KeyError or ZeroDivisionError
from deep inside."""

import datetime

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp
from nanofn import optim

BAD_VALUES = [
    (None, TypeError, r"sin: .*NoneType \(None\)"),
    ("abc", TypeError, r"sin: .*str \('abc'\)"),
    (b"abc", TypeError, r"sin: .*bytes"),
    (np.array([1, None], dtype=object), TypeError, r"sin: .*dtype object.*Python objects"),
    (np.array(["2020-01-01"], dtype="M8[D]"), TypeError, r"sin: .*datetime64\[D\].*datetimes"),
    (np.array([1], dtype="m8[s]"), TypeError, r"sin: .*timedelta64.*timedeltas"),
    (np.array([b"a"]), TypeError, r"sin: .*dtype \|S1.*bytes"),
    (np.array(["a"]), TypeError, r"sin: .*dtype <U1.*strings"),
    (np.zeros(2, dtype=[("a", "f4")]), TypeError, r"sin: .*records"),
    ([1.0, None], TypeError, r"sin: .*list \(\[1.0, None\]\).*Python objects"),
    (["a", "b"], TypeError, r"sin: .*strings"),
    ([[1.0], [2.0, 3.0]], ValueError, r"sin: .*ragged.*\[\[1.0\], \[2.0, 3.0\]\]"),
    (datetime.date(2020, 1, 1), TypeError, r"sin: .*date"),
    (object(), TypeError, r"sin: .*object"),
]


@pytest.mark.parametrize("value,error,message", BAD_VALUES,
                         ids=[repr(v[0])[:20] for v in BAD_VALUES])
def test_bad_values_name_function_value_and_dtype(value, error, message):
    with pytest.raises(error, match=message):
        jnp.sin(value)


@pytest.mark.parametrize("fn,name", [(lambda v: jnp.add(1.0, v), "add"),
                                     (lambda v: jnp.sum(v), "sum"),
                                     (lambda v: jnp.reshape(v, (-1,)), "reshape"),
                                     (lambda v: jnp.array(v), "array"),
                                     (lambda v: jnp.matmul(v, v), "matmul")])
def test_the_error_names_the_function_called(fn, name):
    with pytest.raises(TypeError, match=rf"^{name}: .*dtype object"):
        fn(np.array([1.0, None], dtype=object))


@pytest.mark.parametrize("transform", [
    lambda v: nanofn.jit(jnp.sin)(v),
    lambda v: nanofn.grad(lambda x: jnp.sum(x))(v),
    lambda v: nanofn.vmap(jnp.sin)(v),
    lambda v: nanofn.jvp(jnp.sin, (v,), (v,)),
])
def test_transforms_refuse_non_numeric_arrays(transform):
    with pytest.raises(TypeError, match=r"dtype (<U1|str32)"):  # grad words it its own way
        transform(np.array(["a", "b"]))


def test_arange_zero_step():
    with pytest.raises(ValueError, match=r"arange: step must not be zero"):
        jnp.arange(0, 10, 0)
    with pytest.raises(ValueError, match=r"step must not be zero"):
        jnp.arange(0.0, 1.0, 0.0)


def test_jit_static_args_that_name_nothing():
    def f(x, y=1):
        return x * y

    with pytest.raises(ValueError, match=r"static_argnums=\(3,\).*2 positional"):
        nanofn.jit(f, static_argnums=3)
    with pytest.raises(ValueError, match=r"static_argnums=\(-3,\)"):
        nanofn.jit(f, static_argnums=-3)
    with pytest.raises(ValueError, match=r"static_argnames=\('z',\).*\['z'\]"):
        nanofn.jit(f, static_argnames="z")
    assert float(nanofn.jit(f, static_argnames="y")(2.0, y=3)) == 6.0
    assert float(nanofn.jit(f, static_argnums=-1)(2.0, 3)) == 6.0
    # functions with *args / **kwargs accept any position or name, as in JAX
    assert float(nanofn.jit(lambda *a: a[0] * a[2], static_argnums=2)(2.0, 0, 4)) == 8.0
    assert float(nanofn.jit(lambda x, **k: x * k["s"], static_argnames="s")(2.0, s=5)) == 10.0


@pytest.mark.parametrize("make", [lambda lr: optim.sgd(lr), lambda lr: optim.adam(lr),
                                  lambda lr: optim.scale_by_learning_rate(lr)])
def test_learning_rate_of_the_wrong_type(make):
    with pytest.raises(TypeError, match=r"learning_rate.*str '0.1'"):
        make("0.1")
    with pytest.raises(TypeError, match=r"learning_rate.*list"):
        make([0.1])
