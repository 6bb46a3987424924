"""Sorting: the stable `argsort` primitive, and `sort` / `sort_key_val` built on it.

One primitive is enough: `argsort` gives the permutation (integer output, zero derivative),
and every sorted value is a gather of its operand by that permutation, so JVPs, transposes
and batching come from `gather`'s rules. Ties keep their order (a stable sort), NaNs sort
last, as in NumPy and JAX. The Numba lowering is in `backend/numba/rules_random.py`.
"""
from __future__ import annotations

import operator

import numpy as np

from ..core import Primitive, ShapedArray, get_aval
from ._util import as_array

argsort_p = Primitive("argsort")


@argsort_p.def_impl
def _argsort_impl(x, *, axis):
    return np.argsort(x, axis=axis, kind="stable").astype(np.int32)


@argsort_p.def_abstract_eval
def _argsort_abstract(x, *, axis):
    return ShapedArray(x.shape, np.int32)


@argsort_p.def_jvp
def _argsort_jvp(primals, tangents, *, axis):
    return argsort_p.bind(primals[0], axis=axis), None


@argsort_p.def_batch
def _argsort_batch(args, dims, *, axis):
    (x,), (d,) = args, dims
    # `axis` counts dimensions of the unbatched operand; skip over the batch dimension
    new_axis = axis + 1 if axis >= d else axis
    return argsort_p.bind(x, axis=new_axis), d


def argsort(x, axis=-1):
    """Indices (int32) that sort `x` along `axis`, stable: ties keep their order."""
    x = as_array(x)
    aval = get_aval(x)
    if aval.ndim == 0:
        raise ValueError("argsort of a 0-d array")
    if aval.dtype == np.bool_:
        # compiled sorts compare numbers; False < True as 0 < 1
        from .elementwise import convert_element_type
        x = convert_element_type(x, np.int8)
    return argsort_p.bind(x, axis=operator.index(axis) % aval.ndim)


def _take_sorted(x, perm, axis):
    # tnp's take_along_axis builds the gather (imported late: tnp is built on lax)
    from ..numpy import take_along_axis
    return take_along_axis(x, perm, axis)


def sort(operand, dimension=-1, is_stable=True, num_keys=1):
    """`jax.lax.sort`: sort `operand` (an array or a sequence of same-shaped arrays) along
    `dimension`; with several operands the first `num_keys` are the keys (lexicographic) and
    the rest follow the same permutation. Always stable here."""
    single = not isinstance(operand, (tuple, list))
    ops = [as_array(operand)] if single else [as_array(o) for o in operand]
    shapes = {get_aval(o).shape for o in ops}
    if len(shapes) != 1:
        raise ValueError(f"sort: operands must have the same shape, got {sorted(shapes)}")
    if not 1 <= num_keys <= len(ops):
        raise ValueError(f"sort: num_keys={num_keys} must be between 1 and {len(ops)}")
    ndim = get_aval(ops[0]).ndim
    axis = operator.index(dimension) % max(ndim, 1)
    # lexicographic order by successive stable sorts, least significant key first
    perm = argsort(ops[num_keys - 1], axis)
    for k in range(num_keys - 2, -1, -1):
        perm = _take_sorted(perm, argsort(_take_sorted(ops[k], perm, axis), axis), axis)
    out = [_take_sorted(o, perm, axis) for o in ops]
    return out[0] if single else tuple(out)


def sort_key_val(keys, values, dimension=-1, is_stable=True):
    """`jax.lax.sort_key_val`: `keys` sorted along `dimension`, and `values` permuted alike."""
    return sort((keys, values), dimension, is_stable, num_keys=1)


def top_k(operand, k):
    """`jax.lax.top_k`: the `k` largest entries along the last axis, in descending order, and
    their int32 indices (equal values: the lower index first)."""
    from ..numpy._sorting import argsort as _tnp_argsort
    x = as_array(operand)
    n = get_aval(x).shape[-1] if get_aval(x).ndim else 0
    k = operator.index(k)
    if not 0 <= k <= n:
        raise ValueError(f"top_k: k={k} must be between 0 and the last axis' size {n}")
    idx = _tnp_argsort(x, axis=-1, descending=True)[..., :k]
    from .elementwise import convert_element_type
    return _take_sorted(x, idx, -1), convert_element_type(idx, np.int32)
