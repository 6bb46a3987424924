"""The run-time BLAS thread count of mid-sized products (`backend/numba/blas_threads.py`):
the switch NUMBAX_BLAS_THREADS, the load probe, and the compiled code reading the count."""
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import transforms as T
from transforms import lax
from transforms.backend.numba import blas_threads as bt
from transforms.backend.numba import kernels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RNG = np.random.default_rng(0)

needs_local_threads = pytest.mark.skipif(
    kernels.GEMM_AUTO == kernels.GEMM,
    reason="the BLAS found cannot set its thread count per call")


@pytest.fixture
def restore():
    """Put the process-wide count and the probe's clock back after the test."""
    saved = bt.wanted(), bt._next
    yield
    bt.set_wanted(saved[0])
    bt._next = saved[1]


def test_setting_parses_the_switch(monkeypatch):
    monkeypatch.delenv(bt.ENV, raising=False)
    assert bt.setting() is None
    for v, want in [("auto", None), (" AUTO ", None), ("", None), ("1", 1), ("3", 3)]:
        monkeypatch.setenv(bt.ENV, v)
        assert bt.setting() == want
    for bad in ["0", "-2", "two", "1.5"]:
        monkeypatch.setenv(bt.ENV, bad)
        with pytest.raises(ValueError, match=f"NUMBAX_BLAS_THREADS.*{bad!r}"):
            bt.setting()


def test_count_follows_the_switch_and_the_probe(monkeypatch, restore):
    free = {"v": 2.0}
    monkeypatch.setattr(bt, "free_cores", lambda: free["v"])
    monkeypatch.delenv(bt.ENV, raising=False)
    two = min(bt.pool_size(), 2)
    bt.set_wanted(1)
    # fewer threads at once, more after two measurements in a row found a core free
    for cores, want in [(2.0, 1), (2.0, two), (1.8, two), (0.2, 1), (1.8, 1), (1.4, 1),
                        (1.9, 1), (1.9, two), (1.5, 1), (0.0, 1)]:
        free["v"] = cores
        bt.refresh(force=True)
        assert bt.wanted() == want, cores
    free["v"] = None                        # unknown: the previous choice stays
    bt.set_wanted(3)
    bt.refresh(force=True)
    assert bt.wanted() == 3
    free["v"] = 0.0
    for v, want in [("2", 2), ("1", 1), ("auto", 1)]:   # forced counts ignore the probe
        monkeypatch.setenv(bt.ENV, v)
        bt.refresh(force=True)
        assert bt.wanted() == want
    # rate-limited: within PERIOD of the last measurement nothing is re-read
    free["v"] = 2.0
    bt.refresh(force=True)
    bt.refresh(force=True)
    assert bt.wanted() == two
    free["v"] = 0.0
    bt.refresh()
    assert bt.wanted() == two
    bt._next = 0.0
    bt.refresh()
    assert bt.wanted() == 1
    # forced(n): the count of a block, whatever the probe says (for A/B timings)
    with bt.forced(2):
        bt.refresh(force=True)
        assert bt.wanted() == 2
    assert bt.wanted() == 1 and bt._next == 0.0
    with pytest.raises(ValueError, match="positive"):
        with bt.forced(0):
            pass


def test_probe_subtracts_our_own_cpu_time(monkeypatch):
    """Other processes' load = the cores' busy time minus ours, per second of the window;
    a window too short for /proc/stat's ticks keeps the last sample; after a long pause the
    tasks running at that instant count instead."""
    p = bt._Probe.__new__(bt._Probe)
    p.cores = [0, 1]
    p.last = (100.0, 50.0, 7.0)
    samples = iter([(100.5, 51.2, 7.4),      # 1.2 s busy, 0.4 ours over 0.5 s: 1.6 cores
                    (100.52, 51.25, 7.4),    # 20 ms later: too short
                    (101.0, 51.4, 7.7),      # 0.2 busy, 0.3 ours (ticks lag): 0, not < 0
                    (110.0, 60.0, 8.0)])     # a 9 s pause: counted at that instant
    monkeypatch.setattr(p, "sample", lambda: next(samples))
    assert p.others() == pytest.approx(1.6)
    assert p.others() is None and p.last == (100.5, 51.2, 7.4)
    assert p.others() == 0.0
    monkeypatch.setattr(bt, "_running_others", lambda: 1.0)
    assert p.others() == 1.0
    assert bt.choose(None) is None
    assert bt.choose(2 - 1.6) == 1


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="the probe reads /proc/stat")
def test_probe_measures_this_machine():
    import time
    probe = bt._Probe()
    time.sleep(0.1)
    others = probe.others()
    assert 0.0 <= others <= len(probe.cores) + 0.5     # + one tick of rounding


@needs_local_threads
def test_threaded_and_serial_products_are_identical(restore):
    """The same compiled program on one and on two BLAS threads: the generated code reads the
    count at each call (`last_used`), and the products agree to the bit (OpenBLAS splits the
    rows/columns of C between threads, never the contraction, so every element is summed
    in the same order)."""
    a = RNG.standard_normal((192, 512)).astype(np.float32)      # 25M multiply-adds
    b = RNG.standard_normal((512, 256)).astype(np.float32)
    x = RNG.standard_normal((8, 16, 16, 32)).astype(np.float32)  # im2col: 9M multiply-adds
    w = RNG.standard_normal((3, 3, 32, 64)).astype(np.float32)

    def f(a, b, x, w):
        y = lax.conv_general_dilated(x, w, (2, 2), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return a @ b, y, (a @ b).T @ (a @ b)

    src = T.jit(f).lower(a, b, x, w).source
    # the matrix products and the conv (linked calls or by symbol: calls.py)
    assert len(re.findall(r"_k_gemm_cblas_auto\(|_hc\(_kr_gemm_cblas_auto_", src)) == 3
    g = T.jit(f)
    bt._next = float("inf")                 # the runner must not re-measure meanwhile
    outs = {}
    for n in (1, 2, 1, 2):
        bt.set_wanted(n)
        outs.setdefault(n, []).append(g(a, b, x, w))
        assert bt.last_used() == n
    for o1, o2 in zip(outs[1][0], outs[2][0]):
        np.testing.assert_array_equal(o1, o2)
    for o1, o2 in zip(outs[1][1], outs[2][1]):
        np.testing.assert_array_equal(o1, o2)
    np.testing.assert_allclose(outs[1][0][0], a @ b, rtol=1e-5, atol=1e-4)


CACHED = textwrap.dedent("""
    import numpy as np
    import transforms as T
    from transforms.backend.numba import blas_threads as bt, compile
    rng = np.random.default_rng(1)
    a = rng.standard_normal((160, 384)).astype(np.float32)
    b = rng.standard_normal((384, 96)).astype(np.float32)
    exe = compile(T.jit(lambda a, b: (a @ b) * 3).trace(a, b).jaxpr)
    bt._next = float("inf")
    used = []
    for n in (2, 1, 3):
        bt.set_wanted(n)
        out = exe(a, b)[0]
        used.append(bt.last_used())
    assert np.allclose(out, (a @ b) * 3, rtol=1e-4, atol=1e-3)
    print(exe.loaded_from_disk, used)
""")


@needs_local_threads
def test_cached_program_reads_the_count_in_a_new_process(tmp_path):
    """The count is resolved by symbol name when machine code is linked, so a program loaded
    from the disk cache by another process reads that process's count."""
    env = dict(os.environ, NUMBAX_CACHE_DIR=str(tmp_path),
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    lines = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", CACHED], env=env, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        lines.append(out.stdout.strip().splitlines()[-1])
    assert lines == ["False [2, 1, 3]", "True [2, 1, 3]"]


def test_bad_switch_fails_the_call(monkeypatch, restore):
    f = T.jit(lambda a: a * 2)
    a = np.ones(3, np.float32)
    f(a)
    monkeypatch.setenv(bt.ENV, "lots")
    bt._next = 0.0
    with pytest.raises(ValueError, match="NUMBAX_BLAS_THREADS"):
        f(a)
    monkeypatch.setenv(bt.ENV, "2")
    np.testing.assert_array_equal(f(a), 2 * a)
    assert bt.wanted() == 2
