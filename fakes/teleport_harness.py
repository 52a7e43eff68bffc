"""The Teleport Auth RPCs only the harness makes: acting as the people of a test, the demo or `fakes.tctl`.

The sidecar never creates, reviews, resolves or deletes access requests, nor writes access monitoring rules, so
these wrappers stay out of the product (sidecar/teleport/client.py). `HarnessClient` holds a `TeleportClient`
and makes its calls through `TeleportClient.unary`, so the channel, the identity reloads and the one gRPC status
→ sidecar error mapping (`map_rpc_error`) are the product's. Listing goes through the product's
`list_access_requests`: there is one implementation of the ListAccessRequests paging (and its GetAccessRequestsV2
fallback). The sidecar's channel has no rules stub, so the rule calls build one on the leased channel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sidecar.domain.errors import NotFound
from sidecar.domain.model import RequestState
from sidecar.teleport.client import TeleportClient
from sidecar.teleport.convert import (
    KIND_ACCESS_REQUEST,
    dict_to_label_values,
    resource_id_from_string,
    state_to_proto,
)
from sidecar.teleport.transport import OpenChannel
from sidecar.teleport.wire import access_monitoring_rules_pb2 as amr_pb2
from sidecar.teleport.wire import access_monitoring_rules_service_pb2 as amr_service_pb2
from sidecar.teleport.wire import access_monitoring_rules_service_pb2_grpc as amr_service_pb2_grpc
from sidecar.teleport.wire import authservice_pb2, types_pb2, users_service_pb2

Rule = amr_pb2.AccessMonitoringRule


def _rules_stub(channel: OpenChannel) -> amr_service_pb2_grpc.AccessMonitoringRulesServiceStub:
    # Built per call on the leased channel: a stub is a thin wrapper, and the product's channel has none for rules.
    return amr_service_pb2_grpc.AccessMonitoringRulesServiceStub(channel.channel)


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
        self,
        roles: Sequence[str] = (),
        *,
        user: str = "",
        reason: str = "",
        reviewers: Sequence[str] = (),
        resources: Sequence[str] = (),
        long_term: bool = False,
    ) -> types_pb2.AccessRequestV3:
        """Create a PENDING request for `roles` and/or `resources` (ids `/<cluster>/<kind>/<name>`; without roles
        the server picks them from the requester's search_as_roles); an empty `user` means the caller (like tctl).

        Raises ConversionError for a malformed resource id."""
        draft = types_pb2.AccessRequestV3(Kind=KIND_ACCESS_REQUEST, Version="v3")
        draft.Spec.User = user
        draft.Spec.Roles.extend(roles)
        draft.Spec.RequestReason = reason
        draft.Spec.SuggestedReviewers.extend(reviewers)
        draft.Spec.RequestedResourceIDs.extend(resource_id_from_string(r) for r in resources)
        draft.Spec.State = types_pb2.PENDING
        if long_term:
            draft.Spec.RequestKind = types_pb2.LONG_TERM
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
        on_behalf: bool = False,
        submitted_by: str = "",
    ) -> types_pb2.AccessRequestV3:
        """SubmitAccessReview; an empty author means the caller. Returns the request after the review.

        `on_behalf` sets `submitted_on_behalf_of_author` (a plugin reviewing for `author`); `submitted_by` sets
        SubmittedBy, which a well-behaved client never does (tests use it to forge one)."""
        review = types_pb2.AccessReview(
            Author=author,
            ProposedState=state_to_proto(proposed_state),
            Reason=reason,
            Roles=list(roles),
            SubmittedBy=submitted_by,
            submitted_on_behalf_of_author=on_behalf,
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

    async def list_resources_page(
        self,
        resource_type: str,
        *,
        limit: int = 100,
        start_key: str = "",
        predicate: str = "",
        labels: Mapping[str, str] | None = None,
        keywords: Sequence[str] = (),
        preview_as_roles: bool = False,
        search_as_roles: bool = False,
    ) -> authservice_pb2.ListResourcesResponse:
        """One page of ListResources (`node`, `app_server`, `db_server`, `kube_server`, ...)."""
        request = authservice_pb2.ListResourcesRequest(
            ResourceType=resource_type,
            Limit=limit,
            StartKey=start_key,
            PredicateExpression=predicate,
            Labels=dict(labels or {}),
            SearchKeywords=list(keywords),
            UsePreviewAsRoles=preview_as_roles,
            UseSearchAsRoles=search_as_roles,
            NeedTotalCount=True,
        )
        return await self._client.unary(
            "ListResources", lambda ch: ch.auth.ListResources(request, timeout=self._client.timeout)
        )

    async def list_users_page(
        self, *, traits: Mapping[str, Sequence[str]] | None = None, page_size: int = 0, page_token: str = ""
    ) -> users_service_pb2.ListUsersResponse:
        """One page of ListUsers (`teleport.users.v1`), filtered by traits when given."""
        request = users_service_pb2.ListUsersRequest(page_size=page_size, page_token=page_token)
        if traits:
            request.filter.Traits.CopyFrom(dict_to_label_values(traits))
        return await self._client.unary(
            "ListUsers", lambda ch: ch.users.ListUsers(request, timeout=self._client.timeout)
        )

    async def get_user(self, name: str) -> types_pb2.UserV2:
        """GetUser through `teleport.users.v1.UsersService`, as the v18 Go client does."""
        request = users_service_pb2.GetUserRequest(name=name)
        response: users_service_pb2.GetUserResponse = await self._client.unary(
            "GetUser", lambda ch: ch.users.GetUser(request, timeout=self._client.timeout)
        )
        return response.user

    # ----------------------------------------------------------------- access monitoring rules

    async def create_access_monitoring_rule(self, rule: Rule) -> Rule:
        """CreateAccessMonitoringRule: the rule as stored (with its revision); AlreadyExists when the name is taken."""
        request = amr_service_pb2.CreateAccessMonitoringRuleRequest(rule=rule)
        return await self._client.unary(
            "CreateAccessMonitoringRule",
            lambda ch: _rules_stub(ch).CreateAccessMonitoringRule(request, timeout=self._client.timeout),
        )

    async def update_access_monitoring_rule(self, rule: Rule) -> Rule:
        """UpdateAccessMonitoringRule: replace an existing rule (NotFound when there is none)."""
        request = amr_service_pb2.UpdateAccessMonitoringRuleRequest(rule=rule)
        return await self._client.unary(
            "UpdateAccessMonitoringRule",
            lambda ch: _rules_stub(ch).UpdateAccessMonitoringRule(request, timeout=self._client.timeout),
        )

    async def upsert_access_monitoring_rule(self, rule: Rule) -> Rule:
        """UpsertAccessMonitoringRule: create or replace."""
        request = amr_service_pb2.UpsertAccessMonitoringRuleRequest(rule=rule)
        return await self._client.unary(
            "UpsertAccessMonitoringRule",
            lambda ch: _rules_stub(ch).UpsertAccessMonitoringRule(request, timeout=self._client.timeout),
        )

    async def get_access_monitoring_rule(self, name: str) -> Rule:
        """GetAccessMonitoringRule."""
        request = amr_service_pb2.GetAccessMonitoringRuleRequest(name=name)
        return await self._client.unary(
            "GetAccessMonitoringRule",
            lambda ch: _rules_stub(ch).GetAccessMonitoringRule(request, timeout=self._client.timeout),
        )

    async def delete_access_monitoring_rule(self, name: str) -> None:
        """DeleteAccessMonitoringRule."""
        request = amr_service_pb2.DeleteAccessMonitoringRuleRequest(name=name)
        await self._client.unary(
            "DeleteAccessMonitoringRule",
            lambda ch: _rules_stub(ch).DeleteAccessMonitoringRule(request, timeout=self._client.timeout),
        )

    async def list_access_monitoring_rules_page(
        self, page_size: int = 0, page_token: str = ""
    ) -> amr_service_pb2.ListAccessMonitoringRulesResponse:
        """One page of ListAccessMonitoringRules."""
        request = amr_service_pb2.ListAccessMonitoringRulesRequest(page_size=page_size, page_token=page_token)
        return await self._client.unary(
            "ListAccessMonitoringRules",
            lambda ch: _rules_stub(ch).ListAccessMonitoringRules(request, timeout=self._client.timeout),
        )

    async def list_access_monitoring_rules(self, page_size: int = 0) -> list[Rule]:
        """Every rule, in name order, paging as `tctl get access_monitoring_rule` does (page size 0)."""
        rules: list[Rule] = []
        token = ""
        while True:
            page = await self.list_access_monitoring_rules_page(page_size, token)
            rules.extend(page.rules)
            token = page.next_page_token
            if not token:
                return rules

    async def list_access_monitoring_rules_with_filter_page(
        self,
        *,
        subjects: Sequence[str] = (),
        notification_name: str = "",
        automatic_review_name: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> amr_service_pb2.ListAccessMonitoringRulesWithFilterResponse:
        """One page of ListAccessMonitoringRulesWithFilter."""
        request = amr_service_pb2.ListAccessMonitoringRulesWithFilterRequest(
            subjects=list(subjects),
            notification_name=notification_name,
            automatic_review_name=automatic_review_name,
            page_size=page_size,
            page_token=page_token,
        )
        return await self._client.unary(
            "ListAccessMonitoringRulesWithFilter",
            lambda ch: _rules_stub(ch).ListAccessMonitoringRulesWithFilter(request, timeout=self._client.timeout),
        )


__all__ = ["HarnessClient"]
