"""Differential tests: the optax namespaces fnn.optim re-creates (`losses`, `tree_utils`/
`tree`, `projections`, `second_order`) against optax itself, float32."""
import pytest

optax = pytest.importorskip("optax")
jax = pytest.importorskip("jax")

import numpy as np  # noqa: E402

import fnn.optim as fo  # noqa: E402
from _state_layout import skeleton  # noqa: E402

jnp = jax.numpy


@pytest.fixture(autouse=True)
def _jax_x32():
    with jax.enable_x64(False):
        yield


def _close(what, ours, theirs, rtol=1e-5, atol=1e-6):
    lo, lt = jax.tree.leaves(ours), jax.tree.leaves(theirs)
    assert len(lo) == len(lt), f"{what}: {len(lo)} leaves vs optax {len(lt)}"
    for a, b in zip(lo, lt):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, f"{what}: shape {a.shape} vs optax {b.shape}"
        if not np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True):
            raise AssertionError(f"{what}:\nours ={a!r}\noptax={b!r}")


def _inputs(rng):
    x = rng.normal(size=(5, 4)).astype(np.float32)
    y = rng.normal(size=(5, 4)).astype(np.float32)
    p = np.exp(y) / np.exp(y).sum(-1, keepdims=True)
    lab = rng.integers(0, 4, size=5).astype(np.int32)
    return x, y, p.astype(np.float32), lab


def _seg(rng):
    logits = rng.normal(size=(2, 3, 3, 4)).astype(np.float32)
    t = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(2, 3, 3))]
    return logits, t


def _ctc(rng):
    logits = rng.normal(size=(2, 6, 5)).astype(np.float32)
    lp = np.zeros((2, 6), np.float32)
    lp[1, 4:] = 1.0
    labels = np.array([[1, 2, 2], [3, 1, 0]], np.int32)
    labp = np.array([[0, 0, 0], [0, 0, 1]], np.float32)
    return logits, lp, labels, labp


LOSSES = {
    "sigmoid_focal_loss": lambda m, r: m.sigmoid_focal_loss(
        _inputs(r)[0], (_inputs(r)[1] > 0).astype(np.float32), alpha=0.3, gamma=1.5),
    "sigmoid_focal_loss_soft": lambda m, r: m.sigmoid_focal_loss(
        _inputs(r)[0], _inputs(r)[2]),
    "smooth_labels": lambda m, r: m.smooth_labels(_inputs(r)[2], 0.1),
    "hinge_loss": lambda m, r: m.hinge_loss(_inputs(r)[0], np.sign(_inputs(r)[1])),
    "perceptron_loss": lambda m, r: m.perceptron_loss(_inputs(r)[0], np.sign(_inputs(r)[1])),
    "multiclass_hinge_loss": lambda m, r: m.multiclass_hinge_loss(_inputs(r)[0],
                                                                  _inputs(r)[3]),
    "multiclass_perceptron_loss": lambda m, r: m.multiclass_perceptron_loss(_inputs(r)[0],
                                                                            _inputs(r)[3]),
    "multiclass_sparsemax_loss": lambda m, r: m.multiclass_sparsemax_loss(_inputs(r)[0],
                                                                          _inputs(r)[3]),
    "sparsemax_loss": lambda m, r: m.sparsemax_loss(_inputs(r)[0],
                                                    (_inputs(r)[1] > 0).astype(np.int32)),
    "kl_divergence_with_log_targets": lambda m, r: m.kl_divergence_with_log_targets(
        np.log(_inputs(r)[2]), np.log(_inputs(r)[2][::-1])),
    "generalized_kl_divergence": lambda m, r: m.generalized_kl_divergence(
        _inputs(r)[0] * 0.3, np.abs(_inputs(r)[1])),
    "convex_kl_divergence": lambda m, r: m.convex_kl_divergence(
        np.log(_inputs(r)[2]), _inputs(r)[2][::-1]),
    "triplet_margin_loss": lambda m, r: m.triplet_margin_loss(*_inputs(r)[:2],
                                                              _inputs(r)[0][::-1], margin=0.5),
    "ntxent": lambda m, r: m.ntxent(_inputs(r)[0], np.array([0, 1, 0, 1, 1], np.int32),
                                    temperature=0.5),
    "dice_loss": lambda m, r: m.dice_loss(*_seg(r), alpha=0.3, beta=0.7),
    "dice_loss_weighted": lambda m, r: m.dice_loss(*_seg(r), class_weights=np.arange(
        1.0, 5.0, dtype=np.float32), reduction="sum", ignore_background=True),
    "binary_dice_loss": lambda m, r: m.binary_dice_loss(_seg(r)[0][..., 0],
                                                        _seg(r)[1][..., 0]),
    "multiclass_generalized_dice_loss": lambda m, r: m.multiclass_generalized_dice_loss(
        *_seg(r)),
    "ranking_softmax_loss": lambda m, r: m.ranking_softmax_loss(
        _inputs(r)[0], (_inputs(r)[1] > 0.5).astype(np.float32)),
    "ranking_softmax_loss_where": lambda m, r: m.ranking_softmax_loss(
        _inputs(r)[0], (_inputs(r)[1] > 0).astype(np.float32),
        where=np.array([[1, 1, 0, 1]] * 4 + [[0, 0, 0, 0]], bool)),
    "ctc_loss": lambda m, r: m.ctc_loss(*_ctc(r)),
    "ctc_loss_with_forward_probs": lambda m, r: m.ctc_loss_with_forward_probs(
        *_ctc(r), blank_id=2),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_matches_optax(name):
    ours = LOSSES[name](fo.losses, np.random.default_rng(3))
    theirs = LOSSES[name](optax.losses, np.random.default_rng(3))
    _close(f"losses.{name}", ours, theirs)


def test_losses_namespace_covers_optax_losses():
    missing = sorted(n for n in dir(optax.losses) if not n.startswith("_")
                     and not hasattr(fo.losses, n))
    assert missing == ["make_fenchel_young_loss"], missing
    top = sorted(n for n in dir(optax.losses) if not n.startswith("_") and hasattr(optax, n)
                 and not hasattr(fo, n))
    assert not top, f"optax.X losses missing at optim.X: {top}"


def test_loss_gradients_match_optax():
    rng = np.random.default_rng(4)
    x, y, p, lab = _inputs(rng)
    for name, f in [("sigmoid_focal_loss", lambda m, a: m.sigmoid_focal_loss(a, p).sum()),
                    ("multiclass_sparsemax_loss",
                     lambda m, a: m.multiclass_sparsemax_loss(a, lab).sum()),
                    ("ntxent", lambda m, a: m.ntxent(a, np.array([0, 1, 0, 1, 1]), 0.5)),
                    ("ctc_loss", None)]:
        if f is None:
            args = _ctc(rng)
            ours = fo_grad(lambda a: fo.losses.ctc_loss(a, *args[1:]).sum(), args[0])
            theirs = jax.grad(lambda a: optax.losses.ctc_loss(a, *args[1:]).sum())(args[0])
        else:
            ours = fo_grad(lambda a: f(fo.losses, a), x)
            theirs = jax.grad(lambda a: f(optax.losses, a))(x)
        _close(f"grad of {name}", ours, theirs, rtol=1e-4, atol=1e-5)


def fo_grad(f, x):
    import transforms as T
    return T.grad(f)(x)


# ---------------------------------------------------------------------------------------------
# tree utilities
# ---------------------------------------------------------------------------------------------

def _trees(rng):
    a = {"w": rng.normal(size=(3, 2)).astype(np.float32), "b": (rng.normal(size=(2,)).astype(
        np.float32), np.float32(rng.normal()))}
    b = jax.tree.map(lambda x: np.asarray(rng.normal(size=np.shape(x)), np.float32) + 2.0, a)
    return a, b


TREE = {
    "add": lambda m, a, b: m.add(a, b, a),
    "sub": lambda m, a, b: m.sub(a, b),
    "mul": lambda m, a, b: m.mul(a, b),
    "div": lambda m, a, b: m.div(a, b),
    "scale": lambda m, a, b: m.scale(np.float32(0.3), a),
    "add_scale": lambda m, a, b: m.add_scale(a, 0.7, b),
    "vdot": lambda m, a, b: m.vdot(a, b),
    "sum": lambda m, a, b: m.sum(a),
    "max": lambda m, a, b: m.max(a),
    "min": lambda m, a, b: m.min(a),
    "size": lambda m, a, b: np.asarray(m.size(a)),
    "norm": lambda m, a, b: m.norm(a),
    "norm_sq": lambda m, a, b: m.norm(a, squared=True),
    "norm_1": lambda m, a, b: m.norm(a, ord=1),
    "norm_inf": lambda m, a, b: m.norm(a, ord="inf"),
    "norm_inf_sq": lambda m, a, b: m.norm(a, ord=np.inf, squared=True),
    "zeros_like": lambda m, a, b: m.zeros_like(a),
    "ones_like": lambda m, a, b: m.ones_like(a, dtype=np.int32),
    "full_like": lambda m, a, b: m.full_like(a, 2.5),
    "where": lambda m, a, b: m.where(np.asarray(False), a, b),
    "clip": lambda m, a, b: m.clip(a, -0.5, 0.4),
    "clip_lo": lambda m, a, b: m.clip(a, min_value=0.1),
    "cast": lambda m, a, b: m.cast(a, np.float16),
    "cast_like": lambda m, a, b: m.cast_like(a, m.cast(b, np.float16)),
    "real": lambda m, a, b: m.real(a),
    "conj": lambda m, a, b: m.conj(a),
    "batch_shape": lambda m, a, b: m.batch_shape(a, (2,)),
    "allclose": lambda m, a, b: m.allclose(a, m.add_scale(a, 1e-7, b)),
    "allclose_no": lambda m, a, b: m.allclose(a, b),
    "bias_correction": lambda m, a, b: m.bias_correction(a, 0.9, np.int32(3)),
    "update_moment": lambda m, a, b: m.update_moment(a, b, 0.9, 2),
    "update_moment_per_elem_norm": lambda m, a, b: m.update_moment_per_elem_norm(a, b, 0.9, 1),
    "update_infinity_moment": lambda m, a, b: m.update_infinity_moment(a, b, 0.9, 1e-3),
}


@pytest.mark.parametrize("name", sorted(TREE))
def test_tree_function_matches_optax(name):
    a, b = _trees(np.random.default_rng(5))
    ours, theirs = TREE[name](fo.tree, a, b), TREE[name](optax.tree, a, b)
    _close(f"tree.{name}", ours, theirs)
    for x, y in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        assert np.asarray(x).dtype == np.asarray(y).dtype, f"tree.{name} dtype"


def test_tree_namespaces_cover_optax():
    for ours, theirs in [(fo.tree, optax.tree), (fo.tree_utils, optax.tree_utils)]:
        missing = sorted(n for n in dir(theirs) if not n.startswith("_")
                         and not hasattr(ours, n) and n not in ("functools", "typing"))
        assert not missing, missing
    a, _ = _trees(np.random.default_rng(0))
    assert fo.tree.dtype(a) == optax.tree.dtype(a)
    # floats only: ints promote as NumPy does here (int32 + float16 -> float64), not as JAX
    mixed = {"a": np.float16(1), "b": np.float32(1), "c": np.float16(2)}
    for h in ("promote", "highest", "lowest"):
        assert fo.tree.dtype(mixed, h) == optax.tree.dtype(mixed, h), h


def test_tree_get_set_match_optax():
    p = {"w": np.ones((2, 2), np.float32), "b": np.zeros(2, np.float32)}
    for lib in (fo, optax):
        opt = lib.chain(lib.add_decayed_weights(1e-3), lib.inject_hyperparams(lib.adam)(
            learning_rate=0.1))
        st = opt.init(p)
        if lib is fo:
            ours = st
        else:
            theirs = st
    _close("learning_rate", fo.tree.get(ours, "learning_rate"),
           optax.tree.get(theirs, "learning_rate"))
    for lib, st in ((fo, ours), (optax, theirs)):   # two counts: ambiguous in both
        with pytest.raises(KeyError):
            lib.tree.get(st, "count")
    adam_only = lambda path, v: "ScaleByAdamState" in str(path[-1])  # noqa: E731
    _close("count", fo.tree.get(ours, "count", filtering=adam_only),
           optax.tree.get(theirs, "count", filtering=adam_only))
    new_o = fo.tree.set(ours, learning_rate=np.float32(0.5))
    new_t = optax.tree.set(theirs, learning_rate=jnp.float32(0.5))
    _close("set", new_o, new_t)
    po = [str(k) for k in fo.tree.get_all_with_path(ours, "mu")[0][0]]
    pt = [str(k) for k in optax.tree.get_all_with_path(theirs, "mu")[0][0]]
    assert po == pt, (po, pt)
    mu_o = fo.tree.map_params(fo.adam(0.1), lambda x: x + 1, fo.adam(0.1).init(p))
    mu_t = optax.tree.map_params(optax.adam(0.1), lambda x: x + 1, optax.adam(0.1).init(p))
    _close("map_params", mu_o, mu_t)


# ---------------------------------------------------------------------------------------------
# projections and second order
# ---------------------------------------------------------------------------------------------

PROJ = {
    "projection_non_negative": lambda m, a, b: m.projection_non_negative(a),
    # optax's box takes bounds shaped as the tree (scalars only for a one-array tree)
    "projection_box": lambda m, a, b: m.projection_box(a, m.projection_non_negative(b),
                                                       m.projection_non_negative(b)),
    "projection_box_scalar": lambda m, a, b: m.projection_box(a["w"], -0.3, 0.2),
    "projection_hypercube": lambda m, a, b: m.projection_hypercube(a["w"], 0.5),
    "projection_simplex": lambda m, a, b: m.projection_simplex(a, 2.0),
    "projection_l1_sphere": lambda m, a, b: m.projection_l1_sphere(a, 1.5),
    "projection_l1_ball": lambda m, a, b: m.projection_l1_ball(a, 1.5),
    "projection_l1_ball_inside": lambda m, a, b: m.projection_l1_ball(a, 100.0),
    "projection_l2_sphere": lambda m, a, b: m.projection_l2_sphere(a, 1.5),
    "projection_l2_ball": lambda m, a, b: m.projection_l2_ball(a, 1.5),
    "projection_linf_ball": lambda m, a, b: m.projection_linf_ball(a, 0.5),
    "projection_vector": lambda m, a, b: m.projection_vector(a, b),
    "projection_hyperplane": lambda m, a, b: m.projection_hyperplane(a, b, 0.5),
    "projection_halfspace": lambda m, a, b: m.projection_halfspace(a, b, -0.5),
}


@pytest.mark.parametrize("name", sorted(PROJ))
def test_projection_matches_optax(name):
    a, b = _trees(np.random.default_rng(6))
    _close(name, PROJ[name](fo.projections, a, b), PROJ[name](optax.projections, a, b))


def test_projections_namespace_covers_optax():
    assert {n for n in dir(optax.projections) if not n.startswith("_")} <= set(PROJ)


def test_second_order_matches_optax():
    import warnings
    rng = np.random.default_rng(7)
    params = {"w": rng.normal(size=(3, 2)).astype(np.float32),
              "b": rng.normal(size=(2,)).astype(np.float32)}
    x = rng.normal(size=(4, 3)).astype(np.float32)
    y = rng.normal(size=(4, 2)).astype(np.float32)

    def loss(lib):
        return lambda p, a, t: lib.sum(lib.tanh(a @ p["w"] + p["b"]) - t) ** 2 / 4
    v = rng.normal(size=(8,)).astype(np.float32)
    import transforms.numpy as tnp
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _close("hvp", fo.second_order.hvp(loss(tnp), v, params, x, y),
               optax.second_order.hvp(loss(jnp), v, params, x, y), rtol=1e-4)
        _close("hessian_diag", fo.second_order.hessian_diag(loss(tnp), params, x, y),
               optax.second_order.hessian_diag(loss(jnp), params, x, y), rtol=1e-4)
        _close("fisher_diag", fo.second_order.fisher_diag(loss(tnp), params, x, y),
               optax.second_order.fisher_diag(loss(jnp), params, x, y), rtol=1e-4)



def test_inject_hyperparams_state_matches_optax():
    p = {"w": np.ones((2, 2), np.float32), "b": np.zeros(2, np.float32)}
    states = []
    for lib in (fo, optax):
        opt = lib.inject_hyperparams(lib.adam)(
            learning_rate=lib.linear_schedule(0.1, 0.01, 4), b1=0.8)
        st = opt.init(p)
        for i in range(3):
            _, st = opt.update(jax.tree.map(lambda x: x + i, p), st, p)
        states.append(st)
    assert skeleton(states[0]) == skeleton(states[1])
    _close("inject state", states[0], states[1])
