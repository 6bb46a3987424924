"""A new view or reduction is one registration in the Numba backend (registry.py): fusion and
the code generator know no primitive by name. Each test defines a primitive here, registers
it, and checks the compiled values against NumPy and that it was fused (no opaque step)."""
from __future__ import annotations

import re

import numpy as np
import pytest

import transforms as T
from transforms import lax
from transforms.backend.numba import registry
from transforms.core import Primitive, ShapedArray


@pytest.fixture
def scratch_registries():
    """Registrations made by a test are undone after it (the registries are global)."""
    registry.load_rules()
    saved = {k: dict(getattr(registry, k)) for k in ("VIEWS", "REDUCTIONS", "IDENTITIES")}
    yield
    for k, d in saved.items():
        reg = getattr(registry, k)
        reg.clear()
        reg.update(d)


def _opaque_steps(fn, *args):
    """Primitive names of the opaque steps of the fusion plan (`Lowered.as_text()`)."""
    plan = T.jit(fn).lower(*args).as_text().split("fusion plan:")[1]
    return re.findall(r"^ +\d+: (\w+) -> ", plan, flags=re.M)


def test_new_view_is_one_registration(scratch_registries):
    flip_p = Primitive("test_flip_rows")         # reverse dim 0: an index map, no data moved
    flip_p.def_impl(lambda x: np.ascontiguousarray(x[::-1]))
    flip_p.def_abstract_eval(lambda x: ShapedArray(x.shape, x.dtype))

    def terms(eqn):
        shape = eqn.invars[0].aval.shape
        return ((shape[0] - 1, 0, -1),) + tuple((0, d, 1) for d in range(1, len(shape)))
    registry.register_view("test_flip_rows", terms=terms)

    def f(x):
        return flip_p.bind(x) * 2.0 + x
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_array_equal(T.jit(f)(x), x[::-1] * 2 + x)
    assert _opaque_steps(f, x) == []                        # read in place by the nest


def test_new_reduction_is_one_registration(scratch_registries):
    absmax_p = Primitive("test_reduce_absmax")
    absmax_p.def_impl(lambda x, *, axes: np.max(np.abs(x), axis=axes))
    absmax_p.def_abstract_eval(lambda x, *, axes: ShapedArray(
        tuple(n for i, n in enumerate(x.shape) if i not in axes), x.dtype))

    registry.register_reduction(
        "test_reduce_absmax",
        init=lambda mod, dtype: mod.lit(0, dtype),
        combine=lambda mod, acc, v, dtype: f"max({acc}, abs({v}))")

    def f(x):
        return absmax_p.bind(x - 1.0, axes=(1,))
    x = np.array([[1.0, -7.0, 2.0], [0.5, 0.25, -3.0]], np.float32)
    np.testing.assert_array_equal(T.jit(f)(x), np.max(np.abs(x - 1), axis=1))
    assert _opaque_steps(f, x) == []                        # fused with the subtraction
    empty = np.zeros((2, 0), np.float32)                    # the identity over no element
    np.testing.assert_array_equal(T.jit(f)(empty), np.zeros(2, np.float32))


def test_register_view_needs_exactly_one_form():
    with pytest.raises(TypeError, match="exactly one of terms= and source="):
        registry.register_view("test_bad_view")


def test_no_primitive_name_lists_left_in_fusion():
    """The per-primitive tables are registries filled by the rules modules."""
    from transforms.backend.numba import fusion
    registry.load_rules()
    assert not hasattr(fusion, "VIEW_PRIMS") and not hasattr(fusion, "REDUCE_PRIMS")
    assert {"transpose", "broadcast_in_dim", "iota"} <= set(registry.VIEWS)
    assert {"reduce_sum", "reduce_max"} <= set(registry.REDUCTIONS)
    assert "dot_general" in registry.CALLS_BLAS and "dot_general" in registry.TRANSPOSE_FOLDS


def test_code_generator_compares_no_primitive_name():
    """Outside the rules modules and the registry, the backend asks the registries what a
    primitive is; it never compares a primitive's name (a new primitive is one registration)."""
    import pathlib
    from transforms.backend.numba import registry as reg
    folder = pathlib.Path(reg.__file__).parent
    # a name compared with a string, or looked up in a literal tuple, list or set
    compare = re.compile(r"prim\.name\s*(==|!=)\s*[rbf]?[\"']|prim\.name\s+(not\s+)?in\s*[(\[{]|"
                         r"[\"']\s*(==|!=)\s*\w+(\.\w+)*\.prim\.name")
    found = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith(("rules_", "kernels")) or path.name == "registry.py":
            continue
        for no, line in enumerate(path.read_text().splitlines(), 1):
            if compare.search(line):
                found.append(f"{path.name}:{no}: {line.strip()}")
    assert not found, "\n".join(found)


def test_only_a_true_transpose_is_folded_into_a_matmul():
    """dot_general absorbs a transpose of its result (operands swapped); a slice from 0 has
    the same index map as the identity permutation and must stay a slice."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 5)).astype(np.float32)
    v = rng.standard_normal(5).astype(np.float32)
    b = rng.standard_normal((5, 4)).astype(np.float32)

    def matvec(a, v):            # a 1-D result (`a @ v` goes through a [5, 1] matrix)
        return lax.dot_general(a, v, (((1,), (0,)), ((), ())))

    def f(a, v, b):
        return lax.slice(matvec(a, v), (0,), (3,)), (a @ b).T, matvec(a, v)[::-1]
    got = T.jit(f)(a, v, b)
    want = ((a @ v)[:3], (a @ b).T, (a @ v)[::-1])
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    text = T.jit(lambda a, b: (a @ b).T).lower(a, b).as_text()   # the IR after preparation
    assert "dot_general" in text and "transpose" not in text
    text = T.jit(lambda a, v: lax.slice(matvec(a, v), (0,), (3,))).lower(a, v).as_text()
    assert "slice" in text
