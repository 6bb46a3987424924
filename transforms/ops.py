"""`jax.ops`: segment reductions, as graph neural networks use them to aggregate messages.

    agg = ops.segment_sum(messages, receivers, num_segments=n_nodes)

`segment_<op>(data, segment_ids, num_segments)` reduces the rows `data[i]` with equal
`segment_ids[i]` into row `segment_ids[i]` of a `(num_segments,) + data.shape[1:]` result.
Ids outside `[0, num_segments)` are dropped, as JAX's default mode does. Each is one scatter
(`lax.scatter_add` / `scatter_max` / `scatter_min` / `scatter_mul`) into the reduction's
identity, so it differentiates, batches and compiles as those do. `indices_are_sorted`,
`unique_indices`, `bucket_size` and `mode` are accepted for portability: the scatter is
exact whatever they say (they are hints for XLA's accelerator kernels).
"""
from __future__ import annotations

import operator

import numpy as np

from . import lax
from .core import Tracer, concrete_or_error, get_aval
from .lax._util import as_array

__all__ = ["segment_sum", "segment_max", "segment_min", "segment_prod"]


def _identity(kind, dtype):
    if kind == "sum":
        return 0
    if kind == "prod":
        return 1
    big = kind == "min"
    if dtype.kind == "f":
        return np.inf if big else -np.inf
    if dtype.kind == "b":
        return big
    info = np.iinfo(dtype)
    return info.max if big else info.min


def _segment(kind, scatter, data, segment_ids, num_segments, mode):
    name = f"segment_{kind}"
    if mode not in (None, "drop", "fill", "promise_in_bounds", "clip") and \
            getattr(mode, "name", "").lower() not in ("fill_or_drop", "promise_in_bounds",
                                                        "clip"):
        raise ValueError(f"{name}: unknown mode {mode!r}")
    data = as_array(data)
    segment_ids = as_array(segment_ids)
    da, ia = get_aval(data), get_aval(segment_ids)
    if not np.issubdtype(ia.dtype, np.integer):
        raise TypeError(f"{name}: segment_ids must be integers, got {ia.dtype}")
    if da.ndim < 1:
        raise ValueError(f"{name}: data must have at least one dimension, got a scalar")
    if ia.shape != da.shape[:1]:
        raise ValueError(f"{name}: segment_ids of shape {ia.shape} must have one entry per row "
                         f"of data (shape {da.shape})")
    if num_segments is None:
        if isinstance(segment_ids, Tracer):
            concrete_or_error(segment_ids, f"{name}: num_segments=None needs concrete "
                                           f"segment_ids; pass num_segments")
        ids = np.asarray(segment_ids)
        num_segments = int(ids.max()) + 1 if ids.size else 0
    try:
        num_segments = operator.index(num_segments)
    except TypeError:
        raise TypeError(f"{name}: num_segments must be a static int, got "
                        f"{type(num_segments).__name__}") from None
    if num_segments < 0:
        raise ValueError(f"{name}: num_segments must be non-negative, got {num_segments}")
    if mode == "clip" or getattr(mode, "name", "").lower() == "clip":
        segment_ids = lax.clamp(np.asarray(0, ia.dtype), segment_ids,
                                np.asarray(max(num_segments - 1, 0), ia.dtype))
    out_shape = (num_segments,) + da.shape[1:]
    init = lax.full(out_shape, _identity(kind, da.dtype), da.dtype)
    idx = lax.reshape(segment_ids, ia.shape + (1,))
    return scatter(init, idx, data)


def segment_sum(data, segment_ids, num_segments=None, indices_are_sorted=False,
                unique_indices=False, bucket_size=None, mode=None):
    """Sum of the rows of `data` in each segment (0 for an empty one); see the module
    docstring. `num_segments` (a static int) defaults to `max(segment_ids) + 1`, which needs
    concrete ids."""
    del indices_are_sorted, unique_indices, bucket_size
    return _segment("sum", lax.scatter_add, data, segment_ids, num_segments, mode)


def segment_prod(data, segment_ids, num_segments=None, indices_are_sorted=False,
                 unique_indices=False, bucket_size=None, mode=None):
    """Product of the rows of `data` in each segment (1 for an empty one). As in JAX, it is
    differentiable with respect to `data` only with `unique_indices=True` (each segment
    receiving at most one row)."""
    del indices_are_sorted, bucket_size

    def scatter(x, idx, u):
        return lax.scatter_mul(x, idx, u, unique_indices=bool(unique_indices))
    return _segment("prod", scatter, data, segment_ids, num_segments, mode)


def segment_max(data, segment_ids, num_segments=None, indices_are_sorted=False,
                unique_indices=False, bucket_size=None, mode=None):
    """Maximum of the rows of `data` in each segment (-inf, or the dtype's minimum, for an
    empty one, as in JAX)."""
    del indices_are_sorted, unique_indices, bucket_size
    return _segment("max", lax.scatter_max, data, segment_ids, num_segments, mode)


def segment_min(data, segment_ids, num_segments=None, indices_are_sorted=False,
                unique_indices=False, bucket_size=None, mode=None):
    """Minimum of the rows of `data` in each segment (+inf, or the dtype's maximum, for an
    empty one, as in JAX)."""
    del indices_are_sorted, unique_indices, bucket_size
    return _segment("min", lax.scatter_min, data, segment_ids, num_segments, mode)
