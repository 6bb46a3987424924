"""Sequence layers: attention, Transformer blocks, recurrent cells, 1-D convolution, norms.

Every layer follows the protocol of `fnn.layers` (`params, state = layer.init(key, x)`,
`y, state = layer.apply(params, state, x, key=None, train=False)`), with float32 parameters
by default and readable parameter names.

Layout: sequences are **BTC** -- (batch, time, channels). Every sequence layer also takes a
single unbatched sequence (T, C) and returns an unbatched result, so `vmap` over a batch of
sequences gives the same values as a loop.

| layer | params |
|---|---|
| `MultiHeadAttention` | `query`, `key`, `value`, `out`: each `{'w': (in, out), 'b': (out,)}` |
| `TransformerBlock` | `norm_attn`, `attention`, `norm_mlp`, `mlp_in`, `mlp_out` |
| `LSTM` | `w_ih` (C, 4H), `w_hh` (H, 4H), `b` (4H,); gates in order input, forget, cell, output |
| `GRU` | `w_ih` (C, 3H), `w_hh` (H, 3H), `b_ih`, `b_hh` (3H,); gates reset, update, new |
| `Conv1D` | `w` (width, in, features) ("WIO"), `b` (features,) |
| `ConvTranspose2D` | `w` (kh, kw, in, features) (HWIO), `b` (features,) |
| `RMSNorm` | `scale` (C,) |
| `GroupNorm` | `scale`, `bias` (C,) |
| `PositionalEmbedding` | `embedding` (max_len, C) |

Masks are boolean, True where attention is allowed. `causal_mask(t)` and
`padding_mask(lengths, t)` build the usual ones; `rotary_embedding` rotates query/key features
by their position (RoPE), as `MultiHeadAttention(rotary=True)` does internally.
"""
from __future__ import annotations

import math

import numpy as np

import transforms.numpy as tnp
from transforms import lax, random

from . import activations
from . import initializers as init_lib
from .layers import (Module, affine_params, apply_affine, check_key, get_param, kernel_options,
                     kernel_params, pair_of, padding_pairs, spec_of)

__all__ = ["MultiHeadAttention", "TransformerBlock", "RMSNorm", "GroupNorm", "Conv1D",
           "ConvTranspose2D", "LSTM", "GRU", "PositionalEmbedding", "rotary_embedding",
           "causal_mask", "padding_mask", "dot_product_attention"]


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

def _float_dtype(*dts):
    dt = np.result_type(*dts)
    return dt if np.issubdtype(dt, np.floating) else np.dtype(np.float32)


def _check_sequence(x, who):
    """`x` (an array or a spec) is laid out (batch, time, channels) or (time, channels)."""
    if x.ndim not in (2, 3):
        raise ValueError(f"{who} expects (batch, time, channels) or (time, channels) inputs, "
                         f"got shape {tuple(x.shape)}")


def _batched(x, who, feature_size=None):
    """`x` as (B, T, C) and whether it came unbatched as (T, C); a clear error otherwise."""
    x = tnp.asarray(x)
    _check_sequence(x, who)
    unbatched = x.ndim == 2
    if unbatched:
        x = x[None]
    if feature_size is not None and x.shape[-1] != feature_size:
        raise ValueError(f"{who}: input has {x.shape[-1]} channels (shape {tuple(x.shape)}) but "
                         f"the parameters expect {feature_size}")
    return x, unbatched


def _dense(p, x):
    y = tnp.matmul(x, p["w"])
    return y + p["b"] if "b" in p else y


def _dense_params(key, n_in, n_out, init, use_bias, dtype):
    p = {"w": init(key, (n_in, n_out), dtype)}
    if use_bias:
        p["b"] = np.zeros((n_out,), dtype)
    return p


def _dropout(x, rate, key):
    keep_prob = 1.0 - rate
    keep = random.bernoulli(key, keep_prob, x.shape)
    return tnp.where(keep, x / np.asarray(keep_prob, x.dtype), tnp.zeros_like(x))


def causal_mask(t, s=None):
    """Boolean (t, s) mask (numpy): query i may attend key j iff j <= i + (s - t). With `s`
    omitted, s = t (self-attention: each position sees itself and the past)."""
    s = t if s is None else s
    return np.tril(np.ones((t, s), np.bool_), k=s - t)


def padding_mask(lengths, t):
    """Boolean (B, t) mask, True at the first `lengths[b]` positions of sequence b (valid
    tokens), False at the padding. Works on numpy or traced `lengths`."""
    lengths = tnp.asarray(lengths)
    return tnp.arange(t)[None, :] < lengths[:, None]


def rotary_embedding(x, positions=None, base=10000.0):
    """Rotary position embedding (RoPE) of `x` with layout (..., T, H, D) (D even): feature
    pairs (d, d + D/2) at position p are rotated by the angle p * base^(-2d/D). `positions`
    (length T, default 0..T-1) must be concrete (numpy). Dot products of rotated queries and
    keys then depend only on their relative position."""
    x = tnp.asarray(x)
    if x.ndim < 3 or x.shape[-1] % 2:
        raise ValueError(f"rotary_embedding expects (..., time, heads, head_dim) with an even "
                         f"head_dim, got shape {tuple(x.shape)}")
    t, d = x.shape[-3], x.shape[-1]
    half = d // 2
    pos = np.arange(t, dtype=np.float64) if positions is None else \
        np.asarray(positions, np.float64)
    inv_freq = float(base) ** (-np.arange(half, dtype=np.float64) * 2.0 / d)
    angles = pos[:, None] * inv_freq[None, :]                          # (T, D/2)
    dt = _float_dtype(x.dtype)
    cos = np.cos(angles).astype(dt)[:, None, :]                        # (T, 1, D/2)
    sin = np.sin(angles).astype(dt)[:, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return tnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def _every_row_attends(mask):
    """Whether `mask` is a concrete array in which every query row allows at least one key."""
    if isinstance(mask, np.ndarray) or (isinstance(mask, (bool, np.bool_))):
        m = np.asarray(mask)
        return bool(m.ndim == 0 and m) or bool(m.ndim > 0 and m.any(axis=-1).all())
    return False


def dot_product_attention(q, k, v, mask=None, dropout_rate=0.0, key=None):
    """Scaled dot-product attention over (B, H, T, D) queries and (B, H, S, D) keys/values:
    `softmax(q k^T / sqrt(D)) v`, with `mask` (boolean, broadcastable to (B, H, T, S), True =
    attend). The softmax subtracts each row's maximum (stable for any logit size); masked
    logits are replaced by a large negative number, and rows with no allowed key give zeros
    (not NaN). Dropout (rate `dropout_rate`, needs `key`) acts on the attention weights.
    Returns (B, H, T, D) outputs and the (B, H, T, S) weights."""
    d = q.shape[-1]
    dt = _float_dtype(q.dtype, k.dtype)
    # scaled after the product: the scale then joins the softmax's loops (forward and
    # backward) instead of a pass of its own over q, and the gradient of q is a product the
    # compiled code writes straight into the merged-heads layout
    logits = tnp.matmul(q, tnp.swapaxes(k, -1, -2)) * np.asarray(1.0 / math.sqrt(d), dt)
    if mask is not None:
        logits = tnp.where(mask, logits, np.asarray(np.finfo(dt).min / 2, dt))
    weights = activations.softmax(logits, axis=-1)
    if mask is not None and not _every_row_attends(mask):
        # a row with no allowed key would otherwise spread its weight evenly: give it zeros.
        # Where every row allows a key (a causal mask) the masked weights are already exact
        # zeros (exp of a huge negative number), so this pass is skipped
        weights = tnp.where(mask, weights, tnp.zeros_like(weights))
    if dropout_rate > 0.0:
        if key is None:
            raise ValueError("attention dropout with train=True needs a PRNG key: call "
                             "apply(params, state, x, key=key, train=True)")
        weights = _dropout(weights, dropout_rate, key)
    return tnp.matmul(weights, v), weights


# ---------------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------------

class MultiHeadAttention(Module):
    """Multi-head (self- or cross-) attention over BTC sequences.

    `num_heads` heads of size `qkv_features // num_heads` (`qkv_features` defaults to the input
    channels); outputs have `out_features` channels (default: the input channels). Params
    `query`, `key`, `value`, `out`, each `{'w', 'b'}` with `w` of shape (in, out).

    `apply(params, state, x, key=None, train=False, mask=None, context=None)`: `context`
    (B, S, C) gives keys and values (cross-attention; default `x`). `mask` is boolean,
    broadcastable to (B, num_heads, T, S), True = may attend; a (B, S) mask is taken as a
    padding mask over the keys. `causal=True` adds `causal_mask(T, S)`. `dropout_rate` drops
    attention weights when `train=True`. `rotary=True` applies `rotary_embedding` to the
    queries and keys of each head (positions 0..T-1 and 0..S-1)."""
    type_name = "attention"

    def __init__(self, num_heads, qkv_features=None, out_features=None, causal=False,
                 dropout_rate=0.0, use_bias=True, rotary=False, rotary_base=10000.0,
                 kernel_init=None, name=None, param_dtype=np.float32):
        self.num_heads = int(num_heads)
        self.qkv_features = None if qkv_features is None else int(qkv_features)
        self.out_features = None if out_features is None else int(out_features)
        self.causal = bool(causal)
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate}")
        self.dropout_rate = float(dropout_rate)
        self.use_bias = use_bias
        self.rotary, self.rotary_base = bool(rotary), float(rotary_base)
        self.kernel_init = kernel_init or init_lib.glorot_uniform()
        self.name = name
        self.param_dtype = np.dtype(param_dtype)
        self.needs_rng = self.dropout_rate > 0.0

    def _sizes(self, c):
        qkv = self.qkv_features or c
        if qkv % self.num_heads:
            raise ValueError(f"MultiHeadAttention: qkv_features={qkv} is not divisible by "
                             f"num_heads={self.num_heads}")
        if self.rotary and (qkv // self.num_heads) % 2:
            raise ValueError(f"MultiHeadAttention(rotary=True) needs an even head size, got "
                             f"{qkv // self.num_heads}")
        return qkv, self.out_features or c

    def init(self, key, x, context=None):
        key = check_key(key, "MultiHeadAttention.init")
        x = spec_of(x)
        _check_sequence(x, "MultiHeadAttention")
        c = x.shape[-1]
        cc = c if context is None else spec_of(context).shape[-1]
        qkv, out = self._sizes(c)
        ks = random.split(key, 4)
        mk = lambda k, a, b: _dense_params(k, a, b, self.kernel_init, self.use_bias,  # noqa
                                           self.param_dtype)
        return {"query": mk(ks[0], c, qkv), "key": mk(ks[1], cc, qkv),
                "value": mk(ks[2], cc, qkv), "out": mk(ks[3], qkv, out)}, {}

    def apply(self, params, state, x, key=None, train=False, mask=None, context=None):
        wq = get_param(params, "query", self)
        x, unbatched = _batched(x, "MultiHeadAttention", wq["w"].shape[0])
        if context is None:
            ctx = x
        else:
            ctx, cu = _batched(context, "MultiHeadAttention (context)",
                               get_param(params, "key", self)["w"].shape[0])
            if cu != unbatched:
                raise ValueError(f"MultiHeadAttention: x {tuple(x.shape)} and context "
                                 f"{tuple(ctx.shape)} must both be batched or both unbatched")
        b, t, _ = x.shape
        s = ctx.shape[1]
        h = self.num_heads
        qkv = wq["w"].shape[1]
        dh = qkv // h

        def heads(y, n):                                   # (B, n, H*Dh) -> (B, n, H, Dh)
            return tnp.reshape(y, (y.shape[0], n, h, dh))

        q = heads(_dense(wq, x), t)
        k = heads(_dense(get_param(params, "key", self), ctx), s)
        v = heads(_dense(get_param(params, "value", self), ctx), s)
        if self.rotary:
            q = rotary_embedding(q, base=self.rotary_base)
            k = rotary_embedding(k, base=self.rotary_base)
        q, k, v = (tnp.transpose(a, (0, 2, 1, 3)) for a in (q, k, v))   # (B, H, n, Dh)
        full = self._mask(mask, unbatched, b, t, s)
        rate = self.dropout_rate if train else 0.0
        o, _ = dot_product_attention(q, k, v, full, rate, key)
        o = tnp.reshape(tnp.transpose(o, (0, 2, 1, 3)), (b, t, qkv))
        y = _dense(get_param(params, "out", self), o)
        return (y[0] if unbatched else y), state

    def _mask(self, mask, unbatched, b, t, s):
        full = causal_mask(t, s) if self.causal else None
        if mask is None:
            return full
        m = tnp.asarray(mask)
        if m.dtype != np.bool_:
            raise TypeError(f"attention mask must be boolean (True = attend), got {m.dtype}")
        if unbatched:
            m = m[None]
        if m.ndim == 2:                                     # (B, S) padding mask
            if m.shape != (b, s):
                raise ValueError(f"a 2-D attention mask is a (batch, keys) padding mask: "
                                 f"expected {(b, s)}, got {tuple(m.shape)}")
            m = m[:, None, None, :]
        try:
            np.broadcast_shapes(tuple(m.shape), (b, self.num_heads, t, s))
        except ValueError:
            raise ValueError(f"attention mask of shape {tuple(mask.shape)} does not broadcast to "
                             f"(batch, heads, queries, keys) = {(b, self.num_heads, t, s)}") \
                from None
        return m if full is None else tnp.logical_and(m, full)


class TransformerBlock(Module):
    """A pre-norm Transformer block on BTC inputs:

        x = x + dropout(attention(norm_attn(x)))
        x = x + dropout(mlp_out(activation(mlp_in(norm_mlp(x)))))

    `mlp_features` defaults to 4x the channels. `norm`: 'layernorm' or 'rmsnorm'.
    `dropout_rate` applies to both residual branches and `attention_dropout_rate` to the
    attention weights (`train=True`). `causal`, `rotary` as in `MultiHeadAttention`; `apply`
    also takes `mask=`."""
    type_name = "transformer"

    def __init__(self, num_heads, mlp_features=None, causal=False, dropout_rate=0.0,
                 attention_dropout_rate=0.0, norm="layernorm", activation=None, rotary=False,
                 name=None, param_dtype=np.float32):
        self.num_heads = int(num_heads)
        self.mlp_features = None if mlp_features is None else int(mlp_features)
        self.causal, self.rotary = bool(causal), bool(rotary)
        self.dropout_rate = float(dropout_rate)
        self.attention_dropout_rate = float(attention_dropout_rate)
        if norm not in ("layernorm", "rmsnorm"):
            raise ValueError(f"norm must be 'layernorm' or 'rmsnorm', got {norm!r}")
        self.norm = norm
        self.activation = activation or activations.gelu
        self.name = name
        self.param_dtype = np.dtype(param_dtype)
        self.needs_rng = self.dropout_rate > 0.0 or self.attention_dropout_rate > 0.0
        self.attention = MultiHeadAttention(num_heads, causal=causal,
                                            dropout_rate=attention_dropout_rate, rotary=rotary,
                                            param_dtype=param_dtype)

    def _norm(self):
        from .layers import LayerNorm
        if self.norm == "layernorm":
            return LayerNorm(eps=1e-5, param_dtype=self.param_dtype)
        return RMSNorm(param_dtype=self.param_dtype)

    def init(self, key, x):
        key = check_key(key, "TransformerBlock.init")
        x = spec_of(x)
        _check_sequence(x, "TransformerBlock")
        c = x.shape[-1]
        m = self.mlp_features or 4 * c
        k1, k2, k3 = random.split(key, 3)
        init = init_lib.lecun_normal()
        return {"norm_attn": self._norm().init(None, x)[0],
                "attention": self.attention.init(k1, x)[0],
                "norm_mlp": self._norm().init(None, x)[0],
                "mlp_in": _dense_params(k2, c, m, init, True, self.param_dtype),
                "mlp_out": _dense_params(k3, m, c, init, True, self.param_dtype)}, {}

    def apply(self, params, state, x, key=None, train=False, mask=None):
        x = tnp.asarray(x)
        _check_sequence(x, "TransformerBlock")
        drop = train and self.dropout_rate > 0.0
        if train and self.needs_rng:
            if key is None:
                raise ValueError("TransformerBlock with dropout and train=True needs a PRNG key")
            k_att, k_d1, k_d2 = random.split(key, 3)
        else:
            k_att = k_d1 = k_d2 = None
        norm = self._norm()
        h, _ = norm.apply(get_param(params, "norm_attn", self), {}, x)
        h, _ = self.attention.apply(get_param(params, "attention", self), {}, h, key=k_att,
                                    train=train, mask=mask)
        x = x + (_dropout(h, self.dropout_rate, k_d1) if drop else h)
        h, _ = norm.apply(get_param(params, "norm_mlp", self), {}, x)
        h = self.activation(_dense(get_param(params, "mlp_in", self), h))
        h = _dense(get_param(params, "mlp_out", self), h)
        x = x + (_dropout(h, self.dropout_rate, k_d2) if drop else h)
        return x, state


class PositionalEmbedding(Module):
    """Learned absolute positions: adds `embedding[:T]` (a (max_len, C) table, normal with
    std 0.02) to BTC or (T, C) inputs."""
    type_name = "posembed"

    def __init__(self, max_len, embedding_init=None, name=None, param_dtype=np.float32):
        self.max_len = int(max_len)
        self.embedding_init = embedding_init or init_lib.normal(0.02)
        self.name = name
        self.param_dtype = np.dtype(param_dtype)

    def init(self, key, x):
        key = check_key(key, "PositionalEmbedding.init")
        c = spec_of(x).shape[-1]
        return {"embedding": self.embedding_init(key, (self.max_len, c), self.param_dtype)}, {}

    def apply(self, params, state, x, key=None, train=False):
        table = get_param(params, "embedding", self)
        x, unbatched = _batched(x, "PositionalEmbedding", table.shape[1])
        t = x.shape[1]
        if t > table.shape[0]:
            raise ValueError(f"PositionalEmbedding: sequence of length {t} (input shape "
                             f"{tuple(x.shape)}) exceeds max_len={table.shape[0]}")
        y = x + table[:t]
        return (y[0] if unbatched else y), state


# ---------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------

class RMSNorm(Module):
    """`x * rsqrt(mean(x**2, last axis) + eps) * scale` (no centring, no bias); param `scale`
    (ones) of the feature size."""
    type_name = "rmsnorm"

    def __init__(self, eps=1e-6, name=None, param_dtype=np.float32):
        self.eps = float(eps)
        self.name = name
        self.param_dtype = np.dtype(param_dtype)

    def init(self, key, x):
        return {"scale": np.ones((spec_of(x).shape[-1],), self.param_dtype)}, {}

    def apply(self, params, state, x, key=None, train=False):
        x = tnp.asarray(x)
        scale = get_param(params, "scale", self)
        if x.shape[-1] != scale.shape[0]:
            raise ValueError(f"RMSNorm: input shape {tuple(x.shape)} has {x.shape[-1]} "
                             f"features, the scale has {scale.shape[0]}")
        ms = tnp.mean(x * x, axis=-1, keepdims=True)
        return x * lax.rsqrt(ms + self.eps) * scale, state


class GroupNorm(Module):
    """Group normalisation of channels-last inputs (N, ..., C): the C channels are split into
    `num_groups` groups, each normalised over its channels and all non-batch axes of one
    example; then `* scale + bias` per channel (params of shape (C,))."""
    type_name = "groupnorm"

    def __init__(self, num_groups=32, eps=1e-5, use_scale=True, use_bias=True, name=None,
                 param_dtype=np.float32):
        self.num_groups = int(num_groups)
        self.eps = float(eps)
        self.use_scale, self.use_bias = use_scale, use_bias
        self.name = name
        self.param_dtype = np.dtype(param_dtype)

    def _check(self, shape):
        if len(shape) < 2:
            raise ValueError(f"GroupNorm expects (batch, ..., channels) inputs, got shape "
                             f"{tuple(shape)}")
        if shape[-1] % self.num_groups:
            raise ValueError(f"GroupNorm: {shape[-1]} channels (input shape {tuple(shape)}) are "
                             f"not divisible into num_groups={self.num_groups}")

    def init(self, key, x):
        x = spec_of(x)
        self._check(x.shape)
        return affine_params(self, x.shape[-1]), {}

    def apply(self, params, state, x, key=None, train=False):
        x = tnp.asarray(x)
        self._check(x.shape)
        n, c, g = x.shape[0], x.shape[-1], self.num_groups
        xg = tnp.reshape(x, (n, -1, g, c // g))
        mean = tnp.mean(xg, axis=(1, 3), keepdims=True)
        centered = xg - mean
        var = tnp.mean(centered * centered, axis=(1, 3), keepdims=True)
        y = tnp.reshape(centered * lax.rsqrt(var + self.eps), x.shape)
        return apply_affine(self, params, y), state


# ---------------------------------------------------------------------------------------------
# Convolutions
# ---------------------------------------------------------------------------------------------

class Conv1D(Module):
    """1-D convolution of BTC inputs (or unbatched (T, C)) with a kernel `w` of shape
    (width, in, features), plus a bias `b` (features,).

    `padding`: 'SAME' (output length ceil(T / stride)), 'VALID', 'CAUSAL' (left padding only:
    output t sees inputs <= t), an int or a (low, high) pair. `dilation` spaces the taps."""
    type_name = "conv1d"

    def __init__(self, features, kernel_size, strides=1, padding="SAME", dilation=1,
                 use_bias=True, kernel_init=None, bias_init=None, name=None,
                 param_dtype=np.float32):
        self.features = int(features)
        self.kernel_size, self.strides = int(kernel_size), int(strides)
        self.dilation = int(dilation)
        if isinstance(padding, str):
            if padding.upper() not in ("SAME", "VALID", "CAUSAL"):
                raise ValueError(f"Conv1D padding must be 'SAME', 'VALID', 'CAUSAL', an int or a "
                                 f"pair, got {padding!r}")
            self.padding = padding.upper()
        elif isinstance(padding, (int, np.integer)):
            self.padding = (int(padding), int(padding))
        else:
            self.padding = tuple(int(p) for p in padding)
            if len(self.padding) != 2:
                raise ValueError(f"Conv1D padding pair must be (low, high), got {padding!r}")
        kernel_options(self, use_bias, kernel_init, bias_init, name, param_dtype)

    def init(self, key, x):
        key = check_key(key, "Conv1D.init")
        x = spec_of(x)
        _check_sequence(x, "Conv1D")
        return kernel_params(self, key, (self.kernel_size, x.shape[-1], self.features)), {}

    def apply(self, params, state, x, key=None, train=False):
        w = get_param(params, "w", self)
        x, unbatched = _batched(x, "Conv1D", w.shape[1])
        if self.padding == "CAUSAL":
            pads = [((self.kernel_size - 1) * self.dilation, 0)]
        elif isinstance(self.padding, str):
            pads = padding_pairs(self.padding, (x.shape[1],), (self.kernel_size,),
                                 (self.strides,), (self.dilation,))
        else:
            pads = [self.padding]
        dt = _float_dtype(x.dtype, w.dtype)
        y = lax.conv_general_dilated(x.astype(dt), tnp.asarray(w).astype(dt), (self.strides,),
                                     pads, rhs_dilation=(self.dilation,),
                                     dimension_numbers=("NHC", "HIO", "NHC"))
        if self.use_bias:
            y = y + get_param(params, "b", self)
        return (y[0] if unbatched else y), state


class ConvTranspose2D(Module):
    """Transposed 2-D convolution (the gradient of a strided `Conv2D` with respect to its
    input, used for upsampling) of NHWC inputs; kernel `w` (kh, kw, in, features), bias `b`.
    `padding` 'SAME' gives outputs of size input * stride, 'VALID' (input - 1) * stride +
    kernel (as `jax.lax.conv_transpose` and Flax's `ConvTranspose`)."""
    type_name = "convtranspose2d"

    def __init__(self, features, kernel_size, strides=1, padding="SAME", use_bias=True,
                 kernel_init=None, bias_init=None, name=None, param_dtype=np.float32):
        self.features = int(features)
        self.kernel_size = pair_of(kernel_size, "kernel_size")
        self.strides = pair_of(strides, "strides")
        if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
            raise ValueError(f"ConvTranspose2D padding must be 'SAME' or 'VALID', got {padding!r}")
        self.padding = padding.upper()
        kernel_options(self, use_bias, kernel_init, bias_init, name, param_dtype)

    def init(self, key, x):
        key = check_key(key, "ConvTranspose2D.init")
        x = spec_of(x)
        if x.ndim != 4:
            raise ValueError(f"ConvTranspose2D expects NHWC inputs, got shape {x.shape}")
        return kernel_params(self, key, self.kernel_size + (x.shape[-1], self.features)), {}

    def apply(self, params, state, x, key=None, train=False):
        x = tnp.asarray(x)
        w = get_param(params, "w", self)
        if x.ndim != 4 or x.shape[-1] != w.shape[2]:
            raise ValueError(f"ConvTranspose2D expects NHWC inputs with {w.shape[2]} channels, "
                             f"got shape {tuple(x.shape)}")
        dt = _float_dtype(x.dtype, w.dtype)
        y = lax.conv_transpose(x.astype(dt), tnp.asarray(w).astype(dt), self.strides,
                               self.padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if self.use_bias:
            y = y + get_param(params, "b", self)
        return y, state


# ---------------------------------------------------------------------------------------------
# Recurrent layers (one lax.scan over time)
# ---------------------------------------------------------------------------------------------

class _Recurrent(Module):
    n_gates = 1

    def __init__(self, hidden_size, return_carry=False, kernel_init=None,
                 recurrent_init=None, name=None, param_dtype=np.float32):
        self.hidden_size = int(hidden_size)
        self.return_carry = bool(return_carry)
        self.kernel_init = kernel_init or init_lib.glorot_uniform()
        self.recurrent_init = recurrent_init or init_lib.glorot_uniform()
        self.name = name
        self.param_dtype = np.dtype(param_dtype)

    def _weights(self, key, x):
        key = check_key(key, f"{type(self).__name__}.init")
        x = spec_of(x)
        _check_sequence(x, type(self).__name__)
        k1, k2 = random.split(key)
        h, g = self.hidden_size, self.n_gates
        return {"w_ih": self.kernel_init(k1, (x.shape[-1], g * h), self.param_dtype),
                "w_hh": self.recurrent_init(k2, (h, g * h), self.param_dtype)}

    def _run(self, params, x, initial_carry, mask, n_carry):
        """Shared driver: project all inputs at once (one matmul), scan the cell over time."""
        w_ih = get_param(params, "w_ih", self)
        who = type(self).__name__
        x, unbatched = _batched(x, who, w_ih.shape[0])
        b, t, _ = x.shape
        dt = _float_dtype(x.dtype, w_ih.dtype)
        proj = tnp.matmul(x.astype(dt), w_ih)                       # (B, T, G*H)
        xs = [tnp.swapaxes(proj, 0, 1)]                              # time-major for the scan
        if mask is not None:
            m = tnp.asarray(mask)
            if unbatched:
                m = m[None]
            if tuple(m.shape) != (b, t):
                raise ValueError(f"{who}: mask must have shape (batch, time) = {(b, t)}, got "
                                 f"{tuple(tnp.asarray(mask).shape)}")
            xs.append(tnp.swapaxes(m.astype(np.bool_), 0, 1)[..., None])
        if initial_carry is None:
            carry = tuple(tnp.zeros((b, self.hidden_size), dt) for _ in range(n_carry))
        else:
            carry = tuple(initial_carry) if n_carry > 1 else (initial_carry,)
            carry = tuple((tnp.asarray(c)[None] if unbatched else tnp.asarray(c)).astype(dt)
                          for c in carry)
            for c in carry:
                if tuple(c.shape) != (b, self.hidden_size):
                    raise ValueError(f"{who}: initial carry entries must have shape (batch, "
                                     f"hidden) = {(b, self.hidden_size)}, got {tuple(c.shape)}")
        cell = self._cell(params, dt)

        def step(carry, inp):
            new, out = cell(carry, inp[0])
            if mask is not None:
                keep = inp[1]
                new = tuple(tnp.where(keep, a, o) for a, o in zip(new, carry))
                out = tnp.where(keep, out, tnp.zeros_like(out))
            return new, out

        final, ys = lax.scan(step, carry, tuple(xs))
        y = tnp.swapaxes(ys, 0, 1)
        if unbatched:
            y, final = y[0], tuple(c[0] for c in final)
        final = final if n_carry > 1 else final[0]
        return (y, final) if self.return_carry else y


class LSTM(_Recurrent):
    """Long short-term memory over BTC sequences (or unbatched (T, C)), as one `lax.scan`:

        i, f, g, o = split(x_t @ w_ih + h @ w_hh + b)
        c = sigmoid(f) * c + sigmoid(i) * tanh(g);   h = sigmoid(o) * tanh(c)

    Returns the hidden states (B, T, hidden_size); with `return_carry=True`, `(outputs,
    (h, c))`. `apply(..., initial_carry=(h0, c0), mask=None)`: a boolean (B, T) `mask` holds
    the carry and outputs zeros where False (padding). The forget-gate bias starts at 1."""
    type_name = "lstm"
    n_gates = 4

    def init(self, key, x):
        params = self._weights(key, x)
        h = self.hidden_size
        params["b"] = np.concatenate([np.zeros(h), np.ones(h), np.zeros(2 * h)]).astype(
            self.param_dtype)
        return params, {}

    def _cell(self, params, dt):
        w_hh, bias = get_param(params, "w_hh", self), get_param(params, "b", self)
        h_size = self.hidden_size

        def cell(carry, xp):
            h, c = carry
            z = xp + tnp.matmul(h, w_hh) + bias
            i = activations.sigmoid(z[:, :h_size])
            f = activations.sigmoid(z[:, h_size:2 * h_size])
            g = tnp.tanh(z[:, 2 * h_size:3 * h_size])
            o = activations.sigmoid(z[:, 3 * h_size:])
            c = f * c + i * g
            h = o * tnp.tanh(c)
            return (h, c), h
        return cell

    def apply(self, params, state, x, key=None, train=False, initial_carry=None, mask=None):
        return self._run(params, x, initial_carry, mask, 2), state


class GRU(_Recurrent):
    """Gated recurrent unit over BTC sequences (or unbatched (T, C)), as one `lax.scan`
    (PyTorch's formulation, gates reset r, update z, new n):

        r = sigmoid(xr + hr);  z = sigmoid(xz + hz);  n = tanh(xn + r * hn)
        h = (1 - z) * n + z * h        with x* = x_t @ w_ih + b_ih, h* = h @ w_hh + b_hh

    Returns (B, T, hidden_size); `return_carry=True` gives `(outputs, h)`.
    `apply(..., initial_carry=h0, mask=None)` as `LSTM`."""
    type_name = "gru"
    n_gates = 3

    def init(self, key, x):
        params = self._weights(key, x)
        params["b_ih"] = np.zeros((3 * self.hidden_size,), self.param_dtype)
        params["b_hh"] = np.zeros((3 * self.hidden_size,), self.param_dtype)
        return params, {}

    def _cell(self, params, dt):
        w_hh = get_param(params, "w_hh", self)
        b_ih, b_hh = get_param(params, "b_ih", self), get_param(params, "b_hh", self)
        hs = self.hidden_size

        def cell(carry, xp):
            (h,) = carry
            xz = xp + b_ih
            hz = tnp.matmul(h, w_hh) + b_hh
            r = activations.sigmoid(xz[:, :hs] + hz[:, :hs])
            z = activations.sigmoid(xz[:, hs:2 * hs] + hz[:, hs:2 * hs])
            n = tnp.tanh(xz[:, 2 * hs:] + r * hz[:, 2 * hs:])
            h = (1.0 - z) * n + z * h
            return (h,), h
        return cell

    def apply(self, params, state, x, key=None, train=False, initial_carry=None, mask=None):
        return self._run(params, x, initial_carry, mask, 1), state
