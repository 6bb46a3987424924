"""Differential tests: L-BFGS with its line searches and the optax.contrib part fnn.optim
provides, against optax (split from test_diff_optax_more.py, whose helpers it shares, to keep
each file short)."""
import importlib.util
import pathlib
import warnings

import pytest

optax = pytest.importorskip("optax")
jax = pytest.importorskip("jax")

import numpy as np  # noqa: E402

import fnn.optim as fo  # noqa: E402
import transforms as T  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "_diff_optax_more_helpers", pathlib.Path(__file__).with_name("test_diff_optax_more.py"))
_more = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_more)
skeleton, _close, _params, _grads, _sched = (_more.skeleton, _more._close, _more._params,
                                             _more._grads, _more._sched)
STEPS = _more.STEPS


@pytest.fixture(autouse=True)
def _jax_x32():
    with jax.enable_x64(False), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _rosenbrock(np_):
    return lambda p: np_.sum((1 - p["x"]) ** 2) + 10 * np_.sum((p["y"] - p["x"] ** 2) ** 2)


LINESEARCH = {
    "lbfgs": lambda m: m.lbfgs(),
    "lbfgs_backtracking": lambda m: m.lbfgs(memory_size=3, linesearch=(
        m.scale_by_backtracking_linesearch(15, store_grad=True))),
    "lbfgs_no_linesearch": lambda m: m.lbfgs(0.02, scale_init_precond=False, linesearch=None),
    "zoom_keep": lambda m: m.chain(m.sgd(0.5), m.scale_by_zoom_linesearch(
        10, max_learning_rate=2.0, initial_guess_strategy="keep")),
}


@pytest.mark.parametrize("name", sorted(LINESEARCH))
def test_lbfgs_and_linesearches_match_optax(name):
    import transforms.numpy as tnp
    res = []
    for lib, np_ in ((fo, tnp), (optax, jax.numpy)):
        f = _rosenbrock(np_)
        p = {"x": np.array([-1.2, 0.5], np.float32), "y": np.array([1.0, 0.2], np.float32)}
        opt = LINESEARCH[name](lib)
        st = opt.init(p)
        vg = lib.value_and_grad_from_state(f) if name != "lbfgs_no_linesearch" else None
        trace = []
        for _ in range(5):
            if vg is None:
                v, g = (T.value_and_grad if lib is fo else jax.value_and_grad)(f)(p)
            else:
                v, g = vg(p, state=st)
            u, st = opt.update(g, st, p, value=v, grad=g, value_fn=f)
            p = lib.apply_updates(p, u)
            trace.append((v, p))
        res.append((trace, st))
    # Rosenbrock amplifies float32 rounding step by step: 1e-4 after five steps
    _close(f"{name} values and params", res[0][0], res[1][0], rtol=1e-4, atol=1e-5)
    assert skeleton(res[0][1]) == skeleton(res[1][1]), f"{name}: state layout"


CONTRIB = {
    "schedule_free_adamw": lambda m: m.contrib.schedule_free_adamw(1e-2, warmup_steps=2,
                                                                   weight_decay=1e-3),
    "schedule_free_sgd": lambda m: m.contrib.schedule_free_sgd(0.1, weight_decay=1e-3),
    "schedule_free": lambda m: m.contrib.schedule_free(m.adam(_sched(m)), _sched(m), b1=0.8),
    "ademamix": lambda m: m.contrib.ademamix(1e-2, b3=lambda c: 0.99 - 0.01 * c,
                                             weight_decay=1e-3),
    "simplified_ademamix": lambda m: m.contrib.simplified_ademamix(1e-2, alpha=2.0),
    "prodigy": lambda m: m.contrib.prodigy(weight_decay=1e-3),
    "prodigy_safeguard": lambda m: m.contrib.prodigy(_sched(m), safeguard_warmup=True),
    "dadapt_adamw": lambda m: m.contrib.dadapt_adamw(weight_decay=1e-3),
}


@pytest.mark.parametrize("name", sorted(CONTRIB))
def test_contrib_matches_optax(name):
    rng = np.random.default_rng(6)
    p0 = _params(rng)
    grads = [_grads(rng, p0, i) for i in range(STEPS)]
    res = []
    for lib in (fo, optax):
        opt = CONTRIB[name](lib)
        st, p, out = opt.init(p0), p0, []
        for g in grads:
            u, st = opt.update(g, st, p)
            p = lib.apply_updates(p, u)
            out.append(p)
        if name.startswith("schedule_free"):
            out.append(lib.contrib.schedule_free_eval_params(st, p))
        res.append((out, st))
    _close(f"contrib.{name} params", res[0][0], res[1][0], atol=1e-6)
    assert skeleton(res[0][1]) == skeleton(res[1][1]), f"contrib.{name}: state layout"
    # relative only: the distance estimates of prodigy/dadapt start at 1e-6
    tiny = name.startswith(("prodigy", "dadapt"))
    _close(f"contrib.{name} state", res[0][1], res[1][1], rtol=2e-5,
           atol=1e-12 if tiny else 1e-6)


def test_reduce_on_plateau_matches_optax():
    p0 = _params(np.random.default_rng(7))
    losses = [5.0, 4.0, 4.0, 4.1, 3.99, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0]
    res = []
    for lib in (fo, optax):
        opt = lib.contrib.reduce_on_plateau(factor=0.5, patience=2, cooldown=1,
                                            accumulation_size=1, min_scale=0.1)
        st, sc = opt.init(p0), []
        for v in losses:
            u, st = opt.update(p0, st, p0, value=np.float32(v))
            sc.append(np.asarray(st.scale))
        res.append((sc, st))
    _close("reduce_on_plateau scales", res[0][0], res[1][0])
    assert skeleton(res[0][1]) == skeleton(res[1][1])
    _close("reduce_on_plateau state", res[0][1], res[1][1])


@pytest.mark.parametrize("mode", ["transparent", "transparent_3_keep", "opaque"])
def test_sam_matches_optax(mode):
    import transforms.numpy as tnp
    p0 = _params(np.random.default_rng(8))
    res = []
    for lib, np_ in ((fo, tnp), (optax, jax.numpy)):
        def loss(p):
            return np_.sum(np_.tanh(p["w"]) ** 2) + np_.sum((p["b"] - 0.3) ** 2)
        grad = (T.grad if lib is fo else jax.grad)(loss)
        adv = lib.chain(lib.contrib.normalize(), lib.sgd(0.05))
        if mode == "opaque":
            opt = lib.contrib.sam(lib.adam(1e-2), adv, sync_period=3, opaque_mode=True)
        elif mode == "transparent":
            opt = lib.contrib.sam(lib.adam(1e-2), adv)
        else:
            opt = lib.contrib.sam(lib.sgd(0.1, momentum=0.9), adv, sync_period=3,
                                  reset_state=False)
        st, p, out = opt.init(p0), p0, []
        for _ in range(6):
            kw = {"grad_fn": lambda q, i: grad(q)} if mode == "opaque" else {}
            u, st = opt.update(grad(p), st, p, **kw)
            p = lib.apply_updates(p, u)
            out.append(p)
        res.append((out, st))
    _close(f"sam {mode} params", res[0][0], res[1][0], atol=1e-6)
    assert skeleton(res[0][1]) == skeleton(res[1][1])
    _close(f"sam {mode} state", res[0][1], res[1][1], atol=1e-6)


@pytest.mark.parametrize("kw", [dict(weight_decay=1e-3),
                                dict(ns_coeffs="dion", nesterov=False, adaptive=True),
                                dict(preconditioning="spectral", consistent_rms=0.2)],
                         ids=["default", "dion_adaptive", "spectral_rms"])
def test_muon_matches_optax(kw):
    rng = np.random.default_rng(9)
    p0 = {"w": rng.normal(size=(3, 5)).astype(np.float32),
          "k": rng.normal(size=(6, 2)).astype(np.float32),
          "b": rng.normal(size=(5,)).astype(np.float32)}
    res = []
    for lib in (fo, optax):
        opt = lib.contrib.muon(1e-2, **kw)
        st, p, out = opt.init(p0), p0, []
        for i in range(4):
            u, st = opt.update({k: np.sin(v * (i + 1)) for k, v in p0.items()}, st, p)
            p = lib.apply_updates(p, u)
            out.append(u)
        res.append((out, st))
    _close(f"muon {kw} updates", res[0][0], res[1][0], rtol=1e-5, atol=1e-7)
    assert skeleton(res[0][1]) == skeleton(res[1][1])
    _close(f"muon {kw} state", res[0][1], res[1][1], rtol=1e-5, atol=1e-7)
