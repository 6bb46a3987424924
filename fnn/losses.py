"""Loss functions.

Our own names take `reduction='mean' | 'sum' | 'none'` (API.md):

* `mse(pred, target)`: `(pred - target)^2`, reduced over every element.
* `cross_entropy(logits, labels)`: `-sum(p * log_softmax(logits))` per example, with `p` the
  one-hot of integer `labels` (shape `logits.shape[:-1]`) or given probabilities (shape of
  `logits`); reduced over the examples.
* `binary_cross_entropy(logits, labels)`: `max(x, 0) - x z + log(1 + exp(-|x|))` per element
  (= `-z log sigmoid(x) - (1 - z) log(1 - sigmoid(x))`), from logits.
* `nll(log_probs, labels)`: `-log_probs[label]` per example.
* `huber(pred, target, delta=1.0)`: `0.5 d^2` for `|d| <= delta`, else
  `delta (|d| - 0.5 delta)`, per element.

Integer labels of `cross_entropy`/`nll` must lie in `[0, num_classes)`: concrete labels outside
raise `ValueError` (eagerly, and under `grad`/`vmap` of the logits). Traced labels (under `jit`)
cannot be checked; they follow JAX's gather (`take_along_axis`) as optax does: a label in
`[-num_classes, 0)` counts from the end, any other out-of-range label gives a NaN loss.

Functions named as in `optax.losses` have optax's signatures, defaults and per-example
(unreduced) results: `squared_error`, `l2_loss`, `huber_loss`, `log_cosh`, `hinge_loss`,
`cosine_similarity`, `cosine_distance`, `kl_divergence`, `softmax_cross_entropy`,
`softmax_cross_entropy_with_integer_labels`, `safe_softmax_cross_entropy`,
`poly_loss_cross_entropy`, `sigmoid_binary_cross_entropy`. Like optax, they do not validate
label ranges.

All are stable for extreme logits (e.g. ±1e4): no `inf`/`NaN` in values or gradients.
"""
from __future__ import annotations

import numpy as np

import transforms.numpy as tnp
import transforms as T

from .activations import log_softmax, logsumexp, softmax

__all__ = ["mse", "cross_entropy", "binary_cross_entropy", "nll", "huber", "accuracy",
           # optax.losses names: per-example values, optax's signatures
           "squared_error", "l2_loss", "huber_loss", "log_cosh", "hinge_loss",
           "cosine_similarity", "cosine_distance", "kl_divergence", "softmax_cross_entropy",
           "softmax_cross_entropy_with_integer_labels", "safe_softmax_cross_entropy",
           "poly_loss_cross_entropy", "sigmoid_binary_cross_entropy"]


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


def _concrete(x):
    """`x` as a NumPy array if its value is known now (a tracer's concrete value under grad),
    else None (under jit)."""
    if isinstance(x, T.Tracer):
        return x.concrete_value()
    return np.asarray(x)


def _check_label_range(labels, num_classes, name):
    """Raise for concrete integer labels outside `[0, num_classes)`."""
    v = _concrete(labels)
    if v is None or v.size == 0:
        return
    bad = (v < 0) | (v >= num_classes)
    if np.any(bad):
        where_bad = [tuple(int(i) for i in ix) for ix in np.argwhere(bad)[:5]]
        raise ValueError(
            f"{name}: integer labels must be in [0, {num_classes}) for {num_classes} "
            f"classes; got {np.count_nonzero(bad)} out of range, e.g. {v[bad][:5].tolist()} "
            f"at positions {where_bad}")


def _pick(values, labels, name):
    """`values[..., labels]` for integer labels of shape `values.shape[:-1]`, with JAX's
    gather semantics for traced labels: negative labels count from the end, labels outside
    `[-n, n)` give NaN."""
    labels = tnp.asarray(labels)
    if labels.shape != values.shape[:-1]:
        raise ValueError(f"{name}: integer labels of shape {labels.shape} do not match "
                         f"predictions of shape {values.shape} (expected labels of shape "
                         f"{values.shape[:-1]})")
    n = values.shape[-1]
    labels = tnp.where(labels < 0, labels + n, labels)
    valid = tnp.logical_and(labels >= 0, labels < n)
    hit = tnp.expand_dims(labels, -1) == np.arange(n)
    picked = tnp.sum(tnp.where(hit, values, tnp.zeros_like(values)), axis=-1)
    return tnp.where(valid, picked, tnp.full_like(picked, np.nan))


def _probability_nll(log_probs, labels):
    """`-sum(labels * log_probs)` over the last axis, for probability labels."""
    labels = labels.astype(log_probs.dtype)
    # 0 * (-inf) would be NaN: entries with zero probability contribute exactly 0
    with np.errstate(invalid="ignore"):
        terms = tnp.where(labels == 0, tnp.zeros_like(log_probs), labels * log_probs)
    return -tnp.sum(terms, axis=-1)


def cross_entropy(logits, labels, reduction="mean", axis=-1):
    """Softmax cross-entropy from logits, per example: `-log_softmax(logits)[label]` for
    integer labels, or `-sum(labels * log_softmax(logits))` for one-hot/probability labels.

    Integer labels must be in `[0, num_classes)`: concrete ones outside raise `ValueError`;
    traced ones (under jit) follow optax's `softmax_cross_entropy_with_integer_labels` (a
    label in `[-num_classes, 0)` counts from the end, others give NaN)."""
    logits = _float(logits)
    if axis not in (-1, logits.ndim - 1):
        logits = tnp.moveaxis(logits, axis, -1)
    labels = tnp.asarray(labels)
    if np.issubdtype(labels.dtype, np.integer) or (labels.dtype == np.bool_
                                                    and labels.shape != logits.shape):
        _check_label_range(labels, logits.shape[-1], "cross_entropy")
        losses = logsumexp(logits, axis=-1) - _pick(logits, labels, "cross_entropy")
    else:
        logp = log_softmax(logits, axis=-1)
        if axis not in (-1, labels.ndim - 1):
            labels = tnp.moveaxis(labels, axis, -1)
        if labels.shape != logits.shape:
            raise ValueError(f"cross_entropy: labels of shape {labels.shape} for logits of "
                             f"shape {logits.shape}: give integer labels of shape "
                             f"{logits.shape[:-1]} or probabilities of shape {logits.shape}")
        losses = _probability_nll(logp, labels)
    return _reduce(losses, reduction, "cross_entropy")


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


def nll(log_probs, labels, reduction="mean"):
    """Negative log-likelihood `-log_probs[label]` per example (integer labels), or
    `-sum(labels * log_probs)` for probability labels.

    Integer labels must be in `[0, num_classes)`: concrete ones outside raise `ValueError`;
    traced ones follow JAX's gather (negative labels count from the end, others give NaN)."""
    log_probs = _float(log_probs)
    labels = tnp.asarray(labels)
    if np.issubdtype(labels.dtype, np.integer):
        _check_label_range(labels, log_probs.shape[-1], "nll")
        losses = -_pick(log_probs, labels, "nll")
    else:
        if labels.shape != log_probs.shape:
            raise ValueError(f"nll: labels of shape {labels.shape} for log-probabilities of "
                             f"shape {log_probs.shape}")
        losses = _probability_nll(log_probs, labels)
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


# ---------------------------------------------------------------------------------------------
# optax.losses names: per-example values with optax's signatures and defaults
# ---------------------------------------------------------------------------------------------

def _errors(predictions, targets, name):
    predictions = _float(predictions)
    if targets is None:
        return predictions
    targets = tnp.asarray(targets)
    if tuple(predictions.shape) != tuple(targets.shape):
        raise ValueError(f"{name}: predictions of shape {predictions.shape} and targets of "
                         f"shape {targets.shape} differ")
    return predictions - targets


def squared_error(predictions, targets=None):
    """`(predictions - targets)**2` per element (`predictions**2` without targets)."""
    e = _errors(predictions, targets, "squared_error")
    return e * e


def l2_loss(predictions, targets=None):
    """Half the squared error, `0.5 (predictions - targets)**2`, per element."""
    return 0.5 * squared_error(predictions, targets)


def huber_loss(predictions, targets=None, *, delta=1.0):
    """Huber loss per element: `0.5 e**2` for `|e| <= delta`, `0.5 delta**2 + delta (|e| -
    delta)` beyond (`e = predictions - targets`)."""
    predictions = _float(predictions)
    e = predictions if targets is None else predictions - targets
    abs_e = tnp.abs(e)
    quadratic = tnp.minimum(abs_e, delta)
    return 0.5 * quadratic * quadratic + delta * (abs_e - quadratic)


def log_cosh(predictions, targets=None):
    """`log(cosh(e))` per element, as `logaddexp(e, -e) - log 2` (no overflow)."""
    predictions = _float(predictions)
    e = predictions if targets is None else predictions - targets
    return tnp.logaddexp(e, -e) - np.asarray(np.log(2.0), dtype=e.dtype)


def hinge_loss(predictor_outputs, targets):
    """`max(0, 1 - predictor_outputs * targets)` per element, targets in {-1, 1}."""
    return tnp.maximum(0, 1 - tnp.asarray(predictor_outputs) * targets)


def _mask(where, like, axis):
    """`where` broadcast against `like` (a mask of the reduced shape gets `axis` back)."""
    where = tnp.asarray(where)
    if where.ndim != like.ndim:
        where = tnp.expand_dims(where, axis)
    return tnp.broadcast_to(where, like.shape)


def _sum(x, axis, where=None, keepdims=False):
    if where is not None:
        x = tnp.where(where, x, tnp.zeros_like(x))
    return tnp.sum(x, axis=axis, keepdims=keepdims)


def _masked_logits(logits, where):
    if where is None:
        return logits
    return tnp.where(where, logits, tnp.full_like(logits, -np.inf))


def cosine_similarity(predictions, targets, *, epsilon=0.0, axis=-1, where=None):
    """`<a, b> / (max(|a|^2, eps)^0.5 max(|b|^2, eps)^0.5)` along `axis` (entries with
    `where` False left out)."""
    a, b = _float(predictions), _float(targets)
    if where is not None:
        where = _mask(where, a, axis)
    a_norm = tnp.sqrt(tnp.maximum(_sum(a * a, axis, where, keepdims=True), epsilon))
    b_norm = tnp.sqrt(tnp.maximum(_sum(b * b, axis, where, keepdims=True), epsilon))
    with np.errstate(divide="ignore", invalid="ignore"):   # zero vectors: NaN, as optax
        return _sum((a / a_norm) * (b / b_norm), axis, where)


def cosine_distance(predictions, targets, *, epsilon=0.0, axis=-1, where=None):
    """`1 - cosine_similarity(...)`."""
    return 1.0 - cosine_similarity(predictions, targets, epsilon=epsilon, axis=axis,
                                   where=where)


def kl_divergence(log_predictions, targets, axis=-1, where=None):
    """`sum(targets * (log(targets) - log_predictions))` along `axis`, `0 log 0 = 0`."""
    log_predictions = _float(log_predictions)
    targets = _float(targets)
    with np.errstate(divide="ignore", invalid="ignore"):
        safe_t = tnp.where(targets == 0, tnp.ones_like(targets), targets)
        loss = targets * (tnp.where(targets == 0, tnp.zeros_like(targets), tnp.log(safe_t))
                          - log_predictions)
    if where is not None:
        where = _mask(where, loss, axis)
    return _sum(loss, axis, where)


def softmax_cross_entropy(logits, labels, axis=-1, where=None):
    """`-sum(labels * log_softmax(logits), axis)` per example, for probability labels.

    As optax: no special case for zero labels, so a `-inf` logit with a zero label gives NaN
    (use `safe_softmax_cross_entropy` or our `cross_entropy` there). `where` masks classes out
    of both the softmax and the sum.
    """
    logits = _float(logits)
    labels = tnp.asarray(labels)
    if where is not None:
        where = _mask(where, logits, axis)
        logp = tnp.where(where, log_softmax(_masked_logits(logits, where), axis=axis),
                         tnp.full_like(logits, -np.inf))
    else:
        logp = log_softmax(logits, axis=axis)
    with np.errstate(invalid="ignore"):
        return -_sum(labels * logp, axis, where)


def _flatten_class_axes(x, axis):
    """Move the class axes to the end and merge them into one (optax's tuple `axis`)."""
    if isinstance(axis, (int, np.integer)):
        ax = int(axis) % x.ndim
        return x if ax == x.ndim - 1 else tnp.moveaxis(x, ax, -1)
    if not isinstance(axis, tuple):
        raise ValueError(f"axis must be an int or a tuple of ints, got {type(axis).__name__}")
    class_axes = tuple(sorted(a % x.ndim for a in axis))
    batch_axes = tuple(a for a in range(x.ndim) if a not in class_axes)
    x = tnp.transpose(x, batch_axes + class_axes)
    return tnp.reshape(x, tuple(x.shape[:len(batch_axes)]) + (-1,))


def softmax_cross_entropy_with_integer_labels(logits, labels, axis=-1, where=None):
    """`logsumexp(logits) - logits[label]` per example (integer labels, class axis `axis`; a
    tuple of axes takes flat indices into those axes).

    As optax (a JAX gather), labels are not validated: a label in `[-n, 0)` counts from the
    end and one outside `[-n, n)` gives NaN. `where` masks classes out of the normaliser;
    an example with no class left gets 0.
    """
    logits = _float(logits)
    labels = tnp.asarray(labels)
    if where is not None:
        where = tnp.asarray(where)
        if where.ndim != logits.ndim:
            where = tnp.expand_dims(where, axis)
        where = _flatten_class_axes(tnp.broadcast_to(where, logits.shape), axis)
    logits = _flatten_class_axes(logits, axis)
    label_logits = _pick(logits, labels, "softmax_cross_entropy_with_integer_labels")
    if where is None:
        return logsumexp(logits, axis=-1) - label_logits
    with np.errstate(invalid="ignore"):
        out = logsumexp(_masked_logits(logits, where), axis=-1) - label_logits
    return tnp.where(tnp.any(where, axis=-1), out, tnp.zeros_like(out))


def safe_softmax_cross_entropy(logits, labels):
    """`softmax_cross_entropy` over the last axis where classes with a zero label contribute
    exactly 0 (so `-inf` logits with zero labels give no NaN)."""
    logits = _float(logits)
    labels = tnp.asarray(labels).astype(logits.dtype)
    logp = log_softmax(logits, axis=-1)
    with np.errstate(invalid="ignore"):
        terms = tnp.where(labels == 0, tnp.zeros_like(logp), labels * logp)
    return -tnp.sum(terms, axis=-1)


def poly_loss_cross_entropy(logits, labels, *, epsilon=2.0, axis=-1, where=None):
    """Poly-1 loss (Leng et al., 2022): `softmax_cross_entropy + epsilon * sum(labels * (1 -
    softmax(logits)))` per example."""
    logits = _float(logits)
    labels = tnp.asarray(labels)
    mask = None if where is None else _mask(where, logits, axis)
    p = softmax(_masked_logits(logits, mask), axis=axis)
    one_minus_pt = _sum(labels * (1 - p), axis, mask)
    return softmax_cross_entropy(logits, labels, axis=axis, where=where) + epsilon * one_minus_pt


def sigmoid_binary_cross_entropy(logits, labels):
    """`-z log sigmoid(x) - (1 - z) log(1 - sigmoid(x))` per element (labels cast to the
    logits' dtype, broadcasting), computed stably as `max(x, 0) - x z + log1p(exp(-|x|))`."""
    x = _float(logits)
    z = tnp.asarray(labels).astype(x.dtype)
    # -|x| as min(x, -x) (see binary_cross_entropy): the gradient at x = 0 is then
    # sigmoid(0) - z = 0.5 - z, as optax's, not abs's one-sided 1 - z
    return tnp.maximum(x, 0) - x * z + tnp.log1p(tnp.exp(tnp.minimum(x, -x)))
