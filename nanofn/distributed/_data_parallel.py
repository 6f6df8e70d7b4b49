"""`data_parallel`: a training step whose batch is split over processes.

Every process holds the same parameters and its own rows of the global batch. A step
computes the local loss and gradient, averages the gradients over the processes with one
`pmean` (a psum of every leaf: the device group packs them into few MPI messages), and
applies the optimizer, so the parameters stay equal everywhere and the run equals a
one-process run on the global batch.

`shard_optimizer=True` is ZeRO stage 1: the optimizer state is split over the processes.
The gradients are reduce-scattered (`psum_scatter`) instead of all-reduced, so each
process receives the averaged gradient of its slice of the parameters only (its rows of
every leaf, along the first axis), updates that slice with its slice of the optimizer
state, and the new parameters are all-gathered. Communication is the same volume as an allreduce; the optimizer's work and
memory are divided by the number of processes. The optimizer must act elementwise (sgd,
momentum, adam, adamw, ...): one that looks at all parameters at once, such as
`clip_by_global_norm`, would see only its slice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from nanofn import _named_axes
from nanofn.distributed._state import world_group
from nanofn.tree_util import tree_flatten, tree_unflatten

# Leaves with at least this many elements are sharded by `shard_optimizer=True`; smaller
# ones are updated in full on every process.
SHARD_MIN_ELEMENTS = 1 << 15


class DataParallelState(NamedTuple):
    params: Any     # the full parameters (the same on every process)
    opt_state: Any  # the optimizer state: of every parameter, or of this process's slice


class DataParallel(NamedTuple):
    init: Callable   # init(params) -> DataParallelState
    step: Callable   # step(state, *batch) -> (state, loss)


def _on_group(fun, axis_name):
    """jit `fun` and run it with `axis_name` bound to the process group (SPMD: every
    process calls it with its own data, as inside `pmap`, without a device axis). `jit`
    reads the caller's numpy arrays (a batch) where they are, without copying them."""
    from nanofn._jit import jit
    runners = {}  # per process group: its axis frame, and `fun` jitted for it (a plan
    # records the device axis it was traced with, so a new group traces again)

    def run(*args):
        group = world_group()
        frame, compiled = runners.get(id(group), (None, None))
        if frame is None or frame.group is not group:
            frame = _named_axes.AxisFrame(axis_name, group.size, group=group)
            compiled = jit(fun)
            runners[id(group)] = frame, compiled
        with _named_axes.extend_axis_env(frame):
            return compiled(*args)
    return run


def data_parallel(loss_fn, optimizer, *, axis_name="batch", shard_optimizer=False):
    """A data-parallel training step over every process (one process without MPI).

    Args:
        loss_fn: `loss_fn(params, *batch) -> scalar`, the mean loss over the batch rows it
            gets (this process's shard, e.g. from `shard_batch`). Shards must be of equal
            size, so that the mean of the shards' means is the global mean.
        optimizer: a `nanofn.optim.GradientTransformation`.
        axis_name: the axis name the step binds (collectives in `loss_fn` may use it).
        shard_optimizer: split the optimizer state and update over the processes (ZeRO-1;
            see the module docstring). Needs an elementwise optimizer.

    Returns:
        `DataParallel(init, step)`: `init(params) -> state` and
        `step(state, *batch) -> (state, loss)`, with `loss` the global mean loss.

    Example:
        >>> import nanofn, nanofn.numpy as fnp, numpy as np
        >>> loss = lambda w, x: fnp.mean((x * w - 1.0) ** 2)
        >>> dp = nanofn.distributed.data_parallel(loss, nanofn.optim.sgd(0.1))
        >>> state = dp.init(fnp.zeros(()))
        >>> state, l = dp.step(state, np.ones(4, np.float32))
        >>> float(l), float(state.params)
        (1.0, 0.2)
    """
    import nanofn.numpy as fnp
    from nanofn import lax, optim
    from nanofn._ad import value_and_grad

    def local_grads(params, batch):
        # The gradient of loss / n, summed over the processes, is the mean gradient: the
        # 1/n scales the backward pass's scalar seed instead of every gradient element.
        n = lax.axis_size(axis_name)
        return value_and_grad(lambda p: loss_fn(p, *batch) / n)(params)

    def full_step(params, opt_state, *batch):
        # one psum of the loss and every gradient leaf: a few (bucketed) messages
        loss, grads = lax.psum(local_grads(params, batch), axis_name)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    if not shard_optimizer:
        run = _on_group(full_step, axis_name)

        def init(params):
            return DataParallelState(params, optimizer.init(params))

        def step(state, *batch):
            params, opt_state, loss = run(state.params, state.opt_state, *batch)
            return DataParallelState(params, opt_state), loss
        return DataParallel(init, step)

    # ZeRO-1, leaf by leaf: process r owns rows [r*k, (r+1)*k) of every large leaf (axis
    # 0, zero-padded to a multiple of n), so no leaf is copied into a flat buffer. Small
    # leaves (biases) are summed with the loss in one message and updated in full on
    # every process: sharding them would cost two collectives each and save nothing.
    # The optimizer sees one pytree: (small leaves in full, this process's rows of the
    # large ones); being elementwise, it treats both alike.
    def rows_per_process(x, n):
        return -(-(np.shape(x)[0] if np.ndim(x) else 1) // n)

    def padded(x, n):
        extra = rows_per_process(x, n) * n - x.shape[0]
        if extra:
            x = fnp.concatenate([x, fnp.zeros((extra,) + x.shape[1:], x.dtype)])
        return x

    def split(leaves):
        big = [i for i, x in enumerate(leaves) if np.size(x) >= SHARD_MIN_ELEMENTS]
        small = [i for i in range(len(leaves)) if i not in big]
        return small, big

    def sharded_step(params, opt_state, *batch):
        n = lax.axis_size(axis_name)
        loss, grads = local_grads(params, batch)
        p_leaves, tree = tree_flatten(params)
        g_leaves = tree_flatten(grads)[0]
        small, big = split(p_leaves)
        loss, g_small = lax.psum((loss, [g_leaves[i] for i in small]), axis_name)
        g_big = [lax.psum_scatter(padded(g_leaves[i], n), axis_name, tiled=True) for i in big]
        me = lax.axis_index(axis_name)
        p_big = [lax.dynamic_slice_in_dim(padded(p_leaves[i], n),
                                          me * rows_per_process(p_leaves[i], n),
                                          rows_per_process(p_leaves[i], n)) for i in big]
        p_small = [p_leaves[i] for i in small]
        updates, opt_state = optimizer.update((g_small, g_big), opt_state, (p_small, p_big))
        p_small, p_big = optim.apply_updates((p_small, p_big), updates)
        new = list(p_leaves)
        for i, p in zip(small, p_small):
            new[i] = p
        for i, p in zip(big, p_big):
            full = lax.all_gather(p, axis_name, tiled=True)
            rows = np.shape(p_leaves[i])[0]
            new[i] = full[:rows] if full.shape[0] != rows else full
        return tree_unflatten(tree, new), opt_state, loss

    run = _on_group(sharded_step, axis_name)

    def init(params):
        group = world_group()
        n, r = group.size, group.rank
        leaves = [np.asarray(x) for x in tree_flatten(params)[0]]
        small, big = split(leaves)

        def mine(p):
            k = rows_per_process(p, n)
            rows = p[r * k:(r + 1) * k]
            if rows.shape[0] < k:  # the padding rows of the last processes
                rows = np.concatenate([rows, np.zeros((k - rows.shape[0],) + p.shape[1:],
                                                      p.dtype)])
            return fnp.asarray(rows)
        mine_tree = ([fnp.asarray(leaves[i]) for i in small], [mine(leaves[i]) for i in big])
        return DataParallelState(params, optimizer.init(mine_tree))

    def step(state, *batch):
        params, opt_state, loss = run(state.params, state.opt_state, *batch)
        return DataParallelState(params, opt_state), loss
    return DataParallel(init, step)
