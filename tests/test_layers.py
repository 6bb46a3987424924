"""fnn layers, initializers and data: parameter trees and shapes, values against NumPy
references, finite-difference gradients (float64), dropout and batch-norm behaviour, jit/vmap."""
import numpy as np
import pytest

import fnn
import transforms as T
from fnn import data, initializers
from transforms import random, tree
from transforms.test_util import check_grads

RNG = np.random.RandomState(0)
KEY = random.key(0)


def f64(t):
    return tree.map(lambda a: np.asarray(a, np.float64), t)


def shapes(t):
    return tree.map(lambda a: tuple(a.shape), t)


# ---------------------------------------------------------------------------------------------
# NumPy references
# ---------------------------------------------------------------------------------------------

def np_conv(x, w, strides, pads, dilation=(1, 1)):
    x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    (sh, sw), (dh, dw) = strides, dilation
    oh = (h - (kh - 1) * dh - 1) // sh + 1
    ow = (wd - (kw - 1) * dw - 1) // sw + 1
    out = np.zeros((n, oh, ow, co))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * sh:i * sh + (kh - 1) * dh + 1:dh, j * sw:j * sw + (kw - 1) * dw + 1:dw]
            out[:, i, j] = np.einsum("nhwc,hwco->no", patch, w)
    return out


def np_pool(x, window, strides, pads, kind):
    fill = -np.inf if kind == "max" else 0.0
    x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=fill)
    n, h, wd, c = x.shape
    (kh, kw), (sh, sw) = window, strides
    oh, ow = (h - kh) // sh + 1, (wd - kw) // sw + 1
    out = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, i, j] = patch.max(axis=(1, 2)) if kind == "max" else patch.sum(axis=(1, 2))
    return out


# ---------------------------------------------------------------------------------------------
# Dense / Conv2D
# ---------------------------------------------------------------------------------------------

def test_dense():
    x = RNG.randn(4, 3).astype(np.float32)
    layer = fnn.Dense(5)
    p, s = layer.init(KEY, x)
    assert shapes(p) == {"w": (3, 5), "b": (5,)} and s == {}
    assert p["w"].dtype == np.float32 and np.all(p["b"] == 0)
    y, s2 = layer.apply(p, s, x)
    np.testing.assert_allclose(y, x @ p["w"] + p["b"], rtol=1e-6)
    assert s2 == {}
    p2, _ = fnn.Dense(5, use_bias=False).init(KEY, x)
    assert list(p2) == ["w"]
    # any leading dims
    y3, _ = layer.apply(p, s, RNG.randn(2, 4, 3).astype(np.float32))
    assert y3.shape == (2, 4, 5)
    check_grads(lambda p, x: layer.apply(p, {}, x)[0], (f64(p), f64(x)), order=2)
    # init from a shape spec only
    p3, _ = layer.init(KEY, T.ShapeDtypeStruct((7, 3), np.float32))
    np.testing.assert_array_equal(p3["w"], p["w"])


def test_dense_init_statistics():
    p, _ = fnn.Dense(400).init(KEY, np.zeros((1, 300), np.float32))
    # lecun_normal: variance 1 / fan_in
    assert abs(p["w"].std() - np.sqrt(1 / 300)) < 0.003


@pytest.mark.parametrize("padding,strides,dilation", [
    ("SAME", 1, 1), ("VALID", 1, 1), ("SAME", 2, 1), ("VALID", (2, 1), 1), ("SAME", 1, 2),
    (((1, 0), (2, 1)), 1, 1), (1, 2, 1)])
def test_conv2d_values(padding, strides, dilation):
    x = RNG.randn(2, 7, 6, 3)
    layer = fnn.Conv2D(4, (3, 2), strides=strides, padding=padding, dilation=dilation)
    p, s = layer.init(KEY, x.astype(np.float32))
    assert shapes(p) == {"w": (3, 2, 3, 4), "b": (4,)} and s == {}
    p = f64(p)
    p["b"] = RNG.randn(4)
    y, _ = layer.apply(p, s, x)
    from fnn.layers import padding_pairs
    st = layer.strides
    pads = padding_pairs(layer.padding, (7, 6), (3, 2), st, layer.dilation)
    ref = np_conv(x, p["w"], st, pads, layer.dilation) + p["b"]
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10)
    if padding == "SAME":
        assert y.shape[1:3] == (-(-7 // st[0]), -(-6 // st[1]))


def _conv_reference(x, w, strides, pads):
    """NHWC x HWIO cross-correlation by explicit loops (NumPy)."""
    x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    kh, kw, _, co = w.shape
    (sh, sw) = strides
    oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    out = np.zeros((x.shape[0], oh, ow, co))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :]
            out[:, i, j, :] = np.einsum("nhwc,hwco->no", patch, w)
    return out


def test_conv2d_grads_and_values():
    x = RNG.randn(2, 5, 5, 2)
    layer = fnn.Conv2D(3, 3, strides=(2, 1))
    p = f64(layer.init(KEY, x)[0])
    check_grads(lambda p, x: layer.apply(p, {}, x)[0], (p, x), order=1)
    # values against explicit loops with JAX's 'SAME' padding (5 -> 3 rows, 5 -> 5 columns)
    from fnn.layers import padding_pairs
    pads = padding_pairs("SAME", (5, 5), (3, 3), (2, 1))
    assert pads == [(1, 1), (1, 1)]
    ref = _conv_reference(x, p["w"], (2, 1), pads) + p["b"]
    np.testing.assert_allclose(layer.apply(p, {}, x)[0], ref, rtol=1e-10, atol=1e-12)
    # unbatched HWC input
    y, _ = layer.apply(p, {}, x[0])
    np.testing.assert_allclose(y, layer.apply(p, {}, x)[0][0])
    with pytest.raises(ValueError, match="channels"):
        layer.apply(p, {}, RNG.randn(1, 5, 5, 4))


def test_conv_init_fans_hwio():
    # he_normal on an HWIO kernel: variance 2 / (kh * kw * in)
    w = initializers.he_normal()(KEY, (3, 3, 8, 64))
    assert w.dtype == np.float32
    assert abs(w.std() - np.sqrt(2 / 72)) < 0.01
    from fnn.initializers import compute_fans
    assert compute_fans((3, 3, 8, 64)) == (72, 576)
    assert compute_fans((10, 20)) == (10, 20)


# ---------------------------------------------------------------------------------------------
# Pooling / Flatten
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("window,strides,padding", [
    ((2, 2), None, "VALID"), ((3, 3), (2, 2), "VALID"), ((3, 3), (2, 2), "SAME"),
    ((2, 2), None, "SAME"), ((2, 3), (1, 1), "VALID")])
def test_pooling_values(window, strides, padding):
    x = RNG.randn(2, 7, 6, 3)
    from fnn.layers import padding_pairs
    mp = fnn.MaxPool(window, strides, padding)
    st = mp.strides
    pads = padding_pairs(padding, (7, 6), mp.window, st)
    assert mp.init(KEY, x) == ({}, {})
    np.testing.assert_allclose(mp.apply({}, {}, x)[0], np_pool(x, mp.window, st, pads, "max"))
    ap = fnn.AvgPool(window, strides, padding)
    ref_sum = np_pool(x, ap.window, st, pads, "sum")
    np.testing.assert_allclose(ap.apply({}, {}, x)[0], ref_sum / np.prod(ap.window), rtol=1e-12)
    ap2 = fnn.AvgPool(window, strides, padding, count_include_pad=False)
    counts = np_pool(np.ones((1, 7, 6, 1)), ap.window, st, pads, "sum")
    np.testing.assert_allclose(ap2.apply({}, {}, x)[0], ref_sum / counts, rtol=1e-12)


def test_pooling_grads():
    x = RNG.randn(1, 5, 5, 2)      # distinct values: max is differentiable
    check_grads(lambda x: fnn.MaxPool((2, 2)).apply({}, {}, x)[0], (x,), order=1)
    check_grads(lambda x: fnn.MaxPool((3, 3), (2, 2), "SAME").apply({}, {}, x)[0], (x,), order=1)
    check_grads(lambda x: fnn.AvgPool((2, 2), (1, 1)).apply({}, {}, x)[0], (x,), order=1)
    g = T.grad(lambda x: fnn.MaxPool((2, 2)).apply({}, {}, x)[0].sum())(x)
    assert g.sum() == 2 * 2 * 2 and set(np.unique(g)) <= {0.0, 1.0}


def test_flatten():
    y, s = fnn.Flatten().apply({}, {}, np.zeros((3, 2, 4, 5)))
    assert y.shape == (3, 40) and s == {}


# ---------------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------------

def test_dropout():
    x = np.ones((200, 500), np.float32)
    d = fnn.Dropout(0.3)
    assert d.init(KEY, x) == ({}, {})
    y, _ = d.apply({}, {}, x)                               # eval: identity, no key needed
    assert y is x or np.array_equal(y, x)
    y, _ = d.apply({}, {}, x, key=random.key(1), train=True)
    zero_frac = np.mean(y == 0)
    assert abs(zero_frac - 0.3) < 0.01
    np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.02                       # expectation preserved
    y2, _ = d.apply({}, {}, x, key=random.key(1), train=True)
    np.testing.assert_array_equal(y, y2)                    # deterministic per key
    y3, _ = d.apply({}, {}, x, key=random.key(2), train=True)
    assert not np.array_equal(y, y3)
    with pytest.raises(ValueError, match="key"):
        d.apply({}, {}, x, train=True)
    assert np.array_equal(fnn.Dropout(0.0).apply({}, {}, x, train=True)[0], x)
    assert np.all(fnn.Dropout(1.0).apply({}, {}, x, train=True)[0] == 0)
    with pytest.raises(ValueError):
        fnn.Dropout(1.5)
    # gradient flows through kept units only, scaled
    g = T.grad(lambda x: d.apply({}, {}, x, key=random.key(1), train=True)[0].sum())(x)
    np.testing.assert_allclose(g, (y != 0) / 0.7, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# BatchNorm / LayerNorm
# ---------------------------------------------------------------------------------------------

def test_batchnorm_running_averages():
    bn = fnn.BatchNorm(momentum=0.9, eps=1e-5)
    x0 = RNG.randn(16, 3).astype(np.float32)
    p, s = bn.init(KEY, x0)
    assert shapes(p) == {"scale": (3,), "bias": (3,)}
    assert shapes(s) == {"mean": (3,), "var": (3,)}
    np.testing.assert_array_equal(s["mean"], 0)
    np.testing.assert_array_equal(s["var"], 1)
    ref_mean, ref_var = np.zeros(3), np.ones(3)
    state = s
    for step in range(4):
        xb = (RNG.randn(16, 3) * [1.0, 2.0, 0.5] + [0.0, 3.0, -1.0]).astype(np.float32)
        y, state = bn.apply(p, state, xb, train=True)
        m, v = xb.mean(0), xb.var(0)
        ref_mean = 0.9 * ref_mean + 0.1 * m
        ref_var = 0.9 * ref_var + 0.1 * v
        np.testing.assert_allclose(state["mean"], ref_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(state["var"], ref_var, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(y, (xb - m) / np.sqrt(v + 1e-5), rtol=1e-4, atol=1e-5)
        assert state["mean"].dtype == np.float32
    # eval mode: running statistics, state unchanged
    xe = RNG.randn(5, 3).astype(np.float32)
    p2 = {"scale": np.array([1.0, 2.0, 3.0], np.float32), "bias": np.array([0.5, 0, -1],
                                                                           np.float32)}
    ye, s_after = bn.apply(p2, state, xe, train=False)
    np.testing.assert_allclose(
        ye, (xe - ref_mean) / np.sqrt(ref_var + 1e-5) * p2["scale"] + p2["bias"], rtol=1e-4,
        atol=1e-5)
    np.testing.assert_array_equal(s_after["mean"], state["mean"])


def test_batchnorm_axis_and_grads():
    bn = fnn.BatchNorm(axis=1)                             # NCHW-style features
    x = RNG.randn(4, 3, 2, 2)
    p, s = bn.init(KEY, x)
    assert shapes(s) == {"mean": (3,), "var": (3,)}
    y, s2 = bn.apply(p, s, x, train=True)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-4)
    np.testing.assert_allclose(s2["mean"], 0.01 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    p = f64(p)
    p["scale"] = RNG.randn(3)
    check_grads(lambda p, x: bn.apply(p, f64(s), x, train=True)[0], (p, x), order=1)
    check_grads(lambda p, x: bn.apply(p, f64(s2), x, train=False)[0], (p, x), order=1)


def test_layernorm():
    ln = fnn.LayerNorm()
    x = RNG.randn(4, 6)
    p, s = ln.init(KEY, x)
    assert shapes(p) == {"scale": (6,), "bias": (6,)} and s == {}
    p = {"scale": RNG.randn(6), "bias": RNG.randn(6)}
    y, _ = ln.apply(p, s, x)
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(y, ref * p["scale"] + p["bias"], rtol=1e-10)
    check_grads(lambda p, x: ln.apply(p, {}, x)[0], (p, x), order=2)


def test_embedding():
    emb = fnn.Embedding(10, 4)
    ids = np.array([[1, 2, 2], [9, 0, 1]])
    p, s = emb.init(KEY, ids)
    assert shapes(p) == {"embedding": (10, 4)} and s == {}
    assert abs(p["embedding"].std() - 0.5) < 0.2          # variance 1 / features
    y, _ = emb.apply(p, s, ids)
    np.testing.assert_array_equal(y, p["embedding"][ids])
    g = T.grad(lambda t: emb.apply({"embedding": t}, {}, ids)[0].sum())(f64(p)["embedding"])
    np.testing.assert_array_equal(g[:, 0], np.bincount(ids.ravel(), minlength=10))
    with pytest.raises(TypeError, match="integer"):
        emb.apply(p, s, np.ones(3))


# ---------------------------------------------------------------------------------------------
# Sequential
# ---------------------------------------------------------------------------------------------

def cnn():
    return fnn.Sequential([fnn.Conv2D(4, (3, 3)), fnn.relu, fnn.MaxPool((2, 2)),
                           fnn.Flatten(), fnn.Dense(8), fnn.relu, fnn.Dropout(0.5),
                           fnn.Dense(3)])


def test_sequential_trees_and_names():
    model = cnn()
    x = RNG.randn(2, 8, 8, 1).astype(np.float32)
    params, state = model.init(KEY, x)
    assert shapes(params) == {"conv2d_0": {"w": (3, 3, 1, 4), "b": (4,)},
                              "dense_0": {"w": (64, 8), "b": (8,)},
                              "dense_1": {"w": (8, 3), "b": (3,)}}
    assert state == {}
    assert model.names == ["conv2d_0", "relu_0", "maxpool_0", "flatten_0", "dense_0", "relu_1",
                           "dropout_0", "dense_1"]
    assert model["dense_1"] is model.layers[-1]
    y, st = model.apply(params, state, x)
    assert y.shape == (2, 3) and st == {}
    # dropout needs a key in training only
    with pytest.raises(ValueError, match="key"):
        model.apply(params, state, x, train=True)
    y1, _ = model.apply(params, state, x, key=random.key(3), train=True)
    y2, _ = model.apply(params, state, x, key=random.key(3), train=True)
    np.testing.assert_array_equal(y1, y2)
    # custom names, duplicate names, nested models
    m2 = fnn.Sequential([fnn.Dense(4, name="body"), fnn.Dense(2), fnn.BatchNorm(name="bn"),
                         fnn.Sequential([fnn.Dense(3), fnn.tanh])])
    p2, s2 = m2.init(KEY, np.zeros((5, 6), np.float32))
    assert list(p2) == ["body", "dense_0", "bn", "sequential_0"]
    assert list(s2) == ["bn"] and list(p2["sequential_0"]) == ["dense_0"]
    assert m2.apply(p2, s2, np.zeros((5, 6), np.float32))[0].shape == (5, 3)
    with pytest.raises(ValueError, match="named"):
        fnn.Sequential([fnn.Dense(2, name="a"), fnn.Dense(2, name="a")])
    with pytest.raises(TypeError):
        fnn.Sequential([3])
    with pytest.raises(KeyError, match="dense_0"):
        model.apply({"conv2d_0": params["conv2d_0"]}, {}, x)
    # different init keys give different weights; the same key the same
    pa, _ = model.init(random.key(1), x)
    pb, _ = model.init(random.key(1), x)
    np.testing.assert_array_equal(pa["dense_0"]["w"], pb["dense_0"]["w"])
    assert not np.array_equal(pa["dense_0"]["w"], params["dense_0"]["w"])


def test_sequential_init_does_not_compute():
    # init only traces shapes: a large sample batch costs nothing
    model = fnn.Sequential([fnn.Dense(64), fnn.relu, fnn.Dense(10)])
    big = T.ShapeDtypeStruct((1_000_000, 32), np.float32)
    params, _ = model.init(KEY, big)
    assert params["dense_1"]["w"].shape == (64, 10)


def test_sequential_batchnorm_state_threading():
    model = fnn.Sequential([fnn.Dense(4), fnn.BatchNorm(momentum=0.5), fnn.relu, fnn.Dense(2)])
    x = RNG.randn(8, 3).astype(np.float32)
    params, state = model.init(KEY, x)
    np.testing.assert_array_equal(state["batchnorm_0"]["mean"], 0)
    _, new_state = model.apply(params, state, x, train=True)
    h = x @ params["dense_0"]["w"] + params["dense_0"]["b"]
    np.testing.assert_allclose(new_state["batchnorm_0"]["mean"], 0.5 * h.mean(0), rtol=1e-5,
                               atol=1e-6)
    _, same = model.apply(params, new_state, x, train=False)
    np.testing.assert_array_equal(same["batchnorm_0"]["var"], new_state["batchnorm_0"]["var"])


def test_sequential_grads_fd():
    model = fnn.Sequential([fnn.Conv2D(2, (2, 2), padding="VALID"), fnn.tanh,
                            fnn.AvgPool((2, 2)), fnn.Flatten(), fnn.Dense(3), fnn.gelu,
                            fnn.LayerNorm(), fnn.Dense(2), fnn.log_softmax])
    x = np.random.RandomState(1).randn(2, 5, 5, 1)
    params, state = model.init(KEY, x.astype(np.float32))
    params = f64(params)
    check_grads(lambda p, x: model.apply(p, state, x)[0], (params, x), order=1)


def test_vmap_over_examples_matches_batch():
    model = fnn.Sequential([fnn.Dense(5), fnn.silu, fnn.Dense(2)])
    x = RNG.randn(6, 3).astype(np.float32)
    params, state = model.init(KEY, x)
    per_ex = T.vmap(lambda xi: model.apply(params, state, xi)[0])(x)
    np.testing.assert_allclose(per_ex, model.apply(params, state, x)[0], rtol=1e-5, atol=1e-6)


def test_apply_traces_without_python_branching():
    # apply stages to a jaxpr (no Python control flow on values), train and eval
    model = fnn.Sequential([fnn.Conv2D(2, 3), fnn.BatchNorm(), fnn.relu, fnn.MaxPool(2),
                            fnn.Flatten(), fnn.Dropout(0.2), fnn.Dense(3)])
    x = RNG.randn(2, 4, 4, 1).astype(np.float32)
    params, state = model.init(KEY, x)
    f = lambda p, s, x, k: model.apply(p, s, x, key=k, train=True)  # noqa: E731
    closed = T.make_jaxpr(f)(params, state, x, random.key(1))
    assert "threefry2x32" in str(closed)


def test_jit_apply_matches_eager():
    model = fnn.Sequential([fnn.Conv2D(3, 3), fnn.BatchNorm(), fnn.relu, fnn.MaxPool(2),
                            fnn.Flatten(), fnn.Dropout(0.25), fnn.Dense(4), fnn.log_softmax])
    x = RNG.randn(3, 6, 6, 2).astype(np.float32)
    params, state = model.init(KEY, x)
    k = random.key(5)

    def step(p, s, x, k):
        return model.apply(p, s, x, key=k, train=True)

    y_j, s_j = T.jit(step)(params, state, x, k)
    y_e, s_e = step(params, state, x, k)
    np.testing.assert_allclose(y_j, y_e, rtol=1e-4, atol=1e-5)
    tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), s_j, s_e)
    g_j = T.jit(T.grad(lambda p: step(p, state, x, k)[0].sum()))(params)
    g_e = T.grad(lambda p: step(p, state, x, k)[0].sum())(params)
    tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4), g_j, g_e)


# ---------------------------------------------------------------------------------------------
# Initializers
# ---------------------------------------------------------------------------------------------

def test_initializers():
    k = random.key(7)
    shape = (200, 300)
    w = initializers.glorot_uniform()(k, shape)
    bound = np.sqrt(6 / 500)
    assert w.dtype == np.float32 and w.shape == shape
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - np.sqrt(2 / 500)) < 0.002
    assert abs(initializers.glorot_normal()(k, shape).std() - np.sqrt(2 / 500)) < 0.002
    assert abs(initializers.he_uniform()(k, shape).std() - np.sqrt(2 / 200)) < 0.003
    assert abs(initializers.he_normal()(k, shape).std() - np.sqrt(2 / 200)) < 0.003
    tn = initializers.lecun_normal()(k, shape)
    assert abs(tn.std() - np.sqrt(1 / 200)) < 0.002
    assert np.abs(tn).max() <= 2 * np.sqrt(1 / 200) / 0.87962566103423978 + 1e-6
    n = initializers.normal(stddev=0.5)(k, (100, 100))
    assert abs(n.std() - 0.5) < 0.02
    u = initializers.uniform(scale=2.0)(k, (1000,))
    assert u.min() >= 0 and u.max() < 2 and u.max() > 1.9
    assert initializers.normal()(k, (3,), np.float64).dtype == np.float64
    np.testing.assert_array_equal(initializers.zeros(k, (2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(initializers.ones()(k, (2,)), np.ones(2))
    assert initializers.zeros(k, (2,)).dtype == np.float32
    np.testing.assert_array_equal(initializers.constant(3.0)(k, (2,)), [3.0, 3.0])
    # deterministic per key
    np.testing.assert_array_equal(initializers.he_normal()(k, (5, 5)),
                                  initializers.he_normal()(k, (5, 5)))


# ---------------------------------------------------------------------------------------------
# data.batches
# ---------------------------------------------------------------------------------------------

def test_batches():
    x = np.arange(10 * 2).reshape(10, 2)
    y = np.arange(10)
    bs = list(data.batches((x, y), 4))
    assert [b[1].tolist() for b in bs] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert all(isinstance(b, tuple) and len(b) == 2 for b in bs)
    assert [len(b[1]) for b in data.batches([x, y], 4, drop_last=True)] == [4, 4]
    sh = list(data.batches((x, y), 3, key=random.key(0)))
    order = np.concatenate([b[1] for b in sh])
    assert sorted(order.tolist()) == list(range(10)) and order.tolist() != list(range(10))
    for bx, by in sh:
        np.testing.assert_array_equal(bx[:, 0], 2 * by)      # rows stay aligned
    again = np.concatenate([b[1] for b in data.batches((x, y), 3, key=random.key(0))])
    np.testing.assert_array_equal(order, again)
    other = np.concatenate([b[1] for b in data.batches((x, y), 3, key=random.key(1))])
    assert not np.array_equal(order, other)
    single = list(data.batches(y, 5))
    assert [b.tolist() for b in single] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert data.num_batches(10, 4) == 3 and data.num_batches(10, 4, drop_last=True) == 2
    with pytest.raises(ValueError, match="first dimension"):
        data.batches((x, y[:9]), 2)
    with pytest.raises(ValueError):
        data.batches((x,), 0)
