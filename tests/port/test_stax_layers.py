"""Port: the layer cases of JAX's `tests/stax_test.py` (jax-ml/jax repository).

Every stax layer that the other stax ports do not exercise, built, initialised and
applied as `stax_test.py` does (`init_fun(rng, input_shape)` then `apply_fun(params,
inputs, rng=...)`): the transposed convolutions (`ConvTranspose`, `Conv1DTranspose`,
`GeneralConvTranspose`), `GeneralConv` with NHWC/HWIO dimension numbers, `SumPool`,
`BatchNorm` over chosen axes, `Dropout(rate, mode)` in both modes (rate is the *keep*
probability), `FanInConcat`, the elementwise layers (`Elu`, `Exp`, `Gelu`, `LeakyRelu`,
`Selu`, `Sigmoid`, `Softmax`, `Tanh`) and `elementwise` with keyword arguments.
Also the gradient of a scalar loss through a small network of them. Checked against
JAX: output shapes, initial parameters for the same key (tuple params in JAX's order),
outputs and gradients.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, stax):
    rng = jax.random.PRNGKey(0)
    rs = np.random.RandomState(7)
    x_img = jnp.asarray(rs.normal(size=(2, 5, 6, 3)).astype(np.float32))
    x_seq = jnp.asarray(rs.normal(size=(2, 7, 3)).astype(np.float32))
    x_vec = jnp.asarray(rs.normal(size=(4, 6)).astype(np.float32))

    cases = {
        "conv_transpose": (stax.ConvTranspose(4, (3, 3), strides=(2, 1), padding="SAME"),
                           x_img),
        "conv1d_transpose": (stax.Conv1DTranspose(2, (3,), strides=(2,), padding="VALID"),
                             x_seq),
        "general_conv_transpose": (stax.GeneralConvTranspose(
            ("NHWC", "HWIO", "NHWC"), 2, (2, 2), padding="SAME"), x_img),
        "general_conv_nhwc": (stax.GeneralConv(("NHWC", "HWIO", "NHWC"), 4, (2, 3),
                                               strides=(1, 2), padding="SAME",
                                               W_init=jax.nn.initializers.he_normal()),
                              x_img),
        "sum_pool": (stax.SumPool((2, 2), strides=(1, 2), padding="SAME"), x_img),
        "batch_norm": (stax.BatchNorm(axis=(0, 1, 2)), x_img),
        "batch_norm_noscale": (stax.BatchNorm(axis=(0,), center=False, scale=True), x_vec),
        "dense_init": (stax.Dense(3, W_init=jax.nn.initializers.glorot_uniform(),
                                  b_init=jax.nn.initializers.normal(0.5)), x_vec),
        "fan_in_concat": (stax.serial(stax.FanOut(2), stax.parallel(stax.Dense(2), stax.Tanh),
                                      stax.FanInConcat(axis=-1)), x_vec),
        "elu": (stax.Elu, x_vec), "exp": (stax.Exp, x_vec), "gelu": (stax.Gelu, x_vec),
        "leaky_relu": (stax.LeakyRelu, x_vec), "selu": (stax.Selu, x_vec),
        "sigmoid": (stax.Sigmoid, x_vec), "softmax": (stax.Softmax, x_vec),
        "tanh": (stax.Tanh, x_vec),
        "elementwise_kwargs": (stax.elementwise(jax.nn.leaky_relu, negative_slope=0.2), x_vec),
    }
    results = {}
    for name, ((init_fun, apply_fun), x) in cases.items():
        out_shape, params = init_fun(rng, x.shape)
        y = apply_fun(params, x, rng=jax.random.PRNGKey(1))
        results[name] = {"out_shape": jnp.asarray(out_shape), "params": params, "out": y}

    for mode in ("train", "test"):
        init_fun, apply_fun = stax.Dropout(0.7, mode=mode)
        _, params = init_fun(rng, x_vec.shape)
        results[f"dropout_{mode}"] = apply_fun(params, x_vec, rng=jax.random.PRNGKey(3))

    init_fun, net = stax.serial(
        stax.GeneralConv(("NHWC", "HWIO", "NHWC"), 4, (3, 3), padding="SAME"),
        stax.BatchNorm(axis=(0, 1, 2)), stax.Gelu,
        stax.SumPool((2, 2), strides=(2, 2)), stax.Flatten, stax.Dense(3), stax.LogSoftmax)
    _, params = init_fun(jax.random.PRNGKey(5), x_img.shape)
    labels = jnp.asarray([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])

    def loss(p):
        return -jnp.mean(jnp.sum(net(p, x_img) * labels, axis=-1))

    results["net"] = {"loss": loss(params), "grad": jax.grad(loss)(params)}
    return results


def test_stax_layers_match_jax():
    got, _ = check_against_optax("test_stax_layers", program, rtol=2e-4, atol=2e-5)
    kept = got["dropout_train"] != 0
    np.testing.assert_allclose(got["dropout_train"][kept] * 0.7,
                               got["dropout_test"][kept], rtol=1e-6)
