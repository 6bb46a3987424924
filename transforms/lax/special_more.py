"""Special functions of `jax.lax` evaluated with SciPy on the host: `igamma` (regularised lower
incomplete gamma P(a, x)), `igammac` (Q = 1 - P), `igamma_grad_a`, `betainc` (regularised
incomplete beta I_x(a, b)), `zeta` (Hurwitz zeta).

Each is a `pure_callback` (elementwise, so `vmap` calls it once on the batch, and `jit` calls
back into Python at run time) wrapped in `custom_jvp` with JAX's derivatives: `igamma`/`igammac`
in `x` (closed form) and in `a` (`igamma_grad_a`), `betainc` in `x`, `zeta` in `q`.
Derivatives JAX does not define (betainc in a or b, zeta in x) raise as in JAX.
"""
from __future__ import annotations

import numpy as np

from ..core import get_aval
from ._util import as_array

__all__ = ["igamma", "igammac", "igamma_grad_a", "betainc", "zeta"]


def _host(name, *args):
    from scipy import special
    out = getattr(special, name)(*[np.asarray(a, np.float64) for a in args])
    return np.asarray(out)


def _call(fn, *args):
    """`fn` (NumPy, elementwise) on broadcast float operands, through `pure_callback`."""
    from ..callback import pure_callback
    from ..api import ShapeDtypeStruct
    from .shape import broadcast_to
    args = [as_array(a) for a in args]
    dts = [get_aval(a).dtype for a in args]
    dt = np.result_type(*[d if np.issubdtype(d, np.inexact) else np.float64 for d in dts])
    if not np.issubdtype(dt, np.floating):
        raise TypeError(f"special function of dtypes {dts}: operands must be real floats")
    shape = tuple(np.broadcast_shapes(*[get_aval(a).shape for a in args]))
    from .elementwise import convert_element_type
    args = [broadcast_to(convert_element_type(a, dt), shape) if get_aval(a).shape != shape
            else convert_element_type(a, dt) for a in args]

    def host(*vals):
        return np.asarray(fn(*vals), dtype=dt)
    return pure_callback(host, ShapeDtypeStruct(shape, dt), *args, vmap_method="expand_dims")


def _gammainc(a, x):
    return _host("gammainc", a, x)


def _gammaincc(a, x):
    return _host("gammaincc", a, x)


def _dgammainc_da(a, x):
    """dP(a, x)/da by a central difference of SciPy's P in float64 (relative step 1e-6)."""
    a64, x64 = np.asarray(a, np.float64), np.asarray(x, np.float64)
    h = np.maximum(1e-6 * np.abs(a64), 1e-9)
    lo = np.maximum(a64 - h, np.finfo(np.float64).tiny)
    return (_host("gammainc", a64 + h, x64) - _host("gammainc", lo, x64)) / (a64 + h - lo)


def _custom(primal, jvp_rule):
    from ..custom_derivatives import custom_jvp
    f = custom_jvp(primal)
    f.defjvp(jvp_rule)
    return f


def _zero_if_none(t, like):
    from .elementwise import instantiate
    return instantiate(t, like)


def _igamma_primal(a, x):
    return _call(_gammainc, a, x)


def _igamma_jvp(primals, tangents):
    from .. import numpy as tnp
    a, x = primals
    ta, tx = tangents
    out = _igamma(a, x)
    dx = tnp.exp(-x + (a - 1) * tnp.log(x) - _lgamma(a))
    t = dx * tx + igamma_grad_a(a, x) * ta
    return out, t


def _lgamma(a):
    from .special import lgamma
    return lgamma(a)


_igamma = _custom(_igamma_primal, _igamma_jvp)


def _igammac_primal(a, x):
    return _call(_gammaincc, a, x)


def _igammac_jvp(primals, tangents):
    a, x = primals
    ta, tx = tangents
    out, t = _igamma_jvp(primals, tangents)
    return _igammac(a, x), -t


_igammac = _custom(_igammac_primal, _igammac_jvp)


def igamma(a, x):
    """The regularised lower incomplete gamma function P(a, x) (SciPy's `gammainc`),
    differentiable in `x` and `a`."""
    return _igamma(as_array(a), as_array(x))


def igammac(a, x):
    """The regularised upper incomplete gamma function Q(a, x) = 1 - P(a, x)."""
    return _igammac(as_array(a), as_array(x))


def igamma_grad_a(a, x):
    """dP(a, x)/da (float64 central difference of SciPy's P on the host; about 8 digits)."""
    return _call(_dgammainc_da, as_array(a), as_array(x))


def _betainc_primal(a, b, x):
    return _call(lambda a, b, x: _host("betainc", a, b, x), a, b, x)


def _betainc_jvp(primals, tangents):
    from .. import numpy as tnp
    a, b, x = primals
    _, _, tx = tangents
    out = _betainc(a, b, x)
    log_beta = _lgamma(a) + _lgamma(b) - _lgamma(a + b)
    d = tnp.exp((a - 1) * tnp.log(x) + (b - 1) * tnp.log1p(-x) - log_beta)
    return out, d * tx


_betainc = _custom(_betainc_primal, _betainc_jvp)


def _no_derivative(name, what, *vals):
    """Raise if any of `vals` is being differentiated (a forward-mode tracer): the custom
    rule covers only the other operands."""
    from ..interpreters.jvp import JVPTracer
    if any(isinstance(v, JVPTracer) and v.tangent is not None for v in vals):
        raise NotImplementedError(f"{name}: differentiation with respect to {what} is not "
                                  f"implemented (as in JAX)")


def betainc(a, b, x):
    """The regularised incomplete beta function I_x(a, b) (SciPy's `betainc`),
    differentiable in `x`."""
    _no_derivative("betainc", "a or b", a, b)
    return _betainc(as_array(a), as_array(b), as_array(x))


def _zeta_primal(x, q):
    return _call(lambda x, q: _host("zeta", x, q), x, q)


def _zeta_jvp(primals, tangents):
    x, q = primals
    _, tq = tangents
    return _zeta(x, q), -x * _zeta(x + 1, q) * tq


_zeta = _custom(_zeta_primal, _zeta_jvp)


def zeta(x, q):
    """The Hurwitz zeta function sum_k (k + q) ** -x (SciPy's `zeta`), differentiable in `q`."""
    _no_derivative("zeta", "x", x)
    return _zeta(as_array(x), as_array(q))
