"""JAX's "The checkify transformation" guide (debugging runtime values), ported: user checks
formatted with run-time values, the automatic NaN / division / index checks, checks inside
cond/scan/while/fori_loop bodies, and checkify composed with jit, vmap and grad. Messages are
compared with JAX's where it is importable (JAX runs jitted there: its eager checkify
evaluates concrete indices in Python and raises IndexError before any check)."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms.experimental import checkify as ck

try:
    import jax
    import jax.numpy as jnp
    from jax.experimental import checkify as jck
except ImportError:   # pragma: no cover
    jax = None

pytestmark = pytest.mark.usefixtures("jax_x32")

F32 = np.float32


class _NS:
    """The names a case uses, from one library: ours or JAX's."""

    def __init__(self, ours):
        if ours:
            self.np, self.lax, self.ck = tnp, T.lax, ck
            self.jit, self.vmap, self.grad = T.jit, T.vmap, T.grad
        else:
            self.np, self.lax, self.ck = jnp, jax.lax, jck
            self.jit, self.vmap, self.grad = jax.jit, jax.vmap, jax.grad


def _guide_f(ns):
    def f(x, i):
        ns.ck.check(i >= 0, "index needs to be non-negative, got {i}", i=i)
        y = x[i]
        return ns.np.sin(y)
    return f


def _scan_f(ns):
    def f(xs):
        def body(c, x):
            ns.ck.check(x < 3, "too big: {x}", x=x)
            return c + x, ns.np.log(x - 2)
        return ns.lax.scan(body, F32(0), xs)
    return f


def _while_f(ns):
    def f(x):
        def cond(c):
            ns.ck.check(c < 10, "cond saw {c}", c=c)
            return c < 20
        def body(c):
            ns.ck.check(c < 5, "body saw {c}", c=c)
            return c + 1
        return ns.lax.while_loop(cond, body, x)
    return f


def _cond_f(ns):
    def f(x):
        def big(x):
            ns.ck.check(x < 3, "big {x}", x=x)
            return x
        return ns.lax.cond(x > 0, big, ns.np.sqrt, x)
    return f


def _fori_f(ns):
    def f(x, i):
        def body(k, c):
            ns.ck.check(c < 6, "sum too big: {c}", c=c)
            return c + x[i + k]
        return ns.lax.fori_loop(0, 3, body, F32(0))
    return f


def _order_f(ns):
    def f(x):
        y = ns.np.log(x)                 # NaN first in time; the check's code is older
        ns.ck.check(x > 0, "must be positive")
        return y
    return f


def _fmt_f(ns):
    def f(x, y):
        ns.ck.check(ns.np.all(x < y["a"]), "x={} not below {d[a]} (n={n})", x, d=y,
                    n=ns.np.asarray(x.size))
        return x + y["a"]
    return f


ALL = "all"
CASES = [
    # name, builder, errors, arguments
    ("guide user check", _guide_f, "user", (np.ones(5, F32), np.int32(-2))),
    ("guide out of bounds", _guide_f, ALL, (np.ones(5, F32), np.int32(100))),
    ("guide nan", _guide_f, ALL, (np.array([np.inf, 1], F32), np.int32(0))),
    ("guide no error", _guide_f, ALL, (np.array([5, 1], F32), np.int32(0))),
    ("guide negative index ok", _guide_f, "index", (np.arange(5, dtype=F32), np.int32(-2))),
    ("integer division by zero", lambda ns: lambda x, y: x // y, "div",
     (np.arange(4, dtype=np.int32), np.array([1, 2, 0, 3], np.int32))),
    ("float division by zero", lambda ns: lambda x: 1 / x, "float", (np.arange(3, dtype=F32),)),
    ("no division by zero", lambda ns: lambda x: 1 / x, "float", (np.ones(3, F32),)),
    ("nan from log", lambda ns: lambda x: ns.np.log(x) * 2, "nan", (np.array([1, -1], F32),)),
    ("nan not checked", lambda ns: lambda x: ns.np.log(x), "user", (np.array([-1], F32),)),
    ("dynamic_slice oob", lambda ns: lambda x, i: ns.lax.dynamic_slice(x, (i,), (2,)), "index",
     (np.arange(5, dtype=F32), np.int32(4))),
    ("dynamic_slice in bounds", lambda ns: lambda x, i: ns.lax.dynamic_slice(x, (i,), (2,)),
     "index", (np.arange(5, dtype=F32), np.int32(3))),
    ("scatter oob", lambda ns: lambda x, i: x.at[i].set(1.0), "index",
     (np.arange(5, dtype=F32), np.int32(7))),
    ("gather oob", lambda ns: lambda x, i: x[i], "index",
     (np.arange(5, dtype=F32), np.array([1, -9, 7], np.int32))),
    ("gather 2d oob", lambda ns: lambda x, i: x[i, 1], "index",
     (np.ones((3, 4), F32), np.array([0, 2, 5], np.int32))),
    ("scan check", _scan_f, ALL, (np.arange(5, dtype=F32),)),
    ("scan nan", _scan_f, "nan", (np.arange(3, dtype=F32),)),
    ("scan fine", _scan_f, "user", (np.arange(3, dtype=F32),)),
    ("while body check", _while_f, "user", (F32(0),)),
    ("while first cond check", _while_f, "user", (F32(12),)),
    ("cond branch check", _cond_f, ALL, (F32(5),)),
    ("cond other branch nan", _cond_f, ALL, (F32(-1),)),
    ("cond fine", _cond_f, ALL, (F32(2),)),
    ("fori_loop check", _fori_f, ALL, (np.arange(5, dtype=F32), np.int32(2))),
    ("fori_loop oob", _fori_f, "index", (np.arange(5, dtype=F32), np.int32(3))),
    ("fori_loop fine", _fori_f, ALL, (np.arange(5, dtype=F32), np.int32(0))),
    ("first error: JAX's order", _order_f, ALL, (F32(-1),)),
    ("format args and kwargs", _fmt_f, "user",
     (np.array([1, 5], F32), {"a": np.array([2, 3], F32)})),
]
_SETS = {"user": "user_checks", "index": "index_checks", "div": "div_checks",
         "float": "float_checks", "nan": "nan_checks", ALL: "all_checks"}


def _run(ours, builder, errors, args, jit_outer):
    ns = _NS(ours)
    if not ours:
        args = jax.tree_util.tree_map(jnp.asarray, args)
    f = ns.ck.checkify(builder(ns), errors=getattr(ns.ck, _SETS[errors]))
    if jit_outer:
        f = ns.jit(f)
    err, out = f(*args)
    return err.get(), jax.tree_util.tree_map(np.asarray, out) if not ours else out


EXPECTED = {
    "guide user check": "index needs to be non-negative, got -2 (`check` failed)",
    "guide out of bounds": "out-of-bounds indexing for array of shape (5,): index 100 is out "
                           "of bounds for axis 0 with size 5. ",
    "guide nan": "nan generated by primitive: sin.",
    "guide no error": None,
    "integer division by zero": "division by zero",
    "nan from log": "nan generated by primitive: log.",
    "scan check": "too big: 3.0 (`check` failed)",
    "while body check": "body saw 5.0 (`check` failed)",
    "while first cond check": "cond saw 12.0 (`check` failed)",
    "first error: JAX's order": "must be positive (`check` failed)",
}


@pytest.mark.parametrize("name,builder,errors,args", CASES, ids=[c[0] for c in CASES])
def test_messages_eager(name, builder, errors, args):
    msg, out = _run(True, builder, errors, args, jit_outer=False)
    if name in EXPECTED:
        assert msg == EXPECTED[name]
    if jax is not None:
        jmsg, jout = _run(False, builder, errors, args, jit_outer=True)
        assert msg == jmsg
        if msg is not None and "division" in msg:
            return              # an integer division by zero has no defined value
        for a, b in zip(T.tree.leaves(out), jax.tree_util.tree_leaves(jout)):
            np.testing.assert_allclose(np.asarray(a), b, rtol=1e-6)


def test_guide_under_jit_one_compile():
    """jit(checkify(f)): one compiled program reports each input's error."""
    f = T.jit(ck.checkify(_guide_f(_NS(True)), errors=ck.all_checks))
    x = np.ones(5, F32)
    assert f(x, np.int32(-2))[0].get() == EXPECTED["guide user check"]
    assert f(x, np.int32(100))[0].get() == EXPECTED["guide out of bounds"]
    err, z = f(np.array([np.inf, 1], F32), np.int32(0))
    assert err.get() == EXPECTED["guide nan"] and np.isnan(z)
    err, z = f(np.array([5, 1], F32), np.int32(0))
    assert err.get() is None and z == pytest.approx(np.sin(5.0), rel=1e-6)


def test_loops_under_jit():
    """Checks inside scan/while/cond bodies of a compiled program."""
    ns = _NS(True)

    def g(xs, c0):
        return _scan_f(ns)(xs), _while_f(ns)(c0), _cond_f(ns)(c0)

    f = T.jit(ck.checkify(g, errors=ck.all_checks))
    err, _ = f(np.arange(5, dtype=F32), F32(0))
    assert err.get() == "too big: 3.0 (`check` failed)"
    # the scan's NaN comes first in time, the while body's check is the older site
    err, _ = f(np.arange(3, dtype=F32), F32(0))
    assert err.get() == "body saw 5.0 (`check` failed)"
    err, _ = f(np.array([2.5, 2.75], F32), F32(12))
    assert err.get() == "cond saw 12.0 (`check` failed)"
    err, (ys_c, w, c) = f(np.array([2.5, 2.75], F32), F32(1))
    assert err.get() == "body saw 5.0 (`check` failed)"
    np.testing.assert_allclose(ys_c[1], np.log([0.5, 0.75]), rtol=1e-6)
    assert (w, c) == (20, 1)
    if jax is not None:
        jns = _NS(False)
        jf = jax.jit(jck.checkify(lambda xs, c0: (_scan_f(jns)(xs), _while_f(jns)(c0),
                                                  _cond_f(jns)(c0)), errors=jck.all_checks))
        for xs, c0 in [(np.arange(5), 0), (np.arange(3), 0), ([2.5, 2.75], 12)]:
            assert jf(jnp.asarray(xs, jnp.float32), jnp.float32(c0))[0].get() == \
                f(np.asarray(xs, F32), F32(c0))[0].get()


def test_checkify_of_jit():
    @T.jit
    def f(x, i):
        return x[i]

    cf = ck.checkify(f, errors=ck.index_checks)
    err, _ = cf(np.ones(5, F32), np.int32(100))
    assert err.get() == EXPECTED["guide out of bounds"]
    err, out = cf(np.arange(5, dtype=F32), np.int32(3))
    assert err.get() is None and out == 3.0


def test_vmap_of_checkify():
    f = ck.checkify(_guide_f(_NS(True)), errors=ck.all_checks)
    errs, out = T.vmap(f)(np.ones((3, 5), F32), np.array([-1, 2, 100], np.int32))
    want = ("at mapped index 0: index needs to be non-negative, got -1 (`check` failed)\n"
            "at mapped index 2: out-of-bounds indexing for array of shape (5,): index 100 is "
            "out of bounds for axis 0 with size 5. ")
    assert errs.get() == want
    assert isinstance(errs.get_exception(), ck.BatchedError)
    # throw() reports one error, as JAX: per kind of error its last failing element, then
    # the oldest check site among those
    with pytest.raises(ck.JaxRuntimeError, match="got -1"):
        errs.throw()
    errs, _ = T.vmap(f)(np.ones((3, 5), F32), np.array([-1, -5, 1], np.int32))
    with pytest.raises(ck.JaxRuntimeError, match="got -5"):
        errs.throw()
    errs, _ = T.vmap(f)(np.ones((2, 5), F32), np.array([0, 1], np.int32))
    assert errs.get() is None
    errs.throw()
    if jax is not None:
        jf = jck.checkify(_guide_f(_NS(False)), errors=jck.all_checks)
        jerrs, _ = jax.vmap(jf)(jnp.ones((3, 5)), jnp.array([-1, 2, 100]))
        assert jerrs.get() == want


def test_checkify_of_vmap():
    """A single (unmapped) error for the batch."""
    f = T.vmap(_guide_f(_NS(True)))
    err, _ = ck.checkify(f, errors=ck.all_checks)(np.ones((3, 5), F32),
                                                  np.array([1, -1, -3], np.int32))
    msg = err.get()
    assert msg == "index needs to be non-negative, got -3 (`check` failed)"   # the last
    if jax is not None:
        jerr, _ = jck.checkify(jax.vmap(_guide_f(_NS(False))), errors=jck.all_checks)(
            jnp.ones((3, 5)), jnp.array([1, -1, -3]))
        assert jerr.get() == msg


def test_checkify_of_vmap_index_check():
    """vmap turns x[i] into one gather, which sees the batch's index as given."""
    f = ck.checkify(T.vmap(lambda x, i: x[i]), errors=ck.index_checks)
    err, out = f(np.arange(15, dtype=F32).reshape(3, 5), np.array([1, 100, -7], np.int32))
    msg = ("out-of-bounds indexing for array of shape (3, 5): index 100 is out of bounds for "
           "axis 1 with size 5. ")
    assert err.get() == msg
    np.testing.assert_array_equal(out, [1, 9, 10])      # clamped, as without checkify
    err, out = f(np.arange(15, dtype=F32).reshape(3, 5), np.array([1, 4, -5], np.int32))
    assert err.get() is None
    np.testing.assert_array_equal(out, [1, 9, 10])
    if jax is not None:
        jerr, _ = jck.checkify(jax.vmap(lambda x, i: x[i]), errors=jck.index_checks)(
            jnp.arange(15.0).reshape(3, 5), jnp.array([1, 100, -7]))
        assert jerr.get() == msg


def test_checkify_of_grad_instruments_backward_pass():
    def f(x):
        return x / (1 + tnp.sqrt(x))

    err, _ = ck.checkify(T.grad(f), errors=ck.nan_checks)(F32(0))
    assert err.get() == "nan generated by primitive: mul."
    err, g = ck.checkify(T.grad(f), errors=ck.nan_checks)(F32(4))
    # d/dx x / (1 + sqrt(x)) = (1 + sqrt(x) / 2) / (1 + sqrt(x))**2 = 2/9 at 4
    assert err.get() is None and g == pytest.approx(2 / 9, rel=1e-6)
    if jax is not None:
        jerr, jg = jck.checkify(jax.grad(lambda x: x / (1 + jnp.sqrt(x))),
                                errors=jck.nan_checks)(jnp.float32(4))
        np.testing.assert_allclose(g, jg, rtol=1e-6)


def test_check_on_gradient_with_custom_vjp():
    @T.custom_vjp
    def assert_gradient_negative(x):
        return x

    def fwd(x):
        return assert_gradient_negative(x), None

    def bwd(_, g):
        ck.check(g < 0, "gradient needs to be negative!")
        return (g,)

    assert_gradient_negative.defvjp(fwd, bwd)
    with pytest.raises(ck.JaxRuntimeError, match="gradient needs to be negative!"):
        T.grad(assert_gradient_negative)(F32(-1))
    err, g = ck.checkify(T.grad(assert_gradient_negative))(F32(-1))
    assert err.get() == "gradient needs to be negative! (`check` failed)" and g == 1.0
    err, _ = ck.checkify(T.grad(lambda x: -assert_gradient_negative(x)))(F32(1))
    assert err.get() is None


def test_check_outside_checkify():
    # eagerly, and under grad / vmap (concrete values), a failing check raises at once
    with pytest.raises(ck.JaxRuntimeError, match=r"^boom \(`check` failed\)$"):
        ck.check(np.bool_(False), "boom")
    ck.check(True, "fine")
    with pytest.raises(ck.JaxRuntimeError, match="pos -1.0"):
        T.grad(lambda x: (ck.check(x > 0, "pos {x}", x=x), x * x)[1])(F32(-1))
    # vmap: the last failing element, as JAX
    with pytest.raises(ck.JaxRuntimeError, match="pos -2.0"):
        T.vmap(lambda x: (ck.check(x > 0, "pos {x}", x=x), x * x)[1])(
            np.array([1, -1, -2], F32))
    # a staged predicate is JAX's functionalization error
    with pytest.raises(ValueError, match="not functionalized"):
        T.jit(lambda x: ck.check(x > 0, "boom"))(F32(1))
    with pytest.raises(ValueError, match="not functionalized"):
        T.lax.scan(lambda c, x: (ck.check(x > 0, "boom") or c, x), F32(0), np.ones(2, F32))
    # a concrete one still fails while tracing
    with pytest.raises(ck.JaxRuntimeError, match="boom"):
        T.jit(lambda x: ck.check(False, "boom"))(F32(1))
    if jax is not None:
        with pytest.raises(jck.JaxRuntimeError, match="boom"):
            jck.check(False, "boom")
        with pytest.raises(ValueError, match="not functionalized"):
            jax.jit(lambda x: jck.check(x > 0, "boom"))(1.0)


def test_jitted_check_traced_inside_checkify_then_called_outside():
    @T.jit
    def g(x):
        ck.check(tnp.all(x > 0), "negative in {}", x)
        return x * 2

    err, out = ck.checkify(g)(np.array([1, -1], F32))
    assert err.get() == "negative in [ 1. -1.] (`check` failed)"
    np.testing.assert_array_equal(out, [2, -2])
    with pytest.raises(ValueError, match="not functionalized"):
        g(np.array([1, 2], F32))


def test_debug_check():
    def f(x):
        ck.debug_check(x != 0, "cannot be zero!")
        return x

    assert f(np.int32(0)) == 0                      # a no-op outside checkify
    assert T.jit(f)(np.int32(0)) == 0
    err, _ = T.jit(ck.checkify(f))(np.int32(0))
    assert err.get() == "cannot be zero! (`check` failed)"


def test_check_error_is_functionalized_again():
    def f(x):
        ck.check(x > 0, "must be positive!")
        return x

    def with_inner_jit(x):
        error, out = T.jit(ck.checkify(f))(x)
        ck.check_error(error)
        return out

    assert with_inner_jit(F32(1)) == 1
    with pytest.raises(ck.JaxRuntimeError, match="must be positive!"):
        with_inner_jit(F32(-1))
    err, _ = ck.checkify(with_inner_jit)(F32(-1))
    assert err.get() == "must be positive! (`check` failed)"
    with pytest.raises(TypeError, match="takes an Error"):
        ck.check_error("not an error")


def test_only_enabled_categories():
    def f(x):
        ck.check(x > 0, "positive")
        return tnp.log(x) + 1 / x

    x = F32(-1)
    assert ck.checkify(f, errors=ck.nan_checks)(x)[0].get() == "nan generated by primitive: log."
    assert ck.checkify(f, errors=ck.div_checks)(x)[0].get() is None
    assert ck.checkify(f, errors=ck.div_checks)(F32(0))[0].get() == "division by zero"
    assert ck.checkify(f)(x)[0].get() == "positive (`check` failed)"
    assert ck.checkify(f, errors=frozenset())(x)[0].get() is None


def test_error_sets_as_jax():
    assert ck.user_checks == frozenset({ck.FailedCheckError})
    assert ck.float_checks == ck.nan_checks | ck.div_checks
    assert ck.automatic_checks == ck.float_checks | ck.index_checks
    assert ck.all_checks == ck.automatic_checks | ck.user_checks
    assert len(ck.all_checks) == 4 and isinstance(ck.all_checks, frozenset)
    assert issubclass(ck.JaxRuntimeError, ValueError)
    import transforms.experimental as E
    assert E.checkify is ck and callable(ck.checkify)
    if jax is not None:
        for name in ("user_checks", "nan_checks", "index_checks", "div_checks",
                     "float_checks", "automatic_checks", "all_checks"):
            assert sorted(c.__name__ for c in getattr(ck, name)) == \
                sorted(c.__name__ for c in getattr(jck, name))


def test_bad_input():
    with pytest.raises(TypeError, match="scalar pred"):
        ck.check(np.array([True, False]), "msg")
    with pytest.raises(TypeError, match="scalar pred"):
        ck.checkify(lambda x: ck.check(x, "msg"))(np.ones(3, F32))
    with pytest.raises(TypeError, match="PyTrees of arrays"):
        ck.check(True, "{}", 3)
    with pytest.raises(TypeError, match="error categories"):
        ck.checkify(lambda x: x, errors=[ValueError])
    with pytest.raises(TypeError, match="callable"):
        ck.checkify(3)


def test_error_is_a_pytree_of_flags_and_codes():
    """The compiled program returns the error as plain arrays: a bool flag, an int32 code and
    the payload per error kind."""
    err, _ = ck.checkify(_guide_f(_NS(True)), errors=ck.all_checks)(np.ones(5, F32),
                                                                      np.int32(100))
    leaves = T.tree.leaves(err)
    dtypes = sorted(str(np.asarray(x).dtype) for x in leaves)
    assert "bool" in dtypes and "int32" in dtypes
    assert str(err).startswith("Error(out-of-bounds")
    rebuilt = T.tree.unflatten(T.tree.structure(err), leaves)
    assert rebuilt.get() == err.get()


def _count_to(k):
    def body(c):
        ck.check(c < k, "body ran past the end: {c}", c=c)
        return c + 1
    return T.lax.while_loop(lambda c: c < k, body, np.int32(0))


def test_vmap_of_checkify_of_while_masks_finished_elements():
    err, out = T.vmap(ck.checkify(_count_to))(np.array([1, 3], np.int32))
    assert err.get() is None
    np.testing.assert_array_equal(out, [1, 3])


def test_checkify_of_batched_while_is_refused_as_in_jax():
    # its body would run on finished elements and fire on their stale values
    with pytest.raises(ValueError, match="batched while-loops"):
        ck.checkify(T.vmap(_count_to))(np.array([1, 3], np.int32))
    if jax is not None:
        def jcount(k):
            def body(c):
                jck.check(c < k, "body ran past the end: {c}", c=c)
                return c + 1
            return jax.lax.while_loop(lambda c: c < k, body, 0)
        with pytest.raises(ValueError, match="batched while-loops"):
            jck.checkify(jax.vmap(jcount))(jnp.array([1, 3]))


def test_constant_check_inside_checkify_is_functionalized():
    err, out = ck.checkify(lambda x: (ck.check(False, "always"), x + 1)[1])(F32(1))
    assert err.get() == "always (`check` failed)" and out == 2
    err, _ = T.jit(ck.checkify(lambda x: (ck.check(True, "never"), x)[1]))(F32(1))
    assert err.get() is None


def test_grad_and_pmap_of_checkify():
    def g(x):
        ck.check(x > 0, "pos {x}", x=x)
        return tnp.sin(x) * x

    d = T.grad(lambda x: ck.checkify(g)(x)[1])(F32(1))
    assert d == pytest.approx(np.cos(1.0) + np.sin(1.0), rel=1e-6)
    errs, out = T.pmap(ck.checkify(g))(np.array([1, -2], F32))
    assert errs.get() == "at mapped index 1: pos -2.0 (`check` failed)"
    np.testing.assert_allclose(out, np.sin([1, -2]) * [1, -2], rtol=1e-6)


def test_custom_jvp_rule_kept_when_its_body_cannot_fail():
    @T.custom_jvp
    def f(x):
        return tnp.sin(x)

    f.defjvp(lambda p, t: (f(p[0]), 10.0 * t[0]))
    assert T.grad(lambda x: ck.checkify(f)(x)[1])(F32(1)) == 10.0
    err, d = ck.checkify(T.grad(f), errors=ck.all_checks)(F32(1))
    assert err.get() is None and d == 10.0
