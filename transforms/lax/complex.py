"""Complex numbers: `real`, `imag`, `conj` and `complex` (as `jax.lax`).

Their transposes follow JAX's convention (the bilinear transpose, no conjugation), so
`vjp(abs)(z)` of a complex `z` is `conj(z) / |z|`, as in JAX. Under `jit` they lower to Numba's
complex scalars (`backend/numba/rules_complex.py`, which lists the complex operations the
backend supports; the others are a clear NotImplementedError).
"""
from __future__ import annotations

import numpy as np

from ..core import Primitive, ShapedArray, get_aval
from ..interpreters.batching import defvectorized
from ._util import as_array, check_same_dtypes, check_same_shapes


def real_dtype(dtype):
    """The real dtype of the same precision (`complex64` -> `float32`); others unchanged."""
    dtype = np.dtype(dtype)
    return np.finfo(dtype).dtype if dtype.kind == "c" else dtype


def complex_dtype(dtype):
    """The complex dtype of the same precision (`float32` -> `complex64`)."""
    return np.result_type(np.dtype(dtype), np.complex64)


def _require_complex(name, x):
    dt = get_aval(x).dtype
    if dt.kind != "c":
        raise TypeError(f"lax.{name} requires a complex operand, got {dt.name}")


def _unary(name, impl, out_dtype):
    p = Primitive(name)
    p.def_impl(lambda x: np.asarray(impl(x)))
    p.def_abstract_eval(lambda x: ShapedArray(x.shape, out_dtype(x.dtype)))
    defvectorized(p)
    return p


real_p = _unary("real", np.real, real_dtype)
imag_p = _unary("imag", np.imag, real_dtype)
conj_p = _unary("conj", np.conj, lambda d: d)
complex_p = Primitive("complex")


@complex_p.def_impl
def _complex_impl(x, y):
    out = np.empty(np.shape(x), complex_dtype(np.asarray(x).dtype))
    out.real, out.imag = x, y
    return out


@complex_p.def_abstract_eval
def _complex_abstract(x, y):
    check_same_shapes("complex", (x, y))
    check_same_dtypes("complex", (x, y))
    if x.dtype.kind != "f":
        raise TypeError(f"lax.complex requires floating-point operands, got {x.dtype.name}")
    return ShapedArray(x.shape, complex_dtype(x.dtype))


defvectorized(complex_p)


def real(x):
    x = as_array(x)
    _require_complex("real", x)
    return real_p.bind(x)


def imag(x):
    x = as_array(x)
    _require_complex("imag", x)
    return imag_p.bind(x)


def conj(x):
    x = as_array(x)
    if get_aval(x).dtype.kind != "c":           # as jax.lax.conj: a real input gives complex
        x = complex(x, _zeros(x))
    return conj_p.bind(x)


def complex(x, y):  # noqa: A001 - jax.lax's name
    from .elementwise import _prep
    x, y = _prep(as_array(x), as_array(y))
    return complex_p.bind(x, y)


def _zeros(x):
    from .elementwise import zeros_like_aval
    return zeros_like_aval(get_aval(x))


real_p.def_jvp(lambda p, t: (real(p[0]), real(t[0])))
imag_p.def_jvp(lambda p, t: (imag(p[0]), imag(t[0])))
conj_p.def_jvp(lambda p, t: (conj_p.bind(p[0]), conj_p.bind(t[0])))


@complex_p.def_jvp
def _complex_jvp(primals, tangents):
    x, y = primals
    tx, ty = tangents
    tx = _zeros(x) if tx is None else tx
    ty = _zeros(y) if ty is None else ty
    return complex(x, y), complex(tx, ty)


# transposes: the bilinear pairing Re(ct * t) (JAX's convention)
real_p.def_transpose(lambda ct, x: [complex(ct, _zeros(ct))])
imag_p.def_transpose(lambda ct, x: [complex(_zeros(ct), _neg(ct))])
conj_p.def_transpose(lambda ct, x: [conj_p.bind(ct)])


def _neg(x):
    from .elementwise import neg
    return neg(x)


@complex_p.def_transpose
def _complex_transpose(ct, x, y):
    from ._util import is_undefined
    return [real(ct) if is_undefined(x) else None,
            _neg(imag(ct)) if is_undefined(y) else None]
