"""dot_general: contractions with batch dimensions (matmul, einsum, tensordot build on it).

Output dimension order, as in JAX: batch dims, then lhs free dims, then rhs free dims.
"""
from __future__ import annotations

import enum
import math

import numpy as np

from ..core import Primitive, ShapedArray, get_aval
from ..errors import ShapeError
from ..interpreters.batching import shift_axis
from ..interpreters.jvp import defbilinear
from ..source_info import where
from . import shape as S
from ._util import as_array

dot_general_p = Primitive("dot_general")


_prod = math.prod


def _perm(x, perm):
    return x if perm == list(range(x.ndim)) else x.transpose(perm)


def _free_dims(ndim, contract, batch):
    return [d for d in range(ndim) if d not in contract and d not in batch]


@dot_general_p.def_impl
def _dot_general_impl(lhs, rhs, *, dimension_numbers, preferred_element_type=None):
    (lc, rc), (lb, rb) = dimension_numbers
    lhs, rhs = np.asarray(lhs), np.asarray(rhs)
    lf, rf = _free_dims(lhs.ndim, lc, lb), _free_dims(rhs.ndim, rc, rb)
    ls, rs = lhs.shape, rhs.shape
    bshape = [ls[d] for d in lb]
    lfs, rfs = [ls[d] for d in lf], [rs[d] for d in rf]
    k = _prod([ls[d] for d in lc])       # math.prod: np.prod costs ~5 us per call
    dt = preferred_element_type or np.result_type(lhs.dtype, rhs.dtype)
    if lhs.dtype != dt:
        # accumulate in the preferred type (int8 x int8 -> int32 must not wrap in int8)
        lhs, rhs = lhs.astype(dt), rhs.astype(dt)
    if not lb:
        # (free, contract) @ (contract, free): 2-D views, transposes folded into BLAS flags
        a = _perm(lhs, lf + list(lc)).reshape(_prod(lfs), k)
        b = _perm(rhs, list(rc) + rf).reshape(k, _prod(rfs))
        out = np.dot(a, b).reshape(lfs + rfs)
        return out if out.dtype == dt else out.astype(dt)
    # (batch, free, contract) @ (batch, contract, free) -> one BLAS-backed matmul
    a = _perm(lhs, list(lb) + lf + list(lc)).reshape([_prod(bshape), _prod(lfs), k])
    b = _perm(rhs, list(rb) + list(rc) + rf).reshape([a.shape[0], k, _prod(rfs)])
    if k == 1 and a.shape[0] != 1:
        out = np.multiply(a, b)      # batched outer products (per-example grads): no matmul
    else:
        out = np.matmul(a, b) if a.shape[0] != 1 else np.dot(a[0], b[0])[None]
    out = out.reshape(bshape + lfs + rfs)
    return out.astype(dt, copy=False)


@dot_general_p.def_abstract_eval
def _dot_general_abstract(lhs, rhs, *, dimension_numbers, preferred_element_type=None):
    (lc, rc), (lb, rb) = dimension_numbers
    for a, b in list(zip(lc, rc)) + list(zip(lb, rb)):
        if lhs.shape[a] != rhs.shape[b]:
            raise ShapeError(f"dot_general: contracting/batch dimensions don't match: lhs "
                             f"{lhs.shape} axis {a} vs rhs {rhs.shape} axis {b}{where()}")
    if lhs.dtype != rhs.dtype:
        raise TypeError(f"dot_general: dtypes differ ({lhs.dtype}, {rhs.dtype})")
    shape = [lhs.shape[d] for d in lb] + [lhs.shape[d] for d in _free_dims(lhs.ndim, lc, lb)] + \
        [rhs.shape[d] for d in _free_dims(rhs.ndim, rc, rb)]
    return ShapedArray(shape, preferred_element_type or lhs.dtype)


@dot_general_p.def_batch
def _dot_general_batch(args, dims, *, dimension_numbers, preferred_element_type=None):
    # Always ONE dot_general: both operands batched -> a new leading batch dimension; one
    # operand batched -> its batch axis is just another free dimension of that operand.
    (lhs, rhs), (ld, rd) = args, dims
    (lc, rc), (lb, rb) = dimension_numbers
    lc, lb = tuple(shift_axis(a, ld) for a in lc), tuple(shift_axis(a, ld) for a in lb)
    rc, rb = tuple(shift_axis(a, rd) for a in rc), tuple(shift_axis(a, rd) for a in rb)
    if ld is not None and rd is not None:
        dn = ((lc, rc), ((ld,) + lb, (rd,) + rb))
        out_dim = 0
    elif ld is not None:
        dn = ((lc, rc), (lb, rb))
        out_dim = len(lb) + _free_dims(get_aval(lhs).ndim, lc, lb).index(ld)
    else:
        dn = ((lc, rc), (lb, rb))
        lhs_nd = get_aval(lhs).ndim
        out_dim = (len(lb) + lhs_nd - len(lc) - len(lb)
                   + _free_dims(get_aval(rhs).ndim, rc, rb).index(rd))
    return dot_general_p.bind(lhs, rhs, dimension_numbers=dn,
                              preferred_element_type=preferred_element_type), out_dim


class Precision(enum.Enum):
    """`lax.Precision`, accepted for JAX compatibility. It has no effect here: float32
    products are float32 BLAS (or loop) products, float64 ones float64, whatever is asked."""
    DEFAULT = 0
    HIGH = 1
    HIGHEST = 2


_PRECISION_NAMES = {"default", "high", "highest", "bfloat16", "tensorfloat32", "float32",
                    "fastest"}


def check_precision(precision):
    """Validate a `precision=` argument as JAX does (None, a Precision, one of its names, or a
    pair of them); it is then ignored."""
    if precision is None or isinstance(precision, Precision):
        return
    if isinstance(precision, str) and precision.lower() in _PRECISION_NAMES:
        return
    if isinstance(precision, (tuple, list)) and len(precision) == 2:
        for p in precision:
            check_precision(p)
        return
    raise ValueError(f"precision argument must be None, a lax.Precision, one of "
                     f"{sorted(_PRECISION_NAMES)} or a pair of those, got {precision!r}")


def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    """`lax.dot_general`; `precision` is accepted and ignored (see `Precision`), the product
    accumulates in `preferred_element_type` when given."""
    check_precision(precision)
    (lc, rc), (lb, rb) = dimension_numbers
    dn = ((tuple(int(d) for d in lc), tuple(int(d) for d in rc)),
          (tuple(int(d) for d in lb), tuple(int(d) for d in rb)))
    pet = None if preferred_element_type is None else np.dtype(preferred_element_type)
    return dot_general_p.bind(as_array(lhs), as_array(rhs), dimension_numbers=dn,
                              preferred_element_type=pet)


def dot(a, b, precision=None, preferred_element_type=None):
    """Matrix/vector product for rank <= 2 operands (lax.dot)."""
    a, b = as_array(a), as_array(b)
    na = get_aval(a).ndim
    return dot_general(a, b, (((na - 1,), (0,)), ((), ())), precision, preferred_element_type)


def _ranges_like(*xs):
    start = 0
    for x in xs:
        yield tuple(range(start, start + len(x)))
        start += len(x)


def _transpose_lhs(ct, x_aval, y, dimension_numbers, preferred_element_type, swap_ans=False):
    # The cotangent of lhs contracts ct with rhs over rhs's free dims (and its batch dims stay
    # batch dims); the result is then permuted back into lhs's dimension order.
    (x_contract, y_contract), (x_batch, y_batch) = dimension_numbers
    x_ndim = x_aval.ndim
    y_aval = get_aval(y)
    x_kept = _free_dims(x_ndim, x_contract, x_batch)
    y_kept = _free_dims(y_aval.ndim, y_contract, y_batch)
    if swap_ans:
        ans_batch, ans_y, _ = _ranges_like(x_batch, y_kept, x_kept)
    else:
        ans_batch, _, ans_y = _ranges_like(x_batch, x_kept, y_kept)
    dims = ((ans_y, y_kept), (ans_batch, y_batch))
    x_contract_sorted_by_y = [c for _, c in sorted(zip(y_contract, x_contract))]
    out_axes = np.argsort(list(x_batch) + x_kept + x_contract_sorted_by_y)
    from .elementwise import convert_element_type
    ct_dt = get_aval(ct).dtype
    if y_aval.dtype != ct_dt:            # preferred_element_type widened the output
        y = convert_element_type(y, ct_dt)
    res = dot_general(ct, y, dims, preferred_element_type=preferred_element_type)
    res = S.transpose(res, tuple(int(a) for a in out_axes))
    return convert_element_type(res, x_aval.dtype)


def _transpose_rhs(ct, x, y_aval, dimension_numbers, preferred_element_type):
    (x_contract, y_contract), (x_batch, y_batch) = dimension_numbers
    swapped = ((y_contract, x_contract), (y_batch, x_batch))
    return _transpose_lhs(ct, y_aval, x, swapped, preferred_element_type, swap_ans=True)


defbilinear(
    dot_general_p,
    lambda ct, lhs, rhs, *, dimension_numbers, preferred_element_type=None:
        _transpose_lhs(ct, lhs.aval, rhs, dimension_numbers, None),
    lambda ct, lhs, rhs, *, dimension_numbers, preferred_element_type=None:
        _transpose_rhs(ct, lhs, rhs.aval, dimension_numbers, None))


# `jax.lax.linalg`'s decompositions live in their own module; this namespace has them too
from .decompositions import (  # noqa: E402,F401
    cholesky, eigh, lu_factor, qr, svd, triangular_solve)
