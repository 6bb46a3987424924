"""Per-example gradient clipping with `vmap(grad)`: differentially-private SGD on the digits.

    python examples/per_example_grads.py                # DP-SGD, clip norm 1, noise 1.0
    python examples/per_example_grads.py --plot dp.png
    python examples/per_example_grads.py --fast         # a few steps (used by the tests)

Each step (as in Abadi et al., 2016):
  1. per-example gradients g_i = grad(loss)(params, x_i, y_i), all at once with
     `vmap(grad(loss), in_axes=(None, 0, 0))`;
  2. clip each example's gradient to global norm C: g_i * min(1, C / |g_i|);
  3. sum, add Gaussian noise N(0, (sigma C)^2) to every coordinate, divide by the batch size;
  4. an optimiser step with that gradient.
The script first checks the vmapped per-example gradients against a Python loop of `grad`,
and at the end reports the privacy budget epsilon of the run at `--delta`, from the RDP
accountant of the subsampled Gaussian mechanism in `rdp_accountant.py` (sampling rate
q = batch / n, noise multiplier sigma, one composition per step; see that module for the
model and its caveat about shuffled rather than Poisson-sampled batches).
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
from transforms import random, tree

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from digits_mlp import add_common_args, load_digits, plot_curves  # noqa: E402
from progress import Progress  # noqa: E402
from rdp_accountant import epsilon as dp_epsilon  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--epochs", type=int, default=20, help="passes over the training data")
    p.add_argument("--batch-size", type=int, default=128, help="examples per step")
    p.add_argument("--lr", type=float, default=0.2, help="learning rate")
    p.add_argument("--clip", type=float, default=1.0, help="per-example gradient norm bound C")
    p.add_argument("--noise", type=float, default=1.0, help="noise multiplier sigma")
    p.add_argument("--delta", type=float, default=1e-5,
                   help="delta of the (epsilon, delta)-DP guarantee reported")
    add_common_args(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    (x_train, y_train), (x_test, y_test) = load_digits()
    model = fnn.Sequential([fnn.Dense(64), fnn.tanh, fnn.Dense(10)])
    init_key, data_key, noise_key = random.split(random.key(args.seed), 3)
    params, state = model.init(init_key, x_train[:1])
    opt = optim.sgd(args.lr, momentum=0.9)
    opt_state = opt.init(params)

    def example_loss(params, x, y):
        """The loss of ONE example (x: features, y: a label)."""
        logits, _ = model.apply(params, state, x[None])
        return fnn.losses.cross_entropy(logits[0], y)

    per_example_grads = T.vmap(T.grad(example_loss), in_axes=(None, 0, 0))

    # 0. vmap(grad) equals a loop of grad
    xb, yb = x_train[:8], y_train[:8]
    vg = per_example_grads(params, xb, yb)
    loop = [T.grad(example_loss)(params, xb[i], yb[i]) for i in range(len(xb))]
    max_diff = max(float(np.max(np.abs(np.asarray(a)[i] - np.asarray(b))))
                   for i, g in enumerate(loop)
                   for a, b in zip(tree.leaves(vg), tree.leaves(g)))
    print(f"vmap(grad) vs a loop of grad over {len(xb)} examples: max |diff| = {max_diff:.2e}")

    @T.jit
    def dp_step(params, opt_state, x, y, key):
        grads = per_example_grads(params, x, y)               # leaves: (batch, ...)
        leaves = tree.leaves(grads)
        sq = sum(tnp.sum(tnp.reshape(g * g, (g.shape[0], -1)), axis=1) for g in leaves)
        norms = tnp.sqrt(sq)                                    # (batch,)
        factor = tnp.minimum(1.0, args.clip / (norms + 1e-12))
        batch = x.shape[0]

        def privatise(i, g):
            scale = tnp.reshape(factor, (batch,) + (1,) * (g.ndim - 1))
            total = tnp.sum(g * scale, axis=0)
            noise = random.normal(random.fold_in(key, i), total.shape, total.dtype)
            return (total + args.noise * args.clip * noise) / batch

        flat, treedef = tree.flatten(grads)
        private = tree.unflatten(treedef, [privatise(i, g) for i, g in enumerate(flat)])
        updates, opt_state = opt.update(private, opt_state, params)
        logits, _ = model.apply(params, state, x)
        loss = fnn.losses.cross_entropy(logits, y)
        return optim.apply_updates(params, updates), opt_state, loss, tnp.mean(norms)

    @T.jit
    def accuracy(params, x, y):
        logits, _ = model.apply(params, state, x)
        return tnp.mean(tnp.argmax(logits, axis=-1) == y)

    epochs = 1 if args.fast else args.epochs
    max_steps = 12 if args.fast else epochs * (len(x_train) // args.batch_size)
    losses, test_accs = [], []
    t0 = time.perf_counter()
    with Progress(max_steps, "dp-sgd", epochs) as bar:
        for epoch in range(epochs):
            for xb, yb in fnn.data.batches((x_train, y_train), args.batch_size,
                                           key=random.fold_in(data_key, epoch), drop_last=True):
                if len(losses) >= max_steps:
                    break
                key = random.fold_in(noise_key, len(losses))
                params, opt_state, loss, mean_norm = dp_step(params, opt_state, xb, yb, key)
                losses.append(float(loss))
                bar.step(loss=f"{losses[-1]:.4f}", grad_norm=f"{float(mean_norm):.2f}")
            test_accs.append(float(accuracy(params, x_test, y_test)))
            bar.epoch(test_acc=f"{test_accs[-1]:.4f}")
    seconds = time.perf_counter() - t0
    q = args.batch_size / len(x_train)
    eps = dp_epsilon(q, args.noise, len(losses), args.delta)
    print(f"test accuracy: {test_accs[-1]:.4f} with clip C={args.clip}, noise sigma="
          f"{args.noise}  ({len(losses)} steps in {seconds:.1f} s)")
    print(f"privacy: (epsilon = {eps:.2f}, delta = {args.delta:g})-DP for {len(losses)} steps "
          f"at sampling rate q = {args.batch_size}/{len(x_train)} = {q:.4f} "
          f"(RDP accountant, subsampled Gaussian)")
    if args.plot:
        plot_curves(args.plot, f"DP-SGD on digits (C={args.clip}, sigma={args.noise})", losses,
                    test_accs)
    return {"losses": losses, "test_accuracy": test_accs[-1], "max_diff": max_diff,
            "seconds": seconds, "epsilon": eps, "delta": args.delta, "q": q}


if __name__ == "__main__":
    main()
