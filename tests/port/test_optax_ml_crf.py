"""Port: a linear-chain conditional random field for sequence labelling, trained with
optax, as in the CRF layers of JAX NLP codebases.

Emission scores come from a linear layer over token features; the log-partition function
is a forward `lax.scan` with `logsumexp` over a padded batch (a length mask keeps padded
steps from changing the carry); the gold-path score gathers emissions with
`jnp.take_along_axis` and transitions by fancy indexing. The negative log-likelihood is
minimised by `optax.adam` in a jitted `lax.scan` training loop; its
gradient w.r.t. the transitions is checked against the marginal identity (expected minus
observed transition counts, the expectations from `jax.grad` of log Z w.r.t. the
transition matrix, which equals the pairwise marginals). Viterbi decoding returns the
best tag paths; brute-force enumeration over all paths of one short sequence checks
log Z and the Viterbi score.
"""

import itertools

import numpy as np

from _jax_port import check_against_optax

N_TAGS, N_FEAT, T, BATCH = 4, 6, 7, 6


def program(jax, jnp, lax, optax):
    logsumexp = jax.scipy.special.logsumexp
    k_feat, k_w, k_tag, k_len, k_init = jax.random.split(jax.random.key(8), 5)
    true_w = jax.random.normal(k_w, (N_FEAT, N_TAGS))
    feats = jax.random.normal(k_feat, (BATCH, T, N_FEAT))
    # Gold tags: the true emission argmax, smoothed so that tags persist.
    raw = jnp.argmax(feats @ true_w, -1)
    keep = jax.random.bernoulli(k_tag, 0.4, (BATCH, T))
    tags = jnp.where(keep, jnp.roll(raw, 1, axis=1), raw).astype(jnp.int32)
    lengths = jax.random.randint(k_len, (BATCH,), 3, T + 1)
    mask = jnp.arange(T)[None, :] < lengths[:, None]

    def log_partition(emissions, trans, mask):
        def step(alpha, inp):
            em, m = inp
            new = logsumexp(alpha[:, None] + trans, axis=0) + em
            return jnp.where(m, new, alpha), None
        alpha, _ = lax.scan(step, emissions[0], (emissions[1:], mask[1:]))
        return logsumexp(alpha)

    def gold_score(emissions, trans, tags, mask):
        em = jnp.take_along_axis(emissions, tags[:, None], axis=1)[:, 0]
        tr = trans[tags[:-1], tags[1:]]
        return jnp.sum(em * mask) + jnp.sum(tr * mask[1:])

    def nll(params, feats, tags, mask):
        emissions = feats @ params["w"] + params["b"]
        log_z = jax.vmap(log_partition, (0, None, 0))(emissions, params["trans"], mask)
        gold = jax.vmap(gold_score, (0, None, 0, 0))(emissions, params["trans"], tags,
                                                     mask)
        return jnp.mean(log_z - gold)

    def viterbi(emissions, trans, mask):
        def step(delta, inp):
            em, m = inp
            scores = delta[:, None] + trans
            best = jnp.argmax(scores, axis=0)
            new = jnp.max(scores, axis=0) + em
            # Padded steps keep the score and point every tag at itself.
            return jnp.where(m, new, delta), jnp.where(m, best, jnp.arange(N_TAGS))
        delta, ptrs = lax.scan(step, emissions[0], (emissions[1:], mask[1:]))
        last = jnp.argmax(delta)

        def back(tag, ptr):
            return ptr[tag], tag
        first, path = lax.scan(back, last, ptrs, reverse=True)
        return jnp.concatenate([first[None], path]), jnp.max(delta)

    params = {"w": 0.1 * jax.random.normal(k_init, (N_FEAT, N_TAGS)),
              "b": jnp.zeros(N_TAGS), "trans": jnp.zeros((N_TAGS, N_TAGS))}
    opt = optax.adam(0.1)

    @jax.jit
    def train(params):
        def step(carry, _):
            p, s = carry
            loss, g = jax.value_and_grad(nll)(p, feats, tags, mask)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), loss
        (p, _), losses = lax.scan(step, (params, opt.init(params)), None, length=60)
        return p, losses

    trained, losses = train(params)

    # Marginal identity for the transition gradient.
    emissions = feats @ trained["w"] + trained["b"]
    g_trans = jax.grad(nll)(trained, feats, tags, mask)["trans"]
    expected = jax.grad(lambda tr: jnp.mean(jax.vmap(log_partition, (0, None, 0))(
        emissions, tr, mask)))(trained["trans"])
    onehot = jax.nn.one_hot(tags, N_TAGS)
    observed = jnp.einsum("bti,btj,bt->ij", onehot[:, :-1], onehot[:, 1:],
                          mask[:, 1:].astype(jnp.float32)) / BATCH

    paths, scores = jax.jit(jax.vmap(viterbi, (0, None, 0)))(emissions, trained["trans"],
                                                             mask)
    # Brute force over all 4^4 paths of a length-4 sequence.
    em0, tr = emissions[0, :4], trained["trans"]
    all_paths = jnp.array(list(itertools.product(range(N_TAGS), repeat=4)))
    path_scores = jax.vmap(lambda y: gold_score(em0, tr, y, jnp.ones(4, bool)))(all_paths)
    vit4, vit4_score = viterbi(em0, tr, jnp.ones(4, bool))
    accuracy = jnp.sum((paths == tags) * mask) / mask.sum()
    return {"tags": tags, "lengths": lengths, "losses": losses[::5],
            "trans": trained["trans"], "grad_trans": g_trans,
            "grad_identity": expected - observed, "viterbi_paths": paths * mask,
            "viterbi_scores": scores, "brute_log_z": logsumexp(path_scores),
            "log_z": log_partition(em0, tr, jnp.ones(4, bool)),
            "brute_best": jnp.max(path_scores), "viterbi4_score": vit4_score,
            "viterbi4": vit4, "brute_best_path": all_paths[jnp.argmax(path_scores)],
            "accuracy": accuracy}


def test_crf_matches_optax():
    got, _ = check_against_optax("test_optax_ml_crf", program, rtol=1e-3, atol=1e-4)
    assert got["losses"][-1] < 0.5 * got["losses"][0]
    np.testing.assert_allclose(got["grad_trans"], got["grad_identity"], atol=1e-5)
    np.testing.assert_allclose(got["log_z"], got["brute_log_z"], rtol=1e-5)
    np.testing.assert_allclose(got["viterbi4_score"], got["brute_best"], rtol=1e-5)
    np.testing.assert_array_equal(got["viterbi4"], got["brute_best_path"])
