"""Test-session settings.

* Every jaxpr a transformation builds is type-checked (`transforms.ir.check_jaxpr`, switched on
  by the `jax_enable_checks` flag), so a rule that builds an ill-typed equation fails the test
  that exercises it, naming the equation.
* No random state is shared between tests: see `_per_test_rng`.
* The direct compiler runs in strict mode (``NUMBAX_DIRECT=strict``, unless the environment
  says otherwise): an internal error of it fails the test instead of falling back to Numba.
"""
import os

import numpy as np
import pytest

import transforms
from op_table import op_rng

transforms.config.update("jax_enable_checks", True)
os.environ.setdefault("NUMBAX_DIRECT", "strict")

# the names test modules give their module-level generator
_RNG_NAMES = ("rng", "RNG", "_rng", "_RNG")


@pytest.fixture(autouse=True)
def _per_test_rng(request):
    """Before each test, replace its module's generator (a `np.random.Generator` named in
    `_RNG_NAMES`) by a fresh one seeded from the test's name, so a test's inputs do not depend
    on which tests ran before it, or on `-k`/`-x`/ordering. The module's own generator only
    serves while the module is imported, to build the constant inputs of its case tables."""
    module = request.module
    for name in _RNG_NAMES:
        if isinstance(getattr(module, name, None), np.random.Generator):
            setattr(module, name, op_rng(module.__name__, request.node.name))


@pytest.fixture
def jax_x32():
    """JAX with its 32-bit defaults for the duration of a test (when JAX is importable).

    Several differential modules switch JAX to 64 bits when pytest imports them, and
    collection imports every module into each worker; comparisons against JAX's default
    float32/int32 results use this (`pytestmark = pytest.mark.usefixtures("jax_x32")`)."""
    try:
        import jax
    except ImportError:
        yield
        return
    with jax.enable_x64(False):
        yield


@pytest.fixture
def numba_path(monkeypatch):
    """Compile with Numba only (NUMBAX_DIRECT=0): for tests of the Numba path's own machinery
    (its cache files, pipeline, linked and symbol calls, kernels, workers). In-memory caches
    are cleared before and after, so no program compiled the other way is reused."""
    import transforms as T
    monkeypatch.setenv("NUMBAX_DIRECT", "0")
    T.clear_caches()
    yield
    T.clear_caches()
