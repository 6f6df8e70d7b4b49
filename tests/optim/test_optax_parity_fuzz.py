"""Cases where nanofn.optim once disagreed with optax, found by running both on the same
programs; each test pins the optax result with values worked out by hand.

* Half precision: the scalar factors of a float16 leaf (Adam-style bias corrections
  ``1 - b**t``, RAdam's rectification ``r_t``) are computed in float32 and rounded once,
  as optax does. Computed in float16 itself, ``1 - 0.999**1`` came out as ``0.000977``
  (``0.999`` rounds to ``0.99902``), 2% off, and Adam's first step was ``0.0986``, not
  ``lr = 0.1``.
  The same holds for ``contrib.momo_adam``.
* ``poly_loss_cross_entropy`` takes optax's ``where``.
* ``tree.unwrap_random_key_data`` names its argument ``input_tree``, as optax does.
"""

import math

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp
from nanofn import optim
from nanofn.optim import tree as otree

F16 = jnp.float16


def _f16(values):
    return jnp.asarray(np.asarray(values, dtype=np.float16))


# --- float16 leaves: bias corrections in float32 --------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: optim.adam(0.1),
    lambda: optim.adamw(0.1, weight_decay=0.0),
    lambda: optim.amsgrad(0.1),
], ids=["adam", "adamw", "amsgrad"])
def test_first_adam_like_step_on_float16_is_lr_times_sign(make):
    # step 1: m_hat = g and v_hat = g^2 exactly, so the update is -lr * g / |g|
    g = _f16([1.5327, -0.5, 2.0])
    tx = make()
    params = jnp.zeros(3, dtype=F16)
    updates, _ = tx.update(g, tx.init(params), params)
    assert updates.dtype == F16
    np.testing.assert_allclose(np.asarray(updates, np.float64), [-0.1, 0.1, -0.1], rtol=1e-3)


def test_amsgrad_float16_state_keeps_the_debiased_second_moment():
    # nu_max after one step is nu / (1 - b2) = g^2, not g^2 * 0.001 / 0.000977
    g = _f16([1.5327, -0.5])
    tx = optim.amsgrad(0.1)
    params = jnp.zeros(2, dtype=F16)
    _, state = tx.update(g, tx.init(params), params)
    nu_max = state[0].nu_max
    np.testing.assert_allclose(np.asarray(nu_max, np.float64), [1.5327 ** 2, 0.25], rtol=2e-3)


def test_ema_debiased_float16_first_step_is_the_update():
    # debiased EMA after one step: (1 - d) g / (1 - d) = g
    g = _f16([1.5327, -0.75])
    tx = optim.ema(0.999)
    out, _ = tx.update(g, tx.init(g))
    np.testing.assert_allclose(np.asarray(out, np.float64), [1.5327, -0.75], rtol=1e-3)


def test_scale_by_rms_bias_corrected_float16_first_step():
    # bias-corrected RMS after one step: nu_hat = g^2, update = g / (|g| + eps) = sign(g)
    g = _f16([3.0, -0.25])
    tx = optim.scale_by_rms(decay=0.999, bias_correction=True, eps=1e-8)
    out, _ = tx.update(g, tx.init(g))
    np.testing.assert_allclose(np.asarray(out, np.float64), [1.0, -1.0], rtol=1e-3)


def test_tree_bias_correction_float16():
    out = otree.bias_correction({"a": _f16([0.001, 0.002])}, 0.999, jnp.asarray(1))
    assert out["a"].dtype == F16
    np.testing.assert_allclose(np.asarray(out["a"], np.float64), [1.0, 2.0], rtol=1e-3)


def test_radam_float16_rectification_matches_the_exact_formula():
    # a constant gradient keeps m_hat = g and v_hat = g^2, so the update is r_t itself
    # once rho_t >= 5 (with b2 = 0.9: from step 6 on)
    b2 = 0.9
    tx = optim.scale_by_radam(b2=b2, eps=0.0)
    params = jnp.zeros(1, dtype=F16)
    state = tx.init(params)
    rho_inf = 2 / (1 - b2) - 1
    for t in range(1, 9):
        u, state = tx.update(jnp.ones(1, dtype=F16), state, params)
        rho = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
        if rho < 5:
            continue
        r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        np.testing.assert_allclose(float(u[0]), r, rtol=1e-3)


def test_float64_leaves_keep_float64_bias_corrections():
    # the widening never narrows: 1 - (1 - 1e-12)**1 is 1e-12 only in float64
    g = jnp.asarray(np.array([2.0], dtype=np.float64))
    tx = optim.scale_by_adam(b1=0.0, b2=1 - 1e-12, eps=0.0)
    out, _ = tx.update(g, tx.init(g))
    assert out.dtype == np.float64
    np.testing.assert_allclose(np.asarray(out), [1.0], rtol=1e-6)


# --- losses and tree helpers ----------------------------------------------------------------


def test_poly_loss_cross_entropy_where():
    # the masked third class drops out: the two others give log 2 + 2 * (1 - 1/2)
    logits = jnp.array([[0.0, 0.0, 5.0], [1.0, 2.0, 3.0]])
    labels = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    where = jnp.array([[True, True, False], [True, True, True]])
    loss = optim.poly_loss_cross_entropy(logits, labels, where=where)
    p3 = math.exp(3) / (math.exp(1) + math.exp(2) + math.exp(3))
    np.testing.assert_allclose(np.asarray(loss, np.float64),
                               [math.log(2) + 1.0, -math.log(p3) + 2 * (1 - p3)], rtol=1e-5)
    # the same through optim.losses, with epsilon and no mask for comparison
    unmasked = optim.losses.poly_loss_cross_entropy(logits[:1, :2], labels[:1, :2], epsilon=1.0)
    np.testing.assert_allclose(np.asarray(unmasked, np.float64), [math.log(2) + 0.5], rtol=1e-5)


def test_poly_loss_cross_entropy_where_gradient_skips_masked_classes():
    logits = jnp.array([0.3, -0.2, 4.0])
    labels = jnp.array([1.0, 0.0, 0.0])
    where = jnp.array([True, True, False])
    grad = nanofn.grad(lambda x: optim.poly_loss_cross_entropy(x, labels, where=where))(logits)
    # over the two kept classes: d/dx [-log p0 + 2 (1 - p0)] = -(1 + 2 p0) dp0/dx / p0
    p0 = 1 / (1 + math.exp(-0.5))
    d0 = -(1 + 2 * p0) * (1 - p0)
    np.testing.assert_allclose(np.asarray(grad, np.float64), [d0, -d0, 0.0], rtol=1e-5, atol=1e-7)


def test_unwrap_random_key_data_takes_input_tree_keyword():
    out = otree.unwrap_random_key_data(input_tree={"x": jnp.ones(2)})
    np.testing.assert_array_equal(np.asarray(out["x"]), [1.0, 1.0])
    assert optim.tree_utils.tree_unwrap_random_key_data(input_tree=(1.0,)) == (1.0,)


def test_momo_adam_float16_first_step_is_lr_times_sign():
    # at zero params the Polyak cap (about 1 / sum|g| here) exceeds the learning rate, so
    # the first step is -lr * m_hat / sqrt(v_hat) = -lr * sign(g), in float16 too
    g = _f16([1.5327, -0.5])
    params = jnp.zeros(2, dtype=F16)
    tx = optim.contrib.momo_adam(1e-2)
    u, _ = tx.update(g, tx.init(params), params, value=jnp.asarray(1.0, dtype=F16))
    assert u.dtype == F16
    np.testing.assert_allclose(np.asarray(u, np.float64), [-1e-2, 1e-2], rtol=1e-3)
