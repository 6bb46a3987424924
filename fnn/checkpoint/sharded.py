"""Checkpoints of a model-parallel (sharded) tree: every process saves its own part, and one
manifest commits the parts together.

    fnn.checkpoint.save_sharded("ckpt/step_100", my_part)        # on every process
    my_part = fnn.checkpoint.restore_sharded("ckpt/step_100", target=my_part)

Layout: the directory `path` holds ``shard_{i:05d}-of-{n:05d}.safetensors`` (process i's part,
an ordinary `save` file) and ``manifest.json`` (the number of shards, the file names and the
user metadata). Commit protocol: process 0 creates a hidden temporary directory next to
`path`; every process writes its shard into it; the processes exchange their outcomes (an
error on any process is raised on every process and nothing is committed); process 0 writes the
manifest last and renames the directory to `path`. So `path` either does not exist, or holds
every shard and the manifest (when `path` is replaced, the old one is moved aside first and
removed after the rename). Restoring needs the same number of processes as shards - a
different count is a clear error (re-sharding is not supported: a shard's layout is the
model's, not the checkpoint's).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil

import numpy as np

from fnn.checkpoint.format import CheckpointError, fsync_dir, save_file, restore

MANIFEST = "manifest.json"
KIND = "fnn.checkpoint.sharded"
VERSION = 1


def shard_name(index: int, count: int) -> str:
    """The file name of part `index` of `count` inside a sharded checkpoint directory."""
    return f"shard_{index:05d}-of-{count:05d}.safetensors"


def _exchange(value):
    """Every process's `value`, in process order (a list of length process_count())."""
    from transforms import distributed as dist
    if dist.process_count() == 1:
        return [value]
    return dist._R.world().allgather(value)


def _raise_if_any(errors, what):
    bad = [(i, e) for i, e in enumerate(errors) if e is not None]
    if bad:
        i, e = bad[0]
        raise RuntimeError(f"{what} failed on process {i}: {e}")


def save_sharded(path, tree, metadata=None) -> str:
    """Save this process's part `tree` of a sharded tree into the directory `path`; every
    process calls it (collectively) with its own part. Returns `path` on every process once the
    checkpoint is committed. An error on any process (an unsupported leaf, a full disk) raises
    RuntimeError on every process, naming it, and leaves any previous `path` as it was.

    Args:
      path: the checkpoint directory (its parent must exist; an existing checkpoint there is
        replaced).
      tree: this process's part (any pytree `fnn.checkpoint.save` takes); parts may differ in
        structure and shapes between processes.
      metadata: optional JSON-serialisable dict stored in the manifest (process 0's is kept).
    """
    from transforms import distributed as dist
    rank, count = dist.process_index(), dist.process_count()
    path = os.path.abspath(os.fspath(path))
    parent, base = os.path.split(path)
    token = _exchange(secrets.token_hex(6) if rank == 0 else None)[0]
    tmp = os.path.join(parent, f".{base}.tmp-{token}")

    error = None
    if rank == 0:
        try:
            os.mkdir(tmp)
        except Exception as e:                 # noqa: BLE001 - reported on every process
            error = f"{type(e).__name__}: {e}"
    _raise_if_any(_exchange(error), f"save_sharded({path!r}): creating the directory")
    try:
        save_file(os.path.join(tmp, shard_name(rank, count)), tree)
    except Exception as e:                     # noqa: BLE001
        error = f"{type(e).__name__}: {e}"
    errors = _exchange(error)
    if any(e is not None for e in errors):
        if rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        _raise_if_any(errors, f"save_sharded({path!r}): writing a shard")
    if rank == 0:
        try:
            _commit(path, tmp, token, count, metadata)
        except Exception as e:                 # noqa: BLE001
            shutil.rmtree(tmp, ignore_errors=True)
            error = f"{type(e).__name__}: {e}"
    _raise_if_any(_exchange(error), f"save_sharded({path!r}): committing")
    return path


def _commit(path, tmp, token, count, metadata):
    manifest = {"kind": KIND, "version": VERSION, "shards": count,
                "files": [shard_name(i, count) for i in range(count)],
                "metadata": metadata}
    text = json.dumps(manifest, default=_json_default)
    name = os.path.join(tmp, MANIFEST)
    with open(name, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(tmp)
    old = None
    if os.path.lexists(path):
        old = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.old-{token}")
        os.rename(path, old)
    os.rename(tmp, path)
    fsync_dir(os.path.dirname(path))
    if old is not None:
        shutil.rmtree(old, ignore_errors=True) if os.path.isdir(old) else os.remove(old)


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"metadata: {type(x).__name__} is not JSON-serialisable")


def read_manifest(path) -> dict:
    """The manifest of the sharded checkpoint `path` (CheckpointError if it has none)."""
    name = os.path.join(os.fspath(path), MANIFEST)
    try:
        with open(name) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no {MANIFEST}; not a committed sharded checkpoint "
                              "(save_sharded writes it last)") from None
    except ValueError as e:
        raise CheckpointError(f"{name}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND or \
            not isinstance(manifest.get("shards"), int):
        raise CheckpointError(f"{name}: not a manifest of {KIND}")
    return manifest


def restore_sharded(path, target=None, *, shard=None, **kwargs):
    """This process's part of the sharded checkpoint `path` (as `restore` of its shard file,
    with `target` and the other keyword arguments of `restore`). The number of processes must
    equal the number of shards saved; otherwise a ValueError says both. `shard=i` reads part
    `i` instead, on any number of processes (to inspect a checkpoint on one process)."""
    from transforms import distributed as dist
    manifest = read_manifest(path)
    n = manifest["shards"]
    if shard is None:
        count = dist.process_count()
        if count != n:
            raise ValueError(f"restore_sharded({os.fspath(path)!r}): the checkpoint has {n} "
                             f"shards (saved by {n} processes) but {count} process(es) are "
                             f"restoring it; restore on {n} processes (re-sharding onto another "
                             "count is not supported), or read one part with shard=i")
        shard = dist.process_index()
    if isinstance(shard, bool) or not isinstance(shard, (int, np.integer)) or \
            not 0 <= shard < n:
        raise ValueError(f"restore_sharded: shard={shard!r} is not in [0, {n})")
    return restore(os.path.join(os.fspath(path), shard_name(int(shard), n)), target, **kwargs)
