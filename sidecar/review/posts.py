"""`RequestPosts` over the plugin data: the root posts the engine recorded for a request."""

from __future__ import annotations

from sidecar.codec.plugindata import decode
from sidecar.domain.model import PostRef
from sidecar.domain.ports import PluginDataStore

__all__ = ["StoredPosts"]


class StoredPosts:
    """The `messages` of a request's stored record (the same store the engine writes)."""

    def __init__(self, store: PluginDataStore) -> None:
        self._store = store

    async def posts_of(self, request_id: str) -> frozenset[PostRef]:
        """Every (channel id, post id) recorded for the request; empty when nothing is stored.

        Raises PluginDataError for a record that cannot be decoded, and what the store raises.
        """
        data = await self._store.get(request_id)
        if not data:
            return frozenset()
        return frozenset(decode(data).messages)
