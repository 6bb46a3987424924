"""Shared helpers for the JAX-tutorial-style programs: run eagerly and under T.jit, compare pytrees."""
import numpy as np

import transforms as T
from transforms import tree


def assert_tree_close(actual, expected, rtol=1e-7, atol=1e-9):
    a_leaves, a_def = tree.flatten(actual)
    e_leaves, e_def = tree.flatten(expected)
    assert a_def == e_def, f"structure {a_def} != {e_def}"
    for a, e in zip(a_leaves, e_leaves):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=rtol, atol=atol)


def check(f, args, expected, rtol=1e-7, atol=1e-9, jit=True, **jit_kwargs):
    """Run ``f(*args)`` eagerly and (if ``jit``) under ``T.jit``; both must equal ``expected``."""
    assert_tree_close(f(*args), expected, rtol, atol)
    if jit:
        assert_tree_close(T.jit(f, **jit_kwargs)(*args), expected, rtol, atol)


def num_grad(f, x, eps=1e-6):
    """Central-difference gradient of a scalar function of one array (first principles)."""
    x = np.asarray(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


def require_namespace(modname):
    """Import ``modname`` only if this checkout's ``transforms`` provides it itself (an editable
    install elsewhere can otherwise satisfy a submodule import with another tree's code)."""
    import importlib
    import os

    import pytest

    why = ("merging h6-namespaces into h11-jaxdocs at 17:00 conflicted (transforms/__init__.py, "
           "transforms/backend/numba/lowering.py, transforms/checkpoint.py) and was aborted; "
           "these programs run once the branch has JAX's other namespaces")
    here = os.path.dirname(os.path.abspath(T.__file__))
    try:
        mod = importlib.import_module(modname)
    except ImportError as e:
        pytest.skip(f"{modname} not available: {why} ({e})", allow_module_level=True)
    if not os.path.abspath(mod.__file__).startswith(here):
        pytest.skip(f"{modname} comes from another checkout ({mod.__file__}): {why}",
                    allow_module_level=True)
    return mod


def jax_x64_each_test():
    """An autouse fixture body for test modules comparing with JAX in x64 mode (the reference
    for our 64-bit defaults), switched on for each test only: a module binds it with
    ``_jax_x64 = pytest.fixture(autouse=True)(jax_x64_each_test)``."""
    try:
        import jax
    except ImportError:                  # our own asserts still run
        yield
        return
    with jax.enable_x64(True):
        yield
