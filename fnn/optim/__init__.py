"""fnn.optim: stateless optimisers and schedules with optax's API and formulas.

    from fnn import optim
    opt = optim.adam(1e-3)                     # a GradientTransformation(init, update)
    opt_state = opt.init(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    params = optim.apply_updates(params, updates)

Layout (as optax): `base` holds the contract, `transformations` the building blocks
(optax's `transform` module; named so it is not read as the `transforms` package) and
`scalers` the further rescalers (AdaDelta, Adan, Rprop, SM3, NovoGrad, Adafactor's factored
RMS, ...), `combine` the combinators (chain, masked, multi_transform, freeze, MultiSteps),
`inject` inject_hyperparams, `clipping`/`conditionality`/`monitoring`/`lookahead` the wrappers
of those names, `alias` and `alias_extra` the named optimisers, `lbfgs` L-BFGS with its line
searches, `schedules` the learning-rate schedules, `updates` apply_updates and tree helpers,
`linear_algebra` power iteration and matrix roots.

optax's sub-namespaces exist under their names, so `from fnn import optim as optax` ports
programs: `optim.losses`, `optim.tree_utils` and `optim.tree`, `optim.transforms`,
`optim.projections`, `optim.second_order`, `optim.schedules` (with inject_hyperparams). Every
state is a pytree of arrays with optax's NamedTuple class and field names (the paths in a
checkpoint), and every `update` is pure and jittable.

Not provided: `optax.contrib` beyond what `optim.contrib` lists, `optax.experimental`,
`optax.microbatching`, `optax.assignment`, `optax.perturbations`, `multi_normal`, `nnls`.
"""
from . import base, schedules, updates  # noqa: F401
from . import transformations  # noqa: F401  (the building blocks)
from . import combine, alias  # noqa: F401
from ._flatten import flatten  # noqa: F401  (optax.flatten)
from . import losses, tree_utils, tree, projections, second_order  # noqa: F401  (optax's)
from .losses import (convex_kl_divergence, cosine_distance,  # noqa: F401
                     cosine_similarity, ctc_loss, ctc_loss_with_forward_probs,
                     generalized_kl_divergence, hinge_loss, huber_loss, kl_divergence,
                     l2_loss, log_cosh, ntxent, safe_softmax_cross_entropy,
                     sigmoid_binary_cross_entropy, sigmoid_focal_loss, smooth_labels,
                     softmax_cross_entropy, softmax_cross_entropy_with_integer_labels,
                     squared_error)
from .tree_utils import tree_map_params  # noqa: F401
from . import transforms  # noqa: F401  (optax.transforms: a namespace, not the engine)
from . import contrib  # noqa: F401  (a part of optax.contrib)
from .scalers import (AddNoiseState, ApplyEvery, FactoredState,  # noqa: F401
                      ScaleByAdaDeltaState, ScaleByAdanState,
                      ScaleByDistanceOverGradientsState, ScaleByNovogradState,
                      ScaleByOptimisticGradientState, ScaleByRpropState, ScaleBySM3State,
                      add_noise, apply_every, centralize, normalize_by_update_norm,
                      safe_root_mean_squares, scale_by_adadelta, scale_by_adan,
                      scale_by_distance_over_gradients, scale_by_factored_rms,
                      scale_by_novograd, scale_by_optimistic_gradient,
                      scale_by_param_block_norm, scale_by_param_block_rms, scale_by_polyak,
                      scale_by_rprop, scale_by_sm3)
from .clipping import (adaptive_grad_clip, per_example_global_norm_clip,  # noqa: F401
                       per_example_layer_norm_clip)
from .conditionality import (ConditionallyMaskState,  # noqa: F401
                             ConditionallyTransformState, conditionally_mask,
                             conditionally_transform)
from .monitoring import (MonitorState, SnapshotState, measure_with_ema,  # noqa: F401
                         monitor, snapshot)
from .lookahead import LookaheadParams, LookaheadState, lookahead  # noqa: F401
from .linear_algebra import matrix_inverse_pth_root, power_iteration  # noqa: F401
from .utils import (bias_correction, scale_gradient, update_infinity_moment,  # noqa: F401
                    update_moment, update_moment_per_elem_norm)
from .alias_extra import (adadelta, adafactor, adan, fromage, noisy_sgd,  # noqa: F401
                          novograd, optimistic_adam, optimistic_adam_v2,
                          optimistic_gradient_descent, polyak_sgd, rprop, sign_sgd, signum,
                          sm3)
from .transformations import WeightDecaySchedule  # noqa: F401
from .lbfgs import (ScaleByBacktrackingLinesearchState, ScaleByLBFGSState,  # noqa: F401
                    ScaleByZoomLinesearchState, ZoomLinesearchInfo, lbfgs, scale_by_lbfgs,
                    scale_by_backtracking_linesearch, scale_by_zoom_linesearch,
                    value_and_grad_from_state)
from .transforms import NonNegativeParamsState  # noqa: F401
from .combine import ShouldSkipUpdateFunction  # noqa: F401
from .base import MaskOrFn, TransformUpdateExtraArgsFn  # noqa: F401
from .clipping import AdaptiveGradClipState  # noqa: F401

from .base import (EmptyState, GradientTransformation,  # noqa: F401
                   GradientTransformationExtraArgs, NO_PARAMS_MSG, OptState, Params,
                   ScalarOrSchedule, Schedule, TransformInitFn, TransformUpdateFn, Updates,
                   identity, init_empty_state, set_to_zero, stateless, stateless_with_tree_map,
                   with_extra_args_support)
from .updates import (apply_updates, global_norm, incremental_update,  # noqa: F401
                      periodic_update, safe_increment, safe_int32_increment, safe_norm)
from .transformations import (AddDecayedWeightsState, ClipByGlobalNormState,  # noqa: F401
                         ClipState, EmaState, ScaleByAdamState, ScaleByAmsgradState,
                         ScaleByBeliefState, ScaleByLionState, ScaleByRmsState,
                         ScaleByRmsWithCountState, ScaleByRssState, ScaleByRStdDevState,
                         ScaleByRStdDevWithCountState, ScaleByScheduleState,
                         ScaleByTrustRatioState, ScaleState, TraceState, ZeroNansState,
                         add_decayed_weights, clip, clip_by_block_rms, clip_by_global_norm,
                         ema, keep_params_nonnegative, scale, scale_by_adam, scale_by_adamax,
                         scale_by_amsgrad, scale_by_belief, scale_by_learning_rate,
                         scale_by_lion, scale_by_radam, scale_by_rms, scale_by_rss,
                         scale_by_schedule, scale_by_sign, scale_by_stddev,
                         scale_by_trust_ratio, scale_by_yogi, trace, zero_nans)
from .inject import WrappedSchedule, inject_stateful_hyperparams  # noqa: F401
from .combine import (ApplyIfFiniteState, InjectHyperparamsState,  # noqa: F401
                      InjectStatefulHyperparamsState, MaskedNode,
                      MaskedState, MultiSteps, MultiStepsState, MultiTransformState,
                      PartitionState, apply_if_finite, chain, freeze, inject_hyperparams,
                      masked, multi_transform, named_chain, partition, selective_transform,
                      skip_large_updates, skip_not_finite)
from .alias import (adabelief, adagrad, adam, adamax, adamaxw, adamw, amsgrad,  # noqa: F401
                    lamb, lars, lion, nadam, nadamw, radam, rmsprop, sgd, yogi)
from .schedules import (constant_schedule, cosine_decay_schedule,  # noqa: F401
                        cosine_onecycle_schedule, exponential_decay, join_schedules,
                        linear_onecycle_schedule, linear_schedule,
                        piecewise_constant_schedule, piecewise_interpolate_schedule,
                        polynomial_schedule, sgdr_schedule, warmup_constant_schedule,
                        warmup_cosine_decay_schedule, warmup_exponential_decay_schedule)

import types as _types_all  # noqa: E402

# the public names (pdoc documents re-exported names only when they are listed here)
__all__ = sorted(_n for _n, _v in globals().items()
                 if not _n.startswith("_") and not isinstance(_v, _types_all.ModuleType))
del _types_all
