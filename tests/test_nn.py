"""transforms.nn (jax.nn) and transforms.nn.initializers: values against NumPy/SciPy formulas
and JAX outputs recorded as literals; NaN propagation; derivatives by finite differences; vmap
against a loop; jit against eager."""
import numpy as np
import pytest
from scipy import special

import fnn
import transforms as T
import transforms.numpy as tnp
from transforms import nn, random
from transforms.nn import initializers as init
from transforms.test_util import check_grads

X = np.array([-7.0, -4.0, -1.5, -0.6, -0.2, 0.3, 0.9, 1.7, 3.2, 6.5, 30.0])
A, S = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

REF = {
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "sigmoid": special.expit,
    "log_sigmoid": lambda x: -np.logaddexp(0, -x),
    "softplus": lambda x: np.logaddexp(x, 0),
    "soft_sign": lambda x: x / (np.abs(x) + 1),
    "silu": lambda x: x * special.expit(x),
    "swish": lambda x: x * special.expit(x),
    "gelu": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "celu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "selu": lambda x: S * np.where(x > 0, x, A * np.expm1(np.minimum(x, 0))),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
    "hard_tanh": lambda x: np.clip(x, -1, 1),
    "hard_sigmoid": lambda x: np.clip(x + 3, 0, 6) / 6,
    "hard_silu": lambda x: x * np.clip(x + 3, 0, 6) / 6,
    "hard_swish": lambda x: x * np.clip(x + 3, 0, 6) / 6,
    "mish": lambda x: x * np.tanh(np.logaddexp(x, 0)),
    "squareplus": lambda x: (x + np.sqrt(x * x + 4)) / 2,
    "tanh": np.tanh,
}
SMOOTH = {"sigmoid", "log_sigmoid", "softplus", "silu", "swish", "gelu", "mish", "squareplus",
          "tanh", "soft_sign"}


@pytest.mark.parametrize("name", sorted(REF))
def test_values_dtypes_and_nan(name):
    f = getattr(nn, name)
    np.testing.assert_allclose(f(X), REF[name](X), rtol=1e-12, atol=1e-12)
    out = f(X.astype(np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, REF[name](X), rtol=3e-6, atol=3e-6)
    assert np.isnan(f(np.array([np.nan, 1.0]))[0]), f"{name}(nan) must be nan"
    if name in ("relu", "relu6", "hard_tanh"):
        assert T.grad(f)(0.0 if name != "hard_tanh" else 5.0) == 0.0


def test_gelu_exact_keeps_the_negative_tail():
    # 0.5 x (1 + erf(x / sqrt 2)) cancels for x << 0; the erfc form keeps full precision
    x = np.array([-30.0, -20.0, -8.0, -1.0, 0.0, 0.5, 3.0])
    want = 0.5 * x * special.erfc(-x / np.sqrt(2))
    for f in (lambda x: nn.gelu(x, approximate=False),
              T.jit(lambda x: nn.gelu(x, approximate=False))):
        np.testing.assert_allclose(f(x), want, rtol=1e-13, atol=0)
    got32 = T.jit(lambda x: nn.gelu(x, approximate=False))(x.astype(np.float32))
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32[2:], want[2:], rtol=2e-6, atol=0)


def test_gelu_derivative_rule_matches_the_formula_eager_jit_and_vmap():
    """gelu differentiates through its derivative written out: gradients equal (to rounding)
    those of the plain formula, eagerly and under jit, in float64 and float32, both
    approximations, far tails included; second derivatives by finite differences; a jitted
    gradient of an MLP-sized activation saves one array for the backward pass, not five."""
    c = np.sqrt(2 / np.pi)
    d_tanh = lambda x: (0.5 * (1 + np.tanh(c * (x + 0.044715 * x ** 3))) + 0.5 * x  # noqa
                        * (1 - np.tanh(c * (x + 0.044715 * x ** 3)) ** 2)
                        * c * (1 + 3 * 0.044715 * x ** 2))
    d_erf = lambda x: 0.5 * special.erfc(-x / np.sqrt(2)) + x * np.exp(-x * x / 2) / np.sqrt(  # noqa
        2 * np.pi)
    x = np.array([-30.0, -9.0, -3.0, -1.2, -0.3, 0.0, 0.4, 1.1, 2.5, 8.0, 40.0])
    for approx, want in ((True, d_tanh(x)), (False, d_erf(x))):
        f = lambda v: tnp.sum(nn.gelu(v, approximate=approx))  # noqa: E731
        for dt, tol in ((np.float64, 1e-13), (np.float32, 2e-6)):
            xs = x.astype(dt)
            for g in (T.grad(f)(xs), T.jit(T.grad(f))(xs),
                      T.vmap(T.grad(lambda v: nn.gelu(v, approximate=approx)))(xs)):
                assert np.asarray(g).dtype == dt
                np.testing.assert_allclose(g, want, rtol=tol, atol=tol)
            np.testing.assert_allclose(T.jit(lambda v: nn.gelu(v, approximate=approx))(xs),
                                       nn.gelu(xs, approximate=approx), rtol=tol, atol=tol)
        check_grads(lambda v: nn.gelu(v, approximate=approx), (x[2:9] + 0.05,), order=2)
    # reverse mode keeps one array from the forward pass (the derivative), not five: count
    # the values computed from x alone that the cotangent's equations read
    h = np.ones((16, 8), np.float32)
    jaxpr = T.make_jaxpr(lambda v, g: T.vjp(nn.gelu, v)[1](g))(h, h).jaxpr
    on_g = {id(jaxpr.invars[1])}
    saved = set()
    for e in jaxpr.eqns:
        ins = [v for v in e.invars if hasattr(v, "aval")]
        if any(id(v) in on_g for v in ins):
            saved |= {id(v) for v in ins if id(v) not in on_g and v.aval.shape == h.shape
                      and v is not jaxpr.invars[0]}
            on_g |= {id(v) for v in e.outvars}
    assert len(saved) == 1, len(saved)


def test_softmax_derivative_rule_matches_the_formula():
    """softmax differentiates through y (dx - sum(y dx)) (as JAX's): gradients equal the
    derivative of exp(x) / sum(exp(x)) (eager, jit, vmap; float64 and float32; axis tuples;
    a masked-out logit of -1e30), second order by finite differences, and reverse mode keeps
    one array of x's size for the backward pass."""
    x = np.random.default_rng(1).standard_normal((3, 4, 5))
    x[1, 2, 0] = -1e30
    c = np.random.default_rng(2).standard_normal((3, 4, 5))

    def want_grad(x, axis):
        y = np.exp(x - x.max(axis, keepdims=True))
        y /= y.sum(axis, keepdims=True)
        return y * (c - (y * c).sum(axis, keepdims=True))

    for axis in (-1, 0, (1, 2)):
        f = lambda v: tnp.sum(nn.softmax(v, axis=axis) * c)  # noqa: E731
        want = want_grad(x, axis)
        for dt, tol in ((np.float64, 1e-12), (np.float32, 2e-6)):
            xs = x.astype(dt)
            for g in (T.grad(f)(xs), T.jit(T.grad(f))(xs)):
                assert np.asarray(g).dtype == dt
                np.testing.assert_allclose(g, want, rtol=tol, atol=tol)
        gv = T.vmap(T.grad(lambda v, w: tnp.sum(nn.softmax(v) * w)))(x, c)
        np.testing.assert_allclose(gv, want_grad(x, -1), rtol=1e-12, atol=1e-12)
    check_grads(lambda v: nn.softmax(v, axis=1), (x[0],), order=2)
    h = np.ones((4, 6), np.float32)
    jaxpr = T.make_jaxpr(lambda v, g: T.vjp(nn.softmax, v)[1](g))(h, h).jaxpr
    on_g, saved = {id(jaxpr.invars[1])}, set()
    for e in jaxpr.eqns:
        ins = [v for v in e.invars if hasattr(v, "aval")]
        if any(id(v) in on_g for v in ins):
            saved |= {id(v) for v in ins if id(v) not in on_g and v.aval.shape == h.shape
                      and v is not jaxpr.invars[0]}
            on_g |= {id(v) for v in e.outvars}
    assert len(saved) == 1, len(saved)


def test_gelu_exact_celu_alpha_and_jax_literals():
    np.testing.assert_allclose(nn.gelu(X, approximate=False),
                               0.5 * X * special.erfc(-X / np.sqrt(2)), rtol=1e-12)
    np.testing.assert_allclose(nn.celu(X, alpha=2.0),
                               np.where(X > 0, X, 2 * np.expm1(np.minimum(X, 0) / 2)), rtol=1e-12)
    x = np.array([-1.0, 0.0, 1.0], np.float32)
    # jax.nn values (jax 0.10, CPU)
    np.testing.assert_allclose(nn.selu(x), [-1.1113307, 0.0, 1.050701], rtol=1e-6)
    np.testing.assert_allclose(T.vmap(T.grad(nn.selu))(x), [S * A * np.exp(-1), S * A, S],
                               rtol=3e-6)
    np.testing.assert_allclose(T.vmap(T.grad(nn.hard_silu))(x), [1 / 6, 0.5, 0.8333334],
                               rtol=1e-6)
    np.testing.assert_allclose(nn.log1mexp(np.array([0.1, 0.7, 5.0], np.float32)),
                               [-2.3521686, -0.686341, -0.00676075], rtol=1e-6)
    np.testing.assert_allclose(nn.sparse_plus(np.array([-2.0, 0.0, 0.5, 3.0])),
                               [0.0, 0.25, 0.5625, 3.0])


@pytest.mark.parametrize("name", sorted(REF))
def test_grads(name):
    x = np.array([-2.3, -0.6, 0.4, 1.7, 7.5])          # away from kinks
    check_grads(getattr(nn, name), (x,), order=2 if name in SMOOTH else 1)


def test_softmax_family():
    rng = np.random.RandomState(0)
    z = rng.randn(3, 5)
    e = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(nn.softmax(z), e / e.sum(1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(nn.log_softmax(z, axis=0), z - special.logsumexp(z, 0, keepdims=True),
                               rtol=1e-12)
    np.testing.assert_allclose(nn.logsumexp(z, axis=1), special.logsumexp(z, 1), rtol=1e-12)
    b = np.array([1.0, -2.0, 0.5, 1.0, 0.1])
    val, sign = nn.logsumexp(z, axis=1, b=b, return_sign=True)
    ref, rsign = special.logsumexp(z, 1, b=b, return_sign=True)
    np.testing.assert_allclose(val, ref, rtol=1e-12)
    np.testing.assert_allclose(sign, rsign)
    np.testing.assert_allclose(nn.logmeanexp(z, axis=1), special.logsumexp(z, 1) - np.log(5),
                               rtol=1e-12)
    m = z > -0.3
    sm = nn.softmax(z, where=m)
    em = np.where(m, np.exp(z), 0)
    np.testing.assert_allclose(sm, em / em.sum(1, keepdims=True), rtol=1e-12)
    m2 = np.array([[True, False], [False, False]])          # a fully masked row (JAX: zeros)
    np.testing.assert_array_equal(nn.softmax(np.ones((2, 2)), where=m2), [[1, 0], [0, 0]])
    np.testing.assert_array_equal(nn.log_softmax(np.ones((2, 2)), where=m2),
                                  [[0, -np.inf], [-np.inf, -np.inf]])
    np.testing.assert_array_equal(
        T.grad(lambda x: nn.softmax(x, where=m2)[0, 0] + nn.softmax(x, where=m2)[1, 0])(
            np.ones((2, 2))), np.zeros((2, 2)))
    lsm = nn.log_softmax(z, where=m)
    assert np.all(np.isneginf(lsm[~m]))
    np.testing.assert_allclose(lsm[m], (z - np.log(em.sum(1, keepdims=True)))[m], rtol=1e-12)
    check_grads(lambda z: nn.softmax(z, axis=0), (z,), order=2)
    check_grads(lambda z: nn.logsumexp(z, axis=1), (z,), order=2)
    # -inf entries get zero derivative
    g = T.grad(lambda z: nn.logsumexp(z))(np.array([0.0, -np.inf, 1.0]))
    np.testing.assert_allclose(g, special.softmax([0.0, -np.inf, 1.0]))


def test_standardize_glu_one_hot():
    rng = np.random.RandomState(1)
    z = rng.randn(4, 6)
    mu, var = z.mean(-1, keepdims=True), z.var(-1, keepdims=True)
    np.testing.assert_allclose(nn.standardize(z), (z - mu) / np.sqrt(var + 1e-5), rtol=1e-10)
    np.testing.assert_allclose(nn.standardize(z, axis=0, algorithm="stable"),
                               (z - z.mean(0)) / np.sqrt(z.var(0) + 1e-5), rtol=1e-10)
    np.testing.assert_allclose(nn.standardize(z, mean=0.0, variance=4.0), z / np.sqrt(4 + 1e-5))
    check_grads(nn.standardize, (z,), order=1)
    np.testing.assert_allclose(nn.glu(z), z[:, :3] * special.expit(z[:, 3:]), rtol=1e-12)
    np.testing.assert_allclose(nn.glu(z, axis=0), z[:2] * special.expit(z[2:]), rtol=1e-12)
    with pytest.raises(ValueError):
        nn.glu(z[:, :5])
    check_grads(nn.glu, (z,), order=2)
    oh = nn.one_hot(np.array([0, 2, 1, 5, -1]), 3)
    assert oh.dtype == np.float32            # JAX's default float (x64 off)
    np.testing.assert_array_equal(oh, [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 0], [0, 0, 0]])
    assert nn.one_hot(np.array([1, 2]), 4, axis=0).shape == (4, 2)
    assert nn.one_hot(np.array([1]), 4, dtype=np.int32).dtype == np.int32
    try:
        T.config.update("jax_enable_x64", True)
        assert nn.one_hot(np.array([1]), 2).dtype == np.float64
        assert init.zeros(None, (2,)).dtype == np.float64
    finally:
        T.config.update("jax_enable_x64", False)


def _all_activations(x):
    outs = [getattr(nn, n)(x) for n in sorted(REF)]
    outs += [nn.softmax(x), nn.log_softmax(x), nn.logsumexp(x), nn.standardize(x), nn.glu(x),
             nn.gelu(x, approximate=False), nn.celu(x, 0.5), nn.sparse_sigmoid(x)]
    return outs


def test_vmap_against_loop_and_jit_against_eager(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(tmp_path))
    xs = np.random.RandomState(2).randn(3, 6) * 3
    batched = T.vmap(_all_activations)(xs)
    for i in range(3):
        for b, e in zip(batched, _all_activations(xs[i])):
            np.testing.assert_allclose(b[i], e, rtol=1e-12, atol=1e-12)
    jitted = T.jit(_all_activations)(xs[0])
    for j, e in zip(jitted, _all_activations(xs[0])):
        np.testing.assert_allclose(j, e, rtol=1e-10, atol=1e-12)
    gj = T.jit(T.grad(lambda x: sum(tnp.sum(o) for o in _all_activations(x))))(xs[0])
    ge = T.grad(lambda x: sum(tnp.sum(o) for o in _all_activations(x)))(xs[0])
    np.testing.assert_allclose(gj, ge, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(T.jit(nn.relu)(np.array([np.nan, -1.0, 2.0])), [np.nan, 0, 2])


def test_fnn_reexports_the_same_functions():
    assert fnn.relu is nn.relu and fnn.activations.softmax is nn.softmax
    assert fnn.initializers.glorot_uniform is init.glorot_uniform


KEY = random.key(0)


@pytest.mark.parametrize("name,var", [
    ("glorot_uniform", 2 / (300 + 200)), ("glorot_normal", 2 / (300 + 200)),
    ("xavier_uniform", 2 / 500), ("xavier_normal", 2 / 500), ("he_uniform", 2 / 300),
    ("he_normal", 2 / 300), ("kaiming_uniform", 2 / 300), ("kaiming_normal", 2 / 300),
    ("lecun_uniform", 1 / 300), ("lecun_normal", 1 / 300)])
def test_variance_scaling_family(name, var):
    w = getattr(init, name)()(KEY, (300, 200))
    assert w.shape == (300, 200) and w.dtype == np.float32
    assert abs(w.var() / var - 1) < 0.03
    assert abs(w.mean()) < 0.01 * np.sqrt(var) * 10
    assert getattr(init, name)()(KEY, (3, 2), np.float64).dtype == np.float64
    if name.endswith("uniform"):
        assert np.abs(w).max() <= np.sqrt(3 * var) + 1e-6


def test_simple_initializers():
    assert init.zeros(KEY, (2, 3)).dtype == np.float32 and not init.zeros(KEY, (2, 3)).any()
    np.testing.assert_array_equal(init.ones(KEY, (2,), np.float64), [1.0, 1.0])
    np.testing.assert_array_equal(init.constant(-0.5)(KEY, (2,)), [-0.5, -0.5])
    w = init.normal(0.5)(KEY, (20000,))
    assert abs(w.std() - 0.5) < 0.01 and w.dtype == np.float32
    u = init.uniform(2.0)(KEY, (20000,))
    assert 0 <= u.min() and u.max() < 2.0 and abs(u.mean() - 1.0) < 0.02
    t = init.truncated_normal(1.0)(KEY, (20000,))
    assert np.abs(t).max() <= 2.0 and abs(t.std() - 0.8796) < 0.02
    v = init.variance_scaling(1.0, "fan_geo_avg", "normal")(KEY, (400, 100))
    assert abs(v.var() * 200 - 1) < 0.05


@pytest.mark.usefixtures("jax_x32")
@pytest.mark.parametrize("name", ["glorot_normal", "glorot_uniform", "he_normal", "lecun_normal",
                                  "lecun_uniform"])
def test_variance_scaling_draws_equal_jax_bit_for_bit(name):
    """The PRNG is JAX's and the scale factor is rounded as JAX rounds it (in the draw's
    dtype), so the same key gives JAX's weights exactly (stax's parameters rely on it)."""
    jax = pytest.importorskip("jax")
    theirs = getattr(jax.nn.initializers, name)()
    for seed, shape in [(0, (3, 4)), (3, (3, 3, 3, 4))]:   # (JAX compiles once per shape)
        np.testing.assert_array_equal(
            getattr(init, name)()(random.PRNGKey(seed), shape),
            np.asarray(theirs(jax.random.PRNGKey(seed), shape)), err_msg=f"{shape}")


def test_orthogonal_and_delta_orthogonal():
    for shape in [(6, 4), (4, 6), (3, 3, 5)]:
        w = init.orthogonal(scale=2.0)(KEY, shape)
        assert w.shape == shape and w.dtype == np.float32
        m = w.reshape(-1, shape[-1])
        g = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
        np.testing.assert_allclose(g, 4 * np.eye(g.shape[0]), atol=1e-5)
    w = init.orthogonal(column_axis=0)(KEY, (3, 5))
    np.testing.assert_allclose(w @ w.T, np.eye(3), atol=1e-6)
    d = init.delta_orthogonal()(KEY, (3, 3, 4, 4))
    np.testing.assert_allclose(d[1, 1].T @ d[1, 1], np.eye(4), atol=1e-6)
    assert np.count_nonzero(d) == np.count_nonzero(d[1, 1])
    with pytest.raises(ValueError):
        init.delta_orthogonal()(KEY, (3, 3, 5, 4))


def test_initializers_jit_and_vmap_over_keys(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(tmp_path))
    f = init.he_normal()
    eager = f(KEY, (4, 3))
    np.testing.assert_allclose(T.jit(lambda k: f(k, (4, 3)))(KEY), eager, rtol=1e-6)
    keys = random.split(KEY, 3)
    batched = T.vmap(lambda k: init.glorot_uniform()(k, (4, 3)))(keys)
    for i in range(3):
        np.testing.assert_allclose(batched[i], init.glorot_uniform()(keys[i], (4, 3)), rtol=1e-6)


def _np_attention(q, k, v, bias=None, keep=None, scale=None):
    """First-principles reference: per batch b, query head n (kv head n // G), position t."""
    B, T, N, H = q.shape
    S, K = k.shape[1], k.shape[2]
    G = N // K
    scale = 1 / np.sqrt(H) if scale is None else scale
    out = np.zeros((B, T, N, H))
    for b in range(B):
        for n in range(N):
            lg = q[b, :, n] @ k[b, :, n // G].T * scale
            if bias is not None:
                lg = lg + np.broadcast_to(bias, (B, N, T, S))[b, n]
            if keep is not None:
                lg = np.where(np.broadcast_to(keep, (B, N, T, S))[b, n], lg,
                              -0.7 * np.finfo(lg.dtype).max)
            p = np.exp(lg - lg.max(-1, keepdims=True))
            out[b, :, n] = (p / p.sum(-1, keepdims=True)) @ v[b, :, n // G]
    return out


def test_dot_product_attention(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(tmp_path))
    r = np.random.default_rng(3)
    q, k, v = r.normal(size=(2, 4, 6, 8)), r.normal(size=(2, 5, 3, 8)), r.normal(size=(2, 5, 3, 8))
    bias = r.normal(size=(2, 6, 4, 5))
    mask = r.uniform(size=(2, 1, 4, 5)) > 0.3
    causal = np.arange(5)[None, :] <= np.arange(4)[:, None]
    att = nn.dot_product_attention
    np.testing.assert_allclose(att(q, k, v), _np_attention(q, k, v), rtol=1e-10)
    np.testing.assert_allclose(att(q, k, v, bias, mask), _np_attention(q, k, v, bias, mask),
                               rtol=1e-10)
    np.testing.assert_allclose(att(q, k, v, is_causal=True, scale=0.5),
                               _np_attention(q, k, v, keep=causal, scale=0.5), rtol=1e-10)
    win = (np.arange(5)[None, :] >= np.arange(4)[:, None] - 1) & \
        (np.arange(5)[None, :] <= np.arange(4)[:, None])
    np.testing.assert_allclose(att(q, k, v, local_window_size=(1, 0)),
                               _np_attention(q, k, v, keep=win), rtol=1e-10)
    qs, ks = np.array([2, 4]), np.array([5, 3])
    keep = (np.arange(4)[None, None, :, None] < qs[:, None, None, None]) & \
        (np.arange(5)[None, None, None, :] < ks[:, None, None, None])
    want = _np_attention(q, k, v, keep=keep) * (np.arange(4)[None, :, None, None]
                                                 < qs[:, None, None, None])
    np.testing.assert_allclose(att(q, k, v, query_seq_lengths=qs, key_value_seq_lengths=ks),
                               want, rtol=1e-10)
    np.testing.assert_allclose(att(q[0], k[0], v[0]), _np_attention(q[:1], k[:1], v[:1])[0],
                               rtol=1e-10)
    out, lse = att(q, k, v, return_residual=True)
    assert lse.shape == (2, 4, 6)
    # float32 stays float32 (causal, one kv head shared by two query heads)
    qf, kf, vf = (np.asarray(a, np.float32) for a in (q, k, v))
    got = att(qf[:1, :2, :2, :2], kf[:1, :3, :1, :2], vf[:1, :3, :1, :2], is_causal=True)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, _np_attention(q[:1, :2, :2, :2], k[:1, :3, :1, :2],
                                                  v[:1, :3, :1, :2], keep=causal[:2, :3]),
                               rtol=2e-5, atol=2e-6)
    f = lambda q, k, v: att(q, k, v, bias, is_causal=True)
    check_grads(lambda q, k, v: att(q, k, v, is_causal=True), (q[:1, :3, :3, :4],
                k[:1, :5, :3, :4], v[:1, :5, :3, :4]), order=1)
    np.testing.assert_allclose(T.jit(f)(q, k, v), f(q, k, v), rtol=1e-10)
    batched = T.vmap(lambda q, k, v: att(q, k, v, is_causal=True))(q, k, v)
    for i in range(2):
        np.testing.assert_allclose(batched[i], att(q[i], k[i], v[i], is_causal=True),
                                   rtol=1e-12)
