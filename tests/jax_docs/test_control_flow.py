"""Control-flow programs: cond, switch, scan (cumulative sums, RNNs), while_loop Newton
iterations, fori_loop; their derivatives and batching."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax

from ._helpers import check

rng = np.random.default_rng(2)
XS = np.array([1.0, -2.0, 3.5, 0.5, 4.0])


def test_cond_picks_branch():
    f = lambda x: lax.cond(x < 0, lambda x: -x, lambda x: x * 10.0, x)
    check(f, (-3.0,), 3.0)
    check(f, (2.0,), 20.0)


def test_cond_with_multiple_operands_and_pytree_output():
    f = lambda p, a, b: lax.cond(p, lambda a, b: {"s": a + b}, lambda a, b: {"s": a - b}, a, b)
    check(f, (True, XS, 1.0), {"s": XS + 1})
    check(f, (False, XS, 1.0), {"s": XS - 1})


def test_grad_through_cond():
    f = lambda x: lax.cond(x > 1.0, tnp.sin, tnp.cos, x)
    check(T.grad(f), (2.0,), np.cos(2.0))
    check(T.grad(f), (0.5,), -np.sin(0.5))


def test_switch_selects_by_index():
    branches = [lambda x: x + 1.0, lambda x: x * x, lambda x: -x]
    f = lambda i, x: lax.switch(i, branches, x)
    for i, e in enumerate([4.0, 9.0, -3.0]):
        check(f, (i, 3.0), e)


def test_switch_clamps_out_of_range_index():
    branches = [lambda x: x + 1.0, lambda x: x * 2.0]
    f = lambda i, x: lax.switch(i, branches, x)
    check(f, (7, 3.0), 6.0)
    check(f, (-4, 3.0), 4.0)


def test_vmap_of_switch():
    branches = [tnp.sin, tnp.cos, tnp.exp]
    f = T.vmap(lambda i, x: lax.switch(i, branches, x))
    idx = np.array([0, 1, 2, 1, 0])
    check(f, (idx, XS), np.array([[np.sin, np.cos, np.exp][i](x) for i, x in zip(idx, XS)]))


def test_scan_cumulative_sum():
    f = lambda xs: lax.scan(lambda c, x: (c + x, c + x), 0.0, xs)
    check(f, (XS,), (XS.sum(), np.cumsum(XS)))


def test_scan_reverse_cumulative_sum():
    f = lambda xs: lax.scan(lambda c, x: (c + x, c + x), 0.0, xs, reverse=True)[1]
    check(f, (XS,), np.cumsum(XS[::-1])[::-1])


def test_scan_running_product_grad():
    f = lambda xs: lax.scan(lambda c, x: (c * x, None), 1.0, xs)[0]
    prod = np.prod(XS)
    check(T.grad(f), (XS,), prod / XS)


def test_scan_simple_rnn_matches_python_loop():
    Wh, Wx = rng.normal(size=(3, 3)) * 0.5, rng.normal(size=(3, 2))
    xs = rng.normal(size=(4, 2))

    def rnn(h0, xs):
        def step(h, x):
            h = tnp.tanh(Wh @ h + Wx @ x)
            return h, h
        return lax.scan(step, h0, xs)

    h, hs = np.zeros(3), []
    for x in xs:
        h = np.tanh(Wh @ h + Wx @ x)
        hs.append(h)
    check(rnn, (np.zeros(3), xs), (h, np.stack(hs)), rtol=1e-12)


def test_grad_of_rnn_loss_matches_finite_differences():
    xs = rng.normal(size=(4, 2))
    Wx = rng.normal(size=(3, 2))

    def loss(Wh):
        step = lambda h, x: (tnp.tanh(Wh @ h + Wx @ x), None)
        return tnp.sum(lax.scan(step, tnp.ones(3), xs)[0] ** 2)

    def loss_np(Wh):
        h = np.ones(3)
        for x in xs:
            h = np.tanh(Wh @ h + Wx @ x)
        return np.sum(h ** 2)

    Wh = rng.normal(size=(3, 3)) * 0.5
    from ._helpers import num_grad
    check(T.grad(loss), (Wh,), num_grad(loss_np, Wh), rtol=1e-6, atol=1e-8)


def test_scan_with_length_and_no_xs_generates_sequence():
    f = lambda a: lax.scan(lambda c, _: (c * a, c), 1.0, None, length=5)[1]
    check(f, (2.0,), 2.0 ** np.arange(5))


def test_scan_pytree_carry_fibonacci():
    f = lambda: lax.scan(lambda c, _: ((c[1], c[0] + c[1]), c[0]), (0, 1), None, length=10)[1]
    check(f, (), np.array([0, 1, 1, 2, 3, 5, 8, 13, 21, 34]))


def test_while_loop_newton_sqrt():
    def newton_sqrt(a):
        cond = lambda s: tnp.abs(s[0] * s[0] - a) > 1e-12
        body = lambda s: ((s[0] + a / s[0]) / 2, s[1] + 1)
        return lax.while_loop(cond, body, (a, 0))

    x, n = T.jit(newton_sqrt)(2.0)
    np.testing.assert_allclose(x, np.sqrt(2.0), rtol=1e-14)
    check(lambda a: newton_sqrt(a)[0], (2.0,), np.sqrt(2.0), rtol=1e-14)
    assert 3 <= int(n) <= 8


def test_while_loop_collatz_steps():
    def collatz(n):
        body = lambda s: (tnp.where(s[0] % 2 == 0, s[0] // 2, 3 * s[0] + 1), s[1] + 1)
        return lax.while_loop(lambda s: s[0] != 1, body, (n, 0))[1]

    check(collatz, (27,), 111)


def test_while_loop_forward_mode_derivative():
    # x -> x * 2^k until > 100; jvp flows through the loop body.
    f = lambda x: lax.while_loop(lambda v: v < 100.0, lambda v: v * 2.0, x)
    check(lambda x: T.jvp(f, (x,), (1.0,)), (3.0,), (192.0, 64.0))


def test_fori_loop_sum_of_squares():
    f = lambda n: lax.fori_loop(0, n, lambda i, acc: acc + i * i, 0)
    check(f, (10,), sum(i * i for i in range(10)))


def test_fori_loop_power_iteration_dominant_eigenvalue():
    S = np.array([[4.0, 1.0], [1.0, 3.0]])

    def power(v):
        v = lax.fori_loop(0, 100, lambda i, v: (S @ v) / tnp.linalg.norm(S @ v), v)
        return v @ S @ v

    check(power, (np.array([1.0, 0.0]),), np.linalg.eigvalsh(S)[-1], rtol=1e-10)


def test_grad_through_fori_loop_static_bounds():
    f = lambda x: lax.fori_loop(0, 3, lambda i, y: tnp.sin(y), x)
    x = 0.8
    s1 = np.sin(x); s2 = np.sin(s1)
    check(T.grad(f), (x,), np.cos(s2) * np.cos(s1) * np.cos(x))


def test_vmap_of_while_loop_different_trip_counts():
    f = lambda x: lax.while_loop(lambda v: v < 10.0, lambda v: v + 3.0, x)
    x = np.array([0.0, 9.5, 11.0, 4.0])
    check(T.vmap(f), (x,), np.array([12.0, 12.5, 11.0, 10.0]))


def test_lax_select_elementwise():
    check(lambda p, a, b: lax.select(p, a, b), (XS > 1, XS, -XS), np.where(XS > 1, XS, -XS))


def test_jacfwd_through_while_loop():
    # forward mode differentiates while_loop (reverse mode does not, as in JAX)
    f = lambda x: lax.while_loop(lambda s: s[1] < 3, lambda s: (tnp.sin(s[0]), s[1] + 1), (x, 0))[0]
    x = np.array([0.3, 1.2])
    s1 = np.sin(x); s2 = np.sin(s1)
    check(T.jacfwd(f), (x,), np.diag(np.cos(s2) * np.cos(s1) * np.cos(x)))


def test_jvp_through_scan_matches_grad():
    f = lambda a: lax.scan(lambda c, x: (c * a + x, None), 0.0, XS)[0]
    # c_n = sum_k XS[k] a^(n-1-k)  =>  dc/da = sum_k (n-1-k) XS[k] a^(n-2-k)
    a = 0.7
    n = len(XS)
    d = sum((n - 1 - k) * XS[k] * a ** (n - 2 - k) for k in range(n - 1))
    check(lambda a: T.jvp(f, (a,), (1.0,))[1], (a,), d)
    check(T.grad(f), (a,), d)
