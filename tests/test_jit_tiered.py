"""jit(tiered=True): eager calls while a background process compiles, then compiled code.

Each test uses a fresh cache directory, so the background process really compiles; the
switch is observed through `f.tier_stats` and `f.wait_compiled`, never through timing."""
import warnings

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import tiered

RTOL = 2e-6        # jit vs eager tolerance for float32 elementwise work


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _make_model():
    # a new function object per test: jit's caches belong to the function
    def model(params, x, scale):
        h = tnp.tanh(x @ params["w"] + params["b"]) * scale
        return {"out": h, "norm": tnp.sum(h * h)}
    return model


def _args(seed=0):
    rng = np.random.default_rng(seed)
    params = {"w": rng.standard_normal((5, 3)).astype(np.float32),
              "b": rng.standard_normal(3).astype(np.float32)}
    return params, rng.standard_normal((4, 5)).astype(np.float32)


def test_tiered_runs_eagerly_then_switches_to_compiled(fresh_cache):
    _model = _make_model()
    params, x = _args()
    want = _model(params, x, 2.0)                     # eager, outside jit
    f = T.jit(_model, tiered=True)
    first = f(params, x, 2.0)                        # pytree in and out, a weak Python float
    assert f.tier_stats["eager_calls"] == 1 and f.tier_stats["switches"] == 0
    assert f.tier_stats["background_compiles"] == 1
    for k in want:
        assert first[k].dtype == want[k].dtype and first[k].shape == want[k].shape
        np.testing.assert_allclose(first[k], want[k], rtol=RTOL, atol=1e-6)
    assert f.wait_compiled(timeout=600)
    second = f(params, x, 2.0)
    assert f.tier_stats["switches"] == 1
    assert f.tier_stats["loaded_from_disk"] == 1      # the child's machine code, not a recompile
    assert f.tier_stats["eager_calls"] == 1
    for k in want:
        np.testing.assert_allclose(second[k], want[k], rtol=RTOL, atol=1e-6)
    third = f(params, x * 0.5, 3.0)                   # compiled from now on
    assert f.tier_stats["eager_calls"] == 1 and f.tier_stats["switches"] == 1
    np.testing.assert_allclose(third["norm"], T.jit(_model)(params, x * 0.5, 3.0)["norm"],
                               rtol=RTOL)
    assert any(n.startswith("nbx_") and n.endswith(".py") for n in
               [p.name for p in fresh_cache.iterdir()])


def test_tiered_failure_warns_once_and_stays_eager(fresh_cache, monkeypatch):
    monkeypatch.setattr(tiered, "CHILD_ARGS", ("-c", "import sys; sys.exit('boom')"))
    _model = _make_model()
    params, x = _args(1)
    f = T.jit(_model, tiered=True)
    want = _model(params, x, 1.5)                     # eager, outside jit
    out = f(params, x, 1.5)
    assert f.wait_compiled(timeout=120)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        for _ in range(3):
            out = f(params, x, 1.5)
    msgs = [w for w in rec if issubclass(w.category, tiered.TieredCompileWarning)]
    assert len(msgs) == 1 and "boom" in str(msgs[0].message)
    assert f.tier_stats["failures"] == 1 and f.tier_stats["switches"] == 0
    assert f.tier_stats["eager_calls"] == 4
    np.testing.assert_allclose(out["out"], want["out"], rtol=RTOL)


def test_tiered_static_args_and_donation(fresh_cache):
    def step(p, n, lr):
        return (p - lr * tnp.sin(p)) * n              # n is static: a constant

    f = T.jit(step, static_argnums=1, donate_argnums=0, tiered=True)
    ref = T.jit(step, static_argnums=1)
    x = np.linspace(-1, 1, 7, dtype=np.float32)
    want = ref(x, 3, np.float32(0.1))
    got = f(x.copy(), 3, np.float32(0.1))
    np.testing.assert_allclose(got, want, rtol=RTOL)
    assert f.tier_stats["eager_calls"] == 1
    assert f.wait_compiled(timeout=600)
    donated = x.copy()
    got = f(donated, 3, np.float32(0.1))
    assert f.tier_stats["switches"] == 1
    np.testing.assert_allclose(got, want, rtol=RTOL)
    # another static value is a new signature: eager again, its own background compile
    got2 = f(x.copy(), 2, np.float32(0.1))
    np.testing.assert_allclose(got2, ref(x, 2, np.float32(0.1)), rtol=RTOL)
    assert f.tier_stats["eager_calls"] == 2 and f.tier_stats["background_compiles"] == 2
    assert f.wait_compiled(timeout=600)


def test_tiered_inner_jit_runs_eagerly_too(fresh_cache):
    inner = T.jit(lambda a: tnp.cumsum(a) * 2)

    def outer(a):
        return inner(a) + 1

    f = T.jit(outer, tiered=True)
    a = np.arange(6, dtype=np.float64)
    np.testing.assert_allclose(f(a), np.cumsum(a) * 2 + 1)
    assert f.tier_stats["eager_calls"] == 1
    assert f.wait_compiled(timeout=600)


def test_env_switch_makes_tiered_the_default(monkeypatch):
    monkeypatch.setenv("NUMBAX_TIERED", "1")
    assert T.jit(lambda a: a + 1)._tiered
    assert not T.jit(lambda a: a + 1, tiered=False)._tiered
    monkeypatch.setenv("NUMBAX_TIERED", "0")
    assert not T.jit(lambda a: a + 1)._tiered


def test_untiered_jit_never_runs_eagerly(fresh_cache):
    f = T.jit(lambda a: a * 2)
    f(np.ones(3))
    assert f.tier_stats["eager_calls"] == 0 and f.tier_stats["background_compiles"] == 0
    assert f.wait_compiled(timeout=1)


def test_first_tiered_call_runs_the_function_itself_then_the_interpreter(fresh_cache,
                                                                         monkeypatch):
    """The first call of a new signature runs the Python function eagerly (its results cast
    to the traced outputs' dtypes) and traces it; the calls after it, until the switch,
    interpret the traced program."""
    runs = []
    interpreted = []

    def model(params, x, scale):
        runs.append(type(x).__name__)                 # 'ndarray' eagerly, a tracer traced
        h = tnp.tanh(x @ params["w"] + params["b"]) * scale
        return {"out": h, "half": 0.5}                # a Python float among the outputs

    real_eager = tiered.eager

    def counting_eager(caches, entry, leaves):
        interpreted.append(1)
        return real_eager(caches, entry, leaves)

    monkeypatch.setattr(tiered, "eager", counting_eager)
    params, x = _args()
    f = T.jit(model, tiered=True)
    first = f(params, x, 2.0)
    assert runs[0] == "ndarray" and len(runs) == 2 and runs[1] != "ndarray"
    assert interpreted == [] and f.tier_stats["eager_calls"] == 1
    assert f.tier_stats["background_compiles"] == 1
    second = f(params, x, 2.0)
    if f.tier_stats["switches"] == 0:                 # still compiling: interpreted
        assert interpreted == [1] and f.tier_stats["eager_calls"] == 2
    assert len(runs) == 2                             # the function itself ran once only
    traced = T.jit(model)(params, x, 2.0)           # plain jit: the dtypes to expect
    for k in traced:
        assert np.asarray(first[k]).dtype == np.asarray(traced[k]).dtype
        np.testing.assert_allclose(first[k], traced[k], rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(second["out"], traced["out"], rtol=RTOL, atol=1e-6)
    assert f.wait_compiled(timeout=600)


def test_first_tiered_call_that_raises_raises_as_jit_does(fresh_cache):
    def bad(x):
        return tnp.reshape(x, (7,))

    with pytest.raises(Exception) as plain:
        T.jit(bad)(np.ones(4, np.float32))
    with pytest.raises(type(plain.value)):
        T.jit(bad, tiered=True)(np.ones(4, np.float32))
