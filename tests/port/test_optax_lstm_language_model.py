"""Port: a character-level LSTM language model trained with optax, as users write one in
plain JAX (the pattern of the "RNNs from scratch in JAX" tutorials).

An embedding table, one LSTM cell written out (fused gate matrix, `jax.nn.sigmoid`,
`jnp.split` into four gates) run over time by `lax.scan`, a softmax output layer and the
next-character cross-entropy from `optax.softmax_cross_entropy_with_integer_labels`
(padding positions, labelled -1, masked out with its `where`), batched over sequences
by `vmap`. The same initial parameters are trained twice, with
`optax.adafactor` and with `optax.lion` (under `optax.chain` with
`optax.clip_by_global_norm`); greedy generation continues a prompt with `lax.scan` and
`jnp.argmax`, and `lax.scan(..., reverse=True)` gives a reversed-time hidden pass.
Data: a short repeating text, so the model can learn it within a few steps.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    lax = jax.lax
    text = "the cat sat on the mat. the dog sat on the log. " * 3
    vocab = sorted(set(text))
    ids = np.array([vocab.index(c) for c in text], np.int32)
    seq_len, n_seq = 16, 6
    starts = np.arange(n_seq) * 11
    inputs = jnp.asarray(np.stack([ids[s:s + seq_len] for s in starts]))
    targets = np.stack([ids[s + 1:s + seq_len + 1] for s in starts])
    targets[-1, 12:] = -1  # the last sequence is shorter: its tail is padding, labelled -1
    targets = jnp.asarray(targets)
    mask = targets >= 0
    v, e, h = len(vocab), 8, 24

    k_emb, k_w, k_out = jax.random.split(jax.random.PRNGKey(42), 3)
    params = {"embed": jax.random.normal(k_emb, (v, e)) * 0.3,
              "lstm": {"w": jax.nn.initializers.glorot_uniform()(k_w, (e + h, 4 * h)),
                       "b": jnp.zeros(4 * h).at[h:2 * h].set(1.0)},  # forget-gate bias 1
              "out": {"w": jax.random.normal(k_out, (h, v)) * 0.1, "b": jnp.zeros(v)}}

    def cell(p, carry, x):
        hprev, cprev = carry
        gates = jnp.concatenate([x, hprev]) @ p["w"] + p["b"]
        i, f, g, o = jnp.split(gates, 4)
        c = jax.nn.sigmoid(f) * cprev + jax.nn.sigmoid(i) * jnp.tanh(g)
        hnew = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (hnew, c), hnew

    def run(params, tokens, reverse=False):
        xs = params["embed"][tokens]
        init = (jnp.zeros(h), jnp.zeros(h))
        _, hs = lax.scan(lambda c, x: cell(params["lstm"], c, x), init, xs, reverse=reverse)
        return hs @ params["out"]["w"] + params["out"]["b"]

    def loss_fn(params):
        logits = jax.vmap(run, (None, 0))(params, inputs)
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets, where=mask)
        return jnp.sum(losses) / jnp.sum(mask)

    def train(opt, steps):
        p = params
        state = opt.init(p)

        @jax.jit
        def step(p, state):
            loss, grads = jax.value_and_grad(loss_fn)(p)
            updates, state = opt.update(grads, state, p)
            return optax.apply_updates(p, updates), state, loss

        losses = []
        for _ in range(steps):
            p, state, loss = step(p, state)
            losses.append(loss)
        return p, jnp.stack(losses)

    p_ada, losses_ada = train(optax.adafactor(0.05), 8)
    p_lion, losses_lion = train(optax.chain(optax.clip_by_global_norm(1.0),
                                            optax.lion(3e-3, b1=0.9, b2=0.99,
                                                       weight_decay=1e-4)), 8)

    def generate(params, prompt, n):
        carry = (jnp.zeros(h), jnp.zeros(h))
        carry, _ = lax.scan(lambda c, t: cell(params["lstm"], c, params["embed"][t]),
                            carry, prompt)

        def gen_step(state, _):
            carry, tok = state
            carry, hs = cell(params["lstm"], carry, params["embed"][tok])
            nxt = jnp.argmax(hs @ params["out"]["w"] + params["out"]["b"])
            return (carry, nxt), nxt
        _, out = lax.scan(gen_step, (carry, prompt[-1]), None, length=n)
        return out

    return {"losses_adafactor": losses_ada, "losses_lion": losses_lion,
            "params_adafactor": p_ada, "params_lion": p_lion,
            "final_loss": loss_fn(p_ada),  # eagerly: the padding's -1 labels stay masked
            "logits_reverse": run(p_ada, inputs[0], reverse=True)[:4],
            "generated": generate(p_ada, inputs[0, :5], 6)}


def test_lstm_language_model_matches_optax():
    got, _ = check_against_optax("test_optax_lstm_language_model", program, rtol=2e-3,
                                 atol=2e-4)
    assert got["losses_adafactor"][-1] < got["losses_adafactor"][0]
    assert got["losses_lion"][-1] < got["losses_lion"][0]
