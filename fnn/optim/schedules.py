"""Schedules: functions `count -> value` of the step count, as in optax.

`count` is the number of updates made so far (0 for the first update). Schedules accept Python
ints, NumPy ints and traced int32 counts alike: all arithmetic on `count` goes through
`transforms.numpy`, and Python branches only look at the (static) schedule parameters.
"""
from __future__ import annotations

import logging
from typing import Callable, Dict, Iterable, Optional, Sequence

import numpy as np

import transforms.numpy as tnp

__all__ = [
    "Schedule", "constant_schedule", "polynomial_schedule", "linear_schedule",
    "piecewise_constant_schedule", "exponential_decay", "cosine_decay_schedule",
    "warmup_cosine_decay_schedule", "warmup_exponential_decay_schedule",
    "warmup_constant_schedule", "join_schedules", "piecewise_interpolate_schedule",
    "linear_onecycle_schedule", "cosine_onecycle_schedule", "sgdr_schedule",
]

Schedule = Callable[[object], object]
_log = logging.getLogger(__name__)


def constant_schedule(value) -> Schedule:
    """`value` at every step."""
    return lambda count: value


def polynomial_schedule(init_value, end_value, power, transition_steps: int,
                        transition_begin: int = 0) -> Schedule:
    """Polynomial decay from `init_value` to `end_value` over `transition_steps`.

        c = clip(count - transition_begin, 0, transition_steps)
        value = (init_value - end_value) * (1 - c / transition_steps)**power + end_value

    Held at `init_value` for the first `transition_begin` steps and at `end_value` after.
    `transition_steps <= 0` gives the constant `init_value`.
    """
    if transition_steps <= 0:
        _log.info("polynomial_schedule: transition_steps %s <= 0, using a constant schedule "
                  "with value init_value", transition_steps)
        return constant_schedule(init_value)
    if transition_begin < 0:
        _log.info("polynomial_schedule: transition_begin %s < 0, using 0", transition_begin)
        transition_begin = 0

    def schedule(count):
        c = tnp.clip(tnp.asarray(count) - transition_begin, 0, transition_steps)
        frac = 1 - c / transition_steps
        return (init_value - end_value) * (frac ** power) + end_value
    return schedule


def linear_schedule(init_value, end_value, transition_steps: int,
                    transition_begin: int = 0) -> Schedule:
    """Linear interpolation from `init_value` to `end_value` (polynomial with power 1)."""
    return polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)


def piecewise_constant_schedule(init_value,
                                boundaries_and_scales: Optional[Dict[int, float]] = None
                                ) -> Schedule:
    """`init_value` multiplied by every `scale` whose boundary has been reached.

    `value = init_value * prod(scale for boundary, scale in boundaries_and_scales.items()
    if count >= boundary)`. Scales must be non-negative.
    """
    if boundaries_and_scales is not None:
        if not all(scale >= 0.0 for scale in boundaries_and_scales.values()):
            raise ValueError("`piecewise_constant_schedule` expects non-negative scale factors")
        items = sorted(boundaries_and_scales.items())
    else:
        items = []

    def schedule(count):
        count = tnp.asarray(count)
        v = init_value
        for threshold, scale in items:
            indicator = tnp.maximum(0.0, tnp.sign(threshold - count))
            v = v * indicator + (1 - indicator) * scale * v
        return v
    return schedule


def exponential_decay(init_value, transition_steps: int, decay_rate, transition_begin: int = 0,
                      staircase: bool = False, end_value=None) -> Schedule:
    """`init_value * decay_rate ** ((count - transition_begin) / transition_steps)`.

    Held at `init_value` until `transition_begin`; `staircase=True` floors the exponent;
    `end_value` bounds the result (a floor when `decay_rate < 1`, a ceiling otherwise).
    """
    if transition_steps <= 0:
        _log.info("exponential_decay: transition_steps %s <= 0, using a constant schedule "
                  "with value init_value", transition_steps)
        return constant_schedule(init_value)
    if decay_rate == 0:
        _log.info("exponential_decay: decay_rate is 0, the schedule is constant")
    if transition_begin < 0:
        _log.info("exponential_decay: transition_begin %s < 0, using 0", transition_begin)
        transition_begin = 0
    clip_fn = None
    if end_value is not None:
        clip_fn = tnp.maximum if decay_rate < 1.0 else tnp.minimum

    def schedule(count):
        decreased = tnp.asarray(count) - transition_begin
        p = decreased / transition_steps
        if staircase:
            p = tnp.floor(p)
        value = tnp.where(decreased <= 0, init_value, init_value * tnp.power(decay_rate, p))
        if clip_fn is not None:
            value = clip_fn(value, end_value)
        return value
    return schedule


def cosine_decay_schedule(init_value, decay_steps: int, alpha=0.0,
                          exponent=1.0) -> Schedule:
    """Cosine decay (Loshchilov & Hutter) from `init_value` to `alpha * init_value`.

        c = min(count, decay_steps)
        value = init_value * ((1 - alpha) * (0.5 * (1 + cos(pi * c / decay_steps)))**exponent
                              + alpha)
    """
    if not decay_steps > 0:
        raise ValueError(f"The cosine_decay_schedule requires positive decay_steps, got "
                         f"decay_steps={decay_steps}")

    def schedule(count):
        c = tnp.minimum(tnp.asarray(count), decay_steps)
        cosine = 0.5 * (1 + tnp.cos(np.pi * c / decay_steps))
        decayed = (1 - alpha) * cosine ** exponent + alpha
        return init_value * decayed
    return schedule


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Run `schedules[i]` from `boundaries[i-1]` on, each restarted at its own step 0."""
    schedules = list(schedules)
    boundaries = list(boundaries)
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(f"join_schedules: {len(schedules)} schedules need "
                         f"{len(schedules) - 1} boundaries, got {len(boundaries)}")

    def schedule(step):
        step = tnp.asarray(step)
        output = schedules[0](step)
        for boundary, sched in zip(boundaries, schedules[1:]):
            output = tnp.where(step < boundary, output, sched(step - boundary))
        return output
    return schedule


def warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps: int, decay_steps: int,
                                 end_value=0.0, exponent=1.0) -> Schedule:
    """Linear warm-up from `init_value` to `peak_value` over `warmup_steps`, then cosine decay
    to `end_value`. `decay_steps` is the total length, warm-up included."""
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    schedules = [
        linear_schedule(init_value=init_value, end_value=peak_value,
                        transition_steps=warmup_steps),
        cosine_decay_schedule(init_value=peak_value, decay_steps=decay_steps - warmup_steps,
                              alpha=alpha, exponent=exponent),
    ]
    return join_schedules(schedules, [warmup_steps])


def warmup_exponential_decay_schedule(init_value, peak_value, warmup_steps: int,
                                      transition_steps: int, decay_rate,
                                      transition_begin: int = 0, staircase: bool = False,
                                      end_value=None) -> Schedule:
    """Linear warm-up to `peak_value`, then `exponential_decay(peak_value, ...)`."""
    schedules = [
        linear_schedule(init_value=init_value, end_value=peak_value,
                        transition_steps=warmup_steps),
        exponential_decay(init_value=peak_value, transition_steps=transition_steps,
                          decay_rate=decay_rate, transition_begin=transition_begin,
                          staircase=staircase, end_value=end_value),
    ]
    return join_schedules(schedules, [warmup_steps])


def warmup_constant_schedule(init_value, peak_value, warmup_steps: int) -> Schedule:
    """Linear warm-up to `peak_value` over `warmup_steps`, then constant."""
    return join_schedules([linear_schedule(init_value, peak_value, warmup_steps),
                           constant_schedule(peak_value)], [warmup_steps])


def _linear_interpolate(start, end, pct):
    return (end - start) * pct + start


def _cosine_interpolate(start, end, pct):
    return end + (start - end) / 2.0 * (tnp.cos(np.pi * pct) + 1)


def piecewise_interpolate_schedule(interpolate_type: str, init_value,
                                   boundaries_and_scales: Optional[Dict[int, float]] = None
                                   ) -> Schedule:
    """Interpolate (`'linear'` or `'cosine'`) between values that change by the given scales.

    With sorted boundaries `b_1 < ... < b_n` and `b_0 = 0`, the value reached at `b_i` is
    `v_i = init_value * scale_1 * ... * scale_i` (`v_0 = init_value`). For
    `b_{i-1} <= count < b_i` the schedule interpolates from `v_{i-1}` to `v_i` with
    `pct = (count - b_{i-1}) / max(b_i - b_{i-1}, 1)`:

        linear: (v_i - v_{i-1}) * pct + v_{i-1}
        cosine: v_i + (v_{i-1} - v_i) / 2 * (cos(pi * pct) + 1)

    and from `b_n` on it is `v_n`. So step 0 gives `init_value` (unless a boundary is 0), and
    a negative count gives 0, as optax's formula does.
    """
    if interpolate_type == "linear":
        interp = _linear_interpolate
    elif interpolate_type == "cosine":
        interp = _cosine_interpolate
    else:
        raise ValueError("`interpolate_type` must be either 'cosine' or 'linear'")
    if boundaries_and_scales:
        boundaries, scales = zip(*sorted(boundaries_and_scales.items()))
        if not all(scale >= 0.0 for scale in scales):
            raise ValueError("`piecewise_interpolate_schedule` expects non-negative scale "
                             "factors")
    else:
        boundaries, scales = (), ()
    bounds = np.asarray((0,) + tuple(boundaries), dtype=np.float64)
    values = np.cumprod(np.asarray((init_value,) + tuple(scales), dtype=np.float64))
    interval_sizes = np.maximum(bounds[1:] - bounds[:-1], 1.0)

    def schedule(count):
        c = tnp.asarray(count, dtype=np.float64)
        last = tnp.where(bounds[-1] <= c, values[-1], 0.0)
        if len(boundaries) == 0:
            return last
        indicator = tnp.logical_and(bounds[:-1] <= c, c < bounds[1:])
        pct = (c - bounds[:-1]) / interval_sizes
        interp_vals = interp(values[:-1], values[1:], pct)
        return tnp.sum(tnp.where(indicator, interp_vals, 0.0)) + last
    return schedule


def linear_onecycle_schedule(transition_steps: int, peak_value, pct_start=0.3, pct_final=0.85,
                             div_factor=25.0, final_div_factor=1e4) -> Schedule:
    """One-cycle policy (Smith & Topin) with linear pieces: up to `peak_value` over
    `pct_start`, back to `peak_value / div_factor` by `pct_final`, then down to
    `peak_value / (div_factor * final_div_factor)` at `transition_steps`."""
    if transition_steps <= 0:
        raise ValueError("A linear onecycle schedule was set with a non-positive "
                         f"`transition_steps`: {transition_steps}")
    return piecewise_interpolate_schedule(
        "linear", peak_value / div_factor,
        {int(pct_start * transition_steps): div_factor,
         int(pct_final * transition_steps): 1.0 / div_factor,
         transition_steps: 1.0 / final_div_factor})


def cosine_onecycle_schedule(transition_steps: int, peak_value, pct_start=0.3,
                             div_factor=25.0, final_div_factor=1e4) -> Schedule:
    """One-cycle policy with cosine pieces: up to `peak_value` over `pct_start`, then down to
    `peak_value / (div_factor * final_div_factor)` at `transition_steps`."""
    if transition_steps <= 0:
        raise ValueError("A cosine onecycle schedule was set with a non-positive "
                         f"`transition_steps`: {transition_steps}")
    return piecewise_interpolate_schedule(
        "cosine", peak_value / div_factor,
        {int(pct_start * transition_steps): div_factor,
         int(transition_steps): 1.0 / (div_factor * final_div_factor)})


def sgdr_schedule(cosine_kwargs: Iterable[dict]) -> Schedule:
    """Warm restarts: consecutive `warmup_cosine_decay_schedule(**kwargs)` cycles."""
    boundaries, schedules, step = [], [], 0
    for kwargs in cosine_kwargs:
        schedules.append(warmup_cosine_decay_schedule(**kwargs))
        boundaries.append(step + kwargs["decay_steps"])
        step += kwargs["decay_steps"]
    return join_schedules(schedules, boundaries[:-1])


# optax.schedules also holds the hyperparameter injection (imported last: inject does not
# depend on this module, so there is no cycle); not in __all__, which lists the schedules
from .inject import (InjectHyperparamsState, InjectStatefulHyperparamsState,  # noqa: E402,F401
                     StatefulSchedule, WrappedSchedule, inject_hyperparams,
                     inject_stateful_hyperparams)
