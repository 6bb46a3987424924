"""The optimiser contract: a gradient transformation is a pair of pure functions.

    init(params) -> state
    update(updates, state, params=None) -> (new_updates, new_state)

`state` is any pytree (the library uses `NamedTuple`s of arrays, so states jit, vmap and
checkpoint). `update` is pure and traceable: it uses `transforms.numpy` for all array math and
branches in Python only on static hyperparameters. Transformations compose with `chain`.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional, Union

from transforms import tree
import transforms.numpy as tnp

__all__ = [
    "GradientTransformation", "GradientTransformationExtraArgs", "EmptyState", "OptState",
    "Params", "Updates", "Schedule", "ScalarOrSchedule", "TransformInitFn",
    "TransformUpdateFn", "TransformUpdateExtraArgsFn", "MaskOrFn",
    "NO_PARAMS_MSG", "init_empty_state", "identity", "set_to_zero",
    "stateless", "stateless_with_tree_map", "with_extra_args_support",
]

Params = Any           # a pytree of arrays
Updates = Any          # a pytree of arrays with the structure of Params
OptState = Any         # a pytree of arrays
Schedule = Callable[[Any], Any]            # step count (int32 array) -> scalar
ScalarOrSchedule = Union[float, Any, Schedule]
TransformInitFn = Callable[[Params], OptState]
TransformUpdateFn = Callable[..., "tuple[Updates, OptState]"]
TransformUpdateExtraArgsFn = Callable[..., "tuple[Updates, OptState]"]
MaskOrFn = Any         # a pytree of bools like the params, or a function params -> that tree

NO_PARAMS_MSG = ("You are using a transformation that requires the current value of the "
                 "parameters, but you are not passing `params` when calling `update`.")


class GradientTransformation(NamedTuple):
    """An optimiser as two pure functions.

    Attributes:
      init: `init(params) -> state`, the initial state for parameters `params`.
      update: `update(updates, state, params=None) -> (updates, state)`: transforms the
        incoming `updates` (gradients at the first link of a chain) and returns the new state.
    """
    init: TransformInitFn
    update: TransformUpdateFn


class GradientTransformationExtraArgs(GradientTransformation):
    """A `GradientTransformation` whose `update` also accepts keyword `**extra_args`.

    `update(updates, state, params=None, **extra_args)`; extra arguments (e.g. `value=` for a
    line search) are forwarded by `chain` and friends to the links that accept them.
    """


class EmptyState(NamedTuple):
    """The state of a stateless transformation: an empty pytree."""


def init_empty_state(params: Params) -> EmptyState:
    """The `init` of a stateless transformation: `EmptyState()` whatever the params (as
    `optax.init_empty_state`)."""
    del params
    return EmptyState()


def identity() -> GradientTransformation:
    """Leave updates unchanged: `u <- u`."""
    def update_fn(updates, state, params=None):
        del params
        return updates, state
    return GradientTransformation(init_empty_state, update_fn)


def set_to_zero() -> GradientTransformation:
    """Replace every update by zeros of its shape and dtype: `u <- 0`.

    Applied to a subset of the parameters (via `masked`/`multi_transform`) this freezes them:
    `apply_updates` then adds exact zeros, so the parameters stay bit-identical.
    """
    def update_fn(updates, state, params=None):
        del params
        return tree.map(tnp.zeros_like, updates), state
    return GradientTransformation(init_empty_state, update_fn)


def stateless(f: Callable[[Updates, Optional[Params]], Updates]) -> GradientTransformation:
    """A stateless transformation from `f(updates, params) -> updates` (whole trees)."""
    def update_fn(updates, state, params=None):
        del state
        return f(updates, params), EmptyState()
    return GradientTransformation(init_empty_state, update_fn)


def stateless_with_tree_map(f: Callable[[Any, Any], Any]) -> GradientTransformation:
    """A stateless transformation from a leafwise `f(update, param) -> update`."""
    def update_fn(updates, state, params=None):
        del state
        if params is not None:
            return tree.map(f, updates, params), EmptyState()
        return tree.map(lambda u: f(u, None), updates), EmptyState()
    return GradientTransformation(init_empty_state, update_fn)


def with_extra_args_support(tx: GradientTransformation) -> GradientTransformationExtraArgs:
    """Wrap `tx` so its `update` accepts (and ignores) extra keyword arguments."""
    if isinstance(tx, GradientTransformationExtraArgs):
        return tx

    @functools.wraps(tx.update)
    def update(updates, state, params=None, **extra_args):
        del extra_args
        return tx.update(updates, state, params)

    return GradientTransformationExtraArgs(tx.init, update)
