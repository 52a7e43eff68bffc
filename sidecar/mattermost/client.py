"""Async Mattermost REST v4 client: the one place where HTTP becomes `sidecar.domain.errors`.

Every call goes through `_call()` (rate-limit gate, retries, ETag revalidation) and then `_request()`
(one HTTP exchange, status and transport errors mapped to our error classes). Error messages carry the
method, the path *template*, the status and the server's `id`/`message`; never the token, the URL
(it may hold credentials), nor aiohttp's request_info/headers reprs, which include the Authorization
header.

Retry rule: GET and PUT are retried; POST /channels/direct is idempotent on the server and retried;
POST /posts is retried only when it carries a `pending_post_id`, which the server deduplicates for
30 s (upstream Mattermost `server/channels/app/post.go`, `deduplicateCreatePost`). A 429 pauses every call of this
client until the server's reset time. Before that, the client's `Pacer` (pacing.py) spaces calls out at the rate
it learns from the `X-RateLimit-*` headers of every answer, so that a burst rarely draws a 429 at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

import aiohttp
import yarl
from aiohttp.helpers import get_env_proxy_for_url
from multidict import CIMultiDict

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
from sidecar.domain.secret import MASK, Secret
from sidecar.domain.telemetry import NullTelemetry, Telemetry
from sidecar.mattermost.cache import EtagCache, EtagEntry
from sidecar.mattermost.entities import (
    ChannelInfo,
    ChannelMember,
    Post,
    Team,
    User,
    parse_list,
    parse_post_list,
)
from sidecar.mattermost.pacing import Pacer
from sidecar.mattermost.ratelimit import RateLimitGate, Sleep, retry_after_from_headers
from sidecar.mattermost.retry import RetryPolicy

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT: Final = 10.0  # seconds per request, like the Go plugin (never aiohttp's 300 s default)
_MAX_SERVER_TEXT: Final = 300
_MAX_BODY: Final = 8 * 1024 * 1024
# Go's url.PathEscape leaves these reserved characters alone inside a path segment.
_PATH_SAFE: Final = "$&+:=@"
_ROUTE_404_ID: Final = "api.context.404.app_error"
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class _Response:
    status: int
    body: object
    etag: str


class MattermostClient:
    """Typed calls to one Mattermost server; use as `async with MattermostClient(url, token) as client`.

    `url` is the server's base URL, optionally with a path prefix (`https://host/mattermost`).
    `gate`, `sleep` and `retry` are injectable so tests control time. Every HTTP exchange (route template,
    status, duration on `clock`) and every 429 pause is reported to `telemetry`.
    """

    def __init__(
        self,
        url: str,
        token: Secret | str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        gate: RateLimitGate | None = None,
        pacer: Pacer | None = None,
        sleep: Sleep = asyncio.sleep,
        etag_entries: int = 1024,
        trust_env: bool = True,
        user_agent: str = "teleport-mattermost",
        telemetry: Telemetry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = _base_url(url)
        self._token = token if isinstance(token, Secret) else Secret(token)
        if not self._token:
            raise ConfigError("Mattermost token is empty")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._timeout_s = timeout
        self._retry = retry or RetryPolicy()
        self._gate = gate or RateLimitGate(sleep=sleep)
        self._pacer = pacer or Pacer(clock=self._gate.clock, sleep=sleep, gate=self._gate)
        self._sleep = sleep
        self._etags = EtagCache(etag_entries)
        self._trust_env = trust_env
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._proxy: yarl.URL | None = None
        self._proxy_auth: aiohttp.BasicAuth | None = None
        self._telemetry = telemetry if telemetry is not None else NullTelemetry()
        self._clock = clock

    def __repr__(self) -> str:
        return f"MattermostClient({self._base!s})"

    @property
    def gate(self) -> RateLimitGate:
        """The rate-limit gate every call of this client waits on."""
        return self._gate

    @property
    def pacer(self) -> Pacer:
        """The pacer every call of this client waits on, which learns the server's rate limit."""
        return self._pacer

    async def __aenter__(self) -> MattermostClient:
        if self._session is not None:
            raise RuntimeError("MattermostClient is already open")
        self._session = aiohttp.ClientSession(
            headers={
                "Authorization": "BEARER " + self._token.reveal(),
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": self._user_agent,
            },
            timeout=self._timeout,
            connector=aiohttp.TCPConnector(limit_per_host=100),
        )
        if self._trust_env:
            # HTTP(S)_PROXY / NO_PROXY, like the Go plugin. Every call goes to the one base URL, so the answer is
            # looked up once here: aiohttp's trust_env would look it up (and netrc) in a thread on every call.
            with contextlib.suppress(LookupError):
                self._proxy, self._proxy_auth = get_env_proxy_for_url(yarl.URL(str(self._base)))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Release the HTTP session; idempotent."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # ---- typed calls -------------------------------------------------------------------------

    async def get_me(self) -> User:
        """The user the token belongs to (the bot); doubles as the health check."""
        return User.from_json(await self._call("GET", "/api/v4/users/me"))

    async def get_user_by_email(self, email: str) -> User:
        """A user by email. 403 when the server hides emails from the bot."""
        return User.from_json(await self._call("GET", "/api/v4/users/email/{email}", email=email))

    async def get_user_by_username(self, username: str) -> User:
        """A user by username."""
        return User.from_json(await self._call("GET", "/api/v4/users/username/{username}", username=username))

    async def create_direct_channel(self, user_id: str, other_user_id: str) -> ChannelInfo:
        """The DM channel between two users; the server returns the existing one when there is one."""
        body = await self._call("POST", "/api/v4/channels/direct", body=[user_id, other_user_id], idempotent=True)
        return ChannelInfo.from_json(body)

    async def get_team_by_name(self, team: str) -> Team:
        """A team by its URL name."""
        return Team.from_json(await self._call("GET", "/api/v4/teams/name/{team}", team=team))

    async def get_channel_by_team_and_name(self, team: str, channel: str) -> ChannelInfo:
        """A channel by team and channel URL names (not display names)."""
        body = await self._call(
            "GET", "/api/v4/teams/name/{team}/channels/name/{channel}", team=team, channel=channel
        )
        return ChannelInfo.from_json(body)

    async def get_team_channels(self, team_id: str, *, page: int = 0, per_page: int = 200) -> list[ChannelInfo]:
        """One page of the team's public channels."""
        body = await self._call(
            "GET", "/api/v4/teams/{team_id}/channels", query={"page": str(page), "per_page": str(per_page)},
            team_id=team_id,
        )
        return [ChannelInfo.from_json(item) for item in parse_list(body, "channel list")]

    async def get_channel_members_me(self, channel_id: str) -> ChannelMember:
        """The bot's own membership of a channel; NotFound/AccessDenied when it is not a member."""
        body = await self._call("GET", "/api/v4/channels/{channel_id}/members/me", channel_id=channel_id)
        return ChannelMember.from_json(body)

    async def create_post(
        self,
        channel_id: str,
        message: str,
        root_id: str = "",
        *,
        pending_post_id: str = "",
        props: Mapping[str, object] | None = None,
    ) -> Post:
        """Create a post (a reply when `root_id` is set). Retried only when `pending_post_id` is given."""
        body: dict[str, object] = {"channel_id": channel_id, "message": message, "root_id": root_id}
        if pending_post_id:
            body["pending_post_id"] = pending_post_id
        if props:
            body["props"] = dict(props)
        return Post.from_json(await self._call("POST", "/api/v4/posts", body=body, idempotent=bool(pending_post_id)))

    async def update_post(
        self,
        post_id: str,
        channel_id: str,
        message: str,
        root_id: str = "",
        *,
        props: Mapping[str, object] | None = None,
    ) -> Post:
        """Replace a post (PUT), with the Go plugin's body shape; `props` replace the post's props.

        Without props they are sent as `{}` rather than Go's `null`: a full PUT replaces props either way, and an
        object is the type the server's Post model declares (`null` only works through Go's nil-map decoding).
        """
        body = {
            "id": post_id, "channel_id": channel_id, "message": message, "root_id": root_id,
            "props": dict(props) if props else {},
        }
        return Post.from_json(await self._call("PUT", "/api/v4/posts/{post_id}", body=body, post_id=post_id))

    async def patch_post(self, post_id: str, message: str) -> Post:
        """Change only the message of a post, keeping its props."""
        body = await self._call("PUT", "/api/v4/posts/{post_id}/patch", body={"message": message}, post_id=post_id)
        return Post.from_json(body)

    async def get_post(self, post_id: str) -> Post:
        """A post by id."""
        return Post.from_json(await self._call("GET", "/api/v4/posts/{post_id}", post_id=post_id))

    async def get_channel_posts_since(self, channel_id: str, since_ms: int) -> list[Post]:
        """Posts of a channel created or changed after `since_ms` (the server returns at most 1000)."""
        body = await self._call(
            "GET", "/api/v4/channels/{channel_id}/posts", query={"since": str(since_ms)}, channel_id=channel_id
        )
        return parse_post_list(body)

    async def get_thread(self, post_id: str) -> list[Post]:
        """A root post and its replies."""
        return parse_post_list(await self._call("GET", "/api/v4/posts/{post_id}/thread", post_id=post_id))

    async def get_json(self, template: str, *, query: Mapping[str, str] | None = None, **path_args: str) -> object:
        """GET a templated path (its arguments escaped) and return the decoded JSON, for callers outside this module
        (in-chat review reads users and the client config). Rate limiting, retries and error mapping as for every
        call."""
        args: dict[str, Any] = dict(path_args)  # mypy: no path argument may shadow a keyword of _call
        return await self._call("GET", template, query=query, **args)

    async def post_json(self, template: str, body: object, **path_args: str) -> object:
        """POST a JSON body to a templated path and return the decoded answer (None when empty). Not retried: a POST
        is not known to be idempotent (in-chat review opens dialogs with it)."""
        args: dict[str, Any] = dict(path_args)
        return await self._call("POST", template, body=body, idempotent=False, **args)

    # ---- machinery ---------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        template: str,
        *,
        body: object = None,
        query: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        **path_args: str,
    ) -> object:
        """One logical call: wait for the gate, send, retry what is safe to retry, revalidate GETs."""
        path = _expand(template, path_args)
        if query:
            path += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items())
        retryable = idempotent if idempotent is not None else method in ("GET", "PUT")
        backoff = self._retry.backoff(self._sleep)
        attempt = 0
        limited = 0
        while True:
            await self._gate.wait()
            cached = self._etags.get(path) if method == "GET" else None
            try:
                reply = await self._request(method, template, path, body, cached.etag if cached else None)
            except RateLimited as exc:
                # The rate limiter refuses a request before any handler runs, so resending is safe for every
                # method, and waiting out a 429 is not a failed attempt: only the number of pauses is bounded.
                waited = self._gate.remaining()
                self._gate.pause(exc.retry_after)
                self._telemetry.rate_limit_pause(max(0.0, self._gate.remaining() - waited))
                limited += 1
                if limited >= self._retry.rate_limited_attempts:
                    raise
                log.debug("Mattermost asked to slow down, retrying after the pause", extra=_ctx(method, template, exc))
                continue
            except TransientError as exc:
                attempt += 1
                if not retryable or attempt >= self._retry.attempts:
                    raise
                log.debug("Mattermost call failed, retrying after a backoff", extra=_ctx(method, template, exc))
                await backoff.wait()
                continue
            if reply.status == 304:
                if cached is None:
                    raise MalformedResponse(f"{method} {template}: HTTP 304 for a request we have no cached copy of")
                return cached.body
            if method == "GET" and reply.etag:
                self._etags.put(path, EtagEntry(reply.etag, reply.body))
            return reply.body

    async def _request(
        self, method: str, template: str, path: str, body: object, if_none_match: str | None
    ) -> _Response:
        """One HTTP exchange. Returns 2xx and 304 replies; raises the mapped error for anything else."""
        if self._session is None:
            raise RuntimeError("MattermostClient is not open; use 'async with MattermostClient(...)'")
        url = yarl.URL(str(self._base) + path, encoded=True)
        headers = {"If-None-Match": if_none_match} if if_none_match else None
        data = json.dumps(body).encode() if body is not None else None
        call = await self._pacer.acquire()
        started = self._clock()
        answered: int | None = None  # the status, once the whole answer has arrived
        try:
            # Redirects are not followed: a redirect to another host would carry the token there.
            async with self._session.request(
                method, url, data=data, headers=headers, allow_redirects=False,
                proxy=self._proxy, proxy_auth=self._proxy_auth,
            ) as resp:
                self._pacer.observe(call, resp.status, resp.headers)
                raw = await _read_bounded(resp, method, template)
                status = answered = resp.status
                etag = resp.headers.get("ETag", "")
                response_headers = CIMultiDict(resp.headers)
        except TimeoutError:
            raise TransientError(f"{method} {template}: no answer within {self._timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            # `from None`: aiohttp's exceptions may carry request_info, whose repr includes our headers.
            raise TransientError(f"{method} {template}: {_describe_transport_error(exc)}") from None
        finally:
            self._pacer.done(call)
            self._telemetry.mattermost_call(f"{method} {template}", answered, self._clock() - started)
        if 200 <= status < 300 or status == 304:
            return _Response(status, self._decode_success(method, template, status, raw), etag)
        raise self._error_for(method, template, status, raw, response_headers)

    def _decode_success(self, method: str, template: str, status: int, raw: bytes) -> object:
        if status == 304 or not raw.strip():
            return None
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise MalformedResponse(
                f"{method} {template}: HTTP {status} with a body that is not JSON: {self._snippet(raw)!r}"
            ) from None

    def _error_for(
        self, method: str, template: str, status: int, raw: bytes, headers: Mapping[str, str]
    ) -> SidecarError:
        server_id, server_message = self._server_error(raw)
        text = f"{method} {template}: HTTP {status}"
        if server_id:
            text += f" {server_id}"
        if server_message:
            text += f": {server_message}"
        if status == 401:
            return Unauthorized(text)
        if status == 403:
            return AccessDenied(text)
        if status == 404:
            return RouteNotFound(text) if server_id == _ROUTE_404_ID else NotFound(text)
        if status == 429:
            return RateLimited(text, retry_after_from_headers(headers))
        if status in (408, 425) or status >= 500:
            return TransientError(text)
        if 300 <= status < 400:
            return Rejected(text + " (redirects are not followed; set the final Mattermost URL)", status, server_id)
        return Rejected(text, status, server_id)

    def _server_error(self, raw: bytes) -> tuple[str, str]:
        """The AppError `id` and `message`, or ("", a short snippet) when the body is not AppError JSON."""
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "", self._snippet(raw)
        if not isinstance(data, dict):
            return "", self._snippet(raw)
        server_id = data.get("id")
        message = data.get("message")
        return (
            self._clean(server_id) if isinstance(server_id, str) else "",
            self._clean(message) if isinstance(message, str) else "",
        )

    def _snippet(self, raw: bytes) -> str:
        return self._clean(raw[: _MAX_SERVER_TEXT * 2].decode("utf-8", errors="replace"))

    def _clean(self, text: str) -> str:
        """Server text made safe for a one-line log: no control characters, bounded, token scrubbed."""
        text = _UNPRINTABLE.sub(" ", text).strip()
        text = text.replace(self._token.reveal(), MASK)
        if len(text) > _MAX_SERVER_TEXT:
            text = text[:_MAX_SERVER_TEXT] + "…"
        return text


def _base_url(url: str) -> yarl.URL:
    try:
        parsed = yarl.URL(url.strip())
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Mattermost url {url!r} is not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"Mattermost url must be an http(s) URL with a host, got {_without_userinfo(parsed)}")
    if parsed.query_string or parsed.fragment:
        raise ConfigError("Mattermost url must not have a query or fragment")
    if parsed.user is not None or parsed.password is not None:
        # The token is the only credential; userinfo would also end up in logs of the URL.
        raise ConfigError("Mattermost url must not contain a user name or password")
    return parsed.with_path(parsed.path.rstrip("/"), encoded=True)


async def _read_bounded(resp: aiohttp.ClientResponse, method: str, template: str) -> bytes:
    """The body, refusing more than _MAX_BODY bytes: a broken or hostile server must not exhaust memory."""
    if resp.content_length is not None and resp.content_length > _MAX_BODY:
        raise MalformedResponse(f"{method} {template}: HTTP {resp.status} body is larger than {_MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > _MAX_BODY:
            raise MalformedResponse(f"{method} {template}: HTTP {resp.status} body is larger than {_MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _without_userinfo(url: yarl.URL) -> str:
    return str(url.with_user(None)) if url.absolute else str(url)


def _escape_segment(value: str) -> str:
    """Go url.PathEscape; `.`/`..` are escaped too so a hostile name cannot climb the path."""
    escaped = quote(value, safe=_PATH_SAFE)
    if escaped in (".", ".."):
        escaped = escaped.replace(".", "%2E")
    return escaped


def _expand(template: str, path_args: Mapping[str, str]) -> str:
    return template.format(**{name: _escape_segment(value) for name, value in path_args.items()})


def _describe_transport_error(exc: aiohttp.ClientError) -> str:
    """A short, secret-free description: the exception class and, for OS errors, the OS reason."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection"
    if isinstance(exc, aiohttp.ClientOSError) and exc.strerror:
        return f"connection failed ({exc.strerror})"
    return f"request failed ({type(exc).__name__})"


def _ctx(method: str, template: str, exc: SidecarError) -> dict[str, str]:
    return {"mm_method": method, "mm_path": template, "error": str(exc)}
