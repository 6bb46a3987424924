"""`inject_hyperparams`: an optimiser's numeric hyperparameters moved into its state.

The state is `InjectStatefulHyperparamsState(count, hyperparams, hyperparams_states,
inner_state)`, laid out as optax's (so state paths in checkpoints agree): `hyperparams` maps
each injected name to the value the last update used, `hyperparams_states` holds the state of
each schedule (a plain schedule `f(count)` is wrapped in a `WrappedSchedule` whose state is
`WrappedScheduleState(count)`).
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import numpy as np

from transforms import Tracer
from transforms import tree
import transforms.numpy as tnp

from .base import GradientTransformation, GradientTransformationExtraArgs, \
    with_extra_args_support
from .updates import dtype_of, safe_int32_increment

__all__ = ["InjectHyperparamsState", "InjectStatefulHyperparamsState", "StatefulSchedule",
           "WrappedSchedule", "WrappedScheduleState", "inject_hyperparams",
           "inject_stateful_hyperparams"]


class InjectHyperparamsState(NamedTuple):
    """optax's older three-field state (count, hyperparams, inner_state); `inject_hyperparams`
    returns `InjectStatefulHyperparamsState`, as optax does."""
    count: Any
    hyperparams: Any
    inner_state: Any


class InjectStatefulHyperparamsState(NamedTuple):
    """The state of an `inject_hyperparams` optimiser."""
    count: Any                # int32: number of updates so far
    hyperparams: Any          # dict name -> scalar array (the values used by the last update)
    hyperparams_states: Any   # dict name -> the state of that hyperparameter's schedule
    inner_state: Any


class StatefulSchedule:
    """The protocol of a schedule with its own state: `init() -> state`,
    `update(state, **extra_args) -> state` and `__call__(state, **extra_args) -> value`.
    `inject_hyperparams` recognises instances (and objects with those three methods)."""

    def init(self):
        raise NotImplementedError

    def update(self, state, **extra_args):
        raise NotImplementedError

    def __call__(self, state, **extra_args):
        raise NotImplementedError


class WrappedScheduleState(NamedTuple):
    """The state of a `WrappedSchedule`: the step count."""
    count: Any


class WrappedSchedule(StatefulSchedule):
    """A plain schedule `f(count)` as a `StatefulSchedule` that counts its own steps."""

    def __init__(self, schedule_fn: Callable[[Any], Any]):
        self.schedule_fn = schedule_fn

    def init(self):
        """The count at zero."""
        return WrappedScheduleState(count=np.zeros([], np.int32))

    def update(self, state, **extra_args):
        """The count plus one (saturating)."""
        del extra_args
        return WrappedScheduleState(count=safe_int32_increment(state.count))

    def __call__(self, state, **extra_args):
        del extra_args
        return self.schedule_fn(state.count)


def _is_stateful(x):
    # duck typing, as optax's runtime-checkable protocol: any callable with init and update
    if isinstance(x, StatefulSchedule):
        return True
    return callable(x) and all(callable(getattr(x, m, None)) for m in ("init", "update"))


def _convert_floats(x, dtype):
    """Floating scalars as arrays of `dtype` (ints and bools unchanged; dtype None keeps
    the value's own dtype)."""
    if isinstance(x, Tracer):
        if np.issubdtype(x.dtype, np.floating) and dtype is not None and x.dtype != dtype:
            return tnp.asarray(x, dtype=dtype)
        return x
    arr = np.asarray(x)
    if np.issubdtype(arr.dtype, np.floating):
        return np.asarray(arr, dtype=dtype) if dtype is not None else arr
    return x


def _highest_float_dtype(*trees):
    """The widest floating dtype among the leaves of the first tree that has any."""
    for t in trees:
        dts = [np.dtype(dtype_of(x)) for x in tree.leaves(t)
               if np.issubdtype(dtype_of(x), np.floating)]
        if dts:
            return max(dts, key=lambda d: d.itemsize)
    return None


def inject_hyperparams(inner_factory: Callable[..., GradientTransformation],
                       static_args: Union[str, Sequence[str]] = (),
                       hyperparam_dtype=None) -> Callable[..., GradientTransformationExtraArgs]:
    """Make an optimiser's numeric hyperparameters part of its state.

    `inject_hyperparams(adam)(learning_rate=schedule, b1=0.9)` returns a transformation whose
    state is `InjectStatefulHyperparamsState(count, hyperparams, hyperparams_states,
    inner_state)`. Numbers become arrays in `state.hyperparams` (and may be changed there
    between steps, e.g. with `optim.tree.set(state, learning_rate=...)`); schedules are
    evaluated on every update (a plain `f(count)` at its own step count, a `StatefulSchedule`
    from its state, which `update` then advances) and the value used is stored, so
    `state.hyperparams['learning_rate']` is the rate the last update used. Booleans, names in
    `static_args` and other objects are passed to `inner_factory` unchanged. Floating
    hyperparameters take the parameters' (widest floating) dtype unless `hyperparam_dtype`
    is given.
    """
    if isinstance(static_args, str):
        static_args = (static_args,)
    static_args = frozenset(static_args)
    sig = inspect.signature(inner_factory)
    unknown = static_args - set(sig.parameters)
    if unknown:
        raise ValueError(f"inject_hyperparams: static_args {sorted(unknown)} are not "
                         f"parameters of {getattr(inner_factory, '__name__', inner_factory)}"
                         f" (which takes {list(sig.parameters)})")
    hparam_dtype = None if hyperparam_dtype is None else np.dtype(hyperparam_dtype)

    @functools.wraps(inner_factory)
    def wrapped(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        sched_hps, numeric_hps, other_hps = {}, {}, {}
        for name, value in bound.arguments.items():
            if name in static_args or isinstance(value, bool):
                other_hps[name] = value
            elif isinstance(value, StatefulSchedule):
                sched_hps[name] = value
            elif callable(value):
                sched_hps[name] = value if _is_stateful(value) else WrappedSchedule(value)
            elif isinstance(value, (int, float, np.ndarray, np.generic, Tracer)):
                numeric_hps[name] = value
            else:
                other_hps[name] = value

        def dtype_for(*trees):
            return hparam_dtype if hparam_dtype is not None else _highest_float_dtype(*trees)

        def init_fn(params):
            dtype = dtype_for(params)
            hparams = {k: tnp.asarray(_convert_floats(v, dtype)) for k, v in numeric_hps.items()}
            sched_states = {k: f.init() for k, f in sched_hps.items()}
            hparams.update({k: tnp.asarray(_convert_floats(f(sched_states[k]), dtype))
                            for k, f in sched_hps.items()})
            inner = with_extra_args_support(inner_factory(**other_hps, **hparams))
            return InjectStatefulHyperparamsState(
                count=np.zeros([], np.int32), hyperparams=hparams,
                hyperparams_states=sched_states, inner_state=inner.init(params))

        def update_fn(updates, state, params=None, **extra_args):
            dtype = dtype_for(params, updates)
            hparams = {k: _convert_floats(v, dtype) for k, v in state.hyperparams.items()}
            hparams.update({k: _convert_floats(f(state.hyperparams_states[k], **extra_args),
                                               dtype) for k, f in sched_hps.items()})
            hparams = {k: tnp.asarray(v) for k, v in hparams.items()}
            sched_states = {k: f.update(state.hyperparams_states[k], **extra_args)
                            for k, f in sched_hps.items()}
            inner = with_extra_args_support(inner_factory(**other_hps, **hparams))
            updates, inner_state = inner.update(updates, state.inner_state, params,
                                                **extra_args)
            return updates, InjectStatefulHyperparamsState(
                count=safe_int32_increment(state.count), hyperparams=hparams,
                hyperparams_states=sched_states, inner_state=inner_state)

        return GradientTransformationExtraArgs(init_fn, update_fn)

    return wrapped


def inject_stateful_hyperparams(inner_factory: Callable[..., GradientTransformation],
                                static_args: Union[str, Sequence[str]] = (),
                                hyperparam_dtype: Optional[Any] = None):
    """The older name of `inject_hyperparams` (which handles stateful schedules too)."""
    return inject_hyperparams(inner_factory, static_args, hyperparam_dtype)
