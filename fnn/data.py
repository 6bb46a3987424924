"""Minibatching: `batches(arrays, batch_size, key=None, drop_last=False)`.

Yields tuples of aligned minibatches of the given arrays (equal first dimensions), in order,
or shuffled by a permutation from `transforms.random` when a PRNG `key` is given (the same key
gives the same order on every machine). Given a single array instead of a tuple/list, yields
single arrays.

`shard=(index, count)` (several processes, e.g. `shard=(dist.process_index(),
dist.process_count())`): every process walks the same global batches (pass the same `key`
everywhere) and gets only its contiguous share of each: `batch_size` is the *global* batch size,
which must be divisible by `count`; a smaller last batch (without `drop_last`) is split as evenly
as possible (shares differ by at most one example).
"""
from __future__ import annotations

import numpy as np

from transforms import random

__all__ = ["batches", "num_batches"]


def _as_list(arrays):
    if isinstance(arrays, (tuple, list)):
        if not arrays:
            raise ValueError("batches: no arrays given")
        return [np.asarray(a) for a in arrays], False
    return [np.asarray(arrays)], True


def num_batches(n, batch_size, drop_last=False):
    """How many minibatches `batches` yields for `n` examples."""
    return n // batch_size if drop_last else -(-n // batch_size)


def _check_shard(shard, batch_size):
    try:
        index, count = shard
    except (TypeError, ValueError):
        raise TypeError(f"batches: shard must be a pair (index, count), got {shard!r}") from None
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in (index, count)):
        raise TypeError(f"batches: shard=(index, count) must be ints, got {shard!r}")
    index, count = int(index), int(count)
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"batches: shard=(index, count) needs 0 <= index < count, got {shard!r}")
    if batch_size % count:
        raise ValueError(f"batches: the global batch_size {batch_size} is not divisible by the "
                         f"shard count {count}")
    return index, count


def batches(arrays, batch_size, key=None, drop_last=False, shard=None):
    """Iterate over aligned minibatches of `arrays` (a tuple/list of arrays with equal first
    dimensions). The last batch is smaller unless `drop_last`. Shuffled when `key` is given.
    With `shard=(index, count)`, yields only this process's share of every global batch."""
    arrs, single = _as_list(arrays)
    batch_size = int(batch_size)
    if batch_size <= 0:
        raise ValueError(f"batches: batch_size must be positive, got {batch_size}")
    part = None if shard is None else _check_shard(shard, batch_size)
    for i, a in enumerate(arrs):
        if a.ndim == 0:
            raise ValueError(f"batches: array {i} is a scalar; every array needs a first "
                             "(example) dimension")
    n = arrs[0].shape[0]
    bad = [(i, a.shape[0]) for i, a in enumerate(arrs) if a.shape[0] != n]
    if bad:
        sizes = ", ".join(f"array {i}: {a.shape[0]}" for i, a in enumerate(arrs))
        raise ValueError(f"batches: arrays must have the same first dimension, got {sizes}")
    order = None if key is None else np.asarray(random.permutation(key, n))
    stop = n - n % batch_size if drop_last else n
    return _generate(arrs, single, order, batch_size, stop, part)


def _generate(arrs, single, order, batch_size, stop, part=None):
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, stop)
        if part is not None:
            index, count = part
            q, r = divmod(end - start, count)
            lo = start + index * q + min(index, r)
            start, end = lo, lo + q + (index < r)
        if order is None:
            out = tuple(a[start:end] for a in arrs)
        else:
            idx = order[start:end]
            out = tuple(a[idx] for a in arrs)
        yield out[0] if single else out
