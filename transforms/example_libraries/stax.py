"""`jax.example_libraries.stax`: a minimal neural-network library of `(init_fun, apply_fun)` pairs.

A layer is a pair of functions:

* `init_fun(rng, input_shape) -> (output_shape, params)`: draws the layer's parameters from the
  PRNG key `rng` for inputs of shape `input_shape` (a tuple; lists of shapes for layers taking
  several inputs) and says the shape of its outputs, so shapes are known before any data runs;
* `apply_fun(params, inputs, **kwargs) -> outputs`: the layer's computation. The keyword `rng`
  carries a PRNG key to layers that draw (`Dropout`); other keywords pass through combinators.

Layer constructors are CamelCase (`Dense(10)`, `Conv(32, (3, 3))`); layers without options are
pairs already (`Relu`, `Flatten`, `LogSoftmax`, `Identity`, `FanInSum`). `serial` chains layers,
`parallel` runs layers side by side on a list of inputs (with `FanOut` and `FanInSum` /
`FanInConcat` this builds residual blocks), `shape_dependent` builds a layer once its input
shape is known.

Key use, parameter layout and initialisers are JAX's: `serial` splits its key once per layer,
`Dense(n)` draws `(W, b)` with `W` of shape `(in, n)` from `glorot_normal` and `b` from
`normal(1e-2)`, so with the same key the parameters are JAX's bit for bit (float32 by default).
Everything is written over `transforms.numpy`, `lax`, `random` and `nn`, so `apply_fun`
differentiates, batches (`vmap`) and compiles (`jit`).

Differences from JAX: `BatchNorm` accepts negative axes (JAX counts them as no axis);
`parallel`'s `init_fun` returns `(output_shapes, params)` tuples rather than a one-shot `zip`
object (unpacking the two gives the same values).
"""
from __future__ import annotations

import math
import numbers

from transforms import lax, random
import transforms.numpy as tnp
from transforms.nn import (elu, gelu, leaky_relu, log_softmax, relu, selu, sigmoid,  # noqa: F401
                           softmax, softplus, standardize)
from transforms.nn.initializers import glorot_normal, normal, ones, zeros  # noqa: F401

# The older names JAX's stax still exports.
glorot = glorot_normal
randn = normal
logsoftmax = log_softmax

__all__ = [
    # layers with options (constructors) and without (pairs)
    "Dense", "GeneralConv", "Conv", "GeneralConvTranspose", "Conv1DTranspose", "ConvTranspose",
    "BatchNorm", "Dropout", "MaxPool", "SumPool", "AvgPool", "FanOut", "FanInConcat",
    "Flatten", "Identity", "FanInSum",
    "elementwise", "Tanh", "Relu", "Exp", "LogSoftmax", "Softmax", "Softplus", "Sigmoid", "Elu",
    "LeakyRelu", "Selu", "Gelu",
    # combinators
    "serial", "parallel", "shape_dependent",
    # the functions and initialisers stax re-exports
    "relu", "log_softmax", "softmax", "softplus", "sigmoid", "elu", "leaky_relu", "selu", "gelu",
    "standardize", "glorot_normal", "normal", "ones", "zeros", "glorot", "randn", "logsoftmax",
]


def _positive_int(value, name, where):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _int_tuple(value, name, where):
    try:
        out = tuple(_positive_int(v, f"{name}[{i}]", where) for i, v in enumerate(value))
    except TypeError:
        raise TypeError(f"{where}: {name} must be a sequence of positive integers, "
                        f"got {value!r}") from None
    return out


# --------------------------------------------------------------------------------------------
# Dense and convolutions

def Dense(out_dim, W_init=glorot_normal(), b_init=normal()):
    """A fully connected layer `inputs @ W + b` acting on the last axis.

    `init_fun` draws `W` of shape `(input_shape[-1], out_dim)` with `W_init` and `b` of shape
    `(out_dim,)` with `b_init`, from the two halves of `random.split(rng)`; the output shape is
    `input_shape[:-1] + (out_dim,)`. Params: `(W, b)`."""
    out_dim = _positive_int(out_dim, "out_dim", "Dense")

    def init_fun(rng, input_shape):
        input_shape = tuple(input_shape)
        if not input_shape:
            raise ValueError("Dense: input_shape must have at least one axis, got ()")
        k_w, k_b = random.split(rng)
        W = W_init(k_w, (input_shape[-1], out_dim))
        b = b_init(k_b, (out_dim,))
        return input_shape[:-1] + (out_dim,), (W, b)

    def apply_fun(params, inputs, **kwargs):
        W, b = params
        return tnp.dot(inputs, W) + b

    return init_fun, apply_fun


def _check_dimension_numbers(dimension_numbers, n_spatial, where):
    try:
        lhs_spec, rhs_spec, out_spec = dimension_numbers
    except (TypeError, ValueError):
        raise ValueError(f"{where}: dimension_numbers must be three layout strings such as "
                         f"('NHWC', 'HWIO', 'NHWC'), got {dimension_numbers!r}") from None
    for name, spec, letters in (("lhs", lhs_spec, "NC"), ("rhs", rhs_spec, "IO"),
                                ("out", out_spec, "NC")):
        if (not isinstance(spec, str) or len(spec) != n_spatial + 2
                or any(spec.count(c) != 1 for c in letters)):
            raise ValueError(f"{where}: the {name} layout {spec!r} of dimension_numbers must "
                             f"have {n_spatial + 2} letters with one each of "
                             f"{', '.join(letters)} for filter_shape of {n_spatial} axes")
    return lhs_spec, rhs_spec, out_spec


def _conv_layer(kind, dimension_numbers, out_chan, filter_shape, strides, padding, W_init,
                b_init):
    """The shared body of `GeneralConv` (kind "conv") and `GeneralConvTranspose`."""
    where = "GeneralConv" if kind == "conv" else "GeneralConvTranspose"
    out_chan = _positive_int(out_chan, "out_chan", where)
    filter_shape = _int_tuple(filter_shape, "filter_shape", where)
    lhs_spec, rhs_spec, out_spec = _check_dimension_numbers(dimension_numbers,
                                                            len(filter_shape), where)
    dimension_numbers = (lhs_spec, rhs_spec, out_spec)
    ones_ = (1,) * len(filter_shape)
    strides = _int_tuple(strides, "strides", where) if strides else ones_
    if W_init is None:
        # fans from the kernel's own input/output axes, wherever the layout puts them
        W_init = glorot_normal(rhs_spec.index("I"), rhs_spec.index("O"))

    def init_fun(rng, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != len(lhs_spec):
            raise ValueError(f"{where}: input_shape {input_shape} does not have the "
                             f"{len(lhs_spec)} axes of the layout {lhs_spec!r}")
        spatial = iter(filter_shape)
        kernel_shape = tuple(out_chan if c == "O" else
                             input_shape[lhs_spec.index("C")] if c == "I" else next(spatial)
                             for c in rhs_spec)
        shape_of = (lax.conv_general_shape_tuple if kind == "conv"
                    else lax.conv_transpose_shape_tuple)
        output_shape = tuple(shape_of(input_shape, kernel_shape, strides, padding,
                                      dimension_numbers))
        # the bias broadcasts along the output's channel axis only
        bias_shape = tuple(out_chan if c == "C" else 1 for c in out_spec)
        k_w, k_b = random.split(rng)
        return output_shape, (W_init(k_w, kernel_shape), b_init(k_b, bias_shape))

    def apply_fun(params, inputs, **kwargs):
        W, b = params
        if kind == "conv":
            y = lax.conv_general_dilated(inputs, W, strides, padding, ones_, ones_,
                                         dimension_numbers=dimension_numbers)
        else:
            y = lax.conv_transpose(inputs, W, strides, padding,
                                   dimension_numbers=dimension_numbers)
        return y + b

    return init_fun, apply_fun


def GeneralConv(dimension_numbers, out_chan, filter_shape, strides=None, padding="VALID",
                W_init=None, b_init=normal(1e-6)):
    """A convolution layer with layouts `dimension_numbers = (lhs, rhs, out)`, e.g.
    `('NCHW', 'OIHW', 'NCHW')`.

    The kernel's shape follows the `rhs` layout: `out_chan` at 'O', the input's channel count at
    'I', `filter_shape` at the spatial letters in order. `strides` default to ones; `padding`
    is 'VALID', 'SAME', 'SAME_LOWER' or explicit `(lo, hi)` pairs, as `lax.conv_general_dilated`.
    `W_init` defaults to `glorot_normal` with the kernel's 'I' and 'O' axes as fan axes; the
    bias has shape 1 except `out_chan` at the output's 'C'. Params: `(W, b)`."""
    return _conv_layer("conv", dimension_numbers, out_chan, filter_shape, strides, padding,
                       W_init, b_init)


def Conv(out_chan, filter_shape, strides=None, padding="VALID", W_init=None,
         b_init=normal(1e-6)):
    """A 2-D convolution on NHWC inputs with an HWIO kernel: `GeneralConv(('NHWC', 'HWIO',
    'NHWC'), out_chan, filter_shape, strides, padding, W_init, b_init)`."""
    return GeneralConv(("NHWC", "HWIO", "NHWC"), out_chan, filter_shape, strides, padding,
                       W_init, b_init)


def GeneralConvTranspose(dimension_numbers, out_chan, filter_shape, strides=None,
                         padding="VALID", W_init=None, b_init=normal(1e-6)):
    """A transposed-convolution layer (`lax.conv_transpose`): as `GeneralConv`, the strides
    dilate the input instead of striding over it, so 'SAME' padding multiplies the spatial
    sizes by `strides`. Params: `(W, b)`."""
    return _conv_layer("transpose", dimension_numbers, out_chan, filter_shape, strides, padding,
                       W_init, b_init)


def Conv1DTranspose(out_chan, filter_shape, strides=None, padding="VALID", W_init=None,
                    b_init=normal(1e-6)):
    """A 1-D transposed convolution on NHC inputs with an HIO kernel (`GeneralConvTranspose`
    with `('NHC', 'HIO', 'NHC')`)."""
    return GeneralConvTranspose(("NHC", "HIO", "NHC"), out_chan, filter_shape, strides,
                                padding, W_init, b_init)


def ConvTranspose(out_chan, filter_shape, strides=None, padding="VALID", W_init=None,
                  b_init=normal(1e-6)):
    """A 2-D transposed convolution on NHWC inputs with an HWIO kernel (`GeneralConvTranspose`
    with `('NHWC', 'HWIO', 'NHWC')`)."""
    return GeneralConvTranspose(("NHWC", "HWIO", "NHWC"), out_chan, filter_shape, strides,
                                padding, W_init, b_init)


# --------------------------------------------------------------------------------------------
# Normalisation and elementwise layers

def BatchNorm(axis=(0, 1, 2), epsilon=1e-5, center=True, scale=True, beta_init=zeros,
              gamma_init=ones):
    """Standardise over the batch axes `axis` (mean and variance of the current inputs; no
    running statistics), then scale by `gamma` and shift by `beta`.

    `beta` and `gamma` have the input's shape without the `axis` axes (NHWC images with the
    default `(0, 1, 2)`: one per channel); `center=False` / `scale=False` leave out the shift /
    scale, and their parameter is `()`. Params: `(beta, gamma)`. The variance is
    `mean(x^2) - mean(x)^2` (`nn.standardize`'s default), `epsilon` is added to it."""
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)

    def norm_axes(ndim):
        out = []
        for a in axes:
            if not -ndim <= a < ndim:
                raise ValueError(f"BatchNorm: axis {a} is out of range for inputs of {ndim} "
                                 f"axes")
            out.append(a % ndim)
        return tuple(out)

    def init_fun(rng, input_shape):
        input_shape = tuple(input_shape)
        reduced = norm_axes(len(input_shape))
        shape = tuple(d for i, d in enumerate(input_shape) if i not in reduced)
        k_beta, k_gamma = random.split(rng)
        beta = beta_init(k_beta, shape) if center else ()
        gamma = gamma_init(k_gamma, shape) if scale else ()
        return input_shape, (beta, gamma)

    def apply_fun(params, x, **kwargs):
        beta, gamma = params
        reduced = norm_axes(tnp.ndim(x))
        z = standardize(x, reduced, epsilon=epsilon)
        # the parameters' axes put back as size-1 axes where the statistics were taken
        expand = tuple(None if i in reduced else slice(None) for i in range(tnp.ndim(x)))
        if scale:
            z = tnp.asarray(gamma)[expand] * z
        if center:
            z = z + tnp.asarray(beta)[expand]
        return z

    return init_fun, apply_fun


def elementwise(fun, **fun_kwargs):
    """A parameter-free layer applying `fun(inputs, **fun_kwargs)`; the shape is unchanged.
    `Relu`, `Tanh`, `LogSoftmax`, ... are `elementwise` of the `transforms.nn`/`tnp` function."""
    def init_fun(rng, input_shape):
        return input_shape, ()

    def apply_fun(params, inputs, **kwargs):
        return fun(inputs, **fun_kwargs)

    return init_fun, apply_fun


Tanh = elementwise(tnp.tanh)
Relu = elementwise(relu)
Exp = elementwise(tnp.exp)
LogSoftmax = elementwise(log_softmax, axis=-1)
Softmax = elementwise(softmax, axis=-1)
Softplus = elementwise(softplus)
Sigmoid = elementwise(sigmoid)
Elu = elementwise(elu)
LeakyRelu = elementwise(leaky_relu)
Selu = elementwise(selu)
Gelu = elementwise(gelu)


# --------------------------------------------------------------------------------------------
# Pooling

def _non_spatial_axes(spec, ndim, where):
    """The batch and channel axes: `(0, last)` by default (NHWC-like), else where `spec`'s
    'N' and 'C' are."""
    if spec is None:
        return 0, ndim - 1
    if not isinstance(spec, str) or spec.count("N") != 1 or spec.count("C") != 1:
        raise ValueError(f"{where}: spec must be a layout string with one 'N' and one 'C', "
                         f"got {spec!r}")
    return spec.index("N"), spec.index("C")


def _window_count(window_shape, strides, padding, spatial_shape, dtype):
    """How many real (unpadded) elements each output window covers."""
    return lax.reduce_window(tnp.ones(spatial_shape, dtype=dtype), 0.0, lax.add, window_shape,
                             strides, padding)


def _pooling(name, reducer, init_val, average):
    def layer(window_shape, strides=None, padding="VALID", spec=None):
        window = _int_tuple(window_shape, "window_shape", name)
        spatial_strides = _int_tuple(strides, "strides", name) if strides else (1,) * len(window)
        if len(spatial_strides) != len(window):
            raise ValueError(f"{name}: strides {spatial_strides} and window_shape {window} "
                             f"must have the same length")
        ndim = len(window) + 2
        non_spatial = sorted(_non_spatial_axes(spec, ndim, name))
        if spec is not None and len(spec) != ndim:
            raise ValueError(f"{name}: spec {spec!r} does not fit a window of "
                             f"{len(window)} spatial axes (it needs {ndim} letters)")
        # the full-rank window and strides: size 1 and stride 1 on the batch and channel axes
        full_window, full_strides = list(window), list(spatial_strides)
        for i in non_spatial:
            full_window.insert(i, 1)
            full_strides.insert(i, 1)
        full_window, full_strides = tuple(full_window), tuple(full_strides)

        def init_fun(rng, input_shape):
            input_shape = tuple(input_shape)
            if len(input_shape) != ndim:
                raise ValueError(f"{name}: input_shape {input_shape} must have {ndim} axes "
                                 f"for a window of {len(window)} spatial axes")
            pads = lax.padtype_to_pads(input_shape, full_window, full_strides, padding)
            out = lax.reduce_window_shape_tuple(input_shape, full_window, full_strides, pads,
                                                (1,) * ndim, (1,) * ndim)
            return tuple(out), ()

        def apply_fun(params, inputs, **kwargs):
            out = lax.reduce_window(inputs, init_val, reducer, full_window, full_strides,
                                    padding)
            if not average:
                return out
            inputs = tnp.asarray(inputs)
            spatial_shape = tuple(d for i, d in enumerate(inputs.shape) if i not in non_spatial)
            counts = _window_count(window, spatial_strides, padding, spatial_shape, inputs.dtype)
            counts = tnp.expand_dims(counts, tuple(non_spatial))
            return out / counts

        return init_fun, apply_fun

    layer.__name__ = layer.__qualname__ = name
    return layer


MaxPool = _pooling("MaxPool", lax.max, -math.inf, average=False)
MaxPool.__doc__ = """Max pooling over windows of `window_shape` (spatial axes only) moved by
    `strides` (default ones), padding 'VALID' or 'SAME'. Inputs are batch-first, channel-last
    (N, spatial..., C), or laid out as `spec` says (e.g. 'NCHW'). Padded positions never win."""
SumPool = _pooling("SumPool", lax.add, 0.0, average=False)
SumPool.__doc__ = """Sum pooling: as `MaxPool`, each output the sum of its window."""
AvgPool = _pooling("AvgPool", lax.add, 0.0, average=True)
AvgPool.__doc__ = """Average pooling: as `MaxPool`, each output the mean of its window's real
    elements (with 'SAME' padding, windows at the border divide by how many they cover)."""


# --------------------------------------------------------------------------------------------
# Shape and routing layers

def _flatten():
    """Reshape `(N, ...)` inputs to `(N, prod(...))`, keeping the leading (batch) axis."""
    def init_fun(rng, input_shape):
        return (input_shape[0], math.prod(input_shape[1:])), ()

    def apply_fun(params, inputs, **kwargs):
        return tnp.reshape(inputs, (tnp.shape(inputs)[0], -1))

    return init_fun, apply_fun


Flatten = _flatten()


def _identity():
    """Return the inputs unchanged."""
    def init_fun(rng, input_shape):
        return input_shape, ()

    def apply_fun(params, inputs, **kwargs):
        return inputs

    return init_fun, apply_fun


Identity = _identity()


def FanOut(num):
    """A layer repeating its input into a list of `num` copies (for `parallel` branches)."""
    num = _positive_int(num, "num", "FanOut")

    def init_fun(rng, input_shape):
        return [input_shape] * num, ()

    def apply_fun(params, inputs, **kwargs):
        return [inputs] * num

    return init_fun, apply_fun


def _fan_in_sum():
    """Sum a list of same-shaped inputs."""
    def init_fun(rng, input_shape):
        return input_shape[0], ()

    def apply_fun(params, inputs, **kwargs):
        return sum(inputs[1:], inputs[0])

    return init_fun, apply_fun


FanInSum = _fan_in_sum()


def FanInConcat(axis=-1):
    """A layer concatenating a list of inputs along `axis` (the channels by default)."""
    def init_fun(rng, input_shape):
        first = tuple(input_shape[0])
        ax = axis % len(first)
        size = sum(shape[ax] for shape in input_shape)
        return first[:ax] + (size,) + first[ax + 1:], ()

    def apply_fun(params, inputs, **kwargs):
        return tnp.concatenate(inputs, axis)

    return init_fun, apply_fun


def Dropout(rate, mode="train"):
    """Dropout with JAX stax's convention: `rate` is the probability of KEEPING an element.

    In `mode='train'`, `apply_fun(params, inputs, rng=key)` keeps each element with probability
    `rate` (`random.bernoulli(key, rate, inputs.shape)`) and divides the kept ones by `rate`,
    so the expectation is unchanged; other modes return the inputs. A key is required in every
    mode (a `serial` network called with `rng=` hands each layer one)."""
    def init_fun(rng, input_shape):
        return input_shape, ()

    def apply_fun(params, inputs, **kwargs):
        rng = kwargs.get("rng")
        if rng is None:
            raise ValueError("Dropout: apply_fun needs a PRNG key: call "
                             "apply_fun(params, inputs, rng=key) with a key from "
                             "transforms.random.key / PRNGKey")
        if mode != "train":
            return inputs
        keep = random.bernoulli(rng, rate, tnp.shape(inputs))
        return tnp.where(keep, inputs / rate, 0)

    return init_fun, apply_fun


# --------------------------------------------------------------------------------------------
# Combinators

def _unzip_layers(layers, where):
    for i, layer in enumerate(layers):
        if not (isinstance(layer, (tuple, list)) and len(layer) == 2 and callable(layer[0])
                and callable(layer[1])):
            hint = (" (a layer constructor called without its arguments?)"
                    if callable(layer) else "")
            raise TypeError(f"{where}: layer {i} must be an (init_fun, apply_fun) pair, got "
                            f"{layer!r}{hint}")
    return [layer[0] for layer in layers], [layer[1] for layer in layers]


def _layer_keys(rng, n):
    """One key per layer from `rng` (`random.split(rng, n)`), or `None`s without a key."""
    if rng is None:
        return [None] * n
    return list(random.split(rng, n))


def serial(*layers):
    """Compose layers one after another: the returned `(init_fun, apply_fun)` pair feeds each
    layer's output to the next.

    `init_fun(rng, input_shape)` splits `rng` once per layer (`rng, layer_rng = split(rng)`,
    as JAX), threads the shape through and returns the list of the layers' params.
    `apply_fun(params, inputs, rng=None, **kwargs)` splits `rng` into one key per layer and
    passes the other keywords to every layer."""
    init_funs, apply_funs = _unzip_layers(layers, "serial")

    def init_fun(rng, input_shape):
        params = []
        for init in init_funs:
            rng, layer_rng = random.split(rng)
            input_shape, p = init(layer_rng, input_shape)
            params.append(p)
        return input_shape, params

    def apply_fun(params, inputs, **kwargs):
        rng = kwargs.pop("rng", None)
        if len(params) != len(apply_funs):
            raise ValueError(f"serial: params has {len(params)} entries for "
                             f"{len(apply_funs)} layers")
        for fun, p, key in zip(apply_funs, params, _layer_keys(rng, len(apply_funs))):
            inputs = fun(p, inputs, rng=key, **kwargs)
        return inputs

    return init_fun, apply_fun


def parallel(*layers):
    """Run layers side by side: the returned pair takes a sequence of inputs (and of input
    shapes) as long as `layers` and applies layer i to input i, returning the list of outputs.
    Often used between `FanOut(n)` and `FanInSum` / `FanInConcat`.

    `init_fun` splits `rng` into one key per layer and returns `(output_shapes, params)`, two
    tuples; `apply_fun` splits its `rng=` keyword the same way."""
    init_funs, apply_funs = _unzip_layers(layers, "parallel")
    n = len(layers)

    def check(seq, what):
        if len(seq) != n:
            raise ValueError(f"parallel: {what} has {len(seq)} entries for {n} layers")

    def init_fun(rng, input_shape):
        check(input_shape, "input_shape")
        results = [init(key, shape) for init, key, shape
                   in zip(init_funs, _layer_keys(rng, n), input_shape)]
        return tuple(r[0] for r in results), tuple(r[1] for r in results)

    def apply_fun(params, inputs, **kwargs):
        rng = kwargs.pop("rng", None)
        check(params, "params")
        check(inputs, "inputs")
        return [f(p, x, rng=key, **kwargs) for f, p, x, key
                in zip(apply_funs, params, inputs, _layer_keys(rng, n))]

    return init_fun, apply_fun


def shape_dependent(make_layer):
    """Delay building a layer until its input shape is known: `make_layer(input_shape)` returns
    the `(init_fun, apply_fun)` pair to use (called again in `apply_fun` with `inputs.shape`)."""
    def init_fun(rng, input_shape):
        return make_layer(input_shape)[0](rng, input_shape)

    def apply_fun(params, inputs, **kwargs):
        return make_layer(tnp.shape(inputs))[1](params, inputs, **kwargs)

    return init_fun, apply_fun
