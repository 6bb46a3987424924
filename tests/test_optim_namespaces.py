"""fnn.optim's optax namespaces without optax: `losses`, `tree_utils`/`tree`, `projections`,
`second_order`, `schedules.inject_hyperparams`, checked against values computed here by hand
from the published formulas (tests/differential/test_diff_optax_namespaces.py compares them
with optax itself when it is installed)."""
import math

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from fnn import optim
from fnn.optim import losses as L


def close(a, b, rtol=1e-6, atol=1e-7):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ---------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------

def test_losses_reachable_under_optax_names():
    for name in ("softmax_cross_entropy", "l2_loss", "huber_loss", "sigmoid_focal_loss",
                 "smooth_labels", "ntxent", "ctc_loss", "generalized_kl_divergence"):
        assert getattr(optim, name) is getattr(L, name)
    assert L.softmax_cross_entropy is __import__("fnn").losses.softmax_cross_entropy


def test_sigmoid_focal_loss_formula():
    x = np.array([-2.0, 0.5, 3.0, 0.0])
    z = np.array([1.0, 0.0, 1.0, 0.3])
    p = sigmoid(x)
    ce = -z * np.log(p) - (1 - z) * np.log(1 - p)
    one_minus_pt = (1 - z) * p + z * (1 - p)
    close(L.sigmoid_focal_loss(x, z, gamma=1.5), ce * one_minus_pt ** 1.5, rtol=1e-12)
    close(L.sigmoid_focal_loss(x, z, alpha=0.25),
          (0.25 * z + 0.75 * (1 - z)) * ce * one_minus_pt ** 2, rtol=1e-12)
    # extreme logits stay finite (no inf * 0)
    v = L.sigmoid_focal_loss(np.array([80.0, -80.0]), np.array([0.0, 1.0]))
    assert np.all(np.isfinite(v)) and np.all(np.asarray(v) > 70)


def test_margin_losses():
    s = np.array([[1.0, 3.0, 2.0], [0.5, -1.0, 0.2]])
    lab = np.array([2, 0])
    close(L.multiclass_hinge_loss(s, lab), [max(2.0, 4.0, 2.0) - 2.0, max(0.5, 0.0, 1.2) - 0.5])
    close(L.multiclass_perceptron_loss(s, lab), [1.0, 0.0])
    close(L.perceptron_loss(np.array([0.5, -2.0]), np.array([-1.0, -1.0])), [0.5, 0.0])
    close(L.sparsemax_loss(np.array([-2.0, 0.0, 2.0]), np.array([1, 1, 0])),
          [2.0, 0.25, 2.0])
    # multiclass sparsemax: a dominant correct score gives 0, a tie gives 1/4 (p = [1/2, 1/2])
    close(L.multiclass_sparsemax_loss(np.array([[5.0, 0.0], [1.0, 1.0]]), np.array([0, 0])),
          [0.0, 0.25])


def test_kl_variants_and_smoothing():
    p = np.array([0.2, 0.3, 0.5])
    q = np.array([0.1, 0.6, 0.3])
    kl = np.sum(q * (np.log(q) - np.log(p)))
    close(L.kl_divergence_with_log_targets(np.log(p), np.log(q)), kl, rtol=1e-12)
    t = np.array([0.5, 1.0, 0.25])
    close(L.generalized_kl_divergence(np.log(p), t),
          np.sum(t * (np.log(t) - np.log(p))) + np.sum(p - t), rtol=1e-12)
    close(L.convex_kl_divergence(np.log(p), t), L.generalized_kl_divergence(np.log(p), t))
    close(L.smooth_labels(np.array([[0.0, 1.0, 0.0, 0.0]]), 0.2), [[0.05, 0.85, 0.05, 0.05]])


def test_triplet_and_ntxent():
    a, p, n = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]), np.array([[1.0, 0.0]])
    close(L.triplet_margin_loss(a, p, n, margin=0.5, eps=0.0), [5.0 - 1.0 + 0.5])
    e = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    lab = np.array([0, 0, 1])
    c = np.array([[1, 1 / math.sqrt(2), 0], [1 / math.sqrt(2), 1, 1 / math.sqrt(2)],
                  [0, 1 / math.sqrt(2), 1]]) / 0.5
    # the pairs (0, 1) and (1, 0): the positive against the one negative of its row
    l01 = -(c[0, 1] - np.log(np.exp(c[0, 1]) + np.exp(c[0, 2])))
    l10 = -(c[1, 0] - np.log(np.exp(c[1, 0]) + np.exp(c[1, 2])))
    close(L.ntxent(e, lab, temperature=0.5), (l01 + l10) / 2, rtol=1e-6)


def test_dice_losses():
    probs = np.array([[[0.8, 0.2], [0.4, 0.6]]])          # [batch, pixels, classes]
    tgt = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    i = (probs * tgt).sum(1)
    dice = 1 - (i + 1.0) / (i + 0.5 * (probs.sum(1) - i) + 0.5 * (tgt.sum(1) - i) + 1.0)
    close(L.dice_loss(probs, tgt, apply_softmax=False), dice.mean(-1), rtol=1e-12)
    close(L.dice_loss(probs, tgt, apply_softmax=False, reduction="none",
                      ignore_background=True), dice[:, 1:], rtol=1e-12)
    with pytest.raises(ValueError, match="sum to 1"):
        L.dice_loss(probs * 2, tgt, apply_softmax=False)
    x = np.array([[0.3, -1.0, 2.0]])
    t = np.array([[1.0, 0.0, 1.0]])
    s = sigmoid(x)
    i = (s * t).sum()
    close(L.binary_dice_loss(x, t), 1 - (i + 1) / (0.5 * s.sum() + 0.5 * t.sum() + 1),
          rtol=1e-12)


def test_ranking_softmax_loss():
    x = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 5.0]])
    y = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    lsm = x - np.log(np.exp(x).sum(-1, keepdims=True))
    per = -(y * lsm).sum(-1)
    close(L.ranking_softmax_loss(x, y), per.mean(), rtol=1e-12)
    close(L.ranking_softmax_loss(x, y, reduce_fn=None), per, rtol=1e-12)
    where = np.array([[True, True, False], [False, False, False]])
    x0 = x[0, :2] - np.log(np.exp(x[0, :2]).sum())
    close(L.ranking_softmax_loss(x, y, where=where), -(y[0, :2] * x0).sum(), rtol=1e-12)


def test_ctc_loss_brute_force():
    """CTC against the sum over every alignment, enumerated."""
    import itertools
    rng = np.random.default_rng(0)
    T_, K = 4, 3
    logits = rng.normal(size=(1, T_, K))
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    labels = np.array([[1, 1]])

    def collapse(path):
        out = []
        prev = None
        for s in path:
            if s != prev and s != 0:
                out.append(s)
            prev = s
        return out
    total = sum(np.exp(sum(logp[0, t, s] for t, s in enumerate(path)))
                for path in itertools.product(range(K), repeat=T_) if collapse(path) == [1, 1])
    ours = L.ctc_loss(logits, np.zeros((1, T_)), labels, np.zeros((1, 2)))
    close(ours, [-np.log(total)], rtol=1e-6)
    # a padded frame at the end changes nothing for a shorter sequence
    lg = np.concatenate([logits, rng.normal(size=(1, 1, K))], axis=1)
    close(L.ctc_loss(lg, np.array([[0, 0, 0, 0, 1.0]]), labels, np.zeros((1, 2))), ours,
          rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# tree utilities
# ---------------------------------------------------------------------------------------------

A = {"w": np.array([[1.0, -2.0], [3.0, 0.5]], np.float32), "b": np.array([-4.0], np.float32)}
B = {"w": np.array([[2.0, 2.0], [1.0, 4.0]], np.float32), "b": np.array([0.5], np.float32)}


def test_tree_arithmetic():
    t = optim.tree
    close(t.add(A, B, A)["w"], 2 * A["w"] + B["w"])
    close(t.sub(A, B)["b"], [-4.5])
    close(t.mul(A, B)["w"], A["w"] * B["w"])
    close(t.div(A, B)["b"], [-8.0])
    close(t.add_scale(A, 0.5, B)["w"], A["w"] + 0.5 * B["w"])
    assert t.add_scale(A, 0.5, B)["w"].dtype == np.float32
    close(t.vdot(A, B), 2 - 4 + 3 + 2 - 2)
    close(t.sum(A), -1.5)
    close(t.max(A), 3.0)
    close(t.min(A), -4.0)
    assert t.size(A) == 5
    close(t.norm(A), math.sqrt(1 + 4 + 9 + 0.25 + 16), rtol=1e-6)
    close(t.norm(A, squared=True), 30.25)
    close(t.norm(A, ord=1), 10.5)
    close(t.norm(A, ord="inf"), 4.0)
    with pytest.raises(ValueError, match="ord"):
        t.norm(A, ord=3)
    close(t.clip(A, -1.0, 1.0)["w"], [[1.0, -1.0], [1.0, 0.5]])
    close(t.where(np.bool_(True), A, B)["b"], [-4.0])
    assert bool(t.allclose(A, A)) and not bool(t.allclose(A, B))
    assert t.batch_shape(A, (3,))["w"].shape == (3, 2, 2)
    close(t.full_like(A, 7.0)["b"], [7.0])
    assert t.ones_like(A, dtype=np.int32)["w"].dtype == np.int32
    close(t.update_moment_per_elem_norm(A, B, 0.5, 1)["b"], [0.5 * -4.0 + 0.5 * 0.5])
    close(t.bias_correction(A, 0.5, np.int32(1))["b"], [-8.0])


def test_tree_dtype_and_casts():
    t = optim.tree
    assert t.dtype(A) == np.float32
    mixed = {"a": np.zeros(2, np.float16), "b": np.zeros(1, np.float32)}
    with pytest.raises(ValueError, match="float16"):
        t.dtype(mixed)
    assert t.dtype(mixed, "promote") == np.float32
    assert t.dtype(mixed, "lowest") == np.float16
    assert t.dtype(mixed, "highest") == np.float32
    assert t.cast(A, np.float16)["w"].dtype == np.float16
    assert t.cast_like(A, mixed)["a"].dtype if False else True
    assert t.cast_like({"a": A["b"], "b": A["b"]}, mixed)["a"].dtype == np.float16


def test_tree_random_like_one_key_per_leaf():
    key = T.random.PRNGKey(0)
    r = optim.tree.random_like(key, A)
    keys = T.random.split(key, 2)
    # leaves in key order: "b" before "w"
    close(r["b"], T.random.normal(keys[0], (1,), np.float32))
    close(r["w"], T.random.normal(keys[1], (2, 2), np.float32))


def test_tree_get_set_and_map_params():
    opt = optim.chain(optim.add_decayed_weights(1e-3),
                      optim.inject_hyperparams(optim.adam)(learning_rate=0.1))
    state = opt.init(A)
    close(optim.tree.get(state, "learning_rate"), 0.1)
    with pytest.raises(KeyError, match="count"):
        optim.tree.get(state, "count")
    assert optim.tree.get(state, "nothing", default=3) == 3
    new = optim.tree.set(state, learning_rate=np.float32(0.5))
    close(optim.tree.get(new, "learning_rate"), 0.5)
    u, _ = opt.update(A, new, A)
    u_ref, _ = optim.chain(optim.add_decayed_weights(1e-3), optim.adam(0.5)).update(
        A, optim.chain(optim.add_decayed_weights(1e-3), optim.adam(0.5)).init(A), A)
    # float32 hyperparameters (b2 as an array) round 1 - b2 differently: 1e-5, not 1e-7
    close(u["w"], u_ref["w"], rtol=2e-5)
    with pytest.raises(KeyError, match="nothing"):
        optim.tree.set(state, nothing=1)
    paths = optim.tree.get_all_with_path(state, "mu")
    assert [str(k) for k in paths[0][0]] == ["[1]", "InjectStatefulHyperparamsState.inner_state",
                                           "[0]", "ScaleByAdamState.mu"]
    adam = optim.adam(0.1)
    st = adam.init(A)
    mapped = optim.tree_map_params(adam, lambda x: x + 1.0, st)
    close(mapped[0].mu["w"], np.ones((2, 2)))
    assert int(mapped[0].count) == 0      # not a parameter tree: untouched


# ---------------------------------------------------------------------------------------------
# projections, second order
# ---------------------------------------------------------------------------------------------

def test_projections():
    P = optim.projections
    x = {"a": np.array([0.5, -1.0]), "b": np.array([2.0])}
    close(P.projection_non_negative(x)["a"], [0.5, 0.0])
    close(P.projection_box(x, -0.5, 1.0)["b"], [1.0])
    close(P.projection_hypercube(x)["a"], [0.5, 0.0])
    s = P.projection_simplex({"v": np.array([0.5, 0.1, 1.4])})["v"]
    close(s, [0.05, 0.0, 0.95], rtol=1e-12)             # tau = 0.45
    close(P.projection_l1_sphere({"v": np.array([0.5, -0.1, -1.4])})["v"], [0.05, 0.0, -0.95])
    close(P.projection_l1_ball({"v": np.array([0.2, -0.3])})["v"], [0.2, -0.3])
    close(P.projection_l2_sphere({"v": np.array([3.0, 4.0])})["v"], [0.6, 0.8])
    close(P.projection_l2_ball({"v": np.array([0.3, 0.4])})["v"], [0.3, 0.4])
    close(P.projection_l2_ball({"v": np.array([3.0, 4.0])}, 2.0)["v"], [1.2, 1.6])
    close(P.projection_linf_ball(x)["b"], [1.0])
    a = {"a": np.array([1.0, 0.0]), "b": np.array([0.0])}
    close(P.projection_vector(x, a)["a"], [0.5, 0.0])
    close(P.projection_hyperplane(x, a, 2.0)["a"], [2.0, -1.0])
    close(P.projection_halfspace(x, a, 2.0)["a"], [0.5, -1.0])     # already inside
    close(P.projection_halfspace(x, a, 0.0)["a"], [0.0, -1.0])


def test_projection_simplex_gradient():
    # d/dv sum(w * proj(v)): on the support S, w_i - mean_S(w); zero off it
    w = np.array([1.0, 2.0, 3.0])
    g = T.grad(lambda v: tnp.sum(w * optim.projections.projection_simplex(v)))(
        np.array([0.5, 0.1, 1.4]))
    close(g, [-1.0, 0.0, 1.0], atol=1e-12)


def test_second_order():
    def loss(p, x, y):
        return tnp.sum((x @ p["w"] - y) ** 2)
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    y = np.array([0.5, 1.0])
    p = {"w": np.array([0.1, -0.2])}
    H = 2 * x.T @ x
    close(optim.second_order.hvp(loss, np.array([1.0, 2.0]), p, x, y)["w"],
          H @ [1.0, 2.0])
    close(optim.second_order.hessian_diag(loss, p, x, y), np.diag(H))
    g = 2 * x.T @ (x @ p["w"] - y)
    close(optim.second_order.fisher_diag(loss, p, x, y), g ** 2)


# ---------------------------------------------------------------------------------------------
# inject_hyperparams' state layout
# ---------------------------------------------------------------------------------------------

def test_inject_hyperparams_wraps_schedules_with_a_count():
    sched = optim.linear_schedule(1.0, 0.0, 4)
    opt = optim.schedules.inject_hyperparams(optim.sgd)(learning_rate=sched)
    st = opt.init(A)
    assert isinstance(st, optim.InjectStatefulHyperparamsState)
    assert set(st.hyperparams_states) == {"learning_rate"}
    assert int(st.hyperparams_states["learning_rate"].count) == 0
    seen = []
    for _ in range(3):
        u, st = opt.update(A, st, A)
        seen.append(float(u["b"][0]) / 4.0)       # -lr * g with g = -4
    close(seen, [1.0, 0.75, 0.5])
    assert int(st.hyperparams_states["learning_rate"].count) == 3
    assert optim.inject_stateful_hyperparams is not None
    with pytest.raises(ValueError, match="static_args"):
        optim.inject_hyperparams(optim.sgd, static_args=("nope",))


def test_namespaces_work_under_jit():
    x = np.array([[0.5, -1.0, 2.0], [0.1, 0.2, 0.3]], np.float32)
    lab = np.array([2, 0], np.int32)
    f = T.jit(lambda a: (L.multiclass_sparsemax_loss(a, lab), optim.tree.max({"a": a}),
                         optim.projections.projection_l1_ball({"a": a}, 1.0)["a"],
                         L.dice_loss(a[None], np.eye(3, dtype=np.float32)[None, :2])))
    for got, want in zip(f(x), (L.multiclass_sparsemax_loss(x, lab), optim.tree.max({"a": x}),
                                optim.projections.projection_l1_ball({"a": x}, 1.0)["a"],
                                L.dice_loss(x[None], np.eye(3, dtype=np.float32)[None, :2]))):
        close(got, want, rtol=1e-6, atol=1e-7)
