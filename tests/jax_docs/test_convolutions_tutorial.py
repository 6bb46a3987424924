"""JAX's "Generalized convolutions" tutorial, ported: `tnp.convolve`/`correlate`,
`transforms.scipy.signal.convolve/correlate/convolve2d/correlate2d`, and `lax.conv`,
`lax.conv_with_general_padding`, `lax.conv_general_dilated` with dimension-number strings,
strides, padding ('SAME', 'VALID', 'SAME_LOWER', explicit, negative), input and kernel
dilation, feature and batch groups, in 1, 2 and 3 spatial dimensions.

Every value is checked against a direct convolution written here from the definition, and
against JAX (x64 mode) where it is importable. The compiled convolution is a separate code path
from the eager one: one `jit` program covers representative layouts and options, and
gradients are checked against central differences and JAX's.
"""
import itertools

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
import transforms.scipy.signal as tsig
import transforms.scipy.stats as tstats
from transforms import lax

from ._helpers import jax_x64_each_test, num_grad

try:
    import jax
    import jax.lax as jlax
    import jax.numpy as jnp
    import jax.scipy.signal as jsig
except ImportError:                      # our own asserts still run
    jax = jlax = jnp = jsig = None


_jax_x64 = pytest.fixture(autouse=True)(jax_x64_each_test)   # JAX in x64, per test

try:
    import scipy.signal as ssig
except ImportError:
    ssig = None

rng = np.random.default_rng(1701)


def close(a, b, rtol=1e-10, atol=1e-10):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------------
# A direct reference convolution, from the definition (NC + spatial / OI + spatial layouts)
# ---------------------------------------------------------------------------------------------

def ref_conv(x, w, strides, pads, lhs_dil, rhs_dil, groups=1, batch_groups=1):
    """out[n, o, p] = sum_{c, k} xd[n, g(o)*C/groups + c, p*stride + k*rhs_dil] w[o, c, k],
    with xd the input dilated by `lhs_dil` then padded by `pads` (negative pads crop)."""
    n, c = x.shape[:2]
    sp = x.shape[2:]
    nd = len(sp)
    dil_shape = tuple((s - 1) * d + 1 for s, d in zip(sp, lhs_dil))
    xd = np.zeros((n, c) + dil_shape, x.dtype)
    xd[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in lhs_dil)] = x
    xp = np.pad(xd, [(0, 0), (0, 0)] + [(max(lo, 0), max(hi, 0)) for lo, hi in pads])
    xp = xp[(slice(None), slice(None)) + tuple(
        slice(max(-lo, 0), xp.shape[2 + i] - max(-hi, 0)) for i, (lo, hi) in enumerate(pads))]
    k = w.shape[2:]
    keff = tuple((kk - 1) * r + 1 for kk, r in zip(k, rhs_dil))
    out_sp = tuple((p - e) // s + 1 for p, e, s in zip(xp.shape[2:], keff, strides))
    o = w.shape[0]
    nb = n // batch_groups
    out = np.zeros((nb, o) + out_sp, np.result_type(x, w))
    cin = w.shape[1]
    for off in itertools.product(*[range(kk) for kk in k]):
        win = xp[(slice(None), slice(None)) + tuple(
            slice(f * r, f * r + s * (m - 1) + 1, s)
            for f, r, s, m in zip(off, rhs_dil, strides, out_sp))]
        wk = w[(slice(None), slice(None)) + off]                      # (O, cin)
        for gi in range(groups):
            for bi in range(batch_groups):
                os_ = slice((gi * batch_groups + bi) * (o // (groups * batch_groups)),
                            (gi * batch_groups + bi + 1) * (o // (groups * batch_groups)))
                xs = win[bi * nb:(bi + 1) * nb, gi * cin:(gi + 1) * cin]
                out[:, os_] += np.einsum("nc...,oc->no...", xs, wk[os_])
    assert out.ndim == nd + 2
    return out


def _spatial(spec, nonspatial):
    return [i for i, ch in enumerate(spec) if ch not in nonspatial]


def ref_conv_layout(x, w, specs, strides, pads, lhs_dil, rhs_dil, groups=1, batch_groups=1):
    """`ref_conv` for inputs and output in the layouts named by `specs` (lhs, rhs, out)."""
    ls, rs, os_ = specs
    lsp = _spatial(ls, "NC")
    xc = np.transpose(x, [ls.index("N"), ls.index("C")] + lsp)
    order = [ls[i] for i in lsp]                   # spatial letters in the input's order
    wc = np.transpose(w, [rs.index("O"), rs.index("I")] + [rs.index(ch) for ch in order])
    if isinstance(pads, str):
        pads = lax.padtype_to_pads(xc.shape[2:], [(k - 1) * r + 1 for k, r in zip(
            wc.shape[2:], rhs_dil)], strides, pads)
    yc = ref_conv(xc, wc, strides, pads, lhs_dil, rhs_dil, groups, batch_groups)
    return np.transpose(yc, [0 if ch == "N" else 1 if ch == "C" else 2 + order.index(ch)
                             for ch in os_])


def test_reference_matches_a_plain_loop():
    # the reference itself against the textbook loop on one small strided, padded case
    x = rng.normal(size=(1, 1, 5))
    w = rng.normal(size=(1, 1, 2))
    y = ref_conv(x, w, (2,), ((1, 0),), (1,), (1,))
    xp = np.concatenate([[0.0], x[0, 0]])
    want = [xp[2 * p] * w[0, 0, 0] + xp[2 * p + 1] * w[0, 0, 1] for p in range(3)]
    close(y[0, 0], want)


# ---------------------------------------------------------------------------------------------
# 1-D convolution: tnp.convolve / tnp.correlate
# ---------------------------------------------------------------------------------------------

def _direct_convolve(a, v):
    out = np.zeros(len(a) + len(v) - 1, np.result_type(a, v))
    for i, ai in enumerate(a):
        out[i:i + len(v)] += ai * v
    return out


def test_smoothing_a_noisy_signal():
    x = np.linspace(0, 10, 500)
    y = np.sin(x) + 0.2 * rng.normal(size=500)
    window = tnp.ones(10) / 10
    smooth = tnp.convolve(y, window, mode="same")
    full = _direct_convolve(y, np.ones(10) / 10)
    close(smooth, full[4:504])      # 'same' keeps the input's length: from (10 - 1) // 2
    # the moving average is much closer to sin(x) than the noisy signal, away from the edges
    err_noisy = np.abs(y - np.sin(x))[20:-20].mean()
    err_smooth = np.abs(smooth - np.sin(x))[20:-20].mean()
    assert err_smooth < 0.5 * err_noisy
    close(T.jit(lambda u, v: tnp.convolve(u, v, mode="same"))(y, window), smooth)
    if jnp is not None:
        close(smooth, jnp.convolve(y, window, mode="same"))


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_convolve_and_correlate_modes(mode):
    a, v = rng.normal(size=7), rng.normal(size=3)
    full = _direct_convolve(a, v)
    start = {"full": 0, "same": (3 - 1) // 2, "valid": 3 - 1}[mode]
    size = {"full": 9, "same": 7, "valid": 5}[mode]
    close(tnp.convolve(a, v, mode=mode), full[start:start + size])
    # convolution commutes; 'same' has the longer operand's length whichever comes first
    close(tnp.convolve(v, a, mode=mode), tnp.convolve(a, v, mode=mode))
    close(tnp.convolve(v, a, mode=mode), np.convolve(v, a, mode=mode))
    # correlation is convolution with the reversed (conjugated) second operand
    close(tnp.correlate(a, v, mode=mode), tnp.convolve(a, v[::-1], mode=mode))
    for p, q in [(a, v), (v, a), (a + 0.5j * a[::-1], v - 2j)]:
        if jnp is not None:
            close(tnp.convolve(p, q, mode=mode), jnp.convolve(p, q, mode=mode))
            close(tnp.correlate(p, q, mode=mode), jnp.correlate(p, q, mode=mode))
        close(tnp.correlate(p, q, mode=mode), np.correlate(p, q, mode=mode))


def test_correlate_conjugates_a_complex_second_operand():
    a = np.array([1.0, 2j, 3.0])
    v = np.array([1j, 2.0])
    # c[k] = sum_n a[n + k] conj(v[n]); full mode shifts k from -(len(v) - 1)
    want = [a[0] * np.conj(v[1]), a[0] * np.conj(v[0]) + a[1] * np.conj(v[1]),
            a[1] * np.conj(v[0]) + a[2] * np.conj(v[1]), a[2] * np.conj(v[0])]
    close(tnp.correlate(a, v, mode="full"), want)
    close(T.jit(lambda p, q: tnp.correlate(p, q, mode="full"))(a, v), want)
    A, K = np.array([[1.0, 2j], [3.0, 4.0]]), np.array([[1j, 2.0]])
    if ssig is not None:
        close(tsig.correlate(A, K), ssig.correlate(A, K))
        close(tsig.correlate2d(A, K), ssig.correlate2d(A, K))
        close(tsig.correlate2d(K, A), ssig.correlate2d(K, A))
    # real inputs are unchanged by the conjugation
    close(tsig.correlate(A.real, K.imag), tsig.convolve(A.real, K.imag[::-1, ::-1]))


def test_integer_convolution_stays_integer():
    # NumPy and SciPy keep integer inputs integer (JAX returns floats: a README difference)
    a, v = np.arange(5), np.array([1, 2, 1])
    got = tnp.convolve(a, v)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, _direct_convolve(a, v))
    assert tsig.convolve(a[None], v[None]).dtype == np.int64
    if jnp is not None:
        assert jnp.convolve(a, v).dtype == np.float64


# ---------------------------------------------------------------------------------------------
# N-d convolution: transforms.scipy.signal
# ---------------------------------------------------------------------------------------------

def test_gaussian_denoising_of_an_image():
    image = np.add.outer(np.arange(24.0), np.arange(20.0)) % 7.0      # a striped picture
    noisy = image + 0.5 * rng.normal(size=image.shape)
    x = tnp.linspace(-3, 3, 7)
    window = tstats.norm.pdf(x) * tstats.norm.pdf(x[:, None])
    smooth = tsig.convolve(noisy, window, mode="same")
    assert smooth.shape == image.shape
    want = ref_conv(noisy[None, None], window[::-1, ::-1][None, None], (1, 1),
                    ((3, 3), (3, 3)), (1, 1), (1, 1))[0, 0]
    close(smooth, want)
    if jsig is not None:
        close(smooth, jsig.convolve(noisy, np.asarray(window), mode="same"))
    if ssig is not None:
        close(smooth, ssig.convolve(noisy, window, mode="same"))


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_scipy_signal_against_scipy(mode):
    A, K = rng.normal(size=(6, 5)), rng.normal(size=(3, 2))
    A3, K3 = rng.normal(size=(4, 5, 3)), rng.normal(size=(2, 3, 2))
    for a, k in [(A, K), (K, A), (A3, K3), (A + 1j * A[::-1], K - 0.5j)]:
        for method in ("auto", "direct", "fft"):
            for ours, theirs_name in [(tsig.convolve, "convolve"), (tsig.correlate, "correlate")]:
                got = ours(a, k, mode=mode, method=method)
                if ssig is not None:
                    close(got, getattr(ssig, theirs_name)(a, k, mode=mode), 1e-9, 1e-9)
                if jsig is not None and method == "auto":     # SciPy checks the others
                    close(got, getattr(jsig, theirs_name)(a, k, mode=mode, method=method),
                          1e-9, 1e-9)
        if a.ndim == 2 and a is A and mode == "same":     # compiled once: a small kernel
            got = T.jit(lambda u, v: tsig.correlate2d(u, v, mode="same"))(a, k)
            close(got, tsig.correlate2d(a, k, mode="same"))
            if ssig is not None:
                close(got, ssig.correlate2d(a, k, mode="same"))
        if a.ndim == 2:
            for ours, theirs_name in [(tsig.convolve2d, "convolve2d"),
                                      (tsig.correlate2d, "correlate2d")]:
                got = ours(a, k, mode=mode)
                if ssig is not None:
                    close(got, getattr(ssig, theirs_name)(a, k, mode=mode))
                if jsig is not None:
                    close(got, getattr(jsig, theirs_name)(a, k, mode=mode))


def test_fftconvolve_of_complex_inputs():
    # the FFT route equals the direct sum, complex operands included (they used to lose
    # their imaginary part)
    A, K = rng.normal(size=(5, 6)), rng.normal(size=(3, 2))
    C = A + 1j * A[::-1]
    for mode in ("full", "same", "valid"):
        for a, k in [(C, K), (A, K - 1j), (C.astype(np.complex64), K.astype(np.float32))]:
            got = tsig.fftconvolve(a, k, mode=mode)
            assert got.dtype == np.result_type(a, k), (mode, a.dtype, k.dtype)
            tol = 1e-5 if got.dtype == np.complex64 else 1e-10
            close(got, tsig.convolve(a, k, mode=mode), tol, tol)
            if ssig is not None:
                close(got, ssig.fftconvolve(a, k, mode=mode), tol, tol)
            if jsig is not None:
                close(got, jsig.fftconvolve(a, k, mode=mode), tol, tol)


def test_scipy_signal_refuses_what_jax_refuses():
    A, K = rng.normal(size=(4, 4)), rng.normal(size=(2, 2))
    for boundary in ("wrap", "symm"):
        with pytest.raises(NotImplementedError, match="boundary"):
            tsig.convolve2d(A, K, boundary=boundary)
    with pytest.raises(ValueError, match="dimensionality"):
        tsig.convolve(A, K[0])
    with pytest.raises(ValueError, match="mode"):
        tnp.convolve(A[0], K[0], mode="middle")


# ---------------------------------------------------------------------------------------------
# lax: the tutorial's image, kernel and layouts
# ---------------------------------------------------------------------------------------------

def _edge_kernel():
    """The tutorial's diagonal edge detector, HWIO, the same for every channel pair."""
    k = np.array([[1, 1, 0], [1, 0, -1], [0, -1, -1]], np.float32)
    return np.broadcast_to(k[:, :, None, None], (3, 3, 3, 3)).copy()


def _squares_image():
    """NHWC: one bright square per channel, as in the tutorial (smaller)."""
    img = np.zeros((1, 20, 18, 3), np.float32)
    for c in range(3):
        img[0, 2 + 6 * c:6 + 6 * c, 1 + 5 * c:5 + 5 * c, c] = 1.0
    return img


DN_2D = ("NHWC", "HWIO", "NHWC")


def test_conv_dimension_numbers():
    img, k = _squares_image(), _edge_kernel()
    dn = lax.conv_dimension_numbers(img.shape, k.shape, DN_2D)
    assert tuple(dn) == ((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))
    assert dn.lhs_spec == (0, 3, 1, 2) and dn.rhs_spec == (3, 2, 0, 1)
    for specs, nd in [(("NCHW", "OIHW", "NCHW"), 2), (("NWC", "WIO", "NWC"), 1),
                      (("NHWDC", "HWDIO", "NHWDC"), 3), (("CHWN", "IHWO", "NHWC"), 2),
                      (("NHWC", "OIHW", "NCHW"), 2)]:
        ours = lax.conv_dimension_numbers((1,) * (nd + 2), (1,) * (nd + 2), specs)
        if jlax is not None:
            assert tuple(ours) == tuple(jlax.conv_dimension_numbers(
                (1,) * (nd + 2), (1,) * (nd + 2), specs)), specs
    assert tuple(lax.conv_dimension_numbers((1,) * 4, (1,) * 4, None)) == (
        (0, 1, 2, 3), (0, 1, 2, 3), (0, 1, 2, 3))
    with pytest.raises((ValueError, TypeError)):
        lax.conv_dimension_numbers((1,) * 4, (1,) * 4, ("NHWC", "HWIO"))


def test_conv_and_conv_with_general_padding_nchw():
    img, k = _squares_image(), _edge_kernel()
    x, w = img.transpose(0, 3, 1, 2), k.transpose(3, 2, 0, 1)        # NCHW, OIHW
    out = lax.conv(x, w, (1, 1), "SAME")
    assert out.shape == (1, 3, 20, 18) and out.dtype == np.float32
    close(out, ref_conv(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1)), 1e-6, 1e-6)
    # the edge detector answers on the squares' borders, 0 inside them and far away
    assert out.max() == 3 and out.min() == -3
    assert out[0, 0, 10, 8] == 0 and out[0, 0, 0, 17] == 0      # inside a square, far away
    out2 = lax.conv_with_general_padding(x, w, (1, 1), ((2, 2), (2, 2)), (1, 1), (1, 1))
    assert out2.shape == (1, 3, 22, 20)
    close(out2, ref_conv(x, w, (1, 1), ((2, 2), (2, 2)), (1, 1), (1, 1)), 1e-6, 1e-6)
    out3 = lax.conv_with_general_padding(x, w, (2, 1), ((1, 0), (0, 2)), (2, 1), (1, 2))
    close(out3, ref_conv(x, w, (2, 1), ((1, 0), (0, 2)), (2, 1), (1, 2)), 1e-6, 1e-6)
    if jlax is not None:
        close(out, jlax.conv(x, w, (1, 1), "SAME"), 1e-6, 1e-6)
        close(out2, jlax.conv_with_general_padding(x, w, (1, 1), ((2, 2), (2, 2)), (1, 1),
                                                   (1, 1)), 1e-6, 1e-6)
        close(out3, jlax.conv_with_general_padding(x, w, (2, 1), ((1, 0), (0, 2)), (2, 1),
                                                   (1, 2)), 1e-6, 1e-6)


@pytest.mark.parametrize("name,strides,padding,lhs_dil,rhs_dil,shape", [
    ("same", (1, 1), "SAME", (1, 1), (1, 1), (1, 20, 18, 3)),
    ("valid", (1, 1), "VALID", (1, 1), (1, 1), (1, 18, 16, 3)),
    ("same_strided", (2, 2), "SAME", (1, 1), (1, 1), (1, 10, 9, 3)),
    ("atrous", (1, 1), "VALID", (1, 1), (4, 4), (1, 12, 10, 3)),
    ("input_dilated", (1, 1), ((0, 0), (0, 0)), (2, 2), (1, 1), (1, 37, 33, 3)),
])
def test_conv_general_dilated_tutorial_cases(name, strides, padding, lhs_dil, rhs_dil, shape):
    img, k = _squares_image(), _edge_kernel()
    dn = lax.conv_dimension_numbers(img.shape, k.shape, DN_2D)
    out = lax.conv_general_dilated(img, k, strides, padding, lhs_dil, rhs_dil, dn)
    assert out.shape == shape and out.dtype == np.float32
    close(out, ref_conv_layout(img, k, DN_2D, strides, padding, lhs_dil, rhs_dil), 1e-6, 1e-6)
    if jlax is not None:
        close(out, jlax.conv_general_dilated(img, k, strides, padding, lhs_dil, rhs_dil,
                                             DN_2D), 1e-6, 1e-6)


def test_transposed_convolution_from_input_dilation():
    # the tutorial's transposed convolution: rotate the kernel 180 degrees, dilate the input
    img, k = _squares_image(), _edge_kernel()
    k_rot = tnp.rot90(tnp.rot90(k, axes=(0, 1)), axes=(0, 1))
    close(k_rot, k[::-1, ::-1])
    out = lax.conv_general_dilated(img, k_rot, (1, 1), ((2, 1), (2, 1)), (2, 2), (1, 1), DN_2D)
    assert out.shape == (1, 40, 36, 3)                       # twice the input size
    close(out, ref_conv_layout(img, k_rot, DN_2D, (1, 1), ((2, 1), (2, 1)), (2, 2), (1, 1)),
          1e-6, 1e-6)
    # it is the adjoint of the strided convolution with the same kernel (here 'SAME' pads
    # (0, 1) per axis: the transposed padding is (k - 1 - 0, k - 1 - 1 + 1))
    def down(x):
        return lax.conv_general_dilated(x, k, (2, 2), "SAME", dimension_numbers=DN_2D)
    _, pullback = T.vjp(down, np.zeros((1, 40, 36, 3), np.float32))
    close(pullback(img)[0], out, 1e-6, 1e-6)
    # string padding cannot size a dilated input: refused (as JAX), explicit pairs are needed
    with pytest.raises(ValueError, match="lhs_dilation"):
        lax.conv_general_dilated(img, k, (1, 1), "SAME", (2, 2), (1, 1), DN_2D)
    if jlax is not None:
        close(out, jlax.conv_general_dilated(img, k_rot, (1, 1), ((2, 1), (2, 1)), (2, 2),
                                             (1, 1), DN_2D), 1e-6, 1e-6)


def test_one_dimensional_nwc():
    kernel = np.array([[[1, 0, -1], [-1, 0, 1]], [[1, 1, 1], [-1, -1, -1]]],
                      np.float32).transpose([2, 1, 0])                 # WIO
    data = np.zeros((1, 60, 2), np.float32)
    for i, c in itertools.product(range(2), range(2)):
        start = 10 * i + 8 + 20 * c
        data[0, start:start + 9, c] = 1.0
    dn = lax.conv_dimension_numbers(data.shape, kernel.shape, ("NWC", "WIO", "NWC"))
    out = lax.conv_general_dilated(data, kernel, (1,), "SAME", (1,), (1,), dn)
    assert out.shape == (1, 60, 2)
    close(out, ref_conv_layout(data, kernel, ("NWC", "WIO", "NWC"), (1,), "SAME", (1,), (1,)),
          1e-6, 1e-6)
    if jlax is not None:
        close(out, jlax.conv_general_dilated(data, kernel, (1,), "SAME", (1,), (1,),
                                             ("NWC", "WIO", "NWC")))


def test_three_dimensional_nhwdc():
    k = np.array([[[0, 0, 0], [0, 1, 0], [0, 0, 0]],
                  [[0, -1, 0], [-1, 0, -1], [0, -1, 0]],
                  [[0, 0, 0], [0, 1, 0], [0, 0, 0]]], np.float32)[:, :, :, None, None]
    g = np.linspace(0, 1, 10)
    x, y, z = np.meshgrid(g, g, g, indexing="ij")
    data = (np.sin(2 * np.pi * x) * np.cos(2 * np.pi * y) * np.cos(2 * np.pi * z)).astype(
        np.float32)[None, ..., None]
    specs = ("NHWDC", "HWDIO", "NHWDC")
    dn = lax.conv_dimension_numbers(data.shape, k.shape, specs)
    out = lax.conv_general_dilated(data, k, (1, 1, 1), "SAME", (1, 1, 1), (1, 1, 1), dn)
    assert out.shape == data.shape
    close(out, ref_conv_layout(data, k, specs, (1, 1, 1), "SAME", (1,) * 3, (1,) * 3),
          1e-5, 1e-6)
    if jlax is not None:
        close(out, jlax.conv_general_dilated(data, k, (1, 1, 1), "SAME", (1, 1, 1), (1, 1, 1),
                                             specs), 1e-5, 1e-6)


# ---------------------------------------------------------------------------------------------
# A grid of options (eager), and one compiled program covering representative ones
# ---------------------------------------------------------------------------------------------

LAYOUTS = [(("NCHW", "OIHW", "NCHW"), 2), (("NHWC", "HWIO", "NHWC"), 2),
           (("NWC", "WIO", "NWC"), 1), (("NHWDC", "HWDIO", "NHWDC"), 3),
           (("CHWN", "IHWO", "NHWC"), 2)]


def _case(specs, nd, groups, batch_groups, dtype=np.float64, seed=0):
    r = np.random.default_rng(seed)
    ls, rs, _ = specs
    sizes = {"N": 2 * batch_groups, "C": 2 * groups, "H": 7, "W": 6, "D": 5}
    ksizes = {"O": 3 * groups * batch_groups, "I": 2, "H": 3, "W": 2, "D": 2}
    x = r.normal(size=tuple(sizes[ch] for ch in ls)).astype(dtype)
    w = r.normal(size=tuple(ksizes[ch] for ch in rs)).astype(dtype)
    return x, w


def _pads(kind, nd):
    return {"explicit": ((1, 2),) * nd, "negative": ((-1, 1),) * nd}.get(kind, kind)


GRID = [c for c in itertools.product(
    [1, 2], ["SAME", "VALID", "SAME_LOWER", "explicit", "negative"], [1, 2], [1, 2],
    [(1, 1), (2, 1), (1, 2)]) if not (c[1].isupper() and c[2] > 1)]   # refused: tested above


@pytest.mark.parametrize("layout", range(len(LAYOUTS)), ids=[s[0][0] for s in LAYOUTS])
def test_conv_general_dilated_grid(layout):
    # the 84 combinations of strides, padding, dilations and groups, each layout taking every
    # 6th one (from its own offset: together the layouts run 70 of them, every option in each)
    specs, nd = LAYOUTS[layout]
    n = 0
    for stride, pad, ld, rd, (g, bg) in GRID[layout::6]:
        x, w = _case(specs, nd, g, bg, seed=n)
        kw = dict(window_strides=(stride,) * nd, padding=_pads(pad, nd),
                  lhs_dilation=(ld,) * nd, rhs_dilation=(rd,) * nd, dimension_numbers=specs,
                  feature_group_count=g, batch_group_count=bg)
        got = lax.conv_general_dilated(x, w, **kw)
        want = ref_conv_layout(x, w, specs, (stride,) * nd, _pads(pad, nd), (ld,) * nd,
                               (rd,) * nd, g, bg)
        close(got, want)
        if jlax is not None and n % 3 == 0:      # JAX compiles each shape: a third of them
            close(got, jlax.conv_general_dilated(x, w, **kw))
        n += 1
    assert len(GRID) == 84 and n == 14


COMPILED = [   # (specs, nd, strides, padding, lhs_dil, rhs_dil, groups, batch_groups, dtype)
    (("NHWC", "HWIO", "NHWC"), 2, (2, 2), "SAME", (1, 1), (1, 1), 1, 1, np.float32),
    (("NCHW", "OIHW", "NCHW"), 2, (1, 2), "negative", (1, 1), (2, 1), 2, 1, np.float32),
    (("NWC", "WIO", "NWC"), 1, (1,), "explicit", (2,), (2,), 1, 2, np.float64),
    (("NHWDC", "HWDIO", "NHWDC"), 3, (1, 1, 1), "VALID", (1, 1, 1), (1, 1, 1), 1, 1,
     np.float64),
    (("CHWN", "IHWO", "NHWC"), 2, (1, 1), "SAME_LOWER", (1, 1), (1, 2), 2, 1, np.float64),
]


def test_compiled_convolutions_match_eager_and_reference():
    xs, ws, kws = [], [], []
    for i, (specs, nd, st, pad, ld, rd, g, bg, dt) in enumerate(COMPILED):
        x, w = _case(specs, nd, g, bg, dt, seed=100 + i)
        xs.append(x)
        ws.append(w)
        kws.append(dict(window_strides=st, padding=_pads(pad, nd), lhs_dilation=ld,
                        rhs_dilation=rd, dimension_numbers=specs, feature_group_count=g,
                        batch_group_count=bg))
    # channels-last 3x3 'SAME' convolutions of the sizes the compiled code treats apart: the
    # tutorial's 3-channel edge filter (one im2col call), 16 channels on a 4x4 map (by kernel
    # offsets, most windows meeting padding) and 32 -> 32 channels on 8x8 (Winograd tiles)
    r = np.random.default_rng(99)
    for x, w in [(_squares_image(), _edge_kernel()),
                 (r.normal(size=(2, 4, 4, 16)), r.normal(size=(3, 3, 16, 8))),
                 (r.normal(size=(2, 8, 8, 32)).astype(np.float32),
                  r.normal(size=(3, 3, 32, 32)).astype(np.float32))]:
        xs.append(x)
        ws.append(w)
        kws.append(dict(window_strides=(1, 1), padding="SAME", lhs_dilation=(1, 1),
                        rhs_dilation=(1, 1), dimension_numbers=DN_2D, feature_group_count=1,
                        batch_group_count=1))

    def f(xs, ws):
        return [lax.conv_general_dilated(x, w, **kw) for x, w, kw in zip(xs, ws, kws)]
    compiled, eager = T.jit(f)(xs, ws), f(xs, ws)
    for i, (c, e, x, w, kw) in enumerate(zip(compiled, eager, xs, ws, kws)):
        tol = 2e-5 if x.dtype == np.float32 else 1e-10
        assert np.asarray(c).dtype == x.dtype, i
        want = ref_conv_layout(x.astype(np.float64), w.astype(np.float64),
                               kw["dimension_numbers"], kw["window_strides"], kw["padding"],
                               kw["lhs_dilation"], kw["rhs_dilation"],
                               kw["feature_group_count"], kw["batch_group_count"])
        close(c, want, tol, tol)
        close(e, want, tol, tol)
        if jlax is not None:
            # JAX computed in float64: its CPU float32 result with negative padding is not
            # a usable reference (it differs from its own float64 result)
            theirs = jlax.conv_general_dilated(x.astype(np.float64), w.astype(np.float64),
                                               **kw)
            close(c, theirs, tol, tol)


# ---------------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------------

def test_gradients_against_finite_differences():
    specs = ("NHWC", "HWIO", "NHWC")
    x, w = _case(specs, 2, 2, 1, seed=7)
    x, w = x[:1, :5, :4], w[:2]                    # small: one central difference per entry
    kw = dict(window_strides=(2, 1), padding=((1, 0), (-1, 2)), lhs_dilation=(1, 2),
              rhs_dilation=(2, 1), dimension_numbers=specs, feature_group_count=2)
    probe = np.random.default_rng(8).normal(size=lax.conv_general_dilated(x, w, **kw).shape)

    def loss(x, w):
        return tnp.sum(tnp.tanh(lax.conv_general_dilated(x, w, **kw)) * probe)
    gx, gw = T.grad(loss, argnums=(0, 1))(x, w)
    close(gx, num_grad(lambda u: float(loss(u, w)), x), 1e-6, 1e-8)
    close(gw, num_grad(lambda u: float(loss(x, u)), w), 1e-6, 1e-8)
    cx, cw = T.jit(T.grad(loss, argnums=(0, 1)))(x, w)
    close(cx, gx)
    close(cw, gw)
    if jax is not None:
        def jloss(x, w):
            return jnp.sum(jnp.tanh(jlax.conv_general_dilated(x, w, **kw)) * probe)
        jx, jw = jax.grad(jloss, argnums=(0, 1))(x, w)
        close(gx, jx)
        close(gw, jw)


def test_gradients_of_signal_convolutions():
    a, v = rng.normal(size=6), rng.normal(size=3) + 0.0
    A, K = rng.normal(size=(4, 5)), rng.normal(size=(2, 3))

    def f1(a):
        return tnp.sum(tnp.convolve(a, v, mode="same") ** 2)

    def f2(k):
        return tnp.sum(tnp.sin(tsig.correlate2d(A, k, mode="valid")))
    close(T.grad(f1)(a), num_grad(lambda u: float(f1(u)), a), 1e-6, 1e-8)
    close(T.grad(f2)(K), num_grad(lambda u: float(f2(u)), K), 1e-6, 1e-8)
    if jax is not None:
        close(T.grad(f1)(a), jax.grad(lambda u: jnp.sum(jnp.convolve(u, v, mode="same") ** 2))(a))
        close(T.grad(f2)(K), jax.grad(
            lambda k: jnp.sum(jnp.sin(jsig.correlate2d(A, k, mode="valid"))))(K))


def test_conv_transpose_dtypes_and_preferred_element_type():
    r = np.random.default_rng(11)
    xt, wt = r.normal(size=(1, 6, 5, 3)), r.normal(size=(3, 3, 3, 2))
    dn = ("NHWC", "HWIO", "NHWC")
    # conv_transpose is the input-dilated convolution (kernel flipped and I/O swapped with
    # transpose_kernel=True)
    out = lax.conv_transpose(xt, wt, (2, 2), "SAME", dimension_numbers=dn)
    assert out.shape == (1, 12, 10, 2)
    wt2 = wt.transpose(0, 1, 3, 2)                   # O and I swapped: HWOI read as HWIO
    out2 = lax.conv_transpose(xt, wt2, (2, 1), ((1, 1), (2, 0)), dimension_numbers=dn,
                              transpose_kernel=True)
    want2 = ref_conv_layout(xt, wt2[::-1, ::-1].transpose(0, 1, 3, 2), dn, (1, 1),
                            ((1, 1), (2, 0)), (2, 1), (1, 1))
    close(out2, want2)
    # integers stay integers; preferred_element_type widens the accumulation and result
    xi = r.integers(-3, 4, size=(2, 4, 6, 5)).astype(np.int32)
    wi = r.integers(-3, 4, size=(6, 2, 3, 2)).astype(np.int32)
    yi = lax.conv_general_dilated(xi, wi, (1, 1), "SAME", feature_group_count=2)
    assert yi.dtype == np.int32
    np.testing.assert_array_equal(yi, ref_conv(xi, wi, (1, 1), ((1, 1), (0, 1)), (1, 1),
                                               (1, 1), groups=2))
    x32, w32 = xi.astype(np.float32), wi.astype(np.float32)
    y64 = lax.conv_general_dilated(x32, w32, (2, 1), "VALID", feature_group_count=2,
                                   preferred_element_type=np.float64)
    assert y64.dtype == np.float64
    # documented difference: operands of different dtypes are promoted (JAX: TypeError)
    ymix = lax.conv_general_dilated(x32, wi.astype(np.float64), (1, 1), "SAME",
                                    feature_group_count=2)
    assert ymix.dtype == np.float64
    close(ymix, yi.astype(np.float64))
    if jlax is not None:
        close(out, jlax.conv_transpose(xt, wt, (2, 2), "SAME", dimension_numbers=dn))
        close(out2, jlax.conv_transpose(xt, wt2, (2, 1), ((1, 1), (2, 0)),
                                        dimension_numbers=dn, transpose_kernel=True))
        close(y64, jlax.conv_general_dilated(x32, w32, (2, 1), "VALID", feature_group_count=2,
                                             preferred_element_type=np.float64))
        with pytest.raises(TypeError):
            jlax.conv_general_dilated(x32, wi.astype(np.float64), (1, 1), "SAME",
                                      feature_group_count=2)


def test_jax_keywords_are_accepted():
    # JAX's signatures: precision (validated; exact on the CPU), preferred_element_type,
    # out_sharding, use_consistent_padding
    ai, vi = np.arange(5, dtype=np.int32), np.array([1, 2, 1], np.int32)
    got = tnp.convolve(ai, vi, preferred_element_type=np.float64, precision="highest")
    assert got.dtype == np.float64
    close(got, _direct_convolve(ai, vi).astype(np.float64))
    got = tnp.correlate(ai, vi, "full", preferred_element_type=np.float64)
    assert got.dtype == np.float64
    close(got, _direct_convolve(ai, vi[::-1]))
    A, K = rng.normal(size=(4, 5)), rng.normal(size=(2, 2))
    close(tsig.convolve(A, K, precision="highest"), tsig.convolve(A, K))
    close(tsig.correlate(A, K, "same", "direct", None), tsig.correlate(A, K, "same"))
    with pytest.raises(ValueError):
        tsig.convolve(A, K, precision="no-such-precision")
    x, w = rng.normal(size=(1, 2, 5, 4)), rng.normal(size=(3, 2, 3, 3))
    close(lax.conv_general_dilated(x, w, (1, 1), "SAME", out_sharding=None),
          lax.conv(x, w, (1, 1), "SAME"))
    # use_consistent_padding: pairs are the forward convolution's padding, so the transposed
    # convolution is that convolution's input gradient
    xt, wt = rng.normal(size=(1, 6, 5, 3)), rng.normal(size=(3, 2, 4, 3))
    dn = ("NHWC", "HWIO", "NHWC")
    pads = ((1, 0), (2, 1))
    up = lax.conv_transpose(xt, wt, (2, 3), pads, dimension_numbers=dn, transpose_kernel=True,
                            use_consistent_padding=True)

    def down(u):
        return lax.conv_general_dilated(u, wt, (2, 3), pads, dimension_numbers=dn)
    _, pullback = T.vjp(down, np.zeros(up.shape))
    assert down(np.zeros(up.shape)).shape == xt.shape
    close(up, pullback(xt)[0])
    if jnp is not None:
        close(tnp.convolve(ai, vi, preferred_element_type=np.float64),
              jnp.convolve(ai, vi, preferred_element_type=np.float64))
        close(up, jlax.conv_transpose(xt, wt, (2, 3), pads, dimension_numbers=dn,
                                      transpose_kernel=True, use_consistent_padding=True))


def test_inconsistent_arguments_raise_eagerly_and_traced():
    x, w = np.ones((1, 5, 5, 3)), np.ones((3, 3, 3, 2))

    def conv(**kw):
        args = dict(window_strides=(1, 1), padding="SAME", dimension_numbers=DN_2D)
        args.update(kw)
        return lambda u, v: lax.conv_general_dilated(u, v, **args)
    for kw, err, match in [
            (dict(batch_group_count=2), ValueError, "batch dimension 1 .* batch_group_count 2"),
            (dict(feature_group_count=0), ValueError, "must be positive"),
            (dict(feature_group_count=3, batch_group_count=2), ValueError, "at most one"),
            (dict(dimension_numbers=5), TypeError, "triple of specs"),
            (dict(dimension_numbers=("NHWC", "HWII", "NHWC")), TypeError, "'O' and 'I'"),
            (dict(window_strides=(1,)), ValueError, "window_strides"),
            (dict(padding="FULL"), ValueError, "padding")]:
        with pytest.raises(err, match=match):
            conv(**kw)(x, w)                                   # eager: no empty result
        with pytest.raises(err, match=match):
            T.make_jaxpr(conv(**kw))(x, w)


def test_vmap_of_convolutions_equals_a_loop():
    r = np.random.default_rng(21)
    xs, ws = r.normal(size=(3, 2, 4, 6, 5)), r.normal(size=(3, 6, 2, 3, 2))

    def f(x, w):
        return lax.conv_general_dilated(x, w, (2, 1), ((1, 0), (0, 1)), rhs_dilation=(1, 2),
                                        feature_group_count=2)
    for axes in [(0, 0), (0, None), (None, 0)]:
        x_in = xs if axes[0] == 0 else xs[0]
        w_in = ws if axes[1] == 0 else ws[0]
        got = T.vmap(f, in_axes=axes)(x_in, w_in)
        want = np.stack([f(xs[i] if axes[0] == 0 else xs[0], ws[i] if axes[1] == 0 else ws[0])
                         for i in range(3)])
        close(got, want)
    a, v = r.normal(size=(4, 7)), r.normal(size=(4, 3)) + 1j
    close(T.vmap(lambda p, q: tnp.correlate(p, q, "full"))(a, v),
          np.stack([np.correlate(p, q, "full") for p, q in zip(a, v)]))
