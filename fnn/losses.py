"""Loss functions. Each takes `reduction='mean' | 'sum' | 'none'`:

* `mse(pred, target)`: `(pred - target)^2`, reduced over every element.
* `cross_entropy(logits, labels)`: `-sum(p * log_softmax(logits))` per example, with `p` the
  one-hot of integer `labels` (shape `logits.shape[:-1]`) or given probabilities (shape of
  `logits`); reduced over the examples.
* `binary_cross_entropy(logits, labels)`: `max(x, 0) - x z + log(1 + exp(-|x|))` per element
  (= `-z log sigmoid(x) - (1 - z) log(1 - sigmoid(x))`), from logits.
* `nll(log_probs, labels)`: `-log_probs[label]` per example.
* `huber(pred, target, delta=1.0)`: `0.5 d^2` for `|d| <= delta`, else
  `delta (|d| - 0.5 delta)`, per element.

All are stable for extreme logits (e.g. ±1e4): no `inf`/`NaN` in values or gradients.
"""
from __future__ import annotations

import numpy as np

import transforms.numpy as tnp

from .activations import log_softmax

__all__ = ["mse", "cross_entropy", "softmax_cross_entropy", "binary_cross_entropy",
           "sigmoid_binary_cross_entropy", "nll", "huber", "l2_loss", "accuracy"]


def _reduce(losses, reduction, name):
    if reduction == "mean":
        return tnp.mean(losses)
    if reduction == "sum":
        return tnp.sum(losses)
    if reduction == "none":
        return losses
    raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _float(x):
    x = tnp.asarray(x)
    if not np.issubdtype(x.dtype, np.inexact):
        x = x.astype(np.float32)
    return x


def mse(pred, target, reduction="mean"):
    """Squared error `(pred - target)^2`, reduced over all elements."""
    d = _float(pred) - target
    return _reduce(d * d, reduction, "mse")


def l2_loss(pred, target, reduction="mean"):
    """Half the squared error, `0.5 (pred - target)^2` (optax's l2_loss)."""
    d = _float(pred) - target
    return _reduce(0.5 * (d * d), reduction, "l2_loss")


def _pick(values, labels, name):
    """`values[..., labels]` for integer labels of shape `values.shape[:-1]`."""
    labels = tnp.asarray(labels)
    if labels.shape != values.shape[:-1]:
        raise ValueError(f"{name}: integer labels of shape {labels.shape} do not match "
                         f"predictions of shape {values.shape} (expected labels of shape "
                         f"{values.shape[:-1]})")
    classes = np.arange(values.shape[-1])
    hit = tnp.expand_dims(labels, -1) == classes
    return tnp.sum(tnp.where(hit, values, tnp.zeros_like(values)), axis=-1)


def cross_entropy(logits, labels, reduction="mean", axis=-1):
    """Softmax cross-entropy from logits, per example: `-log_softmax(logits)[label]` for
    integer labels, or `-sum(labels * log_softmax(logits))` for one-hot/probability labels."""
    logits = _float(logits)
    if axis not in (-1, logits.ndim - 1):
        logits = tnp.moveaxis(logits, axis, -1)
    logp = log_softmax(logits, axis=-1)
    labels = tnp.asarray(labels)
    if np.issubdtype(labels.dtype, np.integer) or (labels.dtype == np.bool_
                                                    and labels.shape != logits.shape):
        losses = -_pick(logp, labels, "cross_entropy")
    else:
        if axis not in (-1, labels.ndim - 1):
            labels = tnp.moveaxis(labels, axis, -1)
        if labels.shape != logits.shape:
            raise ValueError(f"cross_entropy: labels of shape {labels.shape} for logits of "
                             f"shape {logits.shape}: give integer labels of shape "
                             f"{logits.shape[:-1]} or probabilities of shape {logits.shape}")
        labels = labels.astype(logp.dtype)
        # 0 * (-inf) would be NaN: entries with zero probability contribute exactly 0
        with np.errstate(invalid="ignore"):
            terms = tnp.where(labels == 0, tnp.zeros_like(logp), labels * logp)
        losses = -tnp.sum(terms, axis=-1)
    return _reduce(losses, reduction, "cross_entropy")


softmax_cross_entropy = cross_entropy


def binary_cross_entropy(logits, labels, reduction="mean"):
    """Sigmoid cross-entropy from logits, per element:
    `max(x, 0) - x z + log1p(exp(-|x|))` (= `softplus(x) - x z`, without its cancellation)."""
    x = _float(logits)
    z = tnp.asarray(labels).astype(x.dtype)
    if z.shape != x.shape:
        raise ValueError(f"binary_cross_entropy: labels of shape {z.shape} for logits of "
                         f"shape {x.shape}")
    # -|x| written as min(x, -x): its derivative at x = 0 splits to 0, so with the max's even
    # split the gradient there is sigmoid(0) - z exactly (abs's derivative at 0 is 1, as JAX)
    losses = tnp.maximum(x, 0) - x * z + tnp.log1p(tnp.exp(tnp.minimum(x, -x)))
    return _reduce(losses, reduction, "binary_cross_entropy")


sigmoid_binary_cross_entropy = binary_cross_entropy


def nll(log_probs, labels, reduction="mean"):
    """Negative log-likelihood `-log_probs[label]` per example (integer labels), or
    `-sum(labels * log_probs)` for probability labels."""
    log_probs = _float(log_probs)
    labels = tnp.asarray(labels)
    if np.issubdtype(labels.dtype, np.integer):
        losses = -_pick(log_probs, labels, "nll")
    else:
        if labels.shape != log_probs.shape:
            raise ValueError(f"nll: labels of shape {labels.shape} for log-probabilities of "
                             f"shape {log_probs.shape}")
        labels = labels.astype(log_probs.dtype)
        with np.errstate(invalid="ignore"):
            terms = tnp.where(labels == 0, tnp.zeros_like(log_probs), labels * log_probs)
        losses = -tnp.sum(terms, axis=-1)
    return _reduce(losses, reduction, "nll")


def huber(pred, target, delta=1.0, reduction="mean"):
    """Huber loss per element: quadratic `0.5 d^2` up to |d| = delta, linear beyond."""
    d = _float(pred) - target
    abs_d = tnp.abs(d)
    quadratic = tnp.minimum(abs_d, delta)
    linear = abs_d - quadratic
    return _reduce(0.5 * quadratic * quadratic + delta * linear, reduction, "huber")


def accuracy(logits, labels):
    """Fraction of examples whose arg-max prediction equals the integer label (or the
    arg-max of one-hot labels)."""
    logits = tnp.asarray(logits)
    labels = tnp.asarray(labels)
    if labels.ndim == logits.ndim:
        labels = tnp.argmax(labels, axis=-1)
    return tnp.mean((tnp.argmax(logits, axis=-1) == labels).astype(np.float32))
