"""Threads against the jit machinery: several jitted functions called concurrently, with
donation and with large outputs from the recycling pool, each result compared with the eager
computation (and re-checked later, so a recycled buffer still in use would show); and calls
racing the first trace and compile of one function. (`-m stress`; well under a minute.)"""
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax

pytestmark = pytest.mark.stress

THREADS = 4
ROUNDS = 24
SHAPE = (128, 160)             # float32: 80 KB, above the output pool's threshold


def act(x, y):
    return tnp.tanh(x) * y + 1.0, tnp.sum(x * y, axis=0)


def mm(a, b):
    return a @ b + 1.0


def loop(x, n):
    return lax.fori_loop(0, n, lambda i, c: c * 0.5 + x, x)


def sgd(params, grads, lr):
    new = T.tree.map(lambda p, g: p - lr * g, params, grads)
    return new, tnp.sum(new["w"] * new["w"])


def _close(got, ref, what):
    gl, rl = T.tree.leaves(got), T.tree.leaves(ref)
    assert len(gl) == len(rl), what
    for g, r in zip(gl, rl):
        g, r = np.asarray(g), np.asarray(r)
        assert g.shape == r.shape and g.dtype == r.dtype, what
        np.testing.assert_allclose(g, r, rtol=2e-5, atol=1e-4, err_msg=what)


def _copy(tree):
    return T.tree.map(np.copy, tree)


def _worker(tid, fns):
    rng = np.random.default_rng(tid)
    kept = []                                   # (result, its expected value), held a while
    params = {"w": rng.standard_normal(SHAPE).astype(np.float32),
              "b": rng.standard_normal(SHAPE[1]).astype(np.float32)}
    for r in range(ROUNDS):
        k = (tid + r) % 4
        if k == 0:
            x, y = (rng.standard_normal(SHAPE).astype(np.float32) for _ in range(2))
            ref, out = act(x, y), fns["act"](x, y)
        elif k == 1:
            a = rng.standard_normal((128, 128)).astype(np.float32)
            b = rng.standard_normal((128, SHAPE[1])).astype(np.float32)
            ref, out = mm(a, b), fns["mm"](a, b)
        elif k == 2:
            x = rng.standard_normal(SHAPE).astype(np.float32)
            ref, out = loop(x, 3), fns["loop"](x, 3)
        else:
            grads = {"w": rng.standard_normal(SHAPE).astype(np.float32),
                     "b": rng.standard_normal(SHAPE[1]).astype(np.float32)}
            ref = sgd(_copy(params), grads, 0.01)
            out = fns["sgd"](params, grads, 0.01)       # params donated: overwritten
            params = out[0]
        _close(out, ref, f"thread {tid} round {r} fn {k}")
        kept.append((out, _copy(ref)))
        if len(kept) > 3:                               # drop old results: buffers recycle
            old, old_ref = kept.pop(0)
            _close(old, old_ref, f"thread {tid}: a held result changed")
    for out, ref in kept:
        _close(out, ref, f"thread {tid}: a held result changed")


def test_threads_calling_jitted_functions_with_donation_and_the_output_pool():
    fns = {"act": T.jit(act), "mm": T.jit(mm), "loop": T.jit(loop, static_argnums=1),
           "sgd": T.jit(sgd, donate_argnums=0)}
    _worker(99, fns)                                    # compile once, single-threaded
    with ThreadPoolExecutor(THREADS) as ex:
        for f in [ex.submit(_worker, t, fns) for t in range(THREADS)]:
            f.result()


def test_calls_racing_the_first_compile(tmp_path, monkeypatch):
    # a cold cache directory: the threads really race one trace, lowering and import
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(tmp_path))

    def f(x, s):
        return tnp.exp(-x * x) * s + tnp.cumsum(x, axis=1)

    shared = T.jit(f)
    start = threading.Barrier(THREADS)
    x = np.linspace(-2, 2, SHAPE[0] * SHAPE[1], dtype=np.float32).reshape(SHAPE)

    def call(tid):
        s = np.float32(tid + 1)
        start.wait()
        jf = shared if tid % 2 else T.jit(f)      # inline jit(f) shares the function's cache
        outs = [jf(x, s) for _ in range(5)]
        for o in outs:
            _close(o, f(x, s), f"thread {tid}")
        return outs

    with ThreadPoolExecutor(THREADS) as ex:
        results = [f.result() for f in [ex.submit(call, t) for t in range(THREADS)]]
    for tid, outs in enumerate(results):                # still intact after all threads
        for o in outs:
            _close(o, f(x, np.float32(tid + 1)), f"thread {tid}, afterwards")
    assert len(shared._cache) == 1
