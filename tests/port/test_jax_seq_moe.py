"""Port: a mixture-of-experts feed-forward layer in the style of the Switch Transformer /
GShard reference code people port to JAX.

A router scores each token; `lax.top_k` picks each token's k experts (and an `argsort`
variant must agree with it); gates are the renormalised softmax weights of the chosen
experts. Dispatch is capacity-limited: a token's position in an expert's buffer is the
`cumsum` of the one-hot assignments, and tokens past the capacity are dropped by a mask.
The experts run batched (an einsum over the dispatch tensor), and the outputs are
combined back to tokens twice: with the dense combine tensor and with
`jax.ops.segment_sum` over (token, slot) pairs. The auxiliary load-balancing loss is the
Switch one (fraction routed times mean router probability). Gradients of a regression
loss plus the auxiliary loss flow to the router and to the experts, eagerly, under
`jit`, and per example under `vmap`.
"""

import numpy as np

from _jax_port import check_against_jax

N_EXPERTS = 4
TOP_K = 2
D_MODEL = 8
D_HIDDEN = 16


def program(jax, jnp, lax):
    key = jax.random.key(42)
    k_router, k_w1, k_w2, k_x, k_y, k_batch = jax.random.split(key, 6)
    params = {
        "router": 0.5 * jax.random.normal(k_router, (D_MODEL, N_EXPERTS)),
        "w1": jax.random.normal(k_w1, (N_EXPERTS, D_MODEL, D_HIDDEN)) / jnp.sqrt(D_MODEL),
        "b1": jnp.zeros((N_EXPERTS, D_HIDDEN)),
        "w2": jax.random.normal(k_w2, (N_EXPERTS, D_HIDDEN, D_MODEL)) / jnp.sqrt(D_HIDDEN),
    }

    def route(router_w, x):
        logits = x @ router_w
        probs = jax.nn.softmax(logits, axis=-1)
        top_p, top_idx = lax.top_k(probs, TOP_K)
        gates = top_p / jnp.sum(top_p, axis=-1, keepdims=True)
        return logits, probs, gates, top_idx

    def route_argsort(router_w, x):
        probs = jax.nn.softmax(x @ router_w, axis=-1)
        order = jnp.argsort(-probs, axis=-1, stable=True)[:, :TOP_K]
        top_p = jnp.take_along_axis(probs, order, axis=-1)
        return top_p / jnp.sum(top_p, axis=-1, keepdims=True), order

    def dispatch_masks(top_idx, gates, capacity):
        n_tokens = top_idx.shape[0]
        # (k, tokens, experts): choice 0 of every token is placed before any choice 1.
        onehot = jax.nn.one_hot(top_idx.T, N_EXPERTS, dtype=jnp.int32)
        flat = onehot.reshape(TOP_K * n_tokens, N_EXPERTS)
        position = (jnp.cumsum(flat, axis=0) - 1) * flat
        keep = (position < capacity) & (flat > 0)
        position = position.reshape(TOP_K, n_tokens, N_EXPERTS)
        keep = keep.reshape(TOP_K, n_tokens, N_EXPERTS)
        slot = jnp.sum(position * keep, axis=-1)          # (k, tokens)
        kept = jnp.any(keep, axis=-1)                      # (k, tokens)
        # dispatch[t, e, c] = 1 if token t sits in slot c of expert e.
        slot_onehot = jax.nn.one_hot(slot, capacity)       # (k, tokens, capacity)
        dispatch = jnp.einsum("kte,ktc->tec", keep.astype(jnp.float32), slot_onehot)
        combine = jnp.einsum("kt,kte,ktc->tec", gates.T * kept, keep.astype(jnp.float32),
                             slot_onehot)
        return dispatch, combine, slot, kept

    def experts(p, expert_in):
        h = jax.nn.gelu(jnp.einsum("ecd,edh->ech", expert_in, p["w1"]) + p["b1"][:, None])
        return jnp.einsum("ech,ehd->ecd", h, p["w2"])

    def moe_layer(p, x, capacity_factor=1.0):
        n_tokens = x.shape[0]
        capacity = int(np.ceil(capacity_factor * TOP_K * n_tokens / N_EXPERTS))
        logits, probs, gates, top_idx = route(p["router"], x)
        dispatch, combine, slot, kept = dispatch_masks(top_idx, gates, capacity)
        expert_in = jnp.einsum("tec,td->ecd", dispatch, x)
        expert_out = experts(p, expert_in)
        y = jnp.einsum("tec,ecd->td", combine, expert_out)
        # Switch load-balancing loss: fraction of first choices per expert times the
        # mean router probability per expert, scaled by the number of experts.
        frac = jnp.mean(jax.nn.one_hot(top_idx[:, 0], N_EXPERTS), axis=0)
        aux = N_EXPERTS * jnp.sum(frac * jnp.mean(probs, axis=0))
        z_loss = jnp.mean(jax.nn.logsumexp(logits, axis=-1) ** 2)
        return y, {"aux": aux, "z": z_loss, "slot": slot, "kept": kept,
                   "expert_out": expert_out, "gates": gates, "top_idx": top_idx}

    def moe_segment_combine(p, x, capacity):
        # The same combine as a segment sum over (token, choice) pairs.
        _, _, gates, top_idx = route(p["router"], x)
        dispatch, _, slot, kept = dispatch_masks(top_idx, gates, capacity)
        expert_out = experts(p, jnp.einsum("tec,td->ecd", dispatch, x))
        n_tokens = x.shape[0]
        picked = expert_out[top_idx.T, slot]               # (k, tokens, d)
        weights = (gates.T * kept)[..., None]
        token_ids = jnp.tile(jnp.arange(n_tokens), TOP_K)
        return jax.ops.segment_sum((weights * picked).reshape(-1, D_MODEL), token_ids,
                                   num_segments=n_tokens)

    def loss_fn(p, x, y, aux_weight=0.01):
        out, stats = moe_layer(p, x)
        return jnp.mean((out - y) ** 2) + aux_weight * stats["aux"] + 1e-3 * stats["z"]

    x = jax.random.normal(k_x, (12, D_MODEL))
    target = jnp.sin(x) @ jnp.ones((D_MODEL, D_MODEL)) / D_MODEL + 0.1 * \
        jax.random.normal(k_y, (12, D_MODEL))

    y, stats = moe_layer(params, x)
    y_jit, _ = jax.jit(moe_layer, static_argnums=2)(params, x, 1.0)
    y_big, stats_big = moe_layer(params, x, capacity_factor=2.0)
    gates_as, idx_as = route_argsort(params["router"], x)
    capacity = int(np.ceil(TOP_K * 12 / N_EXPERTS))
    y_seg = moe_segment_combine(params, x, capacity)

    value, grads = jax.jit(jax.value_and_grad(loss_fn))(params, x, target)
    aux_grad = jax.grad(lambda r: moe_layer({**params, "router": r}, x)[1]["aux"])(
        params["router"])

    # A few SGD steps through the routing decisions.
    @jax.jit
    def sgd_step(p, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        return jax.tree_util.tree_map(lambda a, b: a - 0.2 * b, p, g), loss

    p = params
    losses = []
    for _ in range(5):
        p, loss = sgd_step(p, x, target)
        losses.append(loss)

    # Per-sequence gradients: vmap over a batch of 3 sequences of 8 tokens.
    xb = jax.random.normal(k_batch, (3, 8, D_MODEL))
    yb = jnp.tanh(xb)
    per_seq_loss, per_seq_grad = jax.vmap(jax.value_and_grad(loss_fn),
                                          in_axes=(None, 0, 0))(params, xb, yb)

    return {"y": y, "y_jit": y_jit, "y_capacity2": y_big, "y_segment": y_seg,
            "aux": stats["aux"], "z_loss": stats["z"], "slot": stats["slot"],
            "kept": stats["kept"], "kept_capacity2": stats_big["kept"],
            "gates": stats["gates"], "top_idx": stats["top_idx"],
            "argsort_gates": gates_as, "argsort_idx": idx_as,
            "loss": value, "grads": grads, "aux_grad_router": aux_grad,
            "sgd_losses": jnp.stack(losses), "sgd_params": p,
            "per_seq_loss": per_seq_loss, "per_seq_grad": per_seq_grad}


def test_moe_matches_jax():
    got, _ = check_against_jax("test_jax_seq_moe", program, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(got["y_jit"], got["y"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["y_segment"], got["y"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got["argsort_idx"], got["top_idx"])
    # Capacity 1.0 drops some token choices; capacity 2.0 keeps every one.
    assert not got["kept"].all() and got["kept_capacity2"].all()
    assert got["sgd_losses"][-1] < got["sgd_losses"][0]
