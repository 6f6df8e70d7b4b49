"""Port: optax's alias tests (`optax/_src/alias_test.py`, google-deepmind/optax repository).

Every optimizer added to `nanofn.optim` for optax parity (sign_sgd, signum, adamaxw,
adan, rprop, sm3, polyak_sgd, optimistic_gradient_descent, optimistic_adam(_v2), lbfgs
with its zoom line search and with a backtracking one) and the new wrappers (freeze,
selective_transform, flatten, apply_every, conditionally_mask/transform, partition with
mask_compatible_extra_args, normalize_by_update_norm, adaptive_grad_clip) runs up to 20
steps on a small problem in the spirit of optax's tests (a parabola plus a
Rosenbrock-like term, on a pytree with a vector and a matrix leaf), with optax's
defaults. Checked against optax: every loss along the trajectory and the final
parameters; the measurements of monitor, snapshot and measure_with_ema; the optax.tree
functions, the safe norms, unitwise and per-example clips, and the extra losses on
small arrays.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    params0 = {"v": jnp.asarray([1.0, -1.5, 0.5]),
               "m": jnp.asarray(np.linspace(-1.0, 1.0, 6, dtype=np.float32).reshape(2, 3))}

    def loss(p):
        v, m = p["v"], p["m"]
        return (jnp.sum((v - 0.3) ** 2) + 0.5 * jnp.sum((m[1:] - m[:-1] ** 2) ** 2)
                + jnp.sum((1.0 - m) ** 2) + 0.1 * jnp.sum(v * m[0]))

    def run(opt, steps=20, with_value=False, linesearch=False):
        state = opt.init(params0)
        params = params0
        losses = []
        if linesearch:
            value_and_grad = optax.value_and_grad_from_state(loss)
        for _ in range(steps):
            if linesearch:
                value, grad = value_and_grad(params, state=state)
                updates, state = opt.update(grad, state, params, value=value, grad=grad,
                                            value_fn=loss)
            elif with_value:
                value, grad = jax.value_and_grad(loss)(params)
                updates, state = opt.update(grad, state, params, value=value)
            else:
                value, grad = jax.value_and_grad(loss)(params)
                updates, state = opt.update(grad, state, params)
            losses.append(value)
            params = optax.apply_updates(params, updates)
        return {"losses": jnp.stack(losses), "params": params}

    mask = {"v": True, "m": False}
    cases = {
        "sign_sgd": run(optax.sign_sgd(0.05)),
        "signum": run(optax.signum(0.05)),
        "adamaxw": run(optax.adamaxw(0.1, weight_decay=0.01)),
        "adan": run(optax.adan(0.1)),
        "adan_wd": run(optax.adan(0.05, weight_decay=0.1, eps_root=0.0)),
        "rprop": run(optax.rprop(0.05)),
        "sm3": run(optax.sm3(0.5)),
        "polyak_sgd": run(optax.polyak_sgd(max_learning_rate=0.3), with_value=True),
        "polyak_sgd_plus": run(optax.polyak_sgd(max_learning_rate=0.3, f_min=0.5,
                                                variant="sps+"), with_value=True),
        "optimistic_gd": run(optax.optimistic_gradient_descent(0.05)),
        "optimistic_adam": run(optax.optimistic_adam(0.05, optimism=0.02)),
        "optimistic_adam_v2": run(optax.optimistic_adam_v2(0.05, alpha=1.0, beta=0.5)),
        "lbfgs_backtracking": run(optax.lbfgs(
            linesearch=optax.scale_by_backtracking_linesearch(
                max_backtracking_steps=20, store_grad=True)), linesearch=True),
        "lbfgs_lr": run(optax.lbfgs(learning_rate=0.2, memory_size=3, linesearch=None)),
        "lbfgs_zoom": run(optax.lbfgs(), steps=8, linesearch=True),
        "sgd_zoom": run(optax.chain(
            optax.sgd(1.0), optax.scale_by_zoom_linesearch(max_linesearch_steps=15)),
            steps=10, linesearch=True),
        "sgd_backtracking": run(optax.chain(
            optax.sgd(1.0),
            optax.scale_by_backtracking_linesearch(max_backtracking_steps=15,
                                                   store_grad=True)), linesearch=True),
        "freeze": run(optax.chain(optax.freeze(mask), optax.adam(0.1))),
        "selective_transform": run(optax.selective_transform(optax.adam(0.1),
                                                             freeze_mask=mask)),
        "flatten": run(optax.flatten(optax.adam(0.1))),
        "apply_every": run(optax.chain(optax.sgd(0.05), optax.apply_every(3))),
        "conditionally_mask": run(optax.conditionally_mask(
            optax.sgd(0.1), lambda step: step % 2 == 0)),
        "conditionally_transform": run(optax.chain(optax.conditionally_transform(
            optax.scale(0.5), lambda step: step >= 5), optax.sgd(0.1))),
        "normalize": run(optax.chain(optax.normalize_by_update_norm(), optax.sgd(0.05))),
        "agc": run(optax.chain(optax.adaptive_grad_clip(0.05), optax.sgd(0.1))),
        "partition_extra": run(optax.partition(
            {"a": optax.polyak_sgd(max_learning_rate=0.2), "b": optax.sgd(0.05)},
            {"v": "a", "m": "b"}, mask_compatible_extra_args=True), with_value=True),
        "warmup_constant": run(optax.adam(optax.warmup_constant_schedule(0.0, 0.1, 10))),
        "linear_onecycle": run(optax.sgd(optax.linear_onecycle_schedule(20, 0.1))),
    }

    watched = optax.chain(
        optax.monitor({"grad_norm": optax.tree.norm,
                       "grad_norm_ema": optax.measure_with_ema(optax.tree.norm, 0.9)}),
        optax.adam(0.1), optax.snapshot("update_norm", optax.tree.norm))
    state, params = watched.init(params0), params0
    for _ in range(4):
        updates, state = watched.update(jax.grad(loss)(params), state, params)
        params = optax.apply_updates(params, updates)
    mapped = {}
    for name, opt in {"adam": optax.adam(0.1),
                      "partition": optax.partition({"a": optax.adam(0.1),
                                                    "f": optax.set_to_zero()},
                                                   {"v": "a", "m": "f"}),
                      "inject": optax.inject_hyperparams(optax.sgd)(0.1, momentum=0.9)}.items():
        st = opt.update(params0, opt.init(params0), params0)[1]
        mapped[name] = optax.tree_map_params(opt, lambda x: 2.0 * x + 1.0, st,
                                             transform_non_params=lambda x: x)
    # optax 0.2.8's injected state has a `hyperparams_states` field nanofn's lacks
    mapped["inject"] = (mapped["inject"].inner_state, mapped["inject"].hyperparams)
    cases["tree_map_params"] = mapped
    cases["monitor"] = {"measurements": state[0].measurements,
                        "snapshot": state[2].measurement, "params": params}

    a = {"x": jnp.asarray([1.0, -2.0]), "y": jnp.asarray(3.0)}
    b = {"x": jnp.asarray([0.5, 4.0]), "y": jnp.asarray(-1.0)}
    t = optax.tree
    cases["tree"] = {
        "add": t.add(a, b), "sub": t.sub(a, b), "mul": t.mul(a, b), "div": t.div(a, b),
        "scale": t.scale(2.0, a), "add_scale": t.add_scale(a, 0.5, b), "vdot": t.vdot(a, b),
        "sum": t.sum(a), "max": t.max(a), "min": t.min(a), "norm": t.norm(a),
        "norm_sq": t.norm(a, squared=True), "norm_1": t.norm(a, ord=1),
        "norm_inf": t.norm(a, ord="inf"), "clip": t.clip(a, -1.0, 1.0),
        "where": t.where(jnp.asarray(False), a, b), "full_like": t.full_like(a, 7.0),
        "ones_like": t.ones_like(a), "zeros_like": t.zeros_like(a),
        "update_moment": t.update_moment(a, b, 0.9, 2),
        "update_moment_per_elem_norm": t.update_moment_per_elem_norm(a, b, 0.9, 2),
        "update_infinity_moment": t.update_infinity_moment(a, b, 0.9, 1e-3),
        "bias_correction": t.bias_correction(a, 0.9, jnp.asarray(3)),
        "size": jnp.asarray(t.size(a)),
        "get_count": t.get(optax.adam(0.1).init(a), "count"),
        "random_like": t.random_like(jax.random.PRNGKey(3), a),
    }

    rs = np.random.RandomState(0)
    logits = jnp.asarray(rs.normal(size=(4, 5)).astype(np.float32))
    int_labels = jnp.asarray([0, 3, 1, 4])
    probs = jax.nn.softmax(jnp.asarray(rs.normal(size=(4, 5)).astype(np.float32)))
    bin_labels = jnp.asarray((rs.uniform(size=(4, 5)) > 0.5).astype(np.float32))
    per_example = {"w": jnp.asarray(rs.normal(size=(3, 2, 2)).astype(np.float32)),
                   "b": jnp.asarray(rs.normal(size=(3, 2)).astype(np.float32))}
    seg_logits = jnp.asarray(rs.normal(size=(2, 4, 4, 3)).astype(np.float32))
    seg_targets = jax.nn.one_hot(jnp.asarray(rs.randint(0, 3, size=(2, 4, 4))), 3)
    kernel4 = jnp.asarray(rs.normal(size=(2, 2, 3, 4)).astype(np.float32))
    cases["numerics"] = {
        "safe_norm": optax.safe_norm(logits, 1e-3, axis=-1),
        "safe_norm_zero": optax.safe_norm(jnp.zeros(3), 1e-3),
        "safe_norm_grad": jax.grad(lambda x: optax.safe_norm(x, 1e-3))(jnp.zeros(3)),
        "safe_rms": optax.safe_root_mean_squares(logits, 1e-3),
        "unitwise_norm_2d": optax.transforms.unitwise_norm(logits),
        "unitwise_norm_4d": optax.transforms.unitwise_norm(kernel4),
        "per_example_global": optax.per_example_global_norm_clip(per_example, 1.0),
        "per_example_layer": optax.per_example_layer_norm_clip(per_example, 1.0),
        "per_example_layer_nonuniform": optax.per_example_layer_norm_clip(
            per_example, 1.0, uniform=False),
    }
    cases["losses"] = {
        "sigmoid_focal": optax.losses.sigmoid_focal_loss(logits, bin_labels, alpha=0.25),
        "sigmoid_focal_default": optax.losses.sigmoid_focal_loss(logits, bin_labels),
        "poly_loss": optax.losses.poly_loss_cross_entropy(logits, probs),
        "safe_softmax_ce": optax.losses.safe_softmax_cross_entropy(logits, probs),
        "multiclass_hinge": optax.losses.multiclass_hinge_loss(logits, int_labels),
        "multiclass_perceptron": optax.losses.multiclass_perceptron_loss(logits, int_labels),
        "perceptron": optax.losses.perceptron_loss(logits, 2 * bin_labels - 1),
        "generalized_kl": optax.losses.generalized_kl_divergence(jnp.log(probs), 0.5 * probs),
        "convex_kl": optax.convex_kl_divergence(jnp.log(probs), probs),
        "ntxent": optax.ntxent(logits, jnp.asarray([0, 1, 0, 1]), temperature=0.5),
        "ntxent_grad": jax.grad(lambda e: optax.ntxent(e, jnp.asarray([0, 1, 0, 1])))(logits),
        "dice": optax.losses.dice_loss(seg_logits, seg_targets),
        "dice_tversky": optax.losses.dice_loss(seg_logits, seg_targets, alpha=0.3, beta=0.7,
                                               reduction="none", ignore_background=True),
        "binary_dice": optax.losses.binary_dice_loss(seg_logits[..., 0], seg_targets[..., 0]),
        "generalized_dice": optax.losses.multiclass_generalized_dice_loss(seg_logits,
                                                                          seg_targets),
        # losses optax also has at its top level
        "l2": optax.l2_loss(logits, probs),
        "huber": optax.huber_loss(logits, probs, delta=0.5),
        "ce_int": optax.softmax_cross_entropy_with_integer_labels(logits, int_labels),
        "bce": optax.sigmoid_binary_cross_entropy(logits, bin_labels),
    }
    return cases


def test_new_optax_aliases_match_optax():
    got, _ = check_against_optax("test_optax_aliases", program, rtol=2e-4, atol=2e-5)
    for name in ("adan", "sm3", "rprop", "lbfgs_backtracking", "polyak_sgd"):
        assert got[f"{name}/losses"][-1] < got[f"{name}/losses"][0]
