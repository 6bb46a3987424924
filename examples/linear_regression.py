"""Fit y = w x + b by gradient descent with `T.grad`, and print the recovered weights.

    python examples/linear_regression.py                # recovers w = 3, b = -2 (noise 0.5)
    python examples/linear_regression.py --plot fit.png
    python examples/linear_regression.py --fast         # a few steps (used by the tests)

The data are drawn with `transforms.random`; the loss is the mean squared error; the update is
plain gradient descent on the pytree `{'w': ..., 'b': ...}`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import fnn
import transforms as T
from transforms import random, tree

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from progress import Progress  # noqa: E402


def make_data(key, n, true_w, true_b, noise):
    kx, kn = random.split(key)
    x = random.uniform(kx, (n,), minval=-2.0, maxval=2.0)
    y = true_w * x + true_b + noise * random.normal(kn, (n,))
    return np.asarray(x), np.asarray(y)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=300, help="optimisation steps")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate")
    p.add_argument("--n", type=int, default=200, help="training points")
    p.add_argument("--noise", type=float, default=0.5, help="standard deviation of the label noise")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--plot", metavar="FILE", help="write the fit and loss curve to this PNG")
    p.add_argument("--fast", action="store_true", help="a few steps only (for tests)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    true_w, true_b = 3.0, -2.0
    k_train, k_test = random.split(random.key(args.seed))
    x, y = make_data(k_train, args.n, true_w, true_b, args.noise)
    x_test, y_test = make_data(k_test, 1000, true_w, true_b, args.noise)

    def loss_fn(params, x, y):
        return fnn.losses.mse(params["w"] * x + params["b"], y)

    grad_fn = T.jit(T.grad(loss_fn))

    params = {"w": np.float32(0.0), "b": np.float32(0.0)}
    steps = 20 if args.fast else args.steps
    losses = []
    t0 = time.perf_counter()
    every = max(1, steps // 10)     # without a terminal: ten progress lines
    with Progress(steps, "linear regression") as bar:
        for i in range(steps):
            losses.append(float(loss_fn(params, x, y)))
            g = grad_fn(params, x, y)
            params = tree.map(lambda p, g: (p - args.lr * g).astype(np.float32), params, g)
            bar.step(loss=f"{losses[-1]:.4f}")
            if (i + 1) % every == 0 or i + 1 == steps:
                bar.epoch(label=f"step {i + 1}")
    seconds = time.perf_counter() - t0
    test_mse = float(loss_fn(params, x_test, y_test))
    w, b = float(params["w"]), float(params["b"])
    print(f"recovered w = {w:.4f} (true {true_w}), b = {b:.4f} (true {true_b})")
    print(f"test MSE: {test_mse:.4f} (noise variance {args.noise ** 2:.4f}); "
          f"{steps} steps in {seconds:.2f} s")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        ax1.scatter(x, y, s=6, alpha=0.5, label="data")
        grid = np.linspace(-2, 2, 50)
        ax1.plot(grid, w * grid + b, "r", label=f"fit: {w:.2f} x + {b:.2f}")
        ax1.legend()
        ax2.plot(losses)
        ax2.set_yscale("log")
        ax2.set_xlabel("step")
        ax2.set_ylabel("training MSE")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        plt.close(fig)
        print(f"wrote {args.plot}")
    return {"losses": losses, "w": w, "b": b, "test_mse": test_mse, "seconds": seconds}


if __name__ == "__main__":
    main()
