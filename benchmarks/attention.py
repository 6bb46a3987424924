"""One causal attention core (the char_lm Transformer's): forward and gradient, ours under
`T.jit` against NumPy (forward) and PyTorch (`scaled_dot_product_attention`, forward and
backward), in the same interleaved run; plus the masked softmax alone.

Usage::

    python benchmarks/attention.py [--batch 32] [--heads 4] [--length 64] [--head-dim 32]
                                   [--repeats 20] [--source DIR]

Ours is `fnn.dot_product_attention` (scale, mask with a large negative logit, max-subtracted
softmax, zeroed masked weights, two batched matmuls); the gradient is that of sum(out**2)
with respect to q, k and v. `--source DIR` writes the generated code of the three compiled
functions there (the backend's `.lower(...).source`) for reading alongside the times.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import fnn  # noqa: E402
import transforms as T  # noqa: E402
import transforms.numpy as tnp  # noqa: E402
from _timing import interleaved  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--head-dim", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--source", metavar="DIR", help="write the generated code here")
    args = ap.parse_args(argv)
    B, H, L, D = args.batch, args.heads, args.length, args.head_dim
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((B, H, L, D)).astype(np.float32) for _ in range(3))
    mask = np.tril(np.ones((L, L), bool))

    def attn(q, k, v):
        return fnn.dot_product_attention(q, k, v, mask=mask)[0]

    def softmax(s):
        return fnn.softmax(tnp.where(mask, s, np.float32(-1e30)), axis=-1)

    fwd = T.jit(attn)
    grad = T.jit(T.grad(lambda q, k, v: tnp.sum(attn(q, k, v) ** 2), argnums=(0, 1, 2)))
    sm = T.jit(softmax)
    s = np.einsum("bhqd,bhkd->bhqk", q, k)

    def np_softmax():
        x = np.where(mask, s, np.float32(-1e30))
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def np_attn():
        x = np.where(mask, (q / np.float32(np.sqrt(D))) @ k.transpose(0, 1, 3, 2),
                     np.float32(-1e30))
        e = np.exp(x - x.max(-1, keepdims=True))
        return (e / e.sum(-1, keepdims=True)) @ v

    np.testing.assert_allclose(np.asarray(fwd(q, k, v)), np_attn(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(sm(s)), np_softmax(), rtol=1e-5, atol=1e-6)
    if args.source:
        os.makedirs(args.source, exist_ok=True)
        for name, f, a in (("softmax", sm, (s,)), ("forward", fwd, (q, k, v)),
                           ("gradient", grad, (q, k, v))):
            with open(os.path.join(args.source, f"attention_{name}.py"), "w") as fh:
                fh.write(f.lower(*a).source)
    fns = {"ours softmax": lambda: sm(s), "numpy softmax": np_softmax,
           "ours forward": lambda: fwd(q, k, v), "numpy forward": np_attn,
           "ours gradient": lambda: grad(q, k, v)}
    try:
        import torch
        F = torch.nn.functional
        tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))

        def torch_fwd():
            with torch.no_grad():
                F.scaled_dot_product_attention(tq, tk, tv, is_causal=True)

        def torch_grad():
            for t in (tq, tk, tv):
                t.grad = None
            (F.scaled_dot_product_attention(tq, tk, tv, is_causal=True) ** 2).sum().backward()
        fns["torch forward"], fns["torch gradient"] = torch_fwd, torch_grad
    except ImportError:
        pass
    t = interleaved(fns, args.repeats, burst=3)
    print(f"causal attention, (batch, heads, length, head_dim) = ({B}, {H}, {L}, {D}), float32")
    for name, sec in t.items():
        print(f"  {name:<16s} {sec * 1e3:8.3f} ms")
    for part in ("softmax", "forward", "gradient"):
        for other in ("numpy", "torch"):
            if f"{other} {part}" in t:
                print(f"  ours / {other} {part} = {t[f'ours {part}'] / t[f'{other} {part}']:.2f}")
    return t


if __name__ == "__main__":
    main()
