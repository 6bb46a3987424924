"""The checkpoint file format: pytrees in a plain safetensors file.

Layout
------
A checkpoint is an ordinary safetensors file::

    [8 bytes]  N, the header length, unsigned little-endian
    [N bytes]  JSON header, padded with spaces so that 8 + N is a multiple of 8
    [rest]     the tensor bytes, back to back, in header order

The header maps each tensor name to ``{"dtype", "shape", "data_offsets"}``
(offsets relative to the start of the byte buffer) and carries a
``"__metadata__"`` map of strings to strings.  Every array leaf of the tree is
one tensor, named by its tree path joined with ``/`` (``params/dense_0/w``,
``layers/0/w``; the root, when the whole tree is one array, is named ``""``).
Arrays are stored C-contiguous and little-endian.

Two ``__metadata__`` entries belong to this module:

* ``"fnn.checkpoint"``: JSON ``{"version": 1, "tree": NODE}`` describing the
  tree structure.  NODE is one of::

      {"t": "array"}                       an array leaf (dtype/shape in the header)
      {"t": "none"}
      {"t": "int", "v": 3}                 Python scalars, kept in the JSON; ints beyond
      {"t": "float", "v": "0.1"}           +-2**63 as "0x..." strings, floats as repr()
      {"t": "bool", "v": true}             (exact, including nan/inf/-0.0)
      {"t": "str", "v": "text"}
      {"t": "dict" | "odict", "k": [KEY, ...], "c": [NODE, ...]}   keys in insertion order
      {"t": "ddict", "f": "builtins:list" | null, "k": [...], "c": [...]}
      {"t": "list" | "tuple", "c": [...]}
      {"t": "namedtuple", "type": "module:QualName", "f": [field, ...], "c": [...]}
      {"t": "structseq", "type": "module:QualName", "c": [...]}
      {"t": "custom", "type": "module:QualName", "k": [KEY, ...], "c": [...], "aux": ...}

  where KEY is ``["s", str]``, ``["i", int]``, ``["b", bool]``, ``["f", repr]`` or
  ``["n", null]``, so dict key types survive (``int`` keys stay ``int``).
  ``custom`` is a node registered with `transforms.tree`; its ``aux`` (the
  static data of the node) is stored only when it is plain data (None, numbers,
  strings, tuples, lists, str-keyed dicts).  Tensor names are not stored in the
  structure: they are recomputed from the keys and must match the header's
  tensor names exactly.
* ``"fnn.checkpoint.metadata"``: the user's metadata dict as JSON.

Any other safetensors file can be restored too: it comes back as a flat
``{name: array}`` dict.  A file that carries this format's metadata (the user
metadata entry, a key one character away from ``"fnn.checkpoint"``, or a value
shaped like the structure JSON) but no ``"fnn.checkpoint"`` entry is a damaged
checkpoint and raises `CheckpointError` instead of loading as a flat dict.

Supported leaves
----------------
``numpy.ndarray`` and numpy scalars (both come back as arrays; numpy scalars
as 0-d arrays), objects implementing ``__array__`` (converted with
``numpy.asarray``), ``None`` and Python ``int``/``float``/``bool``/``str``.
Array dtypes: bool, int8/16/32/64, uint8/16/32/64, float16/32/64, complex64 and
bfloat16 (``ml_dtypes.bfloat16`` arrays, the type JAX uses, are saved as ``BF16``
tensors).  complex128, object, string and other dtypes raise ``TypeError``.

bfloat16
--------
NumPy has no bfloat16, and most published weights (Hugging Face) are stored as
``BF16``.  `restore` reads such tensors as float32 by default (exact: a bfloat16 is
the top 16 bits of a float32), so they load into ordinary float32 models with no
extra package.  ``restore(..., bfloat16="ml_dtypes")`` keeps them as
``ml_dtypes.bfloat16`` arrays instead (half the memory; needs the ``ml_dtypes``
package, which JAX also uses).  With a `target`, the target leaf's dtype decides:
a float32 leaf receives the upcast values, an ``ml_dtypes.bfloat16`` leaf the
bfloat16 values.

Tree paths and tensor names
---------------------------
Named-tuple children are named by field (``opt_state/0/mu/w``, as
`transforms.tree_util.keystr` shows them: ``[0].mu['w']``) since format version 2.
Files of version 1 named them by position (``opt_state/0/1/w``); they are still
restored, with or without a target (the target's names are then computed the old
way).  Struct sequences keep positional names.  Any other leaf type raises ``TypeError`` naming its
tree path.  Dict keys may be ``str``, ``int``, ``bool``, ``float`` or ``None``.

Safety
------
Restoring never unpickles or evaluates anything.  The header is validated
completely before any tensor is read (see `read_header`); a truncated,
corrupt or hostile file raises `CheckpointError` (a ``ValueError``) naming the
file and the problem.  Memory allocated while reading is bounded by the file
size.  Named tuples, struct sequences and custom nodes are rebuilt only from
classes that are already imported (looked up in ``sys.modules``, so restoring
never imports a module named by the file) and that are of the expected kind;
otherwise they come back as plain containers with a `CheckpointWarning`.

Crash safety
------------
`save` streams into a temporary file ``.{name}.tmp-{pid}-{random}`` in the
destination directory, fsyncs it, renames it over the destination with
``os.replace`` and fsyncs the directory, so the destination always holds
either the complete old file or the complete new one.  Leftover temporary
files of killed processes can be removed with `remove_stale_temp_files`.
"""
from __future__ import annotations

import collections
import errno
import json
import logging
import math
import os
import re
import secrets
import sys
import warnings

import numpy as np
import optree

from transforms import tree as tree_util

__all__ = [
    "save", "restore", "load_metadata", "read_header", "CheckpointError", "CheckpointWarning",
    "IncompatibleKeys", "BFLOAT16_MODES",
    "remove_stale_temp_files", "temp_file_info", "FORMAT_KEY", "METADATA_KEY", "FORMAT_VERSION",
    "MAX_HEADER_BYTES",
]

FORMAT_KEY = "fnn.checkpoint"
METADATA_KEY = "fnn.checkpoint.metadata"
FORMAT_VERSION = 2               # 2: named-tuple children named by field (1: by position)
_FIELD_NAMES_SINCE = 2
MAX_HEADER_BYTES = 100 * 2**20
MAX_NDIM = 64
_CHUNK_BYTES = 16 * 2**20        # conversion piece for non-contiguous / big-endian arrays
_IO_BYTES = 64 * 2**20           # largest single read()/write() call

# safetensors dtype name <-> little-endian numpy dtype
_DTYPES = {
    "BOOL": np.dtype("bool"),
    "U8": np.dtype("<u1"), "I8": np.dtype("<i1"),
    "U16": np.dtype("<u2"), "I16": np.dtype("<i2"),
    "U32": np.dtype("<u4"), "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"), "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8"),
    "C64": np.dtype("<c8"),
    # NumPy has no bfloat16: the raw 16-bit patterns travel in this one-field record dtype (a
    # distinct dtype, so it is never confused with U16) and are converted after reading
    "BF16": np.dtype([("bfloat16", "<u2")]),
}
_BF16 = _DTYPES["BF16"]
BFLOAT16_MODES = ("float32", "ml_dtypes")
_DTYPE_NAMES = {dt: name for name, dt in _DTYPES.items()}
_log = logging.getLogger("fnn.checkpoint")
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-(?P<token>[0-9a-f]{8,})$")


class CheckpointError(ValueError):
    """A checkpoint file is truncated, corrupt, hostile, or does not match a target."""


class CheckpointWarning(UserWarning):
    """A container could not be rebuilt exactly and was replaced by a plain one."""


def _err(path, problem) -> CheckpointError:
    return CheckpointError(f"{os.fspath(path)!s}: {problem}")


# --------------------------------------------------------------------------------------------
# Names

def _component(key) -> str:
    key = tree_util.raw_key(key)  # DictKey('a') -> 'a', SequenceKey(0) -> 0, ...
    return key if isinstance(key, str) else str(key)


def path_name(path) -> str:
    """The tensor name of a tree path (tuple of keys): components joined with ``/``."""
    return "/".join(_component(k) for k in path)


def _shown(name: str) -> str:
    return name if name else "<root>"


# --------------------------------------------------------------------------------------------
# Encoding the tree (save side)

_BIG = 2**63


def _int_nameable(k: int) -> bool:
    """Whether `str(k)` works (Python limits int -> decimal string conversions)."""
    try:
        str(k)
    except ValueError:
        return False
    return True


def _enc_int(x: int):
    return x if -_BIG <= x <= _BIG else hex(x)


def _enc_key(key, where):
    t = type(key)
    if t is str:
        return ["s", key]
    if t is bool:
        return ["b", key]
    if t is int:
        if not _int_nameable(key):
            raise ValueError(f"{_shown(where)}: int dict key of {key.bit_length()} bits is too "
                             f"large to be part of a tensor name (its decimal form exceeds "
                             f"Python's {sys.get_int_max_str_digits()}-digit limit)")
        return ["i", _enc_int(key)]
    if t is float:
        return ["f", repr(key)]
    if key is None:
        return ["n", None]
    raise TypeError(f"{_shown(where)}: unsupported dict key type {t.__qualname__} ({key!r}); "
                    "keys must be str, int, bool, float or None")


def _enc_static(x, depth=0):
    """JSON form of a custom node's aux data, or raise ValueError when it isn't plain data."""
    if depth > 50:
        raise ValueError("too deep")
    t = type(x)
    if x is None or t is bool or t is str:
        return {"v": x}
    if t is int:
        return {"i": _enc_int(x)}
    if t is float:
        return {"f": repr(x)}
    if t is tuple or t is list:
        return {"tuple" if t is tuple else "list": [_enc_static(v, depth + 1) for v in x]}
    if t is dict and all(type(k) is str for k in x):
        return {"dict": [[k, _enc_static(v, depth + 1)] for k, v in x.items()]}
    raise ValueError(f"not plain data: {t.__qualname__}")


def _type_name(cls) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _to_array(x, name):
    if isinstance(x, (np.ndarray, np.generic)):
        arr = np.asarray(x)
    else:
        try:
            arr = np.asarray(x)
        except Exception as e:  # noqa: BLE001 - report with the path
            raise TypeError(f"{_shown(name)}: cannot convert leaf of type "
                            f"{type(x).__qualname__} to an array: {e}") from e
    dt = arr.dtype
    if dt.name == "bfloat16" and dt.itemsize == 2 and dt.fields is None:
        # ml_dtypes.bfloat16 (always native byte order): its bit patterns are the BF16 tensor
        return arr.view(np.uint16).astype("<u2", copy=False).view(_BF16), _BF16
    le = dt.newbyteorder("<")
    if dt.fields is not None or dt.subdtype is not None or le not in _DTYPE_NAMES:
        raise TypeError(f"{_shown(name)}: unsupported array dtype {dt}; supported: bool, "
                        "int8/16/32/64, uint8/16/32/64, float16/32/64, complex64, "
                        "bfloat16 (ml_dtypes)")
    return arr, le


class _Encoder:
    def __init__(self):
        self.tensors = []      # (name, array, little-endian dtype)
        self.names = {}        # name -> path tuple, for collision checks

    def _claim(self, name, path):
        if name == "__metadata__":
            raise ValueError("tree path '__metadata__' is reserved by the safetensors format")
        if name in self.names:
            raise ValueError(f"two tree paths map to the same tensor name {name!r}: "
                             f"{tree_util.keystr(self.names[name])} and {tree_util.keystr(path)}")
        self.names[name] = path

    def node(self, x, path):
        name = path_name(path)
        if x is None:
            return {"t": "none"}
        t = type(x)
        if t is bool:
            self._claim(name, path)
            return {"t": "bool", "v": x}
        if t is int:
            self._claim(name, path)
            return {"t": "int", "v": _enc_int(x)}
        if t is float:
            self._claim(name, path)
            return {"t": "float", "v": repr(x)}
        if t is str:
            self._claim(name, path)
            return {"t": "str", "v": x}
        if isinstance(x, (np.ndarray, np.generic)):
            return self._array(x, name, path)
        if t is dict or t is collections.OrderedDict or t is collections.defaultdict:
            keys = list(x.keys())
            node = {"t": {dict: "dict", collections.OrderedDict: "odict",
                          collections.defaultdict: "ddict"}[t],
                    "k": [_enc_key(k, name) for k in keys],
                    "c": [self.node(x[k], path + (k,)) for k in keys]}
            if t is collections.defaultdict:
                f = x.default_factory
                node["f"] = None if f is None else _type_name(f) if isinstance(f, type) else \
                    f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', '?')}"
            return node
        if t is list or t is tuple:
            return {"t": "list" if t is list else "tuple",
                    "c": [self.node(v, path + (i,)) for i, v in enumerate(x)]}
        if optree.is_namedtuple_instance(x):
            return {"t": "namedtuple", "type": _type_name(t), "f": list(t._fields),
                    "c": [self.node(v, path + (f,)) for f, v in zip(t._fields, x)]}
        if optree.is_structseq_instance(x):
            return {"t": "structseq", "type": _type_name(t),
                    "c": [self.node(v, path + (i,)) for i, v in enumerate(x)]}
        if optree.register_pytree_node.get(t, namespace=tree_util.NAMESPACE) is not None:
            one = optree.tree_flatten_one_level(x, namespace=tree_util.NAMESPACE)
            entries = list(one.entries)
            node = {"t": "custom", "type": _type_name(t),
                    "k": [_enc_key(k, name) if type(k) in (str, int, bool, float) or k is None
                          else ["s", _component(k)] for k in entries],
                    "c": [self.node(v, path + (k,)) for k, v in zip(entries, one.children)]}
            try:
                node["aux"] = _enc_static(one.metadata)
            except ValueError:
                pass
            return node
        if hasattr(x, "__array__"):
            return self._array(x, name, path)
        raise TypeError(f"{_shown(name)}: unsupported leaf type {t.__module__}.{t.__qualname__}; "
                        "leaves must be numpy arrays/scalars, array-likes with __array__, None, "
                        "or Python int/float/bool/str")

    def _array(self, x, name, path):
        arr, le = _to_array(x, name)
        self._claim(name, path)
        self.tensors.append((name, arr, le))
        return {"t": "array"}


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"metadata value of type {type(x).__qualname__} is not JSON serialisable")


def _encode_metadata(metadata) -> str:
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__qualname__}")
    bad = [k for k in metadata if not isinstance(k, str)]
    if bad:
        raise TypeError(f"metadata keys must be str, got {bad[0]!r}")
    return json.dumps(metadata, default=_json_default, allow_nan=True)


def _build_header(tensors, tree_json: str, meta_json: str | None) -> tuple[bytes, list]:
    header = {}
    offset = 0
    plan = []
    for name, arr, le in tensors:
        nbytes = int(arr.size) * le.itemsize
        header[name] = {"dtype": _DTYPE_NAMES[le], "shape": [int(d) for d in arr.shape],
                        "data_offsets": [offset, offset + nbytes]}
        plan.append((arr, le, nbytes))
        offset += nbytes
    meta = {FORMAT_KEY: tree_json}
    if meta_json is not None:
        meta[METADATA_KEY] = meta_json
    header["__metadata__"] = meta
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    if len(raw) > MAX_HEADER_BYTES:
        raise ValueError(f"checkpoint header would be {len(raw)} bytes, above the "
                         f"{MAX_HEADER_BYTES}-byte limit (too many leaves or too much metadata)")
    return len(raw).to_bytes(8, "little") + raw, plan


# --------------------------------------------------------------------------------------------
# Writing

def _write_all(fd: int, buf) -> None:
    view = memoryview(buf).cast("B")
    while len(view):
        n = os.write(fd, view[:_IO_BYTES])
        if n <= 0:
            raise OSError(errno.EIO, "write() made no progress")
        view = view[n:]


def _pieces(arr: np.ndarray, limit: int):
    """Views that tile `arr` in C order, each at most ~`limit` bytes (or one row of 1 element)."""
    if arr.ndim == 0 or arr.nbytes <= limit:
        yield arr
    elif arr.ndim == 1:
        step = max(1, limit // arr.itemsize)
        for i in range(0, arr.shape[0], step):
            yield arr[i:i + step]
    elif arr[0].nbytes <= limit:
        step = max(1, limit // max(arr[0].nbytes, 1))
        for i in range(0, arr.shape[0], step):
            yield arr[i:i + step]
    else:
        for i in range(arr.shape[0]):
            yield from _pieces(arr[i], limit)


def _write_array(fd: int, arr: np.ndarray, le: np.dtype) -> int:
    """Write the bytes of `arr` as C-ordered little-endian `le`; return the byte count.

    A C-contiguous little-endian array is written straight from its buffer (no copy); anything
    else is converted piece by piece, so at most `_CHUNK_BYTES` extra bytes are alive at once.
    """
    if arr.size == 0:
        return 0
    if arr.flags.c_contiguous and arr.dtype == le:
        _write_all(fd, arr.reshape(-1).view(np.uint8))
        return arr.nbytes
    written = 0
    for view in _pieces(arr, _CHUNK_BYTES):
        piece = np.ascontiguousarray(view, dtype=le)
        _write_all(fd, piece.reshape(-1).view(np.uint8))
        written += piece.nbytes
        del piece  # free before the next conversion
    return written


def fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EISDIR, errno.ENOTSUP):
            return
        raise
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def temp_file_info(filename: str):
    """``(final_name, pid)`` if `filename` (a base name) is a temp file of `save`, else None."""
    m = _TEMP_RE.match(filename)
    return (m.group("name"), int(m.group("pid"))) if m else None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid < 2**31
    except OSError:
        return False
    return True


def remove_stale_temp_files(directory, name: str | None = None) -> list[str]:
    """Delete leftovers of interrupted saves in `directory`; return the removed paths.

    A temp file is stale when the process named in it (``.{name}.tmp-{pid}-{random}``) is no
    longer running on this machine, so saves in progress (in this or another process) are left
    alone.  With `name`, only leftovers of saves to that file name are considered.
    """
    directory = os.fspath(directory)
    removed = []
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return removed
    for fn in entries:
        info = temp_file_info(fn)
        if info is None or (name is not None and info[0] != name) or _pid_alive(info[1]):
            continue
        full = os.path.join(directory, fn)
        try:
            os.remove(full)
            removed.append(full)
        except FileNotFoundError:
            pass
    return removed


def save(path, tree, metadata=None) -> str:
    """Save pytree `tree` to the safetensors file `path`, atomically; return the path.

    With several processes (`transforms.distributed`), `tree` is taken to be the same on every
    process: process 0 writes it and every process returns only once the file is committed (an
    error on process 0 is raised on every process).

    Args:
      path: destination file; its directory must exist.  An existing file is replaced
        atomically: after a crash at any moment, `path` holds either the complete old or the
        complete new checkpoint (plus, possibly, a leftover ``.{name}.tmp-*`` file).
      tree: a pytree (dicts, lists, tuples, named tuples, ``None``, containers registered with
        `transforms.tree`) whose leaves are arrays, numpy scalars or Python
        ``int``/``float``/``bool``/``str``.  Unsupported leaves or dtypes raise ``TypeError``
        naming the tree path; two paths with the same ``/``-joined name (``{"a/b": x}`` next to
        ``{"a": {"b": y}}``) raise ``ValueError``.
      metadata: optional JSON-serialisable dict with ``str`` keys (numpy scalars and arrays
        are converted to Python numbers/lists); read it back with `load_metadata`.

    Array bytes are streamed into the file leaf by leaf: C-contiguous little-endian arrays
    are written straight from their buffers (no copy); other arrays (strided, big-endian) are
    converted in pieces of at most 16 MB, so extra memory stays below that.
    """
    from transforms import distributed as dist
    if dist.process_count() > 1:
        return dist.run_on_root(lambda: save_file(path, tree, metadata))
    return save_file(path, tree, metadata)


def save_file(path, tree, metadata=None) -> str:
    """`save` on this process alone."""
    path = os.fspath(path)
    enc = _Encoder()
    try:
        tree_node = enc.node(tree, ())
    except RecursionError:
        raise ValueError("tree is too deeply nested to save") from None
    tree_json = json.dumps({"version": FORMAT_VERSION, "tree": tree_node}, separators=(",", ":"))
    meta_json = None if metadata is None else _encode_metadata(metadata)
    head, plan = _build_header(enc.tensors, tree_json, meta_json)

    directory, base = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{base}.tmp-{os.getpid()}-{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        try:
            _write_all(fd, head)
            for arr, le, nbytes in plan:
                written = _write_array(fd, arr, le)
                if written != nbytes:  # the array changed under us
                    raise RuntimeError(f"array changed size while being saved "
                                       f"({written} != {nbytes} bytes)")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)
    return path


# --------------------------------------------------------------------------------------------
# Reading and validating the header

def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicate JSON key {k!r}")
        d[k] = v
    return d


def _is_int(x) -> bool:
    return type(x) is int


class Header:
    """A validated safetensors header: tensors ``{name: (dtype, shape, begin, end)}``."""

    def __init__(self, path, tensors, metadata, data_start, file_size):
        self.path = path
        self.tensors = tensors            # name -> (le dtype, shape tuple, begin, end)
        self.metadata = metadata          # dict str -> str
        self.data_start = data_start
        self.file_size = file_size


def _parse_header(path, f, file_size) -> Header:
    if file_size < 8:
        raise _err(path, f"file is {file_size} bytes, too short for a safetensors header "
                         "(truncated?)")
    n = int.from_bytes(_read_exact(path, f, 8, "header length"), "little")
    if n > MAX_HEADER_BYTES:
        raise _err(path, f"header length {n} exceeds the {MAX_HEADER_BYTES}-byte limit "
                         "(corrupt or not a safetensors file)")
    if n > file_size - 8:
        raise _err(path, f"header length {n} exceeds the file size {file_size} "
                         "(truncated or not a safetensors file)")
    if n < 2:
        raise _err(path, f"header length {n} is too small")
    raw = _read_exact(path, f, n, "header")
    try:
        text = raw.decode("utf-8")
        obj = json.loads(text, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise _err(path, "header JSON is nested too deeply") from None
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _err(path, f"header is not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise _err(path, f"header must be a JSON object, got {type(obj).__name__}")
    metadata = obj.pop("__metadata__", {})
    if not isinstance(metadata, dict):
        raise _err(path, "header '__metadata__' must be an object of strings")
    for k, v in metadata.items():
        if not isinstance(v, str):
            raise _err(path, f"header '__metadata__' entry {k!r} is not a string")

    data_start = 8 + n
    data_size = file_size - data_start
    tensors = {}
    for name, info in obj.items():
        shown = repr(name)
        if not isinstance(info, dict):
            raise _err(path, f"tensor {shown}: header entry must be an object")
        if set(info) != {"dtype", "shape", "data_offsets"}:
            raise _err(path, f"tensor {shown}: header entry must have exactly the keys dtype, "
                             f"shape, data_offsets (has {sorted(info)})")
        dtype_name, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype_name, str) or dtype_name not in _DTYPES:
            raise _err(path, f"tensor {shown}: unknown or unsupported dtype {dtype_name!r}")
        dt = _DTYPES[dtype_name]
        if (not isinstance(shape, list) or len(shape) > MAX_NDIM
                or not all(_is_int(d) and d >= 0 for d in shape)):
            raise _err(path, f"tensor {shown}: shape must be a list of at most {MAX_NDIM} "
                             f"non-negative integers, got {_short(shape)}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(_is_int(o) and o >= 0 for o in offsets) or offsets[0] > offsets[1]):
            raise _err(path, f"tensor {shown}: data_offsets must be [begin, end] with "
                             f"0 <= begin <= end, got {_short(offsets)}")
        begin, end = offsets
        count = math.prod(shape)
        nonzero = math.prod(d for d in shape if d)
        if nonzero * dt.itemsize >= 2**62:
            raise _err(path, f"tensor {shown}: shape {_short(shape)} is impossibly large")
        if end - begin != count * dt.itemsize:
            raise _err(path, f"tensor {shown}: data_offsets {offsets} span {end - begin} bytes "
                             f"but dtype {dtype_name} and shape {_short(shape)} need "
                             f"{count * dt.itemsize}")
        if end > data_size:
            raise _err(path, f"tensor {shown}: data ends at byte {end} of the data section, "
                             f"which has only {data_size} bytes (truncated?)")
        tensors[name] = (dt, tuple(shape), begin, end)
    expect = 0
    for name, (_, _, begin, end) in sorted(tensors.items(), key=lambda kv: (kv[1][2], kv[1][3])):
        if begin != expect:
            what = "overlaps the previous tensor" if begin < expect else "leaves a gap"
            raise _err(path, f"tensor {name!r}: data_offsets {[begin, end]} {what} "
                             f"(expected begin {expect})")
        expect = end
    if expect != data_size:
        raise _err(path, f"tensor data covers {expect} bytes but the file has {data_size} bytes "
                         "after the header (trailing garbage or wrong offsets)")
    return Header(os.fspath(path), tensors, metadata, data_start, file_size)


def _short(x, limit=80) -> str:
    s = repr(x)
    return s if len(s) <= limit else s[:limit] + "..."


def _read_exact(path, f, n: int, what: str) -> bytes:
    data = f.read(n)
    if data is None or len(data) != n:
        raise _err(path, f"unexpected end of file while reading the {what} (file changed?)")
    return data


def _readinto_exact(path, f, buf, what: str) -> None:
    view = memoryview(buf).cast("B")
    while len(view):
        n = f.readinto(view[:_IO_BYTES])
        if not n:
            raise _err(path, f"unexpected end of file while reading {what} (file changed?)")
        view = view[n:]


def _open(path):
    path = os.fspath(path)
    f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the callers
    try:
        size = os.fstat(f.fileno()).st_size
        return f, _parse_header(path, f, size)
    except BaseException:
        f.close()
        raise


def read_header(path) -> Header:
    """Read and fully validate the header of the safetensors file `path` (no tensor data)."""
    f, header = _open(path)
    f.close()
    return header


def _bf16_dtype():
    try:
        import ml_dtypes
    except ImportError:
        raise ImportError('bfloat16="ml_dtypes" needs the ml_dtypes package (pip install '
                          'ml_dtypes); the default bfloat16="float32" upcasts instead') from None
    return np.dtype(ml_dtypes.bfloat16)


def _from_bf16(raw: np.ndarray, mode: str) -> np.ndarray:
    """BF16 bit patterns (the `_BF16` record dtype) as float32 (exact) or ml_dtypes.bfloat16."""
    bits = raw.view("<u2")
    if mode == "ml_dtypes":
        return bits.astype(np.uint16, copy=False).view(_bf16_dtype())
    # a bfloat16 is the high half of a float32 with the same sign, exponent and leading bits
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _check_bf16_mode(bfloat16):
    if bfloat16 not in BFLOAT16_MODES:
        raise ValueError(f"bfloat16 must be one of {BFLOAT16_MODES}, got {bfloat16!r}")
    if bfloat16 == "ml_dtypes":
        _bf16_dtype()  # fail early, before reading anything


def _dtype_str(dt) -> str:
    return "bfloat16" if dt == _BF16 else str(dt.newbyteorder("="))


def _read_tensors(f, header: Header, names, bf16="float32") -> dict:
    """Read the tensors `names` into fresh, writeable, native-endian arrays.

    BF16 tensors become float32 or ml_dtypes.bfloat16 arrays: `bf16` is the mode for all of
    them, or a dict {name: mode}.
    """
    out = {}
    pos = None
    for name in sorted(names, key=lambda n: header.tensors[n][2]):
        dt, shape, begin, end = header.tensors[name]
        try:
            arr = np.empty(shape, dtype=dt)
        except (ValueError, MemoryError, OverflowError) as e:
            raise _err(header.path, f"tensor {name!r}: cannot allocate shape {_short(shape)}: {e}")
        if end > begin:
            if pos != header.data_start + begin:
                f.seek(header.data_start + begin)
            _readinto_exact(header.path, f, arr.reshape(-1).view(np.uint8), f"tensor {name!r}")
            pos = header.data_start + end
        if dt.kind == "b":  # canonicalise bytes other than 0/1
            raw = arr.view(np.uint8)
            if raw.size and raw.max() > 1:
                np.not_equal(raw, 0, out=arr)
        if dt == _BF16:
            arr = _from_bf16(arr, bf16 if isinstance(bf16, str) else bf16[name])
        elif not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        out[name] = arr
    return out


# --------------------------------------------------------------------------------------------
# Decoding the tree structure (restore side)

class _Node:
    """A validated structure node: `kind`, `children` [(key, _Node)], leaf `value`, `name`."""
    __slots__ = ("kind", "keys", "children", "value", "name", "extra")

    def __init__(self, kind, name, keys=(), children=(), value=None, extra=None):
        self.kind, self.name, self.keys, self.children = kind, name, list(keys), list(children)
        self.value, self.extra = value, extra


def _dec_int(v, bad):
    if type(v) is int:
        return v
    if isinstance(v, str) and re.fullmatch(r"-?0x[0-9a-f]+", v):
        return int(v, 16)
    raise bad("malformed integer")


def _dec_float(v, bad):
    if not isinstance(v, str) or len(v) > 64:
        raise bad("malformed float")
    try:
        return float(v)
    except ValueError:
        raise bad("malformed float") from None


def _dec_key(k, bad):
    if not isinstance(k, list) or len(k) != 2 or not isinstance(k[0], str):
        raise bad("malformed dict key")
    tag, v = k
    if tag == "s" and isinstance(v, str):
        return v
    if tag == "b" and isinstance(v, bool):
        return v
    if tag == "i":
        return _dec_int(v, bad)
    if tag == "f":
        return _dec_float(v, bad)
    if tag == "n" and v is None:
        return None
    raise bad("malformed dict key")


def _dec_static(x, bad, depth=0):
    if depth > 50 or not isinstance(x, dict) or len(x) != 1:
        raise bad("malformed custom node data")
    (tag, v), = x.items()
    if tag == "v" and (v is None or isinstance(v, (bool, str))):
        return v
    if tag == "i":
        return _dec_int(v, bad)
    if tag == "f":
        return _dec_float(v, bad)
    if tag in ("tuple", "list") and isinstance(v, list):
        items = [_dec_static(e, bad, depth + 1) for e in v]
        return tuple(items) if tag == "tuple" else items
    if tag == "dict" and isinstance(v, list):
        out = {}
        for e in v:
            if not (isinstance(e, list) and len(e) == 2 and isinstance(e[0], str)):
                raise bad("malformed custom node data")
            out[e[0]] = _dec_static(e[1], bad, depth + 1)
        return out
    raise bad("malformed custom node data")


_CONTAINERS = {"dict", "odict", "ddict", "list", "tuple", "namedtuple", "structseq", "custom"}
_SCALARS = {"int", "float", "bool", "str"}


def _decode_node(obj, path, bad, leaves, by_field=True):
    """Validate the JSON structure node `obj` at tree path `path`; collect leaves by name."""
    name = path_name(path)
    if not isinstance(obj, dict) or not isinstance(obj.get("t"), str):
        raise bad(f"malformed structure node at {_shown(name)!r}")
    kind = obj["t"]
    if kind == "none":
        return _Node("none", name)
    if kind == "array" or kind in _SCALARS:
        if name in leaves:
            raise bad(f"two leaves named {name!r}")
        if kind == "array":
            node = _Node("array", name)
        else:
            v = obj.get("v")
            if kind == "int":
                v = _dec_int(v, bad)
            elif kind == "float":
                v = _dec_float(v, bad)
            elif not isinstance(v, bool if kind == "bool" else str):
                raise bad(f"malformed {kind} leaf at {_shown(name)!r}")
            node = _Node(kind, name, value=v)
        leaves[name] = node
        return node
    if kind not in _CONTAINERS:
        raise bad(f"unknown node kind {_short(kind)} at {_shown(name)!r}")
    children = obj.get("c")
    if not isinstance(children, list):
        raise bad(f"malformed {kind} node at {_shown(name)!r}")
    if kind in ("dict", "odict", "ddict", "custom"):
        raw_keys = obj.get("k")
        if not isinstance(raw_keys, list) or len(raw_keys) != len(children):
            raise bad(f"malformed {kind} node at {_shown(name)!r}")
        keys = [_dec_key(k, bad) for k in raw_keys]
        for raw, k in zip(raw_keys, keys):
            if type(k) is int and not _int_nameable(k):
                raise bad(f"dict key {_short(raw[1], 40)} under {_shown(name)!r} is an integer "
                          f"of {k.bit_length()} bits, too large to name a tensor "
                          f"(corrupt or hostile file)")
        if kind != "custom" and len(set(keys)) != len(keys):
            raise bad(f"duplicate dict keys at {_shown(name)!r}")
    else:
        keys = list(range(len(children)))
    extra = None
    if kind in ("namedtuple", "structseq", "custom"):
        tname = obj.get("type")
        if not isinstance(tname, str):
            raise bad(f"malformed {kind} node at {_shown(name)!r}")
        extra = {"type": tname}
        if kind == "namedtuple":
            fields = obj.get("f")
            if (not isinstance(fields, list) or len(fields) != len(children)
                    or not all(isinstance(x, str) for x in fields)):
                raise bad(f"malformed namedtuple node at {_shown(name)!r}")
            extra["fields"] = fields
            if by_field:
                if len(set(fields)) != len(fields):
                    raise bad(f"duplicate named tuple fields at {_shown(name)!r}")
                keys = list(fields)
        if kind == "custom" and "aux" in obj:
            extra["aux"] = _dec_static(obj["aux"], bad)
    if kind == "ddict":
        f = obj.get("f")
        if f is not None and not isinstance(f, str):
            raise bad(f"malformed defaultdict node at {_shown(name)!r}")
        extra = {"factory": f}
    kids = [_decode_node(c, path + (k,), bad, leaves, by_field) for k, c in zip(keys, children)]
    return _Node(kind, name, keys, kids, extra=extra)


def _decode_structure(header: Header):
    """(root _Node, {name: leaf _Node}, version) of a validated header, or None for foreign
    files."""
    path = header.path
    raw = header.metadata.get(FORMAT_KEY)
    if raw is None:
        suspects = [k for k, v in header.metadata.items()
                    if k == METADATA_KEY or _one_byte_off(k, FORMAT_KEY)
                    or _looks_like_structure(v)]
        if suspects:
            raise _err(path, f"damaged checkpoint: it has this format's metadata "
                             f"{[_short(k, 40) for k in suspects[:3]]} but no {FORMAT_KEY!r} "
                             f"structure entry (a corrupted key?); refusing to load it as a "
                             f"plain safetensors file")
        return None

    def bad(problem):
        return _err(path, f"invalid tree structure metadata: {problem}")

    try:
        obj = json.loads(raw, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise bad("nested too deeply") from None
    except ValueError as e:
        raise bad(f"not valid JSON: {e}") from None
    if not isinstance(obj, dict) or "tree" not in obj:
        raise bad("expected an object with a 'tree' entry")
    version = obj.get("version")
    if not _is_int(version) or version > FORMAT_VERSION or version < 1:
        raise bad(f"unsupported format version {_short(version)} (this reader knows "
                  f"version {FORMAT_VERSION})")
    leaves = {}
    try:
        root = _decode_node(obj["tree"], (), bad, leaves, version >= _FIELD_NAMES_SINCE)
    except RecursionError:
        raise bad("nested too deeply") from None
    arrays = {n for n, node in leaves.items() if node.kind == "array"}
    tensor_names = set(header.tensors)
    if arrays != tensor_names:
        missing = sorted(tensor_names - arrays)[:3]
        extra = sorted(arrays - tensor_names)[:3]
        raise bad("tensor names do not match the tree: "
                  + (f"tensors without a tree leaf {missing}" if missing else "")
                  + ("; " if missing and extra else "")
                  + (f"array leaves without a tensor {extra}" if extra else ""))
    return root, leaves, version


def _one_byte_off(a: str, b: str) -> bool:
    """`a` and `b` differ in exactly one character (what one flipped bit does to a key)."""
    return len(a) == len(b) and sum(x != y for x, y in zip(a, b)) == 1


def _looks_like_structure(v) -> bool:
    """A metadata value written by `save` as the tree structure."""
    return isinstance(v, str) and v.startswith('{"version":') and '"tree":' in v


def _decode_user_metadata(header: Header) -> dict:
    raw = header.metadata.get(METADATA_KEY)
    if raw is None:
        if FORMAT_KEY in header.metadata:
            near = [k for k in header.metadata if _one_byte_off(k, METADATA_KEY)]
            if near:
                raise _err(header.path, f"damaged checkpoint: metadata key {near[0]!r} looks "
                                        f"like a corrupted {METADATA_KEY!r}")
            return {}
        return dict(header.metadata)  # a foreign safetensors file: its raw string metadata
    try:
        obj = json.loads(raw)
    except RecursionError:
        raise _err(header.path, "user metadata is nested too deeply") from None
    except ValueError as e:
        raise _err(header.path, f"user metadata is not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise _err(header.path, f"user metadata must be a JSON object, got {type(obj).__name__}")
    return obj


def load_metadata(path) -> dict:
    """The user metadata dict saved with `save(path, tree, metadata)` (``{}`` if none).

    For safetensors files not written by this module, the raw ``__metadata__`` string map.
    Only the header is read (and validated).
    """
    return _decode_user_metadata(read_header(path))


# --------------------------------------------------------------------------------------------
# Rebuilding

def _resolve(type_name: str):
    """The class named ``module:qualname`` if its module is already imported, else None."""
    mod_name, _, qual = type_name.partition(":")
    mod = sys.modules.get(mod_name)
    if mod is None or not qual:
        return None
    obj = mod
    for part in qual.split("."):
        if part.startswith("<") or not part.isidentifier():
            return None
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj if isinstance(obj, type) else None


# defaultdict factories that restore will recreate (calling them has no side effects)
_SAFE_FACTORIES = {_type_name(t): t for t in (
    list, dict, set, frozenset, tuple, int, float, complex, bool, str, bytes,
    collections.OrderedDict, collections.Counter, collections.deque, collections.defaultdict)}


def _warn(msg):
    warnings.warn(msg, CheckpointWarning, stacklevel=4)


def _build(node: _Node, arrays: dict):
    kind = node.kind
    if kind == "none":
        return None
    if kind == "array":
        return arrays[node.name]
    if kind in _SCALARS:
        return node.value
    kids = [_build(c, arrays) for c in node.children]
    if kind == "list":
        return kids
    if kind == "tuple":
        return tuple(kids)
    if kind == "dict":
        return dict(zip(node.keys, kids))
    if kind == "odict":
        return collections.OrderedDict(zip(node.keys, kids))
    if kind == "ddict":
        factory = node.extra["factory"]
        cls = _SAFE_FACTORIES.get(factory) if factory else None
        if factory and cls is None:
            _warn(f"{_shown(node.name)}: defaultdict factory {factory!r} is not a plain "
                  "container or number type; restoring it without a default factory")
        return collections.defaultdict(cls, zip(node.keys, kids))
    tname = node.extra["type"]
    cls = _resolve(tname)
    where = _shown(node.name)
    if kind == "namedtuple":
        if (cls is not None and optree.is_namedtuple_class(cls)
                and list(cls._fields) == node.extra["fields"]):
            return cls(*kids)
        _warn(f"{where}: named tuple class {tname!r} is not importable (is its module imported?)"
              " or does not match; restoring a plain tuple")
        return tuple(kids)
    if kind == "structseq":
        if cls is not None and optree.is_structseq_class(cls):
            try:
                return cls(kids)
            except (TypeError, ValueError):
                pass
        _warn(f"{where}: struct sequence class {tname!r} is not available; restoring a plain tuple")
        return tuple(kids)
    # custom node
    entry = optree.register_pytree_node.get(cls, namespace=tree_util.NAMESPACE) if cls else None
    if entry is not None and "aux" in node.extra:
        try:
            rebuilt = entry.unflatten_func(node.extra["aux"], kids)
        except Exception:  # noqa: BLE001 - fall back below
            rebuilt = None
        if rebuilt is not None and type(rebuilt) is cls:
            return rebuilt
    _warn(f"{where}: custom pytree node {tname!r} cannot be rebuilt without a target (class not "
          "imported/registered or aux data not plain); restoring a dict of its children")
    return dict(zip(node.keys, kids))


# --------------------------------------------------------------------------------------------
# Restore

def _find_subtree(node: _Node, rest: str):
    if rest == "":
        return node
    for key, child in zip(node.keys, node.children):
        c = _component(key)
        if rest == c:
            return child
        if rest.startswith(c + "/"):
            found = _find_subtree(child, rest[len(c) + 1:])
            if found is not None:
                return found
    return None


def _subtree_prefix(subtree) -> str:
    if isinstance(subtree, str):
        return subtree.strip("/")
    if isinstance(subtree, (tuple, list)):
        return path_name(tuple(subtree))
    raise TypeError(f"subtree must be a '/'-separated str or a tuple of keys, got {subtree!r}")


def _leaf_desc(x) -> str:
    if isinstance(x, _Node):
        return "array" if x.kind == "array" else f"Python {x.kind} {x.value!r}"
    if type(x) in (int, float, bool, str):
        return f"Python {type(x).__name__} {x!r}"
    return type(x).__qualname__


class IncompatibleKeys(collections.namedtuple("IncompatibleKeys",
                                              ["missing_keys", "unexpected_keys"])):
    """What a partial `restore` did not match, as PyTorch's ``load_state_dict(strict=False)``
    returns it: `missing_keys` (target paths the file lacks; they keep the target's value) and
    `unexpected_keys` (file entries the target lacks; ignored), both lists of ``/``-joined
    names."""
    __slots__ = ()


def restore(path, target=None, *, partial: bool = False, subtree=None,
            bfloat16: str = "float32", return_keys: bool = False):
    """Load a checkpoint written by `save`.

    Args:
      path: the checkpoint file.
      target: optional pytree describing what to load.  Without it, the saved tree is
        rebuilt exactly (containers, dict key types, ``None``, Python scalars, arrays with
        their dtypes and shapes).  With it, leaves are matched by tree path name (``a/0/w``):
        array-like target leaves (anything with ``.shape`` and ``.dtype``, e.g. numpy arrays
        or shape/dtype structs) must match the file's shape and dtype, Python scalar target
        leaves must match the saved scalar's type, and the result has the target's structure
        and container types (the file's container types are not checked).  Mismatches raise
        `CheckpointError` (a ``ValueError``) naming the path, e.g.
        ``params/dense_0/w: shape (3, 4) in file, (4, 3) in target``.
      partial: only with `target` - for fine-tuning: load leaves present in both the file and
        the target, keep the target's own value for leaves the file lacks, and ignore file
        entries the target lacks (as PyTorch's ``load_state_dict(strict=False)``).  Both lists
        are reported in one warning of the ``"fnn.checkpoint"`` logger; a target with no path
        in common with the file raises `CheckpointError`.  Shape/dtype mismatches of matched
        leaves are still errors.
      subtree: restore only the part of the tree under this path, given as a ``/``-joined
        name (``"params/body"``) or a tuple of keys (``("params", "body")``).  `target`, if
        given, then describes that subtree (names relative to it).  Only the needed tensors
        are read.  A missing subtree raises ``KeyError``.
      bfloat16: how ``BF16`` tensors come back when no target leaf decides:
        ``"float32"`` (default, exact upcast, no extra package) or ``"ml_dtypes"``
        (``ml_dtypes.bfloat16`` arrays; ImportError without that package).  A target leaf
        of dtype float32 or ``ml_dtypes.bfloat16`` receives that dtype either way.
      return_keys: return ``(tree, IncompatibleKeys(missing_keys, unexpected_keys))``
        instead of the tree alone (both lists empty unless `partial`).

    Returns:
      The restored tree; arrays are fresh, writeable, native-endian numpy arrays.

    Raises:
      CheckpointError (``ValueError``): truncated, corrupt or hostile file, or a target
        mismatch.  FileNotFoundError / OSError as usual for file access.
    """
    if partial and target is None:
        raise ValueError("partial=True needs a target (the tree to fill in)")
    _check_bf16_mode(bfloat16)
    f, header = _open(path)
    with f:
        decoded = _decode_structure(header)
        if decoded is None:  # a foreign safetensors file: a flat {name: array} dict
            names = list(header.tensors)
            root = _Node("dict", "", names, [_Node("array", n) for n in names])
        else:
            root = decoded[0]
        # files before version 2 named named-tuple children by position
        by_field = decoded is None or decoded[2] >= _FIELD_NAMES_SINCE
        if subtree is not None:
            prefix = _subtree_prefix(subtree)
            node = _find_subtree(root, prefix)
            if node is None and decoded is None:  # foreign names: select by name prefix
                sel = [n for n in root.keys if n.startswith(prefix + "/")]
                if sel:
                    node = _Node("dict", prefix, [n[len(prefix) + 1:] for n in sel],
                                 [_Node("array", n) for n in sel])
            if node is None:
                raise KeyError(f"{os.fspath(path)}: no subtree {prefix!r} in the checkpoint")
            root = node
        leaves = {}
        _collect(root, root.name, leaves)
        if target is None:
            needed = [n.name for n in leaves.values() if n.kind == "array"]
            tree = _build(root, _read_tensors(f, header, needed, bfloat16))
            keys = IncompatibleKeys([], [])
        else:
            tree, keys = _restore_into(f, header, leaves, target, partial, bfloat16, by_field)
    return (tree, keys) if return_keys else tree


def _collect(node: _Node, base: str, out: dict):
    """Leaves under `node` by name relative to `base` (the name of the subtree root)."""
    if node.kind == "array" or node.kind in _SCALARS:
        name = node.name
        out[name if not base else "" if name == base else name[len(base) + 1:]] = node
        return
    for c in node.children:
        _collect(c, base, out)


def _name_list(names, limit=5) -> str:
    shown = ", ".join(map(_shown, names[:limit]))
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _target_paths(target, by_field: bool):
    """(paths, leaves, treedef) of `target`, each path named as the save side names it: raw
    optree entries (dict keys, sequence indices, custom node entries), except named-tuple
    children, which are their field names when `by_field`."""
    raw_leaves, treedef = optree.tree_flatten(target, namespace=tree_util.NAMESPACE)
    paths = [tuple(e.field if by_field and type(e) is optree.NamedTupleEntry else e.entry
                   for e in accessor)
             for accessor in treedef.accessors()]
    return paths, raw_leaves, treedef


def _restore_into(f, header, leaves, target, partial, bfloat16="float32", by_field=True):
    path = header.path
    raw_paths, raw_leaves, treedef = _target_paths(target, by_field)
    pairs = list(zip(raw_paths, raw_leaves))
    names = [path_name(p) for p, _ in pairs]
    seen = {}
    for n, (p, _) in zip(names, pairs):
        if n in seen:
            raise ValueError(f"target paths {tree_util.keystr(seen[n])} and {tree_util.keystr(p)}"
                             f" map to the same name {n!r}")
        seen[n] = p
    if not partial:
        missing = [n for n in names if n not in leaves]
        extra = [n for n in leaves if n not in seen]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"in target but not in file: {', '.join(map(_shown, missing[:5]))}"
                             + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""))
            if extra:
                parts.append(f"in file but not in target: {', '.join(map(_shown, extra[:5]))}"
                             + (f" (+{len(extra) - 5} more)" if len(extra) > 5 else ""))
            raise _err(path, "tree structure differs from the target: " + "; ".join(parts)
                       + " (use partial=True to load only the common entries)")
    missing, unexpected = [], []
    if partial:
        missing = [n for n in names if n not in leaves]
        unexpected = [n for n in leaves if n not in seen]
        if names and len(missing) == len(names) and leaves:
            raise _err(path, "partial restore: no tree path in common between the file and "
                             "the target (nothing would be loaded): target has "
                             f"{_name_list(names)}; file has {_name_list(list(leaves))}")
        if missing or unexpected:
            _log.warning("%s: partial restore kept the target's value for %d path(s) missing "
                         "from the file%s and ignored %d unexpected path(s) of the file%s",
                         path, len(missing), f" ({_name_list(missing)})" if missing else "",
                         len(unexpected),
                         f" ({_name_list(unexpected)})" if unexpected else "")
    to_read, modes = [], {}
    for n, (_, t) in zip(names, pairs):
        node = leaves.get(n)
        if node is None:
            continue
        where = _shown(n)
        if type(t) in (int, float, bool, str):
            if node.kind != type(t).__name__:
                raise _err(path, f"{where}: {_leaf_desc(node)} in file, {_leaf_desc(t)} in target")
            continue
        if not (hasattr(t, "shape") and hasattr(t, "dtype")):
            raise TypeError(f"{where}: target leaf of type {type(t).__qualname__} has no "
                            ".shape/.dtype (expected an array-like or a Python scalar)")
        if node.kind != "array":
            raise _err(path, f"{where}: {_leaf_desc(node)} in file, array in target")
        dt, shape, _, _ = header.tensors[node.name]
        try:
            t_shape = tuple(int(d) for d in t.shape)
            t_dtype = np.dtype(t.dtype)
        except TypeError as e:
            raise TypeError(f"{where}: target leaf has an unusable shape/dtype: {e}") from e
        if t_shape != shape:
            raise _err(path, f"{where}: shape {shape} in file, {t_shape} in target")
        if dt == _BF16:
            # bfloat16 in the file: a float32 target gets the exact upcast, a bfloat16 one bf16
            if t_dtype.kind == "f" and t_dtype.itemsize == 4:
                modes[node.name] = "float32"
            elif t_dtype.name == "bfloat16" and t_dtype.itemsize == 2:
                modes[node.name] = "ml_dtypes"
            else:
                raise _err(path, f"{where}: dtype bfloat16 in file, {t_dtype} in target "
                                 "(a bfloat16 tensor loads into float32 or ml_dtypes.bfloat16)")
        elif t_dtype.newbyteorder("<") != dt.newbyteorder("<"):
            raise _err(path, f"{where}: dtype {_dtype_str(dt)} in file, {t_dtype} in target")
        to_read.append(node.name)
    arrays = _read_tensors(f, header, to_read, modes)
    out = []
    for n, (_, t) in zip(names, pairs):
        node = leaves.get(n)
        if node is None:
            out.append(t)
        elif node.kind == "array":
            out.append(arrays[node.name])
        else:
            out.append(node.value)
    # the target's own key order (any key types)
    return optree.tree_unflatten(treedef, out), IncompatibleKeys(missing, unexpected)
