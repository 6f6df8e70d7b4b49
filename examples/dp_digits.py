"""Data-parallel training of the digits MLP over MPI processes.

The same 64-512-10 MLP and data as `mlp_digits.py`, trained with
`nanofn.distributed.data_parallel`: every process draws the same global batch (the same
shuffling key), keeps its rows (`shard_batch`), computes its gradient, and the gradients
are averaged over the processes with one allreduce per step. The loss curve equals the
one-process run on the same global batch (up to float32 rounding).

    python examples/dp_digits.py                       # one process
    mpiexec -n 2 python examples/dp_digits.py          # two processes, same curve
    mpiexec -n 2 python examples/dp_digits.py --shard-optimizer   # ZeRO-1 Adam
    mpiexec -n 2 python examples/dp_digits.py --checkpoint run.npz   # resumable

With `--checkpoint`, process 0 saves the training state every `--every` steps and a
restarted run resumes from it with the same result as an uninterrupted one.
"""

import argparse
import os
import time

import numpy as np

import nanofn
import nanofn.numpy as jnp
from nanofn import distributed as dist
from nanofn import nn, optim, random
from nanofn.data import batches, load_digits, shifted_copies


def make_model():
    """64 pixels -> 512 hidden units (ReLU) -> 10 class scores."""
    return nn.serial(nn.Dense(512), nn.Relu, nn.Dense(10))


def _launched_by_mpi():
    return any(os.environ.get(v) for v in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE"))


def main(epochs=3, batch_size=128, learning_rate=3e-3, seed=0, steps=None,
         shard_optimizer=False, checkpoint=None, every=10, verbose=True, on_step=None):
    """Trains the MLP on every process; returns the global per-step losses, the test
    accuracy and the final parameters (the same on every process)."""
    if _launched_by_mpi() and not dist.is_initialized():
        dist.initialize()
    if checkpoint and shard_optimizer:
        raise ValueError("this example checkpoints the full optimizer state: use "
                         "--checkpoint without --shard-optimizer")
    x_train, y_train = shifted_copies(*load_digits("train"))
    x_train = x_train.reshape(-1, 64)
    x_test, y_test = load_digits("test", flatten=True)
    per_epoch = len(x_train) // batch_size
    total = epochs * per_epoch if steps is None else steps

    init, apply = make_model()
    key = random.key(seed)
    key, init_key = random.split(key)
    _, params = init(init_key, (-1, 64))
    opt = optim.adam(optim.cosine_decay_schedule(learning_rate, total))

    def loss_fn(params, x, y):
        logits = apply(params, x)
        return nn.losses.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    dp = dist.data_parallel(loss_fn, opt, shard_optimizer=shard_optimizer)
    state, losses, start_step = dp.init(params), [], 0
    if checkpoint and os.path.exists(checkpoint):
        saved = dist.load_checkpoint(checkpoint)
        to_arrays = lambda t: nanofn.tree.map(jnp.asarray, t)
        state = dist.DataParallelState(to_arrays(saved["params"]), to_arrays(saved["opt_state"]))
        state = state._replace(opt_state=nanofn.tree.unflatten(
            nanofn.tree.structure(dp.init(params).opt_state), nanofn.tree.leaves(state.opt_state)))
        losses, start_step = list(saved["losses"]), int(saved["step"])
        dist.print_main(f"resumed from {checkpoint} at step {start_step}")

    @nanofn.jit
    def predict(params, x):
        return jnp.argmax(apply(params, x), axis=-1)

    begin = time.perf_counter()
    bar = dist.progress(total=total, initial=start_step, disable=not verbose, unit="step")
    step = 0
    for epoch in range(-(-total // per_epoch)):
        shuffle_key = random.fold_in(key, epoch)  # the same global batches on every process
        for xb, yb in batches((x_train, y_train), batch_size, key=shuffle_key, drop_last=True):
            if step >= total:
                break
            if step >= start_step:
                state, loss = dp.step(state, *dist.shard_batch((xb, yb)))
                losses.append(float(loss))
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.4f}", refresh=False)
                if checkpoint and (step + 1) % every == 0:
                    dist.save_checkpoint(checkpoint, {
                        "params": state.params, "opt_state": nanofn.tree.leaves(state.opt_state),
                        "losses": np.array(losses), "step": step + 1})
                if on_step is not None:
                    on_step(step + 1)
            step += 1
    bar.close()
    accuracy = float(np.mean(np.asarray(predict(state.params, x_test)) == y_test))
    if verbose:
        dist.print_main(f"test accuracy: {accuracy:.4f} on {nanofn.process_count()} "
                        f"process(es), {len(losses)} steps in {time.perf_counter() - begin:.1f}s")
    return {"losses": losses, "test_accuracy": accuracy, "params": state.params}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shard-optimizer", action="store_true")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--losses", default=None, help="write the loss curve here (.npy)")
    parser.add_argument("--fast", action="store_true", help="1 epoch (a quick check)")
    args = parser.parse_args()
    result = main(epochs=1 if args.fast else args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                  seed=args.seed, steps=args.steps, shard_optimizer=args.shard_optimizer,
                  checkpoint=args.checkpoint, every=args.every)
    if args.losses and dist.is_main_process():
        np.save(args.losses, np.array(result["losses"]))
