"""Programs over many pytree leaves: a run of identical fused nests (one per leaf) compiles to
one loop over tables, so compile time grows linearly with the number of leaves; the results
equal eager evaluation, with donation and with pooled (large) outputs too."""
import numpy as np
import pytest

import transforms as T
from fnn import optim
from transforms.backend.numba import tabulate


def _tree(n, rows=lambda i: i % 5 + 1, cols=3, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return {f"p{i:04d}": rng.normal(size=(rows(i), cols)).astype(dtype) for i in range(n)}


def _assert_trees_equal(got, want):
    gl, wl = T.tree.leaves(got), T.tree.leaves(want)
    assert T.tree.structure(got) == T.tree.structure(want)
    for g, w in zip(gl, wl):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


def test_tree_map_over_many_leaves_is_one_loop():
    tree = _tree(3 * tabulate.MIN_RUN)
    f = T.jit(lambda t: T.tree.map(lambda v: v * 2 + 1, t))
    src = f.lower(tree).source
    assert "for _k in range(" in src and "_leaf(_addr" in src
    # the leaves are no longer arguments of the compiled function, only the address table
    assert src.count("_t.Array(_t.float32, 1, 'C'),") < 5
    _assert_trees_equal(f(tree), T.tree.map(lambda v: v * 2 + 1, tree))


def test_few_leaves_keep_their_unrolled_form():
    tree = _tree(tabulate.MIN_RUN - 1)
    src = T.jit(lambda t: T.tree.map(lambda v: v + 1, t)).lower(tree).source
    assert "_addr" not in src


def test_adam_step_over_many_leaves_matches_eager():
    params = _tree(40, rows=lambda i: (i % 4) + 1)
    grads = _tree(40, rows=lambda i: (i % 4) + 1, seed=1)
    opt = optim.adam(1e-2)
    state = opt.init(params)

    def step(p, s, g):
        u, s = opt.update(g, s, p)
        return optim.apply_updates(p, u), s

    want = step(params, state, grads)
    got = T.jit(step)(params, state, grads)
    for g, w in zip(T.tree.leaves(got), T.tree.leaves(want)):
        np.testing.assert_allclose(g, w, rtol=2e-6, atol=1e-7)


def test_donated_leaves_in_tables():
    tree = _tree(20)
    want = T.tree.map(lambda v: v * 3 - 1, tree)
    f = T.jit(lambda t: T.tree.map(lambda v: v * 3 - 1, t), donate_argnums=0)
    copy = T.tree.map(np.copy, tree)
    _assert_trees_equal(f(copy), want)


def test_large_leaves_from_the_output_pool():
    # outputs of >= 64 KB come from the recycling pool: those are addressed too
    tree = _tree(17, rows=lambda i: 6000 + i, cols=4)
    f = T.jit(lambda t: T.tree.map(lambda v: v - 0.5, t))
    for _ in range(3):             # recycled buffers on later calls
        _assert_trees_equal(f(tree), T.tree.map(lambda v: v - 0.5, tree))


def test_mixed_dtypes_and_empty_leaves():
    rng = np.random.default_rng(3)
    tree = {f"a{i:02d}": rng.normal(size=(i % 3, 2)) for i in range(18)}      # some empty
    tree.update({f"b{i:02d}": rng.integers(0, 9, (2, i % 4 + 1)).astype(np.int32)
                 for i in range(18)})
    f = T.jit(lambda t: T.tree.map(lambda v: v * 2, t))
    _assert_trees_equal(f(tree), T.tree.map(lambda v: v * 2, tree))


@pytest.mark.parametrize("n", [200])
def test_non_contiguous_leaves(n):
    base = _tree(n, rows=lambda i: 4)
    tree = {k: v.T for k, v in base.items()}            # transposed views: not C-contiguous
    f = T.jit(lambda t: T.tree.map(lambda v: v + 1, t))
    _assert_trees_equal(f(tree), T.tree.map(lambda v: v + 1, tree))
