"""Matrix decompositions and solves (`jax.lax.linalg`): cholesky, triangular_solve, solve,
slogdet, eigh, qr, svd, lu — each over the last two axes with any leading batch axes.

Real floating-point matrices (float32/float64). Each primitive has a NumPy/SciPy impl, a
shape rule, a JVP from matrix calculus (written with these primitives and `dot_general`,
so derivatives are again differentiable, batched and compiled), transposes for the operands
it is linear in, and a batching rule (the batch axis becomes a leading axis). Derivations,
for A = the operand and dA its tangent:

* cholesky  A = L Lᵀ:  dL = L Φ(L⁻¹ dA L⁻ᵀ), Φ = lower triangle with the diagonal halved
  (dA symmetrised first, as the factorisation only reads one triangle).
* solve  x = A⁻¹ b:  dx = A⁻¹ (db − dA x); the transpose in b is a solve with Aᵀ.
* triangular solve: the same with the triangle.
* slogdet:  d log|det A| = tr(A⁻¹ dA); the sign is piecewise constant.
* eigh  A = V diag(w) Vᵀ:  dw = diag(Vᵀ dA V),  dV = V (F ∘ (Vᵀ dA V)), F_ij = 1/(w_j − w_i)
  off the diagonal (repeated eigenvalues make F infinite: the eigenvectors' derivative does
  not exist there, as in JAX).
* qr  A = Q R (reduced, m ≥ n):  with C = Qᵀ dA R⁻¹, ω = C_lower − C_lowerᵀ (strict),
  dQ = Q ω + (I − Q Qᵀ) dA R⁻¹,  dR = (Qᵀ dA − ω R).
* svd  A = U diag(s) Vᵀ (reduced):  ds = diag(Uᵀ dA V); dU, dV from the standard formula with
  F_ij = 1/(s_j² − s_i²) and the projections onto the complements for non-square A.
"""
from __future__ import annotations

import numpy as np

from ..core import Primitive, ShapedArray, get_aval
from ..interpreters import batching as B
from ._util import as_array, is_undefined


# ---------------------------------------------------------------------------------------------
# helpers over the last two axes
# ---------------------------------------------------------------------------------------------

def _E():
    from . import elementwise
    return elementwise


def _S():
    from . import shape
    return shape


def _mT(x):
    nd = get_aval(x).ndim
    return _S().transpose(x, tuple(range(nd - 2)) + (nd - 1, nd - 2))


def _mm(a, b):
    """Batched matrix product over the last two axes (equal leading axes)."""
    from .linalg import dot_general
    nd = get_aval(a).ndim
    batch = tuple(range(nd - 2))
    return dot_general(a, b, (((nd - 1,), (nd - 2,)), (batch, batch)))


def _eye_like(x, n=None):
    a = get_aval(x)
    n = a.shape[-1] if n is None else n
    return np.broadcast_to(np.eye(n, dtype=a.dtype), a.shape[:-2] + (n, n))


def _tril(x, k=0):
    a = get_aval(x)
    mask = np.tri(a.shape[-2], a.shape[-1], k, dtype=bool)
    return _E().select(np.broadcast_to(mask, a.shape), x, np.zeros(a.shape, a.dtype))


def _diag_part(x):
    """The diagonals of square matrices in the last two axes: shape (..., n)."""
    a = get_aval(x)
    eye = np.broadcast_to(np.eye(a.shape[-1], dtype=a.dtype), a.shape)
    from .reductions import reduce_sum
    return reduce_sum(_E().mul(x, eye), (a.ndim - 1,))


def _diag_embed(d, n):
    """(..., n) -> (..., n, n) diagonal matrices."""
    a = get_aval(d)
    eye = np.broadcast_to(np.eye(n, dtype=a.dtype), a.shape + (n,))
    full = _S().broadcast_in_dim(d, a.shape + (n,), tuple(range(a.ndim)))
    return _E().mul(full, eye)


def _zeros(aval):
    return np.zeros(aval.shape, aval.dtype)


def _tangent(t, aval):
    return _zeros(aval) if t is None else t


def _check_square(name, aval):
    if aval.ndim < 2 or aval.shape[-1] != aval.shape[-2]:
        raise ValueError(f"{name}: expected square matrices in the last two axes, got shape "
                         f"{aval.shape}")


def _check_float(name, aval):
    if aval.dtype not in (np.float32, np.float64):
        if np.issubdtype(aval.dtype, np.complexfloating):
            raise TypeError(f"{name}: complex matrices are not supported yet")
        raise TypeError(f"{name}: expected float32 or float64 matrices, got {aval.dtype}")


def _front_batch(args, dims):
    """Operands with the batch axis moved to the front (broadcast where unbatched)."""
    size = B.batch_size(args, dims)
    return [B.bdim_at_front(x, d, size) for x, d in zip(args, dims)]


def _batch_unary(prim):
    def rule(args, dims, **params):
        x, = _front_batch(args, dims)
        out = prim.bind(x, **params)
        return (out, [0] * len(out)) if prim.multiple_results else (out, 0)
    prim.def_batch(rule)


# ---------------------------------------------------------------------------------------------
# cholesky
# ---------------------------------------------------------------------------------------------

cholesky_p = Primitive("cholesky")


@cholesky_p.def_impl
def _cholesky_impl(a):
    return np.linalg.cholesky(np.asarray(a))


@cholesky_p.def_abstract_eval
def _cholesky_abstract(a):
    _check_square("cholesky", a)
    _check_float("cholesky", a)
    return ShapedArray(a.shape, a.dtype)


@cholesky_p.def_jvp
def _cholesky_jvp(primals, tangents):
    a, = primals
    L = cholesky_p.bind(a)
    if tangents[0] is None:
        return L, None
    E = _E()
    da = E.mul(E.add(tangents[0], _mT(tangents[0])), np.asarray(0.5, get_aval(a).dtype))
    # L⁻¹ dA L⁻ᵀ by two triangular solves
    tmp = triangular_solve(L, da, left_side=True, lower=True)
    phi = triangular_solve(L, tmp, left_side=False, lower=True, transpose_a=True)
    n = get_aval(a).shape[-1]
    half = np.where(np.eye(n, dtype=bool), 0.5, 1.0).astype(get_aval(a).dtype)
    phi = E.mul(_tril(phi), np.broadcast_to(half, get_aval(phi).shape))
    return L, _mm(L, phi)


_batch_unary(cholesky_p)


def cholesky(x, symmetrize_input=True):
    """`jax.lax.linalg.cholesky`: the lower Cholesky factor (reads the lower triangle; with
    `symmetrize_input` the input is first replaced by (x + xᵀ)/2, as JAX)."""
    x = as_array(x)
    if symmetrize_input:
        E = _E()
        x = E.mul(E.add(x, _mT(x)), np.asarray(0.5, get_aval(x).dtype))
    return cholesky_p.bind(x)


# ---------------------------------------------------------------------------------------------
# triangular_solve
# ---------------------------------------------------------------------------------------------

triangular_solve_p = Primitive("triangular_solve")


def _tri_solve_np(a, b, left_side, lower, transpose_a, unit_diagonal):
    import scipy.linalg
    a, b = np.asarray(a), np.asarray(b)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    out = np.empty(b.shape, np.result_type(a.dtype, b.dtype))
    for idx in np.ndindex(*batch):
        ai, bi = a[idx], b[idx]
        if left_side:
            out[idx] = scipy.linalg.solve_triangular(ai, bi, trans=1 if transpose_a else 0,
                                                     lower=lower, unit_diagonal=unit_diagonal,
                                                     check_finite=False)
        else:
            # x op(a) = b  <=>  op(a)ᵀ xᵀ = bᵀ
            out[idx] = scipy.linalg.solve_triangular(
                ai, bi.T, trans=0 if transpose_a else 1, lower=lower,
                unit_diagonal=unit_diagonal, check_finite=False).T
    return out


triangular_solve_p.def_impl(
    lambda a, b, *, left_side, lower, transpose_a, unit_diagonal:
    _tri_solve_np(a, b, left_side, lower, transpose_a, unit_diagonal))


@triangular_solve_p.def_abstract_eval
def _tri_solve_abstract(a, b, *, left_side, lower, transpose_a, unit_diagonal):
    _check_square("triangular_solve", a)
    _check_float("triangular_solve", a)
    if a.dtype != b.dtype:
        raise TypeError(f"triangular_solve: dtypes differ ({a.dtype}, {b.dtype})")
    n = a.shape[-1]
    k = b.shape[-2] if left_side else b.shape[-1]
    if b.ndim < 2 or k != n or a.shape[:-2] != b.shape[:-2]:
        raise ValueError(f"triangular_solve: incompatible shapes {a.shape} and {b.shape} "
                         f"(left_side={left_side})")
    return ShapedArray(b.shape, b.dtype)


def _op(a, transpose_a):
    return _mT(a) if transpose_a else a


@triangular_solve_p.def_jvp
def _tri_solve_jvp(primals, tangents, **p):
    a, b = primals
    da, db = tangents
    x = triangular_solve_p.bind(a, b, **p)
    E = _E()
    dx = None
    if db is not None:
        dx = triangular_solve_p.bind(a, db, **p)
    if da is not None:
        # only the referenced triangle of `a` matters
        da = _tril(da, -1 if p["unit_diagonal"] else 0) if p["lower"] else \
            _mT(_tril(_mT(da), -1 if p["unit_diagonal"] else 0))
        opda = _op(da, p["transpose_a"])
        rhs = _mm(opda, x) if p["left_side"] else _mm(x, opda)
        term = E.neg(triangular_solve_p.bind(a, rhs, **p))
        dx = term if dx is None else E.add(dx, term)
    return x, dx


@triangular_solve_p.def_transpose
def _tri_solve_transpose(ct, a, b, *, left_side, lower, transpose_a, unit_diagonal):
    if is_undefined(a):
        raise TypeError("triangular_solve is not linear in its matrix operand")
    ctb = triangular_solve_p.bind(a, ct, left_side=left_side, lower=lower,
                                  transpose_a=not transpose_a, unit_diagonal=unit_diagonal)
    return [None, ctb]


@triangular_solve_p.def_batch
def _tri_solve_batch(args, dims, **p):
    a, b = _front_batch(args, dims)
    return triangular_solve_p.bind(a, b, **p), 0


def triangular_solve(a, b, left_side=False, lower=False, transpose_a=False, conjugate_a=False,
                     unit_diagonal=False):
    """`jax.lax.linalg.triangular_solve`: x with op(a) x = b (`left_side`) or x op(a) = b,
    op(a) = aᵀ when `transpose_a`; only the `lower` (or upper) triangle of `a` is read."""
    a, b = as_array(a), as_array(b)
    aa, ba = get_aval(a), get_aval(b)
    batch = np.broadcast_shapes(aa.shape[:-2], ba.shape[:-2])
    S = _S()
    if aa.shape[:-2] != batch:
        a = S.broadcast_to(a, batch + aa.shape[-2:])
    if ba.shape[:-2] != batch:
        b = S.broadcast_to(b, batch + ba.shape[-2:])
    return triangular_solve_p.bind(a, b, left_side=bool(left_side), lower=bool(lower),
                                   transpose_a=bool(transpose_a),
                                   unit_diagonal=bool(unit_diagonal))


# ---------------------------------------------------------------------------------------------
# solve (general square systems, LU inside)
# ---------------------------------------------------------------------------------------------

solve_p = Primitive("linalg_solve")


@solve_p.def_impl
def _solve_impl(a, b):
    return np.linalg.solve(np.asarray(a), np.asarray(b))


@solve_p.def_abstract_eval
def _solve_abstract(a, b):
    _check_square("solve", a)
    _check_float("solve", a)
    if a.dtype != b.dtype:
        raise TypeError(f"solve: dtypes differ ({a.dtype}, {b.dtype})")
    if b.ndim < 2 or b.shape[-2] != a.shape[-1] or b.shape[:-2] != a.shape[:-2]:
        raise ValueError(f"solve: incompatible shapes {a.shape} and {b.shape}")
    return ShapedArray(b.shape, b.dtype)


@solve_p.def_jvp
def _solve_jvp(primals, tangents):
    a, b = primals
    da, db = tangents
    x = solve_p.bind(a, b)
    rhs = None
    if db is not None:
        rhs = db
    if da is not None:
        t = _E().neg(_mm(da, x))
        rhs = t if rhs is None else _E().add(rhs, t)
    return x, (None if rhs is None else solve_p.bind(a, rhs))


@solve_p.def_transpose
def _solve_transpose(ct, a, b):
    if is_undefined(a):
        raise TypeError("solve is not linear in its matrix operand")
    return [None, solve_p.bind(_mT(a), ct)]


@solve_p.def_batch
def _solve_batch(args, dims):
    a, b = _front_batch(args, dims)
    return solve_p.bind(a, b), 0


def solve(a, b):
    """x with a x = b for square `a` (..., n, n) and `b` (..., n, k) of the same batch."""
    a, b = as_array(a), as_array(b)
    return solve_p.bind(a, b)


# ---------------------------------------------------------------------------------------------
# slogdet
# ---------------------------------------------------------------------------------------------

slogdet_p = Primitive("slogdet", multiple_results=True)


@slogdet_p.def_impl
def _slogdet_impl(a):
    s, l = np.linalg.slogdet(np.asarray(a))
    dt = np.asarray(a).dtype
    return [np.asarray(s, dt), np.asarray(l, dt)]


@slogdet_p.def_abstract_eval
def _slogdet_abstract(a):
    _check_square("slogdet", a)
    _check_float("slogdet", a)
    out = ShapedArray(a.shape[:-2], a.dtype)
    return [out, out]


@slogdet_p.def_jvp
def _slogdet_jvp(primals, tangents):
    a, = primals
    sign, logdet = slogdet_p.bind(a)
    if tangents[0] is None:
        return [sign, logdet], [None, None]
    # tr(A⁻¹ dA)
    dl = _trace(solve_p.bind(a, tangents[0]))
    return [sign, logdet], [None, dl]


def _trace(x):
    from .reductions import reduce_sum
    return reduce_sum(_diag_part(x), (get_aval(x).ndim - 2,))


_batch_unary(slogdet_p)


# ---------------------------------------------------------------------------------------------
# eigh
# ---------------------------------------------------------------------------------------------

eigh_p = Primitive("eigh", multiple_results=True)


@eigh_p.def_impl
def _eigh_impl(a, *, lower):
    w, v = np.linalg.eigh(np.asarray(a), UPLO="L" if lower else "U")
    return [v, w]


@eigh_p.def_abstract_eval
def _eigh_abstract(a, *, lower):
    _check_square("eigh", a)
    _check_float("eigh", a)
    return [ShapedArray(a.shape, a.dtype), ShapedArray(a.shape[:-1], a.dtype)]


@eigh_p.def_jvp
def _eigh_jvp(primals, tangents, *, lower):
    a, = primals
    v, w = eigh_p.bind(a, lower=lower)
    if tangents[0] is None:
        return [v, w], [None, None]
    E = _E()
    da = tangents[0]
    da = E.mul(E.add(da, _mT(da)), np.asarray(0.5, get_aval(a).dtype))
    vt_da_v = _mm(_mT(v), _mm(da, v))
    dw = _diag_part(vt_da_v)
    n = get_aval(a).shape[-1]
    wa = get_aval(w)
    # F_ij = 1 / (w_j - w_i) off the diagonal, 0 on it
    wj = _S().broadcast_in_dim(w, wa.shape + (n,), tuple(range(wa.ndim - 1)) + (wa.ndim,))
    wi = _S().broadcast_in_dim(w, wa.shape + (n,), tuple(range(wa.ndim)))
    diff = E.sub(wj, wi)
    eye = np.broadcast_to(np.eye(n, dtype=bool), wa.shape + (n,))
    one = np.ones(wa.shape + (n,), wa.dtype)
    F = E.select(eye, np.zeros(wa.shape + (n,), wa.dtype), E.div(one, E.select(eye, one, diff)))
    dv = _mm(v, E.mul(F, vt_da_v))
    return [v, w], [dv, dw]


_batch_unary(eigh_p)


def eigh(x, lower=True, symmetrize_input=True):
    """`jax.lax.linalg.eigh`: `(v, w)` with ascending eigenvalues `w`."""
    x = as_array(x)
    if symmetrize_input:
        E = _E()
        x = E.mul(E.add(x, _mT(x)), np.asarray(0.5, get_aval(x).dtype))
    return tuple(eigh_p.bind(x, lower=bool(lower)))


# ---------------------------------------------------------------------------------------------
# qr (reduced)
# ---------------------------------------------------------------------------------------------

qr_p = Primitive("qr", multiple_results=True)


@qr_p.def_impl
def _qr_impl(a, *, full_matrices):
    q, r = np.linalg.qr(np.asarray(a), mode="complete" if full_matrices else "reduced")
    return [q, r]


@qr_p.def_abstract_eval
def _qr_abstract(a, *, full_matrices):
    _check_float("qr", a)
    if a.ndim < 2:
        raise ValueError(f"qr: expected matrices, got shape {a.shape}")
    m, n = a.shape[-2:]
    k = m if full_matrices else min(m, n)
    return [ShapedArray(a.shape[:-2] + (m, k), a.dtype),
            ShapedArray(a.shape[:-2] + (k, n), a.dtype)]


@qr_p.def_jvp
def _qr_jvp(primals, tangents, *, full_matrices):
    a, = primals
    q, r = qr_p.bind(a, full_matrices=full_matrices)
    if tangents[0] is None:
        return [q, r], [None, None]
    m, n = get_aval(a).shape[-2:]
    if m < n or (full_matrices and m > n):
        raise NotImplementedError("the derivative of qr is implemented for reduced "
                                  "decompositions with rows >= columns (as JAX)")
    E = _E()
    da = tangents[0]
    # dA R⁻¹ (R upper triangular): x R = dA
    da_rinv = triangular_solve(r, da, left_side=False, lower=False)
    c = _mm(_mT(q), da_rinv)
    low = _tril(c, -1)
    omega = E.sub(low, _mT(low))
    dq = E.add(_mm(q, omega), E.sub(da_rinv, _mm(q, c)))
    dr = _mm(E.sub(c, omega), r)
    return [q, r], [dq, dr]


_batch_unary(qr_p)


def qr(x, full_matrices=True):
    """`jax.lax.linalg.qr`: `(q, r)`."""
    return tuple(qr_p.bind(as_array(x), full_matrices=bool(full_matrices)))


# ---------------------------------------------------------------------------------------------
# svd (reduced)
# ---------------------------------------------------------------------------------------------

svd_p = Primitive("svd", multiple_results=True)


@svd_p.def_impl
def _svd_impl(a, *, full_matrices, compute_uv):
    a = np.asarray(a)
    if not compute_uv:
        return [np.linalg.svd(a, compute_uv=False)]
    u, s, vt = np.linalg.svd(a, full_matrices=full_matrices)
    return [s, u, vt]


@svd_p.def_abstract_eval
def _svd_abstract(a, *, full_matrices, compute_uv):
    _check_float("svd", a)
    if a.ndim < 2:
        raise ValueError(f"svd: expected matrices, got shape {a.shape}")
    m, n = a.shape[-2:]
    k = min(m, n)
    s = ShapedArray(a.shape[:-2] + (k,), a.dtype)
    if not compute_uv:
        return [s]
    mu, nv = (m, n) if full_matrices else (k, k)
    return [s, ShapedArray(a.shape[:-2] + (m, mu), a.dtype),
            ShapedArray(a.shape[:-2] + (nv, n), a.dtype)]


@svd_p.def_jvp
def _svd_jvp(primals, tangents, *, full_matrices, compute_uv):
    a, = primals
    if full_matrices and compute_uv:
        raise NotImplementedError("the derivative of svd with full_matrices=True is not "
                                  "implemented (as JAX): use full_matrices=False")
    s, u, vt = svd_p.bind(a, full_matrices=False, compute_uv=True)
    outs = [s, u, vt] if compute_uv else [s]
    if tangents[0] is None:
        return outs, [None] * len(outs)
    E = _E()
    da = tangents[0]
    v = _mT(vt)
    ut_da_v = _mm(_mT(u), _mm(da, v))
    ds = _diag_part(ut_da_v)
    if not compute_uv:
        return outs, [ds]
    sa = get_aval(s)
    k = sa.shape[-1]
    m, n = get_aval(a).shape[-2:]
    sj = _S().broadcast_in_dim(s, sa.shape + (k,), tuple(range(sa.ndim - 1)) + (sa.ndim,))
    si = _S().broadcast_in_dim(s, sa.shape + (k,), tuple(range(sa.ndim)))
    eye = np.broadcast_to(np.eye(k, dtype=bool), sa.shape + (k,))
    one = np.ones(sa.shape + (k,), sa.dtype)
    zero = np.zeros(sa.shape + (k,), sa.dtype)
    # F_ij = 1 / (s_j² - s_i²) off the diagonal
    denom = E.sub(E.mul(sj, sj), E.mul(si, si))
    F = E.select(eye, zero, E.div(one, E.select(eye, one, denom)))
    s_diag = _diag_embed(s, k)
    # dU = U (F ∘ (P S + S Pᵀ)) + (I - U Uᵀ) dA V S⁻¹, P = Uᵀ dA V
    du = _mm(u, E.mul(F, E.add(_mm(ut_da_v, s_diag), _mm(s_diag, _mT(ut_da_v)))))
    dv = _mm(v, E.mul(F, E.add(_mm(s_diag, ut_da_v), _mm(_mT(ut_da_v), s_diag))))
    s_inv = _diag_embed(E.div(np.ones(sa.shape, sa.dtype), s), k)
    if m > k:
        proj = E.sub(_mm(da, v), _mm(u, ut_da_v))
        du = E.add(du, _mm(proj, s_inv))
    if n > k:
        proj = E.sub(_mm(_mT(da), u), _mm(v, _mT(ut_da_v)))
        dv = E.add(dv, _mm(proj, s_inv))
    return outs, [ds, du, _mT(dv)]


_batch_unary(svd_p)


def svd(x, full_matrices=True, compute_uv=True):
    """`jax.lax.linalg.svd`: `(u, s, vh)`, or `s` without `compute_uv`."""
    out = svd_p.bind(as_array(x), full_matrices=bool(full_matrices),
                     compute_uv=bool(compute_uv))
    if not compute_uv:
        return out[0]
    s, u, vt = out
    return u, s, vt


# ---------------------------------------------------------------------------------------------
# lu (partial pivoting; values only: its derivative is not implemented)
# ---------------------------------------------------------------------------------------------

lu_p = Primitive("lu", multiple_results=True)


@lu_p.def_impl
def _lu_impl(a):
    import scipy.linalg
    a = np.asarray(a)
    batch = a.shape[:-2]
    lu = np.empty(a.shape, a.dtype)
    piv = np.empty(batch + (min(a.shape[-2:]),), np.int32)
    for idx in np.ndindex(*batch):
        lu[idx], piv[idx] = scipy.linalg.lu_factor(a[idx], check_finite=False)
    return [lu, piv]


@lu_p.def_abstract_eval
def _lu_abstract(a):
    _check_square("lu", a)
    _check_float("lu", a)
    return [ShapedArray(a.shape, a.dtype), ShapedArray(a.shape[:-1], np.dtype(np.int32))]


@lu_p.def_jvp
def _lu_jvp(primals, tangents):
    if tangents[0] is not None:
        raise NotImplementedError("the derivative of lu is not implemented: differentiate "
                                  "solve/det/inv (which have their own rules) instead")
    return lu_p.bind(primals[0]), [None, None]


_batch_unary(lu_p)


def lu_factor(a):
    """LU with partial pivoting as LAPACK's getrf: `(lu, pivots)` (0-based row swaps)."""
    return tuple(lu_p.bind(as_array(a)))
