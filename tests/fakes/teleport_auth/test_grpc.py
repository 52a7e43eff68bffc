"""Every RPC of the fake Auth through real grpc.aio mTLS stubs on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from fakes.teleport_auth.ca import ClusterAuthority
from fakes.teleport_auth.seed import parse_seed
from fakes.teleport_auth.server import FakeAuthServer, ServeConfig
from sidecar.teleport.wire import authservice_pb2, event_pb2, types_pb2, users_service_pb2

from .conftest import CLUSTER, Stubs, channel_for

Connect = Callable[..., Stubs]


def new_request(roles: tuple[str, ...] = ("editor",), reason: str = "because of") -> types_pb2.AccessRequestV3:
    req = types_pb2.AccessRequestV3()
    req.Spec.Roles.extend(roles)
    req.Spec.RequestReason = reason
    return req


def submission(request_id: str, state: Any, reason: str = "", author: str = "") -> types_pb2.AccessReviewSubmission:
    sub = types_pb2.AccessReviewSubmission(RequestID=request_id)
    sub.Review.ProposedState = state
    sub.Review.Reason = reason
    sub.Review.Author = author
    return sub


def watch_request(*kinds: str, partial: bool = False, **filters: str) -> authservice_pb2.Watch:
    watch = authservice_pb2.Watch(AllowPartialSuccess=partial)
    for kind in kinds:
        watch.Kinds.add(Kind=kind, Filter=filters)
    return watch


async def expect_code(code: grpc.StatusCode, awaitable: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await awaitable
    assert info.value.code() == code, info.value.details()
    return info.value


async def open_watch(stubs: Stubs, watch: authservice_pb2.Watch) -> tuple[Any, event_pb2.Event]:
    call = stubs.auth.WatchEvents(watch)
    init = await asyncio.wait_for(call.read(), timeout=5)
    return call, init


async def next_event(call: Any) -> event_pb2.Event:
    event = await asyncio.wait_for(call.read(), timeout=5)
    assert isinstance(event, event_pb2.Event)
    return event


async def test_ping_always_sends_features_and_version_header(connect: Connect) -> None:
    call = connect("access-plugin").auth.Ping(authservice_pb2.PingRequest())
    pong = await call
    assert pong.ClusterName == CLUSTER and pong.ServerVersion == "18.0.0"
    assert pong.HasField("ServerFeatures") and not pong.ServerFeatures.AdvancedAccessWorkflows
    assert pong.ProxyPublicAddr == "" and pong.RemoteAddr.startswith("127.0.0.1:")
    assert ("version", "18.0.0") in tuple(await call.initial_metadata())


async def test_enterprise_ping_has_advanced_workflows_and_proxy_addr(tmp_path: Path) -> None:
    config = ServeConfig(
        state_dir=tmp_path,
        listen="127.0.0.1:0",
        proxy_listen="127.0.0.1:0",
        admin_listen="127.0.0.1:0",
        edition="enterprise",
        server_version="18.1.2",
        proxy_public_addr="teleport.example.com:443",
    )
    async with FakeAuthServer(config) as srv:
        channel = channel_for(srv.auth_addr, srv.ca, "admin", ("admin",))
        try:
            pong = await Stubs(channel).auth.Ping(authservice_pb2.PingRequest())
        finally:
            await channel.close()
    assert pong.ServerFeatures.AdvancedAccessWorkflows
    assert pong.ProxyPublicAddr == "teleport.example.com:443" and pong.ServerVersion == "18.1.2"


async def test_old_client_version_header_is_refused(connect: Connect) -> None:
    stubs = connect("access-plugin")
    await expect_code(
        grpc.StatusCode.PERMISSION_DENIED,
        stubs.auth.Ping(authservice_pb2.PingRequest(), metadata=(("version", "15.0.0"),)),
    )
    await stubs.auth.Ping(authservice_pb2.PingRequest(), metadata=(("version", "17.2.0"),))


async def test_watch_init_then_put_review_delete_in_order(connect: Connect) -> None:
    plugin, requester, reviewer, admin = (
        connect(u) for u in ("access-plugin", "requester@example.com", "reviewer@example.com", "admin")
    )
    call, init = await open_watch(plugin, watch_request("access_request", partial=True))
    assert init.Type == event_pb2.INIT and init.WhichOneof("Resource") == "WatchStatus"
    status = init.WatchStatus
    assert (status.Kind, status.Version, status.Metadata.Name, status.Metadata.Namespace) == (
        "watch_status",
        "v1",
        "watch-status",
        "default",
    )
    assert [k.Kind for k in status.Spec.Kinds] == ["access_request"]

    req = new_request()
    req.Spec.SuggestedReviewers.append("reviewer@example.com")
    created = await requester.auth.CreateAccessRequestV2(req)
    rid = created.Metadata.Name
    assert created.Spec.User == "requester@example.com" and created.Kind == "access_request"
    assert created.Spec.Expires.ToDatetime(tzinfo=UTC) > created.Spec.Created.ToDatetime(tzinfo=UTC)

    put = await next_event(call)
    assert put.Type == event_pb2.PUT and put.AccessRequest == created

    reviewed = await reviewer.auth.SubmitAccessReview(submission(rid, types_pb2.APPROVED, "okay"))
    assert reviewed.Spec.State == types_pb2.APPROVED and reviewed.Spec.ResolveReason == "okay"
    assert (await next_event(call)).AccessRequest.Spec.State == types_pb2.APPROVED

    await admin.auth.DeleteAccessRequest(authservice_pb2.RequestID(ID=rid))
    deleted = await next_event(call)
    assert deleted.Type == event_pb2.DELETE and deleted.WhichOneof("Resource") == "ResourceHeader"
    assert deleted.ResourceHeader.Metadata.Name == rid and deleted.ResourceHeader.Kind == "access_request"
    call.cancel()


async def test_watch_many_events_keep_order(connect: Connect) -> None:
    plugin, requester = connect("access-plugin"), connect("requester@example.com")
    call, _ = await open_watch(plugin, watch_request("access_request"))
    created = [
        (await requester.auth.CreateAccessRequestV2(new_request(reason=f"r{i}"))).Metadata.Name for i in range(20)
    ]
    seen = [(await next_event(call)).AccessRequest.Metadata.Name for _ in created]
    assert seen == created
    call.cancel()


async def test_watch_partial_success_and_refusals(connect: Connect) -> None:
    plugin, requester = connect("access-plugin"), connect("requester@example.com")
    call, init = await open_watch(plugin, watch_request("access_request", "access_monitoring_rule", partial=True))
    assert [k.Kind for k in init.WatchStatus.Spec.Kinds] == ["access_request", "access_monitoring_rule"]
    call.cancel()
    # A plugin role without access monitoring rules gets only the requests (the rest: test_access_monitoring_rules).
    base = connect("access-plugin", ("access-plugin-base",))
    call, init = await open_watch(base, watch_request("access_request", "access_monitoring_rule", partial=True))
    assert [k.Kind for k in init.WatchStatus.Spec.Kinds] == ["access_request"]
    call.cancel()

    await expect_code(
        grpc.StatusCode.INVALID_ARGUMENT,
        plugin.auth.WatchEvents(watch_request("access_request", "no_such_kind")).read(),
    )
    await expect_code(
        grpc.StatusCode.PERMISSION_DENIED, requester.auth.WatchEvents(watch_request("access_request")).read()
    )
    await expect_code(
        grpc.StatusCode.PERMISSION_DENIED,
        requester.auth.WatchEvents(watch_request("access_request", partial=True)).read(),
    )
    await expect_code(
        grpc.StatusCode.INVALID_ARGUMENT,
        plugin.auth.WatchEvents(watch_request("access_request", partial=True, kind="x")).read(),
    )
    # Watching one's own requests needs no list/read permission.
    own, init = await open_watch(requester, watch_request("access_request", user="requester@example.com"))
    assert init.Type == event_pb2.INIT
    own.cancel()


async def test_watch_filters(connect: Connect) -> None:
    plugin, requester, myuser, reviewer = (
        connect(u) for u in ("access-plugin", "requester@example.com", "myuser", "reviewer@example.com")
    )
    approved_call, _ = await open_watch(plugin, watch_request("access_request", state="APPROVED"))
    user_call, _ = await open_watch(plugin, watch_request("access_request", user="myuser"))
    await requester.auth.CreateAccessRequestV2(new_request())
    mine = await myuser.auth.CreateAccessRequestV2(new_request())
    id_call, _ = await open_watch(plugin, watch_request("access_request", id=mine.Metadata.Name))
    await reviewer.auth.SubmitAccessReview(submission(mine.Metadata.Name, types_pb2.APPROVED))

    first = await next_event(user_call)
    assert first.AccessRequest.Spec.User == "myuser" and first.AccessRequest.Spec.State == types_pb2.PENDING
    assert (await next_event(user_call)).AccessRequest.Spec.State == types_pb2.APPROVED
    only = await next_event(approved_call)
    assert only.AccessRequest.Metadata.Name == mine.Metadata.Name
    assert (await next_event(id_call)).AccessRequest.Spec.State == types_pb2.APPROVED
    for call in (approved_call, user_call, id_call):
        call.cancel()


async def test_create_and_review_refusals(connect: Connect) -> None:
    requester, reviewer, myuser = (connect(u) for u in ("requester@example.com", "reviewer@example.com", "myuser"))
    await expect_code(grpc.StatusCode.PERMISSION_DENIED, reviewer.auth.CreateAccessRequestV2(new_request()))
    await expect_code(grpc.StatusCode.PERMISSION_DENIED, requester.auth.CreateAccessRequestV2(new_request(("admin",))))
    rid = (await requester.auth.CreateAccessRequestV2(new_request())).Metadata.Name
    await expect_code(
        grpc.StatusCode.PERMISSION_DENIED, myuser.auth.SubmitAccessReview(submission(rid, types_pb2.APPROVED))
    )
    await expect_code(
        grpc.StatusCode.PERMISSION_DENIED,
        reviewer.auth.SubmitAccessReview(submission(rid, types_pb2.APPROVED, author="reviewer2@example.com")),
    )
    await expect_code(
        grpc.StatusCode.INVALID_ARGUMENT, reviewer.auth.SubmitAccessReview(submission(rid, types_pb2.PROMOTED))
    )
    await expect_code(
        grpc.StatusCode.NOT_FOUND, reviewer.auth.SubmitAccessReview(submission("nope", types_pb2.APPROVED))
    )
    denied = await reviewer.auth.SubmitAccessReview(submission(rid, types_pb2.DENIED, "not okay"))
    assert denied.Spec.State == types_pb2.DENIED and denied.Spec.ResolveReason == "not okay"
    refused = await expect_code(
        grpc.StatusCode.PERMISSION_DENIED,
        connect("reviewer2@example.com").auth.SubmitAccessReview(submission(rid, types_pb2.APPROVED)),
    )
    assert refused.details() == "the access request has been already denied"


async def test_set_state_and_delete_need_admin(connect: Connect) -> None:
    requester, plugin, admin = (connect(u) for u in ("requester@example.com", "access-plugin", "admin"))
    rid = (await requester.auth.CreateAccessRequestV2(new_request())).Metadata.Name
    setter = authservice_pb2.RequestStateSetter(ID=rid, State=types_pb2.APPROVED, Reason="okay")
    await expect_code(grpc.StatusCode.PERMISSION_DENIED, plugin.auth.SetAccessRequestState(setter))
    await expect_code(
        grpc.StatusCode.PERMISSION_DENIED, plugin.auth.DeleteAccessRequest(authservice_pb2.RequestID(ID=rid))
    )
    await admin.auth.SetAccessRequestState(setter)
    [got] = (
        await plugin.auth.ListAccessRequests(
            authservice_pb2.ListAccessRequestsRequest(Filter=types_pb2.AccessRequestFilter(ID=rid))
        )
    ).AccessRequests
    assert got.Spec.State == types_pb2.APPROVED and got.Spec.ResolveReason == "okay"
    own = (await admin.auth.CreateAccessRequestV2(new_request())).Metadata.Name
    await expect_code(
        grpc.StatusCode.PERMISSION_DENIED,
        admin.auth.SetAccessRequestState(authservice_pb2.RequestStateSetter(ID=own, State=types_pb2.APPROVED)),
    )
    await admin.auth.DeleteAccessRequest(authservice_pb2.RequestID(ID=rid))
    await expect_code(grpc.StatusCode.NOT_FOUND, admin.auth.DeleteAccessRequest(authservice_pb2.RequestID(ID=rid)))


async def test_plugin_data_rpcs(connect: Connect) -> None:
    requester, plugin, reviewer = (
        connect(u) for u in ("requester@example.com", "access-plugin", "reviewer@example.com")
    )
    rid = (await requester.auth.CreateAccessRequestV2(new_request())).Metadata.Name
    flt = types_pb2.PluginDataFilter(Kind="access_request", Resource=rid, Plugin="mattermost")
    assert list((await plugin.auth.GetPluginData(flt)).PluginData) == []

    def params(set_: dict[str, str], expect: dict[str, str], resource: str = rid, kind: str = "access_request") -> Any:
        return types_pb2.PluginDataUpdateParams(
            Kind=kind, Resource=resource, Plugin="mattermost", Set=set_, Expect=expect
        )

    await plugin.auth.UpdatePluginData(params({"user": "requester@example.com", "messages": "c/p"}, {"user": ""}))
    [data] = (await plugin.auth.GetPluginData(flt)).PluginData
    assert dict(data.Spec.Entries["mattermost"].Data) == {"user": "requester@example.com", "messages": "c/p"}
    await expect_code(
        grpc.StatusCode.FAILED_PRECONDITION, plugin.auth.UpdatePluginData(params({"a": "b"}, {"user": "x"}))
    )
    await expect_code(grpc.StatusCode.NOT_FOUND, plugin.auth.UpdatePluginData(params({"a": "b"}, {}, resource="nope")))
    await expect_code(
        grpc.StatusCode.INVALID_ARGUMENT, plugin.auth.UpdatePluginData(params({"a": "b"}, {}, kind="node"))
    )
    await expect_code(
        grpc.StatusCode.INVALID_ARGUMENT,
        plugin.auth.GetPluginData(types_pb2.PluginDataFilter(Kind="node", Resource=rid)),
    )
    await expect_code(grpc.StatusCode.PERMISSION_DENIED, reviewer.auth.UpdatePluginData(params({"a": "b"}, {})))
    await expect_code(grpc.StatusCode.PERMISSION_DENIED, requester.auth.GetPluginData(flt))


async def test_list_pagination_and_stream(connect: Connect) -> None:
    requester, plugin, myuser = (connect(u) for u in ("requester@example.com", "access-plugin", "myuser"))
    ids = {(await requester.auth.CreateAccessRequestV2(new_request())).Metadata.Name for _ in range(5)}
    seen: list[str] = []
    key = ""
    while True:
        page = await plugin.auth.ListAccessRequests(authservice_pb2.ListAccessRequestsRequest(Limit=2, StartKey=key))
        assert len(page.AccessRequests) <= 2
        seen.extend(r.Metadata.Name for r in page.AccessRequests)
        key = page.NextKey
        if not key:
            break
    assert sorted(seen) == sorted(ids)
    streamed = [r.Metadata.Name async for r in plugin.auth.GetAccessRequestsV2(types_pb2.AccessRequestFilter())]
    assert set(streamed) == ids
    assert [r async for r in myuser.auth.GetAccessRequestsV2(types_pb2.AccessRequestFilter())] == []
    by_state = plugin.auth.GetAccessRequestsV2(types_pb2.AccessRequestFilter(State=types_pb2.APPROVED))
    assert [r async for r in by_state] == []


async def test_get_role_and_user(connect: Connect) -> None:
    plugin, requester = connect("access-plugin"), connect("requester@example.com")
    role = await plugin.auth.GetRole(authservice_pb2.GetRoleRequest(Name="editor"))
    assert role.Kind == "role" and role.Metadata.Name == "editor" and list(role.Spec.Allow.Logins) == ["root", "ubuntu"]
    await expect_code(grpc.StatusCode.NOT_FOUND, plugin.auth.GetRole(authservice_pb2.GetRoleRequest(Name="nope")))
    await expect_code(
        grpc.StatusCode.PERMISSION_DENIED, requester.auth.GetRole(authservice_pb2.GetRoleRequest(Name="editor"))
    )
    assert (await requester.auth.GetRole(authservice_pb2.GetRoleRequest(Name="editor-requester"))).Metadata.Name

    user = (await plugin.users.GetUser(users_service_pb2.GetUserRequest(name="myuser"))).user
    assert user.Kind == "user" and list(user.Spec.Roles) == ["editor-requester"]
    assert list(user.Spec.Traits.Values["logins"].Values) == ["myuser"]
    me = (await requester.users.GetUser(users_service_pb2.GetUserRequest(current_user=True))).user
    assert me.Metadata.Name == "requester@example.com"
    await expect_code(
        grpc.StatusCode.PERMISSION_DENIED, requester.users.GetUser(users_service_pb2.GetUserRequest(name="myuser"))
    )
    await expect_code(grpc.StatusCode.NOT_FOUND, plugin.users.GetUser(users_service_pb2.GetUserRequest(name="ghost")))


async def test_foreign_and_missing_client_certificates_are_refused(server: FakeAuthServer, tmp_path: Path) -> None:
    other = ClusterAuthority.load_or_create(tmp_path / "other", "other.example.com")
    # A cert from another cluster's CA fails the TLS handshake (the server verifies against its User CA).
    foreign = channel_for(server.auth_addr, other, "admin", ("admin",), root=server.ca.host_ca_pem)
    no_cert = grpc.aio.secure_channel(
        server.auth_addr,
        grpc.ssl_channel_credentials(root_certificates=server.ca.host_ca_pem),
        options=(("grpc.ssl_target_name_override", "teleport.cluster.local"),),
    )
    try:
        for channel in (foreign, no_cert):
            await expect_code(
                grpc.StatusCode.UNAVAILABLE, Stubs(channel).auth.Ping(authservice_pb2.PingRequest(), timeout=5)
            )
    finally:
        await foreign.close()
        await no_cert.close()


async def test_expired_client_certificate_is_refused(server: FakeAuthServer) -> None:
    expired = server.ca.issue_user(
        "access-plugin", ("access-plugin",), timedelta(minutes=1), now=datetime.now(UTC) - timedelta(hours=2)
    )
    creds = grpc.ssl_channel_credentials(
        root_certificates=server.ca.host_ca_pem, private_key=expired.key_pem, certificate_chain=expired.tls_cert_pem
    )
    channel = grpc.aio.secure_channel(
        server.auth_addr, creds, options=(("grpc.ssl_target_name_override", "teleport.cluster.local"),)
    )
    try:
        await expect_code(
            grpc.StatusCode.UNAVAILABLE, Stubs(channel).auth.Ping(authservice_pb2.PingRequest(), timeout=5)
        )
    finally:
        await channel.close()


async def test_expire_now_sends_delete_and_keeps_plugin_data(server: FakeAuthServer, connect: Connect) -> None:
    plugin, requester = connect("access-plugin"), connect("requester@example.com")
    call, _ = await open_watch(plugin, watch_request("access_request"))
    rid = (await requester.auth.CreateAccessRequestV2(new_request())).Metadata.Name
    await next_event(call)
    await plugin.auth.UpdatePluginData(
        types_pb2.PluginDataUpdateParams(Kind="access_request", Resource=rid, Plugin="mattermost", Set={"k": "v"})
    )
    async with aiohttp.ClientSession(f"http://{server.admin_addr}") as http:
        async with http.post(f"/requests/{rid}/expire") as resp:
            assert resp.status == 200
        async with http.post("/requests/nope/expire") as resp:
            assert resp.status == 404
        async with http.get(f"/plugin-data/{rid}") as resp:
            [record] = await resp.json()
            assert record["Spec"]["Entries"]["mattermost"]["Data"] == {"k": "v"}
    event = await next_event(call)
    assert event.Type == event_pb2.DELETE and event.ResourceHeader.Metadata.Name == rid
    flt = types_pb2.PluginDataFilter(Kind="access_request", Resource=rid, Plugin="mattermost")
    assert len((await plugin.auth.GetPluginData(flt)).PluginData) == 1
    call.cancel()


async def test_request_ttl_expiry_runs_in_background(tmp_path: Path) -> None:
    seed = parse_seed(
        '[settings]\nrequest_ttl = 1\n[roles.editor]\n[roles.req]\nrequest = ["editor"]\n'
        '[roles.plugin]\nrules = [{ resources = ["access_request"], verbs = ["list", "read"] }]\n'
        "[users.r]\nroles = ['req']\n[users.p]\nroles = ['plugin']\n",
        "test",
    )
    config = ServeConfig(
        state_dir=tmp_path, listen="127.0.0.1:0", proxy_listen="127.0.0.1:0", admin_listen="127.0.0.1:0", seed_obj=seed
    )
    async with FakeAuthServer(config) as srv:
        plugin = channel_for(srv.auth_addr, srv.ca, "p", ("plugin",))
        requester = channel_for(srv.auth_addr, srv.ca, "r", ("req",))
        try:
            call, _ = await open_watch(Stubs(plugin), watch_request("access_request"))
            created = await Stubs(requester).auth.CreateAccessRequestV2(new_request())
            assert created.Metadata.Expires.ToDatetime(tzinfo=UTC) - created.Spec.Created.ToDatetime(
                tzinfo=UTC
            ) == timedelta(seconds=1)
            assert (await next_event(call)).Type == event_pb2.PUT
            deleted = await next_event(call)
            assert deleted.Type == event_pb2.DELETE and deleted.ResourceHeader.Metadata.Name == created.Metadata.Name
            call.cancel()
        finally:
            await plugin.close()
            await requester.close()


async def test_admin_faults(server: FakeAuthServer, connect: Connect) -> None:
    plugin = connect("access-plugin")
    async with aiohttp.ClientSession(f"http://{server.admin_addr}") as http:
        call, _ = await open_watch(plugin, watch_request("access_request"))
        async with http.get("/watchers") as resp:
            assert (await resp.json())["count"] == 1
        async with http.post("/faults/drop-watchers") as resp:
            assert (await resp.json())["dropped"] == 1
        await expect_code(grpc.StatusCode.UNAVAILABLE, call.read())

        body = {"method": "GetPluginData", "count": 2, "code": "RESOURCE_EXHAUSTED"}
        async with http.post("/faults/fail", json=body) as resp:
            assert resp.status == 200
        flt = types_pb2.PluginDataFilter(Kind="access_request", Resource="x")
        for _ in range(2):
            await expect_code(grpc.StatusCode.RESOURCE_EXHAUSTED, plugin.auth.GetPluginData(flt))
        assert list((await plugin.auth.GetPluginData(flt)).PluginData) == []

        async with http.post("/faults/refuse", json={"seconds": 60}) as resp:
            assert resp.status == 200
        await expect_code(grpc.StatusCode.UNAVAILABLE, plugin.auth.Ping(authservice_pb2.PingRequest()))
        await expect_code(grpc.StatusCode.UNAVAILABLE, plugin.auth.WatchEvents(watch_request("access_request")).read())
        async with http.post("/faults/clear") as resp:
            assert (await resp.json())["refusing"] is False
        await plugin.auth.Ping(authservice_pb2.PingRequest())

        async with http.post("/faults/latency", json={"seconds": 0.01, "method": "Ping"}) as resp:
            assert (await resp.json())["latency"] == {"Ping": 0.01}
        await plugin.auth.Ping(authservice_pb2.PingRequest())

        for bad in ({"code": "NOPE"}, {"count": -1}, {"count": 0}, {"code": "OK"}):
            async with http.post("/faults/fail", json=bad) as resp:
                assert resp.status == 400
        async with http.post("/faults/refuse", data="not json") as resp:
            assert resp.status == 400
        async with http.get("/health") as resp:
            assert (await resp.json()) == {"status": "ok", "cluster_name": CLUSTER}
        async with http.get("/state") as resp:
            state = await resp.json()
            assert set(state) == {"requests", "plugin_data", "access_monitoring_rules", "watchers", "faults"}


async def test_keepalive_enforcement_rejects_aggressive_pings(server: FakeAuthServer) -> None:
    # Teleport's Auth enforces a 1 min minimum ping interval; a client pinging every 100 ms is sent GOAWAY.
    ident = server.ca.issue_user("access-plugin", ("access-plugin",), timedelta(hours=1))
    creds = grpc.ssl_channel_credentials(
        root_certificates=server.ca.host_ca_pem, private_key=ident.key_pem, certificate_chain=ident.tls_cert_pem
    )
    options = (
        ("grpc.ssl_target_name_override", "teleport.cluster.local"),
        ("grpc.keepalive_time_ms", 100),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_ping_interval_without_data_ms", 100),
    )
    channel = grpc.aio.secure_channel(server.auth_addr, creds, options=options)
    try:
        call, _ = await open_watch(Stubs(channel), watch_request("access_request"))
        error = await expect_code(grpc.StatusCode.UNAVAILABLE, asyncio.wait_for(call.read(), timeout=8))
        assert "ping" in (error.details() or "").lower()
    finally:
        await channel.close()


async def test_stopping_the_server_ends_active_watch_streams(tmp_path: Path) -> None:
    config = ServeConfig(
        state_dir=tmp_path, listen="127.0.0.1:0", proxy_listen="127.0.0.1:0", admin_listen="127.0.0.1:0"
    )
    srv = FakeAuthServer(config)
    channel = None
    try:
        async with srv:
            channel = channel_for(srv.auth_addr, srv.ca, "access-plugin", ("access-plugin",))
            call, _ = await open_watch(Stubs(channel), watch_request("access_request"))
            assert srv.state.fanout.count == 1
        await expect_code(grpc.StatusCode.UNAVAILABLE, asyncio.wait_for(call.read(), timeout=5))
        assert srv.state.fanout.count == 0
    finally:
        if channel is not None:
            await channel.close()
