"""Transformations that record measurements of the updates in their state without changing
the updates (`snapshot`, `monitor`), and `measure_with_ema` (a moving average of a
measurement, as the updates)."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

from .base import (GradientTransformation, GradientTransformationExtraArgs, stateless,
                   with_extra_args_support)

__all__ = ["SnapshotState", "snapshot", "MonitorState", "monitor", "measure_with_ema"]


class SnapshotState(NamedTuple):
    """`{measure_name: measure(last updates)}`."""
    measurement: Any


def snapshot(measure_name: str, measure: Callable[[Any], Any]) -> GradientTransformation:
    """Keep `measure(updates)` of the last update (of the params at init) in the state under
    `measure_name`; the updates pass unchanged."""
    def init_fn(params):
        return SnapshotState({measure_name: measure(params)})

    def update_fn(updates, state, params=None):
        del params, state
        return updates, SnapshotState({measure_name: measure(updates)})
    return GradientTransformation(init_fn, update_fn)


class MonitorState(NamedTuple):
    """The last measurements by name, and the measuring transformations' states."""
    measurements: Any
    measure_states: Any


def monitor(measures: dict) -> GradientTransformationExtraArgs:
    """Record several measurements of the updates: each value of `measures` is a function
    `updates -> tree` or a transformation whose output updates are the measurement (e.g.
    `measure_with_ema`). The updates pass unchanged; `state.measurements[name]` holds the
    latest values (empty before the first update)."""
    txs = {}
    for name, m in measures.items():
        if isinstance(m, GradientTransformation):
            txs[name] = with_extra_args_support(m)
        elif callable(m):
            txs[name] = with_extra_args_support(stateless(lambda u, _, m=m: m(u)))
        else:
            raise TypeError(f"monitor: measure {name!r} must be a function or a "
                            f"GradientTransformation, got {type(m).__name__}")
    names = tuple(txs)

    def init_fn(params):
        return MonitorState({}, tuple(txs[n].init(params) for n in names))

    def update_fn(updates, state, params=None, **extra_args):
        measurements, new_states = {}, []
        for i, n in enumerate(names):
            value, st = txs[n].update(updates, state.measure_states[i], params, **extra_args)
            measurements[n] = value
            new_states.append(st)
        return updates, MonitorState(measurements, tuple(new_states))
    return GradientTransformationExtraArgs(init_fn, update_fn)


def measure_with_ema(measure: Callable[[Any], Any], decay, debias: bool = True,
                     accumulator_dtype=None) -> GradientTransformationExtraArgs:
    """`chain(measure, ema(decay, debias, accumulator_dtype))`: the output is the moving
    average of `measure(updates)` (for use inside `monitor`)."""
    from .combine import chain
    from .transformations import ema
    avg = ema(decay, debias, accumulator_dtype)
    avg = avg._replace(init=lambda params: ema(decay, debias, accumulator_dtype).init(
        measure(params)))
    return chain(stateless(lambda updates, _: measure(updates)), avg)
