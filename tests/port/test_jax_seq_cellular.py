"""Port: grid programs built from convolutions and rolls, as in the Game of Life and
Gray-Scott reaction-diffusion notebooks, and the differentiable "neural cellular automata"
(Growing NCA) written in JAX.

* Game of Life: the neighbour count is computed with eight `jnp.roll`s on a torus, with a
  `lax.conv_general_dilated` over a `jnp.pad(mode="wrap")`-ed board in NCHW layout, and in
  NHWC layout via `dimension_numbers=("NHWC", "HWIO", "NHWC")`; all three agree and a
  glider moves one cell diagonally every four steps.
* Gray-Scott reaction-diffusion: a 5-point Laplacian as a depthwise convolution
  (`feature_group_count=2`) run in a `lax.scan`.
* A soft (differentiable) Life rule: sigmoids of the neighbour count, a learned 3x3
  kernel, pooled with `lax.reduce_window` (max and mean pooling, with "SAME" and
  explicit padding); gradients of a loss with respect to the kernel and the rule's
  thresholds, checked against a finite difference in the test.
"""

import numpy as np

from _jax_port import check_against_jax

SIZE = 12


def program(jax, jnp, lax):
    neighbours = jnp.array([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])

    def count_roll(board):
        total = jnp.zeros_like(board)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy or dx:
                    total = total + jnp.roll(board, (dy, dx), axis=(0, 1))
        return total

    def count_nchw(board, kernel=neighbours):
        padded = jnp.pad(board, 1, mode="wrap")[None, None]          # (1, 1, H+2, W+2)
        return lax.conv_general_dilated(padded, kernel[None, None], (1, 1), "VALID")[0, 0]

    def count_nhwc(board, kernel=neighbours):
        padded = jnp.pad(board, 1, mode="wrap")[None, :, :, None]    # (1, H+2, W+2, 1)
        out = lax.conv_general_dilated(padded, kernel[:, :, None, None], (1, 1), "VALID",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return out[0, :, :, 0]

    def life_step(board, count=count_roll):
        c = count(board)
        alive = (c == 3) | ((board > 0) & (c == 2))
        return alive.astype(board.dtype)

    glider = jnp.zeros((SIZE, SIZE)).at[1, 2].set(1).at[2, 3].set(1).at[3, 1:4].set(1)
    rng = jax.random.bernoulli(jax.random.key(1), 0.35, (SIZE, SIZE)).astype(jnp.float32)

    def run_life(board, steps, count):
        return lax.fori_loop(0, steps, lambda _, b: life_step(b, count), board)

    out = {
        "counts_roll": count_roll(rng), "counts_nchw": count_nchw(rng),
        "counts_nhwc": count_nhwc(rng),
        "glider_4": jax.jit(run_life, static_argnums=(1, 2))(glider, 4, count_nchw),
        "random_10_roll": run_life(rng, 10, count_roll),
        "random_10_nhwc": jax.jit(run_life, static_argnums=(1, 2))(rng, 10, count_nhwc),
        "population": jax.vmap(lambda b: jnp.sum(run_life(b, 3, count_roll)))(
            jnp.stack([glider, rng])),
    }

    # Gray-Scott: two channels, depthwise Laplacian in NCHW.
    lap = jnp.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    lap_kernel = jnp.stack([lap, lap])[:, None]                      # (O=2, I/groups=1, 3, 3)

    def laplacian(uv):
        padded = jnp.pad(uv, ((0, 0), (1, 1), (1, 1)), mode="wrap")[None]
        return lax.conv_general_dilated(padded, lap_kernel, (1, 1), "VALID",
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                        feature_group_count=2)[0]

    def gray_scott(uv, _, du=0.16, dv=0.08, feed=0.035, kill=0.065, dt=1.0):
        u, v = uv
        lu, lv = laplacian(uv)
        uvv = u * v * v
        u = u + dt * (du * lu - uvv + feed * (1.0 - u))
        v = v + dt * (dv * lv + uvv - (feed + kill) * v)
        uv = jnp.stack([u, v])
        return uv, jnp.mean(v)

    u0 = jnp.ones((SIZE, SIZE)).at[4:8, 4:8].set(0.5)
    v0 = jnp.zeros((SIZE, SIZE)).at[4:8, 4:8].set(0.25)
    uv, mean_v = jax.jit(lambda uv: lax.scan(gray_scott, uv, None, length=30))(
        jnp.stack([u0, v0]))
    out["gray_scott"] = uv
    out["gray_scott_mean_v"] = mean_v
    out["laplacian_roll"] = (jnp.roll(u0, 1, 0) + jnp.roll(u0, -1, 0) + jnp.roll(u0, 1, 1)
                             + jnp.roll(u0, -1, 1) - 4 * u0)
    out["laplacian_conv"] = laplacian(jnp.stack([u0, v0]))[0]

    # Soft Life: learnable kernel and thresholds, pooled readouts.
    def soft_step(params, board, sharp=6.0):
        c = count_nhwc(board, params["kernel"])
        birth = jax.nn.sigmoid(sharp * (c - params["lo"])) * \
            jax.nn.sigmoid(sharp * (params["hi"] - c))
        survive = jax.nn.sigmoid(sharp * (c - params["lo"] + 1.0)) * \
            jax.nn.sigmoid(sharp * (params["hi"] - c))
        return board * survive + (1.0 - board) * birth

    def pooled(board):
        x = board[None, None]
        mx = lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 3, 3), (1, 1, 2, 2), "SAME")
        sm = lax.reduce_window(x, 0.0, lax.add, (1, 1, 2, 2), (1, 1, 2, 2),
                               ((0, 0), (0, 0), (0, 0), (0, 0))) / 4.0
        return mx[0, 0], sm[0, 0]

    def soft_loss(params, board, target):
        b = board
        for _ in range(3):
            b = soft_step(params, b)
        mx, mean = pooled(b)
        return jnp.mean((b - target) ** 2) + 0.1 * jnp.mean(mx) + 0.1 * jnp.mean(mean ** 2)

    params = {"kernel": neighbours + 0.05 * jax.random.normal(jax.random.key(2), (3, 3)),
              "lo": jnp.float32(2.5), "hi": jnp.float32(3.5)}
    target = run_life(rng, 3, count_roll)
    loss, grads = jax.jit(jax.value_and_grad(soft_loss))(params, rng, target)
    out["soft_loss"] = loss
    out["soft_grads"] = grads
    # Central finite differences of the loss along "lo" and along one kernel entry.
    eps = 2e-3
    fd = lambda f: (f(eps) - f(-eps)) / (2 * eps)  # noqa: E731
    out["fd_lo"] = fd(lambda h: soft_loss({**params, "lo": params["lo"] + h}, rng, target))
    out["fd_kernel_01"] = fd(lambda h: soft_loss(
        {**params, "kernel": params["kernel"].at[0, 1].add(h)}, rng, target))
    out["pool_max"], out["pool_mean"] = pooled(rng * jnp.arange(SIZE, dtype=jnp.float32))
    out["pool_grad"] = jax.grad(lambda b: jnp.sum(pooled(b)[0] ** 2) + jnp.sum(pooled(b)[1]))(
        rng * jnp.arange(SIZE, dtype=jnp.float32) + 0.01 * jnp.arange(SIZE * SIZE).reshape(
            SIZE, SIZE))

    # A few steps of gradient descent on the soft rule.
    @jax.jit
    def train_step(p):
        loss, g = jax.value_and_grad(soft_loss)(p, rng, target)
        return jax.tree_util.tree_map(lambda a, b: a - 0.1 * b, p, g), loss

    p = params
    losses = []
    for _ in range(4):
        p, l_ = train_step(p)
        losses.append(l_)
    out["train_losses"] = jnp.stack(losses)
    out["trained"] = p
    return out


def test_cellular_matches_jax():
    got, _ = check_against_jax("test_jax_seq_cellular", program, rtol=1e-3, atol=1e-5,
                               overrides={"fd_": (1e-2, 1e-4)})
    np.testing.assert_array_equal(got["counts_nchw"], got["counts_roll"])
    np.testing.assert_array_equal(got["counts_nhwc"], got["counts_roll"])
    np.testing.assert_array_equal(got["random_10_nhwc"], got["random_10_roll"])
    np.testing.assert_allclose(got["laplacian_conv"], got["laplacian_roll"], atol=1e-6)
    # The glider moved one cell down-right in four steps.
    glider = np.zeros((12, 12))
    glider[1, 2] = glider[2, 3] = 1
    glider[3, 1:4] = 1
    np.testing.assert_array_equal(got["glider_4"], np.roll(glider, (1, 1), (0, 1)))
    assert got["train_losses"][-1] < got["train_losses"][0]
    np.testing.assert_allclose(got["soft_grads/lo"], got["fd_lo"], rtol=2e-2, atol=1e-4)
    np.testing.assert_allclose(got["soft_grads/kernel"][0, 1], got["fd_kernel_01"],
                               rtol=2e-2, atol=1e-4)
