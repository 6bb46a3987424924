"""Integer keys under which compiled code finds Python objects (callbacks).

Generated source names a callback by an integer key, not by the object: the key is part of
the source (and so of the disk-cache key), and a cached executable loaded in a later process
finds that process's object under the key its own lowering chose."""
from __future__ import annotations

import threading


class KeyedRegistry:
    """Objects by integer key, one key per live object (stable for the process)."""

    def __init__(self):
        self._items: dict = {}
        self._keys: dict = {}
        self._lock = threading.Lock()

    def register(self, obj) -> int:
        """The key of `obj`, made on its first registration. (An `id` can be reused after its
        object died, so a key is only reused when it still holds the very same object.)"""
        with self._lock:
            k = self._keys.get(id(obj))
            if k is None or self._items[k] is not obj:
                k = len(self._items)
                self._items[k] = obj
                self._keys[id(obj)] = k
            return k

    def __getitem__(self, key):
        return self._items[key]
