"""nanofn.experimental.checkify: run-time checks as returned values (jax.experimental.checkify).

The expected messages are JAX's, as JAX 0.10 prints them for the same programs."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn.experimental import checkify

OOB = "out-of-bounds indexing for array of shape {}: index {} is out of bounds for axis {} " \
      "with size {}. "


def failed(msg):
    return f"{msg} (`check` failed)"


def positive_log(x):
    checkify.check(x > 0, "x must be positive, got {}", x)
    return fnp.log(x)


# ------------------------------------------------------------------------ user checks


def test_import_paths():
    import nanofn.experimental.checkify as mod
    assert mod is checkify
    assert nanofn.experimental.checkify is checkify
    for name in checkify.__all__:
        assert hasattr(checkify, name)


def test_user_check_formats_positional_and_named_values():
    def f(x):
        checkify.check(x > 0, "x={x:.2f} twice={}", x * 2, x=x)
        return x

    err, out = checkify.checkify(f)(fnp.float32(-1.5))
    assert err.get() == failed("x=-1.50 twice=-3.0")
    assert float(out) == -1.5
    err, _ = checkify.checkify(f)(fnp.float32(2.0))
    assert err.get() is None
    assert str(err) == "Error(None)"


def test_brief_example_through_jit():
    def f(x, i):
        checkify.check(fnp.all(x > 0), "x must be positive, got {}", x)
        return fnp.log(x)[i]

    checked = checkify.checkify(nanofn.jit(f), errors=checkify.user_checks | checkify.index_checks)
    err, out = checked(fnp.array([1.0, -2.0, 3.0]), 5)
    assert err.get() == failed("x must be positive, got [ 1. -2.  3.]")
    with pytest.raises(checkify.JaxRuntimeError, match="must be positive"):
        err.throw()
    assert isinstance(err.get_exception(), checkify.FailedCheckError)
    err, _ = checked(fnp.array([1.0, 2.0, 3.0]), 5)
    assert err.get() == OOB.format((3,), 5, 0, 3)


@given(st.floats(-10, 10, allow_nan=False, width=32))
def test_check_fails_exactly_when_pred_is_false(x):
    err, out = checkify.checkify(positive_log)(fnp.float32(x))
    if x > 0:
        assert err.get() is None
        np.testing.assert_allclose(float(out), np.log(np.float32(x)), rtol=1e-6)
    else:
        assert err.get() == failed(f"x must be positive, got {np.float32(x)}")


def test_pytree_format_arguments_and_python_numbers():
    def f(x):
        checkify.check(x > 0, "d={d} n={}", 3, d={"a": x})
        return x

    err, _ = checkify.checkify(f)(fnp.float32(-1.0))
    assert err.get() == failed("d={'a': Array(-1., dtype=float32)} n=3")


def test_check_validates_its_arguments():
    with pytest.raises(TypeError, match="scalar pred"):
        checkify.check(fnp.array([True, False]), "x")
    with pytest.raises(TypeError, match="pytrees of arrays"):
        checkify.check(True, "x {}", "not an array")
    with pytest.raises(TypeError, match="error categories"):
        checkify.checkify(lambda x: x, errors={ValueError})(1.0)


def test_eager_check_outside_checkify_raises():
    checkify.check(fnp.array(True), "fine")
    with pytest.raises(checkify.JaxRuntimeError) as info:
        checkify.check(fnp.array(False), "bad {x}", x=fnp.array(3))
    assert str(info.value) == failed("bad 3")
    assert isinstance(info.value, ValueError)


def test_eager_grad_and_vmap_run_the_check():
    with pytest.raises(checkify.JaxRuntimeError, match=r"g -1.0"):
        nanofn.grad(lambda x: (checkify.check(x > 0, "g {}", x), x)[1])(-1.0)
    # vmap reports one failing element: the last, as JAX does
    with pytest.raises(checkify.JaxRuntimeError, match=r"v -3.0"):
        nanofn.vmap(lambda x: checkify.check(x > 0, "v {}", x))(fnp.array([1.0, -2.0, -3.0]))


def test_staged_check_without_checkify_is_refused():
    with pytest.raises(ValueError, match="not functionalized"):
        nanofn.jit(lambda x: checkify.check(x > 0, "bad"))(1.0)
    with pytest.raises(ValueError, match="not functionalized"):
        nanofn.lax.scan(lambda c, x: (checkify.check(x > 0, "s"), (c, x))[1], 0.0,
                        fnp.arange(3.0))


def test_debug_check_is_dropped_outside_checkify():
    def f(x):
        checkify.debug_check(x != 0, "cannot be zero! {}", x)
        return x

    assert int(f(0)) == 0
    assert float(nanofn.jit(f)(fnp.float32(0.0))) == 0.0
    err, _ = checkify.checkify(f)(fnp.int32(0))
    assert err.get() == failed("cannot be zero! 0")


def test_first_error_wins():
    def f(x):
        checkify.check(x > 100, "first {}", x)
        checkify.check(x > 200, "second {}", x)
        return fnp.log(x)

    err, _ = checkify.checkify(f, errors=checkify.all_checks)(fnp.float32(-1.0))
    assert err.get() == failed("first -1.0")

    def g(x):
        y = fnp.log(x)
        checkify.check(x > 100, "later")
        return y

    # program order (JAX numbers the check at trace time and may report it instead)
    err, _ = checkify.checkify(g, errors=checkify.all_checks)(fnp.float32(-1.0))
    assert err.get() == "nan generated by primitive: log."


@given(st.lists(st.booleans(), min_size=1, max_size=6))
def test_first_failing_check_in_program_order(oks):
    def f(x):
        for i, ok in enumerate(oks):
            checkify.check(x > 0 if ok else x < 0, "check {}", fnp.int32(i))
        return x

    err, _ = checkify.checkify(nanofn.jit(f))(fnp.float32(1.0))
    expected = next((i for i, ok in enumerate(oks) if not ok), None)
    assert err.get() == (None if expected is None else failed(f"check {expected}"))


# ------------------------------------------------------------------------ automatic checks


def test_nan_checks():
    err, _ = checkify.checkify(fnp.log, errors=checkify.nan_checks)(fnp.array([-1.0]))
    assert err.get() == "nan generated by primitive: log."
    assert isinstance(err.get_exception(), checkify.NaNError)
    err, _ = checkify.checkify(lambda x: fnp.sin(x) + x, errors=checkify.float_checks)(
        fnp.float32(np.inf))
    assert err.get() == "nan generated by primitive: sin."
    # not enabled: no error
    err, _ = checkify.checkify(fnp.log)(fnp.array([-1.0]))
    assert err.get() is None


@given(st.lists(st.floats(-5, 5, allow_nan=False, width=32), min_size=1, max_size=5))
def test_nan_check_matches_numpy(xs):
    x = np.asarray(xs, np.float32)
    err, out = checkify.checkify(fnp.sqrt, errors=checkify.nan_checks)(x)
    assert (err.get() is not None) == bool(np.isnan(np.sqrt(x)).any())
    np.testing.assert_array_equal(np.asarray(out), np.sqrt(x))


def test_div_checks():
    f = checkify.checkify(lambda x, y: x // y, errors=checkify.div_checks)
    err, _ = f(fnp.array([1, 2]), fnp.array([1, 0]))
    assert err.get() == "division by zero"
    assert isinstance(err.get_exception(), checkify.DivisionByZeroError)
    assert f(fnp.array([4]), fnp.array([2]))[0].get() is None
    # floating division by zero counts (as in JAX); rem is not checked
    err, _ = checkify.checkify(lambda x: 1.0 / x, errors=checkify.div_checks)(fnp.float32(0))
    assert err.get() == "division by zero"
    err, _ = checkify.checkify(lambda x, y: x % y, errors=checkify.div_checks)(
        fnp.array([1]), fnp.array([0]))
    assert err.get() is None


@pytest.mark.parametrize("i, index", [(5, 5), (3, 3), (-4, -1), (-5, -2)])
def test_index_checks_gather(i, index):
    f = checkify.checkify(nanofn.jit(lambda x, i: x[i]), errors=checkify.index_checks)
    err, _ = f(fnp.arange(3), i)
    assert err.get() == OOB.format((3,), index, 0, 3)
    assert isinstance(err.get_exception(), checkify.OOBError)


@given(st.integers(-8, 8), st.integers(1, 5))
def test_index_check_fails_exactly_out_of_range(i, n):
    f = checkify.checkify(nanofn.jit(lambda x, i: x[i]), errors=checkify.index_checks)
    err, out = f(fnp.arange(n), i)
    assert (err.get() is None) == (-n <= i < n)
    if -n <= i < n:
        assert int(out) == np.arange(n)[i]


def test_index_checks_arrays_take_and_axes():
    f = checkify.checkify(lambda x, i, j: x[i, j], errors=checkify.index_checks)
    err, _ = f(fnp.ones((2, 3)), fnp.array([0, 1]), fnp.array([1, 3]))
    assert err.get() == OOB.format((2, 3), 3, 1, 3)
    err, _ = f(fnp.ones((2, 3)), fnp.int32(1), fnp.int32(4))
    assert err.get() == OOB.format((2, 3), 4, 1, 3)
    err, _ = checkify.checkify(fnp.take, errors=checkify.index_checks)(
        fnp.arange(3.0), fnp.array([0, 5]))
    assert err.get() == OOB.format((3,), 5, 0, 3)


def test_index_checks_scatter_and_dynamic_slices():
    err, _ = checkify.checkify(lambda x, i: x.at[i].set(1), errors=checkify.index_checks)(
        fnp.arange(3), fnp.int32(7))
    assert err.get() == OOB.format((3,), 7, 0, 3)
    err, _ = checkify.checkify(lambda x, i: x.at[i].add(1.0), errors=checkify.index_checks)(
        fnp.arange(3.0), fnp.int32(-4))
    assert err.get() == OOB.format((3,), -1, 0, 3)
    err, out = checkify.checkify(lambda x, i: nanofn.lax.dynamic_slice(x, (i,), (2,)),
                                 errors=checkify.index_checks)(fnp.arange(3), fnp.int32(2))
    assert err.get() == OOB.format((3,), 2, 0, 3)
    np.testing.assert_array_equal(np.asarray(out), [1, 2])  # clamped, as without checks
    err, _ = checkify.checkify(
        lambda x, i: nanofn.lax.dynamic_update_slice(x, fnp.ones(2), (i,)),
        errors=checkify.index_checks)(fnp.arange(3.0), fnp.int32(2))
    assert err.get() == OOB.format((3,), 2, 0, 3)
    err, _ = checkify.checkify(lambda x, i: nanofn.lax.dynamic_slice(x, (i,), (2,)),
                               errors=checkify.index_checks)(fnp.arange(3), fnp.int32(1))
    assert err.get() is None


def test_error_set_algebra():
    assert checkify.float_checks == checkify.nan_checks | checkify.div_checks
    assert checkify.automatic_checks == checkify.float_checks | checkify.index_checks
    assert checkify.all_checks == checkify.automatic_checks | checkify.user_checks

    def f(x, y, i):
        checkify.check(x > 0, "user")
        return fnp.log(x) + x // y + fnp.arange(3)[i]

    args = (fnp.int32(-1), fnp.int32(0), fnp.int32(5))
    expect = {
        frozenset(checkify.user_checks | checkify.nan_checks): failed("user"),
        frozenset(checkify.all_checks - checkify.user_checks): "nan generated by primitive: log.",
        frozenset(checkify.all_checks - checkify.nan_checks - checkify.user_checks):
            "division by zero",
        frozenset(checkify.index_checks): OOB.format((3,), 5, 0, 3),
        frozenset(): None,
    }
    for errors, msg in expect.items():
        assert checkify.checkify(f, errors=errors)(*args)[0].get() == msg


# ------------------------------------------------------------------------ control flow


def test_checks_in_scan_while_cond_fori():
    def scan_f(xs):
        def body(c, x):
            checkify.check(x < 3, "x too big at {}", x)
            return c + x, c
        return nanofn.lax.scan(body, 0.0, xs)

    err, (c, ys) = checkify.checkify(scan_f)(fnp.arange(6.0))
    assert err.get() == failed("x too big at 3.0")
    assert float(c) == 15.0
    np.testing.assert_array_equal(np.asarray(ys), [0, 0, 1, 3, 6, 10])

    def while_body(c):
        i, s = c
        checkify.check(s < 5, "s too big {} at {}", s, i)
        return i + 1, s + i

    err, out = checkify.checkify(
        lambda: nanofn.lax.while_loop(lambda c: c[0] < 10, while_body, (0, 0)))()
    assert err.get() == failed("s too big 6 at 4")
    assert [int(o) for o in out] == [10, 45]

    def while_cond(c):
        checkify.check(c < 3, "cond fail {}", c)
        return c < 10

    err, out = checkify.checkify(lambda: nanofn.lax.while_loop(while_cond, lambda c: c + 1, 0))()
    assert err.get() == failed("cond fail 3") and int(out) == 10

    def cond_f(p, x):
        def yes(x):
            checkify.check(x > 0, "cond true {}", x)
            return x
        return nanofn.lax.cond(p, yes, lambda x: x, x)

    assert checkify.checkify(cond_f)(True, fnp.float32(-1))[0].get() == failed("cond true -1.0")
    assert checkify.checkify(cond_f)(False, fnp.float32(-1))[0].get() is None

    def fori(n):
        return nanofn.lax.fori_loop(0, n, lambda i, c: (checkify.check(i < 3, "i={}", i),
                                                        c + i)[1], 0)

    err, out = checkify.checkify(fori)(5)  # static bounds: a scan
    assert err.get() == failed("i=3") and int(out) == 10
    err, out = checkify.checkify(fori)(fnp.int32(6))  # traced bounds: a while loop
    assert err.get() == failed("i=3") and int(out) == 15


def test_switch_branches_with_different_errors():
    def f(i, x):
        return nanofn.lax.switch(i, [
            lambda x: x,
            lambda x: (checkify.check(x[0] > 0, "b1 {}", x[0]), x)[1],
            lambda x: x + fnp.log(x - 2.0)], x)

    checked = checkify.checkify(f, errors=checkify.all_checks)
    x = fnp.array([-1.0, 1.0])
    assert checked(fnp.int32(0), x)[0].get() is None
    assert checked(fnp.int32(1), x)[0].get() == failed("b1 -1.0")
    assert checked(fnp.int32(2), x)[0].get() == "nan generated by primitive: log."


def nested_scans(xs):
    def outer(c, x):
        def inner(c2, y):
            checkify.check(y * x < 6, "prod {} {}", y, x)
            return c2 + y * x, None
        c2, _ = nanofn.lax.scan(inner, c, fnp.arange(3.0))
        return c2, c2
    return nanofn.lax.scan(outer, 0.0, xs)


def test_nested_loops_keep_the_first_error_values():
    err, _ = checkify.checkify(nested_scans)(fnp.arange(5.0))
    assert err.get() == failed("prod 2.0 3.0")


# ------------------------------------------------------------------------ transformations


def test_jit_of_checkify_and_checkify_of_jit():
    def f(x):
        checkify.check(x > 0, "j {}", x)
        return x * 2

    jitted = nanofn.jit(checkify.checkify(f))
    err, out = jitted(fnp.float32(-1.0))
    assert err.get() == failed("j -1.0") and float(out) == -2.0
    err, out = jitted(fnp.float32(3.0))
    assert err.get() is None and float(out) == 6.0
    err, _ = checkify.checkify(nanofn.jit(f))(fnp.float32(-1.0))
    assert err.get() == failed("j -1.0")


def test_vmap_of_checkify_reports_each_failing_element():
    def f(x):
        checkify.check(x > 0, "neg {}", x)
        return x * 2

    err, out = nanofn.vmap(checkify.checkify(f))(fnp.array([1.0, -2.0, 3.0, -4.0]))
    assert err.get() == ("at mapped index 1: " + failed("neg -2.0") + "\n"
                         "at mapped index 3: " + failed("neg -4.0"))
    assert isinstance(err.get_exception(), checkify.BatchedError)
    np.testing.assert_array_equal(np.asarray(out), [2, -4, 6, -8])
    err, _ = nanofn.vmap(checkify.checkify(f))(fnp.array([1.0, 2.0]))
    assert err.get() is None
    # checkify of vmap: one error, the last failing element (as JAX)
    err, _ = checkify.checkify(nanofn.vmap(f))(fnp.array([1.0, -2.0, 3.0, -4.0]))
    assert err.get() == failed("neg -4.0")
    # nested vmap: indices of both axes
    err, _ = nanofn.vmap(nanofn.vmap(checkify.checkify(f)))(fnp.array([[1.0, -1.0], [-2.0, 3.0]]))
    assert err.get() == ("at mapped index 0, 1: " + failed("neg -1.0") + "\n"
                         "at mapped index 1, 0: " + failed("neg -2.0"))
    with pytest.raises(checkify.JaxRuntimeError, match="neg -4.0"):  # reduced: last failing
        checkify.check_error(nanofn.vmap(checkify.checkify(f))(fnp.array([-1.0, -4.0]))[0])


@given(st.lists(st.integers(-6, 6), min_size=1, max_size=5))
def test_vmap_of_checkify_with_loops_matches_per_element(rows):
    xs = fnp.array([[float(r), float(r) + 1.0, 0.0] for r in rows])
    batched, _ = nanofn.jit(nanofn.vmap(checkify.checkify(nested_scans)))(xs)
    exc = batched.get_exception()
    got = {} if exc is None else {i[0]: str(e) for i, e in exc.error_mapping.items()}
    for k in range(len(rows)):
        one, _ = checkify.checkify(nested_scans)(xs[k])
        assert got.get(k) == one.get()


def test_grad_through_checkify_equals_unchecked_grad():
    def f(x):
        def body(c, _):
            checkify.check(c < 100.0, "c big {}", c)
            return fnp.sin(c) * x + c, c
        return nanofn.lax.scan(body, x, None, length=4)[0]

    def plain(x):
        return nanofn.lax.scan(lambda c, _: (fnp.sin(c) * x + c, c), x, None, length=4)[0]

    checked = checkify.checkify(f, errors=checkify.all_checks)
    for x in (0.3, 0.7, 1.5):
        g = nanofn.grad(lambda x: checked(x)[1])(x)
        np.testing.assert_allclose(float(g), float(nanofn.grad(plain)(x)), rtol=1e-6)
        gj = nanofn.jit(nanofn.grad(lambda x: checked(x)[1]))(x)
        np.testing.assert_allclose(float(gj), float(g), rtol=1e-6)


def test_checkify_of_grad():
    def k(x):
        checkify.check(x > 0, "k")
        return fnp.sin(x) * x

    err, g = checkify.checkify(nanofn.grad(k))(-2.0)
    assert err.get() == failed("k")
    np.testing.assert_allclose(float(g), float(nanofn.grad(lambda x: fnp.sin(x) * x)(-2.0)),
                               rtol=1e-6)
    err, _ = checkify.checkify(nanofn.grad(fnp.sqrt), errors=checkify.nan_checks)(-1.0)
    assert err.get() == "nan generated by primitive: sqrt."


def test_custom_jvp_is_checked_and_keeps_its_rule():
    @nanofn.custom_jvp
    def f(x):
        return fnp.sqrt(x)

    f.defjvp(lambda p, t: (f(p[0]), t[0] * 7.0))
    checked = checkify.checkify(f, errors=checkify.nan_checks)
    assert checked(fnp.float32(-1.0))[0].get() == "nan generated by primitive: sqrt."
    assert float(nanofn.grad(lambda x: checked(x)[1])(4.0)) == 7.0


def test_check_error_passes_errors_on():
    def f(x):
        checkify.check(x > 0, "must be positive!")
        return x

    err, _ = nanofn.jit(checkify.checkify(f))(1)
    checkify.check_error(err)
    checkify.check_error(checkify.init_error)
    err, _ = nanofn.jit(checkify.checkify(f))(-1)
    with pytest.raises(checkify.JaxRuntimeError, match="must be positive!"):
        checkify.check_error(err)

    def outer(x):
        inner_err, y = checkify.checkify(fnp.log, errors=checkify.nan_checks)(x)
        checkify.check_error(inner_err)
        return y

    # the outer checkify keeps the categories it enables (as JAX)
    assert checkify.checkify(outer)(fnp.float32(-1.0))[0].get() is None
    assert checkify.checkify(outer, errors=checkify.all_checks)(fnp.float32(-1.0))[0].get() \
        == "nan generated by primitive: log."


def test_error_is_a_pytree_and_init_error_is_empty():
    err, _ = checkify.checkify(positive_log)(fnp.float32(-1.0))
    leaves, tree = nanofn.tree_util.tree_flatten(err)
    again = nanofn.tree_util.tree_unflatten(tree, leaves)
    assert again.get() == err.get()
    assert checkify.init_error.get() is None
    assert checkify.init_error.get_exception() is None
    checkify.init_error.throw()


def test_make_jaxpr_traces_a_check_but_jit_refuses_it():
    def f(x):
        checkify.check(x > 0, "a {}", x)
        return x

    assert "check[" in str(nanofn.make_jaxpr(f)(1.0))  # tracing alone is fine, as in JAX
    assert nanofn.eval_shape(f, 1.0).shape == ()
    jitted = nanofn.jit(f)
    # compiled under checkify (where its jaxpr is replayed), the plan still refuses later
    assert checkify.checkify(jitted)(fnp.float32(-1.0))[0].get() == failed("a -1.0")
    for x in (-1.0, 1.0, 1.0):
        with pytest.raises(ValueError, match="not functionalized"):
            jitted(fnp.float32(x))
