"""lax.conv_general_dilated and reduce_window pooling: values against Python-loop references,
derivatives (first and second order) against finite differences, vmap, jit."""
import itertools

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax
from transforms.lax.conv import (_conv_gather, _conv_out_size, _conv_scatter,  # noqa: E402
                                 conv_dimension_numbers)
from transforms.test_util import check_grads

rng = np.random.default_rng(0)


def ref_conv(lhs, rhs, strides, pads, ld, rd, groups=1, batch_groups=1):
    """Direct N-d convolution, NC... x OI..., looping over output positions."""
    n, c = lhs.shape[:2]
    o, i = rhs.shape[:2]
    sp, k = lhs.shape[2:], rhs.shape[2:]
    nd = len(sp)
    dil = tuple((s - 1) * d + 1 for s, d in zip(sp, ld))
    xd = np.zeros((n, c) + dil, lhs.dtype)
    xd[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in ld)] = lhs
    big = np.zeros((n, c) + tuple(s + max(lo, 0) + max(hi, 0) for s, (lo, hi) in zip(dil, pads)))
    big[(slice(None), slice(None)) + tuple(slice(max(lo, 0), max(lo, 0) + s)
                                           for s, (lo, hi) in zip(dil, pads))] = xd
    xp = big[(slice(None), slice(None)) + tuple(slice(-min(lo, 0), b - max(-hi, 0))
                                               for b, (lo, hi) in zip(big.shape[2:], pads))]
    eff = tuple((kk - 1) * r + 1 for kk, r in zip(k, rd))
    osp = tuple(max(0, (p - e) // s + 1) if p >= e else 0
                for p, e, s in zip(xp.shape[2:], eff, strides))
    nb = n // batch_groups
    out = np.zeros((nb, o) + osp)
    og, ob = o // groups, o // batch_groups
    for pos in itertools.product(*[range(q) for q in osp]):
        win = xp[(slice(None), slice(None)) + tuple(
            slice(p * s, p * s + e, r) for p, s, e, r in zip(pos, strides, eff, rd))]
        for oc in range(o):
            g, b = oc // og, oc // ob
            w = win[b * nb:(b + 1) * nb, g * i:(g + 1) * i]
            out[(slice(None), oc) + pos] = np.tensordot(w, rhs[oc], axes=nd + 1)
    return out


CASES = [
    # spatial, kernel, strides, padding, lhs_dilation, rhs_dilation, groups, batch_groups
    ((6, 5), (3, 2), (1, 1), ((1, 1), (0, 1)), (1, 1), (1, 1), 1, 1),
    ((7, 7), (3, 3), (2, 2), "SAME", (1, 1), (1, 1), 1, 1),
    ((6, 6), (2, 2), (1, 2), ((0, 0), (2, 1)), (1, 1), (2, 2), 1, 1),
    ((4, 5), (3, 3), (1, 1), ((2, 2), (1, 2)), (2, 1), (1, 1), 1, 1),
    ((5, 5), (3, 3), (2, 1), ((1, 0), (-1, 1)), (1, 1), (1, 1), 2, 1),
    ((5, 5), (2, 3), (1, 1), ((1, 0), (0, 1)), (1, 1), (1, 1), 1, 2),
    ((9, 8), (3, 3), (3, 2), "VALID", (1, 1), (1, 1), 1, 1),
    ((7,), (3,), (2,), "SAME", (1,), (2,), 1, 1),
    ((4, 3, 4), (2, 2, 3), (1, 2, 1), ((1, 0), (0, 1), (1, 1)), (1, 1, 1), (1, 1, 1), 1, 1),
]


def make_case(spatial, kernel, groups, batch_groups):
    n, c, o = 2 * batch_groups, 2 * groups, 3 * groups * batch_groups
    x = rng.normal(size=(n, c) + spatial)
    w = rng.normal(size=(o, c // groups) + kernel)
    return x, w


def explicit_pads(spatial, kernel, strides, padding, rd):
    if isinstance(padding, str):
        return lax.padtype_to_pads(spatial, [(k - 1) * r + 1 for k, r in zip(kernel, rd)],
                                   strides, padding)
    return padding


@pytest.mark.parametrize("case", CASES)
def test_conv_values_layouts_grads_vmap(case):
    spatial, kernel, strides, padding, ld, rd, g, bg = case
    x, w = make_case(spatial, kernel, g, bg)

    def f(x, w):
        return lax.conv_general_dilated(x, w, strides, padding, ld, rd, feature_group_count=g,
                                        batch_group_count=bg)
    ref = ref_conv(x, w, strides, explicit_pads(spatial, kernel, strides, padding, rd), ld, rd,
                   g, bg)
    y = f(x, w)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10)
    # channels-last layouts (as fnn uses): same numbers
    nd = len(spatial)
    sp = "HWD"[:nd]
    dn = ("N" + sp + "C", sp + "IO", "N" + sp + "C")
    last = (0,) + tuple(range(2, nd + 2)) + (1,)
    y2 = lax.conv_general_dilated(x.transpose(last), w.transpose(tuple(range(2, nd + 2)) + (1, 0)),
                                  strides, padding, ld, rd, dn, feature_group_count=g,
                                  batch_group_count=bg)
    np.testing.assert_allclose(y2, ref.transpose(last), rtol=1e-10, atol=1e-10)
    check_grads(f, (x, w), order=2)
    # vmap over both operands, over the input only, over the kernel only
    xs, ws = np.stack([x, 2 * x]), np.stack([w, -w])
    np.testing.assert_allclose(T.vmap(f)(xs, ws), np.stack([ref, -2 * ref]), atol=1e-10)
    np.testing.assert_allclose(T.vmap(f, in_axes=(0, None))(xs, w), np.stack([ref, 2 * ref]),
                               atol=1e-10)
    np.testing.assert_allclose(T.vmap(f, in_axes=(None, 1))(x, np.moveaxis(ws, 0, 1)),
                               np.stack([ref, -ref]), atol=1e-10)


def test_conv_gather_and_scatter_paths_agree():
    for st_case in range(6):
        n, c, o = 2, 4, 6
        g = 2 if st_case % 2 else 1
        x = rng.normal(size=(n, 5, 6, c))
        w = rng.normal(size=(3, 2, c // g, o))
        pads = [((0, 0), (0, 0)), ((2, 2), (1, 1)), ((1, -1), (3, 0))][st_case // 2]
        ld, rd = ((1, 1), (1, 1)) if st_case < 2 else ((2, 1), (1, 2))
        out_sp = tuple(_conv_out_size(x.shape[1 + d], w.shape[d], 1, pads[d][0], pads[d][1],
                                        ld[d], rd[d]) for d in range(2))
        a = _conv_gather(x, w, (1, 1), pads, ld, rd, out_sp, g, 1)
        b = _conv_scatter(x, w, pads, ld, rd, out_sp, g)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_conv_nhwc_training_shapes_and_grads():
    x = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    w = (rng.normal(size=(3, 3, 3, 4)) * 0.3).astype(np.float32)
    dn = ("NHWC", "HWIO", "NHWC")

    def loss(w, x):
        y = lax.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=dn)
        return tnp.sum(tnp.tanh(y) ** 2)
    y = lax.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=dn)
    assert y.shape == (2, 4, 4, 4) and y.dtype == np.float32
    gw, gx = T.grad(loss, argnums=(0, 1))(w, x)
    assert gw.dtype == np.float32 and gw.shape == w.shape and gx.shape == x.shape
    check_grads(loss, (w.astype(np.float64), x.astype(np.float64)), order=1)


def test_conv_errors_and_dimension_numbers():
    x, w = np.ones((1, 4, 5, 5)), np.ones((2, 3, 3, 3))
    with pytest.raises(ValueError, match="feature"):
        lax.conv_general_dilated(x, w, (1, 1), "VALID")
    with pytest.raises(ValueError, match="padding"):
        lax.conv_general_dilated(np.ones((1, 3, 5, 5)), w, (1, 1), "FULL")
    with pytest.raises(TypeError, match="spec"):
        lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCH"))
    dn = conv_dimension_numbers((1, 5, 5, 3), (3, 3, 3, 2), ("NHWC", "HWIO", "NHWC"))
    assert dn == ((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))
    # mixed dtypes promote
    y = lax.conv_general_dilated(np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 2, 2)),
                                 (1, 1), "VALID")
    assert y.dtype == np.float64


def test_conv_transpose_is_gradient_of_conv():
    # conv_transpose(y, w) with transpose_kernel=True is the input-gradient of a strided conv
    x = rng.normal(size=(1, 7, 7, 2))
    w = rng.normal(size=(3, 3, 2, 4))
    dn = ("NHWC", "HWIO", "NHWC")
    f = lambda x: lax.conv_general_dilated(x, w, (2, 2), "VALID", dimension_numbers=dn)
    ct = rng.normal(size=f(x).shape)
    _, vjp = T.vjp(f, x)
    want = vjp(ct)[0]
    got = lax.conv_transpose(ct, w, (2, 2), "VALID", dimension_numbers=dn, transpose_kernel=True)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert lax.conv_transpose(np.ones((1, 4, 4, 2)), np.ones((3, 3, 2, 5)), (2, 2),
                              "SAME").shape == (1, 8, 8, 5)


# ---------------------------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------------------------

def ref_pool(x, win, strides, pads, kind):
    init = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, pads, constant_values=init)
    shape = [(n - k) // s + 1 for n, k, s in zip(xp.shape, win, strides)]
    out = np.zeros(shape)
    for idx in np.ndindex(*shape):
        sl = tuple(slice(i * s, i * s + k) for i, s, k in zip(idx, strides, win))
        out[idx] = xp[sl].max() if kind == "max" else xp[sl].sum()
    return out


POOLS = [((1, 2, 2, 1), (1, 2, 2, 1), "VALID"), ((1, 3, 3, 1), (1, 1, 1, 1), "SAME"),
         ((1, 3, 2, 1), (1, 2, 1, 1), "SAME"),
         ((2, 2, 3, 1), (1, 2, 2, 1), ((0, 0), (1, 0), (1, 2), (0, 0)))]


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("kind", ["max", "sum"])
def test_reduce_window(pool, kind):
    win, st, pad = pool
    x = rng.normal(size=(2, 5, 6, 3))
    pads = lax.padtype_to_pads(x.shape, win, st, pad) if isinstance(pad, str) else pad
    comp, init = (lax.max, -np.inf) if kind == "max" else (lax.add, 0.0)
    f = lambda x: lax.reduce_window(x, init, comp, win, st, pad)
    ref = ref_pool(x, win, st, pads, kind)
    np.testing.assert_allclose(f(x), ref, rtol=1e-12, atol=1e-12)
    check_grads(f, (x,), order=2)
    np.testing.assert_allclose(T.vmap(f)(np.stack([x, -x])),
                               np.stack([ref, ref_pool(-x, win, st, pads, kind)]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(T.vmap(f, in_axes=2, out_axes=2)(np.stack([x, -x], 2)),
                               np.stack([ref, ref_pool(-x, win, st, pads, kind)], 2),
                               rtol=1e-12, atol=1e-12)


def test_pool_helpers_and_dilation():
    x = rng.normal(size=(2, 6, 6, 3))
    np.testing.assert_allclose(lax.max_pool(x, (2, 2)), x.reshape(2, 3, 2, 3, 2, 3).max((2, 4)))
    np.testing.assert_allclose(lax.avg_pool(x, (2, 2)), x.reshape(2, 3, 2, 3, 2, 3).mean((2, 4)))
    np.testing.assert_allclose(lax.sum_pool(x, (3, 3), (3, 3)),
                               x.reshape(2, 2, 3, 2, 3, 3).sum((2, 4)))
    cnt = lax.avg_pool(np.ones((1, 3, 3, 1)), (3, 3), (1, 1), "SAME", count_include_pad=False)
    np.testing.assert_allclose(cnt, np.ones((1, 3, 3, 1)))
    assert float(lax.avg_pool(np.ones((1, 3, 3, 1)), (3, 3), (1, 1), "SAME")[0, 0, 0, 0]) == 4 / 9
    # min pooling; init other than the identity; window dilation
    np.testing.assert_allclose(lax.reduce_window(x, np.inf, lax.min, (1, 2, 2, 1), (1, 2, 2, 1)),
                               x.reshape(2, 3, 2, 3, 2, 3).min((2, 4)))
    np.testing.assert_allclose(lax.reduce_window(x, 0.5, lax.max, (1, 6, 6, 1), (1, 1, 1, 1)),
                               np.maximum(x.max((1, 2), keepdims=True), 0.5))
    d = lax.reduce_window(x, 0.0, lax.add, (1, 2, 2, 1), (1, 1, 1, 1), "VALID",
                          window_dilation=(1, 2, 3, 1))
    np.testing.assert_allclose(d, x[:, :4, :3] + x[:, 2:, :3] + x[:, :4, 3:] + x[:, 2:, 3:])
    check_grads(lambda x: lax.reduce_window(x, -np.inf, lax.max, (1, 2, 2, 1), (1, 1, 1, 1),
                                            "VALID", window_dilation=(1, 2, 1, 1)),
                (x,), order=2)
    check_grads(lambda x: lax.reduce_window(x, 0.0, lax.add, (1, 2, 2, 1), (1, 2, 1, 1),
                                            ((0, 0), (1, 1), (0, 1), (0, 0)),
                                            base_dilation=(1, 2, 1, 1)), (x,), order=1)
    with pytest.raises(TypeError, match="not differentiable"):
        T.grad(lambda x: tnp.sum(lax.reduce_window(x, 1.0, lax.mul, (1, 2, 2, 1),
                                                   (1, 1, 1, 1))))(x)
    with pytest.raises(NotImplementedError, match="lax.add, lax.max, lax.min, lax.mul"):
        lax.reduce_window(x, 1.0, lambda a, b: a - b, (1, 2, 2, 1), (1, 1, 1, 1))


# values recorded from jax 0.10 (x64): every window starts from init_value and combines its
# real elements; padding positions and base-dilation holes contribute nothing
_RW_GENERAL_CASES = [
    ("add_init_base_dilation", lambda x: lax.reduce_window(
        x, 10.0, lax.add, (2,), (1,), ((1, 1),), base_dilation=(2,)),
     np.arange(1.0, 5.0), [11., 11., 12., 12., 13., 13., 14., 14.]),
    ("mul_init", lambda x: lax.reduce_window(x, 3.0, lax.mul, (3,), (2,), ((2, 1),)),
     np.arange(1.0, 5.0), [3., 18., 36.]),
    ("min_init", lambda x: lax.reduce_window(x, 3.0, lax.min, (2,), (1,), ((1, 1),)),
     np.arange(1.0, 5.0), [1., 1., 2., 3., 3.]),
    ("add_init_2d", lambda x: lax.reduce_window(x, 2.0, lax.add, (1, 2), (1, 1),
                                                ((0, 0), (1, 0))),
     np.arange(1.0, 7.0).reshape(2, 3), [[3., 5., 7.], [6., 11., 13.]]),
    ("mul_init_2d", lambda x: lax.reduce_window(x, 2.0, lax.mul, (1, 2), (1, 1),
                                                ((0, 0), (1, 0))),
     np.arange(1.0, 7.0).reshape(2, 3), [[2., 4., 12.], [8., 40., 60.]]),
    ("bool_or", lambda b: lax.reduce_window(b, False, lax.bitwise_or, (1, 2), (1, 1), "VALID"),
     np.array([[True, False, False], [False, False, True]]), [[True, False], [False, True]]),
    ("bool_max", lambda b: lax.reduce_window(b, False, lax.max, (1, 2), (1, 1), "VALID"),
     np.array([[True, False, False], [False, False, True]]), [[True, False], [False, True]]),
    ("bool_and_same", lambda b: lax.reduce_window(b, True, lax.bitwise_and, (1, 2), (1, 1),
                                                  "SAME"),
     np.array([[True, False, False], [False, False, True]]),
     [[False, False, False], [False, False, True]]),
    ("bool_xor_same", lambda b: lax.reduce_window(b, True, lax.bitwise_xor, (1, 2), (1, 1),
                                                  "SAME"),
     np.array([[True, False, False], [False, False, True]]),
     [[False, True, True], [True, False, False]]),
    ("int_mul", lambda i: lax.reduce_window(i, 2, lax.mul, (2,), (1,), ((1, 1),)),
     np.arange(1, 5, dtype=np.int32), [2, 4, 12, 24, 8]),
    ("int_and", lambda i: lax.reduce_window(i, -1, lax.bitwise_and, (2,), (1,), ((1, 1),)),
     np.arange(1, 5, dtype=np.int32), [1, 0, 2, 0, 4]),
    ("int_or_init", lambda i: lax.reduce_window(i, 8, lax.bitwise_or, (2,), (1,), ((1, 1),)),
     np.arange(1, 5, dtype=np.int32), [9, 11, 11, 15, 12]),
    ("int_xor", lambda i: lax.reduce_window(i, 0, lax.bitwise_xor, (2,), (1,), ((1, 1),)),
     np.arange(1, 5, dtype=np.int32), [1, 3, 1, 7, 4]),
]


@pytest.mark.parametrize("name,f,x,want", _RW_GENERAL_CASES, ids=[c[0] for c in _RW_GENERAL_CASES])
def test_reduce_window_general_reducer_matches_jax(name, f, x, want):
    want = np.asarray(want, x.dtype)
    for got in (f(x), T.jit(f)(x)):
        assert got.dtype == x.dtype
        np.testing.assert_array_equal(got, want)
    # batching: a stacked pair of operands gives each operand's result
    got = T.vmap(f)(np.stack([x, x]))
    np.testing.assert_array_equal(got, np.stack([want, want]))


def test_reduce_window_general_reducer_vmap_recorded():
    f = lambda x: lax.reduce_window(x, 2.0, lax.mul, (2,), (1,), ((1, 1),))
    want = [[2., 4., 4.], [6., 24., 8.]]   # jax.vmap(f) on arange(1, 5).reshape(2, 2)
    np.testing.assert_array_equal(T.vmap(f)(np.arange(1.0, 5.0).reshape(2, 2)), want)
    np.testing.assert_array_equal(T.jit(T.vmap(f))(np.arange(1.0, 5.0).reshape(2, 2)), want)


def test_max_pool_gradient_routes_to_argmax():
    x = np.array([[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 9.0, 8.0]]).reshape(1, 2, 4, 1)
    g = T.grad(lambda x: tnp.sum(lax.max_pool(x, (2, 2)) * np.array([1.0, 10.0]).reshape(1, 1, 2, 1)))(x)
    want = np.zeros((2, 4))
    want[0, 1], want[1, 2] = 1.0, 10.0
    np.testing.assert_allclose(g[0, :, :, 0], want)


def test_small_cnn_grad_composition():
    x = rng.normal(size=(2, 6, 6, 1))
    params = {"w1": rng.normal(size=(3, 3, 1, 2)) * 0.5, "w2": rng.normal(size=(18, 3)) * 0.3}
    dn = ("NHWC", "HWIO", "NHWC")

    def loss(p, x):
        h = lax.conv_general_dilated(x, p["w1"], (1, 1), "SAME", dimension_numbers=dn)
        h = lax.max_pool(tnp.tanh(h), (2, 2))
        return tnp.sum(tnp.sin(h.reshape(h.shape[0], -1) @ p["w2"]))
    check_grads(loss, (params, x), order=2, rtol=1e-4, atol=1e-4)
    per_ex = T.vmap(T.grad(loss), in_axes=(None, 0))(params, x[:, None])
    for k in range(2):
        one = T.grad(loss)(params, x[k:k + 1])
        np.testing.assert_allclose(per_ex["w1"][k], one["w1"], rtol=1e-10)


def test_conv_pool_jit():
    x = rng.normal(size=(2, 6, 6, 2)).astype(np.float32)
    w = rng.normal(size=(3, 3, 2, 3)).astype(np.float32)
    dn = ("NHWC", "HWIO", "NHWC")

    def f(w, x):
        y = lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dn)
        return tnp.sum(lax.max_pool(y, (2, 2)) ** 2) + tnp.sum(lax.avg_pool(y, (3, 3), (1, 1)))
    np.testing.assert_allclose(T.jit(f)(w, x), f(w, x), rtol=1e-5)
    for a, b in zip(T.jit(T.grad(f, argnums=(0, 1)))(w, x), T.grad(f, argnums=(0, 1))(w, x)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    xs = np.stack([x, -x])
    np.testing.assert_allclose(T.jit(T.vmap(f, in_axes=(None, 0)))(w, xs),
                               T.vmap(f, in_axes=(None, 0))(w, xs), rtol=1e-5)


def test_blocked_paths_match(monkeypatch):
    """Force small blocks so the NumPy and compiled convolutions split images and channels
    into several (partial) blocks."""
    import sys
    conv_mod = sys.modules["transforms.lax.conv"]
    x = rng.normal(size=(5, 6, 7, 4))
    w = rng.normal(size=(3, 2, 4, 3))
    dn = ("NHWC", "HWIO", "NHWC")

    def f(x, w):
        return lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (0, 1)), dimension_numbers=dn)
    want = f(x, w)
    gw = T.grad(lambda w: tnp.sum(f(x, w) ** 2))(w)
    monkeypatch.setattr(conv_mod, "_NP_BLOCK", 300)
    np.testing.assert_allclose(f(x, w), want, rtol=1e-12)
    rules = pytest.importorskip("transforms.backend.numba.rules_conv")
    monkeypatch.setattr(rules, "BLOCK", 40)
    monkeypatch.setattr(rules, "SCATTER_BLOCK", 40)
    monkeypatch.setattr(rules, "TARGET_M", 8)
    np.testing.assert_allclose(T.jit(f)(x, w), want, rtol=1e-12)
    np.testing.assert_allclose(T.jit(T.grad(lambda w: tnp.sum(f(x, w) ** 2)))(w), gw,
                               rtol=1e-10)


@pytest.mark.parametrize("case,block", [(c, 64) for c in CASES] +
                         [(CASES[i], 4096) for i in (0, 3, 8)])
def test_conv_jit_value_and_vjp_match_eager(case, block, monkeypatch):
    """Every compiled convolution strategy (im2col with whole-run or per-channel-block
    patch copies, col2im, window rows) against the eager implementation, for the value and
    both cotangents, in NC-first and channels-last layouts. SMALL_CONV=0 sends even these
    small cases to the BLAS paths; BLOCK=64 splits them into several (partial) image,
    channel and row blocks, BLOCK=4096 keeps the channels whole."""
    rules = pytest.importorskip("transforms.backend.numba.rules_conv")
    monkeypatch.setattr(rules, "SMALL_CONV", 0)
    monkeypatch.setattr(rules, "BLOCK", block)
    monkeypatch.setattr(rules, "SCATTER_BLOCK", block)
    monkeypatch.setattr(rules, "TARGET_M", 8)
    spatial, kernel, strides, padding, ld, rd, g, bg = case
    x, w = make_case(spatial, kernel, g, bg)
    nd = len(spatial)
    sp = "HWD"[:nd]
    last = (0,) + tuple(range(2, nd + 2)) + (1,)
    x2, w2 = x.transpose(last), w.transpose(tuple(range(2, nd + 2)) + (1, 0))

    def conv(x, w, dn):
        return lax.conv_general_dilated(x, w, strides, padding, ld, rd, dn,
                                        feature_group_count=g, batch_group_count=bg)

    def both(x, w, ct, x2, w2, ct2):
        y, vjp = T.vjp(lambda x, w: conv(x, w, None), x, w)
        y2, vjp2 = T.vjp(lambda x, w: conv(x, w, ("N" + sp + "C", sp + "IO", "N" + sp + "C")),
                         x2, w2)
        return (y,) + vjp(ct) + (y2,) + vjp2(ct2)
    y = conv(x, w, None)
    ct = rng.normal(size=y.shape)
    args = (x, w, ct, x2, w2, ct.transpose(last))
    for got, want in zip(T.jit(both)(*args), both(*args)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape,window,channels_last", [
    ((2, 6, 6, 5), (2, 2), True),      # windows tile the image
    ((2, 7, 5, 3), (2, 2), True),      # a border row/column outside every window
    ((3, 2, 6, 6), (3, 2), False),     # windows over the trailing axes: one lane
])
def test_max_pool_gradient_compiled_matches_eager(shape, window, channels_last):
    """The compiled non-overlapping max-pool gradient routes each cotangent to the first
    maximum of its window (ties included) and writes zeros everywhere else."""
    x = np.round(rng.normal(size=shape), 1).astype(np.float32)   # rounding makes ties
    x[0, :2, :2] = 1.0                                            # a whole tied window
    if channels_last:
        pool = lambda x: lax.max_pool(x, window)
    else:
        pool = lambda x: lax.reduce_window(x, -np.inf, lax.max, (1, 1) + window,
                                           (1, 1) + window)
    y = pool(x)
    ct = rng.normal(size=y.shape).astype(np.float32)
    grad = lambda x, ct: T.vjp(pool, x)[1](ct)[0]
    want = grad(x, ct)
    np.testing.assert_array_equal(T.jit(grad)(x, ct), want)
    # each window's cotangent lands on exactly one element: its first maximum
    assert np.count_nonzero(want) == np.count_nonzero(ct)
    np.testing.assert_allclose(want.sum(), ct.sum(), rtol=1e-5)



def test_conv_temporaries_live_in_the_reused_workspace():
    """The compiled convolution's temporaries (patch matrix, kernel copy, ...) are views of
    the function's workspace, which is reused across calls, not arrays allocated per call
    (whose page faults cost more than a small convolution); repeated calls stay exact."""
    lowering = pytest.importorskip("transforms.backend.numba.lowering")
    x = rng.normal(size=(3, 6, 6, 8))
    w = rng.normal(size=(5, 3, 3, 8))          # OHWI: the kernel matrix is a copy
    dn = ("NHWC", "OHWI", "NHWC")
    f = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dn)
    src = lowering.lower(T.make_jaxpr(f)(x, w)).source
    body = src[src.index("def _fn("):src.index("def make_runner(")]
    assert "_np.empty" not in body and ("_wf64[" in body or "_sl(_wf64," in body)
    g = T.jit(f)
    for k in range(3):
        np.testing.assert_allclose(g(x + k, w), f(x + k, w), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# the compiled "taps" path: small maps, one gemm per kernel offset that meets the map
# ---------------------------------------------------------------------------------------------

TAP_CASES = [
    # spatial, kernel, strides, padding, rhs_dilation, layouts
    ((1, 1), (3, 3), (1, 1), "SAME", (1, 1), "NHWC"),       # only the centre: ResNet's layer4
    ((2, 2), (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), "NHWC"),   # full box, strided gather
    ((4, 4), (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), "NHWC"),   # no offset covers all
    ((3, 2), (3, 3), (1, 1), ((2, 1), (0, 2)), (2, 1), "NHWC"),   # dilation, uneven pads
    ((4, 3), (3, 2), (1, 2), ((1, -1), (2, 1)), (1, 1), "NHWC"),  # negative padding
    ((2, 2), (3, 3), (1, 1), "SAME", (1, 1), "NCHW"),       # transposed input and kernel
    ((3,), (5,), (1,), "SAME", (1,), "NHWC"),
]


def _tap_conv(spatial, kernel, strides, padding, rd, layout, c=16, o=16, n=3,
              dtype=np.float64):
    nd = len(spatial)
    sp = "HWD"[:nd]
    x = rng.normal(size=(n,) + spatial + (c,)).astype(dtype)
    w = rng.normal(size=kernel + (c, o)).astype(dtype)
    if layout == "NHWC":
        dn = ("N" + sp + "C", sp + "IO", "N" + sp + "C")
    else:       # NC-first input, OI-first kernel, channels-last output
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
        w = np.ascontiguousarray(np.moveaxis(w, (-1, -2), (0, 1)))
        dn = ("NC" + sp, "OI" + sp, "N" + sp + "C")

    def f(x, w):
        return lax.conv_general_dilated(x, w, strides, padding, rhs_dilation=rd,
                                        dimension_numbers=dn)
    return f, x, w


@pytest.fixture
def tap_calls(monkeypatch):
    """Counts the convolutions lowered by the taps path."""
    rules = pytest.importorskip("transforms.backend.numba.rules_conv")
    calls = []
    real = rules.lower_conv_taps

    def spy(ctx, eqn, *a):
        calls.append(eqn.outvars[0].aval.shape)
        return real(ctx, eqn, *a)
    monkeypatch.setattr(rules, "lower_conv_taps", spy)
    return calls


@pytest.mark.parametrize("case", TAP_CASES)
def test_conv_taps_path_values_and_grads(case, tap_calls):
    """The value against the eager (NumPy) implementation and an independent loop reference;
    the value and both cotangents compiled together. With 16 in and out channels the input
    gradient of a stride-1 case is a small-map convolution too (the taps path in the
    backward pass as well)."""
    f, x, w = _tap_conv(*case)
    want = f(x, w)
    nd = x.ndim - 2
    last = (0,) + tuple(range(2, nd + 2)) + (1,)
    xr = x if case[-1] != "NHWC" else x.transpose((0, nd + 1) + tuple(range(1, nd + 1)))
    wr = w if case[-1] != "NHWC" else w.transpose((nd + 1, nd) + tuple(range(nd)))
    ref = ref_conv(xr, wr, case[2], explicit_pads(case[0], case[1], case[2], case[3], case[4]),
                   (1,) * nd, case[4])
    np.testing.assert_allclose(want, ref.transpose(last), rtol=1e-10, atol=1e-10)
    ct = rng.normal(size=want.shape)

    def both(x, w, ct):
        y, vjp = T.vjp(f, x, w)
        return (y,) + vjp(ct)
    for name, a, b in zip(("value", "d/dx", "d/dw"), T.jit(both)(x, w, ct), both(x, w, ct)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10, err_msg=name)
    assert tap_calls[0] == want.shape
    if all(s == 1 for s in case[2]) and case[-1] == "NHWC":
        assert len(tap_calls) == 2                 # the input gradient's convolution too


def test_conv_taps_float32_image_blocks_and_routing(monkeypatch, tap_calls):
    """float32 ResNet-like shapes, the images split into several (partial) blocks; an 8x8
    map (84% of the offset-position pairs valid) stays on im2col, as do few channels."""
    taps = pytest.importorskip("transforms.backend.numba.conv_taps")
    monkeypatch.setattr(taps, "TAP_BLOCK", 2 * 4 * 32)     # 2 images of a 2x2 map
    for spatial, strides in (((2, 2), (1, 1)), ((4, 4), (2, 2)), ((1, 1), (1, 1))):
        f, x, w = _tap_conv(spatial, (3, 3), strides, ((1, 1), (1, 1)), (1, 1), "NHWC",
                            c=32, o=24, n=5, dtype=np.float32)
        np.testing.assert_allclose(T.jit(f)(x, w), f(x.astype(np.float64), w.astype(np.float64)),
                                   rtol=2e-5, atol=2e-5)
    assert tap_calls == [(5, 2, 2, 24), (5, 2, 2, 24), (5, 1, 1, 24)]
    for spatial, c in (((8, 8), 32), ((2, 2), 8)):
        f, x, w = _tap_conv(spatial, (3, 3), (1, 1), "SAME", (1, 1), "NHWC", c=c, o=8,
                            dtype=np.float32)
        np.testing.assert_allclose(T.jit(f)(x, w), f(x, w), rtol=2e-5, atol=2e-5)
    assert len(tap_calls) == 3



# ---------------------------------------------------------------------------------------------
# the compiled Winograd F(2x2, 3x3) path: 3x3 stride-1 convolutions with >= 32 channels
# ---------------------------------------------------------------------------------------------

WINO_CASES = [
    # spatial, padding, layouts
    ((4, 4), "SAME", "NHWC"),                          # ResNet's 4x4 stage: 4 tiles
    ((5, 5), ((1, 1), (1, 1)), "NHWC"),                # odd sizes: tiles over the edge
    ((6, 7), ((0, 2), (2, -1)), "NHWC"),               # uneven and negative padding
    ((4, 4), "SAME", "NCHW"),                          # transposed input, OIHW kernel
]


@pytest.fixture
def wino_calls(monkeypatch):
    """Counts the convolutions lowered by the Winograd path."""
    rules = pytest.importorskip("transforms.backend.numba.rules_conv")
    calls = []
    real = rules.lower_conv_winograd

    def spy(ctx, eqn, *a):
        calls.append(eqn.outvars[0].aval.shape)
        return real(ctx, eqn, *a)
    monkeypatch.setattr(rules, "lower_conv_winograd", spy)
    return calls


@pytest.mark.parametrize("case", WINO_CASES)
def test_conv_winograd_values_and_grads(case, wino_calls, monkeypatch):
    """Values and both cotangents against the eager implementation (float64: the transforms
    round a few ulp differently from a direct sum), the images split into several (partial)
    blocks. The input gradient of a 3x3 stride-1 convolution is one too (Winograd again)."""
    wino = pytest.importorskip("transforms.backend.numba.conv_winograd")
    monkeypatch.setattr(wino, "WINO_BLOCK", 16 * 4 * 32 * 2)    # two images of 4 tiles
    spatial, padding, layout = case
    f, x, w = _tap_conv(spatial, (3, 3), (1, 1), padding, (1, 1), layout, c=32, o=32, n=5)
    want = f(x, w)
    ct = rng.normal(size=want.shape)

    def both(x, w, ct):
        y, vjp = T.vjp(f, x, w)
        return (y,) + vjp(ct)
    for name, a, b in zip(("value", "d/dx", "d/dw"), T.jit(both)(x, w, ct), both(x, w, ct)):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11, err_msg=name)
    assert wino_calls[0] == want.shape
    if layout == "NHWC" and padding != WINO_CASES[2][1]:
        assert len(wino_calls) == 2


def test_conv_winograd_float32_resnet_stage(wino_calls):
    """float32, an 8x8 map with 64 channels (ResNet-18's first stage) against a float64
    reference: within float32 rounding."""
    f, x, w = _tap_conv((8, 8), (3, 3), (1, 1), "SAME", (1, 1), "NHWC", c=64, o=64, n=2,
                        dtype=np.float32)
    ref = f(x.astype(np.float64), w.astype(np.float64))
    got = T.jit(f)(x, w)
    assert got.dtype == np.float32 and wino_calls == [ref.shape]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def _winograd_helper_modules(cache_dir):
    """The helper modules (not main modules embedding them) defining a Winograd helper."""
    return sorted(p.name for p in cache_dir.glob("nbx_*.py")
                  if p.read_text().startswith("# a helper function") and
                  "def _wg_conv_" in p.read_text())


def test_conv_winograd_helper_shared_by_batch_sizes(tmp_path, monkeypatch, wino_calls):
    """The batch is an argument of the Winograd helper: a second program on another batch
    size (a training step and its evaluation) reuses the first one's compiled helper module
    from the cache (asserted on the cache's files and counters), and both results match a
    float64 reference, with full, partial and single-image blocks."""
    wino = pytest.importorskip("transforms.backend.numba.conv_winograd")
    from transforms.backend.numba import STATS, clear_memory_cache
    monkeypatch.setattr(wino, "WINO_BLOCK", 16 * 4 * 64 * 2)    # two images of 4 tiles
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(tmp_path))
    T.clear_caches()
    clear_memory_cache()
    w = rng.normal(size=(3, 3, 32, 64)).astype(np.float32)

    def f(x, w):
        return lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def check(n):
        x = rng.normal(size=(n, 4, 4, 32)).astype(np.float32)
        before = {k: STATS[k] for k in ("compiled", "helper_compiled", "helpers_by_worker")}
        got = T.jit(f)(x, w)
        delta = {k: STATS[k] - v for k, v in before.items()}
        want = ref_conv(x.transpose(0, 3, 1, 2).astype(np.float64),
                        w.transpose(3, 2, 0, 1).astype(np.float64),
                        (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1)).transpose(0, 2, 3, 1)
        assert got.shape == (n, 4, 4, 64) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
        return delta

    first = check(5)                   # blocks of 2, 2 and 1 images
    helpers = _winograd_helper_modules(tmp_path)
    assert len(helpers) == 1 and first["compiled"] == 1
    # its arrays never overlap: declared so (the direct compiler marks them noalias)
    assert "noalias=True)" in (tmp_path / helpers[0]).read_text()
    assert first["helper_compiled"] + first["helpers_by_worker"] >= 1
    second = check(1)                  # a new program: its own main function, the same helper
    assert second["compiled"] == 1
    assert second["helper_compiled"] == 0 and second["helpers_by_worker"] == 0
    assert _winograd_helper_modules(tmp_path) == helpers
    assert wino_calls == [(5, 4, 4, 64), (1, 4, 4, 64)]
    T.clear_caches()
    clear_memory_cache()
