"""Gradient checkpointing programs: T.checkpoint/T.remat give the same gradients while saving
fewer residuals; policies (nothing/everything/dots saveable, named values) via
transforms.ad_checkpoint; remat inside scan."""
import numpy as np
import pytest

from ._helpers import require_namespace

ad_checkpoint = require_namespace("transforms.ad_checkpoint")

import transforms as T
import transforms.numpy as tnp
from transforms import lax

from ._helpers import check

rng = np.random.default_rng(12)
W1, W2 = rng.normal(size=(4, 4)) / 2, rng.normal(size=(4, 4)) / 2
X = rng.normal(size=4)


def net(w1, w2, x):
    h = tnp.sin(w1 @ x)
    h = ad_checkpoint.checkpoint_name(h, "h")
    return tnp.sum(tnp.tanh(w2 @ h) ** 2)


def net_grad_numpy(w1, w2, x):
    a = w1 @ x; h = np.sin(a); b = w2 @ h; t = np.tanh(b)
    gb = 2 * t * (1 - t ** 2)
    gh = w2.T @ gb
    ga = gh * np.cos(a)
    return np.outer(ga, x), np.outer(gb, h)


EXPECTED = net_grad_numpy(W1, W2, X)


@pytest.mark.parametrize("policy", [None, "nothing_saveable", "everything_saveable",
                                    "dots_saveable", "names"])
def test_checkpoint_policies_give_identical_gradients(policy):
    pol = {None: None, "names": T.checkpoint_policies.save_only_these_names("h")}.get(
        policy, getattr(T.checkpoint_policies, policy or "nothing_saveable", None))
    f = T.checkpoint(net, policy=pol)
    check(T.grad(f, argnums=(0, 1)), (W1, W2, X), EXPECTED, rtol=1e-10)


def test_checkpoint_saves_only_arguments():
    res = ad_checkpoint.saved_residuals(T.checkpoint(net), W1, W2, X)
    assert res and all("argument" in desc for _, desc in res)
    plain = ad_checkpoint.saved_residuals(net, W1, W2, X)
    assert any("argument" not in desc for _, desc in plain)


def test_save_only_these_names_keeps_named_value():
    pol = T.checkpoint_policies.save_only_these_names("h")
    res = ad_checkpoint.saved_residuals(T.checkpoint(net, policy=pol), W1, W2, X)
    assert any("named 'h'" in desc for _, desc in res)


def test_dots_saveable_saves_matmul_outputs():
    res = ad_checkpoint.saved_residuals(
        T.checkpoint(net, policy=T.checkpoint_policies.dots_saveable), W1, W2, X)
    assert any("dot_general" in desc for _, desc in res)


def test_print_saved_residuals_output(capsys):
    ad_checkpoint.print_saved_residuals(T.checkpoint(net), W1, W2, X)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 3 and all("from the argument" in line for line in out)
    assert out[0].startswith("f64[4,4]")


def test_remat_alias_inside_scan_rnn():
    xs = rng.normal(size=(5, 4))

    def loss(w):
        step = T.remat(lambda h, x: (tnp.tanh(w @ h + x), None))
        return tnp.sum(lax.scan(step, tnp.zeros(4), xs)[0])

    def loss_plain(w):
        return tnp.sum(lax.scan(lambda h, x: (tnp.tanh(w @ h + x), None), tnp.zeros(4), xs)[0])

    check(T.grad(loss), (W1,), T.grad(loss_plain)(W1), rtol=1e-12)


def test_checkpoint_static_argnums():
    def f(x, n):
        for _ in range(n):
            x = tnp.sin(x)
        return x

    g = T.grad(T.checkpoint(f, static_argnums=(1,)))
    s1 = np.sin(0.5)
    check(lambda x: g(x, 2), (0.5,), np.cos(s1) * np.cos(0.5))
