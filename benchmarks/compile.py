"""Time to first result: the first call of a jitted function, each in a fresh process.

Usage::

    python benchmarks/compile.py [--runs 1] [--only mlp,cnn,pex,scan,example] [--no-jax]
                                 [--tiered]

Workloads: (a) ``mlp`` the MLP training step of benchmarks/train_step.py (grad + Adam),
(b) ``cnn`` the CNN step of benchmarks/cnn.py, (c) ``pex`` per-example gradients
``jit(vmap(grad))`` of benchmarks/per_example_grads.py, (d) ``scan`` a 1,000-step
``lax.scan`` (a small recurrent update), (e) ``example`` examples/per_example_grads.py
and examples/digits_cnn.py ``--fast`` end to end (wall time of the whole script: cold, with
only the kernels cached, cold with ``NUMBAX_TIERED=1``, and warm).

Each of (a)-(d) runs in a new process with an empty cache directory (``cold``: also the
backend's kernels are compiled), in a new process with a cache directory holding only the
backend's kernels (``kernels``: program cold, kernels warm -- what a researcher changing a
line or a shape sees, since kernels are compiled per argument type, not per shape; the
kernels come from one ``transforms.precompile`` run at the start, copied into each fresh
directory), then again with the first directory (``warm``: the program itself is cached),
and -- when JAX is installed -- as the same program under ``jax.jit`` in a new process (JAX
has no disk cache configured: every JAX run is cold).
Phases of our first call:

* ``trace``: Python function to jaxpr;
* ``lower``: fusion plan and generated source;
* ``typing``: Numba's front end (type inference, lowering to LLVM IR): Numba's compile time
  minus its LLVM time;
* ``llvm``: LLVM optimisation and machine-code emission (time Numba holds its LLVM lock,
  from ``numba.core.event``); a warm start shows only loading here;
* ``load``: the rest of building the executable (writing/reading the cache, executing the
  generated module);
* ``exec``: the first execution itself.

``cpu`` is the CPU time of this process over the same span, plus its compile worker's
(``workers.py``; less sensitive than wall time to other processes on a shared machine;
JAX's ``cpu`` counts all its compiler threads).
``first`` is their sum: what a user waits for on the first call, after the one-off imports
(``imports``, ``numba_init``: Numba's own start-up, paid by any Numba program). JAX's
``first`` is the first call of the ``jax.jit`` function (trace + XLA compile + run), after
importing JAX. ``--tiered`` also times the first and later calls with ``jit(tiered=True)``
against the eager step (the same function without jit).

With the direct compiler (``backend/numba/direct``, the default since session 9), Numba's
front end does not run: ``typing`` is 0, ``llvm`` is LLVM's optimisation and machine-code
emission, and ``load`` includes the direct compiler's own lowering (source to LLVM IR).
Session 12 (the second LLVM lane a thread of this process, past llvmlite's lock, with a
0.5 ms switch interval while jobs are outstanding; single-assignment values without stack
slots; noalias Winograd helpers; generated syntax trees dropped after lowering; the lanes'
CPU now counts in ``cpu``) on the 2-core machine (load about 1; JAX 0.10.2 in the same run;
examples also from fresh-process pairs alternated with session 11's code, eight for
digits_cnn and five for per_example_grads, medians; seconds):

========  =====  =====  =====  ===========================  ====================
workload  cold   warm   JAX    tiered first / eager step    examples cold / warm
========  =====  =====  =====  ===========================  ====================
mlp       0.237  0.098  0.435  0.025 / 0.017 (1.42)         per_example_grads
                                                             1.35 / 1.05 (1.29;
                                                             session 11: 1.37)
cnn       0.472  0.152  0.839  0.196 / 0.189 (1.03)         digits_cnn
                                                             1.33 / 0.91 (1.46;
                                                             session 11: 1.55)
scan      0.109  0.057  0.096  0.021 / 0.020 (1.04)
pex       0.228  0.073  0.223  0.019 / 0.016 (1.19)
========  =====  =====  =====  ===========================  ====================

(MLP 0.54x JAX's first call, CNN 0.56x, per-example gradients 1.02x, the scan 1.14x. This
run's ``--only example`` pairs: 1.29 and 1.47.)

Session 11 (less for LLVM to do: LLVM's fma for the samplers' multiply-adds, uint32 Threefry,
reshaped counters fused, no loop strength reduction, full unrolling only up to size 100,
constant loop bounds; scan and while loops compiled directly; each Python entry a module of
its own; the collector paused over a whole compile) on the 2-core machine (load 1-2; JAX
0.10.2 in the same runs; examples from repeated runs, five each; seconds):

========  ===========  =====  =====  ===========================  ====================
workload  cold         warm   JAX    tiered first / eager step    examples cold / warm
========  ===========  =====  =====  ===========================  ====================
mlp       0.245-0.296  0.094  0.398  0.023 / 0.015-0.017 (1.40-   per_example_grads
                                     1.48)                         1.39 / 1.03 (1.35)
cnn       0.431-0.567  0.148  0.771  0.170-0.182 / 0.147-0.175    digits_cnn
                                     (1.04-1.16)                   1.45 / 0.93 (1.56)
scan      0.110-0.131  0.053  0.084  0.018 / 0.017 (1.07)
pex       0.178-0.225  0.065  0.218  0.018 / 0.014 (1.21-1.30)
========  ===========  =====  =====  ===========================  ====================

(MLP 0.6-0.7x JAX's first call, CNN 0.5-0.7x, the scan 1.2-1.3x (6.8x through Numba). LLVM's
CPU time for the examples: digits_cnn 0.61 s over 19 modules (session 10's code in the same
run: 1.19 s), per_example_grads 0.34 s over 11 (1.07 s over 13); their cold / warm ratios with
session 10's code in the same run: 1.94 and 1.72; ``--only example`` gave 1.50 and 1.37. With
.pyc files written (no PYTHONDONTWRITEBYTECODE), warm runs take 0.52 and 0.64 s and the
ratios are about 2.0 and 1.5: the compile work is the same, the warm run shorter.)

Session 10 (two LLVM lanes, a thread and a compile worker process; main functions split into
pieces for them; the batch a run-time argument of the Winograd helper; a table-driven Python
entry; one-pass lowering) on the quiet 2-core machine (load 0.9; ``--tiered``, JAX 0.10.2 in
the same run; the examples row from ``--only example --no-jax`` and repeated runs; seconds):

========  =====  =======  =====  =====  ===========================  ====================
workload  cold   kernels  warm   JAX    tiered first / eager step    examples cold / warm
========  =====  =======  =====  =====  ===========================  ====================
mlp       0.426  0.460    0.120  0.574  0.039 / 0.027 (1.45)         per_example_grads
                                                                      2.3-2.7 / 1.5-1.6
                                                                      (1.48-1.66)
cnn       0.877  0.730    0.196  1.158  0.267 / 0.231 (1.15)         digits_cnn
                                                                      2.5-2.8 / 1.3-1.45
                                                                      (1.80-2.03)
========  =====  =======  =====  =====  ===========================  ====================

(MLP 0.74x JAX's first call, CNN 0.76x; session 9: 0.698 and 1.526 s. The examples' cold
runs are bound by LLVM's CPU time on the two cores: 1.4 s of it over 19 modules for
digits_cnn, 1.4 s over 13 for per_example_grads; with ``NUMBAX_TIERED=1`` they end within
1.25x and 1.36x of warm.)

Session 9 (the direct compiler, LLVM in the compiling thread; quiet machine, load 1.2):

========  =====  =======  =====  =====  ===========================  ====================
workload  cold   kernels  warm   JAX    tiered first / eager step    examples cold / warm
========  =====  =======  =====  =====  ===========================  ====================
mlp       0.698  0.709    0.110  0.541  0.037 / 0.026 (1.41)         per_example_grads
                                                                      3.08 / 1.38 (2.24)
cnn       1.526  1.353    0.182  1.047  0.238 / 0.246 (0.97)         digits_cnn
                                                                      4.65 / 1.21 (3.85)
========  =====  =======  =====  =====  ===========================  ====================

Older measurements, with Numba:

Measured (``--only mlp,cnn --runs 2`` and ``--only example``, the same commit, on the shared
2-core machine at a load average of 3.4-5.5, so wall times swing run to run; CPU seconds are
steadier; JAX ran in the same run, best of its runs; seconds):

========  ==================  ===================  =================  ===============
workload  cold  wall / CPU    kernels  wall / CPU  warm  wall / CPU   JAX  wall / CPU
========  ==================  ===================  =================  ===============
mlp       3.0-9.5 / 3.0-3.7   2.06-2.13 / 2.0-2.1  0.09 / 0.09        0.60 / 0.67
cnn       7.0-19.3 / 7.0-7.3  13.0-20.1 / 6.8-7.1  1.6-1.8 / 0.6-0.7  2.08 / 1.28
========  ==================  ===================  =================  ===============

After the `views.py` intrinsics (static slices, slice stores, literal reshapes and
``np.empty`` of generated code as Numba intrinsics; index casts without ``int()``), the
parent commit and this one run back to back (``--only mlp,cnn --runs 1`` each, load average
4.5-5.3; CPU seconds, JAX's CPU of the same run beside; a second pair at a higher load gave
the same direction):

========  ===================  ====================  ===================  ==============
workload  cold CPU before/now  kernels CPU bef./now  warm CPU before/now  JAX CPU (runs)
========  ===================  ====================  ===================  ==============
mlp       2.87 / 2.31          1.92 / 1.45           0.08 / 0.08          0.63 / 0.58
cnn       7.35 / 6.72          6.65 / 6.07           0.16 / 0.15          1.09 / 1.78
========  ===================  ====================  ===================  ==============

(MLP kernels-cached CPU ratio to JAX 3.1x -> 2.5x.) Where the MLP step's remaining
kernels-cached compile goes (one process, CPU seconds): its main function's Numba lowering
0.25, type inference 0.22, LLVM function passes 0.16, module passes 0.22 and machine code
0.21, its Python wrapper (unboxing 31 arrays) 0.06 plus its share of LLVM (about 0.2 in
all, measured by compiling without it), the three outlined helpers 0.25. The CNN step's: its
two Winograd convolution helpers 1.1-1.4 each and six split pieces 0.15-0.45 each, compiled
while its main function is typed, then the main function itself (lowering, LLVM) ~2.

CPU ratios to JAX in the older table: MLP cold 4.5-5.5x, kernels cached 3.1x; CNN cold
5.5-5.7x, kernels cached 5.3-5.5x (before the shorter pipeline and the splitting of long
functions, same machine: MLP 4.5x / 3.0x, CNN 6.9-8.7x / 6.4-6.7x). The CNN's warm first
call is its first execution (loading takes 0.03 s): the threaded OpenBLAS gemm its
convolutions call costs 1-5 s wall (0.7-1.6 s CPU) per step on a loaded 2-core machine
against 0.2 s (0.07 s CPU) with ``OPENBLAS_NUM_THREADS=1``. A cold MLP step is about 40% the
backend's kernels (what ``transforms.precompile`` removes), the CNN step's about 10%: its
own generated function (convolution loops, 450 lines) is most of its compile, a little more
in Numba's front end (SSA, liveness and lowering over its many blocks) than in LLVM. Lower
LLVM optimisation levels for the main function (``NUMBA_OPT`` 2 / 1) saved 9% / 14% of the
MLP's compile CPU and 0-4% of the CNN's, so they are not used.
Retried with the view intrinsics and the level set for the main function's own module only
(callees kept at 3): O1 and O2 made the MLP main function's final optimisation and machine
code slower (0.62-0.66 s against 0.38-0.43 s at O3), so still not used.

Helpers as modules of their own (``helpers.py``: outlined nests, split pieces and Winograd
convolutions with written signatures, cached by content) and the compile worker
(``workers.py``). ``cpu`` now includes the worker's CPU (``worker CPU`` in the notes). The
parent commit and this branch in one session, alternated (``--only mlp,cnn --runs 1``; load
average 6.6-9.0 on the 2 cores, so wall times say little; the worker was then always on):

========  ===================  ====================  ==================  ===============
workload  cold CPU before/now  kernels CPU bef./now  warm CPU before/now JAX CPU (runs)
========  ===================  ====================  ==================  ===============
mlp       4.05 / 4.72, 4.27    2.57 / 3.04, 2.71     0.13 / 0.15, 0.14   1.19 / 1.13, 1.26
cnn       10.60 / 13.67, 13.34 9.02 / 11.26, 11.32   0.25 / 0.42, 0.27   1.96 / 1.80, 1.78
========  ===================  ====================  ==================  ===============

(CNN now: worker CPU 4.9 cold and 4.2 kernels-cached of those totals; the parent's own CPU
fell to 8.4-8.8 cold and 7.1 kernels-cached.) The worker costs about 2.3 CPU-seconds to
start (imports, Numba's set-up, loading the kernels its helpers call), so it only pays when
a core is idle. On this loaded machine the kernel's autogroup scheduling gives one session
one share however many processes it runs, so the worker took CPU from its own parent: the
CNN step's build (kernels cached, one process each, alternated) took 38-39 s wall with the
worker against 19-28 s without at load 7-9; with the parent taking over the worker's
unstarted helpers (the final version), at load 4.6: 15.8-16.0 s wall (parent 7.2-7.4 CPU-s,
worker 3.3-3.5) against 12.8-13.0 s (8.5-8.7 CPU-s) serial. Hence ``NUMBAX_COMPILE_WORKERS``
defaults to ``auto``: a worker only while the load average leaves a core idle. The gain on
an idle 2-core machine (both cores ours) is not measured: the machine was never idle.

The final version (worker ``auto``: serial at this load) against main, back to back at load
2.5-3.0 (``--only mlp,cnn --runs 1``; wall / CPU seconds, JAX of the same run beside):

========  ======================  ======================  =================  ===========
workload  cold now / main         kernels now / main      warm now / main    JAX
========  ======================  ======================  =================  ===========
mlp       3.39/3.30 / 3.33/3.31   2.12/2.08 / 2.14/2.08   0.12 / 0.14        0.83-0.88
cnn       7.79/7.70 / 8.34/8.13   7.07/6.85 / 7.28/7.20   0.25 / 0.41        1.49-1.51
========  ======================  ======================  =================  ===========

(CNN kernels-cached CPU ratio to JAX 4.83 -> 4.55: the Winograd helpers lost their Python
and C wrappers; the MLP is unchanged, its three helpers were already compiled on their own.)

What the helper modules buy: a program that changes a line but not its convolutions or
loops (the CNN step with another learning rate, compiled into the directory of the first)
compiled its main function and one helper, loading the other 8 helpers from the disk cache:
3.3 CPU-seconds (9.2 s wall) against 8.5-9.2 (18.6-27.8 s wall) for the first program,
kernels cached in both.

Convolutions as size-generic library kernels (``kernels_conv.py``: Winograd, im2col, the
kernel gradient's window rows and channels-last pooling take their sizes as arguments, are
compiled once per dtype -- by ``transforms.precompile`` -- and called through a registered
symbol): the CNN step's source fell from 1,115 to 548 lines, its two per-shape Winograd
helpers and the convolution pieces are gone. Main and this branch alternated (``--only cnn
--runs 1``, twice, load 5.3-6.2; wall / CPU seconds, JAX of the same runs beside):

===========  ============  ============  ===========  ===========
cnn          cold          kernels       warm         JAX
===========  ============  ============  ===========  ===========
main 1       10.8 / 8.06   18.0 / 8.30   0.76 / 0.31  4.96 / 1.98
branch 1     33.4 / 13.3   6.96 / 3.00   0.66 / 0.29  4.00 / 1.92
main 2       22.2 / 9.90   18.7 / 8.46   0.54 / 0.30  -
branch 2     28.2 / 13.1   7.34 / 3.04   0.75 / 0.30  -
===========  ============  ============  ===========  ===========

Kernels cached, the CNN's first call went from 4.2x to 1.6x JAX's CPU (1.7x its wall
time) with every kernel on. The kernels then proved slower at run time when called
repeatedly in a process of their own (the CNN step 86 against 70 ms of CPU with the
Winograd kernel: see kernels_conv.py), so all are opt-in and the default is main's code;
with the im2col and pooling kernels only, the same pair at load 3.0-3.2 gave kernels cached
6.27 / 6.18 (main) against 5.84 / 5.53 (wall / CPU), cold 7.24 / 7.11 against 9.66 / 9.43.
With an empty cache it costs 3-5 CPU-seconds more, once
per machine and dtype: the four float32 kernels compile (more than one per-shape helper
each, since their loops vectorise with run-time trip counts); the precompile step grew from
33-37 s to 76-81 s wall for both dtypes at that load.

Examples end to end (``--fast``; cold / kernels cached / cold with ``NUMBAX_TIERED=1`` /
warm): per_example_grads 54.9 / 83.2 / 2.4 / 10.0 s, digits_cnn 17.2 / 21.8 / 5.5 / 2.2 s.
The DP-SGD step of per_example_grads is one 5,000-line generated function (four inlined
normal samplers); splitting it (``NUMBAX_SPLIT_LINES``) took its compile from 90 to 38
CPU-seconds (kernels cached).

Where the CNN step's warm first call goes (fresh process, program in the disk cache, helpers
called by symbol; CPU seconds, the machine at load 5-9 throughout, so wall times were 1.5-4x
these): ``trace`` 0.007; ``lower`` 0.12-0.14, of which 0.05-0.06 is importing the backend
modules first used there (the twelve rules modules, kernels.py and what it imports) -- this
environment sets PYTHONDONTWRITEBYTECODE=1 and the checkout has no .pyc files, so every
process compiles them from source (with bytecode, ``lower`` took 0.056 instead of 0.107) --
and split.py's name analysis took 0.034; ``load`` (building the executable) 0.07-0.085:
Numba loads 12 libraries (the main function, 9 helper modules, 2 gemm kernel refs), about
40% of it parsing each library's bitcode and listing its symbols, 0.009 compiling the
modules' Python source; ``exec`` 0.08 against 0.065-0.07 for later calls (first-touch
page faults of the 56 MB workspace and fresh pooled outputs, ~1,200 minor faults with the
kernel's large folios; faulting the workspace in from a background thread during the load,
MADV_POPULATE_WRITE, halved the first call's faults but did not lower its CPU measurably,
so it is not used). Since then: split.py analyses names in one backward pass (34 -> 10 ms),
dtype short names, ``_size`` and views/helper rewriting cost less (lowering without imports
40 -> 34 ms), and the generated modules' compiled Python code is cached beside their machine
code. Warm rows, main and this branch alternated in one run (``--only mlp,cnn --runs 1``,
load 6-9; wall / CPU): CNN main 1.07/0.45, 1.51/0.49, 0.83/0.34 against 1.07/0.43,
0.59/0.29, 0.54/0.27; MLP main 0.54/0.18, 0.54/0.18, 0.33/0.17 against 0.39/0.16, 0.40/0.17,
0.27/0.15. The first-call phases alone, alternated in one process pair each (CPU; load
5.8-6.0): CNN 0.288, 0.316, 0.317 -> 0.255, 0.272, 0.277; MLP 0.163, 0.165, 0.171 -> 0.154,
0.157, 0.148. The generated code is byte for byte the same, so run time is unchanged
(cnn.py alternated at load 6: ours / JAX 0.28, 0.27 -> 0.27, 0.27).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")

# Each workload: a function of `T` returning (jitted-able function, args) for ours, and one of
# `jax` returning (jax function, args) for JAX. Kept as source run in the child process.
CHILD = r"""
import json, sys, time
MODE, WORK = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
import numpy as np
sys.path.insert(0, %(bench)r)
rng = np.random.default_rng(0)


def setup_ours():
    import transforms as T
    if WORK == "mlp":
        import train_step as ts
        params = ts.init()
        x = rng.standard_normal((128, 784)).astype(np.float32)
        labels = rng.integers(0, 10, 128)
        step, init_state, _ = ts.make_step(True)
        return step, (params, init_state(params), x, labels)
    if WORK == "cnn":
        import cnn
        x, y = cnn.make_data(64)
        return cnn.make_step(), (cnn.init_params(), x, y)
    if WORK == "pex":
        import per_example_grads as pe
        x, y = pe.data(128)
        return T.vmap(T.grad(pe.loss), in_axes=(None, 0, 0)), (pe.init(), x, y)
    if WORK == "scan":
        from transforms import lax
        import transforms.numpy as tnp
        w = (rng.standard_normal((32, 32)) / 6).astype(np.float32)
        xs = rng.standard_normal((1000, 32)).astype(np.float32)

        def run(w, h0, xs):
            def body(h, x):
                h = tnp.tanh(h @ w + x)
                return h, tnp.sum(h)
            return lax.scan(body, h0, xs)
        return run, (w, np.zeros(32, np.float32), xs)
    raise SystemExit(f"unknown workload {WORK}")


def setup_jax():
    import jax
    import jax.numpy as jnp
    if WORK == "mlp":
        import train_step as ts
        params = ts.init()
        x = rng.standard_normal((128, 784)).astype(np.float32)
        labels = rng.integers(0, 10, 128)
        return ts._jax_step(params, x, labels), ()
    if WORK == "cnn":
        import cnn
        x, y = cnn.make_data(64)
        run = cnn.jax_step_fn()
        p = jax.tree_util.tree_map(jnp.asarray, cnn.init_params())
        return run, (p, jnp.asarray(x), jnp.asarray(y))
    if WORK == "pex":
        import per_example_grads as pe
        x, y = pe.data(128)

        def loss(params, x, y):
            h = jnp.maximum(x @ params["w1"] + params["b1"], 0.0)
            logits = h @ params["w2"] + params["b2"]
            return jax.nn.logsumexp(logits) - jnp.sum(logits * y)
        f = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0, 0)))
        p = jax.tree_util.tree_map(jnp.asarray, pe.init())
        return (lambda *a: jax.block_until_ready(f(*a))), (p, jnp.asarray(x), jnp.asarray(y))
    if WORK == "scan":
        w = jnp.asarray((rng.standard_normal((32, 32)) / 6).astype(np.float32))
        xs = jnp.asarray(rng.standard_normal((1000, 32)).astype(np.float32))

        @jax.jit
        def run(w, h0, xs):
            def body(h, x):
                h = jnp.tanh(h @ w + x)
                return h, jnp.sum(h)
            return jax.lax.scan(body, h0, xs)
        return (lambda *a: jax.block_until_ready(run(*a))), (w, jnp.zeros(32, jnp.float32), xs)


if MODE == "jax":
    import jax
    jax.numpy.zeros(1).block_until_ready()          # backend start-up, as numba_init
    t1 = time.perf_counter()
    fn, args = setup_jax()
    t2 = time.perf_counter()
    c2 = time.process_time()
    fn(*args)
    t3 = time.perf_counter()
    c3 = time.process_time()
    fn(*args)
    t4 = time.perf_counter()
    print(json.dumps(dict(imports=t1 - t0, first=t3 - t2, second=t4 - t3, cpu=c3 - c2)))
    raise SystemExit

import transforms as T
from transforms.backend.numba import lower, Executable
t1 = time.perf_counter()
import numba
from numba.core import event
from numba.core.registry import cpu_target
cpu_target.target_context.refresh()
t2 = time.perf_counter()
fn, args = setup_ours()

if MODE == "tiered":
    eager_t = []
    for _ in range(3):
        s = time.perf_counter()
        fn(*args)
        eager_t.append(time.perf_counter() - s)
    f = T.jit(fn, tiered=True)
    calls = []
    t_start = time.perf_counter()
    while True:
        s = time.perf_counter()
        f(*args)
        calls.append(time.perf_counter() - s)
        if f.tier_stats["switches"] or time.perf_counter() - t_start > 120:
            break
    print(json.dumps(dict(eager=min(eager_t), first=calls[0], calls=len(calls),
                          switch_after=time.perf_counter() - t_start,
                          stats=dict(f.tier_stats))))
    raise SystemExit

f = T.jit(fn)
t3 = time.perf_counter()
c3 = time.process_time()
closed = f.trace(*args).jaxpr
t4 = time.perf_counter()
low = lower(closed)
t5 = time.perf_counter()
compile_l, llvm_l = event.TimingListener(), event.TimingListener()
with event.install_listener("numba:compile", compile_l), \
        event.install_listener("numba:llvm_lock", llvm_l):
    exe = Executable(low)
t6 = time.perf_counter()
leaves = T.tree.leaves(args)
exe(*leaves)
t7 = time.perf_counter()
c7 = time.process_time()
try:                          # the compile worker's CPU (workers.py) counts as ours
    from transforms.backend.numba import workers
    workers._stop()
except ImportError:
    pass
import resource
wcpu = resource.getrusage(resource.RUSAGE_CHILDREN)
wcpu = wcpu.ru_utime + wcpu.ru_stime
numba_total = compile_l.duration if compile_l.done else 0.0
llvm = llvm_l.duration if llvm_l.done else 0.0
print(json.dumps(dict(imports=t1 - t0, numba_init=t2 - t1, trace=t4 - t3, lower=t5 - t4,
                      typing=max(numba_total - llvm, 0.0), llvm=llvm,
                      load=max((t6 - t5) - max(numba_total, llvm), 0.0), exec=t7 - t6,
                      build=t6 - t5, from_disk=exe.loaded_from_disk, cpu=c7 - c3 + wcpu,
                      worker_cpu=wcpu,
                      source_lines=low.source.count(chr(10)))))
"""


def _env(cache_dir):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if cache_dir is not None:
        env["NUMBAX_CACHE_DIR"] = cache_dir
    return env


def run_child(mode, work, cache_dir=None, timeout=900):
    code = CHILD % {"bench": BENCH}
    out = subprocess.run([sys.executable, "-c", code, mode, work], env=_env(cache_dir),
                         capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    if out.returncode:
        raise RuntimeError(f"{mode} {work} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


EXAMPLES = {"per_example_grads": ["--fast"], "digits_cnn": ["--fast"]}


def run_example(name, cache_dir, tiered=False, timeout=3600):
    """Wall time of examples/<name>.py (with EXAMPLES[name]'s arguments) in a new process."""
    env = dict(_env(cache_dir), MPLBACKEND="Agg")
    env["NUMBAX_TIERED"] = "1" if tiered else "0"
    t = time.perf_counter()
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", name + ".py")] +
                         EXAMPLES[name], env=env, capture_output=True, text=True, cwd=ROOT,
                         timeout=timeout)
    if out.returncode:
        raise RuntimeError(f"example {name} failed:\n{out.stderr[-3000:]}")
    return time.perf_counter() - t


def kernel_cache(dest):
    """Fill `dest` with the backend's kernels only (``transforms.precompile`` into a scratch
    directory, whose program entries are then left behind). Returns the seconds taken."""
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="numbax-bench-pre-") as d:
        out = subprocess.run([sys.executable, "-m", "transforms.precompile"], env=_env(d),
                             capture_output=True, text=True, cwd=ROOT, timeout=1800)
        if out.returncode:
            raise RuntimeError(f"precompile failed:\n{out.stderr[-3000:]}")
        shutil.copytree(os.path.join(d, "src"), os.path.join(dest, "src"))
    return time.perf_counter() - t


def _with_kernels(template):
    """A new temporary cache directory holding a copy of `template`'s kernels."""
    d = tempfile.mkdtemp(prefix="numbax-bench-")
    os.chmod(d, 0o700)
    shutil.copytree(os.path.join(template, "src"), os.path.join(d, "src"))
    return d


def _first(r):
    return r["trace"] + r["lower"] + r["build"] + r["exec"]


def _have_jax():
    try:
        import importlib.util
        return importlib.util.find_spec("jax") is not None
    except ValueError:
        return False


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--only", default="mlp,cnn,pex,scan,example")
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--tiered", action="store_true", help="also time jit(tiered=True)")
    args = ap.parse_args(argv)
    works = [w.strip() for w in args.only.split(",") if w.strip()]
    jax_ok = not args.no_jax and _have_jax()
    results = {}
    keys = ["trace", "lower", "typing", "llvm", "load", "exec"]
    template = tempfile.mkdtemp(prefix="numbax-bench-kernels-")
    os.chmod(template, 0o700)
    if any(w != "example" for w in works):
        secs = kernel_cache(template)
        print(f"(python -m transforms.precompile: {secs:.1f} s, float32 and float64 kernels)")
    print("first call, each row a fresh process (seconds):")
    print(f"  {'workload':>8s} {'run':>7s}" + "".join(f"{k:>8s}" for k in keys) +
          f"{'first':>8s}{'JAX':>8s}{'ratio':>7s}{'cpu':>7s}{'JAXcpu':>7s}{'ratio':>6s}  notes")
    for w in works:
        if w == "example":
            continue
        res = results[w] = {"cold": [], "kernels": [], "warm": [], "jax": [], "tiered": []}
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="numbax-bench-") as d:
                res["cold"].append(run_child("ours", w, d))
                d2 = _with_kernels(template)
                try:
                    res["kernels"].append(run_child("ours", w, d2))
                finally:
                    shutil.rmtree(d2, ignore_errors=True)
                res["warm"].append(run_child("ours", w, d))
            if jax_ok:
                res["jax"].append(run_child("jax", w))
            if args.tiered:
                with tempfile.TemporaryDirectory(prefix="numbax-bench-") as d:
                    res["tiered"].append(run_child("tiered", w, d))
        jax_first = min(r["first"] for r in res["jax"]) if res["jax"] else None
        jax_cpu = min(r["cpu"] for r in res["jax"]) if res["jax"] else None
        for kind in ("cold", "kernels", "warm"):
            for r in res[kind]:
                ratio = f"{_first(r) / jax_first:7.2f}" if jax_first else f"{'-':>7s}"
                jx = f"{jax_first:8.3f}" if jax_first else f"{'-':>8s}"
                cpu = (f"{r['cpu']:7.2f}{jax_cpu:7.2f}{r['cpu'] / jax_cpu:6.2f}" if jax_cpu
                       else f"{r['cpu']:7.2f}{'-':>7s}{'-':>6s}")
                print(f"  {w:>8s} {kind:>7s}" + "".join(f"{r[k]:8.3f}" for k in keys) +
                      f"{_first(r):8.3f}{jx}{ratio}{cpu}  "
                      f"{r['source_lines']} source lines, from disk: {r['from_disk']}, "
                      f"worker CPU {r.get('worker_cpu', 0.0):.2f}")
        for r in res["tiered"]:
            print(f"  {w:>8s} tiered: first call {r['first']:.3f} s, eager step "
                  f"{r['eager']:.3f} s (ratio {r['first'] / r['eager']:.2f}); compiled code "
                  f"after {r['calls']} calls, {r['switch_after']:.1f} s")
    if "example" in works:
        if not os.path.isdir(os.path.join(template, "src")):
            kernel_cache(template)
        for name in EXAMPLES:
            r = {}
            with tempfile.TemporaryDirectory(prefix="numbax-bench-") as d:
                r["cold"] = run_example(name, d)
                r["warm"] = min(run_example(name, d) for _ in range(args.runs))
            d2 = _with_kernels(template)
            try:
                r["kernels"] = run_example(name, d2)
            finally:
                shutil.rmtree(d2, ignore_errors=True)
            results[name] = r
        # the tiered runs last: their background compiles outlive the example's process
        # and would take a core from the runs after them
        for name in EXAMPLES:
            r = results[name]
            time.sleep(5)         # (the previous tiered run's background compile finishing)
            with tempfile.TemporaryDirectory(prefix="numbax-bench-") as d:
                r["tiered"] = run_example(name, d, tiered=True)
            print(f"  examples/{name}.py {' '.join(EXAMPLES[name])} end to end: "
                  f"cold {r['cold']:.2f} s, kernels cached {r['kernels']:.2f} s, cold with "
                  f"NUMBAX_TIERED=1 {r['tiered']:.2f} s, warm {r['warm']:.2f} s (cold / warm "
                  f"= {r['cold'] / r['warm']:.2f}, kernels / warm = "
                  f"{r['kernels'] / r['warm']:.2f}, tiered / warm = "
                  f"{r['tiered'] / r['warm']:.2f})")
    shutil.rmtree(template, ignore_errors=True)
    print("(cold: empty cache directory; kernels: only the backend's kernels cached; warm: "
          "the cold run's directory in a new process; imports and Numba start-up are excluded "
          "from 'first', see --help)")
    for w in works:
        if w == "example" or not results.get(w, {}).get("cold"):
            continue
        r = results[w]["cold"][0]
        print(f"  {w}: imports {r['imports']:.2f} s, Numba start-up {r['numba_init']:.2f} s")
    return results


if __name__ == "__main__":
    main()
