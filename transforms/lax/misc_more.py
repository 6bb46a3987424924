"""Small `jax.lax` names with a direct meaning on one CPU device: `with_sharding_constraint`,
`platform_dependent`, `composite`, `ragged_dot`, `pbroadcast`, `broadcast_like`,
`create_token`, `after_all`, `shape_as_value`, `RoundingMethod`."""
from __future__ import annotations

import enum
import functools

import numpy as np

from .. import tree as tree_util
from ..core import get_aval
from ._util import as_array

__all__ = ["with_sharding_constraint", "platform_dependent", "composite", "ragged_dot",
           "pbroadcast", "broadcast_like", "create_token", "after_all", "shape_as_value",
           "RoundingMethod", "GatherScatterMode", "conv_general_permutations", "pcast",
           "bitcast_convert_type"]


class RoundingMethod(enum.IntEnum):
    """How `lax.round` breaks ties: away from zero (0) or to the nearest even (1)."""
    AWAY_FROM_ZERO = 0
    TO_NEAREST_EVEN = 1


def with_sharding_constraint(x, shardings):
    """`x` unchanged: sharding annotations have no effect on one device."""
    del shardings
    return x


def platform_dependent(*args, default=None, **per_platform):
    """`per_platform["cpu"](*args)` (the only platform here), else `default(*args)`."""
    branch = per_platform.get("cpu", default)
    if branch is None:
        raise NotImplementedError(f"platform_dependent: no branch for 'cpu' and no default "
                                  f"(branches: {sorted(per_platform)})")
    return branch(*args)


def composite(decomposition, name, version=0):
    """Decorator marking `decomposition` as a named composite operation (a hint for XLA
    backends); here the decomposition is simply what runs."""
    if not isinstance(name, str):
        raise TypeError(f"composite: name must be a string, got {type(name).__name__}")

    @functools.wraps(decomposition)
    def wrapper(*args, **kwargs):
        return decomposition(*args, **kwargs)
    return wrapper


def ragged_dot(lhs, rhs, group_sizes, precision=None, preferred_element_type=None,
               group_offset=None, out_sharding=None):
    """Grouped matrix product: rows `[s_0 + ... + s_{g-1}, + s_g)` of `lhs` `(m, k)` are
    multiplied by `rhs[g]` (`rhs` is `(G, k, n)`, `group_sizes` `(G,)` integers summing to at
    most m; rows past the groups give zeros), as `jax.lax.ragged_dot`. Computed as one masked
    product per group."""
    from .. import numpy as tnp
    if group_offset is not None:
        raise NotImplementedError("ragged_dot: group_offset is not supported")
    a, b, gs = as_array(lhs), as_array(rhs), as_array(group_sizes)
    aa, ba = get_aval(a), get_aval(b)
    if aa.ndim != 2 or ba.ndim != 3 or aa.shape[1] != ba.shape[1]:
        raise ValueError(f"ragged_dot: need lhs (m, k) and rhs (G, k, n), got {aa.shape} and "
                         f"{ba.shape}")
    if get_aval(gs).shape != (ba.shape[0],):
        raise ValueError(f"ragged_dot: group_sizes must have shape ({ba.shape[0]},), got "
                         f"{get_aval(gs).shape}")
    ends = tnp.cumsum(gs)
    starts = ends - gs
    rows = tnp.arange(aa.shape[0])
    out_dt = preferred_element_type or np.result_type(aa.dtype, ba.dtype)
    out = tnp.zeros((aa.shape[0], ba.shape[2]), out_dt)
    for g in range(ba.shape[0]):
        mask = (rows >= starts[g]) & (rows < ends[g])
        out = out + tnp.where(mask[:, None], tnp.matmul(a, b[g]).astype(out_dt), 0)
    return out


def pbroadcast(x, axis_name, source):
    """Every member of the mapped axis `axis_name` gets member `source`'s value."""
    from .collectives import all_gather
    from .extras import index_in_dim

    def one(leaf):
        return index_in_dim(all_gather(as_array(leaf), axis_name), source, 0, keepdims=False)
    return tree_util.map(one, x)


def broadcast_like(arr, like_arr):
    """`arr` broadcast to the shape of `like_arr`."""
    from .shape import broadcast_to
    return broadcast_to(as_array(arr), get_aval(as_array(like_arr)).shape)


def create_token(_=None):
    """An ordering token (an empty array: effects are always ordered here)."""
    return np.zeros((0,), np.bool_)


def after_all(*operands):
    """A token after all `operands` (effects are always ordered here)."""
    del operands
    return create_token()


def shape_as_value(shape):
    """`shape` as an int64 array."""
    return np.asarray(tuple(shape), np.int64)


class GatherScatterMode(enum.Enum):
    """How gathers and scatters treat out-of-bounds indices (`from_any("clip")`)."""
    CLIP = 1
    FILL_OR_DROP = 2
    PROMISE_IN_BOUNDS = 3
    ONE_HOT = 4

    @staticmethod
    def from_any(s):
        """The mode named `s` ("clip", "fill"/"drop", "promise_in_bounds", "one_hot"), a
        mode, or None (FILL_OR_DROP, JAX's default)."""
        if isinstance(s, GatherScatterMode):
            return s
        if s is None or s in ("fill", "drop"):
            return GatherScatterMode.FILL_OR_DROP
        try:
            return GatherScatterMode[str(s).upper()]
        except KeyError:
            raise ValueError(f"Unknown gather mode {s!r}") from None


def conv_general_permutations(dimension_numbers):
    """For `(lhs_spec, rhs_spec, out_spec)` strings such as `("NHWC", "HWIO", "NHWC")`: the
    axis permutations taking each operand to the (N, C, spatial...) / (O, I, spatial...)
    order, spatial dims in the kernel's order."""
    from .conv import conv_dimension_numbers
    specs = tuple(dimension_numbers)
    if len(specs) != 3 or not all(isinstance(s, str) for s in specs):
        raise TypeError(f"conv_general_permutations: dimension_numbers must be three strings, "
                        f"got {dimension_numbers!r}")
    n = len(specs[0])
    return tuple(conv_dimension_numbers((1,) * n, (1,) * n, specs))


def pcast(x, axis_name, *, to):
    """`x` unchanged: JAX's varying/invariant type casts have no effect on values."""
    del axis_name, to
    return x


def bitcast_convert_type(operand, new_dtype):
    """Reinterpret the bits of `operand` as `new_dtype` (of the same width; see
    `transforms.random.bitcast_convert_type`)."""
    from ..random import bitcast_convert_type as _bc
    return _bc(operand, new_dtype)
