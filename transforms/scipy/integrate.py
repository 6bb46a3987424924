"""`scipy.integrate.trapezoid` (`jax.scipy.integrate`): the composite trapezoidal rule,
differentiable in `y` and `x`, batched and compiled like any composition."""
from __future__ import annotations

from .. import numpy as tnp
from ..core import get_aval

__all__ = ["trapezoid"]


def trapezoid(y, x=None, dx=1.0, axis=-1):
    """∫ y along `axis` by the trapezoidal rule, as `jax.scipy.integrate.trapezoid`:
    sample points `x` (1-D along `axis`, or the shape of `y`), else spacing `dx`.
    Differentiates, batches and compiles."""
    y = tnp.moveaxis(tnp.asarray(y), axis, -1)
    n = get_aval(y).shape[-1]
    if n == 0:
        return tnp.sum(y, axis=-1)
    mid = (y[..., 1:] + y[..., :-1]) * 0.5
    if x is None:
        return tnp.sum(mid, axis=-1) * dx
    x = tnp.asarray(x)
    if get_aval(x).ndim == 1:
        if get_aval(x).shape[0] != n:
            raise ValueError(f"trapezoid: x has length {get_aval(x).shape[0]}, y has {n} "
                             "samples along axis")
    else:
        x = tnp.moveaxis(x, axis, -1)
    return tnp.sum(mid * tnp.diff(x, axis=-1), axis=-1)
