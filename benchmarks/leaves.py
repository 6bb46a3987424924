"""Compile time against the number of pytree leaves (each measured in a fresh process with a
fresh compile cache): a `tree.map(v * 2 + 1)` and an Adam step over N small parameter
arrays. Before runs of identical helper calls became table-driven loops, 250 / 500 / 1,000
leaves took 29 / 78 / 299 s for the tree map; the target is linear growth and a 1,000-leaf
Adam step in under 5 s. "per call" is the median of 7 calls after the first: a mean let one
collection of Python's oldest generation (~0.1 s with Numba's objects in the heap, falling
on whichever call happens to allocate past its threshold) decide the figure.

    python benchmarks/leaves.py [N ...]
"""
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import sys, time
import numpy as np
t0 = time.perf_counter()
import transforms as T
from fnn import optim
n, kind = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(0)
tree = {f"p{i:04d}": rng.normal(size=(i % 7 + 2, 3)).astype(np.float32) for i in range(n)}
if kind == "map":
    f = T.jit(lambda t: T.tree.map(lambda v: v * 2 + 1, t))
    args = (tree,)
else:
    opt = optim.adam(1e-3)
    state = opt.init(tree)
    def step(p, s, g):
        u, s = opt.update(g, s, p)
        return optim.apply_updates(p, u), s
    f = T.jit(step)
    args = (tree, state, tree)
t1 = time.perf_counter()
f(*args)
t2 = time.perf_counter()
calls = []
for _ in range(7):
    t = time.perf_counter()
    f(*args)
    calls.append(time.perf_counter() - t)
print(f"{t2 - t1:.2f} {sorted(calls)[3] * 1e3:.2f}")
"""


def run(n, kind):
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, NUMBAX_CACHE_DIR=d,
                   PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        out = subprocess.run([sys.executable, "-c", CHILD, str(n), kind], env=env,
                             capture_output=True, text=True, timeout=1800)
        if out.returncode:
            raise RuntimeError(out.stderr[-2000:])
        first, per_call = out.stdout.split()
        return float(first), float(per_call)


def main(argv):
    sizes = [int(a) for a in argv] or [100, 250, 500, 1000]
    print(f"{'leaves':>7} {'tree.map first call (s)':>24} {'per call (ms)':>14} "
          f"{'adam first call (s)':>20} {'per call (ms)':>14}")
    for n in sizes:
        m_first, m_call = run(n, "map")
        a_first, a_call = run(n, "adam")
        print(f"{n:>7} {m_first:>24.2f} {m_call:>14.2f} {a_first:>20.2f} {a_call:>14.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
