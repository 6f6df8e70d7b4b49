"""Port: a RealNVP normalizing flow fitted by maximum likelihood, as users write one in
plain JAX (in the pattern of the "normalizing flows in JAX" tutorials).

Two-dimensional data (a noisy ring sampled with `jax.random`) is fitted by four affine
coupling layers with alternating masks; each coupling's scale and shift come from a small
tanh MLP, and the log-determinant is the sum of the log-scales (no `slogdet`). The
log-likelihood is the standard-normal log-density (`jax.scipy.stats.norm.logpdf`) of the
pushed-forward points plus the log-determinants. Parameters are fitted by `jit`ted
`value_and_grad` with a hand-written Adam over `jax.tree.map`; samples are drawn by
running the inverse flow on `jax.random.normal` noise, and the flow's Jacobian
determinant is checked against `jax.jacfwd` under `vmap`.
"""

from _jax_port import check_against_jax


def program(jax, jnp, jsp):
    key = jax.random.PRNGKey(3)
    k_data, k_noise, k_init, k_sample = jax.random.split(key, 4)
    angle = jax.random.uniform(k_data, (128,), minval=0.0, maxval=2 * 3.14159265)
    radius = 2.0 + 0.2 * jax.random.normal(k_noise, (128,))
    data = jnp.stack([radius * jnp.cos(angle), radius * jnp.sin(angle)], axis=1)

    masks = [jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0])] * 2

    def init_mlp(key, sizes):
        params = []
        for k, (m, n) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
            params.append({"w": jax.random.normal(k, (m, n)) * (0.5 / jnp.sqrt(m)),
                           "b": jnp.zeros(n)})
        return params

    def mlp(params, x):
        for layer in params[:-1]:
            x = jnp.tanh(x @ layer["w"] + layer["b"])
        return x @ params[-1]["w"] + params[-1]["b"]

    params = [{"s": init_mlp(k1, [2, 16, 2]), "t": init_mlp(k2, [2, 16, 2])}
              for k1, k2 in jax.random.split(k_init, (4, 2))]

    def forward(params, x):
        """data -> latent, with the log-determinant of the map."""
        logdet = jnp.zeros(x.shape[:-1])
        for p, m in zip(params, masks):
            xm = x * m
            s = jnp.tanh(mlp(p["s"], xm)) * (1 - m)
            t = mlp(p["t"], xm) * (1 - m)
            x = xm + (1 - m) * (x * jnp.exp(s) + t)
            logdet = logdet + jnp.sum(s, axis=-1)
        return x, logdet

    def inverse(params, z):
        for p, m in reversed(list(zip(params, masks))):
            zm = z * m
            s = jnp.tanh(mlp(p["s"], zm)) * (1 - m)
            t = mlp(p["t"], zm) * (1 - m)
            z = zm + (1 - m) * (z - t) * jnp.exp(-s)
        return z

    def log_prob(params, x):
        z, logdet = forward(params, x)
        return jnp.sum(jsp.stats.norm.logpdf(z), axis=-1) + logdet

    def loss(params, x):
        return -jnp.mean(log_prob(params, x))

    @jax.jit
    def step(params, m, v, t):
        value, grads = jax.value_and_grad(loss)(params, data)
        m = jax.tree.map(lambda a, g: 0.9 * a + 0.1 * g, m, grads)
        v = jax.tree.map(lambda a, g: 0.999 * a + 0.001 * g * g, v, grads)
        mhat = jax.tree.map(lambda a: a / (1 - 0.9 ** t), m)
        vhat = jax.tree.map(lambda a: a / (1 - 0.999 ** t), v)
        params = jax.tree.map(lambda p, a, b: p - 0.02 * a / (jnp.sqrt(b) + 1e-8),
                              params, mhat, vhat)
        return params, m, v, value

    m = jax.tree.map(jnp.zeros_like, params)
    v = jax.tree.map(jnp.zeros_like, params)
    losses = []
    for t in range(1, 31):
        params, m, v, value = step(params, m, v, jnp.float32(t))
        losses.append(value)

    z = jax.random.normal(k_sample, (6, 2))
    samples = inverse(params, z)
    roundtrip, _ = forward(params, samples)
    _, logdet = forward(params, data[:5])
    jac = jax.vmap(jax.jacfwd(lambda x: forward(params, x)[0]))(data[:5])
    return {"data": data, "losses": jnp.stack(losses), "params": params,
            "samples": samples, "roundtrip": roundtrip, "logdet": logdet,
            "jac_logdet": jnp.log(jnp.abs(jnp.linalg.det(jac))),
            "log_prob": log_prob(params, data[:8])}


def test_realnvp_flow_matches_jax():
    got, _ = check_against_jax("test_jax_realnvp_flow", program, rtol=2e-3, atol=2e-4)
    assert got["losses"][-1] < got["losses"][0]
    import numpy as np
    np.testing.assert_allclose(got["jac_logdet"], got["logdet"], rtol=1e-3, atol=1e-4)
