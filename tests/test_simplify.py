"""The backend's `x + 0` / `x - 0` simplification (transforms/backend/numba/simplify.py) and
what it buys: frozen parameters returned untouched by a jitted optimiser step.

The rewrite is checked on the prepared IR (`lower(...).as_text()`), never by timing; every
case also checks the values against NumPy."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax
from fnn import optim

RNG = np.random.default_rng(7)


def _prepared_ir(f, *args):
    """The IR the code generator receives (before the fusion plan)."""
    return T.jit(f).lower(*args).as_text().split("fusion plan:")[0]


def _eqns(ir, prim):
    return [line for line in ir.splitlines() if f"= {prim} " in line or f"= {prim}[" in line]


def test_add_and_sub_of_zeros_are_dropped_and_the_input_returned():
    x = RNG.standard_normal((3, 5)).astype(np.float32)

    def f(x):
        return (x + tnp.zeros_like(x), tnp.zeros((3, 5), np.float32) + x,
                x - lax.full((3, 5), 0.0, np.float32), x + 0.0,
                lax.convert_element_type(x, np.float32))
    ir = _prepared_ir(f, x)
    assert not _eqns(ir, "add") and not _eqns(ir, "sub") and not _eqns(ir, "broadcast_in_dim")
    assert not _eqns(ir, "convert_element_type")
    out = T.jit(f)(x)
    for o in out:
        assert o is x           # returned as the caller's own array (see jit's docstring)


def test_not_dropped_when_the_zero_is_not_a_right_identity():
    x = RNG.standard_normal((4,)).astype(np.float32)

    def f(x):
        return tnp.zeros_like(x) - x, x * 0.0 + x       # 0 - x negates; x * 0 is no zero
    ir = _prepared_ir(f, x)
    assert len(_eqns(ir, "sub")) == 1 and len(_eqns(ir, "add")) == 1
    a, b = T.jit(f)(x)
    np.testing.assert_array_equal(a, -x)
    np.testing.assert_array_equal(b, x)


def test_shapes_and_dtypes_that_differ_still_broadcast_and_promote():
    x = RNG.standard_normal((3,)).astype(np.float32)
    i = np.arange(-2, 2, dtype=np.int32)

    def f(x, i):
        return (x + tnp.zeros((2, 3), np.float32),       # x broadcast to the zeros' shape
                i + tnp.zeros((4,), np.float32),         # int32 + float32 zeros: promoted
                i - tnp.zeros((4,), np.int32))           # same dtype: dropped
    ir = _prepared_ir(f, x, i)
    assert _eqns(ir, "convert_element_type")             # the promotion stays
    b, p, s = T.jit(f)(x, i)
    assert b.shape == (2, 3) and b.dtype == np.float32
    np.testing.assert_array_equal(b, np.broadcast_to(x, (2, 3)))
    with T.disable_jit():
        ref = f(x, i)[1]
    assert p.dtype == ref.dtype and p.dtype.kind == "f"
    np.testing.assert_array_equal(p, i.astype(p.dtype))
    assert s is i


def test_zero_literal_scalars_and_integer_zeros():
    def f(s, n):
        return s + 0.0, 0 + n, n - 0
    s, n = np.float64(-0.0), np.arange(5, dtype=np.int64)
    ir = _prepared_ir(f, np.asarray(s), n)
    assert not _eqns(ir, "add") and not _eqns(ir, "sub")
    a, b, c = T.jit(f)(np.asarray(s), n)
    assert np.signbit(a) and a.dtype == np.float64
    assert b is n and c is n


def _frozen_step(params, opt_state, x):
    def loss(p):
        return tnp.sum((x @ p["head"]["w"] + lax.stop_gradient(p["body"]["w"][0])) ** 2)
    grads = T.grad(loss)(params)
    updates, opt_state = OPT.update(grads, opt_state, params)
    return optim.apply_updates(params, updates), opt_state


OPT = optim.multi_transform({"head": optim.adam(0.1), "frozen": optim.set_to_zero()},
                            {"head": {"w": "head"}, "body": {"w": "frozen", "b": "frozen"}})


def _params():
    body_w = RNG.standard_normal((2, 3)).astype(np.float32)
    body_w[0, 0] = -0.0
    # NaNs with payloads (quiet, sign set or not): an addition may not keep them
    body_w[1, :2] = np.array([0x7FC00123, 0xFFC0BEEF], np.uint32).view(np.float32)
    body_b = np.array([-0.0, 0.0, np.inf, -np.inf], np.float32)
    return {"head": {"w": RNG.standard_normal((4, 3)).astype(np.float32)},
            "body": {"w": body_w, "b": body_b}}


def test_frozen_leaves_come_back_bit_identical_and_the_step_equals_eager():
    params = _params()
    x = RNG.standard_normal((5, 4)).astype(np.float32)
    state = OPT.init(params)
    step = T.jit(_frozen_step)
    ir = step.lower(params, state, x).as_text().split("fusion plan:")[0]
    # the frozen leaves are not touched: no equation produces them, the outputs are the inputs
    outs = ir.splitlines()[-1]
    assert outs.count("add") == 0
    p1, s1 = step(params, state, x)
    for k in ("w", "b"):
        assert p1["body"][k] is params["body"][k]
        assert p1["body"][k].tobytes() == _params_bytes(params)["body"][k]
    with T.disable_jit():
        p_ref, s_ref = _frozen_step(params, state, x)
    np.testing.assert_allclose(p1["head"]["w"], p_ref["head"]["w"], rtol=1e-5)
    for a, b in zip(T.tree.leaves(s1), T.tree.leaves(s_ref)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5)
    # the eager step keeps frozen leaves bit-identical too (apply_updates skips zero updates)
    for k in ("w", "b"):
        assert np.asarray(p_ref["body"][k]).tobytes() == params["body"][k].tobytes()
    assert not np.array_equal(p1["head"]["w"], params["head"]["w"])


def _params_bytes(p):
    return T.tree.map(lambda a: a.tobytes(), p)


def test_returned_inputs_never_alias_recycled_buffers():
    # big enough for the output pool: outputs of `make` come from recycled buffers
    x = RNG.standard_normal((300, 300)).astype(np.float32)
    make = T.jit(lambda x: x * 2.0)
    keep = T.jit(lambda y, x: (y + tnp.zeros_like(y), x + 1.0))
    y = make(x)
    kept, _ = keep(y, x)
    assert kept is y
    del y
    expect = x * 2.0
    for _ in range(3):               # later calls must not reuse the memory `kept` holds
        z = make(x + 1.0)
        np.testing.assert_array_equal(kept, expect)
        del z
    # mutating a returned array in place changes only that array (the caller's own input),
    # never a later call's results
    kept[...] = 0.0
    np.testing.assert_array_equal(make(x), expect)
    a, b = keep(make(x), x)
    np.testing.assert_array_equal(a, expect)
    np.testing.assert_array_equal(b, x + 1.0)


@pytest.mark.parametrize("shape", [(), (7,)])
def test_simplification_inside_control_flow(shape):
    x = np.full(shape, -0.0, np.float32)

    def f(x):
        def body(i, c):
            return c + tnp.zeros_like(c)
        return lax.fori_loop(0, 3, body, x)
    out = T.jit(f)(x)
    assert out.shape == shape and np.all(np.signbit(out))


def test_frozen_step_with_donated_parameters():
    params = _params()
    x = RNG.standard_normal((5, 4)).astype(np.float32)
    state = OPT.init(params)
    ref_p, ref_s = T.jit(_frozen_step)(T.tree.map(np.copy, params), OPT.init(params), x)
    body = {k: params["body"][k].tobytes() for k in ("w", "b")}
    p1, s1 = T.jit(_frozen_step, donate_argnums=(0, 1))(params, state, x)
    # the frozen leaves are the donated inputs themselves, untouched by the in-place writes
    for k in ("w", "b"):
        assert p1["body"][k] is params["body"][k] and p1["body"][k].tobytes() == body[k]
    np.testing.assert_array_equal(p1["head"]["w"], ref_p["head"]["w"])
    T.tree.map(np.testing.assert_array_equal, s1, ref_s)


def test_gradients_only_fed_to_set_to_zero_are_dead_code():
    # no stop_gradient: autodiff differentiates through the frozen convolutions, but their
    # weight gradients only reach set_to_zero, so the compiled step computes none of them
    opt = optim.multi_transform({"head": optim.sgd(0.1), "frozen": optim.set_to_zero()},
                                {"c1": "frozen", "c2": "frozen", "head": "head"})
    params = {"c1": RNG.standard_normal((4, 3, 3, 3)).astype(np.float32),
              "c2": RNG.standard_normal((4, 4, 3, 3)).astype(np.float32),
              "head": RNG.standard_normal((4, 2)).astype(np.float32)}
    x = RNG.standard_normal((2, 3, 8, 8)).astype(np.float32)

    def step(params, opt_state, x):
        def loss(p):
            h = tnp.tanh(lax.conv(x, p["c1"], (1, 1), "SAME"))
            h = tnp.tanh(lax.conv(h, p["c2"], (1, 1), "SAME"))
            return tnp.sum(tnp.mean(h, axis=(2, 3)) @ p["head"])
        updates, opt_state = opt.update(T.grad(loss)(params), opt_state, params)
        return optim.apply_updates(params, updates), opt_state
    state = opt.init(params)
    traced = str(T.make_jaxpr(step)(params, state, x))
    assert traced.count("conv_general_dilated") > 2           # the backward convolutions
    ir = _prepared_ir(step, params, state, x)
    assert ir.count("conv_general_dilated") == 2              # the forward pass only
    p1, _ = T.jit(step)(params, state, x)
    assert p1["c1"] is params["c1"] and p1["c2"] is params["c2"]
    with T.disable_jit():
        ref, _ = step(params, state, x)
    np.testing.assert_allclose(p1["head"], ref["head"], rtol=1e-5)
