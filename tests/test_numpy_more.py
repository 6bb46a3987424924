"""The NumPy names JAX users call beyond the core set (sorting and order statistics, NaN
reductions, differences, products, stacking, rolls, grids, put, interp, ...): values and
dtypes against NumPy eagerly, jit against eager, vmap against a loop, and finite-difference
derivatives of the differentiable ones."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax
from transforms.test_util import check_grads


def _data():
    rng = np.random.default_rng(11)
    d = {
        "F": rng.uniform(-2, 2, (3, 5)),
        "F32": rng.uniform(-2, 2, (3, 5)).astype(np.float32),
        "V": rng.uniform(-2, 2, (6,)),
        "W": rng.uniform(-2, 2, (4,)),
        "I": rng.integers(-4, 5, (3, 5)).astype(np.int32),
        "P": rng.uniform(1.1, 3, (3, 5)),                 # > 1 (arccosh)
        "S": np.sort(rng.uniform(-2, 2, (7,))),           # sorted sample points
        "DUP": np.array([3.0, 1.0, 2.0, 1.0, 3.0, 0.5]),
        "NAN": np.array([[1.0, np.nan, 3.0, -1.0], [np.nan, np.nan, np.nan, np.nan],
                         [2.0, 0.5, np.nan, 4.0]]),
        "V3": rng.uniform(-1, 1, (4, 3)),
        "U3": rng.uniform(-1, 1, (4, 3)),
        "M1": rng.uniform(-1, 1, (2, 3)),
        "M2": rng.uniform(-1, 1, (3, 4)),
        "M3": rng.uniform(-1, 1, (4, 2)),
    }
    # distinct values: sort/median derivatives are defined
    d["D"] = rng.permutation(np.linspace(-2, 2, 15)).reshape(3, 5)
    return d


X = _data()

# (id, fn(m, *args) with m = numpy or tnp, arg names, differentiable arg positions)
CASES = [
    ("sort", lambda m, x: m.sort(x), ["D"], (0,)),
    ("sort_axis0", lambda m, x: m.sort(x, axis=0), ["D"], (0,)),
    ("sort_none", lambda m, x: m.sort(x, axis=None), ["D"], (0,)),
    ("sort_int", lambda m, x: m.sort(x), ["I"], ()),
    ("sort_nan", lambda m, x: m.sort(x), ["NAN"], ()),
    ("argsort_ties", lambda m, x: m.argsort(x), ["DUP"], ()),
    ("argsort_axis0", lambda m, x: m.argsort(x, axis=0), ["I"], ()),
    ("median", lambda m, x: m.median(x), ["D"], (0,)),
    ("median_axis", lambda m, x: m.median(x, axis=1), ["D"], (0,)),
    ("median_even", lambda m, x: m.median(x, axis=0), ["V"], (0,)),
    ("median_int", lambda m, x: m.median(x, axis=1), ["I"], ()),
    ("quantile_vec", lambda m, x: m.quantile(x, np.array([0.1, 0.5, 0.95]), axis=1),
     ["D"], (0,)),
    ("quantile_keepdims", lambda m, x: m.quantile(x, 0.3, axis=0, keepdims=True), ["D"], (0,)),
    ("quantile_lower", lambda m, x: m.quantile(x, 0.3, method="lower"), ["D"], ()),
    ("quantile_higher", lambda m, x: m.quantile(x, 0.3, method="higher"), ["D"], ()),
    ("quantile_nearest", lambda m, x: m.quantile(x, 0.3, method="nearest"), ["D"], ()),
    ("quantile_midpoint", lambda m, x: m.quantile(x, 0.3, method="midpoint"), ["D"], ()),
    ("percentile", lambda m, x: m.percentile(x, 75, axis=1), ["D"], (0,)),
    ("median_with_nan", lambda m, x: m.median(x, axis=1), ["NAN"], ()),
    ("nanmedian", lambda m, x: m.nanmedian(x[[0, 2]], axis=1), ["NAN"], ()),
    ("nanquantile", lambda m, x: m.nanquantile(x[[0, 2]], 0.25, axis=1), ["NAN"], ()),
    ("searchsorted", lambda m, a, v: m.searchsorted(a, v), ["S", "V"], ()),
    ("searchsorted_right", lambda m, a, v: m.searchsorted(a, v[::2], side="right"),
     ["S", "S"], ()),
    ("digitize", lambda m, x, b: m.digitize(x, b), ["V", "S"], ()),
    ("lexsort", lambda m, a, b: m.lexsort((a, b)), ["I", "I"], ()),
    ("nansum", lambda m, x: m.nansum(x, axis=1), ["NAN"], ()),
    ("nanmean", lambda m, x: m.nanmean(x[[0, 2]], axis=1), ["NAN"], ()),
    ("nanmax", lambda m, x: m.nanmax(x[[0, 2]], axis=1), ["NAN"], ()),
    ("nanmin", lambda m, x: m.nanmin(x[[0, 2]]), ["NAN"], ()),
    ("nanvar", lambda m, x: m.nanvar(x[[0, 2]], axis=1), ["NAN"], ()),
    ("nanstd", lambda m, x: m.nanstd(x[[0, 2]], axis=1, ddof=1), ["NAN"], ()),
    ("nanprod", lambda m, x: m.nanprod(x, axis=0), ["NAN"], ()),
    ("nanargmax", lambda m, x: m.nanargmax(x[[0, 2]], axis=1), ["NAN"], ()),
    ("nancumsum", lambda m, x: m.nancumsum(x, axis=1), ["NAN"], ()),
    ("nansum_grad", lambda m, x: m.nansum(x * x), ["F"], (0,)),
    ("cumulative_sum", lambda m, x: m.cumulative_sum(x, axis=1, include_initial=True),
     ["F"], (0,)),
    ("cumulative_prod", lambda m, x: m.cumulative_prod(x, axis=0), ["F"], (0,)),
    ("average", lambda m, x: m.average(x, axis=1), ["F"], (0,)),
    ("average_weights", lambda m, x, w: m.average(x, axis=0, weights=w[:3]), ["F", "W"],
     (0, 1)),
    ("average_returned", lambda m, x, w: m.average(x, weights=x * 0 + 1 + w[0] ** 2,
                                                    returned=True), ["F", "W"], ()),
    ("ptp", lambda m, x: m.ptp(x, axis=1), ["D"], (0,)),
    ("cov", lambda m, x: m.cov(x), ["F"], (0,)),
    ("cov_cols", lambda m, x: m.cov(x, rowvar=False, bias=True), ["F"], (0,)),
    ("corrcoef", lambda m, x: m.corrcoef(x), ["F"], (0,)),
    ("arccosh", lambda m, x: m.arccosh(x), ["P"], (0,)),
    ("degrees", lambda m, x: m.degrees(x), ["F"], (0,)),
    ("radians_int", lambda m, x: m.radians(x), ["I"], ()),
    ("rad2deg", lambda m, x: m.rad2deg(x), ["F32"], ()),
    ("fabs", lambda m, x: m.fabs(x), ["F"], (0,)),
    ("fmax", lambda m, x: m.fmax(x, 0.5), ["NAN"], ()),
    ("fmin", lambda m, x, y: m.fmin(x, y), ["NAN", "NAN"], ()),
    ("fmax_grad", lambda m, x, y: m.fmax(x, y * 0.9), ["F", "D"], (0, 1)),
    ("nan_to_num", lambda m, x: m.nan_to_num(np.array([np.nan, np.inf, -np.inf, 1.0]) + x),
     ["W"], ()),
    ("signbit", lambda m, x: m.signbit(np.array([-0.0, 0.0, -1.0, 2.0]) * x[0] ** 0), ["W"],
     ()),
    ("copysign", lambda m, x, y: m.copysign(x, y), ["F", "D"], (0,)),
    ("isposinf", lambda m, x: m.isposinf(x), ["NAN"], ()),
    ("diff", lambda m, x: m.diff(x), ["F"], (0,)),
    ("diff_n2_axis0", lambda m, x: m.diff(x, n=2, axis=0), ["F"], (0,)),
    ("diff_prepend", lambda m, x: m.diff(x, prepend=0.0, append=x[:, :1]), ["F"], (0,)),
    ("diff_int", lambda m, x: m.diff(x), ["I"], ()),
    ("gradient", lambda m, x: m.gradient(x), ["V"], (0,)),
    ("gradient_2d", lambda m, x: m.gradient(x, 0.5, axis=1), ["F"], (0,)),
    ("kron", lambda m, a, b: m.kron(a, b), ["M1", "M3"], (0, 1)),
    ("cross", lambda m, a, b: m.cross(a, b), ["V3", "U3"], (0, 1)),
    ("cross_2d", lambda m, a, b: m.cross(a[:, :2], b[:, :2]), ["V3", "U3"], (0, 1)),
    ("matvec", lambda m, a, b: m.matvec(a, b), ["M2", "W"], (0, 1)),
    ("vecmat", lambda m, a, b: m.vecmat(b[:3], a), ["M2", "W"], (0, 1)),
    ("vecdot", lambda m, a, b: m.vecdot(a, b), ["V3", "U3"], (0, 1)),
    ("polyval", lambda m, p, x: m.polyval(p, x), ["W", "V"], (0, 1)),
    ("convolve", lambda m, a, v: m.convolve(a, v), ["V", "W"], (0, 1)),
    ("convolve_same", lambda m, a, v: m.convolve(a, v, mode="same"), ["W", "V"], (0, 1)),
    ("correlate", lambda m, a, v: m.correlate(a, v), ["V", "W"], (0, 1)),
    ("correlate_full", lambda m, a, v: m.correlate(a, v, "full"), ["W", "V"], (0, 1)),
    ("append", lambda m, a, b: m.append(a, b), ["F", "W"], (0, 1)),
    ("append_axis", lambda m, a: m.append(a, a[:1], axis=0), ["F"], (0,)),
    ("roll", lambda m, x: m.roll(x, 2), ["F"], (0,)),
    ("roll_axis", lambda m, x: m.roll(x, (-1, 3), axis=(0, 1)), ["F"], (0,)),
    ("rollaxis", lambda m, x: m.rollaxis(x[None], 2, 0), ["F"], ()),
    ("rot90", lambda m, x: m.rot90(x), ["F"], (0,)),
    ("rot90_k3", lambda m, x: m.rot90(x, 3), ["F"], ()),
    ("rot90_k2", lambda m, x: m.rot90(x, -2), ["F"], ()),
    ("atleast_3d", lambda m, x: m.atleast_3d(x), ["F"], ()),
    ("column_stack", lambda m, a, b: m.column_stack([a, b]), ["W", "W"], ()),
    ("dstack", lambda m, a: m.dstack([a, a]), ["F"], ()),
    ("hsplit", lambda m, a: m.hsplit(a[:, :4], 2)[1], ["F"], ()),
    ("vsplit", lambda m, a: m.vsplit(a, [1])[1], ["F"], ()),
    ("meshgrid", lambda m, a, b: m.meshgrid(a, b)[0] + m.meshgrid(a, b)[1], ["W", "V"], ()),
    ("meshgrid_ij", lambda m, a, b: m.meshgrid(a, b, indexing="ij")[1], ["W", "V"], ()),
    ("select", lambda m, x: m.select([x < -1, x > 1], [x * 2, x * 3], -x), ["F"], (0,)),
    ("interp", lambda m, x, xp: m.interp(x, xp, xp ** 2), ["V", "S"], ()),
    ("vander", lambda m, x: m.vander(x, 3), ["W"], (0,)),
    ("put", lambda m, x: m.put(x, np.array([0, 7, 3]), np.array([9.0, 8.0, 7.0]),
                               inplace=False), ["F"], ()),
    ("put_along_axis", lambda m, x: m.put_along_axis(x, np.array([[1], [0], [4]]),
                                                     -1.0, axis=1, inplace=False),
     ["F"], ()),
    ("multi_dot", lambda m, a, b, c: m.linalg.multi_dot([a, b, c]), ["M1", "M2", "M3"],
     (0, 1, 2)),
    ("linalg_vecdot", lambda m, a, b: m.linalg.vecdot(a, b), ["V3", "U3"], ()),
    ("linalg_tensordot", lambda m, a, b: m.linalg.tensordot(a, b, axes=1), ["M1", "M2"], ()),
    ("unique_size", None, ["DUP"], ()),
]


def _numpy_put(x, ind, v):
    y = np.array(x)
    np.put(y, ind, v)
    return y


def _numpy_put_along_axis(x, ind, v, axis):
    y = np.array(x)
    np.put_along_axis(y, ind, v, axis)
    return y


class _NumpyShim:
    """NumPy with JAX's functional `put`/`put_along_axis` (NumPy's write in place)."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def put(x, ind, v, inplace=False):
        return _numpy_put(x, ind, v)

    @staticmethod
    def put_along_axis(x, ind, v, axis, inplace=False):
        return _numpy_put_along_axis(x, ind, v, axis)


NP = _NumpyShim()
RUN = [c for c in CASES if c[1] is not None]


def _eq(got, want, rtol=1e-12):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("name,fn,args,_", RUN, ids=[c[0] for c in RUN])
def test_eager_matches_numpy(name, fn, args, _):
    vals = [X[a] for a in args]
    _eq(fn(tnp, *vals), fn(NP, *vals))


@pytest.mark.parametrize("name,fn,args,_", RUN, ids=[c[0] for c in RUN])
def test_jit_matches_eager(name, fn, args, _):
    vals = [X[a] for a in args]
    want = fn(tnp, *vals)
    got = T.jit(lambda *v: fn(tnp, *v))(*vals)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12, atol=1e-12,
                               equal_nan=True)
    assert np.asarray(got).dtype == np.asarray(want).dtype


VMAP = [c for c in RUN if c[0] in {
    "sort", "median_axis", "quantile_vec", "searchsorted", "nanmax", "diff", "gradient_2d",
    "kron", "cross", "convolve", "roll", "rot90", "select", "interp", "average", "cov",
    "nanmedian", "argsort_axis0"}]


@pytest.mark.parametrize("name,fn,args,_", VMAP, ids=[c[0] for c in VMAP])
def test_vmap_matches_loop(name, fn, args, _):
    vals = [X[a] for a in args]
    stacked = [np.stack([v, v[::-1] * 0.5 + 0.25]) for v in vals]
    got = T.vmap(lambda *v: fn(tnp, *v))(*stacked)
    want = np.stack([fn(tnp, *[s[i] for s in stacked]) for i in range(2)])
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12, equal_nan=True)


GRAD = [c for c in RUN if c[3]]


@pytest.mark.parametrize("name,fn,args,diff", GRAD, ids=[c[0] for c in GRAD])
def test_derivatives(name, fn, args, diff):
    vals = [X[a] for a in args]

    def f(*d):
        full = list(vals)
        for i, v in zip(diff, d):
            full[i] = v
        return fn(tnp, *full)

    check_grads(f, [vals[i] for i in diff], order=2, modes=("fwd", "rev"))


def test_sort_gradient_follows_the_permutation():
    x = np.array([3.0, -1.0, 2.0])
    g = T.grad(lambda x: (tnp.sort(x) * np.array([1.0, 10.0, 100.0])).sum())(x)
    np.testing.assert_array_equal(g, [100.0, 1.0, 10.0])


def test_sort_descending_is_stable():
    x = np.array([1, 3, 2, 3, 1])
    np.testing.assert_array_equal(tnp.argsort(x, descending=True), [1, 3, 2, 0, 4])
    np.testing.assert_array_equal(T.jit(lambda x: tnp.sort(x, descending=True))(x),
                                  [3, 3, 2, 1, 1])


def test_lax_sort_multiple_operands():
    keys = np.array([2, 1, 2, 1, 0])
    vals = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    k, v = lax.sort_key_val(keys, vals)
    np.testing.assert_array_equal(k, [0, 1, 1, 2, 2])
    np.testing.assert_array_equal(v, [50.0, 20.0, 40.0, 10.0, 30.0])
    a, b, c = T.jit(lambda *o: lax.sort(o, num_keys=2))(np.array([1, 0, 1, 0]),
                                                         np.array([2, 5, 1, 3]),
                                                         np.arange(4.0))
    np.testing.assert_array_equal(c, [3.0, 1.0, 2.0, 0.0])


def test_unique_with_size_under_jit():
    x = X["DUP"]
    got = T.jit(lambda x: tnp.unique(x, size=6, fill_value=-1.0))(x)
    np.testing.assert_array_equal(got, [0.5, 1.0, 2.0, 3.0, -1.0, -1.0])
    np.testing.assert_array_equal(tnp.unique(x), np.unique(x))
    np.testing.assert_array_equal(T.jit(lambda x: tnp.unique(x, size=2))(x), [0.5, 1.0])


def test_unique_without_size_needs_concrete_values():
    with pytest.raises(Exception, match="size="):
        T.jit(tnp.unique)(X["DUP"])


def test_histogram_matches_numpy():
    x = X["V"]
    c, e = tnp.histogram(x, bins=4)
    c0, e0 = np.histogram(x, bins=4)
    np.testing.assert_array_equal(c, c0)
    np.testing.assert_allclose(e, e0)
    cj, _ = T.jit(lambda x: tnp.histogram(x, bins=3, range=(-2, 2)))(x)
    np.testing.assert_array_equal(cj, np.histogram(x, bins=3, range=(-2, 2))[0])


def test_index_helpers_and_constants():
    np.testing.assert_array_equal(tnp.r_[1:4, 7, np.array([8, 9])], np.r_[1:4, 7, [8, 9]])
    np.testing.assert_array_equal(tnp.c_[np.array([1, 2]), np.array([3, 4])],
                                  np.c_[[1, 2], [3, 4]])
    a, b = tnp.ix_(np.array([0, 2]), np.array([1, 3]))
    np.testing.assert_array_equal(X["F"][a, b], X["F"][np.ix_([0, 2], [1, 3])])
    for got, want in zip(tnp.triu_indices(3, 1), np.triu_indices(3, 1)):
        np.testing.assert_array_equal(got, want)
    r, c = T.jit(lambda i: tnp.unravel_index(i, (3, 4)))(np.array([0, 5, 11]))
    np.testing.assert_array_equal(r, [0, 1, 2])
    np.testing.assert_array_equal(c, [0, 1, 3])
    with tnp.printoptions(precision=2):
        pass


def test_put_refuses_inplace():
    with pytest.raises(ValueError, match="inplace"):
        tnp.put(X["F"], [0], 1.0, inplace=True)


def test_fmax_fmin_keep_python_scalars_weak():
    # found by tests/differential: a Python float made fmax/fmin of float32 arrays float64
    import transforms.numpy as _tnp
    x = np.array([1.0, np.nan, 3.0], np.float32)
    for f, ref in ((_tnp.fmax, np.fmax), (_tnp.fmin, np.fmin)):
        for args in ((x, 2.0), (2.0, x), (x, np.int32(3))):
            got, want = f(*args), ref(*args)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
