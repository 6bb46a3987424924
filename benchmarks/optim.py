"""Benchmark one Adam step (update + apply_updates) on the 784-512-512-10 MLP's parameters.

Usage::

    python benchmarks/optim.py [--repeats 200] [--warmup 10]

The parameters are float32 (669,706 of them in six leaves). Measured in one run:

* ``fnn.optim.adam`` under ``transforms.jit`` (when available; otherwise eagerly, op by op),
  the whole step ``opt.update`` + ``optim.apply_updates`` as one function;
* the same step eagerly (each ``transforms.numpy`` op dispatched to NumPy);
* a NumPy-by-hand Adam step written the usual way (one NumPy expression per formula);
* the same by hand with in-place NumPy operations and reused buffers (the best plain NumPy
  can do without a compiler);
* optax's adam under ``jax.jit`` when JAX and optax are installed.

It prints the median and best per-step time and the ratio to the by-hand NumPy step
(target under jit: <= 0.5x).
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
from transforms import tree  # noqa: E402
from fnn import optim  # noqa: E402

SIZES = [784, 512, 512, 10]
LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-8


def mlp_params(seed=0):
    rng = np.random.default_rng(seed)
    params = {}
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        params[f"dense_{i}"] = {
            "w": (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32),
            "b": np.zeros(b, np.float32)}
    return params


def timeit(fn, repeats, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def numpy_adam_by_hand(params, grads, repeats, warmup):
    """The usual hand-written step: new arrays for every formula."""
    ps = tree.leaves(params)
    gs = tree.leaves(grads)
    ms = [np.zeros_like(p) for p in ps]
    vs = [np.zeros_like(p) for p in ps]
    t = [0]

    def step():
        t[0] += 1
        bc1 = np.float32(1 - B1 ** t[0])
        bc2 = np.float32(1 - B2 ** t[0])
        for i, (p, g) in enumerate(zip(ps, gs)):
            m = (1 - B1) * g + B1 * ms[i]
            v = (1 - B2) * (g * g) + B2 * vs[i]
            ms[i], vs[i] = m, v
            ps[i] = p - LR * (m / bc1) / (np.sqrt(v / bc2) + EPS)
    return timeit(step, repeats, warmup), ps


def numpy_adam_inplace(params, grads, repeats, warmup):
    """In-place NumPy with preallocated scratch buffers (no allocation in the loop)."""
    ps = [p.copy() for p in tree.leaves(params)]
    gs = tree.leaves(grads)
    ms = [np.zeros_like(p) for p in ps]
    vs = [np.zeros_like(p) for p in ps]
    tmp = [np.empty_like(p) for p in ps]
    tmp2 = [np.empty_like(p) for p in ps]
    t = [0]

    def step():
        t[0] += 1
        bc1 = np.float32(1 - B1 ** t[0])
        bc2 = np.float32(1 - B2 ** t[0])
        for p, g, m, v, a, b in zip(ps, gs, ms, vs, tmp, tmp2):
            m *= B1
            np.multiply(g, 1 - B1, out=a)
            m += a
            v *= B2
            np.multiply(g, g, out=a)
            a *= 1 - B2
            v += a
            np.divide(v, bc2, out=a)
            np.sqrt(a, out=a)
            a += EPS
            np.divide(m, bc1, out=b)
            b /= a
            b *= LR
            p -= b
    return timeit(step, repeats, warmup)


def ours(params, grads, repeats, warmup, use_jit):
    opt = optim.adam(LR, B1, B2, EPS)

    def step(p, s, g):
        u, s = opt.update(g, s, p)
        return optim.apply_updates(p, u), s

    fn = T.jit(step) if use_jit else step
    state = [params, opt.init(params)]

    def run():
        state[0], state[1] = fn(state[0], state[1], grads)
    return timeit(run, repeats, warmup), state[0]


def optax_step(params, grads, repeats, warmup):
    try:
        import jax
        import optax
    except ImportError:
        return None
    opt = optax.adam(LR, B1, B2, EPS)

    @jax.jit
    def step(p, s, g):
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    p = jax.tree.map(jax.numpy.asarray, params)
    g = jax.tree.map(jax.numpy.asarray, grads)
    state = [p, opt.init(p)]

    def run():
        state[0], state[1] = step(state[0], state[1], g)
        jax.block_until_ready(state[0])
    return timeit(run, repeats, warmup)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    args = ap.parse_args()

    params = mlp_params()
    rng = np.random.default_rng(1)
    grads = tree.map(lambda p: (rng.standard_normal(p.shape) * 0.01).astype(np.float32), params)
    n = sum(p.size for p in tree.leaves(params))
    print(f"Adam step (update + apply) on an MLP {'-'.join(map(str, SIZES))}: {n:,} float32 "
          f"parameters in {len(tree.leaves(params))} leaves; {args.repeats} repeats")

    # correctness first: ours (eager) against the by-hand step after 3 steps
    (_, _), p_hand = numpy_adam_by_hand(params, grads, 3, 0)
    (_, _), p_ours = ours(params, grads, 3, 0, use_jit=False)
    err = max(float(np.max(np.abs(a - b))) for a, b in zip(p_hand, tree.leaves(p_ours)))
    print(f"max |ours - numpy by hand| after 3 steps: {err:.2e}")

    rows = []
    (hand_med, hand_min), _ = numpy_adam_by_hand(params, grads, args.repeats, args.warmup)
    rows.append(("numpy by hand", hand_med, hand_min))
    rows.append(("numpy by hand, in place",
                 *numpy_adam_inplace(params, grads, args.repeats, args.warmup)))
    t0 = time.perf_counter()
    (jm, jmin), p_jit = ours(params, grads, args.repeats, args.warmup, use_jit=True)
    rows.append(("fnn.optim.adam, T.jit", jm, jmin))
    print(f"(jit: first call + {args.warmup} warmups + timing took "
          f"{time.perf_counter() - t0:.2f} s)")
    (em, emin), _ = ours(params, grads, max(args.repeats // 4, 10), 2, use_jit=False)
    rows.append(("fnn.optim.adam, eager", em, emin))
    ox = optax_step(params, grads, args.repeats, args.warmup)
    if ox is not None:
        rows.append(("optax.adam, jax.jit", *ox))
    else:
        print("optax/JAX not installed: skipping that comparison")

    print(f"{'':28s} {'median ms':>10s} {'best ms':>10s} {'vs numpy by hand':>17s}")
    for name, med, best in rows:
        print(f"{name:28s} {med * 1e3:10.3f} {best * 1e3:10.3f} {med / hand_med:16.2f}x")
    print(f"target: jit <= 0.5x numpy by hand -> "
          f"{'met' if jm <= 0.5 * hand_med else 'NOT met'} ({jm / hand_med:.2f}x)")


if __name__ == "__main__":
    main()
