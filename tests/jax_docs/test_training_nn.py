"""The ideas of JAX's "Training a simple neural network" tutorial, ported: an MLP kept as a list
of (W, b) pairs, a per-example `predict` batched with `vmap(in_axes=(None, 0))`, log-softmax
through `logsumexp`, one-hot targets, a jitted SGD update written as a list comprehension, and
the `jax.nn` functions and `jax.nn.initializers` such a program uses. Where JAX is importable
the same program runs in JAX too and the two must agree (the PRNG is JAX's bit for bit, so the
initial weights are the same); the rest is checked against hand values."""
import math

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import nn, random

try:
    import jax
    import jax.numpy as jnp
except ImportError:  # the JAX comparisons skip, the hand-checked ones still run
    jax = jnp = None

needs_jax = pytest.mark.skipif(jax is None, reason="JAX is not installed")
# other modules switch JAX to 64 bits when collected: compare with its 32-bit defaults
pytestmark = pytest.mark.usefixtures("jax_x32")


def _digits():
    """64-pixel digit images scaled to [0, 1] with labels 0..9 (scikit-learn's bundled set when
    installed, else ten Gaussian blobs of the same shape)."""
    try:
        from sklearn.datasets import load_digits
        d = load_digits()
        return (d.data / 16.0).astype(np.float32), d.target.astype(np.int32)
    except ImportError:
        r = np.random.default_rng(0)
        centres = r.uniform(size=(10, 64))
        y = r.integers(0, 10, size=600).astype(np.int32)
        x = centres[y] + 0.1 * r.normal(size=(600, 64))
        return x.astype(np.float32), y


X, Y = _digits()
X_TRAIN, Y_TRAIN, X_TEST, Y_TEST = X[:1000], Y[:1000], X[1000:], Y[1000:]
SIZES = [64, 32, 10]


# --- the tutorial's program, written once against a numpy-like module and its nn ----------

def make_program(np_mod, nn_mod, random_mod, jit, vmap, grad):
    def init_network_params(sizes, key, scale=0.1):
        keys = random_mod.split(key, len(sizes))
        params = []
        for m, n, k in zip(sizes[:-1], sizes[1:], keys):
            w_key, b_key = random_mod.split(k)
            params.append((scale * random_mod.normal(w_key, (n, m)),
                           scale * random_mod.normal(b_key, (n,))))
        return params

    def predict(params, image):
        act = image
        for w, b in params[:-1]:
            act = nn_mod.relu(np_mod.dot(w, act) + b)
        w, b = params[-1]
        logits = np_mod.dot(w, act) + b
        return logits - nn_mod.logsumexp(logits)

    batched_predict = vmap(predict, in_axes=(None, 0))

    def one_hot(labels, k, dtype=np.float32):
        return np_mod.array(labels[:, None] == np_mod.arange(k), dtype)

    def loss(params, images, targets):
        return -np_mod.mean(batched_predict(params, images) * targets)

    def accuracy(params, images, labels):
        return np_mod.mean(np_mod.argmax(batched_predict(params, images), axis=1) == labels)

    @jit
    def update(params, x, y, step_size):
        grads = grad(loss)(params, x, y)
        return [(w - step_size * dw, b - step_size * db)
                for (w, b), (dw, db) in zip(params, grads)]

    return dict(init=init_network_params, predict=predict, batched=batched_predict,
                one_hot=one_hot, loss=loss, accuracy=accuracy, update=update)


OURS = make_program(tnp, nn, random, T.jit, T.vmap, T.grad)


def _train(prog, key, epochs=6, batch=100, lr=5.0):
    params = prog["init"](SIZES, key)
    for _ in range(epochs):
        for i in range(0, len(X_TRAIN), batch):
            xb, yb = X_TRAIN[i:i + batch], Y_TRAIN[i:i + batch]
            params = prog["update"](params, xb, prog["one_hot"](yb, 10), np.float32(lr))
    return params


def test_mlp_tutorial_learns_digits():
    params0 = OURS["init"](SIZES, random.key(0))
    assert [(w.shape, b.shape) for w, b in params0] == [((32, 64), (32,)), ((10, 32), (10,))]
    assert all(w.dtype == np.float32 for w, _ in params0)
    before = float(OURS["accuracy"](params0, X_TEST, Y_TEST))
    params = _train(OURS, random.key(0))
    after = float(OURS["accuracy"](params, X_TEST, Y_TEST))
    assert before < 0.3 and after > 0.8, (before, after)
    # the training loss went down as well, and each row of predict is a log-distribution
    t = OURS["one_hot"](Y_TRAIN, 10)
    assert float(OURS["loss"](params, X_TRAIN, t)) < 0.5 * float(OURS["loss"](params0, X_TRAIN, t))
    logp = np.asarray(OURS["batched"](params, X_TEST[:5]))
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, rtol=1e-5)


def test_vmapped_predict_equals_hand_batched_matmuls():
    params = OURS["init"](SIZES, random.key(1))
    (w1, b1), (w2, b2) = [(np.asarray(w, np.float64), np.asarray(b, np.float64))
                          for w, b in params]
    h = np.maximum(X_TEST[:7] @ w1.T + b1, 0.0)
    logits = h @ w2.T + b2
    m = logits.max(axis=1, keepdims=True)
    expect = logits - (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))
    np.testing.assert_allclose(OURS["batched"](params, X_TEST[:7]), expect, rtol=1e-5, atol=1e-5)


def test_one_hot_by_comparison_matches_nn_one_hot():
    labels = np.array([3, 0, 9, 9])
    np.testing.assert_array_equal(OURS["one_hot"](labels, 10), nn.one_hot(labels, 10))
    np.testing.assert_array_equal(nn.one_hot(labels, 10)[0], np.eye(10)[3])
    # out-of-range labels (-1 or k) encode as all zeros, as in JAX
    np.testing.assert_array_equal(nn.one_hot(np.array([-1, 10]), 10), np.zeros((2, 10)))


@needs_jax
def test_mlp_tutorial_agrees_with_jax_step_by_step():
    theirs = make_program(jnp, jax.nn, jax.random, jax.jit, jax.vmap, jax.grad)
    p_ours, p_jax = OURS["init"](SIZES, random.key(0)), theirs["init"](SIZES, jax.random.key(0))
    for (a, b), (c, d) in zip(p_ours, p_jax):  # the same PRNG bits, so the same weights
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    for i in range(0, 300, 100):
        xb, tb = X_TRAIN[i:i + 100], np.eye(10, dtype=np.float32)[Y_TRAIN[i:i + 100]]
        np.testing.assert_allclose(OURS["loss"](p_ours, xb, tb), theirs["loss"](p_jax, xb, tb),
                                   rtol=1e-5)
        p_ours = OURS["update"](p_ours, xb, tb, np.float32(0.5))
        p_jax = theirs["update"](p_jax, xb, tb, np.float32(0.5))
        for (a, b), (c, d) in zip(p_ours, p_jax):
            np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(b, d, rtol=1e-4, atol=1e-6)
    assert float(OURS["accuracy"](p_ours, X_TEST, Y_TEST)) == pytest.approx(
        float(theirs["accuracy"](p_jax, X_TEST, Y_TEST)), abs=2.0 / len(X_TEST))


# --- jax.nn functions the tutorials use ----------------------------------------------------

ACTS = ["relu", "gelu", "sigmoid", "softplus", "silu", "log_sigmoid", "elu", "selu", "celu",
        "leaky_relu", "relu6", "hard_tanh", "hard_sigmoid", "hard_silu", "soft_sign", "mish",
        "squareplus", "sparse_plus", "sparse_sigmoid", "tanh"]
XA = np.random.default_rng(3).normal(size=(4, 6)) * 3


@needs_jax
@pytest.mark.parametrize("name", ACTS)
def test_activation_and_its_gradient_match_jax(name):
    ours, theirs = getattr(nn, name), getattr(jax.nn, name)
    with jax.enable_x64(True):
        np.testing.assert_allclose(ours(XA), theirs(XA), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(T.grad(lambda z: ours(z).sum())(XA),
                                   jax.grad(lambda z: theirs(z).sum())(XA), rtol=1e-10,
                                   atol=1e-12)
    x32 = XA.astype(np.float32)
    y = ours(x32)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, theirs(x32), rtol=2e-6, atol=1e-6)


KINKS = np.array([-6.0, -3.0, -1.0, 0.0, 1.0, 3.0, 6.0])  # where the piecewise ones switch


def test_derivatives_at_the_kinks_split_ties_as_jax():
    # at a kink JAX's max/min/clip give each side half of the derivative
    d = T.vmap(T.grad(nn.sparse_sigmoid))(KINKS)
    np.testing.assert_allclose(d, [0, 0, 0.25, 0.5, 0.25, 0, 0])
    d2 = T.vmap(T.grad(T.grad(lambda x: nn.celu(x, 2.0))))(KINKS)
    np.testing.assert_allclose(d2, [np.exp(-3.0) / 2, np.exp(-1.5) / 2, np.exp(-0.5) / 2,
                                    1 / 8, 0, 0, 0], rtol=1e-12)
    np.testing.assert_allclose(T.vmap(T.grad(nn.celu))(KINKS)[2:5], [np.exp(-1.0), 1, 1])
    np.testing.assert_allclose(nn.celu(np.array([-1e5, 1e5])), [-1.0, 1e5])  # no overflow


PIECEWISE = ["relu", "relu6", "leaky_relu", "elu", "celu", "selu", "hard_tanh", "hard_sigmoid",
             "hard_silu", "soft_sign", "sparse_plus", "sparse_sigmoid"]


@needs_jax
@pytest.mark.parametrize("name", PIECEWISE)
def test_first_and_second_derivatives_at_kinks_match_jax(name):
    ours, theirs = getattr(nn, name), getattr(jax.nn, name)
    with jax.enable_x64(True):
        np.testing.assert_allclose(T.vmap(T.grad(ours))(KINKS),
                                   jax.vmap(jax.grad(theirs))(KINKS), atol=1e-12)
        np.testing.assert_allclose(T.vmap(T.grad(T.grad(ours)))(KINKS),
                                   jax.vmap(jax.grad(jax.grad(theirs)))(KINKS), atol=1e-10)


def test_integer_inputs_keep_jax_result_dtypes():
    xi = np.array([[-2, 0, 3], [1, 7, -1]], np.int32)
    # relu / hard_tanh are clamps with integer bounds: integers stay integers
    for name, expect in (("relu", [[0, 0, 3], [1, 7, 0]]), ("hard_tanh", [[-1, 0, 1], [1, 1, -1]])):
        y = getattr(nn, name)(xi)
        assert y.dtype == np.int32, name
        np.testing.assert_array_equal(y, expect)
    # relu6's bound is the float 6., so integers come out as floats
    y = nn.relu6(xi)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [[0, 0, 3], [1, 6, 0]])
    assert nn.hard_sigmoid(xi).dtype == np.float32 and nn.gelu(xi).dtype == np.float32


@needs_jax
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # JAX's own int -> float casts
def test_integer_input_dtypes_match_jax():
    xi = np.array([[-2, 0, 3], [1, 7, -1]], np.int32)
    for name in ACTS + ["softmax", "log_softmax", "logsumexp", "standardize"]:
        try:
            theirs = getattr(jax.nn, name)(xi)
        except TypeError:  # JAX refuses integers for the logistic family; we convert
            continue
        ours = getattr(nn, name)(xi)
        assert np.asarray(ours).dtype == np.asarray(theirs).dtype, name
        np.testing.assert_allclose(np.asarray(ours, np.float64), np.asarray(theirs, np.float64),
                                   rtol=2e-6, atol=1e-6, err_msg=name)


@needs_jax
@pytest.mark.parametrize("kw", [{}, {"axis": 0}, {"axis": (0, 1)}, {"where": XA > -1}])
def test_softmax_log_softmax_and_logsumexp_match_jax(kw):
    with jax.enable_x64(True):
        for name in ("softmax", "log_softmax"):
            np.testing.assert_allclose(getattr(nn, name)(XA, **kw),
                                       getattr(jax.nn, name)(XA, **kw), rtol=1e-12)
        lkw = {"b": np.abs(XA)} if "where" in kw else kw
        np.testing.assert_allclose(nn.logsumexp(XA, **lkw), jax.nn.logsumexp(XA, **lkw),
                                   rtol=1e-12)
        np.testing.assert_allclose(
            T.grad(lambda z: (nn.softmax(z, **kw) * XA).sum())(XA),
            jax.grad(lambda z: (jax.nn.softmax(z, **kw) * XA).sum())(XA), rtol=1e-10,
            atol=1e-12)


def test_logsumexp_is_stable_and_signed():
    big = np.array([1000.0, 1000.0])
    assert float(nn.logsumexp(big)) == pytest.approx(1000.0 + math.log(2.0))
    assert float(nn.logsumexp(np.array([-np.inf, -np.inf]))) == -np.inf
    # b weights the terms, return_sign gives log|sum| and its sign: log|e^1 - 2 e^0|
    v, s = nn.logsumexp(np.array([1.0, 0.0]), b=np.array([1.0, -2.0]), return_sign=True)
    assert float(v) == pytest.approx(math.log(abs(math.e - 2.0))) and float(s) == 1.0
    np.testing.assert_allclose(nn.softmax(np.array([-np.inf, 0.0, 0.0])), [0.0, 0.5, 0.5])


def test_gelu_exact_and_approximate_hand_values():
    x = np.array([-1.0, 0.5, 2.0])
    exact = x * 0.5 * (1 + np.array([math.erf(v / math.sqrt(2)) for v in x]))
    approx = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    np.testing.assert_allclose(nn.gelu(x, approximate=False), exact, rtol=1e-12)
    np.testing.assert_allclose(nn.gelu(x), approx, rtol=1e-12)  # approximate=True by default


# --- jax.nn.initializers: (key, shape, dtype) and the variance conventions -----------------

INITS = {  # name -> (scale, fan) of variance_scaling: Var = scale / fan
    "glorot_uniform": (1.0, "avg"), "glorot_normal": (1.0, "avg"),
    "he_uniform": (2.0, "in"), "he_normal": (2.0, "in"),
    "lecun_uniform": (1.0, "in"), "lecun_normal": (1.0, "in"),
    "xavier_normal": (1.0, "avg"), "kaiming_uniform": (2.0, "in")}


@pytest.mark.parametrize("name", sorted(INITS))
def test_initializer_variance_convention(name):
    scale, fan = INITS[name]
    shape = (3, 3, 40, 60)  # an HWIO conv kernel: receptive field 9
    fan_in, fan_out = 9 * 40, 9 * 60
    expect = scale / (fan_in if fan == "in" else (fan_in + fan_out) / 2)
    w = getattr(nn.initializers, name)()(random.key(0), shape)
    assert w.shape == shape and w.dtype == np.float32
    assert np.var(np.asarray(w, np.float64)) == pytest.approx(expect, rel=0.05)
    w64 = getattr(nn.initializers, name)()(random.key(0), shape, np.float64)  # dtype positional
    assert w64.dtype == np.float64


@needs_jax
@pytest.mark.parametrize("name", sorted(INITS) + ["orthogonal", "normal", "uniform",
                                                  "truncated_normal"])
def test_initializer_draws_the_same_weights_as_jax(name):
    for shape in ((5, 4), (3, 3, 2, 6)):
        ours = getattr(nn.initializers, name)()(random.key(7), shape)
        theirs = getattr(jax.nn.initializers, name)()(jax.random.key(7), shape)
        assert ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=1e-7)


def test_initializer_under_jit_with_a_traced_key_draws_the_same_weights():
    init = nn.initializers.he_normal()
    f = T.jit(lambda k: init(k, (5, 4)))
    np.testing.assert_allclose(f(random.key(7)), init(random.key(7), (5, 4)), rtol=1e-6,
                               atol=1e-7)


def test_fans_of_a_vector_need_explicit_axes_as_in_jax():
    with pytest.raises(ValueError, match=r"1-D weights shape \(3,\).*in_axis"):
        nn.initializers.glorot_normal()(random.key(0), (3,))
    # explicit axes make the fans defined: in = out = 3, receptive 3 / 3 / 3
    assert nn.initializers.compute_fans((3,), in_axis=0, out_axis=0) == (1.0, 1.0)
    w = nn.initializers.variance_scaling(1.0, "fan_in", "normal", in_axis=0, out_axis=0)(
        random.key(0), (3,))
    np.testing.assert_allclose(w, random.normal(random.key(0), (3,)), rtol=1e-6)


@pytest.mark.parametrize("dist", ["normal", "uniform", "truncated_normal"])
def test_complex_weights_have_the_requested_variance(dist):
    init = nn.initializers.variance_scaling(2.0, "fan_in", dist)
    w = np.asarray(init(random.key(1), (200, 300), np.complex64))
    assert w.dtype == np.complex64
    # E|w|^2 = scale / fan_in; the phase is uniform, so the mean is ~0
    assert np.mean(np.abs(w) ** 2) == pytest.approx(2.0 / 200, rel=0.03)
    assert abs(np.mean(w)) < 0.01
    if dist == "uniform":  # a disk of radius sqrt(2 * variance)
        assert np.abs(w).max() <= math.sqrt(2 * 2.0 / 200) * (1 + 1e-6)
    if dist == "truncated_normal":  # modulus truncated at 2 standard deviations (pre-scaling)
        std = math.sqrt(2.0 / 200) / 0.95311164380491208
        assert np.abs(w).max() <= 2 * std * (1 + 1e-6)
    with pytest.raises(TypeError, match="floating or complex"):
        init(random.key(1), (2, 2), np.int32)


def test_complex_normal_draw_is_standard():
    z = np.asarray(random.normal(random.key(2), (20000,), np.complex128))
    assert z.dtype == np.complex128
    assert np.mean(np.abs(z) ** 2) == pytest.approx(1.0, rel=0.03)
    assert np.var(z.real) == pytest.approx(0.5, rel=0.05)
    assert abs(np.mean(z.real * z.imag)) < 0.02


@needs_jax
def test_complex_initializers_match_jax():
    for dist in ("normal", "uniform", "truncated_normal"):
        ours = nn.initializers.variance_scaling(1.0, "fan_avg", dist)(
            random.key(4), (6, 5), np.complex64)
        theirs = jax.nn.initializers.variance_scaling(1.0, "fan_avg", dist)(
            jax.random.key(4), (6, 5), jnp.complex64)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(random.normal(random.key(4), (3,), np.complex64),
                               jax.random.normal(jax.random.key(4), (3,), jnp.complex64),
                               rtol=1e-6)
    ours = nn.initializers.orthogonal()(random.key(4), (4, 3), np.complex64)
    np.testing.assert_allclose(ours, jax.nn.initializers.orthogonal()(
        jax.random.key(4), (4, 3), jnp.complex64), rtol=1e-5, atol=1e-6)
