"""Lookahead (Zhang et al., 2019): a fast optimiser runs `sync_period` steps, then the slow
weights move `slow_step_size` of the way towards the fast ones and the fast weights restart
from there. Parameters are a `LookaheadParams(fast, slow)` pair."""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from transforms import tree
import transforms.numpy as tnp

from .base import GradientTransformation
from .updates import cast_scalar

__all__ = ["LookaheadParams", "LookaheadState", "lookahead"]


class LookaheadState(NamedTuple):
    """The fast optimiser's state and the steps since the last synchronisation."""
    fast_state: Any
    steps_since_sync: Any


class LookaheadParams(NamedTuple):
    """The fast and slow copies of the parameters."""
    fast: Any
    slow: Any

    @classmethod
    def init_synced(cls, params):
        """Both copies equal to `params`."""
        return cls(slow=params, fast=params)


def lookahead(fast_optimizer: GradientTransformation, sync_period: int, slow_step_size,
              reset_state: bool = False) -> GradientTransformation:
    """Wrap `fast_optimizer` in Lookahead. Updates are a `LookaheadParams` of updates; on a
    synchronising step (every `sync_period`-th), with `d = fast + u - slow`:

        slow += slow_step_size * d;     fast update = u - (1 - slow_step_size) * d

    so both copies land on `slow + slow_step_size * d`. `reset_state` re-initialises the fast
    optimiser's state at each synchronisation.
    """
    if sync_period < 1:
        raise ValueError(f"lookahead: sync_period must be >= 1, got {sync_period}")

    def init_fn(params):
        fast = getattr(params, "fast", None)
        if fast is None:
            fast = params
        return LookaheadState(fast_state=fast_optimizer.init(fast),
                              steps_since_sync=np.zeros([], np.int32))

    def update_fn(updates, state, params=None):
        if not isinstance(params, LookaheadParams):
            raise ValueError("lookahead: pass params as LookaheadParams(fast, slow) "
                             "(LookaheadParams.init_synced(params) to start)")
        upd, fast_state = fast_optimizer.update(updates, state.fast_state, params.fast)
        sync = state.steps_since_sync == sync_period - 1
        s = tnp.asarray(sync)
        diff = tree.map(lambda f, u, sl: f + u - sl, params.fast, upd, params.slow)
        slow_u = tree.map(lambda d: cast_scalar(slow_step_size, d) * tnp.asarray(s, d.dtype) * d,
                          diff)
        fast_u = tree.map(lambda u, d: u - tnp.asarray(s, d.dtype)
                          * (1 - cast_scalar(slow_step_size, d)) * d, upd, diff)
        if reset_state:
            fresh = fast_optimizer.init(params.fast)
            fast_state = tree.map(lambda cur, ini: tnp.where(sync, ini, cur), fast_state, fresh)
        return (LookaheadParams(fast=fast_u, slow=slow_u),
                LookaheadState(fast_state, (state.steps_since_sync + 1) % sync_period))
    return GradientTransformation(init_fn, update_fn)
