"""`data_parallel`: a training step whose batch is split over processes.

Every process holds the same parameters and its own rows of the global batch. A step
computes the local loss and gradient, averages the gradients over the processes with one
`pmean` (a psum of every leaf: the device group packs them into few MPI messages), and
applies the optimizer, so the parameters stay equal everywhere and the run equals a
one-process run on the global batch.

`shard_optimizer=True` is ZeRO stage 1: the optimizer state is split over the processes.
The gradients are reduce-scattered (`psum_scatter`) instead of all-reduced, so each
process receives the averaged gradient of its slice of the (flattened) parameters only,
updates that slice with its slice of the optimizer state, and the new parameters are
all-gathered. Communication is the same volume as an allreduce; the optimizer's work and
memory are divided by the number of processes. The optimizer must act elementwise (sgd,
momentum, adam, adamw, ...): one that looks at all parameters at once, such as
`clip_by_global_norm`, would see only its slice.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import numpy as np

from nanofn import _named_axes
from nanofn.distributed._state import world_group


class DataParallelState(NamedTuple):
    params: Any     # the full parameters (the same on every process)
    opt_state: Any  # the optimizer state: of every parameter, or of this process's slice


class DataParallel(NamedTuple):
    init: Callable   # init(params) -> DataParallelState
    step: Callable   # step(state, *batch) -> (state, loss)


def _on_group(fun, axis_name):
    """jit `fun` and run it with `axis_name` bound to the process group (SPMD: every
    process calls it with its own data, as inside `pmap`, without a device axis)."""
    from nanofn._jit import jit
    compiled = jit(fun)

    def run(*args):
        group = world_group()
        with _named_axes.extend_axis_env(_named_axes.AxisFrame(axis_name, group.size,
                                                               group=group)):
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
            see the module docstring). Needs parameters of one float dtype and an
            elementwise optimizer.

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
    from nanofn import lax, optim
    from nanofn._ad import value_and_grad
    import nanofn.numpy as fnp
    from nanofn.tree_util import tree_flatten, tree_unflatten

    def full_step(params, opt_state, *batch):
        loss, grads = value_and_grad(loss_fn)(params, *batch)
        loss, grads = lax.pmean((loss, grads), axis_name)
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

    layout = {}

    def plan(params):
        leaves, tree = tree_flatten(params)
        dtypes = {np.dtype(getattr(x, "dtype", np.float32)) for x in leaves}
        if len(dtypes) != 1 or not np.issubdtype(next(iter(dtypes)), np.floating):
            raise TypeError("data_parallel(shard_optimizer=True) needs parameters of one float "
                            f"dtype, got {sorted(d.name for d in dtypes)}")
        n = world_group().size
        shapes = [tuple(np.shape(x)) for x in leaves]
        total = sum(math.prod(s) for s in shapes)
        layout.update(tree=tree, shapes=shapes, total=total, chunk=-(-total // n), n=n)

    def flat(leaves):
        pad = layout["chunk"] * layout["n"] - layout["total"]
        parts = [fnp.ravel(x) for x in leaves]
        if pad:
            parts.append(fnp.zeros(pad, parts[0].dtype))
        return fnp.concatenate(parts)

    def unflat(vec):
        out, offset = [], 0
        for shape in layout["shapes"]:
            size = math.prod(shape)
            out.append(fnp.reshape(vec[offset:offset + size], shape))
            offset += size
        return tree_unflatten(layout["tree"], out)

    def sharded_step(params, opt_state, *batch):
        loss, grads = value_and_grad(loss_fn)(params, *batch)
        loss = lax.pmean(loss, axis_name)
        n, chunk = layout["n"], layout["chunk"]
        g_mine = lax.psum_scatter(flat(tree_flatten(grads)[0]), axis_name, tiled=True)
        g_mine = g_mine * np.asarray(1.0 / n, g_mine.dtype)
        p_mine = lax.dynamic_slice_in_dim(flat(tree_flatten(params)[0]),
                                          lax.axis_index(axis_name) * chunk, chunk)
        updates, opt_state = optimizer.update(g_mine, opt_state, p_mine)
        p_mine = optim.apply_updates(p_mine, updates)
        p_all = lax.all_gather(p_mine, axis_name, tiled=True)
        return unflat(p_all), opt_state, loss

    run = _on_group(sharded_step, axis_name)

    def init(params):
        plan(params)
        leaves = tree_flatten(params)[0]
        vec = np.concatenate([np.ravel(np.asarray(x)) for x in leaves] +
                             [np.zeros(layout["chunk"] * layout["n"] - layout["total"],
                                       np.asarray(leaves[0]).dtype)])
        rank, chunk = world_group().rank, layout["chunk"]
        mine = fnp.asarray(vec[rank * chunk:(rank + 1) * chunk])
        return DataParallelState(params, optimizer.init(mine))

    def step(state, *batch):
        if not layout:
            plan(state.params)
        params, opt_state, loss = run(state.params, state.opt_state, *batch)
        return DataParallelState(params, opt_state), loss
    return DataParallel(init, step)
