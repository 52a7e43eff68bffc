"""The token appears in no log record and no exception (repr, str, traceback, chained causes) on failing flows."""

from __future__ import annotations

import logging
import socket
import traceback

import pytest

from sidecar.check.mattermost import diagnose_mattermost
from sidecar.domain.errors import SidecarError
from sidecar.mattermost.bot import MattermostBot
from tests.mattermost.conftest import make_client
from tests.mattermost.stub import TOKEN, Answer, FakeTime, StubServer, app_error


def exception_texts(exc: BaseException) -> list[str]:
    """Every way an exception may be shown, for it and every exception chained to it."""
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    pending = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [repr(current), str(current), repr(vars(current)) if hasattr(current, "__dict__") else ""]
        pending += [c for c in (current.__cause__, current.__context__) if c is not None]
    texts.append("".join(traceback.format_exception(exc)))
    return texts


def record_texts(records: list[logging.LogRecord]) -> list[str]:
    texts = []
    for record in records:
        texts += [record.getMessage(), repr(vars(record))]
        if record.exc_info and record.exc_info[1] is not None:
            texts += exception_texts(record.exc_info[1])
    return texts


FAILURES = [
    pytest.param(Answer(401, app_error(401, "api.context.session_expired.app_error", "Invalid session.")), id="401"),
    pytest.param(Answer(429, "limit exceeded\n", {"Retry-After": "1"}), id="429"),
    pytest.param(Answer(hang=True), id="timeout"),
    # A hostile or debugging server that echoes the Authorization header back in its error message.
    pytest.param(Answer(500, app_error(500, "x", f"bad header BEARER {TOKEN}")), id="500-echo"),
    pytest.param(Answer(400, f"you sent {TOKEN}"), id="400-echo-text"),
]


@pytest.mark.parametrize("reply", FAILURES)
async def test_failing_flows_never_show_the_token(
    stub: StubServer, fake_time: FakeTime, caplog: pytest.LogCaptureFixture, reply: Answer
) -> None:
    caplog.set_level(logging.DEBUG)
    for method, path in [
        ("GET", "/api/v4/users/me"),
        ("GET", "/api/v4/users/email/alice@example.com"),
        ("GET", "/api/v4/teams/name/myteam"),
        ("GET", "/api/v4/teams/name/myteam/channels/name/town-square"),
        ("POST", "/api/v4/posts"),
        ("PUT", "/api/v4/posts/p1"),
    ]:
        stub.on(method, path, reply)
    raised: list[BaseException] = []
    async with make_client(stub.url, fake_time, timeout=0.05) as mm:
        bot = MattermostBot(mm)
        for call in (
            bot.check_health(),
            bot.resolve("alice@example.com"),
            bot.resolve("myteam/town-square"),
            bot.post("chan", "hello"),
            mm.create_post("chan", "hello"),
            mm.update_post("p1", "chan", "new"),
        ):
            with pytest.raises(SidecarError) as caught:
                await call
            raised.append(caught.value)
        report = await diagnose_mattermost(mm, ["alice@example.com", "myteam/town-square"])

    texts = [t for exc in raised for t in exception_texts(exc)]
    texts += record_texts(caplog.records)
    texts += [repr(result) for result in report]
    assert texts
    leaks = [t for t in texts if TOKEN in t]
    assert not leaks, leaks[0]


async def test_connection_refused_never_shows_the_token(fake_time: FakeTime, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with make_client(f"http://127.0.0.1:{port}", fake_time) as mm:
        with pytest.raises(SidecarError) as caught:
            await MattermostBot(mm).resolve("alice@example.com")
    texts = exception_texts(caught.value) + record_texts(caplog.records)
    assert not [t for t in texts if TOKEN in t]
