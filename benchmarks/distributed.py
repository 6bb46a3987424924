"""Benchmark averaging a gradient pytree across processes: `lax.pmean` under `jit` vs a bare
mpi4py Allreduce of one contiguous buffer of the same size.

Usage (the numbers only mean something on 2+ processes)::

    mpiexec -n 2 python benchmarks/distributed.py [--repeats 100]

The tree is the 784-512-512-10 MLP's gradient: 669,706 float32 in six leaves. Candidates, all
run in lockstep on every process (each is a collective):

* ``bare Allreduce``: ``comm.Allreduce(IN_PLACE, buf, SUM)`` on one preallocated contiguous
  buffer (the floor: no packing, no division);
* ``jit pmean``: ``T.jit(lambda g: lax.pmean(g, "data"))(grads)`` - the compiled program packs
  the six leaves into one buffer, makes one Allreduce, and divides (target: within 1.2x);
* ``eager pmean``: the same call without jit (packed per dtype too);
* ``pack+Allreduce+divide by hand``: what any pmean must do with NumPy and mpi4py (copy the
  leaves into one buffer, one Allreduce, divide into fresh output arrays);
* ``per-leaf Allreduce``: six mpi4py Allreduces, one per leaf, in place, for reference.

Prints the median time per call (process 0) and the ratio to the bare Allreduce.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import transforms as T  # noqa: E402
from transforms import distributed as dist  # noqa: E402
from transforms import lax  # noqa: E402

from _timing import interleaved  # noqa: E402


def mlp_grads(rng):
    sizes = [784, 512, 512, 10]
    g = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        g[f"dense_{i}"] = {"w": rng.normal(size=(a, b)).astype(np.float32),
                           "b": rng.normal(size=(b,)).astype(np.float32)}
    return g


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=100)
    args = p.parse_args(argv)
    dist.initialize()
    rank, n = dist.process_index(), dist.process_count()
    grads = mlp_grads(np.random.default_rng(rank))
    leaves = T.tree.leaves(grads)
    total = sum(x.size for x in leaves)
    mesh = dist.Mesh({"data": n})
    world = dist._R.world()
    MPI = dist._R.mpi()
    buf = np.concatenate([x.ravel() for x in leaves])

    def bare():
        if world is not None:
            world.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)

    per_leaf_bufs = [x.copy() for x in leaves]

    def per_leaf():
        if world is not None:
            for b in per_leaf_bufs:
                world.Allreduce(MPI.IN_PLACE, b, op=MPI.SUM)

    packbuf = np.empty_like(buf)
    sizes = [x.size for x in leaves]

    def by_hand():               # what pmean must do: pack, one Allreduce, divide into outputs
        off = 0
        for x, k in zip(leaves, sizes):
            packbuf[off:off + k] = x.reshape(-1)
            off += k
        if world is not None:
            world.Allreduce(MPI.IN_PLACE, packbuf, op=MPI.SUM)
        off, out = 0, []
        for x, k in zip(leaves, sizes):
            out.append(packbuf[off:off + k].reshape(x.shape) / np.float32(n))
            off += k
        return out

    jitted = T.jit(lambda g: lax.pmean(g, "data"))
    with mesh:
        expect = T.tree.map(lambda x: x, lax.pmean(grads, "data"))
        got = jitted(grads)
        for a, b in zip(T.tree.leaves(got), T.tree.leaves(expect)):
            assert np.allclose(a, b, rtol=1e-6, atol=1e-6)
        times = interleaved({
            "bare Allreduce": bare,
            "jit pmean": lambda: jitted(grads),
            "eager pmean": lambda: lax.pmean(grads, "data"),
            "pack+Allreduce+divide by hand": by_hand,
            "per-leaf Allreduce": per_leaf,
        }, args.repeats)
    if rank == 0:
        print(f"{n} processes, {total:,} float32 in {len(leaves)} leaves "
              f"({total * 4 / 1e6:.1f} MB)")
        base = times["bare Allreduce"]
        for k, t in times.items():
            print(f"  {k:30s} {t * 1e3:8.3f} ms   {t / base:5.2f}x")
    return times


if __name__ == "__main__":
    main()
