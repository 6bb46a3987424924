"""transforms.scipy's optimize, sparse.linalg, ndimage, integrate, fft, interpolate,
cluster modules and the later special/linalg/signal/stats additions: values against SciPy,
jit against eager, finite-difference derivatives (float64), and against JAX when it is
importable. Shapes are small and jitted functions are shared to keep the file fast."""
import numpy as np
import pytest
import scipy.linalg as sla
import scipy.optimize as so
import scipy.signal as sig_ref
import scipy.special as ssp
import scipy.stats as sst

import transforms as T
import transforms.numpy as tnp
from transforms.test_util import check_grads
from transforms.scipy import fft as tfft
from transforms.scipy import integrate, interpolate, ndimage
from transforms.scipy.cluster import vq
from transforms.scipy import linalg as tla
from transforms.scipy import optimize as topt
from transforms.scipy import signal as tsig
from transforms.scipy import special as tsp
from transforms.scipy import stats as tst
from transforms.scipy.sparse import linalg as tsl

RNG = np.random.default_rng(0)


# -- optimize -------------------------------------------------------------------------------

def rosen(x):
    return tnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def quad(x, A, c):
    return 0.5 * x @ A @ x - c @ x


QA = np.array([[3.0, 1.0, 0.2], [1.0, 2.0, 0.1], [0.2, 0.1, 1.5]])
QC = np.array([1.0, -2.0, 0.5])
_bfgs_jit = T.jit(lambda x0, c: topt.minimize(quad, x0, (QA, c), method="BFGS"))


def test_minimize_bfgs_quadratic_solution_and_inverse_hessian():
    r = topt.minimize(quad, np.zeros(3), (QA, QC), method="BFGS", tol=1e-10)
    assert set(r._fields) == {"x", "success", "status", "fun", "jac", "hess_inv", "nfev",
                              "njev", "nit"}
    want = np.linalg.solve(QA, QC)
    np.testing.assert_allclose(r.x, want, rtol=1e-8)
    np.testing.assert_allclose(r.fun, -0.5 * QC @ want, rtol=1e-10)
    assert bool(r.success) and int(r.status) == 0
    assert np.max(np.abs(r.jac)) < 1e-10
    # the inverse-Hessian estimate approaches A⁻¹ (exactly only with exact line searches)
    np.testing.assert_allclose(r.hess_inv, np.linalg.inv(QA), rtol=0.05, atol=5e-3)
    assert 1 <= int(r.nit) <= 10 and int(r.nfev) >= int(r.nit) + 1
    assert int(r.njev) == int(r.nfev)


def test_minimize_bfgs_jit_equals_eager():
    eager = topt.minimize(quad, np.ones(3), (QA, QC), method="bfgs")
    jitted = _bfgs_jit(np.ones(3), QC)
    np.testing.assert_allclose(jitted.x, eager.x, rtol=1e-12)
    assert int(jitted.nit) == int(eager.nit)


def test_minimize_bfgs_rosenbrock_matches_scipy():
    x0 = np.array([-1.2, 1.0])
    r = topt.minimize(rosen, x0, method="BFGS")
    ref = so.minimize(lambda x: np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2),
                      x0, method="BFGS")
    assert bool(r.success)
    np.testing.assert_allclose(r.x, ref.x, rtol=1e-4)
    np.testing.assert_allclose(r.x, [1.0, 1.0], rtol=1e-4)
    assert int(r.nit) < 3 * ref.nit


def test_minimize_maxiter_status_and_bad_input():
    r = topt.minimize(rosen, np.array([-1.2, 1.0]), method="BFGS", options={"maxiter": 2})
    assert int(r.status) == 1 and not bool(r.success) and int(r.nit) == 2
    with pytest.raises(ValueError, match="method"):
        topt.minimize(rosen, np.zeros(2), method="Nelder-Mead")
    with pytest.raises(ValueError, match="x0"):
        topt.minimize(rosen, np.zeros((2, 2)), method="BFGS")
    with pytest.raises(TypeError, match="options"):
        topt.minimize(rosen, np.zeros(2), method="BFGS", options={"bogus": 1})


def test_line_search_satisfies_strong_wolfe():
    x = np.array([-1.2, 1.0])
    g = np.asarray(T.grad(rosen)(x))
    p = -g
    res = topt.line_search(rosen, x, p)
    a = float(res.a_k)
    assert not bool(res.failed) and a > 0
    f0, f1 = float(rosen(x)), float(rosen(x + a * p))
    g1 = np.asarray(T.grad(rosen)(x + a * p))
    assert f1 <= f0 + 1e-4 * a * g @ p
    assert abs(g1 @ p) <= 0.9 * abs(g @ p)
    np.testing.assert_allclose(res.f_k, f1, rtol=1e-12)


def test_minimize_against_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.scipy.optimize import minimize as jmin
    rj = jmin(lambda x: 0.5 * x @ QA @ x - QC @ x, jnp.zeros(3), method="BFGS")
    r = topt.minimize(quad, np.zeros(3), (QA, QC), method="BFGS")
    np.testing.assert_allclose(r.x, rj.x, rtol=1e-5)
    assert bool(r.success) == bool(rj.success) and int(r.status) == int(rj.status)
    x0 = np.array([0.3, 0.8])
    rj = jmin(lambda x: jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2), x0,
              method="BFGS")
    r = topt.minimize(rosen, x0, method="BFGS")
    assert bool(r.success)
    if bool(rj.success):    # JAX's line search gives up on some Rosenbrock starts
        np.testing.assert_allclose(r.x, rj.x, rtol=1e-4)


# -- sparse.linalg --------------------------------------------------------------------------

_B = RNG.normal(size=(6, 6))
SPD = _B @ _B.T + 6 * np.eye(6)
GEN = _B + 4 * np.eye(6)
BVEC = RNG.normal(size=6)
# gmres compiles under jit too, but its nested loops cost ~30 s of cold compile on a
# loaded machine: the file checks cg's and bicgstab's compiled paths
_solve_jit = {name: T.jit(lambda A, b, f=f: f(A, b, tol=1e-10)[0])
              for name, f in (("cg", tsl.cg), ("bicgstab", tsl.bicgstab))}



@pytest.mark.parametrize("name", ["cg", "bicgstab", "gmres"])
def test_iterative_solvers_matrix_function_jit(name):
    f = getattr(tsl, name)
    A = SPD if name == "cg" else GEN
    want = np.linalg.solve(A, BVEC)
    x, info = f(A, BVEC, tol=1e-10)
    assert info is None
    np.testing.assert_allclose(x, want, rtol=1e-8, atol=1e-10)
    x2, _ = f(lambda v: tnp.matmul(A, v), BVEC, tol=1e-10, M=np.diag(1 / np.diag(A)))
    np.testing.assert_allclose(x2, want, rtol=1e-8, atol=1e-10)
    if name in _solve_jit:
        np.testing.assert_allclose(_solve_jit[name](A, BVEC), x, rtol=1e-10, atol=1e-12)


def test_gmres_restart_maxiter_and_cg_vmap():
    want = np.linalg.solve(GEN, BVEC)
    x, _ = tsl.gmres(GEN, BVEC, tol=1e-10, restart=2)
    np.testing.assert_allclose(x, want, rtol=1e-7, atol=1e-9)
    # one cycle of a 2-dimensional Krylov space cannot solve a 6x6 system
    x1, _ = tsl.gmres(GEN, BVEC, tol=1e-10, restart=2, maxiter=1)
    assert np.max(np.abs(np.asarray(x1) - want)) > 1e-6
    # maxiter caps cg's iterations: 1 step is a steepest-descent step from 0
    xc, _ = tsl.cg(SPD, BVEC, maxiter=1)
    r = BVEC
    np.testing.assert_allclose(xc, (r @ r) / (r @ SPD @ r) * r, rtol=1e-12)
    bs = RNG.normal(size=(3, 6))
    xs = T.vmap(lambda b: tsl.cg(SPD, b, tol=1e-10)[0])(bs)
    np.testing.assert_allclose(xs, np.linalg.solve(SPD, bs.T).T, rtol=1e-8, atol=1e-10)
    with pytest.raises(ValueError, match="b must be 1-dimensional"):
        tsl.cg(SPD, np.ones((6, 1)))
    with pytest.raises(ValueError, match="square"):
        tsl.cg(np.ones((6, 5)), BVEC)


def test_sparse_solvers_against_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    from jax.scipy.sparse.linalg import bicgstab, cg
    np.testing.assert_allclose(tsl.cg(SPD, BVEC, maxiter=3)[0], cg(SPD, BVEC, maxiter=3)[0],
                               rtol=1e-8)
    np.testing.assert_allclose(tsl.bicgstab(GEN, BVEC, tol=1e-10)[0],
                               bicgstab(GEN, BVEC, tol=1e-10)[0], rtol=1e-7)


# -- ndimage, integrate, fft ----------------------------------------------------------------

IMG = RNG.normal(size=(4, 6))
# no exact .5 ties (SciPy and JAX round them differently at order 0)
COORDS = np.array([[0.3, 1.45, 2.9, -0.7, 3.6, 2.55], [0.2, 4.4, 5.0, 2.6, -1.2, 6.6]])
MODES = [("nearest", "nearest"), ("wrap", "grid-wrap"), ("mirror", "mirror"),
         ("reflect", "reflect"), ("constant", "grid-constant")]


@pytest.mark.parametrize("mode,scipy_mode", MODES, ids=[m[0] for m in MODES])
@pytest.mark.parametrize("order", [0, 1])
def test_map_coordinates_against_scipy(mode, scipy_mode, order):
    import scipy.ndimage as snd
    got = ndimage.map_coordinates(IMG, COORDS, order, mode=mode, cval=0.5)
    want = snd.map_coordinates(IMG, COORDS, order=order, mode=scipy_mode, cval=0.5)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_map_coordinates_jit_grad_and_errors():
    # a constant image with traced coordinates
    f = T.jit(lambda c: ndimage.map_coordinates(IMG, c, 1, mode="mirror"))
    np.testing.assert_allclose(f(COORDS), ndimage.map_coordinates(IMG, COORDS, 1, mode="mirror"),
                               rtol=1e-12)
    # linear interpolation is differentiable in the image and in the (interior) coordinates
    c = np.array([[0.3, 1.6, 2.2], [0.4, 3.3, 1.7]])
    check_grads(lambda im: ndimage.map_coordinates(im, c, 1), [IMG], order=1,
                modes=("fwd", "rev"))
    check_grads(lambda c: ndimage.map_coordinates(IMG, c, 1), [c], order=1,
                modes=("fwd", "rev"))
    with pytest.raises(NotImplementedError, match="order"):
        ndimage.map_coordinates(IMG, COORDS, 3)
    with pytest.raises(ValueError, match="mode"):
        ndimage.map_coordinates(IMG, COORDS, 1, mode="bogus")
    with pytest.raises(ValueError, match="length"):
        ndimage.map_coordinates(IMG, COORDS[:1], 1)


def test_map_coordinates_against_jax():
    pytest.importorskip("jax")
    from jax.scipy.ndimage import map_coordinates as jmc
    c = np.concatenate([COORDS, [[2.5, -1.5], [0.5, 6.5]]], axis=1).astype(np.float32)
    for mode, _ in MODES:
        for order in (0, 1):
            np.testing.assert_allclose(
                ndimage.map_coordinates(IMG.astype(np.float32), c, order, mode=mode),
                jmc(IMG.astype(np.float32), c, order, mode=mode), rtol=1e-5, atol=1e-6)


def test_trapezoid():
    import scipy.integrate as si
    xs = np.sort(RNG.uniform(size=4))
    np.testing.assert_allclose(integrate.trapezoid(IMG, dx=0.5), si.trapezoid(IMG, dx=0.5))
    np.testing.assert_allclose(integrate.trapezoid(IMG, x=xs, axis=0),
                               si.trapezoid(IMG, x=xs, axis=0))
    check_grads(lambda y, x: integrate.trapezoid(y, x, axis=0), [IMG, xs], order=1,
                modes=("rev",))


@pytest.mark.parametrize("norm", [None, "ortho", "forward"])
@pytest.mark.parametrize("type", [2, 3])
def test_dct_against_scipy(type, norm):
    import scipy.fft as sf
    np.testing.assert_allclose(tfft.dct(IMG, type, norm=norm), sf.dct(IMG, type, norm=norm),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tfft.idct(IMG, type, axis=0, norm=norm, n=5),
                               sf.idct(IMG, type, axis=0, norm=norm, n=5), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(tfft.dctn(IMG, type, norm=norm, s=(3, 7)),
                               sf.dctn(IMG, type, norm=norm, s=(3, 7)), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(tfft.idctn(IMG, type, norm=norm),
                               sf.idctn(IMG, type, norm=norm), rtol=1e-10, atol=1e-12)


def test_dct_jit_grad_and_jax():
    f = T.jit(lambda x: tfft.dctn(x, norm="ortho"))
    np.testing.assert_allclose(f(IMG), tfft.dctn(IMG, norm="ortho"), rtol=1e-12)
    check_grads(lambda x: tfft.dct(x, axis=0), [IMG], order=1, modes=("rev",))
    with pytest.raises(NotImplementedError, match="type"):
        tfft.dct(IMG, 1)
    pytest.importorskip("jax")
    import jax.scipy.fft as jf
    x32 = IMG.astype(np.float32)
    np.testing.assert_allclose(tfft.dct(x32, norm="ortho"), jf.dct(x32, norm="ortho"),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(tfft.idctn(x32), jf.idctn(x32), rtol=1e-4, atol=1e-5)


# -- special --------------------------------------------------------------------------------

GA = np.array([0.1, 0.5, 1.0, 2.5, 7.0, 30.0, 150.0])
GX = np.array([0.01, 0.3, 1.7, 2.0, 12.0, 25.0, 170.0])
BA = np.array([0.3, 2.0, 5.0, 0.7, 11.0, 3.0, 40.0])
BB = BA[::-1].copy()
BX = np.array([0.01, 0.2, 0.5, 0.9, 0.6, 0.99, 0.3])
XE = np.array([1e-5, 0.3, 1.0, 1.9, 2.1, 3.0, 10.0, 45.0, 300.0])
NE = np.array([0, 1, 2, 3, 5, 10, 20, 2, 7])
XR = np.array([-30.0, -5.5, -1.2, -0.3, 0.0, 0.1, 0.19, 0.5, 2.0, 3.9, 4.1, 10.0, 100.0,
               1e5])
ZX = np.array([1.1, 1.5, 2.0, 3.3, 8.0, 30.0])
ZQ = np.array([0.3, 1.0, 2.5, 0.7, 10.0, 1.0])

SPECIAL_MORE = [
    ("gammainc", lambda a, x: tsp.gammainc(a, x), lambda a, x: ssp.gammainc(a, x), (GA, GX)),
    ("gammaincc", lambda a, x: tsp.gammaincc(a, x), lambda a, x: ssp.gammaincc(a, x),
     (GA, GX)),
    ("betainc", lambda a, b, x: tsp.betainc(a, b, x), ssp.betainc,
     (BA, BB, BX)),
    ("exp1", lambda x: tsp.exp1(x), ssp.exp1, (XE,)),
    ("expi", lambda x: tsp.expi(x), ssp.expi, (np.concatenate([XE, -XE]),)),
    ("expn", lambda n, x: tsp.expn(n, x), ssp.expn, (NE, XE)),
    ("erfcx", lambda x: tsp.erfcx(x), ssp.erfcx, (XR[1:],)),
    ("dawsn", lambda x: tsp.dawsn(x), ssp.dawsn, (XR,)),
    ("loggamma", lambda x: tsp.loggamma(x), ssp.loggamma, (XR[5:],)),
    ("gammasgn", lambda x: tsp.gammasgn(x), ssp.gammasgn,
     (np.array([-3.0, -2.5, -1.5, -0.5, 0.0, 0.5, 4.0]),)),
    ("zeta", lambda x, q: tsp.zeta(x, q), ssp.zeta, (ZX, ZQ)),
    ("zeta_riemann", lambda x: tsp.zeta(x), ssp.zeta, (ZX,)),
    ("poch", lambda z, m: tsp.poch(z, m), ssp.poch,
     (np.array([-1.5, 2.0, 3.3, 0.5, 4.0]), np.array([2.0, 0.5, 4.0, -0.3, 0.0]))),
    ("comb", lambda n, k: tsp.comb(n, k), ssp.comb,
     (np.array([5.0, 5.0, -1.0, 30.0, 4.5]), np.array([2.0, 7.0, 1.0, 15.0, 2.2]))),
    ("boxcox", lambda x, l: tsp.boxcox(x, l), ssp.boxcox,
     (np.array([0.5, 2.0, 3.0]), np.array([0.0, 1e-9, 2.0]))),
    ("boxcox1p", lambda x, l: tsp.boxcox1p(x, l), ssp.boxcox1p,
     (np.array([0.5, 2.0, 3.0]), np.array([0.0, 1e-9, -2.0]))),
    ("spence", lambda x: tsp.spence(x), ssp.spence,
     (np.array([0.0, 1e-8, 0.3, 0.5, 0.9, 1.0, 1.5, 2.0, 2.7, 10.0, 100.0, 1e6]),)),
    ("owens_t", lambda h, a: tsp.owens_t(h, a), ssp.owens_t,
     (np.array([0.0, 0.3, 1.5, -2.0, 4.0, 0.7]), np.array([0.5, -1.0, 3.0, 0.2, 7.0, -20.0]))),
    ("hyp1f1", lambda a, b, x: tsp.hyp1f1(a, b, x), ssp.hyp1f1,
     (np.array([0.5, 1.5, -2.0, 3.0, 2.2]), np.array([1.5, 2.5, 3.0, 4.5, 0.7]),
      np.array([0.3, -5.0, 2.0, 20.0, -30.0]))),
    ("hyp2f1", lambda a, b, c, x: tsp.hyp2f1(a, b, c, x), ssp.hyp2f1,
     (np.array([0.5, 1.5, -2.0, 3.0, 2.2]), np.array([1.5, 2.5, 3.0, 4.5, 0.7]),
      np.array([2.5, 3.0, 4.0, 5.5, 1.7]), np.array([0.3, -5.0, 0.85, -0.5, 0.1]))),
    ("bessel_jn", lambda z: tsp.bessel_jn(z, v=4),
     lambda z: np.stack([ssp.jv(k, z) for k in range(5)]),
     (np.array([0.0, 0.5, 1.0, 5.0, 12.0, 20.0]),)),
]


@pytest.mark.parametrize("name,fn,ref,args", SPECIAL_MORE, ids=[c[0] for c in SPECIAL_MORE])
def test_special_more_values(name, fn, ref, args):
    want = ref(*args)
    np.testing.assert_allclose(fn(*args), want, rtol=1e-12, atol=1e-300, equal_nan=True)
    got32 = fn(*[a.astype(np.float32) for a in args])
    assert np.asarray(got32).dtype == np.float32
    fin = np.isfinite(want) & (np.abs(want) < 1e37) & (np.abs(want) > 1e-30)
    # owens_t's identity for |a| > 1 and hyp1f1's polynomial roots lose float32's relative
    # accuracy near 0: an absolute floor there
    atol = 1e-6 if name in ("owens_t", "hyp1f1") else 0
    np.testing.assert_allclose(np.asarray(got32)[fin], want[fin], rtol=2e-4, atol=atol)


def test_special_more_jit_and_vmap():
    # one while_loop function (the others are checked under jit through stats and the
    # derivative tests' rules) keeps the cold compile short
    f = T.jit(lambda a, x: (tsp.gammainc(a, x), tsp.expi(x), tsp.zeta(a + 1.5, x),
                            tsp.erfcx(x)))
    got = f(GA, GX)
    want = (ssp.gammainc(GA, GX), ssp.expi(GX), ssp.zeta(GA + 1.5, GX), ssp.erfcx(GX))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12)
    v = T.vmap(lambda a, x: tsp.gammaincc(a, x))(GA, GX)
    np.testing.assert_allclose(v, ssp.gammaincc(GA, GX), rtol=1e-12)
    # exact rationals rounded once (SciPy's own values are off in the 12th digit)
    b = tsp.bernoulli(12)
    np.testing.assert_allclose(b, ssp.bernoulli(12), rtol=1e-10)
    assert b[4] == -1 / 30 and b[6] == 1 / 42 and b[12] == -691 / 2730
    with pytest.raises(ValueError, match="non-negative"):
        tsp.bernoulli(-1)


DIFF_MORE = [
    ("gammainc_x", lambda x: tsp.gammainc(2.5, x), np.array([0.5, 2.0, 9.0])),
    ("gammainc_a", lambda a: tsp.gammainc(a, 3.0), np.array([0.7, 2.5, 6.0])),
    ("gammaincc_a", lambda a: tsp.gammaincc(a, 20.0), np.array([3.5, 12.0])),
    ("betainc_x", lambda x: tsp.betainc(2.0, 3.5, x), np.array([0.1, 0.5, 0.8])),
    ("exp1", tsp.exp1, np.array([0.4, 1.5, 7.0])),
    ("expi", tsp.expi, np.array([-2.0, 0.4, 1.5, 50.0])),
    ("expn", lambda x: tsp.expn(3, x), np.array([0.4, 1.5, 7.0])),
    ("erfcx", tsp.erfcx, np.array([-1.5, 0.3, 3.0, 6.0])),
    ("dawsn", tsp.dawsn, np.array([-1.5, 0.1, 3.0])),
    ("zeta_q", lambda q: tsp.zeta(3.0, q), np.array([0.5, 2.0])),
    ("poch", lambda z: tsp.poch(z, 1.7), np.array([0.5, 2.0])),
    ("boxcox", lambda l: tsp.boxcox(2.5, l), np.array([0.3, 1.5])),
    ("spence", tsp.spence, np.array([0.3, 0.9, 2.5])),
    ("owens_t_h", lambda h: tsp.owens_t(h, 0.7), np.array([0.3, 1.5])),
    ("owens_t_a", lambda a: tsp.owens_t(0.8, a), np.array([0.4, 2.5])),
    ("hyp1f1_x", lambda x: tsp.hyp1f1(0.5, 1.5, x), np.array([-2.0, 0.3, 4.0])),
    ("hyp2f1_x", lambda x: tsp.hyp2f1(0.5, 1.5, 2.5, x), np.array([-2.0, 0.3, 0.6])),
    ("bessel_jn", lambda z: tsp.bessel_jn(z, v=2), np.array([0.7, 3.0])),
]


TRIG_X = np.array([-3.0, -1.0, 0.0, 1e-6, 0.5, 1.4, 1.6, 2.0, 2.1, 4.0, 10.0, 100.0])


@pytest.mark.parametrize("name", ["sici", "fresnel"])
def test_sici_fresnel(name):
    ours, ref = getattr(tsp, name), getattr(ssp, name)
    for got, want in zip(ours(TRIG_X), ref(TRIG_X)):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-300)
    if name == "sici":      # fresnel's compiled path is the same construction: one compile
        for got, want in zip(T.jit(ours)(TRIG_X), ref(TRIG_X)):
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-300)
    x = np.array([0.4, 1.2, 2.5, 7.0])
    check_grads(lambda x: ours(x)[0], [x], order=1, modes=("fwd", "rev"))
    check_grads(lambda x: ours(x)[1], [x], order=1, modes=("rev",))


def test_sph_harm_y():
    n = np.array([0, 1, 1, 2, 3, 5, 5, 8, 4, 2])
    m = np.array([0, 0, 1, -1, 2, -3, 5, 4, -4, 3])
    th = np.array([0.3, 1.2, 2.0, 0.7, 0.0, 1.5, 2.9, 0.4, np.pi, 1.0])
    ph = np.linspace(-2.0, 3.0, 10)
    want = ssp.sph_harm_y(n, m, th, ph)
    np.testing.assert_allclose(tsp.sph_harm_y(n, m, th, ph), want, rtol=1e-12, atol=1e-15)
    f = T.jit(lambda n, m, t, p: tsp.sph_harm_y(n, m, t, p, n_max=8))
    np.testing.assert_allclose(f(n, m, th, ph), want, rtol=1e-12, atol=1e-15)
    check_grads(lambda t: tnp.real(tsp.sph_harm_y(3, 1, t, 0.4)), [np.array([0.5, 1.9])],
                order=1, modes=("rev",))


def test_wofz():
    z = np.array([0.0, 0.5 + 0.2j, -1.3 + 2.0j, 3.0 - 0.5j, 10 + 1j, -0.2 - 3j, 6j,
                  1e-3 + 1e-3j, 2.0, 25 + 0.5j])
    want = ssp.wofz(z)
    np.testing.assert_allclose(tsp.wofz(z), want, rtol=1e-13)
    np.testing.assert_allclose(T.jit(tsp.wofz)(z), want, rtol=1e-12)
    np.testing.assert_allclose(tsp.wofz(np.array([0.5, 1.5])), ssp.wofz([0.5, 1.5]),
                               rtol=1e-13)
    assert np.asarray(tsp.wofz(np.float32(0.5))).dtype == np.complex64


@pytest.mark.parametrize("name,fn,x", DIFF_MORE, ids=[c[0] for c in DIFF_MORE])
def test_special_more_derivatives(name, fn, x):
    check_grads(fn, [x], order=1, modes=("fwd", "rev"), rtol=1e-5)


def test_betainc_refuses_derivative_in_a():
    with pytest.raises(TypeError, match="betainc: the derivative with respect to a"):
        T.grad(lambda a: tsp.betainc(a, 2.0, 0.3))(1.5)


def test_special_more_against_jax():
    pytest.importorskip("jax")
    import jax.scipy.special as jsp
    a, x = GA.astype(np.float32), GX.astype(np.float32)
    np.testing.assert_allclose(tsp.gammainc(a, x), jsp.gammainc(a, x), rtol=1e-4)
    np.testing.assert_allclose(tsp.betainc(BA.astype(np.float32), BB.astype(np.float32),
                                           BX.astype(np.float32)),
                               jsp.betainc(BA.astype(np.float32), BB.astype(np.float32),
                                           BX.astype(np.float32)), rtol=1e-4)
    z = ZX.astype(np.float32)
    np.testing.assert_allclose(tsp.zeta(z, ZQ.astype(np.float32)),
                               jsp.zeta(z, ZQ.astype(np.float32)), rtol=1e-4)
    np.testing.assert_allclose(tsp.erfcx(XR[1:-1].astype(np.float32)),
                               jsp.erfcx(XR[1:-1].astype(np.float32)), rtol=1e-4)


# -- signal ---------------------------------------------------------------------------------

SIG_A = RNG.normal(size=(5, 6))
SIG_K = RNG.normal(size=(2, 3))
SIG_B = RNG.normal(size=(5, 6))


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_convolve2d_correlate2d_fftconvolve(mode):
    import scipy.signal as ss
    for x, y in ((SIG_A, SIG_K), (SIG_K, SIG_A), (SIG_A, SIG_B)):
        np.testing.assert_allclose(tsig.convolve2d(x, y, mode), ss.convolve2d(x, y, mode),
                                   atol=1e-12)
        np.testing.assert_allclose(tsig.correlate2d(x, y, mode),
                                   ss.correlate2d(x, y, mode), atol=1e-12)
        np.testing.assert_allclose(tsig.fftconvolve(x, y, mode), ss.fftconvolve(x, y, mode),
                                   atol=1e-12)
    np.testing.assert_allclose(tsig.fftconvolve(SIG_A, SIG_K[:1], mode, axes=1),
                               ss.fftconvolve(SIG_A, SIG_K[:1], mode, axes=1), atol=1e-12)


def test_signal_more_jit_grad_detrend_and_errors():
    import scipy.signal as ss
    f = T.jit(lambda a, k: (tsig.fftconvolve(a, k, "same"), tsig.correlate2d(a, k)))
    got = f(SIG_A, SIG_K)
    np.testing.assert_allclose(got[0], ss.fftconvolve(SIG_A, SIG_K, "same"), atol=1e-12)
    np.testing.assert_allclose(got[1], ss.correlate2d(SIG_A, SIG_K), atol=1e-12)
    check_grads(lambda a: tsig.fftconvolve(a, SIG_K, "valid"), [SIG_A], order=1,
                modes=("rev",))
    check_grads(lambda k: tsig.convolve2d(SIG_A, k, "same"), [SIG_K], order=1,
                modes=("fwd", "rev"))
    x = RNG.normal(size=(3, 10)) + np.arange(10.0)
    np.testing.assert_allclose(tsig.detrend(x), ss.detrend(x), atol=1e-12)
    np.testing.assert_allclose(tsig.detrend(x, axis=0, type="constant"),
                               ss.detrend(x, axis=0, type="constant"), atol=1e-12)
    np.testing.assert_allclose(tsig.detrend(x, bp=[4, 7]), ss.detrend(x, bp=[4, 7]),
                               atol=1e-12)
    with pytest.raises(NotImplementedError, match="boundary"):
        tsig.convolve2d(SIG_A, SIG_K, boundary="wrap")
    with pytest.raises(ValueError, match="2-D"):
        tsig.correlate2d(SIG_A[0], SIG_K[0])


def test_signal_more_against_jax():
    pytest.importorskip("jax")
    import jax.scipy.signal as js
    a, k = SIG_A.astype(np.float32), SIG_K.astype(np.float32)
    for mode in ("full", "same", "valid"):
        np.testing.assert_allclose(tsig.correlate2d(a, k, mode), js.correlate2d(a, k, mode),
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(tsig.fftconvolve(a, k, mode), js.fftconvolve(a, k, mode),
                                   rtol=1e-4, atol=1e-5)


# -- linalg ---------------------------------------------------------------------------------

LC = np.array([1.0, 2.0, 3.0])
LR = np.array([1.0, 5.0, 6.0, 7.0])
CONSTRUCTORS = [
    ("toeplitz", lambda: tla.toeplitz(LC, LR), lambda: sla.toeplitz(LC, LR)),
    ("toeplitz_sym", lambda: tla.toeplitz(LR), lambda: sla.toeplitz(LR)),
    ("hankel", lambda: tla.hankel(LC, LR), lambda: sla.hankel(LC, LR)),
    ("hankel1", lambda: tla.hankel(LR), lambda: sla.hankel(LR)),
    ("circulant", lambda: tla.circulant(LR), lambda: sla.circulant(LR)),
    ("companion", lambda: tla.companion(LR), lambda: sla.companion(LR)),
    ("leslie", lambda: tla.leslie(LR, LC), lambda: sla.leslie(LR, LC)),
    ("fiedler", lambda: tla.fiedler(LR), lambda: sla.fiedler(LR)),
    ("dft", lambda: tla.dft(5), lambda: sla.dft(5)),
    ("dft_sqrtn", lambda: tla.dft(4, "sqrtn"), lambda: sla.dft(4, "sqrtn")),
    ("hadamard", lambda: tla.hadamard(8), lambda: sla.hadamard(8)),
    ("hilbert", lambda: tla.hilbert(5), lambda: sla.hilbert(5)),
    ("invhilbert", lambda: tla.invhilbert(6), lambda: sla.invhilbert(6)),
    ("helmert", lambda: tla.helmert(5), lambda: sla.helmert(5)),
    ("helmert_full", lambda: tla.helmert(5, full=True), lambda: sla.helmert(5, full=True)),
] + [(f"fiedler_companion{n}", lambda n=n: tla.fiedler_companion(np.arange(1.0, n + 1)),
      lambda n=n: sla.fiedler_companion(np.arange(1.0, n + 1))) for n in (2, 3, 6, 7)] + \
    [(f"convolution_matrix_{m}_{n}", lambda m=m, n=n: tla.convolution_matrix(LR, n, m),
      lambda m=m, n=n: sla.convolution_matrix(LR, n, m))
     for m in ("full", "same", "valid") for n in (2, 6)] + \
    [(f"{f}_{k}", lambda f=f, k=k: getattr(tla, f)(6, k), lambda f=f, k=k: getattr(sla, f)(6, k))
     for f in ("pascal", "invpascal") for k in ("symmetric", "lower", "upper")]


@pytest.mark.parametrize("name,fn,ref", CONSTRUCTORS, ids=[c[0] for c in CONSTRUCTORS])
def test_linalg_constructors(name, fn, ref):
    got, want = np.asarray(fn()), ref()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_linalg_constructors_jit_grad_batch():
    f = T.jit(lambda c, r: (tla.toeplitz(c, r), tla.hankel(c, r), tla.circulant(r),
                            tla.companion(r), tla.convolution_matrix(c, 4, "same")))
    got = f(LC, LR)
    want = (sla.toeplitz(LC, LR), sla.hankel(LC, LR), sla.circulant(LR), sla.companion(LR),
            sla.convolution_matrix(LC, 4, "same"))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-14)
    check_grads(lambda r: tla.companion(r), [LR], order=1, modes=("fwd", "rev"))
    check_grads(lambda c: tla.toeplitz(c, LR), [LC], order=1, modes=("rev",))
    # leading axes batch, as JAX's toeplitz
    cs = RNG.normal(size=(2, 3))
    np.testing.assert_allclose(tla.toeplitz(cs), np.stack([sla.toeplitz(c) for c in cs]))
    np.testing.assert_allclose(T.vmap(tla.circulant)(cs),
                               np.stack([sla.circulant(c) for c in cs]))


LA = RNG.normal(size=(3, 3))
LE = RNG.normal(size=(3, 3))


def test_linalg_decompositions():
    a = RNG.normal(size=(4, 3))
    for mode, c in (("right", RNG.normal(size=(2, 4))), ("left", RNG.normal(size=(3, 2))),
                    ("right", RNG.normal(size=4))):
        x, r = tla.qr_multiply(a, c, mode)
        y, ry = sla.qr_multiply(a, c, mode)
        assert np.shape(x) == y.shape
        # QR is unique up to column signs: compare sign-free quantities
        np.testing.assert_allclose(np.abs(r), np.abs(ry), atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(x, axis=0), np.linalg.norm(y, axis=0),
                                   rtol=1e-12)
    for side in ("right", "left"):
        u, p = tla.polar(LA, side)
        su, sp_ = sla.polar(LA, side)
        np.testing.assert_allclose(u, su, atol=1e-12)
        np.testing.assert_allclose(p, sp_, atol=1e-12)
    e, L = tla.expm_frechet(LA, LE)
    se, sL = sla.expm_frechet(LA, LE)
    np.testing.assert_allclose(e, se, rtol=1e-10)
    np.testing.assert_allclose(L, sL, rtol=1e-10, atol=1e-12)
    B, Q = RNG.normal(size=(2, 2)), RNG.normal(size=(3, 2))
    np.testing.assert_allclose(tla.solve_sylvester(LA, B, Q), sla.solve_sylvester(LA, B, Q),
                               rtol=1e-10)
    d, off = RNG.normal(size=5), RNG.normal(size=4)
    np.testing.assert_allclose(tla.eigh_tridiagonal(d, off, eigvals_only=True),
                               sla.eigh_tridiagonal(d, off, eigvals_only=True), atol=1e-12)
    w, v = tla.eigh_tridiagonal(d, off)
    Tm = np.diag(d) + np.diag(off, 1) + np.diag(off, -1)
    np.testing.assert_allclose(Tm @ v, v * w, atol=1e-12)
    check_grads(lambda E: tla.expm_frechet(LA, E, compute_expm=False), [LE], order=1,
                modes=("rev",))
    check_grads(lambda Q: tla.solve_sylvester(LA, B, Q), [Q], order=1, modes=("rev",))


def test_linalg_eager_only_functions():
    S = LA @ LA.T + np.eye(3)
    np.testing.assert_allclose(tla.sqrtm(S), sla.sqrtm(S), rtol=1e-10)
    t, z = tla.schur(LA)
    np.testing.assert_allclose(np.asarray(z) @ t @ np.asarray(z).T, LA, atol=1e-12)
    h, q = tla.hessenberg(LA, calc_q=True)
    np.testing.assert_allclose(np.asarray(q) @ h @ np.asarray(q).T, LA, atol=1e-12)
    np.testing.assert_allclose(tla.funm(S, np.exp), tla.expm(S), rtol=1e-8)
    tc, zc = tla.rsf2csf(t, z)
    np.testing.assert_allclose(np.asarray(zc) @ tc @ np.asarray(zc).conj().T, LA, atol=1e-10)
    with pytest.raises(TypeError, match="eagerly"):
        T.jit(tla.schur)(LA)


# -- stats ----------------------------------------------------------------------------------

SX = np.array([-3.0, -1.2, 0.1, 0.9, 1.8, 4.0])
SQ = np.array([0.1, 0.5, 0.9])
SK = np.array([-1.0, 0.0, 1.0, 3.0, 5.0, 7.0, 2.5])
DISTS = (
    [(f"truncnorm.{f}", f, tst.truncnorm, sst.truncnorm, SX, (-1.5, 2.0, 0.2, 0.9))
     for f in ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf")]
    + [(f"truncnorm_tail.{f}", f, tst.truncnorm, sst.truncnorm,
        np.array([8.5, 9.0, 9.5, 11.0]), (8.5, 12.0)) for f in ("logpdf", "logcdf", "logsf")]
    + [(f"pareto.{f}", f, tst.pareto, sst.pareto, SQ if f == "ppf" else SX, (2.5, -1.0, 1.5))
       for f in ("logpdf", "pdf", "cdf", "sf", "logsf", "ppf")]
    + [(f"{d}.{f}", f, getattr(tst, d), getattr(sst, d), SQ if f == "ppf" else SX, (0.3, 1.4))
       for d in ("gumbel_l", "gumbel_r")
       for f in ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf", "ppf")]
    + [(f"gennorm.{f}", f, tst.gennorm, sst.gennorm, SX, (1.7,))
       for f in ("logpdf", "pdf", "cdf")]
    + [("vonmises.logpdf", "logpdf", tst.vonmises, sst.vonmises, SX, (2.5,)),
       ("vonmises_big.logpdf", "logpdf", tst.vonmises, sst.vonmises, SX, (800.0,)),
       ("wrapcauchy.pdf", "pdf", tst.wrapcauchy, sst.wrapcauchy, SX, (0.4,)),
       ("betabinom.pmf", "pmf", tst.betabinom, sst.betabinom, SK, (6, 2.3, 0.7)),
       ("nbinom.pmf", "pmf", tst.nbinom, sst.nbinom, SK, (3.5, 0.4)),
       ("nbinom.cdf", "cdf", tst.nbinom, sst.nbinom, SK, (3.5, 0.4)),
       ("gamma.cdf", "cdf", tst.gamma, sst.gamma, SX + 3, (2.5, 0.1, 1.2)),
       ("gamma.sf", "sf", tst.gamma, sst.gamma, SX + 3, (2.5,)),
       ("chi2.cdf", "cdf", tst.chi2, sst.chi2, SX + 3, (3.0,)),
       ("chi2.sf", "sf", tst.chi2, sst.chi2, SX + 3, (3.0,)),
       ("beta.cdf", "cdf", tst.beta, sst.beta, SX / 5 + 0.5, (2.5, 1.2)),
       ("beta.sf", "sf", tst.beta, sst.beta, SX / 5 + 0.5, (2.5, 1.2)),
       ("poisson.cdf", "cdf", tst.poisson, sst.poisson, SK, (2.2,))])


@pytest.mark.parametrize("name,fname,ours,ref,x,params", DISTS, ids=[d[0] for d in DISTS])
def test_stats_distributions_against_scipy(name, fname, ours, ref, x, params):
    got = np.asarray(getattr(ours, fname)(x, *params))
    want = getattr(ref, fname)(x, *params)
    fin = np.isfinite(want)
    assert np.array_equal(got[~fin], want[~fin])
    np.testing.assert_allclose(got[fin], want[fin], rtol=1e-12, atol=1e-300)


def test_stats_more_jit_grad_and_multinomial():
    f = T.jit(lambda x, a, k: (tst.truncnorm.logpdf(x, -1.5, 2.0), tst.gennorm.cdf(x, a),
                               tst.poisson.cdf(k, a)))
    got = f(SX, 1.7, SK)
    np.testing.assert_allclose(got[0], sst.truncnorm.logpdf(SX, -1.5, 2.0))
    np.testing.assert_allclose(got[1], sst.gennorm.cdf(SX, 1.7), rtol=1e-12)
    np.testing.assert_allclose(got[2], sst.poisson.cdf(SK, 1.7), rtol=1e-12)
    check_grads(lambda loc: tst.truncnorm.logcdf(0.5, -1.0, 2.0, loc), [np.array([0.1, 0.3])],
                order=1, modes=("fwd", "rev"))
    check_grads(lambda x: tst.gumbel_r.logsf(x, 0.3, 1.4), [SX], order=1, modes=("rev",))
    check_grads(lambda p: tst.nbinom.logpmf(3.0, 2.5, p), [np.array([0.3, 0.6])], order=1,
                modes=("rev",))
    xm = np.array([[1.0, 2.0, 3.0], [0.0, 6.0, 0.0], [1.0, 1.0, 1.0]])
    p = np.array([0.2, 0.5, 0.3])
    np.testing.assert_allclose(tst.multinomial.logpmf(xm, 6, p),
                               sst.multinomial.logpmf(xm, 6, p))


RANK_A = np.array([[3.0, 1.0, 3.0, 2.0], [5.0, 5.0, 5.0, 1.0], [0.0, 2.0, 0.0, 2.0]])


@pytest.mark.parametrize("method", ["average", "min", "max", "dense", "ordinal"])
def test_rankdata(method):
    np.testing.assert_array_equal(tst.rankdata(RANK_A, method), sst.rankdata(RANK_A, method))
    np.testing.assert_array_equal(tst.rankdata(RANK_A, method, axis=1),
                                  sst.rankdata(RANK_A, method, axis=1))


def test_mode_sem_and_jit():
    for axis in (0, 1, None):
        r, w = tst.mode(RANK_A, axis=axis), sst.mode(RANK_A, axis=axis)
        np.testing.assert_array_equal(r.mode, w.mode)
        np.testing.assert_array_equal(r.count, w.count)
    np.testing.assert_allclose(tst.sem(RANK_A), sst.sem(RANK_A))
    np.testing.assert_allclose(tst.sem(RANK_A, axis=None, ddof=0),
                               sst.sem(RANK_A, axis=None, ddof=0))
    f = T.jit(lambda a: (tst.rankdata(a, axis=1), tst.mode(a, axis=1).mode))
    ranks, modes = f(RANK_A)
    np.testing.assert_array_equal(ranks, sst.rankdata(RANK_A, axis=1))
    np.testing.assert_array_equal(modes, sst.mode(RANK_A, axis=1).mode)


KDE_DATA = RNG.normal(size=(2, 30))
KDE_W = RNG.uniform(size=30)
KDE_PTS = RNG.normal(size=(2, 5))


@pytest.mark.parametrize("bw", [None, "silverman", 0.4])
def test_gaussian_kde_against_scipy(bw):
    K, R = tst.gaussian_kde(KDE_DATA, bw, KDE_W), sst.gaussian_kde(KDE_DATA, bw, KDE_W)
    np.testing.assert_allclose(K(KDE_PTS), R(KDE_PTS), rtol=1e-12)
    np.testing.assert_allclose(K.logpdf(KDE_PTS), R.logpdf(KDE_PTS), rtol=1e-12)
    np.testing.assert_allclose(K.integrate_gaussian(np.zeros(2), np.eye(2)),
                               R.integrate_gaussian(np.zeros(2), np.eye(2)), rtol=1e-12)


def test_gaussian_kde_1d_jit_grad_resample():
    x = KDE_DATA[0]
    K, R = tst.gaussian_kde(x), sst.gaussian_kde(x)
    np.testing.assert_allclose(K.integrate_box_1d(-0.5, 1.0), R.integrate_box_1d(-0.5, 1.0),
                               rtol=1e-12)
    np.testing.assert_allclose(K.integrate_kde(K), R.integrate_kde(R), rtol=1e-12)
    f = T.jit(lambda data, pts: tst.gaussian_kde(data).logpdf(pts))
    np.testing.assert_allclose(f(x, KDE_PTS[0]), R.logpdf(KDE_PTS[0]), rtol=1e-12)
    check_grads(lambda p: tst.gaussian_kde(x).logpdf(p), [KDE_PTS[0]], order=1,
                modes=("fwd", "rev"))
    import transforms.random as trandom
    draws = np.asarray(K.resample(trandom.PRNGKey(0), (4000,)))
    assert draws.shape == (1, 4000)
    # the estimate's mean is the data mean; its variance adds the kernel's
    assert abs(draws.mean() - x.mean()) < 0.1
    np.testing.assert_allclose(draws.var(), x.var() + float(K.covariance[0, 0]), rtol=0.1)


def test_stats_more_against_jax():
    pytest.importorskip("jax")
    import jax.scipy.stats as jst
    x = SX.astype(np.float32)
    np.testing.assert_allclose(tst.truncnorm.logpdf(x, -1.5, 2.0),
                               jst.truncnorm.logpdf(x, -1.5, 2.0), rtol=1e-5)
    np.testing.assert_allclose(tst.gumbel_r.cdf(x), jst.gumbel_r.cdf(x), rtol=1e-5)
    # integer k only: JAX's nbinom gives a value at non-integer k where SciPy (and this
    # library) give -inf
    k = SK[:-1].astype(np.float32)
    np.testing.assert_allclose(tst.nbinom.logpmf(k, 3.5, 0.4), jst.nbinom.logpmf(k, 3.5, 0.4),
                               rtol=1e-5)
    np.testing.assert_allclose(tst.rankdata(RANK_A), jst.rankdata(RANK_A))


# -- interpolate, cluster -------------------------------------------------------------------

RGI_GRID = (np.array([0.0, 0.5, 1.2, 2.0]), np.array([-1.0, 0.0, 1.0, 3.0, 4.0]))
RGI_V = RNG.normal(size=(4, 5))
RGI_XI = np.array([[0.1, -0.5], [1.9, 3.9], [0.5, 0.0], [2.5, 1.0], [0.7, 2.2],
                   [1.0, -2.0]])


@pytest.mark.parametrize("method", ["linear", "nearest"])
@pytest.mark.parametrize("fill", [np.nan, None, 0.5], ids=["nan", "extrapolate", "0.5"])
def test_regular_grid_interpolator(method, fill):
    import scipy.interpolate as sint
    ours = interpolate.RegularGridInterpolator(RGI_GRID, RGI_V, method, fill_value=fill)
    ref = sint.RegularGridInterpolator(RGI_GRID, RGI_V, method, bounds_error=False,
                                       fill_value=fill)
    np.testing.assert_allclose(ours(RGI_XI), ref(RGI_XI), rtol=1e-12, atol=1e-14,
                               equal_nan=True)
    v3 = np.stack([RGI_V, -RGI_V], axis=-1)
    np.testing.assert_allclose(
        interpolate.RegularGridInterpolator(RGI_GRID, v3, method)(RGI_XI[None]),
        sint.RegularGridInterpolator(RGI_GRID, v3, method, bounds_error=False)(RGI_XI[None]),
        rtol=1e-12, atol=1e-14, equal_nan=True)


def test_regular_grid_interpolator_jit_grad_errors():
    f = T.jit(lambda v, x: interpolate.RegularGridInterpolator(RGI_GRID, v)(x))
    want = interpolate.RegularGridInterpolator(RGI_GRID, RGI_V)(RGI_XI)
    np.testing.assert_allclose(f(RGI_V, RGI_XI), want, rtol=1e-12, equal_nan=True)
    inside = np.array([[0.1, -0.5], [0.7, 2.2], [1.0, 0.4]])    # off the grid's kinks
    g = T.jit(lambda x: interpolate.RegularGridInterpolator(RGI_GRID, RGI_V, "nearest")(x))
    np.testing.assert_allclose(
        g(RGI_XI), interpolate.RegularGridInterpolator(RGI_GRID, RGI_V, "nearest")(RGI_XI),
        equal_nan=True)
    check_grads(lambda x: interpolate.RegularGridInterpolator(RGI_GRID, RGI_V)(x), [inside],
                order=1, modes=("fwd", "rev"))
    with pytest.raises(NotImplementedError, match="bounds_error"):
        interpolate.RegularGridInterpolator(RGI_GRID, RGI_V, bounds_error=True)
    with pytest.raises(ValueError, match="method"):
        interpolate.RegularGridInterpolator(RGI_GRID, RGI_V, "cubic")


def test_vq():
    import scipy.cluster.vq as svq
    obs, cb = RNG.normal(size=(7, 3)), RNG.normal(size=(4, 3))
    codes, dists = vq.vq(obs, cb)
    want_codes, want_dists = svq.vq(obs, cb)
    np.testing.assert_array_equal(codes, want_codes)
    np.testing.assert_allclose(dists, want_dists, rtol=1e-12)
    jc, jd = T.jit(vq.vq)(obs, cb)
    np.testing.assert_array_equal(jc, want_codes)
    c1, d1 = vq.vq(obs[:, 0], cb[:, 0])
    w1, wd1 = svq.vq(obs[:, 0], cb[:, 0])
    np.testing.assert_array_equal(c1, w1)
    np.testing.assert_allclose(d1, wd1, rtol=1e-12)
    with pytest.raises(ValueError, match="features"):
        vq.vq(obs, cb[:, :2])


# -- spectral -------------------------------------------------------------------------------

SPX = RNG.normal(size=(2, 300))
SPY = RNG.normal(size=(2, 300))
SPECTRAL = [
    ("stft", lambda m: m.stft(SPX, nperseg=64)),
    ("stft_even_psd", lambda m: m.stft(SPX, nperseg=50, noverlap=20, boundary="even",
                                       scaling="psd", fs=3.0)),
    ("stft_axis0", lambda m: m.stft(SPX.T, nperseg=64, axis=0)),
    ("welch", lambda m: m.welch(SPX, nperseg=64)),
    ("welch_median_linear", lambda m: m.welch(SPX, nperseg=64, average="median",
                                              detrend="linear", scaling="spectrum")),
    ("welch_odd_nfft", lambda m: m.welch(SPX, nperseg=45, nfft=51)),
    ("welch_axis0", lambda m: m.welch(SPX.T, nperseg=64, axis=0)),
    ("csd", lambda m: m.csd(SPX, SPY, nperseg=64)),
    ("csd_median", lambda m: m.csd(SPX, SPY, nperseg=64, average="median")),
    ("istft", lambda m: m.istft(sig_ref.stft(SPX, nperseg=64)[2], nperseg=64)),
    ("istft_overlap20", lambda m: m.istft(sig_ref.stft(SPX, nperseg=50, noverlap=20)[2],
                                          nperseg=50, noverlap=20)),
]


@pytest.mark.parametrize("name,call", SPECTRAL, ids=[c[0] for c in SPECTRAL])
def test_spectral_against_scipy(name, call):
    for got, want in zip(call(tsig), call(sig_ref)):
        assert np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_spectral_jit_grad_roundtrip():
    f = T.jit(lambda x: tsig.welch(x, nperseg=64)[1])
    np.testing.assert_allclose(f(SPX), sig_ref.welch(SPX, nperseg=64)[1], rtol=1e-10)
    _, x = tsig.istft(tsig.stft(SPX[0], nperseg=64)[2], nperseg=64)
    np.testing.assert_allclose(np.asarray(x)[:300], SPX[0], atol=1e-12)
    check_grads(lambda x: tsig.welch(x, nperseg=16)[1], [SPX[0, :40]], order=1,
                modes=("rev",))
