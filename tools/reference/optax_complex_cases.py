"""Optimizers on complex parameters, written once for optax and nanofn.optim.

`record_optax_complex.py` runs each case with JAX and optax and writes the parameter
trajectories into tests/reference/optax_complex.npz; tests/optim/test_complex_params.py
runs the same cases with nanofn (`opt` is `optax` or `nanofn.optim`, `np_` is `jax.numpy`
or `nanofn.numpy`) and compares.

The parameters mix complex leaves (a vector and a 2x3 matrix) with a real scalar; the loss
is real, and its gradient with respect to a complex leaf follows JAX's convention (that of
`|z|^2` is `2 conj(z)`). Every case takes `STEPS` steps of
`value, grads = value_and_grad(loss)(params); updates, state = tx.update(grads, state,
params[, extras]); params = apply_updates(params, updates)`.

CASES: `name -> (make, extras)`; `make(opt)` builds the transformation, `extras` says what
the update takes beyond `params`: `None`, `"value"` (`value=`) or `"linesearch"` (`value=`,
`grad=`, `value_fn=`, as optax's L-BFGS). ERROR_CASES: `name -> make`, transformations
optax refuses for complex parameters (the error's type is recorded).

TREE_FUNCTIONS: `name -> f(opt, np_, tree)` for norms and other functions of a complex
tree (`tree` is `params` below), each returning an array or a tree of arrays.
"""

STEPS = 5

W = [1 + 2j, -0.5 + 0.1j]
K = [[0.5 - 0.25j, -1.0 + 0.75j, 0.3j], [1.5 + 0.0j, -0.2 - 0.6j, 0.8 + 0.4j]]
B = 0.3


def make_params(np_, complex_dtype, real_dtype):
    """The starting parameters: complex `w` (2,) and `k` (2, 3), real `b` ()."""
    return {"w": np_.asarray(W, dtype=complex_dtype), "k": np_.asarray(K, dtype=complex_dtype),
            "b": np_.asarray(B, dtype=real_dtype)}


def make_loss(np_):
    """A real loss of the complex parameters, with a term that couples `w` and `k`."""
    def abs_sq(x):
        return np_.real(x * np_.conj(x))

    def loss(p):
        w_target = np_.asarray([0.2 - 1j, 0.4 + 0.3j], dtype=p["w"].dtype)
        k_scale = np_.asarray([[1.0, 0.5, 2.0], [0.25, 1.0, 1.5]], dtype=p["b"].dtype)
        return (np_.sum(abs_sq(p["w"] - w_target)) + 0.5 * np_.sum(k_scale * abs_sq(p["k"]))
                + p["b"] ** 2 + 0.3 * np_.real(p["w"][0] * p["k"][1, 2]))
    return loss


def _chain_clip_adam(opt):
    return opt.chain(opt.clip_by_global_norm(0.5), opt.adam(0.1))


CASES = {
    # --- optax's aliases
    "sgd": (lambda opt: opt.sgd(0.1), None),
    "sgd_momentum": (lambda opt: opt.sgd(0.1, momentum=0.9), None),
    "sgd_nesterov": (lambda opt: opt.sgd(0.1, momentum=0.9, nesterov=True), None),
    "adam": (lambda opt: opt.adam(0.1), None),
    "adam_eps_root": (lambda opt: opt.adam(0.1, eps_root=1e-8), None),
    "adamw": (lambda opt: opt.adamw(0.1, weight_decay=0.1), None),
    "nadam": (lambda opt: opt.nadam(0.1), None),
    "nadamw": (lambda opt: opt.nadamw(0.1, weight_decay=0.1), None),
    "amsgrad": (lambda opt: opt.amsgrad(0.1), None),
    "adamax": (lambda opt: opt.adamax(0.1), None),
    "adamaxw": (lambda opt: opt.adamaxw(0.1, weight_decay=0.1), None),
    "adabelief": (lambda opt: opt.adabelief(0.1), None),
    "adadelta": (lambda opt: opt.adadelta(1.0), None),
    "adafactor": (lambda opt: opt.adafactor(0.1), None),
    "adafactor_factored": (lambda opt: opt.adafactor(0.1, min_dim_size_to_factor=2), None),
    "adafactor_momentum": (lambda opt: opt.adafactor(0.1, momentum=0.9,
                                                     multiply_by_parameter_scale=False), None),
    "adagrad": (lambda opt: opt.adagrad(0.1), None),
    "adan": (lambda opt: opt.adan(0.1), None),
    "fromage": (lambda opt: opt.fromage(0.1), None),
    "lamb": (lambda opt: opt.lamb(0.1), None),
    "lars": (lambda opt: opt.lars(0.1), None),
    "lion": (lambda opt: opt.lion(0.1), None),
    "novograd": (lambda opt: opt.novograd(0.1), None),
    "optimistic_gradient_descent": (lambda opt: opt.optimistic_gradient_descent(0.1), None),
    "optimistic_adam": (lambda opt: opt.optimistic_adam(0.1), None),
    "optimistic_adam_v2": (lambda opt: opt.optimistic_adam_v2(0.1), None),
    "polyak_sgd": (lambda opt: opt.polyak_sgd(max_learning_rate=0.5), "value"),
    "radam": (lambda opt: opt.radam(0.1), None),
    "rmsprop": (lambda opt: opt.rmsprop(0.1), None),
    "rmsprop_centered": (lambda opt: opt.rmsprop(0.1, centered=True), None),
    "rmsprop_momentum_bias": (lambda opt: opt.rmsprop(0.1, momentum=0.9, bias_correction=True,
                                                      eps_in_sqrt=False), None),
    "sign_sgd": (lambda opt: opt.sign_sgd(0.1), None),
    "signum": (lambda opt: opt.signum(0.1), None),
    "yogi": (lambda opt: opt.yogi(0.1), None),
    "radam_rectified": (lambda opt: opt.radam(0.1, b2=0.9, threshold=4.5), None),  # rho_5 > 4.5
    # L-BFGS with its zoom line search turns rounding into other steps in single precision
    # (real parameters too), so the test checks it in double precision only.
    "lbfgs": (lambda opt: opt.lbfgs(), "linesearch"),
    "lbfgs_no_linesearch": (lambda opt: opt.lbfgs(learning_rate=0.1, linesearch=None), None),
    "lbfgs_backtracking": (lambda opt: opt.lbfgs(linesearch=opt.scale_by_backtracking_linesearch(
        max_backtracking_steps=15)), "linesearch"),
    # --- optax.contrib (those optax runs on complex parameters and nanofn follows)
    "contrib.muon": (lambda opt: opt.contrib.muon(0.1), None),
    "contrib.ademamix": (lambda opt: opt.contrib.ademamix(0.1), None),
    "contrib.prodigy": (lambda opt: opt.contrib.prodigy(0.1), None),
    "contrib.dadapt_adamw": (lambda opt: opt.contrib.dadapt_adamw(0.1), None),
    "contrib.cocob": (lambda opt: opt.contrib.cocob(), None),
    "contrib.momo": (lambda opt: opt.contrib.momo(0.1), "value"),
    "contrib.momo_adam": (lambda opt: opt.contrib.momo_adam(0.1), "value"),
    "contrib.acprop": (lambda opt: opt.contrib.acprop(0.1), None),
    "contrib.schedule_free_adamw": (lambda opt: opt.contrib.schedule_free_adamw(0.1), None),
    "contrib.schedule_free_sgd": (lambda opt: opt.contrib.schedule_free_sgd(0.1), None),
    "contrib.split_real_and_imaginary": (lambda opt: opt.contrib.split_real_and_imaginary(
        opt.adam(0.1)), None),
    "contrib.normalize": (lambda opt: opt.chain(opt.contrib.normalize(), opt.sgd(0.1)), None),
    "contrib.reduce_on_plateau": (lambda opt: opt.chain(
        opt.adam(0.1), opt.contrib.reduce_on_plateau()), "value"),
    "contrib.galore": (lambda opt: opt.contrib.galore(0.1), None),
    "contrib.dog": (lambda opt: opt.contrib.dog(), None),
    "contrib.dowg": (lambda opt: opt.contrib.dowg(), None),
    "contrib.simplified_ademamix": (lambda opt: opt.contrib.simplified_ademamix(0.01), None),
    # --- building blocks and wrappers
    "ema_trace": (lambda opt: opt.chain(opt.ema(0.9), opt.trace(0.5), opt.sgd(0.1)), None),
    "clip_by_global_norm_adam": (_chain_clip_adam, None),
    "clip_by_global_norm": (lambda opt: opt.chain(opt.clip_by_global_norm(0.5), opt.sgd(0.1)),
                            None),
    "clip_by_block_rms": (lambda opt: opt.chain(opt.clip_by_block_rms(0.3), opt.sgd(0.1)), None),
    "adaptive_grad_clip": (lambda opt: opt.chain(opt.adaptive_grad_clip(0.1), opt.sgd(0.1)),
                           None),
    "scale_by_trust_ratio": (lambda opt: opt.chain(opt.scale_by_trust_ratio(), opt.sgd(0.1)),
                             None),
    "scale_by_param_block_norm": (lambda opt: opt.chain(opt.scale_by_param_block_norm(),
                                                        opt.sgd(0.01)), None),
    "scale_by_param_block_rms": (lambda opt: opt.chain(opt.scale_by_param_block_rms(),
                                                       opt.sgd(0.01)), None),
    "scale_by_stddev": (lambda opt: opt.chain(opt.scale_by_stddev(), opt.sgd(0.01)), None),
    "scale_by_rms_bias_correction": (lambda opt: opt.chain(
        opt.scale_by_rms(bias_correction=True), opt.sgd(0.1)), None),
    "normalize_by_update_norm": (lambda opt: opt.chain(opt.normalize_by_update_norm(),
                                                       opt.sgd(0.1)), None),
    "centralize": (lambda opt: opt.chain(opt.centralize(), opt.sgd(0.1)), None),
    "apply_if_finite_adam": (lambda opt: opt.apply_if_finite(opt.adam(0.1), 3), None),
}

ERROR_CASES = {
    "sm3": lambda opt: opt.sm3(0.1),
    "clip": lambda opt: opt.clip(1.0),  # complex numbers have no order to clip by
    "rprop": lambda opt: opt.rprop(0.1),  # nor a sign to compare
}


TREE_FUNCTIONS = {
    "global_norm": lambda opt, np_, t: opt.global_norm(t),
    "tree_norm": lambda opt, np_, t: opt.tree.norm(t),
    "tree_norm_squared": lambda opt, np_, t: opt.tree.norm(t, squared=True),
    "tree_norm_ord1": lambda opt, np_, t: opt.tree.norm(t, ord=1),
    "tree_norm_ord2": lambda opt, np_, t: opt.tree.norm(t, ord=2),
    "tree_norm_inf": lambda opt, np_, t: opt.tree.norm(t, ord="inf"),
    "tree_vdot": lambda opt, np_, t: opt.tree.vdot(t, opt.tree.scale(1j, t)),
    "tree_vdot_self": lambda opt, np_, t: opt.tree.vdot(t, t),
    "tree_real": lambda opt, np_, t: opt.tree.real(t),
    "tree_conj": lambda opt, np_, t: opt.tree.conj(t),
    "clip_by_global_norm": lambda opt, np_, t: opt.clip_by_global_norm(1.0).update(
        t, opt.clip_by_global_norm(1.0).init(t))[0],
    "safe_norm": lambda opt, np_, t: opt.safe_norm(t["k"], 1e-3),
    "safe_norm_axis": lambda opt, np_, t: opt.safe_norm(t["k"], 1e-3, axis=1),
    "safe_root_mean_squares": lambda opt, np_, t: opt.safe_root_mean_squares(t["k"], 1e-3),
    "update_moment_per_elem_norm": lambda opt, np_, t: opt.tree.update_moment_per_elem_norm(
        t, opt.tree.zeros_like(t), 0.9, 2),
    "update_moment_per_elem_norm_order1": lambda opt, np_, t:
        opt.tree.update_moment_per_elem_norm(t, opt.tree.zeros_like(t), 0.9, 1),
    "update_infinity_moment": lambda opt, np_, t: opt.tree.update_infinity_moment(
        t, opt.tree.zeros_like(t), 0.9, 1e-3),
    "per_example_global_norm_clip": lambda opt, np_, t: opt.per_example_global_norm_clip(
        {"k": t["k"]}, 1.0)[0],
}
