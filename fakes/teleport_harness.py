"""The Teleport Auth RPCs only the harness makes: acting as the people of a test, the demo or `fakes.tctl`.

The sidecar never creates, reviews, resolves or deletes access requests, nor reads users, so these wrappers stay
out of the product (sidecar/teleport/client.py). `HarnessClient` holds a `TeleportClient` and makes its calls
through `TeleportClient.unary`, so the channel, the identity reloads and the one gRPC status → sidecar error
mapping (`map_rpc_error`) are the product's. Listing goes through the product's `list_access_requests`: there is
one implementation of the ListAccessRequests paging (and its GetAccessRequestsV2 fallback).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sidecar.domain.errors import NotFound
from sidecar.domain.model import RequestState
from sidecar.teleport.client import TeleportClient
from sidecar.teleport.convert import KIND_ACCESS_REQUEST, dict_to_label_values, state_to_proto
from sidecar.teleport.wire import authservice_pb2, types_pb2, users_service_pb2


class HarnessClient:
    """Access-request workflow and user lookups over a TeleportClient (which the caller opens and closes)."""

    def __init__(self, client: TeleportClient) -> None:
        self._client = client

    @property
    def client(self) -> TeleportClient:
        """The product client the calls go through."""
        return self._client

    async def create_access_request(self, request: types_pb2.AccessRequestV3) -> types_pb2.AccessRequestV3:
        """CreateAccessRequestV2: the created request as the server stored it."""
        return await self._client.unary(
            "CreateAccessRequestV2",
            lambda ch: ch.auth.CreateAccessRequestV2(request, timeout=self._client.timeout),
        )

    async def create(
        self, roles: Sequence[str], *, user: str = "", reason: str = "", reviewers: Sequence[str] = ()
    ) -> types_pb2.AccessRequestV3:
        """Create a PENDING request for `roles`; an empty `user` lets the server use the caller (like tctl)."""
        draft = types_pb2.AccessRequestV3(Kind=KIND_ACCESS_REQUEST, Version="v3")
        draft.Spec.User = user
        draft.Spec.Roles.extend(roles)
        draft.Spec.RequestReason = reason
        draft.Spec.SuggestedReviewers.extend(reviewers)
        draft.Spec.State = types_pb2.PENDING
        return await self.create_access_request(draft)

    async def delete_access_request(self, request_id: str) -> None:
        """DeleteAccessRequest."""
        request = authservice_pb2.RequestID(ID=request_id)
        await self._client.unary(
            "DeleteAccessRequest", lambda ch: ch.auth.DeleteAccessRequest(request, timeout=self._client.timeout)
        )

    async def set_access_request_state(
        self,
        request_id: str,
        state: RequestState,
        *,
        reason: str = "",
        delegator: str = "",
        annotations: Mapping[str, Sequence[str]] | None = None,
        roles: Sequence[str] = (),
    ) -> None:
        """SetAccessRequestState (approve or deny outright)."""
        request = authservice_pb2.RequestStateSetter(
            ID=request_id, State=state_to_proto(state), Delegator=delegator, Reason=reason, Roles=list(roles)
        )
        if annotations:
            request.Annotations.CopyFrom(dict_to_label_values(annotations))
        await self._client.unary(
            "SetAccessRequestState",
            lambda ch: ch.auth.SetAccessRequestState(request, timeout=self._client.timeout),
        )

    async def submit_access_review(
        self,
        request_id: str,
        proposed_state: RequestState,
        *,
        author: str = "",
        reason: str = "",
        roles: Sequence[str] = (),
        annotations: Mapping[str, Sequence[str]] | None = None,
    ) -> types_pb2.AccessRequestV3:
        """SubmitAccessReview; an empty author means the caller. Returns the request after the review."""
        review = types_pb2.AccessReview(
            Author=author, ProposedState=state_to_proto(proposed_state), Reason=reason, Roles=list(roles)
        )
        if annotations:
            review.Annotations.CopyFrom(dict_to_label_values(annotations))
        request = types_pb2.AccessReviewSubmission(RequestID=request_id, Review=review)
        return await self._client.unary(
            "SubmitAccessReview", lambda ch: ch.auth.SubmitAccessReview(request, timeout=self._client.timeout)
        )

    async def list_access_requests(
        self, request_filter: types_pb2.AccessRequestFilter | None = None
    ) -> list[types_pb2.AccessRequestV3]:
        """Every matching request, through the product's `TeleportClient.list_access_requests`."""
        return await self._client.list_access_requests(request_filter)

    async def get_access_request(self, request_id: str) -> types_pb2.AccessRequestV3:
        """One request by id. Raises NotFound when the caller cannot see a request with that id."""
        found = await self._client.list_access_requests(types_pb2.AccessRequestFilter(ID=request_id))
        if not found:
            raise NotFound(f"access request {request_id} not found")
        return found[0]

    async def get_user(self, name: str) -> types_pb2.UserV2:
        """GetUser through `teleport.users.v1.UsersService`, as the v18 Go client does."""
        request = users_service_pb2.GetUserRequest(name=name)
        response: users_service_pb2.GetUserResponse = await self._client.unary(
            "GetUser", lambda ch: ch.users.GetUser(request, timeout=self._client.timeout)
        )
        return response.user


__all__ = ["HarnessClient"]
