"""Transfer learning: train on digits 0-4, checkpoint, restore, swap the head, fine-tune the
head on digits 5-9 with the body frozen by the optimiser's mask.

    python examples/finetune.py
    python examples/finetune.py --plot finetune.png
    python examples/finetune.py --fast                  # a few steps (used by the tests)

Steps:
  1. train `Sequential([body, head])` on digits 0-4;
  2. `fnn.checkpoint.save` the parameters, then `fnn.checkpoint.restore` them (checked
     against the structure, shapes and dtypes of the live parameters);
  3. replace the head with a freshly initialised one for digits 5-9;
  4. fine-tune with `optim.chain(optim.adam(lr), optim.freeze(mask))`, `mask` selecting the
     body, so only the head moves;
  5. report accuracy before/after and check that every body weight is bit-identical.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

import fnn
import transforms as T
import transforms.numpy as tnp
from fnn import checkpoint, optim
from transforms import random, tree

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from digits_mlp import add_common_args, load_digits  # noqa: E402
from progress import Progress  # noqa: E402


def make_model():
    body = fnn.Sequential([fnn.Dense(128), fnn.relu, fnn.Dense(128), fnn.relu], name="body")
    return fnn.Sequential([body, fnn.Dense(5, name="head")])


def subset(x, y, digits):
    keep = np.isin(y, digits)
    return x[keep], (y[keep] - digits[0]).astype(np.int32)


def train(model, params, opt, x, y, steps_per_epoch, epochs, key, max_steps, desc):
    state = {}
    opt_state = opt.init(params)

    def loss_fn(params, x, y):
        logits, _ = model.apply(params, state, x)
        return fnn.losses.cross_entropy(logits, y)

    @T.jit
    def step(params, opt_state, x, y):
        loss, grads = T.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    losses = []
    with Progress(min(max_steps, epochs * steps_per_epoch), desc, epochs) as bar:
        for epoch in range(epochs):
            for xb, yb in fnn.data.batches((x, y), 32, key=random.fold_in(key, epoch),
                                           drop_last=True):
                if len(losses) >= max_steps:
                    break
                params, opt_state, loss = step(params, opt_state, xb, yb)
                losses.append(float(loss))
                bar.step(loss=f"{losses[-1]:.4f}")
            bar.epoch()
    return params, losses


def plot_finetune(path, losses_a, losses_b, tasks):
    """Training losses of both phases, and test accuracy before/after training per task.

    `tasks`: [(label, accuracy before, accuracy after), ...]."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(np.arange(len(losses_a)), losses_a, lw=0.8, label="train on digits 0-4")
    ax1.plot(len(losses_a) + np.arange(len(losses_b)), losses_b, lw=0.8,
             label="fine-tune head on 5-9")
    ax1.set_xlabel("step")
    ax1.set_ylabel("training loss")
    ax1.set_yscale("log")
    ax1.legend()
    labels = [t[0] for t in tasks]
    pos = np.arange(len(tasks))
    before = ax2.bar(pos - 0.2, [t[1] for t in tasks], 0.4, label="before")
    after = ax2.bar(pos + 0.2, [t[2] for t in tasks], 0.4, label="after")
    ax2.bar_label(before, fmt="%.2f")
    ax2.bar_label(after, fmt="%.2f")
    ax2.set_xticks(pos, labels)
    ax2.set_ylim(0, 1.1)
    ax2.set_ylabel("test accuracy")
    ax2.legend(loc="lower right")
    fig.suptitle("train on digits 0-4, then fine-tune a new head on 5-9 (body frozen)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


def accuracy(model, params, x, y):
    logits, _ = model.apply(params, {}, x)
    return float(tnp.mean(tnp.argmax(logits, axis=-1) == y))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--epochs", type=int, default=15, help="passes over the training data")
    p.add_argument("--finetune-epochs", type=int, default=30,
                   help="epochs of fine-tuning on the second task")
    p.add_argument("--lr", type=float, default=2e-3, help="learning rate")
    p.add_argument("--finetune-lr", type=float, default=1e-2,
                   help="learning rate of the fine-tuning")
    p.add_argument("--checkpoint-dir", default=None,
                   help="where to write the checkpoint (default: a temporary directory)")
    add_common_args(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    (x_train, y_train), (x_test, y_test) = load_digits()
    xa, ya = subset(x_train, y_train, [0, 1, 2, 3, 4])
    xa_test, ya_test = subset(x_test, y_test, [0, 1, 2, 3, 4])
    xb, yb = subset(x_train, y_train, [5, 6, 7, 8, 9])
    xb_test, yb_test = subset(x_test, y_test, [5, 6, 7, 8, 9])
    max_steps = 20 if args.fast else 10 ** 9
    epochs_a = 1 if args.fast else args.epochs
    epochs_b = 1 if args.fast else args.finetune_epochs
    k_init, k_data_a, k_head, k_data_b = random.split(random.key(args.seed), 4)
    t0 = time.perf_counter()

    # 1. train on digits 0-4
    model = make_model()
    params, _ = model.init(k_init, xa[:1])
    acc_a_init = accuracy(model, params, xa_test, ya_test)
    params, losses_a = train(model, params, optim.adam(args.lr), xa, ya, len(xa) // 32,
                             epochs_a, k_data_a, max_steps, "digits 0-4")
    acc_a = accuracy(model, params, xa_test, ya_test)
    print(f"[1] trained on digits 0-4: test accuracy {acc_a:.4f}")

    # 2. checkpoint round trip
    tmp = None
    directory = args.checkpoint_dir
    if directory is None:
        tmp = tempfile.TemporaryDirectory()
        directory = tmp.name
    path = os.path.join(directory, "digits_0_4.safetensors")
    checkpoint.save(path, params, metadata={"digits": [0, 1, 2, 3, 4], "test_accuracy": acc_a})
    restored = checkpoint.restore(path, target=params)
    same = all(np.array_equal(a, b) for a, b in zip(tree.leaves(params), tree.leaves(restored)))
    print(f"[2] saved and restored {path}: identical = {same}")

    # 3. a new head for digits 5-9 on top of the restored body
    feature_spec = fnn.layers.infer_output(
        lambda p, x: model["body"].apply(p, {}, x)[0], restored["body"], xb[:1])
    new_head, _ = model["head"].init(k_head, feature_spec)
    params_b = {"body": restored["body"], "head": new_head}
    acc_before = accuracy(model, params_b, xb_test, yb_test)
    print(f"[3] new head on digits 5-9 before fine-tuning: test accuracy {acc_before:.4f}")

    # 4. fine-tune the head only: the mask selects (freezes) every body leaf
    mask = {"body": tree.map(lambda _: True, params_b["body"]),
            "head": tree.map(lambda _: False, params_b["head"])}
    opt = optim.chain(optim.adam(args.finetune_lr), optim.freeze(mask))
    tuned, losses_b = train(model, params_b, opt, xb, yb, len(xb) // 32, epochs_b, k_data_b,
                            max_steps, "fine-tune 5-9")
    acc_after = accuracy(model, tuned, xb_test, yb_test)
    print(f"[4] after fine-tuning the head: test accuracy {acc_after:.4f}")

    # 5. the frozen body did not move, bit for bit
    body_before, body_after = tree.leaves(restored["body"]), tree.leaves(tuned["body"])
    frozen = all(a.dtype == b.dtype and a.tobytes() == np.asarray(b).tobytes()
                 for a, b in zip(body_before, body_after))
    head_moved = not all(np.array_equal(a, b) for a, b in
                         zip(tree.leaves(new_head), tree.leaves(tuned["head"])))
    print(f"[5] body weights bit-identical after fine-tuning: {frozen}; head changed: "
          f"{head_moved}")
    seconds = time.perf_counter() - t0
    print(f"accuracy on digits 5-9: before {acc_before:.4f} -> after {acc_after:.4f} "
          f"({seconds:.1f} s)")
    if args.plot:
        plot_finetune(args.plot, losses_a, losses_b,
                      [("digits 0-4\n(whole network)", acc_a_init, acc_a),
                       ("digits 5-9\n(new head only)", acc_before, acc_after)])
    if tmp is not None:
        tmp.cleanup()
    return {"losses_a": losses_a, "losses_b": losses_b, "acc_a": acc_a, "acc_a_init": acc_a_init,
            "acc_before": acc_before, "acc_after": acc_after, "frozen": frozen,
            "head_moved": head_moved, "restored_identical": same, "seconds": seconds}


if __name__ == "__main__":
    main()
