"""Small bounded caches for Mattermost lookups.

`EtagCache` keeps the last body and ETag of GET lookups so the client can revalidate with
`If-None-Match` (a 304 costs no parsing and no transfer). `TtlCache` keeps resolved recipients for a
while so a steady-state notification needs no lookup at all.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A dict that forgets its least recently used entry beyond `max_entries`."""

    def __init__(self, max_entries: int = 1024) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value for `key` (marking it recently used), or None."""
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Store `value`, evicting the oldest entry when full."""
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    def pop(self, key: K) -> None:
        """Forget `key` if present."""
        self._data.pop(key, None)

    def items(self) -> Iterator[tuple[K, V]]:
        """A snapshot of the entries, oldest first."""
        return iter(list(self._data.items()))

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True)
class EtagEntry:
    """A cached GET response body and the ETag the server sent with it."""

    etag: str
    body: object


class EtagCache(LruCache[str, EtagEntry]):
    """GET responses keyed by request path, for `If-None-Match` revalidation."""


class TtlCache(Generic[K, V]):
    """An LRU whose entries expire `ttl` seconds after they were stored (clock injectable)."""

    def __init__(self, ttl: float, *, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lru: LruCache[K, tuple[float, V]] = LruCache(max_entries)

    def get(self, key: K) -> V | None:
        """The value if stored and still fresh, else None."""
        entry = self._lru.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if self._clock() >= expires_at:
            self._lru.pop(key)
            return None
        return value

    def put(self, key: K, value: V) -> None:
        """Store `value`, fresh for the cache's ttl."""
        self._lru.put(key, (self._clock() + self._ttl, value))

    def pop(self, key: K) -> None:
        """Forget `key` if present."""
        self._lru.pop(key)

    def drop_where(self, predicate: Callable[[V], bool]) -> None:
        """Forget every entry whose value matches `predicate`."""
        for key, (_, value) in self._lru.items():
            if predicate(value):
                self._lru.pop(key)
