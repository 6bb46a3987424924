"""Eager-mode overhead: tnp primitives against bare NumPy, and `grad` of an MLP against a
hand-written NumPy backward pass (and HIPS autograd when installed).

Usage::

    python benchmarks/eager.py [--repeats 7] [--quick] [--blas-threads N]

Part 1 times one call of `tnp.add/multiply/exp/sum/dot` on small and medium float32 arrays
next to the same NumPy call and prints the medians (µs) and our overhead (µs and ratio).

Part 2 times the gradient of a 784-512-512-10 MLP cross-entropy loss (log-softmax, batch 128,
float32) three ways: `transforms.grad` in eager mode (no jit), NumPy backprop by hand, and
HIPS `autograd.grad` if it is importable. Target: eager grad within 2x of hand-written NumPy.
The matmuls dominate both; the BLAS they run on is printed (OPENBLAS_CORETYPE pins OpenBLAS
to its AVX2 kernels on these machines).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import transforms as T  # noqa: E402
import transforms.numpy as tnp  # noqa: E402


def _interleaved(contenders, repeats, number):
    """Median seconds per call for each contender; the rounds alternate between contenders
    so that a busy machine slows them alike."""
    times = {k: [] for k, f in contenders.items() if f is not None}
    for f in contenders.values():
        if f is not None:
            f()
    for _ in range(repeats):
        for k, f in contenders.items():
            if f is None:
                continue
            t0 = time.perf_counter()
            for _ in range(number):
                f()
            times[k].append((time.perf_counter() - t0) / number)
    return {k: (statistics.median(times[k]) if f is not None else None)
            for k, f in contenders.items()}


def _number_for(fn, target=0.05):
    t0 = time.perf_counter()
    fn()
    dt = max(time.perf_counter() - t0, 1e-7)
    return max(1, min(20000, int(target / dt)))


# ---------------------------------------------------------------------------------------------
# Part 1: per-primitive overhead
# ---------------------------------------------------------------------------------------------

def bench_primitives(repeats):
    rng = np.random.default_rng(0)
    sizes = {"small": (8, 8), "medium": (256, 256)}
    print("\n== eager primitive calls (float32): median time per call ==")
    print(f"{'op':<10}{'size':<16}{'numpy us':>10}{'tnp us':>10}{'overhead us':>13}{'ratio':>8}")
    rows = []
    for label, shape in sizes.items():
        x = rng.standard_normal(shape).astype(np.float32)
        y = rng.standard_normal(shape).astype(np.float32)
        cases = [
            ("add", lambda: np.add(x, y), lambda: tnp.add(x, y)),
            ("mul", lambda: np.multiply(x, y), lambda: tnp.multiply(x, y)),
            ("exp", lambda: np.exp(x), lambda: tnp.exp(x)),
            ("sum", lambda: np.sum(x), lambda: tnp.sum(x)),
            ("sum ax0", lambda: np.sum(x, axis=0), lambda: tnp.sum(x, axis=0)),
            ("dot", lambda: np.dot(x, y), lambda: tnp.dot(x, y)),
        ]
        for name, f_np, f_t in cases:
            np.testing.assert_allclose(f_t(), f_np(), rtol=1e-4, atol=1e-4)
            n = _number_for(f_np)
            res = _interleaved({"np": f_np, "t": f_t}, repeats, n)
            t_np, t_t = res["np"], res["t"]
            rows.append((name, label, t_np, t_t))
            print(f"{name:<10}{label + str(shape):<16}{t_np * 1e6:>10.2f}{t_t * 1e6:>10.2f}"
                  f"{(t_t - t_np) * 1e6:>13.2f}{t_t / t_np:>8.2f}")
    return rows


# ---------------------------------------------------------------------------------------------
# Part 2: grad of an MLP
# ---------------------------------------------------------------------------------------------

SIZES = (784, 512, 512, 10)
BATCH = 128


def init_params(rng, dtype=np.float32):
    params = []
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        w = (rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(dtype)
        params.append((w, np.zeros(b, dtype)))
    return params


def loss_tnp(params, x, y_onehot):
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i < len(params) - 1:
            h = tnp.maximum(h, 0.0)
    z = h - tnp.max(h, axis=1, keepdims=True)
    logp = z - tnp.log(tnp.sum(tnp.exp(z), axis=1, keepdims=True))
    return -tnp.sum(logp * y_onehot) / x.shape[0]


def loss_np(params, x, y_onehot):
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i < len(params) - 1:
            h = np.maximum(h, 0)
    z = h - h.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -(logp * y_onehot).sum() / x.shape[0]


def grad_by_hand(params, x, y_onehot):
    """Forward pass keeping activations, then the backward pass written out."""
    acts = [x]
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i < len(params) - 1:
            h = np.maximum(h, 0)
        acts.append(h)
    z = h - h.max(axis=1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    d = (p - y_onehot) / np.float32(x.shape[0])
    grads = [None] * len(params)
    for i in reversed(range(len(params))):
        w, _ = params[i]
        grads[i] = (acts[i].T @ d, d.sum(axis=0))
        if i > 0:
            d = (d @ w.T) * (acts[i] > 0)
    return grads


def bench_mlp(repeats):
    rng = np.random.default_rng(0)
    params = init_params(rng)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    labels = rng.integers(0, SIZES[-1], BATCH)
    y = np.eye(SIZES[-1], dtype=np.float32)[labels]

    grad_t = T.grad(loss_tnp)
    g_t = grad_t(params, x, y)
    g_h = grad_by_hand(params, x, y)
    for (a, b), (c, d) in zip(g_t, g_h):
        assert a.dtype == np.float32 and b.dtype == np.float32
        np.testing.assert_allclose(a, c, rtol=2e-3, atol=2e-5)
        np.testing.assert_allclose(b, d, rtol=2e-3, atol=2e-5)

    contenders = {
        "numpy by hand": lambda: grad_by_hand(params, x, y),
        "numpy forward only": lambda: loss_np(params, x, y),
        "transforms.grad (eager)": lambda: grad_t(params, x, y),
    }
    try:
        import autograd
        import autograd.numpy as anp

        def loss_ag(params, x, y_onehot):
            h = x
            for i, (w, b) in enumerate(params):
                h = anp.dot(h, w) + b
                if i < len(params) - 1:
                    h = anp.maximum(h, 0.0)
            z = h - anp.max(h, axis=1, keepdims=True)
            logp = z - anp.log(anp.sum(anp.exp(z), axis=1, keepdims=True))
            return -anp.sum(logp * y_onehot) / x.shape[0]

        g_ag = autograd.grad(loss_ag)
        contenders["HIPS autograd"] = lambda: g_ag(params, x, y)
    except ImportError:
        contenders["HIPS autograd"] = None
    results = _interleaved(contenders, repeats, number=5)

    print(f"\n== grad of MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, float32 "
          "(median per call) ==")
    base = results["numpy by hand"]
    for k, v in results.items():
        if v is None:
            print(f"{k:<28}{'not installed':>12}")
        else:
            print(f"{k:<28}{v * 1e3:>9.2f} ms{v / base:>8.2f}x")
    ratio = results["transforms.grad (eager)"] / base
    print(f"target: eager grad <= 2x hand-written NumPy -> {ratio:.2f}x "
          f"({'met' if ratio <= 2 else 'MISSED'})")
    return results


def blas_info():
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                      "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if k in os.environ}
    try:
        from threadpoolctl import threadpool_info
        info = [(i.get("internal_api"), i.get("architecture"), i.get("num_threads"))
                for i in threadpool_info()]
    except ImportError:
        info = "threadpoolctl not installed"
    return env, info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="limit BLAS threads for this run (threadpoolctl); on a shared, busy "
                         "machine multi-threaded BLAS timings are dominated by preemption")
    args = ap.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    limit = None
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits(limits=args.blas_threads, user_api="blas")
    env, info = blas_info()
    print(f"numpy {np.__version__}; BLAS environment {env}; threadpools {info}")
    if hasattr(os, "getloadavg"):
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    try:
        bench_primitives(repeats)
        bench_mlp(repeats)
    finally:
        if limit is not None:
            limit.restore_original_limits()


if __name__ == "__main__":
    main()
