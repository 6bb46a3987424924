"""`ir.check_jaxpr`: well-formed jaxprs pass (also the ones built by jvp, linearize,
transpose, vmap and control flow), and each kind of malformation is named."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax
from transforms.core import ShapedArray
from transforms.ir import ClosedJaxpr, Eqn, Jaxpr, JaxprTypeError, Var, check_jaxpr

f32 = np.float32


def _sin_prim():
    j = T.make_jaxpr(lambda x: tnp.sin(x))(np.ones(3, f32))
    return j.jaxpr.eqns[0].prim


def test_checks_are_on_in_the_test_session():
    assert T.config.jax_enable_checks is True


def test_well_formed_jaxprs_pass():
    def f(x, c):
        def body(carry, xi):
            return carry * xi + lax.cond(xi > 0, lambda a: a * 2, lambda a: tnp.sin(a), carry), carry
        return lax.scan(body, c, x)[0].sum()

    x, c = np.array([1., -2., 3.], f32), f32(0.5)
    cases = [(f, (x, c)), (T.grad(f), (x, c)), (T.jacfwd(f), (x, c)),
             (T.vmap(f, (0, None)), (np.stack([x, x]), c))]
    for fn, args in cases:
        check_jaxpr(T.make_jaxpr(fn)(*args))
    # the values are what the checks must not have changed
    g = T.grad(f)(x, c)
    eps = 1e-3
    num = [(f(x + eps * np.eye(3, dtype=f32)[i], c) - f(x - eps * np.eye(3, dtype=f32)[i], c))
           / (2 * eps) for i in range(3)]
    np.testing.assert_allclose(g, num, rtol=2e-2)


def test_undefined_variable_is_named():
    sin = _sin_prim()
    a, b, ghost = Var(ShapedArray((3,), f32)), Var(ShapedArray((3,), f32)), Var(ShapedArray((3,), f32))
    j = Jaxpr([], [a], [b], [Eqn(sin, [ghost], [b], {})])
    with pytest.raises(JaxprTypeError, match=r"equation 0 'sin'.*read before it is defined"):
        check_jaxpr(j)


def test_variable_defined_twice_is_named():
    sin = _sin_prim()
    a = Var(ShapedArray((3,), f32))
    j = Jaxpr([], [a], [a], [Eqn(sin, [a], [a], {})])
    with pytest.raises(JaxprTypeError, match=r"equation 0 'sin'.*defined twice"):
        check_jaxpr(j)


def test_wrong_output_type_is_named():
    sin = _sin_prim()
    a, b = Var(ShapedArray((3,), f32)), Var(ShapedArray((4,), f32))
    j = Jaxpr([], [a], [b], [Eqn(sin, [a], [b], {})])
    with pytest.raises(JaxprTypeError, match=r"equation 0 'sin'.*typed f32\[4\].*gives f32\[3\]"):
        check_jaxpr(j)


def test_wrong_constant_type_is_named():
    sin = _sin_prim()
    c, b = Var(ShapedArray((3,), f32)), Var(ShapedArray((3,), f32))
    closed = ClosedJaxpr(Jaxpr([c], [], [b], [Eqn(sin, [c], [b], {})]), [np.ones(2, f32)])
    with pytest.raises(JaxprTypeError, match=r"constant 0 has type f32\[2\].*f32\[3\]"):
        check_jaxpr(closed)


def test_rejected_input_types_are_named():
    mul = T.make_jaxpr(lambda x: x * x)(np.ones(3, f32)).jaxpr.eqns[0].prim
    a, b, o = Var(ShapedArray((3,), f32)), Var(ShapedArray((2,), f32)), Var(ShapedArray((3,), f32))
    j = Jaxpr([], [a, b], [o], [Eqn(mul, [a, b], [o], {})])
    with pytest.raises(JaxprTypeError, match=r"equation 0 'mul'.*rejects its input types"):
        check_jaxpr(j)


def test_error_in_a_body_names_the_outer_equation():
    sin = _sin_prim()
    outer = T.make_jaxpr(lambda x: lax.cond(True, tnp.sin, tnp.cos, x))(np.ones(3, f32))
    eqn = outer.jaxpr.eqns[-1]
    br = eqn.params["branches"][0]
    bad_out = Var(ShapedArray((5,), f32))
    bj = br.jaxpr
    broken = ClosedJaxpr(Jaxpr(bj.constvars, bj.invars, [bad_out],
                               [Eqn(sin, [bj.invars[0]], [bad_out], {})]), br.consts)
    eqn.params = dict(eqn.params, branches=(broken,) + tuple(eqn.params["branches"][1:]))
    with pytest.raises(JaxprTypeError, match=r"'cond'.*in its body: equation 0 'sin'"):
        check_jaxpr(outer)
