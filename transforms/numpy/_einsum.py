"""einsum as a sequence of dot_general contractions (left to right), sums and a transpose."""
from __future__ import annotations

from collections import Counter

import numpy as np

from .. import lax
from ._promote import promote_dtypes

_ELLIPSIS_LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _parse(subscripts, operands):
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        ins, out = subscripts.split("->")
        explicit = True
    else:
        ins, out, explicit = subscripts, None, False
    terms = ins.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: {len(terms)} terms in {subscripts!r} for {len(operands)} operands")
    ell_n = 0
    for t, op in zip(terms, operands):
        if "..." in t:
            ell_n = max(ell_n, op.ndim - (len(t) - 3))
    ell = _ELLIPSIS_LABELS[:ell_n][::-1][::-1]
    new_terms = []
    for t, op in zip(terms, operands):
        if "..." in t:
            k = op.ndim - (len(t) - 3)
            t = t.replace("...", ell[ell_n - k:])
        if len(t) != op.ndim:
            raise ValueError(f"einsum: term {t!r} does not match operand of shape {op.shape}")
        new_terms.append(t)
    if explicit:
        out = out.replace("...", ell)
    else:
        counts = Counter("".join(new_terms))
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return new_terms, out


def _sum_out(x, labels, keep):
    axes = tuple(i for i, c in enumerate(labels) if c not in keep)
    if axes:
        x = lax.reduce_sum(x, axes)
        labels = "".join(c for c in labels if c in keep)
    return x, labels


def _diagonal_reduce(x, labels):
    """Handle a label repeated within one term (e.g. 'ii->i') by taking the diagonal."""
    while len(set(labels)) != len(labels):
        c = next(ch for ch in labels if labels.count(ch) > 1)
        i = labels.index(c)
        j = labels.index(c, i + 1)
        from ._shape_ops import diagonal
        x = diagonal(x, 0, i, j)          # moves the diagonal to the last axis
        labels = "".join(ch for k, ch in enumerate(labels) if k not in (i, j)) + c
    return x, labels


def _interleaved(args):
    """NumPy's other calling form, `einsum(op0, sublist0, op1, sublist1, ..., [sublistout])`
    (sublists of integer axis labels, `...` allowed), as `(subscripts, operands)`."""
    args = list(args)
    out = args.pop() if len(args) % 2 else None
    operands, sublists = args[0::2], args[1::2]

    def letters(sub):
        out = []
        for s in sub:
            if s is Ellipsis:
                out.append("...")
                continue
            s = int(s)
            if not 0 <= s < 52:
                raise ValueError(f"einsum: subscript {s} is not in range [0, 52)")
            out.append("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[s])
        return "".join(out)
    subscripts = ",".join(letters(s) for s in sublists)
    if out is not None:
        subscripts += "->" + letters(out)
    return subscripts, operands


def einsum(subscripts, *operands, out=None, optimize=None, precision=None, dtype=None):
    """NumPy's einsum (both calling forms). `optimize` and `precision` are accepted and
    ignored (contractions run left to right); `dtype` casts the operands first."""
    from ._ops import asarray
    from ._promote import asarray_of
    if out is not None:
        raise TypeError("einsum: the 'out' argument is not supported (arrays are immutable)")
    if not isinstance(subscripts, str):
        subscripts, operands = _interleaved((subscripts,) + operands)
    operands = [asarray(o) for o in operands]
    if dtype is not None:
        operands = [asarray_of(o, np.dtype(dtype)) for o in operands]
    if len(operands) > 1:
        operands = promote_dtypes(*operands)
    terms, out = _parse(subscripts, operands)
    ops = []
    for x, t in zip(operands, terms):
        ops.append(_diagonal_reduce(x, t))
    x, lx = ops[0]
    for k in range(1, len(ops) + 1):
        # labels still needed after this step: the output's and those of the operands after
        # ops[k] (ops[k]'s own labels made every shared label a batch dim: a contraction
        # became a batched outer product and a sum)
        later = set(out) | set("".join(t for _, t in ops[k + 1:]))
        if k == len(ops):
            x, lx = _sum_out(x, lx, later)
            break
        y, ly = ops[k]
        x, lx = _sum_out(x, lx, later | set(ly))
        y, ly = _sum_out(y, ly, later | set(lx))
        batch = [c for c in lx if c in ly and c in later]
        contract = [c for c in lx if c in ly and c not in later]
        dn = ((tuple(lx.index(c) for c in contract), tuple(ly.index(c) for c in contract)),
              (tuple(lx.index(c) for c in batch), tuple(ly.index(c) for c in batch)))
        x = lax.dot_general(x, y, dn)
        lx = "".join(batch) + "".join(c for c in lx if c not in batch and c not in contract) + \
            "".join(c for c in ly if c not in batch and c not in contract)
    if sorted(lx) != sorted(out):
        raise ValueError(f"einsum: output labels {out!r} not found among inputs")
    return lax.transpose(x, tuple(lx.index(c) for c in out))


def _promote_dtypes(operands):
    from ._promote import asarray_of, result_type
    dt = result_type(*operands)
    return [asarray_of(o, dt) for o in operands]


__all__ = ["einsum"]
_ = np
