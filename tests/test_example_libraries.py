"""`transforms.example_libraries` (`stax`, `optimizers`) against JAX's `jax.example_libraries`.

Where JAX is importable: every public name of JAX's two modules exists here with the same
parameters; each layer's output shape, parameters (the PRNG is JAX's bit for bit) and outputs
(on JAX's parameters) equal JAX's; each optimizer's 5-step trajectory and state, the schedules,
`clip_grads` and the state's pack/unpack equal JAX's; JAX's examples mnist_classifier.py,
differentially_private_sgd.py and mnist_vae.py, written once with their imports as parameters,
train the same here (the last two against JAX's values recorded by running this file: their XLA
compiles take longer than this whole module). Without JAX the hand-checked tests still run
(formulas recomputed in NumPy)."""
import __future__
import functools
import inspect
import types

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import random
from transforms.example_libraries import optimizers, stax

try:
    import jax
    import jax.numpy as jnp
    from jax.example_libraries import optimizers as jax_optimizers
    from jax.example_libraries import stax as jax_stax
except ImportError:  # the JAX comparisons skip, the hand-checked ones still run
    jax = jnp = jax_optimizers = jax_stax = None

needs_jax = pytest.mark.skipif(jax is None, reason="JAX is not installed")
# other modules switch JAX to 64 bits when collected: compare with its 32-bit defaults
pytestmark = pytest.mark.usefixtures("jax_x32")

rng = np.random.default_rng(0)


def _normal(*shape):
    return rng.normal(size=shape).astype(np.float32)


def _assert_trees_close(ours, theirs, rtol=1e-5, atol=1e-6, exact=False, what="", jax_tree=True):
    """Leaf by leaf; `theirs` is flattened by JAX (`jax_tree`) or by this library."""
    ours_leaves, ours_def = T.tree.flatten(ours)
    their_leaves = jax.tree.leaves(theirs) if jax_tree else T.tree.leaves(theirs)
    assert len(ours_leaves) == len(their_leaves), f"{what}: {ours_def} vs {len(their_leaves)}"
    for k, (a, b) in enumerate(zip(ours_leaves, their_leaves)):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, f"{what} leaf {k}: shape {a.shape} vs {b.shape}"
        if exact:
            assert a.dtype == b.dtype, f"{what} leaf {k}: dtype {a.dtype} vs {b.dtype}"
            np.testing.assert_array_equal(a, b, err_msg=f"{what} leaf {k}")
        else:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{what} leaf {k}")


# --------------------------------------------------------------------------------------------
# Names and signatures

# what JAX's modules import for their own use rather than export: modules (jnp, lax, math),
# JAX's private helpers (safe_map and its `map`/`zip` aliases, unzip2), `from __future__`
# features, and standard-library objects under their own names (Any, partial, namedtuple)
_PRIVATE_ORIGINS = ("jax._src.", "jaxlib.")


def _jax_public_names(mod):
    names = []
    for name in dir(mod):
        if name.startswith("_"):
            continue
        obj = getattr(mod, name)
        origin = getattr(obj, "__module__", None) or ""
        if (isinstance(obj, (types.ModuleType, __future__._Feature))
                or (origin.startswith(_PRIVATE_ORIGINS) and not name[0].isupper()
                    and getattr(obj, "__name__", None) in ("safe_map", "safe_zip", "unzip2"))
                or (origin.split(".")[0] in ("typing", "collections", "functools", "builtins")
                    and getattr(obj, "__name__", None) == name)):
            continue
        names.append(name)
    return names


@needs_jax
@pytest.mark.parametrize("ours, theirs", [(stax, "stax"), (optimizers, "optimizers")],
                         ids=["stax", "optimizers"])
def test_every_public_name_of_jax_modules_exists_with_its_parameters(ours, theirs):
    theirs = {"stax": jax_stax, "optimizers": jax_optimizers}[theirs]
    names = _jax_public_names(theirs)
    assert len(names) > 30          # the filter keeps the API (a guard against filtering all)
    missing = [n for n in names if not hasattr(ours, n)]
    assert not missing, f"{ours.__name__} lacks JAX's {missing}"
    for name in names:
        a, b = getattr(ours, name), getattr(theirs, name)
        if isinstance(b, tuple) and len(b) == 2 and all(callable(f) for f in b):
            # a parameter-free layer is an (init_fun, apply_fun) pair
            assert isinstance(a, tuple) and len(a) == 2 and all(callable(f) for f in a), name
        elif isinstance(b, type) and hasattr(b, "_fields"):
            assert a._fields == b._fields, name
        elif callable(b):
            assert callable(a), name
            own = (getattr(b, "__module__", None) == theirs.__name__
                   or isinstance(b, type(jax_stax.Conv)))
            # the module's own functions take JAX's parameters (re-exported `jax.nn` functions
            # are `transforms.nn`'s, tested with that module)
            assert not own or (list(inspect.signature(a).parameters)
                    == list(inspect.signature(b).parameters)), name
    # stax exports JAX's short names for the same functions
    assert stax.glorot is stax.glorot_normal and stax.randn is stax.normal
    assert stax.logsoftmax is stax.log_softmax
    # reachable from the top level as JAX's submodule is
    assert T.example_libraries.stax is stax and T.example_libraries.optimizers is optimizers


# --------------------------------------------------------------------------------------------
# stax layers against JAX: same shapes, same parameters from the same key, same outputs

# name -> (make(stax module) -> layer, input shape). The kernels share a few shapes ((5, 4) for
# Dense, (3, 3, 3, 4) for Conv): JAX compiles its initialisers once per shape, seconds each.
LAYERS = {
    "Dense": (lambda s: s.Dense(4), (3, 5)),
    "Dense_3d": (lambda s: s.Dense(4, b_init=s.ones), (2, 3, 5)),
    "Conv_valid": (lambda s: s.Conv(4, (3, 3)), (2, 6, 5, 3)),
    "Conv_same_strided": (lambda s: s.Conv(4, (3, 3), strides=(2, 2), padding="SAME"),
                          (2, 7, 6, 3)),
    "Conv_valid_strided": (lambda s: s.Conv(4, (3, 3), (2, 1), "VALID"), (1, 7, 6, 3)),
    "GeneralConv_nchw": (lambda s: s.GeneralConv(("NCHW", "HWIO", "NCHW"), 4, (3, 3), (1, 2),
                                                 "SAME"), (2, 3, 5, 6)),
    "ConvTranspose_same": (lambda s: s.ConvTranspose(4, (3, 3), (2, 2), "SAME"), (2, 4, 3, 3)),
    "Conv1DTranspose_valid": (lambda s: s.Conv1DTranspose(4, (3,), (2,)), (2, 5, 3)),
    "BatchNorm": (lambda s: s.BatchNorm(), (4, 3, 3, 2)),
    "BatchNorm_axis0_noscale": (lambda s: s.BatchNorm(axis=0, scale=False,
                                                      beta_init=s.normal()), (6, 4)),
    "BatchNorm_nocenter": (lambda s: s.BatchNorm(axis=(0,), center=False,
                                                 gamma_init=s.normal(1.0)), (6, 4)),
    "MaxPool": (lambda s: s.MaxPool((2, 2)), (2, 5, 4, 3)),
    "MaxPool_same_strided": (lambda s: s.MaxPool((3, 3), (2, 2), "SAME"), (2, 5, 4, 3)),
    "SumPool_same": (lambda s: s.SumPool((2, 2), (1, 1), "SAME"), (1, 4, 3, 2)),
    "AvgPool_valid_strided": (lambda s: s.AvgPool((2, 2), (2, 2)), (2, 6, 4, 3)),
    "AvgPool_same_strided": (lambda s: s.AvgPool((3, 3), (2, 2), "SAME"), (2, 5, 4, 3)),
    "AvgPool_nchw": (lambda s: s.AvgPool((2, 2), (1, 1), "SAME", spec="NCHW"), (2, 3, 4, 5)),
    "Flatten": (lambda s: s.Flatten, (2, 3, 4)),
    "Identity": (lambda s: s.Identity, (2, 3)),
    **{act: ((lambda a: lambda s: getattr(s, a))(act), (3, 4))
       for act in ("Tanh", "Relu", "Exp", "LogSoftmax", "Softmax", "Softplus", "Sigmoid", "Elu",
                   "LeakyRelu", "Selu", "Gelu")},
    "elementwise_kwargs": (lambda s: s.elementwise(s.leaky_relu, negative_slope=0.3), (3, 4)),
    "residual_FanOut_parallel_FanInSum": (
        lambda s: s.serial(s.FanOut(2), s.parallel(s.Dense(4), s.Dense(4)), s.FanInSum),
        (3, 5)),
    "FanInConcat": (lambda s: s.serial(s.FanOut(3), s.parallel(s.Dense(4), s.Identity,
                                                              s.Dense(4)),
                                       s.FanInConcat(axis=1)), (3, 5)),
    "shape_dependent": (lambda s: s.shape_dependent(lambda shape: s.Dense(shape[-1] - 1)),
                        (3, 5)),
    "serial_cnn": (lambda s: s.serial(s.Conv(4, (3, 3), padding="SAME"), s.BatchNorm(), s.Relu,
                                      s.MaxPool((2, 2), (2, 2)), s.Flatten, s.Dense(4),
                                      s.LogSoftmax), (2, 2, 5, 3)),
}


@needs_jax
@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_shapes_params_and_outputs_equal_jax(name):
    make, in_shape = LAYERS[name]
    ours_init, ours_apply = make(stax)
    jax_init, jax_apply = make(jax_stax)
    ours_shape, ours_params = ours_init(random.PRNGKey(3), in_shape)
    jax_shape, jax_params = jax_init(jax.random.PRNGKey(3), in_shape)
    assert ours_shape == tuple(jax_shape)
    assert T.tree.structure(ours_params).num_leaves == len(jax.tree.leaves(jax_params))
    # the same key draws the same parameters, bit for bit
    _assert_trees_close(ours_params, jax_params, exact=True, what=f"{name} params")
    x = _normal(*in_shape)
    params = jax.tree.map(np.asarray, jax_params)
    out = ours_apply(params, x)
    expected = np.asarray(jax_apply(jax_params, x))
    assert out.shape == expected.shape == tuple(ours_shape)
    assert out.dtype == expected.dtype
    np.testing.assert_allclose(out, expected, rtol=2e-5, atol=2e-6)


@needs_jax
@pytest.mark.parametrize("mode", ["train", "test"])
def test_dropout_with_the_same_key_equals_jax(mode):
    x = _normal(4, 6)
    out = stax.Dropout(0.7, mode)[1]((), x, rng=random.PRNGKey(5))
    expected = np.asarray(jax_stax.Dropout(0.7, mode)[1]((), x, rng=jax.random.PRNGKey(5)))
    np.testing.assert_array_equal(out, expected)
    # inside serial each layer gets its own split of the key
    net = lambda s: s.serial(s.Dense(4), s.Dropout(0.5, mode))
    x = _normal(4, 5)
    _, jax_params = net(jax_stax)[0](jax.random.PRNGKey(0), x.shape)
    params = jax.tree.map(np.asarray, jax_params)
    out = net(stax)[1](params, x, rng=random.PRNGKey(9))
    expected = np.asarray(net(jax_stax)[1](jax_params, x, rng=jax.random.PRNGKey(9)))
    np.testing.assert_allclose(out, expected, rtol=2e-5, atol=2e-6)


# --------------------------------------------------------------------------------------------
# stax layers by hand (no JAX needed)

def test_dense_and_serial_keys_by_hand():
    init, apply = stax.serial(stax.Dense(3), stax.Relu)
    key = random.PRNGKey(0)
    shape, params = init(key, (-1, 4))
    assert shape == (-1, 3) and params[1] == ()
    W, b = params[0]
    assert W.shape == (4, 3) and b.shape == (3,) and W.dtype == np.float32
    # serial: `key, layer_key = split(key)` per layer; Dense: W from the first half, b the second
    _, layer_key = random.split(key)
    k_w, k_b = random.split(layer_key)
    np.testing.assert_array_equal(b, 1e-2 * random.normal(k_b, (3,), np.float32))
    std = np.sqrt(2.0 / (4 + 3)) / 0.87962566103423978     # glorot normal, truncated at 2
    np.testing.assert_allclose(W, std * random.truncated_normal(k_w, -2.0, 2.0, (4, 3),
                                                                np.float32), rtol=1e-6)
    x = _normal(5, 4)
    np.testing.assert_allclose(apply(params, x), np.maximum(x @ W + b, 0), rtol=1e-6, atol=1e-7)


def _conv_nhwc(x, w, strides, pads):
    """Cross-correlation of NHWC `x` with HWIO `w` by loops, `pads` = ((lo, hi), (lo, hi))."""
    x = np.pad(x, ((0, 0), *pads, (0, 0)))
    kh, kw = w.shape[:2]
    oh = (x.shape[1] - kh) // strides[0] + 1
    ow = (x.shape[2] - kw) // strides[1] + 1
    out = np.zeros((x.shape[0], oh, ow, w.shape[3]), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * strides[0]:i * strides[0] + kh, j * strides[1]:j * strides[1] + kw]
            out[:, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return out


@pytest.mark.parametrize("strides, padding, pads", [((1, 1), "VALID", ((0, 0), (0, 0))),
                                                     ((2, 2), "SAME", ((1, 1), (0, 1)))])
def test_conv_by_hand(strides, padding, pads):
    init, apply = stax.Conv(2, (3, 3), strides, padding, b_init=stax.normal(1.0))
    shape, (W, b) = init(random.PRNGKey(1), (2, 5, 4, 3))
    assert W.shape == (3, 3, 3, 2) and b.shape == (1, 1, 1, 2)
    x = _normal(2, 5, 4, 3)
    expected = _conv_nhwc(x, W, strides, pads) + b
    out = apply((W, b), x)
    assert out.shape == shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_pooling_by_hand():
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 4, 1)
    # 'SAME' with a 2x2 window and stride 1 pads one row below and one column right
    padded = np.pad(x[0, :, :, 0], ((0, 1), (0, 1)), constant_values=np.nan)
    windows = np.stack([[padded[i:i + 2, j:j + 2] for j in range(4)] for i in range(3)])
    for layer, reduce in ((stax.MaxPool, np.nanmax), (stax.SumPool, np.nansum),
                          (stax.AvgPool, np.nanmean)):
        init, apply = layer((2, 2), (1, 1), "SAME")
        assert init(None, (1, 3, 4, 1)) == ((1, 3, 4, 1), ())
        np.testing.assert_allclose(apply((), x)[0, :, :, 0], reduce(windows, axis=(2, 3)),
                                   rtol=1e-6)
    init, apply = stax.MaxPool((2, 2), strides=(2, 2))
    assert init(None, (1, 3, 4, 1))[0] == (1, 1, 2, 1)
    np.testing.assert_array_equal(apply((), x).ravel(), [5, 7])


def test_batchnorm_by_hand():
    x = _normal(5, 2, 3)
    init, apply = stax.BatchNorm(axis=(0, 1))
    shape, (beta, gamma) = init(random.PRNGKey(0), x.shape)
    assert shape == x.shape and beta.shape == gamma.shape == (3,)
    beta, gamma = _normal(3), _normal(3)
    mean = x.mean(axis=(0, 1))
    var = (x * x).mean(axis=(0, 1)) - mean ** 2
    expected = gamma * (x - mean) / np.sqrt(var + 1e-5) + beta
    np.testing.assert_allclose(apply((beta, gamma), x), expected, rtol=1e-4, atol=1e-5)
    # a negative axis is counted from the end (JAX would keep the batch axis in the params)
    init, apply = stax.BatchNorm(axis=-3)
    assert init(random.PRNGKey(0), x.shape)[1][0].shape == (2, 3)


def test_dropout_by_hand():
    x = _normal(200, 5)
    key = random.PRNGKey(4)
    init, apply = stax.Dropout(0.8)
    out = apply((), x, rng=key)
    keep = random.bernoulli(key, 0.8, x.shape)
    np.testing.assert_array_equal(out, np.where(keep, x / np.float32(0.8), 0))
    assert 0.75 < keep.mean() < 0.85          # `rate` is the probability of keeping
    np.testing.assert_array_equal(stax.Dropout(0.8, mode="eval")[1]((), x, rng=key), x)
    with pytest.raises(ValueError, match="PRNG key"):
        apply((), x)


def test_routing_layers_by_hand():
    a, b = _normal(2, 3), _normal(2, 4)
    assert stax.FanOut(2)[0](None, (2, 3)) == ([(2, 3), (2, 3)], ())
    np.testing.assert_array_equal(stax.FanInSum[1]((), [a, a, a]), 3 * a)
    init, apply = stax.FanInConcat()
    assert init(None, [(2, 3), (2, 4)]) == ((2, 7), ())
    np.testing.assert_array_equal(apply((), [a, b]), np.concatenate([a, b], -1))
    init, apply = stax.parallel(stax.Dense(2), stax.Identity)
    shapes, params = init(random.PRNGKey(0), [(2, 3), (2, 4)])
    assert shapes == ((2, 2), (2, 4)) and params[1] == ()
    outs = apply(params, [a, b])
    np.testing.assert_allclose(outs[0], a @ params[0][0] + params[0][1], rtol=1e-6)
    np.testing.assert_array_equal(outs[1], b)
    assert stax.Flatten[0](None, (2, 3, 4)) == ((2, 12), ())


def test_bad_layers_raise_clear_errors():
    with pytest.raises(TypeError, match="layer 1 must be an .init_fun, apply_fun. pair"):
        stax.serial(stax.Relu, stax.Dense)
    with pytest.raises(ValueError, match="out_dim must be a positive integer"):
        stax.Dense(0)
    with pytest.raises(ValueError, match="input_shape .* 4 axes"):
        stax.Conv(2, (3, 3))[0](random.PRNGKey(0), (5, 5, 3))
    with pytest.raises(ValueError, match="params has 1 entries for 2 layers"):
        stax.serial(stax.Relu, stax.Relu)[1]([()], np.ones(2))


# --------------------------------------------------------------------------------------------
# optimizers against JAX: 5 steps on a quadratic over a pytree of parameters

A = np.array([[3.0, 1.0], [1.0, 2.0]], np.float32)
B = np.array([1.0, -1.0], np.float32)
P0 = {"w": np.array([0.5, -0.3], np.float32),
      "m": (np.array([[1.0, -2.0, 0.5], [0.0, 2.0, -1.0]], np.float32), np.float32(1.5))}


def _quadratic(np_mod):
    def loss(p):
        w, (m, s) = p["w"], p["m"]
        return (0.5 * np_mod.dot(w, np_mod.dot(A, w)) - np_mod.dot(B, w)
                + np_mod.sum(m ** 2 * np.arange(1, 7, dtype=np.float32).reshape(2, 3))
                + (s - 1.0) ** 2)
    return loss


@functools.lru_cache(maxsize=None)
def _jax_quadratic_grad():
    """JAX's gradient of the quadratic, compiled once for all the optimizer tests (eager JAX
    compiles each operation on first use, which costs more than the tests themselves)."""
    return jax.jit(jax.grad(_quadratic(jnp)))


OPTIMIZERS = {
    "sgd": ("sgd", (0.1,), {}),
    "sgd_schedule": ("sgd", (lambda s: s.exponential_decay(0.1, 2, 0.5),), {}),
    "momentum": ("momentum", (0.05,), {"mass": 0.9}),
    "nesterov": ("nesterov", (0.05, 0.8), {}),
    "adagrad": ("adagrad", (0.1,), {}),
    "adagrad_momentum": ("adagrad", (0.1,), {"momentum": 0.5}),
    "rmsprop": ("rmsprop", (0.05,), {"gamma": 0.8}),
    "rmsprop_momentum": ("rmsprop_momentum", (0.02,), {}),
    "adam": ("adam", (0.1,), {}),
    "adam_piecewise": ("adam", (lambda s: s.piecewise_constant([1, 3], [0.1, 0.05, 0.01]),),
                       {"b2": 0.99}),
    "adamax": ("adamax", (0.1,), {}),
    "sm3": ("sm3", (0.1,), {}),
}


def _make_opt(module, name):
    fn, args, kwargs = OPTIMIZERS[name]
    args = tuple(a(module) if callable(a) else a for a in args)
    return getattr(module, fn)(*args, **kwargs)


@needs_jax
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_trajectory_and_state_equal_jax(name):
    init, update, get_params = _make_opt(optimizers, name)
    jinit, jupdate, jget_params = _make_opt(jax_optimizers, name)
    grad, jgrad = T.grad(_quadratic(tnp)), _jax_quadratic_grad()
    state, jstate = init(P0), jinit(P0)
    _assert_trees_close(state, jstate, exact=True, what=f"{name} initial state")
    for i in range(5):
        state = update(i, grad(get_params(state)), state)
        jstate = jupdate(i, jgrad(jget_params(jstate)), jstate)
        _assert_trees_close(get_params(state), jget_params(jstate), rtol=1e-5, atol=1e-6,
                            what=f"{name} step {i}")
    # the whole state, leaf by leaf in JAX's order (moments, accumulators, shapes)
    _assert_trees_close(state, jstate, rtol=1e-5, atol=1e-6, what=f"{name} state")
    # float32 stays float32, a float64 schedule (piecewise_constant of Python floats) included
    assert all(np.asarray(a).dtype == np.asarray(b).dtype for a, b in
               zip(T.tree.leaves(get_params(state)), jax.tree.leaves(jget_params(jstate))))
    # the same structure: tree_def and each leaf's state layout
    assert len(state.subtree_defs) == len(jstate.subtree_defs)
    for ours, theirs in zip(state.subtree_defs, jstate.subtree_defs):
        assert ours.num_leaves == theirs.num_leaves


def _np_trajectory(name, grad_fn, x, steps):
    """sgd / momentum / adam by their formulas in NumPy (float64)."""
    v = m = np.zeros_like(x)
    xs = []
    for i in range(steps):
        g = grad_fn(x)
        if name == "sgd":
            x = x - 0.1 * g
        elif name == "momentum":
            v = 0.9 * v + g
            x = x - 0.05 * v
        else:
            m = 0.1 * g + 0.9 * m
            v = 0.001 * g ** 2 + 0.999 * v
            x = x - 0.1 * (m / (1 - 0.9 ** (i + 1))) / (np.sqrt(v / (1 - 0.999 ** (i + 1))) + 1e-8)
        xs.append(x)
    return xs


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_optimizer_formulas_by_hand(name):
    init, update, get_params = _make_opt(optimizers, name)
    x0 = np.array([0.5, -0.3])
    loss = lambda w: 0.5 * tnp.dot(w, tnp.dot(A.astype(np.float64), w)) - tnp.dot(B, w)
    grad = T.grad(loss)
    state = init(x0)
    assert get_params(state) is x0
    expected = _np_trajectory(name, lambda w: A @ w - B, x0, 5)
    for i in range(5):
        state = update(i, grad(get_params(state)), state)
        np.testing.assert_allclose(get_params(state), expected[i], rtol=1e-12)


# --------------------------------------------------------------------------------------------
# schedules, clipping, state (un)packing

SCHEDULES = {
    "constant": lambda s: s.constant(0.3),
    "exponential_decay": lambda s: s.exponential_decay(0.5, 4, 0.1),
    "inverse_time_decay": lambda s: s.inverse_time_decay(0.5, 3, 2.0),
    "inverse_time_decay_staircase": lambda s: s.inverse_time_decay(0.5, 3, 2.0, staircase=True),
    "polynomial_decay": lambda s: s.polynomial_decay(1.0, 8, 0.1, power=2.0),
    "piecewise_constant": lambda s: s.piecewise_constant([2, 5], [1.0, 0.5, 0.25]),
    "make_schedule_number": lambda s: s.make_schedule(0.25),
}
SCHEDULE_BY_HAND = {
    "constant": lambda i: 0.3,
    "exponential_decay": lambda i: 0.5 * 0.1 ** (i / 4),
    "inverse_time_decay": lambda i: 0.5 / (1 + 2.0 * i / 3),
    "inverse_time_decay_staircase": lambda i: 0.5 / (1 + 2.0 * (i // 3)),
    "polynomial_decay": lambda i: (1 - min(i, 8) / 8) ** 2 * 0.9 + 0.1,
    "piecewise_constant": lambda i: 1.0 if i <= 2 else 0.5 if i <= 5 else 0.25,
    "make_schedule_number": lambda i: 0.25,
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedules_by_hand_and_against_jax(name):
    schedule = SCHEDULES[name](optimizers)
    steps = range(12)
    got = [float(schedule(i)) for i in steps]
    np.testing.assert_allclose(got, [SCHEDULE_BY_HAND[name](i) for i in steps], rtol=1e-6)
    if name in ("piecewise_constant", "polynomial_decay"):
        # a traced step (under jit) gives the same values
        traced = T.jit(schedule)
        np.testing.assert_allclose([float(traced(i)) for i in (0, 2, 3, 9)],
                                   [got[i] for i in (0, 2, 3, 9)], rtol=1e-6)
    if jax is not None:
        theirs = SCHEDULES[name](jax_optimizers)
        np.testing.assert_allclose(got, [float(theirs(i)) for i in steps], rtol=1e-6)


def test_make_schedule_and_piecewise_constant_reject_bad_input():
    sched = lambda i: 0.1
    assert optimizers.make_schedule(sched) is sched
    with pytest.raises(TypeError, match="scalar or a callable"):
        optimizers.make_schedule(np.ones(3))
    with pytest.raises(TypeError, match="step size"):
        optimizers.sgd("fast")
    with pytest.raises(ValueError, match="one longer than boundaries"):
        optimizers.piecewise_constant([1, 2], [0.1, 0.2])


def test_l2_norm_and_clip_grads():
    tree = {"a": np.array([3.0, 0.0], np.float32), "b": (np.array([[4.0]], np.float32),)}
    assert float(optimizers.l2_norm(tree)) == 5.0
    same = optimizers.clip_grads(tree, 10.0)
    assert T.tree.structure(same) == T.tree.structure(tree)
    np.testing.assert_array_equal(same["a"], tree["a"])
    clipped = optimizers.clip_grads(tree, 1.0)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(clipped["b"][0], [[0.8]], rtol=1e-6)
    np.testing.assert_allclose(optimizers.l2_norm(clipped), 1.0, rtol=1e-6)
    if jax is not None:
        _assert_trees_close(clipped, jax_optimizers.clip_grads(tree, 1.0), what="clip_grads")
        np.testing.assert_allclose(optimizers.l2_norm(P0), jax_optimizers.l2_norm(P0),
                                   rtol=1e-6)


def test_pack_unpack_round_trip_and_the_state_pytree():
    init, update, get_params = optimizers.adam(0.1)
    grad = T.grad(_quadratic(tnp))
    state = update(0, grad(P0), init(P0))
    marked = optimizers.unpack_optimizer_state(state)
    # the parameters' structure, a JoinPoint at each leaf holding that leaf's (x, m, v)
    assert set(marked) == {"w", "m"} and isinstance(marked["w"], optimizers.JoinPoint)
    x, m, v = marked["w"].subtree
    np.testing.assert_array_equal(x, get_params(state)["w"])
    assert list(marked["w"]) == [marked["w"].subtree]
    packed = optimizers.pack_optimizer_state(marked)
    assert isinstance(packed, optimizers.OptimizerState)
    assert T.tree.structure(packed) == T.tree.structure(state)
    _assert_trees_close(packed, state, exact=True, what="round trip", jax_tree=False)
    # the round-tripped state keeps optimizing identically
    a = update(1, grad(get_params(state)), state)
    b = update(1, grad(get_params(packed)), packed)
    _assert_trees_close(a, b, exact=True, what="after round trip", jax_tree=False)
    # OptimizerState is a pytree of its arrays only: tree.map keeps the type and layout
    doubled = T.tree.map(lambda leaf: 2 * leaf, state)
    assert isinstance(doubled, optimizers.OptimizerState)
    assert doubled.tree_def == state.tree_def and doubled.subtree_defs == state.subtree_defs
    assert len(T.tree.leaves(state)) == 3 * len(T.tree.leaves(P0))
    with pytest.raises(TypeError, match="not a JoinPoint"):
        optimizers.pack_optimizer_state({"w": 1.0})
    if jax is not None:
        jinit, jupdate, _ = jax_optimizers.adam(0.1)
        jmarked = jax_optimizers.unpack_optimizer_state(jupdate(0, grad(P0), jinit(P0)))
        _assert_trees_close(marked["m"][0].subtree, jmarked["m"][0].subtree, what="unpacked")


def test_update_rejects_a_gradient_tree_of_another_structure():
    init, update, _ = optimizers.momentum(0.1, 0.9)
    state = init(P0)
    with pytest.raises(TypeError, match="gradient tree's structure .* differs from the param"):
        update(0, {"w": P0["w"]}, state)

    @optimizers.optimizer
    def broken(step_size):
        return (lambda x: (x, x), lambda i, g, s: (s[0],), lambda s: s[0])
    init, update, _ = broken(0.1)
    with pytest.raises(TypeError, match="changed its state's structure"):
        update(0, np.ones(2), init(np.ones(2)))


def test_custom_optimizer_from_the_decorator():
    @optimizers.optimizer
    def sign_sgd(step_size):
        """SGD on the gradients' signs."""
        step_size = optimizers.make_schedule(step_size)
        return (lambda x0: x0, lambda i, g, x: x - step_size(i) * tnp.sign(g), lambda x: x)

    assert sign_sgd.__doc__ == "SGD on the gradients' signs."
    init, update, get_params = sign_sgd(0.5)
    params = {"a": np.array([1.0, -2.0]), "b": np.array(3.0)}
    grads = {"a": np.array([0.1, -4.0]), "b": np.array(0.0)}
    new = get_params(update(0, grads, init(params)))
    np.testing.assert_array_equal(new["a"], [0.5, -1.5])
    np.testing.assert_array_equal(new["b"], 3.0)


# --------------------------------------------------------------------------------------------
# stax + optimizers under transforms.jit and grad

def test_jitted_adam_training_of_a_stax_mlp_equals_eager():
    init_fun, predict = stax.serial(stax.Dense(8), stax.Tanh, stax.Dense(3), stax.LogSoftmax)
    _, params = init_fun(random.PRNGKey(0), (-1, 4))
    x = _normal(16, 4)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 16)]

    def loss(p, batch):
        inputs, targets = batch
        return -tnp.mean(tnp.sum(predict(p, inputs) * targets, axis=1))

    opt_init, opt_update, get_params = optimizers.adam(0.05)

    def update(i, opt_state, batch):
        return opt_update(i, T.grad(loss)(get_params(opt_state), batch), opt_state)

    jit_update = T.jit(update)
    eager = jitted = opt_init(params)
    losses = []
    for i in range(4):
        eager = update(i, eager, (x, y))
        jitted = jit_update(i, jitted, (x, y))
        _assert_trees_close(get_params(jitted), get_params(eager), rtol=1e-5, atol=1e-6,
                            what=f"step {i}", jax_tree=False)
        losses.append(float(loss(get_params(jitted), (x, y))))
    assert isinstance(jitted, optimizers.OptimizerState)
    assert losses[-1] < losses[0]


# --------------------------------------------------------------------------------------------
# JAX's examples, ported by changing their imports only: each program below is the example's
# code, with `jit, grad, vmap, random, jnp, stax, optimizers, tree_flatten, tree_unflatten`
# bound by the caller (to this library's modules, or to JAX's), sizes shrunk to 8x8 digits.

def _digits(n):
    """`n` digit images scaled to [0, 1] with one-hot labels (scikit-learn's bundled set when
    installed, else ten Gaussian blobs of the same shape)."""
    try:
        from sklearn.datasets import load_digits
        d = load_digits()
        x, y = d.data[:n] / 16.0, d.target[:n]
    except ImportError:
        r = np.random.default_rng(0)
        y = r.integers(0, 10, size=n)
        x = r.uniform(size=(10, 64))[y] + 0.1 * r.normal(size=(n, 64))
    return x.astype(np.float32), np.eye(10, dtype=np.float32)[y]


def _batches(images, labels, batch_size):
    """examples' data_stream: a fixed NumPy permutation cut into batches, forever."""
    npr = np.random.RandomState(0)
    num_batches = len(images) // batch_size
    while True:
        perm = npr.permutation(len(images))
        for i in range(num_batches):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            yield images[idx], labels[idx]


def mnist_classifier(jit, grad, random, jnp, stax, optimizers, images, labels, num_steps):
    """examples/mnist_classifier.py: an MLP from stax trained with momentum."""
    from itertools import count
    Dense, Relu, LogSoftmax = stax.Dense, stax.Relu, stax.LogSoftmax

    def loss(params, batch):
        inputs, targets = batch
        preds = predict(params, inputs)
        return -jnp.mean(jnp.sum(preds * targets, axis=1))

    def accuracy(params, batch):
        inputs, targets = batch
        target_class = jnp.argmax(targets, axis=1)
        predicted_class = jnp.argmax(predict(params, inputs), axis=1)
        return jnp.mean(predicted_class == target_class)

    init_random_params, predict = stax.serial(
        Dense(32), Relu,
        Dense(32), Relu,
        Dense(10), LogSoftmax)

    rng = random.key(0)
    step_size = 0.3
    momentum_mass = 0.9
    batches = _batches(images, labels, batch_size=64)
    opt_init, opt_update, get_params = optimizers.momentum(step_size, mass=momentum_mass)

    @jit
    def update(i, opt_state, batch):
        params = get_params(opt_state)
        return opt_update(i, grad(loss)(params, batch), opt_state)

    _, init_params = init_random_params(rng, (-1, 8 * 8))
    opt_state = opt_init(init_params)
    itercount = count()
    train_loss = jit(loss)     # (the example reports accuracy per epoch; here the loss per step)
    losses = [float(train_loss(init_params, (images, labels)))]
    for _ in range(num_steps):
        opt_state = update(next(itercount), opt_state, next(batches))
        losses.append(float(train_loss(get_params(opt_state), (images, labels))))
    return np.array(losses), float(accuracy(get_params(opt_state), (images, labels)))


def dp_sgd(jit, grad, vmap, random, jnp, stax, optimizers, tree_flatten, tree_unflatten,
           images, labels, num_steps, learning_rate=1.0, noise_multiplier=1.1, l2_norm_clip=1.0,
           batch_size=64, seed=0):
    """examples/differentially_private_sgd.py's core: per-example gradients by
    vmap(grad), each clipped to an l2 norm, summed, noised, averaged; plain optimizers.sgd.
    The keywords are the example's flags."""
    from itertools import count

    init_random_params, predict = stax.serial(
        stax.Conv(8, (3, 3), padding='SAME', strides=(2, 2)),
        stax.Relu,
        stax.MaxPool((2, 2), (1, 1)),
        stax.Conv(8, (2, 2), padding='VALID', strides=(1, 1)),
        stax.Relu,
        stax.MaxPool((2, 2), (1, 1)),
        stax.Flatten,
        stax.Dense(16),
        stax.Relu,
        stax.Dense(10),
    )

    def loss(params, batch):
        inputs, targets = batch
        logits = predict(params, inputs)
        logits = stax.logsoftmax(logits)  # log normalize
        return -jnp.mean(jnp.sum(logits * targets, axis=1))  # cross entropy loss

    def clipped_grad(params, l2_norm_clip, single_example_batch):
        """Evaluate gradient for a single-example batch and clip its grad norm."""
        grads = grad(loss)(params, single_example_batch)
        nonempty_grads, tree_def = tree_flatten(grads)
        total_grad_norm = jnp.linalg.norm(
            jnp.array([jnp.linalg.norm(neg.ravel()) for neg in nonempty_grads]))
        divisor = jnp.maximum(total_grad_norm / l2_norm_clip, 1.)
        normalized_nonempty_grads = [g / divisor for g in nonempty_grads]
        return tree_unflatten(tree_def, normalized_nonempty_grads)

    def private_grad(params, batch, rng, l2_norm_clip, noise_multiplier, batch_size):
        """Return differentially private gradients for params, evaluated on batch."""
        clipped_grads = vmap(clipped_grad, (None, None, 0))(params, l2_norm_clip, batch)
        clipped_grads_flat, grads_treedef = tree_flatten(clipped_grads)
        aggregated_clipped_grads = [g.sum(0) for g in clipped_grads_flat]
        rngs = random.split(rng, len(aggregated_clipped_grads))
        noised_aggregated_clipped_grads = [
            g + l2_norm_clip * noise_multiplier * random.normal(r, g.shape)
            for r, g in zip(rngs, aggregated_clipped_grads)]
        normalized_noised_aggregated_clipped_grads = [
            g / batch_size for g in noised_aggregated_clipped_grads]
        return tree_unflatten(grads_treedef, normalized_noised_aggregated_clipped_grads)

    def shape_as_image(images, labels, dummy_dim=False):
        target_shape = (-1, 1, 8, 8, 1) if dummy_dim else (-1, 8, 8, 1)
        return jnp.reshape(images, target_shape), labels

    key = random.key(seed)
    batches = _batches(images, labels, batch_size)
    opt_init, opt_update, get_params = optimizers.sgd(learning_rate)

    @jit
    def private_update(rng, i, opt_state, batch):
        params = get_params(opt_state)
        rng = random.fold_in(rng, i)  # get new key for new random numbers
        return opt_update(
            i,
            private_grad(params, batch, rng, l2_norm_clip, noise_multiplier, batch_size),
            opt_state)

    _, init_params = init_random_params(key, (-1, 8, 8, 1))
    opt_state = opt_init(init_params)
    itercount = count()
    everything = shape_as_image(images, labels)
    test_loss = jit(loss)      # (the example evaluates once per epoch; here after every step)
    losses = [float(test_loss(init_params, everything))]
    for _ in range(num_steps):
        opt_state = private_update(key, next(itercount), opt_state,
                                   shape_as_image(*next(batches), dummy_dim=True))
        losses.append(float(test_loss(get_params(opt_state), everything)))
    return np.array(losses)


def _our_modules():
    return dict(jit=T.jit, grad=T.grad, random=random, jnp=tnp, stax=stax,
                optimizers=optimizers)


def _jax_modules():
    return dict(jit=jax.jit, grad=jax.grad, random=jax.random, jnp=jnp, stax=jax_stax,
                optimizers=jax_optimizers)


def test_mnist_classifier_example_ported():
    images, labels = _digits(512)
    losses, acc = mnist_classifier(**_our_modules(), images=images, labels=labels, num_steps=8)
    assert losses[-1] < 0.7 * losses[0] and acc > 0.4
    if jax is not None:
        jax_losses, jax_acc = mnist_classifier(**_jax_modules(), images=images, labels=labels,
                                               num_steps=8)
        np.testing.assert_allclose(losses, jax_losses, rtol=1e-4)
        assert abs(acc - jax_acc) < 0.01


def mnist_vae(jit, grad, lax, random, jnp, stax, optimizers, train_images, num_epochs):
    """examples/mnist_vae.py: a variational autoencoder whose encoder ends in FanOut and
    parallel branches (mean, softplus variance), trained with momentum inside a jitted
    lax.fori_loop that carries the OptimizerState; returns the ELBO per image after each
    epoch (sizes shrunk: 64 pixels, 32 hidden units, a 4-d code)."""
    Dense, FanOut, Relu, Softplus = stax.Dense, stax.FanOut, stax.Relu, stax.Softplus

    def gaussian_kl(mu, sigmasq):
        return -0.5 * jnp.sum(1. + jnp.log(sigmasq) - mu**2. - sigmasq)

    def gaussian_sample(rng, mu, sigmasq):
        return mu + jnp.sqrt(sigmasq) * random.normal(rng, mu.shape)

    def bernoulli_logpdf(logits, x):
        return -jnp.sum(jnp.logaddexp(0., jnp.where(x, -1., 1.) * logits))

    def elbo(rng, params, images):
        enc_params, dec_params = params
        mu_z, sigmasq_z = encode(enc_params, images)
        logits_x = decode(dec_params, gaussian_sample(rng, mu_z, sigmasq_z))
        return bernoulli_logpdf(logits_x, images) - gaussian_kl(mu_z, sigmasq_z)

    encoder_init, encode = stax.serial(
        Dense(32), Relu,
        FanOut(2),
        stax.parallel(Dense(4), stax.serial(Dense(4), Softplus)),
    )
    decoder_init, decode = stax.serial(Dense(32), Relu, Dense(64))

    step_size, batch_size = 0.001, 32
    test_rng = random.key(1)
    num_batches = train_images.shape[0] // batch_size
    enc_init_rng, dec_init_rng = random.split(random.key(2))
    _, init_encoder_params = encoder_init(enc_init_rng, (batch_size, 64))
    _, init_decoder_params = decoder_init(dec_init_rng, (batch_size, 4))
    init_params = init_encoder_params, init_decoder_params
    opt_init, opt_update, get_params = optimizers.momentum(step_size, mass=0.9)

    def binarize_batch(rng, i, images):
        i = i % num_batches
        batch = lax.dynamic_slice_in_dim(images, i * batch_size, batch_size)
        return random.bernoulli(rng, batch)

    @jit
    def run_epoch(rng, opt_state, images):
        def body_fun(i, opt_state):
            elbo_rng, data_rng = random.split(random.fold_in(rng, i))
            batch = binarize_batch(data_rng, i, images)
            loss = lambda params: -elbo(elbo_rng, params, batch) / batch_size
            g = grad(loss)(get_params(opt_state))
            return opt_update(i, g, opt_state)
        return lax.fori_loop(0, num_batches, body_fun, opt_state)

    @jit
    def evaluate(opt_state, images):
        params = get_params(opt_state)
        elbo_rng, data_rng = random.split(test_rng)
        binarized = random.bernoulli(data_rng, images)
        return elbo(elbo_rng, params, binarized) / images.shape[0]

    opt_state = opt_init(init_params)
    elbos = [float(evaluate(opt_state, train_images))]
    for epoch in range(num_epochs):
        opt_state = run_epoch(random.key(epoch), opt_state, train_images)
        elbos.append(float(evaluate(opt_state, train_images)))
    return np.array(elbos)


# JAX 0.10.2's losses for `dp_sgd` on scikit-learn's digits (512 images, 8 steps), recorded by
# running this file (`python tests/test_example_libraries.py`): compiling the example's
# vmap(grad) of a CNN takes XLA 10-25 s, too long to repeat in every run. The PRNG is JAX's bit
# for bit, so the same keys draw the same noise here.
DP_SGD_JAX_LOSSES = [2.310545, 2.2970245, 2.2983823, 2.2929931, 2.2957058, 2.292522, 2.2839,
                     2.2751796, 2.2762985]


def _dp_sgd_modules(use_jax):
    if use_jax:
        return dict(_jax_modules(), vmap=jax.vmap, tree_flatten=jax.tree_util.tree_flatten,
                    tree_unflatten=jax.tree_util.tree_unflatten)
    return dict(_our_modules(), vmap=T.vmap, tree_flatten=T.tree_util.tree_flatten,
                tree_unflatten=T.tree_util.tree_unflatten)


def _has_sklearn():
    try:
        import sklearn.datasets  # noqa: F401
        return True
    except ImportError:
        return False


def test_differentially_private_sgd_example_ported():
    images, labels = _digits(512)
    losses = dp_sgd(**_dp_sgd_modules(False), images=images, labels=labels, num_steps=8)
    # noised steps: the loss falls overall, not at every step
    assert losses[-1] < losses[0] - 0.02 and losses[-3:].mean() < losses[:3].mean()
    if _has_sklearn():
        np.testing.assert_allclose(losses, DP_SGD_JAX_LOSSES, rtol=1e-4)


# JAX 0.10.2's ELBOs for `mnist_vae` on scikit-learn's digits (256 images, 3 epochs), recorded
# as DP_SGD_JAX_LOSSES is (XLA compiles the fori_loop of grad for several seconds)
MNIST_VAE_JAX_ELBOS = [-46.02654, -44.74596, -43.66582, -42.58001]


def test_mnist_vae_example_ported():
    images, _ = _digits(256)
    elbos = mnist_vae(T.jit, T.grad, T.lax, random, tnp, stax, optimizers, images, num_epochs=3)
    assert np.all(np.diff(elbos) > 0.5)           # the ELBO rises every epoch
    if _has_sklearn():
        np.testing.assert_allclose(elbos, MNIST_VAE_JAX_ELBOS, rtol=1e-5)


if __name__ == "__main__":
    # print JAX's reference values for DP_SGD_JAX_LOSSES and MNIST_VAE_JAX_ELBOS
    with jax.enable_x64(False):
        images, labels = _digits(512)
        print("DP_SGD_JAX_LOSSES =", repr(
            dp_sgd(**_dp_sgd_modules(True), images=images, labels=labels, num_steps=8)
            .round(7).tolist()))
        images, _ = _digits(256)
        print("MNIST_VAE_JAX_ELBOS =", repr(
            mnist_vae(jax.jit, jax.grad, jax.lax, jax.random, jnp, jax_stax, jax_optimizers,
                      images, num_epochs=3).round(5).tolist()))
