"""A small thread-safe LRU cache of embedding vectors, keyed by text."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["CacheInfo", "VectorCache"]


class CacheInfo(NamedTuple):
    """Cache statistics, shaped like `functools.lru_cache`'s."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


class VectorCache:
    """Least-recently-used vectors by text. Stored vectors are read-only, so sharing is safe."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 0:
            raise ValueError(f"cache_size must be 0 or more, not {maxsize}")
        self.maxsize = maxsize
        self._items: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def get(self, text: str, *, count: bool = True) -> npt.NDArray[np.float32] | None:
        """The vector of ``text``, or None; ``count=False`` leaves the hit/miss counts alone
        (a second look for a text already counted)."""
        with self._lock:
            vector = self._items.get(text)
            if vector is None:
                self._misses += count
                return None
            self._items.move_to_end(text)
            self._hits += count
            return vector

    def put(self, text: str, vector: npt.NDArray[np.float32]) -> None:
        if self.maxsize == 0:
            return
        vector.setflags(write=False)
        with self._lock:
            self._items[text] = vector
            self._items.move_to_end(text)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._hits = self._misses = 0

    def info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self._hits, self._misses, self.maxsize, len(self._items))
