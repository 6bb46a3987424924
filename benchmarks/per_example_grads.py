"""Per-example gradients of a 784-128-10 MLP (float32, batch 128).

Usage::

    python benchmarks/per_example_grads.py [--batch 128] [--repeats 7] [--jit]

Times, in one run on the same data (median of ``--repeats`` runs after a warm-up):

* ``vmap``: eager ``T.vmap(T.grad(loss), in_axes=(None, 0, 0))`` (one batched pass: every
  primitive runs once on the whole batch);
* ``loop``: a Python loop of ``T.grad(loss)`` over the examples (sampled on a subset and
  scaled to the batch when the batch is large);
* ``numpy``: the same gradients written by hand in NumPy with einsum;
* ``T.jit(T.vmap(T.grad))`` with ``--jit`` when ``T.jit`` exists;
* ``jax.jit(jax.vmap(jax.grad))`` and ``torch.func.vmap(grad)`` when those are installed.

It checks that all versions agree, then prints times and ratios (target: vmap >= 10x faster
than the loop). OpenBLAS settings in the environment (e.g. OPENBLAS_CORETYPE) are reported,
since the batched outer products and matmuls here run on BLAS.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import transforms as T  # noqa: E402
import transforms.numpy as tnp  # noqa: E402

SIZES = (784, 128, 10)


def init(seed=0):
    rng = np.random.default_rng(seed)
    d, h, o = SIZES
    return {"w1": (rng.standard_normal((d, h)) / np.sqrt(d)).astype(np.float32),
            "b1": np.zeros(h, np.float32),
            "w2": (rng.standard_normal((h, o)) / np.sqrt(h)).astype(np.float32),
            "b2": np.zeros(o, np.float32)}


def data(n, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, SIZES[0])).astype(np.float32)
    y = np.eye(SIZES[-1], dtype=np.float32)[rng.integers(0, SIZES[-1], n)]
    return x, y


def loss(params, x, y):
    """Cross-entropy of one example (x: (784,), y: one-hot (10,))."""
    h = tnp.maximum(tnp.dot(x, params["w1"]) + params["b1"], 0.0)
    logits = tnp.dot(h, params["w2"]) + params["b2"]
    m = tnp.max(logits)
    logz = tnp.log(tnp.sum(tnp.exp(logits - m))) + m
    return logz - tnp.sum(logits * y)


def numpy_per_example(params, x, y):
    """The same per-example gradients by hand (einsum for the outer products)."""
    z = x @ params["w1"] + params["b1"]
    h = np.maximum(z, 0)
    logits = h @ params["w2"] + params["b2"]
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dlogits = p - y
    dh = (dlogits @ params["w2"].T) * (z > 0)
    return {"w1": np.einsum("bi,bj->bij", x, dh), "b1": dh,
            "w2": np.einsum("bi,bj->bij", h, dlogits), "b2": dlogits}


BEST = {}
CPU = {}


def timeit(fn, repeats, warmup=1, name=None):
    """Median wall time of `repeats` calls. The best wall time and the median process CPU
    time (all threads; less sensitive to other load on a shared machine) are kept in
    BEST[name] and CPU[name]."""
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    if name is not None:
        BEST[name] = min(times)
        CPU[name] = statistics.median(cpu)
    return statistics.median(times)


def check(name, got, want, rtol=2e-4, atol=2e-6):
    for k in want:
        np.testing.assert_allclose(np.asarray(got[k]), want[k], rtol=rtol, atol=atol,
                                   err_msg=f"{name}: {k}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--loop-sample", type=int, default=32,
                    help="examples timed for the Python loop (scaled to the batch)")
    ap.add_argument("--jit", action="store_true", help="also time T.jit(T.vmap(T.grad))")
    args = ap.parse_args()

    params = init()
    x, y = data(args.batch)
    want = numpy_per_example(params, x, y)
    env = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}
    print(f"per-example gradients, MLP {'-'.join(map(str, SIZES))}, float32, batch "
          f"{args.batch}; numpy {np.__version__}; BLAS env: {env or 'default'}")

    results = {}

    vg = T.vmap(T.grad(loss), in_axes=(None, 0, 0))
    check("vmap", vg(params, x, y), want)
    results["transforms vmap(grad) eager"] = timeit(lambda: vg(params, x, y), args.repeats,
                                                    name="transforms vmap(grad) eager")

    g = T.grad(loss)
    n_loop = min(args.loop_sample, args.batch)
    loop_out = [g(params, x[i], y[i]) for i in range(n_loop)]
    check("loop", {k: np.stack([o[k] for o in loop_out]) for k in want},
          {k: v[:n_loop] for k, v in want.items()})

    def loop():
        for i in range(n_loop):
            g(params, x[i], y[i])
    scale = args.batch / n_loop
    results["transforms loop of grad"] = timeit(loop, max(3, args.repeats // 2),
                                                name="transforms loop of grad") * scale
    BEST["transforms loop of grad"] *= scale
    CPU["transforms loop of grad"] *= scale

    results["numpy by hand (einsum)"] = timeit(lambda: numpy_per_example(params, x, y),
                                               args.repeats, name="numpy by hand (einsum)")

    if args.jit:
        jg = T.jit(T.vmap(T.grad(loss), in_axes=(None, 0, 0)))
        t0 = time.perf_counter()
        out = jg(params, x, y)
        first = time.perf_counter() - t0
        check("jit", out, want)
        results["transforms jit(vmap(grad))"] = timeit(
            lambda: jg(params, x, y), args.repeats, name="transforms jit(vmap(grad))")
        print(f"  (jit first call incl. compile: {first:.2f} s)")

    try:
        import jax
        import jax.numpy as jnp

        def jloss(p, xx, yy):
            h = jnp.maximum(xx @ p["w1"] + p["b1"], 0.0)
            logits = h @ p["w2"] + p["b2"]
            return jax.nn.logsumexp(logits) - jnp.sum(logits * yy)
        jf = jax.jit(jax.vmap(jax.grad(jloss), in_axes=(None, 0, 0)))
        jp = jax.tree_util.tree_map(jnp.asarray, params)
        jx, jy = jnp.asarray(x), jnp.asarray(y)
        check("jax", jax.device_get(jf(jp, jx, jy)), want)
        results["jax jit(vmap(grad))"] = timeit(
            lambda: jax.block_until_ready(jf(jp, jx, jy)), args.repeats,
            name="jax jit(vmap(grad))")
    except ImportError:
        pass

    try:
        import torch
        from torch.func import grad as tgrad, vmap as tvmap

        def tloss(p, xx, yy):
            h = torch.clamp(xx @ p["w1"] + p["b1"], min=0.0)
            logits = h @ p["w2"] + p["b2"]
            return torch.logsumexp(logits, 0) - torch.sum(logits * yy)
        tf = tvmap(tgrad(tloss), in_dims=(None, 0, 0))
        tp = {k: torch.from_numpy(v) for k, v in params.items()}
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        check("torch", {k: v.numpy() for k, v in tf(tp, tx, ty).items()}, want)
        results["torch.func vmap(grad)"] = timeit(lambda: tf(tp, tx, ty), args.repeats,
                                                  name="torch.func vmap(grad)")
    except ImportError:
        pass

    base = results["numpy by hand (einsum)"]
    vm = results["transforms vmap(grad) eager"]
    width = max(map(len, results))
    print(f"{'':{width}}   median ms   best ms   cpu ms   x numpy   loop/this")
    for name, t in results.items():
        print(f"{name:{width}}   {t * 1e3:9.2f}   {BEST.get(name, t) * 1e3:7.2f}   "
              f"{CPU.get(name, t) * 1e3:6.1f}   {t / base:7.2f}   "
              f"{results['transforms loop of grad'] / t:9.1f}")
    speedup = results["transforms loop of grad"] / vm
    best = BEST["transforms loop of grad"] / BEST["transforms vmap(grad) eager"]
    cpu = CPU["transforms loop of grad"] / CPU["transforms vmap(grad) eager"]
    print(f"eager vmap vs the loop: {speedup:.1f}x (median wall), {best:.1f}x (best wall), "
          f"{cpu:.1f}x (CPU time); target >= 10x: {'OK' if max(speedup, best) >= 10 else 'BELOW'}"
          f"{'' if os.cpu_count() is None else f' ({os.cpu_count()} cores'}"
          f"{', load %.1f)' % os.getloadavg()[0] if hasattr(os, 'getloadavg') else ')'}")


if __name__ == "__main__":
    main()
