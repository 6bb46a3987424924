"""Derivatives with complex inputs, JAX's conventions (values recorded from JAX, x64):
for real-valued f(z), grad(f)(z) = df/dx - i df/dy; with holomorphic=True, f'(z)."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms.test_util import check_grads

Z = np.complex128(0.4 + 0.3j)
ZV = np.array([0.4 + 0.3j, -1.0 + 0.5j, 0.2 - 0.7j])


def _fd_conj_grad(f, z, eps=1e-6):
    """df/dx - i df/dy by central differences in both real directions, elementwise."""
    z = np.array(z, dtype=np.complex128)
    out = np.zeros(z.shape, np.complex128)
    for idx in np.ndindex(z.shape):
        e = np.zeros(z.shape, np.complex128)
        e[idx] = 1
        dx = (f(z + eps * e) - f(z - eps * e)) / (2 * eps)
        dy = (f(z + 1j * eps * e) - f(z - 1j * eps * e)) / (2 * eps)
        out[idx] = dx - 1j * dy
    return out


def test_real_function_of_complex_input():
    loss = lambda z: tnp.sum(tnp.abs(tnp.fft.fft(z)) ** 2 + tnp.real(z) ** 3 * tnp.imag(z))  # noqa
    g = T.grad(loss)(ZV)
    np.testing.assert_allclose(g, [2.544 - 1.864j, -4.5 - 2.0j, 1.116 + 4.192j], atol=1e-12)
    np.testing.assert_allclose(g, _fd_conj_grad(lambda z: float(loss(z)), ZV), atol=1e-6)
    check_grads(loss, (ZV,), order=2)
    # also through jit
    np.testing.assert_allclose(T.jit(T.grad(loss))(ZV), g, atol=1e-12)


def test_holomorphic_grad():
    f = lambda z: tnp.sin(z) * z ** 2 + tnp.exp(z)  # noqa: E731
    g = T.grad(f, holomorphic=True)(Z)
    np.testing.assert_allclose(g, 1.6784227298405128 + 1.1322700713478675j, atol=1e-12)
    # f'(z) by a complex finite difference along both real directions (Cauchy-Riemann)
    h = 1e-6
    np.testing.assert_allclose(g, (f(Z + h) - f(Z - h)) / (2 * h), atol=1e-8)
    np.testing.assert_allclose(g, (f(Z + 1j * h) - f(Z - 1j * h)) / (2j * h), atol=1e-8)
    g2 = T.grad(T.grad(lambda z: z ** 3 + z, holomorphic=True), holomorphic=True)(Z)
    np.testing.assert_allclose(g2, 2.4 + 1.8j, atol=1e-12)
    check_grads(f, (Z,), order=2)
    v, g = T.value_and_grad(f, holomorphic=True)(Z)
    np.testing.assert_allclose(v, f(Z))


def test_holomorphic_jacobians():
    f = lambda z: tnp.fft.fft(z * z)  # noqa: E731
    expected = np.array([[0.8 + 0.6j, -2 + 1j, 0.4 - 1.4j],
                         [0.8 + 0.6j, 1.8660254037844386 + 1.2320508075688772j,
                          1.012435565298214 + 1.0464101615137755j],
                         [0.8 + 0.6j, 0.1339745962155614 - 2.232050807568877j,
                          -1.412435565298214 + 0.3535898384862245j]])
    np.testing.assert_allclose(T.jacfwd(f, holomorphic=True)(ZV), expected, atol=1e-12)
    np.testing.assert_allclose(T.jacrev(f, holomorphic=True)(ZV), expected, atol=1e-12)
    hes = T.hessian(lambda z: tnp.sum(tnp.exp(z) * z), holomorphic=True)(ZV)
    np.testing.assert_allclose(np.diag(hes), [3.2882076628003203 + 1.4856327937892966j,
                                              0.23465918283751702 + 0.33779309045004846j,
                                              1.5044023036009921 - 2.384994622079471j],
                               atol=1e-12)
    assert np.all(hes[~np.eye(3, dtype=bool)] == 0)


def test_holomorphic_errors_as_jax():
    with pytest.raises(TypeError, match="requires inputs with complex dtype"):
        T.grad(lambda x: x * x, holomorphic=True)(1.0)
    with pytest.raises(TypeError, match="requires outputs with complex dtype"):
        T.grad(lambda z: tnp.abs(z), holomorphic=True)(Z)
    with pytest.raises(TypeError, match="jacfwd requires real-valued inputs"):
        T.jacfwd(lambda z: z * z)(ZV)
    with pytest.raises(TypeError, match="jacrev requires real-valued outputs"):
        T.jacrev(lambda z: z * z)(ZV)
    with pytest.raises(TypeError, match="grad requires real-valued outputs"):
        T.grad(lambda z: z * z)(Z)


def test_isreal_iscomplex_angle_as_numpy():
    z = np.array([1 + 0j, 1 + 1j, -1 - 0j, -2 + 0.5j])
    for a in [z, z.astype(np.complex64), np.array([1.0, -2.0]), np.array([1, -2]),
              np.array([-1.0], np.float32)]:
        for name in ("iscomplex", "isreal"):
            np.testing.assert_array_equal(getattr(tnp, name)(a), getattr(np, name)(a))
        for deg in (False, True):
            got, exp = tnp.angle(a, deg), np.angle(a, deg)
            assert got.dtype == exp.dtype
            np.testing.assert_allclose(got, exp, rtol=1e-6)
    # grad of the argument, JAX's convention, by finite differences in both directions
    f = lambda z: tnp.sum(tnp.angle(z) * tnp.abs(z))  # noqa: E731
    np.testing.assert_allclose(T.grad(f)(ZV), _fd_conj_grad(lambda z: float(f(z)), ZV),
                               atol=1e-6)


_R = np.random.default_rng(1)
_Z3 = _R.standard_normal(3) + 1j * _R.standard_normal(3) + 2
_W3 = _R.standard_normal(3) + 1j * _R.standard_normal(3)
_M3 = _R.standard_normal((3, 3)) + 1j * _R.standard_normal((3, 3))
_COMPLEX_FUNS = {
    "mul": lambda z: z * _W3, "div": lambda z: _W3 / z, "exp": tnp.exp, "log": tnp.log,
    "sqrt": tnp.sqrt, "abs": tnp.abs, "sin": tnp.sin, "tanh": tnp.tanh,
    "matmul": lambda z: _M3 @ z, "prod": tnp.prod, "cumsum": tnp.cumsum,
    "pow": lambda z: z ** (1.5 + 0.5j), "ipow": lambda z: z ** 3, "expm1": tnp.expm1,
    "var": tnp.var, "norm": tnp.linalg.norm, "angle": tnp.angle, "conj": tnp.conj,
    "where": lambda z: tnp.where(tnp.real(z) > 2, z, z * z),
}


@pytest.mark.parametrize("name", sorted(_COMPLEX_FUNS))
def test_check_grads_complex_inputs(name):
    # check_grads perturbs complex inputs in both real directions and pairs cotangents
    # bilinearly (JAX's convention)
    check_grads(_COMPLEX_FUNS[name], (_Z3,), order=2)
