"""Fine-tune a ResNet-18 with PyTorch weights: freeze the body, train a new head.

    python examples/finetune_resnet.py                  # width 64 (torchvision's ResNet-18):
                                                        # test accuracy 0.11 -> 0.87
    python examples/finetune_resnet.py --fast --no-jit  # width 16, 60 eager steps (CI): -> 0.62
    python examples/finetune_resnet.py --weights resnet18.safetensors

The seeds' use case: take a network trained in PyTorch, load its `state_dict` into fnn
(`fnn.interop.from_torch`), replace its 1000-class head by a 10-class one, freeze everything
else with `optim.multi_transform`, and train on scikit-learn's digits (8x8, upsampled to 32x32
and repeated over three channels). Accuracy is printed before and after; the fine-tuned
parameters are saved with `fnn.checkpoint.CheckpointManager`.

Nothing is downloaded. Without `--weights`, the example first writes a weights file itself, in
PyTorch's names and layouts, as a stand-in for pretrained weights:
  * with torch installed: the `state_dict` of a torchvision-layout ResNet-18 (written below in
    plain torch; torchvision is not needed) with PyTorch's random initialisation;
  * without torch: fnn's own initialisation of `fnn.models.resnet18`, converted with
    `fnn.interop.to_torch` (the same file format a PyTorch user would produce).
A real checkpoint (e.g. torchvision's resnet18 weights saved with
`safetensors.torch.save_file(model.state_dict(), path)`) is loaded the same way with
`--weights`. Random "pretrained" features are of course weaker than ImageNet's: the head still
learns the digits from them, which is what this example checks. The default run took 18 min
on the shared 2-core machine (load ~12), 10 of them compiling the step (cached afterwards in
`$NUMBAX_CACHE_DIR`).

The body's batch norms run in inference mode (running statistics), as a frozen body should;
before fine-tuning, the running statistics are re-estimated on a few training batches
(`--calibrate`), since random weights come with running statistics that do not describe the
activations.
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
from fnn import interop, models, optim
from fnn.checkpoint import CheckpointManager
from transforms import lax, random

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from digits_mlp import load_digits  # noqa: E402


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------

def upsample_digits(x, size=32):
    """(N, 64) digits -> (N, size, size, 3) images: nearest-neighbour upsampling, the gray
    level repeated on three channels (the pretrained stem expects RGB)."""
    n = x.shape[0]
    img = x.reshape(n, 8, 8)
    f = size // 8
    img = np.repeat(np.repeat(img, f, axis=1), f, axis=2)
    return np.repeat(img[..., None], 3, axis=-1).astype(np.float32)


def load_data(size=32):
    """Upsampled digits, standardised with the training images' mean and std."""
    (x_train, y_train), (x_test, y_test) = load_digits(scaling="unit")
    x_train, x_test = upsample_digits(x_train, size), upsample_digits(x_test, size)
    mean, std = x_train.mean(), x_train.std()
    return ((x_train - mean) / std, y_train), ((x_test - mean) / std, y_test)


# ---------------------------------------------------------------------------------------------
# the stand-in "pretrained" weights
# ---------------------------------------------------------------------------------------------

def torch_resnet18(num_classes=1000, width=64, seed=0):
    """torchvision's ResNet-18 layout in plain torch (random init), in eval mode."""
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, inp, out, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(inp, out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(out)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(out)
            self.downsample = None
            if stride != 1 or inp != out:
                self.downsample = nn.Sequential(nn.Conv2d(inp, out, 1, stride, bias=False),
                                                nn.BatchNorm2d(out))

        def forward(self, x):
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return self.relu(y + (x if self.downsample is None else self.downsample(x)))

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            inp = width
            for i in range(4):
                out = width * 2 ** i
                first = 1 if i == 0 else 2
                setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(inp, out, first),
                                                             BasicBlock(out, out, 1)))
                inp = out
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(8 * width, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    torch.manual_seed(seed)
    net = ResNet18()
    for m in net.modules():       # torchvision's initialisation of the convolutions
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return net.eval()


def write_stand_in_weights(path, width, seed=0):
    """Write ResNet-18 weights (1000 classes) in PyTorch's names and layouts to `path`;
    return where they came from."""
    from safetensors.numpy import save_file
    try:
        import torch  # noqa: F401
    except ImportError:
        model = models.resnet18(num_classes=1000, width=width)
        params, state = model.init(random.key(seed), np.zeros((1, 32, 32, 3), np.float32))
        save_file(interop.to_torch(model, params, state), path)
        return "fnn init (torch not installed)"
    net = torch_resnet18(1000, width, seed)
    save_file({k: v.detach().numpy().copy() for k, v in net.state_dict().items()}, path)
    return "torch init"


# ---------------------------------------------------------------------------------------------
# fine-tuning
# ---------------------------------------------------------------------------------------------

def calibrate_batchnorm(model, params, state, x, batch_size, batches):
    """Re-estimate every batch norm's running statistics as the mean of their batch
    statistics over `batches` batches (the weights are unchanged)."""
    sums = None
    # eager: a handful of calls is cheaper than compiling a train-mode forward pass
    apply = lambda p, s, xb: model.apply(p, s, xb, train=True)[1]  # noqa: E731
    for i in range(batches):
        new = apply(params, state, x[i * batch_size:(i + 1) * batch_size])
        # with momentum m the new state is m * old + (1 - m) * batch: recover the batch part
        batch_stats = T.tree.map(
            lambda n, o: (np.asarray(n) - 0.9 * np.asarray(o)) / 0.1, new, state)
        sums = batch_stats if sums is None else T.tree.map(np.add, sums, batch_stats)
    return T.tree.map(lambda s: (s / batches).astype(np.float32), sums)


def head_labels(params):
    """'head' for the new classifier, 'frozen' for every other leaf."""
    return {k: T.tree.map(lambda _, k=k: "head" if k == "fc" else "frozen", v)
            for k, v in params.items()}


def make_steps(model, opt, jit=True):
    def loss_fn(params, state, x, y):
        # The optimiser freezes the body (multi_transform); stop_gradient also tells autodiff
        # not to differentiate through it, as requires_grad=False does in PyTorch: the step
        # runs the body forward only, and compiles to far less code.
        params = {k: v if k == "fc" else T.tree.map(lax.stop_gradient, v)
                  for k, v in params.items()}
        logits, _ = model.apply(params, state, x, train=False)   # frozen body: inference BN
        return fnn.losses.cross_entropy(logits, y)

    def train_step(params, opt_state, state, x, y):
        loss, grads = T.value_and_grad(loss_fn)(params, state, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    def predict(params, state, x):           # eager: called a few times only
        logits, _ = model.apply(params, state, x, train=False)
        return tnp.argmax(logits, axis=-1)

    return (T.jit(train_step) if jit else train_step), predict


def accuracy(predict, params, state, x, y, batch_size=256):
    preds = [np.asarray(predict(params, state, x[i:i + batch_size]))
             for i in range(0, len(x), batch_size)]
    return float(np.mean(np.concatenate(preds) == y))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--weights", default=None,
                   help="a safetensors file of ResNet-18 weights in PyTorch's names (None: "
                        "write stand-in weights first, see above)")
    p.add_argument("--width", type=int, default=64,
                   help="channels of the first stage (64: torchvision's ResNet-18)")
    p.add_argument("--steps", type=int, default=300, help="training steps of the head")
    p.add_argument("--batch-size", type=int, default=64, help="images per step")
    p.add_argument("--lr", type=float, default=1e-2,
                   help="Adam's initial learning rate (cosine decay to 5%% of it)")
    p.add_argument("--calibrate", type=int, default=8, metavar="BATCHES",
                   help="batches used to re-estimate the batch-norm statistics (0: keep them)")
    p.add_argument("--checkpoint-dir", default=None,
                   help="where CheckpointManager saves the result (None: a temporary "
                        "directory)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, head and batches")
    p.add_argument("--no-jit", action="store_true",
                   help="run the training step eagerly (no compilation: a ResNet's compile "
                        "takes minutes on a loaded machine, more than a short run saves)")
    p.add_argument("--fast", action="store_true",
                   help="width 16, batch 32 and 60 steps at --lr 0.05 (for tests)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.fast:
        args.width, args.steps, args.batch_size, args.lr = 16, 60, 32, 5e-2
    t_start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = load_data()
    tmp = tempfile.TemporaryDirectory()
    ckpt_dir = args.checkpoint_dir or os.path.join(tmp.name, "checkpoints")

    # 1. the PyTorch-format weights, loaded into fnn with their 1000-class head
    weights, source = args.weights, "--weights"
    if weights is None:
        weights = os.path.join(tmp.name, "resnet18.safetensors")
        source = write_stand_in_weights(weights, args.width, args.seed)
    pretrained = models.resnet18(num_classes=1000, width=args.width)
    params, state = interop.from_torch(pretrained, weights)
    print(f"loaded {weights if args.weights else 'stand-in weights'} ({source}): "
          f"{sum(np.size(a) for a in T.tree.leaves(params)):,} parameters")

    # 2. a new 10-class head; everything else frozen
    model = models.resnet18(num_classes=10, width=args.width)
    head, _ = fnn.Dense(10, name="fc").init(random.key(args.seed + 1),
                                            np.zeros((1, 8 * args.width), np.float32))
    params = dict(params, fc=head)
    if args.calibrate:
        state = calibrate_batchnorm(model, params, state, x_train, args.batch_size,
                                    args.calibrate)
    opt = optim.multi_transform(
        {"head": optim.adam(optim.cosine_decay_schedule(args.lr, args.steps, alpha=0.05)),
         "frozen": optim.set_to_zero()}, head_labels(params))
    opt_state = opt.init(params)
    train_step, predict = make_steps(model, opt, jit=not args.no_jit)
    acc_before = accuracy(predict, params, state, x_test, y_test)
    print(f"test accuracy before fine-tuning: {acc_before:.4f}")

    # 3. fine-tune the head
    body_before = {k: v for k, v in params.items() if k != "fc"}
    losses, t0 = [], time.perf_counter()
    step, epoch = 0, 0
    while step < args.steps:
        for xb, yb in fnn.data.batches((x_train, y_train), args.batch_size,
                                       key=random.fold_in(random.key(args.seed), epoch),
                                       drop_last=True):
            if step >= args.steps:
                break
            params, opt_state, loss = train_step(params, opt_state, state, xb, yb)
            losses.append(float(loss))
            step += 1
            if step % 20 == 0 or step == args.steps:
                print(f"step {step:4d}  loss {np.mean(losses[-20:]):.4f}", flush=True)
        epoch += 1
    train_seconds = time.perf_counter() - t0
    acc_after = accuracy(predict, params, state, x_test, y_test)
    print(f"test accuracy after fine-tuning:  {acc_after:.4f}  ({args.steps} steps in "
          f"{train_seconds:.1f} s, {time.perf_counter() - t_start:.1f} s in all)")
    frozen = all(np.array_equal(a, b) for a, b in zip(
        T.tree.leaves(body_before), T.tree.leaves({k: v for k, v in params.items()
                                                   if k != "fc"})))

    # 4. save with CheckpointManager (params and batch-norm statistics), and read back
    manager = CheckpointManager(ckpt_dir, max_to_keep=2, best_metric="test_accuracy",
                                best_mode="max")
    path = manager.save(args.steps, {"params": params, "state": state},
                        metrics={"test_accuracy": acc_after})
    restored = manager.restore(target={"params": params, "state": state})
    restored_identical = all(np.array_equal(a, b) for a, b in zip(
        T.tree.leaves(restored), T.tree.leaves({"params": params, "state": state})))
    where = ckpt_dir if args.checkpoint_dir else "a temporary directory"
    print(f"saved {os.path.basename(path)} in {where}")
    tmp.cleanup()
    return {"accuracy_before": acc_before, "accuracy_after": acc_after, "losses": losses,
            "frozen": frozen, "restored_identical": restored_identical, "source": source,
            "checkpoint": path, "train_seconds": train_seconds}


if __name__ == "__main__":
    main()
