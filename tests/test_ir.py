"""The IR: make_jaxpr prints JAX-style jaxprs, equations carry the user's source line,
evaluation reproduces the function, DCE drops dead equations."""
import os

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax
from transforms.ir import ClosedJaxpr, Literal, Var, dce_closed, dce_jaxpr, eval_jaxpr

f32 = np.float32


def test_sin_jaxpr_exact_text():
    out = str(T.make_jaxpr(lambda x: tnp.sin(x))(np.ones(3, np.float32)))
    assert out == "{ lambda ; a:f32[3]. let b:f32[3] = sin a in (b,) }"


def test_two_inputs_two_outputs_text():
    out = str(T.make_jaxpr(lambda x, y: (x * y, tnp.exp(x)))(np.ones(2, f32), np.ones(2, f32)))
    # longer than one line: JAX's layout, equations indented by 4, `in` by 2
    assert out == ("{ lambda ; a:f32[2] b:f32[2]. let\n"
                   "    c:f32[2] = mul a b\n"
                   "    d:f32[2] = exp a\n"
                   "  in (c, d) }")


def test_identity_and_scalar_shapes():
    assert str(T.make_jaxpr(lambda x: x)(np.ones((), np.float64))) == \
        "{ lambda ; a:f64[]. let in (a,) }"
    assert str(T.make_jaxpr(lambda x: x * 2)(np.ones((), np.int32))) == \
        "{ lambda ; a:i32[]. let b:i32[] = mul a 2 in (b,) }"


def _mlp_loss(p, x, y):
    h = tnp.maximum(x @ p["w1"] + p["b1"], 0.0)
    z = h @ p["w2"] + p["b2"]
    z = z - tnp.max(z, axis=1, keepdims=True)
    logp = z - tnp.log(tnp.sum(tnp.exp(z), axis=1, keepdims=True))
    return -tnp.mean(tnp.sum(logp * y, axis=1))


def _mlp_args():
    p = {"w1": np.ones((4, 5), f32), "b1": np.ones(5, f32), "w2": np.ones((5, 3), f32),
         "b2": np.ones(3, f32)}
    return p, np.ones((2, 4), f32), np.ones((2, 3), f32)


def test_mlp_jaxpr_structure():
    closed = T.make_jaxpr(_mlp_loss)(*_mlp_args())
    text = str(closed)
    lines = text.splitlines()
    # multi-line: header, one line per equation, the `in` line
    assert lines[0].startswith("{ lambda ; ") and lines[0].endswith(". let")
    assert lines[-1].strip().startswith("in (") and lines[-1].endswith("}")
    assert len(lines) == len(closed.eqns) + 2
    # flattened pytree inputs, dict keys in sorted order: b1 b2 w1 w2 x y
    assert [v.aval.str_short() for v in closed.jaxpr.invars] == [
        "f32[5]", "f32[3]", "f32[4,5]", "f32[5,3]", "f32[2,4]", "f32[2,3]"]
    assert [a.str_short() for a in closed.out_avals] == ["f32[]"]
    names = [e.prim.name for e in closed.eqns]
    assert names.count("dot_general") == 2
    for p in ("add", "max", "reduce_max", "sub", "exp", "reduce_sum", "log", "mul", "neg"):
        assert p in names, p
    assert 15 <= len(closed.eqns) <= 30
    # every equation is indented and typed
    for line in lines[1:-1]:
        assert line.startswith("    ") and " = " in line and ":f32[" in line
    assert lines[-1].startswith("  in (")
    # float32 throughout (weak Python scalars do not promote)
    for e in closed.eqns:
        for v in e.outvars:
            assert v.aval.dtype == np.float32


def test_equations_carry_user_source_line():
    def f(x):
        y = tnp.sin(x)        # line A
        return y * 2.0        # line B

    import inspect
    src, start = inspect.getsourcelines(f)
    closed = T.make_jaxpr(f)(np.ones(3))
    by_prim = {e.prim.name: e.source_info for e in closed.eqns}
    assert os.path.basename(by_prim["sin"].filename) == "test_ir.py"
    assert by_prim["sin"].lineno == start + 1
    assert by_prim["mul"].lineno == start + 2
    assert by_prim["sin"].function == "f"
    assert "test_ir.py:" in str(by_prim["sin"])


def test_source_line_skips_library_frames():
    closed = T.make_jaxpr(lambda x: tnp.linalg.norm(tnp.tanh(x)))(np.ones(3))
    for e in closed.eqns:
        assert e.source_info is not None
        assert os.path.basename(e.source_info.filename) == "test_ir.py", e.source_info


def test_closure_constants_and_literals():
    c = np.arange(3.0)
    closed = T.make_jaxpr(lambda x: x * 2.0 + c)(np.ones(3))
    text = str(closed)
    assert text.startswith("{ lambda a:f64[3] ; b:f64[3]. let")
    assert len(closed.consts) == 1 and closed.consts[0] is c
    assert "2.0" in text
    assert any(isinstance(v, Literal) for e in closed.eqns for v in e.invars)
    # a constant used twice is one constvar
    closed = T.make_jaxpr(lambda x: x * c + c)(np.ones(3))
    assert len(closed.consts) == 1


def test_jaxpr_evaluation_and_call():
    args = _mlp_args()
    closed = T.make_jaxpr(_mlp_loss)(*args)
    from transforms import tree
    flat = tree.leaves(args)
    (out,) = closed(*flat)
    np.testing.assert_allclose(out, _mlp_loss(*args), rtol=1e-6)
    (out2,) = eval_jaxpr(closed.jaxpr, closed.consts, *flat)
    np.testing.assert_allclose(out2, out)
    with pytest.raises(TypeError):
        closed(*flat[:2])


def test_jaxpr_of_jaxpr_evaluation_is_stable():
    # tracing the evaluation of a jaxpr gives the same equations
    closed = T.make_jaxpr(lambda x: tnp.sum(tnp.sin(x) ** 2))(np.ones(3))
    again = T.make_jaxpr(lambda x: closed(x)[0])(np.ones(3))
    assert [e.prim.name for e in again.eqns] == [e.prim.name for e in closed.eqns]


def test_pytree_outputs_and_static_argnums():
    closed = T.make_jaxpr(lambda x, n: {"a": x * n, "b": [x]}, static_argnums=1)(np.ones(2), 3)
    assert len(closed.jaxpr.invars) == 1
    assert len(closed.jaxpr.outvars) == 2
    assert "3" in str(closed)


def test_make_jaxpr_of_grad_is_forward_plus_backward():
    closed = T.make_jaxpr(T.grad(lambda x: tnp.sum(tnp.sin(x) * x)))(np.ones(3))
    names = [e.prim.name for e in closed.eqns]
    assert "sin" in names and "cos" in names
    assert [a.str_short() for a in closed.out_avals] == ["f64[3]"]
    (g,) = closed(np.full(3, 0.5))
    np.testing.assert_allclose(g, np.cos(0.5) * 0.5 + np.sin(0.5))


def test_make_jaxpr_of_matmul_grad_has_transposed_dots():
    closed = T.make_jaxpr(T.grad(lambda w, x: tnp.sum(tnp.tanh(x @ w))))(np.ones((4, 2)),
                                                                          np.ones((3, 4)))
    names = [e.prim.name for e in closed.eqns]
    assert names.count("dot_general") == 2          # forward and the cotangent of w
    (g,) = closed(np.ones((4, 2)) * 0.1, np.ones((3, 4)))
    np.testing.assert_allclose(g, T.grad(lambda w, x: tnp.sum(tnp.tanh(x @ w)))(
        np.ones((4, 2)) * 0.1, np.ones((3, 4))))


def test_dce_removes_unused_equations():
    def f(x):
        unused = tnp.cos(x) * 3.0          # dead
        del unused
        return tnp.sin(x)

    closed = T.make_jaxpr(f)(np.ones(3))
    assert [e.prim.name for e in closed.eqns].count("cos") == 1
    new, used_in, used_consts = dce_jaxpr(closed.jaxpr)
    assert [e.prim.name for e in new.eqns] == ["sin"]
    assert used_in == [True]
    # unused outputs can be dropped too
    closed2 = T.make_jaxpr(lambda x, y: (tnp.sin(x), tnp.exp(y) * 2.0))(np.ones(3), np.ones(3))
    new2, used_in2, _ = dce_jaxpr(closed2.jaxpr, used_outputs=[True, False])
    assert [e.prim.name for e in new2.eqns] == ["sin"]
    assert used_in2 == [True, False]
    new3, _, _ = dce_jaxpr(closed2.jaxpr, used_outputs=[True, False], prune_invars=True)
    assert len(new3.invars) == 1
    # unused constants are dropped by dce_closed
    c = np.arange(3.0)
    closed3 = T.make_jaxpr(lambda x: (x * c, tnp.sin(x))[1])(np.ones(3))
    assert len(closed3.consts) == 1
    pruned = dce_closed(closed3)
    assert len(pruned.consts) == 0 and [e.prim.name for e in pruned.eqns] == ["sin"]
    np.testing.assert_allclose(pruned(np.ones(3))[0], np.sin(np.ones(3)))


def test_eval_shape():
    out = T.eval_shape(lambda x: {"y": x @ x.T, "n": tnp.sum(x, axis=0)},
                       np.ones((3, 4), np.float32))
    assert out["y"].shape == (3, 3) and out["y"].dtype == np.float32
    assert out["n"].shape == (4,)


def test_var_and_closed_jaxpr_api():
    closed = T.make_jaxpr(lambda x: tnp.exp(x))(np.ones(2, f32))
    assert isinstance(closed, ClosedJaxpr)
    assert all(isinstance(v, Var) for v in closed.jaxpr.invars)
    assert [a.str_short() for a in closed.in_avals] == ["f32[2]"]
    assert repr(closed) == str(closed)


def test_nested_params_print():
    closed = T.make_jaxpr(lambda x: lax.reduce_sum(lax.convert_element_type(x, np.float32),
                                                   (0,)))(np.ones(3))
    text = str(closed)
    assert "convert_element_type[new_dtype=float32]" in text
    assert "reduce_sum[axes=(0,)]" in text


def test_long_names_after_z():
    def f(x):
        for _ in range(30):
            x = tnp.sin(x)
        return x

    text = str(T.make_jaxpr(f)(np.ones(1)))
    assert "    ba:f64[1] = sin z\n" in text and "  in (be,) }" in text
