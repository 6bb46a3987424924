"""Ready-made networks with PyTorch's layouts: the seeds' `Net` and ResNet-18/34.

    model = fnn.models.resnet18(num_classes=10)
    params, state = model.init(key, x)                         # x: NHWC images
    logits, state = model.apply(params, state, x, train=False)

Parameter names follow the PyTorch modules' attribute names, so every leaf has exactly one
`state_dict` name: `params['layer1']['0']['conv1']['w']` is `layer1.0.conv1.weight`,
`state['bn1']['mean']` is `bn1.running_mean` (see `fnn.interop` for the layouts).

Padding is explicit wherever PyTorch's is: for a strided convolution of an even-sized input,
PyTorch's symmetric padding 1 and the 'SAME' rule (extra padding at the end) pick different
windows, so 'SAME' would give other outputs than the PyTorch model.

Batch norm uses PyTorch's conventions: `momentum=0.9` here is PyTorch's default 0.1 (the
running average keeps 0.9 of the old value), and the running variance is fed the unbiased batch
variance (see `fnn.BatchNorm`).
"""
from __future__ import annotations

import transforms.numpy as tnp
from transforms import random

from . import initializers as init_lib
from .activations import log_softmax, relu
from .layers import (BatchNorm, Conv2D, Dense, Dropout, Flatten, Lambda, MaxPool, Module,
                     MissingParamError, Sequential, check_key, spec_of, infer_output)

__all__ = ["Net", "BasicBlock", "ResNet", "resnet18", "resnet34"]

# torchvision's initialisation: He normal with the fan-out for convolutions (HWIO: the fan-out
# is kh * kw * out), PyTorch's default for the final Linear (uniform, variance 1 / (3 fan_in))
_conv_init = init_lib.variance_scaling(2.0, "fan_out", "normal")
_fc_init = init_lib.variance_scaling(1.0 / 3.0, "fan_in", "uniform")

# PyTorch's BatchNorm2d defaults in fnn's convention
_BN = dict(momentum=0.9, eps=1e-5, unbiased_running_var=True)


def _global_avg_pool(x):
    """(N, H, W, C) -> (N, C): PyTorch's AdaptiveAvgPool2d((1, 1)) followed by flatten."""
    return tnp.mean(x, axis=(1, 2))


class Net(Sequential):
    """The seed articles' MNIST network (the PyTorch MNIST example's layout):

    conv1 3x3x32 -> relu -> conv2 3x3x64 -> relu -> max-pool 2 -> dropout1 (0.25) -> flatten
    -> fc1 128 -> relu -> dropout2 (0.5) -> fc2 `num_classes` -> log-softmax.

    Inputs are NHWC of `input_shape` (H, W, C) (default 28x28x1). `fc1` follows a flatten, so
    its PyTorch weight's inputs are in C, H, W order; `torch_flatten` records that shape for
    `fnn.interop`.
    """
    type_name = "net"

    def __init__(self, num_classes=10, input_shape=(28, 28, 1), name=None):
        self.num_classes = int(num_classes)
        self.input_shape = tuple(int(d) for d in input_shape)
        if len(self.input_shape) != 3:
            raise ValueError(f"Net: input_shape must be (H, W, C), got {input_shape!r}")
        h, w, _ = self.input_shape
        if h < 6 or w < 6:
            raise ValueError(f"Net: input_shape {self.input_shape} is too small (two 3x3 "
                             "convolutions and a 2x2 pool need at least 6x6)")
        super().__init__([
            Conv2D(32, 3, padding="VALID", name="conv1"), relu,
            Conv2D(64, 3, padding="VALID", name="conv2"), relu,
            MaxPool(2), Dropout(0.25, name="dropout1"), Flatten(),
            Dense(128, name="fc1"), relu, Dropout(0.5, name="dropout2"),
            Dense(self.num_classes, name="fc2"), log_softmax], name=name)
        # conv2's output (C, H, W) as PyTorch flattens it
        self.torch_flatten = {"fc1": (64, (h - 4) // 2, (w - 4) // 2)}


def _conv3x3(features, strides, name):
    return Conv2D(features, 3, strides, padding=1, use_bias=False, kernel_init=_conv_init,
                  name=name)


class BasicBlock(Module):
    """ResNet's basic block: conv1 3x3 (stride `strides`) -> bn1 -> relu -> conv2 3x3 -> bn2,
    plus the shortcut (`downsample`: a 1x1 convolution with the stride and a batch norm, when
    the stride or the channel count changes), then relu. Children are named as torchvision's."""
    type_name = "basicblock"

    def __init__(self, features, strides=1, downsample=False, name=None):
        self.features, self.strides = int(features), int(strides)
        self.name = name
        self.children = {
            "conv1": _conv3x3(features, strides, "conv1"), "bn1": BatchNorm(**_BN),
            "conv2": _conv3x3(features, 1, "conv2"), "bn2": BatchNorm(**_BN)}
        if downsample:
            self.children["downsample"] = Sequential([
                Conv2D(features, 1, strides, padding=0, use_bias=False, kernel_init=_conv_init,
                       name="0"),
                BatchNorm(name="1", **_BN)])

    def __repr__(self):
        return (f"BasicBlock(features={self.features}, strides={self.strides}, "
                f"downsample={'downsample' in self.children})")

    def init(self, key, x):
        key = check_key(key, "BasicBlock.init")
        spec = spec_of(x)
        params, state = {}, {}
        inputs = {"conv1": spec, "downsample": spec}
        for i, (name, layer) in enumerate(self.children.items()):
            p, s = layer.init(random.fold_in(key, i), inputs.get(name, spec))
            if p:
                params[name] = p
            if s:
                state[name] = s
            if name != "downsample":
                spec = infer_output(
                    lambda p, s, x, layer=layer: layer.apply(p, s, x)[0], p, s,
                    inputs.get(name, spec))
        return params, state

    def _child(self, name, params, state, x, train, new_state):
        try:
            y, s = self.children[name].apply(params.get(name, {}), state.get(name, {}), x,
                                             train=train)
        except MissingParamError as e:
            raise e.prefixed(name) from None
        if s:
            new_state[name] = s
        return y

    def apply(self, params, state, x, key=None, train=False):
        new_state = {}
        y = relu(self._child("bn1", params, state,
                             self._child("conv1", params, state, x, train, new_state),
                             train, new_state))
        y = self._child("bn2", params, state,
                        self._child("conv2", params, state, y, train, new_state),
                        train, new_state)
        shortcut = (self._child("downsample", params, state, x, train, new_state)
                    if "downsample" in self.children else x)
        return relu(y + shortcut), new_state


class ResNet(Sequential):
    """ResNet with basic blocks, in torchvision's layout:

    conv1 7x7/2 (padding 3) -> bn1 -> relu -> max-pool 3x3/2 (padding 1) -> layer1..layer4
    (`blocks` basic blocks each, `width`, 2 `width`, 4 `width`, 8 `width` channels; the first
    block of layers 2-4 has stride 2 and a downsample shortcut) -> global average pool ->
    fc `num_classes`.

    `width=64` is torchvision's network; a smaller width (e.g. 8) gives the same structure with
    fewer channels, for tests and quick runs. Inputs are NHWC with `in_channels` channels
    (`input_shape` is only a default sample shape: any size of at least 32x32 works).
    """
    type_name = "resnet"

    def __init__(self, blocks, num_classes=1000, width=64, in_channels=3, name=None):
        self.blocks = tuple(int(b) for b in blocks)
        if len(self.blocks) != 4 or min(self.blocks) < 1:
            raise ValueError(f"ResNet: blocks must be four positive ints, got {blocks!r}")
        self.num_classes, self.width = int(num_classes), int(width)
        if self.width < 1:
            raise ValueError(f"ResNet: width must be a positive int, got {width!r}")
        self.input_shape = (224, 224, int(in_channels))
        self.torch_flatten = {}
        layers = [Conv2D(self.width, 7, 2, padding=3, use_bias=False, kernel_init=_conv_init,
                         name="conv1"),
                  BatchNorm(name="bn1", **_BN), Lambda(relu, name="relu"),
                  MaxPool(3, 2, padding=1, name="maxpool")]
        in_features = self.width
        for i, n in enumerate(self.blocks):
            features, strides = self.width * 2 ** i, (1 if i == 0 else 2)
            stage = []
            for j in range(n):
                s = strides if j == 0 else 1
                stage.append(BasicBlock(features, s, downsample=(j == 0 and (
                    s != 1 or in_features != features)), name=str(j)))
                in_features = features
            layers.append(Sequential(stage, name=f"layer{i + 1}"))
        layers += [Lambda(_global_avg_pool, name="avgpool"),
                   Dense(self.num_classes, kernel_init=_fc_init, name="fc")]
        super().__init__(layers, name=name)

    def __repr__(self):
        return (f"ResNet(blocks={self.blocks}, num_classes={self.num_classes}, "
                f"width={self.width})")


def resnet18(num_classes=1000, width=64, in_channels=3):
    """ResNet-18 (two basic blocks per stage), torchvision's `resnet18` layout."""
    return ResNet((2, 2, 2, 2), num_classes, width, in_channels)


def resnet34(num_classes=1000, width=64, in_channels=3):
    """ResNet-34 (3, 4, 6, 3 basic blocks per stage), torchvision's `resnet34` layout."""
    return ResNet((3, 4, 6, 3), num_classes, width, in_channels)
