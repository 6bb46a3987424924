"""The char_lm example's Transformer: one training step, ours (T.jit) against JAX (jax.jit +
optax), PyTorch eager and PyTorch with `torch.compile`, in the same run.

Usage::

    python benchmarks/transformer.py [--config default|small|both] [--repeats 20]
                                     [--batch 32] [--context 64] [--layers 2] [--no-compile]
                                     [--torch-threads N] [--blas-serial]

Configs: ``default`` is examples/char_lm.py's model: token + learned position embeddings, 2
causal pre-norm blocks (d=128, 4 heads, MLP 512, GELU), LayerNorm, linear head over 94
characters; batch 32 x 64 tokens, float32 (--batch/--context/--layers/--d-model/--heads change
it). ``small``: 2 blocks, d=64, 2 heads, batch 8 x 32 tokens (where fixed per-call costs
dominate). Step: cross-entropy, gradients, clip_by_global_norm(1.0), AdamW.

All candidates start from the same parameters and batch; ours and JAX's losses and updated
parameters are compared first, and PyTorch's first loss is printed. Times are medians of
alternating rounds (see _timing.py), so the ratios are from the same run. A candidate whose
library is missing is skipped; `torch.compile` is skipped (with its error) where it fails.
Threads: every library runs with its defaults; ours picks the BLAS threads of its mid-sized
products before each call (NUMBAX_BLAS_THREADS=auto: two while other processes leave a core
free) and says at the end how often it chose more than one; `--blas-serial` also times ours
with one thread, interleaved.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))

import transforms as T  # noqa: E402
from _timing import interleaved  # noqa: E402
from char_lm import CharTransformer, lm_loss  # noqa: E402
from fnn import optim  # noqa: E402
from transforms import random  # noqa: E402

VOCAB, LR, WD, CLIP = 94, 1e-3, 0.01, 1.0


def make_ours(model):
    opt = optim.chain(optim.clip_by_global_norm(CLIP),
                      optim.adamw(LR, b1=0.9, b2=0.99, weight_decay=WD))

    def step(params, opt_state, x, y):
        loss, grads = T.value_and_grad(lambda p: lm_loss(model, p, x, y))(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss
    return T.jit(step), opt.init


def make_jax(params, heads, x, y):
    """(step, state) of the same model written in jax.numpy, or None without jax/optax."""
    try:
        import jax
        import jax.numpy as jnp
        import optax
    except ImportError:
        return None

    def ln(v, p, eps):
        mu = v.mean(-1, keepdims=True)
        var = ((v - mu) ** 2).mean(-1, keepdims=True)
        return (v - mu) * jax.lax.rsqrt(var + eps) * p["scale"] + p["bias"]

    def dense(p, v):
        return v @ p["w"] + p["b"]

    def forward(p, tok):
        b, t = tok.shape
        h = p["embed"]["embedding"][tok] + p["pos"]["embedding"][:t]
        causal = jnp.tril(jnp.ones((t, t), bool))
        i = 0
        while f"block_{i}" in p:
            q = p[f"block_{i}"]
            a = ln(h, q["norm_attn"], 1e-5)
            at = q["attention"]
            d = at["query"]["w"].shape[1]
            dh = d // heads
            qh, kh, vh = (dense(at[n], a).reshape(b, t, heads, dh).transpose(0, 2, 1, 3)
                          for n in ("query", "key", "value"))
            logits = (qh / np.sqrt(dh)) @ kh.transpose(0, 1, 3, 2)
            w = jax.nn.softmax(jnp.where(causal, logits, -1e30), axis=-1)
            o = (w @ vh).transpose(0, 2, 1, 3).reshape(b, t, d)
            h = h + dense(at["out"], o)
            m = jax.nn.gelu(dense(q["mlp_in"], ln(h, q["norm_mlp"], 1e-5)), approximate=True)
            h = h + dense(q["mlp_out"], m)
            i += 1
        return dense(p["head"], ln(h, p["norm"], 1e-6))

    def loss(p, tok, tgt):
        lp = jax.nn.log_softmax(forward(p, tok), axis=-1)
        return -jnp.mean(jnp.take_along_axis(lp, tgt[..., None], axis=-1))

    opt = optax.chain(optax.clip_by_global_norm(CLIP),
                      optax.adamw(LR, b1=0.9, b2=0.99, weight_decay=WD))

    @jax.jit
    def step(p, s, tok, tgt):
        value, g = jax.value_and_grad(loss)(p, tok, tgt)
        updates, s = opt.update(g, s, p)
        return optax.apply_updates(p, updates), s, value

    jp = jax.tree_util.tree_map(jnp.asarray, params)
    return step, jp, opt.init(jp), jnp.asarray(x), jnp.asarray(y)


def make_torch(params, heads, x, y, compiled=False):
    """PyTorch step of the same model (eager, or the forward+backward under `torch.compile`
    with `compiled`), or None without torch (or when torch.compile fails here: the reason
    is printed)."""
    try:
        import torch
    except ImportError:
        return None
    tp = {k: v for k, v in _flatten(params).items()}
    tp = {k: torch.tensor(np.asarray(v), requires_grad=True) for k, v in tp.items()}
    opt = torch.optim.AdamW(list(tp.values()), lr=LR, betas=(0.9, 0.99), weight_decay=WD)
    tok, tgt = torch.tensor(x, dtype=torch.long), torch.tensor(y, dtype=torch.long)
    nblocks = len({k.split("/")[0] for k in tp if k.startswith("block_")})
    F = torch.nn.functional

    def loss_fn():
        b, t = tok.shape
        h = tp["embed/embedding"][tok] + tp["pos/embedding"][:t]
        for i in range(nblocks):
            g = lambda n: tp[f"block_{i}/{n}"]  # noqa: E731
            a = F.layer_norm(h, (h.shape[-1],), g("norm_attn/scale"), g("norm_attn/bias"), 1e-5)
            d = g("attention/query/w").shape[1]
            qh, kh, vh = ((a @ g(f"attention/{n}/w") + g(f"attention/{n}/b"))
                          .reshape(b, t, heads, d // heads).transpose(1, 2)
                          for n in ("query", "key", "value"))
            o = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True)
            h = h + o.transpose(1, 2).reshape(b, t, d) @ g("attention/out/w") \
                + g("attention/out/b")
            m = F.layer_norm(h, (h.shape[-1],), g("norm_mlp/scale"), g("norm_mlp/bias"), 1e-5)
            m = F.gelu(m @ g("mlp_in/w") + g("mlp_in/b"), approximate="tanh")
            h = h + m @ g("mlp_out/w") + g("mlp_out/b")
        h = F.layer_norm(h, (h.shape[-1],), tp["norm/scale"], tp["norm/bias"], 1e-6)
        logits = h @ tp["head/w"] + tp["head/b"]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))

    fwd = loss_fn
    if compiled:
        try:
            fwd = torch.compile(loss_fn)
            fwd().backward()             # compile now: a failure is reported, not timed
        except Exception as e:  # noqa: BLE001 - any backend failure means "not available"
            msg = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
            print(f"  torch.compile unavailable here: {type(e).__name__}: {msg}")
            return None
    first = []

    def step():
        opt.zero_grad()
        loss = fwd()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(tp.values()), CLIP)
        opt.step()
        v = float(loss.detach())
        if not first:
            first.append(v)
        return v
    step.first_loss = first
    return step


def _flatten(tree, prefix=""):
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}/"))
        else:
            out[prefix + k] = v
    return out


CONFIGS = {"small": dict(batch=8, context=32, layers=2, d_model=64, heads=2)}


def run_config(cfg, repeats, compile_torch=True, blas_serial=False):
    """Time every available candidate on one model/batch config; {name: seconds per step}.
    `blas_serial`: also ours with every mid-sized product on one BLAS thread."""
    model = CharTransformer(VOCAB, cfg["context"], cfg["d_model"], cfg["heads"], cfg["layers"])
    params = model.init(random.key(0), np.zeros((1, cfg["context"]), np.int32))
    rng = np.random.default_rng(0)
    x = rng.integers(0, VOCAB, (cfg["batch"], cfg["context"])).astype(np.int32)
    y = rng.integers(0, VOCAB, (cfg["batch"], cfg["context"])).astype(np.int32)
    n_params = sum(a.size for a in T.tree.leaves(params))
    print(f"char_lm Transformer: {cfg['layers']} blocks, d={cfg['d_model']}, {cfg['heads']} "
          f"heads, {n_params:,} params; batch {cfg['batch']} x {cfg['context']} tokens, float32")

    step, opt_init = make_ours(model)
    state = opt_init(params)
    t0 = time.perf_counter()
    out = step(params, state, x, y)
    print(f"  ours: first call (trace + compile or cache load) {time.perf_counter() - t0:.1f} s")
    carry = [params, state]

    def ours():
        p, s, _ = step(carry[0], carry[1], x, y)
        carry[0], carry[1] = p, s

    fns = {"ours": ours}
    if blas_serial:
        from transforms.backend.numba import blas_threads

        def ours_serial():
            with blas_threads.forced(1):
                ours()
        fns["ours 1 thread"] = ours_serial
    jx = make_jax(params, cfg["heads"], x, y)
    if jx is not None:
        jstep, jp, js, jxx, jyy = jx
        jout = jstep(jp, js, jxx, jyy)
        print(f"  loss: ours {float(out[2]):.6f}  jax {float(jout[2]):.6f}")
        diff = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                   for a, b in zip(T.tree.leaves(out[0]), T.tree.leaves(
                       {k: jout[0][k] for k in out[0]})))
        print(f"  max |params after one step, ours - jax| = {diff:.2e}")
        jcarry = [jp, js]

        def jax_step():
            p, s, v = jstep(jcarry[0], jcarry[1], jxx, jyy)
            v.block_until_ready()
            jcarry[0], jcarry[1] = p, s
        fns["jax"] = jax_step
    for name, compiled in (("torch", False), ("torch.compile", True)):
        if compiled and not compile_torch:
            continue
        t0 = time.perf_counter()
        tstep = make_torch(params, cfg["heads"], x, y, compiled=compiled)
        if tstep is not None:
            tstep()
            print(f"  loss: {name} {tstep.first_loss[0]:.6f}" +
                  (f" (compiled in {time.perf_counter() - t0:.1f} s)" if compiled else ""))
            fns[name] = tstep
    t = interleaved(fns, repeats, burst=3)
    for name, v in t.items():
        print(f"  {name:<14s} {v * 1e3:8.2f} ms/step")
    for other in ("jax", "torch", "torch.compile"):
        if other in t:
            print(f"  ours / {other:<13s} = {t['ours'] / t[other]:.2f}")
    from transforms.backend.numba import blas_threads
    print(f"  ours: {blas_threads.describe()}")
    return t


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", choices=["default", "small", "both"], default="both")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--blas-serial", action="store_true",
                    help="also time ours with its mid-sized products on one BLAS thread "
                         "(as NUMBAX_BLAS_THREADS=1), interleaved with the default")
    ap.add_argument("--torch-threads", type=int, default=0,
                    help="torch.set_num_threads(N) first (default: PyTorch's own choice); on "
                         "shared cores PyTorch's spinning threads can cost it several times")
    args = ap.parse_args(argv)
    if args.torch_threads > 0:
        try:
            import torch
            torch.set_num_threads(args.torch_threads)
        except ImportError:
            pass
    configs = {"default": dict(batch=args.batch, context=args.context, layers=args.layers,
                               d_model=args.d_model, heads=args.heads), **CONFIGS}
    names = ["default", "small"] if args.config == "both" else [args.config]
    return {n: run_config(configs[n], args.repeats, not args.no_compile, args.blas_serial)
            for n in names}


if __name__ == "__main__":
    main()
