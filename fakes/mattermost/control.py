"""The test face of the fake: request log, fault rules, post history, reset — typed and over HTTP.

HTTP routes (outside /api/v4; every one needs the admin token as `Authorization: Bearer <token>`); the rows from
`/fake/ephemeral` to `/fake/signing-key/rotate` are served by `interactive_face.py`:

| method + path | effect |
|---|---|
| `GET /fake/requests` | request log `[{method, route, path, status, at, user_id, faults, dropped}]`; |
| | `?route=` (template) and `?method=` filter it |
| `DELETE /fake/requests` | clear the log |
| `GET /fake/log?offset=N` | the log from absolute position N on: `{"offset", "next", "requests": [...]}`; pass |
| | `next` as the next offset to read only what is new (`offset` > N when older entries were dropped) |
| `GET /fake/counts` | `{"posts", "root_posts", "replies", "edits", "requests"}` without reading any post |
| `GET /fake/faults` | installed fault rules |
| `POST /fake/faults` | install a rule (fields of `faults.FaultSpec`); 201 `{id, ...}` |
| `DELETE /fake/faults` / `DELETE /fake/faults/{id}` | remove all / one rule |
| `GET /fake/posts` | every post with its write history (`?channel_id=` filters); integrations not stripped |
| `GET /fake/summary` | per channel: root posts, replies, edits |
| `GET /fake/ephemeral`, `GET /fake/ephemerals` | ephemeral posts sent by integrations (`?user_id=` or |
| | `?username=` keeps one user's) |
| `GET /fake/dialogs` | dialogs opened, per user (`?user_id=` / `?username=`), with `problems` from IsValid |
| `GET /fake/integration-calls` | calls the server made to integrations: `kind`, `url`, `user_id`, `at`, `body` |
| | (the exact JSON sent), `headers`, `status` (null: no answer), `response`, `error`, `outcome` (what |
| | the client was answered); `?kind=post_action|dialog_submission`, `?user_id=` filter |
| `DELETE /fake/integration-calls` | clear that record |
| `POST /fake/click` | click as a user through the real route: `{"username" or "user_id", "post_id", |
| | "action_id", "selected_option"?, "cookie"?}` → `{"status", "body"}` of the API's answer |
| `POST /fake/dialogs/submit` | submit a dialog as a user through the real route: `{"username" or "user_id", |
| | "channel_id", "submission"?, "dialog_id"? (defaults url, callback_id, state), "url"?, "callback_id"?, |
| | "state"?, "team_id"?, "cancelled"?}` → `{"status", "body"}` |
| `POST /fake/tokens` | `{"username" or "user_id"}` → `{"user_id", "token"}`: a token for calling the API as them |
| `POST /fake/users/active` | `{"username" or "user_id", "active": bool}`: (de)activate (deactivating ends sessions) |
| `POST /fake/triggers` | `{"username" or "user_id", "minted_at"?}` → `{"trigger_id", "client_trigger_id"}`: a |
| | trigger id signed with the server's key (backdated with `minted_at`, ms) for expiry tests |
| `POST /fake/cookies` | `{"post_id", "action_id"}` → `{"cookie"}`: the sealed cookie the server would give for it |
| `GET /fake/settings`, `PUT /fake/settings` | integration settings (`allowed_untrusted_internal_connections`, |
| | `outgoing_integration_requests_timeout`); PUT changes the given keys until the next reset |
| `POST /fake/signing-key/rotate` | a new trigger signing key → `{"AsymmetricSigningPublicKey"}` |
| `GET /fake/seed` | ids of the seeded users, teams, channels and the tokens |
| `POST /fake/reset` | reload the seed, clear log, faults, rate-limit buckets, dedup cache |
"""

from __future__ import annotations

import copy
import itertools
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from fakes.mattermost import payloads, teams, users
from fakes.mattermost.faults import Fault, FaultBook, FaultSpec, FaultSpecError
from fakes.mattermost.interactive_face import InteractiveFace
from fakes.mattermost.ratelimit import RateLimiter
from fakes.mattermost.records import EphemeralPost
from fakes.mattermost.state import State

#: The request log keeps the most recent this many requests.
REQUEST_LOG_LIMIT = 100_000


@dataclass
class RequestRecord:
    """One API request as the server saw it; `status` is None when the connection was dropped."""

    method: str
    route: str
    path: str
    at: int
    status: int | None = None
    user_id: str = ""
    faults: tuple[str, ...] = ()
    dropped: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON view."""
        return {**asdict(self), "faults": list(self.faults)}


class RequestLog(deque[RequestRecord]):
    """The bounded request log, numbering its entries from 0 for the server's whole life.

    `total` counts every entry ever appended (clearing or dropping the oldest does not lower it), so a reader that
    remembers an offset can ask for only what came after it.
    """

    def __init__(self, maxlen: int) -> None:
        super().__init__(maxlen=maxlen)
        self.total = 0

    def append(self, record: RequestRecord) -> None:
        """Log one more request."""
        super().append(record)
        self.total += 1

    def since(self, offset: int) -> tuple[int, list[RequestRecord]]:
        """(position of the first entry returned, entries from absolute position `offset` on)."""
        first = self.total - len(self)
        start = max(offset, first)
        return start, list(itertools.islice(self, start - first, None))


@dataclass(frozen=True)
class PostRecord:
    """A stored post with its history, for assertions (props include integrations)."""

    post: dict[str, Any]
    history: list[dict[str, Any]]

    @property
    def id(self) -> str:
        """Post id."""
        return str(self.post["id"])

    @property
    def channel_id(self) -> str:
        """Channel id."""
        return str(self.post["channel_id"])

    @property
    def root_id(self) -> str:
        """Root post id, "" for a root post."""
        return str(self.post["root_id"])

    @property
    def message(self) -> str:
        """Current message."""
        return str(self.post["message"])

    @property
    def edits(self) -> int:
        """Number of writes after the create (PUT, patch, integration update)."""
        return len(self.history) - 1


@dataclass(frozen=True)
class ChannelSummary:
    """Counts for one channel."""

    channel_id: str
    root_posts: int
    replies: int
    edits: int


class Control(InteractiveFace):
    """Typed test face shared by in-process tests and the `/fake/` HTTP routes."""

    def __init__(self, state: State, faults: FaultBook, limiter: RateLimiter | None) -> None:
        self.state = state
        self.faults = faults
        self.limiter = limiter
        # Bounded so a long-running fake (demos, benchmarks) does not grow without limit.
        self.log = RequestLog(REQUEST_LOG_LIMIT)
        self.driver = None  # set by the server once it listens (InteractiveFace)

    # ---- request log

    def requests(self, *, method: str | None = None, route: str | None = None) -> list[RequestRecord]:
        """Logged API requests, oldest first, optionally filtered by method and route template."""
        return [
            r
            for r in self.log
            if (method is None or r.method == method.upper()) and (route is None or r.route == route)
        ]

    def count(self, method: str, route: str) -> int:
        """How many requests hit `method route` (route template, e.g. `/api/v4/posts/{post_id}`)."""
        return len(self.requests(method=method, route=route))

    def requests_since(self, offset: int) -> tuple[int, list[RequestRecord]]:
        """Logged requests from absolute position `offset` on, and where they start (see `RequestLog`)."""
        return self.log.since(offset)

    def counts(self) -> dict[str, int]:
        """Posts, root posts, replies, edits and logged requests so far, each read in constant time."""
        state = self.state
        return {
            "posts": len(state.posts),
            "root_posts": len(state.posts) - state.reply_count,
            "replies": state.reply_count,
            "edits": state.edit_count,
            "requests": self.log.total,
        }

    def clear_requests(self) -> None:
        """Empty the request log."""
        self.log.clear()

    # ---- faults

    def add_fault(self, spec: FaultSpec) -> Fault:
        """Install a fault rule."""
        return self.faults.add(spec)

    def remove_fault(self, fault_id: str) -> bool:
        """Remove one fault rule."""
        return self.faults.remove(fault_id)

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self.faults.clear()

    # ---- data

    def posts(self, channel_id: str | None = None) -> list[PostRecord]:
        """Stored posts in creation order with their history."""
        out: list[PostRecord] = []
        for post in sorted(self.state.posts.values(), key=lambda p: p.seq):
            if channel_id is not None and post.channel_id != channel_id:
                continue
            history = [
                {"kind": e.kind, "at": e.at, "user_id": e.user_id, "message": e.message,
                 "props": copy.deepcopy(e.props)}
                for e in self.state.history.get(post.id, [])
            ]
            out.append(PostRecord(payloads.post_json(post, self.state, strip_integrations=False), history))
        return out

    def summary(self) -> list[ChannelSummary]:
        """Root posts, replies and edits per channel that has posts."""
        counts: dict[str, list[int]] = {}
        for record in self.posts():
            row = counts.setdefault(record.channel_id, [0, 0, 0])
            row[0 if record.root_id == "" else 1] += 1
            row[2] += record.edits
        return [ChannelSummary(cid, *row) for cid, row in counts.items()]

    def ephemeral(self) -> list[EphemeralPost]:
        """Ephemeral posts sent by integrations."""
        return list(self.state.ephemeral)

    def user_id(self, username: str) -> str:
        """Id of a user by username (KeyError when unknown)."""
        user = users.user_by_username(self.state, username)
        if user is None:
            raise KeyError(username)
        return user.id

    def channel_id(self, team: str, name: str) -> str:
        """Id of a team channel by team and channel name (KeyError when unknown)."""
        team_record = teams.team_by_name(self.state, team)
        if team_record is not None:
            for channel in self.state.channels.values():
                if channel.team_id == team_record.id and channel.name == name:
                    return channel.id
        raise KeyError(f"{team}/{name}")

    def seed_ids(self) -> dict[str, Any]:
        """Ids of users, teams and channels; seeded tokens (this is a test server)."""
        state = self.state
        team_names = {t.id: t.name for t in state.teams.values()}
        return {
            "users": {u.username: u.id for u in state.users.values()},
            "teams": {t.name: t.id for t in state.teams.values()},
            "channels": {
                f"{team_names[c.team_id]}/{c.name}": c.id for c in state.channels.values() if c.team_id in team_names
            },
            "tokens": {state.users[t.user_id].username: t.token for t in state.tokens.values()},
        }

    def reset(self) -> None:
        """Back to the seed: data, log, faults, rate-limit buckets and the dedup cache."""
        self.state.reset()
        self.log.clear()
        self.faults.clear()
        if self.limiter is not None:
            self.limiter.reset()

    # ---- HTTP

    def register(self, app: web.Application) -> None:
        """Add the `/fake/` routes."""
        r = app.router
        r.add_get("/fake/requests", self._get_requests)
        r.add_delete("/fake/requests", self._delete_requests)
        r.add_get("/fake/log", self._get_log)
        r.add_get("/fake/counts", self._get_counts)
        r.add_get("/fake/faults", self._get_faults)
        r.add_post("/fake/faults", self._post_fault)
        r.add_delete("/fake/faults", self._delete_faults)
        r.add_delete("/fake/faults/{fault_id}", self._delete_fault)
        r.add_get("/fake/posts", self._get_posts)
        r.add_get("/fake/summary", self._get_summary)
        self.register_interactive(app)
        r.add_get("/fake/seed", self._get_seed)
        r.add_post("/fake/reset", self._post_reset)

    async def _get_requests(self, request: web.Request) -> web.Response:
        records = self.requests(method=request.query.get("method"), route=request.query.get("route"))
        return web.json_response([r.to_json() for r in records])

    async def _get_log(self, request: web.Request) -> web.Response:
        try:
            offset = int(request.query.get("offset", "0"))
        except ValueError:
            return web.json_response({"error": "offset must be an integer"}, status=400)
        start, records = self.requests_since(max(offset, 0))
        return web.json_response(
            {"offset": start, "next": start + len(records), "requests": [r.to_json() for r in records]}
        )

    async def _get_counts(self, request: web.Request) -> web.Response:
        return web.json_response(self.counts())

    async def _delete_requests(self, request: web.Request) -> web.Response:
        self.clear_requests()
        return web.json_response({"status": "OK"})

    async def _get_faults(self, request: web.Request) -> web.Response:
        return web.json_response([f.to_json() for f in self.faults.faults])

    async def _post_fault(self, request: web.Request) -> web.Response:
        try:
            doc = await request.json()
        except ValueError:
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        try:
            fault = self.add_fault(FaultSpec.from_json(doc))
        except (FaultSpecError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(fault.to_json(), status=201)

    async def _delete_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({"status": "OK"})

    async def _delete_fault(self, request: web.Request) -> web.Response:
        if not self.remove_fault(request.match_info["fault_id"]):
            return web.json_response({"error": "no such fault"}, status=404)
        return web.json_response({"status": "OK"})

    async def _get_posts(self, request: web.Request) -> web.Response:
        records = self.posts(request.query.get("channel_id"))
        return web.json_response([{**r.post, "history": r.history} for r in records])

    async def _get_summary(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(s) for s in self.summary()])

    async def _get_seed(self, request: web.Request) -> web.Response:
        return web.json_response(self.seed_ids())

    async def _post_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"status": "OK"})

