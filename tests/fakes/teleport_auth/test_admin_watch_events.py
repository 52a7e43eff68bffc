"""The per-request count of watch events handed to streams (GET /watch-events/{id}), which e2e barriers rely on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import grpc
import pytest

from fakes.teleport_auth.server import FakeAuthServer
from fakes.teleport_auth.watch import Fanout, RequestFilter
from sidecar.teleport.wire import authservice_pb2, event_pb2, types_pb2

from .conftest import Stubs
from .test_grpc import new_request, next_event, open_watch, submission, watch_request

Connect = Callable[..., Stubs]


async def emitted(http: aiohttp.ClientSession, request_id: str) -> int:
    async with http.get(f"/watch-events/{request_id}") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["request_id"] == request_id
    return int(body["emitted"])


async def test_counts_every_event_sent_to_every_stream(server: FakeAuthServer, connect: Connect) -> None:
    plugin, requester, reviewer, admin = (
        connect(u) for u in ("access-plugin", "requester@example.com", "reviewer@example.com", "admin")
    )
    async with aiohttp.ClientSession(f"http://{server.admin_addr}") as http:
        before = (await requester.auth.CreateAccessRequestV2(new_request())).Metadata.Name
        assert await emitted(http, before) == 0  # nobody was watching

        everything, _ = await open_watch(plugin, watch_request("access_request"))
        approved_only, _ = await open_watch(plugin, watch_request("access_request", state="APPROVED"))
        rid = (await requester.auth.CreateAccessRequestV2(new_request())).Metadata.Name
        await reviewer.auth.SubmitAccessReview(submission(rid, types_pb2.APPROVED))
        await admin.auth.DeleteAccessRequest(authservice_pb2.RequestID(ID=rid))
        # PUT (pending) to one stream; PUT (approved) and DELETE to both: the count is known once the RPCs return.
        assert await emitted(http, rid) == 5
        assert [(await next_event(everything)).Type for _ in range(3)] == [event_pb2.PUT, event_pb2.PUT,
                                                                            event_pb2.DELETE]
        assert [(await next_event(approved_only)).Type for _ in range(2)] == [event_pb2.PUT, event_pb2.DELETE]
        assert await emitted(http, rid) == 5
        assert await emitted(http, before) == 0
        assert await emitted(http, "no-such-request") == 0
        everything.cancel()
        approved_only.cancel()


async def test_events_a_dropped_stream_never_sent_are_not_counted(server: FakeAuthServer, connect: Connect) -> None:
    plugin, requester = connect("access-plugin"), connect("requester@example.com")
    async with aiohttp.ClientSession(f"http://{server.admin_addr}") as http:
        call, _ = await open_watch(plugin, watch_request("access_request"))
        rid = (await requester.auth.CreateAccessRequestV2(new_request())).Metadata.Name
        await next_event(call)
        # The DELETE is queued and the stream dropped in the same step: the stream never gets to send it.
        server.state.expire_request(rid)
        server.state.fanout.drop_all("dropped by the test")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await asyncio.wait_for(call.read(), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert await emitted(http, rid) == 1


def test_fanout_takes_back_what_a_closing_watcher_discards() -> None:
    fanout = Fanout(queue_size=2)
    closed_early = fanout.subscribe([RequestFilter()])
    fanout.subscribe([RequestFilter()])  # never read: it overflows below
    req = types_pb2.AccessRequestV3()
    req.Metadata.Name = "r1"
    fanout.publish_put(req)
    fanout.publish_put(req)
    assert fanout.emitted("r1") == 4
    closed_early.close()  # the consumer went away with two events unsent
    assert fanout.emitted("r1") == 2
    fanout.publish_delete(req)  # overflows: the watcher is closed and its queue discarded
    assert fanout.count == 0 and fanout.emitted("r1") == 0


async def test_fanout_keeps_counting_what_a_watcher_took() -> None:
    fanout = Fanout()
    watcher = fanout.subscribe([RequestFilter()])
    req = types_pb2.AccessRequestV3()
    req.Metadata.Name = "r1"
    fanout.publish_put(req)
    fanout.publish_delete(req)
    assert (await watcher.next()).Type == event_pb2.PUT
    watcher.close()  # the DELETE was still queued
    assert fanout.emitted("r1") == 1
    assert fanout.emitted("r2") == 0
