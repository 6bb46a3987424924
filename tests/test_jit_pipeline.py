"""Generated functions compile with the shorter Numba pipeline (backend/numba/pipeline.py)
when they hold no nested code objects, and give the same values."""
import numpy as np

import pytest

import transforms as T
import transforms.numpy as tnp
from transforms.backend.numba import pipeline

pytestmark = pytest.mark.usefixtures("numba_path")   # the Numba path's machinery (NUMBAX_DIRECT=0)


def test_generated_function_uses_the_short_pipeline_and_computes_the_same():
    def f(x, w):
        h = tnp.tanh(x @ w)
        return tnp.sum(tnp.exp(h)) + tnp.max(h, axis=0)

    x = np.linspace(-1, 1, 6 * 5).reshape(6, 5)
    w = np.linspace(0, 2, 5 * 4).reshape(5, 4)
    exe = T.jit(f).lower(x, w).compile()
    assert exe.module._fn._compiler.pipeline_class is pipeline.GeneratedCodePipeline
    got = exe(x, w)
    h = np.tanh(x @ w)
    np.testing.assert_allclose(got, np.sum(np.exp(h)) + h.max(axis=0), rtol=1e-12)


def test_functions_with_nested_code_keep_numbas_pipeline():
    def plain(a):
        return a + 1

    def with_comprehension(a):
        return sum([a * i for i in range(3)])

    assert pipeline.pipeline_for(plain) is pipeline.GeneratedCodePipeline
    assert pipeline.pipeline_for(with_comprehension) is None
    assert pipeline.pipeline_for(lambda a: (lambda b: b)(a)) is None
