"""Data-parallel training of the digits MLP over MPI processes.

    python examples/data_parallel.py                    # one process (no MPI needed)
    mpiexec -n 2 python examples/data_parallel.py       # two processes, same global batch
    mpiexec -n 2 python examples/data_parallel.py --fast
    mpiexec -n 2 python examples/data_parallel.py --checkpoint-dir ckpt --save-every 50
    mpiexec -n 2 python examples/data_parallel.py --checkpoint-dir ckpt --resume   # after a crash

Every process holds the whole model. Each step, every process takes its share of the same
global batch (`fnn.data.batches(..., shard=(index, count))`), computes gradients on it, and
`lax.pmean(grads, "data")` averages them over the processes inside the jitted step (one
Allreduce of one contiguous buffer per step), so every process applies the same update and the
parameters stay identical - which the example checks: it takes a digest of the parameters after
every step and compares them with process 0's at the end of each epoch (one message). With the
same global batch size, N processes follow the same trajectory as one process (up to float
rounding) and reach the same accuracy.

With `--checkpoint-dir` the parameters, the optimiser state and the step are saved every
`--save-every` steps (process 0 writes; every process returns once it is committed). After a
failure - any process's uncaught exception or death ends the whole job - `--resume` restores
the latest checkpoint (on any number of processes) and continues exactly: the batches are a
function of (seed, epoch, step), so the resumed run ends with the same parameters as an
uninterrupted one. `--fail-at-step K` makes the last process raise before step K (to try it).
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
    p.add_argument("--checkpoint-dir", help="save checkpoints here (process 0 writes)")
    p.add_argument("--save-every", type=int, default=0,
                   help="steps between checkpoints (0: only at the end)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint in --checkpoint-dir")
    p.add_argument("--fail-at-step", type=int, default=None,
                   help="the last process raises before this step (failure drill)")
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
    mgr = None
    if args.checkpoint_dir:
        mgr = fnn.checkpoint.CheckpointManager(args.checkpoint_dir, max_to_keep=2)
    done = 0                                   # steps already taken (by an earlier run)
    if args.resume:
        if mgr is None or mgr.latest_step() is None:
            raise ValueError("--resume: no checkpoint in --checkpoint-dir "
                             f"{args.checkpoint_dir!r}")
        saved = mgr.restore(target={"params": params, "opt_state": opt_state,
                                    "losses": np.zeros(mgr.latest_step(), np.float64)})
        params, opt_state = saved["params"], saved["opt_state"]
        losses = [float(v) for v in saved["losses"]]
        done = len(losses)

    def save(step):
        mgr.save(step, {"params": params, "opt_state": opt_state,
                        "losses": np.asarray(losses, np.float64)})

    t0 = time.perf_counter()
    with mesh:
        step = 0
        for epoch in range(epochs):
            for xb, yb in fnn.data.batches((x_train, y_train), args.batch_size,
                                           key=random.fold_in(data_key, epoch), drop_last=True,
                                           shard=(rank, count)):
                if step >= max_steps:
                    break
                step += 1
                if step <= done:
                    continue                   # taken before the checkpoint: same batches
                if args.fail_at_step == step and rank == count - 1:
                    raise RuntimeError(f"deliberate failure before step {step} (--fail-at-step)")
                params, opt_state, loss = train_step(params, opt_state, xb, yb)
                losses.append(float(loss))
                digests.append(digest(params))
                if mgr is not None and args.save_every and step % args.save_every == 0:
                    save(step)
            # the parameters after every step of the epoch, compared with process 0's at once
            if digests:
                mine = np.stack(digests)
                root = dist.broadcast(mine, root=0)
                bad = [len(losses) - len(digests) + i + 1 for i in range(len(digests))
                       if not np.array_equal(mine[i], root[i])]
                if bad:
                    raise AssertionError(f"after step {bad[0]}: the parameters on process "
                                         f"{rank} differ from process 0's")
                digests = []
            if step <= done:
                continue                        # an epoch finished before the checkpoint
            test_accs.append(int(correct(params, x_test[lo:hi], y_test[lo:hi])) / len(x_test))
    seconds = time.perf_counter() - t0
    if mgr is not None and mgr.latest_step() != len(losses):
        save(len(losses))
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
