"""Port: a small causal transformer written directly in jax.numpy and trained with optax,
as in the many "transformer from scratch in JAX" programs: `jnp.einsum` attention with a
`jnp.tril` mask through `jax.nn.softmax(where=...)`, layer norm by hand, GELU MLP, learned
positions, `jax.checkpoint` around each block, `vmap`-free batching, integer targets by
`optax.softmax_cross_entropy_with_integer_labels`, and `optax.adamw` with a
`linear_onecycle`-free warmup (`optax.linear_schedule` joined to a cosine decay by
`optax.join_schedules`) behind `optax.clip_by_global_norm`.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    vocab, d, heads, layers, t, batch = 11, 16, 2, 2, 8, 4
    rng = np.random.default_rng(2)
    data = jnp.asarray(rng.integers(0, vocab, size=(batch, t + 1)))

    def init(key):
        keys = iter(jax.random.split(key, 2 + 4 * layers))
        normal = jax.nn.initializers.normal(0.02)
        p = {"embed": normal(next(keys), (vocab, d)), "pos": normal(next(keys), (t, d)),
             "blocks": []}
        for _ in range(layers):
            p["blocks"].append({
                "ln1": jnp.ones(d), "ln2": jnp.ones(d),
                "qkv": normal(next(keys), (d, 3 * d)), "proj": normal(next(keys), (d, d)),
                "up": normal(next(keys), (d, 4 * d)), "down": normal(next(keys), (4 * d, d))})
        return p

    def layer_norm(x, g):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return g * (x - mean) * jax.lax.rsqrt(var + 1e-5)

    def block(p, x):
        h = layer_norm(x, p["ln1"])
        q, k, v = jnp.split(h @ p["qkv"], 3, axis=-1)
        split = lambda z: z.reshape(z.shape[0], t, heads, d // heads)
        q, k, v = split(q), split(k), split(v)
        logits = jnp.einsum("bthd,bshd->bhts", q, k) / (d // heads) ** 0.5
        causal = jnp.tril(jnp.ones((t, t), bool))
        w = jax.nn.softmax(logits, axis=-1, where=causal)
        att = jnp.einsum("bhts,bshd->bthd", w, v).reshape(x.shape)
        x = x + att @ p["proj"]
        h = layer_norm(x, p["ln2"])
        return x + jax.nn.gelu(h @ p["up"]) @ p["down"]

    def logits_fn(params, tokens):
        x = params["embed"][tokens] + params["pos"]
        for p in params["blocks"]:
            x = jax.checkpoint(block)(p, x)
        return x @ params["embed"].T

    def loss(params, batch):
        logits = logits_fn(params, batch[:, :-1])
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch[:, 1:]).mean()

    schedule = optax.join_schedules(
        [optax.linear_schedule(0.0, 3e-3, 4), optax.cosine_decay_schedule(3e-3, 16)], [4])
    opt = optax.chain(optax.clip_by_global_norm(0.5),
                      optax.adamw(schedule, b1=0.9, b2=0.95, weight_decay=0.1))
    params = init(jax.random.key(1))
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        value, grads = jax.value_and_grad(loss)(params, data)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    losses = []
    for _ in range(12):
        params, state, value = step(params, state)
        losses.append(value)
    return {"losses": jnp.stack(losses), "embed": params["embed"],
            "last_block_qkv": params["blocks"][-1]["qkv"],
            "next_token_logits": logits_fn(params, data[:, :-1])[:, -1]}


def test_transformer_matches_jax_and_optax():
    got, _ = check_against_optax("test_optax_transformer", program, rtol=2e-3, atol=2e-4)
    assert got["losses"][-1] < got["losses"][0]
