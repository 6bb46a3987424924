"""The register-blocked small gemm (backend/numba/small_gemm.py) and the batched products that
use it: values against NumPy in float32 and float64 for every transpose form, odd sizes that
leave row and column tails, padded leading dimensions and strided batch offsets; attention's
batched products under jit (forward, grad, vmap) against eager and the BLAS path.

Tolerances: the kernel sums k = 0..K-1 in order with one rounding per fused multiply-add, so
against a float64 reference a float32 result is within K * eps32 * sum|a||b| (checked as
rtol 1e-5 relative to sum|a||b|), a float64 result within 1e-13 of it."""
from __future__ import annotations

import numba
import numpy as np
import pytest

import fnn
import transforms as T
import transforms.numpy as tnp
from transforms.backend.numba import small_gemm as sg

_CACHE = {}


def _batched(ta, tb, m, n, k, fresh=False):
    """A compiled loop calling small_gemm once per batch entry, sizes as literals (as the
    generated code does); offsets and leading dimensions are run-time arguments. `fresh`:
    compiled anew (not shared with other tests)."""
    key = (ta, tb, m, n, k)
    if fresh or key not in _CACHE:
        src = (f"def f(nb, a, sa, lda, b, sb, ldb, c, sc, ldc):\n"
               f"    for i in range(nb):\n"
               f"        small_gemm({ta}, {tb}, {m}, {n}, {k}, a, 3 + i * sa, lda, "
               f"b, 5 + i * sb, ldb, c, 7 + i * sc, ldc)\n")
        g = {"small_gemm": sg.small_gemm}
        exec(src, g)
        if fresh:
            return numba.njit(g["f"])
        _CACHE[key] = numba.njit(g["f"])
    return _CACHE[key]


def _run(form, m, n, k, dtype, nb=3, pad=2, seed=0, fresh=False):
    """Operands stored with padded rows (ld = natural + pad) at offsets 3/5/7 of flat arrays,
    batch entries `sa` apart; returns (result, reference, bound of the rounding error)."""
    ta, tb = int(form[0] == "t"), int(form[1] == "t")
    rng = np.random.default_rng(seed)
    ar, ac = (k, m) if ta else (m, k)
    br, bc = (n, k) if tb else (k, n)
    lda, ldb, ldc = ac + pad, bc + pad, n + pad
    sa, sb, sc = ar * lda + 1, br * ldb + 2, m * ldc + 3
    a = rng.standard_normal(3 + nb * sa + 4).astype(dtype)
    b = rng.standard_normal(5 + nb * sb + 4).astype(dtype)
    sentinel = dtype(12345.0)
    c = np.full(7 + nb * sc + 4, sentinel, dtype)
    _batched(ta, tb, m, n, k, fresh)(nb, a, sa, lda, b, sb, ldb, c, sc, ldc)
    got, want, bound = [], [], []
    for i in range(nb):
        A = np.lib.stride_tricks.as_strided(a[3 + i * sa:], (ar, ac), (lda * a.itemsize,
                                                                        a.itemsize))
        B = np.lib.stride_tricks.as_strided(b[5 + i * sb:], (br, bc), (ldb * b.itemsize,
                                                                        b.itemsize))
        A = A.T if ta else A
        B = B.T if tb else B
        C = c[7 + i * sc:7 + i * sc + m * ldc].reshape(m, ldc)
        # the padding of each row of C is never written
        assert np.all(C[:, n:] == sentinel)
        got.append(C[:, :n].copy())
        want.append(A.astype(np.float64) @ B.astype(np.float64))
        bound.append(np.abs(A).astype(np.float64) @ np.abs(B).astype(np.float64))
    # nothing before the first or after the last entry is written
    assert np.all(c[:7] == sentinel) and np.all(c[7 + nb * sc - 3:] == sentinel)
    return np.stack(got), np.stack(want), np.stack(bound)


# every form and dtype at a size with a row tail (17 = 4 * 4 + 1) and column tails (70 =
# whole vectors + 4 + 2 lanes); attention's size; tiny sizes
_CASES = [(f, d, 17, 70, 9) for f in ("nn", "nt", "tn", "tt")
          for d in (np.float32, np.float64)] + [
    ("nn", np.float32, 64, 64, 32), ("nt", np.float32, 64, 64, 32),
    ("tn", np.float32, 64, 32, 64), ("nt", np.float64, 7, 13, 5), ("tt", np.float32, 1, 1, 1)]


@pytest.mark.parametrize("form, dtype, m, n, k", _CASES)
def test_small_gemm_values(form, dtype, m, n, k):
    got, want, bound = _run(form, m, n, k, dtype)
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    assert np.all(np.abs(got - want) <= rtol * bound + 1e-30), np.abs(got - want).max()


@pytest.mark.parametrize("vector_bytes, vecs", [(32, 2), (16, 2)])
@pytest.mark.parametrize("form", ["nn", "nt"])
def test_small_gemm_narrower_vectors(vector_bytes, vecs, form, monkeypatch):
    """The tiles CPUs without AVX-512 get (AVX2, SSE2 widths), compiled here by setting the
    module's width: every tail shape is still exact."""
    monkeypatch.setattr(sg, "VECTOR_BYTES", vector_bytes)
    monkeypatch.setattr(sg, "VECS", vecs)
    got, want, bound = _run(form, 11, 23, 7, np.float32, fresh=True)
    assert np.all(np.abs(got - want) <= 1e-5 * bound), np.abs(got - want).max()


def test_small_gemm_inner_loop_is_vector_fma():
    """LLVM keeps the tile in vector registers: the compiled loop has the full tile's fused
    multiply-adds on full-width registers (zmm with AVX-512, ymm with AVX2)."""
    import re
    from llvmlite import binding as llb
    feats = llb.get_host_cpu_features()
    if numba.config.CPU_NAME not in (None, "", "host") or not feats.get("fma"):
        pytest.skip("needs a host CPU with FMA")
    reg = {64: "zmm", 32: "ymm"}.get(sg.VECTOR_BYTES)
    if reg is None:
        pytest.skip("no wide vectors")
    _run("nn", 64, 64, 32, np.float32)
    asm = next(iter(_CACHE[(0, 0, 64, 64, 32)].inspect_asm().values()))
    fmas = re.findall(r"vfmadd\w*ps\s+[^\n]*" + reg, asm)
    assert len(fmas) >= sg.ROWS * sg.VECS, asm[:2000]


def test_small_gemm_zero_contraction_writes_zeros():
    got, want, _ = _run("nn", 5, 9, 0, np.float32)
    assert np.all(got == 0) and np.all(want == 0)


def test_small_gemm_rejects_run_time_sizes():
    @numba.njit
    def f(m, a, b, c):
        sg.small_gemm(0, 0, m, 4, 4, a, 0, 4, b, 0, 4, c, 0, 4)
    x = np.zeros(16, np.float32)
    with pytest.raises(numba.core.errors.TypingError):
        f(4, x, x, x.copy())


def test_supported_bounds_scratch():
    assert sg.supported(64, 64, 32, 1, 4)
    assert not sg.supported(8, 1024, 64, 1, 4)       # B^T scratch too big for the stack
    assert sg.supported(8, 1024, 64, 0, 4)           # no scratch without a transposed B
    assert not sg.supported(8, 8, 8, 0, 2)


def test_small_gemm_max_env(monkeypatch):
    monkeypatch.setenv("NUMBAX_SMALL_GEMM_MAX", "0")
    assert sg.small_gemm_max() == 0
    monkeypatch.setenv("NUMBAX_SMALL_GEMM_MAX", "ten")
    with pytest.raises(ValueError, match="NUMBAX_SMALL_GEMM_MAX"):
        sg.small_gemm_max()


def _heads(x, h):
    """(B, T, H*D) -> (B, H, T, D): attention's split heads (strided batch operands)."""
    b, t, hd = x.shape
    return tnp.transpose(tnp.reshape(x, (b, t, h, hd // h)), (0, 2, 1, 3))


def _attn_loss(x, w):
    q = _heads(x @ w[0], 4)
    k = _heads(x @ w[1], 4)
    v = _heads(x @ w[2], 4)
    mask = np.tril(np.ones((x.shape[1], x.shape[1]), bool))
    out = fnn.dot_product_attention(q, k, v, mask=mask)[0]
    return tnp.sum(out ** 2)


def _inputs(dtype, b=3, t=12, d=20):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((b, t, d)).astype(dtype)
    w = (rng.standard_normal((3, d, d)) / np.sqrt(d)).astype(dtype)
    return x, w


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_attention_grad_jit_matches_eager_and_blas(dtype, monkeypatch):
    x, w = _inputs(dtype)
    g = T.grad(_attn_loss, argnums=(0, 1))
    eager = g(x, w)
    f = T.jit(g)
    assert "small_gemm" in f.lower(x, w).source
    fast = f(x, w)
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for a, e in zip(fast, eager):
        np.testing.assert_allclose(a, e, **tol)
    if dtype == np.float64:
        return
    # the same program with the kernel off: the BLAS loop, same values to rounding
    monkeypatch.setenv("NUMBAX_SMALL_GEMM_MAX", "0")
    fb = T.jit(lambda x, w: g(x, w))
    src = fb.lower(x, w).source
    assert "small_gemm" not in src and "batched BLAS gemm" in src
    for a, bl in zip(fast, fb(x, w)):
        np.testing.assert_allclose(a, bl, **tol)


def test_attention_vmap_jit_matches_loop():
    x, w = _inputs(np.float32, b=4)

    def one(xi):
        return _attn_loss(xi[None], w)
    got = T.jit(T.vmap(one))(x)
    want = np.array([float(one(x[i:i + 1][0])) for i in range(x.shape[0])])
    np.testing.assert_allclose(got, want, rtol=2e-5)


@pytest.mark.parametrize("shape", [(5, 3, 7, 9, 6), (2, 6, 33, 17, 5)])
def test_batched_matmul_odd_sizes(shape):
    b, h, m, k, n = shape
    rng = np.random.default_rng(2)
    x = rng.standard_normal((b, h, m, k))
    y = rng.standard_normal((b, h, n, k))
    f = T.jit(lambda x, y: (tnp.matmul(x, tnp.swapaxes(y, -1, -2)),
                            tnp.matmul(tnp.swapaxes(x, -1, -2), x)))
    assert "small_gemm" in f.lower(x, y).source
    got_nt, got_tn = f(x, y)
    np.testing.assert_allclose(got_nt, x @ np.swapaxes(y, -1, -2), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_tn, np.swapaxes(x, -1, -2) @ x, rtol=1e-12, atol=1e-12)


def _batched_threads(spec):
    src = (f"def f(nt, a, ao, b, bo, c, co):\n"
           f"    small_gemm_batched(\"{spec}\", nt, a, ao, b, bo, c, co)\n")
    g = {"small_gemm_batched": sg.small_gemm_batched}
    exec(src, g)
    return numba.njit(g["f"])


@pytest.mark.parametrize("form, dtype", [("nt", np.float32), ("tn", np.float64)])
def test_small_gemm_batched_threads(form, dtype):
    """Batch (5, 3) with strided operands (A's batch dims swapped in memory, B broadcast over
    the second batch dim, C padded): one thread and two (odd count: halves of 7 and 8)."""
    ta, tb = int(form[0] == "t"), int(form[1] == "t")
    m, n, k, p, q = 9, 21, 6, 5, 3
    rng = np.random.default_rng(3)
    ash = (k, m) if ta else (m, k)
    bsh = (n, k) if tb else (k, n)
    A = rng.standard_normal((q, p) + ash).astype(dtype)          # stored (q, p, ...)
    B = rng.standard_normal((p,) + bsh).astype(dtype)            # shared over q
    blk_a, blk_b = m * k, k * n
    ldc = n + 3
    spec = sg.batched_spec(ta, tb, m, n, k, ash[1], bsh[1], ldc, (p, q),
                           (blk_a, p * blk_a), (blk_b, 0), (q * m * ldc, m * ldc))
    f = _batched_threads(spec)
    opA = np.swapaxes(A, -1, -2) if ta else A
    opB = np.swapaxes(B, -1, -2) if tb else B
    want = np.einsum("qpmk,pkn->pqmn", opA.astype(np.float64), opB.astype(np.float64))
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    for nt in (1, 2):
        c = np.full(2 + p * q * m * ldc, 7.0, dtype)
        f(nt, np.concatenate([np.zeros(1, dtype), A.ravel()]), 1, B.ravel(), 0, c, 2)
        got = c[2:].reshape(p, q, m, ldc)
        assert np.all(got[..., n:] == 7.0) and np.all(c[:2] == 7.0)
        np.testing.assert_allclose(got[..., :n], want, rtol=rtol, atol=rtol * 10)


def test_attention_threaded_batched_product_matches_eager(monkeypatch):
    """Attention's size (64 x 64 x 32 per entry, 2**24 multiply-adds in all) takes the path
    that splits the batch over the runner's threads when NUMBAX_SMALL_GEMM_SPLIT asks for it
    (off by default); forced to two threads here."""
    from transforms.backend.numba import blas_threads
    q0 = np.zeros((8, 4, 64, 32), np.float32)
    default = T.jit(lambda q, k: tnp.matmul(q, tnp.swapaxes(k, -1, -2)))
    assert "small_gemm_batched" not in default.lower(q0, q0).source
    monkeypatch.setenv("NUMBAX_SMALL_GEMM_SPLIT", str(1 << 21))
    rng = np.random.default_rng(4)
    q, k = (rng.standard_normal((8, 4, 64, 32)).astype(np.float32) for _ in range(2))
    f = T.jit(lambda q, k: tnp.matmul(q, tnp.swapaxes(k, -1, -2)))
    assert "small_gemm_batched" in f.lower(q, k).source
    with blas_threads.forced(2):
        got = f(q, k)
    want = q.astype(np.float64) @ np.swapaxes(k, -1, -2).astype(np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
