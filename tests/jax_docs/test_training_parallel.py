"""The ideas of JAX's pmap-era parallel tutorials, ported to our one-process `pmap` (one
simulated device per slice) and `vmap(axis_name=...)`: data-parallel training with replicated
parameters and `pmean`-averaged gradients, a ring all-reduce out of `ppermute`, normalising by a
`psum`, gathering shards, nested named axes, and gradients through collectives. JAX here has one
CPU device, so the JAX side of each comparison is `jax.vmap` with the same axis name (JAX's
batched collectives are the reference semantics of `pmap`'s)."""
import functools

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from fnn import optim
from transforms import lax

from ._helpers import assert_tree_close

try:
    import jax
    import jax.numpy as jnp
except ImportError:
    jax = jnp = None

needs_jax = pytest.mark.skipif(jax is None, reason="JAX is not installed")

N_DEV = 4
rng = np.random.default_rng(5)
XS = rng.normal(size=(64, 2))
YS = XS @ np.array([3.0, -1.0]) + 0.5 + 0.01 * rng.normal(size=64)


def loss_fn(params, x, y):
    pred = x @ params["w"] + params["b"]
    return tnp.mean((pred - y) ** 2)


def split(a, n=N_DEV):
    """A batch reshaped to (devices, per-device, ...)."""
    return a.reshape((n, a.shape[0] // n) + a.shape[1:])


def replicate(tree, n=N_DEV):
    return T.tree.map(lambda x: np.broadcast_to(x, (n,) + np.shape(x)).copy(), tree)


def unreplicate(tree):
    return T.tree.map(lambda x: x[0], tree)


OPT = optim.adam(0.1)


@functools.partial(T.pmap, axis_name="devices")
def dp_update(params, opt_state, x, y):
    loss, grads = T.value_and_grad(loss_fn)(params, x, y)
    grads = lax.pmean(grads, axis_name="devices")  # every device applies the same step
    updates, opt_state = OPT.update(grads, opt_state, params)
    return optim.apply_updates(params, updates), opt_state, lax.pmean(loss, "devices")


@T.jit
def single_update(params, opt_state, x, y):
    loss, grads = T.value_and_grad(loss_fn)(params, x, y)
    updates, opt_state = OPT.update(grads, opt_state, params)
    return optim.apply_updates(params, updates), opt_state, loss


def test_data_parallel_training_equals_full_batch_training():
    params = {"w": np.zeros(2), "b": np.zeros(())}
    r_params, r_state = replicate(params), replicate(OPT.init(params))
    s_params, s_state = params, OPT.init(params)
    xs, ys = split(XS), split(YS)
    for _ in range(60):
        r_params, r_state, r_loss = dp_update(r_params, r_state, xs, ys)
        s_params, s_state, s_loss = single_update(s_params, s_state, XS, YS)
        # equal shards: the mean of the per-device means is the full-batch mean
        np.testing.assert_allclose(r_loss, np.full(N_DEV, float(s_loss)), rtol=1e-10)
    assert r_params["w"].shape == (N_DEV, 2)
    for d in range(N_DEV):  # the replicas never drift apart
        assert_tree_close(T.tree.map(lambda x: x[d], r_params), unreplicate(r_params), rtol=0)
    assert_tree_close(unreplicate(r_params), s_params, rtol=1e-10, atol=1e-12)
    assert_tree_close(unreplicate(r_state), s_state, rtol=1e-10, atol=1e-12)
    assert float(s_loss) < 0.1


def test_pmap_with_the_local_device_count_is_the_plain_program():
    n = T.local_device_count()
    assert n >= 1 and len(T.devices()) == T.device_count()
    params = {"w": np.zeros(2), "b": np.zeros(())}
    r_params, r_state = replicate(params, n), replicate(OPT.init(params), n)
    r_params, _, loss = dp_update(r_params, r_state, split(XS, n), split(YS, n))
    s_params, _, s_loss = single_update(params, OPT.init(params), XS, YS)
    assert_tree_close(unreplicate(r_params), s_params, rtol=1e-12)
    np.testing.assert_allclose(loss, np.full(n, float(s_loss)))


def test_pmap_broadcasts_unmapped_arguments_and_can_return_one_copy():
    w = np.array([1.0, 2.0])
    f = T.pmap(lambda x, w: lax.psum(x @ w, "d"), axis_name="d", in_axes=(0, None),
               out_axes=None)
    x = np.arange(8.0).reshape(4, 2)
    assert float(f(x, w)) == float((x @ w).sum())
    g = T.pmap(lambda x, n: x * n, static_broadcasted_argnums=1)
    np.testing.assert_array_equal(g(x, 3), x * 3)


# --- collectives, the tutorial's building blocks ---------------------------------------------

def ring_all_reduce(x, axis_name, n):
    """Sum over devices by passing shards around a ring, n - 1 hops (as psum would)."""
    perm = [(i, (i + 1) % n) for i in range(n)]
    acc, cur = x, x
    for _ in range(n - 1):
        cur = lax.ppermute(cur, axis_name, perm)
        acc = acc + cur
    return acc


def test_ring_all_reduce_out_of_ppermute_equals_psum():
    x = np.arange(12.0).reshape(4, 3)
    ring = T.pmap(functools.partial(ring_all_reduce, axis_name="r", n=4), axis_name="r")(x)
    psum = T.pmap(lambda v: lax.psum(v, "r"), axis_name="r")(x)
    np.testing.assert_array_equal(ring, np.broadcast_to(x.sum(0), (4, 3)))
    np.testing.assert_array_equal(ring, psum)
    # one hop is a rotation: device i receives device i-1's shard
    shifted = T.vmap(lambda v: lax.ppermute(v, "r", [(i, (i + 1) % 4) for i in range(4)]),
                     axis_name="r")(x)
    np.testing.assert_array_equal(shifted, np.roll(x, 1, axis=0))


def test_normalise_by_psum_and_collect_by_all_gather():
    x = np.array([1.0, 3.0, 4.0, 2.0])
    normalised = T.pmap(lambda v: v / lax.psum(v, "i"), axis_name="i")(x)
    np.testing.assert_allclose(normalised, x / 10.0)
    gathered = T.vmap(lambda v: lax.all_gather(v, "i"), axis_name="i")(x)
    np.testing.assert_array_equal(gathered, np.broadcast_to(x, (4, 4)))
    blocks = np.arange(8.0).reshape(4, 2)
    tiled = T.vmap(lambda v: lax.all_gather(v, "i", tiled=True), axis_name="i")(blocks)
    np.testing.assert_array_equal(tiled, np.broadcast_to(np.arange(8.0), (4, 8)))
    idx = T.pmap(lambda v: lax.axis_index("i") + 0 * v, axis_name="i")(x)
    np.testing.assert_array_equal(idx, [0, 1, 2, 3])
    np.testing.assert_array_equal(
        T.vmap(lambda v: (lax.pmax(v, "i"), lax.pmin(v, "i")), axis_name="i")(x),
        (np.full(4, 4.0), np.full(4, 1.0)))


def test_nested_named_axes_reduce_over_one_or_both():
    x = np.arange(8.0).reshape(2, 4)
    inner = T.pmap(T.vmap(lambda v: lax.psum(v, "j"), axis_name="j"), axis_name="i")(x)
    np.testing.assert_array_equal(inner, np.repeat(x.sum(1, keepdims=True), 4, axis=1))
    both = T.vmap(T.vmap(lambda v: lax.psum(v, ("i", "j")), axis_name="j"), axis_name="i")(x)
    np.testing.assert_array_equal(both, np.full((2, 4), x.sum()))


def test_unbound_axis_name_is_a_name_error():
    with pytest.raises(NameError, match="unbound axis name: 'j'"):
        T.vmap(lambda v: lax.psum(v, "j"), axis_name="i")(np.ones(3))


@pytest.mark.parametrize("name", ["psum", "pmean", "pmax", "pmin", "all_gather"])
def test_axis_index_groups_is_a_clear_not_implemented_error(name):
    # pmap-era code passes JAX's keyword; like jax.vmap's collectives we do not support groups
    f = getattr(lax, name)
    with pytest.raises(NotImplementedError, match=f"{name}: axis_index_groups"):
        T.vmap(lambda v: f(v, "i", axis_index_groups=[[0, 1], [2, 3]]), axis_name="i")(
            np.arange(4.0))
    # None is the default and changes nothing
    np.testing.assert_allclose(
        T.vmap(lambda v: f(v, "i", axis_index_groups=None), axis_name="i")(np.arange(4.0)),
        T.vmap(lambda v: f(v, "i"), axis_name="i")(np.arange(4.0)))


@needs_jax
def test_gradients_through_collectives_match_jax():
    x = np.arange(1.0, 9.0).reshape(4, 2)
    with jax.enable_x64(True):
        # per-device gradient of a summed objective
        ours = T.vmap(T.grad(lambda v: lax.psum(tnp.sum(v ** 2), "i")), axis_name="i")(x)
        theirs = jax.vmap(jax.grad(lambda v: jax.lax.psum(jnp.sum(v ** 2), "i")),
                          axis_name="i")(x)
        np.testing.assert_allclose(ours, theirs)
        # gradient of a parameter shared by all devices, through pmean
        ours = T.grad(lambda w: tnp.sum(T.vmap(lambda v: lax.pmean(tnp.sin(v * w), "i"),
                                               axis_name="i")(x)))(0.3)
        theirs = jax.grad(lambda w: jnp.sum(jax.vmap(lambda v: jax.lax.pmean(
            jnp.sin(v * w), "i"), axis_name="i")(x)))(0.3)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
        # a program mixing the collectives, compiled
        def prog(np_mod, lax_mod):
            def f(v):
                s = lax_mod.psum(v, "i")
                g = lax_mod.all_gather(v * lax_mod.axis_index("i"), "i")
                return np_mod.tanh(v / s) + g.sum(0) + lax_mod.pmax(v, "i")
            return f
        ours = T.jit(T.vmap(prog(tnp, lax), axis_name="i"))(x)
        theirs = jax.jit(jax.vmap(prog(jnp, jax.lax), axis_name="i"))(x)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
