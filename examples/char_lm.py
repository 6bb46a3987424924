"""A character-level language model trained on Python's own help text (pydoc_data.topics).

    python examples/char_lm.py                     # Transformer: 2 blocks, d=128, 4 heads
    python examples/char_lm.py --model lstm        # one LSTM layer instead of the blocks
    python examples/char_lm.py --remat             # recompute each block in the backward pass
    python examples/char_lm.py --fast              # a few steps of a tiny model (tests)

The text ships with every CPython (`pydoc_data/topics.py`, ~460k characters of the language
reference), so nothing is downloaded. Sequences are BTC: (batch, time, channels).

Training: one jitted step (forward, backward, clipping, AdamW with a warmup-cosine schedule,
gradient accumulation with `optim.MultiSteps`), optionally with dropout; the validation loss
(mean cross-entropy in nats per character on held-out text) is printed after each epoch, and
the parameters are checkpointed with `fnn.checkpoint.CheckpointManager` (the best epoch is
restored for sampling). Sampling uses `transforms.random.categorical` with a temperature and
top-k truncation, one jitted forward pass of a fixed-size window per character: with a causal
model the positions after the prompt do not change the prediction at the prompt's end.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

import fnn
import transforms as T
import transforms.numpy as tnp
from fnn import optim
from fnn.checkpoint import CheckpointManager
from transforms import random

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from digits_mlp import add_common_args  # noqa: E402


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

def load_text(max_chars=None):
    """Python's help topics as one string (printable ASCII; anything else becomes '?')."""
    from pydoc_data.topics import topics
    text = "\n".join(topics[k] for k in sorted(topics))
    text = "".join(c if (32 <= ord(c) < 127 or c == "\n") else "?" for c in text)
    return text[:max_chars] if max_chars else text


class Vocab:
    """Characters <-> int32 ids."""

    def __init__(self, text):
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    def encode(self, s):
        return np.array([self.index.get(c, self.index.get("?", 0)) for c in s], np.int32)

    def decode(self, ids):
        return "".join(self.chars[int(i)] for i in ids)


def sample_batch(data, key, batch_size, context):
    """Random windows: inputs (B, T) and next-character targets (B, T), int32."""
    starts = np.asarray(random.randint(key, (batch_size,), 0, len(data) - context - 1))
    idx = starts[:, None] + np.arange(context)[None, :]
    return data[idx], data[idx + 1]


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

class CharTransformer:
    """Token + learned position embeddings, `layers` causal pre-norm Transformer blocks, a final
    LayerNorm and a linear head. `remat=True` wraps each block in `T.checkpoint`."""

    def __init__(self, vocab_size, context, d_model=128, num_heads=4, layers=2, dropout=0.0,
                 remat=False, rotary=False):
        self.embed = fnn.Embedding(vocab_size, d_model)
        self.pos = None if rotary else fnn.PositionalEmbedding(context)
        self.blocks = [fnn.TransformerBlock(num_heads, causal=True, dropout_rate=dropout,
                                            rotary=rotary) for _ in range(layers)]
        self.norm = fnn.LayerNorm()
        self.head = fnn.Dense(vocab_size)
        self.remat = remat

    def init(self, key, tokens):
        ks = random.split(key, len(self.blocks) + 3)
        x = np.zeros(tokens.shape + (self.embed.features,), np.float32)
        p = {"embed": self.embed.init(ks[0], tokens)[0]}
        if self.pos is not None:
            p["pos"] = self.pos.init(ks[1], x)[0]
        for i, blk in enumerate(self.blocks):
            p[f"block_{i}"] = blk.init(ks[2 + i], x)[0]
        p["norm"] = self.norm.init(None, x)[0]
        p["head"] = self.head.init(ks[-1], x)[0]
        return p

    def apply(self, params, tokens, key=None, train=False):
        x, _ = self.embed.apply(params["embed"], {}, tokens)
        if self.pos is not None:
            x, _ = self.pos.apply(params["pos"], {}, x)
        for i, blk in enumerate(self.blocks):
            k = random.fold_in(key, i) if (train and blk.needs_rng) else None

            def run(p, x, k, blk=blk):
                return blk.apply(p, {}, x, key=k, train=train)[0]
            x = (T.checkpoint(run) if self.remat else run)(params[f"block_{i}"], x, k)
        x, _ = self.norm.apply(params["norm"], {}, x)
        return self.head.apply(params["head"], {}, x)[0]


class CharLSTM:
    """Token embeddings, one LSTM over time (a single `lax.scan`), a linear head."""

    def __init__(self, vocab_size, d_model=128, hidden=256, dropout=0.0, remat=False):
        self.embed = fnn.Embedding(vocab_size, d_model)
        self.lstm = fnn.LSTM(hidden)
        self.head = fnn.Dense(vocab_size)
        self.drop = fnn.Dropout(dropout)
        self.remat = remat

    def init(self, key, tokens):
        k1, k2, k3 = random.split(key, 3)
        x = np.zeros(tokens.shape + (self.embed.features,), np.float32)
        h = np.zeros(tokens.shape + (self.lstm.hidden_size,), np.float32)
        return {"embed": self.embed.init(k1, tokens)[0], "lstm": self.lstm.init(k2, x)[0],
                "head": self.head.init(k3, h)[0]}

    def apply(self, params, tokens, key=None, train=False):
        x, _ = self.embed.apply(params["embed"], {}, tokens)
        run = lambda p, x: self.lstm.apply(p, {}, x)[0]  # noqa: E731
        h = (T.checkpoint(run) if self.remat else run)(params["lstm"], x)
        h, _ = self.drop.apply({}, {}, h, key=key, train=train and key is not None)
        return self.head.apply(params["head"], {}, h)[0]


def make_model(args, vocab_size):
    if args.model == "lstm":
        return CharLSTM(vocab_size, args.d_model, args.hidden, args.dropout, args.remat)
    return CharTransformer(vocab_size, args.context, args.d_model, args.heads, args.layers,
                           args.dropout, args.remat, args.rotary)


def lm_loss(model, params, x, y, key=None, train=False):
    """Mean next-character cross-entropy (nats) over all B*T positions."""
    logits = model.apply(params, x, key=key, train=train)
    v = logits.shape[-1]
    return fnn.losses.cross_entropy(tnp.reshape(logits, (-1, v)), tnp.reshape(y, (-1,)))


def make_optimizer(args, total_updates):
    """clip_by_global_norm -> AdamW on a warmup-cosine schedule, accumulated over
    `--accum` micro-batches by MultiSteps (the schedule counts real updates)."""
    warmup = max(1, min(args.warmup, total_updates // 5))
    schedule = optim.warmup_cosine_decay_schedule(0.0, args.lr, warmup,
                                                  max(total_updates, warmup + 1),
                                                  end_value=args.lr * 0.1)
    opt = optim.chain(optim.clip_by_global_norm(args.clip),
                      optim.adamw(schedule, b1=0.9, b2=0.99, weight_decay=args.weight_decay))
    return optim.MultiSteps(opt, every_k_schedule=args.accum) if args.accum > 1 else opt


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------

def sample(model, params, vocab, prompt, length, key, context, temperature=0.8, top_k=10,
           logits_fn=None):
    """Continue `prompt` by `length` characters. Each step runs the model on a fixed (1,
    context) window (zeros after the text: the causal model ignores them), keeps the `top_k`
    largest logits at the last real position, divides by `temperature` and draws with
    `random.categorical`."""
    if logits_fn is None:
        logits_fn = lambda p, w: model.apply(p, w)  # noqa: E731
    ids = list(vocab.encode(prompt)) or [0]
    for i in range(length):
        window = ids[-context:]
        buf = np.zeros((1, context), np.int32)
        buf[0, :len(window)] = window
        logits = np.asarray(logits_fn(params, buf))[0, len(window) - 1].astype(np.float64)
        if top_k and top_k < len(logits):
            kth = np.partition(logits, -top_k)[-top_k]
            logits = np.where(logits >= kth, logits, -np.inf)
        nxt = random.categorical(random.fold_in(key, i), logits / max(temperature, 1e-6))
        ids.append(int(nxt))
    return vocab.decode(ids)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", choices=["transformer", "lstm"], default="transformer",
                   help="sequence model")
    p.add_argument("--layers", type=int, default=2, help="number of blocks")
    p.add_argument("--d-model", type=int, default=128, help="model width")
    p.add_argument("--heads", type=int, default=4, help="attention heads")
    p.add_argument("--hidden", type=int, default=256, help="LSTM hidden size")
    p.add_argument("--context", type=int, default=64, help="context length in characters")
    p.add_argument("--rotary", action="store_true", help="rotary instead of learned positions")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout rate")
    p.add_argument("--batch-size", type=int, default=32, help="micro-batch size")
    p.add_argument("--accum", type=int, default=2, help="micro-batches per optimiser update")
    p.add_argument("--epochs", type=int, default=6, help="passes over the training data")
    p.add_argument("--steps-per-epoch", type=int, default=100, help="micro-batches per epoch")
    p.add_argument("--lr", type=float, default=3e-3, help="learning rate")
    p.add_argument("--warmup", type=int, default=30, help="warmup (optimiser updates)")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay")
    p.add_argument("--clip", type=float, default=1.0, help="global gradient-norm clip")
    p.add_argument("--remat", action="store_true", help="T.checkpoint each block")
    p.add_argument("--val-batches", type=int, default=8, help="validation batches per evaluation")
    p.add_argument("--checkpoint-dir", default=None, help="default: a temporary directory")
    p.add_argument("--sample-length", type=int, default=300, help="characters to sample at the end")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    p.add_argument("--top-k", type=int, default=10,
                   help="sample among the k most likely characters")
    p.add_argument("--prompt", default="The ", help="text the sample starts from")
    p.add_argument("--no-jit", action="store_true", help="run everything eagerly (NumPy)")
    p.add_argument("--eager-eval", action="store_true",
                   help="evaluate and sample eagerly (saves two compilations; --fast sets it)")
    add_common_args(p)
    args = p.parse_args(argv)
    if args.fast:
        args.layers, args.d_model, args.heads, args.hidden = 1, 32, 2, 32
        args.context, args.batch_size, args.epochs = 32, 8, 2
        args.steps_per_epoch, args.val_batches, args.sample_length = 8, 2, 20
        args.warmup, args.lr, args.eager_eval = 1, 1e-2, True
    return args


def main(argv=None):
    args = parse_args(argv)
    text = load_text(60_000 if args.fast else None)
    vocab = Vocab(text)
    data = vocab.encode(text)
    split = int(len(data) * 0.9)
    train_data, val_data = data[:split], data[split:]
    key = random.key(args.seed)
    init_key, data_key, drop_key, val_key, sample_key = random.split(key, 5)

    model = make_model(args, len(vocab))
    params = model.init(init_key, np.zeros((1, args.context), np.int32))
    n_params = sum(a.size for a in T.tree.leaves(params))
    total_micro = args.epochs * args.steps_per_epoch
    opt = make_optimizer(args, total_micro // args.accum)
    opt_state = opt.init(params)
    print(f"{args.model}: {n_params:,} parameters, vocab {len(vocab)}, context {args.context}, "
          f"{len(train_data):,} training characters")

    train_jit = (lambda f: f) if args.no_jit else T.jit

    @train_jit
    def train_step(params, opt_state, x, y, key):
        loss, grads = T.value_and_grad(
            lambda p: lm_loss(model, p, x, y, key=key, train=True))(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    eval_jit = (lambda f: f) if (args.eager_eval or args.no_jit) else T.jit
    eval_loss = eval_jit(lambda params, x, y: lm_loss(model, params, x, y))
    logits_fn = eval_jit(lambda params, w: model.apply(params, w))
    val_batches = [sample_batch(val_data, random.fold_in(val_key, i), args.batch_size,
                                args.context) for i in range(args.val_batches)]

    ckpt_dir = args.checkpoint_dir or tempfile.mkdtemp(prefix="char_lm_")
    manager = CheckpointManager(ckpt_dir, max_to_keep=2, best_metric="val_loss")
    losses, val_losses = [], []
    t0 = time.perf_counter()
    step = 0
    for epoch in range(args.epochs):
        for _ in range(args.steps_per_epoch):
            x, y = sample_batch(train_data, random.fold_in(data_key, step), args.batch_size,
                                args.context)
            params, opt_state, loss = train_step(params, opt_state, x, y,
                                                 random.fold_in(drop_key, step))
            losses.append(float(loss))
            step += 1
        val = float(np.mean([eval_loss(params, x, y) for x, y in val_batches]))
        val_losses.append(val)
        manager.save(step, {"params": params}, metrics={"val_loss": val})
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {np.mean(losses[-20:]):.4f}  "
              f"val loss {val:.4f}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    seconds = time.perf_counter() - t0

    best = manager.best_step()
    restored = manager.restore(best, target={"params": params})["params"]
    if best == step:
        same = all(np.array_equal(a, b) for a, b in zip(T.tree.leaves(restored),
                                                        T.tree.leaves(params)))
        assert same, "the restored checkpoint differs from the trained parameters"
    text_out = sample(model, restored, vocab, args.prompt, args.sample_length, sample_key,
                      args.context, args.temperature, args.top_k, logits_fn)
    print(f"best val loss {min(val_losses):.4f} (step {best}); {step} micro-steps in "
          f"{seconds:.1f} s; checkpoints in {ckpt_dir}")
    print("sample:\n" + text_out)
    return {"losses": losses, "val_losses": val_losses, "seconds": seconds, "sample": text_out,
            "best_step": best, "params": params, "checkpoint_dir": ckpt_dir}


if __name__ == "__main__":
    main()
