"""Fusion and math kernels: ``tanh(x)*2 + exp(-x*x)*sin(x) - 0.5*x`` on 10^7 float32.

Usage::

    python benchmarks/fusion.py [--n 10000000] [--repeats 10]

Under ``T.jit`` the whole expression is ONE loop (no temporaries), whose tanh/exp/sin are our
vectorisable float32 kernels, split over the cores with prange (loops of at least
``NUMBAX_PARALLEL_MIN`` elements, default 2^20) when Numba's threading layer is TBB or
``NUMBAX_PARALLEL=1`` (see ``lowering.parallel_allowed``). Compared with NumPy (one ufunc
pass and one temporary per operation), and JAX / PyTorch when installed. Accuracy is measured
against float64 NumPy (target 1e-6; the kernels are within a few ulp).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import transforms as T  # noqa: E402
import transforms.numpy as tnp  # noqa: E402
from _timing import interleaved  # noqa: E402


def expr(m, x):
    return m.tanh(x) * 2 + m.exp(-x * x) * m.sin(x) - 0.5 * x


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args(argv)
    x = np.random.default_rng(0).uniform(-4, 4, args.n).astype(np.float32)

    f = T.jit(lambda x: expr(tnp, x))
    t0 = time.perf_counter()
    y = f(x)
    first = time.perf_counter() - t0
    ref = expr(np, x.astype(np.float64))
    scale = np.max(np.abs(ref))
    err = np.max(np.abs(y - ref)) / scale                   # normwise relative error
    err_np = np.max(np.abs(expr(np, x) - ref)) / scale      # NumPy float32, for comparison
    cands = {"T.jit (ours)": lambda: f(x), "NumPy": lambda: expr(np, x)}
    try:
        import jax
        import jax.numpy as jnp
        jf = jax.jit(lambda x: expr(jnp, x))
        xj = jnp.asarray(x)
        cands["jax.jit"] = lambda: jf(xj).block_until_ready()
    except ImportError:
        pass
    try:
        import torch
        xt = torch.from_numpy(x)
        cands["PyTorch"] = lambda: expr(torch, xt)
    except ImportError:
        pass
    rows = list(interleaved(cands, args.repeats).items())   # alternating rounds: _timing.py
    print(f"tanh(x)*2 + exp(-x*x)*sin(x) - 0.5*x on {args.n:,} float32 "
          f"(first call {first:.2f} s)")
    print(f"  error vs float64, max|y - y64| / max|y64|: ours {err:.1e}, NumPy float32 "
          f"{err_np:.1e} (target 1e-6)")
    for name, t in rows:
        print(f"  {name:<14s} {t * 1e3:8.2f} ms")
    print(f"  ours / NumPy = {rows[0][1] / rows[1][1]:.2f} (target: <= 10 ms)")
    return dict(rows)


if __name__ == "__main__":
    main()
