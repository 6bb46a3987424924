"""dot_general: BLAS gemm for float32/float64 (transposes folded into the call: operands are
read in place through their flat storage with transpose flags and leading dimensions),
generated loops for integers, booleans, mixed precision and tiny products."""
from __future__ import annotations

import os

import numpy as np

from ...ir import Eqn
from .fusion import View
from . import small_gemm
from .lowering import register_lowering

# Products with fewer multiply-adds than this are generated loops (cheaper than a BLAS call).
SMALL_DOT = 4096


# Products with at least this many multiply-adds let the BLAS choose its threads (as many as
# it has): big enough that its threads synchronise rarely, so they gain even on shared cores.
BLAS_THREADED_MIN = 1 << 28


def blas_parallel_min():
    """Products (one gemm call) with fewer multiply-adds than this run BLAS on the calling
    thread only (`kernels.gemm_cblas_serial`); `NUMBAX_BLAS_PARALLEL_MIN` overrides the default
    2**20. Larger ones, up to `BLAS_THREADED_MIN`, run on the number of threads the runner
    chose before the call (`kernels.gemm_cblas_auto`, `blas_threads`: one per free core).
    Below about 2**20 a second thread gains little even on idle cores (the fine-tune and
    Transformer steps were fastest with this threshold on an idle 2-core machine), and
    costs 5-50x whenever another process takes a core between the synchronisations."""
    v = os.environ.get("NUMBAX_BLAS_PARALLEL_MIN", "").strip()
    try:
        return int(v) if v else 1 << 20
    except ValueError:
        raise ValueError(f"NUMBAX_BLAS_PARALLEL_MIN must be an integer, got {v!r}") from None


def gemm_kernel(macs):
    """The name of the gemm kernel for a product of `macs` multiply-adds (None: a run-time
    size with no bound): the calling thread only, the run-time thread count, or all the
    BLAS's threads (see `blas_parallel_min`)."""
    from .kernels import GEMM, GEMM_AUTO, GEMM_SERIAL
    if macs is not None and macs < blas_parallel_min():
        return GEMM_SERIAL
    if macs is not None and macs >= BLAS_THREADED_MIN:
        return GEMM
    return GEMM_AUTO


def _c_strides(shape):
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= n
    return out[::-1]


def _perm_of(vw: View):
    """If `vw` is a pure axis permutation of a stored buffer: the logical dim of each buffer
    dim (buffer dims in memory order)."""
    if vw.kind != "var" or vw.var.aval.ndim != len(vw.shape):
        return None
    phys = []
    for (c, d, a) in vw.terms:
        if c != 0 or a != 1 or d is None:
            return None
        phys.append(d)
    if sorted(phys) != list(range(len(vw.shape))):
        return None
    # a static slice keeps unit strides and zero offsets too (x[:, :8] of an (n, 64) buffer):
    # only whole dims are the buffer read in place
    if any(vw.var.aval.shape[j] != vw.shape[d] for j, d in enumerate(phys)):
        return None
    return phys


def _permuted_view(vw: View, order, shape):
    """A view whose dim t is dim order[t] of `vw`."""
    inner = [None] * len(order)
    for t, i in enumerate(order):
        inner[i] = (0, t, 1)
    return vw.compose(tuple(inner), shape)


def _absorb_transpose(eqn, perm, outvars):
    """`transpose(dot_general(a, b), perm)` whose permutation only swaps the two free blocks
    (batch dims stay first) is `dot_general(b, a)` written into the transpose's `outvars`."""
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    la, ra = eqn.invars[0].aval, eqn.invars[1].aval
    nb = len(lb)
    nlf, nrf = la.ndim - len(lc) - nb, ra.ndim - len(rc) - nb
    want = tuple(range(nb)) + tuple(range(nb + nlf, nb + nlf + nrf)) + \
        tuple(range(nb, nb + nlf))
    if tuple(perm) == want:
        params = dict(eqn.params,
                      dimension_numbers=((tuple(rc), tuple(lc)), (tuple(rb), tuple(lb))))
        return Eqn(eqn.prim, [eqn.invars[1], eqn.invars[0]], outvars, params, eqn.source_info)
    return _strided_output(eqn, perm, outvars, nb, nlf, nrf)


def _strided_output(eqn, perm, outvars, nb, nlf, nrf):
    """A batched product with one free dim per operand whose transpose moves batch dims in
    between (attention's (B, H, T, D) -> (B, T, H, D) before the heads are merged): each
    batch entry's matrix is written by BLAS with a row stride straight into the transposed
    layout (param `out_layout`, the transpose's permutation of the product's dims), so
    neither the transpose nor the reshape after it copies."""
    la, ra = eqn.invars[0].aval, eqn.invars[1].aval
    oa = eqn.outvars[0].aval
    (_, rc), (_, rb) = eqn.params["dimension_numbers"]
    n = _size([ra.shape[d] for d in range(ra.ndim) if d not in rc and d not in rb])
    # only products the BLAS path lowers (the generated loops write C order)
    if (nb == 0 or nlf != 1 or nrf != 1 or "out_layout" in eqn.params
            or not (la.dtype == ra.dtype == oa.dtype) or oa.dtype not in (np.float32, np.float64)
            or _size(la.shape) * n < SMALL_DOT):
        return None
    perm = tuple(perm)
    if perm == tuple(range(len(perm))):     # transposes that cancel out
        return Eqn(eqn.prim, list(eqn.invars), outvars, dict(eqn.params), eqn.source_info)
    if perm[-1] == nb:
        # the lhs free dim is innermost in the layout: the product with operands swapped has
        # it as its rhs free dim (rows of C contiguous)
        (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
        eqn = Eqn(eqn.prim, [eqn.invars[1], eqn.invars[0]], eqn.outvars,
                  dict(eqn.params, dimension_numbers=((tuple(rc), tuple(lc)),
                                                      (tuple(rb), tuple(lb)))),
                  eqn.source_info)
        perm = tuple({nb: nb + 1, nb + 1: nb}.get(p, p) for p in perm)
    if perm[-1] != nb + 1:
        return None
    return Eqn(eqn.prim, list(eqn.invars), outvars, dict(eqn.params, out_layout=perm),
               eqn.source_info)


def _size(shape):
    return int(np.prod(shape, dtype=np.int64))


@register_lowering("dot_general", calls_blas=True, absorbs_transpose=_absorb_transpose)
def _dot_general(ctx, eqn):
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    lc, rc, lb, rb = map(tuple, (lc, rc, lb, rb))
    la, ra = eqn.invars[0].aval, eqn.invars[1].aval
    oa = eqn.outvars[0].aval
    lf = [d for d in range(la.ndim) if d not in lc and d not in lb]
    rf = [d for d in range(ra.ndim) if d not in rc and d not in rb]
    nb = int(np.prod([la.shape[d] for d in lb], dtype=np.int64))
    M = int(np.prod([la.shape[d] for d in lf], dtype=np.int64))
    N = int(np.prod([ra.shape[d] for d in rf], dtype=np.int64))
    K = int(np.prod([la.shape[d] for d in lc], dtype=np.int64))
    blas = (la.dtype == ra.dtype == oa.dtype and oa.dtype in (np.float32, np.float64)
            and nb * M * N * K >= SMALL_DOT)
    if not blas:
        assert "out_layout" not in eqn.params, "out_layout is folded for BLAS products only"
        return _dot_loops(ctx, eqn, lc, rc, lb, rb, lf, rf)

    def operand(i, batch, free, contract, other_contract):
        """(flat array, offset, 'FC' or 'CF' block order, contraction order, partner order,
        leading dimension or None (packed), batch strides or None (packed blocks))."""
        vw = ctx.view(i)
        aval = eqn.invars[i].aval
        phys = _perm_of(vw)
        stored = phys is not None and ctx.fl.env[vw.var].kind == "arr"
        if stored and phys[:len(batch)] == list(batch):
            rest = phys[len(batch):]
            nf = len(free)
            blocks = None
            if rest[:nf] == list(free):
                blocks = ("FC", rest[nf:])
            elif rest[len(rest) - nf:] == list(free):
                blocks = ("CF", rest[:len(rest) - nf])
            if blocks is not None:
                flat, off = ctx.fl.flat_of(vw.var)
                partner = [other_contract[contract.index(c)] for c in blocks[1]]
                return flat, off, blocks[0], list(blocks[1]), partner, None, None
        if stored and len(free) == 1 and len(contract) == 1:
            # one free and one contracted dim, one of them the buffer's innermost: each batch
            # entry is a strided matrix BLAS reads in place (attention's heads split off a
            # (batch, time, heads * dim) buffer), so no copy into packed order
            cs = _c_strides(vw.var.aval.shape)
            st = {d: cs[j] for j, d in enumerate(phys)}
            f, c = free[0], contract[0]
            m, k = aval.shape[f], aval.shape[c]
            form = ("FC", st[f]) if st[c] == 1 and st[f] >= k else (
                ("CF", st[c]) if st[f] == 1 and st[c] >= m else None)
            if form is not None:
                flat, off = ctx.fl.flat_of(vw.var)
                return (flat, off, form[0], [c], [other_contract[0]], max(form[1], 1),
                        [st[d] for d in batch])
        # copy into canonical (batch, free, contract) order
        order = list(batch) + list(free) + list(contract)
        shape = tuple(aval.shape[d] for d in order)
        flat, off = ctx.fl.flat_of_view(_permuted_view(vw, order, shape), aval.dtype)
        return flat, off, "FC", list(contract), [other_contract[contract.index(c)]
                                                  for c in contract], None, None

    la_, lo, lform, lcseq, lpartner, lld, lbs = operand(0, lb, lf, lc, rc)
    ra_, ro, rform, rcseq, _, rld, rbs = operand(1, rb, rf, rc, lc)
    if rcseq != lpartner:
        # rhs enumerates the contraction differently: copy it in the order lhs needs
        order = list(rb) + list(lpartner) + rf
        shape = tuple(ra.shape[d] for d in order)
        ra_, ro = ctx.fl.flat_of_view(_permuted_view(ctx.view(1), order, shape), ra.dtype)
        rform, rld, rbs = "CF", None, None
    ta = 0 if lform == "FC" else 1
    tb = 0 if rform == "CF" else 1
    lda = lld if lld is not None else (K if ta == 0 else M)
    ldb = rld if rld is not None else (N if tb == 0 else K)
    out, oo = ctx.out_flat(0)
    ldc, obs = N, None
    layout = eqn.params.get("out_layout")
    if layout is not None:
        # stored in the transposed layout: output dim j is product dim layout[j]
        ost = _c_strides(eqn.outvars[0].aval.shape)
        st = {d: ost[j] for j, d in enumerate(layout)}
        nbd = len(lb)
        ldc, obs = st[nbd], [st[t] for t in range(nbd)]
    one, zero = ctx.literal(1, oa.dtype), ctx.literal(0, oa.dtype)
    if nb == 1:
        g = ctx.kernel(gemm_kernel(M * N * K))
        ctx.emit(f"{g}({ta}, {tb}, {M}, {N}, {K}, {one}, {la_}, {lo}, {lda}, {ra_}, {ro}, {ldb}, "
                 f"{zero}, {out}, {oo}, {ldc})", "BLAS gemm")
        return
    bshape = [la.shape[d] for d in lb]

    def offset(base, strides, block):
        if strides is None:
            return f"{base} + {block} * _b"
        terms = [f"{s} * _b{t}" for t, s in enumerate(strides) if bshape[t] > 1 and s]
        return " + ".join([str(base)] + terms)
    small = small_gemm.supported(M, N, K, tb, oa.dtype.itemsize) and \
        M * N * K <= small_gemm.small_gemm_max()
    split = small_gemm.split_min() if small else None
    if split is not None and nb * M * N * K >= split:
        # the whole batch in one call that splits it over the threads the runner allows
        inner, packed = nb, []
        for n in bshape:
            inner //= n
            packed.append(inner)

        def strides(st, block):
            return list(st) if st is not None else [block * p for p in packed]
        spec = small_gemm.batched_spec(ta, tb, M, N, K, lda, ldb, ldc, bshape,
                                       strides(lbs, M * K), strides(rbs, K * N),
                                       strides(obs, M * N))
        ctx.emit(f"{ctx.kernel('small_gemm_batched')}(\"{spec}\", "
                 f"{ctx.kernel('blas_threads_wanted')}(), {la_}, {lo}, {ra_}, {ro}, {out}, {oo})",
                 "batched small gemm, split over the runner's BLAS threads")
        return
    with ctx.block(f"for _b in {ctx.range(nb)}:",
                   "batched small gemm" if small else "batched BLAS gemm"):
        if lbs is not None or rbs is not None or obs is not None:
            # the batch index in each batch dim (C order, as the output's leading dims)
            inner = nb
            for t, n in enumerate(bshape):
                inner //= n
                if n > 1:
                    ctx.emit(f"_b{t} = (_b // {inner}) % {n}" if inner > 1 else f"_b{t} = _b % {n}")
        if small:
            # one register-blocked kernel per entry, sizes compiled in (small_gemm.py): a
            # BLAS call per small matrix costs as much as its arithmetic in some layouts
            ctx.emit(f"{ctx.kernel('small_gemm')}({ta}, {tb}, {M}, {N}, {K}, {la_}, "
                     f"{offset(lo, lbs, M * K)}, {lda}, {ra_}, {offset(ro, rbs, K * N)}, "
                     f"{ldb}, {out}, {offset(oo, obs, M * N)}, {ldc})")
        else:
            g = ctx.kernel(gemm_kernel(M * N * K))
            ctx.emit(f"{g}({ta}, {tb}, {M}, {N}, {K}, {one}, {la_}, {offset(lo, lbs, M * K)}, "
                     f"{lda}, {ra_}, {offset(ro, rbs, K * N)}, {ldb}, {zero}, {out}, "
                     f"{offset(oo, obs, M * N)}, {ldc})")


def _dot_loops(ctx, eqn, lc, rc, lb, rb, lf, rf):
    la, ra = eqn.invars[0].aval, eqn.invars[1].aval
    oa = eqn.outvars[0].aval
    dt = oa.dtype
    nbd, nlf = len(lb), len(lf)
    with ctx.loops(oa.shape) as oidx:                     # output: batch, lhs free, rhs free
        acc = ctx.fresh("_acc")
        ctx.emit(f"{acc} = {ctx.literal(0, dt)}")
        with ctx.loops([la.shape[a] for a in lc], prefix="_k") as kidx:   # contraction
            li = ["0"] * la.ndim
            ri = ["0"] * ra.ndim
            for t, (a, b) in enumerate(zip(lb, rb)):
                li[a] = ri[b] = oidx[t]
            for t, a in enumerate(lf):
                li[a] = oidx[nbd + t]
            for t, b in enumerate(rf):
                ri[b] = oidx[nbd + nlf + t]
            for t, (a, b) in enumerate(zip(lc, rc)):
                li[a] = ri[b] = kidx[t]
            x = ctx.read(0, li)
            y = ctx.read(1, ri)
            if dt == np.bool_:
                ctx.emit(f"{acc} = {acc} or ({x} and {y})")
            else:
                c = ctx.dtype(dt)
                same = la.dtype == dt and ra.dtype == dt
                e = f"{acc} + {x} * {y}" if same else f"{acc} + {c}({x}) * {c}({y})"
                if dt not in (np.float32, np.float64, np.int64):
                    e = f"{c}({e})"
                ctx.emit(f"{acc} = {e}")
        ctx.emit(f"{ctx.out_elem(0, oidx)} = {acc}")
