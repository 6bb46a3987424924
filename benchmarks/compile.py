"""Compile time of the MLP training step (benchmarks/train_step.py), each in a fresh process.

Usage::

    python benchmarks/compile.py [--runs 2]

* cold: an empty cache directory (``NUMBAX_CACHE_DIR`` pointed at a new temporary dir):
  trace + generate + Numba compile + first call (target < 2.5 s);
* warm: the same directory again in a new process: trace + load the generated module and
  Numba's cached machine code + first call (target < 0.4 s).

Each child reports its phases: importing numpy/transforms, Numba's own start-up (importing
numba and initialising its compiler: a fixed cost of any Numba program, paid once per
process), tracing, lowering (source generation), compile-or-load, and the first call.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import time, json, sys
t0 = time.perf_counter()
import numpy as np
import transforms as T
sys.path.insert(0, %(bench)r)
import train_step as ts
t1 = time.perf_counter()
import numba
from numba.core.registry import cpu_target
cpu_target.target_context.refresh()
t2 = time.perf_counter()
from transforms.backend.numba import lower, Executable
rng = np.random.default_rng(0)
params = ts.init()
x = rng.standard_normal((128, 784)).astype(np.float32)
labels = rng.integers(0, 10, 128)
step, init_state, name = ts.make_step(True)
state = init_state(params)
f = T.jit(step)
t3 = time.perf_counter()
closed = f.trace(params, state, x, labels)
t4 = time.perf_counter()
low = lower(closed)
t5 = time.perf_counter()
exe = Executable(low)
t6 = time.perf_counter()
leaves = T.tree.leaves((params, state, x, labels))
exe(*leaves)
t7 = time.perf_counter()
print(json.dumps(dict(imports=t1 - t0, numba_init=t2 - t1, trace=t4 - t3, lower=t5 - t4,
                      compile_or_load=t6 - t5, first_call=t7 - t6,
                      from_disk=exe.loaded_from_disk)))
"""


def run_child(cache_dir):
    env = dict(os.environ, NUMBAX_CACHE_DIR=cache_dir,
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = CHILD % {"bench": os.path.join(ROOT, "benchmarks")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=ROOT)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args(argv)
    results = {"cold": [], "warm": []}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="numbax-bench-") as d:
            results["cold"].append(run_child(d))
            results["warm"].append(run_child(d))
    print("MLP 784-512-512-10 train step (grad + Adam), each row a fresh process:")
    keys = ["imports", "numba_init", "trace", "lower", "compile_or_load", "first_call"]
    print("  " + " ".join(f"{k:>15s}" for k in ["run"] + keys + ["total-init"]))
    for kind in ("cold", "warm"):
        for r in results[kind]:
            core = r["trace"] + r["lower"] + r["compile_or_load"] + r["first_call"]
            print("  " + f"{kind:>15s}" + " ".join(f"{r[k]:15.3f}" for k in keys) +
                  f"{core:15.3f}")
    best = {k: min(r["trace"] + r["lower"] + r["compile_or_load"] + r["first_call"]
                   for r in results[k]) for k in results}
    init = min(r["numba_init"] for r in results["cold"])
    print(f"cold: trace + lower + compile + first call = {best['cold']:.2f} s "
          f"(+ Numba start-up {init:.2f} s = {best['cold'] + init:.2f} s; target < 2.5 s)")
    print(f"warm: trace + lower + load + first call = {best['warm']:.2f} s "
          f"(+ Numba start-up {init:.2f} s; target < 0.4 s)")
    assert all(r["from_disk"] for r in results["warm"])
    return results


if __name__ == "__main__":
    main()
