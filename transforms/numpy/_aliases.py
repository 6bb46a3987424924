"""NumPy 2 / array-API spellings that JAX code uses: `acos`, `pow`, `permute_dims`,
`bitwise_left_shift`, the dtype aliases (`bool`, `double`, `int_`, ...), NumPy's abstract scalar
classes, `isdtype`, `unstack`, `bitwise_count`.

Most are the same function object as their NumPy-1 name (so they transform exactly as it does);
the dtype aliases are the same scalar types as `tnp.float64` etc.
"""
from __future__ import annotations

import numpy as np

from .. import lax
from ..core import get_aval
from . import _math_extra, _ops, _shape_ops
from ._construct import complex64, complex128

# --- function aliases (NumPy 2 names of NumPy-1 functions; same objects) -----------------------
acos, asin, atan, atan2 = _ops.arccos, _ops.arcsin, _ops.arctan, _ops.arctan2
acosh, asinh, atanh = _math_extra.arccosh, _ops.arcsinh, _ops.arctanh
pow = _ops.power  # noqa: A001 - NumPy 2's name
bitwise_invert = _ops.invert
bitwise_left_shift, bitwise_right_shift = _ops.left_shift, _ops.right_shift

# --- dtype aliases (NumPy 2 / JAX spellings; JAX's `float_`/`int_`/`complex_` are the 64-bit
# types with x64 on, which is this library's only mode) -----------------------------------------
bool = _ops.bool_  # noqa: A001 - jnp.bool
double = float_ = _ops.float64
single = _ops.float32
int_ = _ops.int64
uint = _ops.uint64
cdouble = complex_ = complex128
csingle = complex64
object_ = np.object_

# NumPy's abstract scalar classes (for issubdtype), the same objects as NumPy's, as in JAX
generic, signedinteger, unsignedinteger = np.generic, np.signedinteger, np.unsignedinteger
complexfloating, character, flexible = np.complexfloating, np.character, np.flexible
ComplexWarning = np.exceptions.ComplexWarning
iterable = np.iterable


def permute_dims(a, /, axes):
    """Mirrors `numpy.permute_dims` (the array-API name of `transpose`, `axes` required).
    Differentiable; batches under `vmap` and compiles under `jit`."""
    return _shape_ops.transpose(a, axes)


def matrix_transpose(x, /):
    """Mirrors `numpy.matrix_transpose`: swaps the last two axes (needs ndim >= 2).
    Differentiable; batches under `vmap` and compiles under `jit`."""
    nd = get_aval(_ops.asarray(x)).ndim
    if nd < 2:
        raise ValueError(f"matrix_transpose: x must have at least 2 dimensions, got ndim={nd}")
    return _shape_ops.swapaxes(x, -1, -2)


def unstack(x, /, *, axis=0):
    """Mirrors `numpy.unstack` (NumPy 2.1): the tuple of slices of `x` along `axis`.
    Differentiable; batches under `vmap` and compiles under `jit`."""
    x = _ops.asarray(x)
    nd = get_aval(x).ndim
    if nd == 0:
        raise ValueError("unstack: x must have at least 1 dimension")
    moved = _shape_ops.moveaxis(x, axis, 0)
    return tuple(moved[i] for i in range(get_aval(moved).shape[0]))


def isrealobj(x):
    """Mirrors `numpy.isrealobj`: True unless the dtype of `x` is complex. Answers from the
    dtype alone (also on traced arrays), as a Python bool."""
    return not _ops.iscomplexobj(x)


_KINDS = {"bool": lambda dt: dt == np.bool_,
          "signed integer": lambda dt: dt.kind == "i",
          "unsigned integer": lambda dt: dt.kind == "u",
          "integral": lambda dt: dt.kind in "iu",
          "real floating": lambda dt: dt.kind == "f",
          "complex floating": lambda dt: dt.kind == "c",
          "numeric": lambda dt: dt.kind in "iufc"}


def isdtype(dtype, kind):
    """Mirrors `numpy.isdtype` (array API): whether `dtype` is of `kind`, a dtype, one of the
    names 'bool', 'signed integer', 'unsigned integer', 'integral', 'real floating',
    'complex floating', 'numeric', or a tuple of those. Static: answers from the dtype, as a
    Python bool (never traced, so nothing to differentiate or batch)."""
    dt = np.dtype(dtype)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for k in kinds:
        if isinstance(k, str):
            if k not in _KINDS:
                raise ValueError(f"isdtype: kind must be a dtype or one of {sorted(_KINDS)}, "
                                 f"got {k!r}")
            if _KINDS[k](dt):
                return True
        elif dt == np.dtype(k):
            return True
    return False


# the SWAR masks of a population count, for 64 bits (narrower types use the low bits)
_M1, _M2, _M4 = 0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F


def bitwise_count(x, /):
    """Mirrors `numpy.bitwise_count`: the number of 1 bits in `abs(x)` of an integer or
    boolean array, as uint8 (NumPy's and JAX's dtype). Computed with shifts and masks on the
    unsigned type of the same width, so it batches under `vmap` and compiles under `jit`;
    integer result: no derivative."""
    x = _ops.asarray(x)
    dt = get_aval(x).dtype
    if dt == np.bool_:
        return lax.convert_element_type(x, np.uint8)
    if dt.kind not in "iu":
        raise TypeError(f"bitwise_count: x must be an integer or boolean array, got {dt}")
    bits = dt.itemsize * 8
    udt = np.dtype(f"u{dt.itemsize}")
    v = _ops.abs(x) if dt.kind == "i" else x
    v = lax.convert_element_type(v, udt)

    def c(k):
        return np.asarray(k & ((1 << bits) - 1), udt)

    def shr(a, k):
        return lax.shift_right_logical(a, np.asarray(k, udt))

    v = lax.sub(v, lax.bitwise_and(shr(v, 1), c(_M1)))
    v = lax.add(lax.bitwise_and(v, c(_M2)), lax.bitwise_and(shr(v, 2), c(_M2)))
    v = lax.bitwise_and(lax.add(v, shr(v, 4)), c(_M4))
    # the byte counts sum into the low byte
    shift = 8
    while shift < bits:
        v = lax.add(v, shr(v, shift))
        shift *= 2
    return lax.convert_element_type(lax.bitwise_and(v, c(0xFF)), np.uint8)
