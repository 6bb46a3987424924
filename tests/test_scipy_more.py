"""transforms.scipy's optimize, sparse.linalg, ndimage, integrate, fft, interpolate,
cluster modules and the later special/linalg/signal/stats additions: values against SciPy,
jit against eager, finite-difference derivatives (float64), and against JAX when it is
importable. Shapes are small and jitted functions are shared to keep the file fast."""
import numpy as np
import pytest
import scipy.optimize as so

import transforms as T
import transforms.numpy as tnp
from transforms.scipy import optimize as topt
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


def test_minimize_bfgs_jit_equals_eager_and_batches():
    eager = topt.minimize(quad, np.ones(3), (QA, QC), method="bfgs")
    jitted = _bfgs_jit(np.ones(3), QC)
    np.testing.assert_allclose(jitted.x, eager.x, rtol=1e-12)
    assert int(jitted.nit) == int(eager.nit)
    cs = RNG.normal(size=(2, 3))
    xs = T.vmap(lambda c: topt.minimize(quad, np.zeros(3), (QA, c), method="BFGS").x)(cs)
    np.testing.assert_allclose(xs, np.linalg.solve(QA, cs.T).T, rtol=1e-5, atol=1e-6)


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
_solve_jit = {name: T.jit(lambda A, b, f=f: f(A, b, tol=1e-10)[0])
              for name, f in (("cg", tsl.cg), ("bicgstab", tsl.bicgstab),
                              ("gmres", tsl.gmres))}


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
