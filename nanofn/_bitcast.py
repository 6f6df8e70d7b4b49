"""Reinterpreting an int32 as a float32 and back inside numba kernels, and numba's
implementation of `fma` (`nanofn/ops/_fastmath.py`). This module imports numba: nanofn
imports it when it starts numba (`nanofn._kernels.numba`), never at `import nanofn`.

A vectorising `exp` needs `2**n` for an integer `n`, which is the float32 whose bits are
`(n + 127) << 23`; a vectorising row maximum compares float32 values as integers (LLVM
vectorises an integer max reduction, but not a float one without fast-math flags that
would also drop NaN handling). numba has no scalar bit cast, so `float32_from_bits` and
`bits_of_float32` are one LLVM `bitcast` instruction each (free, and they vectorise like
the arithmetic around them).

Example:
    >>> import numba, numpy as np
    >>> from nanofn._bitcast import float32_from_bits
    >>> two_to = numba.njit(lambda n: float32_from_bits(np.int32((n + 127) << 23)))
    >>> float(two_to(np.int32(3))), float(two_to(np.int32(-1)))
    (8.0, 0.5)
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from nanofn.ops._fastmath import fma  # plain Python; numba code gets `_llvm_fma` (below)

__all__ = ["bits_of_float32", "float32_from_bits", "fma"]


def _bitcast(name, doc, source, target, llvm_target):
    """An intrinsic reinterpreting a `source` value's bits as a `target` value."""
    def typer(typingctx, x):
        del typingctx  # unused
        if x != source:
            return None

        def codegen(context, builder, signature, args):
            del context, signature  # unused
            return builder.bitcast(args[0], llvm_target)
        return target(source), codegen
    typer.__name__ = typer.__qualname__ = name
    typer.__doc__ = doc
    return intrinsic(typer)


float32_from_bits = _bitcast("float32_from_bits", "The float32 whose IEEE bits are the int32 "
                             "`bits`.", types.int32, types.float32, ir.FloatType())
bits_of_float32 = _bitcast("bits_of_float32", "The IEEE bits of the float32 `x`, as an int32.",
                           types.float32, types.int32, ir.IntType(32))


@intrinsic
def _llvm_fma(typingctx, a, b, c):
    """LLVM's `llvm.fma` for floats of one type (`fma` in numba code)."""
    del typingctx  # unused
    if not (a == b == c and isinstance(a, types.Float)):
        return None

    def codegen(context, builder, signature, args):
        del context, signature  # unused
        ty = args[0].type
        fn = builder.module.declare_intrinsic(
            f"llvm.fma.{'f32' if ty == ir.FloatType() else 'f64'}", (),
            ir.FunctionType(ty, [ty, ty, ty]))
        return builder.call(fn, args)
    return a(a, b, c), codegen


@overload(fma)
def _fma_in_numba(a, b, c):
    if a == b == c and isinstance(a, types.Float):
        return lambda a, b, c: _llvm_fma(a, b, c)
    return None
