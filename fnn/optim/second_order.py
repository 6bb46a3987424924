"""`optax.second_order`: Hessian-vector products and diagonal curvature estimates for a loss
`loss(params, inputs, targets) -> scalar`, on pytree parameters."""
from __future__ import annotations

import transforms as _T
import transforms.numpy as tnp

from ._flatten import from_vector, to_vector

__all__ = ["fisher_diag", "hessian_diag", "hvp"]


def hvp(loss, v, params, inputs, targets):
    """The Hessian of `loss` at `params` times the flat vector `v` (a 1-D array as long as all
    parameters together), returned as a tree like `params` (forward-over-reverse)."""
    return _T.jvp(lambda p: _T.grad(loss)(p, inputs, targets), (params,),
                  (from_vector(params, tnp.asarray(v)),))[1]


def hessian_diag(loss, params, inputs, targets):
    """The diagonal of the Hessian of `loss` at `params`, as a flat vector (one Hessian-vector
    product per parameter element: for small models)."""
    n = to_vector(params).shape[0]
    eye = tnp.eye(n, dtype=to_vector(params).dtype)
    return tnp.stack([to_vector(hvp(loss, eye[i], params, inputs, targets))[i] for i in range(n)])


def fisher_diag(negative_log_likelihood, params, inputs, targets):
    """The empirical Fisher diagonal: the squared gradient of the negative log-likelihood at
    `params`, as a flat vector."""
    return tnp.square(to_vector(_T.grad(negative_log_likelihood)(params, inputs, targets)))
