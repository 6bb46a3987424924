"""Gaussian-process regression on a 1-D synthetic problem: fit the kernel's hyperparameters by
minimising the negative log marginal likelihood, then predict with the posterior mean.

    python examples/gaussian_process.py                 # 300 Adam steps
    python examples/gaussian_process.py --plot gp.png   # data, truth, posterior mean +- 2 sd
    python examples/gaussian_process.py --fast          # fewer steps (used by the tests)

The kernel is RBF plus noise, k(x, x') = s^2 exp(-(x - x')^2 / (2 l^2)) + sigma^2 [x = x'],
with the three hyperparameters learned in log space (log l, log s^2, log sigma). The NLL

    0.5 y^T K^-1 y + sum(log diag L) + n/2 log(2 pi),   K = L L^T,

goes through `tnp.linalg.cholesky` and `transforms.scipy.linalg.cho_solve` (the log-determinant
is twice the sum of the log of the Cholesky diagonal); one jitted step is `T.value_and_grad`
of it plus `fnn.optim.adam`.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import transforms as T
import transforms.numpy as tnp
from fnn import optim
from transforms.scipy.linalg import cho_solve, solve_triangular

NOISE = 0.15          # the data's noise sd (f itself is not a GP sample: no "true" lengthscale)


def true_function(x):
    return np.sin(2.0 * x) + 0.3 * x


def make_data(seed, n, noise, n_test=200):
    """(x, y) training points (x uniform on [-3, 3], noisy y) and a noise-free test grid."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-3.0, 3.0, n))
    y = true_function(x) + noise * rng.standard_normal(n)
    x_test = np.linspace(-3.0, 3.0, n_test)
    return x, y, x_test, true_function(x_test)


def rbf(params, xa, xb):
    """The RBF kernel matrix s^2 exp(-(xa_i - xb_j)^2 / (2 l^2))."""
    ell = tnp.exp(params["log_lengthscale"])
    d = (xa[:, None] - xb[None, :]) / ell
    return tnp.exp(params["log_variance"]) * tnp.exp(-0.5 * d * d)


def noisy_gram(params, x):
    n = x.shape[0]
    noise_var = tnp.exp(2.0 * params["log_noise"]) + 1e-6       # jitter keeps K numerically SPD
    return rbf(params, x, x) + noise_var * tnp.eye(n)


def nll(params, x, y):
    """The negative log marginal likelihood of y under GP(0, k) at `params`."""
    n = x.shape[0]
    L = tnp.linalg.cholesky(noisy_gram(params, x))
    alpha = cho_solve((L, True), y)
    log_det = 2.0 * tnp.sum(tnp.log(tnp.diagonal(L)))
    return 0.5 * tnp.dot(y, alpha) + 0.5 * log_det + 0.5 * n * np.log(2.0 * np.pi)


def posterior(params, x, y, x_test):
    """(mean, standard deviation) of the latent function at `x_test` given the data."""
    L = tnp.linalg.cholesky(noisy_gram(params, x))
    k_star = rbf(params, x, x_test)                               # (n, n_test)
    mean = k_star.T @ cho_solve((L, True), y)
    v = solve_triangular(L, k_star, lower=True)                    # L^-1 k_star
    var = tnp.exp(params["log_variance"]) - tnp.sum(v * v, axis=0)
    return mean, tnp.sqrt(tnp.maximum(var, 0.0))


def init_params(lengthscale, variance, noise):
    return {"log_lengthscale": np.log(lengthscale), "log_variance": np.log(variance),
            "log_noise": np.log(noise)}


def hypers(params):
    return {"lengthscale": float(np.exp(params["log_lengthscale"])),
            "variance": float(np.exp(params["log_variance"])),
            "noise": float(np.exp(params["log_noise"]))}


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=300, help="optimisation steps")
    p.add_argument("--lr", type=float, default=0.05, help="learning rate")
    p.add_argument("--n", type=int, default=60, help="training points")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--plot", metavar="FILE", help="write the posterior and NLL curve to a PNG")
    p.add_argument("--fast", action="store_true", help="fewer steps (for tests)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    x, y, x_test, f_test = make_data(args.seed, args.n, NOISE)
    # deliberately poor start: a long lengthscale and a large noise over-smooth the data
    params = init_params(lengthscale=3.0, variance=0.3, noise=1.0)
    initial = params
    opt = optim.adam(args.lr)
    opt_state = opt.init(params)

    @T.jit
    def step(params, opt_state, x, y):
        value, grads = T.value_and_grad(nll)(params, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, value

    steps = 120 if args.fast else args.steps
    nll_before = float(nll(params, x, y))
    losses = []
    t0 = time.perf_counter()
    for _ in range(steps):
        params, opt_state, value = step(params, opt_state, x, y)
        losses.append(float(value))
    seconds = time.perf_counter() - t0
    nll_after = float(nll(params, x, y))

    # the posterior is computed once per parameter set: eagerly (no compilation to amortise)
    mean0, _ = posterior(initial, x, y, x_test)
    mean, sd = posterior(params, x, y, x_test)
    rmse_before, rmse_after = rmse(mean0, f_test), rmse(mean, f_test)
    learned = hypers(params)
    print(f"GP regression, {args.n} points, RBF + noise kernel; {steps} Adam steps in "
          f"{seconds:.2f} s (first includes compilation)")
    print(f"NLL: {nll_before:.4f} -> {nll_after:.4f}")
    print("learned: " + ", ".join(f"{k} = {v:.4f}" for k, v in learned.items())
          + f" (data noise sd {NOISE})")
    print(f"test RMSE of the posterior mean vs the true function: {rmse_after:.4f} "
          f"(initial hyperparameters: {rmse_before:.4f}; noise sd {NOISE})")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        ax1.scatter(x, y, s=10, c="k", label="data")
        ax1.plot(x_test, f_test, "g--", label="true f")
        ax1.plot(x_test, mean, "b", label="posterior mean")
        ax1.fill_between(x_test, mean - 2 * sd, mean + 2 * sd, color="b", alpha=0.2,
                         label="+- 2 sd")
        ax1.plot(x_test, mean0, "r:", label="initial hyperparameters")
        ax1.legend(fontsize=8)
        ax2.plot(losses)
        ax2.set_xlabel("step")
        ax2.set_ylabel("negative log marginal likelihood")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        plt.close(fig)
        print(f"wrote {args.plot}")
    return {"losses": losses, "nll_before": nll_before, "nll_after": nll_after,
            "hypers": learned, "rmse_before": rmse_before, "rmse_after": rmse_after,
            "seconds": seconds}


if __name__ == "__main__":
    main()
