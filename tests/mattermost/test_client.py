"""MattermostClient against a scripted loopback server: wire shape, error mapping, retries, ETags."""

from __future__ import annotations

import asyncio
import re
import socket

import pytest

from sidecar.domain.errors import (
    AccessDenied,
    ConfigError,
    MalformedResponse,
    NotFound,
    RateLimited,
    Rejected,
    RouteNotFound,
    SidecarError,
    TransientError,
    Unauthorized,
)
from sidecar.mattermost import client as client_module
from sidecar.mattermost.client import MattermostClient
from sidecar.mattermost.entities import ChannelInfo, Post, User
from sidecar.mattermost.ratelimit import RateLimitGate
from sidecar.mattermost.retry import NO_RETRY, RetryPolicy
from tests.mattermost.conftest import make_client
from tests.mattermost.stub import (
    BOT,
    BOT_ID,
    CHAN_ID,
    DM,
    TOKEN,
    USER_ID,
    Answer,
    FakeTime,
    StubServer,
    app_error,
    channel,
    user,
)

ME = "/api/v4/users/me"
POSTS = "/api/v4/posts"
POST_OK = Answer(201, {"id": "postid", "channel_id": CHAN_ID, "message": "hi", "root_id": ""})


async def test_headers_and_path_prefix(stub: StubServer, fake_time: FakeTime) -> None:
    stub.on("GET", "/chat/api/v4/users/me", Answer(200, BOT))
    async with make_client(stub.url + "/chat/", fake_time) as mm:
        me = await mm.get_me()
    assert me == User(id=BOT_ID, username="teleport", email="teleport@localhost", is_bot=True)
    headers = stub.seen[0].headers
    assert headers["Authorization"] == f"BEARER {TOKEN}"
    assert headers["Accept"] == "application/json"
    assert headers["Content-Type"] == "application/json"


async def test_typed_calls_send_go_shapes(client: MattermostClient, stub: StubServer) -> None:
    stub.on("POST", "/api/v4/channels/direct", Answer(201, DM))
    stub.on("POST", POSTS, POST_OK)
    stub.on("PUT", "/api/v4/posts/postid", Answer(200, {"id": "postid", "channel_id": CHAN_ID, "message": "new"}))
    stub.on("PUT", "/api/v4/posts/postid/patch", Answer(200, {"id": "postid", "channel_id": CHAN_ID}))

    dm = await client.create_direct_channel(BOT_ID, USER_ID)
    post = await client.create_post(CHAN_ID, "hi", "rootid")
    edited = await client.update_post("postid", CHAN_ID, "new")
    await client.patch_post("postid", "patched")

    assert dm == ChannelInfo(id=DM["id"], type="D", name=DM["name"])
    assert post == Post(id="postid", channel_id=CHAN_ID, message="hi")
    assert edited.message == "new"
    bodies = [s.body for s in stub.seen]
    assert bodies == [
        [BOT_ID, USER_ID],
        {"channel_id": CHAN_ID, "message": "hi", "root_id": "rootid"},
        {"id": "postid", "channel_id": CHAN_ID, "message": "new", "root_id": "", "props": {}},
        {"message": "patched"},
    ]


async def test_path_segments_are_escaped_like_go(client: MattermostClient, stub: StubServer) -> None:
    stub.on("GET", "/api/v4/users/email/a+b@example.com", Answer(200, user(email="a+b@example.com")))
    await client.get_user_by_email("a+b@example.com")
    with pytest.raises(NotFound):
        await client.get_channel_by_team_and_name("..", "x/y z")
    assert stub.seen[0].raw_path == "/api/v4/users/email/a+b@example.com"
    # ".." cannot climb out of the path, "/" stays inside its segment.
    assert stub.seen[1].raw_path == "/api/v4/teams/name/%2E%2E/channels/name/x%2Fy%20z"


ERROR_CASES = [
    pytest.param(
        Answer(401, app_error(401, "api.context.session_expired.app_error", "Invalid or expired session.")),
        Unauthorized, "GET /api/v4/users/me: HTTP 401 api.context.session_expired.app_error: Invalid or expired",
        id="401",
    ),
    pytest.param(
        Answer(403, app_error(403, "api.context.permissions.app_error", "You do not have the permissions.")),
        AccessDenied, "HTTP 403 api.context.permissions.app_error", id="403",
    ),
    pytest.param(
        Answer(404, app_error(404, "app.user.missing_account.const", "Unable to find the user.")),
        NotFound, "HTTP 404 app.user.missing_account.const: Unable to find the user.", id="404",
    ),
    pytest.param(
        Answer(400, app_error(400, "api.context.invalid_url_param.app_error", "Invalid user_id.")),
        Rejected, "HTTP 400 api.context.invalid_url_param.app_error", id="400",
    ),
    pytest.param(Answer(400, "<html>bad</html>"), Rejected, "HTTP 400: <html>bad</html>", id="400-not-json"),
    pytest.param(Answer(413, b"\xff\xfe"), Rejected, "HTTP 413", id="413-binary"),
    pytest.param(
        Answer(500, app_error(500, "app.db.error", "Database down.")), TransientError,
        "HTTP 500 app.db.error: Database down.", id="500",
    ),
    pytest.param(Answer(502, "Bad Gateway\r\n\x1b[31m"), TransientError, "HTTP 502: Bad Gateway", id="502-text"),
    pytest.param(Answer(200, "<html>login</html>"), MalformedResponse, "not JSON", id="200-not-json"),
    pytest.param(Answer(200, '{"id": "x", '), MalformedResponse, "not JSON", id="200-broken-json"),
    pytest.param(Answer(200, [1, 2]), MalformedResponse, "user", id="200-array"),
    pytest.param(Answer(200, {"username": "x"}), MalformedResponse, "field 'id'", id="200-missing-id"),
    pytest.param(
        Answer(200, {"id": 5, "username": "x"}), MalformedResponse, "field 'id' must be a string", id="id-int"
    ),
    pytest.param(Answer(200, {"id": "", "username": "x"}), MalformedResponse, "field 'id' is empty", id="id-empty"),
    pytest.param(
        Answer(200, {"id": "x", "username": "y", "is_bot": "yes"}), MalformedResponse, "'is_bot' must be a boolean",
        id="bool-wrong",
    ),
    pytest.param(
        Answer(301, None, {"Location": "https://elsewhere.example/api/v4/users/me"}), Rejected, "redirects are not",
        id="redirect-not-followed",
    ),
]


@pytest.mark.parametrize(("reply", "kind", "text"), ERROR_CASES)
async def test_error_mapping(stub: StubServer, fake_time: FakeTime, reply: Answer, kind: type, text: str) -> None:
    stub.on("GET", ME, reply)
    async with make_client(stub.url, fake_time, retry=NO_RETRY) as mm:
        with pytest.raises(SidecarError) as caught:
            await mm.get_me()
    assert type(caught.value) is kind
    assert text in str(caught.value)
    assert len(stub.seen) == 1  # NO_RETRY; redirects never followed


async def test_rejected_carries_status_and_server_id(stub: StubServer, fake_time: FakeTime) -> None:
    stub.on("POST", POSTS, Answer(400, app_error(400, "api.post.create_post.root_id.app_error", "Invalid RootId.")))
    async with make_client(stub.url, fake_time) as mm:
        with pytest.raises(Rejected) as caught:
            await mm.create_post(CHAN_ID, "x", "nope", pending_post_id="k")
    assert (caught.value.status, caught.value.server_id) == (400, "api.post.create_post.root_id.app_error")
    assert len(stub.seen) == 1  # a 4xx is never retried, key or not


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7", "X-RateLimit-Reset": "3"}, 7.0),
        ({"X-RateLimit-Reset": "3", "X-RateLimit-Limit": "101", "X-RateLimit-Remaining": "0"}, 3.0),
        ({}, 1.0),
        ({"Retry-After": "soon"}, 1.0),
        ({"retry-after": "6"}, 6.0),
    ],
)
async def test_429_plain_text_body(
    stub: StubServer, fake_time: FakeTime, headers: dict[str, str], expected: float
) -> None:
    stub.on("GET", ME, Answer(429, "limit exceeded\n", headers))
    async with make_client(stub.url, fake_time, retry=NO_RETRY) as mm:
        with pytest.raises(RateLimited) as caught:
            await mm.get_me()
    assert caught.value.retry_after == expected
    assert "GET /api/v4/users/me: HTTP 429: limit exceeded" in str(caught.value)


async def test_timeout_is_transient(stub: StubServer, fake_time: FakeTime) -> None:
    stub.on("GET", ME, Answer(hang=True))
    async with make_client(stub.url, fake_time, retry=NO_RETRY, timeout=0.05) as mm:
        with pytest.raises(TransientError) as caught:
            await mm.get_me()
    assert str(caught.value) == "GET /api/v4/users/me: no answer within 0.05 s"


async def test_connection_refused_is_transient(fake_time: FakeTime) -> None:
    with socket.socket() as sock:  # reserve a port, then free it: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with make_client(f"http://127.0.0.1:{port}", fake_time, retry=NO_RETRY) as mm:
        with pytest.raises(TransientError) as caught:
            await mm.get_me()
    assert str(caught.value).startswith("GET /api/v4/users/me: cannot connect")
    assert caught.value.__cause__ is None


async def test_get_retries_transient_with_backoff(
    client: MattermostClient, stub: StubServer, fake_time: FakeTime
) -> None:
    stub.on("GET", ME, Answer(500, app_error(500, "x", "down")), Answer(503, "busy"), Answer(200, BOT))
    me = await client.get_me()
    assert me.id == BOT_ID
    assert len(stub.seen) == 3
    assert fake_time.sleeps == [1.5, 4.0]  # decorrelated jitter, upper bound picked by the test policy


async def test_retries_are_bounded(client: MattermostClient, stub: StubServer, fake_time: FakeTime) -> None:
    stub.on("GET", ME, Answer(500, "down"))
    with pytest.raises(TransientError):
        await client.get_me()
    assert len(stub.seen) == 4
    assert fake_time.sleeps == [1.5, 4.0, 4.0]  # capped


async def test_post_without_key_is_never_retried(client: MattermostClient, stub: StubServer) -> None:
    stub.on("POST", POSTS, Answer(500, "down"), POST_OK)
    with pytest.raises(TransientError):
        await client.create_post(CHAN_ID, "hi")
    assert len(stub.calls("POST", POSTS)) == 1


async def test_post_with_key_is_retried_with_the_same_key(client: MattermostClient, stub: StubServer) -> None:
    stub.on("POST", POSTS, Answer(502, "bad gateway"), Answer(429, "limit exceeded", {"Retry-After": "2"}), POST_OK)
    post = await client.create_post(CHAN_ID, "hi", pending_post_id="pendingkey")
    assert post.id == "postid"
    calls = stub.calls("POST", POSTS)
    assert len(calls) == 3
    assert {c.body["pending_post_id"] for c in calls} == {"pendingkey"}  # type: ignore[index]


async def test_429_on_post_pauses_every_call_and_the_post_is_resent(
    client: MattermostClient, stub: StubServer, fake_time: FakeTime
) -> None:
    stub.on("POST", POSTS, Answer(429, "limit exceeded\n", {"Retry-After": "30"}), POST_OK)
    stub.on("GET", ME, Answer(200, BOT))
    post = await client.create_post(CHAN_ID, "hi")  # no key, yet safe: a 429 is refused before the handler runs
    assert post.id == "postid"
    assert fake_time.sleeps == [30]
    assert len(stub.calls("POST", POSTS)) == 2
    assert stub.calls("POST", POSTS)[1].at == 30  # resent only after the reset time
    await client.get_me()
    assert fake_time.sleeps == [30]  # the gate is open again


async def test_rate_limit_pauses_are_bounded_and_keep_the_gate_closed(stub: StubServer, fake_time: FakeTime) -> None:
    stub.on("POST", POSTS, Answer(429, "limit exceeded\n", {"Retry-After": "30"}))
    stub.on("GET", ME, Answer(200, BOT))
    async with make_client(stub.url, fake_time, retry=RetryPolicy(rate_limited_attempts=3)) as limited:
        with pytest.raises(RateLimited):
            await limited.create_post(CHAN_ID, "hi")
        assert len(stub.calls("POST", POSTS)) == 3
        assert limited.gate.remaining() == 30
        await limited.get_me()
        assert [c.at for c in stub.calls("POST", POSTS)] == [0, 30, 60]
        assert stub.calls("GET", ME)[0].at == 90  # the last 429 closed the gate for everyone


async def test_get_after_429_is_retried_after_the_reset(
    client: MattermostClient, stub: StubServer, fake_time: FakeTime
) -> None:
    stub.on("GET", ME, Answer(429, "limit exceeded\n", {"X-RateLimit-Reset": "4"}), Answer(200, BOT))
    assert (await client.get_me()).id == BOT_ID
    assert [s.at for s in stub.seen] == [0, 4]
    assert fake_time.sleeps == [4]


async def test_gate_holds_concurrent_calls(stub: StubServer, fake_time: FakeTime) -> None:
    """While one call waits out a 429, a call started meanwhile waits too and is sent only after the reset."""
    released = asyncio.Event()
    waiting: list[float] = []
    first_waiting = asyncio.Event()
    both_waiting = asyncio.Event()

    async def held_sleep(seconds: float) -> None:
        waiting.append(seconds)
        (first_waiting if len(waiting) == 1 else both_waiting).set()
        await released.wait()
        fake_time.now = max(fake_time.now, 10.0)

    stub.on("GET", ME, Answer(429, "limit exceeded", {"Retry-After": "10"}), Answer(200, BOT))
    stub.on("GET", "/api/v4/teams/name/myteam/channels/name/town-square", Answer(200, channel()))
    gate = RateLimitGate(clock=fake_time.clock, sleep=held_sleep)
    async with make_client(stub.url, fake_time, sleep=held_sleep, gate=gate) as mm:
        first = asyncio.create_task(mm.get_me())
        await asyncio.wait_for(first_waiting.wait(), timeout=5)  # got its 429, now waits at the gate
        second = asyncio.create_task(mm.get_channel_by_team_and_name("myteam", "town-square"))
        # The second call must end up waiting at the gate too, before anything is sent for it.
        await asyncio.wait_for(both_waiting.wait(), timeout=5)
        assert waiting == [10, 10]
        assert len(stub.seen) == 1
        released.set()
        me, chan = await asyncio.gather(first, second)
    assert me.id == BOT_ID and chan.id == CHAN_ID
    assert len(stub.seen) == 3
    assert all(s.at >= 10 for s in stub.seen[1:])


async def test_etag_revalidation_reuses_cached_body(client: MattermostClient, stub: StubServer) -> None:
    stub.on("GET", ME, Answer(200, BOT, {"ETag": '"v1"'}), Answer(304, None, {"ETag": '"v1"'}))
    first = await client.get_me()
    second = await client.get_me()
    assert first == second
    assert "If-None-Match" not in stub.seen[0].headers
    assert stub.seen[1].headers["If-None-Match"] == '"v1"'


async def test_etag_change_replaces_cache(client: MattermostClient, stub: StubServer) -> None:
    renamed = {**BOT, "username": "teleport2"}
    stub.on(
        "GET",
        ME,
        Answer(200, BOT, {"ETag": "a"}),
        Answer(200, renamed, {"ETag": "b"}),
        Answer(304, None, {"ETag": "b"}),
    )
    await client.get_me()
    assert (await client.get_me()).username == "teleport2"
    assert (await client.get_me()).username == "teleport2"
    assert [s.headers.get("If-None-Match") for s in stub.seen] == [None, "a", "b"]


async def test_304_without_cached_copy_is_malformed(client: MattermostClient, stub: StubServer) -> None:
    stub.on("GET", ME, Answer(304))
    with pytest.raises(MalformedResponse, match="no cached copy"):
        await client.get_me()


async def test_closed_client_refuses_calls(stub: StubServer, fake_time: FakeTime) -> None:
    mm = make_client(stub.url, fake_time)
    with pytest.raises(RuntimeError, match="not open"):
        await mm.get_me()
    async with mm:
        pass
    with pytest.raises(RuntimeError, match="not open"):
        await mm.get_me()


@pytest.mark.parametrize(
    ("url", "text"),
    [
        ("ftp://mm.example.com", "http(s) URL"),
        ("mm.example.com", "http(s) URL"),
        ("https://mm.example.com/?x=1", "query"),
        ("https://bob:pw@mm.example.com", "user name or password"),
    ],
)
def test_bad_urls_are_config_errors(url: str, text: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(text)) as caught:
        MattermostClient(url, TOKEN)
    assert "pw" not in str(caught.value)


def test_empty_token_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="token is empty"):
        MattermostClient("https://mm.example.com", "")


def test_repr_has_no_token() -> None:
    assert TOKEN not in repr(MattermostClient("https://mm.example.com/chat", TOKEN))


async def test_unknown_route_404_is_distinguished(client: MattermostClient, stub: StubServer) -> None:
    with pytest.raises(RouteNotFound):
        await client.get_channel_by_team_and_name("myteam", "Town Square")  # the stub's default answer
    stub.on("GET", ME, Answer(404, app_error(404, "app.user.missing_account.const", "Unable to find the user.")))
    with pytest.raises(NotFound) as caught:
        await client.get_me()
    assert type(caught.value) is NotFound


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_oversized_body_is_refused(
    stub: StubServer, fake_time: FakeTime, monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    monkeypatch.setattr(client_module, "_MAX_BODY", 5000)
    stub.on("GET", ME, Answer(200, {**BOT, "padding": "x" * 6000}, chunked=chunked))
    async with make_client(stub.url, fake_time) as mm:
        with pytest.raises(MalformedResponse, match="larger than 5000 bytes"):
            await mm.get_me()
    stub.on("GET", ME, Answer(200, {**BOT, "padding": "x" * 4000}, chunked=chunked))
    async with make_client(stub.url, fake_time) as mm:
        assert (await mm.get_me()).id == BOT_ID


async def test_proxy_from_environment_is_used(
    stub: StubServer, fake_time: FakeTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trust_env: HTTP_PROXY routes the call through the proxy (here the stub plays the proxy)."""
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", stub.url)
    stub.on("GET", ME, Answer(200, BOT))
    async with make_client("http://mattermost.invalid", fake_time, trust_env=True) as mm:
        assert (await mm.get_me()).id == BOT_ID
    assert stub.seen[0].headers["Host"] == "mattermost.invalid"


async def test_no_proxy_from_environment_bypasses_the_proxy(
    stub: StubServer, fake_time: FakeTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_PROXY naming the Mattermost host wins over HTTP_PROXY: the call goes straight to the server."""
    for name in ("no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    stub.on("GET", ME, Answer(200, BOT))
    async with make_client(stub.url, fake_time, trust_env=True) as mm:
        assert (await mm.get_me()).id == BOT_ID
    assert len(stub.seen) == 1
