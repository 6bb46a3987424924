"""`scipy.cluster.vq.vq` (`jax.scipy.cluster.vq`): assign observations to the nearest code
of a code book."""
from __future__ import annotations

import numpy as np

from ... import numpy as tnp
from ...core import get_aval

__all__ = ["vq"]


def vq(obs, code_book, check_finite=True):
    """`(codes, dists)`: for each observation (rows of `obs`, shape (n, d) or (n,) for
    d = 1) the index of the nearest code in `code_book` (shape (k, d) or (k,)) and the
    Euclidean distance to it, as `jax.scipy.cluster.vq.vq` (ties go to the lower index).
    The distances differentiate; batches and compiles."""
    obs, code_book = tnp.asarray(obs), tnp.asarray(code_book)
    dt = np.result_type(get_aval(obs).dtype, get_aval(code_book).dtype, np.float32)
    obs, code_book = tnp.astype(obs, dt), tnp.astype(code_book, dt)
    if get_aval(obs).ndim != get_aval(code_book).ndim:
        raise ValueError(f"vq: obs and code_book must have the same rank, got shapes "
                         f"{get_aval(obs).shape} and {get_aval(code_book).shape}")
    if get_aval(obs).ndim == 1:
        obs, code_book = obs[:, None], code_book[:, None]
    elif get_aval(obs).ndim != 2:
        raise ValueError(f"vq: obs must be 1-D or 2-D, got shape {get_aval(obs).shape}")
    if get_aval(obs).shape[1] != get_aval(code_book).shape[1]:
        raise ValueError(f"vq: obs has {get_aval(obs).shape[1]} features, code_book has "
                         f"{get_aval(code_book).shape[1]}")
    diff = obs[:, None, :] - code_book[None, :, :]
    d2 = tnp.sum(diff * diff, axis=-1)
    codes = tnp.argmin(d2, axis=1)
    best = tnp.take_along_axis(d2, codes[:, None], axis=1)[:, 0]
    return codes, tnp.sqrt(best)
