"""Crash-safe pytree checkpoints in the safetensors format.

* `save(path, tree, metadata=None)` writes a pytree atomically (temp file, fsync, rename,
  directory fsync), streaming array bytes without copying whole leaves.
* `restore(path, target=None, *, partial=False, subtree=None, bfloat16="float32",
  return_keys=False)` validates the file and rebuilds the tree exactly, or loads it into the
  structure of `target` (optionally partially - reporting the missing and unexpected names as
  `IncompatibleKeys` - or only a subtree); bfloat16 tensors load as float32 or
  ``ml_dtypes.bfloat16``.
* `load_metadata(path)` returns the user metadata without reading tensor data.
* `save_sharded(path, part)` / `restore_sharded(path, target=None)`: a model-parallel tree, each
  process its own part, committed together by one manifest (`fnn.checkpoint.sharded`).
* `CheckpointManager(directory, max_to_keep=None, best_metric=None, best_mode='min')` keeps one
  file per step, with retention of the newest checkpoints plus the best one.

Files are plain safetensors files (readable by `safetensors.numpy.load_file`); each array leaf
is a tensor named by its tree path joined with ``/``.  See `fnn.checkpoint.format` for the
layout of the structure metadata and the exact guarantees.
"""
from fnn.checkpoint.format import (
    CheckpointError,
    CheckpointWarning,
    IncompatibleKeys,
    load_metadata,
    read_header,
    remove_stale_temp_files,
    restore,
    save,
)
from fnn.checkpoint.manager import CheckpointManager
from fnn.checkpoint.sharded import read_manifest, restore_sharded, save_sharded

__all__ = [
    "save", "restore", "load_metadata", "read_header", "remove_stale_temp_files",
    "CheckpointManager", "CheckpointError", "CheckpointWarning", "IncompatibleKeys",
    "save_sharded", "restore_sharded", "read_manifest",
]
