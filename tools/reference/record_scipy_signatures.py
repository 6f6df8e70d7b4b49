"""Record the signatures (parameter names, kinds and defaults) of every function in
jax.scipy.stats (and its distributions) and jax.scipy.special into scipy_signatures.json,
which tests/scipy/test_scipy_signatures.py compares nanofn's against.

Run where JAX is installed: python tools/reference/record_scipy_signatures.py
"""

from __future__ import annotations

import inspect
import json
import pathlib


def _describe(fn):
    return [[p.name, str(p.kind), None if p.default is inspect.Parameter.empty else repr(p.default)]
            for p in inspect.signature(fn).parameters.values()]


def main():
    import jax
    import jax.scipy.special as special
    import jax.scipy.stats as stats

    out = {"jax_version": jax.__version__, "signatures": {}}
    sigs = out["signatures"]
    for name in sorted(n for n in dir(stats) if not n.startswith("_")):
        obj = getattr(stats, name)
        if inspect.ismodule(obj):
            for fn in sorted(n for n in dir(obj) if not n.startswith("_")):
                sigs[f"stats.{name}.{fn}"] = _describe(getattr(obj, fn))
        else:
            sigs[f"stats.{name}"] = _describe(obj)
    for name in sorted(n for n in dir(special) if not n.startswith("_")):
        sigs[f"special.{name}"] = _describe(getattr(special, name))
    path = pathlib.Path(__file__).parents[2] / "tests" / "reference" / "scipy_signatures.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {len(sigs)} signatures to {path.name}")


if __name__ == "__main__":
    main()
