"""transforms.flatten_util.ravel_pytree (jax.flatten_util's): values, round trips, dtypes,
under grad / jit / vmap, and against JAX when importable."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms.flatten_util import ravel_pytree

TREE = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": (np.float32([7, 8]),),
        "s": np.float32(9)}


def test_flat_order_round_trip_and_leaf_dtypes():
    flat, unravel = ravel_pytree(TREE)
    # leaves in the tree's order (dict keys sorted): b, s, w
    np.testing.assert_array_equal(flat, [7, 8, 9, 0, 1, 2, 3, 4, 5])
    assert flat.dtype == np.float32
    back = unravel(flat * 2)
    assert T.tree.structure(back) == T.tree.structure(TREE)
    np.testing.assert_array_equal(back["w"], TREE["w"] * 2)
    np.testing.assert_array_equal(back["b"][0], [14, 16])
    assert back["s"].shape == () and float(back["s"]) == 18
    # another dtype (a SciPy optimiser's float64) comes back in the leaves' dtypes
    back64 = unravel(np.asarray(flat, np.float64) + 0.5)
    assert all(x.dtype == np.float32 for x in T.tree.leaves(back64))


def test_mixed_dtypes_promote_and_cast_back():
    flat, unravel = ravel_pytree([np.int32([1, 2]), np.float64([0.5])])
    assert flat.dtype == np.float64
    a, b = unravel(flat + 1)
    assert a.dtype == np.int32 and b.dtype == np.float64
    np.testing.assert_array_equal(a, [2, 3])
    np.testing.assert_array_equal(b, [1.5])


def test_empty_tree_and_wrong_size():
    flat, unravel = ravel_pytree({"a": None, "b": []})
    assert flat.shape == (0,) and flat.dtype == np.float32
    assert unravel(flat) == {"a": None, "b": []}
    _, unravel = ravel_pytree(TREE)
    with pytest.raises(ValueError, match=r"\(9,\)"):
        unravel(np.zeros(5, np.float32))


def test_grad_jit_and_vmap_through_ravel():
    def loss(p):
        flat, _ = ravel_pytree(p)
        return tnp.sum(flat ** 2) + flat[0] * flat[-1]

    g = T.grad(loss)(TREE)
    flat, unravel = ravel_pytree(TREE)
    want = 2 * np.asarray(flat)
    want[0] += flat[-1]
    want[-1] += flat[0]
    for got in (g, T.jit(T.grad(loss))(TREE)):
        np.testing.assert_allclose(ravel_pytree(got)[0], want)
    # a function of the flat vector, mapped over a batch of vectors
    batch = np.stack([np.asarray(flat), -np.asarray(flat)])
    out = T.jit(T.vmap(lambda v: unravel(v)["w"].sum()))(batch)
    np.testing.assert_allclose(out, [15.0, -15.0])


def test_against_jax():
    fu = pytest.importorskip("jax.flatten_util")
    jax = pytest.importorskip("jax")
    with jax.enable_x64(False):
        theirs, junravel = fu.ravel_pytree(TREE)
        ours, unravel = ravel_pytree(TREE)
        np.testing.assert_array_equal(ours, np.asarray(theirs))
        for a, b in zip(T.tree.leaves(unravel(ours)), T.tree.leaves(junravel(theirs))):
            np.testing.assert_array_equal(a, np.asarray(b))
