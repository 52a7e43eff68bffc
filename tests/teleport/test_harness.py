"""HarnessClient (fakes/teleport_harness.py) against the in-test Auth server: the RPCs only the harness makes,
through TeleportClient.unary and so with the product's error mapping."""

from __future__ import annotations

import pytest

from fakes.teleport_harness import HarnessClient
from sidecar.domain.errors import AlreadyExists, NotFound, Rejected
from sidecar.domain.model import RequestState
from sidecar.teleport.client import TeleportClient
from sidecar.teleport.wire import types_pb2
from tests.teleport.servers import AuthState, draft_request


async def test_access_request_lifecycle(harness: HarnessClient, server: tuple[int, AuthState]) -> None:
    created = await harness.create_access_request(draft_request("r1"))
    assert created.Kind == "access_request" and created.Spec.State == types_pb2.PENDING
    with pytest.raises(AlreadyExists, match=r"^CreateAccessRequestV2: ALREADY_EXISTS"):
        await harness.create_access_request(draft_request("r1"))
    reviewed = await harness.submit_access_review("r1", RequestState.APPROVED, reason="ok")
    assert [(r.Author, r.Reason) for r in reviewed.Spec.Reviews] == [("access-plugin", "ok")]
    with pytest.raises(Rejected, match="promotion"):
        await harness.submit_access_review("r1", RequestState.PROMOTED)
    await harness.set_access_request_state("r1", RequestState.DENIED, reason="no", annotations={"k": ["v"]})
    stored = server[1].requests["r1"]
    assert (stored.Spec.State, stored.Spec.ResolveReason) == (types_pb2.DENIED, "no")
    await harness.delete_access_request("r1")
    with pytest.raises(NotFound, match=r"^DeleteAccessRequest: NOT_FOUND"):
        await harness.delete_access_request("r1")
    with pytest.raises(NotFound, match=r"^SetAccessRequestState: NOT_FOUND"):
        await harness.set_access_request_state("r1", RequestState.APPROVED)


async def test_create_builds_a_pending_request(harness: HarnessClient, server: tuple[int, AuthState]) -> None:
    await harness.create(["editor", "auditor"], user="u", reason="because", reviewers=["rev@example.com"])
    [stored] = server[1].requests.values()
    spec = stored.Spec
    assert (spec.User, list(spec.Roles), spec.RequestReason) == ("u", ["editor", "auditor"], "because")
    assert (list(spec.SuggestedReviewers), spec.State) == (["rev@example.com"], types_pb2.PENDING)


async def test_listing_goes_through_the_product_client(
    harness: HarnessClient, client: TeleportClient, server: tuple[int, AuthState]
) -> None:
    assert harness.client is client
    for i in range(3):
        await harness.create_access_request(draft_request(f"r{i}", user="a" if i % 2 else "b"))
    assert [r.Metadata.Name for r in await harness.list_access_requests()] == ["r0", "r1", "r2"]
    only_b = await harness.list_access_requests(types_pb2.AccessRequestFilter(User="b"))
    assert [r.Metadata.Name for r in only_b] == ["r0", "r2"]
    assert server[1].page_limits  # ListAccessRequests, paged by TeleportClient.list_access_requests


async def test_get_access_request(harness: HarnessClient, server: tuple[int, AuthState]) -> None:
    server[1].list_unimplemented = True  # the product client's fallback serves the harness too
    await harness.create_access_request(draft_request("r1"))
    assert (await harness.get_access_request("r1")).Metadata.Name == "r1"
    with pytest.raises(NotFound, match="access request nope not found"):
        await harness.get_access_request("nope")


async def test_get_user(harness: HarnessClient, server: tuple[int, AuthState]) -> None:
    server[1].users["alice"] = ["editor"]
    user = await harness.get_user("alice")
    assert (user.Metadata.Name, list(user.Spec.Roles)) == ("alice", ["editor"])
    with pytest.raises(NotFound, match=r'^GetUser: NOT_FOUND: user "bob" is not found'):
        await harness.get_user("bob")
