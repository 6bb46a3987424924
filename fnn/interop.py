"""PyTorch weights in and out of fnn models: `from_torch` and `to_torch`.

    model = fnn.models.resnet18(num_classes=1000)
    params, state = fnn.interop.from_torch(model, "resnet18.safetensors")
    weights = fnn.interop.to_torch(model, params, state)   # {torch name: NumPy array}

torch is optional: it is imported only to convert torch tensors that are passed in.

Names. An fnn leaf's PyTorch name is its tree path joined with '.', the leaf renamed:

    params ...['w']        -> ....weight   Dense (in, out)        <- Linear (out, in)
                                           Conv2D HWIO            <- Conv2d OIHW
                                           Conv1D WIO             <- Conv1d OIW
    params ...['b']        -> ....bias
    params ...['scale']    -> ....weight   (BatchNorm, LayerNorm, GroupNorm, RMSNorm)
    params ...['bias']     -> ....bias
    params ...['embedding']-> ....weight   (Embedding: same layout)
    state  ...['mean']     -> ....running_mean
    state  ...['var']      -> ....running_var

so `params['layer1']['0']['conv1']['w']` is `layer1.0.conv1.weight`. BatchNorm's
`num_batches_tracked` is ignored on the way in and not written on the way out (PyTorch's
`load_state_dict` accepts its absence).

Batch norm momentum. PyTorch's `momentum=0.1` weighs the *new* batch: `running = 0.9 * running
+ 0.1 * batch`; fnn's `BatchNorm(momentum=m)` weighs the old value: `running = m * running +
(1 - m) * batch`. PyTorch's default is therefore `momentum=0.9` here (what `fnn.models` uses),
and PyTorch feeds the running variance the unbiased batch variance
(`BatchNorm(unbiased_running_var=True)`). Both use `eps=1e-5` by default.

Flatten. PyTorch flattens (C, H, W) feature maps, fnn NHWC ones (H, W, C): the Dense that
follows a Flatten sees its inputs in another order. Such Dense layers are named, with the
(C, H, W) shape of the flattened map, in `flatten=` (or the model's `torch_flatten`
attribute, which `fnn.models.Net` sets), and their kernel rows are permuted on the way.
"""
from __future__ import annotations

import os
import weakref
from typing import NamedTuple

import numpy as np

from transforms import eval_shape, random

from .layers import Spec, spec_of

__all__ = ["from_torch", "to_torch", "torch_names", "LoadReport", "InteropError"]

_PARAM_LEAVES = {"w": "weight", "b": "bias", "scale": "weight", "bias": "bias",
                 "embedding": "weight"}
_STATE_LEAVES = {"mean": "running_mean", "var": "running_var"}
_IGNORED_SUFFIXES = ("num_batches_tracked",)


class InteropError(ValueError):
    """Weights do not fit the model: lists every missing, unexpected and mis-shaped name."""


class LoadReport(NamedTuple):
    """What `from_torch(..., strict=False)` could not load (PyTorch names)."""
    missing: list          # names the model needs that the weights lack
    unexpected: list       # names in the weights the model does not have
    mismatched: list       # (name, expected PyTorch shape, given shape)

    def __bool__(self):
        return bool(self.missing or self.unexpected or self.mismatched)

    def message(self):
        """A readable summary (one line per problem)."""
        lines = [f"missing: {n}" for n in self.missing]
        lines += [f"unexpected: {n}" for n in self.unexpected]
        lines += [f"wrong shape: {n}: the model needs {tuple(e)}, the weights have {tuple(g)}"
                  for n, e, g in self.mismatched]
        return "\n".join(lines)


class _Entry(NamedTuple):
    collection: str        # 'params' or 'state'
    path: tuple            # keys inside params/state
    kind: str              # 'copy', 'dense', 'conv1d', 'conv2d', 'flat_dense'
    flatten: tuple         # (C, H, W) for 'flat_dense'


# ---------------------------------------------------------------------------------------------
# layouts
# ---------------------------------------------------------------------------------------------

def _kind(leaf, ndim, dotted, flatten):
    if leaf != "w":
        return "copy"
    if ndim == 2:
        return "flat_dense" if dotted in flatten else "dense"
    if ndim == 3:
        return "conv1d"
    if ndim == 4:
        return "conv2d"
    return "copy"


def _to_fnn(a, entry):
    """A PyTorch-layout array in fnn's layout."""
    if entry.kind == "dense":
        return a.T
    if entry.kind == "flat_dense":
        c, h, w = entry.flatten
        out = a.shape[0]
        return a.reshape(out, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, out)
    if entry.kind == "conv1d":
        return a.transpose(2, 1, 0)
    if entry.kind == "conv2d":
        return a.transpose(2, 3, 1, 0)
    return a


def _to_torch(a, entry):
    """An fnn-layout array in PyTorch's layout (the inverse of `_to_fnn`)."""
    if entry.kind == "dense":
        return a.T
    if entry.kind == "flat_dense":
        c, h, w = entry.flatten
        out = a.shape[1]
        return a.reshape(h, w, c, out).transpose(3, 2, 0, 1).reshape(out, c * h * w)
    if entry.kind == "conv1d":
        return a.transpose(2, 1, 0)
    if entry.kind == "conv2d":
        return a.transpose(3, 2, 0, 1)
    return a


def _torch_shape(shape, entry):
    return _to_torch(np.empty(shape, np.uint8), entry).shape


# ---------------------------------------------------------------------------------------------
# the name table
# ---------------------------------------------------------------------------------------------

def _flatten_hints(model, flatten):
    hints = dict(getattr(model, "torch_flatten", None) or {})
    hints.update(flatten or {})
    out = {}
    for k, v in hints.items():
        v = tuple(int(d) for d in v)
        if len(v) != 3:
            raise ValueError(f"flatten[{k!r}] must be the (C, H, W) shape of the flattened "
                             f"feature map, got {v}")
        out[str(k)] = v
    return out


def _walk(tree, collection, prefix=()):
    if isinstance(tree, dict):
        for k in sorted(tree, key=str):
            yield from _walk(tree[k], collection, prefix + (str(k),))
    else:
        yield prefix, tree


def _table(params, state, flatten):
    """{PyTorch name: (_Entry, fnn-layout shape, dtype)} for the leaves of params and state."""
    table = {}
    for collection, tree, names in (("params", params, _PARAM_LEAVES),
                                    ("state", state, _STATE_LEAVES)):
        for path, leaf in _walk(tree or {}, collection):
            where = "/".join((collection,) + path)
            if not path or path[-1] not in names:
                raise InteropError(f"{where}: no PyTorch name is known for a leaf named "
                                   f"{path[-1] if path else '(root)'!r} (known: "
                                   f"{sorted(names)})")
            dotted = ".".join(path[:-1])
            shape = tuple(leaf.shape) if hasattr(leaf, "shape") else np.shape(leaf)
            entry = _Entry(collection, path, _kind(path[-1], len(shape), dotted, flatten),
                           flatten.get(dotted))
            if entry.kind == "flat_dense" and np.prod(entry.flatten) != shape[0]:
                raise InteropError(f"{where}: flatten shape {entry.flatten} has "
                                   f"{int(np.prod(entry.flatten))} entries but the kernel has "
                                   f"{shape[0]} inputs")
            name = ".".join(path[:-1] + (names[path[-1]],))
            if name in table:
                raise InteropError(f"{where}: two leaves map to the PyTorch name {name!r}")
            table[name] = (entry, shape, np.dtype(getattr(leaf, "dtype", np.float32)))
    return table


_shape_cache = weakref.WeakKeyDictionary()   # model -> {(shape, dtype): (params, state) specs}


def _reference(model, sample, key, concrete):
    """The model's own (params, state), from `init` on a sample input: only their shapes and
    dtypes unless `concrete` (running the initialisers of a big network takes seconds)."""
    if sample is None:
        shape = getattr(model, "input_shape", None)
        if shape is None:
            raise TypeError(f"from_torch: {type(model).__name__} has no `input_shape`; pass "
                            "sample= (an input batch, or a Spec/anything with .shape and "
                            ".dtype) so the expected shapes can be computed")
        sample = Spec((1,) + tuple(shape), np.float32)
    elif isinstance(sample, tuple) and all(isinstance(d, (int, np.integer)) for d in sample):
        sample = Spec(sample, np.float32)
    key = random.key(0) if key is None else key
    if concrete:
        return model.init(key, sample)
    # shapes only: tracing init takes a second or two, so remember them per model and input
    sample = spec_of(sample)
    cache = _shape_cache.setdefault(model, {})
    spec = (sample.shape, sample.dtype.str)
    if spec not in cache:
        cache[spec] = eval_shape(lambda k: model.init(k, sample), key)
    return cache[spec]


def torch_names(model, params, state=None, flatten=None):
    """{PyTorch name: fnn path as a '/'-joined string ('params/...' or 'state/...')}."""
    table = _table(params, state, _flatten_hints(model, flatten))
    return {name: "/".join((e.collection,) + e.path) for name, (e, _, _) in table.items()}


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------

def _as_numpy(value, name):
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):      # a torch tensor
        t = value.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":                     # NumPy has no bfloat16
            t = t.float()
        return t.numpy()
    try:
        return np.asarray(value)
    except Exception as e:  # noqa: BLE001
        raise TypeError(f"weights[{name!r}]: cannot convert {type(value).__name__} to an "
                        f"array: {e}") from None


def _load(source):
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise FileNotFoundError(f"from_torch: no weights file {path!r}")
        from safetensors.numpy import load_file
        return dict(load_file(path))
    if hasattr(source, "state_dict") and callable(source.state_dict):
        source = source.state_dict()                             # a torch.nn.Module
    if not hasattr(source, "items"):
        raise TypeError("from_torch: weights must be a dict of torch tensors or NumPy arrays, "
                        f"a torch module, or a safetensors file path; got "
                        f"{type(source).__name__}")
    return {str(k): v for k, v in source.items()}


def _set(tree, path, value):
    for k in path[:-1]:
        tree = tree.setdefault(k, {})
    tree[path[-1]] = value


def _copy_tree(tree):
    return {k: _copy_tree(v) for k, v in tree.items()} if isinstance(tree, dict) else tree


# ---------------------------------------------------------------------------------------------
# public
# ---------------------------------------------------------------------------------------------

def from_torch(model, weights, *, strict=True, sample=None, flatten=None, key=None):
    """Load PyTorch weights into `model`: returns `(params, state)` for `model.apply`.

    Args:
      model: an fnn model whose parameter names mirror the PyTorch module's (all of
        `fnn.models`; any `Sequential` whose layers are given the PyTorch attribute names).
      weights: a `state_dict` (dict of torch tensors or NumPy arrays), a torch module, or the
        path of a safetensors file.
      strict: True (default): raise `InteropError` listing every missing, unexpected and
        mis-shaped name. False: load what fits, keep `model.init`'s values for the rest, and
        return `(params, state, report)` with a `LoadReport`.
      sample: an input batch (or its shape) for `model.init`, which gives the expected shapes;
        default: the model's `input_shape` with batch 1.
      flatten: {Dense path ('fc1', 'head.0'): (C, H, W)} for Dense layers that follow a
        Flatten (see the module docstring); added to the model's `torch_flatten`.
      key: the PRNG key for `model.init` (only matters for what `strict=False` leaves unloaded).

    Arrays are converted to the model's dtypes (bfloat16 tensors are upcast). BatchNorm's
    `num_batches_tracked` is ignored. See the module docstring for names, layouts and the
    batch-norm momentum convention.
    """
    hints = _flatten_hints(model, flatten)
    ref_params, ref_state = _reference(model, sample, key, concrete=not strict)
    table = _table(ref_params, ref_state, hints)
    source = _load(weights)
    # strict: every leaf is filled from the weights (or we raise); else init fills the gaps
    params, state = ({}, {}) if strict else (_copy_tree(ref_params), _copy_tree(ref_state))
    missing, mismatched = [], []
    for name, (entry, shape, dtype) in table.items():
        if name not in source:
            missing.append(name)
            continue
        a = _as_numpy(source[name], name)
        want = _torch_shape(shape, entry)
        if tuple(a.shape) != tuple(want):
            mismatched.append((name, tuple(want), tuple(a.shape)))
            continue
        value = np.ascontiguousarray(_to_fnn(a, entry)).astype(dtype, copy=False)
        _set(params if entry.collection == "params" else state, entry.path, value)
    unexpected = sorted(n for n in source if n not in table
                        and not n.endswith(_IGNORED_SUFFIXES))
    report = LoadReport(sorted(missing), unexpected, sorted(mismatched))
    if strict:
        if report:
            raise InteropError(f"from_torch: the weights do not fit {type(model).__name__} "
                               f"({len(report.missing)} missing, {len(report.unexpected)} "
                               f"unexpected, {len(report.mismatched)} of the wrong shape):\n"
                               + report.message())
        return params, state
    return params, state, report


def to_torch(model, params, state=None, *, flatten=None):
    """`params` and `state` as a PyTorch `state_dict` of NumPy arrays (PyTorch names and
    layouts; the exact inverse of `from_torch`). Load it into a torch module with
    `module.load_state_dict({k: torch.from_numpy(v) for k, v in out.items()})`, or save it
    with `safetensors.numpy.save_file`. Leaves may be any arrays (also gradients: the
    layout changes are linear, so gradients map as parameters do)."""
    table = _table(params, state, _flatten_hints(model, flatten))
    out = {}
    for name, (entry, _, _) in table.items():
        tree = params if entry.collection == "params" else state
        for k in entry.path:
            tree = tree[k]
        out[name] = np.ascontiguousarray(_to_torch(np.asarray(tree), entry))
    return out
