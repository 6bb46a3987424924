"""A multi-layer perceptron on scikit-learn's bundled 8x8 handwritten digits.

    python examples/digits_mlp.py                       # Adam, ReLU: >= 97% test accuracy
    python examples/digits_mlp.py --optimizer momentum --activation tanh
    python examples/digits_mlp.py --plot curves.png     # training curves as a PNG
    python examples/digits_mlp.py --fast                # a few steps (used by the tests)

The whole training step (forward, backward, optimiser update) is one jitted function of
pytrees: `params, opt_state, loss = train_step(params, opt_state, x, y)`.
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
from progress import Progress  # noqa: E402

ACTIVATIONS = {"relu": fnn.relu, "tanh": fnn.tanh, "sigmoid": fnn.sigmoid}
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.03, "adam": 2e-3, "rmsprop": 1e-3}


def _digits_arrays():
    """scikit-learn's 8x8 digits (1797 images) as (float32 data, int32 labels). Read from the
    CSV file that scikit-learn ships when it is where expected: importing `sklearn.datasets`
    costs seconds per process, which every process of an MPI launch would pay."""
    import gzip
    import importlib.util
    import os
    spec = importlib.util.find_spec("sklearn")          # finds the package without importing it
    name = os.path.join(os.path.dirname(spec.origin), "datasets", "data", "digits.csv.gz") \
        if spec is not None and spec.origin else None
    if name is not None and os.path.exists(name):
        with gzip.open(name, "rt") as f:
            data = np.loadtxt(f, delimiter=",")
        return data[:, :-1].astype(np.float32), data[:, -1].astype(np.int32)
    from sklearn.datasets import load_digits as sk_load_digits
    d = sk_load_digits()
    return d.data.astype(np.float32), d.target.astype(np.int32)


def load_digits(seed=0, test_fraction=0.2, scaling="standardize"):
    """Digits as float32, split into train and test by a fixed permutation. `scaling`:
    'standardize' (each pixel to mean 0 / std 1 over the training set) or 'unit' (x / 16,
    so the background stays 0: what a convolution wants)."""
    x, y = _digits_arrays()
    perm = np.asarray(random.permutation(random.key(seed), len(x)))
    n_test = int(round(len(x) * test_fraction))
    test, train = perm[:n_test], perm[n_test:]
    if scaling == "unit":
        x = x / np.float32(16.0)
    else:
        mean, std = x[train].mean(0), x[train].std(0)
        std[std == 0] = 1.0
        x = (x - mean) / std
    return (x[train], y[train]), (x[test], y[test])


def make_optimizer(name, learning_rate=None, total_steps=None):
    """`name` with its default learning rate (or `learning_rate`), decayed along a cosine to
    5% of its value over `total_steps` when given."""
    lr = DEFAULT_LR[name] if learning_rate is None else learning_rate
    if total_steps:
        lr = optim.cosine_decay_schedule(lr, total_steps, alpha=0.05)
    if name == "sgd":
        return optim.sgd(lr)
    if name == "momentum":
        return optim.sgd(lr, momentum=0.9)
    if name == "adam":
        return optim.adam(lr)
    if name == "rmsprop":
        return optim.rmsprop(lr)
    raise ValueError(f"unknown optimizer {name!r}")


def add_common_args(p):
    """The options every digits example takes: --seed, --plot FILE, --fast."""
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--plot", metavar="FILE", help="write training curves to this PNG file")
    p.add_argument("--fast", action="store_true", help="a few steps only (for tests)")


def plot_curves(path, title, losses, accuracies, acc_label="test accuracy"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(losses, lw=0.8)
    ax1.set_xlabel("step")
    ax1.set_ylabel("training loss")
    ax1.set_yscale("log")
    ax2.plot(np.arange(1, len(accuracies) + 1), accuracies, marker="o")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel(acc_label)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu",
                   help="hidden-layer activation")
    p.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="adam", help="optimiser")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: per optimizer)")
    p.add_argument("--epochs", type=int, default=30, help="passes over the training data")
    p.add_argument("--batch-size", type=int, default=64, help="examples per step")
    p.add_argument("--hidden", type=int, default=128, help="hidden units per layer")
    add_common_args(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    (x_train, y_train), (x_test, y_test) = load_digits()
    act = ACTIVATIONS[args.activation]
    model = fnn.Sequential([fnn.Dense(args.hidden), act, fnn.Dense(args.hidden), act,
                            fnn.Dense(10)])
    init_key, data_key = random.split(random.key(args.seed))
    params, state = model.init(init_key, x_train[:1])
    epochs = 1 if args.fast else args.epochs
    steps_per_epoch = len(x_train) // args.batch_size
    max_steps = 12 if args.fast else epochs * steps_per_epoch
    opt = make_optimizer(args.optimizer, args.lr, max_steps)
    opt_state = opt.init(params)

    def loss_fn(params, x, y):
        logits, _ = model.apply(params, state, x)
        return fnn.losses.cross_entropy(logits, y)

    @T.jit
    def train_step(params, opt_state, x, y):
        loss, grads = T.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    @T.jit
    def accuracy(params, x, y):
        logits, _ = model.apply(params, state, x)
        return tnp.mean(tnp.argmax(logits, axis=-1) == y)

    losses, test_accs = [], []
    t0 = time.perf_counter()
    with Progress(max_steps, f"mlp/{args.optimizer}/{args.activation}", epochs) as bar:
        for epoch in range(epochs):
            for xb, yb in fnn.data.batches((x_train, y_train), args.batch_size,
                                           key=random.fold_in(data_key, epoch), drop_last=True):
                if len(losses) >= max_steps:
                    break
                params, opt_state, loss = train_step(params, opt_state, xb, yb)
                losses.append(float(loss))
                bar.step(loss=f"{losses[-1]:.4f}")
            test_accs.append(float(accuracy(params, x_test, y_test)))
            bar.epoch(test_acc=f"{test_accs[-1]:.4f}")
    seconds = time.perf_counter() - t0
    train_acc = float(accuracy(params, x_train, y_train))
    print(f"train accuracy: {train_acc:.4f}")
    print(f"test accuracy: {test_accs[-1]:.4f}  ({len(losses)} steps in {seconds:.1f} s)")
    if args.plot:
        plot_curves(args.plot, f"digits MLP ({args.optimizer}, {args.activation})", losses,
                    test_accs)
    return {"losses": losses, "test_accuracy": test_accs[-1], "train_accuracy": train_acc,
            "test_accuracies": test_accs, "seconds": seconds, "params": params}


if __name__ == "__main__":
    main()
