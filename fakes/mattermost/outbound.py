"""Calls from the server to an integration (`DoActionRequest`), recorded for the test face.

A button click and a dialog submission both POST JSON to the integration's URL with `Content-Type` and
`Accept: application/json` and the server's `User-Agent`, no authentication of any kind, through the
`AllowedUntrustedInternalConnections` filter, within `OutgoingIntegrationRequestsTimeout` (never more than
30 s, the HTTP client's own limit). A network error, a refused address, a timeout or any status but 200
becomes the 400 `api.post.do_action.action_integration.app_error` the caller returns to the client.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from fakes.mattermost import egress, errors
from fakes.mattermost.config import IntegrationSettings

#: `MaxIntegrationResponseSize`: the answer is read up to this many bytes (a longer one is cut, then fails to parse).
MAX_RESPONSE_BYTES = 1024 * 1024
#: `httpservice.RequestTimeout` and `ConnectTimeout`.
CLIENT_TIMEOUT_SECONDS = 30
CONNECT_TIMEOUT_SECONDS = 3
USER_AGENT = "Mattermost-Bot/1.1"
#: The test face keeps this many calls.
CALL_LOG_LIMIT = 10_000


@dataclass
class IntegrationCall:
    """One call to an integration as the server made it.

    `kind` is `post_action` or `dialog_submission`; `body` is the exact JSON text sent; `status` is None when
    no HTTP answer came back, and `error` then says why (`refused: ...`, `timeout`, `connection: ...`).
    `response` is the answer's text (cut at 64 KiB for the record).
    """

    kind: str
    url: str
    user_id: str
    at: int
    body: str
    headers: dict[str, str]
    status: int | None = None
    response: str = ""
    error: str = ""
    outcome: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON view."""
        return asdict(self)


class CallLog(deque[IntegrationCall]):
    """The bounded record of integration calls."""

    def __init__(self) -> None:
        super().__init__(maxlen=CALL_LOG_LIMIT)


async def post_json(
    http: aiohttp.ClientSession,
    settings: IntegrationSettings,
    url: str,
    body: bytes,
    record: IntegrationCall,
) -> bytes:
    """POST `body` to `url` as the server does; the answer's bytes (up to the limit) when it is a 200."""
    headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
    record.headers = dict(headers)
    try:
        target = urlsplit(url)
        host = target.hostname
        if target.scheme not in ("http", "https") or not host:
            raise _failed(record, f"connection: unsupported URL {url!r}")
        port = target.port or (443 if target.scheme == "https" else 80)
        budget = min(settings.outgoing_integration_requests_timeout, CLIENT_TIMEOUT_SECONDS)
        async with asyncio.timeout(budget):
            try:
                await egress.check(host, port, settings.allowed_untrusted_internal_connections)
            except egress.AddressForbidden as exc:
                raise _failed(record, f"refused: {exc}") from exc
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_SECONDS)
            async with http.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=True) as reply:
                record.status = reply.status
                raw = await _read_limited(reply.content, MAX_RESPONSE_BYTES)
                record.response = raw[:65536].decode("utf-8", errors="replace")
                if reply.status != 200:
                    raise errors.action_integration_failed(f"status={reply.status}")
                return raw
    except TimeoutError as exc:
        raise _failed(record, "timeout") from exc
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        raise _failed(record, f"connection: {type(exc).__name__}: {exc}") from exc


async def _read_limited(stream: aiohttp.StreamReader, limit: int) -> bytes:
    # io.LimitReader: everything up to `limit` bytes, the rest left unread.
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _failed(record: IntegrationCall, why: str) -> errors.ApiError:
    record.error = why
    return errors.action_integration_failed(why)
