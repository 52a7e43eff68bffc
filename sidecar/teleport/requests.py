"""`RequestSource` over TeleportClient: the access requests the reconcile hands to the engine.

Lists every request Teleport still holds (pending, and resolved ones until they expire and are deleted) with
`TeleportClient.access_request_pages` (ListAccessRequests page by page, GetAccessRequestsV2 on older servers),
converting each page only when the caller asks for it. A message that is not a usable access request is
yielded as an `UnreadableRequest` rather than ending the listing, so one bad request cannot hide the others.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sidecar.domain.errors import ConversionError
from sidecar.domain.model import AccessRequest
from sidecar.domain.ports import UnreadableRequest
from sidecar.teleport.client import LIST_PAGE_SIZE, TeleportClient
from sidecar.teleport.convert import access_request_from_proto
from sidecar.teleport.wire import types_pb2

__all__ = ["TeleportRequestSource"]


class TeleportRequestSource:
    """RequestSource over TeleportClient."""

    def __init__(self, client: TeleportClient, *, page_size: int = LIST_PAGE_SIZE) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self._client = client
        self._page_size = page_size

    async def list_requests(self) -> AsyncIterator[AccessRequest | UnreadableRequest]:
        """Every request, a page fetched at a time. Raises TransientError when Teleport cannot list them now."""
        async for page in self._client.access_request_pages(page_size=self._page_size):
            for message in page:
                yield _readable(message)


def _readable(message: types_pb2.AccessRequestV3) -> AccessRequest | UnreadableRequest:
    try:
        return access_request_from_proto(message)
    except ConversionError as exc:
        return UnreadableRequest(message.Metadata.Name, str(exc))
