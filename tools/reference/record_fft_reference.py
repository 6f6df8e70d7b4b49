"""Record JAX's reverse-mode answers for nanofn.numpy.fft (run where JAX is installed).

    python tools/reference/record_fft_reference.py

writes fft_jax_reference.npz beside this file: for each case, the input, a complex (or
real) cotangent, and JAX's VJP of that cotangent, so tests/numpy/test_fft.py can pin
nanofn's convention for complex cotangents to JAX's without importing JAX.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

CASES = [  # (name, function name, kwargs, input shape, complex input)
    ("fft_1d", "fft", {}, (5,), True),
    ("ifft_1d", "ifft", {"n": 6}, (4,), True),
    ("rfft_even", "rfft", {}, (6,), False),
    ("rfft_odd", "rfft", {"n": 7}, (2, 5), False),
    ("irfft_even", "irfft", {}, (4,), True),
    ("irfft_odd", "irfft", {"n": 5}, (3, 3), True),
    ("hfft", "hfft", {}, (4,), True),
    ("ihfft", "ihfft", {"norm": "ortho"}, (5,), False),
    ("fft2", "fft2", {}, (3, 4), True),
    ("rfft2", "rfft2", {"norm": "forward"}, (3, 4), False),
    ("irfft2", "irfft2", {}, (3, 3), True),
    ("rfftn_3", "rfftn", {}, (2, 3, 5), False),
    ("irfftn_4", "irfftn", {"s": (2, 2, 3, 4)}, (2, 2, 3, 3), True),
]


def main():
    rng = np.random.default_rng(11)
    out = {}
    for name, fn, kwargs, shape, is_complex in CASES:
        x = rng.normal(size=shape)
        if is_complex:
            x = x + 1j * rng.normal(size=shape)
        f = lambda v: getattr(jnp.fft, fn)(v, **kwargs)  # noqa: E731
        y, vjp = jax.vjp(f, jnp.asarray(x))
        ct = rng.normal(size=y.shape)
        if np.iscomplexobj(y):
            ct = ct + 1j * rng.normal(size=y.shape)
        (x_bar,) = vjp(jnp.asarray(ct, dtype=y.dtype))
        out[f"{name}/x"], out[f"{name}/ct"], out[f"{name}/x_bar"] = x, ct, np.asarray(x_bar)
        out[f"{name}/call"] = np.asarray(json.dumps([fn, kwargs]))
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "numpy",
                        "data", "fft_jax_reference.npz")
    np.savez(path, **out)
    print(f"wrote {len(CASES)} cases to {path}")


if __name__ == "__main__":
    main()
