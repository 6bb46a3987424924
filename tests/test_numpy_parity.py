"""transforms.numpy behaviours found by porting JAX/NumPy code: `where=`/`initial=` of the
reductions, vdot, complex inputs, NumPy's calling forms (einsum's interleaved operands,
one-element pad widths, NumPy functions applied to traced values). Eagerly, under jit, vmap
and grad, against NumPy (or JAX values recorded as literals)."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp

A = np.arange(6.0).reshape(2, 3)
A[0, 1] = np.nan                      # masked out below: must not reach the result
M = np.array([True, False, True])

REDUCTIONS = [
    ("max", lambda m, x: m.max(x, axis=1, where=M, initial=-1.0)),
    ("min", lambda m, x: m.min(x, where=M, initial=10.0)),
    ("max_initial", lambda m, x: m.max(x[:, 2], initial=100.0)),
    ("max_empty", lambda m, x: m.max(x[:, :0], axis=1, initial=2.0)),
    ("min_empty_keepdims", lambda m, x: m.min(x[:, :0], axis=1, initial=2.0, keepdims=True)),
    ("sum", lambda m, x: m.sum(x, axis=1, where=M, initial=0.5)),
    ("prod", lambda m, x: m.prod(x + 1, axis=1, where=M, initial=2.0)),
    ("mean", lambda m, x: m.mean(x, axis=1, where=M)),
    ("var", lambda m, x: m.var(x, axis=1, where=M, ddof=1)),
    ("std", lambda m, x: m.std(x, where=M)),
    ("all", lambda m, x: m.all(x > 0.5, axis=1, where=M)),
    ("any", lambda m, x: m.any(x > 4, where=M)),
]


@pytest.mark.parametrize("name, fn", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reductions_where_and_initial_as_numpy(name, fn):
    want = fn(np, A)
    for got in (fn(tnp, A), T.jit(lambda x: fn(tnp, x))(A),
                T.vmap(lambda x: fn(tnp, x))(np.stack([A, A]))[1]):
        assert np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_reduction_where_errors_and_initial_cast():
    with pytest.raises(ValueError, match="to use a where mask one has to specify 'initial'"):
        tnp.max(A, where=M)
    with pytest.raises(ValueError, match="to use a where mask"):
        T.jit(lambda x: tnp.min(x, where=M))(A)
    with pytest.raises(ValueError, match="zero-size array"):
        tnp.max(np.zeros(0))
    ints = np.arange(6).reshape(2, 3)
    assert tnp.max(ints, initial=5.5) == 5 and tnp.sum(ints, initial=0.5) == 15   # NumPy casts
    # derivatives flow only to the unmasked elements
    np.testing.assert_array_equal(
        T.grad(lambda x: tnp.max(x, where=M, initial=-5.0))(np.array([1.0, 7.0, 3.0])), [0, 0, 1])
    np.testing.assert_array_equal(
        T.grad(lambda x: tnp.mean(x, where=M))(np.array([1.0, np.nan, 3.0])), [0.5, 0, 0.5])
