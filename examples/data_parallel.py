"""Data-parallel training of the digits MLP over MPI processes.

    python examples/data_parallel.py                    # one process (no MPI needed)
    mpiexec -n 2 python examples/data_parallel.py       # two processes, same global batch
    mpiexec -n 2 python examples/data_parallel.py --fast

Every process holds the whole model. Each step, every process takes its share of the same
global batch (`fnn.data.batches(..., shard=(index, count))`), computes gradients on it, and
`lax.pmean(grads, "data")` averages them over the processes inside the jitted step (one
Allreduce of one contiguous buffer per step), so every process applies the same update and the
parameters stay identical - which the example checks: it takes a digest of the parameters after
every step and compares them with process 0's at the end of each epoch (one message). With the
same global batch size, N processes follow the same trajectory as one process (up to float
rounding) and reach the same accuracy.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fnn  # noqa: E402
import transforms as T  # noqa: E402
import transforms.numpy as tnp  # noqa: E402
from fnn import optim  # noqa: E402
from transforms import distributed as dist  # noqa: E402
from transforms import lax, random  # noqa: E402

from digits_mlp import add_common_args, load_digits, make_optimizer  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--optimizer", choices=["sgd", "momentum", "adam", "rmsprop"],
                   default="adam", help="optimiser")
    p.add_argument("--epochs", type=int, default=30, help="passes over the training data")
    p.add_argument("--batch-size", type=int, default=64, help="the GLOBAL batch size")
    p.add_argument("--hidden", type=int, default=128, help="hidden units per layer")
    p.add_argument("--checkpoint-dir", help="save the final parameters here (process 0 writes)")
    p.add_argument("--json", action="store_true", help="print a RESULT json line (tests)")
    add_common_args(p)
    return p.parse_args(argv)


def digest(tree):
    h = hashlib.sha256()
    for leaf in T.tree.leaves(tree):
        h.update(np.ascontiguousarray(leaf).tobytes())
    return np.frombuffer(h.digest(), np.uint8)


def main(argv=None):
    args = parse_args(argv)
    dist.initialize()
    rank, count = dist.process_index(), dist.process_count()
    if args.batch_size % count:
        raise ValueError(f"--batch-size {args.batch_size} must be divisible by the number of "
                         f"processes {count}")
    mesh = dist.Mesh({"data": count})
    (x_train, y_train), (x_test, y_test) = load_digits()
    model = fnn.Sequential([fnn.Dense(args.hidden), fnn.relu, fnn.Dense(args.hidden), fnn.relu,
                            fnn.Dense(10)])
    init_key, data_key = random.split(random.key(args.seed))
    params, state = model.init(init_key, x_train[:1])
    params = dist.broadcast(params, root=0)        # the same start everywhere, whatever the seed
    epochs = 1 if args.fast else args.epochs
    steps_per_epoch = len(x_train) // args.batch_size
    max_steps = 12 if args.fast else epochs * steps_per_epoch
    opt = make_optimizer(args.optimizer, None, max_steps)
    opt_state = opt.init(params)

    def loss_fn(params, x, y):
        logits, _ = model.apply(params, state, x)
        return fnn.losses.cross_entropy(logits, y)

    @T.jit
    def train_step(params, opt_state, x, y):
        loss, grads = T.value_and_grad(loss_fn)(params, x, y)
        grads, loss = lax.pmean((grads, loss), "data")      # average over the processes
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    @T.jit
    def correct(params, x, y):                             # this process's share of the test set
        logits, _ = model.apply(params, state, x)
        return lax.psum(tnp.sum(tnp.argmax(logits, axis=-1) == y), "data")

    lo, hi = (len(x_test) * rank) // count, (len(x_test) * (rank + 1)) // count
    losses, test_accs, digests = [], [], []
    t0 = time.perf_counter()
    with mesh:
        for epoch in range(epochs):
            for xb, yb in fnn.data.batches((x_train, y_train), args.batch_size,
                                           key=random.fold_in(data_key, epoch), drop_last=True,
                                           shard=(rank, count)):
                if len(losses) >= max_steps:
                    break
                params, opt_state, loss = train_step(params, opt_state, xb, yb)
                losses.append(float(loss))
                digests.append(digest(params))
            # the parameters after every step of the epoch, compared with process 0's at once
            mine = np.stack(digests)
            root = dist.broadcast(mine, root=0)
            bad = [len(losses) - len(digests) + i + 1 for i in range(len(digests))
                   if not np.array_equal(mine[i], root[i])]
            if bad:
                raise AssertionError(f"after step {bad[0]}: the parameters on process {rank} "
                                     "differ from process 0's")
            digests = []
            test_accs.append(int(correct(params, x_test[lo:hi], y_test[lo:hi])) / len(x_test))
    seconds = time.perf_counter() - t0
    if args.checkpoint_dir:
        mgr = fnn.checkpoint.CheckpointManager(args.checkpoint_dir, max_to_keep=1)
        mgr.save(len(losses), params, metrics={"test_accuracy": test_accs[-1]})
    if rank == 0:
        print(f"{count} process(es), global batch {args.batch_size}: test accuracy "
              f"{test_accs[-1]:.4f} ({len(losses)} steps in {seconds:.1f} s); parameters "
              f"identical on every process after every step")
        if args.json:
            print("RESULT " + json.dumps({"losses": losses, "test_accuracy": test_accs[-1],
                                          "processes": count,
                                          "digest": digest(params).tobytes().hex()}),
                  flush=True)
    return {"losses": losses, "test_accuracy": test_accs[-1], "seconds": seconds,
            "params": params, "processes": count}


if __name__ == "__main__":
    main()
