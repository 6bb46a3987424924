"""Model parallelism over MPI processes, on the digits data: two classic layouts.

    mpiexec -n 2 python examples/model_parallel.py                  # both, 2 processes
    mpiexec -n 2 python examples/model_parallel.py --mode pipeline --fast

* **tensor** (Megatron-style MLP): the hidden layer is split across the processes of mesh axis
  "model": process k holds columns k of `w1` / `b1` and rows k of `w2`, computes its partial
  logits `relu(x @ w1_k + b1_k) @ w2_k`, and ONE `lax.psum` over "model" adds the partials.
  The psum is Megatron's `g` (`reduce_from_model_parallel`: psum forward, identity backward)
  and the input enters through Megatron's `f` (`copy_to_model_parallel`: identity forward,
  psum backward), both `T.custom_vjp`s. Every process computes the same loss from the same
  logits, so the cotangent of the logits is already whole on every process: `g`'s backward
  passes it on without a collective, and `f`'s backward psum is dead (the data needs no
  gradient). A step therefore makes ONE Allreduce (the forward's); differentiating the plain
  `lax.psum` instead (its transpose is a psum) costs a second one in the backward.
* **pipeline** (GPipe): process s holds layer s of a `count`-layer MLP; the global batch is cut
  into micro-batches which flow forward through the stages with `dist.send`/`dist.recv`, then
  their cotangents flow back (each stage keeps its micro-batches' inputs and re-runs its
  jitted forward inside its jitted `T.vjp`), and each stage updates its own layer with the
  accumulated gradient.

Each mode checks, after every step, that its parameters equal those of the same model trained
densely on one process (which every process also runs, for the check).
"""
from __future__ import annotations

import argparse
import functools
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fnn  # noqa: E402
import transforms as T  # noqa: E402
import transforms.numpy as tnp  # noqa: E402
from transforms import distributed as dist  # noqa: E402
from transforms import lax, random  # noqa: E402

from digits_mlp import load_digits  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--mode", choices=["tensor", "pipeline", "both"], default="both",
                   help="which kind of model parallelism")
    p.add_argument("--steps", type=int, default=60, help="optimisation steps")
    p.add_argument("--batch-size", type=int, default=64, help="examples per step")
    p.add_argument("--hidden", type=int, default=128, help="hidden units per layer")
    p.add_argument("--microbatches", type=int, default=4, help="pipeline micro-batches per step")
    p.add_argument("--lr", type=float, default=0.2, help="learning rate")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--fast", action="store_true", help="a few steps only (for tests)")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip the dense reference model (timing: benchmarks/distributed.py)")
    return p.parse_args(argv)


def dense_init(key, sizes):
    keys = random.split(key, len(sizes) - 1)
    return [{"w": np.asarray(random.normal(k, (a, b), np.float32)) / np.float32(np.sqrt(a)),
             "b": np.zeros(b, np.float32)} for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def dense_forward(layers, x):
    for i, p in enumerate(layers):
        x = x @ p["w"] + p["b"]
        if i < len(layers) - 1:
            x = fnn.relu(x)
    return x


def dense_loss(layers, x, y):
    return fnn.losses.cross_entropy(dense_forward(layers, x), y)


def dense_reference_step(lr):
    """One SGD step of the whole model on one process (eager: it only checks the others)."""
    return lambda layers, x, y: sgd(layers, T.grad(dense_loss)(layers, x, y), lr)


def sgd(params, grads, lr):
    return T.tree.map(lambda p, g: p - np.float32(lr) * g, params, grads)


def agree(a, b, what, tol=2e-5):
    for x, y in zip(T.tree.leaves(a), T.tree.leaves(b)):
        err = float(np.max(np.abs(np.asarray(x) - np.asarray(y)), initial=0.0))
        if err > tol * (1 + float(np.max(np.abs(y), initial=0.0))):
            raise AssertionError(f"process {dist.process_index()}: {what} differs from the "
                                 f"dense model by {err:.3g}")


def global_batches(data, args, steps):
    (x, y) = data
    out = []
    epoch = 0
    while len(out) < steps:
        for b in fnn.data.batches((x, y), args.batch_size, key=random.fold_in(random.key(1),
                                                                              epoch),
                                  drop_last=True):
            out.append(b)
            if len(out) == steps:
                break
        epoch += 1
    return out


@functools.partial(T.custom_vjp, nondiff_argnums=(1,))
def copy_to_model_parallel(x, axis_name):
    """Megatron's `f`: `x` unchanged forward; backward, the cotangent summed over `axis_name`
    (each process's part of the model contributes its share of the input's gradient)."""
    return x


def _copy_fwd(x, axis_name):
    return x, None


def _copy_bwd(axis_name, _, ct):
    return (lax.psum(ct, axis_name),)


copy_to_model_parallel.defvjp(_copy_fwd, _copy_bwd)


@functools.partial(T.custom_vjp, nondiff_argnums=(1,))
def reduce_from_model_parallel(x, axis_name):
    """Megatron's `g`: the partial results summed over `axis_name` forward; backward, the
    cotangent passed on unchanged (the loss after it is computed redundantly on every
    process, so each already holds the whole cotangent: no collective)."""
    return lax.psum(x, axis_name)


def _reduce_fwd(x, axis_name):
    return lax.psum(x, axis_name), None


def _reduce_bwd(axis_name, _, ct):
    return (ct,)


reduce_from_model_parallel.defvjp(_reduce_fwd, _reduce_bwd)


def tensor_shard(full, rank, n):
    """Process `rank`'s part of the dense 2-layer MLP `full`: columns of the first Dense, rows
    of the second, the output bias replicated."""
    h = full[0]["w"].shape[1] // n
    cols = slice(rank * h, (rank + 1) * h)
    return {"w1": full[0]["w"][:, cols], "b1": full[0]["b"][cols],
            "w2": full[1]["w"][cols, :], "b2": full[1]["b"]}


def tensor_loss(p, x, y, axis_name="model"):
    """The loss of the tensor-parallel MLP on this process's shard `p` (the same value on
    every process of `axis_name`)."""
    x = copy_to_model_parallel(x, axis_name)
    hid = fnn.relu(x @ p["w1"] + p["b1"])
    logits = reduce_from_model_parallel(hid @ p["w2"], axis_name) + p["b2"]   # the one psum
    return fnn.losses.cross_entropy(logits, y)


def tensor_parallel(args, data, steps):
    rank, n = dist.process_index(), dist.process_count()
    if args.hidden % n:
        raise ValueError(f"--hidden {args.hidden} must be divisible by {n} processes")
    full = dense_init(random.key(args.seed), [64, args.hidden, 10])
    local = tensor_shard(full, rank, n)

    @T.jit
    def step(p, x, y):
        loss, g = T.value_and_grad(tensor_loss)(p, x, y)   # every gradient whole: no psum
        return sgd(p, g, args.lr), loss

    dense_step = dense_reference_step(args.lr)
    losses = []
    with dist.Mesh({"model": n}):
        for x, y in global_batches(data, args, steps):
            local, loss = step(local, x, y)
            losses.append(float(loss))
            if not args.check:
                continue
            full = dense_step(full, x, y)
            agree(local, tensor_shard(full, rank, n), "a tensor shard")
    return losses


def pipeline(args, data, steps):
    rank, n = dist.process_index(), dist.process_count()
    sizes = [64] + [args.hidden] * (n - 1) + [10]
    full = dense_init(random.key(args.seed + 1), sizes)
    mine = full[rank]
    last = rank == n - 1
    m = args.microbatches
    if args.batch_size % m:
        raise ValueError(f"--batch-size {args.batch_size} must be divisible by --microbatches")
    mb = args.batch_size // m

    def stage(p, a):
        z = a @ p["w"] + p["b"]
        return z if last else fnn.relu(z)

    def stage_loss(p, a, y):
        return fnn.losses.cross_entropy(stage(p, a), y) / m

    # compiled once per stage; the backward re-runs the stage's forward (GPipe's
    # re-materialisation: only the stage's input is kept per micro-batch, not its activations)
    forward = T.jit(stage)

    @T.jit
    def backward(p, a, ct):
        return T.vjp(stage, p, a)[1](ct)

    last_grads = T.jit(T.value_and_grad(stage_loss, argnums=(0, 1)))

    dense_step = dense_reference_step(args.lr)
    losses = []
    for x, y in global_batches(data, args, steps):
        pending, loss = [], 0.0
        for j in range(m):                                            # forward, micro-batches
            xs, ys = x[j * mb:(j + 1) * mb], y[j * mb:(j + 1) * mb]
            a = xs if rank == 0 else dist.recv(np.empty((mb, sizes[rank]), np.float32),
                                               source=rank - 1, tag=j)
            if last:                       # the loss and both gradients at once
                val, g = last_grads(mine, a, ys)
                loss += float(val)
                pending.append(g)
            else:
                dist.send(np.asarray(forward(mine, a), np.float32), dest=rank + 1, tag=j)
                pending.append(a)
        grads = None
        for j in reversed(range(m)):                                  # backward
            if last:
                gp, ga = pending[j]
            else:
                ct = dist.recv(np.empty((mb, sizes[rank + 1]), np.float32), source=rank + 1,
                               tag=m + j)
                gp, ga = backward(mine, pending[j], ct)
            if rank > 0:
                dist.send(np.asarray(ga, np.float32), dest=rank - 1, tag=m + j)
            grads = gp if grads is None else T.tree.map(np.add, grads, gp)
        mine = sgd(mine, grads, args.lr)
        if args.check:
            full = dense_step(full, x, y)
            agree(mine, full[rank], f"pipeline stage {rank}")
        losses.append(float(dist.broadcast(np.float64(loss), root=n - 1)))
    return losses


def main(argv=None):
    args = parse_args(argv)
    dist.initialize()
    data, _ = load_digits()
    steps = 4 if args.fast else args.steps
    out = {}
    if args.mode in ("tensor", "both"):
        out["tensor_losses"] = tensor_parallel(args, data, steps)
    if args.mode in ("pipeline", "both"):
        out["pipeline_losses"] = pipeline(args, data, steps)
    if dist.process_index() == 0:
        for k, v in out.items():
            print(f"{k.split('_')[0]} parallel on {dist.process_count()} process(es): loss "
                  f"{v[0]:.4f} -> {v[-1]:.4f} over {len(v)} steps; parameters equal the dense "
                  f"model's after every step")
    return out


if __name__ == "__main__":
    main()
