"""optax.transforms: the wrappers and building blocks optax groups under ``transforms``.

The same objects as at the top of :mod:`nanofn.optim`; this module exists so that
``from optax import transforms`` ports as ``from nanofn.optim import transforms``.

Example:
    >>> import nanofn.numpy as jnp
    >>> from nanofn.optim import transforms
    >>> tx = transforms.freeze({"w": True, "b": False})
    >>> g = {"w": jnp.ones(1), "b": jnp.ones(1)}
    >>> u, _ = tx.update(g, tx.init(g))
    >>> print(float(u["w"][0]), float(u["b"][0]))
    0.0 1.0
"""

from nanofn.optim._clipping import (
    AdaptiveGradClipState as AdaptiveGradClipState,
    adaptive_grad_clip as adaptive_grad_clip,
    per_example_global_norm_clip as per_example_global_norm_clip,
    per_example_layer_norm_clip as per_example_layer_norm_clip,
    unitwise_clip as unitwise_clip,
    unitwise_norm as unitwise_norm,
)
from nanofn.optim._combine import (
    ApplyIfFiniteState as ApplyIfFiniteState,
    MaskedNode as MaskedNode,
    MaskedState as MaskedState,
    MultiSteps as MultiSteps,
    MultiStepsState as MultiStepsState,
    PartitionState as PartitionState,
    apply_if_finite as apply_if_finite,
    chain as chain,
    masked as masked,
    named_chain as named_chain,
    partition as partition,
    skip_large_updates as skip_large_updates,
    skip_not_finite as skip_not_finite,
)
from nanofn.optim._transform import (
    AddNoiseState as AddNoiseState,
    EmaState as EmaState,
    NonNegativeParamsState as NonNegativeParamsState,
    TraceState as TraceState,
    ZeroNansState as ZeroNansState,
    add_decayed_weights as add_decayed_weights,
    add_noise as add_noise,
    clip as clip,
    clip_by_block_rms as clip_by_block_rms,
    clip_by_global_norm as clip_by_global_norm,
    ema as ema,
    keep_params_nonnegative as keep_params_nonnegative,
    trace as trace,
    zero_nans as zero_nans,
)
from nanofn.optim._wrappers import (
    ConditionFn as ConditionFn,
    ConditionallyMaskState as ConditionallyMaskState,
    ConditionallyTransformState as ConditionallyTransformState,
    MonitorState as MonitorState,
    ShouldSkipUpdateFunction as ShouldSkipUpdateFunction,
    SnapshotState as SnapshotState,
    conditionally_mask as conditionally_mask,
    conditionally_transform as conditionally_transform,
    flatten as flatten,
    freeze as freeze,
    measure_with_ema as measure_with_ema,
    monitor as monitor,
    snapshot as snapshot,
    selective_transform as selective_transform,
)

__all__ = [
    "AdaptiveGradClipState", "AddNoiseState", "ApplyIfFiniteState", "ConditionFn",
    "ConditionallyMaskState", "ConditionallyTransformState", "EmaState", "MaskedNode",
    "MaskedState", "MonitorState", "SnapshotState", "measure_with_ema", "monitor", "snapshot",
    "MultiSteps", "MultiStepsState", "NonNegativeParamsState", "PartitionState",
    "TraceState", "ZeroNansState", "adaptive_grad_clip", "add_decayed_weights", "add_noise",
    "apply_if_finite", "chain", "clip", "clip_by_block_rms", "clip_by_global_norm",
    "conditionally_mask", "conditionally_transform", "ema", "flatten", "freeze",
    "keep_params_nonnegative", "masked", "named_chain", "partition",
    "per_example_global_norm_clip", "per_example_layer_norm_clip", "selective_transform",
    "skip_large_updates", "skip_not_finite", "trace", "unitwise_clip", "unitwise_norm",
    "zero_nans",
]
