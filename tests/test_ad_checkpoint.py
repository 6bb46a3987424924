"""transforms.ad_checkpoint: checkpoint_name, the policies (what reverse mode saves vs
recomputes, inspected through the residuals of the linearized function) and
print_saved_residuals; gradients equal under every policy, eagerly, jitted and batched."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import ad_checkpoint as ac, lax
from transforms.ad_checkpoint import checkpoint_name, checkpoint_policies as cp
from transforms.test_util import check_grads

rng = np.random.default_rng(0)
W = rng.normal(size=(3, 3)) * 0.5
X = rng.normal(size=3)


def f(w, x):
    h = checkpoint_name(tnp.sin(w @ x), "h")
    g = checkpoint_name(tnp.tanh(h * 2.0), "g")
    return tnp.sum(tnp.cos(g @ w) * h)


def residuals(fun, *args):
    return [what for _, what in ac.saved_residuals(fun, *args)]


def test_checkpoint_name_is_identity_everywhere(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(tmp_path))
    x = np.array([1.0, -2.0])
    np.testing.assert_array_equal(checkpoint_name(x, "a"), x)
    tr = checkpoint_name({"p": x, "q": 3.0}, "t")
    np.testing.assert_array_equal(tr["p"], x)
    assert "name" in str(T.make_jaxpr(lambda x: checkpoint_name(x, "a"))(x))
    np.testing.assert_allclose(T.grad(lambda x: tnp.sum(checkpoint_name(x, "a") ** 2))(x), 2 * x)
    np.testing.assert_allclose(T.vmap(lambda x: checkpoint_name(x, "a") * 2)(np.eye(2)),
                               2 * np.eye(2))
    np.testing.assert_allclose(T.jit(lambda x: checkpoint_name(tnp.sin(x), "a"))(x), np.sin(x))
    np.testing.assert_allclose(T.jvp(lambda x: checkpoint_name(x * x, "a"), (x,), (x,))[1],
                               2 * x * x)


def test_policy_changes_what_is_saved():
    plain = residuals(f, W, X)
    assert sum("argument" not in r for r in plain) >= 4       # sin/tanh/cos intermediates
    assert residuals(T.checkpoint(f), W, X) == ["from the argument w", "from the argument x"]
    assert residuals(T.checkpoint(f, policy=cp.nothing_saveable), W, X) == \
        ["from the argument w", "from the argument x"]
    only_h = residuals(T.checkpoint(f, policy=cp.save_only_these_names("h")), W, X)
    assert [r.split(" from")[0] for r in only_h if "named" in r] == ["named 'h'"]
    both = residuals(T.checkpoint(f, policy=cp.save_any_names_but_these("zzz")), W, X)
    assert sorted(r.split(" from")[0] for r in both if "named" in r) == ["named 'g'", "named 'h'"]
    but_g = residuals(T.checkpoint(f, policy=cp.save_any_names_but_these("g")), W, X)
    assert [r.split(" from")[0] for r in but_g if "named" in r] == ["named 'h'"]
    dots = residuals(T.checkpoint(f, policy=cp.dots_saveable), W, X)
    assert sum("output of dot_general" in r for r in dots) == 2
    assert not any("named" in r or "sin" in r for r in dots)
    either = residuals(T.checkpoint(f, policy=cp.save_from_both_policies(
        cp.dots_saveable, cp.save_only_these_names("g"))), W, X)
    assert sum("dot_general" in r for r in either) >= 1 and any("named 'g'" in r for r in either)
    every = residuals(T.checkpoint(f, policy=cp.everything_saveable), W, X)
    assert len(every) == len(plain)


def test_batch_dims_policy():
    def bmm(a, b):
        return tnp.sum(tnp.sin(tnp.einsum("bij,bjk->bik", a, b)) + tnp.sin(a[0] @ b[0]))
    a, b = rng.normal(size=(2, 3, 3)), rng.normal(size=(2, 3, 3))
    r = residuals(T.checkpoint(bmm, policy=cp.dots_with_no_batch_dims_saveable), a, b)
    assert sum("dot_general" in x for x in r) == 1             # the unbatched product only
    r = residuals(T.checkpoint(bmm, policy=cp.dots_saveable), a, b)
    assert sum("dot_general" in x for x in r) == 2


POLICIES = [None, cp.nothing_saveable, cp.everything_saveable, cp.dots_saveable,
            cp.dots_with_no_batch_dims_saveable, cp.save_only_these_names("h"),
            cp.save_any_names_but_these("g"), cp.save_anything_except_these_names("h"),
            cp.save_from_both_policies(cp.dots_saveable, cp.save_only_these_names("g"))]


@pytest.mark.parametrize("policy", POLICIES)
def test_gradients_equal_under_every_policy(policy):
    want = T.grad(f, argnums=(0, 1))(W, X)
    g = T.checkpoint(f, policy=policy)
    got = T.grad(g, argnums=(0, 1))(W, X)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    check_grads(g, (W, X), order=2)
    xs = rng.normal(size=(4, 3))
    np.testing.assert_allclose(T.vmap(T.grad(g, argnums=1), in_axes=(None, 0))(W, xs),
                               np.stack([T.grad(f, argnums=1)(W, x) for x in xs]), rtol=1e-12)


def test_policy_under_jit_scan_and_static_argnums(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(tmp_path))
    g = T.checkpoint(f, policy=cp.save_only_these_names("h"))
    np.testing.assert_allclose(T.jit(T.grad(g))(W, X), T.grad(f)(W, X), rtol=1e-12)

    def rnn(w, xs, power):
        def body(h, x):
            h = checkpoint_name(tnp.tanh(h @ w + x), "h")
            return h, tnp.sum(h ** power)
        h, ys = lax.scan(body, tnp.zeros(3), xs)
        return tnp.sum(h) + tnp.sum(ys)

    f_kw = T.checkpoint(lambda x, *, p: tnp.sum(x ** p), policy=cp.dots_saveable,
                        static_argnames=("p",))
    np.testing.assert_allclose(T.grad(f_kw)(np.full(2, 2.0), p=3), [12.0, 12.0])
    xs = rng.normal(size=(5, 3))
    want = T.grad(rnn)(W, xs, 2)
    for p in (cp.dots_saveable, cp.save_only_these_names("h"), cp.everything_saveable):
        got = T.grad(T.checkpoint(rnn, policy=p, static_argnums=(2,)))(W, xs, 2)
        np.testing.assert_allclose(got, want, rtol=1e-10)


def test_policy_inside_a_scan_body():
    """Per-step checkpointing: the remat equation inside the scan body is split by the policy
    when the scan is partially evaluated (the saved values become per-step residuals)."""
    xs = rng.normal(size=(5, 3))

    def rnn(policy):
        def f(w, xs):
            step = lambda h, x: (tnp.tanh(checkpoint_name(h @ w, "hw") + x),
                                 tnp.sum(tnp.sin(h @ w + x) ** 2))
            body = step if policy == "plain" else T.checkpoint(step, policy=policy)
            h, ys = lax.scan(body, tnp.zeros(3), xs)
            return tnp.sum(h) + tnp.sum(ys)
        return f

    want = T.grad(rnn("plain"))(W, xs)
    kinds = {}
    for p in (None, cp.nothing_saveable, cp.everything_saveable, cp.dots_saveable,
              cp.save_only_these_names("hw")):
        np.testing.assert_allclose(T.grad(rnn(p))(W, xs), want, rtol=1e-10)
        kinds[p] = sorted(d.split(" from")[0] for d in residuals(rnn(p), W, xs)
                          if "argument" not in d)
    assert kinds[cp.nothing_saveable] == kinds[None]
    assert kinds[cp.dots_saveable] == sorted(kinds[None] + ["output of dot_general"] * 2)
    assert kinds[cp.save_only_these_names("hw")] == sorted(kinds[None] + ["named 'hw'"])
    assert len(kinds[cp.everything_saveable]) > len(kinds[cp.dots_saveable])
    check_grads(rnn(cp.save_only_these_names("hw")), (W, xs), order=1)


def test_print_saved_residuals(capsys):
    assert ac.checkpoint is T.checkpoint and ac.remat is T.remat
    ac.print_saved_residuals(T.checkpoint(f, policy=cp.save_only_these_names("h")), W, X)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "f64[3,3] from the argument w"
    assert lines[1] == "f64[3] from the argument x"
    assert lines[2].startswith("f64[3] named 'h' from ")
    ac.print_saved_residuals(lambda p: tnp.sum(tnp.sin(p["a"])), {"a": np.ones(2)})
    assert capsys.readouterr().out.strip() == "f64[2] output of cos from test_ad_checkpoint.py:" \
        f"{test_print_saved_residuals.__code__.co_firstlineno + 7} (<lambda>)"
