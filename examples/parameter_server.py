"""A synchronous parameter server over MPI processes, on the digits MLP.

    mpiexec -n 3 python examples/parameter_server.py          # 1 server + 2 workers
    mpiexec -n 2 python examples/parameter_server.py --fast

Process 0 is the server: it owns the parameters and the optimiser state. Every step, each worker
receives the current parameters (`dist.recv`), computes the gradient on its share of the global
batch (the same contiguous share `fnn.data.batches(..., shard=(worker, workers))` gives) and
sends it back (`dist.send`); the server averages the workers' gradients, applies the optimiser
update and sends the new parameters out. In this synchronous mode the server follows exactly
data-parallel SGD: the server checks after every step that its parameters equal those of the
one-process simulation `T.vmap(grad, axis_name="data")` over the stacked shards with `lax.pmean`
of the gradients. With one process the server is its own single worker.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fnn  # noqa: E402
import transforms as T  # noqa: E402
import transforms.numpy as tnp  # noqa: E402
from fnn import optim  # noqa: E402
from transforms import distributed as dist  # noqa: E402
from transforms import lax, random  # noqa: E402

from digits_mlp import load_digits  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=100, help="optimisation steps")
    p.add_argument("--batch-size", type=int, default=64, help="the GLOBAL batch size")
    p.add_argument("--hidden", type=int, default=64, help="hidden units per layer")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--fast", action="store_true", help="a few steps only (for tests)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    dist.initialize()
    rank, n = dist.process_index(), dist.process_count()
    workers = max(n - 1, 1)
    if args.batch_size % workers:
        raise ValueError(f"--batch-size {args.batch_size} must be divisible by the {workers} "
                         "workers")
    (x_train, y_train), (x_test, y_test) = load_digits()
    model = fnn.Sequential([fnn.Dense(args.hidden), fnn.relu, fnn.Dense(10)])
    params, state = model.init(random.key(args.seed), x_train[:1])
    params = dist.broadcast(params, root=0)
    opt = optim.sgd(args.lr, momentum=0.9)
    steps = 5 if args.fast else args.steps

    def loss_fn(p, x, y):
        return fnn.losses.cross_entropy(model.apply(p, state, x)[0], y)

    grad_fn = T.jit(T.grad(loss_fn))

    @T.jit
    def server_update(p, opt_state, g):
        updates, opt_state = opt.update(g, opt_state, p)
        return optim.apply_updates(p, updates), opt_state

    def reference_step(p, opt_state, xs, ys):        # data-parallel SGD, simulated by vmap
        def one(x, y):
            return lax.pmean(T.grad(loss_fn)(p, x, y), "data")
        g = T.tree.map(lambda a: a[0], T.vmap(one, axis_name="data")(xs, ys))
        return server_update(p, opt_state, g)

    def global_batches():
        epoch = 0
        while True:
            yield from fnn.data.batches((x_train, y_train), args.batch_size,
                                        key=random.fold_in(random.key(7), epoch), drop_last=True)
            epoch += 1

    opt_state = opt.init(params) if rank == 0 else None
    ref, ref_state = params, opt_state
    batches = global_batches()
    for step in range(steps):
        x, y = next(batches)
        shard = args.batch_size // workers
        if rank == 0:
            if n == 1:
                grads = [grad_fn(params, x, y)]
            else:
                grads = [dist.recv(params, source=w, tag=step) for w in range(1, n)]
            mean = T.tree.map(lambda *gs: sum(gs[1:], gs[0]) / np.float32(len(gs)), *grads)
            params, opt_state = server_update(params, opt_state, mean)
            for w in range(1, n):
                dist.send(params, dest=w, tag=step)
            ref, ref_state = reference_step(ref, ref_state,
                                            x.reshape(workers, shard, -1),
                                            y.reshape(workers, shard))
            for a, b in zip(T.tree.leaves(params), T.tree.leaves(ref)):
                if not np.allclose(a, b, rtol=1e-5, atol=1e-6):
                    raise AssertionError(f"step {step}: the server's parameters differ from "
                                         "data-parallel SGD")
        else:
            xs, ys = x[(rank - 1) * shard:rank * shard], y[(rank - 1) * shard:rank * shard]
            dist.send(grad_fn(params, xs, ys), dest=0, tag=step)
            params = dist.recv(params, source=0, tag=step)
    acc = float(tnp.mean(tnp.argmax(model.apply(params, state, x_test)[0], -1) == y_test))
    if rank == 0:
        print(f"parameter server with {n - 1 if n > 1 else 1} worker(s): {steps} synchronous "
              f"steps, test accuracy {acc:.4f}; every step equal to data-parallel SGD")
    return {"test_accuracy": acc, "params": params}


if __name__ == "__main__":
    main()
