"""Shape primitives. Views, read in place by their readers (`register_view`: the index map
of the output onto the operand): broadcast_in_dim, transpose, squeeze, rev, static slice,
unit-axis reshape, stop_gradient and iota. Opaque rules: general reshape (free: storage is
flat), concatenate, pad, dynamic_slice, dynamic_update_slice."""
from __future__ import annotations

from .emit import _c_strides
from .fusion import View
from .lowering import register_lowering
from .registry import register_keeps_zero, register_view


# ---------------------------------------------------------------------------------------------
# Views: terms(eqn) gives, per operand dim, (c, d, a): the operand index is c + a * out[d]
# ---------------------------------------------------------------------------------------------

def _same_terms(eqn):
    return tuple((0, d, 1) for d in range(eqn.outvars[0].aval.ndim))


register_view("stop_gradient", terms=_same_terms, identity=lambda eqn: True)


def _broadcast_terms(eqn):
    src, out = eqn.invars[0].aval, eqn.outvars[0].aval
    return tuple((0, d, 1) if src.shape[i] == out.shape[d] and src.shape[i] != 1
                 else (0, None, 0) for i, d in enumerate(eqn.params["broadcast_dimensions"]))


register_view("broadcast_in_dim", terms=_broadcast_terms,
              identity=lambda eqn: tuple(eqn.params["broadcast_dimensions"]) ==
              tuple(range(eqn.invars[0].aval.ndim)))


def _transpose_terms(eqn):
    terms = [None] * eqn.invars[0].aval.ndim
    for j, pj in enumerate(eqn.params["permutation"]):
        terms[pj] = (0, j, 1)
    return tuple(terms)


register_view("transpose", terms=_transpose_terms,
              identity=lambda eqn: tuple(eqn.params["permutation"]) ==
              tuple(range(eqn.invars[0].aval.ndim)))


def _squeeze_terms(eqn):
    dims = set(eqn.params["dimensions"])
    terms, j = [], 0
    for i in range(eqn.invars[0].aval.ndim):
        if i in dims:
            terms.append((0, None, 0))
        else:
            terms.append((0, j, 1))
            j += 1
    return tuple(terms)


register_view("squeeze", terms=_squeeze_terms,
              identity=lambda eqn: not eqn.params.get("dimensions"))


def _rev_terms(eqn):
    src = eqn.invars[0].aval
    dims = set(eqn.params["dimensions"])
    return tuple((src.shape[d] - 1, d, -1) if d in dims else (0, d, 1)
                 for d in range(src.ndim))


register_view("rev", terms=_rev_terms, identity=lambda eqn: not eqn.params.get("dimensions"))


def _slice_terms(eqn):
    p = eqn.params
    strides = p["strides"] or (1,) * eqn.invars[0].aval.ndim
    return tuple((s, d, st) for d, (s, st) in enumerate(zip(p["start_indices"], strides)))


def _slice_is_identity(eqn):
    p, a = eqn.params, eqn.invars[0].aval
    return (all(s == 0 for s in p["start_indices"]) and tuple(p["limit_indices"]) == a.shape
            and all(s == 1 for s in (p["strides"] or ())))


register_view("slice", terms=_slice_terms, identity=_slice_is_identity)


def _reshape_terms(eqn):
    """Only reshapes that add or drop unit axes are views (None: the opaque rule below)."""
    src, out = eqn.invars[0].aval, eqn.outvars[0].aval
    a = [(i, n) for i, n in enumerate(src.shape) if n != 1]
    b = [(j, n) for j, n in enumerate(out.shape) if n != 1]
    if [n for _, n in a] != [n for _, n in b]:
        return None
    terms = [(0, None, 0)] * src.ndim
    for (i, _), (j, _) in zip(a, b):
        terms[i] = (0, j, 1)
    return tuple(terms)


def _reshape_of_iota(eqn, iota):
    """Any reshape of an iota whose value is an affine function of its row-major flat index
    (a 1-D iota, say: random's counters) is the same function of the new shape's flat index:
    a view, so it fuses into the nest reading it instead of being written out (None: other
    iotas)."""
    src, out = eqn.invars[0].aval, eqn.outvars[0].aval
    coef = [0] * src.ndim
    const = 0
    for c, d, a in iota.terms:
        const += c
        if d is not None and src.shape[d] > 1:
            coef[d] += a
    dims = [d for d in range(src.ndim) if src.shape[d] > 1]
    step = coef[dims[-1]] if dims else 0    # the change per step of the flat index
    strides = _c_strides(src.shape)
    if any(coef[d] != step * strides[d] for d in dims):
        return None
    terms = [(const, None, 0)] + [(0, d, step * st)
                                  for d, st in enumerate(_c_strides(out.shape))
                                  if out.shape[d] > 1]
    return View("iota", out.shape, dtype=iota.dtype, terms=tuple(terms))


register_view("reshape", terms=_reshape_terms, identity=lambda eqn: True,
              of_iota=_reshape_of_iota)
for _name in ("broadcast_in_dim", "reshape"):      # zeros stay zeros (simplify.py)
    register_keeps_zero(_name)


def _iota_view(eqn):
    return View("iota", eqn.outvars[0].aval.shape, dtype=eqn.params["dtype"],
                terms=((0, eqn.params["dimension"], 1),))


register_view("iota", source=_iota_view)


# ---------------------------------------------------------------------------------------------
# Opaque rules
# ---------------------------------------------------------------------------------------------


@register_lowering("reshape", aliases_operand=True)
def _reshape(ctx, eqn):
    # storage is flat and C-ordered: a reshape is the same storage (a copy only for views)
    ctx.alias_out(0, 0)


@register_lowering("concatenate")
def _concatenate(ctx, eqn):
    dim = eqn.params["dimension"]
    off = 0
    for i, a in enumerate(eqn.invars):
        shape = a.aval.shape
        if shape[dim] == 0:
            continue
        with ctx.loops(shape) as idx:
            oix = [f"{ix} + {off}" if d == dim and off else ix for d, ix in enumerate(idx)]
            ctx.emit(f"{ctx.out_elem(0, oix)} = {ctx.read(i, idx)}")
        off += shape[dim]


@register_lowering("pad")
def _pad(ctx, eqn):
    cfg = eqn.params["padding_config"]
    x_aval = eqn.invars[0].aval
    oshape = eqn.outvars[0].aval.shape
    out, oo = ctx.out_flat(0)
    n = 1
    for m in oshape:
        n *= m
    if n == 0:
        return
    ctx.emit(f"{out}[{oo}:{oo + n}] = {ctx.scalar(1)}")
    # operand element i lands at lo + i * (interior + 1); keep those inside the output
    ranges, place = [], []
    for (lo, hi, it), k, m in zip(cfg, x_aval.shape, oshape):
        step = it + 1
        i0 = 0 if lo >= 0 else (-lo + step - 1) // step
        i1 = k
        while i1 > i0 and lo + (i1 - 1) * step >= m:
            i1 -= 1
        if i1 <= i0:
            return
        ranges.append((i0, i1))
        place.append((lo, step))
    with ctx.loops(x_aval.shape, ranges=ranges) as idx:
        oix = []
        for ix, (lo, step) in zip(idx, place):
            e = ix if step == 1 else f"{step} * {ix}"
            oix.append(f"{e} + {lo}" if lo > 0 else (f"{e} - {-lo}" if lo < 0 else e))
        ctx.emit(f"{ctx.out_elem(0, oix)} = {ctx.read(0, idx)}")


def _clamped_starts(ctx, first, shape, sizes):
    starts = []
    for d, (n, k) in enumerate(zip(shape, sizes)):
        # as lax.shape._clamp_starts: a negative start counts from the end, then clamp
        s = ctx.fresh("_s")
        ctx.emit(f"{s} = _np.int64({ctx.scalar(first + d)})")  # (int(): an overload to compile)
        ctx.emit(f"{s} = min(max({s} + {n} if {s} < 0 else {s}, 0), {n - k})")
        starts.append(s)
    return starts


@register_lowering("dynamic_slice")
def _dynamic_slice(ctx, eqn):
    sizes = eqn.params["slice_sizes"]
    shape = eqn.invars[0].aval.shape
    starts = _clamped_starts(ctx, 1, shape, sizes)
    with ctx.loops(sizes) as idx:
        src = [f"{s} + {i}" if i != "0" else s for s, i in zip(starts, idx)]
        ctx.emit(f"{ctx.out_elem(0, idx)} = {ctx.read(0, src)}")


@register_lowering("dynamic_update_slice")
def _dynamic_update_slice(ctx, eqn):
    shape = eqn.invars[0].aval.shape
    ushape = eqn.invars[1].aval.shape
    ctx.copy_into(0, 0)
    starts = _clamped_starts(ctx, 2, shape, ushape)
    with ctx.loops(ushape) as idx:
        dst = [f"{s} + {i}" if i != "0" else s for s, i in zip(starts, idx)]
        ctx.emit(f"{ctx.out_elem(0, dst)} = {ctx.read(1, idx)}")
