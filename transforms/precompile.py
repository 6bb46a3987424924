"""Warm the disk cache once per machine: compile the backend's common kernels ahead of use.

    python -m transforms.precompile [--dtypes float32,float64] [--processes N]

or ``transforms.precompile.precompile()`` from Python. The first compiled call of a program
compiles, besides the program itself, the backend kernels it calls (the vectorisable
exp/log/tanh/logistic/sin/cos/pow, NaN-aware max/min, BLAS gemm for matrix products and
convolutions, integer division, the random-bit generator, the convolution kernels of
`kernels_conv` that are switched on): about half of a cold first call
for a small training step. Kernels are typed per argument *type*, never per shape or
constant, so one compiled copy in the cache directory (``NUMBAX_CACHE_DIR``) serves every
later program of that dtype; this command compiles them for the given dtypes so that even
the first program on a new machine (or after the backend changed, which invalidates the
cache) waits only for its own code.

How: a small representative program per dtype, using every common kernel, is lowered and
compiled (not run) -- the kernels are then compiled with exactly the argument types
generated code passes them. With several dtypes the programs compile in parallel child
processes (one per dtype, at most ``--processes``); the parent then loads every kernel
signature the children compiled from the disk cache, recompiling any entry a concurrent
write lost, so the cache ends complete. Running it again is cheap (everything loads).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

__all__ = ["precompile", "DTYPES"]

DTYPES = ("float32", "float64")


def _program(dt):
    """(function, example arguments) touching the common kernels in float dtype `dt`."""
    import numpy as np

    import transforms as T
    import transforms.numpy as tnp

    dt = np.dtype(dt)

    # (no convolution here, whose generated loops would only lengthen the program's own
    # compile: the convolution kernels are compiled directly, see `_compile_dtype`)
    def prog(x, y, w, big_a, big_b, i, j, key):
        a = tnp.exp(x) + tnp.log(tnp.abs(y) + 1) + tnp.tanh(x) + T.nn.sigmoid(y)
        a = a + tnp.sin(x) * tnp.cos(y) + tnp.abs(x) ** y + tnp.round(x)
        a = tnp.maximum(a, x) + tnp.minimum(a, y) + tnp.max(x) + tnp.min(y)
        m = w @ w                                       # small product: the serial gemm
        big = big_a @ big_b                             # a large one: the threaded gemm
        q = i // j + i % j + i ** 3
        r = T.random.normal(key, (4,), dt)
        return a, m, big, q, r

    rng = np.random.default_rng(0)
    args = (rng.standard_normal(64).astype(dt), rng.standard_normal(64).astype(dt),
            rng.standard_normal((32, 32)).astype(dt),
            np.zeros((1024, 512), dt), np.zeros((512, 512), dt),
            np.arange(1, 17, dtype=np.int64), np.arange(3, 19, dtype=np.int64),
            T.random.PRNGKey(0))
    return prog, args


def _kernel_dispatchers():
    from numba.core.dispatcher import Dispatcher

    from .backend.numba import kernels, kernels_conv, kernels_special
    out = {}
    for mod in (kernels, kernels_special):
        for name, v in vars(mod).items():
            if isinstance(v, Dispatcher) and not name.startswith("_") and \
                    v.py_func.__module__ == mod.__name__:
                out[f"{mod.__name__.rsplit('.', 1)[1]}.{name}"] = v
    out.update(kernels_conv.dispatchers())      # (entry points of size-generic kernels)
    return out


def _compile_dtype(dt):
    """Compile the representative program of `dt` in this process; returns the kernel
    signatures now compiled: {qualified kernel name: [pickled signature, ...]}. Signatures
    loaded from the cache are left out (a cached program still loads the kernels it calls
    by symbol, `calls.ref`)."""
    import pickle

    import transforms as T
    from .backend.numba import kernels_conv
    prog, args = _program(dt)
    T.jit(prog).lower(*args).compile()
    kernels_conv.compile_all(dt)        # (the convolution kernels switched on, if any)
    out = {}
    for name, d in _kernel_dispatchers().items():
        new = [pickle.dumps(s).hex() for s in d.signatures if not d.stats.cache_hits.get(s)]
        if new:
            out[name] = new
    return out


def _child(dt, timeout):
    env = dict(os.environ)
    # Numba's kernels: what programs the direct compiler leaves to Numba link (the direct
    # compiler compiles the kernels' source into each program itself)
    env["NUMBAX_DIRECT"] = "0"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, "-m", "transforms.precompile", "--child", dt],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def precompile(dtypes=DTYPES, *, processes=None, timeout=1800):
    """Compile the backend's common kernels for each float dtype in `dtypes` into the disk
    cache (see the module docstring). `processes`: child processes compiling at once
    (default: one per dtype, at most the number of CPUs; 1 compiles in this process).

    Returns a dict: ``kernels`` (kernel signatures compiled for the representative
    programs; 0 when those programs themselves were already cached, i.e. the cache is warm),
    ``found`` (of those, found in the cache by the final check), ``compiled`` (recompiled by
    it), ``written`` (compiled earlier in this process, written now), ``seconds``,
    ``cache_dir``."""
    import pickle

    import numpy as np

    from .backend.numba import cache
    dtypes = [np.dtype(d).name for d in dtypes]
    bad = [d for d in dtypes if d not in DTYPES]
    if bad:
        raise ValueError(f"precompile: dtypes must be among {DTYPES}, got {bad}")
    if cache.cache_dir() is None:
        raise RuntimeError("precompile: no usable cache directory (set NUMBAX_CACHE_DIR to a "
                           "directory only you can write)")
    t0 = time.perf_counter()
    processes = processes or min(len(dtypes), os.cpu_count() or 1)
    sigs = {}
    if processes <= 1:
        for dt in dtypes:
            for k, v in _compile_dtype(dt).items():
                sigs.setdefault(k, set()).update(v)
    else:
        pending = list(dtypes)
        running = []
        while pending or running:
            while pending and len(running) < processes:
                dt = pending.pop(0)
                running.append((dt, _child(dt, timeout)))
            dt, p = running.pop(0)
            out, err = p.communicate(timeout=timeout)
            if p.returncode:
                raise RuntimeError(f"precompile: compiling the {dt} kernels failed:\n"
                                   f"{err[-3000:]}")
            for k, v in json.loads(out.strip().splitlines()[-1]).items():
                sigs.setdefault(k, set()).update(v)
    # Every signature must be in the cache: load it (or, if a concurrent index write lost
    # it, recompile it); one compiled earlier in this process is written if it is missing.
    disps = _kernel_dispatchers()
    found = compiled = written = total = 0
    for name, hexes in sorted(sigs.items()):
        d = disps.get(name)
        if d is None:
            continue
        for h in sorted(hexes):
            sig = tuple(pickle.loads(bytes.fromhex(h)))
            total += 1
            cres = d.overloads.get(sig)
            if cres is not None:
                if d._cache.load_overload(sig, d.targetctx) is not None:
                    found += 1
                else:
                    d._cache.save_overload(sig, cres)
                    written += 1
                continue
            hits = sum(d.stats.cache_hits.values())
            d.compile(sig)
            if sum(d.stats.cache_hits.values()) > hits:
                found += 1
            else:
                compiled += 1
    return {"kernels": total, "found": found, "compiled": compiled, "written": written,
            "seconds": time.perf_counter() - t0, "cache_dir": cache.cache_dir()}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m transforms.precompile",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--dtypes", default=",".join(DTYPES),
                    help="comma-separated float dtypes (default: float32,float64)")
    ap.add_argument("--processes", type=int, default=None,
                    help="child processes compiling at once (default: one per dtype)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(_compile_dtype(a.child)))
        return 0
    res = precompile([d.strip() for d in a.dtypes.split(",") if d.strip()],
                     processes=a.processes)
    if res["kernels"]:
        print(f"{res['kernels']} kernel signatures compiled into {res['cache_dir']} in "
              f"{res['seconds']:.1f} s ({res['compiled']} recompiled by the final check)")
    else:
        print(f"the kernels were already in {res['cache_dir']} ({res['seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
