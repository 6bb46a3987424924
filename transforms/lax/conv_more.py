"""Convolution helpers of `jax.lax`: `conv_shape_tuple`, `conv_transpose_shape_tuple`,
`conv_general_dilated_patches` (patches as a convolution with a one-hot filter, as JAX)."""
from __future__ import annotations

import math
import operator

import numpy as np

from ..core import get_aval
from ._util import as_array
from .conv import conv_dimension_numbers, conv_general_dilated, conv_transpose, padtype_to_pads

__all__ = ["conv_shape_tuple", "conv_transpose_shape_tuple", "conv_general_dilated_patches"]


def conv_shape_tuple(lhs_shape, rhs_shape, strides, pads, batch_group_count=1):
    """The output shape of a convolution of an `NC...` input with an `OI...` kernel:
    `(N // batch_group_count, O) + spatial`, each spatial size
    `max(0, (in + pad_lo + pad_hi - k) // stride + 1)`; `pads` are pairs or a padding name."""
    lhs_shape, rhs_shape = tuple(lhs_shape), tuple(rhs_shape)
    if len(lhs_shape) != len(rhs_shape):
        raise TypeError(f"conv_shape_tuple: lhs {lhs_shape} and rhs {rhs_shape} differ in rank")
    if isinstance(pads, str):
        pads = padtype_to_pads(lhs_shape[2:], rhs_shape[2:], strides, pads)
    if len(pads) != len(lhs_shape) - 2:
        raise TypeError(f"conv_shape_tuple: need {len(lhs_shape) - 2} padding pairs, got {pads}")
    out = []
    for i, k, s, (lo, hi) in zip(lhs_shape[2:], rhs_shape[2:], strides, pads):
        out.append(max(0, (i + lo + hi - k) // s + 1))
    return (lhs_shape[0] // batch_group_count, rhs_shape[0]) + tuple(out)


def conv_transpose_shape_tuple(lhs_shape, rhs_shape, window_strides, padding,
                               dimension_numbers):
    """The output shape of `conv_transpose(lhs, rhs, window_strides, padding,
    dimension_numbers=dimension_numbers)` for inputs of these shapes."""
    from ..api import eval_shape, ShapeDtypeStruct
    out = eval_shape(lambda a, b: conv_transpose(a, b, window_strides, padding,
                                                 dimension_numbers=dimension_numbers),
                     ShapeDtypeStruct(tuple(lhs_shape), np.float32),
                     ShapeDtypeStruct(tuple(rhs_shape), np.float32))
    return tuple(out.shape)


def conv_general_dilated_patches(lhs, filter_shape, window_strides, padding, lhs_dilation=None,
                                 rhs_dilation=None, dimension_numbers=None, precision=None,
                                 preferred_element_type=None):
    """The patches a convolution with a `filter_shape` window would see, as output channels:
    `C * prod(filter_shape)` of them, channel-major (channel `c`, window position `k` at
    `c * prod(filter_shape) + k`), laid out as `dimension_numbers`' output (as
    `jax.lax.conv_general_dilated_patches`; computed as JAX does, by a grouped convolution with
    a one-hot filter)."""
    x = as_array(lhs)
    a = get_aval(x)
    filter_shape = tuple(operator.index(f) for f in filter_shape)
    nsp = a.ndim - 2
    if len(filter_shape) != nsp:
        raise ValueError(f"conv_general_dilated_patches: filter_shape {filter_shape} must have "
                         f"{nsp} entries (the spatial rank of lhs {a.shape})")
    fs = math.prod(filter_shape)
    dn = conv_dimension_numbers(a.shape, (1, 1) + filter_shape, dimension_numbers)
    c = a.shape[dn.lhs_spec[1]]
    canon = np.zeros((c * fs, 1) + filter_shape, dtype=a.dtype)
    eye = np.eye(fs, dtype=a.dtype).reshape((fs,) + filter_shape)
    for ch in range(c):
        canon[ch * fs:(ch + 1) * fs, 0] = eye
    rhs = np.transpose(canon, np.argsort(dn.rhs_spec))
    return conv_general_dilated(x, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
                                rhs_dilation=rhs_dilation, dimension_numbers=dn,
                                feature_group_count=c, precision=precision,
                                preferred_element_type=preferred_element_type)
