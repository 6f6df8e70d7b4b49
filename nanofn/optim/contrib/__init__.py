"""nanofn.optim.contrib: optax.contrib's optimizers and transformations, under optax's names
and with optax's defaults and meanings (`import nanofn.optim as optax; optax.contrib.muon`).

Each family lives in its own module; this package re-exports them all.
"""

from nanofn.optim.contrib import (
    _ademamix, _adopt, _madgrad_momo, _misc, _muon, _parameter_free, _plateau, _sam,
    _schedule_free,
)

_MODULES = (_plateau, _schedule_free, _muon, _adopt, _ademamix, _parameter_free,
            _madgrad_momo, _sam, _misc)
for _module in _MODULES:
    globals().update({name: getattr(_module, name) for name in _module.__all__})

__all__ = sorted(name for _module in _MODULES for name in _module.__all__)
del _module
