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

`--async K`: asynchronous mode with staleness bound K. Each worker walks through its own
share of the batches at its own pace: it pushes a gradient computed on its copy of the
parameters (tagged with their version) and pulls fresh parameters only every K+1 pushes; the
server applies gradients in the order they arrive and drops any computed on parameters more
than K versions old (counted and reported), so every applied gradient is at most K updates
stale. It runs `--steps` x workers updates (the same number of examples as the synchronous
run) and reaches the same accuracy band.

Workers join by receiving the server's parameters (`dist.broadcast`, which checks every
process's own tree against it): a worker whose model has another structure or shape gets a
`ValueError` naming the path, on every process (try `--worker-hidden 32`).
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
    p.add_argument("--async", dest="staleness", type=int, default=None, metavar="K",
                   help="asynchronous mode: applied gradients are at most K updates stale")
    p.add_argument("--worker-hidden", type=int, default=None,
                   help="the workers build a model of this width (a mismatched join)")
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
    hidden = args.hidden if rank == 0 or args.worker_hidden is None else args.worker_hidden
    model = fnn.Sequential([fnn.Dense(hidden), fnn.relu, fnn.Dense(10)])
    params, state = model.init(random.key(args.seed), x_train[:1])
    params = dist.broadcast(params, root=0)            # the join: a mismatch names the path
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

    if args.staleness is not None:
        if args.staleness < 0:
            raise ValueError(f"--async {args.staleness}: the staleness bound must be >= 0")
        return run_async(args, params, opt, grad_fn, server_update, model, state,
                         (x_train, y_train), (x_test, y_test), steps)
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


def run_async(args, params, opt, grad_fn, server_update, model, state, train, test, steps):
    """The asynchronous server (process 0) and workers; see the module docstring."""
    rank, n = dist.process_index(), dist.process_count()
    if n < 2:
        raise ValueError("--async needs a server and at least one worker: mpiexec -n 2 or more")
    workers, k = n - 1, args.staleness
    total = steps * workers                       # updates: the examples of `steps` sync steps
    push = {"grads": params, "version": np.int64(0), "pull": np.bool_(False)}
    reply = {"params": params, "version": np.int64(0), "done": np.bool_(False)}
    if rank == 0:
        opt_state, version, dropped, active, worst = opt.init(params), 0, 0, workers, 0
        while active:
            src, msg = dist.recv_any(push, tag=1)
            stale = version - int(msg["version"])
            if version < total and stale <= k:
                params, opt_state = server_update(params, opt_state, msg["grads"])
                version += 1
                worst = max(worst, stale)
            elif version < total:
                dropped += 1                       # too stale: the bound holds
            if msg["pull"]:
                done = version >= total
                dist.send({"params": params, "version": np.int64(version),
                           "done": np.bool_(done)}, dest=src, tag=2)
                active -= done
        info = {"updates": version, "dropped": dropped, "max_staleness": worst}
    else:
        (x, y), w = train, rank - 1
        version, pushes, epoch = 0, 0, 0
        while True:
            done = False
            for xb, yb in fnn.data.batches((x, y), args.batch_size, drop_last=True,
                                           key=random.fold_in(random.key(7), epoch),
                                           shard=(w, workers)):
                pushes += 1
                pull = pushes % (k + 1) == 0
                dist.send({"grads": grad_fn(params, xb, yb), "version": np.int64(version),
                           "pull": np.bool_(pull)}, dest=0, tag=1)
                if pull:
                    got = dist.recv(reply, source=0, tag=2)
                    params, version, done = got["params"], int(got["version"]), bool(got["done"])
                    if done:
                        break
            if done:
                break
            epoch += 1
        info = None
    info = dist.broadcast(info, root=0) if n > 1 else info
    params = dist.broadcast(params, root=0)
    x_test, y_test = test
    acc = float(tnp.mean(tnp.argmax(model.apply(params, state, x_test)[0], -1) == y_test))
    if rank == 0:
        print(f"asynchronous parameter server, {workers} worker(s), staleness bound {k}: "
              f"{int(info['updates'])} updates ({int(info['dropped'])} too-stale gradients "
              f"dropped, the most stale applied {int(info['max_staleness'])}), test accuracy "
              f"{acc:.4f}")
    return {"test_accuracy": acc, "params": params,
            **{key: int(v) for key, v in info.items()}}


if __name__ == "__main__":
    main()
