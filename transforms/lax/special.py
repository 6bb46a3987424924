"""Special functions as elementwise primitives (`jax.lax` names): lgamma, digamma,
polygamma, erfc, erf_inv, bessel_i0e, bessel_i1e.

Eagerly they are SciPy's (float64 accuracy, computed in the operand's precision); compiled,
their scalar kernels live in `backend/numba/kernels_special.py`. Derivatives:
lgamma' = digamma, digamma' = polygamma(1), polygamma(n)' = polygamma(n + 1),
erfc' = -2/√π e^{-x²}, erf_inv' = √π/2 e^{y²}, i0e' = i1e − sign(x) i0e,
i1e' = i0e − i1e (sign(x) + 1/x) (and 1/2 at 0).
"""
from __future__ import annotations

import math

import numpy as np

from ..interpreters.batching import defvectorized
from ..core import Primitive
from .elementwise import ELEMENTWISE, div, exp, mul, neg, select, sign, sub, add, eq
from ._util import as_array


def _scipy(name):
    def impl(x, **params):
        import scipy.special as sp
        x = np.asarray(x)
        with np.errstate(all="ignore"):
            out = getattr(sp, name)(*(list(params.values()) + [x]))
        return np.asarray(out).astype(x.dtype, copy=False)
    return impl


def _unary(name, scipy_name):
    p = Primitive(name)
    p.def_impl(_scipy(scipy_name))

    def abstract(x, **_):
        if x.dtype not in (np.float32, np.float64):
            raise TypeError(f"{name}: expected a float32 or float64 operand, got {x.dtype}")
        return x
    p.def_abstract_eval(abstract)
    defvectorized(p)
    ELEMENTWISE.add(name)
    return p


lgamma_p = _unary("lgamma", "gammaln")
digamma_p = _unary("digamma", "digamma")
polygamma_p = _unary("polygamma", "polygamma")
erfc_p = _unary("erfc", "erfc")
erf_inv_p = _unary("erf_inv", "erfinv")
bessel_i0e_p = _unary("bessel_i0e", "i0e")
bessel_i1e_p = _unary("bessel_i1e", "i1e")


def _float(x):
    x = as_array(x)
    from ..core import get_aval
    if get_aval(x).dtype not in (np.float32, np.float64):
        from .elementwise import convert_element_type
        x = convert_element_type(x, np.float64)
    return x


def lgamma(x):
    """log |Γ(x)|."""
    return lgamma_p.bind(_float(x))


def digamma(x):
    """ψ(x) = d/dx log Γ(x)."""
    return digamma_p.bind(_float(x))


def polygamma(m, x):
    """ψ⁽ᵐ⁾(x) for a static integer order m ≥ 0."""
    m = int(m)
    if m < 0:
        raise ValueError(f"polygamma: order must be a non-negative integer, got {m}")
    if m == 0:
        return digamma(x)
    return polygamma_p.bind(_float(x), n=m)


def erfc(x):
    """1 − erf(x), accurate where erf(x) is close to 1."""
    return erfc_p.bind(_float(x))


def erf_inv(x):
    """The inverse of erf on (−1, 1) (±inf at ±1, NaN outside)."""
    return erf_inv_p.bind(_float(x))


def bessel_i0e(x):
    """exp(−|x|) I₀(x)."""
    return bessel_i0e_p.bind(_float(x))


def bessel_i1e(x):
    """exp(−|x|) I₁(x)."""
    return bessel_i1e_p.bind(_float(x))


def _jvp(p, deriv):
    def rule(primals, tangents, **params):
        x, = primals
        y = p.bind(x, **params)
        if tangents[0] is None:
            return y, None
        return y, mul(tangents[0], deriv(x, y, **params))
    p.def_jvp(rule)


def _c(v, like):
    from ..core import get_aval
    return np.full(get_aval(like).shape, v, get_aval(like).dtype)


_jvp(lgamma_p, lambda x, y: digamma(x))
_jvp(digamma_p, lambda x, y: polygamma_p.bind(x, n=1))
_jvp(polygamma_p, lambda x, y, n: polygamma_p.bind(x, n=n + 1))
_jvp(erfc_p, lambda x, y: mul(exp(neg(mul(x, x))), _c(-2.0 / math.sqrt(math.pi), x)))
_jvp(erf_inv_p, lambda x, y: mul(exp(mul(y, y)), _c(math.sqrt(math.pi) / 2.0, x)))
_jvp(bessel_i0e_p, lambda x, y: sub(bessel_i1e(x), mul(sign(x), y)))


def _i1e_deriv(x, y):
    zero = eq(x, _c(0.0, x))
    safe_x = select(zero, _c(1.0, x), x)
    d = sub(bessel_i0e(x), mul(y, add(sign(x), div(_c(1.0, x), safe_x))))
    return select(zero, _c(0.5, x), d)


_jvp(bessel_i1e_p, _i1e_deriv)
