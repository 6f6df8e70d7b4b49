"""Gradient transformations and optimizers, with optax's names and meanings.

An optimizer is a :class:`GradientTransformation`, a pair of pure functions::

    opt = optim.adam(1e-3)
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = optim.apply_updates(params, updates)

Aliases (``sgd``, ``adam``, ``adamw``, ...) are :func:`chain` s of building blocks
(``scale_by_adam``, ``add_decayed_weights``, ``scale_by_learning_rate``, ...); every
``learning_rate`` takes a float or a schedule. See ``docs/optim.md``.
"""

from nanofn.optim import losses as losses  # optax.losses (the same functions as nanofn.nn.losses)
from nanofn.optim._alias import (
    adabelief as adabelief,
    adadelta as adadelta,
    adafactor as adafactor,
    adagrad as adagrad,
    adam as adam,
    adamax as adamax,
    adamw as adamw,
    amsgrad as amsgrad,
    fromage as fromage,
    lamb as lamb,
    lars as lars,
    lion as lion,
    nadam as nadam,
    nadamw as nadamw,
    noisy_sgd as noisy_sgd,
    novograd as novograd,
    radam as radam,
    rmsprop as rmsprop,
    sgd as sgd,
    yogi as yogi,
)
from nanofn.optim._base import (
    EmptyState as EmptyState,
    GradientTransformation as GradientTransformation,
    GradientTransformationExtraArgs as GradientTransformationExtraArgs,
    OptState as OptState,
    Params as Params,
    ScalarOrSchedule as ScalarOrSchedule,
    Schedule as Schedule,
    TransformInitFn as TransformInitFn,
    TransformUpdateFn as TransformUpdateFn,
    Updates as Updates,
    apply_updates as apply_updates,
    global_norm as global_norm,
    identity as identity,
    incremental_update as incremental_update,
    init_empty_state as init_empty_state,
    periodic_update as periodic_update,
    set_to_zero as set_to_zero,
    stateless as stateless,
    stateless_with_tree_map as stateless_with_tree_map,
    with_extra_args_support as with_extra_args_support,
)
from nanofn.optim._combine import (
    ApplyIfFiniteState as ApplyIfFiniteState,
    InjectHyperparamsState as InjectHyperparamsState,
    LookaheadParams as LookaheadParams,
    LookaheadState as LookaheadState,
    MaskedNode as MaskedNode,
    MaskedState as MaskedState,
    MultiSteps as MultiSteps,
    MultiStepsState as MultiStepsState,
    MultiTransformState as MultiTransformState,
    PartitionState as PartitionState,
    apply_if_finite as apply_if_finite,
    chain as chain,
    inject_hyperparams as inject_hyperparams,
    lookahead as lookahead,
    masked as masked,
    multi_transform as multi_transform,
    named_chain as named_chain,
    partition as partition,
    skip_large_updates as skip_large_updates,
    skip_not_finite as skip_not_finite,
)
from nanofn.optim._schedule import (
    constant_schedule as constant_schedule,
    cosine_decay_schedule as cosine_decay_schedule,
    cosine_onecycle_schedule as cosine_onecycle_schedule,
    exponential_decay as exponential_decay,
    join_schedules as join_schedules,
    linear_schedule as linear_schedule,
    piecewise_constant_schedule as piecewise_constant_schedule,
    piecewise_interpolate_schedule as piecewise_interpolate_schedule,
    polynomial_schedule as polynomial_schedule,
    sgdr_schedule as sgdr_schedule,
    warmup_cosine_decay_schedule as warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule as warmup_exponential_decay_schedule,
)
from nanofn.optim._transform import (
    AddDecayedWeightsState as AddDecayedWeightsState,
    AddNoiseState as AddNoiseState,
    EmaState as EmaState,
    FactoredState as FactoredState,
    NonNegativeParamsState as NonNegativeParamsState,
    ScaleByAdaDeltaState as ScaleByAdaDeltaState,
    ScaleByAdamState as ScaleByAdamState,
    ScaleByAmsgradState as ScaleByAmsgradState,
    ScaleByBeliefState as ScaleByBeliefState,
    ScaleByLionState as ScaleByLionState,
    ScaleByNovogradState as ScaleByNovogradState,
    ScaleByRmsState as ScaleByRmsState,
    ScaleByRmsWithCountState as ScaleByRmsWithCountState,
    ScaleByRssState as ScaleByRssState,
    ScaleByRStdDevState as ScaleByRStdDevState,
    ScaleByRStdDevWithCountState as ScaleByRStdDevWithCountState,
    ScaleByScheduleState as ScaleByScheduleState,
    ScaleByTrustRatioState as ScaleByTrustRatioState,
    ScaleState as ScaleState,
    TraceState as TraceState,
    WeightDecaySchedule as WeightDecaySchedule,
    ZeroNansState as ZeroNansState,
    add_decayed_weights as add_decayed_weights,
    add_noise as add_noise,
    centralize as centralize,
    clip as clip,
    clip_by_block_rms as clip_by_block_rms,
    clip_by_global_norm as clip_by_global_norm,
    ema as ema,
    keep_params_nonnegative as keep_params_nonnegative,
    scale as scale,
    scale_by_adadelta as scale_by_adadelta,
    scale_by_adam as scale_by_adam,
    scale_by_adamax as scale_by_adamax,
    scale_by_amsgrad as scale_by_amsgrad,
    scale_by_belief as scale_by_belief,
    scale_by_factored_rms as scale_by_factored_rms,
    scale_by_learning_rate as scale_by_learning_rate,
    scale_by_lion as scale_by_lion,
    scale_by_novograd as scale_by_novograd,
    scale_by_param_block_norm as scale_by_param_block_norm,
    scale_by_param_block_rms as scale_by_param_block_rms,
    scale_by_radam as scale_by_radam,
    scale_by_rms as scale_by_rms,
    scale_by_rss as scale_by_rss,
    scale_by_schedule as scale_by_schedule,
    scale_by_sign as scale_by_sign,
    scale_by_stddev as scale_by_stddev,
    scale_by_trust_ratio as scale_by_trust_ratio,
    scale_by_yogi as scale_by_yogi,
    trace as trace,
    zero_nans as zero_nans,
)

# optax's surface beyond the core (sign methods, Adan, Rprop, SM3, Polyak, optimistic GD,
# L-BFGS and line searches, wrappers, extra losses) and its submodules
from nanofn.optim import schedules as schedules  # noqa: E402
from nanofn.optim import transforms as transforms  # noqa: E402
from nanofn.optim import tree as tree  # noqa: E402
from nanofn.optim import tree_utils  # noqa: E402 (optax's older names, tree_ prefixed)
from nanofn.optim._numerics_extra import (  # noqa: E402 (Shampoo's helpers, nnls, DoG, ...)
    InjectStatefulHyperparamsState as InjectStatefulHyperparamsState,
    WrappedSchedule as WrappedSchedule,
    inject_stateful_hyperparams as inject_stateful_hyperparams,
    matrix_inverse_pth_root as matrix_inverse_pth_root,
    multi_normal as multi_normal,
    nnls as nnls,
    power_iteration as power_iteration,
    scale_by_distance_over_gradients as scale_by_distance_over_gradients,
)
from nanofn.optim import contrib  # noqa: E402 (optax.contrib)
from nanofn.optim import assignment, perturbations, projections, second_order  # noqa: E402
from nanofn.optim import microbatching  # noqa: E402 (optax.microbatching)
from nanofn.optim.microbatching import microbatch as microbatch  # noqa: E402
from nanofn.optim._alias_extra import (  # noqa: E402
    ApplyEvery as ApplyEvery,
    ScaleByAdanState as ScaleByAdanState,
    ScaleByOptimisticGradientState as ScaleByOptimisticGradientState,
    ScaleByRpropState as ScaleByRpropState,
    ScaleBySM3State as ScaleBySM3State,
    adamaxw as adamaxw,
    adan as adan,
    apply_every as apply_every,
    normalize_by_update_norm as normalize_by_update_norm,
    optimistic_adam as optimistic_adam,
    optimistic_adam_v2 as optimistic_adam_v2,
    optimistic_gradient_descent as optimistic_gradient_descent,
    polyak_sgd as polyak_sgd,
    rprop as rprop,
    scale_by_adan as scale_by_adan,
    scale_by_optimistic_gradient as scale_by_optimistic_gradient,
    scale_by_polyak as scale_by_polyak,
    scale_by_rprop as scale_by_rprop,
    scale_by_sm3 as scale_by_sm3,
    sign_sgd as sign_sgd,
    signum as signum,
    sm3 as sm3,
)
from nanofn.optim._clipping import (  # noqa: E402
    AdaptiveGradClipState as AdaptiveGradClipState,
    adaptive_grad_clip as adaptive_grad_clip,
    per_example_global_norm_clip as per_example_global_norm_clip,
    per_example_layer_norm_clip as per_example_layer_norm_clip,
    safe_norm as safe_norm,
    safe_root_mean_squares as safe_root_mean_squares,
)
from nanofn.optim._lbfgs import (  # noqa: E402
    BacktrackingLinesearchInfo as BacktrackingLinesearchInfo,
    ScaleByBacktrackingLinesearchState as ScaleByBacktrackingLinesearchState,
    ScaleByLBFGSState as ScaleByLBFGSState,
    ScaleByZoomLinesearchState as ScaleByZoomLinesearchState,
    ZoomLinesearchInfo as ZoomLinesearchInfo,
    lbfgs as lbfgs,
    scale_by_backtracking_linesearch as scale_by_backtracking_linesearch,
    scale_by_lbfgs as scale_by_lbfgs,
    scale_by_zoom_linesearch as scale_by_zoom_linesearch,
    value_and_grad_from_state as value_and_grad_from_state,
)
from nanofn.optim._schedule import (  # noqa: E402
    linear_onecycle_schedule as linear_onecycle_schedule,
    warmup_constant_schedule as warmup_constant_schedule,
)
from nanofn.optim._wrappers import (  # noqa: E402
    ClipByGlobalNormState as ClipByGlobalNormState,
    ClipState as ClipState,
    MaskOrFn as MaskOrFn,
    ShouldSkipUpdateFunction as ShouldSkipUpdateFunction,
    TransformUpdateExtraArgsFn as TransformUpdateExtraArgsFn,
    ConditionallyMaskState as ConditionallyMaskState,
    ConditionallyTransformState as ConditionallyTransformState,
    MonitorState as MonitorState,
    SnapshotState as SnapshotState,
    conditionally_mask as conditionally_mask,
    conditionally_transform as conditionally_transform,
    flatten as flatten,
    freeze as freeze,
    measure_with_ema as measure_with_ema,
    monitor as monitor,
    snapshot as snapshot,
    scale_gradient as scale_gradient,
    selective_transform as selective_transform,
)
from nanofn.optim.losses import *  # noqa: E402,F401,F403 (every loss at top level, as optax)
from nanofn.optim.losses import (  # noqa: E402
    binary_dice_loss as binary_dice_loss,
    convex_kl_divergence as convex_kl_divergence,
    dice_loss as dice_loss,
    multiclass_generalized_dice_loss as multiclass_generalized_dice_loss,
    ntxent as ntxent,
    generalized_kl_divergence as generalized_kl_divergence,
    multiclass_hinge_loss as multiclass_hinge_loss,
    multiclass_perceptron_loss as multiclass_perceptron_loss,
    perceptron_loss as perceptron_loss,
    poly_loss_cross_entropy as poly_loss_cross_entropy,
    safe_softmax_cross_entropy as safe_softmax_cross_entropy,
    sigmoid_focal_loss as sigmoid_focal_loss,
)
from nanofn.optim._transform import safe_increment as safe_increment  # noqa: E402
from nanofn.optim._transform import safe_increment as safe_int32_increment  # noqa: E402
from nanofn.optim.tree import (  # noqa: E402
    bias_correction as bias_correction,
    map_params as tree_map_params,
    update_infinity_moment as update_infinity_moment,
    update_moment as update_moment,
    update_moment_per_elem_norm as update_moment_per_elem_norm,
)

__all__ = [
    # base
    "EmptyState", "GradientTransformation", "GradientTransformationExtraArgs", "OptState",
    "Params", "ScalarOrSchedule", "Schedule", "TransformInitFn", "TransformUpdateFn",
    "Updates", "apply_updates", "global_norm", "identity", "incremental_update",
    "init_empty_state", "periodic_update", "set_to_zero", "stateless",
    "stateless_with_tree_map", "with_extra_args_support",
    # building blocks
    "AddDecayedWeightsState", "AddNoiseState", "EmaState", "FactoredState",
    "NonNegativeParamsState", "ScaleByAdaDeltaState", "ScaleByAdamState",
    "ScaleByAmsgradState", "ScaleByBeliefState", "ScaleByLionState", "ScaleByNovogradState",
    "ScaleByRmsState", "ScaleByRmsWithCountState", "ScaleByRssState", "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState", "ScaleByScheduleState", "ScaleByTrustRatioState",
    "ScaleState", "TraceState", "WeightDecaySchedule", "ZeroNansState",
    "add_decayed_weights", "add_noise", "centralize", "clip", "clip_by_block_rms",
    "clip_by_global_norm", "ema", "keep_params_nonnegative", "scale", "scale_by_adadelta",
    "scale_by_adam", "scale_by_adamax", "scale_by_amsgrad", "scale_by_belief",
    "scale_by_factored_rms", "scale_by_learning_rate", "scale_by_lion", "scale_by_novograd",
    "scale_by_param_block_norm", "scale_by_param_block_rms", "scale_by_radam",
    "scale_by_rms", "scale_by_rss", "scale_by_schedule", "scale_by_sign", "scale_by_stddev",
    "scale_by_trust_ratio", "scale_by_yogi", "trace", "zero_nans",
    # combinators
    "ApplyIfFiniteState", "InjectHyperparamsState", "LookaheadParams", "LookaheadState",
    "MaskedNode", "MaskedState", "MultiSteps", "MultiStepsState", "MultiTransformState",
    "PartitionState", "apply_if_finite", "chain", "inject_hyperparams", "lookahead",
    "masked", "multi_transform", "named_chain", "partition", "skip_large_updates",
    "skip_not_finite",
    # aliases
    "adabelief", "adadelta", "adafactor", "adagrad", "adam", "adamax", "adamw", "amsgrad",
    "fromage", "lamb", "lars", "lion", "nadam", "nadamw", "noisy_sgd", "novograd", "radam",
    "rmsprop", "sgd", "yogi",
    # schedules
    "constant_schedule", "cosine_decay_schedule", "cosine_onecycle_schedule",
    "exponential_decay", "join_schedules", "linear_schedule", "piecewise_constant_schedule",
    "piecewise_interpolate_schedule", "polynomial_schedule", "sgdr_schedule",
    "warmup_cosine_decay_schedule", "warmup_exponential_decay_schedule",
    # optax's surface beyond the core
    "InjectStatefulHyperparamsState", "WrappedSchedule", "inject_stateful_hyperparams",
    "matrix_inverse_pth_root", "multi_normal", "nnls", "power_iteration",
    "scale_by_distance_over_gradients",
    "schedules", "transforms", "tree", "tree_utils", "contrib", "projections",
    "second_order", "assignment", "perturbations", "microbatching", "microbatch",
    "AdaptiveGradClipState", "ApplyEvery", "ScaleByAdanState",
    "ScaleByOptimisticGradientState", "ScaleByRpropState", "ScaleBySM3State", "adamaxw",
    "adan", "adaptive_grad_clip", "apply_every", "normalize_by_update_norm",
    "optimistic_adam", "optimistic_adam_v2", "optimistic_gradient_descent", "polyak_sgd",
    "rprop", "scale_by_adan", "scale_by_optimistic_gradient", "scale_by_polyak",
    "scale_by_rprop", "scale_by_sm3", "sign_sgd", "signum", "sm3",
    "BacktrackingLinesearchInfo", "ScaleByBacktrackingLinesearchState", "ScaleByLBFGSState",
    "ScaleByZoomLinesearchState", "ZoomLinesearchInfo", "scale_by_zoom_linesearch",
    "lbfgs", "scale_by_backtracking_linesearch", "scale_by_lbfgs",
    "value_and_grad_from_state", "linear_onecycle_schedule", "warmup_constant_schedule",
    "ClipByGlobalNormState", "ClipState", "MaskOrFn", "ShouldSkipUpdateFunction",
    "TransformUpdateExtraArgsFn",
    "ConditionallyMaskState", "ConditionallyTransformState", "conditionally_mask",
    "conditionally_transform", "flatten", "freeze", "scale_gradient", "selective_transform",
    "MonitorState", "SnapshotState", "measure_with_ema", "monitor", "snapshot",
    "per_example_global_norm_clip", "per_example_layer_norm_clip", "safe_norm",
    "safe_root_mean_squares", "safe_increment",
    "safe_int32_increment", "bias_correction", "update_infinity_moment", "update_moment",
    "update_moment_per_elem_norm", "tree_map_params",
] + [_name for _name in losses.__all__ if not _name.startswith("_")]

# optax's deprecated top-level names, still found in ported programs: each access warns
# (as optax's does) and gives the `contrib` object it moved to
_MOVED_TO_CONTRIB = ("differentially_private_aggregate", "DifferentiallyPrivateAggregateState",
                     "dpsgd")


def __getattr__(name):
    if name in _MOVED_TO_CONTRIB:
        import warnings
        warnings.warn(f"nanofn.optim.{name} is deprecated, as optax.{name} is: use "
                      f"nanofn.optim.contrib.{name}", DeprecationWarning, stacklevel=2)
        return getattr(contrib, name)
    raise AttributeError(f"module 'nanofn.optim' has no attribute {name!r}")
