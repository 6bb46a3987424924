"""optax's small linear-algebra helpers: the dominant eigenpair by power iteration and the
inverse p-th root of a symmetric positive semi-definite matrix by a coupled Newton iteration
(as used by Shampoo-style preconditioners). Both run as `lax.while_loop`s, so they trace."""
from __future__ import annotations

import numpy as np

from transforms import lax
from transforms import random as _random
import transforms.numpy as tnp

from .tree_utils import tree_norm, tree_scale, tree_sub, tree_vdot

__all__ = ["power_iteration", "matrix_inverse_pth_root"]


def _normalize(t):
    return tree_scale(1.0 / tree_norm(t), t)


def power_iteration(matrix, *, v0=None, num_iters=100, error_tolerance=1e-6, precision=None,
                    key=None):
    """The dominant eigenvalue and its unit eigenvector of `matrix` (an array, or a function
    `v -> M v` on pytrees, which then needs `v0`). Iterates `z = M v / ||M v||` until
    `||M v - lambda v|| / |lambda| < error_tolerance` or `num_iters` steps; the start vector
    defaults to uniform(-1, 1) noise from `key` (PRNGKey(0)). Returns `(eigenvalue,
    eigenvector)`."""
    del precision   # matmuls here are exact float products
    if callable(matrix):
        mvp = matrix
        if v0 is None:
            raise ValueError("power_iteration: v0 is required when matrix is a function")
    else:
        matrix = tnp.asarray(matrix)
        mvp = lambda v: matrix @ v  # noqa: E731
        if v0 is None:
            key = _random.PRNGKey(0) if key is None else key
            v0 = _random.uniform(key, tuple(matrix.shape[-1:]), matrix.dtype, minval=-1.0,
                                 maxval=1.0)
    v0 = _normalize(v0)

    def cond(carry):
        vec, z, eig, i = carry
        res = tree_norm(tree_sub(z, tree_scale(eig, vec)))
        # |res / eig| < tol, written without the division (eig is 0 before the first step)
        converged = tnp.abs(res) < error_tolerance * tnp.abs(eig)
        return tnp.logical_and(tnp.logical_not(converged), i < num_iters)

    def body(carry):
        _, z, _, i = carry
        vec = _normalize(z)
        z = mvp(vec)
        return vec, z, tnp.asarray(tree_vdot(vec, z)), i + 1

    z0 = mvp(v0)
    eig0 = tnp.zeros((), dtype=tnp.asarray(tree_vdot(v0, z0)).dtype)
    _, z, eig, _ = lax.while_loop(cond, body, (v0, z0, eig0, np.asarray(0, np.int32)))
    return eig, _normalize(z)


def matrix_inverse_pth_root(matrix, p: int, num_iters=100, ridge_epsilon=1e-6,
                            error_tolerance=1e-6, precision=None):
    """`(matrix + ridge)^(-1/p)` for a symmetric PSD `matrix` and `p` in {1, 2, 4, 8}, by the
    coupled Newton iteration (Higham; Anil et al. 2020): with `M_0 = z A`, `H_0 = z^(1/p) I`,
    `z = (1 + p) / (2 ||A||_F)`, repeat `X = (1 - a) I + a M` (a = -1/p),
    `M <- X^p M`, `H <- H X` while the error `max|M - I|` shrinks and exceeds
    `error_tolerance`. The ridge is `ridge_epsilon * max(lambda_max, 1e-16)`. Returns
    `(H, error)`, computed in float32 as optax does."""
    del precision
    matrix = tnp.asarray(matrix)
    n = matrix.shape[0]
    p_int = int(p)
    if p_int not in (1, 2, 4, 8):
        raise ValueError(f"matrix_inverse_pth_root: p must be 1, 2, 4 or 8, got {p}")
    alpha = np.float32(-1.0 / p_int)
    eye = tnp.eye(n, dtype=np.float32)
    max_ev, _ = power_iteration(matrix, num_iters=100, error_tolerance=1e-6)
    ridge = ridge_epsilon * tnp.maximum(max_ev, 1e-16)

    def mat_pow(m):
        for _ in range(int(np.log2(p_int))):
            m = m @ m
        return m

    if n == 1:
        return (matrix + ridge) ** alpha, 0
    damped = matrix + ridge * eye
    z = (1 + p_int) / (2 * tnp.sqrt(tnp.sum(damped * damped)))
    m0 = damped * z
    err0 = tnp.max(tnp.abs(m0 - eye))
    h0 = eye * tnp.power(z, 1.0 / p_int)

    def cond(c):
        i, _, _, _, err, run = c
        return tnp.logical_and(i < num_iters, tnp.logical_and(err > error_tolerance, run))

    def body(c):
        i, m, h, _, err, _ = c
        x = (1 - alpha) * eye + alpha * m
        new_m = mat_pow(x) @ m
        new_h = h @ x
        new_err = tnp.max(tnp.abs(new_m - eye))
        return i + 1, new_m, new_h, h, new_err, new_err < err * 1.2

    init = (np.asarray(0, np.int32), m0, h0, h0, err0, np.asarray(True))
    _, m, h, old_h, _, ok = lax.while_loop(cond, body, init)
    error = tnp.max(tnp.abs(m - eye))
    okf = tnp.asarray(ok, old_h.dtype)
    return tnp.asarray(okf * h + (1 - okf) * old_h, dtype=matrix.dtype), error
