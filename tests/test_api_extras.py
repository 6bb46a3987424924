"""T.jacobian, linear_transpose, custom_gradient, named_scope, disable_jit, config, typeof,
Array, block_until_ready, eval_shape, the vjp function as a pytree, vmap(spmd_axis_name=)."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import tree_util
from transforms.test_util import check_grads

rng = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(tmp_path))


def test_jacobian_is_jacrev():
    f = lambda x: tnp.sin(x) * x[0]
    x = np.array([0.5, -1.0, 2.0])
    want = np.diag(np.cos(x) * x[0])
    want[:, 0] += np.sin(x)
    np.testing.assert_allclose(T.jacobian(f)(x), want, rtol=1e-12)
    assert T.jacobian is T.jacrev


def test_linear_transpose():
    a = rng.normal(size=(3, 2))
    f = lambda x, y: (a @ x + tnp.sum(y), 2.0 * x)
    ft = T.linear_transpose(f, np.zeros(2), T.ShapeDtypeStruct((4,), np.float64))
    ct = (np.array([1.0, 2.0, 3.0]), np.array([1.0, -1.0]))
    cx, cy = ft(ct)
    np.testing.assert_allclose(cx, a.T @ ct[0] + 2 * ct[1], rtol=1e-12)
    np.testing.assert_allclose(cy, np.full(4, 6.0))
    # agrees with the vjp of the (linear) function, composes with jit and grad
    _, vjp = T.vjp(f, np.ones(2), np.ones(4))
    for u, v in zip(ft(ct), vjp(ct)):
        np.testing.assert_allclose(u, v, rtol=1e-12)
    for u, v in zip(T.jit(ft)(ct), vjp(ct)):
        np.testing.assert_allclose(u, v, rtol=1e-12)
    g = T.grad(lambda c: tnp.sum(ft((c, np.zeros(2)))[0] ** 2))(ct[0])
    np.testing.assert_allclose(g, 2 * a @ (a.T @ ct[0]), rtol=1e-12)
    with pytest.raises(TypeError):
        ft((np.ones(3), np.ones(3)))
    for nonlinear in (tnp.sin, lambda x: x * x):
        with pytest.raises(TypeError, match="linear"):
            T.linear_transpose(nonlinear, np.ones(2))(np.ones(2))
    # JAX's example values: f(x, y) = (2x + sum(y), x), cotangent of ones
    ft2 = T.linear_transpose(lambda x, y: (2 * x + y.sum(), x), np.ones(3, np.float32),
                             np.ones(2, np.float32))
    r = ft2((np.ones(3, np.float32), np.ones(3, np.float32)))
    np.testing.assert_allclose(r[0], [3.0, 3.0, 3.0])
    np.testing.assert_allclose(r[1], [3.0, 3.0])
    assert r[0].dtype == np.float32


def test_custom_gradient():
    @T.custom_gradient
    def f(x):
        return x ** 2, lambda ct: (ct * 3.0,)

    assert f(2.0) == 4.0
    assert T.grad(f)(2.0) == 3.0

    @T.custom_gradient
    def h(x, y):
        return x * y, lambda ct: (ct * y, ct * x * 10)

    gx, gy = T.grad(h, argnums=(0, 1))(2.0, 3.0)
    assert (gx, gy) == (3.0, 20.0)                     # JAX: (3.0, 20.0)

    @T.custom_gradient
    def clip_grad(x):                                  # closes over a forward value
        s = tnp.sin(x)
        return s, lambda g: (tnp.clip(g * tnp.cos(x), -0.1, 0.1),)

    x = np.array([0.1, 1.0, 3.0])
    g = T.grad(lambda x: tnp.sum(clip_grad(x) * 10))(x)
    np.testing.assert_allclose(g, np.clip(10 * np.cos(x), -0.1, 0.1))
    np.testing.assert_allclose(T.jit(T.grad(lambda x: tnp.sum(clip_grad(x) * 10)))(x), g)
    xs = np.stack([x, -x])
    np.testing.assert_allclose(T.vmap(T.grad(lambda x: tnp.sum(clip_grad(x) * 10)))(xs),
                               np.clip(10 * np.cos(xs), -0.1, 0.1))


def test_named_scope_disable_jit_and_config(capsys):
    with T.named_scope("block"):
        y = tnp.sin(np.ones(2))
    np.testing.assert_allclose(y, np.sin(1.0))
    with pytest.raises(TypeError):
        with T.named_scope(3):
            pass

    @T.jit
    def f(x):
        print("value", type(x).__name__)
        return x * 2

    f(np.ones(2))
    assert "Tracer" in capsys.readouterr().out
    with T.disable_jit():
        np.testing.assert_allclose(f(np.ones(2)), [2.0, 2.0])
        assert "value ndarray" in capsys.readouterr().out
    f(np.ones(2))
    assert capsys.readouterr().out == ""          # compiled again outside
    assert T.config.jax_disable_jit is False
    T.config.update("jax_disable_jit", True)
    try:
        f(np.ones(2))
        assert "ndarray" in capsys.readouterr().out
    finally:
        T.config.update("jax_disable_jit", False)
    assert T.config.read("jax_enable_x64") is False
    T.config.update("jax_debug_nans", False)
    T.config.update("jax_platforms", "cpu")
    with pytest.raises(AttributeError):
        T.config.update("jax_no_such_flag", 1)
    with pytest.raises(ValueError):
        T.config.update("jax_platforms", "gpu")


def test_typeof_array_block_until_ready_eval_shape():
    a = T.typeof(np.ones((2, 3), np.float32))
    assert a.shape == (2, 3) and a.dtype == np.float32
    assert T.typeof(1.0).shape == ()
    x = tnp.sin(np.ones(3))
    assert isinstance(x, T.Array) and isinstance(np.float32(1), T.Array)
    assert not isinstance([1.0], T.Array) and not isinstance(1.0, T.Array)
    T.grad(lambda v: (isinstance(v, T.Array) or 1 / 0) and tnp.sum(v))(np.ones(2))

    def annotated(v: T.Array) -> T.Array:
        return v * 2
    assert T.block_until_ready(annotated(x)) is not None
    tr = {"a": np.ones(2)}
    assert T.block_until_ready(tr) is tr
    out = T.eval_shape(lambda x, y: {"s": x.sum(0), "p": x @ y},
                       T.ShapeDtypeStruct((3, 4), np.float32), np.ones((4, 2), np.float32))
    assert out["s"] == T.ShapeDtypeStruct((4,), np.float32)
    assert out["p"].shape == (3, 2) and out["p"].dtype == np.float32 and out["p"].ndim == 2
    assert repr(out["s"]) == "ShapeDtypeStruct(shape=(4,), dtype=float32)"


def test_vjp_function_is_a_pytree_through_jit():
    x = np.array([0.3, -1.2])
    out, vjp_fn = T.vjp(lambda x: tnp.sin(x) * x, x)
    leaves = tree_util.tree_leaves(vjp_fn)
    assert leaves and all(isinstance(v, np.ndarray) for v in leaves)
    ct = np.array([1.0, 2.0])
    want = (np.cos(x) * x + np.sin(x)) * ct
    np.testing.assert_allclose(vjp_fn(ct)[0], want, rtol=1e-12)
    got = T.jit(lambda f, c: f(c))(vjp_fn, ct)
    np.testing.assert_allclose(got[0], want, rtol=1e-12)
    # rebuilt with other leaves of the same structure
    doubled = tree_util.tree_map(lambda v: v, vjp_fn)
    np.testing.assert_allclose(doubled(ct)[0], want, rtol=1e-12)


def test_vmap_spmd_axis_name_accepted():
    out = T.vmap(lambda x: x * 2, spmd_axis_name="data")(np.arange(3.0))
    np.testing.assert_allclose(out, [0.0, 2.0, 4.0])
    check_grads(lambda x: T.vmap(tnp.sin, spmd_axis_name="d")(x), (np.ones(2),), order=1)
