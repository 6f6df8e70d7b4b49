"""Port: JAX's automatic-vectorization and pytrees tutorials (jax-ml/jax,
docs/automatic-vectorization.md and docs/working-with-pytrees.md).

From the first: the 1-d `convolve`, batched by hand, with `vmap`, with `in_axes` and
`out_axes`. From the second: `tree_map` over example trees, the MLP whose params are a
list of dicts trained by `tree_map` updates, a custom container registered with
`register_pytree_node`, and `tree_transpose`-style `tree_map` over several trees.
Changes: the MLP is smaller (1-32-32-1) and trains 20 steps; data from numpy's seeded
generator, as the tutorial does.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp):
    out = {}
    x = jnp.arange(5)
    w = jnp.array([2., 3., 4.])

    def convolve(x, w):
        output = []
        for i in range(1, len(x) - 1):
            output.append(jnp.dot(x[i - 1:i + 2], w))
        return jnp.array(output)

    out["convolve"] = convolve(x, w)
    xs = jnp.stack([x, x + 1])
    ws = jnp.stack([w, w * 2])
    out["manual_batch"] = jnp.stack([convolve(xs[i], ws[i]) for i in range(2)])
    out["auto_batch"] = jax.vmap(convolve)(xs, ws)
    out["in_axes_none"] = jax.vmap(convolve, in_axes=[0, None])(xs, w)
    out["out_axes_1"] = jax.vmap(convolve, in_axes=1, out_axes=1)(xs.T, ws.T)
    out["jit_vmap"] = jax.jit(jax.vmap(convolve))(xs, ws)

    # pytrees
    example_trees = [[1, 'a', object()], (1, (2, 3), ()), [1, {'k1': 2, 'k2': (3, 4)}, 5],
                     {'a': 2, 'b': (2, 3)}, jnp.array([1, 2, 3])]
    out["num_leaves"] = jnp.array([len(jax.tree_util.tree_leaves(t)) for t in example_trees])
    list_of_lists = [[1, 2, 3], [1, 2], [1, 2, 3, 4]]
    out["tree_map_double"] = jnp.array(
        jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda x: x * 2, list_of_lists)))
    another = list_of_lists
    out["tree_map_two"] = jnp.array(jax.tree_util.tree_leaves(
        jax.tree_util.tree_map(lambda x, y: x + y, list_of_lists, another)))

    def init_mlp_params(layer_widths):
        params = []
        rng = np.random.RandomState(0)
        for n_in, n_out in zip(layer_widths[:-1], layer_widths[1:]):
            params.append(dict(weights=rng.normal(size=(n_in, n_out)).astype(np.float32)
                               * np.sqrt(2 / n_in).astype(np.float32),
                               biases=np.ones(shape=(n_out,), dtype=np.float32)))
        return params

    params = init_mlp_params([1, 32, 32, 1])
    out["param_shapes"] = jnp.array(
        jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda x: x.shape[-1], params)))

    def forward(params, x):
        *hidden, last = params
        for layer in hidden:
            x = jax.nn.relu(x @ layer['weights'] + layer['biases'])
        return x @ last['weights'] + last['biases']

    def loss_fn(params, x, y):
        return jnp.mean((forward(params, x) - y) ** 2)

    LEARNING_RATE = 0.0001

    @jax.jit
    def update(params, x, y):
        grads = jax.grad(loss_fn)(params, x, y)
        return jax.tree_util.tree_map(lambda p, g: p - LEARNING_RATE * g, params, grads)

    rng = np.random.RandomState(1)
    xx = rng.normal(size=(128, 1)).astype(np.float32)
    yy = xx ** 2
    losses = []
    for _ in range(20):
        params = update(params, xx, yy)
        losses.append(loss_fn(params, xx, yy))
    out["mlp_losses"] = jnp.stack(losses)
    out["mlp_params"] = params

    class MyContainer:
        def __init__(self, name, a, b, c):
            self.name, self.a, self.b, self.c = name, a, b, c

    def flatten_MyContainer(container):
        return [container.a, container.b, container.c], container.name

    def unflatten_MyContainer(aux_data, flat_contents):
        return MyContainer(aux_data, *flat_contents)

    jax.tree_util.register_pytree_node(MyContainer, flatten_MyContainer,
                                       unflatten_MyContainer)
    trees = [MyContainer('Alice', 1., 2., 3.), MyContainer('Bob', 4., 5., 6.)]
    mapped = jax.tree_util.tree_map(lambda x: x + 1, trees)
    out["container_leaves"] = jnp.array(jax.tree_util.tree_leaves(mapped))
    out["container_grad"] = jnp.array(jax.tree_util.tree_leaves(jax.grad(
        lambda c: c.a * c.b + jnp.sin(c.c))(trees[0])))
    return out


def test_vmap_and_pytrees_match_jax():
    got, _ = check_against_jax("test_jax_vmap_pytrees", program,
                               overrides={"mlp_": (1e-3, 1e-4)})
    assert got["mlp_losses"][-1] < got["mlp_losses"][0]
