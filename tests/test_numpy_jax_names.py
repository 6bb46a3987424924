"""The `jax.numpy` names added to tnp for porting JAX code: NumPy 2 aliases and dtypes, the
static `size=` forms (nonzero, where, argwhere, unique*, bincount, set operations, compress),
rearranging (delete, insert, block, choose, piecewise, ...), floating-point helpers (frexp,
nextafter, ...), polynomials, windows, vectorize and friends.

Every case runs eagerly against NumPy (or hand-padded NumPy results for the `size=` forms, whose
padding follows JAX), against `jax.numpy` when JAX is importable, under `jit` against eager,
under `vmap` against a loop where it batches, and through a float64 finite-difference gradient
check where it differentiates."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms.test_util import check_grads


@pytest.fixture(scope="module")
def jnp():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return pytest.importorskip("jax.numpy")


_rng = np.random.default_rng(7)
X = {
    "I": np.array([[0, 3, 0], [1, 0, 2]]),
    "U": np.array([3, 1, 3, 2, 7, 1]),
    "U2": np.array([2, 9, 3, 5, 2]),
    "UF": np.array([0.5, -1.0, 0.5, 2.0, np.nan, np.nan]),
    "UD": np.array([0.5, -1.0, 0.25, 2.0, 1.25]),    # distinct: unique is differentiable
    "EX": _rng.integers(-5, 6, (3, 4)),
    "C": np.array([True, False, True, True]),
    "F": _rng.uniform(-2, 2, (3, 4)),
    "G": _rng.uniform(-2, 2, (3, 4)),
    "V": _rng.uniform(-2, 2, (5,)),
    "P": _rng.uniform(0.5, 2, (3, 4)),
    "SQ": _rng.uniform(-2, 2, (3, 3)),
    "K": np.array([1, 0, 2, 1]),
    "E": np.array([[3, -2, 1], [0, 4, -5]]),
    "W": _rng.uniform(0, 1, (6,)),
    "BITS": np.array([[1, 0, 1, 1, 0, 0, 1, 0, 1], [0, 1, 1, 0, 0, 0, 0, 1, 0]]),
    "BYTES": np.array([[5, 200, 17], [255, 0, 128]], np.uint8),
    "FP": np.array([0.0, 3.0, -0.1, 1.0, 0.5, 1e-310, -5e-324, 2.0 ** -1022, 7e300, -np.inf,
                    np.finfo(np.float64).max]),
    "FP32": np.array([0.0, 3.0, -0.1, 1.0, 1e-40, -np.inf, 3e38], np.float32),
    "PH": np.array([0.0, 3.0, 6.5, -0.2, 2.9, -3.1]),
    "PX": np.sort(_rng.uniform(-1, 1, (12,))),
    "PY": _rng.uniform(-1, 1, (12,)),
    "POLY": np.array([1.0, -2.0, 0.5, 3.0]),
    "POLY2": np.array([2.0, 1.0]),
    "ROOTS": np.array([1.0, -2.0, 0.5]),
    "CPLX": np.array([1 + 2j, 1 - 1j, -3 + 0j, 1 - 2j]),
}


def pad(a, size, fill):
    """NumPy's data-dependent result `a` (1-D) cut or padded to `size` with `fill`."""
    a = np.asarray(a)
    out = np.full((size,) + a.shape[1:], fill, dtype=a.dtype)
    out[:min(size, len(a))] = a[:size]
    return out


def _ref_unique_all(x, size):
    vals, idx, inv, cnt = np.unique(x, return_index=True, return_inverse=True,
                                    return_counts=True)
    return (pad(vals, size, vals[0]), pad(idx, size, idx[0]), inv, pad(cnt, size, 0))


def _ref_intersect(a, b, size):
    v, i1, i2 = np.intersect1d(a, b, return_indices=True)
    return pad(v, size, v[0]), pad(i1, size, len(a)), pad(i2, size, len(b))


def _np_fill_diagonal(a, val, wrap=False, inplace=False):
    out = np.array(a)
    np.fill_diagonal(out, val, wrap=wrap)
    return out


class _NP:
    """NumPy, with JAX's functional fill_diagonal (NumPy's writes in place)."""

    def __getattr__(self, name):
        return getattr(np, name)

    fill_diagonal = staticmethod(_np_fill_diagonal)


NP = _NP()

# (id, fn(m, *args) with m = tnp / jax.numpy / NumPy, reference(*args) or None to run fn on
#  NumPy, arg names, vmap (batch the first argument), differentiable arg positions)
CASES = [
    # --- aliases ----------------------------------------------------------------------------
    ("acos", lambda m, x: m.acos(x / 3), None, ["F"], True, (0,)),
    ("asinh_atanh", lambda m, x: m.asinh(x) + m.atanh(x / 3), None, ["F"], True, (0,)),
    ("acosh", lambda m, x: m.acosh(x + 1.5), None, ["P"], True, (0,)),
    ("atan2", lambda m, x, y: m.atan2(x, y), None, ["F", "G"], True, (0, 1)),
    ("pow", lambda m, x, y: m.pow(x, y), None, ["P", "G"], True, (0, 1)),
    ("permute_dims", lambda m, x: m.permute_dims(x.reshape(2, 3, 2), (2, 0, 1)), None, ["F"],
     True, (0,)),
    ("matrix_transpose", lambda m, x: m.matrix_transpose(x), None, ["F"], True, (0,)),
    ("unstack", lambda m, x: m.stack(m.unstack(x, axis=1)[::-1]), None, ["F"], True, (0,)),
    ("bitwise_shifts", lambda m, x: m.bitwise_left_shift(x, 2) + m.bitwise_right_shift(x, 1)
     + m.bitwise_invert(x), None, ["E"], True, ()),
    ("bitwise_count", lambda m, x: m.bitwise_count(x * 977), None, ["E"], True, ()),
    ("bitwise_count_i8", lambda m, x: m.bitwise_count(x.astype(np.int8) * 41), None, ["E"],
     False, ()),
    # --- size= forms --------------------------------------------------------------------------
    ("nonzero_size", lambda m, x: m.nonzero(x, size=5, fill_value=-1),
     lambda x: tuple(pad(i, 5, -1) for i in np.nonzero(x)), ["I"], True, ()),
    ("nonzero_size_cut", lambda m, x: m.nonzero(x, size=2, fill_value=(7, 8)),
     lambda x: tuple(pad(i, 2, 0) for i in np.nonzero(x)), ["I"], True, ()),
    ("where_size", lambda m, x: m.where(x, size=4),
     lambda x: tuple(pad(i, 4, 0) for i in np.nonzero(x)), ["I"], True, ()),
    ("argwhere_size", lambda m, x: m.argwhere(x, size=4, fill_value=9),
     lambda x: pad(np.argwhere(x), 4, 9), ["I"], True, ()),
    ("flatnonzero_size", lambda m, x: m.flatnonzero(x, size=5),
     lambda x: pad(np.flatnonzero(x), 5, 0), ["I"], True, ()),
    ("unique_size", lambda m, x: m.unique(x, return_index=True, return_inverse=True,
                                          return_counts=True, size=6),
     lambda x: _ref_unique_all(x, 6), ["U"], True, ()),
    ("unique_size_cut", lambda m, x: m.unique(x, return_counts=True, size=2),
     lambda x: tuple(_ref_unique_all(x, 2)[i] for i in (0, 3)), ["U"], True, ()),
    ("unique_size_float", lambda m, x: m.unique(x * 2, size=6, fill_value=-9.0),
     lambda x: pad(np.unique(x * 2), 6, -9.0), ["UD"], False, (0,)),
    ("unique_values", lambda m, x: m.unique_values(x, size=6, fill_value=0),
     lambda x: pad(np.unique(x), 6, 0), ["U"], True, ()),
    ("unique_counts", lambda m, x: tuple(m.unique_counts(x, size=5)),
     lambda x: tuple(_ref_unique_all(x, 5)[i] for i in (0, 3)), ["U"], True, ()),
    ("unique_inverse", lambda m, x: tuple(m.unique_inverse(x.reshape(2, 3), size=5)),
     lambda x: (_ref_unique_all(x, 5)[0], _ref_unique_all(x, 5)[2].reshape(2, 3)), ["U"],
     True, ()),
    ("unique_all", lambda m, x: tuple(m.unique_all(x, size=5)),
     lambda x: _ref_unique_all(x, 5), ["U"], True, ()),
    ("bincount_length", lambda m, x: m.bincount(x, length=8),
     lambda x: np.bincount(x, minlength=8), ["U"], True, ()),
    ("bincount_weights", lambda m, x, w: m.bincount(x, w, length=6),
     lambda x, w: np.bincount(x, w, minlength=8)[:6], ["U", "W"], True, (1,)),
    ("isin", lambda m, x, t: m.isin(x, t), None, ["U", "U2"], True, ()),
    ("isin_invert", lambda m, x, t: m.isin(x.reshape(2, 3), t, invert=True), None,
     ["U", "U2"], True, ()),
    ("compress_size", lambda m, c, x: m.compress(c[:3], x, axis=1, size=3, fill_value=-1.0),
     lambda c, x: np.concatenate([np.compress(c[:3], x, axis=1),
                                  np.full((3, 1), -1.0)], axis=1), ["C", "F"], True, (1,)),
    ("extract_size", lambda m, c, x: m.extract(c, x[0], size=4),
     lambda c, x: pad(np.extract(c, x[0]), 4, 0.0), ["C", "F"], True, (1,)),
    ("union1d_size", lambda m, a, b: m.union1d(a, b, size=9),
     lambda a, b: pad(np.union1d(a, b), 9, 1), ["U", "U2"], True, ()),
    ("setdiff1d_size", lambda m, a, b: m.setdiff1d(a, b, size=4),
     lambda a, b: pad(np.setdiff1d(a, b), 4, 0), ["U", "U2"], True, ()),
    ("setxor1d_size", lambda m, a, b: m.setxor1d(a, b, size=6, fill_value=-1),
     lambda a, b: pad(np.setxor1d(a, b), 6, -1), ["U", "U2"], True, ()),
    ("intersect1d_size", lambda m, a, b: m.intersect1d(a, b, return_indices=True, size=4),
     lambda a, b: _ref_intersect(a, b, 4), ["U", "U2"], True, ()),
    # --- rearranging --------------------------------------------------------------------------
    ("delete", lambda m, x: m.delete(x, np.array([0, 2]), axis=1), None, ["F"], True, (0,)),
    ("delete_slice", lambda m, x: m.delete(x, slice(1, None, 2)), None, ["F"], True, (0,)),
    ("insert", lambda m, x, v: m.insert(x, 1, v[:3], axis=1), None, ["F", "V"], True, (0, 1)),
    ("insert_flat", lambda m, x, v: m.insert(x, np.array([0, 5, 5]), v[:3]), None, ["F", "V"], True,
     (0, 1)),
    ("resize", lambda m, x: m.resize(x, (5, 3)), None, ["F"], True, (0,)),
    ("fill_diagonal", lambda m, x, v: m.fill_diagonal(x, v[:2], inplace=False), None,
     ["SQ", "V"], True, (0, 1)),
    ("fill_diagonal_wrap", lambda m, x: m.fill_diagonal(m.concatenate([x, x]), -1.0,
                                                        wrap=True, inplace=False),
     lambda x: _np_fill_diagonal(np.concatenate([x, x]), -1.0, wrap=True), ["SQ"], True,
     (0,)),
    ("diagflat", lambda m, x: m.diagflat(x[:2, :2], k=1), None, ["F"], True, (0,)),
    ("block", lambda m, x, y: m.block([[x, y[:, :1]], [m.ones((1, 5))]]), None, ["F", "G"],
     True, (0, 1)),
    ("choose", lambda m, k, x, y: m.choose(k, [x[0], y[0], x[1]], mode="clip"), None,
     ["K", "F", "G"], True, (1, 2)),
    ("choose_wrap", lambda m, k, x: m.choose(k + 2, [x[0], x[1], x[2]], mode="wrap"), None,
     ["K", "F"], True, (1,)),
    ("piecewise", lambda m, x: m.piecewise(x, [x < -1, x > 1], [lambda v: v ** 2, 3.0,
                                                                lambda v: m.sin(v)]),
     None, ["F"], True, (0,)),
    # --- math -------------------------------------------------------------------------------
    ("ldexp", lambda m, x, e: m.ldexp(x, e), None, ["F", "EX"], True, (0,)),
    ("ldexp_extreme", lambda m, x: m.ldexp(x, np.array([3, -1080, 1100, -1074, 0, 5, -3, 1,
                                                        -10, 2, 1])),
     None, ["FP"], False, ()),
    ("frexp", lambda m, x: m.frexp(x), None, ["FP"], True, ()),
    ("frexp32", lambda m, x: m.frexp(x), None, ["FP32"], True, ()),
    ("frexp_grad", lambda m, x: m.frexp(x)[0], None, ["F"], False, (0,)),
    ("modf", lambda m, x: m.modf(x * 2), None, ["F"], True, (0,)),
    ("float_power", lambda m, x, y: m.float_power(x, y), None, ["P", "G"], True, (0, 1)),
    ("nextafter", lambda m, x: (m.nextafter(x, np.inf), m.nextafter(x, -np.inf),
                                m.nextafter(x, 0.0)), None, ["FP"], True, ()),
    ("nextafter32", lambda m, x: (m.nextafter(x, np.float32(np.inf)),
                                  m.nextafter(x, np.float32(0))), None, ["FP32"], True, ()),
    ("spacing", lambda m, x: m.spacing(x[:-2]), None, ["FP"], True, ()),
    ("gcd_lcm", lambda m, a, b: (m.gcd(a * 6, b * 4), m.lcm(a, b + 1)), None, ["E", "E"],
     True, ()),
    ("i0", lambda m, x: m.i0(x), None, ["F"], True, (0,)),
    ("trapezoid", lambda m, y, x: m.trapezoid(y, x[:4], axis=1), None, ["F", "V"], True,
     (0, 1)),
    ("trapezoid_dx", lambda m, y: m.trapezoid(y, dx=0.5, axis=0), None, ["F"], True, (0,)),
    ("ediff1d", lambda m, x: m.ediff1d(x, to_begin=-1.0, to_end=np.array([7.0, 8.0])), None, ["F"],
     True, (0,)),
    ("unwrap", lambda m, p: m.unwrap(p), None, ["PH"], True, (0,)),
    ("sort_complex", lambda m, z: m.sort_complex(z), None, ["CPLX"], True, ()),
    ("packbits", lambda m, b: (m.packbits(b, axis=1), m.packbits(b, bitorder="little")),
     None, ["BITS"], True, ()),
    ("unpackbits", lambda m, b: (m.unpackbits(b, axis=1), m.unpackbits(b, count=-5,
                                                                        bitorder="little")),
     None, ["BYTES"], True, ()),
    ("histogram2d", lambda m, x, y: m.histogram2d(x, y, bins=(3, 4),
                                                  range=[(-1, 1), (-1, 1)]),
     None, ["PX", "PY"], True, ()),
    ("histogramdd_w", lambda m, x, y, w: m.histogramdd(m.stack([x, y], 1), bins=3,
                                                       range=[(-1, 1), (-1, 1)],
                                                       weights=w, density=True)[0],
     None, ["PX", "PY", "PX"], True, (2,)),
    ("histogram_bin_edges", lambda m, x: m.histogram_bin_edges(x, 4, range=(-1.0, 2.0)),
     None, ["PX"], True, ()),
    # --- polynomials and windows ---------------------------------------------------------------
    ("polyadd_sub", lambda m, a, b: (m.polyadd(a, b), m.polysub(b, a)), None,
     ["POLY", "POLY2"], True, (0, 1)),
    ("polymul", lambda m, a, b: m.polymul(a, b), None, ["POLY", "POLY2"], True, (0, 1)),
    ("polydiv", lambda m, a, b: m.polydiv(a, b)[0], None, ["POLY", "POLY2"], True, (0, 1)),
    ("polyder", lambda m, a: m.polyder(a, 2), None, ["POLY"], True, (0,)),
    ("polyint", lambda m, a: m.polyint(a, 2, k=np.array([1.0, -1.0])), None, ["POLY"], True, (0,)),
    ("polyfit", lambda m, x, y: m.polyfit(x, y, 2), None, ["PX", "PY"], True, (1,)),
    ("poly", lambda m, r: m.poly(r), None, ["ROOTS"], True, (0,)),
    ("windows", lambda m: (m.bartlett(5), m.blackman(6), m.hamming(5), m.hanning(6),
                           m.hamming(1)), None, [], False, ()),
    ("kaiser", lambda m, b: m.kaiser(7, b[0] + 3.0), None, ["V"], False, (0,)),
    # --- functional -----------------------------------------------------------------------
    ("vectorize", lambda m, x, y: m.vectorize(lambda a, b: a * b + 1.0)(x, y[0]), None,
     ["F", "G"], True, (0, 1)),
    ("vectorize_signature",
     lambda m, x, v: m.vectorize(lambda a, b: a @ b, signature="(m,n),(n)->(m)")(
         x.reshape(3, 2, 2), v[:2]), None, ["F", "V"], True, (0, 1)),
    ("apply_along_axis", lambda m, x: m.apply_along_axis(
        lambda r: m.stack([r.sum(), (r * r).max()]), 0, x), None, ["F"], True, (0,)),
    ("apply_over_axes", lambda m, x: m.apply_over_axes(m.sum, x, [0, 1]), None, ["F"], True,
     (0,)),
    ("fromfunction", lambda m: m.fromfunction(lambda i, j: i * 10 + j, (2, 3)), None, [],
     False, ()),
]

IDS = [c[0] for c in CASES]


def _leaves(x):
    if isinstance(x, (tuple, list)):
        return [y for e in x for y in _leaves(e)]
    return [x]


def _close(got, want, what, dtype=True):
    got, want = _leaves(got), _leaves(want)
    assert len(got) == len(want), f"{what}: {len(got)} outputs, expected {len(want)}"
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, f"{what}: shape {g.shape}, expected {w.shape}\n{g}\n{w}"
        if dtype:
            assert g.dtype == w.dtype, f"{what}: dtype {g.dtype}, expected {w.dtype}"
        tol = 2e-6 if g.dtype in (np.float32, np.complex64) else 1e-12
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol, equal_nan=True, err_msg=what)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_eager_matches_numpy(case):
    name, fn, ref, args, _, _ = case
    vals = [X[a] for a in args]
    with np.errstate(all="ignore"):          # NumPy warns on the deliberate overflows
        want = ref(*vals) if ref is not None else fn(NP, *vals)
    _close(fn(tnp, *vals), want, f"tnp {name}")


# JAX keeps the weights' dtype in bincount and gives integer counts from histogram2d
# (NumPy, and tnp: float64); the values agree
_JAX_DTYPE_DIFFERS = {"bincount_weights", "histogram2d"}
# not comparable with JAX: it has no wrap=True; XLA on CPU flushes subnormal inputs to zero
# (frexp(1e-310) is (0.5, -1029) in NumPy and tnp); it clamps ldexp's intermediate power
_JAX_SKIP = {"fill_diagonal_wrap", "frexp", "frexp32", "ldexp_extreme"}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_jax(case, jnp):
    name, fn, _, args, _, _ = case
    if name in _JAX_SKIP:
        pytest.skip("differs from JAX by design (see _JAX_SKIP)")
    vals = [X[a] for a in args]
    _close(fn(tnp, *vals), fn(jnp, *vals), f"tnp {name} vs jnp",
           dtype=name not in _JAX_DTYPE_DIFFERS)


# compiling is the slow part of this file: `jit` runs one case per code path that tracing
# could break (the size= compactions, scatters, while_loop, gathers by codes, vmap inside jit);
# the aliases and the other cases are the same functions on the same primitives
JIT_NAMES = {"nonzero_size", "argwhere_size", "unique_size", "bincount_weights",
             "compress_size", "intersect1d_size", "setxor1d_size", "insert_flat",
             "fill_diagonal", "choose", "piecewise", "frexp", "nextafter", "gcd_lcm",
             "unpackbits", "histogramdd_w", "polydiv", "vectorize_signature"}
_JIT = [c for c in CASES if c[0] in JIT_NAMES]
assert len(_JIT) == len(JIT_NAMES)


@pytest.mark.parametrize("case", _JIT, ids=[c[0] for c in _JIT])
def test_jit_matches_eager(case):
    name, fn, _, args, _, _ = case
    vals = [X[a] for a in args]
    _close(T.jit(lambda *a: fn(tnp, *a))(*vals), fn(tnp, *vals), f"jit {name}")


_VMAP = [c for c in CASES if c[4] and c[3]]


@pytest.mark.parametrize("case", _VMAP, ids=[c[0] for c in _VMAP])
def test_vmap_matches_loop(case):
    name, fn, _, args, _, _ = case
    vals = [X[a] for a in args]
    first = vals[0]
    # two different batch members: the data reversed along its first axis
    batch = np.stack([first, first[::-1]])
    got = T.vmap(lambda b: fn(tnp, b, *vals[1:]))(batch)
    rows = [fn(tnp, b, *vals[1:]) for b in batch]
    want = [np.stack(parts) for parts in zip(*[_leaves(r) for r in rows])]
    _close(_leaves(got), want, f"vmap {name}")


_GRAD = [c for c in CASES if c[5]]


@pytest.mark.parametrize("case", _GRAD, ids=[c[0] for c in _GRAD])
def test_grad_matches_finite_differences(case):
    name, fn, _, args, _, argnums = case
    vals = [X[a] for a in args]

    def scalar(*diff):
        full = list(vals)
        for i, v in zip(argnums, diff):
            full[i] = v
        total = 0.0
        for o in _leaves(fn(tnp, *full)):
            if np.dtype(o.dtype).kind in "fc":     # weighted, so every element matters
                w = np.linspace(0.5, 1.5, int(np.prod(tnp.shape(o)))).reshape(tnp.shape(o))
                total = total + tnp.sum(tnp.real(o) * w)
        return total

    check_grads(scalar, [vals[i] for i in argnums], order=1, modes=("rev",))


# --- without size=: eager only, as JAX ------------------------------------------------------

@pytest.mark.parametrize("fn", [
    lambda x: tnp.nonzero(x), lambda x: tnp.where(x), lambda x: tnp.argwhere(x),
    lambda x: tnp.flatnonzero(x), lambda x: tnp.unique(x), lambda x: tnp.unique_counts(x),
    lambda x: tnp.bincount(x), lambda x: tnp.union1d(x, x), lambda x: tnp.setdiff1d(x, x),
    lambda x: tnp.intersect1d(x, x), lambda x: tnp.extract(x, x), lambda x: tnp.trim_zeros(x),
    lambda x: tnp.choose(x % 2, [x, x]), lambda x: tnp.delete(x, x[:1]),
], ids=["nonzero", "where", "argwhere", "flatnonzero", "unique", "unique_counts", "bincount",
        "union1d", "setdiff1d", "intersect1d", "extract", "trim_zeros", "choose_raise",
        "delete_traced"])
def test_data_dependent_shapes_need_size_under_jit(fn):
    x = X["U"]
    fn(x)                                            # eager: fine
    with pytest.raises(T.ConcretizationTypeError):
        T.jit(fn)(x)


def test_eager_forms_without_size_match_numpy():
    u, u2, i = X["U"], X["U2"], X["I"]
    _close(tnp.nonzero(i), np.nonzero(i), "nonzero")
    _close(tnp.argwhere(i), np.argwhere(i), "argwhere")
    _close(tnp.argwhere(np.array(3)), np.argwhere(np.array(3)), "argwhere 0-d")
    _close(tnp.unique_counts(u), tuple(np.unique_counts(u)), "unique_counts")
    _close(tnp.unique_values(X["UF"]), np.sort(np.unique_values(X["UF"])), "unique_values nan")
    _close(tnp.bincount(u, minlength=10), np.bincount(u, minlength=10), "bincount")
    _close(tnp.bincount(u, X["W"]), np.bincount(u, X["W"]), "bincount weights")
    for f in ("union1d", "setdiff1d", "setxor1d", "intersect1d"):
        _close(getattr(tnp, f)(u, u2), getattr(np, f)(u, u2), f)
    _close(tnp.setdiff1d(u2, u, assume_unique=True, size=3),
           pad(np.setdiff1d(u2, u, assume_unique=True), 3, 0), "setdiff1d assume_unique")
    _close(tnp.compress(X["C"], X["F"], axis=1), np.compress(X["C"], X["F"], axis=1),
           "compress")
    _close(tnp.trim_zeros(np.array([0, 0, 1, 0, 2, 0])), np.array([1, 0, 2]), "trim_zeros")
    _close(tnp.trim_zeros(np.array([0, 0, 1, 0, 2, 0]), "b"), np.array([0, 0, 1, 0, 2]),
           "trim_zeros b")
    _close(tnp.roots(np.array([0.0, 1.0, -3.0, 2.0, 0.0])), np.array([2.0, 1.0, 0.0],
                                                                      np.complex128), "roots")
    _close(tnp.polydiv(X["POLY"], X["POLY2"])[1],
           np.concatenate([[0.0, 0.0, 0.0], np.polydiv(X["POLY"], X["POLY2"])[1]]),
           "polydiv remainder keeps u's length (as JAX)")


def test_bincount_follows_jax_on_out_of_range_values():
    # negative values count in bin 0 and values >= length are dropped, as JAX
    _close(tnp.bincount(np.array([-1, 0, 2, 7]), length=4), np.array([2, 0, 1, 0]), "bincount")


def test_delete_traced_indices_with_assume_unique():
    f = T.jit(lambda x, o: tnp.delete(x, o, assume_unique_indices=True))
    _close(f(np.arange(6.0), np.array([4, 1])), np.array([0.0, 2.0, 3.0, 5.0]), "delete")


def test_errors_are_clear():
    with pytest.raises(ValueError, match="inplace"):
        tnp.fill_diagonal(np.zeros((2, 2)), 1.0, inplace=True)
    with pytest.raises(ValueError, match="invalid entry"):
        tnp.choose(np.array([0, 3]), [np.zeros(2), np.ones(2)])
    with pytest.raises(ValueError, match="fill_value"):
        tnp.nonzero(X["I"], size=2, fill_value=(1, 2, 3))
    with pytest.raises(ValueError, match="depths are mismatched"):
        tnp.block([[np.ones(2)], np.ones(2)])
    with pytest.raises(TypeError, match="bincount: x must be an integer"):
        tnp.bincount(np.ones(3))
    with pytest.raises(ValueError, match="signature"):
        tnp.vectorize(lambda a: a, signature="(n->")
    with pytest.raises(ValueError, match="matrix_transpose"):
        tnp.matrix_transpose(np.ones(3))


# --- names that are NumPy's own objects or static answers ----------------------------------

def test_dtype_aliases_and_classes():
    pairs = {"bool": np.bool_, "double": np.float64, "single": np.float32, "float_": np.float64,
             "int_": np.int64, "uint": np.uint64, "cdouble": np.complex128,
             "csingle": np.complex64, "complex_": np.complex128}
    for name, want in pairs.items():
        assert np.dtype(getattr(tnp, name)) == np.dtype(want), name
    assert tnp.bool is tnp.bool_ and tnp.double is tnp.float64
    assert T.jit(lambda x: tnp.single(x) * 2)(np.float64(1.5)).dtype == np.float32
    for name in ("generic", "number", "signedinteger", "unsignedinteger", "complexfloating",
                 "character", "flexible", "iterable"):
        assert getattr(tnp, name) is getattr(np, name), name
    assert tnp.ComplexWarning is np.exceptions.ComplexWarning and tnp.object_ is np.object_
    assert tnp.fromstring is np.fromstring and tnp.fromfile is np.fromfile
    assert tnp.savez is np.savez
    assert tnp.issubdtype(tnp.int32, tnp.signedinteger)
    assert tnp.acos is tnp.arccos and tnp.pow is tnp.power and tnp.atan2 is tnp.arctan2
    assert tnp.isrealobj(np.ones(2)) and not tnp.isrealobj(np.ones(2, complex))
    assert tnp.iterable([1]) and not tnp.iterable(1)


def test_isdtype_matches_numpy():
    kinds = ["bool", "signed integer", "unsigned integer", "integral", "real floating",
             "complex floating", "numeric", np.float32, ("bool", "real floating")]
    for dt in (np.bool_, np.int8, np.int64, np.uint16, np.float32, np.float64, np.complex64):
        for k in kinds:
            assert tnp.isdtype(dt, k) == np.isdtype(np.dtype(dt), k), (dt, k)
    with pytest.raises(ValueError, match="kind"):
        tnp.isdtype(np.float32, "floating point")


def test_index_helpers_and_io(tmp_path):
    assert np.array_equal(tnp.mgrid[0:2, 0:3], np.mgrid[0:2, 0:3])
    assert all(np.array_equal(a, b) for a, b in zip(tnp.ogrid[0:2, 0:3], np.ogrid[0:2, 0:3]))
    assert tnp.s_[1:3, ::2] == (slice(1, 3), slice(None, None, 2))
    assert tnp.index_exp[1] == (1,)
    x = X["F"]
    assert tnp.array_repr(x) == np.array_repr(x) and tnp.array_str(x) == np.array_str(x)
    path, want = tnp.einsum_path("ij,jk,kl->il", x, x.T, x)
    assert path == np.einsum_path("ij,jk,kl->il", x, x.T, x)[0]
    f = tmp_path / "a.npy"
    tnp.save(f, x)
    assert np.array_equal(tnp.load(f), x)
    assert np.array_equal(tnp.frombuffer(b"\x01\x02", np.uint8), [1, 2])
    assert np.array_equal(tnp.fromiter(range(3), float), [0.0, 1.0, 2.0])
    assert tnp.diag_indices_from(np.zeros((3, 3)))[0].tolist() == [0, 1, 2]


def test_vectorize_excluded_and_jit_inside():
    f = tnp.vectorize(lambda a, n: a ** n, excluded={1})
    _close(f(np.arange(3.0), 2), np.arange(3.0) ** 2, "vectorize excluded")
    g = T.jit(tnp.vectorize(lambda a, b: tnp.where(a > b, a, b)))
    _close(g(X["F"], X["G"][0]), np.maximum(X["F"], X["G"][0]), "vectorize jit")


@pytest.mark.parametrize("name,nargs", [("ldexp", 2), ("frexp", 1), ("modf", 1),
                                        ("nextafter", 2), ("spacing", 1), ("float_power", 2),
                                        ("sort_complex", 1), ("i0", 1), ("gcd", 2),
                                        ("bitwise_count", 1)])
def test_result_dtypes_follow_numpy(name, nargs):
    # NumPy's loop selection: int8 -> float16 for ldexp/frexp/modf/spacing, ...
    dtypes = (np.int8, np.uint8, np.int16, np.int32, np.int64, np.bool_, np.float16,
              np.float32, np.float64)
    for d in dtypes:
        args = (np.ones(2, d), np.array([1, 2])) if name == "ldexp" else (np.ones(2, d),) * nargs
        try:
            with np.errstate(all="ignore"):
                want = getattr(np, name)(*args)
        except TypeError:
            continue                          # NumPy has no loop for this dtype
        got = getattr(tnp, name)(*args)
        want, got = _leaves(want), _leaves(got)
        assert [np.asarray(g).dtype for g in got] == [w.dtype for w in want], (name, d)


def test_grad_flows_through_the_eager_forms_without_size():
    # under grad the values are concrete, so the shapes are known: the results stay connected
    # to the input (each unique value's derivative goes to its first occurrence), as in JAX
    x = np.array([3.0, 1.0, 3.0, 2.0])
    w3 = np.array([1.0, 2.0, 3.0])
    cases = [
        ("unique", lambda v: tnp.unique(v) * w3, [3.0, 1.0, 0.0, 2.0]),
        ("setdiff1d", lambda v: tnp.setdiff1d(v, np.array([2.0])) * w3[:2], [2.0, 1.0, 0, 0]),
        ("intersect1d", lambda v: tnp.intersect1d(v, np.array([2.0, 3.0])) * w3[:2],
         [2.0, 0, 0, 1.0]),
        ("setxor1d", lambda v: tnp.setxor1d(v, np.array([2.0, 9.0])) * w3, [2.0, 1.0, 0, 0]),
        ("compress", lambda v: tnp.compress(v > 1.5, v) * w3, [1.0, 0, 2.0, 3.0]),
    ]
    for name, f, want in cases:
        _close(T.grad(lambda v: tnp.sum(f(v)))(x), np.array(want, float), name)
