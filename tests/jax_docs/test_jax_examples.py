"""JAX's example scripts that need no data set, ported by changing their imports: kernel least
squares by gradient descent (kernel_lsq.py), Gaussian-process regression
(gaussian_process_regression.py) and automatic-differentiation variational inference
(advi.py), with small sizes and few steps, plus the `example_libraries.optimizers` they use.

Each program is written once, as a function of a namespace `L` holding what the script
imports (`L.jnp`, `L.random`, `L.optimizers`, ...): `_OURS` fills it from this library,
`_JAX` from JAX, and the tests run both and compare the numbers. Where our NumPy float64
defaults make a program compute in float64 (`jnp.zeros` parameters) JAX's float32 numbers
are matched to float32 accuracy; the README's porting table lists that difference."""
from functools import partial
import types

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
import transforms.scipy as tscipy
import transforms.scipy.stats.norm as tnorm          # JAX's `import jax.scipy.stats.norm`
from transforms import lax, random
from transforms.example_libraries import optimizers

try:
    import jax
    import jax.numpy as jnp
    import jax.scipy as jscipy
    import jax.scipy.stats.norm as jnorm
    from jax.example_libraries import optimizers as joptimizers
except ImportError:   # pragma: no cover
    jax = None

needs_jax = pytest.mark.skipif(jax is None, reason="JAX not importable")
pytestmark = pytest.mark.usefixtures("jax_x32")

# `outer` wraps the parts each script runs eagerly: as they are on our side (our eager mode is
# cheap), under jax.jit on JAX's (its op-by-op mode compiles every primitive: seconds)
_OURS = types.SimpleNamespace(jit=T.jit, grad=T.grad, vmap=T.vmap, make_jaxpr=T.make_jaxpr,
                              jnp=tnp, lax=lax, random=random, optimizers=optimizers,
                              norm=tnorm, scipy=tscipy, outer=lambda f: f)
_JAX = None if jax is None else types.SimpleNamespace(
    jit=jax.jit, grad=jax.grad, vmap=jax.vmap, make_jaxpr=jax.make_jaxpr, jnp=jnp,
    lax=jax.lax, random=jax.random, optimizers=joptimizers, norm=jnorm, scipy=jscipy,
    outer=jax.jit)


def _close(ours, theirs, rtol, atol=0.0):
    o, t = T.tree.leaves(ours), jax.tree.leaves(theirs)
    assert len(o) == len(t)
    for a, b in zip(o, t):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


# --- jax.scipy.stats as the examples use it ----------------------------------------------------

def test_stats_distributions_import_as_modules_and_python_scalars_stay_weak():
    import importlib
    for name in ("norm", "t", "multivariate_normal", "beta"):
        mod = importlib.import_module(f"transforms.scipy.stats.{name}")
        assert mod is getattr(tscipy.stats, name)
    x = np.array([0.5, -1.0], np.float32)
    # Python scalars adapt to the float32 operand (advi.py's `norm.logpdf(x, 0, 1.35)`)
    for out in (tnorm.logpdf(x, 0, 1.35), T.jit(lambda x, s: tnorm.logpdf(x, 0, s))(x, 1.35),
                tscipy.stats.t.logpdf(x, 3.0), tscipy.stats.gamma.logpdf(x + 2, 2.0)):
        assert out.dtype == np.float32
    assert tnorm.logpdf(0.5).dtype == np.float64           # Python scalars only: NumPy's
    assert tnorm.logpdf(np.int32(1)).dtype == np.float64   # int32 with float32: NumPy's
    np.testing.assert_allclose(tnorm.logpdf(x, 0, 1.35),
                               -0.5 * (x / 1.35) ** 2 - np.log(1.35) - 0.5 * np.log(2 * np.pi),
                               rtol=1e-6)


# --- example_libraries.optimizers ----------------------------------------------------------------

_PARAMS = {"w": np.linspace(-1, 1, 6).astype(np.float32).reshape(2, 3),
           "b": (np.float32(0.5), np.ones(2, np.float32))}


def _train(L, name, args, steps=6):
    """`steps` jitted updates of optimizer `name` on a small pytree problem."""
    def loss(p):
        return (L.jnp.sum(L.jnp.tanh(p["w"]) ** 2) + L.jnp.sum((p["b"][1] - 3.0) ** 2)
                + p["b"][0] ** 4)

    opt_init, opt_update, get_params = getattr(L.optimizers, name)(*args(L))
    opt_state = opt_init(_PARAMS)

    @L.jit
    def update(i, opt_state):
        return opt_update(i, L.grad(loss)(get_params(opt_state)), opt_state)

    for i in range(steps):
        opt_state = update(i, opt_state)
    return get_params(opt_state)


_OPTIMIZERS = {
    "sgd": ("sgd", lambda L: (0.1,)),
    "momentum": ("momentum", lambda L: (0.1, 0.9)),
    "nesterov": ("nesterov", lambda L: (0.1, 0.9)),
    "adagrad": ("adagrad", lambda L: (0.2,)),
    "rmsprop": ("rmsprop", lambda L: (0.05,)),
    "rmsprop_momentum": ("rmsprop_momentum", lambda L: (0.05,)),
    "adam": ("adam", lambda L: (0.05,)),
    "adamax": ("adamax", lambda L: (0.05,)),
    "adam, exponential decay": ("adam", lambda L: (L.optimizers.exponential_decay(0.1, 3, 0.5),)),
    "sgd, piecewise constant": ("sgd", lambda L: (
        L.optimizers.piecewise_constant([2, 4], [0.1, 0.05, 0.01]),)),
    "sgd, inverse time staircase": ("sgd", lambda L: (
        L.optimizers.inverse_time_decay(0.1, 2, 0.5, staircase=True),)),
    "momentum, polynomial decay": ("momentum", lambda L: (
        L.optimizers.polynomial_decay(0.1, 4, 0.01, 2.0), 0.5)),
}


@needs_jax
@pytest.mark.parametrize("case", list(_OPTIMIZERS))
def test_optimizers_match_jax_example_libraries(case):
    name, args = _OPTIMIZERS[case]
    ours, theirs = _train(_OURS, name, args), _train(_JAX, name, args)
    assert T.tree.structure(ours) == T.tree.structure(_PARAMS)
    assert all(np.asarray(x).dtype == np.float32 for x in T.tree.leaves(ours))
    _close(ours, theirs, rtol=2e-6, atol=1e-7)


@needs_jax
def test_schedules_and_gradient_utilities_match_jax():
    steps = np.arange(8)
    for make in (lambda O: O.exponential_decay(0.5, 3, 0.1),
                 lambda O: O.inverse_time_decay(0.5, 2, 1.0),
                 lambda O: O.polynomial_decay(1.0, 5, 0.1, 2.0),
                 lambda O: O.piecewise_constant([1, 5], [1.0, 0.5, 0.25]),
                 lambda O: O.make_schedule(0.3)):
        ours, theirs = make(optimizers), make(joptimizers)
        theirs = jax.jit(theirs)
        np.testing.assert_allclose([float(ours(i)) for i in steps],
                                   [float(theirs(i)) for i in steps], rtol=1e-6)
    grads = {"a": np.array([3.0, 4.0], np.float32), "b": np.float32(12.0)}
    for max_norm in (1.0, 100.0):
        _close(optimizers.clip_grads(grads, max_norm),
               jax.jit(joptimizers.clip_grads, static_argnums=1)(grads, max_norm), rtol=1e-6)
    assert float(optimizers.l2_norm(grads)) == float(joptimizers.l2_norm(grads)) == 13.0


def test_optimizer_state_is_a_pytree_that_packs_and_unpacks():
    opt_init, opt_update, get_params = optimizers.adam(0.1)
    state = opt_init(_PARAMS)
    # one state leaf per (parameter leaf, moment): x, m, v for each of the 3 parameters
    assert len(T.tree.leaves(state)) == 9
    state = T.jit(lambda s: opt_update(0, T.tree.map(tnp.ones_like, _PARAMS), s))(state)
    unpacked = optimizers.unpack_optimizer_state(state)
    assert isinstance(unpacked["w"], optimizers.JoinPoint)
    repacked = optimizers.pack_optimizer_state(unpacked)
    T.tree.map(np.testing.assert_array_equal, get_params(repacked), get_params(state))
    # each parameter moved against its (all-ones) gradient by the step size
    np.testing.assert_allclose(get_params(state)["w"], _PARAMS["w"] - 0.1, atol=1e-6)
    with pytest.raises(TypeError, match="structure"):
        opt_update(1, {"w": _PARAMS["w"]}, state)
    with pytest.raises(TypeError, match="step size"):
        optimizers.sgd("fast")


# --- kernel_lsq.py ----------------------------------------------------------------------------

def _kernel_lsq(L, xs, ys, kernel_name, num_steps=40):
    """The example's gram / minimize / train, unchanged but for sizes and steps."""
    jnp, vmap, jit, grad, lax, optimizers = L.jnp, L.vmap, L.jit, L.grad, L.lax, L.optimizers

    def gram(kernel, xs):
        return vmap(lambda x: vmap(lambda y: kernel(x, y))(xs))(xs)

    def minimize(f, x, num_steps=10000, step_size=0.000001, mass=0.9):
        opt_init, opt_update, get_params = optimizers.momentum(step_size, mass)

        @jit
        def update(i, opt_state):
            x = get_params(opt_state)
            return opt_update(i, grad(f)(x), opt_state)

        opt_state = opt_init(x)
        for i in range(num_steps):
            opt_state = update(i, opt_state)
        return get_params(opt_state)

    def train(kernel, xs, ys, regularization=0.01):
        gram_ = jit(partial(gram, kernel))
        gram_mat = gram_(xs)
        n = xs.shape[0]

        def objective(v):
            risk = .5 * jnp.sum((jnp.dot(gram_mat, v) - ys) ** 2.0)
            reg = regularization * jnp.sum(v ** 2.0)
            return risk + reg

        v = minimize(objective, jnp.zeros(n, jnp.float32), num_steps, step_size=0.002)

        def predict(x):
            prods = vmap(lambda x_: kernel(x, x_))(xs)
            return jnp.sum(v * prods)

        return jit(vmap(predict)), v

    kernels = {
        "linear": lambda x, y: jnp.dot(x, y, precision=lax.Precision.HIGH),
        "rbf": lambda x, y: jnp.exp(-jnp.sum((x - y) ** 2)),
    }
    predict, v = train(kernels[kernel_name], xs, ys)
    jaxpr = L.make_jaxpr(partial(gram, kernels[kernel_name]))(xs)
    return predict(xs), v, jaxpr


def _lsq_data():
    rng = np.random.default_rng(0)
    truth = rng.standard_normal(4).astype(np.float32)
    xs = rng.standard_normal((12, 4)).astype(np.float32)
    return xs, (xs @ truth).astype(np.float32)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_kernel_least_squares_fits_and_matches_jax(kernel):
    xs, ys = _lsq_data()
    pred, v, jaxpr = _kernel_lsq(_OURS, xs, ys, kernel)
    assert pred.dtype == v.dtype == np.float32 and pred.shape == (12,)
    mse0 = float(np.sum(ys ** 2))
    mse = float(np.sum((pred - ys) ** 2))
    assert mse < 0.2 * mse0                       # the descent fitted the targets
    # the traced Gram matrix is one batched program, no Python loop over the 12 points
    assert len(jaxpr.jaxpr.eqns) < 12
    if jax is not None:
        jpred, jv, _ = _kernel_lsq(_JAX, xs, ys, kernel)
        np.testing.assert_allclose(v, np.asarray(jv), rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(pred, np.asarray(jpred), rtol=2e-4, atol=2e-4)


# --- gaussian_process_regression.py -------------------------------------------------------------

def _gp_regression(L, steps=25):
    """The example's main(), unchanged but for the step count and test grid (no plotting)."""
    jnp, vmap, jit, grad, random, scipy = L.jnp, L.vmap, L.jit, L.grad, L.random, L.scipy
    numpts = 7
    key = random.key(0)
    eye = jnp.eye(numpts)

    def cov_map(cov_func, xs, xs2=None):
        if xs2 is None:
            return vmap(lambda x: vmap(lambda y: cov_func(x, y))(xs))(xs)
        else:
            return vmap(lambda x: vmap(lambda y: cov_func(x, y))(xs))(xs2).T

    def softplus(x):
        return jnp.logaddexp(x, 0.)

    def exp_quadratic(x1, x2):
        return jnp.exp(-jnp.sum((x1 - x2)**2))

    def gp(params, x, y, xtest=None, compute_marginal_likelihood=False):
        noise = softplus(params['noise'])
        amp = softplus(params['amplitude'])
        ls = softplus(params['lengthscale'])
        ymean = jnp.mean(y)
        y = y - ymean
        x = x / ls
        train_cov = amp*cov_map(exp_quadratic, x) + eye * (noise + 1e-6)
        chol = scipy.linalg.cholesky(train_cov, lower=True)
        kinvy = scipy.linalg.solve_triangular(
            chol.T, scipy.linalg.solve_triangular(chol, y, lower=True))
        if compute_marginal_likelihood:
            log2pi = jnp.log(2. * 3.1415)
            ml = jnp.sum(
                -0.5 * jnp.dot(y.T, kinvy) -
                jnp.sum(jnp.log(jnp.diag(chol))) -
                (numpts / 2.) * log2pi)
            ml -= jnp.sum(-0.5 * jnp.log(2 * 3.1415) - jnp.log(amp) - 0.5 * jnp.log(amp)**2)
            return -ml

        if xtest is not None:
            xtest = xtest / ls
        cross_cov = amp*cov_map(exp_quadratic, x, xtest)
        mu = jnp.dot(cross_cov.T, kinvy) + ymean
        v = scipy.linalg.solve_triangular(chol, cross_cov, lower=True)
        var = (amp * cov_map(exp_quadratic, xtest) - jnp.dot(v.T, v))
        return mu, var

    marginal_likelihood = partial(gp, compute_marginal_likelihood=True)
    predict = partial(gp, compute_marginal_likelihood=False)
    grad_fun = jit(grad(marginal_likelihood))
    marginal_likelihood, predict = L.outer(marginal_likelihood), L.outer(predict)

    params = {"amplitude": jnp.zeros((1, 1)),
              "noise": jnp.zeros((1, 1)) - 5.,
              "lengthscale": jnp.zeros((1, 1))}
    momentums = {k: p * 0. for k, p in params.items()}
    scales = {k: p * 0. + 1. for k, p in params.items()}

    lr = 0.01

    def train_step(params, momentums, scales, x, y):
        grads = grad_fun(params, x, y)
        for k in params:
            momentums[k] = 0.9 * momentums[k] + 0.1 * grads[k][0]
            scales[k] = 0.9 * scales[k] + 0.1 * grads[k][0]**2
            params[k] -= lr * momentums[k]/jnp.sqrt(scales[k] + 1e-5)
        return params, momentums, scales

    train_step = L.outer(train_step)
    y_fun = lambda x: jnp.sin(x) + 0.1 * random.normal(key, shape=(x.shape[0], 1))  # noqa
    x = (random.uniform(key, shape=(numpts, 1)) * 4.) + 1
    y = y_fun(x)
    xtest = jnp.linspace(0, 6., 9)[:, None]

    history = []
    for i in range(steps):
        params, momentums, scales = train_step(params, momentums, scales, x, y)
        if i % 8 == 0:
            history.append(marginal_likelihood(params, x, y))
    mu, var = predict(params, x, y, xtest)
    return params, history, mu, var, (x, y)


def test_gaussian_process_regression_trains_and_matches_jax():
    params, history, mu, var, (x, y) = _gp_regression(_OURS)
    # the negative marginal likelihood goes down; the posterior variance is a covariance
    assert float(history[-1]) < float(history[0])
    assert mu.shape == (9, 1) and var.shape == (9, 9)
    np.testing.assert_allclose(var, var.T, atol=1e-6)
    assert np.all(np.diag(var) > -1e-6)
    if jax is not None:
        jparams, jhistory, jmu, jvar, (jx, jy) = _gp_regression(_JAX)
        # the same draws from the same key (float32 streams give JAX's bits)
        np.testing.assert_array_equal(x, np.asarray(jx))
        np.testing.assert_allclose(y, np.asarray(jy), rtol=1e-6)
        # our parameters are float64 (tnp.zeros: NumPy's default), JAX's float32
        _close(params, jparams, rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(history, np.asarray(jhistory), rtol=1e-4)
        np.testing.assert_allclose(mu, np.asarray(jmu), rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(var, np.asarray(jvar), rtol=1e-2, atol=2e-4)


# --- advi.py -------------------------------------------------------------------------------------

def _advi(L, steps=30, num_samples=16, step_size=0.02):
    """The example's ELBO functions and optimisation loop, unchanged but for sizes (no plots)."""
    jnp, vmap, jit, grad, random, norm, optimizers = (L.jnp, L.vmap, L.jit, L.grad, L.random,
                                                       L.norm, L.optimizers)

    def diag_gaussian_sample(rng, mean, log_std):
        return mean + jnp.exp(log_std) * random.normal(rng, mean.shape)

    def diag_gaussian_logpdf(x, mean, log_std):
        return jnp.sum(vmap(norm.logpdf)(x, mean, jnp.exp(log_std)))

    def elbo(logprob, rng, mean, log_std):
        sample = diag_gaussian_sample(rng, mean, log_std)
        return logprob(sample) - diag_gaussian_logpdf(sample, mean, log_std)

    def batch_elbo(logprob, rng, params, num_samples):
        rngs = random.split(rng, num_samples)
        vectorized_elbo = vmap(partial(elbo, logprob), in_axes=(0, None, None))
        return jnp.mean(vectorized_elbo(rngs, *params))

    def funnel_log_density(params):
        return norm.logpdf(params[0], 0, jnp.exp(params[1])) + \
            norm.logpdf(params[1], 0, 1.35)

    @jit
    def objective(params, t):
        rng = random.key(t)
        return -batch_elbo(funnel_log_density, rng, params, num_samples)

    D = 2
    init_mean = jnp.zeros(D, jnp.float32)
    init_std = jnp.zeros(D, jnp.float32)
    init_params = (init_mean, init_std)
    opt_init, opt_update, get_params = optimizers.momentum(step_size=step_size, mass=0.9)
    opt_state = opt_init(init_params)

    @jit
    def update(i, opt_state):
        params = get_params(opt_state)
        gradient = grad(objective)(params, i)
        return opt_update(i, gradient, opt_state)

    bounds = []
    for t in range(steps):
        opt_state = update(t, opt_state)
        bounds.append(objective(get_params(opt_state), t))
    rngs = random.split(random.key(3), num_samples)
    samples = L.outer(vmap(diag_gaussian_sample, in_axes=(0, None, None)))(
        rngs, *get_params(opt_state))
    return get_params(opt_state), bounds, samples


def test_advi_fits_the_funnel_and_matches_jax():
    (mean, log_std), bounds, samples = _advi(_OURS)
    assert mean.dtype == log_std.dtype == samples.dtype == np.float32
    assert samples.shape == (16, 2)
    # from the standard normal start the bound first worsens, then the optimiser turns it
    # round (fresh samples each step: not monotone); the y-scale shrinks into the funnel
    assert float(bounds[-1]) < max(float(b) for b in bounds) - 3.0
    assert float(log_std[1]) < -2.0
    if jax is not None:
        (jmean, jlog_std), jbounds, jsamples = _advi(_JAX)
        np.testing.assert_allclose(mean, np.asarray(jmean), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(log_std, np.asarray(jlog_std), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(bounds, np.asarray(jbounds), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(samples, np.asarray(jsamples), rtol=1e-4, atol=1e-5)
