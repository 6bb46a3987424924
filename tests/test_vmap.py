"""vmap: every primitive and tnp function batched vs a Python loop, per-example gradients,
composition with grad/jacfwd/jacrev, in_axes/out_axes handling, errors, IR size."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax
from transforms.interpreters.batching import BatchTrace, batch_jaxpr

try:
    from hypothesis import given, settings, strategies as st
except ImportError:  # pragma: no cover
    given = None

from op_table import F32, OPS

BATCH = 3

# replaced before each test by one seeded from the test's name (conftest._per_test_rng)
_rng = np.random.default_rng(0)


def make(shape, kind="f"):
    """One unbatched input of the given kind: a letter below, or a `(rng, shape) -> array`
    domain (the operator table's, bound to a dtype)."""
    shape = tuple(shape)
    if callable(kind):
        return kind(_rng, shape)
    if kind == "f":
        return _rng.standard_normal(shape).astype(np.float32)
    if kind == "d":
        return _rng.standard_normal(shape)
    if kind == "p":          # positive
        return _rng.uniform(0.5, 2.0, shape).astype(np.float32)
    if kind == "u":          # inside (-1, 1)
        return _rng.uniform(-0.9, 0.9, shape).astype(np.float32)
    if kind == "i":          # small non-negative ints
        return _rng.integers(0, 4, shape).astype(np.int32)
    if kind == "s":          # small ints with both signs, no zeros
        v = _rng.integers(1, 5, shape) * _rng.choice([-1, 1], shape)
        return v.astype(np.int32)
    if kind == "b":
        return _rng.random(shape) < 0.5
    if kind.startswith("idx"):   # indices in [lo, hi): "idx:-2:6"
        _, lo, hi = kind.split(":")
        return _rng.integers(int(lo), int(hi), shape).astype(np.int32)
    if kind == "tie":        # many ties, for max/argmax
        return _rng.integers(0, 3, shape).astype(np.float32)
    raise ValueError(kind)


def batched_input(x, axis, kind=None):
    """BATCH different examples of x's shape and dtype, stacked along `axis`."""
    kind = kind or _kind_of(x)
    xs = [np.asarray(x)] + [make(np.shape(x), kind) for _ in range(BATCH - 1)]
    return np.stack(xs, axis=axis), xs


def _kind_of(x):
    x = np.asarray(x)
    if x.dtype == np.bool_:
        return "b"
    if np.issubdtype(x.dtype, np.integer):
        return "idx:0:3" if x.min(initial=0) >= 0 else "s"
    if np.issubdtype(x.dtype, np.floating) and x.size and (x > 0).all():
        return "p"
    return "f" if x.dtype == np.float32 else "d"


def check_vmap(f, args, in_axes, out_axes=0, rtol=2e-5, atol=2e-5, kinds=None, ref=None):
    """vmap(f)(batched args) equals stacking f over a loop of the examples."""
    batched, per_example = [], []
    kinds = kinds or [None] * len(args)
    for a, ax, kind in zip(args, in_axes, kinds):
        if ax is None:
            batched.append(a)
            per_example.append([a] * BATCH)
        else:
            b, xs = batched_input(a, ax, kind)
            batched.append(b)
            per_example.append(xs)
    got = T.vmap(f, in_axes=tuple(in_axes), out_axes=out_axes)(*batched)
    ref = ref or f
    outs = [ref(*[pe[i] for pe in per_example]) for i in range(BATCH)]
    want = T.tree.map(lambda *o: np.stack([np.asarray(v) for v in o], axis=out_axes), *outs)
    got_l, want_l = T.tree.leaves(got), T.tree.leaves(want)
    assert len(got_l) == len(want_l)
    for g, w in zip(got_l, want_l):
        assert isinstance(g, (np.ndarray, np.generic)), type(g)
        g = np.asarray(g)
        assert g.shape == w.shape, (g.shape, w.shape)
        assert g.dtype == w.dtype, (g.dtype, w.dtype)
        if np.issubdtype(w.dtype, np.inexact):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(g, w)


# ---------------------------------------------------------------------------------------------
# The case list: (name, fn, [(shape, kind), ...])
# ---------------------------------------------------------------------------------------------

F3, F23, F234 = ((3,), "f"), ((2, 3), "f"), ((2, 3, 4), "f")
P23, U23, I23, B23 = ((2, 3), "p"), ((2, 3), "u"), ((2, 3), "i"), ((2, 3), "b")

CASES = []
TRACED_FIRST = set()     # cases whose first argument must be traced (indexed by a tracer)
STAGED_REF = set()       # cases whose per-example reference needs tracing (`.at` on arrays)


def case(name, fn, *specs, traced_first=False, staged_ref=False):
    CASES.append((name, fn, list(specs)))
    if traced_first or staged_ref:
        TRACED_FIRST.add(name)
    if staged_ref:
        STAGED_REF.add(name)


def staged(f):
    """Run f by tracing it to a jaxpr and evaluating that eagerly (so `.at` works on NumPy
    inputs): the unbatched reference for `.at[]` cases."""
    def g(*args):
        closed, shapes = T.make_jaxpr(f, return_shape=True)(*args)
        outs = closed(*T.tree.leaves(args))
        return T.tree.unflatten(T.tree.structure(shapes), outs)
    return g


# elementwise, through lax: every primitive of the shared operator table (op_table.py), in
# float32 where it takes floats, each argument drawn from its table domain
def _bound(domain, dtype):
    return lambda rng, shape: domain(rng, shape, dtype)


for _op in OPS:
    if _op.vmap:
        _dt = F32 if F32 in _op.dtypes else _op.dtypes[0]
        case("lax." + _op.name, _op.fn, *[((2, 3), _bound(d, _dt)) for d in _op.domains])

case("lax.select_n", lambda p, a, b: lax.select_n(p, a, b), B23, F23, F23)
case("lax.select_n_int", lambda p, a, b, c: lax.select_n(p, a, b, c), ((2, 3), "idx:0:3"),
     F23, F23, F23)
case("lax.select", lambda p, a, b: lax.select(p, a, b), B23, F23, F23)

# shape primitives ----------------------------------------------------------------------------
case("lax.broadcast_in_dim", lambda x: lax.broadcast_in_dim(x, (4, 2, 5, 3), (1, 3)), F23)
case("lax.broadcast_in_dim_size1", lambda x: lax.broadcast_in_dim(x, (2, 4, 3), (0, 2)),
     ((2, 1), "f"))
case("lax.reshape", lambda x: lax.reshape(x, (4, 6)), F234)
case("lax.transpose", lambda x: lax.transpose(x, (2, 0, 1)), F234)
case("lax.squeeze", lambda x: lax.squeeze(x, (0, 2)), ((1, 3, 1, 2), "f"))
case("lax.expand_dims", lambda x: lax.expand_dims(x, (0, 2)), F23)
case("lax.concatenate", lambda x, y: lax.concatenate([x, y, x], 1), F23, ((2, 2), "f"))
case("lax.pad", lambda x: lax.pad(x, np.float32(-1), [(1, 2, 0), (-1, 1, 2)]), F23)
case("lax.pad_value", lambda x, v: lax.pad(x, v, [(1, 0, 1), (0, 2, 0)]), F23, ((), "f"))
case("lax.slice", lambda x: lax.slice(x, (0, 1, 0), (2, 3, 4), (1, 1, 2)), F234)
case("lax.slice_nostride", lambda x: lax.slice(x, (1, 1), (2, 3)), F23)
case("lax.dynamic_slice", lambda x, i, j: lax.dynamic_slice(x, (i, j), (2, 2)),
     ((4, 5), "f"), ((), "idx:-2:7"), ((), "idx:0:5"))
case("lax.dynamic_slice_3d", lambda x, i: lax.dynamic_slice(x, (i, 1, 0), (2, 2, 3)),
     ((4, 3, 5), "f"), ((), "idx:-1:4"))
case("lax.dynamic_update_slice", lambda x, u, i, j: lax.dynamic_update_slice(x, u, (i, j)),
     ((4, 5), "f"), ((2, 3), "f"), ((), "idx:-2:6"), ((), "idx:0:5"))
case("lax.rev", lambda x: lax.rev(x, (0, 2)), F234)
case("lax.iota", lambda x: x + lax.iota(np.float32, (2, 3), 1), F23)

# reductions ------------------------------------------------------------------------------
for _n, _f in [("sum", lax.reduce_sum), ("max", lax.reduce_max), ("min", lax.reduce_min),
               ("prod", lax.reduce_prod)]:
    case("lax.reduce_" + _n, lambda x, _f=_f: _f(x, (0, 2)), F234)
case("lax.reduce_and", lambda x: lax.reduce_and(x, (1,)), B23)
case("lax.reduce_or", lambda x: lax.reduce_or(x, (0,)), B23)
case("lax.argmax", lambda x: lax.argmax(x, 1), ((2, 5, 3), "tie"))
case("lax.argmin", lambda x: lax.argmin(x, 0), ((4, 3), "tie"))
case("lax.cumsum", lambda x: lax.cumsum(x, 1), F234)
case("lax.cumsum_rev", lambda x: lax.cumsum(x, 0, reverse=True), F23)
case("lax.cumprod", lambda x: lax.cumprod(x, 2, reverse=True), F234)

# dot_general -------------------------------------------------------------------------------
case("lax.dot_general_mm", lambda a, b: lax.dot_general(a, b, (((1,), (0,)), ((), ()))),
     F23, ((3, 4), "f"))
case("lax.dot_general_batch", lambda a, b: lax.dot_general(a, b, (((2,), (1,)), ((0,), (0,)))),
     F234, ((2, 4, 5), "f"))
case("lax.dot_general_odd", lambda a, b: lax.dot_general(a, b, (((0, 2), (2, 1)), ((1,), (0,)))),
     F234, ((3, 4, 2, 5), "f"))
case("lax.dot_general_outer", lambda a, b: lax.dot_general(a, b, (((), ()), ((), ()))),
     F3, ((4,), "f"))
case("lax.dot", lax.dot, F23, ((3,), "f"))

# gather / scatter ----------------------------------------------------------------------------
case("lax.gather", lambda x, i: lax.gather(x, i), ((5, 3), "f"), ((4, 1), "idx:-1:7"))
case("lax.gather_2", lambda x, i: lax.gather(x, i), ((4, 3, 2), "f"), ((2, 3, 2), "idx:0:3"))
case("lax.scatter_add", lambda x, i, u: lax.scatter_add(x, i, u), ((5, 3), "f"),
     ((4, 1), "idx:0:6"), ((4, 3), "f"))
case("lax.scatter", lambda x, i, u: lax.scatter(x, i, u), ((5, 3), "f"),
     ((2, 2), "idx:0:3"), ((2,), "f"))
case("lax.scatter_mul", lambda x, i, u: lax.scatter_mul(x, i, u), ((5, 3), "f"),
     ((4, 1), "idx:0:5"), ((4, 3), "f"))

# tnp functions -----------------------------------------------------------------------------
for _n in ["add", "subtract", "multiply", "divide", "true_divide", "maximum", "minimum",
           "arctan2", "logaddexp", "equal", "not_equal", "less", "less_equal", "greater",
           "greater_equal", "floor_divide", "remainder"]:
    case("tnp." + _n, getattr(tnp, _n), F23, ((3,), "f"))
case("tnp.power", tnp.power, P23, F3)
case("tnp.power_int", lambda x: tnp.power(x, 3), F23)
case("tnp.logical_and", tnp.logical_and, B23, B23)
case("tnp.logical_or", tnp.logical_or, B23, B23)
# the tnp spelling of each one-argument table primitive (tnp.arcsin for asin, ...)
for _op in OPS:
    if _op.vmap and _op.tnp and _op.nargs == 1:
        _dt = F32 if F32 in _op.dtypes else _op.dtypes[0]
        case("tnp." + _op.tnp, getattr(tnp, _op.tnp), ((2, 3), _bound(_op.domains[0], _dt)))
for _n in ["square", "isnan", "ravel", "transpose", "flip", "triu", "tril", "cumsum", "argmax",
           "argmin", "sum", "mean", "max", "min", "prod", "var", "std", "all", "any"]:
    case("tnp." + _n, getattr(tnp, _n), F23)
for _n in ["log2", "reciprocal"]:
    case("tnp." + _n, getattr(tnp, _n), P23)
case("tnp.sum_axis", lambda x: tnp.sum(x, axis=(0, 2), keepdims=True), F234)
case("tnp.mean_axis", lambda x: tnp.mean(x, axis=-1), F234)
case("tnp.max_axis", lambda x: tnp.max(x, axis=1), F234)
case("tnp.var_axis", lambda x: tnp.var(x, axis=0, ddof=1), F234)
case("tnp.argmax_axis", lambda x: tnp.argmax(x, axis=1), F234)
case("tnp.cumsum_axis", lambda x: tnp.cumsum(x, axis=1), F234)
case("tnp.where", tnp.where, B23, F23, ((3,), "f"))
case("tnp.clip", lambda x: tnp.clip(x, -0.5, 0.5), F23)
case("tnp.clip_arrays", tnp.clip, F23, ((3,), "f"), ((2, 1), "p"))
case("tnp.dot", tnp.dot, F23, ((3, 4), "f"))
case("tnp.dot_vec", tnp.dot, F3, F3)
case("tnp.matmul", tnp.matmul, F234, ((4, 5), "f"))
case("tnp.matmul_vec", tnp.matmul, F3, ((3, 2), "f"))
case("tnp.matmul_batch", tnp.matmul, F234, ((2, 4, 2), "f"))
case("tnp.einsum", lambda a, b: tnp.einsum("ijk,kl->lji", a, b), F234, ((4, 2), "f"))
case("tnp.einsum_trace", lambda a: tnp.einsum("ii->", a), ((3, 3), "f"))
case("tnp.tensordot", lambda a, b: tnp.tensordot(a, b, axes=([1, 2], [0, 1])), F234,
     ((3, 4, 2), "f"))
case("tnp.outer", tnp.outer, F3, ((4,), "f"))
case("tnp.reshape", lambda x: tnp.reshape(x, (4, -1)), F234)
case("tnp.swapaxes", lambda x: tnp.swapaxes(x, 0, 2), F234)
case("tnp.moveaxis", lambda x: tnp.moveaxis(x, 0, -1), F234)
case("tnp.expand_dims", lambda x: tnp.expand_dims(x, 1), F23)
case("tnp.squeeze", tnp.squeeze, ((2, 1, 3), "f"))
case("tnp.broadcast_to", lambda x: tnp.broadcast_to(x, (4, 2, 3)), ((2, 1), "f"))
case("tnp.concatenate", lambda x, y: tnp.concatenate([x, y], axis=0), F23, ((1, 3), "f"))
case("tnp.stack", lambda x, y: tnp.stack([x, y], axis=1), F23, F23)
case("tnp.split", lambda x: tnp.split(x, [1, 3], axis=1), ((2, 5), "f"))
case("tnp.take", lambda x, i: tnp.take(x, i, axis=1), F23, ((4,), "idx:0:3"))
case("tnp.take_along_axis", lambda x, i: tnp.take_along_axis(x, i, axis=1), F23,
     ((2, 2), "idx:0:3"))
case("tnp.pad", lambda x: tnp.pad(x, ((1, 0), (2, 1))), F23)
case("tnp.tile", lambda x: tnp.tile(x, (2, 1)), F23)
case("tnp.repeat", lambda x: tnp.repeat(x, 2, axis=1), F23)
case("tnp.norm", tnp.linalg.norm, F23)
case("tnp.norm_axis", lambda x: tnp.linalg.norm(x, axis=1), F23)
case("tnp.zeros_like", tnp.zeros_like, F23)
case("tnp.ones_like", tnp.ones_like, F23)
case("tnp.full_like", lambda x: tnp.full_like(x, 2.5), F23)
case("tnp.asarray", lambda x: tnp.asarray(x) * tnp.arange(3) + tnp.eye(2, 3) +
     tnp.linspace(0, 1, 3) + tnp.ones(3) + tnp.zeros((2, 3)) + tnp.full((3,), 2.0), F23)
case("tnp.array_stack", lambda x, y: tnp.array([x, y, x]), F3, F3)
case("tnp.astype", lambda x: x.astype(np.int32), F23)
# indexing and .at[] updates
case("getitem_basic", lambda x: x[1:, ::-1, None, 2], F234)
case("getitem_int", lambda x: x[1, -1], F234)
case("getitem_traced_scalar", lambda x, i: x[i], ((4, 3), "f"), ((), "idx:0:4"),
     traced_first=True)
case("getitem_traced_scalar_2", lambda x, i: x[:, i], ((4, 3), "f"), ((), "idx:0:3"),
     traced_first=True)
case("getitem_array", lambda x, i: x[i], ((4, 3), "f"), ((5,), "idx:0:4"), traced_first=True)
case("getitem_array_mid", lambda x, i: x[:, i, 1:], F234, ((2, 2), "idx:0:3"),
     traced_first=True)
case("getitem_two_arrays", lambda x, i, j: x[i, :, j], F234, ((3,), "idx:0:2"),
     ((3,), "idx:0:4"), traced_first=True)
case("getitem_shared_operand", lambda i: tnp.take(np.arange(12.0).reshape(4, 3), i, axis=0),
     ((2,), "idx:0:4"))
case("at_set", lambda x, v: x.at[1].set(v), F23, ((3,), "f"), staged_ref=True)
case("at_add_array", lambda x, i, v: x.at[i].add(v), ((4, 3), "f"), ((2,), "idx:0:4"),
     ((2, 3), "f"), staged_ref=True)
case("at_multiply", lambda x: x.at[:, 1].multiply(3.0), F23, staged_ref=True)
case("at_traced_scalar", lambda x, i, v: x.at[i].set(v), ((4, 3), "f"), ((), "idx:0:4"),
     ((3,), "f"), staged_ref=True)
case("at_get", lambda x, i: x.at[i].get(), ((4, 3), "f"), ((2,), "idx:0:4"), staged_ref=True)
case("scatter_add_shared_operand", lambda i, v: lax.scatter_add(
    np.zeros((4, 3), np.float32), tnp.expand_dims(i, 1), v), ((2,), "idx:0:4"), ((2, 3), "f"))
# small compositions
case("softmax", lambda x: tnp.exp(x - tnp.max(x, axis=-1, keepdims=True)) /
     tnp.sum(tnp.exp(x - tnp.max(x, axis=-1, keepdims=True)), axis=-1, keepdims=True), F23)
case("pytree_out", lambda x, y: {"a": x * 2, "b": (x @ y, tnp.sum(y))}, F23, ((3, 2), "f"))
case("const_out", lambda x: (x, np.float32(3.0), tnp.ones(2)), F3)


def _modes(name, specs):
    modes = ["0", "1", "-1"]
    if len(specs) > 1:
        modes += ["first_only"] + ([] if name in TRACED_FIRST else ["last_only"])
    return modes


def _axes_for(mode, specs):
    n = len(specs)
    out = []
    for k, (shape, _) in enumerate(specs):
        if mode == "first_only":
            out.append(0 if k == 0 else None)
        elif mode == "last_only":
            out.append(0 if k == n - 1 else None)
        elif mode == "1":
            out.append(1 if len(shape) >= 1 else 0)
        else:
            out.append(int(mode))
    return out


PARAMS = [pytest.param(name, fn, specs, mode, id=f"{name}-{mode}")
          for name, fn, specs in CASES for mode in _modes(name, specs)]


@pytest.mark.parametrize("name,fn,specs,mode", PARAMS)
def test_vmap_matches_loop(name, fn, specs, mode):
    args = [make(s, k) for s, k in specs]
    check_vmap(fn, args, _axes_for(mode, specs), kinds=[k for _, k in specs],
               ref=staged(fn) if name in STAGED_REF else None)


@pytest.mark.parametrize("out_axes", [1, -1, (0, {"a": 1, "b": -1})])
def test_out_axes(out_axes):
    def f(x):
        return x * 2, {"a": x[0] + x, "b": tnp.outer(x, x)}
    if isinstance(out_axes, int):
        check_vmap(f, [make((3,))], [0], out_axes=out_axes)
    else:
        xs = make((4, 3))
        y, d = T.vmap(f, out_axes=out_axes)(xs)
        np.testing.assert_allclose(y, xs * 2)
        np.testing.assert_allclose(d["a"], (xs[:, :1] + xs).T, rtol=1e-6)
        np.testing.assert_allclose(d["b"], np.einsum("bi,bj->ijb", xs, xs), rtol=1e-6)


def test_unbatched_output_broadcast_and_none():
    xs = make((4, 3))
    c = np.arange(3.0)
    out = T.vmap(lambda x: (x, c), out_axes=(0, None))(xs)
    assert out[1] is c or np.array_equal(out[1], c)
    out = T.vmap(lambda x: (x, c))(xs)
    np.testing.assert_array_equal(out[1], np.broadcast_to(c, (4, 3)))
    out = T.vmap(lambda x: c, out_axes=1)(xs)
    assert out.shape == (3, 4)
    out[0, 0] = 1.0          # results are ordinary (writable) arrays, not broadcast views


def test_in_axes_pytree_prefix_and_kwargs():
    p = {"w": make((3, 2)), "b": make((2,))}
    xs = make((5, 3))
    ys = make((5, 2))

    def f(params, x, y=None):
        return tnp.sum((x @ params["w"] + params["b"] - y) ** 2)

    got = T.vmap(f, in_axes=({"w": None, "b": None}, 0))(p, xs, y=ys)
    want = np.stack([f(p, xs[i], ys[i]) for i in range(5)])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # dict-level prefix with a None leaf, list in_axes, params batched on b only
    bs = make((5, 2))
    got = T.vmap(f, in_axes=[{"w": None, "b": 0}, 0, 0])(
        {"w": p["w"], "b": bs}, xs, ys)
    want = np.stack([f({"w": p["w"], "b": bs[i]}, xs[i], ys[i]) for i in range(5)])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # None inside the argument tree is an empty subtree
    got = T.vmap(lambda t: t[0] * 2, in_axes=((0, None),))((xs, None))
    np.testing.assert_allclose(got, xs * 2)


def test_axis_size_without_mapped_inputs():
    out = T.vmap(lambda x: x + 1.0, in_axes=None, axis_size=4)(np.ones(2))
    assert out.shape == (4, 2)
    out = T.vmap(lambda: tnp.ones(3), axis_size=2)()
    assert out.shape == (2, 3)


def test_negative_in_axes_and_scalar_leaves():
    xs = make((2, 3, 5))
    got = T.vmap(lambda x: tnp.sum(x, axis=0), in_axes=-1)(xs)
    np.testing.assert_allclose(got, xs.sum(0).T, rtol=1e-6)
    got = T.vmap(lambda x, s: x * s, in_axes=(0, None))(xs, 2.0)
    np.testing.assert_allclose(got, xs * 2)


def test_unmapped_arguments_pass_through_unchanged():
    """As in JAX, an unmapped leaf reaches the function as given: a Python scalar stays a
    (weakly typed, hashable) Python scalar, so it keeps float32 math float32 and can feed a
    static argument of a jitted function."""
    x32 = np.arange(6, dtype=np.float32).reshape(2, 3)
    seen = []

    def f(x, n):
        seen.append(type(n))
        return x * n
    out = T.vmap(f, in_axes=(0, None))(x32, 3)
    assert seen == [int] and out.dtype == np.float32
    np.testing.assert_array_equal(out, x32 * 3)
    jf = T.jit(lambda x, n: x * n, static_argnums=1)
    np.testing.assert_array_equal(T.vmap(jf, in_axes=(0, None))(x32, 3), x32 * 3)


def test_wraps():
    def my_function(x):
        """doc"""
        return x
    v = T.vmap(my_function)
    assert v.__name__ == "my_function" and v.__doc__ == "doc"


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

def test_error_inconsistent_sizes():
    with pytest.raises(ValueError, match="inconsistent sizes") as e:
        T.vmap(lambda a, b: a + b)(np.ones(3), {"k": np.ones(4)})
    msg = str(e.value)
    assert "args[0]" in msg and "args[1]['k']" in msg and "size 3" in msg and "size 4" in msg
    with pytest.raises(ValueError, match="inconsistent sizes"):
        T.vmap(lambda a: a, axis_size=5)(np.ones(3))
    with pytest.raises(ValueError, match="kwargs"):
        T.vmap(lambda a, b: a + b)(np.ones(3), b=np.ones(2))


def test_error_bad_axes():
    with pytest.raises(ValueError, match="out_axes is None"):
        T.vmap(lambda x: x * 2, out_axes=None)(np.ones(3))
    with pytest.raises(ValueError, match="out of bounds"):
        T.vmap(lambda x: x * 2, out_axes=3)(np.ones((3, 2)))
    with pytest.raises(ValueError, match="rank"):
        T.vmap(lambda x: x, in_axes=2)(np.ones((3, 2)))
    with pytest.raises(ValueError, match="rank"):
        T.vmap(lambda x: x)(1.0)
    with pytest.raises(ValueError, match="len\\(in_axes\\)"):
        T.vmap(lambda x, y: x, in_axes=(0,))(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="at least one"):
        T.vmap(lambda x: x, in_axes=None)(np.ones(3))
    with pytest.raises(ValueError, match="prefix"):
        T.vmap(lambda x: x, in_axes=({"a": 0},))({"b": np.ones(3)})
    with pytest.raises(TypeError):
        T.vmap(lambda x: x, in_axes={"a": 0})
    with pytest.raises(TypeError):
        T.vmap(lambda x: x, in_axes=(1.5,))(np.ones(3))


def test_error_data_dependent_and_leak():
    with pytest.raises(TypeError):
        T.vmap(lambda x: x[x > 0])(np.ones((3, 2)))
    with pytest.raises(TypeError):
        T.vmap(lambda x: float(x))(np.ones(3))
    leaked = []
    T.vmap(lambda x: leaked.append(x) or x)(np.ones(3))
    with pytest.raises(T.UnexpectedTracerError):
        tnp.sin(leaked[0])


# ---------------------------------------------------------------------------------------------
# Composition with autodiff
# ---------------------------------------------------------------------------------------------

def init_mlp(sizes, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [{"w": (rng.standard_normal((m, n)) / np.sqrt(m)).astype(dtype),
             "b": (0.1 * rng.standard_normal(n)).astype(dtype)}
            for m, n in zip(sizes[:-1], sizes[1:])]


def mlp_loss(params, x, y):
    h = x
    for layer in params[:-1]:
        h = tnp.tanh(h @ layer["w"] + layer["b"])
    logits = h @ params[-1]["w"] + params[-1]["b"]
    logp = logits - tnp.log(tnp.sum(tnp.exp(logits), axis=-1, keepdims=True))
    return -tnp.sum(logp * y)


def _data(n, d_in, d_out, dtype=np.float32, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d_in)).astype(dtype)
    y = np.eye(d_out, dtype=dtype)[rng.integers(0, d_out, n)]
    return x, y


def test_per_example_grads_match_loop():
    params = init_mlp([6, 5, 4, 3])
    x, y = _data(7, 6, 3)
    got = T.vmap(T.grad(mlp_loss), in_axes=(None, 0, 0))(params, x, y)
    loop = [T.grad(mlp_loss)(params, x[i], y[i]) for i in range(7)]
    want = T.tree.map(lambda *g: np.stack(g), *loop)
    for g, w in zip(T.tree.leaves(got), T.tree.leaves(want)):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)


def test_per_example_grad_jaxpr_size_independent_of_batch():
    params = init_mlp([6, 5, 3])
    sizes = []
    for n in (4, 64):
        x, y = _data(n, 6, 3)
        jaxpr = T.make_jaxpr(T.vmap(T.grad(mlp_loss), in_axes=(None, 0, 0)))(params, x, y)
        sizes.append(len(jaxpr.eqns))
        assert f"f32[{n},6,5]" in str(jaxpr)
    assert sizes[0] == sizes[1]


def test_grad_of_function_using_vmap():
    params = init_mlp([4, 5, 3], dtype=np.float64)
    x, y = _data(6, 4, 3, dtype=np.float64)

    def batch_loss(p):
        return tnp.mean(T.vmap(mlp_loss, in_axes=(None, 0, 0))(p, x, y))

    def loop_loss(p):
        return sum(mlp_loss(p, x[i], y[i]) for i in range(6)) / 6

    g = T.grad(batch_loss)(params)
    want = T.grad(loop_loss)(params)
    for a, b in zip(T.tree.leaves(g), T.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # and against finite differences on one weight
    eps = 1e-6
    w = params[0]["w"]
    for idx in [(0, 0), (3, 4)]:
        pp = T.tree.map(lambda a: a.copy(), params)
        pm = T.tree.map(lambda a: a.copy(), params)
        pp[0]["w"][idx] += eps
        pm[0]["w"][idx] -= eps
        fd = (batch_loss(pp) - batch_loss(pm)) / (2 * eps)
        np.testing.assert_allclose(g[0]["w"][idx], fd, rtol=1e-6)
    assert w is params[0]["w"]


def test_grad_with_batched_dynamic_indexing():
    x = np.linspace(-1, 1, 12).reshape(4, 3)
    idx = np.array([2, 0, 3, 3, 1])

    def f(x):
        rows = T.vmap(lambda i: x[i] * (i + 1.0))(idx)
        return tnp.sum(tnp.sin(rows))

    g = T.grad(f)(x)
    want = np.zeros_like(x)
    for i in idx:
        want[i] += np.cos(x[i] * (i + 1)) * (i + 1)
    np.testing.assert_allclose(g, want, rtol=1e-12)


def test_vmap_of_vmap():
    xs = make((3, 4, 5))
    ws = make((5, 2))
    f = lambda x, w: tnp.tanh(x @ w).sum()  # noqa: E731
    got = T.vmap(T.vmap(f, in_axes=(0, None)), in_axes=(1, None))(xs, ws)
    want = np.array([[f(xs[i, j], ws) for i in range(3)] for j in range(4)])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # inner axis on the second argument, outer on the first
    got = T.vmap(T.vmap(lambda a, b: a * b, in_axes=(None, 0)), in_axes=(0, None))(
        np.arange(3.0), np.arange(4.0))
    np.testing.assert_allclose(got, np.outer(np.arange(3.0), np.arange(4.0)))


def _fn(x):
    return tnp.sin(x) * tnp.sum(x ** 2) + tnp.cumsum(x)[::-1]


def _num_jac(f, x, eps=1e-6):
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = eps
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * eps))
    return np.stack(cols, -1).reshape(np.shape(f(x)) + x.shape)


def test_jacobians_and_hessian():
    x = np.linspace(-1, 1, 4)
    J = _num_jac(_fn, x)
    np.testing.assert_allclose(T.jacrev(_fn)(x), J, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(T.jacfwd(_fn)(x), J, rtol=1e-7, atol=1e-8)
    scalar = lambda x: tnp.sum(tnp.sin(x) * x[0] + x ** 3)  # noqa: E731
    H = _num_jac(lambda v: T.grad(scalar)(v), x)
    np.testing.assert_allclose(T.hessian(scalar)(x), H, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(T.jacfwd(T.jacrev(scalar))(x), H, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(T.jacrev(T.jacrev(scalar))(x), H, rtol=1e-6, atol=1e-7)
    # vmap of jacrev: per-example Jacobians
    xs = np.stack([x, x * 0.5, -x])
    got = T.vmap(T.jacrev(_fn))(xs)
    for i in range(3):
        np.testing.assert_allclose(got[i], _num_jac(_fn, xs[i]), rtol=1e-7, atol=1e-8)


def test_jacobian_of_mlp_params():
    params = init_mlp([3, 4, 2], dtype=np.float64)
    x, y = _data(1, 3, 2, dtype=np.float64)
    jr = T.jacrev(lambda p: mlp_loss(p, x[0], y[0]))(params)
    g = T.grad(mlp_loss)(params, x[0], y[0])
    for a, b in zip(T.tree.leaves(jr), T.tree.leaves(g)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    jf = T.jacfwd(lambda p: mlp_loss(p, x[0], y[0]))(params)
    for a, b in zip(T.tree.leaves(jf), T.tree.leaves(g)):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_vmap_of_jvp_and_vjp():
    xs = make((4, 3), "d")
    ts = make((4, 3), "d")
    f = lambda x: tnp.exp(x) * tnp.sum(x)  # noqa: E731
    out, tan = T.vmap(lambda x, t: T.jvp(f, (x,), (t,)))(xs, ts)
    for i in range(4):
        o, t = T.jvp(f, (xs[i],), (ts[i],))
        np.testing.assert_allclose(out[i], o)
        np.testing.assert_allclose(tan[i], t, rtol=1e-12)
    ct = T.vmap(lambda x, c: T.vjp(f, x)[1](c)[0])(xs, ts)
    for i in range(4):
        np.testing.assert_allclose(ct[i], T.vjp(f, xs[i])[1](ts[i])[0], rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Structure of the batched IR
# ---------------------------------------------------------------------------------------------

def test_make_jaxpr_shows_batched_ir():
    x = make((8, 3))
    w = make((3, 4))
    jaxpr = T.make_jaxpr(T.vmap(lambda v: tnp.tanh(v @ w), in_axes=0))(x)
    s = str(jaxpr)
    assert "dot_general" in s and "f32[8,4]" in s
    names = [e.prim.name for e in jaxpr.eqns]
    assert names.count("dot_general") == 1 and names[-1] == "tanh" and "transpose" not in names
    jaxpr = T.make_jaxpr(T.vmap(lambda v: tnp.tanh(tnp.dot(v, w)), in_axes=0))(x)
    assert [e.prim.name for e in jaxpr.eqns] == ["dot_general", "tanh"]


def test_dot_general_batch_is_one_op():
    a, b = make((5, 2, 3)), make((5, 3, 4))
    jaxpr = T.make_jaxpr(T.vmap(lambda x, y: x @ y))(a, b)
    assert [e.prim.name for e in jaxpr.eqns] == ["dot_general"]
    jaxpr = T.make_jaxpr(T.vmap(lambda x, y: x @ y, in_axes=(2, None), out_axes=1))(
        make((2, 3, 5)), make((3, 4)))
    assert [e.prim.name for e in jaxpr.eqns] == ["dot_general"]
    table = make((6, 2))
    jaxpr = T.make_jaxpr(T.vmap(lambda i: tnp.take(table, i, axis=0)))(np.arange(4))
    assert [e.prim.name for e in jaxpr.eqns].count("gather") == 1
    jaxpr = T.make_jaxpr(T.vmap(lambda t, i: t[i]))(make((4, 6, 2)), np.arange(4) % 6)
    assert [e.prim.name for e in jaxpr.eqns].count("gather") == 1


def test_batch_dims_not_moved_for_elementwise_chain():
    x = make((3, 7))
    jaxpr = T.make_jaxpr(T.vmap(lambda v: tnp.exp(tnp.sin(v) * v), in_axes=1, out_axes=1))(x)
    assert "transpose" not in str(jaxpr)


def test_batch_jaxpr_helper():
    closed = T.make_jaxpr(lambda x, y: (tnp.sin(x) * y, y + 1.0))(make((3,)), make(()))
    new, dims = batch_jaxpr(closed, 4, [1, None])
    assert dims == [1, None]
    xs = make((3, 4))
    y = np.float32(0.5)
    out = new(xs, y)
    np.testing.assert_allclose(out[0], np.sin(xs) * y, rtol=1e-6)
    new, dims = batch_jaxpr(closed, 4, [1, None], out_dims=[0, 0])
    out = new(xs, y)
    assert dims == [0, 0] and out[1].shape == (4,)
    np.testing.assert_allclose(out[0], (np.sin(xs) * y).T, rtol=1e-6)
    with pytest.raises(ValueError):
        batch_jaxpr(closed, 4, [1, None], out_dims=[None, 0])


def test_batch_trace_repr_and_tracer_props():
    seen = {}

    def f(x):
        seen["shape"], seen["ndim"] = x.shape, x.ndim
        seen["trace"] = repr(x._trace)
        assert x.concrete_value() is None
        return x
    T.vmap(f, in_axes=1, axis_name="b")(np.ones((2, 5, 3)))
    assert seen["shape"] == (2, 3) and seen["ndim"] == 2
    assert "axis_size=5" in seen["trace"] and BatchTrace.__name__ in seen["trace"]


# ---------------------------------------------------------------------------------------------
# Property tests (small)
# ---------------------------------------------------------------------------------------------

if given is not None:
    @settings(max_examples=25, deadline=None)
    @given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3),
           in_axis=st.integers(-4, 3), red=st.integers(-3, 2), out_axis=st.integers(-4, 3))
    def test_property_elementwise_reduce(shape, in_axis, red, out_axis):
        nd = len(shape)
        in_axis = in_axis % (nd + 1)
        red = red % nd
        out_nd = nd
        out_axis = out_axis % out_nd

        def f(x, y):
            return tnp.sum(tnp.sin(x) * y + x, axis=red)

        x = make(shape)
        y = make(shape[-1:])
        check_vmap(f, [x, y], [in_axis, None], out_axis)

    @settings(max_examples=20, deadline=None)
    @given(shape=st.lists(st.integers(1, 3), min_size=2, max_size=3),
           perm_seed=st.integers(0, 100), in_axis=st.integers(0, 3))
    def test_property_transpose_reshape(shape, perm_seed, in_axis):
        nd = len(shape)
        perm = tuple(np.random.default_rng(perm_seed).permutation(nd))
        in_axis = in_axis % (nd + 1)

        def f(x):
            return tnp.reshape(tnp.transpose(x, perm), (-1,))[::2]

        check_vmap(f, [make(shape)], [in_axis])
