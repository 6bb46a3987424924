"""Generate resnet_fixture.safetensors (needs torch; run once, commit the output):

    python tests/data/make_resnet_fixture.py

A width-8 ResNet-18 in torchvision's layout (the plain-torch module of
tests/test_models_interop.py) with random weights and random batch-norm statistics, a batch of
two 32x32 RGB inputs and labels, and what torch computes from them:

    weights/<name>      the state_dict (num_batches_tracked included: loaders must skip it)
    x, labels           inputs (NHWC float32) and integer labels
    logits              eval-mode logits
    grads/<name>        gradient of the mean cross-entropy of the eval-mode logits
    train_logits        train-mode logits (batch statistics)
    train_state/<name>  running statistics after that one train-mode pass (momentum 0.1)

The file stays under 2 MB (the weights and gradients are ~177k float32 each).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))            # tests/, for the torch reference module
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))


def main():
    import torch
    from safetensors.numpy import save_file
    from test_models_interop import (FIXTURE, FIXTURE_CLASSES, FIXTURE_WIDTH, make_inputs,
                                     torch_outputs, torch_resnet)
    net = torch_resnet(num_classes=FIXTURE_CLASSES, width=FIXTURE_WIDTH, seed=0)
    x, labels = make_inputs(seed=1, classes=FIXTURE_CLASSES)
    logits, grads, train_logits, train_state = torch_outputs(net, x, labels)
    out = {"x": x, "labels": labels, "logits": logits, "train_logits": train_logits}
    out.update({f"weights/{k}": v.numpy().copy() for k, v in net.state_dict().items()})
    out.update({f"grads/{k}": v for k, v in grads.items()})
    out.update({f"train_state/{k}": v for k, v in train_state.items()})
    save_file(out, FIXTURE, metadata={"torch": torch.__version__,
                                      "model": f"resnet18 width={FIXTURE_WIDTH}"})
    print(f"wrote {os.path.basename(FIXTURE)}: {os.path.getsize(FIXTURE)} bytes")


if __name__ == "__main__":
    main()
