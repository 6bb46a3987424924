"""Batched decompositions: `cholesky` + `solve` of 256 SPD 64x64 matrices, float64; and the
power spectrum `|rfft(x)|^2` of 2^20 points.

Usage::

    python benchmarks/linalg.py [--repeats 60] [--batch 256] [--n 64]

Times, in one run on the same data (median of ``--repeats`` alternating rounds after warm-up,
see _timing.py):

* ``T.jit(f)`` with ``f(a, b) = (tnp.linalg.cholesky(a), tnp.linalg.solve(a, b))``: one Numba
  function looping over the batch around LAPACK (potrf, gesv), see
  ``transforms/backend/numba/rules_decompositions.py``;
* NumPy's own batched ``np.linalg.cholesky(a)`` + ``np.linalg.solve(a, b)`` (its gufuncs loop
  over the batch in C around the same LAPACK routines);
* ``jax.jit`` of the same two calls (two jitted functions, see ``_jax_fn``), when installed;
* each half alone (cholesky, solve) for ours and NumPy's, to see which one dominates, and
  ``lax.linalg.cholesky(a, symmetrize_input=False)``: ``tnp.linalg.cholesky`` first replaces
  ``a`` by ``(a + aᵀ) / 2`` as JAX does (NumPy does not), one more pass over the batch whose
  result goes through memory before LAPACK reads it.

Prints the medians and the ratios (goal: ours within 1.3x of NumPy's calls).
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
from transforms import lax  # noqa: E402
from _timing import interleaved  # noqa: E402


def spd_batch(batch, n, seed=0):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((batch, n, n))
    return m @ np.swapaxes(m, -1, -2) / n + np.eye(n), rng.standard_normal((batch, n, 1))


def both(a, b):
    return tnp.linalg.cholesky(a), tnp.linalg.solve(a, b)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=60)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--n", type=int, default=64)
    args = ap.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP", "MKL",
                                                                  "NUMBA", "NUMBAX"))}
    print(f"environment: {env or '(no BLAS/thread settings)'}")
    a, b = spd_batch(args.batch, args.n)

    j_both = T.jit(both)
    j_chol = T.jit(tnp.linalg.cholesky)
    j_solve = T.jit(tnp.linalg.solve)
    j_chol_nosym = T.jit(lambda a: lax.linalg.cholesky(a, symmetrize_input=False))
    t0 = time.perf_counter()
    L, x = j_both(a, b)
    first = time.perf_counter() - t0
    # correctness: the compiled results equal NumPy's
    np.testing.assert_allclose(L, np.linalg.cholesky(a), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x, np.linalg.solve(a, b), rtol=1e-8, atol=1e-10)

    fns = {"ours": lambda: j_both(a, b),
           "numpy": lambda: (np.linalg.cholesky(a), np.linalg.solve(a, b)),
           "jax": _jax_fn(a, b),
           "ours cholesky": lambda: j_chol(a), "numpy cholesky": lambda: np.linalg.cholesky(a),
           "ours chol, no sym": lambda: j_chol_nosym(a),
           "ours solve": lambda: j_solve(a, b), "numpy solve": lambda: np.linalg.solve(a, b)}
    t = interleaved(fns, args.repeats)
    print(f"cholesky + solve of {args.batch} SPD {args.n}x{args.n} float64 matrices "
          f"(rhs {args.n}x1); first call (trace + compile or cache load) {first:.2f} s")
    for name in ("ours", "numpy", "jax", "ours cholesky", "ours chol, no sym",
                 "numpy cholesky", "ours solve", "numpy solve"):
        if name in t:
            print(f"  {name:<18s} {t[name] * 1e3:8.3f} ms")
    line = f"  ours / NumPy = {t['ours'] / t['numpy']:.2f}"
    if "jax" in t:
        line += f"   ours / JAX = {t['ours'] / t['jax']:.2f}"
    line += (f"   (cholesky {t['ours cholesky'] / t['numpy cholesky']:.2f}, without the "
             f"symmetrisation {t['ours chol, no sym'] / t['numpy cholesky']:.2f}; "
             f"solve {t['ours solve'] / t['numpy solve']:.2f})")
    print(line)
    t.update(rfft_benchmark(args.repeats))
    return t


def rfft_benchmark(repeats, n=1 << 20):
    """rfft of 2^n float64 points and its power spectrum, under jit, against NumPy's own
    pocketfft and jax.jit when installed."""
    x = np.random.default_rng(1).normal(size=n)
    ours = T.jit(lambda x: tnp.abs(tnp.fft.rfft(x)) ** 2)
    np.testing.assert_allclose(ours(x), np.abs(np.fft.rfft(x)) ** 2, rtol=1e-9)
    fns = {"ours rfft": lambda: ours(x), "numpy rfft": lambda: np.abs(np.fft.rfft(x)) ** 2}
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        jf, xj = jax.jit(lambda x: jnp.abs(jnp.fft.rfft(x)) ** 2), jnp.asarray(x)
        fns["jax rfft"] = lambda: jf(xj).block_until_ready()
    except ImportError:
        pass
    t = interleaved(fns, max(5, repeats // 4))
    print(f"|rfft|^2 of {n} float64 points:")
    for k, v in t.items():
        print(f"  {k:<18s} {v * 1e3:8.3f} ms")
    line = f"  ours / NumPy = {t['ours rfft'] / t['numpy rfft']:.2f}"
    if "jax rfft" in t:
        line += f"   ours / JAX = {t['ours rfft'] / t['jax rfft']:.2f}"
    print(line)
    return t


def _jax_fn(a, b):
    """A callable running jax.jit of the same function (None without JAX)."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    # Two jitted calls, one after the other: in ONE jit, XLA ran potrf and getrf concurrently
    # on its two worker threads (2 cores), each kernel's ParallelBatchMap then waited for
    # batch tasks no free worker could take, and the process hung (jaxlib, seen here).
    chol = jax.jit(jnp.linalg.cholesky)
    solve = jax.jit(jnp.linalg.solve)
    aj, bj = jnp.asarray(a), jnp.asarray(b)

    def run():
        chol(aj).block_until_ready()
        solve(aj, bj).block_until_ready()
    return run


if __name__ == "__main__":
    main()
