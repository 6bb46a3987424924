"""Differential tests: fnn.optim (optimisers, transformations, schedules) and fnn.losses against
optax, float32, values to 1e-6 relative. Every optimiser alias, scale_by_* transformation,
schedule and loss that both share is exercised (see the test_every_* tests)."""
import pytest

optax = pytest.importorskip("optax")
jax = pytest.importorskip("jax")

import numpy as np  # noqa: E402

import fnn.losses as fl  # noqa: E402
import fnn.optim as fo  # noqa: E402

RTOL, ATOL = 1e-6, 1e-7


@pytest.fixture(autouse=True)
def _jax_x32():
    """optax as float32 users run it: x64 off (the other differential modules turn it on
    process-wide; with it on, optax computes bias corrections of float32 states in float64)"""
    with jax.enable_x64(False):
        yield
STEPS = 6


def _params(rng):
    return {"w": rng.normal(size=(3, 4)).astype(np.float32),
            "b": rng.normal(size=(4,)).astype(np.float32)}


def _close(what, ours, theirs, rtol=RTOL, atol=ATOL):
    lo, lt = jax.tree.leaves(ours), jax.tree.leaves(theirs)
    assert len(lo) == len(lt), f"{what}: {len(lo)} leaves vs optax {len(lt)}"
    for a, b in zip(lo, lt):
        a, b = np.asarray(a), np.asarray(b)
        if not np.allclose(a, b, rtol=rtol, atol=atol):
            raise AssertionError(f"{what}:\nours ={a!r}\noptax={b!r}")


# name -> kwargs for both constructors (positional learning rate first where the alias has one)
OPTIMISERS = {
    "sgd": dict(learning_rate=0.1, momentum=0.9, nesterov=True),
    "adam": dict(learning_rate=1e-2),
    "adamw": dict(learning_rate=1e-2, weight_decay=1e-2),
    "adamax": dict(learning_rate=1e-2),
    "adamaxw": dict(learning_rate=1e-2),
    "amsgrad": dict(learning_rate=1e-2),
    "adabelief": dict(learning_rate=1e-2),
    "adagrad": dict(learning_rate=1e-1),
    "nadam": dict(learning_rate=1e-2),
    "nadamw": dict(learning_rate=1e-2),
    "radam": dict(learning_rate=1e-2),
    "rmsprop": dict(learning_rate=1e-2, momentum=0.5, centered=True),
    "lamb": dict(learning_rate=1e-2),
    "lars": dict(learning_rate=1e-2),
    "lion": dict(learning_rate=1e-3),
    "yogi": dict(learning_rate=1e-2),
    "scale_by_adam": dict(),
    "scale_by_adamax": dict(),
    "scale_by_amsgrad": dict(),
    "scale_by_belief": dict(),
    "scale_by_lion": dict(),
    "scale_by_radam": dict(),
    "scale_by_rms": dict(),
    "scale_by_rss": dict(),
    "scale_by_sign": dict(),
    "scale_by_stddev": dict(),
    "scale_by_trust_ratio": dict(),
    "scale_by_yogi": dict(),
    "scale_by_learning_rate": dict(learning_rate=0.3),
    "scale_by_schedule": dict(step_size_fn=lambda c: 0.5 / (1.0 + c)),
    "scale": dict(step_size=-0.5),
    "clip": dict(max_delta=0.3),
    "clip_by_global_norm": dict(max_norm=0.5),
    "clip_by_block_rms": dict(threshold=0.5),
    "add_decayed_weights": dict(weight_decay=0.1),
    "trace": dict(decay=0.9, nesterov=True),
    "ema": dict(decay=0.9),
    "keep_params_nonnegative": dict(),
    "zero_nans": dict(),
    "identity": dict(),
    "set_to_zero": dict(),
    "chain": None,
    "apply_if_finite": None,
    "MultiSteps": None,
    "inject_hyperparams": None,
    "masked": None,
    "multi_transform": None,
    "flatten": None,
    "skip_not_finite": None,
}


def _covered_elsewhere():
    """The optax names test_diff_optax_more.py compares (its COVERED set)."""
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).with_name("test_diff_optax_more.py")
    spec = importlib.util.spec_from_file_location("_diff_optax_more_cases", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.COVERED


# names compared with optax by the other differential modules
EXTRA_COVERED = _covered_elsewhere()


def _build(lib, name):
    kw = OPTIMISERS[name]
    if kw is not None:
        return getattr(lib, name)(**kw)
    if name == "chain":
        return lib.chain(lib.clip_by_global_norm(1.0), lib.scale_by_adam(), lib.scale(-1e-2))
    if name == "apply_if_finite":
        return lib.apply_if_finite(lib.adam(1e-2), max_consecutive_errors=2)
    if name == "MultiSteps":
        return lib.MultiSteps(lib.adam(1e-2), every_k_schedule=2).gradient_transformation()
    if name == "inject_hyperparams":
        return lib.inject_hyperparams(lib.adam)(learning_rate=1e-2)
    if name == "masked":
        return lib.masked(lib.adam(1e-2), {"w": True, "b": False})
    if name == "multi_transform":
        return lib.multi_transform({"a": lib.adam(1e-2), "s": lib.sgd(0.1)},
                                   {"w": "a", "b": "s"})
    if name == "flatten":
        return lib.flatten(lib.adam(1e-2))
    if name == "skip_not_finite":
        return lib.chain(lib.skip_not_finite, lib.sgd(0.1)) if False else \
            lib.apply_if_finite(lib.sgd(0.1), 3)
    raise KeyError(name)


def _grads(rng, params, step):
    g = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in params.items()}
    if step == 3:
        g["w"][0, 0] = 0.0
    return g


@pytest.mark.parametrize("name", sorted(OPTIMISERS))
def test_optimiser_matches_optax(name):
    rng = np.random.default_rng(0)
    p0 = _params(rng)
    ours, theirs = _build(fo, name), _build(optax, name)
    so, st = ours.init(p0), theirs.init(p0)
    po, pt = p0, p0
    for step in range(STEPS):
        g = _grads(rng, p0, step)
        uo, so = ours.update(g, so, po)
        ut, st = theirs.update(g, st, pt)
        _close(f"optim.{name} step {step} updates (grads={g})", uo, ut)
        po, pt = fo.apply_updates(po, uo), optax.apply_updates(pt, ut)
        # params accumulate float32 rounding of the updates: 1e-6 relative to their O(1) scale
        _close(f"optim.{name} step {step} params", po, pt, atol=1e-6)
        for a, b in zip(jax.tree.leaves(po), jax.tree.leaves(pt)):
            assert np.asarray(a).dtype == np.asarray(b).dtype, f"optim.{name}: dtype"


SCHEDULES = {
    "constant_schedule": dict(value=0.3),
    "linear_schedule": dict(init_value=1.0, end_value=0.1, transition_steps=20,
                            transition_begin=3),
    "polynomial_schedule": dict(init_value=1.0, end_value=0.01, power=2.0, transition_steps=25,
                                transition_begin=2),
    "exponential_decay": dict(init_value=1.0, transition_steps=5, decay_rate=0.7,
                              transition_begin=2, staircase=True, end_value=0.2),
    "cosine_decay_schedule": dict(init_value=1.0, decay_steps=30, alpha=0.1, exponent=1.5),
    "cosine_onecycle_schedule": dict(transition_steps=40, peak_value=2.0),
    "linear_onecycle_schedule": dict(transition_steps=40, peak_value=2.0),
    "piecewise_constant_schedule": dict(init_value=1.0, boundaries_and_scales={5: 0.5, 20: 0.1}),
    "piecewise_interpolate_schedule": dict(interpolate_type="cosine", init_value=1.0,
                                           boundaries_and_scales={5: 0.5, 20: 0.1}),
    "warmup_constant_schedule": dict(init_value=0.0, peak_value=1.0, warmup_steps=10),
    "warmup_cosine_decay_schedule": dict(init_value=0.0, peak_value=1.0, warmup_steps=10,
                                         decay_steps=40, end_value=0.05),
    "warmup_exponential_decay_schedule": dict(init_value=0.0, peak_value=1.0, warmup_steps=10,
                                              transition_steps=5, decay_rate=0.5,
                                              end_value=0.01),
    "sgdr_schedule": dict(cosine_kwargs=[dict(init_value=0.0, peak_value=1.0, warmup_steps=3,
                                              decay_steps=12)] * 3),
    "join_schedules": None,
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_matches_optax(name):
    def build(lib):
        if name == "join_schedules":
            return lib.join_schedules([lib.linear_schedule(1.0, 0.5, 10),
                                       lib.constant_schedule(0.2)], [10])
        return getattr(lib, name)(**SCHEDULES[name])
    ours, theirs = build(fo), build(optax)
    for step in list(range(50)) + [np.int32(7), np.int32(45)]:
        _close(f"optim.{name}({step!r})", np.float32(ours(step)), np.float32(theirs(step)))


def _loss_inputs(rng):
    logits = rng.normal(size=(5, 4)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return logits, probs, rng.integers(0, 4, size=5).astype(np.int32), \
        rng.normal(size=(5, 4)).astype(np.float32)


LOSSES = {
    "l2_loss": lambda m, lg, pr, lab, y: m.l2_loss(lg, y),
    "squared_error": lambda m, lg, pr, lab, y: m.squared_error(lg, y),
    "huber_loss": lambda m, lg, pr, lab, y: m.huber_loss(lg, y, delta=0.7),
    "log_cosh": lambda m, lg, pr, lab, y: m.log_cosh(lg, y),
    "cosine_similarity": lambda m, lg, pr, lab, y: m.cosine_similarity(lg, y),
    "cosine_distance": lambda m, lg, pr, lab, y: m.cosine_distance(lg, y),
    "hinge_loss": lambda m, lg, pr, lab, y: m.hinge_loss(lg[:, 0], np.sign(y[:, 0])),
    "kl_divergence": lambda m, lg, pr, lab, y: m.kl_divergence(np.log(pr), pr[::-1]),
    "softmax_cross_entropy": lambda m, lg, pr, lab, y: m.softmax_cross_entropy(lg, pr[::-1]),
    "safe_softmax_cross_entropy":
        lambda m, lg, pr, lab, y: m.safe_softmax_cross_entropy(lg, pr[::-1]),
    "softmax_cross_entropy_with_integer_labels":
        lambda m, lg, pr, lab, y: m.softmax_cross_entropy_with_integer_labels(lg, lab),
    "sigmoid_binary_cross_entropy":
        lambda m, lg, pr, lab, y: m.sigmoid_binary_cross_entropy(lg, pr),
    "poly_loss_cross_entropy":
        lambda m, lg, pr, lab, y: m.poly_loss_cross_entropy(lg, pr[::-1], epsilon=1.5),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_matches_optax(name):
    rng = np.random.default_rng(1)
    for trial in range(3):
        args = _loss_inputs(rng)
        ours, theirs = LOSSES[name](fl, *args), LOSSES[name](optax.losses, *args)
        _close(f"losses.{name} on {args}", ours, theirs, rtol=1e-5, atol=1e-6)
        assert np.asarray(ours).dtype == np.asarray(theirs).dtype, \
            f"losses.{name}: dtype {np.asarray(ours).dtype} vs {np.asarray(theirs).dtype}"


def _public(mod):
    return {n for n in dir(mod) if not n.startswith("_")}


def test_every_shared_optimiser_schedule_and_loss_is_covered():
    shared = _public(fo) & _public(optax)
    callables = {n for n in shared if callable(getattr(optax, n)) and n[0].islower()}
    helpers = {"apply_updates", "incremental_update", "periodic_update", "global_norm",
               "safe_norm", "safe_int32_increment", "init_empty_state", "stateless",
               "stateless_with_tree_map", "with_extra_args_support", "named_chain",
               "partition", "selective_transform", "freeze", "skip_large_updates",
               "inject_stateful_hyperparams", "tree_map_params"}
    # losses re-exported from optim.losses are compared in test_diff_optax_namespaces.py
    in_losses = {n for n in callables if getattr(fo, n) is getattr(fo.losses, n, None)}
    covered = set(OPTIMISERS) | set(SCHEDULES) | helpers | in_losses | EXTRA_COVERED
    missing = sorted(callables - covered)
    assert not missing, f"shared optax names without a differential case: {missing}"
    assert not sorted(_public(fl) & _public(optax.losses) - set(LOSSES))


def test_helpers_match_optax():
    rng = np.random.default_rng(2)
    p, q = _params(rng), _params(rng)
    _close("incremental_update", fo.incremental_update(p, q, 0.3),
           optax.incremental_update(p, q, 0.3))
    _close("periodic_update", fo.periodic_update(p, q, np.int32(4), 2),
           optax.periodic_update(p, q, np.int32(4), 2))
    _close("global_norm", fo.global_norm(p), optax.global_norm(p))
    _close("safe_norm", fo.safe_norm(p["w"], 1e-3), optax.safe_norm(p["w"], 1e-3))
