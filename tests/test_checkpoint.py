"""Tests for fnn.checkpoint: round trips, targets, validation of hostile files, the manager."""
from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import random
import struct
import subprocess
import sys
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file, save_file

from fnn import checkpoint as ckpt
from fnn.checkpoint import format as fmt
from transforms import tree as tree_util

Point = collections.namedtuple("Point", ["x", "y"])
AdamState = collections.namedtuple("AdamState", ["count", "mu", "nu"])


@tree_util.register_dataclass
@dataclasses.dataclass
class Dense:
    w: object
    b: object


@tree_util.register_dataclass(data_fields=["w"], meta_fields=["act"])
@dataclasses.dataclass
class WithCallable:
    w: object
    act: object


# --------------------------------------------------------------------------------------------
# helpers

def assert_same(a, b, path="root"):
    """Exact equality: container types, dict key types and order, scalar types, dtypes, values.

    numpy scalars in `a` are expected back as 0-d arrays.
    """
    if isinstance(a, np.generic):
        assert type(b) is np.ndarray and b.shape == (), path
        a = np.asarray(a)
    assert type(a) is type(b), f"{path}: {type(a)} != {type(b)}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, f"{path}: {a.dtype} != {b.dtype}"
        assert a.shape == b.shape, f"{path}: {a.shape} != {b.shape}"
        np.testing.assert_array_equal(a, b, err_msg=path)
        if a.dtype.kind == "f":
            assert np.array_equal(np.signbit(a), np.signbit(b)), path
    elif isinstance(a, dict):
        assert list(a.keys()) == list(b.keys()), f"{path}: keys {list(a)} != {list(b)}"
        for (ka, va), kb in zip(a.items(), b.keys()):
            assert type(ka) is type(kb), f"{path}: key {ka!r} type {type(ka)} != {type(kb)}"
            assert_same(va, b[kb], f"{path}/{ka}")
        if isinstance(a, collections.defaultdict):
            assert a.default_factory is b.default_factory
    elif isinstance(a, (list, tuple, collections.deque)):
        assert len(a) == len(b), path
        if isinstance(a, collections.deque):
            assert a.maxlen == b.maxlen, path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}/{i}")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}/{f.name}")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"
        if isinstance(a, float):
            assert math.copysign(1, a) == math.copysign(1, b), path


def roundtrip(tmp_path, tree, **kw):
    p = tmp_path / "ckpt.safetensors"
    ckpt.save(p, tree, **kw)
    return ckpt.restore(p)


def write_raw(path, header, body=b"", n=None, pad=True):
    """Write a hand-made safetensors file; `header` is a dict (dumped as JSON) or raw bytes."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    if pad:
        raw += b" " * (-len(raw) % 8)
    n = len(raw) if n is None else n
    path.write_bytes(struct.pack("<Q", n) + raw + body)
    return path


def full_tree():
    rng = np.random.default_rng(0)
    return {
        "params": {
            "dense_0": {"w": rng.standard_normal((3, 4)).astype(np.float32),
                        "b": np.zeros(4, np.float32)},
            "layers": [{"w": rng.standard_normal((2, 2))}, {"w": rng.standard_normal((2, 2))}],
        },
        "opt": AdamState(count=np.int32(7), mu=(np.ones(3, np.float16), None),
                         nu=[np.arange(3, dtype=np.int64)]),
        "point": Point(1, 2.5),
        "int_keys": {0: np.uint8(5), 10: np.array([True, False]), -3: "neg"},
        "mixed_keys": {1: "one", "1x": 2, True: None, 2.5: 3.5, None: "none-key"},
        "scalars": [1, -0.0, True, False, "text", "", 2**80, float("inf"), float("nan"), 1e-310],
        "empty": {"d": {}, "l": [], "t": (), "n": None},
        "zero_d": np.array(3.5),
        "zero_size": np.zeros((0, 4), np.int16),
        "odict": collections.OrderedDict([("z", np.ones(1)), ("a", np.zeros(1))]),
        "ddict": collections.defaultdict(list, {"k": np.ones(2, np.int8)}),
        "dense": Dense(w=np.ones((2, 3), np.float32), b=np.zeros(3, np.float32)),
        "unsorted": {"b": 1, "a": 2, "c": 3},
        "deque": collections.deque([np.ones(1), 2], maxlen=3),
        "stat": os.stat_result(tuple(range(10))),
    }


# --------------------------------------------------------------------------------------------
# round trips

def test_round_trip_full_tree(tmp_path):
    tree = full_tree()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # everything here must be rebuilt exactly
        out = roundtrip(tmp_path, tree)
    assert_same(tree, out)
    assert type(out["opt"]) is AdamState and type(out["point"]) is Point
    assert type(out["empty"]["t"]) is tuple and type(out["params"]["layers"]) is list
    assert type(out["odict"]) is collections.OrderedDict
    assert type(out["dense"]) is Dense


def test_numpy_scalars_become_arrays_python_scalars_stay(tmp_path):
    out = roundtrip(tmp_path, {"a": np.float32(1.5), "b": np.int64(-2), "c": np.bool_(True),
                               "d": 3, "e": 3.0, "f": True, "g": "s"})
    for k in "abc":
        assert type(out[k]) is np.ndarray and out[k].shape == ()
    assert out["a"].dtype == np.float32 and out["a"] == 1.5
    assert out["b"].dtype == np.int64 and out["c"].dtype == np.bool_
    assert [type(out[k]) for k in "defg"] == [int, float, bool, str]


DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64",
          "uint8", "uint16", "uint32", "uint64", "bool", "complex64"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (5,), (2, 0, 3), (3, 4, 2)])
def test_dtype_round_trip(tmp_path, dtype, shape):
    rng = np.random.default_rng(1)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        x = rng.integers(0, 2, shape).astype(bool)
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        x = rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)
    elif dt.kind == "c":
        x = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    else:
        x = (rng.standard_normal(shape) * 100).astype(dt)
    out = roundtrip(tmp_path, {"x": x})["x"]
    assert out.dtype == dt and out.shape == shape
    np.testing.assert_array_equal(out, x)
    assert out.flags.writeable and out.flags.c_contiguous


def test_special_float_values(tmp_path):
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 5e-324, np.finfo(np.float64).max])
    out = roundtrip(tmp_path, x)
    assert np.array_equal(out, x, equal_nan=True)
    assert np.array_equal(np.signbit(out), np.signbit(x))


def test_non_contiguous_and_big_endian(tmp_path):
    base = np.arange(4 * 6 * 5, dtype=np.float64).reshape(4, 6, 5)
    tree = {
        "transposed": base.T,
        "strided": base[::2, 1::3, ::-1],
        "fortran": np.asfortranarray(base),
        "big": base.astype(">f4"),
        "big_strided": base.astype(">i8")[:, ::2],
        "big_0d": np.array(7, ">u2"),
        "neg_stride_1d": np.arange(10, dtype=np.int32)[::-1],
        "broadcast": np.broadcast_to(np.arange(3.0), (4, 3)),
    }
    path = tmp_path / "c.safetensors"
    ckpt.save(path, tree)
    out = ckpt.restore(path)
    raw = load_file(path)  # what other readers see
    for k, v in tree.items():
        assert out[k].dtype == v.dtype.newbyteorder("=") and out[k].dtype.isnative, k
        np.testing.assert_array_equal(out[k], v, err_msg=k)
        np.testing.assert_array_equal(raw[k], v, err_msg=k)


def test_chunked_conversion_of_large_leaves(tmp_path, monkeypatch):
    monkeypatch.setattr(fmt, "_CHUNK_BYTES", 256)
    rng = np.random.default_rng(2)
    base = rng.standard_normal((37, 23, 11))
    tree = {"a": base.astype(">f8")[:, ::2], "b": base[::-1].T, "c": base.astype(">f4").ravel(),
            "d": base[:, :, 0].astype(">i4")}
    out = roundtrip(tmp_path, tree)
    for k, v in tree.items():
        np.testing.assert_array_equal(out[k], v, err_msg=k)


def test_safetensors_reads_file_with_tree_path_names(tmp_path):
    tree = {"params": {"dense_0": {"w": np.ones((3, 4), np.float32)}},
            "layers": [{"w": np.zeros(2)}, (np.int8(1),)],
            "scalars": {"lr": 0.1}, 5: np.arange(3)}
    path = tmp_path / "x.safetensors"
    ckpt.save(path, tree)
    loaded = load_file(path)
    assert set(loaded) == {"params/dense_0/w", "layers/0/w", "layers/1/0", "5"}
    np.testing.assert_array_equal(loaded["params/dense_0/w"], np.ones((3, 4), np.float32))
    size = path.stat().st_size
    n = struct.unpack("<Q", path.read_bytes()[:8])[0]
    assert (8 + n) % 8 == 0 and size >= 8 + n
    header = json.loads(path.read_bytes()[8:8 + n])
    assert set(header["__metadata__"]) >= {"fnn.checkpoint"}


def test_root_array_and_empty_trees(tmp_path):
    x = np.arange(5)
    assert_same(roundtrip(tmp_path, x), x)
    for t in [None, {}, [], (), {"a": None}, 3, "s"]:
        assert_same(roundtrip(tmp_path, t), t)
    assert load_file(tmp_path / "ckpt.safetensors") == {}


def test_array_like_leaves(tmp_path):
    class ArrayLike:
        def __array__(self, dtype=None, copy=None):
            return np.arange(4, dtype=np.int16)

    out = roundtrip(tmp_path, {"a": ArrayLike()})
    assert out["a"].dtype == np.int16 and list(out["a"]) == [0, 1, 2, 3]


def test_restored_arrays_are_independent_of_file(tmp_path):
    path = tmp_path / "x.safetensors"
    ckpt.save(path, {"a": np.ones(10)})
    out = ckpt.restore(path)["a"]
    out[:] = 5
    assert not isinstance(out, np.memmap) and out.flags.owndata
    os.remove(path)
    assert out.sum() == 50


def test_metadata_round_trip(tmp_path):
    path = tmp_path / "m.safetensors"
    meta = {"epoch": np.int64(3), "lr": np.float32(0.5), "tags": ["a", "b"], "nested": {"x": None},
            "hist": np.arange(3)}
    ckpt.save(path, {"a": np.ones(1)}, metadata=meta)
    assert ckpt.load_metadata(path) == {"epoch": 3, "lr": 0.5, "tags": ["a", "b"],
                                        "nested": {"x": None}, "hist": [0, 1, 2]}
    ckpt.save(path, {"a": np.ones(1)})
    assert ckpt.load_metadata(path) == {}
    with pytest.raises(TypeError, match="metadata must be a dict"):
        ckpt.save(path, {}, metadata=[1])
    with pytest.raises(TypeError, match="keys must be str"):
        ckpt.save(path, {}, metadata={1: 2})
    with pytest.raises(TypeError, match="not JSON serialisable"):
        ckpt.save(path, {}, metadata={"a": object()})


def test_foreign_safetensors_file(tmp_path):
    path = tmp_path / "f.safetensors"
    save_file({"a/b": np.ones(2, np.float32), "a/c": np.zeros(3, np.int32), "d": np.ones(1)},
              str(path), metadata={"format": "np"})
    out = ckpt.restore(path)
    assert set(out) == {"a/b", "a/c", "d"} and out["a/c"].dtype == np.int32
    assert ckpt.load_metadata(path) == {"format": "np"}
    sub = ckpt.restore(path, subtree="a")
    assert set(sub) == {"b", "c"}
    out2 = ckpt.restore(path, {"a/b": np.empty(2, np.float32), "a/c": np.empty(3, np.int32),
                               "d": np.empty(1)})
    np.testing.assert_array_equal(out2["a/b"], np.ones(2))


# --------------------------------------------------------------------------------------------
# rebuilding classes

NotImported = collections.namedtuple("NotImported", ["a", "b"])
NotImported.__module__ = "module_that_is_not_imported_anywhere"


def test_namedtuple_fallbacks_warn(tmp_path):
    Local = collections.namedtuple("Local", ["a"])
    tree = {"ni": NotImported(np.ones(1), 2), "local": Local(3)}
    with pytest.warns(ckpt.CheckpointWarning) as rec:
        out = roundtrip(tmp_path, tree)
    assert type(out["ni"]) is tuple and out["ni"][1] == 2
    assert type(out["local"]) is tuple and out["local"] == (3,)
    assert any("module_that_is_not_imported_anywhere" in str(w.message) for w in rec)
    # with a target the classes are rebuilt by the target's structure
    out = ckpt.restore(tmp_path / "ckpt.safetensors", tree)
    assert type(out["ni"]) is NotImported and type(out["local"]) is Local


def test_namedtuple_name_that_is_not_a_namedtuple(tmp_path):
    path = tmp_path / "x.safetensors"
    ckpt.save(path, {"p": Point(1, 2)})
    raw = path.read_bytes()
    # rename the class to something importable that is not a namedtuple: same length edit
    bad = raw.replace(b"test_checkpoint:Point", b"test_checkpoint:Dense")
    if bad == raw:  # module was imported under a package name
        bad = raw.replace(b":Point", b":Dense")
    path.write_bytes(bad)
    with pytest.warns(ckpt.CheckpointWarning, match="plain tuple"):
        out = ckpt.restore(path)
    assert out == {"p": (1, 2)}


def test_defaultdict_factories(tmp_path):
    tree = {"safe": collections.defaultdict(int, {"a": 1}),
            "none": collections.defaultdict(None, {"b": 2})}
    out = roundtrip(tmp_path, tree)
    assert out["safe"].default_factory is int and out["none"].default_factory is None
    with pytest.warns(ckpt.CheckpointWarning, match="without a default factory"):
        out = roundtrip(tmp_path, {"f": collections.defaultdict(lambda: 0, {"c": 3})})
    assert type(out["f"]) is collections.defaultdict and out["f"] == {"c": 3}
    assert out["f"].default_factory is None


def test_custom_node_fallback_and_target(tmp_path):
    tree = {"m": WithCallable(w=np.ones(2), act=np.tanh)}
    path = tmp_path / "x.safetensors"
    ckpt.save(path, tree)
    assert set(load_file(path)) == {"m/0"}
    with pytest.warns(ckpt.CheckpointWarning, match="custom pytree node"):
        out = ckpt.restore(path)
    assert list(out["m"]) == [0]
    out = ckpt.restore(path, {"m": WithCallable(w=np.zeros(2), act=np.tanh)})
    assert type(out["m"]) is WithCallable and out["m"].act is np.tanh
    np.testing.assert_array_equal(out["m"].w, np.ones(2))


# --------------------------------------------------------------------------------------------
# unsupported input

def test_unsupported_leaf_type_names_path(tmp_path):
    path = tmp_path / "x.safetensors"
    with pytest.raises(TypeError, match=r"params/layers/1/f: unsupported leaf type .*object"):
        ckpt.save(path, {"params": {"layers": [1, {"f": object()}]}})
    with pytest.raises(TypeError, match="a/0: unsupported leaf type"):
        ckpt.save(path, {"a": [{1, 2}]})
    assert not os.listdir(tmp_path)  # nothing written


@pytest.mark.parametrize("arr", [np.zeros(2, np.complex128), np.array(["a"]), np.array([None]),
                                 np.zeros(2, "datetime64[s]"), np.zeros(2, np.float128)
                                 if hasattr(np, "float128") else np.zeros(2, "V4"),
                                 np.zeros(2, [("a", "f4")])])
def test_unsupported_dtypes(tmp_path, arr):
    with pytest.raises(TypeError, match=r"w/x: unsupported array dtype"):
        ckpt.save(tmp_path / "x.safetensors", {"w": {"x": arr}})


def test_unsupported_keys_and_collisions(tmp_path):
    path = tmp_path / "x.safetensors"
    with pytest.raises(TypeError, match="unsupported dict key type tuple"):
        ckpt.save(path, {"a": {(1, 2): 3}})
    with pytest.raises(ValueError, match="same tensor name 'a/b'"):
        ckpt.save(path, {"a/b": np.ones(1), "a": {"b": np.ones(1)}})
    with pytest.raises(ValueError, match="same tensor name '1'"):
        ckpt.save(path, {1: 1.0, "1": 2.0})
    with pytest.raises(ValueError, match="reserved"):
        ckpt.save(path, {"__metadata__": np.ones(1)})


# --------------------------------------------------------------------------------------------
# targets, partial restores, subtrees

class Spec:
    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, dtype


def model_tree():
    return {"params": {"dense_0": {"w": np.arange(12, dtype=np.float32).reshape(3, 4),
                                   "b": np.zeros(4, np.float32)},
                       "body": [{"w": np.ones((2, 2))}, {"w": np.full((2, 2), 2.0)}],
                       "head": {"w": np.ones((4, 10), np.float32)}},
            "step": 100, "opt": (np.int32(3), np.ones(2))}


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.safetensors"
    ckpt.save(path, model_tree())
    return path


def test_target_restore_uses_target_structure(model_file):
    tree = model_tree()
    target = tree_util.map(lambda x: Spec(np.shape(x), np.asarray(x).dtype)
                           if not isinstance(x, int) else 0, tree)
    target["params"]["body"] = tuple(target["params"]["body"])  # container types from target
    target["opt"] = list(target["opt"])
    out = ckpt.restore(model_file, target)
    assert type(out["params"]["body"]) is tuple and type(out["opt"]) is list
    assert out["step"] == 100 and type(out["step"]) is int
    np.testing.assert_array_equal(out["params"]["dense_0"]["w"], tree["params"]["dense_0"]["w"])
    # numpy arrays as target
    out = ckpt.restore(model_file, tree_util.map(
        lambda x: x if isinstance(x, int) else np.zeros_like(x), model_tree()))
    assert out["step"] == 100


def test_target_shape_mismatch_names_path(model_file):
    target = model_tree()
    target["params"]["dense_0"]["w"] = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError) as e:
        ckpt.restore(model_file, target)
    assert "params/dense_0/w: shape (3, 4) in file, (4, 3) in target" in str(e.value)
    assert str(model_file) in str(e.value)


def test_target_dtype_mismatch_names_path(model_file):
    target = model_tree()
    target["params"]["body"][1]["w"] = Spec((2, 2), np.float32)
    with pytest.raises(ValueError,
                       match=r"params/body/1/w: dtype float64 in file, float32 in target"):
        ckpt.restore(model_file, target)
    # byte order is not a mismatch
    target = model_tree()
    target["params"]["dense_0"]["w"] = Spec((3, 4), ">f4")
    ckpt.restore(model_file, target)


def test_target_structure_mismatch_names_path(model_file):
    target = model_tree()
    target["params"]["extra"] = np.zeros(1)
    with pytest.raises(ValueError, match=r"in target but not in file: params/extra"):
        ckpt.restore(model_file, target)
    target = model_tree()
    del target["params"]["head"]
    with pytest.raises(ValueError, match=r"in file but not in target: params/head/w"):
        ckpt.restore(model_file, target)
    target = model_tree()
    target["step"] = np.zeros(())
    with pytest.raises(ValueError, match=r"step: Python int 100 in file, array in target"):
        ckpt.restore(model_file, target)
    target = model_tree()
    target["step"] = 1.0
    with pytest.raises(ValueError, match=r"step: Python int 100 in file, Python float"):
        ckpt.restore(model_file, target)
    target = model_tree()
    target["params"]["head"]["w"] = 3
    with pytest.raises(ValueError, match=r"params/head/w: array in file, Python int"):
        ckpt.restore(model_file, target)
    target = model_tree()
    target["params"]["head"]["w"] = object()
    with pytest.raises(TypeError, match=r"params/head/w: target leaf of type object"):
        ckpt.restore(model_file, target)


def test_root_leaf_target(tmp_path):
    path = tmp_path / "r.safetensors"
    ckpt.save(path, np.arange(3.0))
    np.testing.assert_array_equal(ckpt.restore(path, np.zeros(3)), np.arange(3.0))
    with pytest.raises(ValueError, match=r"<root>: shape \(3,\) in file, \(4,\) in target"):
        ckpt.restore(path, np.zeros(4))
    with pytest.raises(ValueError, match="in target but not in file: a"):
        ckpt.restore(path, {"a": np.zeros(3)})


def test_partial_restore(model_file):
    # fine-tuning: a new head replaces the old one; the optimizer state is not wanted
    target = model_tree()
    target["params"]["dense_0"]["w"] = np.zeros((3, 4), np.float32)
    del target["params"]["head"], target["opt"]  # in the file only: ignored
    new_head = np.full((4, 5), 9, np.float32)
    target["params"]["new_head"] = {"w": new_head}  # in the target only: kept as is
    out = ckpt.restore(model_file, target, partial=True)
    assert out["params"]["new_head"]["w"] is new_head
    assert set(out["params"]) == {"dense_0", "body", "new_head"}
    np.testing.assert_array_equal(out["params"]["dense_0"]["w"],
                                  np.arange(12, dtype=np.float32).reshape(3, 4))
    assert "opt" not in out
    # matched entries are still checked
    target["params"]["dense_0"]["w"] = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"params/dense_0/w: shape \(3, 4\) in file, \(4, 3\)"):
        ckpt.restore(model_file, target, partial=True)
    with pytest.raises(ValueError, match="needs a target"):
        ckpt.restore(model_file, partial=True)


def test_subtree_restore(model_file):
    body = ckpt.restore(model_file, subtree="params/body")
    assert type(body) is list and len(body) == 2
    np.testing.assert_array_equal(body[1]["w"], np.full((2, 2), 2.0))
    assert ckpt.restore(model_file, subtree=("params", "body", 1, "w")).shape == (2, 2)
    assert ckpt.restore(model_file, subtree="step") == 100
    # subtree with a target: names relative to the subtree
    out = ckpt.restore(model_file,
                       {"w": np.zeros((3, 4), np.float32), "b": np.zeros(4, np.float32)},
                       subtree="params/dense_0")
    np.testing.assert_array_equal(out["w"], np.arange(12, dtype=np.float32).reshape(3, 4))
    with pytest.raises(ValueError, match=r"w: shape \(3, 4\) in file, \(4, 3\) in target"):
        ckpt.restore(model_file, {"w": np.zeros((4, 3), np.float32), "b": np.zeros(4, np.float32)},
                     subtree="params/dense_0")
    out = ckpt.restore(model_file, {"head": {"w": np.zeros((4, 10), np.float32)}, "x": 1},
                       subtree="params", partial=True)
    assert out["x"] == 1 and out["head"]["w"].sum() == 40
    with pytest.raises(KeyError, match="no subtree 'params/nope'"):
        ckpt.restore(model_file, subtree="params/nope")


# --------------------------------------------------------------------------------------------
# atomic writes

def test_save_overwrites_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "x.safetensors"
    ckpt.save(path, {"a": np.ones(3)})
    ckpt.save(path, {"a": np.zeros(5), "b": 1})
    assert sorted(os.listdir(tmp_path)) == ["x.safetensors"]
    assert_same(ckpt.restore(path), {"a": np.zeros(5), "b": 1})


def test_failed_save_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    path = tmp_path / "x.safetensors"
    ckpt.save(path, {"a": np.ones(3)})

    def boom(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fmt.os, "fsync", boom)
    with pytest.raises(OSError, match="No space"):
        ckpt.save(path, {"a": np.zeros(3)})
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["x.safetensors"]
    np.testing.assert_array_equal(ckpt.restore(path)["a"], np.ones(3))


def test_temp_file_names_and_stale_cleanup(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".x.safetensors.tmp-{dead_pid}-0123456789ab"
    live = tmp_path / f".x.safetensors.tmp-{os.getpid()}-abcdef012345"
    other = tmp_path / ".unrelated.tmp"
    for p in (stale, live, other):
        p.write_bytes(b"junk")
    assert fmt.temp_file_info(stale.name) == ("x.safetensors", dead_pid)
    assert fmt.temp_file_info("x.safetensors") is None
    removed = ckpt.remove_stale_temp_files(tmp_path)
    assert removed == [str(stale)]
    assert live.exists() and other.exists()


def test_save_streams_without_copying(tmp_path, monkeypatch):
    monkeypatch.setattr(fmt, "_CHUNK_BYTES", 2**20)
    big = np.ones(8 * 2**20 // 8)  # 8 MB, contiguous: written without any copy
    odd = np.arange(1024 * 2048, dtype=">f8").reshape(1024, 2048)[:, ::2]  # 8 MB, converted
    for tree, limit in [({"a": big}, 2**19), ({"a": odd}, 2**20 + 2**19)]:
        tracemalloc.start()
        try:
            ckpt.save(tmp_path / "s.safetensors", tree)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < limit, peak
    np.testing.assert_array_equal(ckpt.restore(tmp_path / "s.safetensors")["a"], odd)


# --------------------------------------------------------------------------------------------
# hostile and corrupt files

GOOD_ENTRY = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
BODY8 = b"\x00" * 8


HOSTILE_HEADERS = [
    ("huge_len", {"a": GOOD_ENTRY}, BODY8, 2**63, "exceeds the 104857600-byte limit"),
    ("len_beyond_file", {"a": GOOD_ENTRY}, BODY8, 5000, "exceeds the file size"),
    ("offsets_beyond", {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, BODY8,
     None, "data section"),
    ("overlap", {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                 "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, BODY8, None,
     "overlaps"),
    ("gap", {"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, BODY8, None,
     "leaves a gap"),
    ("trailing", {"a": GOOD_ENTRY}, BODY8 + b"xx", None, "trailing garbage"),
    ("huge_shape", {"a": {"dtype": "F32", "shape": [10**12], "data_offsets": [0, 8]}}, BODY8,
     None, "need 4000000000000"),
    ("huge_shape_zero", {"a": {"dtype": "F32", "shape": [0, 2**62, 2**62], "data_offsets": [0, 0]}},
     b"", None, "impossibly large"),
    ("neg_shape", {"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, BODY8, None,
     "non-negative"),
    ("neg_offset", {"a": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}}, BODY8, None,
     "data_offsets"),
    ("reversed_offsets", {"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}}, BODY8,
     None, "data_offsets"),
    ("float_shape", {"a": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}}, BODY8, None,
     "shape"),
    ("bool_shape", {"a": {"dtype": "F32", "shape": [True, 2], "data_offsets": [0, 8]}}, BODY8,
     None, "shape"),
    ("too_many_dims", {"a": {"dtype": "F32", "shape": [1] * 65, "data_offsets": [0, 4]}},
     BODY8[:4], None, "shape"),
    ("unknown_dtype", {"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}},
     BODY8 * 2, None, "unknown or unsupported dtype 'F128'"),
    ("bf16_size", {"a": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 8]}}, BODY8, None,
     "BF16 and shape .3. need 6"),
    ("dtype_not_str", {"a": {"dtype": 3, "shape": [1], "data_offsets": [0, 4]}}, BODY8[:4],
     None, "dtype"),
    ("missing_key", {"a": {"dtype": "F32", "shape": [2]}}, BODY8, None, "exactly the keys"),
    ("entry_not_dict", {"a": [1, 2]}, BODY8, None, "must be an object"),
    ("non_dict_json", [1, 2, 3], b"", None, "must be a JSON object"),
    ("string_json", "hello", b"", None, "must be a JSON object"),
    ("metadata_not_dict", {"__metadata__": ["x"]}, b"", None, "__metadata__"),
    ("metadata_value_not_str", {"__metadata__": {"x": 1}}, b"", None, "not a string"),
    ("dup_keys", b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                 b'"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', BODY8, None,
     "duplicate JSON key 'a'"),
    ("dup_in_metadata", b'{"__metadata__":{"k":"1","k":"2"}}', b"", None, "duplicate JSON key"),
    ("not_json", b"{not json", b"", None, "not valid JSON"),
    ("not_utf8", b'{"\xff\xfe":1}', b"", None, "not valid JSON"),
    ("deep_json", b"[" * 200000 + b"]" * 200000, b"", None, "nested too deeply|not valid JSON"),
    ("tiny_len", b"{}", b"", 1, "too small"),
    ("empty_header", b"", b"", 0, "too small"),
]


@pytest.mark.parametrize("name,header,body,n,match", HOSTILE_HEADERS,
                         ids=[case[0] for case in HOSTILE_HEADERS])
def test_hostile_headers(tmp_path, name, header, body, n, match):
    path = write_raw(tmp_path / f"{name}.safetensors", header, body, n=n)
    with pytest.raises(ValueError, match=match) as e:
        ckpt.restore(path)
    assert str(path) in str(e.value)
    with pytest.raises(ValueError):
        ckpt.load_metadata(path)


@pytest.mark.parametrize("content", [b"", b"\x01\x00", b"\x10" + b"\x00" * 7])
def test_short_files(tmp_path, content):
    path = tmp_path / "short.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="short.safetensors"):
        ckpt.restore(path)


def _with_structure(tree_json, header=None, body=b""):
    header = dict(header or {})
    header["__metadata__"] = {fmt.FORMAT_KEY: tree_json if isinstance(tree_json, str)
                              else json.dumps(tree_json)}
    return header, body


HOSTILE_STRUCTURES = [
    ("bad_json", "{oops", "not valid JSON"),
    ("no_tree", {"version": 1}, "'tree' entry"),
    ("future_version", {"version": 99, "tree": {"t": "none"}}, "unsupported format version"),
    ("unknown_kind", {"version": 1, "tree": {"t": "pickle"}}, "unknown node kind"),
    ("node_not_dict", {"version": 1, "tree": [1]}, "malformed structure node"),
    ("missing_children", {"version": 1, "tree": {"t": "list"}}, "malformed list"),
    ("keys_len", {"version": 1, "tree": {"t": "dict", "k": [["s", "a"]], "c": []}},
     "malformed dict"),
    ("bad_key", {"version": 1, "tree": {"t": "dict", "k": [["x", 1]], "c": [{"t": "none"}]}},
     "malformed dict key"),
    ("dup_dict_keys", {"version": 1, "tree": {"t": "dict", "k": [["i", 1], ["f", "1.0"]],
                                              "c": [{"t": "none"}, {"t": "none"}]}},
     "duplicate dict keys"),
    ("bad_int", {"version": 1, "tree": {"t": "int", "v": "12"}}, "malformed integer"),
    ("bad_float", {"version": 1, "tree": {"t": "float", "v": 1.5}}, "malformed float"),
    ("bad_bool", {"version": 1, "tree": {"t": "bool", "v": 1}}, "malformed bool"),
    ("tensor_without_leaf", {"version": 1, "tree": {"t": "none"}}, "tensors without a tree leaf"),
    ("leaf_without_tensor", {"version": 1, "tree": {"t": "dict", "k": [["s", "a"], ["s", "b"]],
                                                    "c": [{"t": "array"}, {"t": "array"}]}},
     "array leaves without a tensor"),
    ("deep", '{"version":1,"tree":' + '{"t":"list","c":[' * 5000 + "]}" * 5000 + "}",
     "nested too deeply"),
    ("namedtuple_fields", {"version": 1, "tree": {"t": "namedtuple", "type": "a:B", "f": [1],
                                                  "c": [{"t": "none"}]}}, "malformed namedtuple"),
]


@pytest.mark.parametrize("name,tree_json,match", HOSTILE_STRUCTURES,
                         ids=[case[0] for case in HOSTILE_STRUCTURES])
def test_hostile_structure_metadata(tmp_path, name, tree_json, match):
    if name in ("tensor_without_leaf", "leaf_without_tensor"):
        header, body = _with_structure(tree_json, {"a": GOOD_ENTRY}, BODY8)
    else:
        header, body = _with_structure(tree_json)
    path = write_raw(tmp_path / f"{name}.safetensors", header, body)
    with pytest.raises(ValueError, match=match):
        ckpt.restore(path)


def test_hostile_user_metadata(tmp_path):
    path = write_raw(tmp_path / "m.safetensors",
                     {"__metadata__": {fmt.FORMAT_KEY: '{"version":1,"tree":{"t":"none"}}',
                                       fmt.METADATA_KEY: "[1, 2]"}})
    with pytest.raises(ValueError, match="user metadata must be a JSON object"):
        ckpt.load_metadata(path)
    assert ckpt.restore(path) is None


def test_bool_tensor_bytes_are_canonicalised(tmp_path):
    path = write_raw(tmp_path / "b.safetensors",
                     {"a": {"dtype": "BOOL", "shape": [3], "data_offsets": [0, 3]}},
                     body=b"\x00\x02\x01")
    out = ckpt.restore(path)["a"]
    assert out.tolist() == [False, True, True] and out.view(np.uint8).tolist() == [0, 1, 1]


def _small_valid_file(path):
    tree = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": (np.int8(-1), None),
            "l": [np.zeros(0, np.int16), 3, "x"], 4: {"k": np.ones(2, np.float64)}}
    ckpt.save(path, tree, metadata={"epoch": 1})
    return path.read_bytes()


def _check_mutant(path, data):
    """A mutated file must either raise ValueError or load with the shapes its header declares."""
    path.write_bytes(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = ckpt.restore(path)
            ckpt.load_metadata(path)
    except ValueError:
        return False
    header = fmt.read_header(path)
    # raw optree paths: the file names leaves by raw keys, and a mutant may hold a dict whose
    # keys cannot be sorted (which transforms.tree, as JAX, rejects)
    import optree
    paths, lvs, _ = optree.tree_flatten_with_path(out, namespace=tree_util.NAMESPACE)
    for p, leaf in zip(paths, lvs):
        if isinstance(leaf, np.ndarray):
            name = fmt.path_name(p)
            assert leaf.shape == header.tensors[name][1]
            assert leaf.dtype == header.tensors[name][0]
    n = struct.unpack("<Q", data[:8])[0]
    declared = json.loads(data[8:8 + n])
    declared.pop("__metadata__", None)
    assert {k: tuple(v["shape"]) for k, v in declared.items()} == \
        {k: v[1] for k, v in header.tensors.items()}
    return True


def test_every_truncation_fails_cleanly(tmp_path):
    data = _small_valid_file(tmp_path / "v.safetensors")
    path = tmp_path / "t.safetensors"
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError):
            ckpt.restore(path)


def test_seeded_random_mutations(tmp_path):
    data = _small_valid_file(tmp_path / "v.safetensors")
    n = struct.unpack("<Q", data[:8])[0]
    rng = random.Random(1234)
    path = tmp_path / "m.safetensors"
    loaded = 0
    for i in range(1500):
        buf = bytearray(data)
        mode = i % 5
        if mode == 0:  # flip bytes in the header
            for _ in range(rng.randint(1, 4)):
                buf[rng.randrange(8, 8 + n)] = rng.randrange(256)
        elif mode == 1:  # flip bytes in the body (values change, file stays valid)
            for _ in range(rng.randint(1, 4)):
                buf[rng.randrange(8 + n, len(buf))] = rng.randrange(256)
        elif mode == 2:  # change the length prefix
            buf[rng.randrange(0, 8)] = rng.randrange(256)
        elif mode == 3:  # replace digits in the header, e.g. shapes and offsets
            digits = [j for j in range(8, 8 + n) if chr(buf[j]).isdigit()]
            for _ in range(rng.randint(1, 3)):
                buf[rng.choice(digits)] = ord(rng.choice("0123456789-"))
        else:  # insert or delete a byte
            j = rng.randrange(len(buf))
            if rng.random() < 0.5:
                del buf[j]
            else:
                buf.insert(j, rng.randrange(256))
        loaded += _check_mutant(path, bytes(buf))
    assert loaded > 100  # body mutations still load


@settings(max_examples=300, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_hypothesis_mutations(tmp_path, data):
    base = getattr(test_hypothesis_mutations, "_base", None)
    if base is None:
        base = _small_valid_file(tmp_path / "hv.safetensors")
        test_hypothesis_mutations._base = base
    buf = bytearray(base)
    edits = data.draw(st.lists(st.tuples(st.integers(0, len(buf) - 1), st.integers(0, 255)),
                               min_size=1, max_size=6))
    for pos, val in edits:
        buf[pos] = val
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(buf))))
    if cut is not None:
        buf = buf[:cut]
    _check_mutant(tmp_path / "hm.safetensors", bytes(buf))


# --------------------------------------------------------------------------------------------
# CheckpointManager

def test_manager_argument_validation(tmp_path):
    with pytest.raises(ValueError, match="best_mode"):
        ckpt.CheckpointManager(tmp_path, best_mode="lowest")
    for bad in (0, -1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="max_to_keep"):
            ckpt.CheckpointManager(tmp_path, max_to_keep=bad)
    m = ckpt.CheckpointManager(tmp_path)
    with pytest.raises(ValueError, match="non-negative"):
        m.save(-1, {})
    for bad in (1.0, "1", True, None):
        with pytest.raises(TypeError, match="step must be"):
            m.save(bad, {})
    with pytest.raises(TypeError, match="metrics must be a dict"):
        m.save(1, {}, metrics=[1])
    with pytest.raises(TypeError, match="metric names must be str"):
        m.save(1, {}, metrics={1: 2.0})
    assert m.all_steps() == []
    assert m.best_step() is None and m.latest_step() is None and m.all_steps() == []
    with pytest.raises(FileNotFoundError, match="no checkpoints in"):
        m.restore()
    m.save(np.int64(3), {"a": 1})
    with pytest.raises(FileNotFoundError, match=r"step 4 .*available steps: \[3\]"):
        m.restore(4)


def test_manager_keep_n_plus_best(tmp_path):
    m = ckpt.CheckpointManager(tmp_path / "run", max_to_keep=2, best_metric="loss")
    losses = {0: 5.0, 10: 1.0, 20: 3.0, 30: 2.0, 40: 4.0, 50: 0.5, 60: 9.0}
    for step, loss in losses.items():
        m.save(step, {"w": np.full(3, step, np.float32), "step": step},
               metrics={"loss": np.float32(loss), "acc": 1 - loss / 10})
        if step == 30:
            assert m.all_steps() == [10, 20, 30]
    assert m.all_steps() == [50, 60]  # 50 is both among the newest and the best
    assert m.best_step() == 50 and m.latest_step() == 60
    m.save(70, {"w": np.zeros(3, np.float32), "step": 70}, metrics={"loss": 7.0})
    assert m.all_steps() == [50, 60, 70]
    assert m.metrics(50) == {"loss": 0.5, "acc": 0.95}
    assert m.metadata(70)["step"] == 70
    assert m.restore()["step"] == 70
    np.testing.assert_array_equal(m.restore(50)["w"], np.full(3, 50, np.float32))
    # a fresh manager sees the same state: the files are the source of truth
    m2 = ckpt.CheckpointManager(tmp_path / "run", best_metric="loss")
    assert m2.best_step() == 50 and m2.all_steps() == [50, 60, 70]
    m3 = ckpt.CheckpointManager(tmp_path / "run", best_metric="acc", best_mode="max")
    assert m3.best_step() == 50
    assert ckpt.CheckpointManager(tmp_path / "run").best_step() is None


def test_manager_best_ignores_missing_and_nan(tmp_path):
    m = ckpt.CheckpointManager(tmp_path, max_to_keep=1, best_metric="acc", best_mode="max")
    m.save(1, {}, metrics={"acc": 0.5})
    m.save(2, {}, metrics={"acc": float("nan")})
    m.save(3, {}, metrics={})
    m.save(4, {}, metrics={"acc": "high"})
    assert m.best_step() == 1 and m.all_steps() == [1, 4]
    m.save(5, {}, metrics={"acc": 0.5})  # ties: the earlier step stays best
    assert m.best_step() == 1 and m.all_steps() == [1, 5]


def test_manager_overwrite_same_step(tmp_path):
    m = ckpt.CheckpointManager(tmp_path, best_metric="loss")
    m.save(5, {"a": np.ones(2)}, metrics={"loss": 1.0})
    m.save(5, {"a": np.zeros(4), "b": "new"}, metrics={"loss": 3.0})
    assert m.all_steps() == [5] and m.metrics(5) == {"loss": 3.0}
    assert_same(m.restore(5), {"a": np.zeros(4), "b": "new"})
    assert sorted(os.listdir(tmp_path)) == ["step_00000005.safetensors"]


def test_manager_cleans_leftovers_and_ignores_foreign_files(tmp_path):
    dead_pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                                  capture_output=True, text=True, check=True).stdout)
    leftover = tmp_path / f".step_00000007.safetensors.tmp-{dead_pid}-deadbeef0000"
    leftover.write_bytes(b"partial")
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "step_7.safetensors").write_bytes(b"not canonical")
    m = ckpt.CheckpointManager(tmp_path, max_to_keep=1)
    assert not leftover.exists()
    assert m.all_steps() == [] and m.latest_step() is None
    leftover.write_bytes(b"partial")
    m.save(1, {"x": 1})
    assert not leftover.exists()
    m.save(2, {"x": 2})
    assert sorted(os.listdir(tmp_path)) == ["notes.txt", "step_00000002.safetensors",
                                            "step_7.safetensors"]


def test_manager_restore_with_target_and_subtree(tmp_path):
    m = ckpt.CheckpointManager(tmp_path)
    m.save(1, model_tree(), metrics={"loss": 1})
    target = model_tree()
    target["params"]["dense_0"]["w"] = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"params/dense_0/w: shape \(3, 4\) in file"):
        m.restore(target=target)
    out = m.restore(1, target=model_tree())
    assert out["step"] == 100
    body = m.restore(subtree="params/body")
    assert len(body) == 2
    out = m.restore(target={"params": {"head": {"w": np.zeros((4, 10), np.float32)}}},
                    partial=True)
    assert out["params"]["head"]["w"].sum() == 40


def test_full_fnn_model_and_optimiser_state_round_trip(tmp_path):
    """A whole training state (params, batch-norm state, Adam state with its named tuples and
    int32 step count) comes back exactly, with the same container types, without a target."""
    import fnn
    import transforms as T
    from fnn import optim
    from transforms import random

    model = fnn.Sequential([fnn.Conv2D(4, (3, 3)), fnn.BatchNorm(), fnn.relu, fnn.MaxPool((2, 2)),
                            fnn.Flatten(), fnn.Dense(3)])
    x = np.asarray(random.normal(random.key(0), (2, 6, 6, 1)))
    params, state = model.init(random.key(1), x)
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.adam(1e-2))
    opt_state = opt.init(params)

    def loss(p, s):
        y, s = model.apply(p, s, x, train=True)
        return (y ** 2).mean(), s

    (_, state), grads = T.value_and_grad(loss, has_aux=True)(params, state)
    updates, opt_state = opt.update(grads, opt_state, params)
    params = optim.apply_updates(params, updates)
    tree = {"params": params, "state": state, "opt_state": opt_state, "step": 1}
    path = str(tmp_path / "train_state.safetensors")
    ckpt.save(path, tree)
    back = ckpt.restore(path)
    assert T.tree.structure(back) == T.tree.structure(tree)
    for a, b in zip(T.tree.leaves(back), T.tree.leaves(tree)):
        assert type(a) is type(b) or isinstance(a, np.ndarray)
        np.testing.assert_array_equal(a, b)
        if isinstance(b, np.ndarray):
            assert a.dtype == b.dtype and a.shape == b.shape
    assert type(back["opt_state"]) is type(opt_state)
    assert type(back["opt_state"][1][0]) is type(opt_state[1][0])      # ScaleByAdamState


# --------------------------------------------------------------------------------------------
# Damaged files: absurd int keys, a corrupted format key; partial restores that match nothing

def test_absurd_int_dict_key_is_a_checkpoint_error(tmp_path):
    body = b"\0\0\0\0"
    entry = {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}
    for raw_key in ("0x" + "f" * 200_000, "-0x" + "1" * 5000):
        tree = {"version": 1, "tree": {"t": "dict", "k": [["i", raw_key]], "c": [{"t": "array"}]}}
        header, _ = _with_structure(tree, {"x": entry})
        path = write_raw(tmp_path / "hugekey.safetensors", header, body)
        with pytest.raises(ckpt.CheckpointError, match=r"hugekey\.safetensors.*dict key "
                                                       r"'-?0x[0-9a-f]+\.\.\..*too large"):
            ckpt.restore(path)
    # a 200,000-digit decimal JSON integer: the structure JSON itself is rejected
    tree_json = ('{"version":1,"tree":{"t":"dict","k":[["i",' + "9" * 200_000
                 + ']],"c":[{"t":"array"}]}}')
    header, _ = _with_structure(tree_json, {"x": entry})
    path = write_raw(tmp_path / "hugedec.safetensors", header, body)
    with pytest.raises(ckpt.CheckpointError, match=r"hugedec\.safetensors"):
        ckpt.restore(path)
    # saving such a key is a clear error too (not a bare int() ValueError)
    with pytest.raises(ValueError, match=r"int dict key of \d+ bits is too large"):
        ckpt.save(tmp_path / "s.safetensors", {2 ** 20_000: np.zeros(2)})
    big = 2 ** 200                                  # large but nameable: round-trips
    assert list(roundtrip(tmp_path, {big: np.zeros(1)})) == [big]


def _flip_in_header(data: bytes, needle: bytes, index: int, bit: int = 0) -> bytes:
    pos = data.index(needle) + index
    return data[:pos] + bytes([data[pos] ^ (1 << bit)]) + data[pos + 1:]


@pytest.mark.parametrize("with_metadata", [False, True])
@pytest.mark.parametrize("index", [0, 4, 13])
def test_bit_flip_in_format_key_is_detected(tmp_path, with_metadata, index):
    path = tmp_path / "c.safetensors"
    ckpt.save(path, {"w": np.arange(3.0), "n": 1}, metadata={"e": 1} if with_metadata else None)
    data = path.read_bytes()
    # flip one bit of the key "fnn.checkpoint" (its first occurrence: the structure entry)
    path.write_bytes(_flip_in_header(data, b'"fnn.checkpoint"', 1 + index))
    with pytest.raises(ckpt.CheckpointError, match="damaged checkpoint"):
        ckpt.restore(path)


def test_bit_flip_in_metadata_key_is_detected(tmp_path):
    path = tmp_path / "c.safetensors"
    ckpt.save(path, {"w": np.arange(3.0)}, metadata={"epoch": 3})
    data = path.read_bytes()
    path.write_bytes(_flip_in_header(data, b'"fnn.checkpoint.metadata"', 20))
    with pytest.raises(ckpt.CheckpointError, match="damaged checkpoint"):
        ckpt.load_metadata(path)


def test_foreign_metadata_still_loads_flat(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"a": np.ones(2, np.float32)}, str(path), metadata={"format": "pt", "fnn": "x"})
    out = ckpt.restore(path)
    assert list(out) == ["a"]


def test_partial_restore_reports_and_refuses_nothing_in_common(model_file, caplog):
    target = model_tree()
    target["params"]["dense_0"]["w"] = np.zeros((3, 4), np.float32)
    del target["params"]["head"], target["opt"]
    target["params"]["new_head"] = {"w": np.zeros((4, 5), np.float32)}
    with caplog.at_level("WARNING", logger="fnn.checkpoint"):
        ckpt.restore(model_file, target, partial=True)
    msg = " ".join(r.getMessage() for r in caplog.records if r.name == "fnn.checkpoint")
    assert "params/new_head/w" in msg and "params/head/w" in msg and "opt/" in msg
    assert "1 path(s) missing" in msg
    caplog.clear()
    # everything matches: nothing to report
    with caplog.at_level("WARNING", logger="fnn.checkpoint"):
        ckpt.restore(model_file, model_tree(), partial=True)
    assert not [r for r in caplog.records if r.name == "fnn.checkpoint"]
    # no name in common: the random init would come back silently -> an error
    init = {"encoder": {"w": np.zeros((3, 4), np.float32)}, "b": np.zeros(2, np.float32)}
    with pytest.raises(ckpt.CheckpointError,
                       match=r"model\.safetensors.*no tree path in common.*encoder/w.*"
                             r"params/dense_0/w"):
        ckpt.restore(model_file, init, partial=True)
