"""Port: every initializer of `jax.nn.initializers`, drawn with the same key.

Programs seed their weights through these, so a port that draws other numbers trains a
different model. nanofn's random functions are JAX's threefry2x32 streams; each
initializer must draw in the same order and dtype as JAX's to give the same weights (to
float32 rounding; `orthogonal` through a QR factorisation, whose sign is fixed).
"""

import numpy as np
from _jax_port import check_against_jax


def program(jax, jnp):
    init = jax.nn.initializers
    key = jax.random.PRNGKey(11)
    f32 = jnp.float32
    out = {}
    for name in ["glorot_normal", "glorot_uniform", "he_normal", "he_uniform",
                 "lecun_normal", "lecun_uniform", "xavier_normal", "xavier_uniform",
                 "kaiming_normal", "kaiming_uniform", "orthogonal"]:
        out[name] = getattr(init, name)()(key, (4, 6), f32)
        out[name + "_conv"] = getattr(init, name)()(key, (3, 3, 2, 5), f32)
    out["normal"] = init.normal(0.5)(key, (3, 4), f32)
    out["uniform"] = init.uniform(2.0)(key, (3, 4), f32)
    out["truncated_normal"] = init.truncated_normal(0.3, lower=-1.5, upper=1.0)(key, (5,), f32)
    for dist in ["truncated_normal", "normal", "uniform"]:
        for mode in ["fan_in", "fan_out", "fan_avg"]:
            vs = init.variance_scaling(1.7, mode, dist, in_axis=0, out_axis=2)
            out[f"vs_{dist}_{mode}"] = vs(key, (3, 2, 4), f32)
    out["orthogonal_wide"] = init.orthogonal(scale=2.0, column_axis=0)(key, (5, 3), f32)
    out["delta_orthogonal"] = init.delta_orthogonal()(key, (3, 3, 4, 4), f32)
    out["ones_zeros_const"] = jnp.stack([init.ones(key, (2,), f32), init.zeros(key, (2,), f32),
                                         init.constant(-0.5)(key, (2,), f32)])
    return out


def test_initializers_match_jax():
    got, _ = check_against_jax("test_jax_initializers", program, rtol=2e-5, atol=2e-6)
    # beyond the recording, identities the draws must hold: orthogonal rows (columns when
    # the matrix is tall along the column axis), scaled by `scale`
    q = got["orthogonal"]
    np.testing.assert_allclose(q @ q.T, np.eye(4), atol=1e-5)
    wide = got["orthogonal_wide"]  # (5, 3) with column_axis=0: 3 orthogonal rows of 5
    np.testing.assert_allclose(wide.T @ wide, 4.0 * np.eye(3), atol=1e-4)
    np.testing.assert_array_equal(got["ones_zeros_const"],
                                  [[1.0, 1.0], [0.0, 0.0], [-0.5, -0.5]])
