"""fnn.summary: layer table with output shapes, parameter counts and bytes, by shape inference."""
import numpy as np
import pytest

import fnn
from transforms import ShapeDtypeStruct, random


def cnn():
    model = fnn.Sequential([
        fnn.Conv2D(4, (3, 3)), fnn.BatchNorm(), fnn.relu, fnn.MaxPool(2), fnn.Flatten(),
        fnn.Sequential([fnn.Dense(16), fnn.relu], name="head"), fnn.Dropout(0.5),
        fnn.Dense(10)])
    params, state = model.init(random.key(0), np.zeros((2, 8, 8, 1), np.float32))
    return model, params, state


def test_cnn_rows_shapes_counts_and_bytes():
    model, params, state = cnn()
    s = fnn.summary(model, params, state, (32, 8, 8, 1))
    rows = {r.path: r for r in s.rows}
    assert [r.path for r in s.rows] == [
        "conv2d_0", "batchnorm_0", "relu_0", "maxpool_0", "flatten_0", "head", "head/dense_0",
        "head/relu_0", "dropout_0", "dense_0"]
    shapes = {p: r.output.shape for p, r in rows.items()}
    assert shapes == {"conv2d_0": (32, 8, 8, 4), "batchnorm_0": (32, 8, 8, 4),
                      "relu_0": (32, 8, 8, 4), "maxpool_0": (32, 4, 4, 4), "flatten_0": (32, 64),
                      "head": (32, 16), "head/dense_0": (32, 16), "head/relu_0": (32, 16),
                      "dropout_0": (32, 16), "dense_0": (32, 10)}
    assert all(r.output.dtype == np.float32 for r in s.rows)
    # 3*3*1*4 + 4; scale+bias and mean+var of 4 channels; 64*16 + 16; 16*10 + 10
    assert (rows["conv2d_0"].params, rows["conv2d_0"].bytes) == (40, 160)
    assert (rows["batchnorm_0"].params, rows["batchnorm_0"].state,
            rows["batchnorm_0"].bytes) == (8, 8, 64)
    assert rows["head"].params == rows["head/dense_0"].params == 1040
    assert rows["dense_0"].params == 170 and rows["maxpool_0"].params == 0
    assert rows["head"].depth == 0 and rows["head/dense_0"].depth == 1
    # totals agree with the trees themselves
    leaves = [a for group in params.values() for sub in group.values()
              for a in (sub.values() if isinstance(sub, dict) else [sub])]
    assert s.total_params == sum(a.size for a in leaves) == 40 + 8 + 1040 + 170
    assert s.total_state == 8
    assert s.total_bytes == 4 * (40 + 8 + 1040 + 170 + 8)
    assert s.output.shape == (32, 10)
    text = str(s)
    assert "maxpool_0" in text and "(32, 4, 4, 4) float32" in text and "1,040" in text
    assert "1,258 trained + 8 state" in text


def test_inputs_arrays_structs_and_no_compute():
    model, params, state = cnn()
    x = np.zeros((5, 8, 8, 1), np.float32)
    assert fnn.summary(model, params, state, x).output.shape == (5, 10)
    # an input far too large to compute with: only shapes are inferred
    big = ShapeDtypeStruct((10**7, 8, 8, 1), np.float32)
    assert fnn.summary(model, params, state, big).rows[0].output.shape == (10**7, 8, 8, 4)
    with pytest.raises(TypeError, match="exactly one example input"):
        fnn.summary(model, params, state, x, x)
    # a wrong input is reported with the layer it reached
    with pytest.raises(ValueError, match=r"conv2d_0 .* 2 channels"):
        fnn.summary(model, params, state, (5, 8, 8, 2))
    with pytest.raises(Exception, match=r"layer head/dense_0 .*\(5, 100\) float32"):
        fnn.summary(model, params, state, (5, 10, 10, 1))


def test_composite_layer_lists_its_parameter_groups():
    model = fnn.Sequential([fnn.Dense(16), fnn.MultiHeadAttention(num_heads=2)])
    params, state = model.init(random.key(1), np.zeros((2, 5, 8), np.float32))
    s = fnn.summary(model, params, None, (3, 5, 8))
    rows = {r.path: r for r in s.rows}
    att = [p for p in rows if rows[p].type == "MultiHeadAttention"][0]
    groups = [p for p in rows if p.startswith(att + "/")]
    assert groups and all(rows[g].output is None for g in groups)
    assert sum(rows[g].params for g in groups) == rows[att].params
    assert rows[att].output.shape == (3, 5, 16)
