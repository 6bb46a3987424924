"""JAX's top-level names beyond the transforms: devices, pure_callback, pmap, ops.segment_*,
config contexts, dtypes/typing, closure_convert, ensure_compile_time_eval, named_call."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax, ops


# --------------------------------------------------------------------------------------------
# devices and environment
# --------------------------------------------------------------------------------------------

def test_devices_describe_one_cpu():
    ds = T.devices()
    assert len(ds) == T.device_count() == 1 and T.local_device_count() == 1
    d = ds[0]
    assert (d.id, d.platform, d.device_kind, d.process_index) == (0, "cpu", "cpu", 0)
    assert repr(d) == "CpuDevice(id=0)" and str(d) == "cpu:0"
    assert T.local_devices() == ds and T.default_backend() == "cpu"
    assert T.process_indices() == [0] and T.host_count() == 1 and T.host_id() == 0
    assert T.live_arrays() == []
    with pytest.raises(RuntimeError, match="gpu"):
        T.devices("gpu")


def test_environment_info_and_version():
    text = T.print_environment_info(return_string=True)
    assert f"transforms: {T.__version__}" in text and "numba" in text
    assert T.version.__version__ == T.__version__


def test_config_contexts_set_and_restore():
    assert T.config.jax_enable_x64 is False
    with T.enable_x64(True):
        assert T.config.jax_enable_x64 is True and T.enable_x64.value is True
    assert T.config.jax_enable_x64 is False
    with T.experimental.enable_x64():
        assert T.config.jax_enable_x64 is True
    with T.debug_nans(True), T.default_matmul_precision("highest"):
        assert T.config.read("jax_debug_nans") is True
        assert T.config.read("jax_default_matmul_precision") == "highest"
    assert T.config.jax_debug_nans is False and T.config.jax_default_matmul_precision is None
    with T.transfer_guard("disallow"), T.log_compiles(True), T.numpy_dtype_promotion("strict"):
        assert float(T.jit(lambda x: x + 1)(1.0)) == 2.0
    with pytest.raises(ValueError, match="transfer_guard"):
        with T.transfer_guard("sometimes"):
            pass


def test_dtypes_and_typing():
    assert T.dtypes.canonicalize_dtype(np.float64) == np.float64
    assert T.dtypes.issubdtype(np.float32, np.floating)
    assert not T.dtypes.issubdtype(T.float0, np.floating)
    assert T.dtypes.result_type(np.float32(1), 2.0) == np.float32
    assert T.dtypes.result_type(np.int32(1), np.float32(1)) == np.float64
    assert T.float0.itemsize == 0
    assert np.ndarray in T.typing.ArrayLike.__args__


# --------------------------------------------------------------------------------------------
# pure_callback
# --------------------------------------------------------------------------------------------

def _cb(x, method=None, calls=None):
    def host(v):
        if calls is not None:
            calls.append(v.shape)
        return np.sin(v) * 2
    return T.pure_callback(host, T.ShapeDtypeStruct(x.shape, x.dtype), x, vmap_method=method)


def test_pure_callback_eager_jit_and_structure():
    x = np.arange(6.0).reshape(2, 3)
    calls = []
    np.testing.assert_allclose(_cb(x, calls=calls), np.sin(x) * 2)
    f = T.jit(lambda x: _cb(x, calls=calls) + 1)
    np.testing.assert_allclose(f(x), np.sin(x) * 2 + 1)
    np.testing.assert_allclose(f(x + 1), np.sin(x + 1) * 2 + 1)   # runs at run time
    assert calls.count((2, 3)) >= 3

    def two(v):
        return {"s": np.sum(v), "i": v.astype(np.int32)}
    spec = {"s": T.ShapeDtypeStruct((), np.float64), "i": T.ShapeDtypeStruct((2, 3), np.int32)}
    out = T.jit(lambda x: T.pure_callback(two, spec, x))(x)
    assert float(out["s"]) == 15.0 and out["i"].dtype == np.int32
    np.testing.assert_array_equal(out["i"], x.astype(np.int32))


def test_pure_callback_vmap_methods():
    x = np.arange(6.0).reshape(3, 2)
    calls = []
    out = T.vmap(lambda r: _cb(r, "sequential", calls))(x)
    np.testing.assert_allclose(out, np.sin(x) * 2)
    assert calls == [(2,)] * 3
    calls.clear()
    out = T.jit(T.vmap(lambda r: _cb(r, "expand_dims", calls)))(x)
    np.testing.assert_allclose(out, np.sin(x) * 2)
    assert calls == [(3, 2)]

    def add(a, b):
        return a + b
    y = np.ones(2)
    res = T.vmap(lambda r: T.pure_callback(add, T.ShapeDtypeStruct((2,), np.float64), r, y,
                                           vmap_method="broadcast_all"))(x)
    np.testing.assert_allclose(res, x + 1)
    with pytest.raises(NotImplementedError, match="vmap_method"):
        T.vmap(lambda r: _cb(r))(x)


def test_pure_callback_errors_and_custom_jvp():
    x = np.ones(3)
    with pytest.raises(ValueError, match="JVP"):
        T.grad(lambda v: _cb(v).sum())(x)
    with pytest.raises(ValueError, match="shape"):
        T.pure_callback(lambda v: v[:2], T.ShapeDtypeStruct((3,), np.float64), x)

    @T.custom_jvp
    def f(v):
        return _cb(v)

    @f.defjvp
    def f_jvp(p, t):
        return f(p[0]), 2 * tnp.cos(p[0]) * t[0]
    np.testing.assert_allclose(T.grad(lambda v: f(v).sum())(x), 2 * np.cos(x))


# --------------------------------------------------------------------------------------------
# pmap
# --------------------------------------------------------------------------------------------

def test_pmap_runs_collectives_per_slice():
    x = np.arange(8.0).reshape(4, 2)
    f = T.pmap(lambda v: v - lax.pmean(v, "i"), axis_name="i")
    np.testing.assert_allclose(f(x), x - x.mean(0))
    g = T.pmap(lambda v, s: v * s + lax.axis_index("i"), axis_name="i",
               static_broadcasted_argnums=1)
    np.testing.assert_allclose(g(x, 3.0), x * 3 + np.arange(4)[:, None])
    h = T.pmap(lambda a, b: a + b, in_axes=(0, None))
    np.testing.assert_allclose(h(x, np.ones(2)), x + 1)
    # data-parallel training: per-slice gradients averaged with pmean
    step = T.pmap(lambda w, v: lax.pmean(T.grad(lambda w: tnp.sum(w * v) ** 2)(w), "i"),
                  axis_name="i", in_axes=(None, 0))
    want = np.mean([2 * (x[k].sum()) * x[k] for k in range(4)], axis=0)
    np.testing.assert_allclose(step(np.ones(2), x), np.broadcast_to(want, (4, 2)))


# --------------------------------------------------------------------------------------------
# ops.segment_*
# --------------------------------------------------------------------------------------------

DATA = np.array([[1., 2.], [3., -4.], [5., 6.], [-7., 8.], [9., 10.]])
IDS = np.array([0, 2, 0, 1, 7])       # 7 is out of range: dropped


def _np_segment(fn, ident, data, ids, n):
    out = np.full((n,) + data.shape[1:], ident, data.dtype)
    for row, i in zip(data, ids):
        if 0 <= i < n:
            out[i] = fn(out[i], row)
    return out


@pytest.mark.parametrize("name,fn,ident", [
    ("segment_sum", np.add, 0.0), ("segment_prod", np.multiply, 1.0),
    ("segment_max", np.maximum, -np.inf), ("segment_min", np.minimum, np.inf)])
def test_segment_ops_match_numpy_eager_and_jit(name, fn, ident):
    op = getattr(ops, name)
    want = _np_segment(fn, ident, DATA, IDS, 4)
    np.testing.assert_array_equal(op(DATA, IDS, num_segments=4), want)
    np.testing.assert_array_equal(T.jit(lambda d, i: op(d, i, 4))(DATA, IDS), want)
    np.testing.assert_array_equal(op(DATA[:4], IDS[:4]), _np_segment(fn, ident, DATA[:4], IDS[:4], 3))
    batched = T.vmap(lambda d: op(d, IDS, 4))(np.stack([DATA, 2 * DATA]))
    np.testing.assert_array_equal(batched[1], _np_segment(fn, ident, 2 * DATA, IDS, 4))


def test_segment_integer_identities():
    d = np.array([3, 5], np.int32)
    assert ops.segment_max(d, np.array([0, 0]), 2)[1] == np.iinfo(np.int32).min
    assert ops.segment_min(d, np.array([0, 0]), 2)[1] == np.iinfo(np.int32).max


@pytest.mark.parametrize("name", ["segment_sum", "segment_prod", "segment_max"])
def test_segment_gradients_match_finite_differences(name):
    op = getattr(ops, name)
    w = np.random.default_rng(0).normal(size=(4, 2))
    ids = np.array([0, 2, 4, 1, 3]) if name == "segment_prod" else IDS
    kw = {"unique_indices": True} if name == "segment_prod" else {}

    def loss(d):
        return tnp.sum(op(d, ids, num_segments=3, **kw) * w[:3])
    g = T.grad(loss)(DATA)
    eps = 1e-6
    fd = np.zeros_like(DATA)
    for idx in np.ndindex(DATA.shape):
        e = np.zeros_like(DATA)
        e[idx] = eps
        fd[idx] = (loss(DATA + e) - loss(DATA - e)) / (2 * eps)
    np.testing.assert_allclose(g, fd, atol=1e-6)


def test_segment_errors():
    with pytest.raises(NotImplementedError, match="at most once"):   # as JAX
        T.grad(lambda d: tnp.sum(ops.segment_prod(d, IDS, 3)))(DATA)
    with pytest.raises(TypeError, match="integers"):
        ops.segment_sum(DATA, IDS.astype(float), 3)
    with pytest.raises(ValueError, match="one entry per row"):
        ops.segment_sum(DATA, IDS[:3], 3)


def test_segment_ops_match_jax():
    jax = pytest.importorskip("jax")
    for name in ("segment_sum", "segment_prod", "segment_max", "segment_min"):
        want = getattr(jax.ops, name)(DATA.astype(np.float32), IDS, num_segments=4)
        got = getattr(ops, name)(DATA.astype(np.float32), IDS, num_segments=4)
        np.testing.assert_array_equal(got, np.asarray(want))


# --------------------------------------------------------------------------------------------
# small utilities
# --------------------------------------------------------------------------------------------

def test_closure_convert_hoists_traced_constants():
    def outer(w):
        cf, consts = T.closure_convert(lambda x: tnp.sin(x * w), 1.0)
        assert len(consts) == 1
        return cf(3.0, *consts)
    np.testing.assert_allclose(T.grad(outer)(2.0), 3 * np.cos(6.0))
    cf, consts = T.closure_convert(lambda x: x * 2.0, 1.0)
    assert consts == [] and float(cf(4.0)) == 8.0


def test_ensure_compile_time_eval_gives_concrete_values_under_jit():
    seen = []

    def f(x):
        with T.ensure_compile_time_eval():
            y = tnp.sum(np.arange(4.0))
            seen.append(isinstance(y, T.Tracer))
            z = x * 2               # traced values are still traced
        return z + y
    assert float(T.jit(f)(1.0)) == 8.0 and seen == [False]


def test_named_call_keeps_values_and_name():
    f = T.named_call(lambda x: x * 3, name="triple")
    assert f.__name__ == "triple" and float(T.jit(f)(2.0)) == 6.0
    assert float(T.grad(f)(2.0)) == 3.0


# --------------------------------------------------------------------------------------------
# image.resize / scale_and_translate
# --------------------------------------------------------------------------------------------

def test_resize_hand_computed():
    up = T.image.resize(np.array([0.0, 1.0]), (4,), "linear")
    np.testing.assert_allclose(up, [0.0, 0.25, 0.75, 1.0])
    np.testing.assert_array_equal(T.image.resize(np.arange(4), (2,), "nearest"), [1, 3])
    np.testing.assert_array_equal(T.image.resize(np.arange(2), (5,), "nearest"), [0, 0, 1, 1, 1])
    down = T.image.resize(np.arange(4.0), (2,), "linear")             # antialiased
    np.testing.assert_allclose(down, [1.25 / 1.75, 3 - 1.25 / 1.75])
    plain = T.image.resize(np.arange(4.0), (2,), "linear", antialias=False)
    np.testing.assert_allclose(plain, [0.5, 2.5])
    img = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(T.image.resize(img, (3, 4), "cubic"), img)   # identity
    cubic = T.image.resize(img, (6, 8), "bicubic")
    assert cubic.shape == (6, 8) and np.allclose(cubic.mean(), img.mean(), atol=0.05)
    # a constant image stays constant under every interpolating method
    for m in ("linear", "cubic", "lanczos3", "lanczos5"):
        np.testing.assert_allclose(T.image.resize(np.full((5, 5), 2.0), (7, 3), m), 2.0)
    with pytest.raises(ValueError, match="Unknown resize method"):
        T.image.resize(img, (6, 8), "quadratic")
    with pytest.raises(ValueError, match="length"):
        T.image.resize(img, (6,), "linear")


def test_resize_jit_and_grad():
    img = np.random.default_rng(0).normal(size=(5, 6, 2))
    f = T.jit(lambda x: T.image.resize(x, (8, 3, 2), "linear"))
    np.testing.assert_allclose(f(img), T.image.resize(img, (8, 3, 2), "linear"), rtol=1e-12)
    w = np.random.default_rng(1).normal(size=(8, 3, 2))

    def loss(x):
        return tnp.sum(T.image.resize(x, (8, 3, 2), "cubic") * w)
    g = T.grad(loss)(img)
    e = np.zeros_like(img)
    e[2, 3, 1] = 1e-6
    fd = (loss(img + e) - loss(img - e)) / 2e-6
    np.testing.assert_allclose(g[2, 3, 1], fd, rtol=1e-6)


def test_image_matches_jax():
    jax = pytest.importorskip("jax")
    img = np.random.default_rng(0).normal(size=(7, 9, 3)).astype(np.float32)
    for shape in [(14, 18, 3), (3, 4, 3), (7, 5, 3)]:
        for m in ("nearest", "linear", "cubic", "lanczos3", "lanczos5"):
            for aa in (True, False):
                np.testing.assert_allclose(T.image.resize(img, shape, m, antialias=aa),
                                           jax.image.resize(img, shape, m, antialias=aa),
                                           atol=1e-5)
    args = ((10, 12, 3), (0, 1), np.float32([1.5, 1.2]), np.float32([0.3, -1.0]), "linear")
    np.testing.assert_allclose(T.image.scale_and_translate(img, *args),
                               jax.image.scale_and_translate(img, *args), atol=1e-5)


# --------------------------------------------------------------------------------------------
# custom_batching
# --------------------------------------------------------------------------------------------

def test_custom_vmap_uses_its_rule_only_under_vmap():
    from transforms.custom_batching import custom_vmap, sequential_vmap
    calls = []

    @custom_vmap
    def f(x, y):
        return tnp.sin(x) + y

    @f.def_vmap
    def rule(n, in_batched, x, y):
        calls.append((n, list(in_batched)))
        return tnp.sin(x) + y + 100.0, in_batched[0] or in_batched[1]
    x = np.arange(3.0)
    assert float(f(0.5, 1.0)) == np.sin(0.5) + 1 and float(T.jit(f)(0.5, 1.0)) == np.sin(0.5) + 1
    np.testing.assert_allclose(T.vmap(f, in_axes=(0, None))(x, 1.0), np.sin(x) + 101)
    assert calls == [(3, [True, False])]
    np.testing.assert_allclose(T.jit(T.vmap(f, in_axes=(0, None)))(x, 1.0), np.sin(x) + 101)
    np.testing.assert_allclose(T.grad(lambda v: f(v, 1.0))(0.5), np.cos(0.5))
    g = sequential_vmap(lambda v: v ** 2 + 1)
    np.testing.assert_array_equal(T.vmap(g)(x), x ** 2 + 1)
    np.testing.assert_array_equal(T.jit(T.vmap(g))(x), x ** 2 + 1)

    @custom_vmap
    def h(v):
        return v
    with pytest.raises(AttributeError, match="def_vmap"):
        h(1.0)


# --------------------------------------------------------------------------------------------
# experimental.ode.odeint
# --------------------------------------------------------------------------------------------

def test_odeint_values_and_adjoint_gradients():
    from transforms.experimental.ode import odeint
    t = np.linspace(0.0, 2.0, 5)
    ys = odeint(lambda y, s, k: -k * y, np.array([1.0, 2.0]), t, 0.7)
    np.testing.assert_allclose(ys, np.array([1.0, 2.0]) * np.exp(-0.7 * t)[:, None], atol=1e-7)

    def loss(y0, k):
        return tnp.sum(odeint(lambda y, s, k: -k * y, y0, t, k)[-1])
    gy, gk = T.grad(loss, argnums=(0, 1))(np.array([1.0, 2.0]), 0.7)
    np.testing.assert_allclose(gy, np.exp(-1.4), rtol=1e-6)
    np.testing.assert_allclose(gk, -2.0 * 3.0 * np.exp(-1.4), rtol=1e-6)
    # d/dt of y(t) = exp(-0.35 t^2): the time gradients
    gt = T.grad(lambda tt: tnp.sum(odeint(lambda y, s: -0.7 * y * s, np.array([1.0]), tt)))(t)
    # (the dynamics depend on t itself, so moving t0 does not move the later values: 0)
    want = -0.7 * t * np.exp(-0.35 * t ** 2)
    np.testing.assert_allclose(gt[1:], want[1:], rtol=1e-5)
    assert abs(gt[0]) < 1e-6
    # a pytree state (a pendulum): energy is conserved
    out = odeint(lambda s, _: {"x": s["v"], "v": -tnp.sin(s["x"])}, {"x": 1.0, "v": 0.0}, t)
    energy = 0.5 * np.asarray(out["v"]) ** 2 - np.cos(np.asarray(out["x"]))
    np.testing.assert_allclose(energy, energy[0], atol=1e-7)


def test_odeint_matches_jax():
    jax = pytest.importorskip("jax")
    from jax.experimental.ode import odeint as jode
    from transforms.experimental.ode import odeint
    t = np.linspace(0.0, 2.0, 5).astype(np.float32)

    def f(y, s, k):
        return -k * y * s + tnp.sin(y)

    def jf(y, s, k):
        return -k * y * s + jax.numpy.sin(y)
    y0 = np.float32([1.0, 0.5])
    np.testing.assert_allclose(odeint(f, y0, t, np.float32(0.7)), jode(jf, y0, t, 0.7),
                               rtol=1e-5, atol=1e-6)
    g = T.grad(lambda k: tnp.sum(odeint(f, y0, t, k)))(np.float32(0.7))
    gj = jax.grad(lambda k: jax.numpy.sum(jode(jf, y0, t, k)))(np.float32(0.7))
    np.testing.assert_allclose(g, gj, rtol=1e-4)


def test_single_device_array_constructors():
    x = T.make_array_from_callback((2, 3), None, lambda idx: np.arange(6.0).reshape(2, 3)[idx])
    np.testing.assert_array_equal(x, np.arange(6.0).reshape(2, 3))
    y = T.make_array_from_single_device_arrays((2,), None, [np.ones(2)])
    np.testing.assert_array_equal(y, np.ones(2))
    with pytest.raises(ValueError, match="one array"):
        T.make_array_from_single_device_arrays((2,), None, [np.ones(2), np.ones(2)])
    np.testing.assert_array_equal(T.make_array_from_process_local_data(None, np.ones(3)),
                                  np.ones(3))
    assert T.effects_barrier() is None
    with T.threefry_partitionable(True), T.checking_leaks(True):
        assert T.config.jax_check_tracer_leaks is True
    assert T.default_prng_impl.value == "threefry2x32"
    assert T.scipy.special.gammaln(1.0) == 0.0


def test_pure_callback_inside_compiled_control_flow():
    sds = T.ShapeDtypeStruct

    def body(c, x):
        y = T.pure_callback(lambda a, b: np.float64(a * b + 1), sds((), np.float64), c, x)
        return y, y
    last, ys = T.jit(lambda xs: lax.scan(body, 1.0, xs))(np.arange(4.0))
    np.testing.assert_array_equal(ys, [1.0, 2.0, 5.0, 16.0])
    g = T.jit(lambda p, x: lax.cond(p, lambda v: T.pure_callback(np.cos, sds(v.shape, v.dtype), v),
                                    lambda v: v * 2, x))
    np.testing.assert_allclose(g(True, np.ones(2)), np.cos(1.0))
    np.testing.assert_array_equal(g(False, np.ones(2)), 2.0)
    assert float(T.jit(lambda: T.pure_callback(lambda: np.float32(3), sds((), np.float32)))()) == 3
