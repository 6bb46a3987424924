"""Spherical harmonics (part of `transforms.scipy.special`): `sph_harm_y` by the stable
three-term recurrence of fully normalised associated Legendre functions, unrolled up to a
static maximum degree, so it batches and compiles and differentiates in the angles."""
from __future__ import annotations

import math

import numpy as np

from .. import lax
from .. import numpy as tnp
from ..core import Tracer, get_aval

__all__ = ["sph_harm_y"]


def sph_harm_y(n, m, theta, phi, *, diff_n=0, n_max=None):
    """The spherical harmonic Yₙᵐ(θ, φ) of degree `n` and order `m` (|m| ≤ n) at polar angle
    `theta` and azimuth `phi`, as `jax.scipy.special.sph_harm_y` and SciPy's (orthonormal,
    with the Condon-Shortley phase; Yₙ⁻ᵐ = (−1)ᵐ conj Yₙᵐ); complex result, 0 where |m| > n.
    `n_max` (static) bounds the degree; it defaults to max(n), which then must be concrete.
    Only `diff_n=0` is supported. Batches and compiles; differentiates in theta and phi."""
    if diff_n != 0:
        raise NotImplementedError("sph_harm_y: only diff_n=0 is supported")
    if n_max is None:
        if isinstance(n, Tracer):
            raise ValueError("sph_harm_y: pass a static n_max when n is traced")
        n_max = int(np.max(np.asarray(n)))
    n_max = int(n_max)
    n, m = tnp.asarray(n), tnp.asarray(m)
    theta, phi = tnp.asarray(theta), tnp.asarray(phi)
    dt = np.result_type(get_aval(theta).dtype, get_aval(phi).dtype, np.float32)
    if dt not in (np.float32, np.float64):
        dt = np.dtype(np.float64)
    n, m, theta, phi = tnp.broadcast_arrays(n, m, tnp.astype(theta, dt), tnp.astype(phi, dt))
    nf, mf = tnp.astype(n, dt), tnp.astype(m, dt)
    am = tnp.abs(mf)
    x = tnp.cos(theta)
    s = tnp.sin(theta)
    # P̄ₘᵐ = (−1)ᵐ √((2m+1)/(4π) · (2m)!/(4ᵐ m!²)) sinᵐθ (in logs: m varies per element)
    log_c = 0.5 * (tnp.log(2 * am + 1) - math.log(4 * math.pi) + lax.lgamma(2 * am + 1)
                   - 2 * lax.lgamma(am + 1) - am * math.log(4))
    sign = tnp.where(tnp.equal(tnp.remainder(am, 2), 1), -1.0, 1.0)
    s_safe = tnp.where(tnp.equal(s, 0), 1.0, tnp.abs(s))
    pmm = sign * tnp.exp(log_c + am * tnp.log(s_safe))
    pmm = tnp.where(tnp.equal(s, 0), tnp.where(tnp.equal(am, 0), pmm, 0.0), pmm)
    # walk l = |m| … n_max: keep the value at l = n
    p_prev = tnp.zeros_like(x)
    p_cur = pmm
    out = tnp.where(tnp.equal(nf, am), pmm, 0.0)
    for l in range(1, n_max + 1):
        lf = float(l)
        active = tnp.greater(lf, am)               # this step computes P̄ₗᵐ for l > |m|
        first = tnp.equal(lf, am + 1)
        denom = tnp.where(active, lf * lf - am * am, 1.0)
        a_l = tnp.sqrt((4 * lf * lf - 1) / denom)
        lm1 = lf - 1
        has_prev = tnp.greater(lm1, am)
        denom_prev = tnp.where(has_prev, lm1 * lm1 - am * am, 1.0)
        a_prev = tnp.sqrt(tnp.where(has_prev, (4 * lm1 * lm1 - 1) / denom_prev, 1.0))
        nxt = tnp.where(first, x * tnp.sqrt(2 * am + 3) * p_cur,
                        a_l * (x * p_cur - p_prev / a_prev))
        p_prev = tnp.where(active, p_cur, p_prev)
        p_cur = tnp.where(active, nxt, p_cur)
        out = tnp.where(tnp.logical_and(active, tnp.equal(nf, lf)), p_cur, out)
    out = tnp.where(tnp.greater(am, nf), 0.0, out)
    # Yₙᵐ = P̄ₙ^{|m|} e^{imφ}; negative m: (−1)^m conj(Yₙ^{|m|}) = (−1)^m P̄ e^{imφ}
    neg_sign = tnp.where(tnp.logical_and(tnp.less(mf, 0), tnp.equal(tnp.remainder(am, 2), 1)),
                         -1.0, 1.0)
    mag = tnp.astype(out * neg_sign, dt)
    return lax.complex(mag * tnp.cos(mf * phi), mag * tnp.sin(mf * phi))
