"""Port: a small 2-D convnet written directly on `jax.lax`, trained with optax's Nesterov
SGD, as users write one without a layer library.

Two 3x3 convolutions through `lax.conv_general_dilated` (NHWC/HWIO dimension numbers,
SAME padding, the second with stride 2 and `rhs_dilation`), batch normalisation by hand
(batch statistics in training, running averages carried through the step as state, as
`has_aux` output of `value_and_grad`), ReLU, a max-pool by `lax.reduce_window(lax.max)`
and a global average pool, then a dense softmax head. Trained on synthetic 8x8 images
(horizontal vs vertical stripes plus noise) with `optax.sgd(0.05, momentum=0.9,
nesterov=True)` chained after `optax.clip_by_global_norm`; evaluation uses the running
statistics.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    lax = jax.lax
    rs = np.random.RandomState(2)
    n = 32
    labels = rs.randint(0, 2, size=n)
    stripes = np.zeros((n, 8, 8), np.float32)
    for i, lab in enumerate(labels):
        phase = rs.randint(0, 2)
        if lab == 0:
            stripes[i, phase::2, :] = 1.0
        else:
            stripes[i, :, phase::2] = 1.0
    images = jnp.asarray((stripes + 0.3 * rs.normal(size=stripes.shape))[..., None],
                         jnp.float32)
    labels = jnp.asarray(labels)

    key = jax.random.PRNGKey(0)
    k1, k2, k3 = jax.random.split(key, 3)
    he = jax.nn.initializers.he_normal()
    params = {"conv1": he(k1, (3, 3, 1, 8)), "bn1": {"scale": jnp.ones(8), "bias": jnp.zeros(8)},
              "conv2": he(k2, (3, 3, 8, 8)), "bn2": {"scale": jnp.ones(8), "bias": jnp.zeros(8)},
              "dense": {"w": jax.nn.initializers.lecun_normal()(k3, (8, 2)), "b": jnp.zeros(2)}}
    stats = {"bn1": {"mean": jnp.zeros(8), "var": jnp.ones(8)},
             "bn2": {"mean": jnp.zeros(8), "var": jnp.ones(8)}}

    def conv(x, w, stride=1, dilation=1):
        return lax.conv_general_dilated(x, w, (stride, stride), "SAME",
                                        rhs_dilation=(dilation, dilation),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def batchnorm(p, s, x, train):
        if train:
            mean = jnp.mean(x, axis=(0, 1, 2))
            var = jnp.var(x, axis=(0, 1, 2))
            s = {"mean": 0.9 * s["mean"] + 0.1 * mean, "var": 0.9 * s["var"] + 0.1 * var}
        else:
            mean, var = s["mean"], s["var"]
        y = (x - mean) * lax.rsqrt(var + 1e-5)
        return y * p["scale"] + p["bias"], s

    def apply(params, stats, x, train):
        h = conv(x, params["conv1"])
        h, s1 = batchnorm(params["bn1"], stats["bn1"], h, train)
        h = jax.nn.relu(h)
        h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 1, 1, 1), "SAME")
        h = conv(h, params["conv2"], stride=2, dilation=2)
        h, s2 = batchnorm(params["bn2"], stats["bn2"], h, train)
        h = jax.nn.relu(h)
        h = jnp.mean(h, axis=(1, 2))
        return h @ params["dense"]["w"] + params["dense"]["b"], {"bn1": s1, "bn2": s2}

    def loss_fn(params, stats, x, y):
        logits, stats = apply(params, stats, x, True)
        loss = optax.softmax_cross_entropy(logits, jax.nn.one_hot(y, 2)).mean()
        return loss, stats

    opt = optax.chain(optax.clip_by_global_norm(5.0),
                      optax.sgd(0.05, momentum=0.9, nesterov=True))
    opt_state = opt.init(params)

    @jax.jit
    def step(params, stats, opt_state, x, y):
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state, loss

    losses = []
    for i in range(10):
        batch = slice((i % 2) * 16, (i % 2) * 16 + 16)
        params, stats, opt_state, loss = step(params, stats, opt_state, images[batch],
                                              labels[batch])
        losses.append(loss)
    logits, _ = apply(params, stats, images, False)
    return {"losses": jnp.stack(losses), "params": params, "stats": stats,
            "eval_logits": logits, "momentum": opt_state[1][0].trace}


def test_convnet_batchnorm_matches_optax():
    got, _ = check_against_optax("test_optax_convnet_batchnorm", program, rtol=2e-3,
                                 atol=2e-4)
    assert got["losses"][-1] < got["losses"][0]
