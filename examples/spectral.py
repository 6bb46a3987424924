"""Learn a diffusion coefficient from noisy snapshots of a heat-equation solution, through a
spectral solver (`tnp.fft.rfft` / `irfft`), with `T.grad` + Adam under `T.jit`.

On a periodic domain the heat equation u_t = D u_xx is diagonal in Fourier space: each mode
k decays as exp(-D k² t), so the solution at time t is irfft(rfft(u0) * exp(-D k² t)). The
script simulates snapshots with a true D, adds noise, and fits log D (and the initial
amplitude scale) by gradient descent on the squared error — gradients flow through the FFTs.

    python examples/spectral.py [--steps N] [--fast]
"""
import argparse
import time

import numpy as np

import transforms as T
import transforms.numpy as tnp
from fnn import optim

TRUE_D = 0.35
N_POINTS = 128
TIMES = np.array([0.05, 0.2, 0.5, 1.0])


def initial_condition(x):
    return np.exp(-8 * (x - np.pi) ** 2) + 0.5 * np.sin(3 * x)


def solve(params, u0, times):
    """Snapshots u(x, t) for each t: the spectral solution with D = exp(log_d) and u0
    scaled by `scale`."""
    n = u0.shape[0]
    k = np.fft.rfftfreq(n, d=2 * np.pi / n) * 2 * np.pi          # angular wavenumbers
    d = tnp.exp(params["log_d"])
    u0_hat = tnp.fft.rfft(u0 * params["scale"])
    decay = tnp.exp(-d * (k ** 2)[None, :] * times[:, None])        # (times, modes)
    return tnp.fft.irfft(u0_hat[None, :] * decay, n=n, axis=-1)


def loss(params, u0, times, observed):
    return tnp.mean((solve(params, u0, times) - observed) ** 2)


def make_data(seed=0, noise=0.02):
    x = np.linspace(0, 2 * np.pi, N_POINTS, endpoint=False)
    u0 = initial_condition(x)
    truth = solve({"log_d": np.log(TRUE_D), "scale": 1.0}, u0, TIMES)
    rng = np.random.default_rng(seed)
    return u0, np.asarray(truth) + noise * rng.normal(size=truth.shape)


def fit(steps, lr=0.05):
    u0, observed = make_data()
    params = {"log_d": np.float64(np.log(0.05)), "scale": np.float64(0.7)}
    opt = optim.adam(lr)
    state = opt.init(params)

    @T.jit
    def step(params, state):
        value, grads = T.value_and_grad(loss)(params, u0, TIMES, observed)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state, value

    first = float(loss(params, u0, TIMES, observed))
    for _ in range(steps):
        params, state, _ = step(params, state)
    return first, float(loss(params, u0, TIMES, observed)), params


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=600, help="optimisation steps")
    p.add_argument("--fast", action="store_true", help="a few steps only (for tests)")
    args = p.parse_args(argv)
    steps = 250 if args.fast else args.steps
    t0 = time.perf_counter()
    before, after, params = fit(steps)
    d = float(np.exp(params["log_d"]))
    print(f"loss: {before:.5f} -> {after:.5f}")
    print(f"diffusion coefficient: learned {d:.4f}, true {TRUE_D}")
    print(f"initial amplitude scale: learned {float(params['scale']):.4f}, true 1.0")
    print(f"time: {time.perf_counter() - t0:.1f} s ({steps} steps)")
    return {"before": before, "after": after, "d": d, "scale": float(params["scale"])}


if __name__ == "__main__":
    main()
