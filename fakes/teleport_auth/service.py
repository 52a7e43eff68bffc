"""The gRPC servicers: `proto.AuthService`, `teleport.users.v1.UsersService` and
`teleport.accessmonitoringrules.v1.AccessMonitoringRulesService` over `AuthState`.

Each RPC applies injected faults, identifies the caller from the verified client certificate, delegates to the
state, and maps `errors.AuthError` classes to status codes (upstream `gravitational/trace` `trail/trail.go`).
Responses carry the header
`version: <server version>` like Teleport's. Clients sending a `version` header below the previous major are
refused with PERMISSION_DENIED (upstream `lib/auth/middleware.go` `ValidateClientVersion`); clients sending none are
accepted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import empty_pb2

from sidecar.teleport.wire import access_monitoring_rules_pb2 as amr_pb2
from sidecar.teleport.wire import access_monitoring_rules_service_pb2 as amr_service_pb2
from sidecar.teleport.wire import access_monitoring_rules_service_pb2_grpc as amr_service_pb2_grpc
from sidecar.teleport.wire import (
    authservice_pb2,
    authservice_pb2_grpc,
    event_pb2,
    types_pb2,
    users_service_pb2,
    users_service_pb2_grpc,
)

from .errors import AccessDenied, AuthError, BadParameter
from .faults import Faults
from .inventory import resource_to_proto
from .rbac import Caller, caller_from_pem
from .rule_validation import KIND_ACCESS_MONITORING_RULE
from .state import AuthState
from .watch import KIND_ACCESS_REQUEST, SUPPORTED_KINDS, RequestFilter

log = logging.getLogger(__name__)

Context = Any  # grpc.aio.ServicerContext (grpc is untyped)
T = TypeVar("T")

_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")


@dataclass
class ServerInfo:
    """What Ping reports; `proxy_public_addr` is filled in once the proxy port is bound."""

    cluster_name: str
    server_version: str = "18.0.0"
    edition: str = "oss"
    proxy_public_addr: str = ""


class CallGuard:
    """Shared per-call steps: faults, version header, client version check, caller identity."""

    def __init__(self, info: ServerInfo, faults: Faults) -> None:
        self.info = info
        self.faults = faults

    async def enter(self, method: str, context: Context, *, need_caller: bool = True) -> Caller | None:
        """Run the pre-call steps; raises AuthError to refuse the call."""
        await self.faults.before(method)
        self._check_client_version(context)
        await context.send_initial_metadata((("version", self.info.server_version),))
        return self.caller(context) if need_caller else None

    def caller(self, context: Context) -> Caller:
        """The authenticated caller; a missing certificate or another cluster's certificate is refused."""
        auth = context.auth_context()
        pems = auth.get("x509_pem_cert") or []
        if not pems:
            raise AccessDenied("a client certificate is required")
        caller = caller_from_pem(pems[0])
        if caller.cluster != self.info.cluster_name:
            raise AccessDenied(f'certificate was issued by cluster "{caller.cluster}", not "{self.info.cluster_name}"')
        return caller

    def _check_client_version(self, context: Context) -> None:
        sent = [v for k, v in (context.invocation_metadata() or ()) if k == "version"]
        if not sent:
            return
        client = _SEMVER.match(str(sent[0]))
        server = _SEMVER.match(self.info.server_version)
        if client is None or (server is not None and int(client.group(1)) < int(server.group(1)) - 1):
            raise AccessDenied(f"client version {sent[0]!r} is unsupported")


async def _unary(guard: CallGuard, method: str, context: Context, body: Callable[[Caller], T]) -> T:
    try:
        caller = await guard.enter(method, context)
        assert caller is not None
        return body(caller)
    except AuthError as exc:
        log.debug("%s refused: %s %s", method, exc.code.name, exc.message)
        await context.abort(exc.code, exc.message)
        raise  # abort always raises; this keeps the type checker informed


class AuthService(authservice_pb2_grpc.AuthServiceServicer):
    """`/proto.AuthService/*` for the access-request workflow."""

    def __init__(self, state: AuthState, guard: CallGuard) -> None:
        self._state = state
        self._guard = guard

    async def Ping(self, request: authservice_pb2.PingRequest, context: Context) -> authservice_pb2.PingResponse:
        """Cluster name, version and features; needs no permission."""
        info = self._guard.info
        try:
            await self._guard.enter("Ping", context, need_caller=False)
        except AuthError as exc:
            await context.abort(exc.code, exc.message)
        resp = authservice_pb2.PingResponse(ClusterName=info.cluster_name, ServerVersion=info.server_version)
        # Go clients dereference ServerFeatures without a nil check: always send it.
        resp.ServerFeatures.SetInParent()
        if info.edition == "enterprise":
            resp.ServerFeatures.AdvancedAccessWorkflows = True
            resp.ProxyPublicAddr = info.proxy_public_addr
        resp.RemoteAddr = _peer_address(context.peer())
        return resp

    async def WatchEvents(self, request: authservice_pb2.Watch, context: Context) -> AsyncIterator[event_pb2.Event]:
        """INIT with the accepted kinds, then the matching PUT/DELETE events in order."""
        try:
            caller = await self._guard.enter("WatchEvents", context)
            assert caller is not None
            accepted, filters = self._accept_kinds(caller, request)
        except AuthError as exc:
            await context.abort(exc.code, exc.message)
            return
        rules = any(kind.Kind == KIND_ACCESS_MONITORING_RULE for kind in accepted)
        watcher = self._state.fanout.subscribe(filters, rules=rules)
        try:
            init = event_pb2.Event(Type=event_pb2.INIT)
            status = init.WatchStatus
            status.Kind, status.Version = "watch_status", "v1"
            status.Metadata.Name, status.Metadata.Namespace = "watch-status", "default"
            status.Spec.SetInParent()
            status.Spec.Kinds.extend(accepted)
            yield init
            while True:
                try:
                    event = await watcher.next()
                except AuthError as exc:
                    await context.abort(exc.code, exc.message)
                    return
                yield event
        finally:
            watcher.close()

    def _accept_kinds(
        self, caller: Caller, request: authservice_pb2.Watch
    ) -> tuple[list[types_pb2.WatchKind], list[RequestFilter]]:
        """The kinds granted (for INIT) and one filter per granted `access_request` kind.

        `access_request` needs list and read unless the filter asks for the caller's own requests; other kinds
        take the generic branch of Teleport's `hasWatchPermissionForKind`: read. With AllowPartialSuccess a kind
        that is refused or unknown is left out of INIT instead of failing the stream.
        """
        if not request.Kinds:
            raise BadParameter("missing parameter Kinds")
        partial = request.AllowPartialSuccess
        accepted: list[types_pb2.WatchKind] = []
        filters: list[RequestFilter] = []
        denied = False
        policy = self._state.policy
        for kind in request.Kinds:
            if kind.Kind not in SUPPORTED_KINDS:
                if partial:
                    continue
                raise BadParameter(f'watching kind "{kind.Kind}" is not supported')
            if kind.Kind == KIND_ACCESS_REQUEST:
                flt = RequestFilter.from_map(kind.Filter)
                own_only = flt.user == caller.user
                permitted = own_only or (
                    policy.allowed(caller, kind.Kind, "list") and policy.allowed(caller, kind.Kind, "read")
                )
                needs = "list and read"
            else:
                flt = None  # rule events are not filtered
                permitted = policy.allowed(caller, kind.Kind, "read")
                needs = "read"
            if not permitted:
                if partial:
                    denied = True
                    continue
                raise AccessDenied(f'access denied to watch "{kind.Kind}" (needs {needs})')
            accepted.append(kind)
            if flt is not None:
                filters.append(flt)
        if not accepted:
            if denied:
                raise AccessDenied("none of the requested kinds may be watched")
            raise BadParameter("none of the requested kinds is supported")
        return accepted, filters

    async def GetPluginData(
        self, request: types_pb2.PluginDataFilter, context: Context
    ) -> authservice_pb2.PluginDataSeq:
        """Plugin data of a resource (empty list when none)."""
        data = await _unary(self._guard, "GetPluginData", context, lambda c: self._state.get_plugin_data(c, request))
        return authservice_pb2.PluginDataSeq(PluginData=data)

    async def UpdatePluginData(self, request: types_pb2.PluginDataUpdateParams, context: Context) -> empty_pb2.Empty:
        """Compare-and-set plugin data."""
        await _unary(self._guard, "UpdatePluginData", context, lambda c: self._state.update_plugin_data(c, request))
        return empty_pb2.Empty()

    async def CreateAccessRequestV2(
        self, request: types_pb2.AccessRequestV3, context: Context
    ) -> types_pb2.AccessRequestV3:
        """Create a request as the caller."""
        return await _unary(
            self._guard, "CreateAccessRequestV2", context, lambda c: self._state.create_request(c, request)
        )

    async def DeleteAccessRequest(self, request: authservice_pb2.RequestID, context: Context) -> empty_pb2.Empty:
        """Delete a request (admins)."""
        await _unary(self._guard, "DeleteAccessRequest", context, lambda c: self._state.delete_request(c, request.ID))
        return empty_pb2.Empty()

    async def SetAccessRequestState(
        self, request: authservice_pb2.RequestStateSetter, context: Context
    ) -> empty_pb2.Empty:
        """Approve or deny directly (admins)."""
        await _unary(self._guard, "SetAccessRequestState", context, lambda c: self._state.set_state(c, request))
        return empty_pb2.Empty()

    async def SubmitAccessReview(
        self, request: types_pb2.AccessReviewSubmission, context: Context
    ) -> types_pb2.AccessRequestV3:
        """Review a request; returns it after the review is applied."""
        return await _unary(self._guard, "SubmitAccessReview", context, lambda c: self._state.submit_review(c, request))

    async def ListAccessRequests(
        self, request: authservice_pb2.ListAccessRequestsRequest, context: Context
    ) -> authservice_pb2.ListAccessRequestsResponse:
        """One page of requests."""
        items, next_key = await _unary(
            self._guard, "ListAccessRequests", context, lambda c: self._state.list_requests(c, request)
        )
        return authservice_pb2.ListAccessRequestsResponse(AccessRequests=items, NextKey=next_key)

    async def GetAccessRequestsV2(
        self, request: types_pb2.AccessRequestFilter, context: Context
    ) -> AsyncIterator[types_pb2.AccessRequestV3]:
        """Every matching request, streamed."""
        items = await _unary(
            self._guard, "GetAccessRequestsV2", context, lambda c: self._state.get_requests(c, request)
        )
        for item in items:
            yield item

    async def GetRole(self, request: authservice_pb2.GetRoleRequest, context: Context) -> types_pb2.RoleV6:
        """A role with its logins and review conditions (the role fields on our wire)."""

        def body(caller: Caller) -> types_pb2.RoleV6:
            if request.Name not in caller.roles:
                self._state.policy.require(caller, "role", "read")
            role = self._state.policy.role(request.Name)
            out = types_pb2.RoleV6(Kind="role", Version="v7")
            out.Metadata.Name, out.Metadata.Namespace = role.name, "default"
            allow, deny = out.Spec.Allow, out.Spec.Deny
            allow.Logins.extend(role.logins)
            deny.SetInParent()
            if role.review or role.preview_as_roles or role.submit_for_users:
                allow.ReviewRequests.Roles.extend(role.review)
                allow.ReviewRequests.PreviewAsRoles.extend(role.preview_as_roles)
            legacy = self._state.reviews.legacy  # an older Auth has no submit_for_users
            if not legacy:
                allow.ReviewRequests.SubmitForUsers.extend(role.submit_for_users)
                if role.deny_submit_for_users:
                    deny.ReviewRequests.SubmitForUsers.extend(role.deny_submit_for_users)
            return out

        return await _unary(self._guard, "GetRole", context, body)

    async def ListResources(
        self, request: authservice_pb2.ListResourcesRequest, context: Context
    ) -> authservice_pb2.ListResourcesResponse:
        """One page of nodes, apps, databases or Kubernetes clusters the caller may see."""
        page = await _unary(self._guard, "ListResources", context, lambda c: self._state.list_resources(c, request))
        return authservice_pb2.ListResourcesResponse(
            Resources=[resource_to_proto(r) for r in page.resources], NextKey=page.next_key, TotalCount=page.total
        )


class UsersService(users_service_pb2_grpc.UsersServiceServicer):
    """`/teleport.users.v1.UsersService/GetUser` and `ListUsers`."""

    def __init__(self, state: AuthState, guard: CallGuard) -> None:
        self._state = state
        self._guard = guard

    async def GetUser(
        self, request: users_service_pb2.GetUserRequest, context: Context
    ) -> users_service_pb2.GetUserResponse:
        """A user with roles and traits; callers may always read themselves."""

        def body(caller: Caller) -> users_service_pb2.GetUserResponse:
            user = self._state.get_user(
                caller, request.name, current_user=request.current_user, with_secrets=request.with_secrets
            )
            return users_service_pb2.GetUserResponse(user=user)

        return await _unary(self._guard, "GetUser", context, body)

    async def ListUsers(
        self, request: users_service_pb2.ListUsersRequest, context: Context
    ) -> users_service_pb2.ListUsersResponse:
        """One page of users, filtered by search keywords and traits."""
        return await _unary(self._guard, "ListUsers", context, lambda c: self._state.list_users(c, request))


class AccessMonitoringRulesService(amr_service_pb2_grpc.AccessMonitoringRulesServiceServicer):
    """`/teleport.accessmonitoringrules.v1.AccessMonitoringRulesService/*` (all unary)."""

    def __init__(self, state: AuthState, guard: CallGuard) -> None:
        self._rules = state.rules
        self._guard = guard

    async def CreateAccessMonitoringRule(
        self, request: amr_service_pb2.CreateAccessMonitoringRuleRequest, context: Context
    ) -> amr_pb2.AccessMonitoringRule:
        """Store a new rule; returns it with its revision."""
        return await _unary(
            self._guard, "CreateAccessMonitoringRule", context, lambda c: self._rules.create(c, request.rule)
        )

    async def UpdateAccessMonitoringRule(
        self, request: amr_service_pb2.UpdateAccessMonitoringRuleRequest, context: Context
    ) -> amr_pb2.AccessMonitoringRule:
        """Replace an existing rule."""
        return await _unary(
            self._guard, "UpdateAccessMonitoringRule", context, lambda c: self._rules.update(c, request.rule)
        )

    async def UpsertAccessMonitoringRule(
        self, request: amr_service_pb2.UpsertAccessMonitoringRuleRequest, context: Context
    ) -> amr_pb2.AccessMonitoringRule:
        """Create or replace a rule."""
        return await _unary(
            self._guard, "UpsertAccessMonitoringRule", context, lambda c: self._rules.upsert(c, request.rule)
        )

    async def GetAccessMonitoringRule(
        self, request: amr_service_pb2.GetAccessMonitoringRuleRequest, context: Context
    ) -> amr_pb2.AccessMonitoringRule:
        """One rule by name."""
        return await _unary(self._guard, "GetAccessMonitoringRule", context, lambda c: self._rules.get(c, request.name))

    async def DeleteAccessMonitoringRule(
        self, request: amr_service_pb2.DeleteAccessMonitoringRuleRequest, context: Context
    ) -> empty_pb2.Empty:
        """Delete a rule by name."""
        await _unary(self._guard, "DeleteAccessMonitoringRule", context, lambda c: self._rules.delete(c, request.name))
        return empty_pb2.Empty()

    async def ListAccessMonitoringRules(
        self, request: amr_service_pb2.ListAccessMonitoringRulesRequest, context: Context
    ) -> amr_service_pb2.ListAccessMonitoringRulesResponse:
        """One page of every rule, in name order."""
        return await _unary(
            self._guard, "ListAccessMonitoringRules", context, lambda c: self._rules.list_page(c, request)
        )

    async def ListAccessMonitoringRulesWithFilter(
        self, request: amr_service_pb2.ListAccessMonitoringRulesWithFilterRequest, context: Context
    ) -> amr_service_pb2.ListAccessMonitoringRulesWithFilterResponse:
        """One page of the matching rules, in name order."""
        return await _unary(
            self._guard,
            "ListAccessMonitoringRulesWithFilter",
            context,
            lambda c: self._rules.list_filtered_page(c, request),
        )


def _peer_address(peer: str) -> str:
    """`ipv4:127.0.0.1:5000` → `127.0.0.1:5000`; `ipv6:[::1]:5000` → `[::1]:5000`."""
    for prefix in ("ipv4:", "ipv6:"):
        if peer.startswith(prefix):
            return peer[len(prefix) :]
    return peer


def add_services(server: Any, state: AuthState, guard: CallGuard) -> None:
    """Register every servicer on a grpc.aio server."""
    authservice_pb2_grpc.add_AuthServiceServicer_to_server(AuthService(state, guard), server)
    users_service_pb2_grpc.add_UsersServiceServicer_to_server(UsersService(state, guard), server)
    amr_service_pb2_grpc.add_AccessMonitoringRulesServiceServicer_to_server(
        AccessMonitoringRulesService(state, guard), server
    )
