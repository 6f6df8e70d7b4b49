"""Complex differentiation cases, written once for JAX and nanofn (`make(np_)` builds the
function from `jax.numpy` or `nanofn.numpy`). `record_complex.py` records JAX's gradients
into complex_grads.json; tests/test_complex.py compares nanofn's.

Each case: `name -> (make, z, holomorphic)`; z is a list of complex numbers (one argument).
"""

Z = [3 + 4j, -0.5 + 0.25j, 1.5 - 2j]

CASES = {
    "abs": (lambda np_: lambda z: np_.sum(np_.abs(z)), Z, False),
    "abs**2": (lambda np_: lambda z: np_.sum(np_.abs(z) ** 2), Z, False),
    "real": (lambda np_: lambda z: np_.sum(np_.real(z)), Z, False),
    "imag": (lambda np_: lambda z: np_.sum(np_.imag(z)), Z, False),
    "angle": (lambda np_: lambda z: np_.sum(np_.angle(z)), Z, False),
    "real(sin(z) conj(z))": (lambda np_: lambda z: np_.sum(np_.real(np_.sin(z) * np_.conj(z))),
                             Z, False),
    "abs(exp(z))": (lambda np_: lambda z: np_.sum(np_.abs(np_.exp(z))), Z, False),
    "real(log(z))": (lambda np_: lambda z: np_.sum(np_.real(np_.log(z))), Z, False),
    "imag(z**3 / (1 + z))": (lambda np_: lambda z: np_.sum(np_.imag(z ** 3 / (1 + z))), Z, False),
    "abs(vdot(z, z))": (lambda np_: lambda z: np_.abs(np_.vdot(z, z * 1j + 1)), Z, False),
    "norm": (lambda np_: lambda z: np_.linalg.norm(z), Z, False),
    "var": (lambda np_: lambda z: np_.var(z), Z, False),
    "real(logaddexp)": (lambda np_: lambda z: np_.sum(np_.real(np_.logaddexp(z, 0.5 * z))),
                        [0.3 + 0.4j, -0.5 + 0.25j], False),
    "abs(sqrt(z)) + tanh": (lambda np_: lambda z: np_.sum(np_.abs(np_.sqrt(z))
                                                          + np_.real(np_.tanh(z))), Z, False),
    "holomorphic z**3": (lambda np_: lambda z: np_.sum(z ** 3), Z, True),
    "holomorphic sin(z) exp(z)": (lambda np_: lambda z: np_.sum(np_.sin(z) * np_.exp(z)), Z,
                                  True),
    "holomorphic log(1 + z**2)": (lambda np_: lambda z: np_.sum(np_.log(1 + z * z)), Z, True),
}
