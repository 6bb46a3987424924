"""Arguments that change what JAX computes are honoured or rejected, never silently ignored:
checkpoint(policy=), custom_jvp.defjvp / custom_vjp.defvjp(symbolic_zeros=) (honoured), scan(unroll=),
precision= (validated; the CPU computes at full precision for every accepted value)."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax
from transforms.ad_checkpoint import checkpoint_policies as cp
from transforms.ad_checkpoint import saved_residuals

f64 = np.float64


def _rng():
    return np.random.default_rng(0)


# ---- checkpoint(policy=) ------------------------------------------------------------------

def test_checkpoint_policy_decides_what_is_saved():
    def block(x):
        return tnp.sin(tnp.sin(x) * 2.0).sum()

    x = _rng().normal(size=(5,))
    saved_none = saved_residuals(T.checkpoint(block, policy=cp.nothing_saveable), x)
    saved_all = saved_residuals(T.checkpoint(block, policy=cp.everything_saveable), x)
    assert len(saved_all) > len(saved_none)
    g = T.grad(block)(x)
    for pol in (cp.nothing_saveable, cp.everything_saveable, None):
        np.testing.assert_allclose(T.grad(T.checkpoint(block, policy=pol))(x), g, rtol=1e-12)


# ---- symbolic_zeros= ----------------------------------------------------------------------

def test_defjvp_symbolic_zeros_is_honoured():
    from transforms.custom_derivatives import SymbolicZero
    f = T.custom_jvp(lambda x, y: x * y)
    kinds = []

    def rule(p, t):
        kinds.append([isinstance(v, SymbolicZero) for v in t])
        return p[0] * p[1], sum(v * o for v, o in zip(t, p[::-1]) if not isinstance(v, SymbolicZero))
    f.defjvp(rule, symbolic_zeros=True)
    assert T.grad(f)(2.0, 5.0) == 5.0
    assert kinds == [[False, True]]


def test_defvjp_symbolic_zeros_is_honoured():
    f = T.custom_vjp(lambda x, y: x * y)
    flags = []

    def fwd(x, y):
        flags.append((x.perturbed, y.perturbed))
        return x.value * y.value, (x.value, y.value)
    f.defvjp(fwd, lambda r, g: (g * r[1], g * r[0]), symbolic_zeros=True)
    assert T.grad(f, 1)(2.0, 5.0) == 2.0
    assert flags == [(False, True)]


def test_symbolic_zeros_false_still_works():
    f = T.custom_jvp(lambda x: tnp.sin(x))
    f.defjvp(lambda p, t: (tnp.sin(p[0]), 3.0 * t[0]), symbolic_zeros=False)
    assert T.grad(f)(0.5) == 3.0


# ---- scan(unroll=) ------------------------------------------------------------------------

def _step(c, x):
    c = tnp.tanh(c * 0.9 + x[0] * x[1])
    return c, c * x[1]


@pytest.mark.parametrize("length, unroll", [(7, 3), (6, 3), (5, 8), (4, True)])
@pytest.mark.parametrize("reverse", [False, True])
def test_scan_unroll_same_values_and_gradients(length, unroll, reverse):
    rng = _rng()
    xs = (rng.normal(size=(length, 2)), rng.normal(size=(length, 2)))
    c0 = rng.normal(size=(2,))

    def run(u):
        def loss(c0, xs):
            c, ys = lax.scan(_step, c0, xs, reverse=reverse, unroll=u)
            return (c ** 2).sum() + (ys * ys).sum()
        return loss

    ref_c, ref_ys = lax.scan(_step, c0, xs, reverse=reverse)
    c, ys = lax.scan(_step, c0, xs, reverse=reverse, unroll=unroll)
    np.testing.assert_allclose(c, ref_c, rtol=1e-12)
    np.testing.assert_allclose(ys, ref_ys, rtol=1e-12)
    g_ref = T.grad(run(1), argnums=(0, 1))(c0, xs)
    g = T.grad(run(unroll), argnums=(0, 1))(c0, xs)
    for a, b in zip(T.tree.leaves(g), T.tree.leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    np.testing.assert_allclose(T.jit(run(unroll))(c0, xs), run(1)(c0, xs), rtol=1e-10)


def test_scan_unroll_changes_the_loop_structure():
    xs = np.arange(7.0)
    jaxpr = T.make_jaxpr(lambda xs: lax.scan(lambda c, x: (c + x, c), 0.0, xs, unroll=3))(xs)
    lengths = [e.params["length"] for e in jaxpr.jaxpr.eqns if e.prim.name == "scan"]
    assert lengths == [2, 1]          # two chunks of three steps, then one step
    body = [e for e in jaxpr.jaxpr.eqns if e.prim.name == "scan"][0].params["jaxpr"]
    assert sum(e.prim.name == "add" for e in body.jaxpr.eqns) == 3


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2"])
def test_scan_unroll_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="unroll"):
        lax.scan(lambda c, x: (c + x, c), 0.0, np.arange(3.0), unroll=bad)


# ---- precision= ---------------------------------------------------------------------------

def test_conv_precision_is_validated_and_has_no_effect_on_cpu():
    rng = _rng()
    x, w = rng.normal(size=(1, 2, 6)), rng.normal(size=(3, 2, 3))
    ref = lax.conv_general_dilated(x, w, (1,), "SAME")
    for p in (None, "highest", lax.Precision.DEFAULT, ("high", "highest")):
        np.testing.assert_array_equal(lax.conv_general_dilated(x, w, (1,), "SAME", precision=p),
                                      ref)
    with pytest.raises(ValueError, match="precision"):
        lax.conv_general_dilated(x, w, (1,), "SAME", precision="ultra")
    with pytest.raises(ValueError, match="precision"):
        lax.conv(x, w, (1,), "SAME", precision=3)
