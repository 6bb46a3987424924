"""Benchmark one SGD training step of a small CNN against JAX and PyTorch (when installed).

Usage::

    python benchmarks/cnn.py [--batch 64] [--repeats 20] [--no-jit]

Model (NHWC, float32): input 64x28x28x1 -> conv 3x3x32 (VALID) -> relu -> conv 3x3x64 (VALID)
-> relu -> max-pool 2x2 -> flatten (12*12*64) -> dense 128 -> relu -> dense 10 ->
softmax cross-entropy; the step computes the loss gradient and applies SGD.

For `transforms` the step runs under `T.jit` when it exists (else eagerly on the NumPy
implementations). JAX runs the same step under `jax.jit`, PyTorch in eager mode. Each is
warmed up, then timed in alternating bursts (see _timing.py; about `--repeats` calls each),
side by side with one BLAS matmul of the size of each big convolution product; the medians
and ratios are printed, and the BLAS environment (the step is dominated by matmuls).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import transforms as T  # noqa: E402
import transforms.numpy as tnp  # noqa: E402
from transforms import lax  # noqa: E402
from _timing import interleaved  # noqa: E402

DN = ("NHWC", "HWIO", "NHWC")


def init_params(seed=0):
    rng = np.random.default_rng(seed)

    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    return {
        "c1": {"w": he((3, 3, 1, 32), 9), "b": np.zeros(32, np.float32)},
        "c2": {"w": he((3, 3, 32, 64), 9 * 32), "b": np.zeros(64, np.float32)},
        "d1": {"w": he((12 * 12 * 64, 128), 12 * 12 * 64), "b": np.zeros(128, np.float32)},
        "d2": {"w": he((128, 10), 128), "b": np.zeros(10, np.float32)},
    }


def make_data(batch, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    return x, np.eye(10, dtype=np.float32)[y]


# ---------------------------------------------------------------------------------------------
# transforms
# ---------------------------------------------------------------------------------------------

def loss_fn(params, x, y_onehot):
    h = lax.conv_general_dilated(x, params["c1"]["w"], (1, 1), "VALID", dimension_numbers=DN)
    h = tnp.maximum(h + params["c1"]["b"], 0.0)
    h = lax.conv_general_dilated(h, params["c2"]["w"], (1, 1), "VALID", dimension_numbers=DN)
    h = tnp.maximum(h + params["c2"]["b"], 0.0)
    h = lax.max_pool(h, (2, 2))
    h = h.reshape(h.shape[0], -1)
    h = tnp.maximum(h @ params["d1"]["w"] + params["d1"]["b"], 0.0)
    logits = h @ params["d2"]["w"] + params["d2"]["b"]
    m = tnp.max(logits, axis=-1, keepdims=True)
    logp = logits - m - tnp.log(tnp.sum(tnp.exp(logits - m), axis=-1, keepdims=True))
    return -tnp.mean(tnp.sum(logp * y_onehot, axis=-1))


def make_step(lr=0.01):
    def step(params, x, y):
        loss, g = T.value_and_grad(loss_fn)(params, x, y)
        new = T.tree.map(lambda p, gp: p - lr * gp, params, g)
        return new, loss
    return step


# ---------------------------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------------------------

def jax_step_fn():
    import jax
    import jax.numpy as jnp

    def loss(params, x, y):
        h = jax.lax.conv_general_dilated(x, params["c1"]["w"], (1, 1), "VALID",
                                         dimension_numbers=DN)
        h = jax.nn.relu(h + params["c1"]["b"])
        h = jax.lax.conv_general_dilated(h, params["c2"]["w"], (1, 1), "VALID",
                                         dimension_numbers=DN)
        h = jax.nn.relu(h + params["c2"]["b"])
        h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        h = h.reshape(h.shape[0], -1)
        h = jax.nn.relu(h @ params["d1"]["w"] + params["d1"]["b"])
        logits = h @ params["d2"]["w"] + params["d2"]["b"]
        return -jnp.mean(jnp.sum(jax.nn.log_softmax(logits) * y, axis=-1))

    @jax.jit
    def step(params, x, y):
        l, g = jax.value_and_grad(loss)(params, x, y)
        return jax.tree_util.tree_map(lambda p, gp: p - 0.01 * gp, params, g), l

    def run(params, x, y):
        out = step(params, x, y)
        jax.block_until_ready(out)
        return out
    return run


def torch_step_fn(params_np):
    import torch
    import torch.nn.functional as F
    p = {k: {n: torch.tensor(v) for n, v in d.items()} for k, d in params_np.items()}
    w1 = p["c1"]["w"].permute(3, 2, 0, 1).contiguous().requires_grad_()
    w2 = p["c2"]["w"].permute(3, 2, 0, 1).contiguous().requires_grad_()
    b1, b2 = p["c1"]["b"].requires_grad_(), p["c2"]["b"].requires_grad_()
    d1 = p["d1"]["w"].requires_grad_()
    d2 = p["d2"]["w"].requires_grad_()
    e1, e2 = p["d1"]["b"].requires_grad_(), p["d2"]["b"].requires_grad_()
    params = [w1, b1, w2, b2, d1, e1, d2, e2]
    opt = torch.optim.SGD(params, lr=0.01)

    def run(_, x, y):
        xt = torch.from_numpy(x).permute(0, 3, 1, 2)
        yt = torch.from_numpy(y)
        h = F.relu(F.conv2d(xt, w1, b1))
        h = F.relu(F.conv2d(h, w2, b2))
        h = F.max_pool2d(h, 2).permute(0, 2, 3, 1).reshape(h.shape[0], -1)
        h = F.relu(h @ d1 + e1)
        logits = h @ d2 + e2
        loss = -(F.log_softmax(logits, -1) * yt).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--no-jit", action="store_true")
    args = ap.parse_args()
    params = init_params()
    x, y = make_data(args.batch)
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')} "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')} "
          f"cores={os.cpu_count()}")
    step = make_step()
    mode = "eager"
    jit = getattr(T, "jit", None)
    if jit is None:
        try:
            from transforms.jit import jit
        except ImportError:
            jit = None
    if jit is not None and not args.no_jit:
        step = jit(step)
        mode = "jit"
        t0 = time.perf_counter()
        step(params, x, y)
        print(f"transforms jit: first call (trace + compile) {time.perf_counter() - t0:.2f} s")
    # the floor this machine gives: the step's three big convolution products (forward,
    # input gradient, kernel gradient of conv2) are each about one of these matmuls
    rng = np.random.default_rng(2)
    a = rng.standard_normal((args.batch * 24 * 24, 288)).astype(np.float32)
    b = rng.standard_normal((288, 64)).astype(np.float32)
    cands = {"transforms": lambda: step(params, x, y), "blas": lambda: a @ b}
    for name, make in (("jax", jax_step_fn), ("torch", lambda: torch_step_fn(params))):
        try:
            run = make()
            cands[name] = (lambda run=run: run(params, x, y))
        except ImportError:
            print(f"{name}: not installed")
    # alternating rounds (see _timing.py): every candidate sees the same machine drift
    results = interleaved(cands, args.repeats)
    print(f"transforms ({mode}): median {results['transforms'] * 1e3:.1f} ms")
    # check the step computes the same loss as a float64 eager reference
    _, loss = make_step()(params, x, y)
    print(f"  loss {float(np.asarray(loss)):.5f}")
    for k, label in (("jax", "jax (jit)"), ("torch", "pytorch (eager)")):
        if k in results:
            print(f"{label}: median {results[k] * 1e3:.1f} ms")
    print(f"numpy matmul {a.shape[0]}x288 @ 288x64 (BLAS reference): median "
          f"{results['blas'] * 1e3:.1f} ms; step / reference = "
          f"{results['transforms'] / results['blas']:.2f}")
    for k in ("jax", "torch"):
        if k in results:
            print(f"transforms / {k}: {results['transforms'] / results[k]:.2f}x")
    print("reference figures on the design machine: JAX jit 114 ms, PyTorch eager 33 ms")


if __name__ == "__main__":
    main()
