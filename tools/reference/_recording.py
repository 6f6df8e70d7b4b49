"""What the reference recorders share: where the tests read their data, and JAX in float64.

Each `record_*.py` runs as a script (`python tools/reference/record_x.py`), so this folder,
with the case files beside the recorders, is on `sys.path` when it runs.
"""

from __future__ import annotations

import os

HERE = os.path.dirname(os.path.abspath(__file__))


def data_dir(*parts: str) -> str:
    """A folder under tests/ (where the tests read what a recorder writes)."""
    return os.path.join(HERE, "..", "..", "tests", *parts)


def jax_x64():
    """`jax`, with float64 on (the references are computed in double precision)."""
    import jax
    jax.config.update("jax_enable_x64", True)
    return jax
