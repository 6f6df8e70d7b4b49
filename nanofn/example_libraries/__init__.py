"""Compatibility layers for JAX's `jax.example_libraries`.

`nanofn.example_libraries.stax` and `nanofn.example_libraries.optimizers` reproduce
`jax.example_libraries.stax` and `jax.example_libraries.optimizers`: the same names,
arguments, tuple parameters in the same order, and (since `nanofn.random` is the same
threefry generator as `jax.random`) the same initial weights for the same key. A program
written against them ports by changing its imports. New code may prefer the native
`nanofn.nn` layers (named parameters) and `nanofn.optim` (optax-style optimizers).
"""
