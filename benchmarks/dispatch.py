"""Cache-hit dispatch overhead of a jitted function (targets: 5 us for one array, 10 us for a
6-leaf pytree), against a bare NumPy ufunc call and a bare Numba call.

Usage::

    python benchmarks/dispatch.py [--number 20000]
"""
from __future__ import annotations

import argparse
import os
import sys
import timeit

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import transforms as T  # noqa: E402


def best_of(fn, number, repeat=7):
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--number", type=int, default=20000)
    args = ap.parse_args(argv)
    x = np.ones(8, np.float32)
    tree = {"w": np.ones((4, 4), np.float32), "b": np.ones(4, np.float32),
            "layers": [(np.ones(3, np.float32), np.ones(3, np.float32)),
                       (np.ones(2, np.float32), np.ones(2, np.float32))]}
    f1 = T.jit(lambda x: x + 1)
    f6 = T.jit(lambda t: T.tree.map(lambda v: v * 2, t))
    f1(x)
    f6(tree)
    import numba
    nb = numba.njit(lambda x: x)
    nb(x)
    rows = [("jit, 1 array", best_of(lambda: f1(x), args.number)),
            ("jit, 6-leaf pytree", best_of(lambda: f6(tree), args.number)),
            ("NumPy x + 1", best_of(lambda: x + 1, args.number)),
            ("bare numba call", best_of(lambda: nb(x), args.number))]
    for name, t in rows:
        print(f"  {name:<22s} {t * 1e6:7.2f} us")
    print(f"targets: 1 array <= 5 us ({rows[0][1] * 1e6:.2f}), 6-leaf pytree <= 10 us "
          f"({rows[1][1] * 1e6:.2f})")
    return dict(rows)


if __name__ == "__main__":
    main()
