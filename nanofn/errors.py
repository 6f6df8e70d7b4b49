"""The exceptions nanofn raises, under the names of `jax.errors`.

Programs written for JAX catch these by name; nanofn raises them where JAX does, with
its own messages. Each is also a built-in exception of JAX's kind (the conversion errors
are TypeErrors, `NonConcreteBooleanIndexError` is an IndexError), so `except TypeError`
catches them too.

Example:
    >>> import nanofn
    >>> from nanofn.errors import TracerBoolConversionError
    >>> def f(x):
    ...     return 1.0 if x > 0 else -1.0   # Python `if` on a traced value
    >>> try:
    ...     nanofn.jit(f)(2.0)
    ... except TracerBoolConversionError:
    ...     print("use lax.cond or jnp.where")
    use lax.cond or jnp.where
"""

from nanofn._core import (
    ConcretizationError as ConcretizationTypeError,
    NonConcreteBooleanIndexError as NonConcreteBooleanIndexError,
    TracerArrayConversionError as TracerArrayConversionError,
    TracerBoolConversionError as TracerBoolConversionError,
    TracerIntegerConversionError as TracerIntegerConversionError,
    UnexpectedTracerError as UnexpectedTracerError,
)

# JAX's base classes. nanofn's errors derive from the built-in kinds directly, so the
# bases are those kinds: `except JAXTypeError` catches every TypeError.
JAXTypeError = TypeError
JAXIndexError = IndexError
JaxRuntimeError = RuntimeError


class KeyReuseError(TypeError):
    """A PRNG key used twice where JAX's key-reuse checker (`jax_debug_key_reuse`) is on.
    nanofn does not track key use, so it never raises this; the name exists so that code
    catching it runs."""


class JaxprTypeError(TypeError):
    """A jaxpr that fails its type check: raised by `jit` with `jax_enable_checks` on (as
    JAX's), when an equation's outputs disagree with its primitive's shape rule."""


class InconclusiveDimensionOperation(TypeError):
    """An operation on symbolic dimensions whose result is not known (JAX's shape
    polymorphism). nanofn has concrete shapes only and never raises it."""


__all__ = ["JaxprTypeError", "InconclusiveDimensionOperation", "ConcretizationTypeError",
           "NonConcreteBooleanIndexError",
           "TracerArrayConversionError", "TracerBoolConversionError",
           "TracerIntegerConversionError", "UnexpectedTracerError", "KeyReuseError",
           "JAXTypeError", "JAXIndexError", "JaxRuntimeError"]
