"""fnn.activations and fnn.losses: values against NumPy formulas, stability at extreme inputs,
derivatives (finite differences and known closed forms), reductions and errors."""
import importlib.util
import json
import os

import numpy as np
import pytest
from scipy import special

import fnn
import transforms as T
from fnn import losses
from transforms.test_util import check_grads

RNG = np.random.RandomState(0)
X = np.concatenate([np.linspace(-6, 6, 25), [-30.0, -0.7, 0.3, 30.0]])  # float64 grid


def np_sigmoid(x):
    return special.expit(x)


# ---------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------

REFERENCE = {
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "sigmoid": np_sigmoid,
    "log_sigmoid": lambda x: -np.logaddexp(0, -x),
    "tanh": np.tanh,
    "softplus": lambda x: np.logaddexp(x, 0),
    "gelu": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))),
    "silu": lambda x: x * np_sigmoid(x),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_activation_values(name):
    fn = getattr(fnn, name)
    np.testing.assert_allclose(fn(X), REFERENCE[name](X), rtol=1e-12, atol=1e-12)
    x32 = X.astype(np.float32)
    out = fn(x32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, REFERENCE[name](X), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_activation_grads(name):
    fn = getattr(fnn, name)
    x = np.array([-2.3, -0.6, 0.4, 1.7, 7.5])          # away from kinks
    check_grads(fn, (x,), order=1 if name in ("relu", "relu6", "leaky_relu", "elu") else 2)


def test_activation_derivatives_at_special_points():
    g = T.grad(lambda x: fnn.relu(x))
    assert g(0.0) == 0.0 and g(1.0) == 1.0 and g(-1.0) == 0.0
    assert T.grad(fnn.leaky_relu)(0.0) == 1.0
    assert T.grad(fnn.leaky_relu)(-1.0) == pytest.approx(0.01)
    gs = T.vmap(T.grad(fnn.softplus))(np.array([-1e4, -30.0, 0.0, 30.0, 1e4]))
    np.testing.assert_allclose(gs, np_sigmoid(np.array([-1e4, -30.0, 0.0, 30.0, 1e4])))
    ge = T.vmap(T.grad(fnn.elu))(np.array([-1e4, -1.0, 0.5, 1e4]))
    np.testing.assert_allclose(ge, [0.0, np.exp(-1.0), 1.0, 1.0])
    np.testing.assert_allclose(fnn.softplus(np.array([-1e4, 1e4])), [0.0, 1e4])
    assert np.all(np.isfinite(fnn.elu(np.array([1e4, -1e4]))))


def test_gelu_exact():
    np.testing.assert_allclose(fnn.gelu(X, approximate=False),
                               0.5 * X * (1 + special.erf(X / np.sqrt(2))), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fnn.gelu(X), fnn.gelu(X, approximate=True))
    check_grads(lambda x: fnn.gelu(x, approximate=False), (np.array([-1.5, 0.2, 2.0]),), order=2)


def test_softmax_family():
    x = RNG.randn(4, 5)
    e = np.exp(x - x.max(-1, keepdims=True))
    ref = e / e.sum(-1, keepdims=True)
    np.testing.assert_allclose(fnn.softmax(x), ref, rtol=1e-12)
    np.testing.assert_allclose(fnn.log_softmax(x), np.log(ref), rtol=1e-12)
    np.testing.assert_allclose(fnn.softmax(x, axis=0), np.exp(x) / np.exp(x).sum(0), rtol=1e-12)
    np.testing.assert_allclose(fnn.logsumexp(x), special.logsumexp(x), rtol=1e-12)
    np.testing.assert_allclose(fnn.logsumexp(x, axis=1), special.logsumexp(x, axis=1),
                               rtol=1e-12)
    np.testing.assert_allclose(fnn.logsumexp(x, axis=0, keepdims=True),
                               special.logsumexp(x, axis=0, keepdims=True), rtol=1e-12)
    check_grads(lambda x: fnn.softmax(x), (x,), order=2)
    check_grads(lambda x: fnn.log_softmax(x, axis=0), (x,), order=2)
    check_grads(lambda x: fnn.logsumexp(x, axis=1), (x,), order=2)


def test_softmax_extremes():
    big = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], np.float32)
    for f in (fnn.softmax, fnn.log_softmax):
        assert np.all(~np.isnan(f(big)))
    np.testing.assert_allclose(fnn.softmax(big)[0], [1, 0, 0])
    np.testing.assert_allclose(fnn.softmax(big)[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(fnn.logsumexp(big, axis=1), [1e4, -1e4 + np.log(3)], rtol=1e-6)
    # -inf entries: zero probability, finite gradients
    x = np.array([0.0, -np.inf, 1.0])
    np.testing.assert_allclose(fnn.softmax(x), [1 / (1 + np.e), 0, np.e / (1 + np.e)])
    g = T.grad(lambda x: fnn.logsumexp(x))(x)
    np.testing.assert_allclose(g, fnn.softmax(x))
    assert fnn.logsumexp(np.array([-np.inf, -np.inf])) == -np.inf
    g = T.grad(lambda x: fnn.log_softmax(x)[2])(x)
    assert np.all(np.isfinite(g))


def test_one_hot():
    oh = fnn.one_hot(np.array([0, 2, 1, 5]), 3)
    np.testing.assert_array_equal(oh, [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 0]])
    assert oh.dtype == np.float32
    assert fnn.one_hot(np.array([[1]]), 4, dtype=np.int32).shape == (1, 1, 4)
    assert fnn.one_hot(np.array([1, 2]), 4, axis=0).shape == (4, 2)


def test_activations_traced():
    x = RNG.randn(3, 4).astype(np.float32)
    for name in sorted(REFERENCE) + ["softmax", "log_softmax"]:
        fn = getattr(fnn, name)
        closed = T.make_jaxpr(fn)(x)
        from transforms.ir import eval_jaxpr
        np.testing.assert_allclose(eval_jaxpr(closed.jaxpr, closed.consts, x)[0], fn(x),
                                   rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------

def np_log_softmax(x):
    return x - special.logsumexp(x, axis=-1, keepdims=True)


def test_mse_and_huber():
    p, t = RNG.randn(5, 3), RNG.randn(5, 3)
    np.testing.assert_allclose(losses.mse(p, t), np.mean((p - t) ** 2))
    np.testing.assert_allclose(losses.mse(p, t, reduction="sum"), np.sum((p - t) ** 2))
    np.testing.assert_allclose(losses.mse(p, t, reduction="none"), (p - t) ** 2)
    d = 3 * (p - t)
    for delta in (0.5, 1.0, 2.0):
        a = np.abs(d)
        ref = np.where(a <= delta, 0.5 * d ** 2, delta * (a - 0.5 * delta))
        np.testing.assert_allclose(losses.huber(d, 0.0, delta=delta, reduction="none"), ref)
        np.testing.assert_allclose(losses.huber(d, np.zeros_like(d), delta=delta), ref.mean())
    check_grads(lambda p: losses.mse(p, t), (p,), order=2)
    check_grads(lambda p: losses.huber(p, t, delta=0.7), (3 * p,), order=1)
    assert T.grad(lambda p: losses.huber(p, 0.0))(0.0) == 0.0


def test_cross_entropy_integer_and_one_hot():
    logits = RNG.randn(6, 4)
    labels = np.array([0, 3, 1, 1, 2, 0])
    ref = -np_log_softmax(logits)[np.arange(6), labels]
    np.testing.assert_allclose(losses.cross_entropy(logits, labels), ref.mean(), rtol=1e-12)
    np.testing.assert_allclose(losses.cross_entropy(logits, labels, reduction="sum"), ref.sum(),
                               rtol=1e-12)
    np.testing.assert_allclose(losses.cross_entropy(logits, labels, reduction="none"), ref,
                               rtol=1e-12)
    onehot = np.eye(4)[labels]
    np.testing.assert_allclose(losses.cross_entropy(logits, onehot), ref.mean(), rtol=1e-12)
    probs = special.softmax(RNG.randn(6, 4), axis=-1)
    np.testing.assert_allclose(losses.cross_entropy(logits, probs),
                               np.mean(-np.sum(probs * np_log_softmax(logits), -1)), rtol=1e-12)
    # gradient: (softmax - onehot) / batch
    g = T.grad(lambda l: losses.cross_entropy(l, labels))(logits)
    np.testing.assert_allclose(g, (special.softmax(logits, -1) - onehot) / 6, rtol=1e-10,
                               atol=1e-14)
    check_grads(lambda l: losses.cross_entropy(l, probs), (logits,), order=2)
    # nll on log-probabilities agrees
    np.testing.assert_allclose(losses.nll(np_log_softmax(logits), labels), ref.mean(),
                               rtol=1e-12)
    np.testing.assert_allclose(losses.nll(np_log_softmax(logits), onehot, reduction="none"), ref,
                               rtol=1e-12)
    # unbatched: one example
    np.testing.assert_allclose(losses.cross_entropy(logits[0], np.array(labels[0])), ref[0],
                               rtol=1e-12)


def test_cross_entropy_extreme_logits():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, -1e4], [0.0, 0.0, 0.0]], np.float32)
    labels = np.array([1, 1, 2])
    v = losses.cross_entropy(logits, labels, reduction="none")
    assert np.all(np.isfinite(v))
    np.testing.assert_allclose(v, [2e4, 0.0, np.log(3)], rtol=1e-6)
    g = T.grad(lambda l: losses.cross_entropy(l, labels))(logits)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g[0], np.array([1, -1, 0]) / 3, atol=1e-6)
    # -inf logits with zero-probability labels give no NaN
    l2 = np.array([[0.0, -np.inf]])
    assert losses.cross_entropy(l2, np.array([[1.0, 0.0]])) == 0.0
    assert losses.cross_entropy(l2, np.array([0])) == 0.0
    assert np.all(np.isfinite(T.grad(lambda l: losses.cross_entropy(l, np.array([0])))(l2)))


def test_binary_cross_entropy():
    x = np.array([-1e4, -20.0, -1.0, 0.0, 0.5, 20.0, 1e4])
    z = np.array([1.0, 0.0, 1.0, 0.5, 0.0, 1.0, 0.0])
    ref = np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))
    np.testing.assert_allclose(losses.binary_cross_entropy(x, z, reduction="none"), ref,
                               rtol=1e-12)
    np.testing.assert_allclose(losses.binary_cross_entropy(x, z), ref.mean(), rtol=1e-12)
    g = T.grad(lambda x: losses.binary_cross_entropy(x, z, reduction="sum"))(x)
    np.testing.assert_allclose(g, np_sigmoid(x) - z, atol=1e-12)
    v32 = losses.binary_cross_entropy(x.astype(np.float32), z.astype(np.float32),
                                      reduction="none")
    assert v32.dtype == np.float32 and np.all(np.isfinite(v32))
    check_grads(lambda x: losses.binary_cross_entropy(x, z[:4]),
                (np.array([-2.0, -0.25, 0.3, 1.2]),), order=2)


def test_loss_errors():
    with pytest.raises(ValueError, match="reduction"):
        losses.mse(np.ones(2), np.ones(2), reduction="avg")
    with pytest.raises(ValueError, match="labels"):
        losses.cross_entropy(np.ones((3, 4)), np.array([0, 1]))
    with pytest.raises(ValueError, match="labels"):
        losses.cross_entropy(np.ones((3, 4)), np.ones((3, 5)))


def test_accuracy():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert losses.accuracy(logits, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    assert losses.accuracy(logits, np.eye(2)[[1, 0, 1]]) == 1.0


# ---------------------------------------------------------------------------------------------
# NaN / inf inputs against JAX, accuracy of logsumexp near 0, one_hot edge cases
# ---------------------------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")
X_SPECIAL = [NAN, INF, -INF, 0.0, 1.0, -1.0, 30.0, -30.0, 100.0, -100.0, 6.0, 7.0]
JAX_SPECIAL = {  # jax 0.10.2: jax.nn.<name>(np.float32(X_SPECIAL))
    "relu": [NAN, INF, 0.0, 0.0, 1.0, 0.0, 30.0, 0.0, 100.0, 0.0, 6.0, 7.0],
    "relu6": [NAN, 6.0, 0.0, 0.0, 1.0, 0.0, 6.0, 0.0, 6.0, 0.0, 6.0, 6.0],
    "sigmoid": [NAN, 1.0, 0.0, 0.5, 0.7310585975646973, 0.2689414322376251, 1.0,
                9.357623589846195e-14, 1.0, 0.0, 0.9975274205207825, 0.9990890026092529],
    "log_sigmoid": [NAN, -0.0, -INF, -0.6931471824645996, -0.3132616877555847,
                    -1.3132617473602295, -9.357622912219837e-14, -30.0, -0.0, -100.0,
                    -0.0024756852071732283, -0.000911466486286372],
    "tanh": [NAN, 1.0, -1.0, 0.0, 0.7615941762924194, -0.7615941762924194, 1.0, -1.0, 1.0,
             -1.0, 0.9999876022338867, 0.9999983310699463],
    "softplus": [NAN, INF, 0.0, 0.6931471824645996, 1.3132617473602295, 0.3132616877555847,
                 30.0, 9.357622912219837e-14, 100.0, 0.0, 6.002475738525391,
                 7.000911235809326],
    "gelu": [NAN, INF, NAN, 0.0, 0.8411920070648193, -0.15880796313285828, 30.0, -0.0, 100.0,
             -0.0, 6.0, 7.0],
    "silu": [NAN, INF, NAN, 0.0, 0.7310585975646973, -0.2689414322376251, 30.0,
             -2.8072871718215486e-12, 100.0, -0.0, 5.985164642333984, 6.993622779846191],
    "leaky_relu": [NAN, INF, -INF, 0.0, 1.0, -0.009999999776482582, 30.0,
                   -0.29999998211860657, 100.0, -1.0, 6.0, 7.0],
    "elu": [NAN, INF, -1.0, 0.0, 1.0, -0.6321205496788025, 30.0, -1.0, 100.0, -1.0, 6.0, 7.0],
}
ROWS = [[0.0, -20.0], [NAN, 1.0], [INF, 1.0], [-INF, 1.0], [INF, INF], [-INF, -INF],
        [INF, -INF], [1e30, 1.0], [0.0, -200.0], [3.0, 3.0]]
JAX_ROWS = {  # jax 0.10.2: jax.nn.<name>(np.float32(row)) for each of ROWS
    "softmax": [[1.0, 2.06115369216775e-09], [NAN, NAN], [NAN, NAN], [0.0, 1.0], [NAN, NAN],
                [NAN, NAN], [NAN, NAN], [1.0, 0.0], [1.0, 0.0], [0.5, 0.5]],
    "log_softmax": [[0.0, -20.0], [NAN, NAN], [NAN, NAN], [-INF, 0.0], [NAN, NAN], [NAN, NAN],
                    [NAN, NAN], [0.0, -1.0000000150474662e+30], [0.0, -200.0],
                    [-0.6931471824645996, -0.6931471824645996]],
    "logsumexp": [0.0, NAN, INF, 1.0, INF, -INF, INF, 1.0000000150474662e+30, 0.0,
                  3.6931471824645996],
}


def _same_special(got, want, rtol=1e-6, atol=1e-8):
    got, want = np.asarray(got), np.asarray(want, np.float32)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got) & (got > 0), np.isinf(want) & (want > 0))
    np.testing.assert_array_equal(np.isinf(got) & (got < 0), np.isinf(want) & (want < 0))
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", sorted(JAX_SPECIAL))
def test_activation_nan_inf_match_jax(name):
    fn = getattr(fnn, name)
    x = np.asarray(X_SPECIAL, np.float32)
    with np.errstate(all="ignore"):
        _same_special(fn(x), JAX_SPECIAL[name])
        _same_special(T.jit(fn)(x), JAX_SPECIAL[name])


@pytest.mark.parametrize("name", sorted(JAX_ROWS))
def test_softmax_family_nan_inf_match_jax(name):
    fn = getattr(fnn, name)
    for row, want in zip(ROWS, JAX_ROWS[name]):
        x = np.asarray(row, np.float32)
        with np.errstate(all="ignore"):
            _same_special(fn(x), want)
            _same_special(T.jit(fn)(x), want)


def test_relu_propagates_nan():
    assert np.isnan(fnn.relu(np.float32("nan")))
    assert np.isnan(fnn.relu6(np.nan))
    np.testing.assert_array_equal(fnn.relu(np.array([np.nan, -1.0, 2.0])), [np.nan, 0.0, 2.0])
    assert T.grad(fnn.relu6)(6.0) == 0.0 and T.grad(fnn.relu6)(5.0) == 1.0


def test_logsumexp_accurate_near_zero():
    # log(1 + e**-20) = 2.0611536e-9; JAX's log(sum(exp)) rounds it to 0 in float32
    x = np.array([0.0, -20.0], np.float32)
    for f in (fnn.logsumexp, T.jit(fnn.logsumexp)):
        np.testing.assert_allclose(f(x), 2.0611536e-9, rtol=1e-6)
    np.testing.assert_allclose(fnn.log_softmax(x), [-2.0611536e-9, -20.0], rtol=1e-6)
    np.testing.assert_allclose(fnn.logsumexp(np.array([0.0, -20.0])), np.log1p(np.exp(-20.0)),
                               rtol=1e-15)
    # ties: value log(3 e**3), gradient still the softmax (shared among the maxima)
    t = np.array([3.0, 3.0, 3.0])
    np.testing.assert_allclose(fnn.logsumexp(t), 3 + np.log(3), rtol=1e-15)
    np.testing.assert_allclose(T.grad(fnn.logsumexp)(t), [1 / 3] * 3, rtol=1e-15)
    check_grads(lambda x: fnn.logsumexp(x), (np.array([1.0, 1.0, -0.5]),), order=2)
    check_grads(lambda x: fnn.log_softmax(x), (np.array([2.0, 2.0, 0.5]),), order=2)


def test_one_hot_edge_cases_match_jax():
    # jax 0.10.2 jax.nn.one_hot: out-of-range, negative and NaN indices give all-zero rows,
    # the default dtype is float32 (JAX's default float without x64)
    oh = fnn.one_hot(np.array([-1, 0, 2, 3, -4]), 3)
    np.testing.assert_array_equal(oh, [[0, 0, 0], [1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]])
    assert oh.dtype == np.float32
    assert fnn.one_hot(np.array([1]), 3, dtype=None).dtype == np.float32
    f = fnn.one_hot(np.array([0.0, 1.5, np.nan, 2.0], np.float32), 3)
    np.testing.assert_array_equal(f, [[1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 1]])
    j = T.jit(lambda x: fnn.one_hot(x, 3))(np.array([-1, 1, 7], np.int32))
    np.testing.assert_array_equal(j, [[0, 0, 0], [0, 1, 0], [0, 0, 0]])
    assert j.dtype == np.float32


# ---------------------------------------------------------------------------------------------
# optax-named losses (per-example, optax's signatures) and integer-label validation
# ---------------------------------------------------------------------------------------------

_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def _optax_loss_cases():
    spec = importlib.util.spec_from_file_location(
        "optax_loss_cases", os.path.join(_DATA, "optax_loss_cases.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with open(os.path.join(_DATA, "optax_losses.json")) as f:   # optax 0.2.8 values
        table = json.load(f)
    assert len(table["cases"]) == len(mod.cases)
    out = []
    for i, ((name, args, kwargs), rec) in enumerate(zip(mod.cases, table["cases"])):
        assert rec["name"] == name
        want = np.array([np.nan if v is None else v for v in rec["values"]],
                        np.float32).reshape(rec["shape"])
        out.append(pytest.param(name, args, kwargs, want, id=f"{i}-{name}"))
    return out


OPTAX_LOSSES = ["squared_error", "l2_loss", "huber_loss", "log_cosh", "hinge_loss",
                "cosine_similarity", "cosine_distance", "kl_divergence",
                "softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels",
                "safe_softmax_cross_entropy", "poly_loss_cross_entropy",
                "sigmoid_binary_cross_entropy"]


def test_optax_loss_table_covers_every_optax_name():
    assert {c.values[0] for c in _optax_loss_cases()} == set(OPTAX_LOSSES)
    assert set(OPTAX_LOSSES) <= set(losses.__all__)


@pytest.mark.parametrize("name,args,kwargs,want", _optax_loss_cases())
def test_optax_named_loss_matches_optax(name, args, kwargs, want):
    fn = getattr(losses, name)
    with np.errstate(all="ignore"):
        got = fn(*args, **kwargs)
        got_jit = T.jit(lambda *a: fn(*a, **kwargs))(*args)
    for g in (got, got_jit):
        assert g.shape == want.shape and g.dtype == np.float32
        np.testing.assert_allclose(g, want, rtol=2e-6, atol=1e-6)


def test_optax_named_signatures():
    import inspect
    sig = {n: str(inspect.signature(getattr(losses, n))) for n in OPTAX_LOSSES}
    assert sig["l2_loss"] == "(predictions, targets=None)"
    assert sig["squared_error"] == "(predictions, targets=None)"
    assert sig["huber_loss"] == "(predictions, targets=None, *, delta=1.0)"
    assert sig["log_cosh"] == "(predictions, targets=None)"
    assert sig["hinge_loss"] == "(predictor_outputs, targets)"
    assert sig["cosine_similarity"] == "(predictions, targets, *, epsilon=0.0, axis=-1, where=None)"
    assert sig["kl_divergence"] == "(log_predictions, targets, axis=-1, where=None)"
    assert sig["softmax_cross_entropy"] == "(logits, labels, axis=-1, where=None)"
    assert sig["softmax_cross_entropy_with_integer_labels"] == \
        "(logits, labels, axis=-1, where=None)"
    assert sig["safe_softmax_cross_entropy"] == "(logits, labels)"
    assert sig["poly_loss_cross_entropy"] == "(logits, labels, *, epsilon=2.0, axis=-1, where=None)"
    assert sig["sigmoid_binary_cross_entropy"] == "(logits, labels)"
    with pytest.raises(ValueError, match="shape"):
        losses.squared_error(np.ones(3), np.ones(4))


@pytest.mark.parametrize("bad", [3, 7, -1, -4])
def test_integer_labels_out_of_range_raise(bad):
    logits = np.zeros((4, 3), np.float32)
    labels = np.array([0, 1, bad, 2])
    for fn in (losses.cross_entropy, losses.nll):
        with pytest.raises(ValueError, match=r"\[0, 3\).*3 classes.*position.*\(2,\)"):
            fn(logits, labels)
        with pytest.raises(ValueError, match=r"\[0, 3\)"):
            fn(logits, labels, reduction="none")
        # concrete labels under grad/vmap of the logits are checked too
        with pytest.raises(ValueError, match=r"\[0, 3\)"):
            T.grad(lambda l: fn(l, labels))(logits)
        with pytest.raises(ValueError, match=r"\[0, 3\)"):
            T.vmap(lambda l: fn(l, labels))(np.stack([logits, logits]))


def test_integer_labels_traced_follow_optax():
    # under jit labels are not known: optax 0.2.8's softmax_cross_entropy_with_integer_labels
    # (JAX's gather) gives [2.407606, nan, 0.4076059, nan] for logits [1, 2, 3] and labels
    # [0, 5, -1, -4]: -1 counts from the end, the others are NaN
    logits = np.tile(np.array([1.0, 2.0, 3.0], np.float32), (4, 1))
    labels = np.array([0, 5, -1, -4])
    want = [2.407606, np.nan, 0.4076059, np.nan]
    got = T.jit(lambda l, y: losses.cross_entropy(l, y, reduction="none"))(logits, labels)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    got = T.jit(lambda l, y: losses.nll(fnn.log_softmax(l), y, reduction="none"))(logits, labels)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(
        losses.softmax_cross_entropy_with_integer_labels(logits, labels), want, rtol=1e-6)
    assert np.isnan(T.jit(lambda l, y: losses.cross_entropy(l, y))(logits, labels))
