"""Differential tests: every function transforms.numpy shares with jax.numpy, on seeded random
shapes and dtypes (float32 / float64 / int32 / bool where valid), eagerly, plus a jitted sample.

Values are compared with JAX (x64 on). Result dtypes are compared with NumPy where NumPy has the
function, because tnp follows NumPy 2's dtype rules by design (README: "Where tnp follows NumPy
and where JAX" — e.g. int32 meeting float32 gives float64, float64 defaults); with JAX only where
NumPy lacks the function. A failure names the function, its inputs and both results."""
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
jax.config.update("jax_enable_x64", True)

import zlib  # noqa: E402

import numpy as np  # noqa: E402

import transforms as T  # noqa: E402
import transforms.numpy as tnp  # noqa: E402

F32, F64, I32, B = np.float32, np.float64, np.int32, np.bool_
FLOATS, NUMERIC, ALL = (F32, F64), (F32, F64, I32), (F32, F64, I32, B)
SHAPES = [(), (2, 3, 4)]


def _gen(rng, shape, dtype, dom=(-3.0, 3.0)):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind == "i":
        lo, hi = int(np.floor(dom[0])), int(np.ceil(dom[1]))
        return rng.integers(lo, hi + 1, size=shape).astype(dtype)
    return np.asarray(rng.uniform(dom[0], dom[1], size=shape), dtype)


def _tol(*arrays):
    kinds = [np.asarray(a).dtype for a in jax.tree.leaves(arrays)]
    if any(k == np.float32 or k == np.complex64 for k in kinds):
        return 2e-5, 2e-6
    return 1e-10, 1e-12


def _compare(name, args, ours, theirs, np_ref=None, tol=None):
    lo, lt = jax.tree.leaves(ours), jax.tree.leaves(theirs)
    assert len(lo) == len(lt), f"tnp.{name}{_fmt(args)}: {len(lo)} outputs vs jnp {len(lt)}"
    refs = jax.tree.leaves(np_ref) if np_ref is not None else [None] * len(lo)
    for a, b, r in zip(lo, lt, refs):
        a, b = np.asarray(a), np.asarray(jax.device_get(b))
        assert a.shape == b.shape, (f"tnp.{name}{_fmt(args)}: shape {a.shape} vs jnp {b.shape}"
                                    f"\nours={a!r}\njnp ={b!r}")
        want_dt = np.asarray(r).dtype if r is not None else b.dtype
        assert a.dtype == want_dt, (f"tnp.{name}{_fmt(args)}: dtype {a.dtype}, "
                                    f"{'numpy' if r is not None else 'jnp'} gives {want_dt}")
        rtol, atol = tol or _tol(*args, a)
        if r is not None and b.dtype != want_dt:
            # JAX computes in another dtype by design (README table: int32 / int32, the mean
            # of int32 are float32 in JAX, float64 here as in NumPy): values against NumPy
            b = np.asarray(r)
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            ok = np.allclose(a.astype(np.result_type(a, np.float64)),
                             b.astype(np.result_type(b, np.float64)), rtol=rtol, atol=atol,
                             equal_nan=True)
        else:
            ok = np.array_equal(a, b.astype(a.dtype) if a.dtype != b.dtype else b)
        if not ok:
            raise AssertionError(f"tnp.{name}{_fmt(args)}:\nours={a!r}\njnp ={b!r}")


def _fmt(args):
    return "(" + ", ".join(f"{np.asarray(a).dtype}{np.asarray(a).shape}={np.asarray(a)!r}"
                           if isinstance(a, np.ndarray) or np.isscalar(a) else repr(a)
                           for a in args) + ")"


def _run(name, args, kwargs=None, np_name=None, tol=None, ours_fn=None, jax_fn=None):
    kwargs = kwargs or {}
    ours = (ours_fn or getattr(tnp, name))(*args, **kwargs)
    theirs = (jax_fn or getattr(jnp, name))(*args, **kwargs)
    np_fn = getattr(np, np_name or name, None) if np_name is not False else None
    ref = None
    if np_fn is not None and callable(np_fn):
        try:
            with np.errstate(all="ignore"):
                ref = np_fn(*args, **kwargs)
        except Exception:   # noqa: BLE001 - numpy lacks this signature: dtype from jnp
            ref = None
    _compare(name, args, ours, theirs, ref, tol)


# --- elementwise -------------------------------------------------------------------------------

POS, UNIT, GE1 = (0.1, 3.0), (-0.9, 0.9), (1.1, 3.0)
UNARY = {  # name: (dtypes, domain)
    "abs": (ALL[:3], None), "absolute": (ALL[:3], None), "fabs": (FLOATS, None),
    "negative": (NUMERIC, None), "positive": (NUMERIC, None), "sign": (NUMERIC, None),
    "exp": (FLOATS, None), "exp2": (FLOATS, None), "expm1": (FLOATS, None),
    "cbrt": (FLOATS, None),
    "log": (FLOATS, POS), "log1p": (FLOATS, POS), "log2": (FLOATS, POS), "log10": (FLOATS, POS),
    "sqrt": (FLOATS, POS), "square": (NUMERIC, None), "reciprocal": (FLOATS, POS),
    "sin": (FLOATS, None), "cos": (FLOATS, None), "tan": (FLOATS, UNIT),
    "sinh": (FLOATS, None), "cosh": (FLOATS, None), "tanh": (FLOATS, None),
    "arcsin": (FLOATS, UNIT), "arccos": (FLOATS, UNIT), "arctan": (FLOATS, None),
    "arcsinh": (FLOATS, None), "arccosh": (FLOATS, GE1), "arctanh": (FLOATS, UNIT),
    "floor": (FLOATS, None), "ceil": (FLOATS, None), "trunc": (FLOATS, None),
    "rint": (FLOATS, None), "round": (FLOATS, None), "around": (FLOATS, None),
    "isnan": (ALL, None), "isfinite": (ALL, None), "isinf": (ALL, None),
    "isneginf": (FLOATS, None), "isposinf": (FLOATS, None), "signbit": (FLOATS, None),
    "deg2rad": (FLOATS, None), "rad2deg": (FLOATS, None), "degrees": (FLOATS, None),
    "radians": (FLOATS, None), "sinc": (FLOATS, None), "logical_not": (ALL, None),
    "conj": (NUMERIC, None), "conjugate": (NUMERIC, None), "real": (NUMERIC, None),
    "imag": (NUMERIC, None), "bitwise_not": ((I32, B), None), "invert": ((I32, B), None),
    "iscomplex": (NUMERIC, None), "isreal": (NUMERIC, None), "nan_to_num": (FLOATS, None),
}

BINARY = {
    "add": ALL, "subtract": NUMERIC, "multiply": ALL, "divide": NUMERIC,
    "true_divide": NUMERIC, "floor_divide": FLOATS, "power": FLOATS, "maximum": ALL,
    "minimum": ALL, "fmax": NUMERIC, "fmin": NUMERIC, "remainder": FLOATS, "mod": FLOATS,
    "fmod": FLOATS, "arctan2": FLOATS, "hypot": FLOATS, "logaddexp": FLOATS,
    "logaddexp2": FLOATS, "copysign": FLOATS, "heaviside": FLOATS, "equal": ALL,
    "not_equal": ALL, "less": NUMERIC, "less_equal": NUMERIC, "greater": NUMERIC,
    "greater_equal": NUMERIC, "logical_and": ALL, "logical_or": ALL, "logical_xor": ALL,
    "bitwise_and": (I32, B), "bitwise_or": (I32, B), "bitwise_xor": (I32, B),
    "left_shift": (I32,), "right_shift": (I32,), "divmod": FLOATS, "isclose": FLOATS,
}
BIN_SHAPES = [((4,), ()), ((2, 1, 4), (3, 1))]


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name):
    dtypes, dom = UNARY[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for dt in dtypes:
        for shape in SHAPES:
            x = _gen(rng, shape, dt, dom or (-3.0, 3.0))
            _run(name, (x,))


def _bin_dom(name):
    if name == "power":
        return (0.1, 2.0)
    if name in ("floor_divide", "remainder", "mod", "fmod", "divide", "true_divide", "divmod"):
        return (0.5, 4.0)
    return (-3.0, 3.0)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary(name):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    dom = _bin_dom(name)
    for dt in BINARY[name]:
        for sa, sb in BIN_SHAPES:
            x = _gen(rng, sa, dt, dom)
            y = _gen(rng, sb, dt, dom if name != "left_shift" else (0, 5))
            if name in ("divide", "true_divide", "remainder", "mod", "fmod", "floor_divide",
                        "divmod") and np.dtype(dt).kind == "f":
                x = x * np.where(rng.random(sa) < 0.5, -1, 1).astype(dt)
            if name in ("left_shift", "right_shift"):
                y = np.abs(y)
            _run(name, (x, y))
    # mixed dtypes: the result dtype follows NumPy (int32 + float32 -> float64; JAX: float32)
    if np.float32 in BINARY[name] and np.int32 in BINARY[name]:
        x, y = _gen(rng, (3, 4), F32, dom), _gen(rng, (4,), I32, (1, 4))
        _run(name, (x, y))
    if np.float32 in BINARY[name]:     # a weak Python scalar keeps float32 (NEP 50, as JAX)
        _run(name, (_gen(rng, (3,), F32, dom), 2.0))


# --- reductions ----------------------------------------------------------------------------------

REDUCTIONS = {
    "sum": ALL, "prod": NUMERIC, "mean": NUMERIC, "max": NUMERIC, "min": NUMERIC,
    "amax": NUMERIC, "amin": NUMERIC, "all": ALL, "any": ALL, "argmax": NUMERIC,
    "argmin": NUMERIC, "var": FLOATS, "std": FLOATS, "ptp": NUMERIC, "count_nonzero": ALL,
    "median": FLOATS, "average": FLOATS, "nansum": FLOATS, "nanprod": FLOATS,
    "nanmean": FLOATS, "nanmax": FLOATS, "nanmin": FLOATS, "nanvar": FLOATS,
    "nanstd": FLOATS, "nanmedian": FLOATS, "nanargmax": FLOATS, "nanargmin": FLOATS,
    "cumsum": NUMERIC, "cumprod": FLOATS, "nancumsum": FLOATS, "nancumprod": FLOATS,
    "cumulative_sum": NUMERIC, "cumulative_prod": FLOATS,
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction(name):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for dt in REDUCTIONS[name]:
        for shape in [(5,), (2, 3, 4)]:
            x = _gen(rng, shape, dt, (-2.0, 2.0))
            if name.startswith("nan") and np.dtype(dt).kind == "f" and x.size > 2:
                x = x.copy()
                x.flat[1] = np.nan
            axes = [None, 1] if len(shape) > 1 else [None]
            if name.startswith("cumulative"):
                axes = [0, -1] if len(shape) > 1 else [None, 0]
            for ax in axes:
                # int sums/products: NumPy widens int32 to int64 like JAX with x64
                _run(name, (x,), {"axis": ax})


# --- everything else: one explicit case generator per function ---------------------------------

def _r(rng, shape=(3, 4), dt=F64, dom=(-2.0, 2.0)):
    return _gen(rng, shape, dt, dom)


OTHER = {  # name: lambda rng -> list of (args, kwargs)
    "reshape": lambda g: [((_r(g), (4, 3)), {}), ((_r(g, (2, 3, 4), I32), (6, -1)), {})],
    "transpose": lambda g: [((_r(g, (2, 3, 4)),), {}), ((_r(g, (2, 3, 4)), (1, 0, 2)), {})],
    "swapaxes": lambda g: [((_r(g, (2, 3, 4)), 0, 2), {})],
    "moveaxis": lambda g: [((_r(g, (2, 3, 4)), 0, -1), {})],
    "rollaxis": lambda g: [((_r(g, (2, 3, 4)), 2), {})],
    "expand_dims": lambda g: [((_r(g), 1), {}), ((_r(g), (0, 3)), {})],
    "squeeze": lambda g: [((_r(g, (1, 3, 1)),), {}), ((_r(g, (1, 3, 1)), 2), {})],
    "ravel": lambda g: [((_r(g, (2, 3, 4), F32),), {})],
    "flip": lambda g: [((_r(g),), {}), ((_r(g), 1), {})],
    "fliplr": lambda g: [((_r(g),), {})], "flipud": lambda g: [((_r(g),), {})],
    "rot90": lambda g: [((_r(g),), {}), ((_r(g), 3), {})],
    "roll": lambda g: [((_r(g), 2), {}), ((_r(g), -1, 1), {})],
    "tile": lambda g: [((_r(g, (2, 3)), (2, 1, 2)), {})],
    "repeat": lambda g: [((_r(g, (2, 3)), 2), {}), ((_r(g, (2, 3)), 3, 1), {})],
    "concatenate": lambda g: [(([_r(g), _r(g, (2, 4), F32)],), {}),
                              (([_r(g), _r(g, (3, 2))], 1), {})],
    "concat": lambda g: [(([_r(g), _r(g, (2, 4))],), {})],
    "stack": lambda g: [(([_r(g), _r(g)],), {}), (([_r(g), _r(g)], 2), {})],
    "hstack": lambda g: [(([_r(g), _r(g)],), {})], "vstack": lambda g: [(([_r(g), _r(g)],), {})],
    "dstack": lambda g: [(([_r(g), _r(g)],), {})],
    "column_stack": lambda g: [(([_r(g, (3,)), _r(g, (3, 2))],), {})],
    "append": lambda g: [((_r(g), _r(g)), {}), ((_r(g), _r(g), 0), {})],
    "split": lambda g: [((_r(g, (6, 2)), 3), {}), ((_r(g, (6, 2)), [1, 4]), {})],
    "array_split": lambda g: [((_r(g, (7, 2)), 3), {})],
    "hsplit": lambda g: [((_r(g, (2, 6)), 2), {})], "vsplit": lambda g: [((_r(g, (4, 2)), 2), {})],
    "dsplit": lambda g: [((_r(g, (2, 2, 4)), 2), {})],
    "broadcast_to": lambda g: [((_r(g, (3, 1)), (2, 3, 4)), {})],
    "broadcast_arrays": lambda g: [((_r(g, (3, 1)), _r(g, (4,))), {})],
    "atleast_1d": lambda g: [((_r(g, ()),), {})], "atleast_2d": lambda g: [((_r(g, (3,)),), {})],
    "atleast_3d": lambda g: [((_r(g, (3,)),), {})],
    "triu": lambda g: [((_r(g),), {}), ((_r(g), 1), {})],
    "tril": lambda g: [((_r(g),), {}), ((_r(g), -1), {})],
    "diag": lambda g: [((_r(g, (4,)),), {}), ((_r(g), 1), {})],
    "diagonal": lambda g: [((_r(g),), {}), ((_r(g, (2, 3, 3)), 0, 1, 2), {})],
    "trace": lambda g: [((_r(g),), {}), ((_r(g, (3, 3), I32),), {})],
    "pad": lambda g: [((_r(g), 1), {}), ((_r(g), ((1, 0), (0, 2))), {}),
                      ((_r(g), 1), {"constant_values": 3.0})],
    "sort": lambda g: [((_r(g),), {}), ((_r(g, (3, 4), I32), 0), {})],
    "argsort": lambda g: [((_r(g),), {"stable": True}), ((_r(g, (5,), I32),), {"stable": True})],
    "lexsort": lambda g: [(((_r(g, (6,), I32), _r(g, (6,), I32)),), {})],
    "clip": lambda g: [((_r(g), -0.5, 0.7), {}), ((_r(g, (3, 4), I32), 0, 1), {})],
    "where": lambda g: [((_r(g, (3, 4), B), _r(g), _r(g, (4,), F32)), {})],
    "select": lambda g: [(([_r(g, (4,), B), _r(g, (4,), B)], [_r(g, (4,)), _r(g, (4,))], 0.5),
                          {})],
    "take": lambda g: [((_r(g), np.array([0, 2, 1])), {"axis": 1}),
                       ((_r(g), np.array([[0, 5], [11, 3]])), {})],
    "take_along_axis": lambda g: [((_r(g), np.argsort(_r(g), axis=1)), {"axis": 1})],
    "searchsorted": lambda g: [((np.sort(_r(g, (6,))), _r(g, (4,))), {}),
                               ((np.sort(_r(g, (6,))), _r(g, (4,))), {"side": "right"})],
    "digitize": lambda g: [((_r(g, (5,)), np.array([-1.0, 0.0, 1.0])), {})],
    "unique": lambda g: [((_r(g, (8,), I32),), {})],
    "nonzero": lambda g: [((_r(g, (3, 4), I32),), {})],
    "matmul": lambda g: [((_r(g, (2, 3, 4)), _r(g, (4, 2))), {}),
                         ((_r(g, (3, 4), F32), _r(g, (4,), F32)), {})],
    "dot": lambda g: [((_r(g), _r(g, (4, 2))), {}), ((_r(g, (4,), I32), _r(g, (4,), I32)), {})],
    "vdot": lambda g: [((_r(g), _r(g)), {})],
    "inner": lambda g: [((_r(g), _r(g, (2, 4))), {})],
    "outer": lambda g: [((_r(g, (3,)), _r(g, (4,))), {})],
    "tensordot": lambda g: [((_r(g, (2, 3, 4)), _r(g, (4, 3))), {"axes": ([1, 2], [1, 0])})],
    "einsum": lambda g: [(("ij,jk->ik", _r(g), _r(g, (4, 2))), {}),
                         (("bij,bj->bi", _r(g, (2, 3, 4)), _r(g, (2, 4))), {}),
                         (("ii->i", _r(g, (3, 3))), {})],
    "kron": lambda g: [((_r(g, (2, 2)), _r(g, (2, 3))), {})],
    "cross": lambda g: [((_r(g, (4, 3)), _r(g, (4, 3))), {})],
    "matvec": lambda g: [((_r(g), _r(g, (4,))), {})],
    "vecmat": lambda g: [((_r(g, (3,)), _r(g)), {})],
    "vecdot": lambda g: [((_r(g), _r(g)), {})],
    "convolve": lambda g: [((_r(g, (6,)), _r(g, (3,))), {}),
                           ((_r(g, (6,)), _r(g, (3,))), {"mode": "same"})],
    "correlate": lambda g: [((_r(g, (6,)), _r(g, (3,))), {"mode": "full"})],
    "diff": lambda g: [((_r(g),), {}), ((_r(g), 2, 0), {})],
    "gradient": lambda g: [((_r(g, (6,)),), {})],
    "interp": lambda g: [((_r(g, (5,)), np.sort(_r(g, (6,))), _r(g, (6,))), {})],
    "polyval": lambda g: [((_r(g, (3,)), _r(g, (5,))), {})],
    "vander": lambda g: [((_r(g, (4,)),), {}), ((_r(g, (4,)), 3), {"increasing": True})],
    "cov": lambda g: [((_r(g),), {})], "corrcoef": lambda g: [((_r(g),), {})],
    "histogram": lambda g: [((_r(g, (20,)),), {"bins": 4, "range": (-2.0, 2.0)})],
    "percentile": lambda g: [((_r(g), 30.0), {}), ((_r(g), 75.0), {"axis": 1})],
    "quantile": lambda g: [((_r(g), 0.3), {}), ((_r(g), np.array([0.1, 0.9])), {"axis": 0})],
    "nanpercentile": lambda g: [((_r(g), 30.0), {})],
    "nanquantile": lambda g: [((_r(g), 0.3), {})],
    "allclose": lambda g: [((_r(g), _r(g)), {})], "array_equal": lambda g: [((_r(g), _r(g)), {})],
    "array_equiv": lambda g: [((_r(g, (4,), I32), _r(g, (3, 4), I32)), {})],
    "copy": lambda g: [((_r(g),), {})],
    "astype": lambda g: [((_r(g), F32), {}), ((_r(g), I32), {})],
    "asarray": lambda g: [(([1, 2.5],), {}), ((_r(g, (3,), I32),), {"dtype": F32})],
    "array": lambda g: [(([[1, 2], [3, 4]],), {}), (([1.0, 2.0],), {"dtype": F32})],
    "zeros_like": lambda g: [((_r(g, (3,), I32),), {})],
    "ones_like": lambda g: [((_r(g, (3,), F32),), {})],
    "full_like": lambda g: [((_r(g, (3,), F32), 2.5), {})],
    "empty_like": None,
    "ndim": lambda g: [((_r(g),), {})], "shape": lambda g: [((_r(g),), {})],
    "size": lambda g: [((_r(g),), {})],
    "isscalar": lambda g: [((3.0,), {})], "iscomplexobj": lambda g: [((_r(g),), {})],
    "place": None, "put": None,
    "put_along_axis": None,
    "ravel_multi_index": lambda g: [(((np.array([0, 1, 2]), np.array([3, 0, 1])), (3, 4)), {})],
    "unravel_index": lambda g: [((np.array([0, 5, 11]), (3, 4)), {})],
    # creation: NumPy's float64 default (JAX with x64 agrees)
    "zeros": lambda g: [(((2, 3),), {}), ((3,), {"dtype": I32})],
    "ones": lambda g: [(((2, 3),), {})], "full": lambda g: [(((2,), 1.5), {})],
    "empty": None,
    "arange": lambda g: [((5,), {}), ((1.0, 3.0, 0.5), {}), ((2, 9, 3), {})],
    "linspace": lambda g: [((0.0, 1.0, 7), {}), ((0.0, 1.0, 5), {"endpoint": False})],
    "logspace": lambda g: [((0.0, 2.0, 5), {})], "geomspace": lambda g: [((1.0, 100.0, 5), {})],
    "eye": lambda g: [((3,), {}), ((3, 4, 1), {})], "identity": lambda g: [((3,), {})],
    "tri": lambda g: [((3, 4, 1), {})],
    "indices": lambda g: [(((2, 3),), {})],
    "meshgrid": lambda g: [((_r(g, (3,)), _r(g, (2,))), {}),
                           ((_r(g, (3,)), _r(g, (2,))), {"indexing": "ij"})],
    "diag_indices": lambda g: [((3,), {})],
    "tril_indices": lambda g: [((4,), {}), ((3, 1, 4), {})],
    "triu_indices": lambda g: [((4,), {})],
    "tril_indices_from": lambda g: [((_r(g, (3, 3)),), {})],
    "triu_indices_from": lambda g: [((_r(g, (3, 3)),), {})],
    "mask_indices": None,
    "ix_": lambda g: [((np.array([0, 2]), np.array([1, 3])), {})],
}

# dtype and shape utilities: NumPy's rules by design (JAX: result_type(float32, int32) is
# float32), so compared with NumPy
NUMPY_ONLY = {
    "result_type": [(F32, I32), (F32, 2.0), (I32, B), (F64, F32)],
    "promote_types": [(F32, I32), (I32, B), (F32, F64)],
    "can_cast": [(F32, F64), (F64, F32), (I32, F64)],
    "issubdtype": [(F32, np.floating), (I32, np.floating)],
    "broadcast_shapes": [((3, 1), (4,)), ((2, 1, 4), (3, 1))],
}


@pytest.mark.parametrize("name", sorted(NUMPY_ONLY))
def test_dtype_utilities_follow_numpy(name):
    for args in NUMPY_ONLY[name]:
        ours, want = getattr(tnp, name)(*args), getattr(np, name)(*args)
        assert ours == want, f"tnp.{name}{args}: {ours!r}, numpy gives {want!r}"


@pytest.mark.parametrize("name", ["partition", "argpartition"])
def test_partition(name):
    # only the kth element and the split around it are specified (JAX and NumPy order the
    # rest differently)
    rng = np.random.default_rng(3)
    for dt in NUMERIC:
        x = _r(rng, (3, 7), dt)
        for k in (0, 3, 6):
            ours = np.asarray(getattr(tnp, name)(x, k))
            theirs = np.asarray(getattr(jnp, name)(x, k))
            if name == "argpartition":
                ours, theirs = np.take_along_axis(x, ours, -1), np.take_along_axis(x, theirs, -1)
            assert np.array_equal(ours[:, k], theirs[:, k]), f"tnp.{name}({x!r}, {k})"
            assert np.all(ours[:, :k] <= ours[:, k:k + 1]) and \
                np.all(ours[:, k + 1:] >= ours[:, k:k + 1]), f"tnp.{name}({x!r}, {k}): {ours}"


@pytest.mark.parametrize("mode", ["reflect", "edge", "wrap", "symmetric", "maximum", "mean",
                                  "linear_ramp"])
def test_pad_modes(mode):
    x = _r(np.random.default_rng(4))
    _run("pad", (x, ((1, 0), (0, 2))), {"mode": mode})

# the same across NumPy and JAX by construction (constants, dtypes, printing, classes)
NOT_COMPUTATIONAL = {
    "bool_", "complex128", "complex64", "float16", "float32", "float64", "int16", "int32",
    "int64", "int8", "uint16", "uint32", "uint64", "uint8", "floating", "inexact", "integer",
    "number", "dtype", "ndarray", "finfo", "iinfo", "e", "pi", "inf", "nan", "euler_gamma",
    "newaxis", "get_printoptions", "set_printoptions", "printoptions", "c_", "r_", "linalg",
}
# JAX's versions differ by design: empty/empty_like (JAX returns zeros, NumPy garbage),
# place/put/put_along_axis (JAX: functional or unsupported; tnp: NumPy's in-place on ndarrays),
# mask_indices (takes a function)
SKIP_BY_DESIGN = {"empty", "empty_like", "place", "put", "put_along_axis", "mask_indices"}

# divergent result dtypes where JAX-x64 and NumPy agree on values: dtype compared with NumPy
NP_DTYPE = set()


@pytest.mark.parametrize("name", sorted(n for n, v in OTHER.items() if v is not None))
def test_other(name):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for args, kwargs in OTHER[name](rng):
        _run(name, args, kwargs)


def test_constants():
    for n in ("e", "pi", "inf", "euler_gamma"):
        assert getattr(tnp, n) == getattr(jnp, n), n
    assert np.isnan(tnp.nan) and tnp.newaxis is None
    for n in ("float32", "float64", "int32", "int64", "bool_", "uint8"):
        assert np.dtype(getattr(tnp, n)) == np.dtype(getattr(jnp, n)), n
    assert tnp.finfo(np.float32).eps == jnp.finfo(np.float32).eps


# the jax.numpy names added for porting: compared with JAX (and NumPy) case by case in
# tests/test_numpy_jax_names.py
JAX_NAMES_FILE = set("""
    acos acosh asin asinh atan atan2 atanh pow permute_dims matrix_transpose unstack
    bitwise_invert bitwise_left_shift bitwise_right_shift bitwise_count bool double single float_
    int_ uint cdouble csingle complex_ object_ generic signedinteger unsignedinteger
    complexfloating character flexible ComplexWarning isdtype iterable isrealobj
    argwhere flatnonzero unique_values unique_counts unique_inverse unique_all bincount isin
    compress extract setdiff1d setxor1d union1d intersect1d delete insert choose piecewise block
    resize diagflat fill_diagonal diag_indices_from trim_zeros ldexp frexp gcd lcm modf
    float_power spacing nextafter i0 trapezoid ediff1d unwrap sort_complex packbits unpackbits
    histogram_bin_edges histogram2d histogramdd bartlett blackman hamming hanning kaiser poly
    polyadd polysub polymul polydiv polyder polyint polyfit roots mgrid ogrid index_exp s_
    apply_along_axis apply_over_axes vectorize fromfunction frombuffer fromiter fromstring
    fromfile array_repr array_str einsum_path save savez load
""".split())


def test_every_shared_function_is_covered():
    shared = {n for n in dir(tnp) if not n.startswith("_")} & set(dir(jnp))
    covered = (set(UNARY) | set(BINARY) | set(REDUCTIONS) | set(OTHER) | NOT_COMPUTATIONAL |
               set(NUMPY_ONLY) | JAX_NAMES_FILE | {"partition", "argpartition", "fft", "angle"})
    missing = sorted(shared - covered)
    assert not missing, f"tnp functions shared with jnp without a differential case: {missing}"


# a jitted sample: the same comparisons through T.jit (shared compiled functions, few shapes)
JIT_SAMPLE = [
    ("tanh", lambda m, x, y: m.tanh(x)), ("logaddexp", lambda m, x, y: m.logaddexp(x, y)),
    ("where", lambda m, x, y: m.where(x > y, x, y)), ("cumsum", lambda m, x, y: m.cumsum(x, 1)),
    ("var", lambda m, x, y: m.var(x, axis=0)), ("matmul", lambda m, x, y: x @ y.T),
    ("sort", lambda m, x, y: m.sort(x, axis=1)),
    ("take", lambda m, x, y: m.take(x, m.array([2, 0]), axis=1)),
    ("clip", lambda m, x, y: m.clip(x, -0.5, 0.5)),
    ("remainder", lambda m, x, y: m.remainder(x, y + 3.0)),
]


@pytest.mark.parametrize("dt", [F32, F64])
def test_jit_sample(dt):
    rng = np.random.default_rng(5)
    x, y = _r(rng, (3, 4), dt), _r(rng, (3, 4), dt)
    ours = T.jit(lambda x, y: [f(tnp, x, y) for _, f in JIT_SAMPLE])(x, y)
    theirs = jax.jit(lambda x, y: [f(jnp, x, y) for _, f in JIT_SAMPLE])(x, y)
    for (name, _), a, b in zip(JIT_SAMPLE, ours, theirs):
        _compare(f"{name} (jit)", (x, y), a, b, None)


FFT_CASES = [
    ("fft", lambda m, x: m.fft.fft(x), (5, 6)), ("ifft", lambda m, x: m.fft.ifft(x, n=8), (3, 5)),
    ("fft2", lambda m, x: m.fft.fft2(x, norm="ortho"), (4, 6)),
    ("fftn", lambda m, x: m.fft.fftn(x, axes=(0, 2)), (2, 3, 4)),
    ("rfft", lambda m, x: m.fft.rfft(x, axis=0), (6, 3)),
    ("irfft", lambda m, x: m.fft.irfft(m.fft.rfft(x), n=7), (3, 7)),
    ("rfftn", lambda m, x: m.fft.rfftn(x, norm="forward"), (4, 6)),
    ("irfft2", lambda m, x: m.fft.irfft2(m.fft.rfft2(x)), (4, 6)),
    ("hfft", lambda m, x: m.fft.hfft(x), (5,)), ("ihfft", lambda m, x: m.fft.ihfft(x), (6,)),
    ("fftfreq", lambda m, x: m.fft.fftfreq(7, 0.5), (1,)),
    ("rfftfreq", lambda m, x: m.fft.rfftfreq(8), (1,)),
    ("fftshift", lambda m, x: m.fft.fftshift(x, axes=1), (3, 5)),
    ("ifftshift", lambda m, x: m.fft.ifftshift(x), (4, 5)),
    ("angle", lambda m, x: m.angle(m.fft.fft(x)), (6,)),
]


@pytest.mark.parametrize("name,fn,shape", FFT_CASES, ids=[c[0] for c in FFT_CASES])
def test_fft_against_jnp(name, fn, shape):
    # float64 input: complex128 in both libraries (x64 on); integer input differs by design
    x = np.random.default_rng(zlib.crc32(name.encode())).normal(size=shape)
    _compare(f"fft.{name}", (x,), fn(tnp, x), fn(jnp, jnp.asarray(x)), tol=(1e-10, 1e-10))
