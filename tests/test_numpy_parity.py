"""transforms.numpy behaviours found by porting JAX/NumPy code: `where=`/`initial=` of the
reductions, vdot, complex inputs, NumPy's calling forms (einsum's interleaved operands,
one-element pad widths, NumPy functions applied to traced values). Eagerly, under jit, vmap
and grad, against NumPy (or JAX values recorded as literals)."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp

A = np.arange(6.0).reshape(2, 3)
A[0, 1] = np.nan                      # masked out below: must not reach the result
M = np.array([True, False, True])

REDUCTIONS = [
    ("max", lambda m, x: m.max(x, axis=1, where=M, initial=-1.0)),
    ("min", lambda m, x: m.min(x, where=M, initial=10.0)),
    ("max_initial", lambda m, x: m.max(x[:, 2], initial=100.0)),
    ("max_empty", lambda m, x: m.max(x[:, :0], axis=1, initial=2.0)),
    ("min_empty_keepdims", lambda m, x: m.min(x[:, :0], axis=1, initial=2.0, keepdims=True)),
    ("sum", lambda m, x: m.sum(x, axis=1, where=M, initial=0.5)),
    ("prod", lambda m, x: m.prod(x + 1, axis=1, where=M, initial=2.0)),
    ("mean", lambda m, x: m.mean(x, axis=1, where=M)),
    ("var", lambda m, x: m.var(x, axis=1, where=M, ddof=1)),
    ("std", lambda m, x: m.std(x, where=M)),
    ("all", lambda m, x: m.all(x > 0.5, axis=1, where=M)),
    ("any", lambda m, x: m.any(x > 4, where=M)),
]


@pytest.mark.parametrize("name, fn", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reductions_where_and_initial_as_numpy(name, fn):
    want = fn(np, A)
    for got in (fn(tnp, A), T.jit(lambda x: fn(tnp, x))(A),
                T.vmap(lambda x: fn(tnp, x))(np.stack([A, A]))[1]):
        assert np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_reduction_where_errors_and_initial_cast():
    with pytest.raises(ValueError, match="to use a where mask one has to specify 'initial'"):
        tnp.max(A, where=M)
    with pytest.raises(ValueError, match="to use a where mask"):
        T.jit(lambda x: tnp.min(x, where=M))(A)
    with pytest.raises(ValueError, match="zero-size array"):
        tnp.max(np.zeros(0))
    ints = np.arange(6).reshape(2, 3)
    assert tnp.max(ints, initial=5.5) == 5 and tnp.sum(ints, initial=0.5) == 15   # NumPy casts
    # derivatives flow only to the unmasked elements
    np.testing.assert_array_equal(
        T.grad(lambda x: tnp.max(x, where=M, initial=-5.0))(np.array([1.0, 7.0, 3.0])), [0, 0, 1])
    np.testing.assert_array_equal(
        T.grad(lambda x: tnp.mean(x, where=M))(np.array([1.0, np.nan, 3.0])), [0.5, 0, 0.5])


Z = np.complex128(0.4 + 0.3j)
ZV = np.array([1 + 2j, 3 - 1j])


def test_vdot_conjugates_its_first_argument():
    b = np.array([2 - 1j, 1j])
    assert tnp.vdot(ZV, b) == np.vdot(ZV, b) == -1 - 2j
    np.testing.assert_allclose(T.vmap(tnp.vdot)(np.stack([ZV, b]), np.stack([b, ZV])),
                               [np.vdot(ZV, b), np.vdot(b, ZV)])
    np.testing.assert_allclose(T.jit(tnp.vdot)(np.arange(3.0), np.ones(3)), 3.0)


def test_complex_abs_derivatives_as_jax():
    # JAX: jvp = Re(conj(z) t) / |z| (real); vjp/grad = conj(z) / |z|
    out, t = T.jvp(tnp.abs, (Z,), (np.complex128(1 + 0.5j),))
    assert out == 0.5 and t == pytest.approx(1.1, rel=1e-14)
    assert np.asarray(t).dtype == np.float64
    np.testing.assert_allclose(T.vjp(tnp.abs, Z)[1](1.0)[0], 0.8 - 0.6j, rtol=1e-14)
    np.testing.assert_allclose(T.grad(tnp.abs)(Z), 0.8 - 0.6j, rtol=1e-14)
    np.testing.assert_allclose(T.vmap(tnp.abs)(ZV), np.abs(ZV), rtol=1e-14)


def test_complex_norm_var_std_are_real_as_numpy():
    m = np.array([[1 + 2j, 3 - 1j], [2j, 1]])
    for got, want in [(tnp.linalg.norm(ZV), np.linalg.norm(ZV)),          # 3.8730
                      (tnp.linalg.norm(m), np.linalg.norm(m)),
                      (tnp.linalg.norm(m, "fro"), np.linalg.norm(m, "fro")),
                      (tnp.linalg.norm(m, axis=1), np.linalg.norm(m, axis=1)),
                      (tnp.var(ZV), np.var(ZV)), (tnp.std(ZV), np.std(ZV)),
                      (tnp.var(m, axis=0, ddof=1), np.var(m, axis=0, ddof=1))]:
        assert np.asarray(got).dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-14)
    # derivatives recorded from JAX
    np.testing.assert_allclose(T.grad(tnp.linalg.norm)(ZV),
                               [0.25819889 - 0.51639778j, 0.77459667 + 0.25819889j], rtol=1e-7)
    np.testing.assert_allclose(T.grad(lambda z: tnp.var(z * tnp.array([1, 2j])))(Z),
                               1 - 0.75j, rtol=1e-14)


def test_real_imag_conj_on_tracers_and_complex_grad_error():
    f = lambda z: (z * z.conj()).real + z.imag + tnp.real(z.conjugate())  # noqa: E731
    np.testing.assert_allclose(T.grad(f)(Z), 1.8 - 1.6j, rtol=1e-14)       # JAX
    np.testing.assert_allclose(T.jit(lambda x: x.real + x.imag + x.conj())(np.ones(3)), 2.0)
    assert T.vmap(lambda z: z.imag)(ZV).tolist() == [2.0, -1.0]
    with pytest.raises(TypeError, match="grad requires real-valued outputs"):
        T.grad(lambda z: z * z)(Z)
    # the bilinear transposes of JAX (no conjugation): lax.real/imag/complex/conj
    from transforms import lax
    assert T.grad(lambda x: lax.real(lax.complex(x, 2 * x) * lax.conj(lax.complex(x, x))))(
        1.5) == 9.0
    np.testing.assert_allclose(T.grad(lambda z: lax.imag(z * z))(Z), 0.6 - 0.8j, rtol=1e-14)
