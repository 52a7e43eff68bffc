"""The floor of the end-to-end benchmark: the least work announcing access requests needs, with no sidecar.

`Floor` runs in the benchmark's own process. It watches access requests over WatchEvents as the sidecar does
(the product's `TeleportClient`, the same plugin identity) and, for each request as its watch event arrives:

* pending and not seen yet: one plugin-data read, one compare-and-swap write (claim), one POST per recipient,
  one plugin-data write (the post ids);
* resolved (the benchmark approves some requests): one read, one compare-and-swap write, one reply and one
  edit per root post, one write.

Recipients are resolved once, up front, and their channel ids kept; the posts of one request go out
concurrently; events of one request are handled in order. There are no retries, no searches, no idempotency keys
and no metrics: whatever the sidecar does beyond this is its overhead. `calls` times every call it makes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from sidecar.domain.email import is_email
from sidecar.teleport.client import TeleportClient
from sidecar.teleport.wire import event_pb2, types_pb2

T = TypeVar("T")

PLUGIN = "mattermost"
log = logging.getLogger("bench.floor")


class FloorError(RuntimeError):
    """The floor could not do its job (a refused call, a lost watch stream)."""


def root_text(request: types_pb2.AccessRequestV3, status: str) -> str:
    """A root post in the shape and size of the sidecar's (sidecar/render/classic.py)."""
    rid = request.Metadata.Name
    lines = [
        "*You have new pending request to review!*" if status == "PENDING" else "",
        f"**User**: {request.Spec.User}",
        f"**Roles**: {', '.join(request.Spec.Roles)}",
        f"**Request ID**: {rid}",
        f"**Reason**: {request.Spec.RequestReason}" if request.Spec.RequestReason else "",
        f"**Status**: {status}",
    ]
    text = "\n".join(lines) + "\n"
    if status == "PENDING":
        text += f"**Approve**: `tsh request review --approve {rid}`\n**Deny**: `tsh request review --deny {rid}`"
    return text


def reply_text(review: types_pb2.AccessReview) -> str:
    """A review reply in the shape of the sidecar's."""
    state = types_pb2.RequestState.Name(review.ProposedState)
    return f"{review.Author} reviewed the request.\nResolution: {state}.\n" + (
        f"Reason: {review.Reason}." if review.Reason else ""
    )


class Floor:
    """The bare job as an async context manager: resolve recipients, then watch and announce until closed."""

    def __init__(
        self, auth_addr: str, identity: Path, mm_url: str, bot_token: str, recipients: Sequence[str]
    ) -> None:
        self._auth_addr = auth_addr
        self._identity = identity
        self._mm_url = mm_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {bot_token}"}
        self._recipients = list(recipients)
        self.channels: list[str] = []
        self.calls: dict[str, list[float]] = collections.defaultdict(list)  # call → seconds each
        self.handled = 0
        self.errors: list[str] = []
        self._client: TeleportClient | None = None
        self._http: aiohttp.ClientSession | None = None
        self._watch: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> Floor:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect to both, resolve every recipient once, and start watching (returns once INIT has arrived)."""
        self._client = await TeleportClient.connect(self._auth_addr, identity_file=self._identity)
        # As many connections as the sidecar's client allows (sidecar/mattermost/client.py).
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit_per_host=100),
                                           timeout=aiohttp.ClientTimeout(total=30))
        me = await self._mm("GET", "/api/v4/users/me")
        for recipient in self._recipients:
            if is_email(recipient):
                user = await self._mm("GET", f"/api/v4/users/email/{recipient}")
                channel = await self._mm("POST", "/api/v4/channels/direct", [me["id"], user["id"]])
            else:
                team, name = recipient.split("/")
                channel = await self._mm("GET", f"/api/v4/teams/name/{team}/channels/name/{name}")
            self.channels.append(str(channel["id"]))
        ready = asyncio.get_running_loop().create_future()
        self._watch = asyncio.create_task(self._run_watch(ready), name="floor-watch")
        await ready

    async def stop_watching(self) -> None:
        """Stop the watch stream and wait for the events already taken to finish."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop everything and close both connections."""
        await self.stop_watching()
        for task in list(self._tasks):
            task.cancel()
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    # ---- the watch ------------------------------------------------------------------------------------------

    async def _run_watch(self, ready: asyncio.Future[None]) -> None:
        assert self._client is not None
        try:
            async for event in self._client.watch_events():
                if event.Type == event_pb2.INIT:
                    ready.set_result(None)
                    continue
                if event.Type != event_pb2.PUT or event.WhichOneof("Resource") != "AccessRequest":
                    continue
                task = asyncio.create_task(self._ordered(event.AccessRequest))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except Exception as exc:
            if not ready.done():
                ready.set_exception(FloorError(f"watch failed: {exc}"))
            else:
                self.errors.append(f"watch stream lost: {exc}")
            return
        if not ready.done():
            ready.set_exception(FloorError("the watch stream ended before INIT"))

    async def _ordered(self, request: types_pb2.AccessRequestV3) -> None:
        rid = request.Metadata.Name
        lock = self._locks.setdefault(rid, asyncio.Lock())
        async with lock:  # asyncio locks are FIFO: one request's events run in arrival order
            try:
                await self._handle(request)
                self.handled += 1
            except Exception as exc:
                self.errors.append(f"{rid}: {type(exc).__name__}: {exc}")

    async def _handle(self, request: types_pb2.AccessRequestV3) -> None:
        rid = request.Metadata.Name
        data = await self._read(rid)
        if request.Spec.State == types_pb2.PENDING:
            if data:
                return  # announced already
            await self._write(rid, {"state": "announcing"}, {"state": ""})
            posted = await asyncio.gather(*(self._post(ch, root_text(request, "PENDING")) for ch in self.channels))
            posts = ",".join(f"{ch}:{post['id']}" for ch, post in zip(self.channels, posted, strict=True))
            await self._write(rid, {"state": "posted", "posts": posts}, {})
            return
        if data.get("state") != "posted" or not request.Spec.Reviews:
            return
        await self._write(rid, {"state": "resolving"}, {"state": "posted"})
        status = types_pb2.RequestState.Name(request.Spec.State)
        text, reply = root_text(request, status), reply_text(request.Spec.Reviews[-1])
        steps: list[Awaitable[Any]] = []
        for pair in data["posts"].split(","):
            channel, post_id = pair.split(":")
            steps.append(self._post(channel, reply, root_id=post_id))
            steps.append(self._timed("PUT /posts/{id}", self._mm(
                "PUT", f"/api/v4/posts/{post_id}",
                {"id": post_id, "channel_id": channel, "message": text, "root_id": "", "props": {}})))
        await asyncio.gather(*steps)
        await self._write(rid, {"state": "resolved"}, {})

    # ---- calls ----------------------------------------------------------------------------------------------

    async def _timed(self, name: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await call
        finally:
            self.calls[name].append(time.perf_counter() - started)

    async def _read(self, rid: str) -> dict[str, str]:
        assert self._client is not None
        found = await self._timed("GetPluginData", self._client.get_plugin_data(rid, PLUGIN))
        for item in found:
            entry = item.Spec.Entries.get(PLUGIN)
            if entry is not None:
                return dict(entry.Data)
        return {}

    async def _write(self, rid: str, set_: dict[str, str], expect: dict[str, str]) -> None:
        assert self._client is not None
        await self._timed("UpdatePluginData", self._client.update_plugin_data(rid, PLUGIN, set_, expect))

    async def _post(self, channel: str, message: str, *, root_id: str = "") -> Any:
        body = {"channel_id": channel, "message": message, "root_id": root_id}
        return await self._timed("POST /posts", self._mm("POST", "/api/v4/posts", body))

    async def _mm(self, method: str, path: str, body: Any = None) -> Any:
        assert self._http is not None
        async with self._http.request(method, self._mm_url + path, json=body, headers=self._headers) as resp:
            answer = await resp.json(content_type=None)
            if resp.status >= 300:
                raise FloorError(f"{method} {path} → {resp.status}: {answer}")
            return answer


async def time_calls(
    count: int, call: Callable[[int], Awaitable[object]], ping: Callable[[], Awaitable[object]]
) -> tuple[float, float]:
    """Median ms of `count` calls made one after another, and of as many pings made in between (same load)."""
    times: list[float] = []
    pings: list[float] = []
    for i in range(count):
        started = time.perf_counter()
        await call(i)
        middle = time.perf_counter()
        await ping()
        times.append((middle - started) * 1000)
        pings.append((time.perf_counter() - middle) * 1000)
    return statistics.median(times), statistics.median(pings)
