"""Port: optax's numerical helpers and leftover wrappers (`optax/_src/linear_algebra.py`,
`utils.py`, `transform.py`, `schedules/_inject.py`, google-deepmind/optax repository,
and their tests).

Runs, written against optax's top-level names: `power_iteration` on a PSD matrix (random
start, given start, a few iterations, under jit) and on a Hessian-vector product of a
pytree loss; `matrix_inverse_pth_root` for p = 1, 2, 4, 8 and a traced p, and on a 1x1
matrix; `nnls` with one and two right-hand sides and a given `L`; `multi_normal`'s
samples, log densities and params; `scale_by_distance_over_gradients` (DoG) for 20 steps
on the small pytree problem of test_optax_aliases.py; `inject_stateful_hyperparams` with
a plain schedule, an explicit `WrappedSchedule` and a stateful schedule that reads the
loss from the update's extra arguments. Checked against optax: every returned value.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    params0 = {"v": jnp.asarray([1.0, -1.5, 0.5]),
               "m": jnp.asarray(np.linspace(-1.0, 1.0, 6, dtype=np.float32).reshape(2, 3))}

    def loss(p):
        v, m = p["v"], p["m"]
        return (jnp.sum((v - 0.3) ** 2) + 0.5 * jnp.sum((m[1:] - m[:-1] ** 2) ** 2)
                + jnp.sum((1.0 - m) ** 2) + 0.1 * jnp.sum(v * m[0]))

    def run(opt, steps=20, with_value=False):
        state = opt.init(params0)
        params = params0
        losses, lrs = [], []
        for _ in range(steps):
            value, grad = jax.value_and_grad(loss)(params)
            if with_value:
                updates, state = opt.update(grad, state, params, value=value)
            else:
                updates, state = opt.update(grad, state, params)
            losses.append(value)
            params = optax.apply_updates(params, updates)
            if hasattr(state, "hyperparams"):
                lrs.append(state.hyperparams["learning_rate"])
        out = {"losses": jnp.stack(losses), "params": params}
        if lrs:
            out["lrs"] = jnp.stack(lrs)
        return out, state

    class PlateauHalving:
        """A stateful schedule: halves the value when the loss did not improve."""

        def __init__(self, init_value):
            self.init_value = init_value

        def init(self):
            return {"value": jnp.asarray(self.init_value), "best": jnp.asarray(jnp.inf)}

        def update(self, state, value=None, **extra_args):
            worse = value >= state["best"]
            return {"value": jnp.where(worse, state["value"] / 2, state["value"]),
                    "best": jnp.minimum(state["best"], value)}

        def __call__(self, state, **extra_args):
            return state["value"]

    cases = {}
    dog, dog_state = run(optax.chain(optax.scale_by_distance_over_gradients(),
                                     optax.scale(-1.0)))
    cases["dog"] = dict(dog, max_dist=dog_state[0].max_dist,
                        sos=dog_state[0].grad_sum_of_squares)
    cases["dog_rel"] = run(optax.scale_by_distance_over_gradients(
        reps_rel=1e-3, eps=1e-6, global_scale=-0.5))[0]
    inject = optax.inject_stateful_hyperparams
    cases["inject_plain"] = run(inject(optax.adam)(
        learning_rate=optax.exponential_decay(0.1, 5, 0.5), b1=0.8))[0]
    cases["inject_wrapped"] = run(inject(optax.sgd)(
        learning_rate=optax.WrappedSchedule(optax.linear_schedule(0.05, 0.01, 10)),
        momentum=0.5))[0]
    stateful, stateful_state = run(inject(optax.sgd)(learning_rate=PlateauHalving(0.4)),
                                   with_value=True)
    cases["inject_stateful"] = dict(stateful, best=stateful_state.hyperparams_states[
        "learning_rate"]["best"], count=stateful_state.count)

    rs = np.random.RandomState(0)
    a = rs.normal(size=(6, 6)).astype(np.float32)
    mat = jnp.asarray(a @ a.T + 0.1 * np.eye(6, dtype=np.float32))

    def hvp(t):
        return jax.jvp(jax.grad(loss), (params0,), (t,))[1]

    cases["power_iteration"] = {
        "default": optax.power_iteration(mat),
        "v0": optax.power_iteration(mat, v0=jnp.ones(6), num_iters=50, error_tolerance=1e-4),
        "few": optax.power_iteration(mat, num_iters=3, key=jax.random.PRNGKey(5)),
        "zero_iters": optax.power_iteration(mat, num_iters=0),
        "jit": jax.jit(lambda m, v: optax.power_iteration(m, v0=v))(mat, jnp.arange(6.0)),
        "hvp": optax.power_iteration(hvp, v0=jax.tree.map(jnp.ones_like, params0)),
    }
    cases["matrix_inverse_pth_root"] = {
        **{f"p{p}": optax.matrix_inverse_pth_root(mat, p) for p in (1, 2, 4, 8)},
        "ridge": optax.matrix_inverse_pth_root(mat, 2, num_iters=20, ridge_epsilon=1e-2,
                                               error_tolerance=1e-3),
        "traced_p": jax.jit(optax.matrix_inverse_pth_root)(mat, 4),
        "one_by_one": optax.matrix_inverse_pth_root(jnp.asarray([[4.0]]), 2)[0],
    }
    A = jnp.asarray(rs.normal(size=(5, 4)).astype(np.float32))
    b = jnp.asarray(rs.normal(size=(5,)).astype(np.float32))
    cases["nnls"] = {
        "vector": optax.nnls(A, b, 30),
        "matrix": optax.nnls(A, jnp.stack([b, -b, 2 * b], axis=1), 10, L=50.0),
        "zero_iters": optax.nnls(A, b, 0),
        "unrolled": optax.nnls(A, b, 12, unroll=3),
    }
    dist = optax.multi_normal(jnp.zeros((2, 3)) + 0.5,
                              jnp.asarray(rs.normal(size=(1, 3)).astype(np.float32)))
    cases["multi_normal"] = {
        "sample": dist.sample((4,), jax.random.PRNGKey(1)),
        "sample_list_shape": dist.sample([2, 1], jax.random.PRNGKey(2)),
        "log_prob": dist.log_prob(jnp.ones((5, 2, 3))),
        "log_prob_one": dist.log_prob(jnp.ones((2, 3))),
        "params": dist.params,
        "log_scale": dist.log_scale,
    }
    return cases


def test_numerics_extra_match_optax():
    got, _ = check_against_optax("test_optax_numerics_extra", program, rtol=2e-4, atol=2e-5)
    for name in ("dog", "dog_rel", "inject_plain", "inject_wrapped", "inject_stateful"):
        assert got[f"{name}/losses"][-1] < got[f"{name}/losses"][0], name
    assert np.all(got["nnls/vector"] >= 0) and np.all(got["nnls/matrix"] >= 0)
    lrs = got["inject_stateful/lrs"]
    assert np.all(np.diff(lrs) <= 0)
