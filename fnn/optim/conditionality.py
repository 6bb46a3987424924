"""Transformations applied only on some steps: `conditionally_transform` (pass the updates
through unchanged otherwise) and `conditionally_mask` (emit zeros otherwise).

The condition `should_transform_fn(step, **extra_args) -> bool scalar` may be traced: both
branches are then computed and selected leafwise (`tnp.where`), as `lax.cond` would choose;
with a concrete condition only the chosen branch runs.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from transforms import Tracer
from transforms import tree
import transforms.numpy as tnp

from .base import GradientTransformationExtraArgs, with_extra_args_support
from .updates import safe_increment

__all__ = ["ConditionFn", "ConditionallyTransformState", "conditionally_transform",
           "ConditionallyMaskState", "conditionally_mask"]

ConditionFn = Callable[..., Any]   # (step, **extra_args) -> bool scalar


class ConditionallyTransformState(NamedTuple):
    """The inner transformation's state and the step count."""
    inner_state: Any
    step: Any


class ConditionallyMaskState(NamedTuple):
    """The step count and the inner transformation's state."""
    step: Any
    inner_state: Any


def _choose(pred, run, skip):
    if not isinstance(pred, Tracer):
        return run() if bool(np.asarray(pred)) else skip()
    a, b = run(), skip()
    return tree.map(lambda x, y: tnp.where(pred, x, y), a, b)


def conditionally_transform(inner, should_transform_fn: ConditionFn,
                            forward_extra_args: bool = False) -> GradientTransformationExtraArgs:
    """Apply `inner` on the steps where `should_transform_fn(step)` is true; on the others
    pass the updates through and keep `inner`'s state. `forward_extra_args` also hands the
    update's extra keyword arguments to the condition."""
    inner = with_extra_args_support(inner)

    def init_fn(params):
        return ConditionallyTransformState(inner_state=inner.init(params),
                                           step=np.zeros([], np.int32))

    def update_fn(updates, state, params=None, **extra_args):
        kw = extra_args if forward_extra_args else {}
        pred = should_transform_fn(state.step, **kw)
        new, inner_state = _choose(
            pred, lambda: inner.update(updates, state.inner_state, params, **extra_args),
            lambda: (updates, state.inner_state))
        return new, ConditionallyTransformState(inner_state, safe_increment(state.step))
    return GradientTransformationExtraArgs(init_fn, update_fn)


def conditionally_mask(inner, should_transform_fn: ConditionFn,
                       forward_extra_args: bool = False) -> GradientTransformationExtraArgs:
    """Apply `inner` on the steps where `should_transform_fn(step)` is true; on the others
    emit zero updates and keep `inner`'s state."""
    inner = with_extra_args_support(inner)

    def init_fn(params):
        return ConditionallyMaskState(step=np.zeros([], np.int32), inner_state=inner.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        kw = extra_args if forward_extra_args else {}
        pred = should_transform_fn(state.step, **kw)
        new, inner_state = _choose(
            pred, lambda: inner.update(updates, state.inner_state, params, **extra_args),
            lambda: (tree.map(tnp.zeros_like, updates), state.inner_state))
        return new, ConditionallyMaskState(step=safe_increment(state.step),
                                           inner_state=inner_state)
    return GradientTransformationExtraArgs(init_fn, update_fn)
