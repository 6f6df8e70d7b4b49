"""Record the public names of `jax.numpy` and the argument names of its functions, and those
of jax.lax's elementwise functions (run where JAX is installed).

    python tools/reference/record_jnp_names.py

writes jax_numpy_names.json beside this file: JAX's version, the sorted public names of
`jax.numpy`, and for each function the names of the arguments a caller can pass by
keyword (and the same for `LAX_ELEMENTWISE` under "lax_keywords").
tests/numpy/test_surface.py reads it and checks that every name is either in
`nanofn.numpy` or listed, with a reason, in docs/jax-numpy-coverage.md, and that nanofn's
functions accept JAX's keywords.
"""

import inspect
import json
import pathlib

LAX_ELEMENTWISE = [
    "abs", "acos", "acosh", "add", "asin", "asinh", "atan", "atan2", "atanh", "bitwise_and",
    "bitwise_not", "bitwise_or", "bitwise_xor", "cbrt", "ceil", "clamp", "cos", "cosh", "div",
    "dot", "eq", "erf", "erf_inv", "exp", "exp2", "expm1", "floor", "ge", "gt", "integer_pow",
    "is_finite", "le", "log", "log1p", "logistic", "lt", "max", "min", "mul", "ne", "neg",
    "nextafter", "pow", "reciprocal", "rem", "round", "rsqrt", "select", "select_n",
    "shift_left", "shift_right_arithmetic", "shift_right_logical", "sign", "sin", "sinh",
    "sqrt", "square", "sub", "tan", "tanh",
]


def _keywords(f):
    params = inspect.signature(f).parameters.values()
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def main():
    import jax
    import jax.lax as lax
    import jax.numpy as jnp

    names = sorted(n for n in dir(jnp) if not n.startswith("_"))
    keywords = {}
    for n in names:
        f = getattr(jnp, n)
        if not callable(f) or isinstance(f, type):
            continue
        try:
            keywords[n] = _keywords(f)
        except (TypeError, ValueError):
            continue
    lax_keywords = {n: _keywords(getattr(lax, n)) for n in LAX_ELEMENTWISE}
    out = pathlib.Path(__file__).parents[2] / "tests" / "numpy" / "data" / "jax_numpy_names.json"
    out.write_text(json.dumps({"jax_version": jax.__version__, "names": names,
                               "keywords": keywords, "lax_keywords": lax_keywords}, indent=0, sort_keys=True) + "\n")
    print(f"wrote {out.name}: {len(names)} names from jax {jax.__version__}")


if __name__ == "__main__":
    main()
