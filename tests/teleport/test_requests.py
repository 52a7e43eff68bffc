"""TeleportRequestSource (the reconcile's listing) against the in-test Auth server: paging, fallback, bad requests."""

from __future__ import annotations

import pytest

from fakes.teleport_harness import HarnessClient
from sidecar.domain.model import AccessRequest, RequestState
from sidecar.domain.ports import RequestSource, UnreadableRequest
from sidecar.teleport.client import TeleportClient
from sidecar.teleport.requests import TeleportRequestSource
from sidecar.teleport.wire import types_pb2
from tests.teleport.servers import AuthState, draft_request


async def _create(harness: HarnessClient, count: int) -> None:
    for i in range(count):
        await harness.create_access_request(draft_request(f"r{i}"))


async def test_lists_page_by_page_as_the_caller_iterates(
    client: TeleportClient, harness: HarnessClient, server: tuple[int, AuthState]
) -> None:
    await _create(harness, 5)
    source: RequestSource = TeleportRequestSource(client, page_size=2)
    listing = source.list_requests()
    first = await anext(listing)
    assert isinstance(first, AccessRequest)
    assert (first.id, first.state, first.roles) == ("r0", RequestState.PENDING, ("editor",))
    assert server[1].page_limits == [2]  # only the first page has been fetched
    rest = [item async for item in listing]
    assert [r.id for r in rest if isinstance(r, AccessRequest)] == ["r1", "r2", "r3", "r4"]
    assert server[1].page_limits == [2, 2, 2]


async def test_falls_back_to_get_access_requests_v2(
    client: TeleportClient, harness: HarnessClient, server: tuple[int, AuthState]
) -> None:
    await _create(harness, 3)
    server[1].list_unimplemented = True
    pages = [[r.Metadata.Name for r in page] async for page in client.access_request_pages(page_size=2)]
    assert pages == [["r0", "r1"], ["r2"]]
    listed = [item async for item in TeleportRequestSource(client).list_requests()]
    assert [r.id for r in listed if isinstance(r, AccessRequest)] == ["r0", "r1", "r2"]
    assert server[1].page_limits == []


async def test_a_request_that_cannot_be_converted_is_named_not_fatal(
    client: TeleportClient, harness: HarnessClient, server: tuple[int, AuthState]
) -> None:
    await _create(harness, 2)
    broken = draft_request("r-broken")
    broken.Spec.State = 42  # type: ignore[assignment]  # a state this sidecar does not know
    server[1].requests["r-broken"] = broken
    listed = [item async for item in TeleportRequestSource(client, page_size=1).list_requests()]
    # Listed in name order: the broken one first, and the listing goes on past it.
    assert listed[0] == UnreadableRequest("r-broken", "unknown access request state 42")
    assert [r.id for r in listed[1:] if isinstance(r, AccessRequest)] == ["r0", "r1"]


async def test_an_empty_cluster_lists_nothing(client: TeleportClient, server: tuple[int, AuthState]) -> None:
    assert [item async for item in TeleportRequestSource(client).list_requests()] == []
    assert server[1].page_limits == [500]


def test_page_size_must_be_positive(client: TeleportClient) -> None:
    with pytest.raises(ValueError, match="page_size"):
        TeleportRequestSource(client, page_size=0)


async def test_pages_refuse_a_bad_page_size(client: TeleportClient) -> None:
    with pytest.raises(ValueError, match="page_size"):
        await anext(client.access_request_pages(types_pb2.AccessRequestFilter(), page_size=0))
