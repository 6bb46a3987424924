"""`dot_product_attention` (jax.nn.dot_product_attention), composed from tnp/lax."""
from __future__ import annotations

import math

import numpy as np

import transforms.numpy as tnp


def _as_4d(x, name):
    x = tnp.asarray(x)
    if x.ndim == 3:
        return tnp.expand_dims(x, 0), True
    if x.ndim != 4:
        raise ValueError(f"dot_product_attention: {name} must have shape (B, T, N, H) or "
                         f"(T, N, H), got {x.shape}")
    return x, False


def dot_product_attention(query, key, value, bias=None, mask=None, *, scale=None,
                          is_causal=False, query_seq_lengths=None, key_value_seq_lengths=None,
                          local_window_size=None, implementation=None, return_residual=False):
    """Scaled dot-product attention, `softmax(q k^T * scale + bias, masked) v`, as JAX.

    Shapes: `query` (B, T, N, H), `key`/`value` (B, S, K, H) with N a multiple of K (grouped
    query attention: query head n reads key/value head n // (N // K)); the batch axis may be
    omitted. `scale` defaults to 1/sqrt(H). `bias` and the boolean `mask` broadcast to
    (B, N, T, S); `is_causal` keeps keys s <= t; `local_window_size=(left, right)` (or one int
    for both) keeps t - left <= s <= t + right; `query_seq_lengths` / `key_value_seq_lengths`
    (B,) mask padding. Masked logits become -0.7 * the dtype's max (a fully masked row
    attends uniformly, as in JAX; padded query positions output zeros). With
    `return_residual`, also returns the logsumexp of the logits, (B, T, N), without gradient.
    The softmax runs in float32 for float32 inputs and in float64 for float64 inputs. `implementation` is accepted and ignored (one implementation).
    """
    q, unbatched = _as_4d(query, "query")
    k, _ = _as_4d(key, "key")
    v, _ = _as_4d(value, "value")
    B, T, N, H = q.shape
    S, K = k.shape[1], k.shape[2]
    if N % K:
        raise ValueError(f"dot_product_attention: {N} query heads are not a multiple of {K} "
                         "key/value heads")
    if N != K:
        k = tnp.repeat(k, N // K, axis=2)
        v = tnp.repeat(v, N // K, axis=2)
    scale = 1.0 / math.sqrt(H) if scale is None else scale
    logits_dtype = np.promote_types(q.dtype, np.float32)
    logits = tnp.einsum("btnh,bsnh->bnts", q, k).astype(logits_dtype) * np.asarray(
        scale, logits_dtype)
    if bias is not None:
        b = tnp.asarray(bias)
        if unbatched and b.ndim == 3:
            b = tnp.expand_dims(b, 0)
        logits = (logits + b).astype(logits_dtype)
    keep = None

    def both(a, m):
        return m if a is None else tnp.logical_and(a, m)

    if mask is not None:
        m = tnp.asarray(mask)
        if unbatched and m.ndim == 3:
            m = tnp.expand_dims(m, 0)
        keep = both(keep, m)
    t_idx = np.arange(T)[:, None]
    s_idx = np.arange(S)[None, :]
    if is_causal:
        keep = both(keep, s_idx <= t_idx)
    if local_window_size is not None:
        left, right = ((local_window_size, local_window_size)
                       if isinstance(local_window_size, int) else local_window_size)
        keep = both(keep, (s_idx >= t_idx - left) & (s_idx <= t_idx + right))
    if query_seq_lengths is not None:
        ql = tnp.asarray(query_seq_lengths).reshape((B, 1, 1, 1))
        keep = both(keep, np.arange(T)[None, None, :, None] < ql)
    if key_value_seq_lengths is not None:
        kl = tnp.asarray(key_value_seq_lengths).reshape((B, 1, 1, 1))
        keep = both(keep, np.arange(S)[None, None, None, :] < kl)
    if keep is not None:
        neg = np.asarray(-0.7 * np.finfo(logits_dtype).max, logits_dtype)
        logits = tnp.where(keep, logits, neg)
    from . import logsumexp, softmax
    probs = softmax(logits, axis=-1).astype(v.dtype)
    out = tnp.einsum("bnts,bsnh->btnh", probs, v)
    if query_seq_lengths is not None:         # padded query positions give zeros
        ql = tnp.asarray(query_seq_lengths).reshape((B, 1, 1, 1))
        out = out * (np.arange(T)[None, :, None, None] < ql).astype(out.dtype)
    if unbatched:
        out = out[0]
    if return_residual:
        from transforms.lax import stop_gradient
        res = tnp.transpose(logsumexp(logits, axis=-1), (0, 2, 1)).astype(v.dtype)  # B T N
        res = stop_gradient(res)
        return out, (res[0] if unbatched else res)
    return out
