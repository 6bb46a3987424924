"""transforms.numpy behaviours found by porting JAX/NumPy code: `where=`/`initial=` of the
reductions, vdot, complex inputs, NumPy's calling forms (einsum's interleaved operands,
one-element pad widths, NumPy functions applied to traced values). Eagerly, under jit, vmap
and grad, against NumPy (or JAX values recorded as literals)."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms.errors import TracerBoolConversionError

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


def test_einsum_interleaved_operands_as_numpy():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    for args in [(a, [0, 1], b, [1, 2], [0, 2]), (a, [0, 1], b, [1, 2]),
                 (a, [Ellipsis, 1], [Ellipsis])]:
        want = np.einsum(*args)
        np.testing.assert_allclose(tnp.einsum(*args), want)
        arrays = [x for x in args if isinstance(x, np.ndarray)]

        def rebuilt(*xs):
            it = iter(xs)
            return tnp.einsum(*[next(it) if isinstance(x, np.ndarray) else x for x in args])
        np.testing.assert_allclose(T.jit(rebuilt)(*arrays), want)
    np.testing.assert_allclose(T.grad(lambda a: tnp.einsum(a, [0, 1], b, [1, 2]).sum())(a),
                               np.broadcast_to(b.sum(1), (2, 3)))


def test_diag_of_traced_vector():
    v = np.array([1.0, 2.0, 3.0])
    for k in (0, 1, -2):
        np.testing.assert_array_equal(T.jit(lambda v: tnp.diag(v, k))(v), np.diag(v, k))
        np.testing.assert_array_equal(T.vmap(lambda v: tnp.diag(v, k))(np.stack([v, 2 * v]))[1],
                                      np.diag(2 * v, k))
    np.testing.assert_array_equal(T.grad(lambda v: (tnp.diag(v, -1) ** 2).sum())(v), 2 * v)
    jac = T.jacfwd(lambda v: tnp.diag(v, 1))(v)
    assert jac.shape == (4, 4, 3) and jac[0, 1, 0] == 1 and jac.sum() == 3


@pytest.mark.parametrize("pad_width", [3, (3,), (1, 2), ((1, 2),), ((1,), (2,)),
                                       ((1, 0), (0, 2))])
def test_pad_width_forms_as_numpy(pad_width):
    a = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(tnp.pad(a, pad_width), np.pad(a, pad_width))
    np.testing.assert_array_equal(T.jit(lambda a: tnp.pad(a, pad_width))(a), np.pad(a, pad_width))


@pytest.mark.parametrize("fn", [np.sum, np.prod, np.max, np.min, np.mean, np.std, np.var,
                                np.argmax, np.argmin, np.cumsum, np.cumprod, np.all, np.any,
                                np.round, np.amax, lambda t: np.clip(t, 0, 1),
                                lambda t: np.sum(t, axis=0, keepdims=True),
                                lambda t: np.std(t, ddof=1)])
def test_numpy_functions_on_traced_values(fn):
    # NumPy's functions call the method with out=None
    x = np.array([0.2, 1.7, 0.9])
    np.testing.assert_allclose(T.jit(fn)(x), fn(x), rtol=1e-14)
    np.testing.assert_allclose(T.vmap(fn)(np.stack([x, x]))[0], fn(x), rtol=1e-14)


def test_numpy_sum_of_tracer_differentiates():
    x = np.array([0.2, 1.7, 0.9])
    np.testing.assert_allclose(T.grad(lambda t: np.sum(t ** 2))(x), 2 * x)


def test_allclose_array_equal_traced_booleans():
    a = np.array([1.0, np.nan, np.inf, 2.0])
    b = np.array([1.0 + 1e-9, np.nan, np.inf, 2.1])
    assert tnp.allclose(a, b) is False and tnp.allclose(a[:3], b[:3], equal_nan=True) is True
    np.testing.assert_array_equal(tnp.isclose(a, b, equal_nan=True), np.isclose(a, b,
                                                                                 equal_nan=True))
    out = T.jit(lambda x, y: tnp.allclose(x[:3], y[:3], equal_nan=True))(a, b)
    assert np.asarray(out).dtype == np.bool_ and out
    assert not T.jit(lambda x, y: tnp.allclose(x, y))(a, b)
    np.testing.assert_array_equal(T.vmap(lambda x: tnp.allclose(x, 1.0))(
        np.array([[1.0, 1.0], [1.0, 2.0]])), [True, False])
    assert T.jit(lambda x: tnp.array_equal(x, x, equal_nan=True))(a)
    assert not T.jit(lambda x: tnp.array_equal(x, x))(a)                     # nan != nan
    assert not T.jit(lambda x: tnp.array_equal(x, x[:2]))(a)                 # shapes differ
    with pytest.raises(TracerBoolConversionError):        # a traced boolean, as in JAX
        T.jit(lambda x: bool(tnp.allclose(x, 1.0)))(a)
