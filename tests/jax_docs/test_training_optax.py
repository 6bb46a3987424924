"""The ideas of optax's tutorials, ported to `fnn.optim`: the getting-started loop
(`value_and_grad`, `opt.update`, `apply_updates`), gradient clipping by chaining, learning-rate
schedules and `inject_hyperparams`, gradient accumulation with `MultiSteps`, frozen parameters
and weight-decay masks (`masked`, `multi_transform`, `adamw(mask=...)`), `contrib`'s
`reduce_on_plateau`, L-BFGS driven by `value_and_grad_from_state` in a `while_loop`, the losses
and their (absent) reductions, and `tree_utils`. Each program is checked against hand values;
where optax is importable the same program runs in optax and must agree."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from fnn import optim
from transforms import lax

from ._helpers import assert_tree_close

try:
    import jax
    import jax.numpy as jnp
    import optax
except ImportError:  # the optax comparisons skip, the hand-checked ones still run
    jax = jnp = optax = None

needs_optax = pytest.mark.skipif(optax is None, reason="optax/JAX are not installed")

rng = np.random.default_rng(11)
XL = rng.normal(size=(32, 3)).astype(np.float32)
W_TRUE = np.array([[1.5], [-2.0], [0.5]], np.float32)
YL = XL @ W_TRUE + 0.25
P0 = {"w": np.zeros((3, 1), np.float32), "b": np.zeros((1,), np.float32)}


def _loss(np_mod):
    def loss(params, x, y):
        return np_mod.mean((x @ params["w"] + params["b"] - y) ** 2)
    return loss


LOSS = _loss(tnp)


def _fit(lib, opt, loss, steps, jit, vg, extra=None):
    """The getting-started loop: one jitted step, a Python for loop."""
    state = opt.init(P0)

    @jit
    def step(params, state, x, y):
        value, grads = vg(loss)(params, x, y)
        updates, state = opt.update(grads, state, params, **(extra(value) if extra else {}))
        return lib.apply_updates(params, updates), state, value

    params, values = P0, []
    for _ in range(steps):
        params, state, value = step(params, state, XL, YL)
        values.append(float(value))
    return params, state, values


def _optax_x32():
    return jax.enable_x64(False)


def _same(ours, theirs, rtol=1e-5, atol=1e-6):
    """Leaf by leaf, in the same order and dtypes (our states are NamedTuples with optax's
    names and fields, but other classes, so JAX and we each flatten our own)."""
    assert type(ours).__name__ == type(theirs).__name__
    lo, lt = T.tree.leaves(ours), jax.tree_util.tree_leaves(theirs)
    assert len(lo) == len(lt)
    for a, b in zip(lo, lt):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


# --- getting started ----------------------------------------------------------------------

def test_linear_model_trained_with_adam_recovers_the_weights():
    params, _, values = _fit(optim, optim.adam(0.1), LOSS, 150, T.jit, T.value_and_grad)
    assert params["w"].dtype == np.float32  # updates keep the parameters' dtype
    np.testing.assert_allclose(params["w"], W_TRUE, atol=0.02)
    np.testing.assert_allclose(params["b"], [0.25], atol=0.02)
    assert values[-1] < 1e-3 < values[0]


@needs_optax
def test_getting_started_loop_agrees_with_optax():
    mk = lambda lib: lib.chain(lib.clip_by_global_norm(1.0), lib.adam(0.05))  # noqa: E731
    ours = _fit(optim, mk(optim), LOSS, 20, T.jit, T.value_and_grad)
    with _optax_x32():
        theirs = _fit(optax, mk(optax), _loss(jnp), 20, jax.jit, jax.value_and_grad)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-5)
    _same(ours[0], theirs[0])
    _same(ours[1], theirs[1])  # the same state tree


def test_clip_by_global_norm_then_sgd_hand_values():
    g = {"a": np.array([3.0, 0.0]), "b": np.array([4.0])}  # global norm 5
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(0.1))
    updates, _ = opt.update(g, opt.init(g))
    assert_tree_close(updates, {"a": np.array([-0.06, 0.0]), "b": np.array([-0.08])}, rtol=1e-12)
    small = {"a": np.array([0.3, 0.0]), "b": np.array([0.4])}  # norm 0.5: left alone
    assert_tree_close(opt.update(small, opt.init(small))[0],
                      {"a": np.array([-0.03, 0.0]), "b": np.array([-0.04])}, rtol=1e-12)
    # clip (elementwise) is a different transformation
    upd, _ = optim.clip(1.0).update(g, optim.clip(1.0).init(g))
    assert_tree_close(upd, {"a": np.array([1.0, 0.0]), "b": np.array([1.0])})


# --- schedules and inject_hyperparams ------------------------------------------------------

def test_warmup_cosine_schedule_hand_values():
    s = optim.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=4, decay_steps=12,
                                           end_value=0.1)
    np.testing.assert_allclose([float(s(i)) for i in (0, 2, 4)], [0.0, 0.5, 1.0], rtol=1e-12)
    # halfway through the cosine part (step 8 of 4..12): end + (peak - end) / 2
    assert float(s(8)) == pytest.approx(0.55)
    assert float(s(12)) == pytest.approx(0.1) and float(s(100)) == pytest.approx(0.1)
    assert float(T.jit(s)(np.int32(8))) == pytest.approx(0.55)


def test_inject_hyperparams_exposes_and_overrides_the_learning_rate():
    sched = optim.exponential_decay(0.1, transition_steps=1, decay_rate=0.5)
    opt = optim.inject_hyperparams(optim.sgd)(learning_rate=sched, momentum=0.0)
    g = {"w": np.array([1.0, -2.0])}
    state = opt.init(g)
    step = T.jit(opt.update)
    lrs = []
    for _ in range(3):
        updates, state = step(g, state)
        lrs.append(float(state.hyperparams["learning_rate"]))  # the rate this step used
    np.testing.assert_allclose(lrs, [0.1, 0.05, 0.025], rtol=1e-7)
    np.testing.assert_allclose(updates["w"], [-0.025, 0.05], rtol=1e-7)
    # a constant hyperparameter can be changed in the state between steps
    opt = optim.inject_hyperparams(optim.adam)(learning_rate=0.1)
    state = opt.init(g)
    state.hyperparams["learning_rate"] = np.float32(0.01)
    updates, state = T.jit(opt.update)(g, state)
    np.testing.assert_allclose(updates["w"], [-0.01, 0.01], rtol=1e-5)  # adam: lr * sign


@needs_optax
def test_inject_hyperparams_with_a_schedule_agrees_with_optax():
    def mk(lib):
        sched = lib.warmup_cosine_decay_schedule(0.0, 0.1, 3, 15, 1e-3)
        return lib.inject_hyperparams(lib.adamw)(learning_rate=sched, weight_decay=1e-2)
    ours = _fit(optim, mk(optim), LOSS, 8, T.jit, T.value_and_grad)
    with _optax_x32():
        theirs = _fit(optax, mk(optax), _loss(jnp), 8, jax.jit, jax.value_and_grad)
    # a schedule leaves two 'learning_rate' entries (the value and the schedule's state):
    # tree_get refuses to choose in both libraries, the hyperparams dict holds the value
    with pytest.raises(KeyError):
        optim.tree_utils.tree_get(ours[1], "learning_rate")
    assert float(ours[1].hyperparams["learning_rate"]) == pytest.approx(
        float(theirs[1].hyperparams["learning_rate"]))
    _same(ours[0], theirs[0])
    _same(ours[1], theirs[1])


# --- gradient accumulation ------------------------------------------------------------------

def test_multisteps_of_k_microbatches_equals_one_big_batch_step():
    k = 4
    big = optim.sgd(0.1, momentum=0.9)
    acc = optim.MultiSteps(optim.sgd(0.1, momentum=0.9), every_k_schedule=k)
    grad = T.jit(T.grad(LOSS))
    p_big, s_big = P0, big.init(P0)
    p_acc, s_acc = P0, acc.init(P0)
    update = T.jit(acc.update)
    for epoch in range(2):
        g, s_big = big.update(grad(p_big, XL, YL), s_big)
        p_big = optim.apply_updates(p_big, g)
        for i in range(k):
            xb, yb = XL[i * 8:(i + 1) * 8], YL[i * 8:(i + 1) * 8]
            u, s_acc = update(grad(p_acc, xb, yb), s_acc, p_acc)
            if i < k - 1:  # between boundaries the updates are zeros
                assert all(not np.asarray(v).any() for v in T.tree.leaves(u))
                assert not bool(acc.has_updated(s_acc))
            p_acc = optim.apply_updates(p_acc, u)
        assert bool(acc.has_updated(s_acc))
        assert_tree_close(p_acc, p_big, rtol=1e-5, atol=1e-6)


@needs_optax
def test_multisteps_agrees_with_optax():
    def mk(lib):
        return lib.MultiSteps(lib.adam(0.05), every_k_schedule=3)
    ours = _fit(optim, mk(optim), LOSS, 7, T.jit, T.value_and_grad)
    with _optax_x32():
        theirs = _fit(optax, mk(optax), _loss(jnp), 7, jax.jit, jax.value_and_grad)
    _same(ours[0], theirs[0])
    _same(ours[1], theirs[1])


# --- frozen parameters and weight-decay masks ------------------------------------------------

NET = {"encoder": {"w": np.ones((2, 2)), "b": np.ones(2)},
       "head": {"w": np.ones((2, 1)), "b": np.ones(1)}}
GRADS = T.tree.map(lambda x: np.full_like(x, 0.5), NET)


def _labels(params):
    return T.tree.map_with_path(
        lambda path, _: "frozen" if path[0].key == "encoder" else "trained", params)


def test_multi_transform_freezes_the_encoder():
    opt = optim.multi_transform({"trained": optim.sgd(0.1), "frozen": optim.set_to_zero()},
                                _labels)
    state = opt.init(NET)
    updates, _ = T.jit(opt.update)(GRADS, state, NET)
    new = optim.apply_updates(NET, updates)
    assert_tree_close(new["encoder"], NET["encoder"])
    assert_tree_close(new["head"], {"w": np.full((2, 1), 0.95), "b": np.full(1, 0.95)})
    # optax.transforms.freeze says the same with a boolean mask
    frozen = optim.chain(optim.sgd(0.1), optim.transforms.freeze(
        {"encoder": True, "head": False}))
    updates, _ = frozen.update(GRADS, frozen.init(NET), NET)
    assert_tree_close(optim.apply_updates(NET, updates), new)


def test_weight_decay_mask_spares_biases():
    mask = lambda p: T.tree.map(lambda x: x.ndim > 1, p)  # noqa: E731
    decayed = optim.adamw(0.1, weight_decay=0.5, mask=mask)
    plain = optim.adam(0.1)
    u_d, _ = decayed.update(GRADS, decayed.init(NET), NET)
    u_p, _ = plain.update(GRADS, plain.init(NET), NET)
    # biases: adam alone (-lr * sign); kernels: also -lr * wd * param
    np.testing.assert_allclose(u_d["head"]["b"], u_p["head"]["b"])
    np.testing.assert_allclose(u_d["head"]["w"], u_p["head"]["w"] - 0.1 * 0.5 * 1.0, rtol=1e-6)
    # the same mask through masked(add_decayed_weights) composed by hand
    hand = optim.chain(optim.scale_by_adam(), optim.masked(optim.add_decayed_weights(0.5), mask),
                       optim.scale_by_learning_rate(0.1))
    assert_tree_close(hand.update(GRADS, hand.init(NET), NET)[0], u_d, rtol=1e-6)


@needs_optax
def test_masks_and_partitions_agree_with_optax():
    def mk(lib, tmap, labels):
        return lib.chain(
            lib.masked(lib.add_decayed_weights(0.1), lambda p: tmap(lambda x: x.ndim > 1, p)),
            lib.multi_transform({"trained": lib.adam(0.05), "frozen": lib.set_to_zero()},
                                labels))
    jlabels = lambda p: jax.tree_util.tree_map_with_path(  # noqa: E731
        lambda path, _: "frozen" if path[0].key == "encoder" else "trained", p)
    ours, theirs = mk(optim, T.tree.map, _labels), mk(optax, jax.tree_util.tree_map, jlabels)
    with jax.enable_x64(True):
        so, st, po, pt = ours.init(NET), theirs.init(NET), NET, NET
        for i in range(3):
            g = T.tree.map(lambda x: x * (i + 1) - 0.3, GRADS)
            uo, so = ours.update(g, so, po)
            ut, st = theirs.update(g, st, pt)
            po, pt = optim.apply_updates(po, uo), optax.apply_updates(pt, ut)
        _same(po, pt, rtol=1e-12)
        _same(so, st, rtol=1e-12)


# --- reduce_on_plateau ------------------------------------------------------------------------

LOSSES = [1.0, 0.8, 0.85, 0.9, 0.95, 0.5, 0.6, 0.7, 0.8]


def _plateau(lib, values, jit):
    opt = lib.chain(lib.sgd(1.0), lib.contrib.reduce_on_plateau(
        factor=0.5, patience=2, cooldown=1, accumulation_size=1))
    g = {"w": np.ones(2, np.float32)}
    state = opt.init(g)
    update = jit(lambda g, s, v: opt.update(g, s, g, value=v))
    scales, updates = [], []
    for v in values:
        u, state = update(g, state, np.float32(v))
        scales.append(float(lib.tree_utils.tree_get(state, "scale")))
        updates.append(float(u["w"][0]))
    return scales, updates


def test_reduce_on_plateau_halves_the_scale_after_patience():
    scales, updates = _plateau(optim, LOSSES, T.jit)
    # 0.8 is the best; 0.85, 0.9 do not improve -> after patience 2 the scale halves;
    # cooldown 1 skips one step; 0.5 improves; 0.6, 0.7 do not -> halves again
    assert scales == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
    np.testing.assert_allclose(updates, -np.array(scales), rtol=1e-7)


@needs_optax
def test_reduce_on_plateau_agrees_with_optax():
    with _optax_x32():
        theirs = _plateau(optax, LOSSES, jax.jit)
    assert _plateau(optim, LOSSES, T.jit) == theirs


# --- L-BFGS with value_and_grad_from_state ------------------------------------------------------

def _rosenbrock(np_mod):
    def f(x):
        return np_mod.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    return f


def _lbfgs_run(lib, np_mod, lax_mod, jit, x0, tol=1e-6, max_iter=100):
    """The tutorial's solver: a while_loop on the L-BFGS state's count and gradient norm."""
    fun = _rosenbrock(np_mod)
    opt = lib.lbfgs()
    value_and_grad = lib.value_and_grad_from_state(fun)
    tu = lib.tree_utils

    def step(carry):
        params, state = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad,
                                    value_fn=fun)
        return lib.apply_updates(params, updates), state

    def keep_going(carry):
        _, state = carry
        count = tu.tree_get(state, "count")
        err = tu.tree_norm(tu.tree_get(state, "grad"))
        return (count == 0) | ((count < max_iter) & (err >= tol))

    return jit(lambda x: lax_mod.while_loop(keep_going, step, (x, opt.init(x))))(x0)


LBFGS_X0 = np.array([-1.2, 1.0, 0.5, -0.3])


@pytest.fixture(scope="module")
def lbfgs_ours():
    return _lbfgs_run(optim, tnp, lax, T.jit, LBFGS_X0)


def test_lbfgs_in_a_while_loop_finds_the_rosenbrock_minimum(lbfgs_ours):
    x, state = lbfgs_ours
    np.testing.assert_allclose(x, np.ones(4), atol=1e-5)
    count = int(optim.tree_utils.tree_get(state, "count"))
    assert 5 < count < 100
    assert float(optim.tree_utils.tree_norm(optim.tree_utils.tree_get(state, "grad"))) < 1e-6
    assert float(optim.tree_utils.tree_get(state, "value")) < 1e-10


@needs_optax
def test_lbfgs_agrees_with_optax(lbfgs_ours):
    with jax.enable_x64(True):
        x, state = _lbfgs_run(optax, jnp, jax.lax, jax.jit, LBFGS_X0)
        count = int(optax.tree_utils.tree_get(state, "count"))
    assert int(optim.tree_utils.tree_get(lbfgs_ours[1], "count")) == count
    np.testing.assert_allclose(lbfgs_ours[0], x, rtol=1e-9)


# --- losses: per-example values, the caller reduces -------------------------------------------

LOGITS = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
LABELS = np.array([0, 1])


def _lse(z):
    return np.log(np.exp(z).sum(axis=-1))


def test_losses_are_per_example_hand_values():
    L = optim.losses
    expect = _lse(LOGITS) - LOGITS[np.arange(2), LABELS]
    np.testing.assert_allclose(L.softmax_cross_entropy_with_integer_labels(LOGITS, LABELS),
                               expect, rtol=1e-12)
    np.testing.assert_allclose(L.softmax_cross_entropy(LOGITS, np.eye(3)[LABELS]), expect,
                               rtol=1e-12)
    pred, target = np.array([[1.0, 2.0], [0.0, -1.0]]), np.array([[0.0, 2.0], [1.0, 1.0]])
    np.testing.assert_allclose(L.squared_error(pred, target), [[1.0, 0.0], [1.0, 4.0]])
    np.testing.assert_allclose(L.l2_loss(pred, target), [[0.5, 0.0], [0.5, 2.0]])  # half
    # huber: quadratic within delta, linear beyond
    np.testing.assert_allclose(L.huber_loss(np.array([0.5, 3.0]), delta=1.0), [0.125, 2.5])
    z, t = np.array([1.5, -0.5]), np.array([1.0, 0.0])
    np.testing.assert_allclose(L.sigmoid_binary_cross_entropy(z, t),
                               [np.log1p(np.exp(-1.5)), np.log1p(np.exp(-0.5))], rtol=1e-12)
    # the mean over the batch is the user's; fnn.losses offers the reductions
    from fnn import losses as fl
    assert float(fl.cross_entropy(LOGITS, LABELS)) == pytest.approx(expect.mean())
    assert float(fl.cross_entropy(LOGITS, LABELS, reduction="sum")) == pytest.approx(
        expect.sum())
    np.testing.assert_allclose(fl.cross_entropy(LOGITS, LABELS, reduction="none"), expect)


def test_sigmoid_losses_gradient_at_a_zero_logit_is_sigmoid_minus_label():
    z, y = np.array([0.0, 0.0, 2.0]), np.array([1.0, 0.0, 1.0])
    g = T.grad(lambda z: optim.losses.sigmoid_binary_cross_entropy(z, y).sum())(z)
    np.testing.assert_allclose(g, [-0.5, 0.5, 1 / (1 + np.exp(-2.0)) - 1], rtol=1e-12)
    # the focal loss with gamma = 0 is the cross-entropy, kink included
    g = T.grad(lambda z: optim.losses.sigmoid_focal_loss(z, y, gamma=0.0).sum())(z)
    np.testing.assert_allclose(g, [-0.5, 0.5, 1 / (1 + np.exp(-2.0)) - 1], rtol=1e-12)


@needs_optax
def test_loss_gradients_at_kinks_agree_with_optax():
    pts = np.array([-3.0, -1.0, 0.0, 1.0, 3.0])
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    cases = [
        lambda L, z: L.sigmoid_binary_cross_entropy(z, y),
        lambda L, z: L.sigmoid_focal_loss(z, y, alpha=0.25),
        lambda L, z: L.huber_loss(z, delta=1.0),
        lambda L, z: L.hinge_loss(z, 2 * y - 1),
        lambda L, z: L.perceptron_loss(z, 2 * y - 1),
        lambda L, z: L.log_cosh(z),
    ]
    with jax.enable_x64(True):
        for case in cases:
            np.testing.assert_allclose(
                T.grad(lambda z: case(optim.losses, z).sum())(pts),
                jax.grad(lambda z: case(optax.losses, z).sum())(pts), atol=1e-12)


@needs_optax
def test_losses_agree_with_optax_in_float32():
    lg = LOGITS.astype(np.float32)
    cases = [
        lambda L: L.softmax_cross_entropy_with_integer_labels(lg, LABELS),
        lambda L: L.softmax_cross_entropy(lg, L.smooth_labels(np.eye(3, dtype=np.float32)[
            LABELS], 0.1)),
        lambda L: L.sigmoid_binary_cross_entropy(lg, (lg > 1).astype(np.float32)),
        lambda L: L.sigmoid_focal_loss(lg, (lg > 1).astype(np.float32), gamma=2.0),
        lambda L: L.huber_loss(lg, np.ones_like(lg), delta=0.5),
        lambda L: L.cosine_distance(lg, np.ones_like(lg)),
        lambda L: L.kl_divergence(np.log(np.full((2, 3), 1 / 3, np.float32)),
                                  np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]], np.float32)),
        lambda L: L.hinge_loss(lg[:, 0], np.array([1.0, -1.0], np.float32)),
    ]
    with _optax_x32():
        for case in cases:
            ours, theirs = case(optim.losses), case(optax.losses)
            assert np.asarray(ours).dtype == np.asarray(theirs).dtype
            np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)


# --- tree_utils ------------------------------------------------------------------------------

def test_tree_utils_hand_values():
    tu = optim.tree_utils
    a = {"x": np.array([1.0, 2.0]), "y": np.array([[3.0]])}
    b = {"x": np.array([0.5, -1.0]), "y": np.array([[2.0]])}
    assert_tree_close(tu.tree_add(a, b), {"x": np.array([1.5, 1.0]), "y": np.array([[5.0]])})
    assert_tree_close(tu.tree_scale(2.0, a), {"x": np.array([2.0, 4.0]),
                                              "y": np.array([[6.0]])})
    assert_tree_close(tu.tree_add_scale(a, -1.0, b), tu.tree_sub(a, b))
    assert float(tu.tree_vdot(a, b)) == pytest.approx(0.5 - 2.0 + 6.0)
    assert float(tu.tree_sum(a)) == 6.0
    assert float(tu.tree_norm(a)) == pytest.approx(np.sqrt(14.0))
    assert float(tu.tree_norm(a, ord=1)) == 6.0
    assert float(tu.tree_norm(a, ord="inf")) == 3.0
    assert tu.tree_size(a) == 3
    assert_tree_close(tu.tree_zeros_like(a), {"x": np.zeros(2), "y": np.zeros((1, 1))})
    # tree_get / tree_set reach into an optimiser state by field name
    state = optim.adam(0.1).init(a)
    assert int(tu.tree_get(state, "count")) == 0
    state = tu.tree_set(state, count=np.int32(5))
    assert int(tu.tree_get(state, "count")) == 5
    assert_tree_close(tu.tree_get(state, "mu"), tu.tree_zeros_like(a))
