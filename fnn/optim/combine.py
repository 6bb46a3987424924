"""Combinators: compose, mask, partition, freeze, accumulate and parameterise transformations.

Data-dependent choices (MultiSteps' "is this the k-th step", apply_if_finite's "were the
updates finite") are leafwise selects (`tnp.where`) when traced, and plain Python branches when
the predicate is a concrete NumPy value, so the same code runs eagerly, under `jit` and under
`vmap`.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Hashable, NamedTuple, Optional, Union

import numpy as np

from transforms import tree
from transforms import Tracer
import transforms.numpy as tnp

from .base import (GradientTransformation, GradientTransformationExtraArgs, set_to_zero,
                   with_extra_args_support)
from .updates import safe_int32_increment, tree_zeros_like
from .inject import (InjectHyperparamsState, InjectStatefulHyperparamsState,  # noqa: F401
                     inject_hyperparams)

__all__ = [
    "chain", "named_chain", "MaskedNode", "MaskedState", "masked", "PartitionState",
    "MultiTransformState", "partition", "multi_transform", "freeze", "selective_transform",
    "MultiStepsState", "MultiSteps", "skip_not_finite", "skip_large_updates",
    "InjectHyperparamsState", "InjectStatefulHyperparamsState", "inject_hyperparams",
    "ApplyIfFiniteState", "apply_if_finite",
]


def _concrete_bool(x) -> Optional[bool]:
    """`bool(x)` when `x` is a concrete (non-traced) value, else None."""
    if isinstance(x, Tracer):
        return None
    return bool(np.asarray(x))


def _select_tree(pred, on_true, on_false):
    """`on_true if pred else on_false`, leafwise; traceable when `pred` is traced."""
    c = _concrete_bool(pred)
    if c is not None:
        return on_true if c else on_false
    return tree.map(lambda a, b: tnp.where(pred, a, b), on_true, on_false)


# ---------------------------------------------------------------------------------------------
# chain
# ---------------------------------------------------------------------------------------------

def chain(*args: GradientTransformation) -> GradientTransformationExtraArgs:
    """Apply transformations in sequence; the state is the tuple of their states.

    `chain(a, b).update(g, (sa, sb), p)` computes `u1, sa' = a.update(g, sa, p)` then
    `u2, sb' = b.update(u1, sb, p)` and returns `(u2, (sa', sb'))`. Extra keyword arguments
    are forwarded to every link that accepts them.
    """
    txs = [with_extra_args_support(t) for t in args]

    def init_fn(params):
        return tuple(t.init(params) for t in txs)

    def update_fn(updates, state, params=None, **extra_args):
        if len(state) != len(txs):
            raise ValueError(f"chain: expected a state with {len(txs)} entries (one per "
                             f"transformation), got {len(state)}")
        new_state = []
        for s, t in zip(state, txs):
            updates, ns = t.update(updates, s, params, **extra_args)
            new_state.append(ns)
        return updates, tuple(new_state)

    return GradientTransformationExtraArgs(init_fn, update_fn)


def named_chain(*transforms: "tuple[str, GradientTransformation]"
                ) -> GradientTransformationExtraArgs:
    """Like `chain`, with the state a dict keyed by the given names."""
    names = [n for n, _ in transforms]
    if len(set(names)) != len(names):
        raise ValueError(f"named_chain: duplicate names in {names}")
    txs = {n: with_extra_args_support(t) for n, t in transforms}

    def init_fn(params):
        return {n: t.init(params) for n, t in txs.items()}

    def update_fn(updates, state, params=None, **extra_args):
        new_state = {}
        for n in names:
            updates, new_state[n] = txs[n].update(updates, state[n], params, **extra_args)
        return updates, new_state

    return GradientTransformationExtraArgs(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# masked
# ---------------------------------------------------------------------------------------------

class MaskedNode(NamedTuple):
    """Stands in for an unselected subtree: a pytree node with no leaves, so tree maps skip it."""


class MaskedState(NamedTuple):
    inner_state: Any


def _mask_pytree(pytree, mask_tree):
    return tree.map(lambda m, p: p if m else MaskedNode(), mask_tree, pytree)


def _check_mask_leaf(m):
    if isinstance(m, Tracer):
        raise TypeError("masked: mask leaves must be static Python/NumPy booleans, not traced "
                        "values (compute the mask from the tree structure, not from array "
                        "values)")
    return m


def masked(inner: GradientTransformation, mask, *,
           mask_compatible_extra_args: bool = False) -> GradientTransformationExtraArgs:
    """Apply `inner` only to the leaves selected by `mask`; the others pass through unchanged.

    `mask` is a pytree of booleans with the parameters' structure (or a prefix of it), or a
    callable `params -> mask` (called on `params` in `init` and on `updates` in `update`).
    `inner` sees the unselected leaves as empty `MaskedNode`s and keeps no state for them.
    """
    inner = with_extra_args_support(inner)

    def get_mask(t):
        m = mask(t) if callable(mask) else mask
        tree.map(_check_mask_leaf, m)
        return m

    def mask_extra(extra_args, updates, mask_tree):
        if not mask_compatible_extra_args:
            return extra_args
        ref = tree.structure(updates)
        out = {}
        for k, v in extra_args.items():
            out[k] = _mask_pytree(v, mask_tree) if tree.structure(v) == ref else v
        return out

    def init_fn(params):
        mask_tree = get_mask(params)
        return MaskedState(inner_state=inner.init(_mask_pytree(params, mask_tree)))

    def update_fn(updates, state, params=None, **extra_args):
        mask_tree = get_mask(updates)
        masked_extra = mask_extra(extra_args, updates, mask_tree)
        masked_updates = _mask_pytree(updates, mask_tree)
        masked_params = None if params is None else _mask_pytree(params, mask_tree)
        new_masked, new_inner = inner.update(masked_updates, state.inner_state, masked_params,
                                             **masked_extra)
        new_updates = tree.map(lambda m, new_u, old_u: new_u if m else old_u,
                               mask_tree, new_masked, updates)
        return new_updates, MaskedState(inner_state=new_inner)

    return GradientTransformationExtraArgs(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# partition / multi_transform / freeze
# ---------------------------------------------------------------------------------------------

class PartitionState(NamedTuple):
    inner_states: Any  # dict: label -> MaskedState


MultiTransformState = PartitionState


def partition(transforms: "Dict[Hashable, GradientTransformation]", param_labels, *,
              mask_compatible_extra_args: bool = False) -> GradientTransformationExtraArgs:
    """Apply a different transformation to each group of parameters.

    `param_labels` is a pytree of labels (keys of `transforms`) with the parameters'
    structure (or a prefix), or a callable `params -> labels`. Each transformation runs
    `masked` to its group. Every label used must have a transformation.
    """
    txs = {k: with_extra_args_support(v) for k, v in transforms.items()}

    def make_mask(labels, group):
        return tree.map(lambda label: label == group, labels)

    def get_labels(t):
        return param_labels(t) if callable(param_labels) else param_labels

    def init_fn(params):
        labels = get_labels(params)
        label_set = set(tree.leaves(labels))
        missing = label_set - set(txs)
        if missing:
            raise ValueError(f"partition/multi_transform: some parameters have labels "
                             f"{sorted(map(str, missing))} without a transformation; "
                             f"transformations were given for {sorted(map(str, txs))}")
        return PartitionState({g: masked(tx, make_mask(labels, g),
                                         mask_compatible_extra_args=mask_compatible_extra_args
                                         ).init(params)
                               for g, tx in txs.items()})

    def update_fn(updates, state, params=None, **extra_args):
        labels = get_labels(updates)
        new_inner = {}
        for g, tx in txs.items():
            mtx = masked(tx, make_mask(labels, g),
                         mask_compatible_extra_args=mask_compatible_extra_args)
            updates, new_inner[g] = mtx.update(updates, state.inner_states[g], params,
                                               **extra_args)
        return updates, PartitionState(new_inner)

    return GradientTransformationExtraArgs(init_fn, update_fn)


multi_transform = partition


def freeze(mask) -> GradientTransformationExtraArgs:
    """Zero the updates of the leaves selected by `mask` (`masked(set_to_zero(), mask)`).

    Put it last in a chain, e.g. `chain(adamw(1e-3), freeze(mask))`, and the frozen parameters
    stay bit-identical under `apply_updates` (placed first it only zeroes the gradients, and
    a later weight decay would still move them); the others are updated as usual.
    """
    return masked(set_to_zero(), mask)


def selective_transform(optimizer: GradientTransformation, *,
                        freeze_mask) -> GradientTransformationExtraArgs:
    """Run `optimizer` on the parameters not selected by `freeze_mask`; freeze the rest."""
    labels = (lambda p: tree.map(bool, freeze_mask(p))) if callable(freeze_mask) else \
        tree.map(bool, freeze_mask)
    return partition({False: optimizer, True: set_to_zero()}, labels)


# ---------------------------------------------------------------------------------------------
# MultiSteps: gradient accumulation
# ---------------------------------------------------------------------------------------------

class MultiStepsState(NamedTuple):
    mini_step: Any        # int32: micro-steps accumulated since the last real update
    gradient_step: Any    # int32: number of real (inner) updates so far
    inner_opt_state: Any
    acc_grads: Any        # running mean (or sum) of the micro-step gradients
    skip_state: Any = ()


ShouldSkipUpdateFunction = Callable[[Any, Any, Any], "tuple[Any, Any]"]


def skip_not_finite(updates, gradient_step, params):
    """`should_skip_update_fn` for `MultiSteps`: skip micro-steps with any non-finite value."""
    del gradient_step, params
    counts = [tnp.sum(tnp.logical_not(tnp.isfinite(p))) for p in tree.leaves(updates)]
    num_not_finite = sum(counts) if counts else np.asarray(0)
    num_not_finite = tnp.asarray(num_not_finite, dtype=np.int32)
    should_skip = num_not_finite > 0
    return should_skip, dict(should_skip=should_skip, num_not_finite=num_not_finite)


def skip_large_updates(updates, gradient_step, params, max_squared_norm):
    """`should_skip_update_fn` for `MultiSteps` (bind `max_squared_norm` with partial):
    skip micro-steps whose squared global norm is not below `max_squared_norm`."""
    del gradient_step, params
    norm_sq = sum(tnp.sum(tnp.square(p)) for p in tree.leaves(updates))
    should_skip = tnp.logical_not(norm_sq < max_squared_norm)
    return should_skip, dict(should_skip=should_skip, norm_squared=norm_sq)


class MultiSteps:
    """Gradient accumulation: run `opt` once every `k` calls on the mean of their gradients.

    Each call folds the gradient into `acc_grads` (running mean, Welford form
    `acc += (g - acc) / (n + 1)`, or a sum with `use_grad_mean=False`). For the first `k - 1`
    calls of a cycle the returned updates are zeros; on the `k`-th, `opt.update` runs on the
    accumulated gradients and the accumulator resets. `every_k_schedule` is an int or a
    function of the number of real updates so far. `should_skip_update_fn(updates,
    gradient_step, params) -> (should_skip, skip_state)` may veto micro-steps (e.g.
    `skip_not_finite`).
    """

    def __init__(self, opt: GradientTransformation,
                 every_k_schedule: Union[int, Callable[[Any], Any]],
                 use_grad_mean: bool = True,
                 should_skip_update_fn: Optional[ShouldSkipUpdateFunction] = None):
        self._opt = with_extra_args_support(opt)
        if callable(every_k_schedule):
            self._every_k_schedule = every_k_schedule
        else:
            k = every_k_schedule
            self._every_k_schedule = lambda step: k
        self._use_grad_mean = use_grad_mean
        self._should_skip_update_fn = should_skip_update_fn

    @property
    def inner_opt(self) -> GradientTransformation:
        return self._opt

    def _acc_update(self, grad, acc, n_acc):
        if self._use_grad_mean:
            return acc + (grad - acc) / tnp.asarray(n_acc + 1, dtype=acc.dtype)
        return grad + acc

    def init(self, params) -> MultiStepsState:
        gradient_step = np.zeros([], np.int32)
        skip_state = ()
        if self._should_skip_update_fn is not None:
            _, skip_state = self._should_skip_update_fn(tree_zeros_like(params),
                                                        gradient_step, params)
        return MultiStepsState(mini_step=np.zeros([], np.int32), gradient_step=gradient_step,
                               inner_opt_state=self._opt.init(params),
                               acc_grads=tree_zeros_like(params), skip_state=skip_state)

    def update(self, updates, state: MultiStepsState, params=None, **extra_args):
        k_steps = self._every_k_schedule(state.gradient_step)
        if self._should_skip_update_fn is not None:
            should_skip, skip_state = self._should_skip_update_fn(updates,
                                                                  state.gradient_step, params)
        else:
            should_skip, skip_state = np.asarray(False), ()

        acc_grads = tree.map(lambda g, a: self._acc_update(g, a, state.mini_step),
                             updates, state.acc_grads)
        is_mid = state.mini_step < k_steps - 1

        def final_step():
            final_updates, new_inner = self._opt.update(acc_grads, state.inner_opt_state,
                                                        params, **extra_args)
            return final_updates, MultiStepsState(
                mini_step=np.zeros([], np.int32),
                gradient_step=safe_int32_increment(state.gradient_step),
                inner_opt_state=new_inner, acc_grads=tree_zeros_like(acc_grads),
                skip_state=skip_state)

        def mid_state():
            return MultiStepsState(mini_step=safe_int32_increment(state.mini_step),
                                   gradient_step=state.gradient_step,
                                   inner_opt_state=state.inner_opt_state,
                                   acc_grads=acc_grads, skip_state=skip_state)

        def skip_state_():
            return MultiStepsState(mini_step=state.mini_step,
                                   gradient_step=state.gradient_step,
                                   inner_opt_state=state.inner_opt_state,
                                   acc_grads=state.acc_grads, skip_state=skip_state)

        skip_c, mid_c = _concrete_bool(should_skip), _concrete_bool(is_mid)
        if skip_c is True:
            return tree_zeros_like(state.acc_grads), skip_state_()
        if mid_c is True:
            new_u, new_s = tree_zeros_like(acc_grads), mid_state()
        elif mid_c is False:
            new_u, new_s = final_step()
        else:
            fin_u, fin_s = final_step()
            new_u = tree.map(lambda u: tnp.where(is_mid, tnp.zeros_like(u), u), fin_u)
            new_s = _select_tree(is_mid, mid_state(), fin_s)
        if skip_c is None:
            new_u = tree.map(lambda u: tnp.where(should_skip, tnp.zeros_like(u), u), new_u)
            new_s = _select_tree(should_skip, skip_state_(), new_s)
        return new_u, new_s

    def has_updated(self, state: MultiStepsState):
        """True right after a call that ran the inner optimiser."""
        return tnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def gradient_transformation(self) -> GradientTransformationExtraArgs:
        return GradientTransformationExtraArgs(self.init, self.update)


# ---------------------------------------------------------------------------------------------
# apply_if_finite
# ---------------------------------------------------------------------------------------------

class ApplyIfFiniteState(NamedTuple):
    notfinite_count: Any   # int32: consecutive non-finite updates
    last_finite: Any       # bool: whether the last updates were finite
    total_notfinite: Any   # int32: all non-finite updates so far
    inner_state: Any


def apply_if_finite(inner: GradientTransformation,
                    max_consecutive_errors: int) -> GradientTransformationExtraArgs:
    """Skip updates containing NaN/Inf (zero updates, inner state untouched).

    After more than `max_consecutive_errors` non-finite updates in a row, the inner
    transformation is applied anyway (so the problem surfaces).
    """
    inner = with_extra_args_support(inner)

    def init_fn(params):
        return ApplyIfFiniteState(notfinite_count=np.zeros([], np.int32),
                                  last_finite=np.asarray(True),
                                  total_notfinite=np.zeros([], np.int32),
                                  inner_state=inner.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        flags = [tnp.all(tnp.isfinite(u)) for u in tree.leaves(updates)]
        isfinite = functools.reduce(tnp.logical_and, flags, np.asarray(True))
        notfinite_count = tnp.where(isfinite, np.zeros([], np.int32),
                                    safe_int32_increment(state.notfinite_count))
        apply = tnp.logical_or(isfinite, notfinite_count > max_consecutive_errors)
        new_u, new_inner = inner.update(updates, state.inner_state, params, **extra_args)
        reject = (tree.map(tnp.zeros_like, updates), state.inner_state)
        new_u, new_inner = _select_tree(apply, (new_u, new_inner), reject)
        total = tnp.where(isfinite, state.total_notfinite,
                          safe_int32_increment(state.total_notfinite))
        return new_u, ApplyIfFiniteState(notfinite_count=notfinite_count, last_finite=isfinite,
                                         total_notfinite=total, inner_state=new_inner)

    return GradientTransformationExtraArgs(init_fn, update_fn)
