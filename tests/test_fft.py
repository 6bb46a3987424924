"""tnp.fft / lax.fft: values and dtypes against NumPy, derivatives by finite differences and
against JAX (recorded literals), vmap against a loop."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax
from transforms.test_util import check_grads

rng = np.random.default_rng(0)
X = rng.standard_normal((4, 6, 5))
Z = X + 1j * rng.standard_normal(X.shape)
NORMS = [None, "backward", "ortho", "forward"]


@pytest.mark.parametrize("name", ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft"])
def test_1d_against_numpy(name):
    inputs = [X, X.astype(np.float32), Z, Z.astype(np.complex64), np.arange(6)]
    for a in inputs:
        if name in ("rfft", "ihfft") and a.dtype.kind == "c":
            with pytest.raises(TypeError):          # (also a ValueError, as JAX)
                getattr(tnp.fft, name)(a)
            with pytest.raises(ValueError):
                getattr(tnp.fft, name)(a)
            continue
        for n in [None, 4, 7, 8]:
            for axis in [-1, 0]:
                for norm in NORMS:
                    e = getattr(np.fft, name)(a, n=n, axis=axis, norm=norm)
                    g = getattr(tnp.fft, name)(a, n=n, axis=axis, norm=norm)
                    assert g.dtype == e.dtype and g.shape == e.shape, (name, a.dtype, n, axis)
                    tol = 1e-4 if e.dtype in (np.float32, np.complex64) else 1e-10
                    np.testing.assert_allclose(g, e, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["fftn", "ifftn", "rfftn", "irfftn",
                                  "fft2", "ifft2", "rfft2", "irfft2"])
def test_nd_against_numpy(name):
    a = X if name.startswith("rfft") else Z
    if name.endswith("n"):
        cases = [(None, None), ((3, 4), (0, 2)), (None, (1, 0)), ((5, 6, 7), (0, 1, 2)),
                 ((8,), (-1,)), ((3, 4), None)]
    else:
        cases = [(None, (-2, -1)), ((3, 4), (0, 2)), ((7, 8), (-1, -2))]
    for s, axes in cases:
        for norm in NORMS:
            e = getattr(np.fft, name)(a, s=s, axes=axes if axes is not None else
                                      (None if s is None else tuple(range(-len(s), 0))),
                                      norm=norm)
            kw = {} if axes is None and not name.endswith("n") else {"axes": axes}
            g = getattr(tnp.fft, name)(a, s=s, norm=norm, **kw)
            assert g.dtype == e.dtype and g.shape == e.shape
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-10)


def test_more_than_three_axes():
    a = rng.standard_normal((2, 3, 4, 5)) + 1j * rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(tnp.fft.fftn(a), np.fft.fftn(a), atol=1e-10)
    np.testing.assert_allclose(tnp.fft.ifftn(a, norm="ortho"), np.fft.ifftn(a, norm="ortho"),
                               atol=1e-10)
    r = a.real
    np.testing.assert_allclose(tnp.fft.rfftn(r), np.fft.rfftn(r), atol=1e-10)
    np.testing.assert_allclose(tnp.fft.irfftn(a), np.fft.irfftn(a), atol=1e-10)
    np.testing.assert_allclose(tnp.fft.irfftn(a, s=(3, 3, 5, 6)),
                               np.fft.irfftn(a, s=(3, 3, 5, 6), axes=(0, 1, 2, 3)), atol=1e-10)


def test_freq_and_shift():
    for n in [1, 2, 5, 8]:
        for d in [1.0, 0.25]:
            np.testing.assert_array_equal(tnp.fft.fftfreq(n, d), np.fft.fftfreq(n, d))
            np.testing.assert_array_equal(tnp.fft.rfftfreq(n, d), np.fft.rfftfreq(n, d))
    assert tnp.fft.fftfreq(4, dtype=np.float32).dtype == np.float32
    a = np.arange(30).reshape(5, 6)
    for axes in [None, 0, (1,), (0, 1), -1]:
        np.testing.assert_array_equal(tnp.fft.fftshift(a, axes), np.fft.fftshift(a, axes))
        np.testing.assert_array_equal(tnp.fft.ifftshift(a, axes), np.fft.ifftshift(a, axes))
    # d traced
    g = T.grad(lambda d: tnp.sum(tnp.fft.fftfreq(4, d) ** 2))(0.5)
    np.testing.assert_allclose(g, -2 * np.sum(np.fft.fftfreq(4, 1.0) ** 2) / 0.5 ** 3)


def test_errors():
    with pytest.raises(ValueError, match="norm"):
        tnp.fft.fft(Z, norm="bogus")
    with pytest.raises(ValueError, match="repeated"):
        tnp.fft.fftn(Z, axes=(0, 0))
    with pytest.raises(ValueError, match="0"):
        tnp.fft.fft(Z, n=0)
    with pytest.raises(ValueError):
        tnp.fft.fft(Z, axis=3)
    with pytest.raises(TypeError):
        lax.fft(X, "FFT", (5,))
    with pytest.raises(ValueError):
        lax.fft(Z, "IRFFT", (5,))


@pytest.mark.parametrize("case", range(13))
def test_check_grads(case):
    x = rng.standard_normal((3, 6))
    z = x + 1j * rng.standard_normal(x.shape)
    y = rng.standard_normal((3, 5))
    f, a = [
        (lambda a: tnp.fft.fft(a), z),
        (lambda a: tnp.fft.ifft(a, norm="ortho"), z),
        (lambda a: tnp.fft.rfft(a), x),
        (lambda a: tnp.fft.rfft(a, n=9), y),
        (lambda a: tnp.fft.irfft(a), z),
        (lambda a: tnp.fft.irfft(a, n=5), z),
        (lambda a: tnp.fft.rfftn(a, norm="forward"), x),
        (lambda a: tnp.fft.irfftn(a, s=(4, 7)), z),
        (lambda a: tnp.fft.hfft(a, norm="ortho"), z),
        (lambda a: tnp.fft.ihfft(a), x),
        (lambda a: tnp.fft.fft(a), x),
        (lambda a: tnp.fft.rfft2(a, s=(4, 7)), x),
        (lambda a: tnp.sum(tnp.abs(tnp.fft.rfft(a)) ** 2), y),
    ][case]
    check_grads(f, (a,), order=2)


def test_float32_grads():
    x = rng.standard_normal((2, 8)).astype(np.float32)
    check_grads(lambda a: tnp.fft.irfft(tnp.fft.rfft(a) * (1 + 1j)), (x,), order=1)
    g = T.grad(lambda a: tnp.sum(tnp.abs(tnp.fft.rfft(a)) ** 2))(x)
    assert g.dtype == np.float32


# JAX (x64) values for x = [0.3, -1.2, 0.7, 2.0, -0.5]
XS = np.array([0.3, -1.2, 0.7, 2.0, -0.5])


def test_against_jax_literals():
    # jax.grad(lambda x: jnp.sum(jnp.abs(jnp.fft.rfft(x))**2))(XS)
    g = T.grad(lambda x: tnp.sum(tnp.abs(tnp.fft.rfft(x)) ** 2))(XS)
    np.testing.assert_allclose(g, [2.8, -4.7, 4.8, 11.3, -1.2], atol=1e-12)
    # jax.vjp(jnp.fft.rfft, XS)[1](ct) for ct = [1+2j, -1j, 0.5+0.5j]
    ct = np.array([1 + 2j, -1j, 0.5 + 0.5j])
    v = T.vjp(tnp.fft.rfft, XS)[1](ct)[0]
    expected = np.real(np.fft.fft(np.concatenate([ct, np.zeros(2)])))
    np.testing.assert_allclose(v, expected, atol=1e-12)
    np.testing.assert_allclose(v, [1.5, -0.06167238733639069, 0.09119498674742377,
                                   2.2178220076275235, 1.2526553929614435], atol=1e-12)
    # jax.vjp(jnp.fft.irfft, ct)[1](XS[:4]) (n = 4)
    v = T.vjp(tnp.fft.irfft, ct)[1](XS[:4])[0]
    np.testing.assert_allclose(v, [0.45 + 0.j, -0.2 - 1.6j, 0.05 + 0.j], atol=1e-12)


def test_vmap_against_loop():
    x = rng.standard_normal((3, 4, 6))
    z = x + 1j * rng.standard_normal(x.shape)
    for f, a in [(lambda a: tnp.fft.fft(a, axis=0), z), (lambda a: tnp.fft.rfft2(a), x),
                 (lambda a: tnp.fft.irfft(a, n=7, axis=0), z),
                 (lambda a: tnp.fft.fftshift(tnp.fft.fftn(a)), x)]:
        for ax in [0, 1, 2]:
            got = T.vmap(f, in_axes=ax)(a)
            exp = np.stack([f(np.take(a, i, axis=ax)) for i in range(a.shape[ax])])
            assert got.dtype == exp.dtype
            np.testing.assert_allclose(got, exp, atol=1e-12)
    # grad of vmap / vmap of grad
    loss = lambda a: tnp.sum(tnp.abs(tnp.fft.rfft(a)) ** 2)  # noqa: E731
    got = T.vmap(T.grad(loss))(x[0])
    exp = np.stack([T.grad(loss)(r) for r in x[0]])
    np.testing.assert_allclose(got, exp, atol=1e-12)
