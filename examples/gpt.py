"""Train a small byte-level GPT on Python's standard-library docstrings (shipped with nanofn).

A decoder-only transformer: token and learned position embeddings, pre-LayerNorm blocks
(causal multi-head self-attention, a GELU MLP, dropout with explicit keys), a final
LayerNorm and an output head tied to the token embedding. It is trained with
`optim.chain(clip_by_global_norm(1.0), adamw(...))` on a warmup-cosine schedule, one
jitted train step, on random windows of the "train" bytes; the held-out loss is measured
on the "test" bytes and reported in bits per byte next to the unigram baseline (a model
that knows only each byte's frequency). Checkpoints are written atomically every
`--ckpt-every` steps and `--resume` continues from the last one with the same result as
an uninterrupted run. `--sample N` generates N bytes under jit with `nanofn.random`.

    python examples/gpt.py                          # ~600 steps, a few minutes on 2 cores
    python examples/gpt.py --fast                   # a tiny model, under a minute
    python examples/gpt.py --stop-at 300            # stop early (a checkpoint is written)
    python examples/gpt.py --resume                 # continue from gpt_checkpoint.npz
    python examples/gpt.py --sample 300 --temperature 0.8 --top-k 20
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
from tqdm import tqdm

import nanofn
import nanofn.numpy as jnp
from nanofn import lax, nn, optim, random, serialization
from nanofn.data import load_text

VOCAB = 256  # bytes


def make_gpt(context, d_model, heads, layers, dropout):
    """The GPT as an `(init, apply)` layer; `apply(params, tokens (B, T)) -> logits`."""
    embed = nn.Embedding(VOCAB, d_model)
    blocks = nn.serial(*[nn.TransformerEncoderLayer(heads, 4 * d_model, dropout_rate=dropout,
                                                    causal=True) for _ in range(layers)])
    final_norm = nn.LayerNorm()

    def init(rng, input_shape):
        k_embed, k_pos, k_blocks, k_norm = random.split(rng, 4)
        _, p_embed = embed.init(k_embed, input_shape)
        features = tuple(input_shape) + (d_model,)
        _, p_blocks = blocks.init(k_blocks, features)
        _, p_norm = final_norm.init(k_norm, features)
        pos = 0.02 * random.normal(k_pos, (context, d_model))
        return tuple(input_shape) + (VOCAB,), {"embed": p_embed, "pos": pos, "blocks": p_blocks,
                                               "norm": p_norm}

    def apply(params, tokens, *, rng=None, training=False):
        t = tokens.shape[-1]
        h = embed.apply(params["embed"], tokens) + params["pos"][:t]
        h = blocks.apply(params["blocks"], h, rng=rng, training=training)
        return embed.attend(params["embed"], final_norm.apply(params["norm"], h))  # tied head

    return nn.Layer(init, apply, name=f"GPT({layers}x{d_model})")


def windows(data, key, batch_size, context):
    """`batch_size` random windows of `context + 1` bytes: inputs and next-byte targets."""
    start = np.asarray(random.randint(key, (batch_size,), 0, len(data) - context - 1))
    idx = start[:, None] + np.arange(context + 1)
    chunk = data[idx].astype(np.int32)
    return chunk[:, :-1], chunk[:, 1:]


def unigram_bits(train, test):
    """Cross-entropy, in bits per byte, of the test bytes under the train bytes' frequencies."""
    counts = np.bincount(train, minlength=VOCAB) + 1.0  # add-one: every byte possible
    logp = np.log2(counts / counts.sum())
    return float(-logp[test].mean())


def main(steps=600, batch_size=16, context=128, d_model=128, heads=4, layers=4, dropout=0.1,
         learning_rate=3e-3, warmup=60, weight_decay=0.1, eval_every=100, eval_batches=8,
         ckpt_every=100, checkpoint="gpt_checkpoint.npz", resume=False, seed=0,
         sample=0, temperature=1.0, top_k=None, prompt="The ", stop_at=None, verbose=True):
    """Trains the GPT; returns a dict with losses, held-out bits per byte and a sample."""
    train, test = load_text("train"), load_text("test")
    model = make_gpt(context, d_model, heads, layers, dropout)
    init, apply = model
    key = random.key(seed)
    init_key, data_key, dropout_key, sample_key = random.split(key, 4)
    _, params = init(init_key, (-1, context))
    schedule = optim.warmup_cosine_decay_schedule(0.0, learning_rate, warmup, steps,
                                                  end_value=learning_rate * 0.1)
    decay_mask = lambda p: nanofn.tree.map(lambda x: x.ndim > 1, p)  # noqa: E731
    opt = optim.chain(optim.clip_by_global_norm(1.0),
                      optim.adamw(schedule, b2=0.99, weight_decay=weight_decay, mask=decay_mask))
    opt_state = opt.init(params)
    start_step = 0
    if resume and checkpoint and os.path.exists(checkpoint):
        saved = serialization.load(checkpoint)
        params = nanofn.tree.map(jnp.asarray, saved["params"])
        opt_state = nanofn.tree.unflatten(nanofn.tree.structure(opt_state),
                                          [jnp.asarray(x) for x in
                                           nanofn.tree.leaves(saved["opt_state"])])
        start_step = int(saved["step"])
        if verbose:
            print(f"resumed from {checkpoint} at step {start_step}")

    def loss_fn(params, x, y, key, training):
        logits = apply(params, x, rng=key, training=training)
        return nn.losses.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @nanofn.jit
    def train_step(params, opt_state, x, y, key):
        loss, grads = nanofn.value_and_grad(loss_fn)(params, x, y, key, True)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    eval_loss = nanofn.jit(lambda p, x, y: loss_fn(p, x, y, None, False))
    eval_key = random.key(seed + 1)
    eval_sets = [windows(test, random.fold_in(eval_key, i), batch_size, context)
                 for i in range(eval_batches)]

    def held_out_bits():
        return float(np.mean([float(eval_loss(params, x, y)) for x, y in eval_sets])) / math.log(2)

    baseline = unigram_bits(train, test)
    losses, curve = [], []
    bar = tqdm(total=steps, initial=start_step, disable=not verbose, unit="step")
    start = time.perf_counter()
    last = steps if stop_at is None else min(stop_at, steps)  # stop_at: e.g. a preempted job
    for step in range(start_step, last):
        x, y = windows(train, random.fold_in(data_key, step), batch_size, context)
        params, opt_state, loss = train_step(params, opt_state, x, y,
                                             random.fold_in(dropout_key, step))
        losses.append(float(loss))
        done = step + 1
        elapsed = time.perf_counter() - start
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}",
                        tok_s=f"{(done - start_step) * batch_size * context / elapsed:,.0f}",
                        refresh=False)
        if done % eval_every == 0 or done == last:
            curve.append((done, held_out_bits()))
            bar.write(f"step {done}: held-out {curve[-1][1]:.3f} bits/byte "
                      f"(unigram baseline {baseline:.3f})") if verbose else None
        if checkpoint and (done % ckpt_every == 0 or done == last):
            serialization.save(checkpoint, {"params": params, "opt_state": opt_state,
                                            "step": done})
    bar.close()
    result = {"losses": losses, "curve": curve, "baseline_bits": baseline,
              "params": params, "seconds": time.perf_counter() - start,
              "held_out_bits": curve[-1][1] if curve else held_out_bits()}
    if sample:
        result["sample"] = generate(apply, params, prompt, sample, sample_key, context,
                                    temperature=temperature, top_k=top_k)
        if verbose:
            print(f"--- sample (temperature {temperature}, top-k {top_k}) ---")
            print(result["sample"])
    if verbose:
        print(f"held-out: {result['held_out_bits']:.3f} bits/byte (unigram baseline "
              f"{baseline:.3f}); {len(losses)} steps in {result['seconds']:.1f}s")
    return result


def generate(apply, params, prompt, n, key, context, *, temperature=1.0, top_k=None):
    """Sample `n` bytes after `prompt`, one jitted call per byte over a fixed window."""
    if temperature <= 0:
        raise ValueError(f"generate: temperature must be positive, got {temperature}")

    @nanofn.jit
    def next_byte(params, window, length, key):
        logits = apply(params, window[None])[0]                     # (context, 256)
        logits = lax.dynamic_index_in_dim(logits, length - 1, 0, keepdims=False) / temperature
        if top_k is not None:
            kth = lax.top_k(logits, top_k)[0][-1]
            logits = jnp.where(logits < kth, -jnp.inf, logits)
        return random.categorical(key, logits)

    tokens = list(prompt.encode("ascii", "replace"))[-context:] or [ord(" ")]
    out = []
    for i in range(n):
        window = np.zeros(context, np.int32)
        recent = tokens[-context:]
        window[:len(recent)] = recent
        b = int(next_byte(params, window, np.int32(len(recent)), random.fold_in(key, i)))
        tokens.append(b)
        out.append(b)
    return prompt + bytes(out).decode("ascii", "replace")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--checkpoint", default="gpt_checkpoint.npz")
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    ap.add_argument("--sample", type=int, default=200, metavar="N", help="bytes to generate")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-k", type=int, default=None)
    ap.add_argument("--prompt", default="The ")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stop-at", type=int, default=None,
                    help="stop (with a checkpoint) at this step; --resume continues")
    ap.add_argument("--fast", action="store_true", help="a tiny model for 120 steps")
    a = ap.parse_args()
    if a.fast:
        a.steps, a.context, a.d_model, a.layers, a.heads = 120, 64, 64, 2, 2
    main(steps=a.steps, batch_size=a.batch_size, context=a.context, d_model=a.d_model,
         heads=a.heads, layers=a.layers, dropout=a.dropout, learning_rate=a.lr,
         warmup=max(a.steps // 10, 1), eval_every=max(a.steps // 6, 1), ckpt_every=a.ckpt_every,
         checkpoint=a.checkpoint, resume=a.resume, seed=a.seed, sample=a.sample,
         temperature=a.temperature, top_k=a.top_k, prompt=a.prompt, stop_at=a.stop_at)
