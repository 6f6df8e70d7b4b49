"""nanofn: JAX's programming model — grad, vjp, jvp, vmap, jit — on numpy and numba.

Example:
    >>> import nanofn, nanofn.numpy as fnp
    >>> nanofn.grad(lambda x: fnp.sum(fnp.tanh(x)))(fnp.zeros(2))
    Array([1., 1.], dtype=float32)
"""

import importlib as _importlib
import sys as _sys

from nanofn import tree_util as tree_util
from nanofn import tree as tree
from nanofn._config import config as config, disable_jit as disable_jit, debug_nans as debug_nans
from nanofn._malloc import retain_freed_memory as _retain_freed_memory
from nanofn._core import (
    Array as Array, ConcretizationError as ConcretizationError,
    UnexpectedTracerError as UnexpectedTracerError,
    TracerArrayConversionError as TracerArrayConversionError,
)
from nanofn import numpy as numpy
from nanofn import ops as ops
from nanofn import ops as lax
_sys.modules.setdefault("nanofn.lax", lax)  # `import nanofn.lax` works, as `import jax.lax`
from nanofn.ops import linalg as _lax_linalg  # noqa: E402  nanofn.lax.linalg, as jax.lax.linalg
_sys.modules.setdefault("nanofn.lax.linalg", _lax_linalg)
from nanofn._ad import grad as grad, value_and_grad as value_and_grad, vjp as vjp, jvp as jvp
from nanofn._batching import vmap as vmap
from nanofn._jacobians import (
    jacfwd as jacfwd, jacrev as jacrev, hessian as hessian, linearize as linearize,
)
from nanofn._custom import (
    custom_jvp as custom_jvp, custom_vjp as custom_vjp, checkpoint as checkpoint, remat as remat,
)
from nanofn._closure import closure_convert as closure_convert
from nanofn._custom_gradient import custom_gradient as custom_gradient
from nanofn import ad_checkpoint as ad_checkpoint, checkpoint_policies as checkpoint_policies
from nanofn._jit import (
    jit as jit, make_jaxpr as make_jaxpr, eval_shape as eval_shape,
    ShapeDtypeStruct as ShapeDtypeStruct,
)
from nanofn._jit import clear_caches as clear_caches

from nanofn.distributed._state import (
    devices as devices, local_devices as local_devices, device_count as device_count,
    local_device_count as local_device_count, process_index as process_index,
    process_count as process_count, host_id as host_id, host_count as host_count,
    host_ids as host_ids,
)
from nanofn.distributed._pmap import pmap as pmap
from nanofn.distributed._shard_map import shard_map as shard_map
from nanofn import sharding as sharding
from nanofn.sharding import (
    NamedSharding as NamedSharding, PartitionSpec as P, set_mesh as set_mesh, Shard as Shard,
)
from nanofn._jax_api import (  # the rest of jax's top-level names
    device_put as device_put, device_get as device_get, default_backend as default_backend,
    device_put_replicated as device_put_replicated, device_put_sharded as device_put_sharded,
    block_until_ready as block_until_ready, jacobian as jacobian,
    linear_transpose as linear_transpose, named_call as named_call, named_scope as named_scope,
    typeof as typeof, pure_callback as pure_callback,
    ensure_compile_time_eval as ensure_compile_time_eval, enable_x64 as enable_x64,
    default_matmul_precision as default_matmul_precision, debug_infs as debug_infs,
    numpy_rank_promotion as numpy_rank_promotion, log_compiles as log_compiles,
    explain_cache_misses as explain_cache_misses,
    checking_leaks as checking_leaks, default_device as default_device,
    transfer_guard as transfer_guard,
    transfer_guard_host_to_device as transfer_guard_host_to_device,
    transfer_guard_device_to_host as transfer_guard_device_to_host,
    transfer_guard_device_to_device as transfer_guard_device_to_device,
    effects_barrier as effects_barrier,
    process_indices as process_indices, print_environment_info as print_environment_info,
    make_mesh as make_mesh, make_array_from_callback as make_array_from_callback,
    make_array_from_single_device_arrays as make_array_from_single_device_arrays,
    make_array_from_process_local_data as make_array_from_process_local_data,
    copy_to_host_async as copy_to_host_async,
)
from nanofn._jax_api import (  # JAX's checking and PRNG flags, as context managers
    numpy_dtype_promotion as numpy_dtype_promotion, check_tracer_leaks as check_tracer_leaks,
    enable_checks as enable_checks, debug_key_reuse as debug_key_reuse,
    softmax_custom_jvp as softmax_custom_jvp, default_prng_impl as default_prng_impl,
    legacy_prng_key as legacy_prng_key, threefry_partitionable as threefry_partitionable,
    enable_custom_prng as enable_custom_prng,
)
from nanofn._dtypes_float0 import float0 as float0
from nanofn.distributed._state import CpuDevice as Device

__version__ = "0.1.0"

_retain_freed_memory()  # fresh arrays without page faults (nanofn/_malloc.py)

_LAZY_SUBMODULES = {"random", "nn", "optim", "testing", "data", "serialization", "scipy",
                    "debug", "experimental", "viz", "profiler", "distributed"}

_LAZY_SUBMODULES |= {"errors", "typing", "dtypes", "flatten_util", "example_libraries"}
_LAZY_SUBMODULES |= {"image", "core", "extend", "interpreters", "custom_derivatives",
                     "test_util"}
_LAZY_SUBMODULES |= {"stages", "custom_batching", "dlpack", "monitoring", "onnx", "warmup"}


def __dir__():
    import importlib.util
    lazy = {n for n in _LAZY_SUBMODULES if importlib.util.find_spec(f"nanofn.{n}") is not None}
    return sorted(set(globals()) | lazy)


def __getattr__(name):
    # Heavier submodules load on first use, so `import nanofn` stays fast.
    if name in _LAZY_SUBMODULES:
        return _importlib.import_module(f"nanofn.{name}")
    raise AttributeError(f"module 'nanofn' has no attribute {name!r}")


from nanofn._public import public_names as _public_names  # noqa: E402

__all__ = _public_names(globals())
