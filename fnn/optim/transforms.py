"""`optax.transforms`: the gradient-transformation building blocks and combinators under the
names optax groups there (the same objects as `fnn.optim.X`). Not to be confused with the
`transforms` engine package: modules in `fnn.optim` import that one absolutely."""
from __future__ import annotations

from ._flatten import flatten  # noqa: F401
from .clipping import (adaptive_grad_clip, per_example_global_norm_clip,  # noqa: F401
                       per_example_layer_norm_clip, unitwise_clip, unitwise_norm)
from .combine import (ApplyIfFiniteState, MaskedNode, MaskedState,  # noqa: F401
                      MultiSteps, MultiStepsState, PartitionState, ShouldSkipUpdateFunction,
                      apply_if_finite, chain, freeze, masked, named_chain, partition,
                      selective_transform, skip_large_updates, skip_not_finite)
from .conditionality import (ConditionFn, ConditionallyMaskState,  # noqa: F401
                             ConditionallyTransformState, conditionally_mask,
                             conditionally_transform)
from .monitoring import (MonitorState, SnapshotState, measure_with_ema,  # noqa: F401
                         monitor, snapshot)
from .scalers import AddNoiseState, add_noise  # noqa: F401
from .transformations import (EmaState, TraceState, ZeroNansState,  # noqa: F401
                              add_decayed_weights, clip, clip_by_block_rms,
                              clip_by_global_norm, ema, keep_params_nonnegative, trace,
                              zero_nans)
from .base import EmptyState as NonNegativeParamsState  # noqa: F401

__all__ = sorted(n for n in dir() if not n.startswith("_") and n != "annotations")
