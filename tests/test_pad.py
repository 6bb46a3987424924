"""tnp.pad in every NumPy mode: values and dtypes against numpy.pad (eagerly, and under jit
for a batch of modes compiled together), gradients against finite differences, vmap against
a loop, and the errors NumPy gives."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms.test_util import check_grads

MODES = [("constant", {}), ("constant", {"constant_values": ((1, 2), (3, 4))}),
         ("empty", {}), ("edge", {}), ("wrap", {}), ("reflect", {}),
         ("reflect", {"reflect_type": "odd"}), ("symmetric", {}),
         ("symmetric", {"reflect_type": "odd"}), ("maximum", {}), ("minimum", {}),
         ("mean", {}), ("median", {}), ("mean", {"stat_length": 2}),
         ("maximum", {"stat_length": ((1, 3), (2, 1))}), ("linear_ramp", {}),
         ("linear_ramp", {"end_values": ((5, -2), (1, 3))})]
WIDTHS = [1, (2, 5), ((0, 7), (3, 0)), ((4, 4), (9, 1))]        # wider than the array too


def _data(dtype, shape=(3, 4), seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "u":
        return rng.integers(0, 200, size=shape).astype(dtype)
    return (rng.normal(size=shape) * 10).astype(dtype)


def _numpy(a, width, mode, kw):
    if mode == "empty":                      # NumPy leaves the pads undefined; we zero them
        return np.pad(a, width, mode="constant")
    return np.pad(a, width, mode=mode, **kw)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32, np.uint8])
@pytest.mark.parametrize("mode,kw", MODES, ids=[f"{m}{i}" for i, (m, _) in enumerate(MODES)])
def test_pad_matches_numpy(mode, kw, dtype):
    for shape in [(3, 4), (1, 5), (2, 1)]:
        a = _data(dtype, shape)
        for width in WIDTHS:
            want = _numpy(a, width, mode, kw)
            got = tnp.pad(a, width, mode=mode, **kw)
            assert got.dtype == want.dtype and got.shape == want.shape, (shape, width)
            # odd reflections contract with a +-1/2 matrix: float32 rounds differently from
            # NumPy's repeated 2 * edge - x, within a few ulps of the data's magnitude
            atol = 1e-5 * np.abs(a).max() if dtype == np.float32 else 0
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=atol, err_msg=f"{shape} {width}")


def test_pad_under_jit_equals_numpy():
    a = _data(np.float32)
    modes = [m for m in MODES if m[0] != "empty"]

    def all_modes(a):
        return [tnp.pad(a, ((2, 5), (4, 1)), mode=m, **kw) for m, kw in modes]
    for got, (m, kw) in zip(T.jit(all_modes)(a), modes):
        want = np.pad(a, ((2, 5), (4, 1)), mode=m, **kw)
        assert got.dtype == want.dtype, m
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=m)


@pytest.mark.parametrize("mode,kw", [("edge", {}), ("reflect", {"reflect_type": "odd"}),
                                     ("symmetric", {}), ("wrap", {}), ("mean", {}),
                                     ("maximum", {}), ("linear_ramp", {"end_values": 2.0})])
def test_pad_gradients(mode, kw):
    a = _data(np.float64, (3, 4), seed=1)
    check_grads(lambda x: tnp.pad(x, ((2, 4), (1, 5)), mode=mode, **kw) ** 2, [a], order=2)


def test_pad_vmap_equals_loop():
    xs = _data(np.float64, (3, 4, 5))
    f = lambda x: tnp.pad(x, ((1, 2), (3, 0)), mode="reflect")    # noqa: E731
    np.testing.assert_array_equal(T.vmap(f)(xs), np.stack([np.pad(x, ((1, 2), (3, 0)),
                                                                  mode="reflect") for x in xs]))


def test_pad_errors():
    a = np.ones((2, 3))
    with pytest.raises(ValueError, match="mode"):
        tnp.pad(a, 1, mode="mirror")
    with pytest.raises(ValueError, match="keyword"):
        tnp.pad(a, 1, mode="edge", constant_values=3)
    with pytest.raises(ValueError, match="negative"):
        tnp.pad(a, -1)
    with pytest.raises(ValueError, match="empty axis"):
        tnp.pad(np.ones((0, 3)), 1, mode="reflect")
    with pytest.raises(ValueError, match="rank"):
        tnp.pad(a, ((1, 2), (3, 4), (5, 6)))
    with pytest.raises(NotImplementedError, match="callable"):
        tnp.pad(a, 1, mode=lambda *args: None)
    np.testing.assert_array_equal(tnp.pad(np.ones((0, 3)), 1), np.pad(np.ones((0, 3)), 1))
