"""Layers: values with two pure functions.

    params, state = layer.init(key, x)                  # x: a sample batch (or anything with
                                                        #    .shape and .dtype)
    y, state = layer.apply(params, state, x, key=None, train=False)

`params` holds trained arrays, `state` the non-trained ones (batch-norm running statistics);
both are nested `dict`s of arrays, `{}` when there are none. `apply` is pure and jittable: it
only branches on Python values (`train`, shapes), never on array values. `key` is needed only
where randomness is (dropout in training).

`Sequential(layers)` names its children by type, counting per type (`dense_0`, `dense_1`,
`conv2d_0`, `batchnorm_0`, ...), or by the `name=` given; only children that have parameters
(or state) appear in `params` (or `state`). Plain functions (e.g. `fnn.relu`) can be used as
layers. Child `i` draws its randomness from `random.fold_in(key, i)`.

Images are NHWC and convolution kernels HWIO.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Sequence, Union

import numpy as np

import transforms as T
import transforms.numpy as tnp
from transforms import lax, random, tree

from . import initializers as init_lib

__all__ = ["Module", "Dense", "Conv2D", "MaxPool", "AvgPool", "Flatten", "Dropout",
           "BatchNorm", "LayerNorm", "Embedding", "Sequential", "Lambda"]


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

class Spec:
    """Shape and dtype of an array (what `init` needs from its sample input)."""
    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(int(d) for d in shape), np.dtype(dtype)

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"Spec({self.shape}, {self.dtype.name})"


def spec_of(x):
    if isinstance(x, Spec):
        return x
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return Spec(x.shape, x.dtype)
    a = np.asarray(x)
    return Spec(a.shape, a.dtype)


def infer_output(fn, *args):
    """Shapes/dtypes (as `Spec`s) of `fn(*args)`, by tracing it: nothing is computed. Leaves
    of `args` may be arrays or anything with `.shape` and `.dtype`."""
    specs = tree.map(lambda x: T.ShapeDtypeStruct(spec_of(x).shape, spec_of(x).dtype), args)
    out = T.eval_shape(fn, *specs)
    return tree.map(lambda o: Spec(o.shape, o.dtype), out)


def check_key(key, who):
    if key is None:
        raise ValueError(f"{who} needs a PRNG key: pass transforms.random.key(seed)")
    if isinstance(key, (int, np.integer)):
        return random.key(int(key))
    return key


def pair_of(v, name):
    if isinstance(v, (int, np.integer)):
        return (int(v), int(v))
    v = tuple(int(a) for a in v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v}")
    return v


class MissingParamError(KeyError):
    """A layer's `apply` did not find one of its parameters (or state entries)."""

    def __init__(self, path, name, have):
        self.path, self.name, self.have = path, name, have
        super().__init__(self._message())

    def _message(self):
        where = "/".join(self.path) or "params"
        return (f"{where}: entry {self.name!r} not found (has {self.have}); params and state "
                "must come from this model's init")

    def __str__(self):
        return self._message()

    def prefixed(self, name):
        return MissingParamError([name] + list(self.path), self.name, self.have)


def get_param(params, name, layer):
    try:
        return params[name]
    except (KeyError, TypeError, IndexError):
        have = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise MissingParamError([], name, have) from None


def affine_params(layer, channels):
    """A normalisation layer's optional per-channel params: `scale` (ones) if
    `layer.use_scale`, `bias` (zeros) if `layer.use_bias`."""
    params = {}
    if layer.use_scale:
        params["scale"] = np.ones((channels,), layer.param_dtype)
    if layer.use_bias:
        params["bias"] = np.zeros((channels,), layer.param_dtype)
    return params


def apply_affine(layer, params, y, shape=None):
    """`y * scale + bias` with the params `affine_params` made (each only if the layer has it),
    reshaped to `shape` first when given (to broadcast along a channel axis)."""
    for name, enabled, op in (("scale", layer.use_scale, tnp.multiply),
                              ("bias", layer.use_bias, tnp.add)):
        if enabled:
            p = get_param(params, name, layer)
            y = op(y, p if shape is None else tnp.reshape(p, shape))
    return y


def kernel_options(layer, use_bias, kernel_init, bias_init, name, param_dtype):
    """Set the options a layer with a kernel `w` and an optional bias `b` shares (Dense and
    the convolutions); defaults `kernel_init=lecun_normal()`, `bias_init=zeros` (as Flax)."""
    layer.use_bias = use_bias
    layer.kernel_init = kernel_init or init_lib.lecun_normal()
    layer.bias_init = bias_init or init_lib.zeros
    layer.name = name
    layer.param_dtype = np.dtype(param_dtype)


def kernel_params(layer, key, kernel_shape):
    """`{"w": kernel of kernel_shape, "b": bias of (features,)}` (no "b" unless
    `layer.use_bias`), from the initializers `kernel_options` set."""
    kw, kb = random.split(key)
    params = {"w": layer.kernel_init(kw, kernel_shape, layer.param_dtype)}
    if layer.use_bias:
        params["b"] = layer.bias_init(kb, (layer.features,), layer.param_dtype)
    return params


def padding_pairs(padding, in_sizes, window, strides, dilation=None):
    """Explicit (low, high) padding per spatial dimension for 'SAME'/'VALID'/int/pairs,
    with JAX's rule for 'SAME' (output size ceil(in / stride), extra padding at the end)."""
    nd = len(in_sizes)
    dilation = dilation or (1,) * nd
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(f"padding must be 'SAME', 'VALID', an int or pairs, got {padding!r}")
        eff = [(k - 1) * d + 1 for k, d in zip(window, dilation)]   # the dilated window
        return list(lax.padtype_to_pads(tuple(in_sizes), eff, tuple(strides), padding.upper()))
    if isinstance(padding, (int, np.integer)):
        return [(int(padding), int(padding))] * nd
    pads = [tuple(int(a) for a in p) if not isinstance(p, (int, np.integer)) else (int(p),) * 2
            for p in padding]
    if len(pads) != nd or any(len(p) != 2 for p in pads):
        raise ValueError(f"padding must have one (low, high) pair per spatial dimension, got "
                         f"{padding!r}")
    return pads


# ---------------------------------------------------------------------------------------------
# Convolution and pooling kernels
# ---------------------------------------------------------------------------------------------

def _conv_nhwc(x, w, strides, padding, dilation):
    return lax.conv_general_dilated(x, w, window_strides=strides, padding=padding,
                                    lhs_dilation=None, rhs_dilation=dilation,
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _pool(x, window, strides, padding, kind):
    """Max or sum pooling over the two spatial axes of NHWC `x`."""
    n, h, wd, c = x.shape
    pads = padding_pairs(padding, (h, wd), window, strides)
    if kind == "max":
        init = np.asarray(-np.inf if np.issubdtype(x.dtype, np.floating)
                          else np.iinfo(x.dtype).min, x.dtype)
        comp = lax.max
    else:
        init, comp = np.asarray(0, x.dtype), lax.add
    return lax.reduce_window(x, init, comp, (1,) + tuple(window) + (1,),
                             (1,) + tuple(strides) + (1,),
                             [(0, 0)] + [tuple(p) for p in pads] + [(0, 0)])


def _window_counts(in_sizes, window, strides, pads):
    """How many input (not padding) elements each pooling window covers, as a NumPy array of
    shape (1, out_h, out_w, 1): the window counts of one axis multiplied together."""
    per_axis = []
    for n, k, s, (lo, hi) in zip(in_sizes, window, strides, pads):
        out = (n + lo + hi - k) // s + 1
        start = np.arange(out) * s - lo
        per_axis.append(np.clip(start + k, 0, n) - np.clip(start, 0, n))
    return np.multiply.outer(*per_axis)[None, :, :, None]


# ---------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------

# the types of the constructor arguments (annotations only; no runtime checks)
Initializer = Callable[..., Any]            # (key, shape, dtype) -> array
IntOrPair = Union[int, Sequence[int]]
Padding = Union[str, int, Sequence[Any]]    # 'SAME' / 'VALID' / int / ((lo, hi), (lo, hi))
DType = Any                                 # anything numpy.dtype accepts


class Module:
    """Base class. A subclass sets `type_name` (used for automatic names), and defines
    `init(key, x) -> (params, state)` and `apply(params, state, x, key=None, train=False)
    -> (y, state)`. Set `needs_rng = True` if `apply` uses `key`."""
    type_name = "module"
    needs_rng = False
    name = None

    def init(self, key: Any, x: Any) -> tuple[dict, dict]:
        """`(params, state)` for inputs like `x` (an array or anything with .shape/.dtype)."""
        return {}, {}

    def apply(self, params: dict, state: dict, x: Any, key: Any = None,
              train: bool = False) -> tuple[Any, dict]:
        """`(y, new_state)`: the layer applied to `x`."""
        raise NotImplementedError

    def __repr__(self):
        simple = (int, float, str, bool, tuple, list)
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                           if not k.startswith("_") and isinstance(v, simple)
                           and k not in ("name", "needs_rng"))
        named = f", name={self.name!r}" if self.name else ""
        return f"{type(self).__name__}({fields}{named})"


class Lambda(Module):
    """A function of the input used as a layer (no parameters)."""

    def __init__(self, fn: Callable[[Any], Any], name: str | None = None):
        self.fn = fn
        self.name = name
        self.type_name = getattr(fn, "__name__", "lambda").strip("<>").lower() or "lambda"

    def apply(self, params, state, x, key=None, train=False):
        return self.fn(x), state

    def __repr__(self):
        return getattr(self.fn, "__name__", repr(self.fn))


def as_layer(layer):
    if isinstance(layer, Module):
        return layer
    if callable(layer):
        return Lambda(layer)
    raise TypeError(f"a layer must be an fnn Module or a function, got {type(layer).__name__}")


class Dense(Module):
    """`y = x @ w + b`, with `w` of shape (in, features) and `b` of shape (features,).
    Defaults: `kernel_init=lecun_normal()`, `bias_init=zeros` (as Flax)."""
    type_name = "dense"

    def __init__(self, features: int, use_bias: bool = True,
                 kernel_init: Initializer | None = None, bias_init: Initializer | None = None,
                 name: str | None = None, param_dtype: DType = np.float32):
        self.features = int(features)
        kernel_options(self, use_bias, kernel_init, bias_init, name, param_dtype)

    def init(self, key, x):
        key = check_key(key, "Dense.init")
        x = spec_of(x)
        if x.ndim < 1:
            raise ValueError("Dense needs inputs with a feature axis, got a scalar")
        return kernel_params(self, key, (x.shape[-1], self.features)), {}

    def apply(self, params, state, x, key=None, train=False):
        y = tnp.matmul(x, get_param(params, "w", self))
        if self.use_bias:
            y = y + get_param(params, "b", self)
        return y, state


class Conv2D(Module):
    """2-D convolution of NHWC inputs with an HWIO kernel `w` of shape
    (kh, kw, in, features), plus a bias `b` of shape (features,).

    `padding`: 'SAME' (output size ceil(in / stride)), 'VALID', an int, or ((lo, hi), (lo, hi)).
    `dilation` dilates the kernel. Defaults: `kernel_init=lecun_normal()`, `bias_init=zeros`."""
    type_name = "conv2d"

    def __init__(self, features: int, kernel_size: IntOrPair, strides: IntOrPair = 1,
                 padding: Padding = "SAME", dilation: IntOrPair = 1, use_bias: bool = True,
                 kernel_init: Initializer | None = None, bias_init: Initializer | None = None,
                 name: str | None = None, param_dtype: DType = np.float32):
        self.features = int(features)
        self.kernel_size = pair_of(kernel_size, "kernel_size")
        self.strides = pair_of(strides, "strides")
        self.padding = padding if isinstance(padding, str) else padding_pairs(
            padding, (0, 0), self.kernel_size, self.strides)
        self.dilation = pair_of(dilation, "dilation")
        kernel_options(self, use_bias, kernel_init, bias_init, name, param_dtype)

    def init(self, key, x):
        key = check_key(key, "Conv2D.init")
        x = spec_of(x)
        if x.ndim not in (3, 4):
            raise ValueError(f"Conv2D expects NHWC inputs, got shape {x.shape}")
        shape = self.kernel_size + (x.shape[-1], self.features)
        return kernel_params(self, key, shape), {}

    def apply(self, params, state, x, key=None, train=False):
        x = tnp.asarray(x)
        unbatched = x.ndim == 3
        if unbatched:
            x = x[None]
        if x.ndim != 4:
            raise ValueError(f"Conv2D expects NHWC inputs, got shape {x.shape}")
        w = get_param(params, "w", self)
        if x.shape[-1] != w.shape[2]:
            raise ValueError(f"Conv2D: input has {x.shape[-1]} channels but the kernel expects "
                             f"{w.shape[2]}")
        dt = np.result_type(x.dtype, w.dtype)
        y = _conv_nhwc(x.astype(dt), tnp.asarray(w).astype(dt), self.strides, self.padding,
                       self.dilation)
        if self.use_bias:
            y = y + get_param(params, "b", self)
        return (y[0] if unbatched else y), state


class _Pool(Module):
    kind = "max"

    def __init__(self, window: IntOrPair, strides: IntOrPair | None = None,
                 padding: Padding = "VALID", name: str | None = None):
        self.window = pair_of(window, "window")
        self.strides = self.window if strides is None else pair_of(strides, "strides")
        self.padding = padding
        self.name = name

    def _check(self, x):
        x = tnp.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__} expects NHWC inputs, got shape {x.shape}")
        return x


class MaxPool(_Pool):
    """Maximum over `window` (h, w) windows of NHWC inputs, moved by `strides` (default: the
    window); padding 'VALID' (default), 'SAME', an int or pairs (padded with -inf)."""
    type_name = "maxpool"

    def apply(self, params, state, x, key=None, train=False):
        return _pool(self._check(x), self.window, self.strides, self.padding, "max"), state


class AvgPool(_Pool):
    """Mean over windows of NHWC inputs. With padding, `count_include_pad=True` (the default,
    as Flax) divides by the window size; `False` divides by the number of real entries."""
    type_name = "avgpool"

    def __init__(self, window: IntOrPair, strides: IntOrPair | None = None,
                 padding: Padding = "VALID", count_include_pad: bool = True,
                 name: str | None = None):
        super().__init__(window, strides, padding, name)
        self.count_include_pad = count_include_pad

    def apply(self, params, state, x, key=None, train=False):
        x = self._check(x)
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
        s = _pool(x, self.window, self.strides, self.padding, "sum")
        if self.count_include_pad:
            return s / np.asarray(math.prod(self.window), x.dtype), state
        counts = _window_counts(x.shape[1:3], self.window, self.strides,
                                padding_pairs(self.padding, x.shape[1:3], self.window,
                                              self.strides)).astype(x.dtype)
        return s / counts, state


class Flatten(Module):
    """Reshape (N, ...) to (N, prod(...))."""
    type_name = "flatten"

    def __init__(self, name: str | None = None):
        self.name = name

    def apply(self, params, state, x, key=None, train=False):
        x = tnp.asarray(x)
        # the size spelled out, not -1: an empty batch has no size to infer it from
        return tnp.reshape(x, (x.shape[0], math.prod(x.shape[1:]))), state


class Dropout(Module):
    """Zero each entry with probability `rate` and scale the rest by 1 / (1 - rate) when
    `train=True` (needs `key`); the identity when `train=False`."""
    type_name = "dropout"

    def __init__(self, rate: float, name: str | None = None):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1], got {rate}")
        self.rate = float(rate)
        self.name = name
        self.needs_rng = self.rate > 0.0

    def apply(self, params, state, x, key=None, train=False):
        if not train or self.rate == 0.0:
            return x, state
        x = tnp.asarray(x)
        if self.rate == 1.0:
            return tnp.zeros_like(x), state
        if key is None:
            raise ValueError("Dropout with train=True needs a PRNG key: call "
                             "apply(params, state, x, key=key, train=True)")
        keep_prob = 1.0 - self.rate
        keep = random.bernoulli(key, keep_prob, x.shape)
        scaled = x / np.asarray(keep_prob, x.dtype)
        return tnp.where(keep, scaled, tnp.zeros_like(scaled)), state


def _stat_shape(ndim, axis, size):
    shape = [1] * ndim
    shape[axis] = size
    return tuple(shape)


class BatchNorm(Module):
    """Batch normalisation over every axis but `axis` (the features).

    `train=True`: normalise with the batch mean and (biased) variance, and return the state
    with running averages `mean <- momentum * mean + (1 - momentum) * batch_mean` (same for
    `var`). `train=False`: normalise with the running averages. `init` leaves them at
    mean 0, var 1. Params `scale` (ones) and `bias` (zeros); state `mean` and `var`.

    `unbiased_running_var=True` feeds the running variance with the unbiased batch variance
    (times n / (n - 1), n the number of reduced entries) as PyTorch does; normalisation always
    uses the biased one. PyTorch's `momentum=0.1` is `momentum=0.9` here."""
    type_name = "batchnorm"

    def __init__(self, momentum: float = 0.99, eps: float = 1e-5, axis: int = -1,
                 use_scale: bool = True, use_bias: bool = True, name: str | None = None,
                 param_dtype: DType = np.float32, unbiased_running_var: bool = False):
        self.momentum, self.eps, self.axis = float(momentum), float(eps), int(axis)
        self.unbiased_running_var = bool(unbiased_running_var)
        self.use_scale, self.use_bias = use_scale, use_bias
        self.name = name
        self.param_dtype = np.dtype(param_dtype)

    def init(self, key, x):
        x = spec_of(x)
        c = x.shape[self.axis]
        params = affine_params(self, c)
        state = {"mean": np.zeros((c,), self.param_dtype), "var": np.ones((c,), self.param_dtype)}
        return params, state

    def apply(self, params, state, x, key=None, train=False):
        x = tnp.asarray(x)
        axis = self.axis % x.ndim
        c = x.shape[axis]
        red = tuple(i for i in range(x.ndim) if i != axis)
        bshape = _stat_shape(x.ndim, axis, c)
        ra_mean, ra_var = get_param(state, "mean", self), get_param(state, "var", self)
        if train:
            mean = tnp.mean(x, axis=red)
            centered = x - tnp.reshape(mean, bshape)
            var = tnp.mean(centered * centered, axis=red)
            m = self.momentum
            run_var = var
            if self.unbiased_running_var:
                n = math.prod(x.shape[i] for i in red)
                run_var = var * np.asarray(n / max(n - 1, 1), var.dtype)
            new_mean = m * ra_mean + (1.0 - m) * lax.stop_gradient(mean)
            new_var = m * ra_var + (1.0 - m) * lax.stop_gradient(run_var)
            new_state = {"mean": tnp.asarray(new_mean).astype(ra_mean.dtype),
                         "var": tnp.asarray(new_var).astype(ra_var.dtype)}
        else:
            mean, var = ra_mean, ra_var
            centered = x - tnp.reshape(mean, bshape)
            new_state = state
        y = centered * tnp.reshape(lax.rsqrt(tnp.asarray(var + self.eps)), bshape)
        return apply_affine(self, params, y, bshape), new_state


class LayerNorm(Module):
    """Normalise each example over its last axis: `(x - mean) / sqrt(var + eps) * scale +
    bias`, with params `scale` (ones) and `bias` (zeros) of the feature size."""
    type_name = "layernorm"

    def __init__(self, eps: float = 1e-6, use_scale: bool = True, use_bias: bool = True,
                 name: str | None = None, param_dtype: DType = np.float32):
        self.eps = float(eps)
        self.use_scale, self.use_bias = use_scale, use_bias
        self.name = name
        self.param_dtype = np.dtype(param_dtype)

    def init(self, key, x):
        return affine_params(self, spec_of(x).shape[-1]), {}

    def apply(self, params, state, x, key=None, train=False):
        x = tnp.asarray(x)
        mean = tnp.mean(x, axis=-1, keepdims=True)
        centered = x - mean
        var = tnp.mean(centered * centered, axis=-1, keepdims=True)
        return apply_affine(self, params, centered * lax.rsqrt(var + self.eps)), state


class Embedding(Module):
    """A lookup table `embedding` of shape (num_embeddings, features): integer inputs of any
    shape give outputs with a trailing feature axis. Default init: normal with variance
    1 / features (as Flax)."""
    type_name = "embedding"

    def __init__(self, num_embeddings: int, features: int,
                 embedding_init: Initializer | None = None, name: str | None = None,
                 param_dtype: DType = np.float32):
        self.num_embeddings, self.features = int(num_embeddings), int(features)
        self.embedding_init = embedding_init or init_lib.variance_scaling(
            1.0, "fan_in", "normal", out_axis=0)
        self.name = name
        self.param_dtype = np.dtype(param_dtype)

    def init(self, key, x):
        key = check_key(key, "Embedding.init")
        table = self.embedding_init(key, (self.num_embeddings, self.features), self.param_dtype)
        return {"embedding": table}, {}

    def apply(self, params, state, x, key=None, train=False):
        x = tnp.asarray(x)
        if not np.issubdtype(x.dtype, np.integer):
            raise TypeError(f"Embedding expects integer inputs, got {x.dtype}")
        return tnp.take(get_param(params, "embedding", self), x, axis=0), state


class Sequential(Module):
    """Apply layers in order. Children are named by type and count (`dense_0`, `dense_1`,
    `conv2d_0`, ...) or by their `name=`; `params`/`state` map those names to the children's
    own params/state (children without any are left out)."""
    type_name = "sequential"

    def __init__(self, layers: Iterable[Module | Callable[[Any], Any]],
                 name: str | None = None):
        self.layers = [as_layer(layer) for layer in layers]
        self.name = name
        counts, names = {}, []
        for layer in self.layers:
            if layer.name is not None:
                n = str(layer.name)
            else:
                t = layer.type_name
                n = f"{t}_{counts.get(t, 0)}"
                counts[t] = counts.get(t, 0) + 1
            if n in names:
                raise ValueError(f"Sequential: two layers are named {n!r}")
            names.append(n)
        self.names = names
        self.needs_rng = any(layer.needs_rng for layer in self.layers)

    def __repr__(self):
        inner = ",\n  ".join(f"{n}: {layer!r}" for n, layer in zip(self.names, self.layers))
        return f"Sequential([\n  {inner}\n])"

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        if isinstance(i, str):
            return self.layers[self.names.index(i)]
        return self.layers[i]

    def init(self, key, x):
        key = check_key(key, "Sequential.init")
        spec = spec_of(x)
        params, state = {}, {}
        last = len(self.layers) - 1
        for i, (name, layer) in enumerate(zip(self.names, self.layers)):
            p, s = layer.init(random.fold_in(key, i), spec)
            if p:
                params[name] = p
            if s:
                state[name] = s
            if i < last:
                spec = infer_output(
                    lambda p, s, x, layer=layer: layer.apply(p, s, x, train=False)[0], p, s, spec)
        return params, state

    def apply(self, params, state, x, key=None, train=False):
        params = {} if params is None else params
        state = {} if state is None else state
        new_state = {}
        for i, (name, layer) in enumerate(zip(self.names, self.layers)):
            k = random.fold_in(key, i) if (layer.needs_rng and key is not None) else None
            try:
                x, s = layer.apply(params.get(name, {}), state.get(name, {}), x, key=k,
                                   train=train)
            except MissingParamError as e:
                raise e.prefixed(name) from None
            if s:
                new_state[name] = s
        return x, new_state
