"""Tests for fnn.optim.schedules: optax's formulas, checked against plain-Python references,
at Python-int, NumPy-int32 and traced (IR-staged and vmapped) step counts."""
from __future__ import annotations

import copy
import importlib.util
import json
import math
import os

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import tree
from transforms.ir import eval_jaxpr
from fnn import optim
from fnn.optim import schedules as sch

STEPS = list(range(0, 130, 3)) + [9, 10, 11, 100, 119, 120, 121]


def staged(fn):
    def run(*args):
        closed, shapes = T.make_jaxpr(fn, return_shape=True)(*args)
        out = eval_jaxpr(closed.jaxpr, closed.consts, *tree.leaves(args))
        return tree.unflatten(tree.structure(shapes), out)
    return run


def check(schedule, reference, steps=STEPS, rtol=1e-12, atol=1e-15):
    """Compare at Python ints, int32 arrays, a traced count and a vmapped batch of counts."""
    expected = np.array([reference(s) for s in steps], dtype=np.float64)
    got_py = np.array([float(schedule(s)) for s in steps])
    np.testing.assert_allclose(got_py, expected, rtol=rtol, atol=atol)
    got_np = np.array([float(schedule(np.asarray(s, np.int32))) for s in steps])
    np.testing.assert_allclose(got_np, expected, rtol=rtol, atol=atol)
    traced = staged(lambda c: schedule(c) + 0.0 * c)   # a traced int32 count
    got_tr = np.array([float(traced(np.asarray(s, np.int32))) for s in steps[::4]])
    np.testing.assert_allclose(got_tr, expected[::4], rtol=rtol, atol=atol)
    got_vm = T.vmap(lambda c: schedule(c) + 0.0 * c)(np.asarray(steps, np.int32))
    np.testing.assert_allclose(np.asarray(got_vm, np.float64), expected, rtol=rtol, atol=atol)


def test_warmup_cosine_known_values():
    s = optim.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100, end_value=0.1)
    got = [float(s(i)) for i in (0, 5, 10, 55, 100, 150)]
    np.testing.assert_allclose(got, [0.0, 0.5, 1.0, 0.55, 0.1, 0.1], rtol=1e-12, atol=1e-15)


def test_constant():
    check(optim.constant_schedule(0.3), lambda c: 0.3, steps=[0, 1, 50])


@pytest.mark.parametrize("begin", [0, 7])
def test_linear(begin):
    def ref(c):
        c = min(max(c - begin, 0), 40)
        return (1.0 - 0.2) * (1 - c / 40) + 0.2
    check(optim.linear_schedule(1.0, 0.2, 40, transition_begin=begin), ref)


def test_polynomial():
    def ref(c):
        c = min(max(c - 5, 0), 100)
        return (2.0 - 0.5) * (1 - c / 100) ** 3 + 0.5
    check(optim.schedules.polynomial_schedule(2.0, 0.5, 3, 100, transition_begin=5), ref)
    # non-positive transition steps: constant init_value
    assert float(sch.polynomial_schedule(2.0, 0.5, 2, 0)(10)) == 2.0


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay(staircase):
    def ref(c):
        d = c - 10
        if d <= 0:
            return 0.5
        p = d / 25
        if staircase:
            p = math.floor(p)
        return 0.5 * 0.3 ** p
    check(optim.exponential_decay(0.5, 25, 0.3, transition_begin=10, staircase=staircase), ref)


def test_exponential_decay_end_value():
    check(optim.exponential_decay(1.0, 10, 0.5, end_value=0.1),
          lambda c: max(0.5 ** (c / 10), 0.1))
    # growth with a ceiling
    check(optim.exponential_decay(1.0, 10, 2.0, end_value=4.0),
          lambda c: min(2.0 ** (c / 10), 4.0), steps=[0, 5, 10, 20, 25, 40])


@pytest.mark.parametrize("alpha,exponent", [(0.0, 1.0), (0.2, 2.0)])
def test_cosine_decay(alpha, exponent):
    def ref(c):
        c = min(c, 90)
        cos = 0.5 * (1 + math.cos(math.pi * c / 90))
        return 0.7 * ((1 - alpha) * cos ** exponent + alpha)
    check(optim.cosine_decay_schedule(0.7, 90, alpha=alpha, exponent=exponent), ref)
    with pytest.raises(ValueError):
        optim.cosine_decay_schedule(0.7, 0)


def test_warmup_cosine_decay():
    def ref(c):
        if c < 10:
            return 0.1 + (1.0 - 0.1) * c / 10
        c = min(c - 10, 110)
        cos = 0.5 * (1 + math.cos(math.pi * c / 110))
        return 1.0 * ((1 - 0.05) * cos + 0.05)
    check(optim.warmup_cosine_decay_schedule(0.1, 1.0, 10, 120, end_value=0.05), ref)


def test_piecewise_constant():
    def ref(c):
        v = 1.0
        for b, s in ((10, 0.5), (30, 0.1), (60, 2.0)):
            if c >= b:
                v *= s
        return v
    check(optim.piecewise_constant_schedule(1.0, {30: 0.1, 10: 0.5, 60: 2.0}), ref)
    assert float(optim.piecewise_constant_schedule(3.0)(100)) == 3.0
    with pytest.raises(ValueError):
        optim.piecewise_constant_schedule(1.0, {10: -1.0})


def test_join_schedules():
    s = optim.join_schedules([optim.constant_schedule(1.0), optim.linear_schedule(2.0, 0.0, 10),
                              optim.constant_schedule(5.0)], [20, 40])

    def ref(c):
        if c < 20:
            return 1.0
        if c < 40:
            return 2.0 - 2.0 * min(c - 20, 10) / 10
        return 5.0
    check(s, ref)


def test_warmup_exponential_decay():
    def ref(c):
        if c < 10:
            return 1.0 * c / 10
        c -= 10
        return max(1.0 * 0.5 ** (c / 20), 0.2) if c > 0 else 1.0
    check(sch.warmup_exponential_decay_schedule(0.0, 1.0, 10, 20, 0.5, end_value=0.2), ref)


def test_warmup_constant():
    check(sch.warmup_constant_schedule(0.0, 2.0, 8), lambda c: 2.0 * min(c, 8) / 8)


def test_piecewise_interpolate_and_onecycle():
    lin = sch.piecewise_interpolate_schedule("linear", 1.0, {10: 2.0, 20: 0.25})

    def ref(c):
        if c < 10:
            return 1.0 + (2.0 - 1.0) * c / 10
        if c < 20:
            return 2.0 + (0.5 - 2.0) * (c - 10) / 10
        return 0.5
    check(lin, ref)
    one = sch.cosine_onecycle_schedule(100, 1.0)
    np.testing.assert_allclose(float(one(30)), 1.0, rtol=1e-12)
    np.testing.assert_allclose(float(one(100)), 1.0 / 25 / 1e4, rtol=1e-9)
    assert float(one(0)) < 0.05
    lone = sch.linear_onecycle_schedule(100, 1.0)
    np.testing.assert_allclose([float(lone(30)), float(lone(85))], [1.0, 0.04], rtol=1e-12)
    with pytest.raises(ValueError):
        sch.piecewise_interpolate_schedule("quadratic", 1.0)


def test_sgdr():
    kw = dict(init_value=0.0, peak_value=1.0, warmup_steps=5, decay_steps=20)
    s = sch.sgdr_schedule([kw, kw])
    one = optim.warmup_cosine_decay_schedule(**kw)
    check(s, lambda c: float(one(c if c < 20 else c - 20)), steps=list(range(0, 45, 2)))


def test_schedule_drives_optimizer_with_traced_count():
    sched = optim.warmup_cosine_decay_schedule(0.0, 1.0, 3, 10)
    opt = optim.sgd(sched)
    p = np.ones(2)
    s = opt.init(p)
    upd = staged(opt.update)
    for i in range(12):
        u, s = upd(np.ones(2), s, p)
        np.testing.assert_allclose(u, -float(sched(i)), rtol=1e-12, atol=1e-15)
    assert int(s[1].count) == 12


# --- every schedule against optax's own values -------------------------------------------------
# tests/data/optax_schedules.json holds optax 0.2.8's (float32) values at steps 0..132 for each
# case of tests/data/optax_schedule_cases.py; tests/data/gen_optax_schedules.py regenerates it.
_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def _optax_cases():
    spec = importlib.util.spec_from_file_location(
        "optax_schedule_cases", os.path.join(_DATA, "optax_schedule_cases.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with open(os.path.join(_DATA, "optax_schedules.json")) as f:
        table = json.load(f)
    assert len(table["cases"]) == len(mod.CASES)
    out = []
    for i, ((name, kwargs), rec) in enumerate(zip(mod.CASES, table["cases"])):
        assert rec["name"] == name
        out.append(pytest.param(name, kwargs, np.asarray(rec["values"]), id=f"{i}-{name}"))
    return out


def test_optax_table_covers_every_schedule():
    names = {c.values[0] for c in _optax_cases()}
    # join_schedules takes callables: covered through warmup_* and sgdr_schedule
    assert names == set(sch.__all__) - {"Schedule", "join_schedules"}


@pytest.mark.parametrize("name,kwargs,expected", _optax_cases())
def test_schedule_matches_optax(name, kwargs, expected):
    schedule = getattr(sch, name)(**copy.deepcopy(kwargs))
    steps = np.arange(133)
    # optax computes in float32: allow float32 rounding of the (float64) formula
    got = np.array([float(schedule(int(s))) for s in steps])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    got_i32 = np.array([float(schedule(np.int32(s))) for s in steps[::7]])
    np.testing.assert_array_equal(got_i32, got[::7])
    if name in ("piecewise_interpolate_schedule", "linear_onecycle_schedule",
                "cosine_onecycle_schedule"):
        jitted = T.jit(lambda c: tnp.asarray(schedule(c), tnp.float64))
        got_jit = np.array([float(jitted(np.int32(s))) for s in steps])
        np.testing.assert_allclose(got_jit, got, rtol=1e-14, atol=1e-15)
