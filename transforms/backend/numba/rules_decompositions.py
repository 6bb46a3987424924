"""Lowerings of the matrix decompositions (`lax/decompositions.py`): a loop over the leading
batch axes around Numba's own `np.linalg` (LAPACK) for cholesky, solve, slogdet, eigh, qr
and svd, and generated substitution / elimination loops for triangular_solve and lu (which
Numba's `np.linalg` lacks). Each matrix is a C-contiguous view of its batch entry, so no
Python round trip per matrix."""
from __future__ import annotations

import math

from .lowering import register_lowering


def _batched(ctx, i):
    """(name of operand i viewed as (batch, rows, cols), batch count, rows, cols)."""
    shape = ctx.aval(i).shape
    b = math.prod(shape[:-2])
    name = ctx.fresh("_m")
    ctx.emit(f"{name} = {ctx.array(i)}.reshape(({b}, {shape[-2]}, {shape[-1]}))")
    return name, b, shape[-2], shape[-1]


def _out3(ctx, j, b):
    shape = ctx.eqn.outvars[j].aval.shape
    name = ctx.fresh("_r")
    ctx.emit(f"{name} = {ctx.out(j)}.reshape(({b}, {shape[-2]}, {shape[-1]}))")
    return name


def _out_rows(ctx, j, b, vector=True):
    """Output j as a (b, k) array name (`vector`: one k-vector per matrix) or a (b,) one
    (one scalar per matrix)."""
    flat, off = ctx.out_flat(j)
    n = math.prod(ctx.eqn.outvars[j].aval.shape)
    name = ctx.fresh("_r")
    if vector:
        ctx.emit(f"{name} = {flat}[{off}:{off + n}].reshape(({b}, {n // b if b else 0}))")
    else:
        ctx.emit(f"{name} = {flat}[{off}:{off + n}]")
    return name


def _empty_matrices(ctx):
    return any(0 in ctx.aval(i).shape for i in range(len(ctx.eqn.invars)))


def _per_matrix(ctx, k, b, call=None, results=(), stores=()):
    """Emit a loop `for k in range(b)` over the matrices: `call` (source of one np.linalg
    call on matrix `k`, its results unpacked into the names `results`), then each
    `out[k] = value` of `stores` ((out, value) pairs)."""
    with ctx.block(f"for {k} in range({b}):"):
        if call is not None:
            ctx.emit(f"{', '.join(results)} = {call}")
        for out, value in stores:
            ctx.emit(f"{out}[{k}] = {value}")


def _matrix_function(np_name):
    """Lowering of a primitive whose output matrix k is `np.linalg.<np_name>` of the operands'
    matrices k."""
    def rule(ctx, eqn):
        if _empty_matrices(ctx):
            return
        mats = [_batched(ctx, i)[0] for i in range(len(eqn.invars))]
        b = math.prod(ctx.aval(0).shape[:-2])
        o = _out3(ctx, 0, b)
        k = ctx.fresh("_b")
        call = f"_np.linalg.{np_name}({', '.join(f'{m}[{k}]' for m in mats)})"
        _per_matrix(ctx, k, b, stores=[(o, call)])
    return rule


register_lowering("cholesky", calls_blas=True)(_matrix_function("cholesky"))
register_lowering("linalg_solve", calls_blas=True)(_matrix_function("solve"))


@register_lowering("slogdet", calls_blas=True)
def _slogdet(ctx, eqn):
    shape = ctx.aval(0).shape
    b = math.prod(shape[:-2])
    sign, logdet = _out_rows(ctx, 0, b, False), _out_rows(ctx, 1, b, False)
    dt = ctx.dtype(eqn.outvars[0].aval.dtype)
    k = ctx.fresh("_b")
    if shape[-1] == 0:                    # the empty product: det 1
        _per_matrix(ctx, k, b, stores=[(sign, f"{dt}(1)"), (logdet, f"{dt}(0)")])
        return
    a, _, _, _ = _batched(ctx, 0)
    s, ld = ctx.fresh("_s"), ctx.fresh("_l")
    _per_matrix(ctx, k, b, f"_np.linalg.slogdet({a}[{k}])", (s, ld),
                [(sign, s), (logdet, ld)])


@register_lowering("eigh", calls_blas=True)
def _eigh(ctx, eqn):
    if _empty_matrices(ctx):
        return
    a, b, n, _ = _batched(ctx, 0)
    v = _out3(ctx, 0, b)
    w = _out_rows(ctx, 1, b)
    k, ww, vv = ctx.fresh("_b"), ctx.fresh("_w"), ctx.fresh("_v")
    # LAPACK reads one triangle: for the upper one, hand it the transpose's lower one
    src = f"{a}[{k}]" if eqn.params["lower"] else f"_np.ascontiguousarray({a}[{k}].T)"
    _per_matrix(ctx, k, b, f"_np.linalg.eigh({src})", (ww, vv), [(w, ww), (v, vv)])


@register_lowering("qr", calls_blas=True)
def _qr(ctx, eqn):
    if _empty_matrices(ctx):
        return
    a, b, m, n = _batched(ctx, 0)
    if eqn.params["full_matrices"] and m > n:
        raise NotImplementedError("qr(full_matrices=True) of a matrix with more rows than "
                                  "columns is not supported under jit yet (Numba's qr is the "
                                  "reduced one); use mode='reduced' / full_matrices=False")
    q, r = _out3(ctx, 0, b), _out3(ctx, 1, b)
    k, qq, rr = ctx.fresh("_b"), ctx.fresh("_q"), ctx.fresh("_rr")
    _per_matrix(ctx, k, b, f"_np.linalg.qr({a}[{k}])", (qq, rr), [(q, qq), (r, rr)])


@register_lowering("svd", calls_blas=True)
def _svd(ctx, eqn):
    if _empty_matrices(ctx):
        return
    a, b, _, _ = _batched(ctx, 0)
    full, uv = eqn.params["full_matrices"], eqn.params["compute_uv"]
    s = _out_rows(ctx, 0, b)
    k, uu, ss, vv = ctx.fresh("_b"), ctx.fresh("_u"), ctx.fresh("_s"), ctx.fresh("_v")
    u = _out3(ctx, 1, b) if uv else None
    vt = _out3(ctx, 2, b) if uv else None
    _per_matrix(ctx, k, b, f"_np.linalg.svd({a}[{k}], full_matrices={bool(full and uv)})",
                (uu, ss, vv), [(s, ss)] + ([(u, uu), (vt, vv)] if uv else []))


@register_lowering("triangular_solve")
def _triangular_solve(ctx, eqn):
    if _empty_matrices(ctx):
        return
    p = eqn.params
    a, b, n, _ = _batched(ctx, 0)
    rhs, _, r0, r1 = _batched(ctx, 1)
    o = _out3(ctx, 0, b)
    left, trans = p["left_side"], p["transpose_a"]
    # Solve M y = c column by column: left side M = op(a) and the columns are b's columns;
    # right side (x op(a) = b) M = op(a)ᵀ and the "columns" are b's rows.
    # op(a)[i, j] = a[j, i] when transposed; M[i, j] = op(a)[j, i] on the right side.
    m_transposed = trans != (not left)
    lower = p["lower"] != m_transposed          # whether M is lower triangular
    kk, col, i, j, acc = (ctx.fresh(x) for x in ("_b", "_c", "_i", "_j", "_acc"))

    def M(r, c):
        return f"{a}[{kk}, {c}, {r}]" if m_transposed else f"{a}[{kk}, {r}, {c}]"

    def X(r):
        return f"{o}[{kk}, {r}, {col}]" if left else f"{o}[{kk}, {col}, {r}]"

    def C(r):
        return f"{rhs}[{kk}, {r}, {col}]" if left else f"{rhs}[{kk}, {col}, {r}]"

    ncols = r1 if left else r0
    order = f"range({n})" if lower else f"range({n} - 1, -1, -1)"
    inner = f"range({i})" if lower else f"range({i} + 1, {n})"
    with ctx.block(f"for {kk} in range({b}):"):
        with ctx.block(f"for {col} in range({ncols}):"):
            with ctx.block(f"for {i} in {order}:"):
                ctx.emit(f"{acc} = {C(i)}")
                with ctx.block(f"for {j} in {inner}:"):
                    ctx.emit(f"{acc} -= {M(i, j)} * {X(j)}")
                ctx.emit(f"{X(i)} = {acc}" if p["unit_diagonal"] else
                         f"{X(i)} = {acc} / {M(i, i)}")


@register_lowering("lu")
def _lu(ctx, eqn):
    if _empty_matrices(ctx):
        return
    a, b, n, _ = _batched(ctx, 0)
    lu = _out3(ctx, 0, b)
    piv = _out_rows(ctx, 1, b)
    kk, k, i, j, p, best, t = (ctx.fresh(x) for x in ("_b", "_k", "_i", "_j", "_p", "_best",
                                                     "_t"))
    prow = f"{piv}[{kk}, {k}]"
    # partial pivoting as LAPACK's getrf: the first row with the largest |value| is the pivot
    with ctx.block(f"for {kk} in range({b}):"):
        ctx.emit(f"{lu}[{kk}] = {a}[{kk}]")
        with ctx.block(f"for {k} in range({n}):"):
            ctx.emit(f"{p} = {k}")
            ctx.emit(f"{best} = abs({lu}[{kk}, {k}, {k}])")
            with ctx.block(f"for {i} in range({k} + 1, {n}):"):
                with ctx.block(f"if abs({lu}[{kk}, {i}, {k}]) > {best}:"):
                    ctx.emit(f"{best} = abs({lu}[{kk}, {i}, {k}])")
                    ctx.emit(f"{p} = {i}")
            ctx.emit(f"{prow} = {p}")
            with ctx.block(f"if {p} != {k}:"):
                with ctx.block(f"for {j} in range({n}):"):
                    ctx.emit(f"{t} = {lu}[{kk}, {k}, {j}]")
                    ctx.emit(f"{lu}[{kk}, {k}, {j}] = {lu}[{kk}, {p}, {j}]")
                    ctx.emit(f"{lu}[{kk}, {p}, {j}] = {t}")
            with ctx.block(f"if {lu}[{kk}, {k}, {k}] != 0:"):
                with ctx.block(f"for {i} in range({k} + 1, {n}):"):
                    ctx.emit(f"{lu}[{kk}, {i}, {k}] /= {lu}[{kk}, {k}, {k}]")
            with ctx.block(f"for {i} in range({k} + 1, {n}):"):
                with ctx.block(f"for {j} in range({k} + 1, {n}):"):
                    ctx.emit(f"{lu}[{kk}, {i}, {j}] -= {lu}[{kk}, {i}, {k}] * "
                             f"{lu}[{kk}, {k}, {j}]")
