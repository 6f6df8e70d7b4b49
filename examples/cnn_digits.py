"""Train a small convolutional network with batch normalisation on the 8x8 digits.

Three 3x3 convolutions (16, 32, 64 channels), each followed by BatchNorm and ReLU, two
2x2 max-pools, dropout and a dense classifier. BatchNorm keeps running statistics in the
model's *state*, which the training step threads explicitly:

    out, state = apply(params, x, state=state, rng=key, training=True)   # train
    out, _ = apply(params, x, state=state)                               # evaluate

Training uses `nanofn.optim.adam` on the fixed "train" split with minibatches shuffled
by `nanofn.random` keys; the score is on the held-out "test" split.

    python examples/cnn_digits.py              # 6 epochs: about 98-99% test accuracy
    python examples/cnn_digits.py --fast       # 2 epochs, for CI
    python examples/cnn_digits.py --plot curves.png --profile   # curves (needs matplotlib), step profile
"""

import argparse
import time

import numpy as np
from tqdm import tqdm

import nanofn
import nanofn.numpy as jnp
from nanofn import nn, optim, profiler, random, viz
from nanofn.data import batches, load_digits, shifted_copies


def make_model():
    def block(channels):
        return [nn.Conv(channels, (3, 3), padding="SAME"), nn.BatchNorm(momentum=0.9), nn.Relu]
    return nn.serial(
        *block(16), *block(32), nn.MaxPool((2, 2), strides=(2, 2)),   # 8x8 -> 4x4
        *block(64), nn.MaxPool((2, 2), strides=(2, 2)),               # 4x4 -> 2x2
        nn.Flatten, nn.Dropout(0.5), nn.Dense(10))


def main(epochs=6, batch_size=64, learning_rate=2e-3, seed=0, verbose=True, profile=False):
    """Trains the CNN; returns a dict with the per-step losses and the test accuracy."""
    x_train, y_train = shifted_copies(*load_digits("train"))  # + one-pixel shifts
    x_test, y_test = load_digits("test")
    x_train, x_test = x_train[..., None], x_test[..., None]  # NHWC with one channel

    model = make_model()
    init, apply = model
    key = random.key(seed)
    key, init_key = random.split(key)
    _, params = init(init_key, (-1, 8, 8, 1))
    _, state = model.init_state((-1, 8, 8, 1))
    steps = epochs * (len(x_train) // batch_size)
    opt = optim.adam(optim.cosine_decay_schedule(learning_rate, steps))
    opt_state = opt.init(params)

    def loss_fn(params, state, x, y, key):
        logits, state = apply(params, x, state=state, rng=key, training=True)
        loss = nn.losses.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, state

    @nanofn.jit
    def train_step(params, state, opt_state, x, y, key):
        (loss, state), grads = nanofn.value_and_grad(loss_fn, has_aux=True)(
            params, state, x, y, key)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), state, opt_state, loss

    @nanofn.jit
    def predict(params, state, x):
        logits, _ = apply(params, x, state=state)  # evaluation: running statistics
        return jnp.argmax(logits, axis=-1)

    start = time.perf_counter()
    losses, test_accuracy = [], []
    bar = tqdm(total=epochs * (len(x_train) // batch_size), disable=not verbose, unit="step")
    for epoch in range(epochs):
        key, shuffle_key = random.split(key)
        for i, (xb, yb) in enumerate(batches((x_train, y_train), batch_size, key=shuffle_key,
                                             drop_last=True)):
            params, state, opt_state, loss = train_step(params, state, opt_state, xb, yb,
                                                        random.fold_in(shuffle_key, i))
            losses.append(float(loss))
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.4f}", refresh=False)
        test_accuracy.append(float(np.mean(np.asarray(predict(params, state, x_test)) == y_test)))
    bar.close()
    accuracy = test_accuracy[-1]
    elapsed = time.perf_counter() - start
    if verbose:
        print(f"test accuracy: {accuracy:.4f} ({len(y_test)} held-out images), "
              f"trained {len(losses)} steps in {elapsed:.1f}s")
    if profile:  # where one training step's time goes, from the jit plan itself
        print(profiler.profile(train_step, params, state, opt_state, xb, yb, random.fold_in(shuffle_key, i)))
    return {"losses": losses, "test_accuracy": accuracy, "test_accuracy_per_epoch": test_accuracy, "params": params, "state": state,
            "seconds": elapsed}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", action="store_true", help="2 epochs (a quick check)")
    parser.add_argument("--plot", metavar="FILE.png", help="write the training and test curves")
    parser.add_argument("--profile", action="store_true",
                        help="print where a training step's time goes")
    args = parser.parse_args()
    result = main(epochs=2 if args.fast else args.epochs, batch_size=args.batch_size,
                  learning_rate=args.lr, seed=args.seed, profile=args.profile)
    if args.plot:
        epochs = range(1, len(result["test_accuracy_per_epoch"]) + 1)
        viz.plot_curves(args.plot, {"train loss (per step)": result["losses"],
                                    "test accuracy (per epoch)":
                                        (epochs, result["test_accuracy_per_epoch"])},
                        title=__doc__.splitlines()[0])
        print(f"curves written to {args.plot}")
