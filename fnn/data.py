"""Minibatching: `batches(arrays, batch_size, key=None, drop_last=False)`.

Yields tuples of aligned minibatches of the given arrays (equal first dimensions), in order,
or shuffled by a permutation from `transforms.random` when a PRNG `key` is given (the same key
gives the same order on every machine). Given a single array instead of a tuple/list, yields
single arrays.
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


def batches(arrays, batch_size, key=None, drop_last=False):
    """Iterate over aligned minibatches of `arrays` (a tuple/list of arrays with equal first
    dimensions). The last batch is smaller unless `drop_last`. Shuffled when `key` is given."""
    arrs, single = _as_list(arrays)
    batch_size = int(batch_size)
    if batch_size <= 0:
        raise ValueError(f"batches: batch_size must be positive, got {batch_size}")
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
    return _generate(arrs, single, order, batch_size, stop)


def _generate(arrs, single, order, batch_size, stop):
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, stop)
        if order is None:
            out = tuple(a[start:end] for a in arrs)
        else:
            idx = order[start:end]
            out = tuple(a[idx] for a in arrs)
        yield out[0] if single else out
