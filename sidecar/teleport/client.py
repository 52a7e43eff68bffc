"""Typed async wrappers for the Teleport Auth RPCs the sidecar uses.

This module is the one place where gRPC status codes become `sidecar.domain.errors` classes:

    NOT_FOUND            → NotFound            ALREADY_EXISTS       → AlreadyExists
    PERMISSION_DENIED    → AccessDenied        FAILED_PRECONDITION  → CompareFailed
    INVALID_ARGUMENT     → Rejected            UNAUTHENTICATED      → Unauthorized
    UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, CANCELLED, INTERNAL → TransientError
    UNIMPLEMENTED        → Unimplemented (a PermanentError: the server is too old or lacks the feature)
    anything else (UNKNOWN, OUT_OF_RANGE, DATA_LOSS, ...) → PermanentError

INTERNAL counts as transient because grpc reports broken HTTP/2 connections (RST_STREAM and the like) with it.
Calls carry no metadata (no `version` header) and unary calls have a deadline of `timeout` seconds.

Also here: the engine port adapters `TeleportPluginData` (PluginDataStore), `TeleportRoles` (RoleLookup),
`TeleportRules` (RuleSource) and `TeleportTraits` (TraitsLookup). The RPCs only the test harness makes (creating,
reviewing, resolving and deleting requests, writing rules) live in `fakes/teleport_harness.py`, built on
`TeleportClient.unary`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import grpc

from sidecar.domain.errors import (
    AccessDenied,
    AlreadyExists,
    CompareFailed,
    ConversionError,
    NotFound,
    PermanentError,
    Rejected,
    SidecarError,
    TransientError,
    Unauthorized,
    Unimplemented,
)
from sidecar.domain.model import MonitoringRule
from sidecar.teleport.convert import (
    KIND_ACCESS_REQUEST,
    monitoring_rule_from_proto,
    user_traits_from_proto,
)
from sidecar.teleport.identity import Identity
from sidecar.teleport.transport import ChannelProvider, IdentitySource, OpenChannel, TransportKind
from sidecar.teleport.wire import (
    access_monitoring_rules_pb2,
    access_monitoring_rules_service_pb2,
    access_monitoring_rules_service_pb2_grpc,
    authservice_pb2,
    event_pb2,
    types_pb2,
    users_service_pb2,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0  # Teleport's DefaultIOTimeout
LIST_PAGE_SIZE = 500
RULE_PAGE_SIZE = 1000  # the Go plugin's defaultAccessMonitoringRulePageSize


_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.INTERNAL,
}
_BY_CODE: dict[Any, Callable[[str], SidecarError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.PERMISSION_DENIED: AccessDenied,
    grpc.StatusCode.FAILED_PRECONDITION: CompareFailed,
    grpc.StatusCode.INVALID_ARGUMENT: Rejected,
    grpc.StatusCode.UNAUTHENTICATED: Unauthorized,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
}


def map_rpc_error(error: grpc.RpcError, operation: str) -> SidecarError:
    """The sidecar error for a failed RPC; the message names the operation, the status code and the details."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = (error.details() if hasattr(error, "details") else "") or ""
    message = f"{operation}: {code.name}: {details}" if details else f"{operation}: {code.name}"
    if code in _TRANSIENT:
        return TransientError(message)
    return _BY_CODE.get(code, PermanentError)(message)


class TeleportClient:
    """The Teleport Auth API over a ChannelProvider (which handles the transport and identity reloads)."""

    def __init__(self, provider: ChannelProvider, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._provider = provider
        self._timeout = timeout

    @classmethod
    async def connect(
        cls,
        addr: str,
        *,
        identity_file: Path | str | None = None,
        key_pair: tuple[Path | str, Path | str, Path | str] | None = None,
        refresh: bool = False,
        refresh_interval: float = 60.0,
        transport: TransportKind = TransportKind.AUTO,
        timeout: float = DEFAULT_TIMEOUT,
        close_grace: float = 30.0,
        probe_timeout: float = 5.0,
    ) -> TeleportClient:
        """Load the identity (an identity file, or `key_pair` = (key, certificate, CAs)) and open a channel.

        Raises IdentityError when the identity is unusable and ConfigError for a malformed address. No RPC is made:
        call `ping()` to check the connection.
        """
        source = IdentitySource(identity_file=identity_file, key_pair=key_pair)
        provider = await ChannelProvider.open(
            addr,
            source,
            transport,
            refresh=refresh,
            refresh_interval=refresh_interval,
            close_grace=close_grace,
            probe_timeout=probe_timeout,
        )
        return cls(provider, timeout=timeout)

    async def __aenter__(self) -> TeleportClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every channel, cancelling calls in flight."""
        await self._provider.close()

    @property
    def identity(self) -> Identity:
        """The identity new calls use."""
        return self._provider.identity

    @property
    def provider(self) -> ChannelProvider:
        """The channel provider (transport kind, reload state)."""
        return self._provider

    @property
    def timeout(self) -> float:
        """The deadline, in seconds, of each unary call."""
        return self._timeout

    async def unary(self, operation: str, call: Callable[[OpenChannel], Awaitable[T]]) -> T:
        """Run `call` on a leased channel; a failed status becomes the sidecar error `map_rpc_error` gives.

        The one hook for RPCs not wrapped here (the test harness's, in fakes/teleport_harness.py): `call` makes
        one call on the channel's `auth` or `users` stub, with `timeout=self.timeout`. `operation` names the RPC
        in error messages.
        """
        async with self._provider.lease() as channel:
            try:
                return await call(channel)
            except grpc.RpcError as exc:
                raise map_rpc_error(exc, operation) from exc

    async def ping(self) -> authservice_pb2.PingResponse:
        """Ping: cluster name, server version and features."""
        return await self.unary(
            "Ping", lambda ch: ch.auth.Ping(authservice_pb2.PingRequest(), timeout=self._timeout)
        )

    async def watch_events(
        self,
        kinds: Sequence[str] = (KIND_ACCESS_REQUEST,),
        *,
        filters: Mapping[str, Mapping[str, str]] | None = None,
        allow_partial_success: bool = True,
    ) -> AsyncGenerator[event_pb2.Event, None]:
        """Stream watch events for `kinds` (the first is INIT). `filters` maps a kind to its filter.

        The stream keeps the channel it started on, even across identity reloads, until it ends or is closed.
        Errors are raised as sidecar errors; a server that ends the stream ends the iteration.
        """
        filters = filters or {}
        watch = authservice_pb2.Watch(
            Kinds=[types_pb2.WatchKind(Kind=k, Filter=dict(filters.get(k, {}))) for k in kinds],
            AllowPartialSuccess=allow_partial_success,
        )
        async with self._provider.lease() as channel:
            call = channel.auth.WatchEvents(watch)
            try:
                async for event in call:
                    yield event
            except grpc.RpcError as exc:
                raise map_rpc_error(exc, "WatchEvents") from exc
            finally:
                call.cancel()

    async def get_plugin_data(
        self, resource: str, plugin: str, kind: str = KIND_ACCESS_REQUEST
    ) -> list[types_pb2.PluginDataV3]:
        """GetPluginData for one resource and plugin (an empty list when nothing is stored)."""
        request = types_pb2.PluginDataFilter(Kind=kind, Resource=resource, Plugin=plugin)
        seq = await self.unary("GetPluginData", lambda ch: ch.auth.GetPluginData(request, timeout=self._timeout))
        return list(seq.PluginData)

    async def update_plugin_data(
        self,
        resource: str,
        plugin: str,
        set_: Mapping[str, str],
        expect: Mapping[str, str],
        kind: str = KIND_ACCESS_REQUEST,
    ) -> None:
        """UpdatePluginData (compare-and-swap).

        Raises CompareFailed on an expect mismatch and NotFound for an unknown resource.
        """
        request = types_pb2.PluginDataUpdateParams(
            Kind=kind, Resource=resource, Plugin=plugin, Set=dict(set_), Expect=dict(expect)
        )
        await self.unary("UpdatePluginData", lambda ch: ch.auth.UpdatePluginData(request, timeout=self._timeout))

    async def list_access_requests(
        self,
        request_filter: types_pb2.AccessRequestFilter | None = None,
        *,
        page_size: int = LIST_PAGE_SIZE,
    ) -> list[types_pb2.AccessRequestV3]:
        """Every matching request in one list (the harness's `tctl requests ls|get`, fakes/tctl.py).

        Collects `access_request_pages`; the reconcile reads the pages one at a time instead.
        """
        return [r async for page in self.access_request_pages(request_filter, page_size=page_size) for r in page]

    async def access_request_pages(
        self,
        request_filter: types_pb2.AccessRequestFilter | None = None,
        *,
        page_size: int = LIST_PAGE_SIZE,
    ) -> AsyncGenerator[list[types_pb2.AccessRequestV3], None]:
        """Every matching request, a page at a time: ListAccessRequests, or GetAccessRequestsV2 on older servers.

        The one implementation of the paging. Only one page is held at a time, so a consumer that handles each
        page before asking for the next keeps memory bounded whatever the number of requests. GetAccessRequestsV2
        (servers without ListAccessRequests) has no paging and one deadline for its whole stream, so it is read
        whole and handed out in pages of `page_size`. Raises PermanentError when the server repeats a page key.
        """
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        request_filter = request_filter or types_pb2.AccessRequestFilter()
        start_key = ""
        seen_keys: set[str] = set()
        while True:
            page_request = authservice_pb2.ListAccessRequestsRequest(
                Filter=request_filter, Limit=page_size, StartKey=start_key
            )
            try:
                page = await self._list_page(page_request)
            except Unimplemented:
                if start_key:
                    raise
                break
            if page.AccessRequests:
                yield list(page.AccessRequests)
            if not page.NextKey:
                return
            if page.NextKey in seen_keys:
                raise PermanentError(f"ListAccessRequests: the server repeated page key {page.NextKey!r}")
            seen_keys.add(page.NextKey)
            start_key = page.NextKey
        log.debug("ListAccessRequests is not implemented; falling back to GetAccessRequestsV2")
        everything = await self.get_access_requests_v2(request_filter)
        for start in range(0, len(everything), page_size):
            yield everything[start : start + page_size]

    async def _list_page(
        self, request: authservice_pb2.ListAccessRequestsRequest
    ) -> authservice_pb2.ListAccessRequestsResponse:
        return await self.unary(
            "ListAccessRequests", lambda ch: ch.auth.ListAccessRequests(request, timeout=self._timeout)
        )

    async def get_access_requests_v2(
        self, request_filter: types_pb2.AccessRequestFilter | None = None
    ) -> list[types_pb2.AccessRequestV3]:
        """GetAccessRequestsV2 (server-streaming), collected into a list."""
        request_filter = request_filter or types_pb2.AccessRequestFilter()

        async def collect(channel: OpenChannel) -> list[types_pb2.AccessRequestV3]:
            return [r async for r in channel.auth.GetAccessRequestsV2(request_filter, timeout=self._timeout)]

        return await self.unary("GetAccessRequestsV2", collect)

    async def get_role(self, name: str) -> types_pb2.RoleV6:
        """GetRole."""
        request = authservice_pb2.GetRoleRequest(Name=name)
        return await self.unary("GetRole", lambda ch: ch.auth.GetRole(request, timeout=self._timeout))

    async def get_user(self, name: str) -> types_pb2.UserV2:
        """GetUser through `teleport.users.v1.UsersService`, without secrets (the v18 Go client's call)."""
        request = users_service_pb2.GetUserRequest(name=name)
        response: users_service_pb2.GetUserResponse = await self.unary(
            "GetUser", lambda ch: ch.users.GetUser(request, timeout=self._timeout)
        )
        return response.user

    async def list_access_monitoring_rules(
        self,
        *,
        subjects: Sequence[str] = (),
        notification_name: str = "",
        page_size: int = RULE_PAGE_SIZE,
    ) -> list[access_monitoring_rules_pb2.AccessMonitoringRule]:
        """ListAccessMonitoringRulesWithFilter, every page (the token is the name of the first rule not returned).

        Raises PermanentError when the server repeats a page token.
        """
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        rules: list[access_monitoring_rules_pb2.AccessMonitoringRule] = []
        token = ""
        seen: set[str] = set()
        while True:
            request = access_monitoring_rules_service_pb2.ListAccessMonitoringRulesWithFilterRequest(
                page_size=page_size, page_token=token, subjects=list(subjects), notification_name=notification_name
            )
            page = await self._rules_page(request)
            rules.extend(page.rules)
            if not page.next_page_token:
                return rules
            if page.next_page_token in seen:
                raise PermanentError(
                    f"ListAccessMonitoringRulesWithFilter: the server repeated page token {page.next_page_token!r}"
                )
            seen.add(page.next_page_token)
            token = page.next_page_token

    async def _rules_page(
        self, request: access_monitoring_rules_service_pb2.ListAccessMonitoringRulesWithFilterRequest
    ) -> access_monitoring_rules_service_pb2.ListAccessMonitoringRulesWithFilterResponse:
        return await self.unary(
            "ListAccessMonitoringRulesWithFilter",
            lambda ch: _rules_stub(ch).ListAccessMonitoringRulesWithFilter(request, timeout=self._timeout),
        )


def _rules_stub(channel: OpenChannel) -> Any:
    # Built per call: the rules are listed only at start-up and after a reconnect.
    return access_monitoring_rules_service_pb2_grpc.AccessMonitoringRulesServiceStub(channel.channel)


class TeleportPluginData:
    """PluginDataStore over TeleportClient, for one plugin name and kind `access_request`."""

    def __init__(self, client: TeleportClient, plugin: str) -> None:
        self._client = client
        self._plugin = plugin

    async def get(self, request_id: str) -> dict[str, str] | None:
        """The plugin's entry for the request, or None when nothing is stored."""
        for item in await self._client.get_plugin_data(request_id, self._plugin):
            entry = item.Spec.Entries.get(self._plugin)
            if entry is not None:
                return dict(entry.Data)
        return None

    async def update(self, request_id: str, set_: Mapping[str, str], expect: Mapping[str, str]) -> None:
        """Compare-and-swap write. Raises CompareFailed on an expect mismatch, NotFound for an unknown request."""
        await self._client.update_plugin_data(request_id, self._plugin, set_, expect)


ROLE_CACHE_TTL = 30.0  # seconds an answer about a role is reused
ROLE_CACHE_ENTRIES = 1024


class RoleReader(Protocol):
    """What TeleportRoles needs of the client (TeleportClient; a counting fake in tests)."""

    async def get_role(self, name: str) -> types_pb2.RoleV6:
        """GetRole."""
        ...


@dataclass(frozen=True)
class _Refused:
    """A kept AccessDenied/NotFound: its class and message, so each caller gets a fresh exception."""

    kind: type[AccessDenied] | type[NotFound]
    message: str


class TeleportRoles:
    """RoleLookup over TeleportClient, with a short cache and at most one GetRole in flight per role.

    The engine asks once per role for every pending request, so a burst of requests for the same roles would
    cost a GetRole each. An answer is reused for `ttl` seconds (on `clock`): the logins, and also AccessDenied
    and NotFound, since a missing role.read permission or role stays missing for a while and asking again for
    every request only adds load. Other errors, transient ones above all, are never kept. Concurrent lookups of
    a role share one call, which a caller giving up (its event deadline) does not cancel for the others.
    """

    def __init__(
        self,
        client: RoleReader,
        *,
        ttl: float = ROLE_CACHE_TTL,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = ROLE_CACHE_ENTRIES,
    ) -> None:
        if not ttl >= 0:
            raise ValueError(f"role cache ttl must be >= 0 seconds, got {ttl}")
        if max_entries < 1:
            raise ValueError(f"role cache max_entries must be >= 1, got {max_entries}")
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._kept: dict[str, tuple[float, list[str] | _Refused]] = {}  # role -> (expiry, answer), oldest first
        self._flights: dict[str, asyncio.Task[list[str]]] = {}

    async def role_logins(self, role: str) -> list[str]:
        """Allowed logins of a role. Raises AccessDenied when the plugin may not read roles, NotFound without it."""
        kept = self._kept.get(role)
        if kept is not None and kept[0] > self._clock():
            answer = kept[1]
            if isinstance(answer, _Refused):
                raise answer.kind(answer.message)
            return list(answer)
        flight = self._flights.get(role)
        if flight is None or flight.done():
            flight = asyncio.create_task(self._lookup(role), name=f"GetRole {role}")
            self._flights[role] = flight
            flight.add_done_callback(functools.partial(self._landed, role))
        return list(await asyncio.shield(flight))

    async def _lookup(self, role: str) -> list[str]:
        try:
            found = await self._client.get_role(role)
        except (AccessDenied, NotFound) as exc:
            self._keep(role, _Refused(type(exc), str(exc)))
            raise
        logins = list(found.Spec.Allow.Logins)
        self._keep(role, logins)
        return logins

    def _keep(self, role: str, answer: list[str] | _Refused) -> None:
        if self._ttl <= 0:
            return
        self._kept.pop(role, None)
        self._kept[role] = (self._clock() + self._ttl, answer)
        while len(self._kept) > self._max_entries:
            del self._kept[next(iter(self._kept))]

    def _landed(self, role: str, flight: asyncio.Task[list[str]]) -> None:
        if self._flights.get(role) is flight:
            del self._flights[role]
        if not flight.cancelled():
            flight.exception()  # retrieved: a flight every caller gave up on must not be logged as unhandled


class RuleReader(Protocol):
    """What TeleportRules needs of the client (TeleportClient; a fake in tests)."""

    async def list_access_monitoring_rules(
        self, *, subjects: Sequence[str] = (), notification_name: str = "", page_size: int = RULE_PAGE_SIZE
    ) -> list[access_monitoring_rules_pb2.AccessMonitoringRule]:
        """ListAccessMonitoringRulesWithFilter, every page."""
        ...


class TeleportRules:
    """RuleSource over TeleportClient: the rules for `access_request` and this plugin's notification name.

    A listed rule that cannot be converted (another kind, no name) is skipped with a warning naming it, as the
    Go plugin's cache skips what it cannot use; the listing itself failing raises.
    """

    def __init__(self, client: RuleReader, plugin: str) -> None:
        self._client = client
        self._plugin = plugin

    async def list_rules(self) -> list[MonitoringRule]:
        """Every rule the server returns for subject `access_request` and notification name `plugin`."""
        listed = await self._client.list_access_monitoring_rules(
            subjects=[KIND_ACCESS_REQUEST], notification_name=self._plugin
        )
        rules: list[MonitoringRule] = []
        for message in listed:
            try:
                rules.append(monitoring_rule_from_proto(message))
            except ConversionError as exc:
                log.warning("Skipping an unusable access monitoring rule",
                            extra={"rule": message.metadata.name, "error": str(exc)})
        return rules


class UserReader(Protocol):
    """What TeleportTraits needs of the client."""

    async def get_user(self, name: str) -> types_pb2.UserV2:
        """GetUser."""
        ...


class TeleportTraits:
    """TraitsLookup over TeleportClient (GetUser, asked afresh for every new request: traits change)."""

    def __init__(self, client: UserReader) -> None:
        self._client = client

    async def user_traits(self, user: str) -> dict[str, tuple[str, ...]]:
        """The user's traits. Raises AccessDenied without `user: read`, NotFound for an unknown user."""
        return user_traits_from_proto(await self._client.get_user(user))
