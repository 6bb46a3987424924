"""Muon (Jordan et al., 2024) from `optax.contrib`: momentum whose update for each matrix is
replaced by its nearest semi-orthogonal matrix, computed with a few Newton-Schulz
iterations. Supported: the 'frobenius' and 'spectral' pre-normalisations, coefficient presets,
and weight dimension numbers given as one `MuonDimensionNumbers` for every leaf (or None:
2-D leaves as (reduction, output)). Not supported: the 'aol'/'schatten' preconditionings and
per-leaf dimension-number trees or functions.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional, Sequence, Union

import numpy as np

from transforms import tree
import transforms.numpy as tnp

from .base import GradientTransformation, init_empty_state
from .combine import chain, partition
from .transformations import add_decayed_weights, scale_by_learning_rate
from .tree_utils import tree_bias_correction, tree_cast, tree_update_moment, tree_zeros_like
from .updates import safe_increment

__all__ = ["MuonDimensionNumbers", "MuonState", "orthogonalize_via_newton_schulz",
           "scale_by_muon", "scale_by_shape", "muon"]

_STANDARD = (3.4445, -4.775, 2.0315)
_DION = ((4.0848, -6.8946, 2.927), (3.9505, -6.3029, 2.6377), (3.7418, -5.5913, 2.3037),
         (2.8769, -3.1427, 1.2046), (2.8366, -3.0525, 1.2012))
_PRESETS = {"standard": _STANDARD, "dion": _DION}


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a weight are its input (`reduction_axis`) and output (`output_axis`)
    dimensions; any others are batch axes, orthogonalised separately."""
    reduction_axis: Union[Sequence[int], int] = 0
    output_axis: Union[Sequence[int], int] = 1


def _axes(x, dn):
    red = (dn.reduction_axis,) if isinstance(dn.reduction_axis, int) else dn.reduction_axis
    out = (dn.output_axis,) if isinstance(dn.output_axis, int) else dn.output_axis
    nd = len(tnp.shape(x))
    return tuple(a % nd for a in red), tuple(a % nd for a in out)


def _fans(x, dn):
    red, out = _axes(x, dn)
    shape = tnp.shape(x)
    return math.prod(shape[a] for a in red), math.prod(shape[a] for a in out)


def _newton_schulz_2d(x, coeffs, ns_steps, preconditioning, eps):
    transposed = x.shape[0] > x.shape[1]
    if transposed:
        x = x.T
    if preconditioning == "frobenius":
        x = x / (tnp.sqrt(tnp.sum(x * x)) + eps)
    else:   # spectral: the largest singular value
        x = x / (tnp.linalg.norm(x, ord=2) + eps)
    rows = [coeffs] * ns_steps if coeffs.ndim == 1 else [coeffs[i] for i in range(
        coeffs.shape[0])]
    for c in rows:
        a = x @ x.T
        b = c[1] * a + c[2] * (a @ a)
        x = c[0] * x + b @ x
    return x.T if transposed else x


def orthogonalize_via_newton_schulz(x, ns_coeffs, ns_steps=5, preconditioning="frobenius",
                                    eps=1e-8, dimension_numbers=None):
    """The nearest (semi-)orthogonal matrix to `x` by `ns_steps` Newton-Schulz steps
    `X <- a X + (b A + c A^2) X`, `A = X X^T` (coefficients `ns_coeffs`, shape (3,) or one
    row per step), after dividing by the Frobenius (or spectral) norm. Leaves of rank > 2 need
    `dimension_numbers`."""
    if preconditioning not in ("frobenius", "spectral"):
        raise NotImplementedError(f"orthogonalize_via_newton_schulz: preconditioning "
                                  f"{preconditioning!r} is not supported (use 'frobenius' or "
                                  f"'spectral')")
    x = tnp.asarray(x)
    coeffs = tnp.asarray(ns_coeffs, dtype=x.dtype)   # may be traced (a state field)
    if coeffs.ndim > 2 or coeffs.shape[-1] != 3:
        raise ValueError(f"Newton-Schulz coefficients must have shape (3,) or (n, 3), got "
                         f"{tuple(coeffs.shape)}")
    if x.ndim == 2 and dimension_numbers is None:
        dimension_numbers = MuonDimensionNumbers()
    if dimension_numbers is None:
        raise ValueError(f"orthogonalize_via_newton_schulz: a leaf of shape {tuple(x.shape)} "
                         f"needs dimension_numbers")
    red, out = _axes(x, dimension_numbers)
    if set(red) & set(out):
        raise ValueError(f"reduction axes {red} and output axes {out} overlap")
    batch = tuple(a for a in range(x.ndim) if a not in red + out)
    perm = batch + red + out
    shp = [x.shape[a] for a in perm]
    nb = math.prod(shp[:len(batch)])
    flat = tnp.reshape(tnp.transpose(x, perm), (nb, math.prod(shp[len(batch):len(batch)
                                                                    + len(red)]), -1))
    mats = [_newton_schulz_2d(flat[i], coeffs, ns_steps, preconditioning, eps)
            for i in range(nb)]
    y = tnp.reshape(tnp.stack(mats), shp)
    inv = tuple(int(i) for i in np.argsort(perm))
    return tnp.transpose(y, inv)


class MuonState(NamedTuple):
    """The count, the momentum and the Newton-Schulz coefficients."""
    count: Any
    mu: Any
    ns_coeffs: Any


def _coeffs(ns_coeffs, ns_steps):
    c = np.asarray(_PRESETS[ns_coeffs] if isinstance(ns_coeffs, str) else ns_coeffs,
                   np.float32)
    if c.ndim > 2 or c.shape[-1] != 3:
        raise ValueError(f"ns_coeffs must have shape (3,) or (n, 3), got {c.shape}")
    if c.ndim == 2:
        if c.shape[0] > ns_steps:
            raise ValueError(f"Not enough coeffs to perform {ns_steps} steps")
        c = c[-ns_steps:]
    return c


def _dim_nums(weight_dimension_numbers):
    if weight_dimension_numbers is None or isinstance(weight_dimension_numbers,
                                                      MuonDimensionNumbers):
        return weight_dimension_numbers
    raise NotImplementedError("scale_by_muon: weight_dimension_numbers must be None or one "
                              "MuonDimensionNumbers for every leaf")


def scale_by_muon(ns_coeffs=_STANDARD, ns_steps=5, beta=0.95, eps=1e-8, mu_dtype=None, *,
                  nesterov: bool = True, adaptive: bool = False,
                  preconditioning: str = "frobenius",
                  weight_dimension_numbers: Optional[MuonDimensionNumbers] = None
                  ) -> GradientTransformation:
    """Muon's direction: the (Nesterov, bias-corrected) momentum of each leaf, orthogonalised
    by `orthogonalize_via_newton_schulz`; with `adaptive`, scaled by `<m^, O>`."""
    mu_dtype = None if mu_dtype is None else np.dtype(mu_dtype)
    dn = _dim_nums(weight_dimension_numbers)

    def init_fn(params):
        return MuonState(count=np.zeros([], np.int32), mu=tree_zeros_like(params, mu_dtype),
                         ns_coeffs=_coeffs(ns_coeffs, ns_steps))

    def update_fn(updates, state, params=None):
        del params
        mu = tree_update_moment(updates, state.mu, beta, 1)
        count = safe_increment(state.count)
        if nesterov:
            mu_hat = tree.map(lambda m, g: beta * m + (1 - beta) * g,
                              tree_bias_correction(mu, beta, safe_increment(count)),
                              tree_bias_correction(updates, beta, count))
        else:
            mu_hat = tree_bias_correction(mu, beta, count)
        out = tree.map(lambda x: orthogonalize_via_newton_schulz(
            x, state.ns_coeffs, ns_steps, preconditioning, eps, dn), mu_hat)
        if adaptive:
            out = tree.map(lambda x, y: tnp.sum(x * y) * y, mu_hat, out)
        return out, MuonState(count=count, mu=tree_cast(mu, mu_dtype),
                              ns_coeffs=state.ns_coeffs)
    return GradientTransformation(init_fn, update_fn)


def scale_by_shape(weight_dimension_numbers: Optional[MuonDimensionNumbers] = None,
                   consistent_rms=None) -> GradientTransformation:
    """Scale each matrix update for width transfer, `sqrt(max(1, fan_out / fan_in))`, or, with
    `consistent_rms`, by `sqrt(max(fan_in, fan_out)) * consistent_rms`."""
    dn = _dim_nums(weight_dimension_numbers) or MuonDimensionNumbers()

    def update_fn(updates, state, params=None):
        del params

        def f(u):
            fan_in, fan_out = _fans(u, dn)
            if consistent_rms is not None:
                s = math.sqrt(max(fan_in, fan_out)) * consistent_rms
            else:
                s = math.sqrt(max(1, fan_out / fan_in))
            return tnp.asarray(s, u.dtype) * u
        return tree.map(f, updates), state
    return GradientTransformation(init_empty_state, update_fn)


def muon(learning_rate, ns_coeffs=_STANDARD, ns_steps=5, beta=0.95, eps=1e-8,
         weight_decay=0.0, weight_decay_mask=None, mu_dtype=None, *, nesterov: bool = True,
         adaptive: bool = False, preconditioning: str = "frobenius", adam_b1=0.9,
         adam_b2=0.999, adam_eps_root=0.0, adam_weight_decay=0.0, adam_learning_rate=None,
         muon_weight_dimension_numbers: Optional[MuonDimensionNumbers] = None,
         consistent_rms=None):
    """Muon for the 2-D leaves (`scale_by_muon`, `scale_by_shape`, weight decay, `-lr`) and
    AdamW for the others (`adam_*` settings; its rate defaults to `learning_rate`), as
    `partition`. Only `muon_weight_dimension_numbers=None` is supported."""
    if muon_weight_dimension_numbers is not None:
        raise NotImplementedError("muon: only muon_weight_dimension_numbers=None (2-D leaves "
                                  "as (reduction, output)) is supported")
    from .alias import adamw
    if adam_learning_rate is None:
        adam_learning_rate = learning_rate

    def labels(params):
        return tree.map(lambda x: "muon" if len(tnp.shape(x)) == 2 else "adam", params)
    return partition(
        {"muon": chain(scale_by_muon(ns_coeffs=ns_coeffs, ns_steps=ns_steps, beta=beta,
                                     eps=eps, mu_dtype=mu_dtype, nesterov=nesterov,
                                     adaptive=adaptive, preconditioning=preconditioning),
                       scale_by_shape(consistent_rms=consistent_rms),
                       add_decayed_weights(weight_decay, weight_decay_mask),
                       scale_by_learning_rate(learning_rate)),
         "adam": adamw(learning_rate=adam_learning_rate, b1=adam_b1, b2=adam_b2, eps=eps,
                       eps_root=adam_eps_root, weight_decay=adam_weight_decay,
                       mu_dtype=mu_dtype, nesterov=nesterov)},
        labels)
