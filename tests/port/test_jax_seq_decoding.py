"""Port: autoregressive decoding loops for a toy language model, in the style of the
sampling utilities of JAX LM codebases (greedy, top-k, nucleus/top-p, beam search).

The model is a tiny GRU-like recurrent cell over token embeddings with random weights;
token 0 is end-of-sequence (EOS). Each decoder is a `lax.while_loop` that writes the next
token into a fixed-length buffer with `lax.dynamic_update_slice` (reading the previous
one with `lax.dynamic_slice`) and stops when every sequence has finished or the buffer
is full; finished sequences keep emitting padding through `jnp.where` masks. Top-k and
top-p sampling mask logits with `-inf` before `jax.random.categorical`; nucleus sampling
sorts probabilities and scatters the mask back with `jnp.take_along_axis` of the inverse
permutation. Beam search keeps the `lax.top_k` of flattened (beam, token) scores and
gathers the beam histories with `jnp.take_along_axis`.
"""

import numpy as np

from _jax_port import check_against_jax

VOCAB = 11
HIDDEN = 12
MAX_LEN = 10
EOS = 0
PAD = -1


def program(jax, jnp, lax):
    key = jax.random.key(11)
    k_emb, k_wz, k_wh, k_out, k_sample = jax.random.split(key, 5)
    params = {
        "emb": jax.random.normal(k_emb, (VOCAB, HIDDEN)),
        "wz": jax.random.normal(k_wz, (2 * HIDDEN, HIDDEN)) / jnp.sqrt(2 * HIDDEN),
        "wh": jax.random.normal(k_wh, (2 * HIDDEN, HIDDEN)) / jnp.sqrt(2 * HIDDEN),
        "out": 2.0 * jax.random.normal(k_out, (HIDDEN, VOCAB)) / jnp.sqrt(HIDDEN),
    }
    # Make EOS unlikely at first so sequences have some length.
    params["out"] = params["out"].at[:, EOS].add(-0.5)

    def cell(p, h, token):
        x = jnp.concatenate([p["emb"][token], h], axis=-1)
        z = jax.nn.sigmoid(x @ p["wz"])
        h_new = jnp.tanh(x @ p["wh"])
        h = (1.0 - z) * h + z * h_new
        return h, h @ p["out"]

    def mask_top_k(logits, k):
        kth = lax.top_k(logits, k)[0][..., -1:]
        return jnp.where(logits < kth, -jnp.inf, logits)

    def mask_top_p(logits, top_p):
        order = jnp.argsort(-logits, axis=-1)
        sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
        probs = jax.nn.softmax(sorted_logits, axis=-1)
        cum = jnp.cumsum(probs, axis=-1)
        # Keep the smallest prefix whose mass reaches top_p (always the first token).
        remove_sorted = (cum - probs) >= top_p
        inverse = jnp.argsort(order, axis=-1)
        remove = jnp.take_along_axis(remove_sorted, inverse, axis=-1)
        return jnp.where(remove, -jnp.inf, logits)

    def decode(p, prompt_token, key, pick):
        """Sample up to MAX_LEN tokens for a batch of prompts with `pick(logits, key)`."""
        batch = prompt_token.shape[0]
        tokens0 = jnp.full((batch, MAX_LEN), PAD, dtype=jnp.int32)
        tokens0 = lax.dynamic_update_slice(tokens0, prompt_token[:, None], (0, 0))
        logp0 = jnp.zeros(batch)

        def cond(state):
            i, _, tokens, finished, _, _ = state
            return (i < MAX_LEN) & ~jnp.all(finished)

        def body(state):
            i, h, tokens, finished, logp, key = state
            key, sub = jax.random.split(key)
            prev = lax.dynamic_slice(tokens, (0, i - 1), (batch, 1))[:, 0]
            h, logits = cell(p, h, jnp.maximum(prev, 0))
            nxt = pick(logits, sub)
            step_logp = jnp.take_along_axis(jax.nn.log_softmax(logits), nxt[:, None],
                                            axis=-1)[:, 0]
            nxt = jnp.where(finished, PAD, nxt)
            logp = logp + jnp.where(finished, 0.0, step_logp)
            tokens = lax.dynamic_update_slice(tokens, nxt[:, None], (0, i))
            finished = finished | (nxt == EOS)
            return i + 1, h, tokens, finished, logp, key

        state = (jnp.int32(1), jnp.zeros((batch, HIDDEN)), tokens0,
                 jnp.zeros(batch, dtype=bool), logp0, key)
        n, _, tokens, finished, logp, _ = lax.while_loop(cond, body, state)
        return tokens, finished, logp, n

    greedy = lambda logits, key: jnp.argmax(logits, axis=-1)  # noqa: E731
    sample = lambda logits, key: jax.random.categorical(key, logits, axis=-1)  # noqa: E731
    top_k = lambda logits, key: jax.random.categorical(  # noqa: E731
        key, mask_top_k(logits, 3), axis=-1)
    top_p = lambda logits, key: jax.random.categorical(  # noqa: E731
        key, mask_top_p(logits, 0.6), axis=-1)

    # A sampler biased towards EOS, so that the loop stops before the buffer is full.
    eager_eos = lambda logits, key: jax.random.categorical(  # noqa: E731
        key, logits.at[:, EOS].add(3.0), axis=-1)

    prompts = jnp.array([1, 4, 7, 9], dtype=jnp.int32)
    out = {}
    for name, pick in [("greedy", greedy), ("sample", sample), ("top_k", top_k),
                       ("top_p", top_p), ("eager_eos", eager_eos)]:
        run = jax.jit(lambda p, t, k, pick=pick: decode(p, t, k, pick))
        tokens, finished, logp, n = run(params, prompts, k_sample)
        out[name] = {"tokens": tokens, "finished": finished, "logp": logp, "steps": n}

    # The masks themselves.
    demo_logits = jnp.array([[2.0, 1.0, 0.5, -1.0, 3.0, 0.0],
                             [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    out["mask_top_k"] = mask_top_k(demo_logits, 2)
    out["mask_top_p"] = mask_top_p(demo_logits, 0.5)
    out["top_p_probs"] = jax.nn.softmax(mask_top_p(demo_logits, 0.8), axis=-1)

    # Beam search for one prompt.
    def beam_search(p, prompt, beam=3, length_penalty=0.6):
        tokens = jnp.full((beam, MAX_LEN), PAD, dtype=jnp.int32).at[:, 0].set(prompt)
        # Only the first beam is live at the start.
        scores = jnp.array([0.0] + [-jnp.inf] * (beam - 1))
        h = jnp.zeros((beam, HIDDEN))
        finished = jnp.zeros(beam, dtype=bool)
        lengths = jnp.ones(beam, dtype=jnp.int32)

        def body(i, state):
            tokens, scores, h, finished, lengths = state
            prev = lax.dynamic_slice_in_dim(tokens, i - 1, 1, axis=1)[:, 0]
            h_new, logits = cell(p, h, jnp.maximum(prev, 0))
            logp = jax.nn.log_softmax(logits)
            # A finished beam can only extend with PAD at no cost: put it in column EOS.
            frozen = jnp.full((VOCAB,), -jnp.inf).at[EOS].set(0.0)
            logp = jnp.where(finished[:, None], frozen, logp)
            cand = (scores[:, None] + logp).reshape(-1)
            best, flat_idx = lax.top_k(cand, beam)
            src, tok = flat_idx // VOCAB, flat_idx % VOCAB
            tokens = jnp.take_along_axis(tokens, src[:, None], axis=0)
            was_finished = finished[src]
            tok_written = jnp.where(was_finished, PAD, tok)
            tokens = lax.dynamic_update_slice(tokens, tok_written[:, None], (0, i))
            h = jnp.take_along_axis(h_new, src[:, None], axis=0)
            lengths = jnp.where(was_finished, lengths[src], lengths[src] + 1)
            finished = was_finished | (tok == EOS)
            return tokens, best, h, finished, lengths

        tokens, scores, h, finished, lengths = lax.fori_loop(
            1, MAX_LEN, body, (tokens, scores, h, finished, lengths))
        normalised = scores / (lengths.astype(jnp.float32) ** length_penalty)
        order = jnp.argsort(-normalised)
        return tokens[order], normalised[order], scores[order]

    beams = jax.jit(beam_search, static_argnames=("beam",))(params, jnp.int32(4), beam=3)
    out["beam"] = {"tokens": beams[0], "normalised": beams[1], "scores": beams[2]}
    out["beam_vmap"] = jax.vmap(lambda t: beam_search(params, t, beam=2)[1])(prompts)

    # Teacher-forced log-likelihood of the greedy sequences, and its gradient.
    def sequence_logp(p, tokens):
        def step(h, pair):
            prev, nxt = pair
            h, logits = cell(p, h, jnp.maximum(prev, 0))
            lp = jax.nn.log_softmax(logits)[jnp.maximum(nxt, 0)]
            return h, jnp.where(nxt == PAD, 0.0, lp)
        _, lps = lax.scan(step, jnp.zeros(HIDDEN), (tokens[:-1], tokens[1:]))
        return jnp.sum(lps)

    greedy_tokens = out["greedy"]["tokens"]
    out["teacher_logp"] = jax.vmap(sequence_logp, in_axes=(None, 0))(params, greedy_tokens)
    out["teacher_grad_out"] = jax.grad(
        lambda p: jnp.sum(jax.vmap(sequence_logp, in_axes=(None, 0))(p, greedy_tokens))
    )(params)["out"]
    return out


def test_decoding_matches_jax():
    got, _ = check_against_jax("test_jax_seq_decoding", program, rtol=1e-4, atol=1e-5)
    # The teacher-forced likelihood of greedy output equals the decoder's own sum.
    np.testing.assert_allclose(got["teacher_logp"], got["greedy/logp"], rtol=1e-5,
                               atol=1e-5)
    # Top-k keeps exactly k finite logits per row; top-p keeps a prefix whose mass >= p.
    assert (np.isfinite(got["mask_top_k"]).sum(-1) == 2).all()
    assert np.all(got["top_p_probs"].max(-1) > 0)
    assert got["eager_eos/steps"] < 10 and got["eager_eos/finished"].all()
    # Finished rows are padded after their EOS.
    for row in got["sample/tokens"]:
        if (row == 0).any():
            assert (row[np.argmax(row == 0) + 1:] == -1).all()
