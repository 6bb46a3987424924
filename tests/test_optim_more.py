"""fnn.optim's optimisers and transformations beyond the Adam family, without optax: the
first step(s) computed here by hand from the published formulas, the states' optax field
names (they are the paths in checkpoints), and `update` under `transforms.jit`
(tests/differential/test_diff_optax_more.py compares them with optax itself)."""
import math

import numpy as np
import pytest

import transforms as T
from fnn import optim

P = {"w": np.array([[1.0, -2.0], [0.5, 3.0]]), "b": np.array([0.25, -1.0])}
G = {"w": np.array([[0.5, 1.0], [-2.0, 0.1]]), "b": np.array([-0.3, 0.7])}


def close(a, b, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def first(opt, g=G, p=P, **kw):
    st = opt.init(p)
    return opt.update(g, st, p, **kw)


def gnorm(t):
    return math.sqrt(sum(float(np.sum(np.square(x))) for x in t.values()))


def test_adadelta_first_step():
    rho, eps, lr = 0.9, 1e-6, 0.5
    u, st = first(optim.adadelta(lr, rho=rho, eps=eps))
    for k in G:
        eg = (1 - rho) * G[k] ** 2
        step = math.sqrt(eps) / np.sqrt(eg + eps) * G[k]
        close(u[k], -lr * step)
        close(st[1].e_x[k], (1 - rho) * step ** 2)
    assert type(st[1]).__name__ == "ScaleByAdaDeltaState" and st[1]._fields == ("e_g", "e_x")


def test_adan_first_step():
    b1, b2, b3, eps, eps_root = 0.98, 0.92, 0.99, 1e-8, 1e-8
    u, st = first(optim.adan(0.1))
    for k in G:
        # first step: no difference term, every moment debiased back to g (resp. g^2)
        m_hat, n_hat = G[k], G[k] ** 2
        close(u[k], -0.1 * m_hat / (np.sqrt(n_hat + eps_root) + eps), rtol=1e-9)
    assert st[0]._fields == ("m", "v", "n", "g", "t") and int(st[0].t) == 1


def test_novograd_two_steps():
    b1, b2, eps, wd = 0.9, 0.25, 1e-6, 0.01
    opt = optim.novograd(0.1, b1=b1, b2=b2, eps=eps, weight_decay=wd)
    st = opt.init(P)
    u1, st = opt.update(G, st, P)
    G2 = {k: 2 * v for k, v in G.items()}
    u2, st = opt.update(G2, st, P)
    for k in G:
        nu1 = np.sum(G[k] ** 2)
        m1 = G[k] / (np.sqrt(nu1) + eps) + wd * P[k]
        close(u1[k], -0.1 * m1)
        nu2 = b2 * nu1 + (1 - b2) * np.sum(G2[k] ** 2)
        m2 = b1 * m1 + G2[k] / (np.sqrt(nu2) + eps) + wd * P[k]
        close(u2[k], -0.1 * m2)
    assert st[0]._fields == ("count", "mu", "nu") and np.shape(st[0].nu["w"]) == ()


def test_rprop_steps_lag_one_update():
    opt = optim.rprop(0.1, eta_minus=0.5, eta_plus=1.2)
    st = opt.init(P)
    u1, st = opt.update(G, st, P)
    close(u1["w"], np.zeros((2, 2)))          # optax emits the previous signed step: none yet
    close(st[0].prev_updates["w"], 0.1 * np.sign(G["w"]))
    G2 = {"w": G["w"] * np.array([[1.0, -1.0], [1.0, 1.0]]), "b": G["b"]}
    u2, st = opt.update(G2, st, P)
    close(u2["w"], -0.1 * np.sign(G["w"]) * np.array([[1, 0], [1, 1]]))
    close(st[0].step_sizes["w"], [[0.12, 0.05], [0.12, 0.12]])


def test_sm3_first_step():
    u, st = first(optim.sm3(0.1, momentum=0.9))
    a = G["w"] ** 2                        # b2 = 1: accumulator = g^2 + min(0, 0)
    close(u["w"], -0.1 * 0.1 * G["w"] / np.sqrt(a + 1e-8))
    close(st[0].mu["w"][0], a.max(axis=1))
    close(st[0].mu["w"][1], a.max(axis=0))
    assert len(st[0].mu["b"]) == 1 and st[0]._fields == ("mu", "nu")


def test_adafactor_unfactored_first_step():
    # leaves below min_dim_size_to_factor keep a full second moment; decay at step 0 is 0
    u, st = first(optim.adafactor(0.1, clipping_threshold=None,
                                  multiply_by_parameter_scale=False))
    for k in G:
        close(u[k], -0.1 * G[k] / np.sqrt(G[k] ** 2 + 1e-30), rtol=1e-9)
    assert st[0]._fields == ("count", "v_row", "v_col", "v")


def test_adafactor_factored_first_step():
    g = {"w": np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])}
    p = {"w": np.ones((2, 3))}
    opt = optim.scale_by_factored_rms(min_dim_size_to_factor=2)
    u, st = opt.update(g, opt.init(p), p)
    s = g["w"] ** 2 + 1e-30
    r, c = s.mean(axis=1), s.mean(axis=0)        # the largest axis (3) is reduced for rows
    v = np.outer(r / r.mean(), c)
    close(u["w"], g["w"] / np.sqrt(v), rtol=1e-9)
    close(st.v_row["w"], r)
    close(st.v_col["w"], c)


def test_fromage_and_sign_methods():
    lr = 0.2
    u, _ = first(optim.fromage(lr))
    mult = 1 / math.sqrt(1 + lr ** 2)
    for k in G:
        trust = np.linalg.norm(P[k]) / np.linalg.norm(G[k])
        close(u[k], -lr * mult * G[k] * trust + (mult - 1) * P[k])
    u, _ = first(optim.sign_sgd(0.1))
    close(u["w"], -0.1 * np.sign(G["w"]))
    u, _ = first(optim.signum(0.1, beta=0.9))
    close(u["b"], -0.1 * np.sign(0.1 * G["b"]))


def test_optimistic_gradient_descent_two_steps():
    opt = optim.optimistic_gradient_descent(0.1, alpha=0.5, beta=0.7)
    st = opt.init(P)
    u1, st = opt.update(G, st, P)
    close(u1["w"], -0.1 * 0.5 * G["w"])        # g_prev = g on the first step
    G2 = {k: -v for k, v in G.items()}
    u2, _ = opt.update(G2, st, P)
    close(u2["w"], -0.1 * (1.2 * G2["w"] - 0.7 * G["w"]))


def test_polyak_sgd_step():
    u, _ = first(optim.polyak_sgd(max_learning_rate=10.0, f_min=0.5), value=2.5)
    step = 2.0 / gnorm(G) ** 2
    close(u["w"], -step * G["w"])
    with pytest.raises(TypeError):
        first(optim.polyak_sgd())               # the loss value is required


def test_noise_is_gaussian_with_annealed_scale():
    opt = optim.noisy_sgd(1.0, eta=0.04, gamma=0.55, key=0)
    big = {"w": np.zeros((200, 100))}
    u, st = first(opt, g=big, p=big)
    assert abs(np.std(np.asarray(u["w"])) - 0.2) < 0.01
    assert st[0]._fields == ("count", "rng_key")
    u2, _ = opt.update(big, st, big)
    assert abs(np.std(np.asarray(u2["w"])) - math.sqrt(0.04 / 2 ** 0.55)) < 0.01


def test_apply_every_centralize_normalize():
    opt = optim.apply_every(2)
    st = opt.init(P)
    u1, st = opt.update(G, st)
    close(u1["w"], np.zeros((2, 2)))
    u2, st = opt.update(G, st)
    close(u2["w"], 2 * G["w"])
    assert int(st.count) == 0 and type(st).__name__ == "ApplyEvery"
    u, _ = first(optim.centralize())
    close(u["w"], G["w"] - G["w"].mean(axis=1, keepdims=True))
    close(u["b"], G["b"])
    u, _ = first(optim.normalize_by_update_norm(2.0))
    close(u["w"], 2.0 * G["w"] / (gnorm(G) + 1e-6))


def test_param_block_scaling_and_adaptive_clip():
    u, _ = first(optim.scale_by_param_block_norm())
    close(u["w"], G["w"] * np.linalg.norm(P["w"]))
    u, _ = first(optim.scale_by_param_block_rms())
    close(u["b"], G["b"] * np.sqrt(np.mean(P["b"] ** 2)))
    u, _ = first(optim.adaptive_grad_clip(0.5))
    gn = np.sqrt((G["w"] ** 2).sum(0))
    mx = 0.5 * np.maximum(np.sqrt((P["w"] ** 2).sum(0)), 1e-3)
    close(u["w"], np.where(gn < mx, G["w"], G["w"] * mx / gn))


def test_per_example_clipping():
    g = {"a": np.array([[3.0, 4.0], [0.3, 0.4]])}
    s, n = optim.per_example_global_norm_clip(g, 1.0)
    close(s["a"], [0.6 + 0.3, 0.8 + 0.4])
    assert int(n) == 1
    s, n = optim.per_example_layer_norm_clip({"a": g["a"], "b": g["a"]}, math.sqrt(2))
    close(s["b"], [0.9, 1.2])
    assert int(n["a"]) == 1


def test_conditional_wrappers_and_monitoring():
    opt = optim.conditionally_mask(optim.sgd(1.0), lambda step: step >= 1)
    st = opt.init(P)
    u, st = opt.update(G, st)
    close(u["w"], np.zeros((2, 2)))
    u, st = opt.update(G, st)
    close(u["w"], -G["w"])
    assert st._fields == ("step", "inner_state")
    opt = optim.conditionally_transform(optim.sgd(1.0), lambda step: step >= 1)
    u, st = first(opt)
    close(u["w"], G["w"])
    assert st._fields == ("inner_state", "step")
    opt = optim.chain(optim.monitor({"n": optim.tree.norm, "e": optim.measure_with_ema(
        optim.tree.norm, 0.5)}), optim.snapshot("g", lambda u: u["b"]), optim.sgd(1.0))
    u, st = first(opt)
    close(u["w"], -G["w"])
    close(st[0].measurements["n"], gnorm(G))
    close(st[0].measurements["e"], gnorm(G))     # debiased EMA of one value
    close(st[1].measurement["g"], G["b"])


def test_lookahead_syncs_every_period():
    opt = optim.lookahead(optim.sgd(1.0), sync_period=2, slow_step_size=0.5)
    lp = optim.LookaheadParams.init_synced(P)
    st = opt.init(lp)
    u, st = opt.update(G, st, lp)
    lp = optim.apply_updates(lp, u)
    close(lp.fast["w"], P["w"] - G["w"])
    close(lp.slow["w"], P["w"])
    u, st = opt.update(G, st, lp)
    lp = optim.apply_updates(lp, u)
    close(lp.slow["w"], P["w"] - G["w"])         # halfway to the fast P - 2G
    close(lp.fast["w"], lp.slow["w"])
    with pytest.raises(ValueError, match="LookaheadParams"):
        opt.update(G, st, P)


def test_add_decayed_weights_schedule_state():
    opt = optim.add_decayed_weights(lambda c: 0.1 * (c + 1))
    st = opt.init(P)
    u, st = opt.update(G, st, P)
    close(u["b"], G["b"] + 0.1 * P["b"])
    u, st = opt.update(G, st, P)
    close(u["b"], G["b"] + 0.2 * P["b"])
    assert type(st).__name__ == "WeightDecaySchedule" and int(st.count) == 2


def test_linear_algebra_and_scale_gradient():
    ev, vec = optim.power_iteration(np.diag([1.0, 4.0, 2.0]))
    close(ev, 4.0, rtol=1e-5)
    close(np.abs(vec), [0.0, 1.0, 0.0], atol=1e-3)
    a = np.array([[4.0, 1.0], [1.0, 3.0]], np.float32)
    h, _ = optim.matrix_inverse_pth_root(a, 2, ridge_epsilon=0.0)
    close(np.asarray(h) @ np.asarray(h) @ a, np.eye(2), rtol=1e-4, atol=1e-4)
    g = T.grad(lambda x: (optim.scale_gradient(x, 0.25) ** 2).sum())(np.array([1.0, 2.0]))
    close(g, [0.5, 1.0])
    close(optim.safe_root_mean_squares(np.zeros(3), 0.1), 0.1)


@pytest.mark.parametrize("make", [
    lambda: optim.adafactor(0.1, min_dim_size_to_factor=2), lambda: optim.sm3(0.1),
    lambda: optim.novograd(0.1), lambda: optim.adan(0.1), lambda: optim.rprop(0.1),
    lambda: optim.conditionally_transform(optim.sgd(0.1), lambda s: s % 2 == 0)],
    ids=["adafactor", "sm3", "novograd", "adan", "rprop", "conditionally_transform"])
def test_update_under_jit_equals_eager(make):
    opt = make()
    st_e = st_j = opt.init(P)
    upd = T.jit(opt.update)
    for i in range(3):
        g = {k: v * (1 + i) for k, v in G.items()}
        ue, st_e = opt.update(g, st_e, P)
        uj, st_j = upd(g, st_j, P)
        for k in ue:
            close(uj[k], ue[k], rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# L-BFGS and line searches
# ---------------------------------------------------------------------------------------------

A = np.array([[3.0, 0.5], [0.5, 1.0]])
B = np.array([1.0, -2.0])


def quad_loss(p):
    import transforms.numpy as tnp
    x = p["x"]
    return 0.5 * tnp.sum(x * (tnp.asarray(A) @ x)) - tnp.sum(tnp.asarray(B) * x)


def test_lbfgs_first_direction_and_memory():
    opt = optim.lbfgs(0.1, linesearch=None)
    p = {"x": np.array([1.0, 1.0])}
    st = opt.init(p)
    g = {"x": A @ p["x"] - B}
    u, st = opt.update(g, st, p)
    # no pairs yet: gamma = min(1, 1/||g||) times the gradient, times -lr
    close(u["x"], -0.1 * min(1.0, 1.0 / np.linalg.norm(g["x"])) * g["x"])
    lb = st[0]
    assert lb._fields == ("count", "params", "updates", "diff_params_memory",
                          "diff_updates_memory", "weights_memory")
    assert lb.diff_params_memory["x"].shape == (10, 2)
    p2 = optim.apply_updates(p, u)
    g2 = {"x": A @ p2["x"] - B}
    u2, st = opt.update(g2, st, p2)
    s, y = p2["x"] - p["x"], g2["x"] - g["x"]
    rho, gamma = 1 / (y @ s), (y @ s) / (y @ y)
    a = rho * (s @ g2["x"])
    r = gamma * (g2["x"] - a * y)
    r = r + (a - rho * (y @ r)) * s          # the two-loop recursion with one pair
    close(u2["x"], -0.1 * r)
    close(st[0].weights_memory[0], rho, rtol=1e-6)


@pytest.mark.parametrize("linesearch", ["zoom", "backtracking"])
def test_lbfgs_solves_a_quadratic(linesearch):
    ls = None if linesearch == "zoom" else optim.scale_by_backtracking_linesearch(
        20, store_grad=True)
    opt = optim.lbfgs() if ls is None else optim.lbfgs(linesearch=ls)
    p = {"x": np.array([2.0, -3.0])}
    st = opt.init(p)
    vg = optim.value_and_grad_from_state(quad_loss)
    for _ in range(12):
        v, g = vg(p, state=st)
        u, st = opt.update(g, st, p, value=v, grad=g, value_fn=quad_loss)
        p = optim.apply_updates(p, u)
    close(p["x"], np.linalg.solve(A, B), rtol=1e-6, atol=1e-8)
    # the search keeps the value and gradient at the accepted point for the next step
    close(optim.tree.get(st, "value"), float(quad_loss(p)), rtol=1e-9)


def test_zoom_linesearch_satisfies_strong_wolfe():
    ls = optim.scale_by_zoom_linesearch(max_linesearch_steps=30, initial_guess_strategy="one")
    p = {"x": np.array([2.0, -3.0])}
    v, g = T.value_and_grad(quad_loss)(p)
    d = {"x": -10.0 * g["x"]}                         # a too-long first guess: must zoom
    u, st = ls.update(d, ls.init(p), p, value=v, grad=g, value_fn=quad_loss)
    s = float(st.learning_rate)
    new = {"x": p["x"] + u["x"]}
    slope0 = float(g["x"] @ d["x"])
    assert float(quad_loss(new)) <= float(v) + 1e-4 * s * slope0
    g_new = A @ new["x"] - B
    assert abs(g_new @ d["x"]) <= 0.9 * abs(slope0)
    assert type(st.info).__name__ == "ZoomLinesearchInfo" and int(st.info.num_linesearch_steps) > 1


def _staged(fn):
    """Trace `fn` to the IR and evaluate the IR: what jit does, minus the compile (the zoom
    search's loop of conditionals takes a minute to compile on a loaded machine)."""
    from transforms import tree
    from transforms.ir import eval_jaxpr

    def run(*args):
        closed, shapes = T.make_jaxpr(fn, return_shape=True)(*args)
        out = eval_jaxpr(closed.jaxpr, closed.consts, *tree.leaves(args))
        return tree.unflatten(tree.structure(shapes), out)
    return run


@pytest.mark.parametrize("how", ["jit_backtracking", "traced_zoom"])
def test_lbfgs_update_traced(how):
    if how == "jit_backtracking":
        opt = optim.lbfgs(memory_size=3, linesearch=optim.scale_by_backtracking_linesearch(
            8, store_grad=True))
        wrap = T.jit
    else:
        opt = optim.lbfgs(memory_size=3)
        wrap = _staged
    p = {"x": np.array([2.0, -3.0])}
    st_e = st_j = opt.init(p)
    step = wrap(lambda g, st, p, v: opt.update(g, st, p, value=v, grad=g, value_fn=quad_loss))
    pe = pj = p
    for _ in range(3):
        v, g = T.value_and_grad(quad_loss)(pe)
        ue, st_e = opt.update(g, st_e, pe, value=v, grad=g, value_fn=quad_loss)
        uj, st_j = step(g, st_j, pj, v)
        close(uj["x"], ue["x"], rtol=1e-9, atol=1e-12)
        pe, pj = optim.apply_updates(pe, ue), optim.apply_updates(pj, uj)


# ---------------------------------------------------------------------------------------------
# contrib
# ---------------------------------------------------------------------------------------------

def test_reduce_on_plateau_schedule_of_scales():
    opt = optim.contrib.reduce_on_plateau(factor=0.5, patience=2, cooldown=1, min_scale=0.2)
    st = opt.init(P)
    scales = []
    for v in [5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]:
        u, st = opt.update(G, st, P, value=v)
        scales.append(float(st.scale))
    # two non-improving steps drop the scale; one cooldown step; floor at min_scale
    assert scales == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2]
    close(u["w"], 0.2 * G["w"])
    assert st._fields == ("scale", "best_value", "plateau_count", "cooldown_count", "count",
                          "avg_value")
    with pytest.raises(ValueError, match="factor"):
        optim.contrib.reduce_on_plateau(factor=1.5)


def test_schedule_free_sgd_first_steps():
    lr, b1 = 0.1, 0.9
    opt = optim.contrib.schedule_free_sgd(lr, b1=b1)
    st = opt.init(P)
    u, st = opt.update(G, st, P)
    # step 1: c = 1, so x = z = y - lr g, and y' = x
    close(u["w"], -lr * G["w"])
    y1 = optim.apply_updates(P, u)
    u2, st = opt.update(G, st, y1)
    z2 = y1["w"] - lr * G["w"]
    x1 = (y1["w"] - (1 - b1) * y1["w"]) / b1       # z1 = y1
    x2 = 0.5 * x1 + 0.5 * z2                         # equal weights lr^2: c = 1/2
    close(optim.apply_updates(y1, u2)["w"], b1 * x2 + (1 - b1) * z2)
    close(optim.contrib.schedule_free_eval_params(st, optim.apply_updates(y1, u2))["w"], x2)


def test_ademamix_first_step():
    u, st = first(optim.contrib.ademamix(0.1, b3=0.99, alpha=5.0))
    # m1^ = g, nu^ = g^2, m2 = (1 - b3) g (not debiased)
    close(u["w"], -0.1 * (G["w"] + 5.0 * 0.01 * G["w"]) / (np.abs(G["w"]) + 1e-8), rtol=1e-9)
    assert st[0]._fields == ("count", "count_m2", "m1", "m2", "nu")


@pytest.mark.parametrize("name", ["prodigy", "dadapt_adamw"])
def test_distance_adaptive_first_step_and_growth(name):
    opt = getattr(optim.contrib, name)()
    st = opt.init(P)
    u, st = opt.update(G, st, P)
    d, b2 = 1e-6, 0.999
    # no distance travelled yet: d stays at estim_lr0 and the step is d times Adam's first
    close(u["w"], -d * math.sqrt(1 - b2) * G["w"] / (math.sqrt(1 - b2) * np.abs(G["w"])
                                                    + 1e-8), rtol=1e-9)
    close(st.estim_lr, d)
    p = optim.apply_updates(P, u)
    for _ in range(20):                     # a steady gradient: the estimate must grow
        u, st = opt.update(G, st, p)
        p = optim.apply_updates(p, u)
    assert float(st.estim_lr) > 10 * d
    assert st._fields[-3:] == ("estim_lr", "numerator_weighted", "count")


TRACED = {
    "adadelta": lambda: optim.adadelta(0.5), "adafactor": lambda: optim.adafactor(0.1),
    "adan": lambda: optim.adan(0.1), "novograd": lambda: optim.novograd(0.1),
    "rprop": lambda: optim.rprop(0.1), "sm3": lambda: optim.sm3(0.1),
    "fromage": lambda: optim.fromage(optim.linear_schedule(0.1, 0.01, 5)),
    "sign_sgd": lambda: optim.sign_sgd(0.1), "signum": lambda: optim.signum(0.1),
    "optimistic_adam_v2": lambda: optim.optimistic_adam_v2(0.1),
    "noisy_sgd": lambda: optim.noisy_sgd(0.1, key=1),
    "apply_every": lambda: optim.chain(optim.apply_every(2), optim.sgd(0.1)),
    "centralize": lambda: optim.centralize(),
    "normalize_by_update_norm": lambda: optim.normalize_by_update_norm(),
    "scale_by_param_block_rms": lambda: optim.scale_by_param_block_rms(),
    "scale_by_distance_over_gradients": lambda: optim.scale_by_distance_over_gradients(),
    "adaptive_grad_clip": lambda: optim.adaptive_grad_clip(0.1),
    "conditionally_mask": lambda: optim.conditionally_mask(optim.adam(0.1),
                                                           lambda s: s % 2 == 0),
    "monitor": lambda: optim.monitor({"n": optim.tree.norm}),
    "inject_hyperparams": lambda: optim.inject_hyperparams(optim.adam)(
        learning_rate=optim.linear_schedule(0.1, 0.01, 5)),
    "schedule_free_adamw": lambda: optim.contrib.schedule_free_adamw(),
    "ademamix": lambda: optim.contrib.ademamix(0.1),
    "prodigy": lambda: optim.contrib.prodigy(),
    "dadapt_adamw": lambda: optim.contrib.dadapt_adamw(),
    "lbfgs_no_linesearch": lambda: optim.lbfgs(0.1, linesearch=None),
    "muon": lambda: optim.contrib.muon(0.1),
    "sam": lambda: optim.contrib.sam(optim.sgd(0.1), optim.chain(optim.contrib.normalize(),
                                                                  optim.sgd(0.05))),
}


@pytest.mark.parametrize("name", sorted(TRACED))
def test_update_traces_to_the_same_values(name):
    """`update` is pure and traceable: tracing it to the IR (what jit compiles) and
    evaluating the IR gives the eager values, step after step, state included."""
    from transforms import tree
    opt = TRACED[name]()
    st_e = st_t = opt.init(P)
    upd = _staged(opt.update)
    for i in range(3):
        g = {k: v * (1 + i) - 0.1 * i for k, v in G.items()}
        ue, st_e = opt.update(g, st_e, P)
        ut, st_t = upd(g, st_t, P)
        for a, b in zip(tree.leaves((ue, st_e)), tree.leaves((ut, st_t))):
            close(b, a, rtol=1e-9, atol=1e-12)


def test_sam_transparent_cycle():
    # an adversarial step up by rho along the normalised gradient, then the outer step from
    # the cycle's start with the gradient taken at the adversarial point
    rho, lr = 0.1, 0.5
    opt = optim.contrib.sam(optim.sgd(lr), optim.chain(optim.contrib.normalize(),
                                                       optim.sgd(rho)))
    st = opt.init(P)
    u1, st = opt.update(G, st, P)
    close(u1["w"], rho * G["w"] / gnorm(G))
    adv = optim.apply_updates(P, u1)
    g_adv = {k: 2 * v for k, v in G.items()}
    u2, st = opt.update(g_adv, st, adv)
    close(optim.apply_updates(adv, u2)["w"], P["w"] - lr * g_adv["w"])
    assert st._fields == ("steps_since_sync", "opt_state", "adv_state", "cache")
    assert int(st.steps_since_sync) == 0


def test_muon_orthogonalises_matrix_updates():
    from fnn.optim import muon as M
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6))
    o = np.asarray(M.orthogonalize_via_newton_schulz(x, M._STANDARD, ns_steps=10))
    # Muon's quintic iteration pushes every singular value into roughly [0.7, 1.2]
    s = np.linalg.svd(o, compute_uv=False)
    assert np.all(s > 0.6) and np.all(s < 1.25), s
    # the same left/right singular vectors as x: o ~ U V^T up to those values
    u, _, vt = np.linalg.svd(x, full_matrices=False)
    core = u.T @ o @ vt.T
    assert np.allclose(core - np.diag(np.diag(core)), 0, atol=1e-9)
    assert np.allclose(np.sort(np.abs(np.diag(core))), np.sort(s), rtol=1e-6)
    opt = optim.contrib.muon(0.1, nesterov=False)
    p = {"w": rng.normal(size=(4, 6)), "b": np.ones(6)}
    g = {"w": x, "b": np.full(6, 0.5)}
    u, st = opt.update(g, opt.init(p), p)
    expect = M.orthogonalize_via_newton_schulz(x, M._STANDARD)     # m^ = g on step one
    # the state keeps the coefficients in float32, as optax: 1e-6, not 1e-9
    close(u["w"], -0.1 * math.sqrt(6 / 4) * np.asarray(expect), rtol=1e-5, atol=1e-9)
    close(u["b"], -0.1 * np.ones(6) * 0.5 / (0.5 + 1e-8), rtol=1e-9)   # AdamW's first step
    with pytest.raises(NotImplementedError, match="aol"):
        M.orthogonalize_via_newton_schulz(x, M._STANDARD, preconditioning="aol")
