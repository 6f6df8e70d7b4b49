"""jax.nn's block-scaled matrix products: `scaled_matmul`, `scaled_dot_general` and
`get_scaled_dot_general_config`.

In JAX these target cuDNN's low-precision (mxfp8, nvfp4) matrix units; on a CPU JAX's
`scaled_matmul` has no lowering. nanofn computes their mathematical definition in the
inputs' (or the preferred) floating dtype: `scaled_matmul` multiplies each block of the
contracting axis by its scale and contracts. nanofn has no 8- or 4-bit float dtypes, so
`scaled_dot_general` with quantization `configs` is not available (without them it is
`lax.dot_general`, as in JAX).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from nanofn import numpy as fnp
from nanofn import ops as lax

__all__ = ["BlockScaleConfig", "get_scaled_dot_general_config", "scaled_dot_general",
           "scaled_matmul"]


@dataclasses.dataclass
class BlockScaleConfig:
    """A block-scaled quantization config (JAX's `BlockScaleConfig`). `data_type` and
    `scale_type` name the low-precision dtypes (nanofn has no such dtypes, so they are
    the names JAX's ml_dtypes carry, as strings)."""
    mode: str
    block_size: int
    data_type: Any
    scale_type: Any
    global_scale: Any
    infer_only: bool


def scaled_matmul(lhs, rhs, lhs_scales, rhs_scales, preferred_element_type=np.float32):
    """Block-scaled matrix product (jax.nn.scaled_matmul), by its definition:

        a_scaled = lhs * repeat(lhs_scales, K // lhs_scales.shape[-1], axis=-1)
        b_scaled = rhs * repeat(rhs_scales, K // rhs_scales.shape[-1], axis=-1)
        einsum('BMK,BNK->BMN', a_scaled, b_scaled)

    computed in `preferred_element_type` (float32 by default).

    Args:
      lhs: shape `(B, M, K)`.
      rhs: shape `(B, N, K)`.
      lhs_scales: shape `(B, M, K_a)` with `K % K_a == 0`.
      rhs_scales: shape `(B, N, K_b)` with `K % K_b == 0`.
      preferred_element_type: the dtype of the result.

    Returns:
      An array of shape `(B, M, N)`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> a, b = jnp.ones((1, 1, 4)), jnp.ones((1, 1, 4))
        >>> nanofn.nn.scaled_matmul(a, b, jnp.full((1, 1, 2), 2.0), jnp.ones((1, 1, 2)))
        Array([[[8.]]], dtype=float32)
    """
    a, b = fnp.asarray(lhs), fnp.asarray(rhs)
    a_scales, b_scales = fnp.asarray(lhs_scales), fnp.asarray(rhs_scales)
    _check_scaled_shapes(a.shape, b.shape, a_scales.shape, b_scales.shape)
    block = a.shape[2] // a_scales.shape[2]  # contracting elements per scale
    dtype = np.dtype(preferred_element_type)
    a_scaled = a.astype(dtype) * fnp.repeat(a_scales.astype(dtype), block, axis=-1)
    b_scaled = b.astype(dtype) * fnp.repeat(b_scales.astype(dtype), block, axis=-1)
    return lax.dot_general(a_scaled, b_scaled, (((2,), (2,)), ((0,), (0,))),
                           preferred_element_type=dtype)


def _check_scaled_shapes(a, b, sa, sb):
    """scaled_matmul's operand shapes: `(B, M, K)`, `(B, N, K)` and their scales `(B, M,
    k)`, `(B, N, k)`, with `k` dividing `K`. Raises a ValueError naming all four."""
    shapes = (f"lhs {tuple(a)}, rhs {tuple(b)}, lhs_scales {tuple(sa)}, "
              f"rhs_scales {tuple(sb)}")
    if any(len(s) != 3 for s in (a, b, sa, sb)):
        problem = "each operand must have 3 axes, (batch, rows, contracting)"
    elif a[0] != b[0] or a[2] != b[2]:
        problem = "lhs and rhs must agree in their batch and contracting (last) axes"
    elif sa[0] != sb[0] or sa[2] != sb[2]:
        problem = "the two scales must agree in their batch and last axes"
    elif sa[1] != a[1] or sb[1] != b[1]:
        problem = "each scale must have its operand's rows (second axis)"
    elif sa[2] == 0 or a[2] % sa[2]:
        problem = "the scales' last size must divide the contracting size"
    else:
        return
    raise ValueError(f"scaled_matmul: {problem}; got {shapes}")


def get_scaled_dot_general_config(mode, global_scale=None):
    """The quantization config of `mode` ("mxfp8" or "nvfp4") for `scaled_dot_general`
    (jax.nn.get_scaled_dot_general_config): block size 32 with float8_e4m3fn data and
    float8_e8m0fnu scales for mxfp8; block size 16 with float4_e2m1fn data, float8_e4m3fn
    scales and a global scale (default `ones((1,))`) for nvfp4.

    Example:
        >>> import nanofn
        >>> nanofn.nn.get_scaled_dot_general_config("mxfp8").block_size
        32
    """
    if mode == "nvfp4":
        one = fnp.ones((1,), dtype=np.float32)
        return BlockScaleConfig(mode="nvfp4", block_size=16, data_type="float4_e2m1fn",
                                scale_type="float8_e4m3fn",
                                global_scale=one if global_scale is None else global_scale,
                                infer_only=False)
    if mode == "mxfp8":
        return BlockScaleConfig(mode="mxfp8", block_size=32, data_type="float8_e4m3fn",
                                scale_type="float8_e8m0fnu", global_scale=None,
                                infer_only=False)
    raise ValueError(f"get_scaled_dot_general_config: mode must be 'mxfp8' or 'nvfp4', got "
                     f"{mode!r}")


def scaled_dot_general(lhs, rhs, dimension_numbers, preferred_element_type=np.float32,
                       configs=None, implementation=None):
    """`lax.dot_general` with block-scaled quantization of its inputs
    (jax.nn.scaled_dot_general). With `configs=None` it is
    `lax.dot_general(lhs, rhs, dimension_numbers,
    preferred_element_type=preferred_element_type)`, as in JAX; quantizing `configs`
    need 8- and 4-bit float dtypes, which nanofn does not have (NotImplementedError).
    `implementation` is ignored, as in JAX (deprecated there).

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> nanofn.nn.scaled_dot_general(jnp.ones((2, 3)), jnp.ones((3, 4)),
        ...                              (((1,), (0,)), ((), ()))).shape
        (2, 4)
    """
    del implementation  # ignored, as in JAX
    if configs is not None:
        raise NotImplementedError(
            "scaled_dot_general with quantization configs needs float8/float4 dtypes, which "
            "nanofn does not have; pass configs=None for a plain dot_general")
    return lax.dot_general(lhs, rhs, dimension_numbers,
                           preferred_element_type=preferred_element_type)
