"""Checkpoint files from elsewhere: bfloat16 tensors, named-tuple field names and files of the
previous format version (positional names), and the partial-restore report."""
import collections
import json

import numpy as np
import pytest

from fnn import checkpoint as ckpt
from fnn import optim
from transforms import tree_util

safetensors = pytest.importorskip("safetensors")
from safetensors import TensorSpec, serialize_file  # noqa: E402
from safetensors.numpy import load_file, save_file  # noqa: E402

try:
    import ml_dtypes
except ImportError:  # pragma: no cover - ml_dtypes comes with most scientific stacks
    ml_dtypes = None
needs_ml_dtypes = pytest.mark.skipif(ml_dtypes is None, reason="ml_dtypes not installed")

# values a bfloat16 holds exactly (8 significant bits), incl. signed zero, inf, nan, subnormal
EXACT = np.array([1.0, -2.5, 3.140625, 2.0**-20, -0.0, np.inf, -np.inf, np.nan, 65280.0,
                  2.0**-133, 3.3895313892515355e38], np.float32)


def bf16_bits(x32):
    """bfloat16 bit patterns of float32 values: the top 16 bits (truncation)."""
    return (np.ascontiguousarray(x32, np.float32).view(np.uint32) >> 16).astype("<u2")


def write_bf16_file(path, tensors):
    """A safetensors file with raw BF16 tensors, written by the safetensors package itself."""
    keep = {k: bf16_bits(v) for k, v in tensors.items()}
    specs = {k: TensorSpec(dtype="bfloat16", shape=b.shape, data_ptr=b.ctypes.data,
                           data_len=b.nbytes) for k, b in keep.items()}
    serialize_file(specs, str(path), metadata=None)
    return path


def test_bf16_file_upcasts_to_float32_by_default(tmp_path):
    w = EXACT.reshape(1, -1).repeat(2, 0)
    w[1] *= -1
    path = write_bf16_file(tmp_path / "hf.safetensors", {"w": w, "b": np.array([0.5], np.float32)})
    assert ckpt.read_header(path).tensors["w"][1] == (2, EXACT.size)
    out = ckpt.restore(path)
    assert out["w"].dtype == np.float32 and out["w"].shape == w.shape
    np.testing.assert_array_equal(out["w"], w)              # exact, nan and -0.0 included
    assert np.signbit(out["w"][0, 4]) and not np.signbit(out["w"][1, 4])
    np.testing.assert_array_equal(out["b"], [0.5])
    # values that are not representable come back as their truncated bfloat16
    x = np.array([1e-3, np.pi, -7.77], np.float32)
    path2 = write_bf16_file(tmp_path / "trunc.safetensors", {"x": x})
    got = ckpt.restore(path2)["x"]
    np.testing.assert_allclose(got, x, rtol=2.0**-7)
    assert np.all(np.abs(got) <= np.abs(x))                 # truncation rounds toward zero


def test_bf16_into_float32_target_and_errors(tmp_path):
    path = write_bf16_file(tmp_path / "hf.safetensors", {"w": EXACT[:4].reshape(2, 2)})
    out = ckpt.restore(path, {"w": np.zeros((2, 2), np.float32)})
    np.testing.assert_array_equal(out["w"], EXACT[:4].reshape(2, 2))
    with pytest.raises(ckpt.CheckpointError,
                       match=r"w: dtype bfloat16 in file, float16 in target"):
        ckpt.restore(path, {"w": np.zeros((2, 2), np.float16)})
    with pytest.raises(ckpt.CheckpointError, match=r"w: shape \(2, 2\) in file, \(4,\)"):
        ckpt.restore(path, {"w": np.zeros(4, np.float32)})
    with pytest.raises(ValueError, match="bfloat16 must be one of"):
        ckpt.restore(path, bfloat16="bf16")


@needs_ml_dtypes
def test_bf16_as_ml_dtypes(tmp_path):
    bf = np.dtype(ml_dtypes.bfloat16)
    x = np.array([1e-3, np.pi, -7.77, 1.0], np.float32)
    path = write_bf16_file(tmp_path / "hf.safetensors", {"x": x})
    out = ckpt.restore(path, bfloat16="ml_dtypes")["x"]
    assert out.dtype == bf
    np.testing.assert_array_equal(out.view(np.uint16), bf16_bits(x))
    # the float32 default agrees with ml_dtypes' own conversion of the same bits
    np.testing.assert_array_equal(ckpt.restore(path)["x"], out.astype(np.float32))
    # a bfloat16 target leaf receives bfloat16
    got = ckpt.restore(path, {"x": np.zeros(4, bf)})["x"]
    assert got.dtype == bf and np.array_equal(got.view(np.uint16), bf16_bits(x))


@needs_ml_dtypes
def test_bf16_arrays_save_as_BF16(tmp_path):
    bf = np.dtype(ml_dtypes.bfloat16)
    w = np.arange(-6, 6, dtype=np.float32).reshape(3, 4).astype(bf) / 8
    tree = {"w": w, "wt": w.T, "n": np.float32(2)}          # a strided leaf too
    path = ckpt.save(tmp_path / "bf.safetensors", tree)
    raw = open(path, "rb").read()
    hdr = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert hdr["w"]["dtype"] == hdr["wt"]["dtype"] == "BF16" and hdr["n"]["dtype"] == "F32"
    back = ckpt.restore(path, bfloat16="ml_dtypes")
    assert back["w"].dtype == bf and back["wt"].dtype == bf
    np.testing.assert_array_equal(back["w"].astype(np.float32), w.astype(np.float32))
    np.testing.assert_array_equal(back["wt"].astype(np.float32), w.T.astype(np.float32))
    # the safetensors package reads the same bfloat16 values
    ref = load_file(str(path))
    np.testing.assert_array_equal(ref["wt"].astype(np.float32), w.T.astype(np.float32))
    # default: upcast
    assert ckpt.restore(path)["w"].dtype == np.float32


# --------------------------------------------------------------------------------------------
# named tuples: field names, and files of format version 1 (positional names)

State = collections.namedtuple("State", ["count", "mu"])


def adam_tree():
    params = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float32)}
    opt = optim.adam(1e-3)
    state = opt.init(params)
    state = opt.update(params, state, params)[1]   # count 1, non-zero moments
    return {"params": params, "opt_state": state}


def test_named_tuple_children_named_by_field(tmp_path):
    tree = adam_tree()
    path = ckpt.save(tmp_path / "adam.safetensors", tree)
    names = set(ckpt.read_header(path).tensors)
    assert {"opt_state/0/mu/w", "opt_state/0/nu/b", "opt_state/0/count"} <= names
    assert not any(n.startswith("opt_state/0/1/") for n in names)
    # the names are the key paths as keystr shows them, with '/' separators
    flat, _ = tree_util.tree_flatten_with_path(tree)
    assert {tree_util.keystr(p, simple=True, separator="/") for p, _ in flat} == names
    # exact rebuild, restore into a target, subtree by field name
    back = ckpt.restore(path)
    assert type(back["opt_state"][0]) is type(tree["opt_state"][0])
    np.testing.assert_array_equal(back["opt_state"][0].mu["w"], tree["opt_state"][0].mu["w"])
    zeros = tree_util.tree_map(np.zeros_like, tree)
    into = ckpt.restore(path, zeros)
    np.testing.assert_array_equal(into["opt_state"][0].nu["b"], tree["opt_state"][0].nu["b"])
    np.testing.assert_array_equal(ckpt.restore(path, subtree="opt_state/0/mu/w"),
                                  tree["opt_state"][0].mu["w"])


def write_v1_file(path):
    """A file as format version 1 wrote it: named-tuple children named by position."""
    count, mu = np.array(7, np.int32), np.array([1.5, -2.0], np.float32)
    structure = {"version": 1, "tree": {"t": "dict", "k": [["s", "step"], ["s", "opt"]], "c": [
        {"t": "int", "v": 3},
        {"t": "tuple", "c": [{"t": "namedtuple", "type": f"{__name__}:State",
                              "f": ["count", "mu"],
                              "c": [{"t": "array"},
                                    {"t": "dict", "k": [["s", "w"]], "c": [{"t": "array"}]}]}]},
    ]}}
    save_file({"opt/0/0": count, "opt/0/1/w": mu}, str(path),
              metadata={"fnn.checkpoint": json.dumps(structure)})
    return count, mu


def test_version_1_files_with_positional_names_still_restore(tmp_path):
    path = tmp_path / "v1.safetensors"
    count, mu = write_v1_file(path)
    out = ckpt.restore(path)
    assert out["step"] == 3 and type(out["opt"][0]) is State
    np.testing.assert_array_equal(out["opt"][0].count, count)
    np.testing.assert_array_equal(out["opt"][0].mu["w"], mu)
    target = {"step": 0, "opt": (State(np.zeros((), np.int32), {"w": np.zeros(2, np.float32)}),)}
    into = ckpt.restore(path, target)
    np.testing.assert_array_equal(into["opt"][0].mu["w"], mu)
    assert into["step"] == 3
    into = ckpt.restore(path, {"opt": target["opt"]}, partial=True)
    np.testing.assert_array_equal(into["opt"][0].count, count)
    np.testing.assert_array_equal(ckpt.restore(path, subtree="opt/0/1/w"), mu)
    # saving again writes the current version, with field names
    again = ckpt.save(tmp_path / "v2.safetensors", out)
    assert set(ckpt.read_header(again).tensors) == {"opt/0/count", "opt/0/mu/w"}


def test_partial_restore_returns_missing_and_unexpected_keys(tmp_path):
    tree = adam_tree()
    path = ckpt.save(tmp_path / "adam.safetensors", tree)
    target = {"params": {"w": np.zeros((2, 3), np.float32),
                         "head": np.full(4, 9.0, np.float32)}}
    out, keys = ckpt.restore(path, target, partial=True, return_keys=True)
    assert isinstance(keys, ckpt.IncompatibleKeys)
    assert keys.missing_keys == ["params/head"]
    assert sorted(keys.unexpected_keys) == sorted(
        ["params/b", "opt_state/0/count", "opt_state/0/mu/b", "opt_state/0/mu/w",
         "opt_state/0/nu/b", "opt_state/0/nu/w"])
    np.testing.assert_array_equal(out["params"]["w"], tree["params"]["w"])
    np.testing.assert_array_equal(out["params"]["head"], np.full(4, 9.0))
    # strict restore: nothing to report
    _, keys = ckpt.restore(path, tree, return_keys=True)
    assert keys == ([], [])
    # nothing in common: an error naming a few names of both sides
    with pytest.raises(ckpt.CheckpointError,
                       match=r"no tree path in common.*target has encoder/w.*file has "
                             r"params/w, params/b"):
        ckpt.restore(path, {"encoder": {"w": np.zeros(2)}}, partial=True)
