"""JAX's `example_libraries.optimizers`, with JAX's exact semantics.

An optimizer is an `(init_fun, update_fun, get_params)` triple:

- `init_fun(params) -> opt_state`
- `update_fun(step, grads, opt_state) -> opt_state` (`step` is the iteration index,
  0, 1, 2, ...; schedules and Adam's bias correction read it)
- `get_params(opt_state) -> params`

The `@optimizer` decorator lifts a triple written for one array to pytrees of arrays.
The update rules are JAX's own (`adagrad` with momentum, `rmsprop_momentum`, `sm3`, ...),
which differ in details from the optax-style `nanofn.optim` aliases, so they are written
here directly on `nanofn.numpy` rather than built from `nanofn.optim`'s blocks.

Example:
    >>> import nanofn
    >>> from nanofn.example_libraries import optimizers
    >>> opt_init, opt_update, get_params = optimizers.sgd(0.1)
    >>> state = opt_init({"w": nanofn.numpy.array([1.0, 2.0])})
    >>> state = opt_update(0, {"w": nanofn.numpy.array([1.0, 1.0])}, state)
    >>> get_params(state)["w"]
    Array([0.9, 1.9], dtype=float32)
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Callable
from typing import Any, NamedTuple

from nanofn import numpy as jnp
from nanofn import tree as _tree
from nanofn import tree_util as _tree_util

__all__ = [
    "JoinPoint", "Optimizer", "OptimizerState", "adagrad", "adam", "adamax", "clip_grads",
    "constant", "exponential_decay", "inverse_time_decay", "l2_norm", "make_schedule",
    "momentum", "nesterov", "optimizer", "pack_optimizer_state", "piecewise_constant",
    "polynomial_decay", "rmsprop", "rmsprop_momentum", "sgd", "sm3",
    "unpack_optimizer_state",
]

# The state is kept partially flattened: one flat list of per-leaf states, plus the
# params' treedef and each leaf state's treedef (the treedefs are static, not leaves).
OptimizerState = namedtuple("OptimizerState", ["packed_state", "tree_def", "subtree_defs"])
_tree_util.register_pytree_node(
    OptimizerState,
    lambda xs: ((xs.packed_state,), (xs.tree_def, xs.subtree_defs)),
    lambda data, xs: OptimizerState(xs[0], data[0], data[1]))

Array = Any
Params = Any
State = Any
Updates = Params
InitFn = Callable[[Params], OptimizerState]
Step = int
UpdateFn = Callable[[Step, Updates, OptimizerState], OptimizerState]
ParamsFn = Callable[[OptimizerState], Params]
Schedule = Callable[[Step], float]


class Optimizer(NamedTuple):
    init_fn: InitFn
    update_fn: UpdateFn
    params_fn: ParamsFn


def _unzip2(pairs):
    # tuples, as JAX's unzip2: the treedefs become aux data of the state, which jit hashes
    pairs = list(pairs)
    return tuple(a for a, _ in pairs), tuple(b for _, b in pairs)


def optimizer(opt_maker):
    """Decorator: turn an `(init, update, get_params)` triple written for single arrays
    into one that works on pytrees of arrays.

    Example:
        >>> import nanofn
        >>> from nanofn.example_libraries import optimizers
        >>> @optimizer
        ... def halve():
        ...     return (lambda x0: x0), (lambda i, g, x: x / 2), (lambda x: x)
        >>> init, update, get_params = halve()
        >>> get_params(update(0, (1.0, 1.0), init((2.0, 4.0))))
        (1.0, 2.0)
    """
    @functools.wraps(opt_maker)
    def tree_opt_maker(*args, **kwargs):
        init, update, get_params = opt_maker(*args, **kwargs)

        @functools.wraps(init)
        def tree_init(x0_tree):
            x0_flat, tree = _tree.flatten(x0_tree)
            initial_states = [init(x0) for x0 in x0_flat]
            states_flat, subtrees = _unzip2(map(_tree.flatten, initial_states))
            return OptimizerState(states_flat, tree, subtrees)

        @functools.wraps(update)
        def tree_update(i, grad_tree, opt_state):
            states_flat, tree, subtrees = opt_state
            grad_flat, tree2 = _tree.flatten(grad_tree)
            if tree2 != tree:
                raise TypeError(
                    "optimizer update function was passed a gradient tree that did not "
                    f"match the parameter tree structure with which it was initialized: "
                    f"parameter tree {tree} and grad tree {tree2}.")
            states = map(_tree.unflatten, subtrees, states_flat)
            new_states = map(functools.partial(update, i), grad_flat, states)
            new_states_flat, subtrees2 = _unzip2(map(_tree.flatten, new_states))
            for subtree, subtree2 in zip(subtrees, subtrees2):
                if subtree2 != subtree:
                    raise TypeError(
                        "optimizer update function produced an output structure that did "
                        f"not match its input structure: input {subtree} and output "
                        f"{subtree2}.")
            return OptimizerState(new_states_flat, tree, subtrees)

        @functools.wraps(get_params)
        def tree_get_params(opt_state):
            states_flat, tree, subtrees = opt_state
            states = map(_tree.unflatten, subtrees, states_flat)
            return _tree.unflatten(tree, [get_params(s) for s in states])

        return Optimizer(tree_init, tree_update, tree_get_params)
    return tree_opt_maker


# ------------------------------------------------------------------- optimizers

@optimizer
def sgd(step_size):
    """Stochastic gradient descent: `x <- x - step_size(i) * g`.

    Args:
        step_size: a positive scalar, or a schedule mapping the step index to one.

    Returns:
        An `(init_fun, update_fun, get_params)` triple.
    """
    step_size = make_schedule(step_size)

    def init(x0):
        return x0

    def update(i, g, x):
        return x - step_size(i) * g

    def get_params(x):
        return x

    return Optimizer(init, update, get_params)


@optimizer
def momentum(step_size: Schedule, mass: float):
    """SGD with momentum: `v <- mass * v + g; x <- x - step_size(i) * v`.

    Example:
        >>> import nanofn
        >>> from nanofn.example_libraries import optimizers
        >>> init, update, get_params = optimizers.momentum(0.1, mass=0.9)
        >>> s = init(nanofn.numpy.array(1.0))
        >>> s = update(0, nanofn.numpy.array(1.0), s); s = update(1, nanofn.numpy.array(1.0), s)
        >>> get_params(s)  # 1 - 0.1 - 0.1 * 1.9
        Array(0.71, dtype=float32)
    """
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, jnp.zeros_like(x0)

    def update(i, g, state):
        x, velocity = state
        velocity = mass * velocity + g
        return x - step_size(i) * velocity, velocity

    def get_params(state):
        return state[0]

    return init, update, get_params


@optimizer
def nesterov(step_size: Schedule, mass: float):
    """SGD with Nesterov momentum: `v <- mass * v + g; x <- x - step_size(i) * (mass * v + g)`."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, jnp.zeros_like(x0)

    def update(i, g, state):
        x, velocity = state
        velocity = mass * velocity + g
        x = x - step_size(i) * (mass * velocity + g)
        return x, velocity

    def get_params(state):
        return state[0]

    return init, update, get_params


@optimizer
def adagrad(step_size, momentum=0.9):
    """Adagrad with momentum, as in JAX (Duchi et al., 2011):
    `G <- G + g^2; m <- (1 - momentum) * g / sqrt(G) + momentum * m; x <- x - step_size(i) * m`
    (where `G == 0` the scaled gradient is 0)."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, jnp.zeros_like(x0), jnp.zeros_like(x0)

    def update(i, g, state):
        x, g_sq, m = state
        g_sq = g_sq + jnp.square(g)
        g_sq_inv_sqrt = jnp.where(g_sq > 0, 1.0 / jnp.sqrt(g_sq), 0.0)
        m = (1.0 - momentum) * (g * g_sq_inv_sqrt) + momentum * m
        x = x - step_size(i) * m
        return x, g_sq, m

    def get_params(state):
        return state[0]

    return init, update, get_params


@optimizer
def rmsprop(step_size, gamma=0.9, eps=1e-8):
    """RMSProp: `a <- gamma * a + (1 - gamma) * g^2; x <- x - step_size(i) * g / sqrt(a + eps)`."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, jnp.zeros_like(x0)

    def update(i, g, state):
        x, avg_sq_grad = state
        avg_sq_grad = avg_sq_grad * gamma + jnp.square(g) * (1.0 - gamma)
        x = x - step_size(i) * g / jnp.sqrt(avg_sq_grad + eps)
        return x, avg_sq_grad

    def get_params(state):
        return state[0]

    return init, update, get_params


@optimizer
def rmsprop_momentum(step_size, gamma=0.9, eps=1e-8, momentum=0.9):
    """RMSProp with momentum:
    `mom <- momentum * mom + step_size(i) * g / sqrt(a + eps); x <- x - mom`."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, jnp.zeros_like(x0), jnp.zeros_like(x0)

    def update(i, g, state):
        x, avg_sq_grad, mom = state
        avg_sq_grad = avg_sq_grad * gamma + jnp.square(g) * (1.0 - gamma)
        mom = momentum * mom + step_size(i) * g / jnp.sqrt(avg_sq_grad + eps)
        return x - mom, avg_sq_grad, mom

    def get_params(state):
        return state[0]

    return init, update, get_params


@optimizer
def adam(step_size, b1=0.9, b2=0.999, eps=1e-8):
    """Adam (Kingma & Ba, 2015), with bias correction by the step index `i + 1`:
    `x <- x - step_size(i) * mhat / (sqrt(vhat) + eps)`.

    Example:
        >>> import nanofn
        >>> from nanofn.example_libraries import optimizers
        >>> init, update, get_params = optimizers.adam(0.1)
        >>> get_params(update(0, nanofn.numpy.array(5.0), init(nanofn.numpy.array(1.0))))
        Array(0.9, dtype=float32)
    """
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, jnp.zeros_like(x0), jnp.zeros_like(x0)

    def update(i, g, state):
        x, m, v = state
        m = (1 - b1) * g + b1 * m
        v = (1 - b2) * jnp.square(g) + b2 * v
        mhat = m / (1 - jnp.asarray(b1, m.dtype) ** (i + 1))
        vhat = v / (1 - jnp.asarray(b2, m.dtype) ** (i + 1))
        x = x - step_size(i) * mhat / (jnp.sqrt(vhat) + eps)
        return x, m, v

    def get_params(state):
        return state[0]

    return init, update, get_params


@optimizer
def adamax(step_size, b1=0.9, b2=0.999, eps=1e-8):
    """AdaMax, Adam with the infinity norm: `u <- max(b2 * u, |g|);
    x <- x - step_size(i) / (1 - b1^(i+1)) * m / (u + eps)`."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, jnp.zeros_like(x0), jnp.zeros_like(x0)

    def update(i, g, state):
        x, m, u = state
        m = (1 - b1) * g + b1 * m
        u = jnp.maximum(b2 * u, jnp.abs(g))
        x = x - (step_size(i) / (1 - jnp.asarray(b1, m.dtype) ** (i + 1))) * m / (u + eps)
        return x, m, u

    def get_params(state):
        return state[0]

    return init, update, get_params


@optimizer
def sm3(step_size, momentum=0.9):
    """SM3 (Anil et al., 2019): one accumulator per axis instead of one per entry; the
    state holds the 1-D accumulators `vs` and the parameter's original shape."""
    step_size = make_schedule(step_size)

    def splice(seq, i, x):
        lst = list(seq)
        lst[i:i + 1] = x
        return lst

    def broadcast_into(ndim, x, axis):
        idx = splice([None] * ndim, axis, [slice(None)])
        return x[tuple(idx)]

    def init(x0):
        x_shape = x0.shape
        x0 = jnp.atleast_1d(x0)
        vs = [jnp.zeros(sz, dtype=x0.dtype) for sz in x0.shape]
        return x0, jnp.zeros_like(x0), vs, x_shape

    def update(i, g, state):
        x, m, vs, x_shape = state
        vs = [broadcast_into(g.ndim, v, ax) for ax, v in enumerate(vs)]
        accum = functools.reduce(jnp.minimum, vs) + jnp.square(g)
        accum_inv_sqrt = jnp.where(accum > 0, 1.0 / jnp.sqrt(accum), 0)
        m = (1.0 - momentum) * (g * accum_inv_sqrt) + momentum * m
        x = x - step_size(i) * m
        vs = [accum.max(tuple(splice(range(x.ndim), j, []))) for j in range(x.ndim)]
        return x, m, vs, x_shape

    def get_params(state):
        x, _, _, x_shape = state
        return x.reshape(x_shape)

    return init, update, get_params


# ------------------------------------------------------------ step-size schedules

def constant(step_size) -> Schedule:
    """The schedule `i -> step_size`."""
    def schedule(i):
        return step_size
    return schedule


def exponential_decay(step_size, decay_steps, decay_rate):
    """The schedule `i -> step_size * decay_rate ** (i / decay_steps)` (no staircase).

    Example:
        >>> from nanofn.example_libraries import optimizers
        >>> float(optimizers.exponential_decay(1.0, 10, 0.5)(20))
        0.25
    """
    def schedule(i):
        return step_size * decay_rate ** (i / decay_steps)
    return schedule


def inverse_time_decay(step_size, decay_steps, decay_rate, staircase=False):
    """The schedule `i -> step_size / (1 + decay_rate * i / decay_steps)`; with
    `staircase=True`, `i / decay_steps` is floored."""
    if staircase:
        def schedule(i):
            return step_size / (1 + decay_rate * jnp.floor(i / decay_steps))
    else:
        def schedule(i):
            return step_size / (1 + decay_rate * i / decay_steps)
    return schedule


def polynomial_decay(step_size, decay_steps, final_step_size, power=1.0):
    """From `step_size` to `final_step_size` over `decay_steps` steps as
    `(1 - i / decay_steps) ** power`, then constant."""
    def schedule(step_num):
        step_num = jnp.minimum(step_num, decay_steps)
        step_mult = (1 - step_num / decay_steps) ** power
        return step_mult * (step_size - final_step_size) + final_step_size
    return schedule


def piecewise_constant(boundaries: Any, values: Any):
    """`values[k]` where `k` is the number of `boundaries` strictly below the step.

    Example:
        >>> from nanofn.example_libraries import optimizers
        >>> s = optimizers.piecewise_constant([10, 20], [1.0, 0.5, 0.1])
        >>> [float(s(i)) for i in (0, 10, 11, 21)]
        [1.0, 1.0, 0.5, 0.10000000149011612]
    """
    boundaries = jnp.array(boundaries)
    values = jnp.array(values)
    if not boundaries.ndim == values.ndim == 1:
        raise ValueError("piecewise_constant: boundaries and values must be sequences, got "
                         f"shapes {boundaries.shape} and {values.shape}")
    if not boundaries.shape[0] == values.shape[0] - 1:
        raise ValueError("piecewise_constant: boundaries length must be one shorter than "
                         f"values length, got {boundaries.shape[0]} and {values.shape[0]}")

    def schedule(i):
        return values[jnp.sum(i > boundaries)]
    return schedule


def make_schedule(scalar_or_schedule) -> Schedule:
    """A schedule from a callable (returned as is) or a scalar (a constant schedule)."""
    if callable(scalar_or_schedule):
        return scalar_or_schedule
    if jnp.asarray(scalar_or_schedule).ndim == 0:
        return constant(scalar_or_schedule)
    raise TypeError(f"make_schedule: expected a scalar or a callable step size, got "
                    f"{type(scalar_or_schedule).__name__}")


# ---------------------------------------------------------------------- utilities

def l2_norm(tree):
    """The l2 norm of a pytree of arrays (all leaves together).

    Example:
        >>> import nanofn
        >>> from nanofn.example_libraries import optimizers
        >>> optimizers.l2_norm((nanofn.numpy.array([3.0]), nanofn.numpy.array([4.0])))
        Array(5., dtype=float32)
    """
    leaves = _tree.leaves(tree)
    return jnp.sqrt(sum(jnp.vdot(x, x) for x in leaves))


def clip_grads(grad_tree, max_norm):
    """Scale a pytree of gradients down so that its l2 norm is at most `max_norm`."""
    norm = l2_norm(grad_tree)
    normalize = lambda g: jnp.where(norm < max_norm, g, g * (max_norm / norm))
    return _tree.map(normalize, grad_tree)


# ---------------------------------------------------------- serialisation helpers

class JoinPoint:
    """Marks the boundary between two joined (nested) pytrees."""

    def __init__(self, subtree):
        self.subtree = subtree

    def __iter__(self):  # pytrees are containers of arrays, so look iterable
        yield self.subtree


def unpack_optimizer_state(opt_state):
    """An `OptimizerState` as a pytree shaped like the params whose leaves are
    `JoinPoint`s holding each leaf's state, e.g. for pickling.

    Example:
        >>> import nanofn
        >>> from nanofn.example_libraries import optimizers
        >>> init, update, get_params = optimizers.adam(0.1)
        >>> state = init({"w": nanofn.numpy.ones(2)})
        >>> marked = optimizers.unpack_optimizer_state(state)
        >>> type(marked["w"]).__name__
        'JoinPoint'
        >>> back = optimizers.pack_optimizer_state(marked)
        >>> back.tree_def == state.tree_def
        True
    """
    states_flat, tree_def, subtree_defs = opt_state
    subtrees = map(_tree.unflatten, subtree_defs, states_flat)
    return _tree.unflatten(tree_def, [JoinPoint(s) for s in subtrees])


def pack_optimizer_state(marked_pytree):
    """The inverse of `unpack_optimizer_state`."""
    sentinels, tree_def = _tree.flatten(marked_pytree)
    if not all(isinstance(s, JoinPoint) for s in sentinels):
        raise TypeError("pack_optimizer_state: every leaf of marked_pytree must be a "
                        "JoinPoint (as made by unpack_optimizer_state)")
    subtrees = [s.subtree for s in sentinels]
    states_flat, subtree_defs = _unzip2(map(_tree.flatten, subtrees))
    return OptimizerState(states_flat, tree_def, subtree_defs)
