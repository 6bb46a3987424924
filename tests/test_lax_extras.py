"""lax.associative_scan, the *_in_dim helpers, conv_with_general_padding, the shape
calculators, and fnn.optim.flatten: values against NumPy / JAX literals, derivatives, vmap
against a loop, jit against eager."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from fnn import optim
from transforms import lax
from transforms.test_util import check_grads

rng = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(tmp_path))


@pytest.mark.parametrize("n", [1, 2, 5, 8, 13])
def test_associative_scan_values(n):
    x = rng.normal(size=(n, 3))
    np.testing.assert_allclose(lax.associative_scan(lax.add, x), np.cumsum(x, 0), rtol=1e-12)
    np.testing.assert_allclose(lax.associative_scan(lax.add, x, reverse=True),
                               np.cumsum(x[::-1], 0)[::-1], rtol=1e-12)
    np.testing.assert_allclose(lax.associative_scan(tnp.maximum, x.T, axis=1),
                               np.maximum.accumulate(x.T, 1))
    s, p = lax.associative_scan(lambda a, b: (a[0] + b[0], a[1] * b[1]), (x[:, 0], x[:, 1]))
    np.testing.assert_allclose(s, np.cumsum(x[:, 0]), rtol=1e-12)
    np.testing.assert_allclose(p, np.cumprod(x[:, 1]), rtol=1e-12)


def test_associative_scan_tree_shape_matches_jax():
    # a non-associative fn exposes the combination order; values recorded from jax.lax
    f = lambda a, b: a * 10 + b
    np.testing.assert_allclose(lax.associative_scan(f, np.arange(1.0, 6.0)),
                               [1.0, 12.0, 123.0, 154.0, 1545.0])
    np.testing.assert_allclose(lax.associative_scan(f, np.arange(1.0, 6.0), reverse=True),
                               [5721.0, 572.0, 543.0, 54.0, 5.0])


def test_associative_scan_transforms():
    x = rng.normal(size=(6,))
    check_grads(lambda x: lax.associative_scan(lax.mul, x), (x,), order=2)
    xs = rng.normal(size=(3, 6))
    got = T.vmap(lambda x: lax.associative_scan(lax.mul, x))(xs)
    np.testing.assert_allclose(got, np.stack([np.cumprod(r) for r in xs]), rtol=1e-12)
    np.testing.assert_allclose(T.jit(lambda x: lax.associative_scan(lax.add, x))(x),
                               np.cumsum(x), rtol=1e-12)
    # a linear recurrence h_t = a_t h_{t-1} + b_t as a scan of affine maps
    a, b = rng.uniform(0.5, 1.0, 7), rng.normal(size=7)
    comp = lambda p, q: (p[0] * q[0], q[0] * p[1] + q[1])
    _, h = lax.associative_scan(comp, (a, b))
    ref, hh = [], 0.0
    for t in range(7):
        hh = a[t] * hh + b[t]
        ref.append(hh)
    np.testing.assert_allclose(h, ref, rtol=1e-12)


def test_dynamic_in_dim():
    x = np.arange(10.0)
    np.testing.assert_array_equal(lax.dynamic_slice_in_dim(x, -3, 2), [7.0, 8.0])     # JAX
    np.testing.assert_array_equal(lax.dynamic_slice_in_dim(x, 9, 3), [7.0, 8.0, 9.0])  # clamped
    m = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(lax.dynamic_index_in_dim(m, 1, axis=1, keepdims=False), [1, 4])
    assert lax.dynamic_index_in_dim(m, 1, axis=1).shape == (2, 1)
    np.testing.assert_array_equal(lax.dynamic_update_slice_in_dim(m, np.zeros((2, 2)), 1, 1),
                                  [[0, 0, 0], [3, 0, 0]])
    np.testing.assert_array_equal(lax.dynamic_update_index_in_dim(m, np.array([9.0, 9.0]), -1, 1),
                                  [[0, 1, 9], [3, 4, 9]])
    np.testing.assert_array_equal(lax.index_in_dim(m, -1, 0, keepdims=False), [3, 4, 5])
    np.testing.assert_array_equal(lax.slice_in_dim(x, 1, None, 3), [1, 4, 7])
    # traced indices: jit (negative index too) and vmap against a loop
    f = T.jit(lambda x, i: lax.dynamic_slice_in_dim(x, i, 3))
    np.testing.assert_array_equal(f(x, np.int64(2)), [2, 3, 4])
    np.testing.assert_array_equal(f(x, np.int64(-2)), [7, 8, 9])
    idx = np.array([0, 4, -1])
    got = T.vmap(lambda i: lax.dynamic_slice_in_dim(x, i, 2))(idx)
    np.testing.assert_array_equal(got, [lax.dynamic_slice_in_dim(x, int(i), 2) for i in idx])
    upd = T.vmap(lambda i: lax.dynamic_update_index_in_dim(x, -1.0, i, 0))(idx)
    for r, i in zip(upd, idx):
        want = x.copy()
        want[i] = -1.0
        np.testing.assert_array_equal(r, want)
    check_grads(lambda x, u: lax.dynamic_update_slice_in_dim(x, u, 2, 0) ** 2,
                (x, np.ones(3)), order=2)
    check_grads(lambda m: lax.dynamic_index_in_dim(m, 1, 1, False) ** 3, (m,), order=2)


def test_conv_with_general_padding_and_shapes():
    lhs, rhs = rng.normal(size=(2, 3, 6, 5)), rng.normal(size=(4, 3, 3, 2))
    out = lax.conv_with_general_padding(lhs, rhs, (2, 1), [(1, 1), (0, 1)], None, None)
    want = lax.conv_general_dilated(lhs, rhs, (2, 1), [(1, 1), (0, 1)])
    np.testing.assert_allclose(out, want, rtol=1e-12)
    # direct NumPy cross-correlation
    p = np.pad(lhs, [(0, 0), (0, 0), (1, 1), (0, 1)])
    ref = np.zeros(out.shape)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            win = p[:, :, 2 * i:2 * i + 3, j:j + 2]
            ref[:, :, i, j] = np.einsum("nchw,ochw->no", win, rhs)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
    assert out.shape == lax.conv_general_shape_tuple(lhs.shape, rhs.shape, (2, 1),
                                                     [(1, 1), (0, 1)], None)
    check_grads(lambda a, b: lax.conv_with_general_padding(a, b, (1, 1), "SAME", None, (2, 1)),
                (lhs[:1], rhs), order=1)
    # JAX's values
    assert lax.conv_general_shape_tuple((1, 3, 5, 5), (4, 3, 3, 3), (2, 1), [(1, 1), (0, 0)],
                                        ("NCHW", "OIHW", "NCHW")) == (1, 4, 3, 3)
    assert lax.conv_general_shape_tuple((1, 5, 5, 3), (3, 3, 3, 4), (1, 1), "SAME",
                                        ("NHWC", "HWIO", "NHWC")) == (1, 5, 5, 4)
    assert lax.reduce_window_shape_tuple((4, 6), (2, 3), (2, 1), [(0, 0), (1, 1)]) == (2, 6)
    assert lax.reduce_window_shape_tuple((4, 6), (2, 3), (2, 1), [(0, 0), (1, 1)],
                                         base_dilation=(2, 1), window_dilation=(1, 2)) == (3, 4)
    x = rng.normal(size=(5, 7))
    r = lax.reduce_window(x, -np.inf, lax.max, (2, 3), (2, 2), "SAME")
    assert r.shape == lax.reduce_window_shape_tuple(x.shape, (2, 3), (2, 2), "SAME")


def test_optim_flatten_matches_unflattened():
    params = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2), "s": np.array(0.5)}
    grads = [{k: rng.normal(size=np.shape(v)) for k, v in params.items()} for _ in range(3)]
    plain, flat = optim.adam(1e-2), optim.flatten(optim.adam(1e-2))
    sp, sf = plain.init(params), flat.init(params)
    from transforms import tree
    assert {np.shape(v) for v in tree.leaves(sf) if np.ndim(v)} == {(9,)}   # one vector
    pp, pf = params, params
    step = T.jit(flat.update)
    for g in grads:
        up, sp = plain.update(g, sp, pp)
        uf, sf = step(g, sf, pf)
        for k in params:
            assert uf[k].shape == np.shape(params[k])
            np.testing.assert_allclose(uf[k], up[k], rtol=1e-12)
        pp, pf = optim.apply_updates(pp, up), optim.apply_updates(pf, uf)
    # with params-dependent links (weight decay) and extra args
    tx = optim.flatten(optim.adamw(1e-2, weight_decay=0.1))
    u, _ = tx.update(grads[0], tx.init(params), params, value=1.0)
    want, _ = optim.adamw(1e-2, weight_decay=0.1).update(
        grads[0], optim.adamw(1e-2, weight_decay=0.1).init(params), params)
    for k in params:
        np.testing.assert_allclose(u[k], want[k], rtol=1e-12)


def test_dynamic_in_dim_negative_start_counts_from_the_end_once():
    # found by tests/differential: -9 on a size-6 axis was normalised twice (-9 -> -3 -> 3);
    # JAX normalises once (-3) and clamps to 0. Values recorded from jax 0.10.
    x = np.arange(30.0).reshape(5, 6)
    for i in (-9, np.int32(-9), np.array(-9)):
        np.testing.assert_array_equal(lax.dynamic_index_in_dim(x, i, 1, keepdims=False),
                                      [0.0, 6.0, 12.0, 18.0, 24.0])
        np.testing.assert_array_equal(lax.dynamic_slice_in_dim(x, i, 2, 0), x[:2])
        np.testing.assert_array_equal(
            T.jit(lambda x, i: lax.dynamic_index_in_dim(x, i, 1, False))(x, np.int32(i)),
            [0.0, 6.0, 12.0, 18.0, 24.0])
    np.testing.assert_array_equal(lax.dynamic_index_in_dim(x, -2, 1, False), x[:, 4])


def test_reshape_dimensions():
    x = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(lax.reshape(x, (4, 6), dimensions=(2, 0, 1)),
                                  np.transpose(x, (2, 0, 1)).reshape(4, 6))
