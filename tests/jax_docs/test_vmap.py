"""vmap programs: in_axes/out_axes pytrees, nested vmap, batched matrix ops, vmap of grad."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax

from ._helpers import check

rng = np.random.default_rng(1)
M = rng.normal(size=(3, 4))
B = rng.normal(size=(5, 4))


def test_batched_matrix_vector_product():
    mv = lambda v: M @ v
    check(T.vmap(mv), (B,), B @ M.T)


def test_in_axes_none_broadcasts_matrix():
    check(T.vmap(lambda m, v: m @ v, in_axes=(None, 0)), (M, B), B @ M.T)


def test_in_axes_one_maps_over_columns():
    check(T.vmap(lambda c: tnp.sum(c ** 2), in_axes=1), (M,), np.sum(M ** 2, axis=0))


def test_out_axes_one_puts_batch_last():
    check(T.vmap(lambda v: 2 * v, out_axes=1), (B,), 2 * B.T)


def test_nested_vmap_pairwise_distances():
    dist = lambda a, b: tnp.sqrt(tnp.sum((a - b) ** 2))
    pairwise = T.vmap(T.vmap(dist, in_axes=(None, 0)), in_axes=(0, None))
    expected = np.sqrt(((B[:, None, :] - B[None, :, :]) ** 2).sum(-1))
    check(pairwise, (B, B), expected, atol=1e-7)


def test_batched_matmul_equals_einsum():
    X = rng.normal(size=(4, 2, 3))
    Y = rng.normal(size=(4, 3, 2))
    check(T.vmap(tnp.matmul), (X, Y), np.einsum("bij,bjk->bik", X, Y))


def test_dict_in_axes_pytree():
    def f(p):
        return p["x"] * p["scale"]

    p = {"x": B, "scale": 3.0}
    check(T.vmap(f, in_axes=({"x": 0, "scale": None},)), (p,), 3.0 * B)


def test_tuple_outputs_with_out_axes_pytree():
    f = lambda v: (tnp.sum(v), v * 2)
    check(T.vmap(f, out_axes=(0, 1)), (B,), (B.sum(1), (2 * B).T))


def test_vmap_of_grad_per_example_logistic_loss():
    w = np.array([0.3, -0.1, 0.2, 0.5])
    y = np.array([0, 1, 1, 0, 1.0])

    def loss(w, x, y):
        p = 1 / (1 + tnp.exp(-tnp.dot(w, x)))
        return -(y * tnp.log(p) + (1 - y) * tnp.log(1 - p))

    p = 1 / (1 + np.exp(-(B @ w)))
    check(T.vmap(T.grad(loss), in_axes=(None, 0, 0)), (w, B, y), (p - y)[:, None] * B)


def test_grad_of_vmap_sum():
    f = lambda w: tnp.sum(T.vmap(lambda x: tnp.tanh(tnp.dot(w, x)))(B))
    w = np.array([0.1, 0.2, -0.3, 0.05])
    check(T.grad(f), (w,), ((1 - np.tanh(B @ w) ** 2)[:, None] * B).sum(0))


def test_vmap_axis_size_with_no_mapped_inputs():
    check(T.vmap(lambda x: x + 1.0, in_axes=None, axis_size=3), (2.0,), np.full(3, 3.0))


def test_vmap_named_axis_normalisation():
    f = lambda x: x / lax.psum(x, "i")
    v = np.array([1.0, 2.0, 5.0])
    check(T.vmap(f, axis_name="i"), (v,), v / 8.0)


def test_vmap_pmean_centering():
    f = lambda x: x - lax.pmean(x, "b")
    check(T.vmap(f, axis_name="b"), (B,), B - B.mean(0))


def test_vmap_over_cond_selects_per_example():
    f = lambda x: lax.cond(x > 0, lambda x: x ** 2, lambda x: -x, x)
    v = np.array([-1.0, 2.0, -3.0, 0.5])
    check(T.vmap(f), (v,), np.where(v > 0, v ** 2, -v))


def test_vmap_indexing_with_batched_indices():
    table = np.arange(12.0).reshape(4, 3)
    idx = np.array([3, 0, 2])
    check(T.vmap(lambda i: tnp.take(table, i, axis=0)), (idx,), table[idx])


def test_vmap_jacobian_batch_of_jacobians():
    f = lambda x: tnp.sin(x) * tnp.sum(x)
    xs = rng.normal(size=(3, 2))
    expected = np.stack([np.diag(np.cos(x) * x.sum()) + np.sin(x)[:, None] for x in xs])
    check(T.vmap(T.jacrev(f)), (xs,), expected)


def test_vmap_batched_outer_and_trace():
    f = lambda v: tnp.trace(tnp.outer(v, v))
    check(T.vmap(f), (B,), np.sum(B ** 2, axis=1))


def test_vmap_batched_solve():
    As = rng.normal(size=(3, 2, 2)) + 3 * np.eye(2)
    bs = rng.normal(size=(3, 2))
    check(T.vmap(tnp.linalg.solve), (As, bs), np.linalg.solve(As, bs[..., None])[..., 0],
          rtol=1e-10)


def test_vmap_at_set_functional_update():
    f = lambda v, i: v.at[i].set(0.0)
    idx = np.array([0, 3, 1, 2, 0])
    expected = B.copy()
    expected[np.arange(5), idx] = 0.0
    check(T.vmap(f), (B, idx), expected)


def test_vmap_of_hessian_batch_of_quadratics():
    As = rng.normal(size=(3, 2, 2))
    f = lambda A, x: x @ A @ x
    check(T.vmap(T.hessian(f, argnums=1), in_axes=(0, None)), (As, np.ones(2)),
          As + np.swapaxes(As, 1, 2))


def test_vmap_negative_in_axis():
    check(T.vmap(lambda r: tnp.max(r), in_axes=-1), (M,), M.max(axis=0))


def test_per_example_grads_of_dict_params_equal_loop():
    params = {"w": rng.normal(size=(4, 2)), "b": np.array([0.1, -0.2])}
    ys = rng.normal(size=(5, 2))

    def loss(p, x, y):
        return tnp.sum((tnp.tanh(x @ p["w"] + p["b"]) - y) ** 2)

    def np_grad(x, y):
        h = np.tanh(x @ params["w"] + params["b"])
        d = 2 * (h - y) * (1 - h ** 2)
        return {"b": d, "w": np.outer(x, d)}

    loop = [np_grad(x, y) for x, y in zip(B, ys)]
    expected = {"b": np.stack([g["b"] for g in loop]), "w": np.stack([g["w"] for g in loop])}
    check(T.vmap(T.grad(loss), in_axes=(None, 0, 0)), (params, B, ys), expected, rtol=1e-10)


def test_jit_static_argnames_choose_activation():
    def layer(x, activation="tanh"):
        return {"tanh": tnp.tanh, "relu": lambda v: tnp.maximum(v, 0.0)}[activation](x)

    np.testing.assert_allclose(layer(B, activation="relu"), np.maximum(B, 0))
    np.testing.assert_allclose(T.jit(layer, static_argnames=("activation",))(B, activation="relu"),
                               np.maximum(B, 0))
    np.testing.assert_allclose(T.jit(layer, static_argnames=("activation",))(B), np.tanh(B))
