"""Applying updates, norms, and the small tree/numeric helpers the optimisers share.

Everything here is traceable: array math goes through `transforms.numpy`, Python branches
only look at static things (dtypes, whether a leaf is None).
"""
from __future__ import annotations

import numpy as np

from transforms import tree
from transforms import Tracer
from transforms.lax import stop_gradient
import transforms.numpy as tnp

__all__ = [
    "apply_updates", "incremental_update", "periodic_update", "global_norm",
    "safe_int32_increment", "safe_increment", "abs_sq", "safe_norm", "tree_zeros_like",
    "tree_ones_like", "tree_full_like", "tree_add", "tree_sub", "tree_scalar_mul",
    "tree_vdot", "tree_l2_norm", "tree_cast", "tree_update_moment",
    "tree_update_moment_per_elem_norm", "tree_update_infinity_moment", "tree_bias_correction",
]


# ---------------------------------------------------------------------------------------------
# scalar helpers
# ---------------------------------------------------------------------------------------------

def is_number(x) -> bool:
    """A Python int/float (weak under NEP 50); NumPy scalars (np.float64 subclasses float)
    and bools are not."""
    return isinstance(x, (int, float)) and not isinstance(x, (bool, np.generic))


def dtype_of(x):
    return x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype


def cast_scalar(v, like):
    """Hyperparameter `v` as a multiplier for array `like` that keeps `like`'s dtype.

    Python numbers are weak (NEP 50) and pass unchanged; an array hyperparameter (from a
    schedule or `inject_hyperparams`) is cast to `like`'s floating dtype, as JAX would do
    without x64, so float32 parameters never drift to float64.
    """
    if is_number(v):
        return v
    dt = dtype_of(like)
    if not np.issubdtype(dt, np.inexact) or dtype_of(v) == dt:
        return v
    return tnp.asarray(v, dtype=dt)


def safe_int32_increment(count):
    """`count + 1`, saturating at the dtype's maximum instead of wrapping around."""
    dt = dtype_of(count)
    if np.issubdtype(dt, np.integer):
        max_value = np.iinfo(dt).max
    else:
        max_value = np.finfo(dt).max
    one = np.asarray(1, dt)
    return tnp.where(count < max_value, count + one, np.asarray(max_value, dt))


safe_increment = safe_int32_increment


def abs_sq(x):
    """`|x|**2` elementwise (the engine's arrays are real, so `x * x`)."""
    return tnp.square(x)


def safe_norm(x, min_norm, ord=None, axis=None, keepdims=False):  # noqa: A002 - numpy's name
    """`max(||x||, min_norm)` whose gradient is finite even where `||x|| == 0`.

    The 2-norm (Frobenius for matrices) over `axis`; `ord` other than None/2 is unsupported.
    """
    if ord not in (None, 2, "fro"):
        raise NotImplementedError("safe_norm supports only the 2-norm")
    # the first norm only feeds comparisons: no derivative (avoids 1/sqrt(0) in its tangent)
    norm = tnp.sqrt(tnp.sum(abs_sq(stop_gradient(x)), axis=axis, keepdims=True))
    x = tnp.where(norm <= min_norm, tnp.ones_like(x), x)
    if not keepdims:
        norm = tnp.squeeze(norm, axis=axis)
    masked_norm = tnp.sqrt(tnp.sum(abs_sq(x), axis=axis, keepdims=keepdims))
    return tnp.where(norm <= min_norm, cast_scalar(min_norm, masked_norm), masked_norm)


# ---------------------------------------------------------------------------------------------
# trees
# ---------------------------------------------------------------------------------------------

def apply_updates(params, updates):
    """`params + updates` leafwise, each result cast back to its parameter's dtype.

    `None` leaves in `params` stay `None`. A frozen parameter (zero update) comes back
    bit-identical, `-0.0` and NaN payloads included (`-0.0 + 0.0` would be `+0.0`): eagerly
    an all-zero update returns the parameter array itself; under `jit` the compiler drops
    `p + zeros` when the zeros are known at trace time (`set_to_zero`, `freeze`), and the
    compiled step returns the parameter array itself as well.
    """
    def f(p, u):
        if p is None:
            return None
        if _zero_update(p, u):
            return p
        out = tnp.add(p, u)
        pdt = dtype_of(p)
        if dtype_of(out) != pdt:
            out = tnp.asarray(out, dtype=pdt)
        return out
    return tree.map(f, params, updates, is_leaf=lambda x: x is None)


def _zero_update(p, u):
    """Whether concrete update `u` is zero everywhere and leaves `p`'s shape as it is (never
    true for traced values: their zeros are the compiler's to drop)."""
    if isinstance(p, Tracer) or isinstance(u, Tracer) or not isinstance(p, np.ndarray):
        return False
    u = np.asarray(u)
    return u.dtype.kind in "biufc" and np.broadcast_shapes(p.shape, u.shape) == p.shape \
        and not u.any()


def incremental_update(new_tensors, old_tensors, step_size):
    """Polyak averaging: `step_size * new + (1 - step_size) * old` leafwise."""
    return tree.map(
        lambda new, old: cast_scalar(step_size, new) * new
        + (1.0 - cast_scalar(step_size, new)) * old, new_tensors, old_tensors)


def periodic_update(new_tensors, old_tensors, steps, update_period):
    """`new_tensors` when `steps % update_period == 0`, else `old_tensors` (traceable)."""
    if not isinstance(steps, Tracer) and not isinstance(update_period, Tracer):
        return new_tensors if int(steps) % int(update_period) == 0 else old_tensors
    pred = tnp.equal(tnp.remainder(steps, update_period), 0)
    return tree.map(lambda n, o: tnp.where(pred, n, o), new_tensors, old_tensors)


def global_norm(updates):
    """`sqrt(sum over leaves of sum(|x|**2))`: the 2-norm of all leaves as one vector."""
    return tnp.sqrt(sum(tnp.sum(abs_sq(x)) for x in tree.leaves(updates)))


tree_l2_norm = global_norm


def tree_zeros_like(t, dtype=None):
    """Zeros shaped like every leaf (in `dtype` if given)."""
    return tree.map(lambda x: tnp.zeros_like(x, dtype=dtype), t)


def tree_ones_like(t, dtype=None):
    """Ones shaped like every leaf (in `dtype` if given)."""
    return tree.map(lambda x: tnp.ones_like(x, dtype=dtype), t)


def tree_full_like(t, fill_value, dtype=None):
    """`fill_value` shaped like every leaf (in `dtype` if given)."""
    return tree.map(lambda x: tnp.full_like(x, fill_value, dtype=dtype), t)


def tree_add(a, *rest):
    return tree.map(lambda x, *ys: sum(ys, x), a, *rest)


def tree_sub(a, b):
    return tree.map(lambda x, y: x - y, a, b)


def tree_scalar_mul(scalar, t):
    return tree.map(lambda x: cast_scalar(scalar, x) * x, t)


def tree_vdot(a, b):
    return sum(tnp.sum(x * y) for x, y in zip(tree.leaves(a), tree.leaves(b)))


def tree_cast(t, dtype):
    """Cast every floating leaf to `dtype` (no-op when `dtype` is None)."""
    if dtype is None:
        return t
    dtype = np.dtype(dtype)
    return tree.map(lambda x: x if dtype_of(x) == dtype else tnp.asarray(x, dtype=dtype), t)


# ---------------------------------------------------------------------------------------------
# moments (optax's formulas, leaf order kept so results match bit for bit where possible)
# ---------------------------------------------------------------------------------------------

def moment(g, m, decay, order):
    """`(1 - decay) * g**order + decay * m` for one leaf."""
    d = cast_scalar(decay, m)
    gp = g if order == 1 else (abs_sq(g) if order == 2 else g ** order)
    return (1 - d) * gp + d * m


def moment_per_elem_norm(g, m, decay, order):
    """`(1 - decay) * |g|**order + decay * m` for one leaf."""
    d = cast_scalar(decay, m)
    if order == 2:
        gp = abs_sq(g)
    elif order == 1:
        gp = tnp.abs(g)
    else:
        gp = tnp.abs(g) ** order
    return (1 - d) * gp + d * m


def tree_update_moment(updates, moments, decay, order):
    """`(1 - decay) * g**order + decay * m` leafwise."""
    return tree.map(lambda g, m: moment(g, m, decay, order), updates, moments)


def tree_update_moment_per_elem_norm(updates, moments, decay, order):
    """`(1 - decay) * |g|**order + decay * m` leafwise."""
    return tree.map(lambda g, m: moment_per_elem_norm(g, m, decay, order), updates, moments)


def tree_update_infinity_moment(updates, moments, decay, eps):
    """`max(|g| + eps, decay * m)` leafwise (Adamax)."""
    return tree.map(
        lambda g, m: tnp.maximum(tnp.abs(g) + cast_scalar(eps, g), cast_scalar(decay, m) * m),
        updates, moments)


class BiasCorrection:
    """`m -> m / (1 - decay**count)`, the correction computed once per dtype, in that dtype."""

    def __init__(self, decay, count):
        self.decay, self.count, self.cache = decay, count, {}

    def __call__(self, m):
        dt = dtype_of(m)
        bc = self.cache.get(dt)
        if bc is None:
            d = tnp.asarray(self.decay, dtype=dt)
            bc = 1 - tnp.power(d, tnp.asarray(self.count, dtype=dt))
            self.cache[dt] = bc
        return m / bc


def tree_bias_correction(moments, decay, count):
    """`m / (1 - decay**count)` leafwise; the correction is computed in each leaf's dtype."""
    return tree.map(BiasCorrection(decay, count), moments)
