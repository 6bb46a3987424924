"""fnn.sequence: attention, Transformer blocks, LSTM/GRU, Conv1D, norms. Values against NumPy
references, finite-difference gradients (float64), causal masking (the future never leaks),
vmap over sequences == a loop, scan gradients over 200 steps == an unrolled loop, jit == eager."""
import numpy as np
import pytest

import fnn
import transforms as T
from transforms import random, tree
from transforms.test_util import check_grads

KEY = random.key(0)


def rng(seed=0):
    return np.random.RandomState(seed)


def f64(t):
    return tree.map(lambda a: np.asarray(a, np.float64), t)


def close(a, b, tol=1e-10):
    for x, y in zip(tree.leaves(a), tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# ---------------------------------------------------------------------------------------------
# NumPy references
# ---------------------------------------------------------------------------------------------

def np_attention(p, x, h, mask):
    b, t, c = x.shape
    q, k, v = (x @ p[n]["w"] + p[n]["b"] for n in ("query", "key", "value"))
    d = q.shape[-1] // h
    q, k, v = (a.reshape(b, t, h, d).transpose(0, 2, 1, 3) for a in (q, k, v))
    logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
    logits = np.where(mask, logits, -np.inf)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w = w / w.sum(-1, keepdims=True)
    o = (w @ v).transpose(0, 2, 1, 3).reshape(b, t, h * d)
    return o @ p["out"]["w"] + p["out"]["b"]


def np_lstm(p, x):
    b, t, _ = x.shape
    hs = p["w_hh"].shape[0]
    h, c, out = np.zeros((b, hs)), np.zeros((b, hs)), []
    for s in range(t):
        z = x[:, s] @ p["w_ih"] + h @ p["w_hh"] + p["b"]
        i, f, g, o = np.split(z, 4, axis=1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.stack(out, 1), (h, c)


def np_gru(p, x):
    b, t, _ = x.shape
    hs = p["w_hh"].shape[0]
    h, out = np.zeros((b, hs)), []
    for s in range(t):
        xr, xz, xn = np.split(x[:, s] @ p["w_ih"] + p["b_ih"], 3, axis=1)
        hr, hz, hn = np.split(h @ p["w_hh"] + p["b_hh"], 3, axis=1)
        r, z = sigmoid(xr + hr), sigmoid(xz + hz)
        h = (1 - z) * np.tanh(xn + r * hn) + z * h
        out.append(h)
    return np.stack(out, 1), h


# ---------------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------------

def test_attention_values_and_masks():
    x = rng().randn(2, 6, 8)
    layer = fnn.MultiHeadAttention(2, causal=True)
    p, s = layer.init(KEY, x.astype(np.float32))
    assert tree.map(np.shape, p) == {n: {"w": (8, 8), "b": (8,)}
                                     for n in ("query", "key", "value", "out")}
    assert p["query"]["w"].dtype == np.float32 and s == {}
    p = f64(p)
    p["query"]["b"] = rng(1).randn(8)
    lengths = np.array([6, 4])
    pad = fnn.padding_mask(lengths, 6)
    np.testing.assert_array_equal(pad, [[1] * 6, [1, 1, 1, 1, 0, 0]])
    y, _ = layer.apply(p, s, x, mask=pad)
    full = np.tril(np.ones((6, 6), bool))[None, None] & pad[:, None, None, :]
    np.testing.assert_allclose(y, np_attention(p, x, 2, full), rtol=1e-10, atol=1e-12)
    # no mask / a full (B, H, T, S) mask
    y2, _ = fnn.MultiHeadAttention(2).apply(p, s, x)
    np.testing.assert_allclose(y2, np_attention(p, x, 2, np.ones((1, 1, 6, 6), bool)),
                               rtol=1e-10, atol=1e-12)
    y3, _ = fnn.MultiHeadAttention(2).apply(p, s, x, mask=np.broadcast_to(full, (2, 2, 6, 6)))
    np.testing.assert_allclose(y3, y, rtol=1e-12, atol=1e-12)


def test_attention_stable_softmax_and_empty_rows():
    x = rng().randn(1, 4, 4)
    layer = fnn.MultiHeadAttention(1)
    p = f64(layer.init(KEY, x)[0])
    p["query"]["w"] = p["query"]["w"] * 1e4       # logits ~1e4: exp would overflow naively
    y, _ = layer.apply(p, {}, x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, np_attention(p, x, 1, np.ones((1, 1, 4, 4), bool)),
                               rtol=1e-8, atol=1e-10)
    # a query with no allowed key gives the output bias (zero weights), not NaN
    mask = np.ones((1, 1, 4, 4), bool)
    mask[..., 2, :] = False
    q = fnn.dot_product_attention(*(np.ones((1, 1, 4, 2)),) * 3, mask=mask)[1]
    assert np.all(np.isfinite(q)) and np.all(q[0, 0, 2] == 0)
    np.testing.assert_allclose(q[0, 0, 0], 0.25)
    g = T.grad(lambda p: layer.apply(p, {}, x, mask=mask)[0].sum())(p)
    assert all(np.all(np.isfinite(a)) for a in tree.leaves(g))



def test_causal_attention_skips_the_empty_row_pass_with_the_same_bits():
    """Every row of a causal mask allows a key, so the masked weights are already exact zeros
    and the pass that zeroes empty rows is left out; values and gradients keep their bits."""
    import transforms.numpy as tnp
    r = np.random.default_rng(7)
    q, k, v = (r.standard_normal((2, 3, 6, 4)).astype(np.float32) for _ in range(3))
    causal = fnn.causal_mask(6)

    def explicit(q, k, v):          # the general path: empty rows zeroed by a where
        logits = tnp.matmul(q, tnp.swapaxes(k, -1, -2)) * np.float32(0.5)
        logits = tnp.where(causal, logits, np.float32(np.finfo(np.float32).min / 2))
        w = fnn.activations.softmax(logits, axis=-1)
        w = tnp.where(causal, w, tnp.zeros_like(w))
        return tnp.matmul(w, v), w

    ours = lambda q, k, v: fnn.dot_product_attention(q, k, v, mask=causal)  # noqa: E731
    for f in (lambda *a: a, T.jit(lambda *a: a)):
        got, want = ours(*f(q, k, v)), explicit(q, k, v)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    loss = lambda f: lambda q, k, v: tnp.sum(f(q, k, v)[0] ** 2)  # noqa: E731
    for a, b in zip(T.jit(T.grad(loss(ours), argnums=(0, 1, 2)))(q, k, v),
                    T.jit(T.grad(loss(explicit), argnums=(0, 1, 2)))(q, k, v)):
        np.testing.assert_array_equal(a, b)
    n_select = lambda f: str(T.make_jaxpr(f)(q, k, v)).count("select_n")  # noqa: E731
    assert n_select(ours) == n_select(explicit) - 1
    # a mask with an empty row keeps the pass (zeros there, not an even spread)
    holes = causal.copy()
    holes[3] = False
    w = fnn.dot_product_attention(q, k, v, mask=holes)[1]
    assert np.all(np.asarray(w)[:, :, 3] == 0)

def test_causal_mask_never_sees_the_future():
    r = rng(3)
    x = r.randn(2, 7, 8).astype(np.float32)
    layers = [fnn.MultiHeadAttention(2, causal=True), fnn.MultiHeadAttention(2, causal=True,
                                                                              rotary=True),
              fnn.TransformerBlock(2, causal=True), fnn.Conv1D(4, 3, padding="CAUSAL",
                                                               dilation=2),
              fnn.LSTM(5), fnn.GRU(5)]
    for layer in layers:
        p, _ = layer.init(KEY, x)
        y, _ = layer.apply(p, {}, x)
        for t in range(6):
            x2 = x.copy()
            x2[:, t + 1:] += 10 * r.randn(2, 6 - t, 8).astype(np.float32)
            y2, _ = layer.apply(p, {}, x2)
            np.testing.assert_array_equal(y2[:, :t + 1], y[:, :t + 1], err_msg=repr(layer))
            assert not np.array_equal(y2[:, t + 1:], y[:, t + 1:])
    # without causal=True the future does leak
    layer = fnn.MultiHeadAttention(2)
    p, _ = layer.init(KEY, x)
    x2 = x.copy()
    x2[:, -1] += 1
    assert not np.array_equal(layer.apply(p, {}, x)[0][:, 0], layer.apply(p, {}, x2)[0][:, 0])


def test_rotary_embedding_relative():
    r = rng(4)
    q, k = r.randn(1, 1, 1, 8), r.randn(1, 1, 1, 8)

    def rot(v, pos):
        return fnn.rotary_embedding(v, positions=[pos])[0, 0, 0]

    dots = [rot(q, a) @ rot(k, b) for a, b in ((3, 1), (7, 5), (12, 10))]
    np.testing.assert_allclose(dots, dots[0], rtol=1e-10)
    assert abs(rot(q, 0) @ rot(k, 2) - dots[0]) > 1e-3
    np.testing.assert_allclose(np.linalg.norm(rot(q, 9)), np.linalg.norm(q), rtol=1e-12)
    np.testing.assert_array_equal(rot(q, 0), q[0, 0, 0])
    # the attention layer's rotary path equals rotating q and k by hand
    x = r.randn(2, 5, 8)
    layer = fnn.MultiHeadAttention(2, rotary=True)
    p = f64(layer.init(KEY, x)[0])
    qh = (x @ p["query"]["w"] + p["query"]["b"]).reshape(2, 5, 2, 4)
    kh = (x @ p["key"]["w"] + p["key"]["b"]).reshape(2, 5, 2, 4)
    vh = (x @ p["value"]["w"] + p["value"]["b"]).reshape(2, 5, 2, 4)
    qr, kr = (np.asarray(fnn.rotary_embedding(a)).transpose(0, 2, 1, 3) for a in (qh, kh))
    o, _ = fnn.dot_product_attention(qr, kr, vh.transpose(0, 2, 1, 3))
    ref = np.asarray(o).transpose(0, 2, 1, 3).reshape(2, 5, 8) @ p["out"]["w"] + p["out"]["b"]
    np.testing.assert_allclose(layer.apply(p, {}, x)[0], ref, rtol=1e-10, atol=1e-12)


def test_attention_dropout_and_cross_attention():
    x = rng().randn(2, 5, 8).astype(np.float32)
    layer = fnn.MultiHeadAttention(2, dropout_rate=0.5)
    assert layer.needs_rng
    p, _ = layer.init(KEY, x)
    y_eval, _ = layer.apply(p, {}, x)
    np.testing.assert_array_equal(y_eval, fnn.MultiHeadAttention(2).apply(p, {}, x)[0])
    ya, _ = layer.apply(p, {}, x, key=random.key(1), train=True)
    yb, _ = layer.apply(p, {}, x, key=random.key(1), train=True)
    yc, _ = layer.apply(p, {}, x, key=random.key(2), train=True)
    np.testing.assert_array_equal(ya, yb)
    assert not np.allclose(ya, yc) and not np.allclose(ya, y_eval)
    with pytest.raises(ValueError, match="PRNG key"):
        layer.apply(p, {}, x, train=True)
    # cross-attention: keys/values from a context of another length and width
    ctx = rng(1).randn(2, 3, 6).astype(np.float32)
    cross = fnn.MultiHeadAttention(2, qkv_features=4, out_features=7)
    pc, _ = cross.init(KEY, x, context=ctx)
    assert pc["key"]["w"].shape == (6, 4) and pc["out"]["w"].shape == (4, 7)
    yx, _ = cross.apply(pc, {}, x, context=ctx, mask=np.array([[1, 1, 0], [1, 1, 1]], bool))
    assert yx.shape == (2, 5, 7)


def test_transformer_block_values():
    x = rng().randn(2, 5, 8)
    for norm in ("layernorm", "rmsnorm"):
        blk = fnn.TransformerBlock(2, mlp_features=16, causal=True, norm=norm)
        p = f64(blk.init(KEY, x)[0])
        assert sorted(p) == ["attention", "mlp_in", "mlp_out", "norm_attn", "norm_mlp"]
        assert p["mlp_in"]["w"].shape == (8, 16)

        def ln(v, q):
            if norm == "rmsnorm":
                return v / np.sqrt((v * v).mean(-1, keepdims=True) + 1e-6) * q["scale"]
            mu = v.mean(-1, keepdims=True)
            return (v - mu) / np.sqrt(((v - mu) ** 2).mean(-1, keepdims=True) + 1e-5) \
                * q["scale"] + q["bias"]

        causal = np.tril(np.ones((5, 5), bool))
        h = x + np_attention(p["attention"], ln(x, p["norm_attn"]), 2, causal)
        m = ln(h, p["norm_mlp"]) @ p["mlp_in"]["w"] + p["mlp_in"]["b"]
        ref = h + np.asarray(fnn.gelu(m)) @ p["mlp_out"]["w"] + p["mlp_out"]["b"]
        np.testing.assert_allclose(blk.apply(p, {}, x)[0], ref, rtol=1e-9, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# Norms, convolutions, positions
# ---------------------------------------------------------------------------------------------

def test_norms_values():
    x = rng().randn(3, 4, 6)
    p = f64(fnn.RMSNorm().init(KEY, x)[0])
    p["scale"] = rng(1).randn(6)
    ref = x / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-6) * p["scale"]
    np.testing.assert_allclose(fnn.RMSNorm().apply(p, {}, x)[0], ref, rtol=1e-12)
    gn = fnn.GroupNorm(num_groups=3)
    p = f64(gn.init(KEY, x)[0])
    p["scale"], p["bias"] = rng(2).randn(6), rng(3).randn(6)
    xg = x.reshape(3, 4, 3, 2)
    mu = xg.mean((1, 3), keepdims=True)
    var = xg.var((1, 3), keepdims=True)
    ref = ((xg - mu) / np.sqrt(var + 1e-5)).reshape(x.shape) * p["scale"] + p["bias"]
    np.testing.assert_allclose(gn.apply(p, {}, x)[0], ref, rtol=1e-10, atol=1e-12)
    # NHWC images too
    y, _ = fnn.GroupNorm(2).apply({"scale": np.ones(4), "bias": np.zeros(4)}, {},
                                  rng().randn(2, 3, 3, 4))
    assert y.shape == (2, 3, 3, 4)
    with pytest.raises(ValueError, match="not divisible"):
        fnn.GroupNorm(4).init(KEY, x)


@pytest.mark.parametrize("padding,strides,dilation", [("SAME", 1, 1), ("VALID", 2, 1),
                                                      ("CAUSAL", 1, 2), ((2, 1), 1, 1)])
def test_conv1d_values(padding, strides, dilation):
    x = rng().randn(2, 9, 3)
    layer = fnn.Conv1D(4, 3, strides=strides, padding=padding, dilation=dilation)
    p = f64(layer.init(KEY, x)[0])
    assert p["w"].shape == (3, 3, 4)
    p["b"] = rng(1).randn(4)
    y, _ = layer.apply(p, {}, x)
    eff = 2 * dilation + 1
    lo, hi = {"SAME": ((eff - 1) // 2, eff - 1 - (eff - 1) // 2), "VALID": (0, 0),
              "CAUSAL": (eff - 1, 0)}.get(padding, padding) if isinstance(padding, str) \
        else padding
    xp = np.pad(x, ((0, 0), (lo, hi), (0, 0)))
    n_out = (xp.shape[1] - eff) // strides + 1
    ref = np.stack([sum(xp[:, o * strides + j * dilation] @ p["w"][j] for j in range(3))
                    for o in range(n_out)], 1) + p["b"]
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)
    if padding in ("SAME", "CAUSAL") and strides == 1:
        assert y.shape == (2, 9, 4)


def test_conv_transpose2d():
    x = rng().randn(2, 3, 4, 2)
    for padding, size in (("SAME", (6, 8)), ("VALID", (7, 9))):
        layer = fnn.ConvTranspose2D(5, 3, strides=2, padding=padding)
        p = f64(layer.init(KEY, x)[0])
        y, _ = layer.apply(p, {}, x)
        assert y.shape == (2,) + size + (5,)
        if padding == "VALID":          # each input pixel scatters its kernel-sized patch
            ref = np.zeros((2, 7, 9, 5))
            for i in range(3):
                for j in range(4):
                    ref[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3] += np.einsum(
                        "nc,hwco->nhwo", x[:, i, j], p["w"][::-1, ::-1])
            np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    ref = jax.lax.conv_transpose(x, p["w"], (2, 2), "SAME", dimension_numbers=(
        "NHWC", "HWIO", "NHWC"))
    layer = fnn.ConvTranspose2D(5, 3, strides=2, padding="SAME")
    np.testing.assert_allclose(layer.apply(p, {}, x)[0], np.asarray(ref), rtol=1e-10,
                               atol=1e-12)


def test_positional_embedding_and_sequential_lm():
    tokens = np.array([[1, 2, 3, 4], [4, 3, 2, 1]], np.int32)
    model = fnn.Sequential([fnn.Embedding(5, 8), fnn.PositionalEmbedding(6),
                            fnn.TransformerBlock(2, causal=True), fnn.RMSNorm(), fnn.Dense(5)])
    p, s = model.init(KEY, tokens)
    assert sorted(p) == ["dense_0", "embedding_0", "posembed_0", "rmsnorm_0", "transformer_0"]
    assert p["posembed_0"]["embedding"].shape == (6, 8)
    logits, _ = model.apply(p, s, tokens)
    assert logits.shape == (2, 4, 5) and logits.dtype == np.float32
    e = p["embedding_0"]["embedding"][tokens]
    np.testing.assert_allclose(fnn.PositionalEmbedding(6).apply(p["posembed_0"], {}, e)[0],
                               e + p["posembed_0"]["embedding"][:4], rtol=1e-6)
    with pytest.raises(ValueError, match="exceeds max_len=6"):
        model.apply(p, s, np.zeros((1, 7), np.int32))


# ---------------------------------------------------------------------------------------------
# Recurrent layers
# ---------------------------------------------------------------------------------------------

def test_recurrent_values_mask_and_carry():
    x = rng().randn(2, 6, 3)
    lstm = fnn.LSTM(4, return_carry=True)
    p = f64(lstm.init(KEY, x)[0])
    np.testing.assert_array_equal(p["b"][4:8], 1.0)            # forget-gate bias
    (y, (h, c)), _ = lstm.apply(p, {}, x)
    ref, (rh, rc) = np_lstm(p, x)
    close((y, h, c), (ref, rh, rc))
    gru = fnn.GRU(4, return_carry=True)
    pg = f64(gru.init(KEY, x)[0])
    pg["b_ih"], pg["b_hh"] = rng(1).randn(12), rng(2).randn(12)
    (y, h), _ = gru.apply(pg, {}, x)
    close((y, h), np_gru(pg, x))
    # padding mask: sequence 1 has length 4; its carry is the one after step 4
    mask = fnn.padding_mask(np.array([6, 4]), 6)
    (ym, (hm, _)), _ = lstm.apply(p, {}, x, mask=mask)
    close(ym[0], ref[0])
    short, (hs, _) = np_lstm(p, x[1:, :4])
    close((ym[1, :4], hm[1]), (short[0], hs[0]))
    assert np.all(ym[1, 4:] == 0)
    # continuing from a carry == running the whole sequence
    (y1, c1), _ = lstm.apply(p, {}, x[:, :3])
    (y2, _), _ = lstm.apply(p, {}, x[:, 3:], initial_carry=c1)
    close(np.concatenate([y1, y2], 1), ref)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_recurrent_grads_200_steps_match_unrolled(kind):
    r = rng(5)
    x = r.randn(2, 200, 3) * 0.5
    layer = fnn.LSTM(4) if kind == "lstm" else fnn.GRU(4)
    p = f64(layer.init(KEY, x)[0])
    w = r.randn(2, 200, 4)

    def scan_loss(p, x):
        return (layer.apply(p, {}, x)[0] * w).sum()

    def unrolled_loss(p, x):                       # a plain Python loop over time steps
        import transforms.numpy as tnp
        hs = p["w_hh"].shape[0]
        h = c = tnp.zeros((2, hs))
        total = 0.0
        for t in range(200):
            if kind == "lstm":
                z = x[:, t] @ p["w_ih"] + h @ p["w_hh"] + p["b"]
                c = fnn.sigmoid(z[:, 4:8]) * c + fnn.sigmoid(z[:, :4]) * tnp.tanh(z[:, 8:12])
                h = fnn.sigmoid(z[:, 12:]) * tnp.tanh(c)
            else:
                xz = x[:, t] @ p["w_ih"] + p["b_ih"]
                hz = h @ p["w_hh"] + p["b_hh"]
                rr = fnn.sigmoid(xz[:, :4] + hz[:, :4])
                zz = fnn.sigmoid(xz[:, 4:8] + hz[:, 4:8])
                h = (1 - zz) * tnp.tanh(xz[:, 8:] + rr * hz[:, 8:]) + zz * h
            total = total + (h * w[:, t]).sum()
        return total

    v1, g1 = T.value_and_grad(scan_loss, argnums=(0, 1))(p, x)
    v2, g2 = T.value_and_grad(unrolled_loss, argnums=(0, 1))(p, x)
    np.testing.assert_allclose(v1, v2, rtol=1e-12)
    close(g1, g2, tol=1e-9)
    assert np.abs(g1[1][:, 0]).max() > 0          # gradients reach the first step


# ---------------------------------------------------------------------------------------------
# Finite differences, vmap, jit
# ---------------------------------------------------------------------------------------------

GRAD_CASES = {
    "attention": (fnn.MultiHeadAttention(2, causal=True, rotary=True), (2, 4, 4), {}),
    "attention_pad": (fnn.MultiHeadAttention(2, qkv_features=4),
                      (2, 4, 4), {"mask": np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)}),
    "transformer": (fnn.TransformerBlock(2, mlp_features=6, causal=True), (2, 3, 4), {}),
    "rmsnorm": (fnn.RMSNorm(), (2, 3, 4), {}),
    "groupnorm": (fnn.GroupNorm(2), (2, 3, 4), {}),
    "conv1d": (fnn.Conv1D(3, 3, strides=2, padding="CAUSAL"), (2, 5, 2), {}),
    "convtranspose2d": (fnn.ConvTranspose2D(2, 2, strides=2), (1, 2, 3, 2), {}),
    "lstm": (fnn.LSTM(3), (2, 4, 2), {}),
    "gru": (fnn.GRU(3), (2, 4, 2), {}),
    "posembed": (fnn.PositionalEmbedding(5), (2, 3, 4), {}),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_finite_differences(name):
    layer, shape, kw = GRAD_CASES[name]
    x = rng(6).randn(*shape)
    p = f64(layer.init(KEY, x.astype(np.float32))[0])
    p = tree.map(lambda a: a + 0.1 * rng(7).randn(*a.shape), p)  # nonzero biases, scales
    # eps 1e-5: the Transformer block's curvature makes the default step's truncation error
    # (~eps^2 * f''') visible at the float64 tolerance
    check_grads(lambda p, x: layer.apply(p, {}, x, **kw)[0], (p, x), order=1, eps=1e-5)


@pytest.mark.parametrize("name", ["attention", "transformer", "conv1d", "lstm", "gru"])
def test_vmap_over_sequences_equals_loop(name):
    layer, shape, _ = GRAD_CASES[name]
    x = rng(8).randn(*shape)
    p = f64(layer.init(KEY, x)[0])
    batched = T.vmap(lambda s: layer.apply(p, {}, s)[0])(x)
    loop = np.stack([layer.apply(p, {}, s)[0] for s in x])
    np.testing.assert_allclose(batched, loop, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(layer.apply(p, {}, x)[0], loop, rtol=1e-12, atol=1e-13)
    # per-sequence gradients too
    g = T.vmap(T.grad(lambda p, s: (layer.apply(p, {}, s)[0] ** 2).sum()), (None, 0))(p, x)
    gl = [T.grad(lambda p, s: (layer.apply(p, {}, s)[0] ** 2).sum())(p, s) for s in x]
    close(g, tree.map(lambda *a: np.stack(a), *gl), tol=1e-10)


def test_jit_matches_eager():
    """Compiled == eager for causal rotary attention with a padding mask (forward) and a GRU
    (forward and gradients through the compiled reverse scan). Kept to one small program:
    Numba compilation dominates this test's time. (The char_lm example test compiles a
    Transformer training step; the other layers reuse the same primitives.)"""
    x = rng(9).randn(2, 6, 4).astype(np.float32)
    att = fnn.MultiHeadAttention(2, causal=True, rotary=True)
    gru = fnn.GRU(3)
    params = {"att": att.init(KEY, x)[0], "gru": gru.init(KEY, x)[0]}
    mask = fnn.padding_mask(np.array([6, 3]), 6)

    def both(params, x):
        y = att.apply(params["att"], {}, x, mask=mask)[0]
        loss = lambda p: (gru.apply(p, {}, x)[0] ** 2).sum()  # noqa: E731
        return y, T.value_and_grad(loss)(params["gru"])

    eager = both(params, x)
    jitted = T.jit(both)(params, x)
    close(jitted, eager, tol=2e-5)
    x2 = x.copy()
    x2[:, 4:] += 1.0                       # the compiled causal attention ignores the future
    np.testing.assert_array_equal(T.jit(both)(params, x2)[0][:, :4], jitted[0][:, :4])


def test_attention_gradient_compiles_without_head_copies():
    """The logits are scaled after q k^T, so the gradient of q is a product of its own: the
    compiled gradient of causal attention writes the merged heads of the output and of the
    gradients of q, k and v straight from BLAS (no copy loops); values as eager."""
    x = rng(4).randn(2, 16, 32).astype(np.float32)       # products large enough for BLAS
    att = fnn.MultiHeadAttention(2, causal=True)
    p = att.init(KEY, x)[0]
    loss = lambda p, x: (att.apply(p, {}, x)[0] ** 2).sum()  # noqa: E731
    g = T.jit(T.grad(loss, argnums=(0, 1)))
    src = g.lower(p, x).source
    assert src[:src.index("import ")].count("out_layout=(0, 2, 1, 3)") == 4
    close(g(p, x), T.grad(loss, argnums=(0, 1))(p, x), tol=2e-5)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

def test_errors_name_shapes():
    x = np.zeros((2, 5, 8), np.float32)
    att = fnn.MultiHeadAttention(3)
    with pytest.raises(ValueError, match="not divisible by num_heads=3"):
        att.init(KEY, x)
    att = fnn.MultiHeadAttention(2)
    p, _ = att.init(KEY, x)
    with pytest.raises(ValueError, match=r"\(batch, time, channels\).*\(5,\)"):
        att.apply(p, {}, np.zeros((5,), np.float32))
    with pytest.raises(ValueError, match=r"6 channels \(shape \(2, 5, 6\)\).*expect 8"):
        att.apply(p, {}, np.zeros((2, 5, 6), np.float32))
    with pytest.raises(ValueError, match=r"padding mask: expected \(2, 5\), got \(2, 4\)"):
        att.apply(p, {}, x, mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match=r"\(3, 1, 5, 5\) does not broadcast.*\(2, 2, 5, 5\)"):
        att.apply(p, {}, x, mask=np.ones((3, 1, 5, 5), bool))
    with pytest.raises(TypeError, match="boolean"):
        att.apply(p, {}, x, mask=np.ones((2, 5)))
    lstm = fnn.LSTM(4)
    pl, _ = lstm.init(KEY, x)
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, time\) = \(2, 5\)"):
        lstm.apply(pl, {}, x, mask=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match=r"initial carry.*\(2, 4\), got \(2, 3\)"):
        lstm.apply(pl, {}, x, initial_carry=(np.zeros((2, 3)), np.zeros((2, 3))))
    with pytest.raises(ValueError, match="Conv1D padding"):
        fnn.Conv1D(3, 3, padding="FULL")
    with pytest.raises(ValueError, match="norm must be"):
        fnn.TransformerBlock(2, norm="batchnorm")


def test_remat_block_and_dropout_block():
    """`T.checkpoint` around a block changes nothing but memory; block dropout is keyed."""
    x = rng(10).randn(2, 4, 8)
    blk = fnn.TransformerBlock(2, causal=True, dropout_rate=0.3, attention_dropout_rate=0.2)
    p = f64(blk.init(KEY, x)[0])
    k = random.key(3)

    def loss(p, remat):
        run = lambda p, x: blk.apply(p, {}, x, key=k, train=True)[0]  # noqa: E731
        return ((T.checkpoint(run) if remat else run)(p, x) ** 2).sum()

    close(T.value_and_grad(loss)(p, True), T.value_and_grad(loss)(p, False), tol=1e-12)
    ya = blk.apply(p, {}, x, key=k, train=True)[0]
    yb = blk.apply(p, {}, x, key=random.key(4), train=True)[0]
    assert not np.allclose(ya, yb)
    np.testing.assert_array_equal(blk.apply(p, {}, x)[0],
                                  fnn.TransformerBlock(2, causal=True).apply(p, {}, x)[0])
    with pytest.raises(ValueError, match="PRNG key"):
        blk.apply(p, {}, x, train=True)
