"""Every function of jax.scipy.stats (each distribution's methods, mode, rankdata, sem,
gaussian_kde) and jax.scipy.special exists in nanofn.scipy with JAX's parameter names,
kinds and defaults (recorded from JAX by tools/reference/record_scipy_signatures.py)."""

from __future__ import annotations

import inspect
import json
import pathlib

import pytest

from nanofn.scipy import special, stats

RECORD = json.loads((pathlib.Path(__file__).parents[1] / "reference" /
                     "scipy_signatures.json").read_text())["signatures"]


def _describe(fn):
    return [[p.name, str(p.kind), None if p.default is inspect.Parameter.empty else repr(p.default)]
            for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("path", sorted(RECORD))
def test_signature_matches_jax(path):
    parts = path.split(".")
    obj = stats if parts[0] == "stats" else special
    for part in parts[1:]:
        obj = getattr(obj, part, None)
        assert obj is not None, f"nanofn.scipy has no {path}"
    assert _describe(obj) == RECORD[path]
