"""Port: a graph neural network trained with optax, as users write message passing in JAX
(in the pattern of jraph's GCN, written out with `jax.ops.segment_sum` over edge lists):
node features gathered along edges, messages summed into their receivers and normalised
by degree, two layers and a graph readout by `segment_sum` over a batch of graphs; trained
for a few steps with `optax.chain(clip_by_global_norm, adamw)` under a
`warmup_cosine_decay_schedule`, with `optax.masked` weight decay on the kernels only.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    rng = np.random.default_rng(5)
    n_nodes, n_graphs, feat = 18, 3, 4
    graph_of = np.repeat(np.arange(n_graphs), n_nodes // n_graphs)
    senders, receivers = [], []
    for g in range(n_graphs):
        nodes = np.where(graph_of == g)[0]
        for _ in range(10):
            a, b = rng.choice(nodes, 2, replace=False)
            senders += [a, b]
            receivers += [b, a]
    senders, receivers = jnp.array(senders), jnp.array(receivers)
    x = jnp.asarray(rng.normal(size=(n_nodes, feat)), jnp.float32)
    y = jnp.asarray([0.5, -1.0, 2.0], jnp.float32)
    graph_of = jnp.asarray(graph_of)

    def init(key):
        k1, k2, k3 = jax.random.split(key, 3)
        glorot = jax.nn.initializers.glorot_normal()
        return {"l1": {"w": glorot(k1, (feat, 8)), "b": jnp.zeros(8)},
                "l2": {"w": glorot(k2, (8, 8)), "b": jnp.zeros(8)},
                "out": {"w": glorot(k3, (8, 1)), "b": jnp.zeros(1)}}

    def gcn_layer(p, h):
        deg = jax.ops.segment_sum(jnp.ones_like(receivers, jnp.float32), receivers, n_nodes)
        messages = h[senders] / jnp.sqrt(jnp.maximum(deg[senders], 1.0))[:, None]
        agg = jax.ops.segment_sum(messages, receivers, num_segments=n_nodes)
        agg = agg / jnp.sqrt(jnp.maximum(deg, 1.0))[:, None]
        return jax.nn.relu((agg + h) @ p["w"] + p["b"])

    def predict(params, x):
        h = gcn_layer(params["l1"], x)
        h = gcn_layer(params["l2"], h)
        pooled = jax.ops.segment_sum(h, graph_of, num_segments=n_graphs)
        pooled = pooled / jax.ops.segment_sum(jnp.ones(n_nodes), graph_of, n_graphs)[:, None]
        return (pooled @ params["out"]["w"] + params["out"]["b"])[:, 0]

    def loss(params):
        return jnp.mean((predict(params, x) - y) ** 2)

    schedule = optax.warmup_cosine_decay_schedule(0.0, 0.05, 3, 20, end_value=0.005)
    mask = jax.tree.map(lambda p: p.ndim == 2, init(jax.random.key(0)))
    opt = optax.chain(optax.clip_by_global_norm(1.0),
                      optax.masked(optax.add_decayed_weights(1e-2), mask),
                      optax.scale_by_adam(), optax.scale_by_learning_rate(schedule))
    params = init(jax.random.key(0))
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value, optax.global_norm(grads)

    losses, norms = [], []
    for _ in range(15):
        params, state, value, norm = step(params, state)
        losses.append(value)
        norms.append(norm)
    return {"losses": jnp.stack(losses), "grad_norms": jnp.stack(norms), "params": params,
            "pred": predict(params, x), "lr": jnp.stack([schedule(i) for i in range(0, 20, 4)])}


def test_gnn_matches_jax_and_optax():
    got, _ = check_against_optax("test_optax_gnn", program, rtol=2e-3, atol=2e-4)
    assert got["losses"][-1] < got["losses"][0]
