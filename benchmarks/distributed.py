"""Benchmarks of training across processes (issue: multi-process training over MPI).

    python benchmarks/distributed.py                 # everything, side by side (launches mpiexec)
    mpiexec -n 2 python benchmarks/distributed.py --part allreduce [--repeats 100]

Run without a launcher, the script starts the parts below (each under `mpiexec -n 2`, or as a
one-process run with two BLAS threads) and prints their numbers in one table:

(a) ``allreduce``: averaging the 784-512-512-10 MLP's gradient tree (669,706 float32 in six
    leaves, 2.7 MB) over the processes, all candidates run in lockstep, interleaved:

    * ``bare Allreduce``: ``comm.Allreduce(IN_PLACE, buf, SUM)`` on one preallocated contiguous
      buffer - the floor (no packing, no division, no outputs);
    * ``jit pmean``: ``T.jit(lambda g: lax.pmean(g, "data"))(grads)`` - no packing pass: a
      reduce-scatter straight from the leaves (the four small ones staged as one message; the
      1/n applied in the reducing add) and an all-gather into one pooled buffer whose views
      are the results, with persistent MPI requests planned on the first call (target: within
      1.2x of the bare Allreduce; small trees are packed for one Allreduce instead);
    * ``eager pmean``, ``pack+Allreduce+divide by hand`` (what any pmean must do with NumPy and
      mpi4py), ``per-leaf Allreduce`` (six in-place calls), and ``torch.distributed (gloo)``
      all_reduce of one tensor of the same size when PyTorch is installed.

    Also the machine's memcpy of the same 2.7 MB (GB/s), to put the GB/s of each in scale.
(b) ``dp``: the data-parallel digits-MLP training step (`examples/data_parallel.py`'s model and
    optimiser, jitted, gradients averaged by `lax.pmean`) on 2 processes x 1 BLAS thread vs 1
    process x 2 threads on the same global batch (target: <= 1.15x).
(c) ``mp``: `examples/model_parallel.py`'s tensor-parallel and GPipe steps on 2 processes vs
    the unsplit model's jitted step on 1 process x 2 threads.

Times are medians per call (or per step) on process 0, with the 10th percentile beside them
for (a) and (b) (steadier on a busy machine); ratios are to the reference in the same table.
On a shared 2-core machine the absolute numbers drift; the ratios are what to read.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "examples"))

import transforms as T  # noqa: E402
from transforms import distributed as dist  # noqa: E402
from transforms import lax  # noqa: E402

from _timing import interleaved, median_and_p10  # noqa: E402

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def mlp_grads(rng):
    sizes = [784, 512, 512, 10]
    g = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        g[f"dense_{i}"] = {"w": rng.normal(size=(a, b)).astype(np.float32),
                           "b": rng.normal(size=(b,)).astype(np.float32)}
    return g


def emit(rank, part, rows, **extra):
    if rank == 0:
        print("JSON " + json.dumps({"part": part, "rows": rows, **extra}), flush=True)


# ---------------------------------------------------------------------------------------------
# (a) all-reduce of a gradient tree
# ---------------------------------------------------------------------------------------------

def _torch_allreduce(rank, n, numel):
    """A gloo all_reduce of one float32 tensor of `numel`, or None without PyTorch."""
    try:
        import torch
        import torch.distributed as tdist
    except ImportError:
        return None
    import socket
    port = None
    if rank == 0:
        with socket.socket() as s:          # a free port, told to the others over MPI
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    port = dist._R.world().bcast(port, root=0) if n > 1 else port
    torch.set_num_threads(1)
    tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                             world_size=n)
    t = torch.from_numpy(np.ones(numel, np.float32))
    return lambda: tdist.all_reduce(t)


def part_allreduce(repeats):
    rank, n = dist.process_index(), dist.process_count()
    grads = mlp_grads(np.random.default_rng(rank))
    leaves = T.tree.leaves(grads)
    total = sum(x.size for x in leaves)
    nbytes = total * 4
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

    copy_dst = np.empty_like(buf)
    memcpy = interleaved({"memcpy": lambda: np.copyto(copy_dst, buf)}, 200)["memcpy"]
    jitted = T.jit(lambda g: lax.pmean(g, "data"))
    torch_fn = _torch_allreduce(rank, n, total) if n > 1 else None
    with mesh:
        expect = lax.pmean(grads, "data")
        got = jitted(grads)
        for a, b in zip(T.tree.leaves(got), T.tree.leaves(expect)):
            assert np.allclose(a, b, rtol=1e-6, atol=1e-6)
        times = interleaved({
            "bare Allreduce (one buffer)": bare,
            "jit pmean": lambda: jitted(grads),
            "eager pmean": lambda: lax.pmean(grads, "data"),
            "pack+Allreduce+divide by hand": by_hand,
            "per-leaf Allreduce": per_leaf,
            "torch.distributed gloo": torch_fn,
        }, repeats, stat=median_and_p10)
    if torch_fn is not None:
        import torch.distributed as tdist
        tdist.destroy_process_group()         # else gloo's threads abort the exit
    base, base10 = times["bare Allreduce (one buffer)"]
    rows = [{"name": k, "ms": t * 1e3, "ratio": t / base, "GB/s": nbytes / t / 1e9,
             "p10_ms": t10 * 1e3, "p10_ratio": t10 / base10} for k, (t, t10) in times.items()]
    emit(rank, "allreduce", rows, processes=n, floats=total, leaves=len(leaves),
         memcpy_GBps=nbytes / memcpy / 1e9)


# ---------------------------------------------------------------------------------------------
# (b) the data-parallel training step
# ---------------------------------------------------------------------------------------------

def part_dp(repeats, batch, hidden):
    import fnn
    from digits_mlp import load_digits, make_optimizer
    from fnn import optim
    from transforms import random
    rank, n = dist.process_index(), dist.process_count()
    (x_train, y_train), _ = load_digits()
    model = fnn.Sequential([fnn.Dense(hidden), fnn.relu, fnn.Dense(hidden), fnn.relu,
                            fnn.Dense(10)])
    params, state = model.init(random.key(0), x_train[:1])
    opt = make_optimizer("adam", None, 1000)
    opt_state = opt.init(params)

    def loss_fn(params, x, y):
        return fnn.losses.cross_entropy(model.apply(params, state, x)[0], y)

    @T.jit
    def train_step(params, opt_state, x, y):
        loss, grads = T.value_and_grad(loss_fn)(params, x, y)
        grads, loss = lax.pmean((grads, loss), "data")
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    share = batch // n
    xb = x_train[rank * share:(rank + 1) * share]
    yb = y_train[rank * share:(rank + 1) * share]
    carry = [params, opt_state]

    def step():
        carry[0], carry[1], _ = train_step(carry[0], carry[1], xb, yb)

    with dist.Mesh({"data": n}):
        t, t10 = interleaved({"step": step}, repeats, stat=median_and_p10)["step"]
    emit(rank, "dp", [{"name": f"{n} process(es)", "ms": t * 1e3, "p10_ms": t10 * 1e3}],
         processes=n, batch=batch, hidden=hidden)


# ---------------------------------------------------------------------------------------------
# (c) model-parallel steps vs the unsplit step
# ---------------------------------------------------------------------------------------------

def part_mp(steps):
    import model_parallel as mp
    from digits_mlp import load_digits
    rank, n = dist.process_index(), dist.process_count()
    data, _ = load_digits()
    args = mp.parse_args(["--no-check"])
    rows = []
    if n == 1:                  # the unsplit model (2 stages of the pipeline = the same MLP)
        from transforms import random
        batches = mp.global_batches(data, args, 4)
        step = T.jit(lambda p, x, y: mp.sgd(p, T.grad(mp.dense_loss)(p, x, y), args.lr))
        carry, k = [mp.dense_init(random.key(0), [64, args.hidden, 10])], [0]

        def one():
            x, y = batches[k[0] % len(batches)]
            k[0] += 1
            carry[0] = step(carry[0], x, y)
        rows.append({"name": f"unsplit 64-{args.hidden}-10 jitted step",
                     "ms": interleaved({"s": one}, steps)["s"] * 1e3})
    else:
        # each call of the example's loop sets up (and fetches its compiled step) again: the
        # time per step is the difference of a long and a short run, each the best of 5 (one
        # run each gave negative differences when the set-up time varied more than the steps
        # took); a difference still below zero is reported as nan, not as a time
        for name, fn in (("tensor parallel", mp.tensor_parallel),
                         ("pipeline (GPipe, 4 micro-batches)", mp.pipeline)):
            fn(args, data, 2)                                    # compile
            spans = []
            for k in (2, 2 + steps):
                best = float("inf")
                for _ in range(5):
                    dist.barrier()
                    t0 = time.perf_counter()
                    fn(args, data, k)
                    dist.barrier()
                    best = min(best, time.perf_counter() - t0)
                spans.append(best)
            per_step = (spans[1] - spans[0]) / steps * 1e3
            rows.append({"name": f"{name} on {n}",
                         "ms": per_step if per_step > 0 else float("nan")})
    emit(rank, "mp", rows, processes=n)


# ---------------------------------------------------------------------------------------------
# the driver: every part, side by side
# ---------------------------------------------------------------------------------------------

def _run(cmd, threads, timeout=900):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               **{v: str(threads) for v in THREAD_VARS})
    env.pop("NUMBAX_DISTRIBUTED", None)
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    return [json.loads(ln[5:]) for ln in r.stdout.splitlines() if ln.startswith("JSON ")]


def drive(args):
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or \
        shutil.which("mpiexec")
    if mpiexec is None:
        sys.exit("mpiexec not found: pip install -e '.[distributed]'")
    me = [sys.executable, os.path.abspath(__file__)]
    two = [mpiexec, "-n", "2"] + me

    (a,) = _run(two + ["--part", "allreduce", "--repeats", str(args.repeats)], 1)
    print(f"(a) all-reduce of the MLP gradient tree on {a['processes']} processes: "
          f"{a['floats']:,} float32 in {a['leaves']} leaves ({a['floats'] * 4 / 1e6:.1f} MB); "
          f"memcpy of that size: {a['memcpy_GBps']:.1f} GB/s")
    print(f"    {'':32s} {'median':>8s}    {'ratio':>5s}   {'GB/s':>5s}        "
          f"{'p10':>8s}    {'ratio':>5s}")
    for r in a["rows"]:
        print(f"    {r['name']:32s} {r['ms']:8.3f} ms  {r['ratio']:5.2f}x   "
              f"{r['GB/s']:5.2f} GB/s   {r['p10_ms']:8.3f} ms  {r['p10_ratio']:5.2f}x")
    for batch in args.batches:
        dp = [_run([sys.executable, os.path.abspath(__file__), "--part", "dp", "--batch",
                    str(batch), "--repeats", str(args.repeats)], 2)[0],
              _run(two + ["--part", "dp", "--batch", str(batch), "--repeats",
                          str(args.repeats)], 1)[0]]
        base, base10 = dp[0]["rows"][0]["ms"], dp[0]["rows"][0]["p10_ms"]
        print(f"(b) data-parallel digits-MLP step (hidden {dp[0]['hidden']}), global batch "
              f"{batch} (median, then p10):")
        for d, label in zip(dp, ("1 process x 2 BLAS threads", "2 processes x 1 BLAS thread")):
            ms, p10 = d["rows"][0]["ms"], d["rows"][0]["p10_ms"]
            print(f"    {label:32s} {ms:8.3f} ms  {ms / base:5.2f}x   {p10:8.3f} ms  "
                  f"{p10 / base10:5.2f}x")
    (unsplit,) = _run([sys.executable, os.path.abspath(__file__), "--part", "mp", "--repeats",
                       str(args.repeats)], 2)[0]["rows"]
    split = _run(two + ["--part", "mp", "--repeats", str(args.steps)], 1)[0]["rows"]
    print("(c) model-parallel steps (examples/model_parallel.py, batch 64) vs the unsplit "
          "model's step on 1 process x 2 threads:")
    print(f"    {unsplit['name']:40s} {unsplit['ms']:8.3f} ms   1.00x")
    for s in split:
        print(f"    {s['name']:40s} {s['ms']:8.3f} ms  {s['ms'] / unsplit['ms']:5.2f}x")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=["allreduce", "dp", "mp"],
                   help="one part, in this process (under mpiexec); default: drive them all")
    p.add_argument("--repeats", type=int, default=100)
    p.add_argument("--steps", type=int, default=30, help="(c): timed model-parallel steps")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batches", type=int, nargs="+", default=[64, 512],
                   help="(b): the global batch sizes to compare")
    p.add_argument("--hidden", type=int, default=128)
    args = p.parse_args(argv)
    dist.initialize()
    if args.part is None:
        if dist.process_count() > 1:
            args.part = "allreduce"             # `mpiexec -n 2 python distributed.py`: as before
        else:
            return drive(args)
    if args.part == "allreduce":
        part_allreduce(args.repeats)
    elif args.part == "dp":
        part_dp(args.repeats, args.batch, args.hidden)
    else:
        part_mp(args.repeats)


if __name__ == "__main__":
    main()
