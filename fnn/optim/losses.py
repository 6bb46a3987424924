"""`optax.losses` under its own names: `from fnn.optim import losses` (or `optim.<loss>`).

The losses `fnn.losses` already has under optax's names are re-exported unchanged; the rest
are defined here with optax's signatures, defaults and unreduced (per-example) results, so a
program that calls `optax.losses.X(...)` gets the same numbers from `optim.losses.X(...)`.
Labels are not range-checked (as optax); shapes that cannot match raise `ValueError` naming
the arguments.
"""
from __future__ import annotations

import numpy as np

import transforms.numpy as tnp
from transforms import Tracer, lax
from transforms import nn as _nn

from ..losses import (cosine_distance, cosine_similarity, hinge_loss,  # noqa: F401
                      huber_loss, kl_divergence, l2_loss, log_cosh, poly_loss_cross_entropy,
                      safe_softmax_cross_entropy, sigmoid_binary_cross_entropy,
                      softmax_cross_entropy, softmax_cross_entropy_with_integer_labels,
                      squared_error)

__all__ = [
    "binary_dice_loss", "convex_kl_divergence", "cosine_distance", "cosine_similarity",
    "ctc_loss", "ctc_loss_with_forward_probs",
    "dice_loss", "generalized_kl_divergence", "hinge_loss", "huber_loss", "kl_divergence",
    "kl_divergence_with_log_targets", "l2_loss", "log_cosh", "multiclass_generalized_dice_loss",
    "multiclass_hinge_loss", "multiclass_perceptron_loss", "multiclass_sparsemax_loss", "ntxent",
    "perceptron_loss", "poly_loss_cross_entropy", "ranking_softmax_loss",
    "safe_softmax_cross_entropy", "sigmoid_binary_cross_entropy", "sigmoid_focal_loss",
    "smooth_labels", "softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels",
    "sparsemax_loss", "squared_error", "triplet_margin_loss",
]


def _float(x, name, what):
    x = tnp.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name}: {what} must be floating point, got dtype {x.dtype}")
    return x


def _same_shape(a, b, name, what):
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{name}: {what[0]} of shape {tuple(a.shape)} and {what[1]} of shape "
                         f"{tuple(b.shape)} differ")


def _masked_sum(x, axis, where):
    if where is not None:
        x = tnp.where(where, x, tnp.zeros_like(x))
    return tnp.sum(x, axis=axis)


# ---------------------------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------------------------

def sigmoid_focal_loss(logits, labels, *, alpha=None, gamma=2.0):
    """Focal loss (Lin et al., 2017) per element, for binary (or soft) labels `z`:

        p = sigmoid(x),  1 - p_t = (1 - z) p + z (1 - p)
        loss = sigmoid_binary_cross_entropy(x, z) * (1 - p_t)**gamma
        (times alpha z + (1 - alpha)(1 - z) when `alpha` is given)
    """
    x = _float(logits, "sigmoid_focal_loss", "logits")
    z = tnp.asarray(labels).astype(x.dtype)
    ce = sigmoid_binary_cross_entropy(x, z)
    # log(1 - p_t) as a weighted logsumexp of log sigmoid(x) and log sigmoid(-x): stable for
    # large |x|, where 1 - p_t underflows
    log_p, log_q = _nn.log_sigmoid(x), _nn.log_sigmoid(-x)
    a, b = 1 - z, z
    m = tnp.maximum(log_p, log_q)
    s = a * tnp.exp(log_p - m) + b * tnp.exp(log_q - m)
    loss = ce * tnp.exp(gamma * (tnp.log(s) + m))
    if alpha is None:
        return loss
    return (alpha * z + (1.0 - alpha) * (1.0 - z)) * loss


def perceptron_loss(predictor_outputs, targets):
    """`max(0, -predictor_outputs * targets)` per element, targets in {-1, 1}."""
    o, t = tnp.asarray(predictor_outputs), tnp.asarray(targets)
    _same_shape(o, t, "perceptron_loss", ("predictor_outputs", "targets"))
    return tnp.maximum(0, -o * t)


def _one_hot_scores(scores, labels, name):
    scores = tnp.asarray(scores)
    labels = tnp.asarray(labels)
    if tuple(labels.shape) != tuple(scores.shape[:-1]):
        raise ValueError(f"{name}: labels of shape {tuple(labels.shape)} for scores of shape "
                         f"{tuple(scores.shape)} (expected {tuple(scores.shape[:-1])})")
    one_hot = _nn.one_hot(labels, scores.shape[-1], dtype=scores.dtype)
    return scores, tnp.sum(scores * one_hot, axis=-1), one_hot


def multiclass_hinge_loss(scores, labels):
    """Multiclass hinge: `max_k(scores_k + 1 - [k == label]) - scores[label]` per example."""
    scores, picked, one_hot = _one_hot_scores(scores, labels, "multiclass_hinge_loss")
    return tnp.max(scores + 1.0 - one_hot, axis=-1) - picked


def multiclass_perceptron_loss(scores, labels):
    """Multiclass perceptron: `max_k scores_k - scores[label]` per example."""
    scores, picked, _ = _one_hot_scores(scores, labels, "multiclass_perceptron_loss")
    return tnp.max(scores, axis=-1) - picked


def sparsemax_loss(logits, labels):
    """Binary sparsemax loss per element: `sparse_plus(-x)` for label 1, `sparse_plus(x)` for
    label 0 (`sparse_plus(u)` = 0, `(u + 1)**2 / 4`, `u` for u <= -1, |u| < 1, u >= 1)."""
    x = tnp.asarray(logits)
    return _nn.sparse_plus(tnp.where(tnp.asarray(labels) != 0, -x, x))


def multiclass_sparsemax_loss(scores, labels):
    """Multiclass sparsemax loss (Martins & Astudillo, 2016) per example, for integer labels:

        p = projection_simplex(s);   s' = s - s[label] with s'[label] = 0
        loss = <p, s'> + (1 - <p, p>) / 2
    """
    from .projections import unit_simplex_last_axis
    scores, picked, one_hot = _one_hot_scores(scores, labels, "multiclass_sparsemax_loss")
    p = unit_simplex_last_axis(scores)
    shifted = (scores - picked[..., None]) * (1 - one_hot)
    shifted = tnp.where(p != 0, shifted, tnp.zeros_like(shifted))
    return tnp.sum(p * shifted, axis=-1) + 0.5 * (1.0 - tnp.sum(p * p, axis=-1))


def kl_divergence_with_log_targets(log_predictions, log_targets, axis=-1, where=None):
    """`sum(exp(log_t) * (log_t - log_predictions))` along `axis` (targets given as logs)."""
    lp = _float(log_predictions, "kl_divergence_with_log_targets", "log_predictions")
    lt = _float(log_targets, "kl_divergence_with_log_targets", "log_targets")
    return _masked_sum(tnp.exp(lt) * (lt - lp), axis, where)


def generalized_kl_divergence(log_predictions, targets, axis=-1, where=None):
    """KL for unnormalised measures: `kl_divergence(log_p, t) + sum(exp(log_p) - t)` along
    `axis` (it equals `kl_divergence` when both sum to one)."""
    x = kl_divergence(log_predictions, targets, axis=axis, where=where)
    return x + _masked_sum(tnp.exp(tnp.asarray(log_predictions)) - targets, axis, where)


def convex_kl_divergence(log_predictions, targets, axis=-1, where=None):
    """The older name of `generalized_kl_divergence` (same values)."""
    return generalized_kl_divergence(log_predictions, targets, axis=axis, where=where)


def smooth_labels(labels, alpha, *, axis=-1, where=None):
    """Label smoothing: `(1 - alpha) * labels + alpha / K`, `K` the number of classes along
    `axis` (the number of `where`-selected classes when `where` is given)."""
    labels = _float(labels, "smooth_labels", "labels")
    if where is None:
        k = labels.shape[axis] if isinstance(axis, int) else \
            int(np.prod([labels.shape[a] for a in axis]))
    else:
        k = tnp.sum(tnp.asarray(where), axis=axis, keepdims=True)
    return (1.0 - alpha) * labels + alpha / k


# ---------------------------------------------------------------------------------------------
# self-supervised
# ---------------------------------------------------------------------------------------------

def triplet_margin_loss(anchors, positives, negatives, axis=-1, norm_degree=2, margin=1.0,
                        eps=1e-6):
    """Triplet margin loss per example:

        d(a, b) = (sum((a - b)**norm_degree, axis) + eps)**(1 / norm_degree)
        loss = max(d(anchor, positive) - d(anchor, negative) + margin, 0)
    """
    a = _float(anchors, "triplet_margin_loss", "anchors")
    p = _float(positives, "triplet_margin_loss", "positives")
    n = _float(negatives, "triplet_margin_loss", "negatives")

    def dist(u, v):
        return tnp.power(tnp.sum(tnp.power(u - v, norm_degree), axis=axis) + eps,
                         1 / norm_degree)
    return tnp.maximum(dist(a, p) - dist(a, n) + margin, 0)


def ntxent(embeddings, labels, temperature=0.07):
    """NT-Xent contrastive loss (SimCLR), a scalar: for every pair (i, j) of distinct examples
    with the same label, `-log(exp(c_ij) / (exp(c_ij) + sum over k with another label of
    exp(c_ik)))`, averaged over those pairs; `c` the cosine similarities over `temperature`.
    """
    e = _float(embeddings, "ntxent", "embeddings")
    labels = tnp.asarray(labels)
    if labels.shape[0] != e.shape[0]:
        raise ValueError(f"ntxent: labels have {labels.shape[0]} rows but embeddings "
                         f"{e.shape[0]}")
    eps = float(np.finfo(e.dtype).eps)
    norm = tnp.sqrt(tnp.maximum(tnp.sum(e * e, axis=-1, keepdims=True), eps))
    u = e / norm
    c = (u @ u.T) / temperature
    same = labels[:, None] == labels[None, :]
    pos = tnp.logical_and(same, tnp.logical_not(tnp.eye(e.shape[0], dtype=bool)))
    neg = tnp.logical_not(same)
    ninf = tnp.full_like(c, -np.inf)
    c_neg = tnp.where(neg, c, ninf)
    c_pos = tnp.where(pos, c, ninf)
    # shift by the row maximum (no derivative through it: it cancels in the ratio)
    row_max = lax.stop_gradient(tnp.maximum(tnp.max(c_neg, axis=1, keepdims=True),
                                            tnp.max(c_pos, axis=1, keepdims=True)))
    sn, sp = c_neg - row_max, c_pos - row_max
    denom = tnp.sum(tnp.exp(sn), axis=1, keepdims=True) + tnp.exp(sp)
    log_softmax = sp - tnp.log(denom)
    terms = tnp.where(pos, log_softmax, tnp.zeros_like(log_softmax))
    return -tnp.sum(terms) / tnp.sum(pos)


# ---------------------------------------------------------------------------------------------
# segmentation
# ---------------------------------------------------------------------------------------------

def _reduce(x, reduction):
    if reduction == "mean":
        return tnp.mean(x, axis=-1)
    if reduction == "sum":
        return tnp.sum(x, axis=-1)
    if reduction == "none":
        return x
    raise ValueError(f"dice_loss: reduction must be 'mean', 'sum' or 'none', got "
                     f"{reduction!r}")


def dice_loss(predictions, targets, *, class_weights=None, smooth=1.0, alpha=0.5, beta=0.5,
              apply_softmax=True, reduction="mean", ignore_background=False, axis=None):
    """Dice / Tversky loss per example for segmentation, classes on the last axis:

        I = sum(p t),  P = sum(p),  T = sum(t)   over `axis` (default: all but the first
                                                  and the class axis)
        loss_c = 1 - (I + smooth) / (I + alpha (P - I) + beta (T - I) + smooth)

    `p` is softmax(predictions) (sigmoid for one class) when `apply_softmax`, else the
    predictions (which must then sum to 1 over the classes). `class_weights` scales each
    class, `ignore_background` drops class 0, and `reduction` combines the classes.
    """
    pred, tgt = tnp.asarray(predictions), tnp.asarray(targets)
    if pred.ndim == tgt.ndim - 1:
        pred = pred[..., None]
    if tgt.ndim == pred.ndim - 1:
        tgt = tgt[..., None]
    _same_shape(pred, tgt, "dice_loss", ("predictions", "targets"))
    if not apply_softmax:
        # checked when the values are known (eagerly); a traced input cannot be checked
        sums = None if isinstance(pred, Tracer) else np.asarray(tnp.sum(pred, axis=-1))
        if sums is not None and not np.allclose(sums, 1.0, rtol=1e-5):
            raise ValueError("dice_loss: with apply_softmax=False the predictions must sum to "
                             f"1 over the class axis; sums range over [{sums.min():.6f}, "
                             f"{sums.max():.6f}]")
        probs = pred
    elif pred.shape[-1] == 1:
        probs = _nn.sigmoid(pred)
    else:
        probs = _nn.softmax(pred, axis=-1)
    if axis is None:
        axis = tuple(range(1, probs.ndim - 1))
    inter = tnp.sum(probs * tgt, axis=axis)
    psum = tnp.sum(probs, axis=axis)
    tsum = tnp.sum(tgt, axis=axis)
    coeff = (inter + smooth) / (inter + alpha * (psum - inter) + beta * (tsum - inter) + smooth)
    loss = 1.0 - coeff
    if class_weights is not None:
        class_weights = tnp.asarray(class_weights)
        if class_weights.ndim != 1:
            raise ValueError(f"dice_loss: class_weights must be 1-D, got shape "
                             f"{tuple(class_weights.shape)}")
        loss = loss * class_weights
    if ignore_background and probs.shape[-1] > 1:
        loss = loss[..., 1:]
    return _reduce(loss, reduction)


def multiclass_generalized_dice_loss(predictions, targets, *, smooth=1.0, apply_softmax=True,
                                     ignore_background=False):
    """Generalised Dice (Sudre et al., 2017), a scalar: `dice_loss` with class weights
    `w_c = 1 / (f_c**2 + 1e-7)` (f_c the class's total target mass) normalised to sum to the
    number of classes, averaged over examples and classes."""
    pred, tgt = tnp.asarray(predictions), tnp.asarray(targets)
    _same_shape(pred, tgt, "multiclass_generalized_dice_loss", ("predictions", "targets"))
    freq = tnp.sum(tgt, axis=tuple(range(tgt.ndim - 1)))
    w = 1.0 / (freq ** 2 + 1e-7)
    w = w / tnp.sum(w) * w.shape[0]
    return tnp.mean(dice_loss(pred, tgt, class_weights=w, smooth=smooth,
                              apply_softmax=apply_softmax, reduction="none",
                              ignore_background=ignore_background))


def binary_dice_loss(predictions, targets, *, smooth=1.0, apply_sigmoid=True):
    """Dice loss for one foreground class per example (`dice_loss` on a trailing class axis of
    size 1, sigmoid applied when `apply_sigmoid`)."""
    pred, tgt = tnp.asarray(predictions), tnp.asarray(targets)
    if pred.ndim == tgt.ndim and pred.shape[-1] != 1:
        pred, tgt = pred[..., None], tgt[..., None]
    return dice_loss(pred, tgt, smooth=smooth, apply_softmax=apply_sigmoid, reduction="mean")


# ---------------------------------------------------------------------------------------------
# ranking
# ---------------------------------------------------------------------------------------------

def ranking_softmax_loss(logits, labels, *, where=None, weights=None, reduce_fn=tnp.mean):
    """ListNet-style ranking loss: per list `-sum(labels * log_softmax(logits))` over the last
    axis (items with `where` False left out, labels times `weights`), then `reduce_fn` over the
    lists (lists with no item left are skipped; `reduce_fn=None` keeps them all)."""
    logits = _float(logits, "ranking_softmax_loss", "logits")
    labels = tnp.asarray(labels).astype(logits.dtype)
    if where is not None:
        where = tnp.asarray(where)
        labels = tnp.where(where, labels, tnp.zeros_like(labels))
        logits = tnp.where(where, logits, tnp.full_like(logits, -np.inf))
    if weights is not None:
        labels = labels * weights
    logp = _nn.log_softmax(logits, axis=-1)
    with np.errstate(invalid="ignore"):   # 0 * -inf at masked items, replaced just below
        terms = labels * logp
    if where is not None:
        terms = tnp.where(where, terms, tnp.zeros_like(terms))
    loss = -tnp.sum(terms, axis=-1)
    if reduce_fn is None:
        return loss
    if where is None:
        return reduce_fn(loss)
    keep = tnp.any(where, axis=-1)
    loss = tnp.where(keep, loss, tnp.zeros_like(loss))
    if reduce_fn is tnp.mean or reduce_fn is np.mean:
        return tnp.sum(loss) / tnp.maximum(tnp.sum(keep), 1)
    return reduce_fn(loss)


# ---------------------------------------------------------------------------------------------
# CTC
# ---------------------------------------------------------------------------------------------

def ctc_loss_with_forward_probs(logits, logit_paddings, labels, label_paddings, *,
                                blank_id: int = 0, log_epsilon=-1e5):
    """Connectionist temporal classification (Graves et al., 2006) with its forward variables.

    `logits` [B, T, K], `logit_paddings` [B, T] (1.0 marks padding frames), `labels` [B, N]
    int, `label_paddings` [B, N]. The forward recursion runs over time in log space with two
    kinds of states per label position n: `phi[n]` (the last emission was a blank after the
    first n labels; N + 1 of them) and `emit[n]` (label n was just emitted); `log_epsilon`
    stands for log 0. Returns `(per_sequence_loss [B], logalpha_phi [T, B, N+1],
    logalpha_emit [T, B, N])`; the loss is `-logalpha_phi[T-1, b, label_length_b]`.
    """
    logits, labels = tnp.asarray(logits), tnp.asarray(labels)
    logit_paddings, label_paddings = tnp.asarray(logit_paddings), tnp.asarray(label_paddings)
    if logits.ndim != 3 or labels.ndim != 2:
        raise ValueError(f"ctc_loss: logits must be [batch, time, classes] and labels "
                         f"[batch, labels]; got shapes {tuple(logits.shape)} and "
                         f"{tuple(labels.shape)}")
    _same_shape(labels, label_paddings, "ctc_loss", ("labels", "label_paddings"))
    if tuple(logit_paddings.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"ctc_loss: logit_paddings of shape {tuple(logit_paddings.shape)} "
                         f"for logits of shape {tuple(logits.shape)}")
    b, _, k = logits.shape
    if labels.shape[0] != b:
        raise ValueError(f"ctc_loss: labels have batch size {labels.shape[0]}, logits {b}")
    n = labels.shape[1]
    dt = logits.dtype
    logp = _nn.log_softmax(logits, axis=-1)
    label_len = n - tnp.sum(label_paddings, axis=1).astype(np.int32)
    # repeat[n] = 1 where label n equals label n + 1: then a blank must separate them
    rep = (labels[:, :-1] == labels[:, 1:]).astype(dt)
    rep = tnp.concatenate([rep, tnp.zeros((b, 1), dt)], axis=1)
    lp_blank = tnp.transpose(logp[:, :, blank_id:blank_id + 1], (1, 0, 2))      # [T, B, 1]
    one_hot = _nn.one_hot(labels, k, dtype=dt)                                     # [B, N, K]
    lp_emit = tnp.transpose(tnp.einsum("btk,bnk->btn", logp, one_hot), (1, 0, 2))  # [T, B, N]
    eps = tnp.asarray(log_epsilon, dtype=dt)
    phi0 = tnp.concatenate([tnp.zeros((b, 1), dt), tnp.full((b, n), eps, dt)], axis=1)
    emit0 = tnp.full((b, n), eps, dt)

    def add_to_phi(phi, score):
        # phi[1:] receives `score` (from emit[n - 1]); phi[0] has no predecessor
        return tnp.concatenate([phi[:, :1], tnp.logaddexp(phi[:, 1:], score)], axis=-1)

    def step(carry, x):
        phi_prev, emit_prev = carry
        e_t, blank_t, pad_t = x
        # a blank after emitting label n leads to phi[n + 1]; a repeated label cannot be
        # emitted straight after its twin
        phi = add_to_phi(phi_prev, emit_prev + eps * rep)
        emit = tnp.logaddexp(phi[:, :-1] + e_t, emit_prev + e_t)
        phi_next = add_to_phi(phi + blank_t, emit_prev + blank_t + eps * (1.0 - rep))
        pad_t = pad_t.reshape((b, 1))
        emit = pad_t * emit_prev + (1.0 - pad_t) * emit
        phi_next = pad_t * phi_prev + (1.0 - pad_t) * phi_next
        return (phi_next, emit), (phi_next, emit)

    xs = (lp_emit, lp_blank, tnp.transpose(logit_paddings.astype(dt), (1, 0)))
    _, (phis, emits) = lax.scan(step, (phi0, emit0), xs)
    last = add_to_phi(phis[-1], emits[-1])
    phis = tnp.concatenate([phis[:-1], last[None]], axis=0)
    pick = _nn.one_hot(label_len, n + 1, dtype=dt)
    loss = -tnp.sum(last * pick, axis=-1)
    return loss, phis, emits


def ctc_loss(logits, logit_paddings, labels, label_paddings, *, blank_id: int = 0,
             log_epsilon=-1e5):
    """CTC loss per sequence: the negative log-probability of `labels` summed over every
    alignment to the unpadded frames (see `ctc_loss_with_forward_probs`)."""
    return ctc_loss_with_forward_probs(logits, logit_paddings, labels, label_paddings,
                                       blank_id=blank_id, log_epsilon=log_epsilon)[0]
