"""A small convolutional network on scikit-learn's 8x8 digits (NHWC images).

    python examples/digits_cnn.py                       # >= 98% test accuracy
    python examples/digits_cnn.py --plot curves.png
    python examples/digits_cnn.py --fast                # a few steps (used by the tests)

conv 3x3x32 -> relu -> max-pool 2 -> conv 3x3x64 -> relu -> max-pool 2 -> dropout ->
dense 128 -> relu -> dense 10 -> log-softmax, trained with Adam (cosine-decayed learning rate)
on the negative log-likelihood. Pixels are scaled to [0, 1] (x / 16).
Dropout draws its mask from the step's PRNG key (`random.fold_in(key, step)`), so a run is
reproducible bit for bit.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import fnn
import transforms as T
import transforms.numpy as tnp
from fnn import optim
from transforms import random

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from digits_mlp import add_common_args, load_digits, plot_curves  # noqa: E402
from progress import Progress  # noqa: E402


def make_model(dropout=0.25, channels=(32, 64), hidden=128):
    return fnn.Sequential([
        fnn.Conv2D(channels[0], (3, 3)), fnn.relu, fnn.MaxPool((2, 2)),
        fnn.Conv2D(channels[1], (3, 3)), fnn.relu, fnn.MaxPool((2, 2)),
        fnn.Flatten(), fnn.Dropout(dropout),
        fnn.Dense(hidden), fnn.relu, fnn.Dense(10), fnn.log_softmax])


def shift_images(key, x):
    """Augmentation: move each image by up to one pixel in each direction (zero fill)."""
    n = x.shape[0]
    shifts = np.asarray(random.randint(key, (n, 2), -1, 2))
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    rows = 1 - shifts[:, 0, None] + np.arange(8)[None, :]            # (n, 8)
    cols = 1 - shifts[:, 1, None] + np.arange(8)[None, :]
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--epochs", type=int, default=15, help="passes over the training data")
    p.add_argument("--batch-size", type=int, default=32, help="examples per step")
    p.add_argument("--lr", type=float, default=2e-3, help="learning rate")
    p.add_argument("--dropout", type=float, default=0.25, help="dropout rate")
    p.add_argument("--channels", type=int, nargs=2, default=(32, 64),
                   help="channels of the two convolutions")
    p.add_argument("--hidden", type=int, default=128, help="hidden units per layer")
    p.add_argument("--augment", action="store_true",
                   help="shift training images by up to one pixel")
    add_common_args(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    (x_train, y_train), (x_test, y_test) = load_digits(scaling="unit")
    x_train = x_train.reshape(-1, 8, 8, 1)
    x_test = x_test.reshape(-1, 8, 8, 1)
    model = make_model(args.dropout, tuple(args.channels), args.hidden)
    init_key, data_key, drop_key = random.split(random.key(args.seed), 3)
    params, state = model.init(init_key, x_train[:1])
    epochs = 1 if args.fast else args.epochs
    max_steps = 30 if args.fast else epochs * (len(x_train) // args.batch_size)
    # the learning rate decays along a cosine to 5% of its initial value
    opt = optim.adam(optim.cosine_decay_schedule(args.lr, max_steps, alpha=0.05))
    opt_state = opt.init(params)

    def loss_fn(params, x, y, key):
        log_probs, _ = model.apply(params, state, x, key=key, train=True)
        return fnn.losses.nll(log_probs, y)

    @T.jit
    def train_step(params, opt_state, x, y, key):
        loss, grads = T.value_and_grad(loss_fn)(params, x, y, key)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    @T.jit
    def accuracy(params, x, y):
        log_probs, _ = model.apply(params, state, x, train=False)
        return tnp.mean(tnp.argmax(log_probs, axis=-1) == y)

    losses, test_accs = [], []
    t0 = time.perf_counter()
    with Progress(max_steps, "cnn/adam", epochs) as bar:
        for epoch in range(epochs):
            for xb, yb in fnn.data.batches((x_train, y_train), args.batch_size,
                                           key=random.fold_in(data_key, epoch), drop_last=True):
                if len(losses) >= max_steps:
                    break
                step_key = random.fold_in(drop_key, len(losses))
                if args.augment:
                    xb = shift_images(random.fold_in(step_key, 1), xb)
                params, opt_state, loss = train_step(params, opt_state, xb, yb, step_key)
                losses.append(float(loss))
                bar.step(loss=f"{losses[-1]:.4f}")
            test_accs.append(float(accuracy(params, x_test, y_test)))
            bar.epoch(test_acc=f"{test_accs[-1]:.4f}")
    seconds = time.perf_counter() - t0
    print(f"test accuracy: {test_accs[-1]:.4f}  ({len(losses)} steps in {seconds:.1f} s)")
    if args.plot:
        plot_curves(args.plot, "digits CNN (adam)", losses, test_accs)
    return {"losses": losses, "test_accuracy": test_accs[-1], "test_accuracies": test_accs,
            "seconds": seconds, "params": params}


if __name__ == "__main__":
    main()
