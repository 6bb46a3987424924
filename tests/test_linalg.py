"""tnp.linalg and transforms.scipy.linalg: values against NumPy/SciPy (float64 and float32,
batched), finite-difference derivatives (first and second order), vmap against a loop, and
jit against eager for every decomposition and solver."""
import numpy as np
import pytest
import scipy.linalg as sl

import transforms as T
import transforms.numpy as tnp
from transforms import lax
from transforms.scipy import linalg as tsl
from transforms.test_util import check_grads

rng = np.random.default_rng(5)
A = rng.normal(size=(4, 4)) + 3 * np.eye(4)
AB = rng.normal(size=(3, 4, 4)) + 3 * np.eye(4)
SPD = A @ A.T + np.eye(4)
SPDB = AB @ np.swapaxes(AB, -1, -2) + np.eye(4)
RECT = rng.normal(size=(5, 3))
WIDE = rng.normal(size=(3, 5))
B = rng.normal(size=(4, 2))
BB = rng.normal(size=(3, 4, 2))
V = rng.normal(size=4)
UPPER = np.triu(SPD)


def _sign_fixed(u, vt=None):
    """Singular/eigen vectors are defined up to sign: fix the largest entry of each column."""
    u = np.asarray(u)
    s = np.sign(u[..., np.argmax(np.abs(u), axis=-2)[..., None, :].clip(0), ...] if False
                else np.take_along_axis(u, np.argmax(np.abs(u), axis=-2)[..., None, :], -2))
    return u * s


# (id, fn(m) using module m = numpy(.linalg) / tnp, args, differentiable positions)
CASES = [
    ("inv", lambda m, a: m.linalg.inv(a), [A], (0,)),
    ("inv_batch", lambda m, a: m.linalg.inv(a), [AB], (0,)),
    ("solve", lambda m, a, b: m.linalg.solve(a, b), [A, B], (0, 1)),
    ("solve_vec", lambda m, a, b: m.linalg.solve(a, b), [A, V], (0, 1)),
    ("solve_batch", lambda m, a, b: m.linalg.solve(a, b), [AB, BB], (0, 1)),
    ("det", lambda m, a: m.linalg.det(a), [A], (0,)),
    ("det_batch", lambda m, a: m.linalg.det(a), [AB], (0,)),
    ("slogdet", lambda m, a: m.linalg.slogdet(a)[1], [AB], (0,)),
    ("cholesky", lambda m, a: m.linalg.cholesky(a), [SPD], (0,)),
    ("cholesky_batch", lambda m, a: m.linalg.cholesky(a), [SPDB], (0,)),
    ("eigvalsh", lambda m, a: m.linalg.eigvalsh(a), [SPDB], (0,)),
    ("eigh_vectors", lambda m, a: _sign_fixed(m.linalg.eigh(a)[1]) if m is np else
     m.linalg.eigh(a)[1], [SPD], ()),
    ("qr_r", lambda m, a: m.linalg.qr(a, mode="r"), [RECT], ()),
    ("svdvals", lambda m, a: m.linalg.svd(a, compute_uv=False), [RECT], (0,)),
    ("svdvals_wide", lambda m, a: m.linalg.svd(a, compute_uv=False), [WIDE], (0,)),
    ("pinv", lambda m, a: m.linalg.pinv(a), [RECT], (0,)),
    ("lstsq", lambda m, a, b: m.linalg.lstsq(a, b, rcond=None)[0], [RECT, RECT[:, :2]], (0, 1)),
    ("matrix_power", lambda m, a: m.linalg.matrix_power(a, 3), [A], (0,)),
    ("matrix_power_neg", lambda m, a: m.linalg.matrix_power(a, -2), [A], (0,)),
    ("matrix_rank", lambda m, a: m.linalg.matrix_rank(a), [RECT @ RECT.T], ()),
    ("norm_2", lambda m, a: m.linalg.norm(a, 2), [RECT], (0,)),
    ("norm_nuc", lambda m, a: m.linalg.norm(a, "nuc"), [RECT], (0,)),
    ("cond", lambda m, a: m.linalg.cond(a), [A], (0,)),
]


@pytest.mark.parametrize("name,fn,args,diff", CASES, ids=[c[0] for c in CASES])
def test_values_match_numpy(name, fn, args, diff):
    got = fn(tnp, *args)
    want = fn(np, *args)
    if name == "eigh_vectors":
        got = _sign_fixed(got)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)
    got32 = fn(tnp, *[a.astype(np.float32) for a in args])
    if name == "eigh_vectors":
        got32 = _sign_fixed(got32)
    if np.issubdtype(np.asarray(want).dtype, np.floating):
        assert np.asarray(got32).dtype == np.float32
    np.testing.assert_allclose(got32, want, rtol=2e-3, atol=2e-4)


@pytest.mark.parametrize("name,fn,args,diff", CASES, ids=[c[0] for c in CASES])
def test_jit_matches_eager(name, fn, args, diff):
    want = fn(tnp, *args)
    got = T.jit(lambda *a: fn(tnp, *a))(*args)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)


GRAD = [c for c in CASES if c[3]]


@pytest.mark.parametrize("name,fn,args,diff", GRAD, ids=[c[0] for c in GRAD])
def test_derivatives(name, fn, args, diff):
    def f(*d):
        full = list(args)
        for i, v in zip(diff, d):
            full[i] = v
        return fn(tnp, *full)
    check_grads(f, [args[i] for i in diff], order=2, modes=("fwd", "rev"))


def test_decomposition_primitives_differentiate():
    check_grads(lambda a: lax.linalg.eigh(a)[0], [SPD], order=2)
    check_grads(lambda a: lax.linalg.qr(a, full_matrices=False), [RECT], order=2)
    check_grads(lambda a: lax.linalg.svd(a, full_matrices=False), [RECT], order=1)
    check_grads(lambda a: lax.linalg.svd(a, full_matrices=False), [WIDE], order=1)
    for left in (True, False):
        for lower in (True, False):
            for trans in (True, False):
                tri = np.tril(SPD) if lower else np.triu(SPD)
                rhs = B if left else B.T
                check_grads(lambda a, b: lax.linalg.triangular_solve(
                    a, b, left_side=left, lower=lower, transpose_a=trans), [tri, rhs], order=2)


def test_vmap_matches_loop():
    f = lambda a, b: tnp.linalg.solve(a, b) + tnp.linalg.det(a)[..., None, None]  # noqa: E731
    got = T.vmap(f)(AB, BB)
    want = np.stack([f(AB[i], BB[i]) for i in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    got = T.vmap(lambda a: tnp.linalg.cholesky(a), in_axes=2, out_axes=1)(
        np.moveaxis(SPDB, 0, 2))
    np.testing.assert_allclose(np.moveaxis(got, 1, 0), np.linalg.cholesky(SPDB), rtol=1e-12)
    got = T.vmap(lambda a: tnp.linalg.svd(a, compute_uv=False))(np.stack([RECT, 2 * RECT]))
    np.testing.assert_allclose(got, np.linalg.svd(np.stack([RECT, 2 * RECT]), compute_uv=False))


def test_triangular_solve_all_variants_under_jit():
    L = np.linalg.cholesky(SPDB)
    for left in (True, False):
        for lower in (True, False):
            for trans in (True, False):
                for unit in (True, False):
                    a = L if lower else np.swapaxes(L, -1, -2)
                    rhs = BB if left else np.swapaxes(BB, -1, -2)
                    f = lambda a, b: lax.linalg.triangular_solve(  # noqa: E731
                        a, b, left_side=left, lower=lower, transpose_a=trans,
                        unit_diagonal=unit)
                    np.testing.assert_allclose(T.jit(f)(a, rhs), f(a, rhs), rtol=1e-10)


def test_singular_and_non_positive_definite_raise_like_numpy():
    with pytest.raises(np.linalg.LinAlgError):
        tnp.linalg.inv(np.zeros((3, 3)))
    with pytest.raises(np.linalg.LinAlgError):
        tnp.linalg.cholesky(-np.eye(2))
    assert tnp.linalg.det(np.zeros((3, 3))) == 0.0
    with pytest.raises(TypeError, match="complex"):
        tnp.linalg.inv(np.eye(2) * 1j)


def test_empty_batches():
    empty = np.zeros((0, 3, 3))
    assert tnp.linalg.inv(empty).shape == (0, 3, 3)
    assert tnp.linalg.cholesky(empty).shape == (0, 3, 3)
    assert T.jit(tnp.linalg.det)(empty).shape == (0,)
    assert T.jit(tnp.linalg.cholesky)(empty).shape == (0, 3, 3)
    assert T.jit(tnp.linalg.inv)(empty).shape == (0, 3, 3)


def test_scipy_linalg_matches_scipy():
    np.testing.assert_allclose(tsl.solve_triangular(UPPER, B), sl.solve_triangular(UPPER, B))
    np.testing.assert_allclose(tsl.solve_triangular(UPPER, B, trans=1),
                               sl.solve_triangular(UPPER, B, trans=1))
    np.testing.assert_allclose(tsl.cho_solve(tsl.cho_factor(SPD), B),
                               sl.cho_solve(sl.cho_factor(SPD), B))
    np.testing.assert_allclose(tsl.cho_solve(tsl.cho_factor(SPD, lower=True), V),
                               sl.cho_solve(sl.cho_factor(SPD, lower=True), V))
    np.testing.assert_allclose(tsl.cholesky(SPD), sl.cholesky(SPD))
    for got, want in zip(tsl.lu(A), sl.lu(A)):
        np.testing.assert_allclose(got, want, atol=1e-12)
    lu_piv = tsl.lu_factor(A)
    np.testing.assert_allclose(tsl.lu_solve(lu_piv, B), sl.lu_solve(sl.lu_factor(A), B))
    np.testing.assert_allclose(tsl.lu_solve(lu_piv, B, trans=1),
                               sl.lu_solve(sl.lu_factor(A), B, trans=1))
    for scale in (0.01, 1.0, 30.0):
        np.testing.assert_allclose(tsl.expm(scale * A / 4), sl.expm(scale * A / 4),
                                   rtol=1e-10)
    np.testing.assert_allclose(tsl.block_diag(A[:2, :2], RECT), sl.block_diag(A[:2, :2], RECT))
    np.testing.assert_allclose(tsl.solve(SPD, B, assume_a="pos"), sl.solve(SPD, B))


def test_scipy_linalg_under_jit_and_grad():
    np.testing.assert_allclose(T.jit(tsl.expm)(A / 4), sl.expm(A / 4), rtol=1e-10)
    np.testing.assert_allclose(T.jit(lambda a: tsl.lu(a)[1])(A), sl.lu(A)[1], atol=1e-12)
    check_grads(tsl.expm, [A / 8], order=1)
    check_grads(lambda a, b: tsl.cho_solve(tsl.cho_factor(a), b), [SPD, B], order=1)
