"""Port: data-parallel linear regression with `jax.shard_map` over a 4-device mesh, in the
style of JAX's "Introduction to parallel programming" and shard_map tutorials
(jax-ml/jax, docs/sharded-computation.md, docs/notebooks/shard_map.md).

The batch is placed with `jax.device_put(x, NamedSharding(mesh, P("batch")))`; each
device computes the loss of its block and `lax.psum` adds them up; the step takes
`jax.value_and_grad` of the whole `shard_map` under `jax.jit`. A second step computes the
gradient inside the per-device function and averages it with `lax.pmean`
(`check_vma=False`: JAX would otherwise already sum the gradient of a replicated input
over the devices, which nanofn does not; see `nanofn.shard_map`). Changes: sizes are
small, each step is waited for (`jax.block_until_ready`), and the program also returns a
few facts about the layout.

Recorded with 4 CPU devices in JAX (XLA_FLAGS=--xla_force_host_platform_device_count=4);
the test asks nanofn for 4 CPU devices the way JAX programs do (`jax_num_cpu_devices`).
"""

import pytest
from _jax_port import check_against_jax


def program(jax, jnp, lax):
    P, NamedSharding = jax.P, jax.NamedSharding
    mesh = jax.make_mesh((4,), ("batch",))
    n = 32
    kx, kn = jax.random.split(jax.random.PRNGKey(0))
    xs = jax.random.normal(kx, (n, 3))
    true_w = jnp.array([1.5, -2.0, 0.5])
    ys = xs @ true_w + 0.3 + 0.1 * jax.random.normal(kn, (n,))

    data = NamedSharding(mesh, P("batch"))
    xs = jax.device_put(xs, data)
    ys = jax.device_put(ys, data)
    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}

    def local_loss(params, x, y):
        return jnp.sum((x @ params["w"] + params["b"] - y) ** 2)

    def loss(params, x, y):
        per_device = jax.shard_map(lambda p, xb, yb: lax.psum(local_loss(p, xb, yb), "batch"),
                                   mesh=mesh, in_specs=(P(), P("batch"), P("batch")),
                                   out_specs=P())
        return per_device(params, x, y) / n

    @jax.jit
    def step(params, x, y):
        value, grads = jax.value_and_grad(loss)(params, x, y)
        return value, jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads)

    def inner_step(params, xb, yb):
        grads = jax.grad(local_loss)(params, xb, yb)
        grads = lax.pmean(grads, "batch")  # mean of the blocks' gradients of their sums
        return jax.tree_util.tree_map(lambda p, g: p - 0.4 / n * g, params, grads)

    step_inside = jax.jit(jax.shard_map(inner_step, mesh=mesh,
                                        in_specs=(P(), P("batch"), P("batch")),
                                        out_specs=P(), check_vma=False))

    losses, other = [], params
    for _ in range(30):  # each call waited for: JAX's simulated CPU devices may otherwise
        # run two programs' collectives at once and stall on a machine with few cores
        value, params = jax.block_until_ready(step(params, xs, ys))
        other = jax.block_until_ready(step_inside(other, xs, ys))
        losses.append(value)

    block_sums = jax.shard_map(lambda xb: jnp.sum(xb, axis=0, keepdims=True), mesh=mesh,
                               in_specs=P("batch"), out_specs=P("batch"))(xs)
    return {"losses": jnp.stack(losses), "params": params, "inner_params": other,
            "block_sums": block_sums,
            "shard_shape": jnp.array(xs.sharding.shard_shape(xs.shape)),
            "num_devices": jnp.array(xs.sharding.num_devices),
            "replicated": jnp.array(xs.sharding.is_fully_replicated),
            "mesh_size": jnp.array(mesh.size)}


@pytest.fixture
def four_cpu_devices():
    import nanofn
    nanofn.config.update("jax_num_cpu_devices", 4)
    yield
    nanofn.config.update("jax_num_cpu_devices", -1)


@pytest.mark.usefixtures("four_cpu_devices")
def test_data_parallel_linear_regression_matches_jax():
    got, _ = check_against_jax("test_jax_shard_map", program, rtol=5e-4, atol=5e-5)
    assert got["losses"][-1] < 0.1 * got["losses"][0]
    assert got["shard_shape"].tolist() == [8, 3] and got["num_devices"] == 4
