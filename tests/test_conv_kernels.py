"""Size-generic convolution kernels (backend/numba/kernels_conv.py): generated code calls the
library kernel compiled once per dtype (no per-shape helper), a second program with other
convolution shapes compiles no convolution code (asserted through the kernels' compile
counters and the helper statistics, never by timing), and the values at odd sizes match a
direct convolution."""
import numpy as np
import pytest

import transforms as T
from transforms import lax

pytest.importorskip("numba")
from transforms.backend.numba import (STATS, clear_memory_cache, kernels_conv,  # noqa: E402
                                      lower)
from transforms.backend.numba import rules_conv  # noqa: E402

DN = ("NHWC", "HWIO", "NHWC")
rng = np.random.default_rng(3)


def conv(padding):
    def f(x, w):
        return lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=DN)
    return f


def direct(x, w, padding):
    """Direct NHWC x HWIO convolution in float64 (loops over the 3x3 offsets)."""
    (plh, phh), (plw, phw) = padding
    xp = np.pad(x.astype(np.float64), ((0, 0), (max(plh, 0), max(phh, 0)),
                                       (max(plw, 0), max(phw, 0)), (0, 0)))
    xp = xp[:, max(-plh, 0):xp.shape[1] - max(-phh, 0), max(-plw, 0):xp.shape[2] - max(-phw, 0)]
    kh, kw = w.shape[:2]
    ho, wo = xp.shape[1] - kh + 1, xp.shape[2] - kw + 1
    out = np.zeros((x.shape[0], ho, wo, w.shape[3]))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nhwc,co->nhwo", xp[:, i:i + ho, j:j + wo], w[i, j])
    return out


@pytest.fixture(autouse=True)
def library_kernels(monkeypatch):
    """The library kernels are opt-in (conv_winograd.WINOGRAD_KERNEL, rules_conv's
    WINDOW_ROWS_KERNEL, IM2COL_KERNEL, POOL_KERNEL): on for these tests."""
    from transforms.backend.numba import conv_winograd
    monkeypatch.setattr(conv_winograd, "WINOGRAD_KERNEL", True)
    for flag in ("WINDOW_ROWS_KERNEL", "IM2COL_KERNEL", "POOL_KERNEL"):
        monkeypatch.setattr(rules_conv, flag, True)


@pytest.fixture
def wino_calls(monkeypatch):
    """The output shapes of the convolutions lowered by the Winograd path."""
    calls = []
    real = rules_conv.lower_conv_winograd

    def spy(ctx, eqn, *a):
        calls.append(eqn.outvars[0].aval.shape)
        return real(ctx, eqn, *a)
    monkeypatch.setattr(rules_conv, "lower_conv_winograd", spy)
    return calls


def _data(n, h, w, c, o, dtype):
    return (rng.standard_normal((n, h, w, c)).astype(dtype),
            rng.standard_normal((3, 3, c, o)).astype(dtype))


def test_generated_source_calls_the_library_kernel(wino_calls):
    x, w = _data(2, 8, 8, 64, 64, np.float32)
    low = lower(T.jit(conv("SAME")).trace(x, w).jaxpr)
    name = kernels_conv.name("winograd", np.float32)
    assert wino_calls == [(2, 8, 8, 64)]
    assert f"import {name} as _k_{name}" in low.source
    calls = [ln for ln in low.source.splitlines() if f"_k_{name}(" in ln]
    assert len(calls) == 1
    # the sizes are the call's arguments: no per-shape Winograd helper anywhere
    assert "(2, 8, 8, 1, 1, 8, 8, 64, 64," in calls[0]
    assert "_wg_" not in low.source and not low.helpers


def test_new_conv_shapes_compile_no_convolution_code(wino_calls, tmp_path, monkeypatch):
    """Two programs, each of other shapes (batch, map, channels) than the one before: after
    the first, the Winograd entry point is neither compiled nor loaded again, and no helper
    module is compiled for any of them."""
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(tmp_path))      # (the programs are new)
    T.clear_caches()
    clear_memory_cache()
    d = kernels_conv.dispatchers()["kernels_conv.winograd"]
    f = conv(((1, 1), (1, 1)))
    x, w = _data(2, 6, 6, 32, 32, np.float64)
    np.testing.assert_allclose(T.jit(f)(x, w), direct(x, w, ((1, 1), (1, 1))),
                               rtol=1e-11, atol=1e-11)
    compiled = sum(d.stats.cache_misses.values()) + sum(d.stats.cache_hits.values())
    before = {k: STATS[k] for k in ("helper_compiled", "helper_disk_hits", "compiled")}
    for n, h, c, o in ((3, 7, 40, 36), (1, 9, 33, 48)):
        x, w = _data(n, h, h, c, o, np.float64)
        got = T.jit(f)(x, w)
        np.testing.assert_allclose(got, direct(x, w, ((1, 1), (1, 1))), rtol=1e-11, atol=1e-11)
    assert [s[1:3] for s in wino_calls] == [(6, 6), (7, 7), (9, 9)]
    assert sum(d.stats.cache_misses.values()) + sum(d.stats.cache_hits.values()) == compiled
    assert STATS["helper_compiled"] == before["helper_compiled"]
    assert STATS["helper_disk_hits"] == before["helper_disk_hits"]
    assert STATS["compiled"] - before["compiled"] == 2       # the two main functions only


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_odd_sizes_against_direct_convolution(dtype, wino_calls):
    """One image, odd output sizes (tiles over the edge), channel counts that are no multiple
    of a vector width; value and input gradient (itself a Winograd convolution with the
    flipped kernel, not stored HWIO)."""
    pad = ((1, 1), (1, 1))
    x, w = _data(1, 5, 7, 33, 35, dtype)
    f = conv(pad)
    ct = rng.standard_normal((1, 5, 7, 35)).astype(dtype)

    def both(x, w, ct):
        y, vjp = T.vjp(f, x, w)
        return y, vjp(ct)[0]
    y, dx = T.jit(both)(x, w, ct)
    tol = dict(rtol=1e-11, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-5)
    want = direct(x, w, pad)
    assert y.dtype == dtype and y.shape == want.shape
    np.testing.assert_allclose(y, want, **tol)
    _, vjp = T.vjp(f, x.astype(np.float64), w.astype(np.float64))
    np.testing.assert_allclose(dx, vjp(ct.astype(np.float64))[0], **tol)
    assert wino_calls == [want.shape, x.shape]


def test_uneven_padding_against_direct_convolution(wino_calls):
    pad = ((0, 2), (2, -1))                    # uneven and negative
    x, w = _data(2, 6, 7, 32, 34, np.float64)
    want = direct(x, w, pad)
    np.testing.assert_allclose(T.jit(conv(pad))(x, w), want, rtol=1e-11, atol=1e-11)
    assert wino_calls == [want.shape]


def test_against_jax_when_installed(wino_calls):
    jax = pytest.importorskip("jax")
    x, w = _data(3, 9, 5, 36, 32, np.float32)
    want = np.asarray(jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                   dimension_numbers=DN))
    got = T.jit(conv("SAME"))(x, w)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert wino_calls == [(3, 9, 5, 32)]


@pytest.mark.parametrize("strides,padding,rd", [((1, 1), "VALID", (1, 1)),
                                                ((2, 1), ((1, 2), (0, 1)), (1, 2))])
def test_kernel_gradient_calls_the_window_rows_kernel(strides, padding, rd):
    """The kernel gradient of a 2-D convolution (a window larger than its output) is one
    call of the `window_rows` kernel; values against the eager interpreter, float64, one
    image and odd sizes, strided and dilated."""
    x = rng.standard_normal((1, 9, 7, 5))
    w = rng.standard_normal((3, 3, 5, 6))

    def loss(w, x):
        y = lax.conv_general_dilated(x, w, strides, padding, rhs_dilation=rd,
                                     dimension_numbers=DN)
        return (y * y).sum()
    g = T.grad(loss)
    name = kernels_conv.name("window_rows", np.float64)
    src = lower(T.jit(g).trace(w, x).jaxpr).source
    assert len([ln for ln in src.splitlines() if f"_k_{name}(" in ln]) == 1
    np.testing.assert_allclose(T.jit(g)(w, x), g(w, x), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("strides,padding,rd,ld", [
    ((1, 1), "VALID", (1, 1), (1, 1)),
    ((2, 3), ((2, 1), (1, 2)), (2, 1), (1, 1)),        # strided, dilated, run over the border
    ((1, 1), ((1, 1), (0, 0)), (1, 1), (2, 1))])       # input dilation along the first axis
def test_forward_convolution_calls_the_im2col_kernel(strides, padding, rd, ld):
    """A 2-D channels-last convolution with few channels (no Winograd, no taps) is one call
    of the `im2col` kernel; values against the eager interpreter, odd sizes, channels no
    multiple of a vector width."""
    x = rng.standard_normal((2, 15, 13, 3))
    w = rng.standard_normal((3, 2, 3, 8))

    def f(x, w):
        return lax.conv_general_dilated(x, w, strides, padding, lhs_dilation=ld,
                                        rhs_dilation=rd, dimension_numbers=DN)
    name = kernels_conv.name("im2col", np.float64)
    src = lower(T.jit(f).trace(x, w).jaxpr).source
    assert len([ln for ln in src.splitlines() if f"_k_{name}(" in ln]) == 1
    np.testing.assert_allclose(T.jit(f)(x, w), f(x, w), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("kind", ["max", "sum", "min"])
def test_channels_last_pooling_calls_the_pool_kernel(kind, monkeypatch):
    """Channels-last pooling (windows over the leading axes, padding, odd sizes, a NaN) is
    one call of the `pool` kernel; values against the eager interpreter, float32."""
    from transforms.backend.numba import lowering
    monkeypatch.setattr(lowering, "parallel_allowed", lambda: False)
    monkeypatch.setattr(rules_conv, "parallel_allowed", lambda: False)
    x = rng.standard_normal((2, 7, 9, 5)).astype(np.float32)
    x[1, 3, 4, 2] = np.nan
    prim = {"max": lax.max, "min": lax.min, "sum": lax.add}[kind]
    init = {"max": -np.inf, "min": np.inf, "sum": 0.0}[kind]

    def f(x):
        return lax.reduce_window(x, np.float32(init), prim, (1, 3, 2, 1), (1, 2, 2, 1),
                                 ((0, 0), (1, 1), (0, 1), (0, 0)))
    name = kernels_conv.name("pool", np.float32)
    src = lower(T.jit(f).trace(x).jaxpr).source
    assert len([ln for ln in src.splitlines() if f"_k_{name}(" in ln]) == 1
    got, want = T.jit(f)(x), f(x)
    assert np.isnan(got).sum() == np.isnan(want).sum() >= 1
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_cnn_gradient_of_new_shapes_compiles_no_convolution_kernel(tmp_path, monkeypatch):
    """A small CNN's loss gradient (im2col and Winograd convolutions, max pooling, the kernel
    gradients' window rows) at one batch/map size, then at another: the second program
    neither compiles nor loads any convolution kernel, and its source names no per-shape
    convolution helper."""
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(tmp_path))
    T.clear_caches()
    clear_memory_cache()
    import transforms.numpy as tnp

    def loss(w1, w2, x):
        h = tnp.maximum(lax.conv_general_dilated(x, w1, (1, 1), "VALID",
                                                 dimension_numbers=DN), 0.0)
        h = lax.conv_general_dilated(h, w2, (1, 1), "SAME", dimension_numbers=DN)
        h = lax.reduce_window(h, -np.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        return (h * h).sum()
    g = T.grad(loss, argnums=(0, 1))
    w1 = rng.standard_normal((3, 3, 2, 32)) * 0.3
    w2 = rng.standard_normal((3, 3, 32, 32)) * 0.1
    disps = kernels_conv.dispatchers().values()

    def loads():
        return sum(sum(d.stats.cache_misses.values()) + sum(d.stats.cache_hits.values())
                   for d in disps)
    for i, (n, h) in enumerate(((2, 10), (3, 12))):
        x = rng.standard_normal((n, h, h, 2))
        src = lower(T.jit(g).trace(w1, w2, x).jaxpr).source
        assert "_k_conv_im2col" in src and "_k_conv_winograd" in src and "_wg_" not in src
        before = loads()
        got = T.jit(g)(w1, w2, x)
        if i:
            assert loads() == before
        for a, b in zip(got, g(w1, w2, x)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_kernels_are_off_by_default():
    """Generated code keeps its per-shape loops unless a kernel is switched on (they were
    slower in steady state: kernels_conv's docstring); precompile then compiles none."""
    from transforms.backend.numba import conv_winograd
    import importlib
    src = importlib.util.find_spec("transforms.backend.numba.rules_conv").origin
    text = open(src).read() + open(conv_winograd.__file__).read()
    for flag in ("WINOGRAD_KERNEL", "WINDOW_ROWS_KERNEL", "IM2COL_KERNEL", "POOL_KERNEL"):
        assert f"\n{flag} = False\n" in text
