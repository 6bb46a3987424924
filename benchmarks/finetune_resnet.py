"""Benchmark the fine-tune step of examples/finetune_resnet.py against PyTorch eager.

Usage::

    python benchmarks/finetune_resnet.py [--width 64] [--batch 32] [--repeats 20] [--blas-serial]

The step: a ResNet-18 (torchvision's layout, `--width` channels in the first stage) with a
frozen body (inference-mode batch norm) and a new 10-class head trained with Adam, on a batch
of 32x32x3 images. fnn runs the example's jitted step (`optim.multi_transform` freezes the
body; `stop_gradient` keeps autodiff out of it). PyTorch runs the same network with the same
weights in eager mode, the body's parameters with `requires_grad=False`, Adam on the head.
Both are warmed up (fnn's compile time is printed separately), then timed in alternating
bursts (see _timing.py); the medians and their ratio are printed side by side, after checking
that both steps give the same loss.

Measured on the shared 2-core machine (width 64, batch 32; torch 2.13 CPU). The step is the
frozen body's forward pass with inference-mode batch norm (stop_gradient prunes the body's
backward; the head's backward is tiny). Before the convolution work: fnn 305 ms/step against
PyTorch's 277 (ratio 1.10, load ~4), 37 against 18 on a quiet machine. Now (load ~3): fnn
25 ms/step against PyTorch's 770-820 with its default 2 threads (ratio 0.03: its two OpenMP
threads stall on the shared cores) and 33-50 with 1 thread (ratio 0.62-0.96). On the quiet
machine afterwards: fnn 24.7 ms against PyTorch's 16.7 with 2 threads (ratio 1.48), and 21.1
with NUMBAX_BLAS_PARALLEL_MIN=1048576 (ratio 1.27): on idle cores PyTorch's second thread
wins. What changed:
small maps skip the kernel offsets that fall on padding (layer4's 3x3 convolutions of 1x1
maps did 9x the needed work), the 8x8 and 4x4 3x3 stages run as Winograd F(2x2, 3x3),
convolution temporaries live in the reused workspace (no page faults per call), and blocked
gemms stay on one thread (the threaded BLAS cost 10-25 ms per convolution under load). The
convolutions alone, single-threaded: 13 ms against oneDNN's 22 ms (1 thread). Profiled, the
step was then 72% convolutions and 26% `apply_updates` writing all 11M parameters anew (the
frozen ones + 0), which PyTorch never touches. The backend now drops `x + 0` (frozen
parameters come back as the very input arrays, nothing written): in one interleaved run (load
~5) the step took 33 ms against 49 ms without that rewrite (0.68), PyTorch 62 ms with 1
thread; profiled, it is now all convolutions and the batch-norm/ReLU loops between them.
Mid-sized products (2^20 to 2^28 multiply-adds) run on a BLAS thread count chosen before each
call (NUMBAX_BLAS_THREADS, default auto: two threads while the other processes leave a core
free, one otherwise; see transforms/backend/numba/blas_threads.py), so an idle machine gets
the second core without losing the serial speed on a busy one. `--blas-serial` times the step
on one thread in the same run: at load 6-9 fnn 36.3 ms/step against 37.1 serial (auto never
found a core free), PyTorch 197; on a quiet machine (load 0.6-1.3, before the `x + 0`
rewrite) auto chose two threads: 27.6-28.6 ms/step against 29.5-31.3 serial and PyTorch's
21.8-21.9.
Compiling the step takes 1-4 minutes on the loaded machine (~1 s from the cache).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fnn  # noqa: E402
from fnn import interop, models, optim  # noqa: E402
from transforms import random  # noqa: E402
from _timing import interleaved  # noqa: E402


def _load_example():
    """examples/finetune_resnet.py (this file has the same name: import it by path)."""
    import importlib.util
    sys.path.insert(0, os.path.join(ROOT, "examples"))       # for its digits_mlp import
    spec = importlib.util.spec_from_file_location(
        "_example_finetune_resnet", os.path.join(ROOT, "examples", "finetune_resnet.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ex = _load_example()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--blas-serial", action="store_true",
                   help="also time fnn with its mid-sized products on one BLAS thread (as "
                        "NUMBAX_BLAS_THREADS=1), interleaved with the default")
    args = p.parse_args(argv)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, args.batch).astype(np.int32)

    try:
        import torch
    except ImportError:
        torch = None

    # the same weights on both sides: PyTorch's init when torch is there, else fnn's
    model = models.resnet18(num_classes=10, width=args.width)
    if torch is not None:
        torch.set_num_threads(max(1, torch.get_num_threads()))
        net = ex.torch_resnet18(num_classes=10, width=args.width)
        params, state = interop.from_torch(model, net.state_dict())
    else:
        params, state = model.init(random.key(0), x[:1])

    opt = optim.multi_transform({"head": optim.adam(args.lr), "frozen": optim.set_to_zero()},
                                ex.head_labels(params))
    train_step, _ = ex.make_steps(model, opt)
    carry = {"params": params, "opt_state": opt.init(params)}

    def fnn_step():
        carry["params"], carry["opt_state"], loss = train_step(
            carry["params"], carry["opt_state"], state, x, y)
        return loss

    t0 = time.perf_counter()
    loss0 = float(fnn_step())
    compile_s = time.perf_counter() - t0
    carry["params"], carry["opt_state"] = params, opt.init(params)      # undo that step

    fns = {"fnn (jit)": fnn_step}
    if args.blas_serial:
        from transforms.backend.numba import blas_threads

        def fnn_serial():
            with blas_threads.forced(1):
                return fnn_step()
        fns["fnn 1 thread"] = fnn_serial
    if torch is not None:
        for n, prm in net.named_parameters():
            prm.requires_grad_(n.startswith("fc."))
        topt = torch.optim.Adam(net.fc.parameters(), lr=args.lr)
        tx = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        ty = torch.from_numpy(y.astype(np.int64))

        def torch_step():
            topt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(tx), ty)
            loss.backward()
            topt.step()
            return loss.detach()

        tloss0 = float(torch_step())
        print(f"first-step loss: fnn {loss0:.6f}  torch {tloss0:.6f}")
        assert abs(loss0 - tloss0) <= 1e-4 * max(1.0, abs(tloss0)), "the steps differ"
        fns["torch (eager)"] = torch_step

    print(f"ResNet-18 width {args.width}, batch {args.batch}x32x32x3, frozen body, Adam head; "
          f"fnn compile + first step {compile_s:.1f} s")
    if torch is not None:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    times = interleaved(fns, args.repeats)
    for name, t in times.items():
        print(f"  {name:14s} {t * 1e3:9.2f} ms/step")
    if "torch (eager)" in times:
        ratio = times["fnn (jit)"] / times["torch (eager)"]
        print(f"  ratio fnn / torch: {ratio:.2f} ({'faster' if ratio < 1 else 'slower'})")
        if "fnn 1 thread" in times:
            print(f"  ratio fnn 1 thread / torch: "
                  f"{times['fnn 1 thread'] / times['torch (eager)']:.2f}")
    from transforms.backend.numba import blas_threads
    print(f"  fnn: {blas_threads.describe()}")
    return times


if __name__ == "__main__":
    main()
