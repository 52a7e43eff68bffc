"""The lose-events fault (POST /faults/lose-events): watch streams stay open but miss every event while it is on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from fakes.teleport_auth.server import FakeAuthServer
from fakes.teleport_auth.watch import Fanout, RequestFilter
from sidecar.teleport.wire import event_pb2, types_pb2

from .conftest import Stubs
from .test_admin_watch_events import emitted
from .test_grpc import new_request, next_event, open_watch, watch_request

Connect = Callable[..., Stubs]


async def post(http: aiohttp.ClientSession, path: str, body: Any = None) -> tuple[int, Any]:
    async with http.post(path, json=body) as resp:
        return resp.status, await resp.json()


async def test_lost_events_never_reach_an_open_stream_and_are_not_counted(
    server: FakeAuthServer, connect: Connect
) -> None:
    plugin, requester = connect("access-plugin"), connect("requester@example.com")
    async with aiohttp.ClientSession(f"http://{server.admin_addr}") as http:
        call, _ = await open_watch(plugin, watch_request("access_request"))
        assert await post(http, "/faults/lose-events") == (200, {"losing_events": True, "lost_events": 0})
        lost = (await requester.auth.CreateAccessRequestV2(new_request())).Metadata.Name
        async with http.get("/faults") as resp:
            faults = await resp.json()
        assert (faults["losing_events"], faults["lost_events"]) == (True, 1)
        assert await emitted(http, lost) == 0
        async with http.get("/watchers") as resp:
            assert (await resp.json())["count"] == 1  # the stream is still open

        assert await post(http, "/faults/lose-events", {"enabled": False}) == (
            200,
            {"losing_events": False, "lost_events": 1},
        )
        delivered = (await requester.auth.CreateAccessRequestV2(new_request())).Metadata.Name
        # The first event the stream sends is the second request's: the first one was lost, not delayed.
        event = await next_event(call)
        assert (event.Type, event.AccessRequest.Metadata.Name) == (event_pb2.PUT, delivered)
        assert (await emitted(http, lost), await emitted(http, delivered)) == (0, 1)
        call.cancel()


async def test_clear_ends_the_fault_and_bad_bodies_are_refused(server: FakeAuthServer) -> None:
    async with aiohttp.ClientSession(f"http://{server.admin_addr}") as http:
        await post(http, "/faults/lose-events", {"enabled": True})
        status, body = await post(http, "/faults/clear")
        assert (status, body["losing_events"]) == (200, False)
        assert server.state.fanout.losing_events is False
        for bad in ({"enabled": "yes"}, {"enabled": 1}):
            status, body = await post(http, "/faults/lose-events", bad)
            assert (status, body) == (400, {"error": '"enabled" must be true or false'})
        async with http.get("/state") as resp:
            assert (await resp.json())["faults"]["losing_events"] is False


def test_fanout_counts_one_loss_per_watcher_that_wanted_the_event() -> None:
    fanout = Fanout()
    fanout.subscribe([RequestFilter()])
    fanout.subscribe([RequestFilter()])
    fanout.subscribe([RequestFilter(state=types_pb2.APPROVED)])  # does not want a pending request's PUT
    req = types_pb2.AccessRequestV3()
    req.Metadata.Name = "r1"
    req.Spec.State = types_pb2.PENDING
    fanout.losing_events = True
    fanout.publish_put(req)
    fanout.publish_delete(req)  # a DELETE matches every watcher on id and user
    assert (fanout.lost, fanout.emitted("r1")) == (5, 0)
    fanout.losing_events = False
    fanout.publish_put(req)
    assert (fanout.lost, fanout.emitted("r1")) == (5, 2)
