"""The ideas of JAX's "Automatic vectorization" tutorial, ported beyond tests/jax_docs/
test_vmap.py: `in_axes`/`out_axes` as pytree prefixes with `None`, named axes with the
collectives (`psum`, `pmean`, `all_gather`, `axis_index`), nested maps over two names,
`spmd_axis_name`, and the errors for inconsistent axes. Compared with JAX where importable."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax

try:
    import jax
    import jax.numpy as jnp
except ImportError:   # pragma: no cover
    jax = None

needs_jax = pytest.mark.skipif(jax is None, reason="JAX not importable")
pytestmark = pytest.mark.usefixtures("jax_x32")

X = np.arange(6, dtype=np.float32).reshape(2, 3)      # batch of 2 rows of 3
Y = np.arange(12, dtype=np.float32).reshape(3, 4)


def _model(params, x):
    return params["w"] @ x + params["b"]


def test_in_axes_prefix_none_shares_a_whole_subtree():
    params = {"w": np.ones((2, 3), np.float32), "b": np.float32(1.0)}
    xs = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = T.vmap(_model, in_axes=(None, 0))(params, xs)
    np.testing.assert_array_equal(out, np.stack([params["w"] @ x + 1.0 for x in xs]))
    # a per-leaf prefix: map over 'w' (a batch of matrices), share 'b'
    ws = np.stack([np.eye(3, dtype=np.float32)[:2] * k for k in (1, 2)])
    out = T.vmap(_model, in_axes=({"w": 0, "b": None}, None))(
        {"w": ws, "b": np.float32(0.5)}, xs[0])
    np.testing.assert_array_equal(out, [xs[0, :2] + 0.5, 2 * xs[0, :2] + 0.5])


def test_out_axes_pytree_with_none_for_unbatched_outputs():
    def stats(row):
        return {"mean": tnp.mean(row), "count": np.float32(row.shape[0]), "scaled": row * 2}

    out = T.vmap(stats, out_axes={"mean": 0, "count": None, "scaled": 1})(X)
    np.testing.assert_allclose(out["mean"], [1.0, 4.0])
    assert float(out["count"]) == 3.0 and np.shape(out["count"]) == ()
    np.testing.assert_array_equal(out["scaled"], (2 * X).T)
    with pytest.raises(ValueError, match="out_axes is None"):
        T.vmap(lambda r: r * 2, out_axes=None)(X)


def test_kwargs_are_mapped_over_their_leading_axis():
    f = T.vmap(lambda a, scale: a * scale, in_axes=(0,))
    np.testing.assert_array_equal(f(X, scale=np.array([1.0, 10.0], np.float32)),
                                  X * np.array([[1.0], [10.0]], np.float32))


def test_named_axis_collectives_normalise_and_gather():
    v = np.array([1.0, 2.0, 5.0], np.float32)
    np.testing.assert_allclose(T.vmap(lambda a: a / lax.psum(a, "i"), axis_name="i")(v), v / 8)
    np.testing.assert_allclose(T.vmap(lambda a: a - lax.pmean(a, "i"), axis_name="i")(v),
                               v - v.mean())
    np.testing.assert_array_equal(T.vmap(lambda a: lax.all_gather(a, "i"), axis_name="i")(v),
                                  np.tile(v, (3, 1)))
    np.testing.assert_array_equal(T.vmap(lambda a: lax.axis_index("i"), axis_name="i")(v),
                                  [0, 1, 2])
    # psum of a constant counts the members of the axis
    np.testing.assert_array_equal(T.vmap(lambda a: lax.psum(1, "i"), axis_name="i")(v), [3] * 3)


def test_nested_vmap_with_two_names_reduces_over_either_or_both():
    inner = lambda name: T.vmap(lambda a: lax.psum(a, name), axis_name="cols")  # noqa: E731
    by_rows = T.vmap(inner("rows"), axis_name="rows")(X)
    by_cols = T.vmap(inner("cols"), axis_name="rows")(X)
    both = T.vmap(inner(("rows", "cols")), axis_name="rows")(X)
    np.testing.assert_array_equal(by_rows, np.broadcast_to(X.sum(0), X.shape))
    np.testing.assert_array_equal(by_cols, np.broadcast_to(X.sum(1, keepdims=True), X.shape))
    np.testing.assert_array_equal(both, np.full(X.shape, X.sum()))


def test_spmd_axis_name_is_accepted_and_changes_nothing_on_one_device():
    f = T.vmap(lambda r: r @ Y, spmd_axis_name="data")
    np.testing.assert_array_equal(f(X), X @ Y)


def test_inconsistent_axis_sizes_name_each_argument():
    with pytest.raises(ValueError, match=r"size 2: axis 0 of args\[0\].*\n.*size 3: axis 0 "
                                         r"of args\[1\]"):
        T.vmap(lambda a, b: a + b)(X, np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"len\(in_axes\)=1, len\(args\)=2"):
        T.vmap(lambda a, b: a + b, in_axes=(0,))(X, X)


_CASES = [
    ("prefix tuple", lambda np_: lambda t: t[0] + t[1], ((0, 1),), 0,
     lambda: ((X, X.T),)),
    ("out -1", lambda np_: lambda a: np_.stack([a, a * 2]), 0, -1, lambda: (X,)),
    ("in 1 out 1", lambda np_: lambda a, b: a @ b, (None, 1), 1, lambda: (X, Y)),
    ("none everywhere + axis_size", lambda np_: lambda a: a * 2, None, 0,
     lambda: (np.ones(3, np.float32),)),
    ("all_gather tiled", None, 0, 0, lambda: (X,)),
]


@needs_jax
@pytest.mark.parametrize("name,make,in_axes,out_axes,args", _CASES, ids=[c[0] for c in _CASES])
def test_axes_specs_match_jax(name, make, in_axes, out_axes, args):
    kw = {"axis_size": 2} if in_axes is None else {}
    if make is None:     # the collective case: the same program through each library's lax
        ours_f = lambda a: lax.all_gather(a, "i", tiled=True)              # noqa: E731
        theirs_f = lambda a: jax.lax.all_gather(a, "i", tiled=True)        # noqa: E731
        kw = {"axis_name": "i"}
    else:
        ours_f, theirs_f = make(tnp), make(jnp)
    ours = T.vmap(ours_f, in_axes=in_axes, out_axes=out_axes, **kw)(*args())
    theirs = jax.vmap(theirs_f, in_axes=in_axes, out_axes=out_axes, **kw)(*args())
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-6)
    assert np.shape(ours) == theirs.shape
