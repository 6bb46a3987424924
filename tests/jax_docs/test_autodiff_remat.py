"""The ideas of JAX's "Control autodiff's saved values with jax.checkpoint" tutorial, ported:
checkpointing never changes a derivative, only what the forward pass keeps for the backward
pass; policies choose what to keep (nothing, everything, matrix products, values named with
`checkpoint_name`); `print_saved_residuals` shows the choice. Where JAX is importable the
residual lists are compared with JAX's (their count, shapes and kinds)."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import ad_checkpoint, lax
from transforms.ad_checkpoint import checkpoint_name, saved_residuals

from .test_autodiff_transforms import jax, jax_jit, jnp, needs_jax, same_as_jax

cp = T.checkpoint_policies
rng = np.random.default_rng(3)
W1 = (rng.normal(size=(4, 4)) / 2).astype(np.float32)
W2 = (rng.normal(size=(4, 4)) / 2).astype(np.float32)
XB = rng.normal(size=(2, 4)).astype(np.float32)          # a batch of two rows


def make_net(np_, name, checkpoint=None):
    """Two layers `tanh(sin(x @ w))`, the pre-activation named "pre"; each layer optionally
    wrapped in `checkpoint`."""
    def layer(w, x):
        return np_.tanh(name(np_.sin(x @ w), "pre"))

    if checkpoint is not None:
        layer = checkpoint(layer)

    def net(w1, w2, x):
        return np_.sum(layer(w2, layer(w1, x)) ** 2)
    return net


def numpy_grads(w1, w2, x):
    a1 = x @ w1; s1 = np.sin(a1); h1 = np.tanh(s1)
    a2 = h1 @ w2; s2 = np.sin(a2); h2 = np.tanh(s2)
    g_s2 = 2 * h2 * (1 - h2 ** 2)
    g_a2 = g_s2 * np.cos(a2)
    g_h1 = g_a2 @ w2.T
    g_a1 = g_h1 * (1 - h1 ** 2) * np.cos(a1)
    return x.T @ g_a1, h1.T @ g_a2


EXPECTED = numpy_grads(W1.astype(np.float64), W2.astype(np.float64), XB.astype(np.float64))

POLICIES = {
    "default": lambda: None,
    "nothing": lambda: cp.nothing_saveable,
    "everything": lambda: cp.everything_saveable,
    "dots": lambda: cp.dots_saveable,
    "dots_no_batch": lambda: cp.dots_with_no_batch_dims_saveable,
    "only_pre": lambda: cp.save_only_these_names("pre"),
    "all_names_but_pre": lambda: cp.save_any_names_but_these("pre"),
    "both": lambda: cp.save_from_both_policies(cp.dots_saveable, cp.save_only_these_names("pre")),
    "offload_pre": lambda: cp.save_and_offload_only_these_names(
        names_which_can_be_saved=[], names_which_can_be_offloaded=["pre"],
        offload_src="device", offload_dst="pinned_host"),
}


def ours(policy_key):
    pol = POLICIES[policy_key]()
    return make_net(tnp, checkpoint_name, lambda f: T.checkpoint(f, policy=pol))


def kinds(residuals):
    """`{(shape, kind): count}` with kind one of argument / named / output."""
    out = {}
    for aval, what in residuals:
        kind = ("argument" if what.startswith("from the argument") else
                "named" if what.startswith("named") else "output")
        out[(tuple(aval.shape), kind)] = out.get((tuple(aval.shape), kind), 0) + 1
    return out


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_every_policy_gives_the_same_gradient(policy):
    g = T.grad(ours(policy), argnums=(0, 1))(W1, W2, XB)
    np.testing.assert_allclose(g[0], EXPECTED[0], rtol=2e-4, atol=1e-5)
    np.testing.assert_allclose(g[1], EXPECTED[1], rtol=2e-4, atol=1e-5)


def test_default_checkpoint_saves_only_inputs_and_layer_outputs():
    res = kinds(saved_residuals(ours("default"), W1, W2, XB))
    # the weights and the batch, plus each layer's output feeding the next (and the loss)
    assert res.get(((4, 4), "argument")) == 2
    assert res.get(((2, 4), "argument")) == 1
    assert sum(n for (s, k), n in res.items() if k == "named") == 0
    plain = kinds(saved_residuals(make_net(tnp, checkpoint_name), W1, W2, XB))
    assert sum(plain.values()) > sum(res.values())


def test_names_policies_keep_exactly_the_named_values():
    only = kinds(saved_residuals(ours("only_pre"), W1, W2, XB))
    assert only.get(((2, 4), "named")) == 2          # one "pre" per layer
    none = kinds(saved_residuals(ours("all_names_but_pre"), W1, W2, XB))
    assert none.get(((2, 4), "named"), 0) == 0
    off = kinds(saved_residuals(ours("offload_pre"), W1, W2, XB))
    assert off == only


def test_dots_policy_saves_the_matrix_products():
    default = kinds(saved_residuals(ours("default"), W1, W2, XB))
    dots = kinds(saved_residuals(ours("dots"), W1, W2, XB))
    # each layer's x @ w is saved on top of what the default keeps
    assert sum(dots.values()) == sum(default.values()) + 2
    both = kinds(saved_residuals(ours("both"), W1, W2, XB))
    assert sum(both.values()) == sum(default.values()) + 4


def test_print_saved_residuals_names_arguments_and_named_values(capsys):
    ad_checkpoint.print_saved_residuals(ours("only_pre"), W1, W2, XB)
    lines = capsys.readouterr().out.splitlines()
    assert "f32[4,4] from the argument w1" in lines
    assert "f32[2,4] from the argument x" in lines
    assert sum(line.startswith("f32[2,4] named 'pre'") for line in lines) == 2


@needs_jax
@pytest.mark.parametrize("policy", ["default", "nothing", "only_pre", "all_names_but_pre",
                                    "offload_pre"])
def test_saved_residuals_like_jax(policy):
    from jax._src.ad_checkpoint import saved_residuals as jax_saved_residuals
    from jax.ad_checkpoint import checkpoint_name as jax_checkpoint_name

    pol = POLICIES[policy]()
    if policy == "offload_pre":
        pol = jax.checkpoint_policies.save_and_offload_only_these_names(
            names_which_can_be_saved=[], names_which_can_be_offloaded=["pre"],
            offload_src="device", offload_dst="pinned_host")
    elif pol is not None:
        pol = {"nothing": jax.checkpoint_policies.nothing_saveable,
               "only_pre": jax.checkpoint_policies.save_only_these_names("pre"),
               "all_names_but_pre": jax.checkpoint_policies.save_any_names_but_these("pre"),
               }[policy]
    jnet = make_net(jnp, jax_checkpoint_name,
                    lambda f: jax.checkpoint(f, policy=pol))
    theirs = kinds(jax_saved_residuals(jnet, W1, W2, XB))
    if policy == "offload_pre":     # JAX reports offloaded values apart; here they are saved
        theirs = kinds(jax_saved_residuals(
            make_net(jnp, jax_checkpoint_name, lambda f: jax.checkpoint(
                f, policy=jax.checkpoint_policies.save_only_these_names("pre"))), W1, W2, XB))
    assert kinds(saved_residuals(ours(policy), W1, W2, XB)) == theirs
    same_as_jax(T.grad(ours(policy), argnums=(0, 1))(W1, W2, XB),
                jax_jit(jax.grad(jnet, argnums=(0, 1)))(W1, W2, XB), rtol=1e-4)


def test_checkpoint_of_a_scan_body_recomputes_per_step():
    def step(h, w):
        return tnp.tanh(h * w), None

    ws = np.linspace(0.5, 1.5, 5)

    def run(body):
        return lambda h: lax.scan(body, h, ws)[0]

    plain = T.grad(run(step))(0.3)
    remat = T.grad(run(T.checkpoint(step)))(0.3)
    np.testing.assert_allclose(remat, plain, rtol=1e-12)
    h, d = 0.3, 1.0                               # the chain rule by hand
    for w in ws:
        h = np.tanh(h * w)
        d *= (1 - h ** 2) * w
    np.testing.assert_allclose(plain, d, rtol=1e-12)


def test_checkpoint_static_argnums_allow_python_control_flow():
    def f(x, n):
        for _ in range(n):
            x = tnp.sin(x)
        return x

    g = T.grad(T.checkpoint(f, static_argnums=(1,)))(0.5, 3)
    x1 = np.sin(0.5); x2 = np.sin(x1)
    np.testing.assert_allclose(g, np.cos(x2) * np.cos(x1) * np.cos(0.5), rtol=1e-12)


def test_checkpoint_under_jit_and_vmap_keeps_values():
    f = make_net(tnp, checkpoint_name, lambda f: T.checkpoint(f, policy=cp.dots_saveable))
    g = T.jit(T.grad(f, argnums=(0, 1)))(W1, W2, XB)
    np.testing.assert_allclose(g[0], EXPECTED[0], rtol=2e-4, atol=1e-5)
    per_row = T.vmap(T.grad(f), in_axes=(None, None, 0))(W1, W2, XB[:, None, :])
    np.testing.assert_allclose(per_row.sum(0), EXPECTED[0], rtol=2e-4, atol=1e-5)


def test_checkpoint_name_is_the_identity_everywhere():
    x = np.array([1.0, -2.0])
    np.testing.assert_array_equal(checkpoint_name(x, "a"), x)
    np.testing.assert_array_equal(T.jit(lambda x: checkpoint_name(x * 2, "a"))(x), 2 * x)
    np.testing.assert_array_equal(T.grad(lambda x: tnp.sum(checkpoint_name(x, "a") ** 2))(x),
                                  2 * x)
    tree = checkpoint_name({"p": x, "q": 3.0}, "t")
    assert set(tree) == {"p", "q"} and float(tree["q"]) == 3.0


def scan_program(M, np_, name, policy):
    w = W1[:3, :3]

    def body(c, x):
        return np_.sin(name(np_.tanh(w @ c + x), "h")), None

    def f(c0, xs):
        return np_.sum(M.lax.scan(M.checkpoint(body, policy=policy), c0, xs)[0])
    return f


def test_residuals_of_a_checkpointed_scan_body_are_the_stacked_carries():
    f = scan_program(T, tnp, checkpoint_name, None)
    res = saved_residuals(f, np.ones(3, np.float32), XB[:, :3])
    # the closed-over weights, xs, and the carries of every step: an output of the scan (they
    # were once described as "from the argument" by following the scan body like a call)
    descriptions = sorted(d.split(" from test_")[0] for _, d in res)
    assert descriptions == ["from a constant", "from the argument xs", "output of scan"]


@needs_jax
@pytest.mark.parametrize("names", [False, True])
def test_scan_residuals_like_jax(names):
    from jax._src.ad_checkpoint import saved_residuals as jax_saved_residuals
    from jax.ad_checkpoint import checkpoint_name as jax_checkpoint_name

    ours_f = scan_program(T, tnp, checkpoint_name, cp.save_only_these_names("h") if names
                          else None)
    jax_f = scan_program(jax, jnp, jax_checkpoint_name,
                         jax.checkpoint_policies.save_only_these_names("h") if names else None)
    args = (np.ones(3, np.float32), XB[:, :3])
    ours = kinds(saved_residuals(ours_f, *args))
    if names:   # the same values; JAX calls a value named inside the scan body "output"
        assert ours.pop(((2, 3), "named")) == 1
        ours[((2, 3), "output")] += 1
    assert ours == kinds(jax_saved_residuals(jax_f, *args))
