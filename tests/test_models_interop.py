"""fnn.models and fnn.interop: PyTorch weights give PyTorch's outputs and gradients.

With torch installed, torchvision-layout networks in plain torch (torchvision is not needed;
the ResNet is the fine-tune example's reference network) are compared with fnn.models directly. Without torch, the same comparison runs
against tests/data/resnet_fixture.safetensors, made once by tests/data/make_resnet_fixture.py
(a width-8 ResNet-18: weights, inputs, eval and train-mode logits, updated running statistics,
and the gradient of a cross-entropy loss, all from torch).
"""
import os

import numpy as np
import pytest

import fnn
import transforms as T
from fnn import interop, models
from transforms import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
FIXTURE = os.path.join(DATA, "resnet_fixture.safetensors")
FIXTURE_WIDTH, FIXTURE_CLASSES = 8, 10


# ---------------------------------------------------------------------------------------------
# torch reference networks (torchvision's layout) -- torch is imported only when called
# ---------------------------------------------------------------------------------------------

def torch_resnet(num_classes=10, width=64, seed=0):
    """torchvision's ResNet-18 in plain torch (the fine-tune example's reference network),
    with random batch-norm parameters and running statistics, so that batch norm is not the
    identity."""
    import importlib.util

    import torch
    from torch import nn
    spec = importlib.util.spec_from_file_location(
        "finetune_resnet", os.path.join(ROOT, "examples", "finetune_resnet.py"))
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    net = example.torch_resnet18(num_classes=num_classes, width=width, seed=seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 1.5)
            if isinstance(m, nn.ReLU):
                m.inplace = False          # autograd of the loss below needs the inputs kept
    return net.eval()


def torch_net(num_classes=10, seed=0):
    """The PyTorch MNIST example's Net."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, 1)
            self.conv2 = nn.Conv2d(32, 64, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.dropout2 = nn.Dropout(0.5)
            self.fc1 = nn.Linear(9216, 128)
            self.fc2 = nn.Linear(128, num_classes)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
            x = torch.flatten(self.dropout1(x), 1)
            x = self.fc2(self.dropout2(F.relu(self.fc1(x))))
            return F.log_softmax(x, dim=1)

    torch.manual_seed(seed)
    return Net().eval()


def torch_outputs(net, x_nhwc, labels):
    """Eval logits, the gradient of the mean cross-entropy (eval mode), and the train-mode
    logits and running statistics after one train-mode forward pass, as NumPy."""
    import copy

    import torch
    import torch.nn.functional as F
    x = torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))
    net.zero_grad()
    logits = net(x)
    F.cross_entropy(logits, torch.from_numpy(labels)).backward()
    grads = {n: p.grad.numpy().copy() for n, p in net.named_parameters()}
    train_net = copy.deepcopy(net).train()
    with torch.no_grad():
        train_logits = train_net(x).numpy()
    train_state = {n: b.numpy().copy() for n, b in train_net.named_buffers()
                   if n.endswith(("running_mean", "running_var"))}
    return logits.detach().numpy(), grads, train_logits, train_state


# ---------------------------------------------------------------------------------------------
# fnn side
# ---------------------------------------------------------------------------------------------

def fnn_outputs(model, params, state, x, labels):
    """The same four things computed by fnn (gradients in PyTorch names and layouts)."""
    logits, _ = model.apply(params, state, x, train=False)

    def loss(p):
        out, _ = model.apply(p, state, x, train=False)
        return fnn.losses.cross_entropy(out, labels)

    grads = interop.to_torch(model, T.grad(loss)(params), {})
    train_logits, new_state = model.apply(params, state, x, train=True)
    train_state = interop.to_torch(model, {}, new_state)
    return np.asarray(logits), grads, np.asarray(train_logits), train_state


def assert_rel_close(actual, expected, rtol, what):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    scale = max(float(np.max(np.abs(expected))), 1e-30)
    err = float(np.max(np.abs(actual - expected))) / scale
    assert err <= rtol, f"{what}: max relative error {err:.2e} > {rtol:.0e}"


def compare(got, want, grad_rtol=1e-4):
    logits, grads, train_logits, train_state = got
    e_logits, e_grads, e_train_logits, e_train_state = want
    assert np.abs(e_logits).max() > 0.1                     # not a trivially small output
    assert_rel_close(logits, e_logits, 1e-4, "eval logits")
    assert sorted(grads) == sorted(e_grads)
    for name in e_grads:
        assert np.abs(e_grads[name]).max() > 0, name
        assert_rel_close(grads[name], e_grads[name], grad_rtol, f"gradient of {name}")
    assert_rel_close(train_logits, e_train_logits, 1e-4, "train-mode logits")
    assert sorted(train_state) == sorted(e_train_state)
    for name in e_train_state:
        assert_rel_close(train_state[name], e_train_state[name], 1e-5, name)


def make_inputs(seed=1, n=2, size=32, classes=10):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, size, size, 3)).astype(np.float32)
    return x, rng.integers(0, classes, n).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# the fixture (always)
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_resnet():
    """One width-8 ResNet-18 for the fixture tests (from_torch remembers its shapes)."""
    return models.resnet18(num_classes=FIXTURE_CLASSES, width=FIXTURE_WIDTH)


def load_fixture():
    from safetensors.numpy import load_file
    data = load_file(FIXTURE)

    def group(prefix):
        return {k[len(prefix):]: v for k, v in data.items() if k.startswith(prefix)}
    return data, group("weights/"), group("grads/"), group("train_state/")


def test_fixture_is_small_and_complete():
    assert os.path.getsize(FIXTURE) < 2 * 1024 * 1024
    data, weights, grads, train_state = load_fixture()
    assert "layer2.0.downsample.0.weight" in weights and "fc.weight" in weights
    assert "bn1.num_batches_tracked" in weights            # from_torch must skip these
    assert sorted(grads) == sorted(k for k in weights if not k.endswith(
        ("running_mean", "running_var", "num_batches_tracked")))


def test_resnet18_matches_fixture(small_resnet):
    data, weights, grads, train_state = load_fixture()
    model = small_resnet
    params, state = interop.from_torch(model, weights)
    got = fnn_outputs(model, params, state, data["x"], data["labels"])
    compare(got, (data["logits"], grads, data["train_logits"], train_state))


def test_from_torch_reads_a_safetensors_path_and_round_trips(tmp_path, small_resnet):
    from safetensors.numpy import save_file
    _, weights, _, _ = load_fixture()
    path = tmp_path / "w.safetensors"
    save_file(weights, str(path))
    model = small_resnet
    params, state = interop.from_torch(model, path)
    assert params["layer1"]["0"]["conv1"]["w"].shape == (3, 3, 8, 8)          # HWIO
    assert params["fc"]["w"].shape == (64, FIXTURE_CLASSES)                    # (in, out)
    np.testing.assert_array_equal(state["layer3"]["0"]["downsample"]["1"]["var"],
                                  weights["layer3.0.downsample.1.running_var"])
    back = interop.to_torch(model, params, state)
    expected = {k: v for k, v in weights.items() if not k.endswith("num_batches_tracked")}
    assert sorted(back) == sorted(expected)
    for k, v in expected.items():
        assert back[k].dtype == v.dtype and back[k].flags.c_contiguous
        np.testing.assert_array_equal(back[k], v, err_msg=k)


# ---------------------------------------------------------------------------------------------
# Net, layouts, errors
# ---------------------------------------------------------------------------------------------

def test_net_round_trip_and_names():
    model = models.Net()
    params, state = model.init(random.key(3), np.zeros((1, 28, 28, 1), np.float32))
    assert state == {}
    sd = interop.to_torch(model, params, state)
    shapes = {k: v.shape for k, v in sd.items()}
    assert shapes == {"conv1.weight": (32, 1, 3, 3), "conv1.bias": (32,),
                      "conv2.weight": (64, 32, 3, 3), "conv2.bias": (64,),
                      "fc1.weight": (128, 9216), "fc1.bias": (128,),
                      "fc2.weight": (10, 128), "fc2.bias": (10,)}
    p2, s2 = interop.from_torch(model, sd)
    assert s2 == {}
    T.tree.map(np.testing.assert_array_equal, p2, params)
    # the Dense after the Flatten is permuted, not merely transposed
    assert not np.array_equal(sd["fc1.weight"], np.asarray(params["fc1"]["w"]).T)


def test_flatten_reordering_matches_channel_first_flatten():
    """A PyTorch Linear applied to a (C, H, W)-flattened map equals the converted Dense applied
    to the same map (H, W, C)-flattened: the reordering is the right one, without torch."""
    rng = np.random.default_rng(0)
    c, h, w, out = 3, 4, 5, 6
    fmap = rng.standard_normal((2, h, w, c)).astype(np.float32)
    torch_w = rng.standard_normal((out, c * h * w)).astype(np.float32)
    model = fnn.Sequential([fnn.Flatten(), fnn.Dense(out, name="fc")])
    params, _ = interop.from_torch(model, {"fc.weight": torch_w, "fc.bias": np.zeros(out)},
                                   sample=fmap.shape, flatten={"fc": (c, h, w)})
    y, _ = model.apply(params, {}, fmap)
    expected = fmap.transpose(0, 3, 1, 2).reshape(2, -1) @ torch_w.T
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    back = interop.to_torch(model, params, {}, flatten={"fc": (c, h, w)})
    np.testing.assert_array_equal(back["fc.weight"], torch_w)


def test_errors_name_the_key(small_resnet):
    model = small_resnet
    params, state = model.init(random.key(0), np.zeros((1, 32, 32, 3), np.float32))
    good = interop.to_torch(model, params, state)

    missing = dict(good)
    del missing["layer2.1.bn2.running_var"]
    with pytest.raises(interop.InteropError, match=r"missing: layer2\.1\.bn2\.running_var"):
        interop.from_torch(model, missing)

    wrong = dict(good, **{"layer4.0.conv1.weight": np.zeros((64, 32, 3, 1), np.float32)})
    with pytest.raises(interop.InteropError,
                       match=r"wrong shape: layer4\.0\.conv1\.weight: the model needs "
                             r"\(64, 32, 3, 3\), the weights have \(64, 32, 3, 1\)"):
        interop.from_torch(model, wrong)

    extra = dict(good, **{"head.weight": np.zeros((3, 3), np.float32)})
    with pytest.raises(interop.InteropError, match=r"unexpected: head\.weight"):
        interop.from_torch(model, extra)

    # all problems at once, and strict=False reports them and keeps init values
    both = dict(missing, **{"head.weight": np.zeros(1)})
    both["fc.bias"] = np.zeros(3, np.float32)
    with pytest.raises(interop.InteropError, match=r"1 missing, 1 unexpected, 1 of the wrong"):
        interop.from_torch(model, both)
    p2, s2, report = interop.from_torch(model, both, strict=False)
    assert report.missing == ["layer2.1.bn2.running_var"]
    assert report.unexpected == ["head.weight"]
    assert report.mismatched == [("fc.bias", (10,), (3,))]
    np.testing.assert_array_equal(s2["layer2"]["1"]["bn2"]["var"], np.ones(16, np.float32))
    np.testing.assert_array_equal(p2["layer1"]["0"]["conv1"]["w"],
                                  params["layer1"]["0"]["conv1"]["w"])

    with pytest.raises(FileNotFoundError, match="nowhere.safetensors"):
        interop.from_torch(model, "nowhere.safetensors")
    with pytest.raises(TypeError, match="input_shape"):
        interop.from_torch(fnn.Sequential([fnn.Dense(2, name="fc")]), {})


def test_models_structure():
    model = models.resnet34(num_classes=7, width=4)
    params, state = model.init(random.key(0), np.zeros((1, 32, 32, 3), np.float32))
    assert [len(params[f"layer{i}"]) for i in range(1, 5)] == [3, 4, 6, 3]
    assert "downsample" not in params["layer1"]["0"]
    assert "downsample" in params["layer2"]["0"] and "downsample" not in params["layer2"]["1"]
    assert params["layer4"]["2"]["conv2"]["w"].shape == (3, 3, 32, 32)
    assert state["layer3"]["5"]["bn1"]["mean"].shape == (16,)
    y, _ = model.apply(params, state, np.zeros((2, 40, 36, 3), np.float32))
    assert y.shape == (2, 7)
    with pytest.raises(ValueError, match="width"):
        models.resnet18(width=0)
    # the 3x3 stride-2 convolution uses PyTorch's symmetric padding, not 'SAME'
    conv = model["layer2"]["0"].children["conv1"]
    assert conv.padding == [(1, 1), (1, 1)] and conv.strides == (2, 2)


def test_batchnorm_running_stats_follow_torch_convention():
    """PyTorch: running = (1 - 0.1) * running + 0.1 * batch, with the unbiased variance."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 5, 2)).astype(np.float32) * 2 + 1
    bn = fnn.BatchNorm(momentum=0.9, unbiased_running_var=True)
    _, state = bn.init(None, x)
    state = {"mean": np.full(2, 0.5, np.float32), "var": np.full(2, 2.0, np.float32)}
    _, new = bn.apply({"scale": np.ones(2, np.float32), "bias": np.zeros(2, np.float32)},
                      state, x, train=True)
    flat = x.reshape(-1, 2)
    np.testing.assert_allclose(new["mean"], 0.9 * 0.5 + 0.1 * flat.mean(0), rtol=1e-6)
    np.testing.assert_allclose(new["var"], 0.9 * 2.0 + 0.1 * flat.var(0, ddof=1), rtol=1e-6)
    _, biased = fnn.BatchNorm(momentum=0.9).apply(
        {"scale": np.ones(2, np.float32), "bias": np.zeros(2, np.float32)}, state, x,
        train=True)
    np.testing.assert_allclose(biased["var"], 0.9 * 2.0 + 0.1 * flat.var(0), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# against torch itself (when installed)
# ---------------------------------------------------------------------------------------------

def test_resnet18_matches_torch():
    torch = pytest.importorskip("torch")
    net = torch_resnet(num_classes=10, width=64, seed=0)
    # batch 4: with 2 examples, layer4's 1x1 maps give batch variances far below eps in some
    # channels, where train-mode outputs amplify float32 rounding (1e-3 apart, both right)
    x, labels = make_inputs(seed=1, n=4)
    want = torch_outputs(net, x, labels)
    model = models.resnet18(num_classes=10)
    state_dict = net.state_dict()                        # torch tensors, incl. num_batches
    params, state = interop.from_torch(model, state_dict)
    compare(fnn_outputs(model, params, state, x, labels), want)
    # and back: to_torch loads into the torch module (strict) and reproduces it exactly
    back = interop.to_torch(model, params, state)
    net2 = torch_resnet(num_classes=10, width=64, seed=5)
    net2.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()})
    for k, v in net.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(net2.state_dict()[k], v), k


def test_net_matches_torch():
    torch = pytest.importorskip("torch")
    net = torch_net(seed=0)
    x = np.random.default_rng(2).standard_normal((3, 28, 28, 1)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    model = models.Net()
    params, state = interop.from_torch(model, net)            # a module works too
    got, _ = model.apply(params, state, x)
    assert_rel_close(got, want, 1e-4, "Net log-probabilities")


def test_bfloat16_tensors_are_upcast():
    torch = pytest.importorskip("torch")
    net = torch_net(seed=0)
    sd = {k: v.to(torch.bfloat16) for k, v in net.state_dict().items()}
    params, _ = interop.from_torch(models.Net(), sd)
    assert params["fc2"]["w"].dtype == np.float32
    np.testing.assert_array_equal(params["fc2"]["w"], sd["fc2.weight"].float().numpy().T)
