"""transforms.debug: print and callback see runtime values eagerly, under vmap (once per
element, as JAX), grad (primal values), jit (compiled code calls back, in program order),
inside scan, and from a disk-cached executable in a fresh process."""
import os
import subprocess
import sys

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import debug, lax

# Numba's note that an objmode block holds the GIL inside a nogil function (expected)
pytestmark = pytest.mark.filterwarnings("ignore:.*object mode won't allow parallel")

@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(tmp_path))


def f(x):
    debug.print("x={x} y={}", x * 2, x=x)
    return x * 3


X = np.arange(3.0)
FULL = "x=[0. 1. 2.] y=[0. 2. 4.]\n"
PER_ELEMENT = "x=0.0 y=0.0\nx=1.0 y=2.0\nx=2.0 y=4.0\n"     # what JAX prints under vmap


@pytest.mark.parametrize("transform,expected", [
    (lambda g: g, FULL),
    (T.vmap, PER_ELEMENT),
    (lambda g: T.grad(lambda x: tnp.sum(g(x))), FULL),
    (T.jit, FULL),
    (lambda g: T.jit(T.vmap(g)), PER_ELEMENT),
    (lambda g: T.jit(T.grad(lambda x: tnp.sum(g(x)))), FULL),
    (lambda g: T.vmap(T.jit(g)), PER_ELEMENT),
])
def test_print_under_transforms(capsys, transform, expected):
    transform(f)(X)
    assert capsys.readouterr().out == expected


def test_callback_values_order_and_pytrees():
    log = []

    def g(x):
        debug.callback(lambda a, k: log.append(("in", a.copy(), k["s"])), x, k={"s": tnp.sum(x)})
        y = tnp.sin(x) * 2
        debug.callback(lambda b: log.append(("out", b.copy())), y)
        return tnp.sum(y)

    for run in (g, T.jit(g)):
        log.clear()
        assert run(X) == pytest.approx(np.sum(np.sin(X) * 2))
        assert [e[0] for e in log] == ["in", "out"]
        np.testing.assert_array_equal(log[0][1], X)
        assert log[0][2] == 3.0
        np.testing.assert_allclose(log[1][1], np.sin(X) * 2)
    # not removed although nothing uses it, not merged with an identical call
    log.clear()
    T.jit(lambda x: (debug.callback(log.append, x), debug.callback(log.append, x), x)[2])(X)
    assert len(log) == 2
    # grad sees primal values, no tangents
    log.clear()
    T.grad(lambda x: (debug.callback(log.append, x), tnp.sum(x ** 2))[1])(X)
    assert len(log) == 1 and np.array_equal(log[0], X)


def test_callback_in_scan(capsys):
    def body(c, x):
        debug.print("c={} x={}", c, x)
        return c + x, c
    run = lambda xs: lax.scan(body, 0.0, xs)[0]
    for r in (run, T.jit(run)):
        r(np.array([1.0, 2.0]))
        assert capsys.readouterr().out == "c=0.0 x=1.0\nc=1.0 x=2.0\n"


def test_callbacks_in_loops_and_branches(capsys):
    def g(x):
        def body(i, c):
            debug.print("i={} c={}", i, c)
            return c * 2
        y = lax.fori_loop(0, 2, body, x)
        return lax.cond(y > 3, lambda v: (debug.print("big {}", v), v)[1],
                        lambda v: (debug.print("small {}", v), -v)[1], y)
    for r in (g, T.jit(g)):
        assert r(1.0) == 4.0
        assert capsys.readouterr().out == "i=0 c=1.0\ni=1 c=2.0\nbig 4.0\n"
        assert r(0.5) == -2.0
        assert capsys.readouterr().out == "i=0 c=0.5\ni=1 c=1.0\nsmall 2.0\n"


def test_fresh_process_uses_its_own_callbacks(tmp_path):
    code = ("import numpy as np, transforms as T\nfrom transforms import debug\n"
            "f = T.jit(lambda x: (debug.print('v={}', x), x + 1)[1])\nf(np.ones(2))\n")
    env = dict(os.environ, NUMBAX_CACHE_DIR=str(tmp_path))
    for _ in range(2):      # second run loads the cached machine code
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, cwd=os.path.dirname(os.path.dirname(__file__)))
        assert out.returncode == 0, out.stderr
        assert out.stdout == "v=[1. 1.]\n"
