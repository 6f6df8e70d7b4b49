"""Port: a small U-Net for binary segmentation written directly on `jax.lax`, trained a
few steps with optax, as users write one without a layer library.

The encoder uses `lax.conv_general_dilated` in both layouts: NCHW/OIHW for the stem
(explicit padding) and NHWC/HWIO for the rest (padding "SAME" and "VALID", a strided
convolution, a dilated one through `rhs_dilation`). Down-sampling is a max-pool and an
average-pool by `lax.reduce_window`; the decoder up-samples with `lax.conv_transpose`
(stride 2) and joins the skip connections with `jnp.concatenate`. Batch norm is written
by hand: batch statistics in training (the running averages returned as `has_aux`),
running statistics in evaluation. The data are synthetic discs on noise; the loss is
pixelwise sigmoid cross-entropy plus a soft Dice term, optimised by
`optax.chain(clip_by_global_norm, adamw)` under `jit`.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, lax, optax):
    n, size = 6, 16
    key = jax.random.PRNGKey(3)
    k_data, k_noise, k_init = jax.random.split(key, 3)
    centres = jax.random.uniform(k_data, (n, 2), minval=4.0, maxval=12.0)
    radii = jnp.linspace(2.5, 4.5, n)
    yy, xx = jnp.meshgrid(jnp.arange(size, dtype=jnp.float32),
                          jnp.arange(size, dtype=jnp.float32), indexing="ij")
    dist2 = (yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2
    masks = (dist2 < radii[:, None, None] ** 2).astype(jnp.float32)
    images_nchw = (masks + 0.4 * jax.random.normal(k_noise, masks.shape))[:, None]

    def he(k, shape, fan_in):
        return jax.random.normal(k, shape) * jnp.sqrt(2.0 / fan_in)

    ks = jax.random.split(k_init, 8)
    c = 4
    params = {
        "stem": he(ks[0], (c, 1, 3, 3), 9),                 # OIHW
        "enc1": he(ks[1], (3, 3, c, c), 9 * c),             # HWIO, SAME
        "enc2": he(ks[2], (3, 3, c, 2 * c), 9 * c),         # dilated
        "mid": he(ks[3], (3, 3, 2 * c, 2 * c), 18 * c),     # VALID after padding
        "up1": he(ks[4], (2, 2, 2 * c, 2 * c), 8 * c),      # conv_transpose
        "dec1": he(ks[5], (3, 3, 4 * c, 2 * c), 36 * c),
        "up2": he(ks[6], (2, 2, 2 * c, c), 8 * c),
        "head": he(ks[7], (1, 1, 2 * c, 1), 2 * c),
        "head_b": jnp.zeros((1,)),
    }
    bn_names = {"stem": c, "enc1": c, "enc2": 2 * c, "mid": 2 * c, "dec1": 2 * c}
    for name, ch in bn_names.items():
        params["bn_" + name] = {"scale": jnp.ones(ch), "bias": jnp.zeros(ch)}
    stats = {name: {"mean": jnp.zeros(ch), "var": jnp.ones(ch)}
             for name, ch in bn_names.items()}

    nhwc = ("NHWC", "HWIO", "NHWC")

    def batchnorm(p, s, x, axes, train):
        shape = [1] * x.ndim
        ch_axis = next(i for i in range(x.ndim) if i not in axes)
        shape[ch_axis] = -1
        if train:
            mean = jnp.mean(x, axis=axes)
            var = jnp.mean((x - mean.reshape(shape)) ** 2, axis=axes)
            s = {"mean": 0.8 * s["mean"] + 0.2 * mean,
                 "var": 0.8 * s["var"] + 0.2 * var}
        else:
            mean, var = s["mean"], s["var"]
        y = (x - mean.reshape(shape)) * lax.rsqrt(var.reshape(shape) + 1e-5)
        return y * p["scale"].reshape(shape) + p["bias"].reshape(shape), s

    def max_pool(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

    def avg_pool(x):
        summed = lax.reduce_window(x, 0.0, lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        return summed / 4.0

    def apply(params, stats, x_nchw, train):
        new = {}
        # Stem in NCHW with explicit padding, then to NHWC.
        h = lax.conv_general_dilated(x_nchw, params["stem"], (1, 1), ((1, 1), (1, 1)),
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"))
        h, new["stem"] = batchnorm(params["bn_stem"], stats["stem"], h, (0, 2, 3), train)
        h = jnp.transpose(jax.nn.relu(h), (0, 2, 3, 1))                   # (n,16,16,c)
        h = lax.conv_general_dilated(h, params["enc1"], (1, 1), "SAME", dimension_numbers=nhwc)
        h, new["enc1"] = batchnorm(params["bn_enc1"], stats["enc1"], h, (0, 1, 2), train)
        skip1 = jax.nn.relu(h)                                             # (n,16,16,c)
        h = max_pool(skip1)                                                # (n,8,8,c)
        h = lax.conv_general_dilated(h, params["enc2"], (1, 1), "SAME",
                                     rhs_dilation=(2, 2), dimension_numbers=nhwc)
        h, new["enc2"] = batchnorm(params["bn_enc2"], stats["enc2"], h, (0, 1, 2), train)
        skip2 = jax.nn.gelu(h)                                             # (n,8,8,2c)
        h = avg_pool(skip2)                                                # (n,4,4,2c)
        h = jnp.pad(h, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
        h = lax.conv_general_dilated(h, params["mid"], (1, 1), "VALID", dimension_numbers=nhwc)
        h, new["mid"] = batchnorm(params["bn_mid"], stats["mid"], h, (0, 1, 2), train)
        h = jax.nn.relu(h)                                                 # (n,4,4,2c)
        h = lax.conv_transpose(h, params["up1"], (2, 2), "SAME", dimension_numbers=nhwc)
        h = jnp.concatenate([h, skip2], axis=-1)                           # (n,8,8,4c)
        h = lax.conv_general_dilated(h, params["dec1"], (1, 1), "SAME", dimension_numbers=nhwc)
        h, new["dec1"] = batchnorm(params["bn_dec1"], stats["dec1"], h, (0, 1, 2), train)
        h = jax.nn.relu(h)
        h = lax.conv_transpose(h, params["up2"], (2, 2), "VALID", dimension_numbers=nhwc)
        h = jnp.concatenate([h, skip1], axis=-1)                           # (n,16,16,2c)
        logits = lax.conv_general_dilated(h, params["head"], (1, 1), "VALID",
                                          dimension_numbers=nhwc) + params["head_b"]
        return logits[..., 0], (new if train else stats)

    def loss_fn(params, stats, x, y):
        logits, new_stats = apply(params, stats, x, True)
        bce = jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y))
        p = jax.nn.sigmoid(logits)
        dice = 1.0 - (2.0 * jnp.sum(p * y) + 1.0) / (jnp.sum(p) + jnp.sum(y) + 1.0)
        return bce + 0.5 * dice, new_stats

    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(2e-2, weight_decay=1e-3))
    opt_state = opt.init(params)

    @jax.jit
    def step(params, stats, opt_state):
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, stats, images_nchw, masks)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state, loss

    first_grads = jax.grad(lambda p: loss_fn(p, stats, images_nchw, masks)[0])(params)
    losses = []
    for _ in range(6):
        params, stats, opt_state, loss = step(params, stats, opt_state)
        losses.append(loss)

    eval_logits, _ = jax.jit(apply, static_argnums=3)(params, stats, images_nchw, False)
    pred = (eval_logits > 0).astype(jnp.int32)
    iou = jnp.sum(pred * masks) / jnp.sum(jnp.maximum(pred, masks))

    # Layer variants users reach for next: a depthwise convolution (feature groups), a
    # transposed convolution as the gradient of a strided one (transpose_kernel=True),
    # and a padded, strided 3x3 max-pool.
    x = jnp.transpose(images_nchw[:2], (0, 2, 3, 1)) * jnp.ones((1, 1, 1, 3))
    w_dw = jax.random.normal(ks[0], (3, 3, 1, 3))
    depthwise = lax.conv_general_dilated(x, w_dw, (1, 1), "SAME", dimension_numbers=nhwc,
                                         feature_group_count=3)
    w_s = jax.random.normal(ks[1], (3, 3, 3, 2))
    down = lambda v: lax.conv_general_dilated(v, w_s, (2, 2), "SAME", dimension_numbers=nhwc)
    ct = jnp.ones((2, 8, 8, 2))
    vjp_up = jax.vjp(down, x)[1](ct)[0]
    tk_up = lax.conv_transpose(ct, w_s, (2, 2), "SAME", dimension_numbers=nhwc,
                               transpose_kernel=True)
    pool3 = lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                              ((0, 0), (1, 1), (1, 1), (0, 0)))
    return {"losses": jnp.stack(losses), "first_grads": first_grads,
            "stats": stats, "eval_logits": eval_logits, "iou": iou,
            "masks": masks, "depthwise": depthwise, "vjp_up": vjp_up, "tk_up": tk_up,
            "pool3": pool3}


def test_unet_matches_optax():
    got, _ = check_against_optax("test_optax_vis_unet", program, rtol=2e-3, atol=2e-4)
    assert got["losses"][-1] < got["losses"][0]
    np.testing.assert_allclose(got["tk_up"], got["vjp_up"], rtol=1e-4, atol=1e-5)
